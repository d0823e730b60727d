//! `stackd watch DIR`: the command-line face of the controller. Reads the
//! flags, installs the SIGTERM/SIGINT handler and runs until stopped.
use std::time::Duration;

use super::{CliError, WatchArgs};
use crate::reconcile::controller::ControllerOptions;
use crate::reconcile::watch::{run, WatchOptions};

/// Where `/metrics` is served unless `--metrics-addr` says otherwise.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9477";

pub(super) fn duration(
    flag: &'static str,
    text: &Option<String>,
) -> Result<Option<Duration>, CliError> {
    let Some(text) = text else { return Ok(None) };
    let parsed = crate::model::parse_duration(text).map_err(|e| CliError::BadDuration {
        text: format!("{flag} {text}"),
        reason: e.to_string(),
    })?;
    match parsed.to_std() {
        Some(d) if !d.is_zero() => Ok(Some(d)),
        _ => Err(CliError::BadDuration {
            text: format!("{flag} {text}"),
            reason: "must be greater than zero".into(),
        }),
    }
}

/// `stackd watch`.
pub(super) fn run_watch(args: &WatchArgs) -> Result<(), CliError> {
    let options = watch_options(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::RuntimeFailed)?;
    runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping: containers keep running");
            let _ = stop_tx.send(true);
        });
        run(options, stop_rx).await.map_err(CliError::from)
    })
}

/// The controller's options from the flags, defaults filled in.
fn watch_options(args: &WatchArgs) -> Result<WatchOptions, CliError> {
    let mut controller = ControllerOptions {
        state_dir: Some(
            args.state_dir
                .clone()
                .unwrap_or_else(crate::reconcile::state_file::default_state_dir),
        ),
        ..ControllerOptions::default()
    };
    if let Some(resync) = duration("--resync", &args.resync)? {
        controller.resync = resync;
    }
    args.retry
        .apply(&mut controller.retry_base, &mut controller.retry_cap)?;
    let options = WatchOptions {
        dir: args.dir.clone(),
        metrics_addr: args
            .metrics_addr
            .clone()
            .unwrap_or_else(|| DEFAULT_METRICS_ADDR.to_owned()),
        controller,
        grace: Duration::from_secs(10),
    };
    Ok(options)
}

/// SIGTERM (what `docker stop` and Kubernetes send) or SIGINT (Ctrl-C).
pub(super) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn watch_args(args: &[&str]) -> WatchArgs {
        let cli = Cli::try_parse_from(["stackd", "watch", "stacks"].iter().chain(args))
            .expect("the flags parse");
        match cli.command {
            Command::Watch(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_metrics_server_listens_on_loopback_unless_told_otherwise() {
        let options = watch_options(&watch_args(&[])).expect("options");
        let addr: std::net::SocketAddr = options.metrics_addr.parse().expect("an address");
        assert!(addr.ip().is_loopback(), "{addr}");

        let options =
            watch_options(&watch_args(&["--metrics-addr", "0.0.0.0:9100"])).expect("options");
        assert_eq!(options.metrics_addr, "0.0.0.0:9100");
    }
}
