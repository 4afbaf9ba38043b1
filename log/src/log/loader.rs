//! Recovery at open (Kafka's `LogLoader`): validate from the recovery point on, cut
//! the log at the first damaged batch, rebuild missing or inconsistent indexes and
//! restore producer state.

use std::io;

use super::checkpoint::Checkpoint;
use super::files::{load_indexes, remove_if_exists, write_indexes};
use super::{Log, SegmentState, Shared, producer_snapshots};
use crate::config::{HighWatermarkPolicy, LogConfig, LogConfigError};
use crate::loom::{Arc, AtomicU64, Mutex};
use crate::segment::{
    CLEANED_SUFFIX, INDEX_SUFFIX, IndexBuilder, Indexes, LOG_SUFFIX, ScanMode, Segment,
    TIME_INDEX_SUFFIX, TMP_SUFFIX, file_name, parse_file_name, scan,
};
use crate::storage::{Storage, StorageFile};

/// Why a log could not be opened. Damaged data is not an error: it is truncated and
/// reported in [`RecoveryReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration is invalid; nothing was touched.
    #[error("invalid config: {0}")]
    Config(#[from] LogConfigError),
    /// The storage failed; the directory may be partly recovered (opening again redoes it).
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
        let checkpoint = Checkpoint::read(&dir);
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
        let producers = producer_snapshots::restore(&dir, &names, &segments, next_offset)?;
        let active_base = segments.last().expect("at least one segment").base_offset();
        // After a clean shutdown the checkpoint still says "clean"; it is replaced
        // before the first change (`mark_dirty`), so opening a clean log writes nothing.
        let dirty_checkpoint_pending = report.clean_shutdown;
        if !dirty_checkpoint_pending {
            Checkpoint::dirty(active_base).write(&dir)?;
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
}
