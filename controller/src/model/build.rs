//! A service's `build` section: how its image is built.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::scalar::{env_map, is_default, string_map, string_or_number, HostsList};
use super::service::{FileReferenceConfig, UlimitsConfig};
use super::units::ByteSize;

/// How to build a service's image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// Build context: a directory (absolute after loading) or a URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// Dockerfile path, relative to the context.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dockerfile: String,
    /// Dockerfile content given inline.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dockerfile_inline: String,
    /// Extra privileges the build may use (`network.host`, `security.insecure`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
    /// Build arguments; `None` takes the value from the environment.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "env_map"
    )]
    pub args: BTreeMap<String, Option<String>>,
    /// Provenance attestation setting.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "string_or_number"
    )]
    pub provenance: String,
    /// SBOM attestation setting.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "string_or_number"
    )]
    pub sbom: String,
    /// SSH agent sockets or keys the build may use.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "ssh_keys"
    )]
    pub ssh: Vec<SshKey>,
    /// Image labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// Cache sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// Cache destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<String>,
    /// Whether the build cache is ignored.
    #[serde(default, skip_serializing_if = "is_default")]
    pub no_cache: bool,
    /// Named extra contexts.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub additional_contexts: BTreeMap<String, String>,
    /// Whether base images are always pulled.
    #[serde(default, skip_serializing_if = "is_default")]
    pub pull: bool,
    /// Extra `/etc/hosts` entries during the build.
    #[serde(default, skip_serializing_if = "HostsList::is_empty")]
    pub extra_hosts: HostsList,
    /// Isolation technology (Windows).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    /// Network mode during `RUN` steps.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// Stage to build.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Secrets the build may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileReferenceConfig>,
    /// Size of `/dev/shm` during the build.
    #[serde(default, skip_serializing_if = "ByteSize::is_zero")]
    pub shm_size: ByteSize,
    /// Extra tags for the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Ulimits during the build.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, UlimitsConfig>,
    /// Platforms to build for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Whether the build runs privileged.
    #[serde(default, skip_serializing_if = "is_default")]
    pub privileged: bool,
}

/// An SSH agent socket or key for the build: `default`, or `id=path`.
///
/// Compose prints an id alone as a string and fails to print one with a
/// path; this model prints the latter as `id=path`, the form compose reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshKey {
    /// Key id (`default` for the agent).
    pub id: String,
    /// Socket or key file; empty means the agent.
    pub path: String,
}

impl fmt::Display for SshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.id)
        } else {
            write!(f, "{}={}", self.id, self.path)
        }
    }
}

impl Serialize for SshKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SshKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SshKeyVisitor;
        impl Visitor<'_> for SshKeyVisitor {
            type Value = SshKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an SSH key id, or id=path")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<SshKey, E> {
                let (id, path) = v.split_once('=').unwrap_or((v, ""));
                if id.is_empty() {
                    return Err(E::custom(format!("invalid ssh key {v:?}: empty id")));
                }
                Ok(SshKey {
                    id: id.to_owned(),
                    path: path.to_owned(),
                })
            }
        }
        deserializer.deserialize_str(SshKeyVisitor)
    }
}

/// `build.ssh` as a list (`[default, id=path]`) or as the mapping the
/// loader's canonical form uses (`{default: null, id: path}`).
fn ssh_keys<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<SshKey>, D::Error> {
    struct KeysVisitor;
    impl<'de> Visitor<'de> for KeysVisitor {
        type Value = Vec<SshKey>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of SSH keys or a mapping of id to path")
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = seq.next_element::<SshKey>()? {
                keys.push(key);
            }
            Ok(keys)
        }

        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut keys = Vec::new();
            while let Some((id, path)) = map.next_entry::<String, Option<String>>()? {
                keys.push(SshKey {
                    id,
                    path: path.unwrap_or_default(),
                });
            }
            Ok(keys)
        }
    }
    deserializer.deserialize_any(KeysVisitor)
}

impl JsonSchema for SshKey {
    fn schema_name() -> Cow<'static, str> {
        "SshKey".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "An SSH key id (`default` for the agent), or id=path."
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ssh_keys_print_as_the_id_or_id_equals_path() {
        let agent: SshKey = serde_json::from_str("\"default\"").unwrap();
        assert_eq!(agent.path, "");
        assert_eq!(serde_json::to_string(&agent).unwrap(), "\"default\"");
        let key: SshKey = serde_json::from_str("\"gh=/root/.ssh/id\"").unwrap();
        assert_eq!(key.id, "gh");
        assert_eq!(serde_json::to_string(&key).unwrap(), "\"gh=/root/.ssh/id\"");
    }

    #[test]
    fn build_args_keep_null_as_no_value() {
        let build: BuildConfig =
            serde_json::from_str(r#"{"context": ".", "args": {"A": null, "B": 2}}"#).unwrap();
        assert_eq!(build.args["A"], None);
        assert_eq!(build.args["B"].as_deref(), Some("2"));
    }
}
