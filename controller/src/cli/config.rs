//! `stackd config`: prints the normalized model, its service names, or
//! nothing (`-q`, validation only).
use std::io::Write;

use super::{load_and_warn, load_options, CliError, ConfigArgs, GlobalArgs, ModelFormat};
use crate::model::Project;

pub(super) fn run(
    global: &GlobalArgs,
    args: &ConfigArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let loaded = load_and_warn(&load_options(global)?, err)?;
    if args.quiet {
        return Ok(());
    }
    if args.services {
        for name in service_names(&loaded.project)? {
            writeln!(out, "{name}")?;
        }
        return Ok(());
    }
    write_model(&loaded.project, args.format, out)
}

/// Writes the model in `format`, ending with a newline.
pub(super) fn write_model(
    project: &Project,
    format: ModelFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut text = match format {
        ModelFormat::Json => {
            serde_json::to_string_pretty(project).map_err(CliError::JsonOutputFailed)?
        }
        ModelFormat::Yaml => {
            serde_saphyr::to_string(project).map_err(CliError::YamlOutputFailed)?
        }
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    out.write_all(escape_dollars(&text).as_bytes())?;
    Ok(())
}

/// The printed model is compose source again: a literal `$` must read back
/// as itself, not as the start of a variable, so it is written `$$` (as
/// `docker compose config` does).
pub(super) fn escape_dollars(text: &str) -> String {
    text.replace('$', "$$")
}

/// Service names in the order the model serializes them. Read through the
/// serialized form so this does not depend on how the model stores services.
fn service_names(project: &Project) -> Result<Vec<String>, CliError> {
    let value = serde_json::to_value(project).map_err(CliError::JsonOutputFailed)?;
    Ok(value
        .get("services")
        .and_then(serde_json::Value::as_object)
        .map(|services| services.keys().cloned().collect())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Project {
        serde_json::from_value(serde_json::json!({"name": "demo"})).unwrap()
    }

    #[test]
    fn json_output_ends_with_a_newline() {
        let project = demo();
        let mut out = Vec::new();
        write_model(&project, ModelFormat::Json, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("}\n"));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["name"], "demo");
    }

    #[test]
    fn yaml_output_holds_the_project_name() {
        let project = demo();
        let mut out = Vec::new();
        write_model(&project, ModelFormat::Yaml, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("name: demo"));
    }

    #[test]
    fn a_literal_dollar_is_printed_escaped_so_it_reads_back_unchanged() {
        assert_eq!(escape_dollars("echo $HOME and $$"), "echo $$HOME and $$$$");
    }

    #[test]
    fn a_model_without_services_has_no_service_names() {
        assert!(service_names(&Project::default()).unwrap().is_empty());
    }
}
