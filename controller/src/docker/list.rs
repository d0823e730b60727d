//! The two single-call listings a controller composes its observations
//! from: one project's containers, and the ids of many image references at
//! once (so stacks that share images share one list call).
use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::query_parameters::{ListContainersOptions, ListImagesOptions};

use super::engine::{engine, familiar, image_id_of, observed_container};
use super::{labels, DockerBackend, Error};
use crate::model::Project;
use crate::plan::Observed;

impl DockerBackend {
    /// The project's containers in one list call; nothing else is listed.
    pub(super) async fn containers_impl(&self, project: &Project) -> Result<Observed, Error> {
        let docker = self.client().await?;
        let by_project: HashMap<String, Vec<String>> = [(
            "label".to_owned(),
            vec![format!("{}={}", labels::PROJECT, project.name)],
        )]
        .into();
        let listed = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(by_project),
                ..ListContainersOptions::default()
            }))
            .await
            .map_err(engine("list containers", &project.name))?;
        let mut containers: Vec<_> = listed.iter().filter_map(observed_container).collect();
        containers
            .sort_by(|a, b| (&a.service, a.number, &a.name).cmp(&(&b.service, b.number, &b.name)));
        Ok(Observed {
            containers,
            ..Observed::default()
        })
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
