//! Service `volumes`: short specs (`./data:/data:ro,z`) parsed to the long
//! syntax, long-syntax fields typed, and Go's `path.Clean` for targets.
use crate::load::yaml::{Mapping, Node, Value};

use super::convert::{self, bool_node, scalar, str_node, Sc};
use super::tree;
use super::{Cx, Kind, TransformError};

/// A short volume spec in compose's long syntax.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    /// `bind` (the source is a path) or `volume`.
    pub kind: String,
    /// The host path or volume name; empty for an anonymous volume.
    pub source: String,
    /// The container path, cleaned as Go's `path.Clean` does.
    pub target: String,
    /// `ro` was given.
    pub read_only: bool,
    /// Bind options; always present for binds (`create_host_path: true`).
    pub bind: Option<BindOptions>,
    /// Volume options; present for named and anonymous volumes and with `nocopy`.
    pub volume: Option<VolumeOptions>,
}

/// Options of a bind mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindOptions {
    /// `z` or `Z`.
    pub selinux: String,
    /// `rprivate`, `private`, `rshared`, `shared`, `rslave` or `slave`.
    pub propagation: String,
    /// Create the host path when missing (true for every short-syntax bind).
    pub create_host_path: bool,
}

/// Options of a volume mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeOptions {
    /// `nocopy` was given.
    pub nocopy: bool,
}

impl VolumeSpec {
    /// The long-syntax mapping compose writes for this spec.
    pub fn to_node(&self, like: &Node) -> Node {
        let mut map = Mapping::new();
        tree::set(&mut map, "type", str_node(self.kind.clone(), like));
        if !self.source.is_empty() {
            tree::set(&mut map, "source", str_node(self.source.clone(), like));
        }
        if !self.target.is_empty() {
            tree::set(&mut map, "target", str_node(self.target.clone(), like));
        }
        if self.read_only {
            tree::set(&mut map, "read_only", bool_node(true, like));
        }
        if let Some(bind) = &self.bind {
            let mut b = Mapping::new();
            if !bind.selinux.is_empty() {
                tree::set(&mut b, "selinux", str_node(bind.selinux.clone(), like));
            }
            if !bind.propagation.is_empty() {
                tree::set(
                    &mut b,
                    "propagation",
                    str_node(bind.propagation.clone(), like),
                );
            }
            if bind.create_host_path {
                tree::set(&mut b, "create_host_path", bool_node(true, like));
            }
            tree::set(&mut map, "bind", mapping(b, like));
        }
        if let Some(volume) = &self.volume {
            let mut v = Mapping::new();
            if volume.nocopy {
                tree::set(&mut v, "nocopy", bool_node(true, like));
            }
            tree::set(&mut map, "volume", mapping(v, like));
        }
        mapping(map, like)
    }
}

fn mapping(map: Mapping, like: &Node) -> Node {
    Node {
        value: Value::Map(map),
        span: like.span.clone(),
        tag: None,
    }
}

/// Parses `[SOURCE:]TARGET[:OPTIONS]` as compose does.
///
/// A source starting with `.`, `/` or `~` (or a Windows drive or `\\`) is a
/// bind; anything else names a volume. `${...}` keeps its colons. Options
/// are `ro`, `rw`, `nocopy`, `z`, `Z` and the propagation modes; others are
/// ignored, as compose ignores them. Surprises kept from compose: a
/// one-letter segment followed by `:` is read as a Windows drive (`a:/b:ro`
/// has source `a:/b` and target `ro`), and a spec of one or two bytes is a
/// target without `volume: {}`.
pub fn parse_volume_spec(spec: &str) -> Result<VolumeSpec, String> {
    let mut volume = VolumeSpec::default();
    match spec.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => {
            volume.target = clean_path(spec);
            volume.kind = "volume".into();
            return Ok(volume);
        }
        _ => {}
    }
    let sections = split_volume_spec(spec);
    let last = sections.len().saturating_sub(1);
    for (i, section) in sections.iter().enumerate() {
        if let Err(e) = populate(i == last, section, &mut volume) {
            return Err(format!("invalid spec: {spec}: {e}"));
        }
    }
    populate_type(&mut volume);
    volume.target = if volume.target.is_empty() {
        String::new()
    } else {
        clean_path(&volume.target)
    };
    Ok(volume)
}

/// Splits a short volume spec at its colons as compose does: a `${...}` may
/// hold colons, and a one-letter first section is a Windows drive (`C:`).
pub(crate) fn split_volume_spec(spec: &str) -> Vec<String> {
    let bytes = spec.as_bytes();
    let mut sections = Vec::new();
    let mut buffer = String::new();
    let mut depth = 0usize;
    for (index, c) in spec.char_indices() {
        if c == '$' && bytes.get(index + 1) == Some(&b'{') {
            depth += 1;
            buffer.push('$');
            continue;
        }
        if c == '}' && depth > 0 {
            depth -= 1;
            buffer.push('}');
            continue;
        }
        let drive = c == ':'
            && buffer.chars().count() == 1
            && buffer.chars().next().is_some_and(char::is_alphabetic);
        if c == ':' && depth == 0 && !drive {
            sections.push(std::mem::take(&mut buffer));
        } else {
            buffer.push(c);
        }
    }
    sections.push(buffer);
    sections
}

fn populate(at_end: bool, buffer: &str, volume: &mut VolumeSpec) -> Result<(), &'static str> {
    if buffer.is_empty() {
        return Err("empty section between colons");
    }
    if volume.source.is_empty() && at_end {
        volume.target = buffer.to_string();
        return Ok(());
    }
    if volume.source.is_empty() {
        volume.source = buffer.to_string();
        return Ok(());
    }
    if volume.target.is_empty() {
        volume.target = buffer.to_string();
        return Ok(());
    }
    if !at_end {
        return Err("too many colons");
    }
    for option in buffer.split(',') {
        match option {
            "ro" => volume.read_only = true,
            "rw" => volume.read_only = false,
            "nocopy" => volume.volume = Some(VolumeOptions { nocopy: true }),
            "z" | "Z" => volume.bind.get_or_insert_with(Default::default).selinux = option.into(),
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                volume.bind.get_or_insert_with(Default::default).propagation = option.into()
            }
            _ => {}
        }
    }
    Ok(())
}

fn populate_type(volume: &mut VolumeSpec) {
    if is_file_path(&volume.source) {
        volume.kind = "bind".into();
        volume
            .bind
            .get_or_insert_with(Default::default)
            .create_host_path = true;
    } else {
        volume.kind = "volume".into();
        volume.volume.get_or_insert_with(Default::default);
    }
}

fn is_file_path(source: &str) -> bool {
    let mut chars = source.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if matches!(first, '.' | '/' | '~') || source.starts_with("\\\\") {
        return true;
    }
    first.is_alphabetic() && chars.next() == Some(':')
}

pub(crate) use crate::load::paths::clean_slash_path as clean_path;

/// Converts a service's `volumes` list in place.
pub(crate) fn volumes(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    let Value::Seq(items) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a list of volumes"));
    };
    for (i, entry) in items.iter_mut().enumerate() {
        let ipath = tree::item(path, i);
        if entry.as_map().is_some() {
            long_volume(entry, &ipath, cx)?;
            continue;
        }
        let Some(Sc::Str(text)) = scalar(entry) else {
            return Err(TransformError::wrong_type(
                entry,
                &ipath,
                "a string or a mapping",
            ));
        };
        let spec = parse_volume_spec(text).map_err(|message| {
            TransformError::at(Kind::InvalidVolume, &entry.span, &ipath, message)
        })?;
        *entry = spec.to_node(entry);
    }
    Ok(())
}

/// Types the fields of a long-syntax volume.
fn long_volume(node: &mut Node, path: &str, cx: &mut Cx) -> Result<(), TransformError> {
    let Some(map) = node.as_map_mut() else {
        return Ok(());
    };
    for key in tree::keys(map) {
        let kpath = tree::child(path, &key);
        let Some((_, value)) = map.get_mut(&key) else {
            continue;
        };
        match key.as_str() {
            "read_only" => convert::boolean(value, &kpath, cx)?,
            "bind" => sub_fields(value, &kpath, cx, |k, v, p, cx| match k {
                "create_host_path" => convert::boolean(v, p, cx),
                _ => Ok(()),
            })?,
            "volume" => sub_fields(value, &kpath, cx, |k, v, p, cx| match k {
                "nocopy" => convert::boolean(v, p, cx),
                "labels" => convert::key_values(v, p, convert::Unset::Empty),
                _ => Ok(()),
            })?,
            "tmpfs" => sub_fields(value, &kpath, cx, |k, v, p, _| match k {
                // compose's schema takes an integer here: a whole-number float
                // passes (and is dropped like any float size), a fraction does not.
                "size" => match v.as_scalar().map(crate::load::yaml::Scalar::resolve) {
                    Some(crate::load::yaml::Resolved::Float(f)) if f.fract() != 0.0 => {
                        Err(TransformError::at(
                            Kind::InvalidSize,
                            &v.span,
                            p,
                            format!("tmpfs size must be an integer or a size like 64m, not {f}"),
                        ))
                    }
                    _ => convert::bytes(v, p),
                },
                "mode" => match scalar(v) {
                    Some(Sc::Int(_)) | Some(Sc::Float(_)) | Some(Sc::Null) => {
                        convert::integer(v, p)
                    }
                    _ => Err(TransformError::wrong_type(v, p, "a number")),
                },
                _ => Ok(()),
            })?,
            _ => {}
        }
    }
    Ok(())
}

/// Applies `f` to every entry of a mapping node (null is left alone).
pub(crate) fn sub_fields(
    node: &mut Node,
    path: &str,
    cx: &mut Cx,
    f: impl Fn(&str, &mut Node, &str, &mut Cx) -> Result<(), TransformError>,
) -> Result<(), TransformError> {
    if node.is_null() {
        return Ok(());
    }
    let Some(map) = node.as_map_mut() else {
        return Err(TransformError::wrong_type(node, path, "a mapping"));
    };
    for (key, (_, value)) in map.iter_mut() {
        if key.starts_with("x-") {
            continue;
        }
        f(key, value, &tree::child(path, key), cx)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(source: &str, target: &str) -> VolumeSpec {
        VolumeSpec {
            kind: "bind".into(),
            source: source.into(),
            target: target.into(),
            bind: Some(BindOptions {
                create_host_path: true,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn named(source: &str, target: &str) -> VolumeSpec {
        VolumeSpec {
            kind: "volume".into(),
            source: source.into(),
            target: target.into(),
            volume: Some(VolumeOptions::default()),
            ..Default::default()
        }
    }

    #[test]
    fn a_path_source_is_a_bind_that_creates_the_host_path() {
        assert_eq!(
            parse_volume_spec("./static:/var/www/html"),
            Ok(bind("./static", "/var/www/html"))
        );
        assert_eq!(
            parse_volume_spec("~/configs:/etc/configs"),
            Ok(bind("~/configs", "/etc/configs"))
        );
        assert_eq!(
            parse_volume_spec("/opt/data:/var/lib/data"),
            Ok(bind("/opt/data", "/var/lib/data"))
        );
    }

    #[test]
    fn a_name_source_is_a_named_volume_and_a_lone_path_is_anonymous() {
        assert_eq!(parse_volume_spec("data:/data"), Ok(named("data", "/data")));
        assert_eq!(
            parse_volume_spec("/var/lib/anonymous"),
            Ok(named("", "/var/lib/anonymous"))
        );
    }

    #[test]
    fn one_or_two_byte_specs_are_targets_without_volume_options() {
        let want = VolumeSpec {
            kind: "volume".into(),
            target: "/a".into(),
            ..Default::default()
        };
        assert_eq!(parse_volume_spec("/a"), Ok(want));
    }

    #[test]
    fn options_set_read_only_selinux_propagation_and_nocopy() {
        let mut want = bind("./x", "/y");
        want.read_only = true;
        want.bind = Some(BindOptions {
            selinux: "Z".into(),
            propagation: "rshared".into(),
            create_host_path: true,
        });
        want.volume = Some(VolumeOptions { nocopy: true });
        assert_eq!(parse_volume_spec("./x:/y:ro,nocopy,rshared,Z"), Ok(want));
    }

    #[test]
    fn unknown_options_are_ignored() {
        assert_eq!(parse_volume_spec("./x:/x:rwx-bad"), Ok(bind("./x", "/x")));
    }

    #[test]
    fn a_one_letter_segment_is_read_as_a_windows_drive() {
        assert_eq!(
            parse_volume_spec("a:/b:ro,z").map(|v| (v.source, v.target)),
            Ok(("a:/b".into(), "ro,z".into()))
        );
        assert_eq!(parse_volume_spec(r"c:\x:/win"), Ok(bind(r"c:\x", "/win")));
    }

    #[test]
    fn interpolation_syntax_keeps_its_colons() {
        assert_eq!(
            parse_volume_spec("${X:-a:b}:/q").map(|v| v.source),
            Ok("${X:-a:b}".into())
        );
    }

    #[test]
    fn targets_are_cleaned() {
        assert_eq!(
            parse_volume_spec("vol:/v//x/../y/").map(|v| v.target),
            Ok("/v/y".into())
        );
        assert_eq!(
            parse_volume_spec("./x:relative/in/container").map(|v| v.target),
            Ok("relative/in/container".into())
        );
    }

    #[test]
    fn malformed_specs_give_compose_messages() {
        assert_eq!(
            parse_volume_spec(""),
            Err("invalid empty volume spec".into())
        );
        assert_eq!(
            parse_volume_spec("ab::cd"),
            Err("invalid spec: ab::cd: empty section between colons".into())
        );
        assert_eq!(
            parse_volume_spec("ab:/c:/d:ro"),
            Err("invalid spec: ab:/c:/d:ro: too many colons".into())
        );
    }

    #[test]
    fn clean_path_matches_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("a//b/./c/", "a/b/c"),
            ("/a/b/..", "/a"),
        ] {
            assert_eq!(clean_path(input), want, "{input}");
        }
    }
}
