//! `up`: the steps that bring the engine to the project, touching only
//! what differs.
//!
//! Planning runs in two passes over the services in dependency order. The
//! first decides, per service and per container number, what happens to
//! each container (keep, start, create, replace, remove, finish an
//! interrupted replacement); the second turns the decisions into steps and
//! orders them: a dependent's containers are created after its
//! dependencies' containers exist (for `service:` namespaces and
//! `volumes_from`), and started only after each dependency meets its
//! condition. Services that do not depend on each other are not ordered.
//!
//! Decisions, where compose leaves room or where stackd differs on purpose:
//! - Containers are numbered 1..=replicas; missing numbers are created,
//!   numbers above the scale removed, highest first in the text (removals
//!   run in parallel). Containers that stay are not touched by scaling.
//! - A container is replaced when its config hash or its image id differs,
//!   when it is dead, or with `force_recreate`. Replacement is gap-free:
//!   create under `<old id prefix>_<name>`, stop and remove the old one,
//!   rename, start. A service with `deploy.update_config` is replaced
//!   batch by batch instead, each new container proven before the old one
//!   goes (see [`super::rolling`]).
//! - A `service_started` dependency orders starts directly (the dependent
//!   starts after the dependency's steps), as compose does; only
//!   `service_healthy` and `service_completed_successfully` get a
//!   [`Action::WaitFor`] step, shared by all dependents that need it.
//!   Dependencies scaled to 0 are not waited on.
//! - Containers are created early: a dependent's create waits only for its
//!   dependencies' containers to exist, its start for their condition.
//! - One-shot jobs (see [`is_one_shot`]: `restart: "no"` or no restart
//!   policy at all, which the engine treats alike) that exited 0 with the
//!   current config and image are done and never started again (safety
//!   rule 6); a change to their own config or image runs them again. One
//!   that exited non-zero is started again, as `docker compose up` would
//!   (the reconcile loop's backoff keeps that from spinning). Any other
//!   stopped container is started.
//! - Up-to-date paused containers are unpaused (a start step, which the
//!   backend turns into an unpause for a paused container).
//! - A container is also replaced when it is not attached to one of its
//!   service's networks, or is attached to a network that was removed (and
//!   maybe created again under its name: the engine would refuse to start
//!   it); network ids are compared only when networks were listed.
//! - Two containers claiming one number: the one carrying the final name is
//!   kept; without one, a leftover temporary container is finished (renamed
//!   and started, or replaced if outdated); without that, the container
//!   with the current config hash, then a running one, then the lowest
//!   name, is replaced under the final name. Others are removed. A leftover
//!   temporary container next to the container it was to replace is removed
//!   and the replacement planned again.
//! - `restart: true` dependents (running and kept as they are) are stopped
//!   before the dependency's old container stops and started after it meets
//!   the condition; the restart is not passed on to their own dependents,
//!   and a finished one-shot dependent is not rerun.
//! - A container sharing the namespace (`network_mode`, `ipc`, `pid`:
//!   `service:X`) or volumes (`volumes_from: X`) of a service whose first
//!   container is new or replaced is replaced too, as compose's resolved
//!   container ids make it do.
//! - Images: a missing image is ensured (built or pulled) even when no
//!   container needs creating; an image not looked up is ensured only before
//!   creates; with `pull_policy: always` or `build`, before creates only (no
//!   periodic pulls). An image ensured for running containers is compared
//!   with them on the next plan.
//! - Networks and volumes are created when missing and otherwise left as
//!   they are (no hash comparison); external ones must be observed by name.
//! - Orphans (containers of services not in the project, one-offs excluded)
//!   are removed only with `prune_orphans`, and every start waits for their
//!   removal (they may hold the ports the new containers need). A project
//!   without services but with containers is refused (safety rule 2).
//! - `up --wait` ends with one wait per service, unless the service was not
//!   touched and already meets its condition, or the same wait is already in
//!   the plan: completion for services others wait on that way, health for
//!   services with a healthcheck, else running (compose's
//!   `running_or_healthy`). A finished one-shot counts as meeting it.
use std::collections::{BTreeMap, BTreeSet};

use super::builder::Builder;
use super::graph::Graph;
use super::rolling::{self, Replacement, Rollout};
use super::service::{
    container_name, desired_replicas, has_healthcheck, image_ref, is_one_shot, parse_condition,
    temporary_name,
};
use super::{
    config_hash, Action, Condition, ContainerState, Health, Observed, ObservedContainer, Plan,
    PlanError,
};
use crate::model::{Project, ServiceConfig};

/// How `up` converges, beyond the project itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpOptions {
    /// Remove containers of services that left the project.
    pub prune_orphans: bool,
    /// End with a wait for every service to be running or healthy
    /// (`up --wait`), or completed for services others wait on that way.
    pub wait: bool,
    /// Replace every container, changed or not.
    pub force_recreate: bool,
    /// Restart (stop, then start) running containers whose healthcheck
    /// reports unhealthy. The engine never does this itself; a controller
    /// that keeps stacks converged does, and brakes crash loops itself.
    pub restart_unhealthy: bool,
    /// Containers (by name) to replace even though their labels match:
    /// ones changed behind stackd's back (`docker update`, a network
    /// disconnected), which no label records.
    pub replace: BTreeSet<String>,
    /// Services whose rolling update failed, with the config hash that
    /// failed: while the service's config still has that hash, its
    /// containers are kept whatever config they run (a stopped one is
    /// started again) and new ones left from the update are removed. A
    /// rollback plan (see [`super::Rollout`]).
    pub held: BTreeMap<String, String>,
    /// Services whose failed rolling update is paused: their containers
    /// are left exactly as they are.
    pub paused_updates: BTreeSet<String>,
    /// Service name → config hash already computed for this exact project
    /// (when it was loaded): the planner trusts these instead of hashing
    /// each service again on every plan. Services missing here are hashed.
    pub known_hashes: BTreeMap<String, String>,
}

/// The steps that make the engine run `project`, given what it runs now.
pub fn plan_up(
    project: &Project,
    observed: &Observed,
    options: &UpOptions,
) -> Result<Plan, PlanError> {
    let graph = Graph::new(project)?;
    if project.services.is_empty() && observed.containers.iter().any(|c| !c.oneoff) {
        return Err(PlanError::EmptyProject {
            project: project.name.clone(),
        });
    }
    let mut specs = BTreeMap::new();
    for (name, service) in &project.services {
        let known = options.known_hashes.get(name).cloned();
        specs.insert(
            name.as_str(),
            Spec::new(project, name, service, observed, known)?,
        );
    }
    let planner = Planner {
        project,
        observed,
        options,
        graph: &graph,
        specs,
    };
    planner.plan()
}

/// What the planner needs to know about one service, computed once.
struct Spec<'a> {
    name: &'a str,
    service: &'a ServiceConfig,
    replicas: u32,
    hash: String,
    image: ImageState<'a>,
    one_shot: bool,
    /// Dependencies in the project: name, condition, `restart`.
    dependencies: Vec<(&'a str, Condition, bool)>,
    /// Services whose first container this one shares namespaces or volumes with.
    namespace_parents: Vec<&'a str>,
}

/// What the engine has of a service's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageState<'a> {
    /// Looked up, not there.
    Missing,
    /// There, with this id.
    Present(&'a str),
    /// Not looked up.
    Unknown,
}

impl<'a> Spec<'a> {
    fn new(
        project: &'a Project,
        name: &'a str,
        service: &'a ServiceConfig,
        observed: &'a Observed,
        known_hash: Option<String>,
    ) -> Result<Self, PlanError> {
        if let Some(provider) = &service.provider {
            return Err(PlanError::UnsupportedProvider {
                service: name.to_string(),
                provider: provider.kind.clone(),
            });
        }
        let replicas = desired_replicas(name, service)?;
        if replicas > 1 && !service.container_name.is_empty() {
            return Err(PlanError::ContainerNameWithScale {
                service: name.to_string(),
                container_name: service.container_name.clone(),
                replicas,
            });
        }
        let mut dependencies = Vec::new();
        for (dependency, config) in &service.depends_on {
            let Some((dependency, _)) = project.services.get_key_value(dependency) else {
                continue;
            };
            let condition =
                parse_condition(&config.condition).ok_or_else(|| PlanError::UnknownCondition {
                    service: name.to_string(),
                    dependency: dependency.clone(),
                    condition: config.condition.clone(),
                })?;
            dependencies.push((dependency.as_str(), condition, config.restart));
        }
        let mut namespace_parents = Vec::new();
        for mode in [&service.network_mode, &service.ipc, &service.pid] {
            if let Some(parent) = mode.strip_prefix("service:") {
                namespace_parents.push(parent);
            }
        }
        for source in &service.volumes_from {
            if !source.starts_with("container:") {
                namespace_parents.push(source.split(':').next().unwrap_or(source));
            }
        }
        namespace_parents.retain(|p| project.services.contains_key(*p));
        let image = match observed
            .images
            .get(&image_ref(&project.name, name, service))
        {
            Some(Some(id)) => ImageState::Present(id),
            Some(None) => ImageState::Missing,
            None => ImageState::Unknown,
        };
        Ok(Spec {
            name,
            service,
            replicas,
            hash: known_hash.unwrap_or_else(|| config_hash(service)),
            image,
            one_shot: is_one_shot(service),
            dependencies,
            namespace_parents,
        })
    }
}

/// The fate of containers of one service, before it becomes steps.
#[derive(Debug)]
enum Op {
    /// Stop (when running) and remove.
    Remove {
        name: String,
        running: bool,
        cause: String,
    },
    /// Give a finished replacement its final name.
    Rename {
        from: String,
        to: String,
        cause: String,
    },
    /// Create and start a new container.
    Create {
        number: u32,
        name: String,
        cause: String,
    },
    /// Create the new container under a temporary name, stop and remove the
    /// old one, rename the new one, start it.
    Replace {
        number: u32,
        old: String,
        running: bool,
        temp: String,
        name: String,
        cause: String,
    },
    /// Start an existing container.
    Start { name: String, cause: String },
    /// Stop a running container and start it again.
    Restart { name: String, cause: String },
}

#[derive(Debug, Default)]
struct Decision<'a> {
    ops: Vec<Op>,
    /// Container 1 is new or replaced (its namespace sharers follow).
    first_changed: bool,
    /// Some container is replaced (`restart: true` dependents restart).
    replaces: bool,
    /// Some container is created, so the image is needed.
    creates: bool,
    /// Final names of containers kept as they are and running.
    running: Vec<String>,
    /// Containers kept as they are.
    kept: Vec<&'a ObservedContainer>,
}

/// One container number of a service being decided.
struct Slot<'s> {
    number: u32,
    /// The final name.
    name: String,
    /// A service whose first container this one shares and which changes.
    parent_changed: Option<&'s str>,
}

/// Replaces `old`, now named `old_name`, with a new container under the
/// slot's final name.
fn replace(
    decision: &mut Decision<'_>,
    slot: &Slot<'_>,
    old: &ObservedContainer,
    old_name: &str,
    cause: String,
) {
    decision.replaces = true;
    decision.creates = true;
    decision.first_changed |= slot.number == 1;
    decision.ops.push(Op::Replace {
        number: slot.number,
        old: old_name.to_string(),
        running: is_running(old),
        temp: temporary_name(&old.id, &slot.name),
        name: slot.name.clone(),
        cause,
    });
}

/// Containers of a dependent to stop before a dependency is replaced and
/// start again after it meets its condition.
#[derive(Debug)]
struct Restart {
    names: Vec<String>,
    cause: String,
}

struct Planner<'a> {
    project: &'a Project,
    observed: &'a Observed,
    options: &'a UpOptions,
    graph: &'a Graph,
    specs: BTreeMap<&'a str, Spec<'a>>,
}

fn is_running(container: &ObservedContainer) -> bool {
    matches!(
        container.state,
        ContainerState::Running | ContainerState::Restarting | ContainerState::Paused
    )
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<'a> Planner<'a> {
    fn plan(&self) -> Result<Plan, PlanError> {
        let mut emit = Emitter::default();
        self.plan_resources(&mut emit)?;
        self.plan_orphans(&mut emit);

        let order = self.graph.order();
        let mut decisions: BTreeMap<&str, Decision<'a>> = BTreeMap::new();
        for name in &order {
            if let Some(spec) = self.specs.get(name) {
                let decision = self.decide(spec, &decisions);
                decisions.insert(name, decision);
            }
        }
        let restarts = self.restarts(&order, &decisions);
        for name in &order {
            if let (Some(spec), Some(decision)) = (self.specs.get(name), decisions.get(name)) {
                self.emit_service(&mut emit, spec, decision, &restarts);
            }
        }
        if self.options.wait {
            self.emit_final_waits(&mut emit, &order, &decisions);
        }
        Ok(emit.builder.finish())
    }

    /// Missing project networks and volumes are created; a missing external
    /// one is an error. Only when the observer listed them.
    fn plan_resources(&self, emit: &mut Emitter<'a>) -> Result<(), PlanError> {
        if let Some(networks) = &self.observed.networks {
            for (key, config) in &self.project.networks {
                let name = engine_name(&self.project.name, key, &config.name, config.external);
                let found = networks
                    .iter()
                    .any(|n| n.name == name || (!config.external && n.key == *key));
                if found {
                    continue;
                }
                if config.external {
                    return Err(PlanError::MissingExternalNetwork {
                        network: key.clone(),
                        name,
                    });
                }
                let step = emit.builder.push(
                    Action::CreateNetwork {
                        network: key.clone(),
                    },
                    "missing",
                    [],
                );
                emit.networks.insert(key.as_str(), step);
            }
        }
        if let Some(volumes) = &self.observed.volumes {
            for (key, config) in &self.project.volumes {
                let name = engine_name(&self.project.name, key, &config.name, config.external);
                let found = volumes
                    .iter()
                    .any(|v| v.name == name || (!config.external && v.key == *key));
                if found {
                    continue;
                }
                if config.external {
                    return Err(PlanError::MissingExternalVolume {
                        volume: key.clone(),
                        name,
                    });
                }
                let step = emit.builder.push(
                    Action::CreateVolume {
                        volume: key.clone(),
                    },
                    "missing",
                    [],
                );
                emit.volumes.insert(key.as_str(), step);
            }
        }
        Ok(())
    }

    /// Containers of services no longer in the project, removed only when
    /// pruning; one-off containers are never touched.
    fn plan_orphans(&self, emit: &mut Emitter<'a>) {
        if !self.options.prune_orphans {
            return;
        }
        let mut orphans: Vec<&ObservedContainer> = self
            .observed
            .containers
            .iter()
            .filter(|c| !c.oneoff && !self.project.services.contains_key(&c.service))
            .collect();
        orphans
            .sort_by(|a, b| (&a.service, a.number, &a.name).cmp(&(&b.service, b.number, &b.name)));
        for container in orphans {
            let cause = format!("service {} left the project", container.service);
            if is_running(container) {
                emit.builder.push(
                    Action::StopContainer {
                        name: container.name.clone(),
                    },
                    cause.clone(),
                    [],
                );
            }
            let step = emit.builder.push(
                Action::RemoveContainer {
                    name: container.name.clone(),
                    volumes: false,
                },
                cause,
                [],
            );
            emit.orphans.push(step);
        }
    }

    /// Decides the fate of every container number of one service.
    fn decide(&self, spec: &Spec<'a>, decided: &BTreeMap<&str, Decision<'a>>) -> Decision<'a> {
        let mut decision = Decision::default();
        if self.options.paused_updates.contains(spec.name) {
            decision.kept = self
                .observed
                .containers
                .iter()
                .filter(|c| !c.oneoff && c.service == spec.name)
                .collect();
            return decision;
        }
        let mut slots: BTreeMap<u32, Vec<&'a ObservedContainer>> = BTreeMap::new();
        for container in &self.observed.containers {
            if !container.oneoff && container.service == spec.name {
                slots.entry(container.number).or_default().push(container);
            }
        }
        for candidates in slots.values_mut() {
            candidates.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let occupied = count(slots.len());
        let parent_changed = spec
            .namespace_parents
            .iter()
            .copied()
            .find(|p| decided.get(p).is_some_and(|d| d.first_changed));
        for number in 1..=spec.replicas {
            let name = container_name(&self.project.name, spec.name, spec.service, number);
            match slots.remove(&number) {
                None => {
                    let cause = if occupied > 0 && occupied < spec.replicas {
                        format!("scale {occupied} → {}", spec.replicas)
                    } else {
                        "missing".to_string()
                    };
                    decision.creates = true;
                    decision.first_changed |= number == 1;
                    decision.ops.push(Op::Create {
                        number,
                        name,
                        cause,
                    });
                }
                Some(candidates) => {
                    let slot = Slot {
                        number,
                        name,
                        parent_changed,
                    };
                    self.decide_slot(spec, &slot, candidates, &mut decision);
                }
            }
        }
        // Highest numbers go first, so a scale-down never leaves a gap.
        for (number, candidates) in slots.into_iter().rev() {
            let cause = if occupied > spec.replicas {
                format!("scale {occupied} → {}", spec.replicas)
            } else {
                format!("number {number} is beyond scale {}", spec.replicas)
            };
            for container in candidates {
                decision.ops.push(Op::Remove {
                    name: container.name.clone(),
                    running: is_running(container),
                    cause: cause.clone(),
                });
            }
        }
        decision
    }

    /// One container number with at least one container claiming it.
    fn decide_slot(
        &self,
        spec: &Spec<'a>,
        slot: &Slot<'_>,
        candidates: Vec<&'a ObservedContainer>,
        decision: &mut Decision<'a>,
    ) {
        let name = slot.name.as_str();
        let (finals, rest): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|c| c.name == name);
        let (temps, strays): (Vec<_>, Vec<_>) = rest
            .into_iter()
            .partition(|c| c.replacement_for() == Some(name));
        let duplicate = format!("duplicate of {name}");
        let remove = |decision: &mut Decision<'a>, c: &ObservedContainer, cause: &str| {
            decision.ops.push(Op::Remove {
                name: c.name.clone(),
                running: is_running(c),
                cause: cause.to_string(),
            });
        };
        if let Some((keeper, others)) = finals.split_first() {
            // The old container survived an interrupted replacement: drop
            // the half-made new one and decide afresh.
            for temp in &temps {
                remove(decision, temp, "leftover of an interrupted replacement");
            }
            for other in others.iter().chain(&strays) {
                remove(decision, other, &duplicate);
            }
            self.keep(spec, slot, keeper, None, decision);
        } else if let Some(best) = self.choose(spec, &temps) {
            // The old container is gone: finish the replacement.
            for other in temps.iter().chain(&strays).filter(|c| c.id != best.id) {
                remove(decision, other, &duplicate);
            }
            let cause = "finish an interrupted replacement";
            decision.ops.push(Op::Rename {
                from: best.name.clone(),
                to: slot.name.clone(),
                cause: cause.to_string(),
            });
            self.keep(spec, slot, best, Some(cause), decision);
        } else if let Some(best) = self.choose(spec, &strays) {
            for other in strays.iter().filter(|c| c.id != best.id) {
                remove(decision, other, &duplicate);
            }
            let cause = self
                .outdated(spec, best, slot.parent_changed)
                .unwrap_or_else(|| "name changed".to_string());
            replace(decision, slot, best, &best.name, cause);
        }
    }

    /// Of several containers claiming one number, the one worth keeping:
    /// current config first, then running, then the lowest name.
    fn choose(
        &self,
        spec: &Spec<'a>,
        candidates: &[&'a ObservedContainer],
    ) -> Option<&'a ObservedContainer> {
        candidates
            .iter()
            .copied()
            .min_by_key(|c| (c.config_hash != spec.hash, !is_running(c), c.name.clone()))
    }

    /// An existing container, now under the slot's final name.
    fn keep(
        &self,
        spec: &Spec<'a>,
        slot: &Slot<'_>,
        container: &'a ObservedContainer,
        start_cause: Option<&str>,
        decision: &mut Decision<'a>,
    ) {
        if let Some(cause) = self.outdated(spec, container, slot.parent_changed) {
            replace(decision, slot, container, &slot.name, cause);
            return;
        }
        let name = &slot.name;
        let start = |decision: &mut Decision<'a>, cause: String| {
            decision.ops.push(Op::Start {
                name: name.clone(),
                cause: start_cause.map_or(cause, str::to_string),
            });
        };
        match container.state {
            ContainerState::Running
                if self.options.restart_unhealthy
                    && container.health == Some(Health::Unhealthy) =>
            {
                decision.ops.push(Op::Restart {
                    name: name.clone(),
                    cause: "unhealthy".to_string(),
                });
            }
            ContainerState::Running | ContainerState::Restarting => {
                decision.running.push(name.clone());
                decision.kept.push(container);
            }
            ContainerState::Paused => start(decision, "paused".to_string()),
            ContainerState::Exited(0) if spec.one_shot => decision.kept.push(container),
            ContainerState::Exited(code) => start(decision, format!("exited ({code})")),
            ContainerState::Created | ContainerState::Dead | ContainerState::Removing => {
                start(decision, "created".to_string());
            }
        }
    }

    /// Why a container no longer matches its service, if it does not.
    fn outdated(
        &self,
        spec: &Spec<'a>,
        container: &ObservedContainer,
        parent_changed: Option<&str>,
    ) -> Option<String> {
        if self.options.force_recreate {
            return Some("forced".to_string());
        }
        // A held service keeps what runs: its config is the one that failed.
        let held = self.options.held.get(spec.name) == Some(&spec.hash);
        if container.config_hash != spec.hash && !held {
            return Some("config changed".to_string());
        }
        if self.options.replace.contains(&container.name) {
            return Some("changed outside stackd".to_string());
        }
        if let ImageState::Present(id) = spec.image {
            if container.image_id != id && !held {
                return Some("image changed".to_string());
            }
        }
        match container.state {
            ContainerState::Dead => return Some("dead".to_string()),
            ContainerState::Removing => return Some("being removed".to_string()),
            _ => {}
        }
        if let Some(cause) = self.network_mismatch(spec, container) {
            return Some(cause);
        }
        parent_changed.map(|parent| format!("{parent} recreated"))
    }

    /// Why the container's networks are not the service's, if they are not:
    /// one it should be on is missing, or the engine's network of that name
    /// is no longer the one it joined. Containers whose networks are not
    /// known, and services with a `network_mode`, are not checked.
    fn network_mismatch(&self, spec: &Spec<'a>, container: &ObservedContainer) -> Option<String> {
        let service = spec.service;
        if container.networks.is_empty()
            || !service.network_mode.is_empty()
            || !service.net.is_empty()
        {
            return None;
        }
        let keys: Vec<&str> = if service.networks.is_empty() {
            self.project
                .networks
                .keys()
                .filter(|k| *k == "default")
                .map(String::as_str)
                .collect()
        } else {
            service.networks.keys().map(String::as_str).collect()
        };
        for key in keys {
            let Some(config) = self.project.networks.get(key) else {
                continue;
            };
            let name = engine_name(&self.project.name, key, &config.name, config.external);
            let Some(joined) = container.networks.get(&name) else {
                return Some(format!("not attached to network {name}"));
            };
            let Some(listed) = &self.observed.networks else {
                continue;
            };
            match listed.iter().find(|n| n.name == name) {
                // About to be created: the container would still point at
                // the old one.
                None if !config.external => {
                    return Some(format!("network {name} was removed"));
                }
                Some(current) if !joined.is_empty() && *joined != current.id => {
                    return Some(format!("network {name} was recreated"));
                }
                _ => {}
            }
        }
        None
    }

    /// Running containers of `restart: true` dependents of replaced services.
    fn restarts(
        &self,
        order: &[&'a str],
        decisions: &BTreeMap<&str, Decision<'a>>,
    ) -> BTreeMap<&'a str, Restart> {
        let mut restarts: BTreeMap<&'a str, Restart> = BTreeMap::new();
        for name in order {
            if !decisions.get(name).is_some_and(|d| d.replaces) {
                continue;
            }
            for dependent in self.restart_dependents(name) {
                let Some(decision) = decisions.get(dependent) else {
                    continue;
                };
                if decision.running.is_empty() || restarts.contains_key(dependent) {
                    continue;
                }
                restarts.insert(
                    dependent,
                    Restart {
                        names: decision.running.clone(),
                        cause: format!("dependency {name} recreated"),
                    },
                );
            }
        }
        restarts
    }

    /// Dependents of `service` that ask to be restarted with it.
    fn restart_dependents(&self, service: &str) -> Vec<&'a str> {
        self.graph
            .dependents(service)
            .filter_map(|d| self.specs.get_key_value(d))
            .filter(|(_, spec)| {
                spec.dependencies
                    .iter()
                    .any(|(dep, _, restart)| *dep == service && *restart)
            })
            .map(|(name, _)| *name)
            .collect()
    }

    /// Turns one service's decision into steps.
    fn emit_service(
        &self,
        emit: &mut Emitter<'a>,
        spec: &Spec<'a>,
        decision: &Decision<'a>,
        restarts: &BTreeMap<&'a str, Restart>,
    ) {
        let restart = restarts.get(spec.name);
        let starts = restart.is_some()
            || decision.ops.iter().any(|op| {
                matches!(
                    op,
                    Op::Create { .. } | Op::Replace { .. } | Op::Start { .. } | Op::Restart { .. }
                )
            });

        let mut start_after = emit.orphans.clone();
        if starts {
            for &(dependency, condition, _) in &spec.dependencies {
                if self.specs.get(dependency).is_some_and(|d| d.replicas == 0) {
                    continue;
                }
                if condition == Condition::ServiceStarted {
                    start_after.extend(emit.service_steps(dependency));
                } else {
                    start_after.push(emit.wait_for(dependency, condition, spec.name));
                }
            }
        }

        // Dependents that restart with this service stop before its old
        // containers do.
        let mut dependents_stopped = Vec::new();
        if decision.replaces {
            for dependent in self.restart_dependents(spec.name) {
                let Some(restart) = restarts.get(dependent) else {
                    continue;
                };
                if !emit.restart_stops.contains_key(dependent) {
                    let mut stops = Vec::new();
                    for name in &restart.names {
                        let step = emit.builder.push(
                            Action::StopContainer { name: name.clone() },
                            restart.cause.clone(),
                            [],
                        );
                        stops.push(step);
                    }
                    emit.all.entry(dependent).or_default().extend(&stops);
                    emit.restart_stops.insert(dependent, stops);
                }
                dependents_stopped.extend(emit.restart_stops[dependent].iter().copied());
            }
        }

        let mut create_after = Vec::new();
        if let Some(cause) = self.image_cause(spec, decision) {
            let step = emit.builder.push(
                Action::EnsureImage {
                    service: spec.name.to_string(),
                },
                cause,
                [],
            );
            emit.record(spec.name, step);
            create_after.push(step);
        }
        create_after.extend(
            spec.service
                .networks
                .keys()
                .filter_map(|key| emit.networks.get(key.as_str()).copied()),
        );
        create_after.extend(
            spec.service
                .volumes
                .iter()
                .filter(|v| v.kind == "volume")
                .filter_map(|v| emit.volumes.get(v.source.as_str()).copied()),
        );
        for (dependency, _, _) in &spec.dependencies {
            create_after.extend(emit.exists.get(dependency).into_iter().flatten().copied());
        }

        let rollout = Rollout::of(spec.service);
        let mut rolling = Vec::new();
        for op in &decision.ops {
            match op {
                Op::Replace {
                    number,
                    old,
                    running,
                    temp,
                    name,
                    cause,
                } if rollout.is_some() => rolling.push(Replacement {
                    number: *number,
                    old,
                    running: *running,
                    temp,
                    name,
                    cause,
                }),
                Op::Remove {
                    name,
                    running,
                    cause,
                } => {
                    if *running {
                        let step = emit.builder.push(
                            Action::StopContainer { name: name.clone() },
                            cause.clone(),
                            [],
                        );
                        emit.record(spec.name, step);
                    }
                    let step = emit.builder.push(
                        Action::RemoveContainer {
                            name: name.clone(),
                            volumes: false,
                        },
                        cause.clone(),
                        [],
                    );
                    emit.record(spec.name, step);
                }
                Op::Rename { from, to, cause } => {
                    let step = emit.builder.push(
                        Action::RenameContainer {
                            from: from.clone(),
                            to: to.clone(),
                        },
                        cause.clone(),
                        [],
                    );
                    emit.record(spec.name, step);
                    emit.exists.entry(spec.name).or_default().push(step);
                }
                Op::Create {
                    number,
                    name,
                    cause,
                } => {
                    let created = emit.builder.push(
                        Action::CreateContainer {
                            service: spec.name.to_string(),
                            number: *number,
                            name: name.clone(),
                        },
                        cause.clone(),
                        create_after.iter().copied(),
                    );
                    emit.record(spec.name, created);
                    emit.exists.entry(spec.name).or_default().push(created);
                    let started = emit.builder.push(
                        Action::StartContainer { name: name.clone() },
                        cause.clone(),
                        start_after.iter().copied(),
                    );
                    emit.record(spec.name, started);
                }
                Op::Replace {
                    number,
                    old,
                    running,
                    temp,
                    name,
                    cause,
                } => {
                    let created = emit.builder.push(
                        Action::CreateContainer {
                            service: spec.name.to_string(),
                            number: *number,
                            name: temp.clone(),
                        },
                        cause.clone(),
                        create_after.iter().copied(),
                    );
                    emit.record(spec.name, created);
                    let mut before_stop = dependents_stopped.clone();
                    before_stop.push(created);
                    if *running {
                        let step = emit.builder.push(
                            Action::StopContainer { name: old.clone() },
                            cause.clone(),
                            before_stop.iter().copied(),
                        );
                        emit.record(spec.name, step);
                    }
                    let removed = emit.builder.push(
                        Action::RemoveContainer {
                            name: old.clone(),
                            volumes: false,
                        },
                        cause.clone(),
                        before_stop,
                    );
                    emit.record(spec.name, removed);
                    let renamed = emit.builder.push(
                        Action::RenameContainer {
                            from: temp.clone(),
                            to: name.clone(),
                        },
                        cause.clone(),
                        [removed],
                    );
                    emit.record(spec.name, renamed);
                    emit.exists.entry(spec.name).or_default().push(renamed);
                    let started = emit.builder.push(
                        Action::StartContainer { name: name.clone() },
                        cause.clone(),
                        start_after.iter().copied(),
                    );
                    emit.record(spec.name, started);
                }
                Op::Start { name, cause } => {
                    let step = emit.builder.push(
                        Action::StartContainer { name: name.clone() },
                        cause.clone(),
                        start_after.iter().copied(),
                    );
                    emit.record(spec.name, step);
                }
                Op::Restart { name, cause } => {
                    let stopped = emit.builder.push(
                        Action::StopContainer { name: name.clone() },
                        cause.clone(),
                        [],
                    );
                    emit.record(spec.name, stopped);
                    let step = emit.builder.push(
                        Action::StartContainer { name: name.clone() },
                        cause.clone(),
                        start_after.iter().copied().chain([stopped]),
                    );
                    emit.record(spec.name, step);
                }
            }
        }
        if let Some(rollout) = &rollout {
            let condition = if has_healthcheck(spec.service) {
                Condition::ServiceHealthy
            } else {
                Condition::ServiceStarted
            };
            let hooks = rolling::Hooks {
                create_after: &create_after,
                start_after: &start_after,
                stop_after: &dependents_stopped,
            };
            let emitted = rolling::emit(
                &mut emit.builder,
                spec.name,
                rollout,
                condition,
                &rolling,
                &hooks,
            );
            for step in emitted.steps {
                emit.record(spec.name, step);
            }
            emit.exists
                .entry(spec.name)
                .or_default()
                .extend(emitted.renamed);
        }
        if let Some(restart) = restart {
            for name in &restart.names {
                let step = emit.builder.push(
                    Action::StartContainer { name: name.clone() },
                    restart.cause.clone(),
                    start_after.iter().copied(),
                );
                emit.record(spec.name, step);
            }
        }
    }

    /// Why the service's image must be made available, if it must.
    fn image_cause(&self, spec: &Spec<'a>, decision: &Decision<'a>) -> Option<String> {
        match spec.image {
            ImageState::Missing => Some("missing".to_string()),
            ImageState::Unknown if decision.creates => Some("not checked".to_string()),
            ImageState::Present(_)
                if decision.creates
                    && matches!(spec.service.pull_policy.as_str(), "always" | "build") =>
            {
                Some(format!("pull_policy {}", spec.service.pull_policy))
            }
            _ => None,
        }
    }

    /// `up --wait`: a wait for every service that has containers, unless
    /// nothing was done to it and it already meets the condition.
    fn emit_final_waits(
        &self,
        emit: &mut Emitter<'a>,
        order: &[&'a str],
        decisions: &BTreeMap<&str, Decision<'a>>,
    ) {
        for name in order {
            let (Some(spec), Some(decision)) = (self.specs.get(name), decisions.get(name)) else {
                continue;
            };
            if spec.replicas == 0 {
                continue;
            }
            let condition = self.wait_condition(spec, decision);
            if emit.waits.contains_key(&(*name, condition)) {
                continue;
            }
            let untouched = emit.service_steps(name).is_empty();
            let met = decision.kept.iter().all(|c| {
                meets(c, condition) || (spec.one_shot && c.state == ContainerState::Exited(0))
            });
            if untouched && met && count(decision.kept.len()) == spec.replicas {
                continue;
            }
            let after = emit.service_steps(name);
            emit.builder.push(
                Action::WaitFor {
                    service: (*name).to_string(),
                    condition,
                },
                "up --wait",
                after,
            );
        }
    }

    /// What `up --wait` waits for: completion for services others wait on
    /// that way (or it would never end), health where there is a
    /// healthcheck, else running.
    fn wait_condition(&self, spec: &Spec<'a>, decision: &Decision<'a>) -> Condition {
        let awaited_to_complete = self.specs.values().any(|other| {
            other.dependencies.iter().any(|(dep, condition, _)| {
                *dep == spec.name && *condition == Condition::ServiceCompletedSuccessfully
            })
        });
        if awaited_to_complete {
            Condition::ServiceCompletedSuccessfully
        } else if has_healthcheck(spec.service) || decision.kept.iter().any(|c| c.health.is_some())
        {
            Condition::ServiceHealthy
        } else {
            Condition::ServiceStarted
        }
    }
}

fn meets(container: &ObservedContainer, condition: Condition) -> bool {
    match condition {
        Condition::ServiceStarted => container.state == ContainerState::Running,
        Condition::ServiceHealthy => {
            container.state == ContainerState::Running && container.health == Some(Health::Healthy)
        }
        Condition::ServiceCompletedSuccessfully => container.state == ContainerState::Exited(0),
    }
}

/// A network's or volume's engine name: as set, else `<project>_<key>`
/// (or the key itself for an external one).
pub(crate) fn engine_name(project: &str, key: &str, name: &str, external: bool) -> String {
    if !name.is_empty() {
        name.to_string()
    } else if external {
        key.to_string()
    } else {
        format!("{project}_{key}")
    }
}

/// The engine names of `project`'s external networks and of its external
/// volumes: they carry no project label, so backends look them up by name.
pub(crate) fn external_names(project: &Project) -> (Vec<String>, Vec<String>) {
    let networks = project
        .networks
        .iter()
        .filter(|(_, n)| n.external)
        .map(|(key, n)| engine_name(&project.name, key, &n.name, true))
        .collect();
    let volumes = project
        .volumes
        .iter()
        .filter(|(_, v)| v.external)
        .map(|(key, v)| engine_name(&project.name, key, &v.name, true))
        .collect();
    (networks, volumes)
}

/// Steps emitted so far, indexed by what later steps wait on.
#[derive(Default)]
struct Emitter<'a> {
    builder: Builder,
    networks: BTreeMap<&'a str, usize>,
    volumes: BTreeMap<&'a str, usize>,
    orphans: Vec<usize>,
    /// Every step on a service's containers (and its image).
    all: BTreeMap<&'a str, Vec<usize>>,
    /// Steps after which a service's containers exist under their final names.
    exists: BTreeMap<&'a str, Vec<usize>>,
    waits: BTreeMap<(&'a str, Condition), usize>,
    restart_stops: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Emitter<'a> {
    fn record(&mut self, service: &'a str, step: usize) {
        self.all.entry(service).or_default().push(step);
    }

    fn service_steps(&self, service: &str) -> Vec<usize> {
        self.all.get(service).cloned().unwrap_or_default()
    }

    /// The wait on `dependency` meeting `condition`, shared by dependents.
    fn wait_for(&mut self, dependency: &'a str, condition: Condition, dependent: &str) -> usize {
        if let Some(&step) = self.waits.get(&(dependency, condition)) {
            if let Some(cause) = self.builder.cause_mut(step) {
                cause.push_str(", ");
                cause.push_str(dependent);
            }
            return step;
        }
        let after = self.service_steps(dependency);
        let step = self.builder.push(
            Action::WaitFor {
                service: dependency.to_string(),
                condition,
            },
            format!("required by {dependent}"),
            after,
        );
        self.waits.insert((dependency, condition), step);
        step
    }
}
