//! bollard, the Docker client stackd uses, through the fault proxy
//! unmodified: what each fault looks like to it (the errors a controller
//! will see), and its events stream passing through and being cut.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptions};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures::StreamExt;
use stackd_e2e::{
    docker as docker_cli, ApiProxy, Endpoint, Fault, FaultPlan, Stack, IDLE_COMMAND, IMAGE,
    PROJECT_LABEL,
};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

/// A stack with one idle service, so its cleanup's `stackd down` has a
/// project to read; `None` when e2e tests are skipped.
fn stack(tag: &str) -> Result<Option<Stack>> {
    let Some(stack) = Stack::new(tag)? else {
        return Ok(None);
    };
    stack.write_compose(&format!(
        "services:\n  app:\n    image: {IMAGE}\n    command: {IDLE_COMMAND}\n"
    ))?;
    Ok(Some(stack))
}

fn client(proxy: &ApiProxy) -> Result<Docker> {
    Ok(Docker::connect_with_unix(
        &proxy.docker_host(),
        30,
        API_DEFAULT_VERSION,
    )?)
}

/// Lists containers, failing when bollard takes longer than [`LIMIT`].
async fn list(docker: &Docker) -> Result<std::result::Result<usize, DockerError>> {
    let listed = timeout(
        LIMIT,
        docker.list_containers(Some(ListContainersOptions {
            limit: Some(1),
            ..ListContainersOptions::default()
        })),
    )
    .await
    .context("bollard hung")?;
    Ok(listed.map(|list| list.len()))
}

#[tokio::test]
async fn bollard_reads_an_injected_500_as_a_server_error_with_its_message() -> Result<()> {
    let Some(_stack) = stack("faults-bollard-500")? else {
        return Ok(());
    };
    let proxy = ApiProxy::with_faults(
        FaultPlan::seeded(0)
            .always(Fault::Status500)
            .only(Endpoint::prefix("GET", "/containers/json")),
    )?;
    let docker = client(&proxy)?;
    match list(&docker).await? {
        Err(DockerError::DockerResponseServerError {
            status_code: 500,
            message,
        }) => ensure!(message == "injected fault", "{message}"),
        other => bail!("expected a 500, got {other:?}"),
    }
    timeout(LIMIT, docker.ping()).await??;
    proxy.clear_faults();
    list(&docker).await??;
    Ok(())
}

#[tokio::test]
async fn bollard_gets_an_error_at_once_for_a_dropped_or_lost_answer() -> Result<()> {
    let Some(_stack) = stack("faults-bollard-drop")? else {
        return Ok(());
    };
    for fault in [Fault::Drop, Fault::DropAfterForward] {
        let proxy = ApiProxy::with_faults(FaultPlan::seeded(0).always(fault))?;
        let docker = client(&proxy)?;
        let started = std::time::Instant::now();
        let listed = list(&docker).await?;
        ensure!(
            listed.is_err(),
            "{fault:?}: bollard got an answer {listed:?}"
        );
        ensure!(
            started.elapsed() < Duration::from_secs(2),
            "{fault:?}: the error took {:?}",
            started.elapsed()
        );
        eprintln!(
            "{fault:?} reads as: {}",
            listed.err().map(|e| e.to_string()).unwrap_or_default()
        );
        let calls = proxy.calls();
        ensure!(calls.len() == 1 && calls[0].status.is_none(), "{calls:#?}");
        ensure!(
            calls[0].engine_status == (fault == Fault::DropAfterForward).then_some(200),
            "{calls:#?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_streams_events_through_the_proxy_and_sees_the_stream_cut() -> Result<()> {
    let Some(stack) = stack("faults-bollard-events")? else {
        return Ok(());
    };
    let proxy = ApiProxy::start()?;
    let docker = client(&proxy)?;
    let label = format!("{PROJECT_LABEL}={}", stack.name());
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let mut stream = docker.events(Some(
        EventsOptionsBuilder::default().filters(&filters).build(),
    ));
    // The stream sends its request only when polled: poll it in a task.
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            if sender.send(event).is_err() {
                return;
            }
        }
    });
    // The engine sends nothing until an event: wait for the proxy to forward the call.
    proxy.wait_for_calls(LIMIT, |calls| {
        calls
            .iter()
            .any(|c| c.path == "/events" && c.status == Some(200))
    })?;
    let name = format!("{}-event-1", stack.name());
    docker_cli(&["create", "--name", &name, "--label", &label, IMAGE, "true"])?.ok()?;
    let event = timeout(LIMIT, events.recv())
        .await
        .context("no event through the proxy")?
        .context("the stream ended")??;
    ensure!(event.action.as_deref() == Some("create"), "{event:?}");
    let actor_name = event
        .actor
        .as_ref()
        .and_then(|a| a.attributes.as_ref())
        .and_then(|a| a.get("name"))
        .cloned();
    ensure!(actor_name.as_deref() == Some(name.as_str()), "{event:?}");
    docker_cli(&["rm", "-f", &name])?.ok()?;
    let _destroy = timeout(LIMIT, events.recv()).await?;

    proxy.sever_connections();
    let after_cut = timeout(LIMIT, events.recv())
        .await
        .context("a cut stream hung")?;
    eprintln!("a cut events stream reads as: {after_cut:?}");
    ensure!(
        after_cut.as_ref().is_none_or(Result::is_err),
        "an event after the cut: {after_cut:?}"
    );
    Ok(())
}
