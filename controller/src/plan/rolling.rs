//! Rolling updates (`deploy.update_config`): a service's outdated
//! containers are replaced in batches, each new container proven running
//! (healthy, when the service has a healthcheck) before the container it
//! replaces is removed.
//!
//! Decisions (docker compose ignores `update_config`; these follow swarm
//! where it makes sense without a swarm):
//! - Batches of `parallelism` containers (default 1; 0 = all at once), in
//!   container-number order; a batch starts once the previous one is done
//!   (its new containers renamed to their final names) and `delay` passed.
//! - `order: start-first`: create the new container under its temporary
//!   name, start it, wait for it; only then stop and remove the old one and
//!   give the new one its final name. The service never runs fewer
//!   containers than it had; the new container must be able to run beside
//!   the old one (a fixed host port cannot be published twice).
//! - `order: stop-first` (the default, as in swarm): stop the old one,
//!   start the new one, wait for it; the stopped old container is removed
//!   only once the new one passed, so a rollback can start it again.
//! - The wait ([`Action::WaitContainer`]) is for health when the service has
//!   a healthcheck, else for running; with `monitor`, the container must
//!   keep that up until `monitor` has passed since it started.
//! - A failed wait stops the plan (the executor starts nothing after a
//!   failure). What happens next is `failure_action`'s: `rollback` (the
//!   default for a service with `update_config`) or `pause`, which the
//!   caller carries out by planning again with [`super::UpOptions::held`] or
//!   [`super::UpOptions::paused_updates`]; `continue` is treated as a failed
//!   reconcile, retried with backoff. [`rollout_of`] tells the caller which
//!   service a failed step was rolling out.
//! - Without `update_config` nothing here applies: replacements keep the
//!   all-at-once shape `up` has always had.
use std::time::Duration;

use super::builder::Builder;
use super::{Action, Condition, Plan};
use crate::model::ServiceConfig;

/// Whether the new container starts before or after the old one stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Stop the old container first (swarm's default).
    StopFirst,
    /// Start the new container first; the old one stops once it passed.
    StartFirst,
}

/// What a failed rolling update leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// Go back to the previous config (the default).
    Rollback,
    /// Leave everything as it is until the spec changes.
    Pause,
    /// Treat it as any failed reconcile: retry with backoff.
    Continue,
}

/// A service's `deploy.update_config`, read with its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// Containers replaced at once; 0 replaces them all at once.
    pub parallelism: usize,
    /// Time between two batches.
    pub delay: Duration,
    /// How long a new container must keep running (healthy) after its start.
    pub monitor: Duration,
    /// Start-first or stop-first.
    pub order: Order,
    /// What a failure leads to.
    pub failure_action: FailureAction,
}

impl Rollout {
    /// The rolling update the service asks for, if it has `update_config`.
    pub fn of(service: &ServiceConfig) -> Option<Self> {
        let update = service.deploy.as_ref()?.update_config.as_ref()?;
        let duration = |d: crate::model::Duration| d.to_std().unwrap_or_default();
        Some(Rollout {
            parallelism: update
                .parallelism
                .map_or(1, |p| usize::try_from(p).unwrap_or(usize::MAX)),
            delay: duration(update.delay),
            monitor: duration(update.monitor),
            order: if update.order == "start-first" {
                Order::StartFirst
            } else {
                Order::StopFirst
            },
            failure_action: match update.failure_action.as_str() {
                "pause" => FailureAction::Pause,
                "continue" => FailureAction::Continue,
                _ => FailureAction::Rollback,
            },
        })
    }
}

/// The service whose new container step `index` of `plan` acts on, when
/// that step is part of a rolling update: the wait on a new container, or
/// its create or start (the planner waits on every new container of a
/// rolling update, and on no other container).
pub fn rollout_of(plan: &Plan, index: usize) -> Option<&str> {
    let name = match &plan.steps.get(index)?.action {
        Action::WaitContainer { service, .. } => return Some(service),
        Action::CreateContainer { name, .. } | Action::StartContainer { name } => name,
        _ => return None,
    };
    plan.steps.iter().find_map(|step| match &step.action {
        Action::WaitContainer {
            service, name: n, ..
        } if n == name => Some(service.as_str()),
        _ => None,
    })
}

/// One outdated container to replace.
#[derive(Debug)]
pub(crate) struct Replacement<'o> {
    /// The container number.
    pub(crate) number: u32,
    /// Its current name.
    pub(crate) old: &'o str,
    /// Whether it runs (and must be stopped).
    pub(crate) running: bool,
    /// The name the new container is created under.
    pub(crate) temp: &'o str,
    /// The final name.
    pub(crate) name: &'o str,
    /// Why it is replaced.
    pub(crate) cause: &'o str,
}

/// What the rest of the plan asks of a service's steps.
pub(crate) struct Hooks<'h> {
    /// Steps a create waits for (image, networks, volumes, dependencies).
    pub(crate) create_after: &'h [usize],
    /// Steps a start waits for (dependency conditions, orphans removed).
    pub(crate) start_after: &'h [usize],
    /// Steps a stop of an old container waits for (dependents that
    /// restart with this service stopped).
    pub(crate) stop_after: &'h [usize],
}

/// The steps a rolling update added.
#[derive(Debug, Default)]
pub(crate) struct Emitted {
    /// Every step.
    pub(crate) steps: Vec<usize>,
    /// The renames, after which the containers have their final names.
    pub(crate) renamed: Vec<usize>,
}

/// Emits the batches that replace `replacements` (in container-number
/// order) of `service`, waiting on each new container for `condition`.
pub(crate) fn emit(
    builder: &mut Builder,
    service: &str,
    rollout: &Rollout,
    condition: Condition,
    replacements: &[Replacement<'_>],
    hooks: &Hooks<'_>,
) -> Emitted {
    let mut emitted = Emitted::default();
    if replacements.is_empty() {
        return emitted;
    }
    let size = match rollout.parallelism {
        0 => replacements.len(),
        n => n,
    };
    let batches: Vec<&[Replacement<'_>]> = replacements.chunks(size).collect();
    let total = batches.len();
    // The steps the next batch starts after: the previous batch's renames,
    // or the delay that follows them.
    let mut gate: Vec<usize> = Vec::new();
    for (i, batch) in batches.into_iter().enumerate() {
        if i > 0 && !rollout.delay.is_zero() {
            let delay = builder.push(
                Action::Delay {
                    service: service.to_string(),
                    duration: rollout.delay,
                },
                format!("between update batches {i} and {}", i + 1),
                gate.iter().copied(),
            );
            emitted.steps.push(delay);
            gate = vec![delay];
        }
        let mut done = Vec::new();
        for r in batch {
            let cause = if total > 1 {
                format!("{}, batch {}/{total}", r.cause, i + 1)
            } else {
                r.cause.to_string()
            };
            let mut push = |action: Action, after: Vec<usize>| {
                let step = builder.push(action, cause.clone(), after);
                emitted.steps.push(step);
                step
            };
            let with_gate =
                |after: &[usize]| -> Vec<usize> { after.iter().chain(&gate).copied().collect() };
            push(
                Action::CreateContainer {
                    service: service.to_string(),
                    number: r.number,
                    name: r.temp.to_string(),
                },
                with_gate(hooks.create_after),
            );
            let wait = Action::WaitContainer {
                service: service.to_string(),
                name: r.temp.to_string(),
                condition,
                monitor: rollout.monitor,
            };
            let waited = match rollout.order {
                Order::StartFirst => {
                    push(
                        Action::StartContainer {
                            name: r.temp.to_string(),
                        },
                        with_gate(hooks.start_after),
                    );
                    let waited = push(wait, Vec::new());
                    if r.running {
                        let mut after = hooks.stop_after.to_vec();
                        after.push(waited);
                        push(
                            Action::StopContainer {
                                name: r.old.to_string(),
                            },
                            after,
                        );
                    }
                    waited
                }
                Order::StopFirst => {
                    let mut start_after = with_gate(hooks.start_after);
                    if r.running {
                        let stopped = push(
                            Action::StopContainer {
                                name: r.old.to_string(),
                            },
                            with_gate(hooks.stop_after),
                        );
                        start_after.push(stopped);
                    }
                    push(
                        Action::StartContainer {
                            name: r.temp.to_string(),
                        },
                        start_after,
                    );
                    push(wait, Vec::new())
                }
            };
            let removed = push(
                Action::RemoveContainer {
                    name: r.old.to_string(),
                    volumes: false,
                },
                vec![waited],
            );
            let renamed = push(
                Action::RenameContainer {
                    from: r.temp.to_string(),
                    to: r.name.to_string(),
                },
                vec![removed],
            );
            emitted.renamed.push(renamed);
            done.push(renamed);
        }
        gate = done;
    }
    emitted
}
