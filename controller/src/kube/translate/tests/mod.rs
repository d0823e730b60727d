//! Unit tests of the translation, one file per part; the names are the
//! rules.
#![allow(clippy::unwrap_used)]
