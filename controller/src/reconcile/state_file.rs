//! State files: one YAML file per stack (`<state dir>/<stack>.yaml`) holding
//! its [`StackStatus`], replaced atomically so a reader (or a crash) never
//! sees half a file. `stackd watch` writes them, `stackd status` reads them.
use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::status::{self, StackStatus};

/// Why a state file could not be written, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// The stack's name cannot be a file name (empty, a path, or hidden).
    #[error("stack name {stack:?} cannot name a state file")]
    InvalidStackName {
        /// The name.
        stack: String,
    },
    /// The state directory could not be created.
    #[error("{}: cannot create the state directory", dir.display())]
    CreateDirFailed {
        /// The directory.
        dir: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The status could not be turned into YAML.
    #[error("cannot write the status of stack {stack:?}")]
    Unserializable {
        /// The stack.
        stack: String,
        /// Why.
        #[source]
        source: status::Error,
    },
    /// The temporary file could not be written and synced.
    #[error("{}: cannot write", path.display())]
    WriteFailed {
        /// The temporary file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The temporary file could not be renamed over the state file.
    #[error("{}: cannot replace it with {}", to.display(), from.display())]
    RenameFailed {
        /// The temporary file.
        from: PathBuf,
        /// The state file.
        to: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The state directory could not be listed.
    #[error("{}: cannot list the state directory", dir.display())]
    ListFailed {
        /// The directory.
        dir: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A state file could not be read.
    #[error("{}: cannot read", path.display())]
    ReadFailed {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A state file does not hold a status.
    #[error("{}: corrupt state file", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: status::Error,
    },
    /// A state file holds the status of a stack other than the one it is named for.
    #[error("{}: holds the status of stack {stack:?}", path.display())]
    NameMismatch {
        /// The file.
        path: PathBuf,
        /// The stack named inside.
        stack: String,
    },
    /// A state file could not be removed.
    #[error("{}: cannot remove", path.display())]
    RemoveFailed {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

impl StateFileError {
    /// A short label for metrics and status reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidStackName { .. } => "invalid_stack_name",
            Self::CreateDirFailed { .. } => "state_dir_create_failed",
            Self::Unserializable { .. } => "status_unserializable",
            Self::WriteFailed { .. } => "state_file_write_failed",
            Self::RenameFailed { .. } => "state_file_rename_failed",
            Self::ListFailed { .. } => "state_dir_list_failed",
            Self::ReadFailed { .. } => "state_file_read_failed",
            Self::Corrupt { .. } => "state_file_corrupt",
            Self::NameMismatch { .. } => "state_file_name_mismatch",
            Self::RemoveFailed { .. } => "state_file_remove_failed",
        }
    }
}

/// Where `stackd watch` writes and `stackd status` reads state files when
/// `--state-dir` is not given: `$XDG_STATE_HOME/stackd`, else
/// `$HOME/.local/state/stackd` (the XDG default), else `.stackd` in the
/// working directory.
pub fn default_state_dir() -> PathBuf {
    default_state_dir_from(
        std::env::var_os("XDG_STATE_HOME").as_deref(),
        std::env::var_os("HOME").as_deref(),
    )
}

/// [`default_state_dir`] for the given `XDG_STATE_HOME` and `HOME`. As the
/// XDG spec says, a relative `XDG_STATE_HOME` is ignored.
pub fn default_state_dir_from(xdg_state_home: Option<&OsStr>, home: Option<&OsStr>) -> PathBuf {
    let absolute = |v: Option<&OsStr>| {
        v.map(Path::new)
            .filter(|p| p.is_absolute())
            .map(Path::to_path_buf)
    };
    if let Some(state) = absolute(xdg_state_home) {
        state.join("stackd")
    } else if let Some(home) = absolute(home) {
        home.join(".local/state/stackd")
    } else {
        PathBuf::from(".stackd")
    }
}

/// The state file of `stack` in `dir`.
pub fn path(dir: &Path, stack: &str) -> Result<PathBuf, StateFileError> {
    let usable = !stack.is_empty()
        && !stack.starts_with('.')
        && !stack.contains(['/', '\\', '\0'])
        && stack.len() <= 200;
    if usable {
        Ok(dir.join(format!("{stack}.yaml")))
    } else {
        Err(StateFileError::InvalidStackName {
            stack: stack.into(),
        })
    }
}

/// Writes the status to `<dir>/<stack>.yaml` atomically: the YAML goes to
/// `<dir>/.<stack>.yaml.tmp`, is synced to disk, then renamed over the
/// state file, and the directory is synced so the rename survives a crash.
/// Creates `dir` when missing.
pub fn write(dir: &Path, status: &StackStatus) -> Result<(), StateFileError> {
    let target = path(dir, &status.stack)?;
    let temp = dir.join(format!(".{}.yaml.tmp", status.stack));
    let yaml = status::to_yaml(status).map_err(|source| StateFileError::Unserializable {
        stack: status.stack.clone(),
        source,
    })?;
    create_private_dir(dir).map_err(|source| StateFileError::CreateDirFailed {
        dir: dir.to_path_buf(),
        source,
    })?;
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        // Set on the handle, so that a leftover temp file created with
        // other permissions is narrowed too, before anything is written.
        restrict_to_owner(&file)?;
        file.write_all(yaml.as_bytes())?;
        file.sync_all()
    })();
    if let Err(source) = written {
        // Best effort: a leftover temp file is skipped by readers anyway.
        let _ = std::fs::remove_file(&temp);
        return Err(StateFileError::WriteFailed { path: temp, source });
    }
    if let Err(source) = std::fs::rename(&temp, &target) {
        let _ = std::fs::remove_file(&temp);
        return Err(StateFileError::RenameFailed {
            from: temp,
            to: target,
            source,
        });
    }
    sync_dir(dir);
    Ok(())
}

/// Permissions of state files: the owner's alone. A status names files,
/// services and error text (never secret values), which is still nobody
/// else's business on a shared host.
pub const STATE_FILE_MODE: u32 = 0o600;
/// Permissions of a state directory stackd creates.
pub const STATE_DIR_MODE: u32 = 0o700;

#[cfg(unix)]
fn restrict_to_owner(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(STATE_FILE_MODE))
}

#[cfg(not(unix))]
fn restrict_to_owner(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

/// Creates `dir` (and missing parents) readable by the owner only; an
/// existing directory is left as it is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(STATE_DIR_MODE);
    }
    builder.create(dir)
}

/// Makes a rename in `dir` durable. Failing to is not an error: the file
/// is complete either way, and some file systems refuse to sync directories.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// The status of `stack`, or `None` when it has no state file.
pub fn read(dir: &Path, stack: &str) -> Result<Option<StackStatus>, StateFileError> {
    let file = path(dir, stack)?;
    match std::fs::read_to_string(&file) {
        Ok(text) => parse(&file, stack, &text).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateFileError::ReadFailed { path: file, source }),
    }
}

/// Every status in `dir`, sorted by stack name; an empty list when `dir`
/// does not exist. Temporary files (`.<stack>.yaml.tmp`) and anything not
/// named `<stack>.yaml` are skipped; a state file that does not parse is an
/// error naming it.
pub fn read_all(dir: &Path) -> Result<Vec<StackStatus>, StateFileError> {
    let list_failed = |source| StateFileError::ListFailed {
        dir: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(list_failed(source)),
    };
    let mut statuses = Vec::new();
    for entry in entries {
        let entry = entry.map_err(list_failed)?;
        let name = entry.file_name();
        let Some(stack) = name.to_str().and_then(|n| n.strip_suffix(".yaml")) else {
            continue;
        };
        if stack.is_empty() || stack.starts_with('.') {
            continue;
        }
        let file = entry.path();
        if !file.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|source| StateFileError::ReadFailed {
            path: file.clone(),
            source,
        })?;
        statuses.push(parse(&file, stack, &text)?);
    }
    statuses.sort_by(|a, b| a.stack.cmp(&b.stack));
    Ok(statuses)
}

fn parse(file: &Path, stack: &str, text: &str) -> Result<StackStatus, StateFileError> {
    let status = status::from_yaml(text).map_err(|source| StateFileError::Corrupt {
        path: file.to_path_buf(),
        source,
    })?;
    if status.stack != stack {
        return Err(StateFileError::NameMismatch {
            path: file.to_path_buf(),
            stack: status.stack,
        });
    }
    Ok(status)
}

/// Removes the state file of `stack` (and a leftover temporary file);
/// nothing to remove is not an error.
pub fn remove(dir: &Path, stack: &str) -> Result<(), StateFileError> {
    let file = path(dir, stack)?;
    let _ = std::fs::remove_file(dir.join(format!(".{stack}.yaml.tmp")));
    match std::fs::remove_file(&file) {
        Ok(()) => {
            sync_dir(dir);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateFileError::RemoveFailed { path: file, source }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::status::{LastError, ServiceStatus};

    const NOW: &str = "2026-11-25T16:30:00Z";

    fn status(stack: &str) -> StackStatus {
        let mut s = StackStatus::new(stack, &format!("stacks/{stack}.yaml"), &NOW.into());
        s.observe_spec("h1");
        s.ready(
            BTreeMap::from([(
                "web".into(),
                ServiceStatus {
                    desired: 1,
                    ready: 1,
                    image: "busybox".into(),
                },
            )]),
            &NOW.into(),
        );
        s
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_written_status_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        write(&state, &status("web")).unwrap();
        assert_eq!(names(&state), ["web.yaml"], "no temp file is left");
        assert_eq!(read(&state, "web").unwrap(), Some(status("web")));
        assert_eq!(read(&state, "other").unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn state_files_are_written_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        // A leftover temp file from a crash, readable by everyone.
        std::fs::create_dir(&dir).unwrap();
        let temp = dir.join(".a.yaml.tmp");
        std::fs::write(&temp, "old").unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&dir, &status("a")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("a.yaml")), STATE_FILE_MODE);
        assert!(!temp.exists());

        let fresh = root.path().join("new/state");
        write(&fresh, &status("b")).unwrap();
        assert_eq!(mode(&fresh.join("b.yaml")), STATE_FILE_MODE);
        assert_eq!(mode(&fresh), STATE_DIR_MODE);
    }

    #[test]
    fn writing_again_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = status("web");
        write(dir.path(), &s).unwrap();
        s.stalled(
            "LoadFailed",
            LastError::new("compose.yaml:3:1: bad", &NOW.into()),
            &NOW.into(),
        );
        write(dir.path(), &s).unwrap();
        assert_eq!(read(dir.path(), "web").unwrap(), Some(s));
        assert_eq!(names(dir.path()), ["web.yaml"]);
    }

    #[test]
    fn read_all_lists_stacks_by_name_and_skips_temp_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for stack in ["zeta", "alpha", "mid"] {
            write(dir.path(), &status(stack)).unwrap();
        }
        std::fs::write(dir.path().join(".alpha.yaml.tmp"), "half a fi").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let stacks: Vec<String> = read_all(dir.path())
            .unwrap()
            .into_iter()
            .map(|s| s.stack)
            .collect();
        assert_eq!(stacks, ["alpha", "mid", "zeta"]);
    }

    #[test]
    fn a_missing_state_dir_holds_no_stacks() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_all(&dir.path().join("never-written"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &status("good")).unwrap();
        std::fs::write(dir.path().join("bad.yaml"), "stack: [\n").unwrap();
        let err = read_all(dir.path()).unwrap_err();
        assert_eq!(err.reason(), "state_file_corrupt");
        assert!(err.to_string().contains("bad.yaml"), "{err}");
        assert!(
            read(dir.path(), "good").unwrap().is_some(),
            "others still read"
        );
    }

    #[test]
    fn a_file_holding_another_stacks_status_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &status("a")).unwrap();
        std::fs::rename(dir.path().join("a.yaml"), dir.path().join("b.yaml")).unwrap();
        let err = read(dir.path(), "b").unwrap_err();
        assert_eq!(err.reason(), "state_file_name_mismatch");
    }

    #[test]
    fn remove_deletes_the_file_and_forgives_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &status("web")).unwrap();
        std::fs::write(dir.path().join(".web.yaml.tmp"), "x").unwrap();
        remove(dir.path(), "web").unwrap();
        assert!(names(dir.path()).is_empty());
        remove(dir.path(), "web").unwrap();
    }

    #[test]
    fn names_that_are_paths_or_hidden_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for stack in ["", "../etc", "a/b", ".hidden", "a\\b"] {
            let err = write(dir.path(), &status(stack)).unwrap_err();
            assert_eq!(err.reason(), "invalid_stack_name", "{stack:?}");
            assert!(remove(dir.path(), stack).is_err());
        }
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_write_that_cannot_complete_leaves_the_old_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &status("web")).unwrap();
        // A directory where the temp file goes makes the write fail.
        std::fs::create_dir(dir.path().join(".web.yaml.tmp")).unwrap();
        let mut changed = status("web");
        changed.observe_spec("h2");
        let err = write(dir.path(), &changed).unwrap_err();
        assert_eq!(err.reason(), "state_file_write_failed");
        assert_eq!(read(dir.path(), "web").unwrap(), Some(status("web")));
    }

    #[test]
    fn the_default_state_dir_follows_xdg() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert_eq!(
            default_state_dir_from(os("/var/state"), os("/home/u")),
            PathBuf::from("/var/state/stackd")
        );
        assert_eq!(
            default_state_dir_from(os("relative"), os("/home/u")),
            PathBuf::from("/home/u/.local/state/stackd")
        );
        assert_eq!(default_state_dir_from(None, None), PathBuf::from(".stackd"));
    }
}
