//! A snapshot of what the engine runs for one project, with the compose
//! labels already parsed, so planning needs no further calls.
use std::collections::BTreeMap;

use serde::Serialize;

/// The lifecycle state of a container as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Restarting after an exit, by its restart policy.
    Restarting,
    /// Exited with this status code.
    Exited(i64),
    /// Dead (failed removal or a broken state).
    Dead,
    /// Being removed.
    Removing,
}

/// A container's health, when it has a healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Within its start period or before the first check.
    Starting,
    /// The last checks passed.
    Healthy,
    /// The checks failed `retries` times in a row.
    Unhealthy,
}

/// A container of the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedContainer {
    /// Engine id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// `com.docker.compose.service`.
    pub service: String,
    /// `com.docker.compose.container-number`.
    pub number: u32,
    /// `com.docker.compose.oneoff` is `True` (`run` containers; never touched by `up`).
    pub oneoff: bool,
    /// `com.docker.compose.config-hash`.
    pub config_hash: String,
    /// The image as configured (`Config.Image`).
    pub image: String,
    /// The image id the container was created from.
    pub image_id: String,
    /// Lifecycle state.
    pub state: ContainerState,
    /// Health, when the container has a healthcheck.
    pub health: Option<Health>,
    /// Engine name → id of each network it is attached to (the id is empty
    /// for a container never started); empty when not known.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, String>,
}

impl ObservedContainer {
    /// The final name this container is being renamed to when it carries a
    /// replacement's temporary name (`<old id prefix>_<final name>`).
    pub fn replacement_for(&self) -> Option<&str> {
        let (prefix, rest) = self.name.split_once('_')?;
        let is_id_prefix = prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit());
        is_id_prefix.then_some(rest)
    }
}

/// A network labelled for the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedNetwork {
    /// Engine name.
    pub name: String,
    /// Engine id.
    pub id: String,
    /// `com.docker.compose.network`: its key in the project.
    pub key: String,
    /// `com.docker.compose.config-hash`, when set.
    pub config_hash: String,
}

/// A volume labelled for the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedVolume {
    /// Engine name.
    pub name: String,
    /// `com.docker.compose.volume`: its key in the project.
    pub key: String,
}

/// Everything labelled with the project's name, plus the ids of the images
/// the project refers to (`None` for an image the engine does not have).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// Containers, one-off ones included.
    pub containers: Vec<ObservedContainer>,
    /// Networks, when they were listed (a no-op check may skip them): those
    /// labelled with the project, plus the external networks the project
    /// names, found by engine name (a missing one is a plan error).
    pub networks: Option<Vec<ObservedNetwork>>,
    /// Volumes, when they were listed: those labelled with the project, plus
    /// the external volumes the project names, found by engine name.
    pub volumes: Option<Vec<ObservedVolume>>,
    /// Image reference ([`super::image_ref`]) → image id, for the
    /// references the project uses. A reference left out was not looked up:
    /// the image is then ensured only before creating containers, and image
    /// changes go unnoticed. Ids compare as strings with
    /// [`ObservedContainer::image_id`], so both must be in one form.
    pub images: BTreeMap<String, Option<String>>,
}
