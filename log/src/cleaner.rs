//! Retention and compaction of sealed segments (Kafka's `cleanup.policy`).
//!
//! - Retention deletes whole segments, oldest first, while their newest record is
//!   older than `retention_ms` or the log is larger than `retention_bytes`.
//! - Compaction keeps, in the sealed segments, only the latest record of each key
//!   (Kafka's log cleaner): each segment is rewritten next to the original, fsynced,
//!   and renamed over it, so a crash leaves either the old or the new segment. Offsets
//!   never change: records keep theirs, and batches keep their base and last offsets.
//!   Tombstones (null values) are kept for `delete_retention_ms` after their
//!   timestamp, so consumers that are behind still see the delete.
//!
//! The active segment is never touched by either.

use std::collections::HashMap;
use std::io;

use crate::batch::{Record, rebuild};
use crate::config::CleanupPolicy;
use crate::log::{Log, SegmentState, remove_if_exists, write_indexes};
use crate::segment::{
    CLEANED_SUFFIX, INDEX_SUFFIX, IndexBuilder, Indexes, LOG_SUFFIX, ScanMode, Segment,
    TIME_INDEX_SUFFIX, file_name, scan,
};
use crate::storage::{Storage, StorageFile, write_all_at};
use crate::sync::Arc;

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
    /// Tombstones removed because `delete_retention_ms` passed.
    pub tombstones_removed: u64,
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
    pub fn apply_retention(&mut self, now: i64) -> io::Result<RetentionReport> {
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

    /// Compacts the sealed segments: keeps the latest record per key, drops
    /// tombstones older than `delete_retention_ms` before `now`, and records without
    /// a key are kept. Does nothing unless the cleanup policy includes `compact`.
    pub fn compact(&mut self, now: i64) -> io::Result<CompactionReport> {
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
        let horizon = now.saturating_sub(self.config.delete_retention_ms);
        for i in 0..sealed {
            report.bytes_before += self.segments[i].size;
            let mut out: Vec<u8> = Vec::with_capacity(self.segments[i].size as usize);
            let mut changed = false;
            let mut batches = Vec::new();
            read_batches(&self.segments[i], |b| batches.push(b))?;
            for batch in batches {
                let records: Vec<Record> = batch
                    .records()
                    .collect::<Result<_, _>>()
                    .map_err(io::Error::other)?;
                let total = records.len();
                let kept: Vec<Record> = records
                    .into_iter()
                    .filter(|r| match &r.key {
                        None => true,
                        Some(k) => {
                            if latest.get(&k[..]) != Some(&r.offset) {
                                report.records_superseded += 1;
                                false
                            } else if r.value.is_none() && r.timestamp < horizon {
                                report.tombstones_removed += 1;
                                false
                            } else {
                                true
                            }
                        }
                    })
                    .collect();
                report.records_kept += kept.len() as u64;
                if kept.len() == total {
                    out.extend_from_slice(batch.as_bytes());
                } else {
                    changed = true;
                    if let Some(rebuilt) = rebuild(batch.header(), &kept) {
                        out.extend_from_slice(rebuilt.as_slice());
                    }
                }
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
