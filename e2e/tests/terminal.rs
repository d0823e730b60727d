//! `stackd up` on a terminal: one line per container redrawn in place under
//! a `[+] Running n/m` header, as docker compose draws it, read back from a
//! real terminal (a tmux pane); and plain lines, no escape codes, when the
//! output is not a terminal.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use stackd_e2e::{stackd_bin, Stack, IDLE_COMMAND, IMAGE};

/// tmux, or `None` after saying why the test skips (CI installs it).
fn tmux() -> Result<Option<()>> {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            bail!("tmux is not installed (Debian package tmux) and CI is set");
        }
        eprintln!("skipped: tmux is not installed (Debian package tmux)");
        return Ok(None);
    }
    Ok(Some(()))
}

/// A detached tmux session on its own server socket, killed on drop.
struct Pane {
    socket: String,
}

impl Pane {
    fn start(socket: &str, command: &str) -> Result<Self> {
        let pane = Self {
            socket: socket.to_owned(),
        };
        let status = Command::new("tmux")
            .args(["-L", socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "120", "-y", "40", command])
            .env("TERM", "xterm-256color")
            .status()
            .context("starting tmux")?;
        ensure!(status.success(), "tmux new-session failed: {status}");
        Ok(pane)
    }

    /// What the terminal shows now, as a person would read it.
    fn screen(&self) -> Result<String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .context("tmux capture-pane")?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn compose() -> String {
    format!(
        "services:\n  \
           db:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n    \
           healthcheck: {{test: [CMD, 'true'], interval: 1s, retries: 30}}\n  \
           web:\n    image: {IMAGE}\n    pull_policy: never\n    command: {IDLE_COMMAND}\n    \
           deploy: {{replicas: 2}}\n    depends_on: {{db: {{condition: service_healthy}}}}\n"
    )
}

#[test]
fn up_on_a_terminal_redraws_one_line_per_container_under_a_running_header() -> Result<()> {
    if tmux()?.is_none() {
        return Ok(());
    }
    let Some(stack) = Stack::new("tty")? else {
        return Ok(());
    };
    stack.write_compose(&compose())?;
    let command = format!(
        "cd '{}' && '{}' -p '{}' -f compose.yaml up --wait; echo \"exit=$?\"; sleep 600",
        stack.dir().display(),
        stackd_bin()?.display(),
        stack.name()
    );
    let pane = Pane::start(stack.name(), &command)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let screen = loop {
        let screen = pane.screen()?;
        if screen.contains("exit=") {
            break screen;
        }
        ensure!(Instant::now() < deadline, "up did not finish:\n{screen}");
        std::thread::sleep(Duration::from_millis(200));
    };
    ensure!(screen.contains("exit=0"), "up failed:\n{screen}");
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    // Redrawn in place: the header is on the screen once, with the final count.
    let headers: Vec<&&str> = lines.iter().filter(|l| l.starts_with("[+] ")).collect();
    ensure!(headers.len() == 1, "one header line:\n{screen}");
    ensure!(headers[0].contains("Running"), "{}\n{screen}", headers[0]);
    let (done, total) = headers[0]
        .rsplit_once(' ')
        .and_then(|(_, count)| count.split_once('/'))
        .context("n/m in the header")?;
    ensure!(done == total, "everything done: {}", headers[0]);
    let name = stack.name();
    for container in [
        format!("{name}-db-1"),
        format!("{name}-web-1"),
        format!("{name}-web-2"),
    ] {
        let shown: Vec<&&str> = lines
            .iter()
            .filter(|l| l.contains(&format!("Container {container} ")))
            .collect();
        ensure!(shown.len() == 1, "one line for {container}:\n{screen}");
        let line = shown[0];
        ensure!(
            line.trim_start().starts_with('✔') && line.contains("Started"),
            "{container} done: {line:?}"
        );
        // Elapsed time at the end of the line, in seconds with one decimal.
        let elapsed = line.split_whitespace().last().unwrap_or_default();
        ensure!(
            elapsed.ends_with('s') && elapsed.trim_end_matches('s').parse::<f64>().is_ok(),
            "{container}'s elapsed time: {line:?}"
        );
    }
    ensure!(
        !screen.contains('\u{1b}') && !screen.contains("[2A"),
        "escape codes leaked onto the screen:\n{screen}"
    );
    drop(pane);

    // Not a terminal: plain lines, appended, no escape codes.
    stack.down(false)?;
    let plain = stack.up()?.output();
    ensure!(
        !plain.contains('\u{1b}'),
        "escape codes in plain output: {plain:?}"
    );
    ensure!(!plain.contains("[+] Running"), "{plain}");
    ensure!(
        plain.contains(&format!("Container {name}-web-2 Started")),
        "{plain}"
    );
    stack.down(false)?;
    Ok(())
}
