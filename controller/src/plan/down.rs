//! `down`: the steps that take a project off the engine.
//!
//! Decisions: every container labelled with the project goes, orphans and
//! one-off containers included (what `docker compose down --remove-orphans`
//! does; leaving them would keep the project's networks in use). Dependents
//! stop before their dependencies when the project is known. Networks go
//! after the containers, external ones never. Named volumes go only with
//! `remove_volumes`, external ones never; with it, volumes labelled with
//! the project that the file no longer declares go too (they are the
//! project's, and `down -v` is the one place a named volume is removed).
//! Containers' anonymous volumes go with their containers under the same
//! flag, as `docker compose down -v` removes them.
use std::collections::BTreeMap;

use super::builder::Builder;
use super::graph::Graph;
use super::up::engine_name;
use super::{Action, ContainerState, Observed, ObservedContainer, Plan};
use crate::model::Project;

const CAUSE: &str = "down";

/// The steps that remove `project_name`'s containers and networks (and
/// volumes with `remove_volumes`). `project` is the loaded project when
/// there is one (it orders the stops and names networks and volumes by
/// key); without it, everything observed goes, by engine name.
pub fn plan_down(
    project_name: &str,
    project: Option<&Project>,
    observed: &Observed,
    remove_volumes: bool,
) -> Plan {
    let mut builder = Builder::default();
    // A model that cannot be ordered is still taken down, just unordered.
    let graph = project.and_then(|p| Graph::new(p).ok());
    let order: Vec<&str> = graph
        .as_ref()
        .map(|g| g.order().into_iter().rev().collect())
        .unwrap_or_default();

    let mut by_service: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
    let mut others: Vec<&ObservedContainer> = Vec::new();
    for container in &observed.containers {
        if !container.oneoff && order.contains(&container.service.as_str()) {
            by_service
                .entry(container.service.as_str())
                .or_default()
                .push(container);
        } else {
            others.push(container);
        }
    }
    others.sort_by(|a, b| (&a.service, a.number, &a.name).cmp(&(&b.service, b.number, &b.name)));

    let mut removed = Vec::new();
    let mut stopped: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for container in others {
        let (_, remove) = take_down(&mut builder, container, Vec::new(), remove_volumes);
        removed.push(remove);
    }
    for service in &order {
        let mut containers = by_service.remove(service).unwrap_or_default();
        containers.sort_by(|a, b| (a.number, &a.name).cmp(&(b.number, &b.name)));
        let after: Vec<usize> = graph
            .iter()
            .flat_map(|g| g.dependents(service))
            .flat_map(|d| stopped.get(d).into_iter().flatten().copied())
            .collect();
        let mut service_stops = Vec::new();
        for container in containers {
            let (stop, remove) = take_down(&mut builder, container, after.clone(), remove_volumes);
            service_stops.push(stop.unwrap_or(remove));
            removed.push(remove);
        }
        stopped.insert(service, service_stops);
    }

    let networks = observed.networks.as_deref();
    let mut network_targets = Vec::new();
    if let Some(project) = project {
        for (key, config) in &project.networks {
            let name = engine_name(project_name, key, &config.name, config.external);
            let present =
                networks.is_none_or(|list| list.iter().any(|n| n.key == *key || n.name == name));
            if !config.external && present {
                network_targets.push(key.clone());
            }
        }
    }
    for network in networks.into_iter().flatten() {
        let known = project.is_some_and(|p| {
            p.networks.iter().any(|(key, config)| {
                network.key == *key
                    || network.name == engine_name(project_name, key, &config.name, config.external)
            })
        });
        if !known {
            network_targets.push(network.name.clone());
        }
    }
    for network in network_targets {
        builder.push(
            Action::RemoveNetwork { network },
            CAUSE,
            removed.iter().copied(),
        );
    }

    if remove_volumes {
        let volumes = observed.volumes.as_deref();
        let mut volume_targets = Vec::new();
        if let Some(project) = project {
            for (key, config) in &project.volumes {
                let name = engine_name(project_name, key, &config.name, config.external);
                let present =
                    volumes.is_none_or(|list| list.iter().any(|v| v.key == *key || v.name == name));
                if !config.external && present {
                    volume_targets.push(key.clone());
                }
            }
        }
        for volume in volumes.into_iter().flatten() {
            let known = project.is_some_and(|p| {
                p.volumes.iter().any(|(key, config)| {
                    volume.key == *key
                        || volume.name
                            == engine_name(project_name, key, &config.name, config.external)
                })
            });
            if !known {
                volume_targets.push(volume.name.clone());
            }
        }
        for volume in volume_targets {
            builder.push(
                Action::RemoveVolume { volume },
                CAUSE,
                removed.iter().copied(),
            );
        }
    }
    builder.finish()
}

/// Stop (when running) and remove one container; the stop index, if any,
/// and the remove index.
fn take_down(
    builder: &mut Builder,
    container: &ObservedContainer,
    after: Vec<usize>,
    volumes: bool,
) -> (Option<usize>, usize) {
    let running = matches!(
        container.state,
        ContainerState::Running | ContainerState::Restarting | ContainerState::Paused
    );
    let stop = running.then(|| {
        builder.push(
            Action::StopContainer {
                name: container.name.clone(),
            },
            CAUSE,
            after.iter().copied(),
        )
    });
    let remove = builder.push(
        Action::RemoveContainer {
            name: container.name.clone(),
            volumes,
        },
        CAUSE,
        after,
    );
    (stop, remove)
}
