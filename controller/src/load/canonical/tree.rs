//! Small helpers for walking and editing [`Node`] trees with dotted paths.
use crate::load::yaml::{Key, Mapping, Node, Resolved, Value};

use super::{Kind, TransformError};

/// `parent.key`, or `key` at the top level.
pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The keys of a mapping, so entries can be edited while walking them.
pub(crate) fn keys(map: &Mapping) -> Vec<String> {
    map.keys().cloned().collect()
}

/// Sets `key` to `value`, keeping the key's place and position when it exists.
pub(crate) fn set(map: &mut Mapping, key: &str, value: Node) {
    match map.get_mut(key) {
        Some((_, slot)) => *slot = value,
        None => {
            let span = value.span.clone();
            map.insert(
                key.to_string(),
                (
                    Key {
                        text: key.to_string(),
                        span,
                    },
                    value,
                ),
            );
        }
    }
}

/// Sets `key` to `value` unless the key is present (even as null), as
/// compose's defaults do.
pub(crate) fn set_default(map: &mut Mapping, key: &str, value: Node) {
    if !map.contains_key(key) {
        set(map, key, value);
    }
}

/// True when `key` is absent or null.
pub(crate) fn missing(map: &Mapping, key: &str) -> bool {
    map.get(key).is_none_or(|(_, v)| v.is_null())
}

/// Refuses unquoted dates anywhere compose's schema checks types. Extension
/// (`x-`) values are not checked, as compose passes them through.
pub(crate) fn reject_timestamps(node: &Node, path: &str) -> Result<(), TransformError> {
    match &node.value {
        Value::Scalar(s) => {
            if s.resolve() == Resolved::Timestamp {
                return Err(timestamp_error(node, path));
            }
        }
        Value::Seq(items) => {
            for (i, it) in items.iter().enumerate() {
                reject_timestamps(it, &item(path, i))?;
            }
        }
        Value::Map(map) => {
            for (key, (_, value)) in map {
                if !key.starts_with("x-") {
                    reject_timestamps(value, &child(path, key))?;
                }
            }
        }
    }
    Ok(())
}

/// The error for an unquoted date.
pub(crate) fn timestamp_error(node: &Node, path: &str) -> TransformError {
    let text = node.as_scalar().map(|s| s.text.as_str()).unwrap_or("");
    TransformError::at(
        Kind::UnquotedTimestamp,
        &node.span,
        path,
        format!("{text} is read as a YAML timestamp, which compose refuses here; quote it"),
    )
}
