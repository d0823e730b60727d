//! The checked-in `crds/stack.yaml` is what the code generates.
use std::path::Path;

#[test]
fn the_checked_in_crd_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/stack.yaml");
    let checked_in = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; run `just generate`", path.display()));
    let generated = stackd::cli::crd_yaml().unwrap();
    if checked_in != generated {
        let line = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || checked_in.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "crds/stack.yaml is out of date (first difference at line {line}); \
             run `just generate` and commit the result"
        );
    }
}
