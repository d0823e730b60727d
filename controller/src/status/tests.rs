//! Condition transitions, generation counting and the YAML form of a status.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;

const T0: &str = "2026-11-25T16:30:00Z";
const T1: &str = "2026-11-25T16:31:00Z";
const T2: &str = "2026-11-25T16:32:00Z";
const T3: &str = "2026-11-25T16:33:00Z";

fn ts(text: &str) -> Timestamp {
    text.to_string()
}

fn services(ready: u32, desired: u32) -> BTreeMap<String, ServiceStatus> {
    BTreeMap::from([(
        "web".to_string(),
        ServiceStatus {
            desired,
            ready,
            image: "busybox".into(),
        },
    )])
}

fn fresh() -> StackStatus {
    let mut status = StackStatus::new("demo", "stacks/demo.yaml", &ts(T0));
    status.observe_spec("hash-1");
    status
}

fn state(status: &StackStatus, t: ConditionType) -> (ConditionStatus, &str) {
    let c = status.condition(t).unwrap();
    (c.status, c.reason.as_str())
}

fn since(status: &StackStatus, t: ConditionType) -> &str {
    &status.condition(t).unwrap().last_transition_time
}

fn error(message: &str) -> LastError {
    LastError {
        message: message.into(),
        file: Some("stacks/demo.yaml".into()),
        line: Some(7),
        column: Some(12),
        at: ts(T1),
    }
}

use ConditionStatus::{False, True, Unknown};
use ConditionType::{Ready, Reconciling, Stalled};

#[test]
fn a_new_status_has_the_three_conditions_unknown_and_generation_0() {
    let status = StackStatus::new("demo", "stacks/demo.yaml", &ts(T0));
    let types: Vec<_> = status.conditions.iter().map(|c| c.type_).collect();
    assert_eq!(types, [Ready, Reconciling, Stalled]);
    assert!(status
        .conditions
        .iter()
        .all(|c| c.status == Unknown && c.last_transition_time == T0));
    assert_eq!((status.generation, status.observed_generation), (0, 0));
    assert!(!status.is_ready());
    assert!(!status.suspended);
}

#[test]
fn the_first_spec_seen_is_generation_1() {
    let status = fresh();
    assert_eq!(status.generation, 1);
    assert_eq!(status.spec_hash, "hash-1");
    assert_eq!(status.observed_generation, 0);
}

#[test]
fn the_generation_moves_only_when_the_spec_content_changes() {
    let mut status = fresh();
    status.observe_spec("hash-1");
    assert_eq!(status.generation, 1);
    status.observe_spec("hash-2");
    assert_eq!(
        (status.generation, status.spec_hash.as_str()),
        (2, "hash-2")
    );
    status.observe_spec("hash-2");
    status.observe_spec("hash-1");
    assert_eq!(
        status.generation, 3,
        "going back to old content is a change too"
    );
}

#[test]
fn converging_makes_the_stack_ready_and_observes_the_generation() {
    let mut status = fresh();
    status.reconciling(reason::PROGRESSING, "applying", &ts(T1));
    assert_eq!(state(&status, Reconciling), (True, "Progressing"));
    assert_eq!(state(&status, Ready), (False, "Progressing"));
    assert_eq!(
        status.observed_generation, 0,
        "not observed until it finishes"
    );

    status.ready(services(2, 2), &ts(T2));
    assert!(status.is_ready());
    assert_eq!(state(&status, Ready), (True, "Succeeded"));
    assert_eq!(state(&status, Reconciling), (False, "Succeeded"));
    assert_eq!(state(&status, Stalled), (False, "Succeeded"));
    assert_eq!(status.observed_generation, 1);
    assert_eq!(status.services, services(2, 2));
    assert_eq!(
        status.condition(Ready).unwrap().message,
        "1 service, 2/2 replicas ready"
    );
}

#[test]
fn a_transition_time_moves_only_when_the_status_changes() {
    let mut status = fresh();
    status.reconciling(reason::PROGRESSING, "applying", &ts(T1));
    status.ready(services(1, 1), &ts(T1));
    assert_eq!(since(&status, Ready), T1);

    // Ready again, with a different message: no transition.
    status.reconciling(reason::PROGRESSING, "resync", &ts(T2));
    status.ready(services(1, 1), &ts(T2));
    assert_eq!(since(&status, Ready), T1);
    assert_eq!(since(&status, Stalled), T1);
    // Reconciling did go True and back to False.
    assert_eq!(since(&status, Reconciling), T2);

    // The reason changes but the status stays False: no transition.
    status.progressing(services(0, 1), "Starting", "1 container starting", &ts(T3));
    assert_eq!(since(&status, Stalled), T1);
    assert_eq!(state(&status, Stalled), (False, "Starting"));
    assert_eq!(since(&status, Ready), T3, "Ready went True → False");
}

#[test]
fn a_resync_of_an_unchanged_spec_does_not_unset_ready() {
    let mut status = fresh();
    status.ready(services(1, 1), &ts(T1));
    status.reconciling(reason::PROGRESSING, "resync", &ts(T2));
    assert!(status.is_ready());
    assert_eq!(state(&status, Reconciling), (True, "Progressing"));
    assert_eq!(since(&status, Ready), T1);
}

#[test]
fn a_new_spec_unsets_ready_and_stalled_when_its_reconcile_starts() {
    let mut status = fresh();
    status.stalled(reason::LOAD_FAILED, error("bad file"), &ts(T1));
    status.observe_spec("hash-2");
    status.reconciling(reason::PROGRESSING, "applying", &ts(T2));
    assert_eq!(state(&status, Stalled), (False, "Progressing"));
    assert_eq!(state(&status, Ready), (False, "Progressing"));
    assert_eq!(
        status.condition(Ready).unwrap().message,
        "generation 2 not applied yet"
    );
    assert_eq!(
        status.last_error,
        Some(error("bad file")),
        "kept until it clears"
    );
}

#[test]
fn progressing_is_not_ready_but_reconciling_and_clears_the_last_error() {
    let mut status = fresh();
    status.retrying(error("engine said 500"), Duration::from_secs(4), &ts(T1));
    status.progressing(services(1, 2), "Starting", "1 replica starting", &ts(T2));
    assert_eq!(state(&status, Ready), (False, "Starting"));
    assert_eq!(state(&status, Reconciling), (True, "Starting"));
    assert_eq!(state(&status, Stalled), (False, "Starting"));
    assert_eq!(
        status.condition(Ready).unwrap().message,
        "1 replica starting"
    );
    assert_eq!(status.observed_generation, 1);
    assert_eq!(status.services, services(1, 2));
    assert_eq!(status.last_error, None);
}

#[test]
fn stalled_keeps_the_services_and_records_the_error() {
    let mut status = fresh();
    status.ready(services(2, 2), &ts(T1));
    status.observe_spec("hash-2");
    status.stalled(
        reason::LOAD_FAILED,
        error("stacks/demo.yaml:7:12: bad"),
        &ts(T2),
    );
    assert_eq!(state(&status, Stalled), (True, "LoadFailed"));
    assert_eq!(state(&status, Ready), (False, "LoadFailed"));
    assert_eq!(state(&status, Reconciling), (False, "LoadFailed"));
    assert_eq!(
        status.condition(Stalled).unwrap().message,
        "stacks/demo.yaml:7:12: bad"
    );
    assert_eq!(status.services, services(2, 2), "what runs keeps running");
    assert_eq!(status.observed_generation, 2);
    let last = status.last_error.as_ref().unwrap();
    assert_eq!(last.location().unwrap(), "stacks/demo.yaml:7:12");
    assert!(!status.is_ready());
}

#[test]
fn recovering_from_a_stall_clears_it_and_the_error() {
    let mut status = fresh();
    status.stalled(
        reason::CRASH_LOOP,
        error("web-1 restarted 5 times"),
        &ts(T1),
    );
    status.observe_spec("hash-2");
    status.ready(services(1, 1), &ts(T2));
    assert_eq!(state(&status, Stalled), (False, "Succeeded"));
    assert_eq!(since(&status, Stalled), T2);
    assert_eq!(status.last_error, None);
    assert!(status.is_ready());
}

#[test]
fn retrying_says_when_and_keeps_reconciling() {
    let mut status = fresh();
    status.retrying(
        error("cannot create container: 500"),
        Duration::from_secs(8),
        &ts(T1),
    );
    assert_eq!(state(&status, Reconciling), (True, "RetryScheduled"));
    assert_eq!(state(&status, Ready), (False, "ReconcileFailed"));
    assert_eq!(state(&status, Stalled), (False, "RetryScheduled"));
    assert_eq!(
        status.condition(Reconciling).unwrap().message,
        "retrying in 8s (at 2026-11-25T16:31:08Z): cannot create container: 500"
    );
    assert_eq!(status.observed_generation, 1);
    assert_eq!(
        status.last_error.as_ref().unwrap().message,
        "cannot create container: 500"
    );
}

#[test]
fn suspending_stops_reconciling_and_resuming_leaves_the_rest_alone() {
    let mut status = fresh();
    status.ready(services(1, 1), &ts(T1));
    status.suspend(true, &ts(T2));
    assert!(status.suspended);
    assert_eq!(state(&status, Reconciling), (False, "Suspended"));
    assert!(status.is_ready(), "suspending changes nothing that runs");
    assert_eq!(status.headline().unwrap().reason, "Suspended");
    status.suspend(false, &ts(T3));
    assert!(!status.suspended);
    assert_eq!(state(&status, Reconciling), (False, "Suspended"));
    assert_eq!(since(&status, Reconciling), T1);
}

#[test]
fn the_headline_is_the_condition_that_explains_the_state() {
    let mut status = fresh();
    status.ready(services(1, 1), &ts(T1));
    assert_eq!(status.headline().unwrap().type_, Ready);
    status.progressing(services(0, 1), "Starting", "starting", &ts(T2));
    assert_eq!(status.headline().unwrap().type_, Reconciling);
    status.stalled(reason::ROLLED_BACK, error("never healthy"), &ts(T3));
    assert_eq!(status.headline().unwrap().type_, Stalled);
}

#[test]
fn snake_case_error_reasons_become_camel_case() {
    assert_eq!(camel_case_reason("invalid_replicas"), "InvalidReplicas");
    assert_eq!(camel_case_reason("crash-loop"), "CrashLoop");
    assert_eq!(camel_case_reason("RetryScheduled"), "RetryScheduled");
    assert_eq!(camel_case_reason("500_from_engine"), "R500FromEngine");
    assert_eq!(camel_case_reason(" _ "), "Unknown");
    let mut status = fresh();
    status.stalled("dependency_cycle", error("a → b → a"), &ts(T1));
    assert_eq!(state(&status, Stalled), (True, "DependencyCycle"));
}

#[test]
fn huge_messages_are_cut_at_a_character_boundary() {
    let mut status = fresh();
    let message = "é".repeat(MAX_MESSAGE_BYTES);
    status.stalled(reason::LOAD_FAILED, error(&message), &ts(T1));
    let kept = &status.condition(Stalled).unwrap().message;
    assert!(kept.len() <= MAX_MESSAGE_BYTES);
    assert!(kept.ends_with('…'));
    assert!(status.last_error.as_ref().unwrap().message.len() <= MAX_MESSAGE_BYTES);
}

#[test]
fn totals_sum_ready_and_desired_over_services() {
    let mut status = fresh();
    let mut all = services(1, 2);
    all.insert(
        "db".into(),
        ServiceStatus {
            desired: 1,
            ready: 1,
            image: "postgres".into(),
        },
    );
    status.ready(all, &ts(T1));
    assert_eq!(status.replica_totals(), (2, 3));
    assert_eq!(
        status.condition(Ready).unwrap().message,
        "2 services, 2/3 replicas ready"
    );
}

#[test]
fn a_status_round_trips_through_yaml_in_kubernetes_spelling() {
    let mut status = fresh();
    status.ready(services(2, 2), &ts(T1));
    status.observe_spec("hash-2");
    status.stalled(reason::LOAD_FAILED, error("yes: no # 0755"), &ts(T2));
    let yaml = to_yaml(&status).unwrap();
    for expected in [
        "stack: demo\n",
        "observedGeneration: 2\n",
        "specHash: hash-2\n",
        "type: Ready\n",
        "lastTransitionTime:",
        "lastError:\n",
        "line: 7\n",
    ] {
        assert!(yaml.contains(expected), "{expected:?} missing from\n{yaml}");
    }
    assert!(
        yaml.contains("status: 'True'") || yaml.contains("status: \"True\""),
        "condition statuses are strings:\n{yaml}"
    );
    assert_eq!(from_yaml(&yaml).unwrap(), status);
}

#[test]
fn a_status_without_optional_fields_still_reads() {
    let yaml = "stack: demo\nsource: x\ngeneration: 1\nspecHash: h\nobservedGeneration: 0\nconditions: []\n";
    let status = from_yaml(yaml).unwrap();
    assert!(status.services.is_empty() && status.last_error.is_none() && !status.suspended);
}

#[test]
fn garbage_is_not_a_status() {
    for text in ["", "[1, 2]", "stack: demo\n", "stack: [\n"] {
        let err = from_yaml(text).unwrap_err();
        assert_eq!(err.reason(), "status_unparsable", "{text:?}");
    }
}
