//! A compose project under test: a unique project name, a private folder for
//! its files, commands against it, and cleanup that leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cmd::{compose_bin, docker, run, stackd_bin, workspace_root, Run};
use crate::engine::{self, Container, PROJECT_LABEL};
use crate::proxy::ApiProxy;

/// How long one stackd or compose command may run before it is killed.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(180);

/// Why e2e tests cannot run here, or `None` when they can: `STACKD_E2E=0`,
/// or a Docker engine that does not answer `docker info`.
pub fn skip_reason() -> Option<String> {
    if std::env::var("STACKD_E2E").is_ok_and(|v| v == "0") {
        return Some("STACKD_E2E=0".to_string());
    }
    engine::engine_unavailable()
}

/// Builds the test image once per test binary (`e2e/image/build.sh`, quick
/// when the image is current). `STACKD_E2E_IMAGE_READY=1` says the caller
/// (`just e2e`) already did.
pub fn ensure_image() -> Result<()> {
    static BUILT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if std::env::var("STACKD_E2E_IMAGE_READY").is_ok_and(|v| v == "1") {
                return Ok(());
            }
            let script = workspace_root().join("e2e").join("image").join("build.sh");
            let mut command = Command::new("bash");
            command.arg(&script);
            match run(command, Duration::from_secs(600)) {
                Ok(out) if out.success() => Ok(()),
                Ok(out) => Err(format!("{out}")),
                Err(err) => Err(format!("{err:#}")),
            }
        })
        .clone()
        .map_err(|err| anyhow::anyhow!("building the test image failed: {err}"))
}

/// Gets a test ready to use the engine: `None` (after printing why) when
/// e2e tests are skipped here, else the test image is built and `tag` comes
/// back in a form fit for project names (lowercase letters, digits, `-`).
pub(crate) fn prepare(tag: &str) -> Result<Option<String>> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping e2e test {tag}: {reason}");
        return Ok(None);
    }
    ensure_image()?;
    Ok(Some(
        tag.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect(),
    ))
}

/// A compose project owned by one test.
///
/// Its name is `e2e-<tag>-<pid>`, so concurrent tests and test binaries never
/// share objects. Dropping it runs `stackd down -v`, then removes with the
/// docker CLI whatever still carries the project label or the project's name
/// prefix, and the foreign objects the test registered.
pub struct Stack {
    name: String,
    dir: tempfile::TempDir,
    /// The `-f` files of every command, in merge order.
    files: Vec<&'static str>,
    stackd: PathBuf,
    foreign_containers: Vec<String>,
    foreign_volumes: Vec<String>,
}

impl Stack {
    /// A project with an empty folder; `None` (after printing why) when e2e
    /// tests are skipped here. Write its file with [`Stack::write_compose`].
    pub fn new(tag: &str) -> Result<Option<Self>> {
        let Some(tag) = prepare(tag)? else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("stackd-e2e-{tag}-"))
            .tempdir()?;
        Ok(Some(Self {
            name: format!("e2e-{tag}-{}", std::process::id()),
            dir,
            files: vec!["compose.yaml"],
            stackd: stackd_bin()?,
            foreign_containers: Vec::new(),
            foreign_volumes: Vec::new(),
        }))
    }

    /// A project whose folder is a copy of `manifests/<manifest>/` (so the
    /// test may edit it), with its `compose.yaml` as the compose file.
    pub fn from_manifest(tag: &str, manifest: &str) -> Result<Option<Self>> {
        let Some(stack) = Self::new(tag)? else {
            return Ok(None);
        };
        let source = workspace_root().join("manifests").join(manifest);
        copy_dir(&source, stack.dir()).with_context(|| format!("copying {}", source.display()))?;
        Ok(Some(stack))
    }

    /// Like [`Stack::from_manifest`], run as the busybox variant: every
    /// command merges the folder's `compose.busybox.yaml` over its
    /// `compose.yaml` (the real images), so it runs on the test image.
    pub fn from_busybox_manifest(tag: &str, manifest: &str) -> Result<Option<Self>> {
        let Some(mut stack) = Self::from_manifest(tag, manifest)? else {
            return Ok(None);
        };
        stack.files.push("compose.busybox.yaml");
        Ok(Some(stack))
    }

    /// The project name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The project folder (working directory of every command).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `compose.yaml` in the project folder.
    pub fn write_compose(&self, yaml: &str) -> Result<()> {
        self.write_file("compose.yaml", yaml)
    }

    /// Writes a file (relative to the project folder), creating folders.
    pub fn write_file(&self, relative: &str, content: &str) -> Result<()> {
        let path = self.dir().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads a file of the project folder.
    pub fn read_file(&self, relative: &str) -> Result<String> {
        let path = self.dir().join(relative);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// `-p NAME` and a `-f` per compose file.
    fn project_args(&self) -> Vec<&str> {
        let mut args = vec!["-p", self.name.as_str()];
        for file in &self.files {
            args.extend(["-f", *file]);
        }
        args
    }

    fn stackd_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.stackd);
        command
            .current_dir(self.dir())
            .args(self.project_args())
            .args(args)
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_PROFILES");
        command
    }

    /// `stackd -p NAME -f compose.yaml ARGS` (and `-f compose.busybox.yaml`
    /// for a busybox variant) in the project folder, whatever its exit status.
    pub fn stackd(&self, args: &[&str]) -> Result<Run> {
        run(self.stackd_command(args), COMMAND_DEADLINE)
    }

    /// `stackd ARGS` killed with SIGKILL once `after` has passed (when it
    /// is still running then), to leave a convergence half done.
    pub fn stackd_killed_after(&self, args: &[&str], after: Duration) -> Result<Run> {
        run(self.stackd_command(args), after)
    }

    /// Like [`Stack::stackd`], with the engine reached through `proxy`.
    pub fn stackd_via(&self, proxy: &ApiProxy, args: &[&str]) -> Result<Run> {
        let mut command = self.stackd_command(args);
        command.env("DOCKER_HOST", proxy.docker_host());
        run(command, COMMAND_DEADLINE)
    }

    /// Like [`Stack::stackd_killed_after`], with the engine reached through `proxy`.
    pub fn stackd_via_killed_after(
        &self,
        proxy: &ApiProxy,
        args: &[&str],
        after: Duration,
    ) -> Result<Run> {
        let mut command = self.stackd_command(args);
        command.env("DOCKER_HOST", proxy.docker_host());
        run(command, after)
    }

    /// `stackd up --wait`, which must succeed.
    pub fn up(&self) -> Result<Run> {
        self.stackd(&["up", "--wait"])?.ok()
    }

    /// `stackd down` (`-v` when `volumes`), which must succeed.
    pub fn down(&self, volumes: bool) -> Result<Run> {
        if volumes {
            self.stackd(&["down", "-v"])?.ok()
        } else {
            self.stackd(&["down"])?.ok()
        }
    }

    /// The reference `docker compose` with the same `-p` and `-f` flags as
    /// [`Stack::stackd`], whatever its exit status.
    pub fn compose(&self, args: &[&str]) -> Result<Run> {
        run(self.compose_command(args)?, COMMAND_DEADLINE)
    }

    /// Like [`Stack::compose`], with the engine reached through `proxy`.
    pub fn compose_via(&self, proxy: &ApiProxy, args: &[&str]) -> Result<Run> {
        let mut command = self.compose_command(args)?;
        command.env("DOCKER_HOST", proxy.docker_host());
        run(command, COMMAND_DEADLINE)
    }

    fn compose_command(&self, args: &[&str]) -> Result<Command> {
        let mut command = Command::new(compose_bin()?);
        command
            .current_dir(self.dir())
            .args(self.project_args())
            .args(args)
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_PROFILES");
        Ok(command)
    }

    /// Every container of the project, sorted by service and number.
    pub fn containers(&self) -> Result<Vec<Container>> {
        engine::containers_with_label(&format!("{PROJECT_LABEL}={}", self.name))
    }

    /// The containers of one service, sorted by number.
    pub fn service(&self, service: &str) -> Result<Vec<Container>> {
        Ok(self
            .containers()?
            .into_iter()
            .filter(|c| c.service == service)
            .collect())
    }

    /// Replica `number` of `service`; an error naming what exists when absent.
    pub fn container(&self, service: &str, number: u32) -> Result<Container> {
        let all = self.containers()?;
        let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
        all.into_iter()
            .find(|c| c.service == service && c.number == Some(number))
            .with_context(|| format!("no container {service} #{number} in {names:?}"))
    }

    /// The engine name of the project's volume `key` (`<project>_<key>`).
    pub fn volume_name(&self, key: &str) -> String {
        format!("{}_{key}", self.name)
    }

    /// Volumes carrying the project label.
    pub fn volumes(&self) -> Result<Vec<String>> {
        engine::volumes_with_label(&format!("{PROJECT_LABEL}={}", self.name))
    }

    /// Networks carrying the project label.
    pub fn networks(&self) -> Result<Vec<String>> {
        engine::networks_with_label(&format!("{PROJECT_LABEL}={}", self.name))
    }

    /// `docker run -d --name NAME ARGS...` of a container the project does
    /// not own (no compose labels), removed when the stack is dropped.
    pub fn run_foreign_container(&mut self, name: &str, args: &[&str]) -> Result<Container> {
        self.foreign_containers.push(name.to_string());
        let mut full = vec!["run", "-d", "--name", name];
        full.extend_from_slice(args);
        docker(&full)?.ok()?;
        engine::inspect_container(name)?
            .with_context(|| format!("{name} vanished after docker run"))
    }

    /// `docker volume create NAME` of a volume the project does not own,
    /// removed when the stack is dropped.
    pub fn create_foreign_volume(&mut self, name: &str) -> Result<()> {
        self.foreign_volumes.push(name.to_string());
        docker(&["volume", "create", name])?.ok()?;
        Ok(())
    }

    fn cleanup(&self) {
        let down = self.stackd(&["down", "-v"]);
        match down {
            Ok(run) if run.success() => {}
            Ok(run) => eprintln!("cleanup of {}: stackd down -v failed: {run}", self.name),
            Err(err) => eprintln!("cleanup of {}: stackd down -v: {err:#}", self.name),
        }
        let mut leftovers = Vec::new();
        let label = format!("label={PROJECT_LABEL}={}", self.name);
        let container_prefix = format!("{}-", self.name);
        let object_prefix = format!("{}_", self.name);

        let mut containers = self.foreign_containers.clone();
        containers.extend(listed(&[
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            &label,
        ]));
        containers.extend(
            listed(&["ps", "-a", "--format", "{{.Names}}"])
                .into_iter()
                .filter(|n| n.starts_with(&container_prefix)),
        );
        containers.sort();
        containers.dedup();
        for container in &containers {
            if remove(&["rm", "-f", "-v", container])
                && !self.foreign_containers.contains(container)
            {
                leftovers.push(format!("container {container}"));
            }
        }

        let mut networks = listed(&["network", "ls", "--format", "{{.Name}}", "--filter", &label]);
        networks.extend(
            listed(&["network", "ls", "--format", "{{.Name}}"])
                .into_iter()
                .filter(|n| n.starts_with(&object_prefix)),
        );
        networks.sort();
        networks.dedup();
        for network in &networks {
            if remove(&["network", "rm", network]) {
                leftovers.push(format!("network {network}"));
            }
        }

        let mut volumes = self.foreign_volumes.clone();
        volumes.extend(listed(&["volume", "ls", "-q", "--filter", &label]));
        volumes.extend(
            listed(&["volume", "ls", "-q"])
                .into_iter()
                .filter(|n| n.starts_with(&object_prefix)),
        );
        volumes.sort();
        volumes.dedup();
        for volume in &volumes {
            if remove(&["volume", "rm", "-f", volume]) && !self.foreign_volumes.contains(volume) {
                leftovers.push(format!("volume {volume}"));
            }
        }
        if !leftovers.is_empty() {
            eprintln!(
                "cleanup of {}: `stackd down -v` left {} (removed with the docker CLI)",
                self.name,
                leftovers.join(", ")
            );
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Lines of a docker CLI listing; empty when the command fails.
pub(crate) fn listed(args: &[&str]) -> Vec<String> {
    match docker(args) {
        Ok(out) if out.success() => out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Runs a docker CLI removal; true when it removed something.
pub(crate) fn remove(args: &[&str]) -> bool {
    match docker(args) {
        Ok(out) if out.success() => true,
        Ok(out) => {
            if !out.stderr.contains("No such") && !out.stderr.contains("not found") {
                eprintln!("cleanup: {out}");
            }
            false
        }
        Err(err) => {
            eprintln!("cleanup: docker {args:?}: {err:#}");
            false
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Polls `check` every 200 ms until it returns true or `timeout` passes.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if check()? {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Checks that `check` stays true for all of `period` (polling every
/// 200 ms): for what must not happen, such as a restart, given time in
/// which it would have happened.
pub fn holds_for(
    period: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if !check()? {
            bail!("{what} stopped holding after {:?}", started.elapsed());
        }
        if started.elapsed() > period {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `GET path` over HTTP/1.0 on 127.0.0.1:`port`; the response body on 200.
pub fn http_get(port: u16, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status_line = head.lines().next().unwrap_or_default();
    if !status_line.contains(" 200 ") {
        bail!("GET {path} on port {port}: {status_line}");
    }
    Ok(body.to_string())
}
