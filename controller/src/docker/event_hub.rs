//! The engine's container events, shared by every wait of one backend: a
//! single `GET /events` stream (filtered to containers with a compose
//! project label and to the actions that change what a wait looks at)
//! tells waits when to look again, instead of each wait listing its
//! containers on a short timer.
//!
//! The stream only says "something happened to service S of project P";
//! a wait still decides from a container list, so a missed, duplicated or
//! reordered event can at worst delay a wait until its backstop poll, never
//! make it wrong.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::labels;

/// Events buffered per subscriber before a slow one is told it lagged (it
/// then lists again, which is all an event would have made it do).
const BUFFER: usize = 256;

/// How far back a new stream asks the engine to replay: events between a
/// wait's first list and the stream's connection are not lost.
const REPLAY: Duration = Duration::from_secs(2);

/// Container actions after which a wait's answer may have changed.
/// `health_status` matches `health_status: healthy` and the other states
/// (the engine compares it by prefix).
const ACTIONS: [&str; 9] = [
    "start",
    "die",
    "health_status",
    "destroy",
    "pause",
    "unpause",
    "restart",
    "oom",
    "kill",
];

/// Something happened to a container of `service` in `project`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    /// The container's project label.
    pub project: String,
    /// The container's service label.
    pub service: String,
}

/// One events stream, opened on first use and again after it ends.
#[derive(Debug)]
pub(crate) struct EventHub {
    sender: broadcast::Sender<Notice>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Default for EventHub {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(BUFFER);
        Self {
            sender,
            task: Mutex::new(None),
        }
    }
}

impl EventHub {
    /// A receiver of notices from now on, with the stream running (opened
    /// again if it ended). Subscribe before the first look at the
    /// containers, so nothing after that look is missed.
    pub fn subscribe(&self, docker: &Docker) -> broadcast::Receiver<Notice> {
        let receiver = self.sender.subscribe();
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if task.as_ref().is_none_or(JoinHandle::is_finished) {
            *task = Some(tokio::spawn(pump(docker.clone(), self.sender.clone())));
        }
        receiver
    }
}

impl Drop for EventHub {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

/// Forwards the engine's events as notices until the stream ends or fails
/// (the next subscriber opens a new one; waits poll meanwhile).
async fn pump(docker: Docker, sender: broadcast::Sender<Notice>) {
    let since = SystemTime::now()
        .checked_sub(REPLAY)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()));
    let filters: HashMap<String, Vec<String>> = [
        ("type".to_owned(), vec!["container".to_owned()]),
        ("label".to_owned(), vec![labels::PROJECT.to_owned()]),
        (
            "event".to_owned(),
            ACTIONS.iter().map(|a| (*a).to_owned()).collect(),
        ),
    ]
    .into();
    let mut stream = docker.events(Some(EventsOptions {
        since,
        until: None,
        filters: Some(filters),
    }));
    while let Some(Ok(event)) = stream.next().await {
        let Some(attributes) = event.actor.and_then(|a| a.attributes) else {
            continue;
        };
        let (Some(project), Some(service)) = (
            attributes.get(labels::PROJECT),
            attributes.get(labels::SERVICE),
        ) else {
            continue;
        };
        // No subscriber is not an error: waits come and go.
        let _ = sender.send(Notice {
            project: project.clone(),
            service: service.clone(),
        });
    }
}
