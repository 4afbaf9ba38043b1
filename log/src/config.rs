//! Log configuration, named after Kafka's topic configs (`segment.bytes`,
//! `flush.messages`...) with Kafka's defaults.

/// When the log fsyncs the active segment.
///
/// Kafka's default leaves flushing to the OS and relies on replication; a single-node
/// user who needs durability picks [`FlushPolicy::every_batch`] or a threshold. The
/// durable offset reported by every append tells the caller what a crash cannot lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct FlushPolicy {
    /// Flush once this many bytes were appended since the last flush (`0`: after every
    /// batch). Kafka's `flush.messages` counts records; bytes bound the loss window better.
    pub max_unflushed_bytes: Option<u64>,
    /// Flush when the oldest unflushed append is this old (`flush.ms`), checked at
    /// appends and at [`crate::Log::handle_timeout`].
    pub max_unflushed_ms: Option<i64>,
}

impl FlushPolicy {
    /// Fsync after every append.
    pub const fn every_batch() -> Self {
        FlushPolicy {
            max_unflushed_bytes: Some(0),
            max_unflushed_ms: None,
        }
    }

    /// Fsync once `bytes` are unflushed.
    pub const fn every_bytes(bytes: u64) -> Self {
        FlushPolicy {
            max_unflushed_bytes: Some(bytes),
            max_unflushed_ms: None,
        }
    }

    /// Fsync once the oldest unflushed append is `ms` old.
    pub const fn every_millis(ms: i64) -> Self {
        FlushPolicy {
            max_unflushed_bytes: None,
            max_unflushed_ms: Some(ms),
        }
    }

    /// Never fsync on the log's own initiative (segments are still fsynced when they
    /// roll, and [`crate::Log::flush`] and [`crate::Log::close`] always fsync).
    pub const fn os() -> Self {
        FlushPolicy {
            max_unflushed_bytes: None,
            max_unflushed_ms: None,
        }
    }
}

impl Default for FlushPolicy {
    fn default() -> Self {
        Self::os()
    }
}

/// Which offsets readers may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HighWatermarkPolicy {
    /// Everything appended (a single node without replication).
    #[default]
    Appended,
    /// Only what is fsynced: a reader never sees data a crash can take back.
    Durable,
    /// Only what the user marks with [`crate::Log::set_high_watermark`], e.g. the
    /// offset a replication protocol has committed.
    Manual,
}

/// What the cleaner does to sealed segments (`cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CleanupPolicy {
    /// Delete whole segments by time and size (`delete`).
    #[default]
    Delete,
    /// Keep the latest record per key (`compact`).
    Compact,
    /// Both (`compact,delete`).
    CompactDelete,
}

/// Configuration of one partition log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LogConfig {
    /// Roll to a new segment before the active one exceeds this size (`segment.bytes`,
    /// default 1 GiB; at most 2 GiB because index positions are 31-bit).
    pub segment_bytes: u64,
    /// Roll when the active segment's first append (by the `now` passed to
    /// [`crate::Log::append`], since the log was opened) is this old (`segment.ms`, 7 days).
    pub segment_ms: Option<i64>,
    /// Bytes between index entries (`index.interval.bytes`, 4096).
    pub index_interval_bytes: u64,
    /// Largest batch accepted (`message.max.bytes`, 1,048,588). A batch larger than
    /// `segment_bytes` gets a segment of its own.
    pub max_batch_bytes: usize,
    /// When to fsync.
    pub flush: FlushPolicy,
    /// What readers may see.
    pub high_watermark: HighWatermarkPolicy,
    /// What the cleaner does.
    pub cleanup: CleanupPolicy,
    /// Delete segments whose newest record is older than this (`retention.ms`, 7 days).
    pub retention_ms: Option<i64>,
    /// Delete the oldest segments while the log is larger than this (`retention.bytes`).
    pub retention_bytes: Option<u64>,
    /// How long compaction keeps tombstones (`delete.retention.ms`, 1 day).
    pub delete_retention_ms: i64,
    /// Forget idempotent producers idle for this long (`producer.id.expiration.ms`, 1 day).
    pub producer_expiration_ms: i64,
    /// Leader epoch stamped into appended batches (`partitionLeaderEpoch`).
    pub leader_epoch: i32,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(7 * DAY_MS),
            index_interval_bytes: 4096,
            max_batch_bytes: 1_048_588,
            flush: FlushPolicy::default(),
            high_watermark: HighWatermarkPolicy::default(),
            cleanup: CleanupPolicy::default(),
            retention_ms: Some(7 * DAY_MS),
            retention_bytes: None,
            delete_retention_ms: DAY_MS,
            producer_expiration_ms: DAY_MS,
            leader_epoch: 0,
        }
    }
}

/// Why a [`LogConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `segment_bytes` must hold a batch header and fit 31-bit positions. Nothing
    /// changed: no log is opened.
    #[error("segment_bytes must be between 61 and 2^31 - 1, got {0}")]
    SegmentBytes(u64),
    /// `max_batch_bytes` must hold a batch header and be at most 64 MiB. Nothing changed:
    /// no log is opened.
    #[error("max_batch_bytes must be between 61 and 64 MiB, got {0}")]
    MaxBatchBytes(usize),
    /// A duration is negative or zero where it must be positive. Nothing changed: no log
    /// is opened.
    #[error("{0} must be positive")]
    NotPositive(&'static str),
}

impl LogConfig {
    /// Checks the limits documented on each field; [`Log::open`](crate::Log::open) calls
    /// it. The fields it does not bound (`index_interval_bytes`, `retention_bytes`,
    /// `flush.max_unflushed_bytes`, `leader_epoch`, the policies) are safe at every
    /// value: they are only compared or copied, and the time arithmetic on the
    /// `*_ms` fields saturates.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let header = crate::batch::HEADER_LEN as u64;
        if self.segment_bytes < header || self.segment_bytes > i32::MAX as u64 {
            return Err(ConfigError::SegmentBytes(self.segment_bytes));
        }
        if (self.max_batch_bytes as u64) < header
            || self.max_batch_bytes > crate::batch::MAX_BATCH_LEN
        {
            return Err(ConfigError::MaxBatchBytes(self.max_batch_bytes));
        }
        for (name, v) in [
            ("segment_ms", self.segment_ms),
            ("retention_ms", self.retention_ms),
            ("flush.max_unflushed_ms", self.flush.max_unflushed_ms),
        ] {
            if v.is_some_and(|v| v <= 0) {
                return Err(ConfigError::NotPositive(name));
            }
        }
        if self.delete_retention_ms < 0 {
            return Err(ConfigError::NotPositive("delete_retention_ms"));
        }
        if self.producer_expiration_ms <= 0 {
            return Err(ConfigError::NotPositive("producer_expiration_ms"));
        }
        Ok(())
    }
}
