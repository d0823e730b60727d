//! The stackd container image (`image/build.sh`: the static binary in the
//! Dockerfile's `FROM scratch` stage) on the local engine: `stackd watch
//! /stacks` runs in a container as user 65532 with the Docker socket
//! mounted, converges a stack from a bind-mounted directory, writes its
//! status to a bind-mounted state directory, and serves `/healthz` and
//! `/metrics` on a published port. Everything it made is removed after.
//! The binary links glibc statically: a second test shows it still
//! resolves names in the empty image (`/etc/hosts` and the engine's DNS).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use stackd_e2e::{
    containers_with_label, docker, docker_ok, http_get, run, skip_reason, stackd_bin, wait_until,
    workspace_root, IDLE_COMMAND, IMAGE, PROJECT_LABEL,
};

/// The image under test (what `just image` tags).
const STACKD_IMAGE: &str = "stackd:latest";

/// The port the image's default command serves metrics on.
const METRICS_PORT: &str = "9477/tcp";

/// Everything one test run creates, removed when dropped: the controller
/// container, the stack's containers and networks, and the directories.
struct ImageRun {
    prefix: String,
    controller: String,
    dir: tempfile::TempDir,
}

impl ImageRun {
    fn new(tag: &str) -> Result<Self> {
        let prefix = format!("e2e-image-{tag}-{}", std::process::id());
        let dir = tempfile::Builder::new().prefix("stackd-image-").tempdir()?;
        Ok(Self {
            controller: format!("{prefix}-controller"),
            prefix,
            dir,
        })
    }

    fn stacks(&self) -> PathBuf {
        self.dir.path().join("stacks")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn logs(&self) -> String {
        docker(&["logs", &self.controller])
            .map(|r| r.output())
            .unwrap_or_default()
    }
}

impl Drop for ImageRun {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.controller]);
        if let Ok(out) = docker(&["ps", "-a", "--format", "{{.Names}}"]) {
            for name in out.stdout.lines().filter(|n| n.starts_with(&self.prefix)) {
                let _ = docker(&["rm", "-f", "-v", name]);
            }
        }
        if let Ok(out) = docker(&["network", "ls", "--format", "{{.Name}}"]) {
            for name in out.stdout.lines().filter(|n| n.starts_with(&self.prefix)) {
                let _ = docker(&["network", "rm", name]);
            }
        }
    }
}

/// The engine's unix socket, as the docker CLI here reaches it.
fn engine_socket() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => PathBuf::from(&host["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

/// Builds (or finds current) the image with `image/build.sh`, once per
/// test binary; `false` (after saying why) when e2e tests skip here.
fn image_ready() -> Result<bool> {
    static BUILT: OnceLock<std::result::Result<bool, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(reason) = skip_reason() {
                eprintln!("skipping the image tests: {reason}");
                return Ok(false);
            }
            let build = || -> Result<()> {
                stackd_e2e::ensure_image()?;
                let started = Instant::now();
                let mut command = Command::new("bash");
                command.arg(workspace_root().join("image/build.sh"));
                // A cold static release build takes minutes on two cores.
                let out = run(command, Duration::from_secs(3600))?.ok()?;
                eprintln!("{} ({:.1?})", out.stdout.trim_end(), started.elapsed());
                Ok(())
            };
            build().map(|()| true).map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("building the stackd image failed: {e}"))
}

/// `stackd status NAME --format json` read from the host's view of the
/// state directory; `None` while there is no status file.
fn status(state: &Path, stack: &str) -> Result<Option<Value>> {
    let mut command = Command::new(stackd_bin()?);
    command
        .args(["status", stack, "--format", "json", "--state-dir"])
        .arg(state);
    let out = run(command, Duration::from_secs(30))?;
    if !out.success() {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&out.stdout)?))
}

fn ready(status: &Value) -> bool {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

#[test]
fn the_image_converges_a_stack_on_the_local_engine_through_the_mounted_socket() -> Result<()> {
    if !image_ready()? {
        return Ok(());
    }

    let config: Value = serde_json::from_str(&docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config}}",
        STACKD_IMAGE,
    ])?)?;
    ensure!(config["User"] == "65532:65532", "image user: {config}");
    let layers = docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{len .RootFS.Layers}}",
        STACKD_IMAGE,
    ])?;
    ensure!(
        layers.trim() == "2",
        "a scratch image of the binary and the state dir has two layers, not {layers}"
    );

    let test = ImageRun::new("watch")?;
    let stack = format!("{}-app", test.prefix);
    let stack_dir = test.stacks().join(&stack);
    std::fs::create_dir_all(&stack_dir)?;
    std::fs::write(
        stack_dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n    \
             healthcheck: {{test: [\"CMD\", \"true\"], interval: 1s}}\n  worker:\n    image: {IMAGE}\n    \
             pull_policy: never\n    command: {IDLE_COMMAND}\n    deploy: {{replicas: 2}}\n"
        ),
    )?;
    // The controller runs as 65532 and writes its state files here.
    std::fs::create_dir(test.state())?;
    std::fs::set_permissions(
        test.state(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )?;

    let socket = engine_socket();
    let gid = std::fs::metadata(&socket)
        .with_context(|| format!("the engine socket {}", socket.display()))?
        .gid()
        .to_string();
    let socket_mount = format!("{}:/var/run/docker.sock", socket.display());
    let stacks_mount = format!("{}:/stacks:ro", test.stacks().display());
    let state_mount = format!("{}:/state", test.state().display());
    // The image's default command: `watch /stacks --state-dir /state
    // --metrics-addr 0.0.0.0:9477`.
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &test.controller,
        "--group-add",
        &gid,
        "-v",
        &socket_mount,
        "-v",
        &stacks_mount,
        "-v",
        &state_mount,
        "-e",
        "RUST_LOG=info",
        "-p",
        "127.0.0.1::9477",
        STACKD_IMAGE,
    ])?;
    let published = docker_ok(&["port", &test.controller, METRICS_PORT])?;
    let port: u16 = published
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .with_context(|| format!("no published port in {published:?}"))?;

    wait_until(
        Duration::from_secs(30),
        "/healthz on the published port",
        || Ok(http_get(port, "/healthz").is_ok()),
    )
    .with_context(|| test.logs())?;
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = status(&test.state(), &stack)? {
            if ready(&status) {
                break status;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{stack} not Ready within 90 s; status {:?}\ncontroller log:\n{}",
                status(&test.state(), &stack)?,
                test.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    ensure!(status["services"]["worker"]["ready"] == 2, "{status:#}");

    let containers = containers_with_label(&format!("{PROJECT_LABEL}={stack}"))?;
    let mut names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    ensure!(
        names
            == [
                format!("{stack}-web-1"),
                format!("{stack}-worker-1"),
                format!("{stack}-worker-2")
            ],
        "{names:?}"
    );
    ensure!(containers.iter().all(|c| c.is_running()), "{containers:?}");
    // The status file is the controller's, written as the image's user.
    let owner = std::fs::read_dir(test.state())?
        .filter_map(|e| e.ok())
        .map(|e| e.metadata().map(|m| m.uid()))
        .collect::<std::io::Result<Vec<u32>>>()?;
    ensure!(
        !owner.is_empty() && owner.iter().all(|uid| *uid == 65532),
        "state file owners {owner:?}"
    );
    let metrics = http_get(port, "/metrics")?;
    let ready_line = format!("stackd_stack_ready{{stack=\"{stack}\"}} 1");
    ensure!(metrics.contains(&ready_line), "{metrics}");
    ensure!(http_get(port, "/readyz").is_ok(), "{}", test.logs());

    // SIGTERM (docker stop) ends the controller cleanly and leaves the
    // stack running.
    docker_ok(&["stop", "-t", "20", &test.controller])?;
    let exit = docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &test.controller])?;
    ensure!(exit.trim() == "0", "exit {exit}: {}", test.logs());
    let running = containers_with_label(&format!("{PROJECT_LABEL}={stack}"))?;
    ensure!(running.len() == 3 && running.iter().all(|c| c.is_running()));
    Ok(())
}

#[test]
fn the_static_binary_resolves_names_in_the_empty_image() -> Result<()> {
    if !image_ready()? {
        return Ok(());
    }
    let test = ImageRun::new("dns")?;
    let network = format!("{}-net", test.prefix);
    docker_ok(&["network", "create", &network])?;
    // An alias only the engine's DNS server knows (it is not in the
    // container's /etc/hosts), then `localhost`, which only /etc/hosts has.
    let alias = format!("{}-alias", test.prefix);
    let addr = format!("{alias}:9477");
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &test.controller,
        "--network",
        &network,
        "--network-alias",
        &alias,
        STACKD_IMAGE,
        "watch",
        "/state",
        "--state-dir",
        "/state",
        "--metrics-addr",
        &addr,
    ])?;
    let url = format!("http://{alias}:9477/healthz");
    let probe = format!("{}-probe", test.prefix);
    let mut answer = String::new();
    wait_until(Duration::from_secs(30), "/healthz on the alias", || {
        let out = docker(&[
            "run",
            "--rm",
            "--name",
            &probe,
            "--network",
            &network,
            IMAGE,
            "wget",
            "-qO-",
            &url,
        ])?;
        answer = out.output();
        Ok(out.success())
    })
    .with_context(|| format!("{answer}\ncontroller log:\n{}", test.logs()))?;
    ensure!(answer.trim() == "ok", "{answer}");
    docker_ok(&["rm", "-f", &test.controller])?;

    let localhost = format!("{}-localhost", test.prefix);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &localhost,
        STACKD_IMAGE,
        "watch",
        "/state",
        "--state-dir",
        "/state",
        "--metrics-addr",
        "localhost:9477",
    ])?;
    let url = "http://127.0.0.1:9477/healthz";
    let container = format!("container:{localhost}");
    wait_until(Duration::from_secs(30), "/healthz on localhost", || {
        let out = docker(&[
            "run",
            "--rm",
            "--network",
            &container,
            IMAGE,
            "wget",
            "-qO-",
            url,
        ])?;
        answer = out.output();
        Ok(out.success())
    })
    .with_context(|| answer.clone())?;
    // A name nobody knows fails with the resolver's own answer.
    let unknown = format!("{}-unknown", test.prefix);
    let out = docker(&[
        "run",
        "--rm",
        "--name",
        &unknown,
        "--network",
        &network,
        STACKD_IMAGE,
        "watch",
        "/state",
        "--state-dir",
        "/state",
        "--metrics-addr",
        "no-such-host.invalid:9477",
    ])?;
    ensure!(!out.success(), "{out}");
    ensure!(out.output().contains("no-such-host.invalid:9477"), "{out}");
    Ok(())
}
