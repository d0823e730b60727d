//! The file watcher: DIR recursively, plus the folders of files outside it
//! that stacks read, debounced, sending each batch of changed paths over a
//! channel. Watching folders rather than files is what makes editors that
//! save by writing a temporary file and renaming it over the original
//! (vim, `sed -i`) work: the rename is an event in the folder.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, MetadataKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use tokio::sync::mpsc::UnboundedSender;

use super::discover::skipped_dir;
use super::index::normalize;
use super::Error;

/// How long a path must stay quiet before its events are sent: an editor's
/// save (write temp, rename, change mode) arrives as one batch.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Watches DIR and extra files; dropping it stops the watching.
pub struct Watcher {
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
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
        let handler = move |result: DebounceEventResult| {
            let paths = filter.batch(result);
            if !paths.is_empty() {
                // The receiver going away means the controller is stopping.
                let _ = tx.send(paths);
            }
        };
        let watch_failed = |source| Error::WatchFailed {
            path: root.clone(),
            source,
        };
        let mut debouncer = new_debouncer(DEBOUNCE, None, handler).map_err(watch_failed)?;
        debouncer
            .watch(&root, RecursiveMode::Recursive)
            .map_err(watch_failed)?;
        Ok(Watcher {
            debouncer,
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
            let _ = self.debouncer.unwatch(dir);
        }
        let mut watched = BTreeSet::new();
        let mut failure = None;
        for dir in &wanted {
            if self.extra_dirs.contains(dir) {
                watched.insert(dir.clone());
                continue;
            }
            match self.debouncer.watch(dir, RecursiveMode::NonRecursive) {
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

/// Decides which reported paths are passed on.
struct Filter {
    root: PathBuf,
    extra: Arc<Mutex<BTreeSet<PathBuf>>>,
}

impl Filter {
    fn batch(&self, result: DebounceEventResult) -> Vec<PathBuf> {
        let mut paths = BTreeSet::new();
        match result {
            Ok(events) => {
                for event in events {
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
            }
            Err(errors) => {
                for error in errors {
                    tracing::warn!(%error, "file watcher error: searching the directory again");
                }
                paths.insert(self.root.clone());
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
