//! Development aid: loads every corpus case in-process and reports which
//! differ from docker compose's output. `cargo run --example corpus_check -- [filter]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn canonical(text: &str, case_dir: &Path, corpus: &Path) -> String {
    let mut out = text.replace('$', "$$");
    let mut dir = case_dir.to_path_buf();
    let mut token = "${CASE_DIR}".to_string();
    let mut pairs = Vec::new();
    loop {
        pairs.push((dir.display().to_string(), token.clone()));
        if dir == corpus || !dir.pop() {
            break;
        }
        token.push_str("/..");
    }
    for (from, to) in pairs {
        out = out.replace(&from, &to);
    }
    out.replace("/nonexistent/compose-oracle-home", "${HOME}")
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let corpus = corpus.canonicalize().expect("corpus");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("index.json")).expect("index"))
            .expect("json");
    let (mut ok, mut bad, mut rejected, mut accepted_bad) = (0, 0, 0, 0);
    for case in index["cases"].as_array().expect("cases") {
        let name = case["case"].as_str().unwrap_or_default();
        if !name.contains(&filter) {
            continue;
        }
        let dir = corpus.join("cases").join(name);
        let files: Vec<PathBuf> = case["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| PathBuf::from(f.as_str().unwrap()))
            .collect();
        let profiles: Vec<String> = case["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        let mut environment = BTreeMap::new();
        environment.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
        environment.insert(
            "HOME".to_string(),
            "/nonexistent/compose-oracle-home".to_string(),
        );
        let options = stackd::load::LoadOptions {
            files,
            project_name: Some(case["project_name"].as_str().unwrap().to_string()),
            profiles,
            env_files: vec![],
            project_directory: None,
            working_dir: dir.clone(),
            environment,
        };
        let result = std::panic::catch_unwind(|| stackd::load::load_project(&options));
        let expected_json = dir.join("expected.json");
        match result {
            Err(_) => println!("PANIC {name}"),
            Ok(Ok(loaded)) => {
                let text = serde_json::to_string(&loaded.project).unwrap();
                let got: serde_json::Value =
                    serde_json::from_str(&canonical(&text, &dir, &corpus)).unwrap();
                if expected_json.exists() {
                    let want: serde_json::Value =
                        serde_json::from_str(&std::fs::read_to_string(&expected_json).unwrap())
                            .unwrap();
                    if got == want {
                        ok += 1;
                    } else {
                        bad += 1;
                        println!("DIFF {name}");
                        if !filter.is_empty() {
                            println!("got:  {}", serde_json::to_string_pretty(&got).unwrap());
                            println!("want: {}", serde_json::to_string_pretty(&want).unwrap());
                        }
                    }
                } else {
                    accepted_bad += 1;
                    let err =
                        std::fs::read_to_string(dir.join("expected.error")).unwrap_or_default();
                    println!(
                        "ACCEPTED {name}: {}",
                        err.lines().next().unwrap_or_default()
                    );
                }
            }
            Ok(Err(e)) => {
                if expected_json.exists() {
                    bad += 1;
                    println!("REJECTED {name}: {e}");
                } else {
                    rejected += 1;
                    if !filter.is_empty() {
                        println!("ok-rejected {name}: {e}");
                    }
                }
            }
        }
    }
    println!("valid identical {ok}, valid differing {bad}, invalid rejected {rejected}, invalid accepted {accepted_bad}");
}
