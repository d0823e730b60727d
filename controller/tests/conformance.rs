//! Differential conformance: `stackd config --format json` against the
//! docker compose oracle's output for every case of the shared corpus.
//!
//! Each case runs the built `stackd` as the oracle was run (case folder as
//! working directory, environment reduced to `PATH` and a fake `HOME`,
//! `-f F... -p NAME [--profile P]... config --format json`).
//!
//! * A valid case (`expected.json`) passes when our stdout, with the case
//!   folder and home replaced by `${CASE_DIR}` and `${HOME}` as the corpus
//!   README describes, parses to the same JSON value.
//! * An invalid case (`expected.error`) passes when we exit non-zero,
//!   without a panic, and stderr points at the problem: some `PATH:LINE`
//!   (optionally `:COL`) whose PATH, taken as written or relative to the
//!   case folder, is an existing file. Every corpus error has such a place:
//!   even a missing `include`/`env_file` target is named by a line of the
//!   file that refers to it, so no case is exempt.
//! * A panic (exit 101, "panicked" on stderr, or death by a signal) is a
//!   failure wherever it happens, listed case or not.
//!
//! `tests/conformance/known-differences.txt` lists the cases allowed to
//! fail (`<source>/<case>\t<reason>`). The test fails when an unlisted case
//! fails, when a listed case passes (the list only shrinks), when a panic
//! happens, or when fewer than 97% of valid cases are identical or any
//! invalid case is not rejected.
//!
//! Environment:
//! * `STACKD_CORPUS`: the corpus folder (default: `shared/corpus` beside
//!   the repository or beside one of its parent folders).
//! * `STACKD_CONFORMANCE_WRITE=1`: rewrite known-differences.txt with the
//!   current failures (existing reasons kept, new ones "not yet triaged").
//! * `STACKD_CONFORMANCE_BAR=0`: skip the 97% / 100% bars (not the panic check).
//! * `STACKD_CONFORMANCE_FILTER=hostile/`: only cases whose name contains it
//!   (bars and stale-entry checks are skipped then).
//! * `STACKD_CONFORMANCE_BIN`: run another binary in place of `stackd` (the
//!   oracle itself, to check this harness: it must find every valid case
//!   identical).
//! * `STACKD_CONFORMANCE_JOBS`, `STACKD_CONFORMANCE_TIMEOUT` (seconds, default 60).
// A test harness reports by panicking, helpers included.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use common::{env_flag, json_diff, run_config, shorten, Run, FAKE_HOME};

/// The fake home the oracle ran with.
/// Share of valid cases that must come out identical.
const VALID_BAR_PERCENT: usize = 97;
/// Failing cases shown in detail when the test fails.
const SHOWN_FAILURES: usize = 8;
/// Differing JSON paths shown per case.
const SHOWN_PATHS: usize = 10;

#[derive(Debug, Deserialize)]
struct Index {
    cases: Vec<IndexCase>,
}

#[derive(Debug, Clone, Deserialize)]
struct IndexCase {
    case: String,
    files: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
    project_name: String,
    outcome: String,
}

/// How one case went.
#[derive(Debug)]
enum Verdict {
    Passed,
    /// Failed; the first line is the short reason, the rest details.
    Failed(Vec<String>),
    /// Panicked or crashed.
    Panicked(String),
}

#[derive(Debug)]
struct Outcome {
    case: IndexCase,
    verdict: Verdict,
}

impl Outcome {
    fn valid(&self) -> bool {
        self.case.outcome == "json"
    }

    fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Passed)
    }

    fn reason(&self) -> String {
        match &self.verdict {
            Verdict::Passed => "passes".into(),
            Verdict::Failed(lines) => lines.first().cloned().unwrap_or_default(),
            Verdict::Panicked(line) => format!("panicked: {line}"),
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `STACKD_CORPUS`, else the nearest `shared/corpus` beside the repository
/// or one of its parents (CI lays `shared/` beside the clone).
fn corpus_dir() -> PathBuf {
    if let Some(dir) = env_flag("STACKD_CORPUS") {
        return PathBuf::from(&dir).canonicalize().unwrap_or_else(|e| {
            panic!("STACKD_CORPUS={dir}: {e}");
        });
    }
    let root = repo_root();
    root.ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/corpus"))
        .find(|dir| dir.join("index.json").is_file())
        .unwrap_or_else(|| {
            panic!(
                "no shared/corpus beside {} or its parents; set STACKD_CORPUS to the corpus folder",
                root.display()
            )
        })
        .canonicalize()
        .unwrap()
}

fn known_differences_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/known-differences.txt")
}

/// `case -> reason` from known-differences.txt (missing file: empty).
fn read_known_differences(path: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    text.lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|line| match line.split_once('\t') {
            Some((case, reason)) => (case.trim().to_owned(), reason.trim().to_owned()),
            None => (line.trim().to_owned(), String::new()),
        })
        .collect()
}

fn write_known_differences(path: &Path, entries: &BTreeMap<String, String>) {
    let mut text = String::from(
        "# Corpus cases allowed to fail the conformance test (controller/tests/conformance.rs).\n\
         # One per line: <source>/<case><TAB><reason>. The list only shrinks: the test fails\n\
         # when a listed case passes. Rewrite with `just conformance-update`\n\
         # (STACKD_CONFORMANCE_WRITE=1 cargo test --test conformance); reasons are kept.\n",
    );
    for (case, reason) in entries {
        writeln!(text, "{case}\t{reason}").unwrap();
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn run_stackd(case_dir: &Path, case: &IndexCase, timeout: Duration) -> Run {
    let binary: PathBuf = env_flag("STACKD_CONFORMANCE_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_stackd").into(), PathBuf::from);
    run_config(
        &binary,
        case_dir,
        &case.files,
        &case.project_name,
        &case.profiles,
        timeout,
    )
}

/// The corpus's path scrubbing: the case folder and up to three parents
/// become `${CASE_DIR}`, `${CASE_DIR}/..`, ...; a path is replaced only
/// where it ends (before `/`, a quote, `:`, whitespace or the end of a
/// line), the longest first. The fake home becomes `${HOME}`.
fn scrub(text: &str, case_dir: &Path) -> String {
    let mut subs: Vec<(String, String)> = Vec::new();
    let mut bases = vec![case_dir.to_owned()];
    if let Ok(real) = case_dir.canonicalize() {
        if real != case_dir {
            bases.push(real);
        }
    }
    for base in bases {
        let mut token = String::from("${CASE_DIR}");
        for dir in base.ancestors().take(4) {
            subs.push((dir.to_string_lossy().into_owned(), token.clone()));
            token.push_str("/..");
        }
    }
    subs.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    let mut text = text.to_owned();
    for (path, token) in subs {
        text = replace_path(&text, &path, &token);
    }
    text.replace(FAKE_HOME, "${HOME}")
}

fn replace_path(text: &str, path: &str, token: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(path) {
        let after = &rest[at + path.len()..];
        let ends = after
            .chars()
            .next()
            .is_none_or(|c| matches!(c, '/' | '"' | '\'' | ':') || c.is_whitespace());
        out.push_str(&rest[..at]);
        out.push_str(if ends { token } else { path });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Whether stderr names an existing file and a line: a `PATH:LINE` token.
fn names_a_file_and_line(stderr: &str, case_dir: &Path) -> bool {
    let separators = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '"' | '\'' | '`' | '(' | ')' | '[' | ']' | '<' | '>' | ','
            )
    };
    stderr.split(separators).any(|token| {
        token.match_indices(':').any(|(at, _)| {
            let file = &token[..at];
            let line_follows = token[at + 1..].starts_with(|c: char| c.is_ascii_digit());
            line_follows && !file.is_empty() && case_dir.join(file).is_file()
        })
    })
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    shorten(line, 160)
}

fn crashed(run: &Run) -> Option<String> {
    if run.code == Some(101) || run.stderr.contains("panicked") {
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains("panicked"))
            .map_or_else(|| first_line(&run.stderr), |l| shorten(l, 160));
        return Some(line);
    }
    if run.code.is_none() && !run.timed_out {
        return Some(format!("killed by a signal: {}", first_line(&run.stderr)));
    }
    None
}

fn judge(corpus: &Path, case: &IndexCase, timeout: Duration) -> Verdict {
    let case_dir = corpus.join("cases").join(&case.case);
    let run = run_stackd(&case_dir, case, timeout);
    if let Some(line) = crashed(&run) {
        return Verdict::Panicked(line);
    }
    if run.timed_out {
        return Verdict::Failed(vec![format!("timed out after {}s", timeout.as_secs())]);
    }
    if case.outcome != "json" {
        return if run.code == Some(0) {
            Verdict::Failed(vec!["accepted an invalid project".into()])
        } else if names_a_file_and_line(&run.stderr, &case_dir) {
            Verdict::Passed
        } else {
            Verdict::Failed(vec![format!(
                "rejected without a file:line: {}",
                first_line(&run.stderr)
            )])
        };
    }
    if run.code != Some(0) {
        return Verdict::Failed(vec![format!(
            "rejected a valid project: {}",
            first_line(&run.stderr)
        )]);
    }
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(case_dir.join("expected.json")).unwrap())
            .unwrap();
    let actual: Value = match serde_json::from_str(&scrub(&run.stdout, &case_dir)) {
        Ok(value) => value,
        Err(e) => return Verdict::Failed(vec![format!("stdout is not JSON: {e}")]),
    };
    if actual == expected {
        return Verdict::Passed;
    }
    let mut paths = Vec::new();
    json_diff("$", &expected, &actual, &mut paths);
    let mut lines = vec![format!("output differs at {} JSON path(s)", paths.len())];
    lines.extend(paths);
    Verdict::Failed(lines)
}

fn run_all(corpus: &Path, cases: Vec<IndexCase>) -> Vec<Outcome> {
    let jobs = env_flag("STACKD_CONFORMANCE_JOBS")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(2, usize::from)
                .clamp(2, 4)
        });
    let timeout = Duration::from_secs(
        env_flag("STACKD_CONFORMANCE_TIMEOUT")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(cases.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let verdict = judge(corpus, case, timeout);
                results.lock().unwrap().push(Outcome {
                    case: case.clone(),
                    verdict,
                });
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.case.case.cmp(&b.case.case));
    results
}

fn describe(outcome: &Outcome) -> String {
    let mut text = format!("  {}: {}\n", outcome.case.case, outcome.reason());
    if let Verdict::Failed(lines) = &outcome.verdict {
        for line in lines.iter().skip(1).take(SHOWN_PATHS) {
            writeln!(text, "      {line}").unwrap();
        }
        if lines.len() > SHOWN_PATHS + 1 {
            writeln!(text, "      … {} more", lines.len() - SHOWN_PATHS - 1).unwrap();
        }
    }
    text
}

#[test]
fn the_loader_agrees_with_the_compose_oracle_on_the_corpus() {
    let corpus = corpus_dir();
    let index: Index =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("index.json")).unwrap()).unwrap();
    let filter = env_flag("STACKD_CONFORMANCE_FILTER");
    let cases: Vec<IndexCase> = index
        .cases
        .into_iter()
        .filter(|c| filter.as_deref().is_none_or(|f| c.case.contains(f)))
        .collect();
    let results = run_all(&corpus, cases);

    let valid_total = results.iter().filter(|r| r.valid()).count();
    let invalid_total = results.len() - valid_total;
    let valid_ok = results.iter().filter(|r| r.valid() && r.passed()).count();
    let invalid_ok = results.iter().filter(|r| !r.valid() && r.passed()).count();
    let panics: Vec<&Outcome> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Panicked(_)))
        .collect();
    let summary = format!(
        "conformance: {valid_ok}/{valid_total} valid identical, \
         {invalid_ok}/{invalid_total} invalid rejected, {} panics",
        panics.len()
    );
    // Straight to the stream: libtest captures print!, and the summary
    // belongs in every run's log.
    let _ = writeln!(std::io::stderr(), "{summary}");

    let known_path = known_differences_path();
    let known = read_known_differences(&known_path);
    if env_flag("STACKD_CONFORMANCE_WRITE").is_some_and(|v| v != "0") {
        let mut entries: BTreeMap<String, String> = if filter.is_some() {
            // Only the filtered cases were run: keep the others' entries.
            let ran: Vec<&str> = results.iter().map(|r| r.case.case.as_str()).collect();
            known
                .iter()
                .filter(|(case, _)| !ran.contains(&case.as_str()))
                .map(|(c, r)| (c.clone(), r.clone()))
                .collect()
        } else {
            BTreeMap::new()
        };
        for failed in results.iter().filter(|r| !r.passed()) {
            let reason = known
                .get(&failed.case.case)
                .filter(|r| !r.is_empty())
                .cloned()
                .unwrap_or_else(|| "not yet triaged".into());
            entries.insert(failed.case.case.clone(), reason);
        }
        write_known_differences(&known_path, &entries);
        let _ = writeln!(
            std::io::stderr(),
            "conformance: wrote {} entries to {}",
            entries.len(),
            known_path.display()
        );
        return;
    }

    let mut problems = String::new();
    let unexpected: Vec<&Outcome> = results
        .iter()
        .filter(|r| !r.passed() && !known.contains_key(&r.case.case))
        .collect();
    if !unexpected.is_empty() {
        writeln!(
            problems,
            "{} case(s) fail that known-differences.txt does not list (first {}):",
            unexpected.len(),
            SHOWN_FAILURES.min(unexpected.len())
        )
        .unwrap();
        for outcome in unexpected.iter().take(SHOWN_FAILURES) {
            problems.push_str(&describe(outcome));
        }
        for outcome in unexpected.iter().skip(SHOWN_FAILURES) {
            writeln!(problems, "  {}: {}", outcome.case.case, outcome.reason()).unwrap();
        }
    }
    let now_passing: Vec<&str> = results
        .iter()
        .filter(|r| r.passed() && known.contains_key(&r.case.case))
        .map(|r| r.case.case.as_str())
        .collect();
    if !now_passing.is_empty() {
        writeln!(
            problems,
            "{} listed case(s) now pass; remove it from known-differences.txt \
             (or run `just conformance-update`):",
            now_passing.len()
        )
        .unwrap();
        for case in &now_passing {
            writeln!(problems, "  {case}").unwrap();
        }
    }
    if filter.is_none() {
        let stale: Vec<&String> = known
            .keys()
            .filter(|case| !results.iter().any(|r| &r.case.case == *case))
            .collect();
        if !stale.is_empty() {
            writeln!(
                problems,
                "known-differences.txt lists cases the corpus does not have; remove them: {stale:?}"
            )
            .unwrap();
        }
    }
    if !panics.is_empty() {
        writeln!(problems, "{} case(s) panicked or crashed:", panics.len()).unwrap();
        for outcome in &panics {
            problems.push_str(&describe(outcome));
        }
    }
    let bar_on = env_flag("STACKD_CONFORMANCE_BAR").is_none_or(|v| v != "0");
    if bar_on && filter.is_none() {
        if valid_ok * 100 < valid_total * VALID_BAR_PERCENT {
            writeln!(
                problems,
                "only {valid_ok}/{valid_total} valid cases are identical; the bar is \
                 {VALID_BAR_PERCENT}% (STACKD_CONFORMANCE_BAR=0 skips it)"
            )
            .unwrap();
        }
        // An invalid case stackd accepts on purpose (its reason in
        // known-differences.txt starts with "deliberate:") is a decision, not
        // a gap; every other invalid case must be rejected.
        let deliberate = results
            .iter()
            .filter(|r| !r.passed() && r.case.outcome == "error")
            .filter(|r| {
                known
                    .get(&r.case.case)
                    .is_some_and(|why| why.starts_with("deliberate:"))
            })
            .count();
        if invalid_ok + deliberate < invalid_total {
            writeln!(
                problems,
                "only {invalid_ok}/{invalid_total} invalid cases are rejected with a \
                 file:line ({deliberate} accepted deliberately); the bar is all of them \
                 (STACKD_CONFORMANCE_BAR=0 skips it)"
            )
            .unwrap();
        }
    }
    assert!(problems.is_empty(), "{summary}\n{problems}");
}

#[test]
fn scrubbing_replaces_the_case_folder_and_its_parents_where_paths_end() {
    let case_dir = Path::new("/c/corpus/cases/hostile/a");
    let text = r#"{"x": "/c/corpus/cases/hostile/a/data", "y": "/c/corpus/cases/hostile/ab",
"z": "/c/corpus/cases/hostile/b:ro", "w": "/c/corpus/cases/hostile/a", "h": "/nonexistent/compose-oracle-home/x"}"#;
    let scrubbed = scrub(text, case_dir);
    assert!(scrubbed.contains(r#""${CASE_DIR}/data""#), "{scrubbed}");
    assert!(scrubbed.contains(r#""${CASE_DIR}/../ab""#), "{scrubbed}");
    assert!(scrubbed.contains(r#""${CASE_DIR}/../b:ro""#), "{scrubbed}");
    assert!(scrubbed.contains(r#""w": "${CASE_DIR}""#), "{scrubbed}");
    assert!(scrubbed.contains(r#""${HOME}/x""#), "{scrubbed}");
}

#[test]
fn a_location_needs_an_existing_file_and_a_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), "services: {}\n").unwrap();
    let abs = dir.path().join("compose.yaml");
    assert!(names_a_file_and_line(
        "stackd: compose.yaml:3:5: bad",
        dir.path()
    ));
    assert!(names_a_file_and_line(
        &format!("stackd: {}:3: bad", abs.display()),
        dir.path()
    ));
    assert!(!names_a_file_and_line(
        "stackd: compose.yaml: bad",
        dir.path()
    ));
    assert!(!names_a_file_and_line(
        "stackd: invalid port 127.0.0.1:99999",
        dir.path()
    ));
    assert!(!names_a_file_and_line(
        "stackd: other.yaml:3: bad",
        dir.path()
    ));
}
