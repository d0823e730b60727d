//! Just enough OpenAPI v3 for kubectl: one document per group version whose
//! PATCH operations declare `fieldValidation`, so that kubectl leaves
//! validation to the server instead of downloading schemas.

use serde_json::{json, Map, Value};

use super::resources::ResourceType;

/// `apis/stackd.dev/v1alpha1` (or `api/v1`) of every served group version.
fn group_versions(types: &[ResourceType]) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for t in types {
        for v in &t.versions {
            let key = if t.group.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{}/{v}", t.group)
            };
            if !out.iter().any(|(k, _, _)| *k == key) {
                out.push((key, t.group.clone(), v.clone()));
            }
        }
    }
    out
}

/// The document of one group version (`api/v1`, `apis/apps/v1`), if served.
pub fn document(types: &[ResourceType], key: &str) -> Option<Value> {
    let (_, group, version) = group_versions(types)
        .into_iter()
        .find(|(k, _, _)| k == key)?;
    let mut paths = Map::new();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.versions.contains(&version))
    {
        let scope = if t.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let gvk = json!({"group": t.group, "version": version, "kind": t.kind});
        let parameters: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
            .iter()
            .map(|name| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
            .collect();
        let operation = json!({
            "operationId": format!("patch{}", t.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": parameters,
            "responses": {"200": {"description": "OK"}},
        });
        let mut item = json!({"patch": operation});
        if t.status_subresource {
            paths.insert(
                format!("/{key}/{scope}{}/{{name}}/status", t.plural),
                item.clone(),
            );
        }
        item["put"] = json!({
            "operationId": format!("replace{}", t.kind),
            "x-kubernetes-action": "put",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": parameters,
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(format!("/{key}/{scope}{}/{{name}}", t.plural), item);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.1"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// The index at `/openapi/v3`: each group version's document with a hash
/// that changes when the document does (clients cache by it).
pub fn index(types: &[ResourceType]) -> Value {
    let mut paths = Map::new();
    for (key, _, _) in group_versions(types) {
        let hash = document(types, &key)
            .map(|doc| fnv(doc.to_string().as_bytes()))
            .unwrap_or(0);
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
