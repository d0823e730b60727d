//! The work queue: stacks waiting to be reconciled, each at most once in the
//! queue (repeated triggers coalesce, the earliest time wins) and at most
//! one worker on a stack at a time (a trigger that arrives while a stack is
//! being reconciled runs it again once the worker is done).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

/// Stacks due for a reconcile, keyed by name.
#[derive(Debug, Default)]
pub struct Queue {
    inner: Mutex<Inner>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    /// Stacks not being worked on, with when they are due.
    pending: BTreeMap<String, Instant>,
    /// Stacks a worker holds.
    running: BTreeSet<String>,
    /// Triggers for stacks a worker holds, applied when it lets go.
    deferred: BTreeMap<String, Instant>,
    closed: bool,
}

impl Inner {
    fn put(map: &mut BTreeMap<String, Instant>, key: &str, at: Instant) {
        map.entry(key.to_owned())
            .and_modify(|due| *due = (*due).min(at))
            .or_insert(at);
    }
}

impl Queue {
    /// An empty, open queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing here panics while holding the lock, and the maps stay
        // consistent between statements even if something did.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for `key` to be reconciled at `at`; an earlier request for the
    /// same stack wins over a later one.
    pub fn schedule(&self, key: &str, at: Instant) {
        {
            let mut inner = self.lock();
            if inner.closed {
                return;
            }
            if inner.running.contains(key) {
                Inner::put(&mut inner.deferred, key, at);
                return;
            }
            Inner::put(&mut inner.pending, key, at);
        }
        self.wake.notify_waiters();
    }

    /// Sets when `key` is next due, replacing any trigger already queued,
    /// even an earlier one: a retry after a failure, which triggers that
    /// came during the failed attempt (the echo of its own actions) must
    /// not undercut.
    pub fn reschedule(&self, key: &str, at: Instant) {
        {
            let mut inner = self.lock();
            if inner.closed {
                return;
            }
            if inner.running.contains(key) {
                inner.deferred.insert(key.to_owned(), at);
            } else {
                inner.pending.insert(key.to_owned(), at);
            }
        }
        self.wake.notify_waiters();
    }

    /// Asks for `key` to be reconciled as soon as a worker is free.
    pub fn schedule_now(&self, key: &str) {
        self.schedule(key, Instant::now());
    }

    /// Waits for the next due stack that no worker holds and hands it to the
    /// caller, who must call [`Queue::done`] with it. `None` once closed.
    pub async fn next(&self) -> Option<String> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait_until = {
                let mut inner = self.lock();
                if inner.closed {
                    return None;
                }
                let now = Instant::now();
                let earliest = inner
                    .pending
                    .iter()
                    .min_by_key(|(key, at)| (**at, (*key).clone()))
                    .map(|(key, at)| (key.clone(), *at));
                match earliest {
                    Some((key, at)) if at <= now => {
                        inner.pending.remove(&key);
                        inner.running.insert(key.clone());
                        return Some(key);
                    }
                    Some((_, at)) => Some(at),
                    None => None,
                }
            };
            match wait_until {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Lets go of `key`; a trigger that came while it was held is queued now.
    pub fn done(&self, key: &str) {
        {
            let mut inner = self.lock();
            inner.running.remove(key);
            if let Some(at) = inner.deferred.remove(key) {
                if !inner.closed {
                    Inner::put(&mut inner.pending, key, at);
                }
            }
        }
        self.wake.notify_waiters();
    }

    /// Forgets any pending trigger for `key` (a stack that is gone).
    pub fn forget(&self, key: &str) {
        let mut inner = self.lock();
        inner.pending.remove(key);
        inner.deferred.remove(key);
    }

    /// When `key` is next due, if it is queued.
    pub fn due(&self, key: &str) -> Option<Instant> {
        let inner = self.lock();
        inner
            .pending
            .get(key)
            .or_else(|| inner.deferred.get(key))
            .copied()
    }

    /// Stacks waiting, held ones with a deferred trigger included.
    pub fn depth(&self) -> usize {
        let inner = self.lock();
        inner.pending.len() + inner.deferred.len()
    }

    /// Stops handing out work: `next` returns `None` from now on.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    async fn next_within(queue: &Queue, within: Duration) -> Option<String> {
        tokio::time::timeout(within, queue.next())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_triggers_for_one_stack_coalesce_into_one_reconcile() {
        let queue = Queue::new();
        for _ in 0..5 {
            queue.schedule_now("web");
        }
        assert_eq!(queue.depth(), 1);
        assert_eq!(queue.next().await.as_deref(), Some("web"));
        queue.done("web");
        assert_eq!(next_within(&queue, Duration::from_secs(60)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_earlier_of_two_triggers_wins() {
        let queue = Queue::new();
        let start = Instant::now();
        queue.schedule("web", start + Duration::from_secs(30));
        queue.schedule("web", start + Duration::from_secs(2));
        queue.schedule("web", start + Duration::from_secs(10));
        assert_eq!(queue.next().await.as_deref(), Some("web"));
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reschedule_replaces_an_earlier_trigger_held_or_not() {
        let queue = Queue::new();
        let start = Instant::now();
        queue.schedule_now("web");
        queue.reschedule("web", start + Duration::from_secs(4));
        assert_eq!(queue.due("web"), Some(start + Duration::from_secs(4)));

        queue.schedule_now("db");
        assert_eq!(queue.next().await.as_deref(), Some("db"));
        queue.schedule_now("db");
        queue.reschedule("db", start + Duration::from_secs(2));
        queue.done("db");
        assert_eq!(queue.next().await.as_deref(), Some("db"));
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert_eq!(queue.next().await.as_deref(), Some("web"));
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stack_is_not_handed_out_before_it_is_due() {
        let queue = Queue::new();
        let start = Instant::now();
        queue.schedule("late", start + Duration::from_secs(5));
        queue.schedule("soon", start + Duration::from_secs(1));
        assert_eq!(queue.next().await.as_deref(), Some("soon"));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(queue.next().await.as_deref(), Some("late"));
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trigger_while_a_stack_is_held_runs_it_again_after_done() {
        let queue = Queue::new();
        queue.schedule_now("web");
        let held = queue.next().await;
        assert_eq!(held.as_deref(), Some("web"));
        queue.schedule_now("web");
        queue.schedule_now("web");
        assert_eq!(
            next_within(&queue, Duration::from_secs(10)).await,
            None,
            "no second worker on a held stack"
        );
        queue.done("web");
        assert_eq!(queue.next().await.as_deref(), Some("web"));
        queue.done("web");
        assert_eq!(next_within(&queue, Duration::from_secs(10)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn other_stacks_proceed_while_one_is_held() {
        let queue = Queue::new();
        queue.schedule_now("a");
        queue.schedule_now("b");
        let first = queue.next().await;
        queue.schedule_now(first.as_deref().unwrap());
        let second = queue.next().await;
        assert_ne!(first, second);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_worker_wakes_when_work_arrives() {
        let queue = Arc::new(Queue::new());
        let worker = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.next().await })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        queue.schedule_now("web");
        assert_eq!(worker.await.unwrap().as_deref(), Some("web"));
    }

    #[tokio::test(start_paused = true)]
    async fn closing_releases_waiting_workers_and_drops_new_work() {
        let queue = Arc::new(Queue::new());
        let worker = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.next().await })
        };
        tokio::task::yield_now().await;
        queue.close();
        assert_eq!(worker.await.unwrap(), None);
        queue.schedule_now("web");
        assert_eq!(queue.depth(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn forgetting_a_stack_drops_its_pending_trigger() {
        let queue = Queue::new();
        queue.schedule("gone", Instant::now() + Duration::from_secs(1));
        queue.forget("gone");
        assert_eq!(queue.depth(), 0);
        assert_eq!(next_within(&queue, Duration::from_secs(5)).await, None);
    }
}
