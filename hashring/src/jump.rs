//! Jump consistent hash (Lamping & Veach, "A Fast, Minimal Memory,
//! Consistent Hash Algorithm", 2014).
//!
//! Jump maps a 64-bit key to one of `n` numbered buckets with no state but
//! `n`: the key seeds a pseudo-random sequence of "jumps" forward through the
//! bucket numbers, and the last bucket reached before jumping past `n` is the
//! answer. Growing `n` to `n + 1` moves exactly the keys that now land in the
//! new last bucket, about `1 / (n + 1)` of them, and nothing else. The price,
//! in the paper's words, is that "the buckets must be numbered
//! sequentially": only the last one can be removed without remapping other
//! buckets' keys.

use crate::hash::{KeyHash, mix};
use crate::placement::{AddNodeError, NodeId, Placement, RemoveNodeError, push_distinct};

/// The bucket in `0..buckets` that `key` falls in, or `None` for 0 buckets.
///
/// This is the paper's Figure 1 bit for bit: the 64-bit linear congruential
/// generator with multiplier 2862933555777941757, and the jump distance
/// computed in double precision as `(b + 1) * (2^31 / ((key >> 33) + 1))`.
/// The same `(key, buckets)` gives the same bucket as the paper's C++
/// reference and every faithful port of it.
///
/// ```
/// use dsys_hashring::jump_consistent_hash;
///
/// assert_eq!(jump_consistent_hash(0xdead_beef, 5), Some(3));
/// assert_eq!(jump_consistent_hash(42, 0), None);
/// ```
#[must_use]
pub fn jump_consistent_hash(key: u64, buckets: u32) -> Option<u32> {
    if buckets == 0 {
        return None;
    }
    let mut key = key;
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // The paper divides 2^31 by a uniform 31-bit value first, then
        // multiplies: both roundings are part of the reference output, so the
        // expression keeps the paper's evaluation order. The product is at
        // most 2^32 * 2^31 = 2^63, where `as` saturates instead of the C++
        // undefined behaviour; either way it ends the loop.
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    // `b` was the last `j` below `buckets`, so it is in `0..buckets`.
    u32::try_from(b).ok()
}

/// How many derived keys [`JumpHash`] tries per wanted replica before it
/// fills the remaining replicas by walking the buckets.
const DRAWS_PER_REPLICA: usize = 8;

/// Jump consistent hash over a list of nodes: node `i` is bucket `i`.
///
/// * [`add_node`](Placement::add_node) appends a bucket, so about
///   `1 / (n + 1)` of the keys move, all of them to the new node.
/// * [`remove_node`](Placement::remove_node) only removes the **last** node
///   (the most recently added one still present): removing bucket `i < n - 1`
///   would renumber the buckets after it and move their keys too. Any other
///   node gives [`RemoveNodeError::OnlyLastRemovable`]. Replace a failed node
///   in place instead, or use [`Rendezvous`](crate::Rendezvous) /
///   [`Ring`](crate::Ring) when arbitrary nodes leave.
/// * There are no weights: every node gets `1 / n` of the keys; any weight
///   but 1 gives [`AddNodeError::WeightsUnsupported`].
///
/// Replicas come from further keys derived from the key (`mix(key, 1)`,
/// `mix(key, 2)`, ...), each placed by jump and skipped when it repeats a
/// node. Each draw only ever moves to a newly appended bucket, so a replica
/// set that changes when the list grows takes in the new node; usually that
/// is the only change, but when two draws move at once another member can
/// be swapped too (measured: 38 of 3000 keys, 3 replicas, 12 → 13 nodes).
/// If the draws run out (at most 8 per wanted replica, which happens only
/// when nearly every node is wanted), the remaining replicas are the
/// buckets after the owner's, in order, wrapping around.
///
/// ```
/// use dsys_hashring::{JumpHash, KeyHash, Placement};
///
/// let mut jump = JumpHash::new();
/// for node in ["a", "b", "c"] {
///     jump.add_node(node, 1).unwrap();
/// }
/// let owner = jump.locate_bytes(b"user:42").unwrap();
/// assert!(["a", "b", "c"].contains(owner));
///
/// let mut replicas = Vec::new();
/// jump.replicas_hash(KeyHash::of_bytes(b"user:42"), 2, &mut replicas);
/// assert_eq!(replicas[0], owner);
/// assert_eq!(replicas.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHash<N> {
    /// Bucket `i` is `nodes[i]`.
    nodes: Vec<N>,
}

impl<N> Default for JumpHash<N> {
    fn default() -> Self {
        JumpHash { nodes: Vec::new() }
    }
}

impl<N: NodeId> JumpHash<N> {
    /// An empty placement.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The nodes in bucket order (the order they were added).
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &N> + '_ {
        self.nodes.iter()
    }

    /// The bucket number that owns `key`, or `None` when there are no nodes.
    #[must_use]
    pub fn bucket(&self, key: KeyHash) -> Option<u32> {
        jump_consistent_hash(key.0, self.bucket_count())
    }

    /// The node in bucket `bucket`, if there is one.
    #[must_use]
    pub fn node(&self, bucket: u32) -> Option<&N> {
        self.nodes.get(usize::try_from(bucket).ok()?)
    }

    /// `add_node` refuses more than `u32::MAX` nodes, so this is exact.
    fn bucket_count(&self) -> u32 {
        u32::try_from(self.nodes.len()).unwrap_or(u32::MAX)
    }
}

impl<N: NodeId> Placement<N> for JumpHash<N> {
    fn algorithm(&self) -> &'static str {
        "jump"
    }

    fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn contains(&self, node: &N) -> bool {
        self.nodes.contains(node)
    }

    fn add_node(&mut self, node: N, weight: u32) -> Result<(), AddNodeError> {
        if weight != 1 {
            return Err(AddNodeError::WeightsUnsupported { weight });
        }
        if self.nodes.contains(&node) {
            return Err(AddNodeError::Duplicate);
        }
        if self.nodes.len() >= u32::MAX as usize {
            return Err(AddNodeError::CapacityExceeded {
                what: "jump hash addresses at most u32::MAX buckets",
            });
        }
        self.nodes.push(node);
        Ok(())
    }

    fn remove_node(&mut self, node: &N) -> Result<(), RemoveNodeError> {
        match self.nodes.iter().position(|n| n == node) {
            None => Err(RemoveNodeError::Unknown),
            // Jump's buckets are numbered sequentially: only shrinking from
            // the end keeps the other buckets' keys in place.
            Some(i) if i + 1 != self.nodes.len() => Err(RemoveNodeError::OnlyLastRemovable),
            Some(_) => {
                self.nodes.pop();
                Ok(())
            }
        }
    }

    fn locate_hash(&self, key: KeyHash) -> Option<&N> {
        self.node(self.bucket(key)?)
    }

    fn replicas_hash<'a>(&'a self, key: KeyHash, n: usize, out: &mut Vec<&'a N>) {
        out.clear();
        let want = n.min(self.nodes.len());
        let buckets = self.bucket_count();
        let Some(owner) = jump_consistent_hash(key.0, buckets) else {
            return;
        };
        if want == 0 {
            return;
        }
        out.push(&self.nodes[owner as usize]);
        // Each derived key is placed by jump itself, so a replica, like the
        // owner, only ever moves to a newly appended bucket.
        let draws = want.saturating_mul(DRAWS_PER_REPLICA);
        let mut salt = 1u64;
        while out.len() < want && salt <= draws as u64 {
            if let Some(b) = jump_consistent_hash(mix(key.0, salt), buckets) {
                push_distinct(out, &self.nodes[b as usize]);
            }
            salt += 1;
        }
        // Deterministic fallback: the buckets after the owner's, in order.
        let len = self.nodes.len();
        let mut i = owner as usize;
        while out.len() < want {
            i = (i + 1) % len;
            push_distinct(out, &self.nodes[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_buckets_is_none_and_one_bucket_is_zero() {
        assert_eq!(jump_consistent_hash(0, 0), None);
        assert_eq!(jump_consistent_hash(u64::MAX, 0), None);
        for key in [0, 1, 42, u64::MAX] {
            assert_eq!(jump_consistent_hash(key, 1), Some(0));
        }
    }

    #[test]
    fn largest_bucket_count_stays_in_range() {
        for key in 0..1000u64 {
            let b = jump_consistent_hash(mix(key, 7), u32::MAX).unwrap();
            assert!(b < u32::MAX);
        }
    }

    #[test]
    fn fallback_fills_every_bucket() {
        let mut jump = JumpHash::new();
        for i in 0..50u32 {
            jump.add_node(i, 1).unwrap();
        }
        let mut out = Vec::new();
        for key in 0..200u64 {
            jump.replicas_hash(KeyHash(mix(key, 3)), 50, &mut out);
            let mut ids: Vec<u32> = out.iter().map(|n| **n).collect();
            ids.sort_unstable();
            assert_eq!(ids, (0..50).collect::<Vec<_>>());
        }
    }
}
