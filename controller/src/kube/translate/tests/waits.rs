//! `depends_on` → init containers that wait.
use serde_json::json;

use super::*;

fn stack(condition: &str) -> Translation {
    run(json!({"services": {
        "db": {"image": "postgres", "healthcheck": {"test": ["CMD", "pg_isready"]}},
        "migrate": {"image": "m", "restart": "no"},
        "app": {"image": "a", "depends_on": {
            "db": {"condition": condition, "required": true},
            "migrate": {"condition": "service_completed_successfully", "required": true}
        }}
    }}))
}

fn script(init: &serde_json::Value) -> String {
    init["command"][2].as_str().unwrap().to_string()
}

#[test]
fn service_healthy_waits_until_every_pod_of_the_dependency_is_ready() {
    let t = stack("service_healthy");
    let inits = pod_spec(&t, "Deployment", "shop-app")["initContainers"].clone();
    assert_eq!(inits[0]["name"], "wait-for-db");
    assert_eq!(inits[0]["command"][0], "sh");
    let wait = script(&inits[0]);
    assert!(wait.contains("kubectl wait pods -l 'app.kubernetes.io/instance=shop-db,app.kubernetes.io/part-of=shop' --for=condition=Ready"), "{wait}");
    assert!(wait.starts_with("until "), "{wait}");
}

#[test]
fn service_completed_successfully_waits_for_the_job_to_complete() {
    let t = stack("service_healthy");
    let inits = pod_spec(&t, "Deployment", "shop-app")["initContainers"].clone();
    assert_eq!(inits[1]["name"], "wait-for-migrate");
    assert!(script(&inits[1]).contains("kubectl wait job/shop-migrate --for=condition=Complete"));
}

#[test]
fn service_started_waits_for_a_pod_that_runs_or_ran() {
    let t = stack("service_started");
    let wait = script(&pod_spec(&t, "Deployment", "shop-app")["initContainers"][0]);
    assert!(
        wait.contains("kubectl get pods -l 'app.kubernetes.io/instance=shop-db"),
        "{wait}"
    );
    assert!(wait.contains("Running|Succeeded"), "{wait}");
}

#[test]
fn waits_bring_a_read_only_identity_whose_token_only_the_wait_containers_see() {
    let t = stack("service_healthy");
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(pod["serviceAccountName"], "shop-stackd-wait");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert!(pod["containers"][0].get("volumeMounts").is_none());
    assert_eq!(
        pod["initContainers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    let role = json_of(&t, "Role", "shop-stackd-wait");
    for rule in role["rules"].as_array().unwrap() {
        assert_eq!(rule["verbs"], json!(["get", "list", "watch"]));
    }
    let binding = json_of(&t, "RoleBinding", "shop-stackd-wait");
    assert_eq!(binding["roleRef"]["name"], "shop-stackd-wait");
    assert_eq!(binding["subjects"][0]["name"], "shop-stackd-wait");
    assert!(has(&t, "ServiceAccount", "shop-stackd-wait"));
}

#[test]
fn a_project_without_dependencies_has_no_wait_identity() {
    let t = run(json!({"services": {"a": {"image": "x"}}}));
    assert!(!t
        .objects
        .iter()
        .any(|o| matches!(o.kind(), "ServiceAccount" | "Role" | "RoleBinding")));
    assert!(pod_spec(&t, "Deployment", "shop-a")
        .get("serviceAccountName")
        .is_none());
}

#[test]
fn a_dependency_outside_the_project_is_not_waited_for_and_says_so() {
    let t = run(json!({"services": {"app": {"image": "a", "depends_on": {
        "gone": {"condition": "service_started", "required": false}}}}}));
    assert!(pod_spec(&t, "Deployment", "shop-app")
        .get("initContainers")
        .is_none());
    assert!(warning(&t, "app", "depends_on.gone.condition").is_some());
}

#[test]
fn healthy_on_a_dependency_without_a_check_warns_what_it_waits_for() {
    let t = run(
        json!({"services": {"db": {"image": "x"}, "app": {"image": "a", "depends_on": {
        "db": {"condition": "service_healthy", "required": true}}}}}),
    );
    assert!(warning(&t, "app", "depends_on.db.condition")
        .unwrap()
        .contains("no health check"));
}

#[test]
fn restart_on_dependency_update_has_no_equivalent_and_warns() {
    let t = run(
        json!({"services": {"db": {"image": "x"}, "app": {"image": "a", "depends_on": {
        "db": {"condition": "service_started", "required": true, "restart": true}}}}}),
    );
    assert!(warning(&t, "app", "depends_on.db.restart").is_some());
}

#[test]
fn the_wait_image_comes_from_the_options_then_x_stackd_then_the_default() {
    let value = |extension: serde_json::Value| {
        json!({
            "services": {"db": {"image": "x"}, "app": {"image": "a", "depends_on": {
                "db": {"condition": "service_started", "required": true}}}},
            "x-stackd": extension
        })
    };
    let image = |t: &Translation| {
        pod_spec(t, "Deployment", "shop-app")["initContainers"][0]["image"].clone()
    };
    let t = run(value(json!({})));
    assert_eq!(image(&t), crate::kube::translate::DEFAULT_WAIT_IMAGE);
    let t = run(value(
        json!({"kubernetes": {"wait_image": "mine/kubectl:1"}}),
    ));
    assert_eq!(image(&t), "mine/kubectl:1");
    let options = TranslateOptions {
        wait_image: Some("flag/kubectl:2".into()),
        ..TranslateOptions::default()
    };
    let t = run_with(
        value(json!({"kubernetes": {"wait_image": "mine/kubectl:1"}})),
        &options,
    );
    assert_eq!(image(&t), "flag/kubectl:2");
}

#[test]
fn with_a_namespace_the_binding_names_the_service_accounts_namespace() {
    let options = TranslateOptions {
        namespace: Some("prod".into()),
        ..TranslateOptions::default()
    };
    let t = run_with(
        json!({"services": {"db": {"image": "x"}, "app": {"image": "a", "depends_on": {
        "db": {"condition": "service_started", "required": true}}}}}),
        &options,
    );
    assert_eq!(
        json_of(&t, "RoleBinding", "shop-stackd-wait")["subjects"][0]["namespace"],
        "prod"
    );
}
