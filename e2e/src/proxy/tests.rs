//! The proxy against a fake engine on a unix socket (no Docker needed):
//! framing, keep-alive, streams, upgrades, and every fault kind.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::dechunk;
use super::http::RequestHead;
use super::wire::Wire;
use super::*;

const TIMEOUT: Duration = Duration::from_secs(5);

/// One request the fake engine saw: connection number, method, target, body.
type SeenRequest = (usize, String, String, Vec<u8>);

/// What the fake engine saw.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<SeenRequest>>,
    connections: AtomicUsize,
    closed: AtomicUsize,
}

/// A fake engine: answers `/containers/create` with 201, `/events` with a
/// chunked stream, `/hold` with a stream that never ends, `/attach` with an
/// upgrade that echoes in upper case, `/close` with a body ended by
/// closing, and anything else with a JSON echo of the request.
struct FakeEngine {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    seen: Arc<Seen>,
}

impl FakeEngine {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let seen = Arc::new(Seen::default());
        let shared = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let number = shared.connections.fetch_add(1, Ordering::SeqCst);
                let seen = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve_fake(stream, number, &seen);
                    seen.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            _dir: dir,
            socket,
            seen,
        }
    }

    fn proxy(&self, faults: Option<FaultPlan>) -> ApiProxy {
        ApiProxy::start_with(ProxyOptions {
            upstream: Some(self.socket.clone()),
            faults,
            ..ProxyOptions::default()
        })
        .unwrap()
    }

    fn requests(&self) -> Vec<SeenRequest> {
        self.seen.requests.lock().unwrap().clone()
    }
}

fn serve_fake(stream: UnixStream, number: usize, seen: &Seen) -> std::io::Result<()> {
    let mut wire = Wire::new(stream);
    while let Some(raw) = wire.read_head(&mut || true)? {
        let request = RequestHead::parse(raw).unwrap();
        let mut body = Vec::new();
        wire.relay_body(request.framing, Some(&mut body), &mut || true)?;
        if request.framing == http::Framing::Chunked {
            body = dechunk(&body);
        }
        let (path, _) = strip_version(&request.target);
        seen.requests.lock().unwrap().push((
            number,
            request.method.clone(),
            request.target.clone(),
            body.clone(),
        ));
        let out = &mut wire.stream;
        match path.as_str() {
            "/containers/create" => {
                let body = r#"{"Id":"abc123","Warnings":[]}"#;
                write!(out, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
            }
            "/events" | "/hold" => {
                out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")?;
                write!(out, "8\r\n{{\"n\": 1}}\r\n")?;
                if path == "/hold" {
                    // Until the proxy lets go of the connection.
                    let mut byte = [0_u8; 1];
                    while wire.stream.read(&mut byte)? > 0 {}
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(600));
                write!(out, "8\r\n{{\"n\": 2}}\r\n0\r\n\r\n")?;
            }
            "/containers/x/attach" => {
                out.write_all(
                    b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
                )?;
                let mut pending = std::mem::take(&mut wire.buf);
                let mut chunk = [0_u8; 1024];
                loop {
                    wire.stream.write_all(&pending.to_ascii_uppercase())?;
                    let n = wire.stream.read(&mut chunk)?;
                    if n == 0 {
                        return Ok(());
                    }
                    pending = chunk[..n].to_vec();
                }
            }
            "/exec/e1/start" => {
                // A detached exec start: an ordinary answer, no hijack.
                out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
            }
            "/close" => {
                out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")?;
                return Ok(());
            }
            _ => {
                let body = serde_json::json!({
                    "method": request.method,
                    "target": request.target,
                    "body": String::from_utf8_lossy(&body),
                })
                .to_string();
                write!(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
            }
        }
    }
    Ok(())
}

fn connect(proxy: &ApiProxy) -> UnixHttp {
    UnixHttp::connect(proxy.socket(), TIMEOUT).unwrap()
}

#[test]
fn keep_alive_requests_pass_through_and_are_logged_with_the_version_stripped() {
    let engine = FakeEngine::start();
    let proxy = engine.proxy(None);
    let mut client = connect(&proxy);
    let create = client
        .request(
            "POST",
            "/v1.41/containers/create?name=demo-web-1",
            // A body that looks like a request must not be taken for one.
            Some(b"{\"Cmd\":[\"GET /fake HTTP/1.1\\r\\n\\r\\n\"]}"),
        )
        .unwrap();
    assert_eq!(create.status, 201);
    let list = client
        .request("GET", "/v1.41/containers/json?all=1", None)
        .unwrap();
    assert_eq!(list.status, 200);
    assert_eq!(
        list.json().unwrap()["target"],
        "/v1.41/containers/json?all=1"
    );

    let calls = proxy.calls();
    let logged: Vec<_> = calls
        .iter()
        .map(|c| {
            (
                c.method.as_str(),
                c.path.as_str(),
                c.status,
                c.engine_status,
            )
        })
        .collect();
    assert_eq!(
        logged,
        [
            ("POST", "/containers/create", Some(201), Some(201)),
            ("GET", "/containers/json", Some(200), Some(200)),
        ]
    );
    assert_eq!(calls[0].query_param("name").as_deref(), Some("demo-web-1"));
    assert_eq!(calls[1].query, "all=1");
    assert!(calls.iter().all(|c| c.fault.is_none() && c.connection == 0));
    // One client connection, one engine connection, both requests on it.
    let seen = engine.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|(conn, ..)| *conn == 0));
    assert_eq!(engine.seen.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn a_chunked_request_body_reaches_the_engine_whole() {
    let engine = FakeEngine::start();
    let proxy = engine.proxy(None);
    let mut client = connect(&proxy);
    client
        .send_raw(b"POST /v1.41/build HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .unwrap();
    let answer = client.read_response("POST").unwrap();
    assert_eq!(answer.json().unwrap()["body"], "hello world");
    let again = client.request("GET", "/_ping", None).unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(proxy.counts().get("POST /build"), Some(&1));
}

#[test]
fn injected_500s_follow_the_seed_exactly_and_keep_the_connection_usable() {
    let engine = FakeEngine::start();
    let plan = FaultPlan::seeded(42).rate(Fault::Status500, 0.25);
    let run = || {
        let proxy = engine.proxy(Some(plan.clone()));
        let mut client = connect(&proxy);
        let mut failed = Vec::new();
        for i in 0..200 {
            let answer = client
                .request("POST", "/v1.41/containers/x/start", Some(b"{}"))
                .unwrap();
            if answer.status == 500 {
                assert_eq!(answer.json().unwrap()["message"], "injected fault");
                failed.push(i);
            } else {
                assert_eq!(answer.status, 200);
            }
        }
        let logged: Vec<u64> = proxy.faulted_calls().iter().map(|c| c.seq).collect();
        let statuses: Vec<_> = proxy
            .faulted_calls()
            .iter()
            .map(|c| (c.status, c.engine_status))
            .collect();
        assert!(statuses.iter().all(|s| *s == (Some(500), None)));
        (failed, logged)
    };
    let before = engine.requests().len();
    let (first, logged) = run();
    let reached = engine.requests().len() - before;
    let (second, _) = run();
    assert_eq!(first, second, "the same seed fails the same calls");
    assert_eq!(
        first.iter().map(|i| *i as u64).collect::<Vec<_>>(),
        logged,
        "the log names the calls the client saw fail"
    );
    // 200 draws at 0.25: mean 50, standard deviation about 6.1.
    assert!(
        (30..=70).contains(&first.len()),
        "{} of 200 failed",
        first.len()
    );
    assert_eq!(
        reached,
        200 - first.len(),
        "failed calls never reach the engine"
    );
}

#[test]
fn every_nth_call_to_one_endpoint_fails_and_no_other() {
    let engine = FakeEngine::start();
    let plan = FaultPlan::seeded(0).rule(
        FaultRule::new(Fault::Status500, Trigger::EveryNth(3))
            .on(Endpoint::prefix("POST", "/containers/create")),
    );
    let proxy = engine.proxy(Some(plan));
    let mut client = connect(&proxy);
    let mut create_status = Vec::new();
    for _ in 0..9 {
        assert_eq!(
            client
                .request("GET", "/v1.41/containers/json", None)
                .unwrap()
                .status,
            200
        );
        create_status.push(
            client
                .request("POST", "/v1.41/containers/create", Some(b"{}"))
                .unwrap()
                .status,
        );
    }
    assert_eq!(create_status, [201, 201, 500, 201, 201, 500, 201, 201, 500]);
    assert_eq!(proxy.faulted_calls().len(), 3);
}

#[test]
fn a_delay_holds_the_call_back_before_forwarding_it() {
    let engine = FakeEngine::start();
    let plan = FaultPlan::seeded(0)
        .always(Fault::Delay(Duration::from_millis(300)))
        .only(Endpoint::prefix("GET", "/info"));
    let proxy = engine.proxy(Some(plan));
    let mut client = connect(&proxy);
    let started = Instant::now();
    assert_eq!(
        client.request("GET", "/v1.41/_ping", None).unwrap().status,
        200
    );
    let quick = started.elapsed();
    let started = Instant::now();
    assert_eq!(
        client.request("GET", "/v1.41/info", None).unwrap().status,
        200
    );
    let slow = started.elapsed();
    assert!(
        quick < Duration::from_millis(200),
        "undelayed call took {quick:?}"
    );
    assert!(
        slow >= Duration::from_millis(300),
        "delayed call took {slow:?}"
    );
    let info = &proxy.calls_to("GET", "/info")[0];
    assert_eq!(info.fault, Some(Fault::Delay(Duration::from_millis(300))));
    assert!(info.answered_after.unwrap() >= Duration::from_millis(300));
    assert_eq!(info.status, Some(200));
}

#[test]
fn a_drop_closes_the_connection_and_the_engine_never_sees_the_call() {
    let engine = FakeEngine::start();
    let proxy = engine.proxy(Some(FaultPlan::seeded(0).always(Fault::Drop)));
    let mut client = connect(&proxy);
    let err = client
        .request("POST", "/v1.41/containers/create?name=x", Some(b"{}"))
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
    let call = proxy
        .wait_for_calls(TIMEOUT, |calls| {
            calls.iter().any(|c| c.answered_after.is_some())
        })
        .unwrap()[0]
        .clone();
    assert_eq!(
        (call.fault, call.status, call.engine_status),
        (Some(Fault::Drop), None, None)
    );
    assert!(engine.requests().is_empty());

    proxy.clear_faults();
    let mut client = connect(&proxy);
    assert_eq!(client.request("GET", "/_ping", None).unwrap().status, 200);
}

#[test]
fn a_drop_after_forward_lets_the_engine_act_but_the_client_sees_no_answer() {
    let engine = FakeEngine::start();
    let plan = FaultPlan::seeded(0)
        .always(Fault::DropAfterForward)
        .only(Endpoint::prefix("POST", "/containers/create"));
    let proxy = engine.proxy(Some(plan));
    let mut client = connect(&proxy);
    assert!(client
        .request("POST", "/v1.41/containers/create?name=x", Some(b"{}"))
        .is_err());
    let seen = engine.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].2, "/v1.41/containers/create?name=x");
    let call = proxy
        .wait_for_calls(TIMEOUT, |calls| {
            calls.iter().any(|c| c.answered_after.is_some())
        })
        .unwrap()[0]
        .clone();
    assert_eq!(
        (call.fault, call.status, call.engine_status),
        (Some(Fault::DropAfterForward), None, Some(201))
    );
}

#[test]
fn a_stream_is_relayed_piece_by_piece_as_the_engine_sends_it() {
    let engine = FakeEngine::start();
    let proxy = engine.proxy(None);
    let mut client = connect(&proxy);
    let started = Instant::now();
    assert_eq!(client.open_stream("GET", "/v1.41/events").unwrap(), 200);
    let first = client.next_chunk(TIMEOUT).unwrap().unwrap();
    let first_after = started.elapsed();
    assert_eq!(first, b"{\"n\": 1}");
    assert!(
        first_after < Duration::from_millis(400),
        "the first event waited for the second ({first_after:?})"
    );
    assert_eq!(client.next_chunk(TIMEOUT).unwrap().unwrap(), b"{\"n\": 2}");
    assert_eq!(client.next_chunk(TIMEOUT).unwrap(), None);
    // The connection is still good for another request after the stream ends.
    assert_eq!(client.request("GET", "/_ping", None).unwrap().status, 200);
}

#[test]
fn a_client_that_leaves_a_stream_frees_the_engine_connection() {
    let engine = FakeEngine::start();
    let proxy = engine.proxy(None);
    let mut client = connect(&proxy);
    assert_eq!(client.open_stream("GET", "/v1.41/hold").unwrap(), 200);
    assert!(client.next_chunk(TIMEOUT).unwrap().is_some());
    drop(client);
    let started = Instant::now();
    while engine.seen.closed.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < TIMEOUT,
            "the engine connection stayed open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_upgraded_connection_is_piped_both_ways() {
    let engine = FakeEngine::start();
    let proxy = engine.proxy(None);
    let mut client = connect(&proxy);
    client
        .send_raw(b"POST /v1.41/containers/x/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        .unwrap();
    let answer = client.read_response("POST").unwrap();
    assert_eq!(answer.status, 101);
    let mut raw = client.stream().try_clone().unwrap();
    // Bytes that look like HTTP are only data now.
    raw.write_all(b"get / http/1.1\r\n\r\n").unwrap();
    let mut got = client.take_buffered();
    let mut chunk = [0_u8; 64];
    while got.len() < 18 {
        let n = raw.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early after {got:?}");
        got.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(got, b"GET / HTTP/1.1\r\n\r\n");
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(
        raw.read(&mut chunk).unwrap(),
        0,
        "the end of input reaches the engine"
    );
    assert_eq!(
        proxy.calls().len(),
        1,
        "nothing after the upgrade is a call"
    );
    assert_eq!(proxy.calls()[0].status, Some(101));
}

#[test]
fn a_body_that_runs_until_close_is_relayed_whole() {
    let engine = FakeEngine::start();
    let proxy = engine.proxy(None);
    let mut client = connect(&proxy);
    let answer = client.request("GET", "/close", None).unwrap();
    assert_eq!(answer.text(), "until the end");
}

#[test]
fn faults_can_be_set_and_cleared_while_running_and_follow_their_window() {
    let engine = FakeEngine::start();
    let proxy = engine.proxy(None);
    let mut client = connect(&proxy);
    assert_eq!(client.request("GET", "/_ping", None).unwrap().status, 200);
    proxy.set_faults(
        FaultPlan::seeded(0)
            .always(Fault::Status500)
            .during(Duration::ZERO..Duration::from_millis(400)),
    );
    assert!(proxy.faults().is_some());
    assert_eq!(client.request("GET", "/_ping", None).unwrap().status, 500);
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(client.request("GET", "/_ping", None).unwrap().status, 200);
    proxy.set_faults(FaultPlan::seeded(0).always(Fault::Status500));
    assert_eq!(client.request("GET", "/_ping", None).unwrap().status, 500);
    proxy.clear_faults();
    assert_eq!(client.request("GET", "/_ping", None).unwrap().status, 200);
    let faulted: Vec<_> = proxy.calls().iter().map(|c| c.fault.is_some()).collect();
    assert_eq!(faulted, [false, true, false, true, false]);
}

#[test]
fn every_settled_call_is_written_to_the_log_file_as_json() {
    let engine = FakeEngine::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.jsonl");
    let proxy = ApiProxy::start_with(ProxyOptions {
        upstream: Some(engine.socket.clone()),
        faults: Some(FaultPlan::seeded(0).every(2, Fault::Status500)),
        log: Some(log.clone()),
        ..ProxyOptions::default()
    })
    .unwrap();
    let mut client = connect(&proxy);
    client
        .request("GET", "/v1.41/containers/json", None)
        .unwrap();
    client
        .request("DELETE", "/v1.41/containers/abc?force=1", None)
        .unwrap();
    drop(proxy);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["path"], "/containers/json");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["fault"], serde_json::Value::Null);
    assert_eq!(lines[1]["method"], "DELETE");
    assert_eq!(lines[1]["pattern"], "/containers/{id}");
    assert_eq!(lines[1]["query"], "force=1");
    assert_eq!(lines[1]["fault"], "500");
    assert_eq!(lines[1]["status"], 500);
    assert!(lines[1]["t"].as_f64().unwrap() >= lines[0]["t"].as_f64().unwrap());
}

#[test]
fn an_unreachable_engine_is_a_502_that_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.sock");
    let proxy = ApiProxy::start_with(ProxyOptions {
        upstream: Some(missing.clone()),
        ..ProxyOptions::default()
    })
    .unwrap();
    let answer = connect(&proxy).request("GET", "/_ping", None).unwrap();
    assert_eq!(answer.status, 502);
    assert!(
        answer.text().contains(&missing.display().to_string()),
        "{}",
        answer.text()
    );
}

#[test]
fn severing_connections_drops_an_open_stream() {
    let engine = FakeEngine::start();
    let proxy = engine.proxy(None);
    let mut client = connect(&proxy);
    assert_eq!(client.open_stream("GET", "/hold").unwrap(), 200);
    assert!(client.next_chunk(TIMEOUT).unwrap().is_some());
    proxy.sever_connections();
    assert!(client.next_chunk(TIMEOUT).is_err());
    let mut again = connect(&proxy);
    assert_eq!(again.request("GET", "/_ping", None).unwrap().status, 200);
}

#[test]
fn a_listen_path_with_a_stale_socket_is_reused_and_removed_on_drop() {
    let engine = FakeEngine::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.sock");
    drop(UnixListener::bind(&path).unwrap());
    let options = ProxyOptions {
        listen: Some(path.clone()),
        upstream: Some(engine.socket.clone()),
        ..ProxyOptions::default()
    };
    let proxy = ApiProxy::start_with(options.clone()).unwrap();
    assert!(
        ApiProxy::start_with(options).is_err(),
        "a live socket is not taken over"
    );
    assert_eq!(proxy.docker_host(), format!("unix://{}", path.display()));
    assert_eq!(
        connect(&proxy)
            .request("GET", "/_ping", None)
            .unwrap()
            .status,
        200
    );
    drop(proxy);
    assert!(!path.exists());
}

#[test]
fn a_hijackable_call_answered_with_a_length_stays_http() {
    let engine = FakeEngine::start();
    let proxy = engine.proxy(None);
    let mut client = connect(&proxy);
    let started = client
        .request("POST", "/v1.41/exec/e1/start", Some(b"{\"Detach\":true}"))
        .unwrap();
    assert_eq!(started.status, 200);
    assert_eq!(client.request("GET", "/_ping", None).unwrap().status, 200);
    assert_eq!(
        proxy.counts().get("GET /_ping"),
        Some(&1),
        "the next request is seen as one"
    );
}
