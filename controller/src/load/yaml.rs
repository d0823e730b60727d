//! YAML text → [`Node`] trees that remember where every value came from.
//!
//! Compose needs more from YAML than a generic value gives: the scalar style
//! (`"0755"` is a string, `0755` an octal int), tags (`!reset`, `!override`),
//! merge keys with YAML 1.1 semantics, and a line and column for every error.
//! Aliases are expanded here under a budget so that a billion-laughs file
//! fails fast instead of exhausting memory.
use std::fmt;
use std::sync::Arc;

use granit_parser::{Event, Options, Parser, ScalarStyle};
use indexmap::IndexMap;

use super::limits::{MAX_ALIAS_NODES, MAX_FILE_BYTES, MAX_NESTING_DEPTH};

/// A position in a source file: the file's path, a 1-based line and column.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file the node was read from (as the user named it, made absolute).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl Span {
    /// A span for values that were not read from any file (defaults, CLI input).
    pub fn synthetic(what: &str) -> Span {
        Span {
            file: Arc::from(what),
            line: 0,
            col: 0,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How a scalar was written, which decides how it resolves to a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted: resolves to null, bool, int, float or string by its text.
    Plain,
    /// Quoted or a block scalar: always a string.
    Quoted,
}

/// A scalar as written, with its style; typed on demand by [`Scalar::resolve`].
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The text after YAML escape processing.
    pub text: String,
    /// Whether the text was quoted.
    pub style: Style,
}

/// The type a scalar resolves to under the YAML rules compose uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// `~`, `null`, or nothing.
    Null,
    /// `true` / `false` (YAML 1.2 spellings only: `yes` stays a string).
    Bool(bool),
    /// An integer, including `0x1F`, `0o17`, the YAML 1.1 octal `0777` and `0b101`.
    Int(i64),
    /// An unsigned integer too large for i64.
    UInt(u64),
    /// A float, including `.inf` and `.nan`.
    Float(f64),
    /// An unquoted timestamp (`2024-01-01`), which compose rejects where it expects strings.
    Timestamp,
    /// Anything else.
    Str,
}

impl Scalar {
    /// A quoted (string-typed) scalar.
    pub fn string(text: impl Into<String>) -> Scalar {
        Scalar {
            text: text.into(),
            style: Style::Quoted,
        }
    }

    /// Resolves the scalar's type the way compose's YAML decoder does.
    pub fn resolve(&self) -> Resolved {
        match self.style {
            Style::Quoted => Resolved::Str,
            Style::Plain => resolve_plain(&self.text),
        }
    }

    /// The value as compose prints it once typed: `0777` → `511`, `1e3` → `1000`,
    /// strings unchanged. `None` for null.
    pub fn canonical_text(&self) -> Option<String> {
        match self.resolve() {
            Resolved::Null => None,
            Resolved::Bool(b) => Some(b.to_string()),
            Resolved::Int(i) => Some(i.to_string()),
            Resolved::UInt(u) => Some(u.to_string()),
            Resolved::Float(f) => Some(go_float(f)),
            Resolved::Timestamp | Resolved::Str => Some(self.text.clone()),
        }
    }
}

/// Formats a float as Go's `fmt.Sprint` does: shortest round-trip digits,
/// exponent form below 1e-4 and from 1e21.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = f.abs().log10().floor() as i32;
    if (-4..21).contains(&exp) {
        return format!("{f}");
    }
    // Rust's `{:e}` gives `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-07`.
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exponent),
            };
            let digits = if digits.len() < 2 {
                format!("0{digits}")
            } else {
                digits.to_string()
            };
            format!("{mantissa}e{sign}{digits}")
        }
        None => s,
    }
}

fn resolve_plain(text: &str) -> Resolved {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = text.as_bytes()[0];
    match first {
        b'.' => match text.parse::<f64>() {
            Ok(f) if is_yaml_float(text) => Resolved::Float(f),
            _ => Resolved::Str,
        },
        b'+' | b'-' | b'0'..=b'9' => {
            if looks_like_timestamp(text) {
                return Resolved::Timestamp;
            }
            let plain: String = text.chars().filter(|c| *c != '_').collect();
            if let Some(r) = parse_go_int(&plain) {
                return r;
            }
            if is_yaml_float(&plain) {
                if let Ok(f) = plain.parse::<f64>() {
                    return Resolved::Float(f);
                }
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

/// Integers as Go's `strconv.ParseInt(s, 0, 64)` reads them, plus the
/// `0b`/`0o` forms YAML adds.
fn parse_go_int(s: &str) -> Option<Resolved> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        if magnitude <= i64::MAX as u64 + 1 {
            Some(Resolved::Int((magnitude as i128).wrapping_neg() as i64))
        } else {
            None
        }
    } else if magnitude <= i64::MAX as u64 {
        Some(Resolved::Int(magnitude as i64))
    } else {
        Some(Resolved::UInt(magnitude))
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// `YYYY-M-D` optionally followed by a time, as YAML's timestamp type.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let date_end = rest.find(['T', 't', ' ']).unwrap_or(rest.len());
    let mut parts = rest[..date_end].split('-');
    let ok = |p: Option<&str>, max: u32| {
        p.is_some_and(|p| {
            (1..=2).contains(&p.len())
                && p.chars().all(|c| c.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n))
        })
    };
    let month_ok = ok(parts.next(), 12);
    let day_ok = ok(parts.next(), 31);
    month_ok
        && day_ok
        && parts.next().is_none()
        && (date_end == rest.len() || rest[date_end + 1..].contains(':'))
}

/// A mapping key: always a string in compose, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key text (non-string keys are stringified as compose does).
    pub text: String,
    /// Where the key was written.
    pub span: Span,
}

/// A mapping that keeps its keys in file order.
pub type Mapping = IndexMap<String, (Key, Node)>;

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar, typed lazily.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping.
    Map(Mapping),
}

/// The `!reset` / `!override` tags compose gives meaning to in overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeTag {
    /// `!reset`: drop the value inherited from earlier files.
    Reset,
    /// `!override`: replace the earlier value instead of merging into it.
    Override,
}

/// A YAML value with the place it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it starts.
    pub span: Span,
    /// `!reset` or `!override`, when given.
    pub tag: Option<MergeTag>,
}

impl Node {
    /// A scalar node.
    pub fn scalar(scalar: Scalar, span: Span) -> Node {
        Node {
            value: Value::Scalar(scalar),
            span,
            tag: None,
        }
    }

    /// A string node.
    pub fn string(text: impl Into<String>, span: Span) -> Node {
        Node::scalar(Scalar::string(text), span)
    }

    /// A plain scalar node, typed by its text like an unquoted YAML value.
    pub fn plain(text: impl Into<String>, span: Span) -> Node {
        Node::scalar(
            Scalar {
                text: text.into(),
                style: Style::Plain,
            },
            span,
        )
    }

    /// A null node.
    pub fn null(span: Span) -> Node {
        Node::plain("null", span)
    }

    /// An empty mapping node.
    pub fn map(span: Span) -> Node {
        Node {
            value: Value::Map(Mapping::new()),
            span,
            tag: None,
        }
    }

    /// A sequence node.
    pub fn seq(items: Vec<Node>, span: Span) -> Node {
        Node {
            value: Value::Seq(items),
            span,
            tag: None,
        }
    }

    /// The mapping, if this is one.
    pub fn as_map(&self) -> Option<&Mapping> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping, mutably, if this is one.
    pub fn as_map_mut(&mut self) -> Option<&mut Mapping> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence, if this is one.
    pub fn as_seq(&self) -> Option<&Vec<Node>> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar, if this is one.
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar's text when it resolves to a string (quoted, or plain and not typed).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) if s.resolve() == Resolved::Str => Some(&s.text),
            _ => None,
        }
    }

    /// True for a null scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.resolve() == Resolved::Null)
    }

    /// Looks up a key in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key)).map(|(_, v)| v)
    }

    /// Looks up a key in a mapping node, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()
            .and_then(|m| m.get_mut(key))
            .map(|(_, v)| v)
    }

    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Map(_) => "a mapping",
            Value::Seq(_) => "a sequence",
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => "null",
                Resolved::Bool(_) => "a boolean",
                Resolved::Int(_) | Resolved::UInt(_) => "an integer",
                Resolved::Float(_) => "a number",
                Resolved::Timestamp => "a timestamp",
                Resolved::Str => "a string",
            },
        }
    }

    /// Converts to JSON with YAML typing (used for extension fields and
    /// values compose passes through untyped).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => serde_json::Value::Null,
                Resolved::Bool(b) => serde_json::Value::Bool(b),
                Resolved::Int(i) => serde_json::Value::from(i),
                Resolved::UInt(u) => serde_json::Value::from(u),
                Resolved::Float(f) => serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null),
                Resolved::Timestamp | Resolved::Str => serde_json::Value::String(s.text.clone()),
            },
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, (_, v))| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// What went wrong reading YAML.
#[derive(Debug, Clone, thiserror::Error)]
pub enum YamlError {
    /// The text is not valid YAML.
    #[error("{at}: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Span,
        /// The parser's description.
        message: String,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{file}: file is larger than the {limit}-byte limit for a compose file")]
    TooLarge {
        /// The file.
        file: Arc<str>,
        /// The limit.
        limit: usize,
    },
    /// The file is neither UTF-8 nor UTF-16 with a byte-order mark.
    #[error("{file}: file is not valid UTF-8 text")]
    NotText {
        /// The file.
        file: Arc<str>,
    },
    /// Aliases expand to more nodes than [`MAX_ALIAS_NODES`].
    #[error("{at}: aliases expand to more than {limit} values (an alias bomb?)")]
    AliasBudget {
        /// The alias that crossed the limit.
        at: Span,
        /// The limit.
        limit: usize,
    },
    /// Collections nest deeper than [`MAX_NESTING_DEPTH`].
    #[error("{at}: nesting deeper than {limit} levels")]
    TooDeep {
        /// Where the limit was crossed.
        at: Span,
        /// The limit.
        limit: usize,
    },
    /// A key appears twice in one mapping.
    #[error("{at}: mapping key {key:?} already defined at line {first_line}")]
    DuplicateKey {
        /// The second occurrence.
        at: Span,
        /// The key.
        key: String,
        /// The line of the first occurrence.
        first_line: u32,
    },
    /// An alias names an anchor that was not defined before it.
    #[error("{at}: unknown anchor {name:?}")]
    UnknownAnchor {
        /// The alias.
        at: Span,
        /// The anchor name.
        name: String,
    },
    /// A `<<` merge key whose value is not a mapping or a list of mappings.
    #[error("{at}: map merge requires a mapping or a list of mappings")]
    BadMerge {
        /// The merge value.
        at: Span,
    },
    /// A key that YAML types as a number, boolean or null.
    #[error("{at}: non-string key {key:?}: quote it to use it as a name")]
    NonStringKey {
        /// The key.
        at: Span,
        /// Its text.
        key: String,
    },
    /// A mapping key that is itself a mapping or sequence.
    #[error("{at}: a mapping key must be a scalar")]
    ComplexKey {
        /// The key.
        at: Span,
    },
}

impl YamlError {
    /// Where the error is.
    pub fn span(&self) -> Option<&Span> {
        match self {
            YamlError::Syntax { at, .. }
            | YamlError::AliasBudget { at, .. }
            | YamlError::TooDeep { at, .. }
            | YamlError::DuplicateKey { at, .. }
            | YamlError::UnknownAnchor { at, .. }
            | YamlError::NonStringKey { at, .. }
            | YamlError::BadMerge { at }
            | YamlError::ComplexKey { at } => Some(at),
            YamlError::TooLarge { .. } | YamlError::NotText { .. } => None,
        }
    }
}

/// Decodes file bytes to text: UTF-8 (a BOM is dropped) or UTF-16 with a BOM.
pub fn decode_text(bytes: &[u8], file: &Arc<str>) -> Result<String, YamlError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(YamlError::TooLarge {
            file: file.clone(),
            limit: MAX_FILE_BYTES,
        });
    }
    let utf16 = |big_endian: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| {
                if big_endian {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| YamlError::NotText { file: file.clone() })
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(false),
        [0xFE, 0xFF, ..] => utf16(true),
        [0xEF, 0xBB, 0xBF, rest @ ..] => {
            String::from_utf8(rest.to_vec()).map_err(|_| YamlError::NotText { file: file.clone() })
        }
        _ => {
            String::from_utf8(bytes.to_vec()).map_err(|_| YamlError::NotText { file: file.clone() })
        }
    }
}

/// What the parser says when nesting passes its limit.
const PARSER_NESTING_MESSAGE: &str = "recursion limit exceeded";

/// Parses every document of a YAML stream. Empty documents are skipped.
pub fn parse_documents(text: &str, file: &Arc<str>) -> Result<Vec<Node>, YamlError> {
    let mut options = Options::default();
    options.set_emit_comments(false);
    options.flow_nesting_limit = MAX_NESTING_DEPTH;
    options.block_nesting_limit = MAX_NESTING_DEPTH;
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut builder = Builder {
        file: file.clone(),
        anchors: Vec::new(),
        stack: Vec::new(),
        alias_nodes: 0,
    };
    let mut documents = Vec::new();
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let at = builder.span_at(e.marker().line(), e.marker().col());
            // The scanner counts nesting before the builder sees it: its
            // refusal is this limit's, and says so.
            if e.info() == PARSER_NESTING_MESSAGE {
                YamlError::TooDeep {
                    at,
                    limit: MAX_NESTING_DEPTH,
                }
            } else {
                YamlError::Syntax {
                    at,
                    message: e.info().to_string(),
                }
            }
        })?;
        let at = builder.span_at(span.start.line(), span.start.col());
        match event {
            Event::DocumentStart(..) => {
                builder.anchors.clear();
                builder.alias_nodes = 0;
            }
            Event::DocumentEnd => {}
            Event::StreamStart | Event::StreamEnd => {}
            Event::Scalar(text, style, anchor, tag) => {
                let tag_suffix = tag
                    .as_ref()
                    .map(|t| (t.handle().to_string(), t.suffix().to_string()));
                let (node, merge_key) = scalar_node(&text, style, tag_suffix, at)?;
                builder.push_value(node, anchor, merge_key, &mut documents)?;
            }
            Event::SequenceStart(_, anchor, tag) => {
                builder.open(
                    Frame::Seq { items: Vec::new() },
                    at,
                    anchor,
                    merge_tag(tag.as_deref()),
                )?;
            }
            Event::MappingStart(_, anchor, tag) => {
                builder.open(
                    Frame::Map {
                        entries: Vec::new(),
                        pending_key: None,
                    },
                    at,
                    anchor,
                    merge_tag(tag.as_deref()),
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                builder.close(&mut documents)?;
            }
            Event::Alias(id) => {
                let (target, target_nodes) = builder
                    .anchors
                    .iter()
                    .rev()
                    .find(|anchored| anchored.id == id)
                    .map(|anchored| (&anchored.node, anchored.nodes))
                    .ok_or_else(|| YamlError::UnknownAnchor {
                        at: at.clone(),
                        name: format!("#{id}"),
                    })?;
                // Only what aliases add is budgeted (the file's own nodes
                // are bounded by its size), and before the copy is made:
                // a bomb is refused without building what breaks it.
                builder.alias_nodes += target_nodes;
                if builder.alias_nodes > MAX_ALIAS_NODES {
                    return Err(YamlError::AliasBudget {
                        at,
                        limit: MAX_ALIAS_NODES,
                    });
                }
                let node = target.clone();
                builder.push_value(node, 0, false, &mut documents)?;
            }
            _ => {}
        }
    }
    Ok(documents)
}

fn merge_tag(tag: Option<&granit_parser::Tag>) -> Option<MergeTag> {
    let tag = tag?;
    if tag.handle() == "!" {
        match tag.suffix() {
            "reset" => return Some(MergeTag::Reset),
            "override" => return Some(MergeTag::Override),
            _ => {}
        }
    }
    None
}

/// Builds a scalar node, applying core-schema tags (`!!str`, `!!binary`...).
/// Returns whether the scalar is the merge key `<<`.
fn scalar_node(
    text: &str,
    style: ScalarStyle,
    tag: Option<(String, String)>,
    at: Span,
) -> Result<(Node, bool), YamlError> {
    let plain = style == ScalarStyle::Plain;
    let mut scalar = Scalar {
        text: text.to_string(),
        style: if plain { Style::Plain } else { Style::Quoted },
    };
    let mut tag_kind = None;
    if let Some((handle, suffix)) = &tag {
        if handle == "tag:yaml.org,2002:" {
            match suffix.as_str() {
                "str" => scalar.style = Style::Quoted,
                "binary" => {
                    let decoded = decode_base64(text).ok_or_else(|| YamlError::Syntax {
                        at: at.clone(),
                        message: "!!binary value is not valid base64".into(),
                    })?;
                    scalar.text = String::from_utf8_lossy(&decoded).into_owned();
                    scalar.style = Style::Quoted;
                }
                "int" | "float" | "bool" | "null" => {
                    scalar.style = Style::Plain;
                    let resolved = scalar.resolve();
                    let fits = match suffix.as_str() {
                        "int" => matches!(resolved, Resolved::Int(_) | Resolved::UInt(_)),
                        "float" => matches!(
                            resolved,
                            Resolved::Int(_) | Resolved::UInt(_) | Resolved::Float(_)
                        ),
                        "bool" => matches!(resolved, Resolved::Bool(_)),
                        _ => resolved == Resolved::Null,
                    };
                    if !fits {
                        return Err(YamlError::Syntax {
                            at,
                            message: format!("cannot decode {text:?} as !!{suffix}"),
                        });
                    }
                }
                _ => {}
            }
        } else if handle == "!" {
            tag_kind = match suffix.as_str() {
                "reset" => Some(MergeTag::Reset),
                "override" => Some(MergeTag::Override),
                _ => None,
            };
        }
    }
    // `<<` is the merge key when plain and untagged, or tagged `!!merge`.
    let merge_tagged = tag
        .as_ref()
        .is_some_and(|(handle, suffix)| handle == "tag:yaml.org,2002:" && suffix == "merge");
    let merge_key = text == "<<" && ((plain && tag.is_none()) || merge_tagged);
    let mut node = Node::scalar(scalar, at);
    node.tag = tag_kind;
    Ok((node, merge_key))
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(m) => 1 + m.values().map(|(_, v)| 1 + count_nodes(v)).sum::<usize>(),
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
    },
    Map {
        entries: Vec<(Node, bool, Node)>,
        pending_key: Option<(Node, bool)>,
    },
}

struct Open {
    frame: Frame,
    span: Span,
    anchor: usize,
    tag: Option<MergeTag>,
}

/// A node under an anchor, with the number of nodes each alias of it adds.
struct Anchored {
    id: usize,
    node: Node,
    nodes: usize,
}

struct Builder {
    file: Arc<str>,
    anchors: Vec<Anchored>,
    stack: Vec<Open>,
    /// Nodes the document's aliases have expanded to so far.
    alias_nodes: usize,
}

impl Builder {
    fn span_at(&self, line: usize, col: usize) -> Span {
        Span {
            file: self.file.clone(),
            line: line as u32,
            col: col as u32 + 1,
        }
    }

    fn open(
        &mut self,
        frame: Frame,
        span: Span,
        anchor: usize,
        tag: Option<MergeTag>,
    ) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_NESTING_DEPTH {
            return Err(YamlError::TooDeep {
                at: span,
                limit: MAX_NESTING_DEPTH,
            });
        }
        self.stack.push(Open {
            frame,
            span,
            anchor,
            tag,
        });
        Ok(())
    }

    fn close(&mut self, documents: &mut Vec<Node>) -> Result<(), YamlError> {
        let Some(open) = self.stack.pop() else {
            return Ok(());
        };
        let value = match open.frame {
            Frame::Seq { items } => Value::Seq(items),
            Frame::Map { entries, .. } => Value::Map(build_mapping(entries)?),
        };
        let node = Node {
            value,
            span: open.span,
            tag: open.tag,
        };
        self.push_value(node, open.anchor, false, documents)
    }

    fn push_value(
        &mut self,
        node: Node,
        anchor: usize,
        is_merge_key: bool,
        documents: &mut Vec<Node>,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.push(Anchored {
                id: anchor,
                nodes: count_nodes(&node),
                node: node.clone(),
            });
        }
        match self.stack.last_mut() {
            None => {
                if !node.is_null() {
                    documents.push(node);
                }
            }
            Some(Open {
                frame: Frame::Seq { items },
                ..
            }) => items.push(node),
            Some(Open {
                frame:
                    Frame::Map {
                        entries,
                        pending_key,
                    },
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some((node, is_merge_key)),
                Some((key, merge)) => entries.push((key, merge, node)),
            },
        }
        Ok(())
    }
}

/// Turns parsed entries into a mapping: keys stringified, duplicates
/// refused, `<<` merges applied with explicit keys winning and earlier
/// merge sources winning over later ones.
fn build_mapping(entries: Vec<(Node, bool, Node)>) -> Result<Mapping, YamlError> {
    let mut explicit = Mapping::with_capacity(entries.len());
    let mut merges = Vec::new();
    for (key, is_merge, value) in entries {
        if is_merge {
            merges.push(value);
            continue;
        }
        let Value::Scalar(scalar) = &key.value else {
            return Err(YamlError::ComplexKey { at: key.span });
        };
        // Compose refuses keys that YAML types as anything but a string.
        if scalar.resolve() != Resolved::Str {
            return Err(YamlError::NonStringKey {
                at: key.span.clone(),
                key: scalar.text.clone(),
            });
        }
        let text = scalar.text.clone();
        if let Some((first, _)) = explicit.get(&text) {
            return Err(YamlError::DuplicateKey {
                at: key.span,
                key: text,
                first_line: first.span.line,
            });
        }
        explicit.insert(
            text.clone(),
            (
                Key {
                    text,
                    span: key.span,
                },
                value,
            ),
        );
    }
    if merges.is_empty() {
        return Ok(explicit);
    }
    let mut merged = Mapping::new();
    for source in merges {
        let sources = match source.value {
            Value::Map(m) => vec![m],
            Value::Seq(items) => {
                let mut maps = Vec::new();
                for item in items {
                    match item.value {
                        Value::Map(m) => maps.push(m),
                        _ => return Err(YamlError::BadMerge { at: item.span }),
                    }
                }
                maps
            }
            Value::Scalar(_) => return Err(YamlError::BadMerge { at: source.span }),
        };
        for map in sources {
            for (k, entry) in map {
                if !explicit.contains_key(&k) && !merged.contains_key(&k) {
                    merged.insert(k, entry);
                }
            }
        }
    }
    // Explicit keys keep their place; merged ones follow, as compose prints maps sorted anyway.
    for (k, entry) in merged {
        explicit.insert(k, entry);
    }
    Ok(explicit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        let file: Arc<str> = Arc::from("test.yaml");
        let mut docs = parse_documents(text, &file).expect("parses");
        docs.remove(0)
    }

    fn parse_err(text: &str) -> YamlError {
        let file: Arc<str> = Arc::from("test.yaml");
        parse_documents(text, &file).expect_err("fails")
    }

    #[test]
    fn plain_scalars_resolve_like_compose_yaml_decoder() {
        let cases = [
            ("yes", Resolved::Str),
            ("on", Resolved::Str),
            ("true", Resolved::Bool(true)),
            ("FALSE", Resolved::Bool(false)),
            ("~", Resolved::Null),
            ("0777", Resolved::Int(511)),
            ("0o17", Resolved::Int(15)),
            ("0x1F", Resolved::Int(31)),
            ("1_000", Resolved::Int(1000)),
            ("-12", Resolved::Int(-12)),
            ("1e3", Resolved::Float(1000.0)),
            ("1.10", Resolved::Float(1.1)),
            (".5", Resolved::Float(0.5)),
            ("2024-01-01", Resolved::Timestamp),
            ("8080:80", Resolved::Str),
            ("1.2.3", Resolved::Str),
            ("18446744073709551615", Resolved::UInt(u64::MAX)),
        ];
        for (text, want) in cases {
            let scalar = Scalar {
                text: text.into(),
                style: Style::Plain,
            };
            assert_eq!(scalar.resolve(), want, "{text}");
        }
    }

    #[test]
    fn quoted_scalars_are_always_strings() {
        let node = parse("a: '0777'\nb: \"true\"\n");
        assert_eq!(node.get("a").and_then(Node::as_str), Some("0777"));
        assert_eq!(node.get("b").and_then(Node::as_str), Some("true"));
    }

    #[test]
    fn canonical_text_prints_numbers_as_go_does() {
        let text = |t: &str| {
            Scalar {
                text: t.into(),
                style: Style::Plain,
            }
            .canonical_text()
        };
        assert_eq!(text("0777").as_deref(), Some("511"));
        assert_eq!(text("1e3").as_deref(), Some("1000"));
        assert_eq!(text("1.10").as_deref(), Some("1.1"));
        assert_eq!(text("1e21").as_deref(), Some("1e+21"));
        assert_eq!(text("0.00001").as_deref(), Some("1e-05"));
        assert_eq!(text("null"), None);
    }

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let node = parse("services:\n  web:\n    image: nginx\n");
        let image = node
            .get("services")
            .and_then(|s| s.get("web"))
            .and_then(|w| w.get("image"));
        let span = &image.expect("image").span;
        assert_eq!((span.line, span.col), (3, 12));
    }

    #[test]
    fn merge_keys_fill_missing_keys_and_explicit_keys_win() {
        let node =
            parse("base: &b {a: 1, b: 2}\nother: &o {b: 3, c: 4}\nx:\n  <<: [*b, *o]\n  a: 9\n");
        let x = node.get("x").expect("x");
        let text = |k: &str| x.get(k).and_then(Node::as_scalar).map(|s| s.text.clone());
        assert_eq!(text("a").as_deref(), Some("9"));
        assert_eq!(text("b").as_deref(), Some("2"));
        assert_eq!(text("c").as_deref(), Some("4"));
    }

    #[test]
    fn an_explicit_merge_tag_makes_a_merge_key() {
        let node = parse("base: &b {a: 1}\nx:\n  !!merge <<: *b\n  c: 2\n");
        let x = node.get("x").expect("x");
        assert_eq!(
            x.get("a")
                .and_then(Node::as_scalar)
                .map(|s| s.text.as_str()),
            Some("1")
        );
        assert!(x.get("<<").is_none());
    }

    #[test]
    fn duplicate_keys_are_refused_with_both_lines() {
        let err = parse_err("a: 1\nb: 2\na: 3\n");
        assert_eq!(
            err.to_string(),
            "test.yaml:3:1: mapping key \"a\" already defined at line 1"
        );
    }

    #[test]
    fn billion_laughs_fails_fast_on_the_alias_budget() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        // 9^10 nodes expanded would never fit in memory: getting the
        // budget error at all shows the expansion stopped at the limit.
        let err = parse_err(&text);
        assert!(matches!(err, YamlError::AliasBudget { .. }), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_with_a_clear_error() {
        let text = format!(
            "x: {}{}\n",
            "[".repeat(MAX_NESTING_DEPTH + 5),
            "]".repeat(MAX_NESTING_DEPTH + 5)
        );
        let err = parse_err(&text);
        assert!(err.to_string().contains("test.yaml:1:"), "{err}");
    }

    #[test]
    fn reset_and_override_tags_are_kept() {
        let node = parse("a: !reset []\nb: !override {x: 1}\nc: !reset null\n");
        assert_eq!(node.get("a").and_then(|n| n.tag), Some(MergeTag::Reset));
        assert_eq!(node.get("b").and_then(|n| n.tag), Some(MergeTag::Override));
        assert_eq!(node.get("c").and_then(|n| n.tag), Some(MergeTag::Reset));
    }

    #[test]
    fn binary_tag_is_decoded_to_text() {
        let node = parse("a: !!binary aGVsbG8=\n");
        assert_eq!(node.get("a").and_then(Node::as_str), Some("hello"));
    }

    #[test]
    fn every_document_of_a_stream_is_returned() {
        let file: Arc<str> = Arc::from("t.yaml");
        let docs = parse_documents("a: 1\n---\nb: 2\n", &file).expect("parses");
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn utf16_with_a_byte_order_mark_is_decoded() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "a: 1\n".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        let file: Arc<str> = Arc::from("t.yaml");
        assert_eq!(decode_text(&bytes, &file).expect("decodes"), "a: 1\n");
    }
}
