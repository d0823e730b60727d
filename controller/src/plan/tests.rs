//! Planner behaviour on small projects loaded from compose YAML, against
//! observed states built from what `up` would leave behind.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

mod rolling;

use super::*;
use crate::load::{load_project, LoadOptions};
use crate::model::Project;

/// Loads `yaml` as project `demo`.
fn project(yaml: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, yaml).unwrap();
    let options = LoadOptions {
        files: vec![file],
        project_name: Some("demo".into()),
        working_dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    };
    load_project(&options).unwrap().project
}

fn hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn image_id(reference: &str) -> String {
    format!("sha256:{}", hex(reference))
}

/// Replica `number` of `service` as `up` leaves it: running, healthy when
/// it has a healthcheck, with the current hash and image.
fn container(project: &Project, service: &str, number: u32) -> ObservedContainer {
    let config = &project.services[service];
    let name = container_name(&project.name, service, config, number);
    ObservedContainer {
        id: hex(&name),
        name,
        service: service.into(),
        number,
        oneoff: false,
        config_hash: config_hash(config),
        image: image_ref(&project.name, service, config),
        image_id: image_id(&image_ref(&project.name, service, config)),
        state: ContainerState::Running,
        health: has_healthcheck(config).then_some(Health::Healthy),
        networks: BTreeMap::new(),
    }
}

/// Nothing but the images the project uses.
fn empty(project: &Project) -> Observed {
    let mut observed = Observed {
        containers: Vec::new(),
        networks: Some(Vec::new()),
        volumes: Some(Vec::new()),
        images: BTreeMap::new(),
    };
    for (name, service) in &project.services {
        let reference = image_ref(&project.name, name, service);
        observed
            .images
            .insert(reference.clone(), Some(image_id(&reference)));
    }
    observed
}

/// What the engine runs once `project` is up.
fn converged(project: &Project) -> Observed {
    let mut observed = empty(project);
    let networks = observed.networks.get_or_insert_with(Vec::new);
    for (key, network) in &project.networks {
        networks.push(ObservedNetwork {
            name: network.name.clone(),
            id: hex(key),
            key: key.clone(),
            config_hash: String::new(),
        });
    }
    let volumes = observed.volumes.get_or_insert_with(Vec::new);
    for (key, volume) in &project.volumes {
        volumes.push(ObservedVolume {
            name: volume.name.clone(),
            key: key.clone(),
        });
    }
    for (name, service) in &project.services {
        for number in 1..=desired_replicas(name, service).unwrap() {
            observed.containers.push(container(project, name, number));
        }
    }
    observed
}

fn up(project: &Project, observed: &Observed) -> Plan {
    plan_up(project, observed, &UpOptions::default()).unwrap()
}

fn text(plan: &Plan) -> String {
    plan.to_string()
}

fn ordered(plan: &Plan) -> String {
    format!("{plan:#}")
}

/// Index of the first step printing as `line` (without its cause).
fn index_of(plan: &Plan, line: &str) -> usize {
    plan.steps
        .iter()
        .position(|s| s.action.to_string() == line)
        .unwrap_or_else(|| panic!("no step {line:?} in\n{plan:#}"))
}

/// Whether step `later` waits, directly or not, for step `earlier`.
fn waits_for(plan: &Plan, later: usize, earlier: usize) -> bool {
    let mut stack = vec![later];
    let mut seen = vec![false; plan.steps.len()];
    while let Some(i) = stack.pop() {
        for &a in &plan.steps[i].after {
            if a == earlier {
                return true;
            }
            if !seen[a] {
                seen[a] = true;
                stack.push(a);
            }
        }
    }
    false
}

fn assert_respects_order(plan: &Plan) {
    for (i, step) in plan.steps.iter().enumerate() {
        assert!(
            step.after.iter().all(|&a| a < i),
            "step #{i} waits on a later step:\n{plan:#}"
        );
    }
}

const STACK: &str = r#"
services:
  db:
    image: busybox:1
    healthcheck: {test: ["CMD", "true"]}
    volumes: [data:/data]
  cache:
    image: busybox:1
  api:
    image: busybox:1
    environment: {LEVEL: "1"}
    depends_on:
      db: {condition: service_healthy, restart: true}
      cache: {condition: service_started}
  web:
    image: busybox:1
    deploy: {replicas: 2}
    depends_on: [api]
  admin:
    image: busybox:1
    depends_on:
      db: {condition: service_healthy}
volumes:
  data: {}
"#;

#[test]
fn a_cold_start_of_a_three_level_graph_creates_dependencies_first_and_waits_on_health() {
    let project = project(STACK);
    let observed = Observed {
        networks: Some(Vec::new()),
        volumes: Some(Vec::new()),
        ..empty(&project)
    };
    let plan = up(&project, &observed);
    assert_respects_order(&plan);
    assert_eq!(
        ordered(&plan),
        "\
#0 create network default (missing)
#1 create volume data (missing)
#2 create container demo-cache-1 (missing) after #0
#3 start container demo-cache-1 (missing) after #2
#4 create container demo-db-1 (missing) after #0, #1
#5 start container demo-db-1 (missing) after #4
#6 wait for db service_healthy (required by admin, api) after #4, #5
#7 create container demo-admin-1 (missing) after #0, #4
#8 start container demo-admin-1 (missing) after #6, #7
#9 create container demo-api-1 (missing) after #0, #2, #4
#10 start container demo-api-1 (missing) after #2, #3, #6, #9
#11 create container demo-web-1 (missing) after #0, #9
#12 start container demo-web-1 (missing) after #9, #10, #11
#13 create container demo-web-2 (missing) after #0, #9
#14 start container demo-web-2 (missing) after #9, #10, #13
"
    );
}

#[test]
fn independent_services_are_not_ordered_against_each_other() {
    let project = project(STACK);
    let plan = up(&project, &empty(&project));
    let cache = index_of(&plan, "start container demo-cache-1");
    let db = index_of(&plan, "start container demo-db-1");
    let admin = index_of(&plan, "start container demo-admin-1");
    let api = index_of(&plan, "start container demo-api-1");
    assert!(!waits_for(&plan, db, cache) && !waits_for(&plan, cache, db));
    assert!(!waits_for(&plan, admin, api) && !waits_for(&plan, api, admin));
    assert!(waits_for(&plan, api, db) && waits_for(&plan, api, cache));
    assert!(!waits_for(&plan, admin, cache));
}

#[test]
fn a_converged_project_plans_nothing() {
    let project = project(STACK);
    let observed = converged(&project);
    assert!(up(&project, &observed).is_empty());
    let wait = UpOptions {
        wait: true,
        ..UpOptions::default()
    };
    let plan = plan_up(&project, &observed, &wait).unwrap();
    assert!(plan.is_empty(), "{plan}");
}

#[test]
fn a_plan_without_networks_volumes_or_images_listed_skips_resources() {
    let project = project(STACK);
    let mut observed = converged(&project);
    observed.networks = None;
    observed.volumes = None;
    observed.images.clear();
    assert!(up(&project, &observed).is_empty());
}

#[test]
fn changing_one_services_environment_recreates_only_that_service() {
    let before = project(STACK);
    let observed = converged(&before);
    let after = project(&STACK.replace("LEVEL: \"1\"", "LEVEL: \"2\""));
    let plan = up(&after, &observed);
    assert_respects_order(&plan);
    let id = &observed
        .containers
        .iter()
        .find(|c| c.name == "demo-api-1")
        .unwrap()
        .id[..12];
    assert_eq!(
        ordered(&plan),
        format!(
            "\
#0 wait for db service_healthy (required by api)
#1 create container {id}_demo-api-1 (config changed)
#2 stop container demo-api-1 (config changed) after #1
#3 remove container demo-api-1 (config changed) after #1, #2
#4 rename container {id}_demo-api-1 → demo-api-1 (config changed) after #1, #3
#5 start container demo-api-1 (config changed) after #0, #4
"
        )
    );
}

#[test]
fn a_recreated_dependency_restarts_its_restart_true_dependents_only() {
    let before = project(STACK);
    let observed = converged(&before);
    let after = project(&STACK.replace(
        "test: [\"CMD\", \"true\"]",
        "test: [\"CMD\", \"true\"], interval: 5s",
    ));
    let plan = up(&after, &observed);
    assert_respects_order(&plan);
    let stop_api = index_of(&plan, "stop container demo-api-1");
    let stop_db = index_of(&plan, "stop container demo-db-1");
    let start_db = index_of(&plan, "start container demo-db-1");
    let start_api = index_of(&plan, "start container demo-api-1");
    let wait_db = index_of(&plan, "wait for db service_healthy");
    assert!(waits_for(&plan, stop_db, stop_api), "{plan:#}");
    assert!(waits_for(&plan, wait_db, start_db));
    assert!(waits_for(&plan, start_api, wait_db));
    assert_eq!(plan.steps[stop_api].cause, "dependency db recreated");
    // admin waits on db without `restart: true`; web depends on api, which
    // was only restarted.
    assert!(!text(&plan).contains("demo-admin-1"), "{plan}");
    assert!(!text(&plan).contains("demo-web"), "{plan}");
}

#[test]
fn scaling_up_adds_numbers_and_scaling_down_removes_the_highest_first() {
    let one = project("services:\n  web:\n    image: busybox\n");
    let three = project("services:\n  web:\n    image: busybox\n    scale: 3\n");
    let plan = up(&three, &converged(&one));
    assert_eq!(
        text(&plan),
        "\
create container demo-web-2 (scale 1 → 3)
start container demo-web-2 (scale 1 → 3)
create container demo-web-3 (scale 1 → 3)
start container demo-web-3 (scale 1 → 3)
"
    );
    assert_eq!(
        plan.steps[0].action,
        Action::CreateContainer {
            service: "web".into(),
            number: 2,
            name: "demo-web-2".into(),
        }
    );

    let mut observed = converged(&three);
    observed.containers.reverse();
    let plan = up(&one, &observed);
    assert_eq!(
        text(&plan),
        "\
stop container demo-web-3 (scale 3 → 1)
remove container demo-web-3 (scale 3 → 1)
stop container demo-web-2 (scale 3 → 1)
remove container demo-web-2 (scale 3 → 1)
"
    );
}

#[test]
fn scaling_does_not_touch_the_containers_that_stay() {
    let one = project("services:\n  web:\n    image: busybox\n");
    let two = project("services:\n  web:\n    image: busybox\n    deploy: {replicas: 2}\n");
    let plan = up(&two, &converged(&one));
    assert!(!text(&plan).contains("demo-web-1"), "{plan}");
}

#[test]
fn orphans_are_removed_only_when_pruning_and_one_offs_never() {
    let project = project("services:\n  web:\n    image: busybox\n");
    let old = project_with_old_service();
    let mut observed = converged(&project);
    observed.containers.push(container(&old, "old", 1));
    let mut run = container(&project, "web", 1);
    run.name = "demo-web-run-0123456789ab".into();
    run.oneoff = true;
    run.number = 0;
    observed.containers.push(run);

    assert!(up(&project, &observed).is_empty());
    let prune = UpOptions {
        prune_orphans: true,
        ..UpOptions::default()
    };
    let plan = plan_up(&project, &observed, &prune).unwrap();
    assert_eq!(
        text(&plan),
        "\
stop container demo-old-1 (service old left the project)
remove container demo-old-1 (service old left the project)
"
    );
}

fn project_with_old_service() -> Project {
    project("services:\n  old:\n    image: busybox\n")
}

#[test]
fn new_containers_start_only_after_orphans_are_gone() {
    let project = project("services:\n  web:\n    image: busybox\n");
    let old = project_with_old_service();
    let mut observed = empty(&project);
    observed.containers.push(container(&old, "old", 1));
    let prune = UpOptions {
        prune_orphans: true,
        ..UpOptions::default()
    };
    let plan = plan_up(&project, &observed, &prune).unwrap();
    let removed = index_of(&plan, "remove container demo-old-1");
    let started = index_of(&plan, "start container demo-web-1");
    assert!(waits_for(&plan, started, removed), "{plan:#}");
}

const JOB: &str = r#"
services:
  migrate:
    image: busybox
    restart: "no"
    command: ["true"]
  app:
    image: busybox
    restart: always
    environment: {V: "1"}
    depends_on:
      migrate: {condition: service_completed_successfully}
"#;

#[test]
fn a_one_shot_job_that_exited_zero_is_not_run_again() {
    let project = project(JOB);
    let mut observed = converged(&project);
    for c in &mut observed.containers {
        if c.service == "migrate" {
            c.state = ContainerState::Exited(0);
        }
    }
    assert!(up(&project, &observed).is_empty());
    let wait = UpOptions {
        wait: true,
        ..UpOptions::default()
    };
    assert!(plan_up(&project, &observed, &wait).unwrap().is_empty());

    // A change to another service waits on the job but does not rerun it.
    let changed = self::project(&JOB.replace("V: \"1\"", "V: \"2\""));
    let plan = up(&changed, &observed);
    assert!(!text(&plan).contains("container demo-migrate-1"), "{plan}");
    assert!(text(&plan).contains("wait for migrate service_completed_successfully"));
}

#[test]
fn a_one_shot_job_that_failed_is_started_again() {
    let project = project(JOB);
    let mut observed = converged(&project);
    for c in &mut observed.containers {
        if c.service == "migrate" {
            c.state = ContainerState::Exited(1);
        }
    }
    let plan = up(&project, &observed);
    assert_eq!(text(&plan), "start container demo-migrate-1 (exited (1))\n");
}

#[test]
fn a_one_shot_job_with_changed_config_runs_again() {
    let project = project(JOB);
    let mut observed = converged(&project);
    for c in &mut observed.containers {
        if c.service == "migrate" {
            c.state = ContainerState::Exited(0);
        }
    }
    let changed = self::project(&JOB.replace("[\"true\"]", "[\"sh\", \"-c\", \"true\"]"));
    let plan = up(&changed, &observed);
    let text = text(&plan);
    assert!(
        text.contains("start container demo-migrate-1 (config changed)"),
        "{text}"
    );
    assert!(
        !text.contains("stop container demo-migrate-1"),
        "an exited job is not stopped: {text}"
    );
    assert!(text.contains("remove container demo-migrate-1 (config changed)"));
}

#[test]
fn a_stopped_long_running_container_is_started() {
    let project = project("services:\n  web:\n    image: busybox\n    restart: always\n");
    let mut observed = converged(&project);
    observed.containers[0].state = ContainerState::Exited(0);
    assert_eq!(
        text(&up(&project, &observed)),
        "start container demo-web-1 (exited (0))\n"
    );
    observed.containers[0].state = ContainerState::Created;
    assert_eq!(
        text(&up(&project, &observed)),
        "start container demo-web-1 (created)\n"
    );
}

#[test]
fn an_unhealthy_container_is_restarted_only_when_asked() {
    let yaml = "services:\n  db:\n    image: busybox\n    restart: always\n    healthcheck: {test: [\"CMD\", \"true\"]}\n  web:\n    image: busybox\n    restart: always\n    depends_on: {db: {condition: service_healthy}}\n";
    let project = project(yaml);
    let mut observed = converged(&project);
    for c in &mut observed.containers {
        if c.service == "db" {
            c.health = Some(Health::Unhealthy);
        }
    }
    assert!(up(&project, &observed).is_empty(), "compose leaves it be");
    let options = UpOptions {
        restart_unhealthy: true,
        ..UpOptions::default()
    };
    let plan = plan_up(&project, &observed, &options).unwrap();
    assert_eq!(
        text(&plan),
        "stop container demo-db-1 (unhealthy)\nstart container demo-db-1 (unhealthy)\n"
    );
    assert_respects_order(&plan);
    let stop = index_of(&plan, "stop container demo-db-1");
    let start = index_of(&plan, "start container demo-db-1");
    assert!(waits_for(&plan, start, stop));
}

#[test]
fn a_container_changed_outside_stackd_is_replaced_when_named() {
    let project =
        project("services:\n  web:\n    image: busybox\n    restart: always\n    scale: 2\n");
    let observed = converged(&project);
    let options = UpOptions {
        replace: ["demo-web-2".to_string()].into(),
        ..UpOptions::default()
    };
    let plan = plan_up(&project, &observed, &options).unwrap();
    let text = text(&plan);
    assert!(
        text.contains("stop container demo-web-2 (changed outside stackd)"),
        "{text}"
    );
    assert!(!text.contains("demo-web-1"), "{text}");
}

const WEB: &str = "services:\n  web:\n    image: busybox\n    environment: {V: \"1\"}\n";

/// A replacement of `demo-web-1` interrupted after its create: the new
/// container under its temporary name, with the new config.
fn temporary(project: &Project, old: &ObservedContainer) -> ObservedContainer {
    let mut temp = container(project, "web", 1);
    temp.name = temporary_name(&old.id, &old.name);
    temp.id = hex(&temp.name);
    temp.state = ContainerState::Created;
    temp
}

#[test]
fn an_interrupted_replacement_whose_old_container_is_gone_is_finished() {
    let before = project(WEB);
    let after = project(&WEB.replace("\"1\"", "\"2\""));
    let old = container(&before, "web", 1);
    let temp = temporary(&after, &old);
    let mut observed = converged(&after);
    observed.containers.clear();
    observed.containers.push(temp.clone());
    assert_eq!(temp.replacement_for(), Some("demo-web-1"));
    let plan = up(&after, &observed);
    assert_respects_order(&plan);
    assert_eq!(
        ordered(&plan),
        format!(
            "\
#0 rename container {} → demo-web-1 (finish an interrupted replacement)
#1 start container demo-web-1 (finish an interrupted replacement) after #0
",
            temp.name
        )
    );
}

#[test]
fn an_interrupted_replacement_whose_old_container_remains_is_done_again() {
    let before = project(WEB);
    let after = project(&WEB.replace("\"1\"", "\"2\""));
    let old = container(&before, "web", 1);
    let temp = temporary(&after, &old);
    let mut observed = converged(&after);
    observed.containers.clear();
    observed.containers.push(old.clone());
    observed.containers.push(temp.clone());
    let plan = up(&after, &observed);
    assert_respects_order(&plan);
    assert_eq!(
        ordered(&plan),
        format!(
            "\
#0 remove container {t} (leftover of an interrupted replacement)
#1 create container {t} (config changed) after #0
#2 stop container demo-web-1 (config changed) after #1
#3 remove container demo-web-1 (config changed) after #1, #2
#4 rename container {t} → demo-web-1 (config changed) after #1, #3
#5 start container demo-web-1 (config changed) after #4
",
            t = temp.name
        )
    );
}

#[test]
fn an_interrupted_replacement_renamed_but_not_started_is_started() {
    let project = project(WEB);
    let mut observed = converged(&project);
    observed.containers[0].state = ContainerState::Created;
    assert_eq!(
        text(&up(&project, &observed)),
        "start container demo-web-1 (created)\n"
    );
}

#[test]
fn a_duplicate_container_number_keeps_the_container_with_the_final_name() {
    let project = project(WEB);
    let mut observed = converged(&project);
    let mut duplicate = container(&project, "web", 1);
    duplicate.name = "demo_web_1".into();
    duplicate.id = hex("dup");
    observed.containers.push(duplicate);
    assert_eq!(
        text(&up(&project, &observed)),
        "\
stop container demo_web_1 (duplicate of demo-web-1)
remove container demo_web_1 (duplicate of demo-web-1)
"
    );
}

#[test]
fn a_missing_external_network_is_refused_by_name() {
    let project = project(
        "services:\n  web:\n    image: busybox\n    networks: [shared]\nnetworks:\n  shared:\n    external: true\n    name: infra_shared\n",
    );
    let err = plan_up(&project, &empty(&project), &UpOptions::default()).unwrap_err();
    assert_eq!(err.reason(), "missing_external_network");
    assert!(err.to_string().contains("\"infra_shared\""), "{err}");

    let mut observed = empty(&project);
    observed.networks = Some(vec![ObservedNetwork {
        name: "infra_shared".into(),
        id: "n1".into(),
        key: String::new(),
        config_hash: String::new(),
    }]);
    let plan = up(&project, &observed);
    assert!(!text(&plan).contains("network"), "{plan}");
}

#[test]
fn a_missing_external_volume_is_refused_by_name() {
    let project = project(
        "services:\n  web:\n    image: busybox\n    volumes: [keep:/k]\nvolumes:\n  keep:\n    external: true\n",
    );
    let err = plan_up(&project, &empty(&project), &UpOptions::default()).unwrap_err();
    assert_eq!(
        err,
        PlanError::MissingExternalVolume {
            volume: "keep".into(),
            name: "keep".into()
        }
    );
}

#[test]
fn an_image_change_recreates_the_containers_that_use_it() {
    let project = project("services:\n  web:\n    image: busybox\n  other:\n    image: alpine\n");
    let mut observed = converged(&project);
    observed
        .images
        .insert("busybox".into(), Some("sha256:new".into()));
    let plan = up(&project, &observed);
    let text = text(&plan);
    assert!(
        text.contains("start container demo-web-1 (image changed)"),
        "{text}"
    );
    assert!(!text.contains("demo-other-1"), "{text}");
}

#[test]
fn a_missing_image_is_ensured_before_the_containers_are_created() {
    let project = project("services:\n  web:\n    image: busybox\n  built:\n    build: .\n");
    let mut observed = empty(&project);
    observed.images.insert("busybox".into(), None);
    observed.images.insert("demo-built".into(), None);
    let plan = up(&project, &observed);
    assert_respects_order(&plan);
    for service in ["built", "web"] {
        let image = index_of(&plan, &format!("ensure image for {service}"));
        let create = index_of(&plan, &format!("create container demo-{service}-1"));
        assert!(waits_for(&plan, create, image), "{plan:#}");
        assert_eq!(plan.steps[image].cause, "missing");
    }
}

#[test]
fn a_recreated_namespace_owner_recreates_the_services_sharing_it() {
    let yaml = "services:\n  vpn:\n    image: busybox\n    environment: {V: \"1\"}\n  app:\n    image: busybox\n    network_mode: service:vpn\n";
    let before = project(yaml);
    let after = project(&yaml.replace("\"1\"", "\"2\""));
    let plan = up(&after, &converged(&before));
    let text = text(&plan);
    assert!(
        text.contains("start container demo-app-1 (vpn recreated)"),
        "{text}"
    );
}

#[test]
fn up_wait_ends_with_a_wait_for_every_service_it_changed() {
    let project = project(JOB);
    let options = UpOptions {
        wait: true,
        ..UpOptions::default()
    };
    let plan = plan_up(&project, &empty(&project), &options).unwrap();
    assert_respects_order(&plan);
    let last = plan.steps.last().unwrap();
    assert_eq!(
        last.action,
        Action::WaitFor {
            service: "app".into(),
            condition: Condition::ServiceStarted
        }
    );
    assert_eq!(last.cause, "up --wait");
    // The job's completion is already awaited for `app`; no second wait.
    assert_eq!(text(&plan).matches("wait for migrate").count(), 1);
}

#[test]
fn up_wait_waits_for_an_unhealthy_service_even_when_nothing_changes() {
    let project = project(STACK);
    let mut observed = converged(&project);
    for c in &mut observed.containers {
        if c.service == "db" {
            c.health = Some(Health::Unhealthy);
        }
    }
    let options = UpOptions {
        wait: true,
        ..UpOptions::default()
    };
    let plan = plan_up(&project, &observed, &options).unwrap();
    assert_eq!(text(&plan), "wait for db service_healthy (up --wait)\n");
}

#[test]
fn force_recreate_replaces_every_container() {
    let project = project(WEB);
    let options = UpOptions {
        force_recreate: true,
        ..UpOptions::default()
    };
    let plan = plan_up(&project, &converged(&project), &options).unwrap();
    assert_eq!(text(&plan).matches("(forced)").count(), 5);
}

#[test]
fn an_empty_project_with_running_containers_is_refused() {
    let old = project_with_old_service();
    let mut empty_project = old.clone();
    empty_project.services.clear();
    let err = plan_up(
        &empty_project,
        &converged(&old),
        &UpOptions {
            prune_orphans: true,
            ..UpOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.reason(), "empty_project");
}

#[test]
fn a_fixed_container_name_cannot_be_scaled() {
    let mut project = project("services:\n  web:\n    image: busybox\n    container_name: web\n");
    if let Some(web) = project.services.get_mut("web") {
        web.scale = Some(2);
    }
    let err = plan_up(&project, &empty(&project), &UpOptions::default()).unwrap_err();
    assert_eq!(err.reason(), "container_name_with_scale");
}

#[test]
fn down_keeps_named_volumes_unless_asked_and_stops_dependents_first() {
    let project = project(STACK);
    let observed = converged(&project);
    let plan = plan_down("demo", Some(&project), &observed, false);
    assert_respects_order(&plan);
    let text = text(&plan);
    assert!(!text.contains("volume"), "{text}");
    assert!(text.contains("remove network default (down)"));
    let stop_api = index_of(&plan, "stop container demo-api-1");
    let stop_web = index_of(&plan, "stop container demo-web-1");
    let stop_db = index_of(&plan, "stop container demo-db-1");
    assert!(waits_for(&plan, stop_api, stop_web));
    assert!(waits_for(&plan, stop_db, stop_api));
    let network = index_of(&plan, "remove network default");
    let removed = index_of(&plan, "remove container demo-db-1");
    assert!(waits_for(&plan, network, removed));
    assert_eq!(text.matches("remove container").count(), 6);

    let plan = plan_down("demo", Some(&project), &observed, true);
    assert!(
        text_of(&plan).ends_with("remove volume data (down)\n"),
        "{plan}"
    );
    // Containers take their anonymous volumes with them, only with -v.
    assert_eq!(
        text_of(&plan)
            .matches("remove container demo-db-1 and its anonymous volumes (down)")
            .count(),
        1,
        "{plan}"
    );
}

fn text_of(plan: &Plan) -> String {
    plan.to_string()
}

#[test]
fn down_never_removes_external_networks_or_volumes() {
    let project = project(
        "services:\n  web:\n    image: busybox\n    networks: [shared]\n    volumes: [keep:/k]\nnetworks:\n  shared: {external: true}\nvolumes:\n  keep: {external: true}\n",
    );
    let mut observed = converged(&project);
    observed.networks = Some(vec![ObservedNetwork {
        name: "shared".into(),
        id: "n".into(),
        key: String::new(),
        config_hash: String::new(),
    }]);
    observed.volumes = Some(vec![ObservedVolume {
        name: "keep".into(),
        key: String::new(),
    }]);
    let plan = plan_down("demo", Some(&project), &observed, true);
    assert_eq!(
        text(&plan),
        "stop container demo-web-1 (down)\nremove container demo-web-1 and its anonymous volumes (down)\n"
    );
}

#[test]
fn down_without_a_project_removes_everything_labelled_by_engine_name() {
    let project = project(STACK);
    let mut observed = converged(&project);
    let old = project_with_old_service();
    observed.containers.push(container(&old, "old", 1));
    let plan = plan_down("demo", None, &observed, true);
    let text = text(&plan);
    assert_eq!(text.matches("remove container").count(), 7, "{text}");
    assert!(
        text.contains("remove network demo_default (down)"),
        "{text}"
    );
    assert!(text.contains("remove volume demo_data (down)"), "{text}");
}

#[test]
fn plans_serialize_to_json_with_the_action_inline() {
    let project = project("services:\n  web:\n    image: busybox\n");
    let plan = up(&project, &empty(&project));
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["steps"][1],
        serde_json::json!({
            "action": "create_container",
            "service": "web",
            "number": 1,
            "name": "demo-web-1",
            "cause": "missing",
            "after": [0]
        })
    );
}

#[test]
fn an_interrupted_replacement_outdated_since_is_finished_then_replaced() {
    let first = project(WEB);
    let second = project(&WEB.replace("\"1\"", "\"2\""));
    let third = project(&WEB.replace("\"1\"", "\"3\""));
    let old = container(&first, "web", 1);
    let temp = temporary(&second, &old);
    let mut observed = converged(&third);
    observed.containers = vec![temp.clone()];
    let plan = up(&third, &observed);
    assert_respects_order(&plan);
    let second_temp = temporary_name(&temp.id, "demo-web-1");
    assert_eq!(
        ordered(&plan),
        format!(
            "\
#0 rename container {t} → demo-web-1 (finish an interrupted replacement)
#1 create container {second_temp} (config changed)
#2 remove container demo-web-1 (config changed) after #0, #1
#3 rename container {second_temp} → demo-web-1 (config changed) after #1, #2
#4 start container demo-web-1 (config changed) after #3
",
            t = temp.name
        )
    );
}

#[test]
fn a_container_whose_name_changed_is_replaced_under_the_new_name() {
    let before = project(WEB);
    let after = project(&format!("{WEB}    container_name: web\n"));
    let plan = up(&after, &converged(&before));
    assert_respects_order(&plan);
    let old = container(&before, "web", 1);
    let temp = temporary_name(&old.id, "web");
    assert_eq!(
        text(&plan),
        format!(
            "\
create container {temp} (config changed)
stop container demo-web-1 (config changed)
remove container demo-web-1 (config changed)
rename container {temp} → web (config changed)
start container web (config changed)
"
        )
    );
}

#[test]
fn a_service_scaled_to_zero_is_removed_and_not_waited_on() {
    let yaml = "services:\n  db:\n    image: busybox\n    healthcheck: {test: [\"CMD\", \"true\"]}\n  app:\n    image: busybox\n    depends_on:\n      db: {condition: service_healthy}\n";
    let before = project(yaml);
    let mut observed = converged(&before);
    observed.containers.retain(|c| c.service == "db");
    let after = project(&yaml.replace(
        "  db:\n    image: busybox\n",
        "  db:\n    image: busybox\n    scale: 0\n",
    ));
    let plan = up(&after, &observed);
    assert_eq!(
        text(&plan),
        "\
stop container demo-db-1 (scale 1 → 0)
remove container demo-db-1 (scale 1 → 0)
create container demo-app-1 (missing)
start container demo-app-1 (missing)
"
    );
}

#[test]
fn a_service_that_joins_another_network_is_recreated() {
    let before = project(WEB);
    let after = project(&format!(
        "{WEB}    networks: [default, back]\nnetworks:\n  back: {{}}\n"
    ));
    let plan = up(&after, &converged(&before));
    let text = text(&plan);
    assert!(text.contains("create network back (missing)"), "{text}");
    assert!(text.contains("(config changed)"), "{text}");
    assert!(text.contains("rename container"), "{text}");
}

/// `web` of [`WEB`], stopped, attached to `demo_default` with id `joined`.
fn stopped_on_network(project: &Project, joined: &str) -> Observed {
    let mut observed = converged(project);
    let web = &mut observed.containers[0];
    web.state = ContainerState::Exited(137);
    web.networks = [("demo_default".to_string(), joined.to_string())].into();
    observed
}

#[test]
fn a_container_on_a_network_that_was_removed_or_recreated_is_recreated() {
    let project = project(WEB);
    let current = hex("default");
    // Same network: just started again.
    let plan = up(&project, &stopped_on_network(&project, &current));
    assert_eq!(text(&plan), "start container demo-web-1 (exited (137))\n");
    // Never started (no id yet): started.
    let plan = up(&project, &stopped_on_network(&project, ""));
    assert_eq!(text(&plan), "start container demo-web-1 (exited (137))\n");
    // A network of that name, but not the one it joined.
    let plan = up(&project, &stopped_on_network(&project, &hex("earlier")));
    assert!(
        text(&plan).contains("(network demo_default was recreated)"),
        "{plan}"
    );
    // The network is gone: created again, and the container with it.
    let mut observed = stopped_on_network(&project, &current);
    observed.networks = Some(Vec::new());
    let plan = up(&project, &observed);
    let text = text(&plan);
    assert!(text.contains("create network default (missing)"), "{text}");
    assert!(
        text.contains("(network demo_default was removed)"),
        "{text}"
    );
    // Networks not listed: nothing to compare with.
    let mut observed = stopped_on_network(&project, &hex("earlier"));
    observed.networks = None;
    assert!(!up(&project, &observed).to_string().contains("recreated"));
}

#[test]
fn a_container_missing_one_of_its_networks_is_recreated() {
    let project = project(&format!(
        "{WEB}    networks: [default, back]\nnetworks:\n  back: {{}}\n"
    ));
    let mut observed = converged(&project);
    observed.containers[0].networks = [("demo_default".to_string(), hex("default"))].into();
    let plan = up(&project, &observed);
    assert!(
        text(&plan).contains("(not attached to network demo_back)"),
        "{plan}"
    );
    observed.containers[0]
        .networks
        .insert("demo_back".into(), hex("back"));
    assert!(up(&project, &observed).is_empty());
}

#[test]
fn a_paused_container_is_unpaused_by_up() {
    let project = project(WEB);
    let mut observed = converged(&project);
    observed.containers[0].state = ContainerState::Paused;
    assert_eq!(
        text(&up(&project, &observed)),
        "start container demo-web-1 (paused)\n"
    );
}

#[test]
fn known_config_hashes_are_trusted_and_services_without_one_are_hashed() {
    let project = project(
        "services:\n  web:\n    image: busybox\n    restart: always\n  db:\n    image: busybox\n    restart: always\n",
    );
    let observed = converged(&project);
    let trusted = UpOptions {
        known_hashes: [("web".to_string(), config_hash(&project.services["web"]))].into(),
        ..UpOptions::default()
    };
    assert!(plan_up(&project, &observed, &trusted).unwrap().is_empty());

    // A hash known to differ from what runs recreates that service only:
    // the planner took it instead of hashing the service itself.
    let stale = UpOptions {
        known_hashes: [("web".to_string(), "another".to_string())].into(),
        ..UpOptions::default()
    };
    let text = text(&plan_up(&project, &observed, &stale).unwrap());
    assert!(text.contains("demo-web-1"), "{text}");
    assert!(!text.contains("demo-db-1"), "{text}");
}
