//! Engine events for stackd's containers: what the controller listens to so
//! that a container removed, stopped, killed or turned unhealthy behind its
//! back is repaired as it happens rather than at the next resync.
use std::collections::HashMap;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptions;
use futures::stream::{self, BoxStream, StreamExt};

use super::{labels, DockerBackend, Error};
use crate::plan::Health;

/// Something that happened to a container stackd manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEvent {
    /// `com.docker.compose.project`.
    pub project: String,
    /// `com.docker.compose.service`.
    pub service: String,
    /// The container's name (empty for image events).
    pub container: String,
    /// The image: the one the container runs, or the one an image event is
    /// about (its reference when the engine names one, else its id).
    pub image: String,
    /// What happened.
    pub kind: EventKind,
}

/// The container events the controller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The container was created.
    Created,
    /// The container started.
    Started,
    /// The container's main process ended (a stop and a kill end in this too).
    Died,
    /// The container was stopped (`docker stop`).
    Stopped,
    /// The container was sent a signal (`docker kill`).
    Killed,
    /// The kernel killed the container's process for memory.
    OutOfMemory,
    /// The container was removed.
    Destroyed,
    /// The healthcheck reported a new status.
    Health(Health),
    /// Its configuration was changed in place (`docker update`).
    Updated,
    /// It was renamed.
    Renamed,
    /// It was paused.
    Paused,
    /// It was unpaused.
    Unpaused,
    /// An image was pulled, loaded, imported, tagged, untagged or deleted:
    /// a reference may now name another image, or none (not a container
    /// event; project, service and container are empty).
    ImageChanged,
}

/// The controller's reading of one engine event; `None` for events it has
/// no use for (exec, attach, top, ...) or that lack the compose labels.
pub fn parse_event(message: &EventMessage) -> Option<EngineEvent> {
    if message.typ == Some(EventMessageTypeEnum::IMAGE) {
        return parse_image_event(message);
    }
    if message.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    let action = message.action.as_deref()?;
    let kind = match action {
        "create" => EventKind::Created,
        "start" => EventKind::Started,
        "die" => EventKind::Died,
        "stop" => EventKind::Stopped,
        "kill" => EventKind::Killed,
        "oom" => EventKind::OutOfMemory,
        "destroy" => EventKind::Destroyed,
        "update" => EventKind::Updated,
        "rename" => EventKind::Renamed,
        "pause" => EventKind::Paused,
        "unpause" => EventKind::Unpaused,
        // `health_status: healthy`; older engines put no space after the colon.
        other => match other.strip_prefix("health_status:").map(str::trim) {
            Some("healthy") => EventKind::Health(Health::Healthy),
            Some("unhealthy") => EventKind::Health(Health::Unhealthy),
            Some("starting") => EventKind::Health(Health::Starting),
            _ => return None,
        },
    };
    let attributes = message.actor.as_ref()?.attributes.as_ref()?;
    Some(EngineEvent {
        project: attributes.get(labels::PROJECT)?.clone(),
        service: attributes.get(labels::SERVICE)?.clone(),
        container: attributes.get("name").cloned().unwrap_or_default(),
        image: attributes.get("image").cloned().unwrap_or_default(),
        kind,
    })
}

/// The image events after which a reference may name another image.
fn parse_image_event(message: &EventMessage) -> Option<EngineEvent> {
    match message.action.as_deref()? {
        "pull" | "load" | "import" | "tag" | "untag" | "delete" => {}
        _ => return None,
    }
    let actor = message.actor.as_ref()?;
    let name = actor.attributes.as_ref().and_then(|a| a.get("name"));
    let image = name.or(actor.id.as_ref())?.clone();
    Some(EngineEvent {
        project: String::new(),
        service: String::new(),
        container: String::new(),
        image,
        kind: EventKind::ImageChanged,
    })
}

impl DockerBackend {
    /// Container events of stackd's containers from the moment of the call
    /// (not of the first poll: `since` asks the engine to replay what came
    /// in between, with up to a second more, which costs at most a spare
    /// reconcile). The stream ends or fails when the connection does: the
    /// caller reconnects, and resyncs, since events in between are lost.
    pub(super) fn events_impl(&self) -> BoxStream<'_, Result<EngineEvent, Error>> {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs().to_string())
            .ok();
        // Images carry no stackd label, and the engine ANDs filters of
        // different keys: containers and images are two subscriptions.
        let containers: HashMap<String, Vec<String>> = [
            ("type".to_owned(), vec!["container".to_owned()]),
            (
                "label".to_owned(),
                vec![format!(
                    "{}={}",
                    labels::MANAGED_BY,
                    labels::MANAGED_BY_VALUE
                )],
            ),
        ]
        .into();
        let images: HashMap<String, Vec<String>> =
            [("type".to_owned(), vec!["image".to_owned()])].into();
        stream::select(
            self.subscribe(since.clone(), containers),
            self.subscribe(since, images),
        )
        .boxed()
    }

    fn subscribe(
        &self,
        since: Option<String>,
        filters: HashMap<String, Vec<String>>,
    ) -> BoxStream<'_, Result<EngineEvent, Error>> {
        stream::once(self.client())
            .map(move |client| match client {
                Ok(docker) => docker
                    .events(Some(EventsOptions {
                        since: since.clone(),
                        filters: Some(filters.clone()),
                        ..EventsOptions::default()
                    }))
                    .filter_map(|message| async move {
                        match message {
                            Ok(message) => parse_event(&message).map(Ok),
                            Err(source) => Some(Err(Error::RequestFailed {
                                operation: "watch events",
                                target: "engine".to_owned(),
                                source,
                            })),
                        }
                    })
                    .boxed(),
                Err(error) => stream::once(async move { Err(error) }).boxed(),
            })
            .flatten()
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::EventActor;

    use super::*;

    fn message(typ: EventMessageTypeEnum, action: &str, labelled: bool) -> EventMessage {
        let mut attributes: HashMap<String, String> = [
            ("name".to_owned(), "demo-web-1".to_owned()),
            ("image".to_owned(), "busybox".to_owned()),
        ]
        .into();
        if labelled {
            attributes.insert(labels::PROJECT.to_owned(), "demo".to_owned());
            attributes.insert(labels::SERVICE.to_owned(), "web".to_owned());
        }
        EventMessage {
            typ: Some(typ),
            action: Some(action.to_owned()),
            actor: Some(EventActor {
                id: Some("abc".to_owned()),
                attributes: Some(attributes),
            }),
            ..EventMessage::default()
        }
    }

    #[test]
    fn a_die_event_of_a_labelled_container_names_its_project_service_and_container() {
        let event = parse_event(&message(EventMessageTypeEnum::CONTAINER, "die", true)).unwrap();
        assert_eq!(
            event,
            EngineEvent {
                project: "demo".into(),
                service: "web".into(),
                container: "demo-web-1".into(),
                image: "busybox".into(),
                kind: EventKind::Died,
            }
        );
    }

    #[test]
    fn health_status_events_carry_the_new_health_with_or_without_a_space() {
        for (action, health) in [
            ("health_status: unhealthy", Health::Unhealthy),
            ("health_status:healthy", Health::Healthy),
            ("health_status: starting", Health::Starting),
        ] {
            let event = parse_event(&message(EventMessageTypeEnum::CONTAINER, action, true));
            assert_eq!(event.unwrap().kind, EventKind::Health(health), "{action}");
        }
    }

    #[test]
    fn events_without_compose_labels_or_of_other_kinds_are_ignored() {
        assert_eq!(
            parse_event(&message(EventMessageTypeEnum::CONTAINER, "die", false)),
            None
        );
        assert_eq!(
            parse_event(&message(EventMessageTypeEnum::NETWORK, "destroy", true)),
            None
        );
        assert_eq!(
            parse_event(&message(
                EventMessageTypeEnum::CONTAINER,
                "exec_start: sh",
                true
            )),
            None
        );
    }

    #[test]
    fn image_events_that_can_move_a_reference_name_the_image_or_its_id() {
        let tagged = EventMessage {
            typ: Some(EventMessageTypeEnum::IMAGE),
            action: Some("tag".to_owned()),
            actor: Some(EventActor {
                id: Some("sha256:1".to_owned()),
                attributes: Some([("name".to_owned(), "app:latest".to_owned())].into()),
            }),
            ..EventMessage::default()
        };
        let event = parse_event(&tagged).unwrap();
        assert_eq!(
            (event.kind, event.image.as_str(), event.project.as_str()),
            (EventKind::ImageChanged, "app:latest", "")
        );
        let deleted = EventMessage {
            action: Some("delete".to_owned()),
            actor: Some(EventActor {
                id: Some("sha256:1".to_owned()),
                attributes: None,
            }),
            ..tagged.clone()
        };
        assert_eq!(parse_event(&deleted).unwrap().image, "sha256:1");
        let pushed = EventMessage {
            action: Some("push".to_owned()),
            ..tagged
        };
        assert_eq!(parse_event(&pushed), None);
    }
}
