//! A durable [`Storage`] on the local file system (feature `durable`):
//! [`DiskStorage`]. See [Durable storage](crate#durable-storage-feature-durable)
//! in the crate documentation for the contract and the file format; in
//! short:
//!
//! - [`DiskStorage::stage`] writes a [`Persist`](crate::Persist) batch
//!   (entries to the segment files, the hard state kept for the sync) and
//!   makes it readable at once; [`DiskStorage::sync`] makes everything
//!   staged durable, entries first and then the hard state, with one
//!   fsync per file touched (group commit), and returns the highest batch
//!   id it covers: pass it to `on_persisted`. [`DiskStorage::write`] is
//!   both in one call. [`DiskStorage::sync_in_background`] leaves the
//!   fsyncs to the storage's syncer thread and returns a [`SyncTicket`]
//!   (a future) at once, so the caller stages the next batches while the
//!   disk works; requests made while a sync runs share the next one.
//! - Snapshots and compaction ([`DiskStorage::set_snapshot`],
//!   [`DiskStorage::compact`], [`DiskStorage::apply_snapshot`]) are durable
//!   when they return; call them with nothing staged.
//! - [`DiskStorage::open`] recovers: a torn write at the end of the active
//!   segment or of the state file (with no intact record after it, but the
//!   state file's unsynced commit-only hard states) is cut; damage anywhere
//!   else is refused with [`OpenError`], never dropped.
//!
//! This module does I/O (it is the one part of the crate that does); the
//! node stays sans-IO and sees only the [`Storage`] trait.

mod background;
mod codec;
mod error;
mod frame;
mod write;

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub use self::background::{SyncCounters, SyncTicket};
pub use self::error::{DiskStorageConfig, DiskStorageConfigError, OpenError, WriteError};
use crate::codec::IdCodec;

use self::codec::{Meta, StateRecord};
use self::frame::Frame;
use crate::NodeId;
use crate::entry::{Entry, HardState, Index, Term};
use crate::membership::Membership;
use crate::output::PersistId;
use crate::snapshot::SnapshotMeta;
use crate::storage::{InitialState, Storage, StorageError, check_range};

/// The file of hard states and metas.
const STATE_FILE: &str = "state";
/// Where the state file is rewritten before it replaces the old one.
const STATE_TMP: &str = "state.tmp";
/// The file whose lock marks the directory in use.
const LOCK_FILE: &str = "lock";
/// Suffix of segment files, named by their first index in 20 digits.
const SEGMENT_SUFFIX: &str = ".seg";

fn segment_name(base: Index) -> String {
    format!("{base:020}{SEGMENT_SUFFIX}")
}

/// The highest index the files may name (a compaction point, a snapshot,
/// a commit index, a segment's base): Kafka's offset range, which leaves
/// room for the `index + 1` of every index computation. A record past it
/// is refused at open; no log of ours reaches it.
const MAX_INDEX: Index = i64::MAX as Index;

fn parse_segment_name(name: &str) -> Option<Index> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Indexes past MAX_INDEX are no name of ours.
    digits
        .parse()
        .ok()
        .filter(|&base: &Index| base <= MAX_INDEX)
}

/// One segment file: consecutive entries from `base`.
#[derive(Debug)]
struct Segment {
    base: Index,
    file: File,
    /// Bytes written (the end of the last frame).
    len: u64,
    /// For entry `base + i`: where its frame starts, and its term.
    entries: Vec<(u64, Term)>,
}

impl Segment {
    /// One past the last index held.
    fn end(&self) -> Index {
        self.base + self.entries.len() as Index
    }
}

/// What [`DiskStorage::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Bytes of a torn write cut from the end of the active segment.
    pub torn_segment_bytes: u64,
    /// Bytes of a torn write cut from the end of the state file.
    pub torn_state_bytes: u64,
    /// Segment files deleted because an interrupted compaction or snapshot
    /// install left them behind.
    pub removed_segments: usize,
    /// Segment files in use after opening.
    pub segments: usize,
    /// Intact entries dropped from the active segment because damage came
    /// before them, past the stored commit index: what a power failure
    /// leaves when the disk wrote an unsynced tail out of order (never
    /// acknowledged). Damage at or below the stored commit index is
    /// refused instead ([`OpenError::Corrupt`]).
    pub entries_cut_after_damage: usize,
}

/// A durable [`Storage`]: the Raft log in checksummed segment files, the
/// hard state and the log's meta (compaction point, membership, latest
/// snapshot) in a checksummed state file.
///
/// ```
/// use dsys_consensus::durable::{DiskStorage, DiskStorageConfig};
/// use dsys_consensus::{Entry, HardState, Membership, Persist, Storage};
///
/// let dir = std::env::temp_dir().join(format!("dsys-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let bootstrap = Membership::from_voters([1u64, 2, 3]);
/// let mut storage = DiskStorage::open(&dir, bootstrap.clone(), DiskStorageConfig::default())?;
/// // What the node hands out as `Output::Persist`: stage it, sync once for
/// // several batches (group commit), acknowledge the id sync returns.
/// storage.stage(&Persist {
///     id: 1,
///     hard_state: Some(HardState { term: 1, vote: Some(1), commit: 0 }),
///     entries: vec![Entry::new(1, 1, "x=1")],
/// })?;
/// storage.stage(&Persist { id: 2, hard_state: None, entries: vec![Entry::new(1, 2, "y=2")] })?;
/// assert_eq!(storage.sync()?, Some(2)); // node.on_persisted(2)
/// drop(storage);
///
/// let storage = DiskStorage::<u64>::open(&dir, bootstrap, DiskStorageConfig::default())?;
/// assert_eq!(storage.last_index(), 2);
/// assert_eq!(storage.initial_state().hard_state.vote, Some(1));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DiskStorage<N> {
    dir: PathBuf,
    config: DiskStorageConfig,
    /// Never empty; the last is the active segment, the only one written.
    segments: Vec<Segment>,
    /// The durable meta.
    meta: Meta<N>,
    /// The latest hard state, staged or durable.
    hard_state: HardState<N>,
    /// The newest entries, ending at `last_index()`, at most
    /// `config.cache_bytes` of them.
    cache: VecDeque<Entry<N>>,
    cache_size: u64,
    /// The state file, appended to, and its length.
    state: File,
    state_len: u64,
    /// Commit-only hard states were appended to the state file and not
    /// fsynced (the commit index is lazy): the next record that must be
    /// durable in order (a term or vote) first fsyncs them, so that
    /// nothing but commit-only records is ever unsynced before a synced
    /// one (what open relies on to tell a hole from damage).
    state_unsynced: bool,
    /// Staged and not yet synced: the highest batch id, the hard state, and
    /// whether the active segment has unsynced bytes or the directory
    /// unsynced changes.
    staged_id: Option<PersistId>,
    staged_hard_state: Option<HardState<N>>,
    segment_dirty: bool,
    dir_dirty: bool,
    /// A write failed: what is on disk is unknown until reopened.
    failed: bool,
    recovery: Recovery,
    /// The latest hard state written to the state file (durable, or
    /// appended and being synced in the background).
    written_hard_state: HardState<N>,
    /// The background syncer, started by the first
    /// [`sync_in_background`](Self::sync_in_background).
    syncer: Option<background::Syncer>,
    counters: SyncCounters,
    /// The lock on the directory, held until the storage is dropped. Last,
    /// so it is released only after the syncer has stopped.
    _lock: File,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl<N: NodeId + IdCodec> DiskStorage<N> {
    /// Opens the log in `dir`, creating the directory and an empty log for
    /// a cluster bootstrapped with `bootstrap` if there is none (an empty
    /// membership for a node that will join an existing cluster).
    /// `bootstrap` is ignored when the directory already holds a log: the
    /// stored membership wins.
    ///
    /// Recovery: a torn write at the end of the active segment or of the
    /// state file is cut off (it was never acknowledged: a sync returns
    /// only once the bytes are durable), if no intact record written after
    /// a sync follows it; an interrupted compaction or snapshot install is
    /// finished. Everything else that fails its checks is refused.
    ///
    /// # Errors
    /// [`OpenError::Config`] for a bad config, [`OpenError::Io`] when the
    /// file system fails, [`OpenError::Corrupt`] / [`OpenError::Inconsistent`]
    /// for damaged files (never a panic, whatever the bytes).
    pub fn open(
        dir: impl AsRef<Path>,
        bootstrap: Membership<N>,
        config: DiskStorageConfig,
    ) -> Result<Self, OpenError> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let lock = lock_dir(&dir)?;
        let mut recovery = Recovery::default();
        let mut bases = Vec::new();
        for item in std::fs::read_dir(&dir).map_err(io_at(&dir))? {
            let item = item.map_err(io_at(&dir))?;
            let Ok(name) = item.file_name().into_string() else {
                continue;
            };
            if name == STATE_TMP {
                let path = dir.join(&name);
                std::fs::remove_file(&path).map_err(io_at(&path))?;
            } else if let Some(base) = parse_segment_name(&name) {
                bases.push(base);
            }
        }
        bases.sort_unstable();

        let state_path = dir.join(STATE_FILE);
        let (state, state_len, hard_state, meta) =
            load_state::<N>(&state_path, &bootstrap, &mut recovery)?;
        let durable_commit = hard_state.as_ref().map_or(0, |h| h.commit);
        let mut segments = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            let active = i + 1 == bases.len();
            segments.push(load_segment::<N>(
                &dir,
                base,
                active,
                durable_commit,
                &config,
                &mut recovery,
            )?);
        }
        let hard_state = hard_state.unwrap_or_default();
        let mut storage = Self {
            dir,
            config,
            segments,
            meta: meta.clone().unwrap_or(Meta {
                compacted: (0, 0),
                membership: bootstrap,
                snapshot: None,
            }),
            written_hard_state: hard_state.clone(),
            hard_state,
            cache: VecDeque::new(),
            cache_size: 0,
            state,
            state_len,
            state_unsynced: false,
            staged_id: None,
            staged_hard_state: None,
            segment_dirty: false,
            dir_dirty: false,
            failed: false,
            recovery,
            syncer: None,
            counters: SyncCounters::default(),
            _lock: lock,
        };
        if meta.is_none() {
            if storage.segments.iter().any(|s| s.len > 0) {
                return Err(OpenError::Inconsistent {
                    index: 0,
                    reason: "segments without a state file",
                });
            }
            // A new log: its meta is durable before any entry.
            let record = StateRecord::Meta(storage.meta.clone());
            storage
                .write_state(&record)
                .map_err(io_at(&storage.dir.join(STATE_FILE)))?;
        }
        storage.check_order()?;
        storage.reconcile()?;
        let floor = storage.meta.snapshot.as_ref().map_or(0, |s| s.index);
        storage.hard_state.commit = storage.hard_state.commit.max(floor);
        if storage.hard_state.commit > storage.last_index() {
            return Err(OpenError::Inconsistent {
                index: storage.hard_state.commit,
                reason: "the log ends below the durable commit index",
            });
        }
        storage.fill_cache();
        storage.recovery.segments = storage.segments.len();
        Ok(storage)
    }

    /// Segments must follow each other without gaps, and terms never
    /// decrease along the log (§5.3: a log is a sequence of leaders'
    /// entries in term order).
    fn check_order(&self) -> Result<(), OpenError> {
        let mut last_term = 0;
        for (i, segment) in self.segments.iter().enumerate() {
            if let Some(next) = self.segments.get(i + 1) {
                if next.base != segment.end() {
                    return Err(OpenError::Inconsistent {
                        index: segment.end(),
                        reason: "segments leave a gap or overlap",
                    });
                }
            }
            for (at, &(_, term)) in segment.entries.iter().enumerate() {
                if term < last_term {
                    return Err(OpenError::Inconsistent {
                        index: segment.base + at as Index,
                        reason: "terms decrease along the log",
                    });
                }
                last_term = term;
            }
        }
        Ok(())
    }

    /// Brings the segments in line with the durable meta: finishes a
    /// compaction (sealed segments wholly below the compaction point go)
    /// or a snapshot install (a log that does not hold the snapshot's last
    /// entry goes), and makes sure an active segment exists.
    fn reconcile(&mut self) -> Result<(), OpenError> {
        let (index, term) = self.meta.compacted;
        let first = self.segments.first().map(|s| s.base);
        let matches =
            index == 0 || first == Some(index + 1) || self.stored_term(index) == Some(term);
        let starts_after = self.segments.first().is_some_and(|s| s.base > index + 1);
        let ends_before = self.segments.last().is_none_or(|s| s.end() <= index);
        if starts_after && !ends_before {
            // No compaction or install of ours leaves this: entries after
            // the compaction point are missing.
            return Err(OpenError::Inconsistent {
                index: index + 1,
                reason: "the log starts after the compaction point",
            });
        }
        let dir = self.dir.clone();
        self.reconcile_files(ends_before || !matches)
            .map_err(io_at(&dir))
    }

    fn reconcile_files(&mut self, discard: bool) -> io::Result<()> {
        let index = self.meta.compacted.0;
        if discard {
            let removed = self.remove_segments_from(0)?;
            self.recovery.removed_segments += removed;
            self.create_segment(index + 1)?;
            self.sync_dir()?;
            return Ok(());
        }
        let removed = self.remove_compacted_segments()?;
        self.recovery.removed_segments += removed;
        if removed > 0 {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Fills the cache with the newest entries.
    fn fill_cache(&mut self) {
        let mut index = self.last_index();
        while index >= self.first_index() {
            let Ok(entry) = self.read_entry(index) else {
                break;
            };
            if self.cache_size + entry.size() > self.config.cache_bytes {
                break;
            }
            self.cache_size += entry.size();
            self.cache.push_front(entry);
            index -= 1;
        }
    }

    /// What opening found and repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The hard state last staged or synced.
    pub fn hard_state(&self) -> &HardState<N> {
        &self.hard_state
    }

    /// Whether a write failed (see [`WriteError::Io`]): every further write
    /// is refused until the storage is reopened.
    pub fn is_failed(&self) -> bool {
        self.failed || self.syncer.as_ref().is_some_and(background::Syncer::failed)
    }

    /// Counts of the syncs and fsyncs this storage made since it was
    /// opened: a handle that can be read while the storage is in use
    /// elsewhere.
    pub fn sync_counters(&self) -> SyncCounters {
        self.counters.clone()
    }

    /// The term stored at `index`, if a segment holds it.
    fn stored_term(&self, index: Index) -> Option<Term> {
        let segment = self.segment_of(index)?;
        let at = usize::try_from(index - segment.base).ok()?;
        segment.entries.get(at).map(|&(_, term)| term)
    }

    /// The segment holding `index`, if any.
    fn segment_of(&self, index: Index) -> Option<&Segment> {
        let after = self.segments.partition_point(|s| s.base <= index);
        let segment = self.segments.get(after.checked_sub(1)?)?;
        (index < segment.end()).then_some(segment)
    }

    /// The first index the cache holds.
    fn cache_first(&self) -> Index {
        self.last_index() + 1 - self.cache.len() as Index
    }

    /// Reads entry `index` (within the log) from the cache or its segment.
    fn read_entry(&self, index: Index) -> Result<Entry<N>, StorageError> {
        if index >= self.cache_first() {
            let at = usize::try_from(index - self.cache_first())
                .expect("the cache holds at most the whole log");
            return Ok(self.cache[at].clone());
        }
        let unreadable = |reason: String| StorageError::Unreadable { index, reason };
        let segment = self
            .segment_of(index)
            .ok_or_else(|| unreadable("no segment holds it".into()))?;
        let at = usize::try_from(index - segment.base).expect("within the segment");
        let start = segment.entries[at].0;
        let end = segment.entries.get(at + 1).map_or(segment.len, |&(p, _)| p);
        let len = usize::try_from(end - start).map_err(|e| unreadable(e.to_string()))?;
        let mut buf = vec![0u8; len];
        read_exact_at(&segment.file, &mut buf, start).map_err(|e| unreadable(e.to_string()))?;
        match frame::read_frame(&buf, 0, self.config.max_entry_bytes) {
            Frame::Valid { payload, .. } => codec::decode_entry(payload)
                .filter(|e: &Entry<N>| e.index == index)
                .ok_or_else(|| unreadable("the entry does not decode".into())),
            _ => Err(unreadable("the frame fails its checks".into())),
        }
    }
}

/// Takes the directory's lock, so no second storage opens it while this one
/// lives (as etcd, Kafka and raft-engine do): an advisory `flock` on Unix,
/// which the system releases when the file is closed or the process dies
/// (even by SIGKILL), so a crash never leaves the directory locked; an
/// open without sharing on Windows.
fn lock_dir(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join(LOCK_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(windows)]
    std::os::windows::fs::OpenOptionsExt::share_mode(&mut options, 0);
    let file = match options.open(&path) {
        Ok(file) => file,
        // ERROR_SHARING_VIOLATION: another storage holds it open.
        #[cfg(windows)]
        Err(e) if e.raw_os_error() == Some(32) => return Err(OpenError::Locked { path }),
        Err(source) => return Err(OpenError::Io { path, source }),
    };
    #[cfg(unix)]
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Err(OpenError::Locked { path }),
        Err(e) => {
            return Err(OpenError::Io {
                path,
                source: e.into(),
            });
        }
    }
    Ok(file)
}

/// Reads the state file: the latest hard state and meta, cutting a torn
/// tail.
#[allow(clippy::type_complexity)]
fn load_state<N: NodeId + IdCodec>(
    path: &Path,
    bootstrap: &Membership<N>,
    recovery: &mut Recovery,
) -> Result<(File, u64, Option<HardState<N>>, Option<Meta<N>>), OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_at(path))?;
    let bytes = read_bounded(&file, path, MAX_STATE_FILE)?;
    let (mut hard_state, mut meta) = (None, None);
    let mut pos = 0;
    loop {
        match frame::read_frame(&bytes, pos, DiskStorageConfig::MAX_ENTRY_BYTES) {
            Frame::Valid { payload, end } => {
                match codec::decode_state::<N>(payload) {
                    Some(record) if !record.in_range(MAX_INDEX) => {
                        return Err(corrupt(
                            path,
                            pos,
                            "a state record holds an index past 2^63 - 1",
                        ));
                    }
                    Some(StateRecord::HardState(h)) => hard_state = Some(h),
                    Some(StateRecord::Meta(m)) => meta = Some(m),
                    None => return Err(corrupt(path, pos, "a state record does not decode")),
                }
                pos = end;
            }
            Frame::End => break,
            Frame::Torn => {
                check_state_tail(path, &bytes, pos, hard_state.as_ref(), meta.is_some())?;
                if pos == 0 && !is_torn_first_record(&bytes, bootstrap) {
                    return Err(corrupt(
                        path,
                        0,
                        "no intact record, and more than a new log's first write",
                    ));
                }
                recovery.torn_state_bytes = (bytes.len() - pos) as u64;
                file.set_len(pos as u64).map_err(io_at(path))?;
                file.sync_data().map_err(io_at(path))?;
                break;
            }
            Frame::Corrupt(reason) => return Err(corrupt(path, pos, reason)),
        }
    }
    Ok((file, pos as u64, hard_state, meta))
}

/// Judges a frame of the state file that looks torn at `pos`, given the
/// last hard state before it and whether a meta came before it.
///
/// A crash tears only what was not yet fsynced: the tail of the file after
/// the last sync. Every record is fsynced before the next is written, except
/// the commit-only hard states that
/// [`sync_in_background`](DiskStorage::sync_in_background) appends and
/// leaves to the syncer: several of them may be unsynced at a crash, and
/// the page of an earlier one may be lost while a later one's reached the
/// disk. Such a tail follows a durable meta (a new log's first record) and
/// holds only hard states with the term and vote of the last hard state
/// before it (one that changes either is synced in order, after everything
/// before it). So intact records after the damage that fit that shape are
/// an unsynced tail, cut with it (nothing of it was acknowledged, and the
/// term and vote stay); any other intact record after the damage (a meta,
/// a newer term or vote) proves the damaged record was synced: corruption.
fn check_state_tail<N: NodeId + IdCodec>(
    path: &Path,
    bytes: &[u8],
    pos: usize,
    last: Option<&HardState<N>>,
    has_meta: bool,
) -> Result<(), OpenError> {
    let default = HardState::default();
    let last = last.unwrap_or(&default);
    for payload in frames_after_tear(bytes, pos, DiskStorageConfig::MAX_ENTRY_BYTES) {
        let unsynced = has_meta
            && matches!(
                codec::decode_state::<N>(payload),
                Some(StateRecord::HardState(h)) if h.term == last.term && h.vote == last.vote
            );
        if !unsynced {
            return Err(corrupt(
                path,
                pos,
                "damage followed by an intact record written after it was synced",
            ));
        }
    }
    Ok(())
}

/// Whether a state file with no intact record is what a crash during a new
/// log's first write leaves: no longer than that record (the meta with the
/// bootstrap membership), and each byte either the record's or zero (a
/// sector that never reached the disk). A longer file, or other bytes, held
/// records that were synced (a hard state, a later meta): refused, never
/// taken for a new log (which would forget the term and vote).
fn is_torn_first_record<N: NodeId + IdCodec>(bytes: &[u8], bootstrap: &Membership<N>) -> bool {
    let mut payload = Vec::new();
    codec::encode_state(
        &mut payload,
        &StateRecord::Meta(Meta {
            compacted: (0, 0),
            membership: bootstrap.clone(),
            snapshot: None,
        }),
    );
    let mut first = Vec::new();
    frame::put_frame(&mut first, &payload);
    bytes.len() <= first.len() && bytes.iter().zip(&first).all(|(&b, &f)| b == f || b == 0)
}

/// The payloads of the intact frames after a frame at `pos` that looks
/// torn. Past it if its length is intact (its payload is not searched: a
/// command may hold bytes that look like a frame), else from every byte
/// after `pos` (the length was lost, so where the next frame starts is
/// unknown).
fn frames_after_tear(bytes: &[u8], pos: usize, max_len: u64) -> Vec<&[u8]> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
    };
    let mut at = match (word(pos), word(pos + 4)) {
        (Some(len), Some(len_inv)) if len == !len_inv => {
            pos.saturating_add(frame::FRAME_HEADER + len as usize)
        }
        _ => pos + 1,
    };
    let mut found = Vec::new();
    while at < bytes.len() {
        match frame::read_frame(bytes, at, max_len) {
            Frame::Valid { payload, end } => {
                found.push(payload);
                at = end;
            }
            _ => at += 1,
        }
    }
    found
}

/// The largest segment this storage writes: it is sealed once it reaches
/// `segment_bytes`, so at most one frame goes past that.
const MAX_SEGMENT_FILE: u64 = DiskStorageConfig::MAX_SEGMENT_BYTES
    + DiskStorageConfig::MAX_ENTRY_BYTES
    + frame::FRAME_HEADER as u64;
/// The largest state file: rewritten past 1 MiB, and a rewrite holds two
/// records.
const MAX_STATE_FILE: u64 =
    write::STATE_REWRITE_BYTES + 2 * (DiskStorageConfig::MAX_ENTRY_BYTES + 64);

/// Reads a whole file, refusing one larger than this storage ever writes,
/// so damage cannot make `open` allocate without bound.
fn read_bounded(file: &File, path: &Path, max: u64) -> Result<Vec<u8>, OpenError> {
    let len = file.metadata().map_err(io_at(path))?.len();
    if len > max {
        return Err(corrupt(
            path,
            0,
            "the file is larger than any this storage writes",
        ));
    }
    let mut bytes = vec![0u8; usize::try_from(len).map_err(|_| corrupt(path, 0, "too large"))?];
    read_exact_at(file, &mut bytes, 0).map_err(io_at(path))?;
    Ok(bytes)
}

fn corrupt(path: &Path, offset: usize, reason: &'static str) -> OpenError {
    OpenError::Corrupt {
        file: path.to_path_buf(),
        offset: offset as u64,
        reason,
    }
}

/// Reads one segment; a torn tail is cut only from the active one.
fn load_segment<N: NodeId + IdCodec>(
    dir: &Path,
    base: Index,
    active: bool,
    durable_commit: Index,
    config: &DiskStorageConfig,
    recovery: &mut Recovery,
) -> Result<Segment, OpenError> {
    let path = dir.join(segment_name(base));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_at(&path))?;
    let bytes = read_bounded(&file, &path, MAX_SEGMENT_FILE)?;
    let mut entries = Vec::new();
    let mut pos = 0;
    loop {
        match frame::read_frame(&bytes, pos, config.max_entry_bytes) {
            Frame::Valid { payload, end } => {
                let expected = base + entries.len() as Index;
                let (index, term) = codec::entry_position(payload)
                    .ok_or_else(|| corrupt(&path, pos, "an entry does not decode"))?;
                if index != expected {
                    return Err(corrupt(&path, pos, "an entry is out of place"));
                }
                if codec::decode_entry::<N>(payload).is_none() {
                    return Err(corrupt(&path, pos, "an entry does not decode"));
                }
                entries.push((pos as u64, term));
                pos = end;
            }
            Frame::End => break,
            Frame::Torn if active => {
                // Damage followed by intact entries: a power failure while
                // the disk wrote an unsynced tail back out of order leaves
                // that (the write-back order of page-cache pages is the
                // disk's), and so does damage to synced entries. Entries up
                // to the stored commit index were durable when it was
                // written: damage there is refused. Past it, the damage is
                // taken for an unsynced tail and cut with what follows, so
                // a power failure never leaves a node that cannot start;
                // the count says how many intact entries went (see the
                // crate doc's Recovery).
                let after = frames_after_tear(&bytes, pos, config.max_entry_bytes);
                let damaged = base + entries.len() as Index;
                if !after.is_empty() && damaged <= durable_commit {
                    return Err(corrupt(
                        &path,
                        pos,
                        "damage at or below the stored commit index, followed by an intact entry",
                    ));
                }
                recovery.entries_cut_after_damage += after.len();
                recovery.torn_segment_bytes = (bytes.len() - pos) as u64;
                file.set_len(pos as u64).map_err(io_at(&path))?;
                file.sync_data().map_err(io_at(&path))?;
                break;
            }
            Frame::Torn => return Err(corrupt(&path, pos, "a torn write in a sealed segment")),
            Frame::Corrupt(reason) => return Err(corrupt(&path, pos, reason)),
        }
    }
    Ok(Segment {
        base,
        file,
        len: pos as u64,
        entries,
    })
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, pos)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, pos) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl<N: NodeId + IdCodec> Storage for DiskStorage<N> {
    type NodeId = N;

    fn initial_state(&self) -> InitialState<N> {
        InitialState {
            hard_state: self.hard_state.clone(),
            membership: self.meta.membership.clone(),
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
        let mut out = Vec::new();
        let mut total = 0u64;
        for index in low..high {
            let entry = self.read_entry(index)?;
            total = total.saturating_add(entry.size());
            if total > max_bytes && !out.is_empty() {
                break;
            }
            out.push(entry);
        }
        Ok(out)
    }

    fn term(&self, index: Index) -> Result<Term, StorageError> {
        let (compacted, compacted_term) = self.meta.compacted;
        if index < compacted {
            return Err(StorageError::Compacted { index, compacted });
        }
        if index == compacted {
            return Ok(compacted_term);
        }
        self.stored_term(index)
            .filter(|_| index <= self.last_index())
            .ok_or(StorageError::Unavailable {
                index,
                last_index: self.last_index(),
            })
    }

    fn first_index(&self) -> Index {
        self.meta.compacted.0 + 1
    }

    fn last_index(&self) -> Index {
        let end = self.segments.last().map_or(0, Segment::end);
        end.saturating_sub(1).max(self.meta.compacted.0)
    }

    fn snapshot(&self) -> Option<SnapshotMeta<N>> {
        self.meta.snapshot.clone()
    }
}
