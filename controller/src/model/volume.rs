//! Top-level named volumes.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::scalar::{is_default, string_map};

/// A named volume the project defines or refers to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeConfig {
    /// Engine-side name (`<project>_<key>` unless set or external).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Volume driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Driver options.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub driver_opts: BTreeMap<String, String>,
    /// Whether the volume exists outside the project and is not managed.
    #[serde(default, skip_serializing_if = "is_default")]
    pub external: bool,
    /// Volume labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
}
