//! A load failure as a status's last error: its message (without the text
//! of env-file lines or of values that failed to interpolate, which may be
//! secrets) and its file, line and column.
use super::{clip, LastError, Timestamp};
use crate::load::dotenv::DotenvError;
use crate::load::interpolate::InterpolationError;
use crate::load::LoadError;

/// The [`LastError`] for a desired state that failed to load, with the
/// place in a file when the error has one.
pub fn last_error_from(err: &LoadError, now: &Timestamp) -> LastError {
    let location = err.location();
    let nonzero = |n: u32| (n > 0).then_some(n);
    LastError {
        message: clip(safe_message(err)),
        file: location
            .as_ref()
            .map(|(file, _, _)| file.display().to_string()),
        line: location.as_ref().and_then(|(_, line, _)| nonzero(*line)),
        column: location.as_ref().and_then(|(_, _, col)| nonzero(*col)),
        at: now.clone(),
    }
}

/// The error's message, with the place in front as `Display` puts it, but
/// without quoting text that may be a secret value: env files hold
/// secrets, and a value that failed to interpolate is shown by its path.
fn safe_message(err: &LoadError) -> String {
    match err {
        LoadError::EnvFile { path, source } => format!(
            "{}:{}: {}",
            path.display(),
            source.line(),
            env_file_problem(source)
        ),
        LoadError::Interpolation(e) if quotes_value(&e.source) => format!(
            "{}: {}: invalid interpolation in this value (value not shown)",
            e.at, e.path
        ),
        LoadError::Findings { errors } => errors
            .iter()
            .map(safe_message)
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// Whether the error's text quotes (part of) the value being interpolated.
fn quotes_value(error: &InterpolationError) -> bool {
    !matches!(error, InterpolationError::MissingRequired { .. })
}

/// What is wrong with an env file, naming keys at most, never values.
fn env_file_problem(error: &DotenvError) -> String {
    match error {
        DotenvError::UnexpectedCharacter { .. } => "unexpected character in a variable name".into(),
        DotenvError::KeyContainsSpace { .. } => "key cannot contain a space".into(),
        DotenvError::UnterminatedQuote { .. } => "unterminated quoted value".into(),
        DotenvError::MissingStatement { .. } => "`export` with no variable".into(),
        DotenvError::Interpolation { key, source, .. } if !quotes_value(source) => {
            format!("{key}: {source}")
        }
        DotenvError::Interpolation { key, .. } => {
            format!("{key}: invalid interpolation in its value (value not shown)")
        }
        DotenvError::RawMissingName { .. } => "a line has no variable name".into(),
        DotenvError::RawKeyContainsWhitespace { .. } => {
            "a variable name contains whitespace".into()
        }
        DotenvError::RawLineTooLong { .. } => "a line is too long".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::load::{load_project, LoadOptions};

    const NOW: &str = "2026-11-25T16:30:00Z";

    fn load_error(dir: &Path, compose: &str) -> LoadError {
        let file = dir.join("compose.yaml");
        std::fs::write(&file, compose).unwrap();
        let options = LoadOptions {
            files: vec![file],
            project_name: Some("demo".into()),
            working_dir: dir.to_path_buf(),
            ..LoadOptions::default()
        };
        load_project(&options).unwrap_err()
    }

    #[test]
    fn a_truncated_file_gives_its_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_error(dir.path(), "services:\n  web:\n    image: \"busybox\n");
        let last = last_error_from(&err, &NOW.into());
        let file = dir.path().join("compose.yaml").display().to_string();
        assert_eq!(last.file.as_deref(), Some(file.as_str()));
        assert!(last.line.is_some() && last.column.is_some(), "{last:?}");
        assert!(last.message.starts_with(&file), "{}", last.message);
        assert_eq!(last.at, NOW);
    }

    #[test]
    fn a_missing_required_variable_names_the_variable_and_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_error(
            dir.path(),
            "services:\n  web:\n    image: busybox\n    environment:\n      A: ${NEEDED:?set it}\n",
        );
        let last = last_error_from(&err, &NOW.into());
        assert_eq!((last.line, last.column), (Some(5), Some(10)));
        assert!(last.message.contains("NEEDED"), "{}", last.message);
        assert_eq!(
            last.location().unwrap(),
            format!("{}:5:10", dir.path().join("compose.yaml").display())
        );
    }

    #[test]
    fn a_broken_value_is_named_by_its_path_not_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_error(
            dir.path(),
            "services:\n  web:\n    image: busybox\n    environment:\n      PASSWORD: \"hunter2${\"\n",
        );
        let last = last_error_from(&err, &NOW.into());
        assert!(
            err.to_string().contains("hunter2"),
            "the load error quotes the value: {err}"
        );
        assert!(!last.message.contains("hunter2"), "{}", last.message);
        assert!(last.message.contains("PASSWORD"), "{}", last.message);
        assert_eq!(last.line, Some(5));
    }

    #[test]
    fn an_env_file_error_never_shows_the_line_it_is_about() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "A=1\nTOKEN=\"s3cr3t-value").unwrap();
        let err = load_error(dir.path(), "services:\n  web:\n    image: busybox\n");
        assert!(
            matches!(err, LoadError::EnvFile { .. }),
            "expected an env-file error, got {err}"
        );
        assert!(err.to_string().contains("s3cr3t"), "{err}");
        let last = last_error_from(&err, &NOW.into());
        assert!(!last.message.contains("s3cr3t"), "{}", last.message);
        assert!(last.message.contains("unterminated"), "{}", last.message);
        assert_eq!(
            last.file.as_deref().map(PathBuf::from),
            Some(dir.path().join(".env"))
        );
        assert_eq!(last.line, Some(2));
        assert_eq!(last.column, None);
    }

    #[test]
    fn an_error_without_a_place_has_no_location() {
        let err = LoadError::NoComposeFile {
            dir: PathBuf::from("/srv"),
        };
        let last = last_error_from(&err, &NOW.into());
        assert_eq!((last.file, last.line, last.column), (None, None, None));
        assert!(last.message.contains("/srv"));
    }
}
