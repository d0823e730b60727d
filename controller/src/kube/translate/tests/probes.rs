//! `healthcheck` → probes.
use serde_json::json;

use super::*;

fn web(healthcheck: serde_json::Value) -> serde_json::Value {
    let t = run(json!({"services": {"web": {"image": "x", "healthcheck": healthcheck}}}));
    container(&t, "Deployment", "shop-web")
}

#[test]
fn a_cmd_healthcheck_becomes_readiness_and_liveness_exec_probes() {
    let c = web(
        json!({"test": ["CMD", "curl", "-f", "http://localhost/"], "interval": "10s",
                       "timeout": "5s", "retries": 4}),
    );
    let expected = json!({"exec": {"command": ["curl", "-f", "http://localhost/"]},
                          "failureThreshold": 4, "periodSeconds": 10, "timeoutSeconds": 5});
    assert_eq!(c["readinessProbe"], expected);
    assert_eq!(c["livenessProbe"], expected);
    assert!(c.get("startupProbe").is_none());
}

#[test]
fn a_cmd_shell_healthcheck_runs_under_sh_c() {
    let c = web(json!({"test": ["CMD-SHELL", "pg_isready -U postgres || exit 1"]}));
    assert_eq!(
        c["readinessProbe"]["exec"]["command"],
        json!(["sh", "-c", "pg_isready -U postgres || exit 1"])
    );
}

#[test]
fn healthcheck_timing_rounds_up_to_whole_seconds_with_dockers_defaults() {
    let c = web(json!({"test": ["CMD", "true"], "interval": "1500ms", "timeout": "100ms"}));
    assert_eq!(c["livenessProbe"]["periodSeconds"], 2);
    assert_eq!(c["livenessProbe"]["timeoutSeconds"], 1);
    assert_eq!(c["livenessProbe"]["failureThreshold"], 3);
    let defaults = web(json!({"test": ["CMD", "true"]}));
    assert_eq!(defaults["livenessProbe"]["periodSeconds"], 30);
    assert_eq!(defaults["livenessProbe"]["timeoutSeconds"], 30);
}

#[test]
fn a_start_period_adds_a_startup_probe_covering_it_and_the_retries() {
    let c = web(
        json!({"test": ["CMD", "true"], "interval": "10s", "retries": 3,
                       "start_period": "60s", "start_interval": "2s"}),
    );
    assert_eq!(
        c["startupProbe"],
        json!({"exec": {"command": ["true"]}, "failureThreshold": 33,
               "periodSeconds": 2, "timeoutSeconds": 30})
    );
}

#[test]
fn a_disabled_healthcheck_or_none_makes_no_probes() {
    for check in [
        json!({"test": ["CMD", "true"], "disable": true}),
        json!({"test": ["NONE"]}),
    ] {
        let c = web(check);
        assert!(c.get("readinessProbe").is_none() && c.get("livenessProbe").is_none());
    }
}

#[test]
fn a_healthcheck_without_a_test_warns_that_the_images_check_cannot_be_read() {
    let t = run(json!({"services": {"web": {"image": "x", "healthcheck": {"interval": "5s"}}}}));
    assert!(warning(&t, "web", "healthcheck.interval")
        .unwrap()
        .contains("image's own"));
    assert!(container(&t, "Deployment", "shop-web")
        .get("livenessProbe")
        .is_none());
}
