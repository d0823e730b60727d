//! Every bound the loader puts on hostile input, in one place: each one is
//! checked before work proportional to what it bounds is done, and each
//! error names the file (and line, where there is one) and the limit.
//! SECURITY.md lists them with the tests that prove them.
use std::io::Read;
use std::path::Path;

/// Largest compose file or Stack manifest read, in bytes. Real files are a
/// few KiB; a bigger file is refused after reading one byte past the limit,
/// so a huge file (or `/dev/zero`) costs no more memory than this.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// Largest env file (`env_file`, `--env-file`, `.env`) or label file read, in bytes.
pub const MAX_ENV_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Deepest nesting of YAML collections. Compose files nest about ten
/// levels; every recursive pass over the tree relies on this bound.
pub const MAX_NESTING_DEPTH: usize = 200;

/// Most nodes the aliases of one YAML document may expand to, the
/// billion-laughs bound (the file's own nodes are bounded by its size).
/// It is also what a bomb costs before it is refused: at 2,000,000 (the
/// first value) that was seconds per load, a timeout the fuzzer found. The
/// largest document in the compose corpus, aliases expanded, has 2,357
/// nodes; a 1,000-service file whose services all merge one 27-node anchor
/// adds 27,000 (a test holds that), so this leaves room for real files.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Longest template accepted and longest value one `${...}` interpolation
/// may produce, in bytes. compose has no such bound.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Deepest nesting of `${` inside operator arguments (`${A:-${B:-...}}`).
pub const MAX_INTERPOLATION_NESTING: usize = 64;

/// Most bytes interpolation may produce over one whole load. Each value is
/// bounded by [`MAX_VALUE_BYTES`], but an alias repeated a million times,
/// or a million references to one long variable, would each stay under it;
/// this bounds their sum.
pub const MAX_INTERPOLATED_BYTES: usize = 16 * 1024 * 1024;

/// Most services one project may define (all files merged). Checked after
/// each file is merged, before the services are normalized.
pub const MAX_SERVICES: usize = 5_000;

/// Most files one load may bring in through `include` and `extends.file`,
/// counting a file each time it is brought in: includes that fan out in a
/// diamond would otherwise load the same files exponentially often.
pub const MAX_INCLUDED_FILES: usize = 256;

/// Deepest chain of `extends` (service to base to base...) and deepest
/// nesting of `include`. Both are resolved recursively, so without this a
/// long chain in one file overflows the stack; real chains are a few deep.
pub const MAX_REFERENCE_DEPTH: usize = 32;

/// Reads at most `limit` bytes from `reader`: `Ok(None)` when there is more,
/// found by reading a single byte past the limit, never the rest.
pub fn read_at_most(reader: impl Read, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    let budget = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(budget).read_to_end(&mut bytes)?;
    Ok((bytes.len() <= limit).then_some(bytes))
}

/// Reads the file at `path` if it holds at most `limit` bytes (see
/// [`read_at_most`]).
pub fn read_file_at_most(path: &Path, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    read_at_most(std::fs::File::open(path)?, limit)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::load::{load_project, LoadError, LoadOptions, Loaded};

    /// A reader that never ends and counts what it served.
    struct Endless {
        served: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(b'a');
            self.served += buf.len();
            Ok(buf.len())
        }
    }

    /// Loads `files` (the first is the compose file) from a fresh folder.
    fn load(
        files: &[(&str, String)],
        env: &[(&str, String)],
    ) -> (PathBuf, Result<Loaded, LoadError>) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let main = dir.path().join(files[0].0);
        let options = LoadOptions {
            files: vec![main.clone()],
            working_dir: dir.path().to_path_buf(),
            environment: env
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            ..LoadOptions::default()
        };
        let loaded = load_project(&options);
        (main, loaded)
    }

    fn load_err(files: &[(&str, String)], env: &[(&str, String)]) -> (PathBuf, LoadError) {
        match load(files, env) {
            (_, Ok(_)) => panic!("the hostile project loaded"),
            (main, Err(err)) => (main, err),
        }
    }

    /// How many services `compose.yaml` holding `text` loads.
    fn services_loaded(text: String) -> usize {
        match load(&[("compose.yaml", text)], &[]) {
            (_, Ok(loaded)) => loaded.project.services.len(),
            (_, Err(err)) => panic!("{err}"),
        }
    }

    #[test]
    fn a_bounded_read_of_an_endless_stream_stops_one_byte_past_the_limit() {
        let mut endless = Endless { served: 0 };
        let read = read_at_most(&mut endless, 1000).expect("reads");
        assert_eq!(read, None);
        assert_eq!(endless.served, 1001);
        let exact = read_at_most(&b"abc"[..], 3).expect("reads");
        assert_eq!(exact.as_deref(), Some(&b"abc"[..]));
    }

    #[test]
    fn a_compose_file_past_the_size_limit_is_refused_naming_the_file_and_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("compose.yaml");
        // Sparse: the size is there, the disk blocks are not.
        let file = std::fs::File::create(&main).expect("create");
        file.set_len(MAX_FILE_BYTES as u64 * 64).expect("set_len");
        let options = LoadOptions {
            files: vec![main.clone()],
            working_dir: dir.path().to_path_buf(),
            ..LoadOptions::default()
        };
        let err = load_project(&options).expect_err("a 512 MiB file is refused");
        let text = err.to_string();
        assert!(text.starts_with(&main.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("{MAX_FILE_BYTES}-byte limit")),
            "{text}"
        );
    }

    #[test]
    fn an_env_file_past_the_size_limit_is_refused_naming_the_file_and_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = dir.path().join("big.env");
        let file = std::fs::File::create(&env).expect("create");
        file.set_len(MAX_ENV_FILE_BYTES as u64 * 64)
            .expect("set_len");
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  a:\n    image: x\n    env_file: big.env\n",
        )
        .expect("write");
        let options = LoadOptions {
            files: vec![dir.path().join("compose.yaml")],
            working_dir: dir.path().to_path_buf(),
            ..LoadOptions::default()
        };
        let text = load_project(&options)
            .expect_err("a 256 MiB env file is refused")
            .to_string();
        assert!(text.contains(&env.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("{MAX_ENV_FILE_BYTES}-byte limit")),
            "{text}"
        );
    }

    #[test]
    fn an_alias_bomb_is_refused_at_the_alias_that_crosses_the_node_limit() {
        // 9^10 nodes once expanded: the refusal must come from the budget,
        // which is crossed on the line of the alias that goes past it.
        let mut text = String::from("x-a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let items = [format!("*a{}", i - 1).as_str(); 9].join(", ");
            text.push_str(&format!("x-a{i}: &a{i} [{items}]\n"));
        }
        let (main, err) = load_err(&[("compose.yaml", text)], &[]);
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}:", main.display())),
            "{message}"
        );
        assert!(message.contains(&MAX_ALIAS_NODES.to_string()), "{message}");
        // 9^6 > MAX_ALIAS_NODES: the seventh anchor's line at the latest.
        let (_, line, _) = err.location().expect("located");
        assert!(line <= 7, "{message}");
    }

    #[test]
    fn a_file_without_aliases_is_not_held_to_the_alias_budget() {
        let mut text = String::from("services:\n");
        for i in 0..(MAX_ALIAS_NODES / 20) {
            text.push_str(&format!("  s{i}:\n    image: busybox\n    environment:\n"));
            for e in 0..10 {
                text.push_str(&format!("      K{e}: v\n"));
            }
        }
        assert_eq!(services_loaded(text), MAX_ALIAS_NODES / 20);
    }

    #[test]
    fn a_thousand_services_merging_one_shared_anchor_load_within_the_node_budget() {
        let mut text = String::from(
            "x-common: &common\n  image: busybox\n  restart: unless-stopped\n  \
             environment: {A: \"1\", B: \"2\", C: \"3\", D: \"4\"}\n  \
             labels: [team=core, tier=app]\n  logging: {driver: json-file, options: {max-size: 10m}}\n\
             services:\n",
        );
        for i in 0..1000 {
            text.push_str(&format!(
                "  s{i}:\n    <<: *common\n    command: [sleep, \"{i}\"]\n"
            ));
        }
        assert_eq!(services_loaded(text), 1000);
    }

    #[test]
    fn a_stack_manifest_holding_an_alias_bomb_is_refused_at_the_node_budget() {
        // Found by the stack_manifest fuzz target (a timeout): the corpus's
        // alias bomb wrapped as spec.compose, cut off mid-file.
        let mut text = String::from(
            "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata:\n  name: seed\nspec:\n  compose:\n    x-a0: &a0 \"lol\"\n",
        );
        for i in 1..10 {
            let items = [format!("*a{}", i - 1).as_str(); 9].join(", ");
            text.push_str(&format!("    x-a{i}: &a{i} [{items}]\n"));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = dir.path().join("stack.yaml");
        std::fs::write(&manifest, text).expect("write");
        let options = LoadOptions {
            working_dir: dir.path().to_path_buf(),
            ..LoadOptions::default()
        };
        let Err(err) = crate::load::stack::load_stack_manifest(&manifest, &options) else {
            panic!("the bomb loaded");
        };
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}:", manifest.display())),
            "{message}"
        );
        assert!(message.contains(&MAX_ALIAS_NODES.to_string()), "{message}");
        // 9^6 nodes pass the budget: refused by the line of x-a6 at the latest.
        let (_, line, _) = err.location().expect("located");
        assert!(line <= 13, "{message}");
    }

    #[test]
    fn nesting_past_the_depth_limit_is_refused_naming_the_file_and_line() {
        let depth = MAX_NESTING_DEPTH * 50;
        let text = format!(
            "services:\n  a:\n    image: x\nx-deep: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let (main, err) = load_err(&[("compose.yaml", text)], &[]);
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}:4:", main.display())),
            "{message}"
        );
        assert!(
            message.contains(&MAX_NESTING_DEPTH.to_string()),
            "{message}"
        );
    }

    #[test]
    fn a_project_with_more_services_than_the_limit_is_refused_naming_the_file_and_line() {
        let mut text = String::from("name: many\nservices:\n");
        for i in 0..=MAX_SERVICES {
            text.push_str(&format!("  s{i}: {{image: x}}\n"));
        }
        let (main, err) = load_err(&[("compose.yaml", text)], &[]);
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}:3:", main.display())),
            "{message}"
        );
        assert!(
            message.contains(&format!("more than the limit of {MAX_SERVICES}")),
            "{message}"
        );
    }

    #[test]
    fn one_interpolation_growing_past_the_value_limit_is_refused_naming_the_file_and_line() {
        let big = "x".repeat(MAX_VALUE_BYTES / 2 + 1);
        let text = "services:\n  a:\n    image: \"${A:-${BIG}${BIG}}\"\n".to_string();
        let (main, err) = load_err(&[("compose.yaml", text)], &[("BIG", big)]);
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}:3:", main.display())),
            "{message}"
        );
        assert!(message.contains(&MAX_VALUE_BYTES.to_string()), "{message}");
    }

    #[test]
    fn interpolation_adding_up_past_the_project_limit_stops_at_the_value_that_crosses_it() {
        let big = "x".repeat(MAX_VALUE_BYTES);
        let values = MAX_INTERPOLATED_BYTES / MAX_VALUE_BYTES;
        // Ten times more references than the limit allows: a load that did
        // not stop at the limit would reach their end.
        let mut text = String::from("services:\n  a:\n    image: x\nx-many:\n");
        for _ in 0..values * 10 {
            text.push_str("  - ${BIG}\n");
        }
        let (main, err) = load_err(&[("compose.yaml", text)], &[("BIG", big)]);
        let message = err.to_string();
        assert!(
            message.contains(&MAX_INTERPOLATED_BYTES.to_string()),
            "{message}"
        );
        let (file, line, _) = err.location().expect("located");
        assert_eq!(file, main);
        // Line 5 holds the first value; the one that crosses is one past
        // what the limit holds.
        assert_eq!(line as usize, 5 + values, "{message}");
    }

    #[test]
    fn includes_fanning_out_past_the_file_limit_are_refused_naming_the_include() {
        // Each level includes the next one twice: 2^12 loads of 13 files.
        let levels = 12;
        let mut files = Vec::new();
        for level in 0..levels {
            let next = format!("level{}.yaml", level + 1);
            files.push((
                format!("level{level}.yaml"),
                format!("include:\n  - {next}\n  - path: {next}\n"),
            ));
        }
        files.push((
            format!("level{levels}.yaml"),
            "services:\n  leaf:\n    image: x\n".to_string(),
        ));
        let files: Vec<(&str, String)> =
            files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        let (_, err) = load_err(&files, &[]);
        let message = err.to_string();
        assert!(
            message.contains(&format!("more than {MAX_INCLUDED_FILES} files")),
            "{message}"
        );
        let (file, line, _) = err.location().expect("located");
        assert!(file.display().to_string().ends_with(".yaml"), "{message}");
        assert!(line > 0, "{message}");
    }

    #[test]
    fn extends_from_more_files_than_the_limit_is_refused_naming_the_extends() {
        let count = MAX_INCLUDED_FILES + 10;
        let mut main = String::from("services:\n");
        let mut files = Vec::new();
        for i in 0..count {
            main.push_str(&format!(
                "  s{i}:\n    extends: {{file: base{i}.yaml, service: base}}\n"
            ));
            files.push((
                format!("base{i}.yaml"),
                "services:\n  base:\n    image: x\n".to_string(),
            ));
        }
        files.insert(0, ("compose.yaml".to_string(), main));
        let files: Vec<(&str, String)> =
            files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        let (main, err) = load_err(&files, &[]);
        let message = err.to_string();
        assert!(
            message.contains(&format!("more than {MAX_INCLUDED_FILES} files")),
            "{message}"
        );
        let (file, line, _) = err.location().expect("located");
        assert_eq!(file, main);
        // The extends of the first service past the limit, s256.
        assert_eq!(line as usize, 2 * (MAX_INCLUDED_FILES + 1) + 1, "{message}");
    }

    #[test]
    fn an_extends_chain_deeper_than_the_limit_is_refused_before_the_stack_runs_out() {
        // s0 extends s1 extends ... s4999: resolved recursively, so a chain
        // this long would overflow the stack without the depth limit.
        let mut text = String::from("services:\n");
        for i in 0..5000 {
            text.push_str(&format!("  s{i}: {{image: x, extends: s{}}}\n", i + 1));
        }
        text.push_str("  s5000: {image: x}\n");
        let (main, err) = load_err(&[("compose.yaml", text)], &[]);
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}:", main.display())),
            "{message}"
        );
        assert!(
            message.contains(&format!("deeper than {MAX_REFERENCE_DEPTH}")),
            "{message}"
        );
    }

    #[test]
    fn includes_nested_deeper_than_the_limit_are_refused_before_the_stack_runs_out() {
        let levels = MAX_REFERENCE_DEPTH * 4;
        let mut files = Vec::new();
        for level in 0..levels {
            files.push((
                format!("level{level}.yaml"),
                format!("include:\n  - level{}.yaml\n", level + 1),
            ));
        }
        files.push((
            format!("level{levels}.yaml"),
            "services:\n  leaf:\n    image: x\n".to_string(),
        ));
        let files: Vec<(&str, String)> =
            files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        let (_, err) = load_err(&files, &[]);
        let message = err.to_string();
        assert!(
            message.contains(&format!("deeper than {MAX_REFERENCE_DEPTH}")),
            "{message}"
        );
        let (file, line, _) = err.location().expect("located");
        assert!(
            file.display()
                .to_string()
                .ends_with(&format!("level{MAX_REFERENCE_DEPTH}.yaml")),
            "{message}"
        );
        assert_eq!(line, 2, "{message}");
    }
}
