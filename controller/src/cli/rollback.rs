//! `stackd up` after a failed rolling update: the service is planned again
//! held (its new containers removed, the old ones kept or started again)
//! or, with `failure_action: pause`, left as it is; `up` then fails naming
//! the service. A one-shot run knows no previous config, so replicas an
//! earlier batch already updated keep the new one.
use std::io::Write;
use std::time::Duration;

use super::engine::{observe_and_plan, run_plan};
use super::CliError;
use crate::docker::{DockerBackend, ProjectMeta};
use crate::model::Project;
use crate::plan::{FailureAction, Plan, UpOptions};
use crate::reconcile::rollout::{update_failure, UpdateFailure};

/// What a plan of `up` runs against.
pub(super) struct Run<'a> {
    pub(super) backend: &'a DockerBackend,
    pub(super) project: &'a Project,
    pub(super) meta: &'a ProjectMeta,
    pub(super) options: &'a UpOptions,
    pub(super) timeout: Option<Duration>,
}

/// The failed update behind a run's error, when it is one to act on.
fn failed_update(
    plan: &Plan,
    project: &Project,
    result: &Result<(), CliError>,
) -> Option<UpdateFailure> {
    let Err(CliError::Execute(error)) = result else {
        return None;
    };
    update_failure(plan, project, error).filter(|f| f.action != FailureAction::Continue)
}

/// Passes `result` (of running `plan`) on, unless a rolling update failed:
/// then rolls back (or pauses) every service whose update fails, and
/// fails naming them.
pub(super) async fn after_update(
    run: &Run<'_>,
    plan: &Plan,
    result: Result<(), CliError>,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let Some(mut failure) = failed_update(plan, run.project, &result) else {
        return result;
    };
    let mut options = run.options.clone();
    let mut failures = Vec::new();
    loop {
        let service = failure.service.clone();
        match failure.action {
            FailureAction::Pause => {
                options.paused_updates.insert(service.clone());
            }
            _ => {
                let hash = run.meta.config_hash(&service)?.to_owned();
                options.held.insert(service.clone(), hash);
                writeln!(
                    err,
                    "service {service}: new config never became healthy, rolling back"
                )?;
            }
        }
        failures.push(failure);
        let (_, plan) = observe_and_plan(run.backend, run.project, &options).await?;
        if plan.is_empty() {
            break;
        }
        let result = run_plan(run.backend, run.project, run.meta, &plan, run.timeout, err).await;
        match failed_update(&plan, run.project, &result) {
            Some(next)
                if !options.held.contains_key(&next.service)
                    && !options.paused_updates.contains(&next.service) =>
            {
                failure = next;
            }
            _ => {
                result?;
                break;
            }
        }
    }
    let message: Vec<String> = failures.iter().map(|f| f.message(false)).collect();
    Err(CliError::UpdateFailed {
        service: failures
            .first()
            .map(|f| f.service.clone())
            .unwrap_or_default(),
        message: message.join("; "),
    })
}
