//! What the leader knows about each follower's log: Figure 2's `nextIndex`
//! and `matchIndex`, plus flow control for pipelined replication (Raft
//! thesis §10.2.1; the Probe / Replicate states and the bounded in-flight
//! window follow etcd's design).
//!
//! A follower is *probed* (one AppendEntries at a time) until the leader
//! finds where their logs match, then *replicated* to: the leader streams
//! entries without waiting for each answer, up to a window of messages and
//! bytes in flight.

use std::collections::VecDeque;

use crate::entry::Index;

/// How the leader currently replicates to a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationState {
    /// Where the logs match is unknown: send one message, wait for its answer.
    Probe,
    /// The logs match up to `matched`: stream entries, bounded by the window.
    Replicate,
    /// The follower needs entries the leader compacted: a snapshot is
    /// being sent, and entries wait until it is installed (§7).
    Snapshot,
}

/// The AppendEntries messages sent but not yet acknowledged, bounded in
/// count and in bytes.
#[derive(Debug, Clone)]
pub struct Inflights {
    /// (last index carried, bytes carried), oldest first.
    window: VecDeque<(Index, u64)>,
    bytes: u64,
    max_count: usize,
    max_bytes: u64,
}

impl Inflights {
    /// A window of at most `max_count` messages and `max_bytes` bytes
    /// (`u64::MAX`: no byte limit).
    pub fn new(max_count: usize, max_bytes: u64) -> Self {
        Self {
            window: VecDeque::with_capacity(max_count.min(1024)),
            bytes: 0,
            max_count,
            max_bytes,
        }
    }

    /// Records a message carrying entries up to `last_index`, `bytes` long.
    pub fn add(&mut self, last_index: Index, bytes: u64) {
        self.window.push_back((last_index, bytes));
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// Frees every message whose entries are all at or below `index`
    /// (acknowledged).
    pub fn free_up_to(&mut self, index: Index) {
        while let Some(&(last, bytes)) = self.window.front() {
            if last > index {
                break;
            }
            self.window.pop_front();
            self.bytes = self.bytes.saturating_sub(bytes);
        }
    }

    /// Forgets the oldest message in flight, presumed lost.
    pub fn free_first(&mut self) {
        if let Some((_, bytes)) = self.window.pop_front() {
            self.bytes = self.bytes.saturating_sub(bytes);
        }
    }

    /// No more messages may be sent until some are acknowledged.
    pub fn is_full(&self) -> bool {
        self.window.len() >= self.max_count || self.bytes >= self.max_bytes
    }

    /// Messages in flight.
    pub fn count(&self) -> usize {
        self.window.len()
    }

    /// Bytes in flight.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn reset(&mut self) {
        self.window.clear();
        self.bytes = 0;
    }
}

/// The leader's view of one follower's log.
#[derive(Debug, Clone)]
pub struct Progress {
    matched: Index,
    next: Index,
    state: ReplicationState,
    /// In Probe: a probe is out and unanswered.
    probe_sent: bool,
    /// In Snapshot: the index of the snapshot being sent.
    pending_snapshot: Index,
    inflights: Inflights,
}

impl Progress {
    /// A follower about which nothing is known yet: probing from `next`
    /// (a new leader uses its last index + 1, Figure 2).
    pub fn new(next: Index, max_inflight_msgs: usize, max_inflight_bytes: u64) -> Self {
        Self {
            matched: 0,
            next,
            state: ReplicationState::Probe,
            probe_sent: false,
            pending_snapshot: 0,
            inflights: Inflights::new(max_inflight_msgs, max_inflight_bytes),
        }
    }

    /// Highest index known replicated on the follower (`matchIndex`).
    pub fn matched(&self) -> Index {
        self.matched
    }

    /// Next index to send (`nextIndex`).
    pub fn next(&self) -> Index {
        self.next
    }

    /// Probe, Replicate or Snapshot.
    pub fn state(&self) -> ReplicationState {
        self.state
    }

    /// In Snapshot: the index of the snapshot being sent (0 otherwise).
    pub fn pending_snapshot(&self) -> Index {
        self.pending_snapshot
    }

    /// The in-flight window.
    pub fn inflights(&self) -> &Inflights {
        &self.inflights
    }

    /// Back to probing, from just after what is known to match.
    pub fn become_probe(&mut self) {
        self.state = ReplicationState::Probe;
        self.next = self.matched.saturating_add(1);
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.inflights.reset();
    }

    /// The follower needs compacted entries: send snapshot `index`, and
    /// pause entries until it is installed (or the transfer ends).
    pub fn become_snapshot(&mut self, index: Index) {
        self.state = ReplicationState::Snapshot;
        self.probe_sent = false;
        self.pending_snapshot = index;
        self.inflights.reset();
    }

    /// Start streaming: the logs match up to `matched`.
    pub fn become_replicate(&mut self) {
        self.state = ReplicationState::Replicate;
        self.next = self.matched.saturating_add(1);
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.inflights.reset();
    }

    /// Whether the leader must hold off sending entries: a probe is out,
    /// the window is full, or a snapshot is pending. Heartbeats are sent
    /// regardless.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ReplicationState::Probe => self.probe_sent,
            ReplicationState::Replicate => self.inflights.is_full(),
            ReplicationState::Snapshot => true,
        }
    }

    /// The follower answered a heartbeat: it is reachable, so what may have
    /// been lost can be sent again. In Probe, the probe is resent; in
    /// Replicate with a full window, one slot is freed, so a window whose
    /// acknowledgements were lost cannot stall replication for good (as
    /// etcd does).
    pub fn on_heartbeat_response(&mut self) {
        match self.state {
            ReplicationState::Probe => self.probe_sent = false,
            ReplicationState::Replicate => {
                if self.inflights.is_full() {
                    self.inflights.free_first();
                }
            }
            ReplicationState::Snapshot => {}
        }
    }

    /// Records an AppendEntries just sent carrying entries up to
    /// `last_index` (`None`: no entries), `bytes` long.
    pub fn sent(&mut self, last_index: Option<Index>, bytes: u64) {
        match self.state {
            ReplicationState::Replicate => {
                if let Some(last) = last_index {
                    self.next = last.saturating_add(1);
                    self.inflights.add(last, bytes);
                }
            }
            ReplicationState::Probe => self.probe_sent = true,
            ReplicationState::Snapshot => {}
        }
    }

    /// The follower acknowledged entries up to `acked`. Returns whether
    /// `matched` advanced (a stale or duplicated ack changes nothing but
    /// the window).
    pub fn on_ack(&mut self, acked: Index) -> bool {
        let advanced = acked > self.matched;
        if advanced {
            self.matched = acked;
            self.probe_sent = false;
        }
        self.next = self.next.max(acked.saturating_add(1));
        self.inflights.free_up_to(acked);
        advanced
    }

    /// The follower refused an AppendEntries whose previous entry was
    /// `rejected`, hinting that its log matches at most up to `hint` (§5.3
    /// fast back-off). Returns false for a stale rejection (one answering an
    /// older message), which must change nothing.
    ///
    /// In Replicate, a fresh rejection means the logs diverged after
    /// `matched`: the caller goes back to Probe. In Probe, `next` jumps to
    /// just after the hint, never below what already matches.
    pub fn on_reject(&mut self, rejected: Index, hint: Index) -> bool {
        match self.state {
            // Entries are paused: any rejection answers an older append.
            ReplicationState::Snapshot => false,
            ReplicationState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                self.next = self.matched.saturating_add(1);
                true
            }
            ReplicationState::Probe => {
                if self.next.checked_sub(1) != Some(rejected) {
                    return false;
                }
                self.next = rejected
                    .min(hint.saturating_add(1))
                    .max(self.matched.saturating_add(1));
                self.probe_sent = false;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicating(matched: Index, next: Index) -> Progress {
        let mut p = Progress::new(next, 4, u64::MAX);
        p.matched = matched;
        p.state = ReplicationState::Replicate;
        p.next = next;
        p
    }

    fn probing(matched: Index, next: Index) -> Progress {
        let mut p = Progress::new(next, 4, u64::MAX);
        p.matched = matched;
        p.next = next;
        p
    }

    #[test]
    fn reject_table() {
        // (state, matched, next, rejected, hint) -> (accepted, next after)
        let cases = [
            // Replicate: a rejection at or below matched is stale.
            (ReplicationState::Replicate, 5, 10, 5, 5, (false, 10)),
            (ReplicationState::Replicate, 5, 10, 4, 4, (false, 10)),
            // Fresh: back to just after matched, hint unused.
            (ReplicationState::Replicate, 5, 10, 9, 9, (true, 6)),
            // Probe: only the answer to the outstanding probe (next - 1) counts.
            (ReplicationState::Probe, 0, 10, 5, 5, (false, 10)),
            (ReplicationState::Probe, 0, 10, 9, 3, (true, 4)),
            // The hint never takes next past the rejected index...
            (ReplicationState::Probe, 0, 10, 9, 20, (true, 9)),
            // ...nor below matched + 1.
            (ReplicationState::Probe, 4, 10, 9, 1, (true, 5)),
            (ReplicationState::Probe, 0, 1, 0, 0, (true, 1)),
        ];
        for (state, matched, next, rejected, hint, (accepted, next_after)) in cases {
            let mut p = match state {
                ReplicationState::Replicate => replicating(matched, next),
                _ => probing(matched, next),
            };
            assert_eq!(
                p.on_reject(rejected, hint),
                accepted,
                "{state:?} m{matched} n{next} rej{rejected} hint{hint}"
            );
            assert_eq!(
                p.next(),
                next_after,
                "{state:?} m{matched} n{next} rej{rejected} hint{hint}"
            );
        }
    }

    #[test]
    fn ack_advances_match_and_next_but_never_back() {
        let mut p = probing(3, 5);
        assert!(p.on_ack(7));
        assert_eq!((p.matched(), p.next()), (7, 8));
        assert!(!p.on_ack(6), "stale ack");
        assert_eq!((p.matched(), p.next()), (7, 8));
        assert!(!p.on_ack(7), "duplicate ack");
    }

    #[test]
    fn probe_sends_one_message_at_a_time() {
        let mut p = probing(0, 5);
        assert!(!p.is_paused());
        p.sent(Some(9), 100);
        assert!(p.is_paused(), "probe out, unanswered");
        assert_eq!(p.next(), 5, "probing does not move next optimistically");
        assert!(p.on_reject(4, 2));
        assert!(!p.is_paused());
        p.sent(Some(9), 100);
        assert!(p.on_ack(9));
        assert!(!p.is_paused());
    }

    #[test]
    fn replicate_pipelines_up_to_the_message_window() {
        let mut p = replicating(10, 11);
        for last in [12, 14, 16, 18] {
            assert!(!p.is_paused());
            p.sent(Some(last), 10);
        }
        assert_eq!(p.next(), 19, "next moves optimistically while streaming");
        assert!(p.is_paused(), "4 messages in flight: window full");
        p.on_ack(14);
        assert_eq!(p.inflights().count(), 2);
        assert!(!p.is_paused());
    }

    #[test]
    fn replicate_pipelines_up_to_the_byte_window() {
        let mut p = Progress::new(1, 100, 1000);
        p.become_replicate();
        p.sent(Some(1), 600);
        assert!(!p.is_paused());
        p.sent(Some(2), 600);
        assert!(
            p.is_paused(),
            "1200 bytes in flight over a 1000-byte window"
        );
        assert_eq!(p.inflights().bytes(), 1200);
        p.on_ack(1);
        assert_eq!(p.inflights().bytes(), 600);
        assert!(!p.is_paused());
    }

    /// A hostile follower's answers near u64::MAX cannot make the leader's
    /// bookkeeping overflow (the node also checks acks against its log).
    #[test]
    fn extreme_answers_do_not_overflow() {
        let mut p = probing(0, 5);
        p.on_ack(u64::MAX);
        assert_eq!((p.matched(), p.next()), (u64::MAX, u64::MAX));
        p.become_probe();
        p.become_replicate();
        p.sent(Some(u64::MAX), u64::MAX);
        p.sent(Some(u64::MAX), u64::MAX);
        p.on_ack(u64::MAX);
        assert_eq!(p.inflights().bytes(), 0);
        let mut q = probing(0, u64::MAX);
        assert!(q.on_reject(u64::MAX - 1, u64::MAX));
    }

    #[test]
    fn snapshot_state_pauses_entries_until_probed_again() {
        let mut p = replicating(3, 9);
        p.sent(Some(12), 10);
        p.become_snapshot(20);
        assert!(p.is_paused(), "entries wait for the snapshot");
        assert_eq!((p.pending_snapshot(), p.inflights().count()), (20, 0));
        assert!(
            !p.on_reject(12, 3),
            "a rejection is stale while sending a snapshot"
        );
        p.on_heartbeat_response();
        assert!(p.is_paused(), "a heartbeat answer does not resume entries");
        p.on_ack(20);
        p.become_probe();
        assert_eq!(
            (p.next(), p.pending_snapshot(), p.is_paused()),
            (21, 0, false)
        );
    }

    #[test]
    fn switching_state_restarts_from_the_match() {
        let mut p = replicating(7, 20);
        p.sent(Some(25), 10);
        p.become_probe();
        assert_eq!(
            (p.next(), p.inflights().count(), p.is_paused()),
            (8, 0, false)
        );
        p.on_ack(9);
        p.become_replicate();
        assert_eq!((p.next(), p.state()), (10, ReplicationState::Replicate));
    }
}
