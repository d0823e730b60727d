//! Makes the relative paths of a canonical compose tree absolute against a
//! base directory: build contexts, env files, bind mounts, secret and config
//! files, `extends.file`, `include` paths, local volume binds.
use std::path::{Path, PathBuf};

use super::environment::clean_path;
use super::yaml::{Node, Value};

/// Resolves every path-valued field of a project tree against `base`.
/// `home` expands a leading `~`.
pub fn resolve_relative_paths(project: &mut Node, base: &Path, home: Option<&Path>) {
    let resolver = Resolver { base, home };
    if let Some(services) = project.get_mut("services").and_then(Node::as_map_mut) {
        for (_, (_, service)) in services.iter_mut() {
            resolver.service(service);
        }
    }
    for kind in ["configs", "secrets"] {
        if let Some(items) = project.get_mut(kind).and_then(Node::as_map_mut) {
            for (_, (_, item)) in items.iter_mut() {
                if let Some(file) = item.get_mut("file") {
                    resolver.maybe_unix_path(file);
                }
            }
        }
    }
    if let Some(volumes) = project.get_mut("volumes").and_then(Node::as_map_mut) {
        for (_, (_, volume)) in volumes.iter_mut() {
            resolver.volume_driver_opts(volume);
        }
    }
    if let Some(Value::Seq(includes)) = project.get_mut("include").map(|n| &mut n.value) {
        for include in includes.iter_mut() {
            for key in ["path", "project_directory", "env_file"] {
                if let Some(node) = include.get_mut(key) {
                    resolver.abs_path(node);
                }
            }
        }
    }
}

struct Resolver<'a> {
    base: &'a Path,
    home: Option<&'a Path>,
}

impl Resolver<'_> {
    fn service(&self, service: &mut Node) {
        if let Some(build) = service.get_mut("build") {
            if let Some(context) = build.get_mut("context") {
                self.context_path(context);
            }
            if let Some(contexts) = build
                .get_mut("additional_contexts")
                .and_then(Node::as_map_mut)
            {
                for (_, (_, context)) in contexts.iter_mut() {
                    self.context_path(context);
                }
            }
            if let Some(ssh) = build.get_mut("ssh") {
                match &mut ssh.value {
                    Value::Map(map) => {
                        for (_, (_, value)) in map.iter_mut() {
                            self.maybe_unix_path(value);
                        }
                    }
                    Value::Seq(items) => {
                        for item in items.iter_mut() {
                            self.ssh_entry(item);
                        }
                    }
                    Value::Scalar(_) => {}
                }
            }
        }
        if let Some(Value::Seq(files)) = service.get_mut("env_file").map(|n| &mut n.value) {
            for file in files.iter_mut() {
                match file.get_mut("path") {
                    Some(path) => self.abs_path(path),
                    None => self.abs_path(file),
                }
            }
        }
        if let Some(node) = service.get_mut("label_file") {
            self.abs_path(node);
        }
        if let Some(file) = service.get_mut("extends").and_then(|e| e.get_mut("file")) {
            self.abs_path(file);
        }
        if let Some(Value::Seq(watches)) = service
            .get_mut("develop")
            .and_then(|d| d.get_mut("watch"))
            .map(|n| &mut n.value)
        {
            for watch in watches.iter_mut() {
                if let Some(path) = watch.get_mut("path") {
                    self.abs_path(path);
                }
            }
        }
        if let Some(Value::Seq(volumes)) = service.get_mut("volumes").map(|n| &mut n.value) {
            for volume in volumes.iter_mut() {
                if volume.get("type").and_then(Node::as_str) == Some("bind") {
                    if let Some(source) = volume.get_mut("source") {
                        self.maybe_unix_path(source);
                    }
                }
            }
        }
    }

    fn expand_user(&self, text: &str) -> String {
        expand_home(text, self.home)
    }

    fn join(&self, text: &str) -> String {
        let joined: PathBuf = self.base.join(text);
        clean_path(&joined).display().to_string()
    }

    /// A path that is made absolute even if it looks like a Windows path.
    fn abs_path(&self, node: &mut Node) {
        if let Value::Seq(items) = &mut node.value {
            for item in items.iter_mut() {
                self.abs_path(item);
            }
            return;
        }
        let Some(text) = node.as_str().map(str::to_string) else {
            return;
        };
        let expanded = self.expand_user(&text);
        let resolved = if Path::new(&expanded).is_absolute() || expanded.is_empty() {
            expanded
        } else {
            self.join(&expanded)
        };
        *node = Node::string(resolved, node.span.clone());
    }

    /// Relative paths only when they look like local unix paths.
    fn maybe_unix_path(&self, node: &mut Node) {
        let Some(text) = node.as_str().map(str::to_string) else {
            return;
        };
        let expanded = self.expand_user(&text);
        if expanded.is_empty()
            || Path::new(&expanded).is_absolute()
            || is_windows_absolute(&expanded)
        {
            if expanded != text {
                *node = Node::string(expanded, node.span.clone());
            }
            return;
        }
        let resolved = self.join(&expanded);
        *node = Node::string(resolved, node.span.clone());
    }

    /// Build contexts may be URLs, `service:` or other named contexts.
    fn context_path(&self, node: &mut Node) {
        let Some(text) = node.as_str() else { return };
        if is_remote_context(text)
            || text.contains("://")
            || text.starts_with("service:")
            || text.starts_with("docker-image:")
            || text.starts_with("oci-layout:")
        {
            return;
        }
        self.maybe_unix_path(node);
    }

    fn ssh_entry(&self, node: &mut Node) {
        let Some(text) = node.as_str().map(str::to_string) else {
            return;
        };
        if let Some((id, path)) = text.split_once('=') {
            let mut path_node = Node::string(path, node.span.clone());
            self.maybe_unix_path(&mut path_node);
            if let Some(resolved) = path_node.as_str() {
                *node = Node::string(format!("{id}={resolved}"), node.span.clone());
            }
        }
    }

    fn volume_driver_opts(&self, volume: &mut Node) {
        if volume.get("driver").and_then(Node::as_str) != Some("local") {
            return;
        }
        let Some(opts) = volume.get_mut("driver_opts") else {
            return;
        };
        if opts.get("o").and_then(Node::as_str) != Some("bind") {
            return;
        }
        if let Some(device) = opts.get_mut("device") {
            self.maybe_unix_path(device);
        }
    }
}

/// `path.Clean` for container paths (always `/`-separated).
pub fn clean_slash_path(text: &str) -> String {
    if text.is_empty() {
        return ".".into();
    }
    let rooted = text.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// A leading `~` (alone or before `/`) becomes the home directory.
pub fn expand_home(text: &str, home: Option<&Path>) -> String {
    match (home, text.strip_prefix('~')) {
        (Some(home), Some(rest)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", home.display())
        }
        _ => text.to_string(),
    }
}

fn is_windows_absolute(text: &str) -> bool {
    let b = text.as_bytes();
    (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/'))
        || text.starts_with("\\\\")
}

/// Git and HTTP build contexts stay as written.
pub fn is_remote_context(text: &str) -> bool {
    text.starts_with("git://")
        || text.starts_with("git@")
        || text.starts_with("github.com/")
        || text.starts_with("http://")
        || text.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_are_cleaned_like_go_path_clean() {
        assert_eq!(clean_slash_path("/data/"), "/data");
        assert_eq!(clean_slash_path("/a/./b/../c"), "/a/c");
        assert_eq!(clean_slash_path("relative/x/"), "relative/x");
    }
}
