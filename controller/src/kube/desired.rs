//! From a `Stack` to the objects the controller keeps in the cluster, and
//! which live objects it may remove. Pure: the Stack and the live objects
//! are given, nothing is read or written.
//!
//! # Ownership
//!
//! Every object is created in the Stack's namespace, carries the labels of
//! [`crate::kube::translate`] (`app.kubernetes.io/part-of` is the Stack's
//! name, `app.kubernetes.io/managed-by` is `stackd`) and an owner reference
//! to the Stack (`controller: true`), so that the garbage collector removes
//! it with the Stack. The exception is PersistentVolumeClaims of named
//! volumes: safety rule 7 keeps data, so a claim carries the labels but no
//! owner reference, is never pruned, and is deleted with its Stack only
//! when the Stack has the annotation [`DELETE_VOLUMES`]` = "true"`.
//!
//! # Pruning (safety rule 2)
//!
//! [`prune_set`] takes a [`Desired`], which only exists when the whole
//! Stack resolved, passed the policy and translated without error; it
//! refuses an empty desired set, and it only ever names objects that carry
//! the Stack's labels *and* an owner reference to the Stack's uid.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::policy::{Policy, Violation};
use super::translate::{
    label_value, translate, Object, TranslateError, TranslateOptions, Warning, MANAGED_BY, NAME,
    PART_OF,
};
use crate::model::stack::{Stack, API_VERSION, KIND};
use crate::model::Project;

/// Stack annotation: `"true"` makes deleting the Stack delete its
/// PersistentVolumeClaims too (the cluster's `down -v`).
pub const DELETE_VOLUMES: &str = "stackd.dev/delete-volumes";

/// Why a Stack has no desired set: each is a problem with the Stack
/// itself, fixed only by changing it (the Stack is Stalled).
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The Stack has no name, namespace or uid (not read from a server).
    #[error("the Stack has no {0}")]
    Incomplete(&'static str),
    /// `spec.composeFiles` names files, which only file mode can read.
    #[error("spec.composeFiles is for file mode; in a cluster the Stack needs spec.compose (see `stackd wrap`)")]
    ComposeFilesInCluster,
    /// Neither `spec.compose` nor `spec.composeFiles`.
    #[error("spec.compose is missing")]
    NoCompose,
    /// No service is left once profiles are applied.
    #[error("the Stack has no services (an empty desired set is refused)")]
    NoServices,
    /// A dependency names a service that is not in the Stack.
    #[error("service {service}: depends_on {dependency}: no such service")]
    UnknownDependency {
        /// The dependent service.
        service: String,
        /// What it names.
        dependency: String,
    },
    /// `service_healthy` on a service that has no healthcheck could never be met.
    #[error("service {service}: depends_on {dependency} with service_healthy, but {dependency} has no healthcheck")]
    HealthyWithoutHealthcheck {
        /// The dependent service.
        service: String,
        /// The dependency.
        dependency: String,
    },
    /// Services depend on each other in a circle.
    #[error("depends_on forms a cycle: {0}")]
    DependencyCycle(String),
    /// The policy refuses some fields.
    #[error("{}", join(.0))]
    PolicyRefused(Vec<Violation>),
    /// The model cannot be translated.
    #[error(transparent)]
    Translate(#[from] TranslateError),
}

fn join(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl StackError {
    /// A short snake_case word for metric labels; [`Self::condition_reason`]
    /// is the status reason.
    pub fn reason(&self) -> &'static str {
        match self {
            StackError::Incomplete(_) => "incomplete",
            StackError::ComposeFilesInCluster | StackError::NoCompose => "invalid_spec",
            StackError::NoServices => "empty_stack",
            StackError::UnknownDependency { .. }
            | StackError::HealthyWithoutHealthcheck { .. }
            | StackError::DependencyCycle(_) => "invalid_dependency",
            StackError::PolicyRefused(_) => "policy_refused",
            StackError::Translate(e) => e.reason(),
        }
    }

    /// The `CamelCase` reason of the Stalled condition.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            StackError::PolicyRefused(_) => "PolicyRefused",
            StackError::Translate(_) => "TranslateFailed",
            StackError::NoServices => "EmptyStack",
            _ => "InvalidSpec",
        }
    }
}

/// The Stack's identity, as owner of what it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRef {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
}

impl StackRef {
    /// The identity of a Stack read from a server.
    pub fn of(stack: &Stack) -> Result<Self, StackError> {
        let meta = &stack.metadata;
        Ok(StackRef {
            name: meta.name.clone().ok_or(StackError::Incomplete("name"))?,
            namespace: meta
                .namespace
                .clone()
                .ok_or(StackError::Incomplete("namespace"))?,
            uid: meta.uid.clone().ok_or(StackError::Incomplete("uid"))?,
        })
    }

    /// `namespace/name`, the key metrics and logs use.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The label selector matching every object made for this Stack.
    pub fn selector(&self) -> String {
        format!("{PART_OF}={},{MANAGED_BY}=stackd", label_value(&self.name))
    }

    /// The owner reference objects of this Stack carry.
    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

impl fmt::Display for StackRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The compose project a Stack asks for: `spec.compose` named after the
/// Stack, with the services of inactive profiles left out, checked for
/// what could never run (dependencies on missing services, cycles,
/// `service_healthy` without a healthcheck, no services at all).
pub fn resolve(stack: &Stack) -> Result<Project, StackError> {
    let spec = &stack.spec;
    let Some(compose) = &spec.compose else {
        return Err(if spec.compose_files.is_some() {
            StackError::ComposeFilesInCluster
        } else {
            StackError::NoCompose
        });
    };
    let mut project = compose.clone();
    project.name = stack.metadata.name.clone().unwrap_or_default();
    let active: BTreeSet<&str> = spec.profiles.iter().map(String::as_str).collect();
    project.services.retain(|_, service| {
        service.profiles.is_empty() || service.profiles.iter().any(|p| active.contains(p.as_str()))
    });
    if project.services.is_empty() {
        return Err(StackError::NoServices);
    }
    let names: BTreeSet<String> = project.services.keys().cloned().collect();
    for (name, service) in &mut project.services {
        // An optional dependency on a service that is not there (another
        // profile) is dropped, as compose drops it.
        service
            .depends_on
            .retain(|dependency, d| d.required || names.contains(dependency));
        for dependency in service.depends_on.keys() {
            if !names.contains(dependency) {
                return Err(StackError::UnknownDependency {
                    service: name.clone(),
                    dependency: dependency.clone(),
                });
            }
        }
    }
    for (name, service) in &project.services {
        for (dependency, d) in &service.depends_on {
            let checked = project.services.get(dependency).and_then(|s| {
                s.healthcheck
                    .as_ref()
                    .filter(|h| !h.disable && h.test.first().map(String::as_str) != Some("NONE"))
            });
            if d.condition == "service_healthy" && checked.is_none() {
                return Err(StackError::HealthyWithoutHealthcheck {
                    service: name.clone(),
                    dependency: dependency.clone(),
                });
            }
        }
    }
    if let Some(cycle) = find_cycle(&project) {
        return Err(StackError::DependencyCycle(cycle.join(" -> ")));
    }
    Ok(project)
}

fn find_cycle(project: &Project) -> Option<Vec<String>> {
    fn visit(
        project: &Project,
        name: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == name) {
            let mut cycle = path[start..].to_vec();
            cycle.push(name.to_string());
            return Some(cycle);
        }
        if done.contains(name) {
            return None;
        }
        path.push(name.to_string());
        if let Some(service) = project.services.get(name) {
            for dependency in service.depends_on.keys() {
                if let Some(cycle) = visit(project, dependency, path, done) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        done.insert(name.to_string());
        None
    }
    let mut done = BTreeSet::new();
    project
        .services
        .keys()
        .find_map(|name| visit(project, name, &mut Vec::new(), &mut done))
}

/// A kind and a name: one object in the Stack's namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The kind (`Deployment`).
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

impl ObjectKey {
    /// The key of a translated object.
    pub fn of(object: &Object) -> Self {
        ObjectKey {
            kind: object.kind().into(),
            name: object.name().into(),
        }
    }
}

/// What the controller keeps in the cluster for one Stack.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The Stack.
    pub stack: StackRef,
    /// The resolved project.
    pub project: Project,
    /// Every object, namespaced, labelled and owned, in apply order.
    pub objects: Vec<Object>,
    /// The workload of each service that runs one (not `provider`
    /// services).
    pub workloads: BTreeMap<String, ObjectKey>,
    /// What did not carry over to Kubernetes.
    pub warnings: Vec<Warning>,
}

/// The desired set of a Stack: resolved, checked against `policy`,
/// translated (with the policy's allowances), each object placed in the
/// Stack's namespace and owned by it.
pub fn desired(
    stack: &Stack,
    policy: &Policy,
    wait_image: Option<&str>,
) -> Result<Desired, StackError> {
    let owner = StackRef::of(stack)?;
    let project = resolve(stack)?;
    let violations = policy.check(&project);
    if !violations.is_empty() {
        return Err(StackError::PolicyRefused(violations));
    }
    let options = TranslateOptions {
        namespace: Some(owner.namespace.clone()),
        allow_host_path: policy.allow_host_path,
        allow_host_network: policy.allow_host_network,
        allow_host_pid: policy.allow_host_pid,
        allow_host_ipc: policy.allow_host_ipc,
        wait_image: wait_image.map(str::to_string),
        // Secret and config files live on no disk the controller can read;
        // the translation warns about each one.
        contents: Default::default(),
    };
    let translation = translate(&project, &options)?;
    let mut objects = translation.objects;
    for object in &mut objects {
        let is_claim = matches!(object, Object::PersistentVolumeClaim(_));
        let meta = object.metadata_mut();
        meta.namespace = Some(owner.namespace.clone());
        if !is_claim {
            meta.owner_references = Some(vec![owner.owner_reference()]);
        }
    }
    let mut workloads = BTreeMap::new();
    for object in &objects {
        if !is_workload(object.kind()) {
            continue;
        }
        let label = object
            .metadata()
            .labels
            .as_ref()
            .and_then(|l| l.get(NAME))
            .cloned()
            .unwrap_or_default();
        let service = project
            .services
            .keys()
            .find(|name| label_value(name) == label);
        if let Some(service) = service {
            workloads.insert(service.clone(), ObjectKey::of(object));
        }
    }
    if objects.is_empty() {
        return Err(StackError::NoServices);
    }
    Ok(Desired {
        stack: owner,
        project,
        objects,
        workloads,
        warnings: translation.warnings,
    })
}

/// Whether objects of `kind` run a service's pods.
pub fn is_workload(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "Job")
}

/// What the controller needs to know of a live object to decide whether
/// it may remove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveObject {
    /// Its kind and name.
    pub key: ObjectKey,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The uids of its owners.
    pub owner_uids: Vec<String>,
}

/// Why nothing may be pruned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneRefused {
    /// The desired set is empty: removing everything is refused (safety
    /// rule 2); only deleting the Stack does that.
    #[error("the desired set is empty; nothing is pruned")]
    EmptyDesiredSet,
}

/// The live objects of the Stack that left the desired set: they carry the
/// Stack's labels and an owner reference to it, and are neither desired
/// nor PersistentVolumeClaims (safety rule 7), by kind then name.
pub fn prune_set(desired: &Desired, live: &[LiveObject]) -> Result<Vec<ObjectKey>, PruneRefused> {
    if desired.objects.is_empty() {
        return Err(PruneRefused::EmptyDesiredSet);
    }
    let wanted: BTreeSet<ObjectKey> = desired.objects.iter().map(ObjectKey::of).collect();
    let part_of = label_value(&desired.stack.name);
    let mut prune: Vec<ObjectKey> = live
        .iter()
        .filter(|o| o.key.kind != "PersistentVolumeClaim")
        .filter(|o| o.labels.get(PART_OF) == Some(&part_of))
        .filter(|o| o.labels.get(MANAGED_BY).map(String::as_str) == Some("stackd"))
        .filter(|o| o.owner_uids.contains(&desired.stack.uid))
        .filter(|o| !wanted.contains(&o.key))
        .map(|o| o.key.clone())
        .collect();
    prune.sort();
    prune.dedup();
    Ok(prune)
}

/// What deleting the Stack deletes: every live object it owns, and its
/// claims when `delete_volumes` (the [`DELETE_VOLUMES`] annotation).
pub fn cleanup_set(stack: &StackRef, live: &[LiveObject], delete_volumes: bool) -> Vec<ObjectKey> {
    let part_of = label_value(&stack.name);
    let mut keys: Vec<ObjectKey> = live
        .iter()
        .filter(|o| o.labels.get(PART_OF) == Some(&part_of))
        .filter(|o| o.labels.get(MANAGED_BY).map(String::as_str) == Some("stackd"))
        .filter(|o| {
            if o.key.kind == "PersistentVolumeClaim" {
                delete_volumes
            } else {
                o.owner_uids.contains(&stack.uid)
            }
        })
        .map(|o| o.key.clone())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Whether the Stack asks for its claims to go with it.
pub fn deletes_volumes(stack: &Stack) -> bool {
    stack
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETE_VOLUMES))
        .is_some_and(|v| v == "true")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::stack::StackSpec;

    pub(crate) fn stack(compose: serde_json::Value) -> Stack {
        let mut stack = Stack::new(
            "shop",
            StackSpec {
                compose: Some(serde_json::from_value(compose).unwrap()),
                ..StackSpec::default()
            },
        );
        stack.metadata.namespace = Some("apps".into());
        stack.metadata.uid = Some("uid-1".into());
        stack.metadata.generation = Some(1);
        stack
    }

    pub(crate) fn shop() -> Stack {
        stack(serde_json::json!({
            "name": "ignored",
            "services": {
                "web": {"image": "nginx", "ports": [{"target": 80, "published": "8080"}],
                        "depends_on": {"db": {"condition": "service_healthy"},
                                       "migrate": {"condition": "service_completed_successfully"}}},
                "db": {"image": "postgres", "healthcheck": {"test": ["CMD", "pg_isready"]},
                       "volumes": [{"type": "volume", "source": "data", "target": "/var/lib/postgresql"}],
                       "ports": [{"target": 5432}]},
                "migrate": {"image": "migrate", "restart": "no", "depends_on": {"db": {"condition": "service_started"}}},
                "cache": {"image": "redis", "volumes": [{"type": "volume", "source": "shared", "target": "/d"}]},
                "worker": {"image": "worker", "volumes": [{"type": "volume", "source": "shared", "target": "/d"}]}
            },
            "volumes": {"data": {}, "shared": {}}
        }))
    }

    fn live(desired: &Desired) -> Vec<LiveObject> {
        desired
            .objects
            .iter()
            .map(|o| LiveObject {
                key: ObjectKey::of(o),
                labels: o.metadata().labels.clone().unwrap_or_default(),
                owner_uids: o
                    .metadata()
                    .owner_references
                    .iter()
                    .flatten()
                    .map(|r| r.uid.clone())
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn every_object_is_in_the_stack_namespace_labelled_and_owned_except_claims() {
        let desired = desired(&shop(), &Policy::default(), None).unwrap();
        assert!(!desired.objects.is_empty());
        for object in &desired.objects {
            let meta = object.metadata();
            assert_eq!(meta.namespace.as_deref(), Some("apps"), "{}", object.name());
            let labels = meta.labels.as_ref().unwrap();
            assert_eq!(labels[MANAGED_BY], "stackd");
            assert_eq!(
                labels[PART_OF], "shop",
                "the project is named after the Stack"
            );
            let owners = meta.owner_references.clone().unwrap_or_default();
            if object.kind() == "PersistentVolumeClaim" {
                assert!(owners.is_empty(), "claims outlive their Stack");
            } else {
                assert_eq!(owners.len(), 1);
                assert_eq!(owners[0].kind, "Stack");
                assert_eq!(owners[0].api_version, "stackd.dev/v1alpha1");
                assert_eq!(owners[0].uid, "uid-1");
                assert_eq!(owners[0].controller, Some(true));
            }
        }
    }

    #[test]
    fn each_service_is_mapped_to_its_workload() {
        let desired = desired(&shop(), &Policy::default(), None).unwrap();
        let kinds: BTreeMap<&str, &str> = desired
            .workloads
            .iter()
            .map(|(s, k)| (s.as_str(), k.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            BTreeMap::from([
                ("cache", "Deployment"),
                ("db", "StatefulSet"),
                ("migrate", "Job"),
                ("web", "Deployment"),
                ("worker", "Deployment"),
            ])
        );
        assert_eq!(desired.workloads["web"].name, "shop-web");
    }

    #[test]
    fn services_of_inactive_profiles_are_left_out_with_their_optional_dependencies() {
        let mut s = stack(serde_json::json!({"services": {
            "web": {"image": "nginx", "depends_on": {"debug": {"condition": "service_started", "required": false}}},
            "debug": {"image": "busybox", "profiles": ["debug"]}
        }}));
        let project = resolve(&s).unwrap();
        assert_eq!(project.services.keys().collect::<Vec<_>>(), ["web"]);
        assert!(project.services["web"].depends_on.is_empty());
        s.spec.profiles = vec!["debug".into()];
        assert_eq!(resolve(&s).unwrap().services.len(), 2);
    }

    #[test]
    fn a_stack_that_could_never_run_is_refused_with_what_is_wrong() {
        let cases = [
            (serde_json::json!({"services": {}}), "no services"),
            (
                serde_json::json!({"services": {"web": {"image": "x", "depends_on": {"db": {"condition": "service_started"}}}}}),
                "depends_on db: no such service",
            ),
            (
                serde_json::json!({"services": {"web": {"image": "x", "depends_on": {"db": {"condition": "service_healthy"}}}, "db": {"image": "y"}}}),
                "db has no healthcheck",
            ),
            (
                serde_json::json!({"services": {
                    "a": {"image": "x", "depends_on": {"b": {"condition": "service_started"}}},
                    "b": {"image": "x", "depends_on": {"a": {"condition": "service_started"}}}}}),
                "cycle: a -> b -> a",
            ),
        ];
        for (compose, expected) in cases {
            let error = desired(&stack(compose), &Policy::default(), None).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{error} lacks {expected}"
            );
        }
        let mut files = stack(serde_json::json!({"services": {"web": {"image": "x"}}}));
        files.spec.compose = None;
        files.spec.compose_files = Some(vec!["compose.yaml".into()]);
        assert!(matches!(
            resolve(&files),
            Err(StackError::ComposeFilesInCluster)
        ));
    }

    #[test]
    fn a_policy_violation_refuses_the_whole_stack() {
        let s = stack(serde_json::json!({"services": {"web": {"image": "x", "privileged": true}}}));
        let error = desired(&s, &Policy::default(), None).unwrap_err();
        assert_eq!(error.condition_reason(), "PolicyRefused");
        assert!(
            error.to_string().contains("service web: privileged"),
            "{error}"
        );
    }

    #[test]
    fn the_prune_set_is_what_left_the_desired_set_and_never_a_claim() {
        let before = desired(&shop(), &Policy::default(), None).unwrap();
        let live_objects = live(&before);
        assert_eq!(
            prune_set(&before, &live_objects).unwrap(),
            Vec::<ObjectKey>::new()
        );
        let mut smaller = shop();
        let compose = smaller.spec.compose.as_mut().unwrap();
        compose.services.remove("cache");
        compose.services.remove("worker");
        compose.volumes.remove("shared");
        let after = desired(&smaller, &Policy::default(), None).unwrap();
        let pruned: Vec<String> = prune_set(&after, &live_objects)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            pruned,
            [
                "Deployment/shop-cache",
                "Deployment/shop-worker",
                "Service/cache",
                "Service/worker"
            ]
        );
        assert!(
            live_objects
                .iter()
                .any(|o| o.key.to_string() == "PersistentVolumeClaim/shop-shared"),
            "the shared volume had a claim"
        );
        assert!(!pruned
            .iter()
            .any(|k| k.starts_with("PersistentVolumeClaim")));
    }

    #[test]
    fn objects_of_other_stacks_or_owners_are_never_pruned() {
        let desired = desired(&shop(), &Policy::default(), None).unwrap();
        let labels = |part_of: &str| {
            BTreeMap::from([
                (PART_OF.to_string(), part_of.to_string()),
                (MANAGED_BY.to_string(), "stackd".to_string()),
            ])
        };
        let stray = |name: &str, labels, owner: &str| LiveObject {
            key: ObjectKey {
                kind: "Deployment".into(),
                name: name.into(),
            },
            labels,
            owner_uids: vec![owner.into()],
        };
        let live_objects = vec![
            stray("other-stack", labels("other"), "uid-1"),
            stray("other-owner", labels("shop"), "uid-2"),
            stray("hand-made", BTreeMap::new(), "uid-1"),
            stray("gone", labels("shop"), "uid-1"),
        ];
        let pruned = prune_set(&desired, &live_objects).unwrap();
        assert_eq!(pruned.len(), 1);
        assert_eq!(pruned[0].name, "gone");
    }

    #[test]
    fn an_empty_desired_set_prunes_nothing() {
        let mut empty = desired(&shop(), &Policy::default(), None).unwrap();
        let live_objects = live(&empty);
        empty.objects.clear();
        assert_eq!(
            prune_set(&empty, &live_objects),
            Err(PruneRefused::EmptyDesiredSet)
        );
    }

    #[test]
    fn deleting_a_stack_keeps_its_claims_unless_it_asks_for_them() {
        let mut s = shop();
        let desired = desired(&s, &Policy::default(), None).unwrap();
        let live_objects = live(&desired);
        let claims = |keys: &[ObjectKey]| {
            keys.iter()
                .filter(|k| k.kind == "PersistentVolumeClaim")
                .count()
        };
        assert!(!deletes_volumes(&s));
        let kept = cleanup_set(&desired.stack, &live_objects, deletes_volumes(&s));
        assert_eq!(claims(&kept), 0);
        let all_keys: Vec<ObjectKey> = live_objects.iter().map(|o| o.key.clone()).collect();
        assert_eq!(claims(&all_keys), 1, "the shared volume's claim");
        assert_eq!(kept.len(), live_objects.len() - 1);
        s.metadata.annotations = Some(BTreeMap::from([(
            DELETE_VOLUMES.to_string(),
            "true".to_string(),
        )]));
        assert!(deletes_volumes(&s));
        let all = cleanup_set(&desired.stack, &live_objects, true);
        assert_eq!(all.len(), live_objects.len());
    }
}
