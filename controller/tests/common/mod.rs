//! Helpers shared by the tests that compare stackd's output with docker
//! compose's: environment switches, short previews, and JSON differences.
#![allow(dead_code)]
use serde_json::Value;

pub fn env_flag(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

pub fn show(value: &Value) -> String {
    shorten(&value.to_string(), 120)
}

/// Every JSON path where `actual` differs from `expected`.
pub fn json_diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let sub = format!("{path}.{key}");
                match a.get(key) {
                    Some(av) => json_diff(&sub, ev, av, out),
                    None => out.push(format!("{sub}: missing (expected {})", show(ev))),
                }
            }
            for (key, av) in a {
                if !e.contains_key(key) {
                    out.push(format!("{path}.{key}: unexpected {}", show(av)));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                json_diff(&format!("{path}[{i}]"), ev, av, out);
            }
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: {} items, expected {} (expected {}, got {})",
                    a.len(),
                    e.len(),
                    show(expected),
                    show(actual)
                ));
            }
        }
        _ if expected != actual => {
            out.push(format!(
                "{path}: expected {}, got {}",
                show(expected),
                show(actual)
            ));
        }
        _ => {}
    }
}
