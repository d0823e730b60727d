//! Convergence: executing plans against a backend.
pub mod execute;
pub mod state_file;
