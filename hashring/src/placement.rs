//! One trait for every placement algorithm, so users can swap them.

use std::fmt::Debug;
use std::hash::Hash;

use thiserror::Error;

use crate::hash::KeyHash;

/// The bound every node id satisfies, the same set in every dsys crate:
/// `Clone + Eq + Ord + Hash + Debug`, implemented for every type that has it,
/// so you bring your own (`u64`, `SocketAddr`, a UUID, a `String`). `Hash`
/// feeds the stable node hash (vnode tokens, scores, Maglev permutations;
/// see [`KeyHash`] for how it is computed), `Ord` breaks ties
/// deterministically, `Clone` copies ids into plans and preference lists.
pub trait NodeId: Clone + Eq + Ord + Hash + Debug {}
impl<T: Clone + Eq + Ord + Hash + Debug> NodeId for T {}

/// A way to map keys onto a set of nodes.
///
/// Implemented by [`Ring`](crate::Ring) (consistent hashing with virtual
/// nodes), [`JumpHash`](crate::JumpHash), [`Rendezvous`](crate::Rendezvous),
/// [`Maglev`](crate::Maglev), [`BoundedLoads`](crate::BoundedLoads),
/// [`ModuloHash`](crate::ModuloHash) and
/// [`RangePartition`](crate::RangePartition). Every implementation is
/// deterministic: the same membership changes in the same order give the same
/// placement in every process, on every platform.
///
/// The trait is object safe (`Box<dyn Placement<N>>`); the generic
/// conveniences ([`locate`](Placement::locate),
/// [`locate_bytes`](Placement::locate_bytes)) hash the key and call
/// [`locate_hash`](Placement::locate_hash).
pub trait Placement<N: NodeId> {
    /// A short lowercase name for reports (`"ring"`, `"jump"`, ...).
    fn algorithm(&self) -> &'static str;

    /// How many distinct nodes take part.
    fn node_count(&self) -> usize;

    /// True when there are no nodes (every lookup answers `None`).
    fn is_empty(&self) -> bool {
        self.node_count() == 0
    }

    /// True when `node` takes part.
    fn contains(&self, node: &N) -> bool;

    /// Adds `node` with a relative `weight` (1 is the usual unit; an
    /// algorithm without weights accepts only 1). On error nothing changed.
    fn add_node(&mut self, node: N, weight: u32) -> Result<(), AddNodeError>;

    /// Removes `node`. On error nothing changed.
    fn remove_node(&mut self, node: &N) -> Result<(), RemoveNodeError>;

    /// The node that owns the key at `key`, or `None` when there are no nodes.
    fn locate_hash(&self, key: KeyHash) -> Option<&N>;

    /// Clears `out` and fills it with up to `n` distinct nodes for `key`, the
    /// owner first (the replicas of a replicated key). Fewer than `n` when
    /// there are fewer nodes. Reusing `out` keeps lookups allocation-free.
    fn replicas_hash<'a>(&'a self, key: KeyHash, n: usize, out: &mut Vec<&'a N>);

    /// The owner of a [`Hash`] key (hashed as [`KeyHash::of`] documents).
    fn locate<K: Hash + ?Sized>(&self, key: &K) -> Option<&N>
    where
        Self: Sized,
    {
        self.locate_hash(KeyHash::of(key))
    }

    /// The owner of a byte key (hashed as [`KeyHash::of_bytes`] documents).
    fn locate_bytes(&self, key: &[u8]) -> Option<&N>
    where
        Self: Sized,
    {
        self.locate_hash(KeyHash::of_bytes(key))
    }
}

/// Why [`Placement::add_node`] refused a node. The placement is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddNodeError {
    /// The node is already a member. Change a weight with the algorithm's own
    /// method (e.g. [`Ring::set_weight`](crate::Ring::set_weight)). State:
    /// nothing changed.
    #[error("node is already a member")]
    Duplicate,
    /// Weight 0 would make a member that owns nothing; remove the node
    /// instead (the rebalance plan says what to stream off it). State:
    /// nothing changed.
    #[error("weight must be at least 1")]
    ZeroWeight,
    /// This algorithm gives every node the same share (jump hash, hash mod
    /// N, range partitioning) and accepts only weight 1. State: nothing
    /// changed.
    #[error("this placement does not support weights (weight {weight} given, only 1 allowed)")]
    WeightsUnsupported {
        /// The weight that was asked for.
        weight: u32,
    },
    /// The node count or total vnode/table size would exceed what the
    /// placement can address (for example more nodes than a Maglev table has
    /// slots, or more than `u32::MAX` vnodes). State: nothing changed.
    #[error("capacity exceeded: {what}")]
    CapacityExceeded {
        /// Which limit.
        what: &'static str,
    },
    /// Two different node ids hashed to the same 64-bit identity, so their
    /// positions would coincide (probability about n²/2⁶⁵). Rename one.
    /// State: nothing changed.
    #[error("node id hash collides with an existing member")]
    HashCollision,
}

/// Why [`Placement::remove_node`] refused. The placement is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RemoveNodeError {
    /// The node is not a member. State: nothing changed.
    #[error("node is not a member")]
    Unknown,
    /// The algorithm cannot remove this node without remapping keys of
    /// other nodes (jump hash only removes its last bucket). State: nothing
    /// changed.
    #[error("this placement can only remove its most recently added node")]
    OnlyLastRemovable,
}

/// Pushes `node` unless it is already in `out`, for building replica lists.
/// A placement's members are distinct elements of its own storage, so
/// address identity is node identity, and cheaper than comparing ids.
pub(crate) fn push_distinct<'a, N>(out: &mut Vec<&'a N>, node: &'a N) {
    if !out.iter().any(|o| std::ptr::eq(*o, node)) {
        out.push(node);
    }
}
