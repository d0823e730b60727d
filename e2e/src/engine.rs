//! What the engine runs, read through the docker CLI (`docker ps`,
//! `docker inspect`), independently of the binaries under test.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cmd::docker;
use crate::time::Timestamp;

/// Label naming a container's, network's or volume's compose project.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// Label naming a container's service.
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
/// Label holding a container's replica number.
pub const NUMBER_LABEL: &str = "com.docker.compose.container-number";

/// One container as `docker inspect` describes it.
#[derive(Debug, Clone)]
pub struct Container {
    /// Full id.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// `com.docker.compose.service`, empty when absent.
    pub service: String,
    /// `com.docker.compose.container-number`, when present and numeric.
    pub number: Option<u32>,
    /// `.State.Status`: created, running, exited, ...
    pub status: String,
    /// `.State.Health.Status` when the container has a healthcheck.
    pub health: Option<String>,
    /// `.State.StartedAt` (the engine's "never" for a container never started).
    pub started_at: Timestamp,
    /// `.State.FinishedAt`.
    pub finished_at: Timestamp,
    /// `.State.ExitCode`.
    pub exit_code: i64,
    /// `.RestartCount`.
    pub restart_count: i64,
    /// `.Config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// The whole `docker inspect` object, for anything else.
    pub inspect: Value,
}

impl Container {
    fn from_inspect(value: Value) -> Result<Self> {
        let text = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let time = |pointer: &str| {
            let raw = text(pointer);
            Timestamp::parse(&raw).with_context(|| format!("{pointer} is not a timestamp: {raw:?}"))
        };
        let labels: BTreeMap<String, String> = value
            .pointer("/Config/Labels")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            id: text("/Id"),
            name: text("/Name").trim_start_matches('/').to_string(),
            service: labels.get(SERVICE_LABEL).cloned().unwrap_or_default(),
            number: labels.get(NUMBER_LABEL).and_then(|n| n.parse().ok()),
            status: text("/State/Status"),
            health: value
                .pointer("/State/Health/Status")
                .and_then(Value::as_str)
                .map(str::to_string),
            started_at: time("/State/StartedAt")?,
            finished_at: time("/State/FinishedAt")?,
            exit_code: value
                .pointer("/State/ExitCode")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            restart_count: value
                .pointer("/RestartCount")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            labels,
            inspect: value,
        })
    }

    /// True when the engine reports the container running.
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// True when the container was started at least once.
    pub fn ever_started(&self) -> bool {
        !self.started_at.is_never()
    }

    /// When the first passing healthcheck probe ended, from the health log
    /// (the engine keeps the last five probes, enough right after `up`).
    pub fn first_healthy_at(&self) -> Option<Timestamp> {
        self.inspect
            .pointer("/State/Health/Log")
            .and_then(Value::as_array)?
            .iter()
            .filter(|probe| probe.get("ExitCode").and_then(Value::as_i64) == Some(0))
            .filter_map(|probe| probe.get("End").and_then(Value::as_str))
            .filter_map(Timestamp::parse)
            .min()
    }

    /// The `.Config.Env` entry for `key`, if set.
    pub fn env(&self, key: &str) -> Option<String> {
        self.inspect
            .pointer("/Config/Env")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(Value::as_str)
            .find_map(|entry| {
                entry
                    .strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix('='))
            })
            .map(str::to_string)
    }

    /// The host port published for `container_port` (e.g. `8080/tcp`).
    pub fn host_port(&self, container_port: &str) -> Option<u16> {
        self.inspect
            .pointer("/NetworkSettings/Ports")?
            .get(container_port)?
            .as_array()?
            .iter()
            .filter_map(|binding| binding.get("HostPort").and_then(Value::as_str))
            .find_map(|port| port.parse().ok())
    }
}

/// Every container (running or not) carrying `label` (`key` or `key=value`),
/// sorted by service then replica number then name.
pub fn containers_with_label(label: &str) -> Result<Vec<Container>> {
    containers_matching(&[format!("label={label}")])
}

/// Every container `docker ps -a` lists with all of `filters` (each a
/// `--filter` value), sorted by service, number and name.
pub fn containers_matching(filters: &[String]) -> Result<Vec<Container>> {
    let mut args = vec!["ps", "-a", "-q", "--no-trunc"];
    for filter in filters {
        args.extend(["--filter", filter.as_str()]);
    }
    let listed = docker(&args)?.ok()?;
    let ids: Vec<&str> = listed.stdout.split_whitespace().collect();
    let mut containers = inspect_containers(&ids)?;
    containers.sort_by(|a, b| {
        (a.service.as_str(), a.number, a.name.as_str()).cmp(&(
            b.service.as_str(),
            b.number,
            b.name.as_str(),
        ))
    });
    Ok(containers)
}

/// `docker inspect` of the given containers; ids that vanished meanwhile are skipped.
pub fn inspect_containers(ids: &[&str]) -> Result<Vec<Container>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // One call for all: a test listing dozens of containers would spend
    // seconds on one docker process each.
    let mut args = vec!["container", "inspect"];
    args.extend_from_slice(ids);
    let out = docker(&args)?;
    if out.success() {
        let parsed: Value = serde_json::from_str(&out.stdout)
            .with_context(|| format!("docker inspect printed no JSON: {}", out.stdout))?;
        if let Value::Array(items) = parsed {
            return items.into_iter().map(Container::from_inspect).collect();
        }
    }
    // One of them vanished since it was listed: one at a time, skipping it.
    let mut containers = Vec::new();
    for id in ids {
        if let Some(container) = inspect_container(id)? {
            containers.push(container);
        }
    }
    Ok(containers)
}

/// `docker inspect` of one container; `None` when it does not exist.
pub fn inspect_container(id_or_name: &str) -> Result<Option<Container>> {
    let out = docker(&["container", "inspect", id_or_name])?;
    if !out.success() {
        if out.stderr.contains("No such") {
            return Ok(None);
        }
        bail!("{out}");
    }
    let parsed: Value = serde_json::from_str(&out.stdout)
        .with_context(|| format!("docker inspect printed no JSON: {}", out.stdout))?;
    match parsed {
        Value::Array(mut items) if !items.is_empty() => {
            Container::from_inspect(items.swap_remove(0)).map(Some)
        }
        _ => Ok(None),
    }
}

/// Names of the volumes carrying `label`, sorted.
pub fn volumes_with_label(label: &str) -> Result<Vec<String>> {
    names(&["volume", "ls", "-q", "--filter", &format!("label={label}")])
}

/// Names of the networks carrying `label`, sorted.
pub fn networks_with_label(label: &str) -> Result<Vec<String>> {
    names(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        &format!("label={label}"),
    ])
}

/// True when a volume of that exact name exists.
pub fn volume_exists(name: &str) -> Result<bool> {
    Ok(names(&["volume", "ls", "-q"])?.iter().any(|v| v == name))
}

/// True when a network of that exact name exists.
pub fn network_exists(name: &str) -> Result<bool> {
    Ok(names(&["network", "ls", "--format", "{{.Name}}"])?
        .iter()
        .any(|n| n == name))
}

fn names(args: &[&str]) -> Result<Vec<String>> {
    let out = docker(args)?.ok()?;
    let mut names: Vec<String> = out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    Ok(names)
}

/// Why the engine cannot be used, or `None` when `docker info` answers.
pub fn engine_unavailable() -> Option<String> {
    match docker(&["info", "--format", "{{.ServerVersion}}"]) {
        Ok(out) if out.success() => None,
        Ok(out) => Some(format!("`docker info` failed: {}", out.stderr.trim())),
        Err(err) => Some(format!("`docker info` could not run: {err:#}")),
    }
}

/// Container logs (stdout and stderr together).
pub fn logs(id_or_name: &str) -> Result<String> {
    let out = docker(&["logs", id_or_name])?.ok()?;
    Ok(out.output())
}
