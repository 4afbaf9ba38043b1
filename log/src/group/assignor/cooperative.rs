//! Kafka's `CooperativeStickyAssignor` (KIP-429): sticky, in two steps.

use std::collections::{BTreeMap, BTreeSet};

use super::sticky::sticky_target;
use super::{Assignor, RebalanceProtocol};
use crate::group::{Assignment, MemberId, Subscription, TopicPartition};

/// The sticky assignment reached incrementally, so members keep consuming
/// through a rebalance (KIP-429).
///
/// It computes the same target as [`StickyAssignor`](super::StickyAssignor),
/// then leaves out every partition the target moves away from a member that
/// still holds it (per `previous` or [`Subscription::owned`]). The holder
/// sees the partition missing from its new assignment and revokes it; the
/// follow-up rebalance, with the partition held by nobody, gives it to its
/// new owner. No partition ever has two owners at once.
///
/// When the members consume the same topics the follow-up rebalance moves
/// nothing further: its result is the balanced target, and the partitions
/// that changed hands over both steps are as few as with the eager sticky
/// strategy. With unequal subscriptions that is the usual outcome too, but
/// not a guarantee: a follow-up may revoke again, and another rebalance
/// follows. Partitions whose holder left the group move in one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &BTreeMap<MemberId, Subscription>,
        previous: &Assignment,
    ) -> Assignment {
        let target = sticky_target(partitions_per_topic, members, previous);
        // Every hold counts here, even of topics the holder dropped: it
        // consumes the partition until it revokes it.
        let mut holders: BTreeMap<&TopicPartition, BTreeSet<&MemberId>> = BTreeMap::new();
        for (member, parts) in previous.iter() {
            if let Some((member, _)) = members.get_key_value(member) {
                for p in parts {
                    holders.entry(p).or_default().insert(member);
                }
            }
        }
        for (member, subscription) in members {
            for p in &subscription.owned {
                holders.entry(p).or_default().insert(member);
            }
        }
        target
            .into_inner()
            .into_iter()
            .map(|(member, mut parts)| {
                parts.retain(|p| {
                    holders
                        .get(p)
                        .is_none_or(|hs| hs.iter().all(|h| **h == member))
                });
                (member, parts)
            })
            .collect()
    }
}
