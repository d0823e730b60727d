//! One client connection: read each request, log it, apply the fault the
//! plan picks, forward it on the connection's own engine connection and
//! relay the answer as it streams; after a hijack, pipe raw bytes both ways.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fault::Fault;
use super::http::{path_pattern, strip_version, Framing, RequestHead, ResponseHead};
use super::record::Opened;
use super::wire::{peer_alive, Wire};
use super::Shared;

/// How often a wait for the engine checks whether the client is still there.
const ENGINE_POLL: Duration = Duration::from_millis(250);

/// Serves one client connection until either side closes it.
pub(crate) fn serve(shared: &Arc<Shared>, client: UnixStream, connection: u64) {
    let mut client = Wire::new(client);
    let mut engine: Option<Wire> = None;
    // Errors only end this connection; the client sees it close.
    let _ = serve_requests(shared, &mut client, &mut engine, connection);
    client.close();
    if let Some(engine) = &engine {
        engine.close();
    }
    shared.untrack(connection);
}

fn serve_requests(
    shared: &Arc<Shared>,
    client: &mut Wire,
    engine: &mut Option<Wire>,
    connection: u64,
) -> io::Result<()> {
    loop {
        let Some(raw) = client.read_head(&mut || true)? else {
            return Ok(());
        };
        let Some(request) = RequestHead::parse(raw) else {
            client
                .stream
                .write_all(&error_response(400, "malformed request line", true))?;
            return Ok(());
        };
        let (path, query) = strip_version(&request.target);
        let pattern = path_pattern(&request.target);
        let at = Instant::now();
        let fault = shared.decide(&request.method, &path, &pattern, at);
        let mut call = shared.recorder.begin(Opened {
            connection,
            method: &request.method,
            target: &request.target,
            path,
            query,
            pattern,
            at,
            fault,
        });
        if request.expects_continue && fault != Some(Fault::Drop) {
            client.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        match fault {
            Some(Fault::Drop) => return Ok(()),
            Some(Fault::Status500) => {
                // Reading the body keeps the connection usable for the next request.
                client.relay_body(request.framing, None, &mut || true)?;
                call.settle(Some(500), None);
                client
                    .stream
                    .write_all(&error_response(500, "injected fault", request.close))?;
                if request.close {
                    return Ok(());
                }
                continue;
            }
            Some(Fault::Delay(delay)) => pause(shared, delay),
            Some(Fault::DropAfterForward) | None => {}
        }
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }

        if engine.is_none() {
            match UnixStream::connect(&shared.upstream) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(ENGINE_POLL))?;
                    shared.track(connection, &stream);
                    *engine = Some(Wire::new(stream));
                }
                Err(err) => {
                    let message = format!(
                        "proxy cannot reach the engine at {}: {err}",
                        shared.upstream.display()
                    );
                    call.settle(Some(502), None);
                    client
                        .stream
                        .write_all(&error_response(502, &message, true))?;
                    return Ok(());
                }
            }
        }
        let Some(engine) = engine.as_mut() else {
            return Ok(());
        };
        engine.stream.write_all(&request.forwarded())?;
        client.relay_body(request.framing, Some(&mut engine.stream), &mut || true)?;

        let mut watch = ClientWatch {
            shared,
            stream: client.stream.try_clone()?,
            early: Vec::new(),
        };
        let (raw_head, response) = loop {
            let head = engine.read_head(&mut || watch.still_wanted());
            client.buf.append(&mut watch.early);
            let Some(raw_head) = head? else {
                return Ok(());
            };
            let Some(response) = ResponseHead::parse(&raw_head, &request.method) else {
                return Ok(());
            };
            // Interim answers (100 Continue) go on; the real one follows.
            if (100..200).contains(&response.status) && response.status != 101 {
                if fault != Some(Fault::DropAfterForward) {
                    client.stream.write_all(&raw_head)?;
                }
                continue;
            }
            break (raw_head, response);
        };
        if fault == Some(Fault::DropAfterForward) {
            call.settle(None, Some(response.status));
            return Ok(());
        }
        call.settle(Some(response.status), Some(response.status));
        client.stream.write_all(&raw_head)?;

        // A hijacked answer has no length; a detached exec start or an
        // error answer has one and leaves the connection speaking HTTP.
        let upgraded = response.status == 101
            || (request.hijack
                && (200..300).contains(&response.status)
                && response.framing == Framing::UntilClose);
        if upgraded {
            return pipe_both_ways(client, engine);
        }
        let relayed = engine.relay_body(response.framing, Some(&mut client.stream), &mut || {
            watch.still_wanted()
        });
        client.buf.append(&mut watch.early);
        relayed?;
        if response.close || request.close || response.framing == Framing::UntilClose {
            return Ok(());
        }
    }
}

/// Asked while the engine keeps a client waiting: has the client gone?
struct ClientWatch<'a> {
    shared: &'a Shared,
    stream: UnixStream,
    /// What the client sent meanwhile (the next request, or raw bytes).
    early: Vec<u8>,
}

impl ClientWatch<'_> {
    fn still_wanted(&mut self) -> bool {
        !self.shared.stop.load(Ordering::SeqCst) && peer_alive(&self.stream, &mut self.early)
    }
}

/// After an upgrade: raw bytes both ways until both sides have closed.
fn pipe_both_ways(client: &mut Wire, engine: &mut Wire) -> io::Result<()> {
    let up = Wire {
        stream: client.stream.try_clone()?,
        buf: std::mem::take(&mut client.buf),
    };
    let down = Wire {
        stream: engine.stream.try_clone()?,
        buf: std::mem::take(&mut engine.buf),
    };
    let to_engine = engine.stream.try_clone()?;
    let to_client = client.stream.try_clone()?;
    let inbound = std::thread::spawn(move || up.pipe_rest(to_engine));
    down.pipe_rest(to_client);
    let _ = inbound.join();
    Ok(())
}

/// Sleeps `delay`, in steps so a stopping proxy does not wait it out.
fn pause(shared: &Shared, delay: Duration) {
    let until = Instant::now() + delay;
    while !shared.stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// An answer in the engine's error shape: `{"message": "..."}`.
pub(crate) fn error_response(status: u16, message: &str, close: bool) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        502 => "Bad Gateway",
        _ => "Internal Server Error",
    };
    let mut body = serde_json::json!({ "message": message }).to_string();
    body.push('\n');
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nServer: stackd-fault-proxy\r\n{connection}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
