//! stackd's Prometheus metrics: one registry holding a struct per component
//! (reconcile, queue, stacks, sources, backend), the process collector and
//! build info, plus a `Backend` decorator (`InstrumentedBackend`) and the
//! `/metrics` `/healthz` `/readyz` server (`server`).
//!
//! Every label is bounded: stack and service names come from the manifests
//! stackd manages, and the other labels take values from small fixed sets.
//! Container ids, error text and secret values never become label values;
//! a free-form word that is not a short snake_case word is recorded as
//! `other` (see [`bounded`]).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `stackd_reconcile_total` | counter | `stack`, `result` (`success`, `error`, `skipped`) |
//! | `stackd_reconcile_errors_total` | counter | `stack`, `reason` |
//! | `stackd_reconcile_duration_seconds` | histogram | `stack` |
//! | `stackd_queue_depth` | gauge | |
//! | `stackd_drift_repairs_total` | counter | `stack`, `kind` (`removed`, `stopped`, `config_changed`, `unhealthy`) |
//! | `stackd_stack_ready` | gauge (0/1) | `stack` |
//! | `stackd_service_replicas` | gauge | `stack`, `service`, `state` (`desired`, `running`, `healthy`) |
//! | `stackd_source_errors_total` | counter | `stack`, `kind` (`parse`, `validate`, `interpolate`, `missing_file`, `conflict`, `other`) |
//! | `stackd_backend_requests_total` | counter | `backend`, `operation`, `outcome` (`success`, `error`) |
//! | `stackd_build_info` | gauge (always 1) | `version` |
//! | `process_*` | (process collector, Linux) | |
mod backend;
pub mod server;

use std::sync::Arc;

use prometheus::{
    core::{Collector, MetricVec, MetricVecBuilder},
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tokio::time::Instant;

pub use backend::InstrumentedBackend;

/// Why the metrics server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound (address in use, not local,
    /// not an address).
    #[error("cannot listen for metrics on {addr}: {source}")]
    BindFailed {
        /// The address as given (`--metrics-addr`).
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped accepting connections.
    #[error("the metrics server failed: {source}")]
    ServeFailed {
        /// The I/O error it stopped on.
        #[source]
        source: std::io::Error,
    },
}

/// Upper bounds of `stackd_reconcile_duration_seconds`, in seconds.
///
/// A reconcile with nothing to do costs one list call (about a millisecond);
/// repairing drift or recreating a service takes tens to hundreds of
/// milliseconds; waiting for healthchecks, pulls and rolling updates takes
/// seconds to minutes. Steps of about 2.5x from 1 ms to 10 min keep the
/// error of `histogram_quantile` under that factor across the whole range
/// (and resolve the 50 ms, 200 ms and 1 s targets exactly) at 18 series per
/// stack.
pub const RECONCILE_DURATION_BUCKETS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    300.0, 600.0,
];

/// Longest free-form label word kept as given.
const MAX_WORD: usize = 48;

/// `word` when it is a short snake_case word (`[a-z][a-z0-9_]*`, at most 48
/// bytes), else `other`: a caller passing error text by mistake cannot make
/// the number of series grow without bound.
pub fn bounded(word: &str) -> &str {
    let mut bytes = word.bytes();
    let snake = word.len() <= MAX_WORD
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if snake {
        word
    } else {
        "other"
    }
}

/// How one reconcile ended, for `stackd_reconcile_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileResult {
    /// The stack converged (or had nothing to do).
    Success,
    /// The reconcile failed; it will be retried with backoff.
    Error,
    /// Nothing was attempted (suspended stack, stalled crash loop, source
    /// in error with the last good state left running).
    Skipped,
}

impl ReconcileResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }
}

/// Runs, failures and durations of reconciles, per stack.
struct ReconcileMetrics {
    runs: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
}

impl ReconcileMetrics {
    fn register(registry: &Registry, scope: &[&'static str]) -> prometheus::Result<Self> {
        let runs = IntCounterVec::new(
            Opts::new(
                "stackd_reconcile_total",
                "Reconciles finished, by stack and result (success, error, skipped).",
            ),
            &scoped(scope, &["stack", "result"]),
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "stackd_reconcile_errors_total",
                "Failed reconciles, by stack and reason.",
            ),
            &scoped(scope, &["stack", "reason"]),
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "stackd_reconcile_duration_seconds",
                "Time a reconcile took, from dequeue to result, by stack.",
            )
            .buckets(RECONCILE_DURATION_BUCKETS.to_vec()),
            &scoped(scope, &["stack"]),
        )?;
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            runs,
            errors,
            duration,
        })
    }
}

/// The work queue.
struct QueueMetrics {
    depth: IntGauge,
}

impl QueueMetrics {
    fn register(registry: &Registry) -> prometheus::Result<Self> {
        let depth = IntGauge::new(
            "stackd_queue_depth",
            "Stacks waiting to be reconciled: triggers and retries queued (watch); retries in error backoff and progress checks of Stacks not yet Ready, not a Ready Stack's resync (controller).",
        )?;
        registry.register(Box::new(depth.clone()))?;
        Ok(Self { depth })
    }
}

/// What the stacks look like: readiness, replicas and repaired drift.
struct StackMetrics {
    ready: IntGaugeVec,
    replicas: IntGaugeVec,
    drift_repairs: IntCounterVec,
}

impl StackMetrics {
    fn register(registry: &Registry, scope: &[&'static str]) -> prometheus::Result<Self> {
        let ready = IntGaugeVec::new(
            Opts::new(
                "stackd_stack_ready",
                "1 when the stack's Ready condition is True, else 0.",
            ),
            &scoped(scope, &["stack"]),
        )?;
        let replicas = IntGaugeVec::new(
            Opts::new(
                "stackd_service_replicas",
                "Replicas of a service, by state (desired, running, healthy).",
            ),
            &scoped(scope, &["stack", "service", "state"]),
        )?;
        let drift_repairs = IntCounterVec::new(
            Opts::new(
                "stackd_drift_repairs_total",
                "Out-of-band changes repaired, by stack and kind (removed, stopped, config_changed, unhealthy).",
            ),
            &scoped(scope, &["stack", "kind"]),
        )?;
        registry.register(Box::new(ready.clone()))?;
        registry.register(Box::new(replicas.clone()))?;
        registry.register(Box::new(drift_repairs.clone()))?;
        Ok(Self {
            ready,
            replicas,
            drift_repairs,
        })
    }
}

/// Where desired state comes from.
struct SourceMetrics {
    errors: IntCounterVec,
}

impl SourceMetrics {
    fn register(registry: &Registry, scope: &[&'static str]) -> prometheus::Result<Self> {
        let errors = IntCounterVec::new(
            Opts::new(
                "stackd_source_errors_total",
                "Stack sources that failed to load, by stack and kind (parse, validate, interpolate, missing_file, conflict, other).",
            ),
            &scoped(scope, &["stack", "kind"]),
        )?;
        registry.register(Box::new(errors.clone()))?;
        Ok(Self { errors })
    }
}

/// Calls into a backend (the Docker engine, a cluster).
struct BackendMetrics {
    requests: IntCounterVec,
}

impl BackendMetrics {
    fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "stackd_backend_requests_total",
                "Backend operations, by backend, operation and outcome (success, error).",
            ),
            &["backend", "operation", "outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        Ok(Self { requests })
    }
}

/// `scope` (the `namespace` label in a cluster, nothing in file mode)
/// followed by `names`.
fn scoped(scope: &[&'static str], names: &[&'static str]) -> Vec<&'static str> {
    scope.iter().chain(names).copied().collect()
}

struct Inner {
    registry: Registry,
    namespaced: bool,
    reconcile: ReconcileMetrics,
    queue: QueueMetrics,
    stacks: StackMetrics,
    sources: SourceMetrics,
    backend: BackendMetrics,
}

/// All of stackd's metrics on one registry. Cheap to clone (an `Arc`
/// inside); every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered, `stackd_build_info`
    /// set and (on Linux) the process collector.
    pub fn new() -> Self {
        Self::with_scope(false)
    }

    /// Like [`Metrics::new`], for the cluster controller: every series
    /// labelled `stack` is labelled `namespace` too, and the `stack`
    /// arguments of the methods are `namespace/name`.
    pub fn namespaced() -> Self {
        Self::with_scope(true)
    }

    fn with_scope(namespaced: bool) -> Self {
        match Self::build(namespaced) {
            Ok(metrics) => metrics,
            // Registration only fails on a duplicate or malformed name, and
            // the names are constants registered once on a fresh registry:
            // a failure here is a bug in this file, caught by every test.
            Err(error) => panic!("stackd's metric definitions are inconsistent: {error}"),
        }
    }

    fn build(namespaced: bool) -> prometheus::Result<Self> {
        let scope: &[&'static str] = if namespaced { &["namespace"] } else { &[] };
        let registry = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new(
                "stackd_build_info",
                "Always 1; the version of stackd running is in the labels.",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(build_info))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let inner = Inner {
            namespaced,
            reconcile: ReconcileMetrics::register(&registry, scope)?,
            queue: QueueMetrics::register(&registry)?,
            stacks: StackMetrics::register(&registry, scope)?,
            sources: SourceMetrics::register(&registry, scope)?,
            backend: BackendMetrics::register(&registry)?,
            registry,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The registry, for gathering or registering more collectors.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Everything in the registry, in the text exposition format (0.0.4).
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        match TextEncoder::new().encode(&self.inner.registry.gather(), &mut buf) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(error) => {
                // The encoder refuses only empty or nameless families, which
                // `gather` never returns; a scrape showing nothing beats a
                // panic in the server.
                tracing::error!(%error, "encoding metrics failed");
                String::new()
            }
        }
    }

    /// Starts timing a reconcile of `stack`. The returned guard counts the
    /// run in `stackd_reconcile_total` and observes
    /// `stackd_reconcile_duration_seconds` when given its result, or when
    /// dropped without one (counted as `error`, see [`ReconcileMeasurer`]).
    pub fn count_and_measure(&self, stack: &str) -> ReconcileMeasurer {
        ReconcileMeasurer {
            metrics: self.clone(),
            stack: stack.to_owned(),
            start: Instant::now(),
            result: None,
        }
    }

    /// Counts a failed reconcile of `stack` in
    /// `stackd_reconcile_errors_total`. `reason` is a short snake_case word
    /// (`load_failed`, `plan_refused`, `engine_error`, `timed_out`); anything
    /// else is counted as `other`.
    pub fn reconcile_failed(&self, stack: &str, reason: &str) {
        self.inner
            .reconcile
            .errors
            .with_label_values(&self.stack_values(stack, &[bounded(reason)]))
            .inc();
    }

    /// Sets `stackd_queue_depth`.
    pub fn set_queue_depth(&self, depth: usize) {
        self.inner
            .queue
            .depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Counts a repaired out-of-band change in `stackd_drift_repairs_total`;
    /// `kind` is `removed`, `stopped`, `config_changed` or `unhealthy`.
    pub fn drift_repaired(&self, stack: &str, kind: &str) {
        self.inner
            .stacks
            .drift_repairs
            .with_label_values(&self.stack_values(stack, &[bounded(kind)]))
            .inc();
    }

    /// Sets `stackd_stack_ready{stack}` to 1 or 0.
    pub fn set_stack_ready(&self, stack: &str, ready: bool) {
        self.inner
            .stacks
            .ready
            .with_label_values(&self.stack_values(stack, &[]))
            .set(i64::from(ready));
    }

    /// Sets `stackd_service_replicas`; `state` is `desired`, `running` or
    /// `healthy`.
    pub fn set_service_replicas(&self, stack: &str, service: &str, state: &str, count: u64) {
        self.inner
            .stacks
            .replicas
            .with_label_values(&self.stack_values(stack, &[service, bounded(state)]))
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Counts a source of `stack` that failed to load in
    /// `stackd_source_errors_total`; `kind` is `parse`, `validate`,
    /// `interpolate`, `missing_file`, `conflict` or `other`.
    pub fn source_error(&self, stack: &str, kind: &str) {
        self.inner
            .sources
            .errors
            .with_label_values(&self.stack_values(stack, &[bounded(kind)]))
            .inc();
    }

    /// Counts one backend call in `stackd_backend_requests_total`;
    /// `outcome` is `success` or `error`.
    pub fn backend_request(&self, backend: &str, operation: &str, outcome: &str) {
        self.inner
            .backend
            .requests
            .with_label_values(&[bounded(backend), bounded(operation), bounded(outcome)])
            .inc();
    }

    /// Removes every series labelled with `stack`, so a deleted stack leaves
    /// no stale gauge (a ready stack that no longer exists) behind.
    pub fn forget_stack(&self, stack: &str) {
        let reconcile = &self.inner.reconcile;
        let stacks = &self.inner.stacks;
        let matching = self.stack_matching(stack, None);
        let names = |rest: &[&'static str]| self.names(rest);
        remove_matching(&reconcile.runs, &names(&["stack", "result"]), &matching);
        remove_matching(&reconcile.errors, &names(&["stack", "reason"]), &matching);
        remove_matching(&reconcile.duration, &names(&["stack"]), &matching);
        remove_matching(&stacks.ready, &names(&["stack"]), &matching);
        remove_matching(
            &stacks.replicas,
            &names(&["stack", "service", "state"]),
            &matching,
        );
        remove_matching(&stacks.drift_repairs, &names(&["stack", "kind"]), &matching);
        remove_matching(
            &self.inner.sources.errors,
            &names(&["stack", "kind"]),
            &matching,
        );
    }

    /// Removes the replica gauges of a service that left `stack`'s spec.
    pub fn forget_service(&self, stack: &str, service: &str) {
        remove_matching(
            &self.inner.stacks.replicas,
            &self.names(&["stack", "service", "state"]),
            &self.stack_matching(stack, Some(service)),
        );
    }

    /// The label names of a per-stack family: `namespace` first in a cluster.
    fn names(&self, rest: &[&'static str]) -> Vec<&'static str> {
        if self.inner.namespaced {
            scoped(&["namespace"], rest)
        } else {
            rest.to_vec()
        }
    }

    /// The values of the scope and `stack` labels, then `rest`. In a
    /// cluster `stack` is `namespace/name`.
    fn stack_values<'a>(&self, stack: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
        let mut values = if self.inner.namespaced {
            let (namespace, name) = stack.split_once('/').unwrap_or(("", stack));
            vec![namespace, name]
        } else {
            vec![stack]
        };
        values.extend_from_slice(rest);
        values
    }

    /// The `(label, value)` pairs that pick the series of `stack` (and of
    /// one service of it).
    fn stack_matching<'a>(
        &self,
        stack: &'a str,
        service: Option<&'a str>,
    ) -> Vec<(&'static str, &'a str)> {
        let mut matching = if self.inner.namespaced {
            let (namespace, name) = stack.split_once('/').unwrap_or(("", stack));
            vec![("namespace", namespace), ("stack", name)]
        } else {
            vec![("stack", stack)]
        };
        if let Some(service) = service {
            matching.push(("service", service));
        }
        matching
    }

    fn finish(&self, stack: &str, result: ReconcileResult, start: Instant) {
        let reconcile = &self.inner.reconcile;
        reconcile
            .duration
            .with_label_values(&self.stack_values(stack, &[]))
            .observe(start.elapsed().as_secs_f64());
        reconcile
            .runs
            .with_label_values(&self.stack_values(stack, &[result.as_str()]))
            .inc();
    }
}

/// Removes the series of `vec` whose labels include every `(name, value)`
/// of `matching`. `names` are the vec's label names in declaration order
/// (what `remove_label_values` expects); the collected label pairs come
/// sorted by name, so values are looked up by name.
fn remove_matching<T: MetricVecBuilder>(
    vec: &MetricVec<T>,
    names: &[&str],
    matching: &[(&str, &str)],
) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let pairs = metric.get_label();
            let value_of = |name: &str| {
                pairs
                    .iter()
                    .find(|pair| pair.name() == name)
                    .map(|pair| pair.value())
            };
            if !matching
                .iter()
                .all(|(name, value)| value_of(name) == Some(*value))
            {
                continue;
            }
            let values: Option<Vec<&str>> = names.iter().map(|name| value_of(name)).collect();
            if let Some(values) = values {
                // Gone already when another caller removed it first: fine.
                let _ = vec.remove_label_values(&values);
            }
        }
    }
}

/// Times one reconcile of a stack (from [`Metrics::count_and_measure`]).
///
/// [`result`](Self::result) records how it ended. A measurer dropped
/// without a result records `error`: the reconcile returned early through
/// `?`, panicked or was cancelled, and none of those converged the stack.
/// Either way the run is counted exactly once, so
/// `sum(stackd_reconcile_total)` equals the number of reconciles begun and
/// matches the histogram's `_count`.
#[must_use = "a measurer records when dropped; bind it for the whole reconcile"]
pub struct ReconcileMeasurer {
    metrics: Metrics,
    stack: String,
    start: Instant,
    result: Option<ReconcileResult>,
}

impl std::fmt::Debug for ReconcileMeasurer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconcileMeasurer")
            .field("stack", &self.stack)
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl ReconcileMeasurer {
    /// Records how the reconcile ended and how long it took.
    pub fn result(mut self, result: ReconcileResult) {
        self.result = Some(result);
        // Drop records it.
    }
}

impl Drop for ReconcileMeasurer {
    fn drop(&mut self) {
        let result = self.result.unwrap_or(ReconcileResult::Error);
        self.metrics.finish(&self.stack, result, self.start);
    }
}

#[cfg(test)]
mod tests;
