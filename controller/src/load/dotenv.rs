//! `.env`, `env_file` and `label_file` parsing with compose's rules: the
//! compose-go v2.9.1 dotenv grammar, and the `raw` `env_file` format that
//! the docker compose CLI registers (the `docker run --env-file` grammar).
//!
//! The dotenv grammar, quirks included:
//!
//! - Blank lines and lines starting with `#` are skipped; `export ` before a
//!   key is dropped; `KEY=value` and `KEY: value` both assign.
//! - Keys are letters, digits, `_ . - [ ]`; spaces and tabs around them are
//!   dropped, but a space inside a key is an error while a tab is kept.
//! - A line holding only a key inherits it: the lookup's value, or nothing.
//!   The same word on the last line, with no newline after it, is instead
//!   the value of the empty key (`"" = "WORD"`), as compose does.
//! - Unquoted values run to the end of the line, lose a ` #` comment and
//!   trailing whitespace (so CRLF files work), and are interpolated.
//! - `'single'` values are literal except that `\'` is a quote.
//! - `"double"` values may span lines, expand `\a \b \f \n \r \t \v \\ \" \$`
//!   and `\0NNN` octal escapes (others stay as written), then are
//!   interpolated; `\$` stays a literal `$`.
//! - Text after a closing quote is parsed as the next statement.
//! - Interpolation looks a variable up in the caller's lookup first, then in
//!   the keys assigned so far (this file's, then `existing`).
use std::collections::HashMap;

use super::interpolate::{go_quote, substitute, InterpolationError};

/// The longest line (in bytes, counting a trailing `\r`) the `raw` format
/// reads: Go's `bufio.Scanner` default token size.
pub const RAW_MAX_LINE: usize = 64 * 1024;

/// What parsing one file produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedEnv {
    /// Keys in order of first appearance, each with its last assigned value.
    /// `None` is a bare `KEY` line the lookup did not resolve: compose then
    /// keeps whatever value the key already had, or leaves it out.
    pub entries: Vec<(String, Option<String>)>,
    /// Unset variables met while interpolating, once per occurrence; compose
    /// warns for each.
    pub unset: Vec<String>,
}

/// Why an env file was rejected. Display is compose's text after its
/// `failed to read <file>: ` (dotenv) or `failed to parse env_file <file>: `
/// (`raw`) prefix; `line` is where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DotenvError {
    /// A key holds a character outside letters, digits and `_ . - [ ]`.
    #[error(
        "line {line}: unexpected character {} in variable name {}",
        go_quote(&.character.to_string()),
        go_quote(.statement)
    )]
    UnexpectedCharacter {
        /// The line compose names.
        line: usize,
        /// The offending character.
        character: char,
        /// The statement's first line.
        statement: String,
    },
    /// A key holds a space (`A B=1`).
    #[error("line {line}: key cannot contain a space")]
    KeyContainsSpace {
        /// The line compose names.
        line: usize,
        /// The key as written.
        key: String,
    },
    /// A quoted value has no closing quote. As in compose, `line` is the
    /// number of lines read by then, which is the file's last line.
    #[error("line {line}: unterminated quoted value {text}")]
    UnterminatedQuote {
        /// The line compose names.
        line: usize,
        /// The value's first line, opening quote included.
        text: String,
    },
    /// `export` followed by nothing but blanks at the end of the file.
    #[error("zero length string")]
    MissingStatement {
        /// The line the `export` is on.
        line: usize,
    },
    /// A value's interpolation failed.
    #[error("{source}")]
    Interpolation {
        /// The line the statement starts on.
        line: usize,
        /// The key being assigned.
        key: String,
        /// What went wrong.
        source: InterpolationError,
    },
    /// `raw` format: a line starts with `=`.
    #[error("no variable name on line '{text}'")]
    RawMissingName {
        /// The line number.
        line: usize,
        /// The line, leading whitespace removed.
        text: String,
    },
    /// `raw` format: a key holds a space or a tab.
    #[error("variable '{key}' contains whitespaces")]
    RawKeyContainsWhitespace {
        /// The line number.
        line: usize,
        /// The key as written.
        key: String,
    },
    /// `raw` format: a line reaches [`RAW_MAX_LINE`] bytes.
    #[error("bufio.Scanner: token too long")]
    RawLineTooLong {
        /// The line number.
        line: usize,
    },
}

impl DotenvError {
    /// The line the error is about (1-based).
    pub fn line(&self) -> usize {
        match self {
            Self::UnexpectedCharacter { line, .. }
            | Self::KeyContainsSpace { line, .. }
            | Self::UnterminatedQuote { line, .. }
            | Self::MissingStatement { line }
            | Self::Interpolation { line, .. }
            | Self::RawMissingName { line, .. }
            | Self::RawKeyContainsWhitespace { line, .. }
            | Self::RawLineTooLong { line } => *line,
        }
    }
}

/// Parses a dotenv file on its own: bare keys and interpolation consult
/// `lookup` first, then the keys assigned earlier in the file.
pub fn parse_dotenv(
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, DotenvError> {
    parse_dotenv_with(content, lookup, &|_| None).map(|parsed| parsed.entries)
}

/// Parses a dotenv file that adds to values already loaded.
///
/// compose parses into one map shared across files, so interpolation falls
/// back, after `lookup`, on this file's earlier keys and then on `existing`
/// (the map as it stood before this file). For the project `.env` files
/// compose uses the process environment as `lookup` and the earlier files as
/// `existing`; for a service's `env_file`s, the project environment then the
/// service's `environment` as `lookup`, and the service's `environment`
/// values plus the earlier env files as `existing`.
pub fn parse_dotenv_with(
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    existing: &dyn Fn(&str) -> Option<String>,
) -> Result<ParsedEnv, DotenvError> {
    let parser = Parser {
        line: 1,
        lookup,
        existing,
        entries: Entries::default(),
        unset: Vec::new(),
    };
    parser.parse(content)
}

/// Parses an `env_file` with `format: raw`: one `KEY=value` per line, the
/// value taken verbatim (quotes, `$` and trailing blanks included), no
/// interpolation; lines starting with `#` are comments; a bare `KEY` is
/// resolved with `lookup` (`None` when it is not found, which compose leaves
/// out).
pub fn parse_raw_env(
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, DotenvError> {
    let mut entries = Entries::default();
    let segments: Vec<&str> = content.split('\n').collect();
    let last = segments.len() - 1;
    for (index, raw) in segments.into_iter().enumerate() {
        let number = index + 1;
        if index == last && raw.is_empty() {
            break;
        }
        if raw.len() >= RAW_MAX_LINE {
            return Err(DotenvError::RawLineTooLong { line: number });
        }
        let mut line = raw.strip_suffix('\r').unwrap_or(raw);
        if index == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        let line = line.trim_start_matches(char::is_whitespace);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(DotenvError::RawMissingName {
                line: number,
                text: line.to_owned(),
            });
        }
        if key.contains([' ', '\t']) {
            return Err(DotenvError::RawKeyContainsWhitespace {
                line: number,
                key: key.to_owned(),
            });
        }
        match value {
            Some(value) => entries.assign(key, Some(value.to_owned())),
            None => entries.assign(key, lookup(key)),
        }
    }
    Ok(entries.list)
}

/// Keys in order of first appearance, with compose's map semantics: a later
/// value replaces an earlier one, an unresolved bare key changes nothing.
#[derive(Default)]
struct Entries {
    list: Vec<(String, Option<String>)>,
    positions: HashMap<String, usize>,
}

impl Entries {
    fn assign(&mut self, key: &str, value: Option<String>) {
        match self.positions.get(key) {
            Some(&at) => {
                if value.is_some() {
                    self.list[at].1 = value;
                }
            }
            None => {
                self.positions.insert(key.to_owned(), self.list.len());
                self.list.push((key.to_owned(), value));
            }
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.positions
            .get(key)
            .and_then(|&at| self.list[at].1.clone())
    }
}

/// Go's `isSpace` in the dotenv parser: blanks but not `\n`.
fn is_blank(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

struct Parser<'a> {
    line: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    existing: &'a dyn Fn(&str) -> Option<String>,
    entries: Entries,
    unset: Vec<String>,
}

impl Parser<'_> {
    fn parse(mut self, content: &str) -> Result<ParsedEnv, DotenvError> {
        let mut rest = content.strip_prefix('\u{feff}').unwrap_or(content);
        loop {
            rest = self.statement_start(rest);
            if rest.is_empty() {
                break;
            }
            let statement_line = self.line;
            let (key, after, inherited) = self.locate_key(rest)?;
            if key.contains(' ') {
                return Err(DotenvError::KeyContainsSpace {
                    line: self.line,
                    key: key.to_owned(),
                });
            }
            if inherited {
                let value = (self.lookup)(key);
                self.entries.assign(key, value);
                rest = after;
                continue;
            }
            let (value, after) = self.extract_value(after, key, statement_line)?;
            self.entries.assign(key, Some(value));
            rest = after;
        }
        Ok(ParsedEnv {
            entries: self.entries.list,
            unset: self.unset,
        })
    }

    /// Skips whitespace and comment lines, counting newlines.
    fn statement_start<'s>(&mut self, mut src: &'s str) -> &'s str {
        loop {
            let Some(pos) = src.find(|c: char| !c.is_whitespace()) else {
                self.line += src.bytes().filter(|&b| b == b'\n').count();
                return "";
            };
            self.line += src[..pos].bytes().filter(|&b| b == b'\n').count();
            src = &src[pos..];
            if !src.starts_with('#') {
                return src;
            }
            match src.find('\n') {
                Some(newline) => src = &src[newline..],
                None => return "",
            }
        }
    }

    /// Reads the key; returns it, what follows its `=`/`:`/newline, and
    /// whether it was a bare key.
    fn locate_key<'s>(&mut self, src: &'s str) -> Result<(&'s str, &'s str, bool), DotenvError> {
        let mut src = src;
        if let Some(after) = src.strip_prefix("export") {
            // Go's `^export\s+`, where `\s` is [\t\n\f\r ].
            if after.starts_with(['\t', '\n', '\u{c}', '\r', ' ']) {
                src = after.trim_start_matches(is_blank);
            }
        }
        let mut end = None;
        for (i, c) in src.char_indices() {
            if is_blank(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    end = Some((i, c == '\n'));
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                // Go accepts Unicode letters and numbers; `is_alphabetic`
                // is slightly wider (it admits some marks and symbols).
                c if c.is_alphabetic() || c.is_numeric() => {}
                c => {
                    return Err(DotenvError::UnexpectedCharacter {
                        line: self.line,
                        character: c,
                        statement: src.split('\n').next().unwrap_or_default().to_owned(),
                    })
                }
            }
        }
        if src.is_empty() {
            return Err(DotenvError::MissingStatement { line: self.line });
        }
        let (key, offset, inherited) = match end {
            Some((i, inherited)) => (&src[..i], i + 1, inherited),
            None => ("", 0, false),
        };
        if inherited && !key.contains(' ') {
            self.line += 1;
        }
        let key = key.trim_end_matches(char::is_whitespace);
        let after = src[offset..].trim_start_matches(is_blank);
        Ok((key, after, inherited))
    }

    fn extract_value<'s>(
        &mut self,
        src: &'s str,
        key: &str,
        statement_line: usize,
    ) -> Result<(String, &'s str), DotenvError> {
        let bytes = src.as_bytes();
        let quote = match bytes.first() {
            Some(&quote @ (b'"' | b'\'')) => quote,
            _ => {
                let (value, rest) = src.split_once('\n').unwrap_or((src, ""));
                self.line += 1;
                let value = value.split(" #").next().unwrap_or_default();
                let value = value.trim_end_matches(char::is_whitespace);
                let value = self.interpolate(value, key, statement_line)?;
                return Ok((value, rest));
            }
        };
        let mut chars = Vec::new();
        let mut escaped = false;
        for (i, &b) in bytes.iter().enumerate().skip(1) {
            if b == b'\n' {
                self.line += 1;
            }
            if b != quote {
                if !escaped && b == b'\\' {
                    escaped = true;
                    continue;
                }
                if escaped {
                    escaped = false;
                    chars.push(b'\\');
                }
                chars.push(b);
                continue;
            }
            if escaped {
                escaped = false;
                chars.push(b);
                continue;
            }
            // Only ASCII backslashes were dropped, so this stays UTF-8.
            let value = String::from_utf8(chars)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            let value = if quote == b'"' {
                self.interpolate(&expand_escapes(&value), key, statement_line)?
            } else {
                value
            };
            return Ok((value, &src[i + 1..]));
        }
        let end = src.find('\n').unwrap_or(src.len());
        Err(DotenvError::UnterminatedQuote {
            line: self.line,
            text: src[..end].to_owned(),
        })
    }

    fn interpolate(&mut self, value: &str, key: &str, line: usize) -> Result<String, DotenvError> {
        let lookup = |name: &str| {
            (self.lookup)(name)
                .or_else(|| self.entries.get(name))
                .or_else(|| (self.existing)(name))
        };
        match substitute(value, &lookup) {
            Ok(done) => {
                self.unset.extend(done.unset);
                Ok(done.value)
            }
            Err(source) => Err(DotenvError::Interpolation {
                line,
                key: key.to_owned(),
                source,
            }),
        }
    }
}

/// Expands the escapes compose allows in double-quoted values. `\$` becomes
/// `$$` so that interpolation leaves a literal `$`; an octal escape that is
/// not exactly three octal digits up to `\0377` loses its `0` and stays.
fn expand_escapes(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'\\') {
        let at = i + offset;
        out.push_str(&value[i..at]);
        let replacement = match bytes.get(at + 1) {
            Some(b'a') => "\u{7}",
            Some(b'b') => "\u{8}",
            Some(b'f') => "\u{c}",
            Some(b'n') => "\n",
            Some(b'r') => "\r",
            Some(b't') => "\t",
            Some(b'v') => "\u{b}",
            Some(b'"') => "\"",
            Some(b'\\') => "\\",
            Some(b'$') => "$$",
            Some(b'c') => "\\c",
            Some(b'0') => {
                let digits = bytes[at + 2..]
                    .iter()
                    .take(3)
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let text = &value[at + 2..at + 2 + digits];
                let octal = u32::from_str_radix(text, 8)
                    .ok()
                    .filter(|&v| digits == 3 && v <= 0xFF);
                match octal.and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => {
                        out.push('\\');
                        out.push_str(text);
                    }
                }
                i = at + 2 + digits;
                continue;
            }
            _ => {
                out.push('\\');
                i = at + 1;
                continue;
            }
        };
        out.push_str(replacement);
        i = at + 2;
    }
    out.push_str(&value[i..]);
    out
}
