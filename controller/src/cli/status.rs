//! `stackd status`: the state files `stackd watch` writes, as a table, JSON
//! or YAML.
use std::io::Write;
use std::time::SystemTime;

use super::{CliError, StatusArgs, StatusFormat};
use crate::reconcile::state_file;
use crate::status::{parse_timestamp, short_duration, ConditionType, StackStatus};

/// Prints the status of one stack (`NAME`) or of every stack in the state
/// directory. With no stacks, the table format says so on `err`.
pub fn run(args: &StatusArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let dir = args
        .state_dir
        .clone()
        .unwrap_or_else(state_file::default_state_dir);
    let statuses = match &args.name {
        Some(name) => match state_file::read(&dir, name)? {
            Some(status) => vec![status],
            None => {
                return Err(CliError::StackNotFound {
                    stack: name.clone(),
                    dir: dir.display().to_string(),
                })
            }
        },
        None => state_file::read_all(&dir)?,
    };
    let one = args.name.is_some();
    let text = match args.format {
        StatusFormat::Table => {
            if statuses.is_empty() {
                writeln!(err, "no stacks have a status in {}", dir.display())?;
                return Ok(());
            }
            table(&statuses, SystemTime::now())
        }
        StatusFormat::Json if one => {
            serde_json::to_string_pretty(&statuses[0]).map_err(CliError::JsonOutputFailed)?
        }
        StatusFormat::Json => {
            serde_json::to_string_pretty(&statuses).map_err(CliError::JsonOutputFailed)?
        }
        StatusFormat::Yaml if one => {
            serde_saphyr::to_string(&statuses[0]).map_err(CliError::YamlOutputFailed)?
        }
        StatusFormat::Yaml => {
            serde_saphyr::to_string(&statuses).map_err(CliError::YamlOutputFailed)?
        }
    };
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        writeln!(out)?;
    }
    Ok(())
}

/// Aligned columns, as `kubectl get` prints them: NAME, READY (the Ready
/// condition), STATUS (the reason of the condition that explains the state),
/// SERVICES (ready/desired replicas), GENERATION (with the observed one
/// when it lags), SINCE (how long the stack has been in that state) and
/// MESSAGE (its first line).
fn table(statuses: &[StackStatus], now: SystemTime) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "NAME".into(),
        "READY".into(),
        "STATUS".into(),
        "SERVICES".into(),
        "GENERATION".into(),
        "SINCE".into(),
        "MESSAGE".into(),
    ]];
    for status in statuses {
        let ready = status
            .condition(ConditionType::Ready)
            .map_or_else(|| "Unknown".to_string(), |c| c.status.to_string());
        let headline = status.headline();
        let reason = if status.suspended {
            "Suspended".to_string()
        } else {
            headline.map_or_else(String::new, |c| c.reason.clone())
        };
        let (ready_replicas, desired) = status.replica_totals();
        let generation = if status.observed_generation == status.generation {
            status.generation.to_string()
        } else {
            format!(
                "{} (observed {})",
                status.generation, status.observed_generation
            )
        };
        let since = headline
            .and_then(|c| parse_timestamp(&c.last_transition_time))
            .map_or_else(
                || "?".to_string(),
                |t| short_duration(now.duration_since(t).unwrap_or_default()),
            );
        let message = headline.map_or_else(String::new, |c| first_line(&c.message));
        rows.push([
            status.stack.clone(),
            ready,
            reason,
            format!("{ready_replicas}/{desired}"),
            generation,
            since,
            message,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        text.push_str(line.join("   ").trim_end());
        text.push('\n');
    }
    text
}

/// A message's first line, marked when more follow (several findings).
fn first_line(message: &str) -> String {
    let mut lines = message.lines();
    let first = lines.next().unwrap_or_default();
    match lines.count() {
        0 => first.to_string(),
        more => format!("{first} (+{more} more)"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::status::{reason, LastError, ServiceStatus};

    fn services(ready: u32, desired: u32) -> BTreeMap<String, ServiceStatus> {
        BTreeMap::from([(
            "web".to_string(),
            ServiceStatus {
                desired,
                ready,
                image: "busybox".into(),
            },
        )])
    }

    #[test]
    fn the_table_shows_one_aligned_row_per_stack() {
        let t0 = "2026-11-25T16:30:00Z".to_string();
        let mut good = StackStatus::new("agents", "stacks/agents.yaml", &t0);
        good.observe_spec("h");
        good.ready(services(2, 2), &t0);
        let mut bad = StackStatus::new("web", "stacks/web", &t0);
        bad.observe_spec("h");
        bad.ready(services(1, 1), &t0);
        bad.observe_spec("h2");
        bad.reconciling(reason::PROGRESSING, "applying", &t0);
        bad.stalled(
            reason::LOAD_FAILED,
            LastError::new(
                "stacks/web/compose.yaml:3:5: truncated\nsecond finding",
                &t0,
            ),
            &"2026-11-25T16:35:00Z".to_string(),
        );
        let now = parse_timestamp("2026-11-25T16:37:30Z").unwrap();
        assert_eq!(
            table(&[good, bad], now),
            "\
NAME     READY   STATUS       SERVICES   GENERATION   SINCE   MESSAGE
agents   True    Succeeded    2/2        1            7m30s   1 service, 2/2 replicas ready
web      False   LoadFailed   1/1        2            2m30s   stacks/web/compose.yaml:3:5: truncated (+1 more)
"
        );
    }

    #[test]
    fn a_lagging_generation_and_a_suspended_stack_are_visible() {
        let t0 = "2026-11-25T16:30:00Z".to_string();
        let mut status = StackStatus::new("demo", "x", &t0);
        status.observe_spec("h");
        status.ready(services(1, 1), &t0);
        status.observe_spec("h2");
        status.suspend(true, &t0);
        let now = parse_timestamp(&t0).unwrap() + Duration::from_secs(5);
        let text = table(&[status], now);
        let row = text.lines().nth(1).unwrap();
        assert!(row.contains("Suspended"), "{row}");
        assert!(row.contains("2 (observed 1)"), "{row}");
        assert!(row.contains(" 5s "), "{row}");
    }
}
