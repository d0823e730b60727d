//! Convergence: executing plans against a backend, and the loop that keeps
//! stacks converged (queue, retries, triggers).
pub mod backoff;
pub mod execute;
pub mod queue;
