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

use super::limits::{MAX_INTERPOLATION_NESTING, MAX_VALUE_BYTES};

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
    /// The template itself is longer than [`MAX_VALUE_BYTES`].
    #[error("template is longer than {limit} bytes: {}...", go_quote(.prefix))]
    TemplateTooLong {
        /// The start of the template.
        prefix: String,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// Interpolating would produce a value longer than [`MAX_VALUE_BYTES`].
    #[error("interpolated value would exceed {limit} bytes: {}", go_quote(.template))]
    ValueTooLong {
        /// The start of the template being expanded.
        template: String,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// `${` nested deeper than [`MAX_INTERPOLATION_NESTING`] inside operator arguments.
    #[error("variable references nested deeper than {limit} levels: {}", go_quote(.template))]
    NestingTooDeep {
        /// The start of the argument that went one level too deep.
        template: String,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The values interpolated over one load add up to more than
    /// [`super::limits::MAX_INTERPOLATED_BYTES`].
    #[error("interpolated values of this project add up to more than {limit} bytes")]
    TotalTooLong {
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
/// `:?`/`?` with a missing value, and on input past [`MAX_VALUE_BYTES`] or
/// [`MAX_INTERPOLATION_NESTING`].
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, InterpolationError> {
    if template.len() > MAX_VALUE_BYTES {
        return Err(InterpolationError::TemplateTooLong {
            prefix: prefix(template).to_owned(),
            limit: MAX_VALUE_BYTES,
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
        // MAX_VALUE_BYTES keeps every position within u32.
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
        if out.len() + text.len() > MAX_VALUE_BYTES {
            return Err(InterpolationError::ValueTooLong {
                template: prefix(&self.src[start..]).to_owned(),
                limit: MAX_VALUE_BYTES,
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
                    if depth + 1 > MAX_INTERPOLATION_NESTING {
                        return Err(InterpolationError::NestingTooDeep {
                            template: prefix(&self.src[arg_start..arg_end]).to_owned(),
                            limit: MAX_INTERPOLATION_NESTING,
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

/// Runs the reference `docker compose` binary for differential tests.
#[cfg(test)]
pub(crate) mod reference {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    /// The binary named by `STACKD_COMPOSE_BIN`, else the one the `compose`
    /// Python package ships; `None` (with a note on stderr) when neither is
    /// there.
    pub(crate) fn compose_binary(test: &str) -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("STACKD_COMPOSE_BIN").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let found = Command::new("python3")
            .args([
                "-c",
                "import compose,os;print(os.path.dirname(compose.__file__))",
            ])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| {
                PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("docker-compose")
            })
            .filter(|path| path.is_file());
        if found.is_none() {
            eprintln!("{test}: skipped, no docker compose v2 binary (set STACKD_COMPOSE_BIN)");
        }
        found
    }

    /// `docker compose -f compose.yaml -p p config --format json` in `dir`,
    /// with an environment holding only PATH and HOME.
    pub(crate) fn config(binary: &Path, dir: &Path) -> Output {
        Command::new(binary)
            .args([
                "-f",
                "compose.yaml",
                "-p",
                "p",
                "config",
                "--format",
                "json",
            ])
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .output()
            .expect("the compose binary runs")
    }

    /// The environment of service `s` in `config --format json` output, with
    /// compose's `$$` turned back into `$`.
    pub(crate) fn service_environment(stdout: &[u8]) -> Vec<(String, String)> {
        let doc: serde_json::Value = serde_json::from_slice(stdout).expect("compose prints JSON");
        let Some(env) = doc["services"]["s"]["environment"].as_object() else {
            return Vec::new();
        };
        env.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().replace("$$", "$")))
            .collect()
    }

    /// stderr without logrus' `time=... level=warning` lines: the error.
    pub(crate) fn error_text(stderr: &[u8]) -> String {
        let text = String::from_utf8_lossy(stderr);
        // Split on `\n` only: a `\r` the error quotes is part of it.
        let kept: Vec<&str> = text
            .split('\n')
            .filter(|line| !line.starts_with("time=\""))
            .collect();
        let joined = kept.join("\n");
        joined.strip_suffix('\n').unwrap_or(&joined).to_owned()
    }

    /// Variables compose warned about, in the order it printed them.
    pub(crate) fn unset_warnings(stderr: &str) -> Vec<String> {
        stderr
            .lines()
            .filter_map(|line| {
                let rest = line.split_once("msg=\"The \\\"")?.1;
                Some(rest.split_once("\\\" variable is not set")?.0.to_owned())
            })
            .collect()
    }

    /// The seed and case count of a generated differential test:
    /// `STACKD_DIFF_SEED` / `STACKD_DIFF_CASES` override the fixed defaults
    /// when exploring.
    pub(crate) fn generation(seed: u64, cases: usize) -> (u64, usize) {
        let read = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        (
            read("STACKD_DIFF_SEED").unwrap_or(seed),
            read("STACKD_DIFF_CASES").map_or(cases, |n| n as usize),
        )
    }

    /// A tiny deterministic generator (splitmix64), so generated cases are
    /// the same on every run.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len())]
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            "JSON" => Some(r#"{"json":2}"#.into()),
            "\u{17F}" => Some("long s".into()),
            _ => None,
        }
    }

    fn sub(template: &str) -> Result<Substituted, InterpolationError> {
        substitute(template, &vars)
    }

    fn value(template: &str) -> String {
        sub(template).unwrap().value
    }

    fn invalid(template: &str) -> String {
        match sub(template) {
            Err(InterpolationError::InvalidTemplate { template }) => template,
            other => panic!("{template:?}: expected an invalid template, got {other:?}"),
        }
    }

    fn missing(template: &str) -> (String, String) {
        match sub(template) {
            Err(InterpolationError::MissingRequired { variable, reason }) => (variable, reason),
            other => panic!("{template:?}: expected a missing variable, got {other:?}"),
        }
    }

    #[test]
    fn text_without_a_dollar_is_returned_as_is() {
        assert_eq!(
            sub("plain {text}").unwrap(),
            Substituted {
                value: "plain {text}".into(),
                unset: vec![]
            }
        );
    }

    #[test]
    fn dollar_name_with_a_set_variable_is_its_value() {
        assert_eq!(value("a $SET b"), "a value b");
    }

    #[test]
    fn dollar_name_with_an_empty_variable_is_empty_and_not_reported() {
        let got = sub("a $EMPTY b").unwrap();
        assert_eq!((got.value.as_str(), got.unset.len()), ("a  b", 0));
    }

    #[test]
    fn dollar_name_with_an_unset_variable_is_empty_and_reported() {
        assert_eq!(
            sub("a $MISSING b").unwrap(),
            Substituted {
                value: "a  b".into(),
                unset: vec!["MISSING".into()]
            }
        );
    }

    #[test]
    fn dollar_name_stops_at_the_first_non_name_character() {
        assert_eq!(value("$SET-bar $SET.x"), "value-bar value.x");
        assert_eq!(sub("$SETX").unwrap().unset, vec!["SETX"]);
    }

    #[test]
    fn braced_name_with_a_set_variable_is_its_value() {
        assert_eq!(value("${SET}x"), "valuex");
    }

    #[test]
    fn braced_name_with_an_empty_variable_is_empty() {
        assert_eq!(
            sub("${EMPTY}x").unwrap(),
            Substituted {
                value: "x".into(),
                unset: vec![]
            }
        );
    }

    #[test]
    fn braced_name_with_an_unset_variable_is_empty_and_reported() {
        assert_eq!(
            sub("${MISSING}x").unwrap(),
            Substituted {
                value: "x".into(),
                unset: vec!["MISSING".into()]
            }
        );
    }

    #[test]
    fn every_occurrence_of_an_unset_variable_is_reported() {
        assert_eq!(sub("$U ${U} $V").unwrap().unset, vec!["U", "U", "V"]);
    }

    #[test]
    fn colon_dash_keeps_a_set_variable() {
        assert_eq!(value("${SET:-def}"), "value");
    }

    #[test]
    fn colon_dash_replaces_an_empty_variable() {
        assert_eq!(value("${EMPTY:-def}"), "def");
    }

    #[test]
    fn colon_dash_replaces_an_unset_variable_without_reporting_it() {
        assert_eq!(
            sub("${MISSING:-def}").unwrap(),
            Substituted {
                value: "def".into(),
                unset: vec![]
            }
        );
    }

    #[test]
    fn dash_keeps_a_set_variable() {
        assert_eq!(value("${SET-def}"), "value");
    }

    #[test]
    fn dash_keeps_an_empty_variable() {
        assert_eq!(value("ok ${EMPTY-def}"), "ok ");
    }

    #[test]
    fn dash_replaces_an_unset_variable() {
        assert_eq!(value("${MISSING-def}"), "def");
    }

    #[test]
    fn colon_question_keeps_a_set_variable() {
        assert_eq!(value("${SET:?err}"), "value");
    }

    #[test]
    fn colon_question_fails_on_an_empty_variable() {
        assert_eq!(
            missing("${EMPTY:?is empty}"),
            ("EMPTY".into(), "is empty".into())
        );
    }

    #[test]
    fn colon_question_fails_on_an_unset_variable() {
        assert_eq!(
            missing("not ok ${MISSING:?Mandatory}"),
            ("MISSING".into(), "Mandatory".into())
        );
    }

    #[test]
    fn question_keeps_a_set_variable() {
        assert_eq!(value("${SET?err}"), "value");
    }

    #[test]
    fn question_keeps_an_empty_variable() {
        assert_eq!(value("ok ${EMPTY?err}"), "ok ");
    }

    #[test]
    fn question_fails_on_an_unset_variable() {
        assert_eq!(
            missing("${MISSING?bar-baz}"),
            ("MISSING".into(), "bar-baz".into())
        );
    }

    #[test]
    fn colon_plus_gives_the_alternative_for_a_set_variable() {
        assert_eq!(value("${SET:+alt}"), "alt");
    }

    #[test]
    fn colon_plus_gives_nothing_for_an_empty_variable() {
        assert_eq!(value("ok ${EMPTY:+alt}"), "ok ");
    }

    #[test]
    fn colon_plus_gives_nothing_for_an_unset_variable_without_reporting_it() {
        assert_eq!(
            sub("ok ${MISSING:+alt}").unwrap(),
            Substituted {
                value: "ok ".into(),
                unset: vec![]
            }
        );
    }

    #[test]
    fn plus_gives_the_alternative_for_a_set_variable() {
        assert_eq!(value("${SET+alt}"), "alt");
    }

    #[test]
    fn plus_gives_the_alternative_for_an_empty_variable() {
        assert_eq!(value("${EMPTY+alt}"), "alt");
    }

    #[test]
    fn plus_gives_nothing_for_an_unset_variable() {
        assert_eq!(value("ok ${MISSING+alt}"), "ok ");
    }

    #[test]
    fn the_first_operator_after_the_name_wins() {
        assert_eq!(value("${MISSING-myerror?msg}"), "myerror?msg");
        assert_eq!(value("${EMPTY:-/non:-alphanumeric}"), "/non:-alphanumeric");
        assert_eq!(
            missing("${MISSING?va:-lue}"),
            ("MISSING".into(), "va:-lue".into())
        );
    }

    #[test]
    fn a_required_error_without_reason_has_no_colon() {
        let err = sub("${MISSING:?}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "required variable MISSING is missing a value"
        );
        let err = sub("${MISSING?}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "required variable MISSING is missing a value"
        );
    }

    #[test]
    fn a_required_error_reason_is_interpolated() {
        let err = sub("${MISSING:?Mandatory ${SET}}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "required variable MISSING is missing a value: Mandatory value"
        );
    }

    #[test]
    fn defaults_nest() {
        assert_eq!(value("${MISSING:-${EMPTY:-${SET}}}"), "value");
        assert_eq!(value("${MISSING:-${ALSO_MISSING:-x}}"), "x");
        assert_eq!(value("+ok ${MISSING:-${EMPTY-defaultValue}}"), "+ok ");
    }

    #[test]
    fn defaults_may_hold_plain_references() {
        assert_eq!(value("ok ${MISSING-$SET}"), "ok value");
        assert_eq!(value("ok ${EMPTY:-${SET} ${SET}}"), "ok value value");
        assert_eq!(value("ok ${EMPTY+$SET ${SET:+second}}"), "ok value second");
    }

    #[test]
    fn an_unused_default_is_still_interpolated_and_reports_unset_variables() {
        assert_eq!(
            sub("${SET:-$MISSING}").unwrap(),
            Substituted {
                value: "value".into(),
                unset: vec!["MISSING".into()]
            }
        );
    }

    #[test]
    fn an_unused_default_can_still_fail() {
        assert_eq!(
            missing("${SET:-${MISSING:?inner}}"),
            ("MISSING".into(), "inner".into())
        );
        assert_eq!(invalid("${SET:-${}}"), "${}");
    }

    #[test]
    fn defaults_may_hold_braces() {
        assert_eq!(value(r#"ok ${MISSING:-{"json":1}}"#), r#"ok {"json":1}"#);
        assert_eq!(value(r#"ok ${MISSING-{"json":1}}"#), r#"ok {"json":1}"#);
        assert_eq!(value(r#"ok ${JSON:-{"json":1}}"#), r#"ok {"json":2}"#);
    }

    #[test]
    fn text_after_a_reference_up_to_the_last_brace_is_interpolated_as_a_tail() {
        assert_eq!(value("${SET:-x}}"), "value}");
        assert_eq!(value("${SET-a}${SET-b}}z"), "valuevalue}z");
        assert_eq!(sub("${SET:-x} $MISSING}").unwrap().unset, vec!["MISSING"]);
    }

    #[test]
    fn a_brace_hides_the_character_after_it_when_braces_are_counted() {
        // `{}` does not close, so the default runs to the last `}` and
        // `$MISSING` lands in the unused default rather than in a tail.
        assert_eq!(
            sub("${SET:-{}x}$MISSING}").unwrap(),
            Substituted {
                value: "value".into(),
                unset: vec!["MISSING".into()]
            }
        );
    }

    #[test]
    fn an_operator_reference_does_not_reach_past_its_line() {
        assert_eq!(value("${SET:-a}\n}"), "value\n}");
        assert_eq!(invalid("${SET:-a\n}"), "${SET:-a\n}");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        assert_eq!(value("$$SET $${SET} $$$SET"), "$SET ${SET} $value");
    }

    #[test]
    fn a_dollar_that_starts_nothing_stays() {
        for template in ["a $ string", "^REGEX$", "$}", "$", "$1", "$-x", "$\u{e9}"] {
            assert_eq!(value(template), template);
        }
    }

    #[test]
    fn names_match_case_insensitively_as_in_go_so_long_s_and_kelvin_are_name_characters() {
        assert_eq!(value("$\u{17F}!"), "long s!");
        assert_eq!(sub("${\u{212A}}").unwrap().unset, vec!["\u{212A}"]);
    }

    #[test]
    fn malformed_braces_are_invalid_and_quote_the_whole_template() {
        for template in [
            "${",
            "${}",
            "${ }",
            "${ foo}",
            "${foo }",
            "${foo!}",
            "x ${VAR",
            "${VAR:x}",
            "${A::-x}",
            "${A:-x",
            "${1}",
            "a\n${SET:-b}\n${}",
        ] {
            assert_eq!(invalid(template), template);
        }
    }

    #[test]
    fn a_malformed_reference_in_a_default_quotes_the_default() {
        assert_eq!(invalid("x ${A:-${B}"), "${B");
    }

    #[test]
    fn a_malformed_reference_in_a_tail_quotes_the_tail() {
        assert_eq!(invalid("${SET:-x} ${}"), " ${}");
    }

    #[test]
    fn a_malformed_reference_after_a_complete_one_quotes_the_whole_template() {
        assert_eq!(invalid("${A:-x}${B"), "${A:-x}${B");
    }

    #[test]
    fn the_first_error_from_the_left_wins() {
        assert_eq!(
            missing("${MISSING?first} ${}"),
            ("MISSING".into(), "first".into())
        );
        assert_eq!(invalid("${} ${MISSING?second}"), "${} ${MISSING?second}");
    }

    #[test]
    fn compose_messages_name_the_path() {
        let err = sub("${A:x}").unwrap_err();
        assert_eq!(
            err.compose_message("services.s.environment.V"),
            "invalid interpolation format for services.s.environment.V.\nYou may need to escape any $ with another $.\n${A:x}"
        );
        assert_eq!(err.to_string(), "Invalid template: \"${A:x}\"");
        let err = sub("${U:?oops}").unwrap_err();
        assert_eq!(
            err.compose_message("services.s.image"),
            "error while interpolating services.s.image: required variable U is missing a value: oops"
        );
    }

    #[test]
    fn a_template_longer_than_the_limit_is_rejected() {
        let err = sub(&"a".repeat(MAX_VALUE_BYTES + 1)).unwrap_err();
        assert!(
            matches!(err, InterpolationError::TemplateTooLong { ref prefix, .. } if prefix.len() == QUOTED_PREFIX)
        );
    }

    #[test]
    fn a_value_growing_past_the_limit_is_rejected() {
        let big = |name: &str| (name == "BIG").then(|| "x".repeat(MAX_VALUE_BYTES / 2 + 1));
        assert!(substitute("$BIG", &big).is_ok());
        let err = substitute("$BIG${BIG}", &big).unwrap_err();
        assert!(
            matches!(err, InterpolationError::ValueTooLong { .. }),
            "{err:?}"
        );
        let err = substitute("${MISSING:-$BIG$BIG}", &big).unwrap_err();
        assert!(
            matches!(err, InterpolationError::ValueTooLong { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted_and_deeper_is_rejected() {
        let nested =
            |depth: usize| format!("{}x{}", "${MISSING:-".repeat(depth), "}".repeat(depth));
        assert_eq!(value(&nested(MAX_INTERPOLATION_NESTING)), "x");
        let err = sub(&nested(MAX_INTERPOLATION_NESTING + 1)).unwrap_err();
        assert!(
            matches!(err, InterpolationError::NestingTooDeep { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn many_references_sharing_a_line_take_linear_time() {
        let template = format!("{}}}", "${SET:-x}".repeat(100_000));
        let started = std::time::Instant::now();
        let got = value(&template);
        assert_eq!(got.len(), "value".len() * 100_000 + 1);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn go_quoting_escapes_like_strconv_quote() {
        assert_eq!(
            go_quote("a\"b\\c\n\t\u{1}\u{7f}\u{a0}é\u{feff}"),
            r#""a\"b\\c\n\t\x01\x7f\u00a0é\ufeff""#
        );
    }

    fn generate(rng: &mut reference::Rng, depth: usize, out: &mut String) {
        const NAMES: &[&str] = &["S", "E", "D", "C", "low", "U", "W", "S_1", "\u{17F}"];
        const OPS: &[&str] = &[":-", ":-", ":-", "-", "-", ":+", ":+", "+", "+", ":?", "?"];
        const TEXT: &[&str] = &[
            "a", " ", "-", ":", "}", "{", "x}", "#", "?", "+", "\u{e9}", "\"", "'", "\\", "{}",
            "}}",
        ];
        const STRAY: &[&str] = &["$", "$1", "$ ", "$}", "$-", "$$", "$${S}"];
        const INVALID: &[&str] = &[
            "${", "${}", "${ S}", "${S:x}", "${S", "${1}", "${S::-x}", "${S }",
        ];
        for _ in 0..1 + rng.below(4) {
            match rng.below(20) {
                0..=4 => out.push_str(rng.pick(TEXT)),
                5..=6 => out.push_str(rng.pick(STRAY)),
                7..=8 => {
                    out.push('$');
                    out.push_str(rng.pick(NAMES));
                }
                9..=10 => {
                    out.push_str("${");
                    out.push_str(rng.pick(NAMES));
                    out.push('}');
                }
                11 if rng.below(4) == 0 => out.push_str(rng.pick(INVALID)),
                12 if rng.below(3) == 0 => out.push('\n'),
                _ if depth < 3 => {
                    out.push_str("${");
                    out.push_str(rng.pick(NAMES));
                    out.push_str(rng.pick(OPS));
                    generate(rng, depth + 1, out);
                    out.push('}');
                }
                _ => out.push_str(rng.pick(TEXT)),
            }
        }
    }

    fn reference_vars(name: &str) -> Option<String> {
        let value = match name {
            "S" => "sv",
            "E" => "",
            "D" => "d$x",
            "C" => "c}",
            "low" => "lv",
            "PATH" => "/usr/bin:/bin",
            "HOME" => "/nonexistent",
            _ => return None,
        };
        Some(value.to_owned())
    }

    fn write_compose(dir: &std::path::Path, templates: &[(String, &str)]) {
        let mut yaml = String::from("services:\n  s:\n    image: busybox\n    environment:\n");
        for (key, template) in templates {
            yaml.push_str(&format!(
                "      {key}: {}\n",
                serde_json::to_string(template).unwrap()
            ));
        }
        std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
    }

    #[test]
    fn generated_templates_agree_with_the_reference_binary() {
        let test = "generated_templates_agree_with_the_reference_binary";
        let Some(binary) = reference::compose_binary(test) else {
            return;
        };
        let (seed, cases) = reference::generation(0x5EED_0001, 300);
        let mut rng = reference::Rng(seed);
        let templates: Vec<String> = (0..cases)
            .map(|_| {
                let mut t = String::new();
                generate(&mut rng, 0, &mut t);
                t
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "S=sv\nE=\nD='d$x'\nC='c}'\nlow=lv\n",
        )
        .unwrap();

        let mut mismatches = Vec::new();
        let mut agreed = 0;
        let mut batch = Vec::new();
        let mut expected_unset = Vec::new();
        let mut failing = Vec::new();
        for (i, template) in templates.iter().enumerate() {
            match substitute(template, &reference_vars) {
                Ok(done) => {
                    batch.push((format!("V{i:03}"), template.as_str(), done.value));
                    expected_unset.extend(done.unset);
                }
                Err(err) => failing.push((template.as_str(), err)),
            }
        }

        let keyed: Vec<(String, &str)> = batch.iter().map(|(k, t, _)| (k.clone(), *t)).collect();
        write_compose(dir.path(), &keyed);
        let out = reference::config(&binary, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "compose rejected the batch: {stderr}");
        let got: std::collections::HashMap<String, String> =
            reference::service_environment(&out.stdout)
                .into_iter()
                .collect();
        for (key, template, want) in &batch {
            if got.get(key) == Some(want) {
                agreed += 1;
            } else {
                mismatches.push(format!(
                    "{template:?}: compose {:?}, ours {want:?}",
                    got.get(key)
                ));
            }
        }
        let mut warned = reference::unset_warnings(&stderr);
        warned.sort();
        expected_unset.sort();

        for (template, err) in &failing {
            write_compose(dir.path(), &[("V".to_owned(), template)]);
            let out = reference::config(&binary, dir.path());
            let stderr = reference::error_text(&out.stderr);
            let want = err.compose_message("services.s.environment.V");
            if !out.status.success() && stderr == want {
                agreed += 1;
            } else {
                mismatches.push(format!("{template:?}: compose {stderr:?}, ours {want:?}"));
            }
        }
        eprintln!(
            "{test}: {agreed}/{} agreed ({} values, {} errors), {} unset warnings",
            templates.len(),
            batch.len(),
            failing.len(),
            warned.len()
        );
        assert!(
            mismatches.is_empty(),
            "{} mismatches:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
        assert_eq!(warned, expected_unset, "unset-variable warnings differ");
    }
}
