//! `stackd-fault-proxy`: the e2e fault-injecting Docker API proxy from the
//! command line, for trying stackd (or any Docker client) against an engine
//! that fails, by hand or in benchmarks.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use stackd_e2e::{ApiProxy, Endpoint, Fault, FaultPlan, FaultRule, ProxyOptions, Trigger};

/// A Docker API proxy on a unix socket that injects faults.
///
/// Each fault takes a probability (`0.2`: each call with chance 0.2, drawn
/// from --seed) or `1/N` (every Nth call, deterministic). When a call draws
/// more than one fault, the first in the order 500, drop, drop-after-forward,
/// delay applies. Point a client at it with the printed DOCKER_HOST.
#[derive(Debug, Parser)]
#[command(name = "stackd-fault-proxy", version)]
struct Args {
    /// Socket to listen on.
    #[arg(long, value_name = "PATH")]
    listen: PathBuf,
    /// The engine's socket (default: DOCKER_HOST when unix://, else /var/run/docker.sock).
    #[arg(long, value_name = "PATH")]
    upstream: Option<PathBuf>,
    /// Answer `500 {"message":"injected fault"}` without forwarding.
    #[arg(long, value_name = "RATE")]
    error_rate: Option<String>,
    /// Close the connection without answering, before forwarding.
    #[arg(long, value_name = "RATE")]
    drop_rate: Option<String>,
    /// Forward, wait for the engine's answer, then close without relaying it.
    #[arg(long, value_name = "RATE")]
    drop_after_forward_rate: Option<String>,
    /// Delay calls this long before forwarding them.
    #[arg(long, value_name = "MS")]
    delay_ms: Option<u64>,
    /// Which calls --delay-ms delays.
    #[arg(long, value_name = "RATE", default_value = "1")]
    delay_rate: String,
    /// Only calls to this endpoint: `"POST /containers/create"` (a path
    /// prefix), `"POST /containers/{id}/start"` (a pattern) or `/networks`.
    #[arg(long, value_name = "ENDPOINT")]
    only: Option<String>,
    /// Leave calls to this endpoint alone (repeatable), e.g. `"GET /events"`.
    #[arg(long, value_name = "ENDPOINT")]
    except: Vec<String>,
    /// Inject faults only this many seconds from the start.
    #[arg(long, value_name = "SECONDS")]
    for_secs: Option<f64>,
    /// Seed of the random draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Append each call to FILE as a JSON line (time, method, path, status, fault).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
}

fn trigger(flag: &str, text: &str) -> Result<Trigger> {
    if let Some(n) = text.strip_prefix("1/") {
        let n: u64 = n
            .parse()
            .with_context(|| format!("--{flag} {text}: not 1/N"))?;
        if n == 0 {
            bail!("--{flag} {text}: N must be at least 1");
        }
        return Ok(Trigger::EveryNth(n));
    }
    let p: f64 = text
        .parse()
        .with_context(|| format!("--{flag} {text}: not a probability or 1/N"))?;
    if !(0.0..=1.0).contains(&p) {
        bail!("--{flag} {text}: a probability is between 0 and 1");
    }
    Ok(Trigger::Rate(p))
}

fn plan(args: &Args) -> Result<Option<FaultPlan>> {
    let mut plan = FaultPlan::seeded(args.seed);
    let rules = [
        ("error-rate", &args.error_rate, Fault::Status500),
        ("drop-rate", &args.drop_rate, Fault::Drop),
        (
            "drop-after-forward-rate",
            &args.drop_after_forward_rate,
            Fault::DropAfterForward,
        ),
    ];
    for (flag, rate, fault) in rules {
        if let Some(rate) = rate {
            plan = plan.rule(FaultRule::new(fault, trigger(flag, rate)?));
        }
    }
    if let Some(ms) = args.delay_ms {
        let delay = Fault::Delay(Duration::from_millis(ms));
        plan = plan.rule(FaultRule::new(
            delay,
            trigger("delay-rate", &args.delay_rate)?,
        ));
    }
    if let Some(only) = &args.only {
        let endpoint = Endpoint::parse(only).with_context(|| {
            format!("--only {only:?}: not \"METHOD /path\", \"/path\" or \"METHOD\"")
        })?;
        plan = plan.only(endpoint);
    }
    for except in &args.except {
        let endpoint = Endpoint::parse(except).with_context(|| {
            format!("--except {except:?}: not \"METHOD /path\", \"/path\" or \"METHOD\"")
        })?;
        plan = plan.except(endpoint);
    }
    if let Some(secs) = args.for_secs {
        let window = Duration::try_from_secs_f64(secs)
            .with_context(|| format!("--for-secs {secs}: not a duration"))?;
        plan = plan.during(Duration::ZERO..window);
    }
    Ok((!plan.is_empty()).then_some(plan))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let faults = plan(&args)?;
    let proxy = ApiProxy::start_with(ProxyOptions {
        listen: Some(args.listen.clone()),
        upstream: args.upstream.clone(),
        faults: faults.clone(),
        log: args.log.clone(),
    })?;
    println!("DOCKER_HOST={}", proxy.docker_host());
    match &faults {
        Some(plan) => eprintln!(
            "forwarding to {} with faults {:?}",
            proxy.upstream().display(),
            plan
        ),
        None => eprintln!(
            "forwarding to {} without faults",
            proxy.upstream().display()
        ),
    }
    // Serves until killed; the next start replaces the stale socket.
    loop {
        std::thread::park();
    }
}
