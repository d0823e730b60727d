//! Plans as text: one line per step, `verb object name (cause)`, in plan
//! order, for `stackd plan` and golden tests. The alternate form (`{:#}`)
//! numbers the steps and lists what each waits for.
use std::fmt;

use super::{Action, Condition, Plan, Step};

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Condition::ServiceStarted => "service_started",
            Condition::ServiceHealthy => "service_healthy",
            Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateNetwork { network } => write!(f, "create network {network}"),
            Action::CreateVolume { volume } => write!(f, "create volume {volume}"),
            Action::EnsureImage { service } => write!(f, "ensure image for {service}"),
            Action::CreateContainer { name, .. } => write!(f, "create container {name}"),
            Action::StartContainer { name } => write!(f, "start container {name}"),
            Action::StopContainer { name } => write!(f, "stop container {name}"),
            Action::RemoveContainer {
                name,
                volumes: false,
            } => write!(f, "remove container {name}"),
            Action::RemoveContainer {
                name,
                volumes: true,
            } => write!(f, "remove container {name} and its anonymous volumes"),
            Action::RenameContainer { from, to } => write!(f, "rename container {from} → {to}"),
            Action::WaitFor { service, condition } => write!(f, "wait for {service} {condition}"),
            Action::WaitContainer {
                name,
                condition,
                monitor,
                ..
            } => {
                let state = match condition {
                    Condition::ServiceHealthy => "healthy",
                    Condition::ServiceStarted => "running",
                    Condition::ServiceCompletedSuccessfully => "completed",
                };
                write!(f, "wait for container {name} {state}")?;
                if !monitor.is_zero() {
                    write!(f, ", monitored {}", duration_text(*monitor))?;
                }
                Ok(())
            }
            Action::Delay { service, duration } => {
                write!(f, "delay {service} {}", duration_text(*duration))
            }
            Action::RemoveNetwork { network } => write!(f, "remove network {network}"),
            Action::RemoveVolume { volume } => write!(f, "remove volume {volume}"),
        }
    }
}

/// `5s`, `1.5s`, `250ms`, `2m30s`: short and exact enough for a plan line.
pub(crate) fn duration_text(duration: std::time::Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let minutes = millis / 60_000;
    let rest = millis % 60_000;
    let seconds = if rest % 1000 == 0 {
        format!("{}s", rest / 1000)
    } else {
        format!("{}s", rest as f64 / 1000.0)
    };
    match (minutes, rest) {
        (0, _) => seconds,
        (m, 0) => format!("{m}m"),
        (m, _) => format!("{m}m{seconds}"),
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.action)?;
        if !self.cause.is_empty() {
            write!(f, " ({})", self.cause)?;
        }
        Ok(())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, step) in self.steps.iter().enumerate() {
            if f.alternate() {
                write!(f, "#{index} {step}")?;
                if !step.after.is_empty() {
                    let after: Vec<String> = step.after.iter().map(|i| format!("#{i}")).collect();
                    write!(f, " after {}", after.join(", "))?;
                }
                writeln!(f)?;
            } else {
                writeln!(f, "{step}")?;
            }
        }
        Ok(())
    }
}
