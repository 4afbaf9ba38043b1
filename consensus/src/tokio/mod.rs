//! A tokio driver (feature `tokio`): runs one [`RaftNode`](crate::RaftNode)
//! in a task, for users who want a working node without writing the run
//! loop. It holds no protocol logic: it does what [the run
//! loop](crate#the-run-loop) says, with real time and real sockets.
//!
//! - [`spawn`] starts the task and returns a cloneable [`Handle`]:
//!   [`Handle::propose`] resolves once the entry is applied (with what the
//!   state machine returned), [`Handle::read`] once a linearizable read may
//!   be served, [`Handle::status`] says where the node stands, and
//!   [`Handle::shutdown`] stops it. [`spawn_with_snapshots`] does the same
//!   with snapshots on ([below](#snapshots)).
//! - Membership and leadership go through the handle too:
//!   [`Handle::add_learner`], [`Handle::promote`], [`Handle::remove`]
//!   (single-server changes, thesis §4.2), [`Handle::change_joint`] and
//!   [`Handle::leave_joint`] (joint consensus, thesis §4.3), each resolving
//!   once its configuration entry is applied (so committed) on this node,
//!   or with a [`MembershipChangeError`] (not the leader, with a hint; a
//!   change in progress; the leader not ready; refused; lost; shut down);
//!   and [`Handle::transfer_leader`] (thesis §3.10), resolving once this
//!   node sees the target lead.
//! - The node talks to its peers through a [`Transport`]; [`TcpTransport`]
//!   is a ready one (length-prefixed frames of [`codec`](crate::codec)
//!   messages, one connection per peer, reconnection with backoff, bounded
//!   queues).
//! - Persist batches go to a [`Persister`], which makes them durable (in
//!   the background if it likes) and readable through the node's
//!   [`Storage`]; [`MemPersister`] does it for
//!   [`MemStorage`], and `DiskPersister` (with the `durable` feature too)
//!   for `DiskStorage`, staging every batch of a round in the driver's
//!   task and leaving the fsync to the storage's syncer thread, which
//!   covers every round staged while the previous fsync ran (group
//!   commit, pipelined: the driver never waits for the disk).
//! - Committed entries go to a [`StateMachine`], on every node, in log
//!   order.
//!
//! The driver's loop, once per event (a tick of a
//! [`tokio::time::interval`], a message from the
//! transport, a command from a handle, a persist batch becoming durable):
//! feed the input, then drain [`poll_output`](crate::RaftNode::poll_output)
//! until `None`, sending messages, handing batches to the persister,
//! applying entries and answering reads; `on_persisted` is called, in batch
//! order, as each batch's future resolves.
//!
//! # Snapshots
//!
//! With [`spawn_with_snapshots`], a [`SnapshotStore`] keeps snapshot bytes
//! and records them in storage ([`MemSnapshots`] for [`MemStorage`];
//! `DiskSnapshots`, with the `durable` feature too, for `DiskStorage`), and
//! the [`StateMachine`] produces ([`StateMachine::snapshot`]) and restores
//! ([`StateMachine::restore`]) its state (Raft §7):
//! - **Taking one**: every [`DriverConfig::snapshot_every`] applied
//!   entries, and on [`Handle::snapshot`], the driver snapshots the state
//!   machine at the applied index, saves it through the store, and
//!   compacts the log up to [`RaftNode::compaction_limit`](crate::RaftNode::compaction_limit).
//! - **Sending one** (leader): chunk reads
//!   ([`Output::ReadSnapshot`](crate::Output::ReadSnapshot)) are served
//!   from the bytes of the snapshot asked for, which the driver keeps until
//!   that transfer ends, even after taking a newer one.
//! - **Receiving one** (follower): chunks are staged in memory, at most
//!   [`DriverConfig::max_snapshot_size`] bytes (a larger snapshot stops the
//!   driver); once every [`Persist`] batch handed out before the restore
//!   is durable, the state machine is restored, the store makes the
//!   snapshot durable and installs it in storage, and only then is
//!   `on_snapshot_restored` called. A proposal or membership change whose
//!   index the snapshot covers before it was applied here ends with
//!   `Lost` (its term is newer than the snapshot's) or `Snapshotted`
//!   (unknown here).
//! - **Restart**: on start, if storage reports a snapshot and the node
//!   starts at its index ([`Config::applied`](crate::Config::applied) not
//!   above it), the state machine is restored from the store's bytes, and
//!   the log after it is replayed.
//!
//! [`spawn`] has snapshots off ([`NoSnapshots`]): it never compacts, aborts
//! a transfer the node asks for (only possible when the storage it was
//! given holds a compacted log), and stops if a snapshot arrives to be
//! restored.

mod admin;
#[cfg(feature = "durable")]
mod disk;
#[cfg(feature = "durable")]
mod disk_snapshots;
mod driver;
mod snapshot;
mod tcp;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use crate::entry::{Entry, HardState, Index, Term};
use crate::message::Message;
use crate::output::Persist;
use crate::snapshot::SnapshotMeta;
use crate::storage::{MemStorage, Storage};

pub use admin::{MembershipChangeError, TransferLeaderError};
#[cfg(feature = "durable")]
#[cfg_attr(docsrs, doc(cfg(feature = "durable")))]
pub use disk::DiskPersister;
#[cfg(feature = "durable")]
#[cfg_attr(docsrs, doc(cfg(feature = "durable")))]
pub use disk_snapshots::DiskSnapshots;
pub use driver::{Handle, SpawnError, spawn, spawn_with_snapshots};
pub use snapshot::{MemSnapshots, NoSnapshots, SnapshotCommandError, SnapshotStore};
pub use tcp::{TcpConfig, TcpConfigError, TcpCounters, TcpCountersHandle, TcpTransport};

/// How the node reaches its peers. Delivery is best effort: Raft tolerates
/// lost, duplicated and reordered messages.
pub trait Transport<N>: Send + 'static {
    /// Hands `message` to the network for `message.to`; never waits. A
    /// message that cannot be queued is dropped.
    fn send(&mut self, message: Message<N>);

    /// The next message from a peer; `None` once no more will come (the
    /// driver then goes on without). Must be cancel safe: the driver
    /// polls it in a `select!`, and a message must not be lost when the
    /// future is dropped unfinished.
    fn recv(&mut self) -> impl Future<Output = Option<Message<N>>> + Send;

    /// The largest proposal payload, in bytes, that this transport can
    /// always deliver inside one message (an append carries at least one
    /// whole entry, and Raft resends the same entry, so one that never
    /// fits would stop replication at its index for good). The driver
    /// refuses larger proposals with `TooLarge`, on top of
    /// [`Config::max_proposal_size`](crate::Config::max_proposal_size).
    /// `None` (the default): no limit of its own.
    fn max_entry_len(&self) -> Option<u64> {
        None
    }
}

/// What a [`Persister`] returns: resolves once the batch is durable.
pub type PersistFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'static>>;

/// Makes [`Persist`] batches durable: the application's half of [the
/// persistence contract](crate::ReplicatedLog#the-persistence-contract).
///
/// The driver hands every batch of one round of its loop (one drain of
/// the node's outputs, after the inputs waiting then) to
/// [`persist_all`](Self::persist_all), in the order the node handed them
/// out, and calls `on_persisted` with the last one once that future (and
/// every earlier one) has resolved `Ok`; `persist_all` calls
/// [`persist`](Self::persist) for each batch unless overridden. The
/// implementation:
/// - MUST make the batch readable through `storage` before its future
///   resolves (writing it into `storage` during `persist` is the simple way;
///   the node does not read entries it has not been told are durable as if
///   they were);
/// - MUST resolve the future only once the batch is durable (fsynced), with
///   the entries no later than the hard state;
/// - MAY return a future that finishes in the background (a writer thread
///   that syncs several batches at once: group commit), so the node keeps
///   working meanwhile.
///
/// The storage is lent only for the call: a future that syncs in the
/// background MUST NOT need it, and works on what the call handed it
/// instead. `DiskPersister` does so through
/// `DiskStorage::sync_in_background`, which gives its syncer thread file
/// handles of its own and returns a future (a `SyncTicket`): the driver
/// keeps staging later rounds while one fsync runs, and one fsync covers
/// them all. The driver polls the futures in batch order and acknowledges
/// each batch once its future (and every earlier one) has resolved, so
/// acknowledgements stay in order whatever order the writes finish in.
///
/// An error stops the driver: a node that cannot persist must not go on.
pub trait Persister<S: Storage>: Send + 'static {
    /// Starts making `batch` durable.
    fn persist(
        &mut self,
        storage: &mut S,
        batch: Persist<HardState<S::NodeId>, S::NodeId>,
    ) -> PersistFuture;

    /// Starts making several batches durable at once: every batch the node
    /// handed out in one round of the driver's loop, in order (never
    /// empty). The future resolves once all of them are durable; the driver
    /// then acknowledges the last one (`on_persisted` is cumulative).
    ///
    /// The default calls [`persist`](Self::persist) for each and waits for
    /// every future. Override it for group commit: `DiskPersister` stages
    /// every batch and syncs once.
    fn persist_all(
        &mut self,
        storage: &mut S,
        batches: Vec<Persist<HardState<S::NodeId>, S::NodeId>>,
    ) -> PersistFuture {
        let futures: Vec<PersistFuture> = batches
            .into_iter()
            .map(|batch| self.persist(storage, batch))
            .collect();
        Box::pin(async move {
            for future in futures {
                future.await?;
            }
            Ok(())
        })
    }
}

/// The [`Persister`] for [`MemStorage`]: writes each batch into the storage
/// and reports it durable at once. Nothing survives the process; for tests
/// and examples.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemPersister;

impl<N: crate::NodeId + Send + 'static> Persister<MemStorage<N>> for MemPersister {
    fn persist(
        &mut self,
        storage: &mut MemStorage<N>,
        batch: Persist<HardState<N>, N>,
    ) -> PersistFuture {
        // Entries first, then the hard state (the contract's order).
        let result = storage
            .append(&batch.entries)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
        if result.is_ok() {
            if let Some(hard_state) = batch.hard_state {
                storage.set_hard_state(hard_state);
            }
        }
        Box::pin(std::future::ready(result))
    }
}

/// The application's state machine: committed entries are applied to it,
/// on every node, in log order, each exactly once per run.
///
/// Implemented for closures `FnMut(&Entry<N>) -> O`.
pub trait StateMachine<N>: Send + 'static {
    /// What applying an entry gives back; the proposer's
    /// [`Handle::propose`] resolves with it.
    type Output: Send + 'static;

    /// Applies one committed entry. A command with empty data is a new
    /// leader's no-op (Raft §8) or an empty proposal; a membership entry
    /// ([`EntryKind::Membership`](crate::EntryKind::Membership)) is applied
    /// too, so the state machine may record it.
    fn apply(&mut self, entry: &Entry<N>) -> Self::Output;

    /// A snapshot of the state after every entry applied so far, whose
    /// last is `meta.index` (Raft §7), in bytes [`restore`](Self::restore)
    /// reads back. `None` (the default): this state machine does not
    /// snapshot, and the driver never compacts.
    ///
    /// The driver keeps the bytes (one [`Bytes`] handle, shared with the
    /// [`SnapshotStore`] and every transfer) and sends them to followers in
    /// chunks.
    fn snapshot(&mut self, meta: &SnapshotMeta<N>) -> Option<Bytes> {
        let _ = meta;
        None
    }

    /// Replaces the whole state with snapshot `data`, which reflects every
    /// entry up to `meta.index`: a snapshot received from the leader, or,
    /// on start, the one storage reports. The next entry applied is
    /// `meta.index + 1`.
    ///
    /// # Errors
    /// The bytes do not decode (the default: this state machine does not
    /// restore). The driver stops: a node that cannot restore cannot go
    /// on.
    fn restore(&mut self, meta: &SnapshotMeta<N>, data: Bytes) -> io::Result<()> {
        let _ = (meta, data);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this state machine does not restore snapshots",
        ))
    }
}

impl<N, O, F> StateMachine<N> for F
where
    F: FnMut(&Entry<N>) -> O + Send + 'static,
    O: Send + 'static,
{
    type Output = O;
    fn apply(&mut self, entry: &Entry<N>) -> O {
        self(entry)
    }
}

/// A proposal that committed and was applied on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied<O> {
    /// The entry's log index.
    pub index: Index,
    /// The entry's term.
    pub term: Term,
    /// What the state machine returned for it.
    pub output: O,
}

/// Why a proposal through [`Handle::propose`] did not commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError<N> {
    /// This node is not the leader; `leader` is the one it knows of. Nothing
    /// was appended: retry there.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<N>,
    },
    /// The leader refused it for another reason (too large, too much
    /// uncommitted, a leadership transfer under way). Nothing was appended.
    #[error("refused: {0}")]
    Refused(crate::output::ProposeError<N>),
    /// The entry was appended, but another entry committed at its index, or
    /// an entry of a newer term committed before it (a new leader's log
    /// did not hold it): it will never be applied. Retrying is safe.
    #[error("lost to a leader change: entry {index} was not kept by the new leader")]
    Lost {
        /// The index it had been appended at.
        index: Index,
    },
    /// A snapshot from a new leader covered the entry's index before this
    /// node applied it: whether it committed is not known here (read the
    /// state machine to tell). Retrying may apply it twice.
    #[error("entry {index} was covered by a snapshot before it was applied here")]
    Snapshotted {
        /// The index it had been appended at.
        index: Index,
    },
    /// The driver stopped (shut down, or a persistence failure) before the
    /// entry was applied here. The proposal may still commit elsewhere.
    #[error("the driver has shut down")]
    ShutDown,
}

/// Why a read through [`Handle::read`] cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No leader is known to confirm the read with (an election is under
    /// way). Nothing changed; retry shortly.
    #[error("no leader known")]
    NoLeader,
    /// Leadership changed before the read was confirmed, or a read
    /// forwarded to the leader went unanswered. Nothing changed; retry.
    #[error("the read could not be confirmed")]
    Failed,
    /// The driver stopped.
    #[error("the driver has shut down")]
    ShutDown,
}

/// How the driver runs the node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Real time per [`RaftNode::tick`](crate::RaftNode::tick): with
    /// [`Config::election_tick`](crate::Config::election_tick) 10, a tick of
    /// 100 ms gives election timeouts of 1–2 s. At least 1 ms.
    pub tick: Duration,
    /// Commands from handles queued before `propose` and `read` wait for
    /// room. At least 1.
    pub command_queue: usize,
    /// With snapshots on ([`spawn_with_snapshots`]): take a snapshot and
    /// compact once this many entries are applied past the latest
    /// snapshot. 0 (the default): only on [`Handle::snapshot`].
    pub snapshot_every: u64,
    /// The largest snapshot received from a leader that the driver stages
    /// (in memory, until it is restored); a larger one stops the driver.
    /// Keep it above the largest snapshot the state machine makes. At
    /// least 1; default 1 GiB.
    pub max_snapshot_size: u64,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(100),
            command_queue: 1024,
            snapshot_every: 0,
            max_snapshot_size: 1 << 30,
        }
    }
}

/// Why a [`DriverConfig`] was refused. Nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverConfigError {
    /// `tick` is under 1 ms. Nothing was started.
    #[error("tick of {0:?} is under 1 ms")]
    Tick(Duration),
    /// `command_queue` is 0. Nothing was started.
    #[error("command_queue is 0")]
    CommandQueue,
    /// `max_snapshot_size` is 0. Nothing was started.
    #[error("max_snapshot_size is 0")]
    MaxSnapshotSize,
}

impl DriverConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), DriverConfigError> {
        if self.tick < Duration::from_millis(1) {
            return Err(DriverConfigError::Tick(self.tick));
        }
        if self.command_queue == 0 {
            return Err(DriverConfigError::CommandQueue);
        }
        if self.max_snapshot_size == 0 {
            return Err(DriverConfigError::MaxSnapshotSize);
        }
        Ok(())
    }
}
