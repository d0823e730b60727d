//! Why a project cannot be planned: what the model asks for cannot be
//! reached from what the engine runs without breaking a safety rule.

/// A plan that was refused. Nothing is changed when planning fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Services depend on each other in a circle.
    #[error("dependency cycle detected: {}", path.join(" -> "))]
    DependencyCycle {
        /// The services on the cycle, the first repeated at the end.
        path: Vec<String>,
    },
    /// A required dependency is not a service of the project.
    #[error("service {service:?} depends on undefined service {dependency:?}")]
    UnknownDependency {
        /// The dependent.
        service: String,
        /// The missing dependency.
        dependency: String,
    },
    /// A `depends_on` condition is not one compose knows.
    #[error("service {service:?} waits on {dependency:?} for unknown condition {condition:?}")]
    UnknownCondition {
        /// The dependent.
        service: String,
        /// The dependency.
        dependency: String,
        /// The condition as written.
        condition: String,
    },
    /// A network declared `external` does not exist on the engine.
    #[error("network {name:?} (networks.{network}) is declared external but does not exist; create it first")]
    MissingExternalNetwork {
        /// Its key in the project.
        network: String,
        /// Its engine name.
        name: String,
    },
    /// A volume declared `external` does not exist on the engine.
    #[error("volume {name:?} (volumes.{volume}) is declared external but does not exist; create it first")]
    MissingExternalVolume {
        /// Its key in the project.
        volume: String,
        /// Its engine name.
        name: String,
    },
    /// `scale` or `deploy.replicas` is negative or too large.
    #[error("service {service:?} asks for {replicas} replicas")]
    InvalidReplicas {
        /// The service.
        service: String,
        /// The number asked for.
        replicas: i64,
    },
    /// A fixed `container_name` cannot be given to more than one container.
    #[error("service {service:?} has container_name {container_name:?} and {replicas} replicas; remove the name to scale the service")]
    ContainerNameWithScale {
        /// The service.
        service: String,
        /// The fixed name.
        container_name: String,
        /// The replicas asked for.
        replicas: u32,
    },
    /// The service is run by a provider plugin, which stackd does not run.
    #[error("service {service:?} uses provider {provider:?}, which stackd does not support")]
    UnsupportedProvider {
        /// The service.
        service: String,
        /// The provider type.
        provider: String,
    },
    /// The project has no services while the engine runs some of its
    /// containers: refused, as it would remove everything (safety rule 2).
    #[error("project {project:?} defines no services but has running containers; use `down` to remove them")]
    EmptyProject {
        /// The project name.
        project: String,
    },
}

impl PlanError {
    /// A short, fixed label for metrics and status reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::DependencyCycle { .. } => "dependency_cycle",
            Self::UnknownDependency { .. } => "unknown_dependency",
            Self::UnknownCondition { .. } => "unknown_condition",
            Self::MissingExternalNetwork { .. } => "missing_external_network",
            Self::MissingExternalVolume { .. } => "missing_external_volume",
            Self::InvalidReplicas { .. } => "invalid_replicas",
            Self::ContainerNameWithScale { .. } => "container_name_with_scale",
            Self::UnsupportedProvider { .. } => "unsupported_provider",
            Self::EmptyProject { .. } => "empty_project",
        }
    }
}
