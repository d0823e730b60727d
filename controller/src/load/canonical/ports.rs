//! `ports`: short specs (`"127.0.0.1:8000-8001:80-81/udp"`, `3000`) expanded
//! to one long-syntax entry per container port, plus the long-syntax defaults.
use std::net::IpAddr;

use crate::load::yaml::{Mapping, Node, Value};

use super::convert::{self, scalar, str_node, Sc};
use super::tree::{self, timestamp_error};
use super::{Kind, TransformError};

/// One container port of a short port spec, in compose's long syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The host address to bind, empty for all.
    pub host_ip: String,
    /// The container port (0 when the spec gave `0`).
    pub target: u32,
    /// The host port or host port range (`"8000-8010"`), empty to let the engine pick.
    pub published: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

impl PortSpec {
    /// The long-syntax mapping compose writes for this port (`mode: ingress`).
    pub fn to_node(&self, like: &Node) -> Node {
        let mut map = Mapping::new();
        tree::set(&mut map, "mode", str_node("ingress", like));
        if !self.host_ip.is_empty() {
            tree::set(&mut map, "host_ip", str_node(self.host_ip.clone(), like));
        }
        if self.target != 0 {
            tree::set(
                &mut map,
                "target",
                convert::int_node(i64::from(self.target), like),
            );
        }
        if !self.published.is_empty() {
            tree::set(
                &mut map,
                "published",
                str_node(self.published.clone(), like),
            );
        }
        tree::set(&mut map, "protocol", str_node(self.protocol.clone(), like));
        Node {
            value: Value::Map(map),
            span: like.span.clone(),
            tag: None,
        }
    }
}

/// Parses `[[HOST_IP:]HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTOCOL]` as
/// compose does, one [`PortSpec`] per container port.
///
/// Ranges expand to one entry each, ordered as compose orders them: by the
/// text `"PORT/PROTOCOL"`, so `9998-10001` gives 10000, 10001, 9998, 9999.
/// A host range with a single container port stays a range (`"9000-9001"`).
pub fn parse_port_spec(spec: &str) -> Result<Vec<PortSpec>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (String::new(), "", *c),
        [h, c] => (String::new(), *h, *c),
        [ip, h, c] => (ip.to_string(), *h, *c),
        _ => {
            let n = parts.len();
            (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1])
        }
    };
    let (container, protocol) = match container.split_once('/') {
        Some((port, proto)) => (port, proto),
        None => (container, ""),
    };
    let protocol = if container.is_empty() {
        String::new()
    } else if protocol.is_empty() {
        "tcp".to_string()
    } else {
        protocol.to_lowercase()
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {protocol}"));
    }
    let mut ip = ip;
    if let Some(rest) = ip.strip_prefix('[') {
        match rest.strip_suffix(']') {
            Some(inner) if !inner.contains(['[', ']']) => ip = inner.to_string(),
            _ => return Err(format!("invalid IP address {ip}: missing ']' in address")),
        }
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    let (start, end) =
        parse_range(container).ok_or_else(|| format!("invalid containerPort: {container}"))?;
    let (host_start, host_end) = if host.is_empty() {
        (0, 0)
    } else {
        let (s, e) = parse_range(host).ok_or_else(|| format!("invalid hostPort: {host}"))?;
        if e - s != end - start && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
        (s, e)
    };
    let count = end - start + 1;
    let mut ports: Vec<(String, PortSpec)> = (0..count)
        .map(|i| {
            let target = start + i;
            let published = if host.is_empty() {
                String::new()
            } else if count == 1 && host_start != host_end {
                format!("{}-{host_end}", host_start + i)
            } else {
                (host_start + i).to_string()
            };
            let spec = PortSpec {
                host_ip: ip.clone(),
                target,
                published,
                protocol: protocol.clone(),
            };
            (format!("{target}/{protocol}"), spec)
        })
        .collect();
    ports.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(ports.into_iter().map(|(_, spec)| spec).collect())
}

/// `PORT` or `START-END` (extra `-` parts are ignored, as compose ignores them).
fn parse_range(text: &str) -> Option<(u32, u32)> {
    let port = |t: &str| {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse::<u16>().ok().map(u32::from)
    };
    if !text.contains('-') {
        let p = port(text)?;
        return Some((p, p));
    }
    let mut parts = text.split('-');
    let start = port(parts.next()?)?;
    let end = port(parts.next()?)?;
    (end >= start).then_some((start, end))
}

/// Expands a service's `ports` list in place.
pub(crate) fn ports(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let Value::Seq(items) = &mut node.value else {
        return Err(TransformError::wrong_type(node, path, "a list of ports"));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, mut entry) in std::mem::take(items).into_iter().enumerate() {
        let ipath = tree::item(path, i);
        let text = match scalar(&entry) {
            None if entry.as_map().is_some() => {
                long_port(&mut entry, &ipath)?;
                out.push(entry);
                continue;
            }
            Some(Sc::Str(text)) => text.to_string(),
            Some(Sc::Int(n)) => n.to_string(),
            Some(Sc::UInt(n)) => n.to_string(),
            Some(Sc::Timestamp) => return Err(timestamp_error(&entry, &ipath)),
            _ => {
                return Err(TransformError::wrong_type(
                    &entry,
                    &ipath,
                    "a port number, a port spec string or a mapping",
                ))
            }
        };
        let specs = parse_port_spec(&text).map_err(|message| {
            TransformError::at(
                Kind::InvalidPort,
                &entry.span,
                &ipath,
                format!("invalid port {text:?}: {message}"),
            )
        })?;
        out.extend(specs.iter().map(|spec| spec.to_node(&entry)));
    }
    if let Value::Seq(items) = &mut node.value {
        *items = out;
    }
    Ok(())
}

/// A long-syntax port: `target` as an integer, `published` as a string,
/// `protocol: tcp` and `mode: ingress` when absent.
fn long_port(node: &mut Node, path: &str) -> Result<(), TransformError> {
    let Some(map) = node.as_map_mut() else {
        return Ok(());
    };
    if let Some((_, target)) = map.get_mut("target") {
        let tpath = tree::child(path, "target");
        match scalar(target) {
            Some(Sc::Float(f)) if f >= 0.0 => {
                // Compose's decoder converts through uint64 then truncates to
                // 32 bits, so an overflowing target silently becomes 0.
                let wide = if f < 18_446_744_073_709_551_616.0 {
                    f as u64
                } else {
                    0
                };
                *target = convert::int_node(i64::from(wide as u32), target);
            }
            _ => {
                convert::integer(target, &tpath)?;
                if let Some(Sc::Int(v)) = scalar(target) {
                    if !(0..=i64::from(u32::MAX)).contains(&v) {
                        return Err(TransformError::at(
                            Kind::InvalidPort,
                            &target.span,
                            &tpath,
                            format!("port target {v} is out of range"),
                        ));
                    }
                }
            }
        }
    }
    if let Some((_, published)) = map.get_mut("published") {
        let ppath = tree::child(path, "published");
        match scalar(published) {
            Some(Sc::Int(_)) | Some(Sc::UInt(_)) | Some(Sc::Str(_)) | Some(Sc::Null) => {
                convert::string_or_number(published, &ppath)?
            }
            _ => {
                return Err(TransformError::wrong_type(
                    published,
                    &ppath,
                    "an integer or a string",
                ))
            }
        }
    }
    let span_node = node.clone();
    if let Some(map) = node.as_map_mut() {
        tree::set_default(map, "protocol", str_node("tcp", &span_node));
        tree::set_default(map, "mode", str_node("ingress", &span_node));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host_ip: &str, target: u32, published: &str, protocol: &str) -> PortSpec {
        PortSpec {
            host_ip: host_ip.into(),
            target,
            published: published.into(),
            protocol: protocol.into(),
        }
    }

    #[test]
    fn a_bare_container_port_has_no_published_port() {
        assert_eq!(parse_port_spec("3000"), Ok(vec![spec("", 3000, "", "tcp")]));
    }

    #[test]
    fn host_ip_host_port_and_protocol_are_read() {
        assert_eq!(
            parse_port_spec("127.0.0.1:8001:8002/UDP"),
            Ok(vec![spec("127.0.0.1", 8002, "8001", "udp")])
        );
        assert_eq!(
            parse_port_spec("127.0.0.1::5000"),
            Ok(vec![spec("127.0.0.1", 5000, "", "tcp")])
        );
    }

    #[test]
    fn ipv6_host_addresses_may_be_bracketed_or_bare() {
        assert_eq!(
            parse_port_spec("[::1]:82:82"),
            Ok(vec![spec("::1", 82, "82", "tcp")])
        );
        assert_eq!(
            parse_port_spec("::1:83:83"),
            Ok(vec![spec("::1", 83, "83", "tcp")])
        );
    }

    #[test]
    fn ranges_expand_one_entry_per_port_in_text_order() {
        let targets: Vec<u32> = parse_port_spec("9998-10001")
            .expect("parses")
            .iter()
            .map(|p| p.target)
            .collect();
        assert_eq!(targets, [10000, 10001, 9998, 9999]);
        assert_eq!(
            parse_port_spec("9090-9091:8080-8081"),
            Ok(vec![
                spec("", 8080, "9090", "tcp"),
                spec("", 8081, "9091", "tcp")
            ])
        );
    }

    #[test]
    fn a_host_range_for_one_container_port_stays_a_range() {
        assert_eq!(
            parse_port_spec("9000-9001:90"),
            Ok(vec![spec("", 90, "9000-9001", "tcp")])
        );
    }

    #[test]
    fn bad_specs_give_compose_messages() {
        let cases = [
            ("999.1.1.1:80:80", "invalid IP address: 999.1.1.1"),
            ("80:80/xyz", "invalid proto: xyz"),
            ("8080:65536", "invalid containerPort: 65536"),
            ("", "invalid proto: "),
            ("9000-8000:9000-8000", "invalid containerPort: 9000-8000"),
            ("-1:80", "invalid hostPort: -1"),
            ("http:80", "invalid hostPort: http"),
            ("70000:80", "invalid hostPort: 70000"),
            (
                "8000-8005:9000-9001",
                "invalid ranges specified for container and host Ports: 9000-9001 and 8000-8005",
            ),
            ("1:2:3:4:5", "invalid IP address: 1:2:3"),
        ];
        for (input, want) in cases {
            assert_eq!(parse_port_spec(input), Err(want.to_string()), "{input}");
        }
    }
}
