//! The two seed stacks that need more than one compose file, run for real
//! through their busybox variants: toolhub (a base file merged with the
//! production, monitoring and busybox files) and writing (one file and a
//! per-environment `--env-file`). Each comes up with `stackd up --wait`,
//! every service in its expected shape, and goes down again.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use stackd_e2e::{Container, Stack};

/// Containers by service, after checking each is running and healthy (or,
/// for a one-shot service, exited 0).
fn by_service(stack: &Stack) -> Result<BTreeMap<String, Vec<Container>>> {
    let mut services: BTreeMap<String, Vec<Container>> = BTreeMap::new();
    for container in stack.containers()? {
        let finished_ok = !container.is_running() && container.exit_code == 0;
        ensure!(
            container.is_running() || finished_ok,
            "{} is {} (exit {})",
            container.name,
            container.status,
            container.exit_code
        );
        if container.is_running() {
            ensure!(
                container.health.as_deref().is_none_or(|h| h == "healthy"),
                "{} is {:?} after up --wait",
                container.name,
                container.health
            );
        }
        services
            .entry(container.service.clone())
            .or_default()
            .push(container);
    }
    Ok(services)
}

fn replicas(services: &BTreeMap<String, Vec<Container>>, service: &str) -> usize {
    services.get(service).map_or(0, Vec::len)
}

fn env_value(container: &Container, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    container.inspect["Config"]["Env"]
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str())
        .find_map(|entry| entry.strip_prefix(&prefix).map(str::to_owned))
}

#[test]
fn toolhub_merged_from_four_files_comes_up_healthy_and_goes_down() -> Result<()> {
    let Some(stack) = Stack::from_manifest("ship-toolhub", "toolhub")? else {
        return Ok(());
    };
    let files = [
        "-f",
        "compose.prod.yaml",
        "-f",
        "compose.monitoring.yaml",
        "-f",
        "compose.busybox.yaml",
    ];
    let up: Vec<&str> = ["up", "--wait"].iter().copied().chain(files).collect();
    stack.stackd(&up)?.ok()?;
    let services = by_service(&stack)?;
    ensure!(
        services.len() == 15,
        "15 services expected: {:?}",
        services.keys()
    );
    for (service, count) in [
        ("webui", 2),
        ("llm-gateway", 2),
        ("postgres", 1),
        ("grafana", 1),
    ] {
        ensure!(
            replicas(&services, service) == count,
            "{service}: {} containers, {count} expected",
            replicas(&services, service)
        );
    }
    let init = &services["db-init"][0];
    ensure!(
        !init.is_running() && init.exit_code == 0,
        "db-init: {}",
        init.status
    );
    for container in services.values().flatten() {
        let published = &container.inspect["HostConfig"]["PortBindings"];
        ensure!(
            published.as_object().is_none_or(|p| p.is_empty()),
            "{} publishes {published} (compose.busybox.yaml resets ports)",
            container.name
        );
    }
    // Converged: a plan of the same files has nothing to do.
    let plan: Vec<&str> = ["plan"].iter().copied().chain(files).collect();
    let planned = stack.stackd(&plan)?;
    ensure!(planned.code == Some(0), "plan after up: {planned}");

    let down: Vec<&str> = ["down"].iter().copied().chain(files).collect();
    stack.stackd(&down)?.ok()?;
    ensure!(stack.containers()?.is_empty(), "containers left after down");
    ensure!(
        stack.volumes()?.len() >= 9,
        "named volumes must survive down: {:?}",
        stack.volumes()?
    );
    Ok(())
}

#[test]
fn writing_takes_its_shape_from_the_env_file_given() -> Result<()> {
    let Some(stack) = Stack::from_manifest("ship-writing", "writing")? else {
        return Ok(());
    };
    let prod = ["-f", "compose.busybox.yaml", "--env-file", ".env.prod"];
    let up: Vec<&str> = ["up", "--wait"].iter().copied().chain(prod).collect();
    stack.stackd(&up)?.ok()?;
    let services = by_service(&stack)?;
    ensure!(services.len() == 7, "7 services: {:?}", services.keys());
    ensure!(
        replicas(&services, "editor") == 3,
        "3 editors in production"
    );
    let search = &services["search"][0];
    ensure!(
        env_value(search, "MEILI_ENV").as_deref() == Some("production"),
        "search: {:?}",
        env_value(search, "MEILI_ENV")
    );

    // Switching the env file converges the same project to development.
    let dev = ["-f", "compose.busybox.yaml", "--env-file", ".env.dev"];
    let up: Vec<&str> = ["up", "--wait"].iter().copied().chain(dev).collect();
    stack.stackd(&up)?.ok()?;
    let services = by_service(&stack)?;
    ensure!(
        replicas(&services, "editor") == 1,
        "1 editor in development: {}",
        replicas(&services, "editor")
    );
    let search = services["search"].first().context("no search container")?;
    ensure!(
        env_value(search, "MEILI_ENV").as_deref() == Some("development"),
        "search: {:?}",
        env_value(search, "MEILI_ENV")
    );
    let publisher = &services["publisher"][0];
    ensure!(
        env_value(publisher, "logging__level").as_deref() == Some("debug"),
        "publisher: {:?}",
        env_value(publisher, "logging__level")
    );

    let down: Vec<&str> = ["down"].iter().copied().chain(dev).collect();
    stack.stackd(&down)?.ok()?;
    ensure!(stack.containers()?.is_empty(), "containers left after down");
    Ok(())
}
