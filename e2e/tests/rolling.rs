//! Rolling updates on the real engine: a three-replica web server published
//! on a host port range is updated start-first while every port of the
//! range is probed without pause; there is never a moment with no replica
//! answering. An update whose healthcheck never passes is rolled back, by
//! `stackd watch` (status RolledBack) and by `stackd up` (exit non-zero).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use stackd_e2e::{wait_until, Container, Stack, WatchDir, IMAGE};

const PORTS: u16 = 8;

/// The web service at version `v`; `healthy: false` gives it a healthcheck
/// that never passes. Replicas take the first free ports of `low..low+8`.
fn web(v: u32, healthy: bool, low: u16) -> String {
    let check = if healthy {
        r#"["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/health"]"#
    } else {
        r#"["CMD", "false"]"#
    };
    let high = low + PORTS - 1;
    format!(
        r#"services:
  web:
    image: {IMAGE}
    pull_policy: never
    command: ["sh", "-c", "trap 'exit 0' TERM; echo v$$V > /var/www/version; httpd -f -p 80 -h /var/www & wait"]
    environment: {{V: "{v}"}}
    restart: always
    stop_grace_period: 2s
    ports: ["127.0.0.1:{low}-{high}:80"]
    healthcheck: {{test: {check}, interval: 1s, timeout: 1s, retries: 1}}
    deploy:
      replicas: 3
      update_config: {{order: start-first, parallelism: 1, delay: 1s}}
"#
    )
}

/// The first port of a run of `PORTS` free loopback ports, looked for from
/// a place that depends on the process id so parallel runs differ; `slot`
/// keeps the tests of this binary (one process) apart. The run stays below
/// the kernel's ephemeral range: the prober's own connections take local
/// ports from that range, and a replica started on one of them fails to
/// bind.
fn free_port_range(slot: u16) -> Result<u16> {
    const LOWEST: u16 = 10_000;
    let ephemeral = ephemeral_port_floor();
    let stride = 4 * PORTS;
    let places = (ephemeral.saturating_sub(LOWEST) / stride).max(1);
    let place = (std::process::id() % u32::from(places)) as u16;
    let start = LOWEST + place * stride + slot * PORTS;
    let candidates = (start..ephemeral - PORTS).chain(LOWEST..start);
    for low in candidates.step_by(usize::from(2 * PORTS)) {
        let free = (low..low + PORTS).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return Ok(low);
        }
    }
    bail!("no {PORTS} free ports in a row below {ephemeral}")
}

/// The lowest port the kernel hands out to outgoing connections.
fn ephemeral_port_floor() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .filter(|floor| *floor > 10_000 + 4 * PORTS)
        .unwrap_or(32_768)
}

/// `GET /version` on one port: the version that answered, if one did.
fn version_at(port: u16) -> Option<String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(300)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream
        .write_all(b"GET /version HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.lines()
        .next()?
        .contains(" 200 ")
        .then(|| body.trim().to_string())
}

/// One probe of one port: when it counts from (a failure from when the
/// question was asked, an answer from when it came) and what answered.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    port: u16,
    answer: Option<String>,
}

/// Probes every port of the range, each from its own thread so a port that
/// hangs does not blind the others, until stopped.
struct Prober {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Prober {
    fn start(low: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let threads = (low..low + PORTS)
            .map(|port| {
                let (stop, samples) = (Arc::clone(&stop), Arc::clone(&samples));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let asked = Instant::now();
                        let answer = version_at(port);
                        let at = if answer.is_some() {
                            Instant::now()
                        } else {
                            asked
                        };
                        let sample = Sample { at, port, answer };
                        samples
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(sample);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        Prober {
            stop,
            samples,
            threads,
        }
    }

    /// Stops probing; every sample, in time order.
    fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        samples.sort_by_key(|s| s.at);
        samples
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What the probes saw.
#[derive(Debug)]
struct Summary {
    samples: usize,
    /// The fewest ports answering at any moment (a port counts as what its
    /// last probe said), once every port was probed.
    fewest: usize,
    /// The longest time between two probes of one port.
    gap: Duration,
    /// Every version that answered.
    versions: std::collections::BTreeSet<String>,
    /// What each port answered last.
    last: Vec<Option<String>>,
}

fn summary(samples: &[Sample]) -> Summary {
    let mut state: std::collections::BTreeMap<u16, (Instant, Option<String>)> =
        std::collections::BTreeMap::new();
    let mut fewest = usize::MAX;
    let mut gap = Duration::ZERO;
    for sample in samples {
        if let Some((before, _)) = state.get(&sample.port) {
            gap = gap.max(sample.at.saturating_duration_since(*before));
        }
        state.insert(sample.port, (sample.at, sample.answer.clone()));
        if state.len() == usize::from(PORTS) {
            fewest = fewest.min(state.values().filter(|(_, a)| a.is_some()).count());
        }
    }
    Summary {
        samples: samples.len(),
        fewest: if fewest == usize::MAX { 0 } else { fewest },
        gap,
        versions: samples.iter().filter_map(|s| s.answer.clone()).collect(),
        last: state.into_values().map(|(_, a)| a).collect(),
    }
}

fn versions(containers: &[Container]) -> Vec<Option<String>> {
    containers.iter().map(|c| c.env("V")).collect()
}

fn all_at(containers: &[Container], v: u32) -> bool {
    containers.len() == 3
        && containers
            .iter()
            .all(|c| c.is_running() && c.env("V") == Some(v.to_string()))
}

#[test]
fn a_start_first_update_never_leaves_the_service_without_a_replica_and_a_failing_one_rolls_back(
) -> Result<()> {
    let Some(mut watch) = WatchDir::new("rolling")? else {
        return Ok(());
    };
    let low = free_port_range(0)?;
    let stack = watch.write_compose("web", &web(1, true, low))?;
    watch.start(&[])?;
    watch.wait_condition(&stack, "Ready", Duration::from_secs(90))?;
    wait_until(Duration::from_secs(30), "three replicas answer", || {
        Ok((low..low + PORTS).filter_map(version_at).count() == 3)
    })?;

    // The update: every port probed all along.
    let prober = Prober::start(low);
    watch.write_compose("web", &web(2, true, low))?;
    wait_until(Duration::from_secs(120), "every replica runs v2", || {
        Ok(all_at(&watch.containers(&stack)?, 2))
    })?;
    watch.wait_condition(&stack, "Ready", Duration::from_secs(60))?;
    let seen = summary(&prober.finish());
    eprintln!("update: {seen:?}");
    ensure!(seen.samples > 500, "too few probes: {}", seen.samples);
    ensure!(
        seen.gap < Duration::from_millis(1500),
        "a port went unprobed for {:?}",
        seen.gap
    );
    ensure!(
        seen.fewest >= 1,
        "a moment with no replica answering:\n{}",
        watch.log()
    );
    ensure!(
        seen.versions.contains("v1") && seen.versions.contains("v2"),
        "both versions answered"
    );
    let answering: Vec<&String> = seen.last.iter().flatten().collect();
    ensure!(
        answering.len() == 3 && answering.iter().all(|a| *a == "v2"),
        "{:?}",
        seen.last
    );

    // A version whose healthcheck never passes: rolled back, v2 stays.
    let kept: Vec<String> = watch
        .containers(&stack)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let prober = Prober::start(low);
    watch.write_compose("web", &web(3, false, low))?;
    let status = watch.wait_condition(&stack, "Stalled", Duration::from_secs(120))?;
    let seen = summary(&prober.finish());
    let stalled = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Stalled"))
        .cloned()
        .unwrap_or_default();
    ensure!(stalled["reason"] == "RolledBack", "{status:#}");
    let message = stalled["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains("service web: new config never became healthy")
            && message.contains("unhealthy"),
        "{message}"
    );
    let containers = watch.containers(&stack)?;
    ensure!(
        all_at(&containers, 2),
        "v2 still runs after the rollback: {:?}",
        versions(&containers)
    );
    let ids: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
    ensure!(ids == kept, "the v2 containers were kept as they were");
    eprintln!("failed update: {seen:?}");
    ensure!(seen.fewest >= 1, "a moment with no replica answering");

    // Not retried while the spec stays the same.
    std::thread::sleep(Duration::from_secs(5));
    let now: Vec<String> = watch
        .containers(&stack)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    ensure!(now == kept, "nothing was created again: {now:?}");
    Ok(())
}

#[test]
fn stackd_up_rolls_back_an_update_that_never_becomes_healthy_and_fails_naming_the_service(
) -> Result<()> {
    let Some(stack) = Stack::new("rolling-up")? else {
        return Ok(());
    };
    let low = free_port_range(1)?;
    stack.write_compose(&web(1, true, low))?;
    stack.up()?;
    let before: Vec<String> = stack.service("web")?.into_iter().map(|c| c.id).collect();
    ensure!(before.len() == 3);

    stack.write_compose(&web(2, false, low))?;
    let run = stack.stackd(&["up"])?;
    ensure!(!run.success(), "up must fail: {run}");
    let output = run.output();
    ensure!(
        output.contains("service web: new config never became healthy"),
        "{output}"
    );
    let after = stack.service("web")?;
    ensure!(
        all_at(&after, 1),
        "v1 runs on: {:?} {output}",
        versions(&after)
    );
    let ids: Vec<String> = after.into_iter().map(|c| c.id).collect();
    ensure!(ids == before, "{ids:?} != {before:?}");
    Ok(())
}
