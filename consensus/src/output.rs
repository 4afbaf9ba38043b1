//! What a replicated-log node hands back, and the interface Raft (and the
//! Multi-Paxos to come) present to the application.
//!
//! # The persistence contract
//!
//! Outputs are drained with [`ReplicatedLog::poll_output`] until it returns
//! `None`, after every input. The application:
//! - MUST write every [`Output::Persist`] durably (hard state, then
//!   entries, replacing any stored suffix they overlap), in the order they
//!   come out, and then call [`ReplicatedLog::on_persisted`] with its id.
//!   Writes may run in the background while the node keeps working
//!   (asynchronous persistence); acknowledging id `n` says every persist up
//!   to `n` is durable.
//! - MUST NOT expect a message that depends on unpersisted state (a vote, an
//!   acknowledgement of entries) to come out before that acknowledgement:
//!   the node holds such messages back and releases them from
//!   `poll_output` after `on_persisted`.
//! - MUST apply [`Output::Apply`] entries to its state machine in order.
//! - MAY send [`Output::Send`] messages in any order, drop or duplicate
//!   them: Raft tolerates an unreliable network.

use bytes::Bytes;

use crate::entry::{Entry, Index};

/// Identifies one [`Persist`] batch; ids increase by one from 1.
pub type PersistId = u64;

/// A batch of state the application must make durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persist<H> {
    /// Acknowledge with `on_persisted(id)` once durable.
    pub id: PersistId,
    /// The new hard state, when it changed (write it before `entries`
    /// become visible, or atomically with them).
    pub hard_state: Option<H>,
    /// Entries to append; an entry at an index already stored replaces it
    /// and everything after it (§5.3).
    pub entries: Vec<Entry>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<M, H> {
    /// Make this state durable, then acknowledge it.
    Persist(Persist<H>),
    /// Send this message to its destination.
    Send(M),
    /// Apply these committed entries, in order. An entry with empty data is
    /// a new leader's no-op (§8) and carries no command.
    Apply(Vec<Entry>),
    /// A read may be served once its index is applied.
    ReadReady(ReadState),
    /// A read could not be confirmed (leadership changed, or no leader is
    /// known); the client should retry.
    ReadFailed {
        /// The id given to `read_index`.
        id: u64,
    },
}

/// Why a proposal was refused. Nothing was appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError<N> {
    /// Only the leader accepts proposals; `leader` is this node's best
    /// knowledge of who is.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<N>,
    },
    /// The payload exceeds `max_proposal_size`.
    #[error("proposal of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Payload size.
        size: u64,
        /// The configured limit.
        max: u64,
    },
    /// The leader already holds `max_uncommitted_size` bytes of uncommitted
    /// entries; retry once some commit.
    #[error("{uncommitted} bytes are uncommitted; the limit is {max}")]
    UncommittedFull {
        /// Bytes uncommitted now.
        uncommitted: u64,
        /// The configured limit.
        max: u64,
    },
    /// Leadership is being transferred (thesis §3.10); proposals resume on
    /// the new leader.
    #[error("leadership transfer in progress")]
    TransferInProgress,
}

/// Why a read request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No leader is known to confirm the read with.
    #[error("no leader known")]
    NoLeader,
}

/// A replicated log driven from outside (sans-IO): commands and messages
/// in, outputs drained. Raft implements it; Multi-Paxos will too, so an
/// application written against this trait can switch protocols.
pub trait ReplicatedLog {
    /// How nodes are named.
    type NodeId;
    /// The protocol's message type.
    type Message;
    /// The protocol's durable per-node state.
    type HardState;

    /// Appends a command if this node leads; returns its log index. The
    /// command is committed once it comes out in [`Output::Apply`].
    ///
    /// # Errors
    /// [`ProposeError`] when this node cannot accept it now.
    fn propose(&mut self, data: Bytes) -> Result<Index, ProposeError<Self::NodeId>>;

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
    /// # Errors
    /// [`ReadError`] when it cannot even be attempted.
    fn read_index(&mut self, id: u64) -> Result<(), ReadError>;

    /// The next thing to do, or `None` when there is nothing left.
    fn poll_output(&mut self) -> Option<Output<Self::Message, Self::HardState>>;

    /// The leader this node knows of (itself when it leads).
    fn leader(&self) -> Option<&Self::NodeId>;
}
