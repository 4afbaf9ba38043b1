//! What a node reports about itself: [`Counters`] (input it could not
//! use, snapshot transfers, quiescence) and [`Status`] (a point-in-time
//! view for monitoring and tests).

use super::{NodeId, RaftNode, Role};
use crate::entry::{Index, Term};
use crate::storage::Storage;

/// Counters for input that was ignored, for snapshot transfers and for
/// quiescence. None of these is an error of the node; they say what the
/// network or the application sent that could not be used, how often
/// snapshots were needed, and how often the group went quiet. Counters
/// only grow; read them with [`RaftNode::counters`](crate::RaftNode::counters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Counters {
    /// Messages from an older term, dropped (§5.1).
    pub stale_term: u64,
    /// Messages addressed to another node, and messages from a node
    /// outside the membership other than a leader's (appends, heartbeats,
    /// snapshot chunks) and vote requests, which are heard from anyone
    /// (this node's membership may be the stale one, thesis §4.1).
    pub unknown_sender: u64,
    /// Messages that contradict themselves or the receiver's committed log
    /// (entries that skip indexes, acknowledgements past the log's end).
    pub malformed: u64,
    /// Vote requests ignored because a leader was heard from recently
    /// (check-quorum's leader lease), and, with lease reads, `campaign`
    /// calls ignored for the same reason.
    pub lease_ignored_votes: u64,
    /// Elections this node started at once because it refused a candidate
    /// only for its lower priority ([`Config::priority`](crate::Config::priority)).
    pub priority_campaigns: u64,
    /// `on_persisted` calls for ids that were never handed out or were
    /// already acknowledged.
    pub bad_persist_acks: u64,
    /// Followers that needed entries already compacted while storage
    /// reported no snapshot to send them ([`Storage::snapshot`](crate::Storage::snapshot)); the
    /// follower then waits. Compacting only what a snapshot covers
    /// ([`RaftNode::compaction_limit`](crate::RaftNode::compaction_limit)) keeps this at 0.
    pub compacted_needed: u64,
    /// Leader: snapshot transfers started (a follower needed compacted
    /// entries).
    pub snapshot_sends_started: u64,
    /// Leader: snapshot transfers that ended with the follower installing
    /// the snapshot.
    pub snapshots_sent: u64,
    /// Leader: snapshot transfers that ended early (rejected, superseded,
    /// cancelled, or leadership lost).
    pub snapshot_sends_aborted: u64,
    /// Follower: snapshots restored and installed.
    pub snapshots_installed: u64,
    /// Follower: snapshots being staged that were dropped (superseded, or
    /// the leader changed).
    pub snapshots_aborted: u64,
    /// Snapshot chunks and answers that were out of order, duplicated or
    /// for a transfer that no longer runs.
    pub stale_snapshot_messages: u64,
    /// Inputs refused while a snapshot restore is pending (appends, other
    /// snapshots, campaigns).
    pub snapshot_busy: u64,
    /// Times this node quiesced (a leader idle for
    /// `quiesce_after_ticks`, or a follower told so by its leader).
    pub quiesces: u64,
    /// Times this node woke from quiescence.
    pub wakes: u64,
    /// Follower: quiesce orders refused (its log or commit differs from
    /// the leader's, or something is pending here); each wakes the leader.
    pub quiesce_refusals: u64,
}

/// A point-in-time view of a node's state, for monitoring and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status<N> {
    /// This node.
    pub id: N,
    /// Current term.
    pub term: Term,
    /// Vote in the current term.
    pub vote: Option<N>,
    /// Current role.
    pub role: Role,
    /// The leader it knows of.
    pub leader: Option<N>,
    /// Last log index (persisted or not).
    pub last_index: Index,
    /// Commit index.
    pub commit: Index,
    /// Index last handed out to apply.
    pub applied: Index,
    /// Highest index persisted locally.
    pub persisted: Index,
    /// First index still in the log (entries before it were compacted).
    pub first_index: Index,
    /// Index of the snapshot in storage (0: none).
    pub snapshot_index: Index,
    /// A snapshot received from the leader waits for the application to
    /// restore it ([`Output::RestoreSnapshot`](crate::Output::RestoreSnapshot)).
    pub restore_pending: bool,
    /// The node is quiesced ([`Config::quiesce_after_ticks`](crate::Config::quiesce_after_ticks)).
    pub quiesced: bool,
}

impl<S> RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    /// A summary of the node's state.
    pub fn status(&self) -> Status<S::NodeId> {
        Status {
            id: self.id.clone(),
            term: self.term,
            vote: self.vote.clone(),
            role: self.role,
            leader: self.leader.clone(),
            last_index: self.log.last_index(),
            commit: self.log.committed(),
            applied: self.log.applied(),
            persisted: self.log.persisted(),
            first_index: self.log.first_index(),
            snapshot_index: self.log.storage().snapshot().map_or(0, |s| s.index),
            restore_pending: self.restore_pending(),
            quiesced: self.is_quiesced(),
        }
    }
}
