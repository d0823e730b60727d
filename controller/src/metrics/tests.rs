//! Tests of the metric definitions through their text exposition, of the
//! reconcile measurer (in paused tokio time), of `forget_stack`, of the
//! Backend decorator on the in-memory engine, and `promtool check metrics`.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::*;
use crate::docker::fake::FakeBackend;
use crate::docker::{ActionKind, Backend, ProjectMeta};
use crate::model::Project;
use crate::plan::{Action, Condition};

/// One sample line of the text format: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a text exposition. Label values in these tests hold no
/// quotes, commas or escapes, so splitting is enough.
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap(),
            }
        })
        .collect()
}

/// The value of the one series `name{labels}` (labels given exactly).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples(text)
        .into_iter()
        .find(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
}

/// The `# TYPE` of a family.
fn type_of(text: &str, name: &str) -> Option<String> {
    let prefix = format!("# TYPE {name} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(str::to_owned)
}

/// Series (not families) whose `stack` label is `stack`.
fn series_of_stack(text: &str, stack: &str) -> Vec<Sample> {
    samples(text)
        .into_iter()
        .filter(|s| s.labels.get("stack").map(String::as_str) == Some(stack))
        .collect()
}

/// Sets every stack-labelled metric of `stack` once.
fn populate(metrics: &Metrics, stack: &str) {
    metrics
        .count_and_measure(stack)
        .result(ReconcileResult::Success);
    metrics.reconcile_failed(stack, "engine_error");
    metrics.drift_repaired(stack, "removed");
    metrics.set_stack_ready(stack, true);
    metrics.set_service_replicas(stack, "web", "desired", 2);
    metrics.set_service_replicas(stack, "web", "running", 2);
    metrics.set_service_replicas(stack, "db", "healthy", 1);
    metrics.source_error(stack, "parse");
}

#[test]
fn a_new_registry_exposes_build_info_queue_depth_and_the_process() {
    let text = Metrics::new().encode();
    assert_eq!(
        type_of(&text, "stackd_build_info").as_deref(),
        Some("gauge")
    );
    assert_eq!(
        value(
            &text,
            "stackd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(value(&text, "stackd_queue_depth", &[]), Some(0.0));
    assert_eq!(
        type_of(&text, "stackd_queue_depth").as_deref(),
        Some("gauge")
    );
    #[cfg(target_os = "linux")]
    {
        let rss = value(&text, "process_resident_memory_bytes", &[]).unwrap();
        assert!(rss > 1e6, "{rss}");
        assert_eq!(
            type_of(&text, "process_cpu_seconds_total").as_deref(),
            Some("counter")
        );
    }
    // Families without a series yet are left out, not shown empty.
    assert!(!text.contains("stackd_reconcile_total"), "{text}");
}

#[test]
fn each_metric_is_exposed_with_its_name_type_and_labels() {
    let metrics = Metrics::new();
    populate(&metrics, "shop");
    metrics.set_queue_depth(7);
    metrics.backend_request("docker", "create_container", "success");
    metrics.backend_request("docker", "create_container", "success");
    metrics.backend_request("docker", "observe", "error");
    let text = metrics.encode();

    for (name, kind) in [
        ("stackd_reconcile_total", "counter"),
        ("stackd_reconcile_errors_total", "counter"),
        ("stackd_reconcile_duration_seconds", "histogram"),
        ("stackd_queue_depth", "gauge"),
        ("stackd_drift_repairs_total", "counter"),
        ("stackd_stack_ready", "gauge"),
        ("stackd_service_replicas", "gauge"),
        ("stackd_source_errors_total", "counter"),
        ("stackd_backend_requests_total", "counter"),
        ("stackd_build_info", "gauge"),
    ] {
        assert_eq!(type_of(&text, name).as_deref(), Some(kind), "{name}");
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has help");
    }
    let shop = ("stack", "shop");
    let at = |name: &str, labels: &[(&str, &str)]| value(&text, name, labels);
    assert_eq!(
        at("stackd_reconcile_total", &[shop, ("result", "success")]),
        Some(1.0)
    );
    assert_eq!(
        at(
            "stackd_reconcile_errors_total",
            &[shop, ("reason", "engine_error")]
        ),
        Some(1.0)
    );
    assert_eq!(
        at("stackd_reconcile_duration_seconds_count", &[shop]),
        Some(1.0)
    );
    assert_eq!(at("stackd_queue_depth", &[]), Some(7.0));
    assert_eq!(
        at("stackd_drift_repairs_total", &[shop, ("kind", "removed")]),
        Some(1.0)
    );
    assert_eq!(at("stackd_stack_ready", &[shop]), Some(1.0));
    assert_eq!(
        at(
            "stackd_service_replicas",
            &[shop, ("service", "web"), ("state", "desired")]
        ),
        Some(2.0)
    );
    assert_eq!(
        at(
            "stackd_service_replicas",
            &[shop, ("service", "db"), ("state", "healthy")]
        ),
        Some(1.0)
    );
    assert_eq!(
        at("stackd_source_errors_total", &[shop, ("kind", "parse")]),
        Some(1.0)
    );
    assert_eq!(
        at(
            "stackd_backend_requests_total",
            &[
                ("backend", "docker"),
                ("operation", "create_container"),
                ("outcome", "success")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        at(
            "stackd_backend_requests_total",
            &[
                ("backend", "docker"),
                ("operation", "observe"),
                ("outcome", "error")
            ]
        ),
        Some(1.0)
    );
}

#[test]
fn a_stack_that_stops_being_ready_reads_zero() {
    let metrics = Metrics::new();
    metrics.set_stack_ready("shop", true);
    metrics.set_stack_ready("shop", false);
    let text = metrics.encode();
    assert_eq!(
        value(&text, "stackd_stack_ready", &[("stack", "shop")]),
        Some(0.0)
    );
}

#[test]
fn the_histogram_has_every_bucket_from_a_millisecond_to_ten_minutes() {
    let metrics = Metrics::new();
    metrics
        .count_and_measure("shop")
        .result(ReconcileResult::Skipped);
    let text = metrics.encode();
    let les: Vec<String> = samples(&text)
        .into_iter()
        .filter(|s| s.name == "stackd_reconcile_duration_seconds_bucket")
        .map(|s| s.labels["le"].clone())
        .collect();
    let mut want: Vec<String> = RECONCILE_DURATION_BUCKETS
        .iter()
        .map(|b| b.to_string())
        .collect();
    want.push("+Inf".into());
    assert_eq!(les, want);
    assert!(RECONCILE_DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test(start_paused = true)]
async fn the_measurer_observes_the_time_until_its_result() {
    let metrics = Metrics::new();
    let measurer = metrics.count_and_measure("shop");
    tokio::time::advance(Duration::from_millis(300)).await;
    // Nothing is recorded until the reconcile ends.
    assert_eq!(
        value(
            &metrics.encode(),
            "stackd_reconcile_duration_seconds_count",
            &[("stack", "shop")]
        ),
        None
    );
    measurer.result(ReconcileResult::Success);

    let text = metrics.encode();
    let shop = ("stack", "shop");
    let sum = value(&text, "stackd_reconcile_duration_seconds_sum", &[shop]).unwrap();
    assert!((sum - 0.3).abs() < 1e-3, "{sum}");
    let bucket = |le| {
        value(
            &text,
            "stackd_reconcile_duration_seconds_bucket",
            &[shop, ("le", le)],
        )
    };
    assert_eq!(bucket("0.2"), Some(0.0));
    assert_eq!(bucket("0.5"), Some(1.0));
    assert_eq!(bucket("+Inf"), Some(1.0));
    assert_eq!(
        value(
            &text,
            "stackd_reconcile_total",
            &[shop, ("result", "success")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "stackd_reconcile_total",
            &[shop, ("result", "error")]
        ),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn a_measurer_dropped_without_a_result_counts_one_error() {
    let metrics = Metrics::new();
    async fn reconcile(metrics: &Metrics) -> Result<(), &'static str> {
        let measurer = metrics.count_and_measure("shop");
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err("returned early")?;
        measurer.result(ReconcileResult::Success);
        Ok(())
    }
    assert!(reconcile(&metrics).await.is_err());
    metrics
        .count_and_measure("shop")
        .result(ReconcileResult::Error);

    let text = metrics.encode();
    let shop = ("stack", "shop");
    assert_eq!(
        value(
            &text,
            "stackd_reconcile_total",
            &[shop, ("result", "error")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "stackd_reconcile_duration_seconds_count", &[shop]),
        Some(2.0)
    );
    let sum = value(&text, "stackd_reconcile_duration_seconds_sum", &[shop]).unwrap();
    assert!((sum - 0.02).abs() < 1e-3, "{sum}");
}

#[test]
fn forget_stack_removes_every_series_of_that_stack_and_no_other() {
    let metrics = Metrics::new();
    populate(&metrics, "shop");
    populate(&metrics, "blog");
    metrics.backend_request("docker", "observe", "success");
    let before = metrics.encode();
    // 1 run + 1 error + (18 buckets + Inf + sum + count) + 1 drift + 1 ready
    // + 3 replicas + 1 source error.
    assert_eq!(series_of_stack(&before, "shop").len(), 29);

    metrics.forget_stack("shop");
    let after = metrics.encode();
    assert_eq!(series_of_stack(&after, "shop"), vec![]);
    assert_eq!(
        series_of_stack(&after, "blog"),
        series_of_stack(&before, "blog")
    );
    assert_eq!(
        value(
            &after,
            "stackd_backend_requests_total",
            &[
                ("backend", "docker"),
                ("operation", "observe"),
                ("outcome", "success")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "stackd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );

    // A stack created again under the same name starts from zero.
    metrics.drift_repaired("shop", "stopped");
    let again = metrics.encode();
    assert_eq!(series_of_stack(&again, "shop").len(), 1);
}

#[test]
fn forget_service_removes_only_that_services_replica_gauges() {
    let metrics = Metrics::new();
    populate(&metrics, "shop");
    populate(&metrics, "blog");
    metrics.forget_service("shop", "web");
    let text = metrics.encode();
    let replicas = |stack: &str| -> Vec<(String, String)> {
        samples(&text)
            .into_iter()
            .filter(|s| s.name == "stackd_service_replicas" && s.labels["stack"] == stack)
            .map(|s| (s.labels["service"].clone(), s.labels["state"].clone()))
            .collect()
    };
    assert_eq!(replicas("shop"), vec![("db".into(), "healthy".into())]);
    assert_eq!(replicas("blog").len(), 3);
    assert_eq!(
        value(&text, "stackd_stack_ready", &[("stack", "shop")]),
        Some(1.0)
    );
}

#[test]
fn error_text_given_as_a_label_word_is_counted_as_other() {
    let metrics = Metrics::new();
    metrics.reconcile_failed("shop", "container 4f2a9c is not running: exit 137");
    metrics.source_error("shop", "Parse");
    metrics.drift_repaired("shop", &"x".repeat(49));
    metrics.reconcile_failed("shop", "timed_out");
    let text = metrics.encode();
    let shop = ("stack", "shop");
    assert_eq!(
        value(
            &text,
            "stackd_reconcile_errors_total",
            &[shop, ("reason", "other")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "stackd_reconcile_errors_total",
            &[shop, ("reason", "timed_out")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "stackd_source_errors_total",
            &[shop, ("kind", "other")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "stackd_drift_repairs_total",
            &[shop, ("kind", "other")]
        ),
        Some(1.0)
    );
    assert!(!text.contains("4f2a9c"), "{text}");
    assert_eq!(bounded("config_changed"), "config_changed");
    assert_eq!(bounded("missing_file2"), "missing_file2");
    assert_eq!(bounded("_x"), "other");
    assert_eq!(bounded(""), "other");
}

#[test]
fn clones_record_into_the_same_registry() {
    let metrics = Metrics::new();
    let clone = metrics.clone();
    clone.set_queue_depth(3);
    assert_eq!(
        value(&metrics.encode(), "stackd_queue_depth", &[]),
        Some(3.0)
    );
}

fn project() -> Project {
    serde_json::from_value(serde_json::json!({
        "name": "shop",
        "services": {"web": {"image": "busybox", "pull_policy": "never"}},
        "networks": {"default": {"name": "shop_default"}},
    }))
    .unwrap()
}

fn meta() -> ProjectMeta {
    ProjectMeta {
        working_dir: "/srv".into(),
        config_files: vec!["/srv/compose.yaml".into()],
        config_hashes: [("web".to_owned(), "h1".to_owned())].into(),
        variables: Default::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn the_instrumented_backend_counts_each_call_by_operation_and_outcome() {
    let metrics = Metrics::new();
    let backend = InstrumentedBackend::new(FakeBackend::new(), metrics.clone(), "docker");
    let (p, m) = (project(), meta());
    backend.inner().add_image("busybox");
    backend.observe(&p, true).await.unwrap();
    backend.inner().fail_observe(500, 1);
    assert!(backend.observe(&p, false).await.is_err());
    let network = Action::CreateNetwork {
        network: "default".into(),
    };
    backend.apply(&p, &m, &network).await.unwrap();
    let create = Action::CreateContainer {
        service: "web".into(),
        number: 1,
        name: "shop-web-1".into(),
    };
    backend
        .inner()
        .fail_next(ActionKind::CreateContainer, 500, 1);
    assert!(backend.apply(&p, &m, &create).await.is_err());
    backend.apply(&p, &m, &create).await.unwrap();
    let start = Action::StartContainer {
        name: "shop-web-1".into(),
    };
    backend.apply(&p, &m, &start).await.unwrap();
    backend
        .wait_for(&p, "web", Condition::ServiceStarted, None)
        .await
        .unwrap();
    backend.observe_containers(&p).await.unwrap();
    let references = ["busybox".to_owned()].into();
    backend.image_ids(&references).await.unwrap();

    let text = metrics.encode();
    let count = |operation: &str, outcome: &str| {
        value(
            &text,
            "stackd_backend_requests_total",
            &[
                ("backend", "docker"),
                ("operation", operation),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(count("observe", "success"), Some(2.0));
    assert_eq!(count("observe", "error"), Some(1.0));
    assert_eq!(count("list_images", "success"), Some(1.0));
    assert_eq!(count("create_network", "success"), Some(1.0));
    assert_eq!(count("create_container", "error"), Some(1.0));
    assert_eq!(count("create_container", "success"), Some(1.0));
    assert_eq!(count("start_container", "success"), Some(1.0));
    assert_eq!(count("wait_for", "success"), Some(1.0));
    let total: f64 = samples(&text)
        .iter()
        .filter(|s| s.name == "stackd_backend_requests_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(total, 9.0);
    // The decorator forwards: the engine saw every call once.
    assert_eq!(backend.inner().calls().len(), 9);
}

/// `name` on `PATH`, or `None` after saying why the test skips; under CI
/// (the `CI` variable set) a missing tool fails the test instead.
fn required_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed (Debian package prometheus) and CI is set"
        );
        eprintln!("skipped: {name} is not installed (Debian package prometheus)");
    }
    found
}

#[tokio::test(start_paused = true)]
async fn promtool_finds_no_problem_in_a_populated_registry() {
    let Some(promtool) = required_tool("promtool") else {
        return;
    };
    let metrics = Metrics::new();
    for stack in ["shop", "blog"] {
        populate(&metrics, stack);
        let measurer = metrics.count_and_measure(stack);
        tokio::time::advance(Duration::from_millis(40)).await;
        measurer.result(ReconcileResult::Error);
        metrics
            .count_and_measure(stack)
            .result(ReconcileResult::Skipped);
    }
    metrics.set_queue_depth(2);
    metrics.backend_request("docker", "observe", "success");
    metrics.backend_request("docker", "wait_for", "error");
    let text = metrics.encode();

    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n--- input ---\n{text}"
    );
}

#[test]
fn in_a_cluster_every_stack_series_carries_its_namespace_and_is_forgotten_per_namespace() {
    let metrics = Metrics::namespaced();
    metrics.set_stack_ready("apps/shop", true);
    metrics.set_stack_ready("staging/shop", false);
    metrics.set_service_replicas("apps/shop", "web", "desired", 2);
    metrics.reconcile_failed("apps/shop", "server_error");
    metrics
        .count_and_measure("apps/shop")
        .result(ReconcileResult::Success);
    let text = metrics.encode();
    assert_eq!(
        value(
            &text,
            "stackd_stack_ready",
            &[("namespace", "apps"), ("stack", "shop")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "stackd_stack_ready",
            &[("namespace", "staging"), ("stack", "shop")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            "stackd_service_replicas",
            &[
                ("namespace", "apps"),
                ("stack", "shop"),
                ("service", "web"),
                ("state", "desired")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "stackd_reconcile_total",
            &[
                ("namespace", "apps"),
                ("stack", "shop"),
                ("result", "success")
            ]
        ),
        Some(1.0)
    );
    metrics.forget_stack("apps/shop");
    let text = metrics.encode();
    assert_eq!(
        value(
            &text,
            "stackd_stack_ready",
            &[("namespace", "apps"), ("stack", "shop")]
        ),
        None
    );
    assert_eq!(
        value(
            &text,
            "stackd_stack_ready",
            &[("namespace", "staging"), ("stack", "shop")]
        ),
        Some(0.0),
        "the other namespace's stack of the same name stays"
    );
}

/// Family name → (type, label names) of every family with a series, after
/// each recorder was used once for `stack`.
fn families_after_every_recorder(
    metrics: &Metrics,
    stack: &str,
) -> BTreeMap<String, (String, Vec<String>)> {
    metrics
        .count_and_measure(stack)
        .result(ReconcileResult::Error);
    metrics.reconcile_failed(stack, "server_error");
    metrics.set_queue_depth(1);
    metrics.drift_repaired(stack, "removed");
    metrics.set_stack_ready(stack, true);
    metrics.set_service_replicas(stack, "web", "running", 1);
    metrics.source_error(stack, "parse");
    metrics.backend_request("kubernetes", "apply", "success");
    metrics
        .registry()
        .gather()
        .iter()
        .map(|family| {
            let mut labels: Vec<String> = family
                .get_metric()
                .first()
                .map(|m| m.get_label().iter().map(|l| l.name().to_owned()).collect())
                .unwrap_or_default();
            labels.sort();
            (
                family.name().to_owned(),
                (format!("{:?}", family.get_field_type()), labels),
            )
        })
        .collect()
}

#[test]
fn the_cluster_registry_has_every_family_of_watch_mode_with_namespace_on_the_per_stack_ones() {
    let watch = families_after_every_recorder(&Metrics::new(), "shop");
    let cluster = families_after_every_recorder(&Metrics::namespaced(), "apps/shop");
    assert_eq!(
        watch.keys().collect::<Vec<_>>(),
        cluster.keys().collect::<Vec<_>>()
    );
    let mut per_stack = 0;
    for (name, (kind, labels)) in &watch {
        let (cluster_kind, cluster_labels) = &cluster[name];
        assert_eq!(kind, cluster_kind, "{name}");
        let mut expected = labels.clone();
        if labels.iter().any(|l| l == "stack") {
            per_stack += 1;
            expected.push("namespace".to_owned());
            expected.sort();
        }
        assert_eq!(&expected, cluster_labels, "{name}");
    }
    assert_eq!(per_stack, 7, "{watch:?}");
}
