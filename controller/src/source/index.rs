//! Which stacks a batch of changed paths touches: a map from every file a
//! stack's load read (or looked for) to the stacks that read it, owned by
//! the task that handles file events.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// File → stacks, and stack → files.
#[derive(Debug, Default, Clone)]
pub struct Index {
    by_stack: BTreeMap<String, BTreeSet<PathBuf>>,
    by_file: BTreeMap<PathBuf, BTreeSet<String>>,
}

/// What a batch of changed paths calls for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Affected {
    /// Stacks that read one of the paths, or have files below a folder that
    /// changed: each must be loaded again.
    pub stacks: BTreeSet<String>,
    /// True when a path may add or remove a stack (a YAML file, a folder,
    /// a folder that went away): search the directory again
    /// ([`super::rediscover`]).
    pub rescan: bool,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the files of `stack` (a loaded stack's `files`, or a failed
    /// one's), replacing what was recorded for it.
    pub fn set(&mut self, stack: &str, files: &BTreeSet<PathBuf>) {
        self.remove(stack);
        let files: BTreeSet<PathBuf> = files.iter().map(|f| normalize(f)).collect();
        for file in &files {
            self.by_file
                .entry(file.clone())
                .or_default()
                .insert(stack.to_owned());
        }
        self.by_stack.insert(stack.to_owned(), files);
    }

    /// Forgets `stack`.
    pub fn remove(&mut self, stack: &str) {
        let Some(files) = self.by_stack.remove(stack) else {
            return;
        };
        for file in files {
            if let Some(stacks) = self.by_file.get_mut(&file) {
                stacks.remove(stack);
                if stacks.is_empty() {
                    self.by_file.remove(&file);
                }
            }
        }
    }

    /// The files recorded for `stack`.
    pub fn files(&self, stack: &str) -> Option<&BTreeSet<PathBuf>> {
        self.by_stack.get(stack)
    }

    /// Every file recorded for any stack (what the watcher must cover).
    pub fn all_files(&self) -> BTreeSet<PathBuf> {
        self.by_file.keys().cloned().collect()
    }

    /// The stacks `paths` touch, and whether the directory must be searched
    /// again. Paths are normalized as [`Index::set`] normalizes files, so a
    /// path reported through a symbolic link to a folder still matches.
    pub fn affected(&self, paths: &[PathBuf]) -> Affected {
        let mut affected = Affected::default();
        for path in paths {
            let path = normalize(path);
            if let Some(stacks) = self.by_file.get(&path) {
                affected.stacks.extend(stacks.iter().cloned());
            }
            let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
            let is_dir = path.is_dir();
            let exists = is_dir || path.exists();
            // A folder that appears, goes or moves: the stacks below it
            // changed, and stacks may have come or gone with it.
            let below = self.files_below(&path);
            let folder = is_dir || (!exists && !below.is_empty());
            if folder {
                affected.stacks.extend(below);
            }
            if yaml || folder {
                affected.rescan = true;
            }
        }
        affected
    }

    /// Stacks with a file strictly below `dir`.
    fn files_below(&self, dir: &Path) -> BTreeSet<String> {
        let mut stacks = BTreeSet::new();
        for (file, owners) in self.by_file.range(dir.to_path_buf()..) {
            if !file.starts_with(dir) {
                break;
            }
            if file != dir {
                stacks.extend(owners.iter().cloned());
            }
        }
        stacks
    }
}

/// The path with its folder resolved (symbolic links, `..`): the nearest
/// existing ancestor is made canonical and the rest appended, so a path
/// that no longer exists normalizes as it did while it existed.
pub(super) fn normalize(path: &Path) -> PathBuf {
    let cleaned = crate::load::environment::clean_path(path);
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    let mut current = cleaned.as_path();
    loop {
        // The file name itself is kept as is: a link to a file is a change
        // of the link's path, its target is recorded separately.
        if !rest.is_empty() || current != cleaned.as_path() {
            if let Ok(real) = std::fs::canonicalize(current) {
                let mut out = real;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return out;
            }
        }
        match (current.parent(), current.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                current = parent;
            }
            _ => return cleaned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&Path]) -> BTreeSet<PathBuf> {
        paths.iter().map(|p| p.to_path_buf()).collect()
    }

    #[test]
    fn a_changed_file_touches_the_stacks_that_read_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let shared = root.join("shared.env");
        let mut index = Index::new();
        index.set("a", &set(&[&root.join("a/compose.yaml"), &shared]));
        index.set("b", &set(&[&root.join("b/stack.yaml"), &shared]));
        std::fs::write(&shared, "X=1\n").unwrap();
        let affected = index.affected(&[shared]);
        assert_eq!(affected.stacks, BTreeSet::from(["a".into(), "b".into()]));
        assert!(!affected.rescan);
    }

    #[test]
    fn an_unknown_non_yaml_file_touches_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let mut index = Index::new();
        index.set("a", &set(&[&root.join("a/compose.yaml")]));
        std::fs::write(root.join("README.md"), "hi").unwrap();
        assert_eq!(
            index.affected(&[root.join("README.md"), root.join("gone.txt")]),
            Affected::default()
        );
    }

    #[test]
    fn a_yaml_file_asks_for_a_rescan_whether_known_or_not() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let mut index = Index::new();
        index.set("a", &set(&[&root.join("a/compose.yaml")]));
        let new = index.affected(&[root.join("c/stack.yml")]);
        assert!(new.rescan && new.stacks.is_empty(), "{new:?}");
        let known = index.affected(&[root.join("a/compose.yaml")]);
        assert!(known.rescan, "{known:?}");
        assert_eq!(known.stacks, BTreeSet::from(["a".into()]));
    }

    #[test]
    fn a_folder_that_goes_touches_the_stacks_below_it_and_asks_for_a_rescan() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let mut index = Index::new();
        index.set(
            "a",
            &set(&[&root.join("a/compose.yaml"), &root.join("a/.env")]),
        );
        index.set("ab", &set(&[&root.join("ab/compose.yaml")]));
        let affected = index.affected(&[root.join("a")]);
        assert_eq!(affected.stacks, BTreeSet::from(["a".into()]));
        assert!(affected.rescan);
    }

    #[test]
    fn a_folder_that_appears_asks_for_a_rescan() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir(root.join("new")).unwrap();
        let affected = Index::new().affected(&[root.join("new")]);
        assert!(affected.rescan);
    }

    #[test]
    fn removing_a_stack_forgets_its_files_but_not_those_others_share() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let shared = root.join("shared.env");
        let mut index = Index::new();
        index.set("a", &set(&[&root.join("a.env"), &shared]));
        index.set("b", &set(&[&shared]));
        index.remove("a");
        assert!(index.affected(&[root.join("a.env")]).stacks.is_empty());
        assert_eq!(
            index.affected(&[shared]).stacks,
            BTreeSet::from(["b".into()])
        );
        assert_eq!(index.all_files(), set(&[&root.join("shared.env")]));
    }

    #[test]
    fn setting_a_stack_again_replaces_its_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let mut index = Index::new();
        index.set("a", &set(&[&root.join("old.env")]));
        index.set("a", &set(&[&root.join("new.env")]));
        assert!(index.affected(&[root.join("old.env")]).stacks.is_empty());
        assert_eq!(index.affected(&[root.join("new.env")]).stacks.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn paths_through_a_linked_folder_match_the_real_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        let mut index = Index::new();
        index.set("a", &set(&[&root.join("link/x.env")]));
        assert_eq!(index.affected(&[root.join("real/x.env")]).stacks.len(), 1);
        index.set("b", &set(&[&root.join("real/y.env")]));
        assert_eq!(index.affected(&[root.join("link/y.env")]).stacks.len(), 1);
    }

    #[test]
    fn a_relative_or_dotted_path_matches_its_clean_form() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir(root.join("a")).unwrap();
        let mut index = Index::new();
        index.set("a", &set(&[&root.join("a/../shared.env")]));
        assert_eq!(index.affected(&[root.join("shared.env")]).stacks.len(), 1);
    }
}
