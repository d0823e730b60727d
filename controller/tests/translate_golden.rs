//! The checked-in `manifests/<stack>/kubernetes*.yaml` is what `stackd
//! convert` makes of the compose files beside it (warnings included, as
//! comments): one file, several merged with `-f`, or one file with an
//! `--env-file` per environment. Each stack's `stack.yaml` is what `stackd
//! wrap` makes of its production load (the real images, not the busybox
//! variant).
//! `STACKD_GOLDEN_WRITE=1` (what `just generate` sets) rewrites the files
//! instead of comparing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::python_module_available;
use stackd::kube::sources;
use stackd::kube::translate::{check, keys_present, translate, TranslateOptions, Translation};
use stackd::load::stack::load_stack_manifest;
use stackd::load::{load_project, LoadOptions};
use stackd::model::{Project, Stack, StackSpec};

/// A checked-in translation: the stack folder, the `-f` files in order,
/// the `--env-file`s, and the file it is written to.
struct Golden {
    stack: &'static str,
    files: &'static [&'static str],
    env_files: &'static [&'static str],
    output: &'static str,
}

const GOLDEN: [Golden; 7] = [
    Golden {
        stack: "agents",
        files: &["compose.yaml"],
        env_files: &[],
        output: "kubernetes.yaml",
    },
    Golden {
        stack: "coordination",
        files: &["compose.yaml"],
        env_files: &[],
        output: "kubernetes.yaml",
    },
    Golden {
        stack: "orchestrator",
        files: &["compose.yaml"],
        env_files: &[],
        output: "kubernetes.yaml",
    },
    Golden {
        stack: "toolhub",
        files: &[
            "compose.yaml",
            "compose.prod.yaml",
            "compose.monitoring.yaml",
        ],
        env_files: &[],
        output: "kubernetes.yaml",
    },
    Golden {
        stack: "toolhub",
        files: &["compose.yaml", "compose.dev.yaml"],
        env_files: &[],
        output: "kubernetes.dev.yaml",
    },
    Golden {
        stack: "writing",
        files: &["compose.yaml"],
        env_files: &[".env.prod"],
        output: "kubernetes.yaml",
    },
    Golden {
        stack: "writing",
        files: &["compose.yaml"],
        env_files: &[".env.dev"],
        output: "kubernetes.dev.yaml",
    },
];

/// The generated Stack manifests: each stack's production load (an index
/// into [`GOLDEN`]).
const GENERATED_STACKS: [(&str, usize); 5] = [
    ("agents", 0),
    ("coordination", 1),
    ("orchestrator", 2),
    ("toolhub", 3),
    ("writing", 5),
];

impl Golden {
    /// The command line that loads this case, as a user would type it.
    fn command(&self, verb: &str) -> String {
        let mut line = format!("stackd {verb}");
        for file in self.files {
            line.push_str(&format!(" -f {file}"));
        }
        for env_file in self.env_files {
            line.push_str(&format!(" --env-file {env_file}"));
        }
        line
    }

    fn project(&self) -> Project {
        let dir = manifests().join(self.stack);
        let mut options = clean_options(&dir, self.files.iter().map(PathBuf::from).collect());
        options.env_files = self.env_files.iter().map(|f| dir.join(f)).collect();
        load_project(&options).unwrap().project
    }
}

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

/// The environment the files are made in: nothing from the caller's.
fn clean_options(dir: &Path, files: Vec<PathBuf>) -> LoadOptions {
    LoadOptions {
        files,
        working_dir: dir.to_path_buf(),
        environment: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
        ..LoadOptions::default()
    }
}

fn translated(project: &Project, dir: &Path) -> Translation {
    let options = TranslateOptions {
        contents: sources::read(project, &BTreeMap::new(), Some(dir)),
        ..TranslateOptions::default()
    };
    translate(project, &options).unwrap()
}

/// The file's text: a header, the warnings as comments, the objects.
fn golden_text(golden: &Golden, translation: &Translation) -> String {
    let mut text = format!(
        "# The {} stack (the compose files beside this file) as Kubernetes objects:\n\
         # what `{}` prints. Generated: `just generate`\n\
         # rewrites it, and a test fails when it differs from the translation.\n",
        golden.stack,
        golden.command("convert")
    );
    if translation.warnings.is_empty() {
        text.push_str("# No warnings: every compose key carried over.\n");
    } else {
        text.push_str("# Warnings (compose keys that did not fully carry over):\n");
        for warning in &translation.warnings {
            text.push_str(&format!("#   {warning}\n"));
        }
    }
    text.push_str(&translation.to_yaml().unwrap());
    text
}

#[test]
fn the_checked_in_kubernetes_yaml_of_each_stack_is_its_translation() {
    let write = std::env::var("STACKD_GOLDEN_WRITE").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for golden in &GOLDEN {
        let project = golden.project();
        let translation = translated(&project, &manifests().join(golden.stack));
        assert!(translation.unaccounted(&keys_present(&project)).is_empty());
        assert_eq!(check::check(&translation.objects), Vec::<String>::new());
        let text = golden_text(golden, &translation);
        let (stack, output) = (golden.stack, golden.output);
        let path = manifests().join(stack).join(output);
        if write {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        if checked_in != text {
            let line = checked_in
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .map_or_else(
                    || checked_in.lines().count().min(text.lines().count()) + 1,
                    |i| i + 1,
                );
            stale.push(format!(
                "manifests/{stack}/{output} (first difference at line {line})"
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {}; run `just generate` and review the difference",
        stale.join(", ")
    );
}

/// The Stack manifest text for a case: a header and `stackd wrap`'s output.
fn stack_manifest_text(golden: &Golden) -> String {
    let mut project = golden.project();
    // As `stackd wrap` writes them: relative to the manifest's folder, so
    // the file is the same in every clone.
    project.make_paths_relative(&stackd::load::environment::clean_path(
        &manifests().join(golden.stack),
    ));
    let stack = Stack::new(
        golden.stack,
        StackSpec {
            compose: Some(project),
            ..StackSpec::default()
        },
    );
    let yaml = serde_saphyr::to_string(&stack).unwrap();
    format!(
        "# The {} stack as a Stack manifest: spec.compose is the model `{}`\n\
         # prints. Generated: `just generate` rewrites it, and a test fails when it\n\
         # differs. Apply with `kubectl apply -f`, or keep it under `stackd watch`.\n{}",
        golden.stack,
        golden.command("wrap"),
        yaml.replace('$', "$$")
    )
}

#[test]
fn the_generated_stack_manifests_wrap_the_production_load() {
    let write = std::env::var("STACKD_GOLDEN_WRITE").is_ok_and(|v| v == "1");
    for (stack, index) in GENERATED_STACKS {
        let golden = &GOLDEN[index];
        assert_eq!(golden.stack, stack);
        let text = stack_manifest_text(golden);
        let path = manifests().join(stack).join("stack.yaml");
        if write {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        assert!(
            std::fs::read_to_string(&path).unwrap_or_default() == text,
            "manifests/{stack}/stack.yaml is out of date; run `just generate`"
        );
        let dir = manifests().join(stack);
        let loaded =
            load_stack_manifest(Path::new("stack.yaml"), &clean_options(&dir, Vec::new())).unwrap();
        let from_manifest = translated(&loaded.loaded.project, &dir);
        let from_compose = translated(&golden.project(), &dir);
        assert_eq!(
            from_manifest.to_yaml().unwrap(),
            from_compose.to_yaml().unwrap(),
            "{stack}"
        );
        assert_eq!(from_manifest.warnings, from_compose.warnings, "{stack}");
    }
}

#[test]
fn an_env_file_selects_what_differs_between_environments() {
    let prod = GOLDEN[5].project();
    let dev = GOLDEN[6].project();
    let json = |p: &Project| serde_json::to_value(p).unwrap();
    let (prod, dev) = (json(&prod), json(&dev));
    assert_eq!(prod["services"]["editor"]["deploy"]["replicas"], 3);
    assert_eq!(dev["services"]["editor"]["deploy"]["replicas"], 1);
    assert_eq!(
        prod["services"]["search"]["environment"]["MEILI_ENV"],
        "production"
    );
    assert_eq!(
        dev["services"]["search"]["environment"]["MEILI_ENV"],
        "development"
    );
    // Without --env-file, `.env` is read: the development settings.
    let dir = manifests().join("writing");
    let default = load_project(&clean_options(&dir, vec!["compose.yaml".into()]))
        .unwrap()
        .project;
    assert_eq!(json(&default), dev);
    let values = |name: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        values(".env"),
        values(".env.dev"),
        ".env must repeat .env.dev"
    );
    // With neither, loading stops at the first required variable.
    let scratch = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join("compose.yaml"),
        scratch.path().join("compose.yaml"),
    )
    .unwrap();
    let error = load_project(&clean_options(scratch.path(), vec!["compose.yaml".into()]))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("RESTART_POLICY"), "{error}");
}

#[test]
fn the_checked_in_kubernetes_yaml_passes_strict_schema_validation() {
    if !python_module_available("kubernetes_validate", "pip install kubernetes-validate") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/translate/validate.py");
    let files: Vec<PathBuf> = GOLDEN
        .iter()
        .map(|g| manifests().join(g.stack).join(g.output))
        .collect();
    let output = Command::new("python3")
        .arg(script)
        .args(["-k", "1.33.0", "-k", "1.37.0"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
