//! Reads what secrets and configs hold outside the model: the files they
//! name and the variables they come from. The translation itself never
//! reads anything; the caller hands it these [`Contents`].
use std::collections::BTreeMap;
use std::io::Read;

use super::translate::Contents;
use crate::model::Project;

/// Files larger than this are not read: no Kubernetes object holds them.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The contents of every secret and config file of `project` that can be
/// read, and the variables of `environment` they name. What cannot be read
/// is left out; the translation warns about it.
pub fn read(project: &Project, environment: &BTreeMap<String, String>) -> Contents {
    let mut contents = Contents::default();
    let sources = project
        .secrets
        .values()
        .map(|s| (&s.file, &s.environment))
        .chain(project.configs.values().map(|c| (&c.file, &c.environment)));
    for (file, variable) in sources {
        if !file.is_empty() && !contents.files.contains_key(file) {
            if let Some(bytes) = read_file(file) {
                contents.files.insert(file.clone(), bytes);
            }
        }
        if !variable.is_empty() {
            if let Some(value) = environment.get(variable) {
                contents.variables.insert(variable.clone(), value.clone());
            }
        }
    }
    contents
}

fn read_file(path: &str) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= MAX_FILE_BYTES).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_and_config_variables_are_read_and_missing_ones_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password.txt");
        std::fs::write(&file, "hunter2").unwrap();
        let missing = dir.path().join("missing.txt");
        let project: Project = serde_json::from_value(serde_json::json!({
            "name": "p",
            "secrets": {
                "password": {"file": file.display().to_string()},
                "gone": {"file": missing.display().to_string()}
            },
            "configs": {"banner": {"environment": "BANNER"}, "other": {"environment": "UNSET"}}
        }))
        .unwrap();
        let environment = BTreeMap::from([
            ("BANNER".to_string(), "hello".to_string()),
            ("UNRELATED".to_string(), "x".to_string()),
        ]);
        let contents = read(&project, &environment);
        assert_eq!(
            contents.files,
            BTreeMap::from([(file.display().to_string(), b"hunter2".to_vec())])
        );
        assert_eq!(
            contents.variables,
            BTreeMap::from([("BANNER".to_string(), "hello".to_string())])
        );
    }
}
