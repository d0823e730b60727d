//! `healthcheck` → probes.
//!
//! The check becomes both a readiness probe (a pod that fails it leaves its
//! Service's endpoints, as an unhealthy container is not one compose waits
//! for) and a liveness probe (the kubelet restarts it), with the same
//! command and timing: `interval` → `periodSeconds`, `timeout` →
//! `timeoutSeconds`, `retries` → `failureThreshold`, durations rounded up
//! to whole seconds, Docker's defaults (30s, 30s, 3) when unset. `CMD`
//! runs its arguments as they are; `CMD-SHELL` runs `sh -c` with its
//! string. A `start_period` becomes a startup probe, checking every
//! `start_interval` (default 5s) for the start period plus the retries,
//! which holds the other two back until the first success, as Docker does
//! not count failures during the start period. `disable: true` or `NONE`
//! means no probes.
use k8s_openapi::api::core::v1::{ExecAction, Probe};

use super::plan::Ctx;
use super::{units, Scope};
use crate::model::{Duration, ServiceConfig};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u64 = 3;
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);

/// The probes of one container.
#[derive(Debug, Default)]
pub struct Probes {
    /// Readiness.
    pub readiness: Option<Probe>,
    /// Liveness.
    pub liveness: Option<Probe>,
    /// Startup.
    pub startup: Option<Probe>,
}

/// Whether the service has a check that becomes probes.
pub fn has_check(service: &ServiceConfig) -> bool {
    service
        .healthcheck
        .as_ref()
        .is_some_and(|h| !h.disable && command(&h.test).is_some())
}

/// The probe command of a compose test, `None` for `NONE` or no test.
fn command(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            Some(vec!["sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

/// The probes `service`'s healthcheck asks for.
pub fn probes(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig) -> Probes {
    let Some(check) = &service.healthcheck else {
        return Probes::default();
    };
    let mut timing = vec![
        "timeout",
        "interval",
        "retries",
        "start_period",
        "start_interval",
    ];
    if check.disable {
        ctx.ledger.used(scope, "healthcheck.disable");
        timing.push("test");
        for key in timing {
            ctx.ledger.used(scope, &format!("healthcheck.{key}"));
        }
        return Probes::default();
    }
    let Some(argv) = command(&check.test) else {
        if check.test.first().is_some_and(|t| t == "NONE") {
            ctx.ledger.used(scope, "healthcheck.test");
            for key in timing {
                ctx.ledger.used(scope, &format!("healthcheck.{key}"));
            }
        } else {
            for key in timing {
                ctx.ledger.warn(
                    scope,
                    &format!("healthcheck.{key}"),
                    "the image's own health check cannot be read; no probes",
                );
            }
            if !check.test.is_empty() {
                ctx.ledger.warn(
                    scope,
                    "healthcheck.test",
                    format!(
                        "{:?} is not CMD, CMD-SHELL or NONE; no probes",
                        check.test.first()
                    ),
                );
            }
        }
        return Probes::default();
    };
    ctx.ledger.used(scope, "healthcheck.test");
    for (key, set) in [
        ("interval", check.interval.is_some()),
        ("timeout", check.timeout.is_some()),
        ("retries", check.retries.is_some()),
    ] {
        if set {
            ctx.ledger.used(scope, &format!("healthcheck.{key}"));
        }
    }
    let interval = check.interval.unwrap_or(DEFAULT_INTERVAL);
    let timeout = check.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let retries = check.retries.unwrap_or(DEFAULT_RETRIES).max(1);
    let retries = i32::try_from(retries).unwrap_or(i32::MAX);
    let probe = Probe {
        exec: Some(ExecAction {
            command: Some(argv.clone()),
        }),
        period_seconds: Some(units::seconds(interval, 1)),
        timeout_seconds: Some(units::seconds(timeout, 1)),
        failure_threshold: Some(retries),
        ..Probe::default()
    };
    let startup = check.start_period.filter(|p| !p.is_zero()).map(|period| {
        ctx.ledger.used(scope, "healthcheck.start_period");
        if check.start_interval.is_some() {
            ctx.ledger.used(scope, "healthcheck.start_interval");
        }
        let every = units::seconds(check.start_interval.unwrap_or(DEFAULT_START_INTERVAL), 1);
        let during = units::seconds(period, 1);
        let checks = (during + every - 1) / every;
        Probe {
            exec: Some(ExecAction {
                command: Some(argv.clone()),
            }),
            period_seconds: Some(every),
            timeout_seconds: Some(units::seconds(timeout, 1)),
            failure_threshold: Some(checks.saturating_add(retries)),
            ..Probe::default()
        }
    });
    if startup.is_none() {
        if check.start_period.is_some() {
            ctx.ledger.used(scope, "healthcheck.start_period");
        }
        if check.start_interval.is_some() {
            ctx.ledger.warn(
                scope,
                "healthcheck.start_interval",
                "without a start period there is no startup probe to set it on; ignored",
            );
        }
    }
    Probes {
        readiness: Some(probe.clone()),
        liveness: Some(probe),
        startup,
    }
}
