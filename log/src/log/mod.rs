//! A partition: a directory of segments with one appender ([`Log`]) and any number
//! of concurrent readers ([`LogReader`]).
//!
//! Durability follows Kafka's `UnifiedLog`: appends go to the active segment and are
//! fsynced by the flush policy; a segment is fsynced when it rolls, and the
//! *recovery point* (the first offset that may not be durable) is checkpointed then.
//! Opening validates every batch from the recovery point on and truncates at the
//! first damaged one, so a torn tail never surfaces to readers.

mod checkpoint;
pub(crate) mod files;
mod loader;
mod producer_snapshots;
mod reader;

use std::io;

use self::checkpoint::Checkpoint;
use self::files::{persist_new_index_entries, write_indexes};
use crate::Timestamp;
use crate::batch::{BatchBuf, RecordBatch};
use crate::config::{HighWatermarkPolicy, LogConfig};
use crate::loom::{Arc, AtomicU64, Mutex, Ordering, lock};
use crate::producer::{ProducerError, ProducerTable, SequenceCheck};
use crate::segment::{
    INDEX_SUFFIX, IndexBuilder, Indexes, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX, file_name,
};
use crate::storage::{Storage, StorageFile, write_all_at};

pub use self::loader::{OpenError, RecoveryReport};
pub use self::reader::{LogReader, ReadError};

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
    /// An earlier fsync or cleanup failed; reopen the log. Nothing changed (nothing was
    /// written).
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
    /// An earlier failure; reopen the log. Nothing changed.
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
    pub max_timestamp: Option<Timestamp>,
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
    pub(crate) max_timestamp: Option<Timestamp>,
    /// The caller's clock at the segment's first append since open: `segment.ms`
    /// counts from there (Kafka counts from the first batch's timestamp, which
    /// makes producers with old timestamps roll a segment per batch).
    pub(crate) first_append_ms: Option<Timestamp>,
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
/// commands (`append`, `flush`, `handle_timeout`, `set_high_watermark`, `apply_retention`,
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
    oldest_unflushed_ms: Option<Timestamp>,
    pub(crate) producers: ProducerTable,
    failed: Option<String>,
    /// The on-disk checkpoint still claims a clean shutdown.
    dirty_checkpoint_pending: bool,
    high_watermark: u64,
}

impl<S: Storage> Log<S> {
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

    /// Appends a batch at the next offset, `now` being the caller's wall clock (a
    /// [`Timestamp`], used for time-based rolling and flushing). A batch from an
    /// idempotent producer is checked against the producer's sequence: a retry of a
    /// batch already written returns its original offsets with `duplicate: true`.
    pub fn append(&mut self, mut batch: BatchBuf, now: Timestamp) -> Result<Appended, AppendError> {
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
            self.roll().map_err(|e| match e {
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
            Checkpoint::dirty(base).write(&self.dir)?;
            self.dirty_checkpoint_pending = false;
        }
        Ok(())
    }

    fn needs_roll(&self, batch_len: u64, last_delta: u64, now: Timestamp) -> bool {
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

    fn flush_due(&self, now: Timestamp) -> bool {
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
    /// expired idempotent producers. Call it at [`Log::poll_timeout`]; calling it
    /// early or late is harmless (a flush that is due runs, nothing else happens).
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), FlushError> {
        self.producers
            .expire(now, self.config.producer_expiration_ms);
        if self.flush_due(now) {
            self.flush()?;
        }
        Ok(())
    }

    /// When [`Log::handle_timeout`] next has something to do, if ever, on the same
    /// [`Timestamp`] scale as the `now` passed to appends: the earlier of the
    /// time-based flush (`flush.ms` after the oldest unflushed append) and the first
    /// idempotent producer's expiry (`producer.id.expiration.ms` after its last
    /// batch's timestamp).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let flush = self
            .config
            .flush
            .max_unflushed_ms
            .zip(self.oldest_unflushed_ms)
            .map(|(ms, oldest)| oldest.saturating_add(ms));
        let expiry = self
            .producers
            .next_expiry(self.config.producer_expiration_ms);
        flush.into_iter().chain(expiry).min()
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
    pub fn roll(&mut self) -> Result<(), FlushError> {
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
        if let Err(e) = producer_snapshots::write(&self.dir, base, &self.producers) {
            self.failed = Some(format!("writing the producer snapshot failed: {e}"));
            return Err(FlushError::Snapshot(e));
        }
        // A checkpoint that fails to move only means validating more at the next open.
        let _ = Checkpoint::dirty(base).write(&self.dir);
        producer_snapshots::prune(&self.dir);
        Ok(())
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
        producer_snapshots::write(&self.dir, next, &self.producers)
            .map_err(FlushError::Snapshot)?;
        Checkpoint {
            offset: next,
            clean_size,
        }
        .write(&self.dir)
        .map_err(FlushError::Sync)?;
        producer_snapshots::prune(&self.dir);
        Ok(())
    }

    /// Reads whole batches from `offset` on (the batch holding `offset` first), about
    /// `max_bytes` of them and at least one; see [`LogReader::read`].
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<Vec<RecordBatch>, ReadError> {
        self.reader().read(offset, max_bytes)
    }

    /// The offset of the first record whose timestamp is at least `timestamp`; see
    /// [`LogReader::offset_for_timestamp`].
    pub fn offset_for_timestamp(&self, timestamp: Timestamp) -> Result<Option<u64>, ReadError> {
        self.reader().offset_for_timestamp(timestamp)
    }
}
