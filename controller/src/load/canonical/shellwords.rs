//! Splits `command`/`entrypoint` strings into words exactly as compose does
//! (the `go-shellwords` rules, without environment or backtick expansion).

#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    None,
    Plain,
    Quoted,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits a command line into words.
///
/// Single and double quotes group words; a backslash escapes the next
/// character except inside single quotes; `$VAR` is kept as written (compose
/// interpolated the file before). Two surprises are kept on purpose because
/// compose has them: splitting stops at the first unquoted `;`, `&`, `|`,
/// `<` or `>` (so `a && b` is `["a"]`, and `echo 2>err` is `["echo"]`),
/// and an unquoted `(` not preceded by `$` is an error.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut buf = String::new();
    let (mut escaped, mut double, mut single, mut back, mut dollar) =
        (false, false, false, false, false);
    let mut word = Word::None;
    for c in line.chars() {
        if escaped {
            buf.push(c);
            escaped = false;
            word = Word::Plain;
            continue;
        }
        if c == '\\' {
            if single {
                buf.push(c);
            } else {
                escaped = true;
            }
            continue;
        }
        if is_space(c) {
            if single || double || back || dollar {
                buf.push(c);
            } else if word != Word::None {
                words.push(std::mem::take(&mut buf));
                word = Word::None;
            }
            continue;
        }
        match c {
            '`' if !single && !double && !dollar => back = !back,
            ')' if !single && !double && !back => dollar = !dollar,
            '(' if !single && !double && !back => {
                if !dollar && buf.ends_with('$') {
                    dollar = true;
                    buf.push('(');
                    continue;
                }
                return Err("invalid command line string".into());
            }
            '"' if !single && !dollar => {
                if double {
                    word = Word::Quoted;
                }
                double = !double;
                continue;
            }
            '\'' if !double && !dollar => {
                if single {
                    word = Word::Quoted;
                }
                single = !single;
                continue;
            }
            ';' | '&' | '|' | '<' | '>' if !(single || double || back || dollar) => {
                // `2>file`: the digit is a file descriptor, not a word.
                if c == '>' && buf.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                    word = Word::None;
                }
                if word != Word::None {
                    words.push(buf);
                }
                return finish(words, escaped || single || double || back || dollar);
            }
            _ => {}
        }
        word = Word::Plain;
        buf.push(c);
    }
    if word != Word::None {
        words.push(buf);
    }
    finish(words, escaped || single || double || back || dollar)
}

fn finish(words: Vec<String>, unterminated: bool) -> Result<Vec<String>, String> {
    if unterminated {
        Err("invalid command line string".into())
    } else {
        Ok(words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<String> {
        split_command(line).expect("splits")
    }

    #[test]
    fn words_are_split_on_blanks() {
        assert_eq!(
            split("bundle exec  thin -p 3000"),
            ["bundle", "exec", "thin", "-p", "3000"]
        );
        assert_eq!(split("  a\tb\nc "), ["a", "b", "c"]);
        assert!(split("").is_empty());
    }

    #[test]
    fn quotes_group_words_and_empty_quotes_make_an_empty_word() {
        assert_eq!(
            split(r#"sh -c 'a; b' "x y" """#),
            ["sh", "-c", "a; b", "x y", ""]
        );
        assert_eq!(split(r#"echo "hello world""#), ["echo", "hello world"]);
        assert_eq!(split(r#"a"b c"d"#), ["ab cd"]);
    }

    #[test]
    fn backslash_escapes_outside_single_quotes_only() {
        assert_eq!(split(r#"a\ b "c\"d" 'e\f'"#), ["a b", "c\"d", "e\\f"]);
        assert_eq!(split(r"a\\ b"), ["a\\", "b"]);
    }

    #[test]
    fn dollar_variables_are_kept_as_written() {
        assert_eq!(split("echo $HOME ${X}"), ["echo", "$HOME", "${X}"]);
        assert_eq!(split("echo $(date +%s) x"), ["echo", "$(date +%s)", "x"]);
        assert_eq!(split("echo `date +%s` x"), ["echo", "`date +%s`", "x"]);
    }

    #[test]
    fn splitting_stops_at_an_unquoted_shell_operator() {
        assert_eq!(split("echo a && echo b"), ["echo", "a"]);
        assert_eq!(split("echo a|b"), ["echo", "a"]);
        assert_eq!(split("echo a;b"), ["echo", "a"]);
        assert_eq!(split("echo 2>err"), ["echo"]);
        assert_eq!(split("echo a>err"), ["echo", "a"]);
    }

    #[test]
    fn unbalanced_quotes_and_stray_parentheses_are_errors() {
        for line in [
            r#"echo "a"#,
            "echo 'a",
            "echo a\\",
            "echo (x)",
            "echo a)b c",
        ] {
            assert_eq!(
                split_command(line),
                Err("invalid command line string".to_string()),
                "{line}"
            );
        }
    }
}
