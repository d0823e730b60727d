//! Waiting on one container ([`Action::WaitContainer`]): a rolling update's
//! new container must come up (healthy, when its service has a
//! healthcheck) and keep that up for the update's `monitor` period. The
//! judgement ([`Watch`]) is shared by the real and the fake backend; the
//! real one samples the container with an inspect call (API 1.41 reports
//! `State.Health` and `RestartCount` there).
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::InspectContainerOptions;
use tokio::time::Instant;

use super::engine::{declares_health, DockerBackend};
use super::status::Progress;
use super::{action_error, Error};
use crate::model::Project;
use crate::plan::{Action, Condition, ContainerState, Health};

/// One look at a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Lifecycle state.
    pub(crate) state: ContainerState,
    /// Health, when it has a healthcheck.
    pub(crate) health: Option<Health>,
    /// How often the engine restarted it (its restart policy).
    pub(crate) restarts: i64,
}

/// Judges successive samples of one container.
#[derive(Debug)]
pub(crate) struct Watch<'a> {
    service: &'a str,
    name: &'a str,
    condition: Condition,
    monitor: Duration,
    declares_health: bool,
    began: Instant,
    restarts: Option<i64>,
    met: bool,
}

impl<'a> Watch<'a> {
    /// A watch beginning at `began` (just after the container's start).
    pub(crate) fn new(
        service: &'a str,
        name: &'a str,
        condition: Condition,
        monitor: Duration,
        declares_health: bool,
        began: Instant,
    ) -> Self {
        Watch {
            service,
            name,
            condition,
            monitor,
            declares_health,
            began,
            restarts: None,
            met: false,
        }
    }

    /// Where the wait stands after `sample` (`None`: the container is
    /// gone) taken at `now`: met once the container meets the condition
    /// and `monitor` has passed; failed as soon as it cannot.
    pub(crate) fn look(&mut self, sample: Option<Sample>, now: Instant) -> Progress {
        let Some(sample) = sample else {
            return Progress::Failed(Error::ContainerMissing {
                container: self.name.to_owned(),
            });
        };
        let baseline = *self.restarts.get_or_insert(sample.restarts);
        if sample.restarts > baseline {
            return self.restarted();
        }
        let service = self.service.to_owned();
        let container = self.name.to_owned();
        let meets = match sample.state {
            ContainerState::Exited(code) if self.condition == Condition::ServiceHealthy => {
                return Progress::Failed(if self.met || code != 0 {
                    Error::ExitedWithError {
                        service,
                        container,
                        code,
                    }
                } else {
                    Error::ExitedBeforeHealthy { service, container }
                });
            }
            ContainerState::Exited(code) => {
                return Progress::Failed(Error::ExitedWithError {
                    service,
                    container,
                    code,
                })
            }
            ContainerState::Dead => {
                return Progress::Failed(Error::ExitedWithError {
                    service,
                    container,
                    code: -1,
                })
            }
            ContainerState::Removing => {
                return Progress::Failed(Error::ContainerMissing { container })
            }
            ContainerState::Restarting if self.met => return self.restarted(),
            ContainerState::Running => match (self.condition, sample.health) {
                (Condition::ServiceHealthy, Some(Health::Healthy)) => true,
                (Condition::ServiceHealthy, Some(Health::Unhealthy)) => {
                    return Progress::Failed(Error::Unhealthy { service, container })
                }
                (Condition::ServiceHealthy, None) if !self.declares_health => {
                    return Progress::Failed(Error::NoHealthcheck { service, container })
                }
                (Condition::ServiceHealthy, _) => false,
                _ => true,
            },
            ContainerState::Created | ContainerState::Restarting | ContainerState::Paused => false,
        };
        self.met |= meets;
        if meets && now.saturating_duration_since(self.began) >= self.monitor {
            Progress::Met
        } else {
            Progress::Pending
        }
    }

    fn restarted(&self) -> Progress {
        Progress::Failed(Error::Restarted {
            service: self.service.to_owned(),
            container: self.name.to_owned(),
        })
    }
}

/// A sample from an inspect response.
fn sample_of(response: &ContainerInspectResponse) -> Sample {
    let state = response.state.as_ref();
    let exit_code = state.and_then(|s| s.exit_code).unwrap_or(-1);
    let status = state.and_then(|s| s.status);
    let parsed = match status {
        Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Running,
        Some(ContainerStateStatusEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerStateStatusEnum::REMOVING) => ContainerState::Removing,
        Some(ContainerStateStatusEnum::EXITED) => ContainerState::Exited(exit_code),
        Some(ContainerStateStatusEnum::DEAD) => ContainerState::Dead,
        // A newer engine's `stopping` is on its way out; the next look says how.
        Some(ContainerStateStatusEnum::STOPPING) => ContainerState::Running,
        Some(ContainerStateStatusEnum::CREATED | ContainerStateStatusEnum::EMPTY) | None => {
            ContainerState::Created
        }
    };
    let health = match state.and_then(|s| s.health.as_ref()).and_then(|h| h.status) {
        Some(HealthStatusEnum::HEALTHY) => Some(Health::Healthy),
        Some(HealthStatusEnum::UNHEALTHY) => Some(Health::Unhealthy),
        Some(HealthStatusEnum::STARTING) => Some(Health::Starting),
        Some(HealthStatusEnum::NONE | HealthStatusEnum::EMPTY) | None => None,
    };
    Sample {
        state: parsed,
        health,
        restarts: response.restart_count.unwrap_or(0),
    }
}

impl DockerBackend {
    /// Carries out [`Action::WaitContainer`]: inspects the container every
    /// poll interval until the watch is over. Bounded by the executor's
    /// timeout, not here.
    pub(super) async fn wait_container(
        &self,
        project: &Project,
        action: &Action,
    ) -> Result<(), Error> {
        let Action::WaitContainer {
            service,
            name,
            condition,
            monitor,
        } = action
        else {
            return Ok(());
        };
        let docker = self.client().await?;
        let declares = project.services.get(service).is_some_and(declares_health);
        let mut watch = Watch::new(
            service,
            name,
            *condition,
            *monitor,
            declares,
            Instant::now(),
        );
        loop {
            let sample = match docker
                .inspect_container(name, None::<InspectContainerOptions>)
                .await
            {
                Ok(response) => Some(sample_of(&response)),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => None,
                Err(e) => return Err(action_error(project, action, e)),
            };
            match watch.look(sample, Instant::now()) {
                Progress::Met => return Ok(()),
                Progress::Failed(error) => return Err(error),
                Progress::Pending => tokio::time::sleep(self.poll_interval).await,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn running(health: Option<Health>) -> Option<Sample> {
        Some(Sample {
            state: ContainerState::Running,
            health,
            restarts: 0,
        })
    }

    fn watch(condition: Condition, monitor: Duration, began: Instant) -> Watch<'static> {
        Watch::new("web", "x_demo-web-1", condition, monitor, true, began)
    }

    #[test]
    fn a_healthy_container_passes_once_the_monitor_period_is_over() {
        let t0 = Instant::now();
        let mut w = watch(Condition::ServiceHealthy, Duration::from_secs(5), t0);
        assert!(matches!(
            w.look(running(Some(Health::Starting)), t0),
            Progress::Pending
        ));
        let t1 = t0 + Duration::from_secs(2);
        assert!(matches!(
            w.look(running(Some(Health::Healthy)), t1),
            Progress::Pending
        ));
        let t2 = t0 + Duration::from_secs(5);
        assert!(matches!(
            w.look(running(Some(Health::Healthy)), t2),
            Progress::Met
        ));
    }

    #[test]
    fn an_unhealthy_or_exited_container_fails_the_wait() {
        let t0 = Instant::now();
        let mut w = watch(Condition::ServiceHealthy, Duration::ZERO, t0);
        match w.look(running(Some(Health::Unhealthy)), t0) {
            Progress::Failed(e) => assert_eq!(e.reason(), "unhealthy"),
            other => panic!("{other:?}"),
        }
        let exited = Some(Sample {
            state: ContainerState::Exited(0),
            health: None,
            restarts: 0,
        });
        let mut w = watch(Condition::ServiceHealthy, Duration::ZERO, t0);
        match w.look(exited, t0) {
            Progress::Failed(e) => assert_eq!(e.reason(), "exited_before_healthy"),
            other => panic!("{other:?}"),
        }
        let mut w = watch(Condition::ServiceStarted, Duration::ZERO, t0);
        match w.look(None, t0) {
            Progress::Failed(e) => assert_eq!(e.reason(), "container_missing"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_crash_within_the_monitor_period_fails_even_after_the_container_ran() {
        let t0 = Instant::now();
        let mut w = watch(Condition::ServiceStarted, Duration::from_secs(10), t0);
        assert!(matches!(w.look(running(None), t0), Progress::Pending));
        let restarted = Some(Sample {
            state: ContainerState::Running,
            health: None,
            restarts: 1,
        });
        match w.look(restarted, t0 + Duration::from_secs(3)) {
            Progress::Failed(e) => assert_eq!(e.reason(), "restarted"),
            other => panic!("{other:?}"),
        }
        let mut w = watch(Condition::ServiceStarted, Duration::from_secs(10), t0);
        assert!(matches!(w.look(running(None), t0), Progress::Pending));
        let exited = Some(Sample {
            state: ContainerState::Exited(1),
            health: None,
            restarts: 0,
        });
        assert!(matches!(
            w.look(exited, t0 + Duration::from_secs(1)),
            Progress::Failed(Error::ExitedWithError { code: 1, .. })
        ));
    }

    #[test]
    fn without_a_healthcheck_waiting_for_health_fails_at_once() {
        let t0 = Instant::now();
        let mut w = Watch::new(
            "web",
            "c",
            Condition::ServiceHealthy,
            Duration::ZERO,
            false,
            t0,
        );
        assert!(matches!(
            w.look(running(None), t0),
            Progress::Failed(Error::NoHealthcheck { .. })
        ));
    }

    #[test]
    fn inspect_responses_give_state_health_and_restarts() {
        let response: ContainerInspectResponse = serde_json::from_str(
            r#"{"RestartCount": 2, "State": {"Status": "running", "ExitCode": 0,
                "Health": {"Status": "starting", "FailingStreak": 0}}}"#,
        )
        .unwrap();
        assert_eq!(
            sample_of(&response),
            Sample {
                state: ContainerState::Running,
                health: Some(Health::Starting),
                restarts: 2
            }
        );
        let exited: ContainerInspectResponse =
            serde_json::from_str(r#"{"State": {"Status": "exited", "ExitCode": 3}}"#).unwrap();
        assert_eq!(sample_of(&exited).state, ContainerState::Exited(3));
    }
}
