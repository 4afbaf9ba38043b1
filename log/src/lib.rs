#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod batch;
mod cleaner;
mod config;
pub mod group;
pub mod index;
mod log;
mod offsets;
mod partitioner;
mod producer;
mod segment;
pub mod storage;
mod sync;

pub use batch::{
    BatchBuf, BatchBuilder, BatchError, NewRecord, ProducerStamp, Record, RecordBatch,
};
pub use cleaner::{CompactionReport, RetentionReport};
pub use config::{CleanupPolicy, ConfigError, FlushPolicy, HighWatermarkPolicy, LogConfig};
pub use log::{
    AppendError, Appended, FlushError, Log, LogReader, OpenError, ReadError, RecoveryReport,
    SegmentInfo,
};
pub use offsets::{CommitError, CommittedOffset, OffsetStore};
pub use partitioner::{murmur2, partition_for_key};
pub use producer::{BATCHES_PER_PRODUCER, ProducerError};
pub use storage::{MemDir, StdDir, Storage, StorageFile};
