//! Cross-reference checks on the normalized tree, each error pointing at
//! the value that is wrong: undefined networks, volumes, secrets, configs
//! and dependencies, contradictory settings, dependency cycles.
use std::collections::{BTreeMap, BTreeSet};

use super::yaml::{Node, Span, Value};
use super::LoadError;

fn invalid(at: &Span, message: String) -> LoadError {
    LoadError::Invalid {
        at: Some(at.clone()),
        message,
    }
}

fn names(project: &Node, kind: &str) -> BTreeSet<String> {
    project
        .get(kind)
        .and_then(Node::as_map)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn text(node: Option<&Node>) -> Option<String> {
    node.and_then(Node::as_scalar)
        .and_then(|s| s.canonical_text())
}

fn number(node: Option<&Node>) -> Option<f64> {
    text(node).and_then(|t| t.parse::<f64>().ok())
}

/// Checks done by compose before the model is typed: mutually exclusive
/// keys of file objects, host IPs of ports, device requests.
pub fn check_model(project: &Node) -> Result<(), LoadError> {
    for (kind, keys) in [
        ("configs", &["file", "environment", "content"][..]),
        ("secrets", &["file", "environment"][..]),
    ] {
        let Some(items) = project.get(kind).and_then(Node::as_map) else {
            continue;
        };
        for (name, (_, item)) in items {
            let Some(map) = item.as_map() else { continue };
            let count = keys.iter().filter(|k| map.contains_key(**k)).count();
            if count > 1 {
                return Err(invalid(
                    &item.span,
                    format!(
                        "{kind}.{name}: {} attributes are mutually exclusive",
                        keys.join("|")
                    ),
                ));
            }
            if count == 0 && !map.contains_key("driver") && !map.contains_key("external") {
                return Err(invalid(
                    &item.span,
                    format!("{kind}.{name}: one of {} must be set", keys.join("|")),
                ));
            }
        }
    }
    if let Some(volumes) = project.get("volumes").and_then(Node::as_map) {
        for (name, (_, volume)) in volumes {
            let Some(map) = volume.as_map() else { continue };
            let external = map
                .get("external")
                .and_then(|(_, v)| v.as_scalar())
                .is_some_and(|s| s.text == "true");
            if external {
                for key in ["driver", "driver_opts", "labels"] {
                    if let Some((k, _)) = map.get(key) {
                        return Err(invalid(&k.span, format!("conflicting parameters \"external\" and \"{key}\" specified for volume \"{name}\"")));
                    }
                }
            }
        }
    }
    let Some(services) = project.get("services").and_then(Node::as_map) else {
        return Ok(());
    };
    for (name, (_, service)) in services {
        for port in service
            .get("ports")
            .and_then(Node::as_seq)
            .into_iter()
            .flatten()
        {
            if let Some(ip) = port.get("host_ip").and_then(Node::as_str) {
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(invalid(
                        &port.span,
                        format!("services.{name}.ports: invalid ip address: {ip}"),
                    ));
                }
            }
        }
        let device_lists = [
            service
                .get("deploy")
                .and_then(|d| d.get("resources"))
                .and_then(|r| r.get("reservations"))
                .and_then(|r| r.get("devices")),
            service.get("gpus"),
        ];
        for devices in device_lists.into_iter().flatten() {
            for device in devices.as_seq().into_iter().flatten() {
                if device.get("count").is_some() && device.get("device_ids").is_some() {
                    return Err(invalid(&device.span, format!("services.{name}: \"count\" and \"device_ids\" attributes are exclusive")));
                }
            }
        }
        if let Some(watches) = service
            .get("develop")
            .and_then(|d| d.get("watch"))
            .and_then(Node::as_seq)
        {
            for watch in watches {
                if watch.get("path").and_then(Node::as_str) == Some("") {
                    return Err(invalid(
                        &watch.span,
                        format!("services.{name}.develop.watch: path can't be blank"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn is_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The shape rules of compose's schema that the typed model cannot see:
/// resource names, resource entries that must be mappings, enumerations.
pub fn check_structure(project: &Node) -> Result<(), LoadError> {
    const TOP_LEVEL: [&str; 9] = [
        "name", "services", "networks", "volumes", "secrets", "configs", "models", "include",
        "version",
    ];
    for (key, (k, _)) in project.as_map().into_iter().flatten() {
        if !TOP_LEVEL.contains(&key.as_str()) && !key.starts_with("x-") {
            return Err(invalid(
                &k.span,
                format!(
                    "unknown top-level key {key:?} (expected one of {})",
                    TOP_LEVEL.join(", ")
                ),
            ));
        }
    }
    if let Some(name) = project.get("name") {
        if name.as_str().is_none() {
            return Err(invalid(
                &name.span,
                format!("name must be a string, found {}", name.kind()),
            ));
        }
    }
    for kind in [
        "services", "networks", "volumes", "secrets", "configs", "models",
    ] {
        let Some(section) = project.get(kind) else {
            continue;
        };
        if section.is_null() {
            continue;
        }
        let Some(entries) = section.as_map() else {
            return Err(invalid(
                &section.span,
                format!("{kind} must be a mapping, found {}", section.kind()),
            ));
        };
        for (name, (key, entry)) in entries {
            // compose's schema constrains these names except for networks and models.
            if !matches!(kind, "networks" | "models") && !is_resource_name(name) {
                return Err(invalid(
                    &key.span,
                    format!(
                        "{kind}: invalid name {name:?} (use letters, digits, '.', '_' and '-')"
                    ),
                ));
            }
            let null_allowed = kind != "services";
            if entry.as_map().is_none() && !(null_allowed && entry.is_null()) {
                let expected = if null_allowed {
                    "a mapping or null"
                } else {
                    "a mapping"
                };
                return Err(invalid(
                    &entry.span,
                    format!("{kind}.{name} must be {expected}, found {}", entry.kind()),
                ));
            }
        }
    }
    let Some(services) = project.get("services").and_then(Node::as_map) else {
        return Ok(());
    };
    for (name, (_, service)) in services {
        check_service_shape(name, service)?;
    }
    let mut container_names: BTreeMap<String, String> = BTreeMap::new();
    for (name, (_, service)) in services {
        for (dependency, (_, condition)) in service
            .get("depends_on")
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
        {
            if let Some(value) = condition.get("condition") {
                let known = matches!(
                    value.as_str(),
                    Some("service_started" | "service_healthy" | "service_completed_successfully")
                );
                if !known {
                    return Err(invalid(
                        &value.span,
                        format!("services.{name}.depends_on.{dependency}.condition must be one of service_started, service_healthy, service_completed_successfully"),
                    ));
                }
            }
        }
        if let Some(container) = service.get("container_name").and_then(Node::as_str) {
            if let Some(other) = container_names.insert(container.to_string(), name.clone()) {
                let at = service
                    .get("container_name")
                    .map(|n| n.span.clone())
                    .unwrap_or_else(|| service.span.clone());
                return Err(invalid(&at, format!("services.{name}: container name {container:?} is already in use by service {other:?}")));
            }
        }
        for volume in service
            .get("volumes")
            .and_then(Node::as_seq)
            .into_iter()
            .flatten()
        {
            if volume.get("type").and_then(Node::as_str) == Some("bind")
                && volume
                    .get("source")
                    .and_then(Node::as_str)
                    .is_none_or(str::is_empty)
            {
                return Err(invalid(&volume.span, format!("services.{name}.volumes: invalid mount config for type \"bind\": field source must not be empty")));
            }
        }
    }
    Ok(())
}

/// Required keys and bounds compose's schema puts on parts of a service.
fn check_service_shape(name: &str, service: &Node) -> Result<(), LoadError> {
    let require = |node: &Node, field: &str, what: &str| -> Result<(), LoadError> {
        if node.get(field).is_none() {
            return Err(invalid(
                &node.span,
                format!("services.{name}.{what}: missing required key {field:?}"),
            ));
        }
        Ok(())
    };
    if let Some(provider) = service.get("provider") {
        require(provider, "type", "provider")?;
    }
    for watch in service
        .get("develop")
        .and_then(|d| d.get("watch"))
        .and_then(Node::as_seq)
        .into_iter()
        .flatten()
    {
        require(watch, "path", "develop.watch")?;
        require(watch, "action", "develop.watch")?;
    }
    let devices = service
        .get("deploy")
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("reservations"))
        .and_then(|r| r.get("devices"))
        .and_then(Node::as_seq);
    for device in devices.into_iter().flatten() {
        require(
            device,
            "capabilities",
            "deploy.resources.reservations.devices",
        )?;
    }
    for (limit, (_, value)) in service
        .get("ulimits")
        .and_then(Node::as_map)
        .into_iter()
        .flatten()
    {
        if value.as_map().is_some() {
            require(value, "soft", &format!("ulimits.{limit}"))?;
            require(value, "hard", &format!("ulimits.{limit}"))?;
        }
    }
    for volume in service
        .get("volumes")
        .and_then(Node::as_seq)
        .into_iter()
        .flatten()
    {
        if let Some(size) = volume.get("tmpfs").and_then(|t| t.get("size")) {
            if number(Some(size)).is_some_and(|s| s < 0.0) {
                return Err(invalid(
                    &size.span,
                    format!(
                        "services.{name}.volumes.tmpfs.size must be greater than or equal to 0"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// compose's consistency check on the project after profiles were applied.
pub fn check_consistency(project: &Node, disabled: &BTreeSet<String>) -> Result<(), LoadError> {
    let Some(services) = project.get("services").and_then(Node::as_map) else {
        return Ok(());
    };
    let networks = names(project, "networks");
    let volumes = names(project, "volumes");
    let secrets = names(project, "secrets");
    let configs = names(project, "configs");
    let models = names(project, "models");
    for (name, (_, service)) in services {
        let at = &service.span;
        let build = service.get("build");
        if build.is_none() && service.get("image").is_none() && service.get("provider").is_none() {
            return Err(invalid(
                at,
                format!("service {name:?} has neither an image nor a build context specified"),
            ));
        }
        if let Some(build) = build {
            if build.get("dockerfile_inline").is_some()
                && build
                    .get("dockerfile")
                    .and_then(Node::as_str)
                    .is_some_and(|d| !d.is_empty())
            {
                if let Some(inline) = build.get("dockerfile_inline").and_then(Node::as_str) {
                    if !inline.is_empty() {
                        return Err(invalid(&build.span, format!("service {name:?} declares mutualy exclusive dockerfile and dockerfile_inline")));
                    }
                }
            }
            if let Some(contexts) = build.get("additional_contexts").and_then(Node::as_map) {
                for (context, (_, value)) in contexts {
                    if let Some(target) = value.as_str().and_then(|v| v.strip_prefix("service:")) {
                        match services.get(target) {
                            None => return Err(invalid(&value.span, format!("service {name:?} declares unknown service {target:?} as additional contexts {context}"))),
                            Some((_, t)) if t.get("build").is_none() => {
                                return Err(invalid(&value.span, format!("service {name:?} declares non-buildable service {target:?} as additional contexts {context}")))
                            }
                            _ => {}
                        }
                    }
                }
            }
            if let (Some(platforms), Some(platform)) = (
                build.get("platforms").and_then(Node::as_seq),
                service.get("platform").and_then(Node::as_str),
            ) {
                if !platforms.is_empty() && !platforms.iter().any(|p| p.as_str() == Some(platform))
                {
                    return Err(invalid(
                        &build.span,
                        format!(
                            "service.build.platforms MUST include service.platform {platform:?}"
                        ),
                    ));
                }
            }
        }
        let service_networks = service.get("networks").and_then(Node::as_map);
        if let (Some(mode), Some(nets)) = (service.get("network_mode"), service_networks) {
            if !nets.is_empty() {
                return Err(invalid(
                    &mode.span,
                    format!(
                        "service {name} declares mutually exclusive `network_mode` and `networks`"
                    ),
                ));
            }
        }
        for (network, (key, _)) in service_networks.into_iter().flatten() {
            if !networks.contains(network) {
                return Err(invalid(
                    &key.span,
                    format!("service {name:?} refers to undefined network {network}"),
                ));
            }
        }
        if let Some(test) = service
            .get("healthcheck")
            .and_then(|h| h.get("test"))
            .and_then(Node::as_seq)
        {
            if let Some(first) = test.first() {
                if !matches!(first.as_str(), Some("CMD" | "CMD-SHELL" | "NONE")) {
                    return Err(invalid(
                        &first.span,
                        "healthcheck.test must start either by \"CMD\", \"CMD-SHELL\" or \"NONE\""
                            .into(),
                    ));
                }
            }
        }
        for (dependency, (key, condition)) in service
            .get("depends_on")
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
        {
            if services.contains_key(dependency) {
                continue;
            }
            let required = condition
                .get("required")
                .and_then(Node::as_scalar)
                .is_none_or(|s| s.text != "false");
            if disabled.contains(dependency) && !required {
                continue;
            }
            return Err(invalid(
                &key.span,
                format!("service {name:?} depends on undefined service {dependency:?}"),
            ));
        }
        if let Some(mode) = service.get("network_mode") {
            if let Some(target) = mode.as_str().and_then(|m| m.strip_prefix("service:")) {
                if !services.contains_key(target) {
                    return Err(invalid(
                        &mode.span,
                        format!("service {target:?} not found for network_mode 'service:{target}'"),
                    ));
                }
            }
        }
        for volume in service
            .get("volumes")
            .and_then(Node::as_seq)
            .into_iter()
            .flatten()
        {
            if volume.get("type").and_then(Node::as_str) == Some("volume") {
                if let Some(source) = volume
                    .get("source")
                    .and_then(Node::as_str)
                    .filter(|s| !s.is_empty())
                {
                    if !volumes.contains(source) {
                        return Err(invalid(
                            &volume.span,
                            format!("service {name:?} refers to undefined volume {source}"),
                        ));
                    }
                }
            }
        }
        let refs = |node: Option<&Node>| -> Vec<(String, Span)> {
            node.and_then(Node::as_seq)
                .into_iter()
                .flatten()
                .filter_map(|s| {
                    s.get("source")
                        .and_then(Node::as_str)
                        .map(|src| (src.to_string(), s.span.clone()))
                })
                .collect()
        };
        for (source, span) in refs(build.and_then(|b| b.get("secrets"))) {
            if !secrets.contains(&source) {
                return Err(invalid(
                    &span,
                    format!("service {name:?} refers to undefined build secret {source}"),
                ));
            }
        }
        for (source, span) in refs(service.get("configs")) {
            if !configs.contains(&source) {
                return Err(invalid(
                    &span,
                    format!("service {name:?} refers to undefined config {source}"),
                ));
            }
        }
        for (model, (key, _)) in service
            .get("models")
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
        {
            if !models.contains(model) {
                return Err(invalid(
                    &key.span,
                    format!("service {name:?} refers to undefined model {model}"),
                ));
            }
        }
        for (source, span) in refs(service.get("secrets")) {
            if !secrets.contains(&source) {
                return Err(invalid(
                    &span,
                    format!("service {name:?} refers to undefined secret {source}"),
                ));
            }
        }
        check_limits(name, service)?;
        check_mount_targets(name, service)?;
    }
    for (name, (_, secret)) in project
        .get("secrets")
        .and_then(Node::as_map)
        .into_iter()
        .flatten()
    {
        let external = secret
            .get("external")
            .and_then(Node::as_scalar)
            .is_some_and(|s| s.text == "true");
        if !external && secret.get("file").is_none() && secret.get("environment").is_none() {
            return Err(invalid(
                &secret.span,
                format!("secret {name:?} must declare either `file` or `environment`"),
            ));
        }
    }
    check_dependency_cycles(services)
}

fn check_limits(name: &str, service: &Node) -> Result<(), LoadError> {
    let at = &service.span;
    let deploy = service.get("deploy");
    let scale = number(service.get("scale"));
    let replicas = number(deploy.and_then(|d| d.get("replicas")));
    if let (Some(scale), Some(replicas)) = (scale, replicas) {
        if scale != replicas {
            return Err(invalid(
                at,
                format!(
                    "services.{name}: can't set distinct values on 'scale' and 'deploy.replicas'"
                ),
            ));
        }
    }
    if scale.is_some_and(|s| s < 0.0) {
        return Err(invalid(
            at,
            format!("services.{name}.scale: must be greater than or equal to 0"),
        ));
    }
    if replicas.is_some_and(|r| r < 0.0) {
        return Err(invalid(
            at,
            format!("services.{name}.deploy.replicas: must be greater than or equal to 0"),
        ));
    }
    let limits = deploy
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("limits"));
    let reservations = deploy
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("reservations"));
    let pairs = [
        ("cpus", limits, "cpus", "deploy.resources.limits.cpus"),
        (
            "mem_limit",
            limits,
            "memory",
            "deploy.resources.limits.memory",
        ),
        (
            "mem_reservation",
            reservations,
            "memory",
            "deploy.resources.reservations.memory",
        ),
        ("pids_limit", limits, "pids", "deploy.resources.limits.pids"),
    ];
    for (field, section, key, label) in pairs {
        let Some(value) = number(service.get(field)).filter(|v| *v != 0.0) else {
            continue;
        };
        if let Some(section) = section {
            let other = number(section.get(key)).unwrap_or(0.0);
            if (other - value).abs() > f64::EPSILON * value.abs().max(1.0) * 4.0 {
                return Err(invalid(
                    at,
                    format!(
                        "services.{name}: can't set distinct values on '{field}' and '{label}'"
                    ),
                ));
            }
        }
    }
    let effective = scale.or(replicas).unwrap_or(1.0);
    if effective > 1.0 && service.get("container_name").is_some_and(|c| !c.is_null()) {
        let attr = if scale.is_some() {
            "scale"
        } else {
            "deploy.replicas"
        };
        return Err(invalid(at, format!("services.{name}: can't set container_name and {attr} as container name must be unique")));
    }
    if let Some(watches) = service
        .get("develop")
        .and_then(|d| d.get("watch"))
        .and_then(Node::as_seq)
    {
        for watch in watches {
            let action = watch.get("action").and_then(Node::as_str).unwrap_or("");
            if watch
                .get("target")
                .and_then(Node::as_str)
                .is_none_or(str::is_empty)
                && action != "rebuild"
                && action != "restart"
            {
                return Err(invalid(
                    &watch.span,
                    format!(
                        "services.{name}.develop.watch: target is required for non-rebuild actions"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_mount_targets(name: &str, service: &Node) -> Result<(), LoadError> {
    let mut mounts: BTreeMap<String, String> = BTreeMap::new();
    let tmpfs: Vec<&Node> = match service.get("tmpfs").map(|t| &t.value) {
        Some(Value::Seq(items)) => items.iter().collect(),
        Some(Value::Scalar(_)) => service.get("tmpfs").into_iter().collect(),
        _ => Vec::new(),
    };
    for (i, entry) in tmpfs.into_iter().enumerate() {
        let location = format!("services.{name}.tmpfs[{i}]");
        let Some(text) = entry.as_str() else { continue };
        let path = text.split(':').next().unwrap_or(text).to_string();
        if let Some(previous) = mounts.get(&path) {
            return Err(invalid(
                &entry.span,
                format!("{location}: target {path} already mounted as {previous}"),
            ));
        }
        mounts.insert(path, location);
    }
    for (i, volume) in service
        .get("volumes")
        .and_then(Node::as_seq)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let location = format!("services.{name}.volumes[{i}]");
        let Some(target) = volume.get("target").and_then(Node::as_str) else {
            continue;
        };
        if let Some(previous) = mounts.get(target) {
            return Err(invalid(
                &volume.span,
                format!("{location}: target {target} already mounted as {previous}"),
            ));
        }
        mounts.insert(target.to_string(), location);
    }
    Ok(())
}

/// A service on the search path, its outgoing edges, and the next edge to follow.
type Frame<'a> = (&'a str, Vec<(String, Span)>, usize);

/// A dependency cycle is refused with the services on it named.
fn check_dependency_cycles(services: &super::yaml::Mapping) -> Result<(), LoadError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    let edges = |name: &str| -> Vec<(String, Span)> {
        services
            .get(name)
            .and_then(|(_, s)| s.get("depends_on"))
            .and_then(Node::as_map)
            .map(|m| {
                m.iter()
                    .map(|(k, (key, _))| (k.clone(), key.span.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut sorted: Vec<&str> = services.keys().map(String::as_str).collect();
    sorted.sort_unstable();
    for start in sorted {
        if marks.contains_key(start) {
            continue;
        }
        // Iterative depth-first search; the stack doubles as the current path.
        let mut stack: Vec<Frame<'_>> = vec![(start, edges(start), 0)];
        marks.insert(start, Mark::Visiting);
        while let Some((node, next, index)) = stack.last_mut() {
            if *index >= next.len() {
                marks.insert(node, Mark::Done);
                stack.pop();
                continue;
            }
            let (target, span) = next[*index].clone();
            *index += 1;
            let Some((target_key, _)) = services.get_key_value(&target) else {
                continue;
            };
            match marks.get(target_key.as_str()) {
                Some(Mark::Done) => {}
                Some(Mark::Visiting) => {
                    let mut path: Vec<&str> = stack.iter().map(|(n, _, _)| *n).collect();
                    let first = path
                        .iter()
                        .position(|n| *n == target_key.as_str())
                        .unwrap_or(0);
                    path.drain(..first);
                    path.push(target_key.as_str());
                    return Err(invalid(
                        &span,
                        format!("dependency cycle detected: {}", path.join(" -> ")),
                    ));
                }
                None => {
                    marks.insert(target_key.as_str(), Mark::Visiting);
                    let target_edges = edges(target_key);
                    stack.push((target_key.as_str(), target_edges, 0));
                }
            }
        }
    }
    Ok(())
}

/// Findings that do not stop a stack from running but deserve a word:
/// a bind mount of the Docker socket (`/var/run/docker.sock` or any
/// `docker.sock`) lets the container drive the engine, which is root on
/// the host. Allowed, as compose allows it, but said out loud.
pub fn runnable_warnings(project: &Node) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(services) = project.get("services").and_then(Node::as_map) else {
        return warnings;
    };
    for (name, (_, service)) in services {
        for volume in service
            .get("volumes")
            .and_then(Node::as_seq)
            .into_iter()
            .flatten()
        {
            if volume.get("type").and_then(Node::as_str) != Some("bind") {
                continue;
            }
            let Some(source) = volume.get("source").and_then(Node::as_str) else {
                continue;
            };
            if is_docker_socket(source) {
                let at = volume.get("source").map_or(&volume.span, |node| &node.span);
                warnings.push(format!(
                    "{at}: services.{name} mounts the Docker socket {source}: the container can control the Docker engine, which is root on this host"
                ));
            }
        }
    }
    warnings
}

/// True for a path whose last component is `docker.sock`.
fn is_docker_socket(path: &str) -> bool {
    path.trim_end_matches('/').rsplit('/').next() == Some("docker.sock")
}

/// What the host running the stack can give, for the limits check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostCapacity {
    /// Logical CPUs.
    pub cpus: f64,
    /// Memory in bytes.
    pub memory_bytes: i64,
}

/// Checks that go further than compose, which only fails later at run
/// time: clashing host ports, missing secret/config files, unknown restart
/// policies, `service_healthy` on a dependency without a healthcheck, and
/// limits the host cannot give. Every finding is returned, not only the first.
pub fn check_runnable(project: &Node, host: Option<HostCapacity>) -> Vec<LoadError> {
    let mut findings = Vec::new();
    let empty = super::yaml::Mapping::new();
    let services = project
        .get("services")
        .and_then(Node::as_map)
        .unwrap_or(&empty);

    // (host_ip, protocol, port) → first service publishing it
    let mut published: BTreeMap<(String, String, u32), String> = BTreeMap::new();
    for (name, (_, service)) in services {
        let replicas = number(service.get("deploy").and_then(|d| d.get("replicas"))).unwrap_or(1.0);
        for port in service
            .get("ports")
            .and_then(Node::as_seq)
            .into_iter()
            .flatten()
        {
            let Some(range) = text(port.get("published")).filter(|p| !p.is_empty()) else {
                continue;
            };
            let Some((low, high)) = parse_port_range(&range) else {
                continue;
            };
            if replicas > 1.0 && low == high {
                findings.push(invalid(
                    &port.span,
                    format!("services.{name}: {replicas} replicas cannot all publish host port {low}; use a port range or drop `published`"),
                ));
            }
            let host_ip = text(port.get("host_ip")).unwrap_or_default();
            let protocol = text(port.get("protocol")).unwrap_or_else(|| "tcp".into());
            for number in low..=high {
                let wildcard = host_ip.is_empty() || host_ip == "0.0.0.0" || host_ip == "::";
                let clash = published.iter().find(|((ip, proto, p), _)| {
                    *p == number
                        && *proto == protocol
                        && (wildcard
                            || ip.is_empty()
                            || ip == "0.0.0.0"
                            || ip == "::"
                            || *ip == host_ip)
                });
                if let Some((_, other)) = clash {
                    if other != name {
                        findings.push(invalid(
                            &port.span,
                            format!("services.{name}: host port {number}/{protocol} is already published by service {other:?}"),
                        ));
                        break;
                    }
                }
                published.insert((host_ip.clone(), protocol.clone(), number), name.clone());
            }
        }
        if let Some(restart) = service.get("restart") {
            let policy = text(Some(restart)).unwrap_or_default();
            if !is_known_restart_policy(&policy) {
                findings.push(invalid(
                    &restart.span,
                    format!("services.{name}.restart: unknown restart policy {policy:?} (use \"no\", \"always\", \"on-failure[:N]\" or \"unless-stopped\")"),
                ));
            }
        }
        for (dependency, (key, condition)) in service
            .get("depends_on")
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
        {
            if condition.get("condition").and_then(Node::as_str) != Some("service_healthy") {
                continue;
            }
            let Some((_, target)) = services.get(dependency) else {
                continue;
            };
            let healthcheck = target.get("healthcheck");
            let disabled = healthcheck.is_some_and(|h| {
                h.get("disable")
                    .and_then(Node::as_scalar)
                    .is_some_and(|s| s.text == "true")
                    || h.get("test")
                        .and_then(Node::as_seq)
                        .and_then(|t| t.first())
                        .and_then(Node::as_str)
                        == Some("NONE")
            });
            let has_test = healthcheck.and_then(|h| h.get("test")).is_some();
            if !has_test || disabled {
                findings.push(invalid(
                    &key.span,
                    format!("services.{name}.depends_on.{dependency}: condition service_healthy, but {dependency:?} has no healthcheck"),
                ));
            }
        }
        check_update_config(name, service, &mut findings);
        if let Some(host) = host {
            let limits = service
                .get("deploy")
                .and_then(|d| d.get("resources"))
                .and_then(|r| r.get("limits"));
            if let Some(cpus) = limits.and_then(|l| l.get("cpus")) {
                if number(Some(cpus)).is_some_and(|c| c > host.cpus) {
                    findings.push(invalid(
                        &cpus.span,
                        format!(
                            "services.{name}: cpus limit {} exceeds the host's {} CPUs",
                            text(Some(cpus)).unwrap_or_default(),
                            host.cpus
                        ),
                    ));
                }
            }
            if let Some(memory) = limits.and_then(|l| l.get("memory")) {
                if number(Some(memory)).is_some_and(|m| m > host.memory_bytes as f64) {
                    findings.push(invalid(
                        &memory.span,
                        format!(
                            "services.{name}: memory limit {} bytes exceeds the host's {} bytes",
                            text(Some(memory)).unwrap_or_default(),
                            host.memory_bytes
                        ),
                    ));
                }
            }
        }
    }
    for kind in ["secrets", "configs"] {
        for (name, (_, item)) in project
            .get(kind)
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
        {
            if let Some(file) = item.get("file") {
                if let Some(path) = file.as_str() {
                    if !std::path::Path::new(path).exists() {
                        findings.push(LoadError::MissingFile {
                            at: Some(file.span.clone()),
                            path: path.into(),
                            message: format!("{kind}.{name}.file: {path} does not exist"),
                        });
                    }
                }
            }
        }
    }
    findings
}

/// `deploy.update_config`, which stackd carries out (compose ignores it):
/// a known `order` and `failure_action`, and no fixed host port under
/// `start-first`, where the new container runs beside the old one.
fn check_update_config(name: &str, service: &Node, findings: &mut Vec<LoadError>) {
    let Some(update) = service.get("deploy").and_then(|d| d.get("update_config")) else {
        return;
    };
    let order = update.get("order");
    if let Some(order) = order {
        let value = text(Some(order)).unwrap_or_default();
        if !matches!(value.as_str(), "start-first" | "stop-first") {
            findings.push(invalid(
                &order.span,
                format!("services.{name}.deploy.update_config.order: unknown order {value:?} (use \"start-first\" or \"stop-first\")"),
            ));
        }
    }
    if let Some(action) = update.get("failure_action") {
        let value = text(Some(action)).unwrap_or_default();
        if !matches!(value.as_str(), "rollback" | "pause" | "continue") {
            findings.push(invalid(
                &action.span,
                format!("services.{name}.deploy.update_config.failure_action: unknown action {value:?} (use \"rollback\", \"pause\" or \"continue\")"),
            ));
        }
    }
    if text(order).as_deref() != Some("start-first") {
        return;
    }
    for port in service
        .get("ports")
        .and_then(Node::as_seq)
        .into_iter()
        .flatten()
    {
        let Some(published) = text(port.get("published")).filter(|p| !p.is_empty()) else {
            continue;
        };
        if parse_port_range(&published).is_some_and(|(low, high)| low == high) {
            findings.push(invalid(
                &port.span,
                format!("services.{name}: update_config.order start-first starts the new container beside the old one, and both cannot publish host port {published}; publish a port range or use stop-first"),
            ));
        }
    }
}

fn parse_port_range(text: &str) -> Option<(u32, u32)> {
    match text.split_once('-') {
        Some((low, high)) => Some((low.parse().ok()?, high.parse().ok()?)),
        None => text.parse().ok().map(|p| (p, p)),
    }
}

/// `no`, `always`, `unless-stopped`, `on-failure` and `on-failure:N`.
pub fn is_known_restart_policy(policy: &str) -> bool {
    match policy {
        "no" | "always" | "unless-stopped" | "on-failure" => true,
        other => other
            .strip_prefix("on-failure:")
            .is_some_and(|n| n.parse::<u32>().is_ok()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::load::yaml::parse_documents;

    fn tree(text: &str) -> Node {
        let file: Arc<str> = Arc::from("compose.yaml");
        parse_documents(text, &file).expect("parses").remove(0)
    }

    fn messages(errors: Vec<LoadError>) -> Vec<String> {
        errors.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn two_services_publishing_the_same_host_port_are_refused_at_the_second_port() {
        let project = tree(
            "services:\n  a:\n    ports: [{target: 80, published: '8080', protocol: tcp}]\n  b:\n    ports: [{target: 81, published: '8080', protocol: tcp}]\n",
        );
        let found = messages(check_runnable(&project, None));
        assert_eq!(found, vec!["compose.yaml:5:13: services.b: host port 8080/tcp is already published by service \"a\""]);
    }

    #[test]
    fn update_config_needs_a_known_order_and_action_and_start_first_a_port_range() {
        let project = tree(
            "services:\n  a:\n    deploy: {update_config: {order: sideways, failure_action: shrug}}\n  b:\n    ports: [{target: 80, published: '8080'}, {target: 81, published: '9000-9009'}]\n    deploy: {update_config: {order: start-first}}\n",
        );
        let found = messages(check_runnable(&project, None));
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].contains("update_config.order: unknown order \"sideways\""));
        assert!(found[1].contains("failure_action: unknown action \"shrug\""));
        assert!(
            found[2].starts_with("compose.yaml:5:13: services.b: update_config.order start-first")
                && found[2].contains("host port 8080;"),
            "{}",
            found[2]
        );
        let fine = tree(
            "services:\n  a:\n    ports: [{target: 80, published: '8080'}]\n    deploy: {update_config: {order: stop-first, failure_action: pause}}\n",
        );
        assert!(check_runnable(&fine, None).is_empty());
    }

    #[test]
    fn the_same_port_on_tcp_and_udp_does_not_clash() {
        let project = tree(
            "services:\n  a:\n    ports: [{target: 53, published: '53', protocol: tcp}]\n  b:\n    ports: [{target: 53, published: '53', protocol: udp}]\n",
        );
        assert!(check_runnable(&project, None).is_empty());
    }

    #[test]
    fn an_unknown_restart_policy_is_refused_with_the_accepted_ones_named() {
        let project = tree("services:\n  a:\n    restart: sometimes\n");
        let found = messages(check_runnable(&project, None));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with(
                "compose.yaml:3:14: services.a.restart: unknown restart policy \"sometimes\""
            ),
            "{}",
            found[0]
        );
        assert!(is_known_restart_policy("on-failure:3"));
        assert!(!is_known_restart_policy("on-failure:x"));
    }

    #[test]
    fn service_healthy_on_a_dependency_without_healthcheck_is_refused() {
        let project = tree(
            "services:\n  db: {image: x}\n  web:\n    depends_on:\n      db: {condition: service_healthy, required: true}\n",
        );
        let found = messages(check_runnable(&project, None));
        assert_eq!(found, vec!["compose.yaml:5:7: services.web.depends_on.db: condition service_healthy, but \"db\" has no healthcheck"]);
    }

    #[test]
    fn a_missing_secret_file_is_refused() {
        let project = tree("secrets:\n  token: {file: /nonexistent/stackd/token}\n");
        let found = messages(check_runnable(&project, None));
        assert_eq!(
            found,
            vec!["compose.yaml:2:17: secrets.token.file: /nonexistent/stackd/token does not exist"]
        );
    }

    #[test]
    fn a_docker_socket_bind_mount_loads_with_a_warning_naming_the_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("compose.yaml");
        std::fs::write(
            &file,
            "services:\n  agent:\n    image: x\n    volumes:\n      - ./data:/data\n      - /var/run/docker.sock:/var/run/docker.sock:ro\n  web:\n    image: x\n    volumes: [{type: bind, source: /run/docker.sock, target: /sock}]\n",
        )
        .expect("write");
        let options = crate::load::LoadOptions {
            files: vec![file.clone()],
            working_dir: dir.path().to_path_buf(),
            ..crate::load::LoadOptions::default()
        };
        let loaded = crate::load::load_project_strict(&options, None).expect("loads");
        let socket: Vec<&String> = loaded
            .warnings
            .iter()
            .filter(|w| w.contains("Docker socket"))
            .collect();
        assert_eq!(socket.len(), 2, "{:?}", loaded.warnings);
        let at = format!("{}:6:", file.display());
        assert!(socket[0].starts_with(&at), "{}", socket[0]);
        assert!(
            socket[0].contains("services.agent mounts the Docker socket /var/run/docker.sock"),
            "{}",
            socket[0]
        );
        assert!(
            socket[1].contains("services.web mounts the Docker socket /run/docker.sock"),
            "{}",
            socket[1]
        );
    }

    #[test]
    fn a_project_without_a_docker_socket_mount_has_no_socket_warning() {
        let project = tree("services:\n  a:\n    volumes: [{type: bind, source: /var/run/docker.sock.d/x, target: /x}, {type: volume, source: docker.sock, target: /y}]\n");
        assert!(runnable_warnings(&project).is_empty());
    }

    #[test]
    fn limits_beyond_the_host_are_refused() {
        let project = tree("services:\n  a:\n    deploy: {resources: {limits: {cpus: 64, memory: '1099511627776'}}}\n");
        let host = HostCapacity {
            cpus: 2.0,
            memory_bytes: 24 << 30,
        };
        assert_eq!(check_runnable(&project, Some(host)).len(), 2);
    }

    #[test]
    fn a_dependency_cycle_is_refused_with_the_cycle_named() {
        let project = tree(
            "services:\n  a: {image: x, depends_on: {b: {condition: service_started}}}\n  b: {image: x, depends_on: {c: {condition: service_started}}}\n  c: {image: x, depends_on: {a: {condition: service_started}}}\n",
        );
        let err = check_consistency(&project, &BTreeSet::new()).expect_err("cycle");
        assert!(
            err.to_string()
                .contains("dependency cycle detected: a -> b -> c -> a"),
            "{err}"
        );
    }

    #[test]
    fn an_undefined_network_is_reported_at_the_reference() {
        let project = tree("services:\n  a:\n    image: x\n    networks: {back: null}\n");
        let err = check_consistency(&project, &BTreeSet::new()).expect_err("undefined");
        assert_eq!(
            err.to_string(),
            "compose.yaml:4:16: service \"a\" refers to undefined network back"
        );
    }

    #[test]
    fn a_dependency_on_a_disabled_service_is_fine_only_when_not_required() {
        let optional = tree("services:\n  a: {image: x, depends_on: {b: {condition: service_started, required: false}}}\n");
        let disabled: BTreeSet<String> = ["b".to_string()].into();
        assert!(check_consistency(&optional, &disabled).is_ok());
        let required = tree("services:\n  a: {image: x, depends_on: {b: {condition: service_started, required: true}}}\n");
        assert!(check_consistency(&required, &disabled).is_err());
    }
}
