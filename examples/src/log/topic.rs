//! The chapter's world: the seeds' topic, users and orders, and the story's
//! clock (fixed wall-clock `Timestamp`s, so every run prints the same).

use dsys_log::group::TopicPartition;
use dsys_log::{Timestamp, partition_for_key};

use crate::report::Res;

/// The seeds' topic.
pub(super) const TOPIC: &str = "orders";

/// Its partitions.
pub(super) const PARTITIONS: u32 = 4;

/// The seeds' consumer group.
pub(super) const GROUP: &str = "order-processor-group";

/// Orders before the restart: ORD-0000 ... ORD-0019.
pub(super) const FIRST_ORDERS: u32 = 20;

/// Orders after the restart: ORD-0020 ... ORD-0024, one per user.
pub(super) const LATER_ORDERS: u32 = 5;

/// The seeds' users: `user-{i % 5}`.
pub(super) const USERS: u32 = 5;

/// The chapter's wall clock at t = 0: 2023-11-14 22:13:20 UTC, in Unix
/// milliseconds. Every other time is a fixed step after it.
pub(super) const EPOCH_MS: Timestamp = 1_700_000_000_000;

/// Producer ids, as a broker's InitProducerId hands them out: one before
/// the restart, a fresh one after (a restarted idempotent producer starts
/// over with a new id).
pub(super) const PRODUCER_ID: i64 = 1000;
pub(super) const RESTARTED_PRODUCER_ID: i64 = 1001;

/// Unix milliseconds at `t` milliseconds into the story.
pub(super) fn wall(t: u64) -> Timestamp {
    EPOCH_MS + t as i64
}

/// `t=12.3s`.
pub(super) fn at(t: u64) -> String {
    format!("t={:.1}s", t as f64 / 1000.0)
}

/// `P2`: partition 2 of `orders`, as the seeds' diagram names it.
pub(super) fn p(partition: u32) -> String {
    format!("P{partition}")
}

pub(super) fn tp(partition: u32) -> TopicPartition {
    TopicPartition::new(TOPIC, partition)
}

/// The seeds' order event `i`.
#[derive(Debug, Clone)]
pub(super) struct Order {
    pub(super) id: String,
    pub(super) user: String,
    pub(super) amount: u64,
}

impl Order {
    pub(super) fn new(i: u32) -> Self {
        Order {
            id: format!("ORD-{i:04}"),
            user: format!("user-{}", i % USERS),
            amount: 10_000 * (u64::from(i) + 1),
        }
    }

    /// The record value: the seeds' JSON, less the wall-clock `timestamp`
    /// field (the record carries its CreateTime).
    pub(super) fn json(&self) -> String {
        format!(
            r#"{{"order_id":"{}","user_id":"{}","amount":{}}}"#,
            self.id, self.user, self.amount
        )
    }

    /// What a consumer reads back: the JSON parsed, as the seeds'
    /// `json.loads(msg.value())`.
    pub(super) fn parse(value: &[u8]) -> Res<Self> {
        let event: serde_json::Value = serde_json::from_slice(value)?;
        let field = |name: &str| {
            event
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("order event without {name}"))
        };
        Ok(Order {
            id: field("order_id")?,
            user: field("user_id")?,
            amount: event
                .get("amount")
                .and_then(|v| v.as_u64())
                .ok_or("order event without amount")?,
        })
    }

    pub(super) fn partition(&self) -> u32 {
        partition_for_key(self.user.as_bytes(), PARTITIONS)
    }
}
