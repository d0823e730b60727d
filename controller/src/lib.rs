//! stackd keeps Docker Compose stacks converged: it loads compose projects
//! (`load`) into one normalized model (`model`), and the CLI (`cli`) is the
//! only layer that formats for humans.
#![warn(missing_docs)]

pub mod cli;
pub mod docker;
pub mod kube;
pub mod load;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod source;
pub mod status;
