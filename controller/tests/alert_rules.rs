//! The alerting rules the chart ships (`charts/stackd/rules/alerts.yaml`):
//! `promtool check rules` accepts them, their `promtool test rules` unit
//! tests pass, every alert has a case where it fires and one where it stays
//! quiet, and every stackd metric they name is one the controller exports.
//! Without `promtool` installed these tests skip, unless `CI` is set: then
//! they fail.
// Tests may unwrap: a panic is how a test reports, helpers included.
#![allow(clippy::unwrap_used)]
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use stackd::metrics::{Metrics, ReconcileResult};

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/stackd/rules")
}

/// `promtool` on `PATH`, or `None` after saying why the test skips; under
/// CI (the `CI` variable set) a missing tool fails the test instead.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is not installed (Debian package prometheus) and CI is set"
        );
        eprintln!("skipped: promtool is not installed (Debian package prometheus)");
    }
    found
}

/// Runs promtool with `args` in the rules directory; its output, after
/// asserting it exited 0.
fn run_promtool(binary: &Path, args: &[&str]) -> String {
    let out = Command::new(binary)
        .args(args)
        .current_dir(rules_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {args:?} failed ({}):\n{text}",
        out.status
    );
    text
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: Option<String>,
    expr: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn rules() -> Vec<Rule> {
    let text = std::fs::read_to_string(rules_dir().join("alerts.yaml")).unwrap();
    let file: RuleFile = serde_saphyr::from_str(&text).unwrap();
    file.groups.into_iter().flat_map(|g| g.rules).collect()
}

#[derive(Deserialize)]
struct TestFile {
    tests: Vec<TestCase>,
}

#[derive(Deserialize)]
struct TestCase {
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
}

#[derive(Deserialize)]
struct AlertTest {
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<serde::de::IgnoredAny>,
}

#[test]
fn promtool_accepts_the_alerting_rules() {
    let Some(promtool) = promtool() else {
        return;
    };
    let output = run_promtool(&promtool, &["check", "rules", "alerts.yaml"]);
    let count = rules().len();
    assert!(count >= 3, "{count} rules");
    assert!(
        output.contains(&format!("SUCCESS: {count} rules found")),
        "{output}"
    );
}

#[test]
fn the_promtool_unit_tests_of_the_alerts_pass() {
    let Some(promtool) = promtool() else {
        return;
    };
    let output = run_promtool(&promtool, &["test", "rules", "alerts_test.yaml"]);
    assert!(output.contains("SUCCESS"), "{output}");
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let text = std::fs::read_to_string(rules_dir().join("alerts_test.yaml")).unwrap();
    let tests: TestFile = serde_saphyr::from_str(&text).unwrap();
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for case in tests.tests.iter().flat_map(|t| &t.alert_rule_test) {
        if case.exp_alerts.is_empty() {
            quiet.insert(case.alertname.clone());
        } else {
            fires.insert(case.alertname.clone());
        }
    }
    let alerts: BTreeSet<String> = rules().into_iter().filter_map(|r| r.alert).collect();
    for required in ["StackNotReady", "ReconcileErrorsHigh", "ControllerDown"] {
        assert!(alerts.contains(required), "no {required} alert: {alerts:?}");
    }
    let never_fires: Vec<_> = alerts.difference(&fires).collect();
    let never_quiet: Vec<_> = alerts.difference(&quiet).collect();
    assert!(never_fires.is_empty(), "never seen firing: {never_fires:?}");
    assert!(never_quiet.is_empty(), "never seen quiet: {never_quiet:?}");
    let unknown: Vec<_> = fires
        .union(&quiet)
        .filter(|a| !alerts.contains(*a))
        .collect();
    assert!(
        unknown.is_empty(),
        "tests of alerts that do not exist: {unknown:?}"
    );
}

/// The metric names on a `/metrics` page of a controller that recorded one
/// of everything (histogram series included).
fn exported_names() -> BTreeSet<String> {
    let metrics = Metrics::new();
    metrics
        .count_and_measure("shop")
        .result(ReconcileResult::Success);
    metrics.reconcile_failed("shop", "engine_error");
    metrics.set_queue_depth(1);
    metrics.drift_repaired("shop", "removed");
    metrics.set_stack_ready("shop", true);
    metrics.set_service_replicas("shop", "web", "desired", 1);
    metrics.source_error("shop", "parse");
    metrics.backend_request("docker", "observe", "success");
    metrics
        .encode()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
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
fn the_rules_name_only_metrics_the_controller_exports() {
    let exported = exported_names();
    assert!(exported.contains("stackd_stack_ready"), "{exported:?}");
    for rule in rules() {
        let mut text = rule.expr.clone();
        text.extend(rule.annotations.values().map(String::as_str));
        for name in stackd_names(&text) {
            assert!(
                exported.contains(&name),
                "{:?} names {name}, which stackd does not export",
                rule.alert
            );
        }
    }
}
