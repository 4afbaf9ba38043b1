//! The Raft log: stable entries (in [`Storage`]) followed by the unstable
//! tail not yet persisted, with the commit and apply positions (§5.3, §5.4).
//!
//! Asynchronous persistence: the tail is handed out for persisting with
//! [`RaftLog::take_to_persist`], which marks it *in progress*; the node keeps
//! appending while the write runs, and [`RaftLog::on_persisted`] moves the
//! persisted prefix out of the tail once the write is done. An
//! acknowledgement for entries that a new leader has since overwritten is
//! recognised by its term and ignored.

use crate::entry::{Entry, Index, Term};
use crate::storage::{Storage, StorageError, check_range, limit_size};

/// Most entries kept in [`RaftLog`]'s `applying` buffer; past it, entries
/// are applied from storage as before.
const APPLYING_MAX: usize = 4096;

/// Why a log operation was refused. The log is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// Entries would overwrite a committed entry. Committed entries are
    /// final (§5.4, leader completeness): the sender is faulty or the
    /// message is corrupt. Nothing changed.
    #[error("entries from index {index} would overwrite committed entries (committed {committed})")]
    WouldOverwriteCommitted {
        /// First index the entries would replace.
        index: Index,
        /// The commit index.
        committed: Index,
    },
    /// Entries do not continue the log: their first index is past
    /// `last_index + 1`, or they skip an index. Nothing changed.
    #[error("entries starting at {first} do not continue a log ending at {last_index}")]
    NotContiguous {
        /// Index of the first entry.
        first: Index,
        /// The log's last index.
        last_index: Index,
    },
    /// A commit index past the end of the log. Nothing changed.
    #[error("cannot commit {index}: the log ends at {last_index}")]
    CommitBeyondLog {
        /// The commit index asked for.
        index: Index,
        /// The log's last index.
        last_index: Index,
    },
    /// The stable log could not supply an entry or a term. Nothing changed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Entries appended but not yet persisted.
#[derive(Debug, Clone)]
struct Unstable<N> {
    /// Index of `entries[0]` (or where the next entry goes when empty).
    offset: Index,
    entries: Vec<Entry<N>>,
    /// Entries below this index were handed out to be persisted.
    in_progress: Index,
    /// The capacity `entries` had when its buffer was handed on whole
    /// (see `stable_to`): reserved again at the next append, so that the
    /// tail does not regrow from nothing.
    reserve: usize,
}

impl<N: Clone> Unstable<N> {
    fn last_index(&self) -> Option<Index> {
        self.entries.last().map(|e| e.index)
    }

    fn term(&self, index: Index) -> Option<Term> {
        let at = usize::try_from(index.checked_sub(self.offset)?).ok()?;
        self.entries.get(at).map(|e| e.term)
    }

    /// Drops the tail from index `after` on, so that entries starting
    /// there can be appended.
    fn truncate_from(&mut self, after: Index) {
        if after <= self.offset {
            // Replaces the whole tail (and shadows stable entries from `after` on).
            self.offset = after;
            self.entries.clear();
        } else {
            let keep = usize::try_from(after - self.offset).expect("after is within the tail");
            self.entries.truncate(keep);
        }
        self.in_progress = self.in_progress.min(after).max(self.offset);
        if self.entries.capacity() == 0 {
            self.entries.reserve(std::mem::take(&mut self.reserve));
        }
    }

    fn to_persist(&self) -> &[Entry<N>] {
        let from = usize::try_from(self.in_progress - self.offset)
            .expect("in_progress is within the tail");
        &self.entries[from.min(self.entries.len())..]
    }

    /// Drops entries up to `index` once persisted, if the entry there still
    /// has `term` (else it was overwritten after the write began). The
    /// entries leave the tail into `persisted` when they continue it and it
    /// has room (else they are dropped).
    fn stable_to(&mut self, index: Index, term: Term, persisted: &mut Vec<Entry<N>>) -> bool {
        if index < self.offset || self.term(index) != Some(term) {
            return false;
        }
        let drop = usize::try_from(index + 1 - self.offset).expect("index is within the tail");
        if persisted.last().is_some_and(|e| e.index + 1 != self.offset) {
            persisted.clear();
        }
        if persisted.is_empty() && drop == self.entries.len() && drop <= APPLYING_MAX {
            // The whole tail is durable: its buffer becomes `persisted` (no
            // copy), and the tail gets one as large at its next append.
            self.reserve = self.entries.capacity();
            std::mem::swap(&mut self.entries, persisted);
        } else if persisted.len() + drop <= APPLYING_MAX {
            persisted.extend(self.entries.drain(..drop));
        } else {
            self.entries.drain(..drop);
        }
        self.offset = index + 1;
        self.in_progress = self.in_progress.max(self.offset);
        true
    }
}

/// The replicated log of one node.
#[derive(Debug, Clone)]
pub struct RaftLog<S: Storage> {
    storage: S,
    unstable: Unstable<S::NodeId>,
    /// Entries that left the tail once persisted and are not applied yet,
    /// consecutive: applying moves them out instead of reading (cloning)
    /// them back from storage. Always the log's own entries at their
    /// indexes: a truncation cuts them, a snapshot restore clears them.
    applying: Vec<Entry<S::NodeId>>,
    committed: Index,
    applied: Index,
}

impl<S: Storage> RaftLog<S> {
    /// The log over `storage`, committed and applied where storage says.
    pub fn new(storage: S) -> Self {
        let next = storage.last_index() + 1;
        let applied = storage.first_index() - 1;
        let committed = storage
            .initial_state()
            .hard_state
            .commit
            .clamp(applied, storage.last_index());
        Self {
            storage,
            unstable: Unstable {
                offset: next,
                entries: Vec::new(),
                in_progress: next,
                reserve: 0,
            },
            applying: Vec::new(),
            committed,
            applied,
        }
    }

    /// The stable storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Mutable access to the stable storage, for the application to persist
    /// into (for `MemStorage`, in tests and simulations).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// First available index.
    pub fn first_index(&self) -> Index {
        self.storage.first_index()
    }

    /// Last index, persisted or not.
    pub fn last_index(&self) -> Index {
        self.unstable
            .last_index()
            .unwrap_or_else(|| self.storage.last_index())
    }

    /// Highest index known committed (§5.3).
    pub fn committed(&self) -> Index {
        self.committed
    }

    /// Highest index applied to the state machine.
    pub fn applied(&self) -> Index {
        self.applied
    }

    /// Term of the entry at `index`, persisted or not (`index` may be the
    /// entry before the first available one).
    ///
    /// # Errors
    /// [`StorageError`] if `index` is compacted or past the end.
    pub fn term(&self, index: Index) -> Result<Term, StorageError> {
        if index >= self.unstable.offset {
            return self.unstable.term(index).ok_or(StorageError::Unavailable {
                index,
                last_index: self.last_index(),
            });
        }
        self.storage.term(index)
    }

    /// Term of the last entry (0 for an empty log).
    pub fn last_term(&self) -> Term {
        self.term(self.last_index())
            .expect("the last index is always readable: it is in the tail or in storage")
    }

    /// Whether the entry at `index` has term `term` (§5.3's consistency
    /// check on `prevLogIndex` / `prevLogTerm`).
    pub fn match_term(&self, index: Index, term: Term) -> bool {
        self.term(index) == Ok(term)
    }

    /// Whether a candidate whose log ends at (`last_index`, `last_term`) is
    /// at least as up to date as this log (§5.4.1): a later last term wins,
    /// and with equal terms the longer log does.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        let my_term = self.last_term();
        last_term > my_term || (last_term == my_term && last_index >= self.last_index())
    }

    /// The index of the first of `entries` that this log does not already
    /// hold with the same term: a conflict or the first new entry. `None`
    /// when every entry matches.
    pub fn find_conflict(&self, entries: &[Entry<S::NodeId>]) -> Option<Index> {
        entries
            .iter()
            .find(|e| !self.match_term(e.index, e.term))
            .map(|e| e.index)
    }

    /// The follower's side of AppendEntries (§5.3): if the log holds
    /// (`prev_index`, `prev_term`), appends `entries` after it, replacing a
    /// conflicting suffix, and advances the commit index to
    /// `min(leader_commit, index of last new entry)`. Returns that last
    /// index, or `None` when the consistency check fails (the leader must
    /// back off).
    ///
    /// # Errors
    /// [`LogError`] if the entries do not follow `prev_index` one by one or
    /// would overwrite a committed entry; the log is unchanged.
    pub fn maybe_append(
        &mut self,
        prev_index: Index,
        prev_term: Term,
        leader_commit: Index,
        entries: &[Entry<S::NodeId>],
    ) -> Result<Option<Index>, LogError> {
        let Some((conflict, last_new)) = self.plan_append(prev_index, prev_term, entries)? else {
            return Ok(None);
        };
        if let Some(from) = conflict {
            self.append(&entries[from..])?;
        }
        self.commit_to(leader_commit.min(last_new))?;
        Ok(Some(last_new))
    }

    /// [`maybe_append`](Self::maybe_append) taking the entries by value:
    /// the new suffix moves into the log instead of being cloned (one
    /// reference count per entry less on every follower's hot path).
    pub(crate) fn maybe_append_owned(
        &mut self,
        prev_index: Index,
        prev_term: Term,
        leader_commit: Index,
        mut entries: Vec<Entry<S::NodeId>>,
    ) -> Result<Option<Index>, LogError> {
        let Some((conflict, last_new)) = self.plan_append(prev_index, prev_term, &entries)? else {
            return Ok(None);
        };
        if let Some(from) = conflict {
            entries.drain(..from);
            self.append_owned(entries)?;
        }
        self.commit_to(leader_commit.min(last_new))?;
        Ok(Some(last_new))
    }

    /// What [`maybe_append`](Self::maybe_append) does with `entries`:
    /// `None` if the log does not hold (`prev_index`, `prev_term`), else the
    /// position in `entries` of the first one to append (`None`: all are
    /// already there) and the index of the last of them.
    fn plan_append(
        &self,
        prev_index: Index,
        prev_term: Term,
        entries: &[Entry<S::NodeId>],
    ) -> Result<Option<(Option<usize>, Index)>, LogError> {
        // Entries must be prev_index + 1, prev_index + 2, ... without
        // running past the index space.
        let fits = (entries.len() as u64) <= u64::MAX - prev_index;
        let contiguous = fits
            && entries
                .iter()
                .zip(1..)
                .all(|(entry, offset)| Some(entry.index) == prev_index.checked_add(offset));
        if !contiguous {
            return Err(LogError::NotContiguous {
                first: entries.first().map_or(prev_index, |e| e.index),
                last_index: self.last_index(),
            });
        }
        if !self.match_term(prev_index, prev_term) {
            return Ok(None);
        }
        let last_new = prev_index + entries.len() as Index;
        let conflict = self.find_conflict(entries).map(|conflict| {
            usize::try_from(conflict - prev_index - 1).expect("conflict is among entries")
        });
        Ok(Some((conflict, last_new)))
    }

    /// Appends `entries` (the leader's own, or a follower's new suffix),
    /// replacing any conflicting tail. Returns the new last index.
    ///
    /// # Errors
    /// [`LogError`] if they do not continue the log or would overwrite a
    /// committed entry; the log is unchanged.
    pub fn append(&mut self, entries: &[Entry<S::NodeId>]) -> Result<Index, LogError> {
        if let Some(after) = self.check_append(entries)? {
            self.truncate_from(after);
            self.unstable.entries.extend_from_slice(entries);
        }
        Ok(self.last_index())
    }

    /// [`append`](Self::append) taking the entries by value (a leader's
    /// proposal, a follower's new suffix): they move into the log instead
    /// of being cloned.
    pub(crate) fn append_owned<E>(&mut self, entries: E) -> Result<Index, LogError>
    where
        E: AsRef<[Entry<S::NodeId>]> + IntoIterator<Item = Entry<S::NodeId>>,
    {
        if let Some(after) = self.check_append(entries.as_ref())? {
            self.truncate_from(after);
            self.unstable.entries.extend(entries);
        }
        Ok(self.last_index())
    }

    /// Drops every entry from index `after` on, from the tail and from the
    /// persisted entries waiting to be applied, before new ones go there.
    fn truncate_from(&mut self, after: Index) {
        self.unstable.truncate_from(after);
        while self.applying.last().is_some_and(|e| e.index >= after) {
            self.applying.pop();
        }
    }

    /// Checks that `entries` may be appended; returns the index of the
    /// first, or `None` when there are none.
    fn check_append(&self, entries: &[Entry<S::NodeId>]) -> Result<Option<Index>, LogError> {
        let Some(first) = entries.first() else {
            return Ok(None);
        };
        let contiguous = entries
            .windows(2)
            .all(|w| w[0].index.checked_add(1) == Some(w[1].index));
        if !contiguous || first.index > self.last_index() + 1 || first.index == 0 {
            return Err(LogError::NotContiguous {
                first: first.index,
                last_index: self.last_index(),
            });
        }
        if first.index <= self.committed {
            return Err(LogError::WouldOverwriteCommitted {
                index: first.index,
                committed: self.committed,
            });
        }
        Ok(Some(first.index))
    }

    /// Advances the commit index to `index` (never backwards).
    ///
    /// # Errors
    /// [`LogError::CommitBeyondLog`] if `index` is past the last entry.
    pub fn commit_to(&mut self, index: Index) -> Result<(), LogError> {
        if index <= self.committed {
            return Ok(());
        }
        if index > self.last_index() {
            return Err(LogError::CommitBeyondLog {
                index,
                last_index: self.last_index(),
            });
        }
        self.committed = index;
        Ok(())
    }

    /// The leader's commit rule (§5.4.2): commits up to `index` only if the
    /// entry there is from `current_term`. Entries of earlier terms are never
    /// committed by counting replicas (Figure 8); they commit indirectly when
    /// a current-term entry after them does. Returns whether the index moved.
    pub fn maybe_commit(&mut self, index: Index, current_term: Term) -> bool {
        if index > self.committed && self.term(index) == Ok(current_term) {
            self.committed = index;
            true
        } else {
            false
        }
    }

    /// Entries in `[low, high)`, at most `max_bytes` (at least one entry).
    ///
    /// # Errors
    /// [`StorageError`] if the range is compacted or runs past the end.
    pub fn slice(
        &self,
        low: Index,
        high: Index,
        max_bytes: u64,
    ) -> Result<Vec<Entry<S::NodeId>>, StorageError> {
        if check_range(low, high, self.first_index(), self.last_index())? {
            return Ok(Vec::new());
        }
        let offset = self.unstable.offset;
        let mut out = if low < offset {
            self.storage.entries(low, high.min(offset), max_bytes)?
        } else {
            Vec::new()
        };
        let stable_complete = out.last().is_none_or(|e| e.index + 1 >= high.min(offset));
        if high > offset && stable_complete {
            let from = usize::try_from(low.max(offset) - offset).expect("within the tail");
            let to = usize::try_from(high - offset).expect("within the tail");
            out.extend_from_slice(&self.unstable.entries[from..to]);
            limit_size(&mut out, max_bytes);
        }
        Ok(out)
    }

    /// The highest index that may be applied: committed, and durable
    /// locally (acknowledged through [`on_persisted`](Self::on_persisted)),
    /// so applying never runs ahead of this node's own disk.
    pub fn applicable(&self) -> Index {
        self.committed.min(self.persisted())
    }

    /// Committed entries not yet applied, at most `max_bytes` (at least one
    /// if any). Mark them with [`applied_to`](Self::applied_to) once applied.
    ///
    /// # Errors
    /// [`StorageError`] if storage cannot supply them.
    pub fn next_to_apply(&self, max_bytes: u64) -> Result<Vec<Entry<S::NodeId>>, StorageError> {
        self.slice(self.applied + 1, self.applicable() + 1, max_bytes)
    }

    /// Records that entries up to `index` were applied. Ignores an index
    /// past [`applicable`](Self::applicable) or below the current one.
    pub fn applied_to(&mut self, index: Index) {
        if index > self.applied && index <= self.applicable() {
            self.applied = index;
        }
    }

    /// Whether entries were appended that have not been handed out to
    /// persist yet.
    pub fn has_to_persist(&self) -> bool {
        !self.unstable.to_persist().is_empty()
    }

    /// The entries the application must persist next; marks them in
    /// progress. Empty when nothing new was appended.
    pub fn take_to_persist(&mut self) -> Vec<Entry<S::NodeId>> {
        let out = self.unstable.to_persist().to_vec();
        self.unstable.in_progress = self.unstable.offset + self.unstable.entries.len() as Index;
        out
    }

    /// Entries up to (`index`, `term`) are durable. An acknowledgement whose
    /// entry was overwritten meanwhile (different term) is ignored. Returns
    /// whether the tail moved.
    pub fn on_persisted(&mut self, index: Index, term: Term) -> bool {
        self.unstable.stable_to(index, term, &mut self.applying)
    }

    /// [`next_to_apply`](Self::next_to_apply) up to `high` (exclusive),
    /// marked applied: the same entries, moved out of the persisted entries
    /// waiting to be applied when they hold the whole range (one reference
    /// count less per entry than reading them back from storage), else read
    /// as [`slice`](Self::slice) does.
    ///
    /// # Errors
    /// [`StorageError`] if storage cannot supply them.
    pub(crate) fn take_to_apply(
        &mut self,
        high: Index,
        max_bytes: u64,
    ) -> Result<Vec<Entry<S::NodeId>>, StorageError> {
        let low = self.applied + 1;
        let stale = self.applying.iter().take_while(|e| e.index < low).count();
        self.applying.drain(..stale);
        let count = usize::try_from(high.saturating_sub(low)).unwrap_or(usize::MAX);
        let held = count > 0
            && self.applying.first().is_some_and(|e| e.index == low)
            && self
                .applying
                .get(count - 1)
                .is_some_and(|e| e.index == high - 1);
        let entries = if held {
            // The same limit as `Storage::entries` and `slice`.
            let mut total = 0u64;
            let keep = self
                .applying
                .iter()
                .take(count)
                .position(|entry| {
                    total = total.saturating_add(entry.size());
                    total > max_bytes
                })
                .unwrap_or(count)
                .max(1);
            if keep == self.applying.len() {
                // The whole buffer becomes the output: no copy, and an idle
                // group keeps no buffer.
                std::mem::take(&mut self.applying)
            } else {
                self.applying.drain(..keep).collect()
            }
        } else {
            self.slice(low, high, max_bytes)?
        };
        if let Some(last) = entries.last() {
            self.applied_to(last.index);
        }
        Ok(entries)
    }

    /// Highest index whose entry is persisted locally (the stable log's end
    /// if the tail shadows none of it).
    pub fn persisted(&self) -> Index {
        self.unstable.offset - 1
    }

    /// The application installed a snapshot at (`index`, `term`) in
    /// storage (its log now starts after `index`): the tail not yet
    /// persisted keeps only entries that continue it (those after `index`
    /// when the tail held the snapshot's last entry, or that follow the
    /// stable log without a gap), and `index` counts as committed and
    /// applied.
    pub fn restore_snapshot(&mut self, index: Index, term: Term) {
        let stable_last = self.storage.last_index();
        self.applying = Vec::new();
        let unstable = &mut self.unstable;
        if unstable.offset <= index {
            if unstable.term(index) == Some(term) {
                unstable.stable_to(index, term, &mut Vec::new());
            } else {
                unstable.entries.clear();
                unstable.offset = stable_last + 1;
                unstable.in_progress = unstable.offset;
            }
        } else if unstable.offset > stable_last + 1 {
            // Storage dropped the log that the tail continued.
            unstable.entries.clear();
            unstable.offset = stable_last + 1;
            unstable.in_progress = unstable.offset;
        }
        self.committed = self.committed.max(index);
        self.applied = self.applied.max(index);
    }

    /// For fast back-off (§5.3, "the follower can include the term of the
    /// conflicting entry and the first index it stores for that term"): the
    /// largest index at or below `index` whose term is at most `term`, with
    /// that term. The leader can jump there instead of probing one by one.
    pub fn find_conflict_by_term(&self, index: Index, term: Term) -> (Index, Term) {
        let mut at = index.min(self.last_index());
        loop {
            match self.term(at) {
                Ok(t) if t <= term => return (at, t),
                Ok(_) if at > 0 => at -= 1,
                // Compacted (or index 0): the boundary is the best hint.
                _ => return (at, 0),
            }
        }
    }
}
