//! The container and pod settings: command, resources, security, labels,
//! host and scheduling settings, and the keys without a meaning.
use serde_json::json;

use super::*;

#[test]
fn entrypoint_and_command_become_command_and_args() {
    let t = run(
        json!({"services": {"app": {"image": "x", "entrypoint": ["/bin/app"],
        "command": ["--port", "80"], "working_dir": "/srv", "stdin_open": true, "tty": true}}}),
    );
    let c = container(&t, "Deployment", "shop-app");
    assert_eq!(c["command"], json!(["/bin/app"]));
    assert_eq!(c["args"], json!(["--port", "80"]));
    assert_eq!(c["workingDir"], "/srv");
    assert_eq!(
        (c["stdin"].clone(), c["tty"].clone()),
        (json!(true), json!(true))
    );
}

#[test]
fn an_empty_command_cannot_clear_the_images_and_warns() {
    let t = run(json!({"services": {"app": {"image": "x", "command": []}}}));
    assert!(container(&t, "Deployment", "shop-app")
        .get("args")
        .is_none());
    assert!(warning(&t, "app", "command").is_some());
}

#[test]
fn deploy_resources_become_limits_and_requests() {
    let t = run(
        json!({"services": {"app": {"image": "x", "deploy": {"resources": {
        "limits": {"cpus": 0.5, "memory": "536870912"},
        "reservations": {"cpus": 0.25, "memory": "268435456"}}}}}}),
    );
    assert_eq!(
        container(&t, "Deployment", "shop-app")["resources"],
        json!({"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}})
    );
}

#[test]
fn the_older_cpus_and_memory_keys_apply_when_deploy_sets_none() {
    let t = run(
        json!({"services": {"app": {"image": "x", "cpus": 2, "mem_limit": "1073741824",
        "mem_reservation": "1048576"}}}),
    );
    assert_eq!(
        container(&t, "Deployment", "shop-app")["resources"],
        json!({"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"memory": "1Mi"}})
    );
}

#[test]
fn a_reservation_above_its_limit_is_dropped_with_a_warning() {
    let t = run(
        json!({"services": {"app": {"image": "x", "deploy": {"resources": {
        "limits": {"memory": "1048576"}, "reservations": {"memory": "2097152"}}}}}}),
    );
    let resources = container(&t, "Deployment", "shop-app")["resources"].clone();
    assert_eq!(resources, json!({"limits": {"memory": "1Mi"}}));
    assert!(warning(&t, "app", "deploy.resources.reservations.memory").is_some());
}

#[test]
fn a_gpu_reservation_with_a_count_becomes_an_nvidia_gpu_limit() {
    let t = run(
        json!({"services": {"ml": {"image": "x", "deploy": {"resources": {"reservations": {
        "devices": [{"capabilities": ["gpu"], "driver": "nvidia", "count": 2}]}}}}}}),
    );
    assert_eq!(
        container(&t, "Deployment", "shop-ml")["resources"]["limits"]["nvidia.com/gpu"],
        "2"
    );
}

#[test]
fn user_read_only_capabilities_and_privileged_become_the_security_context() {
    let t = run(
        json!({"services": {"app": {"image": "x", "user": "1000:2000", "read_only": true,
        "cap_add": ["NET_ADMIN"], "cap_drop": ["CAP_ALL"], "privileged": true}}}),
    );
    assert_eq!(
        container(&t, "Deployment", "shop-app")["securityContext"],
        json!({"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}, "privileged": true,
               "readOnlyRootFilesystem": true, "runAsGroup": 2000, "runAsUser": 1000})
    );
}

#[test]
fn a_user_name_cannot_be_resolved_and_warns() {
    let t = run(json!({"services": {"app": {"image": "x", "user": "www-data"}}}));
    assert!(container(&t, "Deployment", "shop-app")
        .get("securityContext")
        .is_none());
    assert!(warning(&t, "app", "user").is_some());
}

#[test]
fn no_new_privileges_and_seccomp_map_to_the_security_context() {
    let t = run(json!({"services": {"app": {"image": "x",
        "security_opt": ["no-new-privileges:true", "seccomp:unconfined", "label:type:svirt_t"]}}}));
    assert_eq!(
        container(&t, "Deployment", "shop-app")["securityContext"],
        json!({"allowPrivilegeEscalation": false, "seccompProfile": {"type": "Unconfined"},
               "seLinuxOptions": {"type": "svirt_t"}})
    );
}

#[test]
fn no_new_privileges_is_not_set_on_a_privileged_container() {
    let t = run(
        json!({"services": {"app": {"image": "x", "privileged": true,
        "security_opt": ["no-new-privileges"]}}}),
    );
    assert!(container(&t, "Deployment", "shop-app")["securityContext"]
        .get("allowPrivilegeEscalation")
        .is_none());
    assert!(warning(&t, "app", "security_opt").is_some());
}

#[test]
fn init_shares_the_process_namespace_so_the_program_is_not_pid_1() {
    let t = run(json!({"services": {"app": {"image": "x", "init": true}}}));
    assert_eq!(
        pod_spec(&t, "Deployment", "shop-app")["shareProcessNamespace"],
        true
    );
}

#[test]
fn labels_and_annotations_are_carried_and_invalid_label_values_become_annotations() {
    let t = run(json!({"services": {"app": {"image": "x",
        "labels": {"tier": "front", "com.example.description": "a web app"},
        "annotations": {"example.com/owner": "team a"},
        "deploy": {"labels": {"release": "stable"}}}}}));
    let deployment = json_of(&t, "Deployment", "shop-app");
    assert_eq!(deployment["metadata"]["labels"]["release"], "stable");
    let meta = &deployment["spec"]["template"]["metadata"];
    assert_eq!(meta["labels"]["tier"], "front");
    assert_eq!(meta["annotations"]["com.example.description"], "a web app");
    assert_eq!(meta["annotations"]["example.com/owner"], "team a");
}

#[test]
fn a_compose_label_never_replaces_the_labels_stackd_selects_by() {
    let t = run(json!({"services": {"app": {"image": "x",
        "labels": {"app.kubernetes.io/instance": "other"}}}}));
    let labels = &json_of(&t, "Deployment", "shop-app")["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/instance"], "shop-app");
    assert!(warning(&t, "app", "labels.app.kubernetes.io/instance").is_some());
}

#[test]
fn extra_hosts_dns_sysctls_hostname_and_grace_period_map_to_the_pod() {
    let t = run(json!({"services": {"app": {"image": "x",
        "extra_hosts": ["db.local=10.0.0.5", "cache.local=10.0.0.5", "gw=host-gateway"],
        "dns": ["8.8.8.8"], "dns_search": ["corp"], "dns_opt": ["ndots:2", "rotate"],
        "sysctls": {"net.core.somaxconn": "1024"}, "hostname": "box",
        "stop_grace_period": "1m30s", "group_add": ["1001"]}}}));
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(
        pod["hostAliases"],
        json!([{"hostnames": ["cache.local", "db.local"], "ip": "10.0.0.5"}])
    );
    assert!(warning(&t, "app", "extra_hosts")
        .unwrap()
        .contains("host-gateway"));
    assert_eq!(
        pod["dnsConfig"],
        json!({"nameservers": ["8.8.8.8"], "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}],
               "searches": ["corp"]})
    );
    assert_eq!(
        pod["securityContext"],
        json!({"supplementalGroups": [1001], "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]})
    );
    assert_eq!(pod["hostname"], "box");
    assert_eq!(pod["terminationGracePeriodSeconds"], 90);
}

#[test]
fn the_host_network_pid_and_ipc_are_refused_unless_allowed() {
    let value = json!({"services": {"app": {"image": "x", "network_mode": "host", "pid": "host", "ipc": "host"}}});
    let t = run(value.clone());
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert!(
        pod.get("hostNetwork").is_none()
            && pod.get("hostPID").is_none()
            && pod.get("hostIPC").is_none()
    );
    for key in ["network_mode", "pid", "ipc"] {
        assert!(
            warning(&t, "app", key).unwrap().contains("unless allowed"),
            "{key}"
        );
    }
    let allowed = TranslateOptions {
        allow_host_network: true,
        allow_host_pid: true,
        allow_host_ipc: true,
        ..TranslateOptions::default()
    };
    let t = run_with(value, &allowed);
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(
        (
            pod["hostNetwork"].clone(),
            pod["hostPID"].clone(),
            pod["hostIPC"].clone()
        ),
        (json!(true), json!(true), json!(true))
    );
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
}

#[test]
fn placement_constraints_and_platform_become_node_selection() {
    let t = run(
        json!({"services": {"app": {"image": "x", "platform": "linux/arm64",
        "deploy": {"placement": {
            "constraints": ["node.labels.disk==ssd", "node.hostname!=old", "node.role==manager"],
            "preferences": [{"spread": "node.labels.zone"}]}}}}}),
    );
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(
        pod["nodeSelector"],
        json!({"disk": "ssd", "kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux"})
    );
    assert_eq!(
        pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchExpressions"],
        json!([{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["old"]}])
    );
    assert_eq!(pod["topologySpreadConstraints"][0]["topologyKey"], "zone");
    assert!(warning(&t, "app", "deploy.placement.constraints")
        .unwrap()
        .contains("node.role"));
}

#[test]
fn update_config_shapes_the_rolling_update() {
    let t = run(
        json!({"services": {"app": {"image": "x", "deploy": {"update_config": {
        "parallelism": 2, "order": "start-first", "monitor": "30s", "delay": "10s"}}}}}),
    );
    let spec = json_of(&t, "Deployment", "shop-app")["spec"].clone();
    assert_eq!(
        spec["strategy"],
        json!({"rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}, "type": "RollingUpdate"})
    );
    assert_eq!(spec["minReadySeconds"], 30);
    assert!(warning(&t, "app", "deploy.update_config.delay").is_some());
}

#[test]
fn keys_without_a_kubernetes_meaning_warn_naming_the_service_and_the_key() {
    let t = run(
        json!({"services": {"app": {"image": "x", "container_name": "app-1",
        "devices": [{"source": "/dev/fuse", "target": "/dev/fuse", "permissions": "rwm"}],
        "build": {"context": "/src"}, "logging": {"driver": "json-file"},
        "ulimits": {"nofile": 1024}, "volumes_from": ["other"], "stop_signal": "SIGINT"}}}),
    );
    for key in [
        "container_name",
        "devices",
        "build",
        "logging",
        "ulimits",
        "volumes_from",
        "stop_signal",
    ] {
        assert!(warning(&t, "app", key).is_some(), "no warning for {key}");
    }
    let rendered = t
        .warnings
        .iter()
        .find(|w| w.key == "container_name")
        .unwrap()
        .to_string();
    assert!(
        rendered.starts_with("service app: container_name: "),
        "{rendered}"
    );
}

#[test]
fn a_built_image_without_a_name_gets_the_name_compose_gives_it() {
    let t = run(json!({"services": {"api": {"build": {"context": "/src"}}}}));
    assert_eq!(container(&t, "Deployment", "shop-api")["image"], "shop-api");
    assert!(warning(&t, "api", "build").unwrap().contains("shop-api"));
}

#[test]
fn pull_policies_map_to_image_pull_policies() {
    for (compose, kubernetes) in [
        ("always", "Always"),
        ("never", "Never"),
        ("missing", "IfNotPresent"),
    ] {
        let t = run(json!({"services": {"app": {"image": "x", "pull_policy": compose}}}));
        assert_eq!(
            container(&t, "Deployment", "shop-app")["imagePullPolicy"],
            kubernetes
        );
    }
}

#[test]
fn lifecycle_hooks_run_their_first_command() {
    let t = run(json!({"services": {"app": {"image": "x",
        "post_start": [{"command": ["touch", "/ready"]}],
        "pre_stop": [{"command": ["sh", "-c", "sleep 5"]}, {"command": ["true"]}]}}}));
    let lifecycle = container(&t, "Deployment", "shop-app")["lifecycle"].clone();
    assert_eq!(
        lifecycle["postStart"]["exec"]["command"],
        json!(["touch", "/ready"])
    );
    assert_eq!(
        lifecycle["preStop"]["exec"]["command"],
        json!(["sh", "-c", "sleep 5"])
    );
    assert!(warning(&t, "app", "pre_stop").is_some());
}

#[test]
fn init_gives_way_to_an_allowed_host_pid_namespace() {
    let allowed = TranslateOptions {
        allow_host_pid: true,
        ..TranslateOptions::default()
    };
    let t = run_with(
        json!({"services": {"app": {"image": "x", "init": true, "pid": "host"}}}),
        &allowed,
    );
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(pod["hostPID"], true);
    assert!(pod.get("shareProcessNamespace").is_none());
    assert!(warning(&t, "app", "init").is_some());
}

#[test]
fn values_the_api_server_would_refuse_are_left_out_with_a_warning() {
    let t = run(
        json!({"services": {"app": {"image": "x", "dns": ["dns.example.com", "1.1.1.1"],
        "sysctls": {"Not A Sysctl": "1", "net.ipv4.tcp_syncookies": "1"},
        "extra_hosts": ["bad host=10.0.0.1"],
        "volumes": [{"type": "volume", "target": "/d"}]}}}),
    );
    let pod = pod_spec(&t, "Deployment", "shop-app");
    assert_eq!(pod["dnsConfig"]["nameservers"], json!(["1.1.1.1"]));
    assert_eq!(
        pod["securityContext"]["sysctls"],
        json!([{"name": "net.ipv4.tcp_syncookies", "value": "1"}])
    );
    assert!(pod.get("hostAliases").is_none());
    for key in ["dns", "sysctls.Not A Sysctl", "extra_hosts"] {
        assert!(warning(&t, "app", key).is_some(), "{key}");
    }
}
