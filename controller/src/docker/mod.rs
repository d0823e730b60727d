//! The Docker side of convergence: a `Backend` trait that observes a
//! project's containers, networks, volumes and images and applies plan
//! actions, its implementation over bollard (`DockerBackend`), and an
//! in-memory engine for tests (`fake::FakeBackend`).
//!
//! `spec` turns the model into engine request bodies without I/O; `status`
//! reads container state from list responses and decides whether a wait is
//! over; both are shared by the real and the fake backend, so the fake
//! behaves as the engine does.
mod container_wait;
mod engine;
mod event_hub;
mod events;
pub mod fake;
mod list;
pub mod spec;
mod status;
mod tarball;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde::Serialize;
use tokio::time::Instant;

use crate::model::Project;
use crate::plan::{Action, Condition, Observed};

pub(crate) use engine::familiar;
pub use engine::DockerBackend;
pub use events::{parse_event, EngineEvent, EventKind};
pub use status::{evaluate, parse_status, Progress};

/// A boxed, sendable future: what the `Backend` methods return, so the trait
/// stays object-safe (`&dyn Backend`) without extra crates.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Label keys stackd writes and reads. The `com.docker.compose.*` ones are
/// docker compose's, so `docker compose -p NAME ps` and `logs` see stackd's
/// containers (compose's `ps` filters on the project label, the presence of
/// the config-hash label and `oneoff=False`).
pub mod labels {
    /// The project name.
    pub const PROJECT: &str = "com.docker.compose.project";
    /// The service name.
    pub const SERVICE: &str = "com.docker.compose.service";
    /// The replica number, from 1.
    pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
    /// `True` for `run` containers, `False` for the service's own.
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
    /// The hash of the service's configuration the container was created from.
    pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
    /// The project's working directory.
    pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
    /// The project's compose files, comma-separated.
    pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
    /// The service's dependencies as `service:condition:restart`, comma-separated.
    pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
    /// The id of the image the container was created from, as compose
    /// records it.
    pub const IMAGE: &str = "com.docker.compose.image";
    /// The version of the tool that created the object (stackd's own).
    pub const VERSION: &str = "com.docker.compose.version";
    /// A network's key in the project.
    pub const NETWORK: &str = "com.docker.compose.network";
    /// A volume's key in the project.
    pub const VOLUME: &str = "com.docker.compose.volume";
    /// Marks objects stackd created.
    pub const MANAGED_BY: &str = "dev.stackd.managed-by";
    /// The value of [`MANAGED_BY`].
    pub const MANAGED_BY_VALUE: &str = "stackd";
}

/// What a project's containers are labelled with beyond the model itself:
/// where the project was loaded from, and each service's config hash as the
/// planner computed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectMeta {
    /// The project's working directory (absolute).
    pub working_dir: String,
    /// The compose files the project was loaded from (absolute).
    pub config_files: Vec<String>,
    /// Service name → config hash, written to the config-hash label.
    pub config_hashes: BTreeMap<String, String>,
    /// The values of the variables environment-sourced secrets and configs
    /// name, from the project's environment (the process environment over
    /// `.env`), as compose reads them.
    pub variables: SecretVariables,
}

/// Variable name → value for environment-sourced secrets and configs.
/// Holds only the variables those name; its `Debug` prints the names,
/// never a value, so a logged project meta leaks no secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretVariables(BTreeMap<String, String>);

impl SecretVariables {
    /// The variables of `environment` that `project`'s secrets and configs
    /// take their content from.
    pub fn of(project: &Project, environment: &BTreeMap<String, String>) -> Self {
        let named = project
            .secrets
            .values()
            .map(|s| &s.environment)
            .chain(project.configs.values().map(|c| &c.environment))
            .filter(|variable| !variable.is_empty());
        SecretVariables(
            named
                .filter_map(|variable| {
                    let value = environment.get(variable)?;
                    Some((variable.clone(), value.clone()))
                })
                .collect(),
        )
    }

    /// The value of `variable`, when the environment had it.
    pub fn get(&self, variable: &str) -> Option<&str> {
        self.0.get(variable).map(String::as_str)
    }
}

impl std::fmt::Debug for SecretVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl ProjectMeta {
    /// Where `project` was loaded from (as `options` asked, made absolute),
    /// the planner's config hash of each of its services, and the values
    /// its environment-sourced secrets and configs take from `environment`
    /// (the project's: see [`crate::load::project_environment`]).
    pub fn for_project(
        project: &Project,
        options: &crate::load::LoadOptions,
        environment: &BTreeMap<String, String>,
    ) -> Self {
        let working_dir = options
            .project_directory
            .clone()
            .or_else(|| {
                options
                    .files
                    .first()
                    .and_then(|f| f.parent())
                    // `-f compose.yaml` has an empty parent: the working dir
                    // itself, without the trailing slash joining "" would add.
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| p.to_path_buf())
            })
            .unwrap_or_else(|| options.working_dir.clone());
        let absolute = |p: &std::path::Path| options.working_dir.join(p).display().to_string();
        ProjectMeta {
            working_dir: absolute(&working_dir),
            config_files: options.files.iter().map(|f| absolute(f)).collect(),
            config_hashes: project
                .services
                .iter()
                .map(|(name, service)| (name.clone(), crate::plan::config_hash(service)))
                .collect(),
            variables: SecretVariables::of(project, environment),
        }
    }

    /// The config hash of `service`, or an error naming it when the planner
    /// gave none (a container without a hash would be recreated forever).
    pub fn config_hash(&self, service: &str) -> Result<&str, Error> {
        self.config_hashes
            .get(service)
            .map(String::as_str)
            .ok_or_else(|| Error::NoConfigHash {
                service: service.to_owned(),
            })
    }
}

/// The kind of an action, for counting and for error injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// [`Action::CreateNetwork`].
    CreateNetwork,
    /// [`Action::CreateVolume`].
    CreateVolume,
    /// [`Action::EnsureImage`].
    EnsureImage,
    /// [`Action::CreateContainer`].
    CreateContainer,
    /// [`Action::StartContainer`].
    StartContainer,
    /// [`Action::StopContainer`].
    StopContainer,
    /// [`Action::RemoveContainer`].
    RemoveContainer,
    /// [`Action::RenameContainer`].
    RenameContainer,
    /// [`Action::WaitFor`].
    WaitFor,
    /// [`Action::WaitContainer`].
    WaitContainer,
    /// [`Action::Delay`].
    Delay,
    /// [`Action::RemoveNetwork`].
    RemoveNetwork,
    /// [`Action::RemoveVolume`].
    RemoveVolume,
}

impl ActionKind {
    /// The kind of `action`.
    pub fn of(action: &Action) -> Self {
        match action {
            Action::CreateNetwork { .. } => Self::CreateNetwork,
            Action::CreateVolume { .. } => Self::CreateVolume,
            Action::EnsureImage { .. } => Self::EnsureImage,
            Action::CreateContainer { .. } => Self::CreateContainer,
            Action::StartContainer { .. } => Self::StartContainer,
            Action::StopContainer { .. } => Self::StopContainer,
            Action::RemoveContainer { .. } => Self::RemoveContainer,
            Action::RenameContainer { .. } => Self::RenameContainer,
            Action::WaitFor { .. } => Self::WaitFor,
            Action::WaitContainer { .. } => Self::WaitContainer,
            Action::Delay { .. } => Self::Delay,
            Action::RemoveNetwork { .. } => Self::RemoveNetwork,
            Action::RemoveVolume { .. } => Self::RemoveVolume,
        }
    }

    /// A stable snake_case name, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateNetwork => "create_network",
            Self::CreateVolume => "create_volume",
            Self::EnsureImage => "ensure_image",
            Self::CreateContainer => "create_container",
            Self::StartContainer => "start_container",
            Self::StopContainer => "stop_container",
            Self::RemoveContainer => "remove_container",
            Self::RenameContainer => "rename_container",
            Self::WaitFor => "wait_for",
            Self::WaitContainer => "wait_container",
            Self::Delay => "delay",
            Self::RemoveNetwork => "remove_network",
            Self::RemoveVolume => "remove_volume",
        }
    }
}

/// Project name → its containers, ordered as [`Backend::observe_containers`]
/// orders them.
pub type AllContainers = BTreeMap<String, Vec<crate::plan::ObservedContainer>>;

/// Puts `containers` in the order observations give them.
pub(crate) fn sort_containers(containers: &mut [crate::plan::ObservedContainer]) {
    containers
        .sort_by(|a, b| (&a.service, a.number, &a.name).cmp(&(&b.service, b.number, &b.name)));
}

/// Observes and changes one engine. Implemented over bollard by
/// [`DockerBackend`] and in memory by [`fake::FakeBackend`]; callers hold
/// `&dyn Backend`.
pub trait Backend: Send + Sync {
    /// Everything labelled with the project's name: containers (one list
    /// call), the ids of the images the project's services use (one list
    /// call), and networks and volumes only when `include_resources`.
    fn observe<'a>(
        &'a self,
        project: &'a Project,
        include_resources: bool,
    ) -> BoxFuture<'a, Result<Observed, Error>>;

    /// The project's containers only, in one list call: `images` is left
    /// empty and `networks` and `volumes` unlisted. For callers that keep
    /// image ids themselves ([`Backend::image_ids`]), such as a controller
    /// that looks at many stacks sharing images.
    fn observe_containers<'a>(
        &'a self,
        project: &'a Project,
    ) -> BoxFuture<'a, Result<Observed, Error>>;

    /// The containers of every compose project on the engine, by project
    /// name, in one list call: what a controller's resync round shares
    /// among its stacks instead of listing once per stack.
    fn observe_all_containers(&self) -> BoxFuture<'_, Result<AllContainers, Error>>;

    /// The id of each image reference ([`crate::plan::image_ref`] form),
    /// `None` for one the engine does not have, in one list call for all.
    fn image_ids<'a>(
        &'a self,
        references: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<BTreeMap<String, Option<String>>, Error>>;

    /// Performs one action. Removing something already gone succeeds, and so
    /// do starting a running and stopping a stopped container.
    fn apply<'a>(
        &'a self,
        project: &'a Project,
        meta: &'a ProjectMeta,
        action: &'a Action,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Waits until every replica of `service` meets `condition`, failing as
    /// soon as one cannot (unhealthy, exited with an error) or at `deadline`.
    fn wait_for<'a>(
        &'a self,
        project: &'a Project,
        service: &'a str,
        condition: Condition,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Events of stackd's containers, in every project, from now on. The
    /// stream ends or fails when the engine connection does.
    fn events(&self) -> futures::stream::BoxStream<'_, Result<EngineEvent, Error>>;
}

/// Why an engine operation failed. Every variant names the service,
/// container, network, volume or image concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine could not be reached, or its API version not negotiated.
    #[error("cannot reach the Docker engine: {source}")]
    EngineUnreachable {
        /// The client's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// A request failed on the way (connection reset, timeout, bad response).
    #[error("{operation} {target}: the request to the Docker engine failed: {source}")]
    RequestFailed {
        /// What was being done (`create container`, `list containers`, ...).
        operation: &'static str,
        /// The object it was done to.
        target: String,
        /// The client's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine refused a request for a reason no other variant names.
    #[error("{operation} {target}: the Docker engine answered {status}: {message}")]
    EngineRejected {
        /// What was being done.
        operation: &'static str,
        /// The object it was done to.
        target: String,
        /// HTTP status code.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// An action names a service, network or volume the project does not have.
    #[error("{kind} {name} is not in the project")]
    NotInProject {
        /// `service`, `network` or `volume`.
        kind: &'static str,
        /// Its name or key.
        name: String,
    },
    /// The planner gave no config hash for a service whose container is created.
    #[error("service {service}: no config hash was computed for it")]
    NoConfigHash {
        /// The service.
        service: String,
    },
    /// The service asks for something this engine's API (1.41) cannot do.
    #[error(
        "service {service}: {option} is not supported by this Docker engine (needs API {needs})"
    )]
    Unsupported {
        /// The service.
        service: String,
        /// The option (`healthcheck.start_interval`).
        option: String,
        /// The API version that introduced it.
        needs: &'static str,
    },
    /// The service's configuration cannot be turned into a container.
    #[error("service {service}: {message}")]
    InvalidService {
        /// The service.
        service: String,
        /// What is wrong.
        message: String,
    },
    /// A secret or config comes from an environment variable that is not set.
    #[error("service {service}: {kind} {name} reads variable {variable}, which is not set")]
    VariableUnset {
        /// The service.
        service: String,
        /// `secret` or `config`.
        kind: &'static str,
        /// The secret or config.
        name: String,
        /// The variable.
        variable: String,
    },
    /// The image is not on the engine and `pull_policy: never` forbids pulling it.
    #[error("service {service}: image {image} is not on the engine and pull_policy is never")]
    ImageMissing {
        /// The service.
        service: String,
        /// The image reference.
        image: String,
    },
    /// Pulling the image failed.
    #[error("service {service}: pulling image {image} failed: {message}")]
    PullFailed {
        /// The service.
        service: String,
        /// The image reference.
        image: String,
        /// The engine's message.
        message: String,
    },
    /// Pulling the image did not finish in time.
    #[error("service {service}: pulling image {image} did not finish within {}s", after.as_secs())]
    PullTimedOut {
        /// The service.
        service: String,
        /// The image reference.
        image: String,
        /// The bound.
        after: std::time::Duration,
    },
    /// The build context could not be read.
    #[error("service {service}: cannot read build context {}: {source}", path.display())]
    BuildContextUnreadable {
        /// The service.
        service: String,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The engine failed the build.
    #[error("service {service}: building image {image} failed: {message}")]
    BuildFailed {
        /// The service.
        service: String,
        /// The tag being built.
        image: String,
        /// The engine's message.
        message: String,
    },
    /// Creating a container failed because something it needs (its image, a
    /// network, a volume driver) is missing on the engine.
    #[error("container {container}: cannot be created: {message}")]
    CreateFailed {
        /// The container.
        container: String,
        /// The engine's message.
        message: String,
    },
    /// A container of that name already exists.
    #[error("container name {container} is already in use")]
    NameInUse {
        /// The name.
        container: String,
    },
    /// A container the action names does not exist.
    #[error("container {container} does not exist")]
    ContainerMissing {
        /// The container.
        container: String,
    },
    /// The engine could not start the container (a port in use, a missing
    /// bind source, a bad command).
    #[error("container {container} failed to start: {message}")]
    StartFailed {
        /// The container.
        container: String,
        /// The engine's message.
        message: String,
    },
    /// The container is in a state that forbids the action (removing a
    /// running container, renaming one being removed).
    #[error("container {container}: {message}")]
    ContainerBusy {
        /// The container.
        container: String,
        /// The engine's message.
        message: String,
    },
    /// An external network does not exist.
    #[error("external network {network} does not exist")]
    ExternalNetworkMissing {
        /// Its engine name.
        network: String,
    },
    /// An external volume does not exist.
    #[error("external volume {volume} does not exist")]
    ExternalVolumeMissing {
        /// Its engine name.
        volume: String,
    },
    /// A network of that name exists but does not belong to the project.
    #[error("network {network} exists but does not belong to project {project}; declare it external to use it")]
    NetworkNameTaken {
        /// Its engine name.
        network: String,
        /// The project.
        project: String,
    },
    /// A volume of that name exists but does not belong to the project.
    #[error("volume {volume} exists but does not belong to project {project}; declare it external to use it")]
    VolumeNameTaken {
        /// Its engine name.
        volume: String,
        /// The project.
        project: String,
    },
    /// An external network or volume was asked to be removed.
    #[error("{kind} {name} is external; stackd does not remove it")]
    ExternalNotRemoved {
        /// `network` or `volume`.
        kind: &'static str,
        /// Its engine name.
        name: String,
    },
    /// A network still has containers attached.
    #[error("network {network} is still in use: {message}")]
    NetworkInUse {
        /// Its engine name.
        network: String,
        /// The engine's message.
        message: String,
    },
    /// A volume is still mounted by a container.
    #[error("volume {volume} is still in use: {message}")]
    VolumeInUse {
        /// Its engine name.
        volume: String,
        /// The engine's message.
        message: String,
    },
    /// A replica became unhealthy while something waited for it to be healthy.
    #[error("service {service}: container {container} is unhealthy")]
    Unhealthy {
        /// The service.
        service: String,
        /// The container.
        container: String,
    },
    /// A replica exited with a non-zero status while something waited on it.
    #[error("service {service}: container {container} exited with status {code}")]
    ExitedWithError {
        /// The service.
        service: String,
        /// The container.
        container: String,
        /// Its exit status.
        code: i64,
    },
    /// A replica stopped while something waited for it to be healthy.
    #[error("service {service}: container {container} exited before it became healthy")]
    ExitedBeforeHealthy {
        /// The service.
        service: String,
        /// The container.
        container: String,
    },
    /// The engine restarted a container (its restart policy, after a crash)
    /// while a rolling update watched it.
    #[error("service {service}: container {container} crashed and was restarted")]
    Restarted {
        /// The service.
        service: String,
        /// The container.
        container: String,
    },
    /// Something waits for a service to be healthy, but it has no healthcheck.
    #[error("service {service}: container {container} has no healthcheck to wait for")]
    NoHealthcheck {
        /// The service.
        service: String,
        /// The container.
        container: String,
    },
    /// Something waits on a service that has no containers.
    #[error("service {service} has no containers to wait for")]
    NoContainers {
        /// The service.
        service: String,
    },
    /// The deadline passed before the service met the condition.
    #[error("service {service}: timed out waiting for {}", condition_text(*condition))]
    WaitTimedOut {
        /// The service.
        service: String,
        /// What was awaited.
        condition: Condition,
    },
}

fn condition_text(condition: Condition) -> &'static str {
    match condition {
        Condition::ServiceStarted => "it to start",
        Condition::ServiceHealthy => "it to be healthy",
        Condition::ServiceCompletedSuccessfully => "it to complete successfully",
    }
}

impl Error {
    /// A stable snake_case name for metric labels and status reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::EngineUnreachable { .. } => "engine_unreachable",
            Self::RequestFailed { .. } => "request_failed",
            Self::EngineRejected { .. } => "engine_rejected",
            Self::NotInProject { .. } => "not_in_project",
            Self::NoConfigHash { .. } => "no_config_hash",
            Self::Unsupported { .. } => "unsupported",
            Self::InvalidService { .. } => "invalid_service",
            Self::VariableUnset { .. } => "variable_unset",
            Self::ImageMissing { .. } => "image_missing",
            Self::PullFailed { .. } => "pull_failed",
            Self::PullTimedOut { .. } => "pull_timed_out",
            Self::BuildContextUnreadable { .. } => "build_context_unreadable",
            Self::BuildFailed { .. } => "build_failed",
            Self::CreateFailed { .. } => "create_failed",
            Self::NameInUse { .. } => "name_in_use",
            Self::ContainerMissing { .. } => "container_missing",
            Self::StartFailed { .. } => "start_failed",
            Self::ContainerBusy { .. } => "container_busy",
            Self::ExternalNetworkMissing { .. } => "external_network_missing",
            Self::ExternalVolumeMissing { .. } => "external_volume_missing",
            Self::NetworkNameTaken { .. } => "network_name_taken",
            Self::VolumeNameTaken { .. } => "volume_name_taken",
            Self::ExternalNotRemoved { .. } => "external_not_removed",
            Self::NetworkInUse { .. } => "network_in_use",
            Self::VolumeInUse { .. } => "volume_in_use",
            Self::Unhealthy { .. } => "unhealthy",
            Self::ExitedWithError { .. } => "exited_with_error",
            Self::ExitedBeforeHealthy { .. } => "exited_before_healthy",
            Self::Restarted { .. } => "restarted",
            Self::NoHealthcheck { .. } => "no_healthcheck",
            Self::NoContainers { .. } => "no_containers",
            Self::WaitTimedOut { .. } => "wait_timed_out",
        }
    }
}

/// The status code of an engine answer, or `None` for a failure on the way.
fn status_of(err: &bollard::errors::Error) -> Option<(u16, String)> {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => Some((*status_code, message.clone())),
        _ => None,
    }
}

/// Maps an engine error met while applying `action` to what happened, by
/// status code (never by message): 404 missing, 409 conflict. Shared by the
/// real and the fake backend so both report the same variants.
pub(crate) fn action_error(
    project: &Project,
    action: &Action,
    err: bollard::errors::Error,
) -> Error {
    let Some((status, message)) = status_of(&err) else {
        let (operation, target) = describe(project, action);
        return Error::RequestFailed {
            operation,
            target,
            source: err,
        };
    };
    match (action, status) {
        (Action::CreateContainer { name, .. }, 409) => Error::NameInUse {
            container: name.clone(),
        },
        (Action::CreateContainer { name, .. }, 404) => Error::CreateFailed {
            container: name.clone(),
            message,
        },
        (Action::RenameContainer { to, .. }, 409) => Error::NameInUse {
            container: to.clone(),
        },
        (Action::RenameContainer { from: name, .. }, 404)
        | (Action::StartContainer { name }, 404)
        | (Action::StopContainer { name }, 404)
        | (Action::RemoveContainer { name, .. }, 404)
        | (Action::WaitContainer { name, .. }, 404) => Error::ContainerMissing {
            container: name.clone(),
        },
        (Action::StartContainer { name }, _) => Error::StartFailed {
            container: name.clone(),
            message,
        },
        (Action::RemoveContainer { name, .. }, 409) | (Action::StopContainer { name }, 409) => {
            Error::ContainerBusy {
                container: name.clone(),
                message,
            }
        }
        (Action::RemoveNetwork { network }, 409) | (Action::RemoveNetwork { network }, 403) => {
            Error::NetworkInUse {
                network: network_name(project, network),
                message,
            }
        }
        (Action::RemoveVolume { volume }, 409) => Error::VolumeInUse {
            volume: volume_name(project, volume),
            message,
        },
        (Action::EnsureImage { service }, _) => Error::PullFailed {
            service: service.clone(),
            image: project
                .services
                .get(service)
                .map(|s| spec::image_ref(&project.name, service, s))
                .unwrap_or_default(),
            message,
        },
        _ => {
            let (operation, target) = describe(project, action);
            Error::EngineRejected {
                operation,
                target,
                status,
                message,
            }
        }
    }
}

/// The engine name of network `key`, or `key` itself for an orphan.
pub(crate) fn network_name(project: &Project, key: &str) -> String {
    match project.networks.get(key) {
        Some(n) if !n.name.is_empty() => n.name.clone(),
        Some(_) => format!("{}_{key}", project.name),
        None => key.to_owned(),
    }
}

/// The engine name of volume `key`, or `key` itself for an orphan.
pub(crate) fn volume_name(project: &Project, key: &str) -> String {
    match project.volumes.get(key) {
        Some(v) if !v.name.is_empty() => v.name.clone(),
        Some(_) => format!("{}_{key}", project.name),
        None => key.to_owned(),
    }
}

/// The operation and target of an action, for error messages.
fn describe(project: &Project, action: &Action) -> (&'static str, String) {
    match action {
        Action::CreateNetwork { network } => ("create network", network_name(project, network)),
        Action::CreateVolume { volume } => ("create volume", volume_name(project, volume)),
        Action::EnsureImage { service } => ("ensure image of service", service.clone()),
        Action::CreateContainer { name, .. } => ("create container", name.clone()),
        Action::StartContainer { name } => ("start container", name.clone()),
        Action::StopContainer { name } => ("stop container", name.clone()),
        Action::RemoveContainer { name, .. } => ("remove container", name.clone()),
        Action::RenameContainer { from, to } => ("rename container", format!("{from} to {to}")),
        Action::WaitFor { service, .. } => ("wait for service", service.clone()),
        Action::WaitContainer { name, .. } => ("wait for container", name.clone()),
        Action::Delay { service, .. } => ("delay update of service", service.clone()),
        Action::RemoveNetwork { network } => ("remove network", network_name(project, network)),
        Action::RemoveVolume { volume } => ("remove volume", volume_name(project, volume)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server(status_code: u16) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: "engine says no".into(),
        }
    }

    #[test]
    fn a_conflict_on_create_is_a_name_in_use() {
        let action = Action::CreateContainer {
            service: "web".into(),
            number: 1,
            name: "p-web-1".into(),
        };
        let err = action_error(&Project::default(), &action, server(409));
        assert!(matches!(&err, Error::NameInUse { container } if container == "p-web-1"));
        assert_eq!(err.reason(), "name_in_use");
    }

    #[test]
    fn a_missing_container_names_it() {
        let action = Action::StopContainer {
            name: "p-db-1".into(),
        };
        let err = action_error(&Project::default(), &action, server(404));
        assert_eq!(err.to_string(), "container p-db-1 does not exist");
    }

    #[test]
    fn a_conflict_on_rename_names_the_new_name() {
        let action = Action::RenameContainer {
            from: "0123456789ab_p-db-1".into(),
            to: "p-db-1".into(),
        };
        let err = action_error(&Project::default(), &action, server(409));
        assert!(matches!(&err, Error::NameInUse { container } if container == "p-db-1"));
    }

    #[test]
    fn a_refused_start_says_the_container_failed_to_start() {
        let action = Action::StartContainer {
            name: "p-web-1".into(),
        };
        let err = action_error(&Project::default(), &action, server(500));
        assert_eq!(
            err.to_string(),
            "container p-web-1 failed to start: engine says no"
        );
    }

    #[test]
    fn a_volume_in_use_is_named_by_its_engine_name() {
        let project: Project =
            serde_json::from_str(r#"{"name": "p", "volumes": {"data": {"name": "p_data"}}}"#)
                .unwrap();
        let action = Action::RemoveVolume {
            volume: "data".into(),
        };
        let err = action_error(&project, &action, server(409));
        assert!(matches!(&err, Error::VolumeInUse { volume, .. } if volume == "p_data"));
    }

    #[test]
    fn any_other_answer_keeps_its_status_code() {
        let action = Action::CreateNetwork {
            network: "default".into(),
        };
        let err = action_error(&Project::default(), &action, server(500));
        assert!(matches!(err, Error::EngineRejected { status: 500, .. }));
    }

    #[test]
    fn every_action_has_a_kind_with_a_stable_name() {
        let action = Action::WaitFor {
            service: "db".into(),
            condition: Condition::ServiceHealthy,
        };
        assert_eq!(ActionKind::of(&action).as_str(), "wait_for");
    }
}
