//! Rolling updates: batches, order, delays and monitor as steps, and the
//! rollback and pause plans that follow a failed update.
use super::*;

/// Three healthchecked replicas updated start-first, one at a time, 5s apart.
const ROLLING: &str = r#"
services:
  web:
    image: busybox
    environment: {V: "1"}
    healthcheck: {test: ["CMD", "true"]}
    deploy:
      replicas: 3
      update_config: {order: start-first, parallelism: 1, delay: 5s}
"#;

fn v2(yaml: &str) -> String {
    yaml.replace("V: \"1\"", "V: \"2\"")
}

fn prefix(observed: &Observed, name: &str) -> String {
    observed
        .containers
        .iter()
        .find(|c| c.name == name)
        .unwrap()
        .id[..12]
        .to_string()
}

#[test]
fn start_first_replaces_one_container_at_a_time_and_stops_the_old_one_after_the_new_one_is_healthy()
{
    let before = project(ROLLING);
    let observed = converged(&before);
    let after = project(&v2(ROLLING));
    let plan = up(&after, &observed);
    assert_respects_order(&plan);
    let [a, b, c] = ["demo-web-1", "demo-web-2", "demo-web-3"].map(|n| prefix(&observed, n));
    assert_eq!(
        ordered(&plan),
        format!(
            "\
#0 create container {a}_demo-web-1 (config changed, batch 1/3)
#1 start container {a}_demo-web-1 (config changed, batch 1/3) after #0
#2 wait for container {a}_demo-web-1 healthy (config changed, batch 1/3) after #1
#3 stop container demo-web-1 (config changed, batch 1/3) after #2
#4 remove container demo-web-1 (config changed, batch 1/3) after #2, #3
#5 rename container {a}_demo-web-1 → demo-web-1 (config changed, batch 1/3) after #2, #4
#6 delay web 5s (between update batches 1 and 2) after #5
#7 create container {b}_demo-web-2 (config changed, batch 2/3) after #6
#8 start container {b}_demo-web-2 (config changed, batch 2/3) after #6, #7
#9 wait for container {b}_demo-web-2 healthy (config changed, batch 2/3) after #8
#10 stop container demo-web-2 (config changed, batch 2/3) after #9
#11 remove container demo-web-2 (config changed, batch 2/3) after #9, #10
#12 rename container {b}_demo-web-2 → demo-web-2 (config changed, batch 2/3) after #9, #11
#13 delay web 5s (between update batches 2 and 3) after #12
#14 create container {c}_demo-web-3 (config changed, batch 3/3) after #13
#15 start container {c}_demo-web-3 (config changed, batch 3/3) after #13, #14
#16 wait for container {c}_demo-web-3 healthy (config changed, batch 3/3) after #15
#17 stop container demo-web-3 (config changed, batch 3/3) after #16
#18 remove container demo-web-3 (config changed, batch 3/3) after #16, #17
#19 rename container {c}_demo-web-3 → demo-web-3 (config changed, batch 3/3) after #16, #18
"
        )
    );
}

#[test]
fn stop_first_stops_the_old_container_first_and_removes_it_only_once_the_new_one_passed() {
    let yaml = ROLLING
        .replace("order: start-first", "order: stop-first")
        .replace("replicas: 3", "replicas: 2")
        .replace(", delay: 5s", ", monitor: 10s");
    let before = project(&yaml);
    let observed = converged(&before);
    let after = project(&v2(&yaml));
    let plan = up(&after, &observed);
    assert_respects_order(&plan);
    let [a, b] = ["demo-web-1", "demo-web-2"].map(|n| prefix(&observed, n));
    assert_eq!(
        ordered(&plan),
        format!(
            "\
#0 create container {a}_demo-web-1 (config changed, batch 1/2)
#1 stop container demo-web-1 (config changed, batch 1/2)
#2 start container {a}_demo-web-1 (config changed, batch 1/2) after #0, #1
#3 wait for container {a}_demo-web-1 healthy, monitored 10s (config changed, batch 1/2) after #2
#4 remove container demo-web-1 (config changed, batch 1/2) after #1, #3
#5 rename container {a}_demo-web-1 → demo-web-1 (config changed, batch 1/2) after #3, #4
#6 create container {b}_demo-web-2 (config changed, batch 2/2) after #5
#7 stop container demo-web-2 (config changed, batch 2/2) after #5
#8 start container {b}_demo-web-2 (config changed, batch 2/2) after #5, #6, #7
#9 wait for container {b}_demo-web-2 healthy, monitored 10s (config changed, batch 2/2) after #8
#10 remove container demo-web-2 (config changed, batch 2/2) after #7, #9
#11 rename container {b}_demo-web-2 → demo-web-2 (config changed, batch 2/2) after #9, #10
"
        )
    );
}

#[test]
fn parallelism_sets_the_batch_size_and_zero_replaces_everything_at_once() {
    let count_batches = |parallelism: &str| {
        let yaml = ROLLING
            .replace("parallelism: 1", &format!("parallelism: {parallelism}"))
            .replace("replicas: 3", "replicas: 5");
        let plan = up(&project(&v2(&yaml)), &converged(&project(&yaml)));
        assert_respects_order(&plan);
        let delays = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Delay { .. }))
            .count();
        let waits = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::WaitContainer { .. }))
            .count();
        assert_eq!(waits, 5, "every new container is waited on");
        delays + 1
    };
    assert_eq!(count_batches("1"), 5);
    assert_eq!(count_batches("2"), 3);
    assert_eq!(count_batches("0"), 1);
}

#[test]
fn a_batch_starts_only_after_every_container_of_the_previous_batch_is_renamed() {
    let yaml = ROLLING
        .replace("parallelism: 1", "parallelism: 2")
        .replace("replicas: 3", "replicas: 4");
    let observed = converged(&project(&yaml));
    let plan = up(&project(&v2(&yaml)), &observed);
    let renamed = |n: u32| {
        let name = format!("demo-web-{n}");
        let from = format!("{}_{name}", prefix(&observed, &name));
        index_of(&plan, &format!("rename container {from} → {name}"))
    };
    let created = |n: u32| {
        let name = format!("demo-web-{n}");
        index_of(
            &plan,
            &format!("create container {}_{name}", prefix(&observed, &name)),
        )
    };
    for later in [3, 4] {
        for earlier in [1, 2] {
            assert!(waits_for(&plan, created(later), renamed(earlier)));
        }
    }
    assert!(!waits_for(&plan, created(2), renamed(1)), "same batch");
}

#[test]
fn a_service_without_healthcheck_waits_for_running_and_scaling_needs_no_batches() {
    let yaml = ROLLING
        .replace("    healthcheck: {test: [\"CMD\", \"true\"]}\n", "")
        .replace("replicas: 3", "replicas: 1");
    let observed = converged(&project(&yaml));
    let scaled = v2(&yaml).replace("replicas: 1", "replicas: 2");
    let plan = up(&project(&scaled), &observed);
    let a = prefix(&observed, "demo-web-1");
    assert_eq!(
        text(&plan),
        format!(
            "\
create container demo-web-2 (scale 1 → 2)
start container demo-web-2 (scale 1 → 2)
create container {a}_demo-web-1 (config changed)
start container {a}_demo-web-1 (config changed)
wait for container {a}_demo-web-1 running (config changed)
stop container demo-web-1 (config changed)
remove container demo-web-1 (config changed)
rename container {a}_demo-web-1 → demo-web-1 (config changed)
"
        )
    );
}

#[test]
fn the_failing_step_of_a_rolling_update_names_its_service() {
    let observed = converged(&project(ROLLING));
    let plan = up(&project(&v2(ROLLING)), &observed);
    let a = prefix(&observed, "demo-web-1");
    for line in [
        format!("create container {a}_demo-web-1"),
        format!("start container {a}_demo-web-1"),
        format!("wait for container {a}_demo-web-1 healthy"),
    ] {
        assert_eq!(rollout_of(&plan, index_of(&plan, &line)), Some("web"));
    }
    assert_eq!(
        rollout_of(&plan, index_of(&plan, "stop container demo-web-1")),
        None,
        "the old container is not the update's"
    );
    let plain = up(&project(&v2(WEB)), &converged(&project(WEB)));
    assert!((0..plain.steps.len()).all(|i| rollout_of(&plain, i).is_none()));
}

/// What a failed start-first update leaves: container 1 already replaced,
/// container 2's new container running next to the old one.
fn failed_midway(old: &Project, new: &Project) -> (Observed, ObservedContainer) {
    let mut observed = converged(old);
    let updated = container(new, "web", 1);
    observed.containers[0] = updated;
    let mut temp = container(new, "web", 2);
    temp.name = temporary_name(&observed.containers[1].id, "demo-web-2");
    temp.id = hex(&temp.name);
    temp.health = Some(Health::Unhealthy);
    observed.containers.push(temp.clone());
    (observed, temp)
}

#[test]
fn a_held_service_keeps_what_runs_and_removes_the_new_container_left_by_the_update() {
    let old = project(ROLLING);
    let new = project(&v2(ROLLING));
    let (observed, temp) = failed_midway(&old, &new);
    let held = UpOptions {
        held: [("web".to_string(), config_hash(&new.services["web"]))].into(),
        ..UpOptions::default()
    };
    let plan = plan_up(&new, &observed, &held).unwrap();
    assert_eq!(
        text(&plan),
        format!(
            "\
stop container {t} (leftover of an interrupted replacement)
remove container {t} (leftover of an interrupted replacement)
",
            t = temp.name
        )
    );
    // Once it is gone, a held service is converged.
    let mut after = observed.clone();
    after.containers.retain(|c| c.name != temp.name);
    assert!(plan_up(&new, &after, &held).unwrap().is_empty());
    // A new spec (another hash) is rolled out again.
    let newer = project(&ROLLING.replace("V: \"1\"", "V: \"3\""));
    let plan = plan_up(&newer, &after, &held).unwrap();
    assert_eq!(
        plan.steps
            .iter()
            .filter(|s| matches!(s.action, Action::WaitContainer { .. }))
            .count(),
        3
    );
}

#[test]
fn a_held_stop_first_update_starts_the_old_container_it_stopped() {
    let yaml = ROLLING.replace("order: start-first", "order: stop-first");
    let old = project(&yaml);
    let new = project(&v2(&yaml));
    let (mut observed, temp) = failed_midway(&old, &new);
    observed.containers[1].state = ContainerState::Exited(137);
    observed.containers[1].health = None;
    let held = UpOptions {
        held: [("web".to_string(), config_hash(&new.services["web"]))].into(),
        ..UpOptions::default()
    };
    let plan = plan_up(&new, &observed, &held).unwrap();
    assert_respects_order(&plan);
    assert_eq!(
        text(&plan),
        format!(
            "\
stop container {t} (leftover of an interrupted replacement)
remove container {t} (leftover of an interrupted replacement)
start container demo-web-2 (exited (137))
",
            t = temp.name
        )
    );
}

#[test]
fn rolling_back_to_the_previous_config_replaces_the_updated_containers_batch_by_batch() {
    let old = project(ROLLING);
    let new = project(&v2(ROLLING));
    let (observed, temp) = failed_midway(&old, &new);
    // The controller plans the previous config for the held service.
    let held = UpOptions {
        held: [("web".to_string(), config_hash(&new.services["web"]))].into(),
        ..UpOptions::default()
    };
    let plan = plan_up(&old, &observed, &held).unwrap();
    assert_respects_order(&plan);
    let a = prefix(&observed, "demo-web-1");
    assert_eq!(
        text(&plan),
        format!(
            "\
stop container {t} (leftover of an interrupted replacement)
remove container {t} (leftover of an interrupted replacement)
create container {a}_demo-web-1 (config changed)
start container {a}_demo-web-1 (config changed)
wait for container {a}_demo-web-1 healthy (config changed)
stop container demo-web-1 (config changed)
remove container demo-web-1 (config changed)
rename container {a}_demo-web-1 → demo-web-1 (config changed)
",
            t = temp.name
        )
    );
}

#[test]
fn a_paused_service_is_left_exactly_as_it_is() {
    let old = project(ROLLING);
    let new = project(&v2(ROLLING));
    let (mut observed, _) = failed_midway(&old, &new);
    observed.containers[2].state = ContainerState::Exited(137);
    let paused = UpOptions {
        paused_updates: ["web".to_string()].into(),
        ..UpOptions::default()
    };
    assert!(plan_up(&new, &observed, &paused).unwrap().is_empty());
}

#[test]
fn rolling_steps_serialize_with_durations_in_seconds() {
    let yaml = ROLLING.replace("delay: 5s", "delay: 1500ms, monitor: 2s");
    let plan = up(&project(&v2(&yaml)), &converged(&project(&yaml)));
    let json = serde_json::to_value(&plan).unwrap();
    let steps = json["steps"].as_array().unwrap();
    let wait = steps
        .iter()
        .find(|s| s["action"] == "wait_container")
        .unwrap();
    assert_eq!(wait["monitor_seconds"], 2.0);
    assert_eq!(wait["condition"], "service_healthy");
    let delay = steps.iter().find(|s| s["action"] == "delay").unwrap();
    assert_eq!(delay["seconds"], 1.5);
    assert!(plan.to_string().contains("delay web 1.5s"));
}

#[test]
fn a_rolling_update_interrupted_midway_removes_its_leftover_and_starts_that_batch_again() {
    let old = project(ROLLING);
    let new = project(&v2(ROLLING));
    // A crash in batch 2, after the new container passed, before the old
    // one went: replica 1 is done, 2 and 3 are not.
    let (mut observed, temp) = failed_midway(&old, &new);
    observed.containers.last_mut().unwrap().health = Some(Health::Healthy);
    let plan = up(&new, &observed);
    assert_respects_order(&plan);
    let removed = index_of(&plan, &format!("remove container {}", temp.name));
    let created = index_of(&plan, &format!("create container {}", temp.name));
    assert!(waits_for(&plan, created, removed), "{plan:#}");
    assert_eq!(
        plan.steps
            .iter()
            .filter(|s| matches!(s.action, Action::WaitContainer { .. }))
            .count(),
        2,
        "replicas 2 and 3 are rolled out, replica 1 is kept"
    );
}
