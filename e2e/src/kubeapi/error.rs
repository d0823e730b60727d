//! The errors of the API server and their wire form: a `Status` object with
//! the reason and code the real Kubernetes API server gives.

use serde_json::{json, Value};

/// A request the server refuses, named for the `reason` it answers with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The object, resource or path does not exist.
    #[error("{message}")]
    NotFound {
        /// What the client reads.
        message: String,
        /// `details` (name, group, kind) when an object was named.
        details: Option<Value>,
    },
    /// Creating an object whose name is taken.
    #[error("{qualified} \"{name}\" already exists")]
    AlreadyExists {
        /// `configmaps` or `stacks.stackd.dev`.
        qualified: String,
        /// The object's name.
        name: String,
    },
    /// A write with a stale resourceVersion or a failed precondition.
    #[error("Operation cannot be fulfilled on {qualified} \"{name}\": {reason}")]
    Conflict {
        /// `configmaps` or `stacks.stackd.dev`.
        qualified: String,
        /// The object's name.
        name: String,
        /// Why it conflicts.
        reason: String,
    },
    /// A server-side apply that would take fields another manager owns.
    #[error("Apply failed with {} conflict{}: {}", .conflicts.len(), if .conflicts.len() == 1 { "" } else { "s" }, conflict_list(.conflicts))]
    ApplyConflict {
        /// (manager, field path) pairs, in field order.
        conflicts: Vec<(String, String)>,
    },
    /// The object is malformed (422).
    #[error("{kind} \"{name}\" is invalid: {field}: {message}")]
    Invalid {
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The request itself is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The verb does not apply to the path (405).
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// The body's content type is not one the verb accepts (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A watch from a resourceVersion the server no longer remembers (410).
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        /// The version the client asked for.
        requested: u64,
        /// The oldest version the server can start from.
        oldest: u64,
    },
    /// A fault injected by a test, or a server failure (500).
    #[error("{0}")]
    Internal(String),
}

fn conflict_list(conflicts: &[(String, String)]) -> String {
    conflicts
        .iter()
        .map(|(manager, field)| format!("conflict with \"{manager}\": {field}"))
        .collect::<Vec<_>>()
        .join("\n- ")
}

impl ApiError {
    /// The 404 of a named object.
    pub fn object_not_found(group: &str, plural: &str, name: &str) -> Self {
        let qualified = qualified(group, plural);
        ApiError::NotFound {
            message: format!("{qualified} \"{name}\" not found"),
            details: Some(json!({"name": name, "group": group, "kind": plural})),
        }
    }

    /// The 404 of a path that names no resource.
    pub fn no_such_path() -> Self {
        ApiError::NotFound {
            message: "the server could not find the requested resource".to_string(),
            details: None,
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } => 404,
            ApiError::AlreadyExists { .. }
            | ApiError::Conflict { .. }
            | ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::MethodNotAllowed => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Expired { .. } => 410,
            ApiError::Internal(_) => 500,
        }
    }

    /// The `reason` field of the Status.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Expired { .. } => "Expired",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The `Status` object the server answers with.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound { details, .. } => details.clone(),
            ApiError::AlreadyExists { qualified, name }
            | ApiError::Conflict {
                qualified, name, ..
            } => {
                let (kind, group) = qualified.split_once('.').unwrap_or((qualified, ""));
                Some(json!({"name": name, "group": group, "kind": kind}))
            }
            ApiError::ApplyConflict { conflicts } => Some(json!({
                "causes": conflicts.iter().map(|(manager, field)| json!({
                    "type": "FieldManagerConflict",
                    "message": format!("conflict with \"{manager}\""),
                    "field": field,
                })).collect::<Vec<_>>()
            })),
            ApiError::Invalid {
                kind,
                name,
                field,
                message,
            } => Some(json!({
                "name": name,
                "kind": kind,
                "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
            })),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}

/// `configmaps` for the core group, `stacks.stackd.dev` otherwise: how the
/// server names a resource in messages.
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}
