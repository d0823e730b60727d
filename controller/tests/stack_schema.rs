//! Every Stack the repository ships (`manifests/*/stack.yaml`, and any Stack
//! in a YAML block of README.md or docs/) passes the CRD's own openAPIV3Schema
//! (`crds/stack.yaml`) as the API server applies it with
//! fieldValidation=Strict: types, formats, required fields, enums, and
//! unknown fields as errors outside x-kubernetes-preserve-unknown-fields.
//! The check is `stack_schema/validate.py` (JSON Schema through Python's
//! jsonschema); deliberately bad Stacks prove it rejects what the API server
//! would. Without python3 and jsonschema these tests skip, unless `CI` is
//! set: then they fail.
// Tests may unwrap: a panic is how a test reports, helpers included.
#![allow(clippy::unwrap_used)]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::python_module_available;
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn jsonschema_available() -> bool {
    python_module_available("jsonschema", "pip install jsonschema")
}

fn crd() -> Value {
    let text = std::fs::read_to_string(root().join("crds/stack.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// validate.py's report on `objects` ((source, object) pairs).
fn validate(objects: &[(String, Value)]) -> Value {
    let request = json!({
        "crd": crd(),
        "objects": objects
            .iter()
            .map(|(source, object)| json!({"source": source, "object": object}))
            .collect::<Vec<_>>(),
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stack_schema/validate.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "validate.py printed no report:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        out.status.success(),
        report["errors"].as_array().unwrap().is_empty(),
        "exit status and report disagree: {report:#}"
    );
    report
}

/// The documents of a YAML stream that are Stacks.
fn stacks_in(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap()
        .into_iter()
        .filter(|doc| doc["kind"] == "Stack")
        .collect()
}

/// The Stacks of the fenced YAML blocks of a Markdown file.
fn stacks_in_markdown(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        let fence = line.trim_start();
        match &mut block {
            None if fence.starts_with("```yaml") || fence.starts_with("```yml") => {
                block = Some(String::new());
            }
            Some(body) if fence.starts_with("```") => {
                if body.contains("kind: Stack") {
                    out.extend(stacks_in(body));
                }
                block = None;
            }
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Every Stack the repository ships, by where it is.
fn shipped_stacks() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("manifests"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let Ok(text) = std::fs::read_to_string(dir.join("stack.yaml")) else {
            continue;
        };
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let stacks = stacks_in(&text);
        assert_eq!(stacks.len(), 1, "manifests/{name}/stack.yaml");
        out.extend(
            stacks
                .into_iter()
                .map(|s| (format!("manifests/{name}/stack.yaml"), s)),
        );
    }
    let mut docs = vec![root().join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    docs.extend(pages);
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for (i, stack) in stacks_in_markdown(&text).into_iter().enumerate() {
            out.push((format!("{name} (Stack {})", i + 1), stack));
        }
    }
    out
}

#[test]
fn every_shipped_stack_passes_the_crd_schema_strictly() {
    if !jsonschema_available() {
        return;
    }
    let stacks = shipped_stacks();
    let manifests = stacks
        .iter()
        .filter(|(source, _)| source.starts_with("manifests/"))
        .count();
    assert!(manifests >= 5, "{manifests} manifests/*/stack.yaml");
    let report = validate(&stacks);
    assert!(
        report["errors"].as_array().unwrap().is_empty(),
        "{:#}",
        report["errors"]
    );
    assert_eq!(report["validated"].as_array().unwrap().len(), stacks.len());
    eprintln!(
        "{} Stacks validated against crds/stack.yaml: {}",
        stacks.len(),
        report["validated"]
    );
}

/// A Stack with every field the schema has, status included: the baseline
/// each bad case changes one thing of.
fn full_stack() -> Value {
    json!({
        "apiVersion": "stackd.dev/v1alpha1",
        "kind": "Stack",
        "metadata": {"name": "shop", "namespace": "default", "labels": {"team": "web"}},
        "spec": {
            "compose": {"name": "shop", "services": {"web": {"image": "nginx:1.27", "entrypoint": null}}},
            "composeFiles": null,
            "profiles": ["debug"],
            "prune": true,
            "suspend": false,
        },
        "status": {
            "observedGeneration": 3,
            "serviceCount": 1,
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "Converged",
                "message": "all services ready",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 3,
            }],
            "services": {"web": {"desired": 2, "ready": 2, "image": "nginx:1.27"}},
        },
    })
}

fn set(stack: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    stack.pointer_mut(parent).unwrap()[key] = value;
}

fn remove(stack: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    stack
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key)
        .unwrap();
}

#[test]
fn a_stack_the_api_server_would_refuse_is_rejected_with_the_field_named() {
    if !jsonschema_available() {
        return;
    }
    // (what is wrong, the change to the full Stack, the path named, a word
    // of the message)
    type Change = fn(&mut Value);
    let cases: [(&str, Change, &str, &str); 14] = [
        (
            "unknown spec field",
            |s| set(s, "/spec/composeFile", json!(["compose.yaml"])),
            "spec",
            "composeFile",
        ),
        (
            "unknown top-level field",
            |s| set(s, "/extra", json!(1)),
            "",
            "extra",
        ),
        (
            "unknown field in a status condition",
            |s| set(s, "/status/conditions/0/severity", json!("High")),
            "status.conditions[0]",
            "severity",
        ),
        (
            "unknown field of a service's counts",
            |s| set(s, "/status/services/web/crashed", json!(1)),
            "status.services.web",
            "crashed",
        ),
        (
            "boolean as a string",
            |s| set(s, "/spec/suspend", json!("yes")),
            "spec.suspend",
            "boolean",
        ),
        (
            "list item of the wrong type",
            |s| set(s, "/spec/profiles", json!(["debug", 2])),
            "spec.profiles[1]",
            "string",
        ),
        (
            "compose that is not a map",
            |s| set(s, "/spec/compose", json!("services: {}")),
            "spec.compose",
            "object",
        ),
        ("missing spec", |s| remove(s, "/spec"), "", "spec"),
        (
            "condition without its required reason",
            |s| remove(s, "/status/conditions/0/reason"),
            "status.conditions[0]",
            "reason",
        ),
        (
            "int32 out of range",
            |s| set(s, "/status/serviceCount", json!(3_000_000_000_u64)),
            "status.serviceCount",
            "3000000000",
        ),
        (
            "timestamp that is not RFC 3339",
            |s| {
                set(
                    s,
                    "/status/conditions/0/lastTransitionTime",
                    json!("yesterday"),
                )
            },
            "status.conditions[0].lastTransitionTime",
            "date-time",
        ),
        (
            "apiVersion the CRD does not serve",
            |s| set(s, "/apiVersion", json!("stackd.dev/v1")),
            "apiVersion",
            "served",
        ),
        (
            "another kind",
            |s| set(s, "/kind", json!("Stak")),
            "kind",
            "Stack",
        ),
        (
            "name that is not a DNS subdomain",
            |s| set(s, "/metadata/name", json!("My_Shop")),
            "metadata.name",
            "does not match",
        ),
    ];
    let good = full_stack();
    let mut objects = vec![("full".to_string(), good.clone())];
    for (what, change, _, _) in &cases {
        let mut stack = good.clone();
        change(&mut stack);
        objects.push(((*what).to_string(), stack));
    }
    let report = validate(&objects);
    assert_eq!(report["validated"], json!(["full"]), "{report:#}");
    let errors = report["errors"].as_array().unwrap();
    for (what, _, path, word) in cases {
        let found: Vec<&Value> = errors.iter().filter(|e| e["source"] == what).collect();
        assert!(!found.is_empty(), "{what}: accepted");
        assert!(
            found
                .iter()
                .any(|e| e["path"] == path && e["message"].as_str().unwrap().contains(word)),
            "{what}: no error at {path:?} naming {word:?}: {found:#?}"
        );
    }
    // Nulls: kept where nullable, pruned (not an error) elsewhere, as the
    // API server does.
    let mut nulls = good.clone();
    set(&mut nulls, "/spec/suspend", Value::Null);
    set(&mut nulls, "/status/observedGeneration", Value::Null);
    let report = validate(&[("nulls".to_string(), nulls)]);
    assert_eq!(report["validated"], json!(["nulls"]), "{report:#}");
}

#[test]
fn a_stack_in_a_markdown_yaml_block_is_found() {
    let text = "Intro\n\n```yaml\napiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: a}\nspec: {compose: {}}\n---\napiVersion: v1\nkind: ConfigMap\n```\n\n```sh\nkind: Stack\n```\n";
    let stacks = stacks_in_markdown(text);
    assert_eq!(stacks.len(), 1);
    assert_eq!(stacks[0]["metadata"]["name"], "a");
}
