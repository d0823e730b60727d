//! compose's `EnforceUnicity`: in the lists a merge appends to, a later
//! entry with the same key replaces the earlier one, in the earlier place.
//!
//! The key depends on the list: the name before `=` (environment, labels,
//! dns, cap_add...), the container path (volumes, devices), the target or
//! `/run/secrets/<source>` (secrets, configs), `host:published:target/proto`
//! (long-syntax ports; short ones are their own key), the path (env_file),
//! the text (expose). Entries are keyed as written, so a short entry and a
//! long one only collide once the canonical step made both long: the loader
//! runs this after each merge and again after that step, as compose does.
use super::{dotted, go_format_d, go_format_s, MergeError};
use crate::load::yaml::{Node, Resolved, Value};
use std::collections::HashMap;

/// Keeps one entry per key in every de-duplicated list of a project (or a
/// project fragment rooted at the top level).
pub fn enforce_unicity(project: &mut Node) -> Result<(), MergeError> {
    walk(project, &mut Vec::new())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Indexer {
    /// The text before `=`.
    KeyValue,
    /// The container path of a volume.
    Volume,
    /// The container path of a device.
    Device,
    /// The port or range as written.
    Expose,
    /// The target, or the default directory joined with the source.
    Mount(&'static str),
    /// `host_ip:published:target/protocol`, or the short text.
    Port,
    /// The file path.
    EnvFile,
}

fn indexer_for(path: &[String]) -> Option<Indexer> {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["networks", _, "labels"] | ["networks", _, "ipam", "options"] => Some(Indexer::KeyValue),
        ["services", _, rest @ ..] => match rest {
            ["annotations" | "cap_add" | "cap_drop" | "dns" | "dns_opt" | "dns_search"
            | "environment" | "labels" | "links" | "profiles" | "sysctls" | "tmpfs"]
            | ["build", "args" | "additional_contexts" | "platform" | "tags" | "labels"]
            | ["deploy", "labels"]
            | ["networks", _, "aliases" | "link_local_ips"] => Some(Indexer::KeyValue),
            ["devices"] => Some(Indexer::Device),
            ["configs"] => Some(Indexer::Mount("")),
            ["secrets"] => Some(Indexer::Mount("/run/secrets")),
            ["env_file"] => Some(Indexer::EnvFile),
            ["expose"] => Some(Indexer::Expose),
            ["ports"] => Some(Indexer::Port),
            ["volumes"] => Some(Indexer::Volume),
            _ => None,
        },
        _ => None,
    }
}

fn walk(node: &mut Node, path: &mut Vec<String>) -> Result<(), MergeError> {
    match &mut node.value {
        Value::Map(m) => {
            for (name, (_, value)) in m.iter_mut() {
                path.push(name.clone());
                let result = walk(value, path);
                path.pop();
                result?;
            }
            Ok(())
        }
        // compose does not look inside list entries.
        Value::Seq(items) => match indexer_for(path) {
            Some(indexer) => dedupe(items, indexer, path),
            None => Ok(()),
        },
        Value::Scalar(_) => Ok(()),
    }
}

fn dedupe(items: &mut Vec<Node>, indexer: Indexer, path: &[String]) -> Result<(), MergeError> {
    let keys = items
        .iter()
        .enumerate()
        .map(|(i, item)| key_of(item, indexer, &format!("{}[{i}]", dotted(path))))
        .collect::<Result<Vec<String>, MergeError>>()?;
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(keys.len());
    let mut kept: Vec<Node> = Vec::with_capacity(items.len());
    for (item, key) in std::mem::take(items).into_iter().zip(keys) {
        match seen.get(&key) {
            Some(&at) => kept[at] = item,
            None => {
                seen.insert(key, kept.len());
                kept.push(item);
            }
        }
    }
    *items = kept;
    Ok(())
}

fn key_of(item: &Node, indexer: Indexer, path: &str) -> Result<String, MergeError> {
    let unexpected = || MergeError::UnexpectedEntry {
        path: path.to_string(),
        at: item.span.clone(),
        found: item.kind(),
    };
    let missing = |field: &'static str| MergeError::MissingField {
        path: path.to_string(),
        at: item.span.clone(),
        field,
    };
    let text = item.as_str();
    let int = match item.as_scalar().map(|s| s.resolve()) {
        Some(Resolved::Int(i)) => Some(i),
        _ => None,
    };
    match indexer {
        Indexer::KeyValue => match text {
            Some(s) => Ok(s.split_once('=').map_or(s, |(k, _)| k).to_string()),
            None => Err(unexpected()),
        },
        Indexer::Volume | Indexer::Device if item.as_map().is_some() => {
            match item.get("target").and_then(Node::as_str) {
                Some(target) => Ok(target.to_string()),
                None => Err(missing("a mount target")),
            }
        }
        Indexer::Volume => match text {
            Some(spec) => volume_target(spec).map_err(|reason| MergeError::InvalidVolumeSpec {
                path: path.to_string(),
                at: item.span.clone(),
                spec: spec.to_string(),
                reason,
            }),
            None => Ok(String::new()),
        },
        Indexer::Device => Ok(match text {
            Some(spec) => {
                let mut parts = spec.split(':');
                let first = parts.next().unwrap_or_default();
                parts.next().unwrap_or(first).to_string()
            }
            None => String::new(),
        }),
        Indexer::Expose => match (text, int) {
            (Some(s), _) => Ok(s.to_string()),
            (None, Some(i)) => Ok(i.to_string()),
            _ => Err(unexpected()),
        },
        Indexer::Mount(dir) => {
            if let Some(name) = text {
                return Ok(format!("{dir}/{name}"));
            }
            if item.as_map().is_none() {
                return Err(unexpected());
            }
            match item.get("target") {
                Some(target) => match target.as_str() {
                    Some(t) => Ok(t.to_string()),
                    None => Err(missing("a string target")),
                },
                None => Ok(format!("{dir}/{}", go_format_s(item.get("source")))),
            }
        }
        Indexer::Port => {
            if let Some(i) = int {
                return Ok(i.to_string());
            }
            if let Some(s) = text {
                return Ok(s.to_string());
            }
            if item.as_map().is_none() {
                return Ok(String::new());
            }
            let Some(target) = item.get("target") else {
                return Err(missing("a target port"));
            };
            let host = match item.get("host_ip") {
                Some(h) => go_format_s(Some(h)),
                None => "0.0.0.0".to_string(),
            };
            let protocol = match item.get("protocol") {
                Some(p) => go_format_s(Some(p)),
                None => "tcp".to_string(),
            };
            Ok(format!(
                "{host}:{}:{}/{protocol}",
                go_format_s(item.get("published")),
                go_format_d(Some(target)),
            ))
        }
        Indexer::EnvFile => {
            if let Some(s) = text {
                return Ok(s.to_string());
            }
            if item.as_map().is_none() {
                return Ok(String::new());
            }
            match item.get("path") {
                Some(p) => match p.as_str() {
                    Some(s) => Ok(s.to_string()),
                    None => Err(missing("a string path")),
                },
                None => Err(missing("a path")),
            }
        }
    }
}

/// The container path of a short-syntax volume (`src:dst:mode`), split as
/// compose splits it: `${...}` may hold colons, and a one-letter first
/// section is a Windows drive.
fn volume_target(spec: &str) -> Result<String, &'static str> {
    match spec.len() {
        0 => return Err("empty volume spec"),
        1 | 2 => return Ok(spec.to_string()),
        _ => {}
    }
    let sections = crate::load::canonical::split_volume_spec(spec);
    let last = sections.len() - 1;
    let mut source = String::new();
    let mut target = String::new();
    for (i, section) in sections.into_iter().enumerate() {
        if section.is_empty() {
            return Err("empty section between colons");
        }
        let at_end = i == last;
        if source.is_empty() && at_end {
            target = section;
        } else if source.is_empty() {
            source = section;
        } else if target.is_empty() {
            target = section;
        } else if !at_end {
            return Err("too many colons");
        }
        // A later, final section is the mode: it does not change the target.
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::volume_target;

    #[test]
    fn volume_targets_are_split_as_compose_splits_them() {
        assert_eq!(volume_target("/data").as_deref(), Ok("/data"));
        assert_eq!(volume_target("ab:/a").as_deref(), Ok("/a"));
        // A one-letter source reads as a Windows drive, in compose too.
        assert_eq!(volume_target("a:/a").as_deref(), Ok("a:/a"));
        assert_eq!(volume_target("./b:/b:ro").as_deref(), Ok("/b"));
        assert_eq!(volume_target("C:\\x:/x").as_deref(), Ok("/x"));
        assert_eq!(volume_target("${A:-x}:/a").as_deref(), Ok("/a"));
        assert_eq!(volume_target("ab").as_deref(), Ok("ab"));
        assert_eq!(volume_target("ab:/a:ro:x"), Err("too many colons"));
        assert_eq!(volume_target("ab::/a"), Err("empty section between colons"));
    }
}
