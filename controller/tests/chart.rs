//! The Helm chart (`charts/stackd`): `helm lint --strict` passes, it renders
//! with the default values and with each values file of `ci/`, every value
//! is documented and changed by a ci file in which it changes the rendering,
//! every rendered object passes kubernetes-validate strictly (the Prometheus
//! Operator's kinds, which have no schema there, are checked for apiVersion,
//! kind, metadata and spec and listed as not schema-validated), the RBAC
//! grants exactly what the controller calls, values.schema.json rejects bad
//! values, and the chart's CRD, alerts and dashboard are the repository's.
//! Without helm or kubernetes-validate these tests skip, unless `CI` is set:
//! then they fail.
// Tests may unwrap: a panic is how a test reports, helpers included.
#![allow(clippy::unwrap_used)]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{python_module_available, tool_available};
use serde_json::Value;

/// The renderings the tests check: the defaults (`None`), then each values
/// file of `charts/stackd/ci/` (the ones `just chart` lints and renders), by
/// name.
fn renderings() -> Vec<Option<String>> {
    let mut files: Vec<String> = std::fs::read_dir(chart().join("ci"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with("-values.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    std::iter::once(None)
        .chain(files.into_iter().map(Some))
        .collect()
}

const NAMESPACE: &str = "stackd-system";

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/stackd")
}

fn helm_available() -> bool {
    tool_available("helm", &["version"], "e2e/tools/install-kube-tools.sh")
}

/// `helm template` of the chart with `values` (paths), or its error text.
fn render(values: &[PathBuf], sets: &[&str]) -> Result<String, String> {
    render_release("stackd", values, sets)
}

/// `render` under another release name.
fn render_release(release: &str, values: &[PathBuf], sets: &[&str]) -> Result<String, String> {
    let mut command = Command::new("helm");
    command.args(["template", release]).arg(chart()).args([
        "--namespace",
        NAMESPACE,
        "--include-crds",
    ]);
    for file in values {
        command.arg("-f").arg(file);
    }
    for set in sets {
        command.args(["--set", set]);
    }
    let out = command.output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn values_path(name: Option<&str>) -> Vec<PathBuf> {
    name.map(|n| vec![chart().join("ci").join(n)])
        .unwrap_or_default()
}

fn objects(rendered: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(rendered)
        .unwrap()
        .into_iter()
        .filter(|doc| !doc.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

#[test]
fn helm_lint_strict_accepts_the_chart_with_each_set_of_values() {
    if !helm_available() {
        return;
    }
    for values in renderings() {
        let mut command = Command::new("helm");
        command.args(["lint", "--strict"]).arg(chart());
        for file in values_path(values.as_deref()) {
            command.arg("-f").arg(file);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "helm lint --strict with {values:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_rendered_object_passes_strict_schema_validation() {
    if !helm_available()
        || !python_module_available("kubernetes_validate", "pip install kubernetes-validate")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let renderings = renderings();
    for (i, values) in renderings.iter().enumerate() {
        let rendered = render(&values_path(values.as_deref()), &[]).unwrap();
        let file = dir.path().join(format!("rendering-{i}.yaml"));
        std::fs::write(&file, rendered).unwrap();
        files.push(file);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chart/validate.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["-k", "1.33.0", "-k", "1.37.0"])
        .args(&files)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "validate.py printed no report:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{:#}", report["errors"]);
    let validated = report["validated"].as_array().unwrap();
    let unchecked = report["not_schema_validated"].as_array().unwrap();
    eprintln!(
        "{} renderings: {} objects schema-validated (Kubernetes 1.33 and 1.37), {} not schema-validated: {}",
        renderings.len(),
        validated.len(),
        unchecked.len(),
        unchecked
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let kinds: BTreeSet<&str> = validated
        .iter()
        .filter_map(|n| n.as_str()?.split('/').next())
        .collect();
    for kind in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "ConfigMap",
    ] {
        assert!(kinds.contains(kind), "no {kind} was rendered and validated");
    }
    let unchecked_kinds: BTreeSet<&str> = unchecked
        .iter()
        .filter_map(|n| n.as_str()?.split('/').next())
        .collect();
    assert_eq!(
        unchecked_kinds,
        BTreeSet::from(["PrometheusRule", "ServiceMonitor"])
    );
}

/// Every (apiGroup, resource, verb) a set of RBAC rules grants.
fn grants(rules: &[&Value]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for role in rules {
        for rule in role["rules"].as_array().unwrap() {
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    for verb in rule["verbs"].as_array().unwrap() {
                        out.insert((
                            group.as_str().unwrap().to_string(),
                            resource.as_str().unwrap().to_string(),
                            verb.as_str().unwrap().to_string(),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// What the controller calls, and what the API server checks for its
/// writes: nothing more may be granted. The e2e test kube_controller.rs
/// derives the same from the controller's requests against a running
/// server; this list keeps the chart's rules readable at a glance.
fn expected_grants() -> BTreeSet<(String, String, String)> {
    // Read through list and watch, write by server-side apply (patch, and
    // create when the object is new), delete when pruned or cleaned up.
    let managed = ["list", "watch", "create", "patch", "delete"];
    let mut out = BTreeSet::new();
    let mut add = |group: &str, resource: &str, verbs: &[&str]| {
        for verb in verbs {
            out.insert((group.into(), resource.into(), (*verb).into()));
        }
    };
    add("stackd.dev", "stacks", &["list", "watch", "patch"]);
    add("stackd.dev", "stacks/status", &["patch"]);
    // blockOwnerDeletion on the owner references (admission checks it).
    add("stackd.dev", "stacks/finalizers", &["update"]);
    for (group, resource) in [
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("", "services"),
        ("", "configmaps"),
        ("", "secrets"),
        ("", "serviceaccounts"),
        ("networking.k8s.io", "networkpolicies"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
    ] {
        add(group, resource, &managed);
    }
    // Claims are listed, never watched.
    add(
        "",
        "persistentvolumeclaims",
        &["list", "create", "patch", "delete"],
    );
    // The wait containers' Role grants get, list and watch on pods and
    // jobs, and a Role may grant only what its creator holds.
    add("batch", "jobs", &managed);
    add("batch", "jobs", &["get"]);
    add("", "pods", &["get", "list", "watch"]);
    add("events.k8s.io", "events", &["create", "patch"]);
    add(
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
    );
    out
}

/// Every kind `stackd convert` makes of the seed stacks is one the
/// controller may manage (so the RBAC keeps up with the translation).
#[test]
fn the_rbac_covers_every_kind_the_translation_makes_of_the_seed_stacks() {
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    let granted: BTreeSet<String> = expected_grants()
        .into_iter()
        .filter(|(_, _, verb)| verb == "create")
        .map(|(_, resource, _)| resource)
        .collect();
    let mut kinds = BTreeSet::new();
    for entry in std::fs::read_dir(&manifests).unwrap() {
        let dir = entry.unwrap().path();
        for file in ["kubernetes.yaml", "kubernetes.dev.yaml"] {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                continue;
            };
            for object in objects(&text) {
                kinds.insert(object["kind"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(kinds.len() >= 8, "{kinds:?}");
    for kind in kinds {
        let plural = match kind.as_str() {
            "NetworkPolicy" => "networkpolicies".to_string(),
            other => format!("{}s", other.to_lowercase()),
        };
        assert!(
            granted.contains(&plural),
            "{kind} ({plural}) is not granted"
        );
    }
}

fn controller_args(objects: &[Value]) -> Vec<String> {
    let deployment = find(objects, "Deployment")[0];
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cluster_scope_grants_exactly_what_the_controller_calls_in_every_namespace() {
    if !helm_available() {
        return;
    }
    let objects = objects(&render(&[], &[]).unwrap());
    let cluster_roles = find(&objects, "ClusterRole");
    let roles = find(&objects, "Role");
    assert_eq!(cluster_roles.len(), 1);
    assert_eq!(roles.len(), 1, "only the leader-election Role");
    let leases = grants(&roles);
    assert!(leases.iter().all(|(_, resource, _)| resource == "leases"));
    let all = &grants(&cluster_roles) | &leases;
    assert_eq!(all, expected_grants());
    assert_eq!(
        controller_args(&objects),
        ["controller", "--metrics-addr", "0.0.0.0:9477"]
    );
    let binding = find(&objects, "ClusterRoleBinding")[0];
    assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
}

#[test]
fn namespace_scope_grants_the_same_in_the_release_namespace_only() {
    if !helm_available() {
        return;
    }
    let objects = objects(&render(&values_path(Some("namespaced-values.yaml")), &[]).unwrap());
    assert!(find(&objects, "ClusterRole").is_empty());
    assert!(find(&objects, "ClusterRoleBinding").is_empty());
    let roles = find(&objects, "Role");
    assert_eq!(roles.len(), 2);
    assert!(roles
        .iter()
        .all(|r| r["metadata"]["namespace"] == NAMESPACE));
    assert_eq!(grants(&roles), expected_grants());
    assert_eq!(
        controller_args(&objects),
        [
            "controller",
            "--metrics-addr",
            "0.0.0.0:9477",
            "--namespace",
            NAMESPACE
        ]
    );
}

#[test]
fn the_controller_pod_runs_locked_down_with_probes_and_resources() {
    if !helm_available() {
        return;
    }
    for values in renderings() {
        let objects = objects(&render(&values_path(values.as_deref()), &[]).unwrap());
        let pod = &find(&objects, "Deployment")[0]["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{values:?}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let container = &pod["containers"][0];
        let security = &container["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        for bound in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    !container["resources"][bound][resource].is_null(),
                    "{values:?}: no {bound}.{resource}"
                );
            }
        }
    }
    // The chart's own arguments are a command line stackd accepts.
    for values in [None, Some("namespaced-values.yaml")] {
        let objects = objects(&render(&values_path(values), &[]).unwrap());
        let args = controller_args(&objects);
        let line = std::iter::once("stackd").chain(args.iter().map(String::as_str));
        let cli = <stackd::cli::Cli as clap::Parser>::try_parse_from(line).unwrap();
        assert!(
            matches!(cli.command, stackd::cli::Command::Controller(_)),
            "{values:?}: {args:?}"
        );
    }
    let toggled = objects(&render(&values_path(Some("every-value-values.yaml")), &[]).unwrap());
    let deployment = find(&toggled, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 3);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example/stackd:9.9.9");
    assert_eq!(
        controller_args(&toggled),
        [
            "controller",
            "--metrics-addr",
            "0.0.0.0:9100",
            "--namespace",
            NAMESPACE,
            "--resync",
            "10m"
        ]
    );
}

/// The leaf paths of a values tree: scalars, lists and empty maps.
fn leaves(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(child, &path, out);
            }
        }
        _ => out.push((prefix.to_string(), value.clone())),
    }
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn set_path(value: &mut Value, path: &str, new: Value) {
    let mut node = value;
    for key in path.split('.') {
        if !node.is_object() {
            *node = Value::Object(serde_json::Map::new());
        }
        node = node
            .as_object_mut()
            .unwrap()
            .entry(key)
            .or_insert(Value::Null);
    }
    *node = new;
}

#[test]
fn every_value_is_documented() {
    let text = std::fs::read_to_string(chart().join("values.yaml")).unwrap();
    let mut previous = "";
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let is_key = !trimmed.is_empty()
            && !trimmed.starts_with('#')
            && !trimmed.starts_with('-')
            && trimmed.contains(':');
        if is_key {
            assert!(
                previous.trim_start().starts_with('#'),
                "values.yaml:{}: `{}` has no comment above it",
                number + 1,
                trimmed
            );
        }
        if !trimmed.is_empty() {
            previous = line;
        }
    }
}

/// Every leaf of values.yaml is changed by some `ci/*-values.yaml`, and
/// every value a ci file changes takes effect there: putting that one value
/// back to its default, the rest of the file kept, changes what `helm
/// template` renders. A value the chart ignores (a typo'd template, or one
/// that only matters for an object the same file turns off) fails.
#[test]
fn every_value_is_changed_by_a_ci_values_file_where_it_changes_the_rendering() {
    if !helm_available() {
        return;
    }
    let started = std::time::Instant::now();
    let defaults: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap())
            .unwrap();
    let mut default_leaves = Vec::new();
    leaves(&defaults, "", &mut default_leaves);
    assert!(default_leaves.len() > 30, "{}", default_leaves.len());
    let dir = tempfile::tempdir().unwrap();
    let mut covered = BTreeSet::new();
    let mut renders = 0;
    for name in renderings().into_iter().flatten() {
        let path = chart().join("ci").join(&name);
        let file: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let rendered = render(std::slice::from_ref(&path), &[]).unwrap();
        for (leaf, default) in &default_leaves {
            if lookup(&file, leaf).is_none_or(|v| v == default) {
                continue;
            }
            let mut reverted = file.clone();
            set_path(&mut reverted, leaf, default.clone());
            // JSON is YAML: helm reads it as a values file.
            let reverted_path = dir.path().join("reverted.json");
            std::fs::write(&reverted_path, serde_json::to_string(&reverted).unwrap()).unwrap();
            let without = render(&[reverted_path], &[])
                .unwrap_or_else(|e| panic!("ci/{name} with {leaf} at its default: {e}"));
            renders += 1;
            assert!(
                without != rendered,
                "ci/{name} sets {leaf}, but the rendering is the same with {leaf} at its \
                 default ({default}): the value takes no effect there"
            );
            covered.insert(leaf.clone());
        }
    }
    let missing: Vec<&str> = default_leaves
        .iter()
        .map(|(leaf, _)| leaf.as_str())
        .filter(|leaf| !covered.contains(*leaf))
        .collect();
    assert!(
        missing.is_empty(),
        "no ci/*-values.yaml changes these values (where they take effect): {missing:?}"
    );
    eprintln!(
        "{} values, each changed where it takes effect ({renders} renderings, {:.1?})",
        default_leaves.len(),
        started.elapsed()
    );
}

#[test]
fn the_values_schema_rejects_bad_values() {
    if !helm_available() {
        return;
    }
    // (what is wrong, the --set that makes it, what the error must name)
    let cases = [
        ("wrong type", "replicaCount=three", "/replicaCount"),
        ("wrong type in a map", "rbac.create=maybe", "/rbac/create"),
        ("unknown top-level key", "replicas=2", "replicas"),
        ("unknown nested key", "image.digest=sha256", "digest"),
        ("bad enum", "scope=everywhere", "/scope"),
        (
            "bad enum in a map",
            "image.pullPolicy=Sometimes",
            "/image/pullPolicy",
        ),
        ("out of range", "metrics.port=70000", "/metrics/port"),
        ("zero replicas", "replicaCount=0", "/replicaCount"),
        (
            "bad duration",
            "serviceMonitor.interval=often",
            "/serviceMonitor/interval",
        ),
        (
            "bad quantity",
            "resources.limits.memory=lots",
            "/resources/limits/memory",
        ),
    ];
    for (what, set, named) in cases {
        let error = render(&[], &[set]).expect_err(what);
        assert!(
            error.contains("values don't meet the specifications of the schema")
                || error.contains(named),
            "{what} ({set}): unexpected error {error}"
        );
        assert!(
            error.contains(named),
            "{what} ({set}): error does not name {named}: {error}"
        );
    }
    assert!(render(&[], &["scope=namespace", "replicaCount=2"]).is_ok());
}

#[test]
fn the_chart_crd_is_the_generated_crd() {
    let chart_crd = std::fs::read_to_string(chart().join("crds/stack.yaml")).unwrap();
    let generated =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/stack.yaml"))
            .unwrap();
    assert!(
        chart_crd == generated,
        "charts/stackd/crds/stack.yaml differs from crds/stack.yaml: run `just generate`"
    );
}

#[test]
fn the_prometheus_rule_and_dashboard_carry_the_repository_files_unchanged() {
    if !helm_available() {
        return;
    }
    let objects = objects(&render(&values_path(Some("monitoring-values.yaml")), &[]).unwrap());
    let rule = find(&objects, "PrometheusRule")[0];
    let alerts: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(chart().join("rules/alerts.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(rule["spec"]["groups"], alerts["groups"]);
    let dashboard = find(&objects, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "stackd-dashboard")
        .unwrap();
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(dashboard["metadata"]["namespace"], "monitoring");
    let json = std::fs::read_to_string(chart().join("dashboards/stackd.json")).unwrap();
    assert_eq!(
        dashboard["data"]["stackd.json"]
            .as_str()
            .unwrap()
            .trim_end(),
        json.trim_end()
    );
}

/// The `job` label the Prometheus Operator gives the targets of the
/// rendering's ServiceMonitor, or `None` when there is none: the selected
/// Service's name, or the value of its `jobLabel` label, then the
/// endpoint's relabelings that set `job` (the operator puts them after its
/// own).
fn scrape_job(objects: &[Value]) -> Option<String> {
    let monitors = find(objects, "ServiceMonitor");
    let monitor = match monitors[..] {
        [] => return None,
        [monitor] => monitor,
        _ => panic!("{} ServiceMonitors", monitors.len()),
    };
    let spec = &monitor["spec"];
    let selector = spec["selector"]["matchLabels"].as_object().unwrap();
    let namespaces = spec["namespaceSelector"]["matchNames"].as_array().unwrap();
    let services: Vec<&Value> = find(objects, "Service")
        .into_iter()
        .filter(|service| {
            namespaces.contains(&service["metadata"]["namespace"])
                && selector
                    .iter()
                    .all(|(key, value)| service["metadata"]["labels"][key] == *value)
        })
        .collect();
    assert_eq!(services.len(), 1, "the ServiceMonitor selects {services:?}");
    let service = services[0];
    let endpoints = spec["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    let endpoint = &endpoints[0];
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|port| port["name"] == endpoint["port"]),
        "the Service has no port {}",
        endpoint["port"]
    );
    let mut job = service["metadata"]["name"].as_str().unwrap().to_string();
    if let Some(label) = spec["jobLabel"].as_str() {
        if let Some(value) = service["metadata"]["labels"][label].as_str() {
            job = value.to_string();
        }
    }
    for relabel in endpoint["relabelings"].as_array().into_iter().flatten() {
        if relabel["targetLabel"] != "job" {
            continue;
        }
        // Only the form the chart uses is worked out here: a constant.
        assert!(
            relabel["action"].as_str().unwrap_or("replace") == "replace"
                && relabel["sourceLabels"]
                    .as_array()
                    .is_none_or(|labels| labels.is_empty()),
            "a job relabeling this test cannot follow: {relabel}"
        );
        job = relabel["replacement"].as_str().unwrap().to_string();
    }
    Some(job)
}

/// The job ControllerDown's `up{job="..."}` matches in a set of rule groups.
fn controller_down_job(groups: &Value) -> String {
    let rule = groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap())
        .find(|rule| rule["alert"] == "ControllerDown")
        .unwrap();
    let expr = rule["expr"].as_str().unwrap();
    let start = expr.find("job=\"").unwrap() + "job=\"".len();
    let len = expr[start..].find('"').unwrap();
    expr[start..start + len].to_string()
}

/// ControllerDown watches `up{job="stackd"}`: the ServiceMonitor must
/// scrape under that job whatever the release and the name overrides are,
/// or the alert fires for a healthy controller.
#[test]
fn the_service_monitor_scrapes_under_the_job_controller_down_watches() {
    if !helm_available() {
        return;
    }
    let alerts: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(chart().join("rules/alerts.yaml")).unwrap(),
    )
    .unwrap();
    let expected = controller_down_job(&alerts["groups"]);
    let monitoring = values_path(Some("monitoring-values.yaml"));
    let mut cases: Vec<(String, String)> = renderings()
        .into_iter()
        .map(|values| {
            (
                format!("{values:?}"),
                render(&values_path(values.as_deref()), &[]).unwrap(),
            )
        })
        .collect();
    for (release, sets) in [
        ("prod", vec![]),
        ("prod", vec!["nameOverride=controller"]),
        ("prod", vec!["fullnameOverride=reconciler"]),
        (
            "stackd",
            vec!["nameOverride=controller", "fullnameOverride=reconciler"],
        ),
    ] {
        cases.push((
            format!("release {release} with {sets:?}"),
            render_release(release, &monitoring, &sets).unwrap(),
        ));
    }
    let mut monitored = 0;
    for (case, rendered) in cases {
        let objects = objects(&rendered);
        let Some(job) = scrape_job(&objects) else {
            continue;
        };
        monitored += 1;
        assert_eq!(job, expected, "{case}: scraped under another job");
        for rule in find(&objects, "PrometheusRule") {
            assert_eq!(
                controller_down_job(&rule["spec"]["groups"]),
                expected,
                "{case}"
            );
        }
        if case.starts_with("release") {
            let service = find(&objects, "Service")[0]["metadata"]["name"].clone();
            assert_ne!(service, "stackd-metrics", "{case}: not renamed");
        }
    }
    assert!(
        monitored >= 6,
        "{monitored} renderings had a ServiceMonitor"
    );
}
