//! What stackd reports about each stack, the Kubernetes way: kstatus
//! conditions (`Ready`, `Reconciling`, `Stalled`), a generation that counts
//! spec changes, per-service replica counts and the last error. Pure: time
//! is passed in, and files are read and written by
//! [`crate::reconcile::state_file`].
//!
//! Safety rule 5 (secret values never appear in status): this module only
//! stores what it is given. Reasons and messages come from the caller, who
//! must build them from error descriptions and names, never from
//! environment values, secret contents or command output;
//! [`last_error_from`] leaves out the env-file text that could hold one.
//!
//! How the transitions map onto conditions:
//!
//! | call            | Ready                | Reconciling            | Stalled      | observedGeneration |
//! |-----------------|----------------------|------------------------|--------------|--------------------|
//! | [`new`]         | Unknown              | Unknown                | Unknown      | 0                  |
//! | [`reconciling`] | False on a new spec  | True                   | False on a new spec | unchanged   |
//! | [`ready`]       | True                 | False                  | False        | = generation       |
//! | [`progressing`] | False                | True                   | False        | = generation       |
//! | [`retrying`]    | False                | True (RetryScheduled)  | False        | = generation       |
//! | [`stalled`]     | False                | False                  | True         | = generation       |
//!
//! A condition's `lastTransitionTime` changes only when its status does.
//!
//! [`new`]: StackStatus::new
//! [`reconciling`]: StackStatus::reconciling
//! [`ready`]: StackStatus::ready
//! [`progressing`]: StackStatus::progressing
//! [`retrying`]: StackStatus::retrying
//! [`stalled`]: StackStatus::stalled
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

mod last_error;
mod services;
mod time;

pub use last_error::last_error_from;
pub use services::service_statuses;
pub use time::{add as add_duration, parse_timestamp, short_duration, timestamp, Timestamp};

/// Condition reasons stackd itself uses; callers may pass others (any
/// `snake_case` error reason is turned into `CamelCase`).
pub mod reason {
    /// No reconcile has finished yet.
    pub const INITIALIZING: &str = "Initializing";
    /// A reconcile is acting on the stack.
    pub const PROGRESSING: &str = "Progressing";
    /// Every service has its desired replicas ready.
    pub const SUCCEEDED: &str = "Succeeded";
    /// A failed reconcile will be retried after a backoff.
    pub const RETRY_SCHEDULED: &str = "RetryScheduled";
    /// `spec.suspend` is true: stackd changes nothing.
    pub const SUSPENDED: &str = "Suspended";
    /// The desired state did not load or validate.
    pub const LOAD_FAILED: &str = "LoadFailed";
    /// The plan was refused (e.g. it would remove every service).
    pub const PLAN_REFUSED: &str = "PlanRefused";
    /// A container kept failing and the crash-loop brake stopped restarts.
    pub const CRASH_LOOP: &str = "CrashLoop";
    /// An update never became healthy and was rolled back.
    pub const ROLLED_BACK: &str = "RolledBack";
    /// An update never became healthy and `failure_action: pause` left it as it is.
    pub const UPDATE_PAUSED: &str = "UpdatePaused";
}

/// Longest message kept, in bytes (the Kubernetes limit for a condition's
/// message); longer ones are cut at a character boundary and end in `…`.
pub const MAX_MESSAGE_BYTES: usize = 32_768;

/// Why a status could not be read or written as YAML.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not a valid status document.
    #[error("not a valid stack status: {0}")]
    Unparsable(#[source] Box<serde_saphyr::Error>),
    /// The status could not be turned into YAML.
    #[error("cannot write the stack status as YAML")]
    Unserializable(#[source] Box<serde_saphyr::SerializeError>),
}

impl Error {
    /// A short label for metrics and status reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Unparsable(_) => "status_unparsable",
            Error::Unserializable(_) => "status_unserializable",
        }
    }
}

/// The kstatus condition types every stack carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConditionType {
    /// The stack runs as its spec says (what `kubectl wait --for=condition=Ready` waits for).
    Ready,
    /// stackd is acting on the stack, or will again soon.
    Reconciling,
    /// stackd cannot make progress until something changes (the file, the host).
    Stalled,
}

impl ConditionType {
    /// The three types, in the order a status lists them.
    pub const ALL: [ConditionType; 3] = [
        ConditionType::Ready,
        ConditionType::Reconciling,
        ConditionType::Stalled,
    ];
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A condition's status, serialized as Kubernetes spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One kstatus condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Which condition.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// One `CamelCase` word saying why.
    pub reason: String,
    /// A sentence for people. Never holds secret values.
    pub message: String,
    /// When `status` last changed (not when reason or message did).
    pub last_transition_time: Timestamp,
}

/// Replica counts of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Replicas the spec asks for.
    pub desired: u32,
    /// Replicas running and, when the service has a healthcheck, healthy;
    /// a one-shot service that exited 0 counts as ready.
    pub ready: u32,
    /// The image the service runs.
    pub image: String,
}

/// The error that last kept a stack from converging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// What went wrong, for people. Never holds secret values.
    pub message: String,
    /// The file at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in `file`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column in `file`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// When it happened.
    pub at: Timestamp,
}

impl LastError {
    /// An error without a place in a file.
    pub fn new(message: impl Into<String>, now: &Timestamp) -> Self {
        LastError {
            message: clip(message.into()),
            file: None,
            line: None,
            column: None,
            at: now.clone(),
        }
    }

    /// `file:line:column` (as much of it as is known), or `None`.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        Some(match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
            (Some(line), None) => format!("{file}:{line}"),
            _ => file.to_string(),
        })
    }
}

/// What stackd last saw and did for one stack: the content of its state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackStatus {
    /// The stack's name (also its state file's name).
    pub stack: String,
    /// Where its desired state comes from (manifest path or compose
    /// directory), for people.
    pub source: String,
    /// Counts changes of the desired spec's content: 1 on first sight.
    pub generation: u64,
    /// Hash of the desired spec content last seen.
    pub spec_hash: String,
    /// The generation last reconciled, successfully or not.
    pub observed_generation: u64,
    /// Always `Ready`, `Reconciling` and `Stalled`, in that order.
    pub conditions: Vec<Condition>,
    /// Replica counts by service name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceStatus>,
    /// The error that last kept the stack from converging; cleared when it converges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// `spec.suspend`: stackd observes the stack but changes nothing.
    #[serde(default)]
    pub suspended: bool,
}

impl StackStatus {
    /// A stack seen for the first time: generation 0, every condition Unknown.
    pub fn new(stack: &str, source: &str, now: &Timestamp) -> Self {
        let unknown = |type_| Condition {
            type_,
            status: ConditionStatus::Unknown,
            reason: reason::INITIALIZING.into(),
            message: "not reconciled yet".into(),
            last_transition_time: now.clone(),
        };
        StackStatus {
            stack: stack.into(),
            source: source.into(),
            generation: 0,
            spec_hash: String::new(),
            observed_generation: 0,
            conditions: ConditionType::ALL.into_iter().map(unknown).collect(),
            services: BTreeMap::new(),
            last_error: None,
            suspended: false,
        }
    }

    /// Records the hash of the desired spec content just seen: the
    /// generation goes up by one when it differs from the last one (and on
    /// first sight, to 1). Seeing the same content again changes nothing.
    pub fn observe_spec(&mut self, spec_hash: &str) {
        if self.generation == 0 || self.spec_hash != spec_hash {
            self.generation += 1;
            self.spec_hash = spec_hash.into();
        }
    }

    /// A reconcile starts acting on the stack: Reconciling=True with
    /// `reason` (e.g. [`reason::PROGRESSING`]) and `message`. When the spec
    /// changed since the last reconcile (`generation > observed_generation`),
    /// Ready and Stalled go False too: the old verdicts were about the old
    /// spec. A resync or drift repair of an unchanged spec leaves them, so
    /// Ready does not flap on every resync.
    pub fn reconciling(&mut self, reason: &str, message: &str, now: &Timestamp) {
        use ConditionStatus::{False, True};
        self.set(ConditionType::Reconciling, True, reason, message, now);
        if self.generation > self.observed_generation {
            let why = format!("generation {} not applied yet", self.generation);
            self.set(ConditionType::Ready, False, reason, &why, now);
            self.set(ConditionType::Stalled, False, reason, &why, now);
        }
    }

    /// Converged: every service has its desired replicas ready. Ready=True,
    /// Reconciling=False, Stalled=False, the generation counts as observed
    /// and the last error is cleared.
    pub fn ready(&mut self, services: BTreeMap<String, ServiceStatus>, now: &Timestamp) {
        use ConditionStatus::{False, True};
        let message = replicas_message(&services);
        self.services = services;
        self.observed_generation = self.generation;
        self.last_error = None;
        let r = reason::SUCCEEDED;
        self.set(ConditionType::Ready, True, r, &message, now);
        self.set(ConditionType::Reconciling, False, r, &message, now);
        self.set(ConditionType::Stalled, False, r, &message, now);
    }

    /// The plan was applied without error but the stack is still
    /// converging (containers starting, health pending): Ready=False and
    /// Reconciling=True with `reason` and `message`, Stalled=False, the
    /// generation counts as observed and the last error is cleared.
    pub fn progressing(
        &mut self,
        services: BTreeMap<String, ServiceStatus>,
        reason: &str,
        message: &str,
        now: &Timestamp,
    ) {
        use ConditionStatus::{False, True};
        self.services = services;
        self.observed_generation = self.generation;
        self.last_error = None;
        self.set(ConditionType::Ready, False, reason, message, now);
        self.set(ConditionType::Reconciling, True, reason, message, now);
        self.set(ConditionType::Stalled, False, reason, message, now);
    }

    /// A failure that only a change clears (a file that does not load, a
    /// refused plan, a crash loop, a rolled-back update): Stalled=True,
    /// Ready=False and Reconciling=False, all with `reason` and the error's
    /// message; `error` becomes the last error. Services keep their last
    /// counts: what runs is left running (safety rule 1).
    pub fn stalled(&mut self, reason: &str, mut error: LastError, now: &Timestamp) {
        use ConditionStatus::{False, True};
        error.message = clip(error.message);
        let message = error.message.clone();
        self.observed_generation = self.generation;
        self.last_error = Some(error);
        self.set(ConditionType::Ready, False, reason, &message, now);
        self.set(ConditionType::Reconciling, False, reason, &message, now);
        self.set(ConditionType::Stalled, True, reason, &message, now);
    }

    /// A failure that will be retried after `retry_in` (an engine error):
    /// Reconciling=True with reason `RetryScheduled` and a message saying
    /// when, Ready=False with reason `ReconcileFailed`, Stalled=False;
    /// `error` becomes the last error.
    pub fn retrying(
        &mut self,
        mut error: LastError,
        retry_in: std::time::Duration,
        now: &Timestamp,
    ) {
        use ConditionStatus::{False, True};
        error.message = clip(error.message);
        let when = match time::add(now, retry_in) {
            Some(at) => format!("retrying in {} (at {at})", short_duration(retry_in)),
            None => format!("retrying in {}", short_duration(retry_in)),
        };
        let message = format!("{when}: {}", error.message);
        self.observed_generation = self.generation;
        self.last_error = Some(error);
        self.set(
            ConditionType::Ready,
            False,
            "ReconcileFailed",
            &message,
            now,
        );
        self.set(
            ConditionType::Reconciling,
            True,
            reason::RETRY_SCHEDULED,
            &message,
            now,
        );
        self.set(
            ConditionType::Stalled,
            False,
            reason::RETRY_SCHEDULED,
            &message,
            now,
        );
    }

    /// Records `spec.suspend`. Suspending sets Reconciling=False with reason
    /// `Suspended`; resuming leaves the conditions to the next reconcile.
    pub fn suspend(&mut self, suspended: bool, now: &Timestamp) {
        self.suspended = suspended;
        if suspended {
            self.set(
                ConditionType::Reconciling,
                ConditionStatus::False,
                reason::SUSPENDED,
                "spec.suspend is true: stackd changes nothing",
                now,
            );
        }
    }

    /// Whether the Ready condition is True.
    pub fn is_ready(&self) -> bool {
        self.condition(ConditionType::Ready)
            .is_some_and(|c| c.status == ConditionStatus::True)
    }

    /// The condition of type `t`.
    pub fn condition(&self, t: ConditionType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == t)
    }

    /// Replicas ready and desired, summed over the services.
    pub fn replica_totals(&self) -> (u32, u32) {
        self.services.values().fold((0, 0), |(r, d), s| {
            (r.saturating_add(s.ready), d.saturating_add(s.desired))
        })
    }

    /// The condition that best explains the stack's state, for one-line
    /// summaries: Stalled when True, else Reconciling when True or
    /// suspended, else Ready.
    pub fn headline(&self) -> Option<&Condition> {
        let holds = |t| {
            self.condition(t)
                .filter(|c| c.status == ConditionStatus::True)
        };
        holds(ConditionType::Stalled)
            .or_else(|| holds(ConditionType::Reconciling))
            .or_else(|| {
                self.suspended
                    .then(|| self.condition(ConditionType::Reconciling))
                    .flatten()
            })
            .or_else(|| self.condition(ConditionType::Ready))
    }

    /// Sets a condition, adding it if missing. The transition time moves
    /// only when the status changes.
    fn set(
        &mut self,
        type_: ConditionType,
        status: ConditionStatus,
        reason: &str,
        message: &str,
        now: &Timestamp,
    ) {
        let reason = camel_case_reason(reason);
        let message = clip(message.to_string());
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.status = status;
                    c.last_transition_time = now.clone();
                }
                c.reason = reason;
                c.message = message;
            }
            None => {
                self.conditions.push(Condition {
                    type_,
                    status,
                    reason,
                    message,
                    last_transition_time: now.clone(),
                });
                self.conditions.sort_by_key(|c| c.type_);
            }
        }
    }
}

/// `2/3 replicas ready` style summary of service counts.
fn replicas_message(services: &BTreeMap<String, ServiceStatus>) -> String {
    let (ready, desired) = services.values().fold((0u32, 0u32), |(r, d), s| {
        (r.saturating_add(s.ready), d.saturating_add(s.desired))
    });
    let count = services.len();
    let noun = if count == 1 { "service" } else { "services" };
    format!("{count} {noun}, {ready}/{desired} replicas ready")
}

/// A reason as Kubernetes wants it: one `CamelCase` word of letters and
/// digits starting with a letter. `invalid_replicas` and `crash-loop`
/// become `InvalidReplicas` and `CrashLoop`; `RetryScheduled` stays;
/// nothing usable becomes `Unknown`.
pub fn camel_case_reason(text: &str) -> String {
    let mut out = String::new();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    match out.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => out,
        Some(_) => format!("R{out}"),
        None => "Unknown".into(),
    }
}

/// Cuts `message` to [`MAX_MESSAGE_BYTES`] at a character boundary.
fn clip(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// The status as the YAML of a state file (and `stackd status --format yaml`).
pub fn to_yaml(status: &StackStatus) -> Result<String, Error> {
    serde_saphyr::to_string(status).map_err(|e| Error::Unserializable(Box::new(e)))
}

/// Reads a status back from the YAML [`to_yaml`] writes.
pub fn from_yaml(text: &str) -> Result<StackStatus, Error> {
    serde_saphyr::from_str(text).map_err(|e| Error::Unparsable(Box::new(e)))
}

#[cfg(test)]
mod tests;
