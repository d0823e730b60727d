//! Each transform on small snippets, with JSON as compose prints it.
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::*;
use crate::load::yaml::parse_documents;

fn parse(yaml: &str) -> Node {
    let file: Arc<str> = Arc::from("compose.yaml");
    parse_documents(yaml, &file).expect("parses").remove(0)
}

fn canon(yaml: &str) -> Json {
    let mut node = parse(yaml);
    canonicalize(&mut node).expect("canonicalizes");
    node.to_json()
}

/// The canonical form of service `a` in a one-service file.
/// Canonical form, then the normalization that follows it once all files merged.
fn normalized(yaml: &str) -> Json {
    let mut node = parse(yaml);
    canonicalize(&mut node).expect("canonicalizes");
    crate::load::normalize::normalize(&mut node, "p", &std::collections::BTreeMap::new());
    node.to_json()
}

fn normalized_service(fields: &str) -> Json {
    normalized(&format!("services:\n  a:\n{}", indent(fields)))["services"]["a"].clone()
}

fn service(fields: &str) -> Json {
    let yaml = format!("services:\n  a:\n{}", indent(fields));
    canon(&yaml)["services"]["a"].clone()
}

fn service_err(fields: &str) -> TransformError {
    let yaml = format!("services:\n  a:\n{}", indent(fields));
    let mut node = parse(&yaml);
    canonicalize(&mut node).expect_err("refused")
}

fn indent(fields: &str) -> String {
    fields
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
}

#[test]
fn short_ports_expand_to_long_syntax_with_ingress_mode_and_tcp() {
    let s = service("ports: [3000, \"127.0.0.1:8001:8001\", \"9090-9091:8080-8081/udp\"]");
    assert_eq!(
        s["ports"],
        json!([
            {"mode": "ingress", "target": 3000, "protocol": "tcp"},
            {"mode": "ingress", "host_ip": "127.0.0.1", "target": 8001, "published": "8001", "protocol": "tcp"},
            {"mode": "ingress", "target": 8080, "published": "9090", "protocol": "udp"},
            {"mode": "ingress", "target": 8081, "published": "9091", "protocol": "udp"},
        ])
    );
}

#[test]
fn long_ports_get_defaults_and_a_string_published_port() {
    let s = service("ports:\n  - target: \"80\"\n    published: 8080\n  - target: 81\n    mode: host\n    protocol: TCP");
    assert_eq!(
        s["ports"],
        json!([
            {"target": 80, "published": "8080", "protocol": "tcp", "mode": "ingress"},
            {"target": 81, "mode": "host", "protocol": "TCP"},
        ])
    );
}

#[test]
fn a_later_port_with_the_same_binding_replaces_the_earlier_one() {
    let s = service("ports: [\"8080-8081:80-81\", \"8080:80\", \"127.0.0.1:8080:80\"]");
    assert_eq!(
        s["ports"],
        json!([
            {"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"},
            {"mode": "ingress", "target": 81, "published": "8081", "protocol": "tcp"},
            {"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8080", "protocol": "tcp"},
        ])
    );
}

#[test]
fn a_bad_port_is_reported_with_place_path_and_reason() {
    let err = service_err("image: x\nports: [\"80:80\", \"80:abc\"]");
    assert!(matches!(err, TransformError::InvalidPort { .. }));
    assert_eq!(
        err.to_string(),
        "compose.yaml:4:22: services.a.ports[1]: invalid port \"80:abc\": invalid containerPort: abc"
    );
}

#[test]
fn a_port_without_a_container_port_is_refused() {
    let err = service_err("ports: [\"8080:0\"]");
    assert!(matches!(err, TransformError::MissingTarget { .. }), "{err}");
    assert_eq!(err.path(), "services.a.ports[0]");
    let err = service_err("ports: [{published: 80}]");
    assert!(matches!(err, TransformError::MissingTarget { .. }), "{err}");
}

#[test]
fn a_float_port_is_refused() {
    let err = service_err("ports: [80.5]");
    assert!(matches!(err, TransformError::WrongType { .. }), "{err}");
}

#[test]
fn short_volumes_become_binds_named_and_anonymous_volumes() {
    let s = service("volumes: [/var/lib/anon, \"./static:/www:ro\", \"data:/data:nocopy\"]");
    assert_eq!(
        s["volumes"],
        json!([
            {"type": "volume", "target": "/var/lib/anon", "volume": {}},
            {"type": "bind", "source": "./static", "target": "/www", "read_only": true,
             "bind": {"create_host_path": true}},
            {"type": "volume", "source": "data", "target": "/data", "volume": {"nocopy": true}},
        ])
    );
}

#[test]
fn long_volumes_are_typed_and_their_targets_cleaned() {
    let s = normalized_service(
        "volumes:\n  - type: tmpfs\n    target: /t/\n    tmpfs: {size: 10m, mode: 0755}\n  - type: volume\n    source: v\n    target: /v//x/../y\n    read_only: \"true\"",
    );
    assert_eq!(
        s["volumes"],
        json!([
            {"type": "tmpfs", "target": "/t", "tmpfs": {"size": "10485760", "mode": 493}},
            {"type": "volume", "source": "v", "target": "/v/y", "read_only": true},
        ])
    );
}

#[test]
fn two_volumes_on_one_target_keep_the_last() {
    let s = service("volumes: [\"./one:/data\", \"./two:/data\"]");
    assert_eq!(s["volumes"].as_array().map(Vec::len), Some(1));
    assert_eq!(s["volumes"][0]["source"], "./two");
}

#[test]
fn a_bad_volume_spec_is_refused() {
    let err = service_err("volumes: [\"ab::cd\"]");
    assert!(matches!(err, TransformError::InvalidVolume { .. }), "{err}");
    assert!(
        err.to_string().ends_with("empty section between colons"),
        "{err}"
    );
    let err = service_err("volumes: [{type: volume, source: v}]");
    assert!(matches!(err, TransformError::MissingTarget { .. }), "{err}");
}

#[test]
fn depends_on_lists_become_mappings_with_default_condition() {
    let s = service("depends_on: [db]");
    assert_eq!(
        s["depends_on"],
        json!({"db": {"condition": "service_started", "required": true}})
    );
    let s = service("depends_on:\n  db: {condition: service_healthy, restart: true}");
    assert_eq!(
        s["depends_on"],
        json!({"db": {"condition": "service_healthy", "restart": true, "required": true}})
    );
}

#[test]
fn depends_on_entries_must_be_mappings() {
    let err = service_err("depends_on:\n  db:");
    assert!(matches!(err, TransformError::WrongType { .. }), "{err}");
    assert_eq!(err.path(), "services.a.depends_on.db");
}

#[test]
fn links_shared_namespaces_and_volumes_from_imply_dependencies() {
    let s = normalized_service(
        "depends_on: [db]\nlinks: [db, \"cache:c\"]\nipc: \"service:ns\"\nvolumes_from: [\"data:ro\", \"container:x\"]",
    );
    assert_eq!(
        s["depends_on"],
        json!({
            "db": {"condition": "service_started", "required": true},
            "cache": {"condition": "service_started", "restart": true, "required": true},
            "ns": {"condition": "service_started", "restart": true, "required": true},
            "data": {"condition": "service_started", "restart": false, "required": true},
        })
    );
}

#[test]
fn env_file_forms_become_path_and_required() {
    let s = service("env_file: a.env");
    assert_eq!(s["env_file"], json!([{"path": "a.env", "required": true}]));
    let s = service("env_file: [a.env, {path: b.env, required: false, format: raw}]");
    assert_eq!(
        s["env_file"],
        json!([
            {"path": "a.env", "required": true},
            {"path": "b.env", "required": false, "format": "raw"},
        ])
    );
}

#[test]
fn build_strings_become_a_context_with_the_default_dockerfile() {
    let s = service("build: ./dir");
    assert_eq!(
        s["build"],
        json!({"context": "./dir", "dockerfile": "Dockerfile"})
    );
    let s = service("build: {dockerfile_inline: FROM x}");
    assert_eq!(
        s["build"],
        json!({"dockerfile_inline": "FROM x", "context": "."})
    );
}

#[test]
fn build_fields_are_typed() {
    let s = service(
        "build:\n  context: .\n  args: [A=1, B, C=]\n  ssh: [default, \"k=/p\"]\n  additional_contexts: [\"a=b\"]\n  provenance: true\n  shm_size: 1g\n  secrets: [s]\n  tags: [a, a]\n  cache_from: x",
    );
    assert_eq!(
        s["build"],
        json!({
            "context": ".",
            "args": {"A": "1", "B": null, "C": ""},
            "ssh": {"default": null, "k": "/p"},
            "additional_contexts": {"a": "b"},
            "provenance": "true",
            "shm_size": "1073741824",
            "secrets": [{"source": "s"}],
            "tags": ["a"],
            "cache_from": ["x"],
            "dockerfile": "Dockerfile",
        })
    );
}

#[test]
fn build_list_entries_without_equals_are_refused_where_compose_refuses_them() {
    let err = service_err("build: {additional_contexts: [a]}");
    assert!(
        matches!(err, TransformError::InvalidKeyValue { .. }),
        "{err}"
    );
    let err = service_err("build: {ssh: [k]}");
    assert!(
        matches!(err, TransformError::InvalidKeyValue { .. }),
        "{err}"
    );
}

#[test]
fn service_secrets_get_a_default_target_and_octal_modes() {
    let s =
        service("secrets: [s1, {source: s2, mode: 0440}, {source: s3, target: y, mode: \"440\"}]");
    assert_eq!(
        s["secrets"],
        json!([
            {"source": "s1", "target": "/run/secrets/s1"},
            {"source": "s2", "mode": "0440", "target": "/run/secrets/s2"},
            {"source": "s3", "target": "y", "mode": "0440"},
        ])
    );
    let s = service("configs: [c1, {source: c2, mode: 0777}]");
    assert_eq!(
        s["configs"],
        json!([{"source": "c1"}, {"source": "c2", "mode": "0777"}])
    );
}

#[test]
fn environment_values_are_typed_by_yaml_then_stringified() {
    let s = service(
        "environment:\n  A: 0777\n  B: yes\n  C:\n  D: 1.10\n  E: true\n  F: 0x1F\n  G: .inf\n  H: \"0777\"",
    );
    assert_eq!(
        s["environment"],
        json!({"A": "511", "B": "yes", "C": null, "D": "1.1", "E": "true", "F": "31", "G": "+Inf", "H": "0777"})
    );
}

#[test]
fn environment_lists_split_at_the_first_equals_and_a_bare_key_has_no_value() {
    let s = service("environment: [A=1, B, C=, D=x=y, A=2]");
    assert_eq!(
        s["environment"],
        json!({"A": "2", "B": null, "C": "", "D": "x=y"})
    );
}

#[test]
fn environment_keys_with_trailing_space_are_refused() {
    let err = service_err("environment: [\"A =b\"]");
    assert!(
        matches!(err, TransformError::InvalidKeyValue { .. }),
        "{err}"
    );
    assert_eq!(err.path(), "services.a.environment[0]");
}

#[test]
fn environment_list_items_must_be_strings() {
    let err = service_err("environment: [1]");
    assert!(matches!(err, TransformError::WrongType { .. }), "{err}");
}

#[test]
fn an_unquoted_date_is_refused() {
    let err = service_err("environment:\n  RELEASE: 2024-01-01");
    assert!(
        matches!(err, TransformError::UnquotedTimestamp { .. }),
        "{err}"
    );
    assert_eq!(err.path(), "services.a.environment.RELEASE");
    let s = service("image: x\nx-date: 2024-01-01");
    assert_eq!(s["image"], "x");
}

#[test]
fn labels_annotations_and_sysctls_turn_missing_values_into_empty_strings() {
    let s = service(
        "labels: {a: null, b: 0777, c: 1.50}\nannotations: [a=1, b]\nsysctls: [net.core.somaxconn=1024]",
    );
    assert_eq!(s["labels"], json!({"a": "", "b": "511", "c": "1.5"}));
    assert_eq!(s["annotations"], json!({"a": "1", "b": ""}));
    assert_eq!(s["sysctls"], json!({"net.core.somaxconn": "1024"}));
}

#[test]
fn extra_hosts_become_a_sorted_list_of_host_equals_ip_once_files_merged() {
    let finished = |fields: &str| {
        let mut node = parse(&format!("services:\n  a:\n{}", indent(fields)));
        canonicalize(&mut node).expect("canonicalizes");
        super::finish_extra_hosts(&mut node).expect("rewrites");
        node.to_json()["services"]["a"].clone()
    };
    let raw = service("extra_hosts: [\"h:1.2.3.4\"]");
    assert_eq!(
        raw["extra_hosts"],
        json!(["h:1.2.3.4"]),
        "kept as written until the merge ends"
    );
    let s = finished("extra_hosts: [\"somehost:162.242.195.82\", \"b=::1\", \"c=1.1.1.1,[::2]\"]");
    assert_eq!(
        s["extra_hosts"],
        json!(["b=::1", "c=1.1.1.1", "c=::2", "somehost=162.242.195.82"])
    );
    let s = finished("extra_hosts: {x: 1.2.3.4, a: [\"[::1]\", 5.6.7.8]}");
    assert_eq!(s["extra_hosts"], json!(["a=5.6.7.8", "a=::1", "x=1.2.3.4"]));
}

#[test]
fn extra_hosts_without_an_address_or_host_are_refused() {
    let err = service_err("extra_hosts: [abc]");
    assert!(
        err.to_string()
            .ends_with("invalid additional host, missing IP: abc"),
        "{err}"
    );
    let err = service_err("extra_hosts: [\"=1.1.1.1\"]");
    assert!(
        matches!(err, TransformError::InvalidExtraHost { .. }),
        "{err}"
    );
}

#[test]
fn command_strings_are_split_into_words() {
    let s = service("command: bundle exec thin -p 3000\nentrypoint: \"\"");
    assert_eq!(
        s["command"],
        json!(["bundle", "exec", "thin", "-p", "3000"])
    );
    assert_eq!(s["entrypoint"], json!([]));
    let s = service("command: null\nentrypoint: [\"/x\", \"-y\"]");
    assert_eq!(s["command"], Json::Null);
    assert_eq!(s["entrypoint"], json!(["/x", "-y"]));
}

#[test]
fn an_unsplittable_command_is_refused() {
    let err = service_err("command: echo \"a");
    assert!(
        matches!(err, TransformError::InvalidCommand { .. }),
        "{err}"
    );
    let err = service_err("command: [echo, 1]");
    assert_eq!(err.path(), "services.a.command[1]");
}

#[test]
fn healthcheck_string_tests_run_in_a_shell_and_durations_are_normalized() {
    let s = service(
        "healthcheck:\n  test: curl -f http://x\n  interval: 90s\n  timeout: 1d\n  start_period: 500ms\n  retries: \"3\"",
    );
    assert_eq!(
        s["healthcheck"],
        json!({
            "test": ["CMD-SHELL", "curl -f http://x"],
            "interval": "1m30s",
            "timeout": "24h0m0s",
            "start_period": "500ms",
            "retries": 3,
        })
    );
}

#[test]
fn bad_durations_are_refused_with_compose_messages() {
    let err = service_err("stop_grace_period: \"a while\"");
    assert!(
        matches!(err, TransformError::InvalidDuration { .. }),
        "{err}"
    );
    assert!(
        err.to_string().ends_with("invalid duration \"a while\""),
        "{err}"
    );
    let err = service_err("healthcheck: {interval: 30}");
    assert!(
        err.to_string().ends_with("missing unit in duration \"30\""),
        "{err}"
    );
}

#[test]
fn sizes_become_byte_counts_in_strings() {
    let s = service(
        "mem_limit: 1.5G\nmem_reservation: \"512m\"\nmemswap_limit: -1\nshm_size: 67108864",
    );
    assert_eq!(s["mem_limit"], "1610612736");
    assert_eq!(s["mem_reservation"], "536870912");
    assert_eq!(s["memswap_limit"], "-1");
    assert_eq!(s["shm_size"], "67108864");
}

#[test]
fn bad_sizes_are_refused_with_compose_messages() {
    for (input, want) in [
        ("\"1.5GBX\"", "invalid suffix: 'gbx'"),
        ("lots", "invalid size: 'lots'"),
        ("\"-1g\"", "invalid size: '-1g'"),
        ("\"12 megs\"", "invalid suffix: 'megs'"),
    ] {
        let err = service_err(&format!("mem_limit: {input}"));
        assert!(matches!(err, TransformError::InvalidSize { .. }), "{err}");
        assert!(err.to_string().ends_with(want), "{err}");
    }
}

#[test]
fn numbers_given_as_strings_are_typed() {
    let s = service("cpus: \"1.5\"\ncpu_shares: \"512\"\nscale: \"2\"\nprivileged: \"true\"");
    assert_eq!(s["cpus"], json!(1.5));
    assert_eq!(s["cpu_shares"], json!(512));
    assert_eq!(s["scale"], json!(2));
    assert_eq!(s["privileged"], json!(true));
    let err = service_err("cpus: two");
    assert!(matches!(err, TransformError::InvalidNumber { .. }), "{err}");
    let err = service_err("tty: maybe");
    assert!(
        matches!(err, TransformError::InvalidBoolean { .. }),
        "{err}"
    );
}

#[test]
fn yes_as_a_boolean_string_is_read_with_a_warning() {
    let mut node = parse("services:\n  a:\n    build: {context: ., privileged: \"yes\"}\n");
    let warnings = canonicalize_with_warnings(&mut node).expect("canonicalizes");
    assert_eq!(
        node.to_json()["services"]["a"]["build"]["privileged"],
        json!(true)
    );
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].message.contains("not supported by YAML 1.2"));
}

#[test]
fn deploy_resources_and_policies_are_typed() {
    let s = service(
        "deploy:\n  labels: [FOO=BAR]\n  replicas: \"6\"\n  update_config: {delay: 10s, monitor: 60s, max_failure_ratio: 0.3}\n  resources:\n    limits: {cpus: '0.001', memory: 50M}\n    reservations:\n      devices: [{capabilities: [gpu], count: \"1\"}, {capabilities: [gpu]}, {capabilities: [gpu], count: all}]\n  restart_policy: {window: 120s}",
    );
    assert_eq!(
        s["deploy"],
        json!({
            "labels": {"FOO": "BAR"},
            "replicas": 6,
            "update_config": {"delay": "10s", "monitor": "1m0s", "max_failure_ratio": 0.3},
            "resources": {
                "limits": {"cpus": 0.001, "memory": "52428800"},
                "reservations": {"devices": [
                    {"capabilities": ["gpu"], "count": 1},
                    {"capabilities": ["gpu"], "count": -1},
                    {"capabilities": ["gpu"], "count": -1},
                ]},
            },
            "restart_policy": {"window": "2m0s"},
        })
    );
}

#[test]
fn gpus_all_becomes_one_request_for_every_device() {
    let s = service("gpus: all");
    assert_eq!(s["gpus"], json!([{"count": -1}]));
    let s = service("gpus: [{driver: nvidia}, {driver: x, device_ids: [a]}]");
    assert_eq!(
        s["gpus"],
        json!([{"driver": "nvidia", "count": -1}, {"driver": "x", "device_ids": ["a"]}])
    );
    let err = service_err("gpus: [{count: some}]");
    assert!(matches!(err, TransformError::InvalidNumber { .. }), "{err}");
}

#[test]
fn short_devices_become_source_target_and_permissions() {
    let s = service("devices: [/dev/a, \"/dev/b:/dev/c\", \"/dev/d:/dev/e:r\"]");
    assert_eq!(
        s["devices"],
        json!([
            {"source": "/dev/a", "target": "/dev/a", "permissions": "rwm"},
            {"source": "/dev/b", "target": "/dev/c", "permissions": "rwm"},
            {"source": "/dev/d", "target": "/dev/e", "permissions": "r"},
        ])
    );
    let err = service_err("devices: [\"a:b:c:d\"]");
    assert!(matches!(err, TransformError::InvalidDevice { .. }), "{err}");
}

#[test]
fn ulimits_are_integers_or_soft_and_hard_pairs() {
    let s = service("ulimits: {nproc: \"100\", nofile: {soft: \"1\", hard: 2}}");
    assert_eq!(
        s["ulimits"],
        json!({"nproc": 100, "nofile": {"soft": 1, "hard": 2}})
    );
}

#[test]
fn service_networks_lists_become_mappings_and_default_is_implied() {
    let doc = normalized(
        "services:\n  a:\n    networks: [front]\n  b:\n    image: x\n  c:\n    network_mode: host\nnetworks:\n  front:\n",
    );
    assert_eq!(doc["services"]["a"]["networks"], json!({"front": null}));
    assert_eq!(doc["services"]["b"]["networks"], json!({"default": null}));
    assert_eq!(doc["services"]["c"].get("networks"), None);
    assert_eq!(
        doc["networks"],
        json!({"front": {"name": "p_front"}, "default": {"name": "p_default"}})
    );
}

#[test]
fn no_default_network_is_added_when_no_service_uses_it() {
    let doc = canon("services:\n  a:\n    networks: [front]\n");
    assert_eq!(doc.get("networks"), None);
}

#[test]
fn deprecated_external_name_becomes_name_with_a_warning() {
    let mut node = parse("volumes:\n  v:\n    external:\n      name: real\n");
    let warnings = canonicalize_with_warnings(&mut node).expect("canonicalizes");
    assert_eq!(
        node.to_json()["volumes"]["v"],
        json!({"external": true, "name": "real"})
    );
    assert_eq!(
        warnings[0].message,
        "external.name is deprecated. Please set name and external: true"
    );
    assert_eq!(warnings[0].path, "volumes.v");
}

#[test]
fn conflicting_external_name_and_name_are_refused() {
    let mut node = parse("networks:\n  n:\n    name: a\n    external: {name: b}\n");
    let err = canonicalize(&mut node).expect_err("refused");
    assert!(
        matches!(err, TransformError::ConflictingNames { .. }),
        "{err}"
    );
}

#[test]
fn top_level_options_and_labels_become_strings() {
    let doc = canon(
        "networks:\n  n:\n    driver_opts: {foo: bar, baz: 1}\n    labels: [a=b]\n    ipam:\n      config:\n        - subnet: 10.0.0.0/24\n          aux_addresses: {h: 10.0.0.5}\n",
    );
    assert_eq!(
        doc["networks"]["n"],
        json!({
            "driver_opts": {"foo": "bar", "baz": "1"},
            "labels": {"a": "b"},
            "ipam": {"config": [{"subnet": "10.0.0.0/24", "aux_addresses": {"h": "10.0.0.5"}}]},
        })
    );
}

#[test]
fn string_or_list_fields_become_lists_and_empty_dns_entries_are_dropped() {
    let s =
        service("tmpfs: /run\ndns: [\"\", 8.8.8.8]\ndns_search: example.com\nlabel_file: a.label");
    assert_eq!(s["tmpfs"], json!(["/run"]));
    assert_eq!(s["dns"], json!(["8.8.8.8"]));
    assert_eq!(s["dns_search"], json!(["example.com"]));
    assert_eq!(s["label_file"], json!(["a.label"]));
}

#[test]
fn expose_and_group_add_numbers_become_strings() {
    let s = service("expose: [\"3000\", 8000, 3000]\ngroup_add: [wheel, 1001]");
    assert_eq!(s["expose"], json!(["3000", "8000"]));
    assert_eq!(s["group_add"], json!(["wheel", "1001"]));
}

#[test]
fn pull_policy_if_not_present_is_spelled_missing() {
    assert_eq!(
        service("pull_policy: if_not_present")["pull_policy"],
        "missing"
    );
}

#[test]
fn extends_models_and_provider_options_take_their_long_form() {
    let s =
        service("extends: base\nmodels: [llm]\nprovider: {type: t, options: {a: 1, b: [x, true]}}");
    assert_eq!(s["extends"], json!({"service": "base"}));
    assert_eq!(s["models"], json!({"llm": null}));
    assert_eq!(
        s["provider"]["options"],
        json!({"a": ["1"], "b": ["x", "true"]})
    );
}

#[test]
fn hooks_and_develop_watch_are_typed() {
    let s = service(
        "post_start:\n  - command: echo started\n    environment: [A=1]\ndevelop:\n  watch:\n    - {path: ./web, action: sync, ignore: node_modules/}",
    );
    assert_eq!(
        s["post_start"],
        json!([{"command": ["echo", "started"], "environment": {"A": "1"}}])
    );
    assert_eq!(s["develop"]["watch"][0]["ignore"], json!(["node_modules/"]));
}

#[test]
fn include_strings_become_path_lists() {
    let doc = canon("include: [a.yaml, {path: b.yaml, env_file: b.env}]\n");
    assert_eq!(
        doc["include"],
        json!([{"path": ["a.yaml"]}, {"path": ["b.yaml"], "env_file": ["b.env"]}])
    );
}

#[test]
fn a_service_that_is_not_a_mapping_is_refused() {
    let mut node = parse("services:\n  web: nginx\n");
    let err = canonicalize(&mut node).expect_err("refused");
    assert_eq!(err.path(), "services.web");
    assert_eq!(err.reason(), "WrongType");
}

#[test]
fn canonicalizing_twice_changes_nothing() {
    let yaml = "services:\n  a:\n    build: .\n    command: echo hi\n    ports: [\"8000-8001:80-81\", {target: 90}]\n    volumes: [\"./x:/y:ro\"]\n    environment: [A=1, B]\n    extra_hosts: [\"h:1.2.3.4\"]\n    depends_on: [b]\n    secrets: [s]\n    mem_limit: 1g\n    healthcheck: {test: \"true\", interval: 90s}\n    gpus: all\n    env_file: .env\n  b:\n    image: x\n    links: [a]\n";
    let mut once = parse(yaml);
    canonicalize(&mut once).expect("canonicalizes");
    let mut twice = once.clone();
    canonicalize(&mut twice).expect("canonicalizes again");
    assert_eq!(once.to_json(), twice.to_json());
}

#[test]
fn resources_are_named_after_the_project_unless_named_or_external() {
    let mut node = parse(
        "networks:\n  default:\n  ext: {external: true}\n  named: {name: mine}\nvolumes:\n  data: {}\n",
    );
    canonicalize(&mut node).expect("canonicalizes");
    crate::load::normalize::normalize(&mut node, "proj", &std::collections::BTreeMap::new());
    let doc = node.to_json();
    assert_eq!(doc["networks"]["default"], json!({"name": "proj_default"}));
    assert_eq!(
        doc["networks"]["ext"],
        json!({"external": true, "name": "ext"})
    );
    assert_eq!(doc["networks"]["named"], json!({"name": "mine"}));
    assert_eq!(doc["volumes"]["data"], json!({"name": "proj_data"}));
}

#[test]
fn sizes_and_durations_parse_and_print_like_compose() {
    assert_eq!(parse_size("1.5G"), Ok(1_610_612_736));
    assert_eq!(parse_size("2gb"), Ok(2_147_483_648));
    assert_eq!(parse_size("12mb"), Ok(12_582_912));
    assert_eq!(parse_size("100 KiB"), Ok(102_400));
    assert_eq!(parse_size("1000"), Ok(1000));
    for (text, want) in [
        ("1m30s", "1m30s"),
        ("90s", "1m30s"),
        ("1h2m3s", "1h2m3s"),
        ("0s", "0s"),
        ("0", "0s"),
        ("1.5ms", "1.5ms"),
        ("1500us", "1.5ms"),
        ("2us", "2\u{b5}s"),
        ("3ns", "3ns"),
        ("1d", "24h0m0s"),
        ("1w", "168h0m0s"),
        ("-5s", "-5s"),
        ("1.5s", "1.5s"),
        ("120s", "2m0s"),
    ] {
        let nanos = parse_duration(text).expect(text);
        assert_eq!(format_duration(nanos), want, "{text}");
    }
    assert_eq!(
        parse_duration("10 seconds"),
        Err("unknown unit \" seconds\" in duration \"10 seconds\"".into())
    );
    assert_eq!(
        parse_duration("soon"),
        Err("invalid duration \"soon\"".into())
    );
}
