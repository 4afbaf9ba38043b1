#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batch;
mod cleaner;
mod config;
pub mod group;
mod index;
mod log;
mod loom;
mod offsets;
mod partitioner;
mod producer;
mod segment;
mod storage;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use batch::{
    BatchBuf, BatchBuilder, BatchError, BatchHeader, Compression, HEADER_LEN, LOG_OVERHEAD, MAGIC,
    MAX_BATCH_LEN, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP, NewRecord,
    ProducerStamp, Record, RecordBatch, RecordHeader, Records, TimestampType,
};
pub use cleaner::{CompactionReport, RetentionReport};
pub use config::{
    CleanupPolicy, FlushPolicy, HighWatermarkPolicy, LogConfig, LogConfigError, MAX_CONFIG_BYTES,
    MAX_CONFIG_MS,
};
pub use index::{
    IndexError, OFFSET_ENTRY_LEN, OffsetEntry, OffsetIndex, TIME_ENTRY_LEN, TimeEntry, TimeIndex,
};
pub use log::{
    AppendError, Appended, FlushError, Log, LogReader, OpenError, ReadError, RecoveryReport,
    SegmentInfo,
};
pub use offsets::{CommitError, CommittedOffset, OffsetStore, OffsetStoreCounters};
pub use partitioner::{murmur2, partition_for_key};
pub use producer::{BATCHES_PER_PRODUCER, ProducerError};
pub use storage::{MemDir, MemFaults, MemFile, StdDir, StdFile, Storage, StorageFile};

/// Wall-clock time as the log sees it: milliseconds since the Unix epoch, Kafka's
/// record timestamp (`CreateTime`).
///
/// Deliberately a type alias for `i64`, not a newtype: Kafka timestamps are `i64` on
/// the wire (a batch's `baseTimestamp` and `maxTimestamp`, each record's timestamp
/// delta) and in every Kafka API (`ProducerRecord.timestamp()`,
/// `offsetsForTimes`, `ListOffsets`), so a value from a Kafka client, a record or a
/// `System.currentTimeMillis()` passes through unchanged, with Kafka's sentinels
/// ([`NO_TIMESTAMP`], `-1`) intact. The alias names the meaning in signatures; it adds
/// no checks.
///
/// Every rule that compares against record timestamps (`segment.ms`, `flush.ms`,
/// `retention.ms`, `delete.retention.ms`, producer expiry, lookups by time) takes
/// this type. The caller passes it; the log never reads a clock. Durations that
/// mirror a Kafka `*.ms` setting stay integer milliseconds (at most
/// [`MAX_CONFIG_MS`]).
pub type Timestamp = i64;
