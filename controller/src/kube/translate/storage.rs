//! Volumes, secrets and configs.
//!
//! * A named volume is a claim template of the service's StatefulSet, or a
//!   PersistentVolumeClaim (see the rule in the module above). Kubernetes
//!   never copies the image's files into a new volume, as Docker does.
//! * A volume without a name (anonymous) is an `emptyDir`: it lives as long
//!   as the pod, as an anonymous volume lives as long as its container.
//! * A host bind mount is a `hostPath` only when allowed
//!   ([`TranslateOptions::allow_host_path`]). Otherwise a bound file the
//!   caller read (`stackd convert` reads the regular files under the
//!   project directory) is copied into a ConfigMap and mounted read-only,
//!   and anything else gets an `emptyDir` in its place; a warning says
//!   which.
//! * `tmpfs` mounts (both spellings) are `emptyDir` with medium `Memory`,
//!   their size a `sizeLimit`; `shm_size` is one mounted at `/dev/shm`.
//! * An `image` mount is an image volume.
//! * A secret is a Secret, a config a ConfigMap, each holding its value
//!   under its compose key and mounted file by file (`subPath`) where
//!   compose mounts it: `/run/secrets/<target or key>` for secrets,
//!   `/<target or key>` for configs, or the absolute target. A value that
//!   cannot be read (unset variable, unreadable file) leaves the key out
//!   with a warning: the pod waits until someone adds it. An external
//!   secret or config is the existing object of that name, expected to
//!   hold the value under the compose key.
//!
//! [`TranslateOptions::allow_host_path`]: super::TranslateOptions::allow_host_path
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource,
    ImageVolumeSource, KeyToPath, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Secret, SecretVolumeSource, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::ByteString;

use super::names::{dns_label, is_dns_subdomain, MAX_LABEL};
use super::plan::{Ctx, FileObject, ServicePlan};
use super::units;
use super::workload::PodParts;
use super::{Object, Scope, TranslateError};
use crate::model::{FileReferenceConfig, ServiceConfig, ServiceVolumeConfig};

/// Size of a claim when the project gives none.
pub const DEFAULT_VOLUME_SIZE: &str = "1Gi";
/// Largest value a ConfigMap or Secret holds (the API server's limit).
const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// The Secrets, ConfigMaps and claims of the project's top-level secrets,
/// configs and volumes.
pub fn project_objects(ctx: &mut Ctx<'_>) -> Result<(), TranslateError> {
    let project = ctx.project;
    for (key, secret) in &project.secrets {
        let scope = Scope::Secret(key.clone());
        let value = file_value(
            ctx,
            &scope,
            Source {
                file: &secret.file,
                environment: &secret.environment,
                content: &secret.content,
            },
        );
        for (field, text) in [
            ("driver", &secret.driver),
            ("template_driver", &secret.template_driver),
        ] {
            if !text.is_empty() {
                ctx.ledger
                    .warn(&scope, field, "no Kubernetes equivalent; ignored");
            }
        }
        if !secret.driver_opts.is_empty() {
            ctx.ledger
                .warn(&scope, "driver_opts", "no Kubernetes equivalent; ignored");
        }
        let object = object_name(ctx, &scope, &secret.name, key, secret.external);
        ctx.secrets.insert(
            key.clone(),
            FileObject {
                object: object.clone(),
                key: key.clone(),
                value: value.clone(),
            },
        );
        if secret.external {
            continue;
        }
        let mut meta = ctx.meta(&object, key);
        ctx.carry_labels(&scope, "labels", &secret.labels, &mut meta);
        let data = value.map(|v| BTreeMap::from([(key.clone(), ByteString(v))]));
        let object_value = Secret {
            metadata: meta,
            type_: Some("Opaque".into()),
            data,
            ..Secret::default()
        };
        ctx.push(Object::Secret(object_value), &scope.to_string())?;
    }
    for (key, config) in &project.configs {
        let scope = Scope::Config(key.clone());
        let value = file_value(
            ctx,
            &scope,
            Source {
                file: &config.file,
                environment: &config.environment,
                content: &config.content,
            },
        );
        for (field, text) in [
            ("driver", &config.driver),
            ("template_driver", &config.template_driver),
        ] {
            if !text.is_empty() {
                ctx.ledger
                    .warn(&scope, field, "no Kubernetes equivalent; ignored");
            }
        }
        if !config.driver_opts.is_empty() {
            ctx.ledger
                .warn(&scope, "driver_opts", "no Kubernetes equivalent; ignored");
        }
        let object = object_name(ctx, &scope, &config.name, key, config.external);
        ctx.configs.insert(
            key.clone(),
            FileObject {
                object: object.clone(),
                key: key.clone(),
                value: value.clone(),
            },
        );
        if config.external {
            continue;
        }
        let mut meta = ctx.meta(&object, key);
        ctx.carry_labels(&scope, "labels", &config.labels, &mut meta);
        let mut object_value = ConfigMap {
            metadata: meta,
            ..ConfigMap::default()
        };
        match value.map(String::from_utf8) {
            Some(Ok(text)) => object_value.data = Some(BTreeMap::from([(key.clone(), text)])),
            Some(Err(bytes)) => {
                object_value.binary_data = Some(BTreeMap::from([(
                    key.clone(),
                    ByteString(bytes.into_bytes()),
                )]));
            }
            None => {}
        }
        ctx.push(Object::ConfigMap(object_value), &scope.to_string())?;
    }
    for (key, volume) in &project.volumes {
        let scope = Scope::Volume(key.clone());
        ctx.ledger.used(&scope, "name");
        if !volume.driver.is_empty() {
            ctx.ledger.warn(
                &scope,
                "driver",
                "volume drivers have no Kubernetes meaning; the claim's storage class decides (x-stackd.kubernetes.volumes.NAME.storage_class)",
            );
        }
        if !volume.driver_opts.is_empty() {
            ctx.ledger.warn(
                &scope,
                "driver_opts",
                "volume driver options have no Kubernetes meaning; ignored",
            );
        }
        let Some(plan) = ctx.volumes.get(key).cloned() else {
            continue;
        };
        if volume.external {
            ctx.ledger.used(&scope, "external");
            let claim = plan.claim.clone().unwrap_or_default();
            ctx.ledger.warn(
                &scope,
                "external",
                format!("mounted as the existing PersistentVolumeClaim {claim:?}, which stackd does not create"),
            );
            if !volume.labels.is_empty() {
                ctx.ledger.warn(
                    &scope,
                    "labels",
                    "the claim is not stackd's; labels not set",
                );
            }
            continue;
        }
        if plan.users.is_empty() {
            ctx.ledger.warn(
                &scope,
                "name",
                "no service mounts this volume; no claim is made",
            );
            continue;
        }
        let Some(claim) = plan.claim.clone() else {
            // A claim template of its one StatefulSet, built with it.
            if !volume.labels.is_empty() {
                ctx.ledger.used(&scope, "labels");
            }
            continue;
        };
        let mut meta = ctx.meta(&claim, key);
        ctx.carry_labels(&scope, "labels", &volume.labels, &mut meta);
        let spec = claim_spec(ctx, key, &plan.access_mode);
        let object = PersistentVolumeClaim {
            metadata: meta,
            spec: Some(spec),
            ..PersistentVolumeClaim::default()
        };
        ctx.push(Object::PersistentVolumeClaim(object), &scope.to_string())?;
    }
    Ok(())
}

/// The spec of a claim for volume `key`: size and class from the project's
/// overrides, access mode as planned.
pub fn claim_spec(ctx: &Ctx<'_>, key: &str, access_mode: &str) -> PersistentVolumeClaimSpec {
    let settings = ctx.overrides.volumes.get(key);
    let size = settings
        .and_then(|s| s.size.clone())
        .unwrap_or_else(|| DEFAULT_VOLUME_SIZE.to_string());
    PersistentVolumeClaimSpec {
        access_modes: Some(vec![access_mode.to_string()]),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([("storage".to_string(), Quantity(size))])),
            ..VolumeResourceRequirements::default()
        }),
        storage_class_name: settings.and_then(|s| s.storage_class.clone()),
        ..PersistentVolumeClaimSpec::default()
    }
}

/// The claim template of volume `key` for the StatefulSet named `base`.
pub fn claim_template(ctx: &Ctx<'_>, key: &str, base: &str) -> PersistentVolumeClaim {
    let access_mode = ctx
        .volumes
        .get(key)
        .map_or_else(|| "ReadWriteOnce".to_string(), |v| v.access_mode.clone());
    let mut meta = ctx.meta_with_instance(&template_name(key), key, base);
    meta.namespace = None;
    if let Some(volume) = ctx.project.volumes.get(key) {
        for (name, value) in &volume.labels {
            if super::names::is_qualified_name(name) && super::names::is_label_value(value) {
                meta.labels
                    .get_or_insert_with(BTreeMap::new)
                    .entry(name.clone())
                    .or_insert_with(|| value.clone());
            }
        }
    }
    PersistentVolumeClaim {
        metadata: meta,
        spec: Some(claim_spec(ctx, key, &access_mode)),
        ..PersistentVolumeClaim::default()
    }
}

/// The name of volume `key`'s claim template (and of the pod volume its
/// mounts use).
pub fn template_name(key: &str) -> String {
    dns_label(key, MAX_LABEL - 4)
}

struct Source<'a> {
    file: &'a str,
    environment: &'a str,
    content: &'a str,
}

/// The value of a secret or config, from inline content, a variable or a
/// file; `None` (with a warning) when it cannot be had.
fn file_value(ctx: &mut Ctx<'_>, scope: &Scope, source: Source<'_>) -> Option<Vec<u8>> {
    ctx.ledger.used(scope, "name");
    let value = if !source.content.is_empty() {
        ctx.ledger.used(scope, "content");
        Some(source.content.as_bytes().to_vec())
    } else if !source.environment.is_empty() {
        ctx.ledger.used(scope, "environment");
        let value = ctx
            .options
            .contents
            .variables
            .get(source.environment)
            .map(|v| v.as_bytes().to_vec());
        if value.is_none() {
            ctx.ledger.warn(
                scope,
                "environment",
                format!(
                    "variable {} is not set: the object is made without a value, and pods that mount it wait until one is added",
                    source.environment
                ),
            );
        }
        value
    } else if !source.file.is_empty() {
        ctx.ledger.used(scope, "file");
        let value = ctx.options.contents.files.get(source.file).cloned();
        if value.is_none() {
            ctx.ledger.warn(
                scope,
                "file",
                format!(
                    "{} could not be read: the object is made without a value, and pods that mount it wait until one is added",
                    source.file
                ),
            );
        }
        value
    } else {
        None
    };
    if value.as_ref().is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
        ctx.ledger.warn(
            scope,
            if source.file.is_empty() {
                "content"
            } else {
                "file"
            },
            "larger than the 1 MiB a Kubernetes object may hold; the API server will refuse it",
        );
    }
    value
}

/// The object name of a secret or config: its compose name made valid,
/// with a warning when an external name had to change.
fn object_name(ctx: &mut Ctx<'_>, scope: &Scope, name: &str, key: &str, external: bool) -> String {
    let source = if name.is_empty() {
        format!("{}-{key}", ctx.project_name())
    } else {
        name.to_string()
    };
    if external {
        ctx.ledger.used(scope, "external");
        if is_dns_subdomain(&source) {
            ctx.ledger.warn(
                scope,
                "external",
                format!("mounted from the existing object {source:?} (key {key:?}), which stackd does not create"),
            );
            return source;
        }
        let made = dns_label(&source, MAX_LABEL);
        ctx.ledger.warn(
            scope,
            "external",
            format!("{source:?} is not a valid Kubernetes name; mounted from the existing object {made:?} (key {key:?}), which stackd does not create"),
        );
        return made;
    }
    dns_label(&source, MAX_LABEL)
}

/// Adds the pod volumes and container mounts of one service.
pub fn mounts(
    ctx: &mut Ctx<'_>,
    name: &str,
    service: &ServiceConfig,
    plan: &ServicePlan,
    pod: &mut PodParts,
) {
    let scope = Scope::Service(name.to_string());
    // Claim templates are named by their volume; keep those names free.
    for key in &plan.claim_templates {
        pod.names.reserve(&template_name(key));
    }
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    for (index, mount) in service.volumes.iter().enumerate() {
        volume_mount(ctx, &scope, service, plan, pod, &mut named, index, mount);
    }
    for entry in &service.tmpfs {
        ctx.ledger.used(&scope, "tmpfs");
        let (target, options) = entry.split_once(':').unwrap_or((entry.as_str(), ""));
        let mut size = None;
        for option in options.split(',').filter(|o| !o.is_empty()) {
            match option.split_once('=') {
                Some(("size", value)) => match crate::model::parse_byte_size(value) {
                    Ok(bytes) => size = Some(units::bytes_i64(bytes)),
                    Err(_) => ctx.ledger.warn(
                        &scope,
                        "tmpfs",
                        format!("{target}: size {value:?} is not a size; no limit set"),
                    ),
                },
                _ => ctx.ledger.warn(
                    &scope,
                    "tmpfs",
                    format!("{target}: option {option:?} has no Kubernetes equivalent; ignored"),
                ),
            }
        }
        let volume = pod.names.unique("tmpfs");
        pod.add(
            &mut ctx.ledger,
            &scope,
            "tmpfs",
            Volume {
                name: volume.clone(),
                empty_dir: Some(memory_dir(size)),
                ..Volume::default()
            },
            VolumeMount {
                name: volume,
                mount_path: target.to_string(),
                ..VolumeMount::default()
            },
        );
    }
    if !service.shm_size.is_zero() {
        ctx.ledger.used(&scope, "shm_size");
        let volume = pod.names.unique("dshm");
        pod.add(
            &mut ctx.ledger,
            &scope,
            "shm_size",
            Volume {
                name: volume.clone(),
                empty_dir: Some(memory_dir(Some(units::bytes(service.shm_size)))),
                ..Volume::default()
            },
            VolumeMount {
                name: volume,
                mount_path: "/dev/shm".into(),
                ..VolumeMount::default()
            },
        );
    }
    for reference in &service.secrets {
        file_mount(ctx, &scope, pod, reference, FileKind::Secret);
    }
    for reference in &service.configs {
        file_mount(ctx, &scope, pod, reference, FileKind::Config);
    }
}

fn memory_dir(size: Option<Quantity>) -> EmptyDirVolumeSource {
    EmptyDirVolumeSource {
        medium: Some("Memory".into()),
        size_limit: size,
        ..EmptyDirVolumeSource::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn volume_mount(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    service: &ServiceConfig,
    plan: &ServicePlan,
    pod: &mut PodParts,
    named: &mut BTreeMap<String, String>,
    index: usize,
    mount: &ServiceVolumeConfig,
) {
    ctx.ledger.used(scope, "volumes.type");
    ctx.ledger.used(scope, "volumes.target");
    if mount.read_only {
        ctx.ledger.used(scope, "volumes.read_only");
    }
    if !mount.consistency.is_empty() {
        ctx.ledger.warn(
            scope,
            "volumes.consistency",
            "a macOS file sharing setting; no Kubernetes meaning",
        );
    }
    let mut volume_mount = VolumeMount {
        mount_path: mount.target.clone(),
        read_only: mount.read_only.then_some(true),
        ..VolumeMount::default()
    };
    let volume = match mount.kind.as_str() {
        "volume" if mount.source.is_empty() => {
            let name = pod.names.unique("anonymous");
            Some(Volume {
                name,
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            })
        }
        "volume" => {
            ctx.ledger.used(scope, "volumes.source");
            if let Some(options) = &mount.volume {
                if options.nocopy {
                    // Kubernetes never copies image files into a volume.
                    ctx.ledger.used(scope, "volumes.volume.nocopy");
                }
                if !options.subpath.is_empty() {
                    if is_relative_subpath(&options.subpath) {
                        ctx.ledger.used(scope, "volumes.volume.subpath");
                        volume_mount.sub_path = Some(options.subpath.clone());
                    } else {
                        ctx.ledger.warn(
                            scope,
                            "volumes.volume.subpath",
                            "a sub path must be relative and stay inside the volume; the whole volume is mounted",
                        );
                    }
                }
                if !options.labels.is_empty() {
                    ctx.ledger.warn(
                        scope,
                        "volumes.volume.labels",
                        "labels of a volume created by a mount have no Kubernetes equivalent; set them on the top-level volume",
                    );
                }
            }
            if plan.claim_templates.contains(&mount.source) {
                volume_mount.name = template_name(&mount.source);
                None
            } else if let Some(existing) = named.get(&mount.source) {
                volume_mount.name = existing.clone();
                None
            } else {
                let Some(claim) = ctx.volumes.get(&mount.source).and_then(|v| v.claim.clone())
                else {
                    ctx.ledger.warn(
                        scope,
                        "volumes.source",
                        format!(
                            "volume {:?} is not defined at the top level; an empty directory stands in",
                            mount.source
                        ),
                    );
                    let name = pod.names.unique(&mount.source);
                    named.insert(mount.source.clone(), name.clone());
                    return pod.add(
                        &mut ctx.ledger,
                        scope,
                        "volumes.target",
                        Volume {
                            name: name.clone(),
                            empty_dir: Some(EmptyDirVolumeSource::default()),
                            ..Volume::default()
                        },
                        VolumeMount {
                            name,
                            ..volume_mount
                        },
                    );
                };
                let name = pod.names.unique(&mount.source);
                named.insert(mount.source.clone(), name.clone());
                Some(Volume {
                    name,
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: claim,
                        read_only: None,
                    }),
                    ..Volume::default()
                })
            }
        }
        "bind" => {
            ctx.ledger.used(scope, "volumes.source");
            let name = pod.names.unique(&format!("bind-{index}"));
            let bind = mount.bind.clone().unwrap_or_default();
            if bind.create_host_path {
                ctx.ledger.used(scope, "volumes.bind.create_host_path");
            }
            if !bind.selinux.is_empty() {
                ctx.ledger.warn(
                    scope,
                    "volumes.bind.selinux",
                    "SELinux relabeling of a bind mount has no Kubernetes equivalent; ignored",
                );
            }
            if !bind.recursive.is_empty() {
                ctx.ledger.warn(
                    scope,
                    "volumes.bind.recursive",
                    "recursive read-only settings are not carried over",
                );
            }
            if ctx.options.allow_host_path {
                if !bind.propagation.is_empty() {
                    let privileged = service.privileged;
                    let mode = match bind.propagation.as_str() {
                        "rslave" | "slave" => Some("HostToContainer"),
                        "rshared" | "shared" if privileged => Some("Bidirectional"),
                        "rprivate" | "private" => Some("None"),
                        _ => None,
                    };
                    if let Some(mode) = mode {
                        ctx.ledger.used(scope, "volumes.bind.propagation");
                        volume_mount.mount_propagation = Some(mode.into());
                    } else {
                        ctx.ledger.warn(
                            scope,
                            "volumes.bind.propagation",
                            format!(
                                "propagation {:?} has no Kubernetes equivalent here (shared needs a privileged container); ignored",
                                bind.propagation
                            ),
                        );
                    }
                }
                Some(Volume {
                    name,
                    host_path: Some(HostPathVolumeSource {
                        path: mount.source.clone(),
                        type_: None,
                    }),
                    ..Volume::default()
                })
            } else if let Some(volume) = file_copy(ctx, scope, plan, pod, index, mount) {
                if !bind.propagation.is_empty() {
                    ctx.ledger.used(scope, "volumes.bind.propagation");
                }
                volume_mount.sub_path = volume
                    .config_map
                    .as_ref()
                    .and_then(|c| c.items.as_ref())
                    .and_then(|items| items.first())
                    .map(|item| item.key.clone());
                volume_mount.read_only = Some(true);
                Some(volume)
            } else {
                if !bind.propagation.is_empty() {
                    ctx.ledger.used(scope, "volumes.bind.propagation");
                }
                ctx.ledger.warn(
                    scope,
                    "volumes.source",
                    format!(
                        "host path {} is not mounted (host paths are refused unless allowed); an empty directory stands in at {}",
                        mount.source, mount.target
                    ),
                );
                Some(Volume {
                    name,
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Volume::default()
                })
            }
        }
        "tmpfs" => {
            let name = pod.names.unique("tmpfs");
            let options = mount.tmpfs.clone().unwrap_or_default();
            let size = (!options.size.is_zero()).then(|| {
                ctx.ledger.used(scope, "volumes.tmpfs.size");
                units::bytes(options.size)
            });
            if options.mode != 0 {
                ctx.ledger.warn(
                    scope,
                    "volumes.tmpfs.mode",
                    "an emptyDir's permissions cannot be set; ignored",
                );
            }
            Some(Volume {
                name,
                empty_dir: Some(memory_dir(size)),
                ..Volume::default()
            })
        }
        "image" => {
            ctx.ledger.used(scope, "volumes.source");
            if let Some(options) = &mount.image {
                if !options.subpath.is_empty() {
                    if is_relative_subpath(&options.subpath) {
                        ctx.ledger.used(scope, "volumes.image.subpath");
                        volume_mount.sub_path = Some(options.subpath.clone());
                    } else {
                        ctx.ledger.warn(
                            scope,
                            "volumes.image.subpath",
                            "a sub path must be relative and stay inside the volume; the whole volume is mounted",
                        );
                    }
                }
            }
            ctx.ledger.warn(
                scope,
                "volumes.type",
                "image volumes need the ImageVolume feature of Kubernetes 1.33 or newer",
            );
            volume_mount.read_only = Some(true);
            let name = pod.names.unique(&format!("image-{index}"));
            Some(Volume {
                name,
                image: Some(ImageVolumeSource {
                    reference: Some(mount.source.clone()),
                    pull_policy: None,
                }),
                ..Volume::default()
            })
        }
        other => {
            if !mount.source.is_empty() {
                ctx.ledger.used(scope, "volumes.source");
            }
            ctx.ledger.warn(
                scope,
                "volumes.type",
                format!(
                    "{other} mounts have no Kubernetes equivalent; {} is not mounted",
                    mount.target
                ),
            );
            return;
        }
    };
    match volume {
        Some(volume) => {
            volume_mount.name = volume.name.clone();
            pod.add(
                &mut ctx.ledger,
                scope,
                "volumes.target",
                volume,
                volume_mount,
            );
        }
        None => pod.mount(&mut ctx.ledger, scope, "volumes.target", volume_mount),
    }
}

/// Whether `path` is a relative path that stays inside its volume.
fn is_relative_subpath(path: &str) -> bool {
    !path.starts_with('/') && !path.split('/').any(|part| part == "..")
}

/// A bind of a host file the caller could read becomes a ConfigMap with
/// a copy of it (what compose projects bind most: a config file beside
/// the compose file); `None` for anything else.
fn file_copy(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    plan: &ServicePlan,
    pod: &mut PodParts,
    index: usize,
    mount: &ServiceVolumeConfig,
) -> Option<Volume> {
    let bytes = ctx.options.contents.files.get(&mount.source)?.clone();
    if bytes.len() > MAX_VALUE_BYTES {
        return None;
    }
    let file_name = std::path::Path::new(&mount.source)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = if super::names::is_data_key(&file_name) {
        file_name.clone()
    } else {
        "content".to_string()
    };
    let mut object = dns_label(&format!("{}-{file_name}", plan.base), MAX_LABEL);
    if pod.copies.contains(&object) {
        object = dns_label(&format!("{}-{index}-{file_name}", plan.base), MAX_LABEL);
    }
    pod.copies.push(object.clone());
    pod.hash_input(&object, &bytes);
    let mut config_map = ConfigMap {
        metadata: ctx.meta_with_instance(&object, &plan.name_label, &plan.base),
        ..ConfigMap::default()
    };
    match String::from_utf8(bytes) {
        Ok(text) => config_map.data = Some(BTreeMap::from([(key.clone(), text)])),
        Err(bytes) => {
            config_map.binary_data = Some(BTreeMap::from([(
                key.clone(),
                ByteString(bytes.into_bytes()),
            )]));
        }
    }
    pod.objects.push(Object::ConfigMap(config_map));
    ctx.ledger.warn(
        scope,
        "volumes.source",
        format!(
            "host file {} is copied into the ConfigMap {object} and mounted read-only at {}; a change to the file needs a new translation",
            mount.source, mount.target
        ),
    );
    let volume = pod.names.unique(&format!("file-{index}"));
    Some(Volume {
        name: volume,
        config_map: Some(ConfigMapVolumeSource {
            name: object,
            items: Some(vec![KeyToPath {
                key: key.clone(),
                path: key,
                ..KeyToPath::default()
            }]),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Secret,
    Config,
}

fn file_mount(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    pod: &mut PodParts,
    reference: &FileReferenceConfig,
    kind: FileKind,
) {
    let (key, base, objects) = match kind {
        FileKind::Secret => ("secrets", "/run/secrets/", &ctx.secrets),
        FileKind::Config => ("configs", "/", &ctx.configs),
    };
    let Some(object) = objects.get(&reference.source).cloned() else {
        ctx.ledger.warn(
            scope,
            &format!("{key}.source"),
            format!(
                "{:?} is not defined at the top level; not mounted",
                reference.source
            ),
        );
        return;
    };
    ctx.ledger.used(scope, &format!("{key}.source"));
    let target = if reference.target.is_empty() {
        format!("{base}{}", reference.source)
    } else {
        ctx.ledger.used(scope, &format!("{key}.target"));
        if reference.target.starts_with('/') {
            reference.target.clone()
        } else {
            format!("{base}{}", reference.target)
        }
    };
    for (field, value) in [("uid", &reference.uid), ("gid", &reference.gid)] {
        if !value.is_empty() {
            ctx.ledger.warn(
                scope,
                &format!("{key}.{field}"),
                "Kubernetes cannot set the owner of one mounted file; ignored (a pod fsGroup sets the group of all volumes)",
            );
        }
    }
    let mode = reference.mode.and_then(|m| {
        ctx.ledger.used(scope, &format!("{key}.mode"));
        i32::try_from(m.0).ok().filter(|m| (0..=0o777).contains(m))
    });
    if reference.mode.is_some() && mode.is_none() {
        ctx.ledger.warn(
            scope,
            &format!("{key}.mode"),
            "file modes above 0777 cannot be set in Kubernetes; the default is used",
        );
    }
    if let Some(value) = &object.value {
        pod.hash_input(&object.object, value);
    }
    let items = Some(vec![KeyToPath {
        key: object.key.clone(),
        path: object.key.clone(),
        mode,
        ..KeyToPath::default()
    }]);
    let prefix = match kind {
        FileKind::Secret => "secret",
        FileKind::Config => "config",
    };
    let name = pod.names.unique(&format!("{prefix}-{}", reference.source));
    let volume = match kind {
        FileKind::Secret => Volume {
            name: name.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(object.object.clone()),
                items,
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
        FileKind::Config => Volume {
            name: name.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: object.object.clone(),
                items,
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
    };
    pod.add(
        &mut ctx.ledger,
        scope,
        &format!("{key}.target"),
        volume,
        VolumeMount {
            name,
            mount_path: target,
            sub_path: Some(object.key.clone()),
            read_only: Some(true),
            ..VolumeMount::default()
        },
    );
}
