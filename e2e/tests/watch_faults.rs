//! `stackd watch` behind the fault proxy for two minutes of 500s, delays,
//! dropped connections (some dropped after the engine acted) and a severed
//! events stream, while stacks converge and change. stackd must retry with
//! exponential backoff (timed from the proxy's call log), never create a
//! duplicate container, and converge within one backoff cap once the faults
//! stop.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use stackd_e2e::{
    docker_ok, seed, slot_problems, ApiCall, ApiProxy, Endpoint, Expected, Fault, FaultPlan,
    FaultRule, Trigger, WatchDir, IDLE_COMMAND, IMAGE,
};

const RETRY_BASE: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(5);
const FAULTS_FOR: Duration = Duration::from_secs(120);
/// Time for the work of converging once the last retry comes (observe,
/// plan, recreate a few containers).
const SLACK: Duration = Duration::from_secs(5);
/// The injected delay: short enough to tell calls of one attempt from the
/// next attempt (at least 0.8 × RETRY_BASE later).
const DELAY: Duration = Duration::from_millis(150);
/// Calls of one stack further apart than this belong to different attempts.
const ATTEMPT_GAP: Duration = Duration::from_millis(650);

/// One service's desired state: its replicas and its `V` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Want {
    replicas: u32,
    v: u32,
}

type Services = Vec<(&'static str, Want)>;

fn compose(services: &Services) -> String {
    let mut yaml = String::from("services:\n");
    for (name, want) in services {
        yaml.push_str(&format!(
            "  {name}:\n    image: {IMAGE}\n    command: {IDLE_COMMAND}\n    restart: always\n    stop_grace_period: 2s\n    environment: {{V: \"{}\"}}\n    deploy: {{replicas: {}}}\n",
            want.v, want.replicas
        ));
    }
    yaml
}

/// Every start of `stuck`'s container fails (its backoff is timed); every
/// other call may meet a 500, a delay, a drop or a drop after the engine
/// acted; changing calls meet drops after forwarding on a fixed count too,
/// so each kind of interrupted change happens whatever the seed. The event
/// stream and version negotiation are spared (the stream is severed by hand).
fn fault_plan(seed: u64, stuck: &str) -> FaultPlan {
    let after_forward = |method: &str, pattern: &str, n: u64| {
        FaultRule::new(Fault::DropAfterForward, Trigger::EveryNth(n))
            .on(Endpoint::pattern(method, pattern))
    };
    FaultPlan::seeded(seed)
        .rule(
            FaultRule::new(Fault::Status500, Trigger::EveryNth(1)).on(Endpoint::prefix(
                "POST",
                &format!("/containers/{stuck}-app-1/start"),
            )),
        )
        .rule(
            FaultRule::new(Fault::DropAfterForward, Trigger::EveryNth(5))
                .on(Endpoint::prefix("POST", "/containers/create")),
        )
        .rule(after_forward("POST", "/containers/{id}/rename", 3))
        .rule(after_forward("POST", "/containers/{id}/stop", 4))
        .rule(after_forward("DELETE", "/containers/{id}", 4))
        .rate(Fault::Status500, 0.05)
        .rate(Fault::Delay(DELAY), 0.05)
        .rate(Fault::Drop, 0.03)
        .rate(Fault::DropAfterForward, 0.02)
        .except(Endpoint::prefix("GET", "/events"))
        .except(Endpoint::prefix("*", "/_ping"))
        .except(Endpoint::prefix("GET", "/version"))
}

/// What `stackd_e2e::WatchDir::unconverged` checks `services` against.
fn expected(services: &Services) -> BTreeMap<String, Expected> {
    services
        .iter()
        .map(|(name, want)| {
            (
                (*name).to_owned(),
                Expected::with_env(want.replicas, "V", &want.v.to_string()),
            )
        })
        .collect()
}

/// True when the call concerns project `stack`: a list filtered on its
/// label, a create naming one of its containers, an action on one.
fn mentions(call: &ApiCall, stack: &str) -> bool {
    call.path.contains(stack)
        || ["filters", "name"]
            .iter()
            .any(|p| call.query_param(p).is_some_and(|v| v.contains(stack)))
}

/// The times between the starts of successive attempts of a stack, its
/// calls grouped into attempts by pauses longer than [`ATTEMPT_GAP`].
fn attempt_gaps(calls: &[&ApiCall]) -> Vec<Duration> {
    let mut starts: Vec<Instant> = Vec::new();
    let mut last: Option<Instant> = None;
    for call in calls {
        if last.is_none_or(|l| call.at.saturating_duration_since(l) > ATTEMPT_GAP) {
            starts.push(call.at);
        }
        last = Some(call.at);
    }
    starts
        .windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .collect()
}

#[test]
fn under_two_minutes_of_faults_stackd_backs_off_duplicates_nothing_and_converges_after(
) -> Result<()> {
    let Some(mut watch) = WatchDir::new("watch-faults")? else {
        return Ok(());
    };
    let seed = seed(0x5EED_0005);
    eprintln!("fault seed {seed} (set STACKD_E2E_SEED to replay)");
    let one = |v| Want { replicas: 1, v };
    let mut desired: BTreeMap<&str, Services> = BTreeMap::new();
    desired.insert(
        "steady",
        vec![("web", Want { replicas: 2, v: 1 }), ("worker", one(1))],
    );
    desired.insert("scaled", vec![("app", one(1))]);
    desired.insert("stuck", vec![("app", one(1))]);
    for (short, services) in &desired {
        watch.write_compose(short, &compose(services))?;
    }
    let names: BTreeMap<&str, String> = desired.keys().map(|s| (*s, watch.stack(s))).collect();
    let stuck = names["stuck"].clone();

    let proxy = ApiProxy::with_faults(fault_plan(seed, &stuck))?;
    watch.set_docker_host(&proxy.docker_host());
    watch.start(&["--retry-base", "1s", "--retry-cap", "5s", "--resync", "30s"])?;
    let started = Instant::now();

    // Changes while the faults go on, at these offsets.
    let edit_web = Duration::from_secs(20);
    let scale = Duration::from_secs(40);
    let sever = Duration::from_secs(60);
    let edit_again = Duration::from_secs(80);
    let mut step = 0;
    let mut severed_at = None;
    let worker = format!("{}-worker-1", names["steady"]);
    let mut worker_back_after_sever = false;
    let mut duplicates = Vec::new();
    let mut samples = 0;
    while started.elapsed() < FAULTS_FOR {
        let now = started.elapsed();
        if step == 0 && now >= edit_web {
            desired.insert(
                "steady",
                vec![("web", Want { replicas: 2, v: 2 }), ("worker", one(1))],
            );
            watch.write_compose("steady", &compose(&desired["steady"]))?;
            step += 1;
        } else if step == 1 && now >= scale {
            desired.insert("scaled", vec![("app", Want { replicas: 3, v: 1 })]);
            watch.write_compose("scaled", &compose(&desired["scaled"]))?;
            step += 1;
        } else if step == 2 && now >= sever {
            // The events stream (and every call in flight) is cut, and a
            // container goes while the controller reconnects.
            proxy.sever_connections();
            severed_at = Some(Instant::now());
            docker_ok(&["rm", "-f", &worker])?;
            step += 1;
        } else if step == 3 && now >= edit_again {
            desired.insert(
                "steady",
                vec![("web", Want { replicas: 3, v: 3 }), ("worker", one(1))],
            );
            watch.write_compose("steady", &compose(&desired["steady"]))?;
            step += 1;
        }
        for name in names.values() {
            let containers = watch.containers(name)?;
            for problem in slot_problems(name, &containers, false) {
                duplicates.push(format!("at {:?}: {problem}", started.elapsed()));
            }
            if severed_at.is_some() && *name == names["steady"] {
                worker_back_after_sever |= containers
                    .iter()
                    .any(|c| c.name == worker && c.is_running());
            }
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    proxy.clear_faults();
    let cleared = Instant::now();

    // Converged within one backoff cap of the faults stopping.
    let mut pending: BTreeMap<&str, String> = BTreeMap::new();
    let mut converged_after = Duration::ZERO;
    let give_up = RETRY_CAP * 6;
    loop {
        pending.clear();
        for (short, want) in &desired {
            if let Some(why) = watch.unconverged(&names[short], &expected(want))? {
                pending.insert(short, why);
            }
        }
        if pending.is_empty() {
            converged_after = cleared.elapsed();
            break;
        }
        if cleared.elapsed() > give_up {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let calls = proxy.calls();
    let faulted: BTreeMap<&str, usize> = calls
        .iter()
        .filter_map(|c| c.fault.map(|f| f.name()))
        .fold(BTreeMap::new(), |mut m, k| {
            *m.entry(k).or_default() += 1;
            m
        });
    eprintln!(
        "{} calls, faults {faulted:?}, {samples} samples, converged {converged_after:?} after the faults stopped",
        calls.len()
    );
    ensure!(
        pending.is_empty(),
        "not converged {give_up:?} after the faults stopped: {pending:#?}\nlog:\n{}",
        watch.log()
    );
    ensure!(
        converged_after <= RETRY_CAP + SLACK,
        "converged only {converged_after:?} after the faults stopped (cap {RETRY_CAP:?} + {SLACK:?})"
    );
    ensure!(
        duplicates.is_empty(),
        "duplicates seen: {duplicates:#?}\nlog:\n{}",
        watch.log()
    );

    // Every kind of fault happened, and changes the engine made though
    // stackd saw them fail.
    for kind in ["500", "delay", "drop", "drop-after-forward"] {
        ensure!(
            faulted.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} fault: {faulted:?}"
        );
    }
    let acted = calls
        .iter()
        .filter(|c| c.fault == Some(Fault::DropAfterForward) && c.changes_something())
        .filter(|c| c.engine_status.is_some_and(|s| s < 300))
        .count();
    ensure!(acted > 0, "no change was dropped after the engine made it");

    // The severed events stream was opened again, and the worker removed
    // meanwhile came back while the faults went on.
    let severed_at = severed_at.context("the stream was never severed")?;
    let reopened = calls
        .iter()
        .filter(|c| c.method == "GET" && c.path == "/events" && c.at > severed_at)
        .count();
    ensure!(reopened > 0, "the events stream was not opened again");
    ensure!(
        worker_back_after_sever,
        "{worker} was not restored while the faults went on\nlog:\n{}",
        watch.log()
    );

    // The stuck stack's attempts came ever further apart, up to the cap.
    let attempts: Vec<&ApiCall> = calls
        .iter()
        .filter(|c| c.at < cleared && mentions(c, &stuck))
        .collect();
    let gaps = attempt_gaps(&attempts);
    let shown: Vec<String> = gaps
        .iter()
        .map(|g| format!("{:.2}", g.as_secs_f64()))
        .collect();
    eprintln!("{stuck}: {} attempts, gaps (s) {shown:?}", gaps.len() + 1);
    ensure!(
        gaps.len() >= 15,
        "only {} attempts in {FAULTS_FOR:?}: {shown:?}",
        gaps.len() + 1
    );
    // An attempt can fail on a call shared by every stack (the image list,
    // a resync round's list of all projects) before it makes one naming the
    // stack: the proxy then sees two backoffs as one gap. A few of those,
    // each no longer than two capped delays, are allowed.
    let mut unseen = 0;
    for (i, gap) in gaps.iter().enumerate() {
        let nominal = RETRY_BASE
            .checked_mul(1 << i.min(16))
            .unwrap_or(RETRY_CAP)
            .min(RETRY_CAP);
        let one = *gap <= RETRY_CAP.mul_f64(1.3);
        unseen += usize::from(!one);
        ensure!(
            *gap >= nominal.mul_f64(0.7) && (one || *gap <= RETRY_CAP.mul_f64(2.6)),
            "gap {i} is {gap:?}, nominal {nominal:?} (cap {RETRY_CAP:?}): {shown:?}"
        );
    }
    ensure!(unseen <= 2, "{unseen} gaps longer than the cap: {shown:?}");
    ensure!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        "the first gaps do not grow: {shown:?}"
    );
    Ok(())
}
