//! A kubelet-and-controllers stand-in: reports Deployments, StatefulSets
//! and DaemonSets (on one node) as rolled out and Jobs as complete, through the status
//! subresource, for all workloads or only the ones a test allows.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

use super::clock;
use super::http::Shared;
use super::select::Selector;
use super::store::{Part, PatchKind, WriteOptions};

const MANAGER: &str = "kube-controller-manager";

/// Which workloads are made ready: all, or those named `name` or
/// `namespace/name`.
type Allowed = Arc<Mutex<Option<BTreeSet<String>>>>;

/// Marks workloads ready on one server.
#[derive(Debug, Clone)]
pub struct Kubelet {
    shared: Arc<Shared>,
    allowed: Allowed,
    /// Bumped when `allowed` changes, so a running kubelet looks again.
    allowed_changes: Arc<AtomicU64>,
}

impl Kubelet {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Kubelet {
            shared,
            allowed: Arc::new(Mutex::new(None)),
            allowed_changes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Only the workloads named (`name` or `namespace/name`) become ready.
    pub fn only(self, names: &[&str]) -> Self {
        self.set_allowed(Some(names.iter().map(|n| n.to_string()).collect()));
        self
    }

    /// Lets one more workload become ready.
    pub fn allow(&self, name: &str) {
        let mut allowed = self.allowed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = allowed.as_mut() {
            set.insert(name.to_string());
        }
        self.allowed_changes.fetch_add(1, Ordering::Relaxed);
    }

    fn set_allowed(&self, names: Option<BTreeSet<String>>) {
        *self.allowed.lock().unwrap_or_else(|p| p.into_inner()) = names;
        self.allowed_changes.fetch_add(1, Ordering::Relaxed);
    }

    fn is_allowed(&self, object: &Value) -> bool {
        let allowed = self.allowed.lock().unwrap_or_else(|p| p.into_inner());
        let Some(set) = allowed.as_ref() else {
            return true;
        };
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("");
        set.contains(name) || set.contains(&format!("{namespace}/{name}"))
    }

    /// One pass: every allowed workload not yet ready gets a ready status.
    /// Returns how many statuses it wrote.
    pub fn mark_ready(&self) -> usize {
        let mut written = 0;
        for (group, plural) in [
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("batch", "jobs"),
        ] {
            let Some(rt) = self.shared.store().resolve(group, "v1", plural) else {
                continue;
            };
            let objects = self
                .shared
                .store()
                .list(&rt, "v1", None, &Selector::default());
            for object in objects {
                if !object["metadata"]["deletionTimestamp"].is_null() || !self.is_allowed(&object) {
                    continue;
                }
                let Some(status) = ready_status(plural, &object) else {
                    continue;
                };
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let namespace = object["metadata"]["namespace"].as_str().map(str::to_string);
                let options = WriteOptions {
                    manager: MANAGER.to_string(),
                    force: false,
                    dry_run: false,
                    strict: false,
                };
                let patch = json!({"status": status});
                let result = self.shared.write(|store| {
                    store.patch(
                        &rt,
                        "v1",
                        namespace.as_deref(),
                        &name,
                        PatchKind::Merge,
                        &patch,
                        Part::Status,
                        &options,
                    )
                });
                if result.is_ok() {
                    written += 1;
                }
            }
        }
        written
    }

    /// Keeps marking workloads ready after every change, until the
    /// returned handle is dropped.
    pub fn spawn(self) -> RunningKubelet {
        let stop = Arc::new(AtomicBool::new(false));
        let kubelet = self.clone();
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = (u64::MAX, u64::MAX);
            while !stopping.load(Ordering::Relaxed) {
                let allowed = kubelet.allowed_changes.load(Ordering::Relaxed);
                let revision = kubelet.shared.store().revision();
                if (revision, allowed) != seen {
                    kubelet.mark_ready();
                    seen = (kubelet.shared.store().revision(), allowed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RunningKubelet {
            kubelet: self,
            stop,
            thread: Some(thread),
        }
    }
}

/// A kubelet running in the background; stops when dropped.
#[derive(Debug)]
pub struct RunningKubelet {
    kubelet: Kubelet,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RunningKubelet {
    /// Lets one more workload become ready (`name` or `namespace/name`).
    pub fn allow(&self, name: &str) {
        self.kubelet.allow(name);
    }

    /// Lets every workload become ready.
    pub fn allow_all(&self) {
        self.kubelet.set_allowed(None);
    }
}

impl Drop for RunningKubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The status a finished rollout or job reports; `None` when it already does.
fn ready_status(plural: &str, object: &Value) -> Option<Value> {
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
    let status = &object["status"];
    let now = clock::now_rfc3339();
    match plural {
        "deployments" | "statefulsets" => {
            let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
            let done = status["observedGeneration"].as_i64() == Some(generation)
                && status["readyReplicas"].as_i64().unwrap_or(0) == replicas
                && status["updatedReplicas"].as_i64().unwrap_or(0) == replicas
                && status["replicas"].as_i64().unwrap_or(0) == replicas;
            if done {
                return None;
            }
            let mut ready = json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "updatedReplicas": replicas,
            });
            let name = object["metadata"]["name"].as_str().unwrap_or("");
            if plural == "deployments" {
                ready["conditions"] = json!([
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability.",
                     "lastUpdateTime": now, "lastTransitionTime": now},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                     "message": format!("ReplicaSet \"{name}\" has successfully progressed."),
                     "lastUpdateTime": now, "lastTransitionTime": now},
                ]);
            } else {
                let revision = format!("{name}-{generation}");
                ready["currentReplicas"] = json!(replicas);
                ready["currentRevision"] = json!(revision);
                ready["updateRevision"] = json!(revision);
                ready["collisionCount"] = json!(0);
            }
            Some(ready)
        }
        "daemonsets" => {
            // One node: the DaemonSet's one pod runs, updated and ready.
            let done = status["observedGeneration"].as_i64() == Some(generation)
                && status["numberReady"].as_i64() == Some(1)
                && status["updatedNumberScheduled"].as_i64() == Some(1);
            if done {
                return None;
            }
            Some(json!({
                "observedGeneration": generation,
                "desiredNumberScheduled": 1,
                "currentNumberScheduled": 1,
                "updatedNumberScheduled": 1,
                "numberReady": 1,
                "numberAvailable": 1,
                "numberMisscheduled": 0,
            }))
        }
        "jobs" => {
            let completions = object["spec"]["completions"].as_i64().unwrap_or(1);
            if status["succeeded"].as_i64().unwrap_or(0) >= completions {
                return None;
            }
            Some(json!({
                "startTime": now,
                "completionTime": now,
                "active": 0,
                "ready": 0,
                "terminating": 0,
                "succeeded": completions,
                "uncountedTerminatedPods": {},
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                     "message": "Reached expected number of succeeded pods",
                     "lastProbeTime": now, "lastTransitionTime": now},
                    {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                     "message": "Reached expected number of succeeded pods",
                     "lastProbeTime": now, "lastTransitionTime": now},
                ],
            }))
        }
        _ => None,
    }
}
