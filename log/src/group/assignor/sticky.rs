//! Kafka's `StickyAssignor` (KIP-54): balanced, and moving as little as it
//! can.

use std::collections::{BTreeMap, BTreeSet};

use super::{Assignor, exists, finish, known_topics};
use crate::group::{Assignment, MemberId, Subscription, TopicPartition};

/// Balances the partitions over the members while leaving as many
/// partitions as possible with the member that held them before (KIP-54).
///
/// Balance comes first:
///
/// - When every member consumes the same topics, partition counts differ by
///   at most one, and the number of partitions that change hands is the
///   least any balanced assignment can achieve: each member keeps up to its
///   quota of what it held, and the members holding the most keep the
///   `partitions % members` extra slots.
/// - Otherwise no partition could move from a member to another member that
///   consumes its topic and has at least two fewer partitions, so members
///   with equal subscriptions differ by at most one. Partitions nobody
///   holds go first to the least loaded consumer, those with the fewest
///   possible consumers first.
///
/// The previous owners come from `previous` and, for partitions it does not
/// place, from each member's [`Subscription::owned`]. An owner no longer in
/// the group or no longer consuming the topic loses its claim.
///
/// This is an eager strategy: its members give up their partitions before
/// they rejoin, so the result may hand a partition straight from one member
/// to another. [`CooperativeStickyAssignor`](super::CooperativeStickyAssignor)
/// is the incremental variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StickyAssignor;

impl Assignor for StickyAssignor {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &BTreeMap<MemberId, Subscription>,
        previous: &Assignment,
    ) -> Assignment {
        sticky_target(partitions_per_topic, members, previous)
    }
}

/// The balanced, sticky assignment both sticky strategies aim for.
pub(super) fn sticky_target(
    partitions_per_topic: &BTreeMap<String, u32>,
    members: &BTreeMap<MemberId, Subscription>,
    previous: &Assignment,
) -> Assignment {
    let consumes: BTreeMap<&MemberId, BTreeSet<&str>> = members
        .iter()
        .map(|(m, s)| (m, known_topics(partitions_per_topic, s)))
        .collect();
    let prior = prior_owners(partitions_per_topic, members, &consumes, previous);
    let mut subscriptions = consumes.values();
    let identical = match subscriptions.next() {
        None => return Assignment::new(),
        Some(first) => subscriptions.all(|s| s == first),
    };
    if identical {
        constrained(partitions_per_topic, &consumes, &prior)
    } else {
        general(partitions_per_topic, &consumes, &prior)
    }
}

/// Who held each partition going in, among the claims that still stand:
/// the partition exists, and its holder is in the group and consumes its
/// topic. `previous` outranks [`Subscription::owned`]; among equal claims
/// the smaller member id wins.
fn prior_owners<'a>(
    partitions_per_topic: &BTreeMap<String, u32>,
    members: &'a BTreeMap<MemberId, Subscription>,
    consumes: &BTreeMap<&'a MemberId, BTreeSet<&str>>,
    previous: &Assignment,
) -> BTreeMap<TopicPartition, &'a MemberId> {
    let mut prior = BTreeMap::new();
    let mut claim = |member: &'a MemberId, p: &TopicPartition| {
        let consumed = consumes
            .get(member)
            .is_some_and(|topics| topics.contains(p.topic.as_str()));
        if consumed && exists(partitions_per_topic, p) {
            prior.entry(p.clone()).or_insert(member);
        }
    };
    for (member, parts) in previous.iter() {
        if let Some((member, _)) = members.get_key_value(member) {
            for p in parts {
                claim(member, p);
            }
        }
    }
    for (member, subscription) in members {
        for p in &subscription.owned {
            claim(member, p);
        }
    }
    prior
}

/// Every member consumes the same topics (the "constrained" case of
/// Kafka's implementation). With `P` partitions and `M` members each member
/// ends with `P / M` or `P / M + 1`, exactly `P % M` of them with the larger
/// count. Member `i`, holding `h_i`, keeps `min(h_i, quota_i)`, and the
/// `P % M` larger quotas go to the members holding the most, which
/// maximises what stays put: `Σ min(h_i, P/M) + min(P % M, #{i: h_i > P/M})`
/// partitions, the most any balanced assignment can keep.
fn constrained(
    partitions_per_topic: &BTreeMap<String, u32>,
    consumes: &BTreeMap<&MemberId, BTreeSet<&str>>,
    prior: &BTreeMap<TopicPartition, &MemberId>,
) -> Assignment {
    let topics = consumes
        .values()
        .next()
        .expect("sticky_target returns early for an empty group");
    let total: usize = topics
        .iter()
        .map(|t| partitions_per_topic[*t] as usize)
        .sum();
    let min_quota = total / consumes.len();
    let max_quota_slots = total % consumes.len();

    let mut held: BTreeMap<&MemberId, Vec<&TopicPartition>> =
        consumes.keys().map(|m| (*m, Vec::new())).collect();
    for (p, member) in prior {
        held.get_mut(member)
            .expect("prior owners are members")
            .push(p);
    }
    let mut over: Vec<(&MemberId, usize)> = held
        .iter()
        .filter(|(_, parts)| parts.len() > min_quota)
        .map(|(m, parts)| (*m, parts.len()))
        .collect();
    over.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let may_exceed: BTreeSet<&MemberId> = over
        .iter()
        .take(max_quota_slots)
        .map(|(m, _)| *m)
        .collect();

    let mut lists: BTreeMap<&MemberId, Vec<TopicPartition>> = BTreeMap::new();
    let mut kept: BTreeSet<&TopicPartition> = BTreeSet::new();
    for (member, parts) in held {
        let quota = min_quota + usize::from(may_exceed.contains(member));
        let keep: Vec<&TopicPartition> = parts.into_iter().take(quota).collect();
        kept.extend(keep.iter().copied());
        lists.insert(member, keep.into_iter().cloned().collect());
    }
    let mut free = topics
        .iter()
        .flat_map(|t| (0..partitions_per_topic[*t]).map(move |p| TopicPartition::new(*t, p)))
        .filter(|p| !kept.contains(p));

    // Fill everyone below the minimum quota, dealing one partition per
    // member per pass as Kafka does, so a group starting from nothing gets
    // the round-robin layout of the KIP-54 examples.
    let mut under: Vec<&MemberId> = lists
        .iter()
        .filter(|(_, l)| l.len() < min_quota)
        .map(|(m, _)| *m)
        .collect();
    while !under.is_empty() {
        under.retain(|member| {
            let list = lists.get_mut(member).expect("under is drawn from lists");
            // Enough are free: the kept partitions fit within the quotas.
            list.push(free.next().expect("free partitions cover the minimum quotas"));
            list.len() < min_quota
        });
    }
    // What is left fills the remaining larger quotas, in member order.
    for list in lists.values_mut() {
        if list.len() == min_quota {
            match free.next() {
                Some(p) => list.push(p),
                None => break,
            }
        }
    }
    debug_assert!(free.next().is_none(), "quotas add up to the partition count");
    finish(lists)
}

/// Members consume different topics (Kafka's "general" case): keep every
/// standing claim, place the unclaimed partitions on the least loaded
/// consumer, then move partitions from loaded members to consumers with at
/// least two fewer until no such move is left.
fn general(
    partitions_per_topic: &BTreeMap<String, u32>,
    consumes: &BTreeMap<&MemberId, BTreeSet<&str>>,
    prior: &BTreeMap<TopicPartition, &MemberId>,
) -> Assignment {
    let mut consumers: BTreeMap<&str, Vec<&MemberId>> = BTreeMap::new();
    for (member, topics) in consumes {
        for topic in topics {
            consumers.entry(*topic).or_default().push(*member);
        }
    }
    let mut lists: BTreeMap<&MemberId, BTreeSet<TopicPartition>> =
        consumes.keys().map(|m| (*m, BTreeSet::new())).collect();
    for (p, member) in prior {
        lists
            .get_mut(member)
            .expect("prior owners are members")
            .insert(p.clone());
    }

    let mut free: Vec<TopicPartition> = consumers
        .keys()
        .flat_map(|t| (0..partitions_per_topic[*t]).map(move |p| TopicPartition::new(*t, p)))
        .filter(|p| !prior.contains_key(p))
        .collect();
    // The partitions with the fewest possible homes are placed first, while
    // those homes still have room.
    free.sort_by(|a, b| {
        consumers[a.topic.as_str()]
            .len()
            .cmp(&consumers[b.topic.as_str()].len())
            .then_with(|| a.cmp(b))
    });
    for p in free {
        let member = *consumers[p.topic.as_str()]
            .iter()
            .min_by_key(|m| (lists[*m].len(), **m))
            .expect("only partitions of consumed topics are free");
        lists
            .get_mut(member)
            .expect("consumers are members")
            .insert(p);
    }

    // Each move goes from a member with load L to one with load at most
    // L - 2, so the sum of squared loads drops and the loop ends.
    while let Some((from, p, to)) = find_move(&lists, &consumers, prior) {
        lists.get_mut(from).expect("from is a member").remove(&p);
        lists.get_mut(to).expect("to is a member").insert(p);
    }
    lists
        .into_iter()
        .map(|(m, parts)| (m.clone(), parts.into_iter().collect()))
        .collect()
}

/// A partition that can go from a member to a consumer of its topic with at
/// least two fewer partitions. The most loaded member gives first, and a
/// partition it did not hold going in (moving it costs nothing) before one
/// it did.
fn find_move<'a>(
    lists: &BTreeMap<&'a MemberId, BTreeSet<TopicPartition>>,
    consumers: &BTreeMap<&str, Vec<&'a MemberId>>,
    prior: &BTreeMap<TopicPartition, &MemberId>,
) -> Option<(&'a MemberId, TopicPartition, &'a MemberId)> {
    // The two least loaded consumers of each topic: the lightest other than
    // the giver is one of them.
    let lightest: BTreeMap<&str, Vec<(usize, &'a MemberId)>> = consumers
        .iter()
        .map(|(topic, members)| {
            let mut loads: Vec<(usize, &'a MemberId)> =
                members.iter().map(|m| (lists[*m].len(), *m)).collect();
            loads.sort();
            loads.truncate(2);
            (*topic, loads)
        })
        .collect();
    let mut givers: Vec<(&'a MemberId, usize)> = lists.iter().map(|(m, l)| (*m, l.len())).collect();
    givers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    for (from, load) in givers {
        let parts = &lists[from];
        let fresh = parts.iter().filter(|p| prior.get(*p) != Some(&from));
        let held = parts.iter().filter(|p| prior.get(*p) == Some(&from));
        for p in fresh.chain(held) {
            let receiver = lightest[p.topic.as_str()]
                .iter()
                .find(|(_, m)| *m != from);
            if let Some(&(to_load, to)) = receiver {
                if load > to_load + 1 {
                    return Some((from, p.clone(), to));
                }
            }
        }
    }
    None
}
