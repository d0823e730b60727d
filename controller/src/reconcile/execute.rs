//! Runs a plan against a backend: each step starts as soon as the steps it
//! follows are done, up to a bounded number at once; the first failure stops
//! new steps from starting while the running ones finish; an overall timeout
//! bounds the whole run; waits still running when a step fails are
//! cancelled, engine calls are let finish. Decides nothing: the plan already did.
//!
//! One choice of order is made here: container creates and starts that lead
//! to a wait some later step is gated on (a dependency's health or
//! completion) are the critical ones, and other creates and starts are held
//! back while a critical one runs. Creating and starting containers is work
//! for the engine's CPU; sharing it with containers nothing waits for would
//! delay the containers that the rest of the plan waits for, and the held
//! steps run in the gaps (a healthcheck's interval) instead.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::docker::{self, ActionKind, Backend, ProjectMeta};
use crate::model::Project;
use crate::plan::{Action, Plan, Step};

/// How a plan is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    /// Steps running at once, waits not counted (they hold no engine work).
    pub parallelism: usize,
    /// Bound on the whole run (`--timeout`); `None` waits as long as it takes.
    pub timeout: Option<Duration>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            // Engine calls are mostly waiting on the daemon (a stop waits out
            // the grace period): a stack of a few dozen containers should
            // not queue behind a small bound.
            parallelism: 32,
            timeout: None,
        }
    }
}

/// Progress of a run, for the CLI's display. Indexes are into `plan.steps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The step started.
    Started {
        /// Step index.
        index: usize,
    },
    /// The step completed.
    Finished {
        /// Step index.
        index: usize,
        /// How long it took.
        elapsed: Duration,
    },
    /// The step failed, or was still running when the run timed out.
    Failed {
        /// Step index.
        index: usize,
        /// What went wrong, for people.
        error: String,
    },
    /// A wait was stopped because another step failed.
    Cancelled {
        /// Step index.
        index: usize,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Actions started, by kind (a no-op run has none).
    pub counts: BTreeMap<ActionKind, usize>,
    /// Steps that completed.
    pub completed: usize,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl Report {
    /// How many actions of `kind` were started.
    pub fn count(&self, kind: ActionKind) -> usize {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// How many actions that change containers were started (create,
    /// start, stop, remove, rename): zero for a converged project.
    pub fn container_changes(&self) -> usize {
        [
            ActionKind::CreateContainer,
            ActionKind::StartContainer,
            ActionKind::StopContainer,
            ActionKind::RemoveContainer,
            ActionKind::RenameContainer,
        ]
        .into_iter()
        .map(|k| self.count(k))
        .sum()
    }
}

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A step failed; steps not yet started were not run.
    #[error("{source}")]
    StepFailed {
        /// Index of the first step that failed.
        index: usize,
        /// Its action.
        action: Action,
        /// Why.
        #[source]
        source: Box<docker::Error>,
        /// What the run did before it stopped.
        report: Box<Report>,
    },
    /// The overall timeout passed with steps still running or waiting.
    #[error("timed out after {}s with {} step(s) still running", after.as_secs(), running.len())]
    TimedOut {
        /// The timeout.
        after: Duration,
        /// Steps that were running.
        running: Vec<usize>,
        /// What the run did before it stopped.
        report: Box<Report>,
    },
    /// A step follows a step that does not exist, itself, or (through a
    /// cycle) can never start.
    #[error("invalid plan: step {index} can never start")]
    InvalidPlan {
        /// The step.
        index: usize,
    },
}

impl ExecError {
    /// A stable snake_case name for metric labels and status reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::StepFailed { source, .. } => source.reason(),
            Self::TimedOut { .. } => "timed_out",
            Self::InvalidPlan { .. } => "invalid_plan",
        }
    }

    /// What the run did before it stopped.
    pub fn report(&self) -> Option<&Report> {
        match self {
            Self::StepFailed { report, .. } | Self::TimedOut { report, .. } => Some(report),
            Self::InvalidPlan { .. } => None,
        }
    }
}

/// Step dependencies checked and inverted: how many steps each one still
/// waits for, and which steps follow each one.
fn graph(plan: &Plan) -> Result<(Vec<usize>, Vec<Vec<usize>>), ExecError> {
    let n = plan.steps.len();
    let mut waiting = vec![0; n];
    let mut followers = vec![Vec::new(); n];
    for (index, step) in plan.steps.iter().enumerate() {
        let after: BTreeSet<usize> = step.after.iter().copied().collect();
        for &before in &after {
            if before >= n || before == index {
                return Err(ExecError::InvalidPlan { index });
            }
            followers[before].push(index);
        }
        waiting[index] = after.len();
    }
    Ok((waiting, followers))
}

/// Container creates and starts: the engine calls that cost it CPU.
fn is_heavy(action: &Action) -> bool {
    matches!(
        action,
        Action::CreateContainer { .. } | Action::StartContainer { .. }
    )
}

/// Which steps are critical: heavy steps from which a wait with followers
/// (one that gates later steps) can be reached.
fn critical_steps(plan: &Plan, followers: &[Vec<usize>]) -> Vec<bool> {
    let n = plan.steps.len();
    // `gates[i]`: a gating wait is reachable from step i (itself excluded).
    let mut gates = vec![false; n];
    // 0 unseen, 1 on the path being explored, 2 done. A follower on the path
    // is a cycle: `graph` accepted it, the run reports it; skip it here.
    let mut mark = vec![0u8; n];
    // Depth-first over followers, iteratively (plans can be long chains).
    for root in 0..n {
        if mark[root] != 0 {
            continue;
        }
        mark[root] = 1;
        let mut stack = vec![(root, 0usize)];
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            if let Some(&follower) = followers[node].get(*next) {
                *next += 1;
                if mark[follower] == 0 {
                    mark[follower] = 1;
                    stack.push((follower, 0));
                }
                continue;
            }
            gates[node] = followers[node].iter().any(|&f| {
                gates[f]
                    || (matches!(plan.steps[f].action, Action::WaitFor { .. })
                        && !followers[f].is_empty())
            });
            mark[node] = 2;
            stack.pop();
        }
    }
    (0..n)
        .map(|i| gates[i] && is_heavy(&plan.steps[i].action))
        .collect()
}

/// Runs one step; resolves to its index, outcome (`None` when cancelled)
/// and duration. Only waits are cancelled: they change nothing on the
/// engine, while an engine call cut short could leave half-made state.
async fn run_step(
    index: usize,
    step: &Step,
    project: &Project,
    meta: &ProjectMeta,
    backend: &dyn Backend,
    deadline: Option<Instant>,
    mut cancelled: watch::Receiver<bool>,
) -> (usize, Option<Result<(), docker::Error>>, Duration) {
    let started = Instant::now();
    let result = match &step.action {
        Action::WaitFor { service, condition } => {
            tokio::select! {
                result = backend.wait_for(project, service, *condition, deadline) => Some(result),
                _ = cancelled.wait_for(|c| *c) => None,
            }
        }
        action if action.is_wait() => {
            tokio::select! {
                result = backend.apply(project, meta, action) => Some(result),
                _ = cancelled.wait_for(|c| *c) => None,
            }
        }
        action => Some(backend.apply(project, meta, action).await),
    };
    (index, result, started.elapsed())
}

/// Runs `plan` for `project` on `backend`, reporting progress to `events`.
/// `meta` carries what containers are labelled with beyond the model.
pub async fn execute(
    plan: &Plan,
    project: &Project,
    meta: &ProjectMeta,
    backend: &dyn Backend,
    options: &ExecOptions,
    events: &mut (dyn FnMut(Event) + Send),
) -> Result<Report, ExecError> {
    let started = Instant::now();
    let deadline = options.timeout.map(|t| started + t);
    let (mut waiting, followers) = graph(plan)?;
    let critical = critical_steps(plan, &followers);
    let parallelism = options.parallelism.max(1);
    let mut critical_running = 0;

    let mut report = Report::default();
    let mut ready: BTreeSet<usize> = (0..plan.steps.len()).filter(|i| waiting[*i] == 0).collect();
    let mut running: BTreeSet<usize> = BTreeSet::new();
    let mut busy = 0;
    let mut failure: Option<(usize, docker::Error)> = None;
    let (cancel, cancelled) = watch::channel(false);

    let run = async {
        let mut in_flight = FuturesUnordered::new();
        loop {
            if failure.is_none() {
                // Critical steps first, so that none waits behind a held one.
                let mut startable: Vec<usize> = ready.iter().copied().collect();
                startable.sort_by_key(|i| !critical[*i]);
                for index in startable {
                    let step = &plan.steps[index];
                    let is_wait = step.action.is_wait();
                    if !is_wait && busy >= parallelism {
                        continue;
                    }
                    if critical_running > 0 && !critical[index] && is_heavy(&step.action) {
                        continue;
                    }
                    ready.remove(&index);
                    running.insert(index);
                    busy += usize::from(!is_wait);
                    critical_running += usize::from(critical[index]);
                    *report
                        .counts
                        .entry(ActionKind::of(&step.action))
                        .or_insert(0) += 1;
                    events(Event::Started { index });
                    in_flight.push(run_step(
                        index,
                        step,
                        project,
                        meta,
                        backend,
                        deadline,
                        cancelled.clone(),
                    ));
                }
            }
            let Some((index, result, elapsed)) = in_flight.next().await else {
                break;
            };
            running.remove(&index);
            busy -= usize::from(!plan.steps[index].action.is_wait());
            critical_running -= usize::from(critical[index]);
            match result {
                None => events(Event::Cancelled { index }),
                Some(Ok(())) => {
                    report.completed += 1;
                    events(Event::Finished { index, elapsed });
                    for &next in &followers[index] {
                        waiting[next] -= 1;
                        if waiting[next] == 0 {
                            ready.insert(next);
                        }
                    }
                }
                Some(Err(error)) => {
                    events(Event::Failed {
                        index,
                        error: error.to_string(),
                    });
                    if failure.is_none() {
                        failure = Some((index, error));
                        // Nothing waits on a wait any more: stop the running ones.
                        let _ = cancel.send(true);
                    }
                }
            }
        }
    };
    let timed_out = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, run).await.is_err(),
        None => {
            run.await;
            false
        }
    };
    report.elapsed = started.elapsed();

    if timed_out {
        let after = options.timeout.unwrap_or_default();
        for &index in &running {
            events(Event::Failed {
                index,
                error: format!("timed out after {}s", after.as_secs()),
            });
        }
        return Err(ExecError::TimedOut {
            after,
            running: running.into_iter().collect(),
            report: Box::new(report),
        });
    }
    if let Some((index, source)) = failure {
        return Err(ExecError::StepFailed {
            index,
            action: plan.steps[index].action.clone(),
            source: Box::new(source),
            report: Box::new(report),
        });
    }
    if report.completed < plan.steps.len() {
        let index = (0..plan.steps.len())
            .find(|i| waiting[*i] > 0)
            .unwrap_or_default();
        return Err(ExecError::InvalidPlan { index });
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
