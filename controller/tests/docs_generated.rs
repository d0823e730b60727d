//! `docs/stack-api.md` is written from the Stack CRD's schema and
//! `docs/metrics.md` from the metrics registry, so neither can drift from
//! the code: the tests fail when the checked-in file differs, and
//! `STACKD_GOLDEN_WRITE=1` (what `just generate` sets) rewrites them.
// Tests may unwrap: a panic is how a test reports, helpers included.
#![allow(clippy::unwrap_used)]
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kube::core::CustomResourceExt;
use prometheus::proto::MetricType;
use serde_json::Value;
use stackd::metrics::{Metrics, ReconcileResult};
use stackd::model::Stack;

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// Compares `text` with the checked-in file, or writes it under `STACKD_GOLDEN_WRITE=1`.
fn check_or_write(name: &str, text: &str) {
    let path = docs().join(name);
    if std::env::var("STACKD_GOLDEN_WRITE").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(docs()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == text,
        "docs/{name} is out of date: run `just generate` and review the difference"
    );
}

/// Markdown table cells hold one line; pipes would end the cell.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn type_of(schema: &Value) -> String {
    let base = schema["type"].as_str().unwrap_or("any").to_string();
    match base.as_str() {
        "array" => format!("array of {}", type_of(&schema["items"])),
        "object"
            if schema
                .get("additionalProperties")
                .is_some_and(Value::is_object) =>
        {
            format!("map of {}", type_of(&schema["additionalProperties"]))
        }
        _ => match schema["format"].as_str() {
            Some(format) => format!("{base} ({format})"),
            None => base,
        },
    }
}

/// One row per field, depth first, in the schema's order.
fn field_rows(schema: &Value, prefix: &str, rows: &mut Vec<[String; 4]>) {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    for (name, child) in properties {
        let path = format!("{prefix}{name}");
        let mut description = child["description"].as_str().unwrap_or("").to_string();
        if child["x-kubernetes-preserve-unknown-fields"] == true {
            description.push_str(" (Free-form: any fields are kept.)");
        }
        if let Some(default) = child.get("default") {
            description.push_str(&format!(" Default: `{default}`."));
        }
        if let Some(choices) = child["enum"].as_array() {
            let choices: Vec<String> = choices.iter().map(|c| format!("`{c}`")).collect();
            description.push_str(&format!(" One of {}.", choices.join(", ")));
        }
        rows.push([
            format!("`{path}`"),
            type_of(child),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                ""
            }
            .to_string(),
            cell(&description),
        ]);
        field_rows(child, &format!("{path}."), rows);
        if child["type"] == "array" {
            field_rows(&child["items"], &format!("{path}[]."), rows);
        }
        if let Some(values) = child.get("additionalProperties").filter(|v| v.is_object()) {
            field_rows(values, &format!("{path}.<name>."), rows);
        }
    }
}

fn stack_api_markdown() -> String {
    let crd = serde_json::to_value(Stack::crd()).unwrap();
    let spec = &crd["spec"];
    let mut text = String::new();
    writeln!(
        text,
        "# The Stack API\n\n\
         <!-- Generated from the CRD (`stackd crd`, crds/stack.yaml) by \
         controller/tests/docs_generated.rs: `just generate` rewrites it. -->\n"
    )
    .unwrap();
    writeln!(
        text,
        "Group `{}`, kind `{}` (plural `{}`, short names {}), scope {}.\n",
        spec["group"].as_str().unwrap(),
        spec["names"]["kind"].as_str().unwrap(),
        spec["names"]["plural"].as_str().unwrap(),
        spec["names"]["shortNames"]
            .as_array()
            .map(|n| n
                .iter()
                .map(|s| format!("`{}`", s.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_else(|| "none".into()),
        spec["scope"].as_str().unwrap()
    )
    .unwrap();
    for version in spec["versions"].as_array().unwrap() {
        let name = version["name"].as_str().unwrap();
        writeln!(
            text,
            "## `{}/{name}`\n\nServed: {}. Storage: {}. Subresources: {}.\n",
            spec["group"].as_str().unwrap(),
            version["served"],
            version["storage"],
            version["subresources"]
                .as_object()
                .map(|s| s
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_else(|| "none".into())
        )
        .unwrap();
        if let Some(columns) = version["additionalPrinterColumns"].as_array() {
            writeln!(
                text,
                "### Columns of `kubectl get stacks`\n\n| column | type | from | meaning |\n|---|---|---|---|"
            )
            .unwrap();
            for column in columns {
                writeln!(
                    text,
                    "| {} | {} | `{}` | {} |",
                    column["name"].as_str().unwrap_or_default(),
                    column["type"].as_str().unwrap_or_default(),
                    column["jsonPath"].as_str().unwrap_or_default(),
                    cell(column["description"].as_str().unwrap_or_default())
                )
                .unwrap();
            }
            text.push('\n');
        }
        let schema = &version["schema"]["openAPIV3Schema"];
        for part in ["spec", "status"] {
            let Some(part_schema) = schema["properties"].get(part) else {
                continue;
            };
            writeln!(
                text,
                "### `{part}`\n\n{}\n\n| field | type | required | description |\n|---|---|---|---|",
                cell(part_schema["description"].as_str().unwrap_or_default())
            )
            .unwrap();
            let mut rows = Vec::new();
            field_rows(part_schema, &format!("{part}."), &mut rows);
            for [field, kind, required, description] in rows {
                writeln!(text, "| {field} | {kind} | {required} | {description} |").unwrap();
            }
            text.push('\n');
        }
    }
    text.truncate(text.trim_end().len());
    text.push('\n');
    text
}

fn metric_type(kind: MetricType) -> &'static str {
    match kind {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        MetricType::HISTOGRAM => "histogram",
        MetricType::SUMMARY => "summary",
        MetricType::UNTYPED => "untyped",
    }
}

fn metrics_markdown() -> String {
    // A labelled metric has no series until it is first used: use each
    // recorder once so the registry reports every family with its labels.
    let metrics = Metrics::new();
    metrics
        .count_and_measure("s")
        .result(ReconcileResult::Success);
    metrics.reconcile_failed("s", "reason");
    metrics.set_queue_depth(1);
    metrics.drift_repaired("s", "kind");
    metrics.set_stack_ready("s", true);
    metrics.set_service_replicas("s", "svc", "ready", 1);
    metrics.source_error("s", "kind");
    metrics.backend_request("docker", "op", "ok");
    let mut families = metrics.registry().gather();
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut text = String::from(
        "# Metrics\n\n\
         <!-- Generated from the metrics registry (controller/src/metrics/) by \
         controller/tests/docs_generated.rs: `just generate` rewrites it. -->\n\n\
         `stackd watch` and `stackd controller` serve these on `--metrics-addr` \
         (`/metrics`, Prometheus text format), beside `/healthz` and `/readyz`. \
         Label values are bounded: stack, namespace and service names, and fixed \
         words for result, reason, kind, state, operation and outcome; never \
         container ids or error text.\n\n\
         In `stackd controller` every series labelled `stack` is labelled \
         `namespace` too, and `stackd_service_replicas` reads the owned \
         workload's status: `running` is the pods it has that are not \
         terminating, ready or not (Deployment and StatefulSet \
         `status.replicas`, DaemonSet `status.currentNumberScheduled`, Job \
         `status.active`), `healthy` the ready ones (`readyReplicas`, \
         `numberReady`; a Job: `succeeded`).\n\n\
         | metric | type | labels | help |\n|---|---|---|---|\n",
    );
    let mut process = Vec::new();
    for family in &families {
        let name = family.name();
        let labels: Vec<String> = family
            .get_metric()
            .first()
            .map(|m| {
                m.get_label()
                    .iter()
                    .map(|l| format!("`{}`", l.name()))
                    .collect()
            })
            .unwrap_or_default();
        let row = format!(
            "| `{name}` | {} | {} | {} |\n",
            metric_type(family.get_field_type()),
            if labels.is_empty() {
                "none".to_string()
            } else {
                labels.join(", ")
            },
            cell(family.help())
        );
        if name.starts_with("stackd_") {
            text.push_str(&row);
        } else {
            process.push(row);
        }
    }
    let histograms: Vec<String> = families
        .iter()
        .filter(|f| f.get_field_type() == MetricType::HISTOGRAM)
        .filter_map(|f| {
            let buckets = f.get_metric().first()?.get_histogram().get_bucket();
            let bounds: Vec<String> = buckets
                .iter()
                .map(|b| b.upper_bound().to_string())
                .collect();
            Some(format!("`{}`: {}", f.name(), bounds.join(", ")))
        })
        .collect();
    if !histograms.is_empty() {
        text.push_str("\nHistogram buckets (seconds, upper bounds):\n\n");
        for line in histograms {
            text.push_str(&format!("- {line}\n"));
        }
    }
    if !process.is_empty() {
        text.push_str(
            "\n## Process metrics (Linux)\n\n\
             The standard process collector, for the controller process itself.\n\n\
             | metric | type | labels | help |\n|---|---|---|---|\n",
        );
        for row in process {
            text.push_str(&row);
        }
    }
    text
}

#[test]
fn docs_stack_api_md_is_generated_from_the_crd_schema() {
    let text = stack_api_markdown();
    for field in ["`spec.compose`", "`spec.suspend`", "`status.conditions`"] {
        assert!(text.contains(field), "no row for {field}");
    }
    check_or_write("stack-api.md", &text);
}

#[test]
fn docs_metrics_md_is_generated_from_the_metrics_registry() {
    let text = metrics_markdown();
    for name in [
        "stackd_reconcile_total",
        "stackd_reconcile_errors_total",
        "stackd_reconcile_duration_seconds",
        "stackd_queue_depth",
        "stackd_drift_repairs_total",
        "stackd_stack_ready",
        "stackd_service_replicas",
        "stackd_backend_requests_total",
        "stackd_source_errors_total",
        "stackd_build_info",
    ] {
        assert!(text.contains(&format!("`{name}`")), "{name} is missing");
    }
    check_or_write("metrics.md", &text);
}
