//! Checks on translated objects that a schema cannot make but the API
//! server does: names and label syntax, selectors that match their pod
//! templates, references from pods to volumes, ConfigMaps, Secrets and
//! claims that exist, unique names and paths within a pod. The tests run
//! them on every translation; the controller may run them before applying.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::names::{
    is_data_key, is_dns_label, is_dns_subdomain, is_label_value, is_port_name, is_qualified_name,
};
use super::Object;

/// What is wrong with `objects`, one line per problem (empty when all is
/// well).
pub fn check(objects: &[Object]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let config_maps: BTreeSet<&str> = objects
        .iter()
        .filter(|o| matches!(o, Object::ConfigMap(_)))
        .map(Object::name)
        .collect();
    let secrets: BTreeSet<&str> = objects
        .iter()
        .filter(|o| matches!(o, Object::Secret(_)))
        .map(Object::name)
        .collect();
    for object in objects {
        let at = format!("{} {}", object.kind(), object.name());
        if !seen.insert((object.kind(), object.name().to_string())) {
            problems.push(format!("{at}: appears twice"));
        }
        meta(&at, object.metadata(), &mut problems);
        let name_ok = match object {
            Object::Service(_) => {
                is_dns_label(object.name())
                    && object.name().starts_with(|c: char| c.is_ascii_lowercase())
            }
            Object::StatefulSet(_) => is_dns_label(object.name()) && object.name().len() <= 52,
            Object::Deployment(_) | Object::DaemonSet(_) | Object::Job(_) => {
                is_dns_label(object.name())
            }
            _ => is_dns_subdomain(object.name()),
        };
        if !name_ok {
            problems.push(format!("{at}: invalid name"));
        }
        let (selector, template) = match object {
            Object::Deployment(o) => (Some(Some(&o.spec.selector)), Some(&o.spec.template)),
            Object::StatefulSet(o) => (Some(Some(&o.spec.selector)), Some(&o.spec.template)),
            Object::DaemonSet(o) => (Some(Some(&o.spec.selector)), Some(&o.spec.template)),
            Object::Job(o) => (None, o.spec.as_ref().map(|s| &s.template)),
            _ => (None, None),
        };
        if let Some(template) = template {
            pod(
                &at,
                selector.flatten(),
                template,
                &config_maps,
                &secrets,
                objects,
                &mut problems,
            );
        }
        match object {
            Object::Service(service) => {
                let spec = service.spec.clone().unwrap_or_default();
                let mut names = BTreeSet::new();
                let mut ports = BTreeSet::new();
                for port in spec.ports.unwrap_or_default() {
                    let name = port.name.clone().unwrap_or_default();
                    if !is_port_name(&name) || !names.insert(name.clone()) {
                        problems.push(format!("{at}: port name {name:?} invalid or repeated"));
                    }
                    if !ports.insert((port.port, port.protocol.clone())) {
                        problems.push(format!("{at}: port {} repeated", port.port));
                    }
                    if !(1..=65535).contains(&port.port) {
                        problems.push(format!("{at}: port {} out of range", port.port));
                    }
                }
                let headless = spec.cluster_ip.as_deref() == Some("None");
                if !headless && names.is_empty() {
                    problems.push(format!("{at}: a Service with a cluster IP needs ports"));
                }
                if headless && spec.type_.as_deref().is_some_and(|t| t != "ClusterIP") {
                    problems.push(format!("{at}: only a ClusterIP Service may be headless"));
                }
            }
            Object::ConfigMap(map) => {
                let keys = map
                    .data
                    .iter()
                    .flat_map(|d| d.keys())
                    .chain(map.binary_data.iter().flat_map(|d| d.keys()));
                for key in keys {
                    if !is_data_key(key) {
                        problems.push(format!("{at}: invalid key {key:?}"));
                    }
                }
            }
            Object::Secret(secret) => {
                for key in secret.data.iter().flat_map(|d| d.keys()) {
                    if !is_data_key(key) {
                        problems.push(format!("{at}: invalid key {key:?}"));
                    }
                }
            }
            _ => {}
        }
    }
    problems
}

fn labels(
    at: &str,
    what: &str,
    labels: Option<&BTreeMap<String, String>>,
    problems: &mut Vec<String>,
) {
    for (key, value) in labels.into_iter().flatten() {
        if !is_qualified_name(key) || !is_label_value(value) {
            problems.push(format!("{at}: invalid {what} {key:?}={value:?}"));
        }
    }
}

fn meta(at: &str, meta: &ObjectMeta, problems: &mut Vec<String>) {
    labels(at, "label", meta.labels.as_ref(), problems);
    for key in meta.annotations.iter().flat_map(|a| a.keys()) {
        if !is_qualified_name(key) {
            problems.push(format!("{at}: invalid annotation key {key:?}"));
        }
    }
}

fn selected(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
}

fn pod(
    at: &str,
    selector: Option<&LabelSelector>,
    template: &PodTemplateSpec,
    config_maps: &BTreeSet<&str>,
    secrets: &BTreeSet<&str>,
    objects: &[Object],
    problems: &mut Vec<String>,
) {
    let template_labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if let Some(metadata) = &template.metadata {
        meta(&format!("{at} pod template"), metadata, problems);
    }
    if let Some(selector) = selector {
        if selector
            .match_labels
            .as_ref()
            .is_none_or(BTreeMap::is_empty)
        {
            problems.push(format!("{at}: empty selector"));
        }
        if !selected(selector, &template_labels) {
            problems.push(format!("{at}: selector does not match the pod template"));
        }
    }
    let Some(spec) = &template.spec else {
        problems.push(format!("{at}: no pod spec"));
        return;
    };
    pod_spec(at, spec, config_maps, secrets, objects, problems);
}

fn pod_spec(
    at: &str,
    spec: &PodSpec,
    config_maps: &BTreeSet<&str>,
    secrets: &BTreeSet<&str>,
    objects: &[Object],
    problems: &mut Vec<String>,
) {
    let claims: BTreeSet<&str> = objects
        .iter()
        .filter(|o| matches!(o, Object::PersistentVolumeClaim(_)))
        .map(Object::name)
        .collect();
    let templates: BTreeSet<String> = objects
        .iter()
        .filter_map(|o| match o {
            Object::StatefulSet(s) => Some(s),
            _ => None,
        })
        .flat_map(|s| s.spec.volume_claim_templates.iter().flatten())
        .filter_map(|t| t.metadata.name.clone())
        .collect();
    let mut volumes = BTreeSet::new();
    for volume in spec.volumes.iter().flatten() {
        if !is_dns_label(&volume.name) || !volumes.insert(volume.name.clone()) {
            problems.push(format!(
                "{at}: volume name {:?} invalid or repeated",
                volume.name
            ));
        }
        if let Some(source) = &volume.config_map {
            // An external config names an object stackd does not make; it
            // must still be a valid name.
            if !config_maps.contains(source.name.as_str()) && !is_dns_subdomain(&source.name) {
                problems.push(format!("{at}: config map {:?} invalid", source.name));
            }
        }
        if let Some(claim) = &volume.persistent_volume_claim {
            if !claims.contains(claim.claim_name.as_str()) && !is_dns_subdomain(&claim.claim_name) {
                problems.push(format!("{at}: claim {:?} invalid", claim.claim_name));
            }
        }
        if let Some(source) = &volume.secret {
            let name = source.secret_name.clone().unwrap_or_default();
            if !secrets.contains(name.as_str()) && !is_dns_subdomain(&name) {
                problems.push(format!("{at}: secret {name:?} invalid"));
            }
        }
        let sources = [
            volume.empty_dir.is_some(),
            volume.host_path.is_some(),
            volume.persistent_volume_claim.is_some(),
            volume.secret.is_some(),
            volume.config_map.is_some(),
            volume.projected.is_some(),
            volume.image.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            problems.push(format!(
                "{at}: volume {} needs exactly one source",
                volume.name
            ));
        }
    }
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        problems.push(format!("{at}: shareProcessNamespace with hostPID"));
    }
    for server in spec
        .dns_config
        .iter()
        .flat_map(|d| d.nameservers.iter().flatten())
    {
        if server.parse::<std::net::IpAddr>().is_err() {
            problems.push(format!("{at}: name server {server:?} is not an IP address"));
        }
    }
    let mut containers = BTreeSet::new();
    let mut port_names = BTreeSet::new();
    for container in spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
    {
        let cat = format!("{at} container {}", container.name);
        if !is_dns_label(&container.name) || !containers.insert(container.name.clone()) {
            problems.push(format!("{cat}: name invalid or repeated"));
        }
        if container.image.as_deref().is_none_or(str::is_empty) {
            problems.push(format!("{cat}: no image"));
        }
        let mut paths = BTreeSet::new();
        for mount in container.volume_mounts.iter().flatten() {
            if !volumes.contains(&mount.name) && !templates.contains(&mount.name) {
                problems.push(format!("{cat}: mount of unknown volume {:?}", mount.name));
            }
            if !paths.insert(mount.mount_path.clone()) {
                problems.push(format!("{cat}: {} mounted twice", mount.mount_path));
            }
            if mount.mount_path.is_empty() {
                problems.push(format!("{cat}: empty mount path"));
            }
            if let Some(sub) = &mount.sub_path {
                if sub.starts_with('/') || sub.split('/').any(|p| p == "..") {
                    problems.push(format!("{cat}: sub path {sub:?} must be relative"));
                }
            }
        }
        for port in container.ports.iter().flatten() {
            if let Some(name) = &port.name {
                if !is_port_name(name) || !port_names.insert(name.clone()) {
                    problems.push(format!("{cat}: port name {name:?} invalid or repeated"));
                }
            }
        }
        for var in container.env.iter().flatten() {
            if let Some(reference) = var
                .value_from
                .as_ref()
                .and_then(|v| v.config_map_key_ref.as_ref())
            {
                if !config_maps.contains(reference.name.as_str()) {
                    problems.push(format!("{cat}: env {} reads a missing ConfigMap", var.name));
                }
            }
        }
        if let Some(security) = &container.security_context {
            let escalation_off = security.allow_privilege_escalation == Some(false);
            let privileged = security.privileged == Some(true);
            let sys_admin = security
                .capabilities
                .as_ref()
                .and_then(|c| c.add.as_ref())
                .is_some_and(|a| a.iter().any(|c| c == "SYS_ADMIN" || c == "CAP_SYS_ADMIN"));
            if escalation_off && (privileged || sys_admin) {
                problems.push(format!(
                    "{cat}: privilege escalation off with privileged or SYS_ADMIN"
                ));
            }
        }
        if let Some(resources) = &container.resources {
            for (name, request) in resources.requests.iter().flatten() {
                if let Some(limit) = resources.limits.as_ref().and_then(|l| l.get(name)) {
                    if quantity_value(&request.0) > quantity_value(&limit.0) {
                        problems.push(format!("{cat}: {name} request above its limit"));
                    }
                }
            }
        }
    }
}

/// A quantity's value, well enough to compare the ones stackd writes.
fn quantity_value(text: &str) -> f64 {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().unwrap_or(0.0);
    let factor = match suffix {
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        _ => 1.0,
    };
    number * factor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::translate::tests::run;
    use k8s_openapi::api::core::v1::{ConfigMapKeySelector, EnvVar, EnvVarSource, VolumeMount};
    use serde_json::json;

    fn deployment() -> Vec<Object> {
        run(json!({"services": {"web": {"image": "nginx", "tmpfs": ["/tmp"]}}})).objects
    }

    fn spec_of(objects: &mut [Object]) -> &mut PodSpec {
        let Some(Object::Deployment(d)) = objects.iter_mut().find(|o| o.kind() == "Deployment")
        else {
            panic!("no deployment")
        };
        d.spec.template.spec.as_mut().unwrap()
    }

    #[test]
    fn a_translation_passes() {
        assert_eq!(check(&deployment()), Vec::<String>::new());
    }

    #[test]
    fn a_selector_that_misses_the_pod_template_is_found() {
        let mut objects = deployment();
        if let Some(Object::Deployment(d)) = objects.iter_mut().find(|o| o.kind() == "Deployment") {
            d.spec.template.metadata.as_mut().unwrap().labels = Some(BTreeMap::new());
        }
        assert!(check(&objects)
            .iter()
            .any(|p| p.contains("selector does not match")));
    }

    #[test]
    fn a_mount_of_an_unknown_volume_or_a_path_mounted_twice_is_found() {
        let mut objects = deployment();
        let container = &mut spec_of(&mut objects).containers[0];
        container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: "nowhere".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            });
        let problems = check(&objects);
        assert!(
            problems.iter().any(|p| p.contains("unknown volume")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("mounted twice")),
            "{problems:?}"
        );
    }

    #[test]
    fn an_environment_read_from_a_missing_config_map_is_found() {
        let mut objects = deployment();
        spec_of(&mut objects).containers[0].env = Some(vec![EnvVar {
            name: "A".into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: "missing".into(),
                    key: "A".into(),
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }]);
        assert!(check(&objects)
            .iter()
            .any(|p| p.contains("missing ConfigMap")));
    }

    #[test]
    fn invalid_names_and_labels_are_found() {
        let mut objects = deployment();
        for object in &mut objects {
            if let Object::Service(s) = object {
                s.metadata.name = Some("Web_Service".into());
                s.metadata
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert("bad key!".into(), "v".into());
            }
        }
        let problems = check(&objects);
        assert!(
            problems.iter().any(|p| p.contains("invalid name")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("invalid label")),
            "{problems:?}"
        );
    }

    #[test]
    fn privilege_escalation_off_with_privileged_is_found() {
        let mut objects =
            run(json!({"services": {"web": {"image": "x", "privileged": true}}})).objects;
        let container = &mut spec_of(&mut objects).containers[0];
        container
            .security_context
            .as_mut()
            .unwrap()
            .allow_privilege_escalation = Some(false);
        assert!(check(&objects)
            .iter()
            .any(|p| p.contains("privilege escalation")));
    }
}
