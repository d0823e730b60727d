//! Applies variable substitution to every value of a compose tree (never to
//! keys, as compose does), and types the results of the fields compose
//! casts after substitution (`replicas: ${N}` becomes an integer).
use super::interpolate::{substitute, InterpolationError};
use super::limits::MAX_INTERPOLATED_BYTES;
use super::yaml::{Node, Scalar, Span, Style, Value};

/// A substitution failed somewhere in the tree.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{at}: {path}: {source}")]
pub struct TreeInterpolationError {
    /// The value that failed.
    pub at: Span,
    /// Its dotted path.
    pub path: String,
    /// Why.
    #[source]
    pub source: InterpolationError,
}

/// Paths whose substituted values compose re-types (`*` is any key, `[]` any item).
const CAST_PATHS: &[&[&str]] = &[
    &["services", "*", "cpu_count"],
    &["services", "*", "cpu_percent"],
    &["services", "*", "cpu_period"],
    &["services", "*", "cpu_quota"],
    &["services", "*", "cpu_rt_period"],
    &["services", "*", "cpu_rt_runtime"],
    &["services", "*", "cpus"],
    &["services", "*", "cpu_shares"],
    &["services", "*", "init"],
    &["services", "*", "deploy", "replicas"],
    &["services", "*", "deploy", "update_config", "parallelism"],
    &[
        "services",
        "*",
        "deploy",
        "update_config",
        "max_failure_ratio",
    ],
    &["services", "*", "deploy", "rollback_config", "parallelism"],
    &[
        "services",
        "*",
        "deploy",
        "rollback_config",
        "max_failure_ratio",
    ],
    &["services", "*", "deploy", "restart_policy", "max_attempts"],
    &[
        "services",
        "*",
        "deploy",
        "placement",
        "max_replicas_per_node",
    ],
    &["services", "*", "healthcheck", "retries"],
    &["services", "*", "healthcheck", "disable"],
    &["services", "*", "oom_kill_disable"],
    &["services", "*", "oom_score_adj"],
    &["services", "*", "pids_limit"],
    &["services", "*", "ports", "[]", "target"],
    &["services", "*", "privileged"],
    &["services", "*", "read_only"],
    &["services", "*", "scale"],
    &["services", "*", "stdin_open"],
    &["services", "*", "tty"],
    &["services", "*", "ulimits", "*"],
    &["services", "*", "ulimits", "*", "hard"],
    &["services", "*", "ulimits", "*", "soft"],
    &["services", "*", "volumes", "[]", "read_only"],
    &["services", "*", "volumes", "[]", "volume", "nocopy"],
    &["networks", "*", "external"],
    &["networks", "*", "internal"],
    &["networks", "*", "attachable"],
    &["networks", "*", "enable_ipv4"],
    &["networks", "*", "enable_ipv6"],
    &["volumes", "*", "external"],
    &["secrets", "*", "external"],
    &["configs", "*", "external"],
];

/// Matches a concrete path against a pattern of keys, `*` and `[]`.
pub fn path_matches(path: &[PathPart<'_>], pattern: &[&str]) -> bool {
    path.len() == pattern.len()
        && path
            .iter()
            .zip(pattern)
            .all(|(part, want)| match (part, *want) {
                (PathPart::Index, "[]") => true,
                (PathPart::Key(_), "*") => true,
                (PathPart::Key(k), w) => *k == w,
                _ => false,
            })
}

/// One step of a path while walking a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPart<'a> {
    /// A mapping key.
    Key(&'a str),
    /// Any sequence item.
    Index,
}

/// Renders a walking path as `services.web.ports[]`.
pub fn render(path: &[PathPart<'_>]) -> String {
    let mut out = String::new();
    for part in path {
        match part {
            PathPart::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathPart::Index => out.push_str("[]"),
        }
    }
    out
}

/// Substitutes variables in every scalar value of `node`; names of unset
/// variables go to `unset` (once each, in order of first use). `produced`
/// counts the bytes interpolation produced so far in this load; the walk
/// stops at the value that takes it past
/// [`super::limits::MAX_INTERPOLATED_BYTES`].
pub fn interpolate_tree(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
    produced: &mut usize,
) -> Result<(), TreeInterpolationError> {
    let mut path = Vec::new();
    let mut walker = Walker {
        lookup,
        unset,
        produced,
    };
    walker.walk(node, &mut path)
}

/// Substitutes variables in one string, with the same error type.
pub fn interpolate_value(
    text: &str,
    at: &Span,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, TreeInterpolationError> {
    match substitute(text, lookup) {
        Ok(done) => {
            for name in done.unset {
                if !unset.contains(&name) {
                    unset.push(name);
                }
            }
            Ok(done.value)
        }
        Err(source) => Err(TreeInterpolationError {
            at: at.clone(),
            path: path.to_string(),
            source,
        }),
    }
}

struct Walker<'w> {
    lookup: &'w dyn Fn(&str) -> Option<String>,
    unset: &'w mut Vec<String>,
    produced: &'w mut usize,
}

impl Walker<'_> {
    fn walk<'a>(
        &mut self,
        node: &'a mut Node,
        path: &mut Vec<PathPart<'a>>,
    ) -> Result<(), TreeInterpolationError> {
        match &mut node.value {
            Value::Scalar(scalar) => {
                if !scalar.text.contains('$')
                    || (scalar.style == Style::Plain && !is_plain_string(scalar))
                {
                    return Ok(());
                }
                let value = interpolate_value(
                    &scalar.text,
                    &node.span,
                    &render(path),
                    self.lookup,
                    self.unset,
                )?;
                *self.produced = self.produced.saturating_add(value.len());
                if *self.produced > MAX_INTERPOLATED_BYTES {
                    return Err(TreeInterpolationError {
                        at: node.span.clone(),
                        path: render(path),
                        source: InterpolationError::TotalTooLong {
                            limit: MAX_INTERPOLATED_BYTES,
                        },
                    });
                }
                let cast = CAST_PATHS.iter().any(|pattern| path_matches(path, pattern));
                *scalar = Scalar {
                    text: value,
                    style: if cast { Style::Plain } else { Style::Quoted },
                };
                Ok(())
            }
            Value::Seq(items) => {
                for item in items.iter_mut() {
                    path.push(PathPart::Index);
                    self.walk(item, path)?;
                    path.pop();
                }
                Ok(())
            }
            Value::Map(map) => {
                for (key, (_, value)) in map.iter_mut() {
                    path.push(PathPart::Key(key.as_str()));
                    self.walk(value, path)?;
                    path.pop();
                }
                Ok(())
            }
        }
    }
}

fn is_plain_string(scalar: &Scalar) -> bool {
    scalar.resolve() == super::yaml::Resolved::Str
}
