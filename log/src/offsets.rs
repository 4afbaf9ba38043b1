//! Committed consumer offsets, kept in an internal compacted log the way Kafka keeps
//! them in `__consumer_offsets`: each commit is one record batch whose records are
//! keyed by (group, topic, partition), so a commit of several partitions is atomic
//! (a batch survives a crash whole or not at all), and compaction keeps only the
//! latest offset per key. Records use Kafka's own schemas (`OffsetCommitKey` version
//! 1 and `OffsetCommitValue` version 3), so Kafka's tools can decode them.
//!
//! A commit is acknowledged only once fsynced: the store's log flushes every batch.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::Timestamp;
use crate::batch::{BatchBuilder, NewRecord};
use crate::cleaner::CompactionReport;
use crate::config::{CleanupPolicy, FlushPolicy, LogConfig};
use crate::group::TopicPartition;
use crate::log::{AppendError, Log, OpenError, RecoveryReport};
use crate::storage::Storage;

/// A committed offset: the next offset the group will consume from the partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CommittedOffset {
    /// Next offset to consume.
    pub offset: u64,
    /// Leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// Free-form metadata from the committer.
    pub metadata: String,
    /// When the commit was made: the `now` [`Timestamp`](crate::Timestamp) of the commit.
    pub commit_timestamp: Timestamp,
}

/// Why a commit failed. Nothing is committed (and nothing acknowledged) when it fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// A group, topic or metadata string longer than Kafka's 32767-byte strings.
    /// Nothing changed: nothing was written.
    #[error("string too long for Kafka's offset schema: {0} bytes")]
    StringTooLong(usize),
    /// Offsets above `i64::MAX` do not fit Kafka's schema. Nothing changed: nothing was
    /// written.
    #[error("offset {0} does not fit Kafka's int64 offsets")]
    OffsetTooLarge(u64),
    /// Appending or fsyncing the commit failed; nothing is committed. After a failed
    /// write nothing changed; after a failed fsync the commit may be in the log but is
    /// not acknowledged, and the store's log is failed: reopen the store.
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// What an [`OffsetStore`] skipped, from [`OffsetStore::counters`]. Counters only grow
/// (for the life of the store value; they start at 0 at each open).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct OffsetStoreCounters {
    /// Records in the store's log that did not decode as offset commits (a key or
    /// value in a schema version this crate does not read, or damaged), skipped on
    /// replay at open.
    pub skipped_records: u64,
}

/// The committed offsets of every group, backed by a compacted [`Log`].
#[derive(Debug)]
pub struct OffsetStore<S: Storage> {
    log: Log<S>,
    committed: BTreeMap<(String, TopicPartition), CommittedOffset>,
    counters: OffsetStoreCounters,
}

const KEY_VERSION: i16 = 1;
const VALUE_VERSION: i16 = 3;

impl<S: Storage> OffsetStore<S> {
    /// The log configuration the store uses: compaction, an fsync per commit, small
    /// segments so compaction can reclaim space early.
    pub fn log_config() -> LogConfig {
        LogConfig {
            cleanup: CleanupPolicy::Compact,
            flush: FlushPolicy::every_batch(),
            segment_bytes: 100 << 20,
            retention_ms: None,
            ..LogConfig::default()
        }
    }

    /// Opens the store in `dir` and replays its log. Records that do not decode are
    /// skipped and counted ([`OffsetStoreCounters::skipped_records`]).
    pub fn open(dir: S) -> Result<(Self, RecoveryReport), OpenError> {
        let (log, report) = Log::open(dir, Self::log_config())?;
        let mut store = OffsetStore {
            log,
            committed: BTreeMap::new(),
            counters: OffsetStoreCounters::default(),
        };
        let mut offset = store.log.log_start_offset();
        while offset < store.log.high_watermark() {
            let batches = store.log.read(offset, 1 << 20).map_err(|e| match e {
                crate::log::ReadError::Io(e) => OpenError::Io(e),
                other => OpenError::Io(std::io::Error::other(other)),
            })?;
            let Some(last) = batches.last() else { break };
            offset = last.last_offset() + 1;
            for batch in &batches {
                for record in batch.records() {
                    match record
                        .ok()
                        .and_then(|r| decode_key(r.key.as_ref()?).map(|k| (k, r.value)))
                    {
                        Some((key, None)) => {
                            store.committed.remove(&key);
                        }
                        Some((key, Some(value))) => match decode_value(&value) {
                            Some(v) => {
                                store.committed.insert(key, v);
                            }
                            None => store.counters.skipped_records += 1,
                        },
                        None => store.counters.skipped_records += 1,
                    }
                }
            }
        }
        Ok((store, report))
    }

    /// Commits offsets for `group` atomically and durably (one batch, fsynced).
    pub fn commit(
        &mut self,
        group: &str,
        offsets: &[(TopicPartition, CommittedOffset)],
        now: Timestamp,
    ) -> Result<(), CommitError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut builder = BatchBuilder::new();
        let mut encoded = Vec::with_capacity(offsets.len());
        for (tp, c) in offsets {
            encoded.push((encode_key(group, tp)?, encode_value(c)?));
        }
        for (k, v) in &encoded {
            builder.push(NewRecord::new(now, Some(k), Some(v)));
        }
        self.log
            .append(builder.finish().expect("at least one offset"), now)?;
        for (tp, c) in offsets {
            self.committed
                .insert((group.to_string(), tp.clone()), c.clone());
        }
        Ok(())
    }

    /// Commits plain offsets (no metadata, unknown leader epoch).
    pub fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(TopicPartition, u64)],
        now: Timestamp,
    ) -> Result<(), CommitError> {
        let full: Vec<_> = offsets
            .iter()
            .map(|(tp, o)| {
                (
                    tp.clone(),
                    CommittedOffset {
                        offset: *o,
                        leader_epoch: -1,
                        metadata: String::new(),
                        commit_timestamp: now,
                    },
                )
            })
            .collect();
        self.commit(group, &full, now)
    }

    /// Deletes every committed offset of `group` (tombstones, removed by compaction
    /// after `delete_retention_ms`).
    pub fn delete_group(&mut self, group: &str, now: Timestamp) -> Result<usize, CommitError> {
        let keys: Vec<_> = self
            .committed
            .keys()
            .filter(|(g, _)| g == group)
            .map(|(_, tp)| tp.clone())
            .collect();
        if keys.is_empty() {
            return Ok(0);
        }
        let mut builder = BatchBuilder::new();
        let encoded: Vec<_> = keys
            .iter()
            .map(|tp| encode_key(group, tp))
            .collect::<Result<_, _>>()?;
        for k in &encoded {
            builder.push(NewRecord::new(now, Some(k), None));
        }
        self.log
            .append(builder.finish().expect("at least one key"), now)?;
        for tp in &keys {
            self.committed.remove(&(group.to_string(), tp.clone()));
        }
        Ok(keys.len())
    }

    /// The committed offset of `group` for `partition`.
    pub fn committed(&self, group: &str, partition: &TopicPartition) -> Option<&CommittedOffset> {
        self.committed.get(&(group.to_string(), partition.clone()))
    }

    /// All committed offsets of `group`, by partition.
    pub fn group_offsets(&self, group: &str) -> BTreeMap<TopicPartition, CommittedOffset> {
        self.committed
            .iter()
            .filter(|((g, _), _)| g == group)
            .map(|((_, tp), c)| (tp.clone(), c.clone()))
            .collect()
    }

    /// What the store skipped: records of its log that did not decode as offset
    /// commits.
    pub fn counters(&self) -> &OffsetStoreCounters {
        &self.counters
    }

    /// Compacts the store's log (rolling first, so every commit but the newest
    /// segment's is eligible).
    pub fn compact(&mut self, now: Timestamp) -> std::io::Result<CompactionReport> {
        self.log.roll().map_err(std::io::Error::other)?;
        self.log.compact(now)
    }

    /// The underlying log.
    pub fn log(&self) -> &Log<S> {
        &self.log
    }

    /// Closes the store cleanly.
    pub fn close(self) -> Result<(), crate::log::FlushError> {
        self.log.close()
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) -> Result<(), CommitError> {
    let len = i16::try_from(s.len()).map_err(|_| CommitError::StringTooLong(s.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// `OffsetCommitKey` v1: version int16, group string, topic string, partition int32.
fn encode_key(group: &str, tp: &TopicPartition) -> Result<Vec<u8>, CommitError> {
    let mut out = Vec::with_capacity(10 + group.len() + tp.topic.len());
    out.extend_from_slice(&KEY_VERSION.to_be_bytes());
    put_string(&mut out, group)?;
    put_string(&mut out, &tp.topic)?;
    out.extend_from_slice(&(tp.partition as i32).to_be_bytes());
    Ok(out)
}

/// `OffsetCommitValue` v3: version int16, offset int64, leader epoch int32,
/// metadata string, commit timestamp int64.
fn encode_value(c: &CommittedOffset) -> Result<Vec<u8>, CommitError> {
    let offset = i64::try_from(c.offset).map_err(|_| CommitError::OffsetTooLarge(c.offset))?;
    let mut out = Vec::with_capacity(24 + c.metadata.len());
    out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&c.leader_epoch.to_be_bytes());
    put_string(&mut out, &c.metadata)?;
    out.extend_from_slice(&c.commit_timestamp.to_be_bytes());
    Ok(out)
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(i16::from_be_bytes(self.take()?)).ok()?;
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        String::from_utf8(s.to_vec()).ok()
    }
}

fn decode_key(bytes: &Bytes) -> Option<(String, TopicPartition)> {
    let mut c = Cursor(bytes);
    if i16::from_be_bytes(c.take()?) != KEY_VERSION {
        return None;
    }
    let group = c.string()?;
    let topic = c.string()?;
    let partition = u32::try_from(i32::from_be_bytes(c.take()?)).ok()?;
    c.0.is_empty()
        .then(|| (group, TopicPartition::new(topic, partition)))
}

fn decode_value(bytes: &[u8]) -> Option<CommittedOffset> {
    let mut c = Cursor(bytes);
    if i16::from_be_bytes(c.take()?) != VALUE_VERSION {
        return None;
    }
    let offset = u64::try_from(i64::from_be_bytes(c.take()?)).ok()?;
    let leader_epoch = i32::from_be_bytes(c.take()?);
    let metadata = c.string()?;
    let commit_timestamp = i64::from_be_bytes(c.take()?);
    c.0.is_empty().then_some(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_follow_kafkas_schemas() {
        let tp = TopicPartition::new("orders", 3);
        let key = encode_key("g", &tp).expect("fits");
        assert_eq!(
            key,
            [
                0, 1, 0, 1, b'g', 0, 6, b'o', b'r', b'd', b'e', b'r', b's', 0, 0, 0, 3
            ]
        );
        assert_eq!(decode_key(&Bytes::from(key)), Some(("g".to_string(), tp)));
        let c = CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp: 7,
        };
        let value = encode_value(&c).expect("fits");
        assert_eq!(value.len(), 2 + 8 + 4 + 3 + 8);
        assert_eq!(decode_value(&value), Some(c));
        for cut in 0..value.len() {
            assert_eq!(decode_value(&value[..cut]), None);
        }
    }
}
