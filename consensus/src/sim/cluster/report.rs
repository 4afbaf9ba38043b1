//! What a run of the simulation reports: the first safety property that
//! failed, leadership changes, and counters of what was done to the nodes.

use std::fmt;

use crate::entry::{Index, Term};
use crate::storage::Storage;

/// A safety property that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// Simulation time.
    pub time: u64,
    /// Which property (Raft Figure 3's names, "linearizability", or one
    /// of the persistence contract's: "vote durability", "append
    /// durability", "commit durability", "apply durability", "restart").
    pub property: &'static str,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated at t={}: {}",
            self.property, self.time, self.detail
        )
    }
}

impl std::error::Error for Violation {}

/// Something that happened, for narrating a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEvent {
    /// A node became leader.
    Elected {
        /// Simulation time.
        time: u64,
        /// The node.
        node: u64,
        /// Its term.
        term: Term,
        /// Its last log index on taking office (its no-op).
        last_index: Index,
    },
    /// A leader stopped leading.
    SteppedDown {
        /// Simulation time.
        time: u64,
        /// The node.
        node: u64,
        /// The term it led.
        term: Term,
    },
}

/// What the simulation did to the nodes, for reports and for tests that
/// assert a sweep exercised what it claims to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Crashes, mid-drain ones included.
    pub crashes: u64,
    /// Crashes between two outputs of one drain.
    pub mid_drain_crashes: u64,
    /// Restarts of crashed nodes.
    pub restarts: u64,
    /// Restarts whose state machine had recorded an applied index above 0.
    pub restarts_with_applied: u64,
    /// Batches not yet durable at a crash that were lost.
    pub writes_lost: u64,
    /// Batches not yet durable at a crash that landed whole anyway.
    pub writes_kept: u64,
    /// Batches torn at a crash.
    pub writes_torn: u64,
    /// Hard states changing only the commit index that landed at a crash
    /// ahead of the entries of earlier batches still in the air.
    pub commits_landed_early: u64,
    /// Acknowledgements covering more than one batch.
    pub multi_batch_acks: u64,
    /// State-machine snapshots recorded.
    pub snapshots: u64,
    /// Raft snapshots taken (each followed by compaction to
    /// `compaction_limit()`).
    pub raft_snapshots: u64,
    /// Entries compacted away, over all nodes.
    pub entries_compacted: u64,
    /// Snapshot chunks read for a transfer.
    pub snapshot_chunks_sent: u64,
    /// Snapshots installed on followers (restored, durable, log moved).
    pub snapshots_installed: u64,
    /// Transfers that ended early, on the leader's side.
    pub snapshot_sends_aborted: u64,
    /// Snapshots being staged that a follower dropped.
    pub snapshots_aborted: u64,
    /// Puts that completed.
    pub writes_completed: u64,
    /// Gets that completed.
    pub reads_completed: u64,
    /// Proposals known lost: another term was applied at their index.
    pub proposals_lost: u64,
    /// Reads that ended with `ReadFailed`.
    pub reads_failed: u64,
    /// Ticks during which an up node believed it led a term older than
    /// the newest leader's (a deposed leader that does not know it yet:
    /// the exposure of lease reads).
    pub stale_leader_ticks: u64,
    /// Joint configurations committed (Raft §6).
    pub joint_entered: u64,
    /// Committed configurations that left a joint one.
    pub joint_left: u64,
}

impl super::Simulation {
    /// One line per node: role, term, log positions, held messages.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match &node.raft {
                Some(raft) => {
                    let s = raft.status();
                    out.push_str(&format!(
                        "\n  node {}: {:?} priority {} term {} leader {:?} last {} commit {} applied {} persisted {} held {} writing {} (durable {}, acknowledged {}); disk {:?} last {}",
                        node.id, s.role, self.config.priorities.get(Self::slot(node.id)).copied().unwrap_or(0), s.term, s.leader, s.last_index, s.commit, s.applied,
                        s.persisted, raft.held_messages(), node.disk.writing.len(),
                        node.disk.durable_id, node.disk.acked_id,
                        node.disk.durable.hard_state(), node.disk.durable.last_index()
                    ));
                    out.push_str(&format!(
                        "; voters {:?} outgoing {:?} learners {:?} next {:?} auto-leave {}; log from {}, snapshot {:?}, restore pending {} (sim: {:?}, staged {} bytes); quiesced {}; counters {:?}",
                        raft.membership().voters(),
                        raft.membership().outgoing_voters(),
                        raft.membership().learners(),
                        raft.membership().learners_next(),
                        raft.membership().auto_leave(),
                        raft.log().first_index(),
                        raft.storage().snapshot().map(|m| m.index),
                        raft.restore_pending(),
                        node.restore.as_ref().map(|(m, at)| (m.index, *at)),
                        node.staging.len(),
                        raft.is_quiesced(),
                        raft.counters()
                    ));
                    for peer in raft.membership().members() {
                        if let Some(p) = raft.progress(peer) {
                            out.push_str(&format!(
                                "\n    -> {peer}: {:?} match {} next {} inflight {} paused {} snapshot {}",
                                p.state(),
                                p.matched(),
                                p.next(),
                                p.inflights().count(),
                                p.is_paused(),
                                p.pending_snapshot()
                            ));
                        }
                    }
                }
                None => out.push_str(&format!(
                    "\n  node {}: down; disk {:?} last {}",
                    node.id,
                    node.disk.durable.hard_state(),
                    node.disk.durable.last_index()
                )),
            }
        }
        out
    }
}
