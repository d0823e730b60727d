//! One service of a compose project and everything nested in it, except
//! `build` (build.rs) and `deploy` (deploy.rs).
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::build::BuildConfig;
use super::deploy::{DeployConfig, DeviceRequest};
use super::scalar::{
    env_map, is_default, multi_options, string_list, string_map, string_or_number, HostsList,
};
use super::units::{go_f32, ByteSize, Duration, FileMode};

/// A service: the containers compose runs from one image or build.
///
/// Fields and their JSON names follow `docker compose config --format json`;
/// zero values (empty strings, `false`, `0`, empty lists and maps) are left
/// out of the output as compose leaves them out, except `command` and
/// `entrypoint`, which print `null` when unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Profiles under which the service is enabled; empty means always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Container annotations.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Whether `up` attaches to the service's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    /// How to build the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildConfig>,
    /// `docker compose watch` rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub develop: Option<DevelopConfig>,
    /// Block IO limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blkio_config: Option<BlkioConfig>,
    /// Kernel capabilities to add.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Kernel capabilities to drop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Parent cgroup.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup_parent: String,
    /// Cgroup namespace mode (`host` or `private`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup: String,
    /// Usable CPU count (Windows).
    #[serde(default, skip_serializing_if = "is_default")]
    pub cpu_count: i64,
    /// Usable CPU percentage (Windows).
    #[serde(
        default,
        skip_serializing_if = "go_f32::is_zero",
        serialize_with = "go_f32::serialize",
        deserialize_with = "go_f32::deserialize"
    )]
    pub cpu_percent: f32,
    /// CFS period in microseconds.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cpu_period: i64,
    /// CFS quota in microseconds.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cpu_quota: i64,
    /// Real-time period in microseconds.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cpu_rt_period: i64,
    /// Real-time runtime in microseconds.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cpu_rt_runtime: i64,
    /// CPU count limit.
    #[serde(
        default,
        skip_serializing_if = "go_f32::is_zero",
        serialize_with = "go_f32::serialize",
        deserialize_with = "go_f32::deserialize"
    )]
    pub cpus: f32,
    /// CPUs the containers may run on (`0-3`, `0,1`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpuset: String,
    /// Relative CPU weight.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cpu_shares: i64,
    /// Overrides the image's command; `None` keeps it, an empty list clears it.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Configs mounted into the containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileReferenceConfig>,
    /// Fixed container name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    /// Windows credential spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<CredentialSpecConfig>,
    /// Services this one starts after.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, ServiceDependency>,
    /// Deployment settings (replicas, resources, restart policy, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployConfig>,
    /// Device cgroup rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    /// Host devices mapped into the containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceMapping>,
    /// DNS servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// DNS resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// DNS search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// Legacy top-level Dockerfile path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dockerfile: String,
    /// Container domain name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domainname: String,
    /// Overrides the image's entrypoint; `None` keeps it, an empty list clears it.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// A provider plugin that manages this service instead of containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ServiceProviderConfig>,
    /// Container environment; a `None` value means "take it from the
    /// environment compose runs in, if set".
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "env_map"
    )]
    pub environment: BTreeMap<String, Option<String>>,
    /// Files the environment is read from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<EnvFile>,
    /// Ports exposed to linked services only (`80`, `8000-8010/udp`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "string_list"
    )]
    pub expose: Vec<String>,
    /// The service this one extends (kept after `extends` is resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<ExtendsConfig>,
    /// Links to containers outside the project.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<String>,
    /// Extra `/etc/hosts` entries.
    #[serde(default, skip_serializing_if = "HostsList::is_empty")]
    pub extra_hosts: HostsList,
    /// Supplementary groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// GPU requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<DeviceRequest>,
    /// Container host name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthCheckConfig>,
    /// Image reference.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Whether to run an init process as PID 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// IPC namespace mode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipc: String,
    /// Container isolation technology (Windows).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    /// Container labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// Files labels are read from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_file: Vec<String>,
    /// Legacy links to other services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Logging driver and options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingConfig>,
    /// Legacy logging driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_driver: String,
    /// Legacy logging options.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub log_opt: BTreeMap<String, String>,
    /// Memory limit.
    #[serde(default, skip_serializing_if = "ByteSize::is_zero")]
    pub mem_limit: ByteSize,
    /// Memory soft limit.
    #[serde(default, skip_serializing_if = "ByteSize::is_zero")]
    pub mem_reservation: ByteSize,
    /// Memory plus swap limit; `-1` means unlimited swap.
    #[serde(default, skip_serializing_if = "ByteSize::is_zero")]
    pub memswap_limit: ByteSize,
    /// Swappiness (0-100); compose types it as a size, so it prints as a string.
    #[serde(default, skip_serializing_if = "ByteSize::is_zero")]
    pub mem_swappiness: ByteSize,
    /// Container MAC address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// Models (top-level `models`) this service uses; `None` means default
    /// variable names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, Option<ServiceModelConfig>>,
    /// Legacy network mode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub net: String,
    /// Network mode (`host`, `none`, `service:NAME`, `container:ID`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_mode: String,
    /// Networks the service joins; `None` joins with default settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Option<ServiceNetworkConfig>>,
    /// Whether the OOM killer is disabled.
    #[serde(default, skip_serializing_if = "is_default")]
    pub oom_kill_disable: bool,
    /// OOM score adjustment.
    #[serde(default, skip_serializing_if = "is_default")]
    pub oom_score_adj: i64,
    /// PID namespace mode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pid: String,
    /// PID limit; `-1` means unlimited.
    #[serde(default, skip_serializing_if = "is_default")]
    pub pids_limit: i64,
    /// Target platform (`linux/amd64`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub platform: String,
    /// Published ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePortConfig>,
    /// Whether containers run privileged.
    #[serde(default, skip_serializing_if = "is_default")]
    pub privileged: bool,
    /// When to pull the image (`always`, `missing`, `never`, `build`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pull_policy: String,
    /// Whether the root filesystem is read-only.
    #[serde(default, skip_serializing_if = "is_default")]
    pub read_only: bool,
    /// Restart policy (`no`, `always`, `on-failure[:N]`, `unless-stopped`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub restart: String,
    /// Container runtime.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    /// Number of containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<i64>,
    /// Secrets mounted into the containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileReferenceConfig>,
    /// Security options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Size of `/dev/shm`.
    #[serde(default, skip_serializing_if = "ByteSize::is_zero")]
    pub shm_size: ByteSize,
    /// Whether stdin stays open.
    #[serde(default, skip_serializing_if = "is_default")]
    pub stdin_open: bool,
    /// How long to wait after the stop signal before killing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    /// Signal that stops the containers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    /// Storage driver options.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub storage_opt: BTreeMap<String, String>,
    /// Namespaced kernel parameters.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub sysctls: BTreeMap<String, String>,
    /// tmpfs mounts (`/run`, `/tmp:size=64m`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// Whether a TTY is allocated.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tty: bool,
    /// Resource limits per ulimit name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, UlimitsConfig>,
    /// Whether the engine API socket is mounted into the containers.
    #[serde(default, skip_serializing_if = "is_default")]
    pub use_api_socket: bool,
    /// User (and group) the process runs as.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// User namespace mode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub userns_mode: String,
    /// UTS namespace mode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uts: String,
    /// Default volume driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub volume_driver: String,
    /// Mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolumeConfig>,
    /// Services or containers whose volumes are mounted too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// Working directory inside the containers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    /// Commands run in a container after it starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<ServiceHook>,
    /// Commands run in a container before it stops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<ServiceHook>,
}

/// A provider plugin that stands in for the service's containers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceProviderConfig {
    /// Provider type (plugin name).
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Options passed to the provider; an option may repeat.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "multi_options"
    )]
    pub options: BTreeMap<String, Vec<String>>,
}

/// `docker compose watch` configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DevelopConfig {
    /// Paths to watch and what to do when they change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<Trigger>,
}

/// One watch rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Path watched on the host.
    #[serde(default)]
    pub path: String,
    /// `sync`, `rebuild`, `restart`, `sync+restart` or `sync+exec`.
    #[serde(default)]
    pub action: String,
    /// Path in the container files are synced to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Command run after a `sync+exec` sync (always printed, as compose does).
    #[serde(default)]
    pub exec: ServiceHook,
    /// Patterns that limit what is watched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Patterns that are not watched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// Whether files are synced once when watching starts.
    #[serde(default, skip_serializing_if = "is_default")]
    pub initial_sync: bool,
}

/// A command run inside a container at a lifecycle event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceHook {
    /// The command; printed as `null` when unset.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// User the command runs as.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Whether the command runs privileged.
    #[serde(default, skip_serializing_if = "is_default")]
    pub privileged: bool,
    /// Working directory of the command.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    /// Extra environment of the command.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "env_map"
    )]
    pub environment: BTreeMap<String, Option<String>>,
}

/// Block IO settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlkioConfig {
    /// Relative block IO weight (10-1000).
    #[serde(default, skip_serializing_if = "is_default")]
    pub weight: u16,
    /// Per-device weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    /// Per-device read limits in bytes per second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    /// Per-device read limits in operations per second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    /// Per-device write limits in bytes per second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    /// Per-device write limits in operations per second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
}

/// A device with its block IO weight. Compose files write these keys in
/// lower case; compose prints them capitalized (`Path`, `Weight`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightDevice {
    /// Device path.
    #[serde(default, rename = "Path", alias = "path")]
    pub path: String,
    /// Relative weight.
    #[serde(default, rename = "Weight", alias = "weight")]
    pub weight: u16,
}

/// A device with a rate limit. Compose prints these keys capitalized
/// (`Path`, `Rate`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrottleDevice {
    /// Device path.
    #[serde(default, rename = "Path", alias = "path")]
    pub path: String,
    /// Rate (bytes or operations per second).
    #[serde(default, rename = "Rate", alias = "rate")]
    pub rate: ByteSize,
}

/// A host device mapped into the containers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceMapping {
    /// Device path on the host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Device path in the container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// cgroup permissions (`rwm`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub permissions: String,
}

/// A secret or config mounted into a service's containers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileReferenceConfig {
    /// Name of the top-level secret or config.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Path (or name under `/run/secrets`) in the container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Owning user id.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "string_or_number"
    )]
    pub uid: String,
    /// Owning group id.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "string_or_number"
    )]
    pub gid: String,
    /// Permission bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FileMode>,
}

/// Windows credential spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpecConfig {
    /// Name of a top-level config holding the spec.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
    /// File holding the spec.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// Registry value holding the spec.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registry: String,
}

/// How a service waits for one it depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDependency {
    /// `service_started`, `service_healthy` or `service_completed_successfully`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    /// Whether this service restarts when the dependency is updated.
    #[serde(default, skip_serializing_if = "is_default")]
    pub restart: bool,
    /// Whether the dependency must exist and start; always printed.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl Default for ServiceDependency {
    fn default() -> Self {
        ServiceDependency {
            condition: String::new(),
            restart: false,
            required: true,
        }
    }
}

/// A file the service environment is read from.
///
/// Printed as its bare path when required (the default), and as
/// `{path, required: false}` otherwise, as compose prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvFile {
    /// Path to the file.
    pub path: String,
    /// Whether a missing file is an error.
    pub required: bool,
    /// File format (empty means compose's `.env` syntax).
    pub format: String,
}

impl Serialize for EnvFile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.required {
            return serializer.serialize_str(&self.path);
        }
        let mut map = serializer.serialize_map(None)?;
        if !self.path.is_empty() {
            map.serialize_entry("path", &self.path)?;
        }
        map.serialize_entry("required", &self.required)?;
        if !self.format.is_empty() {
            map.serialize_entry("format", &self.format)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for EnvFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvFileVisitor;
        impl<'de> Visitor<'de> for EnvFileVisitor {
            type Value = EnvFile;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path or a map with path, required and format")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvFile, E> {
                Ok(EnvFile {
                    path: v.to_owned(),
                    required: true,
                    format: String::new(),
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvFile, A::Error> {
                const FIELDS: &[&str] = &["path", "required", "format"];
                let mut path = None;
                let mut required = None;
                let mut format = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "path" if path.is_none() => path = Some(map.next_value()?),
                        "required" if required.is_none() => required = Some(map.next_value()?),
                        "format" if format.is_none() => format = Some(map.next_value()?),
                        "path" | "required" | "format" => {
                            return Err(de::Error::custom(format!("duplicate field `{key}`")))
                        }
                        _ => return Err(de::Error::unknown_field(&key, FIELDS)),
                    }
                }
                Ok(EnvFile {
                    path: path.unwrap_or_default(),
                    required: required.unwrap_or(true),
                    format: format.unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_any(EnvFileVisitor)
    }
}

impl JsonSchema for EnvFile {
    fn schema_name() -> Cow<'static, str> {
        "EnvFile".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A path, or a path with `required` and `format`.",
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string"},
                        "required": {"type": "boolean"},
                        "format": {"type": "string"}
                    },
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// The service (and file) a service extends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendsConfig {
    /// File holding the base service; empty means the same file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// Name of the base service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
}

/// A container health check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// The test: `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// How long one check may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Time between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Consecutive failures before unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Grace period after start during which failures do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    /// Time between checks during the start period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    /// Whether the image's health check is disabled.
    #[serde(default, skip_serializing_if = "is_default")]
    pub disable: bool,
}

/// Logging driver and options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// Logging driver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Driver options.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub options: BTreeMap<String, String>,
}

/// How a service uses a top-level model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceModelConfig {
    /// Variable that receives the model's endpoint URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint_var: String,
    /// Variable that receives the model's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_var: String,
}

/// How a service joins one network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceNetworkConfig {
    /// Extra DNS names on this network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Endpoint driver options.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub driver_opts: BTreeMap<String, String>,
    /// Priority of this network's gateway as the default route.
    #[serde(default, skip_serializing_if = "is_default")]
    pub gw_priority: i64,
    /// Interface name in the container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    /// Static IPv4 address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    /// Static IPv6 address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    /// Link-local addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    /// MAC address on this network.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// Order in which networks are connected (higher first).
    #[serde(default, skip_serializing_if = "is_default")]
    pub priority: i64,
}

/// A published or exposed port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePortConfig {
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `ingress` or `host`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// Host address to bind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
    /// Container port.
    #[serde(default, skip_serializing_if = "is_default")]
    pub target: u32,
    /// Host port or range (`8080`, `8000-8010`), kept as text.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "string_or_number"
    )]
    pub published: String,
    /// `tcp` or `udp`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// Application protocol hint (`http`, `grpc`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_protocol: String,
}

/// A mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolumeConfig {
    /// `volume`, `bind`, `tmpfs`, `npipe`, `cluster` or `image`.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Volume name, host path or image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Path in the container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Whether the mount is read-only.
    #[serde(default, skip_serializing_if = "is_default")]
    pub read_only: bool,
    /// Consistency requirement (macOS).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    /// Bind mount options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<ServiceVolumeBind>,
    /// Volume mount options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<ServiceVolumeVolume>,
    /// tmpfs mount options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<ServiceVolumeTmpfs>,
    /// Image mount options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ServiceVolumeImage>,
}

/// Bind mount options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolumeBind {
    /// SELinux relabeling: `z` (shared) or `Z` (private).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selinux: String,
    /// Mount propagation (`rprivate`, `shared`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    /// Whether a missing host path is created.
    #[serde(default, skip_serializing_if = "is_default")]
    pub create_host_path: bool,
    /// Recursive read-only behaviour (`enabled`, `disabled`, `writable`, `readonly`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub recursive: String,
}

/// Volume mount options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolumeVolume {
    /// Labels set on a volume created for this mount.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// Whether data from the container is not copied into a new volume.
    #[serde(default, skip_serializing_if = "is_default")]
    pub nocopy: bool,
    /// Subdirectory of the volume to mount.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

/// tmpfs mount options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolumeTmpfs {
    /// Size limit.
    #[serde(default, skip_serializing_if = "ByteSize::is_zero")]
    pub size: ByteSize,
    /// Permission bits (printed as a decimal number, as compose does).
    #[serde(default, skip_serializing_if = "is_default")]
    pub mode: u32,
}

/// Image mount options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolumeImage {
    /// Path inside the image to mount.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

/// One ulimit: a single value for both limits, or separate soft and hard
/// limits. Printed as a number when `single` is set, else as
/// `{soft, hard}` with zero limits left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UlimitsConfig {
    /// Value for both limits; zero when soft and hard are given.
    pub single: i64,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

impl Serialize for UlimitsConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.single != 0 {
            return serializer.serialize_i64(self.single);
        }
        let mut map = serializer.serialize_map(None)?;
        if self.soft != 0 {
            map.serialize_entry("soft", &self.soft)?;
        }
        if self.hard != 0 {
            map.serialize_entry("hard", &self.hard)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for UlimitsConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UlimitVisitor;
        impl<'de> Visitor<'de> for UlimitVisitor {
            type Value = UlimitsConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a map with soft and hard")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<UlimitsConfig, E> {
                Ok(UlimitsConfig {
                    single: v,
                    ..UlimitsConfig::default()
                })
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<UlimitsConfig, E> {
                let single = i64::try_from(v)
                    .map_err(|_| E::custom(format!("ulimit {v} is out of range")))?;
                self.visit_i64(single)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<UlimitsConfig, E> {
                let single = v
                    .parse::<i64>()
                    .map_err(|_| E::custom(format!("invalid ulimit {v:?}: expected an integer")))?;
                self.visit_i64(single)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UlimitsConfig, A::Error> {
                const FIELDS: &[&str] = &["soft", "hard"];
                let mut soft = None;
                let mut hard = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "soft" if soft.is_none() => soft = Some(map.next_value()?),
                        "hard" if hard.is_none() => hard = Some(map.next_value()?),
                        "soft" | "hard" => {
                            return Err(de::Error::custom(format!("duplicate field `{key}`")))
                        }
                        _ => return Err(de::Error::unknown_field(&key, FIELDS)),
                    }
                }
                Ok(UlimitsConfig {
                    single: 0,
                    soft: soft.unwrap_or_default(),
                    hard: hard.unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_any(UlimitVisitor)
    }
}

impl JsonSchema for UlimitsConfig {
    fn schema_name() -> Cow<'static, str> {
        "UlimitsConfig".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One limit for both soft and hard, or separate soft and hard limits.",
            "anyOf": [
                {"type": "integer"},
                {
                    "type": "object",
                    "properties": {
                        "soft": {"type": "integer"},
                        "hard": {"type": "integer"}
                    },
                    "additionalProperties": false
                }
            ]
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unset_command_prints_null_and_an_empty_one_prints_an_empty_list() {
        let unset = serde_json::to_value(ServiceConfig::default()).unwrap();
        assert_eq!(unset, json!({"command": null, "entrypoint": null}));
        let cleared = ServiceConfig {
            command: Some(vec![]),
            ..ServiceConfig::default()
        };
        assert_eq!(serde_json::to_value(cleared).unwrap()["command"], json!([]));
    }

    #[test]
    fn environment_keeps_keys_without_a_value_as_null() {
        let service: ServiceConfig =
            serde_json::from_str(r#"{"environment": {"A": "1", "B": null}}"#).unwrap();
        assert_eq!(service.environment["B"], None);
        assert_eq!(
            serde_json::to_value(&service).unwrap()["environment"],
            json!({"A": "1", "B": null})
        );
    }

    #[test]
    fn unknown_service_fields_are_rejected() {
        let err = serde_json::from_str::<ServiceConfig>(r#"{"imagee": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("imagee"), "{err}");
    }

    #[test]
    fn a_network_attachment_without_settings_prints_null() {
        let service: ServiceConfig =
            serde_json::from_str(r#"{"networks": {"default": null}}"#).unwrap();
        assert_eq!(service.networks["default"], None);
        assert_eq!(
            serde_json::to_value(&service).unwrap()["networks"],
            json!({"default": null})
        );
    }

    #[test]
    fn env_files_print_as_a_path_unless_optional() {
        let required = EnvFile {
            path: "/a/.env".into(),
            required: true,
            format: String::new(),
        };
        assert_eq!(serde_json::to_value(&required).unwrap(), json!("/a/.env"));
        let optional = EnvFile {
            required: false,
            ..required
        };
        assert_eq!(
            serde_json::to_value(&optional).unwrap(),
            json!({"path": "/a/.env", "required": false})
        );
        let read: EnvFile = serde_json::from_str(r#"{"path": "x"}"#).unwrap();
        assert!(read.required);
    }

    #[test]
    fn ulimits_print_as_a_number_or_soft_and_hard() {
        let single: UlimitsConfig = serde_json::from_str("65535").unwrap();
        assert_eq!(serde_json::to_value(single).unwrap(), json!(65535));
        let pair: UlimitsConfig = serde_json::from_str(r#"{"soft": 1, "hard": 2}"#).unwrap();
        assert_eq!(
            serde_json::to_value(pair).unwrap(),
            json!({"soft": 1, "hard": 2})
        );
        let zero: UlimitsConfig = serde_json::from_str(r#"{"soft": 0, "hard": 0}"#).unwrap();
        assert_eq!(serde_json::to_value(zero).unwrap(), json!({}));
        assert!(serde_json::from_str::<UlimitsConfig>(r#"{"soft": 1, "max": 2}"#).is_err());
    }

    #[test]
    fn published_ports_and_ids_read_numbers_as_text() {
        let port: ServicePortConfig =
            serde_json::from_str(r#"{"target": 80, "published": 8080}"#).unwrap();
        assert_eq!(port.published, "8080");
        let secret: FileReferenceConfig =
            serde_json::from_str(r#"{"source": "s", "uid": 1000, "mode": "0440"}"#).unwrap();
        assert_eq!(secret.uid, "1000");
        assert_eq!(
            serde_json::to_value(&secret).unwrap(),
            json!({"source": "s", "uid": "1000", "mode": "0440"})
        );
    }

    #[test]
    fn watch_rules_always_print_their_exec_hook() {
        let trigger: Trigger =
            serde_json::from_str(r#"{"path": "/src", "action": "sync"}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&trigger).unwrap(),
            json!({"path": "/src", "action": "sync", "exec": {"command": null}})
        );
    }

    #[test]
    fn dependencies_are_required_unless_said_otherwise() {
        let dep: ServiceDependency =
            serde_json::from_str(r#"{"condition": "service_started"}"#).unwrap();
        assert!(dep.required);
        assert_eq!(
            serde_json::to_value(&dep).unwrap(),
            json!({"condition": "service_started", "required": true})
        );
    }
}
