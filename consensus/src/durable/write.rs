//! Writing: staging batches, group commit, suffix truncation (§5.3),
//! snapshots and compaction (§7), and the file operations under them.

use std::fs::File;
use std::io;

use super::background::{Request, SyncTicket, Syncer};
use super::codec::{self, Meta, StateRecord};
use super::frame::{self, FRAME_HEADER};
use super::{DiskStorage, MAX_INDEX, STATE_FILE, STATE_TMP, Segment, WriteError, segment_name};
use crate::NodeId;
use crate::entry::{Entry, HardState, Index};
use crate::output::{Persist, PersistId};
use crate::snapshot::SnapshotMeta;
use crate::storage::{Storage, StorageError};

use crate::codec::IdCodec;

/// The state file is rewritten (into a new file renamed over it) once it
/// grows past this.
pub(super) const STATE_REWRITE_BYTES: u64 = 1 << 20;

impl<N: NodeId + IdCodec> DiskStorage<N> {
    /// Stages a [`Persist`] batch: its entries are written to the active
    /// segment (an entry at an index already stored first cuts the log
    /// there, durably: see the crate documentation) and its hard state is
    /// kept for the next [`sync`](Self::sync). Both are readable through
    /// [`Storage`] at once; neither is durable before `sync` returns.
    /// Entries at or below the compaction point are skipped (a batch
    /// handed out before a snapshot was installed may land after it).
    ///
    /// # Errors
    /// [`WriteError::Storage`] (`NotContiguous`),
    /// [`WriteError::EntryTooLarge`] or [`WriteError::IndexTooLarge`] (an
    /// entry or the commit index past 2^63 - 1) and nothing changed;
    /// [`WriteError::Io`] / [`WriteError::Failed`] as for every write.
    pub fn stage(&mut self, persist: &Persist<HardState<N>, N>) -> Result<(), WriteError> {
        if let Some(hard_state) = &persist.hard_state {
            check_index(hard_state.commit)?;
        }
        self.stage_entries(&persist.entries)?;
        if let Some(hard_state) = &persist.hard_state {
            self.stage_hard_state(hard_state.clone());
        }
        self.staged_id = self.staged_id.max(Some(persist.id));
        Ok(())
    }

    /// Makes everything staged durable: the entries (one fsync of the
    /// active segment, and of the directory if a segment was created),
    /// then the hard state (one append to the state file and its fsync),
    /// in that order, as etcd does. Returns the highest batch id staged
    /// since the last sync (or [`sync_in_background`](Self::sync_in_background)),
    /// now durable (`None` if none was staged): call `on_persisted` with
    /// it. Waits first for every background sync requested before (so
    /// after `sync` returns, nothing staged or requested is left).
    ///
    /// # Errors
    /// [`WriteError::Io`]: the storage has failed (see there);
    /// [`WriteError::Failed`].
    pub fn sync(&mut self) -> Result<Option<PersistId>, WriteError> {
        self.check_failed()?;
        self.wait_background()?;
        let result = self.sync_inner();
        self.fail_on_error(result)?;
        Ok(self.staged_id.take())
    }

    fn sync_inner(&mut self) -> io::Result<()> {
        let synced = self.segment_dirty || self.dir_dirty || self.staged_hard_state.is_some();
        if self.segment_dirty {
            self.active().file.sync_data()?;
            self.counters.count_fsyncs(1);
            self.segment_dirty = false;
        }
        if self.dir_dirty {
            self.sync_dir()?;
        }
        if let Some(hard_state) = self.staged_hard_state.take() {
            self.write_state(&StateRecord::HardState(hard_state))?;
        }
        if synced {
            self.counters.count_sync();
        }
        Ok(())
    }

    /// Starts making everything staged durable on the storage's syncer
    /// thread (started on the first call), and returns at once with a
    /// [`SyncTicket`] that resolves, with the highest batch id staged
    /// before the call, once it is durable: acknowledge that id then, not
    /// before. Meanwhile the caller may stage further batches (they are
    /// readable at once, as always) and request again: requests made while
    /// a sync runs are covered together by the next one (group commit
    /// across calls), and tickets resolve in request order.
    ///
    /// What it writes, and in which order it becomes durable:
    /// - The entries' bytes are in the segment already (written by
    ///   `stage`); the syncer fsyncs the active segment, then the
    ///   directory if a segment was created. A segment sealed meanwhile
    ///   was fsynced when sealed; a conflicting suffix cut by a later
    ///   `stage` was cut durably before anything replaced it, so a ticket
    ///   resolving after the cut vouches only for what is still in the log
    ///   (the node ignores an acknowledgement of entries it no longer
    ///   holds, by term).
    /// - A staged hard state that changes only the commit index is
    ///   appended to the state file now and not fsynced at all: the
    ///   commit index is lazy (nothing waits for it to be durable, and a
    ///   restart may find an older one), and it becomes durable with the
    ///   next record that must be (a term or vote change fsyncs it first,
    ///   so only commit-only records are ever unsynced before a synced
    ///   one), or when the kernel writes it back. It may also land before
    ///   the unsynced entries of earlier batches: this is the one place
    ///   where the entries-before-hard-state order is relaxed. It is safe
    ///   because the commit index a [`RaftNode`](crate::RaftNode) hands out
    ///   covers only entries it was told are durable before (never those
    ///   of a batch not yet acknowledged), so it needs no order with them.
    ///   A caller other than `RaftNode` MUST keep that rule too.
    /// - A staged hard state that changes the term or the vote (an
    ///   election; rare) is synced here, in the caller's thread, in etcd's
    ///   order (after waiting for the syncs already requested, then
    ///   entries, then the hard state), and the ticket comes back resolved;
    ///   so is one whose record would make the state file be rewritten.
    ///
    /// Dropping the storage with a sync requested and not started leaves it
    /// to the kernel, as at a crash: only what tickets resolved for is
    /// promised.
    ///
    /// # Errors
    /// [`WriteError::Io`]: the storage has failed (see there), or the
    /// syncer thread could not be started (nothing changed then);
    /// [`WriteError::Failed`]. A background sync that fails resolves its
    /// ticket (and every later one) with the error, and the storage then
    /// refuses every further write.
    pub fn sync_in_background(&mut self) -> Result<SyncTicket, WriteError> {
        self.check_failed()?;
        let record = self
            .staged_hard_state
            .as_ref()
            .map(|h| state_frame(&StateRecord::HardState(h.clone())));
        let ordered = self.staged_hard_state.as_ref().is_some_and(|h| {
            h.term != self.written_hard_state.term || h.vote != self.written_hard_state.vote
        });
        let rewrite = record
            .as_ref()
            .is_some_and(|r| self.state_len + r.len() as u64 > STATE_REWRITE_BYTES);
        if ordered || rewrite {
            return self.sync().map(SyncTicket::ready);
        }
        if self.syncer.is_none() {
            self.syncer = Some(Syncer::start(self.counters.clone())?);
        }
        let result = self.background_request(record);
        let request = self.fail_on_error(result)?;
        Ok(self
            .syncer
            .as_ref()
            .expect("started above")
            .request(request))
    }

    /// Appends the commit-only hard state record and gathers what the
    /// syncer must fsync, with file handles of its own.
    fn background_request(&mut self, record: Option<Vec<u8>>) -> io::Result<Request> {
        let mut request = Request::default();
        if let (Some(record), Some(hard_state)) = (record, self.staged_hard_state.take()) {
            // Written, not fsynced: nothing waits for a commit index to be
            // durable (the node's commit index is lazy; a restart may find
            // an older one). It becomes durable with the next record that
            // is, or when the kernel writes it back.
            write_all_at(&self.state, &record, self.state_len)?;
            self.state_len += record.len() as u64;
            self.written_hard_state = hard_state;
            self.state_unsynced = true;
        }
        if self.segment_dirty {
            request.segment = Some(self.active().file.try_clone()?);
            self.segment_dirty = false;
        }
        if self.dir_dirty {
            request.dir = Some(self.dir.clone());
            self.dir_dirty = false;
        }
        request.id = self.staged_id.take();
        Ok(request)
    }

    /// Waits for every background sync requested so far.
    fn wait_background(&mut self) -> Result<(), WriteError> {
        if let Some(syncer) = &self.syncer {
            let result = syncer.wait_idle();
            self.fail_on_error(result)?;
        }
        Ok(())
    }

    /// [`stage`](Self::stage) and [`sync`](Self::sync) in one call; returns
    /// the id to acknowledge.
    ///
    /// # Errors
    /// As `stage` and `sync`.
    pub fn write(
        &mut self,
        persist: &Persist<HardState<N>, N>,
    ) -> Result<Option<PersistId>, WriteError> {
        self.stage(persist)?;
        self.sync()
    }

    /// Appends `entries` durably (staged and synced), as
    /// [`MemStorage::append`](crate::MemStorage::append) does in memory.
    ///
    /// # Errors
    /// As [`stage`](Self::stage) and [`sync`](Self::sync).
    pub fn append(&mut self, entries: &[Entry<N>]) -> Result<(), WriteError> {
        self.stage_entries(entries)?;
        self.sync().map(drop)
    }

    /// Records a hard state durably (staged and synced).
    ///
    /// # Errors
    /// [`WriteError::IndexTooLarge`] for a commit index past 2^63 - 1, and
    /// nothing changed; as [`sync`](Self::sync).
    pub fn set_hard_state(&mut self, hard_state: HardState<N>) -> Result<(), WriteError> {
        self.check_failed()?;
        check_index(hard_state.commit)?;
        self.stage_hard_state(hard_state);
        self.sync().map(drop)
    }

    /// Records a snapshot the application took at an applied index and
    /// made durable (its bytes are the application's; only the meta is
    /// stored), as [`MemStorage::set_snapshot`](crate::MemStorage::set_snapshot).
    /// Durable on return. An older snapshot than the one recorded is
    /// ignored.
    ///
    /// # Errors
    /// [`WriteError::Unsynced`] with writes staged;
    /// [`WriteError::Storage`] (`SnapshotMismatch`) if the log does not
    /// hold the snapshot's entry; nothing changed. [`WriteError::Io`].
    pub fn set_snapshot(&mut self, meta: SnapshotMeta<N>) -> Result<(), WriteError> {
        self.check_quiet()?;
        if self
            .meta
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
            }
            .into());
        }
        let mut next = self.meta.clone();
        next.membership.clone_from(&meta.membership);
        next.snapshot = Some(meta);
        let result = self.write_state(&StateRecord::Meta(next.clone()));
        self.fail_on_error(result)?;
        self.meta = next;
        Ok(())
    }

    /// Discards entries up to and including `index`, as
    /// [`MemStorage::compact`](crate::MemStorage::compact): the new
    /// compaction point is made durable first, then every sealed segment
    /// wholly at or below it is deleted (space comes back a segment at a
    /// time; entries of a segment that straddles the point stay on disk,
    /// unreadable). A no-op at or below the current point.
    ///
    /// # Errors
    /// [`WriteError::Unsynced`] with writes staged;
    /// [`WriteError::Storage`]: `NotSnapshotted` past the latest snapshot,
    /// `Unavailable` past the log; nothing changed. [`WriteError::Io`].
    pub fn compact(&mut self, index: Index) -> Result<(), WriteError> {
        self.check_quiet()?;
        if index <= self.meta.compacted.0 {
            return Ok(());
        }
        let snapshot = self.meta.snapshot.as_ref().map_or(0, |s| s.index);
        if index > snapshot {
            return Err(StorageError::NotSnapshotted { index, snapshot }.into());
        }
        let term = self.term(index)?;
        let mut next = self.meta.clone();
        next.compacted = (index, term);
        let result = self.write_state(&StateRecord::Meta(next.clone()));
        self.fail_on_error(result)?;
        self.meta = next;
        self.trim_cache_front();
        let result = self.remove_compacted_segments().and_then(|removed| {
            if removed > 0 {
                self.sync_dir()?;
            }
            Ok(())
        });
        self.fail_on_error(result)
    }

    /// Installs a snapshot received from the leader, as
    /// [`MemStorage::apply_snapshot`](crate::MemStorage::apply_snapshot):
    /// the meta (compaction point, membership, snapshot) is made durable
    /// first; then the log up to the snapshot goes, and the entries after
    /// it stay only if the log holds the snapshot's last entry (§7). The
    /// commit index becomes at least the snapshot's. Durable on return;
    /// call `on_snapshot_restored` after. An older snapshot than the one
    /// recorded is ignored.
    ///
    /// # Errors
    /// [`WriteError::Unsynced`] with writes staged (the snapshot must
    /// follow every earlier batch), [`WriteError::IndexTooLarge`] for a
    /// snapshot at 2^63 - 1 or past it (its next entry would be past what
    /// the log holds); nothing changed. [`WriteError::Io`].
    pub fn apply_snapshot(&mut self, meta: SnapshotMeta<N>) -> Result<(), WriteError> {
        self.check_quiet()?;
        let newer = self
            .meta
            .snapshot
            .as_ref()
            .is_none_or(|s| s.index < meta.index);
        if !newer || meta.index <= self.meta.compacted.0 {
            return Ok(());
        }
        // The log goes on at the snapshot's index + 1.
        check_index(meta.index.saturating_add(1))?;
        let keep = self.term(meta.index) == Ok(meta.term);
        let next = Meta {
            compacted: (meta.index, meta.term),
            membership: meta.membership.clone(),
            snapshot: Some(meta),
        };
        let result = self.write_state(&StateRecord::Meta(next.clone()));
        self.fail_on_error(result)?;
        let index = next.compacted.0;
        self.meta = next;
        self.hard_state.commit = self.hard_state.commit.max(index);
        let result = if keep {
            self.trim_cache_front();
            self.remove_compacted_segments().map(drop)
        } else {
            self.cache.clear();
            self.cache_size = 0;
            // The deletions are durable before the new segment exists, so
            // a crash never leaves it beside the old ones.
            self.remove_segments_from(0)
                .and_then(|_| self.sync_dir())
                .and_then(|()| self.create_segment(index + 1))
        };
        let result = result.and_then(|()| self.sync_dir());
        self.fail_on_error(result)
    }

    fn check_failed(&self) -> Result<(), WriteError> {
        if self.is_failed() {
            return Err(WriteError::Failed);
        }
        Ok(())
    }

    /// Snapshots and compaction must follow every staged batch, and every
    /// background sync.
    fn check_quiet(&self) -> Result<(), WriteError> {
        self.check_failed()?;
        let staged = self.staged_id.is_some()
            || self.staged_hard_state.is_some()
            || self.segment_dirty
            || self.dir_dirty
            || self.syncer.as_ref().is_some_and(|s| !s.is_idle());
        if staged {
            return Err(WriteError::Unsynced);
        }
        Ok(())
    }

    fn fail_on_error<T>(&mut self, result: io::Result<T>) -> Result<T, WriteError> {
        result.map_err(|error| {
            self.failed = true;
            // A write may have stopped between updating the segments and
            // the cache: read everything back from the files from now on.
            self.cache.clear();
            self.cache_size = 0;
            WriteError::Io(error)
        })
    }

    fn stage_hard_state(&mut self, mut hard_state: HardState<N>) {
        let floor = self.meta.snapshot.as_ref().map_or(0, |s| s.index);
        hard_state.commit = hard_state.commit.max(floor);
        self.hard_state = hard_state.clone();
        self.staged_hard_state = Some(hard_state);
    }

    fn stage_entries(&mut self, entries: &[Entry<N>]) -> Result<(), WriteError> {
        self.check_failed()?;
        let contiguous = entries
            .windows(2)
            .all(|w| w[0].index.checked_add(1) == Some(w[1].index));
        let zero = entries.first().is_some_and(|e| e.index == 0);
        let skip = entries
            .iter()
            .take_while(|e| e.index <= self.meta.compacted.0)
            .count();
        let entries = &entries[skip..];
        if let Some(last) = entries.last() {
            check_index(last.index)?;
        }
        let first = entries.first().map_or(0, |e| e.index);
        if !contiguous || zero || first > self.last_index() + 1 {
            return Err(StorageError::NotContiguous {
                first,
                first_index: self.first_index(),
                last_index: self.last_index(),
            }
            .into());
        }
        if entries.is_empty() {
            return Ok(());
        }
        // Encode everything before touching the disk, so a refusal changes
        // nothing.
        let mut frames = Vec::with_capacity(entries.len());
        let mut payload = Vec::new();
        for entry in entries {
            payload.clear();
            codec::encode_entry(&mut payload, entry);
            if payload.len() as u64 > self.config.max_entry_bytes {
                return Err(WriteError::EntryTooLarge {
                    index: entry.index,
                    len: payload.len() as u64,
                    max: self.config.max_entry_bytes,
                });
            }
            let mut framed = Vec::with_capacity(FRAME_HEADER + payload.len());
            frame::put_frame(&mut framed, &payload);
            frames.push(framed);
        }
        let result = self.write_frames(entries, &frames);
        self.fail_on_error(result)
    }

    fn write_frames(&mut self, entries: &[Entry<N>], frames: &[Vec<u8>]) -> io::Result<()> {
        let first = entries[0].index;
        if first <= self.last_index() {
            self.truncate_from(first)?;
        }
        let mut pending = Vec::new();
        let mut positions = Vec::new();
        for (entry, framed) in entries.iter().zip(frames) {
            let active = self.active();
            let size = active.len + pending.len() as u64;
            let holds = !active.entries.is_empty() || !pending.is_empty();
            if size >= self.config.segment_bytes && holds {
                self.flush(&mut pending, &mut positions)?;
                self.roll(entry.index)?;
            }
            let at = self.active().len + pending.len() as u64;
            positions.push((at, entry.term));
            pending.extend_from_slice(framed);
        }
        self.flush(&mut pending, &mut positions)?;
        for entry in entries {
            self.cache_size += entry.size();
            self.cache.push_back(entry.clone());
        }
        while self.cache_size > self.config.cache_bytes {
            let Some(old) = self.cache.pop_front() else {
                break;
            };
            self.cache_size -= old.size();
        }
        Ok(())
    }

    /// Writes `pending` at the end of the active segment and records the
    /// entries' positions.
    fn flush(&mut self, pending: &mut Vec<u8>, positions: &mut Vec<(u64, u64)>) -> io::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let active = self.segments.last_mut().expect("never empty");
        write_all_at(&active.file, pending, active.len)?;
        active.len += pending.len() as u64;
        active.entries.append(positions);
        pending.clear();
        self.segment_dirty = true;
        Ok(())
    }

    /// Seals the active segment (fsynced: a sealed segment is never torn)
    /// and starts a new one at `base`.
    fn roll(&mut self, base: Index) -> io::Result<()> {
        self.active().file.sync_data()?;
        self.counters.count_fsyncs(1);
        self.segment_dirty = false;
        self.create_segment(base)
    }

    /// Cuts the log before `index` (§5.3: a new leader's entries replace a
    /// conflicting suffix) durably, before anything is written in its
    /// place: later segments are deleted (newest first, so a crash leaves
    /// a contiguous log), then the segment holding `index` is cut and
    /// fsynced. A crash after the cut and before the new entries are
    /// durable leaves the log ending at `index - 1`.
    fn truncate_from(&mut self, index: Index) -> io::Result<()> {
        let keep = self.segments.partition_point(|s| s.base <= index).max(1);
        if self.remove_segments_from(keep)? > 0 {
            self.sync_dir()?;
        }
        let segment = self.segments.last_mut().expect("never empty");
        let at = usize::try_from(index.saturating_sub(segment.base)).unwrap_or(usize::MAX);
        if let Some(&(position, _)) = segment.entries.get(at) {
            segment.file.set_len(position)?;
            segment.file.sync_data()?;
            self.counters.count_fsyncs(1);
            segment.len = position;
            segment.entries.truncate(at);
        }
        while self.cache.back().is_some_and(|e| e.index >= index) {
            let old = self.cache.pop_back().expect("checked");
            self.cache_size -= old.size();
        }
        Ok(())
    }

    fn trim_cache_front(&mut self) {
        let compacted = self.meta.compacted.0;
        while self.cache.front().is_some_and(|e| e.index <= compacted) {
            let old = self.cache.pop_front().expect("checked");
            self.cache_size -= old.size();
        }
    }

    pub(super) fn active(&self) -> &Segment {
        self.segments.last().expect("never empty")
    }

    /// Deletes the segments from position `from` on, newest first. Returns
    /// how many. The caller syncs the directory.
    pub(super) fn remove_segments_from(&mut self, from: usize) -> io::Result<usize> {
        let mut removed = 0;
        while self.segments.len() > from {
            let segment = self.segments.last().expect("longer than from");
            let path = self.dir.join(segment_name(segment.base));
            remove_file(&path)?;
            self.segments.pop();
            removed += 1;
        }
        Ok(removed)
    }

    /// Deletes sealed segments wholly at or below the compaction point,
    /// oldest first (a crash leaves a contiguous log). Returns how many.
    pub(super) fn remove_compacted_segments(&mut self) -> io::Result<usize> {
        let compacted = self.meta.compacted.0;
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[0].end() <= compacted + 1 {
            let path = self.dir.join(segment_name(self.segments[0].base));
            remove_file(&path)?;
            self.segments.remove(0);
            removed += 1;
        }
        Ok(removed)
    }

    /// Creates an empty active segment at `base`.
    pub(super) fn create_segment(&mut self, base: Index) -> io::Result<()> {
        let path = self.dir.join(segment_name(base));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        self.segments.push(Segment {
            base,
            file,
            len: 0,
            entries: Vec::new(),
        });
        self.dir_dirty = true;
        Ok(())
    }

    /// Makes creations, deletions and renames in the directory durable.
    pub(super) fn sync_dir(&mut self) -> io::Result<()> {
        #[cfg(unix)]
        File::open(&self.dir)?.sync_all()?;
        self.counters.count_fsyncs(1);
        self.dir_dirty = false;
        Ok(())
    }

    /// Appends a record to the state file and fsyncs it; past
    /// `STATE_REWRITE_BYTES`, writes the latest hard state and meta to a
    /// new file instead and renames it over the old one (fsyncing the file
    /// and then the directory).
    pub(super) fn write_state(&mut self, record: &StateRecord<N>) -> io::Result<()> {
        let framed = state_frame(record);
        if let StateRecord::HardState(h) = record {
            self.written_hard_state = h.clone();
        }
        if self.state_len + framed.len() as u64 <= STATE_REWRITE_BYTES {
            if self.state_unsynced {
                // The barrier: commit-only records before this one are
                // durable before it is written (see `state_unsynced`).
                self.state.sync_data()?;
                self.counters.count_fsyncs(1);
            }
            write_all_at(&self.state, &framed, self.state_len)?;
            self.state.sync_data()?;
            self.counters.count_fsyncs(1);
            self.state_len += framed.len() as u64;
            self.state_unsynced = false;
            return Ok(());
        }
        let mut payload = Vec::new();
        let (hard_state, meta) = match record {
            StateRecord::HardState(h) => (h.clone(), self.meta.clone()),
            StateRecord::Meta(m) => (self.durable_hard_state(), m.clone()),
        };
        let mut bytes = Vec::new();
        for record in [StateRecord::HardState(hard_state), StateRecord::Meta(meta)] {
            payload.clear();
            codec::encode_state(&mut payload, &record);
            frame::put_frame(&mut bytes, &payload);
        }
        let tmp = self.dir.join(STATE_TMP);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        write_all_at(&file, &bytes, 0)?;
        file.sync_data()?;
        self.counters.count_fsyncs(1);
        std::fs::rename(&tmp, self.dir.join(STATE_FILE))?;
        self.sync_dir()?;
        self.state = file;
        self.state_len = bytes.len() as u64;
        self.state_unsynced = false;
        Ok(())
    }

    /// The hard state as durable now (the staged one is not yet).
    fn durable_hard_state(&self) -> HardState<N> {
        // Snapshots and compaction write the meta only with nothing
        // staged, so the latest hard state is the durable one.
        debug_assert!(self.staged_hard_state.is_none());
        self.hard_state.clone()
    }
}

/// Refuses an index past what the files hold ([`MAX_INDEX`]).
fn check_index(index: Index) -> Result<(), WriteError> {
    if index > MAX_INDEX {
        return Err(WriteError::IndexTooLarge { index });
    }
    Ok(())
}

/// A state record, framed.
fn state_frame<N: NodeId + IdCodec>(record: &StateRecord<N>) -> Vec<u8> {
    let mut payload = Vec::new();
    codec::encode_state(&mut payload, record);
    let mut framed = Vec::new();
    frame::put_frame(&mut framed, &payload);
    framed
}

fn remove_file(path: &std::path::Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], pos: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, pos)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut pos: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, buf, pos) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
