//! `stackd convert`: the project as Kubernetes objects, written as one
//! YAML stream or one file per object, with a warning on stderr for every
//! compose key that did not carry over.
use std::io::Write;
use std::path::Path;

use super::{load_and_warn, load_options, process_environment, CliError, ConvertArgs, GlobalArgs};
use crate::kube::sources;
use crate::kube::translate::{translate, TranslateOptions, Translation};

pub(super) fn run(
    global: &GlobalArgs,
    args: &ConvertArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let load = load_options(global)?;
    let loaded = load_and_warn(&load, err)?;
    // Secrets and configs sourced from a variable read it as compose
    // does: from the process environment over the project's `.env`.
    let (project_dir, environment) = match crate::load::environment::prepare(&load) {
        Ok(setup) => (Some(setup.working_dir), setup.env),
        Err(_) => (None, process_environment()),
    };
    let options = TranslateOptions {
        namespace: args.namespace.clone(),
        allow_host_path: args.allow_host_path,
        allow_host_network: args.allow_host_network,
        allow_host_pid: args.allow_host_pid,
        allow_host_ipc: args.allow_host_ipc,
        wait_image: args.wait_image.clone(),
        contents: sources::read(&loaded.project, &environment, project_dir.as_deref()),
    };
    let translation = translate(&loaded.project, &options)?;
    for warning in &translation.warnings {
        writeln!(err, "warning: {warning}")?;
    }
    match args.output.as_deref() {
        None | Some("-") => out.write_all(translation.to_yaml()?.as_bytes())?,
        Some(dir) => write_files(&translation, Path::new(dir), err)?,
    }
    Ok(())
}

/// One file per object in `dir` (created if missing).
fn write_files(translation: &Translation, dir: &Path, err: &mut dyn Write) -> Result<(), CliError> {
    let failed = |source| CliError::OutputFileFailed {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    for object in &translation.objects {
        let path = dir.join(object.file_name());
        std::fs::write(&path, object.to_yaml()?).map_err(|source| CliError::OutputFileFailed {
            path: path.display().to_string(),
            source,
        })?;
    }
    writeln!(
        err,
        "wrote {} objects to {}",
        translation.objects.len(),
        dir.display()
    )?;
    Ok(())
}
