//! The `stackd` command line: the only layer that formats for humans.
