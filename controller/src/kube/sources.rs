//! Reads what the model only names: the files and variables secrets and
//! configs come from, and the project files services bind-mount (which the
//! translation copies into ConfigMaps). The translation itself never reads
//! anything; the caller hands it these [`Contents`].
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::translate::Contents;
use crate::model::Project;

/// Files larger than this are not read: no Kubernetes object holds them.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Largest bind-mounted file copied: what a ConfigMap holds.
const MAX_COPY_BYTES: u64 = 1024 * 1024;

/// The contents of every secret and config file of `project` that can be
/// read, the variables of `environment` they name, and the regular files
/// under `project_dir` that services bind-mount (none without a
/// directory). What cannot be read is left out; the translation warns
/// about it.
pub fn read(
    project: &Project,
    environment: &BTreeMap<String, String>,
    project_dir: Option<&Path>,
) -> Contents {
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
    if let Some(dir) = project_dir {
        let binds = project
            .services
            .values()
            .flat_map(|s| &s.volumes)
            .filter(|m| m.kind == "bind" && Path::new(&m.source).starts_with(dir));
        for mount in binds {
            if contents.files.contains_key(&mount.source) {
                continue;
            }
            if let Some(bytes) = read_file(&mount.source) {
                if bytes.len() as u64 <= MAX_COPY_BYTES {
                    contents.files.insert(mount.source.clone(), bytes);
                }
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
        let contents = read(&project, &environment, None);
        assert_eq!(
            contents.files,
            BTreeMap::from([(file.display().to_string(), b"hunter2".to_vec())])
        );
        assert_eq!(
            contents.variables,
            BTreeMap::from([("BANNER".to_string(), "hello".to_string())])
        );
    }

    #[test]
    fn bound_files_are_read_only_under_the_project_directory() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("project");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(inside.join("nginx.conf"), "events {}").unwrap();
        std::fs::create_dir(inside.join("site")).unwrap();
        std::fs::write(dir.path().join("outside.conf"), "x").unwrap();
        let bind = |source: &Path| serde_json::json!({"type": "bind", "source": source.display().to_string(), "target": "/t"});
        let project: Project = serde_json::from_value(serde_json::json!({
            "name": "p",
            "services": {"web": {"image": "nginx", "volumes": [
                bind(&inside.join("nginx.conf")),
                bind(&inside.join("site")),
                bind(&dir.path().join("outside.conf"))
            ]}}
        }))
        .unwrap();
        let contents = read(&project, &BTreeMap::new(), Some(&inside));
        let read_files: Vec<&String> = contents.files.keys().collect();
        assert_eq!(
            read_files,
            [&inside.join("nginx.conf").display().to_string()]
        );
        assert!(read(&project, &BTreeMap::new(), None).files.is_empty());
    }
}
