//! What the planner reads off one service: its container names, image
//! reference, replica count, what `up --wait` waits for, and whether it is a
//! one-shot job. Backends use the same functions so names and labels agree.
use super::{Condition, PlanError};
use crate::model::{HealthCheckConfig, ServiceConfig};

/// The name of replica `number`: `container_name` when set, else
/// `<project>-<service>-<number>` as compose names it.
pub fn container_name(
    project: &str,
    service_name: &str,
    service: &ServiceConfig,
    number: u32,
) -> String {
    if service.container_name.is_empty() {
        format!("{project}-{service_name}-{number}")
    } else {
        service.container_name.clone()
    }
}

/// The temporary name a replacement container is created under:
/// the first 12 characters of the replaced container's id, `_`, the final
/// name (what [`super::ObservedContainer::replacement_for`] recognises).
pub fn temporary_name(replaced_id: &str, final_name: &str) -> String {
    let prefix: String = replaced_id.chars().take(12).collect();
    format!("{prefix}_{final_name}")
}

/// The image the service's containers run: `image`, or `<project>-<service>`
/// for a service that is only built (the tag compose gives built images).
pub fn image_ref(project: &str, service_name: &str, service: &ServiceConfig) -> String {
    if service.image.is_empty() {
        format!("{project}-{service_name}")
    } else {
        service.image.clone()
    }
}

/// How many containers the service runs: `scale`, else `deploy.replicas`,
/// else 1 (compose's order; the loader keeps the two consistent).
pub fn desired_replicas(service_name: &str, service: &ServiceConfig) -> Result<u32, PlanError> {
    let asked = service
        .scale
        .or_else(|| service.deploy.as_ref().and_then(|d| d.replicas))
        .unwrap_or(1);
    u32::try_from(asked).map_err(|_| PlanError::InvalidReplicas {
        service: service_name.to_string(),
        replicas: asked,
    })
}

/// The restart policy the engine applies, as compose computes it:
/// `deploy.restart_policy.condition` wins over `restart`; empty when unset.
pub fn restart_policy(service: &ServiceConfig) -> &str {
    if let Some(policy) = service
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref())
    {
        return &policy.condition;
    }
    &service.restart
}

/// A one-shot job: its containers are never restarted by the engine
/// (`restart: "no"`, `deploy.restart_policy.condition: none`, or no policy
/// at all, which the engine treats as `no`). Safety rule 6: once such a
/// container exited 0 with the current config, `up` leaves it alone.
pub fn is_one_shot(service: &ServiceConfig) -> bool {
    let policy = restart_policy(service);
    let name = policy.split(':').next().unwrap_or(policy);
    matches!(name, "" | "no" | "none")
}

/// Whether the service declares a healthcheck that is not disabled.
pub fn has_healthcheck(service: &ServiceConfig) -> bool {
    service.healthcheck.as_ref().is_some_and(enabled)
}

fn enabled(check: &HealthCheckConfig) -> bool {
    !check.disable && check.test.first().is_some_and(|t| t != "NONE")
}

/// Reads a `depends_on.condition`; empty means `service_started`.
pub fn parse_condition(condition: &str) -> Option<Condition> {
    match condition {
        "" | "service_started" => Some(Condition::ServiceStarted),
        "service_healthy" => Some(Condition::ServiceHealthy),
        "service_completed_successfully" => Some(Condition::ServiceCompletedSuccessfully),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{DeployConfig, RestartPolicy};

    #[test]
    fn replicas_come_from_scale_then_deploy_then_default_to_one() {
        let mut service = ServiceConfig::default();
        assert_eq!(desired_replicas("a", &service).unwrap(), 1);
        service.deploy = Some(DeployConfig {
            replicas: Some(3),
            ..DeployConfig::default()
        });
        assert_eq!(desired_replicas("a", &service).unwrap(), 3);
        service.scale = Some(0);
        assert_eq!(desired_replicas("a", &service).unwrap(), 0);
        service.scale = Some(-1);
        assert_eq!(
            desired_replicas("a", &service).unwrap_err().reason(),
            "invalid_replicas"
        );
    }

    #[test]
    fn a_service_is_one_shot_unless_the_engine_restarts_it() {
        let mut service = ServiceConfig::default();
        assert!(is_one_shot(&service));
        service.restart = "no".into();
        assert!(is_one_shot(&service));
        service.restart = "on-failure:3".into();
        assert!(!is_one_shot(&service));
        service.deploy = Some(DeployConfig {
            restart_policy: Some(RestartPolicy {
                condition: "none".into(),
                ..RestartPolicy::default()
            }),
            ..DeployConfig::default()
        });
        assert!(is_one_shot(&service), "deploy.restart_policy wins");
    }

    #[test]
    fn names_follow_compose() {
        let mut service = ServiceConfig::default();
        assert_eq!(container_name("demo", "web", &service, 2), "demo-web-2");
        assert_eq!(image_ref("demo", "web", &service), "demo-web");
        service.container_name = "fixed".into();
        service.image = "busybox".into();
        assert_eq!(container_name("demo", "web", &service, 1), "fixed");
        assert_eq!(image_ref("demo", "web", &service), "busybox");
        assert_eq!(
            temporary_name("0123456789abcdef", "demo-web-1"),
            "0123456789ab_demo-web-1"
        );
    }
}
