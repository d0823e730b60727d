//! `stackd convert`: YAML on stdout or one file per object, warnings on
//! stderr, the options that widen what is translated.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn stackd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stackd"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const COMPOSE: &str = "services:\n  web:\n    image: nginx\n    container_name: web-1\n    ports: ['8080:80']\n    volumes: ['/srv/site:/usr/share/nginx/html:ro']\n";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), COMPOSE).unwrap();
    dir
}

#[test]
fn convert_prints_one_yaml_stream_and_the_warnings_on_stderr() {
    let dir = project();
    let out = stackd(dir.path(), &["convert", "-p", "site"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("apiVersion: v1\nkind: Service\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n---\napiVersion: apps/v1\nkind: Deployment\n"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: service web: container_name: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: service web: volumes.source: host path /srv/site"),
        "{stderr}"
    );
}

#[test]
fn convert_with_an_output_directory_writes_one_file_per_object() {
    let dir = project();
    let out = stackd(dir.path(), &["convert", "-p", "site", "-o", "k8s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("k8s"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["06-service-web.yaml", "08-deployment-site-web.yaml"]
    );
    assert!(text(&out.stderr).contains("wrote 2 objects to k8s"));
}

#[test]
fn convert_sets_the_namespace_and_refuses_an_invalid_one() {
    let dir = project();
    let out = stackd(dir.path(), &["convert", "-p", "site", "-n", "web"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).matches("  namespace: web\n").count(), 2);
    let out = stackd(dir.path(), &["convert", "-p", "site", "-n", "Web Site"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid namespace"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn convert_mounts_host_paths_only_when_allowed() {
    let dir = project();
    let out = stackd(dir.path(), &["convert", "-p", "site", "--allow-host-path"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("hostPath:\n          path: /srv/site\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(!text(&out.stderr).contains("volumes.source"));
}

#[test]
fn convert_of_a_seed_stack_prints_its_checked_in_kubernetes_yaml() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/orchestrator");
    let out = stackd(&dir, &["convert"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let golden = std::fs::read_to_string(dir.join("kubernetes.yaml")).unwrap();
    let objects: String = golden
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let printed = text(&out.stdout);
    if let Some((at, (a, b))) = printed
        .lines()
        .zip(objects.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!(
            "stdout differs from kubernetes.yaml at object line {}: {a:?} vs {b:?}",
            at + 1
        );
    }
    assert_eq!(printed, objects);
    let warnings: Vec<String> = golden
        .lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .map(|w| format!("warning: {w}"))
        .collect();
    assert_eq!(text(&out.stderr).lines().collect::<Vec<_>>(), warnings);
}

#[test]
fn convert_of_a_project_that_fails_to_load_exits_1_with_the_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: [\n",
    )
    .unwrap();
    let out = stackd(dir.path(), &["convert"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("compose.yaml:"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}
