//! A custom resource against its CRD's structural schema: fields the schema
//! does not know are pruned (and reported, for `fieldValidation=Strict`),
//! values of the wrong type, outside an enum or missing when required are
//! invalid, and nulls where the schema does not allow them are dropped.

use serde_json::Value;

/// What checking found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// (field path, message) of each invalid value.
    pub invalid: Vec<(String, String)>,
    /// The paths of pruned unknown fields.
    pub unknown: Vec<String>,
}

/// Checks and prunes `object` (apiVersion, kind and metadata aside).
pub fn check(object: &mut Value, schema: &Value) -> Findings {
    let mut findings = Findings::default();
    let Some(map) = object.as_object_mut() else {
        return findings;
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match schema["properties"].get(&key) {
            Some(property) => {
                let drop = map
                    .get_mut(&key)
                    .is_some_and(|value| walk(value, property, &key, &mut findings));
                if drop {
                    map.remove(&key);
                }
            }
            None if preserves_unknown(schema) => {}
            None => {
                map.remove(&key);
                findings.unknown.push(key);
            }
        }
    }
    findings
}

fn preserves_unknown(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"] == true
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks one value; true when the parent should drop it (a null the
/// schema does not allow).
fn walk(value: &mut Value, schema: &Value, path: &str, findings: &mut Findings) -> bool {
    if value.is_null() {
        return schema["nullable"] != true;
    }
    let actual = type_name(value);
    let int_or_string = schema["x-kubernetes-int-or-string"] == true;
    if let Some(wanted) = schema["type"].as_str() {
        let fits = match wanted {
            "number" => matches!(actual, "integer" | "number"),
            other => other == actual,
        } || (int_or_string && matches!(actual, "integer" | "string"));
        if !fits {
            findings.invalid.push((
                path.to_string(),
                format!("Invalid value: \"{actual}\": {path} in body must be of type {wanted}: \"{actual}\""),
            ));
            return false;
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            findings.invalid.push((
                path.to_string(),
                format!(
                    "Unsupported value: {value}: supported values: {}",
                    list.join(", ")
                ),
            ));
        }
    }
    match value {
        Value::Object(map) => {
            if let Some(required) = schema["required"].as_array() {
                for key in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(key) {
                        findings
                            .invalid
                            .push((format!("{path}.{key}"), "Required value".to_string()));
                    }
                }
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = format!("{path}.{key}");
                let child_schema = schema["properties"]
                    .get(&key)
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                match child_schema {
                    Some(child_schema) => {
                        let drop = map
                            .get_mut(&key)
                            .is_some_and(|v| walk(v, child_schema, &child_path, findings));
                        if drop {
                            map.remove(&key);
                        }
                    }
                    None if preserves_unknown(schema) || schema["additionalProperties"] == true => {
                    }
                    None => {
                        map.remove(&key);
                        findings.unknown.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), findings);
                }
            }
        }
        _ => {}
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stack_schema() -> Value {
        let text = std::fs::read_to_string(crate::workspace_root().join("crds/stack.yaml"))
            .expect("crds/stack.yaml");
        let crd: Value = serde_saphyr::from_str(&text).expect("yaml");
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    #[test]
    fn unknown_fields_are_pruned_but_the_compose_model_is_kept_whole() {
        let mut stack = json!({
            "apiVersion": "stackd.dev/v1alpha1", "kind": "Stack", "metadata": {"name": "s"},
            "spec": {"compose": {"services": {"web": {"anything": [1]}}}, "typo": true},
            "extra": 1,
        });
        let findings = check(&mut stack, &stack_schema());
        assert_eq!(findings.unknown, ["spec.typo", "extra"]);
        assert!(findings.invalid.is_empty(), "{findings:?}");
        assert_eq!(
            stack["spec"],
            json!({"compose": {"services": {"web": {"anything": [1]}}}})
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_or_a_missing_required_field_is_invalid() {
        let mut stack = json!({
            "spec": {"suspend": "yes", "compose": {}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        });
        let findings = check(&mut stack, &stack_schema());
        let fields: Vec<&str> = findings.invalid.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"spec.suspend"), "{findings:?}");
        assert!(
            fields.contains(&"status.conditions[0].reason"),
            "{findings:?}"
        );
    }

    #[test]
    fn a_null_is_dropped_unless_the_schema_allows_it() {
        let mut stack = json!({"spec": {"compose": {}, "suspend": null}, "status": {"observedGeneration": null}});
        let findings = check(&mut stack, &stack_schema());
        assert!(findings.invalid.is_empty(), "{findings:?}");
        assert_eq!(
            stack,
            json!({"spec": {"compose": {}}, "status": {"observedGeneration": null}})
        );
    }
}
