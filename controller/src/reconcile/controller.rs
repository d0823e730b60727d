//! The controller: keeps every known stack converged. Sources hand it
//! desired states (or load errors), the engine hands it events, a timer
//! hands it resyncs; each becomes a trigger on the queue, and workers
//! reconcile one stack at a time each: observe, plan, execute, report.
//!
//! The safety rules it keeps (DESIGN.md):
//! - a stack whose files fail to load keeps its last good state running;
//! - pruning follows only a plan made from a loaded desired state, and an
//!   empty desired set is refused by the planner;
//! - a failed reconcile retries with per-stack exponential backoff and
//!   jitter, reset on success; engine events and resyncs wait out the
//!   backoff, only a new desired state cuts it short;
//! - repairs of stopped or unhealthy containers are counted per stack, and
//!   past `crash_loop_restarts` within `crash_loop_window` the stack is
//!   Stalled until its spec changes, instead of restarting forever;
//! - named volumes are never removed by a reconcile, nor by deleting a
//!   stack's files.
//!
//! What it costs the engine: a reconcile that finds nothing to do lists
//! the stack's containers and nothing else. Image ids come from a cache
//! shared by every stack, listed in one call for all of them when a resync
//! round starts, when a spec changes, after stackd pulled or built, or when
//! a stack names an image the cache does not hold.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::backoff::{Backoff, Jitter};
use super::execute::{execute, ExecError, ExecOptions};
use super::queue::Queue;
use super::round::{ContainerRound, Lookup};
use super::state_file;
use crate::docker::{familiar, Backend, EngineEvent, EventKind};
use crate::metrics::{Metrics, ReconcileResult};
use crate::model::Project;
use crate::plan::{self, ContainerState, Observed, ObservedContainer, Plan, UpOptions};
use crate::source::{DesiredStack, SourceError};
use crate::status::{self, LastError, StackStatus};

mod rollback;

/// How the controller paces itself.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Stacks reconciled at once.
    pub workers: usize,
    /// How often every stack is reconciled even without a trigger.
    pub resync: Duration,
    /// First retry delay after a failure.
    pub retry_base: Duration,
    /// Largest retry delay.
    pub retry_cap: Duration,
    /// Repairs (starts of stopped containers, restarts of unhealthy ones)
    /// of one stack allowed within `crash_loop_window` before it is Stalled.
    pub crash_loop_restarts: usize,
    /// The window repairs are counted in.
    pub crash_loop_window: Duration,
    /// Bound on one reconcile's execution (waits for health included).
    pub reconcile_timeout: Duration,
    /// How soon a stack still converging (health pending) is looked at again.
    pub progress_poll: Duration,
    /// Where state files go; `None` keeps status in memory only.
    pub state_dir: Option<PathBuf>,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self {
            workers: 4,
            resync: Duration::from_secs(300),
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(60),
            crash_loop_restarts: 5,
            crash_loop_window: Duration::from_secs(600),
            reconcile_timeout: Duration::from_secs(600),
            progress_poll: Duration::from_secs(5),
            state_dir: None,
        }
    }
}

/// What the controller knows of one stack.
#[derive(Debug)]
struct Entry {
    /// The last desired state that loaded; what runs while the files are bad.
    desired: Option<Arc<DesiredStack>>,
    /// Why the files do not load now, if they do not.
    source_error: Option<SourceError>,
    /// The files are gone: tear the stack down.
    deleted: bool,
    status: StackStatus,
    backoff: Backoff,
    /// Engine failures push retries out to here; events and resyncs wait.
    not_before: Option<Instant>,
    /// A new desired state (or its loss) came since the last reconcile
    /// began: its trigger must not wait out a backoff.
    fresh: bool,
    /// When containers were last repaired, for the crash-loop brake.
    repairs: VecDeque<Instant>,
    /// The spec hash the crash-loop brake engaged on.
    braked_on: Option<String>,
    /// Containers changed in place behind stackd's back (`docker update`).
    tampered: BTreeSet<String>,
    /// The spec hash last converged: a plan against it is drift repair.
    converged_on: Option<String>,
    /// The status last written to the state file.
    written: Option<StackStatus>,
    /// Failed rolling updates held until the spec changes.
    rollouts: super::rollout::Rollouts,
}

/// Image reference → id (`None`: the engine lacks it), for every stack.
#[derive(Debug, Default)]
struct ImageCache {
    ids: BTreeMap<String, Option<String>>,
    /// Bumped by every invalidation.
    epoch: u64,
    /// The epoch `ids` were listed in; stale unless it is `epoch`.
    listed_in: Option<u64>,
}

impl ImageCache {
    /// The ids of `wanted` if the cache is current and holds them all.
    fn lookup(&self, wanted: &BTreeSet<String>) -> Option<BTreeMap<String, Option<String>>> {
        if self.listed_in != Some(self.epoch) {
            return None;
        }
        wanted
            .iter()
            .map(|r| self.ids.get(r).map(|id| (r.clone(), id.clone())))
            .collect()
    }
}

/// The image references a project's services run.
fn image_refs(project: &Project) -> BTreeSet<String> {
    project
        .services
        .iter()
        .map(|(name, service)| plan::image_ref(&project.name, name, service))
        .collect()
}

/// Why a reconcile ended, for metrics and the retry decision.
enum Outcome {
    /// Converged (or converging with nothing left to do).
    Done,
    /// Nothing was attempted (bad files, suspended, braked).
    Skipped,
    /// Failed; retry with backoff. The reason is a metric label.
    Retry {
        reason: &'static str,
        error: LastError,
    },
}

/// Keeps stacks converged on one backend.
pub struct Controller {
    backend: Arc<dyn Backend>,
    metrics: Metrics,
    options: ControllerOptions,
    stacks: Mutex<BTreeMap<String, Entry>>,
    queue: Queue,
    jitter: Mutex<Jitter>,
    images: Mutex<ImageCache>,
    /// Held while the image cache is refreshed, so concurrent reconciles
    /// wait for one list call instead of each making their own.
    image_refresh: tokio::sync::Mutex<()>,
    /// The containers a resync round listed once for all its stacks.
    round: Mutex<ContainerRound>,
    /// Held while the round's listing is made, for the same reason.
    round_listing: tokio::sync::Mutex<()>,
}

fn now_stamp() -> status::Timestamp {
    status::timestamp(SystemTime::now())
}

impl Controller {
    /// A controller with no stacks yet. Status files already in the state
    /// directory seed each stack's generation when it reappears.
    pub fn new(
        backend: Arc<dyn Backend>,
        metrics: Metrics,
        options: ControllerOptions,
    ) -> Arc<Self> {
        Arc::new(Self {
            backend,
            metrics,
            options,
            stacks: Mutex::new(BTreeMap::new()),
            queue: Queue::new(),
            jitter: Mutex::new(Jitter::from_clock()),
            images: Mutex::new(ImageCache::default()),
            image_refresh: tokio::sync::Mutex::new(()),
            round: Mutex::new(ContainerRound::default()),
            round_listing: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.stacks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn image_cache(&self) -> MutexGuard<'_, ImageCache> {
        self.images.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the image ids stale: the next reconcile lists them again (once
    /// for every stack).
    pub fn invalidate_images(&self) {
        self.image_cache().epoch += 1;
    }

    /// The ids of the images `project` runs: from the cache when it is
    /// current, else from one list call for the images of every known stack.
    async fn image_ids(
        &self,
        project: &Project,
    ) -> Result<BTreeMap<String, Option<String>>, crate::docker::Error> {
        let wanted = image_refs(project);
        if let Some(ids) = self.image_cache().lookup(&wanted) {
            return Ok(ids);
        }
        let _refreshing = self.image_refresh.lock().await;
        // Another reconcile may have listed them while this one waited.
        if let Some(ids) = self.image_cache().lookup(&wanted) {
            return Ok(ids);
        }
        let mut all = wanted.clone();
        for entry in self.lock().values() {
            if let Some(desired) = &entry.desired {
                all.extend(image_refs(&desired.project));
            }
        }
        let epoch = self.image_cache().epoch;
        let listed = self.backend.image_ids(&all).await?;
        let ids = wanted
            .iter()
            .map(|r| (r.clone(), listed.get(r).cloned().flatten()))
            .collect();
        let mut cache = self.image_cache();
        cache.ids = listed;
        // An invalidation during the call leaves the cache stale.
        cache.listed_in = Some(epoch);
        Ok(ids)
    }

    /// Containers from the engine, image ids from the cache: one list call
    /// when the cache is current.
    async fn observe_cheaply(&self, project: &Project) -> Result<Observed, crate::docker::Error> {
        if let Some(containers) = self.round_share(project).await? {
            return Ok(Observed {
                containers,
                images: self.image_ids(project).await?,
                ..Observed::default()
            });
        }
        // Both at once; the images first, so an injected failure in tests
        // meets the listing that a stale cache makes.
        let (images, mut observed) = futures::try_join!(
            self.image_ids(project),
            self.backend.observe_containers(project)
        )?;
        observed.images = images;
        Ok(observed)
    }

    fn container_round(&self) -> MutexGuard<'_, ContainerRound> {
        self.round.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `project`'s containers from the resync round's one listing, made
    /// now if this is the round's first reconcile; `None` when it lists
    /// its own (no round yet, share taken or made stale by an event).
    async fn round_share(
        &self,
        project: &Project,
    ) -> Result<Option<Vec<ObservedContainer>>, crate::docker::Error> {
        // A share is used within the round's spread, with slack for a busy
        // queue; events drop the ones that went stale sooner.
        let max_age = self.options.resync.mul_f64(0.1) + Duration::from_secs(2);
        let lookup = || {
            self.container_round()
                .lookup(&project.name, Instant::now(), max_age)
        };
        match lookup() {
            Lookup::Share(share) => return Ok(Some(share)),
            Lookup::Alone => return Ok(None),
            Lookup::ListForRound(_) => {}
        }
        let _listing = self.round_listing.lock().await;
        // Another reconcile may have listed while this one waited.
        let ticket = match lookup() {
            Lookup::Share(share) => return Ok(Some(share)),
            Lookup::Alone => return Ok(None),
            Lookup::ListForRound(ticket) => ticket,
        };
        let projects: Vec<String> = self
            .lock()
            .values()
            .filter_map(|entry| entry.desired.as_ref().map(|d| d.project.name.clone()))
            .collect();
        match self.backend.observe_all_containers().await {
            Ok(listing) => {
                self.container_round()
                    .fill(ticket, listing, &projects, Instant::now());
                Ok(match lookup() {
                    Lookup::Share(share) => Some(share),
                    Lookup::Alone | Lookup::ListForRound(_) => None,
                })
            }
            Err(error) => {
                self.container_round().failed(ticket);
                Err(error)
            }
        }
    }

    /// Takes in image ids listed by a full observation, fresher than the cache's.
    fn remember_images(&self, images: &BTreeMap<String, Option<String>>) {
        let mut cache = self.image_cache();
        for (reference, id) in images {
            cache.ids.insert(reference.clone(), id.clone());
        }
    }

    fn unit(&self) -> f64 {
        self.jitter.lock().unwrap_or_else(|p| p.into_inner()).unit()
    }

    /// The queue, for tests and the shutdown path.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    fn new_entry(&self, name: &str, source: &str) -> Entry {
        let now = now_stamp();
        let previous = self
            .options
            .state_dir
            .as_deref()
            .and_then(|dir| state_file::read(dir, name).ok().flatten());
        let mut status = StackStatus::new(name, source, &now);
        if let Some(previous) = previous {
            // Generations keep counting across restarts of the controller.
            status.generation = previous.generation;
            status.spec_hash = previous.spec_hash;
            status.observed_generation = previous.observed_generation;
        }
        Entry {
            desired: None,
            source_error: None,
            deleted: false,
            status,
            backoff: Backoff::new(self.options.retry_base, self.options.retry_cap),
            not_before: None,
            fresh: false,
            repairs: VecDeque::new(),
            braked_on: None,
            tampered: BTreeSet::new(),
            converged_on: None,
            written: None,
            rollouts: Default::default(),
        }
    }

    /// A stack's files loaded: this is its desired state now. Reconciles at
    /// once, cutting short any backoff (a new spec deserves a try).
    pub fn set_desired(&self, desired: DesiredStack) {
        let name = desired.name.clone();
        {
            let mut stacks = self.lock();
            let source = desired.origin.to_string();
            let entry = stacks
                .entry(name.clone())
                .or_insert_with(|| self.new_entry(&name, &source));
            let changed = entry.status.spec_hash != desired.spec_hash;
            entry.status.observe_spec(&desired.spec_hash);
            if changed {
                entry.braked_on = None;
                entry.repairs.clear();
                entry.backoff.reset();
                // A save may follow a rebuild of the image it names.
                self.invalidate_images();
            }
            entry.status.source = source;
            entry.source_error = None;
            entry.deleted = false;
            entry.not_before = None;
            entry.fresh = true;
            entry.desired = Some(Arc::new(desired));
        }
        self.queue.schedule_now(&name);
    }

    /// A stack's files failed to load: keep running what runs, report it.
    pub fn set_source_error(&self, error: SourceError) {
        let name = error.stack.clone();
        {
            let mut stacks = self.lock();
            let source = error.origin.to_string();
            let entry = stacks
                .entry(name.clone())
                .or_insert_with(|| self.new_entry(&name, &source));
            let repeated = entry
                .source_error
                .as_ref()
                .is_some_and(|e| e.error == error.error);
            if !repeated {
                self.metrics.source_error(&name, error.kind);
            }
            entry.fresh = true;
            entry.source_error = Some(error);
        }
        self.queue.schedule_now(&name);
    }

    /// A stack's files are gone: tear it down (named volumes stay).
    pub fn delete(&self, name: &str) {
        if let Some(entry) = self.lock().get_mut(name) {
            entry.deleted = true;
            entry.fresh = true;
        }
        self.queue.schedule_now(name);
    }

    /// Names of the stacks the controller knows.
    pub fn stack_names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// A stack's status as last computed.
    pub fn status(&self, name: &str) -> Option<StackStatus> {
        self.lock().get(name).map(|e| e.status.clone())
    }

    /// An engine event: the stack it concerns is looked at again soon
    /// (after a short pause, so the bursts a stop or a recreate makes
    /// coalesce), once any backoff has passed.
    pub fn on_event(&self, event: &EngineEvent) {
        if event.kind == EventKind::ImageChanged {
            self.on_image_changed(&event.image);
            return;
        }
        // Whatever the event, what the round listed for its project may no
        // longer be what runs.
        self.container_round().touched(&event.project);
        let relevant = match event.kind {
            EventKind::Died
            | EventKind::Destroyed
            | EventKind::Stopped
            | EventKind::OutOfMemory
            | EventKind::Health(_)
            | EventKind::Updated
            | EventKind::Paused
            | EventKind::Started => true,
            EventKind::Created
            | EventKind::Killed
            | EventKind::Renamed
            | EventKind::Unpaused
            | EventKind::ImageChanged => false,
        };
        if !relevant {
            return;
        }
        let at = {
            let mut stacks = self.lock();
            let Some((name, entry)) = stacks.iter_mut().find(|(name, entry)| {
                entry
                    .desired
                    .as_ref()
                    .map_or(name.as_str() == event.project, |d| {
                        d.project.name == event.project
                    })
            }) else {
                return;
            };
            if event.kind == EventKind::Updated {
                entry.tampered.insert(event.container.clone());
            }
            let soon = Instant::now() + Duration::from_millis(50);
            (name.clone(), entry.not_before.map_or(soon, |t| t.max(soon)))
        };
        self.queue.schedule(&at.0, at.1);
    }

    /// An image moved (built, tagged, loaded, deleted by hand): cached ids
    /// are stale, and the stacks that run it (by reference, or by the id
    /// the cache had for it) are looked at again, so a service whose image
    /// changed is recreated without waiting for the resync.
    fn on_image_changed(&self, image: &str) {
        let wanted = familiar(image);
        let affected_ids: BTreeSet<String> = {
            let cache = self.image_cache();
            cache
                .ids
                .iter()
                .filter(|(reference, id)| {
                    familiar(reference) == wanted || id.as_deref() == Some(image)
                })
                .map(|(reference, _)| familiar(reference))
                .collect()
        };
        self.invalidate_images();
        let soon = Instant::now() + Duration::from_millis(50);
        let due: Vec<(String, Instant)> = {
            let stacks = self.lock();
            stacks
                .iter()
                .filter(|(_, entry)| {
                    entry.desired.as_ref().is_some_and(|d| {
                        image_refs(&d.project).iter().any(|r| {
                            let r = familiar(r);
                            r == wanted || affected_ids.contains(&r)
                        })
                    })
                })
                .map(|(name, entry)| (name.clone(), entry.not_before.map_or(soon, |t| t.max(soon))))
                .collect()
        };
        for (name, at) in due {
            self.queue.schedule(&name, at);
        }
    }

    /// Every stack, spread over a tenth of the resync period so they do
    /// not all hit the engine at once; backoffs are respected.
    pub fn resync_all(&self) {
        self.invalidate_images();
        self.container_round().begin();
        let spread = self.options.resync.mul_f64(0.1);
        let now = Instant::now();
        let due: Vec<(String, Instant)> = {
            let stacks = self.lock();
            stacks
                .iter()
                .map(|(name, entry)| {
                    let at = now + spread.mul_f64(self.unit());
                    (name.clone(), entry.not_before.map_or(at, |t| t.max(at)))
                })
                .collect()
        };
        for (name, at) in due {
            self.queue.schedule(&name, at);
        }
    }

    /// Runs `workers` workers until `shutdown` turns true; a reconcile in
    /// flight then gets `grace` to finish before it is abandoned (safe: a
    /// crash at any point is repaired by the next run).
    pub async fn run(
        self: &Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        grace: Duration,
    ) {
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.options.workers.max(1) {
            let controller = Arc::clone(self);
            workers.spawn(async move {
                while let Some(name) = controller.queue.next().await {
                    controller.metrics.set_queue_depth(controller.queue.depth());
                    controller.reconcile(&name).await;
                    controller.queue.done(&name);
                }
            });
        }
        let _ = shutdown.wait_for(|stop| *stop).await;
        self.queue.close();
        let drained = tokio::time::timeout(grace, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("abandoning reconciles still running after {grace:?}");
            workers.abort_all();
        }
    }

    /// One reconcile of one stack, start to end: never fails, it reports.
    pub async fn reconcile(&self, name: &str) {
        let measurer = self.metrics.count_and_measure(name);
        let outcome = self.reconcile_inner(name).await;
        let result = match &outcome {
            Outcome::Done => ReconcileResult::Success,
            Outcome::Skipped => ReconcileResult::Skipped,
            Outcome::Retry { .. } => ReconcileResult::Error,
        };
        measurer.result(result);
        let mut stacks = self.lock();
        let Some(entry) = stacks.get_mut(name) else {
            // Torn down: no series of it may outlive it.
            self.metrics.forget_stack(name);
            return;
        };
        match outcome {
            Outcome::Done => {
                entry.backoff.reset();
                entry.not_before = None;
            }
            Outcome::Skipped => {}
            Outcome::Retry { reason, error } => {
                let delay = entry.backoff.next_delay(self.unit());
                tracing::warn!(stack = name, retry_in = ?delay, "{}", error.message);
                let at = Instant::now() + delay;
                entry.not_before = Some(at);
                self.metrics.reconcile_failed(name, reason);
                entry.status.retrying(error, delay, &now_stamp());
                if entry.fresh {
                    // A new spec came meanwhile: its trigger stands.
                    self.queue.schedule(name, at);
                } else {
                    // Events that came during the attempt, its own echo
                    // among them, wait out the backoff like any other.
                    self.queue.reschedule(name, at);
                }
            }
        }
        self.metrics.set_stack_ready(name, entry.status.is_ready());
        self.write_status(entry);
    }

    fn write_status(&self, entry: &mut Entry) {
        let Some(dir) = self.options.state_dir.as_deref() else {
            return;
        };
        if entry.written.as_ref() == Some(&entry.status) {
            return;
        }
        match state_file::write(dir, &entry.status) {
            Ok(()) => entry.written = Some(entry.status.clone()),
            Err(error) => tracing::warn!(stack = %entry.status.stack, "{error}"),
        }
    }

    async fn reconcile_inner(&self, name: &str) -> Outcome {
        enum Work {
            Teardown(Option<Arc<DesiredStack>>),
            Converge(Arc<DesiredStack>, BTreeSet<String>, bool),
            Nothing,
        }
        let work = {
            let mut stacks = self.lock();
            let Some(entry) = stacks.get_mut(name) else {
                return Outcome::Skipped;
            };
            entry.fresh = false;
            let now = now_stamp();
            if entry.deleted {
                Work::Teardown(entry.desired.clone())
            } else if let Some(error) = &entry.source_error {
                entry.status.stalled(
                    reason_for_source(error.kind),
                    last_error_of(error, &now),
                    &now,
                );
                Work::Nothing
            } else if let Some(desired) = &entry.desired {
                if desired.suspend {
                    entry.status.suspend(true, &now);
                    Work::Nothing
                } else if entry.braked_on.as_deref() == Some(desired.spec_hash.as_str()) {
                    Work::Nothing
                } else {
                    if entry.status.suspended {
                        entry.status.suspend(false, &now);
                    }
                    let repair = entry.converged_on.as_deref() == Some(desired.spec_hash.as_str());
                    Work::Converge(desired.clone(), entry.tampered.clone(), repair)
                }
            } else {
                Work::Nothing
            }
        };
        match work {
            Work::Nothing => Outcome::Skipped,
            Work::Teardown(desired) => self.teardown(name, desired).await,
            Work::Converge(desired, tampered, repair) => {
                self.converge(name, &desired, tampered, repair).await
            }
        }
    }

    /// Takes the stack down: everything labelled with its project name,
    /// named volumes kept. A stack whose files never loaded is taken down by
    /// name alone, as `stackd down -p NAME` does.
    async fn teardown(&self, name: &str, desired: Option<Arc<DesiredStack>>) -> Outcome {
        let (project, meta) = match &desired {
            Some(d) => (d.project.clone(), d.meta.clone()),
            None => (
                crate::model::Project {
                    name: name.to_owned(),
                    ..crate::model::Project::default()
                },
                crate::docker::ProjectMeta::default(),
            ),
        };
        let observed = match self.backend.observe(&project, true).await {
            Ok(observed) => observed,
            Err(error) => return engine_failure(error),
        };
        let plan = plan::plan_down(&project.name, Some(&project), &observed, false);
        if let Err(error) = self.execute(&plan, &project, &meta).await {
            return exec_failure(&error);
        }
        tracing::info!(stack = name, "torn down (named volumes kept)");
        self.lock().remove(name);
        self.queue.forget(name);
        self.metrics.forget_stack(name);
        if let Some(dir) = self.options.state_dir.as_deref() {
            if let Err(error) = state_file::remove(dir, name) {
                tracing::warn!(stack = name, "{error}");
            }
        }
        Outcome::Done
    }

    async fn run_plan(&self, plan: &Plan, desired: &DesiredStack) -> Result<(), ExecError> {
        self.execute(plan, &desired.project, &desired.meta).await
    }

    async fn execute(
        &self,
        plan: &Plan,
        project: &crate::model::Project,
        meta: &crate::docker::ProjectMeta,
    ) -> Result<(), ExecError> {
        if plan.is_empty() {
            return Ok(());
        }
        let options = ExecOptions {
            timeout: Some(self.options.reconcile_timeout),
            ..ExecOptions::default()
        };
        execute(
            plan,
            project,
            meta,
            self.backend.as_ref(),
            &options,
            &mut |_| {},
        )
        .await
        .map(drop)
    }

    async fn converge(
        &self,
        name: &str,
        desired: &Arc<DesiredStack>,
        tampered: BTreeSet<String>,
        repair: bool,
    ) -> Outcome {
        let mut options = UpOptions {
            prune_orphans: desired.prune,
            wait: false,
            force_recreate: false,
            restart_unhealthy: true,
            replace: tampered,
            ..UpOptions::default()
        };
        let desired = &self.rollout_view(name, desired, &mut options);
        options.known_hashes = desired.meta.config_hashes.clone();
        let project = &desired.project;
        let observed = match self.observe_cheaply(project).await {
            Ok(observed) => observed,
            Err(error) => return engine_failure(error),
        };
        let first = match plan::plan_up(project, &observed, &options) {
            Ok(plan) => plan,
            Err(error) => return self.plan_refused(name, &error),
        };
        if first.is_empty() {
            self.report_converged(name, desired, &observed);
            return Outcome::Done;
        }
        if repair {
            let repairs = drift_kinds(&first);
            let restarts = repairs
                .iter()
                .filter(|k| matches!(**k, "stopped" | "unhealthy"))
                .count();
            // Braked: nothing is repaired, so nothing is counted.
            if restarts > 0 && self.brake(name, desired, restarts) {
                return Outcome::Skipped;
            }
            for kind in &repairs {
                self.metrics.drift_repaired(name, kind);
            }
            tracing::info!(stack = name, kinds = ?repairs, "repairing drift");
        }
        {
            let mut stacks = self.lock();
            if let Some(entry) = stacks.get_mut(name) {
                let message = format!("{} step(s) to converge", first.steps.len());
                entry
                    .status
                    .reconciling(status::reason::PROGRESSING, &message, &now_stamp());
                self.write_status(entry);
            }
        }
        let observed = match self.backend.observe(project, true).await {
            Ok(observed) => observed,
            Err(error) => return engine_failure(error),
        };
        self.remember_images(&observed.images);
        let plan = match plan::plan_up(project, &observed, &options) {
            Ok(plan) => plan,
            Err(error) => return self.plan_refused(name, &error),
        };
        tracing::info!(stack = name, steps = plan.steps.len(), "converging");
        for step in &plan.steps {
            tracing::debug!(stack = name, "{step}");
        }
        let ensures_images = plan
            .steps
            .iter()
            .any(|step| matches!(step.action, plan::Action::EnsureImage { .. }));
        let result = self.run_plan(&plan, desired).await;
        if ensures_images {
            // A pull or a build may have given a reference a new id.
            self.invalidate_images();
        }
        if let Err(error) = result {
            if let Some(failure) = super::rollout::update_failure(&plan, project, &error) {
                return self
                    .update_failed(name, desired, &options, failure, &error)
                    .await;
            }
            return exec_failure(&error);
        }
        tracing::info!(stack = name, "converged");
        if let Some(entry) = self.lock().get_mut(name) {
            entry.tampered.clear();
            entry.converged_on = Some(desired.spec_hash.clone());
        }
        match self.backend.observe_containers(project).await {
            Ok(observed) => self.report_converged(name, desired, &observed),
            Err(error) => return engine_failure(error),
        }
        Outcome::Done
    }

    /// Counts `restarts` more repairs; true when that passes the crash-loop
    /// limit, in which case the stack is Stalled until its spec changes.
    fn brake(&self, name: &str, desired: &DesiredStack, restarts: usize) -> bool {
        let mut stacks = self.lock();
        let Some(entry) = stacks.get_mut(name) else {
            return false;
        };
        let now = Instant::now();
        let window = self.options.crash_loop_window;
        while entry
            .repairs
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > window)
        {
            entry.repairs.pop_front();
        }
        if entry.repairs.len() + restarts > self.options.crash_loop_restarts {
            entry.braked_on = Some(desired.spec_hash.clone());
            let stamp = now_stamp();
            let message = format!(
                "containers were restarted {} times within {}s; not restarting them again until the stack's spec changes",
                entry.repairs.len(),
                window.as_secs()
            );
            entry.status.stalled(
                status::reason::CRASH_LOOP,
                LastError::new(message, &stamp),
                &stamp,
            );
            self.metrics.reconcile_failed(name, "crash_loop");
            return true;
        }
        entry.repairs.extend(std::iter::repeat_n(now, restarts));
        false
    }

    fn plan_refused(&self, name: &str, error: &plan::PlanError) -> Outcome {
        let stamp = now_stamp();
        let mut stacks = self.lock();
        if let Some(entry) = stacks.get_mut(name) {
            entry.status.stalled(
                status::reason::PLAN_REFUSED,
                LastError::new(error.to_string(), &stamp),
                &stamp,
            );
            // Something outside the files (an external network) may fix
            // it: look again at the slowest retry pace.
            let at = Instant::now() + self.options.retry_cap;
            entry.not_before = Some(at);
            self.queue.schedule(name, at);
        }
        self.metrics.reconcile_failed(name, "plan_refused");
        Outcome::Skipped
    }

    fn report_converged(&self, name: &str, desired: &Arc<DesiredStack>, observed: &Observed) {
        let services = status::service_statuses(&desired.project, observed);
        for (service, counts) in &services {
            self.metrics
                .set_service_replicas(name, service, "desired", u64::from(counts.desired));
            self.metrics
                .set_service_replicas(name, service, "healthy", u64::from(counts.ready));
            let running = observed
                .containers
                .iter()
                .filter(|c| !c.oneoff && &c.service == service)
                .filter(|c| c.state == ContainerState::Running)
                .count();
            self.metrics
                .set_service_replicas(name, service, "running", running as u64);
        }
        let pending: Vec<&str> = services
            .iter()
            .filter(|(_, s)| s.ready < s.desired)
            .map(|(n, _)| n.as_str())
            .collect();
        let stamp = now_stamp();
        let mut stacks = self.lock();
        let Some(entry) = stacks.get_mut(name) else {
            return;
        };
        if entry.converged_on.is_none() {
            entry.converged_on = Some(desired.spec_hash.clone());
        }
        entry.rollouts.converged(desired);
        if let Some((reason, error)) = entry.rollouts.verdict() {
            // Held services run their previous config: not what was asked.
            entry.status.services = services;
            entry.status.stalled(reason, error, &stamp);
        } else if pending.is_empty() {
            entry.status.ready(services, &stamp);
        } else {
            let message = format!("waiting for {} to become ready", pending.join(", "));
            entry
                .status
                .progressing(services, "WaitingForReady", &message, &stamp);
            self.queue
                .schedule(name, Instant::now() + self.options.progress_poll);
        }
    }
}

/// The kinds of drift a plan for an unchanged spec repairs, one per
/// container it brings back (every repair ends in a start: of a new
/// container, a replacement, or the same one).
fn drift_kinds(plan: &Plan) -> Vec<&'static str> {
    plan.steps
        .iter()
        .filter(|step| matches!(step.action, plan::Action::StartContainer { .. }))
        .map(|step| {
            let cause = step.cause.as_str();
            // A container caught half-removed (`docker rm -f` seen by its
            // `die`) or left dead is one removed or stopped, not changed.
            if cause == "missing" || cause.starts_with("scale") || cause == "being removed" {
                "removed"
            } else if cause == "unhealthy" {
                "unhealthy"
            } else if cause.starts_with("exited") || cause == "created" || cause == "dead" {
                "stopped"
            } else {
                "config_changed"
            }
        })
        .collect()
}

fn reason_for_source(kind: &str) -> &'static str {
    match kind {
        "parse" => "ParseFailed",
        "validate" => "ValidationFailed",
        "interpolate" => "InterpolationFailed",
        "missing_file" => "FileMissing",
        "conflict" => "NameConflict",
        _ => "LoadFailed",
    }
}

fn last_error_of(error: &SourceError, at: &status::Timestamp) -> LastError {
    let (file, line, column) = match &error.location {
        Some((file, line, column)) => {
            (Some(file.display().to_string()), Some(*line), Some(*column))
        }
        None => (None, None, None),
    };
    LastError {
        message: error.error.clone(),
        file,
        line,
        column,
        at: at.clone(),
    }
}

fn engine_failure(error: crate::docker::Error) -> Outcome {
    Outcome::Retry {
        reason: "engine_error",
        error: LastError::new(error.to_string(), &now_stamp()),
    }
}

fn exec_failure(error: &ExecError) -> Outcome {
    Outcome::Retry {
        reason: error.reason(),
        error: LastError::new(error.to_string(), &now_stamp()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    mod rolling;

    use super::*;
    use crate::docker::fake::{Behaviour, FakeBackend};
    use crate::docker::ActionKind;
    use crate::source::Origin;
    use crate::status::{ConditionStatus, ConditionType};

    const WEB: &str = "services:\n  web:\n    image: busybox\n    restart: always\n    environment: {V: \"1\"}\n  db:\n    image: busybox\n    restart: always\n    volumes: [data:/data]\nvolumes:\n  data: {}\n";

    struct Rig {
        dir: tempfile::TempDir,
        fake: Arc<FakeBackend>,
        metrics: Metrics,
        controller: Arc<Controller>,
    }

    fn rig(options: ControllerOptions) -> Rig {
        let fake = Arc::new(FakeBackend::new());
        fake.add_image("busybox");
        let metrics = Metrics::new();
        let backend: Arc<dyn Backend> = fake.clone();
        let controller = Controller::new(backend, metrics.clone(), options);
        Rig {
            dir: tempfile::tempdir().unwrap(),
            fake,
            metrics,
            controller,
        }
    }

    fn options() -> ControllerOptions {
        ControllerOptions {
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(8),
            crash_loop_restarts: 3,
            ..ControllerOptions::default()
        }
    }

    impl Rig {
        fn project_dir(&self) -> std::path::PathBuf {
            self.dir.path().join("demo")
        }

        fn write(&self, yaml: &str) {
            let dir = self.project_dir();
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
        }

        // As in `source`: the Ok side is larger than the error.
        #[allow(clippy::result_large_err)]
        fn load(&self) -> Result<DesiredStack, SourceError> {
            source::load(&Origin::ComposeDir {
                dir: self.project_dir().canonicalize().unwrap(),
            })
        }

        fn apply(&self, yaml: &str) {
            self.write(yaml);
            match self.load() {
                Ok(desired) => self.controller.set_desired(desired),
                Err(error) => self.controller.set_source_error(error),
            }
        }

        async fn reconcile(&self) {
            self.controller.reconcile("demo").await;
        }

        fn status(&self) -> StackStatus {
            self.controller.status("demo").unwrap()
        }

        fn condition(&self, t: ConditionType) -> (ConditionStatus, String) {
            let status = self.status();
            let c = status.condition(t).unwrap();
            (c.status, c.reason.clone())
        }

        fn container_changes(&self) -> usize {
            [
                ActionKind::CreateContainer,
                ActionKind::StartContainer,
                ActionKind::StopContainer,
                ActionKind::RemoveContainer,
            ]
            .into_iter()
            .map(|k| self.fake.count(k))
            .sum()
        }
    }

    use crate::source;

    fn metric_line(metrics: &Metrics, prefix: &str) -> Option<f64> {
        metrics
            .encode()
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn drift_kinds_count_a_container_caught_being_removed_as_removed() {
        let start = |cause: &str| plan::Step {
            action: plan::Action::StartContainer {
                name: "demo-web-1".into(),
            },
            cause: cause.into(),
            after: Vec::new(),
        };
        let plan = Plan {
            steps: [
                "missing",
                "being removed",
                "dead",
                "exited (137)",
                "changed outside stackd",
            ]
            .into_iter()
            .map(start)
            .collect(),
        };
        assert_eq!(
            drift_kinds(&plan),
            ["removed", "removed", "stopped", "stopped", "config_changed"]
        );
    }

    #[tokio::test]
    async fn a_new_stack_is_converged_and_reported_ready() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        assert_eq!(
            rig.fake.container_names(),
            ["demo-db-1".to_string(), "demo-web-1".to_string()]
        );
        let status = rig.status();
        assert!(status.is_ready(), "{status:#?}");
        assert_eq!(status.generation, 1);
        assert_eq!(status.observed_generation, 1);
        assert_eq!(status.services["web"].desired, 1);
        assert_eq!(status.services["web"].ready, 1);
        assert_eq!(
            metric_line(&rig.metrics, "stackd_stack_ready{stack=\"demo\"}"),
            Some(1.0)
        );
    }

    #[tokio::test]
    async fn reconciling_a_converged_stack_again_changes_nothing() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        rig.fake.clear_calls();
        rig.reconcile().await;
        rig.controller.resync_all();
        rig.reconcile().await;
        assert_eq!(rig.container_changes(), 0);
        assert!(rig.status().is_ready());
    }

    #[tokio::test]
    async fn a_file_that_fails_to_load_leaves_the_running_stack_alone() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        rig.fake.clear_calls();

        rig.apply("services:\n  web:\n    image: busybox\n    networks: [nowhere]\n");
        rig.reconcile().await;
        assert_eq!(rig.container_changes(), 0, "nothing stopped or removed");
        assert_eq!(rig.fake.container_names().len(), 2);
        let status = rig.status();
        let (stalled, _) = rig.condition(ConditionType::Stalled);
        assert_eq!(stalled, ConditionStatus::True);
        let error = status.last_error.unwrap();
        assert!(error.file.unwrap().ends_with("compose.yaml"));
        assert!(error.line.is_some(), "{}", error.message);
        assert_eq!(
            metric_line(&rig.metrics, "stackd_source_errors_total{"),
            Some(1.0)
        );

        // The good file back: Ready again, nothing recreated.
        rig.apply(WEB);
        rig.reconcile().await;
        assert_eq!(rig.container_changes(), 0);
        assert!(rig.status().is_ready());
    }

    #[tokio::test]
    async fn a_container_removed_by_hand_is_recreated_and_counted_as_drift() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        rig.fake.kill("demo-web-1");
        rig.reconcile().await;
        assert!(rig.fake.container("demo-web-1").is_some());
        assert_eq!(
            metric_line(
                &rig.metrics,
                "stackd_drift_repairs_total{kind=\"removed\",stack=\"demo\"}"
            ),
            Some(1.0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_engine_event_for_a_stack_queues_it_and_only_it() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        let _ = rig.controller.queue().next().await;
        rig.controller.queue().done("demo");
        rig.controller.on_event(&EngineEvent {
            project: "other".into(),
            service: "web".into(),
            container: "other-web-1".into(),
            image: "busybox".into(),
            kind: EventKind::Died,
        });
        assert_eq!(rig.controller.queue().depth(), 0);
        rig.controller.on_event(&EngineEvent {
            project: "demo".into(),
            service: "web".into(),
            container: "demo-web-1".into(),
            image: "busybox".into(),
            kind: EventKind::Died,
        });
        assert_eq!(rig.controller.queue().depth(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn engine_failures_retry_with_growing_delays_and_reset_on_success() {
        let rig = rig(options());
        rig.apply(WEB);
        let _ = rig.controller.queue().next().await;
        rig.controller.queue().done("demo");
        rig.fake.fail_observe(500, 3);
        let mut delays = Vec::new();
        for _ in 0..3 {
            let before = Instant::now();
            rig.reconcile().await;
            let (reconciling, reason) = rig.condition(ConditionType::Reconciling);
            assert_eq!(
                (reconciling, reason.as_str()),
                (ConditionStatus::True, "RetryScheduled")
            );
            let due = rig.controller.queue().due("demo").unwrap();
            delays.push(due - before);
            // Events wait out the backoff.
            rig.controller.on_event(&EngineEvent {
                project: "demo".into(),
                service: "web".into(),
                container: "demo-web-1".into(),
                image: "busybox".into(),
                kind: EventKind::Died,
            });
            assert_eq!(rig.controller.queue().due("demo").unwrap(), due);
            let _ = rig.controller.queue().next().await;
            rig.controller.queue().done("demo");
        }
        for (i, nominal) in [1.0, 2.0, 4.0].into_iter().enumerate() {
            let d = delays[i].as_secs_f64();
            assert!(
                (nominal * 0.8..=nominal * 1.2).contains(&d),
                "retry {i}: {d}s, expected about {nominal}s"
            );
        }
        rig.reconcile().await;
        assert!(rig.status().is_ready());
        // Reset: the next failure waits the base delay again.
        rig.fake.fail_observe(500, 1);
        let before = Instant::now();
        rig.reconcile().await;
        let d = (rig.controller.queue().due("demo").unwrap() - before).as_secs_f64();
        assert!((0.8..=1.2).contains(&d), "{d}");
        assert_eq!(
            metric_line(
                &rig.metrics,
                "stackd_reconcile_errors_total{reason=\"engine_error\",stack=\"demo\"}"
            ),
            Some(4.0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn events_that_come_during_a_failed_attempt_wait_out_its_backoff() {
        let rig = rig(options());
        rig.apply(WEB);
        // A worker holds the stack, as in `run`.
        assert_eq!(rig.controller.queue().next().await.as_deref(), Some("demo"));
        // The echo of the attempt's own actions (a container it stopped
        // died) arrives while it runs.
        rig.controller.on_event(&EngineEvent {
            project: "demo".into(),
            service: "web".into(),
            container: "demo-web-1".into(),
            image: "busybox".into(),
            kind: EventKind::Died,
        });
        rig.fake.fail_observe(500, 1);
        let before = Instant::now();
        rig.reconcile().await;
        rig.controller.queue().done("demo");
        let due = rig.controller.queue().due("demo").unwrap();
        let d = (due - before).as_secs_f64();
        assert!((0.8..=1.2).contains(&d), "the retry is due in {d}s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_spec_that_comes_during_a_failing_attempt_is_tried_at_once() {
        let rig = rig(options());
        rig.fake
            .set_delay(ActionKind::CreateContainer, Duration::from_secs(2));
        rig.fake.fail_next(ActionKind::StartContainer, 500, 10);
        rig.apply(WEB);
        let _ = rig.controller.queue().next().await;
        let controller = rig.controller.clone();
        let attempt = tokio::spawn(async move { controller.reconcile("demo").await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        rig.apply(&WEB.replace("V: \"1\"", "V: \"2\""));
        attempt.await.unwrap();
        rig.controller.queue().done("demo");
        let (reconciling, reason) = rig.condition(ConditionType::Reconciling);
        assert_eq!(
            (reconciling, reason.as_str()),
            (ConditionStatus::True, "RetryScheduled"),
            "the attempt on the old spec failed"
        );
        assert!(rig.controller.queue().due("demo").unwrap() <= Instant::now());
    }

    #[tokio::test]
    async fn a_new_spec_cuts_a_backoff_short() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.fake.fail_observe(500, 1);
        let _ = rig.controller.queue().next().await;
        rig.reconcile().await;
        rig.controller.queue().done("demo");
        assert!(rig.controller.queue().due("demo").unwrap() > Instant::now());
        rig.apply(&WEB.replace("V: \"1\"", "V: \"2\""));
        assert!(rig.controller.queue().due("demo").unwrap() <= Instant::now());
    }

    #[tokio::test]
    async fn a_crash_looping_container_stalls_the_stack_instead_of_restarting_forever() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        let mut starts = Vec::new();
        for _ in 0..6 {
            rig.fake
                .set_state("demo-web-1", ContainerState::Exited(1), None);
            rig.fake.clear_calls();
            rig.reconcile().await;
            starts.push(rig.fake.count(ActionKind::StartContainer));
        }
        assert_eq!(starts, [1, 1, 1, 0, 0, 0], "three restarts, then the brake");
        assert_eq!(
            metric_line(
                &rig.metrics,
                "stackd_drift_repairs_total{kind=\"stopped\",stack=\"demo\"}"
            ),
            Some(3.0),
            "the restart the brake held back is not counted as a repair"
        );
        let (stalled, reason) = rig.condition(ConditionType::Stalled);
        assert_eq!(
            (stalled, reason.as_str()),
            (ConditionStatus::True, "CrashLoop")
        );

        // A change to the spec releases the brake.
        rig.apply(&WEB.replace("V: \"1\"", "V: \"2\""));
        rig.reconcile().await;
        assert!(rig.fake.count(ActionKind::CreateContainer) > 0);
        assert!(rig.status().is_ready());
    }

    #[tokio::test]
    async fn an_unhealthy_container_is_restarted() {
        let rig = rig(options());
        let yaml = "services:\n  web:\n    image: busybox\n    restart: always\n    healthcheck: {test: [\"CMD\", \"true\"]}\n";
        rig.apply(yaml);
        rig.reconcile().await;
        rig.fake.set_state(
            "demo-web-1",
            ContainerState::Running,
            Some(crate::plan::Health::Unhealthy),
        );
        rig.fake.clear_calls();
        rig.reconcile().await;
        assert_eq!(rig.fake.count(ActionKind::StopContainer), 1);
        assert_eq!(rig.fake.count(ActionKind::StartContainer), 1);
        assert_eq!(
            metric_line(
                &rig.metrics,
                "stackd_drift_repairs_total{kind=\"unhealthy\",stack=\"demo\"}"
            ),
            Some(1.0)
        );
    }

    #[tokio::test]
    async fn a_suspended_stack_is_left_as_it_is() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        let dir = rig.dir.path().join("suspended");
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join("stack.yaml");
        std::fs::write(
            &manifest,
            "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: demo}\nspec:\n  suspend: true\n  compose:\n    services:\n      web: {image: busybox, environment: {V: \"9\"}}\n",
        )
        .unwrap();
        let desired = source::load(&Origin::Manifest {
            path: manifest.canonicalize().unwrap(),
        })
        .unwrap();
        assert!(desired.suspend);
        rig.controller.set_desired(desired);
        rig.fake.clear_calls();
        rig.fake.kill("demo-db-1");
        rig.reconcile().await;
        assert_eq!(rig.container_changes(), 0);
        assert!(rig.status().suspended);
    }

    #[tokio::test]
    async fn a_one_shot_job_that_finished_is_not_run_again_by_resyncs() {
        let rig = rig(options());
        rig.fake.set_behaviour(
            "migrate",
            Behaviour::ExitsAfter {
                code: 0,
                after: Duration::ZERO,
            },
        );
        rig.apply("services:\n  migrate:\n    image: busybox\n    restart: \"no\"\n");
        rig.reconcile().await;
        rig.fake.clear_calls();
        for _ in 0..3 {
            rig.reconcile().await;
        }
        assert_eq!(rig.container_changes(), 0);
        assert!(rig.status().is_ready(), "{:#?}", rig.status());
    }

    #[tokio::test]
    async fn deleting_a_stack_removes_its_containers_and_keeps_its_volumes() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        assert_eq!(rig.fake.volumes().len(), 1);
        rig.controller.delete("demo");
        rig.reconcile().await;
        assert!(rig.fake.container_names().is_empty());
        assert_eq!(rig.fake.volumes().len(), 1, "named volume kept");
        assert!(rig.controller.status("demo").is_none());
        assert!(!rig.metrics.encode().contains("stack=\"demo\""));
    }

    /// Loads the compose folder `dir/<name>` holding `yaml`.
    fn stack_in(dir: &std::path::Path, name: &str, yaml: &str) -> DesiredStack {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("compose.yaml"), yaml).unwrap();
        source::load(&Origin::ComposeDir {
            dir: folder.canonicalize().unwrap(),
        })
        .unwrap()
    }

    fn calls_of(fake: &FakeBackend, what: fn(&crate::docker::fake::Call) -> bool) -> usize {
        fake.calls().iter().filter(|r| what(&r.call)).count()
    }

    #[tokio::test]
    async fn a_no_op_resync_round_lists_all_containers_once_and_the_images_once() {
        use crate::docker::fake::Call;
        let rig = rig(options());
        let names: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
        for name in &names {
            let desired = stack_in(rig.dir.path(), name, WEB);
            rig.controller.set_desired(desired);
        }
        for name in &names {
            rig.controller.reconcile(name).await;
            assert!(rig.controller.status(name).unwrap().is_ready());
        }
        rig.fake.clear_calls();
        rig.controller.resync_all();
        for name in &names {
            rig.controller.reconcile(name).await;
        }
        let all = calls_of(&rig.fake, |c| matches!(c, Call::ObserveAllContainers));
        let alone = calls_of(&rig.fake, |c| matches!(c, Call::ObserveContainers { .. }));
        let images = calls_of(&rig.fake, |c| matches!(c, Call::ImageIds { .. }));
        let full = calls_of(&rig.fake, |c| matches!(c, Call::Observe { .. }));
        assert_eq!(
            (all, alone, images, full),
            (1, 0, 1, 0),
            "{:#?}",
            rig.fake.calls()
        );
        assert_eq!(rig.container_changes(), 0);

        // Reconciles between resyncs (engine events) list their own
        // containers only: each share is used once.
        rig.fake.clear_calls();
        for name in &names {
            rig.controller.reconcile(name).await;
        }
        let alone = calls_of(&rig.fake, |c| matches!(c, Call::ObserveContainers { .. }));
        assert_eq!(
            (alone, rig.fake.calls().len()),
            (5, 5),
            "{:#?}",
            rig.fake.calls()
        );
    }

    #[tokio::test]
    async fn a_stack_with_an_engine_event_during_the_round_lists_its_own_containers() {
        use crate::docker::fake::Call;
        let rig = rig(options());
        for name in ["s0", "s1"] {
            rig.controller
                .set_desired(stack_in(rig.dir.path(), name, WEB));
            rig.controller.reconcile(name).await;
        }
        rig.controller.resync_all();
        rig.controller.reconcile("s0").await;
        // s1's container is removed by hand after the round listed it.
        rig.fake.kill("s1-web-1");
        rig.controller.on_event(&EngineEvent {
            project: "s1".into(),
            service: "web".into(),
            container: "s1-web-1".into(),
            image: "busybox".into(),
            kind: EventKind::Destroyed,
        });
        rig.fake.clear_calls();
        rig.controller.reconcile("s1").await;
        let calls = rig.fake.calls();
        assert!(
            matches!(&calls[0].call, Call::ObserveContainers { project } if project == "s1"),
            "the stale share is not used: {calls:#?}"
        );
        assert!(rig.fake.container("s1-web-1").is_some(), "recreated");
        assert!(rig.controller.status("s1").unwrap().is_ready());
    }

    #[tokio::test]
    async fn an_image_retagged_behind_stackds_back_is_noticed_at_the_next_resync_round() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        let before = rig.fake.container("demo-web-1").unwrap().id;
        rig.fake.add_image("busybox");
        rig.fake.clear_calls();
        // Between rounds the cached id stands: nothing is recreated.
        rig.reconcile().await;
        assert_eq!(rig.container_changes(), 0);
        rig.controller.resync_all();
        rig.reconcile().await;
        let after = rig.fake.container("demo-web-1").unwrap().id;
        assert_ne!(before, after, "web runs the new image");
        assert_eq!(rig.fake.container_names().len(), 2);
        assert!(rig.status().is_ready());
        // The recreate refreshed the cache: the next reconcile is a no-op.
        rig.fake.clear_calls();
        rig.reconcile().await;
        assert_eq!(rig.container_changes(), 0);
    }

    #[tokio::test]
    async fn one_image_listing_covers_every_known_stack() {
        use crate::docker::fake::Call;
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        rig.fake.add_image("alpine");
        let other = stack_in(
            rig.dir.path(),
            "other",
            "services:\n  app:\n    image: alpine\n",
        );
        // A new stack makes the cache stale; the next listing, made for
        // demo, asks for other's images too.
        rig.controller.set_desired(other);
        rig.controller.reconcile("demo").await;
        rig.fake.clear_calls();
        rig.controller.reconcile("other").await;
        assert_eq!(
            calls_of(&rig.fake, |c| matches!(c, Call::ImageIds { .. })),
            0,
            "the listing for demo covered every known stack"
        );
        assert!(rig.controller.status("other").unwrap().is_ready());
        assert_eq!(
            rig.fake.count(ActionKind::EnsureImage),
            0,
            "alpine was found"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_image_event_queues_the_stacks_that_run_it_and_lists_images_again() {
        use crate::docker::fake::Call;
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        let _ = rig.controller.queue().next().await;
        rig.controller.queue().done("demo");
        let image_event = |image: &str| EngineEvent {
            project: String::new(),
            service: String::new(),
            container: String::new(),
            image: image.to_owned(),
            kind: EventKind::ImageChanged,
        };
        rig.controller.on_event(&image_event("alpine:3"));
        assert_eq!(
            rig.controller.queue().depth(),
            0,
            "demo does not run alpine"
        );
        // A new build tagged over the reference demo runs.
        let id = rig.fake.add_image("busybox");
        rig.fake.clear_calls();
        rig.controller.on_event(&image_event("busybox:latest"));
        assert_eq!(rig.controller.queue().next().await.as_deref(), Some("demo"));
        rig.reconcile().await;
        rig.controller.queue().done("demo");
        assert_eq!(
            calls_of(&rig.fake, |c| matches!(c, Call::ImageIds { .. })),
            1,
            "the cached ids were dropped"
        );
        // A deletion names only the id the cache has for the reference.
        rig.controller.on_event(&image_event(&id));
        assert_eq!(rig.controller.queue().depth(), 1);
    }

    #[tokio::test]
    async fn a_failed_image_listing_is_an_engine_failure_retried_with_backoff() {
        use crate::docker::fake::Call;
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        rig.controller.invalidate_images();
        rig.fake.clear_calls();
        // The stale cache is listed first, and takes the failure.
        rig.fake.fail_observe(500, 1);
        rig.reconcile().await;
        let failed: Vec<bool> = rig
            .fake
            .calls()
            .iter()
            .filter(|r| matches!(r.call, Call::ImageIds { .. }))
            .map(|r| r.failed)
            .collect();
        assert_eq!(failed, [true]);
        let (reconciling, reason) = rig.condition(ConditionType::Reconciling);
        assert_eq!(
            (reconciling, reason.as_str()),
            (ConditionStatus::True, "RetryScheduled")
        );
        rig.reconcile().await;
        assert!(rig.status().is_ready());
        assert_eq!(rig.container_changes(), 0);
    }

    #[tokio::test]
    async fn a_stack_whose_files_never_loaded_is_still_torn_down_by_name() {
        let rig = rig(options());
        rig.apply(WEB);
        rig.reconcile().await;
        // A restarted controller that only ever saw the broken file.
        let again = Controller::new(rig.fake.clone(), Metrics::new(), options());
        rig.write("services: {");
        again.set_source_error(rig.load().unwrap_err());
        again.reconcile("demo").await;
        assert_eq!(rig.fake.container_names().len(), 2, "kept while broken");
        again.delete("demo");
        again.reconcile("demo").await;
        assert!(rig.fake.container_names().is_empty());
        assert_eq!(rig.fake.volumes().len(), 1, "named volume kept");
    }

    #[tokio::test]
    async fn status_files_are_written_and_generations_survive_a_restart() {
        let state = tempfile::tempdir().unwrap();
        let with_state = || ControllerOptions {
            state_dir: Some(state.path().to_path_buf()),
            ..options()
        };
        let rig = rig(with_state());
        rig.apply(WEB);
        rig.reconcile().await;
        rig.apply(&WEB.replace("V: \"1\"", "V: \"2\""));
        rig.reconcile().await;
        let written = state_file::read(state.path(), "demo").unwrap().unwrap();
        assert_eq!(written.generation, 2);
        assert!(written.is_ready());

        // A new controller (a restart) goes on counting from there.
        let again = Controller::new(rig.fake.clone(), Metrics::new(), with_state());
        again.set_desired(rig.load().unwrap());
        assert_eq!(again.status("demo").unwrap().generation, 2);
    }
}
