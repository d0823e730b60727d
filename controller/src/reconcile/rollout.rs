//! Failed rolling updates: telling one apart from any other failed run,
//! and what the controller remembers of them until the spec changes.
//!
//! A service with `deploy.update_config` whose new container never became
//! healthy (unhealthy, exited, crashed, refused to start, or still waiting
//! when the run timed out) failed its update. With `failure_action:
//! rollback` (the default) the service is *held*: planned with its previous
//! config when the controller saw one converge (so containers already
//! updated are replaced back, batch by batch), else with the failed config
//! but keeping what runs ([`crate::plan::UpOptions::held`]). With `pause`
//! it is left as it is ([`crate::plan::UpOptions::paused_updates`]). Either way the
//! stack is Stalled (`RolledBack` or `UpdatePaused`) and the failed config
//! is not tried again until the stack's spec changes. Holds live in memory:
//! a restarted controller tries the update once more.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::execute::ExecError;
use crate::docker;
use crate::plan::{rollout_of, Action, FailureAction, Plan, Rollout, UpOptions};
use crate::source::DesiredStack;
use crate::status::{self, LastError};

/// A rolling update that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFailure {
    /// The service being updated.
    pub service: String,
    /// Why its new container did not pass, for people.
    pub reason: String,
    /// What its `update_config` says to do now.
    pub action: FailureAction,
}

impl UpdateFailure {
    /// One sentence for status and the CLI: the service, why, and what was done.
    pub fn message(&self, rolled_back_to_previous: bool) -> String {
        let outcome = match self.action {
            FailureAction::Pause => "update paused (failure_action: pause) until the spec changes",
            FailureAction::Rollback if rolled_back_to_previous => {
                "rolled back to the previous config"
            }
            FailureAction::Rollback => {
                "rolled back: the new containers were removed and the old ones kept"
            }
            FailureAction::Continue => "will be retried",
        };
        format!(
            "service {}: new config never became healthy: {}; {outcome}",
            self.service, self.reason
        )
    }
}

/// The failed rolling update behind `error`, if the run failed on a new
/// container of one (not on an engine that could not be reached: that is
/// retried as any failure is).
pub fn update_failure(
    plan: &Plan,
    project: &crate::model::Project,
    error: &ExecError,
) -> Option<UpdateFailure> {
    let (service, reason) = match error {
        ExecError::StepFailed { index, source, .. } => {
            let service = rollout_of(plan, *index)?;
            if matches!(
                **source,
                docker::Error::EngineUnreachable { .. }
                    | docker::Error::RequestFailed { .. }
                    | docker::Error::EngineRejected { .. }
            ) {
                return None;
            }
            let text = source.to_string();
            let prefix = format!("service {service}: ");
            let reason = text.strip_prefix(&prefix).unwrap_or(&text).to_string();
            (service, reason)
        }
        ExecError::TimedOut { running, after, .. } => {
            running
                .iter()
                .find_map(|&index| match &plan.steps[index].action {
                    Action::WaitContainer { service, name, .. } => Some((
                        service.as_str(),
                        format!(
                            "container {name} did not pass within the {}s the run was given",
                            after.as_secs()
                        ),
                    )),
                    _ => None,
                })?
        }
        ExecError::InvalidPlan { .. } => return None,
    };
    let action = project
        .services
        .get(service)
        .and_then(Rollout::of)
        .map_or(FailureAction::Rollback, |r| r.failure_action);
    Some(UpdateFailure {
        service: service.to_string(),
        reason,
        action,
    })
}

/// One held service.
#[derive(Debug, Clone)]
struct Hold {
    /// The stack's spec hash when the update failed: a new spec lifts it.
    spec_hash: String,
    /// The service's config hash that failed.
    config_hash: String,
    paused: bool,
    message: String,
}

/// What the controller remembers of one stack's rolling updates.
#[derive(Debug, Default)]
pub(crate) struct Rollouts {
    /// The last desired state that converged with nothing held: what a
    /// failed service rolls back to.
    last_good: Option<Arc<DesiredStack>>,
    holds: BTreeMap<String, Hold>,
    /// When the first hold was recorded, for a stable status.
    since: Option<status::Timestamp>,
}

impl Rollouts {
    /// Lifts the holds recorded under another spec.
    pub(crate) fn forget_stale(&mut self, spec_hash: &str) {
        self.holds.retain(|_, h| h.spec_hash == spec_hash);
        if self.holds.is_empty() {
            self.since = None;
        }
    }

    /// Whether `service` is held.
    pub(crate) fn is_held(&self, service: &str) -> bool {
        self.holds.contains_key(service)
    }

    /// Adds the holds to a plan's options.
    pub(crate) fn apply(&self, options: &mut UpOptions) {
        for (service, hold) in &self.holds {
            if hold.paused {
                options.paused_updates.insert(service.clone());
            } else {
                options
                    .held
                    .insert(service.clone(), hold.config_hash.clone());
            }
        }
    }

    /// The previous config of `service`, when one converged and differs
    /// from the one that failed.
    fn previous(&self, service: &str, failed: &str) -> Option<&crate::model::ServiceConfig> {
        let good = self.last_good.as_ref()?;
        let hash = good.meta.config_hashes.get(service)?;
        (hash != failed)
            .then(|| good.project.services.get(service))
            .flatten()
    }

    /// `desired` with every rolled-back service's previous config, where
    /// it is known: what the stack converges on while the holds last.
    pub(crate) fn effective(&self, desired: &Arc<DesiredStack>) -> Arc<DesiredStack> {
        let mut view: Option<DesiredStack> = None;
        for (service, hold) in &self.holds {
            if hold.paused {
                continue;
            }
            let Some(previous) = self.previous(service, &hold.config_hash) else {
                continue;
            };
            let view = view.get_or_insert_with(|| (**desired).clone());
            view.project
                .services
                .insert(service.clone(), previous.clone());
            view.meta
                .config_hashes
                .insert(service.clone(), crate::plan::config_hash(previous));
        }
        view.map_or_else(|| Arc::clone(desired), Arc::new)
    }

    /// Records a failed update of `failure.service` in `view` (the stack as
    /// it was converged on). Returns false when the service was already
    /// held: its rollback itself failed.
    pub(crate) fn record(
        &mut self,
        failure: &UpdateFailure,
        view: &DesiredStack,
        now: &status::Timestamp,
    ) -> bool {
        if self.holds.contains_key(&failure.service) {
            return false;
        }
        let config_hash = view
            .meta
            .config_hashes
            .get(&failure.service)
            .cloned()
            .unwrap_or_default();
        let paused = failure.action == FailureAction::Pause;
        let to_previous = !paused && self.previous(&failure.service, &config_hash).is_some();
        self.holds.insert(
            failure.service.clone(),
            Hold {
                spec_hash: view.spec_hash.clone(),
                config_hash,
                paused,
                message: failure.message(to_previous),
            },
        );
        self.since.get_or_insert_with(|| now.clone());
        true
    }

    /// The stack converged on `desired`: it becomes what later failures roll
    /// back to, unless something is held (then `desired` is a mix).
    pub(crate) fn converged(&mut self, desired: &Arc<DesiredStack>) {
        if self.holds.is_empty() {
            self.last_good = Some(Arc::clone(desired));
        }
    }

    /// The Stalled reason and error while something is held.
    pub(crate) fn verdict(&self) -> Option<(&'static str, LastError)> {
        let since = self.since.as_ref()?;
        if self.holds.is_empty() {
            return None;
        }
        let reason = if self.holds.values().all(|h| h.paused) {
            status::reason::UPDATE_PAUSED
        } else {
            status::reason::ROLLED_BACK
        };
        let message: Vec<&str> = self.holds.values().map(|h| h.message.as_str()).collect();
        Some((reason, LastError::new(message.join("; "), since)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::docker::Error;
    use crate::plan::{Condition, Step};

    fn step(action: Action) -> Step {
        Step {
            action,
            cause: String::new(),
            after: Vec::new(),
        }
    }

    fn rolling_plan() -> Plan {
        Plan {
            steps: vec![
                step(Action::StartContainer {
                    name: "0123456789ab_demo-web-1".into(),
                }),
                step(Action::WaitContainer {
                    service: "web".into(),
                    name: "0123456789ab_demo-web-1".into(),
                    condition: Condition::ServiceHealthy,
                    monitor: std::time::Duration::ZERO,
                }),
                step(Action::StopContainer {
                    name: "demo-web-1".into(),
                }),
            ],
        }
    }

    fn failed(index: usize, source: Error) -> ExecError {
        ExecError::StepFailed {
            index,
            action: rolling_plan().steps[index].action.clone(),
            source: Box::new(source),
            report: Box::default(),
        }
    }

    fn project(failure_action: &str) -> crate::model::Project {
        serde_json::from_value(serde_json::json!({
            "name": "demo",
            "services": {"web": {"image": "busybox", "deploy": {"update_config": {
                "failure_action": failure_action}}}}
        }))
        .unwrap()
    }

    #[test]
    fn an_unhealthy_new_container_is_a_failed_update_of_its_service() {
        let error = failed(
            1,
            Error::Unhealthy {
                service: "web".into(),
                container: "0123456789ab_demo-web-1".into(),
            },
        );
        let failure = update_failure(&rolling_plan(), &project(""), &error).unwrap();
        assert_eq!(failure.service, "web");
        assert_eq!(failure.action, FailureAction::Rollback);
        assert_eq!(
            failure.message(true),
            "service web: new config never became healthy: container 0123456789ab_demo-web-1 is unhealthy; rolled back to the previous config"
        );
        let paused = update_failure(&rolling_plan(), &project("pause"), &error).unwrap();
        assert_eq!(paused.action, FailureAction::Pause);
    }

    #[test]
    fn a_refused_start_of_the_new_container_fails_the_update_but_an_unreachable_engine_does_not() {
        let refused = failed(
            0,
            Error::StartFailed {
                container: "0123456789ab_demo-web-1".into(),
                message: "port is already allocated".into(),
            },
        );
        assert!(update_failure(&rolling_plan(), &project(""), &refused).is_some());
        let request = failed(
            1,
            Error::EngineRejected {
                operation: "wait for container",
                target: "x".into(),
                status: 500,
                message: "boom".into(),
            },
        );
        assert!(update_failure(&rolling_plan(), &project(""), &request).is_none());
        let old = failed(
            2,
            Error::ContainerBusy {
                container: "demo-web-1".into(),
                message: "busy".into(),
            },
        );
        assert!(
            update_failure(&rolling_plan(), &project(""), &old).is_none(),
            "a step on the old container is not the new config's fault"
        );
    }

    #[test]
    fn a_run_that_timed_out_waiting_on_a_new_container_failed_its_update() {
        let error = ExecError::TimedOut {
            after: std::time::Duration::from_secs(60),
            running: vec![1],
            report: Box::default(),
        };
        let failure = update_failure(&rolling_plan(), &project(""), &error).unwrap();
        assert!(
            failure.reason.contains("within the 60s"),
            "{}",
            failure.reason
        );
    }
}
