//! Container state as a list response shows it (`State` plus the `Status`
//! text, since API 1.41 lists no health field), and whether a service's
//! replicas meet a wait condition. Shared by the real and the fake backend.
use crate::plan::{Condition, ContainerState, Health, ObservedContainer};

use super::Error;

/// Reads the lifecycle state and health from a list entry: `State`
/// (`running`, `exited`, ...) and `Status` (`Up 3 seconds (healthy)`,
/// `Exited (137) 2 seconds ago`, `Up 1 second (health: starting)`).
pub fn parse_status(state: &str, status: &str) -> (ContainerState, Option<Health>) {
    let parsed = match state {
        "created" => ContainerState::Created,
        "running" => ContainerState::Running,
        "paused" => ContainerState::Paused,
        "restarting" => ContainerState::Restarting,
        "removing" => ContainerState::Removing,
        "dead" => ContainerState::Dead,
        "exited" => ContainerState::Exited(exit_code(status).unwrap_or(-1)),
        // An engine newer than the API it speaks may add states; the text
        // still tells whether the container is up.
        _ if status.starts_with("Up") => ContainerState::Running,
        _ => ContainerState::Created,
    };
    let health = if status.ends_with("(healthy)") {
        Some(Health::Healthy)
    } else if status.ends_with("(unhealthy)") {
        Some(Health::Unhealthy)
    } else if status.ends_with("(health: starting)") {
        Some(Health::Starting)
    } else {
        None
    };
    (parsed, health)
}

/// The status in `Exited (CODE) ...`.
fn exit_code(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    let (code, _) = rest.split_once(')')?;
    code.trim().parse().ok()
}

/// Where a wait stands after one look at the replicas.
#[derive(Debug)]
pub enum Progress {
    /// Every replica meets the condition.
    Met,
    /// Not yet; look again later.
    Pending,
    /// A replica can no longer meet it.
    Failed(Error),
}

/// Whether the replicas of `service` (one-off containers left out by the
/// caller) meet `condition`. A failure anywhere wins over a replica still
/// pending, so a wait fails as soon as it cannot succeed. `declares_health`
/// says whether the model gives the service a healthcheck: without one, a
/// running replica that shows no health never will.
pub fn evaluate(
    service: &str,
    condition: Condition,
    replicas: &[&ObservedContainer],
    declares_health: bool,
) -> Progress {
    if replicas.is_empty() {
        return Progress::Failed(Error::NoContainers {
            service: service.to_owned(),
        });
    }
    let mut pending = false;
    for replica in replicas {
        match check(service, condition, replica, declares_health) {
            Progress::Met => {}
            Progress::Pending => pending = true,
            failed @ Progress::Failed(_) => return failed,
        }
    }
    if pending {
        Progress::Pending
    } else {
        Progress::Met
    }
}

fn check(
    service: &str,
    condition: Condition,
    replica: &ObservedContainer,
    declares_health: bool,
) -> Progress {
    let exited_with = |code: i64| {
        Progress::Failed(Error::ExitedWithError {
            service: service.to_owned(),
            container: replica.name.clone(),
            code,
        })
    };
    match (condition, replica.state) {
        (_, ContainerState::Exited(code)) if code != 0 => exited_with(code),
        (_, ContainerState::Dead) => exited_with(-1),
        (Condition::ServiceStarted, ContainerState::Running | ContainerState::Paused)
        | (Condition::ServiceStarted, ContainerState::Exited(0)) => Progress::Met,
        (Condition::ServiceCompletedSuccessfully, ContainerState::Exited(0)) => Progress::Met,
        (Condition::ServiceHealthy, ContainerState::Exited(_)) => {
            Progress::Failed(Error::ExitedBeforeHealthy {
                service: service.to_owned(),
                container: replica.name.clone(),
            })
        }
        (Condition::ServiceHealthy, ContainerState::Running) => match replica.health {
            Some(Health::Healthy) => Progress::Met,
            Some(Health::Unhealthy) => Progress::Failed(Error::Unhealthy {
                service: service.to_owned(),
                container: replica.name.clone(),
            }),
            Some(Health::Starting) => Progress::Pending,
            None if declares_health => Progress::Pending,
            None => Progress::Failed(Error::NoHealthcheck {
                service: service.to_owned(),
                container: replica.name.clone(),
            }),
        },
        _ => Progress::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(state: ContainerState, health: Option<Health>) -> ObservedContainer {
        ObservedContainer {
            id: "0123456789abcdef".into(),
            name: "p-db-1".into(),
            service: "db".into(),
            number: 1,
            oneoff: false,
            config_hash: "h".into(),
            image: "busybox".into(),
            image_id: "sha256:1".into(),
            state,
            health,
            networks: Default::default(),
        }
    }

    #[test]
    fn status_text_gives_exit_codes_and_health() {
        assert_eq!(
            parse_status("exited", "Exited (137) 2 seconds ago"),
            (ContainerState::Exited(137), None)
        );
        assert_eq!(
            parse_status("running", "Up 3 seconds (healthy)"),
            (ContainerState::Running, Some(Health::Healthy))
        );
        assert_eq!(
            parse_status("running", "Up Less than a second (health: starting)"),
            (ContainerState::Running, Some(Health::Starting))
        );
        assert_eq!(
            parse_status("running", "Up 2 minutes (unhealthy)"),
            (ContainerState::Running, Some(Health::Unhealthy))
        );
        assert_eq!(
            parse_status("created", "Created"),
            (ContainerState::Created, None)
        );
        assert_eq!(
            parse_status("paused", "Up 5 seconds (Paused)"),
            (ContainerState::Paused, None)
        );
    }

    #[test]
    fn healthy_waits_while_starting_and_fails_when_unhealthy() {
        let starting = replica(ContainerState::Running, Some(Health::Starting));
        let healthy = replica(ContainerState::Running, Some(Health::Healthy));
        let unhealthy = replica(ContainerState::Running, Some(Health::Unhealthy));
        let healthy_check =
            |r: &[&ObservedContainer]| evaluate("db", Condition::ServiceHealthy, r, true);
        assert!(matches!(healthy_check(&[&starting]), Progress::Pending));
        assert!(matches!(healthy_check(&[&healthy]), Progress::Met));
        match healthy_check(&[&healthy, &starting, &unhealthy]) {
            Progress::Failed(err) => {
                assert_eq!(err.to_string(), "service db: container p-db-1 is unhealthy")
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn completion_needs_exit_zero_and_fails_on_any_other_status() {
        let running = replica(ContainerState::Running, None);
        let done = replica(ContainerState::Exited(0), None);
        let failed = replica(ContainerState::Exited(3), None);
        let completed = |r: &ObservedContainer| {
            evaluate("db", Condition::ServiceCompletedSuccessfully, &[r], false)
        };
        assert!(matches!(completed(&running), Progress::Pending));
        assert!(matches!(completed(&done), Progress::Met));
        assert!(matches!(
            completed(&failed),
            Progress::Failed(Error::ExitedWithError { code: 3, .. })
        ));
    }

    #[test]
    fn started_accepts_a_job_that_already_finished() {
        let created = replica(ContainerState::Created, None);
        let done = replica(ContainerState::Exited(0), None);
        let started =
            |r: &ObservedContainer| evaluate("db", Condition::ServiceStarted, &[r], false);
        assert!(matches!(started(&created), Progress::Pending));
        assert!(matches!(started(&done), Progress::Met));
    }

    #[test]
    fn a_running_replica_without_a_healthcheck_cannot_become_healthy() {
        let running = replica(ContainerState::Running, None);
        assert!(matches!(
            evaluate("db", Condition::ServiceHealthy, &[&running], false),
            Progress::Failed(Error::NoHealthcheck { .. })
        ));
        assert!(matches!(
            evaluate("db", Condition::ServiceHealthy, &[&running], true),
            Progress::Pending
        ));
    }

    #[test]
    fn waiting_on_a_service_without_containers_fails() {
        assert!(matches!(
            evaluate("db", Condition::ServiceStarted, &[], false),
            Progress::Failed(Error::NoContainers { .. })
        ));
    }
}
