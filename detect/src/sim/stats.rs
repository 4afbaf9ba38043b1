//! What the simulator records and counts: membership events, traffic, per-node
//! counters, and the latency figures derived from them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Sim, SimEventKind, SimNode};
use crate::State;

/// One recorded membership event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipEvent {
    /// Virtual time since the simulation's base instant.
    pub at: Duration,
    /// The node that reported it.
    pub observer: usize,
    /// The node it is about.
    pub subject: usize,
    /// What was reported.
    pub kind: SimEventKind,
}

/// Packet and byte counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Traffic {
    /// Packets.
    pub packets: u64,
    /// Payload bytes.
    pub bytes: u64,
}

impl Traffic {
    pub(super) fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }

    /// `self - earlier`, saturating: the traffic between two snapshots.
    pub fn since(self, earlier: Traffic) -> Traffic {
        Traffic {
            packets: self.packets.saturating_sub(earlier.packets),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

/// Per-node counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    /// Packets the node sent (whether or not they arrived).
    pub sent: Traffic,
    /// Packets the node handled.
    pub received: Traffic,
    /// Packets from this node the network dropped (loss, partition, dead or unknown
    /// destination).
    pub dropped: u64,
    /// Packets the node handled and rejected ([`SimNode::handle_packet`] returned false).
    pub rejected: u64,
}

/// Delays measured per observer, plus how many observers never got there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latencies {
    /// One delay per observer that reached the condition.
    pub samples: Vec<Duration>,
    /// Observers that did not reach it within the run.
    pub missing: usize,
}

impl Latencies {
    /// Appends another measurement's samples and missing count.
    pub fn merge(&mut self, other: &Latencies) {
        self.samples.extend_from_slice(&other.samples);
        self.missing += other.missing;
    }

    /// The largest sample, if every observer got there (`None` if some are missing
    /// or there are no samples): "the time until everyone".
    pub fn all(&self) -> Option<Duration> {
        if self.missing > 0 {
            None
        } else {
            self.samples.iter().max().copied()
        }
    }

    /// Mean, median, p99 (nearest rank) and maximum of the samples, `None` if empty.
    pub fn summary(&self) -> Option<Summary> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let rank = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        let total: Duration = sorted.iter().sum();
        Some(Summary {
            count: n,
            mean: total / n as u32,
            p50: rank(0.50),
            p99: rank(0.99),
            max: sorted[n - 1],
        })
    }
}

/// Summary statistics of a [`Latencies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: Duration,
    /// Median (nearest rank).
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
}

/// Queries over the record and the counters.
impl<N: SimNode> Sim<N> {
    /// Node `i`'s counters.
    pub fn stats(&self, i: usize) -> &NodeStats {
        &self.slots[i].stats
    }

    /// Traffic sent by all nodes so far.
    pub fn traffic(&self) -> Traffic {
        let mut total = Traffic::default();
        for slot in &self.slots {
            total.packets += slot.stats.sent.packets;
            total.bytes += slot.stats.sent.bytes;
        }
        total
    }

    /// Every membership event so far, in time order.
    pub fn events(&self) -> &[MembershipEvent] {
        &self.events
    }

    /// The events with `from <= at < to`.
    pub fn events_between(&self, from: Duration, to: Duration) -> &[MembershipEvent] {
        let start = self.events.partition_point(|e| e.at < from);
        let end = self.events.partition_point(|e| e.at < to);
        &self.events[start..end.max(start)]
    }

    /// The latest event `observer` reported about `subject`.
    pub fn view(&self, observer: usize, subject: usize) -> Option<SimEventKind> {
        self.views
            .get(observer)
            .and_then(|v| v.get(subject))
            .copied()
            .flatten()
    }

    /// Whether `observer`'s latest event about `subject` makes it a live member.
    pub fn sees_live(&self, observer: usize, subject: usize) -> bool {
        self.view(observer, subject)
            .is_some_and(SimEventKind::is_live)
    }

    /// Whether every live node's events say every other live node is a member
    /// ([`SimEventKind::is_live`]). `O(n²)`.
    pub fn views_converged(&self) -> bool {
        let live = self.live_nodes();
        live.iter()
            .all(|&o| live.iter().all(|&s| o == s || self.sees_live(o, s)))
    }

    /// Whether every live node's [`SimNode::state_of`] says every other live node is
    /// [`State::Alive`]: stricter than [`views_converged`](Sim::views_converged) (no
    /// lingering suspicion) and independent of the event stream. `O(n²)` queries.
    pub fn states_converged(&self) -> bool {
        let live = self.live_nodes();
        live.iter().all(|&o| {
            live.iter()
                .all(|&s| o == s || self.slots[o].node.state_of(s) == Some(State::Alive))
        })
    }

    /// Pairs `(observer, subject)` of live nodes where the observer does not hold the
    /// subject `Alive` (for failure messages), at most `limit` of them.
    pub fn unconverged_pairs(&self, limit: usize) -> Vec<(usize, usize, Option<State>)> {
        let live = self.live_nodes();
        let mut out = Vec::new();
        for &o in &live {
            for &s in &live {
                if o != s {
                    let state = self.slots[o].node.state_of(s);
                    if state != Some(State::Alive) {
                        out.push((o, s, state));
                        if out.len() >= limit {
                            return out;
                        }
                    }
                }
            }
        }
        out
    }

    /// For each of `observers`, the delay from `since` to its first event about
    /// `subject` whose kind is in `kinds`; observers without one count as missing.
    pub fn first_events(
        &self,
        subject: usize,
        since: Duration,
        kinds: &[SimEventKind],
        observers: &[usize],
    ) -> Latencies {
        let mut first: BTreeMap<usize, Option<Duration>> =
            observers.iter().map(|&o| (o, None)).collect();
        let mut pending = first.len();
        for e in self.events_between(since, Duration::MAX) {
            if pending == 0 {
                break;
            }
            if e.subject != subject || !kinds.contains(&e.kind) {
                continue;
            }
            if let Some(slot @ None) = first.get_mut(&e.observer) {
                *slot = Some(e.at - since);
                pending -= 1;
            }
        }
        let mut out = Latencies::default();
        for v in first.into_values() {
            match v {
                Some(d) => out.samples.push(d),
                None => out.missing += 1,
            }
        }
        out
    }

    pub(super) fn record(&mut self, observer: usize, subject: usize, kind: SimEventKind) {
        self.events.push(MembershipEvent {
            at: self.now,
            observer,
            subject,
            kind,
        });
        if self.views.len() <= observer {
            self.views.resize_with(observer + 1, Vec::new);
        }
        let view = &mut self.views[observer];
        if view.len() <= subject {
            view.resize(subject + 1, None);
        }
        view[subject] = Some(kind);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Latencies;

    #[test]
    fn summary_uses_nearest_rank() {
        let l = Latencies {
            samples: (1..=100).map(Duration::from_millis).collect(),
            missing: 0,
        };
        let s = l.summary().unwrap();
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(l.all(), Some(Duration::from_millis(100)));
    }
}
