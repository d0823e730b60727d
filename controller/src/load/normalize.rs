//! The implicit parts of a compose project made explicit on the merged,
//! canonical tree: the `default` network, resource names, build defaults,
//! dependencies implied by `links`/`network_mode`/`volumes_from`, variables
//! taken from the environment, `env_file`/`label_file` contents, profiles,
//! and the pruning of resources no service uses.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::yaml::{Key, Mapping, Node, Span, Value};
use super::LoadError;

fn key(text: &str, span: &Span) -> Key {
    Key {
        text: text.to_string(),
        span: span.clone(),
    }
}

fn insert(map: &mut Mapping, name: &str, value: Node) {
    let span = value.span.clone();
    map.insert(name.to_string(), (key(name, &span), value));
}

fn services_mut(project: &mut Node) -> Option<&mut Mapping> {
    project.get_mut("services").and_then(Node::as_map_mut)
}

/// Compose's `Normalize`: runs once on the whole project after all files merged.
pub fn normalize(project: &mut Node, name: &str, env: &BTreeMap<String, String>) {
    drop_resource_extensions(project);
    normalize_networks(project);
    if let Some(services) = services_mut(project) {
        for (_, (_, service)) in services.iter_mut() {
            normalize_service(service, env);
        }
    }
    set_names_from_keys(project, name);
}

/// In the top-level resource maps an `x-` key is an extension, not a
/// resource: a service that refers to it refers to nothing.
fn drop_resource_extensions(project: &mut Node) {
    for kind in ["networks", "volumes", "secrets", "configs", "models"] {
        if let Some(items) = project.get_mut(kind).and_then(Node::as_map_mut) {
            items.retain(|name, _| !name.starts_with("x-"));
        }
    }
}

fn normalize_service(service: &mut Node, env: &BTreeMap<String, String>) {
    let span = service.span.clone();
    let Some(map) = service.as_map_mut() else {
        return;
    };
    if map.get("pull_policy").and_then(|(_, v)| v.as_str()) == Some("if_not_present") {
        insert(map, "pull_policy", Node::string("missing", span.clone()));
    }
    if let Some((_, build)) = map.get_mut("build") {
        if let Some(build) = build.as_map_mut() {
            if build.get("context").is_none_or(|(_, v)| v.is_null()) {
                insert(build, "context", Node::string(".", span.clone()));
            }
            let has = |b: &Mapping, k: &str| b.get(k).is_some_and(|(_, v)| !v.is_null());
            if !has(build, "dockerfile") && !has(build, "dockerfile_inline") {
                insert(
                    build,
                    "dockerfile",
                    Node::string("Dockerfile", span.clone()),
                );
            }
            if let Some((_, args)) = build.get_mut("args") {
                resolve_from_env(args, env, false);
            }
        }
    }
    if let Some((_, environment)) = map.get_mut("environment") {
        resolve_from_env(environment, env, true);
    }

    let mut implied: Vec<(String, bool)> = Vec::new();
    if let Some(Value::Seq(links)) = map.get("links").map(|(_, v)| &v.value) {
        for link in links {
            if let Some(text) = link.as_str() {
                let parts: Vec<&str> = text.split(':').collect();
                let target = if parts.len() == 2 { parts[0] } else { text };
                implied.push((target.to_string(), true));
            }
        }
    }
    for namespace in ["network_mode", "ipc", "pid", "uts", "cgroup"] {
        if let Some(target) = map
            .get(namespace)
            .and_then(|(_, v)| v.as_str())
            .and_then(|t| t.strip_prefix("service:"))
        {
            implied.push((target.to_string(), true));
        }
    }
    if let Some((
        _,
        Node {
            value: Value::Seq(volumes),
            ..
        },
    )) = map.get_mut("volumes")
    {
        for volume in volumes.iter_mut() {
            if let Some(target) = volume.get_mut("target") {
                if let Some(text) = target.as_str() {
                    let cleaned = super::paths::clean_slash_path(text);
                    *target = Node::string(cleaned, target.span.clone());
                }
            }
        }
    }
    if let Some(Value::Seq(from)) = map.get("volumes_from").map(|(_, v)| &v.value) {
        for entry in from {
            if let Some(text) = entry.as_str() {
                if !text.starts_with("container:") {
                    let target = text.split(':').next().unwrap_or(text);
                    implied.push((target.to_string(), false));
                }
            }
        }
    }
    if implied.is_empty() {
        return;
    }
    let depends = map
        .entry("depends_on".to_string())
        .or_insert_with(|| (key("depends_on", &span), Node::map(span.clone())));
    if depends.1.is_null() {
        depends.1 = Node::map(span.clone());
    }
    if let Some(depends) = depends.1.as_map_mut() {
        for (target, restart) in implied {
            if depends.contains_key(&target) {
                continue;
            }
            let mut condition = Node::map(span.clone());
            if let Some(c) = condition.as_map_mut() {
                insert(
                    c,
                    "condition",
                    Node::string("service_started", span.clone()),
                );
                insert(c, "restart", Node::plain(restart.to_string(), span.clone()));
                insert(c, "required", Node::plain("true", span.clone()));
            }
            insert(depends, &target, condition);
        }
    }
}

/// Fills null-valued entries of a map from the environment; unresolved ones
/// stay null (`keep_empty`) or are dropped.
fn resolve_from_env(node: &mut Node, env: &BTreeMap<String, String>, keep_empty: bool) {
    let Some(map) = node.as_map_mut() else { return };
    let mut drop = Vec::new();
    for (name, (_, value)) in map.iter_mut() {
        if !value.is_null() {
            continue;
        }
        match env.get(name) {
            Some(found) => *value = Node::string(found.clone(), value.span.clone()),
            None if keep_empty => {}
            None => drop.push(name.clone()),
        }
    }
    for name in drop {
        map.shift_remove(&name);
    }
}

fn normalize_networks(project: &mut Node) {
    let span = project.span.clone();
    let mut uses_default = false;
    if let Some(services) = services_mut(project) {
        for (_, (_, service)) in services.iter_mut() {
            let service_span = service.span.clone();
            let Some(map) = service.as_map_mut() else {
                continue;
            };
            if map.contains_key("provider") || map.contains_key("network_mode") {
                continue;
            }
            let needs_default = match map.get("networks") {
                None => true,
                Some((_, n)) => n.is_null() || n.as_map().is_some_and(|m| m.is_empty()),
            };
            if needs_default {
                let mut networks = Node::map(service_span.clone());
                if let Some(n) = networks.as_map_mut() {
                    insert(n, "default", Node::null(service_span.clone()));
                }
                insert(map, "networks", networks);
                uses_default = true;
            } else if map
                .get("networks")
                .and_then(|(_, n)| n.as_map())
                .is_some_and(|m| m.contains_key("default"))
            {
                uses_default = true;
            }
        }
    }
    if !uses_default {
        return;
    }
    let Some(top) = project.as_map_mut() else {
        return;
    };
    let networks = top
        .entry("networks".to_string())
        .or_insert_with(|| (key("networks", &span), Node::map(span.clone())));
    if networks.1.is_null() {
        networks.1 = Node::map(span.clone());
    }
    if let Some(networks) = networks.1.as_map_mut() {
        if !networks.contains_key("default") {
            insert(networks, "default", Node::null(span.clone()));
        }
    }
}

fn set_names_from_keys(project: &mut Node, project_name: &str) {
    for kind in ["networks", "volumes", "configs", "secrets"] {
        let Some(items) = project.get_mut(kind).and_then(Node::as_map_mut) else {
            continue;
        };
        for (name, (_, item)) in items.iter_mut() {
            if item.is_null() {
                *item = Node::map(item.span.clone());
            }
            let span = item.span.clone();
            let Some(map) = item.as_map_mut() else {
                continue;
            };
            if map.get("name").is_some_and(|(_, v)| !v.is_null()) {
                continue;
            }
            let external = map.get("external").is_some_and(|(_, v)| is_true(v));
            let value = if external {
                name.clone()
            } else {
                format!("{project_name}_{name}")
            };
            insert(map, "name", Node::string(value, span));
        }
    }
}

fn is_true(node: &Node) -> bool {
    match node.as_scalar() {
        Some(s) => matches!(s.text.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"),
        None => false,
    }
}

/// `scale` also sets `deploy.replicas` when the service has a `deploy`
/// section, as compose does once the two were checked to agree.
pub fn copy_scale_into_deploy(project: &mut Node) {
    let Some(services) = services_mut(project) else {
        return;
    };
    for (_, (_, service)) in services.iter_mut() {
        let Some(scale) = service.get("scale").cloned() else {
            continue;
        };
        if let Some(deploy) = service.get_mut("deploy").and_then(Node::as_map_mut) {
            insert(deploy, "replicas", scale);
        }
    }
}

/// Drops services not enabled by the active profiles; returns the names of
/// the dropped ones (a dependency on them is only an error when required).
pub fn apply_profiles(project: &mut Node, profiles: &[String]) -> BTreeSet<String> {
    let mut disabled = BTreeSet::new();
    let Some(services) = services_mut(project) else {
        return disabled;
    };
    services.retain(|name, (_, service)| {
        let declared: Vec<String> = service
            .get("profiles")
            .and_then(Node::as_seq)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_scalar().and_then(|s| s.canonical_text()))
                    .collect()
            })
            .unwrap_or_default();
        let enabled =
            declared.is_empty() || profiles.iter().any(|p| p == "*" || declared.contains(p));
        if !enabled {
            disabled.insert(name.clone());
        }
        enabled
    });
    disabled
}

/// Merges `env_file` contents under `environment` (the latter wins) and
/// `label_file` contents under `labels`, then drops both file lists, as
/// `docker compose config` prints them.
/// Every env and label file looked at is added to `seen`.
pub fn resolve_service_files(
    project: &mut Node,
    env: &BTreeMap<String, String>,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<(), LoadError> {
    let Some(services) = services_mut(project) else {
        return Ok(());
    };
    for (_, (_, service)) in services.iter_mut() {
        let span = service.span.clone();
        let Some(map) = service.as_map_mut() else {
            continue;
        };
        let declared: BTreeMap<String, Option<String>> = map
            .get("environment")
            .and_then(|(_, e)| e.as_map())
            .map(|m| {
                m.iter()
                    .map(|(k, (_, v))| {
                        (
                            k.clone(),
                            v.as_scalar()
                                .and_then(|s| s.canonical_text())
                                .filter(|_| !v.is_null()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut from_files: BTreeMap<String, (Option<String>, Span)> = BTreeMap::new();
        if let Some((
            _,
            Node {
                value: Value::Seq(files),
                ..
            },
        )) = map.get("env_file")
        {
            for file in files {
                let Some(path) = file.get("path").and_then(Node::as_str) else {
                    continue;
                };
                let required = file
                    .get("required")
                    .and_then(|r| r.as_scalar())
                    .is_none_or(|s| s.text != "false");
                let path = Path::new(path);
                seen.insert(path.to_path_buf());
                if !path.exists() {
                    if required {
                        return Err(LoadError::MissingFile {
                            at: Some(file.span.clone()),
                            path: path.to_path_buf(),
                            message: format!("env file {} not found", path.display()),
                        });
                    }
                    continue;
                }
                let raw = file.get("format").and_then(Node::as_str) == Some("raw");
                let values = if raw {
                    let text = read_env_text(path)?;
                    super::dotenv::parse_raw_env(&text, &|k: &str| {
                        env.get(k)
                            .cloned()
                            .or_else(|| declared.get(k).cloned().flatten())
                    })
                    .map_err(|source| LoadError::EnvFile {
                        path: path.to_path_buf(),
                        source,
                    })?
                } else {
                    super::environment::read_env_file_with(
                        path,
                        &|k: &str| {
                            env.get(k)
                                .cloned()
                                .or_else(|| declared.get(k).cloned().flatten())
                        },
                        &|k: &str| {
                            from_files
                                .get(k)
                                .and_then(|(v, _)| v.clone())
                                .or_else(|| declared.get(k).cloned().flatten())
                        },
                    )?
                };
                for (k, v) in values {
                    if v.is_some() {
                        from_files.insert(k, (v, file.span.clone()));
                    }
                }
            }
        }
        if map.contains_key("env_file") {
            map.shift_remove("env_file");
            if !from_files.is_empty() {
                let entry = map
                    .entry("environment".to_string())
                    .or_insert_with(|| (key("environment", &span), Node::map(span.clone())));
                if entry.1.is_null() {
                    entry.1 = Node::map(span.clone());
                }
                if let Some(environment) = entry.1.as_map_mut() {
                    for (k, (v, at)) in from_files {
                        if environment.contains_key(&k) {
                            continue;
                        }
                        let node = match v {
                            Some(v) => Node::string(v, at),
                            None => Node::null(at),
                        };
                        insert(environment, &k, node);
                    }
                    environment.sort_keys();
                }
            }
        }

        let label_files: Vec<(String, Span)> = match map.get("label_file").map(|(_, v)| v) {
            Some(node) => match &node.value {
                Value::Seq(items) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(|s| (s.to_string(), i.span.clone())))
                    .collect(),
                _ => node
                    .as_str()
                    .map(|s| vec![(s.to_string(), node.span.clone())])
                    .unwrap_or_default(),
            },
            None => Vec::new(),
        };
        if map.contains_key("label_file") {
            map.shift_remove("label_file");
            let mut labels: BTreeMap<String, (String, Span)> = BTreeMap::new();
            for (path, at) in label_files {
                seen.insert(PathBuf::from(&path));
                let values = super::environment::read_env_file(Path::new(&path), &|k: &str| {
                    labels.get(k).map(|(v, _)| v.clone())
                })
                .map_err(|e| match e {
                    LoadError::Read { path, .. } => LoadError::MissingFile {
                        at: Some(at.clone()),
                        message: format!("label file {} not found", path.display()),
                        path,
                    },
                    other => other,
                })?;
                for (k, v) in values {
                    labels.insert(k, (v.unwrap_or_default(), at.clone()));
                }
            }
            if !labels.is_empty() {
                let entry = map
                    .entry("labels".to_string())
                    .or_insert_with(|| (key("labels", &span), Node::map(span.clone())));
                if entry.1.is_null() {
                    entry.1 = Node::map(span.clone());
                }
                if let Some(existing) = entry.1.as_map_mut() {
                    for (k, (v, at)) in labels {
                        if !existing.contains_key(&k) {
                            insert(existing, &k, Node::string(v, at));
                        }
                    }
                    existing.sort_keys();
                }
            }
        }
    }
    Ok(())
}

/// Keeps only the networks, volumes, secrets and configs some service uses,
/// as `docker compose config` prints them.
pub fn prune_unused_resources(project: &mut Node) {
    let mut used: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    if let Some(services) = project.get("services").and_then(Node::as_map) {
        for (_, (_, service)) in services {
            if let Some(networks) = service.get("networks").and_then(Node::as_map) {
                used.entry("networks")
                    .or_default()
                    .extend(networks.keys().cloned());
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
                        used.entry("volumes")
                            .or_default()
                            .insert(source.to_string());
                    }
                }
            }
            let sources = |node: Option<&Node>| -> Vec<String> {
                node.and_then(Node::as_seq)
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.get("source").and_then(Node::as_str).map(str::to_string))
                    .collect()
            };
            used.entry("secrets")
                .or_default()
                .extend(sources(service.get("secrets")));
            used.entry("secrets")
                .or_default()
                .extend(sources(service.get("build").and_then(|b| b.get("secrets"))));
            used.entry("configs")
                .or_default()
                .extend(sources(service.get("configs")));
            if let Some(models) = service.get("models").and_then(Node::as_map) {
                used.entry("models")
                    .or_default()
                    .extend(models.keys().cloned());
            }
        }
    }
    let Some(top) = project.as_map_mut() else {
        return;
    };
    for kind in ["networks", "volumes", "secrets", "configs", "models"] {
        let keep = used.get(kind).cloned().unwrap_or_default();
        let now_empty = match top.get_mut(kind).and_then(|(_, n)| n.as_map_mut()) {
            Some(items) => {
                items.retain(|name, _| keep.contains(name));
                items.is_empty()
            }
            None => false,
        };
        if now_empty {
            top.shift_remove(kind);
        }
    }
}

/// A raw env file's text, within [`super::limits::MAX_ENV_FILE_BYTES`].
fn read_env_text(path: &std::path::Path) -> Result<String, LoadError> {
    let limit = super::limits::MAX_ENV_FILE_BYTES;
    let bytes = super::limits::read_file_at_most(path, limit)
        .map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| LoadError::Invalid {
            at: None,
            message: format!(
                "{}: env file is larger than the {limit}-byte limit",
                path.display()
            ),
        })?;
    String::from_utf8(bytes).map_err(|e| LoadError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}
