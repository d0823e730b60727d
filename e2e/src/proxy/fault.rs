//! What faults the proxy injects and when: a `FaultPlan` of rules (a fault
//! kind, a trigger by seeded chance or by count, an optional endpoint), and
//! the per-call decision, deterministic for a given seed and call order.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

/// What the proxy does to one call instead of (or before) forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Answer `500 Internal Server Error` with the JSON body
    /// `{"message":"injected fault"}`; the engine never sees the call.
    Status500,
    /// Forward the call after this delay.
    Delay(Duration),
    /// Close the client's connection without an answer; the engine never
    /// sees the call.
    Drop,
    /// Forward the call, wait until the engine answers (so it did the work),
    /// then close the client's connection without relaying the answer.
    DropAfterForward,
}

impl Fault {
    /// A short name for logs: `500`, `delay`, `drop`, `drop-after-forward`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Status500 => "500",
            Self::Delay(_) => "delay",
            Self::Drop => "drop",
            Self::DropAfterForward => "drop-after-forward",
        }
    }
}

/// When a rule fires, counted over the calls its endpoint (and the plan's)
/// matches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// On each matching call with this probability (0.0–1.0), drawn from a
    /// seeded stream per endpoint (`METHOD /pattern`), so concurrent calls
    /// to other endpoints do not change which calls to one endpoint fail.
    Rate(f64),
    /// On matching calls number n, 2n, 3n, ... (`EveryNth(1)` is every
    /// call), counted over all endpoints the rule matches.
    EveryNth(u64),
    /// On the first n matching calls, then never.
    FirstN(u64),
}

/// Which calls a rule or a plan applies to: a method (any when `None`) and a
/// path, compared with the API version stripped (`/v1.41/containers/create`
/// is `/containers/create`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Upper-case method, or `None` for any.
    pub method: Option<String>,
    /// How the path is matched.
    pub path: PathMatch,
}

/// How an [`Endpoint`] matches the version-stripped path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The path (without query) starts with this.
    Prefix(String),
    /// The path's pattern (ids replaced, see [`crate::path_pattern`]) is
    /// exactly this, e.g. `/containers/{id}/start`.
    Pattern(String),
}

impl Endpoint {
    /// `method` (`"*"` for any) and a path prefix: `Endpoint::prefix("POST", "/containers/create")`.
    pub fn prefix(method: &str, prefix: &str) -> Self {
        Self {
            method: method_filter(method),
            path: PathMatch::Prefix(prefix.to_string()),
        }
    }

    /// `method` (`"*"` for any) and an exact path pattern:
    /// `Endpoint::pattern("POST", "/containers/{id}/start")`.
    pub fn pattern(method: &str, pattern: &str) -> Self {
        Self {
            method: method_filter(method),
            path: PathMatch::Pattern(pattern.to_string()),
        }
    }

    /// Parses `"METHOD /path"` (a prefix, or a pattern when it holds `{`),
    /// `"/path"` (any method) or `"METHOD"`; `None` when the method is not
    /// a word (or `*`) or the path does not start with `/`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (method, path) = match text.split_once(char::is_whitespace) {
            Some((method, path)) => (method, path.trim()),
            None if text.starts_with('/') => ("*", text),
            None => (text, "/"),
        };
        let word = method == "*"
            || (!method.is_empty() && method.chars().all(|c| c.is_ascii_alphabetic()));
        if !word || !path.starts_with('/') {
            return None;
        }
        Some(if path.contains('{') {
            Self::pattern(method, path)
        } else {
            Self::prefix(method, path)
        })
    }

    /// True when a call with this method, version-stripped path and pattern matches.
    pub fn matches(&self, method: &str, path: &str, pattern: &str) -> bool {
        if self
            .method
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(method))
        {
            return false;
        }
        match &self.path {
            PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PathMatch::Pattern(exact) => pattern == exact,
        }
    }
}

fn method_filter(method: &str) -> Option<String> {
    let method = method.trim();
    (!method.is_empty() && method != "*").then(|| method.to_ascii_uppercase())
}

/// One way to fail calls.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// What happens to a call the rule fires on.
    pub fault: Fault,
    /// When it fires.
    pub trigger: Trigger,
    /// Only calls to this endpoint count and can fire (all when `None`).
    pub endpoint: Option<Endpoint>,
}

impl FaultRule {
    /// A rule for every endpoint.
    pub fn new(fault: Fault, trigger: Trigger) -> Self {
        Self {
            fault,
            trigger,
            endpoint: None,
        }
    }

    /// Restricts the rule to one endpoint.
    #[must_use]
    pub fn on(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }
}

/// The faults a proxy injects: rules tried in order for each call (the first
/// that fires wins), optionally restricted to an endpoint, sparing others
/// (`except`), and limited to a time window measured from the moment the
/// plan is installed.
///
/// Every rule counts and draws for every call in scope whether or not an
/// earlier rule fired, so one rule's choices do not depend on the others:
/// with the same seed, the nth call to an endpoint meets the same fate
/// (rates draw per endpoint; `EveryNth`/`FirstN` count all calls the rule
/// matches, so restrict them to one endpoint when calls run concurrently). Two rules firing on one call apply only the first, so a later
/// rule's effective rate is lower than its own.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// Rules in priority order.
    pub rules: Vec<FaultRule>,
    /// Seed of the generator behind [`Trigger::Rate`].
    pub seed: u64,
    /// Only calls to this endpoint are in scope (all when `None`).
    pub endpoint: Option<Endpoint>,
    /// Calls to these endpoints are out of scope (e.g. the `/events` stream).
    pub except: Vec<Endpoint>,
    /// Only calls whose request arrives this long after installation are in
    /// scope (always when `None`); calls outside are not counted either.
    pub window: Option<Range<Duration>>,
}

impl FaultPlan {
    /// An empty plan (injects nothing) with this seed.
    pub fn seeded(seed: u64) -> Self {
        Self {
            rules: Vec::new(),
            seed,
            endpoint: None,
            except: Vec::new(),
            window: None,
        }
    }

    /// Adds a rule after the existing ones.
    #[must_use]
    pub fn rule(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds a rule: `fault` on each call in scope with `probability`.
    #[must_use]
    pub fn rate(self, fault: Fault, probability: f64) -> Self {
        self.rule(FaultRule::new(fault, Trigger::Rate(probability)))
    }

    /// Adds a rule: `fault` on every `n`th call in scope.
    #[must_use]
    pub fn every(self, n: u64, fault: Fault) -> Self {
        self.rule(FaultRule::new(fault, Trigger::EveryNth(n)))
    }

    /// Adds a rule: `fault` on the first `n` calls in scope.
    #[must_use]
    pub fn first(self, n: u64, fault: Fault) -> Self {
        self.rule(FaultRule::new(fault, Trigger::FirstN(n)))
    }

    /// Adds a rule: `fault` on every call in scope.
    #[must_use]
    pub fn always(self, fault: Fault) -> Self {
        self.every(1, fault)
    }

    /// Restricts the whole plan to one endpoint.
    #[must_use]
    pub fn only(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Leaves calls to `endpoint` alone (may be given more than once).
    #[must_use]
    pub fn except(mut self, endpoint: Endpoint) -> Self {
        self.except.push(endpoint);
        self
    }

    /// Restricts the whole plan to calls arriving in `window` (offsets from
    /// the moment the plan is installed).
    #[must_use]
    pub fn during(mut self, window: Range<Duration>) -> Self {
        self.window = Some(window);
        self
    }

    /// True when the plan has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// A plan being applied: its rules' counters and random streams.
#[derive(Debug, Clone)]
pub struct FaultState {
    plan: FaultPlan,
    counts: Vec<u64>,
    /// One stream per rule and `METHOD /pattern`, made on first use.
    streams: HashMap<(usize, String), SplitMix64>,
}

impl FaultState {
    /// Starts applying `plan` with fresh counters.
    pub fn new(plan: FaultPlan) -> Self {
        Self {
            counts: vec![0; plan.rules.len()],
            streams: HashMap::new(),
            plan,
        }
    }

    /// The next draw of rule `rule` for calls to `method pattern`: each
    /// endpoint has its own stream, so the nth call to one endpoint gets the
    /// same draw however calls to others interleave with it.
    fn draw(
        streams: &mut HashMap<(usize, String), SplitMix64>,
        seed: u64,
        rule: usize,
        method: &str,
        pattern: &str,
    ) -> f64 {
        streams
            .entry((rule, format!("{method} {pattern}")))
            .or_insert_with_key(|(rule, key)| {
                let rule = *rule as u64;
                SplitMix64::new(
                    seed ^ fnv1a(key.as_bytes()) ^ rule.wrapping_mul(0xA076_1D64_78BD_642F),
                )
            })
            .next_unit()
    }

    /// The plan being applied.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// The fault for the next call (method, version-stripped path, pattern),
    /// arriving `since_installed` after the plan was installed.
    pub fn decide(
        &mut self,
        method: &str,
        path: &str,
        pattern: &str,
        since_installed: Duration,
    ) -> Option<Fault> {
        let plan = &self.plan;
        let in_scope = plan
            .window
            .as_ref()
            .is_none_or(|w| w.contains(&since_installed))
            && plan
                .endpoint
                .as_ref()
                .is_none_or(|e| e.matches(method, path, pattern))
            && !plan.except.iter().any(|e| e.matches(method, path, pattern));
        if !in_scope {
            return None;
        }
        let mut chosen = None;
        for (i, rule) in self.plan.rules.iter().enumerate() {
            if rule
                .endpoint
                .as_ref()
                .is_some_and(|e| !e.matches(method, path, pattern))
            {
                continue;
            }
            self.counts[i] += 1;
            let count = self.counts[i];
            let fires = match rule.trigger {
                Trigger::Rate(p) => {
                    Self::draw(&mut self.streams, plan.seed, i, method, pattern) < p
                }
                Trigger::EveryNth(n) => n > 0 && count % n == 0,
                Trigger::FirstN(n) => count <= n,
            };
            if fires && chosen.is_none() {
                chosen = Some(rule.fault);
            }
        }
        chosen
    }
}

/// The FNV-1a hash: stable across runs and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The SplitMix64 generator: tiny, seedable, good enough to pick calls.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        // 53 random bits fill an f64 mantissa exactly.
        #[allow(clippy::cast_precision_loss)]
        let unit = (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
        unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide_n(state: &mut FaultState, n: usize, method: &str, path: &str) -> Vec<Option<Fault>> {
        (0..n)
            .map(|_| state.decide(method, path, path, Duration::ZERO))
            .collect()
    }

    #[test]
    fn the_same_seed_fails_the_same_calls_and_another_seed_others() {
        let plan = |seed| FaultPlan::seeded(seed).rate(Fault::Status500, 0.3);
        let a = decide_n(
            &mut FaultState::new(plan(7)),
            1000,
            "GET",
            "/containers/json",
        );
        let b = decide_n(
            &mut FaultState::new(plan(7)),
            1000,
            "GET",
            "/containers/json",
        );
        let c = decide_n(
            &mut FaultState::new(plan(8)),
            1000,
            "GET",
            "/containers/json",
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        let failed = a.iter().flatten().count();
        // 1000 draws at 0.3: mean 300, standard deviation about 14.5.
        assert!((240..=360).contains(&failed), "{failed} of 1000 failed");
    }

    #[test]
    fn calls_to_one_endpoint_fail_alike_however_other_calls_interleave() {
        let plan = FaultPlan::seeded(5).rate(Fault::Status500, 0.5);
        let create = |state: &mut FaultState| {
            state.decide(
                "POST",
                "/containers/create",
                "/containers/create",
                Duration::ZERO,
            )
        };
        let mut alone = FaultState::new(plan.clone());
        let by_itself: Vec<_> = (0..200).map(|_| create(&mut alone)).collect();
        let mut mixed = FaultState::new(plan);
        let interleaved: Vec<_> = (0..200)
            .map(|i| {
                for _ in 0..i % 3 {
                    mixed.decide(
                        "GET",
                        "/containers/json",
                        "/containers/json",
                        Duration::ZERO,
                    );
                }
                create(&mut mixed)
            })
            .collect();
        assert_eq!(by_itself, interleaved);
    }

    #[test]
    fn rates_of_zero_and_one_never_and_always_fire() {
        let mut never = FaultState::new(FaultPlan::seeded(1).rate(Fault::Drop, 0.0));
        let mut always = FaultState::new(FaultPlan::seeded(1).rate(Fault::Drop, 1.0));
        assert!(decide_n(&mut never, 500, "GET", "/x")
            .iter()
            .all(Option::is_none));
        assert!(decide_n(&mut always, 500, "GET", "/x")
            .iter()
            .all(Option::is_some));
    }

    #[test]
    fn every_nth_fires_on_multiples_of_n_among_matching_calls_only() {
        let plan = FaultPlan::seeded(0).rule(
            FaultRule::new(Fault::Status500, Trigger::EveryNth(3))
                .on(Endpoint::prefix("POST", "/containers/create")),
        );
        let mut state = FaultState::new(plan);
        let mut fired = Vec::new();
        for i in 1..=12 {
            // Unrelated calls between the creates must not advance the count.
            assert_eq!(
                state.decide(
                    "GET",
                    "/containers/json",
                    "/containers/json",
                    Duration::ZERO
                ),
                None
            );
            if state
                .decide(
                    "POST",
                    "/containers/create",
                    "/containers/create",
                    Duration::ZERO,
                )
                .is_some()
            {
                fired.push(i);
            }
        }
        assert_eq!(fired, [3, 6, 9, 12]);
    }

    #[test]
    fn first_n_fails_the_first_calls_then_lets_everything_through() {
        let mut state = FaultState::new(FaultPlan::seeded(0).first(2, Fault::Drop));
        let got = decide_n(&mut state, 5, "GET", "/_ping");
        assert_eq!(
            got,
            [Some(Fault::Drop), Some(Fault::Drop), None, None, None]
        );
    }

    #[test]
    fn the_first_rule_that_fires_wins_and_later_rules_keep_their_own_count() {
        let plan = FaultPlan::seeded(0)
            .every(2, Fault::Status500)
            .every(3, Fault::Drop);
        let got = decide_n(&mut FaultState::new(plan), 6, "GET", "/x");
        assert_eq!(
            got,
            [
                None,
                Some(Fault::Status500),
                Some(Fault::Drop),
                Some(Fault::Status500),
                None,
                Some(Fault::Status500)
            ]
        );
    }

    #[test]
    fn a_plan_applies_only_to_its_endpoint_and_inside_its_window() {
        let plan = FaultPlan::seeded(0)
            .always(Fault::Status500)
            .only(Endpoint::parse("POST /containers/{id}/start").unwrap())
            .during(Duration::from_secs(1)..Duration::from_secs(2));
        let mut state = FaultState::new(plan);
        let start = |state: &mut FaultState, at: u64| {
            state.decide(
                "POST",
                "/containers/abc/start",
                "/containers/{id}/start",
                Duration::from_millis(at),
            )
        };
        assert_eq!(start(&mut state, 500), None);
        assert_eq!(start(&mut state, 1500), Some(Fault::Status500));
        assert_eq!(start(&mut state, 2000), None);
        assert_eq!(
            state.decide(
                "POST",
                "/containers/abc/stop",
                "/containers/{id}/stop",
                Duration::from_millis(1500)
            ),
            None
        );
        assert_eq!(
            state.decide(
                "GET",
                "/containers/abc/start",
                "/containers/{id}/start",
                Duration::from_millis(1500)
            ),
            None
        );
    }

    #[test]
    fn excepted_endpoints_are_left_alone_and_not_counted() {
        let plan = FaultPlan::seeded(0)
            .every(2, Fault::Drop)
            .except(Endpoint::prefix("GET", "/events"))
            .except(Endpoint::prefix("*", "/_ping"));
        let mut state = FaultState::new(plan);
        let mut got = Vec::new();
        for path in [
            "/events",
            "/containers/json",
            "/_ping",
            "/events",
            "/containers/json",
        ] {
            got.push(state.decide("GET", path, path, Duration::ZERO));
        }
        assert_eq!(got, [None, None, None, None, Some(Fault::Drop)]);
    }

    #[test]
    fn endpoints_parse_method_and_prefix_or_pattern() {
        let parse = |text| Endpoint::parse(text).unwrap();
        assert_eq!(
            parse("post /containers/create"),
            Endpoint::prefix("POST", "/containers/create")
        );
        assert_eq!(
            parse("DELETE /containers/{id}"),
            Endpoint::pattern("DELETE", "/containers/{id}")
        );
        assert_eq!(parse("/networks"), Endpoint::prefix("*", "/networks"));
        assert!(parse("/networks").matches("DELETE", "/networks/x", "/networks/{id}"));
        assert!(!parse("GET").matches("POST", "/x", "/x"));
        assert_eq!(Endpoint::parse("POST/containers/create"), None);
        assert_eq!(Endpoint::parse("POST containers"), None);
    }
}
