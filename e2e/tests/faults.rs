//! The fault-injecting proxy in front of the real engine: each fault kind
//! does what it says to real API calls, streams and stackd pass through it
//! untouched when no fault applies, and stackd fails cleanly (an exit code
//! and a message, never a hang) when every call fails.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use stackd_e2e::{
    docker, inspect_container, run, ApiProxy, Endpoint, Fault, FaultPlan, ProxyOptions, Stack,
    UnixHttp, IDLE_COMMAND, IMAGE, PROJECT_LABEL,
};

const TIMEOUT: Duration = Duration::from_secs(30);

/// One idle service; every stack gets it, so cleanup's `stackd down` has a
/// project to read.
fn one_service(stack: &Stack) -> Result<()> {
    stack.write_compose(&format!(
        "services:\n  app:\n    image: {IMAGE}\n    command: {IDLE_COMMAND}\n"
    ))
}

/// A create body for a container the stack's cleanup would find (it carries
/// the project label) should the test fail before removing it.
fn create_body(stack: &Stack) -> Vec<u8> {
    serde_json::json!({
        "Image": IMAGE,
        "Cmd": ["true"],
        "Labels": { PROJECT_LABEL: stack.name() },
    })
    .to_string()
    .into_bytes()
}

#[test]
fn injected_500s_hit_the_seeded_calls_and_the_rest_reach_the_engine() -> Result<()> {
    let Some(stack) = Stack::new("faults-500")? else {
        return Ok(());
    };
    one_service(&stack)?;
    let plan = FaultPlan::seeded(11).rate(Fault::Status500, 0.3);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let proxy = ApiProxy::with_faults(plan.clone())?;
        let mut client = UnixHttp::connect(proxy.socket(), TIMEOUT)?;
        let mut failed = Vec::new();
        for i in 0..100 {
            let answer = client.request("GET", "/v1.41/containers/json?limit=1", None)?;
            match answer.status {
                500 => {
                    ensure!(
                        answer.json()?["message"] == "injected fault",
                        "{}",
                        answer.text()
                    );
                    failed.push(i);
                }
                200 => ensure!(
                    answer.json()?.is_array(),
                    "not the engine's list: {}",
                    answer.text()
                ),
                other => anyhow::bail!("status {other}: {}", answer.text()),
            }
        }
        let logged: Vec<u64> = proxy.faulted_calls().iter().map(|c| c.seq).collect();
        ensure!(
            logged == failed.iter().map(|i| *i as u64).collect::<Vec<_>>(),
            "the log {logged:?} and the client {failed:?} disagree"
        );
        let engine_answered = proxy
            .calls()
            .iter()
            .filter(|c| c.engine_status == Some(200))
            .count();
        ensure!(engine_answered == 100 - failed.len());
        runs.push(failed);
    }
    ensure!(
        runs[0] == runs[1],
        "the same seed failed other calls: {runs:?}"
    );
    // 100 draws at 0.3: mean 30, standard deviation about 4.6.
    ensure!(
        (12..=48).contains(&runs[0].len()),
        "{} of 100 failed",
        runs[0].len()
    );
    Ok(())
}

#[test]
fn a_delay_holds_back_only_the_calls_it_matches() -> Result<()> {
    let Some(stack) = Stack::new("faults-delay")? else {
        return Ok(());
    };
    one_service(&stack)?;
    let delay = Duration::from_millis(500);
    let proxy = ApiProxy::with_faults(
        FaultPlan::seeded(0)
            .always(Fault::Delay(delay))
            .only(Endpoint::prefix("GET", "/version")),
    )?;
    let mut client = UnixHttp::connect(proxy.socket(), TIMEOUT)?;
    let started = Instant::now();
    ensure!(client.request("GET", "/v1.41/_ping", None)?.status == 200);
    let quick = started.elapsed();
    let started = Instant::now();
    let version = client.request("GET", "/v1.41/version", None)?;
    let slow = started.elapsed();
    ensure!(version.status == 200 && version.json()?["ApiVersion"].is_string());
    ensure!(quick < Duration::from_millis(300), "ping took {quick:?}");
    ensure!(slow >= delay, "the delayed call took {slow:?}");
    Ok(())
}

#[test]
fn a_dropped_create_never_reaches_the_engine() -> Result<()> {
    let Some(stack) = Stack::new("faults-drop")? else {
        return Ok(());
    };
    one_service(&stack)?;
    let proxy = ApiProxy::with_faults(
        FaultPlan::seeded(0)
            .always(Fault::Drop)
            .only(Endpoint::prefix("POST", "/containers/create")),
    )?;
    let name = format!("{}-dropped-1", stack.name());
    let mut client = UnixHttp::connect(proxy.socket(), TIMEOUT)?;
    let answer = client.request(
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        Some(&create_body(&stack)),
    );
    ensure!(answer.is_err(), "the client got an answer: {answer:?}");
    ensure!(inspect_container(&name)?.is_none(), "{name} was created");
    let calls = proxy.calls_to("POST", "/containers/create");
    ensure!(
        calls.len() == 1 && calls[0].engine_status.is_none(),
        "{calls:#?}"
    );
    Ok(())
}

#[test]
fn a_drop_after_forward_creates_the_container_though_the_client_saw_an_error() -> Result<()> {
    let Some(stack) = Stack::new("faults-drop-after")? else {
        return Ok(());
    };
    one_service(&stack)?;
    let proxy = ApiProxy::with_faults(
        FaultPlan::seeded(0)
            .always(Fault::DropAfterForward)
            .only(Endpoint::prefix("POST", "/containers/create")),
    )?;
    let name = format!("{}-orphan-1", stack.name());
    let mut client = UnixHttp::connect(proxy.socket(), TIMEOUT)?;
    let answer = client.request(
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        Some(&create_body(&stack)),
    );
    ensure!(answer.is_err(), "the client got an answer: {answer:?}");
    let created = inspect_container(&name)?.context("the engine did not create the container")?;
    ensure!(created.labels.get(PROJECT_LABEL).map(String::as_str) == Some(stack.name()));
    let call = &proxy.calls_to("POST", "/containers/create")[0];
    ensure!(
        call.status.is_none() && call.engine_status == Some(201),
        "{call:#?}"
    );
    ensure!(call.query_param("name").as_deref() == Some(name.as_str()));
    docker(&["rm", "-f", &name])?.ok()?;
    Ok(())
}

#[test]
fn the_events_stream_passes_through_as_events_happen() -> Result<()> {
    let Some(stack) = Stack::new("faults-events")? else {
        return Ok(());
    };
    one_service(&stack)?;
    let proxy = ApiProxy::start()?;
    let mut client = UnixHttp::connect(proxy.socket(), TIMEOUT)?;
    let filters = format!(r#"{{"label":["{PROJECT_LABEL}={}"]}}"#, stack.name());
    let target = format!(
        "/v1.41/events?filters={}",
        filters
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            })
            .collect::<String>()
    );
    ensure!(client.open_stream("GET", &target)? == 200);
    for n in 1..=2 {
        let name = format!("{}-event-{n}", stack.name());
        let label = format!("{PROJECT_LABEL}={}", stack.name());
        // Straight to the engine: only the stream goes through the proxy.
        docker(&["create", "--name", &name, "--label", &label, IMAGE, "true"])?.ok()?;
        let created = Instant::now();
        // Events come in order: the previous container's destroy, then this create.
        loop {
            let chunk = client
                .next_chunk(TIMEOUT)?
                .context("the events stream ended")?;
            let event: serde_json::Value = serde_json::from_slice(&chunk)?;
            if event["Action"] == "create" {
                ensure!(
                    event["Actor"]["Attributes"]["name"] == name.as_str(),
                    "{event}"
                );
                break;
            }
        }
        let latency = created.elapsed();
        ensure!(
            latency < Duration::from_secs(2),
            "event {n} took {latency:?}"
        );
        docker(&["rm", "-f", &name])?.ok()?;
    }
    ensure!(proxy.calls_to("GET", "/events").len() == 1);
    Ok(())
}

#[test]
fn stackd_up_and_down_pass_through_the_proxy_untouched() -> Result<()> {
    let Some(stack) = Stack::new("faults-clean")? else {
        return Ok(());
    };
    one_service(&stack)?;
    let proxy = ApiProxy::start()?;
    stack.stackd_via(&proxy, &["up", "--wait"])?.ok()?;
    let containers = stack.containers()?;
    ensure!(
        containers.len() == 1 && containers[0].is_running(),
        "{containers:#?}"
    );
    let counts = proxy.counts();
    ensure!(
        counts.get("POST /containers/create") == Some(&1),
        "{counts:#?}"
    );
    ensure!(
        proxy
            .calls()
            .iter()
            .all(|c| c.status.is_some_and(|s| s < 500)),
        "{:#?}",
        proxy.calls()
    );
    stack.stackd_via(&proxy, &["down"])?.ok()?;
    ensure!(stack.containers()?.is_empty(), "down left containers");
    Ok(())
}

/// stackd with every call (or every create) failing one way: exits
/// non-zero, soon, saying what failed; nothing is left half made.
fn stackd_fails_cleanly(tag: &str, plan: FaultPlan, says: &[&str]) -> Result<()> {
    let Some(stack) = Stack::new(tag)? else {
        return Ok(());
    };
    one_service(&stack)?;
    let proxy = ApiProxy::with_faults(plan)?;
    for args in [&["up", "--wait"][..], &["down"][..]] {
        let out = stack.stackd_via(&proxy, args)?;
        ensure!(!out.timed_out && out.code == Some(1), "{out}");
        ensure!(
            out.elapsed < Duration::from_secs(30),
            "took {:?}: {out}",
            out.elapsed
        );
        let stderr = out.stderr.to_lowercase();
        ensure!(
            says.iter().any(|s| stderr.contains(s)),
            "stderr names none of {says:?}: {out}"
        );
    }
    ensure!(proxy.faulted_calls().len() >= 2, "{:#?}", proxy.calls());
    ensure!(stack.containers()?.is_empty(), "{:#?}", stack.containers()?);
    Ok(())
}

#[test]
fn stackd_exits_with_a_message_when_every_call_gets_a_500() -> Result<()> {
    stackd_fails_cleanly(
        "faults-all-500",
        FaultPlan::seeded(0).always(Fault::Status500),
        &["injected fault"],
    )
}

#[test]
fn stackd_exits_with_a_message_when_every_connection_drops() -> Result<()> {
    stackd_fails_cleanly(
        "faults-all-drop",
        FaultPlan::seeded(0).always(Fault::Drop),
        &["connection closed", "engine"],
    )
}

#[test]
fn stackd_exits_with_a_message_when_every_answer_is_lost() -> Result<()> {
    stackd_fails_cleanly(
        "faults-all-lost",
        FaultPlan::seeded(0).always(Fault::DropAfterForward),
        &["connection closed", "engine"],
    )
}

#[test]
fn stackd_up_names_the_create_that_failed_and_starts_nothing() -> Result<()> {
    let Some(stack) = Stack::new("faults-create-500")? else {
        return Ok(());
    };
    one_service(&stack)?;
    let proxy = ApiProxy::with_faults(
        FaultPlan::seeded(0)
            .always(Fault::Status500)
            .only(Endpoint::prefix("POST", "/containers/create")),
    )?;
    let out = stack.stackd_via(&proxy, &["up", "--wait"])?;
    ensure!(!out.timed_out && out.code == Some(1), "{out}");
    ensure!(out.stderr.contains("injected fault"), "{out}");
    ensure!(stack.containers()?.is_empty(), "{:#?}", stack.containers()?);
    let creates = proxy.calls_to("POST", "/containers/create");
    ensure!(!creates.is_empty() && creates.iter().all(|c| c.status == Some(500)));
    // Once the faults stop, the same command converges.
    proxy.clear_faults();
    stack.stackd_via(&proxy, &["up", "--wait"])?.ok()?;
    ensure!(stack.containers()?.len() == 1);
    Ok(())
}

#[test]
fn the_fault_proxy_binary_fails_every_second_list_and_logs_each_call() -> Result<()> {
    let Some(stack) = Stack::new("faults-binary")? else {
        return Ok(());
    };
    one_service(&stack)?;
    let socket = stack.dir().join("proxy.sock");
    let log = stack.dir().join("calls.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackd-fault-proxy"))
        .args(["--listen", &socket.display().to_string()])
        .args(["--error-rate", "1/2", "--only", "GET /containers/json"])
        .args(["--log", &log.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| -> Result<()> {
        let started = Instant::now();
        while !socket.exists() {
            ensure!(started.elapsed() < TIMEOUT, "the proxy never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut exits = Vec::new();
        for _ in 0..4 {
            let mut ps = Command::new("docker");
            ps.env("DOCKER_HOST", format!("unix://{}", socket.display()))
                .args(["ps", "-q", "--filter", &format!("name={}", stack.name())]);
            let out = run(ps, TIMEOUT)?;
            if !out.success() {
                ensure!(out.stderr.contains("injected fault"), "{out}");
            }
            exits.push(out.success());
        }
        ensure!(exits == [true, false, true, false], "{exits:?}");
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)?
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        let lists: Vec<_> = lines
            .iter()
            .filter(|l| l["path"] == "/containers/json")
            .map(|l| (l["status"].as_u64(), l["fault"].as_str()))
            .collect();
        ensure!(
            lists
                == [
                    (Some(200), None),
                    (Some(500), Some("500")),
                    (Some(200), None),
                    (Some(500), Some("500"))
                ],
            "{lists:?}"
        );
        Ok(())
    })();
    child.kill()?;
    child.wait()?;
    result
}

#[test]
fn a_proxy_on_a_chosen_socket_serves_the_docker_cli() -> Result<()> {
    let Some(stack) = Stack::new("faults-listen")? else {
        return Ok(());
    };
    one_service(&stack)?;
    let socket = stack.dir().join("chosen.sock");
    let proxy = ApiProxy::start_with(ProxyOptions {
        listen: Some(socket.clone()),
        ..ProxyOptions::default()
    })?;
    let mut version = Command::new("docker");
    version.env("DOCKER_HOST", proxy.docker_host()).args([
        "version",
        "--format",
        "{{.Server.APIVersion}}",
    ]);
    let out = run(version, TIMEOUT)?.ok()?;
    ensure!(!out.stdout.trim().is_empty(), "{out}");
    ensure!(
        proxy.calls().iter().any(|c| c.path == "/version"),
        "{:#?}",
        proxy.calls()
    );
    drop(proxy);
    ensure!(!socket.exists(), "the socket outlived the proxy");
    Ok(())
}
