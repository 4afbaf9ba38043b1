//! The idempotent producer: an id, an epoch and a sequence number per
//! partition on every batch (KIP-98).

use std::collections::BTreeMap;

use dsys_log::{BatchBuf, BatchBuilder, NewRecord, ProducerStamp, Timestamp};

use super::topic::Order;
use crate::report::Res;

/// An idempotent producer (`enable.idempotence`): one id and epoch, and a
/// sequence number per partition that each batch carries (KIP-98).
pub(super) struct Producer {
    pub(super) id: i64,
    pub(super) epoch: i16,
    pub(super) next_sequence: BTreeMap<u32, i32>,
}

impl Producer {
    pub(super) fn new(id: i64) -> Self {
        Producer {
            id,
            epoch: 0,
            next_sequence: BTreeMap::new(),
        }
    }

    /// A one-record batch for `order`, stamped with the partition's next
    /// sequence number.
    pub(super) fn batch(
        &mut self,
        partition: u32,
        order: &Order,
        timestamp: Timestamp,
    ) -> Res<BatchBuf> {
        let sequence = self.next_sequence.entry(partition).or_insert(0);
        let stamp = ProducerStamp {
            producer_id: self.id,
            producer_epoch: self.epoch,
            base_sequence: *sequence,
        };
        *sequence += 1;
        Ok(one_record(Some(stamp), order, timestamp)?)
    }
}

/// A batch holding `order` keyed by its user, stamped by `producer` if any.
pub(super) fn one_record(
    producer: Option<ProducerStamp>,
    order: &Order,
    timestamp: Timestamp,
) -> Result<BatchBuf, &'static str> {
    let mut builder = BatchBuilder::new();
    if let Some(stamp) = producer {
        builder = builder.producer(stamp);
    }
    builder.push(NewRecord::new(
        timestamp,
        Some(order.user.as_bytes()),
        Some(order.json().as_bytes()),
    ));
    builder.finish().ok_or("a batch with one record")
}
