//! Measuring a placement: how evenly it spreads keys and how many it moves
//! when the membership changes. Pure counting (no clocks), shared by the
//! crate's quality test and the tour's report.
//!
//! ```
//! use dsys_hashring::quality::{Assignment, ideal_moved_fraction};
//! use dsys_hashring::{JumpHash, KeyHash, Placement};
//!
//! let keys: Vec<KeyHash> = (0..10_000u32).map(|i| KeyHash::of(&i)).collect();
//! let mut jump = JumpHash::new();
//! for node in 0..10u32 {
//!     jump.add_node(node, 1).unwrap();
//! }
//! let before = Assignment::of(&jump, &keys);
//! jump.add_node(10, 1).unwrap();
//! let after = Assignment::of(&jump, &keys);
//! let moved = before.moved_fraction(&after);
//! assert!(moved < 1.2 * ideal_moved_fraction(10, 11));
//! assert!(before.peak_to_mean() < 1.1);
//! ```

use std::collections::BTreeMap;

use crate::hash::KeyHash;
use crate::placement::{NodeId, Placement};

/// The owner of every key in a sample, and the resulting loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment<N> {
    /// Keys held by each node that holds any, by node id.
    loads: BTreeMap<N, u64>,
    /// Nodes that take part, holding keys or not.
    nodes: usize,
    /// `owners[i]` is the owner of key `i` (None: no nodes).
    owners: Vec<Option<N>>,
}

impl<N: NodeId> Assignment<N> {
    /// Looks up every key in `placement`.
    pub fn of<P: Placement<N> + ?Sized>(placement: &P, keys: &[KeyHash]) -> Self {
        Self::from_owners(
            placement.node_count(),
            keys.iter().map(|&k| placement.locate_hash(k).cloned()),
        )
    }

    /// An assignment from owners computed elsewhere (for example by
    /// [`BoundedLoads::assign_hash`](crate::BoundedLoads::assign_hash)),
    /// among `nodes` nodes.
    pub fn from_owners(nodes: usize, owners: impl IntoIterator<Item = Option<N>>) -> Self {
        let owners: Vec<Option<N>> = owners.into_iter().collect();
        let mut loads = BTreeMap::new();
        for owner in owners.iter().flatten() {
            *loads.entry(owner.clone()).or_insert(0) += 1;
        }
        Assignment {
            loads,
            nodes,
            owners,
        }
    }

    /// Keys per node, for nodes holding at least one, in node order.
    #[must_use]
    pub fn loads(&self) -> &BTreeMap<N, u64> {
        &self.loads
    }

    /// The busiest node's keys over the mean (1.0 is perfect balance).
    #[must_use]
    pub fn peak_to_mean(&self) -> f64 {
        let peak = self.loads.values().copied().max().unwrap_or(0);
        let mean = self.mean();
        if mean == 0.0 { 0.0 } else { peak as f64 / mean }
    }

    /// The idlest node's keys over the mean (a node with no keys counts as 0).
    #[must_use]
    pub fn min_to_mean(&self) -> f64 {
        let min = if self.loads.len() < self.nodes {
            0
        } else {
            self.loads.values().copied().min().unwrap_or(0)
        };
        let mean = self.mean();
        if mean == 0.0 { 0.0 } else { min as f64 / mean }
    }

    fn mean(&self) -> f64 {
        let placed = self.owners.iter().flatten().count();
        if self.nodes == 0 {
            0.0
        } else {
            placed as f64 / self.nodes as f64
        }
    }

    /// The share of keys whose owner differs in `other` (the same keys,
    /// after a membership change). Keys present in only one of the two
    /// samples count as moved.
    #[must_use]
    pub fn moved_fraction(&self, other: &Assignment<N>) -> f64 {
        let total = self.owners.len().max(other.owners.len());
        if total == 0 {
            return 0.0;
        }
        let same = self
            .owners
            .iter()
            .zip(&other.owners)
            .filter(|(a, b)| a == b)
            .count();
        (total - same) as f64 / total as f64
    }

    /// The owner of every key of the sample, in sample order.
    pub fn owners(&self) -> impl ExactSizeIterator<Item = Option<&N>> + '_ {
        self.owners.iter().map(Option::as_ref)
    }

    /// The owner of key `i` of the sample.
    #[must_use]
    pub fn owner(&self, i: usize) -> Option<&N> {
        self.owners.get(i).and_then(Option::as_ref)
    }
}

/// The least share of keys that must move when `before` equal nodes become
/// `after`: the newcomers' fair share when growing, the leavers' when
/// shrinking.
#[must_use]
pub fn ideal_moved_fraction(before: usize, after: usize) -> f64 {
    let (changed, total) = if after >= before {
        (after - before, after)
    } else {
        (before - after, before)
    };
    if total == 0 {
        0.0
    } else {
        changed as f64 / total as f64
    }
}
