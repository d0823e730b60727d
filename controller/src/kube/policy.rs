//! What the controller refuses to run unless its operator allows it: pods
//! that can reach the node (privileged containers, host paths, the host's
//! network, PID or IPC namespace, added capabilities). Pure: a check of the
//! model, before anything is translated or applied.
use std::fmt;

use crate::model::Project;

/// The node-level powers the controller may grant, each off by default
/// (`stackd controller --allow-privileged ...`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// `privileged: true`.
    pub allow_privileged: bool,
    /// Bind mounts, which become hostPath volumes.
    pub allow_host_path: bool,
    /// `network_mode: host` (hostNetwork).
    pub allow_host_network: bool,
    /// `pid: host` (hostPID).
    pub allow_host_pid: bool,
    /// `ipc: host` (hostIPC).
    pub allow_host_ipc: bool,
    /// `cap_add`.
    pub allow_capabilities: bool,
}

/// One field of one service the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// The compose service.
    pub service: String,
    /// The compose field (`privileged`, `volumes[0]`, `network_mode`,
    /// `pid`, `ipc`, `cap_add`).
    pub field: String,
    /// The controller flag that would allow it.
    pub flag: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service {}: {} is refused (the controller runs with {} to allow it)",
            self.service, self.field, self.flag
        )
    }
}

impl Policy {
    /// Every field of `project` this policy refuses, by service then field.
    pub fn check(&self, project: &Project) -> Vec<Violation> {
        let mut found = Vec::new();
        for (name, service) in &project.services {
            let mut refuse = |field: String, flag: &'static str| {
                found.push(Violation {
                    service: name.clone(),
                    field,
                    flag,
                });
            };
            if service.privileged && !self.allow_privileged {
                refuse("privileged".into(), "--allow-privileged");
            }
            if !self.allow_host_path {
                for (index, mount) in service.volumes.iter().enumerate() {
                    if mount.kind == "bind" {
                        refuse(
                            format!("volumes[{index}] (bind mount of a host path)"),
                            "--allow-host-path",
                        );
                    }
                }
            }
            if service.network_mode == "host" && !self.allow_host_network {
                refuse("network_mode: host".into(), "--allow-host-network");
            }
            if service.pid == "host" && !self.allow_host_pid {
                refuse("pid: host".into(), "--allow-host-pid");
            }
            if service.ipc == "host" && !self.allow_host_ipc {
                refuse("ipc: host".into(), "--allow-host-ipc");
            }
            if !service.cap_add.is_empty() && !self.allow_capabilities {
                refuse(
                    format!("cap_add ({})", service.cap_add.join(", ")),
                    "--allow-capabilities",
                );
            }
        }
        found.sort();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(services: serde_json::Value) -> Project {
        serde_json::from_value(serde_json::json!({"name": "p", "services": services})).unwrap()
    }

    fn risky() -> Project {
        project(serde_json::json!({
            "ops": {
                "image": "busybox",
                "privileged": true,
                "network_mode": "host",
                "pid": "host",
                "ipc": "host",
                "cap_add": ["NET_ADMIN"],
                "volumes": [
                    {"type": "volume", "source": "data", "target": "/data"},
                    {"type": "bind", "source": "/var/run", "target": "/run"}
                ]
            },
            "web": {"image": "nginx"}
        }))
    }

    #[test]
    fn every_node_level_power_is_refused_by_default_naming_service_and_field() {
        let found = Policy::default().check(&risky());
        let text: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "service ops: cap_add (NET_ADMIN) is refused (the controller runs with --allow-capabilities to allow it)",
                "service ops: ipc: host is refused (the controller runs with --allow-host-ipc to allow it)",
                "service ops: network_mode: host is refused (the controller runs with --allow-host-network to allow it)",
                "service ops: pid: host is refused (the controller runs with --allow-host-pid to allow it)",
                "service ops: privileged is refused (the controller runs with --allow-privileged to allow it)",
                "service ops: volumes[1] (bind mount of a host path) is refused (the controller runs with --allow-host-path to allow it)",
            ]
        );
    }

    #[test]
    fn each_flag_allows_only_its_own_power() {
        let allow_privileged = Policy {
            allow_privileged: true,
            ..Policy::default()
        };
        let fields: Vec<String> = allow_privileged
            .check(&risky())
            .into_iter()
            .map(|v| v.flag.to_string())
            .collect();
        assert!(!fields.contains(&"--allow-privileged".to_string()));
        assert_eq!(fields.len(), 5);
        let everything = Policy {
            allow_privileged: true,
            allow_host_path: true,
            allow_host_network: true,
            allow_host_pid: true,
            allow_host_ipc: true,
            allow_capabilities: true,
        };
        assert!(everything.check(&risky()).is_empty());
    }

    #[test]
    fn an_ordinary_service_passes() {
        let plain = project(serde_json::json!({"web": {"image": "nginx", "volumes": [
            {"type": "volume", "source": "data", "target": "/data"}
        ]}}));
        assert!(Policy::default().check(&plain).is_empty());
    }
}
