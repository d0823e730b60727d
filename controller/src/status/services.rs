//! Per-service replica counts from the desired project and an observed
//! snapshot: what the `services` map of a status holds.
use std::collections::{BTreeMap, BTreeSet};

use super::ServiceStatus;
use crate::model::{Project, ServiceConfig};
use crate::plan::{
    desired_replicas, has_healthcheck, image_ref, is_one_shot, ContainerState, Health, Observed,
    ObservedContainer,
};

/// Desired and ready replicas of each service of `project`. A replica is
/// ready when one of its containers (one-off `run` containers aside) is
/// running and, if the service has a healthcheck, healthy; a one-shot
/// service's container that exited 0 is ready too. Replicas are counted by
/// container number, so a replacement that exists next to the container
/// it replaces does not count twice. Containers of services the project
/// no longer has are not counted.
pub fn service_statuses(project: &Project, observed: &Observed) -> BTreeMap<String, ServiceStatus> {
    project
        .services
        .iter()
        .map(|(name, service)| {
            let ready_numbers: BTreeSet<u32> = observed
                .containers
                .iter()
                .filter(|c| c.service == *name && !c.oneoff && is_ready(service, c))
                .map(|c| c.number)
                .collect();
            let status = ServiceStatus {
                // The loader rejects negative replica counts; were one to
                // get through, nothing is desired.
                desired: desired_replicas(name, service).unwrap_or(0),
                ready: u32::try_from(ready_numbers.len()).unwrap_or(u32::MAX),
                image: image_ref(&project.name, name, service),
            };
            (name.clone(), status)
        })
        .collect()
}

fn is_ready(service: &ServiceConfig, container: &ObservedContainer) -> bool {
    match container.state {
        ContainerState::Running => {
            !has_healthcheck(service) || container.health == Some(Health::Healthy)
        }
        ContainerState::Exited(0) => is_one_shot(service),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{DeployConfig, HealthCheckConfig};

    fn container(service: &str, number: u32, state: ContainerState) -> ObservedContainer {
        ObservedContainer {
            id: format!("{service}{number:0>12}"),
            name: format!("demo-{service}-{number}"),
            service: service.into(),
            number,
            oneoff: false,
            config_hash: "hash".into(),
            image: "busybox".into(),
            image_id: "sha256:1".into(),
            state,
            health: None,
            networks: Default::default(),
        }
    }

    fn healthy(mut c: ObservedContainer, health: Health) -> ObservedContainer {
        c.health = Some(health);
        c
    }

    fn service(image: &str, restart: &str) -> ServiceConfig {
        ServiceConfig {
            image: image.into(),
            restart: restart.into(),
            ..ServiceConfig::default()
        }
    }

    fn project(services: Vec<(&str, ServiceConfig)>) -> Project {
        Project {
            name: "demo".into(),
            services: services
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect(),
            ..Project::default()
        }
    }

    fn observed(containers: Vec<ObservedContainer>) -> Observed {
        Observed {
            containers,
            ..Observed::default()
        }
    }

    fn counts(statuses: &BTreeMap<String, ServiceStatus>, name: &str) -> (u32, u32) {
        let s = &statuses[name];
        (s.ready, s.desired)
    }

    #[test]
    fn running_containers_count_up_to_the_replicas_they_fill() {
        let mut web = service("busybox", "always");
        web.deploy = Some(DeployConfig {
            replicas: Some(3),
            ..DeployConfig::default()
        });
        let project = project(vec![("web", web)]);
        let observed = observed(vec![
            container("web", 1, ContainerState::Running),
            container("web", 2, ContainerState::Running),
            container("web", 3, ContainerState::Exited(137)),
        ]);
        let statuses = service_statuses(&project, &observed);
        assert_eq!(counts(&statuses, "web"), (2, 3));
        assert_eq!(statuses["web"].image, "busybox");
    }

    #[test]
    fn with_a_healthcheck_only_healthy_containers_are_ready() {
        let mut web = service("busybox", "always");
        web.scale = Some(3);
        web.healthcheck = Some(HealthCheckConfig {
            test: vec!["CMD".into(), "true".into()],
            ..HealthCheckConfig::default()
        });
        let project = project(vec![("web", web)]);
        let observed = observed(vec![
            healthy(
                container("web", 1, ContainerState::Running),
                Health::Healthy,
            ),
            healthy(
                container("web", 2, ContainerState::Running),
                Health::Starting,
            ),
            healthy(
                container("web", 3, ContainerState::Running),
                Health::Unhealthy,
            ),
        ]);
        assert_eq!(
            counts(&service_statuses(&project, &observed), "web"),
            (1, 3)
        );
    }

    #[test]
    fn a_disabled_healthcheck_is_not_waited_for() {
        let mut web = service("busybox", "always");
        web.healthcheck = Some(HealthCheckConfig {
            disable: true,
            ..HealthCheckConfig::default()
        });
        let project = project(vec![("web", web)]);
        let observed = observed(vec![container("web", 1, ContainerState::Running)]);
        assert_eq!(
            counts(&service_statuses(&project, &observed), "web"),
            (1, 1)
        );
    }

    #[test]
    fn a_one_shot_job_that_exited_0_is_ready_and_one_that_failed_is_not() {
        let project = project(vec![
            ("migrate", service("busybox", "no")),
            ("seed", service("busybox", "")),
            ("worker", service("busybox", "unless-stopped")),
        ]);
        let observed = observed(vec![
            container("migrate", 1, ContainerState::Exited(0)),
            container("seed", 1, ContainerState::Exited(1)),
            container("worker", 1, ContainerState::Exited(0)),
        ]);
        let statuses = service_statuses(&project, &observed);
        assert_eq!(counts(&statuses, "migrate"), (1, 1));
        assert_eq!(counts(&statuses, "seed"), (0, 1));
        assert_eq!(
            counts(&statuses, "worker"),
            (0, 1),
            "a service the engine restarts is not done when it exits"
        );
    }

    #[test]
    fn one_off_containers_and_other_states_do_not_count() {
        let project = project(vec![("web", service("busybox", "always"))]);
        let mut run = container("web", 1, ContainerState::Running);
        run.oneoff = true;
        let observed = observed(vec![
            run,
            container("web", 2, ContainerState::Created),
            container("web", 3, ContainerState::Paused),
            container("web", 4, ContainerState::Restarting),
        ]);
        assert_eq!(
            counts(&service_statuses(&project, &observed), "web"),
            (0, 1)
        );
    }

    #[test]
    fn a_replacement_next_to_the_container_it_replaces_counts_once() {
        let project = project(vec![("web", service("busybox", "always"))]);
        let old = container("web", 1, ContainerState::Running);
        let mut new = container("web", 1, ContainerState::Running);
        new.name = format!("{}_demo-web-1", &old.id[..12]);
        new.id = "f".repeat(64);
        let observed = observed(vec![old, new]);
        assert_eq!(
            counts(&service_statuses(&project, &observed), "web"),
            (1, 1)
        );
    }

    #[test]
    fn every_service_is_listed_even_with_nothing_running() {
        let mut idle = service("", "always");
        idle.scale = Some(0);
        let project = project(vec![("built", service("", "always")), ("idle", idle)]);
        let observed = observed(vec![container("gone", 1, ContainerState::Running)]);
        let statuses = service_statuses(&project, &observed);
        assert_eq!(statuses.keys().collect::<Vec<_>>(), ["built", "idle"]);
        assert_eq!(counts(&statuses, "built"), (0, 1));
        assert_eq!(
            statuses["built"].image, "demo-built",
            "built images get the project tag"
        );
        assert_eq!(counts(&statuses, "idle"), (0, 0));
    }
}
