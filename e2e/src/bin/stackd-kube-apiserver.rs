//! `stackd-kube-apiserver`: the e2e in-memory Kubernetes API server from
//! the command line, to point kubectl or a controller at by hand.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use stackd_e2e::kubeapi::KubeApiServer;

/// An in-memory Kubernetes API server on plain HTTP (no auth, no
/// admission, nothing runs): for trying kubectl and controllers.
#[derive(Debug, Parser)]
#[command(name = "stackd-kube-apiserver", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6443")]
    listen: String,
    /// Write a kubeconfig for the server here.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Mark Deployments, StatefulSets and Jobs ready as they change.
    #[arg(long)]
    kubelet: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let server = KubeApiServer::bind(&args.listen).context("starting the API server")?;
    if let Some(path) = &args.kubeconfig {
        server
            .write_kubeconfig(path)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("kubeconfig: {}", path.display());
    }
    let _kubelet = args.kubelet.then(|| server.kubelet().spawn());
    println!("{}", server.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime for the signal handler")?;
    runtime
        .block_on(tokio::signal::ctrl_c())
        .context("waiting for Ctrl-C")?;
    Ok(())
}
