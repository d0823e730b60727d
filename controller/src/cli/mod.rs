//! The `stackd` command line: the only layer that formats for humans.
//!
//! [`Cli`] is the clap grammar of DESIGN.md's CLI contract; [`run`] executes a
//! parsed command, writing results to `out` and warnings to `err`, and
//! [`render_error`] turns a failure into the one line printed on stderr.
use std::collections::BTreeMap;
use std::error::Error as _;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::load::{LoadError, LoadOptions, Loaded};

mod completions;
mod config;
mod controller;
mod convert;
mod crd;
mod engine;
mod progress;
mod rollback;
mod status;
mod validate;
mod watch;
mod wrap;

pub use crd::crd_yaml;

/// `stackd`: keeps Docker Compose stacks converged.
// The project options are declared on both sides of the command name rather
// than as clap `global` arguments: clap lets the occurrences after the
// command replace those before it, and `stackd -f a.yaml config -f b.yaml`
// must merge both files (see `project_args`).
#[derive(Debug, Parser)]
#[command(name = "stackd", version, about, propagate_version = true)]
pub struct Cli {
    /// Project options given before the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The project options from both sides of the command name: files and
    /// profiles in command-line order, single values from after the command
    /// winning.
    pub fn project_args(&self) -> GlobalArgs {
        let before = &self.global;
        let after = self.command.global();
        GlobalArgs {
            files: before.files.iter().chain(&after.files).cloned().collect(),
            project_name: after
                .project_name
                .clone()
                .or_else(|| before.project_name.clone()),
            profiles: before
                .profiles
                .iter()
                .chain(&after.profiles)
                .cloned()
                .collect(),
            env_files: before
                .env_files
                .iter()
                .chain(&after.env_files)
                .cloned()
                .collect(),
            project_directory: after
                .project_directory
                .clone()
                .or_else(|| before.project_directory.clone()),
        }
    }
}

/// Project options shared by every command, as docker compose accepts them.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Compose file; repeat to merge several, in order.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (wins over COMPOSE_PROJECT_NAME and the top-level `name:`).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Profile to activate; repeat for several.
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Environment file to read instead of `<project dir>/.env`; repeatable.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Directory relative paths resolve against (default: the first file's directory).
    #[arg(long = "project-directory", value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
}

/// The commands of the CLI contract.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the normalized compose model.
    Config(ConfigArgs),
    /// Check compose files and Stack manifests; exit 1 on the first problem in each.
    Validate(ValidateArgs),
    /// Print a Stack manifest wrapping the loaded project.
    Wrap(WrapArgs),
    /// Print the Stack CustomResourceDefinition.
    Crd(CrdArgs),
    /// Show what `up` would change (exit 0: nothing, 2: changes pending).
    Plan(PlanArgs),
    /// Converge the project once.
    Up(UpArgs),
    /// Stop and remove the project's containers and networks.
    Down(DownArgs),
    /// List the project's containers.
    Ps(PsArgs),
    /// Keep every stack under a directory converged.
    Watch(WatchArgs),
    /// Show the status of watched stacks.
    Status(StatusArgs),
    /// Translate the project to Kubernetes YAML.
    Convert(ConvertArgs),
    /// Run the in-cluster controller for Stack resources.
    Controller(ControllerArgs),
    /// Print a shell completion script (bash, zsh or fish).
    Completions(CompletionsArgs),
}

impl Command {
    /// The project options given after the command name.
    pub fn global(&self) -> &GlobalArgs {
        match self {
            Command::Config(a) => &a.global,
            Command::Validate(a) => &a.global,
            Command::Wrap(a) => &a.global,
            Command::Crd(a) => &a.global,
            Command::Plan(a) => &a.global,
            Command::Up(a) => &a.global,
            Command::Down(a) => &a.global,
            Command::Ps(a) => &a.global,
            Command::Watch(a) => &a.global,
            Command::Status(a) => &a.global,
            Command::Convert(a) => &a.global,
            Command::Controller(a) => &a.global,
            Command::Completions(a) => &a.global,
        }
    }
}

/// `stackd config`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ModelFormat::Yaml)]
    pub format: ModelFormat,
    /// Print only the service names, one per line.
    #[arg(long)]
    pub services: bool,
    /// Only validate; print nothing.
    #[arg(short, long)]
    pub quiet: bool,
}

/// How `config` prints the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelFormat {
    /// YAML, as `docker compose config` prints by default.
    Yaml,
    /// JSON, the shape of `docker compose config --format json`.
    Json,
}

/// `stackd validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Compose files, Stack manifests, or directories holding them.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `stackd wrap`.
#[derive(Debug, Clone, Args)]
pub struct WrapArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `stackd crd`.
#[derive(Debug, Clone, Args)]
pub struct CrdArgs {
    /// Project options given after the command name (accepted, unused).
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `stackd plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

/// How `plan` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// One line per action.
    Text,
    /// Machine-readable.
    Json,
}

/// `stackd up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Wait until every service is running and healthy.
    #[arg(long)]
    pub wait: bool,
    /// How long to wait (e.g. `2m`).
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// Keep containers of services no longer in the model.
    #[arg(long)]
    pub no_prune: bool,
}

/// `stackd down`.
#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Also remove named volumes.
    #[arg(short, long)]
    pub volumes: bool,
    /// How long to wait for containers to stop (e.g. `10s`).
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
}

/// `stackd ps`.
#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
}

/// Table or JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    /// Aligned columns.
    Table,
    /// Machine-readable.
    Json,
}

/// `stackd watch`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Directory of Stack manifests and compose projects.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where status files are written.
    #[arg(long, value_name = "D")]
    pub state_dir: Option<PathBuf>,
    /// Address of the /metrics endpoint.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Full resync period (e.g. `5m`).
    #[arg(long, value_name = "DUR")]
    pub resync: Option<String>,
    /// How failed reconciles are retried.
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `stackd status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Stack to show (default: all).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Where status files are read from (default: as for `watch`,
    /// `$XDG_STATE_HOME/stackd`, else `~/.local/state/stackd`).
    #[arg(long, value_name = "D")]
    pub state_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    pub format: StatusFormat,
}

/// How `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// `stackd convert`.
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Namespace of the generated objects.
    #[arg(short, long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Output directory (one file per object), or `-` for one stream on stdout (the default).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<String>,
    /// Mount host bind paths as hostPath volumes (else an emptyDir stands in).
    #[arg(long)]
    pub allow_host_path: bool,
    /// Honour `network_mode: host` (hostNetwork).
    #[arg(long)]
    pub allow_host_network: bool,
    /// Honour `pid: host` (hostPID).
    #[arg(long)]
    pub allow_host_pid: bool,
    /// Honour `ipc: host` (hostIPC).
    #[arg(long)]
    pub allow_host_ipc: bool,
    /// Image of the init containers that wait for dependencies (needs sh and kubectl).
    #[arg(long, value_name = "IMAGE")]
    pub wait_image: Option<String>,
}

/// `stackd controller`.
#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    /// Project options given after the command name.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Watch only this namespace (default: all).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Allow `privileged: true`.
    #[arg(long)]
    pub allow_privileged: bool,
    /// Allow bind mounts (as hostPath volumes).
    #[arg(long)]
    pub allow_host_path: bool,
    /// Allow `network_mode: host` (hostNetwork).
    #[arg(long)]
    pub allow_host_network: bool,
    /// Allow `pid: host` (hostPID).
    #[arg(long)]
    pub allow_host_pid: bool,
    /// Allow `ipc: host` (hostIPC).
    #[arg(long)]
    pub allow_host_ipc: bool,
    /// Allow `cap_add`.
    #[arg(long)]
    pub allow_capabilities: bool,
    /// Image of the init containers that wait for dependencies (needs sh and kubectl).
    #[arg(long, value_name = "IMAGE")]
    pub wait_image: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, value_name = "NAME", default_value = "stackd-controller")]
    pub lease_name: String,
    /// Namespace of the Lease (default: --namespace, else the client's namespace).
    #[arg(long, value_name = "NS")]
    pub lease_namespace: Option<String>,
    /// How long a leader that stopped renewing keeps the Lease (default `15s`).
    #[arg(long, value_name = "DUR")]
    pub lease_duration: Option<String>,
    /// This replica's identity in the Lease (default: $POD_NAME, else the host name, with a unique suffix).
    #[arg(long, value_name = "ID")]
    pub identity: Option<String>,
    /// Reconcile a Ready Stack again after this long (default `5m`).
    #[arg(long, value_name = "DUR")]
    pub resync: Option<String>,
    /// How failed reconciles are retried.
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// The retry flags `watch` and `controller` share.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RetryArgs {
    /// First retry delay after a failed reconcile (default `500ms`).
    #[arg(long, value_name = "DUR")]
    pub retry_base: Option<String>,
    /// Longest retry delay (default `60s`).
    #[arg(long, value_name = "DUR")]
    pub retry_cap: Option<String>,
}

impl RetryArgs {
    /// Overrides `base` and `cap` with the flags given.
    pub(super) fn apply(&self, base: &mut Duration, cap: &mut Duration) -> Result<(), CliError> {
        if let Some(given) = watch::duration("--retry-base", &self.retry_base)? {
            *base = given;
        }
        if let Some(given) = watch::duration("--retry-cap", &self.retry_cap)? {
            *cap = given;
        }
        Ok(())
    }
}

/// `stackd completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// Project options given after the command name (accepted, unused).
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells `stackd completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// bash (source it, or put it in bash-completion's completions directory).
    Bash,
    /// zsh (put it on `$fpath` as `_stackd`).
    Zsh,
    /// fish (put it in `~/.config/fish/completions/stackd.fish`).
    Fish,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The compose project failed to load.
    #[error(transparent)]
    LoadFailed(#[from] LoadError),
    /// The loaded project has no name to give its Stack.
    #[error("the project has no name; give one with -p")]
    ProjectUnnamed,
    /// The current directory could not be determined.
    #[error("cannot determine the current directory")]
    NoWorkingDirectory(#[source] io::Error),
    /// A file or directory named on the command line could not be read.
    #[error("{path}: cannot read")]
    UnreadablePath {
        /// The path as given.
        path: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A Stack manifest is not valid YAML for the Stack type.
    #[error("{path}:{line}:{column}: {message}")]
    ManifestUnparsable {
        /// The manifest file.
        path: String,
        /// 1-based line of the problem (0 when unknown).
        line: u64,
        /// 1-based column of the problem (0 when unknown).
        column: u64,
        /// What the parser said.
        message: String,
    },
    /// A Stack manifest parsed but says something contradictory.
    #[error("{path}: {reason}")]
    ManifestInvalid {
        /// The manifest file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A folder given to `validate` holds no compose project or Stack manifest.
    #[error("{path}: no compose project or Stack manifest found")]
    NothingToValidate {
        /// The folder as given.
        path: String,
    },
    /// `validate` was given both `-f` files and paths.
    #[error("give compose files with -f or paths to validate, not both")]
    FilesAndPathsTogether,
    /// Some of several validated inputs were invalid (each already reported).
    #[error("{invalid} of {total} inputs are invalid")]
    InputsInvalid {
        /// How many failed.
        invalid: usize,
        /// How many were checked.
        total: usize,
    },
    /// The model could not be printed as JSON.
    #[error("cannot print the model as JSON")]
    JsonOutputFailed(#[source] serde_json::Error),
    /// The model could not be printed as YAML.
    #[error("cannot print the model as YAML")]
    YamlOutputFailed(#[source] serde_saphyr::SerializeError),
    /// The project cannot be translated to Kubernetes objects.
    #[error(transparent)]
    Translate(#[from] crate::kube::translate::TranslateError),
    /// An output file could not be written.
    #[error("{path}: cannot write")]
    OutputFileFailed {
        /// The file or directory.
        path: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Writing to stdout or stderr failed.
    #[error("cannot write output")]
    OutputFailed(#[from] io::Error),
    /// `plan` found changes to make (exit status 2; the plan was printed).
    #[error("{steps} change(s) pending")]
    ChangesPending {
        /// How many steps the plan has.
        steps: usize,
    },
    /// The async runtime for engine commands could not start.
    #[error("cannot start the async runtime")]
    RuntimeFailed(#[source] io::Error),
    /// A `--timeout` value is not a duration.
    #[error("invalid duration {text:?}: {reason}")]
    BadDuration {
        /// The value given.
        text: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The Docker engine refused or failed an operation.
    #[error(transparent)]
    Engine(#[from] crate::docker::Error),
    /// The project cannot be planned against what the engine runs.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// Executing the plan failed.
    #[error(transparent)]
    Execute(#[from] crate::reconcile::execute::ExecError),
    /// A rolling update's new containers never became healthy; the
    /// update was rolled back (or, with `failure_action: pause`, left).
    #[error("{message}")]
    UpdateFailed {
        /// The service whose update failed first.
        service: String,
        /// Every failed update: the service, why, and what was done.
        message: String,
    },
    /// A state file could not be read.
    #[error(transparent)]
    StateFile(#[from] crate::reconcile::state_file::StateFileError),
    /// `status NAME` named a stack that has no state file.
    #[error(
        "stack {stack:?} has no status in {dir} (is `stackd watch` writing to this --state-dir?)"
    )]
    StackNotFound {
        /// The name asked for.
        stack: String,
        /// The state directory searched.
        dir: String,
    },
    /// `stackd watch` could not run.
    #[error(transparent)]
    Watch(#[from] crate::reconcile::watch::WatchError),
    /// `stackd controller` could not connect to the cluster.
    #[error("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")]
    KubeConfig(#[source] kube::Error),
    /// `stackd controller` stopped.
    #[error(transparent)]
    Controller(#[from] crate::kube::controller::ControllerError),
}

/// The process exit status for a failed command: 2 for `plan` with changes
/// pending, 1 for everything else.
pub fn exit_code(err: &CliError) -> u8 {
    match err {
        CliError::ChangesPending { .. } => 2,
        _ => 1,
    }
}

/// The line printed on stderr for a failed command: `stackd: ` and the error
/// with its causes (a cause already quoted by its parent is not repeated).
pub fn render_error(err: &CliError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    format!("stackd: {text}")
}

/// Runs a parsed command. Results go to `out`; warnings and per-input
/// errors of `validate` go to `err`. The returned error has not been printed.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let global = cli.project_args();
    match &cli.command {
        Command::Config(args) => config::run(&global, args, out, err),
        Command::Validate(args) => validate::run(&global, args, out, err),
        Command::Wrap(_) => wrap::run(&global, out, err),
        Command::Crd(_) => crd::run(out),
        Command::Up(args) => engine::up(&global, args, err),
        Command::Down(args) => engine::down(&global, args, err),
        Command::Plan(args) => engine::plan(&global, args, out, err),
        Command::Ps(args) => engine::ps(&global, args, out, err),
        Command::Status(args) => status::run(args, out, err),
        Command::Watch(args) => watch::run_watch(args),
        Command::Convert(args) => convert::run(&global, args, out, err),
        Command::Completions(args) => completions::run(args.shell, out),
        Command::Controller(args) => controller::run(args),
    }
}

/// The [`LoadOptions`] the global options ask for, with the process
/// environment and current directory.
pub fn load_options(global: &GlobalArgs) -> Result<LoadOptions, CliError> {
    let working_dir = std::env::current_dir().map_err(CliError::NoWorkingDirectory)?;
    Ok(LoadOptions {
        files: global.files.clone(),
        project_name: global.project_name.clone(),
        profiles: global.profiles.clone(),
        env_files: global.env_files.clone(),
        project_directory: global.project_directory.clone(),
        working_dir,
        environment: process_environment(),
    })
}

/// The process environment; variables whose name or value is not UTF-8
/// cannot be interpolated into a compose file, so they are left out.
pub(crate) fn process_environment() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Loads the project and prints its warnings.
fn load_and_warn(options: &LoadOptions, err: &mut dyn Write) -> Result<Loaded, CliError> {
    let loaded = crate::load::load_project(options)?;
    print_warnings(&loaded.warnings, err)?;
    Ok(loaded)
}

/// What this host can give containers, for refusing limits beyond it:
/// the CPUs this process may use and `MemTotal` from `/proc/meminfo`.
/// `None` when either cannot be read (the check is then skipped).
fn host_capacity() -> Option<crate::load::validate::HostCapacity> {
    let cpus = std::thread::available_parallelism().ok()?.get();
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let memory_bytes = parse_mem_total(&meminfo)?;
    Some(crate::load::validate::HostCapacity {
        cpus: f64::from(u32::try_from(cpus).unwrap_or(u32::MAX)),
        memory_bytes,
    })
}

/// `MemTotal:  24684132 kB` → bytes.
fn parse_mem_total(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn print_warnings(warnings: &[String], err: &mut dyn Write) -> Result<(), CliError> {
    for warning in warnings {
        writeln!(err, "warning: {warning}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("stackd").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn total_memory_is_read_from_meminfo_in_bytes() {
        let meminfo = "MemFree:  100 kB\nMemTotal:       24684132 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(24_684_132 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn the_command_line_grammar_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_are_accepted_before_the_command() {
        let cli = parse(&["-f", "a.yaml", "-p", "demo", "--profile", "x", "config"]);
        assert_eq!(cli.project_args().files, [PathBuf::from("a.yaml")]);
        assert_eq!(cli.project_args().project_name.as_deref(), Some("demo"));
        assert_eq!(cli.project_args().profiles, ["x"]);
        assert!(matches!(cli.command, Command::Config(_)));
    }

    #[test]
    fn global_options_are_accepted_after_the_command() {
        let cli = parse(&[
            "up",
            "-f",
            "a.yaml",
            "--file",
            "b.yaml",
            "--env-file",
            "x.env",
            "--project-directory",
            "dir",
        ]);
        assert_eq!(
            cli.project_args().files,
            [PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]
        );
        assert_eq!(cli.project_args().env_files, [PathBuf::from("x.env")]);
        assert_eq!(
            cli.project_args().project_directory,
            Some(PathBuf::from("dir"))
        );
    }

    #[test]
    fn repeated_files_keep_their_order_across_the_command_name() {
        let cli = parse(&["-f", "a.yaml", "config", "-f", "b.yaml"]);
        assert_eq!(
            cli.project_args().files,
            [PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]
        );
    }

    #[test]
    fn config_defaults_to_yaml() {
        let cli = parse(&["config"]);
        let Command::Config(args) = cli.command else {
            panic!("not config")
        };
        assert_eq!(args.format, ModelFormat::Yaml);
        assert!(!args.services && !args.quiet);
    }

    #[test]
    fn config_accepts_format_services_and_quiet() {
        let cli = parse(&["config", "--format", "json", "--services", "-q"]);
        let Command::Config(args) = cli.command else {
            panic!("not config")
        };
        assert_eq!(args.format, ModelFormat::Json);
        assert!(args.services && args.quiet);
    }

    #[test]
    fn every_contract_command_parses() {
        for args in [
            &["plan", "--format", "json"][..],
            &["up", "--wait", "--timeout", "30s", "--no-prune"],
            &["down", "-v", "--timeout", "5s"],
            &["ps", "--format", "json"],
            &[
                "watch",
                "dir",
                "--state-dir",
                "s",
                "--metrics-addr",
                ":9090",
                "--resync",
                "1m",
            ],
            &["status", "agents", "--format", "yaml"],
            &["convert", "-n", "ns", "-o", "-"],
            &["wrap", "-p", "agents"],
            &["crd"],
            &["controller", "--metrics-addr", ":8080", "--namespace", "ns"],
            &["validate", "a.yaml", "dir"],
        ] {
            let all = std::iter::once("stackd").chain(args.iter().copied());
            assert!(Cli::try_parse_from(all).is_ok(), "{args:?} does not parse");
        }
    }

    #[test]
    fn controller_flags_allow_each_node_level_power_separately() {
        let cli = parse(&[
            "controller",
            "--allow-privileged",
            "--allow-host-path",
            "--lease-duration",
            "3s",
        ]);
        let Command::Controller(args) = cli.command else {
            panic!("not controller")
        };
        assert!(args.allow_privileged && args.allow_host_path);
        assert!(!args.allow_host_network && !args.allow_host_pid && !args.allow_capabilities);
        assert_eq!(args.lease_name, "stackd-controller");
        assert_eq!(args.lease_duration.as_deref(), Some("3s"));
    }

    #[test]
    fn an_error_is_rendered_with_its_cause() {
        let error = CliError::UnreadablePath {
            path: "x.yaml".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(
            render_error(&error),
            "stackd: x.yaml: cannot read: no such file"
        );
    }

    #[test]
    fn warnings_are_plain_lines_on_stderr() {
        let mut err = Vec::new();
        print_warnings(&["the version attribute is obsolete".into()], &mut err).unwrap();
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "warning: the version attribute is obsolete\n"
        );
    }
}
