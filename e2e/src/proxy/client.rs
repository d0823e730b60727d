//! A minimal HTTP/1.1 client over a unix socket, for tests that talk to the
//! engine (or the proxy) without a Docker client: one keep-alive
//! connection, whole responses or a chunked stream read piece by piece.

use std::io::{self, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::http::{Framing, ResponseHead};
use super::wire::Wire;

/// One answer read whole.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The head as received.
    pub head: String,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> io::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .map_err(|err| io::Error::new(ErrorKind::InvalidData, err))
    }
}

/// A keep-alive connection to a unix socket speaking HTTP/1.1.
#[derive(Debug)]
pub struct UnixHttp {
    wire: Wire,
}

impl UnixHttp {
    /// Connects; every read gives up after `timeout`.
    pub fn connect(socket: &Path, timeout: Duration) -> io::Result<Self> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(timeout))?;
        Ok(Self {
            wire: Wire::new(stream),
        })
    }

    fn send(&mut self, method: &str, target: &str, body: Option<&[u8]>) -> io::Result<()> {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: docker\r\n");
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        self.wire.stream.write_all(&bytes)
    }

    fn read_response_head(&mut self, method: &str) -> io::Result<(String, ResponseHead)> {
        let raw = self.wire.read_head(&mut || false)?.ok_or_else(|| {
            io::Error::new(ErrorKind::ConnectionAborted, "closed without an answer")
        })?;
        let head = ResponseHead::parse(&raw, method)
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "malformed status line"))?;
        Ok((String::from_utf8_lossy(&raw).into_owned(), head))
    }

    /// Sends a request (with a JSON `body` when given) and reads the whole
    /// answer. An error when the connection drops before the answer ends.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        body: Option<&[u8]>,
    ) -> io::Result<HttpResponse> {
        self.send(method, target, body)?;
        self.read_response(method)
    }

    /// Writes bytes as they are (a hand-made request).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.stream.write_all(bytes)
    }

    /// Reads the whole answer to a request with `method`.
    pub fn read_response(&mut self, method: &str) -> io::Result<HttpResponse> {
        let (head, parsed) = self.read_response_head(method)?;
        let mut raw_body = Vec::new();
        self.wire
            .relay_body(parsed.framing, Some(&mut raw_body), &mut || false)?;
        let body = if parsed.framing == Framing::Chunked {
            dechunk(&raw_body)
        } else {
            raw_body
        };
        Ok(HttpResponse {
            status: parsed.status,
            head,
            body,
        })
    }

    /// The socket, for raw reads and writes after an upgrade.
    pub fn stream(&self) -> &UnixStream {
        &self.wire.stream
    }

    /// Bytes read past the last answer (the start of a raw stream after an upgrade).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.wire.buf)
    }

    /// Sends a request whose answer streams (`GET /events`), returning its
    /// status; read the stream with [`UnixHttp::next_chunk`].
    pub fn open_stream(&mut self, method: &str, target: &str) -> io::Result<u16> {
        self.send(method, target, None)?;
        let (_, parsed) = self.read_response_head(method)?;
        Ok(parsed.status)
    }

    /// The next chunk of a chunked stream opened with
    /// [`UnixHttp::open_stream`]; `None` at its end. Errors when nothing
    /// arrives within `timeout`.
    pub fn next_chunk(&mut self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut give_up = || Instant::now() < deadline;
        let size_line = loop {
            if let Some(end) = self.wire.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.wire.buf.drain(..end + 2).collect();
                break String::from_utf8_lossy(&line).into_owned();
            }
            if self.wire.fill(&mut give_up)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        };
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|err| io::Error::new(ErrorKind::InvalidData, err))?;
        while self.wire.buf.len() < size + 2 {
            if self.wire.fill(&mut give_up)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
        let chunk: Vec<u8> = self.wire.buf.drain(..size + 2).take(size).collect();
        Ok((size > 0).then_some(chunk))
    }
}

/// The data of a complete chunked body.
pub(crate) fn dechunk(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&rest[..end]);
        let size =
            usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).unwrap_or(0);
        rest = &rest[end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
    out
}
