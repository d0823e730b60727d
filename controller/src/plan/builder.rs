//! Appends steps to a plan, chaining every step that touches a container
//! name after the previous step on that name, so a plan never renames,
//! starts or removes a container before the step that made it what it is.
use std::collections::HashMap;

use super::{Action, Plan, Step};

/// A plan under construction.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    steps: Vec<Step>,
    last_on_name: HashMap<String, usize>,
}

impl Builder {
    /// Adds a step after `after` and after the last step on each container
    /// name the action touches; returns its index.
    pub(crate) fn push(
        &mut self,
        action: Action,
        cause: impl Into<String>,
        after: impl IntoIterator<Item = usize>,
    ) -> usize {
        let names = container_names(&action);
        let mut after: Vec<usize> = after.into_iter().collect();
        for name in &names {
            if let Some(&i) = self.last_on_name.get(*name) {
                after.push(i);
            }
        }
        after.sort_unstable();
        after.dedup();
        let index = self.steps.len();
        let names: Vec<String> = names.into_iter().map(str::to_string).collect();
        self.steps.push(Step {
            action,
            cause: cause.into(),
            after,
        });
        for name in names {
            self.last_on_name.insert(name, index);
        }
        index
    }

    /// The cause of an earlier step, to extend it.
    pub(crate) fn cause_mut(&mut self, index: usize) -> Option<&mut String> {
        self.steps.get_mut(index).map(|s| &mut s.cause)
    }

    /// The finished plan.
    pub(crate) fn finish(self) -> Plan {
        Plan { steps: self.steps }
    }
}

fn container_names(action: &Action) -> Vec<&str> {
    match action {
        Action::CreateContainer { name, .. }
        | Action::StartContainer { name }
        | Action::StopContainer { name }
        | Action::RemoveContainer { name, .. }
        | Action::WaitContainer { name, .. } => vec![name],
        Action::RenameContainer { from, to } => vec![from, to],
        Action::CreateNetwork { .. }
        | Action::CreateVolume { .. }
        | Action::EnsureImage { .. }
        | Action::WaitFor { .. }
        | Action::Delay { .. }
        | Action::RemoveNetwork { .. }
        | Action::RemoveVolume { .. } => Vec::new(),
    }
}
