//! A complete, CRC-checked batch and the lazy decoding of its records.

use bytes::Bytes;

use super::header::batch_crc;
use super::varint;
use super::{BatchError, BatchHeader, Compression, HEADER_LEN, TimestampType};
use crate::Timestamp;

/// A complete, CRC-checked record batch backed by shared bytes.
///
/// Cloning is cheap; record keys and values are slices of the same buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
}

impl std::fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.header.base_offset)
            .field("last_offset", &self.header.last_offset())
            .field("records", &self.header.records_count)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl RecordBatch {
    /// Decodes the batch at the start of `bytes` and checks its CRC-32C. The batch
    /// may be followed by more bytes; [`RecordBatch::len`] tells where it ends.
    /// Records are decoded lazily by [`RecordBatch::records`].
    pub fn decode(bytes: Bytes) -> Result<Self, BatchError> {
        let header = BatchHeader::decode(&bytes)?;
        let total = header.total_len();
        if bytes.len() < total {
            return Err(BatchError::Truncated {
                needed: total,
                available: bytes.len(),
            });
        }
        let bytes = bytes.slice(..total);
        let computed = batch_crc(&bytes);
        if computed != header.crc {
            return Err(BatchError::CrcMismatch {
                stored: header.crc,
                computed,
            });
        }
        Ok(RecordBatch { header, bytes })
    }

    /// Wraps bytes whose header and CRC the caller has already checked.
    pub(crate) fn from_checked(header: BatchHeader, bytes: Bytes) -> Self {
        debug_assert_eq!(bytes.len(), header.total_len());
        RecordBatch { header, bytes }
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> u64 {
        self.header.base_offset
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> u64 {
        self.header.last_offset()
    }

    /// The batch exactly as stored, framing included.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Stored size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a batch has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Iterates over the records, decoding each on demand. Fails on compressed batches
    /// ([`BatchError::UnsupportedCompression`]) and on malformed records.
    pub fn records(&self) -> Records<'_> {
        Records {
            batch: self,
            pos: HEADER_LEN,
            index: 0,
            failed: false,
        }
    }

    /// Decodes every record, checking that offset deltas run 0, 1, 2... and agree with
    /// `recordsCount` and `lastOffsetDelta`.
    pub fn validate_records(&self) -> Result<(), BatchError> {
        let mut count = 0u32;
        for record in self.records() {
            let record = record?;
            if record.offset != self.header.base_offset + count as u64 {
                return Err(BatchError::Inconsistent(
                    "record offset deltas are not 0, 1, 2...",
                ));
            }
            count += 1;
        }
        if count != self.header.records_count {
            return Err(BatchError::Inconsistent(
                "recordsCount does not match the records",
            ));
        }
        if count == 0 || self.header.last_offset_delta != count - 1 {
            return Err(BatchError::Inconsistent(
                "lastOffsetDelta does not match the records",
            ));
        }
        Ok(())
    }
}

/// One record of a batch. Keys, values and header values share the batch's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset in the partition.
    pub offset: u64,
    /// Timestamp in milliseconds (the batch's append time for `LogAppendTime` batches).
    pub timestamp: Timestamp,
    /// Key, or `None` for a null key.
    pub key: Option<Bytes>,
    /// Value, or `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<RecordHeader>,
}

/// A record header: a UTF-8 key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key (Kafka requires UTF-8; invalid UTF-8 is rejected by the decoder).
    pub key: Bytes,
    /// Header value, or `None` for null.
    pub value: Option<Bytes>,
}

/// Iterator over a batch's records; see [`RecordBatch::records`].
#[derive(Debug)]
pub struct Records<'a> {
    batch: &'a RecordBatch,
    pos: usize,
    index: usize,
    failed: bool,
}

impl Iterator for Records<'_> {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let header = &self.batch.header;
        if self.failed || self.index >= header.records_count as usize {
            return None;
        }
        if let Compression::Other(codec) = header.compression() {
            self.failed = true;
            return Some(Err(BatchError::UnsupportedCompression(codec)));
        }
        match decode_record(&self.batch.bytes, self.pos, self.index, header) {
            Ok((record, next)) => {
                self.pos = next;
                self.index += 1;
                Some(Ok(record))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

struct Cursor<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
    index: usize,
}

impl Cursor<'_> {
    fn fail(&self, reason: &'static str) -> BatchError {
        BatchError::MalformedRecord {
            index: self.index,
            reason,
        }
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        let (v, n) = varint::decode_varint(&self.buf[self.pos..self.end])
            .map_err(|e| self.fail(varint::describe(e)))?;
        self.pos += n;
        Ok(v)
    }

    fn varlong(&mut self) -> Result<i64, BatchError> {
        let (v, n) = varint::decode_varlong(&self.buf[self.pos..self.end])
            .map_err(|e| self.fail(varint::describe(e)))?;
        self.pos += n;
        Ok(v)
    }

    fn nullable_bytes(&mut self) -> Result<Option<Bytes>, BatchError> {
        let len = self.varint()?;
        if len < 0 {
            return if len == -1 {
                Ok(None)
            } else {
                Err(self.fail("negative length"))
            };
        }
        let len = len as usize;
        if len > self.end - self.pos {
            return Err(self.fail("length past the end of the record"));
        }
        let out = self.buf.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(Some(out))
    }
}

fn decode_record(
    buf: &Bytes,
    pos: usize,
    index: usize,
    header: &BatchHeader,
) -> Result<(Record, usize), BatchError> {
    let mut c = Cursor {
        buf,
        pos,
        end: buf.len(),
        index,
    };
    let length = c.varint()?;
    if length < 0 || length as usize > c.end - c.pos {
        return Err(c.fail("record length past the end of the batch"));
    }
    c.end = c.pos + length as usize;
    if c.pos >= c.end {
        return Err(c.fail("empty record"));
    }
    c.pos += 1; // attributes: unused in v2
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    if offset_delta < 0 {
        return Err(c.fail("negative offset delta"));
    }
    let key = c.nullable_bytes()?;
    let value = c.nullable_bytes()?;
    let header_count = c.varint()?;
    if header_count < 0 || header_count as usize > c.end - c.pos {
        return Err(c.fail("bad header count"));
    }
    let mut headers = Vec::with_capacity(header_count as usize);
    for _ in 0..header_count {
        let key = c
            .nullable_bytes()?
            .ok_or_else(|| c.fail("null header key"))?;
        if std::str::from_utf8(&key).is_err() {
            return Err(c.fail("header key is not UTF-8"));
        }
        let value = c.nullable_bytes()?;
        headers.push(RecordHeader { key, value });
    }
    if c.pos != c.end {
        return Err(c.fail("record length disagrees with its fields"));
    }
    let timestamp = match header.timestamp_type() {
        TimestampType::LogAppendTime => header.max_timestamp,
        TimestampType::CreateTime => header.base_timestamp.wrapping_add(timestamp_delta),
    };
    let record = Record {
        offset: header.base_offset + offset_delta as u64,
        timestamp,
        key,
        value,
        headers,
    };
    Ok((record, c.end))
}
