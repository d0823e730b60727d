//! Kubernetes: [`translate`] turns the compose model into Kubernetes objects
//! (pure), and [`sources`] reads the file and variable values secrets and
//! configs need (the only I/O here).
pub mod sources;
pub mod translate;
