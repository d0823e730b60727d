//! The protobuf bodies kubectl's typed generators send (`kubectl create
//! namespace|configmap|secret|serviceaccount`), decoded to JSON. Other
//! kinds in protobuf are refused with 415, naming the kind.

use serde_json::{json, Map, Value};

/// The 4-byte prefix of a Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Bytes,
    Bool,
    Message(&'static [Field]),
    StringMap,
    BytesMap,
    Strings,
    Messages(&'static [Field]),
}

#[derive(Debug, Clone, Copy)]
struct Field {
    number: u64,
    name: &'static str,
    kind: Kind,
}

const fn f(number: u64, name: &'static str, kind: Kind) -> Field {
    Field { number, name, kind }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Kind::Str),
    f(3, "name", Kind::Str),
    f(4, "uid", Kind::Str),
    f(5, "apiVersion", Kind::Str),
    f(6, "controller", Kind::Bool),
    f(7, "blockOwnerDeletion", Kind::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Kind::Str),
    f(2, "generateName", Kind::Str),
    f(3, "namespace", Kind::Str),
    f(11, "labels", Kind::StringMap),
    f(12, "annotations", Kind::StringMap),
    f(13, "ownerReferences", Kind::Messages(OWNER_REFERENCE)),
    f(14, "finalizers", Kind::Strings),
];

const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Kind::Str),
    f(2, "namespace", Kind::Str),
    f(3, "name", Kind::Str),
    f(4, "uid", Kind::Str),
    f(5, "apiVersion", Kind::Str),
    f(6, "resourceVersion", Kind::Str),
    f(7, "fieldPath", Kind::Str),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Kind::Message(OBJECT_META)),
    f(2, "data", Kind::StringMap),
    f(3, "binaryData", Kind::BytesMap),
    f(4, "immutable", Kind::Bool),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Kind::Message(OBJECT_META)),
    f(2, "data", Kind::BytesMap),
    f(3, "type", Kind::Str),
    f(4, "stringData", Kind::StringMap),
    f(5, "immutable", Kind::Bool),
];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Kind::Message(OBJECT_META)),
    f(
        2,
        "spec",
        Kind::Message(&[f(1, "finalizers", Kind::Strings)]),
    ),
];

const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Kind::Message(OBJECT_META)),
    f(2, "secrets", Kind::Messages(OBJECT_REFERENCE)),
    f(
        3,
        "imagePullSecrets",
        Kind::Messages(&[f(1, "name", Kind::Str)]),
    ),
    f(4, "automountServiceAccountToken", Kind::Bool),
];

const UNKNOWN: &[Field] = &[
    f(
        1,
        "typeMeta",
        Kind::Message(&[f(1, "apiVersion", Kind::Str), f(2, "kind", Kind::Str)]),
    ),
    f(2, "raw", Kind::Bytes),
];

/// Why a protobuf body was not decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtobufError {
    /// The bytes are not protobuf.
    #[error("malformed protobuf body")]
    Malformed,
    /// A kind this server only takes as JSON.
    #[error("protobuf bodies of kind {0:?} are not supported: send application/json")]
    UnsupportedKind(String),
}

/// The JSON object of a `k8s\0`-prefixed protobuf body.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::Malformed)?;
    let mut raw = Vec::new();
    let unknown = message(envelope, UNKNOWN, Some(&mut raw))?;
    let api_version = unknown["typeMeta"]["apiVersion"].as_str().unwrap_or("");
    let kind = unknown["typeMeta"]["kind"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let schema = match (api_version, kind.as_str()) {
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        _ => return Err(ProtobufError::UnsupportedKind(kind)),
    };
    let mut object = message(&raw, schema, None)?;
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, ProtobufError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or(ProtobufError::Malformed)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ProtobufError::Malformed)
}

/// Decodes one message; the `raw` bytes field (of the envelope) goes to `raw_out`.
fn message(
    bytes: &[u8],
    schema: &[Field],
    mut raw_out: Option<&mut Vec<u8>>,
) -> Result<Value, ProtobufError> {
    let mut out = Map::new();
    let mut at = 0;
    while at < bytes.len() {
        let key = varint(bytes, &mut at)?;
        let (number, wire) = (key >> 3, key & 7);
        let payload: Option<&[u8]> = match wire {
            0 => {
                let value = varint(bytes, &mut at)?;
                if let Some(field) = schema.iter().find(|f| f.number == number) {
                    if let Kind::Bool = field.kind {
                        out.insert(field.name.into(), json!(value != 0));
                    }
                }
                None
            }
            1 => {
                at += 8;
                None
            }
            5 => {
                at += 4;
                None
            }
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?)
                    .map_err(|_| ProtobufError::Malformed)?;
                let end = at
                    .checked_add(len)
                    .filter(|e| *e <= bytes.len())
                    .ok_or(ProtobufError::Malformed)?;
                let slice = &bytes[at..end];
                at = end;
                Some(slice)
            }
            _ => return Err(ProtobufError::Malformed),
        };
        let (Some(payload), Some(field)) = (payload, schema.iter().find(|f| f.number == number))
        else {
            continue;
        };
        let name = field.name.to_string();
        match field.kind {
            Kind::Str => {
                out.insert(name, json!(text(payload)?));
            }
            Kind::Bytes => match raw_out.as_deref_mut() {
                Some(raw) => *raw = payload.to_vec(),
                None => {
                    out.insert(name, json!(base64(payload)));
                }
            },
            Kind::Bool => {}
            Kind::Message(fields) => {
                out.insert(name, message(payload, fields, None)?);
            }
            Kind::StringMap | Kind::BytesMap => {
                let entry = message(
                    payload,
                    &[
                        f(1, "key", Kind::Str),
                        f(
                            2,
                            "value",
                            if matches!(field.kind, Kind::BytesMap) {
                                Kind::Bytes
                            } else {
                                Kind::Str
                            },
                        ),
                    ],
                    None,
                )?;
                let map = out.entry(name).or_insert_with(|| json!({}));
                let key = entry["key"].as_str().unwrap_or("").to_string();
                map[key] = entry.get("value").cloned().unwrap_or(json!(""));
            }
            Kind::Strings => {
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Some(items) = list.as_array_mut() {
                    items.push(json!(text(payload)?));
                }
            }
            Kind::Messages(fields) => {
                let item = message(payload, fields, None)?;
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Some(items) = list.as_array_mut() {
                    items.push(item);
                }
            }
        }
    }
    Ok(Value::Object(out))
}

fn text(bytes: &[u8]) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::Malformed)
}

/// Standard base64 with padding, as JSON carries `[]byte`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((number << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_protobuf_configmap_decodes_to_its_json() {
        let meta = field(1, b"settings");
        let entry = [field(1, b"a"), field(2, b"1")].concat();
        let configmap = [field(1, &meta), field(2, &entry)].concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &configmap)].concat();
        assert_eq!(
            decode(&body),
            Ok(json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "settings"}, "data": {"a": "1"}}))
        );
    }

    #[test]
    fn bytes_become_padded_base64() {
        assert_eq!(base64(b"secret"), "c2VjcmV0");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn a_deployment_in_protobuf_is_refused_by_kind() {
        let type_meta = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta)].concat();
        assert_eq!(
            decode(&body),
            Err(ProtobufError::UnsupportedKind("Deployment".into()))
        );
    }
}
