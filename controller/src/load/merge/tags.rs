//! `!reset` and `!override`: which keys of the earlier tree a later file
//! removes before it is merged, recorded the way compose records them.
//!
//! compose reads the tags once per document: a `!reset` value is dropped
//! from the document and its path recorded; an `!override` value stays and
//! its path is recorded too. Before the merge, every key of the earlier tree
//! at a recorded path is deleted, so `!reset` leaves nothing and
//! `!override` leaves the new value alone, unmerged. Paths through a
//! sequence are recorded by compose in a form that never matches anything,
//! so a tag inside a list only drops (`!reset`) or keeps (`!override`) that
//! item. Inside an `!override` value compose stops looking: nested tags are
//! kept as values, and a tagged scalar decodes as a string of its text.
use crate::load::yaml::{MergeTag, Node, Style, Value};

/// The paths one document's `!reset` / `!override` tags name, to delete
/// from the tree the document is merged onto.
///
/// The loader takes them once per document, before `extends` (which applies
/// them to each extended base with [`MergeTags::apply_to_service`]) and
/// before the `-f` merge ([`MergeTags::apply`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeTags {
    paths: Vec<Vec<String>>,
}

impl MergeTags {
    /// Removes the tags from a document and records their paths: `!reset`
    /// values are dropped, `!override` values are kept as plain values.
    pub fn take(document: &mut Node) -> MergeTags {
        let mut paths = Vec::new();
        if document.tag.is_some() {
            make_literal(document);
        }
        strip(document, &mut Vec::new(), true, &mut paths);
        MergeTags { paths }
    }

    /// True when the document had no tag that affects the earlier tree.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The recorded paths, as lists of mapping keys from the document root.
    pub fn paths(&self) -> &[Vec<String>] {
        &self.paths
    }

    /// Deletes from `model` (the tree of the earlier files) every key at a
    /// recorded path.
    pub fn apply(&self, model: &mut Node) {
        let candidates: Vec<&[String]> = self.paths.iter().map(Vec::as_slice).collect();
        if !candidates.is_empty() {
            delete_matching(model, 0, &candidates);
        }
    }

    /// Deletes from `base` (a copy of the service that service `name`
    /// extends) every key the document's tags name under `services.<name>`.
    pub fn apply_to_service(&self, name: &str, base: &mut Node) {
        let candidates: Vec<&[String]> = self
            .paths
            .iter()
            .filter(|p| {
                p.len() > 2 && (p[0] == "services" || p[0] == "*") && (p[1] == name || p[1] == "*")
            })
            .map(Vec::as_slice)
            .collect();
        if !candidates.is_empty() {
            delete_matching(base, 2, &candidates);
        }
    }
}

/// Processes the tags of a document that is merged onto nothing (the first
/// `-f` file): `!reset` values are dropped, `!override` values kept.
pub fn apply_reset_tags(node: &mut Node) {
    MergeTags::take(node);
}

fn strip(node: &mut Node, path: &mut Vec<String>, record: bool, paths: &mut Vec<Vec<String>>) {
    match &mut node.value {
        Value::Map(m) => m.retain(|name, (_, value)| match value.tag {
            Some(tag) => {
                if record {
                    let mut recorded = path.clone();
                    recorded.push(name.clone());
                    paths.push(recorded);
                }
                if tag == MergeTag::Override {
                    make_literal(value);
                }
                tag == MergeTag::Override
            }
            None => {
                path.push(name.clone());
                strip(value, path, record, paths);
                path.pop();
                true
            }
        }),
        Value::Seq(items) => items.retain_mut(|item| match item.tag {
            Some(tag) => {
                if tag == MergeTag::Override {
                    make_literal(item);
                }
                tag == MergeTag::Override
            }
            None => {
                strip(item, path, false, paths);
                true
            }
        }),
        Value::Scalar(_) => {}
    }
}

/// Clears the tags of an `!override` value. compose decodes a scalar with a
/// tag it does not know as the string it was written as (`!override 3` is
/// `"3"`, `!reset` alone is `""`), and does not look for tags further in.
fn make_literal(node: &mut Node) {
    let was_tagged = node.tag.take().is_some();
    match &mut node.value {
        Value::Scalar(s) => {
            if was_tagged {
                s.style = Style::Quoted;
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(make_literal),
        Value::Map(m) => m.values_mut().for_each(|(_, v)| make_literal(v)),
    }
}

/// Deletes the mapping keys of `node` (found `depth` keys down) that end a
/// candidate path; a `*` part matches any key, as in compose's path patterns.
fn delete_matching(node: &mut Node, depth: usize, candidates: &[&[String]]) {
    let here = |name: &str| -> Vec<&[String]> {
        candidates
            .iter()
            .copied()
            .filter(|p| p.len() > depth && (p[depth] == "*" || p[depth] == name))
            .collect()
    };
    match &mut node.value {
        Value::Map(m) => m.retain(|name, (_, value)| {
            let matching = here(name);
            if matching.iter().any(|p| p.len() == depth + 1) {
                return false;
            }
            if !matching.is_empty() {
                delete_matching(value, depth + 1, &matching);
            }
            true
        }),
        Value::Seq(items) => {
            // compose names list items `[i]` here; no recorded key can be
            // that unless a document used such a key, so this rarely runs.
            let possible = candidates
                .iter()
                .any(|p| p.len() > depth && (p[depth] == "*" || p[depth].starts_with('[')));
            if !possible {
                return;
            }
            for (i, item) in items.iter_mut().enumerate() {
                let matching = here(&format!("[{i}]"));
                // compose cannot delete from a list: a full match is skipped.
                if !matching.is_empty() && matching.iter().all(|p| p.len() > depth + 1) {
                    delete_matching(item, depth + 1, &matching);
                }
            }
        }
        Value::Scalar(_) => {}
    }
}
