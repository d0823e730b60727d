//! The Docker backend against the real engine of this machine: create,
//! observe, replace, wait and remove, on the `stackd-busybox:latest` image.
//! Runs only with `STACKD_DOCKER_TESTS=1`; every project it creates is named
//! `stackdtest-<pid>-<n>` and removed afterwards, and nothing else on the
//! engine is touched.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use stackd::docker::{Backend, DockerBackend, Error, ProjectMeta, SecretVariables};
use stackd::model::Project;
use stackd::plan::{Action, Condition, ContainerState, Health};
use tokio::time::Instant;

const IMAGE: &str = "stackd-busybox:latest";

fn enabled() -> bool {
    if std::env::var("STACKD_DOCKER_TESTS").as_deref() == Ok("1") {
        let listed = Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            listed,
            "{IMAGE} is missing: build it from Debian's busybox-static (see e2e/) first"
        );
        true
    } else {
        println!("skipped: set STACKD_DOCKER_TESTS=1");
        false
    }
}

/// A unique project name, removed with everything labelled for it on drop.
struct Scratch {
    name: String,
    images: Vec<String>,
}

impl Scratch {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self {
            name: format!("stackdtest-{}-{n}", std::process::id()),
            images: Vec::new(),
        }
    }

    fn project(&self, mut value: Value) -> Project {
        value["name"] = json!(self.name);
        serde_json::from_value(value).unwrap()
    }

    fn meta(&self, project: &Project) -> ProjectMeta {
        ProjectMeta {
            working_dir: "/tmp".into(),
            config_files: vec!["/tmp/compose.yaml".into()],
            config_hashes: project
                .services
                .keys()
                .map(|s| (s.clone(), format!("hash-{s}")))
                .collect(),
            // As `stackd up` gives them: from the process environment.
            variables: SecretVariables::of(project, &std::env::vars().collect()),
        }
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        for (list, remove) in [
            (
                vec!["ps", "-aq", "--filter", &filter],
                vec!["rm", "-f", "-v"],
            ),
            (
                vec!["network", "ls", "-q", "--filter", &filter],
                vec!["network", "rm"],
            ),
            (
                vec!["volume", "ls", "-q", "--filter", &filter],
                vec!["volume", "rm"],
            ),
        ] {
            let ids = docker(&list);
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = remove.clone();
                args.extend(ids);
                docker(&args);
            }
        }
        for image in &self.images {
            docker(&["rmi", "-f", image]);
        }
    }
}

async fn apply_all(
    backend: &DockerBackend,
    project: &Project,
    meta: &ProjectMeta,
    actions: &[Action],
) {
    for action in actions {
        if let Err(err) = backend.apply(project, meta, action).await {
            panic!("{action:?}: {err}");
        }
    }
}

fn create(project: &Project, service: &str, number: u32) -> Action {
    Action::CreateContainer {
        service: service.into(),
        number,
        name: format!("{}-{service}-{number}", project.name),
    }
}

fn start(project: &Project, service: &str) -> Action {
    Action::StartContainer {
        name: format!("{}-{service}-1", project.name),
    }
}

fn within(seconds: u64) -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(seconds))
}

#[tokio::test]
async fn containers_are_created_observed_replaced_and_removed() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new();
    let project = scratch.project(json!({
        "services": {"app": {
            "image": IMAGE,
            "command": ["sleep", "300"],
            "stop_grace_period": "1s",
            "labels": {"team": "core"},
            "volumes": [{"type": "volume", "source": "data", "target": "/data"}],
            "networks": {"default": null},
        }},
        "networks": {"default": {"name": format!("{}_default", scratch.name)}},
        "volumes": {"data": {"name": format!("{}_data", scratch.name)}},
    }));
    let meta = scratch.meta(&project);
    let backend = DockerBackend::new();
    let final_name = format!("{}-app-1", project.name);
    apply_all(
        &backend,
        &project,
        &meta,
        &[
            Action::CreateNetwork {
                network: "default".into(),
            },
            Action::CreateVolume {
                volume: "data".into(),
            },
            Action::EnsureImage {
                service: "app".into(),
            },
            create(&project, "app", 1),
            start(&project, "app"),
            // Creating what exists and starting what runs change nothing.
            Action::CreateNetwork {
                network: "default".into(),
            },
            Action::CreateVolume {
                volume: "data".into(),
            },
            start(&project, "app"),
        ],
    )
    .await;

    let observed = backend.observe(&project, true).await.unwrap();
    assert_eq!(observed.containers.len(), 1);
    let old = observed.containers[0].clone();
    assert_eq!(
        (old.name.as_str(), old.service.as_str(), old.number),
        (final_name.as_str(), "app", 1)
    );
    assert_eq!(old.config_hash, "hash-app");
    assert_eq!(old.state, ContainerState::Running);
    assert!(!old.oneoff);
    assert_eq!(
        observed.images[IMAGE].as_deref(),
        Some(old.image_id.as_str())
    );
    assert_eq!(observed.networks.as_ref().unwrap()[0].key, "default");
    assert_eq!(observed.volumes.as_ref().unwrap()[0].key, "data");
    let quick = backend.observe(&project, false).await.unwrap();
    assert!(quick.networks.is_none() && quick.volumes.is_none());
    let containers_only = backend.observe_containers(&project).await.unwrap();
    assert_eq!(containers_only.containers, observed.containers);
    assert!(containers_only.images.is_empty() && containers_only.networks.is_none());
    let references = [IMAGE.to_owned(), "stackd-no-such-image:9".to_owned()].into();
    let ids = backend.image_ids(&references).await.unwrap();
    assert_eq!(ids[IMAGE].as_deref(), Some(old.image_id.as_str()));
    assert_eq!(ids["stackd-no-such-image:9"], None);

    // docker compose sees the container as part of the project.
    let listed = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={}", project.name),
        "--filter",
        "label=com.docker.compose.oneoff=False",
        "--filter",
        "label=com.docker.compose.config-hash",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(listed.trim(), final_name);
    if let Ok(compose) = std::env::var("STACKD_COMPOSE_BIN") {
        let out = Command::new(compose)
            .args([
                "-p",
                &project.name,
                "ps",
                "--format",
                "{{.Name}} {{.Service}}",
            ])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        assert_eq!(listed.trim(), format!("{final_name} app"), "{out:?}");
    }

    // Replacement without a gap in naming.
    let temp = format!("{}_{final_name}", &old.id[..12]);
    apply_all(
        &backend,
        &project,
        &meta,
        &[
            Action::CreateContainer {
                service: "app".into(),
                number: 1,
                name: temp.clone(),
            },
            Action::StopContainer {
                name: final_name.clone(),
            },
            Action::RemoveContainer {
                name: final_name.clone(),
                volumes: false,
            },
            Action::RenameContainer {
                from: temp.clone(),
                to: final_name.clone(),
            },
            start(&project, "app"),
        ],
    )
    .await;
    let observed = backend.observe(&project, false).await.unwrap();
    assert_eq!(observed.containers.len(), 1);
    assert_eq!(observed.containers[0].name, final_name);
    assert_ne!(observed.containers[0].id, old.id);

    // A name in use is a conflict naming the container.
    let err = backend
        .apply(&project, &meta, &create(&project, "app", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NameInUse { container } if *container == final_name),
        "{err}"
    );
    // A running container is not removed without a stop.
    let remove = Action::RemoveContainer {
        name: final_name.clone(),
        volumes: false,
    };
    assert_eq!(
        backend
            .apply(&project, &meta, &remove)
            .await
            .unwrap_err()
            .reason(),
        "container_busy"
    );

    apply_all(
        &backend,
        &project,
        &meta,
        &[
            Action::StopContainer {
                name: final_name.clone(),
            },
            remove.clone(),
            remove,
            Action::RemoveNetwork {
                network: "default".into(),
            },
            Action::RemoveVolume {
                volume: "data".into(),
            },
            Action::RemoveNetwork {
                network: "default".into(),
            },
        ],
    )
    .await;
    let observed = backend.observe(&project, true).await.unwrap();
    assert!(observed.containers.is_empty());
    assert_eq!(observed.networks, Some(vec![]));
    assert_eq!(observed.volumes, Some(vec![]));
}

#[tokio::test]
async fn networks_give_aliases_and_a_second_network_is_joined_after_create() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new();
    let back = format!("{}_back", scratch.name);
    let front = format!("{}_front", scratch.name);
    let project = scratch.project(json!({
        "services": {
            "db": {
                "image": IMAGE,
                "command": ["sleep", "300"],
                "networks": {"back": {"aliases": ["database"]}, "front": null},
            },
            "client": {
                "image": IMAGE,
                "command": ["sh", "-c", "nslookup database 127.0.0.11 && ping -c1 -W2 database"],
                "restart": "no",
                "networks": {"back": null},
            },
        },
        "networks": {
            "back": {"name": back, "internal": true},
            "front": {"name": front},
        },
    }));
    let meta = scratch.meta(&project);
    let backend = DockerBackend::new();
    apply_all(
        &backend,
        &project,
        &meta,
        &[
            Action::CreateNetwork {
                network: "back".into(),
            },
            Action::CreateNetwork {
                network: "front".into(),
            },
            create(&project, "db", 1),
            start(&project, "db"),
            create(&project, "client", 1),
            start(&project, "client"),
        ],
    )
    .await;
    backend
        .wait_for(
            &project,
            "client",
            Condition::ServiceCompletedSuccessfully,
            within(30),
        )
        .await
        .unwrap();
    let inspect = docker(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks}}",
        &format!("{}-db-1", project.name),
    ]);
    let networks: Value = serde_json::from_str(inspect.trim()).unwrap();
    let aliases = networks[&back]["Aliases"].as_array().unwrap();
    for alias in ["db", "database"] {
        assert!(aliases.contains(&json!(alias)), "{alias} in {aliases:?}");
    }
    assert!(networks.get(&front).is_some(), "joined {front}: {networks}");
    let internal = docker(&["network", "inspect", "--format", "{{.Internal}}", &back]);
    assert_eq!(internal.trim(), "true");
}

#[tokio::test]
async fn a_missing_image_with_pull_policy_never_fails_at_once_naming_the_service() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new();
    let image = format!("{}-absent:1", scratch.name);
    let project = scratch.project(json!({
        "services": {
            "ghost": {"image": image, "pull_policy": "never"},
            "remote": {"image": image},
        },
    }));
    let meta = scratch.meta(&project);
    let backend = DockerBackend::new().with_pull_timeout(Duration::from_secs(60));
    let started = Instant::now();
    let err = backend
        .apply(
            &project,
            &meta,
            &Action::EnsureImage {
                service: "ghost".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("service ghost: image {image} is not on the engine and pull_policy is never")
    );
    let err = backend
        .apply(
            &project,
            &meta,
            &Action::EnsureImage {
                service: "remote".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.reason(), "pull_failed" | "pull_timed_out"),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("service remote: pulling image"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(90));
    let observed = backend.observe(&project, false).await.unwrap();
    assert_eq!(observed.images[&image], None);
}

#[tokio::test]
async fn waits_see_health_and_exit_codes() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new();
    let check = |test: &str| json!({"test": ["CMD-SHELL", test], "interval": "500ms", "timeout": "2s", "retries": 1});
    let project = scratch.project(json!({
        "services": {
            "good": {"image": IMAGE, "command": ["sleep", "300"], "healthcheck": check("true")},
            "bad": {"image": IMAGE, "command": ["sleep", "300"], "healthcheck": check("false")},
            "job": {"image": IMAGE, "command": ["sh", "-c", "exit 3"], "restart": "no"},
            "ok": {"image": IMAGE, "command": ["true"], "restart": "no"},
        },
    }));
    let meta = scratch.meta(&project);
    let backend = DockerBackend::new();
    for service in ["good", "bad", "job", "ok"] {
        apply_all(
            &backend,
            &project,
            &meta,
            &[create(&project, service, 1), start(&project, service)],
        )
        .await;
    }
    backend
        .wait_for(&project, "good", Condition::ServiceHealthy, within(30))
        .await
        .unwrap();
    let err = backend
        .wait_for(&project, "bad", Condition::ServiceHealthy, within(30))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("service bad: container {}-bad-1 is unhealthy", project.name)
    );
    let err = backend
        .wait_for(
            &project,
            "job",
            Condition::ServiceCompletedSuccessfully,
            within(30),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ExitedWithError { code: 3, .. }),
        "{err}"
    );
    backend
        .wait_for(
            &project,
            "ok",
            Condition::ServiceCompletedSuccessfully,
            within(30),
        )
        .await
        .unwrap();
    let observed = backend.observe(&project, false).await.unwrap();
    let good = observed
        .containers
        .iter()
        .find(|c| c.service == "good")
        .unwrap();
    assert_eq!(good.health, Some(Health::Healthy));
    let job = observed
        .containers
        .iter()
        .find(|c| c.service == "job")
        .unwrap();
    assert_eq!(job.state, ContainerState::Exited(3));
}

#[tokio::test]
async fn read_only_containers_run_as_a_user_with_tmpfs_secrets_and_limits() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token.txt");
    std::fs::write(&secret, "s3cret").unwrap();
    let script = [
        "test \"$(id -u)\" = 65534",
        "touch /tmp/x",
        "! touch /x 2>/dev/null",
        "test \"$(cat /run/secrets/token)\" = s3cret",
        "test \"$(cat /etc/motd.txt)\" = hello",
        "test \"$GREETING\" = hi",
        "test \"$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)\" = 64",
    ]
    .join(" && ");
    let project = scratch.project(json!({
        "services": {
            "locked": {
                "image": IMAGE,
                "command": ["sh", "-c", script],
                "user": "65534:65534",
                "read_only": true,
                "tmpfs": ["/tmp:size=1m"],
                "environment": {"GREETING": "hi", "UNSET": null},
                "secrets": [{"source": "token"}],
                "configs": [{"source": "motd", "target": "/etc/motd.txt"}],
                "restart": "no",
                "deploy": {"resources": {"limits": {"cpus": 0.5, "memory": "67108864", "pids": 64}}},
                "ulimits": {"nofile": {"soft": 256, "hard": 512}},
                "cap_drop": ["ALL"],
                "init": true,
            },
        },
        "secrets": {"token": {"name": "token", "file": secret.to_string_lossy()}},
        "configs": {"motd": {"name": "motd", "file": dir.path().join("motd").to_string_lossy()}},
    }));
    std::fs::write(dir.path().join("motd"), "hello").unwrap();
    let meta = scratch.meta(&project);
    let backend = DockerBackend::new();
    apply_all(
        &backend,
        &project,
        &meta,
        &[create(&project, "locked", 1), start(&project, "locked")],
    )
    .await;
    let waited = backend
        .wait_for(
            &project,
            "locked",
            Condition::ServiceCompletedSuccessfully,
            within(30),
        )
        .await;
    if let Err(err) = waited {
        let logs = docker(&["logs", &format!("{}-locked-1", project.name)]);
        panic!("{err}\n{logs}");
    }
    let host = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.ReadonlyRootfs}}",
        &format!("{}-locked-1", project.name),
    ]);
    assert_eq!(host.trim(), "500000000 67108864 true");
}

#[tokio::test]
async fn an_image_is_built_from_a_local_dockerfile_without_a_registry() {
    if !enabled() {
        return;
    }
    let mut scratch = Scratch::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nARG WORD\nCOPY . /ctx/\nRUN cp /ctx/hello.txt /hello.txt && echo \"$WORD\" >> /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello\n").unwrap();
    std::fs::write(dir.path().join("junk.tmp"), "x").unwrap();
    std::fs::write(dir.path().join(".dockerignore"), "*.tmp\n").unwrap();
    let project = scratch.project(json!({
        "services": {"built": {
            "build": {"context": dir.path().to_string_lossy(), "args": {"WORD": "world"}},
            "command": ["sh", "-c", "test \"$(cat /hello.txt)\" = \"$(printf 'hello\\nworld')\" && test -e /ctx/Dockerfile && test ! -e /ctx/junk.tmp"],
            "restart": "no",
        }},
    }));
    let image = format!("{}-built", project.name);
    scratch.images.push(format!("{image}:latest"));
    let meta = scratch.meta(&project);
    let backend = DockerBackend::new();
    assert_eq!(
        backend.observe(&project, false).await.unwrap().images[&image],
        None
    );
    apply_all(
        &backend,
        &project,
        &meta,
        &[
            Action::EnsureImage {
                service: "built".into(),
            },
            create(&project, "built", 1),
            start(&project, "built"),
        ],
    )
    .await;
    backend
        .wait_for(
            &project,
            "built",
            Condition::ServiceCompletedSuccessfully,
            within(30),
        )
        .await
        .unwrap();
    assert!(backend.observe(&project, false).await.unwrap().images[&image].is_some());
}

#[tokio::test]
async fn inline_and_environment_secrets_are_written_into_the_container() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new();
    let home = std::env::var("HOME").unwrap();
    let script = [
        "test \"$(cat /run/secrets/home)\" = \"$EXPECTED\"",
        "test \"$(stat -c '%u %a' /run/secrets/home)\" = '65534 400'",
        "test \"$(cat /motd)\" = hello",
    ]
    .join(" && ");
    let project = scratch.project(json!({
        "services": {"reader": {
            "image": IMAGE,
            "command": ["sh", "-c", script],
            "environment": {"EXPECTED": home},
            "secrets": [{"source": "home", "uid": "65534", "mode": "0400"}],
            "configs": [{"source": "motd"}],
            "restart": "no",
        }},
        "secrets": {"home": {"name": "home", "environment": "HOME"}},
        "configs": {"motd": {"name": "motd", "content": "hello"}},
    }));
    let meta = scratch.meta(&project);
    let backend = DockerBackend::new();
    apply_all(
        &backend,
        &project,
        &meta,
        &[create(&project, "reader", 1), start(&project, "reader")],
    )
    .await;
    let waited = backend
        .wait_for(
            &project,
            "reader",
            Condition::ServiceCompletedSuccessfully,
            within(30),
        )
        .await;
    if let Err(err) = waited {
        let logs = docker(&["logs", &format!("{}-reader-1", project.name)]);
        panic!("{err}\n{logs}");
    }
}

/// Forwards a unix socket to the engine's, counting the HTTP requests sent.
async fn counting_proxy(dir: &std::path::Path) -> (String, std::sync::Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let engine = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
        .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
    let path = dir.join("engine.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = tokio::net::UnixStream::connect(&engine).await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (mut up_read, mut up_write) = upstream.into_split();
                let requests = async {
                    let mut buf = vec![0u8; 65536];
                    let mut line = Vec::new();
                    loop {
                        let n = match client_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        for b in &buf[..n] {
                            line.push(*b);
                            if *b == b'\n' {
                                let text = String::from_utf8_lossy(&line);
                                let method = ["GET ", "POST ", "PUT ", "DELETE ", "HEAD "]
                                    .iter()
                                    .any(|m| text.starts_with(m));
                                if method && text.trim_end().ends_with(" HTTP/1.1") {
                                    counter.fetch_add(1, Ordering::SeqCst);
                                }
                                line.clear();
                            }
                        }
                        if up_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = up_write.shutdown().await;
                };
                let responses = async {
                    let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
                };
                tokio::join!(requests, responses);
            });
        }
    });
    (format!("unix://{}", path.display()), count)
}

#[tokio::test]
async fn a_quiet_observe_makes_three_api_calls_and_two_once_connected() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new();
    let dir = tempfile::tempdir().unwrap();
    let (host, count) = counting_proxy(dir.path()).await;
    let project = scratch.project(json!({
        "services": {
            "a": {"image": IMAGE},
            "b": {"image": IMAGE},
            "c": {"build": {"context": "/nonexistent"}},
        },
    }));
    let backend = DockerBackend::for_host(&host);
    backend.observe(&project, false).await.unwrap();
    // Version negotiation, the container list, the image list.
    assert_eq!(count.load(Ordering::SeqCst), 3);
    backend.observe(&project, false).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 5);
    backend.observe(&project, true).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 9);
}

#[tokio::test]
async fn events_report_a_container_killed_and_removed_by_hand() {
    use futures::StreamExt;
    use stackd::docker::EventKind;
    if !enabled() {
        return;
    }
    let scratch = Scratch::new();
    let project = scratch.project(json!({
        "services": {"web": {"image": IMAGE, "command": ["sleep", "600"], "stop_grace_period": "1s"}}
    }));
    let meta = scratch.meta(&project);
    let backend = DockerBackend::new();
    let mut events = backend.events();
    apply_all(
        &backend,
        &project,
        &meta,
        &[create(&project, "web", 1), start(&project, "web")],
    )
    .await;
    let name = format!("{}-web-1", project.name);
    docker(&["kill", &name]);
    docker(&["rm", "-f", &name]);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains(&EventKind::Destroyed) {
        let next = tokio::time::timeout_at(deadline, events.next()).await;
        let event = next
            .expect("no destroy event within 20 s")
            .unwrap()
            .unwrap();
        if event.project == project.name {
            assert_eq!(event.service, "web");
            assert_eq!(event.container, name);
            seen.push(event.kind);
        }
    }
    for kind in [EventKind::Started, EventKind::Killed, EventKind::Died] {
        assert!(seen.contains(&kind), "{kind:?} missing from {seen:?}");
    }
}

#[tokio::test]
async fn a_container_wait_sees_health_and_a_crash_within_the_monitor_period() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new();
    let check = |test: &str| json!({"test": ["CMD-SHELL", test], "interval": "500ms", "timeout": "2s", "retries": 1});
    let project = scratch.project(json!({
        "services": {
            "good": {"image": IMAGE, "command": ["sleep", "300"], "healthcheck": check("true")},
            "bad": {"image": IMAGE, "command": ["sleep", "300"], "healthcheck": check("false")},
            "crashy": {"image": IMAGE, "command": ["sh", "-c", "sleep 1; exit 1"], "restart": "always"},
        },
    }));
    let meta = scratch.meta(&project);
    let backend = DockerBackend::new();
    for service in ["good", "bad", "crashy"] {
        apply_all(
            &backend,
            &project,
            &meta,
            &[create(&project, service, 1), start(&project, service)],
        )
        .await;
    }
    let wait = |service: &str, condition, monitor| Action::WaitContainer {
        service: service.into(),
        name: format!("{}-{service}-1", project.name),
        condition,
        monitor: Duration::from_secs(monitor),
    };
    let started = Instant::now();
    backend
        .apply(&project, &meta, &wait("good", Condition::ServiceHealthy, 2))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2), "monitored");
    let err = backend
        .apply(&project, &meta, &wait("bad", Condition::ServiceHealthy, 0))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "unhealthy", "{err}");
    // Running at first, then exits and is restarted by the engine.
    let err = backend
        .apply(
            &project,
            &meta,
            &wait("crashy", Condition::ServiceStarted, 10),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.reason(), "restarted" | "exited_with_error"),
        "{err}"
    );
    let gone = Action::WaitContainer {
        service: "good".into(),
        name: format!("{}-nothing-1", project.name),
        condition: Condition::ServiceStarted,
        monitor: Duration::ZERO,
    };
    let err = backend.apply(&project, &meta, &gone).await.unwrap_err();
    assert_eq!(err.reason(), "container_missing", "{err}");
}

/// Networks and volumes made by hand (no project label), removed on drop.
struct Unlabelled(Vec<[String; 2]>);

impl Drop for Unlabelled {
    fn drop(&mut self) {
        for [kind, name] in &self.0 {
            docker(&[kind, "rm", name]);
        }
    }
}

#[tokio::test]
async fn external_networks_and_volumes_are_found_by_name_and_the_stack_comes_up_on_them() {
    if !enabled() {
        return;
    }
    // Dropped after `scratch`, so after the containers that use them.
    let mut unlabelled = Unlabelled(Vec::new());
    let scratch = Scratch::new();
    // A neighbour whose name contains the network's: the engine's name
    // filter matches substrings.
    let network = format!("{}-edge", scratch.name);
    let volume = format!("{}-shared", scratch.name);
    for [kind, name] in [
        ["network".to_owned(), network.clone()],
        ["network".to_owned(), format!("{network}-other")],
        ["volume".to_owned(), volume.clone()],
    ] {
        docker(&[&kind, "create", &name]);
        unlabelled.0.push([kind, name]);
    }
    let project = scratch.project(json!({
        "services": {"web": {
            "image": IMAGE,
            "command": ["sleep", "300"],
            "networks": {"edge": null},
            "volumes": [{"type": "volume", "source": "shared", "target": "/shared"}],
        }},
        "networks": {"edge": {"name": network, "external": true}},
        "volumes": {"shared": {"name": volume, "external": true}},
    }));
    let meta = scratch.meta(&project);
    let backend = DockerBackend::new();
    let observed = backend.observe(&project, true).await.unwrap();
    let networks: Vec<&str> = observed
        .networks
        .iter()
        .flatten()
        .map(|n| n.name.as_str())
        .collect();
    let volumes: Vec<&str> = observed
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        (networks, volumes),
        (vec![network.as_str()], vec![volume.as_str()])
    );
    let plan = stackd::plan::plan_up(&project, &observed, &stackd::plan::UpOptions::default())
        .expect("a stack on existing external resources plans");
    let actions: Vec<Action> = plan.steps.into_iter().map(|s| s.action).collect();
    assert!(actions.iter().all(|a| !matches!(
        a,
        Action::CreateNetwork { .. } | Action::CreateVolume { .. }
    )));
    apply_all(&backend, &project, &meta, &actions).await;
    let web = format!("{}-web-1", project.name);
    let attached = docker(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks}} {{json .Mounts}}",
        &web,
    ]);
    assert!(
        attached.contains(&network) && attached.contains(&volume),
        "{attached}"
    );
}
