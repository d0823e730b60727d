//! The resource types the server serves: the built-in ones and those a
//! CustomResourceDefinition registers, with what discovery says of them.

use std::cmp::Ordering;

use serde_json::{json, Value};

/// One printer column of a CRD version (`additionalPrinterColumns`).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The header.
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub kind: String,
    /// OpenAPI format, if any.
    pub format: String,
    /// Shown in `kubectl get` only with `-o wide` when above 0.
    pub priority: i64,
    /// The help text.
    pub description: String,
    /// The simple JSONPath of the value.
    pub json_path: String,
}

/// A resource (one plural of one group) and how it is served.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group, empty for the core group.
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<String>,
    /// `configmaps`.
    pub plural: String,
    /// `configmap`.
    pub singular: String,
    /// `ConfigMap`.
    pub kind: String,
    /// `ConfigMapList`.
    pub list_kind: String,
    /// Namespaced or cluster-wide.
    pub namespaced: bool,
    /// `cm`.
    pub short_names: Vec<String>,
    /// `all`, for the workloads `kubectl get all` lists.
    pub categories: Vec<String>,
    /// Whether `/status` is a subresource (then writes to the main
    /// resource leave status alone).
    pub status_subresource: bool,
    /// Printer columns by version (CRDs only).
    pub columns: Vec<(String, Vec<Column>)>,
    /// False for resources a CRD registered.
    pub builtin: bool,
}

impl ResourceType {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The (group, plural) objects are stored under: events.k8s.io Events
    /// share the core Events' storage.
    pub fn storage_key(&self) -> (String, String) {
        if self.is_events_v1() {
            (String::new(), "events".to_string())
        } else {
            (self.group.clone(), self.plural.clone())
        }
    }

    /// True for events.k8s.io Events (served converted from core Events).
    pub fn is_events_v1(&self) -> bool {
        self.group == "events.k8s.io" && self.plural == "events"
    }

    /// The version objects are stored and listed in by default.
    pub fn preferred_version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }

    /// The printer columns of `version` (after Name).
    pub fn columns_of(&self, version: &str) -> Option<&[Column]> {
        self.columns
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, columns)| columns.as_slice())
    }

    /// The `APIResource` entries of discovery (the resource and `/status`).
    pub fn discovery(&self) -> Vec<Value> {
        let verbs = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        let mut entries = vec![main];
        if self.status_subresource {
            entries.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.builtin
            && matches!(
                self.plural.as_str(),
                "deployments" | "statefulsets" | "replicasets"
            )
        {
            entries.push(json!({
                "name": format!("{}/scale", self.plural),
                "singularName": "",
                "namespaced": true,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        entries
    }
}

/// (group, version, plural, singular, kind, namespaced, short names,
/// status subresource, categories) of a built-in type.
type BuiltinRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    bool,
    &'static [&'static str],
);

/// The resource types every server starts with.
pub fn builtin() -> Vec<ResourceType> {
    let table: &[BuiltinRow] = &[
        (
            "",
            "v1",
            "namespaces",
            "namespace",
            "Namespace",
            false,
            &["ns"],
            true,
            &[],
        ),
        (
            "",
            "v1",
            "configmaps",
            "configmap",
            "ConfigMap",
            true,
            &["cm"],
            false,
            &[],
        ),
        (
            "",
            "v1",
            "secrets",
            "secret",
            "Secret",
            true,
            &[],
            false,
            &[],
        ),
        (
            "",
            "v1",
            "services",
            "service",
            "Service",
            true,
            &["svc"],
            true,
            &["all"],
        ),
        (
            "",
            "v1",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            &[],
        ),
        (
            "",
            "v1",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            true,
            &[],
        ),
        (
            "",
            "v1",
            "pods",
            "pod",
            "Pod",
            true,
            &["po"],
            true,
            &["all"],
        ),
        (
            "",
            "v1",
            "events",
            "event",
            "Event",
            true,
            &["ev"],
            false,
            &[],
        ),
        (
            "apps",
            "v1",
            "deployments",
            "deployment",
            "Deployment",
            true,
            &["deploy"],
            true,
            &["all"],
        ),
        (
            "apps",
            "v1",
            "statefulsets",
            "statefulset",
            "StatefulSet",
            true,
            &["sts"],
            true,
            &["all"],
        ),
        (
            "batch",
            "v1",
            "jobs",
            "job",
            "Job",
            true,
            &[],
            true,
            &["all"],
        ),
        (
            "apps",
            "v1",
            "replicasets",
            "replicaset",
            "ReplicaSet",
            true,
            &["rs"],
            true,
            &["all"],
        ),
        (
            "apps",
            "v1",
            "daemonsets",
            "daemonset",
            "DaemonSet",
            true,
            &["ds"],
            true,
            &["all"],
        ),
        (
            "",
            "v1",
            "endpoints",
            "endpoints",
            "Endpoints",
            true,
            &["ep"],
            false,
            &[],
        ),
        (
            "policy",
            "v1",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            true,
            &[],
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "role",
            "Role",
            true,
            &[],
            false,
            &[],
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "rolebinding",
            "RoleBinding",
            true,
            &[],
            false,
            &[],
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "clusterrole",
            "ClusterRole",
            false,
            &[],
            false,
            &[],
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            false,
            &[],
            false,
            &[],
        ),
        (
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "networkpolicy",
            "NetworkPolicy",
            true,
            &["netpol"],
            false,
            &[],
        ),
        (
            "coordination.k8s.io",
            "v1",
            "leases",
            "lease",
            "Lease",
            true,
            &[],
            false,
            &[],
        ),
        (
            "events.k8s.io",
            "v1",
            "events",
            "event",
            "Event",
            true,
            &["ev"],
            false,
            &[],
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
            &[],
        ),
    ];
    table
        .iter()
        .map(
            |&(group, version, plural, singular, kind, namespaced, short, status, categories)| {
                ResourceType {
                    group: group.to_string(),
                    versions: vec![version.to_string()],
                    plural: plural.to_string(),
                    singular: singular.to_string(),
                    kind: kind.to_string(),
                    list_kind: format!("{kind}List"),
                    namespaced,
                    short_names: short.iter().map(|s| s.to_string()).collect(),
                    categories: categories.iter().map(|s| s.to_string()).collect(),
                    status_subresource: status,
                    columns: Vec::new(),
                    builtin: true,
                }
            },
        )
        .collect()
}

/// The resource a CRD object registers, or why it registers none.
pub fn from_crd(crd: &Value) -> Result<ResourceType, String> {
    let spec = &crd["spec"];
    let text = |v: &Value| v.as_str().map(str::to_string);
    let group = text(&spec["group"]).ok_or("spec.group: Required value")?;
    let names = &spec["names"];
    let plural = text(&names["plural"]).ok_or("spec.names.plural: Required value")?;
    let kind = text(&names["kind"]).ok_or("spec.names.kind: Required value")?;
    let singular = text(&names["singular"]).unwrap_or_else(|| kind.to_lowercase());
    let list_kind = text(&names["listKind"]).unwrap_or_else(|| format!("{kind}List"));
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let scope = spec["scope"].as_str().unwrap_or("Namespaced");
    let expected_name = format!("{plural}.{group}");
    if crd["metadata"]["name"].as_str() != Some(expected_name.as_str()) {
        return Err(format!(
            "metadata.name: Invalid value: must be spec.names.plural+\".\"+spec.group ({expected_name})"
        ));
    }
    let mut versions: Vec<&Value> = spec["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|v| v["served"].as_bool().unwrap_or(false))
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        return Err("spec.versions: Invalid value: must have at least one served version".into());
    }
    versions.sort_by(|a, b| {
        version_priority(
            a["name"].as_str().unwrap_or(""),
            b["name"].as_str().unwrap_or(""),
        )
    });
    let storage = spec["versions"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["storage"].as_bool() == Some(true)))
        .or(versions.first().copied());
    let status_subresource = storage.is_some_and(|v| v["subresources"]["status"].is_object());
    let columns = versions
        .iter()
        .map(|v| {
            let columns = v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .filter_map(|c| {
                            Some(Column {
                                name: c["name"].as_str()?.to_string(),
                                kind: c["type"].as_str().unwrap_or("string").to_string(),
                                format: c["format"].as_str().unwrap_or("").to_string(),
                                priority: c["priority"].as_i64().unwrap_or(0),
                                description: c["description"].as_str().unwrap_or("").to_string(),
                                json_path: c["jsonPath"].as_str()?.to_string(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_else(age_column);
            (v["name"].as_str().unwrap_or("").to_string(), columns)
        })
        .collect();
    Ok(ResourceType {
        group,
        versions: versions
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect(),
        plural,
        singular,
        kind,
        list_kind,
        namespaced: scope != "Cluster",
        short_names: strings(&names["shortNames"]),
        categories: strings(&names["categories"]),
        status_subresource,
        columns,
        builtin: false,
    })
}

/// The column a resource without printer columns shows after Name.
pub fn age_column() -> Vec<Column> {
    vec![Column {
        name: "Age".to_string(),
        kind: "date".to_string(),
        format: String::new(),
        priority: 0,
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.".to_string(),
        json_path: ".metadata.creationTimestamp".to_string(),
    }]
}

/// Kubernetes version order: GA before beta before alpha, higher numbers
/// first, anything else after, alphabetically.
pub fn version_priority(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (stage, n) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        Some((major, stage, n.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, sa, na)), Some((mb, sb, nb))) => sb.cmp(&sa).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ga_versions_come_before_beta_and_alpha() {
        let mut versions = vec!["v1alpha1", "v2beta1", "v1", "v1beta2", "v2", "foo"];
        versions.sort_by(|a, b| version_priority(a, b));
        assert_eq!(
            versions,
            ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]
        );
    }

    #[test]
    fn the_stack_crd_registers_a_namespaced_resource_with_its_columns() {
        let text = std::fs::read_to_string(crate::workspace_root().join("crds/stack.yaml"))
            .expect("crds/stack.yaml");
        let crd: Value = serde_saphyr::from_str(&text).expect("yaml");
        let rt = from_crd(&crd).expect("a valid CRD");
        assert_eq!(rt.plural, "stacks");
        assert!(rt.namespaced);
        assert!(rt.status_subresource);
        assert_eq!(rt.short_names, ["stk"]);
        let names: Vec<&str> = rt
            .columns_of("v1alpha1")
            .unwrap_or_default()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["Ready", "Services", "Age"]);
    }
}
