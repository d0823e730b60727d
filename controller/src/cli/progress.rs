//! Progress of a convergence as people read it: one line per container,
//! network or volume with its latest state and elapsed time, redrawn in
//! place on a terminal (as `docker compose up` does) or printed as plain
//! lines, one per change, when the output is a file or a pipe.
use std::io::Write;
use std::time::Duration;

use crate::plan::{Action, Condition, Step};

/// What a step did to its resource, as shown on its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Done,
    Failed,
    /// A wait stopped because another step failed: not this resource's fault.
    Cancelled,
}

#[derive(Debug, Clone)]
struct Line {
    /// `Container demo-web-1`, `Network demo_default`, `Volume demo_data`.
    label: String,
    /// `Creating`, `Started`, `Healthy`...
    status: String,
    phase: Phase,
    /// When this resource's first step started, relative to the start.
    began: Duration,
    /// When its latest step ended (or now, while running).
    ended: Option<Duration>,
}

/// The resource a step acts on and the words for its running and done states.
fn describe(step: &Step, project: &str) -> (String, &'static str, &'static str) {
    // Network and volume steps carry the project key, or the engine name
    // when `down` runs by project name alone.
    let engine_name = |key: &str| match key.strip_prefix(project).and_then(|k| k.strip_prefix('_'))
    {
        Some(_) => key.to_string(),
        None => format!("{project}_{key}"),
    };
    match &step.action {
        Action::CreateNetwork { network } => (
            format!("Network {}", engine_name(network)),
            "Creating",
            "Created",
        ),
        Action::RemoveNetwork { network } => (
            format!("Network {}", engine_name(network)),
            "Removing",
            "Removed",
        ),
        Action::CreateVolume { volume } => (
            format!("Volume {}", engine_name(volume)),
            "Creating",
            "Created",
        ),
        Action::RemoveVolume { volume } => (
            format!("Volume {}", engine_name(volume)),
            "Removing",
            "Removed",
        ),
        Action::EnsureImage { service } => (format!("Image for {service}"), "Preparing", "Ready"),
        Action::CreateContainer { name, .. } => (
            format!("Container {}", final_name(name)),
            "Creating",
            "Created",
        ),
        Action::StartContainer { name } => (format!("Container {name}"), "Starting", "Started"),
        Action::StopContainer { name } => (format!("Container {name}"), "Stopping", "Stopped"),
        Action::RemoveContainer { name, .. } => (
            format!("Container {}", final_name(name)),
            "Removing",
            "Removed",
        ),
        Action::RenameContainer { to, .. } => {
            (format!("Container {to}"), "Recreating", "Recreated")
        }
        Action::WaitFor { service, condition } => {
            let done = match condition {
                Condition::ServiceStarted => "Running",
                Condition::ServiceHealthy => "Healthy",
                Condition::ServiceCompletedSuccessfully => "Exited",
            };
            (format!("Service {service}"), "Waiting", done)
        }
        Action::WaitContainer {
            name, condition, ..
        } => {
            let done = match condition {
                Condition::ServiceHealthy => "Healthy",
                _ => "Running",
            };
            (format!("Container {}", final_name(name)), "Waiting", done)
        }
        Action::Delay { service, .. } => (format!("Service {service}"), "Pausing", "Resumed"),
    }
}

/// A replacement's temporary name shows as the container it replaces.
fn final_name(name: &str) -> &str {
    match name.split_once('_') {
        Some((prefix, rest))
            if prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            rest
        }
        _ => name,
    }
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Collects step events and renders them.
pub struct Progress<'w> {
    out: &'w mut dyn Write,
    terminal: bool,
    project: String,
    lines: Vec<Line>,
    drawn: usize,
    tick: usize,
}

impl<'w> Progress<'w> {
    /// A renderer writing to `out`; `terminal` selects redrawing in place.
    pub fn new(out: &'w mut dyn Write, terminal: bool, project: &str) -> Self {
        Progress {
            out,
            terminal,
            project: project.to_string(),
            lines: Vec::new(),
            drawn: 0,
            tick: 0,
        }
    }

    fn line_for(&mut self, label: &str, at: Duration) -> usize {
        match self.lines.iter().position(|l| l.label == label) {
            Some(index) => index,
            None => {
                self.lines.push(Line {
                    label: label.to_string(),
                    status: String::new(),
                    phase: Phase::Running,
                    began: at,
                    ended: None,
                });
                self.lines.len() - 1
            }
        }
    }

    /// A step started `at` after the beginning.
    pub fn started(&mut self, step: &Step, at: Duration) -> std::io::Result<()> {
        let (label, running, _) = describe(step, &self.project);
        let index = self.line_for(&label, at);
        let line = &mut self.lines[index];
        line.status = running.to_string();
        line.phase = Phase::Running;
        line.ended = None;
        self.changed(index)
    }

    /// A step finished `at` after the beginning.
    pub fn finished(&mut self, step: &Step, at: Duration) -> std::io::Result<()> {
        let (_, _, done) = describe(step, &self.project);
        self.ended(step, at, done.to_string(), Phase::Done)
    }

    /// A step failed `at` after the beginning.
    pub fn failed(&mut self, step: &Step, at: Duration, error: &str) -> std::io::Result<()> {
        self.ended(step, at, format!("Error: {error}"), Phase::Failed)
    }

    /// A wait was stopped `at` after the beginning because another step
    /// failed. Shown apart from failures, so that the line naming what
    /// went wrong is the only error on screen.
    pub fn cancelled(&mut self, step: &Step, at: Duration) -> std::io::Result<()> {
        self.ended(step, at, "Cancelled".to_string(), Phase::Cancelled)
    }

    /// A step's line takes its end state.
    fn ended(
        &mut self,
        step: &Step,
        at: Duration,
        status: String,
        phase: Phase,
    ) -> std::io::Result<()> {
        let (label, _, _) = describe(step, &self.project);
        let index = self.line_for(&label, at);
        let line = &mut self.lines[index];
        line.status = status;
        line.phase = phase;
        line.ended = Some(at);
        self.changed(index)
    }

    /// Redraws running lines' spinners and times (terminal only); call it
    /// a few times a second while steps run.
    pub fn tick(&mut self, now: Duration) -> std::io::Result<()> {
        if !self.terminal {
            return Ok(());
        }
        self.tick += 1;
        self.redraw(now)
    }

    /// Final redraw (terminal) with every line's end state.
    pub fn finish(&mut self, now: Duration) -> std::io::Result<()> {
        if self.terminal {
            self.redraw(now)?;
        }
        self.out.flush()
    }

    fn changed(&mut self, index: usize) -> std::io::Result<()> {
        if self.terminal {
            let now = self.lines[index].ended.unwrap_or(self.lines[index].began);
            return self.redraw(now);
        }
        let line = &self.lines[index];
        match line.ended {
            Some(end) => writeln!(
                self.out,
                "{} {} {:.1}s",
                line.label,
                line.status,
                end.saturating_sub(line.began).as_secs_f64()
            ),
            None => writeln!(self.out, "{} {}", line.label, line.status),
        }
    }

    fn redraw(&mut self, now: Duration) -> std::io::Result<()> {
        if self.drawn > 0 {
            // Move up over what was drawn and clear it.
            write!(self.out, "\x1b[{}A\x1b[J", self.drawn)?;
        }
        let total = self.lines.len();
        let done = self.lines.iter().filter(|l| l.phase == Phase::Done).count();
        writeln!(self.out, "[+] Running {done}/{total}")?;
        let width = self
            .lines
            .iter()
            .map(|l| l.label.chars().count())
            .max()
            .unwrap_or(0);
        for line in &self.lines {
            let mark = match line.phase {
                Phase::Done => '✔',
                Phase::Failed => '✘',
                Phase::Cancelled => '-',
                Phase::Running => SPINNER[self.tick % SPINNER.len()],
            };
            let elapsed = line
                .ended
                .unwrap_or(now)
                .saturating_sub(line.began)
                .as_secs_f64();
            writeln!(
                self.out,
                " {mark} {:<width$}  {:<12} {elapsed:.1}s",
                line.label, line.status
            )?;
        }
        self.drawn = total + 1;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: Action) -> Step {
        Step {
            action,
            cause: "missing".into(),
            after: Vec::new(),
        }
    }

    fn wait_healthy(service: &str) -> Step {
        step(Action::WaitFor {
            service: service.into(),
            condition: Condition::ServiceHealthy,
        })
    }

    #[test]
    fn plain_output_prints_one_line_per_change_with_elapsed_time() {
        let mut out = Vec::new();
        {
            let mut progress = Progress::new(&mut out, false, "demo");
            let create = step(Action::CreateContainer {
                service: "web".into(),
                number: 1,
                name: "demo-web-1".into(),
            });
            let start = step(Action::StartContainer {
                name: "demo-web-1".into(),
            });
            progress
                .started(&create, Duration::from_millis(0))
                .expect("writes");
            progress
                .finished(&create, Duration::from_millis(200))
                .expect("writes");
            progress
                .started(&start, Duration::from_millis(200))
                .expect("writes");
            progress
                .finished(&start, Duration::from_millis(700))
                .expect("writes");
            progress.finish(Duration::from_millis(700)).expect("writes");
        }
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "Container demo-web-1 Creating\nContainer demo-web-1 Created 0.2s\nContainer demo-web-1 Starting\nContainer demo-web-1 Started 0.7s\n"
        );
    }

    #[test]
    fn a_network_named_by_its_engine_name_is_not_prefixed_twice() {
        let mut out = Vec::new();
        {
            let mut progress = Progress::new(&mut out, false, "demo");
            let by_key = step(Action::RemoveNetwork {
                network: "default".into(),
            });
            let by_name = step(Action::RemoveNetwork {
                network: "demo_back".into(),
            });
            progress.started(&by_key, Duration::ZERO).expect("writes");
            progress.started(&by_name, Duration::ZERO).expect("writes");
        }
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "Network demo_default Removing\nNetwork demo_back Removing\n"
        );
    }

    #[test]
    fn a_replacement_shows_under_the_name_it_replaces() {
        let mut out = Vec::new();
        {
            let mut progress = Progress::new(&mut out, false, "demo");
            let create = step(Action::CreateContainer {
                service: "web".into(),
                number: 1,
                name: "0123456789ab_demo-web-1".into(),
            });
            progress.started(&create, Duration::ZERO).expect("writes");
        }
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "Container demo-web-1 Creating\n"
        );
    }

    #[test]
    fn a_wait_cancelled_by_another_failure_is_not_shown_as_an_error() {
        let mut out = Vec::new();
        {
            let mut progress = Progress::new(&mut out, false, "demo");
            let failing = wait_healthy("api");
            let cancelled = wait_healthy("db");
            progress.started(&failing, Duration::ZERO).expect("writes");
            progress
                .started(&cancelled, Duration::ZERO)
                .expect("writes");
            progress
                .failed(
                    &failing,
                    Duration::from_secs(1),
                    "container demo-api-1 exited with status 1",
                )
                .expect("writes");
            progress
                .cancelled(&cancelled, Duration::from_secs(1))
                .expect("writes");
        }
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "Service api Waiting\nService db Waiting\n\
             Service api Error: container demo-api-1 exited with status 1 1.0s\n\
             Service db Cancelled 1.0s\n"
        );
    }

    #[test]
    fn terminal_output_redraws_in_place_with_a_summary_line() {
        let mut out = Vec::new();
        {
            let mut progress = Progress::new(&mut out, true, "demo");
            let wait = wait_healthy("db");
            progress.started(&wait, Duration::ZERO).expect("writes");
            progress
                .finished(&wait, Duration::from_secs(3))
                .expect("writes");
        }
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("[+] Running 0/1\n"), "{text}");
        assert!(
            text.contains("\x1b[2A\x1b[J[+] Running 1/1\n ✔ Service db  Healthy      3.0s\n"),
            "{text:?}"
        );
    }
}
