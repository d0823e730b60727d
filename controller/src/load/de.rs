//! Typed deserialization straight from [`Node`] trees, so that a field of the
//! wrong type or an unknown key is reported at its `file:line:col` with the
//! dotted path of the field.
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use super::yaml::{Node, Resolved, Scalar, Span, Style, Value};

/// A value in the tree did not fit the model.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    /// What was wrong.
    pub message: String,
    /// Where: the innermost node that saw the error.
    pub span: Option<Span>,
    /// Dotted path of the field, outermost first (`services.web.ports[0]`).
    pub path: Vec<PathSegment>,
}

/// One step of a path into the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum PathSegment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

impl DeError {
    /// The dotted path, `services.web.ports[0]`.
    pub fn path_string(&self) -> String {
        render_path(&self.path)
    }

    fn at(mut self, span: &Span) -> Self {
        if self.span.is_none() {
            self.span = Some(span.clone());
        }
        self
    }

    fn under(mut self, segment: PathSegment) -> Self {
        self.path.insert(0, segment);
        self
    }
}

/// Renders path segments as `a.b[0].c`.
pub fn render_path(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSegment::Index(i) => {
                out.push_str(&format!("[{i}]"));
            }
        }
    }
    out
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = &self.span {
            write!(f, "{span}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path_string())?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            span: None,
            path: Vec::new(),
        }
    }
}

/// Deserializes a typed value from a tree.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, DeError> {
    T::deserialize(NodeDeserializer { node })
}

/// A serde deserializer over one [`Node`].
#[derive(Clone, Copy)]
pub struct NodeDeserializer<'a> {
    node: &'a Node,
}

impl<'a> NodeDeserializer<'a> {
    /// Wraps a node.
    pub fn new(node: &'a Node) -> Self {
        NodeDeserializer { node }
    }

    fn scalar(&self) -> Option<&'a Scalar> {
        self.node.as_scalar()
    }

    fn mismatch(&self, expected: &str) -> DeError {
        let found = match &self.node.value {
            Value::Scalar(s) if s.resolve() == Resolved::Str => format!("string {:?}", s.text),
            Value::Scalar(s) => format!("{} ({})", self.node.kind(), s.text),
            _ => self.node.kind().to_string(),
        };
        <DeError as de::Error>::custom(format!("expected {expected}, found {found}"))
            .at(&self.node.span)
    }

    fn located<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|e| e.at(&self.node.span))
    }
}

macro_rules! deserialize_integer {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let value = match self.scalar().map(Scalar::resolve) {
                Some(Resolved::Int(i)) => <$ty>::try_from(i).ok(),
                Some(Resolved::UInt(u)) => <$ty>::try_from(u).ok(),
                _ => return Err(self.mismatch("an integer")),
            };
            match value {
                Some(v) => self.located(visitor.$visit(v)),
                None => Err(self.mismatch(concat!("an integer that fits ", stringify!($ty)))),
            }
        }
    };
}

impl<'de, 'a> de::Deserializer<'de> for NodeDeserializer<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::UInt(u) => visitor.visit_u64(u),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Timestamp | Resolved::Str => visitor.visit_str(&s.text),
            },
            Value::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter().enumerate(),
            }),
            Value::Map(map) => visitor.visit_map(MapAccess::new(map, false)),
        };
        self.located(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar().map(Scalar::resolve) {
            Some(Resolved::Bool(b)) => self.located(visitor.visit_bool(b)),
            _ => Err(self.mismatch("a boolean")),
        }
    }

    deserialize_integer!(deserialize_i8, visit_i8, i8);
    deserialize_integer!(deserialize_i16, visit_i16, i16);
    deserialize_integer!(deserialize_i32, visit_i32, i32);
    deserialize_integer!(deserialize_i64, visit_i64, i64);
    deserialize_integer!(deserialize_u8, visit_u8, u8);
    deserialize_integer!(deserialize_u16, visit_u16, u16);
    deserialize_integer!(deserialize_u32, visit_u32, u32);
    deserialize_integer!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar().map(Scalar::resolve) {
            Some(Resolved::Float(f)) => self.located(visitor.visit_f64(f)),
            Some(Resolved::Int(i)) => self.located(visitor.visit_f64(i as f64)),
            Some(Resolved::UInt(u)) => self.located(visitor.visit_f64(u as f64)),
            _ => Err(self.mismatch("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    /// Strings are strict, as compose's schema is: an unquoted number or
    /// boolean is not a string. Fields that also take numbers say so in the
    /// model and go through `deserialize_any`.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(s) if s.style == Style::Quoted => self.located(visitor.visit_str(&s.text)),
            Some(s) => match s.resolve() {
                Resolved::Str => self.located(visitor.visit_str(&s.text)),
                _ => Err(self.mismatch("a string")),
            },
            None => Err(self.mismatch("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            self.located(visitor.visit_none())
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            self.located(visitor.visit_unit())
        } else {
            Err(self.mismatch("null"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) => self.located(visitor.visit_seq(SeqAccess {
                items: items.iter().enumerate(),
            })),
            _ => Err(self.mismatch("a sequence")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(map) => self.located(visitor.visit_map(MapAccess::new(map, false))),
            _ => Err(self.mismatch("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        // Structs skip `x-*` keys: compose allows extensions on every object
        // and the model keeps them only at the top level.
        match &self.node.value {
            Value::Map(map) => self.located(visitor.visit_map(MapAccess::new(map, true))),
            _ => Err(self.mismatch("a mapping")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Scalar(s) => {
                let text = s.canonical_text().unwrap_or_default();
                self.located(visitor.visit_enum(text.into_deserializer()))
            }
            Value::Map(map) if map.len() == 1 => self.located(visitor.visit_enum(EnumAccess {
                entry: map.iter().next(),
            })),
            _ => Err(self.mismatch("a name or a one-key mapping")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'a, I: Iterator<Item = (usize, &'a Node)>> {
    items: I,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> de::SeqAccess<'de> for SeqAccess<'a, I> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((index, node)) => seed
                .deserialize(NodeDeserializer { node })
                .map(Some)
                .map_err(|e| e.at(&node.span).under(PathSegment::Index(index))),
        }
    }
}

struct MapAccess<'a> {
    entries: indexmap::map::Iter<'a, String, (super::yaml::Key, Node)>,
    pending: Option<(&'a str, &'a Node)>,
    skip_extensions: bool,
}

impl<'a> MapAccess<'a> {
    fn new(map: &'a super::yaml::Mapping, skip_extensions: bool) -> Self {
        MapAccess {
            entries: map.iter(),
            pending: None,
            skip_extensions,
        }
    }
}

impl<'de, 'a> de::MapAccess<'de> for MapAccess<'a> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let mut next = self.entries.next();
        while self.skip_extensions && next.is_some_and(|(name, _)| name.starts_with("x-")) {
            next = self.entries.next();
        }
        match next {
            None => Ok(None),
            Some((name, (key, value))) => {
                self.pending = Some((name.as_str(), value));
                let key_de: de::value::StrDeserializer<'_, DeError> =
                    name.as_str().into_deserializer();
                seed.deserialize(key_de).map(Some).map_err(|e| {
                    let e = if e.message.starts_with("unknown field") {
                        DeError {
                            message: format!("unknown key {name:?} ({})", e.message),
                            ..e
                        }
                    } else {
                        e
                    };
                    e.at(&key.span).under(PathSegment::Key(name.clone()))
                })
            }
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        let Some((name, node)) = self.pending.take() else {
            return Err(<DeError as de::Error>::custom(
                "value requested before its key",
            ));
        };
        seed.deserialize(NodeDeserializer { node })
            .map_err(|e| e.at(&node.span).under(PathSegment::Key(name.to_string())))
    }
}

struct EnumAccess<'a> {
    entry: Option<(&'a String, &'a (super::yaml::Key, Node))>,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = DeError;
    type Variant = VariantAccess<'a>;

    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let Some((name, (_, node))) = self.entry else {
            return Err(<DeError as de::Error>::custom("expected a one-key mapping"));
        };
        let key_de: de::value::StrDeserializer<'_, DeError> = name.as_str().into_deserializer();
        let variant = seed.deserialize(key_de)?;
        Ok((variant, VariantAccess { node }))
    }
}

struct VariantAccess<'a> {
    node: &'a Node,
}

impl<'de, 'a> de::VariantAccess<'de> for VariantAccess<'a> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DeError> {
        seed.deserialize(NodeDeserializer { node: self.node })
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(NodeDeserializer { node: self.node }, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(NodeDeserializer { node: self.node }, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use serde::Deserialize;

    use super::*;
    use crate::load::yaml::parse_documents;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Port {
        target: u16,
        published: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Service {
        image: Option<String>,
        #[serde(default)]
        ports: Vec<Port>,
        #[serde(default)]
        environment: BTreeMap<String, Option<String>>,
        read_only: Option<bool>,
    }

    fn node(text: &str) -> Node {
        let file: Arc<str> = Arc::from("compose.yaml");
        parse_documents(text, &file).expect("parses").remove(0)
    }

    #[test]
    fn typed_fields_deserialize_from_plain_and_quoted_scalars() {
        let service: Service = from_node(&node(
            "image: nginx\nports: [{target: 80, published: '8080'}]\nenvironment: {A: '1', C: null}\nread_only: true\n",
        ))
        .expect("valid");
        assert_eq!(service.image.as_deref(), Some("nginx"));
        assert_eq!(
            service.ports,
            vec![Port {
                target: 80,
                published: Some("8080".into())
            }]
        );
        assert_eq!(service.environment.get("A"), Some(&Some("1".to_string())));
        assert_eq!(service.environment.get("C"), Some(&None));
        assert_eq!(service.read_only, Some(true));
    }

    #[test]
    fn an_unquoted_number_is_not_a_string() {
        let err = from_node::<Service>(&node("image: 0777\n")).expect_err("number for string");
        assert_eq!(
            err.to_string(),
            "compose.yaml:1:8: image: expected a string, found an integer (0777)"
        );
    }

    #[test]
    fn an_unknown_key_is_reported_at_its_line_and_column_with_its_path() {
        let err = from_node::<Service>(&node(
            "image: nginx\nports:\n  - target: 80\n    publised: 1\n",
        ))
        .expect_err("unknown key");
        assert_eq!(err.span.as_ref().map(|s| (s.line, s.col)), Some((4, 5)));
        assert_eq!(err.path_string(), "ports[0].publised");
        assert!(
            err.to_string()
                .starts_with("compose.yaml:4:5: ports[0].publised: unknown key"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_type_names_what_was_expected_and_found() {
        let err = from_node::<Service>(&node("read_only: 'yes'\n")).expect_err("string for bool");
        assert_eq!(
            err.to_string(),
            "compose.yaml:1:12: read_only: expected a boolean, found string \"yes\""
        );
    }

    #[test]
    fn an_integer_out_of_range_is_an_error_not_a_wraparound() {
        let err = from_node::<Service>(&node("ports: [{target: 70000}]\n")).expect_err("too big");
        assert!(err.to_string().contains("ports[0].target"), "{err}");
    }
}
