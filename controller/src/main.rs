//! The `stackd` binary.
fn main() {}
