//! Field ownership (`metadata.managedFields`) and server-side apply: which
//! manager owns which field, conflicts between managers, and removing the
//! fields a manager stops applying.
//!
//! Lists are atomic (one field each), as they are in a CRD schema without
//! `x-kubernetes-list-type`; maps merge key by key.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

/// A field: the map keys from the object's root.
pub type FieldPath = Vec<String>;

/// The fields one manager owns.
pub type FieldSet = BTreeSet<FieldPath>;

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The field manager's name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// The apiVersion the manager wrote with.
    pub api_version: String,
    /// When the manager last changed its set.
    pub time: String,
    /// `status` for writes through the status subresource.
    pub subresource: Option<String>,
    /// The fields it owns.
    pub fields: FieldSet,
}

impl Entry {
    fn same_slot(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }
}

/// A field path as the API prints it in conflicts: `.spec.replicas`.
pub fn display(path: &FieldPath) -> String {
    path.iter().map(|p| format!(".{p}")).collect()
}

/// The part of an object fields are owned in: no apiVersion/kind, and of
/// metadata only labels, annotations, finalizers and ownerReferences.
pub fn ownable(object: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(map) = object {
        for (key, value) in map {
            match key.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    let mut meta = Map::new();
                    for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
                        if let Some(v) = value.get(field) {
                            meta.insert(field.to_string(), v.clone());
                        }
                    }
                    if !meta.is_empty() {
                        out.insert(key.clone(), Value::Object(meta));
                    }
                }
                _ => {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
    }
    Value::Object(out)
}

/// Every leaf of `value`: a non-map, or an empty map.
pub fn leaves(value: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    collect_leaves(value, &mut Vec::new(), &mut set);
    set
}

fn collect_leaves(value: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                prefix.push(key.clone());
                collect_leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.clone());
        }
        _ => {}
    }
}

/// The leaves that differ between `old` and `new` (added, changed or removed).
pub fn changed(old: &Value, new: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    collect_changed(Some(old), Some(new), &mut Vec::new(), &mut set);
    set
}

fn collect_changed(
    old: Option<&Value>,
    new: Option<&Value>,
    prefix: &mut FieldPath,
    out: &mut FieldSet,
) {
    match (old, new) {
        (Some(a), Some(b)) if a == b => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) if !a.is_empty() || !b.is_empty() => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                prefix.push(key.clone());
                collect_changed(a.get(key), b.get(key), prefix, out);
                prefix.pop();
            }
        }
        (_, Some(v @ Value::Object(m))) | (Some(v @ Value::Object(m)), None) if !m.is_empty() => {
            let start = out.len();
            collect_leaves_into(v, prefix, out);
            if out.len() == start && !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            if let (Some(old), Some(_)) = (old, new) {
                if !old.is_object() && !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

fn collect_leaves_into(value: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    collect_leaves(value, prefix, out);
}

/// An applied `null` says nothing: it neither sets nor owns the field.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

fn is_empty_map(value: Option<&Value>) -> bool {
    value.and_then(Value::as_object).is_some_and(Map::is_empty)
}

/// `path` and `other` name the same field or one contains the other.
fn overlaps(path: &FieldPath, other: &FieldPath) -> bool {
    let n = path.len().min(other.len());
    path[..n] == other[..n]
}

/// The value at `path`, if present.
pub fn value_at<'a>(value: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    let mut node = value;
    for key in path {
        node = node.as_object()?.get(key)?;
    }
    Some(node)
}

/// Removes the field at `path` (and maps it leaves empty on the way up).
pub fn remove_at(value: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = &mut *value;
    for key in parents {
        match node.as_object_mut().and_then(|m| m.get_mut(key)) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last);
    }
    for depth in (1..parents.len() + 1).rev() {
        let prefix: FieldPath = parents[..depth].to_vec();
        let empty =
            value_at(value, &prefix).is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
        if empty && depth > 0 {
            remove_at_shallow(value, &prefix);
        } else {
            break;
        }
    }
}

fn remove_at_shallow(value: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = value;
    for key in parents {
        match node.as_object_mut().and_then(|m| m.get_mut(key)) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last);
    }
}

/// Maps merge key by key; everything else in `src` replaces.
pub fn merge_into(target: &mut Value, src: &Value) {
    match (target, src) {
        (Value::Object(t), Value::Object(s)) => {
            for (key, value) in s {
                match t.get_mut(key) {
                    Some(slot) => merge_into(slot, value),
                    None => {
                        t.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, src) => *target = src.clone(),
    }
}

/// The FieldsV1 form of a set: `{"f:spec":{"f:replicas":{}}}`.
pub fn encode(fields: &FieldSet) -> Value {
    let mut root = Value::Object(Map::new());
    for path in fields {
        let mut node = &mut root;
        for key in path {
            let Value::Object(map) = node else { break };
            node = map
                .entry(format!("f:{key}"))
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    root
}

/// Reads FieldsV1; a node with list keys (`k:`, `v:`, `i:`) below it is
/// owned as one field, as lists are atomic here.
pub fn decode(fields: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    decode_into(fields, &mut Vec::new(), &mut set);
    set
}

fn decode_into(node: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    let children: Vec<(&String, &Value)> = node
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| k.as_str() != ".").collect())
        .unwrap_or_default();
    let named: Vec<(&str, &Value)> = children
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("f:").map(|name| (name, *v)))
        .collect();
    if named.is_empty() || named.len() != children.len() {
        if !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        return;
    }
    for (name, child) in named {
        prefix.push(name.to_string());
        decode_into(child, prefix, out);
        prefix.pop();
    }
}

/// The entries of an object's `metadata.managedFields`.
pub fn read_entries(object: &Value) -> Vec<Entry> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    Some(Entry {
                        manager: e["manager"].as_str()?.to_string(),
                        operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                        api_version: e["apiVersion"].as_str().unwrap_or("").to_string(),
                        time: e["time"].as_str().unwrap_or("").to_string(),
                        subresource: e["subresource"].as_str().map(str::to_string),
                        fields: decode(&e["fieldsV1"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `entries` (those that own something) as `metadata.managedFields`.
pub fn write_entries(object: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": encode(&e.fields),
            });
            if let Some(sub) = &e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Who wrote and how: what an entry is keyed by.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// The apiVersion of the request.
    pub api_version: &'a str,
    /// `Some("status")` through the status subresource.
    pub subresource: Option<&'a str>,
    /// The time to stamp on a changed entry.
    pub now: &'a str,
}

/// Ownership after a non-apply write from `old` to `new`: the writer takes
/// every field it changed, from whoever owned it.
pub fn record_update(
    entries: &[Entry],
    old: &Value,
    new: &Value,
    writer: Writer<'_>,
) -> Vec<Entry> {
    let old_fields = ownable(old);
    let new_fields = ownable(new);
    let changed = changed(&old_fields, &new_fields);
    if changed.is_empty() {
        return entries.to_vec();
    }
    let present = leaves(&new_fields);
    let mut out: Vec<Entry> = entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let before = e.fields.len();
            e.fields.retain(|f| !changed.iter().any(|c| overlaps(c, f)));
            if e.fields.len() != before {
                e.time = writer.now.to_string();
            }
            e
        })
        .collect();
    let gained: FieldSet = changed
        .into_iter()
        .filter(|c| present.contains(c))
        .collect();
    if gained.is_empty() {
        return out;
    }
    match out
        .iter_mut()
        .find(|e| e.same_slot(writer.manager, "Update", writer.subresource))
    {
        Some(entry) => {
            entry.fields.extend(gained);
            entry.time = writer.now.to_string();
            entry.api_version = writer.api_version.to_string();
        }
        None => out.push(Entry {
            manager: writer.manager.to_string(),
            operation: "Update".to_string(),
            api_version: writer.api_version.to_string(),
            time: writer.now.to_string(),
            subresource: writer.subresource.map(str::to_string),
            fields: gained,
        }),
    }
    out
}

/// The outcome of a server-side apply: the merged object and its owners.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// `live` with the applied configuration merged in and dropped fields removed.
    pub object: Value,
    /// The new managedFields entries.
    pub entries: Vec<Entry>,
}

/// Server-side apply of `config` (already limited to what the endpoint
/// may change) onto `live` by `writer`; `Err` lists the conflicts.
pub fn apply(
    live: &Value,
    entries: &[Entry],
    config: &Value,
    writer: Writer<'_>,
    force: bool,
) -> Result<Applied, Vec<(String, String)>> {
    let config = without_nulls(ownable(config));
    let wanted = leaves(&config);
    let mut conflicts = Vec::new();
    let mut entries: Vec<Entry> = entries.to_vec();
    for entry in &entries {
        if entry.manager == writer.manager {
            continue;
        }
        for path in wanted
            .iter()
            .filter(|p| !is_empty_map(value_at(&config, p)))
        {
            let owned = entry.fields.iter().any(|f| overlaps(f, path));
            if owned && value_at(live, path) != value_at(&config, path) {
                conflicts.push((entry.manager.clone(), display(path)));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort();
        conflicts.dedup();
        return Err(conflicts);
    }
    if force {
        for entry in entries.iter_mut().filter(|e| e.manager != writer.manager) {
            let before = entry.fields.len();
            entry.fields.retain(|f| {
                !wanted.iter().any(|p| {
                    overlaps(f, p)
                        && !is_empty_map(value_at(&config, p))
                        && value_at(live, p) != value_at(&config, p)
                })
            });
            if entry.fields.len() != before {
                entry.time = writer.now.to_string();
            }
        }
    }
    let previous: FieldSet = entries
        .iter()
        .find(|e| e.same_slot(writer.manager, "Apply", writer.subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut object = live.clone();
    for dropped in previous.difference(&wanted) {
        let still_owned = entries
            .iter()
            .filter(|e| !e.same_slot(writer.manager, "Apply", writer.subresource))
            .any(|e| e.fields.iter().any(|f| overlaps(f, dropped)));
        let reapplied = wanted
            .iter()
            .any(|w| overlaps(w, dropped) && !is_empty_map(value_at(&config, w)));
        if !still_owned && !reapplied {
            remove_at(&mut object, dropped);
        }
    }
    merge_into(&mut object, &config);
    match entries
        .iter_mut()
        .find(|e| e.same_slot(writer.manager, "Apply", writer.subresource))
    {
        Some(entry) => {
            if entry.fields != wanted {
                entry.fields = wanted;
                entry.time = writer.now.to_string();
            }
            entry.api_version = writer.api_version.to_string();
        }
        None => entries.push(Entry {
            manager: writer.manager.to_string(),
            operation: "Apply".to_string(),
            api_version: writer.api_version.to_string(),
            time: writer.now.to_string(),
            subresource: writer.subresource.map(str::to_string),
            fields: wanted,
        }),
    }
    entries.retain(|e| !e.fields.is_empty());
    Ok(Applied { object, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "v1",
            subresource: None,
            now: NOW,
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
    }

    #[test]
    fn field_sets_round_trip_through_fields_v1() {
        let set = leaves(
            &json!({"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}, "spec": {"list": [1]}}),
        );
        assert_eq!(decode(&encode(&set)), set);
        assert_eq!(
            encode(&set),
            json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:list": {}}})
        );
    }

    #[test]
    fn a_second_manager_applying_a_different_value_conflicts_until_forced() {
        let first = apply(
            &cm(json!({})),
            &[],
            &cm(json!({"k": "a"})),
            writer("one"),
            false,
        )
        .expect("no owner yet");
        let conflict = apply(
            &first.object,
            &first.entries,
            &cm(json!({"k": "b"})),
            writer("two"),
            false,
        );
        assert_eq!(
            conflict,
            Err(vec![("one".to_string(), ".data.k".to_string())])
        );
        let same = apply(
            &first.object,
            &first.entries,
            &cm(json!({"k": "a"})),
            writer("two"),
            false,
        )
        .expect("the same value is shared ownership");
        assert_eq!(same.entries.len(), 2);
        let forced = apply(
            &first.object,
            &first.entries,
            &cm(json!({"k": "b"})),
            writer("two"),
            true,
        )
        .expect("force takes the field");
        assert_eq!(forced.object["data"]["k"], "b");
        assert_eq!(forced.entries.len(), 1);
        assert_eq!(forced.entries[0].manager, "two");
    }

    #[test]
    fn a_field_the_manager_stops_applying_is_removed_unless_someone_else_owns_it() {
        let first = apply(
            &cm(json!({})),
            &[],
            &cm(json!({"a": "1", "b": "2"})),
            writer("one"),
            false,
        )
        .expect("no owner yet");
        let shared = apply(
            &first.object,
            &first.entries,
            &cm(json!({"b": "2"})),
            writer("two"),
            false,
        )
        .expect("same value");
        let dropped = apply(
            &shared.object,
            &shared.entries,
            &cm(json!({})),
            writer("one"),
            false,
        )
        .expect("dropping is no conflict");
        assert_eq!(dropped.object["data"], json!({"b": "2"}));
    }

    #[test]
    fn an_update_takes_the_fields_it_changes_from_their_owner() {
        let first = apply(
            &cm(json!({})),
            &[],
            &cm(json!({"k": "a"})),
            writer("one"),
            false,
        )
        .expect("no owner yet");
        let edited = cm(json!({"k": "b"}));
        let entries = record_update(&first.entries, &first.object, &edited, writer("editor"));
        assert_eq!(entries.iter().filter(|e| !e.fields.is_empty()).count(), 1);
        assert!(entries
            .iter()
            .any(|e| e.manager == "editor" && e.operation == "Update"));
    }
}
