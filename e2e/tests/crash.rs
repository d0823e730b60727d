//! Safety rule 3 on the real engine: stackd killed with SIGKILL in the
//! middle of a convergence leaves nothing the next `up` cannot repair, with
//! no duplicate container numbers and no half-renamed leftovers.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Result};
use stackd_e2e::{ApiProxy, Endpoint, Fault, FaultPlan, Stack, IDLE_COMMAND, IMAGE};

/// Every container of the project carries a canonical name
/// `<project>-<service>-<n>` matching its labels, and no (service, number)
/// appears twice.
fn canonical(stack: &Stack) -> Result<()> {
    let mut seen = BTreeSet::new();
    for container in stack.containers()? {
        let number = container.number.unwrap_or(0);
        ensure!(
            container.name == format!("{}-{}-{number}", stack.name(), container.service),
            "leftover container {} ({} #{number})",
            container.name,
            container.service
        );
        ensure!(
            seen.insert((container.service.clone(), number)),
            "two containers are {} #{number}",
            container.service
        );
    }
    Ok(())
}

#[test]
fn a_cold_up_killed_while_waiting_for_health_is_completed_by_the_next_up() -> Result<()> {
    let Some(stack) = Stack::new("crash-cold")? else {
        return Ok(());
    };
    stack.write_compose(&format!(
        r#"services:
  db:
    image: {IMAGE}
    pull_policy: never
    command: ["sh", "-c", "sleep 2; touch /tmp/ready; trap 'exit 0' TERM; sleep 86400 & wait"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 2s
      retries: 30
  app:
    image: {IMAGE}
    pull_policy: never
    command: {IDLE_COMMAND}
    deploy: {{replicas: 2}}
    depends_on:
      db:
        condition: service_healthy
"#
    ))?;
    let killed = stack.stackd_killed_after(&["up", "--wait"], Duration::from_millis(1500))?;
    ensure!(
        killed.timed_out,
        "up finished before it could be killed: {killed}"
    );
    canonical(&stack)?;

    stack.up()?;
    canonical(&stack)?;
    let services: Vec<(String, Option<u32>)> = stack
        .containers()?
        .into_iter()
        .map(|c| (c.service, c.number))
        .collect();
    ensure!(
        services
            == [
                ("app".to_string(), Some(1)),
                ("app".to_string(), Some(2)),
                ("db".to_string(), Some(1)),
            ],
        "{services:?}"
    );
    ensure!(
        stack.containers()?.iter().all(|c| c.is_running()),
        "not everything runs"
    );
    let plan = stack.stackd(&["plan"])?;
    ensure!(plan.code == Some(0), "plan after the repair: {plan}");
    Ok(())
}

fn replicas_with_generation(generation: u32) -> String {
    with_generation(generation, 4)
}

fn with_generation(generation: u32, replicas: u32) -> String {
    format!(
        "services:\n  web:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n    \
         environment:\n      GENERATION: \"{generation}\"\n    deploy:\n      replicas: {replicas}\n"
    )
}

/// The hardest case of a kill: the run dies with its create request on the
/// way, the engine finishes that create after the next run has looked, and
/// the next run meets its own temporary name taken by a container it never
/// saw. Every create is held back in a proxy so the order is certain: the
/// killed run's create reaches the engine while the next run's is held.
#[test]
fn a_create_the_engine_finishes_after_its_run_was_killed_does_not_stop_the_next_up() -> Result<()> {
    let Some(stack) = Stack::new("crash-late-create")? else {
        return Ok(());
    };
    stack.write_compose(&with_generation(0, 1))?;
    stack.up()?;
    stack.write_compose(&with_generation(1, 1))?;
    let plan = FaultPlan::seeded(0)
        .always(Fault::Delay(Duration::from_secs(2)))
        .only(Endpoint::prefix("POST", "/containers/create"));
    let proxy = ApiProxy::with_faults(plan)?;
    let killed =
        stack.stackd_via_killed_after(&proxy, &["up", "--wait"], Duration::from_millis(1500))?;
    ensure!(
        killed.timed_out,
        "up finished before it could be killed: {killed}"
    );
    let held = proxy.calls_to("POST", "/containers/create").len();
    ensure!(
        held == 1,
        "{held} creates were on the way when up was killed"
    );

    let next = stack.stackd_via(&proxy, &["up", "--wait"])?;
    ensure!(next.success(), "the next up failed: {next}");
    let answers: Vec<Option<u16>> = proxy
        .calls_to("POST", "/containers/create")
        .iter()
        .map(|c| c.engine_status)
        .collect();
    ensure!(
        answers.contains(&Some(409)),
        "no create met the name taken, the race did not happen: {answers:?}"
    );
    canonical(&stack)?;
    let web = stack.service("web")?;
    ensure!(web.len() == 1, "web has {} containers", web.len());
    ensure!(web[0].is_running(), "{} is {}", web[0].name, web[0].status);
    ensure!(
        web[0].env("GENERATION") == Some("1".to_string()),
        "web runs generation {:?}",
        web[0].env("GENERATION")
    );
    let plan = stack.stackd(&["plan"])?;
    ensure!(plan.code == Some(0), "plan after the repair: {plan}");
    Ok(())
}

#[test]
fn recreates_killed_at_any_point_are_repaired_by_the_next_up_without_duplicates() -> Result<()> {
    let Some(stack) = Stack::new("crash-recreate")? else {
        return Ok(());
    };
    stack.write_compose(&replicas_with_generation(0))?;
    stack.up()?;
    for (generation, delay_ms) in [(1, 60_u64), (2, 150), (3, 300), (4, 600), (5, 1000)] {
        stack.write_compose(&replicas_with_generation(generation))?;
        let killed =
            stack.stackd_killed_after(&["up", "--wait"], Duration::from_millis(delay_ms))?;
        let midway: Vec<String> = stack
            .containers()?
            .iter()
            .map(|c| format!("{} {} gen {:?}", c.name, c.status, c.env("GENERATION")))
            .collect();
        eprintln!(
            "killed after {delay_ms} ms (it {}): {midway:#?}",
            if killed.timed_out {
                "was running"
            } else {
                "had finished"
            }
        );
        stack.up()?;
        canonical(&stack)?;
        let web = stack.service("web")?;
        let numbers: Vec<Option<u32>> = web.iter().map(|c| c.number).collect();
        ensure!(
            numbers == [Some(1), Some(2), Some(3), Some(4)],
            "killed after {delay_ms} ms: replicas {numbers:?}"
        );
        for container in &web {
            ensure!(
                container.is_running(),
                "killed after {delay_ms} ms: {} is {}",
                container.name,
                container.status
            );
            ensure!(
                container.env("GENERATION") == Some(generation.to_string()),
                "killed after {delay_ms} ms: {} runs generation {:?}",
                container.name,
                container.env("GENERATION")
            );
        }
        let plan = stack.stackd(&["plan"])?;
        ensure!(
            plan.code == Some(0),
            "killed after {delay_ms} ms: plan after the repair: {plan}"
        );
    }
    Ok(())
}
