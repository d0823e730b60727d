//! `stackd watch` repairs drift from engine events alone (the resync is an
//! hour away): containers removed, stopped or killed by hand come back (the
//! repair latencies are printed), containers changed with `docker update`
//! are recreated, an unhealthy container is restarted, one that keeps
//! failing stalls its stack (CrashLoop) instead of restarting forever, and
//! a suspended stack is left as it is.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use stackd_e2e::{
    docker_ok, holds_for, inspect_container, wait_until, Container, Timestamp, WatchDir,
    IDLE_COMMAND, IMAGE,
};

/// How long a converge may take on a loaded machine.
const CONVERGE: Duration = Duration::from_secs(90);
/// How long a repair may take before the test gives up (not a benchmark).
const REPAIR: Duration = Duration::from_secs(30);

fn one_web(extra: &str) -> String {
    format!(
        "services:\n  web:\n    image: {IMAGE}\n    command: {IDLE_COMMAND}\n    restart: always\n{extra}"
    )
}

/// Waits until container `name` exists, runs, and `replaced` says it is
/// the repaired one; polls quickly, since the engine's own start time is
/// what the latency is read from.
fn wait_repaired(
    watch: &WatchDir,
    name: &str,
    mut replaced: impl FnMut(&Container) -> bool,
) -> Result<Container> {
    let deadline = std::time::Instant::now() + REPAIR;
    loop {
        if let Some(c) = inspect_container(name)? {
            if c.is_running() && replaced(&c) {
                return Ok(c);
            }
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "{name} not repaired within {REPAIR:?}\nlog:\n{}",
                watch.log()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn percentile(sorted: &[i128], p: f64) -> i128 {
    // Nearest rank.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn summary(what: &str, mut millis: Vec<i128>) -> String {
    millis.sort_unstable();
    format!(
        "{what}: n={} p50={} ms p95={} ms max={} ms (all: {millis:?})",
        millis.len(),
        percentile(&millis, 0.5),
        percentile(&millis, 0.95),
        millis.last().copied().unwrap_or_default()
    )
}

#[test]
fn containers_removed_stopped_or_killed_by_hand_are_restored_from_events() -> Result<()> {
    let Some(mut watch) = WatchDir::new("wd-latency")? else {
        return Ok(());
    };
    // Stops and kills count towards the crash-loop brake (five restarts a
    // stack in ten minutes): spread them over five stacks, four each.
    let stacks: Vec<String> = (0..5)
        .map(|i| watch.write_compose(&format!("s{i}"), &one_web("")))
        .collect::<Result<_>>()?;
    watch.start(&["--resync", "1h"])?;
    for stack in &stacks {
        watch.wait_ready_at(stack, 1, CONVERGE)?;
    }

    const TRIALS: usize = 10;
    let mut report = Vec::new();
    for kind in ["rm", "stop", "kill"] {
        // From the docker command's start, and from its return (when the
        // drift is complete) to the replacement's start.
        let mut from_issue = Vec::new();
        let mut from_return = Vec::new();
        for trial in 0..TRIALS {
            let stack = &stacks[trial % stacks.len()];
            let name = format!("{stack}-web-1");
            let before = wait_repaired(&watch, &name, |_| true)?;
            let args: Vec<&str> = match kind {
                "rm" => vec!["rm", "-f", &name],
                "stop" => vec!["stop", &name],
                _ => vec!["kill", &name],
            };
            let issued = Timestamp::now();
            docker_ok(&args)?;
            let returned = Timestamp::now();
            let repaired = wait_repaired(&watch, &name, |c| match kind {
                "rm" => c.id != before.id,
                _ => c.id == before.id && c.started_at > before.started_at,
            })
            .with_context(|| format!("docker {kind}, trial {trial}"))?;
            from_issue.push(repaired.started_at.millis_since(issued));
            from_return.push(repaired.started_at.millis_since(returned));
        }
        report.push(summary(
            &format!("docker {kind} -> replacement running, from the command's start"),
            from_issue,
        ));
        report.push(summary(
            &format!("docker {kind} -> replacement running, from the command's return"),
            from_return,
        ));
    }
    println!("repair latency (resync 1h, events only):");
    for line in &report {
        println!("  {line}");
    }

    let total = |kind: &str| -> Result<f64> {
        let mut sum = 0.0;
        for stack in &stacks {
            sum += watch
                .metric(&format!(
                    "stackd_drift_repairs_total{{kind=\"{kind}\",stack=\"{stack}\"}}"
                ))?
                .unwrap_or_default();
        }
        Ok(sum)
    };
    assert_eq!(total("removed")?, TRIALS as f64, "{}", watch.metrics()?);
    assert_eq!(
        total("stopped")?,
        2.0 * TRIALS as f64,
        "{}",
        watch.metrics()?
    );
    for stack in &stacks {
        let (ready, _) = watch.condition(stack, "Ready")?.context("a status file")?;
        assert_eq!(ready, "True", "{stack}");
    }
    Ok(())
}

fn memory_and_restart(c: &Container) -> (i64, String) {
    (
        c.inspect
            .pointer("/HostConfig/Memory")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_default(),
        c.inspect
            .pointer("/HostConfig/RestartPolicy/Name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}

#[test]
fn a_container_changed_with_docker_update_is_recreated_as_the_file_says() -> Result<()> {
    let Some(mut watch) = WatchDir::new("wd-update")? else {
        return Ok(());
    };
    let stack = watch.write_compose("u", &one_web(""))?;
    watch.start(&["--resync", "1h"])?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    let name = format!("{stack}-web-1");
    let mut current = wait_repaired(&watch, &name, |_| true)?;
    assert_eq!(memory_and_restart(&current), (0, "always".into()));

    for change in [
        &["update", "--memory", "64m", "--memory-swap", "128m"][..],
        &["update", "--restart", "no"][..],
    ] {
        let mut args = change.to_vec();
        args.push(&name);
        docker_ok(&args)?;
        let old = current.id.clone();
        current = wait_repaired(&watch, &name, |c| c.id != old)
            .with_context(|| format!("docker {change:?}"))?;
        assert_eq!(
            memory_and_restart(&current),
            (0, "always".into()),
            "after docker {change:?}, the file's settings are back"
        );
    }
    wait_until(CONVERGE, "the stack is Ready again", || {
        Ok(watch
            .condition(&stack, "Ready")?
            .is_some_and(|(s, _)| s == "True"))
    })?;
    let repairs = watch.metric(&format!(
        "stackd_drift_repairs_total{{kind=\"config_changed\",stack=\"{stack}\"}}"
    ))?;
    assert_eq!(repairs, Some(2.0), "{}", watch.metrics()?);
    Ok(())
}

/// Healthy while `/tmp/ok` exists; the command creates it at each start.
fn health_by_file() -> String {
    format!(
        r#"services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "touch /tmp/ok; trap 'exit 0' TERM; sleep 86400 & wait"]
    restart: always
    healthcheck: {{test: ["CMD", "test", "-f", "/tmp/ok"], interval: 1s, timeout: 2s, retries: 1}}
"#
    )
}

#[test]
fn an_unhealthy_container_is_restarted() -> Result<()> {
    let Some(mut watch) = WatchDir::new("wd-unhealthy")? else {
        return Ok(());
    };
    let stack = watch.write_compose("h", &health_by_file())?;
    watch.start(&["--resync", "1h"])?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    let name = format!("{stack}-web-1");
    let before = wait_repaired(&watch, &name, |c| c.health.as_deref() == Some("healthy"))?;

    docker_ok(&["exec", &name, "rm", "/tmp/ok"])?;
    let after = wait_repaired(&watch, &name, |c| {
        c.started_at > before.started_at && c.health.as_deref() == Some("healthy")
    })?;
    assert_eq!(after.id, before.id, "restarted, not recreated");
    wait_until(CONVERGE, "the repair is counted", || {
        Ok(watch.metric(&format!(
            "stackd_drift_repairs_total{{kind=\"unhealthy\",stack=\"{stack}\"}}"
        ))? == Some(1.0))
    })
    .with_context(|| watch.metrics().unwrap_or_default())?;
    watch.wait_condition(&stack, "Ready", CONVERGE)?;
    Ok(())
}

#[test]
fn a_container_that_keeps_failing_stalls_its_stack_instead_of_restarting_forever() -> Result<()> {
    let Some(mut watch) = WatchDir::new("wd-crashloop")? else {
        return Ok(());
    };
    let stack = watch.write_compose(
        "c",
        &one_web("    healthcheck: {test: [\"CMD\", \"false\"], interval: 1s, retries: 1}\n"),
    )?;
    watch.start(&["--resync", "1h"])?;
    let status = watch.wait_condition(&stack, "Stalled", Duration::from_secs(120))?;
    let reason = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Stalled"))
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(reason, "CrashLoop", "{status:#}");
    ensure!(
        status["lastError"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("restarted")),
        "the status says why: {status:#}"
    );

    // Unhealthy all along, yet not restarted again.
    let name = format!("{stack}-web-1");
    let braked = wait_repaired(&watch, &name, |_| true)?;
    holds_for(Duration::from_secs(6), "no restart after the brake", || {
        let now = inspect_container(&name)?.context("the container stays")?;
        Ok(now.id == braked.id && now.started_at == braked.started_at)
    })
    .with_context(|| watch.log())?;
    assert_eq!(
        watch.condition(&stack, "Stalled")?,
        Some(("True".into(), "CrashLoop".into()))
    );
    // The controller's default: five restarts within ten minutes.
    let restarts = watch.metric(&format!(
        "stackd_drift_repairs_total{{kind=\"unhealthy\",stack=\"{stack}\"}}"
    ))?;
    assert_eq!(restarts, Some(5.0), "{}", watch.metrics()?);
    Ok(())
}

fn suspendable(suspend: bool, value: &str) -> String {
    format!(
        r#"  suspend: {suspend}
  compose:
    services:
      web:
        image: {IMAGE}
        command: {IDLE_COMMAND}
        restart: always
        environment: {{V: "{value}"}}
      db:
        image: {IMAGE}
        command: {IDLE_COMMAND}
        restart: always
"#
    )
}

#[test]
fn a_suspended_stack_is_left_as_it_is_until_resumed() -> Result<()> {
    let Some(mut watch) = WatchDir::new("wd-suspend")? else {
        return Ok(());
    };
    let stack = watch.write_manifest("s", &suspendable(false, "1"))?;
    watch.start(&["--resync", "1h"])?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    let web = format!("{stack}-web-1");
    let db = format!("{stack}-db-1");
    let web_before = wait_repaired(&watch, &web, |_| true)?;

    watch.write_manifest("s", &suspendable(true, "2"))?;
    wait_until(CONVERGE, "the status says suspended", || {
        Ok(watch
            .status(&stack)?
            .is_some_and(|s| s["suspended"] == true && s["generation"] == 2))
    })?;
    docker_ok(&["rm", "-f", &db])?;
    holds_for(
        Duration::from_secs(4),
        "nothing changes while suspended",
        || {
            let web_now = inspect_container(&web)?.context("web stays")?;
            Ok(web_now.id == web_before.id && inspect_container(&db)?.is_none())
        },
    )
    .with_context(|| watch.log())?;

    watch.write_manifest("s", &suspendable(false, "2"))?;
    watch.wait_ready_at(&stack, 3, CONVERGE)?;
    let web_after = wait_repaired(&watch, &web, |_| true)?;
    assert_ne!(
        web_after.id, web_before.id,
        "the edit made while suspended applies"
    );
    assert_eq!(web_after.env("V").as_deref(), Some("2"));
    assert!(inspect_container(&db)?.is_some_and(|c| c.is_running()));
    let status = watch.status(&stack)?.context("a status")?;
    assert_eq!(status["suspended"], false);
    Ok(())
}
