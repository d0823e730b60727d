//! Tests of the metric definitions and their text exposition.
