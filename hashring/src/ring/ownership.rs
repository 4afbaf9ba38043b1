//! Who owns which part of the hash space, and what must move when the
//! membership changes (the data a new node streams in, Dynamo §4.9;
//! Cassandra's range streaming on bootstrap and decommission).

use smallvec::SmallVec;

use super::Ring;
use crate::hash::KeyHash;
use crate::placement::NodeId;

/// The size of the hash space, 2⁶⁴.
const SPACE: f64 = 18_446_744_073_709_551_616.0;

/// A range of positions `(start, end]` on the ring, wrapping past `u64::MAX`
/// when `start >= end`. `start == end` is the whole ring (a ring with one
/// token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TokenRange {
    /// Exclusive lower end: the preceding token.
    pub start: u64,
    /// Inclusive upper end: the owning token.
    pub end: u64,
}

impl TokenRange {
    /// True when the range holds position `key`.
    #[must_use]
    pub fn contains(&self, key: KeyHash) -> bool {
        let p = key.0;
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Less => self.start < p && p <= self.end,
            std::cmp::Ordering::Greater => p > self.start || p <= self.end,
            std::cmp::Ordering::Equal => true,
        }
    }

    /// Number of positions in the range (2⁶⁴ for the whole ring).
    #[must_use]
    pub fn width(&self) -> u128 {
        if self.start == self.end {
            1u128 << 64
        } else {
            u128::from(self.end.wrapping_sub(self.start))
        }
    }

    /// The range's share of the ring, in `(0, 1]`.
    #[must_use]
    pub fn fraction(&self) -> f64 {
        self.width() as f64 / SPACE
    }
}

/// One range of keys to copy from one node to another.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Transfer<N> {
    /// The keys whose positions fall in this range.
    pub range: TokenRange,
    /// A node that holds the range before the change and still runs after
    /// it when possible (an old replica that stays, else the old owner).
    pub from: N,
    /// The node that holds the range after the change but not before.
    pub to: N,
}

/// What a membership change means for the data: every range that gains a
/// holder, with a source to stream it from, and every range a node may
/// delete once the transfers are done. Keys outside these ranges stay where
/// they are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RebalancePlan<N> {
    /// Copies to make, grouped by `(from, to)` and in token order within a
    /// group; adjacent ranges are merged.
    pub transfers: Vec<Transfer<N>>,
    /// `(range, node)`: `node` held `range` before but not after.
    pub releases: Vec<(TokenRange, N)>,
}

impl<N: NodeId> RebalancePlan<N> {
    /// True when nothing moves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.transfers.is_empty() && self.releases.is_empty()
    }

    /// The share of the hash space copied, summed over transfers (with `n`
    /// replicas, a range copied to two new holders counts twice).
    #[must_use]
    pub fn moved_fraction(&self) -> f64 {
        self.transfers.iter().map(|t| t.range.fraction()).sum()
    }

    /// The transfer that carries `key`'s data to `to`, if any.
    #[must_use]
    pub fn transfer_for(&self, key: KeyHash, to: &N) -> Option<&Transfer<N>> {
        self.transfers
            .iter()
            .find(|t| &t.to == to && t.range.contains(key))
    }
}

impl<N: NodeId> Ring<N> {
    /// The ranges `node` owns as primary, in token order, adjacent ranges
    /// merged. Empty when it is not a member.
    #[must_use]
    pub fn ranges_of(&self, node: &N) -> Vec<TokenRange> {
        let Some(slot) = self.slot_of(node) else {
            return Vec::new();
        };
        let mut ranges: Vec<TokenRange> = Vec::new();
        for (i, &owner) in self.owner_slots().iter().enumerate() {
            if owner as usize != slot {
                continue;
            }
            let range = self.vnode_range(i);
            match ranges.last_mut() {
                Some(last) if last.end == range.start && last.start != last.end => {
                    last.end = range.end
                }
                _ => ranges.push(range),
            }
        }
        ranges
    }

    /// Every node with the share of the hash space it owns as primary
    /// (the shares sum to 1), in the order nodes were added.
    #[must_use]
    pub fn ownership(&self) -> Vec<(&N, f64)> {
        let mut widths = vec![0u128; self.members().len()];
        for (i, &owner) in self.owner_slots().iter().enumerate() {
            widths[owner as usize] += self.vnode_range(i).width();
        }
        self.members()
            .iter()
            .zip(widths)
            .map(|(m, w)| (&m.id, w as f64 / SPACE))
            .collect()
    }

    /// The share of the hash space `node` owns as primary (`None` if it is
    /// not a member).
    #[must_use]
    pub fn share_of(&self, node: &N) -> Option<f64> {
        let slot = self.slot_of(node)?;
        let width: u128 = self
            .owner_slots()
            .iter()
            .enumerate()
            .filter(|&(_, &owner)| owner as usize == slot)
            .map(|(i, _)| self.vnode_range(i).width())
            .sum();
        Some(width as f64 / SPACE)
    }

    /// The range owned by the `i`-th vnode: from the previous token
    /// (exclusive) to its own (inclusive).
    pub(crate) fn vnode_range(&self, i: usize) -> TokenRange {
        let tokens = self.token_slice();
        let prev = if i == 0 { tokens.len() - 1 } else { i - 1 };
        TokenRange {
            start: tokens[prev],
            end: tokens[i],
        }
    }

    /// What moves between `self` (before) and `after` when each key is kept
    /// on its `replicas` preference-list nodes
    /// ([`preference_list`](Ring::preference_list); 1 = owner only). Works
    /// for any change: one add or remove, several at once, weight changes.
    #[must_use]
    pub fn rebalance_plan(&self, after: &Ring<N>, replicas: usize) -> RebalancePlan<N> {
        self.plan_with(after, |ring, point| ring.walk_distinct(point, replicas))
    }

    /// [`rebalance_plan`](Ring::rebalance_plan) for zone-aware preference
    /// lists ([`preference_list_zoned`](Ring::preference_list_zoned)).
    #[must_use]
    pub fn rebalance_plan_zoned(&self, after: &Ring<N>, replicas: usize) -> RebalancePlan<N> {
        self.plan_with(after, |ring, point| ring.walk_zoned(point, replicas))
    }

    /// Walks the elementary ranges between consecutive tokens of either
    /// ring: inside one, both rings give every key the same holders.
    fn plan_with<F>(&self, after: &Ring<N>, holders: F) -> RebalancePlan<N>
    where
        F: Fn(&Ring<N>, u64) -> SmallVec<[u32; 8]>,
    {
        let mut points: Vec<u64> = self
            .token_slice()
            .iter()
            .chain(after.token_slice())
            .copied()
            .collect();
        points.sort_unstable();
        points.dedup();
        let mut transfers: Vec<Transfer<N>> = Vec::new();
        let mut releases: Vec<(TokenRange, N)> = Vec::new();
        if points.is_empty() {
            return RebalancePlan {
                transfers,
                releases,
            };
        }
        for (i, &end) in points.iter().enumerate() {
            let start = if i == 0 {
                points[points.len() - 1]
            } else {
                points[i - 1]
            };
            let range = TokenRange { start, end };
            let old: SmallVec<[&N; 8]> = holders(self, end)
                .iter()
                .map(|&s| &self.members()[s as usize].id)
                .collect();
            let new: SmallVec<[&N; 8]> = holders(after, end)
                .iter()
                .map(|&s| &after.members()[s as usize].id)
                .collect();
            let source = old
                .iter()
                .find(|n| new.contains(n))
                .or_else(|| old.first())
                .copied();
            for &to in new.iter().filter(|n| !old.contains(n)) {
                if let Some(from) = source {
                    transfers.push(Transfer {
                        range,
                        from: from.clone(),
                        to: to.clone(),
                    });
                }
            }
            for &gone in old.iter().filter(|n| !new.contains(n)) {
                releases.push((range, gone.clone()));
            }
        }
        transfers
            .sort_by(|a, b| (&a.from, &a.to, a.range.start).cmp(&(&b.from, &b.to, b.range.start)));
        transfers.dedup_by(|next, prev| {
            let joins =
                prev.from == next.from && prev.to == next.to && prev.range.end == next.range.start;
            if joins {
                prev.range.end = next.range.end;
            }
            joins
        });
        releases.sort_by(|a, b| (&a.1, a.0.start).cmp(&(&b.1, b.0.start)));
        releases.dedup_by(|next, prev| {
            let joins = prev.1 == next.1 && prev.0.end == next.0.start;
            if joins {
                prev.0.end = next.0.end;
            }
            joins
        });
        RebalancePlan {
            transfers,
            releases,
        }
    }
}
