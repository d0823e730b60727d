//! Differential test on generated projects: `stackd config --format json`
//! against the reference `docker compose config --format json` for
//! realistic compose projects made by a seeded generator
//! (`differential/generate.rs`).
//!
//! Both binaries run as the corpus oracle ran: the case folder as working
//! directory, the environment reduced to `PATH` and a fake `HOME`,
//! `-f F... -p NAME [--profile P]... config --format json`. Both outputs
//! are parsed as JSON and must be equal; the test fails when any case
//! differs, showing the files and the differing JSON paths of the first
//! few. A case the reference rejects is a generator bug, counted apart
//! ("generator produced invalid input", also a failure) with what stackd
//! made of it.
//!
//! `differential/known-gaps.txt` lists feature tags the generator leaves
//! out (`tag<TAB>reason`) while the loader does not handle them yet; delete
//! a line once the gap is fixed.
//!
//! Environment:
//! * `STACKD_COMPOSE_BIN`: the reference binary (default: `docker-compose`
//!   beside the Python `compose` package); without one the test is skipped.
//! * `STACKD_DIFF_SEED` (decimal or `0x` hex), `STACKD_DIFF_CASES` (default 200).
//! * `STACKD_DIFF_CASE=N`: run only case N of the seed (to reproduce one).
//! * `STACKD_DIFF_ONLY=tag,tag`: only these features (a probe of a gap;
//!   known-gaps.txt is ignored then). `STACKD_DIFF_ALL=1`: every feature.
//! * `STACKD_DIFF_KEEP=DIR`: copy each differing case to `DIR/genNNN/`.
// A test harness reports by panicking, helpers included.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "differential/generate.rs"]
mod generate;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{env_flag, json_diff, run_config, shorten, Run};

use generate::{Case, Features};

/// The fake home the oracle ran with.
const DEFAULT_SEED: u64 = 0x5EED_0C0F_F1CE_2024;
const DEFAULT_CASES: usize = 200;
/// The machine's cores are shared; two jobs keep the run under a minute.
const JOBS: usize = 2;
const SHOWN_CASES: usize = 5;
const SHOWN_PATHS: usize = 12;
const SHOWN_INVALID: usize = 3;
const TIMEOUT: Duration = Duration::from_secs(30);

fn parse_seed(text: &str) -> u64 {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => text.replace('_', "").parse(),
    };
    parsed.unwrap_or_else(|e| panic!("STACKD_DIFF_SEED={text}: {e}"))
}

/// `STACKD_COMPOSE_BIN`, else `docker-compose` in the Python `compose` package.
fn reference_binary() -> Option<PathBuf> {
    if let Some(bin) = env_flag("STACKD_COMPOSE_BIN") {
        return Some(PathBuf::from(bin)).filter(|p| p.is_file());
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import compose,os;print(os.path.dirname(compose.__file__))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Some(Path::new(&dir).join("docker-compose")).filter(|p| p.is_file())
}

fn known_gaps_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/known-gaps.txt")
}

/// `tag -> reason` from known-gaps.txt.
fn read_known_gaps(path: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| match line.split_once('\t') {
            Some((tag, reason)) => (tag.trim().to_owned(), reason.trim().to_owned()),
            None => (line.to_owned(), String::new()),
        })
        .collect()
}

fn run(binary: &Path, dir: &Path, case: &Case) -> Run {
    run_config(
        binary,
        dir,
        &case.compose_files,
        &case.project,
        &case.profiles,
        TIMEOUT,
    )
}

/// How one case went.
enum Verdict {
    Identical,
    /// The reference rejected the project (the generator's fault): its
    /// error, and what stackd did with the same input.
    Invalid(String, String),
    /// stackd disagrees; the lines say how.
    Differs(Vec<String>),
}

struct Outcome {
    case: Case,
    verdict: Verdict,
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    shorten(line, 200)
}

/// The error, after any warnings.
fn last_line(text: &str) -> String {
    let line = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    shorten(line, 200)
}

fn write_case(case: &Case, dir: &Path) {
    for (name, content) in &case.files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

fn judge(case: &Case, reference: &Path) -> Verdict {
    // The case folder sits one level down so that `../shared` binds stay
    // inside the temporary folder.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("project");
    write_case(case, &dir);
    let expected = run(reference, &dir, case);
    let actual = run(Path::new(env!("CARGO_BIN_EXE_stackd")), &dir, case);
    if expected.code != Some(0) {
        let ours = match actual.code {
            Some(0) => "stackd accepts it".to_owned(),
            Some(101) | None => format!("stackd crashed: {}", first_line(&actual.stderr)),
            Some(_) => format!("stackd rejects it too: {}", first_line(&actual.stderr)),
        };
        return Verdict::Invalid(last_line(&expected.stderr), ours);
    }
    let expected: Value = serde_json::from_str(&expected.stdout).unwrap();
    if actual.code != Some(0) {
        let how = match actual.code {
            Some(101) => "panicked",
            Some(_) => "rejected a valid project",
            None => "crashed or timed out",
        };
        return Verdict::Differs(vec![format!(
            "stackd {how}: {}",
            first_line(&actual.stderr)
        )]);
    }
    let actual: Value = match serde_json::from_str(&actual.stdout) {
        Ok(value) => value,
        Err(e) => return Verdict::Differs(vec![format!("stackd stdout is not JSON: {e}")]),
    };
    if actual == expected {
        return Verdict::Identical;
    }
    let mut paths = Vec::new();
    json_diff("$", &expected, &actual, &mut paths);
    let mut lines = vec![format!("output differs at {} JSON path(s)", paths.len())];
    lines.extend(paths);
    Verdict::Differs(lines)
}

fn run_all(cases: Vec<Case>, reference: &Path) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(cases.len()));
    std::thread::scope(|scope| {
        for _ in 0..JOBS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let verdict = judge(case, reference);
                results.lock().unwrap().push(Outcome {
                    case: case.clone(),
                    verdict,
                });
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.case.index);
    results
}

fn command_line(case: &Case) -> String {
    let mut line = String::from("config");
    for file in &case.compose_files {
        write!(line, " -f {file}").unwrap();
    }
    write!(line, " -p {}", case.project).unwrap();
    for profile in &case.profiles {
        write!(line, " --profile {profile}").unwrap();
    }
    line + " --format json"
}

fn describe(outcome: &Outcome, seed: u64) -> String {
    let case = &outcome.case;
    let mut text = format!(
        "── {} (STACKD_DIFF_SEED={seed:#x} STACKD_DIFF_CASE={}): {}\n",
        case.project,
        case.index,
        command_line(case)
    );
    writeln!(
        text,
        "   features: {}",
        case.features.iter().copied().collect::<Vec<_>>().join(" ")
    )
    .unwrap();
    for (name, content) in &case.files {
        writeln!(text, "   ┌ {name}").unwrap();
        for line in content.lines() {
            writeln!(text, "   │ {line}").unwrap();
        }
    }
    match &outcome.verdict {
        Verdict::Differs(lines) => {
            for line in lines.iter().take(SHOWN_PATHS + 1) {
                writeln!(text, "   ✗ {line}").unwrap();
            }
            if lines.len() > SHOWN_PATHS + 1 {
                writeln!(text, "   … {} more", lines.len() - SHOWN_PATHS - 1).unwrap();
            }
        }
        Verdict::Invalid(line, ours) => {
            writeln!(text, "   reference: {line}").unwrap();
            writeln!(text, "   {ours}").unwrap();
        }
        Verdict::Identical => {}
    }
    text
}

/// Features seen only in differing cases: the likeliest culprits.
fn suspects(results: &[Outcome]) -> Vec<&'static str> {
    let mut in_identical: BTreeSet<&str> = BTreeSet::new();
    let mut in_differing: BTreeSet<&'static str> = BTreeSet::new();
    for outcome in results {
        match outcome.verdict {
            Verdict::Identical => in_identical.extend(outcome.case.features.iter().copied()),
            Verdict::Differs(_) => in_differing.extend(outcome.case.features.iter().copied()),
            Verdict::Invalid(..) => {}
        }
    }
    in_differing
        .into_iter()
        .filter(|tag| !in_identical.contains(tag))
        .collect()
}

fn keep(outcome: &Outcome, root: &Path) {
    let dir = root.join(&outcome.case.project);
    write_case(&outcome.case, &dir);
    std::fs::write(dir.join("args"), command_line(&outcome.case) + "\n").unwrap();
}

#[test]
fn the_loader_agrees_with_docker_compose_on_generated_projects() {
    let Some(reference) = reference_binary() else {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: reference docker compose not found"
        );
        return;
    };
    let seed = env_flag("STACKD_DIFF_SEED").map_or(DEFAULT_SEED, |s| parse_seed(&s));
    let count = env_flag("STACKD_DIFF_CASES").map_or(DEFAULT_CASES, |n| {
        n.parse()
            .unwrap_or_else(|e| panic!("STACKD_DIFF_CASES={n}: {e}"))
    });
    let gaps = read_known_gaps(&known_gaps_path());
    let unknown: Vec<&String> = gaps.keys().filter(|t| !generate::is_known(t)).collect();
    assert!(
        unknown.is_empty(),
        "known-gaps.txt lists tags the generator does not know: {unknown:?}"
    );
    let mut features = Features::default();
    if let Some(only) = env_flag("STACKD_DIFF_ONLY") {
        let only: BTreeSet<String> = only.split(',').map(|t| t.trim().to_owned()).collect();
        for tag in &only {
            assert!(
                generate::is_known(tag),
                "STACKD_DIFF_ONLY: unknown tag {tag:?}"
            );
        }
        features.only = Some(only);
    } else if env_flag("STACKD_DIFF_ALL").is_none_or(|v| v == "0") {
        features.off = gaps.keys().cloned().collect();
    }
    let indices: Vec<usize> = match env_flag("STACKD_DIFF_CASE") {
        Some(n) => vec![n.parse().unwrap()],
        None => (0..count).collect(),
    };
    let cases: Vec<Case> = indices
        .into_iter()
        .map(|i| generate::generate(seed, i, &features))
        .collect();

    let started = Instant::now();
    let results = run_all(cases, &reference);
    let identical = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Identical))
        .count();
    let invalid: Vec<&Outcome> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Invalid(..)))
        .collect();
    let differing: Vec<&Outcome> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Differs(_)))
        .collect();
    let summary = format!(
        "differential: seed {seed:#x}, {} cases in {:.1}s: {identical} identical, {} differ, \
         {} generator produced invalid input; features off: {}",
        results.len(),
        started.elapsed().as_secs_f64(),
        differing.len(),
        invalid.len(),
        if features.off.is_empty() {
            "none".to_owned()
        } else {
            features.off.iter().cloned().collect::<Vec<_>>().join(" ")
        }
    );
    let _ = writeln!(std::io::stderr(), "{summary}");
    if let Some(only) = &features.only {
        // A probe that never used its features proves nothing.
        let uses: Vec<String> = only
            .iter()
            .map(|tag| {
                let n = results
                    .iter()
                    .filter(|r| r.case.features.contains(tag.as_str()))
                    .count();
                format!("{tag}={n}")
            })
            .collect();
        let _ = writeln!(
            std::io::stderr(),
            "differential: cases using each probed feature: {}",
            uses.join(" ")
        );
    }
    if let Some(dir) = env_flag("STACKD_DIFF_KEEP") {
        for outcome in &differing {
            keep(outcome, Path::new(&dir));
        }
    }

    let mut problems = String::new();
    if !differing.is_empty() {
        writeln!(
            problems,
            "{} generated case(s) differ from the reference (first {} shown). Features seen \
             only in differing cases: {}",
            differing.len(),
            SHOWN_CASES.min(differing.len()),
            suspects(&results).join(" ")
        )
        .unwrap();
        for outcome in differing.iter().take(SHOWN_CASES) {
            problems.push_str(&describe(outcome, seed));
        }
        let rest: Vec<String> = differing
            .iter()
            .skip(SHOWN_CASES)
            .map(|o| o.case.project.clone())
            .collect();
        if !rest.is_empty() {
            writeln!(problems, "also differ: {}", rest.join(" ")).unwrap();
        }
    }
    if !invalid.is_empty() {
        writeln!(
            problems,
            "generator produced invalid input in {} case(s) (the reference rejects them; fix \
             the generator), first {}:",
            invalid.len(),
            SHOWN_INVALID.min(invalid.len())
        )
        .unwrap();
        for outcome in invalid.iter().take(SHOWN_INVALID) {
            problems.push_str(&describe(outcome, seed));
        }
        for outcome in invalid.iter().skip(SHOWN_INVALID) {
            if let Verdict::Invalid(line, ours) = &outcome.verdict {
                writeln!(problems, "  {}: {line} ({ours})", outcome.case.project).unwrap();
            }
        }
    }
    assert!(problems.is_empty(), "{summary}\n{problems}");
}

#[test]
fn the_generator_gives_the_same_project_for_the_same_seed() {
    let features = Features::default();
    for index in [0, 7, 199] {
        let a = generate::generate(DEFAULT_SEED, index, &features);
        let b = generate::generate(DEFAULT_SEED, index, &features);
        assert_eq!(a.files, b.files);
        assert_eq!(a.features, b.features);
    }
    let a = generate::generate(DEFAULT_SEED, 3, &features);
    let b = generate::generate(DEFAULT_SEED + 1, 3, &features);
    assert_ne!(a.files, b.files);
}

#[test]
fn a_feature_switched_off_is_never_used() {
    let mut features = Features::default();
    features.off.insert("ports-range".into());
    features.off.insert("reset-tag".into());
    features.off.insert("nested-reset".into());
    for index in 0..100 {
        let case = generate::generate(DEFAULT_SEED, index, &features);
        assert!(!case.features.contains("ports-range"));
        assert!(!case.features.contains("reset-tag"));
        for (_, text) in &case.files {
            assert!(!text.contains("!reset"), "{text}");
        }
    }
}

#[test]
fn every_listed_gap_names_a_known_feature() {
    for tag in read_known_gaps(&known_gaps_path()).keys() {
        assert!(generate::is_known(tag), "unknown tag {tag:?}");
    }
}

#[test]
fn every_feature_is_reachable_from_some_seed() {
    let features = Features::default();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for index in 0..2000 {
        seen.extend(generate::generate(DEFAULT_SEED, index, &features).features);
    }
    let missing: Vec<&str> = generate::FEATURES
        .iter()
        .map(|(tag, _)| *tag)
        .filter(|tag| !seen.contains(tag))
        .collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}

#[test]
fn json_diff_names_the_paths_that_differ() {
    let expected = serde_json::json!({"a": {"b": [1, 2]}, "c": "x", "d": 1});
    let actual = serde_json::json!({"a": {"b": [1, 3, 4]}, "c": "x", "e": 2});
    let mut paths = Vec::new();
    json_diff("$", &expected, &actual, &mut paths);
    assert_eq!(
        paths,
        [
            "$.a.b[1]: expected 2, got 3",
            "$.a.b: 3 items, expected 2 (expected [1,2], got [1,3,4])",
            "$.d: missing (expected 1)",
            "$.e: unexpected 2",
        ]
    );
}

#[test]
fn the_yaml_writer_nests_maps_in_sequences_and_keeps_tags() {
    use generate::{render, Y};
    let top = vec![(
        "services".to_owned(),
        Y::Map(vec![(
            "web".to_owned(),
            Y::Map(vec![
                (
                    "ports".to_owned(),
                    Y::Tag(
                        "!override",
                        Box::new(Y::Seq(vec![Y::Map(vec![
                            ("target".to_owned(), Y::S("80".into())),
                            ("published".to_owned(), Y::S("\"8080\"".into())),
                        ])])),
                    ),
                ),
                (
                    "volumes".to_owned(),
                    Y::Tag("!reset", Box::new(Y::Seq(Vec::new()))),
                ),
                ("x-empty".to_owned(), Y::S(String::new())),
            ]),
        )]),
    )];
    assert_eq!(
        render(&top),
        "services:\n  web:\n    ports: !override\n      - target: 80\n        published: \"8080\"\n    volumes: !reset []\n    x-empty:\n"
    );
}
