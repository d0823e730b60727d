//! Variable interpolation in compose strings (`$VAR`, `${VAR:-default}`, ...),
//! with the semantics of compose-go v2.9.1's template engine, quirks included.
//!
//! The engine mirrors a regex-driven scanner, so some corners are surprising
//! but deliberate:
//!
//! - `${NAME<op>...}` (op one of `:-` `-` `:+` `+` `:?` `?`) first extends to
//!   the *last* `}` on its line, then is cut at the first balanced `}`; what
//!   lies between the two is interpolated as a template of its own. For plain
//!   text that is the same as continuing the scan, but an invalid-template
//!   error then quotes only that tail.
//! - The argument after the operator is always interpolated, even when the
//!   variable is set and the argument unused: `${SET:-${UNSET:?x}}` fails,
//!   and unset variables inside it are reported.
//! - Names are `[A-Za-z_][A-Za-z0-9_]*`, matched case-insensitively by Go's
//!   regexp, which also lets `ſ` (U+017F) and `K` (U+212A) in.
//! - A `$` that starts nothing valid (`$ `, `$1`, `$}`, `$` at the end) stays
//!   literal, but every `${` must start a well-formed reference.
use std::fmt::Write as _;

/// Longest template accepted and longest value produced, in bytes. compose
/// has no such bound; it is there against hostile input.
pub const MAX_LEN: usize = 1 << 20;

/// Deepest nesting of `${` inside operator arguments (`${A:-${B:-...}}`).
pub const MAX_DEPTH: usize = 64;

/// How much of an oversized template an error quotes.
const QUOTED_PREFIX: usize = 80;

/// A successful interpolation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Substituted {
    /// The runtime value: references replaced and `$$` turned into `$`.
    /// compose prints a literal `$` back as `$$` in `config` output; doing
    /// that is the printer's business, not this value's.
    pub value: String,
    /// Variables that were referenced, unset, and had no operator to fall
    /// back on, once per occurrence and in order (including occurrences in
    /// operator arguments that ended up unused). compose warns for each:
    /// `The "X" variable is not set. Defaulting to a blank string.`
    pub unset: Vec<String>,
}

/// Why a template could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    /// A `${` that does not open a well-formed reference. `template` is the
    /// text compose quotes: the whole string, or the operator argument or
    /// trailing part the bad `${` sits in.
    #[error("Invalid template: {}", go_quote(.template))]
    InvalidTemplate {
        /// The (sub)template compose reports.
        template: String,
    },
    /// `${VAR:?reason}` / `${VAR?reason}` met an unset (or, for `:?`, empty)
    /// variable.
    #[error("required variable {variable} is missing a value{}", reason_suffix(.reason))]
    MissingRequired {
        /// The variable's name.
        variable: String,
        /// The interpolated text after `?`, possibly empty.
        reason: String,
    },
    /// The template itself is longer than [`MAX_LEN`].
    #[error("template is longer than {limit} bytes: {}...", go_quote(.prefix))]
    TemplateTooLong {
        /// The start of the template.
        prefix: String,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// Interpolating would produce a value longer than [`MAX_LEN`].
    #[error("interpolated value would exceed {limit} bytes: {}", go_quote(.template))]
    ValueTooLong {
        /// The start of the template being expanded.
        template: String,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// `${` nested deeper than [`MAX_DEPTH`] inside operator arguments.
    #[error("variable references nested deeper than {limit} levels: {}", go_quote(.template))]
    NestingTooDeep {
        /// The start of the argument that went one level too deep.
        template: String,
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl InterpolationError {
    /// compose's full message for a failure in the value at `path`
    /// (`services.web.environment.FOO`).
    pub fn compose_message(&self, path: &str) -> String {
        match self {
            Self::InvalidTemplate { template } => format!(
                "invalid interpolation format for {path}.\nYou may need to escape any $ with another $.\n{template}"
            ),
            other => format!("error while interpolating {path}: {other}"),
        }
    }
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// Interpolates `template`, resolving variables with `lookup` (`None` means
/// unset, `Some("")` set but empty).
///
/// Returns the runtime value (`$$` becomes `$`) and the unset variables to
/// warn about; fails like compose does on malformed references and on
/// `:?`/`?` with a missing value, and on input past [`MAX_LEN`] or
/// [`MAX_DEPTH`].
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, InterpolationError> {
    if template.len() > MAX_LEN {
        return Err(InterpolationError::TemplateTooLong {
            prefix: prefix(template).to_owned(),
            limit: MAX_LEN,
        });
    }
    if !template.contains('$') {
        return Ok(Substituted {
            value: template.to_owned(),
            unset: Vec::new(),
        });
    }
    let mut engine = Engine {
        src: template,
        lookup,
        unset: Vec::new(),
        index: None,
    };
    let value = engine.expand(0, template.len(), 0)?;
    Ok(Substituted {
        value,
        unset: engine.unset,
    })
}

/// The operators after a braced name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    /// `:-`: the argument when unset or empty.
    DefaultIfEmpty,
    /// `-`: the argument when unset.
    DefaultIfUnset,
    /// `:+`: the argument when set and not empty.
    AlternativeIfNonEmpty,
    /// `+`: the argument when set.
    AlternativeIfSet,
    /// `:?`: fail when unset or empty.
    RequiredNonEmpty,
    /// `?`: fail when unset.
    RequiredSet,
}

impl Operator {
    fn parse(colon: bool, op: u8) -> Option<Self> {
        Some(match (colon, op) {
            (true, b'-') => Self::DefaultIfEmpty,
            (false, b'-') => Self::DefaultIfUnset,
            (true, b'+') => Self::AlternativeIfNonEmpty,
            (false, b'+') => Self::AlternativeIfSet,
            (true, b'?') => Self::RequiredNonEmpty,
            (false, b'?') => Self::RequiredSet,
            _ => return None,
        })
    }
}

/// Where each line ends and where the `}`s are, so that finding "the last
/// `}` on this line" stays O(1) however many references share a line.
struct LineIndex {
    /// `next_newline[i]`: the first `\n` at or after `i`, or the length.
    next_newline: Vec<u32>,
    /// `closes_before[i]`: one past the last `}` before `i`, or 0.
    closes_before: Vec<u32>,
}

impl LineIndex {
    fn new(src: &[u8]) -> Self {
        // MAX_LEN keeps every position within u32.
        let len = src.len();
        let mut next_newline = vec![0u32; len + 1];
        let mut next = len as u32;
        next_newline[len] = next;
        for i in (0..len).rev() {
            if src[i] == b'\n' {
                next = i as u32;
            }
            next_newline[i] = next;
        }
        let mut closes_before = vec![0u32; len + 1];
        let mut last = 0u32;
        for i in 0..len {
            closes_before[i] = last;
            if src[i] == b'}' {
                last = i as u32 + 1;
            }
        }
        closes_before[len] = last;
        LineIndex {
            next_newline,
            closes_before,
        }
    }
}

struct Engine<'a> {
    src: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    unset: Vec<String>,
    index: Option<LineIndex>,
}

/// Starts a name: what `(?i)[_a-z]` matches in Go.
fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '\u{17F}' || c == '\u{212A}'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

fn prefix(s: &str) -> &str {
    if s.len() <= QUOTED_PREFIX {
        return s;
    }
    let mut end = QUOTED_PREFIX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Engine<'_> {
    /// End of the name starting at `from`, or `from` when there is none.
    fn name_end(&self, from: usize, limit: usize) -> usize {
        let mut chars = self.src[from..limit].char_indices();
        match chars.next() {
            Some((_, c)) if is_name_start(c) => {}
            _ => return from,
        }
        for (offset, c) in chars {
            if !is_name_char(c) {
                return from + offset;
            }
        }
        limit
    }

    /// The last `}` at or after `from`, before both `limit` and the end of
    /// `from`'s line: where Go's greedy `(.*)}` stops.
    fn last_close_on_line(&mut self, from: usize, limit: usize) -> Option<usize> {
        let src = self.src.as_bytes();
        let index = self.index.get_or_insert_with(|| LineIndex::new(src));
        let line_limit = limit.min(index.next_newline[from] as usize);
        let close = index.closes_before[line_limit] as usize;
        (close > from).then(|| close - 1)
    }

    /// The first `}` that balances the `{` of the reference starting at
    /// `start`, counted as compose does: a `{` also hides the byte after it.
    fn balanced_close(&self, start: usize, match_end: usize) -> Option<usize> {
        let bytes = self.src.as_bytes();
        let mut open = 0usize;
        let mut i = start;
        while i <= match_end {
            if bytes[i] == b'}' {
                open = open.saturating_sub(1);
                if open == 0 {
                    return Some(i);
                }
            }
            if bytes[i] == b'{' {
                open += 1;
                i += 1;
            }
            i += 1;
        }
        None
    }

    fn push(&self, out: &mut String, text: &str, start: usize) -> Result<(), InterpolationError> {
        if out.len() + text.len() > MAX_LEN {
            return Err(InterpolationError::ValueTooLong {
                template: prefix(&self.src[start..]).to_owned(),
                limit: MAX_LEN,
            });
        }
        out.push_str(text);
        Ok(())
    }

    fn resolve_plain(&mut self, name: &str) -> String {
        match (self.lookup)(name) {
            Some(value) => value,
            None => {
                self.unset.push(name.to_owned());
                String::new()
            }
        }
    }

    /// Interpolates `src[start..end]` as one template.
    fn expand(
        &mut self,
        start: usize,
        end: usize,
        depth: usize,
    ) -> Result<String, InterpolationError> {
        let src = self.src;
        let bytes = src.as_bytes();
        let mut out = String::new();
        // The template compose would quote in an invalid-template error: the
        // whole range, or the trailing part of a reference while in one.
        let mut context = start;
        let mut outer_context = start;
        let mut tail_end: Option<usize> = None;
        let mut i = start;
        loop {
            let limit = tail_end.unwrap_or(end);
            if i >= limit {
                if tail_end.take().is_some() {
                    context = outer_context;
                    continue;
                }
                break;
            }
            let Some(offset) = bytes[i..limit].iter().position(|&b| b == b'$') else {
                self.push(&mut out, &src[i..limit], start)?;
                i = limit;
                continue;
            };
            let dollar = i + offset;
            self.push(&mut out, &src[i..dollar], start)?;
            let invalid = || InterpolationError::InvalidTemplate {
                template: src[context..limit].to_owned(),
            };
            match bytes.get(dollar + 1).filter(|_| dollar + 1 < limit) {
                Some(b'$') => {
                    self.push(&mut out, "$", start)?;
                    i = dollar + 2;
                }
                Some(b'{') => {
                    let name_start = dollar + 2;
                    let name_end = self.name_end(name_start, limit);
                    if name_end == name_start || name_end >= limit {
                        return Err(invalid());
                    }
                    let name = &src[name_start..name_end];
                    let (colon, op_at) = match bytes[name_end] {
                        b'}' => {
                            let value = self.resolve_plain(name);
                            self.push(&mut out, &value, start)?;
                            i = name_end + 1;
                            continue;
                        }
                        b':' => (true, name_end + 1),
                        _ => (false, name_end),
                    };
                    let operator = match bytes.get(op_at).filter(|_| op_at < limit) {
                        Some(&op) => Operator::parse(colon, op),
                        None => None,
                    };
                    let Some(operator) = operator else {
                        return Err(invalid());
                    };
                    let arg_start = op_at + 1;
                    let Some(match_end) = self.last_close_on_line(arg_start, limit) else {
                        return Err(invalid());
                    };
                    let (arg_end, tail) = match self.balanced_close(dollar, match_end) {
                        Some(close) => (close, Some((close + 1, match_end + 1))),
                        None => (match_end, None),
                    };
                    if depth + 1 > MAX_DEPTH {
                        return Err(InterpolationError::NestingTooDeep {
                            template: prefix(&self.src[arg_start..arg_end]).to_owned(),
                            limit: MAX_DEPTH,
                        });
                    }
                    let name = name.to_owned();
                    let arg = self.expand(arg_start, arg_end, depth + 1)?;
                    let value = self.apply(&name, operator, arg)?;
                    self.push(&mut out, &value, start)?;
                    match tail {
                        Some((tail_start, end_of_tail)) if tail_start < end_of_tail => {
                            // Every tail on this line ends at the same `}`, so
                            // one saved outer context is enough.
                            debug_assert!(tail_end.is_none_or(|e| e == end_of_tail));
                            if tail_end.is_none() {
                                outer_context = context;
                                tail_end = Some(end_of_tail);
                            }
                            context = tail_start;
                            i = tail_start;
                        }
                        _ => i = match_end + 1,
                    }
                }
                Some(_) => {
                    let name_end = self.name_end(dollar + 1, limit);
                    if name_end == dollar + 1 {
                        self.push(&mut out, "$", start)?;
                        i = dollar + 1;
                    } else {
                        let value = self.resolve_plain(&src[dollar + 1..name_end]);
                        self.push(&mut out, &value, start)?;
                        i = name_end;
                    }
                }
                None => {
                    self.push(&mut out, "$", start)?;
                    i = dollar + 1;
                }
            }
        }
        Ok(out)
    }

    fn apply(
        &self,
        name: &str,
        operator: Operator,
        arg: String,
    ) -> Result<String, InterpolationError> {
        let value = (self.lookup)(name);
        let missing = || InterpolationError::MissingRequired {
            variable: name.to_owned(),
            reason: arg.clone(),
        };
        Ok(match operator {
            Operator::DefaultIfEmpty => match value {
                Some(v) if !v.is_empty() => v,
                _ => arg,
            },
            Operator::DefaultIfUnset => value.unwrap_or(arg),
            Operator::AlternativeIfNonEmpty => match value {
                Some(v) if !v.is_empty() => arg,
                other => other.unwrap_or_default(),
            },
            Operator::AlternativeIfSet => match value {
                Some(_) => arg,
                None => String::new(),
            },
            Operator::RequiredNonEmpty => match value {
                Some(v) if !v.is_empty() => v,
                _ => return Err(missing()),
            },
            Operator::RequiredSet => match value {
                Some(v) => v,
                None => return Err(missing()),
            },
        })
    }
}

/// Quotes `s` as Go's `%q` / `%#v` do, since compose's messages embed
/// strings that way. Printability is approximated without Unicode category
/// tables: controls, non-ASCII spaces and the common format characters are
/// escaped.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if go_is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let code = c as u32;
    if code & 0xFFFE == 0xFFFE || (0xFDD0..=0xFDEF).contains(&code) {
        return false;
    }
    !matches!(
        code,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xE000..=0xF8FF
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xF0000..
    )
}
