//! Unit tests of the translation, one file per part; the names are the
//! rules. Every translation made here is also checked for silent drops and
//! by [`super::check`].
#![allow(clippy::unwrap_used)]

mod environment;
mod files;
mod networks;
mod output;
mod pod;
mod probes;
mod services;
mod waits;
mod workloads;

use serde_json::{json, Value};

use super::{check, keys_present, translate, Object, Scope, TranslateOptions, Translation};
use crate::model::Project;

/// A project from its printed (model) form; the name defaults to `shop`.
pub fn project(mut value: Value) -> Project {
    if value.get("name").is_none() {
        value["name"] = json!("shop");
    }
    serde_json::from_value(value).unwrap()
}

/// Translates with the default options.
pub fn run(value: Value) -> Translation {
    run_with(value, &TranslateOptions::default())
}

/// Translates, then checks that nothing was dropped silently and that the
/// objects pass [`check::check`].
pub fn run_with(value: Value, options: &TranslateOptions) -> Translation {
    let project = project(value);
    let translation = translate(&project, options).unwrap();
    let present = keys_present(&project);
    let dropped = translation.unaccounted(&present);
    assert!(dropped.is_empty(), "dropped silently: {dropped:?}");
    let problems = check::check(&translation.objects);
    assert!(problems.is_empty(), "{problems:#?}");
    translation
}

/// The object of `kind` named `name`.
pub fn find<'a>(translation: &'a Translation, kind: &str, name: &str) -> &'a Object {
    translation
        .objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name)
        .unwrap_or_else(|| {
            let all: Vec<String> = translation
                .objects
                .iter()
                .map(|o| format!("{} {}", o.kind(), o.name()))
                .collect();
            panic!("no {kind} {name}; have {all:?}")
        })
}

/// The object of `kind` named `name`, as JSON.
pub fn json_of(translation: &Translation, kind: &str, name: &str) -> Value {
    serde_json::to_value(find(translation, kind, name)).unwrap()
}

/// Whether there is an object of `kind` named `name`.
pub fn has(translation: &Translation, kind: &str, name: &str) -> bool {
    translation
        .objects
        .iter()
        .any(|o| o.kind() == kind && o.name() == name)
}

/// The warning about `key` of service `service`, if any.
pub fn warning<'a>(translation: &'a Translation, service: &str, key: &str) -> Option<&'a str> {
    translation
        .warnings
        .iter()
        .find(|w| w.scope == Scope::Service(service.into()) && w.key == key)
        .map(|w| w.message.as_str())
}

/// The pod spec of a workload, as JSON.
pub fn pod_spec(translation: &Translation, kind: &str, name: &str) -> Value {
    json_of(translation, kind, name)["spec"]["template"]["spec"].clone()
}

/// The main container of a workload, as JSON.
pub fn container(translation: &Translation, kind: &str, name: &str) -> Value {
    pod_spec(translation, kind, name)["containers"][0].clone()
}
