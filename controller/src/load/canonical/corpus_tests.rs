//! Canonical output compared with the oracle's `expected.json` for every
//! corpus case that is one file without interpolation, `.env`, `extends`,
//! `include`, `env_file`, `label_file` or profiles (steps this module does
//! not own). Relative paths are resolved here the way the later path step
//! will, so bind sources and build contexts can be compared too.
//!
//! The corpus is found at `$STACKD_CORPUS` or `/work/shared/corpus`; the
//! test passes with a note when neither exists.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::canonicalize;
use super::volumes::clean_path;
use crate::load::yaml::{decode_text, parse_documents};

const SKIPPED_FEATURES: &[&str] = &[
    "interp-braced",
    "interp-unbraced",
    "interp-default-colon",
    "interp-default",
    "interp-required-colon",
    "interp-required",
    "interp-alt-colon",
    "interp-alt",
    "interp-nested",
    "dollar-escape",
    "extends",
    "extends-file",
    "include",
    "env_file",
    "env_file-long",
    "label_file",
    "multi-document",
    "multi-file",
    "profiles",
    "profiles-activated",
    "dotenv",
    "tag-reset",
    "tag-override",
];

/// Service fields whose canonical shape this module owns.
const SERVICE_FIELDS: &[&str] = &[
    "annotations",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "command",
    "configs",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_shares",
    "cpus",
    "depends_on",
    "deploy",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "entrypoint",
    "environment",
    "expose",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "init",
    "labels",
    "links",
    "logging",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "networks",
    "oom_score_adj",
    "pids_limit",
    "ports",
    "post_start",
    "pre_stop",
    "privileged",
    "provider",
    "pull_policy",
    "read_only",
    "scale",
    "secrets",
    "shm_size",
    "stop_grace_period",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "volumes",
    "volumes_from",
];

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("STACKD_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/corpus"));
    dir.join("index.json").exists().then_some(dir)
}

struct Case {
    dir: PathBuf,
    file: PathBuf,
    name: String,
    project: String,
}

fn cases(corpus: &Path) -> Vec<Case> {
    let index: Json = serde_json::from_str(
        &std::fs::read_to_string(corpus.join("index.json")).expect("index.json reads"),
    )
    .expect("index.json parses");
    let mut out = Vec::new();
    for case in index["cases"].as_array().expect("cases") {
        let files = case["files"].as_array().expect("files");
        let features: Vec<&str> = case["features"]
            .as_array()
            .expect("features")
            .iter()
            .filter_map(Json::as_str)
            .collect();
        if case["outcome"] != "json"
            || files.len() != 1
            || features.iter().any(|f| SKIPPED_FEATURES.contains(f))
        {
            continue;
        }
        let name = case["case"].as_str().expect("case name").to_string();
        let dir = corpus.join("cases").join(&name);
        let file = dir.join(files[0].as_str().expect("file name"));
        let bytes = std::fs::read(&file).expect("compose file reads");
        if dir.join(".env").exists() || bytes.contains(&b'$') {
            continue;
        }
        out.push(Case {
            dir,
            file,
            name,
            project: case["project_name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        });
    }
    out
}

/// An absolute path with the case directory and its parents written as the
/// corpus writes them (`${CASE_DIR}`, `${CASE_DIR}/..`).
fn resolve(path: &str, case_dir: &Path) -> String {
    if let Some(rest) = path.strip_prefix('~') {
        return format!("${{HOME}}{rest}");
    }
    let b = path.as_bytes();
    let windows_drive = b.len() >= 3 && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/');
    if path.starts_with('/') || path.starts_with("\\\\") || windows_drive {
        return path.to_string();
    }
    let base = case_dir.to_string_lossy().to_string();
    let joined = clean_path(&format!("{base}/{path}"));
    let mut prefix = base.clone();
    let mut token = "${CASE_DIR}".to_string();
    loop {
        if joined == prefix {
            return token;
        }
        if let Some(rest) = joined.strip_prefix(&format!("{prefix}/")) {
            return format!("{token}/{rest}");
        }
        match Path::new(&prefix).parent() {
            Some(parent) if !prefix.is_empty() && prefix != "/" => {
                prefix = parent.to_string_lossy().to_string();
                token.push_str("/..");
            }
            _ => return joined,
        }
    }
}

fn is_remote_context(context: &str) -> bool {
    context.contains("://")
        || context.starts_with("service:")
        || [
            "https://",
            "http://",
            "git://",
            "ssh://",
            "github.com/",
            "git@",
        ]
        .iter()
        .any(|p| context.starts_with(p))
}

/// What the path step will do to the fields compared here.
fn resolve_paths(service: &mut Map<String, Json>, case_dir: &Path) {
    if let Some(Json::Array(volumes)) = service.get_mut("volumes") {
        for volume in volumes {
            if volume["type"] == "bind" {
                if let Some(Json::String(source)) = volume.get_mut("source") {
                    *source = resolve(source, case_dir);
                }
            }
        }
    }
    if let Some(Json::Object(build)) = service.get_mut("build") {
        if let Some(Json::String(context)) = build.get_mut("context") {
            if !is_remote_context(context) {
                *context = resolve(context, case_dir);
            }
        }
        if let Some(Json::Object(contexts)) = build.get_mut("additional_contexts") {
            for (_, value) in contexts.iter_mut() {
                if let Json::String(context) = value {
                    if !is_remote_context(context) {
                        *context = resolve(context, case_dir);
                    }
                }
            }
        }
        // Unset build args are dropped once the environment is known.
        if let Some(Json::Object(args)) = build.get_mut("args") {
            args.retain(|_, v| !v.is_null());
        }
        // compose prints ssh keys as a list of ids (and fails on `id=path`).
        if let Some(Json::Object(ssh)) = build.get("ssh") {
            let ids = ssh.keys().map(|k| Json::String(k.clone())).collect();
            build.insert("ssh".into(), Json::Array(ids));
        }
    }
}

/// Local volumes that are really binds (`o: bind`) have their device resolved.
fn resolve_volume_devices(project: &mut Json, case_dir: &Path) {
    let Some(Json::Object(volumes)) = project.get_mut("volumes") else {
        return;
    };
    for (_, volume) in volumes.iter_mut() {
        if volume["driver"] != "local" || volume["driver_opts"]["o"] != "bind" {
            continue;
        }
        if let Some(Json::String(device)) = volume["driver_opts"].get_mut("device") {
            *device = resolve(device, case_dir);
        }
    }
}

/// Drops what compose leaves out of its output: values empty, false or
/// zero (`omitempty`), and `x-` extensions inside typed objects.
fn prune(value: &Json) -> Json {
    let pruned = match value {
        Json::Object(map) => Json::Object(
            map.iter()
                .filter(|(k, v)| !(k.starts_with("x-") || (k.as_str() == "size" && *v == "0")))
                .map(|(k, v)| (k.clone(), prune(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(prune).collect()),
        other => other.clone(),
    };
    if is_empty(&pruned) {
        Json::Null
    } else {
        pruned
    }
}

fn is_empty(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::Bool(b) => !b,
        Json::Number(n) => n.as_f64() == Some(0.0),
        Json::String(s) => s.is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
    }
}

/// compose prints `blkio_config` devices with Go field names (`Path`, `Rate`).
fn lowercase_blkio(service: &mut Map<String, Json>) {
    if let Some(Json::Object(blkio)) = service.get_mut("blkio_config") {
        for (_, list) in blkio.iter_mut() {
            if let Json::Array(items) = list {
                for item in items {
                    if let Json::Object(map) = item {
                        *map = map
                            .iter()
                            .map(|(k, v)| (k.to_lowercase(), v.clone()))
                            .collect();
                    }
                }
            }
        }
    }
}

fn compare_case(case: &Case) -> Vec<String> {
    let file: Arc<str> = Arc::from(case.file.to_string_lossy().as_ref());
    let bytes = std::fs::read(&case.file).expect("reads");
    let text = match decode_text(&bytes, &file) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: decode: {e}", case.name)],
    };
    // Files the YAML layer refuses (deep nesting) are its business, not ours.
    let Ok(mut docs) = parse_documents(&text, &file) else {
        return Vec::new();
    };
    if docs.len() != 1 {
        return Vec::new();
    }
    let mut project = docs.remove(0);
    if let Err(e) = canonicalize(&mut project) {
        return vec![format!("{}: {e}", case.name)];
    }
    if let Err(e) = super::finish_extra_hosts(&mut project) {
        return vec![format!("{}: {e}", case.name)];
    }
    crate::load::normalize::normalize(
        &mut project,
        &case.project,
        &std::collections::BTreeMap::new(),
    );
    let mut mine = project.to_json();
    resolve_volume_devices(&mut mine, &case.dir);
    let expected: Json = serde_json::from_str(
        &std::fs::read_to_string(case.dir.join("expected.json")).expect("expected reads"),
    )
    .expect("expected parses");
    let mut problems = Vec::new();
    let empty = Map::new();
    let expected_services = expected["services"].as_object().unwrap_or(&empty);
    for (name, want) in expected_services {
        let Some(Json::Object(got)) = mine["services"].get(name) else {
            problems.push(format!("{}: service {name} missing", case.name));
            continue;
        };
        let mut got = got.clone();
        resolve_paths(&mut got, &case.dir);
        let mut want = want.as_object().cloned().unwrap_or_default();
        lowercase_blkio(&mut want);
        for field in SERVICE_FIELDS {
            let (g, w) = (got.get(*field), want.get(*field));
            let same = match *field {
                // Printed even when null, and [] differs from null.
                "command" | "entrypoint" => g.unwrap_or(&Json::Null) == w.unwrap_or(&Json::Null),
                _ => prune(g.unwrap_or(&Json::Null)) == prune(w.unwrap_or(&Json::Null)),
            };
            if !same {
                problems.push(format!(
                    "{}: services.{name}.{field}:\n   got  {}\n   want {}",
                    case.name,
                    g.unwrap_or(&Json::Null),
                    w.unwrap_or(&Json::Null)
                ));
            }
        }
    }
    for section in ["networks", "volumes", "secrets", "configs"] {
        let Some(want_section) = expected[section].as_object() else {
            continue;
        };
        for (name, want) in want_section {
            let got = &mine[section][name];
            let strip = |v: &Json| {
                let mut v = prune(v);
                if let Json::Object(m) = &mut v {
                    m.remove("file");
                }
                v
            };
            if strip(got) != strip(want) {
                problems.push(format!(
                    "{}: {section}.{name}:\n   got  {got}\n   want {want}",
                    case.name
                ));
            }
        }
    }
    problems
}

#[test]
fn canonical_fields_match_the_oracle_for_single_file_corpus_cases() {
    let Some(corpus) = corpus_dir() else {
        eprintln!("corpus not found; set STACKD_CORPUS to run this test");
        return;
    };
    let cases = cases(&corpus);
    assert!(
        cases.len() > 200,
        "only {} corpus cases selected",
        cases.len()
    );
    let problems: Vec<String> = cases.iter().flat_map(compare_case).collect();
    assert!(
        problems.is_empty(),
        "{} differences in {} cases:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

/// Corpus cases the oracle rejects for a reason this module owns.
const REJECTED_HERE: &[&str] = &[
    "compose-go/loader-TestEnvironmentWhitespace",
    "compose-go/loader-TestInvalidEnvironmentObject",
    "compose-go/loader-TestInvalidEnvironmentValue",
    "compose-go/loader-TestLoadNetworkInvalidExternalNameAndNameCombination",
    "compose-go/loader-TestLoadSecretInvalidExternalNameAndNameCombination",
    "compose-go/loader-TestLoadVolumeInvalidExternalNameAndNameCombination",
    "compose-go/loader-TestNonMappingObject-01",
    "compose-go/loader-TestNonMappingObject-02",
    "compose-go/loader-TestNonMappingObject-03",
    "compose-go/loader-TestNonMappingObject-04",
    "compose-go/loader-TestNonMappingObject-05",
    "compose-go/loader-TestNonMappingObject-06",
    "compose-go/loader-TestServiceDeviceRequestCountInvalidStringType",
    "hostile/command-list-non-string-items",
    "hostile/cpus-garbage",
    "hostile/deploy-memory-garbage",
    "hostile/duration-english",
    "hostile/duration-garbage",
    "hostile/duration-no-unit",
    "hostile/memory-size-bad-unit",
    "hostile/memory-size-garbage",
    "hostile/memory-size-negative",
    "hostile/ports-bad-host-ip",
    "hostile/ports-bad-protocol",
    "hostile/ports-container-out-of-range",
    "hostile/ports-empty-string",
    "hostile/ports-inverted-range",
    "hostile/ports-long-syntax-bad-types",
    "hostile/ports-negative",
    "hostile/ports-non-numeric",
    "hostile/ports-out-of-range",
    "hostile/ports-range-length-mismatch",
    "hostile/ports-too-many-colons",
    "hostile/replicas-string",
    "hostile/service-is-a-string",
    "hostile/services-is-a-list",
    "hostile/shm-size-garbage",
    "hostile/stop-grace-period-garbage",
    "hostile/top-level-scalar",
    "hostile/top-level-sequence",
    "hostile/yaml-unquoted-date-value",
];

#[test]
fn oracle_rejections_owned_here_are_rejected() {
    let Some(corpus) = corpus_dir() else {
        eprintln!("corpus not found; set STACKD_CORPUS to run this test");
        return;
    };
    let mut accepted = Vec::new();
    for name in REJECTED_HERE {
        let dir = corpus.join("cases").join(name);
        assert!(
            dir.join("expected.error").exists(),
            "{name} is not a rejection"
        );
        let path = dir.join("compose.yaml");
        let file: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        let text = std::fs::read_to_string(&path).expect("compose file reads");
        let mut project = parse_documents(&text, &file).expect("parses").remove(0);
        if canonicalize(&mut project).is_ok() {
            accepted.push(*name);
        }
    }
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}
