//! The account of compose keys: which keys the input holds
//! ([`keys_present`]) and, during a translation, which ones shaped the
//! output and which ones got a warning ([`Ledger`]). A key neither used
//! nor warned about would be a silent drop; the tests check there is none.
use std::collections::BTreeSet;

use serde_json::Value;

use super::{KeyRef, Scope, Warning};
use crate::model::Project;

/// Keys used and warnings given during one translation.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Keys that shaped the output.
    pub consumed: BTreeSet<KeyRef>,
    /// Warnings, in the order given (duplicates dropped).
    pub warnings: Vec<Warning>,
}

impl Ledger {
    /// Notes that `key` of `scope` shaped the output.
    pub fn used(&mut self, scope: &Scope, key: &str) {
        self.consumed.insert(KeyRef {
            scope: scope.clone(),
            key: key.to_string(),
        });
    }

    /// Warns that `key` of `scope` did not (fully) carry over.
    pub fn warn(&mut self, scope: &Scope, key: &str, message: impl Into<String>) {
        let warning = Warning {
            scope: scope.clone(),
            key: key.to_string(),
            message: message.into(),
        };
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }
}

/// Every key the project holds, as the model prints it: a leaf of the
/// printed JSON (a scalar, a list of scalars, or `null`), named by its
/// dotted path with list positions left out (`ports.target`), in the scope
/// of its service or top-level resource. Empty objects hold no key, and
/// the `null` that stands for an unset `command` or `entrypoint` is not a
/// key. Top-level `x-*` extensions are keys of the project.
pub fn keys_present(project: &Project) -> BTreeSet<KeyRef> {
    let mut keys = BTreeSet::new();
    let Ok(Value::Object(top)) = serde_json::to_value(project) else {
        return keys;
    };
    for (section, value) in &top {
        let scope_of: fn(String) -> Scope = match section.as_str() {
            "services" => Scope::Service,
            "networks" => Scope::Network,
            "volumes" => Scope::Volume,
            "secrets" => Scope::Secret,
            "configs" => Scope::Config,
            "name" => continue,
            _ => {
                leaves(&Scope::Project, section, value, &mut keys);
                continue;
            }
        };
        let Value::Object(items) = value else {
            continue;
        };
        for (name, item) in items {
            let scope = scope_of(name.clone());
            let Value::Object(fields) = item else {
                keys.insert(KeyRef {
                    scope,
                    key: String::new(),
                });
                continue;
            };
            for (field, value) in fields {
                if section == "services"
                    && matches!(field.as_str(), "command" | "entrypoint")
                    && value.is_null()
                {
                    continue;
                }
                leaves(&scope, field, value, &mut keys);
            }
        }
    }
    // Models are read but not printed; they are keys all the same.
    for name in project.models.keys() {
        keys.insert(KeyRef {
            scope: Scope::Project,
            key: format!("models.{name}"),
        });
    }
    for (name, service) in &project.services {
        for model in service.models.keys() {
            keys.insert(KeyRef {
                scope: Scope::Service(name.clone()),
                key: format!("models.{model}"),
            });
        }
    }
    keys
}

fn leaves(scope: &Scope, path: &str, value: &Value, out: &mut BTreeSet<KeyRef>) {
    match value {
        Value::Object(fields) => {
            for (field, value) in fields {
                leaves(scope, &format!("{path}.{field}"), value, out);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for item in items {
                leaves(scope, path, item, out);
            }
        }
        _ => {
            out.insert(KeyRef {
                scope: scope.clone(),
                key: path.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(json: serde_json::Value) -> Project {
        serde_json::from_value(json).unwrap()
    }

    fn service_keys(keys: &BTreeSet<KeyRef>, service: &str) -> Vec<String> {
        keys.iter()
            .filter(|k| k.scope == Scope::Service(service.into()))
            .map(|k| k.key.clone())
            .collect()
    }

    #[test]
    fn present_keys_are_dotted_leaf_paths_without_list_positions() {
        let keys = keys_present(&project(serde_json::json!({
            "name": "p",
            "services": {"web": {
                "image": "nginx",
                "ports": [{"target": 80, "published": "8080"}, {"target": 443}],
                "healthcheck": {"test": ["CMD", "true"], "interval": "5s"},
                "environment": {"A": "1", "B": null},
                "deploy": {"replicas": 2}
            }}
        })));
        assert_eq!(
            service_keys(&keys, "web"),
            [
                "deploy.replicas",
                "environment.A",
                "environment.B",
                "healthcheck.interval",
                "healthcheck.test",
                "image",
                "ports.published",
                "ports.target",
            ]
        );
    }

    #[test]
    fn an_unset_command_is_not_a_key_but_an_empty_one_is() {
        let keys = keys_present(&project(serde_json::json!({
            "name": "p",
            "services": {"a": {"image": "x"}, "b": {"image": "x", "command": []}}
        })));
        assert_eq!(service_keys(&keys, "a"), ["image"]);
        assert_eq!(service_keys(&keys, "b"), ["command", "image"]);
    }

    #[test]
    fn top_level_resources_and_extensions_have_their_own_scopes() {
        let keys = keys_present(&project(serde_json::json!({
            "name": "p",
            "services": {},
            "networks": {"back": {"internal": true}},
            "volumes": {"data": {"driver": "local"}},
            "x-stackd": {"kubernetes": {"wait_image": "k"}}
        })));
        assert!(keys.contains(&KeyRef {
            scope: Scope::Network("back".into()),
            key: "internal".into()
        }));
        assert!(keys.contains(&KeyRef {
            scope: Scope::Volume("data".into()),
            key: "driver".into()
        }));
        assert!(keys.contains(&KeyRef {
            scope: Scope::Project,
            key: "x-stackd.kubernetes.wait_image".into()
        }));
    }

    #[test]
    fn a_key_covers_itself_and_the_keys_below_it_only() {
        let key = |k: &str| KeyRef {
            scope: Scope::Service("s".into()),
            key: k.into(),
        };
        assert!(key("labels").covers(&key("labels.com.example")));
        assert!(key("labels").covers(&key("labels")));
        assert!(!key("labels").covers(&key("labels_x")));
        assert!(!key("deploy.resources").covers(&key("deploy")));
        let other_scope = KeyRef {
            scope: Scope::Service("t".into()),
            key: "labels".into(),
        };
        assert!(!other_scope.covers(&key("labels")));
    }
}
