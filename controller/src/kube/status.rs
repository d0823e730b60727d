//! A Stack's status from what its workloads report: kstatus conditions
//! (`Ready`, `Reconciling`, `Stalled`), `observedGeneration` and the
//! per-service replica counts. Pure: the time is given.
//!
//! A condition keeps its `lastTransitionTime` while its status stays the
//! same (its reason and message may change). Messages are built from
//! service names, counts and error descriptions only, never from
//! environment values or secret contents (safety rule 5).
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::desired::Desired;
use super::gate::WorkloadState;
use crate::model::stack::{ServiceStatus, StackStatus};
use crate::status::MAX_MESSAGE_BYTES;

/// How a reconcile ended, as the status tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every service has its desired replicas ready (one-shot services:
    /// succeeded).
    Ready,
    /// Applied; workloads are still coming up or wait for dependencies.
    Progressing(String),
    /// Cannot progress until the Stack changes: an invalid Stack, a
    /// policy refusal, a failed Job. `reason` is `CamelCase`.
    Stalled {
        /// Why, in one word.
        reason: String,
        /// Why, for people.
        message: String,
    },
    /// A call to the API server failed; retried after a backoff.
    Retrying(String),
    /// `spec.suspend`: nothing is changed.
    Suspended,
}

/// The replica counts of every service of `desired`, from the states of
/// the live workloads (a service without one has nothing ready).
pub fn service_statuses(
    desired: &Desired,
    live: &BTreeMap<String, WorkloadState>,
) -> BTreeMap<String, ServiceStatus> {
    desired
        .workloads
        .keys()
        .map(|name| {
            let wanted = desired
                .project
                .services
                .get(name)
                .map(|s| {
                    s.deploy
                        .as_ref()
                        .and_then(|d| d.replicas)
                        .or(s.scale)
                        .unwrap_or(1)
                })
                .unwrap_or(1);
            let state = live.get(name);
            let image = desired
                .project
                .services
                .get(name)
                .map(|s| s.image.clone())
                .filter(|i| !i.is_empty());
            let status = ServiceStatus {
                desired: state
                    .map(|s| s.desired)
                    .unwrap_or_else(|| i32::try_from(wanted).unwrap_or(i32::MAX)),
                ready: state.map(|s| s.ready).unwrap_or(0),
                image,
            };
            (name.clone(), status)
        })
        .collect()
}

/// The verdict once the desired set was applied: Stalled when a Job
/// failed, Ready when every service is ready and none is held back, else
/// Progressing with what is still missing.
pub fn verdict(
    desired: &Desired,
    live: &BTreeMap<String, WorkloadState>,
    held: &BTreeMap<String, String>,
) -> Verdict {
    let failed: Vec<&str> = desired
        .workloads
        .keys()
        .filter(|name| live.get(*name).is_some_and(|s| s.failed))
        .map(String::as_str)
        .collect();
    if !failed.is_empty() {
        return Verdict::Stalled {
            reason: "JobFailed".into(),
            message: format!("the Job of {} failed", failed.join(", ")),
        };
    }
    let mut missing = Vec::new();
    for name in desired.workloads.keys() {
        if let Some(why) = held.get(name) {
            missing.push(format!("{name}: {why}"));
            continue;
        }
        match live.get(name) {
            Some(state) if state.is_ready() => {}
            Some(state) => missing.push(format!("{name}: {}/{} ready", state.ready, state.desired)),
            None => missing.push(format!("{name}: not created yet")),
        }
    }
    if missing.is_empty() {
        Verdict::Ready
    } else {
        Verdict::Progressing(missing.join("; "))
    }
}

/// The next status: `previous` with the conditions the verdict sets,
/// `observedGeneration` = `generation`, and `services` (kept from
/// `previous` when `None`: a Stack that cannot be translated has no
/// fresh counts).
pub fn next_status(
    previous: Option<&StackStatus>,
    generation: Option<i64>,
    verdict: &Verdict,
    services: Option<BTreeMap<String, ServiceStatus>>,
    service_count: usize,
    now: &Time,
) -> StackStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.service_count = i32::try_from(service_count).unwrap_or(i32::MAX);
    if let Some(services) = services {
        status.services = services;
    }
    let (ready, reconciling, stalled, reason, message) = match verdict {
        Verdict::Ready => {
            let total: i32 = status.services.values().map(|s| s.ready).sum();
            (
                "True",
                "False",
                "False",
                "Succeeded".to_string(),
                format!("{} services, {total} pods ready", status.services.len()),
            )
        }
        Verdict::Progressing(message) => (
            "False",
            "True",
            "False",
            "Progressing".to_string(),
            message.clone(),
        ),
        Verdict::Stalled { reason, message } => {
            ("False", "False", "True", reason.clone(), message.clone())
        }
        Verdict::Retrying(message) => (
            "False",
            "True",
            "False",
            "RetryScheduled".to_string(),
            message.clone(),
        ),
        Verdict::Suspended => (
            "False",
            "False",
            "False",
            "Suspended".to_string(),
            "spec.suspend is true: nothing is changed".to_string(),
        ),
    };
    let message = clip(message);
    for (type_, value) in [
        ("Ready", ready),
        ("Reconciling", reconciling),
        ("Stalled", stalled),
    ] {
        set_condition(
            &mut status.conditions,
            type_,
            value,
            &reason,
            &message,
            generation,
            now,
        );
    }
    status
}

fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let existing = conditions.iter_mut().find(|c| c.type_ == type_);
    match existing {
        Some(condition) => {
            if condition.status != value {
                condition.last_transition_time = now.clone();
                condition.status = value.into();
            }
            condition.reason = reason.into();
            condition.message = message.into();
            condition.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.into(),
            status: value.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time: now.clone(),
        }),
    }
}

fn clip(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// Whether the Ready condition of `status` is True.
pub fn is_ready(status: &StackStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::desired::{desired, tests::shop};
    use crate::kube::policy::Policy;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn ready(desired: i32) -> WorkloadState {
        WorkloadState {
            desired,
            ready: desired,
            running: desired,
            started: true,
            succeeded: false,
            failed: false,
            current: true,
        }
    }

    fn all_ready() -> BTreeMap<String, WorkloadState> {
        let mut live: BTreeMap<String, WorkloadState> = ["cache", "db", "web", "worker"]
            .into_iter()
            .map(|s| (s.to_string(), ready(1)))
            .collect();
        live.insert(
            "migrate".into(),
            WorkloadState {
                succeeded: true,
                ..ready(1)
            },
        );
        live
    }

    fn condition<'a>(status: &'a StackStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn a_stack_whose_workloads_are_all_ready_is_ready() {
        let desired = desired(&shop(), &Policy::default(), None).unwrap();
        let live = all_ready();
        let verdict = verdict(&desired, &live, &BTreeMap::new());
        assert_eq!(verdict, Verdict::Ready);
        let status = next_status(
            None,
            Some(4),
            &verdict,
            Some(service_statuses(&desired, &live)),
            5,
            &at(100),
        );
        assert_eq!(status.observed_generation, Some(4));
        assert_eq!(condition(&status, "Ready").status, "True");
        assert_eq!(condition(&status, "Reconciling").status, "False");
        assert_eq!(condition(&status, "Stalled").status, "False");
        assert_eq!(condition(&status, "Ready").observed_generation, Some(4));
        assert_eq!(status.services["web"].ready, 1);
        assert_eq!(status.services["web"].image.as_deref(), Some("nginx"));
        assert!(is_ready(&status));
    }

    #[test]
    fn held_back_and_unready_services_keep_the_stack_progressing_and_say_why() {
        let desired = desired(&shop(), &Policy::default(), None).unwrap();
        let mut live = all_ready();
        live.remove("web");
        live.insert(
            "cache".into(),
            WorkloadState {
                ready: 0,
                ..ready(2)
            },
        );
        let held = BTreeMap::from([(
            "web".to_string(),
            "waiting for db (service_healthy)".to_string(),
        )]);
        let Verdict::Progressing(message) = verdict(&desired, &live, &held) else {
            panic!("not progressing")
        };
        assert_eq!(
            message,
            "cache: 0/2 ready; web: waiting for db (service_healthy)"
        );
    }

    #[test]
    fn a_failed_job_stalls_the_stack() {
        let desired = desired(&shop(), &Policy::default(), None).unwrap();
        let mut live = all_ready();
        live.insert(
            "migrate".into(),
            WorkloadState {
                failed: true,
                ready: 0,
                ..ready(1)
            },
        );
        assert_eq!(
            verdict(&desired, &live, &BTreeMap::new()),
            Verdict::Stalled {
                reason: "JobFailed".into(),
                message: "the Job of migrate failed".into()
            }
        );
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let first = next_status(
            None,
            Some(1),
            &Verdict::Progressing("web: 0/1 ready".into()),
            None,
            1,
            &at(100),
        );
        let second = next_status(
            Some(&first),
            Some(1),
            &Verdict::Progressing("web: waiting".into()),
            None,
            1,
            &at(200),
        );
        let reconciling = condition(&second, "Reconciling");
        assert_eq!(reconciling.message, "web: waiting");
        assert_eq!(reconciling.last_transition_time, at(100));
        let third = next_status(Some(&second), Some(1), &Verdict::Ready, None, 1, &at(300));
        assert_eq!(condition(&third, "Ready").last_transition_time, at(300));
        assert_eq!(condition(&third, "Stalled").last_transition_time, at(100));
    }

    #[test]
    fn a_stalled_stack_keeps_its_last_service_counts() {
        let desired = desired(&shop(), &Policy::default(), None).unwrap();
        let live = all_ready();
        let good = next_status(
            None,
            Some(1),
            &Verdict::Ready,
            Some(service_statuses(&desired, &live)),
            5,
            &at(1),
        );
        let stalled = next_status(
            Some(&good),
            Some(2),
            &Verdict::Stalled {
                reason: "PolicyRefused".into(),
                message: "service web: privileged is refused".into(),
            },
            None,
            5,
            &at(2),
        );
        assert_eq!(stalled.services, good.services);
        assert_eq!(condition(&stalled, "Stalled").status, "True");
        assert_eq!(condition(&stalled, "Stalled").reason, "PolicyRefused");
        assert_eq!(condition(&stalled, "Ready").status, "False");
        assert_eq!(stalled.observed_generation, Some(2));
    }
}
