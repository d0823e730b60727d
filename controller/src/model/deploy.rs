//! A service's `deploy` section (replicas, resources, restart and update
//! policies, placement) and device requests.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::scalar::{is_default, string_map};
use super::units::{go_f32, ByteSize, Duration};

/// Deployment settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// `replicated`, `global`, `replicated-job` or `global-job`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// Number of containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    /// Labels on the service (not its containers).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// How updates roll out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    /// How failed updates roll back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    /// Resource limits and reservations (always printed, as compose does).
    #[serde(default)]
    pub resources: Resources,
    /// When containers restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    /// Where containers may run (always printed, as compose does).
    #[serde(default)]
    pub placement: Placement,
    /// `vip` or `dnsrr`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint_mode: String,
}

/// How a rolling update or rollback proceeds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    /// Containers updated at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u64>,
    /// Wait between batches.
    #[serde(default, skip_serializing_if = "Duration::is_zero")]
    pub delay: Duration,
    /// `continue`, `rollback` or `pause`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_action: String,
    /// How long each update is watched for failure.
    #[serde(default, skip_serializing_if = "Duration::is_zero")]
    pub monitor: Duration,
    /// Tolerated failure ratio.
    #[serde(
        default,
        skip_serializing_if = "go_f32::is_zero",
        serialize_with = "go_f32::serialize",
        deserialize_with = "go_f32::deserialize"
    )]
    pub max_failure_ratio: f32,
    /// `stop-first` or `start-first`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub order: String,
}

/// Resource limits and reservations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Upper limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resource>,
    /// Guaranteed amounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Resource>,
}

/// An amount of resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// CPUs (fractions allowed).
    #[serde(
        default,
        skip_serializing_if = "go_f32::is_zero",
        serialize_with = "go_f32::serialize",
        deserialize_with = "go_f32::deserialize"
    )]
    pub cpus: f32,
    /// Memory.
    #[serde(default, skip_serializing_if = "ByteSize::is_zero")]
    pub memory: ByteSize,
    /// Process count.
    #[serde(default, skip_serializing_if = "is_default")]
    pub pids: i64,
    /// Devices (GPUs and others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRequest>,
    /// User-defined resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
}

/// A user-defined resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericResource {
    /// A counted resource such as `SSD=3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_resource_spec: Option<DiscreteGenericResource>,
}

/// A counted user-defined resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscreteGenericResource {
    /// Resource kind (`GPU`, `SSD`, ...).
    #[serde(default)]
    pub kind: String,
    /// How many.
    #[serde(default)]
    pub value: i64,
}

/// When a service's containers restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// `none`, `on-failure` or `any`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    /// Wait between restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Restarts allowed within the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    /// Window in which restarts are counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
}

/// Placement rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Node constraints (`node.role==manager`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    /// Spread preferences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreferences>,
    /// Replicas allowed per node.
    #[serde(default, skip_serializing_if = "is_default")]
    pub max_replicas_per_node: u64,
}

/// A placement preference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementPreferences {
    /// Node label to spread over.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spread: String,
}

/// A request for devices such as GPUs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceRequest {
    /// Required capabilities (`gpu`, `compute`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Device driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// How many devices; `-1` means all.
    #[serde(default, skip_serializing_if = "is_default")]
    pub count: i64,
    /// Specific device ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    /// Driver options.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub options: BTreeMap<String, String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_and_placement_print_even_when_empty() {
        let deploy: DeployConfig = serde_json::from_str(r#"{"replicas": 2}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&deploy).unwrap(),
            json!({"replicas": 2, "resources": {}, "placement": {}})
        );
    }

    #[test]
    fn limits_print_cpus_as_numbers_and_memory_as_strings() {
        let resources: Resources =
            serde_json::from_str(r#"{"limits": {"cpus": "0.5", "memory": "50m", "pids": 10}}"#)
                .unwrap();
        assert_eq!(
            serde_json::to_value(&resources).unwrap(),
            json!({"limits": {"cpus": 0.5, "memory": "52428800", "pids": 10}})
        );
    }

    #[test]
    fn update_delays_of_zero_are_left_out() {
        let update: UpdateConfig =
            serde_json::from_str(r#"{"delay": "0s", "monitor": "60s", "parallelism": 0}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            json!({"parallelism": 0, "monitor": "1m0s"})
        );
    }
}
