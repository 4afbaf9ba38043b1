//! The fixed 61-byte batch header: its fields, attribute bits and CRC-32C.

use super::{BatchError, HEADER_LEN, LOG_OVERHEAD, MAGIC, MAX_BATCH_LEN};
use crate::Timestamp;

/// First byte the CRC-32C covers: `attributes`.
const CRC_START: usize = 21;
/// Attribute bits 0-2: the compression codec.
pub(super) const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: `LogAppendTime` timestamps.
pub(super) const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit 4: part of a transaction.
pub(super) const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit 5: a control batch.
pub(super) const ATTR_CONTROL: i16 = 0x20;
/// Attribute bit 6: `baseTimestamp` is a delete horizon (KIP-534).
pub(super) const ATTR_DELETE_HORIZON: i16 = 0x40;

/// Compression codec in the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Records are stored as they are (the only codec this crate writes).
    None,
    /// A codec this crate passes through but does not decode: 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    Other(u8),
}

/// Whether record timestamps were set by the producer or by the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// `CreateTime`: producer-supplied timestamps.
    CreateTime,
    /// `LogAppendTime`: the log's clock at append; `maxTimestamp` holds it.
    LogAppendTime,
}

/// The fixed 61-byte header of a record batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Bytes after the `batchLength` field.
    pub batch_length: u32,
    /// Leader epoch stamped by the log (not covered by the CRC).
    pub partition_leader_epoch: i32,
    /// CRC-32C of bytes 21..end.
    pub crc: u32,
    /// Raw attribute bits.
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: u32,
    /// Timestamp of the first record (or the delete horizon when that bit is set).
    pub base_timestamp: Timestamp,
    /// Largest record timestamp.
    pub max_timestamp: Timestamp,
    /// Idempotent producer id, or [`NO_PRODUCER_ID`](crate::NO_PRODUCER_ID).
    pub producer_id: i64,
    /// Producer epoch, or [`NO_PRODUCER_EPOCH`](crate::NO_PRODUCER_EPOCH).
    pub producer_epoch: i16,
    /// Sequence number of the first record, or [`NO_SEQUENCE`](crate::NO_SEQUENCE).
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: u32,
}

impl BatchHeader {
    /// Decodes and sanity-checks a header from the first [`HEADER_LEN`] bytes of `buf`.
    /// Does not check the CRC (that needs the whole batch; see [`RecordBatch::decode`](crate::RecordBatch::decode)).
    pub fn decode(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < LOG_OVERHEAD {
            return Err(BatchError::Truncated {
                needed: LOG_OVERHEAD,
                available: buf.len(),
            });
        }
        let batch_length = be_i32(buf, 8);
        let total = LOG_OVERHEAD as i64 + batch_length as i64;
        if total < HEADER_LEN as i64 || total > MAX_BATCH_LEN as i64 {
            return Err(BatchError::InvalidLength(batch_length));
        }
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let magic = buf[16] as i8;
        if magic != MAGIC {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let last_offset_delta = be_i32(buf, 23);
        let records_count = be_i32(buf, 57);
        if last_offset_delta < 0 || records_count < 0 {
            return Err(BatchError::Inconsistent(
                "negative lastOffsetDelta or recordsCount",
            ));
        }
        let base_offset = be_i64(buf, 0);
        if base_offset < 0 || base_offset.checked_add(last_offset_delta as i64).is_none() {
            return Err(BatchError::Inconsistent("baseOffset out of range"));
        }
        Ok(BatchHeader {
            base_offset: base_offset as u64,
            batch_length: batch_length as u32,
            partition_leader_epoch: be_i32(buf, 12),
            crc: u32::from_be_bytes(buf[17..21].try_into().expect("4-byte slice")),
            attributes: i16::from_be_bytes([buf[21], buf[22]]),
            last_offset_delta: last_offset_delta as u32,
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: i16::from_be_bytes([buf[51], buf[52]]),
            base_sequence: be_i32(buf, 53),
            records_count: records_count as u32,
        })
    }

    /// Total bytes of the batch, framing included.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record (or of the last record the batch once held, after compaction).
    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.last_offset_delta as u64
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> u64 {
        self.last_offset() + 1
    }

    /// Compression codec.
    pub fn compression(&self) -> Compression {
        match (self.attributes & ATTR_COMPRESSION_MASK) as u8 {
            0 => Compression::None,
            c => Compression::Other(c),
        }
    }

    /// Timestamp type.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTR_LOG_APPEND_TIME != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// A control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// `baseTimestamp` holds a delete horizon (set by compaction, KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & ATTR_DELETE_HORIZON != 0
    }

    /// Written by an idempotent producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence number of the last record (sequences wrap at `i32::MAX`, as in Kafka).
    pub fn last_sequence(&self) -> i32 {
        sequence_add(self.base_sequence, self.last_offset_delta as i32)
    }
}

/// Adds to a producer sequence number, wrapping from `i32::MAX` to 0 as Kafka does.
pub(crate) fn sequence_add(seq: i32, n: i32) -> i32 {
    if seq > i32::MAX - n {
        n - (i32::MAX - seq) - 1
    } else {
        seq + n
    }
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4-byte slice"))
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8-byte slice"))
}

/// CRC-32C of a whole batch as stored in its header.
pub(crate) fn batch_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_START..])
}
