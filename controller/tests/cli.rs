//! The `stackd` binary's exit codes and stream discipline.
// A test reports by panicking, helpers included.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn stackd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stackd"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const MANIFEST: &str = "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: demo}\nspec:\n  compose:\n    name: demo\n";

#[test]
fn crd_prints_the_custom_resource_definition_and_exits_0() {
    let out = stackd(Path::new("."), &["crd"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("apiVersion: apiextensions.k8s.io/v1\n"));
    assert!(out.stderr.is_empty());
}

#[test]
fn a_command_not_implemented_yet_exits_1_and_says_so_on_stderr() {
    let out = stackd(Path::new("."), &["convert", "-f", "x.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "stackd convert: not available yet\n");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_usage_error_exits_1() {
    let out = stackd(Path::new("."), &["config", "--format", "toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("toml"));
}

#[test]
fn help_exits_0() {
    let out = stackd(Path::new("."), &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("validate"));
}

#[test]
fn validate_accepts_a_stack_manifest_with_an_inline_model() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stack.yaml"), MANIFEST).unwrap();
    let out = stackd(dir.path(), &["validate", "stack.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "stack.yaml: valid\n");
}

#[test]
fn validate_rejects_a_broken_manifest_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = format!("{MANIFEST}  suspend: [\n");
    std::fs::write(dir.path().join("stack.yaml"), broken).unwrap();
    let out = stackd(dir.path(), &["validate", "stack.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("stackd: "), "{stderr}");
    assert!(stderr.contains("stack.yaml:7:12: "), "{stderr}");
}

#[test]
fn validate_reports_each_invalid_input_and_a_count() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), MANIFEST).unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: bad}\nspec: {}\n",
    )
    .unwrap();
    let out = stackd(dir.path(), &["validate", "good.yaml", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "good.yaml: valid\nbad.yaml: invalid\n");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:4:7: spec needs compose or composeFiles"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("stackd: 1 of 2 inputs are invalid\n"),
        "{stderr}"
    );
}

#[test]
fn validate_refuses_files_and_paths_together() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stack.yaml"), MANIFEST).unwrap();
    let out = stackd(
        dir.path(),
        &["validate", "-f", "compose.yaml", "stack.yaml"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not both"));
}

#[test]
fn the_seed_stack_manifest_is_what_wrap_prints_for_its_compose_file() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = stackd(&repo, &["-f", "manifests/agents/compose.yaml", "wrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let checked_in = std::fs::read_to_string(repo.join("manifests/agents/stack.yaml")).unwrap();
    let without_comments: String = checked_in
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(
        text(&out.stdout),
        without_comments,
        "manifests/agents/stack.yaml is stale: regenerate it with `stackd -f manifests/agents/compose.yaml wrap`"
    );
}

#[test]
fn validate_accepts_every_seed_stack_in_manifests() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = stackd(&repo, &["validate", "manifests"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn validate_and_plan_refuse_limits_beyond_this_host_naming_the_line() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let dir = tempfile::tempdir().unwrap();
    let compose = format!(
        "services:\n  web:\n    image: busybox\n    deploy:\n      resources:\n        limits:\n          cpus: \"{}\"\n",
        cpus * 32
    );
    std::fs::write(dir.path().join("compose.yaml"), &compose).unwrap();
    for args in [
        &["validate", "-f", "compose.yaml"][..],
        &["-p", "limits", "plan", "-f", "compose.yaml"][..],
        &["-p", "limits", "up", "-f", "compose.yaml"][..],
    ] {
        // Refused while loading: no engine is reached.
        let out = stackd(dir.path(), args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("compose.yaml:7:"), "{args:?}: {stderr}");
        assert!(stderr.contains("exceeds the host's"), "{args:?}: {stderr}");
    }
}
