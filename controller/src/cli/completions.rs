//! `stackd completions SHELL`: the shell completion script for the clap grammar.
use std::io::Write;

use clap::CommandFactory;

use super::{Cli, CliError, CompletionShell};

pub(super) fn run(shell: CompletionShell, out: &mut dyn Write) -> Result<(), CliError> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    match shell {
        CompletionShell::Bash => clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut command,
            "stackd",
            &mut script,
        ),
        CompletionShell::Zsh => clap_complete::generate(
            clap_complete::Shell::Zsh,
            &mut command,
            "stackd",
            &mut script,
        ),
        CompletionShell::Fish => clap_complete::generate(
            clap_complete::Shell::Fish,
            &mut command,
            "stackd",
            &mut script,
        ),
    }
    out.write_all(&script)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: CompletionShell) -> String {
        let mut out = Vec::new();
        run(shell, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_shell_script_names_every_subcommand() {
        let subcommands: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        assert!(subcommands.len() >= 12, "{subcommands:?}");
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let text = script(shell);
            assert!(!text.trim().is_empty(), "{shell:?}: empty script");
            for name in &subcommands {
                assert!(text.contains(name.as_str()), "{shell:?}: no {name}");
            }
        }
    }

    #[test]
    fn each_shell_gets_its_own_syntax() {
        assert!(script(CompletionShell::Bash).contains("complete -F"));
        assert!(script(CompletionShell::Zsh).starts_with("#compdef stackd"));
        assert!(script(CompletionShell::Fish).contains("complete -c stackd"));
    }
}
