//! The controller's promises (DESIGN.md, safety rules) on the real engine,
//! with the controller's Docker API calls counted through a proxy where
//! "nothing changed" must be proved: a file that fails to load (rule 1) or
//! empties the stack (rules 2 and 8) changes nothing; a finished one-shot
//! job is not rerun (rule 6); a named volume the file drops is kept
//! (rule 7); SIGTERM leaves stacks running and a restarted controller
//! finds nothing to do; the metrics endpoint passes `promtool`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use stackd_e2e::{
    docker_ok, volume_exists, wait_until, ApiCall, ApiProxy, WatchDir, IDLE_COMMAND, IMAGE,
};

/// How long a converge may take on a loaded machine.
const CONVERGE: Duration = Duration::from_secs(90);
/// How long the controller may take to notice a file.
const NOTICE: Duration = Duration::from_secs(30);

/// `web` (with a healthcheck) and `db`; every variant below changes web's
/// sixth line.
fn good_file() -> String {
    format!(
        r#"services:
  web:
    image: {IMAGE}
    command: {IDLE_COMMAND}
    restart: always
    healthcheck: {{test: ["CMD", "true"], interval: 1s}}
  db:
    image: {IMAGE}
    command: {IDLE_COMMAND}
    restart: always
"#
    )
}

/// A bad variant of [`good_file`]: what it breaks, its text, and the line
/// the error must point at (`None`: any line).
struct Bad {
    what: &'static str,
    text: String,
    line: Option<u64>,
}

fn bad_files() -> Result<Vec<Bad>> {
    let good = good_file();
    let at_line_six = |insert: &str| {
        good.replacen(
            "    restart: always\n    healthcheck",
            &format!("    restart: always\n{insert}\n    healthcheck"),
            1,
        )
    };
    // Cut inside the healthcheck's flow sequence: no longer YAML.
    let probe = "[\"CMD\", \"tr";
    let cut = good
        .find(probe)
        .context("the good file has a healthcheck")?
        + probe.len();
    let bomb_anchors: String = (b'a'..=b'i')
        .map(|c| {
            let c = c as char;
            if c == 'a' {
                "x-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                    .to_string()
            } else {
                let p = (c as u8 - 1) as char;
                format!("x-{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n")
            }
        })
        .collect();
    Ok(vec![
        Bad {
            what: "truncated YAML",
            text: good[..cut].to_string(),
            line: Some(6),
        },
        Bad {
            what: "undefined network",
            text: at_line_six("    networks: [nowhere]"),
            line: Some(6),
        },
        Bad {
            what: "dependency cycle",
            text: format!(
                "{}    depends_on: [web]\n",
                at_line_six("    depends_on: [db]")
            ),
            line: Some(6),
        },
        Bad {
            what: "empty file",
            text: String::new(),
            line: Some(1),
        },
        Bad {
            what: "alias bomb",
            text: format!(
                "{bomb_anchors}{}",
                at_line_six("    environment: {LOL: *i}")
            ),
            line: None,
        },
        Bad {
            what: "missing required variable",
            text: at_line_six("    environment: {X: \"${X:?must be set}\"}"),
            line: Some(6),
        },
    ])
}

/// The calls of `proxy` that change something, for messages.
fn changes(proxy: &ApiProxy) -> Vec<String> {
    proxy
        .changing_calls()
        .iter()
        .map(ApiCall::key)
        .collect::<Vec<_>>()
}

/// The condition `kind` of a status value.
fn condition(status: &serde_json::Value, kind: &str) -> (String, String, String) {
    let c = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .cloned()
        .unwrap_or_default();
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("message"))
}

#[test]
fn a_bad_file_changes_nothing_and_the_good_one_back_recreates_nothing() -> Result<()> {
    let Some(mut watch) = WatchDir::new("ws-bad")? else {
        return Ok(());
    };
    let proxy = ApiProxy::start()?;
    watch.set_docker_host(&proxy.docker_host());
    let stack = watch.write_compose("bad", &good_file())?;
    watch.start(&["--resync", "1h"])?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    watch.settled_reconciles(&stack, Duration::from_millis(1500), CONVERGE)?;
    let running = watch.snapshot(&stack)?;
    assert_eq!(running.len(), 2);
    proxy.reset();

    for bad in bad_files()? {
        let what = bad.what;
        let errors = watch.metric_sum("stackd_source_errors_total", &stack)?;
        watch.save_by_rename("bad", "compose.yaml", &bad.text)?;
        let status = watch
            .wait_condition(&stack, "Stalled", NOTICE)
            .with_context(|| what)?;
        let error = &status["lastError"];
        ensure!(
            error["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("compose.yaml")),
            "{what}: the status names the file: {status:#}"
        );
        match bad.line {
            Some(line) => assert_eq!(error["line"].as_u64(), Some(line), "{what}: {status:#}"),
            None => ensure!(error["line"].as_u64().is_some(), "{what}: {status:#}"),
        }
        wait_until(NOTICE, "stackd_source_errors_total counts it", || {
            Ok(watch.metric_sum("stackd_source_errors_total", &stack)? == errors + 1.0)
        })
        .with_context(|| format!("{what}: {}", watch.metrics().unwrap_or_default()))?;
        assert_eq!(watch.snapshot(&stack)?, running, "{what}: nothing stopped");
        assert_eq!(changes(&proxy), Vec::<String>::new(), "{what}");

        watch.save_by_rename("bad", "compose.yaml", &good_file())?;
        watch
            .wait_condition(&stack, "Ready", NOTICE)
            .with_context(|| format!("{what}, then the good file back"))?;
        assert_eq!(
            watch.snapshot(&stack)?,
            running,
            "{what}: nothing recreated when the good file is back"
        );
        assert_eq!(changes(&proxy), Vec::<String>::new(), "{what}, then good");
    }
    let status = watch.status(&stack)?.context("a status")?;
    assert_eq!(status["generation"].as_u64(), Some(1), "{status:#}");
    ensure!(
        !proxy.calls().is_empty(),
        "the controller went through the proxy"
    );
    Ok(())
}

#[test]
fn a_file_emptied_of_services_is_refused_while_containers_run() -> Result<()> {
    let Some(mut watch) = WatchDir::new("ws-empty")? else {
        return Ok(());
    };
    let proxy = ApiProxy::start()?;
    watch.set_docker_host(&proxy.docker_host());
    let stack = watch.write_compose("e", &good_file())?;
    watch.start(&["--resync", "1h"])?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    watch.settled_reconciles(&stack, Duration::from_millis(1500), CONVERGE)?;
    let running = watch.snapshot(&stack)?;
    proxy.reset();

    watch.write_compose("e", "services: {}\n")?;
    let status = watch.wait_condition(&stack, "Stalled", NOTICE)?;
    let (_, reason, message) = condition(&status, "Stalled");
    assert_eq!(reason, "PlanRefused", "{status:#}");
    ensure!(
        message.contains("no services"),
        "the status says why: {status:#}"
    );
    assert_eq!(watch.snapshot(&stack)?, running, "nothing removed");
    assert_eq!(changes(&proxy), Vec::<String>::new());

    watch.write_compose("e", &good_file())?;
    watch.wait_condition(&stack, "Ready", NOTICE)?;
    assert_eq!(watch.snapshot(&stack)?, running);
    assert_eq!(changes(&proxy), Vec::<String>::new());
    Ok(())
}

fn job_and_web(job_value: &str, web_value: &str) -> String {
    format!(
        r#"services:
  job:
    image: {IMAGE}
    command: ["sh", "-c", "echo migrated"]
    restart: "no"
    environment: {{RUN: "{job_value}"}}
  web:
    image: {IMAGE}
    command: {IDLE_COMMAND}
    restart: always
    environment: {{V: "{web_value}"}}
"#
    )
}

#[test]
fn a_finished_one_shot_job_runs_again_only_when_its_own_config_changes() -> Result<()> {
    let Some(mut watch) = WatchDir::new("ws-oneshot")? else {
        return Ok(());
    };
    let stack = watch.write_compose("j", &job_and_web("1", "1"))?;
    watch.start(&["--resync", "2s"])?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    let job = format!("{stack}-job-1");
    let web = format!("{stack}-web-1");
    let snapshot = |name: &str| -> Result<stackd_e2e::Snapshot> {
        watch
            .snapshot(&stack)?
            .remove(name)
            .with_context(|| format!("no container {name}"))
    };
    wait_until(CONVERGE, "the job exits", || {
        Ok(snapshot(&job)?.status == "exited")
    })?;
    let done = snapshot(&job)?;
    let resyncs = |n: f64| -> Result<()> {
        let from = watch.reconciles(&stack)?;
        wait_until(CONVERGE, "resyncs", || {
            Ok(watch.reconciles(&stack)? >= from + n)
        })
    };

    resyncs(3.0)?;
    assert_eq!(snapshot(&job)?, done, "resyncs do not rerun the job");

    watch.write_compose("j", &job_and_web("1", "2"))?;
    watch.wait_ready_at(&stack, 2, CONVERGE)?;
    resyncs(1.0)?;
    assert_ne!(snapshot(&web)?.id, done.id);
    assert_eq!(
        snapshot(&job)?,
        done,
        "a change to another service does not rerun the job"
    );

    watch.write_compose("j", &job_and_web("2", "2"))?;
    watch.wait_ready_at(&stack, 3, CONVERGE)?;
    wait_until(CONVERGE, "the changed job ran to the end", || {
        let now = snapshot(&job)?;
        Ok(now.id != done.id && now.status == "exited")
    })?;
    let rerun = watch
        .containers(&stack)?
        .into_iter()
        .find(|c| c.name == job)
        .context("the job")?;
    assert_eq!(rerun.exit_code, 0);
    assert!(rerun.started_at > done.started_at);
    let again = snapshot(&job)?;
    resyncs(2.0)?;
    assert_eq!(snapshot(&job)?, again, "and then it is done again");
    Ok(())
}

#[test]
fn a_named_volume_the_file_no_longer_uses_is_kept() -> Result<()> {
    let Some(mut watch) = WatchDir::new("ws-volume")? else {
        return Ok(());
    };
    let with_volume = format!(
        "services:\n  web:\n    image: {IMAGE}\n    command: {IDLE_COMMAND}\n    restart: always\n    volumes: [data:/data]\nvolumes:\n  data: {{}}\n"
    );
    let without = format!(
        "services:\n  web:\n    image: {IMAGE}\n    command: {IDLE_COMMAND}\n    restart: always\n"
    );
    let stack = watch.write_compose("v", &with_volume)?;
    watch.start(&["--resync", "2s"])?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    let volume = format!("{stack}_data");
    assert!(volume_exists(&volume)?);
    docker_ok(&[
        "exec",
        &format!("{stack}-web-1"),
        "sh",
        "-c",
        "echo kept > /data/file",
    ])?;

    watch.write_compose("v", &without)?;
    watch.wait_ready_at(&stack, 2, CONVERGE)?;
    let from = watch.reconciles(&stack)?;
    wait_until(CONVERGE, "two resyncs", || {
        Ok(watch.reconciles(&stack)? >= from + 2.0)
    })?;
    assert!(volume_exists(&volume)?, "{volume} is kept");
    let mounts = watch.containers(&stack)?[0].inspect["Mounts"].clone();
    assert_eq!(mounts, serde_json::json!([]), "web no longer mounts it");
    let read = docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/data"),
        IMAGE,
        "cat",
        "/data/file",
    ])?;
    assert_eq!(read.trim(), "kept");
    Ok(())
}

#[test]
fn sigterm_leaves_stacks_running_and_a_restarted_controller_changes_nothing() -> Result<()> {
    let Some(mut watch) = WatchDir::new("ws-restart")? else {
        return Ok(());
    };
    let proxy = ApiProxy::start()?;
    watch.set_docker_host(&proxy.docker_host());
    let stack = watch.write_compose("r", &good_file())?;
    watch.start(&["--resync", "1h"])?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    watch.write_compose("r", &good_file().replace("interval: 1s", "interval: 2s"))?;
    watch.wait_ready_at(&stack, 2, CONVERGE)?;
    watch.settled_reconciles(&stack, Duration::from_millis(1500), CONVERGE)?;
    let running = watch.snapshot(&stack)?;

    let exit = watch.stop()?;
    assert!(exit.success(), "exit {exit}: {}", watch.log());
    assert_eq!(watch.snapshot(&stack)?, running, "containers keep running");
    assert!(running.values().all(|c| c.status == "running"));
    let status = watch.status(&stack)?.context("the status file stays")?;
    assert_eq!(status["generation"].as_u64(), Some(2));

    proxy.reset();
    watch.start(&["--resync", "1h"])?;
    wait_until(CONVERGE, "the new controller reconciles the stack", || {
        Ok(watch.reconciles(&stack)? >= 1.0)
    })?;
    let status = watch.wait_ready_at(&stack, 2, CONVERGE)?;
    assert_eq!(status["generation"].as_u64(), Some(2), "{status:#}");
    watch.settled_reconciles(&stack, Duration::from_millis(1500), CONVERGE)?;
    assert_eq!(changes(&proxy), Vec::<String>::new(), "{}", watch.log());
    assert_eq!(watch.snapshot(&stack)?, running);
    ensure!(
        !proxy.calls().is_empty(),
        "the controller went through the proxy"
    );
    Ok(())
}

/// `name` on `PATH`, or `None` after saying why the check is skipped;
/// under CI (the `CI` variable set) a missing tool is an error.
fn required_tool(name: &str) -> Result<Option<PathBuf>> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            bail!("{name} is not installed (Debian package prometheus) and CI is set");
        }
        eprintln!("skipped: {name} is not installed (Debian package prometheus)");
    }
    Ok(found)
}

fn promtool_check(promtool: &PathBuf, text: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("promtool's stdin")?
        .write_all(text.as_bytes())?;
    let output = child.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n--- input ---\n{text}"
    );
    Ok(())
}

#[test]
fn the_metrics_of_a_running_controller_pass_promtool_and_readyz_answers() -> Result<()> {
    let Some(mut watch) = WatchDir::new("ws-metrics")? else {
        return Ok(());
    };
    let stack = watch.write_compose("m", &good_file())?;
    watch.start(&["--resync", "1h"])?;
    assert_eq!(watch.readyz()?.trim(), "ok");
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    // Fill the series in: a repair, a source error, a file fixed again.
    docker_ok(&["rm", "-f", &format!("{stack}-db-1")])?;
    wait_until(CONVERGE, "the repair is counted", || {
        Ok(watch.metric_sum("stackd_drift_repairs_total", &stack)? >= 1.0)
    })?;
    watch.save_by_rename("m", "compose.yaml", "services: [\n")?;
    watch.wait_condition(&stack, "Stalled", NOTICE)?;
    watch.save_by_rename("m", "compose.yaml", &good_file())?;
    watch.wait_condition(&stack, "Ready", CONVERGE)?;

    let text = watch.metrics()?;
    for name in [
        "stackd_reconcile_total",
        "stackd_reconcile_duration_seconds_bucket",
        "stackd_stack_ready",
        "stackd_service_replicas",
        "stackd_drift_repairs_total",
        "stackd_source_errors_total",
        "stackd_backend_requests_total",
        "stackd_build_info",
        "stackd_queue_depth",
    ] {
        ensure!(text.contains(name), "{name} is exported:\n{text}");
    }
    if let Some(promtool) = required_tool("promtool")? {
        promtool_check(&promtool, &text)?;
    }
    assert_eq!(watch.readyz()?.trim(), "ok");
    Ok(())
}
