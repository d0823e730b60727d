//! A unix stream with a read buffer: reads HTTP heads and relays bodies,
//! and a reader that can give up while waiting (when the other side has
//! gone or the proxy stops).

use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

use super::http::{head_end, BodyEnd, Framing};

/// Longest request or response head accepted.
const MAX_HEAD: usize = 1024 * 1024;

/// Said while waiting for bytes that have stopped mattering; false gives up.
pub(crate) type Watch<'a> = &'a mut dyn FnMut() -> bool;

/// A stream and the bytes read from it but not used yet.
#[derive(Debug)]
pub(crate) struct Wire {
    pub stream: UnixStream,
    pub buf: Vec<u8>,
}

impl Wire {
    pub fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream. With a
    /// read timeout set on the stream, asks `watch` at each timeout whether
    /// to keep waiting.
    pub fn fill(&mut self, watch: Watch<'_>) -> io::Result<usize> {
        let mut chunk = [0_u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if !watch() {
                        return Err(io::Error::new(
                            ErrorKind::ConnectionAborted,
                            "gave up waiting",
                        ));
                    }
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// The next head (through its blank line); `None` when the stream ends
    /// cleanly before a new head starts.
    pub fn read_head(&mut self, watch: Watch<'_>) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = head_end(&self.buf) {
                let rest = self.buf.split_off(end);
                return Ok(Some(std::mem::replace(&mut self.buf, rest)));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(ErrorKind::InvalidData, "head too long"));
            }
            if self.fill(watch)? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// Moves one body with `framing` from this stream to `out` (or drops it
    /// when `out` is `None`), writing each piece as soon as it arrives.
    pub fn relay_body(
        &mut self,
        framing: Framing,
        mut out: Option<&mut dyn Write>,
        watch: Watch<'_>,
    ) -> io::Result<()> {
        let mut end = BodyEnd::new(framing);
        loop {
            if !self.buf.is_empty() && !end.done() {
                let used = end.feed(&self.buf);
                if let Some(out) = out.as_mut() {
                    out.write_all(&self.buf[..used])?;
                }
                self.buf.drain(..used);
            }
            if end.done() {
                return Ok(());
            }
            if self.fill(watch)? == 0 {
                return if framing == Framing::UntilClose {
                    Ok(())
                } else {
                    Err(ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// Copies everything left (buffer, then stream) to `out` until end of
    /// stream, then half-closes `out`.
    pub fn pipe_rest(mut self, mut out: UnixStream) {
        let _ = self.stream.set_read_timeout(None);
        if out.write_all(&self.buf).is_ok() {
            let mut chunk = vec![0_u8; 64 * 1024];
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        if out.write_all(&chunk[..n]).is_err() {
                            break;
                        }
                    }
                    Err(err) if err.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        let _ = out.shutdown(Shutdown::Write);
    }

    /// Closes both directions.
    pub fn close(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// True while the peer of `stream` has not closed it; bytes it sent
/// meanwhile are moved to `early` (for a stream no other thread reads). A
/// peer that half-closed its side counts as gone.
pub(crate) fn peer_alive(stream: &UnixStream, early: &mut Vec<u8>) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut chunk = [0_u8; 16 * 1024];
    let mut reader = stream;
    let alive = loop {
        match reader.read(&mut chunk) {
            Ok(0) => break false,
            Ok(n) => early.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => break err.kind() == ErrorKind::WouldBlock,
        }
    };
    let _ = stream.set_nonblocking(false);
    alive
}
