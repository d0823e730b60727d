//! Kubernetes: [`translate`] turns the compose model into Kubernetes objects
//! (pure), and [`sources`] reads the file and variable values secrets and
//! configs need. The in-cluster controller (`stackd controller`) is a pure
//! core — [`desired`] (the objects a Stack becomes and what may be
//! pruned), [`policy`], [`gate`] (`depends_on` between workloads),
//! [`status`] and [`lease`] (leader election decisions) — and the I/O
//! shell [`controller`] that watches Stacks and talks to the API server.
pub mod controller;
pub mod desired;
pub mod gate;
pub mod lease;
pub mod policy;
pub mod sources;
pub mod status;
pub mod translate;
