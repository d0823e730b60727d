//! The shape of the result: order, determinism, YAML, namespace.
use serde_json::json;

use super::*;
use crate::kube::translate::TranslateError;

fn sample() -> serde_json::Value {
    json!({
        "services": {
            "web": {"image": "nginx", "ports": [{"target": 80}], "environment": {"A": "1"},
                    "depends_on": {"db": {"condition": "service_healthy", "required": true}}},
            "db": {"image": "postgres", "healthcheck": {"test": ["CMD", "true"]},
                   "volumes": [{"type": "volume", "source": "data", "target": "/data"}]}
        },
        "volumes": {"data": {"name": "shop_data"}}
    })
}

#[test]
fn objects_come_in_kind_order_then_name_order() {
    let t = run(sample());
    let order: Vec<(u8, String)> = t
        .objects
        .iter()
        .map(|o| (o.rank(), o.name().to_string()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert_eq!(t.objects.first().unwrap().kind(), "ServiceAccount");
}

#[test]
fn the_same_project_always_translates_to_the_same_yaml() {
    assert_eq!(
        run(sample()).to_yaml().unwrap(),
        run(sample()).to_yaml().unwrap()
    );
}

#[test]
fn the_yaml_stream_reads_back_to_the_same_objects() {
    let t = run(sample());
    let yaml = t.to_yaml().unwrap();
    assert_eq!(yaml.matches("\n---\n").count(), t.objects.len() - 1);
    for (document, object) in yaml.split("\n---\n").zip(&t.objects) {
        let back: serde_json::Value = serde_saphyr::from_str(document).unwrap();
        assert_eq!(back, serde_json::to_value(object).unwrap());
    }
}

#[test]
fn strings_that_look_like_numbers_or_booleans_stay_strings_in_yaml() {
    let t = run(
        json!({"services": {"app": {"image": "x", "command": ["8080", "true", "0755", "~"],
        "environment": {"YES": "yes", "OFF": "off"}}}}),
    );
    for object in &t.objects {
        let back: serde_json::Value = serde_saphyr::from_str(&object.to_yaml().unwrap()).unwrap();
        assert_eq!(back, serde_json::to_value(object).unwrap());
    }
}

#[test]
fn one_file_per_object_is_named_by_rank_kind_and_name() {
    let t = run(sample());
    let names: Vec<String> = t
        .objects
        .iter()
        .map(super::super::Object::file_name)
        .collect();
    assert!(
        names.contains(&"06-service-web.yaml".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"09-statefulset-shop-db.yaml".to_string()),
        "{names:?}"
    );
}

#[test]
fn the_namespace_option_is_set_on_every_object_and_must_be_a_label() {
    let options = TranslateOptions {
        namespace: Some("prod".into()),
        ..TranslateOptions::default()
    };
    let t = run_with(sample(), &options);
    for object in &t.objects {
        assert_eq!(
            object.metadata().namespace.as_deref(),
            Some("prod"),
            "{}",
            object.name()
        );
    }
    let bad = TranslateOptions {
        namespace: Some("Not Valid".into()),
        ..TranslateOptions::default()
    };
    let error = translate(&project(sample()), &bad).unwrap_err();
    assert!(matches!(error, TranslateError::BadNamespace(_)));
}

#[test]
fn each_object_knows_its_api_version_and_serializes_it() {
    let t = run(sample());
    for object in &t.objects {
        let value = serde_json::to_value(object).unwrap();
        assert_eq!(
            value["apiVersion"],
            object.api_version(),
            "{}",
            object.kind()
        );
        assert_eq!(value["kind"], object.kind());
    }
}

#[test]
fn a_key_neither_used_nor_warned_about_is_reported_as_dropped() {
    let project = project(json!({"services": {"web": {"image": "x", "working_dir": "/srv"}}}));
    let mut t = translate(&project, &TranslateOptions::default()).unwrap();
    let present = keys_present(&project);
    assert!(t.unaccounted(&present).is_empty());
    t.consumed.retain(|k| k.key != "working_dir");
    let dropped: Vec<String> = t
        .unaccounted(&present)
        .iter()
        .map(|k| k.key.clone())
        .collect();
    assert_eq!(dropped, ["working_dir"]);
}
