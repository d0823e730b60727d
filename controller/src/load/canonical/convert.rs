//! Value conversions compose applies while decoding a field: byte sizes,
//! durations, numbers, booleans, file modes, string maps.
use crate::load::yaml::{Mapping, Node, Resolved, Value};

use super::tree::{self, timestamp_error};
use super::{Cx, Kind, TransformError};

/// A scalar viewed through its YAML type.
pub(crate) enum Sc<'a> {
    Null,
    Bool,
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
    Timestamp,
}

/// The typed view of a scalar node; `None` for mappings and sequences.
pub(crate) fn scalar(node: &Node) -> Option<Sc<'_>> {
    let s = node.as_scalar()?;
    Some(match s.resolve() {
        Resolved::Null => Sc::Null,
        Resolved::Bool(_) => Sc::Bool,
        Resolved::Int(i) => Sc::Int(i),
        Resolved::UInt(u) => Sc::UInt(u),
        Resolved::Float(f) => Sc::Float(f),
        Resolved::Timestamp => Sc::Timestamp,
        Resolved::Str => Sc::Str(&s.text),
    })
}

/// A plain integer node.
pub(crate) fn int_node(value: i64, like: &Node) -> Node {
    Node::plain(value.to_string(), like.span.clone())
}

/// A plain boolean node.
pub(crate) fn bool_node(value: bool, like: &Node) -> Node {
    Node::plain(if value { "true" } else { "false" }, like.span.clone())
}

/// A string node.
pub(crate) fn str_node(value: impl Into<String>, like: &Node) -> Node {
    Node::string(value, like.span.clone())
}

/// A scalar as Go's `fmt.Sprint` prints it once typed; `None` for null.
/// Collections and dates are refused.
pub(crate) fn sprint(node: &Node, path: &str) -> Result<Option<String>, TransformError> {
    match scalar(node) {
        None => Err(TransformError::wrong_type(
            node,
            path,
            "a string, a number, a boolean or null",
        )),
        Some(Sc::Timestamp) => Err(timestamp_error(node, path)),
        Some(_) => Ok(node.as_scalar().and_then(|s| s.canonical_text())),
    }
}

/// A string field that also takes numbers (`expose`, `published`...):
/// numbers become their decimal text.
pub(crate) fn string_or_number(node: &mut Node, path: &str) -> Result<(), TransformError> {
    match scalar(node) {
        Some(Sc::Str(_)) | Some(Sc::Null) => Ok(()),
        Some(Sc::Int(_)) | Some(Sc::UInt(_)) | Some(Sc::Float(_)) => {
            let text = sprint(node, path)?.unwrap_or_default();
            *node = str_node(text, node);
            Ok(())
        }
        Some(Sc::Timestamp) => Err(timestamp_error(node, path)),
        _ => Err(TransformError::wrong_type(
            node,
            path,
            "a string or a number",
        )),
    }
}

/// A field that is a string or a list of strings: a string becomes a
/// one-item list.
pub(crate) fn string_or_list(node: &mut Node, path: &str) -> Result<(), TransformError> {
    match &node.value {
        Value::Seq(items) => {
            for (i, it) in items.iter().enumerate() {
                if it.as_str().is_none() {
                    return Err(TransformError::wrong_type(
                        it,
                        &tree::item(path, i),
                        "a string",
                    ));
                }
            }
            Ok(())
        }
        _ if node.as_str().is_some() => {
            let item = node.clone();
            *node = Node::seq(vec![item], node.span.clone());
            Ok(())
        }
        _ => Err(TransformError::wrong_type(
            node,
            path,
            "a string or a list of strings",
        )),
    }
}

/// A list whose items may be strings or numbers; numbers become strings.
pub(crate) fn string_or_number_list(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let Value::Seq(items) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a list"));
    };
    for (i, it) in items.iter_mut().enumerate() {
        string_or_number(it, &tree::item(path, i))?;
    }
    Ok(())
}

/// A boolean field: YAML booleans stay, strings are read as compose reads
/// them (`yes`/`no`/`on`/`off`/`y`/`n` with a warning).
pub(crate) fn boolean(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    match scalar(node) {
        Some(Sc::Bool) | Some(Sc::Null) => Ok(()),
        Some(Sc::Str(text)) => {
            let value = match text.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                "y" | "yes" | "on" => {
                    cx.warn(
                        &node.span,
                        path,
                        format!(
                            "{text:?} for boolean is not supported by YAML 1.2, please use `true`"
                        ),
                    );
                    true
                }
                "n" | "no" | "off" => {
                    cx.warn(
                        &node.span,
                        path,
                        format!(
                            "{text:?} for boolean is not supported by YAML 1.2, please use `false`"
                        ),
                    );
                    false
                }
                _ => {
                    return Err(TransformError::at(
                        Kind::InvalidBoolean,
                        &node.span,
                        path,
                        format!("invalid boolean {text:?}"),
                    ))
                }
            };
            *node = bool_node(value, node);
            Ok(())
        }
        _ => Err(TransformError::wrong_type(node, path, "a boolean")),
    }
}

/// Parses decimal integer text as Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_decimal(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()
}

/// Truncates a float toward zero the way a Go conversion does on amd64:
/// out-of-range values become `i64::MIN`.
fn go_float_to_int(f: f64) -> i64 {
    // 2^63: the first float outside i64 on either side.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// An integer field: numeric strings (left by interpolation) become
/// integers; floats are truncated as compose's decoder truncates them.
pub(crate) fn integer(node: &mut Node, path: &str) -> Result<(), TransformError> {
    match scalar(node) {
        Some(Sc::Int(_)) | Some(Sc::Null) => Ok(()),
        Some(Sc::Float(f)) => {
            *node = int_node(go_float_to_int(f), node);
            Ok(())
        }
        Some(Sc::Str(text)) => match parse_decimal(text.trim()) {
            Some(value) => {
                *node = int_node(value, node);
                Ok(())
            }
            None => Err(TransformError::at(
                Kind::InvalidNumber,
                &node.span,
                path,
                format!("{text:?} is not an integer"),
            )),
        },
        Some(Sc::UInt(u)) => Err(TransformError::at(
            Kind::InvalidNumber,
            &node.span,
            path,
            format!("{u} is too large"),
        )),
        _ => Err(TransformError::wrong_type(node, path, "an integer")),
    }
}

/// Parses float text as Go's `strconv.ParseFloat`, refusing infinities
/// and NaN, which JSON cannot carry.
fn parse_float(text: &str) -> Option<f64> {
    let t = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if t.starts_with("inf") || t.starts_with("nan") || t.contains('_') {
        return None;
    }
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A `float32` field (`cpus`, `cpu_percent`, `max_failure_ratio`): written
/// as the shortest text that reads back as the same `f32`.
pub(crate) fn float32(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let value = match scalar(node) {
        Some(Sc::Null) => return Ok(()),
        Some(Sc::Int(i)) => i as f64,
        Some(Sc::UInt(u)) => u as f64,
        Some(Sc::Float(f)) if f.is_finite() => f,
        Some(Sc::Str(text)) => match parse_float(text) {
            Some(f) => f,
            None => {
                return Err(TransformError::at(
                    Kind::InvalidNumber,
                    &node.span,
                    path,
                    format!("{text:?} is not a number"),
                ))
            }
        },
        _ => return Err(TransformError::wrong_type(node, path, "a number")),
    };
    let single = value as f32;
    if !single.is_finite() {
        return Err(TransformError::at(
            Kind::InvalidNumber,
            &node.span,
            path,
            format!("{value} is out of range"),
        ));
    }
    *node = Node::plain(format!("{single}"), node.span.clone());
    Ok(())
}

/// Parses a byte size as docker's `RAMInBytes`: a decimal number, an
/// optional space and a case-insensitive `b`, `k`, `m`, `g`, `t` or `p`
/// unit (1024-based) optionally followed by `b` or `ib`.
pub fn parse_size(text: &str) -> Result<i64, String> {
    let Some(sep) = text.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{text}'"));
    };
    let (num, suffix) = if text.as_bytes()[sep] == b' ' {
        (&text[..sep], &text[sep + 1..])
    } else {
        (&text[..sep + 1], &text[sep + 1..])
    };
    let Some(size) = parse_float(num) else {
        return Err(format!(
            "strconv.ParseFloat: parsing {num:?}: invalid syntax"
        ));
    };
    if size < 0.0 {
        return Err(format!("invalid size: '{text}'"));
    }
    if suffix.is_empty() {
        return Ok(go_float_to_int(size));
    }
    if suffix.len() > 3 {
        return Err(format!("invalid suffix: '{suffix}'"));
    }
    let lower = suffix.to_ascii_lowercase();
    let bad = || format!("invalid suffix: '{lower}'");
    let bytes = lower.as_bytes();
    if bytes[0] == b'b' {
        return if bytes.len() > 1 {
            Err(bad())
        } else {
            Ok(go_float_to_int(size))
        };
    }
    let multiplier: f64 = match bytes[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        b'p' => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    match (bytes.len(), &lower[1..]) {
        (1, _) | (2, "b") | (3, "ib") => Ok(go_float_to_int(size * multiplier)),
        _ => Err(bad()),
    }
}

/// A byte-size field (`mem_limit`, `shm_size`, `tmpfs.size`...): written as
/// the decimal byte count in a string, as compose prints it. Compose drops
/// a float silently; so does this (the value becomes null).
pub(crate) fn bytes(node: &mut Node, path: &str) -> Result<(), TransformError> {
    match scalar(node) {
        Some(Sc::Null) => Ok(()),
        Some(Sc::Int(i)) => {
            *node = str_node(i.to_string(), node);
            Ok(())
        }
        Some(Sc::Float(_)) | Some(Sc::UInt(_)) => {
            *node = Node::null(node.span.clone());
            Ok(())
        }
        Some(Sc::Str(text)) => match parse_size(text) {
            Ok(size) => {
                *node = str_node(size.to_string(), node);
                Ok(())
            }
            Err(message) => Err(TransformError::at(
                Kind::InvalidSize,
                &node.span,
                path,
                message,
            )),
        },
        _ => Err(TransformError::wrong_type(node, path, "a size")),
    }
}

const NANOS_PER_UNIT: &[(&str, i64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
];

/// Parses a duration as compose does: Go's syntax (`1h30m`, `1.5s`, `-5s`)
/// plus `d` (days) and `w` (weeks). Returns nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("invalid duration {text:?}");
    let mut s = text;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix(['-', '+']) {
        negative = s.starts_with('-');
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: i64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: i64 = 0;
        for &c in &b[..int_len] {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(i64::from(c - b'0')))
                .ok_or_else(invalid)?;
        }
        s = &s[int_len..];
        let mut fraction: i64 = 0;
        let mut scale: f64 = 1.0;
        let mut fraction_digits = 0;
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            let len = s.bytes().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for c in s[..len].bytes() {
                if overflow {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(i64::from(c - b'0')))
                {
                    Some(f) => {
                        fraction = f;
                        scale *= 10.0;
                    }
                    None => overflow = true,
                }
            }
            fraction_digits = len;
            s = &s[len..];
        }
        if int_len == 0 && fraction_digits == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .bytes()
            .take_while(|c| *c != b'.' && !c.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(format!("missing unit in duration {text:?}"));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let Some(&(_, nanos)) = NANOS_PER_UNIT.iter().find(|(u, _)| *u == unit) else {
            return Err(format!("unknown unit {unit:?} in duration {text:?}"));
        };
        if whole > i64::MAX / nanos {
            return Err(invalid());
        }
        let mut value = whole * nanos;
        if fraction > 0 {
            value = value.wrapping_add((fraction as f64 * (nanos as f64 / scale)) as i64);
            if value < 0 {
                return Err(invalid());
            }
        }
        total = total.wrapping_add(value);
        if total < 0 {
            return Err(invalid());
        }
    }
    Ok(if negative { -total } else { total })
}

/// Formats nanoseconds as Go's `time.Duration.String` (`1m30s`, `500ms`,
/// `24h0m0s`), which is how compose prints every duration.
pub fn format_duration(nanos: i64) -> String {
    let mut u = nanos.unsigned_abs();
    let sign = if nanos < 0 { "-" } else { "" };
    if u < 1_000_000_000 {
        if u == 0 {
            return "0s".into();
        }
        let (precision, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "\u{b5}s")
        } else {
            (6, "ms")
        };
        let (fraction, whole) = fraction_digits(u, precision);
        return format!("{sign}{whole}{fraction}{unit}");
    }
    let (fraction, seconds) = fraction_digits(u, 9);
    u = seconds;
    let mut out = format!("{}{fraction}s", u % 60);
    u /= 60;
    if u > 0 {
        out = format!("{}m{out}", u % 60);
        u /= 60;
        if u > 0 {
            out = format!("{u}h{out}");
        }
    }
    format!("{sign}{out}")
}

/// Splits off the last `precision` decimal digits of `v` as `.ddd` without
/// trailing zeros (empty when all zero); returns that and the rest.
fn fraction_digits(mut v: u64, precision: u32) -> (String, u64) {
    let mut digits = Vec::new();
    let mut printing = false;
    for _ in 0..precision {
        let digit = v % 10;
        printing = printing || digit != 0;
        if printing {
            digits.push(b'0' + digit as u8);
        }
        v /= 10;
    }
    if digits.is_empty() {
        return (String::new(), v);
    }
    digits.reverse();
    (format!(".{}", String::from_utf8_lossy(&digits)), v)
}

/// A duration field: any scalar is read as text (so `30` lacks a unit) and
/// written in Go's canonical form.
pub(crate) fn duration(node: &mut Node, path: &str) -> Result<(), TransformError> {
    if node.is_null() {
        return Ok(());
    }
    let Some(text) = sprint(node, path)? else {
        return Ok(());
    };
    match parse_duration(&text) {
        Ok(nanos) => {
            *node = str_node(format_duration(nanos), node);
            Ok(())
        }
        Err(message) => Err(TransformError::at(
            Kind::InvalidDuration,
            &node.span,
            path,
            message,
        )),
    }
}

/// A secret/config `mode`: integers as written (`0440` is already octal in
/// YAML), strings read as octal digits; written as compose prints it, `"0440"`.
pub(crate) fn file_mode(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let value = match scalar(node) {
        Some(Sc::Null) => return Ok(()),
        Some(Sc::Int(i)) => i,
        Some(Sc::Str(text)) => {
            let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
            let parsed = if !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
            {
                i64::from_str_radix(text, 8).ok()
            } else {
                None
            };
            match parsed {
                Some(v) => v,
                None => {
                    return Err(TransformError::at(
                        Kind::InvalidNumber,
                        &node.span,
                        path,
                        format!("invalid file mode {text:?}: expected octal digits"),
                    ))
                }
            }
        }
        _ => return Err(TransformError::wrong_type(node, path, "a file mode")),
    };
    let text = if value < 0 {
        format!("0-{:o}", value.unsigned_abs())
    } else {
        format!("0{value:o}")
    };
    *node = str_node(text, node);
    Ok(())
}

/// A device request `count`: an integer, or `all` which compose stores as -1.
pub(crate) fn device_count(node: &mut Node, path: &str) -> Result<(), TransformError> {
    match scalar(node) {
        Some(Sc::Int(_)) => Ok(()),
        Some(Sc::Str(text)) => {
            let value = if text.eq_ignore_ascii_case("all") {
                Some(-1)
            } else {
                parse_decimal(text)
            };
            match value {
                Some(v) => {
                    *node = int_node(v, node);
                    Ok(())
                }
                None => Err(TransformError::at(
                    Kind::InvalidNumber,
                    &node.span,
                    path,
                    format!("invalid value {text:?}, the only value allowed is 'all' or a number"),
                )),
            }
        }
        _ => Err(TransformError::wrong_type(node, path, "'all' or a number")),
    }
}

/// What a missing value (`KEY` in a list, `KEY:` in a mapping) becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unset {
    /// An empty string (labels, sysctls, annotations...).
    Empty,
    /// Null, meaning "no value" (environment, build args).
    Null,
}

/// A list-or-mapping of strings (`labels`, `environment`, `sysctls`...):
/// `KEY=VALUE` list entries become mapping entries and every value is
/// typed by YAML then turned into text.
pub(crate) fn key_values(node: &mut Node, path: &str, unset: Unset) -> Result<(), TransformError> {
    let span = node.span.clone();
    match &mut node.value {
        Value::Map(map) => {
            for (key, (_, value)) in map.iter_mut() {
                let vpath = tree::child(path, key);
                *value = match sprint(value, &vpath)? {
                    Some(text) => str_node(text, value),
                    None if unset == Unset::Null => Node::null(value.span.clone()),
                    None => str_node("", value),
                };
            }
            Ok(())
        }
        Value::Seq(items) => {
            let mut map = Mapping::new();
            for (i, it) in items.iter().enumerate() {
                let ipath = tree::item(path, i);
                let Some(text) = it.as_str() else {
                    return Err(TransformError::wrong_type(it, &ipath, "a KEY=VALUE string"));
                };
                let (key, value) = match text.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (text, None),
                };
                if unset == Unset::Null && key.chars().next_back().is_some_and(char::is_whitespace)
                {
                    return Err(TransformError::at(
                        Kind::InvalidKeyValue,
                        &it.span,
                        &ipath,
                        format!("environment variable {key:?} is declared with a trailing space"),
                    ));
                }
                let value = match (value, unset) {
                    (Some(v), _) => str_node(v, it),
                    (None, Unset::Null) => Node::null(it.span.clone()),
                    (None, Unset::Empty) => str_node("", it),
                };
                if let Some((_, slot)) = map.get_mut(key) {
                    *slot = value;
                } else {
                    tree::set(&mut map, key, value);
                    if let Some((k, _)) = map.get_mut(key) {
                        k.span = it.span.clone();
                    }
                }
            }
            *node = Node {
                value: Value::Map(map),
                span,
                tag: node.tag,
            };
            Ok(())
        }
        Value::Scalar(_) => Err(TransformError::wrong_type(
            node,
            path,
            "a mapping or a list of KEY=VALUE strings",
        )),
    }
}

/// A mapping of option strings (`driver_opts`, `logging.options`...):
/// values become text and null becomes an empty string.
pub(crate) fn options(node: &mut Node, path: &str) -> Result<(), TransformError> {
    if node.is_null() {
        return Ok(());
    }
    if node.as_map().is_none() {
        return Err(TransformError::wrong_type(node, path, "a mapping"));
    }
    key_values(node, path, Unset::Empty)
}

/// A mapping whose values may be a scalar or a list of scalars (provider
/// options): every value becomes a list of strings.
pub(crate) fn multi_options(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let Value::Map(map) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a mapping"));
    };
    for (key, (_, value)) in map.iter_mut() {
        let vpath = tree::child(path, key);
        let items: Vec<Node> = match &value.value {
            Value::Seq(items) => items.clone(),
            _ => vec![value.clone()],
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            let text = sprint(it, &tree::item(&vpath, i))?.unwrap_or_else(|| "<nil>".into());
            out.push(str_node(text, it));
        }
        *value = Node::seq(out, value.span.clone());
    }
    Ok(())
}
