//! `stackd controller`: reads the flags, connects to the cluster (in-cluster
//! config, or KUBECONFIG), serves `/metrics` `/healthz` `/readyz` and runs
//! the Stack controller until SIGTERM/SIGINT.
use std::time::Duration;

use super::watch::{duration, wait_for_signal};
use super::{CliError, ControllerArgs};
use crate::kube::controller::{self, Config, LeaseConfig};
use crate::kube::policy::Policy;
use crate::metrics::{server, Metrics};

/// Where `/metrics` is served unless `--metrics-addr` says otherwise: all
/// interfaces, so that the cluster can scrape the pod.
pub const DEFAULT_METRICS_ADDR: &str = "0.0.0.0:9477";

/// The `User-Agent` of every request to the API server.
pub const USER_AGENT: &str = concat!("stackd/", env!("CARGO_PKG_VERSION"));

/// A name unique to this process: `$POD_NAME` (or the host name) and a
/// suffix, so that two processes on one host never share an identity.
fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "stackd".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{base}_{:08x}", nanos ^ std::process::id().rotate_left(16))
}

pub(super) fn run(args: &ControllerArgs) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::RuntimeFailed)?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &ControllerArgs) -> Result<(), CliError> {
    let mut kube_config = kube::Config::infer()
        .await
        .map_err(|e| CliError::KubeConfig(kube::Error::InferConfig(e)))?;
    // The client sends no User-Agent of its own: this one names stackd in
    // the API server's audit log (and lets tests tell its requests apart).
    kube_config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_static(USER_AGENT),
    ));
    let client = kube::Client::try_from(kube_config).map_err(CliError::KubeConfig)?;
    let lease_namespace = args
        .lease_namespace
        .clone()
        .or_else(|| args.namespace.clone())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let lease = LeaseConfig {
        namespace: lease_namespace,
        name: args.lease_name.clone(),
        identity: args.identity.clone().unwrap_or_else(default_identity),
        duration: duration("--lease-duration", &args.lease_duration)?
            .unwrap_or(Duration::from_secs(15)),
    };
    let mut config = Config::new(lease);
    config.namespace = args.namespace.clone();
    config.wait_image = args.wait_image.clone();
    config.policy = Policy {
        allow_privileged: args.allow_privileged,
        allow_host_path: args.allow_host_path,
        allow_host_network: args.allow_host_network,
        allow_host_pid: args.allow_host_pid,
        allow_host_ipc: args.allow_host_ipc,
        allow_capabilities: args.allow_capabilities,
    };
    if let Some(resync) = duration("--resync", &args.resync)? {
        config.resync = resync;
    }
    args.retry
        .apply(&mut config.retry_base, &mut config.retry_cap)?;
    let metrics = Metrics::namespaced();
    let addr = args
        .metrics_addr
        .clone()
        .unwrap_or_else(|| DEFAULT_METRICS_ADDR.to_owned());
    let listener = server::bind(&addr)
        .await
        .map_err(controller::ControllerError::from)?;
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(server::serve(
        listener,
        metrics.clone(),
        ready_rx,
        async move {
            let _ = server_stop.wait_for(|s| *s).await;
        },
    ));
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: the objects of every Stack stay as they are");
        let _ = stop_tx.send(true);
    });
    tracing::info!(identity = %config.lease.identity, %addr, "stackd controller starting");
    let result = controller::run(client, config, metrics, ready_tx, stop_rx).await;
    server.abort();
    result.map_err(CliError::from)
}
