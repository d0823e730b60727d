//! The call log: one `ApiCall` per request, opened when its head arrives and
//! settled when the client's answer (or its absence) is known, optionally
//! also written as JSON lines to a file.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::fault::Fault;

/// One request seen on the way to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// Sequence number, in order of arrival, from 0 for each proxy.
    pub seq: u64,
    /// Which client connection carried it (numbered from 0 by the proxy).
    pub connection: u64,
    /// HTTP method.
    pub method: String,
    /// The path with the API version stripped and no query
    /// (`/v1.41/containers/json?all=1` → `/containers/json`).
    pub path: String,
    /// The query string, without `?` (empty when none).
    pub query: String,
    /// The path with the API version, query and object ids or names
    /// replaced (`/containers/{id}/start`).
    pub pattern: String,
    /// The request target as sent.
    pub target: String,
    /// When the request's head arrived.
    pub at: Instant,
    /// `at`, measured from the proxy's start.
    pub offset: Duration,
    /// The fault injected into this call, if any.
    pub fault: Option<Fault>,
    /// The status the client received; `None` when it got no answer (a
    /// dropped connection) or is still waiting for one.
    pub status: Option<u16>,
    /// The status the engine answered; `None` when the call never reached
    /// the engine (or it has not answered yet).
    pub engine_status: Option<u16>,
    /// From `at` until the answer's head was sent (or the connection
    /// dropped); `None` while the call is open.
    pub answered_after: Option<Duration>,
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

    /// The first value of query parameter `name`, percent-decoded
    /// (`query_param("name")` of `/containers/create?name=web-1` is `web-1`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }

    /// True when the client got no answer or a 5xx.
    pub fn failed(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }

    /// The call as one JSON object (the proxy's `--log` line).
    pub fn to_json(&self, started: SystemTime) -> serde_json::Value {
        let unix_ms = (started + self.offset)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        json!({
            "seq": self.seq,
            "connection": self.connection,
            "t": millis(self.offset) / 1000.0,
            "unix_ms": unix_ms,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "pattern": self.pattern,
            "fault": self.fault.map(|f| f.name()),
            "delay_ms": match self.fault {
                Some(Fault::Delay(d)) => Some(d.as_millis()),
                _ => None,
            },
            "status": self.status,
            "engine_status": self.engine_status,
            "answered_ms": self.answered_after.map(millis),
        })
    }
}

/// Milliseconds to the microsecond.
fn millis(duration: Duration) -> f64 {
    // Microseconds fit an f64 exactly for any duration a test lasts.
    #[allow(clippy::cast_precision_loss)]
    let micros = duration.as_micros() as f64;
    micros / 1000.0
}

/// The times between successive calls, in order (`calls` as logged).
pub fn spacing(calls: &[ApiCall]) -> Vec<Duration> {
    calls
        .windows(2)
        .map(|pair| pair[1].at.saturating_duration_since(pair[0].at))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The calls of one proxy.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub started: Instant,
    pub started_wall: SystemTime,
    calls: Mutex<Vec<ApiCall>>,
    next_seq: AtomicU64,
    log: Option<Mutex<File>>,
}

/// What `begin` needs to know about a request.
pub(crate) struct Opened<'a> {
    pub connection: u64,
    pub method: &'a str,
    pub target: &'a str,
    pub path: String,
    pub query: String,
    pub pattern: String,
    pub at: Instant,
    pub fault: Option<Fault>,
}

impl Recorder {
    pub fn new(log: Option<File>) -> Self {
        Self {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            calls: Mutex::default(),
            next_seq: AtomicU64::new(0),
            log: log.map(Mutex::new),
        }
    }

    pub fn calls(&self) -> Vec<ApiCall> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn clear(&self) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Logs a new call; settle it with the returned handle.
    pub fn begin(&self, call: Opened<'_>) -> Pending<'_> {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ApiCall {
                seq,
                connection: call.connection,
                method: call.method.to_string(),
                path: call.path,
                query: call.query,
                pattern: call.pattern,
                target: call.target.to_string(),
                at: call.at,
                offset: call.at.saturating_duration_since(self.started),
                fault: call.fault,
                status: None,
                engine_status: None,
                answered_after: None,
            });
        Pending {
            recorder: self,
            seq,
            at: call.at,
            settled: false,
        }
    }

    fn settle(&self, seq: u64, at: Instant, status: Option<u16>, engine_status: Option<u16>) {
        let done = {
            let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
            // After a reset the call may be gone; the file log still gets it.
            let found = calls
                .binary_search_by_key(&seq, |c| c.seq)
                .ok()
                .and_then(|i| calls.get_mut(i));
            found.map(|call| {
                call.status = status;
                call.engine_status = engine_status;
                call.answered_after = Some(at.elapsed());
                call.clone()
            })
        };
        if let (Some(log), Some(call)) = (&self.log, done) {
            let mut line = call.to_json(self.started_wall).to_string();
            line.push('\n');
            let mut file = log.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(err) = file.write_all(line.as_bytes()) {
                eprintln!("api proxy: cannot write the call log: {err}");
            }
        }
    }
}

/// A logged call whose answer is not known yet; settles as "no answer"
/// when dropped unsettled.
pub(crate) struct Pending<'a> {
    recorder: &'a Recorder,
    seq: u64,
    at: Instant,
    settled: bool,
}

impl Pending<'_> {
    /// Records what the client and the engine answered.
    pub fn settle(&mut self, status: Option<u16>, engine_status: Option<u16>) {
        if !self.settled {
            self.settled = true;
            self.recorder
                .settle(self.seq, self.at, status, engine_status);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.settle(None, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(query: &str) -> ApiCall {
        ApiCall {
            seq: 0,
            connection: 0,
            method: "POST".into(),
            path: "/containers/create".into(),
            query: query.into(),
            pattern: "/containers/create".into(),
            target: format!("/v1.41/containers/create?{query}"),
            at: Instant::now(),
            offset: Duration::ZERO,
            fault: None,
            status: None,
            engine_status: None,
            answered_after: None,
        }
    }

    #[test]
    fn query_parameters_are_found_by_name_and_decoded() {
        let c = call("platform=&name=demo%2Dweb-1&x");
        assert_eq!(c.query_param("name").as_deref(), Some("demo-web-1"));
        assert_eq!(c.query_param("platform").as_deref(), Some(""));
        assert_eq!(c.query_param("x").as_deref(), Some(""));
        assert_eq!(c.query_param("missing"), None);
        assert_eq!(call("name=50%").query_param("name").as_deref(), Some("50%"));
    }

    #[test]
    fn a_call_dropped_unsettled_reads_as_unanswered() {
        let recorder = Recorder::new(None);
        let at = Instant::now();
        let opened = |fault| Opened {
            connection: 3,
            method: "GET",
            target: "/v1.41/_ping",
            path: "/_ping".into(),
            query: String::new(),
            pattern: "/_ping".into(),
            at,
            fault,
        };
        drop(recorder.begin(opened(Some(Fault::Drop))));
        recorder.begin(opened(None)).settle(Some(200), Some(200));
        let calls = recorder.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].status, calls[0].fault), (None, Some(Fault::Drop)));
        assert!(calls[0].failed() && calls[0].answered_after.is_some());
        assert_eq!(
            (calls[1].status, calls[1].engine_status),
            (Some(200), Some(200))
        );
        assert!(!calls[1].failed());
    }
}
