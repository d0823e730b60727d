//! An in-memory Kubernetes API server for tests, speaking the real REST
//! protocol over plain HTTP on loopback, good enough for the real kubectl,
//! kube-rs clients and kube-runtime watchers.
//!
//! What it implements: discovery (`/api`, `/apis`, group versions,
//! `/version`; clients asking for aggregated discovery get the legacy
//! documents, as from a server without it); the built-in types stackd uses
//! (namespaces, configmaps, secrets, services, serviceaccounts, PVCs, pods,
//! endpoints, events, deployments, statefulsets, replicasets, daemonsets,
//! jobs, networkpolicies, poddisruptionbudgets, RBAC roles and bindings,
//! leases, events.k8s.io events (the same objects as core events), CRDs) and
//! every resource a CRD registers (served versions, scope, names, status
//! subresource, printer columns, schema defaults, pruning of unknown fields,
//! type, enum and required checks, `fieldValidation=Strict`); get, list and
//! watch with label (set-based too) and field selectors; watches from a
//! resourceVersion with bookmarks, `sendInitialEvents` and 410 Gone once the
//! history is forgotten; create (generateName), update with optimistic
//! concurrency, merge, JSON and strategic merge patch, server-side apply
//! with managedFields, conflicts and `force`; the status subresource;
//! generation; finalizers and deletionTimestamp; the scale subresource of
//! Deployments, StatefulSets and ReplicaSets (`kubectl scale`); garbage
//! collection (background, foreground, orphan) through ownerReferences (and
//! namespace deletion); server-side Table output; fault injection and a
//! request log ([`Faults`]); and a kubelet stand-in that makes workloads
//! ready ([`Kubelet`]).
//!
//! What it deliberately does not: authentication, authorization and
//! admission (every request is allowed; [`access`] says what RBAC would be
//! asked about a logged request and [`Grants`] whether Roles allow it); the rest of OpenAPI validation
//! (formats, patterns, bounds, CEL rules) and validation of built-in types;
//! version conversion beyond rewriting apiVersion; scheduling, pods that
//! run, controllers other than the garbage collector; protobuf and CBOR
//! (except the protobuf bodies of `kubectl create
//! namespace|configmap|secret|serviceaccount`; answers are always JSON);
//! pagination (a `limit` is ignored: every list is one page); OpenAPI
//! schemas (`/openapi/v3` lists only the PATCH operations kubectl checks for
//! server-side field validation; `/openapi/v2` is 404). In server-side apply
//! lists are atomic (as in a CRD schema without list-type markers).

mod apply;
mod clock;
mod error;
mod events;
mod faults;
mod http;
mod kubectl;
mod kubelet;
mod openapi;
mod patch;
mod protobuf;
mod rbac;
mod resources;
mod schema;
mod select;
mod store;
mod table;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

pub use error::ApiError;
pub use faults::{FaultFilter, FaultKind, Faults, RequestRecord, Verb};
pub use kubectl::{kubectl_bin, Kubectl, KUBECTL_DEADLINE};
pub use kubelet::{Kubelet, RunningKubelet};
pub use rbac::{access, verb_of, Access, Grant, Grants, RbacError, Rule, Scope};

use http::Shared;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The runtime thread could not start.
    #[error("starting the server thread: {0}")]
    Runtime(std::io::Error),
}

/// A running API server; it stops when dropped.
pub struct KubeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KubeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApiServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl KubeApiServer {
    /// Starts on an ephemeral loopback port.
    pub fn start() -> Result<Self, ServeError> {
        Self::bind("127.0.0.1:0")
    }

    /// Starts on `addr` (`127.0.0.1:6443`), on a thread of its own so that
    /// sync and async tests alike can use it.
    pub fn bind(addr: &str) -> Result<Self, ServeError> {
        let listener = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let local = listener.local_addr().map_err(ServeError::Runtime)?;
        listener
            .set_nonblocking(true)
            .map_err(ServeError::Runtime)?;
        let shared = Arc::new(Shared::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("kubeapi")
            .build()
            .map_err(ServeError::Runtime)?;
        let router = http::router(shared.clone());
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("kubeapi-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = axum::serve(listener, router) => {}
                        _ = stopped => {}
                    }
                    for_thread.shutdown.send_replace(true);
                });
                runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            })
            .map_err(ServeError::Runtime)?;
        Ok(KubeApiServer {
            shared,
            addr: local,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig for it (context `kubeapi`, namespace `default`).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubeapi\n  cluster:\n    server: {}\n\
             users:\n- name: kubeapi\n  user: {{}}\ncontexts:\n- name: kubeapi\n  context:\n    cluster: kubeapi\n    user: kubeapi\n    namespace: default\n\
             current-context: kubeapi\n",
            self.url()
        )
    }

    /// Writes [`Self::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// The fault plan and the request log.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every request so far (method, path, query, verb, resource,
    /// fieldManager, user agent, status code, arrival time).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.faults.requests()
    }

    /// Forgets the watch history, as an etcd compaction would: a watch
    /// from an older resourceVersion gets 410 Gone.
    pub fn forget_history(&self) {
        self.shared.store().forget_history();
    }

    /// The latest resourceVersion.
    pub fn revision(&self) -> u64 {
        self.shared.store().revision()
    }

    /// A kubelet stand-in for this server.
    pub fn kubelet(&self) -> Kubelet {
        Kubelet::new(self.shared.clone())
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
