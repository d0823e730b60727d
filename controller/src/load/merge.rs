//! Merging compose trees: `-f` file N+1 onto files 1..N, and a service onto
//! the service it `extends`, with the per-path rules of compose v2.40.3.
//!
//! The rules follow compose's own merge so that `config` output agrees.
//! They apply where a key is present on both sides; a key only the later
//! file has is added exactly as written.
//!
//! - mappings merge key by key; sequences append; scalars are replaced; a
//!   null in the later file keeps the earlier value;
//! - `command`, `entrypoint`, `healthcheck.test` and each `ulimits.*` entry
//!   are replaced whole (even by null);
//! - `environment`, `labels`, `annotations`, `sysctls`, `dns*`, `env_file`,
//!   `label_file`, `tmpfs`, `build.args`, `build.labels`,
//!   `build.additional_contexts`, `deploy.labels` and the top-level
//!   `networks.*.labels` / `volumes.*.labels` are turned into `KEY=value`
//!   sequences (a mapping becomes its entries sorted, a string a one-entry
//!   list) and appended; [`enforce_unicity`] then keeps the last entry per key;
//! - `extra_hosts` likewise, dropping later entries equal to earlier ones;
//! - `build` given as a string becomes `{context: ...}`; `depends_on`,
//!   `networks` and `models` given as lists become mappings (`depends_on`
//!   entries get `condition: service_started`, `required: true`);
//! - `logging` merges only when both sides name the same driver (or one
//!   names none), otherwise the later one replaces it;
//! - `networks.*.ipam.config` entries are matched by `subnet`.
//!
//! Nothing else is normalized here: ports, volumes, secrets... stay in the
//! syntax they were written in, and [`enforce_unicity`] de-duplicates them by
//! what they were written as.
//!
//! The loader's order per document, as compose's: interpolate; take the
//! tags ([`MergeTags::take`]); resolve `extends` (for each extending service,
//! [`MergeTags::apply_to_service`] on a copy of its base, then
//! [`merge_service`], then drop `extends`); delete the tagged paths from the
//! earlier files' tree ([`MergeTags::apply`]); [`merge_files`];
//! [`enforce_unicity`]; the canonical long-form step; [`enforce_unicity`]
//! again, since only long forms reveal that `"80:80"` and
//! `{target: 80, published: "80"}` are one port. The merge accepts an
//! earlier tree in raw or canonical form.
use std::fmt::Write as _;

use crate::load::yaml::{Key, Mapping, Node, Resolved, Span, Value};

mod tags;
mod unicity;

pub use tags::{apply_reset_tags, MergeTags};
pub use unicity::enforce_unicity;

/// Why two compose trees could not be merged or de-duplicated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeError {
    /// A value merged by parts (a mapping or a sequence) met a value of
    /// another shape in a later file.
    #[error(
        "{at}: cannot override {path}: {found} cannot be merged onto {expected} (set at {base_at})"
    )]
    ShapeMismatch {
        /// Dotted path of the value.
        path: String,
        /// Where the later value is.
        at: Span,
        /// What the later value is.
        found: &'static str,
        /// What the earlier value is, or has to be.
        expected: &'static str,
        /// Where the earlier value is.
        base_at: Span,
    },
    /// A file's top level is not a mapping.
    #[error("{at}: top-level object must be a mapping, found {found}")]
    TopLevelNotMapping {
        /// Where the file's value starts.
        at: Span,
        /// What it is.
        found: &'static str,
    },
    /// A service (the extending one or its base) is not a mapping.
    #[error("{at}: {what} service must be a mapping, found {found}")]
    ServiceNotMapping {
        /// Where the service is.
        at: Span,
        /// `base` or `extending`.
        what: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// A list entry that has to be a name (`depends_on: [db]`) is not a string.
    #[error("{at}: {path}: list entries must be strings, found {found}")]
    EntryNotString {
        /// Dotted path of the entry.
        path: String,
        /// Where the entry is.
        at: Span,
        /// What it is.
        found: &'static str,
    },
    /// An entry of a de-duplicated sequence has a type compose cannot key by.
    #[error("{at}: {path}: unexpected {found} in this list")]
    UnexpectedEntry {
        /// Dotted path of the entry.
        path: String,
        /// Where the entry is.
        at: Span,
        /// What it is.
        found: &'static str,
    },
    /// A long-syntax entry lacks the field it is de-duplicated by.
    #[error("{at}: {path} is missing {field}")]
    MissingField {
        /// Dotted path of the entry.
        path: String,
        /// Where the entry is.
        at: Span,
        /// The field, as a phrase (`a mount target`).
        field: &'static str,
    },
    /// A short-syntax volume that does not parse.
    #[error("{at}: {path}: invalid volume spec {spec:?}: {reason}")]
    InvalidVolumeSpec {
        /// Dotted path of the entry.
        path: String,
        /// Where the entry is.
        at: Span,
        /// The spec as written.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl MergeError {
    /// Where the error is.
    pub fn span(&self) -> &Span {
        match self {
            MergeError::ShapeMismatch { at, .. }
            | MergeError::TopLevelNotMapping { at, .. }
            | MergeError::ServiceNotMapping { at, .. }
            | MergeError::EntryNotString { at, .. }
            | MergeError::UnexpectedEntry { at, .. }
            | MergeError::MissingField { at, .. }
            | MergeError::InvalidVolumeSpec { at, .. } => at,
        }
    }

    /// A short, stable name for metrics and status reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            MergeError::ShapeMismatch { .. } => "MergeShapeMismatch",
            MergeError::TopLevelNotMapping { .. } => "TopLevelNotMapping",
            MergeError::ServiceNotMapping { .. } => "ServiceNotMapping",
            MergeError::EntryNotString { .. } => "EntryNotString",
            MergeError::UnexpectedEntry { .. } => "UnexpectedListEntry",
            MergeError::MissingField { .. } => "MissingField",
            MergeError::InvalidVolumeSpec { .. } => "InvalidVolumeSpec",
        }
    }
}

/// Merges a later compose file onto the tree of the earlier ones.
///
/// `!reset` / `!override` tags still present in `overlay` are honoured
/// (see [`MergeTags`]); tags left in `base` are processed as in a first file.
/// A null `base` stands for "no file yet". The result is not de-duplicated:
/// run [`enforce_unicity`] on it, as compose does after every merge.
pub fn merge_files(base: Node, overlay: Node) -> Result<Node, MergeError> {
    let mut overlay = overlay;
    if overlay.as_map().is_none() {
        return Err(MergeError::TopLevelNotMapping {
            found: overlay.kind(),
            at: overlay.span,
        });
    }
    let tags = MergeTags::take(&mut overlay);
    let mut base = base;
    if base.is_null() {
        base = Node::map(overlay.span.clone());
    }
    apply_reset_tags(&mut base);
    tags.apply(&mut base);
    let base_span = base.span.clone();
    let base_map = match base.value {
        Value::Map(m) => m,
        other => {
            return Err(MergeError::TopLevelNotMapping {
                at: base_span,
                found: kind_of(&other),
            })
        }
    };
    let Value::Map(overlay_map) = overlay.value else {
        return Err(MergeError::TopLevelNotMapping {
            at: overlay.span,
            found: "not a mapping",
        });
    };
    let merged = merge_mappings(base_map, overlay_map, &mut Vec::new())?;
    Ok(Node {
        value: Value::Map(merged),
        span: base_span,
        tag: None,
    })
}

/// Merges a service onto the service it `extends` (compose's
/// `ExtendService`): the same rules as [`merge_files`] at `services.<name>`.
///
/// Tags still present in `overlay` delete the matching keys of `base` first.
/// The `extends` key of `overlay` is kept: removing it is the caller's step,
/// as is applying the file's other recorded tags ([`MergeTags::apply_to_service`]).
pub fn merge_service(base: &Node, overlay: &Node) -> Result<Node, MergeError> {
    if base.as_map().is_none() {
        return Err(MergeError::ServiceNotMapping {
            at: base.span.clone(),
            what: "base",
            found: base.kind(),
        });
    }
    if overlay.as_map().is_none() {
        return Err(MergeError::ServiceNotMapping {
            at: overlay.span.clone(),
            what: "extending",
            found: overlay.kind(),
        });
    }
    let mut overlay = overlay.clone();
    let tags = MergeTags::take(&mut overlay);
    let mut base = base.clone();
    apply_reset_tags(&mut base);
    tags.apply(&mut base);
    let mut path = vec!["services".to_string(), "x".to_string()];
    merge_yaml(base, overlay, &mut path)
}

/// How compose merges the value at one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The later value wins whole, even when null.
    Replace,
    /// Both sides become `KEY=value` sequences; the later one is appended.
    ToSequence,
    /// As `ToSequence`, without later entries equal to an earlier one.
    ExtraHosts,
    /// A string is `{context: string}`; then mappings merge.
    Build,
    /// Lists become mappings of default conditions; then mappings merge.
    DependsOn,
    /// Lists become mappings of nulls; then mappings merge.
    ToMapping,
    /// Options merge only for the same driver.
    Logging,
    /// Entries are matched by subnet.
    IpamConfig,
}

fn rule_for(path: &[String]) -> Option<Rule> {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["networks", _, "ipam", "config"] => Some(Rule::IpamConfig),
        ["networks" | "volumes", _, "labels"] => Some(Rule::ToSequence),
        ["services", _, rest @ ..] => match rest {
            ["command" | "entrypoint"] | ["healthcheck", "test"] | ["ulimits", _] => {
                Some(Rule::Replace)
            }
            ["annotations" | "dns" | "dns_opt" | "dns_search" | "env_file" | "label_file"
            | "environment" | "labels" | "sysctls" | "tmpfs"]
            | ["build", "args" | "additional_contexts" | "labels"]
            | ["deploy", "labels"]
            | ["volumes", _, "volume", "labels"] => Some(Rule::ToSequence),
            ["extra_hosts"] | ["build", "extra_hosts"] => Some(Rule::ExtraHosts),
            ["build"] => Some(Rule::Build),
            ["depends_on"] => Some(Rule::DependsOn),
            ["networks" | "models"] => Some(Rule::ToMapping),
            ["logging"] => Some(Rule::Logging),
            _ => None,
        },
        _ => None,
    }
}

/// Merges `overlay` onto `base`, both found at `path`.
fn merge_yaml(base: Node, overlay: Node, path: &mut Vec<String>) -> Result<Node, MergeError> {
    if let Some(rule) = rule_for(path) {
        return merge_by_rule(rule, base, overlay, path);
    }
    if overlay.is_null() {
        return Ok(base);
    }
    match (base.value, overlay.value) {
        (Value::Map(b), Value::Map(o)) => Ok(Node {
            value: Value::Map(merge_mappings(b, o, path)?),
            span: base.span,
            tag: None,
        }),
        (Value::Seq(mut b), Value::Seq(o)) => {
            b.extend(o);
            Ok(Node::seq(b, base.span))
        }
        (base_value @ (Value::Map(_) | Value::Seq(_)), overlay_value) => {
            Err(MergeError::ShapeMismatch {
                path: dotted(path),
                found: kind_of(&overlay_value),
                at: overlay.span,
                expected: kind_of(&base_value),
                base_at: base.span,
            })
        }
        (_, overlay_value) => Ok(Node {
            value: overlay_value,
            span: overlay.span,
            tag: None,
        }),
    }
}

/// Merges the entries of `overlay` into `base`: new keys are added as
/// written, keys on both sides merge by the rule of their path.
fn merge_mappings(
    mut base: Mapping,
    overlay: Mapping,
    path: &mut Vec<String>,
) -> Result<Mapping, MergeError> {
    for (name, (key, value)) in overlay {
        match base.get_mut(&name) {
            None => {
                base.insert(name, (key, value));
            }
            Some((_, slot)) => {
                let placeholder = Node::null(slot.span.clone());
                let earlier = std::mem::replace(slot, placeholder);
                path.push(name);
                let merged = merge_yaml(earlier, value, path);
                path.pop();
                *slot = merged?;
            }
        }
    }
    Ok(base)
}

fn merge_by_rule(
    rule: Rule,
    base: Node,
    overlay: Node,
    path: &mut Vec<String>,
) -> Result<Node, MergeError> {
    match rule {
        Rule::Replace => Ok(overlay),
        Rule::ToSequence => {
            let span = base.span.clone();
            let mut merged = into_sequence(base).unwrap_or_default();
            merged.extend(into_sequence(overlay).unwrap_or_default());
            Ok(Node::seq(merged, span))
        }
        Rule::ExtraHosts => {
            let span = base.span.clone();
            let mut merged = into_sequence(base).unwrap_or_default();
            let earlier: Vec<serde_json::Value> = merged.iter().map(Node::to_json).collect();
            merged.extend(
                into_sequence(overlay)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|entry| !earlier.contains(&entry.to_json())),
            );
            Ok(Node::seq(merged, span))
        }
        Rule::Build => {
            let (base_span, overlay_span) = (base.span.clone(), overlay.span.clone());
            let (base_kind, overlay_kind) = (base.kind(), overlay.kind());
            merge_converted(
                (build_mapping(base), base_span, base_kind),
                (build_mapping(overlay), overlay_span, overlay_kind),
                path,
            )
        }
        Rule::DependsOn | Rule::ToMapping => {
            let defaults = rule == Rule::DependsOn;
            let (base_span, overlay_span) = (base.span.clone(), overlay.span.clone());
            let (base_kind, overlay_kind) = (base.kind(), overlay.kind());
            let base_map = names_to_mapping(base, defaults, path)?;
            let overlay_map = names_to_mapping(overlay, defaults, path)?;
            merge_converted(
                (base_map, base_span, base_kind),
                (overlay_map, overlay_span, overlay_kind),
                path,
            )
        }
        Rule::Logging => merge_logging(base, overlay, path),
        Rule::IpamConfig => merge_ipam_config(base, overlay, path),
    }
}

/// Merges two values that were converted to mappings, where a side that
/// could not be converted counts as compose's nil mapping: nothing to add,
/// and nothing can be added to it.
fn merge_converted(
    base: (Option<Mapping>, Span, &'static str),
    overlay: (Option<Mapping>, Span, &'static str),
    path: &mut Vec<String>,
) -> Result<Node, MergeError> {
    let (base_map, base_span, base_kind) = base;
    let (overlay_map, overlay_span, overlay_kind) = overlay;
    let merged = match (base_map, overlay_map) {
        (Some(b), Some(o)) => merge_mappings(b, o, path)?,
        (Some(b), None) => b,
        (None, Some(o)) if !o.is_empty() => {
            return Err(MergeError::ShapeMismatch {
                path: dotted(path),
                at: overlay_span,
                found: overlay_kind,
                expected: base_kind,
                base_at: base_span,
            })
        }
        (None, _) => Mapping::new(),
    };
    Ok(Node {
        value: Value::Map(merged),
        span: base_span,
        tag: None,
    })
}

/// compose's `build: ./dir` shorthand as a mapping.
fn build_mapping(node: Node) -> Option<Mapping> {
    if node.as_str().is_some() {
        let mut m = Mapping::new();
        let key = Key {
            text: "context".into(),
            span: node.span.clone(),
        };
        m.insert("context".into(), (key, node));
        return Some(m);
    }
    match node.value {
        Value::Map(m) => Some(m),
        _ => None,
    }
}

/// A list of names as a mapping: each name to null, or for `depends_on` to
/// `{condition: service_started, required: true}`. Mappings pass through;
/// anything else is `None`.
fn names_to_mapping(
    node: Node,
    defaults: bool,
    path: &[String],
) -> Result<Option<Mapping>, MergeError> {
    let items = match node.value {
        Value::Map(m) => return Ok(Some(m)),
        Value::Seq(items) => items,
        Value::Scalar(_) => return Ok(None),
    };
    let mut m = Mapping::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Some(name) = item.as_str().map(str::to_string) else {
            return Err(MergeError::EntryNotString {
                path: format!("{}[{i}]", dotted(path)),
                found: item.kind(),
                at: item.span,
            });
        };
        let span = item.span.clone();
        let value = if defaults {
            let mut d = Mapping::new();
            let entry = |k: &str, v: Node| {
                let key = Key {
                    text: k.into(),
                    span: span.clone(),
                };
                (k.to_string(), (key, v))
            };
            let (k, v) = entry("condition", Node::string("service_started", span.clone()));
            d.insert(k, v);
            let (k, v) = entry("required", Node::plain("true", span.clone()));
            d.insert(k, v);
            Node {
                value: Value::Map(d),
                span: span.clone(),
                tag: None,
            }
        } else {
            Node::null(span.clone())
        };
        m.insert(name.clone(), (Key { text: name, span }, value));
    }
    Ok(Some(m))
}

/// A `KEY=value` sequence from a mapping (entries sorted, as compose sorts
/// them), a sequence (as is) or a string (one entry); `None` otherwise.
fn into_sequence(node: Node) -> Option<Vec<Node>> {
    if node.as_str().is_some() {
        return Some(vec![node]);
    }
    match node.value {
        Value::Seq(items) => Some(items),
        Value::Map(m) => {
            let mut entries: Vec<Node> = Vec::with_capacity(m.len());
            for (name, (key, value)) in m {
                if value.is_null() {
                    entries.push(Node::string(name, key.span));
                } else if let Value::Seq(items) = &value.value {
                    for item in items {
                        let text = format!("{name}={}", go_value(item));
                        entries.push(Node::string(text, item.span.clone()));
                    }
                } else {
                    let text = format!("{name}={}", go_value(&value));
                    entries.push(Node::string(text, key.span));
                }
            }
            entries.sort_by(|a, b| scalar_text(a).cmp(scalar_text(b)));
            Some(entries)
        }
        Value::Scalar(_) => None,
    }
}

fn scalar_text(node: &Node) -> &str {
    node.as_scalar().map(|s| s.text.as_str()).unwrap_or("")
}

fn merge_logging(base: Node, overlay: Node, path: &mut Vec<String>) -> Result<Node, MergeError> {
    let later = overlay.get("driver").map(Node::to_json);
    let earlier = base.get("driver").map(Node::to_json);
    match (base.value, overlay.value) {
        (Value::Map(b), Value::Map(o)) => {
            if later.is_some() && earlier.is_some() && later != earlier {
                return Ok(Node {
                    value: Value::Map(o),
                    span: overlay.span,
                    tag: None,
                });
            }
            Ok(Node {
                value: Value::Map(merge_mappings(b, o, path)?),
                span: base.span,
                tag: None,
            })
        }
        // Compose assumes both sides are mappings here (and crashes otherwise).
        (Value::Map(_), overlay_value) => Err(MergeError::ShapeMismatch {
            path: dotted(path),
            at: overlay.span,
            found: kind_of(&overlay_value),
            expected: "a mapping",
            base_at: base.span,
        }),
        (base_value, _) => Err(MergeError::ShapeMismatch {
            path: dotted(path),
            at: base.span,
            found: kind_of(&base_value),
            expected: "a mapping",
            base_at: overlay.span,
        }),
    }
}

/// An IPAM config entry during the merge: the (growing) merge of earlier
/// entry `i`, or later entry `j` taken as is.
#[derive(Clone, Copy)]
enum IpamSlot {
    Earlier(usize),
    Later(usize),
}

/// One IPAM config entry as compose sees it while matching: a mapping, or
/// compose's nil mapping for anything else.
type IpamEntry = (Option<Mapping>, Span);

fn ipam_subnet(entry: &IpamEntry) -> Option<serde_json::Value> {
    entry
        .0
        .as_ref()
        .and_then(|m| m.get("subnet"))
        .map(|(_, v)| v.to_json())
        .filter(|v| !v.is_null())
}

/// compose's subnet matching for `networks.*.ipam.config`, reproduced with
/// its quirks: earlier entries that no later entry matches are dropped, and
/// an earlier entry merged with a later one takes the later subnet.
fn merge_ipam_config(
    base: Node,
    overlay: Node,
    path: &mut Vec<String>,
) -> Result<Node, MergeError> {
    let base_span = base.span.clone();
    let (configs, overrides) = match (base.value, overlay.value) {
        (Value::Seq(c), Value::Seq(o)) => (c, o),
        (base_value, overlay_value) => {
            let (at, found) = if matches!(base_value, Value::Seq(_)) {
                (overlay.span, kind_of(&overlay_value))
            } else {
                (base_span.clone(), kind_of(&base_value))
            };
            return Err(MergeError::ShapeMismatch {
                path: dotted(path),
                at,
                found,
                expected: "a sequence",
                base_at: base_span,
            });
        }
    };
    let mut earlier: Vec<IpamEntry> = Vec::with_capacity(configs.len());
    for config in configs {
        let span = config.span.clone();
        earlier.push((names_to_mapping(config, false, path)?, span));
    }
    let mut later: Vec<IpamEntry> = Vec::with_capacity(overrides.len());
    for entry in overrides {
        let span = entry.span.clone();
        later.push((names_to_mapping(entry, false, path)?, span));
    }
    let slot_subnet = |slot: IpamSlot, earlier: &[IpamEntry]| match slot {
        IpamSlot::Earlier(i) => ipam_subnet(&earlier[i]),
        IpamSlot::Later(j) => ipam_subnet(&later[j]),
    };
    let mut result: Vec<IpamSlot> = Vec::new();
    for i in 0..earlier.len() {
        for (j, left) in later.iter().enumerate() {
            let left_subnet = ipam_subnet(left);
            if left_subnet != ipam_subnet(&earlier[i]) {
                let known = result
                    .iter()
                    .any(|s| slot_subnet(*s, &earlier) == left_subnet);
                if !known {
                    result.push(IpamSlot::Later(j));
                    continue;
                }
            }
            let merged = match (earlier[i].0.take(), left.0.clone()) {
                (Some(r), Some(l)) => Some(merge_mappings(r, l, path)?),
                (r, None) => r,
                (None, Some(l)) if l.is_empty() => None,
                (None, Some(_)) => {
                    return Err(MergeError::ShapeMismatch {
                        path: dotted(path),
                        at: left.1.clone(),
                        found: "a mapping",
                        // Only scalars fail to convert to a mapping.
                        expected: "a scalar",
                        base_at: earlier[i].1.clone(),
                    });
                }
            };
            earlier[i].0 = merged;
            let merged_subnet = ipam_subnet(&earlier[i]);
            match result
                .iter()
                .position(|s| slot_subnet(*s, &earlier) == merged_subnet)
            {
                Some(k) => result[k] = IpamSlot::Earlier(i),
                None => result.push(IpamSlot::Earlier(i)),
            }
        }
    }
    let items = result
        .into_iter()
        .map(|slot| {
            let (m, span) = match slot {
                IpamSlot::Earlier(i) => &earlier[i],
                IpamSlot::Later(j) => &later[j],
            };
            Node {
                value: Value::Map(m.clone().unwrap_or_default()),
                span: span.clone(),
                tag: None,
            }
        })
        .collect();
    Ok(Node::seq(items, base_span))
}

/// A path as compose prints it: `services.web.environment`.
fn dotted(path: &[String]) -> String {
    path.join(".")
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Map(_) => "a mapping",
        Value::Seq(_) => "a sequence",
        Value::Scalar(_) => "a scalar",
    }
}

/// A value as Go's `%v` prints it once YAML-typed: what compose writes
/// after `KEY=` when it turns a mapping into a list.
fn go_value(node: &Node) -> String {
    match &node.value {
        Value::Scalar(s) => match s.resolve() {
            Resolved::Null => "<nil>".into(),
            _ => s.canonical_text().unwrap_or_default(),
        },
        Value::Seq(items) => {
            let inner: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Map(m) => {
            let mut entries: Vec<(&String, &Node)> = m.iter().map(|(k, (_, v))| (k, v)).collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let mut out = String::from("map[");
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{k}:{}", go_value(v));
            }
            out.push(']');
            out
        }
    }
}

/// Go's name for the type a node decodes to, as its `%!verb(type=value)`
/// error forms print it.
fn go_type(node: &Node) -> &'static str {
    match &node.value {
        Value::Map(_) => "map[string]interface {}",
        Value::Seq(_) => "[]interface {}",
        Value::Scalar(s) => match s.resolve() {
            Resolved::Null => "<nil>",
            Resolved::Bool(_) => "bool",
            Resolved::Int(_) => "int",
            Resolved::UInt(_) => "uint64",
            Resolved::Float(_) => "float64",
            Resolved::Timestamp => "time.Time",
            Resolved::Str => "string",
        },
    }
}

/// A value as Go's `fmt.Sprintf("%s", v)` prints it. compose builds the
/// de-duplication keys of ports and mounts this way, so two entries collide
/// exactly when these texts are equal.
fn go_format_s(node: Option<&Node>) -> String {
    match node {
        None => "%!s(<nil>)".into(),
        Some(n) if n.is_null() => "%!s(<nil>)".into(),
        Some(n) => match n.as_str() {
            Some(s) => s.to_string(),
            None => format!("%!s({}={})", go_type(n), go_value(n)),
        },
    }
}

/// A value as Go's `fmt.Sprintf("%d", v)` prints it.
fn go_format_d(node: Option<&Node>) -> String {
    match node {
        None => "%!d(<nil>)".into(),
        Some(n) if n.is_null() => "%!d(<nil>)".into(),
        Some(n) => match n.as_scalar().map(|s| s.resolve()) {
            Some(Resolved::Int(i)) => i.to_string(),
            Some(Resolved::UInt(u)) => u.to_string(),
            _ => format!("%!d({}={})", go_type(n), go_value(n)),
        },
    }
}

#[cfg(test)]
mod tests;
