//! The Grafana dashboard (`charts/stackd/dashboards/stackd.json`) and the
//! alerting rules against real data: `stackd watch` runs stacks on the
//! engine (one converged and repaired after a container is removed, one
//! that cannot start, one whose file does not parse), a real Prometheus
//! scrapes it every second and evaluates the rules, and every PromQL
//! expression of the dashboard is run through Prometheus's HTTP API with
//! its template variables filled in. Every query must parse and run, the
//! key panels must show data, and the dashboard must cover every stackd
//! metric the controller exports.
//!
//! The live test skips without an engine (as all e2e tests do) or without
//! `prometheus`, unless `CI` is set: then a missing `prometheus` fails it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use stackd_e2e::{
    docker_ok, required_tool, wait_until, workspace_root, Prometheus, Series, WatchDir,
    IDLE_COMMAND, IMAGE,
};

/// Panels that must show data once stackd has run a healthy stack, a
/// failing one and a broken file, and repaired drift.
const KEY_PANELS: &[&str] = &[
    "Reconcile rate by stack",
    "Reconcile errors by stack",
    "Reconcile latency",
    "Queue depth",
    "Stacks not Ready",
    "Drift repairs by kind",
    "Replicas: desired vs ready",
    "Backend request errors",
    "Source errors",
];

/// What Grafana puts in for its built-in variables, at a 1 s scrape
/// interval (`$__rate_interval` is at least four scrape intervals).
const BUILTINS: &[(&str, &str)] = &[
    ("__rate_interval", "30s"),
    ("__interval", "2s"),
    ("__range", "5m"),
];

fn dashboard_path() -> PathBuf {
    workspace_root().join("charts/stackd/dashboards/stackd.json")
}

fn dashboard() -> Result<Value> {
    let path = dashboard_path();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// One PromQL expression of a panel.
#[derive(Debug, Clone)]
struct Query {
    panel: String,
    expr: String,
    /// A table showing one instant (`instant: true`), else a range.
    instant: bool,
}

/// Every `expr` in the dashboard, with the title of the panel it is in.
fn queries(dashboard: &Value) -> Vec<Query> {
    fn walk(value: &Value, panel: &str, out: &mut Vec<Query>) {
        match value {
            Value::Object(map) => {
                let panel = match (map.get("title"), map.get("type")) {
                    (Some(Value::String(title)), Some(_)) => title.as_str(),
                    _ => panel,
                };
                if let Some(Value::String(expr)) = map.get("expr") {
                    out.push(Query {
                        panel: panel.to_owned(),
                        expr: expr.clone(),
                        instant: map.get("instant") == Some(&Value::Bool(true)),
                    });
                }
                for (key, child) in map {
                    if key != "templating" {
                        walk(child, panel, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, panel, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, "", &mut out);
    out
}

/// The template variables, by name.
fn variables(dashboard: &Value) -> BTreeMap<String, Value> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v["name"].as_str()?.to_owned(), v.clone())))
        .collect()
}

/// A query variable's query text (`label_values(...)`).
fn variable_query(variable: &Value) -> Option<&str> {
    variable["query"]["query"]
        .as_str()
        .or_else(|| variable["query"].as_str())
}

/// `text` with every `$name`, `${name}`, `${name:format}` and `[[name]]`
/// replaced from `values` or [`BUILTINS`]; an unknown variable is an error.
fn substitute(text: &str, values: &BTreeMap<String, String>) -> Result<String> {
    let lookup = |name: &str| -> Result<String> {
        if let Some(value) = values.get(name) {
            return Ok(value.clone());
        }
        if let Some((_, value)) = BUILTINS.iter().find(|(n, _)| *n == name) {
            return Ok((*value).to_owned());
        }
        bail!("`{text}` uses ${name}, which is neither a dashboard variable nor a known built-in")
    };
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(braced) = rest.strip_prefix("${") {
            let end = braced
                .find('}')
                .with_context(|| format!("unclosed ${{ in `{text}`"))?;
            let name = braced[..end].split(':').next().unwrap_or_default();
            out.push_str(&lookup(name)?);
            rest = &braced[end + 1..];
        } else if let Some(bracketed) = rest.strip_prefix("[[") {
            let end = bracketed
                .find("]]")
                .with_context(|| format!("unclosed [[ in `{text}`"))?;
            out.push_str(&lookup(&bracketed[..end])?);
            rest = &bracketed[end + 2..];
        } else if let Some(plain) = rest.strip_prefix('$') {
            let end = plain.find(|c| !is_name(c)).unwrap_or(plain.len());
            ensure!(end > 0, "a lone $ in `{text}`");
            out.push_str(&lookup(&plain[..end])?);
            rest = &plain[end..];
        } else {
            out.push('[');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Every `stackd_*` word in `text`.
fn stackd_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("stackd_") {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + word.len()..];
        names.insert(word);
    }
    names
}

#[test]
fn the_dashboard_imports_on_its_own_with_a_datasource_and_a_stack_variable() -> Result<()> {
    let dashboard = dashboard()?;
    ensure!(
        dashboard["id"].is_null(),
        "a fixed id breaks import: {}",
        dashboard["id"]
    );
    ensure!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let vars = variables(&dashboard);
    let datasource = vars.get("datasource").context("no datasource variable")?;
    ensure!(datasource["type"] == "datasource" && datasource["query"] == "prometheus");
    let stack = vars.get("stack").context("no stack variable")?;
    ensure!(stack["type"] == "query");
    let stack_query = variable_query(stack).context("the stack variable has no query")?;
    ensure!(
        stack_query.starts_with("label_values(") && stack_query.ends_with(", stack)"),
        "{stack_query}"
    );
    ensure!(stack["includeAll"] == true && stack["allValue"] == ".*");

    // Every panel and query reads the chosen data source, never a fixed one.
    fn datasources(value: &Value, out: &mut Vec<Value>) {
        match value {
            Value::Object(map) => {
                if let Some(ds) = map.get("datasource") {
                    out.push(ds.clone());
                }
                map.values().for_each(|v| datasources(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| datasources(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    datasources(&dashboard["panels"], &mut found);
    ensure!(!found.is_empty());
    for ds in &found {
        ensure!(
            ds["type"] == "prometheus" && ds["uid"] == "${datasource}",
            "panel data source {ds}"
        );
    }

    // Panels: unique ids and titles, on the 24-column grid, none
    // overlapping.
    let panels = dashboard["panels"].as_array().context("no panels")?;
    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for panel in panels {
        let id = panel["id"].as_u64().context("a panel without id")?;
        ensure!(ids.insert(id), "panel id {id} twice");
        let title = panel["title"].as_str().context("a panel without title")?;
        ensure!(titles.insert(title), "panel title {title:?} twice");
        let grid = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| grid[k].as_u64().unwrap_or(u64::MAX));
        ensure!(x + w <= 24 && h < 100, "{} at {grid}", panel["title"]);
        for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
            ensure!(
                cells.insert(cell),
                "{} overlaps at {cell:?}",
                panel["title"]
            );
        }
    }

    // Every variable an expression uses is defined (or built in), and the
    // key panels exist and have queries.
    let values: BTreeMap<String, String> = vars.keys().map(|k| (k.clone(), "x".into())).collect();
    let queries = queries(&dashboard);
    for query in &queries {
        substitute(&query.expr, &values)?;
    }
    for var in vars.values() {
        if let Some(text) = variable_query(var) {
            substitute(text, &values)?;
        }
    }
    for title in KEY_PANELS {
        ensure!(
            queries.iter().any(|q| q.panel == *title),
            "no panel {title:?} with a query"
        );
    }
    // histogram_quantile over the rate of the buckets, for three quantiles.
    let latency: Vec<_> = queries
        .iter()
        .filter(|q| q.panel == "Reconcile latency")
        .collect();
    for q in ["0.5", "0.95", "0.99"] {
        ensure!(
            latency.iter().any(|l| l.expr.starts_with(&format!(
                "histogram_quantile({q}, sum by (le) (rate(stackd_reconcile_duration_seconds_bucket{{"
            ))),
            "no p{q} latency query: {latency:?}"
        );
    }
    Ok(())
}

#[test]
fn substitution_fills_every_variable_form_and_refuses_unknown_ones() -> Result<()> {
    let values = BTreeMap::from([("stack".to_owned(), "shop".to_owned())]);
    assert_eq!(
        substitute(
            r#"rate(x{stack=~"$stack", a="${stack}", b="${stack:regex}", c="[[stack]]"}[$__rate_interval])"#,
            &values
        )?,
        r#"rate(x{stack=~"shop", a="shop", b="shop", c="shop"}[30s])"#
    );
    assert_eq!(substitute("x[5m]", &values)?, "x[5m]");
    assert!(substitute("x{a=~\"$nope\"}", &values).is_err());
    assert!(substitute("x[$__nope]", &values).is_err());
    Ok(())
}

fn healthy_stack() -> String {
    format!(
        r#"services:
  web:
    image: {IMAGE}
    pull_policy: never
    command: {IDLE_COMMAND}
    restart: always
    healthcheck: {{test: ["CMD", "true"], interval: 1s}}
  worker:
    image: {IMAGE}
    pull_policy: never
    command: {IDLE_COMMAND}
    restart: always
    deploy: {{replicas: 2}}
"#
    )
}

/// A stack that cannot start: its image is not on the engine and may not
/// be pulled, so every reconcile fails and the backend call errors.
const MISSING_IMAGE_STACK: &str = r#"services:
  web:
    image: stackd-e2e-no-such-image:never
    pull_policy: never
    command: ["sleep", "3600"]
"#;

/// A file that does not parse: a source error.
const UNPARSEABLE_STACK: &str = "services:\n  web:\n    image: [unclosed\n";

#[test]
fn every_dashboard_query_runs_on_prometheus_scraping_stackd_watch() -> Result<()> {
    let Some(prometheus_bin) = required_tool("prometheus")? else {
        return Ok(());
    };
    let Some(mut watch) = WatchDir::new("dashboard")? else {
        return Ok(());
    };
    let app = watch.write_compose("app", &healthy_stack())?;
    let failing = watch.write_compose("failing", MISSING_IMAGE_STACK)?;
    let typo = watch.write_compose("typo", UNPARSEABLE_STACK)?;
    // Frequent resyncs keep reconciles (and their latency) flowing within
    // the rate window of every panel.
    watch.start(&["--resync", "2s"])?;
    let rules = workspace_root().join("charts/stackd/rules/alerts.yaml");
    let prometheus = Prometheus::start(
        &prometheus_bin,
        &[format!("127.0.0.1:{}", watch.port())],
        &[rules],
    )?;

    watch.wait_condition(&app, "Ready", Duration::from_secs(90))?;
    // Drift: a worker removed behind the controller's back is put back.
    // (A reconcile that sees it killed but not yet removed counts it as
    // stopped rather than removed: any kind will do.)
    let worker = format!("{app}-worker-2");
    docker_ok(&["rm", "-f", &worker])?;
    let repairs_of_app = format!("stack=\"{app}\"");
    wait_until(Duration::from_secs(60), "the worker repaired", || {
        Ok(watch.metrics()?.lines().any(|line| {
            line.starts_with("stackd_drift_repairs_total{") && line.contains(&repairs_of_app)
        }))
    })
    .with_context(|| watch.log())?;
    watch.wait_condition(&app, "Ready", Duration::from_secs(60))?;
    let page = watch.metrics()?;
    for needed in [
        format!("stackd_reconcile_errors_total{{reason=\"image_missing\",stack=\"{failing}\"}}"),
        format!("stackd_source_errors_total{{kind=\"parse\",stack=\"{typo}\"}}"),
        "outcome=\"error\"".to_owned(),
    ] {
        ensure!(page.contains(&needed), "no {needed} on /metrics:\n{page}");
    }

    let dashboard = dashboard()?;
    let vars = variables(&dashboard);

    // The variables' own queries, as Grafana runs them (label values).
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let label_values = |name: &str, values: &BTreeMap<String, String>| -> Result<Vec<String>> {
        let text = variable_query(&vars[name]).context("no query")?;
        let text = substitute(text, values)?;
        let inner = text
            .strip_prefix("label_values(")
            .and_then(|t| t.strip_suffix(')'))
            .with_context(|| format!("{name}: not label_values(): {text}"))?;
        let (selector, label) = inner
            .rsplit_once(',')
            .with_context(|| format!("{name}: {text}"))?;
        prometheus.label_values(selector.trim(), label.trim())
    };
    let mut jobs = Vec::new();
    wait_until(Duration::from_secs(30), "the job variable", || {
        jobs = label_values("job", &values)?;
        Ok(!jobs.is_empty())
    })?;
    ensure!(jobs == ["stackd"], "job variable: {jobs:?}");
    values.insert("job".into(), jobs[0].clone());
    values.insert("datasource".into(), "prometheus".into());
    let mut stacks = Vec::new();
    wait_until(
        Duration::from_secs(30),
        "every stack in the variable",
        || {
            stacks = label_values("stack", &values)?;
            Ok([&app, &failing, &typo].iter().all(|s| stacks.contains(s)))
        },
    )?;

    // The dashboard shows every stackd metric the controller exports, and
    // names none it does not.
    let families: BTreeSet<String> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .filter(|n| n.starts_with("stackd_"))
        .map(str::to_owned)
        .collect();
    let samples: BTreeSet<String> = page
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let queries = queries(&dashboard);
    let used: BTreeSet<String> = queries.iter().flat_map(|q| stackd_names(&q.expr)).collect();
    for family in &families {
        ensure!(
            used.iter()
                .any(|u| u == family || u.starts_with(&format!("{family}_"))),
            "no panel shows {family}"
        );
    }
    for name in &used {
        ensure!(
            samples.contains(name),
            "the dashboard queries {name}, which stackd does not export"
        );
    }

    // Every query parses and runs, with all stacks and with one stack.
    let all = BTreeMap::from([("stack".to_owned(), ".*".to_owned())]);
    let one = BTreeMap::from([("stack".to_owned(), app.clone())]);
    let with = |extra: &BTreeMap<String, String>| {
        let mut v = values.clone();
        v.extend(extra.clone());
        v
    };
    let run = |query: &Query, vars: &BTreeMap<String, String>| -> Result<Vec<Series>> {
        let promql = substitute(&query.expr, vars)?;
        let result = if query.instant {
            prometheus.query(&promql)
        } else {
            prometheus.query_range(&promql)
        };
        result.with_context(|| format!("panel {:?}: {promql}", query.panel))
    };
    for query in &queries {
        run(query, &with(&all))?;
        for series in run(query, &with(&one))? {
            if let Some(stack) = series.label("stack") {
                ensure!(
                    stack == app,
                    "panel {:?} with stack={app} shows {stack}: {}",
                    query.panel,
                    query.expr
                );
            }
        }
    }

    // The key panels show numbers (not only NaN) for every query in them.
    let mut missing = Vec::new();
    wait_until(Duration::from_secs(45), "data in every key panel", || {
        missing.clear();
        for query in queries
            .iter()
            .filter(|q| KEY_PANELS.contains(&q.panel.as_str()))
        {
            let series = run(query, &with(&all))?;
            if !series.iter().any(Series::has_finite_value) {
                missing.push(format!("{}: {}", query.panel, query.expr));
            }
        }
        Ok(missing.is_empty())
    })
    .with_context(|| format!("key panels without data: {missing:#?}"))?;
    // Spot checks that the numbers mean what the panels say.
    let not_ready = run(
        queries
            .iter()
            .find(|q| q.panel == "Stacks not Ready")
            .context("no Stacks not Ready query")?,
        &with(&all),
    )?;
    let not_ready: BTreeSet<&str> = not_ready.iter().filter_map(|s| s.label("stack")).collect();
    ensure!(
        not_ready == BTreeSet::from([failing.as_str(), typo.as_str()]),
        "Stacks not Ready shows {not_ready:?}"
    );
    let replicas = prometheus.query(&format!(
        "sum by (service) (stackd_service_replicas{{stack=\"{app}\", state=\"desired\"}})"
    ))?;
    let worker_desired = replicas
        .iter()
        .find(|s| s.label("service") == Some("worker"))
        .map(|s| s.values[0]);
    ensure!(worker_desired == Some(2.0), "{replicas:?}");

    // The alerting rules evaluate cleanly on these series, and the stacks
    // that are not Ready are pending StackNotReady.
    let mut groups = Value::Null;
    wait_until(Duration::from_secs(30), "every rule evaluated", || {
        groups = prometheus.api("/api/v1/rules")?["groups"].clone();
        let rules: Vec<&Value> = groups
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        Ok(!rules.is_empty() && rules.iter().all(|r| r["health"] == "ok"))
    })
    .with_context(|| format!("rule health: {groups:#}"))?;
    let alerts = prometheus.api("/api/v1/alerts")?;
    let pending: BTreeSet<String> = alerts["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == "StackNotReady")
        .filter_map(|a| a["labels"]["stack"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        pending == BTreeSet::from([failing.clone(), typo.clone()]),
        "StackNotReady alerts: {alerts:#}"
    );
    ensure!(
        !alerts.to_string().contains("ControllerDown"),
        "ControllerDown while the controller is up: {alerts:#}"
    );
    Ok(())
}
