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

# `just e2e` runs the tests that need a Docker engine.
# Unit, CLI, generated-file and corpus conformance tests (all but e2e).
test:
    cargo test --workspace --exclude stackd-e2e

# Formatting and clippy, warnings denied.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# manifests/<stack>/kubernetes.yaml is `stackd convert` of the compose.yaml beside it.
# Regenerate checked-in files from the code (crds/stack.yaml and the chart's copy,
# manifests/*/kubernetes.yaml, docs/stack-api.md, docs/metrics.md).
generate:
    cargo run -q -p stackd -- crd > crds/stack.yaml.tmp
    mv crds/stack.yaml.tmp crds/stack.yaml
    cp crds/stack.yaml charts/stackd/crds/stack.yaml
    STACKD_GOLDEN_WRITE=1 cargo test -q -p stackd --test translate_golden -- the_checked_in_kubernetes_yaml_of_each_stack_is_its_translation the_generated_stack_manifests_wrap_the_production_load
    STACKD_GOLDEN_WRITE=1 cargo test -q -p stackd --test docs_generated

# Fail when a checked-in generated file differs from what the code generates.
check-generated: generate
    git diff --exit-code crds/ manifests/ charts/stackd/crds/ docs/

# Prints cases, objects, warnings by key and failures; `just test` runs it too.
# Translate every valid corpus case and validate the objects strictly (kubernetes-validate).
translate-corpus:
    cargo test -p stackd --test translate_corpus -- --nocapture

# What CI runs (.ci/run): lint, generated files, the test image, every test
# (Docker engine tests included), then the e2e suite (which builds and runs
# the stackd image, and runs the dashboard's queries on a real Prometheus).
ci: lint check-generated chart e2e-image test-engine e2e

# Every test, including the ones that drive the local Docker engine (what CI runs).
test-engine:
    STACKD_DOCKER_TESTS=1 cargo test --workspace --exclude stackd-e2e

# Rewrite the conformance test's known-differences.txt with today's failures.
conformance-update:
    STACKD_CONFORMANCE_WRITE=1 cargo test -p stackd --test conformance

# Time `stackd config` against docker compose (corpus + 1,000 services; release).
# ARGS go to bench/compare_config.py (--runs N, --filter SUBSTR, --quiet).
bench *ARGS:
    cargo build --release -p stackd
    python3 bench/compare_config.py {{ARGS}}

# No registry needed; quick when the image is current.
# Build the e2e test image stackd-busybox:latest from Debian's busybox-static.
e2e-image:
    bash e2e/image/build.sh

# They skip (and pass) when `docker info` fails or STACKD_E2E=0. With an
# engine, the stackd image is built first (a static release build: minutes
# when cold).
# End-to-end tests of stackd (CLI, watch mode, image, dashboard) on the local Docker engine.
e2e:
    cargo build -p stackd
    if [ "${STACKD_E2E:-1}" != 0 ] && docker info >/dev/null 2>&1; then bash e2e/image/build.sh && bash image/build.sh; fi
    STACKD_E2E_IMAGE_READY=1 cargo test -p stackd-e2e --no-fail-fast -- --test-threads=2

# The e2e suite runs the same test (e2e/tests/soak.rs) for 120 s. Prints
# the seed, the count of each chaos action, reconciles, RSS and the
# convergence time; `STACKD_E2E_SEED=N` replays a run's draws.
# Soak: `stackd watch` on 20 stacks through the fault proxy under SECONDS (default 1800) of seeded chaos.
soak SECONDS="1800": e2e-image
    cargo build -p stackd
    STACKD_E2E_IMAGE_READY=1 STACKD_SOAK_SECONDS={{SECONDS}} cargo test -p stackd-e2e --test soak -- --nocapture

# ARGS go to the proxy: --listen PATH [--error-rate R] [--drop-rate R] [--delay-ms N] [--seed N] [--log FILE] (see --help).
# A Docker API proxy on a unix socket that injects 500s, delays and dropped connections.
fault-proxy *ARGS:
    cargo run -q -p stackd-e2e --bin stackd-fault-proxy -- {{ARGS}}

# Release build; Docker API calls counted through a proxy.
# ARGS go to bench/compare_up.py (--runs N, --services N, --strict).
# Time stackd up/down against docker compose on a 20-service stack.
bench-docker *ARGS: e2e-image
    cargo build --release -p stackd
    python3 bench/compare_up.py {{ARGS}}

# No registry needed: a static release binary built here (its own target
# directory under $CARGO_TARGET_DIR/<triple>/release) in a FROM scratch image.
# Build the container image stackd:<version> and stackd:latest.
image:
    bash image/build.sh

# Lint the Helm chart strictly and render it with each values file of charts/stackd/ci/.
chart:
    helm lint --strict charts/stackd
    for values in charts/stackd/ci/*-values.yaml; do helm lint --strict charts/stackd -f "$values"; done
    helm template stackd charts/stackd --include-crds > /dev/null
    for values in charts/stackd/ci/*-values.yaml; do helm template stackd charts/stackd --include-crds -f "$values" > /dev/null; done

# Check the chart's alerting rules and run their unit tests (promtool).
rules:
    promtool check rules charts/stackd/rules/alerts.yaml
    promtool test rules charts/stackd/rules/alerts_test.yaml

# Release build; the controller reaches the engine through the e2e proxy.
# ARGS go to bench/watch_bench.py (--stacks N, --per-stack N, --rounds N, --saves N, --drifts N, --strict).
# `stackd watch` on 50 stacks / 500 containers: resync CPU and calls, memory, save and drift latency.
bench-watch *ARGS: e2e-image
    cargo build --release -p stackd
    cargo build --release -p stackd-e2e --bin stackd-fault-proxy
    python3 bench/watch_bench.py {{ARGS}}

# ARGS go to the server: [--listen ADDR] [--kubeconfig PATH] [--kubelet] (see --help).
# An in-memory Kubernetes API server (plain HTTP) for kubectl and controllers.
kube-apiserver *ARGS:
    cargo run -q -p stackd-e2e --bin stackd-kube-apiserver -- {{ARGS}}

# Needs the nightly toolchain and `cargo install cargo-fuzz --locked`.
# Targets: load, merge, interpolate, units, stack_manifest. ARGS go to
# libFuzzer (e.g. -max_total_time=600 -jobs=1); crashes land in
# controller/fuzz/artifacts/TARGET/.
# Fuzz one loader target, starting from its seeded corpus.
fuzz TARGET *ARGS:
    test -d controller/fuzz/corpus/{{TARGET}} || bash controller/fuzz/seed.sh
    cd controller/fuzz && cargo +nightly fuzz run {{TARGET}} corpus/{{TARGET}} -- {{ARGS}}

# Copy seeds from the compose corpus (shared/corpus beside the checkout, or $STACKD_CORPUS).
fuzz-seed:
    bash controller/fuzz/seed.sh

# Needs `cargo install cargo-deny --locked`; offline (advisories need a
# database download, so they are not checked here). `cargo fetch` first:
# the dependency graph takes in the crates of every platform in Cargo.lock,
# which a build on this one never downloads.
# Check dependency licenses and banned crates against deny.toml.
deny:
    cargo fetch
    cargo deny --offline check licenses bans
