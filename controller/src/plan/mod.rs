//! Pure planning: from the desired project and a snapshot of what the engine
//! runs, the ordered actions that converge one onto the other. No I/O here:
//! the backends observe and execute, this module only decides.
//!
//! Entry points: [`plan_up`] and [`plan_down`]. A [`Plan`] is a list of
//! [`Step`]s, each an [`Action`] with its cause and the earlier steps it
//! waits for; steps that do not wait on each other may run in parallel.
//! Plans print one line per step (`create container demo-web-2 (scale 1 → 2)`)
//! and serialize to JSON.
mod builder;
mod down;
mod error;
mod graph;
mod hash;
mod observed;
mod render;
mod service;
mod up;

#[cfg(test)]
mod tests;

pub use down::plan_down;
pub use error::PlanError;
pub use graph::Graph;
pub use hash::config_hash;
pub use observed::{
    ContainerState, Health, Observed, ObservedContainer, ObservedNetwork, ObservedVolume,
};
pub use service::{
    container_name, desired_replicas, has_healthcheck, image_ref, is_one_shot, parse_condition,
    restart_policy, temporary_name,
};
pub use up::{plan_up, UpOptions};

use serde::Serialize;

/// What a dependent waits for before it starts, as `depends_on.condition` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency's containers are running.
    ServiceStarted,
    /// The dependency's containers report healthy.
    ServiceHealthy,
    /// The dependency's containers exited with status 0.
    ServiceCompletedSuccessfully,
}

/// One thing to do to the engine. Containers are named by their final name
/// (`<project>-<service>-<n>`), networks and volumes by their key in the
/// project; the backend maps keys to engine names from the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Create a project network.
    CreateNetwork {
        /// Key in `networks`.
        network: String,
    },
    /// Create a named volume.
    CreateVolume {
        /// Key in `volumes`.
        volume: String,
    },
    /// Make the service's image available: build it, or pull it as
    /// `pull_policy` allows (a missing image with `never` is an error).
    EnsureImage {
        /// The service.
        service: String,
    },
    /// Create a container for replica `number` of `service` under `name`
    /// (the final name, or a temporary one while replacing a container).
    CreateContainer {
        /// The service.
        service: String,
        /// Replica number, from 1.
        number: u32,
        /// Container name to create.
        name: String,
    },
    /// Start a created or stopped container.
    StartContainer {
        /// Container name.
        name: String,
    },
    /// Stop a running container (stop signal, then kill after the grace period).
    StopContainer {
        /// Container name.
        name: String,
    },
    /// Remove a stopped container.
    RemoveContainer {
        /// Container name.
        name: String,
        /// Also remove its anonymous volumes (`down -v`, as compose does);
        /// one another container still mounts stays.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        volumes: bool,
    },
    /// Rename a container (the last step of a replacement).
    RenameContainer {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// Wait until every replica of `service` meets `condition`.
    WaitFor {
        /// The service waited on.
        service: String,
        /// What to wait for.
        condition: Condition,
    },
    /// Remove a project network (`down`).
    RemoveNetwork {
        /// Key in `networks`, or the engine name for an orphan.
        network: String,
    },
    /// Remove a named volume (`down -v` only).
    RemoveVolume {
        /// Key in `volumes`, or the engine name for an orphan.
        volume: String,
    },
}

/// An action with why it is needed and which earlier steps must finish first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
    /// Why, for people (`config changed`, `scale 1 → 3`, `missing`).
    pub cause: String,
    /// Indexes of the steps that must complete before this one starts.
    pub after: Vec<usize>,
}

/// The ordered steps of a convergence; empty when nothing is to be done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Steps in an order that respects every `after`.
    pub steps: Vec<Step>,
}

impl Plan {
    /// True when the engine already matches the project.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}
