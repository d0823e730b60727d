//! Leader election over a `coordination.k8s.io/v1` Lease, the decisions
//! only (pure); [`crate::kube::controller`] reads and writes the Lease.
//!
//! One replica holds the Lease and renews it; the others follow. A follower
//! takes the Lease over only when the record has stayed unchanged, as *it*
//! observed it, for longer than `leaseDurationSeconds`: the renew time is
//! another machine's clock, so it is compared with nothing but itself.
//! Every write carries the `resourceVersion` that was read, so of two
//! replicas that decide to take over at once the server accepts one and
//! answers the other 409 Conflict.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

/// What to do with the Lease just read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// There is none: create it, held by us.
    Create,
    /// We hold it: write a fresh renew time.
    Renew,
    /// Nobody holds it, or its holder stopped renewing: take it.
    TakeOver,
    /// Someone else holds it and renews it.
    Follow {
        /// Who.
        holder: String,
    },
}

/// The decision for `identity` given the Lease read (`None`: not found)
/// and how long its record has been unchanged as this replica saw it.
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, unchanged_for: Duration) -> LeaseAction {
    let Some(spec) = lease else {
        return LeaseAction::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == identity {
        return LeaseAction::Renew;
    }
    if holder.is_empty() {
        return LeaseAction::TakeOver;
    }
    let duration = Duration::from_secs(
        u64::try_from(spec.lease_duration_seconds.unwrap_or(15).max(1)).unwrap_or(15),
    );
    if unchanged_for > duration {
        LeaseAction::TakeOver
    } else {
        LeaseAction::Follow {
            holder: holder.to_string(),
        }
    }
}

/// The Lease spec written for `action` (not for [`LeaseAction::Follow`]):
/// held by `identity` and renewed `now`; a new holder counts one more
/// transition and sets the acquire time.
pub fn held_spec(
    previous: Option<&LeaseSpec>,
    action: &LeaseAction,
    identity: &str,
    duration: Duration,
    now: Timestamp,
) -> LeaseSpec {
    let mut spec = previous.cloned().unwrap_or_default();
    let seconds = i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX);
    if *action != LeaseAction::Renew {
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(match action {
            LeaseAction::Create => 0,
            _ => spec.lease_transitions.unwrap_or(0).saturating_add(1),
        });
    }
    spec.holder_identity = Some(identity.to_string());
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(MicroTime(now));
    spec
}

/// The Lease spec a holder leaving on purpose writes: no holder, so that
/// a follower takes over at once instead of waiting out the duration.
pub fn released_spec(previous: &LeaseSpec) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        ..previous.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIFTEEN: Duration = Duration::from_secs(15);

    fn held_by(holder: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(2),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_missing_lease_is_created_and_our_own_renewed() {
        assert_eq!(decide(None, "a", Duration::ZERO), LeaseAction::Create);
        assert_eq!(
            decide(Some(&held_by("a")), "a", Duration::from_secs(60)),
            LeaseAction::Renew
        );
    }

    #[test]
    fn a_lease_renewed_by_another_is_followed_until_it_goes_stale() {
        let lease = held_by("b");
        assert_eq!(
            decide(Some(&lease), "a", Duration::from_secs(14)),
            LeaseAction::Follow { holder: "b".into() }
        );
        assert_eq!(
            decide(Some(&lease), "a", Duration::from_secs(16)),
            LeaseAction::TakeOver
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let released = released_spec(&held_by("b"));
        assert_eq!(released.holder_identity, None);
        assert_eq!(
            decide(Some(&released), "a", Duration::ZERO),
            LeaseAction::TakeOver
        );
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let now = Timestamp::from_second(1_000).unwrap();
        let taken = held_spec(
            Some(&held_by("b")),
            &LeaseAction::TakeOver,
            "a",
            FIFTEEN,
            now,
        );
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(3));
        assert_eq!(taken.acquire_time, Some(MicroTime(now)));
        assert_eq!(taken.lease_duration_seconds, Some(15));
        let later = Timestamp::from_second(1_005).unwrap();
        let renewed = held_spec(Some(&taken), &LeaseAction::Renew, "a", FIFTEEN, later);
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(renewed.acquire_time, Some(MicroTime(now)));
        assert_eq!(renewed.renew_time, Some(MicroTime(later)));
        let created = held_spec(None, &LeaseAction::Create, "a", FIFTEEN, now);
        assert_eq!(created.lease_transitions, Some(0));
    }
}
