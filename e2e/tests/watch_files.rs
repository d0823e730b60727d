//! `stackd watch` follows the files: an edit recreates exactly the service
//! it changes (in place or saved by rename, in the compose file, `.env`, an
//! `env_file` inside or outside the watched directory, or a Stack
//! manifest), a folder that appears is a new stack, a folder that goes is a
//! stack torn down (its named volumes kept), and a change to one stack
//! leaves the others alone.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use stackd_e2e::{
    holds_for, network_exists, volume_exists, wait_until, Snapshot, WatchDir, IDLE_COMMAND, IMAGE,
};

/// How long a converge may take on a loaded machine.
const CONVERGE: Duration = Duration::from_secs(90);

/// A long-running service (with `restart: always`) and `extra` lines
/// indented under it.
fn idle(name: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    image: {IMAGE}\n    command: {IDLE_COMMAND}\n    restart: always\n{extra}"
    )
}

fn id_of(snapshot: &BTreeMap<String, Snapshot>, name: &str) -> Result<Snapshot> {
    snapshot
        .get(name)
        .cloned()
        .with_context(|| format!("no container {name} in {snapshot:#?}"))
}

/// `db` with a healthcheck; `api` restarts with it (`restart: true`);
/// `worker` only starts after it; `other` is on its own.
fn four_services(db_value: &str, other_value: &str) -> String {
    [
        "services:\n".to_string(),
        idle(
            "db",
            &format!(
                "    environment: {{V: \"{db_value}\"}}\n    healthcheck: {{test: [\"CMD\", \"true\"], interval: 1s}}\n"
            ),
        ),
        idle(
            "api",
            "    depends_on: {db: {condition: service_healthy, restart: true}}\n",
        ),
        idle("worker", "    depends_on: {db: {condition: service_started}}\n"),
        idle("other", &format!("    environment: {{V: \"{other_value}\"}}\n")),
    ]
    .concat()
}

#[test]
fn an_edit_recreates_only_the_changed_service_and_restarts_the_dependents_that_ask() -> Result<()> {
    let Some(mut watch) = WatchDir::new("wf-edit")? else {
        return Ok(());
    };
    let stack = watch.write_compose("app", &four_services("1", "1"))?;
    watch.start(&["--resync", "1h"])?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    let before = watch.snapshot(&stack)?;
    assert_eq!(before.len(), 4, "{before:#?}");
    let name = |service: &str| format!("{stack}-{service}-1");

    // An edit in place of db's environment. Waits are on a generation past
    // the one before each edit: a save the watcher reads half-written
    // counts one more.
    let generation = watch.generation(&stack)?;
    watch.write_compose("app", &four_services("2", "1"))?;
    watch.wait_ready_at(&stack, generation + 1, CONVERGE)?;
    let after = watch.snapshot(&stack)?;
    let (db0, db1) = (id_of(&before, &name("db"))?, id_of(&after, &name("db"))?);
    assert_ne!(db0.id, db1.id, "db is recreated");
    let (api0, api1) = (id_of(&before, &name("api"))?, id_of(&after, &name("api"))?);
    assert_eq!(api0.id, api1.id, "api is restarted, not recreated");
    assert!(
        api1.started_at > api0.started_at,
        "api (restart: true) restarted with db: {api0:?} then {api1:?}"
    );
    for service in ["worker", "other"] {
        assert_eq!(
            id_of(&before, &name(service))?,
            id_of(&after, &name(service))?,
            "{service} is neither recreated nor restarted"
        );
    }
    assert!(after.values().all(|c| c.status == "running"), "{after:#?}");

    // The way editors save: a temporary file renamed over the original.
    let generation = watch.generation(&stack)?;
    watch.save_by_rename("app", "compose.yaml", &four_services("2", "2"))?;
    watch.wait_ready_at(&stack, generation + 1, CONVERGE)?;
    let last = watch.snapshot(&stack)?;
    assert_ne!(
        id_of(&after, &name("other"))?.id,
        id_of(&last, &name("other"))?.id,
        "other is recreated"
    );
    for service in ["db", "api", "worker"] {
        assert_eq!(
            id_of(&after, &name(service))?,
            id_of(&last, &name(service))?,
            "{service} is untouched by a change to other"
        );
    }
    Ok(())
}

fn env_stack() -> String {
    [
        "services:\n".to_string(),
        idle(
            "app",
            "    environment: {TAG: \"${TAG}\"}\n    env_file: [app.env, ../../shared.env]\n",
        ),
        idle("still", ""),
    ]
    .concat()
}

#[test]
fn editing_dotenv_or_an_env_file_reconciles_the_stack() -> Result<()> {
    let Some(mut watch) = WatchDir::new("wf-env")? else {
        return Ok(());
    };
    let stack = watch.write_compose("env", &env_stack())?;
    watch.write_file("env", ".env", "TAG=one\n")?;
    watch.write_file("env", "app.env", "MODE=a\n")?;
    // Outside the watched directory: watched through its folder.
    let shared = watch.outside_path("shared.env");
    std::fs::write(&shared, "SHARED=x\n")?;
    watch.start(&["--resync", "1h"])?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    let app = format!("{stack}-app-1");
    let still = format!("{stack}-still-1");
    let first = watch.snapshot(&stack)?;
    let env = |key: &str| -> Result<Option<String>> {
        Ok(watch
            .containers(&stack)?
            .into_iter()
            .find(|c| c.name == app)
            .and_then(|c| c.env(key)))
    };
    assert_eq!(env("TAG")?.as_deref(), Some("one"));
    assert_eq!(env("MODE")?.as_deref(), Some("a"));
    assert_eq!(env("SHARED")?.as_deref(), Some("x"));

    // An edit, the variable it changes, and the value it sets.
    type Edit<'a> = (&'a dyn Fn() -> Result<()>, &'a str, &'a str);
    let edits: [Edit; 3] = [
        (
            &|| watch.write_file("env", ".env", "TAG=two\n"),
            "TAG",
            "two",
        ),
        (
            &|| watch.save_by_rename("env", "app.env", "MODE=b\n"),
            "MODE",
            "b",
        ),
        (
            &|| Ok(std::fs::write(&shared, "SHARED=y\n")?),
            "SHARED",
            "y",
        ),
    ];
    let mut generation = 1;
    let mut previous = id_of(&first, &app)?;
    for (edit, key, value) in edits {
        edit()?;
        generation += 1;
        watch.wait_ready_at(&stack, generation, CONVERGE)?;
        let now = watch.snapshot(&stack)?;
        let recreated = id_of(&now, &app)?;
        assert_ne!(previous.id, recreated.id, "{key}: app is recreated");
        assert_eq!(env(key)?.as_deref(), Some(value), "{key}");
        assert_eq!(
            id_of(&first, &still)?,
            id_of(&now, &still)?,
            "{key}: a service that reads none of these files is untouched"
        );
        previous = recreated;
    }
    Ok(())
}

#[test]
fn a_new_folder_is_a_new_stack_and_a_removed_one_is_torn_down_keeping_its_volumes() -> Result<()> {
    let Some(mut watch) = WatchDir::new("wf-add")? else {
        return Ok(());
    };
    watch.start(&["--resync", "1h"])?;
    let stack = watch.write_compose(
        "new",
        &[
            "services:\n".to_string(),
            idle("web", "    volumes: [data:/data]\n"),
            "volumes:\n  data: {}\n".to_string(),
        ]
        .concat(),
    )?;
    watch.wait_ready_at(&stack, 1, CONVERGE)?;
    let running = watch.containers(&stack)?;
    assert_eq!(running.len(), 1);
    assert!(running[0].is_running());
    let volume = format!("{stack}_data");
    assert!(volume_exists(&volume)?);
    assert!(network_exists(&format!("{stack}_default"))?);

    watch.remove_stack("new")?;
    watch.wait_status_gone(&stack, CONVERGE)?;
    wait_until(CONVERGE, "the stack's containers are removed", || {
        Ok(watch.containers(&stack)?.is_empty())
    })?;
    assert!(volume_exists(&volume)?, "named volume {volume} kept");
    assert!(!network_exists(&format!("{stack}_default"))?);
    Ok(())
}

fn manifest_spec(value: &str) -> String {
    format!(
        r#"  compose:
    services:
      web:
        image: {IMAGE}
        command: {IDLE_COMMAND}
        restart: always
        environment: {{V: "{value}"}}
      side:
        image: {IMAGE}
        command: {IDLE_COMMAND}
        restart: always
"#
    )
}

#[test]
fn a_stack_manifest_is_converged_and_an_edit_recreates_only_the_changed_service() -> Result<()> {
    let Some(mut watch) = WatchDir::new("wf-manifest")? else {
        return Ok(());
    };
    let stack = watch.write_manifest("m", &manifest_spec("1"))?;
    watch.start(&["--resync", "1h"])?;
    let status = watch.wait_ready_at(&stack, 1, CONVERGE)?;
    ensure!(
        status["source"]
            .as_str()
            .is_some_and(|s| s.ends_with("stack.yaml")),
        "the status names the manifest: {status:#}"
    );
    let before = watch.snapshot(&stack)?;
    assert_eq!(before.len(), 2, "{before:#?}");

    watch.write_manifest("m", &manifest_spec("2"))?;
    watch.wait_ready_at(&stack, 2, CONVERGE)?;
    let after = watch.snapshot(&stack)?;
    let web = format!("{stack}-web-1");
    let side = format!("{stack}-side-1");
    assert_ne!(id_of(&before, &web)?.id, id_of(&after, &web)?.id);
    assert_eq!(id_of(&before, &side)?, id_of(&after, &side)?);
    let env = watch
        .containers(&stack)?
        .into_iter()
        .find(|c| c.name == web)
        .and_then(|c| c.env("V"));
    assert_eq!(env.as_deref(), Some("2"));
    Ok(())
}

#[test]
fn a_change_to_one_stack_does_not_reconcile_another() -> Result<()> {
    let Some(mut watch) = WatchDir::new("wf-isolation")? else {
        return Ok(());
    };
    let one = |v: &str| {
        [
            "services:\n".to_string(),
            idle("web", &format!("    environment: {{V: \"{v}\"}}\n")),
        ]
        .concat()
    };
    let a = watch.write_compose("a", &one("1"))?;
    let b = watch.write_compose("b", &one("1"))?;
    watch.start(&["--resync", "1h"])?;
    watch.wait_ready_at(&a, 1, CONVERGE)?;
    watch.wait_ready_at(&b, 1, CONVERGE)?;
    let b_reconciles = watch.settled_reconciles(&b, Duration::from_millis(1500), CONVERGE)?;
    assert!(b_reconciles >= 1.0);
    let b_before = watch.snapshot(&b)?;

    watch.write_compose("a", &one("2"))?;
    watch.wait_ready_at(&a, 2, CONVERGE)?;
    watch.settled_reconciles(&a, Duration::from_millis(1500), CONVERGE)?;
    holds_for(Duration::from_secs(1), "b is not reconciled", || {
        Ok(watch.reconciles(&b)? == b_reconciles)
    })
    .with_context(|| format!("log:\n{}", watch.log()))?;
    assert_eq!(watch.snapshot(&b)?, b_before);
    let b_status = watch.status(&b)?.context("b has a status")?;
    assert_eq!(b_status["generation"].as_u64(), Some(1));
    Ok(())
}
