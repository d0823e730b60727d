//! Services and NetworkPolicies.
//!
//! Every service that runs long gets a Service named as the compose
//! service, so that the names the services use for each other resolve.
//! Its ports are the `ports` and `expose` of the service, each with its
//! protocol (`/udp`), a name (the compose `name` when it is a valid port
//! name, else `tcp-80`) and the container port as the Service port: other
//! services reach `db:5432` as they did in compose, whatever port it was
//! published on. A published port reaches outside the cluster only through
//! a NodePort (the published port as node port, when in the node port
//! range) or LoadBalancer (the published port as the Service port) Service,
//! chosen by `service_type` (see `overrides`); otherwise a warning says it
//! does not. A service without ports gets a headless Service, whose name
//! resolves to the ready pods (any port), like compose's DNS;
//! `deploy.endpoint_mode: dnsrr` asks for that too. A Job gets a Service
//! only when it has ports. A StatefulSet names its Service as its
//! `serviceName`; its pods get names of their own in DNS only when that
//! Service is headless (`service_type: Headless`). A network alias or a
//! link alias is one more Service, selecting the same pods, so that the
//! alias resolves; it resolves in the whole namespace, not on one network.
//!
//! NetworkPolicies, only when the project's services use more than one
//! network or an `internal` one (with one ordinary network, compose does
//! not isolate anything): each pod carries a `network.stackd.dev/<network>`
//! label per network it joins; per network, pods on it accept traffic from
//! pods on it; per service with published ports, those ports accept traffic
//! from anywhere; and a service whose networks are all `internal` may only
//! send to pods on its networks, DNS (port 53) and, when it waits for
//! dependencies, the Kubernetes API (ports 443 and 6443).
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ContainerPort, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::{dns1035_label, dns_label, is_port_name, is_qualified_name, MAX_LABEL};
use super::overrides::{ServiceType, WorkloadKind};
use super::plan::{Alias, Ctx, ServicePlan};
use super::{Object, Scope, TranslateError, PART_OF};
use crate::model::ServiceConfig;

/// Widest port range `expose` or `ports` may expand to.
const MAX_RANGE: u32 = 100;

/// The ports of one service.
#[derive(Debug, Clone, Default)]
pub struct PortPlan {
    /// Container ports.
    pub container: Vec<ContainerPort>,
    /// Service ports.
    pub service: Vec<ServicePort>,
    /// Ports published outside (target, protocol).
    pub published: Vec<(i32, String)>,
    /// The Service type.
    pub service_type: Option<ServiceType>,
}

/// The label a pod carries for each network it joins.
pub fn network_label(network: &str) -> String {
    format!("network.stackd.dev/{}", dns_label(network, MAX_LABEL))
}

/// The networks a service joins (none with a `network_mode`).
pub fn attached(service: &ServiceConfig) -> Vec<&str> {
    if !service.network_mode.is_empty()
        && !matches!(service.network_mode.as_str(), "bridge" | "default")
    {
        return Vec::new();
    }
    service.networks.keys().map(String::as_str).collect()
}

fn protocol(ctx: &mut Ctx<'_>, scope: &Scope, key: &str, text: &str) -> String {
    match text.to_ascii_lowercase().as_str() {
        "" | "tcp" => "TCP".into(),
        "udp" => "UDP".into(),
        "sctp" => "SCTP".into(),
        other => {
            ctx.ledger.warn(
                scope,
                key,
                format!("protocol {other:?} is not TCP, UDP or SCTP; TCP is used"),
            );
            "TCP".into()
        }
    }
}

fn port_number(value: u32) -> Option<i32> {
    (1..=65535)
        .contains(&value)
        .then(|| i32::try_from(value).ok())
        .flatten()
}

/// `80`, `8000-8010` as ports.
fn port_range(text: &str) -> Option<Vec<u32>> {
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (low.parse().ok()?, high.parse().ok()?),
        None => {
            let port = text.parse().ok()?;
            (port, port)
        }
    };
    (low <= high && high - low < MAX_RANGE).then(|| (low..=high).collect())
}

struct Wanted {
    target: i32,
    protocol: String,
    name: Option<String>,
    published: Option<String>,
    app_protocol: Option<String>,
}

/// The ports of `service`, after its Service type is settled.
pub fn ports(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig) -> PortPlan {
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut host_ip = false;
    for port in &service.ports {
        ctx.ledger.used(scope, "ports.target");
        let Some(target) = port_number(port.target) else {
            ctx.ledger.warn(
                scope,
                "ports",
                format!("{} is not a port; the entry is left out", port.target),
            );
            continue;
        };
        if !port.protocol.is_empty() {
            ctx.ledger.used(scope, "ports.protocol");
        }
        let protocol = protocol(ctx, scope, "ports.protocol", &port.protocol);
        if !port.host_ip.is_empty() {
            host_ip = true;
        }
        match port.mode.as_str() {
            "" | "ingress" => {
                if !port.mode.is_empty() {
                    ctx.ledger.used(scope, "ports.mode");
                }
            }
            other => ctx.ledger.warn(
                scope,
                "ports.mode",
                format!("{other:?} publishing (a port on each node's host) is not carried over"),
            ),
        }
        let name = (!port.name.is_empty()).then(|| port.name.clone());
        let app_protocol = (!port.app_protocol.is_empty()).then(|| port.app_protocol.clone());
        wanted.push(Wanted {
            target,
            protocol,
            name,
            published: (!port.published.is_empty()).then(|| port.published.clone()),
            app_protocol,
        });
    }
    if host_ip {
        ctx.ledger.warn(
            scope,
            "ports.host_ip",
            "Kubernetes does not bind Services to a host address; ignored",
        );
    }
    for entry in &service.expose {
        ctx.ledger.used(scope, "expose");
        let (range, proto) = entry.split_once('/').unwrap_or((entry.as_str(), ""));
        let proto = protocol(ctx, scope, "expose", proto);
        let Some(range) = port_range(range) else {
            ctx.ledger.warn(
                scope,
                "expose",
                format!(
                    "{entry:?} is not a port or a range of at most {MAX_RANGE} ports; left out"
                ),
            );
            continue;
        };
        for port in range {
            if let Some(target) = port_number(port) {
                wanted.push(Wanted {
                    target,
                    protocol: proto.clone(),
                    name: None,
                    published: None,
                    app_protocol: None,
                });
            }
        }
    }
    let endpoint_mode = service
        .deploy
        .as_ref()
        .map(|d| d.endpoint_mode.as_str())
        .unwrap_or_default();
    let overridden = ctx.overrides.service(&service_key(scope)).service_type;
    let mut service_type = match (overridden, endpoint_mode) {
        (Some(kind), _) => {
            if !endpoint_mode.is_empty() {
                ctx.ledger.warn(
                    scope,
                    "deploy.endpoint_mode",
                    "the service type override decides the Service; ignored",
                );
            }
            kind
        }
        (None, "dnsrr") => {
            ctx.ledger.used(scope, "deploy.endpoint_mode");
            ServiceType::Headless
        }
        (None, mode) => {
            if !mode.is_empty() {
                ctx.ledger.used(scope, "deploy.endpoint_mode");
            }
            ServiceType::ClusterIp
        }
    };
    if wanted.is_empty()
        && matches!(
            service_type,
            ServiceType::NodePort | ServiceType::LoadBalancer
        )
    {
        ctx.ledger.warn(
            scope,
            "ports",
            "a NodePort or LoadBalancer Service needs ports; the Service is headless",
        );
        service_type = ServiceType::Headless;
    }
    let mut out = PortPlan {
        service_type: Some(service_type),
        ..PortPlan::default()
    };
    let mut container_seen = BTreeSet::new();
    let mut service_seen = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut published_unreachable = false;
    for port in wanted {
        let published = port
            .published
            .as_deref()
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(text) = &port.published {
            ctx.ledger.used(scope, "ports.published");
            if published.is_none() {
                ctx.ledger.warn(
                    scope,
                    "ports.published",
                    format!("{text}: a range of host ports has no Kubernetes equivalent; the container port is used"),
                );
            }
            out.published.push((port.target, port.protocol.clone()));
        }
        let service_port = match service_type {
            ServiceType::LoadBalancer => published.unwrap_or(port.target),
            _ => port.target,
        };
        let node_port = match (service_type, published) {
            (ServiceType::NodePort, Some(p)) if (30000..=32767).contains(&p) => Some(p),
            (ServiceType::NodePort, Some(p)) => {
                ctx.ledger.warn(
                    scope,
                    "ports.published",
                    format!("{p} is outside the node port range 30000-32767; Kubernetes picks the node port"),
                );
                None
            }
            _ => None,
        };
        if port.published.is_some()
            && matches!(service_type, ServiceType::ClusterIp | ServiceType::Headless)
        {
            published_unreachable = true;
        }
        let derived = format!("{}-{service_port}", port.protocol.to_ascii_lowercase());
        let name = match &port.name {
            Some(name) if is_port_name(name) && !names.contains(name) => {
                ctx.ledger.used(scope, "ports.name");
                name.clone()
            }
            Some(name) => {
                ctx.ledger.warn(
                    scope,
                    "ports.name",
                    format!("{name:?} is not a valid (or is a repeated) Kubernetes port name; {derived} is used"),
                );
                derived.clone()
            }
            None => derived.clone(),
        };
        let app_protocol = port.app_protocol.filter(|a| {
            let ok = is_qualified_name(a);
            if ok {
                ctx.ledger.used(scope, "ports.app_protocol");
            } else {
                ctx.ledger.warn(
                    scope,
                    "ports.app_protocol",
                    format!("{a:?} is not a valid application protocol name; left out"),
                );
            }
            ok
        });
        if container_seen.insert((port.target, port.protocol.clone())) {
            let container_name = format!("{}-{}", port.protocol.to_ascii_lowercase(), port.target);
            out.container.push(ContainerPort {
                container_port: port.target,
                protocol: Some(port.protocol.clone()),
                name: Some(if port.name.is_some() && name != derived {
                    name.clone()
                } else {
                    container_name
                }),
                ..ContainerPort::default()
            });
        }
        if service_seen.insert((service_port, port.protocol.clone())) && names.insert(name.clone())
        {
            out.service.push(ServicePort {
                name: Some(name),
                port: service_port,
                target_port: Some(IntOrString::Int(port.target)),
                protocol: Some(port.protocol),
                node_port,
                app_protocol,
            });
        }
    }
    if published_unreachable {
        ctx.ledger.warn(
            scope,
            "ports.published",
            "published ports are not reachable from outside the cluster through this Service; set service_type NodePort or LoadBalancer (x-stackd) to publish them",
        );
    }
    // Container port names must be unique in the pod.
    let mut seen = BTreeSet::new();
    for port in &mut out.container {
        if let Some(name) = &port.name {
            if !seen.insert(name.clone()) || !is_port_name(name) {
                port.name = None;
            }
        }
    }
    out
}

fn service_key(scope: &Scope) -> String {
    match scope {
        Scope::Service(name) => name.clone(),
        other => other.to_string(),
    }
}

/// The Service of one compose service (none for a Job without ports).
pub fn service_object(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    name: &str,
    plan: &ServicePlan,
    ports: &PortPlan,
) -> Result<(), TranslateError> {
    if plan.kind == WorkloadKind::Job && ports.service.is_empty() {
        return Ok(());
    }
    if plan.service_name != *name {
        let lower = name.to_ascii_lowercase();
        if plan.service_name != lower {
            ctx.ledger.warn(
                scope,
                "(name)",
                format!(
                    "{name:?} is not a valid Service name, so the Service is {:?}: other services must use that name",
                    plan.service_name
                ),
            );
        }
    }
    let service_type = ports.service_type.unwrap_or(ServiceType::ClusterIp);
    let mut spec = ServiceSpec {
        selector: Some(ctx.selector(&plan.base)),
        ports: (!ports.service.is_empty()).then(|| ports.service.clone()),
        ..ServiceSpec::default()
    };
    match service_type {
        ServiceType::ClusterIp => {}
        ServiceType::NodePort => spec.type_ = Some("NodePort".into()),
        ServiceType::LoadBalancer => spec.type_ = Some("LoadBalancer".into()),
        ServiceType::Headless => spec.cluster_ip = Some("None".into()),
    }
    if ports.service.is_empty() {
        spec.cluster_ip = Some("None".into());
    }
    let mut meta = ctx.meta(&plan.service_name, &plan.name_label);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(super::INSTANCE.into(), plan.base.clone());
    let object = Service {
        metadata: meta,
        spec: Some(spec),
        ..Service::default()
    };
    ctx.services_made.insert(name.to_string(), object.clone());
    ctx.push(Object::Service(object), &scope.to_string())
}

/// Decides whether the project's networks are isolated by policies, and
/// accounts for the networks' keys.
pub fn plan_isolation(ctx: &mut Ctx<'_>) {
    let project = ctx.project;
    let used: BTreeSet<&str> = project.services.values().flat_map(attached).collect();
    let internal = project
        .networks
        .iter()
        .any(|(key, n)| n.internal && used.contains(key.as_str()));
    ctx.isolated = used.len() > 1 || internal;
    for (key, network) in &project.networks {
        let scope = Scope::Network(key.clone());
        ctx.ledger.used(&scope, "name");
        if network.internal {
            ctx.ledger.used(&scope, "internal");
        }
        if network.external {
            ctx.ledger.warn(
                &scope,
                "external",
                "networks do not exist in Kubernetes; treated as one of the project's",
            );
        }
        if !network.driver.is_empty() {
            ctx.ledger.warn(
                &scope,
                "driver",
                "network drivers have no Kubernetes meaning; the cluster's network plugin decides",
            );
        }
        if !network.driver_opts.is_empty() {
            ctx.ledger
                .warn(&scope, "driver_opts", "no Kubernetes equivalent; ignored");
        }
        if network.ipam != crate::model::IpamConfig::default() {
            ctx.ledger.warn(
                &scope,
                "ipam",
                "addresses come from the cluster's network plugin; ignored",
            );
        }
        if network.attachable {
            ctx.ledger
                .warn(&scope, "attachable", "no Kubernetes meaning; ignored");
        }
        if network.enable_ipv4.is_some() {
            ctx.ledger.warn(
                &scope,
                "enable_ipv4",
                "IP families are the cluster's; ignored",
            );
        }
        if network.enable_ipv6.is_some() {
            ctx.ledger.warn(
                &scope,
                "enable_ipv6",
                "IP families are the cluster's; ignored",
            );
        }
        if !network.labels.is_empty() {
            if ctx.isolated {
                ctx.ledger.used(&scope, "labels");
            } else {
                ctx.ledger.warn(
                    &scope,
                    "labels",
                    "no object stands for this network; labels not set",
                );
            }
        }
    }
    for (name, service) in &project.services {
        let scope = Scope::Service(name.clone());
        for (network, settings) in &service.networks {
            ctx.ledger.used(&scope, &format!("networks.{network}"));
            let Some(settings) = settings else { continue };
            let key = |field: &str| format!("networks.{network}.{field}");
            for alias in &settings.aliases {
                ctx.aliases.push(Alias {
                    scope: scope.clone(),
                    key: key("aliases"),
                    alias: alias.clone(),
                    target: name.clone(),
                });
            }
            for (field, set) in [
                ("ipv4_address", !settings.ipv4_address.is_empty()),
                ("ipv6_address", !settings.ipv6_address.is_empty()),
                ("link_local_ips", !settings.link_local_ips.is_empty()),
                ("mac_address", !settings.mac_address.is_empty()),
                ("interface_name", !settings.interface_name.is_empty()),
                ("driver_opts", !settings.driver_opts.is_empty()),
                ("priority", settings.priority != 0),
                ("gw_priority", settings.gw_priority != 0),
            ] {
                if set {
                    ctx.ledger.warn(
                        &scope,
                        &key(field),
                        "pod addresses and interfaces come from the cluster's network plugin; ignored",
                    );
                }
            }
        }
    }
}

fn peer(ctx: &Ctx<'_>, network: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([
                (PART_OF.to_string(), ctx.project_label.clone()),
                (network_label(network), "true".to_string()),
            ])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn policy_port(port: i32, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some(protocol.to_string()),
        ..NetworkPolicyPort::default()
    }
}

/// A Service per alias (network `aliases`, `links` with an alias) that
/// selects the pods of the service it names, so the alias resolves as in
/// compose (for every pod of the namespace, not one network). Made after
/// every service's own Service, which wins a name both want; an alias that
/// cannot get its name has a warning instead.
pub fn alias_objects(ctx: &mut Ctx<'_>) -> Result<(), TranslateError> {
    for alias in std::mem::take(&mut ctx.aliases) {
        let Alias {
            scope,
            key,
            alias,
            target,
        } = alias;
        let Some(service) = ctx.services_made.get(&target).cloned() else {
            ctx.ledger.warn(
                &scope,
                &key,
                format!("{alias}: {target} has no Service (not translated, or a Job without ports); the alias does not resolve"),
            );
            continue;
        };
        let name = dns1035_label(&alias, MAX_LABEL);
        let owner = format!("service {target} alias {name}");
        if service.metadata.name.as_deref() == Some(name.as_str()) {
            ctx.ledger.used(&scope, &key);
            continue;
        }
        match ctx.registry.owner("Service", &name) {
            Some(existing) if existing == owner => {
                ctx.ledger.used(&scope, &key);
                continue;
            }
            Some(existing) => {
                let existing = existing.to_string();
                ctx.ledger.warn(
                    &scope,
                    &key,
                    format!("{alias}: the Service name {name} is taken by {existing}; the alias does not resolve to {target}"),
                );
                continue;
            }
            None => {}
        }
        if name != alias.to_ascii_lowercase() {
            ctx.ledger.warn(
                &scope,
                &key,
                format!("{alias:?} is not a valid Service name, so the alias is {name:?}"),
            );
        } else {
            ctx.ledger.used(&scope, &key);
        }
        let mut object = service;
        object.metadata.name = Some(name);
        ctx.push(Object::Service(object), &owner)?;
    }
    Ok(())
}

/// The NetworkPolicies of an isolated project.
pub fn project_objects(ctx: &mut Ctx<'_>) -> Result<(), TranslateError> {
    if !ctx.isolated {
        return Ok(());
    }
    let project = ctx.project;
    let used: BTreeSet<&str> = project
        .services
        .iter()
        .filter(|(name, _)| ctx.plans.get(*name).is_some_and(|p| !p.skipped))
        .flat_map(|(_, s)| attached(s))
        .collect();
    for network in &used {
        let name = dns_label(
            &format!("{}-network-{network}", ctx.project_name()),
            MAX_LABEL,
        );
        let mut meta = ctx.meta(&name, network);
        if let Some(config) = project.networks.get(*network) {
            let scope = Scope::Network((*network).to_string());
            let labels = config.labels.clone();
            ctx.carry_labels(&scope, "labels", &labels, &mut meta);
        }
        let policy = NetworkPolicy {
            metadata: meta,
            spec: Some(NetworkPolicySpec {
                pod_selector: peer(ctx, network).pod_selector,
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![peer(ctx, network)]),
                    ports: None,
                }]),
                egress: None,
            }),
        };
        ctx.push(Object::NetworkPolicy(policy), &format!("network {network}"))?;
    }
    for (name, service) in &project.services {
        let Some(plan) = ctx.plans.get(name).cloned() else {
            continue;
        };
        if plan.skipped {
            continue;
        }
        let scope = Scope::Service(name.clone());
        let mut published: Vec<(i32, String)> = Vec::new();
        for port in &service.ports {
            if port.published.is_empty() {
                continue;
            }
            if let Some(target) = port_number(port.target) {
                let protocol = match port.protocol.to_ascii_lowercase().as_str() {
                    "udp" => "UDP",
                    "sctp" => "SCTP",
                    _ => "TCP",
                };
                if !published.iter().any(|(p, q)| *p == target && q == protocol) {
                    published.push((target, protocol.to_string()));
                }
            }
        }
        let selector = LabelSelector {
            match_labels: Some(ctx.selector(&plan.base)),
            ..LabelSelector::default()
        };
        if !published.is_empty() {
            let policy_name = dns_label(&format!("{}-published", plan.base), MAX_LABEL);
            let policy = NetworkPolicy {
                metadata: ctx.meta_with_instance(&policy_name, &plan.name_label, &plan.base),
                spec: Some(NetworkPolicySpec {
                    pod_selector: Some(selector.clone()),
                    policy_types: Some(vec!["Ingress".into()]),
                    ingress: Some(vec![NetworkPolicyIngressRule {
                        from: None,
                        ports: Some(
                            published
                                .iter()
                                .map(|(port, protocol)| policy_port(*port, protocol))
                                .collect(),
                        ),
                    }]),
                    egress: None,
                }),
            };
            ctx.push(Object::NetworkPolicy(policy), &scope.to_string())?;
        }
        let networks = attached(service);
        let internal_only = !networks.is_empty()
            && networks
                .iter()
                .all(|n| project.networks.get(*n).is_some_and(|c| c.internal));
        if internal_only {
            let mut egress = vec![
                NetworkPolicyEgressRule {
                    to: Some(networks.iter().map(|n| peer(ctx, n)).collect()),
                    ports: None,
                },
                NetworkPolicyEgressRule {
                    to: None,
                    ports: Some(vec![policy_port(53, "UDP"), policy_port(53, "TCP")]),
                },
            ];
            if !service.depends_on.is_empty() {
                egress.push(NetworkPolicyEgressRule {
                    to: None,
                    ports: Some(vec![policy_port(443, "TCP"), policy_port(6443, "TCP")]),
                });
            }
            let policy_name = dns_label(&format!("{}-internal", plan.base), MAX_LABEL);
            let policy = NetworkPolicy {
                metadata: ctx.meta_with_instance(&policy_name, &plan.name_label, &plan.base),
                spec: Some(NetworkPolicySpec {
                    pod_selector: Some(selector),
                    policy_types: Some(vec!["Egress".into()]),
                    ingress: None,
                    egress: Some(egress),
                }),
            };
            ctx.push(Object::NetworkPolicy(policy), &scope.to_string())?;
        }
    }
    Ok(())
}
