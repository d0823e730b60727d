//! `depends_on` → init containers that wait, and the identity they wait
//! with.
//!
//! Each dependency becomes an init container `wait-for-<dependency>`
//! running a `kubectl` loop (documented in the module above). The
//! dependency's pods are found by the labels its workload selects them
//! by, and its Job by name. A dependency that is not in the project
//! (optional, or left out by a profile) is not waited for, with a warning;
//! `restart: true` has no equivalent (a dependent is not restarted when
//! its dependency is updated).
//!
//! The init containers authenticate with a projected service account token
//! mounted into them alone, at the path `kubectl` looks in; the main
//! container has no token.
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapProjection, Container, DownwardAPIProjection, DownwardAPIVolumeFile,
    KeyToPath, ObjectFieldSelector, ProjectedVolumeSource, SecurityContext, ServiceAccount,
    ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::overrides::WorkloadKind;
use super::plan::Ctx;
use super::probes::has_check;
use super::workload::PodParts;
use super::{Object, Scope, TranslateError, INSTANCE, PART_OF};
use crate::model::ServiceConfig;

/// Name of the pod volume holding the wait containers' API token.
pub const TOKEN_VOLUME: &str = "stackd-wait-token";
/// Where `kubectl` looks for an in-cluster token.
const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Seconds between two checks.
const POLL_SECONDS: u32 = 2;

/// What one dependency waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// A pod of it runs or ran.
    Started,
    /// Every pod of it is Ready.
    Healthy,
    /// Its Job completed.
    Completed,
}

/// The shell script of a wait: a loop that ends when the condition holds.
pub fn script(condition: Condition, selector: &str, job: &str, dependency: &str) -> String {
    match condition {
        Condition::Started => format!(
            "until kubectl get pods -l '{selector}' -o jsonpath='{{.items[*].status.phase}}' | grep -qE 'Running|Succeeded'; do echo 'waiting for {dependency} to start'; sleep {POLL_SECONDS}; done"
        ),
        Condition::Healthy => format!(
            "until kubectl wait pods -l '{selector}' --for=condition=Ready --timeout=60s; do echo 'waiting for {dependency} to be healthy'; sleep {POLL_SECONDS}; done"
        ),
        Condition::Completed => format!(
            "until kubectl wait job/{job} --for=condition=Complete --timeout=60s; do echo 'waiting for {dependency} to complete'; sleep {POLL_SECONDS}; done"
        ),
    }
}

/// Adds the wait init containers of one service.
pub fn init_containers(
    ctx: &mut Ctx<'_>,
    scope: &Scope,
    service: &ServiceConfig,
    pod: &mut PodParts,
) {
    for (dependency, settings) in &service.depends_on {
        let key = format!("depends_on.{dependency}");
        ctx.ledger.used(scope, &format!("{key}.required"));
        if settings.restart {
            ctx.ledger.warn(
                scope,
                &format!("{key}.restart"),
                "pods are not restarted when a dependency is updated",
            );
        }
        let target = ctx.plans.get(dependency).cloned();
        let Some(target) = target.filter(|t| !t.skipped) else {
            ctx.ledger.warn(
                scope,
                &format!("{key}.condition"),
                format!("{dependency} is not translated (not in the project, or a provider); not waited for"),
            );
            continue;
        };
        ctx.ledger.used(scope, &format!("{key}.condition"));
        let condition = match settings.condition.as_str() {
            "service_healthy" => {
                let has = ctx.project.services.get(dependency).is_some_and(has_check);
                if !has {
                    ctx.ledger.warn(
                        scope,
                        &format!("{key}.condition"),
                        format!("{dependency} has no health check: its pods are Ready once started, so this waits for that"),
                    );
                }
                Condition::Healthy
            }
            "service_completed_successfully" if target.kind == WorkloadKind::Job => {
                Condition::Completed
            }
            "service_completed_successfully" => {
                ctx.ledger.warn(
                    scope,
                    &format!("{key}.condition"),
                    format!("{dependency} is not a Job (overridden), so this waits for its pods to be Ready"),
                );
                Condition::Healthy
            }
            _ => Condition::Started,
        };
        let selector = format!("{INSTANCE}={},{PART_OF}={}", target.base, ctx.project_label);
        let name = pod.names.unique(&format!("wait-for-{dependency}"));
        pod.init_containers.push(Container {
            name,
            image: Some(ctx.wait_image.clone()),
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                script(condition, &selector, &target.base, dependency),
            ]),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: None,
                }),
                ..SecurityContext::default()
            }),
            volume_mounts: Some(vec![VolumeMount {
                name: TOKEN_VOLUME.into(),
                mount_path: TOKEN_PATH.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        });
        pod.wait_token = true;
        ctx.waits = true;
    }
}

/// The projected volume with the API token, CA and namespace.
pub fn token_volume() -> Volume {
    Volume {
        name: TOKEN_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        path: "token".into(),
                        expiration_seconds: Some(3600),
                        ..ServiceAccountTokenProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".into(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".into(),
                            path: "ca.crt".into(),
                            ..KeyToPath::default()
                        }]),
                        optional: None,
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".into(),
                            field_ref: Some(ObjectFieldSelector {
                                api_version: Some("v1".into()),
                                field_path: "metadata.namespace".into(),
                            }),
                            ..DownwardAPIVolumeFile::default()
                        }]),
                    }),
                    ..VolumeProjection::default()
                },
            ]),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The ServiceAccount, Role and RoleBinding the waits use.
pub fn identity_objects(ctx: &mut Ctx<'_>) -> Result<(), TranslateError> {
    let name = ctx.wait_identity.clone();
    let owner = "the depends_on waits";
    let account = ServiceAccount {
        metadata: ctx.meta(&name, "stackd-wait"),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    };
    ctx.push(Object::ServiceAccount(account), owner)?;
    let read = |group: &str, resource: &str| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        ..PolicyRule::default()
    };
    let role = Role {
        metadata: ctx.meta(&name, "stackd-wait"),
        rules: Some(vec![read("", "pods"), read("batch", "jobs")]),
    };
    ctx.push(Object::Role(role), owner)?;
    let binding = RoleBinding {
        metadata: ctx.meta(&name, "stackd-wait"),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.clone(),
            namespace: ctx.options.namespace.clone(),
            api_group: None,
        }]),
    };
    ctx.push(Object::RoleBinding(binding), owner)
}
