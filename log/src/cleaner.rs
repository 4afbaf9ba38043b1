//! Retention and compaction of sealed segments (Kafka's `cleanup.policy`).
//!
//! - Retention deletes whole segments, oldest first, while their newest record is
//!   older than `retention_ms` or the log is larger than `retention_bytes`.
//! - Compaction keeps, in the sealed segments, only the latest record of each key
//!   (Kafka's log cleaner): each segment is rewritten next to the original, fsynced,
//!   and renamed over it, so a crash leaves either the old or the new segment. Offsets
//!   never change: records keep theirs, and batches keep their base and last offsets.
//!   Tombstones (null values) are kept for `delete_retention_ms` after the cleaning
//!   that first sees them, so consumers that are behind still see the delete
//!   (KIP-534): that cleaning stamps the batch's *delete horizon*, `now +
//!   delete_retention_ms`, into its `baseTimestamp` with attribute bit 6, and a later
//!   cleaning removes the tombstones once `now` reaches it. The record's own
//!   timestamp, set by its producer, plays no part: a delete stamped with an old time
//!   is kept as long as any other.
//! - The last batch of each idempotent producer still remembered (not expired) is kept
//!   even when all its records are removed, as a batch without records that keeps
//!   its offsets, producer id, epoch and sequence (Kafka's cleaner does the same), so
//!   producer state rebuilt from the batches still recognises the producer's retries.
//!
//! The active segment is never touched by either.

use std::collections::HashMap;
use std::io;

use crate::Timestamp;
use crate::batch::{Record, empty_batch, rebuild};
use crate::config::CleanupPolicy;
use crate::log::files::{remove_if_exists, write_indexes};
use crate::log::{Log, SegmentState};
use crate::loom::Arc;
use crate::segment::{
    CLEANED_SUFFIX, INDEX_SUFFIX, IndexBuilder, Indexes, LOG_SUFFIX, ScanMode, Segment,
    TIME_INDEX_SUFFIX, file_name, scan,
};
use crate::storage::{Storage, StorageFile, write_all_at};

/// What [`Log::apply_retention`] deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes deleted.
    pub deleted_bytes: u64,
    /// The log start offset afterwards.
    pub log_start_offset: u64,
}

/// What [`Log::compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Sealed segments rewritten.
    pub segments_rewritten: usize,
    /// Records kept in the sealed segments.
    pub records_kept: u64,
    /// Records removed because a later record has the same key.
    pub records_superseded: u64,
    /// Tombstones removed because their batch's delete horizon passed.
    pub tombstones_removed: u64,
    /// Batches given a delete horizon because they hold tombstones (KIP-534).
    pub delete_horizons_set: u64,
    /// Batches kept without records because each is the last batch of an idempotent
    /// producer (so its sequence state survives).
    pub producer_batches_kept: u64,
    /// Bytes of the sealed segments before and after.
    pub bytes_before: u64,
    /// Bytes of the sealed segments after.
    pub bytes_after: u64,
}

impl<S: Storage> Log<S> {
    /// Deletes sealed segments past `retention_ms` (by their newest record, compared
    /// with `now`) and, oldest first, while the log exceeds `retention_bytes`. Does
    /// nothing unless the cleanup policy includes `delete`. The active segment is
    /// never deleted. Readers holding a deleted segment finish their read.
    ///
    /// # Errors
    ///
    /// A storage error, or the log failed earlier ([`Log::is_failed`]: nothing is
    /// deleted until it is reopened).
    pub fn apply_retention(&mut self, now: Timestamp) -> io::Result<RetentionReport> {
        self.check_not_failed()?;
        let mut report = RetentionReport::default();
        if self.config.cleanup == CleanupPolicy::Compact {
            report.log_start_offset = self.log_start_offset();
            return Ok(report);
        }
        let mut total = self.size_bytes();
        let mut delete = 0;
        for seg in &self.segments[..self.segments.len() - 1] {
            let expired = match (self.config.retention_ms, seg.max_timestamp) {
                (Some(ms), Some(max)) => max < now.saturating_sub(ms),
                _ => false,
            };
            let oversize = self
                .config
                .retention_bytes
                .is_some_and(|limit| total - seg.size >= limit);
            if !(expired || oversize) {
                break;
            }
            total -= seg.size;
            delete += 1;
        }
        if delete == 0 {
            report.log_start_offset = self.log_start_offset();
            return Ok(report);
        }
        self.mark_dirty()?;
        let removed: Vec<_> = self.segments.drain(..delete).collect();
        self.publish_segments();
        for seg in &removed {
            report.deleted_segments += 1;
            report.deleted_bytes += seg.size;
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                remove_if_exists(&self.dir, &file_name(seg.base_offset(), suffix))?;
            }
        }
        self.dir.sync_dir()?;
        report.log_start_offset = self.log_start_offset();
        Ok(report)
    }

    /// Compacts the sealed segments: keeps the latest record per key and every record
    /// without a key; stamps batches holding tombstones with the delete horizon `now +
    /// delete_retention_ms` the first time it sees them, and removes the tombstones at
    /// a cleaning whose `now` has reached it (KIP-534); keeps each idempotent
    /// producer's last batch, without records if need be. Does nothing unless the
    /// cleanup policy includes `compact`. `now` is the caller's wall clock (a
    /// [`Timestamp`]), the clock the horizon is compared with.
    ///
    /// # Errors
    ///
    /// A storage error, damaged data in a sealed segment, or the log failed earlier
    /// ([`Log::is_failed`]: nothing is rewritten until it is reopened).
    pub fn compact(&mut self, now: Timestamp) -> io::Result<CompactionReport> {
        self.check_not_failed()?;
        let mut report = CompactionReport::default();
        if self.config.cleanup == CleanupPolicy::Delete || self.segments.len() < 2 {
            return Ok(report);
        }
        let sealed = self.segments.len() - 1;
        // Pass 1: the latest offset of every key in the sealed segments.
        let mut latest: HashMap<Vec<u8>, u64> = HashMap::new();
        for seg in &self.segments[..sealed] {
            for_each_record(seg, |r| {
                if let Some(k) = &r.key {
                    latest.insert(k.to_vec(), r.offset);
                }
            })?;
        }
        // Pass 2: rewrite each sealed segment with the survivors.
        let stamped_horizon = now.saturating_add(self.config.delete_retention_ms);
        for i in 0..sealed {
            report.bytes_before += self.segments[i].size;
            let mut out: Vec<u8> = Vec::with_capacity(self.segments[i].size as usize);
            let mut changed = false;
            let mut batches = Vec::new();
            read_batches(&self.segments[i], |b| batches.push(b))?;
            for batch in batches {
                let header = *batch.header();
                let records: Vec<Record> = batch
                    .records()
                    .collect::<Result<_, _>>()
                    .map_err(io::Error::other)?;
                let total = records.len();
                // KIP-534: tombstones go once the horizon stamped at their first
                // cleaning has passed, never by their own timestamp.
                let horizon_passed = header.has_delete_horizon() && now >= header.base_timestamp;
                let mut tombstones = false;
                let kept: Vec<Record> = records
                    .into_iter()
                    .filter(|r| match &r.key {
                        None => true,
                        Some(k) => {
                            if latest.get(&k[..]) != Some(&r.offset) {
                                report.records_superseded += 1;
                                false
                            } else if r.value.is_some() {
                                true
                            } else if horizon_passed {
                                report.tombstones_removed += 1;
                                false
                            } else {
                                tombstones = true;
                                true
                            }
                        }
                    })
                    .collect();
                report.records_kept += kept.len() as u64;
                let stamp = tombstones && !header.has_delete_horizon();
                let producers_last = header.has_producer_id()
                    && self
                        .producers
                        .is_last_batch(header.producer_id, header.last_offset());
                if kept.len() == total && !stamp && (total > 0 || producers_last) {
                    out.extend_from_slice(batch.as_bytes());
                    continue;
                }
                changed = true;
                if kept.is_empty() {
                    if producers_last {
                        out.extend_from_slice(empty_batch(&header).as_slice());
                        report.producer_batches_kept += 1;
                    }
                    continue;
                }
                let horizon = if stamp {
                    report.delete_horizons_set += 1;
                    Some(stamped_horizon)
                } else {
                    header.has_delete_horizon().then_some(header.base_timestamp)
                };
                let rebuilt = rebuild(&header, &kept, horizon).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("batch at offset {} cannot be rewritten", header.base_offset),
                    )
                })?;
                out.extend_from_slice(rebuilt.as_slice());
            }
            if changed {
                self.mark_dirty()?;
                self.replace_segment(i, &out)?;
                report.segments_rewritten += 1;
            }
            report.bytes_after += self.segments[i].size;
        }
        Ok(report)
    }

    /// Swaps segment `i`'s data for `bytes`: write `.log.cleaned`, fsync, drop the old
    /// indexes, rename over the `.log`, rebuild and write the indexes. A crash at any
    /// step leaves the old or the new data, and indexes that are missing (rebuilt on
    /// open) or match.
    fn replace_segment(&mut self, i: usize, bytes: &[u8]) -> io::Result<()> {
        let base = self.segments[i].base_offset();
        let cleaned = format!("{}{CLEANED_SUFFIX}", file_name(base, LOG_SUFFIX));
        let file = self.dir.open(&cleaned, true)?;
        file.set_len(0)?;
        write_all_at(&file, bytes, 0)?;
        file.sync_data()?;
        drop(file);
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&self.dir, &file_name(base, suffix))?;
        }
        self.dir.sync_dir()?;
        self.dir.rename(&cleaned, &file_name(base, LOG_SUFFIX))?;
        self.dir.sync_dir()?;
        let file = self.dir.open(&file_name(base, LOG_SUFFIX), false)?;
        let mut indexes = Indexes::default();
        let mut builder = IndexBuilder::default();
        let interval = self.config.index_interval_bytes;
        let end = scan(&file, base, ScanMode::Headers, |pos, h| {
            builder.on_batch(&mut indexes, base, pos, h, interval)
        })?;
        builder.seal(&mut indexes, base);
        write_indexes(&self.dir, base, &indexes, false)?;
        let old = &self.segments[i];
        let persisted = (
            indexes.offsets.entries().len(),
            indexes.times.entries().len(),
        );
        let next_offset = old.next_offset;
        let first_append_ms = old.first_append_ms;
        self.segments[i] = SegmentState {
            shared: Arc::new(Segment::new(base, file, indexes)),
            size: end.valid_len,
            next_offset,
            max_timestamp: builder.max_timestamp,
            first_append_ms,
            builder,
            persisted,
        };
        self.publish_segments();
        Ok(())
    }
}

/// Reads every batch of a sealed segment in order, checking each CRC: compaction
/// must neither drop unreadable data silently nor re-checksum damaged data.
fn read_batches<F: StorageFile>(
    seg: &SegmentState<F>,
    mut each: impl FnMut(crate::batch::RecordBatch),
) -> io::Result<()> {
    let mut position = 0u64;
    while position < seg.size {
        let Some(batches) = seg.shared.read(position, 0, u64::MAX, 1 << 20)? else {
            break;
        };
        for b in batches {
            position += b.len() as u64;
            let checked = crate::batch::RecordBatch::decode(b.as_bytes().clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            each(checked);
        }
    }
    if position != seg.size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "segment {} is damaged at byte {position}",
                seg.base_offset()
            ),
        ));
    }
    Ok(())
}

fn for_each_record<F: StorageFile>(
    seg: &SegmentState<F>,
    mut each: impl FnMut(&Record),
) -> io::Result<()> {
    let mut result = Ok(());
    read_batches(seg, |b| {
        for r in b.records() {
            match r {
                Ok(r) => each(&r),
                Err(e) => result = Err(io::Error::other(e)),
            }
        }
    })?;
    result
}
