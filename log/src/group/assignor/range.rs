//! Kafka's `RangeAssignor`: each topic split into contiguous ranges.

use std::collections::BTreeMap;

use super::{Assignor, empty_lists, finish, known_topics};
use crate::group::{Assignment, MemberId, Subscription, TopicPartition};

/// Splits each topic on its own into contiguous ranges, one per subscribed
/// member in id order; when the partitions do not divide evenly the first
/// `partitions % members` members get one more.
///
/// With two members C0, C1 and topics t0, t1 of three partitions each:
/// C0 gets t0-0, t0-1, t1-0, t1-1 and C1 gets t0-2, t1-2. Because every
/// topic starts again from the first member, the first members end up
/// with more partitions when there are many topics; that skew is why the
/// round-robin and sticky strategies exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &BTreeMap<MemberId, Subscription>,
        _previous: &Assignment,
    ) -> Assignment {
        let mut lists = empty_lists(members);
        let subscribed: BTreeMap<&MemberId, _> = members
            .iter()
            .map(|(m, s)| (m, known_topics(partitions_per_topic, s)))
            .collect();
        for (topic, &count) in partitions_per_topic {
            let consumers: Vec<&MemberId> = subscribed
                .iter()
                .filter(|(_, topics)| topics.contains(topic.as_str()))
                .map(|(m, _)| *m)
                .collect();
            if consumers.is_empty() {
                continue;
            }
            let count = count as usize;
            let per_member = count / consumers.len();
            let with_extra = count % consumers.len();
            let mut next = 0;
            for (i, member) in consumers.into_iter().enumerate() {
                let take = per_member + usize::from(i < with_extra);
                let list = lists
                    .get_mut(member)
                    .expect("consumers are drawn from the member map");
                // `next + take <= count`, which came from a u32.
                list.extend((next..next + take).map(|p| TopicPartition::new(topic, p as u32)));
                next += take;
            }
        }
        finish(lists)
    }
}
