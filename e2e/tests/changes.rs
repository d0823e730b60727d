//! stackd converging after the compose file changed: only what changed is
//! replaced, `depends_on.restart` reaches dependents, scaling keeps the
//! first containers, and services that left the file are pruned.

use std::collections::BTreeMap;

use anyhow::{ensure, Result};
use stackd_e2e::{docker, Container, Stack, Timestamp, IDLE_COMMAND, IMAGE};

/// A database with a healthcheck, an `api` that restarts with it, a
/// `worker` that does not, and an unrelated `other`.
fn dependents(db_generation: u32, other_generation: u32) -> String {
    format!(
        r#"services:
  db:
    image: {IMAGE}
    pull_policy: never
    command: {IDLE_COMMAND}
    environment:
      GENERATION: "{db_generation}"
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      timeout: 2s
      retries: 10
  api:
    image: {IMAGE}
    pull_policy: never
    command: {IDLE_COMMAND}
    depends_on:
      db:
        condition: service_healthy
        restart: true
  worker:
    image: {IMAGE}
    pull_policy: never
    command: {IDLE_COMMAND}
    depends_on:
      db:
        condition: service_started
  other:
    image: {IMAGE}
    pull_policy: never
    command: {IDLE_COMMAND}
    environment:
      GENERATION: "{other_generation}"
"#
    )
}

/// Id and start time of each service's first container.
fn snapshot(stack: &Stack) -> Result<BTreeMap<String, (String, Timestamp)>> {
    Ok(stack
        .containers()?
        .into_iter()
        .map(|c| (c.service, (c.id, c.started_at)))
        .collect())
}

fn unchanged(
    before: &BTreeMap<String, (String, Timestamp)>,
    after: &BTreeMap<String, (String, Timestamp)>,
    service: &str,
) -> Result<()> {
    ensure!(
        before.get(service) == after.get(service),
        "{service} was replaced or restarted: {:?} → {:?}",
        before.get(service),
        after.get(service)
    );
    Ok(())
}

#[test]
fn changing_one_services_environment_recreates_only_that_service() -> Result<()> {
    let Some(stack) = Stack::new("env-change")? else {
        return Ok(());
    };
    stack.write_compose(&dependents(1, 1))?;
    stack.up()?;
    let before = snapshot(&stack)?;

    stack.write_compose(&dependents(1, 2))?;
    stack.up()?;
    let after = snapshot(&stack)?;
    for service in ["db", "api", "worker"] {
        unchanged(&before, &after, service)?;
    }
    ensure!(
        before["other"].0 != after["other"].0,
        "other kept its container"
    );
    let other = stack.container("other", 1)?;
    ensure!(other.is_running(), "other is {}", other.status);
    ensure!(
        other.env("GENERATION").as_deref() == Some("2"),
        "other runs with GENERATION={:?}",
        other.env("GENERATION")
    );
    ensure!(
        stack.containers()?.len() == 4,
        "a replacement left extra containers"
    );
    Ok(())
}

#[test]
fn recreating_a_dependency_restarts_dependents_with_restart_true_only() -> Result<()> {
    let Some(stack) = Stack::new("dep-restart")? else {
        return Ok(());
    };
    stack.write_compose(&dependents(1, 1))?;
    stack.up()?;
    let before = snapshot(&stack)?;

    stack.write_compose(&dependents(2, 1))?;
    stack.up()?;
    let after = snapshot(&stack)?;
    ensure!(before["db"].0 != after["db"].0, "db kept its container");
    let api_restarted = before["api"].0 != after["api"].0 || after["api"].1 > before["api"].1;
    ensure!(
        api_restarted,
        "api (depends_on db with restart: true) was not restarted"
    );
    unchanged(&before, &after, "worker")?;
    unchanged(&before, &after, "other")?;
    let db = stack.container("db", 1)?;
    let api = stack.container("api", 1)?;
    ensure!(api.is_running(), "api is {}", api.status);
    ensure!(
        api.started_at >= db.started_at,
        "api restarted before the new db started"
    );
    Ok(())
}

fn scaled(replicas: u32) -> String {
    format!(
        "services:\n  web:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n    \
         deploy:\n      replicas: {replicas}\n"
    )
}

fn numbers(containers: &[Container]) -> Vec<Option<u32>> {
    containers.iter().map(|c| c.number).collect()
}

#[test]
fn scaling_1_to_3_to_2_to_1_keeps_the_first_container_and_removes_the_highest_numbers_first(
) -> Result<()> {
    let Some(stack) = Stack::new("scale")? else {
        return Ok(());
    };
    stack.write_compose(&scaled(1))?;
    stack.up()?;
    let first = stack.container("web", 1)?;

    stack.write_compose(&scaled(3))?;
    stack.up()?;
    let web = stack.service("web")?;
    ensure!(
        numbers(&web) == [Some(1), Some(2), Some(3)],
        "after scaling to 3: {:?}",
        numbers(&web)
    );
    ensure!(web.iter().all(Container::is_running), "not all running");
    ensure!(
        web[0].id == first.id && web[0].started_at == first.started_at,
        "scaling up replaced or restarted web-1"
    );
    for container in &web {
        ensure!(
            container.name == format!("{}-web-{}", stack.name(), container.number.unwrap_or(0)),
            "unexpected name {}",
            container.name
        );
    }
    let second = web[1].clone();

    stack.write_compose(&scaled(2))?;
    stack.up()?;
    let web = stack.service("web")?;
    ensure!(
        numbers(&web) == [Some(1), Some(2)],
        "after scaling to 2: {:?} (the highest number goes first)",
        numbers(&web)
    );
    ensure!(
        web[0].id == first.id && web[1].id == second.id,
        "scaling down replaced a kept container"
    );

    stack.write_compose(&scaled(1))?;
    stack.up()?;
    let web = stack.service("web")?;
    ensure!(
        numbers(&web) == [Some(1)],
        "after scaling to 1: {:?}",
        numbers(&web)
    );
    ensure!(
        web[0].id == first.id && web[0].started_at == first.started_at,
        "scaling down replaced or restarted web-1"
    );
    Ok(())
}

fn two_services(with_extra: bool) -> String {
    let mut yaml = format!(
        "services:\n  keep:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n"
    );
    if with_extra {
        yaml.push_str(&format!(
            "  extra:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n    \
             deploy: {{replicas: 2}}\n"
        ));
    }
    yaml
}

#[test]
fn removing_a_service_from_the_file_removes_its_containers_on_the_next_up() -> Result<()> {
    let Some(stack) = Stack::new("prune")? else {
        return Ok(());
    };
    stack.write_compose(&two_services(true))?;
    stack.up()?;
    ensure!(stack.service("extra")?.len() == 2, "extra has 2 replicas");
    let keep = stack.container("keep", 1)?;

    stack.write_compose(&two_services(false))?;
    stack.up()?;
    ensure!(
        stack.service("extra")?.is_empty(),
        "extra's containers survived: {:?}",
        stack
            .service("extra")?
            .iter()
            .map(|c| &c.name)
            .collect::<Vec<_>>()
    );
    let kept = stack.container("keep", 1)?;
    ensure!(
        kept.id == keep.id && kept.started_at == keep.started_at,
        "pruning touched keep"
    );
    Ok(())
}

#[test]
fn up_with_no_prune_keeps_the_containers_of_removed_services() -> Result<()> {
    let Some(stack) = Stack::new("no-prune")? else {
        return Ok(());
    };
    stack.write_compose(&two_services(true))?;
    stack.up()?;
    stack.write_compose(&two_services(false))?;
    stack.stackd(&["up", "--wait", "--no-prune"])?.ok()?;
    ensure!(
        stack.service("extra")?.len() == 2,
        "--no-prune removed extra's containers"
    );
    stack.up()?;
    ensure!(
        stack.service("extra")?.is_empty(),
        "extra survived a pruning up"
    );
    Ok(())
}

/// A `store` whose image declares `VOLUME /cache` and whose file declares
/// an anonymous `/data`; each gets a marker written once.
fn anonymous(generation: u32) -> String {
    format!(
        r#"services:
  store:
    build:
      context: .
    pull_policy: build
    command: ["sh", "-c", "for d in /data /cache; do test -f $$d/first || date +%s%N > $$d/first; done; trap 'exit 0' TERM; sleep 86400 & wait"]
    environment:
      GENERATION: "{generation}"
    volumes:
      - /data
"#
    )
}

/// Marker contents and volume names per mount point of `store`.
fn anonymous_state(stack: &Stack) -> Result<BTreeMap<String, (String, String)>> {
    let store = stack.container("store", 1)?;
    let mut state = BTreeMap::new();
    for mount in store
        .inspect
        .pointer("/Mounts")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
    {
        let field = |key: &str| mount.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        if field("Type") != "volume" {
            continue;
        }
        let target = field("Destination").to_string();
        let marker = docker(&["exec", &store.id, "cat", &format!("{target}/first")])?
            .ok()?
            .stdout;
        state.insert(target, (field("Name").to_string(), marker));
    }
    ensure!(
        state.keys().map(String::as_str).collect::<Vec<_>>() == ["/cache", "/data"],
        "store mounts {state:?}"
    );
    Ok(state)
}

#[test]
fn anonymous_volumes_survive_a_recreate_and_go_only_with_down_v() -> Result<()> {
    let Some(stack) = Stack::new("anonymous")? else {
        return Ok(());
    };
    stack.write_file("Dockerfile", &format!("FROM {IMAGE}\nVOLUME /cache\n"))?;
    let image = format!("{}-store", stack.name());
    let result = (|| -> Result<()> {
        stack.write_compose(&anonymous(1))?;
        stack.up()?;
        let before = anonymous_state(&stack)?;
        let old = stack.container("store", 1)?;

        // A config change replaces the container; its anonymous volumes,
        // and their data, move to the new one (as compose's recreate does).
        stack.write_compose(&anonymous(2))?;
        stack.up()?;
        let new = stack.container("store", 1)?;
        ensure!(
            new.id != old.id,
            "the environment change did not recreate store"
        );
        ensure!(
            anonymous_state(&stack)? == before,
            "anonymous volumes not carried over: {before:?}"
        );

        // Plain down leaves them; the next up starts with fresh ones.
        stack.down(false)?;
        for (name, _) in before.values() {
            ensure!(stackd_e2e::volume_exists(name)?, "down removed {name}");
        }
        stack.up()?;
        let fresh = anonymous_state(&stack)?;
        stack.down(true)?;
        for (name, _) in fresh.values() {
            ensure!(!stackd_e2e::volume_exists(name)?, "down -v kept {name}");
        }
        for (name, _) in before.values() {
            docker(&["volume", "rm", name])?.ok()?;
        }
        Ok(())
    })();
    // The built image is the test's own; the stack's cleanup does not know it.
    let _ = docker(&["image", "rm", &image]);
    result
}

/// `web`, restarted unless stopped (a container without a restart policy
/// that exited 0 is a finished job, which up leaves alone).
fn one_service(networks: &str) -> String {
    format!(
        "services:\n  web:\n    image: {IMAGE}\n    pull_policy: never\n    restart: unless-stopped\n    \
         command: {IDLE_COMMAND}\n{networks}"
    )
}

#[test]
fn up_unpauses_a_paused_container_without_recreating_it() -> Result<()> {
    let Some(stack) = Stack::new("unpause")? else {
        return Ok(());
    };
    stack.write_compose(&one_service(""))?;
    stack.up()?;
    let web = stack.container("web", 1)?;
    // The image label compose writes: the id the container was created from.
    let image = web.inspect.pointer("/Image").and_then(|v| v.as_str());
    ensure!(
        web.labels
            .get("com.docker.compose.image")
            .map(String::as_str)
            == image,
        "image label {:?} vs image {image:?}",
        web.labels.get("com.docker.compose.image")
    );
    docker(&["pause", &web.id])?.ok()?;
    ensure!(stack.container("web", 1)?.status == "paused", "not paused");
    stack.up()?;
    let after = stack.container("web", 1)?;
    ensure!(after.id == web.id, "up recreated the paused container");
    ensure!(after.status == "running", "still {}", after.status);
    Ok(())
}

#[test]
fn network_changes_recreate_the_containers_they_concern() -> Result<()> {
    let Some(stack) = Stack::new("networks")? else {
        return Ok(());
    };
    stack.write_compose(&one_service(""))?;
    stack.up()?;
    let first = stack.container("web", 1)?;

    // The network removed while the container is stopped: the engine could
    // not start it again, so up creates both anew.
    docker(&["stop", &first.id])?.ok()?;
    let network = format!("{}_default", stack.name());
    docker(&["network", "rm", &network])?.ok()?;
    stack.up()?;
    let second = stack.container("web", 1)?;
    ensure!(second.id != first.id, "the container was not recreated");
    ensure!(second.is_running(), "web is {}", second.status);

    // Joining another network recreates the container on both.
    stack.write_compose(&one_service(
        "    networks: [default, back]\nnetworks:\n  back: {}\n",
    ))?;
    stack.up()?;
    let third = stack.container("web", 1)?;
    ensure!(
        third.id != second.id,
        "joining a network did not recreate web"
    );
    let joined: Vec<String> = third
        .inspect
        .pointer("/NetworkSettings/Networks")
        .and_then(|n| n.as_object())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    ensure!(
        joined == [format!("{}_back", stack.name()), network],
        "networks {joined:?}"
    );
    // And a second up is a no-op.
    let plan = stack.stackd(&["plan"])?;
    ensure!(plan.code == Some(0), "plan after up: {plan}");
    Ok(())
}
