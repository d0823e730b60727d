//! Merged compose trees → the canonical long form compose prints: every short
//! syntax expanded, values typed and defaults filled, as compose-go's
//! `transform` package, its type decoders and `loader/normalize.go` do.
//!
//! What is left to later steps (they run on this module's output):
//! - paths: `build.context` (unless it holds `://`, starts with `service:` or
//!   is a git/http reference), `build.additional_contexts.*` (same rule),
//!   `build.ssh.*` values, `env_file[].path`, `label_file[]`, `extends.file`,
//!   `develop.watch[].path` (symlinks resolved too), `volumes[].source` when
//!   `type: bind`, top-level `configs.*.file` / `secrets.*.file`, top-level
//!   `volumes.*.driver_opts.device` when `driver: local` and `o: bind`, and
//!   `include[].path` / `project_directory` / `env_file`. A leading `~` is the
//!   home directory everywhere; relative paths join the project directory
//!   and are cleaned; bind sources and secret/config files that are Windows
//!   absolute (`C:\x`, `C:/x`, `\\host`) are kept as written (`a:` alone is
//!   relative). A bind without `source` is an error there.
//! - environment: `environment` values left `null` (`KEY` without `=`, or
//!   `KEY:` in a mapping) are looked up in the project environment and stay
//!   `null` when unset; `build.args` values left `null` are looked up and
//!   dropped when unset; `env_file` contents are merged under `environment`;
//!   `configs.*.environment` / `secrets.*.environment` name the variable that
//!   gives the content.
//! - normalization (`load::normalize`, once after all files merged): implied
//!   dependencies, the `default` network, cleaned volume targets, resource names.
//! - printing: zero values compose omits stay here (`size: "0"`,
//!   `update_config.delay: "0s"`, `privileged: false`), `x-` keys inside
//!   services and other typed objects stay (compose does not print them),
//!   and `build.ssh` is a mapping (compose prints its ids as a list).
//!
//! Interpolated values must reach this module as quoted (string) scalars,
//! as they are strings in compose: `A: ${X}` with `X=0777` stays `"0777"`.
use std::fmt;

use super::yaml::{Node, Span, Value};

mod convert;
mod ports;
mod resources;
mod service;
mod shellwords;
mod tree;
mod unicity;
mod volumes;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

pub use convert::{format_duration, parse_duration, parse_size};
pub use ports::{parse_port_spec, PortSpec};
pub use shellwords::split_command;
pub(crate) use volumes::split_volume_spec;

/// Rewrites every `extra_hosts` (services and builds) as compose prints it,
/// once all files and `extends` merged: sorted `host=ip` entries.
pub fn finish_extra_hosts(project: &mut Node) -> Result<(), TransformError> {
    let Some(services) = project.get_mut("services").and_then(Node::as_map_mut) else {
        return Ok(());
    };
    for (name, (_, service)) in services.iter_mut() {
        if let Some(hosts) = service.get_mut("extra_hosts") {
            service::extra_hosts(hosts, &format!("services.{name}.extra_hosts"))?;
        }
        if let Some(hosts) = service
            .get_mut("build")
            .and_then(|b| b.get_mut("extra_hosts"))
        {
            service::extra_hosts(hosts, &format!("services.{name}.build.extra_hosts"))?;
        }
    }
    Ok(())
}
pub use volumes::{parse_volume_spec, BindOptions, VolumeOptions, VolumeSpec};

/// Why a compose tree could not be brought to its canonical form.
///
/// Every variant names the offending node's place in the file and its dotted
/// path in the merged model (`services.web.ports[2]`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    /// A value has a type the field does not take (a number where a list is due...).
    #[error("{span}: {path}: {message}")]
    WrongType {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// What was expected.
        message: String,
    },
    /// A YAML timestamp (an unquoted date) where compose wants a string.
    #[error("{span}: {path}: {message}")]
    UnquotedTimestamp {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// What to do about it.
        message: String,
    },
    /// A port spec that does not parse.
    #[error("{span}: {path}: {message}")]
    InvalidPort {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Why it does not parse.
        message: String,
    },
    /// A short volume spec that does not parse.
    #[error("{span}: {path}: {message}")]
    InvalidVolume {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Why it does not parse.
        message: String,
    },
    /// A short device mapping with more than three parts.
    #[error("{span}: {path}: {message}")]
    InvalidDevice {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Why it does not parse.
        message: String,
    },
    /// A command string with unbalanced quotes or a stray parenthesis.
    #[error("{span}: {path}: {message}")]
    InvalidCommand {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Why it does not split.
        message: String,
    },
    /// A byte size (`mem_limit`, `shm_size`...) that does not parse.
    #[error("{span}: {path}: {message}")]
    InvalidSize {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Why it does not parse.
        message: String,
    },
    /// A duration (`interval`, `stop_grace_period`...) that does not parse.
    #[error("{span}: {path}: {message}")]
    InvalidDuration {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Why it does not parse.
        message: String,
    },
    /// A number field holding text that is not a number, or one out of range.
    #[error("{span}: {path}: {message}")]
    InvalidNumber {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Why it is refused.
        message: String,
    },
    /// A boolean field holding text that is not a boolean.
    #[error("{span}: {path}: {message}")]
    InvalidBoolean {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Why it is refused.
        message: String,
    },
    /// A `KEY=VALUE` list entry that is malformed.
    #[error("{span}: {path}: {message}")]
    InvalidKeyValue {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Why it is refused.
        message: String,
    },
    /// An `extra_hosts` entry without an address or with a bad host name.
    #[error("{span}: {path}: {message}")]
    InvalidExtraHost {
        /// Where the value was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Why it is refused.
        message: String,
    },
    /// `name` and the deprecated `external.name` disagree.
    #[error("{span}: {path}: {message}")]
    ConflictingNames {
        /// Where the resource was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// Both names.
        message: String,
    },
    /// A port, volume or device without the target compose identifies it by.
    #[error("{span}: {path}: {message}")]
    MissingTarget {
        /// Where the entry was written.
        span: Span,
        /// Its dotted path.
        path: String,
        /// What is missing.
        message: String,
    },
}

/// The kinds of [`TransformError`], for building one at a node.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    WrongType,
    UnquotedTimestamp,
    InvalidPort,
    InvalidVolume,
    InvalidDevice,
    InvalidCommand,
    InvalidSize,
    InvalidDuration,
    InvalidNumber,
    InvalidBoolean,
    InvalidKeyValue,
    InvalidExtraHost,
    ConflictingNames,
    MissingTarget,
}

impl TransformError {
    pub(crate) fn at(kind: Kind, span: &Span, path: &str, message: impl Into<String>) -> Self {
        let (span, path, message) = (span.clone(), path.to_string(), message.into());
        match kind {
            Kind::WrongType => TransformError::WrongType {
                span,
                path,
                message,
            },
            Kind::UnquotedTimestamp => TransformError::UnquotedTimestamp {
                span,
                path,
                message,
            },
            Kind::InvalidPort => TransformError::InvalidPort {
                span,
                path,
                message,
            },
            Kind::InvalidVolume => TransformError::InvalidVolume {
                span,
                path,
                message,
            },
            Kind::InvalidDevice => TransformError::InvalidDevice {
                span,
                path,
                message,
            },
            Kind::InvalidCommand => TransformError::InvalidCommand {
                span,
                path,
                message,
            },
            Kind::InvalidSize => TransformError::InvalidSize {
                span,
                path,
                message,
            },
            Kind::InvalidDuration => TransformError::InvalidDuration {
                span,
                path,
                message,
            },
            Kind::InvalidNumber => TransformError::InvalidNumber {
                span,
                path,
                message,
            },
            Kind::InvalidBoolean => TransformError::InvalidBoolean {
                span,
                path,
                message,
            },
            Kind::InvalidKeyValue => TransformError::InvalidKeyValue {
                span,
                path,
                message,
            },
            Kind::InvalidExtraHost => TransformError::InvalidExtraHost {
                span,
                path,
                message,
            },
            Kind::ConflictingNames => TransformError::ConflictingNames {
                span,
                path,
                message,
            },
            Kind::MissingTarget => TransformError::MissingTarget {
                span,
                path,
                message,
            },
        }
    }

    /// A value of the wrong type at `node`.
    pub(crate) fn wrong_type(node: &Node, path: &str, expected: &str) -> Self {
        TransformError::at(
            Kind::WrongType,
            &node.span,
            path,
            format!("must be {expected}, not {}", node.kind()),
        )
    }

    fn parts(&self) -> (&Span, &str, &str) {
        match self {
            TransformError::WrongType {
                span,
                path,
                message,
            }
            | TransformError::UnquotedTimestamp {
                span,
                path,
                message,
            }
            | TransformError::InvalidPort {
                span,
                path,
                message,
            }
            | TransformError::InvalidVolume {
                span,
                path,
                message,
            }
            | TransformError::InvalidDevice {
                span,
                path,
                message,
            }
            | TransformError::InvalidCommand {
                span,
                path,
                message,
            }
            | TransformError::InvalidSize {
                span,
                path,
                message,
            }
            | TransformError::InvalidDuration {
                span,
                path,
                message,
            }
            | TransformError::InvalidNumber {
                span,
                path,
                message,
            }
            | TransformError::InvalidBoolean {
                span,
                path,
                message,
            }
            | TransformError::InvalidKeyValue {
                span,
                path,
                message,
            }
            | TransformError::InvalidExtraHost {
                span,
                path,
                message,
            }
            | TransformError::ConflictingNames {
                span,
                path,
                message,
            }
            | TransformError::MissingTarget {
                span,
                path,
                message,
            } => (span, path, message),
        }
    }

    /// Where the offending value was written.
    pub fn span(&self) -> &Span {
        self.parts().0
    }

    /// The offending value's dotted path (`services.web.ports[2]`).
    pub fn path(&self) -> &str {
        self.parts().1
    }

    /// The explanation, without place or path.
    pub fn message(&self) -> &str {
        self.parts().2
    }

    /// A stable, low-cardinality name for metrics and status reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            TransformError::WrongType { .. } => "WrongType",
            TransformError::UnquotedTimestamp { .. } => "UnquotedTimestamp",
            TransformError::InvalidPort { .. } => "InvalidPort",
            TransformError::InvalidVolume { .. } => "InvalidVolume",
            TransformError::InvalidDevice { .. } => "InvalidDevice",
            TransformError::InvalidCommand { .. } => "InvalidCommand",
            TransformError::InvalidSize { .. } => "InvalidSize",
            TransformError::InvalidDuration { .. } => "InvalidDuration",
            TransformError::InvalidNumber { .. } => "InvalidNumber",
            TransformError::InvalidBoolean { .. } => "InvalidBoolean",
            TransformError::InvalidKeyValue { .. } => "InvalidKeyValue",
            TransformError::InvalidExtraHost { .. } => "InvalidExtraHost",
            TransformError::ConflictingNames { .. } => "ConflictingNames",
            TransformError::MissingTarget { .. } => "MissingTarget",
        }
    }
}

/// A finding that does not stop the load (a deprecated spelling...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformWarning {
    /// Where the value was written.
    pub span: Span,
    /// Its dotted path.
    pub path: String,
    /// The advice, worded as compose words it.
    pub message: String,
}

impl fmt::Display for TransformWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.span, self.path, self.message)
    }
}

/// State shared by the transforms of one project.
#[derive(Default)]
pub(crate) struct Cx {
    pub(crate) warnings: Vec<TransformWarning>,
}

impl Cx {
    pub(crate) fn warn(&mut self, span: &Span, path: &str, message: impl Into<String>) {
        self.warnings.push(TransformWarning {
            span: span.clone(),
            path: path.to_string(),
            message: message.into(),
        });
    }
}

/// Converts a merged project (the top-level mapping) to the canonical long
/// form in place. Warnings are dropped; see [`canonicalize_with_warnings`].
pub fn canonicalize(project: &mut Node) -> Result<(), TransformError> {
    canonicalize_with_warnings(project).map(|_| ())
}

/// [`canonicalize`], returning the warnings compose would print
/// (`external.name` is deprecated, `yes` read as a boolean...).
pub fn canonicalize_with_warnings(
    project: &mut Node,
) -> Result<Vec<TransformWarning>, TransformError> {
    let mut cx = Cx::default();
    if !matches!(project.value, Value::Map(_)) {
        return Err(TransformError::at(
            Kind::WrongType,
            &project.span,
            "(top level)",
            format!("the top level must be a mapping, not {}", project.kind()),
        ));
    }
    tree::reject_timestamps(project, "")?;
    let Some(top) = project.as_map_mut() else {
        return Ok(cx.warnings);
    };
    for (key, (_, node)) in top.iter_mut() {
        let path = key.as_str();
        match path {
            "services" => service::services(node, path, &mut cx)?,
            "networks" | "volumes" | "secrets" | "configs" => {
                resources::top_level(node, path, &mut cx)?
            }
            "include" => resources::include(node, path)?,
            _ => {}
        }
    }
    Ok(cx.warnings)
}
