//! The project's surroundings before any compose file is read: which files,
//! which directory, which variables (process environment, `.env`,
//! `--env-file`), which profiles, and the project name, decided in the order
//! docker compose decides them.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::dotenv;
use super::LoadError;
use super::LoadOptions;

/// Compose file names looked for when no `-f` is given, in order of preference.
pub const DEFAULT_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
/// Override files picked up next to a default compose file.
pub const DEFAULT_OVERRIDE_NAMES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// Everything decided before the compose files are parsed.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Absolute paths of the compose files, in merge order.
    pub files: Vec<PathBuf>,
    /// The project directory: relative paths in the files resolve against it.
    pub working_dir: PathBuf,
    /// Variables for interpolation: the process environment wins over `.env`.
    pub env: BTreeMap<String, String>,
    /// Active profiles.
    pub profiles: Vec<String>,
    /// The name given with `-p` or `COMPOSE_PROJECT_NAME`, which wins over `name:`.
    pub imperative_name: Option<String>,
}

/// Lower-cases and drops every character outside `[a-z0-9_-]`, then trims
/// leading `_`/`-`: compose's rule for deriving a project name.
pub fn normalize_project_name(name: &str) -> String {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    clean_path(&joined)
}

/// Lexically cleans a path as Go's `filepath.Clean` does (no symlink resolution).
pub fn clean_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// Decides files, directory, variables, profiles and the imperative name.
pub fn prepare(options: &LoadOptions) -> Result<Setup, LoadError> {
    prepare_tracked(options, &mut BTreeSet::new())
}

/// Like [`prepare`], adding to `seen` every file it read or looked for
/// (`.env` files, the default compose and override names of the project
/// folder, `COMPOSE_FILE` entries), whether it succeeds or not.
pub fn prepare_tracked(
    options: &LoadOptions,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<Setup, LoadError> {
    let cwd = &options.working_dir;
    let mut env = options.environment.clone();
    env.entry("PWD".to_string())
        .or_insert_with(|| cwd.display().to_string());

    let explicit_dir = options.project_directory.as_ref().map(|d| absolute(cwd, d));
    let cli_files: Vec<PathBuf> = options.files.iter().map(|f| absolute(cwd, f)).collect();

    // First pass: the .env of the directory known so far (the project
    // directory, the first -f file's directory, or the cwd) may set COMPOSE_FILE.
    let first_dir = explicit_dir
        .clone()
        .or_else(|| {
            cli_files
                .first()
                .and_then(|f| f.parent().map(Path::to_path_buf))
        })
        .unwrap_or_else(|| cwd.clone());
    load_env_files(options, &first_dir, &mut env, seen)?;

    let files = if !cli_files.is_empty() {
        cli_files
    } else if let Some(list) = env.get("COMPOSE_FILE").filter(|v| !v.is_empty()) {
        let separator = env
            .get("COMPOSE_PATH_SEPARATOR")
            .cloned()
            .unwrap_or_else(|| ":".into());
        let mut files = Vec::new();
        for part in list.split(separator.as_str()) {
            let path = absolute(cwd, Path::new(part));
            seen.insert(path.clone());
            if !path.exists() {
                return Err(LoadError::FileNotFound { path });
            }
            files.push(path);
        }
        files
    } else {
        discover_default_files(explicit_dir.as_deref().unwrap_or(cwd), seen)?
    };

    let working_dir = explicit_dir
        .or_else(|| {
            files
                .first()
                .and_then(|f| f.parent().map(Path::to_path_buf))
        })
        .unwrap_or_else(|| cwd.clone());
    // Second pass: a project directory found only now may have its own .env.
    load_env_files(options, &working_dir, &mut env, seen)?;

    let profiles = if options.profiles.is_empty() {
        env.get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        options.profiles.clone()
    };

    let imperative_name = match &options.project_name {
        Some(name) => Some(name.clone()),
        None => env
            .get("COMPOSE_PROJECT_NAME")
            .filter(|n| !n.is_empty())
            .cloned(),
    };
    if let Some(name) = &imperative_name {
        if normalize_project_name(name) != *name || name.is_empty() {
            return Err(LoadError::InvalidProjectName { name: name.clone() });
        }
    }

    Ok(Setup {
        files,
        working_dir,
        env,
        profiles,
        imperative_name,
    })
}

fn discover_default_files(
    start: &Path,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<Vec<PathBuf>, LoadError> {
    let mut dir = start.to_path_buf();
    loop {
        if let Some(main) = DEFAULT_FILE_NAMES
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
        {
            // Any of these appearing or going changes which files load.
            seen.extend(
                DEFAULT_FILE_NAMES
                    .iter()
                    .chain(&DEFAULT_OVERRIDE_NAMES)
                    .map(|n| dir.join(n)),
            );
            let mut files = vec![main];
            if let Some(over) = DEFAULT_OVERRIDE_NAMES
                .iter()
                .map(|n| dir.join(n))
                .find(|p| p.is_file())
            {
                files.push(over);
            }
            return Ok(files);
        }
        match dir.parent() {
            Some(parent) => dir = parent.to_path_buf(),
            None => {
                return Err(LoadError::NoComposeFile {
                    dir: start.to_path_buf(),
                })
            }
        }
    }
}

/// Reads `--env-file`s (or `<dir>/.env`) into `env` without overriding what is set.
fn load_env_files(
    options: &LoadOptions,
    dir: &Path,
    env: &mut BTreeMap<String, String>,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<(), LoadError> {
    let files: Vec<PathBuf> = if !options.env_files.is_empty() {
        options
            .env_files
            .iter()
            .map(|f| absolute(&options.working_dir, f))
            .collect()
    } else {
        if env
            .get("COMPOSE_DISABLE_ENV_FILE")
            .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
        {
            return Ok(());
        }
        let default = dir.join(".env");
        seen.insert(default.clone());
        if default.is_file() {
            vec![default]
        } else {
            Vec::new()
        }
    };
    seen.extend(files.iter().cloned());
    merge_env_files(&files, env)
}

/// Reads env files in order into `env`, without overriding what `env`
/// already sets: interpolation inside them sees `env` first, then the
/// values of the earlier files.
pub fn merge_env_files(
    files: &[PathBuf],
    env: &mut BTreeMap<String, String>,
) -> Result<(), LoadError> {
    let mut from_files: BTreeMap<String, String> = BTreeMap::new();
    for file in files {
        let values = read_env_file_with(file, &|key: &str| env.get(key).cloned(), &|key: &str| {
            from_files.get(key).cloned()
        })?;
        for (key, value) in values {
            if let Some(value) = value {
                from_files.insert(key, value);
            }
        }
    }
    for (key, value) in from_files {
        env.entry(key).or_insert(value);
    }
    Ok(())
}

/// Reads and parses one env file on its own.
pub fn read_env_file(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, LoadError> {
    read_env_file_with(path, lookup, &|_| None)
}

/// Reads and parses one env file that adds to values already loaded
/// (`existing` is consulted after `lookup` and the file's own earlier keys).
pub fn read_env_file_with(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    existing: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let limit = super::limits::MAX_ENV_FILE_BYTES;
    let Some(bytes) = super::limits::read_file_at_most(path, limit).map_err(read_error)? else {
        return Err(LoadError::Invalid {
            at: None,
            message: format!(
                "{}: env file is larger than the {limit}-byte limit",
                path.display()
            ),
        });
    };
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    dotenv::parse_dotenv_with(text, lookup, existing)
        .map(|parsed| parsed.entries)
        .map_err(|source| LoadError::EnvFile {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_keep_only_lowercase_letters_digits_dash_and_underscore() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("--_x"), "x");
    }

    #[test]
    fn clean_path_folds_dots_like_go() {
        assert_eq!(
            clean_path(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(clean_path(Path::new("/../a")), PathBuf::from("/a"));
    }
}
