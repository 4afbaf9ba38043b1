//! One segment: a `.log` file of record batches named by its base offset, with its
//! `.index` and `.timeindex` (Kafka's `LogSegment`). Holds the scanner that recovery,
//! index rebuilds and reads share.

use bytes::{Bytes, BytesMut};

use crate::batch::{BatchHeader, HEADER_LEN, RecordBatch, batch_crc};
use crate::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use crate::loom::{Arc, Mutex, lock};
use crate::storage::{StorageFile, read_full_at};

/// Suffix of segment data files.
pub(crate) const LOG_SUFFIX: &str = ".log";
/// Suffix of offset index files.
pub(crate) const INDEX_SUFFIX: &str = ".index";
/// Suffix of time index files.
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Suffix of files being written by compaction; removed on open.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of temporary files written before an atomic rename; removed on open.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Kafka's file name for `base_offset` with `suffix`: 20 zero-padded digits.
pub(crate) fn file_name(base_offset: u64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// Parses `00000000000000000042.log` into 42 when `name` ends with `suffix`.
pub(crate) fn parse_file_name(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Kafka offsets are int64: a larger name is not a segment this log can hold.
    digits.parse().ok().filter(|&b: &u64| b <= i64::MAX as u64)
}

/// The part of a segment readers share with the appender.
#[derive(Debug)]
pub(crate) struct Segment<F> {
    pub(crate) base_offset: u64,
    pub(crate) file: Arc<F>,
    pub(crate) indexes: Mutex<Indexes>,
}

/// A segment's in-memory indexes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Indexes {
    pub(crate) offsets: OffsetIndex,
    pub(crate) times: TimeIndex,
}

impl<F: StorageFile> Segment<F> {
    pub(crate) fn new(base_offset: u64, file: F, indexes: Indexes) -> Self {
        Segment {
            base_offset,
            file: Arc::new(file),
            indexes: Mutex::new(indexes),
        }
    }

    /// Byte position to start scanning from for `offset`.
    pub(crate) fn position_for(&self, offset: u64) -> u64 {
        if offset <= self.base_offset {
            return 0;
        }
        let relative = u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX);
        lock(&self.indexes).offsets.lookup(relative) as u64
    }

    /// Reads whole batches that end at or after `offset` and start below `limit`,
    /// from `position` on, about `max_bytes` of them (at least one when there is one,
    /// as Kafka's fetch does, KIP-74). Each batch is read once from the file into one
    /// shared buffer; the returned batches are slices of it. `None` means the segment
    /// holds nothing more below `limit`.
    pub(crate) fn read(
        &self,
        mut position: u64,
        offset: u64,
        limit: u64,
        max_bytes: usize,
    ) -> Result<Option<Vec<RecordBatch>>, std::io::Error> {
        loop {
            // `max_bytes` is a limit, not an allocation: never allocate past
            // what the file holds now (a caller may pass `usize::MAX`). A
            // batch appended meanwhile is read next time.
            let remaining = self.file.len()?.saturating_sub(position);
            let remaining = usize::try_from(remaining).unwrap_or(usize::MAX);
            let chunk = max_bytes.max(HEADER_LEN).min(remaining);
            let mut buf = BytesMut::zeroed(chunk);
            let n = read_full_at(&*self.file, &mut buf, position)?;
            buf.truncate(n);
            let buf = buf.freeze();
            let mut at = 0usize;
            let mut out = Vec::new();
            while buf.len() - at >= HEADER_LEN {
                let Ok(header) = BatchHeader::decode(&buf[at..]) else {
                    return Ok(if out.is_empty() { None } else { Some(out) });
                };
                if header.base_offset >= limit || header.next_offset() > limit {
                    return Ok(if out.is_empty() { None } else { Some(out) });
                }
                let total = header.total_len();
                if buf.len() - at < total {
                    if out.is_empty() && at == 0 {
                        // A single batch larger than max_bytes: read exactly it,
                        // once the file holds all of it (its length field is
                        // from the file: allocate no more than the file has).
                        if total > remaining {
                            return Ok(None);
                        }
                        let mut big = BytesMut::zeroed(total);
                        let got = read_full_at(&*self.file, &mut big, position)?;
                        if got < total {
                            return Ok(None);
                        }
                        let big = big.freeze();
                        if header.last_offset() >= offset {
                            return Ok(Some(vec![RecordBatch::from_checked(header, big)]));
                        }
                        position += total as u64;
                        break;
                    }
                    break;
                }
                if header.last_offset() >= offset {
                    out.push(RecordBatch::from_checked(header, buf.slice(at..at + total)));
                }
                at += total;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
            if at == 0 && buf.len() < HEADER_LEN {
                return Ok(None);
            }
            position += at as u64;
        }
    }
}

/// Where a scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// Bytes of valid batches from the start of the file.
    pub(crate) valid_len: u64,
    /// Offset after the last valid batch (the segment's base when it has none).
    pub(crate) next_offset: u64,
    /// Largest timestamp of the valid batches.
    pub(crate) max_timestamp: Option<i64>,
    /// Whether the scan stopped at invalid bytes rather than at the end of the file.
    pub(crate) damaged: bool,
}

/// How much of each batch a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanMode {
    /// Read every byte and check each batch's CRC-32C and records (recovery).
    Verify,
    /// As `Verify`, and each batch must start right after the previous one (the
    /// segment starts at its base offset and was never compacted).
    VerifyContiguous,
    /// Read only headers (trusted segments: rebuilding producer state or an index).
    Headers,
}

/// Walks the batches of a segment file, calling `each(position, header)` for every
/// valid one, and stops at the first invalid or incomplete batch. Offsets must
/// increase from batch to batch and stay within `u32` of `base_offset`.
pub(crate) fn scan<F: StorageFile + ?Sized>(
    file: &F,
    base_offset: u64,
    mode: ScanMode,
    mut each: impl FnMut(u64, &BatchHeader),
) -> std::io::Result<ScanEnd> {
    const CHUNK: usize = 1 << 20;
    let file_len = file.len()?;
    let mut end = ScanEnd {
        valid_len: 0,
        next_offset: base_offset,
        max_timestamp: None,
        damaged: false,
    };
    let mut buf = Bytes::new();
    let mut buf_pos = 0u64; // file position of buf[0]
    let mut header_bytes = [0u8; HEADER_LEN];
    loop {
        let pos = end.valid_len;
        if pos == file_len {
            return Ok(end);
        }
        let header = match mode {
            ScanMode::Headers => {
                let n = read_full_at(file, &mut header_bytes, pos)?;
                BatchHeader::decode(&header_bytes[..n])
            }
            ScanMode::Verify | ScanMode::VerifyContiguous => {
                if pos + (HEADER_LEN as u64) > buf_pos + buf.len() as u64 {
                    refill(file, &mut buf, &mut buf_pos, pos, CHUNK.max(HEADER_LEN))?;
                }
                BatchHeader::decode(&buf[(pos - buf_pos) as usize..])
            }
        };
        let Ok(header) = header else {
            end.damaged = true;
            return Ok(end);
        };
        let total = header.total_len() as u64;
        let contiguous =
            mode != ScanMode::VerifyContiguous || header.base_offset == end.next_offset;
        let in_order = contiguous
            && header.base_offset >= end.next_offset
            && header.last_offset() - base_offset <= i32::MAX as u64;
        if !in_order || pos + total > file_len {
            end.damaged = true;
            return Ok(end);
        }
        if mode != ScanMode::Headers {
            if pos + total > buf_pos + buf.len() as u64 {
                refill(file, &mut buf, &mut buf_pos, pos, CHUNK.max(total as usize))?;
                if pos + total > buf_pos + buf.len() as u64 {
                    end.damaged = true;
                    return Ok(end);
                }
            }
            let start = (pos - buf_pos) as usize;
            let bytes = buf.slice(start..start + total as usize);
            if batch_crc(&bytes) != header.crc || !records_valid(&header, bytes) {
                end.damaged = true;
                return Ok(end);
            }
        }
        each(pos, &header);
        end.valid_len = pos + total;
        end.next_offset = header.next_offset();
        end.max_timestamp = Some(
            end.max_timestamp
                .map_or(header.max_timestamp, |m: i64| m.max(header.max_timestamp)),
        );
    }
}

fn records_valid(header: &BatchHeader, bytes: Bytes) -> bool {
    if header.compression() != crate::batch::Compression::None {
        return true;
    }
    // Compaction may leave gaps between records, so only the record framing is
    // checked here; offset deltas are checked to increase.
    let batch = RecordBatch::from_checked(*header, bytes);
    let mut last = None;
    for record in batch.records() {
        match record {
            Ok(r) if last.is_none_or(|l| r.offset > l) && r.offset <= header.last_offset() => {
                last = Some(r.offset)
            }
            _ => return false,
        }
    }
    true
}

fn refill<F: StorageFile + ?Sized>(
    file: &F,
    buf: &mut Bytes,
    buf_pos: &mut u64,
    pos: u64,
    len: usize,
) -> std::io::Result<()> {
    let mut fresh = BytesMut::zeroed(len);
    let n = read_full_at(file, &mut fresh, pos)?;
    fresh.truncate(n);
    *buf = fresh.freeze();
    *buf_pos = pos;
    Ok(())
}

/// Builds a segment's indexes the way appends do: an offset entry (and a time entry
/// when the maximum timestamp grew) for a batch that starts more than
/// `interval_bytes` after the previous entry's batch.
#[derive(Debug, Clone, Default)]
pub(crate) struct IndexBuilder {
    pub(crate) bytes_since_entry: u64,
    pub(crate) max_timestamp: Option<i64>,
    pub(crate) max_timestamp_offset: u64,
}

impl IndexBuilder {
    /// Accounts for a batch appended at `position`, adding entries to `indexes`.
    pub(crate) fn on_batch(
        &mut self,
        indexes: &mut Indexes,
        base_offset: u64,
        position: u64,
        header: &BatchHeader,
        interval_bytes: u64,
    ) {
        if self.max_timestamp.is_none_or(|m| header.max_timestamp > m) {
            self.max_timestamp = Some(header.max_timestamp);
            self.max_timestamp_offset = header.last_offset();
        }
        let relative = (header.last_offset() - base_offset) as u32;
        if self.bytes_since_entry > interval_bytes {
            indexes.offsets.push(OffsetEntry {
                relative_offset: relative,
                position: position as u32,
            });
            if let Some(ts) = self.max_timestamp {
                indexes.times.push(TimeEntry {
                    timestamp: ts,
                    relative_offset: (self.max_timestamp_offset - base_offset) as u32,
                });
            }
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += header.total_len() as u64;
    }

    /// Adds the final time entry a sealed segment carries (its maximum timestamp).
    pub(crate) fn seal(&self, indexes: &mut Indexes, base_offset: u64) {
        if let Some(ts) = self.max_timestamp {
            indexes.times.push(TimeEntry {
                timestamp: ts,
                relative_offset: (self.max_timestamp_offset - base_offset) as u32,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_twenty_digits() {
        assert_eq!(file_name(42, LOG_SUFFIX), "00000000000000000042.log");
        assert_eq!(
            parse_file_name("00000000000000000042.log", LOG_SUFFIX),
            Some(42)
        );
        assert_eq!(parse_file_name("0000000000000000042.log", LOG_SUFFIX), None);
        assert_eq!(
            parse_file_name("00000000000000000042.index", LOG_SUFFIX),
            None
        );
        assert_eq!(
            parse_file_name("0000000000000000004x.log", LOG_SUFFIX),
            None
        );
    }
}
