//! The calls the controller makes for a Stack's objects: server-side apply
//! as field manager `stackd`, list by the Stack's labels, delete. Every call
//! is counted in `stackd_backend_requests_total{backend="kubernetes"}`.
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PropagationPolicy,
};
use kube::Client;

use super::ReconcileError;
use crate::kube::desired::{LiveObject, ObjectKey};
use crate::kube::gate::{self, WorkloadState};
use crate::kube::translate::Object;
use crate::metrics::Metrics;

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "stackd";

/// Every kind the translation makes, as `(apiVersion, kind)`.
pub const KINDS: [(&str, &str); 12] = [
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Service"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
];

fn api_version_of(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(_, k)| *k == kind)
        .map(|(v, _)| *v)
        .unwrap_or("v1")
}

/// The API of `kind` objects in `namespace`.
pub fn api_for(client: &Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    let api_version = api_version_of(kind);
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Whether the server serves `kind` (a 404 on listing it says not; any
/// other answer, a refusal included, is taken for yes). It lists where the
/// controller watches: in `namespace` when it watches one (a Role there
/// grants no list across namespaces), else across all.
pub async fn served(client: &Client, namespace: Option<&str>, kind: &str) -> bool {
    let api_version = api_version_of(kind);
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    !matches!(
        api.list_metadata(&ListParams::default().limit(1)).await,
        Err(kube::Error::Api(status)) if status.code == 404
    )
}

/// A live object as the API returns it.
#[derive(Debug, Clone)]
pub struct Live {
    /// Kind and name.
    pub key: ObjectKey,
    /// The object.
    pub object: DynamicObject,
}

impl Live {
    /// What pruning needs to know.
    pub fn summary(&self) -> LiveObject {
        let meta = &self.object.metadata;
        LiveObject {
            key: self.key.clone(),
            labels: meta.labels.clone().unwrap_or_default(),
            owner_uids: meta
                .owner_references
                .iter()
                .flatten()
                .map(|r| r.uid.clone())
                .collect(),
        }
    }

    /// The workload state, when the object is a workload.
    pub fn workload_state(&self) -> Option<WorkloadState> {
        let value = serde_json::to_value(&self.object).ok()?;
        match self.key.kind.as_str() {
            "Deployment" => serde_json::from_value::<Deployment>(value)
                .ok()
                .map(|d| gate::deployment_state(&d)),
            "StatefulSet" => serde_json::from_value::<StatefulSet>(value)
                .ok()
                .map(|s| gate::statefulset_state(&s)),
            "DaemonSet" => serde_json::from_value::<DaemonSet>(value)
                .ok()
                .map(|d| gate::daemonset_state(&d)),
            "Job" => serde_json::from_value::<Job>(value)
                .ok()
                .map(|j| gate::job_state(&j)),
            _ => None,
        }
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<&str> {
        self.object.metadata.resource_version.as_deref()
    }
}

/// Counts one Kubernetes API request of `operation` and its result.
pub(super) fn count(metrics: &Metrics, operation: &str, ok: bool) {
    metrics.backend_request(
        "kubernetes",
        operation,
        if ok { "success" } else { "error" },
    );
}

/// Every object of every kind in `namespace` matching `selector`.
pub async fn list(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    selector: &str,
) -> Result<Vec<Live>, ReconcileError> {
    let mut found = Vec::new();
    for (_, kind) in KINDS {
        let api = api_for(client, namespace, kind);
        let listed = api.list(&ListParams::default().labels(selector)).await;
        count(metrics, "list", listed.is_ok());
        if let Err(kube::Error::Api(status)) = &listed {
            if status.code == 404 {
                // A kind this server does not serve has no objects.
                continue;
            }
        }
        let listed = listed.map_err(|source| ReconcileError::Api {
            action: "list",
            object: kind.to_string(),
            source,
        })?;
        for object in listed.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            found.push(Live {
                key: ObjectKey {
                    kind: kind.to_string(),
                    name,
                },
                object,
            });
        }
    }
    Ok(found)
}

/// Server-side applies `object` (forcing ownership of conflicting fields)
/// and returns it as the server now has it.
pub async fn apply(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    object: &Object,
) -> Result<Live, ReconcileError> {
    let key = ObjectKey::of(object);
    let body = serde_json::to_value(object).map_err(ReconcileError::Serialize)?;
    let api = api_for(client, namespace, object.kind());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api
        .patch(object.name(), &params, &Patch::Apply(&body))
        .await;
    count(metrics, "apply", applied.is_ok());
    let applied = applied.map_err(|source| ReconcileError::Api {
        action: "apply",
        object: key.to_string(),
        source,
    })?;
    Ok(Live {
        key,
        object: applied,
    })
}

/// Deletes one object (its dependents in the background); one already
/// gone is fine.
pub async fn delete(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    key: &ObjectKey,
) -> Result<(), ReconcileError> {
    let api = api_for(client, namespace, &key.kind);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    let deleted = api.delete(&key.name, &params).await;
    match deleted {
        Ok(_) => {
            count(metrics, "delete", true);
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {
            count(metrics, "delete", true);
            Ok(())
        }
        Err(source) => {
            count(metrics, "delete", false);
            Err(ReconcileError::Api {
                action: "delete",
                object: key.to_string(),
                source,
            })
        }
    }
}
