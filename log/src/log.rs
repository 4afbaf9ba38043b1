//! A partition: a directory of segments with one appender ([`Log`]) and any number
//! of concurrent readers ([`LogReader`]).
//!
//! Durability follows Kafka's `UnifiedLog`: appends go to the active segment and are
//! fsynced by the flush policy; a segment is fsynced when it rolls, and the
//! *recovery point* (the first offset that may not be durable) is checkpointed then.
//! Opening validates every batch from the recovery point on and truncates at the
//! first damaged one, so a torn tail never surfaces to readers.

use std::io;

use crate::batch::{BatchBuf, RecordBatch};
use crate::config::{ConfigError, HighWatermarkPolicy, LogConfig};
use crate::index::{OffsetIndex, TimeIndex};
use crate::producer::{ProducerError, ProducerTable, SequenceCheck};
use crate::segment::{
    CLEANED_SUFFIX, INDEX_SUFFIX, IndexBuilder, Indexes, LOG_SUFFIX, ScanMode, Segment,
    TIME_INDEX_SUFFIX, TMP_SUFFIX, file_name, parse_file_name, scan,
};
use crate::storage::{Storage, StorageFile, read_full_at, write_all_at};
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};

/// Name of the recovery-point checkpoint file.
pub(crate) const CHECKPOINT_FILE: &str = "recovery.checkpoint";
/// Suffix of producer-state snapshots.
pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";

/// Why a log could not be opened. Damaged data is not an error: it is truncated and
/// reported in [`RecoveryReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration is invalid; nothing was touched.
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    /// The storage failed; the directory may be partly recovered (opening again redoes it).
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// Why an append failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The batch is larger than `max_batch_bytes`; nothing was written.
    #[error("batch of {size} bytes exceeds max_batch_bytes {max}")]
    BatchTooLarge {
        /// Batch size.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// The idempotent producer's batch was refused; nothing was written.
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// Writing failed; the partial write was cut off again and nothing was appended.
    /// If that cleanup failed too, the log is failed ([`AppendError::Failed`] from now on).
    #[error("write failed: {0}")]
    Io(io::Error),
    /// The batch was appended at `base_offset..=last_offset` but the fsync the flush
    /// policy asked for failed: it is not durable, the durable offset did not advance,
    /// and the log is failed until it is reopened (which re-validates what is on disk).
    #[error("appended at {base_offset}..={last_offset} but fsync failed: {source}")]
    Sync {
        /// First offset of the batch.
        base_offset: u64,
        /// Last offset of the batch.
        last_offset: u64,
        /// The fsync error.
        source: io::Error,
    },
    /// An earlier fsync or cleanup failed; reopen the log.
    #[error("log failed earlier ({0}); reopen it")]
    Failed(String),
    /// The active segment was full and rolled, but the producer-state snapshot of the
    /// roll could not be written (see [`FlushError::Snapshot`]). The batch was not
    /// appended, and the log is failed until it is reopened.
    #[error("rolled a segment but could not write the producer snapshot: {0}")]
    Snapshot(io::Error),
    /// The batch's offsets would pass `i64::MAX`, the largest Kafka offset; nothing
    /// was written.
    #[error("offsets past i64::MAX")]
    OffsetOverflow,
}

/// Why a flush failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// The fsync failed: the durable offset did not advance and the log is failed
    /// until reopened.
    #[error("fsync failed: {0}")]
    Sync(io::Error),
    /// An earlier failure; reopen the log.
    #[error("log failed earlier ({0}); reopen it")]
    Failed(String),
    /// The producer-state snapshot could not be written. From [`Log::roll`]: the
    /// segment rolled (everything before the new active segment is fsynced, sealed and
    /// readable), but without the snapshot a restart could forget an idempotent
    /// producer once retention or compaction removes the batches that hold its state,
    /// and would then write the producer's retries twice. So the log is failed until
    /// it is reopened, as after a failed fsync (Kafka takes the log directory offline
    /// on any I/O error): no append, retention or compaction runs on it, and reopening
    /// rebuilds producer state from the previous snapshot and the batches after it.
    /// From [`Log::close`]: everything was flushed, but the shutdown is not clean (the
    /// next open validates and rebuilds as after a crash).
    #[error("could not write the producer snapshot: {0}")]
    Snapshot(io::Error),
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The offset is below the log start or above the high-watermark.
    #[error("offset {offset} out of range [{start}, {high_watermark}]")]
    OffsetOutOfRange {
        /// Requested offset.
        offset: u64,
        /// First offset in the log.
        start: u64,
        /// High-watermark.
        high_watermark: u64,
    },
    /// The storage failed.
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// What opening a log found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segments in the log after recovery.
    pub segments: usize,
    /// Segments whose batches were validated one by one (from the recovery point on).
    pub validated_segments: usize,
    /// Whether the log was closed cleanly (nothing needed validation).
    pub clean_shutdown: bool,
    /// Where a damaged batch was found: (segment base offset, byte position).
    pub truncated_at: Option<(u64, u64)>,
    /// Bytes cut off at the damage, in that segment.
    pub truncated_bytes: u64,
    /// Segments after the damaged one that were deleted.
    pub deleted_segments: usize,
    /// Indexes rebuilt because they were missing or failed their checks.
    pub rebuilt_indexes: usize,
    /// Offset the next append gets.
    pub next_offset: u64,
}

/// A segment as [`Log::segments`] describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// Offset in the file name; no record in the segment is below it.
    pub base_offset: u64,
    /// Offset after the segment's last batch.
    pub next_offset: u64,
    /// Bytes in the `.log` file.
    pub size_bytes: u64,
    /// Largest record timestamp, if the segment has records.
    pub max_timestamp: Option<i64>,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// The batch was a producer retry already in the log: nothing was written and the
    /// offsets are those of the original.
    pub duplicate: bool,
    /// Offsets below this survive a crash.
    pub durable_offset: u64,
}

/// The state readers share with the appender: the segment list and the high-watermark.
/// The appender publishes a new list (roll, retention, compaction) before raising the
/// high-watermark past data in it, with release ordering; readers load the
/// high-watermark with acquire ordering first, so every batch below it is readable.
#[derive(Debug)]
pub(crate) struct Shared<F> {
    pub(crate) high_watermark: AtomicU64,
    pub(crate) segments: Mutex<Arc<Vec<Arc<Segment<F>>>>>,
}

/// Appender-side bookkeeping of a segment.
#[derive(Debug)]
pub(crate) struct SegmentState<F> {
    pub(crate) shared: Arc<Segment<F>>,
    pub(crate) size: u64,
    pub(crate) next_offset: u64,
    pub(crate) max_timestamp: Option<i64>,
    /// The caller's clock at the segment's first append since open: `segment.ms`
    /// counts from there (Kafka counts from the first batch's timestamp, which
    /// makes producers with old timestamps roll a segment per batch).
    pub(crate) first_append_ms: Option<i64>,
    pub(crate) builder: IndexBuilder,
    /// Offset and time index entries already in the index files.
    pub(crate) persisted: (usize, usize),
}

impl<F> SegmentState<F> {
    pub(crate) fn base_offset(&self) -> u64 {
        self.shared.base_offset
    }
}

/// One partition's log: the single appender. See the crate docs for the run loop.
///
/// Method groups: getters (`next_offset`, `durable_offset`, `high_watermark`...),
/// commands (`append`, `flush`, `tick`, `set_high_watermark`, `apply_retention`,
/// `compact`, `close`), and reads (`read`, `offset_for_timestamp`, or a
/// [`LogReader`] from `reader()` for other threads).
#[derive(Debug)]
pub struct Log<S: Storage> {
    pub(crate) dir: S,
    pub(crate) config: LogConfig,
    /// Never empty; the last one is the active segment.
    pub(crate) segments: Vec<SegmentState<S::File>>,
    pub(crate) shared: Arc<Shared<S::File>>,
    pub(crate) next_offset: u64,
    durable_offset: u64,
    unflushed_bytes: u64,
    oldest_unflushed_ms: Option<i64>,
    pub(crate) producers: ProducerTable,
    failed: Option<String>,
    /// The on-disk checkpoint still claims a clean shutdown.
    dirty_checkpoint_pending: bool,
    high_watermark: u64,
}

/// The recovery point: offsets below `offset` are in fsynced, sealed segments. A
/// clean shutdown also records the active segment's size, so a file changed after
/// the shutdown is validated anyway.
#[derive(Debug, Clone, Copy)]
struct Checkpoint {
    offset: u64,
    clean_size: Option<u64>,
}

impl Checkpoint {
    fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(21);
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.push(self.clean_size.is_some() as u8);
        out.extend_from_slice(&self.clean_size.unwrap_or(0).to_be_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 21 {
            return None;
        }
        let (body, crc) = bytes.split_at(17);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let offset = u64::from_be_bytes(body[..8].try_into().ok()?);
        if offset > i64::MAX as u64 {
            return None;
        }
        let size = u64::from_be_bytes(body[9..17].try_into().ok()?);
        let clean_size = match body[8] {
            0 => None,
            1 => Some(size),
            _ => return None,
        };
        Some(Checkpoint { offset, clean_size })
    }
}

/// Reads a whole small file; `None` if it is missing or unreadable.
pub(crate) fn read_small_file<S: Storage>(dir: &S, name: &str) -> Option<Vec<u8>> {
    let file = dir.open(name, false).ok()?;
    let len = usize::try_from(file.len().ok()?).ok()?;
    if len > 1 << 30 {
        return None;
    }
    let mut buf = vec![0u8; len];
    let n = read_full_at(&file, &mut buf, 0).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Replaces `name` with `bytes` atomically (write a temporary file, fsync, rename).
pub(crate) fn write_file_atomic<S: Storage>(dir: &S, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = format!("{name}{TMP_SUFFIX}");
    let file = dir.open(&tmp, true)?;
    file.set_len(0)?;
    write_all_at(&file, bytes, 0)?;
    file.sync_data()?;
    drop(file);
    dir.rename(&tmp, name)?;
    dir.sync_dir()
}

/// Replaces the contents of an index file with `bytes` (not fsynced: indexes are
/// rebuilt from the segment when they do not check out).
pub(crate) fn write_index_file<S: Storage>(dir: &S, name: &str, bytes: &[u8]) -> io::Result<()> {
    let file = dir.open(name, true)?;
    write_all_at(&file, bytes, 0)?;
    file.set_len(bytes.len() as u64)
}

impl<S: Storage> Log<S> {
    /// Opens (or creates) the log in `dir`, recovering from a crash: every batch from
    /// the recovery point on is validated (length, CRC-32C, records) and the log is cut
    /// at the first damaged one; later segments are deleted; missing or inconsistent
    /// indexes are rebuilt; producer state is restored. No file contents make it panic.
    pub fn open(dir: S, config: LogConfig) -> Result<(Self, RecoveryReport), OpenError> {
        config.validate()?;
        let mut report = RecoveryReport::default();
        let names = dir.list()?;
        for name in &names {
            if name.ends_with(CLEANED_SUFFIX) || name.ends_with(TMP_SUFFIX) {
                dir.remove(name)?;
            }
        }
        let mut bases: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_file_name(n, LOG_SUFFIX))
            .collect();
        bases.sort_unstable();
        if bases.is_empty() {
            bases.push(0);
        }
        let checkpoint =
            read_small_file(&dir, CHECKPOINT_FILE).and_then(|b| Checkpoint::decode(&b));
        let last_base = *bases.last().expect("at least one segment");
        let last_len = match dir.open(&file_name(last_base, LOG_SUFFIX), false) {
            Ok(f) => Some(f.len()?),
            Err(_) => None,
        };
        let validate_from = match checkpoint {
            Some(cp)
                if cp.offset >= last_base
                    && cp.clean_size.is_some()
                    && cp.clean_size == last_len =>
            {
                report.clean_shutdown = true;
                bases.len()
            }
            Some(cp) => bases.partition_point(|&b| b <= cp.offset).saturating_sub(1),
            None => 0,
        };
        let interval = config.index_interval_bytes;
        let mut segments: Vec<SegmentState<S::File>> = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            let file = dir.open(&file_name(base, LOG_SUFFIX), true)?;
            let len = file.len()?;
            let mut indexes = Indexes::default();
            let mut builder = IndexBuilder::default();
            let mut state_next = None;
            if i < validate_from {
                let next = match bases.get(i + 1) {
                    Some(&b) => b,
                    None => checkpoint.map_or(base, |cp| cp.offset),
                };
                match load_indexes(&dir, base, len) {
                    Some(loaded) => {
                        indexes = loaded;
                        builder.max_timestamp = indexes.times.max_timestamp();
                        if let Some(e) = indexes.times.entries().last() {
                            builder.max_timestamp_offset = base + e.relative_offset as u64;
                        }
                        builder.bytes_since_entry = len
                            - indexes
                                .offsets
                                .entries()
                                .last()
                                .map_or(0, |e| e.position as u64);
                    }
                    None => {
                        report.rebuilt_indexes += 1;
                        scan(&file, base, ScanMode::Headers, |pos, h| {
                            builder.on_batch(&mut indexes, base, pos, h, interval)
                        })?;
                        if i + 1 < bases.len() {
                            builder.seal(&mut indexes, base);
                        }
                        write_indexes(&dir, base, &indexes, false)?;
                    }
                }
                state_next = Some((len, next));
            }
            let (size, next_offset) = match state_next {
                Some(v) => v,
                None => {
                    report.validated_segments += 1;
                    // The active segment is never compacted, so its offsets must be
                    // contiguous: a damaged baseOffset (outside the CRC) is caught too.
                    let mode = if i + 1 == bases.len() {
                        ScanMode::VerifyContiguous
                    } else {
                        ScanMode::Verify
                    };
                    let end = scan(&file, base, mode, |pos, h| {
                        builder.on_batch(&mut indexes, base, pos, h, interval)
                    })?;
                    let damaged = end.valid_len < len;
                    if damaged {
                        report.truncated_at = Some((base, end.valid_len));
                        report.truncated_bytes = len - end.valid_len;
                        file.set_len(end.valid_len)?;
                    }
                    file.sync_data()?;
                    let last = i + 1 == bases.len() || damaged;
                    if !last {
                        builder.seal(&mut indexes, base);
                    }
                    // A sealed segment gets complete index files; the active one's are
                    // rewritten from scratch at its next flush.
                    let empty = Indexes::default();
                    write_indexes(&dir, base, if last { &empty } else { &indexes }, false)?;
                    if damaged {
                        for &later in &bases[i + 1..] {
                            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                                remove_if_exists(&dir, &file_name(later, suffix))?;
                            }
                            report.deleted_segments += 1;
                        }
                    }
                    (end.valid_len, end.next_offset)
                }
            };
            let is_last = i + 1 == bases.len() || report.truncated_at.is_some();
            let persisted = if is_last && i >= validate_from {
                (0, 0)
            } else {
                (
                    indexes.offsets.entries().len(),
                    indexes.times.entries().len(),
                )
            };
            let max_timestamp = builder.max_timestamp;
            segments.push(SegmentState {
                shared: Arc::new(Segment::new(base, file, indexes)),
                size,
                next_offset,
                max_timestamp,
                first_append_ms: None,
                builder,
                persisted,
            });
            if report.truncated_at.is_some() {
                break;
            }
        }
        if !report.clean_shutdown {
            dir.sync_dir()?;
        }
        let next_offset = segments.last().expect("at least one segment").next_offset;
        let producers = restore_producers(&dir, &names, &segments, next_offset)?;
        let active_base = segments.last().expect("at least one segment").base_offset();
        // After a clean shutdown the checkpoint still says "clean"; it is replaced
        // before the first change (`mark_dirty`), so opening a clean log writes nothing.
        let dirty_checkpoint_pending = report.clean_shutdown;
        if !dirty_checkpoint_pending {
            write_file_atomic(
                &dir,
                CHECKPOINT_FILE,
                &Checkpoint {
                    offset: active_base,
                    clean_size: None,
                }
                .encode(),
            )?;
        }
        report.segments = segments.len();
        report.next_offset = next_offset;
        let high_watermark = match config.high_watermark {
            HighWatermarkPolicy::Manual => segments[0].base_offset(),
            _ => next_offset,
        };
        let list: Vec<_> = segments.iter().map(|s| s.shared.clone()).collect();
        let shared = Arc::new(Shared {
            high_watermark: AtomicU64::new(high_watermark),
            segments: Mutex::new(Arc::new(list)),
        });
        let log = Log {
            dir,
            config,
            segments,
            shared,
            next_offset,
            durable_offset: next_offset,
            unflushed_bytes: 0,
            oldest_unflushed_ms: None,
            producers,
            failed: None,
            dirty_checkpoint_pending,
            high_watermark,
        };
        Ok((log, report))
    }

    /// The configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Offset the next appended record gets (Kafka's log end offset).
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Offsets below this are fsynced and survive a crash.
    pub fn durable_offset(&self) -> u64 {
        self.durable_offset
    }

    /// Readers see offsets below this.
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// First offset in the log (the base of the oldest segment).
    pub fn log_start_offset(&self) -> u64 {
        self.segments[0].base_offset()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.base_offset()).collect()
    }

    /// A description of every segment, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.segments
            .iter()
            .map(|s| SegmentInfo {
                base_offset: s.base_offset(),
                next_offset: s.next_offset,
                size_bytes: s.size,
                max_timestamp: s.max_timestamp,
            })
            .collect()
    }

    /// Bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Idempotent producers currently remembered.
    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// Whether an earlier failure (an fsync, a cleanup after a failed write, a producer
    /// snapshot at roll) left the log unusable until it is reopened.
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Refuses maintenance (retention, compaction) on a failed log.
    pub(crate) fn check_not_failed(&self) -> io::Result<()> {
        match &self.failed {
            Some(why) => Err(io::Error::other(format!(
                "log failed earlier ({why}); reopen it"
            ))),
            None => Ok(()),
        }
    }

    /// A handle for reading from other threads; see [`LogReader`].
    pub fn reader(&self) -> LogReader<S::File> {
        LogReader {
            shared: self.shared.clone(),
        }
    }

    /// Appends a batch at the next offset, `now` being the caller's clock in
    /// milliseconds (used for time-based rolling and flushing). A batch from an
    /// idempotent producer is checked against the producer's sequence: a retry of a
    /// batch already written returns its original offsets with `duplicate: true`.
    pub fn append(&mut self, mut batch: BatchBuf, now: i64) -> Result<Appended, AppendError> {
        if let Some(why) = &self.failed {
            return Err(AppendError::Failed(why.clone()));
        }
        if batch.len() > self.config.max_batch_bytes {
            return Err(AppendError::BatchTooLarge {
                size: batch.len(),
                max: self.config.max_batch_bytes,
            });
        }
        if batch.header().has_producer_id() {
            if let SequenceCheck::Duplicate {
                base_offset,
                last_offset,
            } = self.producers.check(batch.header())?
            {
                return Ok(Appended {
                    base_offset,
                    last_offset,
                    duplicate: true,
                    durable_offset: self.durable_offset,
                });
            }
        }
        let last_delta = batch.header().last_offset_delta as u64;
        if self.next_offset.saturating_add(last_delta) > i64::MAX as u64 {
            return Err(AppendError::OffsetOverflow);
        }
        if self.needs_roll(batch.len() as u64, last_delta, now) {
            self.roll(now).map_err(|e| match e {
                FlushError::Sync(e) => AppendError::Io(e),
                FlushError::Failed(w) => AppendError::Failed(w),
                FlushError::Snapshot(e) => AppendError::Snapshot(e),
            })?;
        }
        self.mark_dirty().map_err(AppendError::Io)?;
        let base_offset = self.next_offset;
        batch.assign(base_offset, self.config.leader_epoch);
        let interval = self.config.index_interval_bytes;
        let active = self.segments.last_mut().expect("an active segment");
        let position = active.size;
        if let Err(e) = write_all_at(&*active.shared.file, batch.as_slice(), position) {
            if let Err(cleanup) = active.shared.file.set_len(position) {
                self.failed = Some(format!("could not cut off a failed write: {cleanup}"));
            }
            return Err(AppendError::Io(e));
        }
        let header = *batch.header();
        {
            let mut indexes = lock(&active.shared.indexes);
            active.builder.on_batch(
                &mut indexes,
                active.shared.base_offset,
                position,
                &header,
                interval,
            );
        }
        active.size += batch.len() as u64;
        active.next_offset = header.next_offset();
        active.max_timestamp = Some(
            active
                .max_timestamp
                .map_or(header.max_timestamp, |m| m.max(header.max_timestamp)),
        );
        active.first_append_ms.get_or_insert(now);
        self.producers.record(&header);
        self.next_offset = header.next_offset();
        self.unflushed_bytes += batch.len() as u64;
        self.oldest_unflushed_ms.get_or_insert(now);
        if self.config.high_watermark == HighWatermarkPolicy::Appended {
            self.publish_high_watermark(self.next_offset);
        }
        if self.flush_due(now) {
            if let Err(e) = self.flush() {
                let source = match e {
                    FlushError::Sync(e) | FlushError::Snapshot(e) => e,
                    FlushError::Failed(w) => io::Error::other(w),
                };
                return Err(AppendError::Sync {
                    base_offset,
                    last_offset: header.last_offset(),
                    source,
                });
            }
        }
        Ok(Appended {
            base_offset,
            last_offset: header.last_offset(),
            duplicate: false,
            durable_offset: self.durable_offset,
        })
    }

    /// Replaces a clean-shutdown checkpoint before the first change after opening,
    /// so a crash from here on is recovered by validation.
    pub(crate) fn mark_dirty(&mut self) -> io::Result<()> {
        if self.dirty_checkpoint_pending {
            let base = self
                .segments
                .last()
                .expect("an active segment")
                .base_offset();
            write_file_atomic(
                &self.dir,
                CHECKPOINT_FILE,
                &Checkpoint {
                    offset: base,
                    clean_size: None,
                }
                .encode(),
            )?;
            self.dirty_checkpoint_pending = false;
        }
        Ok(())
    }

    fn needs_roll(&self, batch_len: u64, last_delta: u64, now: i64) -> bool {
        let active = self.segments.last().expect("an active segment");
        if active.size == 0 {
            return false;
        }
        let too_big = active.size + batch_len > self.config.segment_bytes;
        let too_old = match (self.config.segment_ms, active.first_append_ms) {
            (Some(ms), Some(first)) => now.saturating_sub(first) > ms,
            _ => false,
        };
        // Index entries hold 32-bit relative offsets.
        let offsets_full = self.next_offset + last_delta - active.base_offset() > i32::MAX as u64;
        too_big || too_old || offsets_full
    }

    fn flush_due(&self, now: i64) -> bool {
        if self.unflushed_bytes == 0 {
            return false;
        }
        let by_bytes = self
            .config
            .flush
            .max_unflushed_bytes
            .is_some_and(|b| self.unflushed_bytes > b);
        let by_time = match (self.config.flush.max_unflushed_ms, self.oldest_unflushed_ms) {
            (Some(ms), Some(oldest)) => now.saturating_sub(oldest) >= ms,
            _ => false,
        };
        by_bytes || by_time
    }

    /// Fsyncs the active segment and returns the new durable offset. On failure the
    /// durable offset stays where it was and the log is failed until reopened: after a
    /// failed fsync the kernel may have dropped the dirty pages, and a later successful
    /// fsync would not bring them back.
    pub fn flush(&mut self) -> Result<u64, FlushError> {
        if let Some(why) = &self.failed {
            return Err(FlushError::Failed(why.clone()));
        }
        let target = self.next_offset;
        let active = self.segments.last_mut().expect("an active segment");
        if let Err(e) = active.shared.file.sync_data() {
            self.failed = Some(format!("fsync failed: {e}"));
            return Err(FlushError::Sync(e));
        }
        self.durable_offset = target;
        self.unflushed_bytes = 0;
        self.oldest_unflushed_ms = None;
        // Index files of the active segment trail the data; they are checked on open.
        let _ = persist_new_index_entries(&self.dir, active);
        if self.config.high_watermark == HighWatermarkPolicy::Durable {
            self.publish_high_watermark(target);
        }
        Ok(target)
    }

    /// Runs time-based duties: flushes when `max_unflushed_ms` has passed and forgets
    /// expired idempotent producers. Call it by [`Log::poll_timeout`].
    pub fn tick(&mut self, now: i64) -> Result<(), FlushError> {
        self.producers
            .expire(now, self.config.producer_expiration_ms);
        if self.flush_due(now) {
            self.flush()?;
        }
        Ok(())
    }

    /// When [`Log::tick`] next has something to do (a time-based flush), if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<i64> {
        let ms = self.config.flush.max_unflushed_ms?;
        self.oldest_unflushed_ms.map(|t| t.saturating_add(ms))
    }

    /// Sets the high-watermark ([`HighWatermarkPolicy::Manual`]), clamped to
    /// `next_offset`; it never moves backwards.
    pub fn set_high_watermark(&mut self, offset: u64) {
        let offset = offset.min(self.next_offset);
        if offset > self.high_watermark {
            self.publish_high_watermark(offset);
        }
    }

    pub(crate) fn publish_high_watermark(&mut self, offset: u64) {
        self.high_watermark = offset;
        self.shared.high_watermark.store(offset, Ordering::Release);
    }

    /// Seals the active segment (fsynced, with complete indexes) and starts a new one
    /// at the next offset, as Kafka does at `segment.bytes` / `segment.ms`, then writes
    /// a producer-state snapshot at the new segment's base offset.
    ///
    /// # Errors
    ///
    /// [`FlushError::Sync`] when sealing failed, [`FlushError::Snapshot`] when the
    /// segment rolled but the snapshot could not be written; either way the log is
    /// failed until reopened. [`FlushError::Failed`] on a log failed earlier.
    pub fn roll(&mut self, _now: i64) -> Result<(), FlushError> {
        if let Some(why) = &self.failed {
            return Err(FlushError::Failed(why.clone()));
        }
        let base = self.next_offset;
        if self.segments.last().expect("an active segment").size == 0 {
            return Ok(());
        }
        self.mark_dirty().map_err(FlushError::Sync)?;
        let active = self.segments.last_mut().expect("an active segment");
        {
            let mut indexes = lock(&active.shared.indexes);
            active.builder.seal(&mut indexes, active.shared.base_offset);
        }
        let sealed = (|| {
            active.shared.file.sync_data()?;
            let indexes = lock(&active.shared.indexes).clone();
            let b = active.base_offset();
            write_indexes(&self.dir, b, &indexes, true)?;
            active.persisted = (
                indexes.offsets.entries().len(),
                indexes.times.entries().len(),
            );
            let file = self.dir.open(&file_name(base, LOG_SUFFIX), true)?;
            file.set_len(0)?;
            for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                self.dir.open(&file_name(base, suffix), true)?.set_len(0)?;
            }
            self.dir.sync_dir()?;
            io::Result::Ok(file)
        })();
        let file = match sealed {
            Ok(f) => f,
            Err(e) => {
                self.failed = Some(format!("rolling a segment failed: {e}"));
                return Err(FlushError::Sync(e));
            }
        };
        self.durable_offset = base;
        self.unflushed_bytes = 0;
        self.oldest_unflushed_ms = None;
        self.segments.push(SegmentState {
            shared: Arc::new(Segment::new(base, file, Indexes::default())),
            size: 0,
            next_offset: base,
            max_timestamp: None,
            first_append_ms: None,
            builder: IndexBuilder::default(),
            persisted: (0, 0),
        });
        self.publish_segments();
        if self.config.high_watermark == HighWatermarkPolicy::Durable {
            self.publish_high_watermark(base);
        }
        // Everything below `base` is durable: snapshot the producers there, then move
        // the recovery point. The snapshot is what remembers producers whose batches
        // retention or compaction later remove, so failing to write it fails the log.
        if let Err(e) = write_file_atomic(
            &self.dir,
            &file_name(base, SNAPSHOT_SUFFIX),
            &self.producers.encode(),
        ) {
            self.failed = Some(format!("writing the producer snapshot failed: {e}"));
            return Err(FlushError::Snapshot(e));
        }
        // A checkpoint that fails to move only means validating more at the next open.
        let _ = write_file_atomic(
            &self.dir,
            CHECKPOINT_FILE,
            &Checkpoint {
                offset: base,
                clean_size: None,
            }
            .encode(),
        );
        self.prune_snapshots();
        Ok(())
    }

    /// Keeps the two newest producer snapshots.
    fn prune_snapshots(&self) {
        let Ok(names) = self.dir.list() else { return };
        let mut snaps: Vec<u64> = names
            .iter()
            .filter_map(|n| parse_file_name(n, SNAPSHOT_SUFFIX))
            .collect();
        snaps.sort_unstable();
        let keep_from = snaps.len().saturating_sub(2);
        for &s in &snaps[..keep_from] {
            let _ = self.dir.remove(&file_name(s, SNAPSHOT_SUFFIX));
        }
    }

    /// Publishes the current segment list to readers.
    pub(crate) fn publish_segments(&self) {
        let list: Vec<_> = self.segments.iter().map(|s| s.shared.clone()).collect();
        *lock(&self.shared.segments) = Arc::new(list);
    }

    /// Flushes, writes the indexes, a producer snapshot and a clean-shutdown
    /// checkpoint, so the next open validates nothing.
    pub fn close(mut self) -> Result<(), FlushError> {
        self.flush()?;
        let next = self.next_offset;
        let active = self.segments.last_mut().expect("an active segment");
        let clean_size = Some(active.size);
        // As Kafka's `LogSegment.close`: the time index ends with the segment's
        // largest timestamp, which the next open reads back as the maximum.
        let indexes = {
            let mut indexes = lock(&active.shared.indexes);
            active.builder.seal(&mut indexes, active.shared.base_offset);
            indexes.clone()
        };
        let b = active.base_offset();
        write_indexes(&self.dir, b, &indexes, true).map_err(FlushError::Sync)?;
        write_file_atomic(
            &self.dir,
            &file_name(next, SNAPSHOT_SUFFIX),
            &self.producers.encode(),
        )
        .map_err(FlushError::Snapshot)?;
        write_file_atomic(
            &self.dir,
            CHECKPOINT_FILE,
            &Checkpoint {
                offset: next,
                clean_size,
            }
            .encode(),
        )
        .map_err(FlushError::Sync)?;
        self.prune_snapshots();
        Ok(())
    }

    /// Reads whole batches from `offset` on (the batch holding `offset` first), about
    /// `max_bytes` of them and at least one; see [`LogReader::read`].
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<Vec<RecordBatch>, ReadError> {
        self.reader().read(offset, max_bytes)
    }

    /// The offset of the first record whose timestamp is at least `timestamp`; see
    /// [`LogReader::offset_for_timestamp`].
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<u64>, ReadError> {
        self.reader().offset_for_timestamp(timestamp)
    }
}

pub(crate) fn remove_if_exists<S: Storage>(dir: &S, name: &str) -> io::Result<()> {
    match dir.remove(name) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Appends the active segment's new index entries to its index files.
fn persist_new_index_entries<S: Storage>(
    dir: &S,
    active: &mut SegmentState<S::File>,
) -> io::Result<()> {
    let (offsets, times, counts) = {
        let indexes = lock(&active.shared.indexes);
        (
            indexes.offsets.encode_from(active.persisted.0),
            indexes.times.encode_from(active.persisted.1),
            (
                indexes.offsets.entries().len(),
                indexes.times.entries().len(),
            ),
        )
    };
    let b = active.base_offset();
    if !offsets.is_empty() {
        let f = dir.open(&file_name(b, INDEX_SUFFIX), true)?;
        write_all_at(&f, &offsets, active.persisted.0 as u64 * 8)?;
    }
    if !times.is_empty() {
        let f = dir.open(&file_name(b, TIME_INDEX_SUFFIX), true)?;
        write_all_at(&f, &times, active.persisted.1 as u64 * 12)?;
    }
    active.persisted = counts;
    Ok(())
}

/// Writes a segment's `.index` and `.timeindex` files in full, fsyncing them when
/// `sync` (sealed segments; an active segment's indexes are rebuilt on recovery).
pub(crate) fn write_indexes<S: Storage>(
    dir: &S,
    base: u64,
    indexes: &Indexes,
    sync: bool,
) -> io::Result<()> {
    for (suffix, bytes) in [
        (INDEX_SUFFIX, indexes.offsets.encode_from(0)),
        (TIME_INDEX_SUFFIX, indexes.times.encode_from(0)),
    ] {
        let name = file_name(base, suffix);
        write_index_file(dir, &name, &bytes)?;
        if sync {
            dir.open(&name, false)?.sync_data()?;
        }
    }
    Ok(())
}

/// Loads and checks a sealed segment's index files; `None` when either is missing or
/// fails its checks (the caller rebuilds both).
fn load_indexes<S: Storage>(dir: &S, base: u64, segment_len: u64) -> Option<Indexes> {
    let offsets = read_small_file(dir, &file_name(base, INDEX_SUFFIX))?;
    let times = read_small_file(dir, &file_name(base, TIME_INDEX_SUFFIX))?;
    let offsets = OffsetIndex::decode(&offsets, segment_len).ok()?;
    let times = TimeIndex::decode(&times).ok()?;
    Some(Indexes { offsets, times })
}

/// Restores producer state: the newest valid snapshot at or below `next_offset`, then
/// the headers of every batch after it.
fn restore_producers<S: Storage>(
    dir: &S,
    names: &[String],
    segments: &[SegmentState<S::File>],
    next_offset: u64,
) -> io::Result<ProducerTable> {
    let mut snaps: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_file_name(n, SNAPSHOT_SUFFIX))
        .collect();
    snaps.sort_unstable();
    let mut table = ProducerTable::default();
    let mut from = 0;
    for &s in snaps.iter().rev() {
        if s > next_offset {
            remove_if_exists(dir, &file_name(s, SNAPSHOT_SUFFIX))?;
            continue;
        }
        if let Some(t) = read_small_file(dir, &file_name(s, SNAPSHOT_SUFFIX))
            .and_then(|b| ProducerTable::decode(&b))
        {
            table = t;
            from = s;
            break;
        }
    }
    for seg in segments
        .iter()
        .filter(|s| s.next_offset > from && s.size > 0)
    {
        scan(
            &*seg.shared.file,
            seg.base_offset(),
            ScanMode::Headers,
            |_, h| {
                if h.base_offset >= from {
                    table.record(h);
                }
            },
        )?;
    }
    Ok(table)
}

/// A cloneable, thread-safe read handle on a log. Reads never see past the
/// high-watermark, keep working while the appender appends, rolls and deletes
/// segments, and copy each batch once, from the file into a shared buffer.
#[derive(Debug)]
pub struct LogReader<F> {
    shared: Arc<Shared<F>>,
}

impl<F> Clone for LogReader<F> {
    fn clone(&self) -> Self {
        LogReader {
            shared: self.shared.clone(),
        }
    }
}

impl<F: StorageFile> LogReader<F> {
    /// Readers see offsets below this.
    pub fn high_watermark(&self) -> u64 {
        self.shared.high_watermark.load(Ordering::Acquire)
    }

    /// First offset in the log.
    pub fn log_start_offset(&self) -> u64 {
        lock(&self.shared.segments)
            .first()
            .map_or(0, |s| s.base_offset)
    }

    /// Reads whole batches from `offset` on: the batch holding `offset` (or, after
    /// compaction removed it, the next one) first, then following batches up to about
    /// `max_bytes` in all, always at least one batch when one is below the
    /// high-watermark. Returns an empty list at the high-watermark.
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<Vec<RecordBatch>, ReadError> {
        let high_watermark = self.high_watermark();
        let segments = lock(&self.shared.segments).clone();
        let start = segments.first().map_or(0, |s| s.base_offset);
        if offset < start || offset > high_watermark {
            return Err(ReadError::OffsetOutOfRange {
                offset,
                start,
                high_watermark,
            });
        }
        if offset == high_watermark {
            return Ok(Vec::new());
        }
        let first = segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        for segment in &segments[first..] {
            if segment.base_offset >= high_watermark {
                break;
            }
            let position = segment.position_for(offset);
            if let Some(batches) = segment.read(position, offset, high_watermark, max_bytes)? {
                return Ok(batches);
            }
        }
        Ok(Vec::new())
    }

    /// The offset of the first record below the high-watermark whose timestamp is at
    /// least `timestamp` (Kafka's `ListOffsets` by time), found through the time index.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<u64>, ReadError> {
        let high_watermark = self.high_watermark();
        let segments = lock(&self.shared.segments).clone();
        for (i, segment) in segments.iter().enumerate() {
            if segment.base_offset >= high_watermark {
                break;
            }
            let is_active = i + 1 == segments.len();
            let (sealed_max, start) = {
                let idx = lock(&segment.indexes);
                (idx.times.max_timestamp(), idx.times.lookup(timestamp))
            };
            if !is_active && sealed_max.is_some_and(|m| m < timestamp) {
                continue;
            }
            let mut offset = segment.base_offset + start as u64;
            loop {
                let position = segment.position_for(offset);
                let Some(batches) = segment.read(position, offset, high_watermark, 1 << 20)? else {
                    break;
                };
                for batch in &batches {
                    // A batch compaction emptied (a producer's last) holds no record to
                    // point at, whatever its maxTimestamp (Kafka skips it too).
                    if batch.header().max_timestamp < timestamp || batch.header().records_count == 0
                    {
                        continue;
                    }
                    let found = batch
                        .records()
                        .filter_map(Result::ok)
                        .find(|r| r.timestamp >= timestamp)
                        .map_or(batch.base_offset(), |r| r.offset);
                    return Ok(Some(found));
                }
                offset = batches.last().expect("read returns batches").last_offset() + 1;
            }
        }
        Ok(None)
    }
}
