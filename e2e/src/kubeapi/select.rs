//! Label selectors (equality and set-based) and field selectors, parsed
//! from the query string and matched against objects.

use serde_json::Value;

use super::error::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum LabelTerm {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// What a list or watch keeps: every term of both selectors must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    labels: Vec<LabelTerm>,
    fields: Vec<(String, bool, String)>,
}

impl Selector {
    /// Parses `labelSelector` and `fieldSelector` (either may be absent).
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, ApiError> {
        let mut selector = Selector::default();
        if let Some(text) = labels {
            for term in split_terms(text) {
                selector.labels.push(parse_label_term(&term)?);
            }
        }
        if let Some(text) = fields {
            for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let (key, equal, value) = if let Some((k, v)) = term.split_once("!=") {
                    (k, false, v)
                } else if let Some((k, v)) = term.split_once("==") {
                    (k, true, v)
                } else if let Some((k, v)) = term.split_once('=') {
                    (k, true, v)
                } else {
                    return Err(ApiError::BadRequest(format!(
                        "invalid field selector: '{term}': no operator"
                    )));
                };
                selector
                    .fields
                    .push((key.trim().to_string(), equal, value.trim().to_string()));
            }
        }
        Ok(selector)
    }

    /// True when `object` matches every term.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        let labels_match = self.labels.iter().all(|term| match term {
            LabelTerm::Equals(k, v) => label(k) == Some(v.as_str()),
            LabelTerm::NotEquals(k, v) => label(k) != Some(v.as_str()),
            LabelTerm::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelTerm::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelTerm::Exists(k) => label(k).is_some(),
            LabelTerm::DoesNotExist(k) => label(k).is_none(),
        });
        labels_match
            && self.fields.iter().all(|(path, equal, value)| {
                let mut node = object;
                for part in path.split('.') {
                    node = &node[part];
                }
                let actual = match node {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (actual == *value) == *equal
            })
    }
}

/// Splits on commas outside parentheses.
fn split_terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    terms.push(current);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_label_term(term: &str) -> Result<LabelTerm, ApiError> {
    let bad = |why: &str| {
        ApiError::BadRequest(format!(
            "unable to parse requirement: found '{term}', {why}"
        ))
    };
    let set = |key: &str, rest: &str| -> Result<(String, Vec<String>), ApiError> {
        let inner = rest
            .trim()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| bad("expected a parenthesized set of values"))?;
        let values = inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        Ok((
            valid_key(key.trim()).ok_or_else(|| bad("invalid key"))?,
            values,
        ))
    };
    if let Some(key) = term.strip_prefix('!') {
        return Ok(LabelTerm::DoesNotExist(
            valid_key(key.trim()).ok_or_else(|| bad("invalid key"))?,
        ));
    }
    if let Some((key, rest)) = term.split_once(" notin ") {
        let (key, values) = set(key, rest)?;
        return Ok(LabelTerm::NotIn(key, values));
    }
    if let Some((key, rest)) = term.split_once(" in ") {
        let (key, values) = set(key, rest)?;
        return Ok(LabelTerm::In(key, values));
    }
    if let Some((key, value)) = term.split_once("!=") {
        let key = valid_key(key.trim()).ok_or_else(|| bad("invalid key"))?;
        return Ok(LabelTerm::NotEquals(key, value.trim().to_string()));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        let key = valid_key(key.trim()).ok_or_else(|| bad("invalid key"))?;
        return Ok(LabelTerm::Equals(key, value.trim().to_string()));
    }
    Ok(LabelTerm::Exists(
        valid_key(term).ok_or_else(|| bad("invalid key"))?,
    ))
}

fn valid_key(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn set_based_label_terms_match_as_kubernetes_defines_them() {
        let obj = labelled(json!({"app": "web", "tier": "front"}));
        let matches = |s: &str| {
            Selector::parse(Some(s), None)
                .expect("a valid selector")
                .matches(&obj)
        };
        assert!(matches("app=web"));
        assert!(matches("app in (web, db),tier"));
        assert!(matches("app notin (db),!missing"));
        assert!(matches("tier!=back"));
        assert!(!matches("app in (db)"));
        assert!(!matches("!app"));
        assert!(!matches("missing"));
    }

    #[test]
    fn field_selectors_match_name_and_namespace() {
        let obj = labelled(json!({}));
        let sel = Selector::parse(None, Some("metadata.name=a,metadata.namespace!=other"))
            .expect("a valid selector");
        assert!(sel.matches(&obj));
        let sel = Selector::parse(None, Some("metadata.name=b")).expect("a valid selector");
        assert!(!sel.matches(&obj));
    }

    #[test]
    fn a_selector_without_an_operator_is_a_bad_request() {
        assert!(Selector::parse(None, Some("metadata.name")).is_err());
        assert!(Selector::parse(Some("app in web"), None).is_err());
    }
}
