//! The config hash stored in `com.docker.compose.config-hash`: what decides
//! whether a container still matches its service or must be recreated.
//!
//! Like compose's `ServiceHash`, it covers everything that shapes a
//! container and leaves out what only says how many containers run, in
//! which order they start, or how the image is obtained: `build`,
//! `pull_policy`, `scale`, `deploy.replicas`, `depends_on` and `profiles`.
//!
//! Where it differs from compose: it hashes stackd's printed model (the
//! JSON of `stackd config`) with keys sorted, not compose-go's Go structs,
//! so the values differ from compose's and a project moved between the two
//! tools is recreated once. And a `deploy` section that held nothing but
//! `replicas` is dropped as a whole, so moving a service from `scale` to
//! `deploy.replicas` does not recreate it (compose keeps the emptied
//! `deploy` and recreates).
use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{DeployConfig, ServiceConfig};

/// The service with the fields the hash ignores cleared.
fn hashed_part(service: &ServiceConfig) -> ServiceConfig {
    let mut service = service.clone();
    service.build = None;
    service.pull_policy.clear();
    service.scale = None;
    service.depends_on.clear();
    service.profiles.clear();
    if let Some(deploy) = &mut service.deploy {
        deploy.replicas = None;
        if *deploy == DeployConfig::default() {
            service.deploy = None;
        }
    }
    service
}

/// The SHA-256, in lower-case hex, of the service's canonical JSON without
/// the scale-only and ordering-only fields (see the module docs).
pub fn config_hash(service: &ServiceConfig) -> String {
    let hashed = hashed_part(service);
    let mut text = String::new();
    match serde_json::to_value(&hashed) {
        Ok(value) => write_canonical(&value, &mut text),
        // The model's serializers only fail on values the loader never
        // produces; hashing the debug form still tells configs apart.
        Err(_) => text = format!("{hashed:?}"),
    }
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Compact JSON with object keys sorted, so the hash never depends on the
/// order fields are declared or maps are filled in.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{ServiceDependency, ServicePortConfig};

    fn base() -> ServiceConfig {
        serde_json::from_value(serde_json::json!({
            "image": "busybox:1",
            "command": ["httpd", "-f"],
            "environment": {"A": "1"},
        }))
        .unwrap()
    }

    #[test]
    fn the_hash_is_64_hex_digits_and_stable() {
        let hash = config_hash(&base());
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hash, config_hash(&base().clone()));
    }

    #[test]
    fn replicas_scale_depends_on_build_pull_policy_and_profiles_do_not_change_the_hash() {
        let before = config_hash(&base());
        let mut changed = base();
        changed.scale = Some(3);
        changed.deploy = Some(DeployConfig {
            replicas: Some(3),
            ..DeployConfig::default()
        });
        changed.depends_on.insert(
            "db".into(),
            ServiceDependency {
                condition: "service_healthy".into(),
                restart: true,
                required: true,
            },
        );
        changed.build = Some(serde_json::from_value(serde_json::json!({"context": "."})).unwrap());
        changed.pull_policy = "never".into();
        changed.profiles = vec!["debug".into()];
        assert_eq!(config_hash(&changed), before);
    }

    #[test]
    fn environment_image_command_and_ports_change_the_hash() {
        let before = config_hash(&base());
        let mut env = base();
        env.environment.insert("A".into(), Some("2".into()));
        let mut image = base();
        image.image = "busybox:2".into();
        let mut command = base();
        command.command = Some(vec!["sleep".into(), "1".into()]);
        let mut ports = base();
        ports.ports.push(ServicePortConfig {
            target: 80,
            published: "8080".into(),
            ..ServicePortConfig::default()
        });
        for changed in [env, image, command, ports] {
            assert_ne!(config_hash(&changed), before, "{changed:?}");
        }
    }

    #[test]
    fn other_deploy_settings_still_change_the_hash() {
        let mut limited = base();
        limited.deploy = Some(DeployConfig {
            replicas: Some(2),
            mode: "global".into(),
            ..DeployConfig::default()
        });
        assert_ne!(config_hash(&limited), config_hash(&base()));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": {"z": 1, "a": [{"y": true, "x": null}]}, "a": "s"});
        let mut out = String::new();
        write_canonical(&value, &mut out);
        assert_eq!(out, r#"{"a":"s","b":{"a":[{"x":null,"y":true}],"z":1}}"#);
    }
}
