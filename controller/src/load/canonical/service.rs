//! Services: every field brought to the long form and type compose prints.
use crate::load::yaml::{Mapping, Node, Value};

use super::convert::{self, bool_node, int_node, scalar, str_node, Sc, Unset};
use super::shellwords::split_command;
use super::tree;
use super::volumes::sub_fields;
use super::{ports, unicity, volumes, Cx, Kind, TransformError};

/// Converts every service of the `services` mapping.
pub(crate) fn services(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    if node.is_null() {
        return Ok(());
    }
    let Some(map) = node.as_map_mut() else {
        return Err(TransformError::wrong_type(node, path, "a mapping"));
    };
    for (name, (_, service_node)) in map.iter_mut() {
        service(service_node, &tree::child(path, name), cx)?;
    }
    Ok(())
}

/// Converts one service in place.
pub(crate) fn service(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    let Some(map) = node.as_map_mut() else {
        return Err(TransformError::wrong_type(node, path, "a mapping"));
    };
    for key in tree::keys(map) {
        let fpath = tree::child(path, &key);
        let Some((_, value)) = map.get_mut(&key) else {
            continue;
        };
        field(&key, value, &fpath, cx)?;
    }
    // In compose's schema but not its model: dropped without a word.
    map.shift_remove("pull_refresh_after");
    omit_empty_dns(map);
    unicity::service(map, path)?;
    Ok(())
}

fn field(key: &str, value: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    match key {
        "annotations" | "labels" | "sysctls" => convert::key_values(value, path, Unset::Empty),
        "environment" => convert::key_values(value, path, Unset::Null),
        "build" => build(value, path, cx),
        "blkio_config" => blkio(value, path, cx),
        "command" | "entrypoint" => command(value, path),
        "configs" => file_mounts(value, path, None),
        "secrets" => file_mounts(value, path, Some("/run/secrets/")),
        "cpus" | "cpu_percent" => convert::float32(value, path),
        "cpu_count" | "cpu_period" | "cpu_quota" | "cpu_rt_period" | "cpu_rt_runtime"
        | "cpu_shares" | "oom_score_adj" | "pids_limit" | "scale" => convert::integer(value, path),
        "init" | "privileged" | "read_only" | "stdin_open" | "tty" | "oom_kill_disable"
        | "attach" | "use_api_socket" => convert::boolean(value, path, cx),
        "depends_on" => depends_on(value, path, cx),
        "deploy" => deploy(value, path, cx),
        "develop" => develop(value, path, cx),
        "devices" => devices(value, path),
        "dns" | "dns_search" | "tmpfs" | "label_file" => convert::string_or_list(value, path),
        "env_file" => env_file(value, path, cx),
        "expose" | "group_add" => convert::string_or_number_list(value, path),
        "extends" => extends(value, path),
        "extra_hosts" => check_extra_hosts(value, path),
        "gpus" => gpus(value, path),
        "healthcheck" => healthcheck(value, path, cx),
        "logging" => sub_fields(value, path, cx, |k, v, p, _| match k {
            "options" => convert::options(v, p),
            _ => Ok(()),
        }),
        "log_opt" | "storage_opt" => convert::options(value, path),
        "mem_limit" | "mem_reservation" | "memswap_limit" | "mem_swappiness" | "shm_size" => {
            convert::bytes(value, path)
        }
        "models" => names_to_map(value, path),
        "networks" => {
            names_to_map(value, path)?;
            each_network(value, path, cx)
        }
        "ports" => ports::ports(value, path),
        "post_start" | "pre_stop" => hooks(value, path, cx),
        "provider" => sub_fields(value, path, cx, |k, v, p, _| match k {
            "options" => convert::multi_options(v, p),
            _ => Ok(()),
        }),
        "pull_policy" => {
            if value.as_str() == Some("if_not_present") {
                *value = str_node("missing", value);
            }
            Ok(())
        }
        "stop_grace_period" => convert::duration(value, path),
        "ulimits" => ulimits(value, path),
        "volumes" => volumes::volumes(value, path, cx),
        _ => Ok(()),
    }
}

/// `dns` entries that are empty are dropped, as compose drops them.
fn omit_empty_dns(map: &mut Mapping) {
    if let Some((
        _,
        Node {
            value: Value::Seq(items),
            ..
        },
    )) = map.get_mut("dns")
    {
        items.retain(|it| !(it.is_null() || it.as_str() == Some("")));
    }
}

/// A list of names becomes a mapping of names to null; a mapping is kept.
fn names_to_map(node: &mut Node, path: &str) -> Result<(), TransformError> {
    match &node.value {
        Value::Seq(items) => {
            let mut map = Mapping::new();
            for (i, it) in items.iter().enumerate() {
                let Some(name) = it.as_str() else {
                    return Err(TransformError::wrong_type(
                        it,
                        &tree::item(path, i),
                        "a name",
                    ));
                };
                tree::set(&mut map, name, Node::null(it.span.clone()));
                if let Some((k, _)) = map.get_mut(name) {
                    k.span = it.span.clone();
                }
            }
            *node = Node {
                value: Value::Map(map),
                span: node.span.clone(),
                tag: node.tag,
            };
            Ok(())
        }
        Value::Map(_) => Ok(()),
        Value::Scalar(_) if node.is_null() => Ok(()),
        Value::Scalar(_) => Err(TransformError::wrong_type(
            node,
            path,
            "a list or a mapping",
        )),
    }
}

fn each_network(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    let Some(map) = node.as_map_mut() else {
        return Ok(());
    };
    for (name, (_, value)) in map.iter_mut() {
        let npath = tree::child(path, name);
        if value.is_null() {
            continue;
        }
        if value.as_map().is_none() {
            return Err(TransformError::wrong_type(
                value,
                &npath,
                "a mapping or null",
            ));
        }
        sub_fields(value, &npath, cx, |k, v, p, _| match k {
            "driver_opts" => convert::options(v, p),
            "priority" | "gw_priority" => convert::integer(v, p),
            _ => Ok(()),
        })?;
    }
    Ok(())
}

/// `command`/`entrypoint`: a string is split into words as a shell would
/// (see [`split_command`]); a list must hold strings; null stays null.
fn command(node: &mut Node, path: &str) -> Result<(), TransformError> {
    match &node.value {
        Value::Seq(items) => {
            for (i, it) in items.iter().enumerate() {
                if it.as_str().is_none() {
                    return Err(TransformError::wrong_type(
                        it,
                        &tree::item(path, i),
                        "a string",
                    ));
                }
            }
            Ok(())
        }
        _ if node.is_null() => Ok(()),
        _ => {
            let Some(text) = node.as_str() else {
                return Err(TransformError::wrong_type(
                    node,
                    path,
                    "a string or a list of strings",
                ));
            };
            let words = split_command(text).map_err(|message| {
                TransformError::at(
                    Kind::InvalidCommand,
                    &node.span,
                    path,
                    format!("cannot split {text:?} into words: {message}"),
                )
            })?;
            let items = words.into_iter().map(|w| str_node(w, node)).collect();
            *node = Node::seq(items, node.span.clone());
            Ok(())
        }
    }
}

/// `secrets`/`configs` of a service (and `build.secrets`): a name becomes
/// `{source: name}`; `mode` is printed in octal; secrets get their default
/// target under `/run/secrets/`.
fn file_mounts(
    node: &mut Node,
    path: &str,
    default_dir: Option<&str>,
) -> Result<(), TransformError> {
    let Value::Seq(items) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a list"));
    };
    for (i, entry) in items.iter_mut().enumerate() {
        let ipath = tree::item(path, i);
        if let Some(Sc::Str(name)) = scalar(entry) {
            let mut map = Mapping::new();
            tree::set(&mut map, "source", str_node(name, entry));
            *entry = mapping_node(map, entry);
        }
        let like = entry.clone();
        let Some(map) = entry.as_map_mut() else {
            return Err(TransformError::wrong_type(
                entry,
                &ipath,
                "a name or a mapping",
            ));
        };
        if let Some((_, mode)) = map.get_mut("mode") {
            convert::file_mode(mode, &tree::child(&ipath, "mode"))?;
        }
        for key in ["uid", "gid"] {
            if let Some((_, id)) = map.get_mut(key) {
                convert::string_or_number(id, &tree::child(&ipath, key))?;
            }
        }
        if let Some(dir) = default_dir {
            let source = map
                .get("source")
                .and_then(|(_, s)| s.as_scalar().and_then(|s| s.canonical_text()))
                .unwrap_or_else(|| "%!s(<nil>)".into());
            tree::set_default(map, "target", str_node(format!("{dir}{source}"), &like));
        }
    }
    Ok(())
}

fn mapping_node(map: Mapping, like: &Node) -> Node {
    Node {
        value: Value::Map(map),
        span: like.span.clone(),
        tag: None,
    }
}

/// `build`: a string is the context; defaults `context: .` and
/// `dockerfile: Dockerfile` (unless `dockerfile_inline` is given).
fn build(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    if let Some(Sc::Str(context)) = scalar(node) {
        let mut map = Mapping::new();
        tree::set(&mut map, "context", str_node(context, node));
        *node = mapping_node(map, node);
    }
    let like = node.clone();
    let Some(map) = node.as_map_mut() else {
        return Err(TransformError::wrong_type(
            node,
            path,
            "a string or a mapping",
        ));
    };
    for key in tree::keys(map) {
        let fpath = tree::child(path, &key);
        let Some((_, value)) = map.get_mut(&key) else {
            continue;
        };
        match key.as_str() {
            "args" => convert::key_values(value, &fpath, Unset::Null)?,
            "labels" => convert::key_values(value, &fpath, Unset::Empty)?,
            "ssh" => ssh(value, &fpath)?,
            "cache_from" | "cache_to" | "tags" | "platforms" => {
                convert::string_or_list(value, &fpath)?
            }
            "additional_contexts" => additional_contexts(value, &fpath)?,
            "extra_hosts" => check_extra_hosts(value, &fpath)?,
            "secrets" => file_mounts(value, &fpath, None)?,
            "shm_size" => convert::bytes(value, &fpath)?,
            "ulimits" => ulimits(value, &fpath)?,
            "provenance" | "sbom"
                if !matches!(scalar(value), Some(Sc::Str(_)) | Some(Sc::Null)) =>
            {
                let text = convert::sprint(value, &fpath)?.unwrap_or_default();
                *value = str_node(text, value);
            }
            "no_cache" | "pull" | "privileged" => convert::boolean(value, &fpath, cx)?,
            _ => {}
        }
    }
    if tree::missing(map, "context") {
        tree::set(map, "context", str_node(".", &like));
    }
    if tree::missing(map, "dockerfile") && tree::missing(map, "dockerfile_inline") {
        tree::set(map, "dockerfile", str_node("Dockerfile", &like));
    }
    Ok(())
}

/// `build.ssh`: `[default, id=path]` becomes `{default: null, id: path}`.
fn ssh(node: &mut Node, path: &str) -> Result<(), TransformError> {
    match &mut node.value {
        Value::Map(map) => {
            for (key, (_, value)) in map.iter_mut() {
                if let Some(text) = convert::sprint(value, &tree::child(path, key))? {
                    *value = str_node(text, value);
                }
            }
            Ok(())
        }
        Value::Seq(items) => {
            let mut map = Mapping::new();
            for (i, it) in items.iter().enumerate() {
                let ipath = tree::item(path, i);
                let Some(text) = it.as_str() else {
                    return Err(TransformError::wrong_type(it, &ipath, "a string"));
                };
                let value = match text.split_once('=') {
                    Some((_, p)) => str_node(p, it),
                    None if text == "default" => Node::null(it.span.clone()),
                    None => {
                        return Err(TransformError::at(
                            Kind::InvalidKeyValue,
                            &it.span,
                            &ipath,
                            format!("invalid ssh key {text:?}: expected default or ID=PATH"),
                        ))
                    }
                };
                let id = text.split_once('=').map_or(text, |(id, _)| id);
                tree::set(&mut map, id, value);
            }
            *node = mapping_node(map, node);
            Ok(())
        }
        Value::Scalar(_) => Err(TransformError::wrong_type(
            node,
            path,
            "a list or a mapping",
        )),
    }
}

/// `build.additional_contexts`: every list entry must be `name=context`.
fn additional_contexts(node: &mut Node, path: &str) -> Result<(), TransformError> {
    if let Value::Seq(items) = &node.value {
        for (i, it) in items.iter().enumerate() {
            if let Some(text) = it.as_str() {
                if !text.contains('=') {
                    return Err(TransformError::at(
                        Kind::InvalidKeyValue,
                        &it.span,
                        &tree::item(path, i),
                        format!("invalid value {text:?}, expected key=value"),
                    ));
                }
            }
        }
    }
    convert::key_values(node, path, Unset::Empty)
}

/// Checks `extra_hosts` without rewriting it: a later file's entries are
/// compared with earlier ones as written (`h:1.2.3.4` and `h=1.2.3.4` are
/// two entries to compose), so the rewrite waits until every file merged.
fn check_extra_hosts(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let mut copy = node.clone();
    extra_hosts(&mut copy, path)
}

/// `extra_hosts`: a list of `host=ip`/`host:ip` (ips may be comma-separated)
/// or a mapping of host to ip(s), written as compose prints it: a sorted
/// list of `host=ip`, one per address, brackets stripped from IPv6.
pub(crate) fn extra_hosts(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let mut entries: Vec<(String, String, Node)> = Vec::new();
    let bad_host = |host: &str, at: &Node, p: &str| {
        TransformError::at(
            Kind::InvalidExtraHost,
            &at.span,
            p,
            format!("bad host name '{host}'"),
        )
    };
    match &node.value {
        Value::Seq(items) => {
            for (i, it) in items.iter().enumerate() {
                let ipath = tree::item(path, i);
                let text = convert::sprint(it, &ipath)?.unwrap_or_else(|| "<nil>".into());
                let Some((host, ips)) = text.split_once('=').or_else(|| text.split_once(':'))
                else {
                    return Err(TransformError::at(
                        Kind::InvalidExtraHost,
                        &it.span,
                        &ipath,
                        format!("invalid additional host, missing IP: {text}"),
                    ));
                };
                if host.is_empty() || host.contains([':', '=']) {
                    return Err(bad_host(host, it, &ipath));
                }
                for ip in ips.split(',') {
                    entries.push((host.to_string(), ip.to_string(), it.clone()));
                }
            }
        }
        Value::Map(map) => {
            for (host, (_, value)) in map {
                let hpath = tree::child(path, host);
                if host.is_empty() || host.contains([':', '=']) {
                    return Err(bad_host(host, value, &hpath));
                }
                match &value.value {
                    Value::Seq(ips) => {
                        for (i, ip) in ips.iter().enumerate() {
                            let text = convert::sprint(ip, &tree::item(&hpath, i))?
                                .unwrap_or_else(|| "<nil>".into());
                            entries.push((host.clone(), text, ip.clone()));
                        }
                    }
                    _ if value.is_null() => {
                        entries.push((host.clone(), String::new(), value.clone()))
                    }
                    _ => match scalar(value) {
                        Some(Sc::Str(text)) => {
                            entries.push((host.clone(), text.to_string(), value.clone()))
                        }
                        _ => {
                            return Err(TransformError::wrong_type(
                                value,
                                &hpath,
                                "a string or a list of strings",
                            ))
                        }
                    },
                }
            }
        }
        Value::Scalar(_) => {
            return Err(TransformError::wrong_type(
                node,
                path,
                "a list or a mapping",
            ))
        }
    }
    let mut lines: Vec<(String, Node)> = entries
        .into_iter()
        .map(|(host, ip, at)| {
            let ip = if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
                ip[1..ip.len() - 1].to_string()
            } else {
                ip
            };
            (format!("{host}={ip}"), at)
        })
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let items = lines
        .into_iter()
        .map(|(line, at)| str_node(line, &at))
        .collect();
    *node = Node::seq(items, node.span.clone());
    Ok(())
}

/// `ulimits`: each limit is an integer or `{soft, hard}` integers.
fn ulimits(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let Some(map) = node.as_map_mut() else {
        return Err(TransformError::wrong_type(node, path, "a mapping"));
    };
    for (name, (_, limit)) in map.iter_mut() {
        let lpath = tree::child(path, name);
        match &mut limit.value {
            Value::Map(pair) => {
                for key in ["soft", "hard"] {
                    if let Some((_, v)) = pair.get_mut(key) {
                        convert::integer(v, &tree::child(&lpath, key))?;
                    }
                }
            }
            Value::Scalar(_) => convert::integer(limit, &lpath)?,
            Value::Seq(_) => {
                return Err(TransformError::wrong_type(
                    limit,
                    &lpath,
                    "an integer or a mapping",
                ))
            }
        }
    }
    Ok(())
}

/// `depends_on`: a list of names becomes a mapping; every dependency gets
/// `condition: service_started` and `required: true` unless given.
fn depends_on(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    if let Value::Seq(items) = &node.value {
        let mut map = Mapping::new();
        for (i, it) in items.iter().enumerate() {
            let Some(name) = it.as_str() else {
                return Err(TransformError::wrong_type(
                    it,
                    &tree::item(path, i),
                    "a service name",
                ));
            };
            tree::set(&mut map, name, mapping_node(Mapping::new(), it));
            if let Some((k, _)) = map.get_mut(name) {
                k.span = it.span.clone();
            }
        }
        *node = mapping_node(map, node);
    }
    let Some(map) = node.as_map_mut() else {
        return Err(TransformError::wrong_type(
            node,
            path,
            "a list or a mapping",
        ));
    };
    for (name, (_, dep)) in map.iter_mut() {
        let dpath = tree::child(path, name);
        let like = dep.clone();
        let Some(dmap) = dep.as_map_mut() else {
            return Err(TransformError::wrong_type(dep, &dpath, "a mapping"));
        };
        for key in ["restart", "required"] {
            if let Some((_, v)) = dmap.get_mut(key) {
                convert::boolean(v, &tree::child(&dpath, key), cx)?;
            }
        }
        tree::set_default(dmap, "condition", str_node("service_started", &like));
        tree::set_default(dmap, "required", bool_node(true, &like));
    }
    Ok(())
}

/// `devices`: `SRC[:DST[:PERMISSIONS]]` becomes `{source, target, permissions}`.
fn devices(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let Value::Seq(items) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a list"));
    };
    for (i, entry) in items.iter_mut().enumerate() {
        let ipath = tree::item(path, i);
        if entry.as_map().is_some() {
            continue;
        }
        let Some(text) = entry.as_str() else {
            return Err(TransformError::wrong_type(
                entry,
                &ipath,
                "a string or a mapping",
            ));
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, permissions) = match parts.as_slice() {
            [s] => (*s, "", "rwm"),
            [s, t] => (*s, *t, "rwm"),
            [s, t, p] => (*s, *t, *p),
            _ => {
                return Err(TransformError::at(
                    Kind::InvalidDevice,
                    &entry.span,
                    &ipath,
                    format!("confusing device mapping {text:?}, please use long syntax"),
                ))
            }
        };
        let target = if target.is_empty() { source } else { target };
        let mut map = Mapping::new();
        tree::set(&mut map, "source", str_node(source, entry));
        tree::set(&mut map, "target", str_node(target, entry));
        tree::set(&mut map, "permissions", str_node(permissions, entry));
        *entry = mapping_node(map, entry);
    }
    Ok(())
}

/// `env_file`: a path or list of paths becomes `[{path, required: true}]`.
fn env_file(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    if node.as_str().is_some() {
        *node = Node::seq(vec![node.clone()], node.span.clone());
    }
    let Value::Seq(items) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a path or a list"));
    };
    for (i, entry) in items.iter_mut().enumerate() {
        let ipath = tree::item(path, i);
        if let Some(Sc::Str(file)) = scalar(entry) {
            let mut map = Mapping::new();
            tree::set(&mut map, "path", str_node(file, entry));
            *entry = mapping_node(map, entry);
        }
        let like = entry.clone();
        let Some(map) = entry.as_map_mut() else {
            return Err(TransformError::wrong_type(
                entry,
                &ipath,
                "a path or a mapping",
            ));
        };
        if let Some((_, required)) = map.get_mut("required") {
            convert::boolean(required, &tree::child(&ipath, "required"), cx)?;
        }
        tree::set_default(map, "required", bool_node(true, &like));
    }
    Ok(())
}

/// `extends`: a service name becomes `{service: name}`.
fn extends(node: &mut Node, path: &str) -> Result<(), TransformError> {
    if let Some(Sc::Str(name)) = scalar(node) {
        let mut map = Mapping::new();
        tree::set(&mut map, "service", str_node(name, node));
        *node = mapping_node(map, node);
        return Ok(());
    }
    if node.as_map().is_none() {
        return Err(TransformError::wrong_type(
            node,
            path,
            "a service name or a mapping",
        ));
    }
    Ok(())
}

/// `gpus: all` becomes `[{count: -1}]`; list entries get `count: -1` unless
/// they give `count` or `device_ids`.
fn gpus(node: &mut Node, path: &str) -> Result<(), TransformError> {
    if let Some(Sc::Str(_)) = scalar(node) {
        let mut map = Mapping::new();
        tree::set(&mut map, "count", int_node(-1, node));
        *node = Node::seq(vec![mapping_node(map, node)], node.span.clone());
        return Ok(());
    }
    device_requests(node, path)
}

fn device_requests(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let Value::Seq(items) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a list"));
    };
    for (i, entry) in items.iter_mut().enumerate() {
        let ipath = tree::item(path, i);
        let like = entry.clone();
        let Some(map) = entry.as_map_mut() else {
            return Err(TransformError::wrong_type(entry, &ipath, "a mapping"));
        };
        if !map.contains_key("count") && !map.contains_key("device_ids") {
            tree::set(map, "count", int_node(-1, &like));
        }
        if let Some((_, count)) = map.get_mut("count") {
            convert::device_count(count, &tree::child(&ipath, "count"))?;
        }
        if let Some((_, options)) = map.get_mut("options") {
            convert::key_values(options, &tree::child(&ipath, "options"), Unset::Empty)?;
        }
    }
    Ok(())
}

/// `healthcheck`: a string test becomes `["CMD-SHELL", test]`; durations
/// are normalized.
fn healthcheck(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    sub_fields(node, path, cx, |key, value, vpath, cx| match key {
        "test" => {
            if let Some(Sc::Str(text)) = scalar(value) {
                let items = vec![str_node("CMD-SHELL", value), str_node(text, value)];
                *value = Node::seq(items, value.span.clone());
                return Ok(());
            }
            let Value::Seq(items) = &value.value else {
                return Err(TransformError::wrong_type(
                    value,
                    vpath,
                    "a string or a list",
                ));
            };
            for (i, it) in items.iter().enumerate() {
                if it.as_str().is_none() {
                    return Err(TransformError::wrong_type(
                        it,
                        &tree::item(vpath, i),
                        "a string",
                    ));
                }
            }
            Ok(())
        }
        "interval" | "timeout" | "start_period" | "start_interval" => {
            convert::duration(value, vpath)
        }
        "retries" => convert::integer(value, vpath),
        "disable" => convert::boolean(value, vpath, cx),
        _ => Ok(()),
    })
}

/// `blkio_config`: device rates are byte sizes.
fn blkio(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    sub_fields(node, path, cx, |key, value, vpath, cx| match key {
        "device_read_bps" | "device_read_iops" | "device_write_bps" | "device_write_iops" => {
            each_item(value, vpath, |item, ipath| {
                sub_fields(item, ipath, cx, |k, v, p, _| match k {
                    "rate" => convert::bytes(v, p),
                    _ => Ok(()),
                })
            })
        }
        "weight_device" => each_item(value, vpath, |item, ipath| {
            sub_fields(item, ipath, cx, |k, v, p, _| match k {
                "weight" => convert::integer(v, p),
                _ => Ok(()),
            })
        }),
        "weight" => convert::integer(value, vpath),
        _ => Ok(()),
    })
}

fn each_item(
    node: &mut Node,
    path: &str,
    mut f: impl FnMut(&mut Node, &str) -> Result<(), TransformError>,
) -> Result<(), TransformError> {
    let Value::Seq(items) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a list"));
    };
    for (i, it) in items.iter_mut().enumerate() {
        f(it, &tree::item(path, i))?;
    }
    Ok(())
}

/// `deploy`: labels, resources, update/rollback/restart settings typed.
fn deploy(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    sub_fields(node, path, cx, |key, value, vpath, cx| match key {
        "labels" => convert::key_values(value, vpath, Unset::Empty),
        "replicas" => convert::integer(value, vpath),
        "update_config" | "rollback_config" => sub_fields(value, vpath, cx, |k, v, p, _| match k {
            "parallelism" => convert::integer(v, p),
            "delay" | "monitor" => convert::duration(v, p),
            "max_failure_ratio" => convert::float32(v, p),
            _ => Ok(()),
        }),
        "resources" => sub_fields(value, vpath, cx, |k, v, p, cx| match k {
            "limits" | "reservations" => sub_fields(v, p, cx, |k, v, p, cx| match k {
                "cpus" => convert::float32(v, p),
                "memory" => convert::bytes(v, p),
                "pids" => convert::integer(v, p),
                "devices" => device_requests(v, p),
                "generic_resources" => each_item(v, p, |item, ipath| {
                    sub_fields(item, ipath, cx, |k, v, p, cx| match k {
                        "discrete_resource_spec" => sub_fields(v, p, cx, |k, v, p, _| match k {
                            "value" => convert::integer(v, p),
                            _ => Ok(()),
                        }),
                        _ => Ok(()),
                    })
                }),
                _ => Ok(()),
            }),
            _ => Ok(()),
        }),
        "restart_policy" => sub_fields(value, vpath, cx, |k, v, p, _| match k {
            "delay" | "window" => convert::duration(v, p),
            "max_attempts" => convert::integer(v, p),
            _ => Ok(()),
        }),
        "placement" => sub_fields(value, vpath, cx, |k, v, p, _| match k {
            "max_replicas_per_node" => convert::integer(v, p),
            _ => Ok(()),
        }),
        _ => Ok(()),
    })
}

/// `develop.watch`: `ignore`/`include` become lists; `exec` is a hook.
fn develop(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    sub_fields(node, path, cx, |key, value, vpath, cx| match key {
        "watch" => each_item(value, vpath, |item, ipath| {
            sub_fields(item, ipath, cx, |k, v, p, cx| match k {
                "ignore" | "include" => convert::string_or_list(v, p),
                "initial_sync" => convert::boolean(v, p, cx),
                "exec" => hook(v, p, cx),
                _ => Ok(()),
            })
        }),
        _ => Ok(()),
    })
}

/// `post_start`/`pre_stop`: a list of hooks.
fn hooks(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    each_item(node, path, |item, ipath| hook(item, ipath, cx))
}

fn hook(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    sub_fields(node, path, cx, |k, v, p, cx| match k {
        "command" => command(v, p),
        "environment" => convert::key_values(v, p, Unset::Null),
        "privileged" => convert::boolean(v, p, cx),
        _ => Ok(()),
    })
}
