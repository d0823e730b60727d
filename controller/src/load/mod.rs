//! Compose files → [`crate::model::Project`]: YAML, interpolation, `.env`,
//! `-f` merging, `extends`, `include`, profiles, normalization, validation.
use std::collections::BTreeMap;
use std::path::PathBuf;

pub mod canonical;
pub mod yaml;

use crate::model::Project;

/// What the caller asks to load: the CLI's global options plus the
/// process environment.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files in order; empty means "find compose.yaml & co. in the working dir".
    pub files: Vec<PathBuf>,
    /// `-p`; wins over `COMPOSE_PROJECT_NAME` and the top-level `name:`.
    pub project_name: Option<String>,
    /// `--profile`, in addition to `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// `--env-file`; empty means `<project dir>/.env` when it exists.
    pub env_files: Vec<PathBuf>,
    /// `--project-directory`; defaults to the directory of the first file.
    pub project_directory: Option<PathBuf>,
    /// The working directory relative paths on the command line resolve against.
    pub working_dir: PathBuf,
    /// The process environment (wins over `.env`).
    pub environment: BTreeMap<String, String>,
}

/// A project loaded without error, with the warnings the load produced.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The normalized project.
    pub project: Project,
    /// Non-fatal findings (unset variables, obsolete `version`, ...).
    pub warnings: Vec<String>,
}

/// Why a project failed to load. Display starts with `file:line:col:` whenever
/// the problem has a place in a file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Placeholder until the loader lands.
    #[error("not implemented")]
    NotImplemented,
}

/// Loads, merges and normalizes a compose project.
pub fn load_project(_options: &LoadOptions) -> Result<Loaded, LoadError> {
    Err(LoadError::NotImplemented)
}
