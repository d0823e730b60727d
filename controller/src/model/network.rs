//! Top-level networks and their IP address management.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::scalar::{is_default, string_map};

/// A network the project defines or refers to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Engine-side name (`<project>_<key>` unless set or external).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Network driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Driver options.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub driver_opts: BTreeMap<String, String>,
    /// Address management (always printed, as compose does).
    #[serde(default)]
    pub ipam: IpamConfig,
    /// Whether the network exists outside the project and is not managed.
    #[serde(default, skip_serializing_if = "is_default")]
    pub external: bool,
    /// Whether the network has no outside connectivity.
    #[serde(default, skip_serializing_if = "is_default")]
    pub internal: bool,
    /// Whether standalone containers may attach.
    #[serde(default, skip_serializing_if = "is_default")]
    pub attachable: bool,
    /// Network labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// Whether IPv4 is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_ipv4: Option<bool>,
    /// Whether IPv6 is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
}

/// IP address management for a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpamConfig {
    /// IPAM driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Address pools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    /// Driver options. Accepted and kept for the engine, but not printed:
    /// compose's model has no place for them.
    #[serde(default, skip_serializing)]
    pub options: BTreeMap<String, String>,
}

/// One address pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpamPool {
    /// Subnet in CIDR form.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    /// Gateway address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// Range containers get addresses from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    /// Addresses reserved for other hosts, by name.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub aux_addresses: BTreeMap<String, String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_network_always_prints_its_ipam_section() {
        let network: NetworkConfig = serde_json::from_str(r#"{"name": "p_default"}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&network).unwrap(),
            json!({"name": "p_default", "ipam": {}})
        );
    }
}
