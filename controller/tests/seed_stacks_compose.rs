//! The seed stacks load as docker compose loads them: `stackd config
//! --format json` prints what the reference `docker compose config --format
//! json` prints for every way the repository tells users to load them
//! (several `-f` files merged, a per-environment `--env-file`, the busybox
//! variants). Without the reference binary (`STACKD_COMPOSE_BIN`, or the
//! Python `compose` package) the test skips, unless `CI` is set.
// A test harness reports by panicking, helpers included.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// (stack folder, arguments before `config`).
const LOADS: [(&str, &[&str]); 13] = [
    ("agents", &["-f", "compose.yaml"]),
    (
        "agents",
        &["-f", "compose.yaml", "-f", "compose.busybox.yaml"],
    ),
    ("coordination", &["-f", "compose.yaml"]),
    (
        "coordination",
        &["-f", "compose.yaml", "-f", "compose.busybox.yaml"],
    ),
    ("orchestrator", &["-f", "compose.yaml"]),
    (
        "orchestrator",
        &["-f", "compose.yaml", "-f", "compose.busybox.yaml"],
    ),
    ("toolhub", &["-f", "compose.yaml"]),
    ("toolhub", &["-f", "compose.yaml", "-f", "compose.dev.yaml"]),
    (
        "toolhub",
        &[
            "-f",
            "compose.yaml",
            "-f",
            "compose.prod.yaml",
            "-f",
            "compose.monitoring.yaml",
            "-f",
            "compose.busybox.yaml",
        ],
    ),
    ("writing", &["-f", "compose.yaml"]),
    (
        "writing",
        &["-f", "compose.yaml", "--env-file", ".env.prod"],
    ),
    (
        "writing",
        &[
            "-f",
            "compose.yaml",
            "-f",
            "compose.busybox.yaml",
            "--env-file",
            ".env.dev",
        ],
    ),
    (
        "writing",
        &[
            "-f",
            "compose.yaml",
            "-f",
            "compose.busybox.yaml",
            "--env-file",
            ".env.prod",
        ],
    ),
];

/// `STACKD_COMPOSE_BIN`, else `docker-compose` in the Python `compose` package.
fn reference_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("STACKD_COMPOSE_BIN") {
        return Some(PathBuf::from(bin)).filter(|p| p.is_file());
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import compose,os;print(os.path.dirname(compose.__file__))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Some(Path::new(&dir).join("docker-compose")).filter(|p| p.is_file())
}

/// `BINARY ARGS config --format json` in `dir`, the environment reduced to
/// `PATH` and a home that does not exist, parsed.
fn config(binary: &Path, dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(binary)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent/seed-stacks-home")
        .args(args)
        .args(["config", "--format", "json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} config failed in {}: {}",
        binary.display(),
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_documented_load_of_the_seed_stacks_matches_docker_compose() {
    let Some(reference) = reference_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the reference docker compose is missing (STACKD_COMPOSE_BIN) and CI is set"
        );
        eprintln!("skipped: no reference docker compose (STACKD_COMPOSE_BIN)");
        return;
    };
    let stackd = Path::new(env!("CARGO_BIN_EXE_stackd"));
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    let mut differing = Vec::new();
    for (stack, args) in LOADS {
        let dir = manifests.join(stack);
        let ours = config(stackd, &dir, args);
        let theirs = config(&reference, &dir, args);
        if ours != theirs {
            differing.push(format!("{stack} {args:?}"));
        }
    }
    assert!(
        differing.is_empty(),
        "stackd config differs from docker compose config for: {}",
        differing.join("; ")
    );
}
