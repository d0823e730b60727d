//! `include`: other compose projects loaded with their own project
//! directory and `.env`, whose resources are imported into the including
//! file; a resource defined differently on both sides is a conflict.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::yaml::{Node, Span, Value};
use super::{Context, LoadError};

/// Loads every `include` entry of `document` and imports its resources.
/// `included` is the chain of files that led here, for cycle detection.
pub fn apply_include(
    document: &mut Node,
    working_dir: &Path,
    env: &BTreeMap<String, String>,
    included: &[PathBuf],
    ctx: &mut Context<'_>,
) -> Result<(), LoadError> {
    let Some(map) = document.as_map_mut() else {
        return Ok(());
    };
    let Some((_, include)) = map.shift_remove("include") else {
        return Ok(());
    };
    let entries = match include.value {
        Value::Seq(items) => items,
        _ if include.is_null() => return Ok(()),
        _ => {
            return Err(LoadError::Invalid {
                at: Some(include.span.clone()),
                message: format!("`include` must be a list, got {}", include.kind()),
            })
        }
    };
    for entry in entries {
        // The chain names a file once for the include entry and once for
        // its load: count each level once.
        let mut levels = included.to_vec();
        levels.dedup();
        if levels.len() > super::limits::MAX_REFERENCE_DEPTH {
            return Err(LoadError::Invalid {
                at: Some(entry.span.clone()),
                message: format!(
                    "include nested deeper than {} files",
                    super::limits::MAX_REFERENCE_DEPTH
                ),
            });
        }
        let spec = IncludeSpec::from_node(&entry)?;
        let mut paths = Vec::new();
        for (i, path) in spec.paths.iter().enumerate() {
            if path.contains("://") || path.starts_with("git@") || path.starts_with("oci:") {
                return Err(LoadError::Invalid {
                    at: Some(entry.span.clone()),
                    message: format!("include {path}: remote resources are not supported"),
                });
            }
            let absolute = super::environment::clean_path(
                &working_dir.join(super::paths::expand_home(path, ctx.home)),
            );
            ctx.record(&absolute);
            if !absolute.exists() {
                return Err(LoadError::MissingFile {
                    at: Some(entry.span.clone()),
                    message: format!("include {path}: file not found ({})", absolute.display()),
                    path: absolute,
                });
            }
            if i == 0 && included.contains(&absolute) {
                let mut chain: Vec<String> =
                    included.iter().map(|p| p.display().to_string()).collect();
                chain.push(absolute.display().to_string());
                return Err(LoadError::Invalid {
                    at: Some(entry.span.clone()),
                    message: format!("include cycle detected:\n{}", chain.join("\n include ")),
                });
            }
            paths.push(absolute);
        }
        let Some(first) = paths.first() else { continue };
        for path in &paths {
            ctx.count_included_file(&entry.span, path)?;
        }
        let project_dir = match &spec.project_directory {
            None => first.parent().map(Path::to_path_buf).unwrap_or_default(),
            Some(dir) => super::environment::clean_path(
                &working_dir.join(super::paths::expand_home(dir, ctx.home)),
            ),
        };
        let env_files: Vec<PathBuf> = if spec.env_files.is_empty() {
            let default = project_dir.join(".env");
            ctx.record(&default);
            if default.is_file() {
                vec![default]
            } else {
                Vec::new()
            }
        } else {
            let mut files = Vec::new();
            for file in &spec.env_files {
                let absolute = super::environment::clean_path(
                    &working_dir.join(super::paths::expand_home(file, ctx.home)),
                );
                ctx.record(&absolute);
                if !absolute.is_file() {
                    return Err(LoadError::Invalid {
                        at: Some(entry.span.clone()),
                        message: format!("include env_file {}: not a file", absolute.display()),
                    });
                }
                files.push(absolute);
            }
            files
        };
        let mut include_env = env.clone();
        super::environment::merge_env_files(&env_files, &mut include_env)?;
        let mut chain = included.to_vec();
        chain.push(first.clone());
        let imported = ctx.load_model(&paths, &project_dir, &include_env, &chain)?;
        import_resources(document, imported, &entry.span)?;
    }
    Ok(())
}

struct IncludeSpec {
    paths: Vec<String>,
    project_directory: Option<String>,
    env_files: Vec<String>,
}

impl IncludeSpec {
    fn from_node(entry: &Node) -> Result<IncludeSpec, LoadError> {
        let invalid = |at: &Span, message: String| LoadError::Invalid {
            at: Some(at.clone()),
            message,
        };
        if let Some(path) = entry.as_str() {
            return Ok(IncludeSpec {
                paths: vec![path.to_string()],
                project_directory: None,
                env_files: Vec::new(),
            });
        }
        let Some(map) = entry.as_map() else {
            return Err(invalid(
                &entry.span,
                format!(
                    "include entry must be a string or a mapping, got {}",
                    entry.kind()
                ),
            ));
        };
        let strings = |node: &Node, what: &str| -> Result<Vec<String>, LoadError> {
            match &node.value {
                Value::Seq(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            invalid(&i.span, format!("include {what} must be a string"))
                        })
                    })
                    .collect(),
                _ => node.as_str().map(|s| vec![s.to_string()]).ok_or_else(|| {
                    invalid(
                        &node.span,
                        format!("include {what} must be a string or a list"),
                    )
                }),
            }
        };
        let mut spec = IncludeSpec {
            paths: Vec::new(),
            project_directory: None,
            env_files: Vec::new(),
        };
        for (key, (k, value)) in map {
            match key.as_str() {
                "path" => spec.paths = strings(value, "path")?,
                "project_directory" => {
                    spec.project_directory = Some(
                        value
                            .as_str()
                            .ok_or_else(|| {
                                invalid(
                                    &value.span,
                                    "include project_directory must be a string".into(),
                                )
                            })?
                            .to_string(),
                    )
                }
                "env_file" => spec.env_files = strings(value, "env_file")?,
                other if other.starts_with("x-") => {}
                other => return Err(invalid(&k.span, format!("include: unknown key {other:?}"))),
            }
        }
        if spec.paths.is_empty() {
            return Err(invalid(&entry.span, "include: path is required".into()));
        }
        Ok(spec)
    }
}

/// Adds the included project's resources to the document; an identical
/// duplicate is fine, a different one is a conflict.
fn import_resources(document: &mut Node, imported: Node, at: &Span) -> Result<(), LoadError> {
    let Value::Map(mut source) = imported.value else {
        return Ok(());
    };
    let Some(target) = document.as_map_mut() else {
        return Ok(());
    };
    for kind in [
        "services", "volumes", "networks", "secrets", "configs", "models",
    ] {
        let Some((_, from)) = source.shift_remove(kind) else {
            continue;
        };
        let Value::Map(from) = from.value else {
            continue;
        };
        let entry = target.entry(kind.to_string()).or_insert_with(|| {
            (
                super::yaml::Key {
                    text: kind.to_string(),
                    span: at.clone(),
                },
                Node::map(at.clone()),
            )
        });
        if entry.1.is_null() {
            entry.1 = Node::map(at.clone());
        }
        let Some(to) = entry.1.as_map_mut() else {
            continue;
        };
        for (name, (key, value)) in from {
            if let Some((_, existing)) = to.get(&name) {
                if existing.to_json() == value.to_json() {
                    continue;
                }
                return Err(LoadError::Invalid {
                    at: Some(existing.span.clone()),
                    message: format!("{kind}.{name} conflicts with imported resource"),
                });
            }
            to.insert(name, (key, value));
        }
    }
    Ok(())
}
