//! Executor tests on the in-memory engine, in paused tokio time.
use std::sync::{Arc, Mutex};

use super::*;
use crate::docker::fake::{Behaviour, Call, FakeBackend, Record};
use crate::plan::{Condition, ContainerState};

fn project() -> Project {
    serde_json::from_value(serde_json::json!({
        "name": "shop",
        "services": {
            "db": {"image": "busybox", "healthcheck": {"test": ["CMD", "true"]}},
            "web": {"image": "busybox", "depends_on": {"db": {"condition": "service_healthy"}}},
            "job": {"image": "busybox", "restart": "no"},
        },
        "networks": {
            "default": {"name": "shop_default"},
            "a": {"name": "shop_a"},
            "b": {"name": "shop_b"},
            "c": {"name": "shop_c"},
            "d": {"name": "shop_d"},
        },
        "volumes": {"data": {"name": "shop_data"}},
    }))
    .unwrap()
}

fn meta() -> ProjectMeta {
    ProjectMeta {
        working_dir: "/srv/shop".into(),
        config_files: vec!["/srv/shop/compose.yaml".into()],
        config_hashes: ["db", "web", "job"]
            .into_iter()
            .map(|s| (s.to_owned(), format!("hash-{s}")))
            .collect(),
        variables: Default::default(),
    }
}

fn step(action: Action, after: &[usize]) -> Step {
    Step {
        action,
        cause: "test".into(),
        after: after.to_vec(),
    }
}

fn network(key: &str) -> Action {
    Action::CreateNetwork {
        network: key.into(),
    }
}

fn create(service: &str) -> Action {
    Action::CreateContainer {
        service: service.into(),
        number: 1,
        name: format!("shop-{service}-1"),
    }
}

fn start(service: &str) -> Action {
    Action::StartContainer {
        name: format!("shop-{service}-1"),
    }
}

fn wait(service: &str, condition: Condition) -> Action {
    Action::WaitFor {
        service: service.into(),
        condition,
    }
}

/// The cold `up` of db ← web: network, image, db, wait healthy, web.
fn cold_up() -> Plan {
    Plan {
        steps: vec![
            step(network("default"), &[]),
            step(
                Action::EnsureImage {
                    service: "db".into(),
                },
                &[],
            ),
            step(create("db"), &[0, 1]),
            step(start("db"), &[2]),
            step(wait("db", Condition::ServiceHealthy), &[3]),
            step(create("web"), &[0, 1]),
            step(start("web"), &[4, 5]),
        ],
    }
}

async fn run(
    fake: &FakeBackend,
    plan: &Plan,
    options: &ExecOptions,
) -> (Result<Report, ExecError>, Vec<Event>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let mut events = move |e: Event| sink.lock().unwrap().push(e);
    let result = execute(plan, &project(), &meta(), fake, options, &mut events).await;
    let seen = seen.lock().unwrap().clone();
    (result, seen)
}

fn record<'a>(records: &'a [Record], action: &Action) -> &'a Record {
    records
        .iter()
        .find(|r| r.call == Call::Apply(action.clone()))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_cold_up_runs_every_step_and_reports_each_one() {
    let fake = FakeBackend::new();
    let plan = cold_up();
    let (result, events) = run(&fake, &plan, &ExecOptions::default()).await;
    let report = result.unwrap();
    assert_eq!(report.completed, 7);
    assert_eq!(report.count(ActionKind::CreateContainer), 2);
    assert_eq!(report.count(ActionKind::StartContainer), 2);
    assert_eq!(report.container_changes(), 4);
    assert_eq!(
        fake.container_names(),
        vec!["shop-db-1".to_owned(), "shop-web-1".to_owned()]
    );
    assert_eq!(
        fake.container("shop-web-1").unwrap().state,
        ContainerState::Running
    );
    for index in 0..7 {
        assert!(
            events.contains(&Event::Started { index }),
            "started {index}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Finished { index: i, .. } if *i == index)),
            "finished {index}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_plan_makes_no_calls() {
    let fake = FakeBackend::new();
    let (result, events) = run(&fake, &Plan::default(), &ExecOptions::default()).await;
    let report = result.unwrap();
    assert_eq!(report.container_changes(), 0);
    assert!(report.counts.is_empty());
    assert!(events.is_empty());
    assert!(fake.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn independent_steps_run_at_the_same_time() {
    let fake = FakeBackend::new();
    fake.set_delay(ActionKind::CreateNetwork, Duration::from_secs(1));
    let plan = Plan {
        steps: ["a", "b", "c", "d"]
            .into_iter()
            .map(|k| step(network(k), &[]))
            .collect(),
    };
    let (result, _) = run(&fake, &plan, &ExecOptions::default()).await;
    let report = result.unwrap();
    assert_eq!(report.elapsed, Duration::from_secs(1));
    let calls = fake.calls();
    assert!(calls.iter().all(|r| r.started == calls[0].started));
}

#[tokio::test(start_paused = true)]
async fn parallelism_bounds_the_steps_running_at_once() {
    let fake = FakeBackend::new();
    fake.set_delay(ActionKind::CreateNetwork, Duration::from_secs(1));
    let plan = Plan {
        steps: ["a", "b", "c", "d"]
            .into_iter()
            .map(|k| step(network(k), &[]))
            .collect(),
    };
    let options = ExecOptions {
        parallelism: 2,
        timeout: None,
    };
    let (result, _) = run(&fake, &plan, &options).await;
    assert_eq!(result.unwrap().elapsed, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_step_starts_only_after_the_steps_it_follows_finish() {
    let fake = FakeBackend::new();
    fake.set_delay(ActionKind::CreateNetwork, Duration::from_secs(1));
    fake.set_delay(ActionKind::EnsureImage, Duration::from_secs(2));
    fake.set_delay(ActionKind::CreateContainer, Duration::from_secs(1));
    fake.set_behaviour("db", Behaviour::HealthyAfter(Duration::from_secs(5)));
    let plan = cold_up();
    let (result, _) = run(&fake, &plan, &ExecOptions::default()).await;
    let report = result.unwrap();
    let calls = fake.calls();
    let image = record(&calls, &plan.steps[1].action);
    let db = record(&calls, &create("db"));
    let web = record(&calls, &create("web"));
    let start_web = record(&calls, &start("web"));
    assert!(db.started >= image.finished.unwrap());
    assert!(web.started >= image.finished.unwrap());
    // web's container is created while db becomes healthy, but it starts
    // only once db is healthy.
    assert!(web.started < start_web.started);
    let waited = calls
        .iter()
        .find(|r| matches!(r.call, Call::WaitFor { .. }))
        .unwrap();
    assert!(start_web.started >= waited.finished.unwrap());
    assert!(waited.finished.unwrap() - waited.started >= Duration::from_secs(5));
    // 2 s image, 1 s create, 5 s to healthy.
    assert!(report.elapsed >= Duration::from_secs(8));
}

#[tokio::test(start_paused = true)]
async fn a_failure_stops_new_steps_but_lets_running_ones_finish() {
    let fake = FakeBackend::new();
    fake.set_delay(ActionKind::CreateVolume, Duration::from_secs(1));
    fake.set_delay(ActionKind::CreateNetwork, Duration::from_secs(3));
    fake.fail_next(ActionKind::CreateVolume, 500, 1);
    let plan = Plan {
        steps: vec![
            step(
                Action::CreateVolume {
                    volume: "data".into(),
                },
                &[],
            ),
            step(network("a"), &[]),
            step(network("b"), &[1]),
        ],
    };
    let (result, events) = run(&fake, &plan, &ExecOptions::default()).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, ExecError::StepFailed { index: 0, .. }),
        "{err:?}"
    );
    assert_eq!(err.reason(), "engine_rejected");
    assert_eq!(err.report().unwrap().completed, 1);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Finished { index: 1, .. })));
    assert!(!events.contains(&Event::Started { index: 2 }));
    assert!(fake.networks().contains_key("shop_a"));
    assert!(!fake.networks().contains_key("shop_b"));
}

#[tokio::test(start_paused = true)]
async fn a_failure_cancels_waits_still_running() {
    let fake = FakeBackend::new();
    fake.add_image("busybox");
    fake.set_delay(ActionKind::CreateVolume, Duration::from_secs(1));
    fake.fail_next(ActionKind::CreateVolume, 500, 1);
    fake.set_behaviour("db", Behaviour::HealthyAfter(Duration::from_secs(600)));
    let plan = Plan {
        steps: vec![
            step(
                Action::CreateVolume {
                    volume: "data".into(),
                },
                &[],
            ),
            step(network("default"), &[]),
            step(create("db"), &[1]),
            step(start("db"), &[2]),
            step(wait("db", Condition::ServiceHealthy), &[3]),
            step(create("web"), &[4]),
        ],
    };
    let (result, events) = run(&fake, &plan, &ExecOptions::default()).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, ExecError::StepFailed { index: 0, .. }),
        "{err:?}"
    );
    assert_eq!(err.report().unwrap().elapsed, Duration::from_secs(1));
    assert!(events.contains(&Event::Cancelled { index: 4 }));
    assert!(!events.contains(&Event::Started { index: 5 }));
}

#[tokio::test(start_paused = true)]
async fn a_dependency_that_turns_unhealthy_fails_the_run_naming_it() {
    let fake = FakeBackend::new();
    fake.set_behaviour("db", Behaviour::UnhealthyAfter(Duration::from_secs(2)));
    let plan = cold_up();
    let (result, _) = run(&fake, &plan, &ExecOptions::default()).await;
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "service db: container shop-db-1 is unhealthy"
    );
    assert_eq!(
        fake.container("shop-web-1").unwrap().state,
        ContainerState::Created
    );
}

#[tokio::test(start_paused = true)]
async fn the_overall_timeout_stops_the_run() {
    let fake = FakeBackend::new();
    fake.set_behaviour("db", Behaviour::HealthyAfter(Duration::from_secs(600)));
    let plan = cold_up();
    let options = ExecOptions {
        parallelism: 8,
        timeout: Some(Duration::from_secs(30)),
    };
    let started = Instant::now();
    let (result, events) = run(&fake, &plan, &options).await;
    let err = result.unwrap_err();
    assert!(Instant::now() - started <= Duration::from_secs(30));
    match &err {
        // The wait knows the deadline and gives up just before the run does.
        ExecError::StepFailed { source, .. } => {
            assert_eq!(source.reason(), "wait_timed_out");
        }
        ExecError::TimedOut { running, .. } => assert_eq!(running, &vec![4]),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!events.contains(&Event::Started { index: 6 }));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_cuts_a_step_that_ignores_the_deadline() {
    let fake = FakeBackend::new();
    fake.set_delay(ActionKind::CreateNetwork, Duration::from_secs(100));
    let plan = Plan {
        steps: vec![step(network("a"), &[])],
    };
    let options = ExecOptions {
        parallelism: 8,
        timeout: Some(Duration::from_secs(5)),
    };
    let (result, events) = run(&fake, &plan, &options).await;
    match result.unwrap_err() {
        ExecError::TimedOut {
            running, report, ..
        } => {
            assert_eq!(running, vec![0]);
            assert_eq!(report.elapsed, Duration::from_secs(5));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        events.last(),
        Some(Event::Failed { index: 0, .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_completed_one_shot_satisfies_its_dependents() {
    let fake = FakeBackend::new();
    fake.set_behaviour(
        "job",
        Behaviour::ExitsAfter {
            code: 0,
            after: Duration::from_secs(1),
        },
    );
    let plan = Plan {
        steps: vec![
            step(network("default"), &[]),
            step(
                Action::EnsureImage {
                    service: "job".into(),
                },
                &[],
            ),
            step(create("job"), &[0, 1]),
            step(start("job"), &[2]),
            step(wait("job", Condition::ServiceCompletedSuccessfully), &[3]),
        ],
    };
    let (result, _) = run(&fake, &plan, &ExecOptions::default()).await;
    assert!(result.unwrap().elapsed >= Duration::from_secs(1));
    let observed = fake.observe(&project(), false).await.unwrap();
    assert_eq!(observed.containers[0].state, ContainerState::Exited(0));
}

#[tokio::test(start_paused = true)]
async fn a_step_after_a_missing_step_is_an_invalid_plan() {
    let fake = FakeBackend::new();
    let plan = Plan {
        steps: vec![step(network("a"), &[3])],
    };
    let (result, _) = run(&fake, &plan, &ExecOptions::default()).await;
    assert!(matches!(result, Err(ExecError::InvalidPlan { index: 0 })));
    let cycle = Plan {
        steps: vec![step(network("a"), &[1]), step(network("b"), &[0])],
    };
    let (result, _) = run(&fake, &cycle, &ExecOptions::default()).await;
    assert!(matches!(result, Err(ExecError::InvalidPlan { .. })));
    assert!(fake.calls().is_empty());
}

/// db ← web (healthy), and a job nothing waits for.
fn gated_and_free() -> Plan {
    Plan {
        steps: vec![
            step(network("default"), &[]),
            step(create("db"), &[0]),
            step(start("db"), &[1]),
            step(wait("db", Condition::ServiceHealthy), &[2]),
            step(create("web"), &[0]),
            step(start("web"), &[3, 4]),
            step(create("job"), &[0]),
            step(start("job"), &[6]),
            step(wait("web", Condition::ServiceStarted), &[5]),
        ],
    }
}

#[test]
fn critical_steps_are_the_creates_and_starts_a_gating_wait_follows() {
    let plan = gated_and_free();
    let (_, followers) = graph(&plan).unwrap();
    // The wait on web gates nothing: web's steps are not critical, nor are
    // the network and the wait on db (not container creates or starts).
    assert_eq!(
        critical_steps(&plan, &followers),
        vec![false, true, true, false, false, false, false, false, false]
    );
    let cycle = Plan {
        steps: vec![step(create("db"), &[1]), step(start("db"), &[0])],
    };
    let (_, followers) = graph(&cycle).unwrap();
    assert_eq!(critical_steps(&cycle, &followers), vec![false, false]);
}

#[tokio::test(start_paused = true)]
async fn creates_and_starts_nothing_waits_for_are_held_while_critical_ones_run() {
    let fake = FakeBackend::new();
    fake.add_image("busybox");
    fake.set_delay(ActionKind::CreateContainer, Duration::from_secs(1));
    fake.set_delay(ActionKind::StartContainer, Duration::from_secs(1));
    fake.set_behaviour("db", Behaviour::HealthyAfter(Duration::from_secs(3)));
    let plan = gated_and_free();
    let (result, _) = run(&fake, &plan, &ExecOptions::default()).await;
    result.unwrap();
    let calls = fake.calls();
    let t0 = record(&calls, &network("default")).finished.unwrap();
    let at = |action: &Action| record(&calls, action).started - t0;
    assert_eq!(at(&start("db")), Duration::from_secs(1));
    // Held while db is created and started, then run during its wait.
    assert_eq!(at(&create("web")), Duration::from_secs(2));
    assert_eq!(at(&create("job")), Duration::from_secs(2));
    assert_eq!(at(&start("job")), Duration::from_secs(3));
    assert_eq!(at(&start("web")), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn without_a_gating_wait_creates_run_at_once() {
    let fake = FakeBackend::new();
    fake.add_image("busybox");
    fake.set_delay(ActionKind::CreateContainer, Duration::from_secs(1));
    let plan = Plan {
        steps: vec![
            step(network("default"), &[]),
            step(create("db"), &[0]),
            step(create("web"), &[0]),
            step(create("job"), &[0]),
            step(start("db"), &[1]),
            step(wait("db", Condition::ServiceStarted), &[4]),
        ],
    };
    let (result, _) = run(&fake, &plan, &ExecOptions::default()).await;
    let calls = fake.calls();
    let creates: Vec<_> = calls
        .iter()
        .filter(|r| matches!(&r.call, Call::Apply(Action::CreateContainer { .. })))
        .collect();
    assert_eq!(creates.len(), 3);
    assert!(creates.iter().all(|r| r.started == creates[0].started));
    result.unwrap();
}
