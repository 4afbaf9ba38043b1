//! Range partitioning: each node owns one contiguous interval of the 64-bit
//! point space ("partition 0: A–F, partition 1: G–M, ...").
//!
//! Ordered stores (Bigtable tablets, HBase regions, CockroachDB ranges,
//! Spanner splits) partition this way so that a scan over adjacent keys
//! touches one node. Growth splits a range in two and hands one half to the
//! new node, so only that half moves.

use std::ops::RangeInclusive;

use thiserror::Error;

use crate::hash::KeyHash;
use crate::placement::{AddNodeError, NodeId, Placement, RemoveNodeError};

/// The parameters of [`RangePartition::with_boundaries`] are refused;
/// nothing was built.
///
/// Named like a configuration error because it plays the same role (it
/// rejects invalid construction parameters), though [`RangePartition`] has no config
/// struct: the parameters are passed bare.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RangeConfigError {
    /// The first range must start at point 0, or the points below it would
    /// have no owner.
    /// State: nothing was built.
    #[error("the first range starts at {lower}, not 0")]
    NotStartingAtZero {
        /// The first lower bound given.
        lower: u64,
    },
    /// Lower bounds must be given in ascending order.
    /// State: nothing was built.
    #[error("lower bound {lower} at index {index} is below the previous one")]
    Unsorted {
        /// Position in the input of the out-of-order entry.
        index: usize,
        /// Its lower bound.
        lower: u64,
    },
    /// Two ranges start at the same point: the first would be empty.
    /// State: nothing was built.
    #[error("lower bound {lower} appears twice")]
    DuplicateBoundary {
        /// The repeated lower bound.
        lower: u64,
    },
    /// A node may own only one range.
    /// State: nothing was built.
    #[error("node at index {index} already owns another range")]
    DuplicateNode {
        /// Position in the input of the second range of that node.
        index: usize,
    },
}

/// The point of a key under order-preserving placement: its first 8 bytes,
/// big-endian, zero-padded when shorter.
///
/// If `a < b` byte-wise then `order_preserving_point(a) <=
/// order_preserving_point(b)`: keys that sort together land together, which
/// is what makes range scans cheap. Keys that share their first 8 bytes get
/// the same point, so one node owns all of them (a prefix such as
/// `"user:000"` followed by ids is fine; `"tenant-0"` followed by everything
/// else puts the whole tenant on one node).
///
/// ```
/// use dsys_hashring::order_preserving_point;
///
/// assert_eq!(order_preserving_point(b""), 0);
/// assert_eq!(order_preserving_point(b"A"), 0x4100_0000_0000_0000);
/// assert!(order_preserving_point(b"apple") < order_preserving_point(b"banana"));
/// ```
#[must_use]
pub fn order_preserving_point(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let len = key.len().min(8);
    bytes[..len].copy_from_slice(&key[..len]);
    u64::from_be_bytes(bytes)
}

/// Range partitioning over the 64-bit point space.
///
/// Each node owns the points from its lower bound up to the next node's lower
/// bound (the last node: up to `u64::MAX`). The ranges always cover the
/// whole space, the first starting at 0.
///
/// * Build a layout with [`with_boundaries`](Self::with_boundaries), or
///   start empty: the first node added owns everything.
/// * [`add_node`](Placement::add_node) splits the widest range (the one
///   starting lowest among equally wide ones) in half and gives the upper
///   half to the new node: only that half's keys move, all to the new node,
///   like a Bigtable tablet or HBase region split. Adding nodes one by one to
///   an empty partition gives equal widths whenever the count is a power of
///   two. No weights: any weight but 1 gives
///   [`AddNodeError::WeightsUnsupported`].
/// * [`remove_node`](Placement::remove_node) merges the node's range into
///   its predecessor's (into its successor's if it is the first range): only
///   its own keys move, all to one neighbour.
///
/// Two kinds of keys:
///
/// * [`locate_ordered`](Self::locate_ordered) places a byte key at
///   [`order_preserving_point`], so adjacent keys share a node and a range
///   scan asks one or a few nodes. Skewed keys make skewed load: split
///   boundaries should follow the data ([`with_boundaries`](Self::with_boundaries)).
/// * [`locate_hash`](Placement::locate_hash) (and the trait's `locate`,
///   `locate_bytes`) treats the [`KeyHash`] as the point. Hashed keys are
///   uniform, so it behaves like hash partitioning with a node's share equal
///   to its range's width, and scans lose their locality.
///
/// Replicas of a key are the owner, then the owners of the following ranges
/// in order, wrapping from the last range to the first.
///
/// ```
/// use dsys_hashring::{Placement, RangePartition, order_preserving_point};
///
/// let partition = RangePartition::with_boundaries(vec![
///     (0, "p0"),                          // everything before "G"
///     (order_preserving_point(b"G"), "p1"), // "G" up to "N"
///     (order_preserving_point(b"N"), "p2"), // "N" onwards
/// ])
/// .unwrap();
/// assert_eq!(partition.locate_ordered(b"Alice"), Some(&"p0"));
/// assert_eq!(partition.locate_ordered(b"Grace"), Some(&"p1"));
/// assert_eq!(partition.locate_ordered(b"Mallory"), Some(&"p1"));
/// assert_eq!(partition.locate_ordered(b"Trent"), Some(&"p2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePartition<N> {
    /// `(lower bound, owner)`, lower bounds strictly ascending, the first 0.
    ranges: Vec<(u64, N)>,
}

impl<N> Default for RangePartition<N> {
    fn default() -> Self {
        RangePartition { ranges: Vec::new() }
    }
}

impl<N: NodeId> RangePartition<N> {
    /// An empty partition.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A partition with the given ranges: `(lower bound, owner)` in
    /// ascending order of lower bound, the first at 0. Each owner keeps its
    /// range up to the next lower bound. An empty list gives an empty
    /// partition.
    ///
    /// # Errors
    ///
    /// [`RangeConfigError`] when the first bound is not 0, the bounds are
    /// not strictly ascending, or a node appears twice.
    pub fn with_boundaries(ranges: Vec<(u64, N)>) -> Result<Self, RangeConfigError> {
        if let Some(&(lower, _)) = ranges.first() {
            if lower != 0 {
                return Err(RangeConfigError::NotStartingAtZero { lower });
            }
        }
        for (index, pair) in ranges.windows(2).enumerate() {
            let (previous, lower) = (pair[0].0, pair[1].0);
            if lower == previous {
                return Err(RangeConfigError::DuplicateBoundary { lower });
            }
            if lower < previous {
                return Err(RangeConfigError::Unsorted {
                    index: index + 1,
                    lower,
                });
            }
        }
        let mut by_node: Vec<(&N, usize)> = ranges
            .iter()
            .enumerate()
            .map(|(i, (_, n))| (n, i))
            .collect();
        by_node.sort_unstable();
        if let Some(pair) = by_node.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(RangeConfigError::DuplicateNode { index: pair[1].1 });
        }
        Ok(RangePartition { ranges })
    }

    /// The nodes in range order (ascending lower bound).
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &N> + '_ {
        self.ranges.iter().map(|(_, n)| n)
    }

    /// The ranges in order: `(lower bound, owner)`; each ends just below the
    /// next lower bound, the last at `u64::MAX`. This is the layout
    /// [`with_boundaries`](Self::with_boundaries) accepts.
    pub fn boundaries(&self) -> impl ExactSizeIterator<Item = (u64, &N)> + '_ {
        self.ranges.iter().map(|(lower, n)| (*lower, n))
    }

    /// The points `node` owns, if it is a member.
    #[must_use]
    pub fn range_of(&self, node: &N) -> Option<RangeInclusive<u64>> {
        let i = self.index_of(node)?;
        Some(self.ranges[i].0..=self.upper(i))
    }

    /// The owner of `point`, or `None` when there are no nodes.
    #[must_use]
    pub fn locate_point(&self, point: u64) -> Option<&N> {
        self.range_index(point).map(|i| &self.ranges[i].1)
    }

    /// The owner of a byte key placed in key order, at
    /// [`order_preserving_point`]`(key)`, or `None` when there are no nodes.
    #[must_use]
    pub fn locate_ordered(&self, key: &[u8]) -> Option<&N> {
        self.locate_point(order_preserving_point(key))
    }

    fn index_of(&self, node: &N) -> Option<usize> {
        self.ranges.iter().position(|(_, n)| n == node)
    }

    /// The index of the range holding `point`: the last lower bound at or
    /// below it. The first bound is 0, so one exists whenever there are
    /// ranges.
    fn range_index(&self, point: u64) -> Option<usize> {
        self.ranges
            .partition_point(|&(lower, _)| lower <= point)
            .checked_sub(1)
    }

    /// The last point of range `i`.
    fn upper(&self, i: usize) -> u64 {
        self.ranges
            .get(i + 1)
            .map_or(u64::MAX, |&(next, _)| next - 1)
    }

    /// The number of points in range `i` (up to 2^64, hence `u128`).
    fn width(&self, i: usize) -> u128 {
        u128::from(self.upper(i)) - u128::from(self.ranges[i].0) + 1
    }
}

impl<N: NodeId> Placement<N> for RangePartition<N> {
    fn algorithm(&self) -> &'static str {
        "range"
    }

    fn node_count(&self) -> usize {
        self.ranges.len()
    }

    fn contains(&self, node: &N) -> bool {
        self.index_of(node).is_some()
    }

    fn add_node(&mut self, node: N, weight: u32) -> Result<(), AddNodeError> {
        if weight != 1 {
            return Err(AddNodeError::WeightsUnsupported { weight });
        }
        if self.contains(&node) {
            return Err(AddNodeError::Duplicate);
        }
        if self.ranges.is_empty() {
            self.ranges.push((0, node));
            return Ok(());
        }
        // The widest range, the lowest-starting one among equals (`max_by`
        // keeps the last maximum, so compare widths then prefer lower index).
        let (widest, width) = (0..self.ranges.len())
            .map(|i| (i, self.width(i)))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .unwrap_or((0, 0));
        // Only when all 2^64 points are single-point ranges.
        if width < 2 {
            return Err(AddNodeError::CapacityExceeded {
                what: "every range is a single point and cannot be split",
            });
        }
        // Below `2^64`: `lower + width / 2 <= upper`.
        let split = (u128::from(self.ranges[widest].0) + width / 2) as u64;
        self.ranges.insert(widest + 1, (split, node));
        Ok(())
    }

    fn remove_node(&mut self, node: &N) -> Result<(), RemoveNodeError> {
        let i = self.index_of(node).ok_or(RemoveNodeError::Unknown)?;
        // Dropping range `i` extends its predecessor up to the next bound;
        // the first range instead hands 0.. to its successor.
        self.ranges.remove(i);
        if i == 0 {
            if let Some(first) = self.ranges.first_mut() {
                first.0 = 0;
            }
        }
        Ok(())
    }

    fn locate_hash(&self, key: KeyHash) -> Option<&N> {
        self.locate_point(key.0)
    }

    fn replicas_hash<'a>(&'a self, key: KeyHash, n: usize, out: &mut Vec<&'a N>) {
        out.clear();
        let Some(first) = self.range_index(key.0) else {
            return;
        };
        let len = self.ranges.len();
        out.extend((0..n.min(len)).map(|step| &self.ranges[(first + step) % len].1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_preserving_point_pads_and_truncates() {
        assert_eq!(order_preserving_point(b"\x01"), 1 << 56);
        assert_eq!(
            order_preserving_point(b"\x01\x02\x03\x04\x05\x06\x07\x08\x09"),
            0x0102_0304_0506_0708
        );
        let mut keys: Vec<&[u8]> = vec![b"", b"a", b"ab", b"b", b"zz", b"\xff", b"aa", b"a\0"];
        keys.sort_unstable();
        let points: Vec<u64> = keys.iter().map(|k| order_preserving_point(k)).collect();
        assert!(points.windows(2).all(|w| w[0] <= w[1]), "{points:?}");
    }

    #[test]
    fn boundary_errors() {
        type R = RangePartition<char>;
        assert_eq!(
            R::with_boundaries(vec![(5, 'a')]),
            Err(RangeConfigError::NotStartingAtZero { lower: 5 })
        );
        assert_eq!(
            R::with_boundaries(vec![(0, 'a'), (10, 'b'), (7, 'c')]),
            Err(RangeConfigError::Unsorted { index: 2, lower: 7 })
        );
        assert_eq!(
            R::with_boundaries(vec![(0, 'a'), (10, 'b'), (10, 'c')]),
            Err(RangeConfigError::DuplicateBoundary { lower: 10 })
        );
        assert_eq!(
            R::with_boundaries(vec![(0, 'a'), (10, 'b'), (20, 'a')]),
            Err(RangeConfigError::DuplicateNode { index: 2 })
        );
        assert_eq!(R::with_boundaries(vec![]), Ok(R::new()));
    }

    #[test]
    fn splits_halve_the_widest_range() {
        let mut p = RangePartition::new();
        p.add_node('a', 1).unwrap();
        assert_eq!(p.range_of(&'a'), Some(0..=u64::MAX));
        p.add_node('b', 1).unwrap();
        assert_eq!(p.range_of(&'a'), Some(0..=(1 << 63) - 1));
        assert_eq!(p.range_of(&'b'), Some(1 << 63..=u64::MAX));
        // Tie: the lower range splits first.
        p.add_node('c', 1).unwrap();
        assert_eq!(p.range_of(&'c'), Some(1 << 62..=(1 << 63) - 1));
        p.add_node('d', 1).unwrap();
        assert_eq!(p.range_of(&'d'), Some(3 << 62..=u64::MAX));
        let order: Vec<char> = p.nodes().copied().collect();
        assert_eq!(order, ['a', 'c', 'b', 'd']);
    }

    #[test]
    fn removal_merges_into_a_neighbour() {
        let mut p =
            RangePartition::with_boundaries(vec![(0, 'a'), (100, 'b'), (200, 'c')]).unwrap();
        p.remove_node(&'b').unwrap();
        assert_eq!(p.range_of(&'a'), Some(0..=199));
        p.remove_node(&'a').unwrap();
        assert_eq!(p.range_of(&'c'), Some(0..=u64::MAX));
        p.remove_node(&'c').unwrap();
        assert!(p.is_empty());
        assert_eq!(p.locate_point(7), None);
    }
}
