//! Where relays deliver events: the [`Publisher`] trait, an in-memory
//! [`MemPublisher`] for tests, and (feature `log`) a `LogPublisher`.

use std::collections::{BTreeMap, BTreeSet};

use super::event::{Event, EventId};

/// A publish failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// Try again later (broker down, timeout): the event is retried with
    /// backoff, then dead-lettered after `max_attempts`.
    #[error("retryable: {0}")]
    Retryable(String),
    /// This event can never be published (poison: too large, rejected by
    /// the broker's schema): dead-lettered at once.
    #[error("poison: {0}")]
    Poison(String),
}

/// Delivers events. The relay calls it once per event, in per-key order, and
/// marks the event published only after `Ok`: a crash in between delivers it
/// again (at least once; consumers deduplicate by [`Event::id`], e.g. with
/// an inbox). `Ok` must mean the event is durable downstream.
///
/// The relay stops calling it for a partition `renew_margin` before its lease
/// ends, so one call should take less than `renew_margin` (minus clock skew).
pub trait Publisher {
    /// Delivers `event`.
    fn publish(&mut self, event: &Event) -> Result<(), PublishError>;
}

impl<P: Publisher + ?Sized> Publisher for &mut P {
    fn publish(&mut self, event: &Event) -> Result<(), PublishError> {
        (**self).publish(event)
    }
}

/// Records deliveries in memory; can be told to fail.
#[derive(Debug, Default)]
pub struct MemPublisher {
    delivered: Vec<Event>,
    fail_times: BTreeMap<EventId, u32>,
    always_fail: BTreeSet<EventId>,
    poison: BTreeSet<EventId>,
    attempts: u64,
}

impl MemPublisher {
    /// A publisher that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every delivered event, in delivery order (re-deliveries included).
    pub fn delivered(&self) -> &[Event] {
        &self.delivered
    }

    /// Takes the delivered events, leaving none.
    pub fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.delivered)
    }

    /// Publish calls so far, failed ones included.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// The next `times` publishes of `id` fail with a retryable error.
    pub fn fail_times(&mut self, id: EventId, times: u32) {
        self.fail_times.insert(id, times);
    }

    /// Every publish of `id` fails with a retryable error (until
    /// [`heal`](Self::heal)).
    pub fn fail_always(&mut self, id: EventId) {
        self.always_fail.insert(id);
    }

    /// Every publish of `id` fails as poison.
    pub fn poison(&mut self, id: EventId) {
        self.poison.insert(id);
    }

    /// Clears every failure set up for `id`.
    pub fn heal(&mut self, id: EventId) {
        self.fail_times.remove(&id);
        self.always_fail.remove(&id);
        self.poison.remove(&id);
    }
}

impl Publisher for MemPublisher {
    fn publish(&mut self, event: &Event) -> Result<(), PublishError> {
        self.attempts += 1;
        if self.poison.contains(&event.id) {
            return Err(PublishError::Poison(format!(
                "event {} is poison",
                event.id
            )));
        }
        if self.always_fail.contains(&event.id) {
            return Err(PublishError::Retryable(format!("event {} fails", event.id)));
        }
        if let Some(n) = self.fail_times.get_mut(&event.id) {
            if *n > 0 {
                *n -= 1;
                return Err(PublishError::Retryable(format!(
                    "event {} fails {} more times",
                    event.id, n
                )));
            }
        }
        self.delivered.push(event.clone());
        Ok(())
    }
}
