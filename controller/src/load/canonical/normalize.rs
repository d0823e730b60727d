//! The shape-changing parts of compose's normalization: dependencies implied
//! by `links`, `network_mode: service:x` & co and `volumes_from`; volume
//! targets cleaned; the implicit `default` network; resource names.
use crate::load::yaml::{Mapping, Node, Value};

use super::convert::{bool_node, str_node};
use super::tree;
use super::volumes::clean_path;

/// Normalizes a canonical project in place.
pub(crate) fn project(project: &mut Node) {
    let Some(top) = project.as_map_mut() else {
        return;
    };
    default_network(top);
    if let Some((
        _,
        Node {
            value: Value::Map(services),
            ..
        },
    )) = top.get_mut("services")
    {
        for (_, (_, service)) in services.iter_mut() {
            if let Some(map) = service.as_map_mut() {
                implied_dependencies(map);
                clean_volume_targets(map);
            }
        }
    }
}

/// A service attached to no network is attached to `default`, which then
/// exists at the top level (null: a plain bridge network).
fn default_network(top: &mut Mapping) {
    let mut uses_default = false;
    if let Some((
        _,
        Node {
            value: Value::Map(services),
            ..
        },
    )) = top.get_mut("services")
    {
        for (_, (_, service)) in services.iter_mut() {
            let like = service.clone();
            let Some(map) = service.as_map_mut() else {
                continue;
            };
            if map.contains_key("provider") || map.contains_key("network_mode") {
                continue;
            }
            let networks = map.get("networks").map(|(_, n)| n);
            match networks.and_then(Node::as_map) {
                None if networks.is_some_and(|n| !n.is_null()) => {}
                Some(nets) if !nets.is_empty() => {
                    uses_default |= nets.contains_key("default");
                }
                _ => {
                    let mut nets = Mapping::new();
                    tree::set(&mut nets, "default", Node::null(like.span.clone()));
                    tree::set(map, "networks", mapping(nets, &like));
                    uses_default = true;
                }
            }
        }
    }
    if !uses_default {
        return;
    }
    let span_of_top = top
        .get("services")
        .map(|(k, _)| k.span.clone())
        .unwrap_or_else(|| crate::load::yaml::Span::synthetic("(default network)"));
    let like = Node::null(span_of_top);
    match top.get_mut("networks") {
        Some((_, networks)) if networks.as_map().is_some() => {
            if let Some(map) = networks.as_map_mut() {
                tree::set_default(map, "default", Node::null(like.span.clone()));
            }
        }
        Some((_, networks)) if networks.is_null() => {
            let mut map = Mapping::new();
            tree::set(&mut map, "default", Node::null(like.span.clone()));
            *networks = mapping(map, &like);
        }
        Some(_) => {}
        None => {
            let mut map = Mapping::new();
            tree::set(&mut map, "default", Node::null(like.span.clone()));
            tree::set(top, "networks", mapping(map, &like));
        }
    }
}

fn mapping(map: Mapping, like: &Node) -> Node {
    Node {
        value: Value::Map(map),
        span: like.span.clone(),
        tag: None,
    }
}

/// `links`, `network_mode`/`ipc`/`pid`/`uts`/`cgroup: service:x` and
/// `volumes_from` (not `container:`) make the service depend on the named
/// service, unless `depends_on` already names it.
fn implied_dependencies(service: &mut Mapping) {
    let mut implied: Vec<(String, bool, Node)> = Vec::new();
    if let Some((
        _,
        Node {
            value: Value::Seq(links),
            ..
        },
    )) = service.get("links")
    {
        for link in links {
            if let Some(text) = link.as_str() {
                let parts: Vec<&str> = text.split(':').collect();
                let name = if parts.len() == 2 { parts[0] } else { text };
                implied.push((name.to_string(), true, link.clone()));
            }
        }
    }
    for key in ["network_mode", "ipc", "pid", "uts", "cgroup"] {
        if let Some((_, value)) = service.get(key) {
            if let Some(name) = value.as_str().and_then(|s| s.strip_prefix("service:")) {
                implied.push((name.to_string(), true, value.clone()));
            }
        }
    }
    if let Some((
        _,
        Node {
            value: Value::Seq(sources),
            ..
        },
    )) = service.get("volumes_from")
    {
        for source in sources {
            if let Some(text) = source.as_str() {
                if !text.starts_with("container:") {
                    let name = text.split(':').next().unwrap_or(text);
                    implied.push((name.to_string(), false, source.clone()));
                }
            }
        }
    }
    if implied.is_empty() {
        return;
    }
    if !matches!(service.get("depends_on"), Some((_, n)) if n.as_map().is_some()) {
        let like = implied[0].2.clone();
        tree::set(service, "depends_on", mapping(Mapping::new(), &like));
    }
    let Some((_, depends_on)) = service.get_mut("depends_on") else {
        return;
    };
    let Some(deps) = depends_on.as_map_mut() else {
        return;
    };
    for (name, restart, like) in implied {
        if deps.contains_key(&name) {
            continue;
        }
        let mut dep = Mapping::new();
        tree::set(&mut dep, "condition", str_node("service_started", &like));
        tree::set(&mut dep, "restart", bool_node(restart, &like));
        tree::set(&mut dep, "required", bool_node(true, &like));
        tree::set(deps, &name, mapping(dep, &like));
    }
}

fn clean_volume_targets(service: &mut Mapping) {
    let Some((
        _,
        Node {
            value: Value::Seq(volumes),
            ..
        },
    )) = service.get_mut("volumes")
    else {
        return;
    };
    for volume in volumes {
        if let Some((_, target)) = volume.as_map_mut().and_then(|m| m.get_mut("target")) {
            if let Some(text) = target.as_str() {
                *target = str_node(clean_path(text), target);
            }
        }
    }
}

/// Gives every network, volume, secret and config its engine name, as
/// compose does once the project name is known: `name` when set, the key
/// itself for external resources, `<project>_<key>` otherwise. A null
/// resource becomes a mapping holding only its name.
pub fn name_resources(project: &mut Node, project_name: &str) {
    let Some(top) = project.as_map_mut() else {
        return;
    };
    for section in ["networks", "volumes", "configs", "secrets"] {
        let Some((
            _,
            Node {
                value: Value::Map(resources),
                ..
            },
        )) = top.get_mut(section)
        else {
            continue;
        };
        for (key, (_, resource)) in resources.iter_mut() {
            if resource.is_null() {
                *resource = mapping(Mapping::new(), resource);
            }
            let like = resource.clone();
            let Some(map) = resource.as_map_mut() else {
                continue;
            };
            if !tree::missing(map, "name") {
                continue;
            }
            let external = map
                .get("external")
                .and_then(|(_, e)| e.as_scalar())
                .and_then(|s| s.canonical_text())
                .is_some_and(|t| matches!(t.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"));
            let name = if external {
                key.clone()
            } else {
                format!("{project_name}_{key}")
            };
            tree::set(map, "name", str_node(name, &like));
        }
    }
}
