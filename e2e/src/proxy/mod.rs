//! A recording, fault-injecting proxy for the Docker API: listens on a unix
//! socket, forwards each HTTP request to the engine's socket and relays the
//! answer as it streams, logs every call (time, method, path, status, fault),
//! and fails the calls a [`FaultPlan`] picks with a 500, a delay or a
//! dropped connection. Tests count calls and time retries with it; the
//! `stackd-fault-proxy` binary runs it by hand.
//!
//! Requests are read as HTTP/1.1 (keep-alive, `Content-Length` or chunked
//! bodies); each client connection gets its own engine connection, so
//! streams such as `/events` and logs pass through as they come. After a
//! request that upgrades the connection (attach, exec start) the stream is
//! raw and only piped.

mod client;
mod conn;
mod fault;
mod http;
mod record;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::net::Shutdown;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use client::{HttpResponse, UnixHttp};
pub use fault::{Endpoint, Fault, FaultPlan, FaultRule, PathMatch, Trigger};
pub use http::{path_pattern, strip_version};
pub use record::{spacing, ApiCall};

use fault::FaultState;
use record::Recorder;

/// How to start an [`ApiProxy`]; the defaults give a counting proxy on a
/// fresh temporary socket in front of the local engine.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// Socket to listen on (a temporary one when `None`). A stale socket
    /// file nobody listens on is replaced; anything else there is an error.
    pub listen: Option<PathBuf>,
    /// The engine's socket (when `None`: `DOCKER_HOST` if it is a `unix://`
    /// address, else `/var/run/docker.sock`).
    pub upstream: Option<PathBuf>,
    /// Faults to inject from the start.
    pub faults: Option<FaultPlan>,
    /// File to append each settled call to, as one JSON object a line.
    pub log: Option<PathBuf>,
}

/// State the acceptor and every connection share.
pub(crate) struct Shared {
    upstream: PathBuf,
    recorder: Recorder,
    faults: Mutex<Option<(FaultState, Instant)>>,
    stop: AtomicBool,
    /// Open sockets per connection, so they can be severed.
    open: Mutex<HashMap<u64, Vec<UnixStream>>>,
}

impl Shared {
    fn decide(&self, method: &str, path: &str, pattern: &str, at: Instant) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, installed) = faults.as_mut()?;
        state.decide(
            method,
            path,
            pattern,
            at.saturating_duration_since(*installed),
        )
    }

    fn track(&self, connection: u64, stream: &UnixStream) {
        if let Ok(clone) = stream.try_clone() {
            self.open
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(connection)
                .or_default()
                .push(clone);
        }
    }

    fn untrack(&self, connection: u64) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&connection);
    }

    fn sever_all(&self) {
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(PoisonError::into_inner));
        for stream in open.values().flatten() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// A running proxy; stops, closes its connections and removes its socket
/// when dropped.
pub struct ApiProxy {
    // Held for its Drop: removes the socket folder.
    _dir: Option<tempfile::TempDir>,
    socket: PathBuf,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl ApiProxy {
    /// Starts a counting proxy (no faults) on a temporary socket in front of
    /// the engine socket (`DOCKER_HOST` when it is a `unix://` address, else
    /// `/var/run/docker.sock`).
    pub fn start() -> Result<Self> {
        Self::start_with(ProxyOptions::default())
    }

    /// Starts a proxy on a temporary socket that injects `plan` from its
    /// first call.
    pub fn with_faults(plan: FaultPlan) -> Result<Self> {
        Self::start_with(ProxyOptions {
            faults: Some(plan),
            ..ProxyOptions::default()
        })
    }

    /// Starts a proxy as `options` say.
    pub fn start_with(options: ProxyOptions) -> Result<Self> {
        let upstream = options.upstream.unwrap_or_else(default_upstream);
        let (dir, socket) = match options.listen {
            Some(path) => (None, path),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("stackd-e2e-proxy")
                    .tempdir()?;
                let socket = dir.path().join("docker.sock");
                (Some(dir), socket)
            }
        };
        remove_stale_socket(&socket)?;
        let listener = UnixListener::bind(&socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        let log = match &options.log {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open the call log {}", path.display()))?,
            ),
            None => None,
        };
        let now = Instant::now();
        let shared = Arc::new(Shared {
            upstream,
            recorder: Recorder::new(log),
            faults: Mutex::new(options.faults.map(|plan| (FaultState::new(plan), now))),
            stop: AtomicBool::new(false),
            open: Mutex::default(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(&listener, &shared))
        };
        Ok(Self {
            _dir: dir,
            socket,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The value for `DOCKER_HOST` that routes a client through this proxy.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The proxy's socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The engine socket calls are forwarded to.
    pub fn upstream(&self) -> &Path {
        &self.shared.upstream
    }

    /// When the proxy started ([`ApiCall::offset`] counts from here).
    pub fn started_at(&self) -> Instant {
        self.shared.recorder.started
    }

    /// Replaces the fault plan; its counters, random stream and time window
    /// start now. Calls already in flight keep the fault they got.
    pub fn set_faults(&self, plan: FaultPlan) {
        *self
            .shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            Some((FaultState::new(plan), Instant::now()));
    }

    /// Stops injecting faults: every later call is forwarded untouched.
    pub fn clear_faults(&self) {
        *self
            .shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The plan in force, if any.
    pub fn faults(&self) -> Option<FaultPlan> {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(state, _)| state.plan().clone())
    }

    /// Closes every open client and engine connection at once (clients see
    /// them drop, as when the engine restarts); new connections still work.
    pub fn sever_connections(&self) {
        self.shared.sever_all();
    }

    /// Every call seen since the start or the last [`ApiProxy::reset`], in
    /// order of arrival. A call still waiting for its answer has
    /// `answered_after == None`.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.shared.recorder.calls()
    }

    /// The calls whose `METHOD /pattern` is `method` and `pattern`
    /// (`calls_to("POST", "/containers/{id}/start")`), in order.
    pub fn calls_to(&self, method: &str, pattern: &str) -> Vec<ApiCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method) && c.pattern == pattern)
            .collect()
    }

    /// The calls a fault was injected into, in order.
    pub fn faulted_calls(&self) -> Vec<ApiCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.fault.is_some())
            .collect()
    }

    /// Forgets the calls seen so far (the fault plan is left as it is).
    pub fn reset(&self) {
        self.shared.recorder.clear();
    }

    /// The calls that change something on the engine (see [`ApiCall::changes_something`]).
    pub fn changing_calls(&self) -> Vec<ApiCall> {
        self.calls()
            .into_iter()
            .filter(ApiCall::changes_something)
            .collect()
    }

    /// Calls counted per `METHOD /pattern`, sorted.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for call in self.calls() {
            *counts.entry(call.key()).or_insert(0) += 1;
        }
        counts
    }

    /// Waits until `check` holds for the call log or `timeout` passes
    /// (polling every 20 ms); the last log either way.
    pub fn wait_for_calls(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&[ApiCall]) -> bool,
    ) -> Result<Vec<ApiCall>> {
        let started = Instant::now();
        loop {
            let calls = self.calls();
            if check(&calls) {
                return Ok(calls);
            }
            if started.elapsed() > timeout {
                bail!(
                    "timed out after {timeout:?} waiting for calls; saw {}",
                    calls.len()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the loop sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shared.sever_all();
        if self._dir.is_none() {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

fn default_upstream() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => {
            PathBuf::from(host.trim_start_matches("unix://"))
        }
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

/// Removes a socket file left by a proxy that died; refuses to remove
/// anything else, or a socket something still listens on.
fn remove_stale_socket(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        bail!("{} exists and is not a socket", path.display());
    }
    if UnixStream::connect(path).is_ok() {
        bail!("something already listens on {}", path.display());
    }
    std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>) {
    let mut next_connection = 0_u64;
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let connection = next_connection;
        next_connection += 1;
        shared.track(connection, &client);
        let shared = Arc::clone(shared);
        std::thread::spawn(move || conn::serve(&shared, client, connection));
    }
}

#[cfg(test)]
mod tests;
