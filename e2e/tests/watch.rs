//! `stackd watch` on the real engine: stacks under a directory are
//! converged, kept converged when containers are removed behind the
//! controller's back, and left running when the controller stops.

use std::time::Duration;

use anyhow::Result;
use stackd_e2e::{docker_ok, wait_until, WatchDir, IDLE_COMMAND, IMAGE};

fn web_and_worker() -> String {
    format!(
        r#"services:
  web:
    image: {IMAGE}
    command: {IDLE_COMMAND}
    restart: always
    healthcheck: {{test: ["CMD", "true"], interval: 1s}}
  worker:
    image: {IMAGE}
    command: {IDLE_COMMAND}
    restart: always
    depends_on: {{web: {{condition: service_healthy}}}}
"#
    )
}

#[test]
fn a_watched_stack_is_converged_repaired_and_left_running_on_sigterm() -> Result<()> {
    let Some(mut watch) = WatchDir::new("watch-basic")? else {
        return Ok(());
    };
    let stack = watch.write_compose("app", &web_and_worker())?;
    // Only events can repair within the test: the resync is an hour away.
    watch.start(&["--resync", "1h"])?;
    watch.wait_condition(&stack, "Ready", Duration::from_secs(60))?;
    assert_eq!(watch.containers(&stack)?.len(), 2);

    let worker = format!("{stack}-worker-1");
    docker_ok(&["rm", "-f", &worker])?;
    wait_until(
        Duration::from_secs(20),
        "the removed worker is back",
        || {
            Ok(watch
                .containers(&stack)?
                .iter()
                .any(|c| c.name == worker && c.is_running()))
        },
    )?;
    let repaired = watch.metric(&format!(
        "stackd_drift_repairs_total{{kind=\"removed\",stack=\"{stack}\"}}"
    ))?;
    assert_eq!(repaired, Some(1.0), "{}", watch.log());

    let status = watch.stop()?;
    assert!(status.success(), "exit {status}: {}", watch.log());
    let running = watch.containers(&stack)?;
    assert_eq!(running.len(), 2);
    assert!(running.iter().all(|c| c.is_running()), "{running:?}");
    Ok(())
}
