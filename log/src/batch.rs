//! Kafka record batch v2 (magic 2, KIP-98): the on-disk and on-wire unit of the log.
//!
//! Layout (big-endian integers; Kafka protocol guide, "Record Batch"):
//!
//! ```text
//! offset  field                    type
//!      0  baseOffset               int64
//!      8  batchLength              int32   bytes after this field
//!     12  partitionLeaderEpoch     int32
//!     16  magic                    int8    = 2
//!     17  crc                      uint32  CRC-32C of bytes 21..end
//!     21  attributes               int16   bits 0-2 compression, 3 timestamp type,
//!                                          4 transactional, 5 control, 6 delete horizon
//!     23  lastOffsetDelta          int32
//!     27  baseTimestamp            int64
//!     35  maxTimestamp             int64
//!     43  producerId               int64
//!     51  producerEpoch            int16
//!     53  baseSequence             int32
//!     57  recordsCount             int32
//!     61  records                  recordsCount × Record
//! ```
//!
//! A record is `length varint, attributes int8, timestampDelta varlong, offsetDelta
//! varint, keyLength varint, key, valueLength varint, value, headersCount varint,
//! headers` with zig-zag varints and `-1` lengths for null. Because the CRC starts at
//! `attributes`, the log assigns `baseOffset` and `partitionLeaderEpoch` without
//! recomputing it, exactly as a Kafka broker does.

use bytes::{BufMut, Bytes, BytesMut};
use integer_encoding::VarInt;

/// The record batch format version this crate reads and writes.
pub const MAGIC: i8 = 2;
/// Bytes of a batch header, up to and including `recordsCount`.
pub const HEADER_LEN: usize = 61;
/// `baseOffset` and `batchLength`: the prefix that frames every batch in a `.log` file.
pub const LOG_OVERHEAD: usize = 12;
/// Largest batch this crate accepts (Kafka's default `message.max.bytes` is about 1 MiB;
/// this bound only protects readers from absurd lengths in damaged files).
pub const MAX_BATCH_LEN: usize = 64 << 20;
/// `producerId` of a batch written without an idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` of a batch written without an idempotent producer.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` of a batch written without an idempotent producer.
pub const NO_SEQUENCE: i32 = -1;

const CRC_START: usize = 21;
const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
const ATTR_DELETE_HORIZON: i16 = 0x40;

/// Why bytes are not a valid record batch. Returned by every decoder; none of them panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Fewer bytes than the header or `batchLength` promises (a torn write, or a short read).
    #[error("truncated batch: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// `batchLength` is below the header size or above [`MAX_BATCH_LEN`].
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// The batch is not magic 2 (Kafka's older message sets are not supported).
    #[error("unsupported magic byte {0}")]
    UnsupportedMagic(i8),
    /// The stored CRC-32C does not match the bytes: the batch is damaged.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The records are compressed with a codec this crate does not decode
    /// (1 gzip, 2 snappy, 3 lz4, 4 zstd). The batch itself is intact.
    #[error("records compressed with codec {0}, which this crate does not decode")]
    UnsupportedCompression(u8),
    /// A record field is malformed: a bad varint, a negative length, a record whose
    /// length disagrees with its fields, or a header count that does not fit.
    #[error("malformed record {index}: {reason}")]
    MalformedRecord {
        /// Index of the record inside the batch.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// `recordsCount`, `lastOffsetDelta` or the records' offset deltas disagree.
    #[error("inconsistent batch: {0}")]
    Inconsistent(&'static str),
}

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
    pub base_timestamp: i64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// Idempotent producer id, or [`NO_PRODUCER_ID`].
    pub producer_id: i64,
    /// Producer epoch, or [`NO_PRODUCER_EPOCH`].
    pub producer_epoch: i16,
    /// Sequence number of the first record, or [`NO_SEQUENCE`].
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: u32,
}

impl BatchHeader {
    /// Decodes and sanity-checks a header from the first [`HEADER_LEN`] bytes of `buf`.
    /// Does not check the CRC (that needs the whole batch; see [`RecordBatch::decode`]).
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
    pub timestamp: i64,
    /// Key, or `None` for a null key.
    pub key: Option<Bytes>,
    /// Value, or `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

/// A record header: a UTF-8 key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
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
        let (v, n) = i32::decode_var(&self.buf[self.pos..self.end])
            .ok_or_else(|| self.fail("bad varint"))?;
        self.pos += n;
        Ok(v)
    }

    fn varlong(&mut self) -> Result<i64, BatchError> {
        let (v, n) = i64::decode_var(&self.buf[self.pos..self.end])
            .ok_or_else(|| self.fail("bad varlong"))?;
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
        headers.push(Header { key, value });
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

/// Producer identity stamped on a batch by an idempotent producer (KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ProducerStamp {
    /// Producer id (non-negative).
    pub producer_id: i64,
    /// Producer epoch; a higher epoch fences older instances of the same producer.
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record.
    pub base_sequence: i32,
}

/// A record to add to a [`BatchBuilder`].
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    /// Timestamp in milliseconds (`CreateTime`).
    pub timestamp: i64,
    /// Key, or `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers as (key, value) pairs.
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
}

impl<'a> NewRecord<'a> {
    /// A record with a key and a value and no headers.
    pub fn new(timestamp: i64, key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> Self {
        NewRecord {
            timestamp,
            key,
            value,
            headers: &[],
        }
    }
}

/// Builds an uncompressed record batch, copying each key and value once into the
/// batch buffer. The log assigns the base offset at append.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: BytesMut,
    producer: Option<ProducerStamp>,
    count: u32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty builder without producer id.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty builder that reserves `capacity` bytes for records.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(HEADER_LEN + capacity);
        buf.put_bytes(0, HEADER_LEN);
        BatchBuilder {
            buf,
            producer: None,
            count: 0,
            base_timestamp: 0,
            max_timestamp: 0,
        }
    }

    /// Stamps the batch with an idempotent producer's id, epoch and first sequence.
    pub fn producer(mut self, stamp: ProducerStamp) -> Self {
        self.producer = Some(stamp);
        self
    }

    /// Records added so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// No record added yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encoded size so far, header included.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Appends a record.
    ///
    /// # Panics
    ///
    /// If a key, value or header is larger than [`MAX_BATCH_LEN`] or the batch already
    /// holds `i32::MAX` records: callers bound batch sizes long before that.
    pub fn push(&mut self, record: NewRecord<'_>) {
        if self.count == 0 {
            self.base_timestamp = record.timestamp;
            self.max_timestamp = record.timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        let timestamp_delta = record.timestamp.wrapping_sub(self.base_timestamp);
        let offset_delta = i32::try_from(self.count).expect("fewer than 2^31 records per batch");
        let headers = record.headers.iter().map(|(k, v)| (k.as_bytes(), *v));
        encode_record(
            &mut self.buf,
            timestamp_delta,
            offset_delta,
            record.key,
            record.value,
            headers,
        );
        self.count += 1;
    }

    /// Finishes the batch: writes the header and CRC-32C and returns it ready to append.
    /// Returns `None` when no record was added (Kafka has no empty producer batches).
    pub fn finish(mut self) -> Option<BatchBuf> {
        if self.count == 0 {
            return None;
        }
        let p = self.producer.unwrap_or(ProducerStamp {
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
        });
        let batch_length = (self.buf.len() - LOG_OVERHEAD) as i32;
        let h = &mut self.buf[..HEADER_LEN];
        h[0..8].copy_from_slice(&0i64.to_be_bytes());
        h[8..12].copy_from_slice(&batch_length.to_be_bytes());
        h[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        h[16] = MAGIC as u8;
        h[21..23].copy_from_slice(&0i16.to_be_bytes());
        h[23..27].copy_from_slice(&(self.count as i32 - 1).to_be_bytes());
        h[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[43..51].copy_from_slice(&p.producer_id.to_be_bytes());
        h[51..53].copy_from_slice(&p.producer_epoch.to_be_bytes());
        h[53..57].copy_from_slice(&p.base_sequence.to_be_bytes());
        h[57..61].copy_from_slice(&(self.count as i32).to_be_bytes());
        let crc = batch_crc(&self.buf);
        self.buf[17..21].copy_from_slice(&crc.to_be_bytes());
        let header = BatchHeader::decode(&self.buf).expect("the builder writes a valid header");
        Some(BatchBuf {
            header,
            buf: self.buf,
        })
    }
}

/// Appends one record in the v2 record layout.
///
/// # Panics
///
/// If the record is larger than [`MAX_BATCH_LEN`]: callers bound batch sizes long before.
fn encode_record<'h>(
    buf: &mut BytesMut,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl ExactSizeIterator<Item = (&'h [u8], Option<&'h [u8]>)> + Clone,
) {
    let header_count = headers.len();
    let body = 1
        + timestamp_delta.required_space()
        + offset_delta.required_space()
        + nullable_len(key)
        + nullable_len(value)
        + (header_count as i32).required_space()
        + headers
            .clone()
            .map(|(k, v)| nullable_len(Some(k)) + nullable_len(v))
            .sum::<usize>();
    assert!(body <= MAX_BATCH_LEN, "record larger than MAX_BATCH_LEN");
    buf.reserve(body + 5);
    put_varint(buf, body as i64);
    buf.put_u8(0);
    put_varint(buf, timestamp_delta);
    put_varint(buf, offset_delta as i64);
    put_nullable(buf, key);
    put_nullable(buf, value);
    put_varint(buf, header_count as i64);
    for (k, v) in headers {
        put_nullable(buf, Some(k));
        put_nullable(buf, v);
    }
}

/// Re-encodes a batch keeping only `records` (a subset of its records, in order) at
/// their original offsets: the base offset, `lastOffsetDelta`, producer fields and
/// leader epoch stay, so offsets and producer state never change (what Kafka's
/// cleaner does to v2 batches). With `delete_horizon`, `baseTimestamp` holds it and
/// attribute bit 6 is set (KIP-534, as Kafka's `MemoryRecordsBuilder` does); without,
/// `baseTimestamp` stays. Record timestamps are written as deltas from whichever
/// `baseTimestamp` the batch gets, so they decode unchanged. `None` when `records` is
/// empty (see [`empty_batch`]).
pub(crate) fn rebuild(
    original: &BatchHeader,
    records: &[Record],
    delete_horizon: Option<i64>,
) -> Option<BatchBuf> {
    if records.is_empty() {
        return None;
    }
    let base_timestamp = delete_horizon.unwrap_or(original.base_timestamp);
    let mut buf = BytesMut::with_capacity(original.total_len());
    buf.put_bytes(0, HEADER_LEN);
    let mut max_timestamp = i64::MIN;
    for r in records {
        max_timestamp = max_timestamp.max(r.timestamp);
        let offset_delta = i32::try_from(r.offset - original.base_offset).ok()?;
        let headers = r.headers.iter().map(|h| (&h.key[..], h.value.as_deref()));
        encode_record(
            &mut buf,
            r.timestamp.wrapping_sub(base_timestamp),
            offset_delta,
            r.key.as_deref(),
            r.value.as_deref(),
            headers,
        );
    }
    let batch_length = (buf.len() - LOG_OVERHEAD) as i32;
    let mut attributes =
        original.attributes & !(ATTR_COMPRESSION_MASK | ATTR_LOG_APPEND_TIME | ATTR_DELETE_HORIZON);
    if delete_horizon.is_some() {
        attributes |= ATTR_DELETE_HORIZON;
    }
    let h = &mut buf[..HEADER_LEN];
    h[0..8].copy_from_slice(&(original.base_offset as i64).to_be_bytes());
    h[8..12].copy_from_slice(&batch_length.to_be_bytes());
    h[12..16].copy_from_slice(&original.partition_leader_epoch.to_be_bytes());
    h[16] = MAGIC as u8;
    h[21..23].copy_from_slice(&attributes.to_be_bytes());
    h[23..27].copy_from_slice(&(original.last_offset_delta as i32).to_be_bytes());
    h[27..35].copy_from_slice(&base_timestamp.to_be_bytes());
    h[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    h[43..51].copy_from_slice(&original.producer_id.to_be_bytes());
    h[51..53].copy_from_slice(&original.producer_epoch.to_be_bytes());
    h[53..57].copy_from_slice(&original.base_sequence.to_be_bytes());
    h[57..61].copy_from_slice(&(records.len() as i32).to_be_bytes());
    let crc = batch_crc(&buf);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    let header = BatchHeader::decode(&buf).ok()?;
    Some(BatchBuf { header, buf })
}

/// `baseTimestamp` of a batch without records (Kafka's `RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;

/// The header of `original` without its records, as Kafka's cleaner writes the last
/// batch of a producer whose records are all gone (`DefaultRecordBatch.writeEmptyHeader`):
/// base offset, `lastOffsetDelta`, leader epoch, producer id, epoch and base sequence,
/// `maxTimestamp`, and the timestamp-type, transactional and control bits stay;
/// `recordsCount` is 0, `baseTimestamp` is [`NO_TIMESTAMP`], and there is no
/// compression and no delete horizon. Recovering producer state from the batch headers
/// then still finds the producer's last sequence (KIP-98).
pub(crate) fn empty_batch(original: &BatchHeader) -> BatchBuf {
    let mut buf = BytesMut::zeroed(HEADER_LEN);
    let attributes =
        original.attributes & (ATTR_LOG_APPEND_TIME | ATTR_TRANSACTIONAL | ATTR_CONTROL);
    let h = &mut buf[..];
    h[0..8].copy_from_slice(&(original.base_offset as i64).to_be_bytes());
    h[8..12].copy_from_slice(&((HEADER_LEN - LOG_OVERHEAD) as i32).to_be_bytes());
    h[12..16].copy_from_slice(&original.partition_leader_epoch.to_be_bytes());
    h[16] = MAGIC as u8;
    h[21..23].copy_from_slice(&attributes.to_be_bytes());
    h[23..27].copy_from_slice(&(original.last_offset_delta as i32).to_be_bytes());
    h[27..35].copy_from_slice(&NO_TIMESTAMP.to_be_bytes());
    h[35..43].copy_from_slice(&original.max_timestamp.to_be_bytes());
    h[43..51].copy_from_slice(&original.producer_id.to_be_bytes());
    h[51..53].copy_from_slice(&original.producer_epoch.to_be_bytes());
    h[53..57].copy_from_slice(&original.base_sequence.to_be_bytes());
    h[57..61].copy_from_slice(&0i32.to_be_bytes());
    let crc = batch_crc(&buf);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    // Every field comes from a header that passed `BatchHeader::decode`'s checks, and
    // the length is exactly a header's.
    let header = BatchHeader::decode(&buf).expect("the original header's fields are valid");
    BatchBuf { header, buf }
}

fn nullable_len(v: Option<&[u8]>) -> usize {
    match v {
        None => 1,
        Some(b) => (b.len() as i64).required_space() + b.len(),
    }
}

fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut tmp = [0u8; 10];
    let n = v.encode_var(&mut tmp);
    buf.put_slice(&tmp[..n]);
}

fn put_nullable(buf: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
    }
}

/// A complete record batch waiting to be appended: built by [`BatchBuilder`] or
/// checked from untrusted bytes by [`BatchBuf::from_bytes`]. The log patches its base
/// offset and leader epoch in place (outside the CRC) and writes it with one call.
#[derive(Debug, Clone)]
pub struct BatchBuf {
    header: BatchHeader,
    buf: BytesMut,
}

impl BatchBuf {
    /// Checks untrusted bytes (e.g. a produce request): exactly one batch, magic 2,
    /// CRC-32C, and, for uncompressed batches, every record and offset delta.
    pub fn from_bytes(buf: BytesMut) -> Result<Self, BatchError> {
        let header = BatchHeader::decode(&buf)?;
        if buf.len() != header.total_len() {
            return Err(if buf.len() < header.total_len() {
                BatchError::Truncated {
                    needed: header.total_len(),
                    available: buf.len(),
                }
            } else {
                BatchError::Inconsistent("bytes after the batch")
            });
        }
        let computed = batch_crc(&buf);
        if computed != header.crc {
            return Err(BatchError::CrcMismatch {
                stored: header.crc,
                computed,
            });
        }
        let batch = BatchBuf { header, buf };
        if header.compression() == Compression::None {
            batch.clone().freeze().validate_records()?;
        }
        Ok(batch)
    }

    /// The header (base offset as last set).
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// Encoded size.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Always false: a batch has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The encoded bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Sets `baseOffset` and `partitionLeaderEpoch` (neither is covered by the CRC).
    pub(crate) fn assign(&mut self, base_offset: u64, leader_epoch: i32) {
        self.buf[0..8].copy_from_slice(&(base_offset as i64).to_be_bytes());
        self.buf[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
        self.header.base_offset = base_offset;
        self.header.partition_leader_epoch = leader_epoch;
    }

    /// Freezes into a shared [`RecordBatch`].
    pub fn freeze(self) -> RecordBatch {
        RecordBatch {
            header: self.header,
            bytes: self.buf.freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_round_trips_records() {
        let mut b = BatchBuilder::new();
        b.push(NewRecord::new(1_000, Some(b"k1"), Some(b"v1")));
        b.push(NewRecord {
            timestamp: 900,
            key: None,
            value: None,
            headers: &[("h", Some(b"x")), ("n", None)],
        });
        let mut buf = b.finish().expect("two records");
        buf.assign(42, 7);
        let batch = RecordBatch::decode(buf.freeze().as_bytes().clone()).expect("valid");
        assert_eq!(batch.base_offset(), 42);
        assert_eq!(batch.last_offset(), 43);
        assert_eq!(batch.header().max_timestamp, 1_000);
        assert_eq!(batch.header().partition_leader_epoch, 7);
        let records: Vec<_> = batch.records().collect::<Result<_, _>>().expect("records");
        assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(records[0].timestamp, 1_000);
        assert_eq!(records[1].offset, 43);
        assert_eq!(records[1].timestamp, 900);
        assert_eq!(records[1].value, None);
        assert_eq!(records[1].headers.len(), 2);
        assert_eq!(records[1].headers[1].value, None);
        batch.validate_records().expect("consistent");
    }

    #[test]
    fn every_truncation_and_flip_is_an_error() {
        let mut b = BatchBuilder::new();
        for i in 0..5u8 {
            b.push(NewRecord::new(i as i64, Some(&[i]), Some(&[i; 30])));
        }
        let bytes = b.finish().expect("records").freeze().as_bytes().clone();
        for cut in 0..bytes.len() {
            assert!(
                RecordBatch::decode(bytes.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
        for at in 16..bytes.len() {
            let mut damaged = bytes.to_vec();
            damaged[at] ^= 0x5a;
            assert!(
                RecordBatch::decode(Bytes::from(damaged)).is_err(),
                "flip at {at}"
            );
        }
    }

    #[test]
    fn sequence_numbers_wrap_like_kafka() {
        assert_eq!(sequence_add(5, 3), 8);
        assert_eq!(sequence_add(i32::MAX, 1), 0);
        assert_eq!(sequence_add(i32::MAX - 1, 3), 1);
    }
}
