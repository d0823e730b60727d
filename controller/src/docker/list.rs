//! The single-call listings a controller composes its observations from:
//! one project's containers, every project's containers (a resync round's
//! share), and the ids of many image references at once (so stacks that
//! share images share one list call).
use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::models::ContainerSummary;
use bollard::query_parameters::{ListContainersOptions, ListImagesOptions};

use super::engine::{engine, familiar, image_id_of, observed_container};
use super::{labels, sort_containers, AllContainers, DockerBackend, Error};
use crate::model::Project;
use crate::plan::Observed;

impl DockerBackend {
    /// The project's containers in one list call; nothing else is listed.
    pub(super) async fn containers_impl(&self, project: &Project) -> Result<Observed, Error> {
        let label = format!("{}={}", labels::PROJECT, project.name);
        let listed = self.containers_labelled(label, &project.name).await?;
        let mut containers: Vec<_> = listed.iter().filter_map(observed_container).collect();
        sort_containers(&mut containers);
        Ok(Observed {
            containers,
            ..Observed::default()
        })
    }

    /// Every container with a compose project label, by project, in one
    /// list call.
    pub(super) async fn all_containers_impl(&self) -> Result<AllContainers, Error> {
        let listed = self
            .containers_labelled(labels::PROJECT.to_owned(), "all projects")
            .await?;
        let mut all = AllContainers::new();
        for summary in &listed {
            let project = summary
                .labels
                .as_ref()
                .and_then(|labels| labels.get(labels::PROJECT));
            if let (Some(project), Some(container)) = (project, observed_container(summary)) {
                all.entry(project.clone()).or_default().push(container);
            }
        }
        for containers in all.values_mut() {
            sort_containers(containers);
        }
        Ok(all)
    }

    /// Every container, running or not, carrying `label` (`key` or
    /// `key=value`), in one list call; `target` names what was listed in
    /// an error.
    async fn containers_labelled(
        &self,
        label: String,
        target: &str,
    ) -> Result<Vec<ContainerSummary>, Error> {
        let docker = self.client().await?;
        let filters: HashMap<String, Vec<String>> = [("label".to_owned(), vec![label])].into();
        docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..ListContainersOptions::default()
            }))
            .await
            .map_err(engine("list containers", target))
    }

    /// The id of each reference (`None` when the engine lacks it), from one
    /// list call filtered on all of them.
    pub(super) async fn image_ids_impl(
        &self,
        references: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Option<String>>, Error> {
        if references.is_empty() {
            return Ok(BTreeMap::new());
        }
        let docker = self.client().await?;
        let patterns: BTreeSet<String> = references.iter().map(|r| familiar(r)).collect();
        let images = docker
            .list_images(Some(ListImagesOptions {
                filters: Some([("reference".to_owned(), patterns.into_iter().collect())].into()),
                ..ListImagesOptions::default()
            }))
            .await
            .map_err(engine("list images", "images"))?;
        Ok(references
            .iter()
            .map(|r| (r.clone(), image_id_of(r, &images)))
            .collect())
    }
}
