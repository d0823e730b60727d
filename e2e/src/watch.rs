//! A `stackd watch` under test: a private directory of stacks, a state
//! directory, a free metrics port, the controller as a child process (through
//! a proxy when asked), and cleanup of every stack it ran.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cmd::{docker, run, stackd_bin};
use crate::engine::{containers_matching, containers_with_label, Container, PROJECT_LABEL};
use crate::stack::{http_get, listed, prepare, remove, COMMAND_DEADLINE};
use crate::time::Timestamp;

/// A directory watched by one `stackd watch` process.
///
/// Stacks are compose folders named `e2e-<tag>-<pid>-<short>` (the folder
/// name is the project name), so tests never share engine objects. Dropping
/// it kills the controller and removes everything those projects left.
pub struct WatchDir {
    prefix: String,
    root: tempfile::TempDir,
    stackd: PathBuf,
    child: Option<Child>,
    port: u16,
    docker_host: Option<String>,
    log_filter: Option<String>,
}

impl WatchDir {
    /// An empty watched directory; `None` (after printing why) when e2e
    /// tests are skipped here. Nothing runs until [`WatchDir::start`].
    pub fn new(tag: &str) -> Result<Option<Self>> {
        let Some(tag) = prepare(tag)? else {
            return Ok(None);
        };
        let root = tempfile::Builder::new()
            .prefix(&format!("stackd-watch-{tag}-"))
            .tempdir()?;
        std::fs::create_dir_all(root.path().join("stacks"))?;
        Ok(Some(Self {
            prefix: format!("e2e-{tag}-{}", std::process::id()),
            root,
            stackd: stackd_bin()?,
            child: None,
            port: free_port()?,
            docker_host: None,
            log_filter: None,
        }))
    }

    /// The watched directory.
    pub fn dir(&self) -> PathBuf {
        self.root.path().join("stacks")
    }

    /// The state directory the controller writes status files to.
    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// The controller's log file (stderr).
    pub fn log_path(&self) -> PathBuf {
        self.root.path().join("watch.log")
    }

    /// The controller's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The project (and stack) name of the folder `short`.
    pub fn stack(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// The folder of stack `short`.
    pub fn stack_dir(&self, short: &str) -> PathBuf {
        self.dir().join(self.stack(short))
    }

    /// Writes `compose.yaml` of stack `short` in place (creating its
    /// folder); returns the stack's name.
    pub fn write_compose(&self, short: &str, yaml: &str) -> Result<String> {
        self.write_file(short, "compose.yaml", yaml)?;
        Ok(self.stack(short))
    }

    /// Writes a file of stack `short` in place.
    pub fn write_file(&self, short: &str, relative: &str, content: &str) -> Result<()> {
        let path = self.stack_dir(short).join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
    }

    /// Saves a file of stack `short` the way editors do: write a temporary
    /// file beside it, then rename it over the target.
    pub fn save_by_rename(&self, short: &str, relative: &str, content: &str) -> Result<()> {
        let path = self.stack_dir(short).join(relative);
        let temp = path.with_extension("swp~");
        std::fs::write(&temp, content)?;
        std::fs::rename(&temp, &path).with_context(|| format!("renaming over {}", path.display()))
    }

    /// Writes a Stack manifest `stack.yaml` in stack `short`'s folder,
    /// named as the folder's stack would be, with `spec` (YAML lines
    /// indented as the children of `spec:`); returns the stack's name.
    pub fn write_manifest(&self, short: &str, spec: &str) -> Result<String> {
        let name = self.stack(short);
        let text = format!(
            "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata:\n  name: {name}\nspec:\n{spec}"
        );
        self.write_file(short, "stack.yaml", &text)?;
        Ok(name)
    }

    /// A file outside the watched directory (beside it), for stacks that
    /// read files from elsewhere (`env_file: ../../shared.env`).
    pub fn outside_path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Deletes stack `short`'s folder.
    pub fn remove_stack(&self, short: &str) -> Result<()> {
        std::fs::remove_dir_all(self.stack_dir(short))
            .with_context(|| format!("removing {}", self.stack_dir(short).display()))
    }

    /// Makes the controller reach the engine at `host` (`unix:///...`, a proxy).
    pub fn set_docker_host(&mut self, host: &str) {
        self.docker_host = Some(host.to_owned());
    }

    /// Runs the controller with `RUST_LOG=filter` (default: `$STACKD_E2E_LOG` or `info`).
    pub fn set_log_filter(&mut self, filter: &str) {
        self.log_filter = Some(filter.to_owned());
    }

    /// The metrics port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts `stackd watch DIR --state-dir S --metrics-addr 127.0.0.1:PORT
    /// EXTRA...` and waits until `/healthz` answers.
    pub fn start(&mut self, extra: &[&str]) -> Result<()> {
        if self.child.is_some() {
            bail!("the controller is already running");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut command = Command::new(&self.stackd);
        command
            .arg("watch")
            .arg(self.dir())
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(extra)
            .env(
                "RUST_LOG",
                self.log_filter.clone().unwrap_or_else(|| {
                    std::env::var("STACKD_E2E_LOG").unwrap_or_else(|_| "info".into())
                }),
            )
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_PROFILES")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(host) = &self.docker_host {
            command.env("DOCKER_HOST", host);
        }
        self.child = Some(command.spawn().context("spawning stackd watch")?);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http_get(self.port, "/healthz").is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!("stackd watch exited ({status}) at start:\n{}", self.log());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "stackd watch did not serve /healthz within 30 s:\n{}",
            self.log()
        )
    }

    /// The controller's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM and waits (up to 30 s) for the controller to exit.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("the controller is not running");
        };
        let pid = child.id().to_string();
        run(
            {
                let mut kill = Command::new("kill");
                kill.args(["-TERM", &pid]);
                kill
            },
            Duration::from_secs(5),
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!(
                    "stackd watch did not exit within 30 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the controller with SIGKILL (a crash) and reaps it.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// `stackd status NAME --format json` from the state directory; `None`
    /// while the stack has no status file yet.
    pub fn status(&self, stack: &str) -> Result<Option<Value>> {
        let mut command = Command::new(&self.stackd);
        command
            .arg("status")
            .arg(stack)
            .arg("--state-dir")
            .arg(self.state_dir())
            .args(["--format", "json"]);
        let out = run(command, COMMAND_DEADLINE)?;
        if !out.success() {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&out.stdout).with_context(
            || format!("stackd status printed no JSON: {out}"),
        )?))
    }

    /// The status of condition `kind` (`Ready`, `Stalled`, ...) with its reason.
    pub fn condition(&self, stack: &str, kind: &str) -> Result<Option<(String, String)>> {
        let Some(status) = self.status(stack)? else {
            return Ok(None);
        };
        Ok(condition_of(&status, kind))
    }

    /// Waits until `stack`'s status has condition `kind` True; returns the status.
    pub fn wait_condition(&self, stack: &str, kind: &str, within: Duration) -> Result<Value> {
        let deadline = Instant::now() + within;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(status) = self.status(stack)? {
                if condition_of(&status, kind).is_some_and(|(s, _)| s == "True") {
                    return Ok(status);
                }
                last = Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{stack}: {kind} not True within {within:?}; last status {last:#?}\nlog:\n{}",
            self.log()
        )
    }

    /// The `/metrics` page.
    pub fn metrics(&self) -> Result<String> {
        http_get(self.port, "/metrics")
    }

    /// The value of the sample whose name and labels start with `prefix`
    /// (`stackd_source_errors_total{kind="parse",stack="x"}`); labels print
    /// sorted by name.
    pub fn metric(&self, prefix: &str) -> Result<Option<f64>> {
        Ok(self
            .metrics()?
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok()))
    }

    /// The sum of every sample of metric `name` (a counter or gauge, not a
    /// histogram's parts) labelled `stack="<stack>"`; 0 when there is none.
    pub fn metric_sum(&self, name: &str, stack: &str) -> Result<f64> {
        let text = self.metrics()?;
        Ok(sum_of(&text, name, stack))
    }

    /// How many reconciles of `stack` finished, whatever their result.
    pub fn reconciles(&self, stack: &str) -> Result<f64> {
        self.metric_sum("stackd_reconcile_total", stack)
    }

    /// Waits until `stack`'s reconcile count has not moved for `quiet`
    /// (the reconciles a start or a change set off are over); returns it.
    pub fn settled_reconciles(
        &self,
        stack: &str,
        quiet: Duration,
        within: Duration,
    ) -> Result<f64> {
        let deadline = Instant::now() + within;
        let mut last = self.reconciles(stack)?;
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.reconciles(stack)?;
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return Ok(now);
            }
            if Instant::now() > deadline {
                bail!(
                    "{stack}: reconciles did not settle within {within:?} (at {now})\nlog:\n{}",
                    self.log()
                );
            }
        }
    }

    /// The generation of `stack`'s status now (0 without a status).
    pub fn generation(&self, stack: &str) -> Result<u64> {
        Ok(self
            .status(stack)?
            .and_then(|s| s["generation"].as_u64())
            .unwrap_or_default())
    }

    /// Waits until `stack` is Ready with `observedGeneration` at least
    /// `generation` (a change was applied, not only the state before it
    /// reported); returns the status.
    pub fn wait_ready_at(&self, stack: &str, generation: u64, within: Duration) -> Result<Value> {
        let deadline = Instant::now() + within;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(status) = self.status(stack)? {
                let observed = status["observedGeneration"].as_u64().unwrap_or_default();
                let ready = condition_of(&status, "Ready").is_some_and(|(s, _)| s == "True");
                if ready && observed >= generation {
                    return Ok(status);
                }
                last = Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{stack}: not Ready at generation {generation} within {within:?}; last status {last:#?}\nlog:\n{}",
            self.log()
        )
    }

    /// Waits until `stack` has no status file (its stack was torn down).
    pub fn wait_status_gone(&self, stack: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.status(stack)?.is_none() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{stack}: status file still there after {within:?}\nlog:\n{}",
            self.log()
        )
    }

    /// `GET /readyz`: the body on 200, an error otherwise.
    pub fn readyz(&self) -> Result<String> {
        http_get(self.port, "/readyz")
    }

    /// Each container of `stack` by name: id, state and start time, to
    /// compare before and after (nothing recreated, nothing restarted).
    pub fn snapshot(&self, stack: &str) -> Result<BTreeMap<String, Snapshot>> {
        Ok(self
            .containers(stack)?
            .into_iter()
            .map(|c| {
                (
                    c.name.clone(),
                    Snapshot {
                        id: c.id.clone(),
                        status: c.status.clone(),
                        started_at: c.started_at,
                    },
                )
            })
            .collect())
    }

    /// The containers of `stack`.
    pub fn containers(&self, stack: &str) -> Result<Vec<Container>> {
        containers_with_label(&format!("{PROJECT_LABEL}={stack}"))
    }

    /// Why `stack` has not converged to `services` yet; `None` once it has:
    /// its containers are as [`containers_unconverged`] wants them and the
    /// status is Ready for the latest generation.
    pub fn unconverged(
        &self,
        stack: &str,
        services: &BTreeMap<String, Expected>,
    ) -> Result<Option<String>> {
        let containers = self.containers(stack)?;
        if let Some(why) = containers_unconverged(stack, &containers, services) {
            return Ok(Some(why));
        }
        let Some(status) = self.status(stack)? else {
            return Ok(Some("no status yet".into()));
        };
        let ready = condition_of(&status, "Ready").is_some_and(|(s, _)| s == "True");
        if !ready || status["observedGeneration"] != status["generation"] {
            return Ok(Some(format!(
                "status not Ready for generation {}: {}",
                status["generation"], status["conditions"]
            )));
        }
        Ok(None)
    }

    /// Every container of every stack of this directory, in one listing:
    /// cheaper than [`WatchDir::containers`] per stack when there are many.
    pub fn all_containers(&self) -> Result<Vec<Container>> {
        let mut containers = containers_matching(&[
            format!("label={PROJECT_LABEL}"),
            format!("name={}-", self.prefix),
        ])?;
        // The name filter matches anywhere in the name; the project decides.
        containers.retain(|c| {
            c.labels
                .get(PROJECT_LABEL)
                .is_some_and(|p| p.starts_with(&format!("{}-", self.prefix)))
        });
        Ok(containers)
    }

    /// The sum of every sample of metric `name` over all its labels (a
    /// counter or gauge, not a histogram's parts); 0 when there is none.
    pub fn metric_total(&self, name: &str) -> Result<f64> {
        let head = format!("{name}{{");
        Ok(self
            .metrics()?
            .lines()
            .filter(|line| line.starts_with(&head) || line.starts_with(&format!("{name} ")))
            .filter_map(|line| line.rsplit(' ').next())
            .filter_map(|value| value.parse::<f64>().ok())
            .sum())
    }

    /// The controller's resident set size in KiB (`VmRSS` of
    /// `/proc/PID/status`), while it runs.
    pub fn rss_kib(&self) -> Result<Option<u64>> {
        let Some(pid) = self.pid() else {
            return Ok(None);
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        Ok(status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok()))
    }

    fn cleanup(&mut self) {
        let _ = self.kill();
        let containers: Vec<String> = listed(&["ps", "-a", "--format", "{{.Names}}"])
            .into_iter()
            .filter(|n| n.starts_with(&self.prefix) || n.contains(&format!("_{}", self.prefix)))
            .collect();
        for container in &containers {
            remove(&["rm", "-f", "-v", container]);
        }
        for network in listed(&["network", "ls", "--format", "{{.Name}}"]) {
            if network.starts_with(&self.prefix) {
                remove(&["network", "rm", &network]);
            }
        }
        for volume in listed(&["volume", "ls", "-q"]) {
            if volume.starts_with(&self.prefix) {
                remove(&["volume", "rm", "-f", &volume]);
            }
        }
    }
}

impl Drop for WatchDir {
    fn drop(&mut self) {
        if std::env::var("STACKD_E2E_KEEP_LOG").is_ok() {
            eprintln!("stackd watch log:\n{}", self.log());
        }
        self.cleanup();
    }
}

/// What [`WatchDir::snapshot`] records of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Full id: a new one means the container was recreated.
    pub id: String,
    /// `.State.Status`.
    pub status: String,
    /// `.State.StartedAt`: a later one means it was (re)started.
    pub started_at: Timestamp,
}

/// The sum of the samples of `name` labelled `stack="<stack>"` in a
/// text-format scrape.
pub fn sum_of(text: &str, name: &str, stack: &str) -> f64 {
    let head = format!("{name}{{");
    let label = format!("stack=\"{stack}\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(&head))
        .filter_map(|rest| rest.split_once('}'))
        // Label values here (names, kinds, results) hold no commas.
        .filter(|(labels, _)| labels.split(',').any(|pair| pair == label))
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum()
}

fn condition_of(status: &Value, kind: &str) -> Option<(String, String)> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// A service as a converged stack runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Replicas, numbered from 1.
    pub replicas: u32,
    /// Environment entries every replica has.
    pub env: Vec<(String, String)>,
}

impl Expected {
    /// `replicas` replicas whose variable `key` is `value`.
    pub fn with_env(replicas: u32, key: &str, value: &str) -> Self {
        Self {
            replicas,
            env: vec![(key.to_owned(), value.to_owned())],
        }
    }
}

/// True for the name stackd (as docker compose) gives a replacement while
/// it is being made: `<12 hex digits>_<final name>`.
pub fn is_temporary_name(name: &str) -> bool {
    name.split_once('_').is_some_and(|(prefix, rest)| {
        prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) && !rest.is_empty()
    })
}

/// What is wrong with the replica slots (service, number) of `stack`'s
/// `containers`, one line each; empty when nothing is.
///
/// Always: no slot is held by two containers under final names, nor by two
/// temporary ones (a duplicate). When `settled` (the stack converged, or a
/// crash was repaired): every container has its final name
/// `<stack>-<service>-<n>` matching its labels, so no slot is held twice at
/// all and no temporary container is left over.
pub fn slot_problems(stack: &str, containers: &[Container], settled: bool) -> Vec<String> {
    let mut finals: BTreeMap<(String, u32), Vec<&str>> = BTreeMap::new();
    let mut temporaries: BTreeMap<(String, u32), Vec<&str>> = BTreeMap::new();
    let mut problems = Vec::new();
    for container in containers {
        let number = container.number.unwrap_or(0);
        let slot = (container.service.clone(), number);
        if is_temporary_name(&container.name) {
            if settled {
                problems.push(format!("leftover temporary container {}", container.name));
            }
            temporaries.entry(slot).or_default().push(&container.name);
        } else {
            let canonical = format!("{stack}-{}-{number}", container.service);
            if settled && container.name != canonical {
                problems.push(format!(
                    "container {} holds {} #{number} (expected name {canonical})",
                    container.name, container.service
                ));
            }
            finals.entry(slot).or_default().push(&container.name);
        }
    }
    for (kind, slots) in [("final", &finals), ("temporary", &temporaries)] {
        for ((service, number), names) in slots {
            if names.len() > 1 {
                problems.push(format!(
                    "{service} #{number} is held by {} {kind}-named containers: {names:?}",
                    names.len()
                ));
            }
        }
    }
    problems
}

/// Why `containers` (all of `stack`'s) do not run `services` yet; `None`
/// once they do: only final names ([`slot_problems`] settled), each
/// service's replicas numbered 1..n, running, with the expected
/// environment, and no other container.
pub fn containers_unconverged(
    stack: &str,
    containers: &[Container],
    services: &BTreeMap<String, Expected>,
) -> Option<String> {
    let problems = slot_problems(stack, containers, true);
    if !problems.is_empty() {
        return Some(problems.join("; "));
    }
    for (service, expected) in services {
        let mine: Vec<&Container> = containers
            .iter()
            .filter(|c| c.service == *service)
            .collect();
        let numbers: Vec<u32> = mine.iter().filter_map(|c| c.number).collect();
        if numbers != (1..=expected.replicas).collect::<Vec<_>>() {
            return Some(format!("{service}: replicas {numbers:?}"));
        }
        for c in mine {
            if !c.is_running() {
                return Some(format!("{} is {}", c.name, c.status));
            }
            for (key, value) in &expected.env {
                if c.env(key).as_deref() != Some(value.as_str()) {
                    return Some(format!("{}: {key}={:?}", c.name, c.env(key)));
                }
            }
        }
    }
    let total: u32 = services.values().map(|e| e.replicas).sum();
    if containers.len() != total as usize {
        return Some(format!("{} containers, {total} expected", containers.len()));
    }
    None
}

/// A loopback port nobody listens on now.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `docker` with arguments, failing on a non-zero exit.
pub fn docker_ok(args: &[&str]) -> Result<String> {
    Ok(docker(args)?.ok()?.stdout)
}
