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
//!
//! The format's concepts, one file each: [`header`](self::header) (the fixed header,
//! its attribute bits and the CRC), [`records`](self::records) (a checked batch and
//! lazy record decoding), [`varint`](self::varint) (Kafka's zig-zag varints over the
//! canonical `unsigned-varint` codec) and [`builder`](self::builder) (encoding new
//! batches and the cleaner's rewrites).

mod builder;
mod header;
mod records;
mod varint;

pub use self::builder::{BatchBuf, BatchBuilder, NO_TIMESTAMP, NewRecord, ProducerStamp};
pub(crate) use self::builder::{empty_batch, rebuild};
pub use self::header::{BatchHeader, Compression, TimestampType};
pub(crate) use self::header::{batch_crc, sequence_add};
pub use self::records::{Record, RecordBatch, RecordHeader, Records};

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

/// Why bytes are not a valid record batch. Returned by every decoder; none of them panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Fewer bytes than the header or `batchLength` promises (a torn write, or a short read).
    /// Nothing changed (decoding has no state).
    #[error("truncated batch: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// `batchLength` is below the header size or above [`MAX_BATCH_LEN`]. Nothing changed.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// The batch is not magic 2 (Kafka's older message sets are not supported). Nothing
    /// changed.
    #[error("unsupported magic byte {0}")]
    UnsupportedMagic(i8),
    /// The stored CRC-32C does not match the bytes: the batch is damaged. Nothing changed.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The records are compressed with a codec this crate does not decode
    /// (1 gzip, 2 snappy, 3 lz4, 4 zstd). The batch itself is intact. Nothing changed.
    #[error("records compressed with codec {0}, which this crate does not decode")]
    UnsupportedCompression(u8),
    /// A record field is malformed: a bad varint, a negative length, a record whose
    /// length disagrees with its fields, or a header count that does not fit; a varint
    /// that is not in its shortest encoding, or longer than 5 bytes (varint) or 10 bytes
    /// (varlong). Nothing changed; the records before it decoded.
    #[error("malformed record {index}: {reason}")]
    MalformedRecord {
        /// Index of the record inside the batch.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// `recordsCount`, `lastOffsetDelta` or the records' offset deltas disagree. Nothing
    /// changed.
    #[error("inconsistent batch: {0}")]
    Inconsistent(&'static str),
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

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

    /// A one-record batch whose record is exactly `record` (length prefix included),
    /// with a correct header and CRC, so only the record's own bytes are on trial.
    fn batch_with_raw_record(record: &[u8]) -> BytesMut {
        let mut b = BatchBuilder::new();
        b.push(NewRecord::new(0, None, None));
        let mut buf = BytesMut::from(b.finish().expect("one record").as_slice());
        buf.truncate(HEADER_LEN);
        buf.extend_from_slice(record);
        let batch_length = (buf.len() - LOG_OVERHEAD) as i32;
        buf[8..12].copy_from_slice(&batch_length.to_be_bytes());
        let crc = batch_crc(&buf);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        buf
    }

    fn first_record(buf: BytesMut) -> Result<Record, BatchError> {
        let batch = RecordBatch::decode(buf.freeze()).expect("header and CRC are valid");
        batch.records().next().expect("one record")
    }

    #[test]
    fn canonical_hand_built_record_decodes() {
        // length 6, attributes, timestampDelta 0, offsetDelta 0, null key, null value,
        // no headers.
        let record = [0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00];
        let buf = batch_with_raw_record(&record);
        assert!(BatchBuf::from_bytes(buf.clone()).is_ok());
        let r = first_record(buf).expect("canonical record");
        assert_eq!((r.offset, r.key, r.value), (0, None, None));
    }

    #[test]
    fn non_minimal_varint_in_a_record_is_refused() {
        // timestampDelta 0 written as [0x80, 0x00]: the length (7) agrees, but the
        // encoding is not the shortest one.
        let record = [0x0e, 0x00, 0x80, 0x00, 0x00, 0x01, 0x01, 0x00];
        let buf = batch_with_raw_record(&record);
        assert!(matches!(
            first_record(buf.clone()),
            Err(BatchError::MalformedRecord { index: 0, .. })
        ));
        assert!(matches!(
            BatchBuf::from_bytes(buf),
            Err(BatchError::MalformedRecord { index: 0, .. })
        ));
        // The record length itself, 6 as [0x8c, 0x00].
        let record = [0x8c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00];
        assert!(matches!(
            first_record(batch_with_raw_record(&record)),
            Err(BatchError::MalformedRecord { index: 0, .. })
        ));
    }

    #[test]
    fn overlong_varint_and_varlong_in_a_record_are_refused() {
        // offsetDelta (a varint) in 6 bytes: more than a 32-bit varint may take.
        let mut record = vec![0x16, 0x00, 0x00];
        record.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
        record.extend_from_slice(&[0x01, 0x01, 0x00]);
        assert_eq!(record.len() - 1, 11);
        assert!(matches!(
            first_record(batch_with_raw_record(&record)),
            Err(BatchError::MalformedRecord { index: 0, .. })
        ));
        // timestampDelta (a varlong) in 11 bytes: more than a 64-bit varint may take.
        let mut record = vec![0x20, 0x00];
        record.extend_from_slice(&[0x80; 10]);
        record.extend_from_slice(&[0x00, 0x00, 0x01, 0x01, 0x00]);
        assert_eq!(record.len() - 1, 16);
        assert!(matches!(
            first_record(batch_with_raw_record(&record)),
            Err(BatchError::MalformedRecord { index: 0, .. })
        ));
    }
}
