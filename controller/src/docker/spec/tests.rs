//! Tests of the model → request body mapping.
use super::*;
use serde_json::json;

fn project(value: serde_json::Value) -> Project {
    serde_json::from_value(value).unwrap()
}

fn meta() -> ProjectMeta {
    ProjectMeta {
        working_dir: "/srv/app".into(),
        config_files: vec![
            "/srv/app/compose.yaml".into(),
            "/srv/app/compose.override.yaml".into(),
        ],
        config_hashes: [("web".to_owned(), "abc".to_owned())].into(),
        variables: Default::default(),
    }
}

fn spec_of(p: &Project, service: &str) -> ContainerSpec {
    let name = container_name(&p.name, service, &p.services[service], 1);
    container_spec(p, &meta(), service, 1, &name, "abc").unwrap()
}

fn host(spec: &ContainerSpec) -> &HostConfig {
    spec.body.host_config.as_ref().unwrap()
}

fn one_service(service: serde_json::Value) -> Project {
    project(json!({
        "name": "shop",
        "services": {"web": service},
        "networks": {"default": {"name": "shop_default"}},
    }))
}

#[test]
fn a_container_is_named_and_labelled_as_docker_compose_does() {
    let p = one_service(json!({
        "image": "busybox",
        "labels": {"team": "a", "com.docker.compose.project": "spoofed"},
        "depends_on": {"db": {"condition": "service_healthy", "restart": true}},
    }));
    let spec = spec_of(&p, "web");
    assert_eq!(spec.name, "shop-web-1");
    let labels = spec.body.labels.as_ref().unwrap();
    let expected = [
        ("team", "a"),
        ("com.docker.compose.project", "shop"),
        ("com.docker.compose.service", "web"),
        ("com.docker.compose.container-number", "1"),
        ("com.docker.compose.oneoff", "False"),
        ("com.docker.compose.config-hash", "abc"),
        ("com.docker.compose.project.working_dir", "/srv/app"),
        (
            "com.docker.compose.project.config_files",
            "/srv/app/compose.yaml,/srv/app/compose.override.yaml",
        ),
        ("com.docker.compose.depends_on", "db:service_healthy:true"),
        ("com.docker.compose.version", VERSION),
        ("dev.stackd.managed-by", "stackd"),
    ];
    for (key, value) in expected {
        assert_eq!(labels.get(key).map(String::as_str), Some(value), "{key}");
    }
    assert_eq!(spec.body.image.as_deref(), Some("busybox"));
}

#[test]
fn a_fixed_container_name_wins_over_the_numbered_one() {
    let p = one_service(json!({"image": "busybox", "container_name": "front"}));
    assert_eq!(
        container_name("shop", "web", &p.services["web"], 1),
        "front"
    );
}

#[test]
fn a_service_without_an_image_runs_the_image_compose_would_build() {
    let p = one_service(json!({"build": {"context": "/srv/app"}}));
    assert_eq!(image_ref("shop", "web", &p.services["web"]), "shop-web");
    assert_eq!(spec_of(&p, "web").body.image.as_deref(), Some("shop-web"));
}

#[test]
fn environment_keys_without_a_value_are_left_out() {
    let p = one_service(json!({
        "image": "busybox",
        "environment": {"A": "1", "B": null, "C": ""},
    }));
    assert_eq!(
        spec_of(&p, "web").body.env,
        Some(vec!["A=1".to_owned(), "C=".to_owned()])
    );
}

#[test]
fn command_entrypoint_user_and_working_dir_pass_through() {
    let p = one_service(json!({
        "image": "busybox",
        "command": ["httpd", "-f"],
        "entrypoint": ["/bin/sh", "-c"],
        "user": "65534:65534",
        "working_dir": "/www",
        "hostname": "front",
    }));
    let body = spec_of(&p, "web").body;
    assert_eq!(body.cmd, Some(vec!["httpd".to_owned(), "-f".to_owned()]));
    assert_eq!(
        body.entrypoint,
        Some(vec!["/bin/sh".to_owned(), "-c".to_owned()])
    );
    assert_eq!(body.user.as_deref(), Some("65534:65534"));
    assert_eq!(body.working_dir.as_deref(), Some("/www"));
    assert_eq!(body.hostname.as_deref(), Some("front"));
}

#[test]
fn ports_bind_host_ips_ranges_and_udp() {
    let p = one_service(json!({
        "image": "busybox",
        "expose": ["9000-9001", "53/udp"],
        "ports": [
            {"target": 80, "published": "8080", "host_ip": "127.0.0.1", "protocol": "tcp"},
            {"target": 5001, "published": "6000-6005", "protocol": "tcp"},
            {"target": 53, "published": "5353", "protocol": "udp"},
            {"target": 7000},
        ],
    }));
    let spec = spec_of(&p, "web");
    let exposed = spec.body.exposed_ports.clone().unwrap();
    for port in [
        "80/tcp", "5001/tcp", "53/udp", "7000/tcp", "9000/tcp", "9001/tcp",
    ] {
        assert!(exposed.contains(&port.to_owned()), "{port} in {exposed:?}");
    }
    let bindings = host(&spec).port_bindings.as_ref().unwrap();
    let binding = |key: &str| bindings[key].as_ref().unwrap()[0].clone();
    assert_eq!(binding("80/tcp").host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(binding("80/tcp").host_port.as_deref(), Some("8080"));
    assert_eq!(binding("5001/tcp").host_port.as_deref(), Some("6000-6005"));
    assert_eq!(binding("53/udp").host_port.as_deref(), Some("5353"));
    assert_eq!(binding("7000/tcp").host_port.as_deref(), Some(""));
}

#[test]
fn binds_that_create_the_host_path_use_the_legacy_form_and_others_the_mount_api() {
    let p = project(json!({
        "name": "shop",
        "services": {"web": {
            "image": "busybox",
            "read_only": true,
            "volumes": [
                {"type": "bind", "source": "/srv/app/html", "target": "/www", "read_only": true,
                 "bind": {"create_host_path": true}},
                {"type": "bind", "source": "/srv/app/conf", "target": "/conf",
                 "bind": {"propagation": "rslave"}},
                {"type": "volume", "source": "data", "target": "/data"},
                {"type": "volume", "target": "/cache"},
                {"type": "volume", "source": "logs", "target": "/logs",
                 "volume": {"labels": {"k": "v"}, "nocopy": true}},
                {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": "65536", "mode": 1023}},
            ],
            "tmpfs": ["/run:size=64k", "/var/run"],
        }},
        "volumes": {"data": {"name": "shop_data"}, "logs": {"name": "shop_logs"}},
    }));
    let spec = spec_of(&p, "web");
    let host = host(&spec);
    assert_eq!(
        host.binds,
        Some(vec![
            "/srv/app/html:/www:ro".to_owned(),
            "shop_data:/data:rw".to_owned(),
        ])
    );
    let mounts = host.mounts.as_ref().unwrap();
    let conf = mounts
        .iter()
        .find(|m| m.target.as_deref() == Some("/conf"))
        .unwrap();
    assert_eq!(conf.typ, Some(MountType::BIND));
    assert_eq!(
        conf.bind_options.as_ref().unwrap().propagation,
        Some(MountBindOptionsPropagationEnum::RSLAVE)
    );
    let cache = mounts
        .iter()
        .find(|m| m.target.as_deref() == Some("/cache"))
        .unwrap();
    assert_eq!(
        (cache.typ, cache.source.clone()),
        (Some(MountType::VOLUME), None)
    );
    let logs = mounts
        .iter()
        .find(|m| m.target.as_deref() == Some("/logs"))
        .unwrap();
    assert_eq!(logs.source.as_deref(), Some("shop_logs"));
    assert_eq!(logs.volume_options.as_ref().unwrap().no_copy, Some(true));
    let tmp = mounts
        .iter()
        .find(|m| m.target.as_deref() == Some("/tmp"))
        .unwrap();
    assert_eq!(tmp.typ, Some(MountType::TMPFS));
    let tmpfs = tmp.tmpfs_options.as_ref().unwrap();
    assert_eq!((tmpfs.size_bytes, tmpfs.mode), (Some(65536), Some(1023)));
    assert_eq!(host.readonly_rootfs, Some(true));
    let tmpfs = host.tmpfs.as_ref().unwrap();
    assert_eq!(tmpfs["/run"], "size=64k");
    assert_eq!(tmpfs["/var/run"], "");
}

#[test]
fn options_newer_than_api_1_41_are_refused_naming_the_service() {
    let p = one_service(json!({
        "image": "busybox",
        "volumes": [{"type": "volume", "source": "d", "target": "/d", "volume": {"subpath": "x"}}],
    }));
    let err = container_spec(&p, &meta(), "web", 1, "shop-web-1", "abc").unwrap_err();
    assert_eq!(
        err.to_string(),
        "service web: volume.subpath is not supported by this Docker engine (needs API 1.45)"
    );
    let p = one_service(json!({
        "image": "busybox",
        "healthcheck": {"test": ["CMD", "true"], "start_interval": "1s"},
    }));
    let err = container_spec(&p, &meta(), "web", 1, "shop-web-1", "abc").unwrap_err();
    assert_eq!(err.reason(), "unsupported");
}

#[test]
fn file_secrets_and_configs_are_read_only_binds_where_compose_mounts_them() {
    let p = project(json!({
        "name": "shop",
        "services": {"web": {
            "image": "busybox",
            "secrets": [{"source": "token"}, {"source": "key", "target": "api-key"}],
            "configs": [{"source": "site"}, {"source": "nginx", "target": "/etc/nginx.conf"}],
        }},
        "secrets": {
            "token": {"name": "shop_token", "file": "/srv/app/token.txt"},
            "key": {"name": "shop_key", "file": "/srv/app/key.txt"},
        },
        "configs": {
            "site": {"name": "shop_site", "file": "/srv/app/site.conf"},
            "nginx": {"name": "shop_nginx", "file": "/srv/app/nginx.conf"},
        },
    }));
    let spec = spec_of(&p, "web");
    let mounts: Vec<(String, String, Option<bool>)> = host(&spec)
        .mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m.source.clone().unwrap(),
                m.target.clone().unwrap(),
                m.read_only,
            )
        })
        .collect();
    assert_eq!(
        mounts,
        vec![
            (
                "/srv/app/token.txt".into(),
                "/run/secrets/token".into(),
                Some(true)
            ),
            (
                "/srv/app/key.txt".into(),
                "/run/secrets/api-key".into(),
                Some(true)
            ),
            ("/srv/app/site.conf".into(), "/site".into(), Some(true)),
            (
                "/srv/app/nginx.conf".into(),
                "/etc/nginx.conf".into(),
                Some(true)
            ),
        ]
    );
}

#[test]
fn environment_and_inline_secrets_are_copied_in_after_create() {
    let mut p = project(json!({
        "name": "shop",
        "services": {"web": {
            "image": "busybox",
            "secrets": [{"source": "token", "uid": "65534", "mode": "0400"}],
            "configs": [{"source": "motd"}],
        }},
        "secrets": {"token": {"name": "shop_token", "environment": "TOKEN"}},
        "configs": {"motd": {"name": "shop_motd", "content": "hello"}},
    }));
    let spec = spec_of(&p, "web");
    assert_eq!(
        spec.files,
        vec![
            InjectedFile {
                kind: "secret",
                name: "token".into(),
                target: "/run/secrets/token".into(),
                content: FileContent::Variable("TOKEN".into()),
                uid: 65534,
                gid: 0,
                mode: 0o400,
            },
            InjectedFile {
                kind: "config",
                name: "motd".into(),
                target: "/motd".into(),
                content: FileContent::Inline("hello".into()),
                uid: 0,
                gid: 0,
                mode: 0o444,
            },
        ]
    );
    p.services.get_mut("web").unwrap().read_only = true;
    let err = container_spec(&p, &meta(), "web", 1, "shop-web-1", "abc").unwrap_err();
    assert!(err.to_string().contains("read_only"), "{err}");
}

#[test]
fn cpus_memory_and_pids_come_from_deploy_limits_over_legacy_fields() {
    let p = one_service(json!({
        "image": "busybox",
        "cpus": 2,
        "mem_limit": "1073741824",
        "mem_reservation": "1048576",
        "pids_limit": 10,
        "deploy": {"resources": {
            "limits": {"cpus": 0.1, "memory": "52428800", "pids": 64},
            "reservations": {"memory": "2097152"},
        }},
    }));
    let spec = spec_of(&p, "web");
    let host = host(&spec);
    assert_eq!(host.nano_cpus, Some(100_000_000));
    assert_eq!(host.memory, Some(52_428_800));
    assert_eq!(host.memory_reservation, Some(2_097_152));
    assert_eq!(host.pids_limit, Some(64));

    let legacy = one_service(json!({"image": "busybox", "cpus": 0.5, "mem_limit": "1048576"}));
    let spec = spec_of(&legacy, "web");
    assert_eq!(host_of(&spec).nano_cpus, Some(500_000_000));
    assert_eq!(host_of(&spec).memory, Some(1_048_576));
}

fn host_of(spec: &ContainerSpec) -> &HostConfig {
    host(spec)
}

#[test]
fn ulimits_capabilities_and_process_options_pass_through() {
    let p = one_service(json!({
        "image": "busybox",
        "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512},
        "cap_add": ["NET_ADMIN"],
        "cap_drop": ["ALL"],
        "privileged": true,
        "init": true,
        "stop_signal": "SIGINT",
        "stop_grace_period": "1m30s",
        "extra_hosts": ["db=10.0.0.2"],
        "dns": ["1.1.1.1"],
        "sysctls": {"net.core.somaxconn": "1024"},
        "security_opt": ["no-new-privileges:true", "systempaths=unconfined"],
        "logging": {"driver": "json-file", "options": {"max-size": "1m"}},
    }));
    let spec = spec_of(&p, "web");
    let host = host(&spec);
    let ulimits = host.ulimits.as_ref().unwrap();
    let nofile = ulimits
        .iter()
        .find(|u| u.name.as_deref() == Some("nofile"))
        .unwrap();
    assert_eq!((nofile.soft, nofile.hard), (Some(1024), Some(2048)));
    let nproc = ulimits
        .iter()
        .find(|u| u.name.as_deref() == Some("nproc"))
        .unwrap();
    assert_eq!((nproc.soft, nproc.hard), (Some(512), Some(512)));
    assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".to_owned()]));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!((host.privileged, host.init), (Some(true), Some(true)));
    assert_eq!(spec.body.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(spec.body.stop_timeout, Some(90));
    assert_eq!(host.extra_hosts, Some(vec!["db:10.0.0.2".to_owned()]));
    assert_eq!(host.dns, Some(vec!["1.1.1.1".to_owned()]));
    assert_eq!(host.sysctls.as_ref().unwrap()["net.core.somaxconn"], "1024");
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges:true".to_owned()])
    );
    assert_eq!(host.masked_paths, Some(vec![]));
    let log = host.log_config.as_ref().unwrap();
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    assert_eq!(log.config.as_ref().unwrap()["max-size"], "1m");
}

#[test]
fn healthchecks_are_in_nanoseconds_and_disable_means_none() {
    let p = one_service(json!({
        "image": "busybox",
        "healthcheck": {"test": ["CMD-SHELL", "true"], "interval": "2s", "timeout": "1s",
                         "retries": 3, "start_period": "500ms"},
    }));
    let check = spec_of(&p, "web").body.healthcheck.unwrap();
    assert_eq!(
        check.test,
        Some(vec!["CMD-SHELL".to_owned(), "true".to_owned()])
    );
    assert_eq!(check.interval, Some(2_000_000_000));
    assert_eq!(check.timeout, Some(1_000_000_000));
    assert_eq!(check.retries, Some(3));
    assert_eq!(check.start_period, Some(500_000_000));

    let p = one_service(json!({"image": "busybox", "healthcheck": {"disable": true}}));
    let check = spec_of(&p, "web").body.healthcheck.unwrap();
    assert_eq!(check.test, Some(vec!["NONE".to_owned()]));
}

#[test]
fn restart_policies_map_to_the_engine_names() {
    let policy = |service: serde_json::Value| {
        host(&spec_of(&one_service(service), "web"))
            .restart_policy
            .clone()
            .unwrap()
    };
    let on_failure = policy(json!({"image": "busybox", "restart": "on-failure:3"}));
    assert_eq!(on_failure.name, Some(RestartPolicyNameEnum::ON_FAILURE));
    assert_eq!(on_failure.maximum_retry_count, Some(3));
    let deploy = policy(json!({
        "image": "busybox", "restart": "no",
        "deploy": {"restart_policy": {"condition": "any"}},
    }));
    assert_eq!(deploy.name, Some(RestartPolicyNameEnum::ALWAYS));
    let p = one_service(json!({"image": "busybox", "restart": "sometimes"}));
    assert!(container_spec(&p, &meta(), "web", 1, "shop-web-1", "abc").is_err());
}

#[test]
fn the_first_network_joins_at_create_with_aliases_and_the_others_after() {
    let p = project(json!({
        "name": "shop",
        "services": {"web": {
            "image": "busybox",
            "networks": {
                "back": {"aliases": ["api"], "ipv4_address": "172.28.0.5"},
                "front": {"priority": 10},
            },
        }},
        "networks": {
            "back": {"name": "shop_back", "internal": true},
            "front": {"name": "shop_front"},
        },
    }));
    let spec = container_spec(&p, &meta(), "web", 2, "0123456789ab_shop-web-2", "abc").unwrap();
    assert_eq!(host(&spec).network_mode.as_deref(), Some("shop_front"));
    let endpoints = spec
        .body
        .networking_config
        .as_ref()
        .unwrap()
        .endpoints_config
        .as_ref()
        .unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(
        endpoints["shop_front"].aliases,
        Some(vec!["shop-web-2".to_owned(), "web".to_owned()])
    );
    assert_eq!(spec.connect.len(), 1);
    let (name, back) = &spec.connect[0];
    assert_eq!(name, "shop_back");
    assert_eq!(
        back.aliases,
        Some(vec![
            "shop-web-2".to_owned(),
            "web".to_owned(),
            "api".to_owned()
        ])
    );
    assert_eq!(
        back.ipam_config.as_ref().unwrap().ipv4_address.as_deref(),
        Some("172.28.0.5")
    );
}

#[test]
fn a_service_network_mode_points_at_the_first_replica() {
    let p = project(json!({
        "name": "shop",
        "services": {
            "web": {"image": "busybox", "network_mode": "service:vpn"},
            "vpn": {"image": "busybox"},
        },
    }));
    let spec = spec_of(&p, "web");
    assert_eq!(
        host(&spec).network_mode.as_deref(),
        Some("container:shop-vpn-1")
    );
    assert!(spec.body.networking_config.is_none());
}

#[test]
fn networks_and_volumes_carry_the_project_labels() {
    let p = project(json!({
        "name": "shop",
        "services": {},
        "networks": {"back": {"name": "shop_back", "internal": true, "labels": {"x": "y"},
                               "ipam": {"config": [{"subnet": "172.28.0.0/16"}]}}},
        "volumes": {"data": {"name": "shop_data", "driver": "local"}},
    }));
    let network = network_spec(&p, "back").unwrap();
    assert_eq!(network.name, "shop_back");
    assert_eq!(network.internal, Some(true));
    let labels = network.labels.unwrap();
    assert_eq!(labels["com.docker.compose.network"], "back");
    assert_eq!(labels["com.docker.compose.project"], "shop");
    assert_eq!(labels["dev.stackd.managed-by"], "stackd");
    assert_eq!(labels["x"], "y");
    let subnet = network.ipam.unwrap().config.unwrap()[0].subnet.clone();
    assert_eq!(subnet.as_deref(), Some("172.28.0.0/16"));
    let volume = volume_spec(&p, "data").unwrap();
    assert_eq!(volume.name.as_deref(), Some("shop_data"));
    assert_eq!(volume.labels.unwrap()["com.docker.compose.volume"], "data");
    assert!(matches!(
        network_spec(&p, "nope"),
        Err(Error::NotInProject {
            kind: "network",
            ..
        })
    ));
}

#[test]
fn builds_send_the_dockerfile_from_the_context_or_add_it() {
    let p = project(json!({
        "name": "shop",
        "services": {
            "web": {"build": {"context": "/srv/app/web", "dockerfile": "docker/Dockerfile",
                               "args": {"A": "1", "B": null, "C": null}, "target": "prod",
                               "labels": {"l": "v"}}},
            "api": {"image": "api:dev",
                    "build": {"context": "/srv/app/api", "dockerfile": "../Dockerfile.api"}},
            "job": {"build": {"context": "/srv/app", "dockerfile_inline": "FROM scratch"}},
        },
    }));
    let variable = |name: &str| (name == "B").then(|| "from-env".to_owned());
    let web = build_spec(&p, "web", &variable).unwrap();
    assert_eq!(
        web.dockerfile,
        Dockerfile::InContext("docker/Dockerfile".into())
    );
    assert_eq!(web.options.dockerfile, "docker/Dockerfile");
    assert_eq!(web.options.t.as_deref(), Some("shop-web"));
    assert_eq!(web.options.target, "prod");
    let args = web.options.buildargs.unwrap();
    assert_eq!((args["A"].as_str(), args["B"].as_str()), ("1", "from-env"));
    assert!(!args.contains_key("C"));
    let api = build_spec(&p, "api", &variable).unwrap();
    assert_eq!(
        api.dockerfile,
        Dockerfile::Outside("/srv/app/api/../Dockerfile.api".into())
    );
    assert_eq!(api.options.dockerfile, ADDED_DOCKERFILE);
    assert_eq!(api.options.t.as_deref(), Some("api:dev"));
    let job = build_spec(&p, "job", &variable).unwrap();
    assert_eq!(job.dockerfile, Dockerfile::Inline("FROM scratch".into()));
}

#[test]
fn secret_variables_come_from_the_project_environment_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    secrets: [token, key]\nsecrets:\n  token: {environment: TOKEN}\n  key: {environment: KEY}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "TOKEN=from-dotenv\nKEY=dotenv-key\n",
    )
    .unwrap();
    let options = crate::load::LoadOptions {
        working_dir: dir.path().to_path_buf(),
        environment: [
            ("KEY".to_owned(), "from-process".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ]
        .into(),
        ..Default::default()
    };
    let project = crate::load::load_project(&options).unwrap().project;
    let environment = crate::load::project_environment(&options);
    let meta = ProjectMeta::for_project(&project, &options, &environment);
    assert_eq!(meta.variables.get("TOKEN"), Some("from-dotenv"));
    assert_eq!(meta.variables.get("KEY"), Some("from-process"));
    assert_eq!(meta.variables.get("UNRELATED"), None);
    let printed = format!("{meta:?}");
    assert!(printed.contains("TOKEN"), "{printed}");
    for value in ["from-dotenv", "from-process", "dotenv-key"] {
        assert!(!printed.contains(value), "{printed}");
    }
}
