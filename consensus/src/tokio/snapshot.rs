//! Snapshots in the driver (Raft §7): where their bytes are kept
//! ([`SnapshotStore`]), taking one by policy or on demand and compacting,
//! serving a leader's chunk reads, and staging and restoring a snapshot
//! received from the leader. The node decides when; this module only does
//! what [the snapshot contract](crate::ReplicatedLog#snapshots-and-compaction)
//! asks of the application.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};

use super::StateMachine;
use crate::NodeId;
use crate::entry::Index;
use crate::raft::RaftNode;
use crate::snapshot::SnapshotMeta;
use crate::storage::{MemStorage, Storage};

/// Keeps the bytes of snapshots and records them in the node's storage:
/// the application's half of [the snapshot
/// contract](crate::ReplicatedLog#snapshots-and-compaction), for the
/// driver ([`spawn_with_snapshots`](super::spawn_with_snapshots)).
///
/// The driver calls it from its task, between two rounds of its loop,
/// never while a drain is under way:
/// - [`save`](Self::save) when it took a snapshot of its own state
///   machine, then [`compact`](Self::compact) no further than
///   [`RaftNode::compaction_limit`];
/// - [`install`](Self::install) once the state machine is restored from a
///   snapshot received from the leader, and only once every
///   [`Persist`](crate::Persist) batch handed out before it is durable;
///   `on_snapshot_restored` follows once it returns `Ok`;
/// - [`load`](Self::load) on start, for the snapshot storage reports.
///
/// An error of kind [`io::ErrorKind::WouldBlock`] means "not now" (say the
/// storage holds writes not yet synced): nothing changed and the driver
/// calls again later. Any other error stops the driver, as a persistence
/// failure does.
pub trait SnapshotStore<S: Storage>: Send + 'static {
    /// Makes `data`, a snapshot of this node's state machine described by
    /// `meta`, durable, then records it in `storage` so that
    /// [`Storage::snapshot`] reports it (for [`MemStorage`]:
    /// [`set_snapshot`](MemStorage::set_snapshot)). An older snapshot than
    /// the one recorded may be ignored.
    ///
    /// # Errors
    /// The write failed; `storage` MUST then still report the previous
    /// snapshot.
    fn save(
        &mut self,
        storage: &mut S,
        meta: &SnapshotMeta<S::NodeId>,
        data: &Bytes,
    ) -> io::Result<()>;

    /// Discards the log up to `index`, which a saved snapshot covers (for
    /// [`MemStorage`]: [`compact`](MemStorage::compact)).
    ///
    /// # Errors
    /// The storage refused or failed.
    fn compact(&mut self, storage: &mut S, index: Index) -> io::Result<()>;

    /// Makes `data`, a snapshot received from the leader and restored into
    /// the state machine, durable, and installs `meta` in `storage` (for
    /// [`MemStorage`]: [`apply_snapshot`](MemStorage::apply_snapshot),
    /// which keeps the log after the snapshot only if it holds the
    /// snapshot's last entry).
    ///
    /// # Errors
    /// The write failed; nothing may be acknowledged.
    fn install(
        &mut self,
        storage: &mut S,
        meta: &SnapshotMeta<S::NodeId>,
        data: &Bytes,
    ) -> io::Result<()>;

    /// The bytes of the snapshot `storage` reports
    /// ([`Storage::snapshot`]), if this store holds them.
    ///
    /// # Errors
    /// Reading them failed.
    fn load(&mut self, storage: &S) -> io::Result<Option<Bytes>>;
}

/// A [`SnapshotStore`] that keeps nothing: snapshots are off. The driver
/// then never snapshots or compacts, aborts every transfer the node asks
/// for, and stops if a snapshot arrives to be restored (a node that cannot
/// restore it cannot go on). [`spawn`](super::spawn) uses it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSnapshots;

impl<S: Storage> SnapshotStore<S> for NoSnapshots {
    fn save(&mut self, _: &mut S, _: &SnapshotMeta<S::NodeId>, _: &Bytes) -> io::Result<()> {
        Err(unsupported())
    }
    fn compact(&mut self, _: &mut S, _: Index) -> io::Result<()> {
        Err(unsupported())
    }
    fn install(&mut self, _: &mut S, _: &SnapshotMeta<S::NodeId>, _: &Bytes) -> io::Result<()> {
        Err(unsupported())
    }
    fn load(&mut self, _: &S) -> io::Result<Option<Bytes>> {
        Ok(None)
    }
}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "snapshots are off (NoSnapshots)",
    )
}

/// The [`SnapshotStore`] for [`MemStorage`]: keeps the latest snapshot's
/// bytes in memory. Clones share them, so a test can restart a node from a
/// copy of its storage and the same store. Nothing survives the process.
#[derive(Debug)]
pub struct MemSnapshots<N> {
    latest: Arc<Mutex<Option<Kept<N>>>>,
}

/// A snapshot's meta and bytes.
type Kept<N> = (SnapshotMeta<N>, Bytes);

impl<N> Clone for MemSnapshots<N> {
    fn clone(&self) -> Self {
        Self {
            latest: Arc::clone(&self.latest),
        }
    }
}

impl<N> Default for MemSnapshots<N> {
    fn default() -> Self {
        Self {
            latest: Arc::new(Mutex::new(None)),
        }
    }
}

impl<N: Clone> MemSnapshots<N> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The latest snapshot saved or installed, with its bytes.
    pub fn latest(&self) -> Option<(SnapshotMeta<N>, Bytes)> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn keep(&self, meta: &SnapshotMeta<N>, data: &Bytes) {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        if latest.as_ref().is_none_or(|(m, _)| m.index < meta.index) {
            *latest = Some((meta.clone(), data.clone()));
        }
    }
}

impl<N: NodeId + Send + 'static> SnapshotStore<MemStorage<N>> for MemSnapshots<N> {
    fn save(
        &mut self,
        storage: &mut MemStorage<N>,
        meta: &SnapshotMeta<N>,
        data: &Bytes,
    ) -> io::Result<()> {
        // Recorded first: a refused snapshot must not replace the bytes
        // of the one storage still reports.
        storage
            .set_snapshot(meta.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.keep(meta, data);
        Ok(())
    }

    fn compact(&mut self, storage: &mut MemStorage<N>, index: Index) -> io::Result<()> {
        storage
            .compact(index)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn install(
        &mut self,
        storage: &mut MemStorage<N>,
        meta: &SnapshotMeta<N>,
        data: &Bytes,
    ) -> io::Result<()> {
        self.keep(meta, data);
        storage.apply_snapshot(meta.clone());
        Ok(())
    }

    fn load(&mut self, storage: &MemStorage<N>) -> io::Result<Option<Bytes>> {
        let Some(meta) = storage.snapshot() else {
            return Ok(None);
        };
        Ok(self
            .latest()
            .filter(|(m, _)| m.index == meta.index && m.term == meta.term)
            .map(|(_, data)| data))
    }
}

/// Why [`Handle::snapshot`](super::Handle::snapshot) took no snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotCommandError {
    /// The state machine does not snapshot
    /// ([`StateMachine::snapshot`] returned `None`). Nothing changed.
    #[error("the state machine does not snapshot")]
    Unsupported,
    /// Nothing is applied yet. Nothing changed.
    #[error("nothing is applied yet")]
    NothingApplied,
    /// Taking or saving the snapshot failed: if the store failed, the
    /// driver stopped; if the node could not describe the applied index,
    /// nothing changed.
    #[error("taking the snapshot failed: {0}")]
    Failed(String),
    /// The driver stopped.
    #[error("the driver has shut down")]
    ShutDown,
}

/// A snapshot being received: its index and the bytes staged so far.
struct Staging {
    index: Index,
    data: BytesMut,
    complete: bool,
}

/// The driver's snapshot state.
pub(super) struct Snapshots<S: Storage> {
    store: Box<dyn SnapshotStore<S>>,
    /// Snapshot bytes this node holds: the latest, and every one still
    /// being sent to a follower (the contract keeps those readable until
    /// their transfer ends).
    held: BTreeMap<Index, Bytes>,
    /// The index of the latest snapshot (saved, installed or loaded).
    latest: Index,
    /// Transfers running, by follower.
    sending: BTreeMap<S::NodeId, Index>,
    staging: Option<Staging>,
    /// A received snapshot waits to be restored.
    restore: Option<SnapshotMeta<S::NodeId>>,
    /// Take a snapshot once this many entries are applied past the latest
    /// (0: never by policy).
    every: u64,
    max_size: u64,
}

/// What went wrong with a snapshot; the driver stops on `Fatal`.
pub(super) enum SnapshotFailure {
    /// The store said "not now": try again later.
    NotNow,
    /// The driver must stop.
    Fatal(String),
}

impl From<io::Error> for SnapshotFailure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::WouldBlock {
            Self::NotNow
        } else {
            Self::Fatal(e.to_string())
        }
    }
}

impl<S> Snapshots<S>
where
    S: Storage + 'static,
    S::NodeId: NodeId,
{
    pub(super) fn new(store: Box<dyn SnapshotStore<S>>, every: u64, max_size: u64) -> Self {
        Self {
            store,
            held: BTreeMap::new(),
            latest: 0,
            sending: BTreeMap::new(),
            staging: None,
            restore: None,
            every,
            max_size,
        }
    }

    /// On start: loads the bytes of the snapshot storage reports, and
    /// restores the state machine from them if the node starts at that
    /// index (its applied index is the snapshot's: `Config::applied` was
    /// not above it, so the state machine reflects nothing later).
    ///
    /// # Errors
    /// Loading or restoring failed, or the state machine must be restored
    /// and the store does not hold the bytes.
    pub(super) fn start<M: StateMachine<S::NodeId>>(
        &mut self,
        node: &RaftNode<S>,
        state_machine: &mut M,
    ) -> io::Result<()> {
        let Some(meta) = node.storage().snapshot() else {
            return Ok(());
        };
        self.latest = meta.index;
        // The state machine reflects nothing past the snapshot: it must
        // be restored from it, or entries up to it would be missing.
        let restore = node.log().applied() == meta.index;
        let Some(data) = self.store.load(node.storage())? else {
            if restore {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "storage reports snapshot {} and the store does not hold its bytes",
                        meta.index
                    ),
                ));
            }
            tracing::warn!(
                index = meta.index,
                "storage reports a snapshot whose bytes the snapshot store does not hold"
            );
            return Ok(());
        };
        if restore {
            state_machine.restore(&meta, data.clone())?;
        }
        self.held.insert(meta.index, data);
        Ok(())
    }

    // ---- Taking snapshots ----

    /// Whether the policy asks for a snapshot now.
    pub(super) fn due(&self, node: &RaftNode<S>) -> bool {
        self.every > 0
            && node.log().applied().saturating_sub(self.latest) >= self.every
            && !node.restore_pending()
            && self.restore.is_none()
    }

    /// Snapshots the state machine at the applied index, saves it and
    /// compacts the log up to [`RaftNode::compaction_limit`]. Returns the
    /// snapshot's index (the latest one's if nothing was applied since).
    pub(super) fn take<M: StateMachine<S::NodeId>>(
        &mut self,
        node: &mut RaftNode<S>,
        state_machine: &mut M,
    ) -> Result<Index, TakeError> {
        let applied = node.log().applied();
        if applied > self.latest {
            let meta = match node.snapshot_meta(applied) {
                Ok(meta) => meta,
                Err(e) if applied == 0 => {
                    tracing::debug!(error = %e, "nothing to snapshot");
                    return Err(TakeError::NothingApplied);
                }
                Err(e) => return Err(TakeError::Meta(e.to_string())),
            };
            let Some(data) = state_machine.snapshot(&meta) else {
                // Asking again would give the same answer.
                self.every = 0;
                return Err(TakeError::Unsupported);
            };
            match self.store.save(node.storage_mut(), &meta, &data) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    self.every = 0;
                    return Err(TakeError::Unsupported);
                }
                Err(e) => return Err(TakeError::Failed(e.into())),
            }
            tracing::debug!(index = applied, bytes = data.len(), "snapshot taken");
            self.held.insert(applied, data);
            self.latest = applied;
            self.prune();
        } else if self.latest == 0 {
            return Err(TakeError::NothingApplied);
        }
        let limit = node.compaction_limit();
        if limit >= node.storage().first_index() {
            self.store
                .compact(node.storage_mut(), limit)
                .map_err(|e| TakeError::Failed(e.into()))?;
        }
        Ok(self.latest)
    }

    // ---- Leader: sending ----

    /// [`Output::ReadSnapshot`](crate::Output::ReadSnapshot): hands the
    /// node the chunk from the snapshot bytes held, or aborts the transfer
    /// if they are not held.
    pub(super) fn read_chunk(
        &mut self,
        node: &mut RaftNode<S>,
        to: S::NodeId,
        index: Index,
        offset: u64,
        max_len: u64,
    ) {
        let chunk = self.held.get(&index).and_then(|data| {
            let len = data.len() as u64;
            let end = offset.saturating_add(max_len).min(len);
            let from = usize::try_from(offset).ok().filter(|_| offset <= len)?;
            let to = usize::try_from(end).ok()?;
            Some((data.slice(from..to), end == len))
        });
        let Some((data, last)) = chunk else {
            tracing::warn!(
                ?to,
                index,
                offset,
                "snapshot bytes not held; transfer aborted"
            );
            let _ = node.abort_snapshot_send(&to, index);
            return;
        };
        self.sending.insert(to.clone(), index);
        if let Err(e) = node.snapshot_chunk(&to, index, offset, data, last) {
            tracing::warn!(?to, index, offset, error = %e, "snapshot chunk refused");
        }
    }

    /// [`Output::SnapshotSendEnded`](crate::Output::SnapshotSendEnded).
    pub(super) fn send_ended(&mut self, to: &S::NodeId, index: Index) {
        if self.sending.get(to) == Some(&index) {
            self.sending.remove(to);
        }
        self.prune();
    }

    /// Releases the bytes of snapshots neither latest nor being sent.
    fn prune(&mut self) {
        let (latest, sending) = (self.latest, &self.sending);
        self.held
            .retain(|index, _| *index == latest || sending.values().any(|i| i == index));
    }

    // ---- Follower: receiving ----

    /// [`Output::SnapshotChunk`]: stages the bytes, in memory, up to
    /// `max_snapshot_size`.
    ///
    /// [`Output::SnapshotChunk`]: crate::Output::SnapshotChunk
    pub(super) fn stage(
        &mut self,
        index: Index,
        offset: u64,
        data: &Bytes,
        last: bool,
    ) -> Result<(), SnapshotFailure> {
        if offset == 0 {
            self.staging = Some(Staging {
                index,
                data: BytesMut::new(),
                complete: false,
            });
        }
        let Some(staging) = self.staging.as_mut().filter(|s| s.index == index) else {
            // The node hands chunks out in order from offset 0.
            return Err(SnapshotFailure::Fatal(format!(
                "chunk of snapshot {index} at {offset} without its start"
            )));
        };
        if staging.data.len() as u64 != offset {
            return Err(SnapshotFailure::Fatal(format!(
                "chunk of snapshot {index} at {offset}, {} bytes staged",
                staging.data.len()
            )));
        }
        let size = offset.saturating_add(data.len() as u64);
        if size > self.max_size {
            self.staging = None;
            return Err(SnapshotFailure::Fatal(format!(
                "snapshot {index} is larger than max_snapshot_size ({} bytes)",
                self.max_size
            )));
        }
        staging.data.extend_from_slice(data);
        staging.complete = last;
        Ok(())
    }

    /// [`Output::SnapshotAborted`](crate::Output::SnapshotAborted).
    pub(super) fn aborted(&mut self, index: Index) {
        if self.staging.as_ref().is_some_and(|s| s.index == index) {
            self.staging = None;
        }
    }

    /// [`Output::RestoreSnapshot`](crate::Output::RestoreSnapshot): the
    /// restore waits until every batch handed out before it is durable
    /// ([`restore`](Self::restore)).
    pub(super) fn restore_requested(&mut self, meta: SnapshotMeta<S::NodeId>) {
        self.restore = Some(meta);
    }

    /// Whether a restore waits.
    pub(super) fn restore_waiting(&self) -> bool {
        self.restore.is_some()
    }

    /// Restores the state machine from the staged snapshot, makes it
    /// durable through the store and tells the node. Call only once every
    /// batch handed out before the restore was asked for is durable.
    /// Returns the meta restored, `None` if the store said "not now".
    pub(super) fn restore<M: StateMachine<S::NodeId>>(
        &mut self,
        node: &mut RaftNode<S>,
        state_machine: &mut M,
    ) -> Result<Option<SnapshotMeta<S::NodeId>>, String> {
        let Some(meta) = self.restore.clone() else {
            return Ok(None);
        };
        let data = match &self.staging {
            Some(s) if s.index == meta.index && s.complete => s.data.clone().freeze(),
            _ => return Err(format!("snapshot {} is not staged", meta.index)),
        };
        state_machine.restore(&meta, data.clone()).map_err(|e| {
            format!(
                "the state machine could not restore snapshot {}: {e}",
                meta.index
            )
        })?;
        match self.store.install(node.storage_mut(), &meta, &data) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(format!("installing snapshot {} failed: {e}", meta.index)),
        }
        node.on_snapshot_restored(meta.index)
            .map_err(|e| format!("the node refused snapshot {}: {e}", meta.index))?;
        tracing::debug!(index = meta.index, bytes = data.len(), "snapshot restored");
        self.restore = None;
        self.staging = None;
        self.held.insert(meta.index, data);
        self.latest = self.latest.max(meta.index);
        self.prune();
        Ok(Some(meta))
    }
}

/// Why taking a snapshot did not work.
pub(super) enum TakeError {
    /// The state machine or the store does not snapshot.
    Unsupported,
    NothingApplied,
    /// The node could not describe the applied index (nothing changed).
    Meta(String),
    Failed(SnapshotFailure),
}
