//! The leader-election loop: reads the Lease, acts on [`lease::decide`],
//! and publishes whether this replica leads. Writes carry the
//! resourceVersion read, so a lost race is a 409 and never two leaders.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::kube::lease::{self, LeaseAction};
use crate::metrics::Metrics;

/// Where the Lease is and how it is held.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (`holderIdentity`).
    pub identity: String,
    /// `leaseDurationSeconds`: how long a silent holder keeps the Lease.
    pub duration: Duration,
}

impl LeaseConfig {
    /// How often the Lease is read and renewed.
    pub fn retry_period(&self) -> Duration {
        (self.duration / 5).max(Duration::from_millis(200))
    }

    /// A leader that could not renew for this long stops acting, before
    /// any follower may take over (after the full duration).
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

/// What the loop remembers of the record it last read.
struct Seen {
    record: Option<(Option<String>, Option<String>)>,
    since: Instant,
}

/// Runs until `stop` turns true, publishing on `leading` whether this
/// replica holds the Lease; `decided` turns true after the first answer
/// from the server. On stop, a held Lease is released.
pub async fn run(
    api: Api<Lease>,
    config: LeaseConfig,
    metrics: Metrics,
    leading: watch::Sender<bool>,
    decided: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen = Seen {
        record: None,
        since: Instant::now(),
    };
    let mut last_renewed: Option<Instant> = None;
    loop {
        let outcome = round(&api, &config, &mut seen).await;
        super::cluster::count(&metrics, "lease", outcome.is_ok());
        let now_leading = match outcome {
            Ok(true) => {
                last_renewed = Some(Instant::now());
                true
            }
            Ok(false) => {
                last_renewed = None;
                false
            }
            Err(error) => {
                tracing::warn!(%error, lease = %config.name, "lease round failed");
                last_renewed.is_some_and(|t| t.elapsed() < config.renew_deadline())
            }
        };
        let _ = decided.send(true);
        leading.send_if_modified(|value| {
            let changed = *value != now_leading;
            if changed {
                tracing::info!(identity = %config.identity, leading = now_leading, "leadership changed");
            }
            *value = now_leading;
            changed
        });
        tokio::select! {
            _ = tokio::time::sleep(config.retry_period()) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if *leading.borrow() {
        release(&api, &config).await;
        let _ = leading.send(false);
    }
}

/// One read and, when the decision says so, one write. `Ok(true)` when
/// this replica holds the Lease afterwards.
async fn round(
    api: &Api<Lease>,
    config: &LeaseConfig,
    seen: &mut Seen,
) -> Result<bool, kube::Error> {
    let current = api.get_opt(&config.name).await?;
    let spec = current.as_ref().and_then(|l| l.spec.clone());
    let record = spec.as_ref().map(|s| {
        (
            s.holder_identity.clone(),
            s.renew_time.as_ref().map(|t| t.0.to_string()),
        )
    });
    if seen.record != record {
        seen.record = record;
        seen.since = Instant::now();
    }
    let action = lease::decide(spec.as_ref(), &config.identity, seen.since.elapsed());
    if let LeaseAction::Follow { .. } = action {
        return Ok(false);
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    let held = lease::held_spec(
        spec.as_ref(),
        &action,
        &config.identity,
        config.duration,
        now,
    );
    let written = match current {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(held),
            };
            api.create(&PostParams::default(), &lease).await
        }
        Some(mut lease) => {
            // `replace` sends the resourceVersion read above: a write that
            // lost a race is refused with 409 Conflict.
            lease.spec = Some(held);
            api.replace(&config.name, &PostParams::default(), &lease)
                .await
        }
    };
    match written {
        Ok(lease) => {
            seen.record = lease.spec.as_ref().map(|s| {
                (
                    s.holder_identity.clone(),
                    s.renew_time.as_ref().map(|t| t.0.to_string()),
                )
            });
            seen.since = Instant::now();
            Ok(true)
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

async fn release(api: &Api<Lease>, config: &LeaseConfig) {
    let Ok(Some(mut lease)) = api.get_opt(&config.name).await else {
        return;
    };
    let Some(spec) = &lease.spec else { return };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    lease.spec = Some(lease::released_spec(spec));
    if let Err(error) = api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        tracing::warn!(%error, "releasing the lease failed; a follower takes over when it expires");
    }
}
