//! The controller's side of a failed rolling update (see
//! [`crate::reconcile::rollout`]): hold the service, plan and run the
//! rollback, leave the stack Stalled until its spec changes.
use std::sync::Arc;

use super::{engine_failure, exec_failure, now_stamp, Controller, Outcome};
use crate::plan::{self, FailureAction, UpOptions};
use crate::reconcile::execute::ExecError;
use crate::reconcile::rollout::{update_failure, UpdateFailure};
use crate::source::DesiredStack;

impl Controller {
    /// The stack as it is converged while services are held (their
    /// previous config where known), with the holds added to `options`.
    /// Holds recorded under another spec are lifted first.
    pub(super) fn rollout_view(
        &self,
        name: &str,
        desired: &Arc<DesiredStack>,
        options: &mut UpOptions,
    ) -> Arc<DesiredStack> {
        let mut stacks = self.lock();
        let Some(entry) = stacks.get_mut(name) else {
            return Arc::clone(desired);
        };
        entry.rollouts.forget_stale(&desired.spec_hash);
        entry.rollouts.apply(options);
        entry.rollouts.effective(desired)
    }

    /// A run of `view` failed because `failure.service`'s rolling update
    /// did: hold the service and, for a rollback, plan and run the
    /// rollback (holding any other service whose update fails during it).
    /// The stack is then Stalled; a rollback that fails for another reason
    /// is retried with backoff, the hold kept.
    pub(super) async fn update_failed(
        &self,
        name: &str,
        view: &Arc<DesiredStack>,
        base: &UpOptions,
        mut failure: UpdateFailure,
        error: &ExecError,
    ) -> Outcome {
        if failure.action == FailureAction::Continue {
            return exec_failure(error);
        }
        let stamp = now_stamp();
        let mut view = Arc::clone(view);
        loop {
            let options = {
                let mut stacks = self.lock();
                let Some(entry) = stacks.get_mut(name) else {
                    return Outcome::Skipped;
                };
                entry.rollouts.record(&failure, &view, &stamp);
                let mut options = UpOptions {
                    held: Default::default(),
                    paused_updates: Default::default(),
                    ..base.clone()
                };
                entry.rollouts.apply(&mut options);
                view = entry.rollouts.effective(&view);
                options.known_hashes = view.meta.config_hashes.clone();
                options
            };
            tracing::warn!(stack = name, service = %failure.service, action = ?failure.action, "update failed: {}", failure.reason);
            if failure.action == FailureAction::Pause {
                break;
            }
            let observed = match self.backend.observe(&view.project, true).await {
                Ok(observed) => observed,
                Err(error) => return engine_failure(error),
            };
            let plan = match plan::plan_up(&view.project, &observed, &options) {
                Ok(plan) => plan,
                Err(error) => return self.plan_refused(name, &error),
            };
            tracing::info!(stack = name, steps = plan.steps.len(), "rolling back");
            let Err(error) = self.run_plan(&plan, &view).await else {
                // What runs now is this spec as held: later plans against
                // it are drift repairs, braked like any.
                if let Some(entry) = self.lock().get_mut(name) {
                    entry.converged_on = Some(view.spec_hash.clone());
                }
                break;
            };
            match update_failure(&plan, &view.project, &error) {
                Some(next)
                    if next.action != FailureAction::Continue
                        && !self
                            .lock()
                            .get(name)
                            .is_some_and(|e| e.rollouts.is_held(&next.service)) =>
                {
                    failure = next;
                }
                _ => return exec_failure(&error),
            }
        }
        let mut stacks = self.lock();
        let Some(entry) = stacks.get_mut(name) else {
            return Outcome::Skipped;
        };
        if let Some((reason, error)) = entry.rollouts.verdict() {
            let label = if reason == crate::status::reason::UPDATE_PAUSED {
                "update_paused"
            } else {
                "rolled_back"
            };
            self.metrics.reconcile_failed(name, label);
            entry.status.stalled(reason, error, &stamp);
        }
        Outcome::Skipped
    }
}
