//! Helpers shared by the integration tests: finding the outside tools they
//! drive, and, for those comparing stackd's output with docker compose's,
//! environment switches, short previews and JSON differences.
#![allow(dead_code)]
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Whether `program ARGS` runs and succeeds, after saying why the test
/// skips when it does not; under CI a missing tool fails the test instead.
/// `install` says how to get it.
pub fn tool_available(program: &str, args: &[&str], install: &str) -> bool {
    let works = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{program} {}` fails ({install}) and CI is set",
            args.join(" ")
        );
        eprintln!("skipped: `{program} {}` fails ({install})", args.join(" "));
    }
    works
}

/// Whether python3 can import `module` (see [`tool_available`]).
pub fn python_module_available(module: &str, install: &str) -> bool {
    tool_available("python3", &["-c", &format!("import {module}")], install)
}

/// The home directory the corpus oracle ran with (it does not exist).
pub const FAKE_HOME: &str = "/nonexistent/compose-oracle-home";

/// What one `config` run printed.
pub struct Run {
    /// `None` when killed by a signal or by the timeout.
    pub code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `BINARY -f F... -p NAME [--profile P]... config --format json` the
/// way the corpus oracle was run: in `dir`, with the environment reduced to
/// `PATH` and a home that does not exist, killed after `timeout`.
pub fn run_config(
    binary: &Path,
    dir: &Path,
    files: &[impl AsRef<std::ffi::OsStr>],
    project: &str,
    profiles: &[String],
    timeout: Duration,
) -> Run {
    let mut command = Command::new(binary);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", FAKE_HOME)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for file in files {
        command.arg("-f").arg(file);
    }
    command.arg("-p").arg(project);
    for profile in profiles {
        command.arg("--profile").arg(profile);
    }
    command.args(["config", "--format", "json"]);
    let mut child = command.spawn().unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Run {
        code: if timed_out { None } else { status.code() },
        timed_out,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

pub fn env_flag(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

pub fn show(value: &Value) -> String {
    shorten(&value.to_string(), 120)
}

/// Every JSON path where `actual` differs from `expected`.
pub fn json_diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let sub = format!("{path}.{key}");
                match a.get(key) {
                    Some(av) => json_diff(&sub, ev, av, out),
                    None => out.push(format!("{sub}: missing (expected {})", show(ev))),
                }
            }
            for (key, av) in a {
                if !e.contains_key(key) {
                    out.push(format!("{path}.{key}: unexpected {}", show(av)));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                json_diff(&format!("{path}[{i}]"), ev, av, out);
            }
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: {} items, expected {} (expected {}, got {})",
                    a.len(),
                    e.len(),
                    show(expected),
                    show(actual)
                ));
            }
        }
        _ if expected != actual => {
            out.push(format!(
                "{path}: expected {}, got {}",
                show(expected),
                show(actual)
            ));
        }
        _ => {}
    }
}
