//! Kubernetes names, label keys and values: compose names made valid
//! (DNS-1123 labels, DNS-1035 for Services, label syntax), shortened with a
//! hash when too long, and a registry that refuses two objects of one kind
//! with one name.
use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::TranslateError;

/// Longest DNS-1123 label.
pub const MAX_LABEL: usize = 63;
/// Longest StatefulSet name: its pods carry a `controller-revision-hash`
/// label of the name plus an 11-character suffix, which must stay a valid
/// label value.
pub const MAX_STATEFULSET: usize = 52;

/// The first `len` hex digits of the SHA-256 of `text`.
pub fn short_hash(text: &str, len: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..len.min(hex.len())].to_string()
}

/// `text` as a DNS-1123 label of at most `max` characters: lower case,
/// every run of other characters turned into one `-`, no `-` at either
/// end. A name cut to fit ends with a hash of the whole text, so two long
/// names that differ only at the end stay distinct. Never empty.
pub fn dns_label(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    let mut name = if trimmed.is_empty() {
        format!("x-{}", short_hash(text, 8))
    } else {
        trimmed.to_string()
    };
    if name.len() > max {
        let hash = short_hash(text, 8);
        let keep = max.saturating_sub(hash.len() + 1);
        let head = name[..keep].trim_end_matches('-').to_string();
        name = format!("{head}-{hash}");
    }
    name
}

/// `text` as a DNS-1035 label (a DNS-1123 label that starts with a
/// letter), the rule for Service names.
pub fn dns1035_label(text: &str, max: usize) -> String {
    let label = dns_label(text, max);
    if label.starts_with(|c: char| c.is_ascii_lowercase()) {
        label
    } else {
        dns_label(&format!("s-{label}"), max)
    }
}

/// Whether `text` is a DNS-1123 label.
pub fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_LABEL
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// Whether `text` is a DNS-1123 subdomain (dot-separated labels, at most
/// 253 characters).
pub fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_dns_label)
}

/// Whether `text` is a valid label value (also the rule for the name part
/// of a label or annotation key, which must not be empty).
pub fn is_label_value(text: &str) -> bool {
    text.len() <= MAX_LABEL
        && (text.is_empty()
            || (text.starts_with(|c: char| c.is_ascii_alphanumeric())
                && text.ends_with(|c: char| c.is_ascii_alphanumeric())
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))))
}

/// Whether `text` is a valid label or annotation key: an optional DNS
/// subdomain prefix and `/`, then a name of 1 to 63 characters.
pub fn is_qualified_name(text: &str) -> bool {
    let (prefix, name) = match text.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, text),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) {
        return false;
    }
    !name.is_empty() && is_label_value(name)
}

/// `text` as a valid label value: characters outside the label alphabet
/// become `-`, the ends are trimmed to alphanumerics, and a value cut to
/// 63 characters ends with a hash.
pub fn label_value(text: &str) -> String {
    if is_label_value(text) {
        return text.to_string();
    }
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.len() <= MAX_LABEL {
        return trimmed.to_string();
    }
    let hash = short_hash(text, 8);
    let head = trimmed[..MAX_LABEL - hash.len() - 1]
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    format!("{head}-{hash}")
}

/// Whether `text` is a valid port name (an IANA service name): 1 to 15
/// lower-case letters, digits and single inner hyphens, with at least one
/// letter.
pub fn is_port_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 15
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && text.chars().any(|c| c.is_ascii_lowercase())
        && !text.starts_with('-')
        && !text.ends_with('-')
        && !text.contains("--")
}

/// Whether `text` is a valid ConfigMap or Secret key.
pub fn is_data_key(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text != "."
        && text != ".."
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Every object name given out, by kind, with what it was made for: a
/// second claim of one name for one kind is a collision.
#[derive(Debug, Default)]
pub struct Registry {
    taken: BTreeMap<(&'static str, String), String>,
}

impl Registry {
    /// What `name` was claimed for, for an object of `kind`.
    pub fn owner(&self, kind: &'static str, name: &str) -> Option<&str> {
        self.taken
            .get(&(kind, name.to_string()))
            .map(String::as_str)
    }

    /// Claims `name` for an object of `kind` made for `owner` (a phrase
    /// such as `service web`); the same owner may claim it again.
    pub fn claim(
        &mut self,
        kind: &'static str,
        name: &str,
        owner: &str,
    ) -> Result<(), TranslateError> {
        match self.taken.get(&(kind, name.to_string())) {
            Some(first) if first != owner => Err(TranslateError::NameCollision {
                kind,
                name: name.to_string(),
                first: first.clone(),
                second: owner.to_string(),
            }),
            Some(_) => Ok(()),
            None => {
                self.taken
                    .insert((kind, name.to_string()), owner.to_string());
                Ok(())
            }
        }
    }
}

/// Names unique within one pod (volumes, containers): a name already used
/// gets `-2`, `-3`... appended.
#[derive(Debug, Default)]
pub struct PodNames {
    used: Vec<String>,
}

impl PodNames {
    /// A DNS-1123 label from `wanted`, distinct from every name given before.
    pub fn unique(&mut self, wanted: &str) -> String {
        let base = dns_label(wanted, MAX_LABEL - 4);
        let mut name = base.clone();
        let mut n = 2;
        while self.used.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.used.push(name.clone());
        name
    }

    /// Marks `name` as used as it is (a claim template's name).
    pub fn reserve(&mut self, name: &str) {
        if !self.used.iter().any(|n| n == name) {
            self.used.push(name.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_lower_case_and_collapse_other_characters() {
        assert_eq!(dns_label("My_Project..web", MAX_LABEL), "my-project-web");
        assert_eq!(dns_label("--web--", MAX_LABEL), "web");
        assert!(dns_label("___", MAX_LABEL).starts_with("x-"));
        assert!(is_dns_label(&dns_label("日本", MAX_LABEL)));
    }

    #[test]
    fn long_names_are_cut_with_a_hash_so_they_stay_distinct() {
        let a = dns_label(&format!("{}a", "x".repeat(80)), MAX_LABEL);
        let b = dns_label(&format!("{}b", "x".repeat(80)), MAX_LABEL);
        assert_eq!(a.len(), MAX_LABEL);
        assert_ne!(a, b);
        assert!(is_dns_label(&a) && is_dns_label(&b));
        assert!(dns_label(&"y".repeat(80), MAX_STATEFULSET).len() <= MAX_STATEFULSET);
    }

    #[test]
    fn service_names_start_with_a_letter() {
        assert_eq!(dns1035_label("web", MAX_LABEL), "web");
        assert_eq!(dns1035_label("1web", MAX_LABEL), "s-1web");
    }

    #[test]
    fn label_values_keep_their_alphabet_and_fit_63_characters() {
        assert_eq!(label_value("shop_1.0"), "shop_1.0");
        assert_eq!(label_value("a b/c"), "a-b-c");
        assert_eq!(label_value("-x-"), "x");
        let long = label_value(&"v".repeat(100));
        assert!(long.len() <= MAX_LABEL && is_label_value(&long));
    }

    #[test]
    fn qualified_names_may_have_a_dns_prefix() {
        assert!(is_qualified_name("app.kubernetes.io/name"));
        assert!(is_qualified_name("com.example.description"));
        assert!(!is_qualified_name("Bad_Prefix/x"));
        assert!(!is_qualified_name("a/"));
        assert!(!is_qualified_name("with space"));
    }

    #[test]
    fn port_names_are_short_lower_case_and_hold_a_letter() {
        assert!(is_port_name("http") && is_port_name("tcp-8080"));
        assert!(!is_port_name("8080"));
        assert!(!is_port_name("a--b"));
        assert!(!is_port_name("sixteen-chars-xx"));
        assert!(!is_port_name("Http"));
    }

    #[test]
    fn a_name_claimed_twice_for_one_kind_is_a_collision() {
        let mut registry = Registry::default();
        registry.claim("Service", "web", "service web").unwrap();
        registry.claim("Deployment", "web", "service web").unwrap();
        registry.claim("Service", "web", "service web").unwrap();
        assert!(registry.claim("Service", "web", "service web_").is_err());
    }

    #[test]
    fn pod_names_get_a_number_when_taken() {
        let mut names = PodNames::default();
        names.reserve("data");
        assert_eq!(names.unique("data"), "data-2");
        assert_eq!(names.unique("data"), "data-3");
        assert_eq!(names.unique("tmpfs"), "tmpfs");
    }
}
