//! The project: services plus the top-level networks, volumes, secrets,
//! configs, models and `x-*` extensions they refer to.
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::network::NetworkConfig;
use super::scalar::{is_default, string_map};
use super::service::ServiceConfig;
use super::volume::VolumeConfig;

/// A loaded, normalized compose project.
///
/// Serializes to the JSON `docker compose config --format json` prints:
/// `name` and `services` always, `networks`, `volumes`, `secrets` and
/// `configs` when not empty, and top-level `x-*` extensions inline. Like
/// compose, it does not print `models`.
#[derive(Debug, Clone, Default, PartialEq, schemars::JsonSchema)]
pub struct Project {
    /// The project name.
    #[serde(default)]
    pub name: String,
    /// Services by name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    /// Networks by key.
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkConfig>,
    /// Named volumes by key.
    #[serde(default)]
    pub volumes: BTreeMap<String, VolumeConfig>,
    /// Secrets by key.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretConfig>,
    /// Configs by key.
    #[serde(default)]
    pub configs: BTreeMap<String, ConfigObjConfig>,
    /// AI models by key. Read, but never printed (compose leaves them out).
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    /// Top-level `x-*` keys with their values.
    #[schemars(skip)]
    pub extensions: BTreeMap<String, serde_json::Value>,
}

impl Project {
    /// Rewrites the absolute paths under `dir` that the project holds (secret
    /// and config files, bind mount sources, build contexts, env files) as
    /// `./`-relative ones; paths elsewhere stay absolute.
    pub fn make_paths_relative(&mut self, dir: &Path) {
        let relative = |path: &mut String| {
            let Ok(rest) = Path::new(path.as_str()).strip_prefix(dir) else {
                return;
            };
            *path = if rest.as_os_str().is_empty() {
                ".".to_owned()
            } else {
                format!("./{}", rest.display())
            };
        };
        for secret in self.secrets.values_mut() {
            relative(&mut secret.file);
        }
        for config in self.configs.values_mut() {
            relative(&mut config.file);
        }
        for service in self.services.values_mut() {
            for volume in service.volumes.iter_mut().filter(|v| v.kind == "bind") {
                relative(&mut volume.source);
            }
            if let Some(build) = service.build.as_mut() {
                relative(&mut build.context);
            }
            for env_file in &mut service.env_file {
                relative(&mut env_file.path);
            }
        }
    }
}

const PROJECT_FIELDS: &[&str] = &[
    "name", "services", "networks", "volumes", "secrets", "configs", "models",
];

impl Serialize for Project {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("services", &self.services)?;
        if !self.networks.is_empty() {
            map.serialize_entry("networks", &self.networks)?;
        }
        if !self.volumes.is_empty() {
            map.serialize_entry("volumes", &self.volumes)?;
        }
        if !self.secrets.is_empty() {
            map.serialize_entry("secrets", &self.secrets)?;
        }
        if !self.configs.is_empty() {
            map.serialize_entry("configs", &self.configs)?;
        }
        for (key, value) in &self.extensions {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Reads the printed form: the known top-level keys, plus any `x-*` key
/// into `extensions`; any other key is an error.
impl<'de> Deserialize<'de> for Project {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProjectVisitor;
        impl<'de> Visitor<'de> for ProjectVisitor {
            type Value = Project;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a compose project")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Project, A::Error> {
                let mut project = Project::default();
                let mut seen: Vec<String> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if seen.contains(&key) {
                        return Err(de::Error::custom(format!("duplicate field `{key}`")));
                    }
                    match key.as_str() {
                        "name" => project.name = map.next_value()?,
                        "services" => project.services = map.next_value()?,
                        "networks" => project.networks = map.next_value()?,
                        "volumes" => project.volumes = map.next_value()?,
                        "secrets" => project.secrets = map.next_value()?,
                        "configs" => project.configs = map.next_value()?,
                        "models" => project.models = map.next_value()?,
                        extension if extension.starts_with("x-") => {
                            let value = map.next_value()?;
                            project.extensions.insert(key.clone(), value);
                        }
                        other => return Err(de::Error::unknown_field(other, PROJECT_FIELDS)),
                    }
                    seen.push(key);
                }
                Ok(project)
            }
        }
        // A map, not a struct: the project keeps its `x-*` keys, which the
        // loader's deserializer drops from structs.
        deserializer.deserialize_map(ProjectVisitor)
    }
}

/// A secret. Its `content` is read but never printed, as in compose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// Engine-side name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// File holding the value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// Environment variable holding the value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub environment: String,
    /// The value given inline; never printed.
    #[serde(default, skip_serializing)]
    pub content: String,
    /// Whether the secret exists outside the project.
    #[serde(default, skip_serializing_if = "is_default")]
    pub external: bool,
    /// Labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// Secret driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Driver options.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub driver_opts: BTreeMap<String, String>,
    /// Template driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template_driver: String,
}

/// A config file for services.
///
/// Compose prints `content` unless `environment` is set; the loader keeps
/// `content` empty for environment-sourced configs, so printing it when
/// non-empty gives the same output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigObjConfig {
    /// Engine-side name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// File holding the content.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// Environment variable holding the content.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub environment: String,
    /// The content given inline.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
    /// Whether the config exists outside the project.
    #[serde(default, skip_serializing_if = "is_default")]
    pub external: bool,
    /// Labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// Config driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Driver options.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub driver_opts: BTreeMap<String, String>,
    /// Template driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template_driver: String,
}

/// An AI model the project runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Name given to the model.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Model reference (`ai/smollm2`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "is_default")]
    pub context_size: i64,
    /// Flags passed to the inference runtime.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_flags: Vec<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_empty_project_prints_its_name_and_services() {
        assert_eq!(
            serde_json::to_value(Project::default()).unwrap(),
            json!({"name": "", "services": {}})
        );
    }

    #[test]
    fn top_level_extensions_are_read_and_printed_inline() {
        let project: Project =
            serde_json::from_str(r#"{"name": "p", "services": {}, "x-foo": {"a": [1]}}"#).unwrap();
        assert_eq!(project.extensions["x-foo"], json!({"a": [1]}));
        assert_eq!(
            serde_json::to_value(&project).unwrap(),
            json!({"name": "p", "services": {}, "x-foo": {"a": [1]}})
        );
    }

    #[test]
    fn unknown_top_level_keys_are_rejected() {
        let err = serde_json::from_str::<Project>(r#"{"name": "p", "version": "3"}"#).unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");
    }

    #[test]
    fn repeated_top_level_keys_are_rejected() {
        assert!(serde_json::from_str::<Project>(r#"{"name": "p", "name": "q"}"#).is_err());
    }

    #[test]
    fn models_are_read_but_not_printed() {
        let project: Project =
            serde_json::from_str(r#"{"name": "p", "models": {"llm": {"model": "ai/x"}}}"#).unwrap();
        assert_eq!(project.models["llm"].model, "ai/x");
        assert_eq!(
            serde_json::to_value(&project).unwrap(),
            json!({"name": "p", "services": {}})
        );
    }

    #[test]
    fn secret_content_is_never_printed_but_config_content_is() {
        let project: Project = serde_json::from_str(
            r#"{"name": "p",
                "secrets": {"s": {"name": "p_s", "content": "hunter2"}},
                "configs": {"c": {"name": "p_c", "content": "k=v"}}}"#,
        )
        .unwrap();
        assert_eq!(project.secrets["s"].content, "hunter2");
        let printed = serde_json::to_value(&project).unwrap();
        assert_eq!(printed["secrets"], json!({"s": {"name": "p_s"}}));
        assert_eq!(
            printed["configs"],
            json!({"c": {"name": "p_c", "content": "k=v"}})
        );
    }
}
