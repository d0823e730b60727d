//! What every fuzz target shares: a scratch directory the fuzzed files are
//! written to (the loader reads files, as `stackd config` does) and the
//! options a load runs with.

// Each target uses only part of what is shared here.
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use stackd::load::LoadOptions;

/// One directory per fuzzing process, in memory when /dev/shm exists.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let builder = tempfile::Builder::new()
            .prefix("stackd-fuzz-")
            .tempdir_in(shm);
        builder
            .or_else(|_| tempfile::tempdir())
            .expect("a scratch directory for fuzzed files")
    })
    .path()
}

/// Writes `bytes` to `name` in the scratch directory and returns its path.
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("writing a fuzzed file");
    path
}

/// A fixed environment: a few variables, one empty, one long.
pub fn environment() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("HOME".to_string(), scratch().display().to_string());
    env.insert("A".to_string(), "1".to_string());
    env.insert("EMPTY".to_string(), String::new());
    env.insert("TAG".to_string(), "1.27-alpine".to_string());
    env.insert("LONG".to_string(), "x".repeat(4096));
    env
}

/// Load options for `files`, relative to the scratch directory.
pub fn options(files: Vec<PathBuf>) -> LoadOptions {
    LoadOptions {
        files,
        working_dir: scratch().to_path_buf(),
        environment: environment(),
        ..LoadOptions::default()
    }
}

/// Splits fuzz input at the first `\0---\0` separator (two files in one input).
pub fn split_two(data: &[u8]) -> (&[u8], &[u8]) {
    const SEPARATOR: &[u8] = b"\0---\0";
    match data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        Some(at) => (&data[..at], &data[at + SEPARATOR.len()..]),
        None => (data, &[]),
    }
}
