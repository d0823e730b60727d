//! Top-level `networks`, `volumes`, `secrets`, `configs` and `include`.
use crate::load::yaml::{Mapping, Node, Value};

use super::convert::{self, scalar, str_node, Sc, Unset};
use super::tree;
use super::volumes::sub_fields;
use super::{Cx, Kind, TransformError};

/// Converts every resource of one top-level section (`networks`...).
pub(crate) fn top_level(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    if node.is_null() {
        return Ok(());
    }
    let Some(map) = node.as_map_mut() else {
        return Err(TransformError::wrong_type(node, path, "a mapping"));
    };
    for (name, (_, resource)) in map.iter_mut() {
        let rpath = tree::child(path, name);
        if resource.is_null() {
            continue;
        }
        if resource.as_map().is_none() {
            return Err(TransformError::wrong_type(resource, &rpath, "a mapping"));
        }
        external(resource, &rpath, cx)?;
        sub_fields(resource, &rpath, cx, |key, value, vpath, cx| match key {
            "labels" => convert::key_values(value, vpath, Unset::Empty),
            "driver_opts" => convert::options(value, vpath),
            "internal" | "attachable" | "enable_ipv4" | "enable_ipv6" => {
                convert::boolean(value, vpath, cx)
            }
            "ipam" => {
                // Compose's schema takes `ipam.options` but its model has no
                // such field, so the value is dropped without a word.
                if let Some(map) = value.as_map_mut() {
                    map.shift_remove("options");
                }
                sub_fields(value, vpath, cx, |key, value, vpath, cx| match key {
                    "config" => ipam_pools(value, vpath, cx),
                    _ => Ok(()),
                })
            }
            _ => Ok(()),
        })?;
    }
    Ok(())
}

fn ipam_pools(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    let Value::Seq(items) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a list"));
    };
    for (i, pool) in items.iter_mut().enumerate() {
        sub_fields(
            pool,
            &tree::item(path, i),
            cx,
            |key, value, vpath, _| match key {
                "aux_addresses" => convert::key_values(value, vpath, Unset::Empty),
                _ => Ok(()),
            },
        )?;
    }
    Ok(())
}

/// `external: {name: x}` (deprecated) becomes `external: true` plus `name: x`.
fn external(resource: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    let span = resource.span.clone();
    let Some(map) = resource.as_map_mut() else {
        return Ok(());
    };
    let Some((_, ext)) = map.get_mut("external") else {
        return Ok(());
    };
    let epath = tree::child(path, "external");
    let Some(ext_map) = ext.as_map() else {
        return convert::boolean(ext, &epath, cx);
    };
    let ext_name = ext_map.get("name").map(|(_, n)| n.clone());
    *ext = convert::bool_node(true, ext);
    let Some(ext_name) = ext_name else {
        return Ok(());
    };
    cx.warn(
        &span,
        path,
        "external.name is deprecated. Please set name and external: true",
    );
    match map.get("name") {
        Some((_, name)) => {
            if name.as_scalar().map(|s| &s.text) != ext_name.as_scalar().map(|s| &s.text) {
                return Err(TransformError::at(
                    Kind::ConflictingNames,
                    &span,
                    path,
                    "name and external.name conflict; only use name",
                ));
            }
        }
        None => tree::set(map, "name", ext_name),
    }
    Ok(())
}

/// `include` entries: a string becomes `{path: [string]}`; `path` and
/// `env_file` become lists.
pub(crate) fn include(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let Value::Seq(items) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a list"));
    };
    for (i, entry) in items.iter_mut().enumerate() {
        let ipath = tree::item(path, i);
        if let Some(Sc::Str(text)) = scalar(entry) {
            let mut map = Mapping::new();
            let item = str_node(text, entry);
            tree::set(&mut map, "path", Node::seq(vec![item], entry.span.clone()));
            *entry = Node {
                value: Value::Map(map),
                span: entry.span.clone(),
                tag: None,
            };
            continue;
        }
        let Some(map) = entry.as_map_mut() else {
            return Err(TransformError::wrong_type(
                entry,
                &ipath,
                "a string or a mapping",
            ));
        };
        for key in ["path", "env_file"] {
            if let Some((_, value)) = map.get_mut(key) {
                convert::string_or_list(value, &tree::child(&ipath, key))?;
            }
        }
    }
    Ok(())
}
