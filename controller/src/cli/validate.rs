//! `stackd validate`: checks compose files, compose project directories and
//! Stack manifests, reporting every invalid input with its place.
//!
//! A PATH that is a file is a Stack manifest when it has top-level
//! `apiVersion: stackd.dev/...` and `kind: Stack` lines, else a compose file.
//! A directory is searched (hidden folders and `target` skipped): every
//! folder holding a default-named compose file (`compose.yaml` & co.) is a
//! project, loaded as docker compose would from that folder, and every YAML
//! file that is a Stack manifest is checked on its own. Each input gets a
//! `PATH: valid` or `PATH: invalid` line on stdout, the reasons go to stderr.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{load_options, render_error, CliError, GlobalArgs, ValidateArgs};
use crate::load::LoadOptions;

/// File names docker compose looks for in a project folder.
const DEFAULT_COMPOSE_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// One thing to validate.
#[derive(Debug)]
enum Input {
    /// A compose file named on the command line.
    ComposeFile(PathBuf),
    /// A folder with a default-named compose file.
    ProjectDir(PathBuf),
    /// A Stack manifest.
    Manifest(PathBuf),
    /// A path that could not be read, or a folder with nothing to validate.
    Unusable(CliError),
}

pub(super) fn run(
    global: &GlobalArgs,
    args: &ValidateArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let base = load_options(global)?;
    if args.paths.is_empty() {
        load_strict_and_warn(&base, err)?;
        writeln!(out, "valid")?;
        return Ok(());
    }
    if !global.files.is_empty() {
        return Err(CliError::FilesAndPathsTogether);
    }
    let mut inputs = Vec::new();
    for path in &args.paths {
        collect(path, &base.working_dir, &mut inputs);
    }
    let total = inputs.len();
    let mut failures = Vec::new();
    for input in inputs {
        let label = match &input {
            Input::ComposeFile(p) | Input::ProjectDir(p) | Input::Manifest(p) => {
                Some(p.display().to_string())
            }
            Input::Unusable(_) => None,
        };
        let result = check(input, &base, err);
        if let Some(label) = label {
            let verdict = if result.is_ok() { "valid" } else { "invalid" };
            writeln!(out, "{label}: {verdict}")?;
        }
        if let Err(e) = result {
            failures.push(e);
        }
    }
    if total == 1 {
        if let Some(only) = failures.pop() {
            return Err(only);
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    for failure in &failures {
        writeln!(err, "{}", render_error(failure))?;
    }
    Err(CliError::InputsInvalid {
        invalid: failures.len(),
        total,
    })
}

/// Adds what `path` holds to `inputs`.
fn collect(path: &Path, working_dir: &Path, inputs: &mut Vec<Input>) {
    let unreadable = |source| {
        Input::Unusable(CliError::UnreadablePath {
            path: path.display().to_string(),
            source,
        })
    };
    let absolute = working_dir.join(path);
    let metadata = match fs::metadata(&absolute) {
        Ok(metadata) => metadata,
        Err(source) => return inputs.push(unreadable(source)),
    };
    if !metadata.is_dir() {
        return match fs::read_to_string(&absolute) {
            Ok(text) if is_stack_manifest(&text) => inputs.push(Input::Manifest(path.to_owned())),
            Ok(_) => inputs.push(Input::ComposeFile(path.to_owned())),
            Err(source) => inputs.push(unreadable(source)),
        };
    }
    let before = inputs.len();
    if let Err(source) = walk(path, working_dir, inputs) {
        return inputs.push(unreadable(source));
    }
    if inputs.len() == before {
        inputs.push(Input::Unusable(CliError::NothingToValidate {
            path: path.display().to_string(),
        }));
    }
}

fn walk(dir: &Path, working_dir: &Path, inputs: &mut Vec<Input>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(working_dir.join(dir))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|entry| entry.file_name())
        .collect();
    entries.sort();
    if entries
        .iter()
        .any(|name| DEFAULT_COMPOSE_FILES.iter().any(|d| name == *d))
    {
        inputs.push(Input::ProjectDir(dir.to_owned()));
    }
    for name in entries {
        let Some(name_text) = name.to_str() else {
            continue;
        };
        let path = dir.join(&name);
        let absolute = working_dir.join(&path);
        if absolute.is_dir() {
            if !name_text.starts_with('.') && name_text != "target" {
                walk(&path, working_dir, inputs)?;
            }
        } else if name_text.ends_with(".yaml") || name_text.ends_with(".yml") {
            match fs::read_to_string(&absolute) {
                Ok(text) if is_stack_manifest(&text) => inputs.push(Input::Manifest(path)),
                Ok(_) => {}
                Err(source) => inputs.push(Input::Unusable(CliError::UnreadablePath {
                    path: path.display().to_string(),
                    source,
                })),
            }
        }
    }
    Ok(())
}

fn is_stack_manifest(text: &str) -> bool {
    crate::load::stack::has_stack_header(text)
}

fn check(input: Input, base: &LoadOptions, err: &mut dyn Write) -> Result<(), CliError> {
    match input {
        Input::Unusable(error) => Err(error),
        Input::ComposeFile(path) => {
            let options = LoadOptions {
                files: vec![path],
                ..base.clone()
            };
            load_strict_and_warn(&options, err)
        }
        Input::ProjectDir(dir) => {
            let options = LoadOptions {
                files: Vec::new(),
                working_dir: base.working_dir.join(dir),
                project_directory: None,
                ..base.clone()
            };
            load_strict_and_warn(&options, err)
        }
        Input::Manifest(path) => check_manifest(&path, base, err),
    }
}

fn load_strict_and_warn(options: &LoadOptions, err: &mut dyn Write) -> Result<(), CliError> {
    let loaded = crate::load::load_project_strict(options, super::host_capacity())?;
    for warning in &loaded.warnings {
        writeln!(err, "warning: {warning}")?;
    }
    Ok(())
}

fn check_manifest(path: &Path, base: &LoadOptions, err: &mut dyn Write) -> Result<(), CliError> {
    let stack = crate::load::stack::load_stack_manifest(path, base)?;
    for warning in &stack.loaded.warnings {
        writeln!(err, "warning: {warning}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_manifest_is_recognized_by_its_top_level_lines() {
        assert!(is_stack_manifest(
            "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: a}\n"
        ));
        assert!(is_stack_manifest(
            "kind: \"Stack\"  # a comment\napiVersion: 'stackd.dev/v1alpha1'\n"
        ));
    }

    #[test]
    fn a_compose_file_is_not_a_stack_manifest() {
        assert!(!is_stack_manifest(
            "services:\n  web:\n    image: nginx\n    labels:\n      kind: Stack\n"
        ));
        assert!(!is_stack_manifest("apiVersion: apps/v1\nkind: Stack\n"));
    }

    #[test]
    fn a_manifest_parse_error_has_a_line_and_column() {
        let error = check_text(
            "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: a}\nspec:\n  suspend: [1\n",
        )
        .unwrap_err();
        let text = render_error(&error);
        assert!(text.contains("stack.yaml:"), "{text}");
    }

    #[test]
    fn a_manifest_with_a_wrongly_typed_field_names_its_line() {
        let error = check_text(
            "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: a}\nspec:\n  suspend: sometimes\n",
        )
        .unwrap_err();
        assert!(
            render_error(&error).contains("stack.yaml:5:"),
            "{}",
            render_error(&error)
        );
    }

    fn check_text(text: &str) -> Result<(), CliError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stack.yaml"), text).unwrap();
        let base = LoadOptions {
            working_dir: dir.path().to_owned(),
            ..LoadOptions::default()
        };
        check_manifest(Path::new("stack.yaml"), &base, &mut Vec::new())
    }

    #[test]
    fn a_manifest_with_an_inline_model_is_valid() {
        check_text("apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: a}\nspec:\n  compose: {name: a}\n").unwrap();
    }

    #[test]
    fn a_manifest_with_both_compose_and_compose_files_is_invalid() {
        let error = check_text(
            "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: a}\nspec:\n  compose: {}\n  composeFiles: [compose.yaml]\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("exclusive"), "{error}");
    }

    #[test]
    fn a_manifest_without_a_name_is_invalid() {
        let error = check_text(
            "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {}\nspec:\n  compose: {}\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("metadata.name"), "{error}");
    }

    #[test]
    fn a_manifest_of_another_version_is_invalid() {
        let error = check_text(
            "apiVersion: stackd.dev/v9\nkind: Stack\nmetadata: {name: a}\nspec:\n  compose: {}\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("apiVersion"), "{error}");
    }

    #[test]
    fn a_directory_yields_its_projects_and_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        std::fs::write(root.join("a/compose.yaml"), "services: {}\n").unwrap();
        std::fs::write(root.join("a/compose.prod.yaml"), "services: {}\n").unwrap();
        std::fs::write(
            root.join("a/stack.yaml"),
            "apiVersion: stackd.dev/v1alpha1\nkind: Stack\n",
        )
        .unwrap();
        std::fs::write(root.join(".hidden/compose.yaml"), "services: {}\n").unwrap();
        let mut inputs = Vec::new();
        collect(Path::new("."), root, &mut inputs);
        let found: Vec<String> = inputs.iter().map(|i| format!("{i:?}")).collect();
        assert_eq!(
            found,
            [
                r#"ProjectDir("./a")"#.to_owned(),
                r#"Manifest("./a/stack.yaml")"#.to_owned()
            ]
        );
    }

    #[test]
    fn an_empty_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut inputs = Vec::new();
        collect(Path::new("."), dir.path(), &mut inputs);
        assert!(matches!(inputs[..], [Input::Unusable(_)]));
    }

    #[test]
    fn a_missing_path_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut inputs = Vec::new();
        collect(Path::new("nope.yaml"), dir.path(), &mut inputs);
        let [Input::Unusable(error)] = &inputs[..] else {
            panic!("{inputs:?}")
        };
        assert!(error.to_string().starts_with("nope.yaml"), "{error}");
    }
}
