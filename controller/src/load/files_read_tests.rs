//! Tests of `Loaded::files_read`: every file a load reads or looks for, so
//! that a watcher knows which stacks a changed file belongs to.
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn options(dir: &Path) -> LoadOptions {
    LoadOptions {
        working_dir: dir.to_path_buf(),
        ..LoadOptions::default()
    }
}

fn names(files: &BTreeSet<PathBuf>, root: &Path) -> BTreeSet<String> {
    files
        .iter()
        .filter_map(|f| f.strip_prefix(root).ok())
        .map(|f| f.display().to_string())
        .collect()
}

#[test]
fn a_project_notes_its_compose_files_override_dotenv_and_env_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    write(
        &root,
        "compose.yaml",
        "services:\n  web:\n    image: busybox:${TAG}\n    env_file: [web.env, {path: optional.env, required: false}]\n",
    );
    write(
        &root,
        "compose.override.yaml",
        "services:\n  web:\n    init: true\n",
    );
    write(&root, ".env", "TAG=1\n");
    write(&root, "web.env", "A=1\n");
    write(tmp.path(), "shared.env", "B=2\n");
    write(
        &root,
        "compose.override.yaml",
        "services:\n  web:\n    env_file: ../shared.env\n",
    );
    let loaded = load_project(&options(&root)).unwrap();
    let read = names(&loaded.files_read, &root);
    for expected in [
        "compose.yaml",
        "compose.override.yaml",
        ".env",
        "web.env",
        "optional.env",
        // Looked for: creating one would change which files load.
        "docker-compose.yml",
        "compose.override.yml",
    ] {
        assert!(read.contains(expected), "{expected} not in {read:?}");
    }
    assert!(
        loaded.files_read.contains(&tmp.path().join("shared.env")),
        "{:?}",
        loaded.files_read
    );
}

#[test]
fn a_project_notes_its_extends_and_include_targets_and_their_env_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(
        root,
        "compose.yaml",
        "include:\n  - lib/db.yaml\nservices:\n  web:\n    extends: {file: base/common.yaml, service: base}\n",
    );
    write(
        root,
        "base/common.yaml",
        "services:\n  base:\n    image: busybox\n",
    );
    write(
        root,
        "lib/db.yaml",
        "services:\n  db:\n    image: busybox:${DB_TAG}\n",
    );
    write(root, "lib/.env", "DB_TAG=2\n");
    let loaded = load_project(&options(root)).unwrap();
    let read = names(&loaded.files_read, root);
    for expected in ["base/common.yaml", "lib/db.yaml", "lib/.env"] {
        assert!(read.contains(expected), "{expected} not in {read:?}");
    }
}

#[test]
fn a_project_notes_its_label_secret_and_config_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(
        root,
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    label_file: web.labels\n    secrets: [token]\n    configs: [conf]\n\
         secrets:\n  token: {file: ./token.txt}\nconfigs:\n  conf: {file: ./conf.ini}\n",
    );
    write(root, "web.labels", "tier=web\n");
    write(root, "token.txt", "s3cr3t");
    write(root, "conf.ini", "[a]\n");
    let loaded = load_project_strict(&options(root), None).unwrap();
    let read = names(&loaded.files_read, root);
    for expected in ["web.labels", "token.txt", "conf.ini"] {
        assert!(read.contains(expected), "{expected} not in {read:?}");
    }
}

#[test]
fn a_failed_load_still_notes_the_files_it_looked_at() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(
        root,
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    env_file: missing.env\n",
    );
    let mut seen = BTreeSet::new();
    let error = load_project_strict_tracked(&options(root), None, &mut seen).unwrap_err();
    assert_eq!(error.reason(), "missing_file", "{error}");
    let read = names(&seen, root);
    assert!(read.contains("compose.yaml"), "{read:?}");
    assert!(read.contains("missing.env"), "{read:?}");
}

#[test]
fn a_stack_manifest_notes_itself_and_its_compose_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(
        root,
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n",
    );
    write(root, "prod.yaml", "services:\n  web:\n    init: true\n");
    write(
        root,
        "stack.yaml",
        "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: app}\nspec:\n  composeFiles: [compose.yaml, prod.yaml]\n  profiles: [debug]\n",
    );
    let stack = stack::load_stack_manifest(Path::new("stack.yaml"), &options(root)).unwrap();
    let read = names(&stack.loaded.files_read, root);
    for expected in ["stack.yaml", "compose.yaml", "prod.yaml", ".env"] {
        assert!(read.contains(expected), "{expected} not in {read:?}");
    }
    assert_eq!(stack.profiles, ["debug"]);
    assert_eq!(
        stack.options.files,
        [root.join("compose.yaml"), root.join("prod.yaml")]
    );
}

#[test]
fn error_reasons_name_the_kind_of_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let reason = |text: &str| {
        write(root, "compose.yaml", text);
        let error = load_project_strict(&options(root), None).unwrap_err();
        (error.reason(), error.location().map(|(_, line, _)| line))
    };
    assert_eq!(reason("services:\n  web: [\n"), ("parse", Some(2)));
    assert_eq!(
        reason("services:\n  web:\n    image: ${X:?required}\n"),
        ("interpolate", Some(3))
    );
    assert_eq!(
        reason("services:\n  web:\n    image: busybox\n    networks: [back]\n"),
        ("validate", Some(4))
    );
    assert_eq!(
        reason("services:\n  web:\n    image: busybox\n    secrets: [s]\nsecrets:\n  s: {file: ./nope}\n"),
        ("missing_file", Some(6))
    );
}
