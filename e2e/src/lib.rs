//! Test harness for stackd's end-to-end tests on a real Docker engine: find
//! and run the binaries, own a compose project per test and clean it up,
//! read the engine through the docker CLI, count Docker API calls or
//! inject faults into them through a proxy, run a real Prometheus, and
//! serve an in-memory Kubernetes API ([`kubeapi`]) to kubectl and kube-rs.
//!
//! A test starts with `let Some(stack) = Stack::new("tag")? else { return Ok(()) };`,
//! which skips (passing, after saying why) when the engine does not answer
//! or `STACKD_E2E=0`, and builds the test image once per test binary.

mod cmd;
mod engine;
pub mod kubeapi;
mod prometheus;
mod proxy;
mod rng;
mod stack;
mod time;
mod watch;

pub use cmd::{compose_bin, docker, run, stackd_bin, workspace_root, Run};
pub use engine::{
    containers_with_label, engine_unavailable, inspect_container, inspect_containers, logs,
    network_exists, networks_with_label, volume_exists, volumes_with_label, Container,
    NUMBER_LABEL, PROJECT_LABEL, SERVICE_LABEL,
};
pub use prometheus::{required_tool, Prometheus, Series};
pub use proxy::{
    path_pattern, spacing, strip_version, ApiCall, ApiProxy, Endpoint, Fault, FaultPlan, FaultRule,
    HttpResponse, PathMatch, ProxyOptions, Trigger, UnixHttp,
};
pub use rng::{seed, Rng};
pub use stack::{
    ensure_image, holds_for, http_get, skip_reason, wait_until, Stack, COMMAND_DEADLINE,
};
pub use time::Timestamp;
pub use watch::{
    containers_unconverged, docker_ok, is_temporary_name, slot_problems, sum_of, Expected,
    Snapshot, WatchDir,
};

/// The test image every stack runs on (built by `e2e/image/build.sh`).
pub const IMAGE: &str = "stackd-busybox:latest";

/// A compose `command` that idles until stopped and exits 0 on SIGTERM at
/// once (a shell as PID 1 would ignore SIGTERM and wait out the grace period).
pub const IDLE_COMMAND: &str = r#"["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]"#;
