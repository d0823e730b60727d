//! What a Kubernetes RBAC authorizer is asked about each logged request, and
//! whether a set of Roles, ClusterRoles and their bindings allows it. The
//! server authorizes nothing itself; tests read the request log through
//! this to prove that a ServiceAccount's grants cover what a client did,
//! and that nothing more is granted.
//!
//! The attributes follow the API server's request-info rules: GET of an
//! object is `get`, of a collection `list`, either with a `watch` parameter
//! other than `0`/`false` is `watch`; POST `create`, PUT `update`, PATCH
//! `patch`, DELETE of an object `delete` and of a collection
//! `deletecollection`. The resource is the plural, with `/subresource`
//! appended; the core group is `""`. A list or watch with the field
//! selector `metadata.name=` is about that name (so `resourceNames`
//! apply). A server-side apply that created its object (201) is also
//! authorized as `create`, as the API server does before it creates.

use std::fmt;

use serde_json::Value;

use super::faults::{RequestRecord, Verb};
use super::http::{parse_query, parse_route, Route};

impl Verb {
    /// The verb as RBAC rules spell it.
    pub fn rbac_name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// The attributes RBAC authorizes one resource request by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection` (or any verb a Role names, for implied checks).
    pub verb: String,
    /// The API group; `""` for the core group.
    pub group: String,
    /// The plural, or `plural/subresource`.
    pub resource: String,
    /// The namespace; `None` for a cluster-scoped object or a request
    /// across all namespaces (which only a ClusterRole can grant).
    pub namespace: Option<String>,
    /// The object's name, when the request is about one.
    pub name: Option<String>,
}

impl Access {
    /// `verb group/resource`, without where: the key an unused grant is
    /// looked up by.
    pub fn what(&self) -> (String, String, String) {
        (self.verb.clone(), self.group.clone(), self.resource.clone())
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {group}/{}", self.verb, self.resource)?;
        if let Some(name) = &self.name {
            write!(f, " {name}")?;
        }
        match &self.namespace {
            Some(namespace) => write!(f, " in namespace {namespace}"),
            None => write!(f, " cluster-wide"),
        }
    }
}

/// Whether a `watch` query parameter makes a GET a watch: present, and
/// not `0` or `false` (as the API server reads it).
fn is_watch(query: &[(String, String)]) -> bool {
    query
        .iter()
        .find(|(key, _)| key == "watch")
        .is_some_and(|(_, value)| !matches!(value.to_ascii_lowercase().as_str(), "0" | "false"))
}

/// The verb of a request: `None` for a method RBAC has no verb for.
pub fn verb_of(method: &str, named: bool, query: &str) -> Option<Verb> {
    let query = parse_query(query);
    Some(match (method, named) {
        ("GET", _) if is_watch(&query) => Verb::Watch,
        ("GET", true) => Verb::Get,
        ("GET", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", _) => Verb::Update,
        ("PATCH", _) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return None,
    })
}

/// What RBAC is asked about a request; `None` for a request that is not
/// about a resource (discovery, `/version`, OpenAPI, health).
pub fn access(method: &str, path: &str, query: &str) -> Option<Access> {
    let Some(Route::Resource(target)) = parse_route(path) else {
        return None;
    };
    let verb = verb_of(method, target.name.is_some(), query)?;
    let resource = match &target.subresource {
        Some(sub) => format!("{}/{sub}", target.plural),
        None => target.plural.clone(),
    };
    let mut name = target.name.clone();
    if name.is_none() && matches!(verb, Verb::List | Verb::Watch) {
        // A list or watch of one name by field selector is about that name.
        name = parse_query(query)
            .into_iter()
            .find(|(key, _)| key == "fieldSelector")
            .and_then(|(_, selector)| {
                selector
                    .split(',')
                    .find_map(|term| term.strip_prefix("metadata.name=").map(str::to_string))
            });
    }
    let mut namespace = target.namespace.clone();
    if target.group.is_empty() && target.plural == "namespaces" {
        // A namespace is its own namespace, to RBAC.
        namespace = target.name.clone();
    }
    Some(Access {
        verb: verb.rbac_name().to_string(),
        group: target.group,
        resource,
        namespace,
        name,
    })
}

impl RequestRecord {
    /// Every RBAC check the API server makes for this request: the
    /// request's own, and `create` for a server-side apply that created
    /// its object (201).
    pub fn accesses(&self) -> Vec<Access> {
        let Some(main) = access(&self.method, &self.path, &self.query) else {
            return Vec::new();
        };
        let creates = main.verb == "patch" && self.status == 201;
        let mut out = vec![main.clone()];
        if creates {
            out.push(Access {
                verb: "create".into(),
                ..main
            });
        }
        out
    }
}

/// Why RBAC objects could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// A field the object must have is missing or of the wrong type.
    #[error("{object}: {field} is missing or malformed")]
    Malformed {
        /// `Kind/name`.
        object: String,
        /// The field.
        field: &'static str,
    },
    /// A binding refers to a role that is not among the objects.
    #[error("{binding} refers to {role}, which is not among the objects")]
    NoSuchRole {
        /// `Kind/name` of the binding.
        binding: String,
        /// `Kind/name` of the role.
        role: String,
    },
}

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `apiGroups`.
    pub groups: Vec<String>,
    /// `resources`.
    pub resources: Vec<String>,
    /// `verbs`.
    pub verbs: Vec<String>,
    /// `resourceNames`; empty: any name.
    pub names: Vec<String>,
}

impl Rule {
    /// Whether the rule allows `access`, wherever it applies. `*` matches
    /// any verb, group or resource (subresources included), `*/sub` any
    /// resource's subresource `sub`; with `resourceNames`, only requests
    /// about one of those names match.
    pub fn allows(&self, access: &Access) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
        let subresource = access.resource.split_once('/').map(|(_, sub)| sub);
        let resource = self.resources.iter().any(|r| {
            r == "*"
                || *r == access.resource
                || subresource.is_some_and(|sub| r.strip_prefix("*/") == Some(sub))
        });
        let named = self.names.is_empty()
            || access
                .name
                .as_ref()
                .is_some_and(|name| self.names.contains(name));
        any(&self.verbs, &access.verb) && any(&self.groups, &access.group) && resource && named
    }

    /// The rules of a Role or ClusterRole object.
    pub fn of_role(role: &Value) -> Result<Vec<Rule>, RbacError> {
        let object = object_name(role);
        let strings = |rule: &Value, field: &'static str, required: bool| {
            match rule.get(field) {
                None | Some(Value::Null) if !required => Some(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>(),
                _ => None,
            }
            .ok_or(RbacError::Malformed {
                object: object.clone(),
                field,
            })
        };
        let Some(rules) = role.get("rules") else {
            return Ok(Vec::new());
        };
        let rules = rules.as_array().ok_or(RbacError::Malformed {
            object: object.clone(),
            field: "rules",
        })?;
        rules
            .iter()
            .map(|rule| {
                Ok(Rule {
                    groups: strings(rule, "apiGroups", false)?,
                    resources: strings(rule, "resources", false)?,
                    verbs: strings(rule, "verbs", true)?,
                    names: strings(rule, "resourceNames", false)?,
                })
            })
            .collect()
    }
}

fn object_name(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Where a rule applies: everywhere (a ClusterRole bound by a
/// ClusterRoleBinding), or in one namespace (bound by a RoleBinding).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Every namespace and cluster-wide requests.
    Cluster,
    /// This namespace only.
    Namespace(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Cluster => write!(f, "cluster-wide"),
            Scope::Namespace(namespace) => write!(f, "in namespace {namespace}"),
        }
    }
}

/// One `(verb, group, resource)` a rule grants, where, and to which names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `(verb, group, resource)`, as [`Access::what`] gives them.
    pub what: (String, String, String),
    /// Where the rule applies.
    pub scope: Scope,
    /// `resourceNames`; empty: any name.
    pub names: Vec<String>,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, group, resource) = &self.what;
        write!(f, "{verb} {group}/{resource} {}", self.scope)?;
        if !self.names.is_empty() {
            write!(f, " {:?}", self.names)?;
        }
        Ok(())
    }
}

/// The rules bound to one subject, as RBAC evaluates them.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Each rule and where it applies.
    pub rules: Vec<(Scope, Rule)>,
}

impl Grants {
    /// The rules that the bindings among `objects` (Roles, ClusterRoles,
    /// RoleBindings, ClusterRoleBindings as JSON; other kinds are
    /// ignored) give the ServiceAccount `namespace/name`.
    pub fn for_service_account(
        objects: &[Value],
        namespace: &str,
        name: &str,
    ) -> Result<Self, RbacError> {
        let mut grants = Grants::default();
        for binding in objects {
            let kind = binding["kind"].as_str().unwrap_or("");
            if kind != "RoleBinding" && kind != "ClusterRoleBinding" {
                continue;
            }
            let binds_it = binding["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| {
                    s["kind"] == "ServiceAccount"
                        && s["name"] == name
                        && s["namespace"] == namespace
                });
            if !binds_it {
                continue;
            }
            let binding_name = object_name(binding);
            let role_kind = binding["roleRef"]["kind"]
                .as_str()
                .ok_or(RbacError::Malformed {
                    object: binding_name.clone(),
                    field: "roleRef.kind",
                })?;
            let role_name = binding["roleRef"]["name"]
                .as_str()
                .ok_or(RbacError::Malformed {
                    object: binding_name.clone(),
                    field: "roleRef.name",
                })?;
            let binding_namespace = binding["metadata"]["namespace"].as_str();
            let role = objects.iter().find(|o| {
                o["kind"] == role_kind
                    && o["metadata"]["name"] == role_name
                    && (role_kind == "ClusterRole"
                        || o["metadata"]["namespace"].as_str() == binding_namespace)
            });
            let role = role.ok_or_else(|| RbacError::NoSuchRole {
                binding: binding_name.clone(),
                role: format!("{role_kind}/{role_name}"),
            })?;
            let scope = match (kind, binding_namespace) {
                ("ClusterRoleBinding", _) => Scope::Cluster,
                (_, Some(ns)) => Scope::Namespace(ns.to_string()),
                (_, None) => {
                    return Err(RbacError::Malformed {
                        object: binding_name,
                        field: "metadata.namespace",
                    })
                }
            };
            for rule in Rule::of_role(role)? {
                grants.rules.push((scope.clone(), rule));
            }
        }
        Ok(grants)
    }

    /// Whether some rule allows `access` where it applies.
    pub fn allows(&self, access: &Access) -> bool {
        self.rules.iter().any(|(scope, rule)| {
            let here = match scope {
                Scope::Cluster => true,
                Scope::Namespace(ns) => access.namespace.as_deref() == Some(ns.as_str()),
            };
            here && rule.allows(access)
        })
    }

    /// Every `(verb, group, resource)` some rule names, with where and the
    /// rule's `resourceNames`.
    pub fn entries(&self) -> Vec<Grant> {
        let mut out = Vec::new();
        for (scope, rule) in &self.rules {
            for verb in &rule.verbs {
                for group in &rule.groups {
                    for resource in &rule.resources {
                        out.push(Grant {
                            what: (verb.clone(), group.clone(), resource.clone()),
                            scope: scope.clone(),
                            names: rule.names.clone(),
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(method: &str, path: &str, query: &str) -> String {
        access(method, path, query).map_or("none".into(), |a| a.to_string())
    }

    #[test]
    fn each_method_and_path_shape_maps_to_its_rbac_verb() {
        let cases = [
            (
                "GET",
                "/apis/apps/v1/namespaces/shop/deployments/web",
                "",
                "get apps/deployments web in namespace shop",
            ),
            (
                "GET",
                "/apis/apps/v1/namespaces/shop/deployments",
                "labelSelector=a%3Db",
                "list apps/deployments in namespace shop",
            ),
            (
                "GET",
                "/apis/apps/v1/deployments",
                "watch=true&resourceVersion=5",
                "watch apps/deployments cluster-wide",
            ),
            (
                "GET",
                "/apis/apps/v1/deployments",
                "watch=1",
                "watch apps/deployments cluster-wide",
            ),
            (
                "GET",
                "/apis/apps/v1/deployments",
                "watch=false",
                "list apps/deployments cluster-wide",
            ),
            (
                "GET",
                "/apis/apps/v1/deployments",
                "watch=0",
                "list apps/deployments cluster-wide",
            ),
            (
                "GET",
                "/apis/apps/v1/namespaces/shop/deployments/web",
                "watch=true",
                "watch apps/deployments web in namespace shop",
            ),
            (
                "POST",
                "/api/v1/namespaces/shop/configmaps",
                "",
                "create core/configmaps in namespace shop",
            ),
            (
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/sys/leases/stackd",
                "",
                "update coordination.k8s.io/leases stackd in namespace sys",
            ),
            (
                "PATCH",
                "/apis/stackd.dev/v1alpha1/namespaces/shop/stacks/shop/status",
                "",
                "patch stackd.dev/stacks/status shop in namespace shop",
            ),
            (
                "PATCH",
                "/api/v1/namespaces/shop/services/web",
                "fieldManager=stackd&force=true",
                "patch core/services web in namespace shop",
            ),
            (
                "DELETE",
                "/api/v1/namespaces/shop/secrets/key",
                "",
                "delete core/secrets key in namespace shop",
            ),
            (
                "DELETE",
                "/api/v1/namespaces/shop/secrets",
                "",
                "deletecollection core/secrets in namespace shop",
            ),
            (
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
                "",
                "get rbac.authorization.k8s.io/clusterroles admin cluster-wide",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop",
                "",
                "get core/namespaces shop in namespace shop",
            ),
            (
                "GET",
                "/api/v1/namespaces/sys/leases",
                "fieldSelector=metadata.name%3Dstackd",
                "list core/leases stackd in namespace sys",
            ),
            ("GET", "/apis", "", "none"),
            ("GET", "/apis/apps/v1", "", "none"),
            ("GET", "/version", "", "none"),
            ("OPTIONS", "/api/v1/namespaces/shop/secrets", "", "none"),
        ];
        for (method, path, query, expected) in cases {
            assert_eq!(of(method, path, query), expected, "{method} {path}?{query}");
        }
    }

    fn record(method: &str, path: &str, status: u16) -> RequestRecord {
        RequestRecord {
            method: method.into(),
            path: path.into(),
            query: "fieldManager=stackd".into(),
            verb: None,
            resource: None,
            field_manager: Some("stackd".into()),
            user_agent: None,
            status,
            at: std::time::Instant::now(),
        }
    }

    #[test]
    fn an_apply_that_created_its_object_is_also_authorized_as_create() {
        let path = "/apis/apps/v1/namespaces/shop/deployments/web";
        let verbs = |status| -> Vec<String> {
            record("PATCH", path, status)
                .accesses()
                .into_iter()
                .map(|a| a.verb)
                .collect()
        };
        assert_eq!(verbs(201), ["patch", "create"]);
        assert_eq!(verbs(200), ["patch"]);
        assert_eq!(verbs(500), ["patch"]);
        assert!(record("GET", "/api", 200).accesses().is_empty());
    }

    fn chart(scope_cluster: bool) -> Vec<Value> {
        let rules = json!([
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list", "patch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["only"]},
            {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["*"]},
        ]);
        let subject = json!([{"kind": "ServiceAccount", "name": "ctl", "namespace": "sys"}]);
        let (role, binding) = if scope_cluster {
            ("ClusterRole", "ClusterRoleBinding")
        } else {
            ("Role", "RoleBinding")
        };
        vec![
            json!({"kind": role, "metadata": {"name": "ctl", "namespace": "sys"}, "rules": rules}),
            json!({"kind": binding, "metadata": {"name": "ctl", "namespace": "sys"},
                   "roleRef": {"kind": role, "name": "ctl"}, "subjects": subject}),
            json!({"kind": "Role", "metadata": {"name": "lease", "namespace": "sys"},
                   "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "lease", "namespace": "sys"},
                   "roleRef": {"kind": "Role", "name": "lease"}, "subjects": subject}),
            json!({"kind": "RoleBinding", "metadata": {"name": "other", "namespace": "sys"},
                   "roleRef": {"kind": "Role", "name": "lease"},
                   "subjects": [{"kind": "ServiceAccount", "name": "else", "namespace": "sys"}]}),
        ]
    }

    fn allowed(grants: &Grants, method: &str, path: &str, query: &str) -> bool {
        grants.allows(&access(method, path, query).unwrap())
    }

    #[test]
    fn a_cluster_role_binding_grants_everywhere_and_a_role_binding_in_its_namespace() {
        let cluster = Grants::for_service_account(&chart(true), "sys", "ctl").unwrap();
        let namespaced = Grants::for_service_account(&chart(false), "sys", "ctl").unwrap();
        for grants in [&cluster, &namespaced] {
            assert!(allowed(
                grants,
                "GET",
                "/apis/apps/v1/namespaces/sys/deployments",
                ""
            ));
            assert!(!allowed(
                grants,
                "GET",
                "/apis/apps/v1/namespaces/sys/deployments/web",
                ""
            ));
            assert!(allowed(
                grants,
                "GET",
                "/apis/coordination.k8s.io/v1/namespaces/sys/leases/l",
                ""
            ));
            assert!(!allowed(
                grants,
                "GET",
                "/apis/coordination.k8s.io/v1/namespaces/app/leases/l",
                ""
            ));
            assert!(allowed(
                grants,
                "GET",
                "/api/v1/namespaces/sys/configmaps/only",
                ""
            ));
            assert!(!allowed(
                grants,
                "GET",
                "/api/v1/namespaces/sys/configmaps/other",
                ""
            ));
            assert!(!allowed(
                grants,
                "GET",
                "/api/v1/namespaces/sys/configmaps",
                ""
            ));
            assert!(allowed(
                grants,
                "PUT",
                "/apis/apps/v1/namespaces/sys/deployments/web/scale",
                ""
            ));
            assert!(!allowed(
                grants,
                "PUT",
                "/apis/apps/v1/namespaces/sys/deployments/web/status",
                ""
            ));
        }
        assert!(allowed(
            &cluster,
            "GET",
            "/apis/apps/v1/deployments",
            "watch=false"
        ));
        assert!(allowed(
            &cluster,
            "PATCH",
            "/apis/apps/v1/namespaces/app/deployments/web",
            ""
        ));
        assert!(!allowed(
            &namespaced,
            "GET",
            "/apis/apps/v1/deployments",
            ""
        ));
        assert!(!allowed(
            &namespaced,
            "PATCH",
            "/apis/apps/v1/namespaces/app/deployments/web",
            ""
        ));
        // The other ServiceAccount's binding gives this one nothing.
        assert_eq!(namespaced.rules.len(), 4);
        let entries: Vec<String> = cluster.entries().iter().map(ToString::to_string).collect();
        assert_eq!(
            entries,
            [
                "list apps/deployments cluster-wide",
                "patch apps/deployments cluster-wide",
                "get /configmaps cluster-wide [\"only\"]",
                "* */*/scale cluster-wide",
                "get coordination.k8s.io/leases in namespace sys",
            ]
        );
    }

    #[test]
    fn a_binding_to_a_missing_role_or_a_rule_without_verbs_is_an_error() {
        let mut objects = chart(false);
        objects.remove(0);
        assert!(matches!(
            Grants::for_service_account(&objects, "sys", "ctl"),
            Err(RbacError::NoSuchRole { .. })
        ));
        let role =
            json!({"kind": "Role", "metadata": {"name": "r"}, "rules": [{"apiGroups": [""]}]});
        assert!(matches!(
            Rule::of_role(&role),
            Err(RbacError::Malformed { field: "verbs", .. })
        ));
    }
}
