//! Every valid case of the shared corpus translated to Kubernetes objects,
//! and the output checked three ways:
//!
//! * no key of the input is dropped silently: every key the loaded model
//!   holds shaped the output or has a warning;
//! * `kube::translate::check` finds nothing (names, selectors, references);
//!   every object's YAML reads back to the same value;
//! * kubernetes-validate, strict, accepts every object against the
//!   Kubernetes 1.33 (the oldest supported) and 1.37 OpenAPI schemas
//!   (through `tests/translate/validate.py`, which runs its validation with
//!   the schemas read once: the command line takes minutes on the corpus).
//!
//! Each case is translated twice: with the default options, and with every
//! host permission on and a namespace. A case our loader does not load
//! (a known conformance difference) is translated from the oracle's
//! `expected.json` instead. The report (cases, objects, warnings by key,
//! failures) is printed on stderr; `just translate-corpus` shows it.
//!
//! Environment: `STACKD_CORPUS` (the corpus folder; default `shared/corpus`
//! beside the repository or a parent), `STACKD_TRANSLATE_FILTER` (only cases
//! whose name contains it), `STACKD_TRANSLATE_KEEP=DIR` (keep the YAML
//! there). Without the `kubernetes_validate` Python package the schema step
//! is skipped with a note, unless `CI` is set: then the test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::python_module_available;
use serde::Deserialize;
use stackd::kube::sources;
use stackd::kube::translate::{check, keys_present, translate, TranslateOptions, Translation};
use stackd::load::{load_project, LoadOptions};
use stackd::model::Project;

const FAKE_HOME: &str = "/nonexistent/compose-oracle-home";
/// Kubernetes versions the output is validated against.
const VERSIONS: [&str; 2] = ["1.33.0", "1.37.0"];

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

fn corpus_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("STACKD_CORPUS") {
        if !dir.is_empty() {
            return Some(PathBuf::from(dir));
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("shared/corpus"))
        .find(|dir| dir.join("index.json").is_file())
}

fn environment() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("PATH".to_string(), "/usr/bin:/bin".to_string()),
        ("HOME".to_string(), FAKE_HOME.to_string()),
    ])
}

/// The project of a case: loaded as `stackd convert` loads it, or from
/// the oracle's output when our loader disagrees with the oracle.
fn project_of(dir: &Path, case: &IndexCase) -> (Project, bool) {
    let options = LoadOptions {
        files: case.files.iter().map(PathBuf::from).collect(),
        project_name: Some(case.project_name.clone()),
        profiles: case.profiles.clone(),
        env_files: Vec::new(),
        project_directory: None,
        working_dir: dir.to_path_buf(),
        environment: environment(),
    };
    if let Ok(loaded) = load_project(&options) {
        return (loaded.project, true);
    }
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let text = text.replace("${CASE_DIR}", &dir.display().to_string());
    (serde_json::from_str(&text).unwrap(), false)
}

/// Warning keys with the user's names (variables, services, labels)
/// replaced by `*`, for counting.
fn generic_key(kind: &str, key: &str) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    let named = [
        "environment",
        "depends_on",
        "networks",
        "labels",
        "annotations",
        "models",
    ];
    let mut out = Vec::new();
    let mut index = 0;
    while index < parts.len() {
        out.push(parts[index].to_string());
        if named.contains(&parts[index]) && index + 1 < parts.len() {
            out.push("*".into());
            index += 1;
            if matches!(parts[index - 1], "labels" | "annotations" | "environment") {
                break;
            }
        }
        index += 1;
    }
    format!("{kind}.{}", out.join("."))
}

struct Variant {
    name: &'static str,
    options: fn(&Project, &BTreeMap<String, String>, &Path) -> TranslateOptions,
}

fn default_options(
    project: &Project,
    env: &BTreeMap<String, String>,
    dir: &Path,
) -> TranslateOptions {
    TranslateOptions {
        contents: sources::read(project, env, Some(dir)),
        ..TranslateOptions::default()
    }
}

fn permissive_options(
    project: &Project,
    env: &BTreeMap<String, String>,
    dir: &Path,
) -> TranslateOptions {
    TranslateOptions {
        namespace: Some("corpus".into()),
        allow_host_path: true,
        allow_host_network: true,
        allow_host_pid: true,
        allow_host_ipc: true,
        wait_image: Some("example/kubectl:1.33".into()),
        contents: sources::read(project, env, Some(dir)),
    }
}

/// Problems with one translation that need no outside tool.
fn inspect(project: &Project, translation: &Translation) -> Vec<String> {
    let mut problems = Vec::new();
    let present = keys_present(project);
    for key in translation.unaccounted(&present) {
        problems.push(format!("silently dropped: {} {}", key.scope, key.key));
    }
    problems.extend(check::check(&translation.objects));
    for object in &translation.objects {
        let yaml = object.to_yaml().unwrap();
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        if back != serde_json::to_value(object).unwrap() {
            problems.push(format!(
                "{} {}: the YAML does not read back to the same object",
                object.kind(),
                object.name()
            ));
        }
    }
    problems
}

/// The validation script, when python3 can import kubernetes_validate.
fn validator() -> Option<PathBuf> {
    if !python_module_available("kubernetes_validate", "pip install kubernetes-validate") {
        return None;
    }
    Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/translate/validate.py"))
}

/// Runs the validation over `files` in batches; returns the files it
/// rejected with its messages.
fn validate(script: &Path, files: &[PathBuf]) -> BTreeMap<PathBuf, String> {
    let mut rejected = BTreeMap::new();
    for batch in files.chunks(500) {
        let mut command = Command::new("python3");
        command.arg(script);
        for version in VERSIONS {
            command.args(["-k", version]);
        }
        let output = command.args(batch).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let file = batch
                .iter()
                .find(|f| line.contains(&*f.display().to_string()))
                .cloned()
                .unwrap_or_default();
            rejected
                .entry(file)
                .or_insert_with(String::new)
                .push_str(&format!("{line}\n"));
        }
        if !output.status.success() && text.trim().is_empty() {
            rejected.insert(PathBuf::new(), format!("exit status {}", output.status));
        }
    }
    rejected
}

#[test]
fn every_valid_corpus_case_translates_to_schema_valid_objects_without_silent_drops() {
    let Some(corpus) = corpus_dir() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no corpus found and CI is set; set STACKD_CORPUS"
        );
        eprintln!("no corpus found beside the repository; skipping");
        return;
    };
    let index: Index =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("index.json")).unwrap()).unwrap();
    let filter = std::env::var("STACKD_TRANSLATE_FILTER").unwrap_or_default();
    let keep = std::env::var("STACKD_TRANSLATE_KEEP")
        .ok()
        .filter(|d| !d.is_empty());
    let scratch = tempfile::tempdir().unwrap();
    let out_dir = keep.map_or_else(|| scratch.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&out_dir).unwrap();
    let variants = [
        Variant {
            name: "default",
            options: default_options,
        },
        Variant {
            name: "permissive",
            options: permissive_options,
        },
    ];
    let env = environment();
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut warnings_by_key: BTreeMap<String, usize> = BTreeMap::new();
    let (mut cases, mut from_oracle, mut objects, mut warnings) = (0, 0, 0, 0);
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    for case in index
        .cases
        .iter()
        .filter(|c| c.outcome == "json" && c.case.contains(&filter))
    {
        let dir = corpus.join("cases").join(&case.case);
        let (project, loaded) = project_of(&dir, case);
        cases += 1;
        if !loaded {
            from_oracle += 1;
        }
        for variant in &variants {
            let options = (variant.options)(&project, &env, &dir);
            let label = format!("{} ({})", case.case, variant.name);
            let result = std::panic::catch_unwind(|| translate(&project, &options));
            let translation = match result {
                Err(_) => {
                    failures.entry(label).or_default().push("panicked".into());
                    continue;
                }
                Ok(Err(error)) => {
                    failures
                        .entry(label)
                        .or_default()
                        .push(format!("error: {error}"));
                    continue;
                }
                Ok(Ok(translation)) => translation,
            };
            let problems = inspect(&project, &translation);
            if !problems.is_empty() {
                failures.entry(label.clone()).or_default().extend(problems);
            }
            if variant.name == "default" {
                objects += translation.objects.len();
                warnings += translation.warnings.len();
                for object in &translation.objects {
                    *kinds.entry(object.kind()).or_default() += 1;
                }
                for warning in &translation.warnings {
                    *warnings_by_key
                        .entry(generic_key(warning.scope.kind(), &warning.key))
                        .or_default() += 1;
                }
            }
            let file = out_dir.join(format!(
                "{}--{}.yaml",
                case.case.replace('/', "--"),
                variant.name
            ));
            std::fs::write(&file, translation.to_yaml().unwrap()).unwrap();
            files.insert(file, label);
        }
    }
    let mut validated = "skipped (kubernetes-validate not installed)".to_string();
    if let Some(tool) = validator() {
        let list: Vec<PathBuf> = files.keys().cloned().collect();
        for (file, message) in validate(&tool, &list) {
            let label = files
                .get(&file)
                .cloned()
                .unwrap_or_else(|| "(batch)".into());
            failures
                .entry(label)
                .or_default()
                .push(format!("kubernetes-validate: {}", message.trim()));
        }
        validated = format!(
            "{} files against Kubernetes {}",
            list.len(),
            VERSIONS.join(" and ")
        );
    }
    let mut report = format!(
        "translate corpus: {cases} valid cases ({from_oracle} from expected.json), {} translations, {objects} objects, {warnings} warnings (default options)\n\
         schema validation: {validated}\nobjects by kind: {kinds:?}\nwarnings by key:\n",
        files.len()
    );
    let mut by_count: Vec<_> = warnings_by_key.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (key, count) in by_count {
        report.push_str(&format!("  {count:5}  {key}\n"));
    }
    report.push_str(&format!("failures: {}\n", failures.len()));
    for (label, problems) in failures.iter().take(40) {
        report.push_str(&format!("  {label}\n"));
        for problem in problems.iter().take(6) {
            report.push_str(&format!("    {problem}\n"));
        }
    }
    eprintln!("{report}");
    assert!(
        cases > 0 || !filter.is_empty(),
        "no valid case in the corpus index"
    );
    assert!(
        failures.is_empty(),
        "{} translations failed; see the report above",
        failures.len()
    );
}
