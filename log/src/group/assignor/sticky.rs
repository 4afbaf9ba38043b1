//! Kafka's `StickyAssignor` (KIP-54): balanced, and moving as little as it
//! can.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
///   quota of what it held, and the `partitions % members` larger quotas go
///   to members that held more than the smaller one.
/// - Otherwise no partition could move from a member to another member that
///   consumes its topic and has at least two fewer partitions, so members
///   with equal subscriptions differ by at most one. Partitions nobody
///   holds go first to the least loaded consumer, those with the fewest
///   possible consumers first; then partitions shift from loaded members
///   to members with two fewer, through chains of moves that prefer
///   partitions nobody held (a heuristic: minimal movement is only
///   guaranteed in the equal-subscription case). Each shift is a search
///   over the members, so this case costs more than the O(P log P) sort of
///   the equal-subscription case.
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
/// count. Member `i`, holding `h_i`, keeps `min(h_i, quota_i)`. The larger
/// quotas go first to members holding more than `P / M` (each keeps exactly
/// one more for it; the most loaded are served first), so
/// `Σ min(h_i, P/M) + min(P % M, #{i: h_i > P/M})` partitions stay put: the
/// most any balanced assignment can keep.
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
    let may_exceed: BTreeSet<&MemberId> =
        over.iter().take(max_quota_slots).map(|(m, _)| *m).collect();

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
            list.push(
                free.next()
                    .expect("free partitions cover the minimum quotas"),
            );
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
    debug_assert!(
        free.next().is_none(),
        "quotas add up to the partition count"
    );
    finish(lists)
}

/// Members consume different topics (Kafka's "general" case): keep every
/// standing claim, place the unclaimed partitions on the least loaded
/// consumer, then shift partitions from loaded members towards members with
/// at least two fewer, cheapest chain first, until no chain is left.
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

    // Each shift takes one partition off a member with load L and gives
    // one to a member with load at most L - 2 (those in between give one and
    // take one), so the sum of squared loads drops and the loop ends.
    while let Some(shift) = cheapest_shift(&lists, &consumers, prior) {
        for (from, p, to) in shift {
            lists
                .get_mut(from)
                .expect("shifts run between members")
                .remove(&p);
            lists
                .get_mut(to)
                .expect("shifts run between members")
                .insert(p);
        }
    }
    lists
        .into_iter()
        .map(|(m, parts)| (m.clone(), parts.into_iter().collect()))
        .collect()
}

/// One move of a shift: a partition, from the first member to the second.
type Move<'a> = (&'a MemberId, TopicPartition, &'a MemberId);

/// The cheapest way to take one partition off a member and give one to a
/// member with at least two fewer: a chain of moves, each to a consumer of
/// the moved partition's topic, so the members in between keep their load.
/// A move costs 1 when the giver held the partition going in (it changes
/// hands) and nothing otherwise, so a chain of free moves beats a direct
/// costly one. Ties go to the most loaded giver, then the least loaded
/// receiver, then member order.
///
/// `None` means no such chain exists, which implies in particular that no
/// single partition can move to a consumer of its topic with two fewer.
fn cheapest_shift<'a>(
    lists: &BTreeMap<&'a MemberId, BTreeSet<TopicPartition>>,
    consumers: &BTreeMap<&str, Vec<&'a MemberId>>,
    prior: &BTreeMap<TopicPartition, &MemberId>,
) -> Option<Vec<Move<'a>>> {
    let min_load = lists.values().map(BTreeSet::len).min()?;
    let mut givers: Vec<(&'a MemberId, usize)> = lists.iter().map(|(m, l)| (*m, l.len())).collect();
    givers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut best: Option<(usize, Vec<Move<'a>>)> = None;
    for (giver, load) in givers {
        if load < min_load + 2 {
            break;
        }
        if let Some((cost, shift)) = cheapest_shift_from(giver, load, lists, consumers, prior) {
            if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                best = Some((cost, shift));
            }
            if cost == 0 {
                break;
            }
        }
    }
    best.map(|(_, shift)| shift)
}

/// [`cheapest_shift`] from one giver: a 0-1 breadth-first search (Dijkstra
/// with weights 0 and 1) over the members.
fn cheapest_shift_from<'a>(
    giver: &'a MemberId,
    giver_load: usize,
    lists: &BTreeMap<&'a MemberId, BTreeSet<TopicPartition>>,
    consumers: &BTreeMap<&str, Vec<&'a MemberId>>,
    prior: &BTreeMap<TopicPartition, &MemberId>,
) -> Option<(usize, Vec<Move<'a>>)> {
    let mut cost: BTreeMap<&'a MemberId, usize> = BTreeMap::from([(giver, 0)]);
    let mut came_from: BTreeMap<&'a MemberId, (&'a MemberId, &TopicPartition)> = BTreeMap::new();
    let mut queue = VecDeque::from([(0, giver)]);
    while let Some((c, at)) = queue.pop_front() {
        if cost[at] < c {
            continue;
        }
        for p in &lists[at] {
            let step = usize::from(prior.get(p) == Some(&at));
            for &next in &consumers[p.topic.as_str()] {
                if next == at || cost.get(next).is_some_and(|&old| old <= c + step) {
                    continue;
                }
                cost.insert(next, c + step);
                came_from.insert(next, (at, p));
                if step == 0 {
                    queue.push_front((c, next));
                } else {
                    queue.push_back((c + step, next));
                }
            }
        }
    }
    let (total, _, receiver) = cost
        .iter()
        .filter(|(m, _)| lists[*m].len() + 2 <= giver_load)
        .map(|(m, c)| (*c, lists[*m].len(), *m))
        .min()?;
    let mut shift = Vec::new();
    let mut at = receiver;
    while at != giver {
        let (from, p) = came_from[at];
        shift.push((from, p.clone(), at));
        at = from;
    }
    shift.reverse();
    Some((total, shift))
}
