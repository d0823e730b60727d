//! `stackd wrap`: a Stack manifest whose `spec.compose` is the loaded model.
use std::io::Write;

use super::{load_and_warn, load_options, CliError, GlobalArgs};
use crate::load::LoadOptions;
use crate::model::{Project, Stack, StackSpec};

pub(super) fn run(
    global: &GlobalArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let options = load_options(global)?;
    let loaded = load_and_warn(&options, err)?;
    let mut project = loaded.project;
    // The loader resolved every path against the project directory; the
    // manifest is read back from there too (a Stack's paths are relative to
    // its own file), so paths inside it are written relative: the manifest
    // can be checked in and applied from another clone.
    let project_dir = crate::load::environment::prepare(&options)?.working_dir;
    project.make_paths_relative(&project_dir);
    let stack = wrap(project, active_profiles(&options))?;
    let mut text = serde_saphyr::to_string(&stack).map_err(CliError::YamlOutputFailed)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    out.write_all(super::config::escape_dollars(&text).as_bytes())?;
    Ok(())
}

/// The Stack for a loaded project, named after it. The profiles are kept in
/// the spec so that whoever applies the model selects the same services.
pub(super) fn wrap(project: Project, profiles: Vec<String>) -> Result<Stack, CliError> {
    let value = serde_json::to_value(&project).map_err(CliError::JsonOutputFailed)?;
    let name = value
        .get("name")
        .and_then(serde_json::Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or(CliError::ProjectUnnamed)?
        .to_owned();
    Ok(Stack::new(
        &name,
        StackSpec {
            compose: Some(project),
            profiles,
            ..StackSpec::default()
        },
    ))
}

/// `--profile` values, then those of `COMPOSE_PROFILES`, without repeats.
fn active_profiles(options: &LoadOptions) -> Vec<String> {
    let from_env = options
        .environment
        .get("COMPOSE_PROFILES")
        .map(|list| list.split(',').map(str::trim).filter(|p| !p.is_empty()))
        .into_iter()
        .flatten()
        .map(str::to_owned);
    let mut profiles: Vec<String> = Vec::new();
    for profile in options.profiles.iter().cloned().chain(from_env) {
        if !profiles.contains(&profile) {
            profiles.push(profile);
        }
    }
    profiles
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn project(name: &str) -> Project {
        serde_json::from_value(serde_json::json!({ "name": name })).unwrap()
    }

    #[test]
    fn the_stack_is_named_after_the_project() {
        let stack = wrap(project("agents"), vec![]).unwrap();
        assert_eq!(stack.metadata.name.as_deref(), Some("agents"));
        assert!(stack.spec.compose.is_some());
        assert!(stack.spec.prune);
    }

    #[test]
    fn a_project_without_a_name_cannot_be_wrapped() {
        assert!(matches!(
            wrap(project(""), vec![]),
            Err(CliError::ProjectUnnamed)
        ));
    }

    #[test]
    fn profiles_come_from_the_flags_then_compose_profiles() {
        let options = LoadOptions {
            profiles: vec!["debug".into(), "ops".into()],
            environment: [("COMPOSE_PROFILES".to_owned(), "ops, web".to_owned())].into(),
            ..LoadOptions::default()
        };
        assert_eq!(active_profiles(&options), ["debug", "ops", "web"]);
    }

    #[test]
    fn the_manifest_has_api_version_and_kind() {
        let stack = wrap(project("agents"), vec![]).unwrap();
        let yaml = serde_saphyr::to_string(&stack).unwrap();
        assert!(yaml.contains("apiVersion: stackd.dev/v1alpha1"), "{yaml}");
        assert!(yaml.contains("kind: Stack"), "{yaml}");
        assert!(!yaml.contains("status"), "{yaml}");
    }

    #[test]
    fn paths_under_the_project_directory_become_relative_and_others_stay() {
        let mut project: Project = serde_json::from_value(serde_json::json!({
            "name": "orchestrator",
            "services": {"web": {
                "image": "busybox",
                "build": {"context": "/srv/orchestrator/web"},
                "volumes": [
                    {"type": "bind", "source": "/srv/orchestrator/static", "target": "/www"},
                    {"type": "bind", "source": "/var/log", "target": "/logs"},
                    {"type": "volume", "source": "data", "target": "/data"},
                ],
            }},
            "secrets": {"db": {"file": "/srv/orchestrator/secrets/db.txt"}},
            "configs": {"app": {"file": "/srv/orchestrator"}},
        }))
        .unwrap();
        project.make_paths_relative(Path::new("/srv/orchestrator"));
        let web = &project.services["web"];
        assert_eq!(web.build.as_ref().unwrap().context, "./web");
        let sources: Vec<&str> = web.volumes.iter().map(|v| v.source.as_str()).collect();
        assert_eq!(sources, ["./static", "/var/log", "data"]);
        assert_eq!(project.secrets["db"].file, "./secrets/db.txt");
        assert_eq!(project.configs["app"].file, ".");
    }
}
