//! Secret values never leave the containers that are given them (DESIGN.md,
//! safety rule 5): a stack whose secret file and secret environment value
//! hold known markers is run with `stackd up` and `stackd watch` (debug
//! logging), and neither marker may appear in stackd's output, its state
//! directory or its /metrics page, while both reach the container.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use stackd_e2e::{docker, wait_until, Stack, WatchDir, IDLE_COMMAND, IMAGE};

/// In the secret file.
const FILE_MARKER: &str = "stackd-file-secret-5f1c9a7e";
/// In the variable an environment-sourced secret reads.
const ENV_MARKER: &str = "stackd-env-secret-b83d2e40";

fn compose() -> String {
    format!(
        r#"services:
  app:
    image: {IMAGE}
    command: {IDLE_COMMAND}
    restart: always
    secrets: [token, password]
secrets:
  token:
    file: ./token.txt
  password:
    environment: APP_PASSWORD
"#
    )
}

/// Every file under `dir` whose content holds a marker, with the marker.
fn files_holding_a_marker(dir: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    if !dir.exists() {
        return Ok(found);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(files_holding_a_marker(&path)?);
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path)?).into_owned();
        for marker in [FILE_MARKER, ENV_MARKER] {
            if text.contains(marker) {
                found.push(format!("{} holds {marker}", path.display()));
            }
        }
    }
    Ok(found)
}

fn leaks(what: &str, text: &str) -> Vec<String> {
    [FILE_MARKER, ENV_MARKER]
        .iter()
        .filter(|m| text.contains(*m))
        .map(|m| format!("{what} holds {m}"))
        .collect()
}

/// Both secrets reached `container` (so the markers went through stackd).
fn secrets_reached(container: &str) -> Result<()> {
    let token = docker(&["exec", container, "cat", "/run/secrets/token"])?.ok()?;
    ensure!(
        token.stdout.trim() == FILE_MARKER,
        "token: {:?}",
        token.stdout
    );
    let password = docker(&["exec", container, "cat", "/run/secrets/password"])?.ok()?;
    ensure!(
        password.stdout.trim() == ENV_MARKER,
        "password: {:?}",
        password.stdout
    );
    Ok(())
}

#[test]
fn secret_values_appear_in_no_output_state_file_or_metric_of_up_and_watch() -> Result<()> {
    let Some(stack) = Stack::new("secrets-up")? else {
        return Ok(());
    };
    stack.write_compose(&compose())?;
    stack.write_file("token.txt", &format!("{FILE_MARKER}\n"))?;
    stack.write_file(".env", &format!("APP_PASSWORD={ENV_MARKER}\n"))?;
    let up = stack.stackd(&["up", "--wait"])?;
    ensure!(
        up.success(),
        "stackd up failed: {}\n{}",
        up.stdout,
        up.stderr
    );
    secrets_reached(&format!("{}-app-1", stack.name()))?;
    let mut found = leaks("stackd up's stdout", &up.stdout);
    found.extend(leaks("stackd up's stderr", &up.stderr));
    let ps = stack.stackd(&["ps", "--format", "json"])?.ok()?;
    found.extend(leaks("stackd ps", &ps.stdout));

    let Some(mut watch) = WatchDir::new("secrets-watch")? else {
        return Ok(());
    };
    let name = watch.write_compose("app", &compose())?;
    watch.write_file("app", "token.txt", &format!("{FILE_MARKER}\n"))?;
    watch.write_file("app", ".env", &format!("APP_PASSWORD={ENV_MARKER}\n"))?;
    watch.set_log_filter("debug");
    watch.start(&["--resync", "2s"])?;
    watch.wait_condition(&name, "Ready", Duration::from_secs(90))?;
    secrets_reached(&format!("{name}-app-1"))?;
    // A resync or two more, so that no-op reconciles are logged too.
    let seen = watch.reconciles(&name)?;
    wait_until(Duration::from_secs(30), "two more reconciles", || {
        Ok(watch.reconciles(&name)? >= seen + 2.0)
    })?;
    found.extend(leaks("/metrics", &watch.metrics()?));
    let status = watch.stop()?;
    ensure!(status.success(), "stackd watch exited {status}");
    let log = watch.log();
    ensure!(
        log.contains("DEBUG") || log.contains("debug"),
        "the watch log has no debug lines, so it proves little:\n{log}"
    );
    found.extend(leaks("stackd watch's output", &log));
    found.extend(files_holding_a_marker(&watch.state_dir()).context("reading the state dir")?);
    ensure!(
        watch.state_dir().read_dir()?.next().is_some(),
        "stackd watch wrote no state file"
    );
    ensure!(found.is_empty(), "secret values leaked: {found:#?}");
    Ok(())
}
