//! Encoding: new producer batches, and the cleaner's rewrites of existing ones.

use bytes::{BufMut, BytesMut};

use super::header::{
    ATTR_COMPRESSION_MASK, ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_LOG_APPEND_TIME,
    ATTR_TRANSACTIONAL, batch_crc,
};
use super::varint;
use super::{
    BatchError, BatchHeader, Compression, HEADER_LEN, LOG_OVERHEAD, MAGIC, MAX_BATCH_LEN,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, Record, RecordBatch,
};
use crate::Timestamp;

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
    /// Timestamp (`CreateTime`, Unix milliseconds).
    pub timestamp: Timestamp,
    /// Key, or `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers as (key, value) pairs.
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
}

impl<'a> NewRecord<'a> {
    /// A record with a key and a value and no headers.
    pub fn new(timestamp: Timestamp, key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> Self {
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
    let header_count = i32::try_from(header_count).expect("fewer than 2^31 headers");
    let body = 1
        + varint::varlong_len(timestamp_delta)
        + varint::varint_len(offset_delta)
        + nullable_len(key)
        + nullable_len(value)
        + varint::varint_len(header_count)
        + headers
            .clone()
            .map(|(k, v)| nullable_len(Some(k)) + nullable_len(v))
            .sum::<usize>();
    assert!(body <= MAX_BATCH_LEN, "record larger than MAX_BATCH_LEN");
    buf.reserve(body + 5);
    varint::put_varint(buf, body as i32);
    buf.put_u8(0);
    varint::put_varlong(buf, timestamp_delta);
    varint::put_varint(buf, offset_delta);
    put_nullable(buf, key);
    put_nullable(buf, value);
    varint::put_varint(buf, header_count);
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
pub const NO_TIMESTAMP: Timestamp = -1;

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
        Some(b) => varint::varint_len(checked_len(b)) + b.len(),
    }
}

/// A key, value or header length as Kafka's `varint`.
///
/// # Panics
///
/// If the slice is larger than [`MAX_BATCH_LEN`]: callers bound batch sizes long before.
fn checked_len(b: &[u8]) -> i32 {
    assert!(b.len() <= MAX_BATCH_LEN, "field larger than MAX_BATCH_LEN");
    b.len() as i32
}

fn put_nullable(buf: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => varint::put_varint(buf, -1),
        Some(b) => {
            varint::put_varint(buf, checked_len(b));
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
        RecordBatch::from_checked(self.header, self.buf.freeze())
    }
}
