//! NetworkPolicies from compose networks.
use serde_json::json;

use super::*;

#[test]
fn a_single_default_network_makes_no_policies() {
    let t = run(json!({
        "services": {"a": {"image": "x", "networks": {"default": null}}, "b": {"image": "x", "networks": {"default": null}}},
        "networks": {"default": {"name": "shop_default"}}
    }));
    assert!(!t.objects.iter().any(|o| o.kind() == "NetworkPolicy"));
}

#[test]
fn two_networks_isolate_ingress_by_network() {
    let t = run(json!({
        "services": {
            "web": {"image": "x", "networks": {"front": null}},
            "api": {"image": "x", "networks": {"front": null, "back": null}},
            "db": {"image": "x", "networks": {"back": null}}
        },
        "networks": {"front": {"name": "shop_front"}, "back": {"name": "shop_back"}}
    }));
    let back = json_of(&t, "NetworkPolicy", "shop-network-back");
    let members = json!({"app.kubernetes.io/part-of": "shop", "network.stackd.dev/back": "true"});
    assert_eq!(back["spec"]["podSelector"]["matchLabels"], members);
    assert_eq!(
        back["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
        members
    );
    assert_eq!(back["spec"]["policyTypes"], json!(["Ingress"]));
    let labels = &json_of(&t, "Deployment", "shop-api")["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["network.stackd.dev/back"], "true");
    assert_eq!(labels["network.stackd.dev/front"], "true");
    let web = &json_of(&t, "Deployment", "shop-web")["spec"]["template"]["metadata"]["labels"];
    assert!(web.get("network.stackd.dev/back").is_none());
}

#[test]
fn an_internal_network_limits_egress_to_its_members_and_dns() {
    let t = run(json!({
        "services": {"db": {"image": "x", "networks": {"private": null}}},
        "networks": {"private": {"name": "shop_private", "internal": true}}
    }));
    let egress = json_of(&t, "NetworkPolicy", "shop-db-internal");
    assert_eq!(egress["spec"]["policyTypes"], json!(["Egress"]));
    assert_eq!(
        egress["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"]
            ["network.stackd.dev/private"],
        "true"
    );
    assert_eq!(
        egress["spec"]["egress"][1]["ports"],
        json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}])
    );
}

#[test]
fn published_ports_accept_traffic_from_anywhere_when_networks_are_isolated() {
    let t = run(json!({
        "services": {"web": {"image": "x", "networks": {"front": null, "back": null},
                             "ports": [{"target": 80, "published": "8080"}]}},
        "networks": {"front": {"name": "shop_front"}, "back": {"name": "shop_back"}}
    }));
    let open = json_of(&t, "NetworkPolicy", "shop-web-published");
    assert_eq!(
        open["spec"]["ingress"],
        json!([{"ports": [{"port": 80, "protocol": "TCP"}]}])
    );
}

#[test]
fn network_settings_without_meaning_warn() {
    let t = run(json!({
        "services": {"a": {"image": "x", "networks": {"n": {"aliases": ["alias"], "ipv4_address": "10.1.0.5"}}}},
        "networks": {"n": {"name": "shop_n", "driver": "overlay", "ipam": {"config": [{"subnet": "10.1.0.0/24"}]}}}
    }));
    assert!(warning(&t, "a", "networks.n.ipv4_address").is_some());
    for key in ["driver", "ipam"] {
        assert!(
            t.warnings
                .iter()
                .any(|w| w.scope == Scope::Network("n".into()) && w.key == key),
            "{key}"
        );
    }
}

#[test]
fn a_network_alias_is_one_more_service_selecting_the_same_pods() {
    let t = run(json!({
        "services": {"postgres": {"image": "x", "expose": ["5432"],
                                  "networks": {"back": {"aliases": ["db", "database"]}}}},
        "networks": {"back": {"name": "shop_back"}}
    }));
    let own = json_of(&t, "Service", "postgres");
    for alias in ["db", "database"] {
        let service = json_of(&t, "Service", alias);
        assert_eq!(service["spec"], own["spec"], "{alias}");
    }
    assert!(warning(&t, "postgres", "networks.back.aliases").is_none());
}

#[test]
fn a_link_alias_is_a_service_for_the_linked_service() {
    let t = run(json!({"services": {
        "db": {"image": "x"},
        "web": {"image": "y", "links": ["db:database"]}
    }}));
    assert_eq!(
        json_of(&t, "Service", "database")["spec"]["selector"]["app.kubernetes.io/instance"],
        "shop-db"
    );
}

#[test]
fn an_alias_never_takes_the_name_of_another_services_service() {
    let t = run(json!({
        "services": {"a": {"image": "x", "networks": {"n": {"aliases": ["b"]}}}, "b": {"image": "y"}},
        "networks": {"n": {"name": "shop_n"}}
    }));
    assert_eq!(
        json_of(&t, "Service", "b")["spec"]["selector"]["app.kubernetes.io/instance"],
        "shop-b"
    );
    assert!(warning(&t, "a", "networks.n.aliases")
        .unwrap()
        .contains("taken by service b"));
}
