//! The harness itself on the real engine, with tools that exist today: the
//! counting proxy under the docker CLI and the reference docker compose, and
//! the busybox variants of the agents, orchestrator and coordination stacks
//! in `manifests/` brought up by the reference compose.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Result};
use stackd_e2e::{run, ApiProxy, Stack, IMAGE};

#[test]
fn the_counting_proxy_counts_docker_cli_calls_including_a_hijacked_attach() -> Result<()> {
    let Some(stack) = Stack::new("proxy-cli")? else {
        return Ok(());
    };
    let proxy = ApiProxy::start()?;
    let name = format!("{}-probe-1", stack.name());
    let mut command = Command::new("docker");
    command.env("DOCKER_HOST", proxy.docker_host()).args([
        "run",
        "--rm",
        "--name",
        &name,
        IMAGE,
        "echo",
        "through the proxy",
    ]);
    let out = run(command, Duration::from_secs(60))?.ok()?;
    ensure!(out.stdout.trim() == "through the proxy", "{out}");
    let counts = proxy.counts();
    for key in [
        "POST /containers/create",
        "POST /containers/{id}/attach",
        "POST /containers/{id}/start",
        "POST /containers/{id}/wait",
    ] {
        ensure!(
            counts.get(key) == Some(&1),
            "expected one {key}: {counts:#?}"
        );
    }
    Ok(())
}

/// Brings a manifest's busybox variant (`-f compose.yaml -f
/// compose.busybox.yaml`) up with the reference compose through the proxy,
/// checks that the proxy saw one create per container, that a second `up`
/// creates nothing, and takes it down again.
fn reference_compose_runs_manifest(manifest: &str) -> Result<()> {
    let Some(stack) = Stack::from_busybox_manifest(&format!("ref-{manifest}"), manifest)? else {
        return Ok(());
    };
    let proxy = ApiProxy::start()?;
    stack.compose_via(&proxy, &["up", "-d", "--wait"])?.ok()?;
    let containers = stack.containers()?;
    ensure!(!containers.is_empty(), "no containers after up");
    let creates = proxy.counts().get("POST /containers/create").copied();
    ensure!(
        creates == Some(containers.len()),
        "{} containers but {creates:?} creates counted: {:#?}",
        containers.len(),
        proxy.counts()
    );
    let services: BTreeSet<&str> = containers.iter().map(|c| c.service.as_str()).collect();
    for container in &containers {
        ensure!(
            container.is_running() || container.exit_code == 0,
            "{} is {} (exit {})",
            container.name,
            container.status,
            container.exit_code
        );
    }
    eprintln!(
        "{manifest}: {} containers of {services:?}",
        containers.len()
    );

    proxy.reset();
    stack.compose_via(&proxy, &["up", "-d", "--wait"])?.ok()?;
    let created = proxy.counts().get("POST /containers/create").copied();
    ensure!(created.is_none(), "second compose up created {created:?}");

    stack.compose(&["down", "-v"])?.ok()?;
    ensure!(
        stack.containers()?.is_empty(),
        "compose down left containers"
    );
    ensure!(stack.volumes()?.is_empty(), "compose down -v left volumes");
    Ok(())
}

#[test]
fn the_reference_compose_brings_up_the_agents_manifest() -> Result<()> {
    reference_compose_runs_manifest("agents")
}

#[test]
fn the_reference_compose_brings_up_the_orchestrator_manifest() -> Result<()> {
    reference_compose_runs_manifest("orchestrator")
}

#[test]
fn the_reference_compose_brings_up_the_coordination_manifest() -> Result<()> {
    reference_compose_runs_manifest("coordination")
}
