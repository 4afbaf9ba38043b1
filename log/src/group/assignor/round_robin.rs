//! Kafka's `RoundRobinAssignor`: all partitions dealt out like cards.

use std::collections::BTreeMap;

use super::{Assignor, empty_lists, finish, known_topics};
use crate::group::{Assignment, MemberId, Subscription, TopicPartition};

/// Deals every subscribed partition, sorted by topic then partition, to the
/// members in id order as around a card table, skipping a member when it
/// does not consume the partition's topic.
///
/// With two members C0, C1 and topics t0, t1 of three partitions each:
/// C0 gets t0-0, t0-2, t1-1 and C1 gets t0-1, t1-0, t1-2. With equal
/// subscriptions the counts differ by at most one; with unequal ones they
/// may not (the sticky strategies balance those better).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &BTreeMap<MemberId, Subscription>,
        _previous: &Assignment,
    ) -> Assignment {
        let mut lists = empty_lists(members);
        let table: Vec<(&MemberId, _)> = members
            .iter()
            .map(|(m, s)| (m, known_topics(partitions_per_topic, s)))
            .collect();
        // The dealer's position survives from one partition to the next,
        // as Kafka's circular iterator over the sorted members does.
        let mut seat = 0;
        for (topic, &count) in partitions_per_topic {
            if !table
                .iter()
                .any(|(_, topics)| topics.contains(topic.as_str()))
            {
                continue;
            }
            for partition in 0..count {
                // Terminates: some member consumes `topic`.
                let member = loop {
                    let (member, topics) = &table[seat];
                    seat = (seat + 1) % table.len();
                    if topics.contains(topic.as_str()) {
                        break *member;
                    }
                };
                lists
                    .get_mut(member)
                    .expect("seats are drawn from the member map")
                    .push(TopicPartition::new(topic, partition));
            }
        }
        finish(lists)
    }
}
