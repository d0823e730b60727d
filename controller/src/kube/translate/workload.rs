//! One service's objects: its environment ConfigMap, its Service, and its
//! workload (Deployment, StatefulSet, DaemonSet or Job) with the pod
//! template every part contributes to.
//!
//! Pod-level mappings: `hostname` → `hostname`; `dns`, `dns_search`,
//! `dns_opt` → `dnsConfig` (added to the cluster's DNS); `extra_hosts` →
//! `hostAliases`; `sysctls` and numeric `group_add` → the pod security
//! context; `init: true` → `shareProcessNamespace` (the pause process is
//! PID 1, reaps zombies, and the program gets the default signal
//! handling, which is what `init` is for); `runtime` → `runtimeClassName`;
//! `stop_grace_period` → `terminationGracePeriodSeconds`; `platform` and
//! `deploy.placement.constraints` (`node.labels.*`, `node.hostname`,
//! `node.platform.*`, with `==` or `!=`) → node selection;
//! `deploy.placement.preferences` → topology spread; `network_mode: host`,
//! `pid: host`, `ipc: host` → host namespaces, only when the options allow
//! them. `deploy.update_config` (`parallelism`, `order`, `monitor`) shapes a
//! Deployment's or DaemonSet's rolling update.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, Deployment, DeploymentSpec,
    DeploymentStrategy, RollingUpdateDaemonSet, RollingUpdateDeployment, StatefulSet,
    StatefulSetSpec,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Container, HostAlias, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, PodDNSConfig, PodDNSConfigOption, PodSecurityContext, PodSpec,
    PodTemplateSpec, Sysctl, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use super::keys::Ledger;
use super::names::{
    dns_label, is_dns_label, is_dns_subdomain, is_label_value, is_qualified_name, PodNames,
    MAX_LABEL,
};
use super::overrides::WorkloadKind;
use super::plan::{Ctx, Restart, ServicePlan};
use super::{container, network, storage, units, wait, Object, Scope, TranslateError, CONFIG_HASH};
use crate::model::ServiceConfig;

/// What the parts of a pod template collect before it is assembled.
#[derive(Default)]
pub struct PodParts {
    /// Pod volumes.
    pub volumes: Vec<Volume>,
    /// Mounts of the main container.
    pub mounts: Vec<VolumeMount>,
    /// Names used in the pod.
    pub names: PodNames,
    /// Init containers (the dependency waits).
    pub init_containers: Vec<Container>,
    /// Whether the wait containers need the API token volume.
    pub wait_token: bool,
    /// Objects the pod needs that belong to its service (copies of host
    /// files).
    pub objects: Vec<Object>,
    /// Names of the host file copies made so far.
    pub copies: Vec<String>,
    targets: BTreeSet<String>,
    hash: Vec<(String, Vec<u8>)>,
}

impl PodParts {
    /// Adds a volume and its mount, unless something is already mounted at
    /// the mount's path (then the first one wins, with a warning).
    pub fn add(
        &mut self,
        ledger: &mut Ledger,
        scope: &Scope,
        key: &str,
        volume: Volume,
        mount: VolumeMount,
    ) {
        if self.claim_target(ledger, scope, key, &mount.mount_path) {
            self.volumes.push(volume);
            self.mounts.push(mount);
        }
    }

    /// Adds a mount of a volume already in the pod (or a claim template).
    pub fn mount(&mut self, ledger: &mut Ledger, scope: &Scope, key: &str, mount: VolumeMount) {
        if self.claim_target(ledger, scope, key, &mount.mount_path) {
            self.mounts.push(mount);
        }
    }

    fn claim_target(&mut self, ledger: &mut Ledger, scope: &Scope, key: &str, path: &str) -> bool {
        let normalized = path.trim_end_matches('/');
        let normalized = if normalized.is_empty() {
            "/"
        } else {
            normalized
        };
        if self.targets.insert(normalized.to_string()) {
            return true;
        }
        ledger.warn(
            scope,
            key,
            format!("{path} is already mounted; only the first mount is kept"),
        );
        false
    }

    /// Feeds the content of a mounted or referenced object into the pod
    /// template's config hash.
    pub fn hash_input(&mut self, object: &str, value: &[u8]) {
        self.hash.push((object.to_string(), value.to_vec()));
    }

    fn config_hash(&self) -> Option<String> {
        if self.hash.is_empty() {
            return None;
        }
        let mut digest = Sha256::new();
        for (object, value) in &self.hash {
            digest.update((object.len() as u64).to_le_bytes());
            digest.update(object.as_bytes());
            digest.update((value.len() as u64).to_le_bytes());
            digest.update(value);
        }
        let hex: String = digest
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(hex)
    }
}

/// Builds every object of service `name`.
pub fn service_objects(ctx: &mut Ctx<'_>, name: &str) -> Result<(), TranslateError> {
    let project = ctx.project;
    let Some(service) = project.services.get(name) else {
        return Ok(());
    };
    let Some(plan) = ctx.plans.get(name).cloned() else {
        return Ok(());
    };
    let scope = Scope::Service(name.to_string());
    if plan.skipped {
        ctx.ledger.warn(
            &scope,
            "*",
            "a provider service runs no containers; nothing is translated",
        );
        return Ok(());
    }
    let owner = scope.to_string();
    let mut pod = PodParts::default();
    // The main container's name is the service's; the waits must not take it.
    pod.names.reserve(&dns_label(name, MAX_LABEL));
    let ports = network::ports(ctx, &scope, service);
    let env = container::environment(ctx, &scope, service, &plan, &mut pod)?;
    storage::mounts(ctx, name, service, &plan, &mut pod);
    wait::init_containers(ctx, &scope, service, &mut pod);
    let main = container::main_container(ctx, &scope, name, service, env, &ports, &mut pod);
    for object in std::mem::take(&mut pod.objects) {
        ctx.push(object, &owner)?;
    }
    let template = pod_template(ctx, &scope, service, &plan, main, pod);
    network::service_object(ctx, &scope, name, &plan, &ports)?;

    let mut meta = ctx.meta(&plan.base, &plan.name_label);
    if let Some(deploy) = &service.deploy {
        ctx.carry_labels(&scope, "deploy.labels", &deploy.labels, &mut meta);
    }
    let selector = LabelSelector {
        match_labels: Some(ctx.selector(&plan.base)),
        ..LabelSelector::default()
    };
    let object = match plan.kind {
        WorkloadKind::Deployment => {
            let strategy = deployment_strategy(ctx, &scope, service, &plan);
            Object::Deployment(Deployment {
                metadata: meta,
                spec: DeploymentSpec {
                    replicas: Some(plan.replicas),
                    selector,
                    template,
                    strategy,
                    min_ready_seconds: min_ready_seconds(ctx, &scope, service),
                    ..DeploymentSpec::default()
                },
                ..Deployment::default()
            })
        }
        WorkloadKind::StatefulSet => {
            update_config_unmapped(ctx, &scope, service, "a StatefulSet");
            let templates: Vec<_> = plan
                .claim_templates
                .iter()
                .map(|key| storage::claim_template(ctx, key, &plan.base))
                .collect();
            Object::StatefulSet(StatefulSet {
                metadata: meta,
                spec: StatefulSetSpec {
                    replicas: Some(plan.replicas),
                    selector,
                    service_name: Some(plan.service_name.clone()),
                    // Compose starts all replicas at once.
                    pod_management_policy: Some("Parallel".into()),
                    template,
                    volume_claim_templates: (!templates.is_empty()).then_some(templates),
                    ..StatefulSetSpec::default()
                },
                ..StatefulSet::default()
            })
        }
        WorkloadKind::DaemonSet => {
            if service
                .deploy
                .as_ref()
                .is_some_and(|d| d.replicas.is_some())
            {
                ctx.ledger.warn(
                    &scope,
                    "deploy.replicas",
                    "a DaemonSet runs one pod per node; replicas are ignored",
                );
            }
            let update_strategy = daemonset_strategy(ctx, &scope, service);
            Object::DaemonSet(DaemonSet {
                metadata: meta,
                spec: DaemonSetSpec {
                    selector,
                    template,
                    update_strategy,
                    min_ready_seconds: min_ready_seconds(ctx, &scope, service),
                    ..DaemonSetSpec::default()
                },
                ..DaemonSet::default()
            })
        }
        WorkloadKind::Job => {
            update_config_unmapped(ctx, &scope, service, "a Job");
            let (backoff, count) = match plan.restart {
                Restart::Never => (0, plan.replicas),
                Restart::OnFailure(limit) => (limit.unwrap_or(6), plan.replicas),
                Restart::Always => (6, plan.replicas),
            };
            Object::Job(Job {
                metadata: meta,
                spec: Some(JobSpec {
                    backoff_limit: Some(backoff),
                    completions: (count != 1).then_some(count),
                    parallelism: (count != 1).then_some(count),
                    template,
                    ..JobSpec::default()
                }),
                ..Job::default()
            })
        }
    };
    ctx.push(object, &owner)
}

fn min_ready_seconds(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig) -> Option<i32> {
    let monitor = service
        .deploy
        .as_ref()
        .and_then(|d| d.update_config.as_ref())
        .map(|u| u.monitor)
        .filter(|m| !m.is_zero())?;
    ctx.ledger.used(scope, "deploy.update_config.monitor");
    Some(units::seconds(monitor, 0))
}

fn update_config_unmapped(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig, what: &str) {
    if service
        .deploy
        .as_ref()
        .is_some_and(|d| d.update_config.is_some())
    {
        ctx.ledger.warn(
            scope,
            "deploy.update_config",
            format!("{what} has no rolling update settings to map this to; ignored"),
        );
    }
    rollback_unmapped(ctx, scope, service);
}

fn rollback_unmapped(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig) {
    if service
        .deploy
        .as_ref()
        .is_some_and(|d| d.rollback_config.is_some())
    {
        ctx.ledger.warn(
            scope,
            "deploy.rollback_config",
            "Kubernetes does not roll back on its own (kubectl rollout undo does); ignored",
        );
    }
}

/// `(maxSurge, maxUnavailable)` from `update_config`, warning about what
/// does not map.
fn rolling_update(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    service: &ServiceConfig,
) -> Option<(IntOrString, IntOrString)> {
    rollback_unmapped(ctx, scope, service);
    let update = service.deploy.as_ref()?.update_config.as_ref()?;
    for (field, set) in [
        ("delay", !update.delay.is_zero()),
        ("failure_action", !update.failure_action.is_empty()),
        ("max_failure_ratio", update.max_failure_ratio != 0.0),
    ] {
        if set {
            ctx.ledger.warn(
                scope,
                &format!("deploy.update_config.{field}"),
                "no Kubernetes rolling update equivalent; ignored",
            );
        }
    }
    if !update.order.is_empty() {
        ctx.ledger.used(scope, "deploy.update_config.order");
    }
    let parallelism = update.parallelism?;
    ctx.ledger.used(scope, "deploy.update_config.parallelism");
    let step = if parallelism == 0 {
        IntOrString::String("100%".into())
    } else {
        IntOrString::Int(i32::try_from(parallelism).unwrap_or(i32::MAX))
    };
    Some(if update.order == "start-first" {
        (step, IntOrString::Int(0))
    } else {
        (IntOrString::Int(0), step)
    })
}

fn deployment_strategy(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    service: &ServiceConfig,
    plan: &ServicePlan,
) -> Option<DeploymentStrategy> {
    // A ReadWriteOnce claim can be mounted by one node at a time: a rolling
    // update's new pod could wait forever for the old one's claim.
    let single_writer = service.volumes.iter().any(|m| {
        m.kind == "volume"
            && !plan.claim_templates.contains(&m.source)
            && ctx
                .volumes
                .get(&m.source)
                .is_some_and(|v| v.claim.is_some() && v.access_mode == "ReadWriteOnce")
    });
    let rolling = rolling_update(ctx, scope, service);
    if single_writer {
        if rolling.is_some() {
            ctx.ledger.warn(
                scope,
                "deploy.update_config",
                "the service mounts a ReadWriteOnce claim, so it is updated by Recreate",
            );
        }
        return Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        });
    }
    let (surge, unavailable) = rolling?;
    Some(DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(surge),
            max_unavailable: Some(unavailable),
        }),
    })
}

fn daemonset_strategy(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    service: &ServiceConfig,
) -> Option<DaemonSetUpdateStrategy> {
    let (surge, unavailable) = rolling_update(ctx, scope, service)?;
    // A DaemonSet may not have both at zero, and compose's parallelism is
    // at least one pod.
    Some(DaemonSetUpdateStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDaemonSet {
            max_surge: Some(surge),
            max_unavailable: Some(unavailable),
        }),
    })
}

fn pod_template(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    service: &ServiceConfig,
    plan: &ServicePlan,
    main: Container,
    mut pod: PodParts,
) -> PodTemplateSpec {
    let mut labels = ctx.labels(&plan.name_label, &plan.base);
    if ctx.isolated {
        for network in network::attached(service) {
            labels.insert(network::network_label(network), "true".into());
        }
    }
    let mut meta = ObjectMeta {
        labels: Some(labels),
        ..ObjectMeta::default()
    };
    ctx.carry_labels(scope, "labels", &service.labels, &mut meta);
    if !service.label_file.is_empty() {
        // The loader reads label files into `labels`.
        ctx.ledger.used(scope, "label_file");
    }
    if !service.annotations.is_empty() {
        for (key, value) in &service.annotations {
            if is_qualified_name(key) {
                ctx.ledger.used(scope, &format!("annotations.{key}"));
                meta.annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key.clone(), value.clone());
            } else {
                ctx.ledger.warn(
                    scope,
                    &format!("annotations.{key}"),
                    "not a valid Kubernetes annotation key; dropped",
                );
            }
        }
    }
    if let Some(hash) = pod.config_hash() {
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(CONFIG_HASH.into(), hash);
    }
    let mut spec = PodSpec {
        containers: vec![main],
        automount_service_account_token: Some(false),
        ..PodSpec::default()
    };
    if plan.kind == WorkloadKind::Job {
        spec.restart_policy = Some(
            if plan.restart == Restart::Never {
                "Never"
            } else {
                "OnFailure"
            }
            .into(),
        );
    }
    if pod.wait_token {
        spec.service_account_name = Some(ctx.wait_identity.clone());
        pod.volumes.push(wait::token_volume());
    }
    if !pod.init_containers.is_empty() {
        spec.init_containers = Some(std::mem::take(&mut pod.init_containers));
    }
    if !pod.volumes.is_empty() {
        spec.volumes = Some(std::mem::take(&mut pod.volumes));
    }
    pod_settings(ctx, scope, service, &mut spec);
    scheduling(ctx, scope, service, plan, &mut spec);
    PodTemplateSpec {
        metadata: Some(meta),
        spec: Some(spec),
    }
}

fn pod_settings(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig, spec: &mut PodSpec) {
    if !service.hostname.is_empty() {
        if is_dns_label(&service.hostname) {
            ctx.ledger.used(scope, "hostname");
            spec.hostname = Some(service.hostname.clone());
        } else {
            ctx.ledger.warn(
                scope,
                "hostname",
                format!(
                    "{:?} is not a DNS-1123 label; the pod keeps its own name",
                    service.hostname
                ),
            );
        }
    }
    if service.init == Some(true) {
        ctx.ledger.used(scope, "init");
        spec.share_process_namespace = Some(true);
    } else if service.init.is_some() {
        ctx.ledger.used(scope, "init");
    }
    if !service.runtime.is_empty() {
        if is_dns_subdomain(&service.runtime) {
            ctx.ledger.used(scope, "runtime");
            spec.runtime_class_name = Some(service.runtime.clone());
        } else {
            ctx.ledger
                .warn(scope, "runtime", "not a valid RuntimeClass name; ignored");
        }
    }
    if let Some(grace) = service.stop_grace_period {
        ctx.ledger.used(scope, "stop_grace_period");
        spec.termination_grace_period_seconds = Some(units::seconds_i64(grace));
    }
    dns(ctx, scope, service, spec);
    if !service.extra_hosts.is_empty() {
        let mut by_ip: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (host, ips) in &service.extra_hosts.0 {
            if !is_dns_subdomain(&host.to_ascii_lowercase()) {
                ctx.ledger.warn(
                    scope,
                    "extra_hosts",
                    format!("{host:?} is not a valid host name; left out"),
                );
                continue;
            }
            for ip in ips {
                if ip.parse::<std::net::IpAddr>().is_ok() {
                    by_ip
                        .entry(ip.clone())
                        .or_default()
                        .push(host.to_ascii_lowercase());
                } else {
                    ctx.ledger.warn(
                        scope,
                        "extra_hosts",
                        format!("{host}: {ip:?} is not an IP address (host-gateway has no Kubernetes equivalent); left out"),
                    );
                }
            }
        }
        ctx.ledger.used(scope, "extra_hosts");
        if !by_ip.is_empty() {
            spec.host_aliases = Some(
                by_ip
                    .into_iter()
                    .map(|(ip, hostnames)| HostAlias {
                        ip,
                        hostnames: Some(hostnames),
                    })
                    .collect(),
            );
        }
    }
    let mut security = PodSecurityContext::default();
    let mut sysctls = Vec::new();
    for (name, value) in &service.sysctls {
        if is_sysctl_name(name) {
            ctx.ledger.used(scope, &format!("sysctls.{name}"));
            sysctls.push(Sysctl {
                name: name.clone(),
                value: value.clone(),
            });
        } else {
            ctx.ledger.warn(
                scope,
                &format!("sysctls.{name}"),
                "not a valid kernel parameter name; left out",
            );
        }
    }
    if !sysctls.is_empty() {
        security.sysctls = Some(sysctls);
    }
    if !service.group_add.is_empty() {
        let mut groups = Vec::new();
        for group in &service.group_add {
            match group.parse::<i64>() {
                Ok(id) if id >= 0 => groups.push(id),
                _ => ctx.ledger.warn(
                    scope,
                    "group_add",
                    format!("group {group:?} is not a number; Kubernetes takes group ids only"),
                ),
            }
        }
        if !groups.is_empty() {
            ctx.ledger.used(scope, "group_add");
            security.supplemental_groups = Some(groups);
        }
    }
    if security != PodSecurityContext::default() {
        spec.security_context = Some(security);
    }
    namespaces(ctx, scope, service, spec);
}

/// Whether `name` is a kernel parameter name as the API server takes it
/// (dot- or slash-separated lower-case segments).
fn is_sysctl_name(name: &str) -> bool {
    name.len() <= 253
        && name.split(['.', '/']).all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && part.ends_with(|c: char| c.is_ascii_alphanumeric())
        })
}

fn dns(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig, spec: &mut PodSpec) {
    let mut config = PodDNSConfig::default();
    if !service.dns.is_empty() {
        ctx.ledger.used(scope, "dns");
        let mut servers: Vec<String> = Vec::new();
        for server in &service.dns {
            if server.parse::<std::net::IpAddr>().is_ok() {
                servers.push(server.clone());
            } else {
                ctx.ledger.warn(
                    scope,
                    "dns",
                    format!("{server:?} is not an IP address; left out"),
                );
            }
        }
        if servers.len() > 3 {
            ctx.ledger.warn(
                scope,
                "dns",
                "Kubernetes takes at most 3 name servers; the rest are left out",
            );
            servers.truncate(3);
        }
        config.nameservers = (!servers.is_empty()).then_some(servers);
    }
    if !service.dns_search.is_empty() {
        ctx.ledger.used(scope, "dns_search");
        config.searches = Some(service.dns_search.clone());
    }
    if !service.dns_opt.is_empty() {
        ctx.ledger.used(scope, "dns_opt");
        config.options = Some(
            service
                .dns_opt
                .iter()
                .map(|option| match option.split_once(':') {
                    Some((name, value)) => PodDNSConfigOption {
                        name: Some(name.to_string()),
                        value: Some(value.to_string()),
                    },
                    None => PodDNSConfigOption {
                        name: Some(option.clone()),
                        value: None,
                    },
                })
                .collect(),
        );
    }
    if config != PodDNSConfig::default() {
        spec.dns_config = Some(config);
    }
}

fn namespaces(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig, spec: &mut PodSpec) {
    for (key, mode) in [
        ("network_mode", &service.network_mode),
        ("net", &service.net),
    ] {
        match mode.as_str() {
            "" => {}
            "bridge" | "default" => ctx.ledger.used(scope, key),
            "host" if ctx.options.allow_host_network => {
                ctx.ledger.used(scope, key);
                spec.host_network = Some(true);
                spec.dns_policy = Some("ClusterFirstWithHostNet".into());
            }
            "host" => ctx.ledger.warn(
                scope,
                key,
                "the host network is refused unless allowed; the pod gets its own network",
            ),
            "none" => ctx.ledger.warn(
                scope,
                key,
                "a pod always has a network; it is not cut off",
            ),
            other => ctx.ledger.warn(
                scope,
                key,
                format!("{other:?}: pods of different workloads cannot share a network namespace; the pod gets its own"),
            ),
        }
    }
    match service.pid.as_str() {
        "" => {}
        "host" if ctx.options.allow_host_pid => {
            ctx.ledger.used(scope, "pid");
            spec.host_pid = Some(true);
            if spec.share_process_namespace.take().is_some() {
                ctx.ledger.warn(
                    scope,
                    "init",
                    "a pod in the host PID namespace cannot share its own; no init",
                );
            }
        }
        "host" => ctx.ledger.warn(
            scope,
            "pid",
            "the host PID namespace is refused unless allowed; ignored",
        ),
        other => ctx.ledger.warn(
            scope,
            "pid",
            format!("{other:?}: pods of different workloads cannot share a PID namespace; ignored"),
        ),
    }
    match service.ipc.as_str() {
        "" => {}
        "private" | "shareable" => ctx.ledger.used(scope, "ipc"),
        "host" if ctx.options.allow_host_ipc => {
            ctx.ledger.used(scope, "ipc");
            spec.host_ipc = Some(true);
        }
        "host" => ctx.ledger.warn(
            scope,
            "ipc",
            "the host IPC namespace is refused unless allowed; ignored",
        ),
        other => ctx.ledger.warn(
            scope,
            "ipc",
            format!(
                "{other:?}: pods of different workloads cannot share an IPC namespace; ignored"
            ),
        ),
    }
    match service.userns_mode.as_str() {
        "" => {}
        // Pods share the host's user namespace unless told otherwise.
        "host" => ctx.ledger.used(scope, "userns_mode"),
        other => ctx.ledger.warn(
            scope,
            "userns_mode",
            format!("{other:?} has no Kubernetes equivalent; ignored"),
        ),
    }
    if !service.uts.is_empty() {
        ctx.ledger.warn(
            scope,
            "uts",
            "a pod cannot share the host's UTS namespace; ignored",
        );
    }
}

/// Kubernetes' name for an architecture compose (or Go) names otherwise.
fn arch(name: &str) -> &str {
    match name {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn scheduling(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    service: &ServiceConfig,
    plan: &ServicePlan,
    spec: &mut PodSpec,
) {
    let mut selector: BTreeMap<String, String> = BTreeMap::new();
    let mut excluded: Vec<NodeSelectorRequirement> = Vec::new();
    if !service.platform.is_empty() {
        let mut parts = service.platform.split('/');
        let os = parts.next().unwrap_or_default();
        let architecture = parts.next();
        let variant = parts.next();
        ctx.ledger.used(scope, "platform");
        if is_label_value(os) && !os.is_empty() {
            selector.insert("kubernetes.io/os".into(), os.to_string());
        }
        if let Some(architecture) = architecture.filter(|a| is_label_value(a) && !a.is_empty()) {
            selector.insert("kubernetes.io/arch".into(), arch(architecture).to_string());
        }
        if variant.is_some() {
            ctx.ledger.warn(
                scope,
                "platform",
                "nodes carry no label for the architecture variant; only the OS and architecture are required",
            );
        }
    }
    let placement = service.deploy.as_ref().map(|d| &d.placement);
    for constraint in placement
        .map(|p| p.constraints.as_slice())
        .unwrap_or_default()
    {
        let (field, value, equal) = if let Some((f, v)) = constraint.split_once("==") {
            (f.trim(), v.trim(), true)
        } else if let Some((f, v)) = constraint.split_once("!=") {
            (f.trim(), v.trim(), false)
        } else {
            ctx.ledger.warn(
                scope,
                "deploy.placement.constraints",
                format!("{constraint:?} is neither == nor !=; ignored"),
            );
            continue;
        };
        let label = if let Some(label) = field.strip_prefix("node.labels.") {
            Some((label.to_string(), value.to_string()))
        } else {
            match field {
                "node.hostname" => Some(("kubernetes.io/hostname".to_string(), value.to_string())),
                "node.platform.os" => Some(("kubernetes.io/os".to_string(), value.to_string())),
                "node.platform.arch" => {
                    Some(("kubernetes.io/arch".to_string(), arch(value).to_string()))
                }
                _ => None,
            }
        };
        match label {
            Some((key, value)) if is_qualified_name(&key) && is_label_value(&value) => {
                ctx.ledger.used(scope, "deploy.placement.constraints");
                if equal {
                    selector.insert(key, value);
                } else {
                    excluded.push(NodeSelectorRequirement {
                        key,
                        operator: "NotIn".into(),
                        values: Some(vec![value]),
                    });
                }
            }
            _ => ctx.ledger.warn(
                scope,
                "deploy.placement.constraints",
                format!("{constraint:?} has no Kubernetes node label equivalent; ignored"),
            ),
        }
    }
    if !selector.is_empty() {
        spec.node_selector = Some(selector);
    }
    if !excluded.is_empty() {
        spec.affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(excluded),
                        ..NodeSelectorTerm::default()
                    }],
                }),
                ..NodeAffinity::default()
            }),
            ..Affinity::default()
        });
    }
    let mut spread = Vec::new();
    for preference in placement
        .map(|p| p.preferences.as_slice())
        .unwrap_or_default()
    {
        match preference.spread.strip_prefix("node.labels.") {
            Some(key) if is_qualified_name(key) => {
                ctx.ledger
                    .used(scope, "deploy.placement.preferences.spread");
                spread.push(TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: key.to_string(),
                    when_unsatisfiable: "ScheduleAnyway".into(),
                    label_selector: Some(LabelSelector {
                        match_labels: Some(ctx.selector(&plan.base)),
                        ..LabelSelector::default()
                    }),
                    ..TopologySpreadConstraint::default()
                });
            }
            _ => ctx.ledger.warn(
                scope,
                "deploy.placement.preferences.spread",
                format!("{:?} is not a node label; ignored", preference.spread),
            ),
        }
    }
    if !spread.is_empty() {
        spec.topology_spread_constraints = Some(spread);
    }
    if placement.is_some_and(|p| p.max_replicas_per_node != 0) {
        ctx.ledger.warn(
            scope,
            "deploy.placement.max_replicas_per_node",
            "Kubernetes has no per-node replica limit; ignored",
        );
    }
}
