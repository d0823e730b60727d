//! The normalized compose model: what every compose file, override and
//! Stack manifest loads into, and what `stackd config` prints.
use serde::{Deserialize, Serialize};

/// A loaded compose project (placeholder until the full model lands).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Project {
    /// The project name.
    #[serde(default)]
    pub name: String,
}

pub mod stack;
pub use stack::{ServiceStatus, Stack, StackSpec, StackStatus};
