//! The compose model → Kubernetes objects, as a pure function: no I/O, no
//! client. [`translate`] returns typed k8s-openapi objects in a stable
//! order (what `stackd convert` prints and the controller applies) and a
//! warning for every compose key it could not carry over.
//!
//! # The rules
//!
//! Names. Objects are named `<project>-<service>` (`-env` for a service's
//! environment ConfigMap), `<project>-<key>` for volumes, secrets and
//! configs (compose's `<project>_<key>` with `-`), all made valid DNS-1123
//! labels (cut with a hash when too long). Services are the exception: a
//! Service takes the bare compose service name, because that is the host
//! name the other services use to reach it. Two objects of one kind with
//! one name are an error ([`TranslateError::NameCollision`]). Every object
//! carries `app.kubernetes.io/name` (the service or resource key),
//! `/instance` (the object's base name), `/part-of` (the project) and
//! `/managed-by: stackd`; workloads select their pods by `/instance` and
//! `/part-of`.
//!
//! Workloads, in order of precedence:
//! 1. an override: `x-stackd: {kubernetes: {services: {NAME: {workload: W}}}}`
//!    at the top of the file, or the service label
//!    `dev.stackd.kubernetes.workload: W`, W one of `deployment`,
//!    `statefulset`, `daemonset`, `job`;
//! 2. a one-shot service is a Job: `restart: "no"` given explicitly,
//!    `deploy.restart_policy.condition: none`, or a service another one
//!    depends on with `service_completed_successfully`;
//! 3. `deploy.mode: global` is a DaemonSet;
//! 4. a service that mounts a named volume no other service mounts is a
//!    StatefulSet, and those volumes are its volumeClaimTemplates (one
//!    volume per replica, ReadWriteOnce);
//! 5. anything else is a Deployment.
//!
//! A named volume mounted by several services, or by a workload that is not
//! a StatefulSet, is one PersistentVolumeClaim; it asks for ReadWriteMany
//! when more than one pod can mount it (several services, replicas, a
//! DaemonSet), else ReadWriteOnce, and a Deployment that mounts a
//! ReadWriteOnce claim is updated with the Recreate strategy (a rolling
//! update would wait forever for the claim). Sizes default to 1Gi;
//! `x-stackd.kubernetes.volumes.NAME` may give `size`, `storage_class` and
//! `access_mode`. External volumes are existing claims of that name.
//!
//! `depends_on`: each dependency becomes an init container
//! `wait-for-<dependency>` that asks the Kubernetes API, with `kubectl`
//! (image `bitnami/kubectl:latest` unless `wait_image` or
//! `x-stackd.kubernetes.wait_image` says otherwise): `service_started`
//! waits until a pod of the dependency runs (or ran), `service_healthy`
//! until every pod of the dependency is Ready (its readiness probe is the
//! healthcheck, so its Service has ready endpoints), and
//! `service_completed_successfully` until the dependency's Job is
//! Complete. The project gets a ServiceAccount, a Role that may only read
//! pods and jobs, and a RoleBinding; the token is mounted into the wait
//! containers only (every pod has `automountServiceAccountToken: false`).
//!
//! See the module documentation of each part for the rest: `container`
//! (command, environment, resources, security, probes), `storage` (volumes,
//! secrets, configs), `network` (Services, NetworkPolicies), `wait`.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::model::Project;

mod container;
mod keys;
mod names;
mod network;
mod overrides;
mod plan;
mod probes;
mod storage;
mod units;
mod wait;
mod workload;

pub mod check;

#[cfg(test)]
mod tests;

pub use keys::keys_present;
pub use names::{dns_label, is_dns_label, label_value};

/// The image of the init containers that wait for dependencies, unless
/// the options or the project say otherwise: it needs `sh`, `grep` and
/// `kubectl`.
pub const DEFAULT_WAIT_IMAGE: &str = "bitnami/kubectl:latest";

/// Label every object carries: `stackd`.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label every object carries: the project.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// Label every object carries: the service or resource key.
pub const NAME: &str = "app.kubernetes.io/name";
/// Label every object carries: the object's base name; with [`PART_OF`],
/// what workloads and Services select pods by.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// Pod template annotation: a hash of the environment, configs and secrets
/// the pod reads, so that a change to any of them rolls the pods.
pub const CONFIG_HASH: &str = "stackd.dev/config-hash";

/// What the translation may do beyond the safe defaults, and the values it
/// cannot read itself.
#[derive(Debug, Clone, Default)]
pub struct TranslateOptions {
    /// Namespace set on every object; `None` leaves it to the client.
    pub namespace: Option<String>,
    /// Host bind mounts become hostPath volumes (else an emptyDir and a
    /// warning).
    pub allow_host_path: bool,
    /// `network_mode: host` becomes `hostNetwork` (else a warning).
    pub allow_host_network: bool,
    /// `pid: host` becomes `hostPID` (else a warning).
    pub allow_host_pid: bool,
    /// `ipc: host` becomes `hostIPC` (else a warning).
    pub allow_host_ipc: bool,
    /// Image of the wait init containers (wins over the project's
    /// `x-stackd.kubernetes.wait_image` and [`DEFAULT_WAIT_IMAGE`]).
    pub wait_image: Option<String>,
    /// Contents of the files and variables secrets and configs come from.
    pub contents: Contents,
}

/// The bytes behind secrets and configs that come from a file or a
/// variable, read by the caller ([`crate::kube::sources`]).
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// File contents by the path written in the model.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Variables by name.
    pub variables: BTreeMap<String, String>,
}

/// What a key or a warning is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The project as a whole (`models`, `x-*`).
    Project,
    /// A service.
    Service(String),
    /// A top-level network.
    Network(String),
    /// A top-level volume.
    Volume(String),
    /// A top-level secret.
    Secret(String),
    /// A top-level config.
    Config(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Project => f.write_str("project"),
            Scope::Service(name) => write!(f, "service {name}"),
            Scope::Network(name) => write!(f, "network {name}"),
            Scope::Volume(name) => write!(f, "volume {name}"),
            Scope::Secret(name) => write!(f, "secret {name}"),
            Scope::Config(name) => write!(f, "config {name}"),
        }
    }
}

impl Scope {
    /// The kind of scope, for counting warnings by key: `service`,
    /// `network`, `volume`, `secret`, `config` or `project`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Project => "project",
            Scope::Service(_) => "service",
            Scope::Network(_) => "network",
            Scope::Volume(_) => "volume",
            Scope::Secret(_) => "secret",
            Scope::Config(_) => "config",
        }
    }
}

/// A compose key in one scope: `healthcheck.interval` of service `web`.
/// List items share their list's key (`ports.target`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyRef {
    /// Where.
    pub scope: Scope,
    /// The dotted path.
    pub key: String,
}

impl KeyRef {
    /// Whether this key, as a consumed or warned-about key, accounts for
    /// `other`: the same key, or a key above it (`*` is above every key of
    /// its scope).
    pub fn covers(&self, other: &KeyRef) -> bool {
        self.scope == other.scope
            && (self.key == "*"
                || self.key == other.key
                || (other.key.starts_with(&self.key)
                    && other.key.as_bytes().get(self.key.len()) == Some(&b'.')))
    }
}

/// A compose key whose meaning did not (fully) carry over.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    /// Where.
    pub scope: Scope,
    /// The key, dotted (`deploy.resources.limits.pids`).
    pub key: String,
    /// What happened instead. Never holds a secret value.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.scope, self.key, self.message)
    }
}

/// One Kubernetes object of the kinds the translation makes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    /// The identity of the wait init containers.
    ServiceAccount(ServiceAccount),
    /// What the wait init containers may read.
    Role(Role),
    /// Grants the Role to the ServiceAccount.
    RoleBinding(RoleBinding),
    /// A compose secret.
    Secret(Secret),
    /// A compose config, or a service's environment.
    ConfigMap(ConfigMap),
    /// A named volume shared by pods.
    PersistentVolumeClaim(PersistentVolumeClaim),
    /// A service's name and ports.
    Service(Service),
    /// Network isolation.
    NetworkPolicy(NetworkPolicy),
    /// A long-running service.
    Deployment(Deployment),
    /// A service with volumes of its own.
    StatefulSet(StatefulSet),
    /// A `deploy.mode: global` service.
    DaemonSet(DaemonSet),
    /// A one-shot service.
    Job(Job),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::Role(_) => "Role",
            Object::RoleBinding(_) => "RoleBinding",
            Object::Secret(_) => "Secret",
            Object::ConfigMap(_) => "ConfigMap",
            Object::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Object::Service(_) => "Service",
            Object::NetworkPolicy(_) => "NetworkPolicy",
            Object::Deployment(_) => "Deployment",
            Object::StatefulSet(_) => "StatefulSet",
            Object::DaemonSet(_) => "DaemonSet",
            Object::Job(_) => "Job",
        }
    }

    /// The object's `apiVersion`.
    pub fn api_version(&self) -> &'static str {
        use k8s_openapi::Resource;
        match self {
            Object::ServiceAccount(_) => ServiceAccount::API_VERSION,
            Object::Role(_) => Role::API_VERSION,
            Object::RoleBinding(_) => RoleBinding::API_VERSION,
            Object::Secret(_) => Secret::API_VERSION,
            Object::ConfigMap(_) => ConfigMap::API_VERSION,
            Object::PersistentVolumeClaim(_) => PersistentVolumeClaim::API_VERSION,
            Object::Service(_) => Service::API_VERSION,
            Object::NetworkPolicy(_) => NetworkPolicy::API_VERSION,
            Object::Deployment(_) => Deployment::API_VERSION,
            Object::StatefulSet(_) => StatefulSet::API_VERSION,
            Object::DaemonSet(_) => DaemonSet::API_VERSION,
            Object::Job(_) => Job::API_VERSION,
        }
    }

    /// Where the kind sorts: what others refer to comes first, so that a
    /// stream applied in order never refers ahead.
    pub fn rank(&self) -> u8 {
        match self {
            Object::ServiceAccount(_) => 0,
            Object::Role(_) => 1,
            Object::RoleBinding(_) => 2,
            Object::Secret(_) => 3,
            Object::ConfigMap(_) => 4,
            Object::PersistentVolumeClaim(_) => 5,
            Object::Service(_) => 6,
            Object::NetworkPolicy(_) => 7,
            Object::Deployment(_) => 8,
            Object::StatefulSet(_) => 9,
            Object::DaemonSet(_) => 10,
            Object::Job(_) => 11,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::ServiceAccount(o) => &o.metadata,
            Object::Role(o) => &o.metadata,
            Object::RoleBinding(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::PersistentVolumeClaim(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::NetworkPolicy(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::DaemonSet(o) => &o.metadata,
            Object::Job(o) => &o.metadata,
        }
    }

    /// The object's metadata, to change (the controller adds its owner
    /// reference).
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::ServiceAccount(o) => &mut o.metadata,
            Object::Role(o) => &mut o.metadata,
            Object::RoleBinding(o) => &mut o.metadata,
            Object::Secret(o) => &mut o.metadata,
            Object::ConfigMap(o) => &mut o.metadata,
            Object::PersistentVolumeClaim(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::NetworkPolicy(o) => &mut o.metadata,
            Object::Deployment(o) => &mut o.metadata,
            Object::StatefulSet(o) => &mut o.metadata,
            Object::DaemonSet(o) => &mut o.metadata,
            Object::Job(o) => &mut o.metadata,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// A file name for the object alone: `<rank>-<kind>-<name>.yaml`, so
    /// that a directory applied in name order applies in stream order.
    pub fn file_name(&self) -> String {
        format!(
            "{:02}-{}-{}.yaml",
            self.rank(),
            self.kind().to_ascii_lowercase(),
            self.name()
        )
    }

    /// The object as YAML (one document, ending with a newline).
    pub fn to_yaml(&self) -> Result<String, TranslateError> {
        let value = serde_json::to_value(self).map_err(TranslateError::JsonFailed)?;
        let mut text = serde_saphyr::to_string(&value).map_err(TranslateError::YamlFailed)?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }
}

/// The result of a translation.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    /// The objects, by kind rank then name.
    pub objects: Vec<Object>,
    /// What did not carry over, in a stable order.
    pub warnings: Vec<Warning>,
    /// The compose keys that shaped the output. With the warnings, they
    /// account for every key of the input (see [`keys_present`]).
    pub consumed: BTreeSet<KeyRef>,
}

impl Translation {
    /// The objects as one YAML stream, `---` between documents.
    pub fn to_yaml(&self) -> Result<String, TranslateError> {
        let mut out = String::new();
        for (index, object) in self.objects.iter().enumerate() {
            if index > 0 {
                out.push_str("---\n");
            }
            out.push_str(&object.to_yaml()?);
        }
        Ok(out)
    }

    /// The keys of `present` that neither shaped the output nor have a
    /// warning: what the translation dropped silently (always empty, as
    /// the tests check).
    pub fn unaccounted<'a>(&self, present: &'a BTreeSet<KeyRef>) -> Vec<&'a KeyRef> {
        let accounted: Vec<KeyRef> = self
            .consumed
            .iter()
            .cloned()
            .chain(self.warnings.iter().map(|w| KeyRef {
                scope: w.scope.clone(),
                key: w.key.clone(),
            }))
            .collect();
        present
            .iter()
            .filter(|key| !accounted.iter().any(|a| a.covers(key)))
            .collect()
    }
}

/// Why a project cannot be translated.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// Two objects of one kind would get one name.
    #[error("{kind} name {name:?} is wanted by {first} and by {second}")]
    NameCollision {
        /// The kind.
        kind: &'static str,
        /// The name.
        name: String,
        /// What claimed it first.
        first: String,
        /// What claimed it again.
        second: String,
    },
    /// `x-stackd.kubernetes` (or an override label) is not understood.
    #[error("{at}: {message}")]
    BadOverride {
        /// Where (`x-stackd.kubernetes.services.web`, `service web label ...`).
        at: String,
        /// What is wrong.
        message: String,
    },
    /// The namespace option is not a DNS-1123 label.
    #[error("invalid namespace {0:?}: must be a DNS-1123 label")]
    BadNamespace(String),
    /// An object could not be turned into JSON.
    #[error("cannot serialize an object")]
    JsonFailed(#[source] serde_json::Error),
    /// An object could not be turned into YAML.
    #[error("cannot write an object as YAML")]
    YamlFailed(#[source] serde_saphyr::SerializeError),
}

impl TranslateError {
    /// A short, stable name of the kind of problem, for metric labels and
    /// status reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            TranslateError::NameCollision { .. } => "name_collision",
            TranslateError::BadOverride { .. } => "bad_override",
            TranslateError::BadNamespace(_) => "bad_namespace",
            TranslateError::JsonFailed(_) | TranslateError::YamlFailed(_) => "serialize",
        }
    }
}

/// Translates `project` into Kubernetes objects.
pub fn translate(
    project: &Project,
    options: &TranslateOptions,
) -> Result<Translation, TranslateError> {
    if let Some(namespace) = &options.namespace {
        if !is_dns_label(namespace) {
            return Err(TranslateError::BadNamespace(namespace.clone()));
        }
    }
    plan::run(project, options)
}
