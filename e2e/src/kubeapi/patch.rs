//! The non-apply patch formats: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902) and strategic merge patch for the built-in types.

use serde_json::{Map, Value};

/// A patch that cannot be applied (the server answers 422 or 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a patch of that type.
    #[error("the patch is malformed: {0}")]
    Malformed(String),
    /// A JSON patch operation failed (missing path, failed test).
    #[error("{0}")]
    Failed(String),
}

/// RFC 7386: objects merge, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// RFC 6902 operations on `target`, in order; all or nothing.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| PatchError::Malformed("a JSON patch is an array of operations".into()))?;
    let mut doc = target.clone();
    for op in ops {
        let name = op["op"]
            .as_str()
            .ok_or_else(|| PatchError::Malformed("an operation without \"op\"".into()))?;
        let path = op["path"]
            .as_str()
            .ok_or_else(|| PatchError::Malformed(format!("{name} without \"path\"")))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| PatchError::Malformed(format!("{name} without \"value\"")))
        };
        let from = || {
            op["from"]
                .as_str()
                .ok_or_else(|| PatchError::Malformed(format!("{name} without \"from\"")))
        };
        match name {
            "add" => add(&mut doc, path, value()?)?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(&mut doc, path, value()?)?;
            }
            "move" => {
                let moved = remove(&mut doc, from()?)?;
                add(&mut doc, path, moved)?;
            }
            "copy" => {
                let copied = doc.pointer(&pointer(from()?)).cloned().ok_or_else(|| {
                    PatchError::Failed(format!("missing path {}", from().unwrap_or("")))
                })?;
                add(&mut doc, path, copied)?;
            }
            "test" => {
                // As Kubernetes' JSON patch does: a missing field tests equal to null
                // (kube-runtime's finalizer helper relies on it).
                let actual = doc.pointer(&pointer(path)).unwrap_or(&Value::Null);
                if *actual != value()? {
                    return Err(PatchError::Failed(format!("testing value {path} failed")));
                }
            }
            other => {
                return Err(PatchError::Malformed(format!(
                    "unexpected kind of operation: {other}"
                )))
            }
        }
    }
    *target = doc;
    Ok(())
}

/// A JSON pointer as serde_json reads it (it unescapes `~1` and `~0` itself).
fn pointer(path: &str) -> String {
    path.to_string()
}

fn split_parent(path: &str) -> Result<(String, String), PatchError> {
    let at = path
        .rfind('/')
        .ok_or_else(|| PatchError::Malformed(format!("invalid path {path:?}")))?;
    let last = path[at + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..at].to_string(), last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_parent(path)?;
    let missing = || {
        PatchError::Failed(format!(
            "add operation does not apply: doc is missing path: {path:?}"
        ))
    };
    match doc.pointer_mut(&pointer(&parent)).ok_or_else(missing)? {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>().map_err(|_| missing())?
            };
            if index > items.len() {
                return Err(missing());
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, PatchError> {
    let (parent, last) = split_parent(path)?;
    let missing = || {
        PatchError::Failed(format!(
            "remove operation does not apply: doc is missing path: {path:?}"
        ))
    };
    match doc.pointer_mut(&pointer(&parent)).ok_or_else(missing)? {
        Value::Object(map) => map.remove(&last).ok_or_else(missing),
        Value::Array(items) => {
            let index = last.parse::<usize>().map_err(|_| missing())?;
            if index >= items.len() {
                return Err(missing());
            }
            Ok(items.remove(index))
        }
        _ => Err(missing()),
    }
}

/// The merge key of a list field of the built-in types, by field name
/// (what their Go struct tags `patchMergeKey` say).
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    let key = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "ports" => {
            if items.iter().all(|i| i.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    };
    items.iter().all(|i| i.get(key).is_some()).then_some(key)
}

/// Strategic merge patch: a merge patch where lists of the built-in types
/// with a merge key merge element by element, `finalizers` merge as a set,
/// and the `$patch`, `$retainKeys`, `$setElementOrder` and
/// `$deleteFromPrimitiveList` directives are honoured.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch_map.clone();
            replaced.remove("$patch");
            *target = Value::Object(replaced);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return Ok(());
    };
    if let Some(Value::Array(keep)) = patch_map.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target_map.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch_map {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(gone)) =
                (target_map.get_mut(field), value)
            {
                items.retain(|i| !gone.contains(i));
            }
            continue;
        }
        if value.is_null() {
            target_map.remove(key);
            continue;
        }
        let slot = target_map.entry(key.clone()).or_insert(Value::Null);
        match (slot, value) {
            (Value::Array(existing), Value::Array(patch_items)) if key == "finalizers" => {
                for item in patch_items {
                    if !existing.contains(item) {
                        existing.push(item.clone());
                    }
                }
            }
            (Value::Array(existing), Value::Array(patch_items)) => {
                if let Some(merge_on) = merge_key(key, patch_items) {
                    merge_list(existing, patch_items, merge_on)?;
                } else {
                    *existing = patch_items.clone();
                }
            }
            (slot @ Value::Object(_), Value::Object(_)) => {
                strategic_merge_patch(slot, value)?;
                if slot.is_null() {
                    target_map.remove(key);
                }
            }
            (slot, value) => {
                let mut replacement = Value::Null;
                strategic_merge_patch(&mut replacement, value)?;
                *slot = strip_directives(replacement);
            }
        }
    }
    Ok(())
}

fn merge_list(
    existing: &mut Vec<Value>,
    patch_items: &[Value],
    key: &str,
) -> Result<(), PatchError> {
    for item in patch_items {
        let wanted = &item[key];
        let position = existing.iter().position(|e| &e[key] == wanted);
        let deleting = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, deleting) {
            (Some(at), true) => {
                existing.remove(at);
            }
            (None, true) => {}
            (Some(at), false) => strategic_merge_patch(&mut existing[at], item)?,
            (None, false) => existing.push(strip_directives(item.clone())),
        }
    }
    Ok(())
}

fn strip_directives(mut value: Value) -> Value {
    match &mut value {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            for v in map.values_mut() {
                *v = strip_directives(std::mem::take(v));
            }
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                *v = strip_directives(std::mem::take(v));
            }
        }
        _ => {}
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_merge_patch_null_removes_a_key_and_objects_merge() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "d": [1, 2]});
        merge_patch(&mut doc, &json!({"a": {"b": null, "e": 3}, "d": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "e": 3}, "d": [3]}));
    }

    #[test]
    fn json_patch_operations_apply_in_order_or_not_at_all() {
        let mut doc = json!({"metadata": {"finalizers": ["a"]}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "test", "path": "/metadata/finalizers/0", "value": "a"},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "b"},
                {"op": "remove", "path": "/metadata/finalizers/0"},
                {"op": "add", "path": "/metadata/labels", "value": {"x/y": "1"}},
                {"op": "replace", "path": "/metadata/labels/x~1y", "value": "2"},
            ]),
        )
        .expect("the patch applies");
        assert_eq!(
            doc,
            json!({"metadata": {"finalizers": ["b"], "labels": {"x/y": "2"}}})
        );
        let before = doc.clone();
        let failed = json_patch(
            &mut doc,
            &json!([
                {"op": "remove", "path": "/metadata/finalizers/0"},
                {"op": "test", "path": "/metadata/finalizers/0", "value": "b"},
            ]),
        );
        assert!(failed.is_err());
        assert_eq!(doc, before);
    }

    #[test]
    fn a_json_patch_test_of_null_passes_on_a_missing_field() {
        let mut doc = json!({"metadata": {"name": "a"}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["stackd.dev/cleanup"]},
            ]),
        )
        .expect("the patch applies");
        assert_eq!(doc["metadata"]["finalizers"], json!(["stackd.dev/cleanup"]));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name_and_conditions_by_type() {
        let mut doc = json!({"spec": {"containers": [
            {"name": "a", "image": "one"}, {"name": "b", "image": "two"}
        ]}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        strategic_merge_patch(
            &mut doc,
            &json!({
                "spec": {"containers": [{"name": "b", "image": "three"}, {"name": "a", "$patch": "delete"}]},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }),
        )
        .expect("the patch applies");
        assert_eq!(
            doc,
            json!({"spec": {"containers": [{"name": "b", "image": "three"}]},
                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        );
    }
}
