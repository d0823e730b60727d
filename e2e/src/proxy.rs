//! A counting proxy for the Docker API: listens on a unix socket, forwards
//! every byte to the engine's socket, and records each HTTP request it sees
//! on the way in (method and path pattern), so a test can say how many calls
//! of each kind a command made.
//!
//! Requests are found by parsing the client's stream as HTTP/1.1 (request
//! line, headers, a `Content-Length` or chunked body, keep-alive); after a
//! request that upgrades the connection (attach, exec start) the stream is
//! raw and only piped.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

/// One request seen on the way to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// HTTP method.
    pub method: String,
    /// The path with the API version, query and object ids or names
    /// replaced (`/containers/{id}/start`).
    pub pattern: String,
    /// The request target as sent.
    pub target: String,
}

impl ApiCall {
    /// `METHOD /pattern`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.pattern)
    }

    /// True for calls that create, start, stop, kill, restart, rename or
    /// remove a container, or create or remove a network or volume.
    pub fn changes_something(&self) -> bool {
        matches!(
            (self.method.as_str(), self.pattern.as_str()),
            ("POST", "/containers/create")
                | ("POST", "/containers/{id}/start")
                | ("POST", "/containers/{id}/stop")
                | ("POST", "/containers/{id}/kill")
                | ("POST", "/containers/{id}/restart")
                | ("POST", "/containers/{id}/rename")
                | ("POST", "/containers/{id}/update")
                | ("DELETE", "/containers/{id}")
                | ("POST", "/networks/create")
                | ("POST", "/networks/{id}/connect")
                | ("POST", "/networks/{id}/disconnect")
                | ("DELETE", "/networks/{id}")
                | ("POST", "/volumes/create")
                | ("DELETE", "/volumes/{id}")
        )
    }
}

type Log = Arc<Mutex<Vec<ApiCall>>>;

/// A running counting proxy; stops (and removes its socket) when dropped.
pub struct ApiProxy {
    // Held for its Drop: removes the socket folder.
    _dir: tempfile::TempDir,
    socket: PathBuf,
    calls: Log,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ApiProxy {
    /// Starts a proxy in front of the engine socket (`DOCKER_HOST` when it is
    /// a `unix://` address, else `/var/run/docker.sock`).
    pub fn start() -> Result<Self> {
        let upstream = match std::env::var("DOCKER_HOST") {
            Ok(host) if host.starts_with("unix://") => {
                PathBuf::from(host.trim_start_matches("unix://"))
            }
            _ => PathBuf::from("/var/run/docker.sock"),
        };
        let dir = tempfile::Builder::new()
            .prefix("stackd-e2e-proxy")
            .tempdir()?;
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        let calls: Log = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let calls = Arc::clone(&calls);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || accept_loop(&listener, &upstream, &calls, &stop))
        };
        Ok(Self {
            _dir: dir,
            socket,
            calls,
            stop,
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

    /// Every call seen since the start or the last [`ApiProxy::reset`], in order.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the calls seen so far.
    pub fn reset(&self) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The calls that change something on the engine (see [`ApiCall::changes_something`]).
    pub fn changing_calls(&self) -> Vec<ApiCall> {
        self.calls()
            .into_iter()
            .filter(ApiCall::changes_something)
            .collect()
    }

    /// Calls counted per `METHOD /pattern`, sorted.
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for call in self.calls() {
            *counts.entry(call.key()).or_insert(0) += 1;
        }
        counts
    }
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the loop sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &UnixListener, upstream: &Path, calls: &Log, stop: &AtomicBool) {
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let engine = match UnixStream::connect(upstream) {
            Ok(engine) => engine,
            Err(err) => {
                eprintln!("api proxy: cannot reach {}: {err}", upstream.display());
                continue;
            }
        };
        let calls = Arc::clone(calls);
        std::thread::spawn(move || {
            // A half that fails to clone only loses this connection.
            let (Ok(client_read), Ok(engine_write), Ok(engine_read), Ok(client_write)) = (
                client.try_clone(),
                engine.try_clone(),
                engine.try_clone(),
                client.try_clone(),
            ) else {
                return;
            };
            let inbound = std::thread::spawn(move || {
                let mut parser = RequestParser::default();
                pipe(client_read, engine_write, |bytes| {
                    for call in parser.feed(bytes) {
                        calls
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(call);
                    }
                });
            });
            pipe(engine_read, client_write, |_| {});
            let _ = inbound.join();
        });
    }
}

/// Copies `from` to `to` until end of stream, showing each chunk to
/// `observe` before forwarding it, then half-closes `to`.
fn pipe(mut from: UnixStream, mut to: UnixStream, mut observe: impl FnMut(&[u8])) {
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                observe(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Where the parser is in the client's byte stream.
#[derive(Debug, Default)]
enum State {
    /// Reading a request line and headers (bytes so far).
    #[default]
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Skipping this many chunk bytes, then the CRLF after them.
    ChunkData(u64),
    /// Reading trailers after the last chunk.
    Trailers,
    /// The connection was upgraded: nothing more is HTTP.
    Raw,
}

/// Incremental HTTP/1.1 request parser over a client's byte stream.
#[derive(Debug, Default)]
pub struct RequestParser {
    state: State,
    buf: Vec<u8>,
    upgrade_after_body: bool,
}

impl RequestParser {
    /// Feeds the next bytes of the stream; returns the requests whose heads
    /// completed in them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<ApiCall> {
        let mut calls = Vec::new();
        let mut input = bytes;
        while !input.is_empty() {
            match self.state {
                State::Raw => return calls,
                State::Head => {
                    let take = take_through(&mut self.buf, input, b"\r\n\r\n");
                    input = &input[take.consumed..];
                    if take.found {
                        let head = std::mem::take(&mut self.buf);
                        if let Some(call) = self.start_request(&head) {
                            calls.push(call);
                        }
                    }
                }
                State::Body(remaining) => {
                    let n = remaining.min(input.len() as u64);
                    input = &input[usize::try_from(n).unwrap_or(input.len())..];
                    self.state = State::Body(remaining - n);
                    if remaining == n {
                        self.end_request();
                    }
                }
                State::ChunkSize => {
                    let take = take_through(&mut self.buf, input, b"\r\n");
                    input = &input[take.consumed..];
                    if take.found {
                        let line = String::from_utf8_lossy(&self.buf).into_owned();
                        self.buf.clear();
                        let size = line
                            .trim()
                            .split(';')
                            .next()
                            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                            .unwrap_or(0);
                        self.state = if size == 0 {
                            State::Trailers
                        } else {
                            State::ChunkData(size + 2)
                        };
                    }
                }
                State::ChunkData(remaining) => {
                    let n = remaining.min(input.len() as u64);
                    input = &input[usize::try_from(n).unwrap_or(input.len())..];
                    self.state = if remaining == n {
                        State::ChunkSize
                    } else {
                        State::ChunkData(remaining - n)
                    };
                }
                State::Trailers => {
                    // Either a bare CRLF (no trailers) or header lines ending in a blank line.
                    let take = take_through(&mut self.buf, input, b"\r\n");
                    input = &input[take.consumed..];
                    if take.found {
                        let done = self.buf == b"\r\n" || self.buf.ends_with(b"\r\n\r\n");
                        if done {
                            self.buf.clear();
                            self.end_request();
                        }
                    }
                }
            }
        }
        calls
    }

    fn start_request(&mut self, head: &[u8]) -> Option<ApiCall> {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut length: u64 = 0;
        let mut chunked = false;
        let mut upgrade = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                "upgrade" => upgrade = true,
                "connection" => upgrade |= value.to_ascii_lowercase().contains("upgrade"),
                _ => {}
            }
        }
        let pattern = path_pattern(&target);
        // The engine hijacks attach and exec-start connections even when the
        // client does not ask for an upgrade.
        self.upgrade_after_body = upgrade
            || pattern.ends_with("/attach")
            || (pattern.starts_with("/exec/") && pattern.ends_with("/start"));
        self.state = if chunked {
            State::ChunkSize
        } else if length > 0 {
            State::Body(length)
        } else {
            State::Head
        };
        if matches!(self.state, State::Head) {
            self.end_request();
        }
        (!method.is_empty()).then_some(ApiCall {
            method,
            pattern,
            target,
        })
    }

    fn end_request(&mut self) {
        self.state = if self.upgrade_after_body {
            State::Raw
        } else {
            State::Head
        };
    }
}

struct Take {
    consumed: usize,
    found: bool,
}

/// Appends bytes from `input` to `buf` up to and including the first
/// `delimiter` (which may straddle earlier bytes of `buf`).
fn take_through(buf: &mut Vec<u8>, input: &[u8], delimiter: &[u8]) -> Take {
    for (i, byte) in input.iter().enumerate() {
        buf.push(*byte);
        if buf.ends_with(delimiter) {
            return Take {
                consumed: i + 1,
                found: true,
            };
        }
    }
    Take {
        consumed: input.len(),
        found: false,
    }
}

/// `/v1.41/containers/abc/start?t=10` → `/containers/{id}/start`.
pub fn path_pattern(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.first().is_some_and(|s| {
        s.starts_with('v') && s[1..].chars().all(|c| c.is_ascii_digit() || c == '.') && s.len() > 1
    }) {
        segments.remove(0);
    }
    let collection_verbs = ["json", "create", "prune", "load", "search", "get"];
    let out: Vec<String> = match segments.as_slice() {
        [collection @ ("containers" | "networks" | "volumes" | "exec" | "plugins" | "secrets"
        | "configs" | "nodes" | "services" | "tasks"), id, rest @ ..]
            if !collection_verbs.contains(id) =>
        {
            let mut out = vec![(*collection).to_string(), "{id}".to_string()];
            out.extend(rest.iter().map(|s| (*s).to_string()));
            out
        }
        ["images", first, ..] if !collection_verbs.contains(first) => {
            let actions = ["json", "history", "push", "tag", "get"];
            match segments.last() {
                Some(last) if segments.len() >= 3 && actions.contains(last) => {
                    vec!["images".into(), "{name}".into(), (*last).to_string()]
                }
                _ => vec!["images".into(), "{name}".into()],
            }
        }
        ["distribution", .., last] => {
            vec!["distribution".into(), "{name}".into(), (*last).to_string()]
        }
        _ => segments.iter().map(|s| (*s).to_string()).collect(),
    };
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::{path_pattern, RequestParser};

    #[test]
    fn versioned_paths_lose_the_version_query_and_ids() {
        assert_eq!(
            path_pattern("/v1.41/containers/abc123/start?t=10"),
            "/containers/{id}/start"
        );
        assert_eq!(
            path_pattern("/v1.41/containers/json?all=1"),
            "/containers/json"
        );
        assert_eq!(
            path_pattern("/containers/create?name=x"),
            "/containers/create"
        );
        assert_eq!(path_pattern("/v1.41/containers/abc"), "/containers/{id}");
        assert_eq!(
            path_pattern("/v1.41/images/library/busybox:latest/json"),
            "/images/{name}/json"
        );
        assert_eq!(path_pattern("/_ping"), "/_ping");
        assert_eq!(path_pattern("/v1.41/networks/create"), "/networks/create");
    }

    #[test]
    fn keep_alive_requests_are_each_counted_with_their_bodies_skipped() {
        let mut parser = RequestParser::default();
        let stream = b"POST /v1.41/containers/create?name=a HTTP/1.1\r\nHost: docker\r\nContent-Length: 27\r\n\r\n{\"Cmd\":[\"GET /fake HTTP\"]}\nGET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n";
        // Byte by byte: a request head or body may arrive split anywhere.
        let calls: Vec<_> = stream.iter().flat_map(|b| parser.feed(&[*b])).collect();
        let keys: Vec<_> = calls.iter().map(super::ApiCall::key).collect();
        assert_eq!(keys, ["POST /containers/create", "GET /containers/json"]);
    }

    #[test]
    fn chunked_bodies_are_skipped() {
        let mut parser = RequestParser::default();
        let stream = b"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\nGET /_ping HTTP/1.1\r\n\r\n";
        let keys: Vec<_> = parser
            .feed(stream)
            .iter()
            .map(super::ApiCall::key)
            .collect();
        assert_eq!(keys, ["POST /build", "GET /_ping"]);
    }

    #[test]
    fn an_upgraded_connection_is_no_longer_parsed() {
        let mut parser = RequestParser::default();
        let stream = b"POST /v1.41/containers/x/attach?stream=1 HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nGET /not-a-request HTTP/1.1\r\n\r\n";
        let keys: Vec<_> = parser
            .feed(stream)
            .iter()
            .map(super::ApiCall::key)
            .collect();
        assert_eq!(keys, ["POST /containers/{id}/attach"]);
    }
}
