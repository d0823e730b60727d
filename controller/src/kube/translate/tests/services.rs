//! Services from `ports` and `expose`.
use serde_json::json;

use super::*;

#[test]
fn ports_and_expose_become_named_service_ports_on_the_container_port() {
    let t = run(json!({"services": {"web": {"image": "x",
        "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}],
        "expose": ["9090"]}}}));
    let service = json_of(&t, "Service", "web");
    assert_eq!(
        service["spec"]["ports"],
        json!([
            {"name": "tcp-80", "port": 80, "protocol": "TCP", "targetPort": 80},
            {"name": "tcp-9090", "port": 9090, "protocol": "TCP", "targetPort": 9090}
        ])
    );
    assert!(
        service["spec"].get("type").is_none(),
        "ClusterIP by default"
    );
    assert_eq!(
        container(&t, "Deployment", "shop-web")["ports"],
        json!([
            {"containerPort": 80, "name": "tcp-80", "protocol": "TCP"},
            {"containerPort": 9090, "name": "tcp-9090", "protocol": "TCP"}
        ])
    );
}

#[test]
fn udp_ports_keep_their_protocol() {
    let t = run(json!({"services": {"dns": {"image": "x",
        "ports": [{"target": 53, "protocol": "udp"}, {"target": 53, "protocol": "tcp"}],
        "expose": ["5353/udp"]}}}));
    let ports = &json_of(&t, "Service", "dns")["spec"]["ports"];
    assert_eq!(ports[0]["protocol"], "UDP");
    assert_eq!(ports[0]["name"], "udp-53");
    assert_eq!(ports[1]["protocol"], "TCP");
    assert_eq!(
        ports[2],
        json!({"name": "udp-5353", "port": 5353, "protocol": "UDP", "targetPort": 5353})
    );
}

#[test]
fn expose_ranges_become_one_port_each() {
    let t = run(json!({"services": {"x": {"image": "x", "expose": ["8000-8002"]}}}));
    let ports = json_of(&t, "Service", "x")["spec"]["ports"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(ports, 3);
}

#[test]
fn a_valid_compose_port_name_is_kept_and_an_invalid_one_replaced_with_a_warning() {
    let t = run(json!({"services": {"web": {"image": "x", "ports": [
        {"target": 80, "name": "http"},
        {"target": 443, "name": "Not_Valid_Port_Name"}
    ]}}}));
    let ports = &json_of(&t, "Service", "web")["spec"]["ports"];
    assert_eq!(ports[0]["name"], "http");
    assert_eq!(ports[1]["name"], "tcp-443");
    assert!(warning(&t, "web", "ports.name").is_some());
}

#[test]
fn published_ports_warn_that_a_cluster_ip_service_does_not_publish_them() {
    let t = run(
        json!({"services": {"web": {"image": "x", "ports": [{"target": 80, "published": "8080"}]}}}),
    );
    assert!(warning(&t, "web", "ports.published")
        .unwrap()
        .contains("NodePort or LoadBalancer"));
}

#[test]
fn a_nodeport_service_uses_the_published_port_when_it_is_in_the_node_port_range() {
    let t = run(json!({
        "services": {"web": {"image": "x", "ports": [
            {"target": 80, "published": "30080"}, {"target": 443, "published": "8443"}]}},
        "x-stackd": {"kubernetes": {"services": {"web": {"service_type": "NodePort"}}}}
    }));
    let service = json_of(&t, "Service", "web");
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(service["spec"]["ports"][0]["port"], 80);
    assert!(service["spec"]["ports"][1].get("nodePort").is_none());
    assert!(warning(&t, "web", "ports.published")
        .unwrap()
        .contains("30000-32767"));
}

#[test]
fn a_loadbalancer_service_listens_on_the_published_port() {
    let t = run(json!({"services": {"web": {"image": "x",
        "labels": {"dev.stackd.kubernetes.service-type": "LoadBalancer"},
        "ports": [{"target": 8080, "published": "80"}]}}}));
    let service = json_of(&t, "Service", "web");
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    assert_eq!(
        service["spec"]["ports"][0],
        json!({"name": "tcp-80", "port": 80, "protocol": "TCP", "targetPort": 8080})
    );
    assert!(warning(&t, "web", "ports.published").is_none());
}

#[test]
fn a_service_without_ports_gets_a_headless_service_so_its_name_resolves() {
    let t = run(json!({"services": {"worker": {"image": "x"}}}));
    let service = json_of(&t, "Service", "worker");
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert!(service["spec"].get("ports").is_none());
}

#[test]
fn endpoint_mode_dnsrr_makes_the_service_headless() {
    let t = run(json!({"services": {"web": {"image": "x", "expose": ["80"],
        "deploy": {"endpoint_mode": "dnsrr"}}}}));
    assert_eq!(json_of(&t, "Service", "web")["spec"]["clusterIP"], "None");
}

#[test]
fn a_job_with_ports_gets_a_service() {
    let t = run(json!({"services": {"once": {"image": "x", "restart": "no", "expose": ["80"]}}}));
    assert!(has(&t, "Service", "once"));
}

#[test]
fn a_host_address_warns_that_services_do_not_bind_to_one() {
    let t = run(
        json!({"services": {"web": {"image": "x", "ports": [{"target": 80, "host_ip": "127.0.0.1"}]}}}),
    );
    assert!(warning(&t, "web", "ports.host_ip").is_some());
}
