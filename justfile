# stackd: every routine command. `just` lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The conformance bars: 97% of valid corpus cases identical, every invalid
# case rejected with a file:line (except deliberate, listed differences).
# `STACKD_CONFORMANCE_BAR=0` skips them; unlisted failures, panics and stale
# known-differences entries fail the test either way.
export STACKD_CONFORMANCE_BAR := env("STACKD_CONFORMANCE_BAR", "1")

# List the recipes.
default:
    @just --list

# Build the stackd binary (debug).
build:
    cargo build --workspace

# Every test: unit, CLI, generated-file and corpus conformance tests.
test:
    cargo test --workspace

# Formatting and clippy, warnings denied.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate checked-in files (crds/stack.yaml) from the code.
generate:
    cargo run -q -p stackd -- crd > crds/stack.yaml.tmp
    mv crds/stack.yaml.tmp crds/stack.yaml

# Fail when a checked-in generated file differs from what the code generates.
check-generated: generate
    git diff --exit-code crds/

# What CI runs (.ci/run): lint, generated files, tests.
ci: lint check-generated test

# Rewrite the conformance test's known-differences.txt with today's failures.
conformance-update:
    STACKD_CONFORMANCE_WRITE=1 cargo test -p stackd --test conformance

# Time `stackd config` against docker compose (corpus + 1,000 services; release).
# ARGS go to bench/compare_config.py (--runs N, --filter SUBSTR, --quiet).
bench *ARGS:
    cargo build --release -p stackd
    python3 bench/compare_config.py {{ARGS}}
