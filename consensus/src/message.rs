//! Raft's messages (Figure 2's RPCs plus the thesis extensions), as plain
//! Rust types. Encoding them is the transport's business: enable the
//! `serde` feature for `Serialize`/`Deserialize`.

use bytes::Bytes;

use crate::entry::{Entry, Index, Term};
use crate::snapshot::SnapshotMeta;

/// A message from one node to another. Every message carries the sender's
/// term (§5.1): a receiver with a higher term ignores or refutes it, a
/// receiver with a lower term adopts it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Message<N> {
    /// Sender.
    pub from: N,
    /// Receiver.
    pub to: N,
    /// The sender's term (for a pre-vote request: the term it would
    /// campaign in).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody<N>,
}

/// The kinds of Raft message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum MessageBody<N> {
    /// RequestVote (§5.2), or a pre-vote (thesis §9.6) that changes no
    /// term on the receiver.
    VoteRequest {
        /// A pre-vote: "would you vote for me?".
        pre_vote: bool,
        /// Index of the candidate's last entry (§5.4.1).
        last_index: Index,
        /// Term of the candidate's last entry.
        last_term: Term,
        /// Sent on the current leader's request (thesis §3.10): voters
        /// disregard their leader lease for it.
        leadership_transfer: bool,
        /// The candidate's [`Config::priority`](crate::Config::priority).
        priority: u64,
    },
    /// The answer to a [`VoteRequest`](MessageBody::VoteRequest).
    VoteResponse {
        /// Answers a pre-vote.
        pre_vote: bool,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// AppendEntries (§5.3): entries following (`prev_index`,
    /// `prev_term`), and the leader's commit index.
    Append {
        /// Index of the entry just before `entries`.
        prev_index: Index,
        /// Its term.
        prev_term: Term,
        /// The entries; empty for a pure commit update.
        entries: Vec<Entry<N>>,
        /// The leader's commit index.
        commit: Index,
    },
    /// The answer to an [`Append`](MessageBody::Append).
    AppendResponse(AppendOutcome),
    /// The leader's heartbeat: keeps followers from starting elections and
    /// confirms leadership for reads (thesis §6.4).
    Heartbeat {
        /// The commit index, capped at what the follower is known to hold.
        commit: Index,
        /// The read round this heartbeat confirms (0: none).
        read_round: u64,
    },
    /// The answer to a [`Heartbeat`](MessageBody::Heartbeat).
    HeartbeatResponse {
        /// The read round being acknowledged.
        read_round: u64,
    },
    /// Leadership transfer (thesis §3.10): "start an election now".
    TimeoutNow,
    /// A follower forwards a client's linearizable read to the leader.
    ReadIndexRequest {
        /// The client's request id, echoed in the response.
        id: u64,
    },
    /// The leader's answer: the read index, or `None` if it could not
    /// serve the read (it is no longer leader).
    ReadIndexResponse {
        /// The request id.
        id: u64,
        /// The index the read must wait for locally.
        index: Option<Index>,
    },
    /// InstallSnapshot (§7): one chunk of the leader's snapshot, the bytes
    /// at `offset..offset + data.len()`.
    InstallSnapshot {
        /// The snapshot.
        meta: SnapshotMeta<N>,
        /// Where `data` starts in the snapshot.
        offset: u64,
        /// The chunk.
        data: Bytes,
        /// This is the snapshot's last chunk.
        last: bool,
    },
    /// Quiescence: the leader has nothing to do and stops heartbeating.
    /// A follower whose log is exactly the leader's (same last index and
    /// term) and commits all of it stops its election timer too, without
    /// answering; otherwise it answers with a
    /// [`HeartbeatResponse`](MessageBody::HeartbeatResponse), which wakes
    /// the leader.
    Quiesce {
        /// The leader's commit index (equal to `last_index`).
        commit: Index,
        /// The leader's last index.
        last_index: Index,
        /// The term of the entry at `last_index`.
        last_term: Term,
    },
    /// The answer to an [`InstallSnapshot`](MessageBody::InstallSnapshot).
    SnapshotResponse {
        /// The snapshot's index.
        index: Index,
        /// What the follower did.
        outcome: SnapshotOutcome,
    },
}

/// How a follower answered an InstallSnapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum SnapshotOutcome {
    /// It holds the bytes before `offset` and wants the chunk there next
    /// (0 after a restart: the transfer starts over).
    Next {
        /// The next offset expected.
        offset: u64,
    },
    /// The snapshot is installed and durable (or the follower's log
    /// already held everything it covers): its log matches the leader's
    /// up to the snapshot's index.
    Installed,
    /// It will not take this snapshot (restoring another, or not one of
    /// the snapshot's voters).
    Rejected,
}

/// How a follower answered an AppendEntries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to `last_index`.
    Accepted {
        /// Last index known to match.
        last_index: Index,
    },
    /// The consistency check failed at `rejected` (the message's
    /// `prev_index`). The hint is the follower's last entry at or below
    /// `rejected` whose term is at most the leader's `prev_term` (§5.3,
    /// fast back-off).
    Rejected {
        /// The `prev_index` that failed.
        rejected: Index,
        /// Hinted index.
        hint_index: Index,
        /// Term of the entry at `hint_index` on the follower.
        hint_term: Term,
    },
}

impl<N> MessageBody<N> {
    /// Whether only a leader sends this kind (an append, a heartbeat or a
    /// transfer order): receiving one names the sender leader.
    pub fn is_from_leader(&self) -> bool {
        matches!(
            self,
            Self::Append { .. }
                | Self::Heartbeat { .. }
                | Self::TimeoutNow
                | Self::InstallSnapshot { .. }
                | Self::Quiesce { .. }
        )
    }

    /// The payload bytes carried (entries' [`Entry::size`], or a snapshot
    /// chunk's length), for accounting.
    pub fn size(&self) -> u64 {
        match self {
            Self::Append { entries, .. } => entries.iter().map(Entry::size).sum(),
            Self::InstallSnapshot { data, .. } => data.len() as u64,
            _ => 0,
        }
    }
}
