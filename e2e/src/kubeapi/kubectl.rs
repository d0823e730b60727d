//! The real kubectl against a [`KubeApiServer`]: found (never the unrelated
//! `/usr/bin/kubectl` dispatcher), pointed at the server with a private
//! kubeconfig and discovery cache, run with a deadline.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::KubeApiServer;
use crate::{run, Run};

/// How long one kubectl command may take.
pub const KUBECTL_DEADLINE: Duration = Duration::from_secs(60);

/// A kubectl v1 client: `STACKD_KUBECTL`, else `/usr/local/bin/kubectl`
/// (where e2e/tools/install-kube-tools.sh puts it), else one on PATH that
/// answers `version --client` as kubectl does. `None` after saying why the
/// test skips; an error instead when `CI` is set (CI installs it).
pub fn kubectl_bin() -> Result<Option<PathBuf>> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("STACKD_KUBECTL") {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(PathBuf::from("/usr/local/bin/kubectl"));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("kubectl")));
    }
    let found = candidates.into_iter().find(|candidate| {
        candidate.is_file()
            && Command::new(candidate)
                .args(["version", "--client"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .is_ok_and(|out| is_real_kubectl(&String::from_utf8_lossy(&out.stdout)))
    });
    if found.is_none() {
        let why = "kubectl is not installed (e2e/tools/install-kube-tools.sh installs it)";
        if std::env::var_os("CI").is_some() {
            bail!("{why} and CI is set");
        }
        eprintln!("skipped: {why}");
    }
    Ok(found)
}

/// True for the `version --client` of a kubectl 1.30 or newer (the flags
/// the tests use), and not of the unrelated `kubectl` dispatcher some
/// machines have in /usr/bin.
fn is_real_kubectl(version: &str) -> bool {
    version.lines().any(|line| {
        let Some(v) = line.strip_prefix("Client Version: v1.") else {
            return false;
        };
        let minor: String = v.chars().take_while(char::is_ascii_digit).collect();
        minor.parse::<u32>().is_ok_and(|m| m >= 30) && !v.contains("dispatcher")
    })
}

/// kubectl bound to one server.
#[derive(Debug)]
pub struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kubectl {
    /// kubectl for `server`, or `None` when the test should skip.
    pub fn new(server: &KubeApiServer) -> Result<Option<Self>> {
        let Some(bin) = kubectl_bin()? else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("stackd-kubectl-")
            .tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig)
            .context("writing the kubeconfig")?;
        Ok(Some(Kubectl {
            bin,
            cache: dir.path().join("cache"),
            kubeconfig,
            _dir: dir,
        }))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env_remove("KUBECONFIG");
        command
    }

    /// Runs `kubectl ARGS` to the end (or the deadline).
    pub fn run(&self, args: &[&str]) -> Result<Run> {
        run(self.command(args), KUBECTL_DEADLINE)
    }

    /// Runs `kubectl ARGS` and fails unless it exits 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        Ok(self.run(args)?.ok()?.stdout)
    }

    /// `kubectl ARGS -f FILE` with `manifest` written to a temporary FILE.
    pub fn with_manifest(&self, args: &[&str], manifest: &str) -> Result<Run> {
        let dir = tempfile::Builder::new()
            .prefix("stackd-manifest-")
            .tempdir()?;
        let file = dir.path().join("manifest.yaml");
        std::fs::write(&file, manifest)?;
        let file = file.to_string_lossy().into_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-f", &file]);
        self.run(&all)
    }

    /// Starts `kubectl ARGS` in the background (for `wait`, `delete`).
    pub fn spawn(&self, args: &[&str]) -> Result<Child> {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting kubectl")
    }
}

#[cfg(test)]
mod tests {
    use super::is_real_kubectl;

    #[test]
    fn the_kubectl_dispatcher_and_old_clients_are_not_taken_for_kubectl() {
        assert!(is_real_kubectl(
            "Client Version: v1.37.1\nKustomize Version: v5.8.1\n"
        ));
        assert!(!is_real_kubectl("Client Version: v1.32.4-dispatcher\n"));
        assert!(!is_real_kubectl("Client Version: v1.22.0\n"));
        assert!(!is_real_kubectl("usage: kubectl"));
    }
}
