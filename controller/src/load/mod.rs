//! Compose files → [`crate::model::Project`]: YAML, interpolation, `.env`,
//! `-f` merging, `extends`, `include`, profiles, normalization, validation.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub mod canonical;
pub mod de;
pub mod dotenv;
pub mod environment;
pub mod extends;
pub mod include;
pub mod interpolate;
pub mod interpolate_tree;
pub mod limits;
pub mod merge;
pub mod normalize;
pub mod paths;
pub mod stack;
pub mod validate;
pub mod yaml;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::model::Project;
use yaml::{Node, Span, Value};

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
    /// Every file the load read or looked for (compose files, overrides,
    /// `.env` and env files, `extends` and `include` targets, label files,
    /// secret and config files), absolute: a change to any of them can
    /// change the project.
    pub files_read: BTreeSet<PathBuf>,
}

/// Why a project failed to load. Display starts with `file:line:col:` whenever
/// the problem has a place in a file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file named on the command line or in `COMPOSE_FILE` does not exist.
    #[error("{}: no such file", path.display())]
    FileNotFound {
        /// The file.
        path: PathBuf,
    },
    /// No compose file was given and none was found.
    #[error("no configuration file provided: not found in {} or its parents", dir.display())]
    NoComposeFile {
        /// Where the search started.
        dir: PathBuf,
    },
    /// The project name given is not a valid one.
    #[error("invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number")]
    InvalidProjectName {
        /// The name.
        name: String,
    },
    /// A file is not valid YAML or breaks a limit.
    #[error(transparent)]
    Yaml(#[from] yaml::YamlError),
    /// An env file could not be parsed.
    #[error("{}:{}: {}", path.display(), source.line(), env_file_message(source))]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: dotenv::DotenvError,
    },
    /// A `${...}` expression is invalid or a required variable is missing.
    #[error(transparent)]
    Interpolation(#[from] interpolate_tree::TreeInterpolationError),
    /// Two files could not be merged.
    #[error(transparent)]
    Merge(merge::MergeError),
    /// A short-syntax value could not be read.
    #[error(transparent)]
    Transform(canonical::TransformError),
    /// A value does not fit the compose model.
    #[error(transparent)]
    Model(#[from] de::DeError),
    /// Several problems found at once by the checks that go beyond compose.
    #[error("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Findings {
        /// Each problem, with its place.
        errors: Vec<LoadError>,
    },
    /// The project is inconsistent (undefined references, contradictions).
    #[error("{}{message}", at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default())]
    Invalid {
        /// Where, when known.
        at: Option<Span>,
        /// What is wrong.
        message: String,
    },
    /// A file the project refers to (env file, label file, include, secret
    /// or config file, a manifest's compose file) does not exist.
    #[error("{}{message}", at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default())]
    MissingFile {
        /// The reference, when known.
        at: Option<Span>,
        /// The file that is missing.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl LoadError {
    /// Where in a file the problem is, when it has a place (the first one
    /// for several findings).
    pub fn span(&self) -> Option<&Span> {
        let span = match self {
            LoadError::Read { .. }
            | LoadError::FileNotFound { .. }
            | LoadError::NoComposeFile { .. }
            | LoadError::InvalidProjectName { .. }
            | LoadError::EnvFile { .. } => None,
            LoadError::Yaml(e) => e.span(),
            LoadError::Interpolation(e) => Some(&e.at),
            LoadError::Merge(e) => Some(e.span()),
            LoadError::Transform(e) => Some(e.span()),
            LoadError::Model(e) => e.span.as_ref(),
            LoadError::Findings { errors } => errors.iter().find_map(LoadError::span),
            LoadError::Invalid { at, .. } | LoadError::MissingFile { at, .. } => at.as_ref(),
        };
        // Synthetic spans (defaults, the project itself) have no line.
        span.filter(|s| s.line > 0)
    }

    /// A short, stable name of the kind of problem, for metric labels:
    /// `parse` (YAML or env file syntax, limits), `interpolate` (`${...}`),
    /// `missing_file`, `validate` (the model is wrong) or `other` (I/O).
    pub fn reason(&self) -> &'static str {
        match self {
            LoadError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                "missing_file"
            }
            LoadError::Read { .. } => "other",
            LoadError::FileNotFound { .. }
            | LoadError::NoComposeFile { .. }
            | LoadError::MissingFile { .. } => "missing_file",
            LoadError::Yaml(_) | LoadError::EnvFile { .. } => "parse",
            LoadError::Interpolation(_) => "interpolate",
            LoadError::Findings { errors } => {
                // One kind for the lot: a missing file only when that is all
                // that is wrong.
                if !errors.is_empty() && errors.iter().all(|e| e.reason() == "missing_file") {
                    "missing_file"
                } else {
                    "validate"
                }
            }
            LoadError::InvalidProjectName { .. }
            | LoadError::Merge(_)
            | LoadError::Transform(_)
            | LoadError::Model(_)
            | LoadError::Invalid { .. } => "validate",
        }
    }
}

impl LoadError {
    /// The file the problem is in, with its 1-based line and column (0 when
    /// unknown); `None` when the problem has no place in a file. For
    /// [`LoadError::Findings`], the place of the first finding that has one.
    pub fn location(&self) -> Option<(PathBuf, u32, u32)> {
        fn from_span(span: &Span) -> Option<(PathBuf, u32, u32)> {
            // Line 0 marks a synthetic span whose "file" may be a description.
            (span.line > 0).then(|| (PathBuf::from(&*span.file), span.line, span.col))
        }
        match self {
            LoadError::Read { path, .. } | LoadError::FileNotFound { path } => {
                Some((path.clone(), 0, 0))
            }
            LoadError::NoComposeFile { .. } | LoadError::InvalidProjectName { .. } => None,
            LoadError::Yaml(
                yaml::YamlError::TooLarge { file, .. } | yaml::YamlError::NotText { file },
            ) => Some((PathBuf::from(&**file), 0, 0)),
            LoadError::Yaml(error) => error.span().and_then(from_span),
            LoadError::EnvFile { path, source } => {
                Some((path.clone(), u32::try_from(source.line()).unwrap_or(0), 0))
            }
            LoadError::Interpolation(error) => from_span(&error.at),
            LoadError::Merge(error) => from_span(error.span()),
            LoadError::Transform(error) => from_span(error.span()),
            LoadError::Model(error) => error.span.as_ref().and_then(from_span),
            LoadError::Findings { errors } => errors.iter().find_map(LoadError::location),
            LoadError::Invalid { at, .. } => at.as_ref().and_then(from_span),
            LoadError::MissingFile { at, path, .. } => at
                .as_ref()
                .and_then(from_span)
                .or_else(|| Some((path.clone(), 0, 0))),
        }
    }
}

/// The parser's message without its own `line N: ` prefix (the place is
/// already in front of it).
fn env_file_message(error: &dotenv::DotenvError) -> String {
    let text = error.to_string();
    match text
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((number, message)) if number.chars().all(|c| c.is_ascii_digit()) => {
            message.to_string()
        }
        _ => text,
    }
}

/// State shared by one load: variables, warnings and parsed files.
pub struct Context<'a> {
    /// The home directory `~` expands to.
    pub home: Option<&'a Path>,
    env: BTreeMap<String, String>,
    unset: Vec<String>,
    warnings: Vec<String>,
    parsed: HashMap<PathBuf, Vec<Node>>,
    files: BTreeSet<PathBuf>,
    /// Bytes interpolation produced so far (see [`limits::MAX_INTERPOLATED_BYTES`]).
    interpolated_bytes: usize,
    /// Files brought in by `include` and `extends.file` so far (see
    /// [`limits::MAX_INCLUDED_FILES`]).
    included_files: usize,
}

impl Context<'_> {
    /// Notes a file the load read or looked for.
    pub fn record(&mut self, path: &Path) {
        if !self.files.contains(path) {
            self.files.insert(path.to_path_buf());
        }
    }

    /// Reads and parses a file once per load.
    pub fn parse_file(&mut self, path: &Path) -> Result<Vec<Node>, LoadError> {
        self.record(path);
        if let Some(documents) = self.parsed.get(path) {
            return Ok(documents.clone());
        }
        let name: Arc<str> = Arc::from(path.display().to_string());
        let bytes = limits::read_file_at_most(path, limits::MAX_FILE_BYTES)
            .map_err(|source| LoadError::Read {
                path: path.to_path_buf(),
                source,
            })?
            .ok_or_else(|| yaml::YamlError::TooLarge {
                file: name.clone(),
                limit: limits::MAX_FILE_BYTES,
            })?;
        let text = yaml::decode_text(&bytes, &name)?;
        let documents = yaml::parse_documents(&text, &name)?;
        self.parsed.insert(path.to_path_buf(), documents.clone());
        Ok(documents)
    }

    /// Counts `path` as brought in by `include` or `extends.file` at `at`,
    /// refusing it past [`limits::MAX_INCLUDED_FILES`].
    pub fn count_included_file(&mut self, at: &Span, path: &Path) -> Result<(), LoadError> {
        self.included_files += 1;
        if self.included_files > limits::MAX_INCLUDED_FILES {
            return Err(LoadError::Invalid {
                at: Some(at.clone()),
                message: format!(
                    "{}: more than {} files brought in by include and extends (a file counts each time it is brought in)",
                    path.display(),
                    limits::MAX_INCLUDED_FILES
                ),
            });
        }
        Ok(())
    }

    /// Substitutes variables in a document with the current environment.
    pub fn interpolate(&mut self, document: &mut Node) -> Result<(), LoadError> {
        let env = &self.env;
        interpolate_tree::interpolate_tree(
            document,
            &|name: &str| env.get(name).cloned(),
            &mut self.unset,
            &mut self.interpolated_bytes,
        )?;
        Ok(())
    }

    /// Loads files as one model (compose's `loadYamlModel`): per file
    /// interpolation, extends, include, merge and canonical form; then
    /// checks, relative paths and environment sources.
    pub fn load_model(
        &mut self,
        files: &[PathBuf],
        working_dir: &Path,
        env: &BTreeMap<String, String>,
        included: &[PathBuf],
    ) -> Result<Node, LoadError> {
        let saved = std::mem::replace(&mut self.env, env.clone());
        let result = self.load_model_inner(files, working_dir, included);
        self.env = saved;
        result
    }

    fn load_model_inner(
        &mut self,
        files: &[PathBuf],
        working_dir: &Path,
        included: &[PathBuf],
    ) -> Result<Node, LoadError> {
        let first = files
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        let mut model = Node::map(Span::synthetic(&first));
        for file in files {
            let documents = self.parse_file(file)?;
            for mut document in documents {
                if document.as_map().is_none() {
                    return Err(LoadError::Invalid {
                        at: Some(document.span.clone()),
                        message: "top-level object must be a mapping".into(),
                    });
                }
                self.interpolate(&mut document)?;
                // Tags are taken before extends so that a `!reset` in this
                // document removes what the extended base brings too.
                let tags = merge::MergeTags::take(&mut document);
                extends::apply_extends(&mut document, file, working_dir, &tags, self)?;
                let mut chain = included.to_vec();
                chain.push(file.clone());
                let env = self.env.clone();
                include::apply_include(&mut document, working_dir, &env, &chain, self)?;
                let services_at = document
                    .get("services")
                    .map_or_else(|| document.span.clone(), |s| s.span.clone());
                tags.apply(&mut model);
                model = merge::merge_files(model, document).map_err(LoadError::Merge)?;
                check_service_count(&model, &services_at)?;
                merge::enforce_unicity(&mut model).map_err(LoadError::Merge)?;
                if let Some(map) = model.as_map_mut() {
                    if map.shift_remove("version").is_some() {
                        self.warnings.push(format!(
                            "{}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion",
                            file.display()
                        ));
                    }
                }
                canonical::canonicalize(&mut model).map_err(LoadError::Transform)?;
                omit_empty_dns(&mut model);
                merge::enforce_unicity(&mut model).map_err(LoadError::Merge)?;
            }
        }
        validate::check_structure(&model)?;
        validate::check_model(&model)?;
        paths::resolve_relative_paths(&mut model, working_dir, self.home);
        Ok(model)
    }
}

/// Refuses a project with more than [`limits::MAX_SERVICES`] services,
/// before they are normalized; `at` is the `services` of the file that
/// took the count past the limit.
fn check_service_count(model: &Node, at: &Span) -> Result<(), LoadError> {
    let count = model
        .get("services")
        .and_then(Node::as_map)
        .map_or(0, |services| services.len());
    if count > limits::MAX_SERVICES {
        return Err(LoadError::Invalid {
            at: Some(at.clone()),
            message: format!(
                "the project defines {count} services, more than the limit of {}",
                limits::MAX_SERVICES
            ),
        });
    }
    Ok(())
}

/// `services.*.dns` entries that are empty are dropped, as compose does.
fn omit_empty_dns(model: &mut Node) {
    let Some(services) = model.get_mut("services").and_then(Node::as_map_mut) else {
        return;
    };
    for (_, (_, service)) in services.iter_mut() {
        if let Some(map) = service.as_map_mut() {
            let empty = match map.get_mut("dns") {
                Some((_, node)) => match &mut node.value {
                    Value::Seq(items) => {
                        items.retain(|i| !(i.is_null() || i.as_str() == Some("")));
                        false
                    }
                    _ => node.is_null() || node.as_str() == Some(""),
                },
                None => false,
            };
            if empty {
                map.shift_remove("dns");
            }
        }
    }
}

/// The project name from the files' top-level `name:` (the last one wins),
/// interpolated and normalized.
fn name_from_files(ctx: &mut Context<'_>, files: &[PathBuf]) -> Result<Option<String>, LoadError> {
    let mut found = None;
    for file in files {
        for document in ctx.parse_file(file)? {
            if let Some(node) = document.get("name") {
                if let Some(text) = node.as_scalar().and_then(|s| s.canonical_text()) {
                    let env = &ctx.env;
                    let value = interpolate_tree::interpolate_value(
                        &text,
                        &node.span,
                        "name",
                        &|n: &str| env.get(n).cloned(),
                        &mut ctx.unset,
                    )?;
                    if !value.is_empty() {
                        found = Some(value);
                    }
                }
            }
        }
    }
    Ok(found
        .map(|n| environment::normalize_project_name(&n))
        .filter(|n| !n.is_empty()))
}

/// The variables the project sees: the process environment of `options`
/// over the project's `.env`, as interpolation uses them. When the setup
/// cannot be decided (the load then fails with the reason), the process
/// environment alone.
pub fn project_environment(options: &LoadOptions) -> BTreeMap<String, String> {
    environment::prepare(options)
        .map(|setup| setup.env)
        .unwrap_or_else(|_| options.environment.clone())
}

/// Loads, merges and normalizes a compose project.
pub fn load_project(options: &LoadOptions) -> Result<Loaded, LoadError> {
    let mut files_read = BTreeSet::new();
    let (project, warnings) = load_tree_tracked(options, HashMap::new(), &mut files_read)?;
    let project: Project = de::from_node(&project)?;
    Ok(Loaded {
        project,
        warnings,
        files_read,
    })
}

/// Loads a project and also applies the checks that go beyond compose
/// (clashing host ports, missing secret files, unknown restart policies,
/// `service_healthy` without a healthcheck, limits beyond `host`): what
/// `stackd validate` and every command that changes containers use.
pub fn load_project_strict(
    options: &LoadOptions,
    host: Option<validate::HostCapacity>,
) -> Result<Loaded, LoadError> {
    load_project_strict_tracked(options, host, &mut BTreeSet::new())
}

/// Like [`load_project_strict`], noting in `files` every file the load read
/// or looked for, also when it fails (so that fixing any of them can be
/// noticed).
pub fn load_project_strict_tracked(
    options: &LoadOptions,
    host: Option<validate::HostCapacity>,
    files: &mut BTreeSet<PathBuf>,
) -> Result<Loaded, LoadError> {
    let (tree, mut warnings) = load_tree_tracked(options, HashMap::new(), files)?;
    warnings.extend(validate::runnable_warnings(&tree));
    let errors = validate::check_runnable(&tree, host);
    if !errors.is_empty() {
        return Err(LoadError::Findings { errors });
    }
    let project: Project = de::from_node(&tree)?;
    Ok(Loaded {
        project,
        warnings,
        files_read: files.clone(),
    })
}

/// Notes the files of secrets and configs (absolute by now), which the
/// containers read: a change to one changes what the stack runs.
fn record_resource_files(model: &Node, files: &mut BTreeSet<PathBuf>) {
    for kind in ["secrets", "configs"] {
        let Some(items) = model.get(kind).and_then(Node::as_map) else {
            continue;
        };
        for (_, (_, item)) in items {
            if let Some(path) = item.get("file").and_then(Node::as_str) {
                files.insert(PathBuf::from(path));
            }
        }
    }
}

/// Loads a project up to its final, normalized tree (what is then typed).
pub fn load_tree(options: &LoadOptions) -> Result<(Node, Vec<String>), LoadError> {
    load_tree_with(options, HashMap::new())
}

/// Like [`load_tree`], with some files already parsed (a Stack manifest's
/// inline `spec.compose` stands in for a compose file at the manifest's path).
pub fn load_tree_with(
    options: &LoadOptions,
    parsed: HashMap<PathBuf, Vec<Node>>,
) -> Result<(Node, Vec<String>), LoadError> {
    load_tree_tracked(options, parsed, &mut BTreeSet::new())
}

/// Like [`load_tree_with`], adding to `files` every file the load read or
/// looked for, whether it succeeds or not.
pub fn load_tree_tracked(
    options: &LoadOptions,
    parsed: HashMap<PathBuf, Vec<Node>>,
    files: &mut BTreeSet<PathBuf>,
) -> Result<(Node, Vec<String>), LoadError> {
    let setup = environment::prepare_tracked(options, files)?;
    let home = setup.env.get("HOME").map(PathBuf::from);
    let mut ctx = Context {
        home: home.as_deref(),
        env: setup.env.clone(),
        unset: Vec::new(),
        warnings: Vec::new(),
        parsed,
        files: std::mem::take(files),
        interpolated_bytes: 0,
        included_files: 0,
    };
    let result = load_setup(&setup, &mut ctx);
    *files = std::mem::take(&mut ctx.files);
    result
}

fn load_setup(
    setup: &environment::Setup,
    ctx: &mut Context<'_>,
) -> Result<(Node, Vec<String>), LoadError> {
    let name = match &setup.imperative_name {
        Some(name) => name.clone(),
        None => match name_from_files(ctx, &setup.files)? {
            Some(name) => name,
            None => {
                let base = setup
                    .working_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                environment::normalize_project_name(&base)
            }
        },
    };
    if name.is_empty() {
        return Err(LoadError::Invalid {
            at: None,
            message: "project name must not be empty".into(),
        });
    }
    let mut env = setup.env.clone();
    env.insert("COMPOSE_PROJECT_NAME".into(), name.clone());

    let mut model = ctx.load_model(&setup.files, &setup.working_dir, &env, &[])?;
    if model.as_map().is_none_or(|m| m.is_empty()) {
        let first = setup
            .files
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        return Err(LoadError::Invalid {
            at: Some(Span {
                file: Arc::from(first.as_str()),
                line: 1,
                col: 1,
            }),
            message:
                "empty compose file: it defines no services, networks, volumes, secrets or configs"
                    .into(),
        });
    }
    if let Some(map) = model.as_map_mut() {
        let span = Span::synthetic("project");
        map.insert(
            "name".into(),
            (
                yaml::Key {
                    text: "name".into(),
                    span: span.clone(),
                },
                Node::string(name.clone(), span),
            ),
        );
    }
    canonical::finish_extra_hosts(&mut model).map_err(LoadError::Transform)?;
    normalize::normalize(&mut model, &name, &env);
    let disabled = normalize::apply_profiles(&mut model, &setup.profiles);
    validate::check_consistency(&model, &disabled)?;
    normalize::copy_scale_into_deploy(&mut model);
    normalize::resolve_service_files(&mut model, &env, &mut ctx.files)?;
    normalize::prune_unused_resources(&mut model);
    record_resource_files(&model, &mut ctx.files);

    let mut warnings = std::mem::take(&mut ctx.warnings);
    for variable in &ctx.unset {
        warnings.push(format!(
            "The {variable:?} variable is not set. Defaulting to a blank string."
        ));
    }
    Ok((model, warnings))
}

#[cfg(test)]
mod files_read_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn load_file(name: &str, text: &str) -> (tempfile::TempDir, LoadError) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let options = LoadOptions {
            files: vec![file],
            project_name: Some("demo".into()),
            working_dir: dir.path().to_path_buf(),
            ..LoadOptions::default()
        };
        let error = load_project(&options).unwrap_err();
        (dir, error)
    }

    #[test]
    fn a_yaml_syntax_error_is_located_at_its_line_and_column() {
        let (dir, error) = load_file("compose.yaml", "services:\n  web:\n    image: [\n");
        let (file, line, col) = error.location().unwrap();
        assert_eq!(file, dir.path().join("compose.yaml"));
        assert!(line >= 3, "{error}");
        assert!(col > 0, "{error}");
    }

    #[test]
    fn a_missing_required_variable_is_located_at_its_value() {
        let (dir, error) = load_file(
            "compose.yaml",
            "services:\n  web:\n    image: ${TAG:?set TAG}\n",
        );
        assert!(matches!(error, LoadError::Interpolation(_)), "{error}");
        assert_eq!(
            error.location(),
            Some((dir.path().join("compose.yaml"), 3, 12))
        );
    }

    #[test]
    fn an_unreadable_file_is_located_without_a_line() {
        let error = LoadError::FileNotFound {
            path: PathBuf::from("/x/compose.yaml"),
        };
        assert_eq!(
            error.location(),
            Some((PathBuf::from("/x/compose.yaml"), 0, 0))
        );
    }

    #[test]
    fn a_synthetic_place_is_no_location() {
        let error = LoadError::Invalid {
            at: Some(Span::synthetic("project")),
            message: "project name must not be empty".into(),
        };
        assert_eq!(error.location(), None);
        let none = LoadError::NoComposeFile {
            dir: PathBuf::from("/x"),
        };
        assert_eq!(none.location(), None);
    }

    #[test]
    fn findings_are_located_at_the_first_one_that_has_a_place() {
        let at = |line| Span {
            file: Arc::from("/x/compose.yaml"),
            line,
            col: 5,
        };
        let error = LoadError::Findings {
            errors: vec![
                LoadError::Invalid {
                    at: None,
                    message: "a".into(),
                },
                LoadError::Invalid {
                    at: Some(at(7)),
                    message: "b".into(),
                },
                LoadError::Invalid {
                    at: Some(at(9)),
                    message: "c".into(),
                },
            ],
        };
        assert_eq!(
            error.location(),
            Some((PathBuf::from("/x/compose.yaml"), 7, 5))
        );
    }
}
