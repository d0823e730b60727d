//! `DockerBackend`: the `Backend` over bollard. It connects on first use
//! (so commands that never touch the engine work without one), honours
//! `DOCKER_HOST`, negotiates the API version down to the engine's, and sends
//! nothing newer than API 1.41.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bollard::models::{
    ContainerStateStatusEnum, ContainerSummary, ImageSummary, Mount, MountType,
    NetworkConnectRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, InspectNetworkOptions,
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, ListVolumesOptions,
    RemoveContainerOptions, RemoveVolumeOptions, RenameContainerOptions, StartContainerOptions,
    StopContainerOptions, TagImageOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures::TryStreamExt;
use tokio::sync::{broadcast, OnceCell};
use tokio::time::Instant;

use super::event_hub::EventHub;
use super::spec::{self, Dockerfile, FileContent, ADDED_DOCKERFILE};
use super::status::{evaluate, parse_status, Progress};
use super::tarball::{self, Meta, TarWriter};
use super::{
    action_error, labels, network_name, volume_name, Backend, BoxFuture, Error, ProjectMeta,
};
use crate::model::{Project, ServiceConfig};
use crate::plan::{
    Action, Condition, Observed, ObservedContainer, ObservedNetwork, ObservedVolume,
};

/// The bollard client's own per-request bound; longer stops need more.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a create that meets its name taken waits for the container
/// holding it to appear (see `remove_unstarted_leftover`): an engine under
/// load takes seconds to set up a container's filesystem.
const LEFTOVER_CREATE_PATIENCE: Duration = Duration::from_secs(10);

/// The `Backend` over a Docker engine.
#[derive(Debug)]
pub struct DockerBackend {
    host: Option<String>,
    client: OnceCell<Docker>,
    pull_timeout: Duration,
    pub(super) poll_interval: Duration,
    events: EventHub,
    /// Image reference → id, as last listed or inspected: the id goes in
    /// each new container's image label without a call per create.
    image_ids: std::sync::Mutex<HashMap<String, String>>,
}

impl Default for DockerBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl DockerBackend {
    /// A backend that connects on first use, to `DOCKER_HOST` or the local socket.
    pub fn new() -> Self {
        Self {
            host: None,
            client: OnceCell::new(),
            pull_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            events: EventHub::default(),
            image_ids: std::sync::Mutex::default(),
        }
    }

    /// A backend for the engine at `host` (`unix:///path`, `tcp://addr:port`)
    /// instead of `DOCKER_HOST`.
    pub fn for_host(host: &str) -> Self {
        Self {
            host: Some(host.to_owned()),
            ..Self::new()
        }
    }

    /// Bounds each image pull (5 minutes by default): a registry that never
    /// answers fails the pull instead of hanging.
    pub fn with_pull_timeout(mut self, timeout: Duration) -> Self {
        self.pull_timeout = timeout;
        self
    }

    /// How often a wait lists the service's containers when the engine
    /// reported no change to them (1 s by default): waits look again as soon
    /// as an event says a container of the service started, died or changed
    /// health, so this only bounds the delay when the event stream fails.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The connected client, connecting and negotiating the API version on
    /// first use. A failure is not remembered: the next call tries again.
    pub async fn client(&self) -> Result<&Docker, Error> {
        self.client
            .get_or_try_init(|| async {
                let docker = match &self.host {
                    Some(host) => Docker::connect_with_host(host),
                    None => {
                        let host = std::env::var("DOCKER_HOST").unwrap_or_default();
                        if host.is_empty() || host.starts_with("unix://") {
                            Docker::connect_with_local_defaults()
                        } else {
                            Docker::connect_with_defaults()
                        }
                    }
                }
                .map_err(|source| Error::EngineUnreachable { source })?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|source| Error::EngineUnreachable { source })
            })
            .await
    }

    async fn observe_impl(
        &self,
        project: &Project,
        include_resources: bool,
    ) -> Result<Observed, Error> {
        let docker = self.client().await?;
        let by_project: HashMap<String, Vec<String>> = [(
            "label".to_owned(),
            vec![format!("{}={}", labels::PROJECT, project.name)],
        )]
        .into();
        let refs: BTreeSet<String> = project
            .services
            .iter()
            .map(|(name, s)| spec::image_ref(&project.name, name, s))
            .collect();
        let containers = async {
            docker
                .list_containers(Some(ListContainersOptions {
                    all: true,
                    filters: Some(by_project.clone()),
                    ..ListContainersOptions::default()
                }))
                .await
                .map_err(engine("list containers", &project.name))
        };
        let images = async {
            if refs.is_empty() {
                return Ok(Vec::new());
            }
            let patterns = refs.iter().map(|r| familiar(r)).collect();
            docker
                .list_images(Some(ListImagesOptions {
                    filters: Some([("reference".to_owned(), patterns)].into()),
                    ..ListImagesOptions::default()
                }))
                .await
                .map_err(engine("list images", &project.name))
        };
        // External networks and volumes carry no project label: they are
        // looked up by name, in the same call when there are none to find.
        let (external_networks, external_volumes) = crate::plan::external_names(project);
        let networks = async {
            if !include_resources {
                return Ok(None);
            }
            let labelled = docker.list_networks(Some(ListNetworksOptions {
                filters: Some(by_project.clone()),
            }));
            let named = async {
                if external_networks.is_empty() {
                    return Ok(Vec::new());
                }
                docker
                    .list_networks(Some(ListNetworksOptions {
                        filters: Some([("name".to_owned(), external_networks.clone())].into()),
                    }))
                    .await
            };
            let (mut list, named) = futures::try_join!(labelled, named)
                .map_err(engine("list networks", &project.name))?;
            // The engine's name filter matches substrings.
            list.extend(named.into_iter().filter(|n| {
                n.name
                    .as_ref()
                    .is_some_and(|name| external_networks.contains(name))
            }));
            Ok(Some(list))
        };
        let volumes = async {
            if !include_resources {
                return Ok(None);
            }
            let labelled = docker.list_volumes(Some(ListVolumesOptions {
                filters: Some(by_project.clone()),
            }));
            let named = async {
                if external_volumes.is_empty() {
                    return Ok(Default::default());
                }
                docker
                    .list_volumes(Some(ListVolumesOptions {
                        filters: Some([("name".to_owned(), external_volumes.clone())].into()),
                    }))
                    .await
            };
            let (labelled, named) = futures::try_join!(labelled, named)
                .map_err(engine("list volumes", &project.name))?;
            let mut list = labelled.volumes.unwrap_or_default();
            list.extend(
                named
                    .volumes
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|v| external_volumes.contains(&v.name)),
            );
            Ok(Some(list))
        };
        let (containers, images, networks, volumes) =
            futures::try_join!(containers, images, networks, volumes)?;
        for reference in &refs {
            if let Some(id) = image_id_of(reference, &images) {
                self.remember_image(reference, Some(id));
            }
        }

        let mut observed = Observed {
            containers: containers.iter().filter_map(observed_container).collect(),
            networks: networks.map(|list| {
                list.into_iter()
                    .map(|n| {
                        let labels = n.labels.unwrap_or_default();
                        ObservedNetwork {
                            name: n.name.unwrap_or_default(),
                            id: n.id.unwrap_or_default(),
                            key: labels.get(labels::NETWORK).cloned().unwrap_or_default(),
                            config_hash: labels
                                .get(labels::CONFIG_HASH)
                                .cloned()
                                .unwrap_or_default(),
                        }
                    })
                    .collect()
            }),
            volumes: volumes.map(|list| {
                list.into_iter()
                    .map(|v| ObservedVolume {
                        key: v.labels.get(labels::VOLUME).cloned().unwrap_or_default(),
                        name: v.name,
                    })
                    .collect()
            }),
            images: refs
                .iter()
                .map(|r| (r.clone(), image_id_of(r, &images)))
                .collect(),
        };
        observed
            .containers
            .sort_by(|a, b| (&a.service, a.number, &a.name).cmp(&(&b.service, b.number, &b.name)));
        if let Some(networks) = observed.networks.as_mut() {
            networks.sort_by(|a, b| a.name.cmp(&b.name));
        }
        if let Some(volumes) = observed.volumes.as_mut() {
            volumes.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(observed)
    }

    async fn apply_impl(
        &self,
        project: &Project,
        meta: &ProjectMeta,
        action: &Action,
    ) -> Result<(), Error> {
        let docker = self.client().await?;
        let mapped = |e| action_error(project, action, e);
        match action {
            Action::CreateNetwork { network } => self.create_network(project, network).await,
            Action::CreateVolume { volume } => self.create_volume(project, volume).await,
            Action::EnsureImage { service } => self.ensure_image(project, meta, service).await,
            Action::CreateContainer {
                service,
                number,
                name,
            } => {
                self.create_container(project, meta, action, service, *number, name)
                    .await
            }
            Action::StartContainer { name } => {
                match docker
                    .start_container(name, None::<StartContainerOptions>)
                    .await
                {
                    // The engine refuses to start a paused container: unpause
                    // it instead (a conflict for any other reason stays one).
                    Err(e) if status(&e) == Some(409) => {
                        let paused = docker
                            .inspect_container(name, None::<InspectContainerOptions>)
                            .await
                            .ok()
                            .and_then(|c| c.state)
                            .and_then(|s| s.paused)
                            .unwrap_or(false);
                        if paused {
                            docker.unpause_container(name).await.map_err(mapped)
                        } else {
                            Err(mapped(e))
                        }
                    }
                    other => other.map_err(mapped),
                }
            }
            Action::StopContainer { name } => {
                // Without a grace period in the model (or for an orphan) the
                // engine uses the one the container was created with.
                let grace = service_of(project, name)
                    .and_then(|s| s.stop_grace_period)
                    .and_then(|d| d.to_std());
                let t = grace.map(|g| i32::try_from(g.as_secs()).unwrap_or(i32::MAX));
                let bound = grace.unwrap_or(Duration::from_secs(10)) + Duration::from_secs(30);
                let options = StopContainerOptions { signal: None, t };
                if bound > CLIENT_TIMEOUT {
                    let patient = docker.clone().with_timeout(bound);
                    patient.stop_container(name, Some(options)).await
                } else {
                    docker.stop_container(name, Some(options)).await
                }
                .map_err(mapped)
            }
            Action::RemoveContainer { name, volumes } => {
                let options = RemoveContainerOptions {
                    v: *volumes,
                    force: false,
                    link: false,
                };
                match docker.remove_container(name, Some(options)).await {
                    Err(e) if status(&e) == Some(404) => Ok(()),
                    other => other.map_err(mapped),
                }
            }
            Action::RenameContainer { from, to } => docker
                .rename_container(from, RenameContainerOptions { name: to.clone() })
                .await
                .map_err(mapped),
            Action::WaitFor { service, condition } => {
                self.wait_impl(project, service, *condition, None).await
            }
            Action::WaitContainer { .. } => self.wait_container(project, action).await,
            Action::Delay { duration, .. } => {
                tokio::time::sleep(*duration).await;
                Ok(())
            }
            Action::RemoveNetwork { network } => {
                self.remove_network(project, action, network).await
            }
            Action::RemoveVolume { volume } => self.remove_volume(project, action, volume).await,
        }
    }

    async fn create_network(&self, project: &Project, key: &str) -> Result<(), Error> {
        let docker = self.client().await?;
        let name = network_name(project, key);
        let external = project.networks.get(key).is_some_and(|n| n.external);
        let found = match docker
            .inspect_network(&name, None::<InspectNetworkOptions>)
            .await
        {
            // Inspect also matches id prefixes: only an exact name counts.
            Ok(n) if n.name.as_deref() == Some(name.as_str()) => Some(n),
            Ok(_) => None,
            Err(e) if status(&e) == Some(404) => None,
            Err(e) => return Err(engine("inspect network", &name)(e)),
        };
        if external {
            return match found {
                Some(_) => Ok(()),
                None => Err(Error::ExternalNetworkMissing { network: name }),
            };
        }
        if let Some(existing) = found {
            let labels = existing.labels.unwrap_or_default();
            let ours = labels.get(labels::PROJECT) == Some(&project.name)
                && labels.get(labels::NETWORK).map(String::as_str) == Some(key);
            return if ours {
                Ok(())
            } else {
                Err(Error::NetworkNameTaken {
                    network: name,
                    project: project.name.clone(),
                })
            };
        }
        let request = spec::network_spec(project, key)?;
        docker.create_network(request).await.map(drop).map_err(|e| {
            action_error(
                project,
                &Action::CreateNetwork {
                    network: key.to_owned(),
                },
                e,
            )
        })
    }

    async fn create_volume(&self, project: &Project, key: &str) -> Result<(), Error> {
        let docker = self.client().await?;
        let name = volume_name(project, key);
        if project.volumes.get(key).is_some_and(|v| v.external) {
            return match docker.inspect_volume(&name).await {
                Ok(_) => Ok(()),
                Err(e) if status(&e) == Some(404) => {
                    Err(Error::ExternalVolumeMissing { volume: name })
                }
                Err(e) => Err(engine("inspect volume", &name)(e)),
            };
        }
        let request = spec::volume_spec(project, key)?;
        // Creating a volume that exists returns it unchanged: its labels
        // tell whether it is ours.
        let volume = docker.create_volume(request).await.map_err(|e| {
            action_error(
                project,
                &Action::CreateVolume {
                    volume: key.to_owned(),
                },
                e,
            )
        })?;
        if volume.labels.get(labels::PROJECT) != Some(&project.name) {
            return Err(Error::VolumeNameTaken {
                volume: name,
                project: project.name.clone(),
            });
        }
        Ok(())
    }

    async fn ensure_image(
        &self,
        project: &Project,
        meta: &ProjectMeta,
        service_name: &str,
    ) -> Result<(), Error> {
        let docker = self.client().await?;
        let service = project
            .services
            .get(service_name)
            .ok_or_else(|| Error::NotInProject {
                kind: "service",
                name: service_name.to_owned(),
            })?;
        let image = spec::image_ref(&project.name, service_name, service);
        let policy = service.pull_policy.as_str();
        // Whatever happens below, the id known for the reference may change.
        self.remember_image(&image, None);
        if policy != "always" && policy != "build" {
            match docker.inspect_image(&image).await {
                Ok(found) => {
                    self.remember_image(&image, found.id);
                    return Ok(());
                }
                Err(e) if status(&e) == Some(404) => {}
                Err(e) => return Err(engine("inspect image", &image)(e)),
            }
        }
        if service.build.is_some() {
            return self.build(project, meta, service_name, &image).await;
        }
        if policy == "never" || policy == "build" {
            return Err(Error::ImageMissing {
                service: service_name.to_owned(),
                image,
            });
        }
        let (from_image, tag) = split_for_pull(&image);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag: Some(tag),
            platform: service.platform.clone(),
            ..CreateImageOptions::default()
        };
        let pull = docker
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) });
        match tokio::time::timeout(self.pull_timeout, pull).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::PullFailed {
                service: service_name.to_owned(),
                image,
                message: engine_message(&e),
            }),
            Err(_) => Err(Error::PullTimedOut {
                service: service_name.to_owned(),
                image,
                after: self.pull_timeout,
            }),
        }
    }

    async fn build(
        &self,
        project: &Project,
        meta: &ProjectMeta,
        service_name: &str,
        image: &str,
    ) -> Result<(), Error> {
        let docker = self.client().await?;
        let variable = |k: &str| meta.variables.get(k).map(str::to_owned);
        let build = spec::build_spec(project, service_name, &variable)?;
        let body = if build.options.remote.is_some() {
            // The engine fetches a remote context itself; the request still
            // needs a body.
            bollard::body_full(Vec::new().into())
        } else {
            let context = build.context.clone();
            let (keep, extra): (String, Option<Vec<u8>>) = match &build.dockerfile {
                Dockerfile::InContext(relative) => (relative.clone(), None),
                Dockerfile::Inline(text) => {
                    (ADDED_DOCKERFILE.to_owned(), Some(text.clone().into_bytes()))
                }
                Dockerfile::Outside(path) => {
                    let data = tokio::fs::read(path).await.map_err(|source| {
                        Error::BuildContextUnreadable {
                            service: service_name.to_owned(),
                            path: path.clone(),
                            source,
                        }
                    })?;
                    (ADDED_DOCKERFILE.to_owned(), Some(data))
                }
            };
            let packed = tokio::task::spawn_blocking(move || {
                let extra: Vec<(&str, &[u8])> = extra
                    .as_deref()
                    .map(|data| vec![(ADDED_DOCKERFILE, data)])
                    .unwrap_or_default();
                tarball::pack_context(&context, &keep, &extra)
            })
            .await
            .map_err(|e| Error::BuildContextUnreadable {
                service: service_name.to_owned(),
                path: build.context.clone(),
                source: std::io::Error::other(e),
            })?
            .map_err(|(path, source)| Error::BuildContextUnreadable {
                service: service_name.to_owned(),
                path,
                source,
            })?;
            bollard::body_full(packed.into())
        };
        let failed = |message: String| Error::BuildFailed {
            service: service_name.to_owned(),
            image: image.to_owned(),
            message,
        };
        docker
            .build_image(build.options, None, Some(body))
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(|e| failed(engine_message(&e)))?;
        for extra in &build.extra_tags {
            let (repo, tag) = split_for_pull(extra);
            docker
                .tag_image(
                    image,
                    Some(TagImageOptions {
                        repo: Some(repo),
                        tag: Some(tag),
                    }),
                )
                .await
                .map_err(|e| failed(format!("tagging {extra}: {}", engine_message(&e))))?;
        }
        Ok(())
    }

    async fn create_container(
        &self,
        project: &Project,
        meta: &ProjectMeta,
        action: &Action,
        service: &str,
        number: u32,
        name: &str,
    ) -> Result<(), Error> {
        let docker = self.client().await?;
        let hash = meta.config_hash(service)?;
        let mut spec = spec::container_spec(project, meta, service, number, name, hash)?;
        resolve_seccomp_profiles(&mut spec, service, &meta.working_dir)?;
        if let Some(replaced) = replaced_id_prefix(name) {
            let image = project
                .services
                .get(service)
                .map(|s| spec::image_ref(&project.name, service, s))
                .unwrap_or_default();
            self.inherit_anonymous_volumes(replaced, &image, &mut spec)
                .await?;
        }
        let mut files = Vec::new();
        for file in &spec.files {
            let content = match &file.content {
                FileContent::Inline(text) => text.clone(),
                FileContent::Variable(variable) => meta
                    .variables
                    .get(variable)
                    .map(str::to_owned)
                    .ok_or_else(|| Error::VariableUnset {
                        service: service.to_owned(),
                        kind: file.kind,
                        name: file.name.clone(),
                        variable: variable.clone(),
                    })?,
            };
            files.push((file, content));
        }
        let image = project
            .services
            .get(service)
            .map(|s| spec::image_ref(&project.name, service, s))
            .unwrap_or_default();
        if let Some(id) = self.image_id(&image).await {
            spec.body
                .labels
                .get_or_insert_with(Default::default)
                .insert(labels::IMAGE.to_owned(), id);
        }
        let options = CreateContainerOptions {
            name: Some(name.to_owned()),
            platform: spec.platform.clone(),
        };
        let created = match docker
            .create_container(Some(options.clone()), spec.body.clone())
            .await
        {
            Err(e) if status(&e) == Some(409) => {
                if !self.remove_unstarted_leftover(&project.name, name).await {
                    return Err(action_error(project, action, e));
                }
                docker
                    .create_container(Some(options), spec.body.clone())
                    .await
            }
            other => other,
        }
        .map_err(|e| action_error(project, action, e))?;
        // A half-made container would look finished to the next observe
        // (it carries the config hash): remove it if a later step fails.
        let finish = async {
            for (network, endpoint) in &spec.connect {
                let request = NetworkConnectRequest {
                    container: created.id.clone(),
                    endpoint_config: Some(endpoint.clone()),
                };
                docker
                    .connect_network(network, request)
                    .await
                    .map_err(|e| Error::CreateFailed {
                        container: name.to_owned(),
                        message: format!("joining network {network}: {}", engine_message(&e)),
                    })?;
            }
            for (file, content) in &files {
                let mut tar = TarWriter::new();
                let path = file.target.trim_start_matches('/');
                let meta = Meta {
                    mode: file.mode,
                    uid: file.uid,
                    gid: file.gid,
                    mtime: 0,
                };
                tar.file(path, meta, content.as_bytes());
                let options = UploadToContainerOptions {
                    path: "/".to_owned(),
                    copy_uidgid: (file.uid != 0 || file.gid != 0).then(|| "1".to_owned()),
                    ..UploadToContainerOptions::default()
                };
                docker
                    .upload_to_container(
                        &created.id,
                        Some(options),
                        bollard::body_full(tar.finish().into()),
                    )
                    .await
                    .map_err(|e| Error::CreateFailed {
                        container: name.to_owned(),
                        message: format!(
                            "writing {} {}: {}",
                            file.kind,
                            file.name,
                            engine_message(&e)
                        ),
                    })?;
            }
            Ok(())
        };
        if let Err(err) = finish.await {
            let cleanup = RemoveContainerOptions {
                v: true,
                force: true,
                link: false,
            };
            // The error that matters is the one above; a failed cleanup
            // leaves a container the next run replaces.
            let _ = docker.remove_container(&created.id, Some(cleanup)).await;
            return Err(err);
        }
        Ok(())
    }

    /// Frees `name` when it holds a container of `project` that was created
    /// and never started: what a run killed with its create in flight
    /// leaves. The engine finishes such a create after the client is gone,
    /// so the next run's observe can miss it and meet the name taken; until
    /// the engine registers it the name answers 404, hence the patience.
    /// Returns whether the name is free to create again.
    async fn remove_unstarted_leftover(&self, project: &str, name: &str) -> bool {
        let Ok(docker) = self.client().await else {
            return false;
        };
        let deadline = Instant::now() + LEFTOVER_CREATE_PATIENCE;
        let leftover = loop {
            match docker
                .inspect_container(name, None::<InspectContainerOptions>)
                .await
            {
                Ok(found) => break found,
                Err(e) if status(&e) == Some(404) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(_) => return false,
            }
        };
        let ours = leftover
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(labels::PROJECT))
            .is_some_and(|p| p == project);
        let never_started = leftover.state.as_ref().is_some_and(|state| {
            state.status == Some(ContainerStateStatusEnum::CREATED)
                && state
                    .started_at
                    .as_deref()
                    .is_none_or(|t| t.starts_with("0001-01-01"))
        });
        if !(ours && never_started) {
            return false;
        }
        let Some(id) = leftover.id else {
            return false;
        };
        let options = RemoveContainerOptions {
            v: true,
            force: true,
            link: false,
        };
        match docker.remove_container(&id, Some(options)).await {
            Ok(()) => true,
            Err(e) => status(&e) == Some(404),
        }
    }

    /// Records (or forgets, with `None`) the id of image `reference`.
    fn remember_image(&self, reference: &str, id: Option<String>) {
        let mut known = self
            .image_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match id {
            Some(id) => known.insert(reference.to_owned(), id),
            None => known.remove(reference),
        };
    }

    /// The id of image `reference`: remembered, or inspected (and then
    /// remembered). `None` when the engine does not have it; the create that
    /// asks then fails with the engine's own message.
    async fn image_id(&self, reference: &str) -> Option<String> {
        let known = self
            .image_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(reference)
            .cloned();
        if known.is_some() {
            return known;
        }
        let docker = self.client().await.ok()?;
        let id = docker.inspect_image(reference).await.ok()?.id;
        self.remember_image(reference, id.clone());
        id
    }

    /// A replacement mounts the anonymous volumes of the container it
    /// replaces, as compose's recreate does, so their data survives a config
    /// change: those the service declares without a source (`- /data`) and
    /// those the image declares (`VOLUME`) where nothing else is mounted.
    async fn inherit_anonymous_volumes(
        &self,
        replaced: &str,
        image: &str,
        spec: &mut spec::ContainerSpec,
    ) -> Result<(), Error> {
        let docker = self.client().await?;
        let old = match docker
            .inspect_container(replaced, None::<InspectContainerOptions>)
            .await
        {
            Ok(old) if old.id.as_deref().is_some_and(|id| id.starts_with(replaced)) => old,
            // Gone (a repair run) or not the container the name points at.
            Ok(_) => return Ok(()),
            Err(e) if status(&e) == Some(404) => return Ok(()),
            Err(e) => return Err(engine("inspect container", replaced)(e)),
        };
        let anonymous: Vec<(String, String, bool)> = old
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .filter_map(|m| {
                let name = m.name.filter(|n| is_anonymous_volume(n))?;
                let target = clean_path(m.destination.as_deref()?);
                Some((name, target, m.rw.unwrap_or(true)))
            })
            .collect();
        if anonymous.is_empty() {
            return Ok(());
        }
        let host = spec.body.host_config.get_or_insert_with(Default::default);
        let mut image_volumes: Option<Vec<String>> = None;
        for (volume, target, writable) in anonymous {
            let mounts = host.mounts.get_or_insert_with(Vec::new);
            let declared = mounts.iter_mut().find(|m| {
                m.typ == Some(MountType::VOLUME)
                    && m.source.is_none()
                    && m.target.as_deref().map(clean_path).as_deref() == Some(target.as_str())
            });
            if let Some(mount) = declared {
                mount.source = Some(volume);
                continue;
            }
            let taken =
                mounts.iter().any(|m| {
                    m.target.as_deref().map(clean_path).as_deref() == Some(target.as_str())
                }) || host.binds.iter().flatten().any(|b| {
                    b.split(':').nth(1).map(clean_path).as_deref() == Some(target.as_str())
                }) || host
                    .tmpfs
                    .iter()
                    .flatten()
                    .any(|(t, _)| clean_path(t) == target);
            if taken {
                continue;
            }
            if image_volumes.is_none() {
                let inspected = docker
                    .inspect_image(image)
                    .await
                    .map_err(engine("inspect image", image))?;
                image_volumes = Some(
                    inspected
                        .config
                        .and_then(|c| c.volumes)
                        .unwrap_or_default()
                        .iter()
                        .map(|v| clean_path(v))
                        .collect(),
                );
            }
            if image_volumes.as_ref().is_some_and(|v| v.contains(&target)) {
                host.mounts.get_or_insert_with(Vec::new).push(Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(volume),
                    target: Some(target),
                    read_only: (!writable).then_some(true),
                    ..Mount::default()
                });
            }
        }
        Ok(())
    }

    async fn remove_network(
        &self,
        project: &Project,
        action: &Action,
        key: &str,
    ) -> Result<(), Error> {
        let docker = self.client().await?;
        let name = network_name(project, key);
        if project.networks.get(key).is_some_and(|n| n.external) {
            return Err(Error::ExternalNotRemoved {
                kind: "network",
                name,
            });
        }
        match docker
            .inspect_network(&name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(n) if n.name.as_deref() == Some(name.as_str()) => {
                let labels = n.labels.unwrap_or_default();
                if labels.get(labels::PROJECT) != Some(&project.name) {
                    return Err(Error::NetworkNameTaken {
                        network: name,
                        project: project.name.clone(),
                    });
                }
            }
            Ok(_) => return Ok(()),
            Err(e) if status(&e) == Some(404) => return Ok(()),
            Err(e) => return Err(engine("inspect network", &name)(e)),
        }
        match docker.remove_network(&name).await {
            Err(e) if status(&e) == Some(404) => Ok(()),
            other => other.map_err(|e| action_error(project, action, e)),
        }
    }

    async fn remove_volume(
        &self,
        project: &Project,
        action: &Action,
        key: &str,
    ) -> Result<(), Error> {
        let docker = self.client().await?;
        let name = volume_name(project, key);
        if project.volumes.get(key).is_some_and(|v| v.external) {
            return Err(Error::ExternalNotRemoved {
                kind: "volume",
                name,
            });
        }
        match docker.inspect_volume(&name).await {
            Ok(v) if v.labels.get(labels::PROJECT) != Some(&project.name) => {
                return Err(Error::VolumeNameTaken {
                    volume: name,
                    project: project.name.clone(),
                })
            }
            Ok(_) => {}
            Err(e) if status(&e) == Some(404) => return Ok(()),
            Err(e) => return Err(engine("inspect volume", &name)(e)),
        }
        match docker
            .remove_volume(&name, Some(RemoveVolumeOptions { force: false }))
            .await
        {
            Err(e) if status(&e) == Some(404) => Ok(()),
            other => other.map_err(|e| action_error(project, action, e)),
        }
    }

    async fn wait_impl(
        &self,
        project: &Project,
        service: &str,
        condition: Condition,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let docker = self.client().await?;
        let config = project
            .services
            .get(service)
            .ok_or_else(|| Error::NotInProject {
                kind: "service",
                name: service.to_owned(),
            })?;
        let filters: HashMap<String, Vec<String>> = [(
            "label".to_owned(),
            vec![
                format!("{}={}", labels::PROJECT, project.name),
                format!("{}={service}", labels::SERVICE),
            ],
        )]
        .into();
        // Subscribed before the first look: whatever changes after it is
        // announced.
        let mut notices = self.events.subscribe(docker);
        loop {
            let list = docker
                .list_containers(Some(ListContainersOptions {
                    all: true,
                    filters: Some(filters.clone()),
                    ..ListContainersOptions::default()
                }))
                .await
                .map_err(engine("list containers", service))?;
            let observed: Vec<ObservedContainer> =
                list.iter().filter_map(observed_container).collect();
            let replicas: Vec<&ObservedContainer> = observed.iter().filter(|c| !c.oneoff).collect();
            if replicas.is_empty() && expected_replicas(config) == 0 {
                return Ok(());
            }
            match evaluate(service, condition, &replicas, declares_health(config)) {
                Progress::Met => return Ok(()),
                Progress::Failed(err) => return Err(err),
                Progress::Pending => {}
            }
            // Look again when the engine reports a change to the service,
            // or after the backstop interval (an event stream that broke or
            // an engine clock far from ours), whichever comes first.
            let backstop = Instant::now() + self.poll_interval;
            let wake = deadline.map_or(backstop, |d| d.min(backstop));
            loop {
                tokio::select! {
                    notice = notices.recv() => match notice {
                        Ok(n) if n.project == project.name && n.service == service => break,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => {
                            tokio::time::sleep_until(wake).await;
                            break;
                        }
                    },
                    () = tokio::time::sleep_until(wake) => break,
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::WaitTimedOut {
                    service: service.to_owned(),
                    condition,
                });
            }
        }
    }
}

impl Backend for DockerBackend {
    fn events(&self) -> futures::stream::BoxStream<'_, Result<super::EngineEvent, Error>> {
        self.events_impl()
    }

    fn observe<'a>(
        &'a self,
        project: &'a Project,
        include_resources: bool,
    ) -> BoxFuture<'a, Result<Observed, Error>> {
        Box::pin(self.observe_impl(project, include_resources))
    }

    fn observe_containers<'a>(
        &'a self,
        project: &'a Project,
    ) -> BoxFuture<'a, Result<Observed, Error>> {
        Box::pin(self.containers_impl(project))
    }

    fn observe_all_containers(&self) -> BoxFuture<'_, Result<super::AllContainers, Error>> {
        Box::pin(self.all_containers_impl())
    }

    fn image_ids<'a>(
        &'a self,
        references: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<BTreeMap<String, Option<String>>, Error>> {
        Box::pin(self.image_ids_impl(references))
    }

    fn apply<'a>(
        &'a self,
        project: &'a Project,
        meta: &'a ProjectMeta,
        action: &'a Action,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.apply_impl(project, meta, action))
    }

    fn wait_for<'a>(
        &'a self,
        project: &'a Project,
        service: &'a str,
        condition: Condition,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.wait_impl(project, service, condition, deadline))
    }
}

/// Whether the model gives the service a healthcheck it did not disable.
pub(crate) fn declares_health(service: &ServiceConfig) -> bool {
    service
        .healthcheck
        .as_ref()
        .is_some_and(|h| !h.disable && !h.test.is_empty() && h.test[0] != "NONE")
}

/// How many replicas the model asks for (`deploy.replicas`, else `scale`, else 1).
pub(crate) fn expected_replicas(service: &ServiceConfig) -> i64 {
    service
        .deploy
        .as_ref()
        .and_then(|d| d.replicas)
        .or(service.scale)
        .unwrap_or(1)
}

/// The service a container name belongs to: `<project>-<service>-<n>`, a
/// replacement's `<id prefix>_<that>`, or a service's fixed `container_name`.
pub(crate) fn service_of<'p>(project: &'p Project, container: &str) -> Option<&'p ServiceConfig> {
    let name = match container.split_once('_') {
        Some((prefix, rest))
            if prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            rest
        }
        _ => container,
    };
    project.services.iter().find_map(|(key, service)| {
        let numbered = name
            .strip_prefix(&format!("{}-{key}-", project.name))
            .is_some_and(|n| n.parse::<u32>().is_ok());
        (numbered || (!service.container_name.is_empty() && service.container_name == name))
            .then_some(service)
    })
}

/// The replaced container's id prefix in a replacement's temporary name
/// (`<12 hex digits>_<final name>`).
fn replaced_id_prefix(name: &str) -> Option<&str> {
    let (prefix, _) = name.split_once('_')?;
    (prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit())).then_some(prefix)
}

/// A volume the engine named itself (64 hex digits): an anonymous one.
fn is_anonymous_volume(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A container path without a trailing or doubled slash, for comparing
/// mount targets as the engine does.
fn clean_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// A list entry with its compose labels parsed; `None` without a name.
pub(super) fn observed_container(summary: &ContainerSummary) -> Option<ObservedContainer> {
    let name = summary
        .names
        .as_ref()?
        .first()?
        .trim_start_matches('/')
        .to_owned();
    let labels = summary.labels.clone().unwrap_or_default();
    let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
    let state = summary
        .state
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let (state, health) = parse_status(&state, summary.status.as_deref().unwrap_or_default());
    Some(ObservedContainer {
        id: summary.id.clone().unwrap_or_default(),
        name,
        service: label(labels::SERVICE),
        number: label(labels::CONTAINER_NUMBER).parse().unwrap_or(0),
        oneoff: label(labels::ONEOFF) == "True",
        config_hash: label(labels::CONFIG_HASH),
        image: summary.image.clone().unwrap_or_default(),
        image_id: summary.image_id.clone().unwrap_or_default(),
        state,
        health,
        networks: summary
            .network_settings
            .as_ref()
            .and_then(|s| s.networks.as_ref())
            .map(|networks| {
                networks
                    .iter()
                    .map(|(name, endpoint)| {
                        (
                            name.clone(),
                            endpoint.network_id.clone().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// An image reference in the short form the engine lists (`busybox:latest`,
/// `ghcr.io/a/b:1`, `busybox@sha256:...`), for filters and matching.
pub(crate) fn familiar(reference: &str) -> String {
    let mut r = reference;
    for prefix in [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ] {
        if let Some(rest) = r.strip_prefix(prefix) {
            r = rest;
            break;
        }
    }
    if let Some(rest) = r.strip_prefix("library/") {
        if !rest.contains('/') {
            r = rest;
        }
    }
    if let Some((name, digest)) = r.split_once('@') {
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let name = match name[slash..].find(':') {
            Some(colon) => &name[..slash + colon],
            None => name,
        };
        return format!("{name}@{digest}");
    }
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    if r[slash..].contains(':') {
        r.to_owned()
    } else {
        format!("{r}:latest")
    }
}

/// The id of the listed image `reference` names, if listed.
pub(super) fn image_id_of(reference: &str, images: &[ImageSummary]) -> Option<String> {
    let want = familiar(reference);
    images
        .iter()
        .find(|i| i.repo_tags.contains(&want) || i.repo_digests.contains(&want))
        .map(|i| i.id.clone())
}

/// `repo` and `tag` (or digest) for a pull or a tag request; never an empty
/// tag, which would pull every tag of the repository.
fn split_for_pull(reference: &str) -> (String, String) {
    if let Some((name, digest)) = reference.split_once('@') {
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let name = match name[slash..].find(':') {
            Some(colon) => &name[..slash + colon],
            None => name,
        };
        return (name.to_owned(), digest.to_owned());
    }
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(colon) => (
            reference[..slash + colon].to_owned(),
            reference[slash + colon + 1..].to_owned(),
        ),
        None => (reference.to_owned(), "latest".to_owned()),
    }
}

fn status(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's own words for a failure.
fn engine_message(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Maps a failed read-only call (a list or an inspect) to an error.
pub(super) fn engine(
    operation: &'static str,
    target: &str,
) -> impl FnOnce(bollard::errors::Error) -> Error {
    let target = target.to_owned();
    move |err| match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => Error::EngineRejected {
            operation,
            target,
            status: status_code,
            message,
        },
        source => Error::RequestFailed {
            operation,
            target,
            source,
        },
    }
}

/// `seccomp=PATH` is a file on the client's side: the engine takes the
/// profile itself, as compact JSON.
fn resolve_seccomp_profiles(
    spec: &mut spec::ContainerSpec,
    service: &str,
    working_dir: &str,
) -> Result<(), Error> {
    let Some(options) = spec
        .body
        .host_config
        .as_mut()
        .and_then(|h| h.security_opt.as_mut())
    else {
        return Ok(());
    };
    for option in options.iter_mut() {
        let Some(path) = option
            .strip_prefix("seccomp=")
            .or_else(|| option.strip_prefix("seccomp:"))
        else {
            continue;
        };
        if matches!(path, "unconfined" | "builtin") || path.starts_with('{') {
            continue;
        }
        let full = std::path::Path::new(working_dir).join(path);
        let invalid = |message: String| Error::InvalidService {
            service: service.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(&full)
            .map_err(|e| invalid(format!("reading seccomp profile {}: {e}", full.display())))?;
        let profile: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("seccomp profile {}: {e}", full.display())))?;
        *option = format!("seccomp={profile}");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_engine_is_reported_on_first_use_not_at_construction() {
        let backend = DockerBackend::for_host("unix:///nonexistent/stackd-test.sock");
        let project = Project::default();
        let err = backend.observe(&project, false).await.unwrap_err();
        assert_eq!(err.reason(), "engine_unreachable");
    }

    #[test]
    fn references_are_compared_in_the_short_form_the_engine_lists() {
        assert_eq!(familiar("busybox"), "busybox:latest");
        assert_eq!(familiar("docker.io/library/busybox:1.36"), "busybox:1.36");
        assert_eq!(familiar("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(familiar("ghcr.io/org/app:2"), "ghcr.io/org/app:2");
        assert_eq!(familiar("busybox:1.36@sha256:abc"), "busybox@sha256:abc");
    }

    #[test]
    fn a_pull_always_names_a_tag() {
        assert_eq!(
            split_for_pull("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_for_pull("localhost:5000/app:2"),
            ("localhost:5000/app".into(), "2".into())
        );
        assert_eq!(
            split_for_pull("app@sha256:abc"),
            ("app".into(), "sha256:abc".into())
        );
    }

    #[test]
    fn container_names_lead_back_to_their_service() {
        let project: Project = serde_json::from_str(
            r#"{"name": "shop", "services": {
                "web": {"image": "a"},
                "web-admin": {"image": "b"},
                "db": {"image": "c", "container_name": "database"}}}"#,
        )
        .unwrap();
        let image = |name: &str| service_of(&project, name).map(|s| s.image.clone());
        assert_eq!(image("shop-web-1").as_deref(), Some("a"));
        assert_eq!(image("shop-web-admin-12").as_deref(), Some("b"));
        assert_eq!(image("0123456789ab_shop-web-2").as_deref(), Some("a"));
        assert_eq!(image("database").as_deref(), Some("c"));
        assert_eq!(image("other-web-1"), None);
    }

    #[test]
    fn listed_images_are_found_by_tag_or_digest() {
        let image = |id: &str, tags: &[&str], digests: &[&str]| ImageSummary {
            id: id.into(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            ..ImageSummary::default()
        };
        let images = vec![
            image("sha256:1", &["busybox:latest"], &[]),
            image("sha256:2", &[], &["app@sha256:abc"]),
        ];
        assert_eq!(image_id_of("busybox", &images).as_deref(), Some("sha256:1"));
        assert_eq!(
            image_id_of("app@sha256:abc", &images).as_deref(),
            Some("sha256:2")
        );
        assert_eq!(image_id_of("busybox:1.0", &images), None);
    }
}
