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
fn the_controller_without_a_cluster_to_talk_to_exits_1_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stackd"))
        .args(["controller", "--metrics-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", dir.path().join("missing"))
        .env("HOME", dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("stackd: cannot configure a Kubernetes client"),
        "{}",
        text(&out.stderr)
    );
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
        "manifests/agents/stack.yaml is stale: regenerate it with `just generate`"
    );
}

#[test]
fn validate_accepts_every_seed_stack_in_manifests() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = stackd(&repo, &["validate", "manifests"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

mod status {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::process::{Command, Output};

    use stackd::reconcile::state_file;
    use stackd::status::{self, LastError, ServiceStatus, StackStatus};

    use super::{stackd, text};

    const T0: &str = "2026-11-25T16:30:00Z";

    fn ready_stack(name: &str, ready: u32, desired: u32) -> StackStatus {
        let mut s = StackStatus::new(name, &format!("stacks/{name}.yaml"), &T0.into());
        s.observe_spec("h1");
        let services = BTreeMap::from([(
            "web".to_string(),
            ServiceStatus {
                desired,
                ready,
                image: "stackd-busybox:latest".into(),
            },
        )]);
        s.ready(services, &T0.into());
        s
    }

    fn stalled_stack(name: &str) -> StackStatus {
        let mut s = ready_stack(name, 1, 1);
        s.observe_spec("h2");
        let error = LastError {
            message: format!("stacks/{name}.yaml:4:9: undefined network \"back\""),
            file: Some(format!("stacks/{name}.yaml")),
            line: Some(4),
            column: Some(9),
            at: T0.into(),
        };
        s.stalled(status::reason::LOAD_FAILED, error, &T0.into());
        s
    }

    fn state_dir(stacks: &[StackStatus]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for s in stacks {
            state_file::write(dir.path(), s).unwrap();
        }
        dir
    }

    fn status_in(dir: &Path, args: &[&str]) -> Output {
        let d = dir.to_str().unwrap();
        let mut all = vec!["status", "--state-dir", d];
        all.extend_from_slice(args);
        stackd(Path::new("."), &all)
    }

    #[test]
    fn the_table_lists_every_stack_with_its_state() {
        let dir = state_dir(&[stalled_stack("web"), ready_stack("agents", 2, 2)]);
        let out = status_in(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "NAME",
                "READY",
                "STATUS",
                "SERVICES",
                "GENERATION",
                "SINCE",
                "MESSAGE"
            ]
        );
        let agents: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(agents[..5], ["agents", "True", "Succeeded", "2/2", "1"]);
        let web: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(web[..5], ["web", "False", "LoadFailed", "1/1", "2"]);
        assert!(lines[2].ends_with("stacks/web.yaml:4:9: undefined network \"back\""));
        // Columns line up: every row's STATUS starts where the header's does.
        let column = lines[0].find("STATUS").unwrap();
        assert_eq!(lines[1].find("Succeeded"), Some(column));
        assert_eq!(lines[2].find("LoadFailed"), Some(column));
    }

    #[test]
    fn json_is_an_array_for_all_and_an_object_for_one() {
        let dir = state_dir(&[ready_stack("a", 1, 1), stalled_stack("b")]);
        let out = status_in(dir.path(), &["--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(all.as_array().unwrap().len(), 2);
        assert_eq!(all[1]["stack"], "b");
        assert_eq!(all[1]["observedGeneration"], 2);
        assert_eq!(all[1]["lastError"]["line"], 4);

        let out = status_in(dir.path(), &["b", "--format", "json"]);
        let one: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(one["stack"], "b");
        let stalled = one["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Stalled")
            .unwrap();
        assert_eq!(stalled["status"], "True");
        assert_eq!(stalled["reason"], "LoadFailed");
        assert_eq!(stalled["lastTransitionTime"], T0);
    }

    #[test]
    fn yaml_for_one_stack_is_its_state_file() {
        let dir = state_dir(&[stalled_stack("web")]);
        let out = status_in(dir.path(), &["web", "--format", "yaml"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let file = std::fs::read_to_string(dir.path().join("web.yaml")).unwrap();
        assert_eq!(text(&out.stdout), file);
        assert_eq!(
            status::from_yaml(&text(&out.stdout)).unwrap(),
            stalled_stack("web")
        );
    }

    #[test]
    fn yaml_for_all_stacks_is_a_list() {
        let dir = state_dir(&[ready_stack("a", 1, 1), ready_stack("b", 0, 1)]);
        let out = status_in(dir.path(), &["--format", "yaml"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let all: Vec<StackStatus> = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
        assert_eq!(all, [ready_stack("a", 1, 1), ready_stack("b", 0, 1)]);
    }

    #[test]
    fn a_stack_without_status_exits_1_and_says_where_it_looked() {
        let dir = state_dir(&[ready_stack("a", 1, 1)]);
        let out = status_in(dir.path(), &["missing"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("stackd: stack \"missing\" has no status in "),
            "{stderr}"
        );
        assert!(stderr.contains(dir.path().to_str().unwrap()), "{stderr}");
    }

    #[test]
    fn a_corrupt_state_file_exits_1_naming_it() {
        let dir = state_dir(&[ready_stack("a", 1, 1)]);
        std::fs::write(dir.path().join("broken.yaml"), "conditions: {\n").unwrap();
        let out = status_in(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("broken.yaml: corrupt state file"),
            "{stderr}"
        );
        let one = status_in(dir.path(), &["a"]);
        assert_eq!(one.status.code(), Some(0), "another stack still shows");
    }

    #[test]
    fn no_stacks_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("never-written");
        let out = status_in(&empty, &[]);
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stdout.is_empty());
        assert!(text(&out.stderr).starts_with("no stacks have a status in "));
        let json = status_in(&empty, &["--format", "json"]);
        assert_eq!(text(&json.stdout), "[]\n");
    }

    #[test]
    fn without_state_dir_the_xdg_state_directory_is_read() {
        let state = tempfile::tempdir().unwrap();
        state_file::write(&state.path().join("stackd"), &ready_stack("xdg", 1, 1)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_stackd"))
            .args(["status", "xdg", "--format", "json"])
            .env("XDG_STATE_HOME", state.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let one: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(one["stack"], "xdg");
    }
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

#[test]
fn completions_print_a_script_naming_the_subcommands_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = stackd(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for name in [
            "up",
            "down",
            "watch",
            "convert",
            "controller",
            "completions",
        ] {
            assert!(script.contains(name), "{shell} script does not name {name}");
        }
    }
    let out = stackd(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_systemd_unit_runs_a_watch_command_line_stackd_accepts() {
    use clap::Parser;
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/systemd/stackd-watch.service"),
    )
    .unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart line");
    // systemd expands ${STATE_DIRECTORY} from StateDirectory=stackd.
    assert!(unit.contains("\nStateDirectory=stackd\n"));
    let line = exec.replace("${STATE_DIRECTORY}", "/var/lib/stackd");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0], "/usr/local/bin/stackd");
    let cli = stackd::cli::Cli::try_parse_from(&words).unwrap();
    let stackd::cli::Command::Watch(args) = cli.command else {
        panic!("ExecStart runs {:?}, not watch", words.get(1));
    };
    assert_eq!(
        args.state_dir.as_deref(),
        Some(Path::new("/var/lib/stackd"))
    );
}
