//! Which stacks live under a directory: Stack manifests and compose project
//! folders, found by walking it (see the module docs of `source` for the
//! rules). Only manifests are read, and only to recognize them and to learn
//! which compose files they claim.
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Error, Origin};
use crate::load::environment::{clean_path, DEFAULT_FILE_NAMES};
use crate::load::yaml::{self, Node};

/// Folder names never searched: version control and build output, and
/// stackd's own state.
pub(super) fn skipped_dir(name: &str) -> bool {
    name.starts_with('.') || name == "target" || name == "node_modules"
}

/// Manifests larger than this are still recognized by their first bytes
/// (the header lines), but their `composeFiles` are not read.
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// The stacks under `dir`, sorted by path.
pub fn discover(dir: &Path) -> Result<Vec<Origin>, Error> {
    rediscover(dir, &[])
}

/// Like [`discover`], keeping the manifests in `known` (what the last
/// search found) whose file still exists even when it no longer reads as a
/// manifest: a manifest overwritten with an empty or broken file stays a
/// stack (whose load fails, leaving what runs alone) instead of vanishing,
/// and its folder stays a manifest folder.
pub fn rediscover(dir: &Path, known: &[Origin]) -> Result<Vec<Origin>, Error> {
    let root = std::fs::canonicalize(dir).map_err(|source| Error::Unreadable {
        path: dir.to_path_buf(),
        source,
    })?;
    if !root.is_dir() {
        return Err(Error::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let mut found = Found::default();
    let mut visited = BTreeSet::new();
    walk(&root, &mut visited, &mut found)?;
    for origin in known {
        if let Origin::Manifest { path } = origin {
            if path.starts_with(&root) && path.is_file() && !found.manifests.contains(path) {
                found.manifests.insert(path.clone());
            }
        }
    }

    let mut claimed: BTreeSet<PathBuf> = BTreeSet::new();
    let mut manifest_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for manifest in &found.manifests {
        if let Some(parent) = manifest.parent() {
            manifest_dirs.insert(parent.to_path_buf());
        }
        claimed.extend(compose_files_of(manifest));
    }
    let mut origins: Vec<Origin> = found
        .manifests
        .iter()
        .map(|path| Origin::Manifest { path: path.clone() })
        .collect();
    for dir in &found.compose_dirs {
        let owned = manifest_dirs.contains(dir)
            || DEFAULT_FILE_NAMES
                .iter()
                .any(|n| claimed.contains(&dir.join(n)));
        if !owned {
            origins.push(Origin::ComposeDir { dir: dir.clone() });
        }
    }
    origins.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(origins)
}

#[derive(Default)]
struct Found {
    manifests: BTreeSet<PathBuf>,
    compose_dirs: BTreeSet<PathBuf>,
}

/// A file or folder that went away during the walk is simply not there.
fn gone(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::NotFound
}

fn walk(dir: &Path, visited: &mut BTreeSet<PathBuf>, found: &mut Found) -> Result<(), Error> {
    // Symbolic links to folders are followed (as the watcher follows them),
    // but each real folder is searched once, so a link cycle ends.
    match std::fs::canonicalize(dir) {
        Ok(real) => {
            if !visited.insert(real) {
                return Ok(());
            }
        }
        Err(e) if gone(&e) => return Ok(()),
        Err(source) => {
            return Err(Error::Unreadable {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let unreadable = |source| Error::Unreadable {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(unreadable(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry.map_err(unreadable)?.file_name());
    }
    names.sort();
    let mut has_compose_file = false;
    for name in names {
        let Some(text) = name.to_str() else { continue };
        let path = dir.join(&name);
        // `metadata` follows links: a linked folder or file counts as one.
        let metadata = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if gone(&e) => continue,
            Err(source) => return Err(Error::Unreadable { path, source }),
        };
        if metadata.is_dir() {
            if !skipped_dir(text) {
                walk(&path, visited, found)?;
            }
            continue;
        }
        if !metadata.is_file() {
            continue;
        }
        if DEFAULT_FILE_NAMES.contains(&text) {
            has_compose_file = true;
        }
        if (text.ends_with(".yaml") || text.ends_with(".yml")) && is_manifest(&path)? {
            found.manifests.insert(path);
        }
    }
    if has_compose_file {
        found.compose_dirs.insert(dir.to_path_buf());
    }
    Ok(())
}

/// Whether a YAML file has a Stack manifest's header lines.
fn is_manifest(path: &Path) -> Result<bool, Error> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if gone(&e) => return Ok(false),
        Err(source) => {
            return Err(Error::Unreadable {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(crate::load::stack::has_stack_header(
        &String::from_utf8_lossy(&bytes),
    ))
}

/// The files a manifest's `spec.composeFiles` names, absolute; none when the
/// manifest cannot be parsed (its load will say why).
fn compose_files_of(manifest: &Path) -> Vec<PathBuf> {
    let Ok(bytes) = std::fs::read(manifest) else {
        return Vec::new();
    };
    let name: Arc<str> = Arc::from(manifest.display().to_string());
    let Ok(text) = yaml::decode_text(&bytes, &name) else {
        return Vec::new();
    };
    let Ok(documents) = yaml::parse_documents(&text, &name) else {
        return Vec::new();
    };
    let dir = manifest.parent().unwrap_or(manifest);
    documents
        .first()
        .and_then(|d| d.get("spec"))
        .and_then(|s| s.get("composeFiles"))
        .and_then(Node::as_seq)
        .map(|list| {
            list.iter()
                .filter_map(Node::as_str)
                .map(|p| clean_path(&dir.join(p)))
                .collect()
        })
        .unwrap_or_default()
}
