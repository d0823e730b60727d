//! A small tar writer (ustar, with PAX records for long names) and the
//! build context it packs: the context directory minus what `.dockerignore`
//! excludes. Also packs the single files copied into containers.
use std::fs;
use std::io;
use std::path::Path;
use std::time::UNIX_EPOCH;

const BLOCK: usize = 512;

/// An in-memory tar archive being written.
#[derive(Debug, Default)]
pub(crate) struct TarWriter {
    buf: Vec<u8>,
}

/// What one archive entry is.
enum Kind<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(&'a str),
}

/// Owner and permissions of an entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

impl TarWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn file(&mut self, path: &str, meta: Meta, data: &[u8]) {
        self.entry(path, meta, Kind::File(data));
    }

    pub(crate) fn dir(&mut self, path: &str, meta: Meta) {
        self.entry(path, meta, Kind::Dir);
    }

    pub(crate) fn symlink(&mut self, path: &str, meta: Meta, target: &str) {
        self.entry(path, meta, Kind::Symlink(target));
    }

    /// The archive with its two closing zero blocks.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.resize(self.buf.len() + 2 * BLOCK, 0);
        self.buf
    }

    fn entry(&mut self, path: &str, meta: Meta, kind: Kind<'_>) {
        let name = match kind {
            Kind::Dir if !path.ends_with('/') => format!("{path}/"),
            _ => path.to_owned(),
        };
        let link = match kind {
            Kind::Symlink(target) => target,
            _ => "",
        };
        let (prefix, short) = split_ustar_name(&name);
        let mut records = String::new();
        if short.is_none() {
            records.push_str(&pax_record("path", &name));
        }
        if link.len() > 100 {
            records.push_str(&pax_record("linkpath", link));
        }
        if !records.is_empty() {
            let header = header(
                "././@PaxHeader",
                "",
                Meta {
                    mode: 0o644,
                    ..meta
                },
                b'x',
                records.len() as u64,
                "",
            );
            self.buf.extend_from_slice(&header);
            self.data(records.as_bytes());
        }
        let (typeflag, size) = match kind {
            Kind::File(data) => (b'0', data.len() as u64),
            Kind::Dir => (b'5', 0),
            Kind::Symlink(_) => (b'2', 0),
        };
        let short_name = short.unwrap_or_else(|| truncate(&name, 100));
        let header = header(
            short_name,
            if short.is_some() { prefix } else { "" },
            meta,
            typeflag,
            size,
            truncate(link, 100),
        );
        self.buf.extend_from_slice(&header);
        if let Kind::File(data) = kind {
            self.data(data);
        }
    }

    fn data(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        let padding = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.buf.resize(self.buf.len() + padding, 0);
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Splits a name into ustar's prefix (≤ 155 bytes) and name (≤ 100 bytes)
/// at a `/`; `None` when it does not fit and needs a PAX record.
fn split_ustar_name(name: &str) -> (&str, Option<&str>) {
    if name.len() <= 100 {
        return ("", Some(name));
    }
    let bytes = name.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'/' && i <= 155 && name.len() - i - 1 <= 100 && i > 0 {
            let rest = &name[i + 1..];
            if !rest.is_empty() {
                return (&name[..i], Some(rest));
            }
        }
    }
    ("", None)
}

/// One PAX record: `<len> <key>=<value>\n`, where `<len>` counts itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    loop {
        let candidate = len.to_string().len() + body.len();
        if candidate == len {
            return format!("{len}{body}");
        }
        len = candidate;
    }
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let text = &text.as_bytes()[text.len().saturating_sub(digits)..];
    field[..digits].copy_from_slice(text);
    field[digits] = 0;
}

fn put(field: &mut [u8], value: &str) {
    let bytes = value.as_bytes();
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
}

fn header(
    name: &str,
    prefix: &str,
    meta: Meta,
    typeflag: u8,
    size: u64,
    link: &str,
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    put(&mut h[0..100], name);
    octal(&mut h[100..108], u64::from(meta.mode & 0o7777));
    octal(&mut h[108..116], meta.uid.min(0o7777777));
    octal(&mut h[116..124], meta.gid.min(0o7777777));
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], meta.mtime);
    h[148..156].copy_from_slice(b"        ");
    h[156] = typeflag;
    put(&mut h[157..257], link);
    put(&mut h[257..263], "ustar\0");
    put(&mut h[263..265], "00");
    put(&mut h[345..500], prefix);
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    h
}

/// One line of `.dockerignore`: a pattern, and whether it re-includes.
#[derive(Debug, Clone)]
struct Rule {
    segments: Vec<String>,
    include: bool,
}

/// `.dockerignore` rules: the last matching rule decides, and a path is
/// excluded when it or a parent directory matches an exclusion.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    pub(crate) fn parse(text: &str) -> Self {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                let (include, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let segments: Vec<String> = pattern
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(str::to_owned)
                    .collect();
                (!segments.is_empty()).then_some(Rule { segments, include })
            })
            .collect();
        Self { rules }
    }

    /// Whether `path` (relative, `/`-separated) is left out of the context.
    pub(crate) fn excludes(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for rule in &self.rules {
            // A rule matches the path itself or any of its parents.
            let matched = (1..=parts.len()).any(|n| match_segments(&rule.segments, &parts[..n]));
            if matched {
                excluded = !rule.include;
            }
        }
        excluded
    }
}

fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((head, tail)) => {
                glob(first.as_bytes(), head.as_bytes()) && match_segments(rest, tail)
            }
            None => false,
        },
    }
}

/// Shell-style matching of one path segment: `*`, `?`, `[...]`, `\` escapes.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((b'[', rest)) => {
            let Some((&c, tail)) = text.split_first() else {
                return false;
            };
            let Some(close) = rest.iter().skip(1).position(|b| *b == b']').map(|p| p + 1) else {
                return c == b'[' && glob(rest, tail);
            };
            let (negated, class) = match rest[..close].split_first() {
                Some((b'^' | b'!', class)) => (true, class),
                _ => (false, &rest[..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negated && glob(&rest[close + 1..], tail)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            text.first() == rest.first() && glob(&rest[1..], &text[1..])
        }
        Some((p, rest)) => text.first() == Some(p) && glob(rest, &text[1..]),
    }
}

fn meta_of(metadata: &fs::Metadata) -> Meta {
    #[cfg(unix)]
    let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
    #[cfg(not(unix))]
    let mode = if metadata.is_dir() { 0o755 } else { 0o644 };
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Meta {
        mode,
        uid: 0,
        gid: 0,
        mtime,
    }
}

/// Packs the context directory, leaving out what `.dockerignore` excludes
/// (the Dockerfile and `.dockerignore` themselves always go, as the docker
/// CLI sends them), plus `extra` files (a Dockerfile kept elsewhere).
pub(crate) fn pack_context(
    context: &Path,
    keep: &str,
    extra: &[(&str, &[u8])],
) -> Result<Vec<u8>, (std::path::PathBuf, io::Error)> {
    let ignore = match fs::read_to_string(context.join(".dockerignore")) {
        Ok(text) => Ignore::parse(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ignore::default(),
        Err(e) => return Err((context.join(".dockerignore"), e)),
    };
    let mut tar = TarWriter::new();
    walk(context, "", &ignore, keep, &mut tar)?;
    for (name, data) in extra {
        tar.file(
            name,
            Meta {
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
            },
            data,
        );
    }
    Ok(tar.finish())
}

fn walk(
    dir: &Path,
    prefix: &str,
    ignore: &Ignore,
    keep: &str,
    tar: &mut TarWriter,
) -> Result<(), (std::path::PathBuf, io::Error)> {
    let entries = fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), e))?;
    let mut names: Vec<(String, std::path::PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| (dir.to_path_buf(), e))?;
        names.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    names.sort();
    for (name, path) in names {
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let always = relative == keep || relative == ".dockerignore";
        let metadata = fs::symlink_metadata(&path).map_err(|e| (path.clone(), e))?;
        let excluded = !always && ignore.excludes(&relative);
        if metadata.is_dir() {
            // An excluded directory may still hold re-included files.
            if !excluded {
                tar.dir(&relative, meta_of(&metadata));
            }
            if !excluded || ignore.rules.iter().any(|r| r.include) {
                walk(&path, &relative, ignore, keep, tar)?;
            }
            continue;
        }
        if excluded {
            continue;
        }
        if metadata.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(|e| (path.clone(), e))?;
            tar.symlink(&relative, meta_of(&metadata), &target.to_string_lossy());
        } else if metadata.is_file() {
            let data = fs::read(&path).map_err(|e| (path.clone(), e))?;
            tar.file(&relative, meta_of(&metadata), &data);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    /// Reads back (name, typeflag, content) triples, honouring PAX paths.
    fn entries(archive: &[u8]) -> Vec<(String, u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut pax_path: Option<String> = None;
        while i + BLOCK <= archive.len() {
            let h = &archive[i..i + BLOCK];
            if h.iter().all(|b| *b == 0) {
                break;
            }
            let field = |r: std::ops::Range<usize>| {
                String::from_utf8(h[r].iter().take_while(|b| **b != 0).copied().collect()).unwrap()
            };
            let size = u64::from_str_radix(field(124..135).trim(), 8).unwrap() as usize;
            let stored: u64 = u64::from_str_radix(field(148..155).trim(), 8).unwrap();
            let mut check = h.to_vec();
            check[148..156].copy_from_slice(b"        ");
            assert_eq!(stored, check.iter().map(|b| u64::from(*b)).sum::<u64>());
            let data = archive[i + BLOCK..i + BLOCK + size].to_vec();
            i += BLOCK + size.div_ceil(BLOCK) * BLOCK;
            if h[156] == b'x' {
                let text = String::from_utf8(data).unwrap();
                let path = text.split_once("path=").unwrap().1.trim_end().to_owned();
                pax_path = Some(path);
                continue;
            }
            let prefix = field(345..500);
            let name = pax_path.take().unwrap_or_else(|| {
                if prefix.is_empty() {
                    field(0..100)
                } else {
                    format!("{prefix}/{}", field(0..100))
                }
            });
            out.push((name, h[156], data));
        }
        out
    }

    #[test]
    fn files_directories_and_long_names_round_trip() {
        let mut tar = TarWriter::new();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let very_long = "x".repeat(300);
        tar.dir("src", meta());
        tar.file("src/main.rs", meta(), b"fn main() {}");
        tar.file(&long, meta(), b"a");
        tar.file(&very_long, meta(), b"b");
        tar.symlink("link", meta(), "src/main.rs");
        let archive = tar.finish();
        assert_eq!(archive.len() % BLOCK, 0);
        let names: Vec<(String, u8)> = entries(&archive)
            .into_iter()
            .map(|(n, t, _)| (n, t))
            .collect();
        assert_eq!(
            names,
            vec![
                ("src/".to_owned(), b'5'),
                ("src/main.rs".to_owned(), b'0'),
                (long, b'0'),
                (very_long, b'0'),
                ("link".to_owned(), b'2'),
            ]
        );
        assert_eq!(entries(&archive)[1].2, b"fn main() {}");
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let record = pax_record("path", "abc");
        let (len, _) = record.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), record.len());
        let record = pax_record("path", &"y".repeat(95));
        let (len, _) = record.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), record.len());
    }

    #[test]
    fn dockerignore_excludes_with_globs_and_reincludes_with_a_bang() {
        let ignore =
            Ignore::parse("# comment\nnode_modules\n*.log\n**/secret*\n!keep.log\n/build/\n");
        assert!(ignore.excludes("node_modules/a/b.js"));
        assert!(ignore.excludes("debug.log"));
        assert!(!ignore.excludes("keep.log"));
        assert!(ignore.excludes("deep/er/secret.txt"));
        assert!(ignore.excludes("build/out.bin"));
        assert!(!ignore.excludes("src/main.rs"));
        assert!(!ignore.excludes("sub/debug.log"));
    }

    #[test]
    fn character_classes_and_question_marks_match_one_character() {
        assert!(glob(b"file[0-9].txt", b"file7.txt"));
        assert!(!glob(b"file[!0-9].txt", b"file7.txt"));
        assert!(glob(b"?.md", b"a.md"));
        assert!(!glob(b"?.md", b"ab.md"));
    }

    #[test]
    fn a_context_is_packed_without_what_dockerignore_excludes() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(dir.path().join(".dockerignore"), "*.tmp\nDockerfile\n").unwrap();
        fs::write(dir.path().join("a.tmp"), "x").unwrap();
        fs::create_dir(dir.path().join("app")).unwrap();
        fs::write(dir.path().join("app/run.sh"), "echo hi").unwrap();
        let archive = pack_context(dir.path(), "Dockerfile", &[(".extra", b"e")]).unwrap();
        let names: Vec<String> = entries(&archive).into_iter().map(|(n, _, _)| n).collect();
        assert_eq!(
            names,
            vec![
                ".dockerignore",
                "Dockerfile",
                "app/",
                "app/run.sh",
                ".extra"
            ]
        );
    }
}
