//! Convergence: executing plans against a backend.
pub mod execute;
