//! Serde helpers for the places compose lets a value be a string, a number
//! or a boolean but keeps it as text, and the `extra_hosts` list.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::units::format_go_float;

/// A scalar read as compose's Go code prints it with `fmt.Sprint`:
/// strings verbatim, numbers in Go's `%v` form, booleans as `true`/`false`,
/// null as `None`.
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, boolean or null")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(format_go_float(v)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(TextVisitor)
    }
}

/// Whether a value is its type's zero, which compose leaves out of its
/// output (Go's `omitempty`).
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// A string field that also takes a number or boolean (`published: 8080`,
/// `uid: 1000`); null reads as empty.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    Text::deserialize(deserializer).map(|text| text.0.unwrap_or_default())
}

/// A map of text values (labels, sysctls, driver options); a number or
/// boolean value becomes its text and null becomes empty.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Text>::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .map(|(key, text)| (key, text.0.unwrap_or_default()))
        .collect())
}

/// A map whose null values are kept as "no value" (`environment`, build
/// `args`): `KEY: null` means "take KEY from the environment if set".
pub(crate) fn env_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    let raw = BTreeMap::<String, Text>::deserialize(deserializer)?;
    Ok(raw.into_iter().map(|(key, text)| (key, text.0)).collect())
}

/// A list of text items that may be given as numbers (`expose: [80]`).
pub(crate) fn string_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    let raw = Vec::<Text>::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .map(|text| text.0.unwrap_or_default())
        .collect())
}

/// One text value or a list of them; untagged enums would buffer the input
/// and lose source positions, so this visits either shape directly.
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;
        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = Vec<String>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or a list of them")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut values = Vec::new();
                while let Some(text) = seq.next_element::<Text>()? {
                    values.push(text.0.unwrap_or_default());
                }
                Ok(values)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(vec![v.to_owned()])
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(vec![v.to_string()])
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(vec![v.to_string()])
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(vec![format_go_float(v)])
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(vec![v.to_string()])
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(vec![String::new()])
            }
        }
        deserializer
            .deserialize_any(OneOrManyVisitor)
            .map(OneOrMany)
    }
}

/// One value or a list of values per key (`provider.options`).
pub(crate) fn multi_options<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let raw = BTreeMap::<String, OneOrMany>::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .map(|(key, values)| (key, values.0))
        .collect())
}

/// Extra `/etc/hosts` entries: each host name with its addresses. Printed
/// as compose prints it, a sorted list of `host=address` strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsList(pub BTreeMap<String, Vec<String>>);

impl HostsList {
    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries as sorted `host<sep>address` strings.
    pub fn to_list(&self, separator: &str) -> Vec<String> {
        let mut list: Vec<String> = self
            .0
            .iter()
            .flat_map(|(host, addresses)| {
                addresses
                    .iter()
                    .map(move |address| format!("{host}{separator}{address}"))
            })
            .collect();
        list.sort();
        list
    }
}

impl Serialize for HostsList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_list("=").serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for HostsList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HostsVisitor;
        impl<'de> Visitor<'de> for HostsVisitor {
            type Value = BTreeMap<String, Vec<String>>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of host=address strings or a map of host to addresses")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut hosts: Self::Value = BTreeMap::new();
                while let Some(entry) = seq.next_element::<String>()? {
                    // `=` is the printed form; `:` is the older spelling,
                    // tried only when there is no `=`.
                    let (host, addresses) = entry
                        .split_once('=')
                        .or_else(|| entry.split_once(':'))
                        .ok_or_else(|| {
                            de::Error::custom(format!(
                                "invalid extra host {entry:?}: expected host=address"
                            ))
                        })?;
                    hosts
                        .entry(host.to_owned())
                        .or_default()
                        .extend(addresses.split(',').map(str::to_owned));
                }
                Ok(hosts)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut hosts: Self::Value = BTreeMap::new();
                while let Some((host, addresses)) = map.next_entry::<String, OneOrMany>()? {
                    hosts.insert(host, addresses.0);
                }
                Ok(hosts)
            }
        }
        let mut hosts = deserializer.deserialize_any(HostsVisitor)?;
        for (host, addresses) in &mut hosts {
            if host.is_empty() || host.contains([':', '=']) {
                return Err(de::Error::custom(format!(
                    "invalid extra host name {host:?}"
                )));
            }
            for address in addresses.iter_mut() {
                if address.len() > 2 && address.starts_with('[') && address.ends_with(']') {
                    *address = address[1..address.len() - 1].to_owned();
                }
            }
        }
        Ok(HostsList(hosts))
    }
}

impl JsonSchema for HostsList {
    fn schema_name() -> Cow<'static, str> {
        "HostsList".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "items": {"type": "string"},
            "description": "Extra /etc/hosts entries as host=address strings."
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        #[serde(default, deserialize_with = "string_or_number")]
        one: String,
        #[serde(default, deserialize_with = "string_map")]
        map: BTreeMap<String, String>,
        #[serde(default, deserialize_with = "env_map")]
        env: BTreeMap<String, Option<String>>,
        #[serde(default, deserialize_with = "string_list")]
        list: Vec<String>,
        #[serde(default, deserialize_with = "multi_options")]
        multi: BTreeMap<String, Vec<String>>,
    }

    fn holder(json: &str) -> Holder {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numbers_and_booleans_read_as_their_go_text() {
        assert_eq!(holder(r#"{"one": 8080}"#).one, "8080");
        assert_eq!(holder(r#"{"one": -1}"#).one, "-1");
        assert_eq!(holder(r#"{"one": 1.10}"#).one, "1.1");
        assert_eq!(holder(r#"{"one": 1e3}"#).one, "1000");
        assert_eq!(holder(r#"{"one": true}"#).one, "true");
        assert_eq!(holder(r#"{"one": "text"}"#).one, "text");
        assert_eq!(holder(r#"{"one": null}"#).one, "");
        assert_eq!(
            holder(r#"{"one": 12345678901234567890}"#).one,
            "12345678901234567890"
        );
    }

    #[test]
    fn objects_are_not_taken_as_text() {
        assert!(serde_json::from_str::<Holder>(r#"{"one": {}}"#).is_err());
        assert!(serde_json::from_str::<Holder>(r#"{"map": {"a": [1]}}"#).is_err());
    }

    #[test]
    fn text_maps_turn_null_into_an_empty_value() {
        let map = holder(r#"{"map": {"a": 1, "b": null, "c": "x", "d": false}}"#).map;
        assert_eq!(map["a"], "1");
        assert_eq!(map["b"], "");
        assert_eq!(map["c"], "x");
        assert_eq!(map["d"], "false");
    }

    #[test]
    fn environment_maps_keep_null_as_no_value() {
        let env = holder(r#"{"env": {"SET": "v", "UNSET": null, "EMPTY": "", "N": 0}}"#).env;
        assert_eq!(env["SET"].as_deref(), Some("v"));
        assert_eq!(env["UNSET"], None);
        assert_eq!(env["EMPTY"].as_deref(), Some(""));
        assert_eq!(env["N"].as_deref(), Some("0"));
    }

    #[test]
    fn lists_take_numbers_as_text() {
        assert_eq!(
            holder(r#"{"list": [80, "443/tcp"]}"#).list,
            ["80", "443/tcp"]
        );
    }

    #[test]
    fn multi_options_take_one_value_or_a_list() {
        let multi = holder(r#"{"multi": {"a": "x", "b": ["y", 2]}}"#).multi;
        assert_eq!(multi["a"], ["x"]);
        assert_eq!(multi["b"], ["y", "2"]);
    }

    #[test]
    fn extra_hosts_print_as_sorted_host_equals_address_strings() {
        let hosts: HostsList = serde_json::from_str(
            r#"["somehost=162.242.195.82", "a-b=1.1.1.1", "a=2.2.2.2", "a=1.1.1.1"]"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&hosts).unwrap(),
            serde_json::json!([
                "a-b=1.1.1.1",
                "a=1.1.1.1",
                "a=2.2.2.2",
                "somehost=162.242.195.82"
            ])
        );
    }

    #[test]
    fn extra_hosts_split_ipv6_addresses_at_the_first_equals_sign() {
        let hosts: HostsList =
            serde_json::from_str(r#"["ipv6host=::1", "old:10.0.0.1", "b=[::2]"]"#).unwrap();
        assert_eq!(hosts.0["ipv6host"], ["::1"]);
        assert_eq!(hosts.0["old"], ["10.0.0.1"]);
        assert_eq!(hosts.0["b"], ["::2"]);
    }

    #[test]
    fn extra_hosts_accept_the_map_form_and_comma_separated_addresses() {
        let hosts: HostsList =
            serde_json::from_str(r#"{"a": "1.1.1.1", "b": ["2.2.2.2", "::1"]}"#).unwrap();
        assert_eq!(hosts.to_list("="), ["a=1.1.1.1", "b=2.2.2.2", "b=::1"]);
        let split: HostsList = serde_json::from_str(r#"["c=1.1.1.1,2.2.2.2"]"#).unwrap();
        assert_eq!(split.0["c"], ["1.1.1.1", "2.2.2.2"]);
    }

    #[test]
    fn extra_hosts_without_an_address_are_rejected() {
        let err = serde_json::from_str::<HostsList>(r#"["lonely"]"#).unwrap_err();
        assert!(err.to_string().contains("lonely"), "{err}");
    }
}
