//! `stackd controller`: a kube-runtime `Controller` over `Stack` resources
//! (all namespaces or one). The I/O shell around the pure core: it reads
//! Stacks and their objects, applies [`desired`](crate::kube::desired)
//! objects with server-side apply (field manager `stackd`, forced), prunes
//! what left the desired set, writes the status subresource, publishes
//! `events.k8s.io/v1` Events, and cleans up behind the finalizer
//! [`FINALIZER`]. Only the replica holding the Lease acts ([`leader`]).
//! Failed reconciles are retried per Stack with exponential backoff and
//! jitter ([`crate::reconcile::backoff`]), reset on success; triggers that
//! come during a backoff (the echo of the failed attempt's own status
//! write among them) wait it out unless the Stack's spec changed or its
//! deletion began. `stackd_queue_depth` counts the Stacks with a retry or
//! a progress check scheduled that has not started.
//!
//! What a Stack's deletion removes: every object it owns; its
//! PersistentVolumeClaims only with the annotation
//! [`DELETE_VOLUMES`](crate::kube::desired::DELETE_VOLUMES) (safety rule 7).
//! Events, logs and status name objects and services, never values: a
//! Secret's data is sent to the server in the apply body and nowhere else
//! (safety rule 5).
//!
//! # The permissions it needs (least privilege, for a ClusterRole, or a
//! Role in the `--namespace` it watches)
//!
//! | API group | resources | verbs |
//! |---|---|---|
//! | `stackd.dev` | `stacks` | list, watch, patch |
//! | `stackd.dev` | `stacks/status` | patch |
//! | `stackd.dev` | `stacks/finalizers` | update (owner references with `blockOwnerDeletion`, where admission checks them) |
//! | `""` | `configmaps`, `secrets`, `services`, `serviceaccounts` | list, watch, create, patch, delete |
//! | `""` | `persistentvolumeclaims` | list, create, patch, delete |
//! | `apps` | `deployments`, `statefulsets`, `daemonsets` | list, watch, create, patch, delete |
//! | `batch` | `jobs` | get, list, watch, create, patch, delete (get: the wait Role grants it) |
//! | `networking.k8s.io` | `networkpolicies` | list, watch, create, patch, delete |
//! | `rbac.authorization.k8s.io` | `roles`, `rolebindings` | list, watch, create, patch, delete |
//! | `""` | `pods` | get, list, watch (the wait Role grants them, and RBAC lets one grant only what one holds) |
//! | `events.k8s.io` | `events` | create, patch |
//! | `coordination.k8s.io` | `leases` | get, create, update (in the Lease's namespace) |
//!
//! Objects are written with server-side apply: `patch`, and `create` when
//! the object does not exist yet. With `--namespace`, every call stays in
//! that namespace (and the Lease's), so a Role there suffices.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::watcher;
use kube::runtime::Controller;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;

use crate::kube::desired::{self, Desired, ObjectKey, StackRef};
use crate::kube::gate::{self, WorkloadState};
use crate::kube::policy::Policy;
use crate::kube::status::{self, Verdict};
use crate::metrics::{Metrics, ReconcileResult};
use crate::model::stack::{Stack, StackStatus};
use crate::reconcile::backoff::{Backoff, Jitter};

pub mod cluster;
pub mod leader;

pub use leader::LeaseConfig;

/// The finalizer that holds a Stack until its objects are deleted.
pub const FINALIZER: &str = "stackd.dev/cleanup";

/// Longest event note kept (the API's limit is 1 kB).
const MAX_NOTE: usize = 1000;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Watch only this namespace (`None`: all).
    pub namespace: Option<String>,
    /// What node-level powers pods may have.
    pub policy: Policy,
    /// Image of the wait init containers.
    pub wait_image: Option<String>,
    /// Leader election.
    pub lease: LeaseConfig,
    /// First retry delay.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_cap: Duration,
    /// A Ready Stack is reconciled again after this long (drift repair
    /// for changes no watch event reports).
    pub resync: Duration,
    /// A Stack that is still coming up is looked at again after this long.
    pub progress_poll: Duration,
}

impl Config {
    /// Defaults: all namespaces, nothing allowed, 500 ms to 60 s retries,
    /// 5 min resync.
    pub fn new(lease: LeaseConfig) -> Self {
        Config {
            namespace: None,
            policy: Policy::default(),
            wait_image: None,
            lease,
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(60),
            resync: Duration::from_secs(300),
            progress_poll: Duration::from_secs(15),
        }
    }
}

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// Another replica took the Lease: this one stops so that it never acts
    /// beside the new leader (its supervisor restarts it as a follower).
    #[error("lost the leader lease {0}")]
    LostLeadership(String),
    /// The metrics server could not start.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::Error),
}

/// Why one reconcile failed (it is retried after a backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A call to the API server failed.
    #[error("{action} {object}: {source}")]
    Api {
        /// `apply`, `list`, `delete`, `status`.
        action: &'static str,
        /// The object (`Deployment/shop-web`).
        object: String,
        /// What the client said.
        #[source]
        source: kube::Error,
    },
    /// An object could not be turned into JSON.
    #[error("cannot serialize an object")]
    Serialize(#[source] serde_json::Error),
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The Stack was not read from a server (no name, namespace or uid).
    #[error("the Stack has no {0}")]
    Incomplete(&'static str),
}

impl ReconcileError {
    /// A short snake_case word for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Api { source, .. } => match source {
                kube::Error::Api(status) if status.code == 409 => "conflict",
                kube::Error::Api(status) if status.code >= 500 => "server_error",
                kube::Error::Api(status) if status.code == 403 => "forbidden",
                kube::Error::Api(_) => "api_error",
                _ => "connection_error",
            },
            ReconcileError::Serialize(_) => "serialize",
            ReconcileError::Finalizer(_) => "finalizer",
            ReconcileError::Incomplete(_) => "incomplete",
        }
    }
}

/// What makes a trigger fresh during a backoff: the spec's generation and
/// whether the Stack's deletion began.
type Seen = (Option<i64>, bool);

fn seen(stack: &Stack) -> Seen {
    (
        stack.metadata.generation,
        stack.metadata.deletion_timestamp.is_some(),
    )
}

/// A failed Stack's next retry.
#[derive(Debug, Clone, Copy)]
struct Retry {
    /// When the backoff ends.
    at: Instant,
    /// The Stack as the failed attempt saw it.
    seen: Seen,
}

/// Per-Stack retry state and the reconciles waiting to start.
///
/// kube-runtime's scheduler runs a trigger as soon as it arrives (the
/// earliest request wins), so the echo of a failed attempt's own status
/// write, or an owned object changing, would undercut the backoff. A
/// reconcile that starts before its Stack's retry is due, on a Stack whose
/// spec and deletion state are as the failed attempt saw them, therefore
/// only waits out the rest of the backoff (as watch mode's queue does); a
/// new spec or a deletion goes ahead at once.
#[derive(Debug, Default)]
struct Schedule {
    backoffs: HashMap<String, Backoff>,
    retries: HashMap<String, Retry>,
    /// Stacks with a reconcile scheduled that has not started: a retry in
    /// error backoff or a progress check of a Stack not yet Ready (not the
    /// resync of a Ready one). Its size is `stackd_queue_depth`.
    waiting: HashSet<String>,
}

/// What every reconcile shares.
pub struct Context {
    client: Client,
    recorder: Recorder,
    metrics: Metrics,
    config: Config,
    leading: watch::Receiver<bool>,
    schedule: Mutex<Schedule>,
    jitter: Mutex<Jitter>,
}

impl Schedule {
    /// A reconcile of `key` starts at `now` on the Stack as `seen`: it no
    /// longer waits. Returns how much of a backoff is left when this
    /// trigger must wait it out (and then it waits again).
    fn starting(&mut self, key: &str, seen: Seen, now: Instant) -> Option<Duration> {
        self.waiting.remove(key);
        let left = match self.retries.get(key) {
            Some(retry) if retry.at > now && retry.seen == seen => Some(retry.at - now),
            Some(_) => {
                self.retries.remove(key);
                None
            }
            None => None,
        };
        if left.is_some() {
            self.waiting.insert(key.to_string());
        }
        left
    }

    /// An attempt on `key`, which saw the Stack as `seen`, failed at
    /// `now`: the next delay, counting one more failure (`unit` places the
    /// jitter).
    fn failed(
        &mut self,
        key: &str,
        seen: Seen,
        now: Instant,
        unit: f64,
        (base, cap): (Duration, Duration),
    ) -> Duration {
        let delay = self
            .backoffs
            .entry(key.to_string())
            .or_insert_with(|| Backoff::new(base, cap))
            .next_delay(unit);
        self.retries.insert(
            key.to_string(),
            Retry {
                at: now + delay,
                seen,
            },
        );
        self.waiting.insert(key.to_string());
        delay
    }

    /// `key` converged: its next failure is retried after the base delay.
    fn succeeded(&mut self, key: &str) {
        self.backoffs.remove(key);
        self.retries.remove(key);
    }

    /// `key` is gone: nothing of it waits.
    fn forget(&mut self, key: &str) {
        self.backoffs.remove(key);
        self.retries.remove(key);
        self.waiting.remove(key);
    }
}

impl Context {
    /// Runs `change` on the schedule and publishes the queue depth after it.
    fn schedule<T>(&self, change: impl FnOnce(&mut Schedule) -> T) -> T {
        // Nothing panics while holding the lock; the maps stay consistent
        // between statements even if something did.
        let mut schedule = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        let result = change(&mut schedule);
        self.metrics.set_queue_depth(schedule.waiting.len());
        result
    }

    fn starting(&self, key: &str, stack: &Stack) -> Option<Duration> {
        self.schedule(|s| s.starting(key, seen(stack), Instant::now()))
    }

    fn retry_delay(&self, key: &str, stack: &Stack) -> Duration {
        let unit = self.jitter.lock().map(|mut j| j.unit()).unwrap_or(0.5);
        let limits = (self.config.retry_base, self.config.retry_cap);
        self.schedule(|s| s.failed(key, seen(stack), Instant::now(), unit, limits))
    }

    fn succeeded(&self, key: &str) {
        self.schedule(|s| s.succeeded(key));
    }

    /// `key` is to be looked at again soon (it is not Ready yet).
    fn progress_check(&self, key: &str) {
        self.schedule(|s| s.waiting.insert(key.to_string()));
    }

    fn forget(&self, key: &str) {
        self.schedule(|s| s.forget(key));
    }

    async fn event(
        &self,
        stack: &Stack,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let mut note = note;
        if note.len() > MAX_NOTE {
            let mut end = MAX_NOTE;
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            note.truncate(end);
        }
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let published = self.recorder.publish(&event, &stack.object_ref(&())).await;
        cluster::count(&self.metrics, "event", published.is_ok());
        if let Err(error) = published {
            tracing::warn!(%error, reason, "publishing an event failed");
        }
    }
}

/// Runs the controller until `stop` turns true (or leadership is lost).
/// `ready` turns true once this replica knows whether it leads.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Metrics,
    ready: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
) -> Result<(), ControllerError> {
    let (leading_tx, mut leading_rx) = watch::channel(false);
    let lease_api: Api<Lease> = Api::namespaced(client.clone(), &config.lease.namespace);
    let lease_task = tokio::spawn(leader::run(
        lease_api,
        config.lease.clone(),
        metrics.clone(),
        leading_tx,
        ready,
        stop.clone(),
    ));
    let mut stop_wait = stop.clone();
    tokio::select! {
        _ = leading_rx.wait_for(|l| *l) => {}
        _ = stop_wait.wait_for(|s| *s) => {
            let _ = lease_task.await;
            return Ok(());
        }
    }
    tracing::info!(identity = %config.lease.identity, "leading: reconciling Stacks");
    let reporter = Reporter {
        controller: "stackd".into(),
        instance: Some(config.lease.identity.clone()),
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        metrics,
        leading: leading_rx.clone(),
        schedule: Mutex::new(Schedule::default()),
        jitter: Mutex::new(Jitter::from_clock()),
        config: config.clone(),
    });
    let stacks: Api<Stack> = scoped_api(&client, config.namespace.as_deref());
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=stackd");
    let ns = config.namespace.as_deref();
    let mut lost_rx = leading_rx.clone();
    let mut stop_rx = stop.clone();
    let shutdown = async move {
        tokio::select! {
            _ = lost_rx.wait_for(|l| !*l) => {}
            _ = stop_rx.wait_for(|s| *s) => {}
        }
    };
    let mut served = std::collections::BTreeSet::new();
    for (_, kind) in cluster::KINDS {
        if cluster::served(&client, ns, kind).await {
            served.insert(kind);
        } else {
            tracing::warn!(
                kind,
                "the server does not serve this kind; Stacks that need it fail to apply"
            );
        }
    }
    let mut builder = Controller::new(stacks, watcher::Config::default());
    macro_rules! own {
        ($($type:ty),*) => {$(
            if served.contains(<$type as k8s_openapi::Resource>::KIND) {
                builder = builder.owns(scoped_api::<$type>(&client, ns), owned.clone());
            }
        )*};
    }
    own!(
        Deployment,
        StatefulSet,
        DaemonSet,
        Job,
        Service,
        ConfigMap,
        Secret,
        NetworkPolicy,
        ServiceAccount,
        Role,
        RoleBinding
    );
    let results = context.clone();
    builder
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context.clone())
        .for_each(|result| {
            let context = results.clone();
            async move {
                match result {
                    Err(kube::runtime::controller::Error::ObjectNotFound(gone)) => {
                        // A retry or progress check came due for a Stack
                        // that is gone: it waits no more.
                        let namespace = gone.namespace.clone().unwrap_or_default();
                        context.forget(&format!("{namespace}/{}", gone.name));
                    }
                    Err(error) => tracing::debug!(%error, "reconcile failed"),
                    Ok(_) => {}
                }
            }
        })
        .await;
    // No longer leading or stopping: nothing waits on this replica.
    context.metrics.set_queue_depth(0);
    let lost = !*leading_rx.borrow_and_update() && !*stop.borrow();
    let _ = lease_task.await;
    if lost {
        return Err(ControllerError::LostLeadership(config.lease.name.clone()));
    }
    Ok(())
}

fn scoped_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn reconcile(stack: Arc<Stack>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    if !*context.leading.borrow() {
        // Between losing the Lease and the controller stopping: act on nothing.
        return Ok(Action::await_change());
    }
    let namespace = stack
        .namespace()
        .ok_or(ReconcileError::Incomplete("namespace"))?;
    let api: Api<Stack> = Api::namespaced(context.client.clone(), &namespace);
    let key = format!("{namespace}/{}", stack.name_any());
    if let Some(left) = context.starting(&key, &stack) {
        tracing::debug!(stack = %key, ?left, "waiting out the backoff");
        return Ok(Action::requeue(left));
    }
    let measurer = context.metrics.count_and_measure(&key);
    let stack = match ensure_finalizer(&api, stack, &context).await {
        Ok(stack) => stack,
        Err(error) => {
            context.metrics.reconcile_failed(&key, error.reason());
            measurer.result(ReconcileResult::Error);
            return Err(error);
        }
    };
    // Set when the Stack was left alone (suspended, or stalled on its spec).
    let skipped = AtomicBool::new(false);
    let outcome = finalizer(&api, FINALIZER, stack, |event| async {
        match event {
            FinalizerEvent::Apply(stack) => apply_stack(&stack, &context, &skipped).await,
            FinalizerEvent::Cleanup(stack) => cleanup_stack(&stack, &context).await,
        }
    })
    .await;
    match outcome {
        Ok(action) => {
            context.succeeded(&key);
            measurer.result(if skipped.load(Ordering::Relaxed) {
                ReconcileResult::Skipped
            } else {
                ReconcileResult::Success
            });
            Ok(action)
        }
        Err(error) => {
            let error = match error {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
                other => ReconcileError::Finalizer(other.to_string()),
            };
            context.metrics.reconcile_failed(&key, error.reason());
            measurer.result(ReconcileResult::Error);
            Err(error)
        }
    }
}

/// Adds [`FINALIZER`] with a merge patch that carries the
/// resourceVersion read (a concurrent change makes it fail with 409 and
/// the reconcile is retried), so that kube-runtime's `finalizer` finds it
/// in place and goes straight to applying.
async fn ensure_finalizer(
    api: &Api<Stack>,
    stack: Arc<Stack>,
    context: &Context,
) -> Result<Arc<Stack>, ReconcileError> {
    let present = stack.finalizers().iter().any(|f| f == FINALIZER);
    if present || stack.metadata.deletion_timestamp.is_some() {
        return Ok(stack);
    }
    let mut finalizers = stack.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": stack.resource_version(),
        }
    });
    let patched = api
        .patch(
            &stack.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await;
    cluster::count(&context.metrics, "finalizer", patched.is_ok());
    patched.map(Arc::new).map_err(|source| ReconcileError::Api {
        action: "add the finalizer to",
        object: format!("Stack/{}", stack.name_any()),
        source,
    })
}

fn error_policy(stack: Arc<Stack>, error: &ReconcileError, context: Arc<Context>) -> Action {
    let key = format!(
        "{}/{}",
        stack.namespace().unwrap_or_default(),
        stack.name_any()
    );
    let delay = context.retry_delay(&key, &stack);
    tracing::warn!(stack = %key, %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Writes `status` when it differs from what the Stack has.
async fn write_status(
    stack: &Stack,
    next: StackStatus,
    context: &Context,
) -> Result<(), ReconcileError> {
    if stack.status.as_ref() == Some(&next) {
        return Ok(());
    }
    let namespace = stack.namespace().unwrap_or_default();
    let api: Api<Stack> = Api::namespaced(context.client.clone(), &namespace);
    let patch = serde_json::json!({ "status": next });
    let written = api
        .patch_status(
            &stack.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await;
    cluster::count(&context.metrics, "status", written.is_ok());
    written.map(|_| ()).map_err(|source| ReconcileError::Api {
        action: "status",
        object: format!("Stack/{}", stack.name_any()),
        source,
    })
}

/// Publishes a Stack's readiness and, when the live workloads were read
/// (`states`), its replica counts: `desired` and `healthy` from the
/// status, `running` from the workloads' own counts of pods that exist
/// (see [`gate`] for the mapping per kind).
fn publish_metrics(
    metrics: &Metrics,
    key: &str,
    status: &StackStatus,
    states: Option<&BTreeMap<String, WorkloadState>>,
) {
    metrics.set_stack_ready(key, status::is_ready(status));
    let Some(states) = states else {
        // Nothing live was read: the last counts published stand.
        return;
    };
    let count = |n: i32| u64::try_from(n.max(0)).unwrap_or(0);
    for (service, counts) in &status.services {
        let running = states.get(service).map_or(0, |s| s.running);
        metrics.set_service_replicas(key, service, "desired", count(counts.desired));
        metrics.set_service_replicas(key, service, "running", count(running));
        metrics.set_service_replicas(key, service, "healthy", count(counts.ready));
    }
}

async fn apply_stack(
    stack: &Stack,
    context: &Context,
    skipped: &AtomicBool,
) -> Result<Action, ReconcileError> {
    let config = &context.config;
    let generation = stack.metadata.generation;
    let service_count = stack
        .spec
        .compose
        .as_ref()
        .map(|c| c.services.len())
        .unwrap_or(0);
    if stack.spec.suspend {
        skipped.store(true, Ordering::Relaxed);
        let next = status::next_status(
            stack.status.as_ref(),
            generation,
            &Verdict::Suspended,
            None,
            service_count,
            &now(),
        );
        write_status(stack, next, context).await?;
        return Ok(Action::requeue(config.resync));
    }
    let owner = StackRef::of(stack).map_err(|_| ReconcileError::Incomplete("uid"))?;
    let key = owner.key();
    let desired = match desired::desired(stack, &config.policy, config.wait_image.as_deref()) {
        Ok(desired) => desired,
        Err(error) => {
            skipped.store(true, Ordering::Relaxed);
            // Safety rule 1: a Stack that cannot be translated changes
            // nothing; what runs keeps running.
            let verdict = Verdict::Stalled {
                reason: error.condition_reason().into(),
                message: error.to_string(),
            };
            let next = status::next_status(
                stack.status.as_ref(),
                generation,
                &verdict,
                None,
                service_count,
                &now(),
            );
            let changed = stack.status.as_ref() != Some(&next);
            context.metrics.source_error(&key, error.reason());
            if changed {
                context
                    .event(
                        stack,
                        EventType::Warning,
                        error.condition_reason(),
                        "Validate",
                        error.to_string(),
                    )
                    .await;
            }
            publish_metrics(&context.metrics, &key, &next, None);
            write_status(stack, next, context).await?;
            return Ok(Action::await_change());
        }
    };
    match converge(stack, &desired, context).await {
        Ok(action) => Ok(action),
        Err(error) => {
            let verdict = Verdict::Retrying(error.to_string());
            let next = status::next_status(
                stack.status.as_ref(),
                generation,
                &verdict,
                None,
                desired.project.services.len(),
                &now(),
            );
            context
                .event(
                    stack,
                    EventType::Warning,
                    "ApplyFailed",
                    "Apply",
                    error.to_string(),
                )
                .await;
            // Best effort: the error to retry is the first one.
            let _ = write_status(stack, next, context).await;
            Err(error)
        }
    }
}

fn states_of(
    desired: &Desired,
    live: &BTreeMap<ObjectKey, cluster::Live>,
) -> BTreeMap<String, WorkloadState> {
    desired
        .workloads
        .iter()
        .filter_map(|(service, key)| {
            let state = live.get(key)?.workload_state()?;
            Some((service.clone(), state))
        })
        .collect()
}

async fn converge(
    stack: &Stack,
    desired: &Desired,
    context: &Context,
) -> Result<Action, ReconcileError> {
    let config = &context.config;
    let owner = &desired.stack;
    let key = owner.key();
    let metrics = &context.metrics;
    let client = &context.client;
    let listed = cluster::list(client, metrics, &owner.namespace, &owner.selector()).await?;
    let summaries: Vec<_> = listed.iter().map(cluster::Live::summary).collect();
    let mut live: BTreeMap<ObjectKey, cluster::Live> =
        listed.into_iter().map(|l| (l.key.clone(), l)).collect();
    let held = gate::held_back(desired, &states_of(desired, &live));
    let held_keys: Vec<&ObjectKey> = held
        .keys()
        .filter_map(|s| desired.workloads.get(s))
        .collect();
    let settled =
        stack.status.as_ref().and_then(|s| s.observed_generation) == stack.metadata.generation;
    let mut created = Vec::new();
    let mut updated = Vec::new();
    for object in &desired.objects {
        let object_key = ObjectKey::of(object);
        if held_keys.contains(&&object_key) {
            continue;
        }
        let before = live
            .get(&object_key)
            .and_then(|l| l.resource_version().map(str::to_string));
        let after = cluster::apply(client, metrics, &owner.namespace, object).await?;
        match before {
            None => {
                if settled && stack.status.is_some() {
                    metrics.drift_repaired(&key, "removed");
                }
                created.push(object_key.to_string());
            }
            Some(rv) if Some(rv.as_str()) != after.resource_version() => {
                if settled {
                    metrics.drift_repaired(&key, "config_changed");
                }
                updated.push(object_key.to_string());
            }
            Some(_) => {}
        }
        live.insert(object_key, after);
    }
    if !created.is_empty() {
        tracing::info!(stack = %key, objects = ?created, "created");
        context
            .event(
                stack,
                EventType::Normal,
                "Created",
                "Apply",
                format!("created {}", created.join(", ")),
            )
            .await;
    }
    if !updated.is_empty() {
        tracing::info!(stack = %key, objects = ?updated, "updated");
        context
            .event(
                stack,
                EventType::Normal,
                "Updated",
                "Apply",
                format!("updated {}", updated.join(", ")),
            )
            .await;
    }
    if stack.spec.prune {
        // Held-back workloads are still desired: they are not pruned.
        match desired::prune_set(desired, &summaries) {
            Ok(prune) => {
                for object_key in &prune {
                    cluster::delete(client, metrics, &owner.namespace, object_key).await?;
                    live.remove(object_key);
                }
                if !prune.is_empty() {
                    let names: Vec<String> = prune.iter().map(ToString::to_string).collect();
                    tracing::info!(stack = %key, objects = ?names, "pruned");
                    context
                        .event(
                            stack,
                            EventType::Normal,
                            "Pruned",
                            "Prune",
                            format!("removed {}", names.join(", ")),
                        )
                        .await;
                }
            }
            Err(refused) => tracing::warn!(stack = %key, %refused, "not pruning"),
        }
    }
    let states = states_of(desired, &live);
    let verdict = status::verdict(desired, &states, &held);
    let services = status::service_statuses(desired, &states);
    let next = status::next_status(
        stack.status.as_ref(),
        stack.metadata.generation,
        &verdict,
        Some(services),
        desired.project.services.len(),
        &now(),
    );
    let became_ready =
        status::is_ready(&next) && !stack.status.as_ref().is_some_and(status::is_ready);
    publish_metrics(&context.metrics, &key, &next, Some(&states));
    if let Some(previous) = &stack.status {
        for service in previous.services.keys() {
            if !next.services.contains_key(service) {
                metrics.forget_service(&key, service);
            }
        }
    }
    write_status(stack, next, context).await?;
    if became_ready {
        context
            .event(
                stack,
                EventType::Normal,
                "Ready",
                "Reconcile",
                "every service has its desired replicas ready".into(),
            )
            .await;
    }
    if let Verdict::Stalled { reason, message } = &verdict {
        context
            .event(
                stack,
                EventType::Warning,
                reason,
                "Reconcile",
                message.clone(),
            )
            .await;
    }
    Ok(match verdict {
        Verdict::Ready => Action::requeue(config.resync),
        _ => {
            context.progress_check(&key);
            Action::requeue(config.progress_poll)
        }
    })
}

async fn cleanup_stack(stack: &Stack, context: &Context) -> Result<Action, ReconcileError> {
    let owner = StackRef::of(stack).map_err(|_| ReconcileError::Incomplete("uid"))?;
    let key = owner.key();
    let listed = cluster::list(
        &context.client,
        &context.metrics,
        &owner.namespace,
        &owner.selector(),
    )
    .await?;
    let summaries: Vec<_> = listed.iter().map(cluster::Live::summary).collect();
    let doomed = desired::cleanup_set(&owner, &summaries, desired::deletes_volumes(stack));
    for object_key in &doomed {
        cluster::delete(
            &context.client,
            &context.metrics,
            &owner.namespace,
            object_key,
        )
        .await?;
    }
    tracing::info!(stack = %key, deleted = doomed.len(), "cleaned up");
    context
        .event(
            stack,
            EventType::Normal,
            "Deleted",
            "Cleanup",
            format!("deleted {} objects", doomed.len()),
        )
        .await;
    context.metrics.forget_stack(&key);
    context.forget(&key);
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stack::ServiceStatus;

    const LIMITS: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

    #[test]
    fn a_trigger_during_a_backoff_waits_it_out_unless_the_stack_changed() {
        let mut schedule = Schedule::default();
        let t0 = Instant::now();
        let delay = schedule.failed("apps/shop", (Some(1), false), t0, 0.5, LIMITS);
        assert_eq!(delay, Duration::from_millis(100));
        assert_eq!(schedule.waiting.len(), 1, "the retry waits");
        // Its own status write's echo, 30 ms later: waits out the rest.
        let echo = t0 + Duration::from_millis(30);
        assert_eq!(
            schedule.starting("apps/shop", (Some(1), false), echo),
            Some(Duration::from_millis(70))
        );
        assert_eq!(schedule.waiting.len(), 1, "still waiting");
        // A new spec goes ahead at once.
        assert_eq!(schedule.starting("apps/shop", (Some(2), false), echo), None);
        assert!(schedule.waiting.is_empty());
        // So does a deletion.
        schedule.failed("apps/shop", (Some(2), false), t0, 0.5, LIMITS);
        assert_eq!(schedule.starting("apps/shop", (Some(2), true), echo), None);
    }

    #[test]
    fn retry_delays_double_per_failure_up_to_the_cap_and_reset_on_success() {
        let mut schedule = Schedule::default();
        let t0 = Instant::now();
        let delays: Vec<u128> = (0..7)
            .map(|_| {
                let delay = schedule.failed("apps/shop", (Some(1), false), t0, 0.5, LIMITS);
                delay.as_millis()
            })
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
        // The retry came due: it runs.
        assert_eq!(
            schedule.starting("apps/shop", (Some(1), false), t0 + Duration::from_secs(3)),
            None
        );
        schedule.succeeded("apps/shop");
        let delay = schedule.failed("apps/shop", (Some(1), false), t0, 0.5, LIMITS);
        assert_eq!(delay, Duration::from_millis(100), "back to the base");
        // Another Stack has a backoff of its own.
        let other = schedule.failed("staging/shop", (Some(1), false), t0, 0.5, LIMITS);
        assert_eq!(other, Duration::from_millis(100));
        assert_eq!(schedule.waiting.len(), 2);
        schedule.forget("staging/shop");
        assert_eq!(schedule.waiting.len(), 1);
    }

    fn replicas(metrics: &Metrics, state: &str) -> Option<String> {
        let needle = format!(
            r#"stackd_service_replicas{{namespace="apps",service="web",stack="shop",state="{state}"}} "#
        );
        metrics
            .encode()
            .lines()
            .find_map(|l| l.strip_prefix(needle.as_str()).map(str::to_string))
    }

    #[test]
    fn running_replicas_come_from_the_workload_and_healthy_ones_from_readiness() {
        let metrics = Metrics::namespaced();
        let mut status = StackStatus::default();
        status.services.insert(
            "web".into(),
            ServiceStatus {
                desired: 2,
                ready: 1,
                image: None,
            },
        );
        let states = BTreeMap::from([(
            "web".to_string(),
            WorkloadState {
                desired: 2,
                ready: 1,
                running: 3,
                ..WorkloadState::default()
            },
        )]);
        publish_metrics(&metrics, "apps/shop", &status, Some(&states));
        assert_eq!(replicas(&metrics, "desired").as_deref(), Some("2"));
        assert_eq!(replicas(&metrics, "running").as_deref(), Some("3"));
        assert_eq!(replicas(&metrics, "healthy").as_deref(), Some("1"));
        // Without live workloads read (a stalled spec), the counts stand.
        publish_metrics(&metrics, "apps/shop", &StackStatus::default(), None);
        assert_eq!(replicas(&metrics, "running").as_deref(), Some("3"));
        // A workload not created yet runs nothing.
        publish_metrics(&metrics, "apps/shop", &status, Some(&BTreeMap::new()));
        assert_eq!(replicas(&metrics, "running").as_deref(), Some("0"));
    }
}
