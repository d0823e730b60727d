//! `InstrumentedBackend`: a `Backend` decorator counting every call into
//! `stackd_backend_requests_total{backend,operation,outcome}`.
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use tokio::time::Instant;

use super::Metrics;
use crate::docker::{ActionKind, Backend, BoxFuture, Error, ProjectMeta};
use crate::model::Project;
use crate::plan::{Action, Condition, Observed};

/// Wraps a [`Backend`] and counts each call by operation (`observe`,
/// `list_images`, `wait_for`, or the action's [`ActionKind::as_str`]) and outcome
/// (`success`, `error`). Every method only forwards and counts; a call
/// abandoned before it returns (its future dropped) is not counted.
#[derive(Debug)]
pub struct InstrumentedBackend<B> {
    inner: B,
    metrics: Metrics,
    backend_name: &'static str,
}

impl<B: Backend> InstrumentedBackend<B> {
    /// Counts `inner`'s calls under `backend="<backend_name>"` (`docker`).
    pub fn new(inner: B, metrics: Metrics, backend_name: &'static str) -> Self {
        Self {
            inner,
            metrics,
            backend_name,
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Awaits `call` and counts it under `operation`.
    fn counted<'a, T: 'a>(
        &'a self,
        operation: &'static str,
        call: impl Future<Output = Result<T, Error>> + Send + 'a,
    ) -> BoxFuture<'a, Result<T, Error>> {
        Box::pin(async move {
            let result = call.await;
            let outcome = if result.is_ok() { "success" } else { "error" };
            self.metrics
                .backend_request(self.backend_name, operation, outcome);
            result
        })
    }
}

impl<B: Backend> Backend for InstrumentedBackend<B> {
    fn events(&self) -> futures::stream::BoxStream<'_, Result<crate::docker::EngineEvent, Error>> {
        // One long request, counted once when it is opened.
        self.metrics
            .backend_request(self.backend_name, "events", "success");
        self.inner.events()
    }

    fn observe<'a>(
        &'a self,
        project: &'a Project,
        include_resources: bool,
    ) -> BoxFuture<'a, Result<Observed, Error>> {
        self.counted("observe", self.inner.observe(project, include_resources))
    }

    fn observe_containers<'a>(
        &'a self,
        project: &'a Project,
    ) -> BoxFuture<'a, Result<Observed, Error>> {
        self.counted("observe", self.inner.observe_containers(project))
    }

    fn observe_all_containers(&self) -> BoxFuture<'_, Result<crate::docker::AllContainers, Error>> {
        self.counted("observe", self.inner.observe_all_containers())
    }

    fn image_ids<'a>(
        &'a self,
        references: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<BTreeMap<String, Option<String>>, Error>> {
        self.counted("list_images", self.inner.image_ids(references))
    }

    fn apply<'a>(
        &'a self,
        project: &'a Project,
        meta: &'a ProjectMeta,
        action: &'a Action,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let operation = ActionKind::of(action).as_str();
        self.counted(operation, self.inner.apply(project, meta, action))
    }

    fn wait_for<'a>(
        &'a self,
        project: &'a Project,
        service: &'a str,
        condition: Condition,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.counted(
            "wait_for",
            self.inner.wait_for(project, service, condition, deadline),
        )
    }
}
