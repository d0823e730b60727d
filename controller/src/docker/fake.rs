//! `FakeBackend`: an in-memory engine implementing `Backend` for tests. It
//! builds the same request bodies as the real backend (through `spec`),
//! keeps containers, networks, volumes and images in maps, records every
//! call as a typed `Record`, and fails on demand with an engine status code
//! mapped exactly as the real backend maps it.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::container_wait::{Sample, Watch};
use super::engine::{declares_health, expected_replicas, familiar};
use super::spec::{self, ContainerSpec};
use super::status::{evaluate, Progress};
use super::{
    action_error, labels, network_name, volume_name, ActionKind, Backend, BoxFuture, EngineEvent,
    Error, EventKind, ProjectMeta,
};
use crate::model::Project;
use crate::plan::{
    Action, Condition, ContainerState, Health, Observed, ObservedContainer, ObservedNetwork,
    ObservedVolume,
};
use futures::StreamExt;

/// One call made to the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `observe`.
    Observe {
        /// The project.
        project: String,
        /// Whether networks and volumes were listed.
        include_resources: bool,
    },
    /// `observe_containers`.
    ObserveContainers {
        /// The project.
        project: String,
    },
    /// `observe_all_containers`.
    ObserveAllContainers,
    /// `image_ids`.
    ImageIds {
        /// The references asked for.
        references: Vec<String>,
    },
    /// `apply`.
    Apply(Action),
    /// `wait_for`.
    WaitFor {
        /// The service.
        service: String,
        /// The condition.
        condition: Condition,
    },
}

impl Call {
    /// The action kind of an `apply` or `wait_for` call.
    pub fn kind(&self) -> Option<ActionKind> {
        match self {
            Call::Observe { .. }
            | Call::ObserveContainers { .. }
            | Call::ObserveAllContainers
            | Call::ImageIds { .. } => None,
            Call::Apply(action) => Some(ActionKind::of(action)),
            Call::WaitFor { .. } => Some(ActionKind::WaitFor),
        }
    }
}

/// A call with when it started and, once it returned, when it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The call.
    pub call: Call,
    /// When it started.
    pub started: Instant,
    /// When it returned.
    pub finished: Option<Instant>,
    /// Whether it returned an error.
    pub failed: bool,
}

/// What a service's containers do once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Run until stopped, with no health to report.
    Runs,
    /// Run, reporting `starting` and then healthy after the delay.
    HealthyAfter(Duration),
    /// Run, reporting `starting` and then unhealthy after the delay.
    UnhealthyAfter(Duration),
    /// Run, then exit with `code` after the delay.
    ExitsAfter {
        /// Exit status.
        code: i64,
        /// How long it runs.
        after: Duration,
    },
}

/// A container in the fake engine.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeContainer {
    /// Engine id (64 hex digits).
    pub id: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Image as configured.
    pub image: String,
    /// Image id it was created from.
    pub image_id: String,
    /// The request it was created from (`None` for one inserted by a test).
    pub spec: Option<ContainerSpec>,
    /// Engine network names it is attached to.
    pub networks: Vec<String>,
    /// Engine volume names it mounts.
    pub volumes: Vec<String>,
    /// State when last set; a running container's behaviour may move it on.
    pub state: ContainerState,
    /// Health when last set.
    pub health: Option<Health>,
    /// What it does once started.
    pub behaviour: Behaviour,
    /// When it was last started.
    pub started_at: Option<Instant>,
}

impl FakeContainer {
    /// State and health at `now`, with the behaviour played forward.
    fn current(&self, now: Instant) -> (ContainerState, Option<Health>) {
        let (Some(started), ContainerState::Running) = (self.started_at, self.state) else {
            return (self.state, self.health);
        };
        let elapsed = now.saturating_duration_since(started);
        match self.behaviour {
            Behaviour::Runs => (ContainerState::Running, self.health),
            Behaviour::HealthyAfter(after) if elapsed >= after => {
                (ContainerState::Running, Some(Health::Healthy))
            }
            Behaviour::UnhealthyAfter(after) if elapsed >= after => {
                (ContainerState::Running, Some(Health::Unhealthy))
            }
            Behaviour::HealthyAfter(_) | Behaviour::UnhealthyAfter(_) => {
                (ContainerState::Running, Some(Health::Starting))
            }
            Behaviour::ExitsAfter { code, after } if elapsed >= after => {
                (ContainerState::Exited(code), None)
            }
            Behaviour::ExitsAfter { .. } => (ContainerState::Running, None),
        }
    }
}

/// A network or volume in the fake engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeResource {
    /// Engine id.
    pub id: String,
    /// Engine name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Failure {
    kind: Option<ActionKind>,
    status: u16,
    remaining: usize,
}

#[derive(Debug, Default)]
struct State {
    containers: BTreeMap<String, FakeContainer>,
    networks: BTreeMap<String, FakeResource>,
    volumes: BTreeMap<String, FakeResource>,
    images: BTreeMap<String, String>,
    unpullable: Vec<String>,
    calls: Vec<Record>,
    failures: VecDeque<Failure>,
    delays: BTreeMap<ActionKind, Duration>,
    behaviours: BTreeMap<String, Behaviour>,
    config_behaviours: BTreeMap<String, Behaviour>,
    next_id: u64,
}

impl State {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("{:064x}", self.next_id)
    }

    /// Takes one injected failure for `kind` (`None` = observe), if any.
    fn injected(&mut self, kind: Option<ActionKind>) -> Option<u16> {
        let failure = self
            .failures
            .iter_mut()
            .find(|f| f.kind == kind && f.remaining > 0)?;
        failure.remaining -= 1;
        Some(failure.status)
    }
}

/// An in-memory engine implementing [`Backend`].
#[derive(Debug)]
pub struct FakeBackend {
    state: Mutex<State>,
    poll_interval: Duration,
    events: tokio::sync::broadcast::Sender<EngineEvent>,
}

impl Default for FakeBackend {
    fn default() -> Self {
        Self::new()
    }
}

fn server_error(status_code: u16, message: &str) -> bollard::errors::Error {
    bollard::errors::Error::DockerResponseServerError {
        status_code,
        message: message.to_owned(),
    }
}

impl FakeBackend {
    /// An empty engine: no images, containers, networks or volumes.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            poll_interval: Duration::from_millis(100),
            events: tokio::sync::broadcast::channel(1024).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already;
        // the state is still worth reading.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the next `times` calls of `kind` fail with engine status `status`.
    pub fn fail_next(&self, kind: ActionKind, status: u16, times: usize) {
        self.lock().failures.push_back(Failure {
            kind: Some(kind),
            status,
            remaining: times,
        });
    }

    /// Makes the next `times` observations fail with engine status `status`.
    pub fn fail_observe(&self, status: u16, times: usize) {
        self.lock().failures.push_back(Failure {
            kind: None,
            status,
            remaining: times,
        });
    }

    /// Makes every action of `kind` take `delay` (in tokio time) before it acts.
    pub fn set_delay(&self, kind: ActionKind, delay: Duration) {
        self.lock().delays.insert(kind, delay);
    }

    /// Sets what `service`'s containers do once started. By default a
    /// service with a healthcheck becomes healthy at once, others just run.
    pub fn set_behaviour(&self, service: &str, behaviour: Behaviour) {
        self.lock().behaviours.insert(service.to_owned(), behaviour);
    }

    /// Sets what containers created with config hash `hash` do, over their
    /// service's behaviour (one version of a service healthy, another not).
    pub fn set_config_behaviour(&self, hash: &str, behaviour: Behaviour) {
        self.lock()
            .config_behaviours
            .insert(hash.to_owned(), behaviour);
    }

    /// Puts an image on the engine (as `docker tag` or `load` would, with
    /// the event they send); returns its id.
    pub fn add_image(&self, reference: &str) -> String {
        let id = {
            let mut state = self.lock();
            let id = format!("sha256:{}", state.id());
            state.images.insert(familiar(reference), id.clone());
            id
        };
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.events.send(EngineEvent {
            project: String::new(),
            service: String::new(),
            container: String::new(),
            image: reference.to_owned(),
            kind: EventKind::ImageChanged,
        });
        id
    }

    /// Makes pulls of `reference` fail, as with no registry.
    pub fn deny_pull(&self, reference: &str) {
        self.lock().unpullable.push(familiar(reference));
    }

    /// Puts a container on the engine as another tool would have.
    pub fn insert_container(&self, container: FakeContainer) {
        self.lock()
            .containers
            .insert(container.name.clone(), container);
    }

    /// Puts a network on the engine as another tool would have.
    pub fn insert_network(&self, network: FakeResource) {
        self.lock().networks.insert(network.name.clone(), network);
    }

    /// Puts a volume on the engine as another tool would have.
    pub fn insert_volume(&self, volume: FakeResource) {
        self.lock().volumes.insert(volume.name.clone(), volume);
    }

    /// Sets a container's state, as if it crashed or was stopped behind
    /// stackd's back; its behaviour no longer applies. Sends the event the
    /// engine would: `die` for an exit, `health_status` for a new health.
    pub fn set_state(&self, name: &str, state: ContainerState, health: Option<Health>) {
        let before = {
            let mut guard = self.lock();
            let Some(c) = guard.containers.get_mut(name) else {
                return;
            };
            let before = (c.state, c.health);
            c.state = state;
            c.health = health;
            c.behaviour = Behaviour::Runs;
            before
        };
        if matches!(state, ContainerState::Exited(_))
            && !matches!(before.0, ContainerState::Exited(_))
        {
            self.emit_for(name, EventKind::Died);
        }
        if let Some(health) = health.filter(|h| before.1 != Some(*h)) {
            self.emit_for(name, EventKind::Health(health));
        }
    }

    /// Removes a container, as if someone ran `docker rm -f`, and sends the
    /// `destroy` event.
    pub fn kill(&self, name: &str) {
        self.emit_for(name, EventKind::Destroyed);
        self.lock().containers.remove(name);
    }

    /// Sends `kind` for the container `name`, labelled as it is now; nothing
    /// for a container the fake does not have.
    pub fn emit_for(&self, name: &str, kind: EventKind) {
        let event = {
            let state = self.lock();
            let Some(c) = state.containers.get(name) else {
                return;
            };
            EngineEvent {
                project: c.labels.get(labels::PROJECT).cloned().unwrap_or_default(),
                service: c.labels.get(labels::SERVICE).cloned().unwrap_or_default(),
                container: name.to_owned(),
                image: c.image.clone(),
                kind,
            }
        };
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.events.send(event);
    }

    /// A container by name.
    pub fn container(&self, name: &str) -> Option<FakeContainer> {
        self.lock().containers.get(name).cloned()
    }

    /// Every container's name, sorted.
    pub fn container_names(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    /// Every network, by engine name.
    pub fn networks(&self) -> BTreeMap<String, FakeResource> {
        self.lock().networks.clone()
    }

    /// Every volume, by engine name.
    pub fn volumes(&self) -> BTreeMap<String, FakeResource> {
        self.lock().volumes.clone()
    }

    /// Every call so far, in the order they started.
    pub fn calls(&self) -> Vec<Record> {
        self.lock().calls.clone()
    }

    /// How many `apply`/`wait_for` calls of `kind` were made.
    pub fn count(&self, kind: ActionKind) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|r| r.call.kind() == Some(kind))
            .count()
    }

    /// Forgets the calls made so far.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    fn begin(&self, call: Call) -> usize {
        let mut state = self.lock();
        state.calls.push(Record {
            call,
            started: Instant::now(),
            finished: None,
            failed: false,
        });
        state.calls.len() - 1
    }

    fn end<T>(&self, index: usize, result: Result<T, Error>) -> Result<T, Error> {
        if let Some(record) = self.lock().calls.get_mut(index) {
            record.finished = Some(Instant::now());
            record.failed = result.is_err();
        }
        result
    }

    async fn delay(&self, kind: ActionKind) {
        let delay = self.lock().delays.get(&kind).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }

    /// Every container with a project label, by project, as the engine
    /// backend lists them.
    fn all_containers_now(&self) -> Result<super::AllContainers, Error> {
        let mut state = self.lock();
        if let Some(status) = state.injected(None) {
            return Err(Error::EngineRejected {
                operation: "list containers",
                target: "all projects".to_owned(),
                status,
                message: "injected failure".to_owned(),
            });
        }
        let now = Instant::now();
        let mut all = super::AllContainers::new();
        for container in state.containers.values() {
            if let Some(project) = container.labels.get(labels::PROJECT) {
                all.entry(project.clone()).or_default().push(observed(
                    container,
                    now,
                    &state.networks,
                ));
            }
        }
        for containers in all.values_mut() {
            super::sort_containers(containers);
        }
        Ok(all)
    }

    fn observe_now(&self, project: &Project, include_resources: bool) -> Result<Observed, Error> {
        let mut state = self.lock();
        if let Some(status) = state.injected(None) {
            return Err(Error::EngineRejected {
                operation: "list containers",
                target: project.name.clone(),
                status,
                message: "injected failure".to_owned(),
            });
        }
        let now = Instant::now();
        let ours =
            |labels: &BTreeMap<String, String>| labels.get(labels::PROJECT) == Some(&project.name);
        let containers = state
            .containers
            .values()
            .filter(|c| ours(&c.labels))
            .map(|c| observed(c, now, &state.networks))
            .collect();
        // As the engine backend does: labelled ones, plus external ones by name.
        let resources =
            |map: &BTreeMap<String, FakeResource>, external: &[String]| -> Vec<FakeResource> {
                map.values()
                    .filter(|r| ours(&r.labels) || external.contains(&r.name))
                    .cloned()
                    .collect()
            };
        let (external_networks, external_volumes) = crate::plan::external_names(project);
        let networks = include_resources.then(|| {
            resources(&state.networks, &external_networks)
                .into_iter()
                .map(|n| ObservedNetwork {
                    key: n.labels.get(labels::NETWORK).cloned().unwrap_or_default(),
                    config_hash: n
                        .labels
                        .get(labels::CONFIG_HASH)
                        .cloned()
                        .unwrap_or_default(),
                    name: n.name,
                    id: n.id,
                })
                .collect()
        });
        let volumes = include_resources.then(|| {
            resources(&state.volumes, &external_volumes)
                .into_iter()
                .map(|v| ObservedVolume {
                    key: v.labels.get(labels::VOLUME).cloned().unwrap_or_default(),
                    name: v.name,
                })
                .collect()
        });
        let images = project
            .services
            .iter()
            .map(|(name, s)| {
                let reference = spec::image_ref(&project.name, name, s);
                let id = state.images.get(&familiar(&reference)).cloned();
                (reference, id)
            })
            .collect();
        Ok(Observed {
            containers,
            networks,
            volumes,
            images,
        })
    }

    fn apply_now(
        &self,
        project: &Project,
        meta: &ProjectMeta,
        action: &Action,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        if let Some(status) = state.injected(Some(ActionKind::of(action))) {
            return Err(action_error(
                project,
                action,
                server_error(status, "injected failure"),
            ));
        }
        let fail = |status: u16, message: &str| {
            action_error(project, action, server_error(status, message))
        };
        let now = Instant::now();
        match action {
            Action::CreateNetwork { network } => {
                let name = network_name(project, network);
                let external = project.networks.get(network).is_some_and(|n| n.external);
                match state.networks.get(&name) {
                    Some(_) if external => Ok(()),
                    None if external => Err(Error::ExternalNetworkMissing { network: name }),
                    Some(existing) => {
                        let ours = existing.labels.get(labels::PROJECT) == Some(&project.name)
                            && existing.labels.get(labels::NETWORK) == Some(network);
                        if ours {
                            Ok(())
                        } else {
                            Err(Error::NetworkNameTaken {
                                network: name,
                                project: project.name.clone(),
                            })
                        }
                    }
                    None => {
                        let request = spec::network_spec(project, network)?;
                        let id = state.id();
                        let labels = request.labels.unwrap_or_default().into_iter().collect();
                        state
                            .networks
                            .insert(name.clone(), FakeResource { id, name, labels });
                        Ok(())
                    }
                }
            }
            Action::CreateVolume { volume } => {
                let name = volume_name(project, volume);
                let external = project.volumes.get(volume).is_some_and(|v| v.external);
                match state.volumes.get(&name) {
                    Some(_) if external => Ok(()),
                    None if external => Err(Error::ExternalVolumeMissing { volume: name }),
                    Some(existing)
                        if existing.labels.get(labels::PROJECT) == Some(&project.name) =>
                    {
                        Ok(())
                    }
                    Some(_) => Err(Error::VolumeNameTaken {
                        volume: name,
                        project: project.name.clone(),
                    }),
                    None => {
                        let request = spec::volume_spec(project, volume)?;
                        let labels = request.labels.unwrap_or_default().into_iter().collect();
                        let id = state.id();
                        state
                            .volumes
                            .insert(name.clone(), FakeResource { id, name, labels });
                        Ok(())
                    }
                }
            }
            Action::EnsureImage { service } => {
                let config = project
                    .services
                    .get(service)
                    .ok_or_else(|| Error::NotInProject {
                        kind: "service",
                        name: service.clone(),
                    })?;
                let image = spec::image_ref(&project.name, service, config);
                let key = familiar(&image);
                let policy = config.pull_policy.as_str();
                if state.images.contains_key(&key) && policy != "always" && policy != "build" {
                    return Ok(());
                }
                if config.build.is_some() {
                    spec::build_spec(project, service, &|_| None)?;
                } else if policy == "never" || policy == "build" {
                    return Err(Error::ImageMissing {
                        service: service.clone(),
                        image,
                    });
                } else if state.unpullable.contains(&key) {
                    return Err(Error::PullFailed {
                        service: service.clone(),
                        image,
                        message: "pull access denied".to_owned(),
                    });
                }
                let id = format!("sha256:{}", state.id());
                state.images.insert(key, id);
                Ok(())
            }
            Action::CreateContainer {
                service,
                number,
                name,
            } => {
                let hash = meta.config_hash(service)?;
                let spec = spec::container_spec(project, meta, service, *number, name, hash)?;
                if state.containers.contains_key(name) {
                    return Err(fail(409, "name in use"));
                }
                let image = spec.body.image.clone().unwrap_or_default();
                let Some(image_id) = state.images.get(&familiar(&image)).cloned() else {
                    return Err(fail(404, &format!("No such image: {image}")));
                };
                let mut networks: Vec<String> = spec
                    .body
                    .networking_config
                    .iter()
                    .flat_map(|n| n.endpoints_config.iter().flat_map(|e| e.keys().cloned()))
                    .collect();
                networks.extend(spec.connect.iter().map(|(n, _)| n.clone()));
                if let Some(missing) = networks.iter().find(|n| !state.networks.contains_key(*n)) {
                    return Err(fail(404, &format!("network {missing} not found")));
                }
                let host = spec.body.host_config.clone().unwrap_or_default();
                let mut volumes: Vec<String> = host
                    .binds
                    .iter()
                    .flatten()
                    .filter_map(|b| b.split(':').next())
                    .filter(|source| !source.starts_with('/'))
                    .map(str::to_owned)
                    .collect();
                let volume_mounts = host
                    .mounts
                    .iter()
                    .flatten()
                    .filter(|m| m.typ == Some(bollard::models::MountType::VOLUME));
                for mount in volume_mounts {
                    // A mount without a source is anonymous: the engine
                    // names it by a fresh id.
                    volumes.push(mount.source.clone().unwrap_or_else(|| state.id()));
                }
                for volume in &volumes {
                    if !state.volumes.contains_key(volume) {
                        // The engine creates a missing named volume on use.
                        let id = state.id();
                        state.volumes.insert(
                            volume.clone(),
                            FakeResource {
                                id,
                                name: volume.clone(),
                                labels: BTreeMap::new(),
                            },
                        );
                    }
                }
                let by_config = state.config_behaviours.get(hash).copied();
                let by_service = by_config.or_else(|| state.behaviours.get(service).copied());
                let behaviour = by_service.unwrap_or_else(|| {
                    if project.services.get(service).is_some_and(declares_health) {
                        Behaviour::HealthyAfter(Duration::ZERO)
                    } else {
                        Behaviour::Runs
                    }
                });
                let id = state.id();
                let labels = spec
                    .body
                    .labels
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                state.containers.insert(
                    name.clone(),
                    FakeContainer {
                        id,
                        name: name.clone(),
                        labels,
                        image,
                        image_id,
                        spec: Some(spec),
                        networks,
                        volumes,
                        state: ContainerState::Created,
                        health: None,
                        behaviour,
                        started_at: None,
                    },
                );
                Ok(())
            }
            Action::StartContainer { name } => {
                let Some(container) = state.containers.get_mut(name) else {
                    return Err(fail(404, "no such container"));
                };
                let (current, _) = container.current(now);
                if current == ContainerState::Paused {
                    // As the real backend does: a paused container is unpaused.
                    container.state = ContainerState::Running;
                } else if current != ContainerState::Running {
                    container.state = ContainerState::Running;
                    container.health = None;
                    container.started_at = Some(now);
                }
                Ok(())
            }
            Action::StopContainer { name } => {
                let Some(container) = state.containers.get_mut(name) else {
                    return Err(fail(404, "no such container"));
                };
                let (current, health) = container.current(now);
                // Killed after its grace period, as a PID 1 without a TERM
                // handler is: a stopped service must not look like a one-shot
                // that completed (exit 0).
                container.state = match current {
                    ContainerState::Running
                    | ContainerState::Paused
                    | ContainerState::Restarting => ContainerState::Exited(137),
                    other => other,
                };
                container.health = health.filter(|_| false);
                container.started_at = None;
                Ok(())
            }
            Action::RemoveContainer { name, volumes } => {
                let Some(container) = state.containers.get(name) else {
                    return Ok(());
                };
                if container.current(now).0 == ContainerState::Running {
                    return Err(fail(409, "cannot remove a running container"));
                }
                let Some(container) = state.containers.remove(name) else {
                    return Ok(());
                };
                if *volumes {
                    // Anonymous volumes go unless another container mounts
                    // them; named ones stay.
                    for volume in container.volumes.iter().filter(|v| is_anonymous(v)) {
                        if !state
                            .containers
                            .values()
                            .any(|c| c.volumes.contains(volume))
                        {
                            state.volumes.remove(volume);
                        }
                    }
                }
                Ok(())
            }
            Action::RenameContainer { from, to } => {
                if state.containers.contains_key(to) {
                    return Err(fail(409, "name in use"));
                }
                let Some(mut container) = state.containers.remove(from) else {
                    return Err(fail(404, "no such container"));
                };
                container.name = to.clone();
                state.containers.insert(to.clone(), container);
                Ok(())
            }
            // Waits and delays take time: `apply` runs them, not this.
            Action::WaitFor { .. } | Action::WaitContainer { .. } | Action::Delay { .. } => Ok(()),
            Action::RemoveNetwork { network } => {
                let name = network_name(project, network);
                if project.networks.get(network).is_some_and(|n| n.external) {
                    return Err(Error::ExternalNotRemoved {
                        kind: "network",
                        name,
                    });
                }
                let Some(existing) = state.networks.get(&name) else {
                    return Ok(());
                };
                if existing.labels.get(labels::PROJECT) != Some(&project.name) {
                    return Err(Error::NetworkNameTaken {
                        network: name,
                        project: project.name.clone(),
                    });
                }
                if state
                    .containers
                    .values()
                    .any(|c| c.networks.contains(&name))
                {
                    return Err(fail(409, "network has active endpoints"));
                }
                state.networks.remove(&name);
                Ok(())
            }
            Action::RemoveVolume { volume } => {
                let name = volume_name(project, volume);
                if project.volumes.get(volume).is_some_and(|v| v.external) {
                    return Err(Error::ExternalNotRemoved {
                        kind: "volume",
                        name,
                    });
                }
                let Some(existing) = state.volumes.get(&name) else {
                    return Ok(());
                };
                if existing.labels.get(labels::PROJECT) != Some(&project.name) {
                    return Err(Error::VolumeNameTaken {
                        volume: name,
                        project: project.name.clone(),
                    });
                }
                if state.containers.values().any(|c| c.volumes.contains(&name)) {
                    return Err(fail(409, "volume is in use"));
                }
                state.volumes.remove(&name);
                Ok(())
            }
        }
    }

    /// One look at the service's replicas.
    fn look(
        &self,
        project: &Project,
        service: &str,
        condition: Condition,
    ) -> Result<Progress, Error> {
        let mut state = self.lock();
        if let Some(status) = state.injected(Some(ActionKind::WaitFor)) {
            let action = Action::WaitFor {
                service: service.to_owned(),
                condition,
            };
            return Err(action_error(
                project,
                &action,
                server_error(status, "injected failure"),
            ));
        }
        let config = project
            .services
            .get(service)
            .ok_or_else(|| Error::NotInProject {
                kind: "service",
                name: service.to_owned(),
            })?;
        let now = Instant::now();
        let replicas: Vec<ObservedContainer> = state
            .containers
            .values()
            .filter(|c| {
                c.labels.get(labels::PROJECT) == Some(&project.name)
                    && c.labels.get(labels::SERVICE).map(String::as_str) == Some(service)
                    && c.labels.get(labels::ONEOFF).map(String::as_str) != Some("True")
            })
            .map(|c| observed(c, now, &state.networks))
            .collect();
        if replicas.is_empty() && expected_replicas(config) == 0 {
            return Ok(Progress::Met);
        }
        let refs: Vec<&ObservedContainer> = replicas.iter().collect();
        Ok(evaluate(service, condition, &refs, declares_health(config)))
    }

    async fn wait_impl(
        &self,
        project: &Project,
        service: &str,
        condition: Condition,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        loop {
            match self.look(project, service, condition)? {
                Progress::Met => return Ok(()),
                Progress::Failed(err) => return Err(err),
                Progress::Pending => {}
            }
            if deadline.is_some_and(|d| Instant::now() + self.poll_interval > d) {
                return Err(Error::WaitTimedOut {
                    service: service.to_owned(),
                    condition,
                });
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}

impl FakeBackend {
    /// One look at a container for [`Action::WaitContainer`]; the fake
    /// engine never restarts containers by itself.
    fn sample(
        &self,
        project: &Project,
        action: &Action,
        name: &str,
    ) -> Result<Option<Sample>, Error> {
        let mut state = self.lock();
        if let Some(status) = state.injected(Some(ActionKind::WaitContainer)) {
            return Err(action_error(
                project,
                action,
                server_error(status, "injected failure"),
            ));
        }
        Ok(state.containers.get(name).map(|c| {
            let (state, health) = c.current(Instant::now());
            Sample {
                state,
                health,
                restarts: 0,
            }
        }))
    }

    async fn wait_container(&self, project: &Project, action: &Action) -> Result<(), Error> {
        let Action::WaitContainer {
            service,
            name,
            condition,
            monitor,
        } = action
        else {
            return Ok(());
        };
        let declares = project.services.get(service).is_some_and(declares_health);
        let mut watch = Watch::new(
            service,
            name,
            *condition,
            *monitor,
            declares,
            Instant::now(),
        );
        loop {
            let sample = self.sample(project, action, name)?;
            match watch.look(sample, Instant::now()) {
                Progress::Met => return Ok(()),
                Progress::Failed(error) => return Err(error),
                Progress::Pending => tokio::time::sleep(self.poll_interval).await,
            }
        }
    }
}

fn observed(
    c: &FakeContainer,
    now: Instant,
    networks: &BTreeMap<String, FakeResource>,
) -> ObservedContainer {
    let (state, health) = c.current(now);
    let label = |key: &str| c.labels.get(key).cloned().unwrap_or_default();
    ObservedContainer {
        id: c.id.clone(),
        name: c.name.clone(),
        service: label(labels::SERVICE),
        number: label(labels::CONTAINER_NUMBER).parse().unwrap_or(0),
        oneoff: label(labels::ONEOFF) == "True",
        config_hash: label(labels::CONFIG_HASH),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        state,
        health,
        // The fake's networks keep their id while they exist.
        networks: c
            .networks
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    networks.get(n).map(|r| r.id.clone()).unwrap_or_default(),
                )
            })
            .collect(),
    }
}

impl Backend for FakeBackend {
    fn observe<'a>(
        &'a self,
        project: &'a Project,
        include_resources: bool,
    ) -> BoxFuture<'a, Result<Observed, Error>> {
        Box::pin(async move {
            let index = self.begin(Call::Observe {
                project: project.name.clone(),
                include_resources,
            });
            let result = self.observe_now(project, include_resources);
            self.end(index, result)
        })
    }

    fn observe_containers<'a>(
        &'a self,
        project: &'a Project,
    ) -> BoxFuture<'a, Result<Observed, Error>> {
        Box::pin(async move {
            let index = self.begin(Call::ObserveContainers {
                project: project.name.clone(),
            });
            let result = self.observe_now(project, false).map(|observed| Observed {
                containers: observed.containers,
                ..Observed::default()
            });
            self.end(index, result)
        })
    }

    fn observe_all_containers(&self) -> BoxFuture<'_, Result<super::AllContainers, Error>> {
        Box::pin(async move {
            let index = self.begin(Call::ObserveAllContainers);
            let result = self.all_containers_now();
            self.end(index, result)
        })
    }

    fn image_ids<'a>(
        &'a self,
        references: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<BTreeMap<String, Option<String>>, Error>> {
        Box::pin(async move {
            let index = self.begin(Call::ImageIds {
                references: references.iter().cloned().collect(),
            });
            let result = {
                let mut state = self.lock();
                match state.injected(None) {
                    Some(status) => Err(Error::EngineRejected {
                        operation: "list images",
                        target: "images".to_owned(),
                        status,
                        message: "injected failure".to_owned(),
                    }),
                    None => Ok(references
                        .iter()
                        .map(|r| (r.clone(), state.images.get(&familiar(r)).cloned()))
                        .collect()),
                }
            };
            self.end(index, result)
        })
    }

    fn apply<'a>(
        &'a self,
        project: &'a Project,
        meta: &'a ProjectMeta,
        action: &'a Action,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let index = self.begin(Call::Apply(action.clone()));
            self.delay(ActionKind::of(action)).await;
            // The events the engine sends for stackd's own actions, so the
            // controller is tested against its own echo too.
            let echo = match action {
                Action::StopContainer { name } => Some((name, EventKind::Died, true)),
                Action::RemoveContainer { name, .. } => Some((name, EventKind::Destroyed, true)),
                Action::StartContainer { name } => Some((name, EventKind::Started, false)),
                _ => None,
            };
            if let Some((name, kind, true)) = echo {
                self.emit_for(name, kind);
            }
            let result = match action {
                Action::WaitFor { service, condition } => {
                    self.wait_impl(project, service, *condition, None).await
                }
                Action::WaitContainer { .. } => self.wait_container(project, action).await,
                Action::Delay { duration, .. } => {
                    tokio::time::sleep(*duration).await;
                    Ok(())
                }
                _ => self.apply_now(project, meta, action),
            };
            if let (Some((name, kind, false)), Ok(())) = (echo, &result) {
                self.emit_for(name, kind);
            }
            self.end(index, result)
        })
    }

    fn wait_for<'a>(
        &'a self,
        project: &'a Project,
        service: &'a str,
        condition: Condition,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let index = self.begin(Call::WaitFor {
                service: service.to_owned(),
                condition,
            });
            self.delay(ActionKind::WaitFor).await;
            let result = self.wait_impl(project, service, condition, deadline).await;
            self.end(index, result)
        })
    }

    fn events(&self) -> futures::stream::BoxStream<'_, Result<EngineEvent, Error>> {
        let receiver = self.events.subscribe();
        // A slow reader that missed events sees the stream end, as with a
        // dropped engine connection, and resyncs.
        futures::stream::unfold(receiver, |mut receiver| async move {
            let event = receiver.recv().await.ok()?;
            Some((Ok(event), receiver))
        })
        .boxed()
    }
}

/// An engine-named (anonymous) volume: 64 hex digits.
fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn project() -> Project {
        serde_json::from_value(serde_json::json!({
            "name": "shop",
            "services": {
                "db": {"image": "busybox", "healthcheck": {"test": ["CMD", "true"]},
                       "volumes": [{"type": "volume", "source": "data", "target": "/data"}]},
                "web": {"image": "busybox", "pull_policy": "never"},
            },
            "networks": {"default": {"name": "shop_default"}},
            "volumes": {"data": {"name": "shop_data"}},
        }))
        .unwrap()
    }

    fn meta() -> ProjectMeta {
        ProjectMeta {
            working_dir: "/srv".into(),
            config_files: vec!["/srv/compose.yaml".into()],
            config_hashes: [
                ("db".to_owned(), "h1".to_owned()),
                ("web".to_owned(), "h2".to_owned()),
            ]
            .into(),
            variables: Default::default(),
        }
    }

    fn create(service: &str) -> Action {
        Action::CreateContainer {
            service: service.into(),
            number: 1,
            name: format!("shop-{service}-1"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn created_containers_are_observed_with_their_labels() {
        let fake = FakeBackend::new();
        let (p, m) = (project(), meta());
        fake.add_image("busybox");
        for action in [
            Action::CreateNetwork {
                network: "default".into(),
            },
            Action::CreateVolume {
                volume: "data".into(),
            },
            create("db"),
            Action::StartContainer {
                name: "shop-db-1".into(),
            },
        ] {
            fake.apply(&p, &m, &action).await.unwrap();
        }
        let observed = fake.observe(&p, true).await.unwrap();
        assert_eq!(observed.containers.len(), 1);
        let db = &observed.containers[0];
        assert_eq!(
            (db.service.as_str(), db.number, db.config_hash.as_str()),
            ("db", 1, "h1")
        );
        assert_eq!(
            (db.state, db.health),
            (ContainerState::Running, Some(Health::Healthy))
        );
        assert_eq!(observed.networks.unwrap()[0].key, "default");
        assert_eq!(observed.volumes.unwrap()[0].key, "data");
        assert!(observed.images["busybox"].is_some());
        let containers_only = fake.observe_containers(&p).await.unwrap();
        assert_eq!(containers_only.containers, observed.containers);
        assert!(containers_only.images.is_empty() && containers_only.volumes.is_none());
        let references = ["busybox".to_owned(), "docker.io/library/nope".to_owned()].into();
        let ids = fake.image_ids(&references).await.unwrap();
        assert_eq!(ids["busybox"], observed.images["busybox"]);
        assert_eq!(ids["docker.io/library/nope"], None);
        assert!(fake.observe(&p, false).await.unwrap().networks.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn injected_failures_map_like_the_engine_and_run_out() {
        let fake = FakeBackend::new();
        let (p, m) = (project(), meta());
        fake.add_image("busybox");
        fake.apply(
            &p,
            &m,
            &Action::CreateNetwork {
                network: "default".into(),
            },
        )
        .await
        .unwrap();
        fake.fail_next(ActionKind::CreateContainer, 409, 1);
        let err = fake.apply(&p, &m, &create("web")).await.unwrap_err();
        assert!(matches!(err, Error::NameInUse { ref container } if container == "shop-web-1"));
        fake.apply(&p, &m, &create("web")).await.unwrap();
        assert_eq!(fake.count(ActionKind::CreateContainer), 2);
        assert!(fake.calls()[1].failed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_image_with_pull_policy_never_names_the_service() {
        let fake = FakeBackend::new();
        let err = fake
            .apply(
                &project(),
                &meta(),
                &Action::EnsureImage {
                    service: "web".into(),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "service web: image busybox is not on the engine and pull_policy is never"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_fails_when_the_service_turns_unhealthy() {
        let fake = FakeBackend::new();
        let (p, m) = (project(), meta());
        fake.add_image("busybox");
        fake.set_behaviour("db", Behaviour::UnhealthyAfter(Duration::from_secs(3)));
        for action in [
            Action::CreateNetwork {
                network: "default".into(),
            },
            create("db"),
            Action::StartContainer {
                name: "shop-db-1".into(),
            },
        ] {
            fake.apply(&p, &m, &action).await.unwrap();
        }
        let started = Instant::now();
        let err = fake
            .wait_for(&p, "db", Condition::ServiceHealthy, None)
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "unhealthy");
        assert!(Instant::now() - started >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_gives_up_at_its_deadline() {
        let fake = FakeBackend::new();
        let (p, m) = (project(), meta());
        fake.add_image("busybox");
        fake.set_behaviour("db", Behaviour::HealthyAfter(Duration::from_secs(60)));
        for action in [
            Action::CreateNetwork {
                network: "default".into(),
            },
            create("db"),
            Action::StartContainer {
                name: "shop-db-1".into(),
            },
        ] {
            fake.apply(&p, &m, &action).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = fake
            .wait_for(&p, "db", Condition::ServiceHealthy, Some(deadline))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::WaitTimedOut { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn anonymous_volumes_go_with_their_container_only_when_asked() {
        let fake = FakeBackend::new();
        let mut p = project();
        let web = p.services.get_mut("web").unwrap();
        web.volumes = serde_json::from_value(serde_json::json!(
            [{"type": "volume", "target": "/cache"}]
        ))
        .unwrap();
        let m = meta();
        fake.add_image("busybox");
        let network = Action::CreateNetwork {
            network: "default".into(),
        };
        fake.apply(&p, &m, &network).await.unwrap();
        for (volumes, left) in [(false, 1), (true, 1)] {
            fake.apply(&p, &m, &create("web")).await.unwrap();
            let remove = Action::RemoveContainer {
                name: "shop-web-1".into(),
                volumes,
            };
            fake.apply(&p, &m, &remove).await.unwrap();
            // The first round leaves its volume; the second removes its own.
            assert_eq!(fake.volumes().len(), left, "volumes: {volumes}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn running_containers_are_not_removed_and_used_volumes_stay() {
        let fake = FakeBackend::new();
        let (p, m) = (project(), meta());
        fake.add_image("busybox");
        for action in [
            Action::CreateNetwork {
                network: "default".into(),
            },
            Action::CreateVolume {
                volume: "data".into(),
            },
            create("db"),
            Action::StartContainer {
                name: "shop-db-1".into(),
            },
        ] {
            fake.apply(&p, &m, &action).await.unwrap();
        }
        let remove = Action::RemoveContainer {
            name: "shop-db-1".into(),
            volumes: false,
        };
        assert_eq!(
            fake.apply(&p, &m, &remove).await.unwrap_err().reason(),
            "container_busy"
        );
        let volume = Action::RemoveVolume {
            volume: "data".into(),
        };
        assert_eq!(
            fake.apply(&p, &m, &volume).await.unwrap_err().reason(),
            "volume_in_use"
        );
        fake.apply(
            &p,
            &m,
            &Action::StopContainer {
                name: "shop-db-1".into(),
            },
        )
        .await
        .unwrap();
        fake.apply(&p, &m, &remove).await.unwrap();
        fake.apply(&p, &m, &volume).await.unwrap();
        fake.apply(&p, &m, &remove).await.unwrap();
        assert!(fake.container_names().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn objects_without_the_project_label_are_neither_seen_nor_removed() {
        let fake = FakeBackend::new();
        let (p, m) = (project(), meta());
        fake.insert_network(FakeResource {
            id: "n1".into(),
            name: "shop_default".into(),
            labels: BTreeMap::new(),
        });
        let observed = fake.observe(&p, true).await.unwrap();
        assert_eq!(observed.networks, Some(vec![]));
        let err = fake
            .apply(
                &p,
                &m,
                &Action::RemoveNetwork {
                    network: "default".into(),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "network_name_taken");
        assert!(fake.networks().contains_key("shop_default"));
    }

    #[tokio::test(start_paused = true)]
    async fn external_networks_and_volumes_are_observed_by_name_and_a_stack_on_them_plans() {
        let fake = FakeBackend::new();
        let p: Project = serde_json::from_value(serde_json::json!({
            "name": "shop",
            "services": {"web": {"image": "busybox", "networks": {"edge": null},
                "volumes": [{"type": "volume", "source": "shared", "target": "/s"}]}},
            "networks": {"edge": {"name": "edge", "external": true}},
            "volumes": {"shared": {"name": "shared-data", "external": true}},
        }))
        .unwrap();
        fake.add_image("busybox");
        for (name, id) in [("edge", "n1"), ("edge-two", "n2")] {
            fake.insert_network(FakeResource {
                id: id.into(),
                name: name.into(),
                labels: BTreeMap::new(),
            });
        }
        fake.insert_volume(FakeResource {
            id: "shared-data".into(),
            name: "shared-data".into(),
            labels: BTreeMap::new(),
        });
        let observed = fake.observe(&p, true).await.unwrap();
        let networks: Vec<String> = observed
            .networks
            .iter()
            .flatten()
            .map(|n| n.name.clone())
            .collect();
        let volumes: Vec<String> = observed
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.clone())
            .collect();
        assert_eq!(
            (networks, volumes),
            (vec!["edge".to_owned()], vec!["shared-data".to_owned()])
        );
        let plan = crate::plan::plan_up(&p, &observed, &crate::plan::UpOptions::default())
            .expect("a stack on existing external resources plans");
        assert!(plan.steps.iter().all(|s| !matches!(
            s.action,
            Action::CreateNetwork { .. } | Action::CreateVolume { .. }
        )));
    }
}
