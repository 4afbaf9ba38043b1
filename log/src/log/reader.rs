//! Reading: [`LogReader`], the handle other threads read a log through.

use std::io;

use super::Shared;
use crate::Timestamp;
use crate::batch::RecordBatch;
use crate::loom::{Arc, Ordering, lock};
use crate::storage::StorageFile;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The offset is below the log start or above the high-watermark. Nothing changed
    /// (reads change no state).
    #[error("offset {offset} out of range [{start}, {high_watermark}]")]
    OffsetOutOfRange {
        /// Requested offset.
        offset: u64,
        /// First offset in the log.
        start: u64,
        /// High-watermark.
        high_watermark: u64,
    },
    /// The storage failed. Nothing changed (reads change no state); the read may be
    /// retried.
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// A cloneable, thread-safe read handle on a log. Reads never see past the
/// high-watermark, keep working while the appender appends, rolls and deletes
/// segments, and copy each batch once, from the file into a shared buffer.
#[derive(Debug)]
pub struct LogReader<F> {
    pub(super) shared: Arc<Shared<F>>,
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
    pub fn offset_for_timestamp(&self, timestamp: Timestamp) -> Result<Option<u64>, ReadError> {
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
