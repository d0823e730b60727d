//! Secrets, configs and volumes.
use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::kube::translate::Contents;

#[test]
fn a_secret_is_a_secret_object_mounted_under_run_secrets() {
    let t = run(json!({
        "services": {"app": {"image": "x", "secrets": [{"source": "db_password"}]}},
        "secrets": {"db_password": {"name": "shop_db_password", "content": "hunter2"}}
    }));
    let secret = json_of(&t, "Secret", "shop-db-password");
    assert_eq!(secret["data"]["db_password"], "aHVudGVyMg==");
    assert_eq!(secret["type"], "Opaque");
    let c = container(&t, "Deployment", "shop-app");
    assert_eq!(
        c["volumeMounts"][0],
        json!({"mountPath": "/run/secrets/db_password", "name": "secret-db-password",
               "readOnly": true, "subPath": "db_password"})
    );
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(
        pod["volumes"][0]["secret"],
        json!({"items": [{"key": "db_password", "path": "db_password"}], "secretName": "shop-db-password"})
    );
}

#[test]
fn a_secret_target_is_relative_to_run_secrets_or_absolute_and_keeps_its_mode() {
    let t = run(json!({
        "services": {"app": {"image": "x", "secrets": [
            {"source": "key", "target": "api-key", "mode": "0400"},
            {"source": "key", "target": "/etc/app/key"}
        ]}},
        "secrets": {"key": {"name": "shop_key", "content": "k"}}
    }));
    let mounts = container(&t, "Deployment", "shop-app")["volumeMounts"].clone();
    assert_eq!(mounts[0]["mountPath"], "/run/secrets/api-key");
    assert_eq!(mounts[1]["mountPath"], "/etc/app/key");
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(pod["volumes"][0]["secret"]["items"][0]["mode"], 0o400);
}

#[test]
fn a_config_is_a_config_map_mounted_at_its_target() {
    let t = run(json!({
        "services": {"web": {"image": "nginx", "configs": [
            {"source": "nginx", "target": "/etc/nginx/nginx.conf"}, {"source": "motd"}]}},
        "configs": {"nginx": {"name": "shop_nginx", "content": "events {}\n"},
                    "motd": {"name": "shop_motd", "content": "hi"}}
    }));
    assert_eq!(
        json_of(&t, "ConfigMap", "shop-nginx")["data"],
        json!({"nginx": "events {}\n"})
    );
    let mounts = container(&t, "Deployment", "shop-web")["volumeMounts"].clone();
    assert_eq!(mounts[0]["mountPath"], "/etc/nginx/nginx.conf");
    assert_eq!(mounts[0]["subPath"], "nginx");
    assert_eq!(mounts[1]["mountPath"], "/motd");
}

#[test]
fn file_and_variable_values_come_from_the_contents_the_caller_read() {
    let options = TranslateOptions {
        contents: Contents {
            files: BTreeMap::from([("/p/cert.pem".to_string(), vec![0xff, 0x00])]),
            variables: BTreeMap::from([("TOKEN".to_string(), "t0k".to_string())]),
        },
        ..TranslateOptions::default()
    };
    let t = run_with(
        json!({
            "services": {"app": {"image": "x", "configs": [{"source": "cert"}], "secrets": [{"source": "token"}]}},
            "configs": {"cert": {"name": "shop_cert", "file": "/p/cert.pem"}},
            "secrets": {"token": {"name": "shop_token", "environment": "TOKEN"}}
        }),
        &options,
    );
    let config = json_of(&t, "ConfigMap", "shop-cert");
    assert_eq!(config["binaryData"], json!({"cert": "/wA="}));
    assert!(config.get("data").is_none());
    assert_eq!(json_of(&t, "Secret", "shop-token")["data"]["token"], "dDBr");
}

#[test]
fn a_value_that_cannot_be_read_leaves_the_key_out_with_a_warning_that_holds_no_value() {
    let t = run(json!({
        "services": {"app": {"image": "x", "secrets": [{"source": "token"}]}},
        "secrets": {"token": {"name": "shop_token", "environment": "TOKEN"}}
    }));
    assert!(json_of(&t, "Secret", "shop-token").get("data").is_none());
    let warning = t
        .warnings
        .iter()
        .find(|w| w.scope == Scope::Secret("token".into()))
        .unwrap();
    assert!(warning.message.contains("TOKEN"), "{warning}");
}

#[test]
fn secret_values_never_appear_in_warnings() {
    let t = run(json!({
        "services": {"app": {"image": "x", "container_name": "c", "secrets": [
            {"source": "pw", "uid": "1000"}]}},
        "secrets": {"pw": {"name": "shop_pw", "content": "s3cr3t-value", "driver": "vault"}}
    }));
    assert!(!t.warnings.is_empty());
    for warning in &t.warnings {
        assert!(!warning.to_string().contains("s3cr3t-value"), "{warning}");
    }
}

#[test]
fn an_external_secret_is_the_existing_object_of_that_name() {
    let t = run(json!({
        "services": {"app": {"image": "x", "secrets": [{"source": "tls"}]}},
        "secrets": {"tls": {"name": "company-tls", "external": true}}
    }));
    assert!(!t.objects.iter().any(|o| o.kind() == "Secret"));
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "company-tls");
    assert!(t
        .warnings
        .iter()
        .any(|w| w.scope == Scope::Secret("tls".into()) && w.key == "external"));
}

#[test]
fn tmpfs_mounts_are_memory_empty_dirs_with_their_size() {
    let t = run(json!({"services": {"app": {"image": "x",
        "tmpfs": ["/run", "/tmp:size=64m"],
        "volumes": [{"type": "tmpfs", "target": "/cache", "tmpfs": {"size": "1048576"}}]}}}));
    let pod = pod_spec(&t, "Deployment", "shop-app");
    let volumes = pod["volumes"].as_array().unwrap();
    let dirs: Vec<_> = volumes.iter().map(|v| v["emptyDir"].clone()).collect();
    assert!(dirs.contains(&json!({"medium": "Memory", "sizeLimit": "1Mi"})));
    assert!(dirs.contains(&json!({"medium": "Memory", "sizeLimit": "64Mi"})));
    assert!(dirs.contains(&json!({"medium": "Memory"})));
    let paths: Vec<_> = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["/cache", "/run", "/tmp"]);
}

#[test]
fn shm_size_is_a_memory_empty_dir_at_dev_shm() {
    let t = run(json!({"services": {"app": {"image": "x", "shm_size": "268435456"}}}));
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(
        pod["volumes"][0]["emptyDir"],
        json!({"medium": "Memory", "sizeLimit": "256Mi"})
    );
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["mountPath"],
        "/dev/shm"
    );
}

#[test]
fn host_binds_are_empty_dirs_with_a_warning_unless_allowed() {
    let value = json!({"services": {"app": {"image": "x", "volumes": [
        {"type": "bind", "source": "/srv/data", "target": "/data", "read_only": true,
         "bind": {"create_host_path": true}}]}}});
    let t = run(value.clone());
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(pod["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(pod["containers"][0]["volumeMounts"][0]["readOnly"], true);
    assert!(warning(&t, "app", "volumes.source")
        .unwrap()
        .contains("/srv/data"));
    let allowed = TranslateOptions {
        allow_host_path: true,
        ..TranslateOptions::default()
    };
    let t = run_with(value, &allowed);
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(pod["volumes"][0]["hostPath"], json!({"path": "/srv/data"}));
    assert!(warning(&t, "app", "volumes.source").is_none());
}

#[test]
fn an_anonymous_volume_is_an_empty_dir() {
    let t = run(
        json!({"services": {"app": {"image": "x", "volumes": [{"type": "volume", "target": "/scratch"}]}}}),
    );
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(pod["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["mountPath"],
        "/scratch"
    );
}

#[test]
fn two_mounts_at_one_path_keep_the_first_and_warn() {
    let t = run(json!({"services": {"app": {"image": "x",
        "volumes": [{"type": "volume", "target": "/data"}], "tmpfs": ["/data"]}}}));
    let mounts = container(&t, "Deployment", "shop-app")["volumeMounts"].clone();
    assert_eq!(mounts.as_array().unwrap().len(), 1);
    assert!(warning(&t, "app", "tmpfs")
        .unwrap()
        .contains("already mounted"));
}

#[test]
fn an_external_volume_is_the_existing_claim_of_that_name() {
    let t = run(json!({
        "services": {"app": {"image": "x", "volumes": [{"type": "volume", "source": "data", "target": "/d"}]}},
        "volumes": {"data": {"name": "legacy-data", "external": true}}
    }));
    assert!(!t
        .objects
        .iter()
        .any(|o| o.kind() == "PersistentVolumeClaim"));
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "legacy-data"
    );
}

#[test]
fn a_bound_file_the_caller_read_is_copied_into_a_config_map_mounted_read_only() {
    let options = TranslateOptions {
        contents: Contents {
            files: BTreeMap::from([("/p/nginx.conf".to_string(), b"events {}\n".to_vec())]),
            variables: BTreeMap::new(),
        },
        ..TranslateOptions::default()
    };
    let t = run_with(
        json!({"services": {"proxy": {"image": "nginx", "volumes": [
            {"type": "bind", "source": "/p/nginx.conf", "target": "/etc/nginx/conf.d/default.conf"},
            {"type": "bind", "source": "/p/site", "target": "/usr/share/nginx/html"}]}}}),
        &options,
    );
    assert_eq!(
        json_of(&t, "ConfigMap", "shop-proxy-nginx-conf")["data"],
        json!({"nginx.conf": "events {}\n"})
    );
    let pod = pod_spec(&t, "Deployment", "shop-proxy");
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"],
        "shop-proxy-nginx-conf"
    );
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0],
        json!({"mountPath": "/etc/nginx/conf.d/default.conf", "name": "file-0",
               "readOnly": true, "subPath": "nginx.conf"})
    );
    assert_eq!(
        pod["volumes"][1]["emptyDir"],
        json!({}),
        "a directory is not copied"
    );
    let warnings: Vec<&str> = t
        .warnings
        .iter()
        .filter(|w| w.key == "volumes.source")
        .map(|w| w.message.as_str())
        .collect();
    assert!(warnings
        .iter()
        .any(|w| w.contains("copied into the ConfigMap shop-proxy-nginx-conf")));
    assert!(warnings
        .iter()
        .any(|w| w.contains("/p/site is not mounted")));
}
