//! The normalized compose model: what every compose file, override and
//! Stack manifest loads into, and what `stackd config` prints.
//!
//! The types serialize to exactly the JSON `docker compose config --format
//! json` prints (compose-go v2.9.1): the same keys, the same omissions of
//! zero values, sizes as decimal strings, durations in Go's form (`1m30s`),
//! `extra_hosts` as sorted `host=address` strings, `command`/`entrypoint`
//! as `null` when unset. Deserialization reads that printed form and
//! rejects unknown keys; the loader turns compose's short syntaxes into it.
//! Maps are ordered, so output never depends on hash order.

mod build;
mod deploy;
mod network;
mod project;
mod scalar;
mod service;
mod units;
mod volume;

pub use build::{BuildConfig, SshKey};
pub use deploy::{
    DeployConfig, DeviceRequest, DiscreteGenericResource, GenericResource, Placement,
    PlacementPreferences, Resource, Resources, RestartPolicy, UpdateConfig,
};
pub use network::{IpamConfig, IpamPool, NetworkConfig};
pub use project::{ConfigObjConfig, ModelConfig, Project, SecretConfig};
pub use scalar::HostsList;
pub use service::{
    BlkioConfig, CredentialSpecConfig, DevelopConfig, DeviceMapping, EnvFile, ExtendsConfig,
    FileReferenceConfig, HealthCheckConfig, LoggingConfig, ServiceConfig, ServiceDependency,
    ServiceHook, ServiceModelConfig, ServiceNetworkConfig, ServicePortConfig,
    ServiceProviderConfig, ServiceVolumeBind, ServiceVolumeConfig, ServiceVolumeImage,
    ServiceVolumeTmpfs, ServiceVolumeVolume, ThrottleDevice, Trigger, UlimitsConfig, WeightDevice,
};
pub use units::{
    format_go_float, parse_byte_size, parse_cpus, parse_duration, parse_file_mode, ByteSize,
    Duration, FileMode, UnitError,
};

#[cfg(test)]
mod corpus_tests;

pub mod stack;
pub use stack::{ServiceStatus, Stack, StackSpec, StackStatus};
