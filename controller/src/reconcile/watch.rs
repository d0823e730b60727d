//! `stackd watch DIR` put together: the file source feeding the controller,
//! the engine's event stream (reconnected, with a resync after each gap),
//! the periodic resync, the metrics server, and a graceful stop.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use super::backoff::{Backoff, Jitter};
use super::controller::{Controller, ControllerOptions};
use crate::docker::{Backend, DockerBackend, EngineEvent, EventKind};
use crate::metrics::{self, InstrumentedBackend, Metrics};
use crate::source::{self, DesiredStack, Index, Origin, SourceError, Watcher};

/// What `stackd watch` was asked to do.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The directory of Stack manifests and compose projects.
    pub dir: PathBuf,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_addr: String,
    /// The controller's pacing and state directory.
    pub controller: ControllerOptions,
    /// How long in-flight reconciles may run on after a stop is asked.
    pub grace: Duration,
}

/// Why `stackd watch` could not run.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The metrics address could not be bound or served.
    #[error(transparent)]
    Metrics(#[from] metrics::Error),
    /// The directory could not be read or watched.
    #[error(transparent)]
    Source(#[from] source::Error),
}

/// What the source last told the controller about a stack, so a batch of
/// file events that leaves a stack's content as it was reconciles nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Spec(String),
    Error(String),
}

/// The file side: which stacks exist, what files each reads, and what was
/// last sent to the controller for each.
struct FileSource {
    dir: PathBuf,
    origins: BTreeMap<String, Origin>,
    index: Index,
    sent: BTreeMap<String, Sent>,
}

impl FileSource {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            origins: BTreeMap::new(),
            index: Index::new(),
            sent: BTreeMap::new(),
        }
    }

    /// Sends `loaded` to the controller unless it says what was last said.
    fn forward(
        &mut self,
        controller: &Controller,
        watcher: &mut Watcher,
        loaded: Vec<DesiredStack>,
        errors: Vec<SourceError>,
    ) {
        for desired in loaded {
            self.index.set(&desired.name, &desired.files);
            self.origins
                .insert(desired.name.clone(), desired.origin.clone());
            let sent = Sent::Spec(desired.spec_hash.clone());
            if self.sent.get(&desired.name) != Some(&sent) {
                self.sent.insert(desired.name.clone(), sent);
                controller.set_desired(desired);
            }
        }
        for error in errors {
            self.index.set(&error.stack, &error.files);
            self.origins
                .insert(error.stack.clone(), error.origin.clone());
            let sent = Sent::Error(error.error.clone());
            if self.sent.get(&error.stack) != Some(&sent) {
                tracing::warn!(stack = %error.stack, "{}", error.error);
                self.sent.insert(error.stack.clone(), sent);
                controller.set_source_error(error);
            }
        }
        // Files outside the directory (`env_file: ../shared.env`) are
        // watched through their folders; the set is replaced each time.
        if let Err(error) = watcher.watch_extra(&self.index.all_files()) {
            tracing::warn!("{error}");
        }
    }

    /// A broken file may not tell its stack's name: the error is filed
    /// under the stack last loaded from the same place, so that stack is
    /// kept (and reported) rather than taken for deleted.
    fn attribute(&self, errors: &mut [SourceError]) {
        for error in errors {
            if let Some((name, _)) = self.origins.iter().find(|(_, o)| **o == error.origin) {
                error.stack = name.clone();
            }
        }
    }

    /// Loads everything under the directory; stacks no longer declared
    /// (their file gone, or renamed inside it) are deleted. An origin still
    /// there keeps its stack even when it no longer loads (an emptied
    /// manifest is a broken stack, not a deleted one: its error is filed
    /// under the stack's name), and a directory that cannot be read deletes
    /// nothing.
    fn rescan(
        &mut self,
        controller: &Controller,
        watcher: &mut Watcher,
    ) -> Result<(), source::Error> {
        let known: Vec<Origin> = self.origins.values().cloned().collect();
        let origins = source::rediscover(&self.dir, &known)?;
        let (loaded, mut errors) =
            source::load_origins(&origins, &source::Settings::from_process());
        self.attribute(&mut errors);
        let present: std::collections::BTreeSet<String> = loaded
            .iter()
            .map(|d| d.name.clone())
            .chain(errors.iter().map(|e| e.stack.clone()))
            .collect();
        let gone: Vec<String> = self
            .origins
            .iter()
            .filter(|(name, _)| !present.contains(*name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            tracing::info!(stack = %name, "files removed: tearing the stack down");
            self.origins.remove(&name);
            self.index.remove(&name);
            self.sent.remove(&name);
            controller.delete(&name);
        }
        self.forward(controller, watcher, loaded, errors);
        Ok(())
    }

    /// Reloads the stacks a batch of changed paths touches.
    fn changed(
        &mut self,
        controller: &Controller,
        watcher: &mut Watcher,
        paths: &[PathBuf],
    ) -> Result<(), source::Error> {
        let affected = self.index.affected(paths);
        if affected.rescan {
            return self.rescan(controller, watcher);
        }
        let mut loaded = Vec::new();
        let mut errors = Vec::new();
        for name in &affected.stacks {
            let Some(origin) = self.origins.get(name) else {
                continue;
            };
            match source::load(origin) {
                Ok(desired) if desired.name == *name => loaded.push(desired),
                // A rename inside the file: the old stack goes, the new
                // one comes, which a full scan sorts out.
                Ok(_) => return self.rescan(controller, watcher),
                Err(error) => errors.push(error),
            }
        }
        self.attribute(&mut errors);
        self.forward(controller, watcher, loaded, errors);
        Ok(())
    }
}

/// Runs until `shutdown` turns true. Containers keep running after.
pub async fn run(options: WatchOptions, shutdown: watch::Receiver<bool>) -> Result<(), WatchError> {
    let metrics = Metrics::new();
    let listener = metrics::server::bind(&options.metrics_addr).await?;
    let (ready_tx, ready_rx) = watch::channel(false);
    let server = {
        let metrics = metrics.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            metrics::server::serve(listener, metrics, ready_rx, stopped).await
        })
    };

    let backend: Arc<dyn Backend> = Arc::new(InstrumentedBackend::new(
        DockerBackend::new(),
        metrics.clone(),
        "docker",
    ));
    let controller = Controller::new(
        Arc::clone(&backend),
        metrics.clone(),
        options.controller.clone(),
    );

    // The watcher starts before the first load, so no change between the
    // two goes unseen.
    let (paths_tx, mut paths_rx) = mpsc::unbounded_channel();
    let mut watcher = Watcher::start(&options.dir, paths_tx)?;
    let mut files = FileSource::new(&options.dir);
    files.rescan(&controller, &mut watcher)?;
    let _ = ready_tx.send(true);

    let sources = {
        let controller = Arc::clone(&controller);
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    batch = paths_rx.recv() => {
                        let Some(mut paths) = batch else { break };
                        // Drain what else arrived: one reload per stack.
                        while let Ok(more) = paths_rx.try_recv() {
                            paths.extend(more);
                        }
                        if let Err(error) = files.changed(&controller, &mut watcher, &paths) {
                            tracing::warn!("{error}");
                        }
                    }
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        })
    };

    let events = {
        let controller = Arc::clone(&controller);
        let backend = Arc::clone(&backend);
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = follow_events(&controller, backend.as_ref()) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        })
    };

    let resync = {
        let controller = Arc::clone(&controller);
        let period = options.controller.resync;
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticks.tick() => controller.resync_all(),
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        })
    };

    tracing::info!(dir = %options.dir.display(), "watching");
    controller.run(shutdown, options.grace).await;
    tracing::debug!("workers stopped");
    for task in [sources, events, resync] {
        let _ = task.await;
    }
    tracing::debug!("sources, events and resync stopped");
    match server.await {
        Ok(result) => result?,
        Err(join) => tracing::warn!("metrics server ended: {join}"),
    }
    Ok(())
}

/// When, after a `die`, its stack is looked at again. The engine sends
/// `die` before it records the exit (it releases the container's network
/// first), so a look right after it may still find the container listed
/// as running: about 80 ms on an idle engine, more under load. After a
/// `stop` a `stop` event follows, after `rm -f` a `destroy`; after a kill,
/// or a crash of a container without a restart policy, nothing does.
const AFTER_DEATH: [Duration; 3] = [
    Duration::from_millis(150),
    Duration::from_millis(500),
    Duration::from_millis(2000),
];

/// Passes a `die` on to the controller again at each of [`AFTER_DEATH`].
fn look_again_after_death(controller: &Arc<Controller>, event: EngineEvent) {
    let controller = Arc::clone(controller);
    let died = tokio::time::Instant::now();
    tokio::spawn(async move {
        for after in AFTER_DEATH {
            tokio::time::sleep_until(died + after).await;
            controller.on_event(&event);
        }
    });
}

/// Follows the engine's events for as long as it runs, reconnecting with
/// backoff when the stream ends; after each reconnection every stack is
/// resynced, since events in the gap were lost.
async fn follow_events(controller: &Arc<Controller>, backend: &dyn Backend) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut jitter = Jitter::from_clock();
    let mut first = true;
    loop {
        let mut stream = backend.events();
        if !first {
            controller.resync_all();
        }
        first = false;
        let mut received = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    received = true;
                    backoff.reset();
                    controller.on_event(&event);
                    if event.kind == EventKind::Died {
                        look_again_after_death(controller, event);
                    }
                }
                Err(error) => {
                    tracing::warn!("engine events: {error}");
                    break;
                }
            }
        }
        if !received {
            tokio::time::sleep(backoff.next_delay(jitter.unit())).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::docker::fake::FakeBackend;
    use crate::plan::ContainerState;

    #[tokio::test(start_paused = true)]
    async fn a_death_is_looked_at_again_once_the_engine_has_recorded_it() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("demo");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            project.join("compose.yaml"),
            "services:\n  web:\n    image: busybox\n    restart: always\n",
        )
        .unwrap();
        let fake = Arc::new(FakeBackend::new());
        fake.add_image("busybox");
        let backend: Arc<dyn Backend> = fake.clone();
        let controller = Controller::new(backend, Metrics::new(), ControllerOptions::default());
        let origin = Origin::ComposeDir {
            dir: project.canonicalize().unwrap(),
        };
        controller.set_desired(source::load(&origin).unwrap());
        let queue = controller.queue();
        assert_eq!(queue.next().await.as_deref(), Some("demo"));
        controller.reconcile("demo").await;
        queue.done("demo");
        while queue.due("demo").is_some() {
            let _ = queue.next().await;
            queue.done("demo");
        }

        let events = {
            let controller = Arc::clone(&controller);
            let fake = Arc::clone(&fake);
            tokio::spawn(async move { follow_events(&controller, fake.as_ref()).await })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        let died = tokio::time::Instant::now();
        fake.set_state("demo-web-1", ContainerState::Exited(137), None);
        // The event itself, then each look again: every one a trigger of
        // its own, though the first found nothing to do.
        let mut looks = Vec::new();
        for look in 0..4 {
            let next = tokio::time::timeout(Duration::from_secs(5), queue.next()).await;
            assert_eq!(next.ok().flatten().as_deref(), Some("demo"), "look {look}");
            looks.push(tokio::time::Instant::now() - died);
            queue.done("demo");
        }
        let millis: Vec<u128> = looks.iter().map(Duration::as_millis).collect();
        assert!(millis[0] < 150, "{millis:?}");
        assert!((150..500).contains(&millis[1]), "{millis:?}");
        assert!((500..2000).contains(&millis[2]), "{millis:?}");
        assert!(millis[3] >= 2000, "{millis:?}");
        events.abort();
    }
}
