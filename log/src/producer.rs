//! Idempotent producer state (KIP-98): for each producer id, its epoch and the last
//! five batches it wrote, so a retried batch is recognised and answered with its
//! original offsets instead of being written twice. Kafka keeps five because a
//! producer has at most five requests in flight (`max.in.flight.requests.per.connection`).
//!
//! The state is rebuilt on open from a snapshot file (`<offset>.snapshot`, written
//! when a segment rolls and on close) plus the batch headers after it.

use std::collections::{BTreeMap, VecDeque};

use crate::Timestamp;
use crate::batch::{BatchHeader, sequence_add};

/// Batches remembered per producer.
pub const BATCHES_PER_PRODUCER: usize = 5;

/// Why a producer's batch was refused. The log is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// A newer epoch of this producer id has written: this instance is a zombie.
    /// Nothing changed: the batch was not written.
    #[error("producer {producer_id} epoch {epoch} is fenced by epoch {current_epoch}")]
    Fenced {
        /// Producer id.
        producer_id: i64,
        /// Epoch of the refused batch.
        epoch: i16,
        /// Current epoch.
        current_epoch: i16,
    },
    /// The batch's first sequence is not the one after the producer's last batch: an
    /// earlier batch is missing. The producer must retry the missing batches first.
    /// Nothing changed: the batch was not written.
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrderSequence {
        /// Producer id.
        producer_id: i64,
        /// Sequence the log expects next.
        expected: i32,
        /// Sequence the batch starts with.
        got: i32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    first_offset: u64,
    last_offset: u64,
    timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
}

/// Outcome of checking a batch against the producer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Not seen before: append it.
    New,
    /// A retry of a batch already in the log at these offsets.
    Duplicate { base_offset: u64, last_offset: u64 },
}

/// Every producer's recent batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerTable {
    producers: BTreeMap<i64, ProducerEntry>,
}

impl ProducerTable {
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// Checks a batch from an idempotent producer (KIP-98 sequence rules).
    pub(crate) fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, ProducerError> {
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(SequenceCheck::New);
        };
        if h.producer_epoch < entry.epoch {
            return Err(ProducerError::Fenced {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current_epoch: entry.epoch,
            });
        }
        if h.producer_epoch > entry.epoch {
            // A new epoch starts its sequence over.
            return if h.base_sequence == 0 {
                Ok(SequenceCheck::New)
            } else {
                Err(ProducerError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: 0,
                    got: h.base_sequence,
                })
            };
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return Ok(SequenceCheck::Duplicate {
                base_offset: dup.first_offset,
                last_offset: dup.last_offset,
            });
        }
        let expected = entry
            .batches
            .back()
            .map_or(0, |b| sequence_add(b.last_seq, 1));
        if h.base_sequence == expected {
            Ok(SequenceCheck::New)
        } else {
            Err(ProducerError::OutOfOrderSequence {
                producer_id: h.producer_id,
                expected,
                got: h.base_sequence,
            })
        }
    }

    /// Records a batch written at its (assigned) offsets.
    pub(crate) fn record(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() {
            return;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
            });
        if entry.epoch != h.producer_epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        });
    }

    /// Whether the batch of `producer_id` ending at `last_offset` is that producer's
    /// last batch: the batch compaction keeps, emptied of its records if need be, so
    /// that its sequence survives in the log itself (Kafka's `LogCleaner` retains the
    /// batch holding an active producer's last data offset). Expired producers have
    /// none.
    pub(crate) fn is_last_batch(&self, producer_id: i64, last_offset: u64) -> bool {
        self.producers
            .get(&producer_id)
            .and_then(|e| e.batches.back())
            .is_some_and(|b| b.last_offset == last_offset)
    }

    /// The earliest `now` at which [`ProducerTable::expire`] forgets a producer, if
    /// any producer is known.
    pub(crate) fn next_expiry(&self, expiration_ms: i64) -> Option<Timestamp> {
        self.producers
            .values()
            .filter_map(|e| e.batches.back())
            .map(|b| b.timestamp.saturating_add(expiration_ms).saturating_add(1))
            .min()
    }

    /// Forgets producers whose last batch is older than `expiration_ms` before `now`
    /// (Kafka's `producer.id.expiration.ms`), keeping memory bounded.
    pub(crate) fn expire(&mut self, now: Timestamp, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.batches
                .back()
                .is_some_and(|b| b.timestamp.saturating_add(expiration_ms) >= now)
        });
        before - self.producers.len()
    }

    /// Encodes the table: `version u16, count u32`, then per producer `id i64, epoch
    /// i16, batches u8` and per batch `first_seq i32, last_seq i32, first_offset u64,
    /// last_offset u64, timestamp i64`, then a CRC-32C of everything before it.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.producers.len() * 48);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (id, e) in &self.producers {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.first_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
                out.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes [`ProducerTable::encode`]'s output; `None` for anything else.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body);
        if r.u16()? != SNAPSHOT_VERSION {
            return None;
        }
        let count = r.u32()?;
        let mut producers = BTreeMap::new();
        for _ in 0..count {
            let id = r.u64()? as i64;
            let epoch = r.u16()? as i16;
            let n = r.u8()? as usize;
            if n > BATCHES_PER_PRODUCER {
                return None;
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                batches.push_back(BatchMeta {
                    first_seq: r.u32()? as i32,
                    last_seq: r.u32()? as i32,
                    first_offset: r.u64()?,
                    last_offset: r.u64()?,
                    timestamp: r.u64()? as i64,
                });
            }
            producers.insert(id, ProducerEntry { epoch, batches });
        }
        r.0.is_empty().then_some(ProducerTable { producers })
    }
}

const SNAPSHOT_VERSION: u16 = 1;

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchBuilder, NewRecord, ProducerStamp};

    fn header(id: i64, epoch: i16, seq: i32, records: usize, base: u64) -> BatchHeader {
        let mut b = BatchBuilder::new().producer(ProducerStamp {
            producer_id: id,
            producer_epoch: epoch,
            base_sequence: seq,
        });
        for _ in 0..records {
            b.push(NewRecord::new(10, None, Some(b"v")));
        }
        let mut buf = b.finish().expect("records");
        buf.assign(base, 0);
        *buf.header()
    }

    #[test]
    fn sequence_rules_follow_kip_98() {
        let mut t = ProducerTable::default();
        let first = header(7, 0, 0, 3, 100);
        assert_eq!(t.check(&first), Ok(SequenceCheck::New));
        t.record(&first);
        assert_eq!(
            t.check(&header(7, 0, 0, 3, 999)),
            Ok(SequenceCheck::Duplicate {
                base_offset: 100,
                last_offset: 102
            })
        );
        assert!(matches!(
            t.check(&header(7, 0, 4, 1, 0)),
            Err(ProducerError::OutOfOrderSequence {
                expected: 3,
                got: 4,
                ..
            })
        ));
        assert_eq!(t.check(&header(7, 0, 3, 1, 0)), Ok(SequenceCheck::New));
        t.record(&header(7, 1, 0, 1, 103));
        assert!(matches!(
            t.check(&header(7, 0, 3, 1, 0)),
            Err(ProducerError::Fenced { .. })
        ));
        let decoded = ProducerTable::decode(&t.encode()).expect("round trip");
        assert_eq!(decoded, t);
        assert_eq!(t.expire(10 + 1000, 999), 1);
    }

    #[test]
    fn damaged_snapshots_are_refused() {
        let mut t = ProducerTable::default();
        t.record(&header(1, 0, 0, 2, 0));
        let bytes = t.encode();
        for cut in 0..bytes.len() {
            assert!(ProducerTable::decode(&bytes[..cut]).is_none());
        }
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 1;
            assert!(ProducerTable::decode(&b).is_none());
        }
    }
}
