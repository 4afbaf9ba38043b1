//! What a replicated-log node hands back, and the interface Raft (and the
//! Multi-Paxos to come) present to the application.
//!
//! The draining order and the persistence contract are documented on
//! [`ReplicatedLog`], the public face of this module.

use bytes::Bytes;

use crate::entry::{Entry, Index, Term};
use crate::snapshot::{SnapshotAbortReason, SnapshotMeta};

/// Identifies one [`Persist`] batch; ids increase by one from 1.
pub type PersistId = u64;

/// Names a proposal: the leader's term when it was appended, and its index
/// (openraft's `LogId`). See [tracking proposals](ReplicatedLog#tracking-proposals-and-reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ProposalId {
    /// The term of the leader that appended it (the entry's term).
    pub term: Term,
    /// The log index it was appended at.
    pub index: Index,
}

impl ProposalId {
    /// What an applied `entry` says of this proposal: `None` if it is
    /// another index, `Some(true)` if it is this proposal (committed),
    /// `Some(false)` if another entry committed at its index (the proposal
    /// was lost and will never commit).
    #[must_use]
    pub fn outcome<N>(&self, entry: &Entry<N>) -> Option<bool> {
        (entry.index == self.index).then_some(entry.term == self.term)
    }
}

/// A batch of state the application must make durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persist<H, N> {
    /// Acknowledge with `on_persisted(id)` once durable.
    pub id: PersistId,
    /// The new hard state, when it changed. Make it durable no earlier
    /// than `entries`, or atomically with them. Its commit index covers
    /// only entries acknowledged durable before this batch.
    pub hard_state: Option<H>,
    /// Entries to append; an entry at an index already stored replaces it
    /// and everything after it (§5.3).
    pub entries: Vec<Entry<N>>,
}

/// A linearizable read that may now be served (thesis §6.4): once the
/// application's state machine has applied `index`, reading it returns a
/// result no older than the moment the read was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    /// The id given to `read_index`.
    pub id: u64,
    /// The index the state machine must have applied before reading.
    pub index: Index,
}

/// One thing the application must do.
///
/// `M` is the protocol's message, `H` its hard state and `N` its node id.
/// The snapshot outputs are described in
/// [the snapshot contract](ReplicatedLog#snapshots-and-compaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<M, H, N> {
    /// Make this state durable, then acknowledge it.
    Persist(Persist<H, N>),
    /// Send this message to its destination.
    Send(M),
    /// Apply these committed entries, in order. An entry with empty data is
    /// a new leader's no-op (§8) and carries no command.
    Apply(Vec<Entry<N>>),
    /// A read may be served once its index is applied.
    ReadReady(ReadState),
    /// A read could not be confirmed or served (leadership changed, no
    /// leader is known, or a forwarded read was not served within two
    /// election timeouts); the client should retry with a new id.
    ReadFailed {
        /// The id given to `read_index`.
        id: u64,
    },
    /// Leader: read up to `max_len` bytes of snapshot `index` at `offset`
    /// (the snapshot [`Storage::snapshot`](crate::Storage::snapshot)
    /// reported when the transfer to `to` began) and hand them to
    /// [`RaftNode::snapshot_chunk`](crate::RaftNode::snapshot_chunk). Keep
    /// that snapshot readable until [`Output::SnapshotSendEnded`] for it.
    ReadSnapshot {
        /// The follower it is for.
        to: N,
        /// The snapshot's index.
        index: Index,
        /// Where to read.
        offset: u64,
        /// The most bytes to hand back (fewer only for the last chunk).
        max_len: u64,
    },
    /// Leader: the transfer of snapshot `index` to `to` ended; release
    /// what reading it holds. `aborted` is `None` when the follower
    /// installed it.
    SnapshotSendEnded {
        /// The follower.
        to: N,
        /// The snapshot's index.
        index: Index,
        /// Why it ended early, if it did.
        aborted: Option<SnapshotAbortReason>,
    },
    /// Follower: write these bytes of snapshot `index` at `offset` to a
    /// staging area (chunks come in order, from offset 0; a chunk at
    /// offset 0 starts the staging over, even of the same snapshot).
    /// Staging need not survive a crash.
    SnapshotChunk {
        /// The snapshot's index.
        index: Index,
        /// Where the bytes go.
        offset: u64,
        /// The bytes.
        data: Bytes,
        /// The snapshot is complete with this chunk.
        last: bool,
    },
    /// Follower: every chunk is staged. Restore the state machine from the
    /// staged snapshot, make it durable with this meta (for
    /// [`MemStorage`](crate::MemStorage): `apply_snapshot`), then call
    /// [`RaftNode::on_snapshot_restored`](crate::RaftNode::on_snapshot_restored).
    RestoreSnapshot(SnapshotMeta<N>),
    /// Follower: the staged snapshot `index` will not be completed; drop
    /// it.
    SnapshotAborted {
        /// The snapshot's index.
        index: Index,
        /// Why.
        reason: SnapshotAbortReason,
    },
}

/// Why a proposal was refused. Nothing was appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError<N> {
    /// Only the leader accepts proposals; `leader` is this node's best
    /// knowledge of who is. Nothing changed.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<N>,
    },
    /// The payload exceeds `max_proposal_size`. Nothing changed.
    #[error("proposal of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Payload size.
        size: u64,
        /// The configured limit.
        max: u64,
    },
    /// The leader already holds `max_uncommitted_size` bytes of uncommitted
    /// entries; retry once some commit. Nothing changed.
    #[error("{uncommitted} bytes are uncommitted; the limit is {max}")]
    UncommittedFull {
        /// Bytes uncommitted now.
        uncommitted: u64,
        /// The configured limit.
        max: u64,
    },
    /// Leadership is being transferred (thesis §3.10); proposals resume on
    /// the new leader. Nothing changed.
    #[error("leadership transfer in progress")]
    TransferInProgress,
}

/// Why a read request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No leader is known to confirm the read with. Nothing changed.
    #[error("no leader known")]
    NoLeader,
    /// Read ids must increase on each node (see
    /// [`ReplicatedLog::read_index`]); `id` is not above `last`, the
    /// largest this node has accepted. Nothing changed.
    #[error("read id {id} is not above the last one used, {last}")]
    IdNotIncreasing {
        /// The id given.
        id: u64,
        /// The largest id accepted so far.
        last: u64,
    },
}

/// A replicated log driven from outside (sans-IO): commands and messages
/// in, outputs drained. Raft implements it; Multi-Paxos will too, so an
/// application written against this trait can switch protocols.
///
/// # Draining
///
/// After every input (`tick`, `handle_message`, `propose`, `read_index`,
/// `on_persisted`, ...) call [`poll_output`](Self::poll_output) until it
/// returns `None`. Outputs come out in the order they must be acted on.
///
/// # The persistence contract
///
/// Each [`Output::Persist`] carries an id, entries and (when it changed) a
/// hard state. The application:
/// - MUST write the batches in the order they come out. Within one batch
///   it MUST make the entries durable no later than the hard state (write
///   the entries, then the hard state, as etcd and raft-rs require), or
///   write both atomically. An entry at an index already stored replaces
///   it and everything after it (§5.3). One exception: a hard state that
///   differs from the one handed out before it only in `commit` MAY become
///   durable before the entries of its batch and of every earlier batch
///   not yet acknowledged (fsynced beside them rather than after them):
///   the commit index a batch carries covers only entries acknowledged
///   before the batch was handed out (below), so it needs no order with
///   entries not yet acknowledged. It MUST still be durable before its
///   batch is acknowledged.
/// - MUST call [`on_persisted`](Self::on_persisted)`(id)` only once batch `id`
///   *and every batch before it* is durable (fsynced). One call may cover
///   several batches; it may come late. Writes may run in the background
///   while the node keeps working (asynchronous persistence).
/// - MUST make what it acknowledged readable through [`Storage`](crate::Storage)
///   before calling `on_persisted` (for [`MemStorage`](crate::MemStorage):
///   `set_hard_state` and `append` on `storage_mut()`).
/// - MUST NOT expect a message that depends on unpersisted state (a vote,
///   an acknowledgement of entries) to come out before that
///   acknowledgement: the node holds such messages back and releases them
///   from `poll_output` after `on_persisted`.
/// - MUST apply [`Output::Apply`] entries to its state machine in order,
///   and MAY record the last applied index durably with its state machine
///   (then restart with [`Config::applied`](crate::Config::applied) set to
///   it).
/// - MAY send [`Output::Send`] messages in any order, drop or duplicate
///   them: Raft tolerates an unreliable network.
///
/// ## What a crash may leave, and what restart requires
///
/// A crash MAY lose any batch not yet acknowledged, keep an in-order
/// prefix of them, and tear the last one kept (a prefix of its entries,
/// with or without its hard state). The node stays safe under all of these
/// because:
/// - every message that depends on a batch waits for its acknowledgement,
///   so nothing lost was ever promised to a peer;
/// - the commit index in a batch's hard state never covers entries of the
///   same or a later batch: only entries acknowledged durable before the
///   batch was handed out. A torn or reordered batch can therefore never
///   make stale entries look committed on restart;
/// - [`Output::Apply`] hands out only entries at or below a commit index
///   that is itself durable (in an acknowledged hard state), so a state
///   machine never runs ahead of its own disk, and
///   `Config::applied <= stored commit` holds at every restart.
///
/// The application MUST NOT lose or alter anything it acknowledged. On
/// restart it MUST build the node from that storage (hard state and
/// entries) and MUST set `Config::applied` no higher than the index its
/// state machine durably reflects (0 to replay the committed log from
/// the start). A vote and the entries it acknowledged are in the storage
/// by construction; the node needs nothing else from before the crash
/// (read ids excepted: see [`read_index`](Self::read_index)).
///
/// # Snapshots and compaction
///
/// The node never holds a snapshot's bytes; the application stores,
/// reads and restores them, and the node says when.
///
/// **Taking one, and compacting.** The application MAY snapshot its state
/// machine at any index it has applied: it gets the meta from
/// [`RaftNode::snapshot_meta`](crate::RaftNode::snapshot_meta)`(index)`,
/// MUST make the state and the meta durable, and MUST record it in its
/// storage ([`Storage::snapshot`](crate::Storage::snapshot) then reports
/// it; for [`MemStorage`](crate::MemStorage): `set_snapshot`) *before* it
/// compacts. It MUST NOT compact past
/// [`RaftNode::compaction_limit`](crate::RaftNode::compaction_limit): the
/// applied index, the latest durable snapshot, and, on a leader, every
/// snapshot being sent (until its follower replicates again), so that a
/// follower that installs a snapshot finds the entries after it.
/// (`MemStorage::compact` refuses to go past its latest snapshot.)
///
/// **Sending one (leader).** When a follower needs compacted entries, the
/// leader sends it the snapshot storage reports, and pauses entries to it.
/// For each [`Output::ReadSnapshot`] the application MUST read the bytes
/// asked for from that snapshot and hand them to
/// [`RaftNode::snapshot_chunk`](crate::RaftNode::snapshot_chunk) (or
/// call [`RaftNode::abort_snapshot_send`](crate::RaftNode::abort_snapshot_send)
/// if it cannot), and MUST keep that snapshot readable, even after taking a
/// newer one, until [`Output::SnapshotSendEnded`] for it. Lost chunks,
/// lost answers and follower restarts are resent from what the follower
/// acknowledged; at most `max_snapshot_chunks_in_flight` chunks of
/// `snapshot_chunk_size` bytes are in flight per follower.
///
/// **Receiving one (follower).** [`Output::SnapshotChunk`]s come in order
/// from offset 0; the application writes them to a staging area, which
/// MAY be lost in a crash (the follower then asks for the snapshot from
/// the start). [`Output::SnapshotAborted`] drops it (superseded by a newer
/// snapshot, or the leader changed). On [`Output::RestoreSnapshot`] the
/// application MUST restore its state machine from the staged snapshot and
/// make the snapshot durable *after* every [`Output::Persist`] batch that
/// came out before it (for `MemStorage`: `apply_snapshot`, which keeps the
/// log after the snapshot only if it holds the snapshot's last entry),
/// and only then call
/// [`RaftNode::on_snapshot_restored`](crate::RaftNode::on_snapshot_restored).
/// Until then the node takes no entries, hands out nothing to apply and
/// does not campaign; afterwards [`Output::Apply`] continues from the
/// snapshot's index + 1.
///
/// **Restart.** Storage holds the latest snapshot's meta and the log after
/// it. The application restores its state machine from that snapshot (or
/// from a later record of its own) and builds the node as usual; the node
/// counts the snapshot's index as applied even if
/// [`Config::applied`](crate::Config::applied) is lower.
///
/// # Tracking proposals and reads
///
/// [`propose`](Self::propose) returns a [`ProposalId`]: the leader's term
/// and the index of the new entry. The proposal is committed when an
/// [`Output::Apply`] hands out the entry at that index *with that term*;
/// if the entry applied at that index has another term, the proposal was
/// lost (a new leader overwrote it) and MAY be retried. No other outcome
/// exists, and none is final before the index is applied: a deposed
/// leader's proposal may still commit.
///
/// A read asked with [`read_index`](Self::read_index) ends with exactly one
/// [`Output::ReadReady`] or [`Output::ReadFailed`] for its id, within
/// two election timeouts (`2 * election_tick` ticks) when it was forwarded
/// to a leader.
pub trait ReplicatedLog {
    /// How nodes are named.
    type NodeId;
    /// The protocol's message type.
    type Message;
    /// The protocol's durable per-node state.
    type HardState;

    /// Appends a command if this node leads; returns its term and index.
    /// The command is committed once its entry comes out in
    /// [`Output::Apply`] with that term, and lost if another term comes
    /// out at that index ([tracking proposals](ReplicatedLog#tracking-proposals-and-reads)).
    ///
    /// # Errors
    /// [`ProposeError`] when this node cannot accept it now.
    fn propose(&mut self, data: Bytes) -> Result<ProposalId, ProposeError<Self::NodeId>>;

    /// Advances logical time by one tick.
    fn tick(&mut self);

    /// Handles a message from a peer. Malformed, stale or misaddressed
    /// messages are ignored and counted, never a panic.
    fn handle_message(&mut self, message: Self::Message);

    /// The persist batch `id` (and every one before it) is durable.
    fn on_persisted(&mut self, id: PersistId);

    /// Asks for a linearizable read; the answer comes out as
    /// [`Output::ReadReady`] or [`Output::ReadFailed`] with this `id`.
    ///
    /// Ids MUST increase on each node, across restarts too (derive them
    /// from a counter the application persists, or from a clock that
    /// never goes back): an answer is matched to its read by id alone,
    /// and a delayed duplicate of an old answer must never answer a newer
    /// read. Within one run the node refuses an id that is not above the
    /// last it accepted.
    ///
    /// # Errors
    /// [`ReadError`] when it cannot even be attempted.
    fn read_index(&mut self, id: u64) -> Result<(), ReadError>;

    /// The next thing to do, or `None` when there is nothing left.
    #[must_use]
    fn poll_output(&mut self) -> Option<Output<Self::Message, Self::HardState, Self::NodeId>>;

    /// The leader this node knows of (itself when it leads).
    fn leader(&self) -> Option<&Self::NodeId>;
}
