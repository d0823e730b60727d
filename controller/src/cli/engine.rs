//! The commands that talk to the Docker engine: `up`, `down`, `plan`, `ps`.
//! Each loads the project, observes the engine, plans, and (for `up` and
//! `down`) executes the plan with progress on stderr.
use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::progress::Progress;
use super::{
    load_options, print_warnings, CliError, DownArgs, GlobalArgs, PlanArgs, PlanFormat, PsArgs,
    TableFormat, UpArgs,
};
use crate::docker::{Backend, DockerBackend, ProjectMeta};
use crate::load::{LoadOptions, Loaded};
use crate::model::Project;
use crate::plan::{self, Observed, Plan};
use crate::reconcile::execute::{execute, Event, ExecOptions};

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::RuntimeFailed)
}

fn parse_timeout(text: &Option<String>) -> Result<Option<Duration>, CliError> {
    let Some(text) = text else { return Ok(None) };
    // A bare number is seconds, as docker compose reads `--timeout 10`.
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Some(Duration::from_secs(seconds)));
    }
    let parsed = crate::model::parse_duration(text).map_err(|e| CliError::BadDuration {
        text: text.clone(),
        reason: e.to_string(),
    })?;
    parsed
        .to_std()
        .map(Some)
        .ok_or_else(|| CliError::BadDuration {
            text: text.clone(),
            reason: "must not be negative".into(),
        })
}

/// Loads the project with the checks that go beyond compose: nothing is
/// changed on the engine for a project that would fail at run time.
fn load_strict(options: &LoadOptions, err: &mut dyn Write) -> Result<Loaded, CliError> {
    let loaded = crate::load::load_project_strict(options, super::host_capacity())?;
    print_warnings(&loaded.warnings, err)?;
    Ok(loaded)
}

/// Observes cheaply first (containers and images only); only a plan that
/// changes something needs networks and volumes listed, and is made again
/// with them. A project that is already converged costs two list calls.
pub(super) async fn observe_and_plan(
    backend: &DockerBackend,
    project: &Project,
    options: &plan::UpOptions,
) -> Result<(Observed, Plan), CliError> {
    let observed = backend.observe(project, false).await?;
    let first = plan::plan_up(project, &observed, options)?;
    if first.is_empty() {
        return Ok((observed, first));
    }
    let observed = backend.observe(project, true).await?;
    let plan = plan::plan_up(project, &observed, options)?;
    Ok((observed, plan))
}

/// Runs a plan, drawing progress on stderr. The executor reports events
/// over a channel so that drawing (which holds stderr) stays on this task.
pub(super) async fn run_plan(
    backend: &DockerBackend,
    project: &Project,
    meta: &ProjectMeta,
    plan: &Plan,
    timeout: Option<Duration>,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let terminal = std::io::stderr().is_terminal();
    let started = tokio::time::Instant::now();
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel::<(Event, Duration)>();
    let options = ExecOptions {
        timeout,
        ..ExecOptions::default()
    };
    let run = async move {
        let mut report = move |event: Event| {
            // The receiver lives until the run ends; a send cannot fail before.
            let _ = events.send((event, started.elapsed()));
        };
        execute(plan, project, meta, backend, &options, &mut report).await
    };
    let draw = async {
        let mut progress = Progress::new(err, terminal, &project.name);
        let mut ticks = tokio::time::interval(Duration::from_millis(120));
        loop {
            tokio::select! {
                event = received.recv() => {
                    let Some((event, at)) = event else { break };
                    match &event {
                        Event::Started { index } => progress.started(&plan.steps[*index], at)?,
                        Event::Finished { index, .. } => progress.finished(&plan.steps[*index], at)?,
                        Event::Failed { index, error } => progress.failed(&plan.steps[*index], at, error)?,
                        Event::Cancelled { index } => progress.cancelled(&plan.steps[*index], at)?,
                    }
                }
                _ = ticks.tick(), if terminal => progress.tick(started.elapsed())?,
            }
        }
        progress.finish(started.elapsed())
    };
    let (result, drawn) = tokio::join!(run, draw);
    drawn?;
    result.map(drop).map_err(CliError::from)
}

/// `stackd up`.
pub(super) fn up(global: &GlobalArgs, args: &UpArgs, err: &mut dyn Write) -> Result<(), CliError> {
    let options = load_options(global)?;
    let loaded = load_strict(&options, err)?;
    let timeout = parse_timeout(&args.timeout)?;
    let project = loaded.project;
    let environment = crate::load::project_environment(&options);
    let meta = ProjectMeta::for_project(&project, &options, &environment);
    let up_options = plan::UpOptions {
        prune_orphans: !args.no_prune,
        wait: args.wait,
        ..Default::default()
    };
    runtime()?.block_on(async {
        let backend = DockerBackend::new();
        let (_, plan) = observe_and_plan(&backend, &project, &up_options).await?;
        if plan.is_empty() {
            return Ok(());
        }
        let result = run_plan(&backend, &project, &meta, &plan, timeout, err).await;
        let run = super::rollback::Run {
            backend: &backend,
            project: &project,
            meta: &meta,
            options: &up_options,
            timeout,
        };
        super::rollback::after_update(&run, &plan, result, err).await
    })
}

/// `stackd down`: by project name alone, or from the files.
pub(super) fn down(
    global: &GlobalArgs,
    args: &DownArgs,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let options = load_options(global)?;
    let timeout = parse_timeout(&args.timeout)?;
    // With only -p, the project need not load: everything labelled with its
    // name goes (named volumes only with -v).
    let project = project_by_name_or_files(global, &options, err)?;
    let environment = crate::load::project_environment(&options);
    let meta = ProjectMeta::for_project(&project, &options, &environment);
    runtime()?.block_on(async {
        let backend = DockerBackend::new();
        let observed = backend.observe(&project, true).await?;
        let plan = plan::plan_down(&project.name, Some(&project), &observed, args.volumes);
        if plan.is_empty() {
            return Ok(());
        }
        run_plan(&backend, &project, &meta, &plan, timeout, err).await
    })
}

/// The project `down` and `ps` act on: with only `-p` and no compose file
/// around, everything labelled with that name, without loading anything;
/// otherwise the loaded project.
fn project_by_name_or_files(
    global: &GlobalArgs,
    options: &LoadOptions,
    err: &mut dyn Write,
) -> Result<Project, CliError> {
    if let (Some(name), true) = (&global.project_name, global.files.is_empty()) {
        if !has_default_file(options) {
            return Ok(Project {
                name: name.clone(),
                ..Project::default()
            });
        }
    }
    let loaded = crate::load::load_project(options)?;
    print_warnings(&loaded.warnings, err)?;
    Ok(loaded.project)
}

fn has_default_file(options: &LoadOptions) -> bool {
    options.environment.contains_key("COMPOSE_FILE")
        || crate::load::environment::DEFAULT_FILE_NAMES
            .iter()
            .any(|n| options.working_dir.join(n).is_file())
}

/// `stackd plan`: exit 0 when converged, 2 when changes are pending.
pub(super) fn plan(
    global: &GlobalArgs,
    args: &PlanArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let options = load_options(global)?;
    let loaded = load_strict(&options, err)?;
    let project = loaded.project;
    let up_options = plan::UpOptions {
        prune_orphans: true,
        ..Default::default()
    };
    let plan = runtime()?.block_on(async {
        let backend = DockerBackend::new();
        observe_and_plan(&backend, &project, &up_options)
            .await
            .map(|(_, plan)| plan)
    })?;
    match args.format {
        PlanFormat::Text => {
            if plan.is_empty() {
                writeln!(out, "nothing to do: {} is converged", project.name)?;
            } else {
                write!(out, "{plan}")?;
            }
        }
        PlanFormat::Json => {
            let text = serde_json::to_string_pretty(&plan).map_err(CliError::JsonOutputFailed)?;
            writeln!(out, "{text}")?;
        }
    }
    if plan.is_empty() {
        Ok(())
    } else {
        Err(CliError::ChangesPending {
            steps: plan.steps.len(),
        })
    }
}

/// One row of `stackd ps`.
#[derive(Debug, serde::Serialize)]
struct PsRow {
    name: String,
    service: String,
    number: u32,
    state: String,
    health: Option<String>,
    image: String,
}

/// `stackd ps`.
pub(super) fn ps(
    global: &GlobalArgs,
    args: &PsArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let options = load_options(global)?;
    let project = project_by_name_or_files(global, &options, err)?;
    let observed = runtime()?.block_on(async {
        let backend = DockerBackend::new();
        backend.observe(&project, false).await
    })?;
    let mut rows: Vec<PsRow> = observed
        .containers
        .iter()
        .map(|c| PsRow {
            name: c.name.clone(),
            service: c.service.clone(),
            number: c.number,
            state: state_text(c.state),
            health: c.health.map(|h| format!("{h:?}").to_lowercase()),
            image: c.image.clone(),
        })
        .collect();
    rows.sort_by(|a, b| (&a.service, a.number, &a.name).cmp(&(&b.service, b.number, &b.name)));
    match args.format {
        TableFormat::Json => {
            let text = serde_json::to_string_pretty(&rows).map_err(CliError::JsonOutputFailed)?;
            writeln!(out, "{text}")?;
        }
        TableFormat::Table => {
            let mut table: Vec<[String; 4]> = vec![[
                "NAME".into(),
                "SERVICE".into(),
                "STATE".into(),
                "IMAGE".into(),
            ]];
            for row in &rows {
                let state = match &row.health {
                    Some(health) => format!("{} ({health})", row.state),
                    None => row.state.clone(),
                };
                table.push([
                    row.name.clone(),
                    row.service.clone(),
                    state,
                    row.image.clone(),
                ]);
            }
            let widths: Vec<usize> = (0..4)
                .map(|i| {
                    table
                        .iter()
                        .map(|r| r[i].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in table {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                writeln!(out, "{}", line.join("   ").trim_end())?;
            }
        }
    }
    Ok(())
}

fn state_text(state: plan::ContainerState) -> String {
    match state {
        plan::ContainerState::Exited(code) => format!("exited ({code})"),
        other => format!("{other:?}").to_lowercase(),
    }
}
