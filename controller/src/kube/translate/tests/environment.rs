//! `environment` and `env_file` → a ConfigMap and `env`.
use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::load::{load_project, LoadOptions};

#[test]
fn environment_becomes_a_config_map_read_by_env_entries() {
    let t =
        run(json!({"services": {"web": {"image": "x", "environment": {"A": "1", "B": "two"}}}}));
    let map = json_of(&t, "ConfigMap", "shop-web-env");
    assert_eq!(map["data"], json!({"A": "1", "B": "two"}));
    assert_eq!(
        container(&t, "Deployment", "shop-web")["env"][1],
        json!({"name": "B", "valueFrom": {"configMapKeyRef": {"key": "B", "name": "shop-web-env"}}})
    );
}

#[test]
fn environment_wins_over_env_file_as_in_compose() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web.env"), "FROM_FILE=file\nBOTH=file\n").unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: x\n    env_file: web.env\n    environment:\n      BOTH: inline\n",
    )
    .unwrap();
    let loaded = load_project(&LoadOptions {
        working_dir: dir.path().to_path_buf(),
        project_name: Some("shop".into()),
        environment: BTreeMap::new(),
        ..LoadOptions::default()
    })
    .unwrap();
    let t = translate(&loaded.project, &TranslateOptions::default()).unwrap();
    assert!(t.unaccounted(&keys_present(&loaded.project)).is_empty());
    assert_eq!(
        json_of(&t, "ConfigMap", "shop-web-env")["data"],
        json!({"BOTH": "inline", "FROM_FILE": "file"})
    );
}

#[test]
fn a_variable_without_a_value_is_left_out_with_a_warning() {
    let t = run(
        json!({"services": {"web": {"image": "x", "environment": {"SET": "1", "UNSET": null}}}}),
    );
    assert_eq!(
        json_of(&t, "ConfigMap", "shop-web-env")["data"],
        json!({"SET": "1"})
    );
    assert!(warning(&t, "web", "environment.UNSET").is_some());
}

#[test]
fn a_name_that_cannot_be_a_config_map_key_is_set_as_a_literal_value() {
    let t = run(json!({"services": {"web": {"image": "x", "environment": {"A B": "c$d"}}}}));
    assert_eq!(
        container(&t, "Deployment", "shop-web")["env"][0],
        json!({"name": "A B", "value": "c$$d"})
    );
}

#[test]
fn dollars_are_escaped_so_kubernetes_does_not_expand_them() {
    let t = run(json!({"services": {"web": {"image": "x",
        "entrypoint": ["sh", "-c"], "command": ["echo $(date) $HOME $$"]}}}));
    let c = container(&t, "Deployment", "shop-web");
    assert_eq!(c["command"], json!(["sh", "-c"]));
    assert_eq!(c["args"], json!(["echo $$(date) $$HOME $$$$"]));
}

#[test]
fn a_change_of_environment_changes_the_pod_template_hash() {
    let hash = |value: &str| {
        let t = run(json!({"services": {"web": {"image": "x", "environment": {"A": value}}}}));
        json_of(&t, "Deployment", "shop-web")["spec"]["template"]["metadata"]["annotations"]
            ["stackd.dev/config-hash"]
            .clone()
    };
    assert!(hash("1").is_string());
    assert_eq!(hash("1"), hash("1"));
    assert_ne!(hash("1"), hash("2"));
}
