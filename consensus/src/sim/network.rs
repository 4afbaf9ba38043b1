//! The simulated network: per-message latency (so messages reorder),
//! loss, duplication, long delays (a message held for many election
//! timeouts), replays of old messages (copies of messages sent long ago,
//! from any term, delivered again), and partitions as a set of cut
//! directed links (a one-way partition cuts one direction only; cutting
//! A↔C while A↔B and B↔C stay up is a non-transitive partition).

use std::collections::{BTreeMap, BTreeSet};

use super::config::{self, SimConfigError};
use crate::message::Message;

/// How many past messages the network keeps to replay.
const REPLAY_SAMPLE: usize = 64;

/// How the network misbehaves. Times are in simulation time units, at
/// most [`SimConfig::MAX_UNITS`](super::SimConfig::MAX_UNITS).
/// [`NetworkConfig::default`] is [`NetworkConfig::reliable`]`(1, 5)`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NetworkConfig {
    /// Shortest delivery delay.
    pub min_delay: u64,
    /// Longest delivery delay; delays are uniform in between, so messages
    /// sent later can arrive earlier.
    pub max_delay: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message is held back for a long delay instead,
    /// uniform in `max_delay..=long_delay_max`.
    pub long_delay: f64,
    /// Longest of the long delays (several election timeouts, say); at
    /// least `max_delay`.
    pub long_delay_max: u64,
    /// Probability, per message sent, that a copy of an old message (one
    /// of a bounded sample of everything sent so far, any term, any
    /// sender) is delivered again.
    pub replay: f64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self::reliable(1, 5)
    }
}

impl NetworkConfig {
    /// A network that delivers every message exactly once, with latency
    /// between `min_delay` and `max_delay`.
    pub fn reliable(min_delay: u64, max_delay: u64) -> Self {
        Self {
            min_delay,
            max_delay,
            loss: 0.0,
            duplicate: 0.0,
            long_delay: 0.0,
            long_delay_max: max_delay,
            replay: 0.0,
        }
    }

    /// Checks every field: delays ordered
    /// `min_delay <= max_delay <= long_delay_max` and at most
    /// [`SimConfig::MAX_UNITS`](super::SimConfig::MAX_UNITS), probabilities
    /// in `0.0..=1.0`.
    ///
    /// # Errors
    /// The first [`SimConfigError`] found.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        config::time("NetworkConfig::long_delay_max", self.long_delay_max, 0)?;
        if self.min_delay > self.max_delay || self.max_delay > self.long_delay_max {
            return Err(SimConfigError::DelaysOutOfOrder {
                min_delay: self.min_delay,
                max_delay: self.max_delay,
                long_delay_max: self.long_delay_max,
            });
        }
        config::probability("NetworkConfig::loss", self.loss)?;
        config::probability("NetworkConfig::duplicate", self.duplicate)?;
        config::probability("NetworkConfig::long_delay", self.long_delay)?;
        config::probability("NetworkConfig::replay", self.replay)
    }
}

/// What the network did, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered (duplicates and replays included).
    pub delivered: u64,
    /// Lost at random.
    pub lost: u64,
    /// Dropped by a partition or because the receiver was down.
    pub cut: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Messages held back for a long delay.
    pub long_delayed: u64,
    /// Old messages injected again.
    pub replayed: u64,
}

#[derive(Debug)]
pub(super) struct Network {
    pub(super) config: NetworkConfig,
    /// In flight, by (delivery time, sequence number).
    in_flight: BTreeMap<(u64, u64), Message<u64>>,
    seq: u64,
    cut: BTreeSet<(u64, u64)>,
    /// Past messages that may be replayed.
    sample: Vec<Message<u64>>,
    pub(super) stats: NetworkStats,
}

impl Network {
    pub(super) fn new(config: NetworkConfig) -> Self {
        Self {
            config,
            in_flight: BTreeMap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            sample: Vec::new(),
            stats: NetworkStats::default(),
        }
    }

    pub(super) fn send(&mut self, message: Message<u64>, now: u64, rng: &mut fastrand::Rng) {
        self.stats.sent += 1;
        if self.config.replay > 0.0 {
            if rng.f64() < self.config.replay && !self.sample.is_empty() {
                let old = self.sample[rng.usize(..self.sample.len())].clone();
                self.stats.replayed += 1;
                self.enqueue(old, now, rng);
            }
            // Keep a bounded sample spread over the whole run: early
            // messages stay likely enough to be replayed much later.
            if self.sample.len() < REPLAY_SAMPLE {
                self.sample.push(message.clone());
            } else if rng.u32(..8) == 0 {
                let slot = rng.usize(..REPLAY_SAMPLE);
                self.sample[slot] = message.clone();
            }
        }
        if rng.f64() < self.config.loss {
            self.stats.lost += 1;
            return;
        }
        if rng.f64() < self.config.duplicate {
            self.stats.duplicated += 1;
            self.enqueue(message.clone(), now, rng);
        }
        self.enqueue(message, now, rng);
    }

    fn enqueue(&mut self, message: Message<u64>, now: u64, rng: &mut fastrand::Rng) {
        let max = self.config.max_delay.max(self.config.min_delay);
        let delay = if self.config.long_delay > 0.0 && rng.f64() < self.config.long_delay {
            self.stats.long_delayed += 1;
            rng.u64(max..=self.config.long_delay_max.max(max))
        } else {
            rng.u64(self.config.min_delay..=max)
        };
        self.seq += 1;
        self.in_flight
            .insert((now + delay.max(1), self.seq), message);
    }

    /// The next message due at or before `now` whose link is not cut.
    pub(super) fn next_due(&mut self, now: u64) -> Option<Message<u64>> {
        loop {
            let (&(at, _), _) = self.in_flight.first_key_value()?;
            if at > now {
                return None;
            }
            let (_, message) = self.in_flight.pop_first().expect("looked at above");
            if self.cut.contains(&(message.from, message.to)) {
                self.stats.cut += 1;
                continue;
            }
            self.stats.delivered += 1;
            return Some(message);
        }
    }

    pub(super) fn cut_link(&mut self, from: u64, to: u64) {
        if from != to {
            self.cut.insert((from, to));
        }
    }

    pub(super) fn heal(&mut self) {
        self.cut.clear();
    }

    pub(super) fn is_cut(&self, from: u64, to: u64) -> bool {
        self.cut.contains(&(from, to))
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}
