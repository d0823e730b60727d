//! A service's main container and its environment.
//!
//! * `entrypoint` → `command`, `command` → `args`. Kubernetes expands
//!   `$(NAME)` in these (and in literal environment values) and turns `$$`
//!   into `$`; compose values are literal, so every `$` is written `$$`.
//! * `environment` (with `env_file` already merged under it by the loader,
//!   `environment` winning) → a ConfigMap `<project>-<service>-env` and one
//!   `env` entry per variable reading it; a variable without a value is
//!   left out with a warning, as compose leaves it out. A name that cannot
//!   be a ConfigMap key is set as a literal value.
//! * `deploy.resources` limits and reservations (or the older `cpus`,
//!   `mem_limit`, `mem_reservation`) → `limits` and `requests`; a GPU
//!   reservation (`capabilities: [gpu]`, driver nvidia, a count) →
//!   `nvidia.com/gpu`.
//! * `user` (numeric, or `root`), `read_only`, `privileged`, `cap_add`,
//!   `cap_drop` and the `no-new-privileges`, `seccomp`, `apparmor` and
//!   `label` security options → the container security context.
//! * `healthcheck` → probes (see `probes`); `post_start`/`pre_stop` →
//!   lifecycle hooks; `working_dir`, `stdin_open`, `tty` as they are.
//! * The pod template carries a hash of everything it reads from
//!   ConfigMaps and Secrets, so a change to a value rolls the pods (a
//!   value read into the environment is only read at start).
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, ConfigMap, ConfigMapKeySelector, Container, EnvVar,
    EnvVarSource, ExecAction, Lifecycle, LifecycleHandler, ResourceRequirements, SELinuxOptions,
    SeccompProfile, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use super::names::{dns_label, is_data_key, MAX_LABEL};
use super::network::PortPlan;
use super::plan::{Ctx, ServicePlan};
use super::workload::PodParts;
use super::{probes, units, Object, Scope, TranslateError};
use crate::model::{DeviceRequest, ServiceConfig, ServiceHook};

/// Keys with no Kubernetes meaning, and why.
const UNMAPPED: &[(&str, &str)] = &[
    (
        "attach",
        "attaching to a service's output is a docker compose setting; no Kubernetes meaning",
    ),
    (
        "develop",
        "docker compose watch has no Kubernetes equivalent",
    ),
    (
        "blkio_config",
        "block IO limits have no Kubernetes equivalent",
    ),
    ("cgroup", "the cgroup namespace is the kubelet's choice"),
    (
        "cgroup_parent",
        "the cgroup placement is the kubelet's choice",
    ),
    (
        "cpu_count",
        "Windows CPU counts have no Kubernetes equivalent; use deploy.resources",
    ),
    (
        "cpu_percent",
        "Windows CPU percentages have no Kubernetes equivalent; use deploy.resources",
    ),
    (
        "cpu_period",
        "CFS settings have no Kubernetes equivalent; use deploy.resources",
    ),
    (
        "cpu_quota",
        "CFS settings have no Kubernetes equivalent; use deploy.resources",
    ),
    (
        "cpu_rt_period",
        "real-time CPU settings have no Kubernetes equivalent",
    ),
    (
        "cpu_rt_runtime",
        "real-time CPU settings have no Kubernetes equivalent",
    ),
    (
        "cpuset",
        "CPU pinning is the kubelet's CPU manager's choice",
    ),
    (
        "cpu_shares",
        "relative CPU weights have no Kubernetes equivalent; use deploy.resources",
    ),
    (
        "container_name",
        "pods are named by their workload; a fixed container name has no meaning",
    ),
    (
        "credential_spec",
        "Windows credential specs are not carried over",
    ),
    (
        "device_cgroup_rules",
        "device rules have no Kubernetes equivalent",
    ),
    (
        "devices",
        "host devices cannot be mapped into a pod (a device plugin provides them)",
    ),
    (
        "dockerfile",
        "images are not built; push the image to a registry the cluster can pull from",
    ),
    (
        "domainname",
        "a pod's domain comes from its Service; ignored",
    ),
    (
        "external_links",
        "links to containers outside the project have no Kubernetes meaning",
    ),
    ("isolation", "Windows isolation is not carried over"),
    (
        "logging",
        "logging drivers are the cluster's choice; container output goes to the node's log",
    ),
    (
        "log_driver",
        "logging drivers are the cluster's choice; container output goes to the node's log",
    ),
    (
        "log_opt",
        "logging drivers are the cluster's choice; container output goes to the node's log",
    ),
    (
        "mac_address",
        "pods get their MAC address from the network plugin",
    ),
    ("memswap_limit", "swap is the node's setting"),
    ("mem_swappiness", "swap is the node's setting"),
    (
        "oom_kill_disable",
        "the kubelet sets OOM behaviour from the pod's QoS class",
    ),
    (
        "oom_score_adj",
        "the kubelet sets OOM scores from the pod's QoS class",
    ),
    ("pids_limit", "PID limits are the node's setting"),
    (
        "stop_signal",
        "another stop signal needs Kubernetes' alpha ContainerStopSignals; SIGTERM is sent",
    ),
    (
        "storage_opt",
        "storage driver options have no Kubernetes equivalent",
    ),
    (
        "ulimits",
        "ulimits are the container runtime's defaults on the node",
    ),
    (
        "use_api_socket",
        "there is no Docker engine API inside a pod",
    ),
    (
        "volume_driver",
        "volume drivers have no Kubernetes meaning; the storage class decides",
    ),
    (
        "volumes_from",
        "a pod cannot mount another workload's volumes; mount the named volume instead",
    ),
];

/// Kubernetes expands `$(NAME)` and `$$`; compose values are literal.
pub fn escape_dollars(text: &str) -> String {
    text.replace('$', "$$")
}

/// The environment ConfigMap of a service (pushed) and the container's
/// `env` entries.
pub fn environment(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    service: &ServiceConfig,
    plan: &ServicePlan,
    pod: &mut PodParts,
) -> Result<Vec<EnvVar>, TranslateError> {
    if !service.env_file.is_empty() {
        // The loader merged the files' values under `environment`.
        ctx.ledger.used(scope, "env_file");
    }
    let config_map = dns_label(&format!("{}-env", plan.base), MAX_LABEL);
    let mut data = BTreeMap::new();
    let mut env = Vec::new();
    for (name, value) in &service.environment {
        let key = format!("environment.{name}");
        let Some(value) = value else {
            ctx.ledger.warn(
                scope,
                &key,
                "no value (compose takes it from the environment it runs in, where it is not set); left out",
            );
            continue;
        };
        ctx.ledger.used(scope, &key);
        if is_data_key(name) {
            data.insert(name.clone(), value.clone());
            env.push(EnvVar {
                name: name.clone(),
                value_from: Some(EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: config_map.clone(),
                        key: name.clone(),
                        optional: None,
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            });
        } else {
            env.push(EnvVar {
                name: name.clone(),
                value: Some(escape_dollars(value)),
                ..EnvVar::default()
            });
        }
    }
    if !data.is_empty() {
        for (name, value) in &data {
            pod.hash_input(&format!("{config_map}/{name}"), value.as_bytes());
        }
        let object = ConfigMap {
            metadata: ctx.meta_with_instance(&config_map, &plan.name_label, &plan.base),
            data: Some(data),
            ..ConfigMap::default()
        };
        ctx.push(Object::ConfigMap(object), &format!("{scope} environment"))?;
    }
    Ok(env)
}

/// The main container.
pub fn main_container(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    name: &str,
    service: &ServiceConfig,
    env: Vec<EnvVar>,
    ports: &PortPlan,
    pod: &mut PodParts,
) -> Container {
    unmapped(ctx, scope, service);
    for key in ["profiles", "extends"] {
        // Applied by the loader: profiles chose the services, extends
        // merged its base in.
        ctx.ledger.used(scope, key);
    }
    let mut container = Container {
        name: dns_label(name, MAX_LABEL),
        image: Some(image(ctx, scope, name, service)),
        image_pull_policy: pull_policy(ctx, scope, service),
        env: (!env.is_empty()).then_some(env),
        ports: (!ports.container.is_empty()).then(|| ports.container.clone()),
        ..Container::default()
    };
    pod.names.reserve(&container.name);
    if let Some(entrypoint) = &service.entrypoint {
        ctx.ledger.used(scope, "entrypoint");
        if entrypoint.is_empty() {
            ctx.ledger.warn(
                scope,
                "entrypoint",
                "an empty entrypoint cannot clear the image's in Kubernetes; the image's is used",
            );
        } else {
            container.command = Some(entrypoint.iter().map(|a| escape_dollars(a)).collect());
        }
    }
    if let Some(command) = &service.command {
        ctx.ledger.used(scope, "command");
        if command.is_empty() {
            ctx.ledger.warn(
                scope,
                "command",
                "an empty command cannot clear the image's in Kubernetes; the image's is used",
            );
        } else {
            container.args = Some(command.iter().map(|a| escape_dollars(a)).collect());
        }
    }
    if !service.working_dir.is_empty() {
        ctx.ledger.used(scope, "working_dir");
        container.working_dir = Some(service.working_dir.clone());
    }
    if service.stdin_open {
        ctx.ledger.used(scope, "stdin_open");
        container.stdin = Some(true);
    }
    if service.tty {
        ctx.ledger.used(scope, "tty");
        container.tty = Some(true);
    }
    container.resources = resources(ctx, scope, service);
    container.security_context = security_context(ctx, scope, service);
    let probes = probes::probes(ctx, scope, service);
    container.readiness_probe = probes.readiness;
    container.liveness_probe = probes.liveness;
    container.startup_probe = probes.startup;
    container.lifecycle = lifecycle(ctx, scope, service);
    links(ctx, scope, service);
    if !pod.mounts.is_empty() {
        container.volume_mounts = Some(std::mem::take(&mut pod.mounts));
    }
    container
}

fn unmapped(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig) {
    let Ok(Value::Object(printed)) = serde_json::to_value(service) else {
        return;
    };
    for (key, why) in UNMAPPED {
        if printed.get(*key).is_some_and(|v| !v.is_null()) {
            ctx.ledger.warn(scope, key, *why);
        }
    }
    for model in service.models.keys() {
        ctx.ledger.warn(
            scope,
            &format!("models.{model}"),
            "AI models have no Kubernetes equivalent; not translated",
        );
    }
}

fn image(ctx: &mut Ctx<'_>, scope: &Scope, name: &str, service: &ServiceConfig) -> String {
    if !service.image.is_empty() {
        ctx.ledger.used(scope, "image");
    }
    if service.build.is_none() {
        return service.image.clone();
    }
    if service.image.is_empty() {
        let image = format!("{}-{name}", ctx.project_name());
        ctx.ledger.warn(
            scope,
            "build",
            format!("images are not built; the cluster must be able to pull {image}, the name compose gives the built image"),
        );
        image
    } else {
        ctx.ledger.warn(
            scope,
            "build",
            format!(
                "images are not built; the cluster must be able to pull {}",
                service.image
            ),
        );
        service.image.clone()
    }
}

fn pull_policy(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig) -> Option<String> {
    let policy = match service.pull_policy.as_str() {
        "" => return None,
        "always" => "Always",
        "never" => "Never",
        "missing" | "if_not_present" => "IfNotPresent",
        "build" => {
            ctx.ledger.warn(
                scope,
                "pull_policy",
                "images are not built; the image is pulled if not present",
            );
            return Some("IfNotPresent".into());
        }
        other => {
            ctx.ledger.warn(
                scope,
                "pull_policy",
                format!(
                    "{other:?} has no Kubernetes equivalent; the image is pulled if not present"
                ),
            );
            return Some("IfNotPresent".into());
        }
    };
    ctx.ledger.used(scope, "pull_policy");
    Some(policy.into())
}

fn links(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig) {
    for link in &service.links {
        let (target, alias) = link.split_once(':').unwrap_or((link, link));
        if target == alias {
            // The target's Service already has its name.
            ctx.ledger.used(scope, "links");
        } else {
            ctx.aliases.push(super::plan::Alias {
                scope: scope.clone(),
                key: "links".into(),
                alias: alias.to_string(),
                target: target.to_string(),
            });
        }
    }
}

/// `nvidia.com/gpu` for a GPU device request, when it has a count.
fn gpu(ctx: &mut Ctx<'_>, scope: &Scope, key: &str, device: &DeviceRequest) -> Option<Quantity> {
    let is_gpu = device.capabilities.iter().any(|c| c == "gpu")
        && (device.driver.is_empty() || device.driver == "nvidia");
    if is_gpu && device.count > 0 && device.device_ids.is_empty() && device.options.is_empty() {
        ctx.ledger.used(scope, key);
        return Some(Quantity(device.count.to_string()));
    }
    ctx.ledger.warn(
        scope,
        key,
        "only a count of NVIDIA GPUs maps to Kubernetes (nvidia.com/gpu); this request is ignored",
    );
    None
}

fn resources(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    service: &ServiceConfig,
) -> Option<ResourceRequirements> {
    let mut limits: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut requests: BTreeMap<String, Quantity> = BTreeMap::new();
    let resources = service.deploy.as_ref().map(|d| &d.resources);
    let mut limit_bytes = None;
    let mut request_bytes = None;
    let mut limit_cpus = None;
    let mut request_cpus = None;
    for (which, resource) in [
        ("limits", resources.and_then(|r| r.limits.as_ref())),
        (
            "reservations",
            resources.and_then(|r| r.reservations.as_ref()),
        ),
    ] {
        let Some(resource) = resource else { continue };
        let key = |field: &str| format!("deploy.resources.{which}.{field}");
        if resource.cpus > 0.0 {
            ctx.ledger.used(scope, &key("cpus"));
            if which == "limits" {
                limit_cpus = Some(resource.cpus);
            } else {
                request_cpus = Some(resource.cpus);
            }
        }
        if !resource.memory.is_zero() {
            ctx.ledger.used(scope, &key("memory"));
            if which == "limits" {
                limit_bytes = Some(resource.memory.bytes());
            } else {
                request_bytes = Some(resource.memory.bytes());
            }
        }
        if resource.pids != 0 {
            ctx.ledger.warn(
                scope,
                &key("pids"),
                "PID limits are the node's setting; ignored",
            );
        }
        for device in &resource.devices {
            if let Some(count) = gpu(ctx, scope, &key("devices"), device) {
                limits.insert("nvidia.com/gpu".into(), count);
            }
        }
        if !resource.generic_resources.is_empty() {
            ctx.ledger.warn(
                scope,
                &key("generic_resources"),
                "swarm generic resources have no Kubernetes equivalent; ignored",
            );
        }
    }
    if service.cpus > 0.0 {
        ctx.ledger.used(scope, "cpus");
        limit_cpus = limit_cpus.or(Some(service.cpus));
    }
    if !service.mem_limit.is_zero() {
        ctx.ledger.used(scope, "mem_limit");
        limit_bytes = limit_bytes.or(Some(service.mem_limit.bytes()));
    }
    if !service.mem_reservation.is_zero() {
        ctx.ledger.used(scope, "mem_reservation");
        request_bytes = request_bytes.or(Some(service.mem_reservation.bytes()));
    }
    for device in &service.gpus {
        if let Some(count) = gpu(ctx, scope, "gpus", device) {
            limits.insert("nvidia.com/gpu".into(), count);
        }
    }
    if let (Some(request), Some(limit)) = (request_cpus, limit_cpus) {
        if request > limit {
            ctx.ledger.warn(
                scope,
                "deploy.resources.reservations.cpus",
                "more than the limit, which Kubernetes refuses; the limit is requested",
            );
            request_cpus = None;
        }
    }
    if let (Some(request), Some(limit)) = (request_bytes, limit_bytes) {
        if request > limit {
            ctx.ledger.warn(
                scope,
                if service.mem_reservation.is_zero() {
                    "deploy.resources.reservations.memory"
                } else {
                    "mem_reservation"
                },
                "more than the limit, which Kubernetes refuses; the limit is requested",
            );
            request_bytes = None;
        }
    }
    if let Some(cpus) = limit_cpus {
        limits.insert("cpu".into(), units::cpu(cpus));
    }
    if let Some(bytes) = limit_bytes {
        limits.insert("memory".into(), units::bytes_i64(bytes));
    }
    if let Some(cpus) = request_cpus {
        requests.insert("cpu".into(), units::cpu(cpus));
    }
    if let Some(bytes) = request_bytes {
        requests.insert("memory".into(), units::bytes_i64(bytes));
    }
    if limits.is_empty() && requests.is_empty() {
        return None;
    }
    Some(ResourceRequirements {
        limits: (!limits.is_empty()).then_some(limits),
        requests: (!requests.is_empty()).then_some(requests),
        ..ResourceRequirements::default()
    })
}

/// A capability as Kubernetes names it: without `CAP_`.
fn capability(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
}

fn security_context(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    service: &ServiceConfig,
) -> Option<SecurityContext> {
    let mut security = SecurityContext::default();
    if !service.user.is_empty() {
        let (user, group) = match service.user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (service.user.as_str(), None),
        };
        let id = |text: &str| match text {
            "root" => Some(0),
            other => other.parse::<i64>().ok().filter(|id| *id >= 0),
        };
        match (id(user), group.map(id)) {
            (Some(uid), None) => {
                ctx.ledger.used(scope, "user");
                security.run_as_user = Some(uid);
            }
            (Some(uid), Some(Some(gid))) => {
                ctx.ledger.used(scope, "user");
                security.run_as_user = Some(uid);
                security.run_as_group = Some(gid);
            }
            _ => ctx.ledger.warn(
                scope,
                "user",
                format!("{:?}: Kubernetes takes numeric user and group ids only; the image's user is used", service.user),
            ),
        }
    }
    if service.read_only {
        ctx.ledger.used(scope, "read_only");
        security.read_only_root_filesystem = Some(true);
    }
    if service.privileged {
        ctx.ledger.used(scope, "privileged");
        security.privileged = Some(true);
    }
    let add: Vec<String> = service.cap_add.iter().map(|c| capability(c)).collect();
    let drop: Vec<String> = service.cap_drop.iter().map(|c| capability(c)).collect();
    if !add.is_empty() {
        ctx.ledger.used(scope, "cap_add");
    }
    if !drop.is_empty() {
        ctx.ledger.used(scope, "cap_drop");
    }
    if !add.is_empty() || !drop.is_empty() {
        security.capabilities = Some(Capabilities {
            add: (!add.is_empty()).then_some(add.clone()),
            drop: (!drop.is_empty()).then_some(drop),
        });
    }
    for option in &service.security_opt {
        let (name, value) = option
            .split_once([':', '='])
            .unwrap_or((option.as_str(), ""));
        let mapped = match (name, value) {
            ("no-new-privileges", "" | "true") => {
                let escalates =
                    service.privileged || add.iter().any(|c| c == "SYS_ADMIN" || c == "ALL");
                if escalates {
                    ctx.ledger.warn(
                        scope,
                        "security_opt",
                        "no-new-privileges cannot be set with privileged or SYS_ADMIN in Kubernetes; not set",
                    );
                    continue;
                }
                security.allow_privilege_escalation = Some(false);
                true
            }
            ("no-new-privileges", "false") => true,
            ("seccomp", "unconfined") => {
                security.seccomp_profile = Some(SeccompProfile {
                    type_: "Unconfined".into(),
                    localhost_profile: None,
                });
                true
            }
            ("apparmor", "unconfined") => {
                security.app_armor_profile = Some(AppArmorProfile {
                    type_: "Unconfined".into(),
                    localhost_profile: None,
                });
                true
            }
            ("apparmor", profile) if !profile.is_empty() => {
                security.app_armor_profile = Some(AppArmorProfile {
                    type_: "Localhost".into(),
                    localhost_profile: Some(profile.to_string()),
                });
                true
            }
            ("label", label) => {
                let options = security
                    .se_linux_options
                    .get_or_insert_with(SELinuxOptions::default);
                match label.split_once(':') {
                    Some(("user", v)) => options.user = Some(v.to_string()),
                    Some(("role", v)) => options.role = Some(v.to_string()),
                    Some(("type", v)) => options.type_ = Some(v.to_string()),
                    Some(("level", v)) => options.level = Some(v.to_string()),
                    _ => {
                        if *options == SELinuxOptions::default() {
                            security.se_linux_options = None;
                        }
                        ctx.ledger.warn(
                            scope,
                            "security_opt",
                            format!("{option:?} has no Kubernetes equivalent; ignored"),
                        );
                        continue;
                    }
                }
                true
            }
            _ => false,
        };
        if mapped {
            ctx.ledger.used(scope, "security_opt");
        } else {
            ctx.ledger.warn(
                scope,
                "security_opt",
                format!("{option:?} has no Kubernetes equivalent; ignored"),
            );
        }
    }
    (security != SecurityContext::default()).then_some(security)
}

fn hook(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    key: &str,
    hooks: &[ServiceHook],
) -> Option<LifecycleHandler> {
    let first = hooks.first()?;
    if hooks.len() > 1 {
        ctx.ledger.warn(
            scope,
            key,
            "Kubernetes runs one hook per event; only the first is kept",
        );
    }
    for (field, set) in [
        ("user", !first.user.is_empty()),
        ("privileged", first.privileged),
        ("working_dir", !first.working_dir.is_empty()),
        ("environment", !first.environment.is_empty()),
    ] {
        if set {
            ctx.ledger.warn(
                scope,
                &format!("{key}.{field}"),
                "a Kubernetes hook runs as the container does; ignored",
            );
        }
    }
    let Some(command) = first.command.clone().filter(|c| !c.is_empty()) else {
        ctx.ledger
            .warn(scope, &format!("{key}.command"), "no command; no hook");
        return None;
    };
    ctx.ledger.used(scope, &format!("{key}.command"));
    Some(LifecycleHandler {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        ..LifecycleHandler::default()
    })
}

fn lifecycle(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig) -> Option<Lifecycle> {
    let lifecycle = Lifecycle {
        post_start: hook(ctx, scope, "post_start", &service.post_start),
        pre_stop: hook(ctx, scope, "pre_stop", &service.pre_stop),
        ..Lifecycle::default()
    };
    (lifecycle != Lifecycle::default()).then_some(lifecycle)
}
