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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::load::interpolate::reference;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parse(content: &str) -> Vec<(String, Option<String>)> {
        parse_dotenv(content, &env).unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    fn error(content: &str) -> DotenvError {
        parse_dotenv(content, &env).unwrap_err()
    }

    #[test]
    fn assignments_come_back_in_file_order() {
        assert_eq!(
            parse("B=2\nA=1\nC=3\n"),
            pairs(&[("B", "2"), ("A", "1"), ("C", "3")])
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let got = parse("# top\n\n   \n\t # indented\nA=1\n#B=2\n  \r\n");
        assert_eq!(got, pairs(&[("A", "1")]));
    }

    #[test]
    fn an_export_prefix_is_dropped() {
        let got = parse(
            "export A=1\nexport\tB=2\n  export C=3\nexportD=4\nexport_E=5\nexport F=\"export F\"\n",
        );
        assert_eq!(
            got,
            pairs(&[
                ("A", "1"),
                ("B", "2"),
                ("C", "3"),
                ("exportD", "4"),
                ("export_E", "5"),
                ("F", "export F")
            ])
        );
    }

    #[test]
    fn a_yaml_style_colon_assigns() {
        assert_eq!(
            parse("A: 1\nB: x=y\nC=1:2\n"),
            pairs(&[("A", "1"), ("B", "x=y"), ("C", "1:2")])
        );
    }

    #[test]
    fn blanks_around_the_key_and_the_equals_sign_are_dropped() {
        assert_eq!(
            parse(" A =1\n\tB= 2\nC = \"3\"\n"),
            pairs(&[("A", "1"), ("B", "2"), ("C", "3")])
        );
    }

    #[test]
    fn a_key_with_nothing_after_the_equals_sign_is_empty() {
        assert_eq!(
            parse("A=\nB=   \nC=''\nD=\"\"\n"),
            pairs(&[("A", ""), ("B", ""), ("C", ""), ("D", "")])
        );
    }

    #[test]
    fn an_unquoted_value_loses_a_space_hash_comment_and_trailing_blanks() {
        let got = parse("A=bar # comment\nB=bar #\nC=123#not-a-comment\nD=a b  \t\nE=a\t# tab is not a comment start\n");
        assert_eq!(
            got,
            pairs(&[
                ("A", "bar"),
                ("B", "bar"),
                ("C", "123#not-a-comment"),
                ("D", "a b"),
                ("E", "a\t# tab is not a comment start")
            ])
        );
    }

    #[test]
    fn a_hash_right_after_the_equals_sign_is_part_of_the_value() {
        assert_eq!(parse("A= #x\n"), pairs(&[("A", "#x")]));
    }

    #[test]
    fn an_unquoted_value_keeps_quotes_after_its_first_character() {
        assert_eq!(parse("A=x\"y\"'z'\n"), pairs(&[("A", "x\"y\"'z'")]));
    }

    #[test]
    fn single_quoted_values_are_literal_except_for_escaped_quotes() {
        let got = parse(
            "A='$SET \\n ${SET}'\nB='Let\\'s go'\nC='a\\\\b'\nD='# not a comment' # comment\n",
        );
        assert_eq!(
            got,
            pairs(&[
                ("A", "$SET \\n ${SET}"),
                ("B", "Let's go"),
                ("C", "a\\\\b"),
                ("D", "# not a comment")
            ])
        );
    }

    #[test]
    fn double_quoted_values_expand_shell_escapes() {
        let got = parse(r#"KEY="Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\Z\0123Z\"Z""#);
        assert_eq!(
            got,
            pairs(&[("KEY", "Z\u{7}Z\u{8}Z\u{c}Z\nZ\rZ\tZ\u{b}Z\\ZSZ\"Z")])
        );
    }

    #[test]
    fn octal_escapes_that_are_not_three_octal_digits_lose_their_zero() {
        let got = parse(r#"A="\0777|\08|\0|\01|\0377|\0400""#);
        assert_eq!(got, pairs(&[("A", "\\777|\\8|\\|\\1|\u{ff}|\\400")]));
    }

    #[test]
    fn escapes_compose_does_not_know_stay_as_written() {
        assert_eq!(
            parse(r#"A="\x07 \u12e4 \c \q""#),
            pairs(&[("A", r"\x07 \u12e4 \c \q")])
        );
    }

    #[test]
    fn an_escaped_dollar_in_double_quotes_is_a_literal_dollar() {
        let got = parse("FOO=test\nA=\"foo\\$BAR\"\nB=\"foo\\${FOO} ${FOO}\"\n");
        assert_eq!(
            got,
            pairs(&[("FOO", "test"), ("A", "foo$BAR"), ("B", "foo${FOO} test")])
        );
    }

    #[test]
    fn double_quoted_values_may_span_lines() {
        let got = parse("A=\"first\nsecond\"\nB=2\n");
        assert_eq!(got, pairs(&[("A", "first\nsecond"), ("B", "2")]));
    }

    #[test]
    fn text_after_a_closing_quote_is_read_as_the_next_statement() {
        let got = parse("A=\"x\" SET\nB=\"y\"C=3\nD=\"bar#baz\"#\n");
        assert_eq!(
            got,
            vec![
                ("A".into(), Some("x".into())),
                ("SET".into(), Some("value".into())),
                ("B".into(), Some("y".into())),
                ("C".into(), Some("3".into())),
                ("D".into(), Some("bar#baz".into())),
            ]
        );
    }

    #[test]
    fn unquoted_and_double_quoted_values_are_interpolated() {
        let got = parse("A=$SET\nB=\"${MISSING:-d} $A\"\nC=${A}_${A}\n");
        assert_eq!(
            got,
            pairs(&[("A", "value"), ("B", "d value"), ("C", "value_value")])
        );
    }

    #[test]
    fn the_lookup_wins_over_keys_assigned_earlier_in_the_file() {
        let got = parse("SET=1\nB=$SET\n");
        assert_eq!(got, pairs(&[("SET", "1"), ("B", "value")]));
    }

    #[test]
    fn earlier_keys_then_existing_values_are_used_when_the_lookup_misses() {
        let existing = |name: &str| (name == "OLD" || name == "A").then(|| format!("old {name}"));
        let got = parse_dotenv_with("X=$A\nA=new\nB=$A $OLD\n", &env, &existing).unwrap();
        assert_eq!(
            got.entries,
            pairs(&[("X", "old A"), ("A", "new"), ("B", "new old OLD")])
        );
    }

    #[test]
    fn unset_variables_met_while_interpolating_are_reported() {
        let got = parse_dotenv_with("A=$NOPE\nB=\"${NOPE}${ALSO}\"\nC='$QUIET'\n", &env, &|_| {
            None
        })
        .unwrap();
        assert_eq!(got.unset, vec!["NOPE", "NOPE", "ALSO"]);
    }

    #[test]
    fn a_bare_key_takes_the_lookup_value() {
        assert_eq!(
            parse("SET\nEMPTY\nA=1\n"),
            pairs(&[("SET", "value"), ("EMPTY", ""), ("A", "1")])
        );
    }

    #[test]
    fn an_unresolved_bare_key_is_none_and_keeps_an_earlier_value() {
        let got = parse("MISSING\nA=1\nA\n");
        assert_eq!(
            got,
            vec![("MISSING".into(), None), ("A".into(), Some("1".into()))]
        );
    }

    #[test]
    fn a_bare_word_on_the_last_line_without_newline_is_the_empty_keys_value() {
        assert_eq!(parse("A=1\nLAST"), pairs(&[("A", "1"), ("", "LAST")]));
        assert_eq!(parse("=\"value\"\n"), pairs(&[("", "value")]));
    }

    #[test]
    fn crlf_line_endings_are_handled() {
        let got = parse("A=1\r\nB='2'\r\nC=\"3\"\r\nSET\r\n# c\r\n");
        assert_eq!(
            got,
            pairs(&[("A", "1"), ("B", "2"), ("C", "3"), ("SET", "value")])
        );
    }

    #[test]
    fn a_utf8_byte_order_mark_is_skipped() {
        assert_eq!(parse("\u{feff}A=1\n"), pairs(&[("A", "1")]));
    }

    #[test]
    fn keys_may_hold_letters_digits_dots_dashes_brackets_and_tabs() {
        let got = parse("a.b=1\nVAR-X=2\na[1]=3\n\u{e1}rv\u{ed}z=4\n1A=5\nA\tB=6\n");
        assert_eq!(
            got,
            pairs(&[
                ("a.b", "1"),
                ("VAR-X", "2"),
                ("a[1]", "3"),
                ("\u{e1}rv\u{ed}z", "4"),
                ("1A", "5"),
                ("A\tB", "6")
            ])
        );
    }

    #[test]
    fn a_later_assignment_replaces_the_value_in_place() {
        assert_eq!(parse("A=1\nB=2\nA=3\n"), pairs(&[("A", "3"), ("B", "2")]));
    }

    #[test]
    fn an_unexpected_character_in_a_key_names_its_line() {
        let err = error("A=1\n\n%!(EXTRA string)=foo\n");
        assert_eq!(err.line(), 3);
        assert_eq!(
            err.to_string(),
            "line 3: unexpected character \"%\" in variable name \"%!(EXTRA string)=foo\""
        );
        assert!(matches!(
            error("lol$wut"),
            DotenvError::UnexpectedCharacter { character: '$', .. }
        ));
    }

    #[test]
    fn a_space_inside_a_key_names_its_line() {
        assert_eq!(
            error("A=1\n# c\nB C=2\n").to_string(),
            "line 3: key cannot contain a space"
        );
        assert_eq!(
            error("A B\nC=1\n").to_string(),
            "line 1: key cannot contain a space"
        );
    }

    #[test]
    fn an_unterminated_quote_names_the_last_line_read() {
        for content in [
            "KEY=\"",
            "KEY=\"value",
            "KEY=\"value\\\"",
            "KEY=\"value'",
            "KEY='",
            "KEY='value",
            "KEY='value\\'",
            "KEY='value\"",
        ] {
            assert!(
                matches!(
                    error(content),
                    DotenvError::UnterminatedQuote { line: 1, .. }
                ),
                "{content}"
            );
        }
        let err = error("A=1\nK=\"abc\nd\ne");
        assert_eq!(err.to_string(), "line 4: unterminated quoted value \"abc");
    }

    #[test]
    fn export_with_nothing_after_it_is_a_zero_length_statement() {
        assert_eq!(error("A=1\nexport ").to_string(), "zero length string");
    }

    #[test]
    fn an_interpolation_failure_reports_the_template_error() {
        let err = error("A=1\nB=${\n");
        assert_eq!(err.to_string(), "Invalid template: \"${\"");
        assert_eq!(err.line(), 2);
        assert_eq!(
            error("A=\"${MISSING:?boom}\"").to_string(),
            "required variable MISSING is missing a value: boom"
        );
    }

    #[test]
    fn raw_values_are_taken_verbatim() {
        let got = parse_raw_env("A=\"q\" $SET # not a comment  \nB='x'\nC==y\n", &env).unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("A", "\"q\" $SET # not a comment  "),
                ("B", "'x'"),
                ("C", "=y")
            ])
        );
    }

    #[test]
    fn raw_skips_comments_and_blank_lines_and_trims_leading_blanks() {
        let got = parse_raw_env("# c\n\n   \n  A=1\n\t# c\n", &env).unwrap();
        assert_eq!(got, pairs(&[("A", "1")]));
    }

    #[test]
    fn raw_bare_keys_use_the_lookup() {
        let got = parse_raw_env("SET\nMISSING\n", &env).unwrap();
        assert_eq!(
            got,
            vec![
                ("SET".into(), Some("value".into())),
                ("MISSING".into(), None)
            ]
        );
    }

    #[test]
    fn raw_handles_crlf_and_a_byte_order_mark() {
        let got = parse_raw_env("\u{feff}A=1\r\nB=2 \r\n", &env).unwrap();
        assert_eq!(got, pairs(&[("A", "1"), ("B", "2 ")]));
    }

    #[test]
    fn raw_rejects_a_line_without_a_name() {
        let err = parse_raw_env("A=1\n =x\n", &env).unwrap_err();
        assert_eq!(
            (err.line(), err.to_string()),
            (2, "no variable name on line '=x'".into())
        );
    }

    #[test]
    fn raw_rejects_blanks_in_a_name() {
        let err = parse_raw_env("A B=1\n", &env).unwrap_err();
        assert_eq!(err.to_string(), "variable 'A B' contains whitespaces");
        let err = parse_raw_env("KEY \n", &env).unwrap_err();
        assert_eq!(err.to_string(), "variable 'KEY ' contains whitespaces");
    }

    #[test]
    fn raw_rejects_a_line_as_long_as_the_scanner_buffer() {
        let ok = format!("A={}\n", "x".repeat(RAW_MAX_LINE - 3));
        assert!(parse_raw_env(&ok, &env).is_ok());
        let long = format!("A=1\nB={}", "x".repeat(RAW_MAX_LINE - 2));
        let err = parse_raw_env(&long, &env).unwrap_err();
        assert_eq!(
            (err.line(), err.to_string()),
            (2, "bufio.Scanner: token too long".into())
        );
    }

    // Differential test against the reference binary.

    const PROJECT_ENV: &[(&str, &str)] = &[
        ("S", "sv"),
        ("E", ""),
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/nonexistent"),
    ];

    fn project_env(name: &str) -> Option<String> {
        PROJECT_ENV
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    fn reference_name(rng: &mut reference::Rng, index: usize) -> String {
        match rng.below(4) {
            0 => rng.pick(&["S", "E", "U", "HOME"]).to_string(),
            _ if index > 0 => format!("K{}", rng.below(index)),
            _ => "S".into(),
        }
    }

    fn value_piece(rng: &mut reference::Rng, pieces: &[&str], index: usize) -> String {
        match rng.below(6) {
            0 => format!("${}", reference_name(rng, index)),
            1 => format!("${{{}:-d}}", reference_name(rng, index)),
            _ => rng.pick(pieces).to_string(),
        }
    }

    fn statement(rng: &mut reference::Rng, index: usize) -> String {
        const UNQUOTED: &[&str] = &[
            "a", "b c", "#", " #c", "$$", "\\$", "\\n", "\u{e9}", "}", ":", "=", "'", "\"q\"",
            "${U-u}", "\t",
        ];
        const SINGLE: &[&str] = &[
            "a", " ", "$S", "\\'", "\\\\", "\\n", "\"", "#", "\n", "${U}",
        ];
        const DOUBLE: &[&str] = &[
            "a",
            " ",
            "\\n",
            "\\t",
            "\\\"",
            "\\\\",
            "\\$",
            "\\$S",
            "\\0123",
            "\\0777",
            "\\08",
            "\\0",
            "\\x",
            "\\c",
            "'",
            "#",
            "\n",
            "${U:-def}",
            "$$",
            "\u{e9}",
            "\\a",
            "\\v",
        ];
        const BROKEN: &[&str] = &[
            "A B=1",
            "K%=1",
            "Z=\"open",
            "Z='open",
            "Z=${",
            "Z=${U:?need}",
            "Z=\"${U?q}\"",
            "export ",
            "Z=\"${S:x}\"",
        ];
        match rng.below(30) {
            0..=1 => format!("{}# note {index}", rng.pick(&["", "  ", "\t"])),
            2 => rng.pick(&["", "   ", "\t"]).to_string(),
            3..=4 => reference_name(rng, index),
            5 => rng.pick(BROKEN).to_string(),
            _ => {
                let mut s = String::new();
                s.push_str(rng.pick(&["", "", " ", "\t"]));
                s.push_str(rng.pick(&["", "", "", "export ", "export\t"]));
                s.push_str(&format!("K{index}"));
                s.push_str(rng.pick(&["", "", "", ".x", "-y", "[0]", "_z", "\u{e9}"]));
                s.push_str(rng.pick(&["", "", " ", "\t"]));
                s.push_str(rng.pick(&["=", "=", "=", ":"]));
                s.push_str(rng.pick(&["", "", " ", "  "]));
                let (open, pieces) = match rng.below(3) {
                    0 => ("", UNQUOTED),
                    1 => ("'", SINGLE),
                    _ => ("\"", DOUBLE),
                };
                s.push_str(open);
                for _ in 0..rng.below(5) {
                    let piece = value_piece(rng, pieces, index);
                    if open.is_empty()
                        && s.ends_with(['=', ':', ' '])
                        && piece.starts_with(['"', '\''])
                    {
                        continue;
                    }
                    s.push_str(&piece);
                }
                s.push_str(open);
                if open.is_empty() {
                    s.push_str(rng.pick(&["", "", " ", "\t"]));
                } else {
                    s.push_str(rng.pick(&["", "", " # comment", "#c", " ", "\t"]));
                }
                s
            }
        }
    }

    fn compose_environment(
        binary: &std::path::Path,
        dir: &std::path::Path,
        content: &str,
    ) -> std::process::Output {
        std::fs::write(dir.join("e.env"), content).unwrap();
        reference::config(binary, dir)
    }

    #[test]
    fn generated_env_files_agree_with_the_reference_binary() {
        let test = "generated_env_files_agree_with_the_reference_binary";
        let Some(binary) = reference::compose_binary(test) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "S=sv\nE=\n").unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  s:\n    image: busybox\n    env_file: e.env\n",
        )
        .unwrap();
        let env_path = dir.path().join("e.env");

        let (seed, cases) = reference::generation(0xD07E_0001, 300);
        let mut rng = reference::Rng(seed);
        let mut file = String::new();
        let mut statements = 0;
        let mut broken = Vec::new();
        for index in 0..cases {
            let stmt = statement(&mut rng, index);
            let candidate = format!("{file}{stmt}{}", rng.pick(&["\n", "\n", "\n", "\r\n"]));
            match parse_dotenv_with(&candidate, &project_env, &|_| None) {
                Ok(_) => {
                    file = candidate;
                    statements += 1;
                }
                Err(err) => broken.push((candidate, err)),
            }
        }

        let mut agreed = 0;
        let mut mismatches = Vec::new();
        let ours = parse_dotenv_with(&file, &project_env, &|_| None).unwrap();
        let out = compose_environment(&binary, dir.path(), &file);
        assert!(
            out.status.success(),
            "compose rejected the file: {}",
            reference::error_text(&out.stderr)
        );
        let theirs: std::collections::BTreeMap<String, String> =
            reference::service_environment(&out.stdout)
                .into_iter()
                .collect();
        let mine: std::collections::BTreeMap<String, String> = ours
            .entries
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        for key in theirs
            .keys()
            .chain(mine.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            if theirs.get(key) != mine.get(key) {
                mismatches.push(format!(
                    "{key:?}: compose {:?}, ours {:?}",
                    theirs.get(key),
                    mine.get(key)
                ));
            }
        }
        if mismatches.is_empty() {
            agreed += statements;
        }
        let mut warned = reference::unset_warnings(&String::from_utf8_lossy(&out.stderr));
        let mut unset = ours.unset.clone();
        warned.sort();
        unset.sort();

        for (content, err) in &broken {
            let out = compose_environment(&binary, dir.path(), content);
            let stderr = reference::error_text(&out.stderr);
            let want = format!("failed to read {}: {err}", env_path.display());
            if !out.status.success() && stderr == want {
                agreed += 1;
            } else {
                mismatches.push(format!(
                    "{:?}: compose {stderr:?}, ours {want:?}",
                    content.lines().last()
                ));
            }
        }
        eprintln!(
            "{test}: {agreed}/{cases} agreed ({statements} statements in one file, {} keys; {} broken files)",
            mine.len(),
            broken.len()
        );
        assert!(
            mismatches.is_empty(),
            "{} mismatches:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
        assert_eq!(warned, unset, "unset-variable warnings differ");
    }

    #[test]
    fn generated_raw_env_files_agree_with_the_reference_binary() {
        let test = "generated_raw_env_files_agree_with_the_reference_binary";
        let Some(binary) = reference::compose_binary(test) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "S=sv\nE=\n").unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  s:\n    image: busybox\n    env_file: [{path: e.env, format: raw}]\n",
        )
        .unwrap();
        let (seed, cases) = reference::generation(0x4A40_0001, 100);
        let mut rng = reference::Rng(seed);
        let mut file = String::from("\u{feff}");
        for index in 0..cases {
            let line = match rng.below(10) {
                0 => format!("{}# c {index}", rng.pick(&["", " ", "\t"])),
                1 => rng.pick(&["", "  ", "\t"]).to_string(),
                2 => reference_name(&mut rng, index),
                _ => {
                    let value: String = (0..rng.below(5))
                        .map(|_| {
                            rng.pick(&[
                                "a", " ", "\"q\"", "'s'", "$S", "${E:-x}", "#", "=", "\\n", "\t",
                                "\u{e9}",
                            ])
                        })
                        .collect();
                    format!("{}K{index}={value}", rng.pick(&["", " ", "\t"]))
                }
            };
            file.push_str(&line);
            file.push_str(rng.pick(&["\n", "\n", "\r\n"]));
        }
        let ours = parse_raw_env(&file, &project_env).unwrap();
        let out = compose_environment(&binary, dir.path(), &file);
        assert!(
            out.status.success(),
            "compose rejected the file: {}",
            reference::error_text(&out.stderr)
        );
        let theirs: std::collections::BTreeMap<String, String> =
            reference::service_environment(&out.stdout)
                .into_iter()
                .collect();
        let mine: std::collections::BTreeMap<String, String> = ours
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        assert_eq!(theirs, mine);

        let env_path = dir.path().join("e.env");
        let long = |n: usize, newline: &str| format!("A={}{newline}", "x".repeat(n - 2));
        let edges = [
            long(RAW_MAX_LINE - 1, "\n"),
            long(RAW_MAX_LINE, "\n"),
            long(RAW_MAX_LINE - 1, ""),
            long(RAW_MAX_LINE, ""),
            "A=1\n =x\n".to_owned(),
            "A B=1\n".to_owned(),
            "KEY \n".to_owned(),
            "KEY\t\r\n".to_owned(),
        ];
        let mut mismatches = Vec::new();
        for content in &edges {
            let out = compose_environment(&binary, dir.path(), content);
            let ours = parse_raw_env(content, &project_env);
            let agree = match &ours {
                Ok(entries) => {
                    let mine: Vec<(String, String)> = entries
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                        .collect();
                    out.status.success() && reference::service_environment(&out.stdout) == mine
                }
                Err(err) => {
                    let want = format!("failed to parse env_file {}: {err}", env_path.display());
                    !out.status.success() && reference::error_text(&out.stderr) == want
                }
            };
            if !agree {
                mismatches.push(format!(
                    "{:?}: ours {:?}",
                    &content[..content.len().min(40)],
                    ours.map(|e| e.len())
                ));
            }
        }
        eprintln!(
            "{test}: {} keys equal, {}/{} edge files agreed",
            mine.len(),
            edges.len() - mismatches.len(),
            edges.len()
        );
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }
}
