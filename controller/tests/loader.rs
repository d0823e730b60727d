//! The loader end to end on real files: discovery, `.env`, names,
//! multi-file merges, extends, include, profiles, Stack manifests, errors.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use stackd::load::{load_project, stack::load_stack_manifest, LoadError, LoadOptions, Loaded};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(&path, text).expect("write");
    path
}

fn options(dir: &Path) -> LoadOptions {
    let mut environment = BTreeMap::new();
    environment.insert("HOME".to_string(), "/home/tester".to_string());
    LoadOptions {
        working_dir: dir.to_path_buf(),
        environment,
        ..LoadOptions::default()
    }
}

fn load(options: &LoadOptions) -> Loaded {
    match load_project(options) {
        Ok(loaded) => loaded,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn json(loaded: &Loaded) -> serde_json::Value {
    serde_json::to_value(&loaded.project).expect("serializes")
}

fn err(options: &LoadOptions) -> String {
    match load_project(options) {
        Ok(_) => panic!("load should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn default_files_are_found_with_their_override_and_the_directory_names_the_project() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("My_Stack");
    write(
        &dir,
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n",
    );
    write(
        &dir,
        "compose.override.yaml",
        "services:\n  web:\n    environment: [MODE=dev]\n",
    );
    let loaded = load(&options(&dir));
    let out = json(&loaded);
    assert_eq!(out["name"], "my_stack");
    assert_eq!(out["services"]["web"]["environment"]["MODE"], "dev");
}

#[test]
fn dotenv_values_interpolate_and_the_process_environment_wins() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(dir, ".env", "TAG=1.0\nPORT=8080\n");
    write(
        dir,
        "compose.yaml",
        "services:\n  web:\n    image: \"nginx:${TAG}\"\n    ports: [\"${PORT}:80\"]\n",
    );
    let mut opts = options(dir);
    opts.environment.insert("PORT".into(), "9090".into());
    let out = json(&load(&opts));
    assert_eq!(out["services"]["web"]["image"], "nginx:1.0");
    assert_eq!(out["services"]["web"]["ports"][0]["published"], "9090");
}

#[test]
fn project_name_flag_wins_over_the_environment_and_the_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(
        dir,
        "compose.yaml",
        "name: fromfile\nservices:\n  a: {image: x}\n",
    );
    let mut opts = options(dir);
    assert_eq!(json(&load(&opts))["name"], "fromfile");
    opts.environment
        .insert("COMPOSE_PROJECT_NAME".into(), "fromenv".into());
    assert_eq!(json(&load(&opts))["name"], "fromenv");
    opts.project_name = Some("fromflag".into());
    assert_eq!(json(&load(&opts))["name"], "fromflag");
}

#[test]
fn an_invalid_project_name_flag_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(tmp.path(), "compose.yaml", "services:\n  a: {image: x}\n");
    let mut opts = options(tmp.path());
    opts.project_name = Some("Bad Name".into());
    assert!(err(&opts).contains("invalid project name"));
}

#[test]
fn compose_file_variable_lists_the_files_to_merge() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(
        dir,
        "base.yaml",
        "services:\n  a: {image: x, environment: {A: '1'}}\n",
    );
    write(
        dir,
        "prod.yaml",
        "services:\n  a: {environment: {B: '2'}}\n",
    );
    let mut opts = options(dir);
    opts.environment
        .insert("COMPOSE_FILE".into(), "base.yaml:prod.yaml".into());
    let out = json(&load(&opts));
    assert_eq!(
        out["services"]["a"]["environment"],
        serde_json::json!({"A": "1", "B": "2"})
    );
}

#[test]
fn profiles_enable_services_and_compose_profiles_is_honoured() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(
        dir,
        "compose.yaml",
        "services:\n  a: {image: x}\n  debug: {image: x, profiles: [debug]}\n",
    );
    let mut opts = options(dir);
    let out = json(&load(&opts));
    assert!(out["services"].get("debug").is_none());
    opts.environment
        .insert("COMPOSE_PROFILES".into(), "debug".into());
    let out = json(&load(&opts));
    assert!(out["services"].get("debug").is_some());
}

#[test]
fn extends_from_another_file_resolves_its_paths_against_that_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(
        dir,
        "common/base.yaml",
        "services:\n  base:\n    image: x\n    env_file: [base.env]\n    volumes: [./data:/data]\n",
    );
    write(dir, "common/base.env", "FROM_BASE=yes\n");
    write(dir, "compose.yaml", "services:\n  web:\n    extends: {file: common/base.yaml, service: base}\n    environment: {OWN: '1'}\n");
    let out = json(&load(&options(dir)));
    let web = &out["services"]["web"];
    assert_eq!(web["environment"]["FROM_BASE"], "yes");
    assert_eq!(web["environment"]["OWN"], "1");
    assert_eq!(
        web["volumes"][0]["source"],
        format!("{}/common/data", dir.display())
    );
}

#[test]
fn an_extends_cycle_is_refused_with_the_chain_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n",
    );
    let message = err(&options(tmp.path()));
    assert!(message.contains("compose.yaml:"), "{message}");
    assert!(message.contains("circular reference"), "{message}");
}

#[test]
fn include_imports_services_with_their_own_env_and_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(
        dir,
        "db/compose.yaml",
        "services:\n  db:\n    image: \"postgres:${PG}\"\n    volumes: [./init:/init]\n",
    );
    write(dir, "db/.env", "PG=16\n");
    write(
        dir,
        "compose.yaml",
        "include: [db/compose.yaml]\nservices:\n  app: {image: x, depends_on: [db]}\n",
    );
    let out = json(&load(&options(dir)));
    assert_eq!(out["services"]["db"]["image"], "postgres:16");
    assert_eq!(
        out["services"]["db"]["volumes"][0]["source"],
        format!("{}/db/init", dir.display())
    );
}

#[test]
fn an_include_cycle_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(
        dir,
        "compose.yaml",
        "include: [other.yaml]\nservices:\n  a: {image: x}\n",
    );
    write(
        dir,
        "other.yaml",
        "include: [compose.yaml]\nservices:\n  b: {image: x}\n",
    );
    assert!(err(&options(dir)).contains("include cycle"));
}

#[test]
fn an_undefined_volume_is_reported_with_file_line_and_column() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  a:\n    image: x\n    volumes:\n      - data:/data\n",
    );
    let message = err(&options(tmp.path()));
    assert!(message.contains("compose.yaml:5:9"), "{message}");
    assert!(message.contains("undefined volume data"), "{message}");
}

#[test]
fn a_missing_required_variable_names_the_field_and_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  a:\n    image: \"x:${TAG:?set a tag}\"\n",
    );
    let message = err(&options(tmp.path()));
    assert!(message.contains("compose.yaml:3:12"), "{message}");
    assert!(message.contains("services.a.image"), "{message}");
    assert!(message.contains("set a tag"), "{message}");
}

#[test]
fn truncated_yaml_is_reported_at_the_line_that_breaks() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  a:\n    image: \"x\n",
    );
    let message = err(&options(tmp.path()));
    assert!(message.contains("compose.yaml:"), "{message}");
}

#[test]
fn a_stack_manifest_loads_its_inline_compose_and_errors_point_into_the_manifest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let good = write(
        dir,
        "stack.yaml",
        "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: agents}\nspec:\n  compose:\n    services:\n      web: {image: nginx}\n",
    );
    let stack = match load_stack_manifest(&good, &options(dir)) {
        Ok(stack) => stack,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(stack.name, "agents");
    assert!(stack.prune);
    assert_eq!(stack.loaded.project.name, "agents");
    let bad = write(
        dir,
        "bad.yaml",
        "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: agents}\nspec:\n  compose:\n    services:\n      web: {image: nginx, networks: [missing]}\n",
    );
    let message = match load_stack_manifest(&bad, &options(dir)) {
        Ok(_) => panic!("should fail"),
        Err(e @ LoadError::Invalid { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error kind: {e}"),
    };
    assert!(message.contains("bad.yaml:7:"), "{message}");
}

#[test]
fn a_stack_manifest_can_point_at_compose_files_beside_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(dir, "compose.yaml", "services:\n  a: {image: x}\n");
    write(
        dir,
        "compose.prod.yaml",
        "services:\n  a: {deploy: {replicas: 3}}\n",
    );
    let manifest = write(
        dir,
        "stack.yaml",
        "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: files}\nspec:\n  composeFiles: [compose.yaml, compose.prod.yaml]\n",
    );
    let stack = match load_stack_manifest(&manifest, &options(dir)) {
        Ok(stack) => stack,
        Err(e) => panic!("{e}"),
    };
    let out = serde_json::to_value(&stack.loaded.project).expect("json");
    assert_eq!(out["services"]["a"]["deploy"]["replicas"], 3);
}

#[test]
fn network_mode_set_in_an_override_means_no_default_network() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(dir, "compose.yaml", "services:\n  a:\n    image: x\n");
    write(
        dir,
        "host.yaml",
        "services:\n  a:\n    network_mode: host\n",
    );
    let mut opts = options(dir);
    opts.files = vec![dir.join("compose.yaml"), dir.join("host.yaml")];
    let out = json(&load(&opts));
    assert_eq!(out["services"]["a"]["network_mode"], "host");
    assert!(out["services"]["a"].get("networks").is_none());
    assert!(out.get("networks").is_none());
}

#[test]
fn scale_sets_deploy_replicas_when_the_service_has_a_deploy_section() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(tmp.path(), "compose.yaml", "services:\n  a:\n    image: x\n    scale: 3\n    deploy: {resources: {limits: {cpus: '0.5'}}}\n");
    let out = json(&load(&options(tmp.path())));
    assert_eq!(out["services"]["a"]["deploy"]["replicas"], 3);
}

#[test]
fn an_override_repeating_an_extra_host_in_the_other_syntax_adds_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(
        dir,
        "compose.yaml",
        "services:\n  a:\n    image: x\n    extra_hosts: [\"db:10.0.0.5\"]\n",
    );
    write(
        dir,
        "compose.override.yaml",
        "services:\n  a:\n    extra_hosts: [\"db:10.0.0.5\", \"cache=10.0.0.6\"]\n",
    );
    let out = json(&load(&options(dir)));
    assert_eq!(
        out["services"]["a"]["extra_hosts"],
        serde_json::json!(["cache=10.0.0.6", "db=10.0.0.5"])
    );
}

#[test]
fn a_memory_limit_written_as_a_float_is_dropped_as_compose_drops_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  a:\n    image: x\n    mem_limit: 2e9\n",
    );
    let out = json(&load(&options(tmp.path())));
    assert!(out["services"]["a"].get("mem_limit").is_none(), "{out}");
}
