//! Snapshots and log compaction (§7): what a snapshot is (its meta), why
//! a transfer ended, and why an application call about snapshots was
//! refused.
//!
//! The node never holds a snapshot's bytes. A leader asks the
//! application for one chunk at a time ([`Output::ReadSnapshot`](crate::Output::ReadSnapshot))
//! and sends it; a follower hands each chunk in order to the application
//! ([`Output::SnapshotChunk`](crate::Output::SnapshotChunk)), asks it to
//! restore the whole ([`Output::RestoreSnapshot`](crate::Output::RestoreSnapshot)),
//! and moves its log only once the application says the snapshot is
//! durable ([`RaftNode::on_snapshot_restored`](crate::RaftNode::on_snapshot_restored)).

use crate::entry::{Index, Term};
use crate::membership::Membership;

/// What a snapshot covers: the state machine after applying every entry
/// up to `index` (whose term is `term`), and the membership at that index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SnapshotMeta<N> {
    /// The last entry the snapshot reflects.
    pub index: Index,
    /// That entry's term (so the log after it can still be matched, §5.3).
    pub term: Term,
    /// The membership at `index`: that of the last configuration entry
    /// at or before it (thesis §4.1).
    pub membership: Membership<N>,
}

/// Why a snapshot transfer ended before the snapshot was installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum SnapshotAbortReason {
    /// A newer snapshot replaced it (on the follower: chunks of a later
    /// snapshot arrived; on the leader: the follower installed another).
    Superseded,
    /// The leader changed (a new term, or this node stopped leading).
    LeaderChanged,
    /// The follower refused it (it is restoring another snapshot).
    Rejected,
    /// The application gave it up ([`RaftNode::abort_snapshot_send`](crate::RaftNode::abort_snapshot_send)).
    Cancelled,
    /// The application reported the follower down
    /// ([`RaftNode::set_peer_liveness`](crate::RaftNode::set_peer_liveness)),
    /// so the transfer does not keep the group awake; a new one starts
    /// once the follower answers again.
    PeerDown,
}

/// Why an application call about snapshots was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A snapshot can only be taken at an index the state machine has
    /// applied. Nothing changed.
    #[error("index {index} is not applied (applied {applied})")]
    NotApplied {
        /// The index asked for.
        index: Index,
        /// The applied index.
        applied: Index,
    },
    /// The term of `index` is no longer in the log (compacted), or index
    /// is 0. Nothing changed.
    #[error("index {index} is compacted or empty (log starts at {first_index})")]
    Compacted {
        /// The index asked for.
        index: Index,
        /// The first index in the log.
        first_index: Index,
    },
    /// No snapshot transfer to that peer at that index is running on this
    /// node (it ended, or this node does not lead). Nothing changed.
    #[error("no snapshot transfer of index {index} is running")]
    NoTransfer {
        /// The snapshot index given.
        index: Index,
    },
    /// The chunk is not the one asked for ([`Output::ReadSnapshot`](crate::Output::ReadSnapshot)'s
    /// offset), or no chunk is asked for now. Nothing changed.
    #[error("chunk at offset {offset} was not asked for (expected {expected:?})")]
    UnexpectedChunk {
        /// The offset given.
        offset: u64,
        /// The offset asked for, if any.
        expected: Option<u64>,
    },
    /// The chunk is longer than the `max_len` asked for, or empty without
    /// being the last. Nothing changed.
    #[error("chunk of {len} bytes does not fit (at most {max_len}, and not empty unless last)")]
    BadChunkLength {
        /// Bytes given.
        len: u64,
        /// The most asked for.
        max_len: u64,
    },
    /// No restore of that snapshot is pending on this node. Nothing
    /// changed.
    #[error("no restore of snapshot {index} is pending")]
    NoRestorePending {
        /// The index given.
        index: Index,
    },
    /// Storage does not show the snapshot as durable yet
    /// ([`Storage::snapshot`](crate::Storage::snapshot) must report it,
    /// and the log start after it). Nothing changed: call again once it
    /// is.
    #[error("storage does not hold snapshot {index} durably yet")]
    NotDurable {
        /// The index given.
        index: Index,
    },
}
