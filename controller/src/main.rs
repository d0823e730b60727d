//! The `stackd` binary: parses the command line, sets up logging and maps
//! the outcome to an exit code (0 ok, 1 error, 2 `plan` with changes pending).
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use stackd::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(usage) => {
            // Usage errors exit 1, not clap's 2: `plan` gives 2 its own meaning.
            let _ = usage.print();
            return if usage.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // A controller reports what it does; one-shot commands stay quiet.
    let long_running = matches!(
        cli.command,
        cli::Command::Watch(_) | cli::Command::Controller(_)
    );
    init_tracing(if long_running { "info" } else { "warn" });
    // Not locked for the whole run: `watch` logs from runtime threads, and
    // a lock held by this thread would block them forever.
    let result = cli::run(cli, &mut std::io::stdout(), &mut std::io::stderr());
    let flushed = std::io::stdout().flush();
    match result.and(flushed.map_err(cli::CliError::from)) {
        Ok(()) => ExitCode::SUCCESS,
        // `plan` with changes pending has printed the plan; its status says the rest.
        Err(error @ cli::CliError::ChangesPending { .. }) => ExitCode::from(cli::exit_code(&error)),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "{}", cli::render_error(&error));
            ExitCode::from(cli::exit_code(&error))
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: `default_level`),
/// coloured only on a terminal.
fn init_tracing(default_level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
