//! A resync round's shared container listing: one list call for every
//! stack instead of one per stack, each stack taking its share once, and a
//! share dropped as soon as an engine event says it may be stale.
use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::docker::AllContainers;
use crate::plan::ObservedContainer;

/// The listing of the current round and what has happened since.
#[derive(Debug, Default)]
pub(crate) struct ContainerRound {
    /// Bumped by every round.
    epoch: u64,
    /// The round the shares were listed in; none are current unless it is
    /// `epoch`.
    listed_in: Option<u64>,
    /// When the listing was answered.
    listed_at: Option<Instant>,
    /// Project name → its containers, for projects that have not taken
    /// their share and had no event since.
    shares: HashMap<String, Vec<ObservedContainer>>,
    /// Engine events seen.
    events: u64,
    /// Project name → the number of its latest event, for events that
    /// may have arrived while a listing was in flight.
    touched: HashMap<String, u64>,
}

/// What a reconcile does for its containers.
#[derive(Debug, PartialEq)]
pub(crate) enum Lookup {
    /// Uses this share of the round's listing.
    Share(Vec<ObservedContainer>),
    /// Lists the round's containers for everyone, with this ticket.
    ListForRound(Ticket),
    /// Lists its own project's containers.
    Alone,
}

/// Identifies a listing made for a round: the round, and the events seen
/// when the list call went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    epoch: u64,
    events: u64,
}

impl ContainerRound {
    /// A resync round begins: the next reconcile lists for all.
    pub(crate) fn begin(&mut self) {
        self.epoch += 1;
        self.listed_in = None;
        self.shares.clear();
    }

    /// An engine event about one of `project`'s containers: its share, if
    /// any, no longer says what runs.
    pub(crate) fn touched(&mut self, project: &str) {
        self.events += 1;
        self.shares.remove(project);
        if self.listed_in != Some(self.epoch) {
            self.touched.insert(project.to_owned(), self.events);
        }
    }

    /// What `project`'s reconcile does at `now`; shares older than
    /// `max_age` are not used.
    pub(crate) fn lookup(&mut self, project: &str, now: Instant, max_age: Duration) -> Lookup {
        if self.epoch == 0 {
            return Lookup::Alone;
        }
        if self.listed_in != Some(self.epoch) {
            return Lookup::ListForRound(Ticket {
                epoch: self.epoch,
                events: self.events,
            });
        }
        let fresh = self
            .listed_at
            .is_some_and(|at| now.saturating_duration_since(at) <= max_age);
        match self.shares.remove(project) {
            Some(share) if fresh => Lookup::Share(share),
            _ => Lookup::Alone,
        }
    }

    /// Takes in the listing made with `ticket` at `now`: a share for each of
    /// `projects` (empty for one with no containers), except those touched
    /// by an event since the list call went out.
    pub(crate) fn fill(
        &mut self,
        ticket: Ticket,
        mut listing: AllContainers,
        projects: &[String],
        now: Instant,
    ) {
        if ticket.epoch != self.epoch {
            return;
        }
        let touched = std::mem::take(&mut self.touched);
        self.shares = projects
            .iter()
            .filter(|p| touched.get(*p).is_none_or(|at| *at <= ticket.events))
            .map(|p| (p.clone(), listing.remove(p).unwrap_or_default()))
            .collect();
        self.listed_in = Some(self.epoch);
        self.listed_at = Some(now);
    }

    /// The listing made with `ticket` failed: every stack of the round
    /// lists its own containers.
    pub(crate) fn failed(&mut self, ticket: Ticket) {
        if ticket.epoch == self.epoch {
            self.touched.clear();
            self.shares.clear();
            self.listed_in = Some(self.epoch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ContainerState;

    const AGE: Duration = Duration::from_secs(5);

    fn container(name: &str) -> ObservedContainer {
        ObservedContainer {
            id: name.to_owned(),
            name: name.to_owned(),
            service: "web".to_owned(),
            number: 1,
            oneoff: false,
            config_hash: String::new(),
            image: String::new(),
            image_id: String::new(),
            state: ContainerState::Running,
            health: None,
            networks: Default::default(),
        }
    }

    fn listing() -> AllContainers {
        [
            ("a".to_owned(), vec![container("a-web-1")]),
            ("b".to_owned(), vec![container("b-web-1")]),
            ("other".to_owned(), vec![container("other-web-1")]),
        ]
        .into()
    }

    /// Project a's share of [`listing`].
    fn share_of_a() -> Lookup {
        Lookup::Share(vec![container("a-web-1")])
    }

    fn projects() -> Vec<String> {
        ["a", "b", "empty"].map(String::from).to_vec()
    }

    fn ticket(lookup: Lookup) -> Ticket {
        match lookup {
            Lookup::ListForRound(ticket) => ticket,
            other => panic!("expected a listing for the round, got {other:?}"),
        }
    }

    #[test]
    fn before_any_round_every_stack_lists_alone() {
        let mut round = ContainerRound::default();
        assert_eq!(round.lookup("a", Instant::now(), AGE), Lookup::Alone);
    }

    #[test]
    fn the_first_stack_of_a_round_lists_for_all_and_each_takes_its_share_once() {
        let mut round = ContainerRound::default();
        let now = Instant::now();
        round.begin();
        let ticket = ticket(round.lookup("a", now, AGE));
        round.fill(ticket, listing(), &projects(), now);
        assert_eq!(round.lookup("a", now, AGE), share_of_a());
        assert_eq!(round.lookup("a", now, AGE), Lookup::Alone, "taken once");
        assert_eq!(round.lookup("empty", now, AGE), Lookup::Share(Vec::new()));
        assert_eq!(round.lookup("unknown", now, AGE), Lookup::Alone);
    }

    #[test]
    fn an_event_before_or_during_the_listing_drops_that_projects_share() {
        let mut round = ContainerRound::default();
        let now = Instant::now();
        round.begin();
        let ticket = ticket(round.lookup("a", now, AGE));
        round.touched("b");
        round.fill(ticket, listing(), &projects(), now);
        assert_eq!(round.lookup("b", now, AGE), Lookup::Alone);
        assert_eq!(round.lookup("a", now, AGE), share_of_a());
        round.touched("empty");
        assert_eq!(round.lookup("empty", now, AGE), Lookup::Alone);
    }

    #[test]
    fn an_event_seen_before_the_list_call_went_out_does_not_drop_the_share() {
        let mut round = ContainerRound::default();
        let now = Instant::now();
        round.touched("a");
        round.begin();
        let ticket = ticket(round.lookup("a", now, AGE));
        round.fill(ticket, listing(), &projects(), now);
        assert_eq!(round.lookup("a", now, AGE), share_of_a());
    }

    #[test]
    fn a_listing_from_an_earlier_round_or_too_old_is_not_used() {
        let mut round = ContainerRound::default();
        let now = Instant::now();
        round.begin();
        let stale = ticket(round.lookup("a", now, AGE));
        round.begin();
        round.fill(stale, listing(), &projects(), now);
        let current = ticket(round.lookup("a", now, AGE));
        round.fill(current, listing(), &projects(), now);
        assert_eq!(round.lookup("a", now + AGE * 2, AGE), Lookup::Alone);
    }

    #[test]
    fn a_failed_listing_leaves_every_stack_to_list_alone() {
        let mut round = ContainerRound::default();
        let now = Instant::now();
        round.begin();
        let ticket = ticket(round.lookup("a", now, AGE));
        round.failed(ticket);
        assert_eq!(round.lookup("a", now, AGE), Lookup::Alone);
        assert_eq!(round.lookup("b", now, AGE), Lookup::Alone);
    }
}
