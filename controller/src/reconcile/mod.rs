//! Convergence: executing plans against a backend, and the loop that keeps
//! stacks converged (queue, retries, triggers, the `watch` command's run).
pub mod backoff;
pub mod controller;
pub mod execute;
pub mod queue;
pub mod rollout;
mod round;
pub mod state_file;
pub mod watch;
