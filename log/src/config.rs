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
    /// At most [`MAX_CONFIG_BYTES`]; `None`: never by size.
    pub max_unflushed_bytes: Option<u64>,
    /// Flush when the oldest unflushed append is this old (`flush.ms`), checked at
    /// appends and at [`crate::Log::handle_timeout`]. Positive, at most
    /// [`MAX_CONFIG_MS`]; `None`: never by time.
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

/// The longest duration a `*_ms` field of [`LogConfig`] (and [`FlushPolicy`]) accepts:
/// `i64::MAX / 2` milliseconds (about 146 million years). Kafka's `*.ms` settings are
/// `long`s; bounding them at half that range keeps `now + ms` and `now - ms` inside
/// `i64` for every [`Timestamp`](crate::Timestamp) a clock can give (the log's time
/// arithmetic also saturates, so a timestamp near the ends of the range is still safe).
pub const MAX_CONFIG_MS: i64 = i64::MAX / 2;

/// The largest byte count a byte-threshold field of [`LogConfig`] accepts
/// (`retention_bytes`, `flush.max_unflushed_bytes`): `i64::MAX`, the range of Kafka's
/// `long` `retention.bytes`, so the value round-trips to and from Kafka's configs.
pub const MAX_CONFIG_BYTES: u64 = i64::MAX as u64;

/// Configuration of one partition log.
///
/// Built from [`LogConfig::default`] (Kafka's defaults) and changed by assignment;
/// [`LogConfig::validate`] (which [`Log::open`](crate::Log::open) calls) checks the
/// limits documented on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LogConfig {
    /// Roll to a new segment before the active one exceeds this size (`segment.bytes`,
    /// default 1 GiB). Between 61 (a batch header) and 2^31 - 1, because index
    /// positions are 31-bit.
    pub segment_bytes: u64,
    /// Roll when the active segment's first append (by the `now` passed to
    /// [`crate::Log::append`], since the log was opened) is this old (`segment.ms`, 7
    /// days). Positive, at most [`MAX_CONFIG_MS`]; `None`: never by time.
    pub segment_ms: Option<i64>,
    /// Bytes between index entries (`index.interval.bytes`, 4096). From 0 (every batch
    /// is indexed) to 2^31 - 1 (the largest segment), Kafka's own range.
    pub index_interval_bytes: u64,
    /// Largest batch accepted (`message.max.bytes`, 1,048,588). Between 61 and 64 MiB.
    /// A batch larger than `segment_bytes` gets a segment of its own.
    pub max_batch_bytes: usize,
    /// When to fsync. Its thresholds are bounded like the fields here:
    /// `max_unflushed_bytes` at most [`MAX_CONFIG_BYTES`], `max_unflushed_ms` positive and at
    /// most [`MAX_CONFIG_MS`].
    pub flush: FlushPolicy,
    /// What readers may see.
    pub high_watermark: HighWatermarkPolicy,
    /// What the cleaner does.
    pub cleanup: CleanupPolicy,
    /// Delete segments whose newest record is older than this (`retention.ms`, 7 days).
    /// Positive, at most [`MAX_CONFIG_MS`]; `None`: never by time.
    pub retention_ms: Option<i64>,
    /// Delete the oldest segments while the log is larger than this (`retention.bytes`).
    /// At most [`MAX_CONFIG_BYTES`]; `None`: never by size.
    pub retention_bytes: Option<u64>,
    /// How long compaction keeps tombstones (`delete.retention.ms`, 1 day). From 0 to
    /// [`MAX_CONFIG_MS`].
    pub delete_retention_ms: i64,
    /// Forget idempotent producers idle for this long (`producer.id.expiration.ms`, 1
    /// day). Positive, at most [`MAX_CONFIG_MS`].
    pub producer_expiration_ms: i64,
    /// Leader epoch stamped into appended batches (`partitionLeaderEpoch`, 0). At least
    /// -1: Kafka's epochs count up from 0, and -1 is its "no epoch"
    /// (`NO_PARTITION_LEADER_EPOCH`); anything below has no meaning in Kafka.
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

/// Why a [`LogConfig`] is refused, by [`LogConfig::validate`] or by
/// [`Log::open`](crate::Log::open) (as [`OpenError::Config`](crate::OpenError::Config)).
/// Every variant means the same for state: nothing changed, no log is opened and no
/// file is touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogConfigError {
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
    /// A duration is above [`MAX_CONFIG_MS`]. Nothing changed: no log is opened.
    #[error("{field} must be at most i64::MAX / 2 ms, got {value}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its value, in milliseconds.
        value: i64,
    },
    /// A byte threshold is above [`MAX_CONFIG_BYTES`]. Nothing changed: no log is opened.
    #[error("{field} must be at most i64::MAX bytes, got {value}")]
    TooManyBytes {
        /// The field.
        field: &'static str,
        /// Its value, in bytes.
        value: u64,
    },
    /// `index_interval_bytes` is above 2^31 - 1 (the largest segment). Nothing changed:
    /// no log is opened.
    #[error("index_interval_bytes must be at most 2^31 - 1, got {0}")]
    IndexIntervalBytes(u64),
    /// `leader_epoch` is below -1. Nothing changed: no log is opened.
    #[error("leader_epoch must be at least -1, got {0}")]
    LeaderEpoch(i32),
}

impl LogConfig {
    /// Checks the limits documented on each field; [`Log::open`](crate::Log::open) calls
    /// it. Every field is bounded (the policies are enums, valid at every value), so no
    /// arithmetic on a valid config overflows: sizes stay within `i64`, durations
    /// within [`MAX_CONFIG_MS`], and the time arithmetic saturates besides.
    pub fn validate(&self) -> Result<(), LogConfigError> {
        let header = crate::batch::HEADER_LEN as u64;
        if self.segment_bytes < header || self.segment_bytes > i32::MAX as u64 {
            return Err(LogConfigError::SegmentBytes(self.segment_bytes));
        }
        if (self.max_batch_bytes as u64) < header
            || self.max_batch_bytes > crate::batch::MAX_BATCH_LEN
        {
            return Err(LogConfigError::MaxBatchBytes(self.max_batch_bytes));
        }
        if self.index_interval_bytes > i32::MAX as u64 {
            return Err(LogConfigError::IndexIntervalBytes(
                self.index_interval_bytes,
            ));
        }
        for (field, value) in [
            ("retention_bytes", self.retention_bytes),
            ("flush.max_unflushed_bytes", self.flush.max_unflushed_bytes),
        ] {
            if let Some(value) = value.filter(|&v| v > MAX_CONFIG_BYTES) {
                return Err(LogConfigError::TooManyBytes { field, value });
            }
        }
        for (field, value) in [
            ("segment_ms", self.segment_ms),
            ("retention_ms", self.retention_ms),
            ("flush.max_unflushed_ms", self.flush.max_unflushed_ms),
            ("producer_expiration_ms", Some(self.producer_expiration_ms)),
        ] {
            if value.is_some_and(|v| v <= 0) {
                return Err(LogConfigError::NotPositive(field));
            }
        }
        if self.delete_retention_ms < 0 {
            return Err(LogConfigError::NotPositive("delete_retention_ms"));
        }
        for (field, value) in [
            ("segment_ms", self.segment_ms),
            ("retention_ms", self.retention_ms),
            ("flush.max_unflushed_ms", self.flush.max_unflushed_ms),
            ("delete_retention_ms", Some(self.delete_retention_ms)),
            ("producer_expiration_ms", Some(self.producer_expiration_ms)),
        ] {
            if let Some(value) = value.filter(|&v| v > MAX_CONFIG_MS) {
                return Err(LogConfigError::TooLong { field, value });
            }
        }
        if self.leader_epoch < -1 {
            return Err(LogConfigError::LeaderEpoch(self.leader_epoch));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(change: impl FnOnce(&mut LogConfig)) -> LogConfigError {
        let mut config = LogConfig::default();
        change(&mut config);
        config.validate().expect_err("refused")
    }

    fn accepted(change: impl FnOnce(&mut LogConfig)) {
        let mut config = LogConfig::default();
        change(&mut config);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn default_is_valid() {
        accepted(|_| {});
    }

    #[test]
    fn segment_and_batch_sizes_are_bounded() {
        assert_eq!(
            refused(|c| c.segment_bytes = 60),
            LogConfigError::SegmentBytes(60)
        );
        let too_big = i32::MAX as u64 + 1;
        assert_eq!(
            refused(|c| c.segment_bytes = too_big),
            LogConfigError::SegmentBytes(too_big)
        );
        accepted(|c| c.segment_bytes = i32::MAX as u64);
        assert_eq!(
            refused(|c| c.max_batch_bytes = 60),
            LogConfigError::MaxBatchBytes(60)
        );
    }

    #[test]
    fn index_interval_is_at_most_the_largest_segment() {
        accepted(|c| c.index_interval_bytes = 0);
        accepted(|c| c.index_interval_bytes = i32::MAX as u64);
        let too_big = i32::MAX as u64 + 1;
        assert_eq!(
            refused(|c| c.index_interval_bytes = too_big),
            LogConfigError::IndexIntervalBytes(too_big)
        );
        assert_eq!(
            refused(|c| c.index_interval_bytes = u64::MAX),
            LogConfigError::IndexIntervalBytes(u64::MAX)
        );
    }

    #[test]
    fn retention_bytes_is_at_most_max_bytes() {
        accepted(|c| c.retention_bytes = Some(0));
        accepted(|c| c.retention_bytes = Some(MAX_CONFIG_BYTES));
        assert_eq!(
            refused(|c| c.retention_bytes = Some(MAX_CONFIG_BYTES + 1)),
            LogConfigError::TooManyBytes {
                field: "retention_bytes",
                value: MAX_CONFIG_BYTES + 1
            }
        );
    }

    #[test]
    fn flush_bytes_is_at_most_max_bytes() {
        accepted(|c| c.flush = FlushPolicy::every_bytes(MAX_CONFIG_BYTES));
        assert_eq!(
            refused(|c| c.flush = FlushPolicy::every_bytes(u64::MAX)),
            LogConfigError::TooManyBytes {
                field: "flush.max_unflushed_bytes",
                value: u64::MAX
            }
        );
    }

    #[test]
    fn every_duration_is_positive_and_at_most_max_ms() {
        type Set = fn(&mut LogConfig, i64);
        let fields: [(&str, Set, bool); 5] = [
            ("segment_ms", |c, v| c.segment_ms = Some(v), false),
            ("retention_ms", |c, v| c.retention_ms = Some(v), false),
            (
                "flush.max_unflushed_ms",
                |c, v| c.flush = FlushPolicy::every_millis(v),
                false,
            ),
            (
                "delete_retention_ms",
                |c, v| c.delete_retention_ms = v,
                true,
            ),
            (
                "producer_expiration_ms",
                |c, v| c.producer_expiration_ms = v,
                false,
            ),
        ];
        for (field, set, zero_ok) in fields {
            accepted(|c| set(c, MAX_CONFIG_MS));
            assert_eq!(
                refused(|c| set(c, MAX_CONFIG_MS + 1)),
                LogConfigError::TooLong {
                    field,
                    value: MAX_CONFIG_MS + 1
                },
                "{field}"
            );
            assert_eq!(
                refused(|c| set(c, i64::MAX)),
                LogConfigError::TooLong {
                    field,
                    value: i64::MAX
                },
                "{field}"
            );
            assert_eq!(
                refused(|c| set(c, -1)),
                LogConfigError::NotPositive(field),
                "{field}"
            );
            if zero_ok {
                accepted(|c| set(c, 0));
            } else {
                assert_eq!(
                    refused(|c| set(c, 0)),
                    LogConfigError::NotPositive(field),
                    "{field}"
                );
            }
        }
    }

    #[test]
    fn leader_epoch_is_at_least_minus_one() {
        accepted(|c| c.leader_epoch = -1);
        accepted(|c| c.leader_epoch = i32::MAX);
        assert_eq!(
            refused(|c| c.leader_epoch = -2),
            LogConfigError::LeaderEpoch(-2)
        );
        assert_eq!(
            refused(|c| c.leader_epoch = i32::MIN),
            LogConfigError::LeaderEpoch(i32::MIN)
        );
    }
}
