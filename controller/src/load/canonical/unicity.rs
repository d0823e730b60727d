//! Duplicate entries in a service's lists: the last definition wins, in the
//! place of the first, as compose's `EnforceUnicity` does. Expanding short
//! syntax can reveal duplicates (`8080-8081:80-81` next to `8080:80`).
use std::collections::HashMap;

use crate::load::yaml::{Mapping, Node, Value};

use super::tree;
use super::{Kind, TransformError};

type Indexer = fn(&Node, &str) -> Result<String, TransformError>;

/// Removes redefinitions from every list of one service.
pub(crate) fn service(map: &mut Mapping, path: &str) -> Result<(), TransformError> {
    let lists: [(&str, Indexer); 14] = [
        ("ports", port_key),
        ("volumes", volume_key),
        ("devices", device_key),
        ("secrets", secret_key),
        ("configs", config_key),
        ("env_file", env_file_key),
        ("expose", key_value_key),
        ("cap_add", key_value_key),
        ("cap_drop", key_value_key),
        ("dns", key_value_key),
        ("dns_opt", key_value_key),
        ("dns_search", key_value_key),
        ("links", key_value_key),
        ("profiles", key_value_key),
    ];
    for (key, indexer) in lists {
        if let Some((_, node)) = map.get_mut(key) {
            dedupe(node, &tree::child(path, key), indexer)?;
        }
    }
    if let Some((_, node)) = map.get_mut("tmpfs") {
        dedupe(node, &tree::child(path, "tmpfs"), key_value_key)?;
    }
    if let Some((_, build)) = map.get_mut("build") {
        let bpath = tree::child(path, "build");
        if let Some(tags) = build.get_mut("tags") {
            dedupe(tags, &tree::child(&bpath, "tags"), key_value_key)?;
        }
    }
    if let Some((
        _,
        Node {
            value: Value::Map(networks),
            ..
        },
    )) = map.get_mut("networks")
    {
        let npath = tree::child(path, "networks");
        for (name, (_, network)) in networks.iter_mut() {
            let netpath = tree::child(&npath, name);
            for key in ["aliases", "link_local_ips"] {
                if let Some(list) = network.get_mut(key) {
                    dedupe(list, &tree::child(&netpath, key), key_value_key)?;
                }
            }
        }
    }
    Ok(())
}

fn dedupe(node: &mut Node, path: &str, indexer: Indexer) -> Result<(), TransformError> {
    let Value::Seq(items) = &mut node.value else {
        return Ok(());
    };
    let mut out: Vec<Node> = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, entry) in std::mem::take(items).into_iter().enumerate() {
        let key = indexer(&entry, &tree::item(path, i))?;
        match seen.get(&key) {
            Some(&at) => out[at] = entry,
            None => {
                seen.insert(key, out.len());
                out.push(entry);
            }
        }
    }
    *items = out;
    Ok(())
}

fn unexpected(node: &Node, path: &str) -> TransformError {
    TransformError::wrong_type(node, path, "a string")
}

fn key_value_key(node: &Node, path: &str) -> Result<String, TransformError> {
    let text = node.as_str().ok_or_else(|| unexpected(node, path))?;
    Ok(text.split_once('=').map_or(text, |(k, _)| k).to_string())
}

fn text(node: &Node) -> Option<String> {
    node.as_scalar().and_then(|s| s.canonical_text())
}

fn port_key(node: &Node, path: &str) -> Result<String, TransformError> {
    let Some(map) = node.as_map() else {
        return Ok(text(node).unwrap_or_default());
    };
    let field = |key: &str| map.get(key).and_then(|(_, v)| text(v));
    let Some(target) = field("target") else {
        return Err(TransformError::at(
            Kind::MissingTarget,
            &node.span,
            path,
            "port is missing a target (container) port",
        ));
    };
    Ok(format!(
        "{}:{}:{target}/{}",
        field("host_ip").unwrap_or_else(|| "0.0.0.0".into()),
        field("published").unwrap_or_else(|| "<nil>".into()),
        field("protocol").unwrap_or_else(|| "tcp".into()),
    ))
}

fn target_key(node: &Node, path: &str, what: &str) -> Result<String, TransformError> {
    match node.get("target").and_then(Node::as_str) {
        Some(target) => Ok(target.to_string()),
        None => Err(TransformError::at(
            Kind::MissingTarget,
            &node.span,
            path,
            format!("{what} is missing a target path"),
        )),
    }
}

fn volume_key(node: &Node, path: &str) -> Result<String, TransformError> {
    target_key(node, path, "volume")
}

fn device_key(node: &Node, path: &str) -> Result<String, TransformError> {
    target_key(node, path, "device")
}

fn mount_key(node: &Node, dir: &str) -> String {
    match node.get("target").and_then(text) {
        Some(target) => target,
        None => format!(
            "{dir}/{}",
            node.get("source").and_then(text).unwrap_or_default()
        ),
    }
}

fn secret_key(node: &Node, _path: &str) -> Result<String, TransformError> {
    Ok(mount_key(node, "/run/secrets"))
}

fn config_key(node: &Node, _path: &str) -> Result<String, TransformError> {
    Ok(mount_key(node, ""))
}

fn env_file_key(node: &Node, _path: &str) -> Result<String, TransformError> {
    Ok(node.get("path").and_then(text).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::yaml::parse_documents;
    use std::sync::Arc;

    fn list(yaml: &str) -> Node {
        let file: Arc<str> = Arc::from("t.yaml");
        parse_documents(yaml, &file).expect("parses").remove(0)
    }

    #[test]
    fn the_last_duplicate_wins_in_the_place_of_the_first() {
        let mut node = list("[a=1, b, a=2]");
        dedupe(&mut node, "x", key_value_key).expect("dedupes");
        assert_eq!(node.to_json(), serde_json::json!(["a=2", "b"]));
    }

    #[test]
    fn non_string_items_in_string_lists_are_refused() {
        let mut node = list("[1]");
        let err = dedupe(&mut node, "services.a.tmpfs", key_value_key).expect_err("refused");
        assert_eq!(err.path(), "services.a.tmpfs[0]");
    }
}
