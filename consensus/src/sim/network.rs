//! The simulated network: per-message latency (so messages reorder),
//! loss, duplication, and partitions as a set of cut directed links (a
//! one-way partition cuts one direction only).

use std::collections::{BTreeMap, BTreeSet};

use crate::message::Message;

/// How the network misbehaves. Times are in simulation time units.
#[derive(Debug, Clone, PartialEq)]
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
        }
    }
}

/// What the network did, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered (duplicates included).
    pub delivered: u64,
    /// Lost at random.
    pub lost: u64,
    /// Dropped by a partition or because the receiver was down.
    pub cut: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
}

#[derive(Debug)]
pub(super) struct Network {
    pub(super) config: NetworkConfig,
    /// In flight, by (delivery time, sequence number).
    in_flight: BTreeMap<(u64, u64), Message<u64>>,
    seq: u64,
    cut: BTreeSet<(u64, u64)>,
    pub(super) stats: NetworkStats,
}

impl Network {
    pub(super) fn new(config: NetworkConfig) -> Self {
        Self {
            config,
            in_flight: BTreeMap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            stats: NetworkStats::default(),
        }
    }

    pub(super) fn send(&mut self, message: Message<u64>, now: u64, rng: &mut fastrand::Rng) {
        self.stats.sent += 1;
        if rng.f64() < self.config.loss {
            self.stats.lost += 1;
            return;
        }
        let copies = if rng.f64() < self.config.duplicate {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay =
                rng.u64(self.config.min_delay..=self.config.max_delay.max(self.config.min_delay));
            self.seq += 1;
            self.in_flight
                .insert((now + delay.max(1), self.seq), message.clone());
        }
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
        self.cut.insert((from, to));
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
