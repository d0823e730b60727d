//! The checked-in `manifests/<stack>/kubernetes.yaml` is what `stackd
//! convert` makes of the compose file beside it (warnings included, as
//! comments). `STACKD_GOLDEN_WRITE=1` (what `just generate` sets) rewrites
//! the files instead of comparing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use stackd::kube::sources;
use stackd::kube::translate::{check, keys_present, translate, TranslateOptions, Translation};
use stackd::load::stack::load_stack_manifest;
use stackd::load::{load_project, LoadOptions};
use stackd::model::Project;

const STACKS: [&str; 3] = ["agents", "coordination", "orchestrator"];

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

/// The environment the files are made in: nothing from the caller's.
fn clean_options(dir: &Path, files: Vec<PathBuf>) -> LoadOptions {
    LoadOptions {
        files,
        working_dir: dir.to_path_buf(),
        environment: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
        ..LoadOptions::default()
    }
}

fn translated(project: &Project, dir: &Path) -> Translation {
    let options = TranslateOptions {
        contents: sources::read(project, &BTreeMap::new(), Some(dir)),
        ..TranslateOptions::default()
    };
    translate(project, &options).unwrap()
}

fn compose_project(stack: &str) -> Project {
    let dir = manifests().join(stack);
    load_project(&clean_options(&dir, vec!["compose.yaml".into()]))
        .unwrap()
        .project
}

/// The file's text: a header, the warnings as comments, the objects.
fn golden_text(stack: &str, translation: &Translation) -> String {
    let mut text = format!(
        "# The {stack} stack (compose.yaml beside this file) as Kubernetes objects:\n\
         # what `stackd convert -f compose.yaml` prints. Generated: `just generate`\n\
         # rewrites it, and a test fails when it differs from the translation.\n"
    );
    if translation.warnings.is_empty() {
        text.push_str("# No warnings: every compose key carried over.\n");
    } else {
        text.push_str("# Warnings (compose keys that did not fully carry over):\n");
        for warning in &translation.warnings {
            text.push_str(&format!("#   {warning}\n"));
        }
    }
    text.push_str(&translation.to_yaml().unwrap());
    text
}

#[test]
fn the_checked_in_kubernetes_yaml_of_each_stack_is_its_translation() {
    let write = std::env::var("STACKD_GOLDEN_WRITE").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for stack in STACKS {
        let project = compose_project(stack);
        let translation = translated(&project, &manifests().join(stack));
        assert!(translation.unaccounted(&keys_present(&project)).is_empty());
        assert_eq!(check::check(&translation.objects), Vec::<String>::new());
        let text = golden_text(stack, &translation);
        let path = manifests().join(stack).join("kubernetes.yaml");
        if write {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        if checked_in != text {
            let line = checked_in
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .map_or_else(
                    || checked_in.lines().count().min(text.lines().count()) + 1,
                    |i| i + 1,
                );
            stale.push(format!(
                "manifests/{stack}/kubernetes.yaml (first difference at line {line})"
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {}; run `just generate` and review the difference",
        stale.join(", ")
    );
}

#[test]
fn a_stack_manifest_translates_like_the_compose_file_it_wraps() {
    for stack in STACKS {
        let dir = manifests().join(stack);
        if !dir.join("stack.yaml").is_file() {
            continue;
        }
        let loaded =
            load_stack_manifest(Path::new("stack.yaml"), &clean_options(&dir, Vec::new())).unwrap();
        let from_manifest = translated(&loaded.loaded.project, &dir);
        let from_compose = translated(&compose_project(stack), &dir);
        assert_eq!(
            from_manifest.to_yaml().unwrap(),
            from_compose.to_yaml().unwrap(),
            "{stack}"
        );
        assert_eq!(from_manifest.warnings, from_compose.warnings, "{stack}");
    }
}

#[test]
fn the_checked_in_kubernetes_yaml_passes_strict_schema_validation() {
    let installed = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubernetes-validate is not installed (pip install kubernetes-validate) and CI is set"
        );
        eprintln!("kubernetes-validate is not installed; skipped");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/translate/validate.py");
    let files: Vec<PathBuf> = STACKS
        .iter()
        .map(|s| manifests().join(s).join("kubernetes.yaml"))
        .collect();
    let output = Command::new("python3")
        .arg(script)
        .args(["-k", "1.33.0", "-k", "1.37.0"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
