//! How far each service's workload has come (from its live object's
//! status), and which services must wait for their dependencies before
//! their workload is applied. Pure.
//!
//! `depends_on` is honoured at the Stack level: a service's workload is
//! applied only when every dependency is met —
//! `service_started`: a pod of the dependency is ready (a Job: started);
//! `service_healthy`: every wanted pod of the dependency is ready;
//! `service_completed_successfully`: the dependency's Job succeeded.
//! A workload held back that already exists is left as it is (neither
//! updated nor pruned) until its dependencies are met again.
//!
//! Replica counts, as `stackd_service_replicas` reports them (the compose
//! words mapped onto what each workload's status says):
//!
//! | workload | `running` | `healthy` (= `ready`) |
//! |---|---|---|
//! | Deployment | `status.replicas`: pods it has that are not terminating (some may still be starting) | `status.readyReplicas` |
//! | StatefulSet | `status.replicas`: pods it created | `status.readyReplicas` |
//! | DaemonSet | `status.currentNumberScheduled`: nodes running its pod | `status.numberReady` |
//! | Job | `status.active`: pods pending or running | `status.succeeded` (a one-shot service is done, not running) |
//!
//! In watch mode `running` counts containers in state running and
//! `healthy` those also passing their healthcheck; a healthcheck becomes
//! a readiness probe, so `ready` is the healthy count here too, and
//! `running` may exceed `healthy` (pods starting, failing their probe,
//! or surging during a rollout), as in watch mode.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;

use super::desired::Desired;

/// What a live workload reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkloadState {
    /// Pods wanted (a Job: completions).
    pub desired: i32,
    /// Pods ready (a Job: pods that succeeded).
    pub ready: i32,
    /// Pods that exist and have not terminated, ready or not (a DaemonSet:
    /// nodes running its pod; a Job: active pods).
    pub running: i32,
    /// Whether some pod started (a Job: it has run or runs).
    pub started: bool,
    /// A Job: it completed.
    pub succeeded: bool,
    /// A Job: it failed for good.
    pub failed: bool,
    /// Whether the status describes the latest spec
    /// (`status.observedGeneration >= metadata.generation`).
    pub current: bool,
}

impl WorkloadState {
    /// Whether the workload is where its spec wants it.
    pub fn is_ready(&self) -> bool {
        self.current && !self.failed && self.ready >= self.desired
    }
}

fn current(generation: Option<i64>, observed: Option<i64>) -> bool {
    match (generation, observed) {
        (Some(g), Some(o)) => o >= g,
        // A server that does not count generations: trust the status.
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// The state of a Deployment.
pub fn deployment_state(d: &Deployment) -> WorkloadState {
    let desired = d.spec.replicas.unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    WorkloadState {
        desired,
        ready,
        running: status.replicas.unwrap_or(0),
        started: ready > 0,
        succeeded: false,
        failed: false,
        current: current(d.metadata.generation, status.observed_generation)
            && status.updated_replicas.unwrap_or(0) >= desired,
    }
}

/// The state of a StatefulSet.
pub fn statefulset_state(s: &StatefulSet) -> WorkloadState {
    let desired = s.spec.replicas.unwrap_or(1);
    let status = s.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    WorkloadState {
        desired,
        ready,
        running: status.replicas,
        started: ready > 0,
        succeeded: false,
        failed: false,
        current: current(s.metadata.generation, status.observed_generation),
    }
}

/// The state of a DaemonSet.
pub fn daemonset_state(d: &DaemonSet) -> WorkloadState {
    let status = d.status.clone().unwrap_or_default();
    let desired = status.desired_number_scheduled;
    let ready = status.number_ready;
    WorkloadState {
        desired,
        ready,
        running: status.current_number_scheduled,
        started: ready > 0,
        succeeded: false,
        failed: false,
        current: current(d.metadata.generation, status.observed_generation),
    }
}

/// The state of a Job: ready counts succeeded pods.
pub fn job_state(j: &Job) -> WorkloadState {
    let desired = j.spec.as_ref().and_then(|s| s.completions).unwrap_or(1);
    let status = j.status.clone().unwrap_or_default();
    let condition = |type_: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == type_ && c.status == "True")
    };
    let succeeded_pods = status.succeeded.unwrap_or(0);
    let succeeded = condition("Complete") || (desired > 0 && succeeded_pods >= desired);
    WorkloadState {
        desired,
        ready: succeeded_pods.min(desired),
        running: status.active.unwrap_or(0),
        started: status.start_time.is_some()
            || status.active.unwrap_or(0) > 0
            || succeeded_pods > 0
            || succeeded,
        succeeded,
        failed: condition("Failed"),
        current: true,
    }
}

/// Whether `state` meets the compose `condition`.
pub fn meets(condition: &str, state: &WorkloadState) -> bool {
    match condition {
        "service_completed_successfully" => state.succeeded,
        "service_healthy" => state.is_ready() || state.succeeded,
        // `service_started` and the default.
        _ => state.started || state.succeeded,
    }
}

/// The services whose workload must wait, each with the sentence saying
/// what for. `live` holds the state of each service's live workload.
pub fn held_back(
    desired: &Desired,
    live: &BTreeMap<String, WorkloadState>,
) -> BTreeMap<String, String> {
    let mut held = BTreeMap::new();
    for (name, service) in &desired.project.services {
        if !desired.workloads.contains_key(name) {
            continue;
        }
        let mut waiting = Vec::new();
        for (dependency, d) in &service.depends_on {
            if !desired.workloads.contains_key(dependency) {
                // A dependency without a workload (a provider) has nothing to wait for.
                continue;
            }
            let met = live.get(dependency).is_some_and(|s| meets(&d.condition, s));
            if !met {
                let condition = if d.condition.is_empty() {
                    "service_started"
                } else {
                    d.condition.as_str()
                };
                waiting.push(format!("{dependency} ({condition})"));
            }
        }
        if !waiting.is_empty() {
            held.insert(name.clone(), format!("waiting for {}", waiting.join(", ")));
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::desired::{desired, tests::shop};
    use crate::kube::policy::Policy;

    fn ready(desired: i32) -> WorkloadState {
        WorkloadState {
            desired,
            ready: desired,
            running: desired,
            started: true,
            current: true,
            ..WorkloadState::default()
        }
    }

    #[test]
    fn with_nothing_running_only_services_without_dependencies_are_applied() {
        let desired = desired(&shop(), &Policy::default(), None).unwrap();
        let held = held_back(&desired, &BTreeMap::new());
        assert_eq!(
            held.keys().collect::<Vec<_>>(),
            ["migrate", "web"],
            "{held:?}"
        );
        assert_eq!(
            held["web"],
            "waiting for db (service_healthy), migrate (service_completed_successfully)"
        );
    }

    #[test]
    fn a_started_dependency_releases_service_started_but_not_service_healthy() {
        let desired = desired(&shop(), &Policy::default(), None).unwrap();
        let starting = WorkloadState {
            desired: 1,
            ready: 0,
            started: true,
            current: true,
            ..WorkloadState::default()
        };
        let half = BTreeMap::from([("db".to_string(), starting)]);
        let held = held_back(&desired, &half);
        assert!(!held.contains_key("migrate"), "{held:?}");
        assert!(held["web"].contains("db (service_healthy)"));
    }

    #[test]
    fn the_last_service_waits_for_the_job_to_succeed() {
        let desired = desired(&shop(), &Policy::default(), None).unwrap();
        let mut live = BTreeMap::from([
            ("db".to_string(), ready(1)),
            (
                "migrate".to_string(),
                WorkloadState {
                    desired: 1,
                    started: true,
                    current: true,
                    ..WorkloadState::default()
                },
            ),
        ]);
        assert_eq!(
            held_back(&desired, &live)["web"],
            "waiting for migrate (service_completed_successfully)"
        );
        live.insert(
            "migrate".into(),
            WorkloadState {
                desired: 1,
                ready: 1,
                running: 0,
                started: true,
                succeeded: true,
                current: true,
                failed: false,
            },
        );
        assert!(held_back(&desired, &live).is_empty());
    }

    #[test]
    fn workload_states_are_read_from_their_status() {
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d", "generation": 3},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 3, "readyReplicas": 2, "updatedReplicas": 2}
        }))
        .unwrap();
        assert!(deployment_state(&deployment).is_ready());
        let stale: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d", "generation": 4},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 3, "readyReplicas": 2, "updatedReplicas": 2}
        }))
        .unwrap();
        assert!(
            !deployment_state(&stale).is_ready(),
            "status of an older spec"
        );
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "spec": {"template": {}},
            "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        }))
        .unwrap();
        let state = job_state(&job);
        assert!(state.succeeded && state.is_ready());
        let failed: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "spec": {"template": {}},
            "status": {"failed": 6, "conditions": [{"type": "Failed", "status": "True"}]}
        }))
        .unwrap();
        let state = job_state(&failed);
        assert!(
            state.failed && !state.is_ready() && !meets("service_completed_successfully", &state)
        );
        let set: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "generation": 1},
            "spec": {"replicas": 3, "selector": {}, "serviceName": "s", "template": {}},
            "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 1}
        }))
        .unwrap();
        let state = statefulset_state(&set);
        assert!(state.started && !state.is_ready());
        assert!(meets("service_started", &state) && !meets("service_healthy", &state));
    }

    #[test]
    fn running_counts_the_pods_a_workload_has_and_ready_the_ones_passing_their_probes() {
        // A rollout that surged: three pods exist, one of them ready.
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 3, "readyReplicas": 1,
                       "availableReplicas": 1, "updatedReplicas": 2}
        }))
        .unwrap();
        let state = deployment_state(&deployment);
        assert_eq!((state.running, state.ready), (3, 1));
        let set: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "generation": 1},
            "spec": {"replicas": 3, "selector": {}, "serviceName": "s", "template": {}},
            "status": {"observedGeneration": 1, "replicas": 2, "currentReplicas": 2, "readyReplicas": 1}
        }))
        .unwrap();
        let state = statefulset_state(&set);
        assert_eq!((state.running, state.ready), (2, 1));
        let daemons: DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ds", "generation": 1},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 4,
                       "currentNumberScheduled": 3, "numberReady": 2, "numberMisscheduled": 0}
        }))
        .unwrap();
        let state = daemonset_state(&daemons);
        assert_eq!((state.desired, state.running, state.ready), (4, 3, 2));
        let running_job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "spec": {"completions": 2, "template": {}},
            "status": {"active": 1, "ready": 1, "succeeded": 1}
        }))
        .unwrap();
        let state = job_state(&running_job);
        assert_eq!((state.running, state.ready), (1, 1));
        let done_job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "spec": {"template": {}},
            "status": {"active": 0, "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        }))
        .unwrap();
        let state = job_state(&done_job);
        assert_eq!(
            (state.running, state.ready),
            (0, 1),
            "a finished one-shot service runs nothing"
        );
        let fresh: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d", "generation": 1},
            "spec": {"replicas": 1, "selector": {}, "template": {}}
        }))
        .unwrap();
        let state = deployment_state(&fresh);
        assert_eq!(
            (state.running, state.ready),
            (0, 0),
            "no status yet: nothing runs"
        );
    }
}
