//! Fault injection and the request log: tests make chosen requests fail
//! with 500 or 409 and read back what clients asked for.

use std::sync::{Arc, Mutex, MutexGuard};

/// The verb of a resource request, as RBAC names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET with `watch`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH (apply included).
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// `GET`, `PATCH`...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The verb, for resource requests.
    pub verb: Option<Verb>,
    /// The resource's plural, for resource requests.
    pub resource: Option<String>,
    /// `fieldManager`, when sent.
    pub field_manager: Option<String>,
    /// The `User-Agent` header, when sent.
    pub user_agent: Option<String>,
    /// The status code answered.
    pub status: u16,
    /// When the request arrived (tests time retries by it).
    pub at: std::time::Instant,
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultFilter {
    /// Only this verb.
    pub verb: Option<Verb>,
    /// Only this resource (plural, e.g. `deployments`).
    pub resource: Option<String>,
    /// Only the status subresource (`Some(true)`), or only the main one.
    pub status_subresource: Option<bool>,
}

impl FaultFilter {
    /// Every resource request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Requests with `verb` on `resource`.
    pub fn on(verb: Verb, resource: &str) -> Self {
        FaultFilter {
            verb: Some(verb),
            resource: Some(resource.to_string()),
            status_subresource: None,
        }
    }

    fn matches(&self, verb: Verb, resource: &str, status: bool) -> bool {
        self.verb.is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
            && self.status_subresource.is_none_or(|s| s == status)
    }
}

/// The answer a fault gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 500 InternalError.
    Internal,
    /// 409 Conflict (as if the object changed under the client).
    Conflict,
}

#[derive(Debug, Clone)]
struct Rule {
    filter: FaultFilter,
    kind: FaultKind,
    remaining: Option<u64>,
    rate: f64,
}

#[derive(Debug)]
struct State {
    rules: Vec<Rule>,
    seed: u64,
    log: Vec<RequestRecord>,
    injected: u64,
}

/// The fault plan and request log of one server; clones share them.
#[derive(Debug, Clone)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

impl Faults {
    /// No faults, an empty log.
    pub fn new() -> Self {
        Faults {
            state: Arc::new(Mutex::new(State {
                rules: Vec::new(),
                seed: 0x2545_f491_4f6c_dd1d,
                log: Vec::new(),
                injected: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next `count` matching requests fail with `kind`.
    pub fn fail_next(&self, count: u64, kind: FaultKind, filter: FaultFilter) {
        self.lock().rules.push(Rule {
            filter,
            kind,
            remaining: Some(count),
            rate: 1.0,
        });
    }

    /// Each matching request fails with probability `rate` (a fixed seed:
    /// the same requests in the same order fail the same way).
    pub fn fail_fraction(&self, rate: f64, kind: FaultKind, filter: FaultFilter) {
        self.lock().rules.push(Rule {
            filter,
            kind,
            remaining: None,
            rate,
        });
    }

    /// Sets the seed of `fail_fraction` draws.
    pub fn seed(&self, seed: u64) {
        self.lock().seed = seed | 1;
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    pub(crate) fn log(&self, record: RequestRecord) {
        self.lock().log.push(record);
    }

    /// The fault this request draws, if any.
    pub(crate) fn draw(&self, verb: Verb, resource: &str, status: bool) -> Option<FaultKind> {
        let mut state = self.lock();
        let state = &mut *state;
        for rule in state.rules.iter_mut() {
            if !rule.filter.matches(verb, resource, status) || rule.remaining == Some(0) {
                continue;
            }
            let hit = if rule.rate >= 1.0 {
                true
            } else {
                state.seed ^= state.seed << 13;
                state.seed ^= state.seed >> 7;
                state.seed ^= state.seed << 17;
                ((state.seed >> 11) as f64 / (1u64 << 53) as f64) < rule.rate
            };
            if hit {
                if let Some(remaining) = rule.remaining.as_mut() {
                    *remaining -= 1;
                }
                state.injected += 1;
                return Some(rule.kind);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_fails_exactly_that_many_matching_requests() {
        let faults = Faults::new();
        faults.fail_next(
            2,
            FaultKind::Conflict,
            FaultFilter::on(Verb::Update, "deployments"),
        );
        assert_eq!(faults.draw(Verb::Update, "services", false), None);
        assert_eq!(
            faults.draw(Verb::Update, "deployments", false),
            Some(FaultKind::Conflict)
        );
        assert_eq!(faults.draw(Verb::Get, "deployments", false), None);
        assert_eq!(
            faults.draw(Verb::Update, "deployments", true),
            Some(FaultKind::Conflict)
        );
        assert_eq!(faults.draw(Verb::Update, "deployments", false), None);
        assert_eq!(faults.injected(), 2);
    }

    #[test]
    fn a_fraction_fails_about_that_share_of_requests() {
        let faults = Faults::new();
        faults.fail_fraction(0.25, FaultKind::Internal, FaultFilter::any());
        let failed = (0..4000)
            .filter(|_| faults.draw(Verb::List, "pods", false).is_some())
            .count();
        assert!((800..1200).contains(&failed), "{failed} of 4000 failed");
    }
}
