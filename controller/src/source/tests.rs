//! Tests of discovery and loading on real files in temporary folders and on
//! the repository's `manifests/`.
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A temporary folder, by its canonical path (what discovery reports).
fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    (tmp, root)
}

fn settings() -> Settings {
    Settings::default()
}

fn manifest(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

const WEB: &str = "services:\n  web:\n    image: busybox\n";

fn repo_manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

#[test]
fn discovery_finds_manifests_and_compose_folders_but_not_hidden_or_build_folders() {
    let (_tmp, root) = tempdir();
    write(&root, "a/compose.yaml", WEB);
    write(&root, "a/sub/docker-compose.yml", WEB);
    write(
        &root,
        "b/stack.yaml",
        &manifest("b", "  compose: {services: {web: {image: busybox}}}\n"),
    );
    write(&root, "b/compose.yaml", WEB);
    write(&root, "c/notes.yaml", "kind: Stack\n");
    write(
        &root,
        "c/readme.txt",
        "apiVersion: stackd.dev/v1alpha1\nkind: Stack\n",
    );
    for hidden in [".git", ".stackd", "target", "node_modules/x"] {
        write(&root, &format!("{hidden}/compose.yaml"), WEB);
        write(
            &root,
            &format!("{hidden}/stack.yaml"),
            &manifest("h", "  compose: {}\n"),
        );
    }
    let origins = discover(&root).unwrap();
    assert_eq!(
        origins,
        [
            Origin::ComposeDir {
                dir: root.join("a")
            },
            Origin::ComposeDir {
                dir: root.join("a/sub")
            },
            Origin::Manifest {
                path: root.join("b/stack.yaml")
            },
        ]
    );
}

#[test]
fn compose_files_a_manifest_names_are_no_stack_of_their_own() {
    let (_tmp, root) = tempdir();
    write(&root, "shared/compose.yaml", WEB);
    write(
        &root,
        "app/stack.yml",
        &manifest("app", "  composeFiles: [../shared/compose.yaml]\n"),
    );
    let origins = discover(&root).unwrap();
    assert_eq!(
        origins,
        [Origin::Manifest {
            path: root.join("app/stack.yml")
        }]
    );
    let stack = load_with(&origins[0], &settings()).unwrap();
    assert_eq!(stack.name, "app");
    assert!(
        stack.files.contains(&root.join("shared/compose.yaml")),
        "{:?}",
        stack.files
    );
}

#[test]
fn the_repository_manifests_are_five_stacks_that_load() {
    let root = fs::canonicalize(repo_manifests()).unwrap();
    let origins = discover(&root).unwrap();
    assert_eq!(
        origins,
        [
            Origin::Manifest {
                path: root.join("agents/stack.yaml")
            },
            Origin::Manifest {
                path: root.join("coordination/stack.yaml")
            },
            Origin::Manifest {
                path: root.join("orchestrator/stack.yaml")
            },
            Origin::Manifest {
                path: root.join("toolhub/stack.yaml")
            },
            Origin::Manifest {
                path: root.join("writing/stack.yaml")
            },
        ]
    );
    let (stacks, errors) = load_origins(&origins, &settings());
    assert!(errors.is_empty(), "{errors:?}");
    let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "agents",
            "coordination",
            "orchestrator",
            "toolhub",
            "writing"
        ]
    );
    let orchestrator = &stacks[2];
    // The manifest names its secret file relative to itself.
    assert!(orchestrator
        .files
        .contains(&root.join("orchestrator/secrets/db_password.txt")));
    assert_eq!(
        orchestrator.meta.config_files,
        [root.join("orchestrator/stack.yaml").display().to_string()]
    );
    assert_eq!(
        orchestrator.meta.working_dir,
        root.join("orchestrator").display().to_string()
    );
    assert_eq!(
        orchestrator.meta.config_hashes.len(),
        orchestrator.project.services.len()
    );
    let agents = &stacks[0];
    assert_eq!(
        agents.meta.config_files,
        [root.join("agents/stack.yaml").display().to_string()]
    );
    // The wrapped copy of compose.yaml beside it is not what it loads.
    assert!(!agents.files.contains(&root.join("agents/compose.yaml")));
    assert!(agents.prune && !agents.suspend);
}

#[test]
fn the_wrapped_manifest_and_its_compose_file_ask_for_the_same_model() {
    let root = fs::canonicalize(repo_manifests()).unwrap();
    for name in ["agents", "coordination"] {
        let wrapped = load_with(
            &Origin::Manifest {
                path: root.join(name).join("stack.yaml"),
            },
            &settings(),
        )
        .unwrap();
        let (_tmp, copy) = tempdir();
        let dir = copy.join(name);
        fs::create_dir(&dir).unwrap();
        fs::copy(
            root.join(name).join("compose.yaml"),
            dir.join("compose.yaml"),
        )
        .unwrap();
        let plain = load_with(&Origin::ComposeDir { dir }, &settings()).unwrap();
        assert_eq!(plain.name, wrapped.name);
        assert_eq!(
            plain.meta.config_hashes, wrapped.meta.config_hashes,
            "{name}"
        );
    }
}

#[test]
fn a_folder_given_through_a_link_or_relative_path_is_reported_canonically() {
    let (_tmp, root) = tempdir();
    write(&root, "real/app/compose.yaml", WEB);
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        assert_eq!(
            discover(&root.join("link")).unwrap(),
            [Origin::ComposeDir {
                dir: root.join("real/app")
            }]
        );
    }
    assert_eq!(
        discover(&root.join("real/app/../")).unwrap(),
        [Origin::ComposeDir {
            dir: root.join("real/app")
        }]
    );
}

#[test]
fn a_missing_directory_is_an_error_not_an_empty_set() {
    let (_tmp, root) = tempdir();
    let error = discover(&root.join("nope")).unwrap_err();
    assert_eq!(error.reason(), "Unreadable");
    write(&root, "file.yaml", WEB);
    assert_eq!(
        discover(&root.join("file.yaml")).unwrap_err().reason(),
        "NotADirectory"
    );
    assert!(load_all(&root.join("nope")).is_err());
}

#[test]
fn an_emptied_manifest_stays_a_stack_when_it_was_known() {
    let (_tmp, root) = tempdir();
    write(
        &root,
        "b/stack.yaml",
        &manifest("bee", "  compose: {services: {web: {image: busybox}}}\n"),
    );
    write(
        &root,
        "b/compose.yaml",
        "name: bee\nservices:\n  web:\n    image: busybox:2\n",
    );
    let known = discover(&root).unwrap();
    assert_eq!(
        known,
        [Origin::Manifest {
            path: root.join("b/stack.yaml")
        }]
    );
    write(&root, "b/stack.yaml", "");
    // Without memory, the folder would turn into a compose project of the
    // same name: another model applied in the manifest's place.
    assert_eq!(
        discover(&root).unwrap(),
        [Origin::ComposeDir {
            dir: root.join("b")
        }]
    );
    assert_eq!(rediscover(&root, &known).unwrap(), known);
    let error = load_with(&known[0], &settings()).unwrap_err();
    assert_eq!(error.stack, "b");
    assert_eq!(error.location, Some((root.join("b/stack.yaml"), 1, 1)));
    // Deleted, it is gone.
    fs::remove_file(root.join("b/stack.yaml")).unwrap();
    assert_eq!(
        rediscover(&root, &known).unwrap(),
        [Origin::ComposeDir {
            dir: root.join("b")
        }]
    );
}

#[test]
fn a_compose_folder_loads_as_docker_compose_would_from_it() {
    let (_tmp, root) = tempdir();
    let dir = root.join("My App");
    write(
        &dir,
        "compose.yaml",
        "services:\n  web:\n    image: busybox:${TAG}\n",
    );
    write(
        &dir,
        "compose.override.yaml",
        "services:\n  web:\n    init: true\n",
    );
    write(&dir, ".env", "TAG=1.36\n");
    let stack = load_with(&Origin::ComposeDir { dir: dir.clone() }, &settings()).unwrap();
    assert_eq!(stack.name, "myapp");
    assert_eq!(stack.project.services["web"].image, "busybox:1.36");
    assert_eq!(stack.project.services["web"].init, Some(true));
    assert_eq!(
        stack.meta.config_files,
        [
            dir.join("compose.yaml").display().to_string(),
            dir.join("compose.override.yaml").display().to_string()
        ]
    );
    assert!(!stack.suspend && stack.prune);
}

#[test]
fn a_compose_folder_is_named_by_its_top_level_name() {
    let (_tmp, root) = tempdir();
    write(&root, "x/compose.yaml", &format!("name: web-app\n{WEB}"));
    let stack = load_with(
        &Origin::ComposeDir {
            dir: root.join("x"),
        },
        &settings(),
    )
    .unwrap();
    assert_eq!(stack.name, "web-app");
}

#[test]
fn a_manifest_sets_suspend_prune_and_profiles() {
    let (_tmp, root) = tempdir();
    write(&root, "compose.yaml", "services:\n  web:\n    image: busybox\n  debug:\n    image: busybox\n    profiles: [debug]\n");
    write(
        &root,
        "stack.yaml",
        &manifest("app", "  composeFiles: [compose.yaml]\n  suspend: true\n  prune: false\n  profiles: [debug]\n"),
    );
    let stack = load_with(
        &Origin::Manifest {
            path: root.join("stack.yaml"),
        },
        &settings(),
    )
    .unwrap();
    assert!(stack.suspend && !stack.prune);
    assert!(stack.project.services.contains_key("debug"));
    assert_eq!(stack.meta.working_dir, root.display().to_string());
    assert_eq!(
        stack.meta.config_files,
        [root.join("compose.yaml").display().to_string()]
    );
}

#[test]
fn a_manifest_with_two_documents_is_refused_at_the_second() {
    let (_tmp, root) = tempdir();
    let one = manifest("a", "  compose: {services: {web: {image: busybox}}}\n");
    write(&root, "stack.yaml", &format!("{one}---\n{one}"));
    let origins = discover(&root).unwrap();
    let error = load_with(&origins[0], &settings()).unwrap_err();
    assert_eq!(error.kind, "validate");
    assert!(
        error.error.contains("exactly one document"),
        "{}",
        error.error
    );
    // The second document starts after the `---` on line 7.
    assert_eq!(error.location.map(|(_, line, _)| line), Some(8));
}

#[test]
fn the_spec_hash_ignores_layout_and_key_order_but_not_content() {
    let (_tmp, root) = tempdir();
    let dir = root.join("app");
    let hash = |text: &str| {
        write(&dir, "compose.yaml", text);
        load_with(&Origin::ComposeDir { dir: dir.clone() }, &settings())
            .unwrap()
            .spec_hash
    };
    let original = hash(
        "# the app\nservices:\n  web:\n    image: busybox\n    environment:\n      A: \"1\"\n      B: two\n    ports: [\"8080:80\"]\n",
    );
    let reformatted = hash(
        "services: {web: {ports: ['8080:80'], environment: {B: \"two\", A: '1'}, image: \"busybox\"}}  # same\n",
    );
    assert_eq!(original, reformatted);
    let as_list = hash("services:\n  web:\n    image: busybox\n    environment: [A=1, B=two]\n    ports:\n      - 8080:80\n");
    assert_eq!(original, as_list);
    let changed = hash("services:\n  web:\n    image: busybox:2\n    environment: [A=1, B=two]\n    ports: [\"8080:80\"]\n");
    assert_ne!(original, changed);
    assert_eq!(original.len(), 64);
}

#[test]
fn the_spec_hash_of_a_manifest_follows_suspend_and_prune() {
    let (_tmp, root) = tempdir();
    let hash = |spec: &str| {
        write(&root, "stack.yaml", &manifest("app", spec));
        load_with(
            &Origin::Manifest {
                path: root.join("stack.yaml"),
            },
            &settings(),
        )
        .unwrap()
        .spec_hash
    };
    let compose = "  compose: {services: {web: {image: busybox}}}\n";
    let plain = hash(compose);
    assert_eq!(
        plain,
        hash(&format!("{compose}  suspend: false\n  prune: true\n"))
    );
    assert_ne!(plain, hash(&format!("{compose}  suspend: true\n")));
    assert_ne!(plain, hash(&format!("{compose}  prune: false\n")));
}

#[test]
fn a_stack_notes_dotenv_env_file_extends_and_include_targets() {
    let (_tmp, root) = tempdir();
    let dir = root.join("app");
    write(
        &dir,
        "compose.yaml",
        "include: [lib/db.yaml]\nservices:\n  web:\n    extends: {file: base.yaml, service: base}\n    env_file: ../shared.env\n",
    );
    write(
        &dir,
        "base.yaml",
        "services:\n  base:\n    image: busybox:${TAG}\n",
    );
    write(
        &dir,
        "lib/db.yaml",
        "services:\n  db:\n    image: busybox\n",
    );
    write(&dir, ".env", "TAG=1\n");
    write(&root, "shared.env", "X=1\n");
    let stack = load_with(&Origin::ComposeDir { dir: dir.clone() }, &settings()).unwrap();
    for file in [
        dir.join("compose.yaml"),
        dir.join(".env"),
        dir.join("base.yaml"),
        dir.join("lib/db.yaml"),
        root.join("shared.env"),
    ] {
        assert!(
            stack.files.contains(&file),
            "{} not in {:?}",
            file.display(),
            stack.files
        );
    }
}

#[cfg(unix)]
#[test]
fn a_linked_file_is_noted_with_its_target() {
    let (_tmp, root) = tempdir();
    write(&root, "common/web.env", "A=1\n");
    write(
        &root,
        "app/compose.yaml",
        "services:\n  web:\n    image: busybox\n    env_file: web.env\n",
    );
    std::os::unix::fs::symlink(root.join("common/web.env"), root.join("app/web.env")).unwrap();
    let stack = load_with(
        &Origin::ComposeDir {
            dir: root.join("app"),
        },
        &settings(),
    )
    .unwrap();
    assert!(stack.files.contains(&root.join("app/web.env")));
    assert!(stack.files.contains(&root.join("common/web.env")));
}

#[test]
fn a_missing_env_file_is_watched_so_creating_it_is_noticed() {
    let (_tmp, root) = tempdir();
    write(
        &root,
        "app/compose.yaml",
        "services:\n  web:\n    image: busybox\n    env_file: web.env\n",
    );
    let error = load_with(
        &Origin::ComposeDir {
            dir: root.join("app"),
        },
        &settings(),
    )
    .unwrap_err();
    assert_eq!(error.kind, "missing_file");
    assert_eq!(error.stack, "app");
    assert!(
        error.files.contains(&root.join("app/web.env")),
        "{:?}",
        error.files
    );
    assert!(error.files.contains(&root.join("app/compose.yaml")));
    assert_eq!(error.location.as_ref().map(|l| l.1), Some(4));
}

#[test]
fn a_compose_folder_whose_file_went_away_does_not_load_a_parent_project() {
    let (_tmp, root) = tempdir();
    write(&root, "compose.yaml", WEB);
    fs::create_dir(root.join("app")).unwrap();
    let error = load_with(
        &Origin::ComposeDir {
            dir: root.join("app"),
        },
        &settings(),
    )
    .unwrap_err();
    assert_eq!(error.kind, "missing_file");
    assert!(error.files.contains(&root.join("app/compose.yaml")));
}

/// A bad compose model, the line its error is on, and the kind expected.
struct Bad {
    what: &'static str,
    compose: &'static str,
    line: u32,
    kind: &'static str,
}

const BAD: &[Bad] = &[
    Bad {
        what: "truncated YAML",
        compose: "services:\n  web:\n    image: busybox\n    command: [\"sh\", \"-c\n",
        line: 4,
        kind: "parse",
    },
    Bad {
        what: "undefined network",
        compose: "services:\n  web:\n    image: busybox\n    networks: [back]\n",
        line: 4,
        kind: "validate",
    },
    Bad {
        what: "dependency cycle",
        compose: "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n",
        line: 7,
        kind: "validate",
    },
    Bad {
        what: "alias bomb",
        compose: "x-a: &a [x, x, x, x, x, x, x, x, x, x]\nx-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nx-c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nx-d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\nx-e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nx-f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\nx-g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nservices:\n  web:\n    image: busybox\n",
        line: 0,
        kind: "parse",
    },
    Bad {
        what: "missing required variable",
        compose: "services:\n  web:\n    image: busybox:${TAG:?the tag is required}\n",
        line: 3,
        kind: "interpolate",
    },
    Bad {
        what: "empty file",
        compose: "",
        line: 1,
        kind: "validate",
    },
];

fn check_bad(bad: &Bad, error: &SourceError, file: &Path, line_offset: u32) {
    assert_eq!(error.kind, bad.kind, "{}: {}", bad.what, error.error);
    let (at, line, _) = error
        .location
        .clone()
        .unwrap_or_else(|| panic!("{}: no location in {}", bad.what, error.error));
    assert_eq!(at, file, "{}: {}", bad.what, error.error);
    // Line 0 stands for "some line": the alias bomb trips its budget at
    // whichever alias crosses it.
    if bad.line > 0 {
        assert_eq!(
            line,
            bad.line + line_offset,
            "{}: {}",
            bad.what,
            error.error
        );
    } else {
        assert!(line > 0, "{}: {}", bad.what, error.error);
    }
    let text = format!("{}:{line}:", file.display());
    assert!(
        error.error.contains(&text),
        "{}: {} lacks {text}",
        bad.what,
        error.error
    );
    assert!(
        error.files.contains(file),
        "{}: {:?}",
        bad.what,
        error.files
    );
}

#[test]
fn each_kind_of_bad_compose_file_is_reported_with_its_file_and_line() {
    let (_tmp, root) = tempdir();
    let dir = root.join("app");
    let file = dir.join("compose.yaml");
    for bad in BAD {
        write(&dir, "compose.yaml", bad.compose);
        let error = load_with(&Origin::ComposeDir { dir: dir.clone() }, &settings()).unwrap_err();
        assert_eq!(error.stack, "app", "{}", bad.what);
        check_bad(bad, &error, &file, 0);
    }
}

#[test]
fn each_kind_of_bad_manifest_is_reported_with_its_file_and_line() {
    let (_tmp, root) = tempdir();
    let file = root.join("app/stack.yaml");
    let origin = Origin::Manifest { path: file.clone() };
    for bad in BAD {
        // The model inline under spec.compose, four spaces in, five lines down.
        let text = if bad.compose.is_empty() {
            String::new()
        } else {
            let indented: String = bad.compose.lines().map(|l| format!("    {l}\n")).collect();
            manifest("app", &format!("  compose:\n{indented}"))
        };
        write(&root, "app/stack.yaml", &text);
        let error = load_with(&origin, &settings()).unwrap_err();
        assert_eq!(error.stack, "app", "{}", bad.what);
        let offset = if bad.compose.is_empty() { 0 } else { 6 };
        check_bad(bad, &error, &file, offset);
    }
}

#[test]
fn two_stacks_with_one_name_are_both_refused_naming_both_files() {
    let (_tmp, root) = tempdir();
    write(&root, "a/compose.yaml", &format!("name: web\n{WEB}"));
    write(
        &root,
        "b/stack.yaml",
        &manifest("web", "  compose: {services: {web: {image: busybox}}}\n"),
    );
    write(&root, "c/compose.yaml", WEB);
    let (stacks, errors) = load_origins(&discover(&root).unwrap(), &settings());
    assert_eq!(
        stacks.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    for error in &errors {
        assert_eq!(error.kind, "conflict");
        assert_eq!(error.stack, "web");
        assert!(
            error.error.contains(&root.join("a").display().to_string()),
            "{}",
            error.error
        );
        assert!(
            error
                .error
                .contains(&root.join("b/stack.yaml").display().to_string()),
            "{}",
            error.error
        );
        assert!(!error.files.is_empty());
    }
}

#[test]
fn a_broken_file_claiming_a_name_in_use_is_a_conflict_too() {
    let (_tmp, root) = tempdir();
    write(&root, "a/compose.yaml", &format!("name: web\n{WEB}"));
    write(
        &root,
        "b/stack.yaml",
        &manifest("web", "  compose: {services: {web: {image: [\n"),
    );
    let (stacks, errors) = load_origins(&discover(&root).unwrap(), &settings());
    assert!(stacks.is_empty(), "{stacks:?}");
    let kinds: BTreeSet<&str> = errors.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, BTreeSet::from(["conflict"]));
    let broken = errors
        .iter()
        .find(|e| matches!(e.origin, Origin::Manifest { .. }))
        .unwrap();
    assert!(broken.location.is_some(), "the parse error's place is kept");
}

#[test]
fn the_metadata_name_of_a_broken_manifest_is_guessed_from_its_lines() {
    assert_eq!(
        metadata_name("kind: Stack\nmetadata:\n  name: web # x\nspec: [\n").as_deref(),
        Some("web")
    );
    assert_eq!(
        metadata_name("metadata: {namespace: d, name: \"api\"}\n").as_deref(),
        Some("api")
    );
    assert_eq!(metadata_name("metadata:\nspec:\n  name: no\n"), None);
}
