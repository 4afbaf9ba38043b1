//! What a rebalance works on: topic partitions, member ids, subscriptions,
//! and the assignment that maps members to the partitions they consume.

use std::collections::BTreeMap;
use std::fmt;

/// One partition of one topic, the unit an assignor hands out.
///
/// Orders by topic, then partition number: the order in which Kafka's
/// assignors walk partitions. Displays as `orders-0`, like Kafka's
/// `TopicPartition`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number within the topic, from 0.
    pub partition: u32,
}

impl TopicPartition {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A group member's id.
///
/// The [`GroupCoordinator`](super::GroupCoordinator) hands one out on a
/// member's first JoinGroup (`{client_id}-{n}`, `n` counting joins over the
/// coordinator's lifetime, so ids are never reused). Assignors order members
/// by id, which makes every assignment deterministic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct MemberId(String);

impl MemberId {
    /// A member id from any string (tests and custom coordinators; the
    /// group coordinator makes its own).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for MemberId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl From<String> for MemberId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

/// What a member tells the group when it joins: the topics it consumes and
/// the partitions it still owns.
///
/// `owned` is the `ownedPartitions` field that KIP-429 added to the consumer
/// protocol subscription: with cooperative rebalancing a member keeps its
/// partitions through a rebalance, and the assignor must know who holds
/// what. The [`GroupCoordinator`](super::GroupCoordinator) overwrites it
/// with its own record before it calls the assignor, so a client cannot
/// claim partitions it was never given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Subscription {
    /// Topics the member consumes. Topics the group does not know are
    /// ignored by the assignors (the member gets nothing from them).
    pub topics: Vec<String>,
    /// Partitions the member owns going into the rebalance.
    pub owned: Vec<TopicPartition>,
}

impl Subscription {
    /// A subscription to `topics`, owning nothing.
    pub fn new<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            topics: topics.into_iter().map(Into::into).collect(),
            owned: Vec::new(),
        }
    }

    /// The same subscription, declaring `owned` as the partitions it holds.
    #[must_use]
    pub fn with_owned(mut self, owned: impl IntoIterator<Item = TopicPartition>) -> Self {
        self.owned = owned.into_iter().collect();
        self
    }

    /// Whether the member consumes `topic`.
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| t == topic)
    }
}

/// Which partitions each member consumes after a rebalance.
///
/// Every member of the group has an entry, possibly empty: a member beyond
/// the partition count stays idle but is still part of the group. Each
/// member's partitions are kept sorted and free of duplicates. With the
/// `serde` feature it reads and writes as a map from member id to partition
/// list, sorting the lists as it reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(
        from = "BTreeMap<MemberId, Vec<TopicPartition>>",
        into = "BTreeMap<MemberId, Vec<TopicPartition>>"
    )
)]
pub struct Assignment {
    members: BTreeMap<MemberId, Vec<TopicPartition>>,
}

impl Assignment {
    /// An assignment with no members.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `member`'s partitions (sorted and de-duplicated here), replacing
    /// any it had; returns the old ones.
    pub fn insert(
        &mut self,
        member: MemberId,
        mut partitions: Vec<TopicPartition>,
    ) -> Option<Vec<TopicPartition>> {
        partitions.sort();
        partitions.dedup();
        self.members.insert(member, partitions)
    }

    /// Removes `member` and returns its partitions.
    pub fn remove(&mut self, member: &MemberId) -> Option<Vec<TopicPartition>> {
        self.members.remove(member)
    }

    /// `member`'s partitions, or `None` when it has no entry.
    pub fn get(&self, member: &MemberId) -> Option<&[TopicPartition]> {
        self.members.get(member).map(Vec::as_slice)
    }

    /// `member`'s partitions; empty when it has none or no entry.
    pub fn partitions_of(&self, member: &MemberId) -> &[TopicPartition] {
        self.get(member).unwrap_or(&[])
    }

    /// The member `partition` is assigned to. When a malformed assignment
    /// gives it to several, the one with the smallest id.
    pub fn owner_of(&self, partition: &TopicPartition) -> Option<&MemberId> {
        self.members
            .iter()
            .find(|(_, parts)| parts.binary_search(partition).is_ok())
            .map(|(member, _)| member)
    }

    /// Whether `member` has an entry (possibly empty).
    pub fn contains_member(&self, member: &MemberId) -> bool {
        self.members.contains_key(member)
    }

    /// The members, in id order.
    pub fn members(&self) -> impl Iterator<Item = &MemberId> + '_ {
        self.members.keys()
    }

    /// Each member with its partitions, in member id order.
    pub fn iter(&self) -> impl Iterator<Item = (&MemberId, &[TopicPartition])> + '_ {
        self.members.iter().map(|(m, p)| (m, p.as_slice()))
    }

    /// Every assigned partition with its owner, in partition order (the
    /// smallest owner id wins if a malformed assignment repeats one).
    pub fn owners(&self) -> BTreeMap<&TopicPartition, &MemberId> {
        let mut owners = BTreeMap::new();
        for (member, parts) in &self.members {
            for p in parts {
                owners.entry(p).or_insert(member);
            }
        }
        owners
    }

    /// Number of members (with or without partitions).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of (member, partition) pairs.
    pub fn partition_count(&self) -> usize {
        self.members.values().map(Vec::len).sum()
    }

    /// How many partitions changed hands relative to `previous`: assigned
    /// here to a member other than the one `previous` gave them to.
    ///
    /// Partitions new to this assignment, and partitions this assignment
    /// leaves out (a cooperative revocation), do not count. This is the
    /// figure sticky assignment (KIP-54) minimises.
    pub fn moved_from(&self, previous: &Assignment) -> usize {
        let before = previous.owners();
        self.members
            .iter()
            .flat_map(|(member, parts)| parts.iter().map(move |p| (member, p)))
            .filter(|(member, p)| before.get(p).is_some_and(|owner| owner != member))
            .count()
    }

    /// The underlying map.
    pub fn as_map(&self) -> &BTreeMap<MemberId, Vec<TopicPartition>> {
        &self.members
    }

    /// The underlying map, by value.
    pub fn into_inner(self) -> BTreeMap<MemberId, Vec<TopicPartition>> {
        self.members
    }
}

impl From<BTreeMap<MemberId, Vec<TopicPartition>>> for Assignment {
    fn from(map: BTreeMap<MemberId, Vec<TopicPartition>>) -> Self {
        map.into_iter().collect()
    }
}

impl From<Assignment> for BTreeMap<MemberId, Vec<TopicPartition>> {
    fn from(assignment: Assignment) -> Self {
        assignment.members
    }
}

impl FromIterator<(MemberId, Vec<TopicPartition>)> for Assignment {
    fn from_iter<T: IntoIterator<Item = (MemberId, Vec<TopicPartition>)>>(iter: T) -> Self {
        let mut assignment = Self::new();
        for (member, parts) in iter {
            assignment.members.entry(member).or_default().extend(parts);
        }
        for parts in assignment.members.values_mut() {
            parts.sort();
            parts.dedup();
        }
        assignment
    }
}

impl<'a> IntoIterator for &'a Assignment {
    type Item = (&'a MemberId, &'a Vec<TopicPartition>);
    type IntoIter = std::collections::btree_map::Iter<'a, MemberId, Vec<TopicPartition>>;

    fn into_iter(self) -> Self::IntoIter {
        self.members.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: u32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    #[test]
    fn display_matches_kafka() {
        assert_eq!(tp("orders", 0).to_string(), "orders-0");
        assert_eq!(MemberId::new("c-1").to_string(), "c-1");
    }

    #[test]
    fn moved_from_counts_only_changed_owners() {
        let a = MemberId::new("a");
        let b = MemberId::new("b");
        let before: Assignment = [
            (a.clone(), vec![tp("t", 0), tp("t", 1)]),
            (b.clone(), vec![tp("t", 2)]),
        ]
        .into_iter()
        .collect();
        let after: Assignment = [
            (a.clone(), vec![tp("t", 0)]),
            (b.clone(), vec![tp("t", 1), tp("t", 2), tp("t", 3)]),
        ]
        .into_iter()
        .collect();
        assert_eq!(after.moved_from(&before), 1);
        assert_eq!(after.owner_of(&tp("t", 3)), Some(&b));
        assert_eq!(after.owner_of(&tp("t", 9)), None);
        assert_eq!(after.partition_count(), 4);
    }
}
