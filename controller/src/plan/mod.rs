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
mod rolling;
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
pub use rolling::{rollout_of, FailureAction, Order, Rollout};
pub use service::{
    container_name, desired_replicas, has_healthcheck, image_ref, is_one_shot, parse_condition,
    restart_policy, temporary_name,
};
pub(crate) use up::external_names;
pub use up::{plan_up, UpOptions};

use std::time::Duration;

use serde::{Serialize, Serializer};

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
    /// Wait until one container (a rolling update's new container, under
    /// its temporary name) meets `condition`, then keep watching it until
    /// `monitor` has passed since the wait began; fails as soon as it
    /// cannot meet it (unhealthy, exited, restarted, gone).
    WaitContainer {
        /// The service it belongs to.
        service: String,
        /// Container name.
        name: String,
        /// `ServiceHealthy` when the service has a healthcheck, else
        /// `ServiceStarted` (running).
        condition: Condition,
        /// How long the container must keep meeting the condition.
        #[serde(rename = "monitor_seconds", serialize_with = "seconds")]
        monitor: Duration,
    },
    /// Let time pass between two batches of a rolling update.
    Delay {
        /// The service being updated.
        service: String,
        /// How long.
        #[serde(rename = "seconds", serialize_with = "seconds")]
        duration: Duration,
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

impl Action {
    /// True for actions that only wait (on the engine or the clock) and
    /// change nothing: the executor does not count them against its
    /// parallelism and cancels them when another step fails.
    pub fn is_wait(&self) -> bool {
        matches!(
            self,
            Action::WaitFor { .. } | Action::WaitContainer { .. } | Action::Delay { .. }
        )
    }
}

fn seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
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
