//! Partition assignors: how a group's partitions are split among its members.
//!
//! The four strategies Kafka's consumer ships (`partition.assignment.strategy`),
//! under the names Kafka gives them on the wire:
//!
//! | name                 | type                          | protocol    |
//! |----------------------|-------------------------------|-------------|
//! | `range`              | [`RangeAssignor`]             | eager       |
//! | `roundrobin`         | [`RoundRobinAssignor`]        | eager       |
//! | `sticky`             | [`StickyAssignor`]            | eager       |
//! | `cooperative-sticky` | [`CooperativeStickyAssignor`] | cooperative |
//!
//! Every assignor is a pure function of its inputs: members and partitions
//! are walked in sorted order, so the same group gives the same assignment
//! on every run and every machine.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{Assignment, MemberId, Subscription, TopicPartition};

mod cooperative;
mod range;
mod round_robin;
mod sticky;

pub use cooperative::CooperativeStickyAssignor;
pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;
pub use sticky::StickyAssignor;

/// How members hand partitions over during a rebalance (KIP-429).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before it rejoins ("stop the
    /// world"); the new assignment may hand any partition to anyone.
    Eager,
    /// Members keep their partitions while they rejoin. An assignment never
    /// gives a partition to a new owner while another member still holds
    /// it: it revokes it first, and a follow-up rebalance hands it over.
    Cooperative,
}

/// A partition assignment strategy.
///
/// The trait is object safe, so a coordinator can hold any strategy as a
/// `Box<dyn Assignor>`; `Send + Sync` lets that coordinator move between
/// threads. An implementation must be a pure function of its arguments
/// (no clock, no unseeded randomness, no iteration over hash maps), or the
/// group loses its determinism.
pub trait Assignor: fmt::Debug + Send + Sync {
    /// The strategy's protocol name, as Kafka spells it (`"range"`,
    /// `"roundrobin"`, `"sticky"`, `"cooperative-sticky"`).
    fn name(&self) -> &'static str;

    /// Whether the strategy rebalances eagerly or cooperatively (KIP-429).
    /// Eager unless overridden.
    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    /// Splits the partitions of the subscribed topics among `members`.
    ///
    /// - `partitions_per_topic`: the partition count of every topic the group
    ///   knows; subscribed topics missing from it are ignored.
    /// - `members`: every member of the group with its subscription (and,
    ///   for cooperative strategies, the partitions it owns).
    /// - `previous`: the assignment the members hold going in; stateless
    ///   strategies ignore it. It may name members that have left and
    ///   partitions that no longer exist.
    ///
    /// The result has an entry for every member in `members`, and only for
    /// them; each partition goes to at most one member subscribed to its
    /// topic. Eager strategies assign every subscribed partition.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &BTreeMap<MemberId, Subscription>,
        previous: &Assignment,
    ) -> Assignment;
}

/// A built-in strategy, by name: what [`GroupConfig`](super::GroupConfig)
/// selects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum AssignorKind {
    /// [`RangeAssignor`]: the first strategy in the Java consumer's default
    /// `partition.assignment.strategy`.
    #[default]
    Range,
    /// [`RoundRobinAssignor`].
    RoundRobin,
    /// [`StickyAssignor`] (KIP-54).
    Sticky,
    /// [`CooperativeStickyAssignor`] (KIP-429).
    CooperativeSticky,
}

impl AssignorKind {
    /// Every built-in strategy.
    pub const ALL: [AssignorKind; 4] = [
        AssignorKind::Range,
        AssignorKind::RoundRobin,
        AssignorKind::Sticky,
        AssignorKind::CooperativeSticky,
    ];

    /// The strategy's Kafka protocol name.
    pub fn name(self) -> &'static str {
        self.assignor().name()
    }

    /// An instance of the strategy.
    pub fn assignor(self) -> Box<dyn Assignor> {
        match self {
            AssignorKind::Range => Box::new(RangeAssignor),
            AssignorKind::RoundRobin => Box::new(RoundRobinAssignor),
            AssignorKind::Sticky => Box::new(StickyAssignor),
            AssignorKind::CooperativeSticky => Box::new(CooperativeStickyAssignor),
        }
    }

    /// The strategy with Kafka protocol name `name`, if built in.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// The topics `subscription` names that exist in `partitions_per_topic`.
fn known_topics<'a>(
    partitions_per_topic: &'a BTreeMap<String, u32>,
    subscription: &Subscription,
) -> BTreeSet<&'a str> {
    subscription
        .topics
        .iter()
        .filter_map(|t| partitions_per_topic.get_key_value(t.as_str()))
        .map(|(t, _)| t.as_str())
        .collect()
}

/// An empty partition list for every member.
fn empty_lists(
    members: &BTreeMap<MemberId, Subscription>,
) -> BTreeMap<&MemberId, Vec<TopicPartition>> {
    members.keys().map(|m| (m, Vec::new())).collect()
}

/// Builds the result from per-member lists.
fn finish(lists: BTreeMap<&MemberId, Vec<TopicPartition>>) -> Assignment {
    lists.into_iter().map(|(m, p)| (m.clone(), p)).collect()
}

/// Whether partition `p` exists according to `partitions_per_topic`.
fn exists(partitions_per_topic: &BTreeMap<String, u32>, p: &TopicPartition) -> bool {
    partitions_per_topic
        .get(&p.topic)
        .is_some_and(|&count| p.partition < count)
}
