//! Round-trips every `expected.json` of the conformance corpus (the output
//! of `docker compose config --format json`) through [`Project`].
#![allow(clippy::unwrap_used)]
use std::path::{Path, PathBuf};

use super::Project;

/// The corpus lives in `shared/` beside the repository, which may itself sit
/// one level deeper (a worktree), so every ancestor is tried.
fn corpus_cases() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("shared/corpus/cases"))
        .find(|dir| dir.is_dir())
}

fn expected_files(cases: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for source in std::fs::read_dir(cases).unwrap() {
        let source = source.unwrap().path();
        if !source.is_dir() {
            continue;
        }
        for case in std::fs::read_dir(&source).unwrap() {
            let expected = case.unwrap().path().join("expected.json");
            if expected.is_file() {
                files.push(expected);
            }
        }
    }
    files.sort();
    files
}

/// The first place two JSON values differ, for a readable failure.
fn first_difference(path: &str, want: &serde_json::Value, got: &serde_json::Value) -> String {
    use serde_json::Value;
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (key, value) in w {
                match g.get(key) {
                    None => return format!("{path}/{key}: missing"),
                    Some(other) if other != value => {
                        return first_difference(&format!("{path}/{key}"), value, other)
                    }
                    Some(_) => {}
                }
            }
            for key in g.keys() {
                if !w.contains_key(key) {
                    return format!("{path}/{key}: unexpected {}", g[key]);
                }
            }
            format!("{path}: differs")
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (index, (a, b)) in w.iter().zip(g).enumerate() {
                if a != b {
                    return first_difference(&format!("{path}/{index}"), a, b);
                }
            }
            format!("{path}: differs")
        }
        _ => format!("{path}: want {want}, got {got}"),
    }
}

#[test]
fn every_corpus_expected_json_round_trips_exactly() {
    let Some(cases) = corpus_cases() else {
        eprintln!("corpus not found next to the repository; skipping");
        return;
    };
    let files = expected_files(&cases);
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        let name = file
            .strip_prefix(&cases)
            .unwrap_or(file)
            .display()
            .to_string();
        match serde_json::from_str::<Project>(&text) {
            Err(err) => failures.push(format!("{name}: does not load: {err}")),
            Ok(project) => {
                let printed = serde_json::to_value(&project).unwrap();
                if printed != original {
                    failures.push(format!(
                        "{name}: {}",
                        first_difference("", &original, &printed)
                    ));
                }
            }
        }
    }
    eprintln!(
        "{} of {} corpus files round-trip exactly",
        files.len() - failures.len(),
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_project_has_a_json_schema() {
    let schema = schemars::schema_for!(Project);
    let schema = serde_json::to_value(&schema).unwrap();
    assert!(schema["properties"]["services"].is_object(), "{schema}");
}
