//! The file watcher: DIR recursively, plus the folders of files outside it
//! that stacks read, debounced, sending each batch of changed paths over a
//! channel. Watching folders rather than files is what makes editors that
//! save by writing a temporary file and renaming it over the original
//! (vim, `sed -i`) work: the rename is an event in the folder.
//!
//! The debouncing is a thread that sleeps on the event channel: an idle
//! controller left running for months wakes for no timer.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind, MetadataKind, ModifyKind};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc::UnboundedSender;

use super::discover::skipped_dir;
use super::index::normalize;
use super::Error;

/// How long the watched folders must stay quiet before a batch is sent: an editor's
/// save (write temp, rename, change mode) takes a few milliseconds and
/// arrives as one batch; every millisecond more is added to the time from
/// save to reconcile.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The longest a batch is held while events keep coming (a checkout
/// writing thousands of files): changes are passed on at least this often.
const LONGEST_BATCH: Duration = Duration::from_secs(1);

/// Watches DIR and extra files; dropping it stops the watching.
pub struct Watcher {
    watcher: RecommendedWatcher,
    root: PathBuf,
    /// Folders outside DIR watched for `extra`.
    extra_dirs: BTreeSet<PathBuf>,
    /// Files outside DIR whose events are passed on (shared with the
    /// event handler, which drops the other files of their folders).
    extra: Arc<Mutex<BTreeSet<PathBuf>>>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("root", &self.root)
            .field("extra_dirs", &self.extra_dirs)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// Starts watching `dir` recursively. Each batch sent holds absolute,
    /// deduplicated paths below the canonical form of `dir` (or files given
    /// to [`Watcher::watch_extra`]); paths in hidden folders, `target` and
    /// `node_modules` are left out, as discovery leaves them out. When the
    /// system dropped events (queue overflow) or reported an error, the
    /// batch holds `dir` itself: everything may have changed.
    pub fn start(dir: &Path, tx: UnboundedSender<Vec<PathBuf>>) -> Result<Self, Error> {
        let root = std::fs::canonicalize(dir).map_err(|source| Error::Unreadable {
            path: dir.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(Error::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let extra: Arc<Mutex<BTreeSet<PathBuf>>> = Arc::default();
        let filter = Filter {
            root: root.clone(),
            extra: extra.clone(),
        };
        let watch_failed = |source| Error::WatchFailed {
            path: root.clone(),
            source,
        };
        let (raw_tx, raw_rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            // The debouncing thread is gone only when the watcher is.
            let _ = raw_tx.send(event);
        })
        .map_err(watch_failed)?;
        std::thread::Builder::new()
            .name("stackd-debounce".into())
            .spawn(move || debounce(&raw_rx, &filter, &tx))
            .map_err(|source| watch_failed(notify::Error::io(source)))?;
        watcher
            .watch(&root, RecursiveMode::Recursive)
            .map_err(watch_failed)?;
        Ok(Watcher {
            watcher,
            root,
            extra_dirs: BTreeSet::new(),
            extra,
        })
    }

    /// The canonical form of the watched directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the files outside DIR that are watched exactly `paths`' (those
    /// inside DIR are watched already): their folders are watched, and
    /// folders no longer needed are let go. Call it with every file of every
    /// stack (`Index::all_files`) after loads. A file whose folder does not
    /// exist is not watched until a later call finds the folder.
    pub fn watch_extra(&mut self, paths: &BTreeSet<PathBuf>) -> Result<(), Error> {
        let outside: BTreeSet<PathBuf> = paths
            .iter()
            .map(|p| normalize(p))
            .filter(|p| !p.starts_with(&self.root))
            .collect();
        let wanted: BTreeSet<PathBuf> = outside
            .iter()
            .filter_map(|p| p.parent())
            .filter(|d| d.is_dir())
            .map(Path::to_path_buf)
            .collect();
        if let Ok(mut extra) = self.extra.lock() {
            *extra = outside;
        }
        for dir in self.extra_dirs.difference(&wanted) {
            // A folder that went away is no longer watched anyway.
            let _ = self.watcher.unwatch(dir);
        }
        let mut watched = BTreeSet::new();
        let mut failure = None;
        for dir in &wanted {
            if self.extra_dirs.contains(dir) {
                watched.insert(dir.clone());
                continue;
            }
            match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    watched.insert(dir.clone());
                }
                Err(source) => {
                    failure.get_or_insert(Error::WatchFailed {
                        path: dir.clone(),
                        source,
                    });
                }
            }
        }
        self.extra_dirs = watched;
        failure.map_or(Ok(()), Err)
    }
}

/// Gathers events until none came for [`DEBOUNCE`] (or for
/// [`LONGEST_BATCH`] in all) and sends the paths `filter` keeps, until the
/// watcher (the sending side of `events`) or the receiver of `tx` is gone.
fn debounce(
    events: &mpsc::Receiver<notify::Result<Event>>,
    filter: &Filter,
    tx: &UnboundedSender<Vec<PathBuf>>,
) {
    while let Ok(first) = events.recv() {
        let started = Instant::now();
        let mut batch = vec![first];
        let mut watcher_gone = false;
        loop {
            let left = LONGEST_BATCH.saturating_sub(started.elapsed());
            match events.recv_timeout(DEBOUNCE.min(left)) {
                Ok(event) => batch.push(event),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    watcher_gone = true;
                    break;
                }
            }
        }
        let paths = filter.batch(batch);
        // The receiver going away means the controller is stopping.
        let delivered = paths.is_empty() || tx.send(paths).is_ok();
        if !delivered || watcher_gone {
            return;
        }
    }
}

/// Decides which reported paths are passed on.
struct Filter {
    root: PathBuf,
    extra: Arc<Mutex<BTreeSet<PathBuf>>>,
}

impl Filter {
    fn batch(&self, events: Vec<notify::Result<Event>>) -> Vec<PathBuf> {
        let mut paths = BTreeSet::new();
        for event in events {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(%error, "file watcher error: searching the directory again");
                    paths.insert(self.root.clone());
                    continue;
                }
            };
            if event.need_rescan() {
                paths.insert(self.root.clone());
            }
            if !changes_content(&event.kind) {
                continue;
            }
            for path in &event.paths {
                if self.wanted(path) {
                    paths.insert(path.clone());
                }
            }
        }
        paths.into_iter().collect()
    }

    fn wanted(&self, path: &Path) -> bool {
        match path.strip_prefix(&self.root) {
            Ok(relative) => {
                let skipped = |name: &std::ffi::OsStr| name.to_str().is_some_and(skipped_dir);
                let in_skipped_folder = relative
                    .parent()
                    .is_some_and(|folders| folders.iter().any(skipped));
                let is_skipped_folder = relative.file_name().is_some_and(skipped) && path.is_dir();
                !in_skipped_folder && !is_skipped_folder
            }
            Err(_) => self
                .extra
                .lock()
                .is_ok_and(|extra| extra.contains(&normalize(path))),
        }
    }
}

/// Opening or reading a file changes nothing (and stackd's own loads open
/// every file: passing those on would loop).
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::Instant;

    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    use super::*;

    /// Generous: these check that events arrive, not how fast.
    const WAIT: Duration = Duration::from_secs(5);

    fn start(dir: &Path) -> (Watcher, UnboundedReceiver<Vec<PathBuf>>) {
        let (tx, rx) = unbounded_channel();
        (Watcher::start(dir, tx).unwrap(), rx)
    }

    /// Receives batches until one holds `path`; returns every path seen.
    async fn until_seen(rx: &mut UnboundedReceiver<Vec<PathBuf>>, path: &Path) -> Vec<PathBuf> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(batch)) => {
                    let done = batch.iter().any(|p| p == path);
                    seen.extend(batch);
                    if done {
                        return seen;
                    }
                }
                _ => panic!(
                    "no event for {} within {WAIT:?}; saw {seen:?}",
                    path.display()
                ),
            }
        }
    }

    fn root_of(tmp: &tempfile::TempDir) -> PathBuf {
        fs::canonicalize(tmp.path()).unwrap()
    }

    #[tokio::test]
    async fn a_created_modified_and_deleted_file_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_of(&tmp);
        let (_watcher, mut rx) = start(&root);
        let file = root.join("compose.yaml");
        fs::write(&file, "services: {}\n").unwrap();
        until_seen(&mut rx, &file).await;
        fs::write(&file, "services: {a: {image: x}}\n").unwrap();
        until_seen(&mut rx, &file).await;
        fs::remove_file(&file).unwrap();
        until_seen(&mut rx, &file).await;
    }

    #[tokio::test]
    async fn a_file_saved_by_renaming_a_temporary_file_over_it_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_of(&tmp);
        let file = root.join("app/stack.yaml");
        fs::create_dir(root.join("app")).unwrap();
        fs::write(&file, "a: 1\n").unwrap();
        let (_watcher, mut rx) = start(&root);
        // What vim (with backupcopy=no) and `sed -i` do.
        let temporary = root.join("app/.stack.yaml.tmp");
        fs::write(&temporary, "a: 2\n").unwrap();
        fs::rename(&temporary, &file).unwrap();
        until_seen(&mut rx, &file).await;
    }

    #[tokio::test]
    async fn files_in_a_new_folder_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_of(&tmp);
        let (_watcher, mut rx) = start(&root);
        fs::create_dir_all(root.join("new/deeper")).unwrap();
        until_seen(&mut rx, &root.join("new")).await;
        // The new folder is watched from now on.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let file = root.join("new/deeper/compose.yaml");
        fs::write(&file, "services: {}\n").unwrap();
        until_seen(&mut rx, &file).await;
    }

    #[tokio::test]
    async fn hidden_and_build_folders_and_reads_are_not_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_of(&tmp);
        for dir in [".stackd", "target", "node_modules"] {
            fs::create_dir(root.join(dir)).unwrap();
        }
        let read = root.join("compose.yaml");
        fs::write(&read, "services: {}\n").unwrap();
        let (_watcher, mut rx) = start(&root);
        for dir in [".stackd", "target", "node_modules"] {
            fs::write(root.join(dir).join("status.yaml"), "x: 1\n").unwrap();
        }
        fs::read_to_string(&read).unwrap();
        let marker = root.join("marker.env");
        fs::write(&marker, "X=1\n").unwrap();
        let seen = until_seen(&mut rx, &marker).await;
        assert_eq!(seen, [marker], "only the marker changed");
    }

    #[tokio::test]
    async fn a_folder_given_through_a_link_is_reported_by_its_real_path() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_of(&tmp);
        fs::create_dir(root.join("real")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        #[cfg(not(unix))]
        return;
        let (watcher, mut rx) = start(&root.join("link"));
        assert_eq!(watcher.root(), root.join("real"));
        fs::write(root.join("link/compose.yaml"), "services: {}\n").unwrap();
        until_seen(&mut rx, &root.join("real/compose.yaml")).await;
    }

    #[tokio::test]
    async fn an_extra_file_outside_the_folder_is_reported_but_not_its_neighbours() {
        let tmp = tempfile::tempdir().unwrap();
        let base = root_of(&tmp);
        let root = base.join("stacks");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir(base.join("shared")).unwrap();
        let shared = base.join("shared/common.env");
        let neighbour = base.join("shared/other.env");
        fs::write(&shared, "A=1\n").unwrap();
        let (mut watcher, mut rx) = start(&root);
        watcher
            .watch_extra(&BTreeSet::from([shared.clone(), root.join("inside.env")]))
            .unwrap();
        assert_eq!(watcher.extra_dirs, BTreeSet::from([base.join("shared")]));
        fs::write(&neighbour, "B=1\n").unwrap();
        // Saved by rename, as editors do.
        let temporary = base.join("shared/common.env.tmp");
        fs::write(&temporary, "A=2\n").unwrap();
        fs::rename(&temporary, &shared).unwrap();
        let seen = until_seen(&mut rx, &shared).await;
        assert!(!seen.contains(&neighbour), "{seen:?}");
        assert!(!seen.contains(&temporary), "{seen:?}");

        // Once no stack reads it, its folder is let go.
        watcher.watch_extra(&BTreeSet::new()).unwrap();
        assert!(watcher.extra_dirs.is_empty());
        fs::write(&shared, "A=3\n").unwrap();
        let marker = root.join("marker.env");
        fs::write(&marker, "X=1\n").unwrap();
        let seen = until_seen(&mut rx, &marker).await;
        assert!(!seen.contains(&shared), "{seen:?}");
    }

    #[tokio::test]
    async fn a_saved_env_file_reaches_its_stack_through_the_index() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_of(&tmp);
        let dir = root.join("app");
        fs::create_dir(&dir).unwrap();
        fs::write(
            dir.join("compose.yaml"),
            "services:\n  web:\n    image: busybox:${TAG}\n",
        )
        .unwrap();
        fs::write(dir.join(".env"), "TAG=1\n").unwrap();
        fs::create_dir(root.join("other")).unwrap();
        fs::write(
            root.join("other/compose.yaml"),
            "services:\n  web:\n    image: busybox\n",
        )
        .unwrap();
        let origins = super::super::discover(&root).unwrap();
        let (stacks, errors) =
            super::super::load_origins(&origins, &super::super::Settings::default());
        assert!(errors.is_empty(), "{errors:?}");
        let mut index = super::super::Index::new();
        for stack in &stacks {
            index.set(&stack.name, &stack.files);
        }
        let (_watcher, mut rx) = start(&root);
        fs::write(dir.join(".env"), "TAG=2\n").unwrap();
        let seen = until_seen(&mut rx, &dir.join(".env")).await;
        let affected = index.affected(&seen);
        assert_eq!(affected.stacks, BTreeSet::from(["app".to_owned()]));
        assert!(!affected.rescan);
    }
}
