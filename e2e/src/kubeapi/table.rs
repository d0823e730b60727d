//! Server-side printing: the `meta.k8s.io/v1` Table `kubectl get` asks for,
//! with a CRD's additionalPrinterColumns evaluated by a simple JSONPath.

use serde_json::{json, Value};

use super::clock;
use super::resources::{age_column, Column, ResourceType};

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// Reads `includeObject`.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// Columns whose value is computed rather than selected carry a path
/// starting with `=` naming the computation (see [`computed`]).
fn column(name: &str, kind: &str, path: &str) -> Column {
    Column {
        name: name.to_string(),
        kind: kind.to_string(),
        format: String::new(),
        priority: 0,
        description: String::new(),
        json_path: path.to_string(),
    }
}

/// The columns `kubectl get` shows after Name, as the real server prints
/// the built-in types it is most often asked for.
fn columns(rt: &ResourceType, version: &str) -> Vec<Column> {
    if let Some(columns) = rt.columns_of(version) {
        return columns.to_vec();
    }
    let mut columns = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => vec![column("Status", "string", ".status.phase")],
        ("", "pods") => vec![
            column("Ready", "string", "=pod-ready"),
            column("Status", "string", ".status.phase"),
            column("Restarts", "integer", "=pod-restarts"),
        ],
        ("", "services") => vec![
            column("Type", "string", ".spec.type"),
            column("Cluster-IP", "string", ".spec.clusterIP"),
            column("Ports", "string", "=service-ports"),
        ],
        ("", "events") => vec![
            column("Type", "string", ".type"),
            column("Reason", "string", ".reason"),
            column("Object", "string", "=event-object"),
            column("Message", "string", ".message"),
        ],
        ("apps", "deployments") => vec![
            column("Ready", "string", "=ready-of-replicas"),
            column("Up-to-date", "integer", ".status.updatedReplicas"),
            column("Available", "integer", ".status.availableReplicas"),
        ],
        ("apps", "statefulsets" | "replicasets") => {
            vec![column("Ready", "string", "=ready-of-replicas")]
        }
        ("batch", "jobs") => vec![column("Completions", "string", "=job-completions")],
        _ => Vec::new(),
    };
    columns.extend(age_column());
    columns
}

/// The value of a computed (`=`) column.
fn computed(object: &Value, name: &str) -> Value {
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    match name {
        "ready-of-replicas" => json!(format!(
            "{}/{}",
            int(&object["status"]["readyReplicas"]),
            object["spec"]["replicas"].as_i64().unwrap_or(1)
        )),
        "job-completions" => json!(format!(
            "{}/{}",
            int(&object["status"]["succeeded"]),
            object["spec"]["completions"].as_i64().unwrap_or(1)
        )),
        "pod-ready" => {
            let statuses = object["status"]["containerStatuses"].as_array();
            let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
            let total = object["spec"]["containers"].as_array().map_or(0, Vec::len);
            json!(format!("{ready}/{total}"))
        }
        "pod-restarts" => json!(object["status"]["containerStatuses"]
            .as_array()
            .map_or(0, |s| s
                .iter()
                .map(|c| int(&c["restartCount"]))
                .sum::<i64>())),
        "service-ports" => {
            let ports: Vec<String> = object["spec"]["ports"]
                .as_array()
                .map(|ports| {
                    ports
                        .iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                int(&p["port"]),
                                p["protocol"].as_str().unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            })
        }
        "event-object" => {
            let involved = if object["regarding"].is_object() {
                &object["regarding"]
            } else {
                &object["involvedObject"]
            };
            json!(format!(
                "{}/{}",
                involved["kind"].as_str().unwrap_or("").to_lowercase(),
                involved["name"].as_str().unwrap_or("")
            ))
        }
        _ => Value::Null,
    }
}

/// A Table of `objects`.
pub fn table(
    rt: &ResourceType,
    version: &str,
    objects: &[Value],
    revision: u64,
    include: Include,
) -> Value {
    let columns = columns(rt, version);
    let mut definitions = vec![json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "Name must be unique within a namespace.",
        "priority": 0,
    })];
    definitions.extend(columns.iter().map(|c| {
        json!({
            "name": c.name,
            "type": c.kind,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        })
    }));
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut cells = vec![object["metadata"]["name"].clone()];
            cells.extend(columns.iter().map(|c| cell(object, c)));
            let mut row = json!({"cells": cells});
            match include {
                Include::None => {}
                Include::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": object["metadata"],
                    })
                }
                Include::Object => row["object"] = object.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": revision.to_string()},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn cell(object: &Value, column: &Column) -> Value {
    if let Some(name) = column.json_path.strip_prefix('=') {
        return computed(object, name);
    }
    let Some(value) = evaluate(object, &column.json_path).into_iter().next() else {
        return Value::Null;
    };
    match column.kind.as_str() {
        "date" => match value.as_str() {
            Some(text) => json!(clock::age(text)),
            None => Value::Null,
        },
        "integer" | "number" | "boolean" => value.clone(),
        _ => match value {
            Value::String(_) => value.clone(),
            Value::Null => Value::Null,
            other => json!(other.to_string()),
        },
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter {
        path: Vec<String>,
        equal: bool,
        literal: Value,
    },
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end > 0 {
                steps.push(Step::Field(after[..end].to_string()));
            }
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inner = after[..end].trim();
            rest = &after[end + 1..];
            if inner == "*" {
                steps.push(Step::All);
            } else if let Ok(index) = inner.parse() {
                steps.push(Step::Index(index));
            } else {
                let condition = inner.strip_prefix("?(")?.strip_suffix(')')?;
                let (left, equal, right) = if let Some((l, r)) = condition.split_once("==") {
                    (l, true, r)
                } else {
                    let (l, r) = condition.split_once("!=")?;
                    (l, false, r)
                };
                let path = left
                    .trim()
                    .strip_prefix("@.")?
                    .split('.')
                    .map(str::to_string)
                    .collect();
                let right = right.trim();
                let literal = if let Some(s) = right
                    .strip_prefix('"')
                    .and_then(|r| r.strip_suffix('"'))
                    .or_else(|| right.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
                {
                    json!(s)
                } else {
                    serde_json::from_str(right).ok()?
                };
                steps.push(Step::Filter {
                    path,
                    equal,
                    literal,
                });
            }
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Field(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    Some(steps)
}

/// The values a simple JSONPath selects (none when it is not one).
pub fn evaluate<'a>(object: &'a Value, path: &str) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![object];
    for step in &steps {
        let mut next = Vec::new();
        for value in current {
            match step {
                Step::Field(name) => next.extend(value.get(name)),
                Step::Index(i) => next.extend(value.get(*i)),
                Step::All => next.extend(value.as_array().into_iter().flatten()),
                Step::Filter {
                    path,
                    equal,
                    literal,
                } => {
                    for item in value.as_array().into_iter().flatten() {
                        let mut field = item;
                        for key in path {
                            field = &field[key.as_str()];
                        }
                        if (field == literal) == *equal {
                            next.push(item);
                        }
                    }
                }
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_row_shows_ready_of_desired_replicas() {
        let rt = crate::kubeapi::resources::builtin()
            .into_iter()
            .find(|t| t.plural == "deployments")
            .expect("deployments are built in");
        let deployment = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
                                "spec": {"replicas": 3},
                                "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let table = table(&rt, "v1", &[deployment], 7, Include::None);
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "2/3");
        assert_eq!(cells[2], 3);
        assert_eq!(table["columnDefinitions"][1]["name"], "Ready");
    }

    #[test]
    fn a_condition_filter_selects_the_ready_status() {
        let stack = json!({"status": {"conditions": [
            {"type": "Reconciling", "status": "False"},
            {"type": "Ready", "status": "True"},
        ], "serviceCount": 3}});
        let ready = evaluate(&stack, r#".status.conditions[?(@.type=="Ready")].status"#);
        assert_eq!(ready, [&json!("True")]);
        assert_eq!(evaluate(&stack, ".status.serviceCount"), [&json!(3)]);
        assert_eq!(evaluate(&stack, ".status.conditions[*].type").len(), 2);
        assert!(evaluate(&stack, ".status.missing").is_empty());
    }
}
