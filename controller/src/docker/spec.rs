//! The model → engine request bodies for API 1.41, without I/O: a
//! container's create body (labels, mounts, ports, resources, networks, ...),
//! a network's and a volume's create request, and an image build's options.
//! Options newer than API 1.41 are refused with an error naming the service,
//! never sent.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use bollard::models::{
    ContainerCreateBody, DeviceMapping, DeviceRequest, EndpointIpamConfig, EndpointSettings,
    HealthConfig, HostConfig, HostConfigCgroupnsModeEnum, HostConfigLogConfig, Ipam, IpamConfig,
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType,
    MountVolumeOptions, NetworkCreateRequest, NetworkingConfig, PortBinding, PortMap,
    ResourcesBlkioWeightDevice, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
    ThrottleDevice, VolumeCreateRequest,
};
use bollard::query_parameters::{BuildImageOptions, BuilderVersion};

use super::{labels, network_name, volume_name, Error, ProjectMeta};
use crate::model::{
    FileReferenceConfig, HealthCheckConfig, Project, ServiceConfig, ServiceNetworkConfig,
    ServiceVolumeConfig,
};

/// stackd's version, written to `com.docker.compose.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The image a service runs: its `image`, or `<project>-<service>` for a
/// service that is only built (compose's default name). This is also the key
/// of `Observed::images`.
pub fn image_ref(project: &str, service_name: &str, service: &ServiceConfig) -> String {
    if service.image.is_empty() {
        format!("{project}-{service_name}")
    } else {
        service.image.clone()
    }
}

/// The final name of replica `number`: `container_name` when the service
/// fixes one, else `<project>-<service>-<number>`.
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

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// The name to create it under.
    pub name: String,
    /// `platform` query parameter (empty for the engine's own).
    pub platform: String,
    /// The create body; its `NetworkingConfig` holds the first network only.
    pub body: ContainerCreateBody,
    /// Further networks to connect after create (API 1.41 takes one at
    /// create): engine network name and endpoint settings, in priority order.
    pub connect: Vec<(String, EndpointSettings)>,
    /// Secret and config contents to copy in after create (those given
    /// inline or by an environment variable; file-based ones are bind mounts).
    pub files: Vec<InjectedFile>,
}

/// A secret or config written into the container after create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFile {
    /// `secret` or `config`.
    pub kind: &'static str,
    /// Its key in the project.
    pub name: String,
    /// Absolute path in the container.
    pub target: String,
    /// Where the content comes from.
    pub content: FileContent,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Permission bits.
    pub mode: u32,
}

/// The content of an injected file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// Given in the model.
    Inline(String),
    /// Read from this environment variable when the container is created.
    Variable(String),
}

fn unsupported(service: &str, option: impl Into<String>, needs: &'static str) -> Error {
    Error::Unsupported {
        service: service.to_owned(),
        option: option.into(),
        needs,
    }
}

fn invalid(service: &str, message: impl Into<String>) -> Error {
    Error::InvalidService {
        service: service.to_owned(),
        message: message.into(),
    }
}

fn some_if<T>(condition: bool, value: T) -> Option<T> {
    condition.then_some(value)
}

fn non_empty(value: &str) -> Option<String> {
    some_if(!value.is_empty(), value.to_owned())
}

fn non_empty_vec(values: &[String]) -> Option<Vec<String>> {
    some_if(!values.is_empty(), values.to_vec())
}

fn non_empty_map(values: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    some_if(
        !values.is_empty(),
        values.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    )
}

fn non_zero(value: i64) -> Option<i64> {
    some_if(value != 0, value)
}

/// CPUs as nano-CPUs, through the shortest decimal text so `0.1` is exactly
/// 100000000 (an f32 product would be off by a few units).
fn nano_cpus(cpus: f32) -> i64 {
    let decimal: f64 = cpus.to_string().parse().unwrap_or(f64::from(cpus));
    // Rounded, and within range for any CPU count a host has.
    (decimal * 1e9).round() as i64
}

/// The labels of replica `number` of a service: its own labels, then
/// compose's and stackd's (which win).
pub fn container_labels(
    project: &Project,
    meta: &ProjectMeta,
    service_name: &str,
    service: &ServiceConfig,
    number: u32,
    config_hash: &str,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = service
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let depends_on: Vec<String> = service
        .depends_on
        .iter()
        .map(|(name, dep)| format!("{name}:{}:{}", dep.condition, dep.restart))
        .collect();
    let fixed = [
        (labels::PROJECT, project.name.clone()),
        (labels::SERVICE, service_name.to_owned()),
        (labels::CONTAINER_NUMBER, number.to_string()),
        (labels::ONEOFF, "False".to_owned()),
        (labels::CONFIG_HASH, config_hash.to_owned()),
        (labels::WORKING_DIR, meta.working_dir.clone()),
        (labels::CONFIG_FILES, meta.config_files.join(",")),
        (labels::DEPENDS_ON, depends_on.join(",")),
        (labels::VERSION, VERSION.to_owned()),
        (labels::MANAGED_BY, labels::MANAGED_BY_VALUE.to_owned()),
    ];
    for (key, value) in fixed {
        out.insert(key.to_owned(), value);
    }
    out
}

/// The create request for replica `number` of `service_name`, to be created
/// under `name` (its final name, or a temporary one while replacing).
pub fn container_spec(
    project: &Project,
    meta: &ProjectMeta,
    service_name: &str,
    number: u32,
    name: &str,
    config_hash: &str,
) -> Result<ContainerSpec, Error> {
    let service = project
        .services
        .get(service_name)
        .ok_or_else(|| Error::NotInProject {
            kind: "service",
            name: service_name.to_owned(),
        })?;
    let s = service_name;
    check_unsupported(s, service)?;

    let (exposed_ports, port_bindings) = ports(s, service)?;
    let mounted = mounts(project, s, service)?;
    let (network_mode, networking, connect, links) = networking(project, s, service, number)?;
    let env: Vec<String> = service
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    let tmpfs: HashMap<String, String> = service
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, options)) => (path.to_owned(), options.to_owned()),
            None => (t.clone(), String::new()),
        })
        .collect();
    let (security_opt, unconfined) = security_options(&service.security_opt);

    let mut host = HostConfig {
        binds: non_empty_vec(&mounted.binds),
        mounts: some_if(!mounted.mounts.is_empty(), mounted.mounts),
        cap_add: non_empty_vec(&service.cap_add),
        cap_drop: non_empty_vec(&service.cap_drop),
        network_mode: Some(network_mode),
        init: service.init,
        ipc_mode: non_empty(&service.ipc),
        cgroupns_mode: cgroupns(s, &service.cgroup)?,
        readonly_rootfs: some_if(service.read_only, true),
        restart_policy: restart_policy(s, service)?,
        shm_size: non_zero(service.shm_size.0),
        sysctls: non_empty_map(&service.sysctls),
        port_bindings: some_if(!port_bindings.is_empty(), port_bindings),
        volume_driver: non_empty(&service.volume_driver),
        volumes_from: non_empty_vec(&volumes_from(project, &service.volumes_from)),
        dns: non_empty_vec(&service.dns),
        dns_search: non_empty_vec(&service.dns_search),
        dns_options: non_empty_vec(&service.dns_opt),
        extra_hosts: non_empty_vec(&service.extra_hosts.to_list(":")),
        security_opt: non_empty_vec(&security_opt),
        storage_opt: non_empty_map(&service.storage_opt),
        userns_mode: non_empty(&service.userns_mode),
        uts_mode: non_empty(&service.uts),
        privileged: some_if(service.privileged, true),
        pid_mode: non_empty(&service.pid),
        tmpfs: some_if(!tmpfs.is_empty(), tmpfs),
        runtime: non_empty(&service.runtime),
        log_config: log_config(service),
        group_add: non_empty_vec(&service.group_add),
        links: non_empty_vec(&links),
        oom_score_adj: non_zero(service.oom_score_adj),
        ..HostConfig::default()
    };
    if unconfined {
        host.masked_paths = Some(Vec::new());
        host.readonly_paths = Some(Vec::new());
    }
    resources(s, service, &mut host)?;

    let body = ContainerCreateBody {
        hostname: non_empty(&service.hostname),
        domainname: non_empty(&service.domainname),
        user: non_empty(&service.user),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        exposed_ports: some_if(!exposed_ports.is_empty(), exposed_ports),
        tty: some_if(service.tty, true),
        open_stdin: some_if(service.stdin_open, true),
        env: some_if(!env.is_empty(), env),
        cmd: service.command.clone(),
        healthcheck: service
            .healthcheck
            .as_ref()
            .map(|h| healthcheck(s, h))
            .transpose()?,
        image: Some(image_ref(&project.name, s, service)),
        working_dir: non_empty(&service.working_dir),
        entrypoint: service.entrypoint.clone(),
        network_disabled: some_if(service.network_mode == "disabled", true),
        labels: Some(container_labels(
            project,
            meta,
            s,
            service,
            number,
            config_hash,
        )),
        stop_signal: non_empty(&service.stop_signal),
        stop_timeout: service
            .stop_grace_period
            .map(|d| d.as_nanos() / 1_000_000_000),
        host_config: Some(host),
        networking_config: networking,
        ..ContainerCreateBody::default()
    };
    Ok(ContainerSpec {
        name: name.to_owned(),
        platform: service.platform.clone(),
        body,
        connect,
        files: mounted.files,
    })
}

/// Options whose only form is newer than API 1.41, or that stackd does not
/// carry out, refused up front rather than silently dropped.
fn check_unsupported(s: &str, service: &ServiceConfig) -> Result<(), Error> {
    if !service.annotations.is_empty() {
        return Err(unsupported(s, "annotations", "1.43"));
    }
    if !service.mac_address.is_empty() {
        return Err(invalid(s, "mac_address is not supported by stackd"));
    }
    if service
        .healthcheck
        .as_ref()
        .is_some_and(|h| h.start_interval.is_some() && !h.disable)
    {
        return Err(unsupported(s, "healthcheck.start_interval", "1.44"));
    }
    Ok(())
}

fn healthcheck(s: &str, check: &HealthCheckConfig) -> Result<HealthConfig, Error> {
    let test = if check.disable {
        Some(vec!["NONE".to_owned()])
    } else {
        non_empty_vec(&check.test)
    };
    let retries = check
        .retries
        .map(|r| i64::try_from(r).map_err(|_| invalid(s, "healthcheck.retries is out of range")))
        .transpose()?;
    Ok(HealthConfig {
        test,
        interval: check.interval.map(|d| d.as_nanos()),
        timeout: check.timeout.map(|d| d.as_nanos()),
        retries,
        start_period: check.start_period.map(|d| d.as_nanos()),
        start_interval: None,
    })
}

fn restart_name(s: &str, condition: &str) -> Result<RestartPolicyNameEnum, Error> {
    match condition {
        "no" | "none" | "" => Ok(RestartPolicyNameEnum::NO),
        "always" | "any" => Ok(RestartPolicyNameEnum::ALWAYS),
        "on-failure" => Ok(RestartPolicyNameEnum::ON_FAILURE),
        "unless-stopped" => Ok(RestartPolicyNameEnum::UNLESS_STOPPED),
        other => Err(invalid(s, format!("unknown restart policy {other:?}"))),
    }
}

/// `restart`, overridden by `deploy.restart_policy`, as compose does.
fn restart_policy(s: &str, service: &ServiceConfig) -> Result<Option<RestartPolicy>, Error> {
    let mut policy = None;
    if !service.restart.is_empty() {
        let (name, attempts) = match service.restart.split_once(':') {
            Some((name, count)) => (
                name,
                count.parse::<i64>().map_err(|_| {
                    invalid(s, format!("invalid restart policy {:?}", service.restart))
                })?,
            ),
            None => (service.restart.as_str(), 0),
        };
        policy = Some(RestartPolicy {
            name: Some(restart_name(s, name)?),
            maximum_retry_count: non_zero(attempts),
        });
    }
    if let Some(deploy) = service
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref())
    {
        let attempts = deploy
            .max_attempts
            .map(|a| i64::try_from(a).unwrap_or(i64::MAX))
            .unwrap_or(0);
        policy = Some(RestartPolicy {
            name: Some(restart_name(s, &deploy.condition)?),
            maximum_retry_count: non_zero(attempts),
        });
    }
    Ok(policy)
}

fn cgroupns(s: &str, mode: &str) -> Result<Option<HostConfigCgroupnsModeEnum>, Error> {
    match mode {
        "" => Ok(None),
        "host" => Ok(Some(HostConfigCgroupnsModeEnum::HOST)),
        "private" => Ok(Some(HostConfigCgroupnsModeEnum::PRIVATE)),
        other => Err(invalid(s, format!("unknown cgroup mode {other:?}"))),
    }
}

fn log_config(service: &ServiceConfig) -> Option<HostConfigLogConfig> {
    match &service.logging {
        Some(logging) => Some(HostConfigLogConfig {
            typ: non_empty(&logging.driver),
            config: non_empty_map(&logging.options),
        }),
        None if !service.log_driver.is_empty() || !service.log_opt.is_empty() => {
            Some(HostConfigLogConfig {
                typ: non_empty(&service.log_driver),
                config: non_empty_map(&service.log_opt),
            })
        }
        None => None,
    }
}

/// `systempaths=unconfined` is not an engine option: it clears the masked
/// and read-only paths instead.
fn security_options(options: &[String]) -> (Vec<String>, bool) {
    let mut unconfined = false;
    let kept = options
        .iter()
        .filter(|o| {
            let is = o.as_str() == "systempaths=unconfined";
            unconfined |= is;
            !is
        })
        .cloned()
        .collect();
    (kept, unconfined)
}

/// Legacy-field resources, overridden by `deploy.resources` where set.
fn resources(s: &str, service: &ServiceConfig, host: &mut HostConfig) -> Result<(), Error> {
    host.cgroup_parent = non_empty(&service.cgroup_parent);
    host.memory = non_zero(service.mem_limit.0);
    host.memory_swap = non_zero(service.memswap_limit.0);
    host.memory_swappiness = non_zero(service.mem_swappiness.0);
    host.memory_reservation = non_zero(service.mem_reservation.0);
    host.oom_kill_disable = some_if(service.oom_kill_disable, true);
    host.cpu_count = non_zero(service.cpu_count);
    host.cpu_percent = non_zero(nano_cpus(service.cpu_percent) / 10_000_000);
    host.cpu_period = non_zero(service.cpu_period);
    host.cpu_quota = non_zero(service.cpu_quota);
    host.cpu_realtime_period = non_zero(service.cpu_rt_period);
    host.cpu_realtime_runtime = non_zero(service.cpu_rt_runtime);
    host.cpu_shares = non_zero(service.cpu_shares);
    host.nano_cpus = non_zero(nano_cpus(service.cpus));
    host.cpuset_cpus = non_empty(&service.cpuset);
    host.device_cgroup_rules = non_empty_vec(&service.device_cgroup_rules);
    host.pids_limit = non_zero(service.pids_limit);

    if let Some(blkio) = &service.blkio_config {
        host.blkio_weight = some_if(blkio.weight != 0, blkio.weight);
        let weights: Vec<ResourcesBlkioWeightDevice> = blkio
            .weight_device
            .iter()
            .map(|d| ResourcesBlkioWeightDevice {
                path: Some(d.path.clone()),
                weight: Some(usize::from(d.weight)),
            })
            .collect();
        host.blkio_weight_device = some_if(!weights.is_empty(), weights);
        let throttle = |devices: &[crate::model::ThrottleDevice]| {
            let out: Vec<ThrottleDevice> = devices
                .iter()
                .map(|d| ThrottleDevice {
                    path: Some(d.path.clone()),
                    rate: Some(d.rate.0),
                })
                .collect();
            some_if(!out.is_empty(), out)
        };
        host.blkio_device_read_bps = throttle(&blkio.device_read_bps);
        host.blkio_device_read_iops = throttle(&blkio.device_read_iops);
        host.blkio_device_write_bps = throttle(&blkio.device_write_bps);
        host.blkio_device_write_iops = throttle(&blkio.device_write_iops);
    }

    let mut requests: Vec<DeviceRequest> = Vec::new();
    if let Some(deploy) = &service.deploy {
        if let Some(limits) = &deploy.resources.limits {
            if limits.memory.0 != 0 {
                host.memory = Some(limits.memory.0);
            }
            if limits.cpus != 0.0 {
                host.nano_cpus = Some(nano_cpus(limits.cpus));
            }
            if limits.pids > 0 {
                host.pids_limit = Some(limits.pids);
            }
        }
        if let Some(reservations) = &deploy.resources.reservations {
            if reservations.memory.0 != 0 {
                host.memory_reservation = Some(reservations.memory.0);
            }
            for device in &reservations.devices {
                requests.push(device_request(device, device.capabilities.clone()));
            }
        }
    }
    for gpu in &service.gpus {
        let mut capabilities = gpu.capabilities.clone();
        capabilities.push("gpu".to_owned());
        requests.push(device_request(gpu, capabilities));
    }
    host.device_requests = some_if(!requests.is_empty(), requests);

    let devices: Vec<DeviceMapping> = service
        .devices
        .iter()
        .map(|d| DeviceMapping {
            path_on_host: Some(d.source.clone()),
            path_in_container: Some(if d.target.is_empty() {
                d.source.clone()
            } else {
                d.target.clone()
            }),
            cgroup_permissions: Some(if d.permissions.is_empty() {
                "rwm".to_owned()
            } else {
                d.permissions.clone()
            }),
        })
        .collect();
    host.devices = some_if(!devices.is_empty(), devices);

    let ulimits: Vec<ResourcesUlimits> = service
        .ulimits
        .iter()
        .map(|(name, u)| ResourcesUlimits {
            name: Some(name.clone()),
            soft: Some(if u.soft != 0 { u.soft } else { u.single }),
            hard: Some(if u.hard != 0 { u.hard } else { u.single }),
        })
        .collect();
    host.ulimits = some_if(!ulimits.is_empty(), ulimits);
    if host.memory.is_some_and(|m| m < 0) || host.nano_cpus.is_some_and(|c| c < 0) {
        return Err(invalid(s, "resource limits cannot be negative"));
    }
    Ok(())
}

fn device_request(
    device: &crate::model::DeviceRequest,
    capabilities: Vec<String>,
) -> DeviceRequest {
    DeviceRequest {
        driver: non_empty(&device.driver),
        count: some_if(
            device.count != 0 || device.device_ids.is_empty(),
            device.count,
        ),
        device_ids: non_empty_vec(&device.device_ids),
        capabilities: Some(vec![capabilities]),
        options: non_empty_map(&device.options),
    }
}

/// Exposed ports (from `expose` and `ports`) and host bindings. Ranges in
/// `expose` are expanded, since the engine keys exposed ports one by one.
fn ports(s: &str, service: &ServiceConfig) -> Result<(Vec<String>, PortMap), Error> {
    let mut exposed: BTreeSet<String> = BTreeSet::new();
    for entry in &service.expose {
        let (range, protocol) = entry.split_once('/').unwrap_or((entry, "tcp"));
        let bad = || invalid(s, format!("invalid exposed port {entry:?}"));
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let port = range.parse::<u16>().map_err(|_| bad())?;
                (port, port)
            }
        };
        if first > last {
            return Err(bad());
        }
        for port in first..=last {
            exposed.insert(format!("{port}/{protocol}"));
        }
    }
    let mut bindings: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for port in &service.ports {
        if port.target == 0 || port.target > u32::from(u16::MAX) {
            return Err(invalid(
                s,
                format!("invalid container port {}", port.target),
            ));
        }
        let protocol = if port.protocol.is_empty() {
            "tcp"
        } else {
            port.protocol.as_str()
        };
        let key = format!("{}/{protocol}", port.target);
        exposed.insert(key.clone());
        bindings.entry(key).or_default().push(PortBinding {
            host_ip: non_empty(&port.host_ip),
            host_port: Some(port.published.clone()),
        });
    }
    let bindings = bindings.into_iter().map(|(k, v)| (k, Some(v))).collect();
    Ok((exposed.into_iter().collect(), bindings))
}

struct Mounted {
    binds: Vec<String>,
    mounts: Vec<Mount>,
    files: Vec<InjectedFile>,
}

/// Volumes, then secrets, then configs, one mount per target (the first
/// wins, as in compose). Bind mounts that create a missing host path use the
/// legacy `Binds` form, the only one that does so on API 1.41.
fn mounts(project: &Project, s: &str, service: &ServiceConfig) -> Result<Mounted, Error> {
    let mut out = Mounted {
        binds: Vec::new(),
        mounts: Vec::new(),
        files: Vec::new(),
    };
    let mut targets: BTreeSet<String> = BTreeSet::new();
    for volume in &service.volumes {
        if !targets.insert(volume.target.clone()) {
            continue;
        }
        volume_mount(project, s, volume, &mut out)?;
    }
    if service.use_api_socket && targets.insert("/var/run/docker.sock".to_owned()) {
        out.binds
            .push("/var/run/docker.sock:/var/run/docker.sock:rw".to_owned());
    }
    for secret in &service.secrets {
        file_reference(
            project,
            s,
            service,
            secret,
            "secret",
            &mut targets,
            &mut out,
        )?;
    }
    for config in &service.configs {
        file_reference(
            project,
            s,
            service,
            config,
            "config",
            &mut targets,
            &mut out,
        )?;
    }
    Ok(out)
}

fn bind_string(source: &str, volume: &ServiceVolumeConfig) -> String {
    let mut options = vec![if volume.read_only { "ro" } else { "rw" }];
    if let Some(bind) = &volume.bind {
        if !bind.selinux.is_empty() {
            options.push(&bind.selinux);
        }
        if !bind.propagation.is_empty() {
            options.push(&bind.propagation);
        }
    }
    if volume.volume.as_ref().is_some_and(|v| v.nocopy) {
        options.push("nocopy");
    }
    format!("{source}:{}:{}", volume.target, options.join(","))
}

fn propagation(s: &str, value: &str) -> Result<Option<MountBindOptionsPropagationEnum>, Error> {
    use MountBindOptionsPropagationEnum as P;
    Ok(Some(match value {
        "" => return Ok(None),
        "private" => P::PRIVATE,
        "rprivate" => P::RPRIVATE,
        "shared" => P::SHARED,
        "rshared" => P::RSHARED,
        "slave" => P::SLAVE,
        "rslave" => P::RSLAVE,
        other => return Err(invalid(s, format!("unknown bind propagation {other:?}"))),
    }))
}

fn volume_mount(
    project: &Project,
    s: &str,
    volume: &ServiceVolumeConfig,
    out: &mut Mounted,
) -> Result<(), Error> {
    let base = Mount {
        target: Some(volume.target.clone()),
        read_only: some_if(volume.read_only, true),
        consistency: non_empty(&volume.consistency),
        ..Mount::default()
    };
    match volume.kind.as_str() {
        "bind" => {
            let bind = volume.bind.clone().unwrap_or_default();
            let creates_host_path = volume.bind.is_none() || bind.create_host_path;
            let non_recursive = match bind.recursive.as_str() {
                // On API 1.41 a read-only bind is read-only at its top only,
                // which is what `writable` asks for.
                "" | "enabled" | "writable" => false,
                "disabled" => true,
                "readonly" => return Err(unsupported(s, "bind.recursive: readonly", "1.44")),
                other => return Err(invalid(s, format!("unknown bind.recursive {other:?}"))),
            };
            if creates_host_path && !non_recursive {
                out.binds.push(bind_string(&volume.source, volume));
            } else {
                out.mounts.push(Mount {
                    typ: Some(MountType::BIND),
                    source: Some(volume.source.clone()),
                    bind_options: Some(MountBindOptions {
                        propagation: propagation(s, &bind.propagation)?,
                        non_recursive: some_if(non_recursive, true),
                        ..MountBindOptions::default()
                    }),
                    ..base
                });
            }
        }
        "volume" => {
            let options = volume.volume.clone().unwrap_or_default();
            if !options.subpath.is_empty() {
                return Err(unsupported(s, "volume.subpath", "1.45"));
            }
            let named = !volume.source.is_empty();
            let source = if project.volumes.contains_key(&volume.source) {
                volume_name(project, &volume.source)
            } else {
                volume.source.clone()
            };
            if named && options.labels.is_empty() {
                out.binds.push(bind_string(&source, volume));
            } else {
                out.mounts.push(Mount {
                    typ: Some(MountType::VOLUME),
                    source: some_if(named, source),
                    volume_options: some_if(
                        options.nocopy || !options.labels.is_empty(),
                        MountVolumeOptions {
                            no_copy: some_if(options.nocopy, true),
                            labels: non_empty_map(&options.labels),
                            ..MountVolumeOptions::default()
                        },
                    ),
                    ..base
                });
            }
        }
        "tmpfs" => {
            let options = volume.tmpfs.clone().unwrap_or_default();
            out.mounts.push(Mount {
                typ: Some(MountType::TMPFS),
                tmpfs_options: some_if(
                    options.size.0 != 0 || options.mode != 0,
                    MountTmpfsOptions {
                        size_bytes: non_zero(options.size.0),
                        mode: non_zero(i64::from(options.mode)),
                        options: None,
                    },
                ),
                ..base
            });
        }
        "image" => return Err(unsupported(s, "image mounts", "1.48")),
        other => {
            return Err(invalid(
                s,
                format!("mounts of type {other:?} are not supported on Linux engines"),
            ))
        }
    }
    Ok(())
}

/// A secret (under `/run/secrets/`) or config (under `/`): a read-only bind
/// of its file, or content copied in after create.
fn file_reference(
    project: &Project,
    s: &str,
    service: &ServiceConfig,
    reference: &FileReferenceConfig,
    kind: &'static str,
    targets: &mut BTreeSet<String>,
    out: &mut Mounted,
) -> Result<(), Error> {
    let base = if kind == "secret" {
        "/run/secrets/"
    } else {
        "/"
    };
    let target = if reference.target.is_empty() {
        format!("{base}{}", reference.source)
    } else if reference.target.starts_with('/') {
        reference.target.clone()
    } else {
        format!("{base}{}", reference.target)
    };
    if !targets.insert(target.clone()) {
        return Ok(());
    }
    let defined = if kind == "secret" {
        project.secrets.get(&reference.source).map(|d| {
            (
                &d.file,
                &d.environment,
                &d.content,
                d.external,
                &d.driver,
                &d.template_driver,
            )
        })
    } else {
        project.configs.get(&reference.source).map(|d| {
            (
                &d.file,
                &d.environment,
                &d.content,
                d.external,
                &d.driver,
                &d.template_driver,
            )
        })
    };
    let Some((file, environment, content, external, driver, template_driver)) = defined else {
        return Err(invalid(
            s,
            format!(
                "{kind} {:?} is not defined in the project",
                reference.source
            ),
        ));
    };
    if external {
        return Err(invalid(
            s,
            format!("external {kind} {:?} needs swarm", reference.source),
        ));
    }
    if !driver.is_empty() || !template_driver.is_empty() {
        return Err(invalid(
            s,
            format!("{kind} {:?}: drivers need swarm", reference.source),
        ));
    }
    let content = if !content.is_empty() {
        Some(FileContent::Inline(content.clone()))
    } else if !environment.is_empty() {
        Some(FileContent::Variable(environment.clone()))
    } else {
        None
    };
    let Some(content) = content else {
        out.mounts.push(Mount {
            typ: Some(MountType::BIND),
            source: Some(file.clone()),
            target: Some(target),
            read_only: Some(true),
            ..Mount::default()
        });
        return Ok(());
    };
    if service.read_only {
        return Err(invalid(
            s,
            format!(
                "{kind} {:?} cannot be written into a read_only container; give it a file",
                reference.source
            ),
        ));
    }
    let id = |value: &str, what: &str| -> Result<u64, Error> {
        if value.is_empty() {
            return Ok(0);
        }
        value.parse().map_err(|_| {
            invalid(
                s,
                format!("{kind} {:?}: invalid {what} {value:?}", reference.source),
            )
        })
    };
    out.files.push(InjectedFile {
        kind,
        name: reference.source.clone(),
        target,
        content,
        uid: id(&reference.uid, "uid")?,
        gid: id(&reference.gid, "gid")?,
        mode: reference
            .mode
            .map_or(0o444, |m| u32::try_from(m.0 & 0o7777).unwrap_or(0o444)),
    });
    Ok(())
}

/// `service:NAME` in `network_mode` and `volumes_from` refers to the first
/// replica of that service.
fn service_container(project: &Project, service_name: &str) -> Option<String> {
    project
        .services
        .get(service_name)
        .map(|s| container_name(&project.name, service_name, s, 1))
}

fn volumes_from(project: &Project, entries: &[String]) -> Vec<String> {
    entries
        .iter()
        .map(|entry| {
            if let Some(container) = entry.strip_prefix("container:") {
                return container.to_owned();
            }
            let (name, mode) = match entry.split_once(':') {
                Some((name, mode)) => (name, Some(mode)),
                None => (entry.as_str(), None),
            };
            match (service_container(project, name), mode) {
                (Some(c), Some(mode)) => format!("{c}:{mode}"),
                (Some(c), None) => c,
                (None, _) => entry.clone(),
            }
        })
        .collect()
}

/// The service's networks, highest `priority` first, then by name.
fn networks_by_priority(service: &ServiceConfig) -> Vec<(&String, Option<&ServiceNetworkConfig>)> {
    let mut keys: Vec<_> = service
        .networks
        .iter()
        .map(|(k, v)| (k, v.as_ref()))
        .collect();
    keys.sort_by(|a, b| {
        let pa = a.1.map_or(0, |c| c.priority);
        let pb = b.1.map_or(0, |c| c.priority);
        pb.cmp(&pa).then_with(|| a.0.cmp(b.0))
    });
    keys
}

type Networking = (
    String,
    Option<NetworkingConfig>,
    Vec<(String, EndpointSettings)>,
    Vec<String>,
);

/// The network mode, the create-time network (the first by priority), the
/// networks to connect after create, and legacy links.
fn networking(
    project: &Project,
    s: &str,
    service: &ServiceConfig,
    number: u32,
) -> Result<Networking, Error> {
    let mut links: Vec<String> = Vec::new();
    for link in &service.links {
        let (target, alias) = link.split_once(':').unwrap_or((link, link));
        if let Some(container) = service_container(project, target) {
            links.push(format!("{container}:{alias}"));
        }
    }
    for link in &service.external_links {
        let (target, alias) = link.split_once(':').unwrap_or((link, link));
        links.push(format!("{target}:{alias}"));
    }

    let mode = if service.network_mode.is_empty() {
        service.net.as_str()
    } else {
        service.network_mode.as_str()
    };
    if !mode.is_empty() {
        let mode = if let Some(other) = mode.strip_prefix("service:") {
            let container = service_container(project, other).ok_or_else(|| {
                invalid(
                    s,
                    format!("network_mode refers to unknown service {other:?}"),
                )
            })?;
            format!("container:{container}")
        } else if mode == "disabled" {
            "none".to_owned()
        } else {
            mode.to_owned()
        };
        return Ok((mode, None, Vec::new(), links));
    }

    let mut ordered = networks_by_priority(service);
    if ordered.is_empty() {
        match project.networks.get_key_value("default") {
            Some((key, _)) => ordered.push((key, None)),
            None => return Ok(("none".to_owned(), None, Vec::new(), links)),
        }
    }
    let name = container_name(&project.name, s, service, number);
    let mut endpoints: Vec<(String, EndpointSettings)> = Vec::new();
    for (i, (key, config)) in ordered.into_iter().enumerate() {
        if !project.networks.contains_key(key) {
            return Err(invalid(
                s,
                format!("network {key:?} is not defined in the project"),
            ));
        }
        let mut aliases = vec![name.clone(), s.to_owned()];
        let mut endpoint = EndpointSettings::default();
        if let Some(config) = config {
            if !config.interface_name.is_empty() {
                return Err(unsupported(
                    s,
                    format!("networks.{key}.interface_name"),
                    "1.49",
                ));
            }
            if !config.mac_address.is_empty() {
                return Err(invalid(s, "mac_address is not supported by stackd"));
            }
            if config.gw_priority != 0 {
                return Err(unsupported(
                    s,
                    format!("networks.{key}.gw_priority"),
                    "1.48",
                ));
            }
            aliases.extend(config.aliases.iter().cloned());
            let has_ipam = !config.ipv4_address.is_empty()
                || !config.ipv6_address.is_empty()
                || !config.link_local_ips.is_empty();
            endpoint.ipam_config = some_if(
                has_ipam,
                EndpointIpamConfig {
                    ipv4_address: non_empty(&config.ipv4_address),
                    ipv6_address: non_empty(&config.ipv6_address),
                    link_local_ips: non_empty_vec(&config.link_local_ips),
                },
            );
            endpoint.driver_opts = non_empty_map(&config.driver_opts);
        }
        if i == 0 {
            endpoint.links = non_empty_vec(&links);
        }
        endpoint.aliases = Some(aliases);
        endpoints.push((network_name(project, key), endpoint));
    }
    let mut endpoints = endpoints.into_iter();
    let Some((primary, endpoint)) = endpoints.next() else {
        return Ok(("none".to_owned(), None, Vec::new(), links));
    };
    let networking = NetworkingConfig {
        endpoints_config: Some([(primary.clone(), endpoint)].into()),
    };
    Ok((primary, Some(networking), endpoints.collect(), links))
}

fn resource_labels(
    project: &Project,
    own: &BTreeMap<String, String>,
    key_label: &str,
    key: &str,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> =
        own.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in [
        (key_label, key),
        (labels::PROJECT, project.name.as_str()),
        (labels::VERSION, VERSION),
        (labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
    ] {
        out.insert(k.to_owned(), v.to_owned());
    }
    out
}

/// The create request of network `key`.
pub fn network_spec(project: &Project, key: &str) -> Result<NetworkCreateRequest, Error> {
    let network = project
        .networks
        .get(key)
        .ok_or_else(|| Error::NotInProject {
            kind: "network",
            name: key.to_owned(),
        })?;
    let name = network_name(project, key);
    if network.enable_ipv4 == Some(false) {
        return Err(Error::Unsupported {
            service: format!("(network {name})"),
            option: "enable_ipv4: false".to_owned(),
            needs: "1.47",
        });
    }
    let has_ipam = !network.ipam.driver.is_empty() || !network.ipam.config.is_empty();
    let ipam = some_if(
        has_ipam,
        Ipam {
            driver: non_empty(&network.ipam.driver),
            config: some_if(
                !network.ipam.config.is_empty(),
                network
                    .ipam
                    .config
                    .iter()
                    .map(|pool| IpamConfig {
                        subnet: non_empty(&pool.subnet),
                        ip_range: non_empty(&pool.ip_range),
                        gateway: non_empty(&pool.gateway),
                        auxiliary_addresses: non_empty_map(&pool.aux_addresses),
                    })
                    .collect(),
            ),
            options: non_empty_map(&network.ipam.options),
        },
    );
    Ok(NetworkCreateRequest {
        name,
        driver: non_empty(&network.driver),
        internal: some_if(network.internal, true),
        attachable: some_if(network.attachable, true),
        ipam,
        enable_ipv6: network.enable_ipv6,
        options: non_empty_map(&network.driver_opts),
        labels: Some(resource_labels(
            project,
            &network.labels,
            labels::NETWORK,
            key,
        )),
        ..NetworkCreateRequest::default()
    })
}

/// The create request of volume `key`.
pub fn volume_spec(project: &Project, key: &str) -> Result<VolumeCreateRequest, Error> {
    let volume = project
        .volumes
        .get(key)
        .ok_or_else(|| Error::NotInProject {
            kind: "volume",
            name: key.to_owned(),
        })?;
    Ok(VolumeCreateRequest {
        name: Some(volume_name(project, key)),
        driver: non_empty(&volume.driver),
        driver_opts: non_empty_map(&volume.driver_opts),
        labels: Some(resource_labels(
            project,
            &volume.labels,
            labels::VOLUME,
            key,
        )),
        cluster_volume_spec: None,
    })
}

/// Where a build's Dockerfile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dockerfile {
    /// A file inside the context, by its path relative to the context.
    InContext(String),
    /// A file outside the context; it is added to the sent context.
    Outside(PathBuf),
    /// Given inline; it is added to the sent context.
    Inline(String),
}

/// How to build a service's image.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSpec {
    /// The context directory (empty for a remote context).
    pub context: PathBuf,
    /// The Dockerfile.
    pub dockerfile: Dockerfile,
    /// Engine options; `dockerfile` is set by the caller to the Dockerfile's
    /// path in the sent context.
    pub options: BuildImageOptions,
    /// Further tags given to the built image.
    pub extra_tags: Vec<String>,
}

/// The name a Dockerfile that is not in the context gets in the sent one.
pub const ADDED_DOCKERFILE: &str = ".stackd.Dockerfile";

fn is_remote(context: &str) -> bool {
    context.contains("://") || context.starts_with("git@") || context.starts_with("github.com/")
}

/// The build of `service_name`'s image with the classic builder (API 1.41
/// needs a session for BuildKit). `variable` resolves build args without a
/// value, as compose takes them from the environment.
pub fn build_spec(
    project: &Project,
    service_name: &str,
    variable: &dyn Fn(&str) -> Option<String>,
) -> Result<BuildSpec, Error> {
    let s = service_name;
    let service = project.services.get(s).ok_or_else(|| Error::NotInProject {
        kind: "service",
        name: s.to_owned(),
    })?;
    let build = service
        .build
        .as_ref()
        .ok_or_else(|| invalid(s, "has no build section"))?;
    for (option, used) in [
        ("build.secrets", !build.secrets.is_empty()),
        ("build.ssh", !build.ssh.is_empty()),
        (
            "build.additional_contexts",
            !build.additional_contexts.is_empty(),
        ),
        ("build.entitlements", !build.entitlements.is_empty()),
        (
            "build.platforms with several platforms",
            build.platforms.len() > 1,
        ),
    ] {
        if used {
            return Err(invalid(
                s,
                format!("{option} needs BuildKit, which stackd does not drive"),
            ));
        }
    }
    let args: HashMap<String, String> = build
        .args
        .iter()
        .filter_map(|(k, v)| v.clone().or_else(|| variable(k)).map(|v| (k.clone(), v)))
        .collect();
    let shm_size = if build.shm_size.0 == 0 {
        None
    } else {
        Some(
            i32::try_from(build.shm_size.0)
                .map_err(|_| invalid(s, "build.shm_size is too large for the engine"))?,
        )
    };
    let platform = build
        .platforms
        .first()
        .cloned()
        .unwrap_or_else(|| service.platform.clone());
    let extra_hosts = build.extra_hosts.to_list(":");
    let mut options = BuildImageOptions {
        t: Some(image_ref(&project.name, s, service)),
        extrahosts: some_if(!extra_hosts.is_empty(), extra_hosts.join(",")),
        nocache: build.no_cache,
        cachefrom: non_empty_vec(&build.cache_from),
        pull: some_if(build.pull, "1".to_owned()),
        rm: true,
        forcerm: true,
        buildargs: some_if(!args.is_empty(), args),
        shmsize: shm_size,
        labels: non_empty_map(&build.labels),
        networkmode: non_empty(&build.network),
        platform,
        target: build.target.clone(),
        version: BuilderVersion::BuilderV1,
        ..BuildImageOptions::default()
    };
    if is_remote(&build.context) {
        options.remote = Some(build.context.clone());
        options.dockerfile = if build.dockerfile.is_empty() {
            "Dockerfile".to_owned()
        } else {
            build.dockerfile.clone()
        };
        return Ok(BuildSpec {
            context: PathBuf::new(),
            dockerfile: Dockerfile::InContext(options.dockerfile.clone()),
            options,
            extra_tags: build.tags.clone(),
        });
    }
    let context = PathBuf::from(&build.context);
    let dockerfile = if !build.dockerfile_inline.is_empty() {
        Dockerfile::Inline(build.dockerfile_inline.clone())
    } else {
        let named = if build.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            build.dockerfile.as_str()
        };
        let path = context.join(named);
        match relative_inside(&context, &path) {
            Some(relative) => Dockerfile::InContext(relative),
            None => Dockerfile::Outside(path),
        }
    };
    options.dockerfile = match &dockerfile {
        Dockerfile::InContext(relative) => relative.clone(),
        Dockerfile::Outside(_) | Dockerfile::Inline(_) => ADDED_DOCKERFILE.to_owned(),
    };
    Ok(BuildSpec {
        context,
        dockerfile,
        options,
        extra_tags: build.tags.clone(),
    })
}

/// `path` relative to `base` with `/` separators, when it lies inside it
/// (judged lexically: the loader has made both absolute).
fn relative_inside(base: &Path, path: &Path) -> Option<String> {
    let normalize = |p: &Path| -> Vec<String> {
        let mut parts: Vec<String> = Vec::new();
        for component in p.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
                Component::ParentDir => {
                    parts.pop();
                }
                _ => {}
            }
        }
        parts
    };
    let base = normalize(base);
    let path = normalize(path);
    let rest = path.strip_prefix(base.as_slice())?;
    (!rest.is_empty()).then(|| rest.join("/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
