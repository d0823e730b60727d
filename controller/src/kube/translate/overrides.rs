//! What the project asks of the translation beyond compose: the top-level
//! `x-stackd.kubernetes` extension and the `dev.stackd.kubernetes.*`
//! service labels.
//!
//! ```yaml
//! x-stackd:
//!   kubernetes:
//!     wait_image: bitnami/kubectl:1.33   # image of the depends_on waits
//!     services:
//!       web: {workload: deployment, service_type: LoadBalancer}
//!     volumes:
//!       data: {size: 10Gi, storage_class: fast, access_mode: ReadWriteOnce}
//! ```
//!
//! A service label gives the same per-service settings
//! (`dev.stackd.kubernetes.workload: statefulset`,
//! `dev.stackd.kubernetes.service-type: NodePort`); the label and the
//! extension must agree when both are given. Unknown keys, names and
//! values are errors: a typo must not quietly change nothing.
use std::collections::BTreeMap;

use serde::Deserialize;

use super::names::is_dns_subdomain;
use super::units::is_quantity;
use super::TranslateError;
use crate::model::Project;

/// Service label that overrides the workload kind.
pub const WORKLOAD_LABEL: &str = "dev.stackd.kubernetes.workload";
/// Service label that overrides the Service type.
pub const SERVICE_TYPE_LABEL: &str = "dev.stackd.kubernetes.service-type";

/// The kind of workload a service becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// Long-running, interchangeable pods.
    Deployment,
    /// Pods with their own volumes.
    StatefulSet,
    /// One pod per node.
    DaemonSet,
    /// Runs to completion.
    Job,
}

impl WorkloadKind {
    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "deployment" => Some(Self::Deployment),
            "statefulset" => Some(Self::StatefulSet),
            "daemonset" => Some(Self::DaemonSet),
            "job" => Some(Self::Job),
            _ => None,
        }
    }
}

/// The type of a service's Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    /// A cluster-internal virtual IP (the default).
    ClusterIp,
    /// ClusterIP plus a port on every node.
    NodePort,
    /// NodePort plus an external load balancer.
    LoadBalancer,
    /// No virtual IP: the name resolves to the ready pods.
    Headless,
}

impl ServiceType {
    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "clusterip" => Some(Self::ClusterIp),
            "nodeport" => Some(Self::NodePort),
            "loadbalancer" => Some(Self::LoadBalancer),
            "headless" | "none" => Some(Self::Headless),
            _ => None,
        }
    }
}

/// Per-service settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceOverride {
    /// The workload kind, when overridden.
    pub workload: Option<WorkloadKind>,
    /// The Service type, when overridden.
    pub service_type: Option<ServiceType>,
}

/// Per-volume settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeOverride {
    /// Requested size (a quantity such as `10Gi`).
    #[serde(default)]
    pub size: Option<String>,
    /// Storage class of the claim.
    #[serde(default)]
    pub storage_class: Option<String>,
    /// Access mode of the claim.
    #[serde(default)]
    pub access_mode: Option<String>,
}

/// Everything the project overrides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Image of the wait init containers.
    pub wait_image: Option<String>,
    /// By service name.
    pub services: BTreeMap<String, ServiceOverride>,
    /// By volume key.
    pub volumes: BTreeMap<String, VolumeOverride>,
}

impl Overrides {
    /// The settings of one service (defaults when none).
    pub fn service(&self, name: &str) -> ServiceOverride {
        self.services.get(name).cloned().unwrap_or_default()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    #[serde(default)]
    wait_image: Option<String>,
    #[serde(default)]
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    volumes: BTreeMap<String, VolumeOverride>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default)]
    workload: Option<String>,
    #[serde(default)]
    service_type: Option<String>,
}

fn bad(at: impl Into<String>, message: impl Into<String>) -> TranslateError {
    TranslateError::BadOverride {
        at: at.into(),
        message: message.into(),
    }
}

/// Reads the overrides of `project`.
pub fn read(project: &Project) -> Result<Overrides, TranslateError> {
    let raw = match project
        .extensions
        .get("x-stackd")
        .and_then(|x| x.get("kubernetes"))
    {
        Some(value) => RawKubernetes::deserialize(value)
            .map_err(|e| bad("x-stackd.kubernetes", e.to_string()))?,
        None => RawKubernetes::default(),
    };
    let mut overrides = Overrides {
        wait_image: raw.wait_image,
        ..Overrides::default()
    };
    if overrides.wait_image.as_deref() == Some("") {
        return Err(bad("x-stackd.kubernetes.wait_image", "must not be empty"));
    }
    for (name, service) in raw.services {
        let at = format!("x-stackd.kubernetes.services.{name}");
        if !project.services.contains_key(&name) {
            return Err(bad(at, "no such service"));
        }
        let workload = service
            .workload
            .map(|w| {
                WorkloadKind::parse(&w).ok_or_else(|| {
                    bad(
                        format!("{at}.workload"),
                        format!("{w:?} is not deployment, statefulset, daemonset or job"),
                    )
                })
            })
            .transpose()?;
        let service_type = service
            .service_type
            .map(|t| {
                ServiceType::parse(&t).ok_or_else(|| {
                    bad(
                        format!("{at}.service_type"),
                        format!("{t:?} is not ClusterIP, NodePort, LoadBalancer or Headless"),
                    )
                })
            })
            .transpose()?;
        overrides.services.insert(
            name,
            ServiceOverride {
                workload,
                service_type,
            },
        );
    }
    for (name, config) in &project.services {
        let at = format!("service {name} label");
        let mut entry = overrides.service(name);
        if let Some(text) = config.labels.get(WORKLOAD_LABEL) {
            let kind = WorkloadKind::parse(text).ok_or_else(|| {
                bad(
                    format!("{at} {WORKLOAD_LABEL}"),
                    format!("{text:?} is not deployment, statefulset, daemonset or job"),
                )
            })?;
            if entry.workload.is_some_and(|w| w != kind) {
                return Err(bad(
                    format!("{at} {WORKLOAD_LABEL}"),
                    "disagrees with x-stackd.kubernetes",
                ));
            }
            entry.workload = Some(kind);
        }
        if let Some(text) = config.labels.get(SERVICE_TYPE_LABEL) {
            let kind = ServiceType::parse(text).ok_or_else(|| {
                bad(
                    format!("{at} {SERVICE_TYPE_LABEL}"),
                    format!("{text:?} is not ClusterIP, NodePort, LoadBalancer or Headless"),
                )
            })?;
            if entry.service_type.is_some_and(|t| t != kind) {
                return Err(bad(
                    format!("{at} {SERVICE_TYPE_LABEL}"),
                    "disagrees with x-stackd.kubernetes",
                ));
            }
            entry.service_type = Some(kind);
        }
        if entry != ServiceOverride::default() {
            overrides.services.insert(name.clone(), entry);
        }
    }
    for (name, volume) in raw.volumes {
        let at = format!("x-stackd.kubernetes.volumes.{name}");
        if !project.volumes.contains_key(&name) {
            return Err(bad(at, "no such volume"));
        }
        if let Some(size) = &volume.size {
            if !is_quantity(size) {
                return Err(bad(
                    format!("{at}.size"),
                    format!("{size:?} is not a quantity such as 10Gi"),
                ));
            }
        }
        if let Some(class) = &volume.storage_class {
            if !is_dns_subdomain(class) {
                return Err(bad(
                    format!("{at}.storage_class"),
                    format!("{class:?} is not a valid storage class name"),
                ));
            }
        }
        if let Some(mode) = &volume.access_mode {
            if !matches!(
                mode.as_str(),
                "ReadWriteOnce" | "ReadOnlyMany" | "ReadWriteMany" | "ReadWriteOncePod"
            ) {
                return Err(bad(
                    format!("{at}.access_mode"),
                    format!("{mode:?} is not ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod"),
                ));
            }
        }
        overrides.volumes.insert(name, volume);
    }
    Ok(overrides)
}
