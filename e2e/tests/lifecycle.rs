//! stackd's `up`, `down`, `plan` and `ps` on the real engine: a cold start
//! in dependency order, idempotence, volumes across `down`, and listings that
//! the reference docker compose shares.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use stackd_e2e::{docker, http_get, ApiProxy, Stack, IDLE_COMMAND, IMAGE};

#[test]
fn cold_up_starts_each_service_only_after_its_dependencies_are_healthy() -> Result<()> {
    let Some(stack) = Stack::from_busybox_manifest("cold-up", "agents")? else {
        return Ok(());
    };
    stack.up()?;

    let orchestrator = stack.container("orchestrator", 1)?;
    let services = stack.container("services", 1)?;
    let agents = stack.service("agents")?;
    ensure!(agents.len() == 2, "agents has 2 replicas: {agents:#?}");
    for container in agents.iter().chain([&orchestrator, &services]) {
        ensure!(
            container.is_running(),
            "{} is {}",
            container.name,
            container.status
        );
    }
    ensure!(
        orchestrator.health.as_deref() == Some("healthy"),
        "up --wait returned before the orchestrator was healthy: {:?}",
        orchestrator.health
    );
    let healthy_at = orchestrator
        .first_healthy_at()
        .context("the orchestrator's health log has no passing probe")?;
    ensure!(
        services.started_at >= healthy_at,
        "services started {} ms before the orchestrator was healthy",
        healthy_at.millis_since(services.started_at)
    );
    for agent in &agents {
        ensure!(
            agent.started_at >= healthy_at,
            "{} started {} ms before the orchestrator was healthy",
            agent.name,
            healthy_at.millis_since(agent.started_at)
        );
        ensure!(
            agent.started_at >= services.started_at,
            "{} started before services (service_started)",
            agent.name
        );
    }
    Ok(())
}

#[test]
fn containers_networks_and_volumes_carry_compose_names_and_labels() -> Result<()> {
    let Some(stack) = Stack::new("labels")? else {
        return Ok(());
    };
    stack.write_compose(&format!(
        "services:\n  web:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n    \
         deploy: {{replicas: 2}}\n    volumes: [data:/data]\nvolumes:\n  data: {{}}\n"
    ))?;
    stack.up()?;
    let containers = stack.containers()?;
    ensure!(containers.len() == 2, "{containers:#?}");
    for (index, container) in containers.iter().enumerate() {
        let number = index + 1;
        ensure!(container.name == format!("{}-web-{number}", stack.name()));
        let labels = &container.labels;
        let expect = [
            ("com.docker.compose.project", stack.name().to_string()),
            ("com.docker.compose.service", "web".to_string()),
            ("com.docker.compose.container-number", number.to_string()),
            ("com.docker.compose.oneoff", "False".to_string()),
            ("dev.stackd.managed-by", "stackd".to_string()),
        ];
        for (key, value) in expect {
            ensure!(
                labels.get(key) == Some(&value),
                "{}: label {key} is {:?}, not {value:?}",
                container.name,
                labels.get(key)
            );
        }
        for key in [
            "com.docker.compose.config-hash",
            "com.docker.compose.project.working_dir",
            "com.docker.compose.project.config_files",
        ] {
            ensure!(
                labels.get(key).is_some_and(|v| !v.is_empty()),
                "{}: label {key} missing",
                container.name
            );
        }
    }
    ensure!(
        stack.volumes()? == [stack.volume_name("data")],
        "volumes: {:?}",
        stack.volumes()?
    );
    ensure!(
        stack.networks()? == [format!("{}_default", stack.name())],
        "networks: {:?}",
        stack.networks()?
    );
    Ok(())
}

#[test]
fn a_second_up_makes_no_changing_api_calls_and_plan_reports_nothing_to_do() -> Result<()> {
    let Some(stack) = Stack::from_busybox_manifest("idempotent", "orchestrator")? else {
        return Ok(());
    };
    stack.up()?;
    let before = started(&stack)?;

    let proxy = ApiProxy::start()?;
    stack.stackd_via(&proxy, &["up", "--wait"])?.ok()?;
    let changing = proxy.changing_calls();
    let counts = proxy.counts();
    eprintln!(
        "no-op up: {} API calls {counts:#?}",
        counts.values().sum::<usize>()
    );
    ensure!(
        changing.is_empty(),
        "a no-op up changed things: {changing:#?}"
    );
    ensure!(
        started(&stack)? == before,
        "a no-op up replaced or restarted containers"
    );

    let plan = stack.stackd(&["plan"])?;
    ensure!(plan.code == Some(0), "plan after up: {plan}");
    let plan_json = stack.stackd(&["plan", "--format", "json"])?;
    ensure!(
        plan_json.code == Some(0),
        "plan --format json after up: {plan_json}"
    );
    serde_json::from_str::<Value>(&plan_json.stdout)
        .with_context(|| format!("plan --format json printed no JSON: {plan_json}"))?;
    Ok(())
}

#[test]
fn plan_exits_2_while_changes_are_pending() -> Result<()> {
    let Some(stack) = Stack::new("plan-pending")? else {
        return Ok(());
    };
    stack.write_compose(&format!(
        "services:\n  web:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n"
    ))?;
    let plan = stack.stackd(&["plan"])?;
    ensure!(plan.code == Some(2), "plan before up: {plan}");
    ensure!(stack.containers()?.is_empty(), "plan created containers");
    stack.up()?;
    let plan = stack.stackd(&["plan"])?;
    ensure!(plan.code == Some(0), "plan after up: {plan}");
    Ok(())
}

#[test]
fn down_keeps_named_volumes_and_down_v_removes_them() -> Result<()> {
    let Some(stack) = Stack::new("volumes")? else {
        return Ok(());
    };
    stack.write_compose(&format!(
        "services:\n  store:\n    image: {IMAGE}\n    pull_policy: never\n    command: [\"sh\", \"-c\", \
         \"test -f /data/first || date > /data/first; trap 'exit 0' TERM; sleep 86400 & wait\"]\n    \
         volumes: [data:/data]\nvolumes:\n  data: {{}}\n"
    ))?;
    let volume = stack.volume_name("data");
    stack.up()?;
    let marker = read_marker(&stack)?;

    stack.down(false)?;
    ensure!(stack.containers()?.is_empty(), "down left containers");
    ensure!(stack.networks()?.is_empty(), "down left networks");
    ensure!(
        stackd_e2e::volume_exists(&volume)?,
        "down removed the named volume {volume}"
    );

    stack.up()?;
    ensure!(
        read_marker(&stack)? == marker,
        "the volume's content did not survive down and up"
    );

    stack.down(true)?;
    ensure!(stack.containers()?.is_empty(), "down -v left containers");
    ensure!(
        !stackd_e2e::volume_exists(&volume)?,
        "down -v kept the named volume {volume}"
    );
    Ok(())
}

#[test]
fn the_reference_compose_ps_lists_the_containers_stackd_created() -> Result<()> {
    let Some(stack) = Stack::from_busybox_manifest("compose-ps", "coordination")? else {
        return Ok(());
    };
    stack.up()?;
    let name = format!("{}-server-1", stack.name());

    let table = stack.compose(&["ps"])?.ok()?;
    ensure!(table.stdout.contains(&name), "compose ps: {table}");
    let json = stack.compose(&["ps", "--format", "json"])?.ok()?;
    let rows = json_rows(&json.stdout)?;
    let row = rows
        .iter()
        .find(|row| field(row, &["Name"]) == Some(name.as_str()))
        .with_context(|| format!("compose ps --format json has no {name}: {json}"))?;
    ensure!(field(row, &["Service"]) == Some("server"), "{row}");
    ensure!(field(row, &["State"]) == Some("running"), "{row}");
    Ok(())
}

#[test]
fn stackd_ps_lists_the_containers_with_their_state() -> Result<()> {
    let Some(stack) = Stack::from_busybox_manifest("stackd-ps", "coordination")? else {
        return Ok(());
    };
    stack.up()?;
    let name = format!("{}-server-1", stack.name());

    let table = stack.stackd(&["ps"])?.ok()?;
    ensure!(table.stdout.contains(&name), "stackd ps: {table}");
    let json = stack.stackd(&["ps", "--format", "json"])?.ok()?;
    let rows = json_rows(&json.stdout)?;
    let row = rows
        .iter()
        .find(|row| field(row, &["Name", "name"]) == Some(name.as_str()))
        .with_context(|| format!("stackd ps --format json has no {name}: {json}"))?;
    let state = field(row, &["State", "state", "Status", "status"])
        .with_context(|| format!("no state in {row}"))?;
    ensure!(state.contains("running"), "state {state:?} in {row}");
    Ok(())
}

#[test]
fn the_coordination_server_runs_read_only_as_nobody_and_serves_health_and_metrics() -> Result<()> {
    let Some(stack) = Stack::from_busybox_manifest("coordination", "coordination")? else {
        return Ok(());
    };
    stack.up()?;
    let server = stack.container("server", 1)?;
    ensure!(
        server.health.as_deref() == Some("healthy"),
        "{:?}",
        server.health
    );
    let host = |pointer: &str| {
        server
            .inspect
            .pointer(pointer)
            .cloned()
            .unwrap_or(Value::Null)
    };
    ensure!(
        host("/HostConfig/ReadonlyRootfs") == Value::Bool(true),
        "not read-only"
    );
    ensure!(
        host("/Config/User") == "65534:65534",
        "user {}",
        host("/Config/User")
    );
    let tmpfs = host("/HostConfig/Tmpfs");
    ensure!(
        tmpfs.get("/tmp").is_some() && tmpfs.get("/run").is_some(),
        "tmpfs {tmpfs}"
    );
    let binding = host("/HostConfig/PortBindings/8080~1tcp/0/HostIp");
    ensure!(binding == "127.0.0.1", "port bound on {binding}");

    let port = server
        .host_port("8080/tcp")
        .context("no host port for 8080/tcp")?;
    ensure!(http_get(port, "/health")?.trim() == "ok", "/health");
    ensure!(http_get(port, "/metrics")?.contains("up 1"), "/metrics");

    let id = docker(&["exec", &server.name, "id", "-u"])?.ok()?;
    ensure!(id.stdout.trim() == "65534", "runs as {}", id.stdout.trim());
    let write_root = docker(&["exec", &server.name, "touch", "/written"])?;
    ensure!(!write_root.success(), "the root filesystem is writable");
    docker(&["exec", &server.name, "touch", "/tmp/written"])?.ok()?;
    Ok(())
}

#[test]
fn workers_get_their_replicas_resource_limits_and_the_secret_file() -> Result<()> {
    let Some(stack) = Stack::from_busybox_manifest("orchestrator", "orchestrator")? else {
        return Ok(());
    };
    stack.up()?;
    let workers = stack.service("workers")?;
    ensure!(workers.len() == 3, "{} workers", workers.len());
    for worker in &workers {
        let limit = |key: &str| {
            worker
                .inspect
                .pointer(&format!("/HostConfig/{key}"))
                .and_then(Value::as_i64)
        };
        ensure!(
            limit("NanoCpus") == Some(250_000_000),
            "{}: cpus",
            worker.name
        );
        ensure!(
            limit("Memory") == Some(32 * 1024 * 1024),
            "{}: memory",
            worker.name
        );
        ensure!(limit("PidsLimit") == Some(64), "{}: pids", worker.name);
    }
    let control_plane = stack.container("control-plane", 1)?;
    ensure!(control_plane.health.as_deref() == Some("healthy"));
    let secret = docker(&[
        "exec",
        &control_plane.name,
        "cat",
        "/run/secrets/db_password",
    ])?
    .ok()?;
    ensure!(
        secret.stdout == stack.read_file("secrets/db_password.txt")?,
        "the secret file's content differs"
    );
    let mounts = control_plane
        .inspect
        .pointer("/Mounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let secret_mount = mounts
        .iter()
        .find(|m| m.get("Destination").and_then(Value::as_str) == Some("/run/secrets/db_password"))
        .context("no mount at /run/secrets/db_password")?;
    ensure!(
        secret_mount.get("RW") == Some(&Value::Bool(false)),
        "the secret is mounted writable: {secret_mount}"
    );
    Ok(())
}

/// Container id and start time per container name.
fn started(stack: &Stack) -> Result<BTreeMap<String, (String, stackd_e2e::Timestamp)>> {
    Ok(stack
        .containers()?
        .into_iter()
        .map(|c| (c.name, (c.id, c.started_at)))
        .collect())
}

fn read_marker(stack: &Stack) -> Result<String> {
    let store = stack.container("store", 1)?;
    Ok(docker(&["exec", &store.id, "cat", "/data/first"])?
        .ok()?
        .stdout)
}

/// A JSON array, or one JSON value per line (as `docker compose ps` prints).
fn json_rows(text: &str) -> Result<Vec<Value>> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(trimmed)?;
        return Ok(value.as_array().cloned().unwrap_or_default());
    }
    trimmed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
        .collect()
}

/// The first of `keys` present in `row` as a string.
fn field<'a>(row: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| row.get(*k).and_then(Value::as_str))
}
