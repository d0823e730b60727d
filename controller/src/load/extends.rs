//! `extends`: a service inherits another service's definition, from the
//! same file or another one, with compose's merge rules; chains are
//! followed and cycles refused with the chain named.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::yaml::{Node, Span};
use super::{merge, Context, LoadError};

/// The services of one file, keyed by name, and where relative paths in
/// them resolve.
struct FileServices {
    services: Node,
    dir: PathBuf,
    /// The file's own `!reset`/`!override` tags (other files only: the
    /// document being loaded passes its tags separately).
    tags: Option<merge::MergeTags>,
}

/// Resolves every `extends` in the `services` of one parsed document.
/// `file` is the document's file; `working_dir` is where a relative
/// `extends.file` resolves.
pub fn apply_extends(
    document: &mut Node,
    file: &Path,
    working_dir: &Path,
    tags: &merge::MergeTags,
    ctx: &mut Context<'_>,
) -> Result<(), LoadError> {
    let Some(services) = document.get("services") else {
        return Ok(());
    };
    if services.as_map().is_none() {
        return Ok(());
    }
    let names: Vec<String> = services
        .as_map()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut state = State {
        files: HashMap::new(),
        document_file: file.to_path_buf(),
        tags,
    };
    let key = file.to_path_buf();
    state.files.insert(
        key.clone(),
        FileServices {
            services: services.clone(),
            dir: working_dir.to_path_buf(),
            tags: None,
        },
    );
    for name in names {
        let mut chain = Vec::new();
        state.resolve(&key, &name, &mut chain, ctx)?;
    }
    if let Some(done) = state.files.remove(&key) {
        if let Some(slot) = document.get_mut("services") {
            *slot = done.services;
        }
    }
    Ok(())
}

struct State<'t> {
    files: HashMap<PathBuf, FileServices>,
    /// The document being loaded, whose merge tags apply to the bases of its services.
    document_file: PathBuf,
    tags: &'t merge::MergeTags,
}

impl State<'_> {
    /// Resolves `name` in `file` in place and returns its merged definition.
    fn resolve(
        &mut self,
        file: &Path,
        name: &str,
        chain: &mut Vec<(PathBuf, String)>,
        ctx: &mut Context<'_>,
    ) -> Result<Option<Node>, LoadError> {
        let (service, dir) = {
            let entry = self.files.get(file).ok_or_else(|| LoadError::Invalid {
                at: None,
                message: format!("cannot read {}", file.display()),
            })?;
            (entry.services.get(name).cloned(), entry.dir.clone())
        };
        let Some(service) = service else {
            return Ok(None);
        };
        if service.is_null() {
            return Ok(Some(service));
        }
        let Some(extends) = service.get("extends").cloned() else {
            return Ok(Some(service));
        };

        if chain.iter().any(|(f, n)| f == file && n == name) {
            let mut names: Vec<String> = chain.iter().map(|(_, n)| n.clone()).collect();
            names.push(name.to_string());
            return Err(LoadError::Invalid {
                at: Some(extends.span.clone()),
                message: format!("circular reference with extends: {}", names.join(" -> ")),
            });
        }
        if chain.len() >= super::limits::MAX_REFERENCE_DEPTH {
            return Err(LoadError::Invalid {
                at: Some(extends.span.clone()),
                message: format!(
                    "services.{name}.extends: chain of extends deeper than {} services",
                    super::limits::MAX_REFERENCE_DEPTH
                ),
            });
        }
        chain.push((file.to_path_buf(), name.to_string()));

        let (reference, other_file) = match (extends.as_str(), extends.get("service")) {
            (Some(reference), _) => (reference.to_string(), None),
            (None, Some(service_node)) => {
                let reference = service_node.as_str().ok_or_else(|| LoadError::Invalid {
                    at: Some(service_node.span.clone()),
                    message: format!("services.{name}.extends.service must be a string"),
                })?;
                let other = extends
                    .get("file")
                    .and_then(Node::as_str)
                    .map(str::to_string);
                (reference.to_string(), other)
            }
            (None, None) => {
                return Err(LoadError::Invalid {
                    at: Some(extends.span.clone()),
                    message: format!("services.{name}.extends: service is required"),
                })
            }
        };

        let base_file = match &other_file {
            Some(path) => {
                let expanded = super::paths::expand_home(path, ctx.home);
                let absolute = super::environment::clean_path(&dir.join(expanded));
                if !self.files.contains_key(&absolute) {
                    ctx.count_included_file(&extends.span, &absolute)?;
                    let (services, tags) = load_extends_file(&absolute, &extends.span, name, ctx)?;
                    let file_dir = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
                    self.files.insert(
                        absolute.clone(),
                        FileServices {
                            services,
                            dir: file_dir,
                            tags,
                        },
                    );
                }
                absolute
            }
            None => file.to_path_buf(),
        };

        let base_exists = self
            .files
            .get(&base_file)
            .and_then(|f| f.services.get(&reference))
            .is_some();
        if !base_exists {
            let message = match &other_file {
                Some(path) => format!(
                    "cannot extend service {name:?} in {}: service {reference:?} not found in {path}",
                    file.display()
                ),
                None => format!(
                    "cannot extend service {name:?} in {}: service {reference:?} not found",
                    file.display()
                ),
            };
            return Err(LoadError::Invalid {
                at: Some(extends.span.clone()),
                message,
            });
        }

        let base = self.resolve(&base_file, &reference, chain, ctx)?;
        chain.pop();
        let merged = match base {
            Some(base) if !base.is_null() => {
                let mut base = base;
                if let Some(map) = base.as_map_mut() {
                    map.shift_remove("extends");
                }
                if file == self.document_file {
                    self.tags.apply_to_service(name, &mut base);
                } else if let Some(tags) = self.files.get(file).and_then(|f| f.tags.as_ref()) {
                    tags.apply_to_service(name, &mut base);
                }
                let mut merged = merge::merge_service(&base, &service).map_err(LoadError::Merge)?;
                if let Some(map) = merged.as_map_mut() {
                    map.shift_remove("extends");
                }
                merged
            }
            // compose leaves a service that extends an empty one as written,
            // `extends` included.
            _ => service,
        };
        if let Some(entry) = self.files.get_mut(file) {
            if let Some(slot) = entry.services.get_mut(name) {
                *slot = merged.clone();
            }
        }
        Ok(Some(merged))
    }
}

/// Loads another file's services for `extends`: interpolated, canonical,
/// with relative paths resolved against that file's directory.
fn load_extends_file(
    path: &Path,
    at: &Span,
    name: &str,
    ctx: &mut Context<'_>,
) -> Result<(Node, Option<merge::MergeTags>), LoadError> {
    let documents = ctx.parse_file(path).map_err(|e| match e {
        LoadError::Read { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
            LoadError::MissingFile {
                at: Some(at.clone()),
                message: format!(
                    "cannot extend service {name:?}: file {} not found",
                    path.display()
                ),
                path,
            }
        }
        other => other,
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut model = Node::map(Span::synthetic(&path.display().to_string()));
    let mut tags = None;
    for mut document in documents {
        ctx.interpolate(&mut document)?;
        let document_tags = merge::MergeTags::take(&mut document);
        model = merge::merge_files(model, document).map_err(LoadError::Merge)?;
        tags = Some(document_tags);
    }
    // compose reads a base file without validating it: an empty service there
    // is only an error if something extends it and needs its content.
    let empty_services: Vec<(String, (super::yaml::Key, Node))> =
        match model.get_mut("services").and_then(Node::as_map_mut) {
            Some(services) => {
                let names: Vec<String> = services
                    .iter()
                    .filter(|(_, (_, s))| s.is_null())
                    .map(|(n, _)| n.clone())
                    .collect();
                names
                    .into_iter()
                    .filter_map(|n| services.shift_remove(&n).map(|entry| (n, entry)))
                    .collect()
            }
            None => Vec::new(),
        };
    super::canonical::canonicalize(&mut model).map_err(LoadError::Transform)?;
    super::paths::resolve_relative_paths(&mut model, &dir, ctx.home);
    if let Some(services) = model.get_mut("services").and_then(Node::as_map_mut) {
        for (name, entry) in empty_services {
            services.insert(name, entry);
        }
    }
    match model.get("services") {
        Some(services) if services.as_map().is_some() => Ok((services.clone(), tags)),
        _ => Err(LoadError::Invalid {
            at: Some(at.clone()),
            message: format!(
                "cannot extend service {name:?} in {}: no services section",
                path.display()
            ),
        }),
    }
}
