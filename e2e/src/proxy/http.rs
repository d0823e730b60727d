//! Just enough HTTP/1.1 for a proxy: parsing request and response heads,
//! knowing where a body ends (length, chunked, until close), and naming a
//! Docker API path without its version and ids.

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer encoding.
    Chunked,
    /// Everything until the sender closes (responses only).
    UntilClose,
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    /// The head as received, through the blank line.
    pub raw: Vec<u8>,
    pub method: String,
    pub target: String,
    pub framing: Framing,
    /// The client asked for an upgrade, or the endpoint is one the engine
    /// hijacks (attach, exec start): after the body the stream is raw.
    pub hijack: bool,
    /// `Connection: close` or HTTP/1.0.
    pub close: bool,
    /// `Expect: 100-continue`.
    pub expects_continue: bool,
}

/// A parsed response head.
#[derive(Debug, Clone)]
pub(crate) struct ResponseHead {
    pub status: u16,
    pub framing: Framing,
    /// The engine will close after this response.
    pub close: bool,
}

fn header_lines(head: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    (first, headers)
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl RequestHead {
    /// Parses a head ending in `\r\n\r\n`; `None` when the request line is malformed.
    pub fn parse(raw: Vec<u8>) -> Option<Self> {
        let (line, headers) = header_lines(&raw);
        let mut parts = line.split_whitespace();
        let method = parts.next()?.to_string();
        let target = parts.next()?.to_string();
        let version = parts.next().unwrap_or("HTTP/1.1");
        let mut framing = Framing::Empty;
        let mut hijack = false;
        let mut close = version.eq_ignore_ascii_case("HTTP/1.0");
        let mut expects_continue = false;
        for (name, value) in &headers {
            match name.as_str() {
                "content-length" if framing != Framing::Chunked => {
                    framing = match value.parse() {
                        Ok(0) | Err(_) => Framing::Empty,
                        Ok(n) => Framing::Length(n),
                    };
                }
                "transfer-encoding" if value.to_ascii_lowercase().contains("chunked") => {
                    framing = Framing::Chunked;
                }
                "upgrade" => hijack = true,
                "connection" => {
                    hijack |= has_token(value, "upgrade");
                    close |= has_token(value, "close");
                }
                "expect" => expects_continue = value.eq_ignore_ascii_case("100-continue"),
                _ => {}
            }
        }
        let pattern = path_pattern(&target);
        // The engine hijacks attach and exec-start connections even when the
        // client does not ask for an upgrade.
        hijack |= pattern.ends_with("/attach")
            || (pattern.starts_with("/exec/") && pattern.ends_with("/start"));
        Some(Self {
            raw,
            method,
            target,
            framing,
            hijack,
            close,
            expects_continue,
        })
    }

    /// The head to send on, without `Expect: 100-continue` (the proxy
    /// answers that itself, so it never waits for a body the client holds back).
    pub fn forwarded(&self) -> Vec<u8> {
        if !self.expects_continue {
            return self.raw.clone();
        }
        let text = String::from_utf8_lossy(&self.raw);
        let kept: Vec<&str> = text
            .split("\r\n")
            .filter(|line| {
                !line
                    .split_once(':')
                    .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("expect"))
            })
            .collect();
        kept.join("\r\n").into_bytes()
    }
}

impl ResponseHead {
    /// Parses a response head to a request with `method`; `None` when the
    /// status line is malformed.
    pub fn parse(raw: &[u8], method: &str) -> Option<Self> {
        let (line, headers) = header_lines(raw);
        let mut parts = line.split_whitespace();
        let version = parts.next()?;
        let status: u16 = parts.next()?.parse().ok()?;
        let mut close = version.eq_ignore_ascii_case("HTTP/1.0");
        let mut length = None;
        let mut chunked = false;
        for (name, value) in &headers {
            match name.as_str() {
                "content-length" => length = value.parse::<u64>().ok(),
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                "connection" => close |= has_token(value, "close"),
                _ => {}
            }
        }
        let framing = if method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&status)
            || status == 204
            || status == 304
        {
            Framing::Empty
        } else if chunked {
            Framing::Chunked
        } else {
            match length {
                Some(0) => Framing::Empty,
                Some(n) => Framing::Length(n),
                None => Framing::UntilClose,
            }
        };
        if framing == Framing::UntilClose {
            close = true;
        }
        Some(Self {
            status,
            framing,
            close,
        })
    }
}

/// Where a body ends, fed the bytes as they arrive.
#[derive(Debug, Clone)]
pub(crate) struct BodyEnd {
    state: BodyState,
    line: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Length(u64),
    ChunkSize,
    /// Chunk bytes plus the CRLF after them.
    ChunkData(u64),
    Trailers,
    UntilClose,
    Done,
}

impl BodyEnd {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::ChunkSize,
            Framing::UntilClose => BodyState::UntilClose,
        };
        Self {
            state,
            line: Vec::new(),
        }
    }

    pub fn done(&self) -> bool {
        self.state == BodyState::Done
    }

    /// How many of `input`'s leading bytes belong to the body (all of them
    /// unless the body ends inside `input`).
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            match self.state {
                BodyState::Done => break,
                BodyState::UntilClose => return input.len(),
                BodyState::Length(remaining) | BodyState::ChunkData(remaining) => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    used += n;
                    let left = remaining - n as u64;
                    self.state = match (self.state, left) {
                        (BodyState::Length(_), 0) => BodyState::Done,
                        (BodyState::Length(_), _) => BodyState::Length(left),
                        (_, 0) => BodyState::ChunkSize,
                        _ => BodyState::ChunkData(left),
                    };
                }
                BodyState::ChunkSize => {
                    let (n, found) = take_line(&mut self.line, rest);
                    used += n;
                    if found {
                        let line = String::from_utf8_lossy(&self.line).into_owned();
                        self.line.clear();
                        let size = line
                            .trim()
                            .split(';')
                            .next()
                            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                            .unwrap_or(0);
                        self.state = if size == 0 {
                            BodyState::Trailers
                        } else {
                            BodyState::ChunkData(size + 2)
                        };
                    }
                }
                BodyState::Trailers => {
                    // Either a bare CRLF (no trailers) or trailer lines ending in a blank line.
                    let (n, found) = take_line(&mut self.line, rest);
                    used += n;
                    if found {
                        let blank = self.line == b"\r\n";
                        self.line.clear();
                        if blank {
                            self.state = BodyState::Done;
                        }
                    }
                }
            }
        }
        used
    }
}

/// Appends `input` to `line` through the first `\n`; (bytes used, found).
fn take_line(line: &mut Vec<u8>, input: &[u8]) -> (usize, bool) {
    match input.iter().position(|b| *b == b'\n') {
        Some(i) => {
            line.extend_from_slice(&input[..=i]);
            (i + 1, true)
        }
        None => {
            line.extend_from_slice(input);
            (input.len(), false)
        }
    }
}

/// The end of the first `\r\n\r\n` in `buf` (the length of a head), if any.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// `/v1.41/containers/json?all=1` → (`/containers/json`, `all=1`).
pub fn strip_version(target: &str) -> (String, String) {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, query),
        None => (target, ""),
    };
    let path = path.split('#').next().unwrap_or_default();
    let mut segments = path.split('/').filter(|s| !s.is_empty()).peekable();
    if segments.peek().is_some_and(|s| is_version(s)) {
        segments.next();
    }
    let stripped: Vec<&str> = segments.collect();
    (format!("/{}", stripped.join("/")), query.to_string())
}

fn is_version(segment: &str) -> bool {
    segment.len() > 1
        && segment.starts_with('v')
        && segment[1..].chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// `/v1.41/containers/abc/start?t=10` → `/containers/{id}/start`.
pub fn path_pattern(target: &str) -> String {
    let (path, _) = strip_version(target);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
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
    use super::*;

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
    fn stripping_the_version_keeps_ids_and_splits_off_the_query() {
        assert_eq!(
            strip_version("/v1.41/containers/json?all=1"),
            ("/containers/json".to_string(), "all=1".to_string())
        );
        assert_eq!(
            strip_version("/containers/abc/start"),
            ("/containers/abc/start".to_string(), String::new())
        );
        assert_eq!(strip_version("/v1.41"), ("/".to_string(), String::new()));
        // A path segment that merely starts with v is not a version.
        assert_eq!(strip_version("/volumes/v1").0, "/volumes/v1");
    }

    #[test]
    fn a_chunked_body_ends_after_the_last_chunk_and_its_trailers() {
        let body = b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        // Byte by byte: a chunk line or trailer may arrive split anywhere.
        let mut end = BodyEnd::new(Framing::Chunked);
        let used: usize = body.iter().map(|b| end.feed(&[*b])).sum();
        assert!(end.done());
        assert_eq!(&body[used..], b"NEXT");
        let mut whole = BodyEnd::new(Framing::Chunked);
        assert_eq!(whole.feed(body), body.len() - 4);
    }

    #[test]
    fn a_length_body_ends_after_its_bytes_even_when_they_look_like_a_request() {
        let mut end = BodyEnd::new(Framing::Length(17));
        assert_eq!(end.feed(b"GET /x HTTP/1.1\r\n"), 17);
        assert!(end.done());
        assert_eq!(end.feed(b"more"), 0);
    }

    #[test]
    fn attach_and_exec_start_are_hijacked_without_an_upgrade_header() {
        let head = |text: &str| RequestHead::parse(text.as_bytes().to_vec()).unwrap();
        assert!(head("POST /v1.41/containers/x/attach?stream=1 HTTP/1.1\r\n\r\n").hijack);
        assert!(head("POST /exec/abc/start HTTP/1.1\r\nContent-Length: 2\r\n\r\n").hijack);
        assert!(
            head("POST /session HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n").hijack
        );
        assert!(!head("POST /containers/x/start HTTP/1.1\r\n\r\n").hijack);
    }

    #[test]
    fn responses_without_length_run_until_close_except_where_http_says_no_body() {
        let parse =
            |text: &str, method: &str| ResponseHead::parse(text.as_bytes(), method).unwrap();
        let r = parse("HTTP/1.1 200 OK\r\n\r\n", "GET");
        assert_eq!((r.framing, r.close), (Framing::UntilClose, true));
        assert_eq!(
            parse("HTTP/1.1 204 No Content\r\n\r\n", "POST").framing,
            Framing::Empty
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HEAD").framing,
            Framing::Empty
        );
        let r = parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET",
        );
        assert_eq!((r.framing, r.close), (Framing::Chunked, false));
    }

    #[test]
    fn the_expect_header_is_not_forwarded() {
        let head = RequestHead::parse(
            b"POST /build HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n".to_vec(),
        )
        .unwrap();
        assert!(head.expects_continue);
        assert_eq!(
            head.forwarded(),
            b"POST /build HTTP/1.1\r\nContent-Length: 3\r\n\r\n".to_vec()
        );
    }
}
