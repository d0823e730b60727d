//! The `Stack` custom resource (`stackd.dev/v1alpha1`): a compose model or a
//! list of compose files, plus the status stackd reports on it.
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Project;

/// The API group of every stackd resource.
pub const GROUP: &str = "stackd.dev";
/// The served and stored version of the `Stack` resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of a Stack manifest.
pub const API_VERSION: &str = "stackd.dev/v1alpha1";
/// `kind` of a Stack manifest.
pub const KIND: &str = "Stack";

/// The desired state of a stack: one compose project, converged for as long
/// as the Stack exists.
#[derive(CustomResource, Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "stackd.dev",
    version = "v1alpha1",
    kind = "Stack",
    namespaced,
    status = "StackStatus",
    shortname = "stk",
    doc = "A Docker Compose stack that stackd keeps converged.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Status of the Ready condition",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Services",
        type_ = "integer",
        description = "Number of services in the stack",
        json_path = ".status.serviceCount"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StackSpec {
    /// The normalized compose model (what `stackd config` prints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "compose_schema")]
    pub compose: Option<Project>,
    /// Compose files, relative to the manifest, merged in order (file mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_files: Option<Vec<String>>,
    /// Profiles to activate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// When true, stackd observes the stack but changes nothing.
    #[serde(default)]
    pub suspend: bool,
    /// When true, containers of services no longer in the model are removed.
    #[serde(default = "prune_by_default")]
    pub prune: bool,
}

impl Default for StackSpec {
    fn default() -> Self {
        Self {
            compose: None,
            compose_files: None,
            profiles: Vec::new(),
            suspend: false,
            prune: prune_by_default(),
        }
    }
}

fn prune_by_default() -> bool {
    true
}

/// The compose model is large and full of free-form maps (labels,
/// environment, `x-*` extensions); a generated schema for it would be huge and
/// not structural, so the CRD only says "an object" and lets the API server
/// keep every field. stackd validates the model itself.
fn compose_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "The normalized compose model: services, networks, volumes, configs, secrets.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// What stackd last observed and did for a stack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StackStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// kstatus conditions: `Ready`, `Reconciling`, `Stalled`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Number of services in the desired model (the `Services` column).
    #[serde(default)]
    pub service_count: i32,
    /// Per-service replica counts, by service name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceStatus>,
}

/// Replica counts of one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Replicas the model asks for.
    #[serde(default)]
    pub desired: i32,
    /// Replicas running and, where a healthcheck exists, healthy.
    #[serde(default)]
    pub ready: i32,
    /// The image the service runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

#[cfg(test)]
mod tests {
    use kube::core::CustomResourceExt;
    use serde_json::Value;

    use super::*;

    fn crd_json() -> Value {
        serde_json::to_value(Stack::crd()).unwrap()
    }

    fn spec_schema(crd: &Value) -> &Value {
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    }

    /// Structural schema rules the API server enforces (no `$ref`, no
    /// composition keywords carrying types, a `type` on every node unless it
    /// preserves unknown fields); returns the offending JSON paths.
    fn non_structural(node: &Value, path: &str, found: &mut Vec<String>) {
        let Some(obj) = node.as_object() else { return };
        for bad in [
            "$ref",
            "anyOf",
            "oneOf",
            "allOf",
            "not",
            "definitions",
            "$defs",
        ] {
            if obj.contains_key(bad) {
                found.push(format!("{path}: {bad}"));
            }
        }
        let preserves = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
        if !obj.contains_key("type") && !preserves && !int_or_string {
            found.push(format!("{path}: no type"));
        }
        if let Some(Value::Object(props)) = obj.get("properties") {
            for (name, child) in props {
                non_structural(child, &format!("{path}.{name}"), found);
            }
        }
        if let Some(items) = obj.get("items") {
            non_structural(items, &format!("{path}[]"), found);
        }
        if let Some(additional @ Value::Object(_)) = obj.get("additionalProperties") {
            non_structural(additional, &format!("{path}{{}}"), found);
        }
    }

    #[test]
    fn the_crd_names_the_stack_kind_in_the_stackd_group() {
        let crd = crd_json();
        assert_eq!(crd["metadata"]["name"], "stacks.stackd.dev");
        assert_eq!(crd["spec"]["group"], GROUP);
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["kind"], KIND);
        assert_eq!(crd["spec"]["versions"][0]["name"], VERSION);
    }

    #[test]
    fn the_crd_has_the_stk_short_name() {
        let crd = crd_json();
        assert_eq!(
            crd["spec"]["names"]["shortNames"],
            serde_json::json!(["stk"])
        );
    }

    #[test]
    fn the_crd_enables_the_status_subresource() {
        let crd = crd_json();
        assert!(crd["spec"]["versions"][0]["subresources"]["status"].is_object());
    }

    #[test]
    fn the_crd_prints_ready_services_and_age_columns() {
        let crd = crd_json();
        let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap();
        let by_name = |name: &str| {
            columns
                .iter()
                .find(|c| c["name"] == name)
                .unwrap_or_else(|| panic!("no {name} column in {columns:?}"))
        };
        assert_eq!(
            by_name("Ready")["jsonPath"],
            r#".status.conditions[?(@.type=="Ready")].status"#
        );
        assert_eq!(by_name("Services")["jsonPath"], ".status.serviceCount");
        assert_eq!(by_name("Services")["type"], "integer");
        assert_eq!(by_name("Age")["jsonPath"], ".metadata.creationTimestamp");
        assert_eq!(by_name("Age")["type"], "date");
    }

    #[test]
    fn the_compose_field_preserves_unknown_fields() {
        let crd = crd_json();
        let compose = &spec_schema(&crd)["properties"]["compose"];
        assert_eq!(compose["type"], "object");
        assert_eq!(compose["x-kubernetes-preserve-unknown-fields"], true);
        assert!(compose.get("properties").is_none());
    }

    #[test]
    fn the_crd_schema_is_structural() {
        let crd = crd_json();
        let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut found = Vec::new();
        non_structural(root, "", &mut found);
        assert!(found.is_empty(), "not structural: {found:?}");
    }

    #[test]
    fn no_spec_field_is_required() {
        let crd = crd_json();
        assert!(spec_schema(&crd).get("required").is_none());
    }

    #[test]
    fn a_stack_manifest_deserializes() {
        let yaml = r#"
apiVersion: stackd.dev/v1alpha1
kind: Stack
metadata: {name: agents, namespace: default}
spec:
  compose:
    name: agents
    services: {web: {image: "nginx:1.27"}}
  profiles: [debug]
  suspend: false
status:
  observedGeneration: 3
  conditions:
    - type: Ready
      status: "True"
      reason: Converged
      message: all services ready
      lastTransitionTime: "2026-01-01T00:00:00Z"
  services: {web: {desired: 2, ready: 2, image: "nginx:1.27"}}
"#;
        let stack: Stack = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(stack.metadata.name.as_deref(), Some("agents"));
        assert_eq!(stack.metadata.namespace.as_deref(), Some("default"));
        assert!(stack.spec.compose.is_some());
        assert_eq!(stack.spec.profiles, ["debug"]);
        assert!(stack.spec.prune, "prune defaults to true");
        let status = stack.status.unwrap();
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.conditions[0].type_, "Ready");
        assert_eq!(status.conditions[0].status, "True");
        assert_eq!(status.services["web"].ready, 2);
    }

    #[test]
    fn a_file_mode_manifest_keeps_its_compose_files() {
        let yaml = r#"
apiVersion: stackd.dev/v1alpha1
kind: Stack
metadata: {name: agents}
spec:
  composeFiles: [compose.yaml, compose.prod.yaml]
  prune: false
"#;
        let stack: Stack = serde_saphyr::from_str(yaml).unwrap();
        assert!(stack.spec.compose.is_none());
        assert_eq!(
            stack.spec.compose_files.as_deref(),
            Some(&["compose.yaml".to_owned(), "compose.prod.yaml".to_owned()][..])
        );
        assert!(!stack.spec.prune);
    }

    #[test]
    fn a_serialized_stack_uses_camel_case_and_omits_empty_fields() {
        let mut stack = Stack::new(
            "agents",
            StackSpec {
                compose_files: Some(vec!["compose.yaml".into()]),
                ..StackSpec::default()
            },
        );
        stack.status = Some(StackStatus {
            observed_generation: Some(1),
            ..StackStatus::default()
        });
        let json = serde_json::to_value(&stack).unwrap();
        assert_eq!(json["apiVersion"], API_VERSION);
        assert_eq!(json["kind"], KIND);
        assert_eq!(
            json["spec"]["composeFiles"],
            serde_json::json!(["compose.yaml"])
        );
        assert_eq!(json["spec"]["prune"], true);
        assert!(json["spec"].get("compose").is_none());
        assert!(json["spec"].get("profiles").is_none());
        assert_eq!(json["status"]["observedGeneration"], 1);
    }
}
