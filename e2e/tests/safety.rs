//! stackd's promises on the real engine: what it does not own is never
//! touched, a finished one-shot job is not rerun, and a service that never
//! becomes healthy fails `up --wait` by name.

use anyhow::{ensure, Context, Result};
use stackd_e2e::{inspect_container, logs, volume_exists, Stack, IDLE_COMMAND, IMAGE};

#[test]
fn containers_and_volumes_stackd_does_not_own_are_never_touched_by_up_or_down() -> Result<()> {
    let Some(mut stack) = Stack::new("foreign")? else {
        return Ok(());
    };
    stack.write_compose(&format!(
        "services:\n  web:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n    \
         volumes: [data:/data]\nvolumes:\n  data: {{}}\n"
    ))?;
    // Names that look like the project's (a higher replica of one of its
    // services, a service it no longer has, a volume with its prefix) but
    // carry no compose labels.
    let idle = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"];
    let lookalikes = [
        format!("{}-web-9", stack.name()),
        format!("{}-gone-1", stack.name()),
    ];
    let mut foreign = Vec::new();
    for name in &lookalikes {
        let mut args = vec![IMAGE];
        args.extend_from_slice(&idle);
        foreign.push(stack.run_foreign_container(name, &args)?);
    }
    let foreign_volume = format!("{}_extra", stack.name());
    stack.create_foreign_volume(&foreign_volume)?;

    let untouched = |when: &str| -> Result<()> {
        for before in &foreign {
            let now = inspect_container(&before.name)?
                .with_context(|| format!("{when}: {} was removed", before.name))?;
            ensure!(now.id == before.id, "{when}: {} was replaced", before.name);
            ensure!(
                now.is_running(),
                "{when}: {} is {}",
                before.name,
                now.status
            );
            ensure!(
                now.started_at == before.started_at,
                "{when}: {} was restarted",
                before.name
            );
        }
        ensure!(
            volume_exists(&foreign_volume)?,
            "{when}: {foreign_volume} was removed"
        );
        Ok(())
    };

    stack.up()?;
    untouched("after up")?;
    ensure!(
        stack.service("web")?.len() == 1,
        "web: {:?}",
        stack.service("web")?
    );
    let plan = stack.stackd(&["plan"])?;
    ensure!(
        plan.code == Some(0),
        "foreign containers made plan want changes: {plan}"
    );
    stack.up()?;
    untouched("after a second up")?;
    stack.down(true)?;
    untouched("after down -v")?;
    ensure!(stack.containers()?.is_empty(), "down -v left web");
    ensure!(
        !volume_exists(&stack.volume_name("data"))?,
        "down -v left the project's own volume"
    );
    Ok(())
}

#[test]
fn a_one_shot_job_runs_once_and_is_rerun_only_when_its_own_config_changes() -> Result<()> {
    let Some(stack) = Stack::from_busybox_manifest("one-shot", "orchestrator")? else {
        return Ok(());
    };
    stack.up()?;
    let migrate = stack.container("migrate", 1)?;
    ensure!(
        migrate.status == "exited" && migrate.exit_code == 0,
        "migrate is {} (exit {})",
        migrate.status,
        migrate.exit_code
    );
    let control_plane = stack.container("control-plane", 1)?;
    ensure!(
        control_plane.started_at >= migrate.finished_at,
        "control-plane started {} ms before migrate finished (service_completed_successfully)",
        migrate.finished_at.millis_since(control_plane.started_at)
    );
    let runs = |stack: &Stack| -> Result<usize> {
        let migrate = stack.container("migrate", 1)?;
        Ok(logs(&migrate.id)?.matches("migrated at").count())
    };
    ensure!(runs(&stack)? == 1, "migrate ran {} times", runs(&stack)?);

    stack.up()?;
    let again = stack.container("migrate", 1)?;
    ensure!(
        again.id == migrate.id && again.started_at == migrate.started_at,
        "a no-op up ran migrate again"
    );

    // A change to another service leaves the finished job alone. The
    // busybox file holds what the stand-ins run, so the edits go there.
    let busybox = stack.read_file("compose.busybox.yaml")?;
    let workers_changed = busybox.replace(
        "      CONTROL_PLANE: http://control-plane:8080\n",
        "      CONTROL_PLANE: http://control-plane:8080\n      WORKER_GENERATION: \"2\"\n",
    );
    ensure!(
        workers_changed != busybox,
        "the workers' environment moved in compose.busybox.yaml"
    );
    stack.write_file("compose.busybox.yaml", &workers_changed)?;
    let workers_before: Vec<String> = stack
        .service("workers")?
        .into_iter()
        .map(|c| c.id)
        .collect();
    stack.up()?;
    let workers_after: Vec<String> = stack
        .service("workers")?
        .into_iter()
        .map(|c| c.id)
        .collect();
    ensure!(
        workers_before.iter().all(|id| !workers_after.contains(id)),
        "the workers were not recreated"
    );
    let again = stack.container("migrate", 1)?;
    ensure!(
        again.id == migrate.id && again.started_at == migrate.started_at,
        "a change to the workers ran migrate again"
    );

    // A change to the job itself runs it again.
    let migrate_changed = workers_changed.replace(
        "echo \"migrated at $$(date)\"\n    environment: !reset {}\n",
        "echo \"migrated at $$(date)\"\n    environment: !override\n      MIGRATION: \"2\"\n",
    );
    ensure!(
        migrate_changed != workers_changed,
        "migrate's environment moved in compose.busybox.yaml"
    );
    stack.write_file("compose.busybox.yaml", &migrate_changed)?;
    stack.up()?;
    let rerun = stack.container("migrate", 1)?;
    ensure!(
        rerun.id != migrate.id || rerun.started_at > migrate.started_at,
        "a change to migrate did not run it again"
    );
    ensure!(
        rerun.status == "exited" && rerun.exit_code == 0,
        "the rerun is {} (exit {})",
        rerun.status,
        rerun.exit_code
    );
    Ok(())
}

#[test]
fn a_failing_healthcheck_makes_up_wait_fail_with_a_message_naming_the_service() -> Result<()> {
    let Some(stack) = Stack::new("unhealthy")? else {
        return Ok(());
    };
    stack.write_compose(&format!(
        r#"services:
  flaky-db:
    image: {IMAGE}
    pull_policy: never
    command: {IDLE_COMMAND}
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      timeout: 1s
      retries: 2
  app:
    image: {IMAGE}
    pull_policy: never
    command: {IDLE_COMMAND}
    depends_on:
      flaky-db:
        condition: service_healthy
"#
    ))?;
    let up = stack.stackd(&["up", "--wait", "--timeout", "60s"])?;
    ensure!(
        !up.timed_out,
        "up --wait hung on an unhealthy service: {up}"
    );
    ensure!(
        !up.success(),
        "up --wait succeeded with an unhealthy service: {up}"
    );
    ensure!(
        up.output().contains("flaky-db"),
        "the failure does not name flaky-db: {up}"
    );
    for app in stack.service("app")? {
        ensure!(
            !app.ever_started(),
            "{} started although flaky-db never became healthy",
            app.name
        );
    }
    Ok(())
}

fn idle_services(names: &[&str]) -> String {
    let mut yaml = String::from("services:\n");
    for name in names {
        yaml.push_str(&format!(
            "  {name}:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n"
        ));
    }
    yaml
}

#[test]
fn a_file_that_fails_to_load_or_validate_leaves_the_running_stack_untouched() -> Result<()> {
    let Some(stack) = Stack::new("bad-input")? else {
        return Ok(());
    };
    stack.write_compose(&idle_services(&["web", "worker"]))?;
    stack.up()?;
    let before: Vec<(String, stackd_e2e::Timestamp)> = stack
        .containers()?
        .into_iter()
        .map(|c| (c.id, c.started_at))
        .collect();

    let broken = [
        ("a YAML syntax error", "services:\n  web: [\n".to_string()),
        (
            "a dependency on a service that does not exist",
            format!("{}    depends_on: [missing]\n", idle_services(&["web"])),
        ),
        ("an empty set of services", "services: {}\n".to_string()),
    ];
    for (what, yaml) in broken {
        stack.write_compose(&yaml)?;
        let up = stack.stackd(&["up", "--wait"])?;
        ensure!(!up.success(), "up accepted {what}: {up}");
        let after: Vec<(String, stackd_e2e::Timestamp)> = stack
            .containers()?
            .into_iter()
            .map(|c| (c.id, c.started_at))
            .collect();
        ensure!(after == before, "up with {what} changed the running stack");
    }
    Ok(())
}

#[test]
fn a_missing_image_with_pull_policy_never_fails_at_once_naming_the_service() -> Result<()> {
    let Some(stack) = Stack::new("no-image")? else {
        return Ok(());
    };
    stack.write_compose(&format!(
        "services:\n  ghost-image:\n    image: stackd-e2e-no-such-image:latest\n    \
         pull_policy: never\n    command: {IDLE_COMMAND}\n"
    ))?;
    let up = stack.stackd(&["up", "--wait"])?;
    ensure!(!up.success(), "up succeeded without the image: {up}");
    ensure!(
        up.elapsed < std::time::Duration::from_secs(30),
        "up took {:?} to give up",
        up.elapsed
    );
    ensure!(
        up.output().contains("ghost-image"),
        "the error does not name the service: {up}"
    );
    Ok(())
}

#[test]
fn a_named_volume_the_file_no_longer_uses_survives_up() -> Result<()> {
    let Some(stack) = Stack::new("volume-kept")? else {
        return Ok(());
    };
    stack.write_compose(&format!(
        "services:\n  store:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n    \
         volumes: [data:/data]\nvolumes:\n  data: {{}}\n"
    ))?;
    stack.up()?;
    let volume = stack.volume_name("data");
    ensure!(volume_exists(&volume)?, "no volume {volume} after up");
    stack.write_compose(&idle_services(&["web"]))?;
    stack.up()?;
    ensure!(stack.service("store")?.is_empty(), "store was not pruned");
    ensure!(
        volume_exists(&volume)?,
        "an up removed the named volume {volume} (only down -v may)"
    );
    Ok(())
}
