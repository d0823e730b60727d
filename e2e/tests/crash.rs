//! Safety rule 3 on the real engine: stackd killed with SIGKILL in the
//! middle of a convergence leaves nothing the next `up` cannot repair, with
//! no duplicate container numbers and no half-renamed leftovers.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Result};
use stackd_e2e::{Stack, IDLE_COMMAND, IMAGE};

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
    format!(
        "services:\n  web:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n    \
         environment:\n      GENERATION: \"{generation}\"\n    deploy:\n      replicas: 4\n"
    )
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
