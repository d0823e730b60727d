//! Where desired state comes from in file mode (`stackd watch DIR`): which
//! stacks live under a directory ([`discover`]), loading one ([`load`]) or
//! all of them with name conflicts refused ([`load_all`]), which stacks a
//! changed file belongs to ([`Index`]), and the file watcher ([`Watcher`]).
//!
//! Under DIR, searched recursively (hidden folders, `target` and
//! `node_modules` skipped), a stack is either
//! - a Stack manifest: a `*.yaml`/`*.yml` file with top-level
//!   `apiVersion: stackd.dev/...` and `kind: Stack`, holding exactly one
//!   document; its model is inline (`spec.compose`) or in compose files
//!   relative to it (`spec.composeFiles`); or
//! - a compose project folder: a folder with `compose.yaml` (or
//!   `compose.yml`, `docker-compose.yaml`, `docker-compose.yml`), loaded as
//!   `docker compose` loads it from that folder (override file, `.env`).
//!
//! A folder holding a manifest is the manifest's: its compose files are no
//! stack of their own, nor are compose files a manifest names in
//! `spec.composeFiles`. Two stacks with one name are both refused.
//!
//! Every path is absolute, below the canonical form of DIR, so that the
//! paths the watcher reports match the ones loads record.
// A `SourceError` is larger than clippy's 128-byte bound, but the `Ok` side
// (`DesiredStack`, a whole project) is larger still: boxing the error would
// not make these results any smaller.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::docker::ProjectMeta;
use crate::load::environment::{clean_path, normalize_project_name, DEFAULT_FILE_NAMES};
use crate::load::{LoadError, LoadOptions};
use crate::model::Project;

mod discover;
mod index;
mod watcher;

#[cfg(test)]
mod tests;

pub use discover::{discover, rediscover};
pub use index::{Affected, Index};
pub use watcher::Watcher;

/// Where a stack is declared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A Stack manifest file.
    Manifest {
        /// The manifest (absolute).
        path: PathBuf,
    },
    /// A compose project folder.
    ComposeDir {
        /// The folder (absolute).
        dir: PathBuf,
    },
}

impl Origin {
    /// The manifest file or the project folder.
    pub fn path(&self) -> &Path {
        match self {
            Origin::Manifest { path } => path,
            Origin::ComposeDir { dir } => dir,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Manifest { path } => write!(f, "{}", path.display()),
            Origin::ComposeDir { dir } => write!(f, "{}/", dir.display()),
        }
    }
}

/// A stack loaded without error: what the controller converges.
#[derive(Debug, Clone)]
pub struct DesiredStack {
    /// The stack (and compose project) name: `metadata.name` of a manifest,
    /// the project name of a compose folder.
    pub name: String,
    /// Where it is declared.
    pub origin: Origin,
    /// The model, loaded with the checks that go beyond compose.
    pub project: Project,
    /// Working directory, config files and config hashes, for the labels.
    pub meta: ProjectMeta,
    /// `spec.suspend` (false for a compose folder).
    pub suspend: bool,
    /// `spec.prune` (true for a compose folder).
    pub prune: bool,
    /// SHA-256 (hex) of the model, `suspend`, `prune` and profiles in a
    /// canonical form: it changes exactly when what is asked for changes,
    /// not when a file is only reformatted.
    pub spec_hash: String,
    /// Every file the load read or looked for (absolute; for a symbolic link
    /// also its target): a change to any of them may change the stack.
    pub files: BTreeSet<PathBuf>,
    /// Non-fatal findings of the load.
    pub warnings: Vec<String>,
}

/// A stack that could not be loaded (or whose name another stack claims).
#[derive(Debug, Clone)]
pub struct SourceError {
    /// The stack's name as far as it can be told (a manifest's
    /// `metadata.name`, a compose folder's `name:` or folder name). It may be
    /// wrong for a broken file: match on `origin` to find the stack last
    /// loaded from there.
    pub stack: String,
    /// Where the stack is declared.
    pub origin: Origin,
    /// What to watch so that a fix is noticed: at least the entry file, and
    /// every file the load read or looked for before it failed.
    pub files: BTreeSet<PathBuf>,
    /// `parse`, `validate`, `interpolate`, `missing_file`, `conflict` or
    /// `other` (the `kind` label of `stackd_source_errors_total`).
    pub kind: &'static str,
    /// What is wrong, starting with `file:line:col:` when it has a place.
    pub error: String,
    /// File, line and column of the problem, when it has a place.
    pub location: Option<(PathBuf, u32, u32)>,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stack {:?} ({}): {}",
            self.stack, self.origin, self.error
        )
    }
}

/// Why the directory could not be searched or watched. A caller that gets
/// one must change nothing: stacks it cannot see are not stacks removed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A folder or file under DIR could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The folder or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// DIR is not a directory.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The file system watcher could not be set up or could not watch a path.
    #[error("cannot watch {}: {source}", path.display())]
    WatchFailed {
        /// The path.
        path: PathBuf,
        /// The watcher's error.
        #[source]
        source: notify::Error,
    },
}

impl Error {
    /// A short, stable name for metric labels and status reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Unreadable { .. } => "Unreadable",
            Error::NotADirectory { .. } => "NotADirectory",
            Error::WatchFailed { .. } => "WatchFailed",
        }
    }
}

/// What every load sees besides the files.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Variables for interpolation (a folder's `.env` adds to them).
    pub environment: BTreeMap<String, String>,
}

/// Variables that would make every folder load alike (the same files, the
/// same name, the same profiles): each folder decides them in its own `.env`.
const PER_PROJECT_VARIABLES: [&str; 3] =
    ["COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"];

impl Settings {
    /// The process environment (names and values that are UTF-8), without
    /// `COMPOSE_FILE`, `COMPOSE_PROJECT_NAME` and `COMPOSE_PROFILES`.
    pub fn from_process() -> Self {
        let environment = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| !PER_PROJECT_VARIABLES.contains(&k.as_str()))
            .collect();
        Settings { environment }
    }
}

/// Loads one stack with the process environment ([`Settings::from_process`]).
pub fn load(origin: &Origin) -> Result<DesiredStack, SourceError> {
    load_with(origin, &Settings::from_process())
}

/// Loads one stack. The name may differ from the last load of the same
/// origin (an edited `metadata.name` or `name:`).
pub fn load_with(origin: &Origin, settings: &Settings) -> Result<DesiredStack, SourceError> {
    match origin {
        Origin::Manifest { path } => load_manifest(origin, path, settings),
        Origin::ComposeDir { dir } => load_compose_dir(origin, dir, settings),
    }
}

fn load_manifest(
    origin: &Origin,
    path: &Path,
    settings: &Settings,
) -> Result<DesiredStack, SourceError> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = LoadOptions {
        working_dir: dir,
        environment: settings.environment.clone(),
        ..LoadOptions::default()
    };
    let mut files = BTreeSet::from([path.to_path_buf()]);
    let failed = |error: LoadError, files: BTreeSet<PathBuf>| {
        let stack = guess_manifest_name(path);
        from_load_error(stack, origin, files, &error)
    };
    let stack = match crate::load::stack::load_stack_manifest_tracked(path, &base, &mut files) {
        Ok(stack) => stack,
        Err(error) => return Err(failed(error, files)),
    };
    let project = stack.loaded.project;
    let spec_hash = spec_hash(&project, stack.suspend, stack.prune, &stack.profiles)
        .map_err(|error| other_error(&stack.name, origin, &files, error))?;
    Ok(DesiredStack {
        name: stack.name,
        origin: origin.clone(),
        meta: ProjectMeta::for_project(
            &project,
            &stack.options,
            &crate::load::project_environment(&stack.options),
        ),
        project,
        suspend: stack.suspend,
        prune: stack.prune,
        spec_hash,
        files: with_link_targets(stack.loaded.files_read),
        warnings: stack.loaded.warnings,
    })
}

fn load_compose_dir(
    origin: &Origin,
    dir: &Path,
    settings: &Settings,
) -> Result<DesiredStack, SourceError> {
    let mut files: BTreeSet<PathBuf> = DEFAULT_FILE_NAMES.iter().map(|n| dir.join(n)).collect();
    files.insert(dir.join(".env"));
    // Without one here, compose would search the parent folders and load
    // some other project under this folder's name.
    if !DEFAULT_FILE_NAMES.iter().any(|n| dir.join(n).is_file()) {
        return Err(SourceError {
            stack: guess_compose_name(dir),
            origin: origin.clone(),
            kind: "missing_file",
            error: format!(
                "{}: no compose file (compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml)",
                dir.display()
            ),
            location: None,
            files,
        });
    }
    let mut options = LoadOptions {
        working_dir: dir.to_path_buf(),
        environment: settings.environment.clone(),
        ..LoadOptions::default()
    };
    let loaded = match crate::load::load_project_strict_tracked(&options, None, &mut files) {
        Ok(loaded) => loaded,
        Err(error) => {
            return Err(from_load_error(
                guess_compose_name(dir),
                origin,
                files,
                &error,
            ))
        }
    };
    let project = loaded.project;
    // The labels name the files compose found, as `docker compose` writes them.
    let environment = match crate::load::environment::prepare(&options) {
        Ok(setup) => {
            options.files = setup.files;
            setup.env
        }
        Err(_) => options.environment.clone(),
    };
    let name = project.name.clone();
    let spec_hash = spec_hash(&project, false, true, &[])
        .map_err(|error| other_error(&name, origin, &files, error))?;
    Ok(DesiredStack {
        name,
        origin: origin.clone(),
        meta: ProjectMeta::for_project(&project, &options, &environment),
        project,
        suspend: false,
        prune: true,
        spec_hash,
        files: with_link_targets(loaded.files_read),
        warnings: loaded.warnings,
    })
}

fn from_load_error(
    stack: String,
    origin: &Origin,
    files: BTreeSet<PathBuf>,
    error: &LoadError,
) -> SourceError {
    let location = error.location();
    let mut files = files;
    if let Some((file, _, _)) = &location {
        if file.is_absolute() {
            files.insert(file.clone());
        }
    }
    if let LoadError::MissingFile { path, .. } = error {
        files.insert(clean_path(path));
    }
    SourceError {
        stack,
        origin: origin.clone(),
        files: with_link_targets(files),
        kind: error.reason(),
        error: error.to_string(),
        location,
    }
}

fn other_error(
    stack: &str,
    origin: &Origin,
    files: &BTreeSet<PathBuf>,
    error: serde_json::Error,
) -> SourceError {
    SourceError {
        stack: stack.to_owned(),
        origin: origin.clone(),
        files: files.clone(),
        kind: "other",
        error: format!("cannot hash the model: {error}"),
        location: None,
    }
}

/// Adds the target of every file that is a symbolic link: an edit to the
/// target is an edit to the stack, and it may live elsewhere.
fn with_link_targets(files: BTreeSet<PathBuf>) -> BTreeSet<PathBuf> {
    let mut out = files.clone();
    for file in files {
        let is_link = std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            if let Ok(target) = std::fs::canonicalize(&file) {
                out.insert(target);
            }
        }
    }
    out
}

/// The name a broken manifest most likely declares: `metadata.name` when
/// the YAML still parses or the line can be found, else the folder's name.
fn guess_manifest_name(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    metadata_name(&text)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| folder_name(path.parent().unwrap_or(path)))
}

/// `metadata.name` read from lines: `metadata: {name: x}` or a `name:` line
/// indented under `metadata:`.
fn metadata_name(text: &str) -> Option<String> {
    let unquote = |v: &str| {
        v.split(" #")
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_owned()
    };
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("metadata:") else {
            continue;
        };
        let rest = rest.trim();
        if let Some(flow) = rest.strip_prefix('{') {
            let inner = flow.split('}').next().unwrap_or_default();
            return inner.split(',').find_map(|pair| {
                let (key, value) = pair.split_once(':')?;
                (key.trim() == "name").then(|| unquote(value))
            });
        }
        for nested in lines.by_ref() {
            if !nested.starts_with([' ', '\t']) && !nested.trim().is_empty() {
                return None;
            }
            if let Some(value) = nested.trim_start().strip_prefix("name:") {
                return Some(unquote(value));
            }
        }
    }
    None
}

/// The project name a broken compose folder most likely has: a literal
/// top-level `name:`, else the folder's name, normalized as compose does.
fn guess_compose_name(dir: &Path) -> String {
    let declared = DEFAULT_FILE_NAMES
        .iter()
        .find_map(|n| std::fs::read_to_string(dir.join(n)).ok())
        .and_then(|text| crate::load::stack::top_level_value(&text, "name"))
        .filter(|n| !n.contains('$'))
        .map(|n| normalize_project_name(&n))
        .filter(|n| !n.is_empty());
    declared.unwrap_or_else(|| folder_name(dir))
}

fn folder_name(dir: &Path) -> String {
    normalize_project_name(
        &dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

/// SHA-256 (hex) of the canonical JSON of the model with `suspend`, `prune`
/// and the profiles: object keys sorted, so that neither the order of keys
/// in a file nor its layout, quoting or comments change it.
pub fn spec_hash(
    project: &Project,
    suspend: bool,
    prune: bool,
    profiles: &[String],
) -> Result<String, serde_json::Error> {
    let mut profiles = profiles.to_vec();
    profiles.sort();
    profiles.dedup();
    let document = serde_json::json!({
        "model": serde_json::to_value(project)?,
        "suspend": suspend,
        "prune": prune,
        "profiles": profiles,
    });
    let bytes = serde_json::to_vec(&sorted(document))?;
    Ok(format!("{:x}", Sha256::digest(bytes)))
}

fn sorted(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Loads every stack under `dir` ([`discover`], then [`load_origins`]) with
/// the process environment. An error means `dir` could not be searched:
/// nothing may be concluded about which stacks exist.
pub fn load_all(dir: &Path) -> Result<(Vec<DesiredStack>, Vec<SourceError>), Error> {
    let origins = discover(dir)?;
    Ok(load_origins(&origins, &Settings::from_process()))
}

/// Loads each origin, then refuses names claimed twice ([`check_conflicts`]).
pub fn load_origins(
    origins: &[Origin],
    settings: &Settings,
) -> (Vec<DesiredStack>, Vec<SourceError>) {
    let mut stacks = Vec::new();
    let mut errors = Vec::new();
    for origin in origins {
        match load_with(origin, settings) {
            Ok(stack) => stacks.push(stack),
            Err(error) => errors.push(error),
        }
    }
    check_conflicts(stacks, errors)
}

/// Every stack whose name another stack or error also claims becomes a
/// `conflict` error naming all the claimants: none of them is applied (an
/// alternation between two files would flip the running stack back and
/// forth). A broken file counts as a claimant under its best-guess name.
pub fn check_conflicts(
    stacks: Vec<DesiredStack>,
    errors: Vec<SourceError>,
) -> (Vec<DesiredStack>, Vec<SourceError>) {
    let mut claims: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for stack in &stacks {
        claims
            .entry(stack.name.clone())
            .or_default()
            .push(stack.origin.to_string());
    }
    for error in &errors {
        claims
            .entry(error.stack.clone())
            .or_default()
            .push(error.origin.to_string());
    }
    let message = |name: &str| {
        let mut by = claims.get(name).cloned().unwrap_or_default();
        by.sort();
        format!(
            "stack name {name:?} is declared by {}: none is applied until only one remains",
            by.join(" and ")
        )
    };
    let contested = |name: &str| claims.get(name).is_some_and(|c| c.len() > 1);
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for stack in stacks {
        if contested(&stack.name) {
            refused.push(SourceError {
                error: message(&stack.name),
                stack: stack.name,
                origin: stack.origin,
                files: stack.files,
                kind: "conflict",
                location: None,
            });
        } else {
            kept.push(stack);
        }
    }
    for error in errors {
        if contested(&error.stack) {
            refused.push(SourceError {
                error: format!("{}; {}", message(&error.stack), error.error),
                kind: "conflict",
                ..error
            });
        } else {
            refused.push(error);
        }
    }
    (kept, refused)
}
