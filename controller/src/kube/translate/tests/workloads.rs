//! Which workload a service becomes, its names and labels.
use serde_json::json;

use super::*;
use crate::kube::translate::TranslateError;

#[test]
fn a_service_without_volumes_is_a_deployment_with_its_replicas() {
    let t = run(json!({"services": {"web": {"image": "nginx", "deploy": {"replicas": 3}}}}));
    let web = json_of(&t, "Deployment", "shop-web");
    assert_eq!(web["spec"]["replicas"], 3);
    assert_eq!(
        web["spec"]["selector"]["matchLabels"],
        json!({"app.kubernetes.io/instance": "shop-web", "app.kubernetes.io/part-of": "shop"})
    );
}

#[test]
fn scale_sets_the_replicas_when_deploy_does_not() {
    let t = run(json!({"services": {"web": {"image": "nginx", "scale": 2}}}));
    assert_eq!(json_of(&t, "Deployment", "shop-web")["spec"]["replicas"], 2);
}

#[test]
fn every_object_carries_the_four_recommended_labels() {
    let t = run(json!({
        "services": {"db": {"image": "postgres", "volumes": [{"type": "volume", "source": "data", "target": "/data"}],
                            "environment": {"A": "1"}, "secrets": [{"source": "pw"}]},
                     "web": {"image": "nginx", "depends_on": {"db": {"condition": "service_started", "required": true}}}},
        "volumes": {"data": {"name": "shop_data"}},
        "secrets": {"pw": {"name": "shop_pw", "content": "x"}}
    }));
    assert!(t.objects.len() >= 8);
    for object in &t.objects {
        let labels = object.metadata().labels.clone().unwrap();
        for key in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/part-of",
        ] {
            assert!(
                labels.contains_key(key),
                "{} {} lacks {key}",
                object.kind(),
                object.name()
            );
        }
        assert_eq!(labels["app.kubernetes.io/managed-by"], "stackd");
        assert_eq!(labels["app.kubernetes.io/part-of"], "shop");
    }
}

#[test]
fn a_service_with_a_volume_of_its_own_is_a_statefulset_with_a_claim_template() {
    let t = run(json!({
        "services": {"db": {"image": "postgres", "deploy": {"replicas": 2},
                            "volumes": [{"type": "volume", "source": "data", "target": "/var/lib/postgresql/data"}]}},
        "volumes": {"data": {"name": "shop_data"}}
    }));
    let db = json_of(&t, "StatefulSet", "shop-db");
    assert_eq!(db["spec"]["replicas"], 2);
    assert_eq!(db["spec"]["serviceName"], "db");
    let template = &db["spec"]["volumeClaimTemplates"][0];
    assert_eq!(template["metadata"]["name"], "data");
    assert_eq!(template["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    assert_eq!(template["spec"]["resources"]["requests"]["storage"], "1Gi");
    assert_eq!(
        db["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0],
        json!({"mountPath": "/var/lib/postgresql/data", "name": "data"})
    );
    assert!(!t
        .objects
        .iter()
        .any(|o| o.kind() == "PersistentVolumeClaim"));
}

#[test]
fn a_volume_shared_by_services_is_one_read_write_many_claim() {
    let mount = json!([{"type": "volume", "source": "work", "target": "/work"}]);
    let t = run(json!({
        "services": {"a": {"image": "x", "volumes": mount}, "b": {"image": "x", "volumes": mount}},
        "volumes": {"work": {"name": "shop_work"}}
    }));
    let claim = json_of(&t, "PersistentVolumeClaim", "shop-work");
    assert_eq!(claim["spec"]["accessModes"], json!(["ReadWriteMany"]));
    for service in ["shop-a", "shop-b"] {
        let pod = pod_spec(&t, "Deployment", service);
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "shop-work"
        );
    }
}

#[test]
fn a_deployment_with_a_read_write_once_claim_is_updated_by_recreate() {
    let t = run(json!({
        "services": {"app": {"image": "x", "volumes": [{"type": "volume", "source": "data", "target": "/data"}]}},
        "volumes": {"data": {"name": "shop_data"}},
        "x-stackd": {"kubernetes": {"services": {"app": {"workload": "deployment"}}}}
    }));
    assert_eq!(
        json_of(&t, "PersistentVolumeClaim", "shop-data")["spec"]["accessModes"],
        json!(["ReadWriteOnce"])
    );
    assert_eq!(
        json_of(&t, "Deployment", "shop-app")["spec"]["strategy"],
        json!({"type": "Recreate"})
    );
}

#[test]
fn volume_settings_in_x_stackd_size_and_class_the_claim() {
    let t = run(json!({
        "services": {"db": {"image": "x", "volumes": [{"type": "volume", "source": "data", "target": "/d"}]}},
        "volumes": {"data": {"name": "shop_data"}},
        "x-stackd": {"kubernetes": {"volumes": {"data": {"size": "20Gi", "storage_class": "fast"}}}}
    }));
    let spec = &json_of(&t, "StatefulSet", "shop-db")["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(spec["resources"]["requests"]["storage"], "20Gi");
    assert_eq!(spec["storageClassName"], "fast");
}

#[test]
fn restart_no_makes_a_job_that_never_retries() {
    let t = run(json!({"services": {"migrate": {"image": "x", "restart": "no"}}}));
    let job = json_of(&t, "Job", "shop-migrate");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert!(
        !has(&t, "Service", "migrate"),
        "a Job without ports has no Service"
    );
}

#[test]
fn a_dependency_waited_on_to_complete_is_a_job() {
    let t = run(json!({"services": {
        "seed": {"image": "x", "restart": "on-failure:4"},
        "app": {"image": "y", "depends_on": {"seed": {"condition": "service_completed_successfully", "required": true}}}
    }}));
    let job = json_of(&t, "Job", "shop-seed");
    assert_eq!(job["spec"]["backoffLimit"], 4);
    assert_eq!(
        job["spec"]["template"]["spec"]["restartPolicy"],
        "OnFailure"
    );
}

#[test]
fn a_restart_policy_condition_of_none_is_a_job_too() {
    let t = run(json!({"services": {"once": {"image": "x",
        "deploy": {"restart_policy": {"condition": "none"}}}}}));
    assert!(has(&t, "Job", "shop-once"));
}

#[test]
fn global_mode_is_a_daemonset() {
    let t = run(json!({"services": {"agent": {"image": "x", "deploy": {"mode": "global"}}}}));
    assert!(has(&t, "DaemonSet", "shop-agent"));
}

#[test]
fn the_workload_override_in_x_stackd_wins() {
    let t = run(json!({
        "services": {"web": {"image": "x", "restart": "no"}},
        "x-stackd": {"kubernetes": {"services": {"web": {"workload": "statefulset"}}}}
    }));
    assert!(has(&t, "StatefulSet", "shop-web"));
    assert!(
        warning(&t, "web", "restart").is_some(),
        "restart: no is not honoured by a StatefulSet"
    );
}

#[test]
fn the_workload_label_overrides_too_and_must_agree_with_x_stackd() {
    let t = run(json!({"services": {"web": {"image": "x",
        "labels": {"dev.stackd.kubernetes.workload": "daemonset"}}}}));
    assert!(has(&t, "DaemonSet", "shop-web"));
    let disagreeing = project(json!({
        "services": {"web": {"image": "x", "labels": {"dev.stackd.kubernetes.workload": "job"}}},
        "x-stackd": {"kubernetes": {"services": {"web": {"workload": "deployment"}}}}
    }));
    let error = translate(&disagreeing, &TranslateOptions::default()).unwrap_err();
    assert!(
        matches!(error, TranslateError::BadOverride { .. }),
        "{error}"
    );
}

#[test]
fn an_override_of_an_unknown_service_key_or_value_is_an_error() {
    for extension in [
        json!({"kubernetes": {"services": {"nope": {"workload": "job"}}}}),
        json!({"kubernetes": {"services": {"web": {"workload": "pod"}}}}),
        json!({"kubernetes": {"services": {"web": {"replicas": 2}}}}),
        json!({"kubernetes": {"volumes": {"data": {"size": "lots"}}}}),
        json!({"kubernetes": {"wait_image": ""}}),
    ] {
        let project = project(json!({
            "services": {"web": {"image": "x"}},
            "volumes": {"data": {"name": "shop_data"}},
            "x-stackd": extension
        }));
        let error = translate(&project, &TranslateOptions::default()).unwrap_err();
        assert_eq!(error.reason(), "bad_override", "{error}");
    }
}

#[test]
fn object_names_are_the_project_and_service_as_a_dns_label() {
    let t =
        run(json!({"name": "my_shop", "services": {"Web_App": {"image": "x", "expose": ["80"]}}}));
    assert!(has(&t, "Deployment", "my-shop-web-app"));
    assert!(has(&t, "Service", "web-app"));
    assert!(warning(&t, "Web_App", "(name)").is_some());
}

#[test]
fn a_long_name_is_cut_with_a_hash_and_statefulsets_stay_within_52_characters() {
    let long = "a".repeat(70);
    let t = run(json!({
        "services": {long.clone(): {"image": "x", "volumes": [{"type": "volume", "source": "v", "target": "/v"}]}},
        "volumes": {"v": {"name": "shop_v"}}
    }));
    let set = t
        .objects
        .iter()
        .find(|o| o.kind() == "StatefulSet")
        .unwrap();
    assert!(set.name().len() <= 52, "{}", set.name());
    let service = t.objects.iter().find(|o| o.kind() == "Service").unwrap();
    assert!(service.name().len() <= 63);
    assert!(crate::kube::translate::is_dns_label(set.name()));
}

#[test]
fn two_services_whose_names_collide_are_an_error() {
    let project = project(json!({"services": {"web_1": {"image": "x"}, "web-1": {"image": "x"}}}));
    let error = translate(&project, &TranslateOptions::default()).unwrap_err();
    assert!(
        matches!(error, TranslateError::NameCollision { .. }),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("\"web-1\"") && text.contains("service web_1"),
        "{text}"
    );
}

#[test]
fn a_service_name_starting_with_a_digit_gets_a_valid_service_name_and_a_warning() {
    let t = run(json!({"services": {"1web": {"image": "x"}}}));
    assert!(has(&t, "Service", "s-1web"));
    assert!(warning(&t, "1web", "(name)").unwrap().contains("s-1web"));
}

#[test]
fn a_provider_service_is_not_translated_and_says_so() {
    let t = run(
        json!({"services": {"llm": {"provider": {"type": "model", "options": {"model": ["x"]}}}}}),
    );
    assert!(t.objects.is_empty());
    assert!(warning(&t, "llm", "*").is_some());
}
