//! Rolling updates through the controller on the fake engine: capacity
//! during start-first and stop-first updates, rollbacks and pauses.
use super::*;
use crate::docker::fake::Call;
use crate::docker::labels;
use crate::plan::{Action, Health};

const ROLLING: &str = "services:\n  web:\n    image: busybox\n    restart: always\n    environment: {V: \"1\"}\n    healthcheck: {test: [\"CMD\", \"true\"]}\n    deploy:\n      replicas: 3\n      update_config: {order: start-first, parallelism: 1, delay: 1s}\n";

fn version(yaml: &str, v: u32) -> String {
    yaml.replace("V: \"1\"", &format!("V: \"{v}\""))
}

impl Rig {
    fn web_hash(&self) -> String {
        crate::plan::config_hash(&self.load().unwrap().project.services["web"])
    }

    /// Containers of web: (name, config hash).
    fn web(&self) -> Vec<(String, String)> {
        self.fake
            .container_names()
            .into_iter()
            .filter_map(|name| {
                let c = self.fake.container(&name)?;
                (c.labels.get(labels::SERVICE).map(String::as_str) == Some("web")).then(|| {
                    let hash = c
                        .labels
                        .get(labels::CONFIG_HASH)
                        .cloned()
                        .unwrap_or_default();
                    (name, hash)
                })
            })
            .collect()
    }
}

/// What one look at the fake engine during an update shows.
#[derive(Debug, Default, Clone, Copy)]
struct Moment {
    /// Replicas running, healthy and not being stopped.
    serving: usize,
    /// Containers of the service running.
    running: usize,
}

async fn look(rig: &Rig, project: &crate::model::Project) -> Moment {
    let observed = rig.fake.observe(project, false).await.unwrap();
    let stopping: Vec<String> = rig
        .fake
        .calls()
        .into_iter()
        .filter(|r| r.finished.is_none())
        .filter_map(|r| match r.call {
            Call::Apply(Action::StopContainer { name }) => Some(name),
            _ => None,
        })
        .collect();
    let web = observed.containers.iter().filter(|c| c.service == "web");
    let running: Vec<_> = web.filter(|c| c.state == ContainerState::Running).collect();
    Moment {
        serving: running
            .iter()
            .filter(|c| c.health == Some(Health::Healthy) && !stopping.contains(&c.name))
            .count(),
        running: running.len(),
    }
}

/// Runs one reconcile in the background, looking at the engine every 10ms
/// (tokio time) until it ends; `during` runs at each look.
async fn watch_reconcile(rig: &Rig, mut during: impl FnMut(&Rig)) -> Vec<Moment> {
    let project = rig.load().unwrap().project;
    let controller = Arc::clone(&rig.controller);
    let task = tokio::spawn(async move { controller.reconcile("demo").await });
    let mut moments = Vec::new();
    while !task.is_finished() {
        moments.push(look(rig, &project).await);
        during(rig);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.await.unwrap();
    moments
}

#[tokio::test(start_paused = true)]
async fn a_start_first_update_replaces_every_replica_batch_by_batch_and_never_runs_fewer_healthy_replicas(
) {
    let rig = rig(options());
    rig.apply(ROLLING);
    rig.reconcile().await;
    let old = rig.web_hash();
    rig.fake
        .set_behaviour("web", Behaviour::HealthyAfter(Duration::from_secs(2)));
    rig.fake
        .set_delay(ActionKind::StopContainer, Duration::from_millis(300));
    rig.fake.clear_calls();
    rig.apply(&version(ROLLING, 2));
    let new = rig.web_hash();
    assert_ne!(old, new);

    let moments = watch_reconcile(&rig, |_| {}).await;
    assert!(
        moments.len() > 500,
        "the update takes its time: {}",
        moments.len()
    );
    let fewest = moments.iter().map(|m| m.serving).min().unwrap();
    let most = moments.iter().map(|m| m.running).max().unwrap();
    assert_eq!(fewest, 3, "start-first never serves with fewer than 3");
    assert_eq!(most, 4, "one batch of one at a time");

    let web = rig.web();
    assert_eq!(
        web.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["demo-web-1", "demo-web-2", "demo-web-3"]
    );
    assert!(web.iter().all(|(_, h)| *h == new), "{web:?}");
    assert!(rig.status().is_ready(), "{:#?}", rig.status());

    // Each batch begins a delay after the previous one ended.
    let calls = rig.fake.calls();
    let at = |pick: &dyn Fn(&Action) -> bool, finished: bool| -> Vec<Instant> {
        calls
            .iter()
            .filter(|r| matches!(&r.call, Call::Apply(a) if pick(a)))
            .map(|r| {
                if finished {
                    r.finished.unwrap()
                } else {
                    r.started
                }
            })
            .collect()
    };
    let creates = at(&|a| matches!(a, Action::CreateContainer { .. }), false);
    let renames = at(&|a| matches!(a, Action::RenameContainer { .. }), true);
    assert_eq!((creates.len(), renames.len()), (3, 3));
    for batch in 1..3 {
        let gap = creates[batch] - renames[batch - 1];
        assert!(gap >= Duration::from_secs(1), "batch {batch}: {gap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_first_update_keeps_all_but_one_replica_serving_and_never_runs_more_than_asked() {
    let yaml = ROLLING.replace("order: start-first", "order: stop-first");
    let rig = rig(options());
    rig.apply(&yaml);
    rig.reconcile().await;
    rig.fake
        .set_behaviour("web", Behaviour::HealthyAfter(Duration::from_secs(2)));
    rig.apply(&version(&yaml, 2));
    let new = rig.web_hash();
    let moments = watch_reconcile(&rig, |_| {}).await;
    assert_eq!(moments.iter().map(|m| m.serving).min(), Some(2));
    assert_eq!(moments.iter().map(|m| m.running).max(), Some(3));
    assert!(rig.web().iter().all(|(_, h)| *h == new));
    assert!(rig.status().is_ready());
}

#[tokio::test(start_paused = true)]
async fn an_update_that_never_becomes_healthy_is_rolled_back_and_not_retried_until_the_spec_changes(
) {
    let rig = rig(options());
    rig.apply(ROLLING);
    rig.reconcile().await;
    let old = rig.web_hash();
    rig.fake
        .set_behaviour("web", Behaviour::UnhealthyAfter(Duration::from_secs(1)));
    rig.apply(&version(ROLLING, 2));
    let moments = watch_reconcile(&rig, |_| {}).await;
    assert_eq!(moments.iter().map(|m| m.serving).min(), Some(3));

    let web = rig.web();
    assert_eq!(web.len(), 3, "the new container is gone: {web:?}");
    assert!(web.iter().all(|(_, h)| *h == old), "{web:?}");
    let (stalled, reason) = rig.condition(ConditionType::Stalled);
    assert_eq!(
        (stalled, reason.as_str()),
        (ConditionStatus::True, "RolledBack")
    );
    let message = rig.status().last_error.unwrap().message;
    assert!(
        message.starts_with("service web: new config never became healthy: container ")
            && message.contains("is unhealthy")
            && message.ends_with("rolled back to the previous config"),
        "{message}"
    );
    assert_eq!(
        metric_line(
            &rig.metrics,
            "stackd_reconcile_errors_total{reason=\"rolled_back\",stack=\"demo\"}"
        ),
        Some(1.0)
    );

    // Resyncs and events change nothing: the failed config is not retried.
    rig.fake.clear_calls();
    for _ in 0..3 {
        rig.reconcile().await;
    }
    assert_eq!(rig.container_changes(), 0);
    assert_eq!(rig.condition(ConditionType::Stalled).1, "RolledBack");

    // A new spec is tried.
    rig.fake
        .set_behaviour("web", Behaviour::HealthyAfter(Duration::ZERO));
    rig.apply(&version(ROLLING, 3));
    let newest = rig.web_hash();
    rig.reconcile().await;
    assert!(rig.web().iter().all(|(_, h)| *h == newest));
    assert!(rig.status().is_ready(), "{:#?}", rig.status());
}

#[tokio::test(start_paused = true)]
async fn a_failure_in_a_later_batch_rolls_the_updated_replicas_back_to_the_previous_config() {
    let rig = rig(options());
    rig.apply(ROLLING);
    rig.reconcile().await;
    let old = rig.web_hash();
    rig.apply(&version(ROLLING, 2));
    let new = rig.web_hash();
    // The second new container goes unhealthy: switch once the first is in.
    let mut switched = false;
    watch_reconcile(&rig, |rig| {
        let renamed = rig.fake.calls().iter().any(|r| {
            matches!(r.call, Call::Apply(Action::RenameContainer { .. })) && r.finished.is_some()
        });
        if renamed && !switched {
            rig.fake
                .set_config_behaviour(&new, Behaviour::UnhealthyAfter(Duration::from_millis(500)));
            switched = true;
        }
    })
    .await;
    assert!(switched);
    let web = rig.web();
    assert_eq!(web.len(), 3, "{web:?}");
    assert!(
        web.iter().all(|(_, h)| *h == old),
        "replica 1 went back too: {web:?}"
    );
    assert_eq!(rig.condition(ConditionType::Stalled).1, "RolledBack");
}

#[tokio::test(start_paused = true)]
async fn a_failed_stop_first_update_starts_the_old_replica_again() {
    let yaml = ROLLING.replace("order: start-first", "order: stop-first");
    let rig = rig(options());
    rig.apply(&yaml);
    rig.reconcile().await;
    let old = rig.web_hash();
    rig.fake.set_behaviour(
        "web",
        Behaviour::ExitsAfter {
            code: 1,
            after: Duration::from_millis(200),
        },
    );
    rig.apply(&version(&yaml, 2));
    rig.reconcile().await;
    let project = rig.load().unwrap().project;
    let observed = rig.fake.observe(&project, false).await.unwrap();
    assert_eq!(observed.containers.len(), 3);
    assert!(observed
        .containers
        .iter()
        .all(|c| c.config_hash == old && c.state == ContainerState::Running));
    assert!(rig
        .status()
        .last_error
        .unwrap()
        .message
        .contains("exited with status 1"));
}

#[tokio::test(start_paused = true)]
async fn a_paused_update_is_left_as_it_is_until_the_spec_changes() {
    let yaml = ROLLING.replace("delay: 1s", "delay: 1s, failure_action: pause");
    let rig = rig(options());
    rig.apply(&yaml);
    rig.reconcile().await;
    rig.fake
        .set_behaviour("web", Behaviour::UnhealthyAfter(Duration::from_secs(1)));
    rig.apply(&version(&yaml, 2));
    rig.reconcile().await;
    assert_eq!(rig.web().len(), 4, "the new container is left for a look");
    assert_eq!(rig.condition(ConditionType::Stalled).1, "UpdatePaused");
    rig.fake.clear_calls();
    rig.reconcile().await;
    assert_eq!(rig.container_changes(), 0);

    rig.fake
        .set_behaviour("web", Behaviour::HealthyAfter(Duration::ZERO));
    rig.apply(&version(&yaml, 3));
    let newest = rig.web_hash();
    rig.reconcile().await;
    let web = rig.web();
    assert_eq!(web.len(), 3, "{web:?}");
    assert!(web.iter().all(|(_, h)| *h == newest));
    assert!(rig.status().is_ready());
}

#[tokio::test(start_paused = true)]
async fn without_the_previous_config_in_memory_a_failed_update_keeps_the_old_replicas() {
    let rig = rig(options());
    rig.apply(ROLLING);
    rig.reconcile().await;
    let old = rig.web_hash();
    // A controller started after the file changed never saw the old config.
    let fresh = Controller::new(rig.fake.clone(), Metrics::new(), options());
    rig.fake
        .set_behaviour("web", Behaviour::UnhealthyAfter(Duration::from_secs(1)));
    rig.write(&version(ROLLING, 2));
    fresh.set_desired(rig.load().unwrap());
    fresh.reconcile("demo").await;
    let web = rig.web();
    assert_eq!(web.len(), 3, "{web:?}");
    assert!(web.iter().all(|(_, h)| *h == old));
    let status = fresh.status("demo").unwrap();
    let message = status.last_error.unwrap().message;
    assert!(message.ends_with("the old ones kept"), "{message}");
    rig.fake.clear_calls();
    fresh.reconcile("demo").await;
    assert_eq!(rig.container_changes(), 0);
}
