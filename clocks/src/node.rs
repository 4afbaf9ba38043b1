//! The bound on node identifiers.

use core::fmt::Debug;
use core::hash::Hash;

/// What a node identifier must be, for the clocks that name nodes
/// ([`VectorClock`](crate::VectorClock) / [`VersionVector`](crate::VersionVector),
/// [`Dot`](crate::Dot), [`DottedVersionVector`](crate::DottedVersionVector),
/// [`Siblings`](crate::Siblings)): the suite's one bound set, implemented for
/// every type that has it, so `u32`, `u64`, `&str`, `String`, `SocketAddr`
/// or your own UUID type work unchanged.
///
/// `Ord` keeps entries sorted (one linear pass to compare or merge), `Clone`
/// copies an id into a merged clock; `Eq`, `Hash` and `Debug` let ids key a
/// map and appear in messages.
pub trait NodeId: Clone + Eq + Ord + Hash + Debug {}

impl<T: Clone + Eq + Ord + Hash + Debug> NodeId for T {}
