//! Balanced token allocation, in the spirit of Cassandra's allocator for
//! vnodes (CASSANDRA-7032, `NoReplicationTokenAllocator`): instead of
//! hashing a new node's tokens to random places, put each one where it
//! takes load from the node that is most above its fair share.
//!
//! Fair share: a node of weight `w` should own `w / W` of the ring, `W`
//! being the total weight including the newcomer. The newcomer needs
//! `w_new / W` of the ring, spread over its `v` tokens. Each token in turn
//! takes `remaining need / remaining tokens` (at most all but one position)
//! out of the largest range of the currently most overloaded node, by
//! placing the new token that far into the range: the new vnode owns the
//! lower part `(start, start + take]`, the donor keeps the rest. The
//! arithmetic is exact (integer widths in units of one position), so the
//! result is the same on every platform.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Ring;
use crate::hash::derived_point;
use crate::placement::NodeId;

/// 2⁶⁴, the number of positions on the ring.
const SPACE: u128 = 1 << 64;

/// Tokens for a new node of `weight` with `count` vnodes.
pub(super) fn balanced_tokens<N: NodeId>(
    ring: &Ring<N>,
    node_hash: u64,
    weight: u32,
    count: usize,
) -> Vec<u64> {
    let members = ring.members();
    if ring.token_slice().is_empty() || count == 0 {
        // Alone on the ring: evenly spaced, from a node-specific offset.
        let offset = derived_point(node_hash, 0);
        return (0..count as u128)
            .map(|i| offset.wrapping_add((i * SPACE / count as u128) as u64))
            .collect();
    }

    let total_weight: u128 =
        members.iter().map(|m| u128::from(m.weight)).sum::<u128>() + u128::from(weight);
    // Each member's ranges, largest first (ties: lower start first), and
    // its load above target.
    let mut ranges: Vec<BinaryHeap<(u128, Reverse<u64>)>> = vec![BinaryHeap::new(); members.len()];
    let mut load = vec![0u128; members.len()];
    for (i, &slot) in ring.owner_slots().iter().enumerate() {
        let range = ring.vnode_range(i);
        ranges[slot as usize].push((range.width(), Reverse(range.start)));
        load[slot as usize] += range.width();
    }
    let mut donors: BinaryHeap<(i128, Reverse<u64>, usize)> = members
        .iter()
        .enumerate()
        .map(|(slot, m)| {
            let target = SPACE * u128::from(m.weight) / total_weight;
            (load[slot] as i128 - target as i128, Reverse(m.hash), slot)
        })
        .collect();

    let mut need = SPACE * u128::from(weight) / total_weight;
    let mut tokens = Vec::with_capacity(count);
    while tokens.len() < count {
        let remaining = (count - tokens.len()) as u128;
        let want = need.div_ceil(remaining).max(1);
        let Some((overload, tie, slot)) = donors.pop() else {
            break;
        };
        let Some((width, Reverse(start))) = ranges[slot].pop() else {
            continue; // this donor has nothing left to split
        };
        if width < 2 {
            continue; // every range of this donor is a single position
        }
        let take = want.min(width - 1);
        let token = start.wrapping_add(take as u64);
        tokens.push(token);
        need = need.saturating_sub(take);
        ranges[slot].push((width - take, Reverse(token)));
        donors.push((overload - take as i128, tie, slot));
    }
    // Only reachable when every range is one position wide (a ring of
    // 2^64 tokens): fall back to hashed tokens for the rest.
    let mut i = 0u64;
    while tokens.len() < count {
        tokens.push(derived_point(node_hash, i));
        i += 1;
    }
    tokens
}
