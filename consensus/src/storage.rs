//! The stable log: a read-only view for consensus, and an in-memory
//! implementation.
//!
//! Consensus only *reads* stable storage. Writing is the application's job:
//! it persists what the node hands out (entries, hard state) in its own way,
//! then tells the node (`on_persisted`). `MemStorage` is the reference
//! implementation and what the tests and simulator use.

use crate::NodeId;
use crate::entry::{Entry, HardState, Index, Term};
use crate::membership::Membership;
use crate::snapshot::SnapshotMeta;

/// Why a read of the stable log failed. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The entry at `index` was compacted away (it is at or below the
    /// compaction point `compacted`); only a snapshot can supply it. Nothing changed.
    #[error("entry {index} is compacted (log starts after {compacted})")]
    Compacted {
        /// The index asked for.
        index: Index,
        /// The last compacted index.
        compacted: Index,
    },
    /// The entry at `index` is past the end of the stable log. Nothing changed.
    #[error("entry {index} is unavailable (last index {last_index})")]
    Unavailable {
        /// The index asked for.
        index: Index,
        /// The last index stored.
        last_index: Index,
    },
    /// An append would leave a gap. Nothing changed.
    #[error(
        "append at {first} does not continue the log (first index {first_index}, last index {last_index})"
    )]
    NotContiguous {
        /// Index of the first entry appended.
        first: Index,
        /// First available index.
        first_index: Index,
        /// Last index stored.
        last_index: Index,
    },
    /// Compaction past the latest durable snapshot: the entries would be
    /// lost with nothing to replace them. Nothing changed.
    #[error("cannot compact to {index}: the latest snapshot covers only up to {snapshot}")]
    NotSnapshotted {
        /// The index asked for.
        index: Index,
        /// The latest snapshot's index (0: none).
        snapshot: Index,
    },
    /// The entry at `index` is in the log but could not be read back from
    /// the medium that holds it (an I/O error, or bytes that no longer
    /// pass their checksum): only storage that reads from disk, such as
    /// `durable::DiskStorage`, returns it. Nothing changed; the node logs
    /// it and tries again later.
    #[error("entry {index} could not be read: {reason}")]
    Unreadable {
        /// The index asked for.
        index: Index,
        /// What went wrong.
        reason: String,
    },
    /// A snapshot taken locally names an entry this log does not hold
    /// (another term at that index, or past its end). Nothing changed.
    #[error("no entry at index {index} with term {term} to snapshot")]
    SnapshotMismatch {
        /// The snapshot's index.
        index: Index,
        /// The snapshot's term.
        term: Term,
    },
}

/// What a node needs to restart: its hard state and the membership it
/// starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialState<N> {
    /// Term, vote and commit index as last persisted.
    pub hard_state: HardState<N>,
    /// The membership of the latest snapshot, or, with none, the one the
    /// cluster was bootstrapped with (empty for a node that joins an
    /// existing cluster: it learns the membership from the leader).
    /// Configuration entries in the log override it: on restart the node
    /// takes the membership of the last configuration entry in its log,
    /// else this one (thesis §4.1).
    pub membership: Membership<N>,
}

/// A read-only view of the stable (persisted) log.
///
/// The log is the contiguous range `first_index()..=last_index()`. The entry
/// just before it, at `first_index() - 1`, may have been compacted, but its
/// term stays readable through [`term`](Self::term) so that a new entry can
/// still be matched against it (§5.3, log matching).
pub trait Storage {
    /// How nodes are named (u64, a socket address, a UUID...): any
    /// [`NodeId`](crate::NodeId).
    type NodeId: NodeId;

    /// The persisted hard state and membership.
    fn initial_state(&self) -> InitialState<Self::NodeId>;

    /// Entries in `[low, high)`, stopping once their total
    /// [`Entry::size`] would exceed `max_bytes` (but always at least one
    /// entry when the range is not empty).
    ///
    /// # Errors
    /// [`StorageError::Compacted`] if `low < first_index()`,
    /// [`StorageError::Unavailable`] if `high > last_index() + 1`.
    fn entries(
        &self,
        low: Index,
        high: Index,
        max_bytes: u64,
    ) -> Result<Vec<Entry<Self::NodeId>>, StorageError>;

    /// The term of the entry at `index`, for `index` in
    /// `first_index() - 1 ..= last_index()`.
    ///
    /// # Errors
    /// [`StorageError::Compacted`] below that range,
    /// [`StorageError::Unavailable`] above it.
    fn term(&self, index: Index) -> Result<Term, StorageError>;

    /// The first index whose entry is available (1 for a log never compacted).
    fn first_index(&self) -> Index;

    /// The last index stored (`first_index() - 1` when empty).
    fn last_index(&self) -> Index;

    /// The latest *durable* snapshot's meta, or `None` if there is none.
    /// After compaction, `first_index() - 1` is at most its index (the log
    /// is never trimmed past what a snapshot covers), and its term stays
    /// readable through [`term`](Self::term). A leader sends this
    /// snapshot to a follower that needs compacted entries.
    fn snapshot(&self) -> Option<SnapshotMeta<Self::NodeId>>;
}

/// Checks a read of `[low, high)` from a log spanning
/// `first_index..=last_index`: `Ok(true)` when the range is empty, `Ok(false)`
/// when it can be read, an error when it reaches outside the log.
pub(crate) fn check_range(
    low: Index,
    high: Index,
    first_index: Index,
    last_index: Index,
) -> Result<bool, StorageError> {
    if low < first_index {
        return Err(StorageError::Compacted {
            index: low,
            compacted: first_index - 1,
        });
    }
    if high > last_index + 1 {
        return Err(StorageError::Unavailable {
            index: high - 1,
            last_index,
        });
    }
    Ok(low >= high)
}

/// Takes entries from `entries` while their total size stays within
/// `max_bytes`, always keeping the first.
pub(crate) fn limit_size<N>(entries: &mut Vec<Entry<N>>, max_bytes: u64) {
    let mut total = 0u64;
    let keep = entries
        .iter()
        .position(|entry| {
            total = total.saturating_add(entry.size());
            total > max_bytes
        })
        .unwrap_or(entries.len())
        .max(1);
    entries.truncate(keep);
}

/// The stable log in memory: the reference [`Storage`].
///
/// ```
/// use dsys_consensus::{Entry, MemStorage, Membership, SnapshotMeta, Storage};
///
/// let mut storage = MemStorage::new(vec![1u64, 2, 3]);
/// storage.append(&[Entry::new(1, 1, "a"), Entry::new(1, 2, "b")])?;
/// storage.append(&[Entry::new(2, 2, "c")])?; // conflicting suffix replaced
/// assert_eq!(storage.last_index(), 2);
/// assert_eq!(storage.term(2)?, 2);
/// // Compaction only goes as far as a durable snapshot covers.
/// assert!(storage.compact(1).is_err());
/// storage.set_snapshot(SnapshotMeta { index: 1, term: 1, membership: Membership::from_voters([1, 2, 3]) })?;
/// storage.compact(1)?;
/// assert_eq!((storage.first_index(), storage.term(1)?), (2, 1));
/// # Ok::<(), dsys_consensus::StorageError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemStorage<N> {
    hard_state: HardState<N>,
    membership: Membership<N>,
    /// Index and term of the entry just before `entries` (0, 0 if never compacted).
    compacted: (Index, Term),
    entries: Vec<Entry<N>>,
    /// The latest durable snapshot.
    snapshot: Option<SnapshotMeta<N>>,
}

impl<N: NodeId> MemStorage<N> {
    /// An empty log for a cluster bootstrapped with `voters` (none: a
    /// node that will join an existing cluster).
    pub fn new(voters: Vec<N>) -> Self {
        Self::with_membership(Membership::from_voters(voters))
    }

    /// An empty log for a cluster bootstrapped with `membership`.
    pub fn with_membership(membership: Membership<N>) -> Self {
        Self {
            hard_state: HardState::default(),
            membership,
            compacted: (0, 0),
            entries: Vec::new(),
            snapshot: None,
        }
    }

    /// Records a persisted hard state. Its commit index is kept at least
    /// at the latest snapshot's index (a snapshot only covers committed
    /// entries; a hard state written before it landed may say less).
    pub fn set_hard_state(&mut self, mut hard_state: HardState<N>) {
        let floor = self.snapshot.as_ref().map_or(0, |s| s.index);
        hard_state.commit = hard_state.commit.max(floor);
        self.hard_state = hard_state;
    }

    /// The hard state last recorded.
    pub fn hard_state(&self) -> &HardState<N> {
        &self.hard_state
    }

    /// Persists `entries` (consecutive indexes, ascending). An entry at an index
    /// already stored replaces it and everything after it: a new leader
    /// overwrote a conflicting suffix (§5.3). Entries at or below the
    /// compaction point are skipped: a snapshot already covers them (a
    /// write handed out before a snapshot was installed may land after it,
    /// as in etcd's `MemoryStorage`).
    ///
    /// # Errors
    /// [`StorageError::NotContiguous`] if the entries skip an index, or the
    /// first kept would leave a gap after the log (or is index 0); nothing
    /// changes.
    pub fn append(&mut self, entries: &[Entry<N>]) -> Result<(), StorageError> {
        if let Some((skip, keep)) = self.placement(entries)? {
            self.entries.truncate(keep);
            self.entries.extend_from_slice(&entries[skip..]);
        }
        Ok(())
    }

    /// [`append`](Self::append), taking the entries by value: what an
    /// application does with the entries of an
    /// [`Output::Persist`](crate::Output::Persist) it owns, without one
    /// more clone (and drop) of every payload.
    ///
    /// # Errors
    /// As [`append`](Self::append); nothing changes.
    pub fn append_owned(&mut self, entries: Vec<Entry<N>>) -> Result<(), StorageError> {
        if let Some((skip, keep)) = self.placement(&entries)? {
            self.entries.truncate(keep);
            self.entries.extend(entries.into_iter().skip(skip));
        }
        Ok(())
    }

    /// Where `entries` go: how many to skip (covered by the compaction
    /// point) and how many stored entries to keep before them; `None` if
    /// none is left to store.
    fn placement(&self, entries: &[Entry<N>]) -> Result<Option<(usize, usize)>, StorageError> {
        let contiguous = entries
            .windows(2)
            .all(|w| w[0].index.checked_add(1) == Some(w[1].index));
        let zero = entries.first().is_some_and(|e| e.index == 0);
        let skip = entries
            .iter()
            .take_while(|e| e.index <= self.compacted.0)
            .count();
        let Some(first) = entries.get(skip) else {
            if !contiguous || zero {
                return Err(StorageError::NotContiguous {
                    first: 0,
                    first_index: self.first_index(),
                    last_index: self.last_index(),
                });
            }
            return Ok(None);
        };
        if !contiguous || zero || first.index > self.last_index() + 1 {
            return Err(StorageError::NotContiguous {
                first: first.index,
                first_index: self.first_index(),
                last_index: self.last_index(),
            });
        }
        let keep = usize::try_from(first.index - self.first_index())
            .expect("first.index is within the stored range, checked above");
        Ok(Some((skip, keep)))
    }

    /// Discards entries up to and including `index`, keeping its term for
    /// matching. Only what a durable snapshot covers may go: call
    /// [`set_snapshot`](Self::set_snapshot) (or
    /// [`apply_snapshot`](Self::apply_snapshot)) first, and compact no
    /// further than [`RaftNode::compaction_limit`](crate::RaftNode::compaction_limit).
    ///
    /// # Errors
    /// [`StorageError::NotSnapshotted`] if `index` is past the latest
    /// snapshot, [`StorageError::Unavailable`] if `index > last_index()`;
    /// compacting at or below the current point is a no-op.
    pub fn compact(&mut self, index: Index) -> Result<(), StorageError> {
        if index <= self.compacted.0 {
            return Ok(());
        }
        let snapshot = self.snapshot.as_ref().map_or(0, |s| s.index);
        if index > snapshot {
            return Err(StorageError::NotSnapshotted { index, snapshot });
        }
        let term = self.term(index)?;
        let drop = usize::try_from(index - self.compacted.0)
            .expect("index is within the stored range, checked by term()");
        self.entries.drain(..drop);
        self.compacted = (index, term);
        Ok(())
    }

    /// Records a snapshot the application took of its own state machine
    /// (at an applied index, with [`RaftNode::snapshot_meta`](crate::RaftNode::snapshot_meta))
    /// and made durable; its membership becomes the one
    /// [`initial_state`](Storage::initial_state) reports. The log is not trimmed: [`compact`](Self::compact)
    /// does that. An older snapshot than the one recorded is ignored.
    ///
    /// # Errors
    /// [`StorageError::SnapshotMismatch`] if the log does not hold an
    /// entry with the snapshot's index and term; nothing changes.
    pub fn set_snapshot(&mut self, meta: SnapshotMeta<N>) -> Result<(), StorageError> {
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.index >= meta.index)
        {
            return Ok(());
        }
        if self.term(meta.index) != Ok(meta.term) {
            return Err(StorageError::SnapshotMismatch {
                index: meta.index,
                term: meta.term,
            });
        }
        // Configuration entries up to the snapshot may be compacted next:
        // the snapshot's membership replaces them on restart.
        self.membership.clone_from(&meta.membership);
        self.snapshot = Some(meta);
        Ok(())
    }

    /// Installs a snapshot received from the leader (on
    /// [`Output::RestoreSnapshot`](crate::Output::RestoreSnapshot), once the
    /// state machine is restored from it): the log up to its index goes;
    /// the entries after it stay if the log holds the snapshot's last
    /// entry (same index and term), else the whole log goes (§7). The
    /// commit index becomes at least the snapshot's, and the membership
    /// its membership. An older snapshot than the one recorded is ignored.
    pub fn apply_snapshot(&mut self, meta: SnapshotMeta<N>) {
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.index >= meta.index)
        {
            return;
        }
        if meta.index <= self.compacted.0 {
            return;
        }
        if self.term(meta.index) == Ok(meta.term) {
            let drop = usize::try_from(meta.index - self.compacted.0)
                .expect("the index is within the stored range");
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.compacted = (meta.index, meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.membership.clone_from(&meta.membership);
        self.snapshot = Some(meta);
    }
}

impl<N: NodeId> Storage for MemStorage<N> {
    type NodeId = N;

    fn initial_state(&self) -> InitialState<N> {
        InitialState {
            hard_state: self.hard_state.clone(),
            membership: self.membership.clone(),
        }
    }

    fn entries(
        &self,
        low: Index,
        high: Index,
        max_bytes: u64,
    ) -> Result<Vec<Entry<N>>, StorageError> {
        if check_range(low, high, self.first_index(), self.last_index())? {
            return Ok(Vec::new());
        }
        let from = usize::try_from(low - self.first_index())
            .expect("low is within the log, checked above");
        let to = usize::try_from(high - self.first_index())
            .expect("high is within the log, checked above");
        let mut out = self.entries[from..to].to_vec();
        limit_size(&mut out, max_bytes);
        Ok(out)
    }

    fn term(&self, index: Index) -> Result<Term, StorageError> {
        if index < self.compacted.0 {
            return Err(StorageError::Compacted {
                index,
                compacted: self.compacted.0,
            });
        }
        if index == self.compacted.0 {
            return Ok(self.compacted.1);
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable {
                index,
                last_index: self.last_index(),
            });
        }
        let at = usize::try_from(index - self.first_index())
            .expect("index is within the log, checked above");
        Ok(self.entries[at].term)
    }

    fn first_index(&self) -> Index {
        self.compacted.0 + 1
    }

    fn last_index(&self) -> Index {
        self.compacted.0 + self.entries.len() as Index
    }

    fn snapshot(&self) -> Option<SnapshotMeta<N>> {
        self.snapshot.clone()
    }
}
