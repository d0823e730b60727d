//! The translation's shared state and its order of work: decide each
//! service's workload kind and names, which volumes are claim templates
//! and which are shared claims, then build the project-level objects
//! (secrets, configs, claims, network policies, the wait identity) and the
//! per-service ones, and sort them.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::keys::Ledger;
use super::names::{
    dns1035_label, dns_label, is_label_value, is_qualified_name, label_value, Registry, MAX_LABEL,
    MAX_STATEFULSET,
};
use super::overrides::{self, Overrides, WorkloadKind};
use super::{
    network, storage, wait, workload, Object, Scope, TranslateError, TranslateOptions, Translation,
    DEFAULT_WAIT_IMAGE, INSTANCE, MANAGED_BY, NAME, PART_OF,
};
use crate::model::{Project, ServiceConfig};

/// How a service's pods restart, from `restart` and
/// `deploy.restart_policy.condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Never (`"no"`, `none`).
    Never,
    /// After a failure, at most this many times when given.
    OnFailure(Option<i32>),
    /// Always (`always`, `unless-stopped`, `any`, or unset).
    Always,
}

/// What was decided for one service before any object is built.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    /// The workload kind.
    pub kind: WorkloadKind,
    /// Base name of the service's objects (`<project>-<service>`).
    pub base: String,
    /// Name of the service's Service (the compose name, made valid).
    pub service_name: String,
    /// Value of the `app.kubernetes.io/name` label.
    pub name_label: String,
    /// Pods wanted (Jobs: completions).
    pub replicas: i32,
    /// How its pods restart.
    pub restart: Restart,
    /// Named volumes that are claim templates of its StatefulSet.
    pub claim_templates: BTreeSet<String>,
    /// Whether it runs no containers (a `provider` service).
    pub skipped: bool,
}

/// What was decided for one top-level volume.
#[derive(Debug, Clone)]
pub struct VolumePlan {
    /// Services that mount it.
    pub users: BTreeSet<String>,
    /// The claim's name, when it is a standalone (or existing) claim.
    pub claim: Option<String>,
    /// Access mode of its claim(s).
    pub access_mode: String,
}

/// The state of one translation.
pub struct Ctx<'a> {
    /// The input.
    pub project: &'a Project,
    /// The options.
    pub options: &'a TranslateOptions,
    /// What the project overrides.
    pub overrides: Overrides,
    /// Keys used and warnings.
    pub ledger: Ledger,
    /// Names given out.
    pub registry: Registry,
    /// Objects built so far.
    pub objects: Vec<Object>,
    /// Per service.
    pub plans: BTreeMap<String, ServicePlan>,
    /// Per top-level volume.
    pub volumes: BTreeMap<String, VolumePlan>,
    /// The project as a label value.
    pub project_label: String,
    /// Image of the wait init containers.
    pub wait_image: String,
    /// Name of the wait ServiceAccount, Role and RoleBinding.
    pub wait_identity: String,
    /// Whether some pod waits for a dependency (the identity is needed).
    pub waits: bool,
    /// Whether network policies isolate the project's networks.
    pub isolated: bool,
    /// Top-level secrets as objects, by key.
    pub secrets: BTreeMap<String, FileObject>,
    /// Top-level configs as objects, by key.
    pub configs: BTreeMap<String, FileObject>,
    /// The Service made for each compose service that has one.
    pub services_made: BTreeMap<String, k8s_openapi::api::core::v1::Service>,
    /// Other names services are known by (network aliases, link aliases).
    pub aliases: Vec<Alias>,
}

/// Another name a service is known by.
#[derive(Debug, Clone)]
pub struct Alias {
    /// Where the alias is written.
    pub scope: Scope,
    /// The key it is written under.
    pub key: String,
    /// The name.
    pub alias: String,
    /// The compose service it names.
    pub target: String,
}

/// A secret or config as the object pods mount.
#[derive(Debug, Clone)]
pub struct FileObject {
    /// The Secret or ConfigMap name.
    pub object: String,
    /// The key the value is stored under.
    pub key: String,
    /// The value, when known (hashed into the pods that mount it).
    pub value: Option<Vec<u8>>,
}

impl<'a> Ctx<'a> {
    fn new(project: &'a Project, options: &'a TranslateOptions, overrides: Overrides) -> Self {
        let project_name = if project.name.is_empty() {
            "project"
        } else {
            project.name.as_str()
        };
        let wait_image = options
            .wait_image
            .clone()
            .or_else(|| overrides.wait_image.clone())
            .unwrap_or_else(|| DEFAULT_WAIT_IMAGE.to_string());
        Ctx {
            project,
            options,
            overrides,
            ledger: Ledger::default(),
            registry: Registry::default(),
            objects: Vec::new(),
            plans: BTreeMap::new(),
            volumes: BTreeMap::new(),
            project_label: label_value(project_name),
            wait_image,
            wait_identity: dns_label(&format!("{project_name}-stackd-wait"), MAX_LABEL),
            waits: false,
            isolated: false,
            secrets: BTreeMap::new(),
            configs: BTreeMap::new(),
            services_made: BTreeMap::new(),
            aliases: Vec::new(),
        }
    }

    /// The project name objects are prefixed with.
    pub fn project_name(&self) -> &str {
        if self.project.name.is_empty() {
            "project"
        } else {
            &self.project.name
        }
    }

    /// The four labels every object carries.
    pub fn labels(&self, name_label: &str, instance: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (NAME.to_string(), label_value(name_label)),
            (INSTANCE.to_string(), label_value(instance)),
            (PART_OF.to_string(), self.project_label.clone()),
            (MANAGED_BY.to_string(), "stackd".to_string()),
        ])
    }

    /// Metadata for an object named `name` made for `name_label`.
    pub fn meta(&self, name: &str, name_label: &str) -> ObjectMeta {
        self.meta_with_instance(name, name_label, name)
    }

    /// Metadata whose instance label differs from the name (objects that
    /// belong to a service, such as its environment ConfigMap).
    pub fn meta_with_instance(&self, name: &str, name_label: &str, instance: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: self.options.namespace.clone(),
            labels: Some(self.labels(name_label, instance)),
            ..ObjectMeta::default()
        }
    }

    /// The labels a service's pods are selected by.
    pub fn selector(&self, base: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (INSTANCE.to_string(), label_value(base)),
            (PART_OF.to_string(), self.project_label.clone()),
        ])
    }

    /// Carries compose `labels` (under `key` of `scope`) onto `meta`: as
    /// labels when Kubernetes takes them as labels, else as annotations;
    /// never over the labels stackd sets.
    pub fn carry_labels(
        &mut self,
        scope: &Scope,
        key: &str,
        labels: &BTreeMap<String, String>,
        meta: &mut ObjectMeta,
    ) {
        if labels.is_empty() {
            return;
        }
        self.ledger.used(scope, key);
        for (name, value) in labels {
            let ours = meta.labels.as_ref().is_some_and(|l| l.contains_key(name));
            if ours {
                self.ledger.warn(
                    scope,
                    &format!("{key}.{name}"),
                    "stackd sets this label itself; the compose value is not used",
                );
            } else if is_qualified_name(name) && is_label_value(value) {
                meta.labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name.clone(), value.clone());
            } else if is_qualified_name(name) {
                meta.annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name.clone(), value.clone());
            } else {
                self.ledger.warn(
                    scope,
                    &format!("{key}.{name}"),
                    "not a valid Kubernetes label or annotation key; dropped",
                );
            }
        }
    }

    /// Adds an object after claiming its name for `owner`.
    pub fn push(&mut self, object: Object, owner: &str) -> Result<(), TranslateError> {
        self.registry.claim(object.kind(), object.name(), owner)?;
        self.objects.push(object);
        Ok(())
    }
}

/// The whole translation.
pub fn run(project: &Project, options: &TranslateOptions) -> Result<Translation, TranslateError> {
    let overrides = overrides::read(project)?;
    let mut ctx = Ctx::new(project, options, overrides);
    for key in project.extensions.keys() {
        // Extensions mean nothing to compose itself; `x-stackd` was read
        // above and the rest are the author's (anchors, mostly).
        ctx.ledger.used(&Scope::Project, key);
    }
    for name in project.models.keys() {
        ctx.ledger.warn(
            &Scope::Project,
            &format!("models.{name}"),
            "AI models have no Kubernetes equivalent; not translated",
        );
    }
    plan_services(&mut ctx);
    plan_volumes(&mut ctx);
    storage::project_objects(&mut ctx)?;
    network::plan_isolation(&mut ctx);
    for name in project.services.keys() {
        workload::service_objects(&mut ctx, name)?;
    }
    network::project_objects(&mut ctx)?;
    network::alias_objects(&mut ctx)?;
    if ctx.waits {
        wait::identity_objects(&mut ctx)?;
    }
    let Ctx {
        mut objects,
        ledger,
        ..
    } = ctx;
    objects.sort_by(|a, b| (a.rank(), a.name()).cmp(&(b.rank(), b.name())));
    let mut warnings = ledger.warnings;
    warnings.sort();
    Ok(Translation {
        objects,
        warnings,
        consumed: ledger.consumed,
    })
}

/// `restart` and `deploy.restart_policy` as one behaviour.
fn restart_of(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig) -> Restart {
    let policy = service
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref());
    let attempts = policy
        .and_then(|p| p.max_attempts)
        .map(|n| i32::try_from(n).unwrap_or(i32::MAX));
    if let Some(policy) = policy {
        if !policy.condition.is_empty() {
            ctx.ledger.used(scope, "deploy.restart_policy.condition");
            return match policy.condition.as_str() {
                "none" => Restart::Never,
                "on-failure" => Restart::OnFailure(attempts),
                _ => Restart::Always,
            };
        }
    }
    let restart = service.restart.as_str();
    if !restart.is_empty() {
        ctx.ledger.used(scope, "restart");
    }
    match restart {
        "no" => Restart::Never,
        r if r.starts_with("on-failure") => {
            let limit = r
                .strip_prefix("on-failure:")
                .and_then(|n| n.parse::<i32>().ok())
                .or(attempts);
            Restart::OnFailure(limit)
        }
        _ => Restart::Always,
    }
}

fn plan_services(ctx: &mut Ctx<'_>) {
    let project = ctx.project;
    // Services something waits on to complete run to completion.
    let completed_targets: BTreeSet<&str> = project
        .services
        .values()
        .flat_map(|s| s.depends_on.iter())
        .filter(|(_, dep)| dep.condition == "service_completed_successfully")
        .map(|(name, _)| name.as_str())
        .collect();
    let mut users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, service) in &project.services {
        for mount in &service.volumes {
            let named = mount.kind == "volume" && !mount.source.is_empty();
            if named
                && project
                    .volumes
                    .get(&mount.source)
                    .is_some_and(|v| !v.external)
            {
                users.entry(mount.source.as_str()).or_default().insert(name);
            }
        }
    }
    for (name, service) in &project.services {
        let scope = Scope::Service(name.clone());
        let restart = restart_of(ctx, &scope, service);
        let mode = service
            .deploy
            .as_ref()
            .map(|d| d.mode.as_str())
            .unwrap_or_default();
        if !mode.is_empty() {
            ctx.ledger.used(&scope, "deploy.mode");
        }
        let exclusive: BTreeSet<String> = service
            .volumes
            .iter()
            .filter(|m| m.kind == "volume")
            .filter(|m| users.get(m.source.as_str()).is_some_and(|u| u.len() == 1))
            .map(|m| m.source.clone())
            .collect();
        let overridden = ctx.overrides.service(name).workload;
        let kind = if let Some(kind) = overridden {
            kind
        } else if restart == Restart::Never
            || completed_targets.contains(name.as_str())
            || matches!(mode, "replicated-job" | "global-job")
        {
            WorkloadKind::Job
        } else if mode == "global" {
            WorkloadKind::DaemonSet
        } else if !exclusive.is_empty() {
            WorkloadKind::StatefulSet
        } else {
            WorkloadKind::Deployment
        };
        if mode == "global-job" && kind == WorkloadKind::Job {
            ctx.ledger.warn(
                &scope,
                "deploy.mode",
                "a Job cannot run once per node; it runs one pod",
            );
        }
        if restart == Restart::Never && kind != WorkloadKind::Job {
            ctx.ledger.warn(
                &scope,
                "restart",
                "the workload restarts its pods whatever they exit with",
            );
        }
        if matches!(restart, Restart::OnFailure(_)) && !matches!(kind, WorkloadKind::Job) {
            ctx.ledger.warn(
                &scope,
                if service.restart.is_empty() {
                    "deploy.restart_policy.condition"
                } else {
                    "restart"
                },
                "the workload also restarts pods that exit with 0",
            );
        }
        if let Some(policy) = service
            .deploy
            .as_ref()
            .and_then(|d| d.restart_policy.as_ref())
        {
            if policy.max_attempts.is_some() {
                if kind == WorkloadKind::Job && matches!(restart, Restart::OnFailure(_)) {
                    ctx.ledger
                        .used(&scope, "deploy.restart_policy.max_attempts");
                } else {
                    ctx.ledger.warn(
                        &scope,
                        "deploy.restart_policy.max_attempts",
                        "only a Job that restarts on failure has a retry limit (backoffLimit); ignored",
                    );
                }
            }
            for (field, set) in [
                ("delay", policy.delay.is_some()),
                ("window", policy.window.is_some()),
            ] {
                if set {
                    ctx.ledger.warn(
                        &scope,
                        &format!("deploy.restart_policy.{field}"),
                        "Kubernetes restarts with its own back-off; ignored",
                    );
                }
            }
        }
        let replicas = replicas_of(ctx, &scope, service);
        let max = if kind == WorkloadKind::StatefulSet {
            MAX_STATEFULSET
        } else {
            MAX_LABEL
        };
        let base = dns_label(&format!("{}-{name}", ctx.project_name()), max);
        let claim_templates = if kind == WorkloadKind::StatefulSet {
            exclusive
        } else {
            BTreeSet::new()
        };
        let skipped = service.provider.is_some();
        ctx.plans.insert(
            name.clone(),
            ServicePlan {
                kind,
                base,
                service_name: dns1035_label(name, MAX_LABEL),
                name_label: label_value(name),
                replicas,
                restart,
                claim_templates,
                skipped,
            },
        );
    }
}

fn replicas_of(ctx: &mut Ctx<'_>, scope: &Scope, service: &ServiceConfig) -> i32 {
    let from_deploy = service.deploy.as_ref().and_then(|d| d.replicas);
    if from_deploy.is_some() {
        ctx.ledger.used(scope, "deploy.replicas");
    }
    if service.scale.is_some() {
        ctx.ledger.used(scope, "scale");
    }
    let wanted = from_deploy.or(service.scale).unwrap_or(1);
    i32::try_from(wanted.max(0)).unwrap_or(i32::MAX)
}

fn plan_volumes(ctx: &mut Ctx<'_>) {
    let project = ctx.project;
    for (key, volume) in &project.volumes {
        let users: BTreeSet<String> = project
            .services
            .iter()
            .filter(|(_, s)| {
                s.volumes
                    .iter()
                    .any(|m| m.kind == "volume" && m.source == *key)
            })
            .map(|(name, _)| name.clone())
            .collect();
        let templated = users.len() == 1
            && users.iter().all(|u| {
                ctx.plans
                    .get(u)
                    .is_some_and(|p| p.claim_templates.contains(key))
            });
        let many_pods = users.len() > 1
            || users.iter().any(|u| {
                ctx.plans.get(u).is_some_and(|p| {
                    p.kind == WorkloadKind::DaemonSet
                        || (p.kind != WorkloadKind::StatefulSet && p.replicas > 1)
                })
            });
        let access_mode = ctx
            .overrides
            .volumes
            .get(key)
            .and_then(|o| o.access_mode.clone())
            .unwrap_or_else(|| {
                if many_pods && !templated {
                    "ReadWriteMany".to_string()
                } else {
                    "ReadWriteOnce".to_string()
                }
            });
        let claim = if templated {
            None
        } else {
            let source = if volume.name.is_empty() {
                format!("{}-{key}", ctx.project_name())
            } else {
                volume.name.clone()
            };
            Some(dns_label(&source, MAX_LABEL))
        };
        ctx.volumes.insert(
            key.clone(),
            VolumePlan {
                users,
                claim,
                access_mode,
            },
        );
    }
}
