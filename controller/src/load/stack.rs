//! `Stack` manifests (`apiVersion: stackd.dev/v1alpha1`, `kind: Stack`) read
//! from files: the inline `spec.compose` goes through the same loader as a
//! compose file, so its errors point at the manifest's own lines.
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::yaml::{self, Node};
use super::{load_tree_tracked, LoadError, LoadOptions, Loaded};

/// The API group and version of the Stack resource.
pub const API_VERSION: &str = "stackd.dev/v1alpha1";

/// A Stack manifest read from a file and its compose project loaded.
#[derive(Debug, Clone)]
pub struct LoadedStack {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, when given.
    pub namespace: Option<String>,
    /// `spec.suspend`.
    pub suspend: bool,
    /// `spec.prune` (true unless set to false).
    pub prune: bool,
    /// `spec.profiles`.
    pub profiles: Vec<String>,
    /// The options the compose project was loaded with (its files and
    /// project directory).
    pub options: LoadOptions,
    /// The loaded compose project; its `files_read` holds the manifest too.
    pub loaded: Loaded,
}

/// Whether a YAML text is a Stack manifest, judged by its unindented
/// `apiVersion: stackd.dev/...` and `kind: Stack` lines: cheap, never fooled
/// by nested keys, and still true for a manifest whose YAML is broken
/// further down (so the error is reported against the manifest).
pub fn has_stack_header(text: &str) -> bool {
    use crate::model::stack::{GROUP, KIND};
    let group_prefix = format!("{GROUP}/");
    top_level_value(text, "apiVersion").is_some_and(|v| v.starts_with(&group_prefix))
        && top_level_value(text, "kind").is_some_and(|k| k == KIND)
}

/// The scalar value of an unindented `key: value` line, unquoted.
pub(crate) fn top_level_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        let value = value.split(" #").next().unwrap_or_default().trim();
        Some(value.trim_matches(|c| c == '"' || c == '\'').to_owned())
    })
}

/// True when the file's first document declares `kind: Stack`.
pub fn is_stack_manifest(path: &Path) -> bool {
    let Ok(Some(bytes)) = super::limits::read_file_at_most(path, super::limits::MAX_FILE_BYTES)
    else {
        return false;
    };
    let name: Arc<str> = Arc::from(path.display().to_string());
    let Ok(text) = yaml::decode_text(&bytes, &name) else {
        return false;
    };
    let Ok(documents) = yaml::parse_documents(&text, &name) else {
        return false;
    };
    documents
        .first()
        .and_then(|d| d.get("kind"))
        .and_then(Node::as_str)
        == Some("Stack")
}

/// Reads a Stack manifest and loads its compose project, with the checks
/// that go beyond compose. `base` carries the
/// environment, extra profiles and env files; its `files` and `project_name`
/// are replaced by what the manifest says.
pub fn load_stack_manifest(path: &Path, base: &LoadOptions) -> Result<LoadedStack, LoadError> {
    load_stack_manifest_tracked(path, base, &mut BTreeSet::new())
}

/// Like [`load_stack_manifest`], adding to `files` the manifest and every
/// file its load read or looked for, whether it succeeds or not.
pub fn load_stack_manifest_tracked(
    path: &Path,
    base: &LoadOptions,
    files: &mut BTreeSet<PathBuf>,
) -> Result<LoadedStack, LoadError> {
    let absolute = super::environment::clean_path(&base.working_dir.join(path));
    files.insert(absolute.clone());
    let file: Arc<str> = Arc::from(absolute.display().to_string());
    let bytes = super::limits::read_file_at_most(&absolute, super::limits::MAX_FILE_BYTES)
        .map_err(|source| LoadError::Read {
            path: absolute.clone(),
            source,
        })?
        .ok_or_else(|| yaml::YamlError::TooLarge {
            file: file.clone(),
            limit: super::limits::MAX_FILE_BYTES,
        })?;
    let text = yaml::decode_text(&bytes, &file)?;
    let mut documents = yaml::parse_documents(&text, &file)?;
    if documents.is_empty() {
        return Err(LoadError::Invalid {
            at: Some(yaml::Span {
                file,
                line: 1,
                col: 1,
            }),
            message: "empty file: a Stack manifest holds exactly one document".into(),
        });
    }
    if documents.len() != 1 {
        return Err(LoadError::Invalid {
            at: documents.get(1).map(|d| d.span.clone()),
            message: format!(
                "{}: a Stack manifest holds exactly one document",
                absolute.display()
            ),
        });
    }
    let manifest = documents.remove(0);
    let invalid = |node: &Node, message: String| LoadError::Invalid {
        at: Some(node.span.clone()),
        message,
    };

    match manifest.get("apiVersion") {
        Some(v) if v.as_str() == Some(API_VERSION) => {}
        Some(v) => return Err(invalid(v, format!("apiVersion must be {API_VERSION}"))),
        None => {
            return Err(invalid(
                &manifest,
                format!("apiVersion is missing (want {API_VERSION})"),
            ))
        }
    }
    match manifest.get("kind") {
        Some(k) if k.as_str() == Some("Stack") => {}
        Some(k) => return Err(invalid(k, "kind must be Stack".into())),
        None => return Err(invalid(&manifest, "kind is missing (want Stack)".into())),
    }
    let metadata = manifest
        .get("metadata")
        .ok_or_else(|| invalid(&manifest, "metadata is missing".into()))?;
    let name_node = metadata
        .get("name")
        .ok_or_else(|| invalid(metadata, "metadata.name is missing".into()))?;
    let name = name_node.as_str().unwrap_or_default().to_string();
    if !is_dns_label(&name) {
        return Err(invalid(
            name_node,
            format!("metadata.name {name:?} must be a DNS-1123 label (lowercase letters, digits and '-', at most 63)"),
        ));
    }
    let namespace = metadata
        .get("namespace")
        .and_then(Node::as_str)
        .map(str::to_string);
    let spec = manifest
        .get("spec")
        .ok_or_else(|| invalid(&manifest, "spec is missing".into()))?;
    let flag = |key: &str, default: bool| -> Result<bool, LoadError> {
        match spec.get(key) {
            None => Ok(default),
            Some(node) => match node.as_scalar().map(yaml::Scalar::resolve) {
                Some(yaml::Resolved::Bool(b)) => Ok(b),
                _ => Err(invalid(node, format!("spec.{key} must be true or false"))),
            },
        }
    };
    let suspend = flag("suspend", false)?;
    let prune = flag("prune", true)?;

    let dir = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut options = base.clone();
    options.project_name = Some(name.clone());
    options.project_directory = Some(dir.clone());
    let profiles: Vec<String> = spec
        .get("profiles")
        .and_then(Node::as_seq)
        .map(|list| {
            list.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    options.profiles.extend(profiles.iter().cloned());
    let mut parsed = HashMap::new();
    match (spec.get("compose"), spec.get("composeFiles")) {
        (Some(compose), None) => {
            if compose.as_map().is_none() {
                return Err(invalid(
                    compose,
                    "spec.compose must be a mapping (a compose model)".into(),
                ));
            }
            parsed.insert(absolute.clone(), vec![compose.clone()]);
            options.files = vec![absolute.clone()];
        }
        (None, Some(listed)) => {
            let list = listed.as_seq().ok_or_else(|| {
                invalid(listed, "spec.composeFiles must be a list of paths".into())
            })?;
            if list.is_empty() {
                return Err(invalid(listed, "spec.composeFiles is empty".into()));
            }
            let mut paths: Vec<PathBuf> = Vec::new();
            for item in list {
                let path = item.as_str().ok_or_else(|| {
                    invalid(item, "spec.composeFiles entries must be paths".into())
                })?;
                let resolved = super::environment::clean_path(&dir.join(path));
                files.insert(resolved.clone());
                if !resolved.is_file() {
                    return Err(LoadError::MissingFile {
                        at: Some(item.span.clone()),
                        message: format!("compose file {} not found", resolved.display()),
                        path: resolved,
                    });
                }
                paths.push(resolved);
            }
            options.files = paths;
        }
        (Some(_), Some(files)) => {
            return Err(invalid(
                files,
                "spec.compose and spec.composeFiles are mutually exclusive".into(),
            ))
        }
        (None, None) => return Err(invalid(spec, "spec needs compose or composeFiles".into())),
    }
    let (tree, mut warnings) = load_tree_tracked(&options, parsed, files)?;
    warnings.extend(super::validate::runnable_warnings(&tree));
    // A manifest is desired state for a controller: what compose would only
    // find out at run time is refused before anything changes.
    let errors = super::validate::check_runnable(&tree, None);
    if !errors.is_empty() {
        return Err(LoadError::Findings { errors });
    }
    let project = super::de::from_node(&tree)?;
    Ok(LoadedStack {
        name,
        namespace,
        suspend,
        prune,
        profiles,
        options,
        loaded: Loaded {
            project,
            warnings,
            files_read: files.clone(),
        },
    })
}

/// A DNS-1123 label: what Kubernetes accepts as an object name.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}
