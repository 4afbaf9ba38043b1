//! Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
//! Network Load Balancer", NSDI 2016, §3.4).
//!
//! Maglev trades a little disruption for near-perfect balance and `O(1)`
//! lookups: every node walks its own permutation of a lookup table of prime
//! size `M`, and the nodes take turns claiming the next free slot on their
//! permutation until the table is full. A key's owner is the entry in its
//! slot. Because every node claims slots in its own fixed order, a
//! membership change mostly disturbs the slots the changed node held, but,
//! unlike a ring or rendezvous, some slots of unchanged nodes can change
//! hands too (paper §3.4 and the resilience measurements of §5.3).

use thiserror::Error;

use crate::hash::{KeyHash, derived_point, node_hash};
use crate::placement::{AddNodeError, NodeId, Placement, RemoveNodeError, push_distinct};

/// The parameters of [`Maglev::new`] are refused; nothing was built.
///
/// Named like a configuration error because it plays the same role (it
/// rejects invalid construction parameters), though [`Maglev`] has no config
/// struct: the parameters are passed bare.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MaglevConfigError {
    /// The table size is not prime. A prime `M` makes every skip in
    /// `1..M` coprime with `M`, so each node's permutation visits every slot
    /// (§3.4). Pick a prime such as 65537 or 655373.
    /// State: nothing was built.
    #[error("table size {size} is not prime")]
    NotPrime {
        /// The size that was asked for.
        size: u32,
    },
    /// The table needs at least 2 slots (skips are drawn from `1..M`).
    /// State: nothing was built.
    #[error("table size {size} is too small (at least 2)")]
    TooSmall {
        /// The size that was asked for.
        size: u32,
    },
    /// The table would exceed [`Maglev::MAX_TABLE_SIZE`] slots. The table
    /// is allocated in full when the first node joins, so the limit keeps a
    /// typo from allocating gigabytes.
    /// State: nothing was built.
    #[error("table size {size} is too large (at most {max})")]
    TooLarge {
        /// The size that was asked for.
        size: u32,
        /// [`Maglev::MAX_TABLE_SIZE`].
        max: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member<N> {
    node: N,
    /// `node_hash(&node)`.
    hash: u64,
    weight: u32,
    /// Where the node's permutation starts: `h1(node) mod M`.
    offset: u32,
    /// The permutation's stride: `h2(node) mod (M - 1) + 1`.
    skip: u32,
}

/// Slot value of an unfilled table entry while the table is populated.
const EMPTY: u32 = u32::MAX;

/// Maglev consistent hashing: an `M`-slot lookup table filled by the nodes'
/// permutations (paper §3.4, Pseudocode 1).
///
/// # How the table is built
///
/// Node `v` has two independent stable hashes `h1 = derived_point(h(v), 0)`
/// and `h2 = derived_point(h(v), 1)`, and its permutation of the slots is
/// `offset, offset + skip, offset + 2 skip, ...` (mod `M`) with
/// `offset = h1 mod M` and `skip = h2 mod (M - 1) + 1`. Since `M` is prime,
/// every permutation visits every slot. The nodes then take turns, in
/// ascending id order: on its turn a node claims the next slot of its
/// permutation that is still free. With all weights 1 this is exactly the
/// paper's Pseudocode 1, and every node ends with `floor(M / N)` or
/// `ceil(M / N)` slots.
///
/// **Weights** extend the turns: in each round node `v` takes `w_v`
/// consecutive turns, so node `v` ends with between `k·w_v` and
/// `(k + 1)·w_v` slots, where `k = floor(M / Σw)` is the number of complete
/// rounds. [`add_node`](Placement::add_node) requires `Σw ≤ M` (so that
/// every node gets its first round), else
/// [`AddNodeError::CapacityExceeded`].
///
/// The table is rebuilt on every membership change, in `O(M log M)`
/// expected time. It is a function of the member set alone: because turns go
/// in id order, the same members give the same table whatever order they
/// were added in (the paper orders by backend index, which plays the same
/// role). Use [`add_nodes`](Self::add_nodes) to add many nodes with one
/// rebuild.
///
/// # Lookup and replicas
///
/// The owner of `key` is `table[key mod M]`: `O(1)`, one division and one
/// load. Replicas walk the table from that slot, `key mod M`, `+1`, `+2`,
/// ... skipping nodes already taken. Every member holds at least one slot,
/// so one lap finds every node; the walk is bounded by that lap, after which
/// any node still missing (impossible while the invariant holds) would be
/// taken in id order.
///
/// # Disruption
///
/// A membership change rebuilds the whole table, and because the turn
/// order shifts, some slots of unchanged nodes change hands too. Measured
/// with 100 equal nodes: removing one changes about 1.56% of the slots at
/// `M = 65537` and 1.14% at `M = 655373`, against the 1.0% the removed node
/// held; adding a 101st is the same. Use a [`Ring`](crate::Ring) or
/// [`Rendezvous`](crate::Rendezvous) when moved keys are expensive (state
/// to copy); Maglev suits connection routing, where they are cheap.
///
/// # Choosing `M`
///
/// `M` must be prime ([`Maglev::new`] checks). Balance depends on
/// `M / N`: the paper (§3.4) keeps `M` above `100 × N`, so that the shares
/// of any two nodes differ by at most about 1%; with weights read `N` as
/// `Σw`. Lookups cost the same at any `M`, and rebuilds grow with `M`.
/// [`Default`] uses 65537, the smaller of the two sizes the paper
/// evaluates (§5.3), good for a few hundred nodes.
///
/// ```
/// use dsys_hashring::{Maglev, Placement};
///
/// let mut maglev = Maglev::new(65_537).unwrap();
/// for backend in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
///     maglev.add_node(backend, 1).unwrap();
/// }
/// let owner = maglev.locate_bytes(b"flow:1.2.3.4:5678").unwrap();
/// assert!(owner.starts_with("10.0.0."));
/// assert!(Maglev::<&str>::new(65_536).is_err()); // not prime
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maglev<N> {
    /// `M`, prime.
    table_size: u32,
    /// Sorted by `node`.
    members: Vec<Member<N>>,
    /// `Σw`, at most `M`.
    total_weight: u64,
    /// `M` indices into `members`, or empty when there are no members.
    table: Vec<u32>,
}

impl<N> Default for Maglev<N> {
    /// An empty placement with a 65537-slot table.
    fn default() -> Self {
        Maglev {
            table_size: Self::DEFAULT_TABLE_SIZE,
            members: Vec::new(),
            total_weight: 0,
            table: Vec::new(),
        }
    }
}

impl<N> Maglev<N> {
    /// The table size of [`Default`]: 65537, the smaller size the paper
    /// evaluates (§5.3).
    pub const DEFAULT_TABLE_SIZE: u32 = 65_537;

    /// The largest table [`Maglev::new`] accepts: 2^24 slots (64 MiB of
    /// table). The largest prime below it is 16777213.
    pub const MAX_TABLE_SIZE: u32 = 1 << 24;
}

impl<N: NodeId> Maglev<N> {
    /// An empty placement whose lookup table has `table_size` slots.
    ///
    /// # Errors
    ///
    /// [`MaglevConfigError`] when `table_size` is below 2, not prime, or
    /// above [`Maglev::MAX_TABLE_SIZE`].
    pub fn new(table_size: u32) -> Result<Self, MaglevConfigError> {
        if table_size < 2 {
            return Err(MaglevConfigError::TooSmall { size: table_size });
        }
        if table_size > Self::MAX_TABLE_SIZE {
            return Err(MaglevConfigError::TooLarge {
                size: table_size,
                max: Self::MAX_TABLE_SIZE,
            });
        }
        if !is_prime(table_size) {
            return Err(MaglevConfigError::NotPrime { size: table_size });
        }
        Ok(Maglev {
            table_size,
            ..Self::default()
        })
    }

    /// `M`, the number of slots in the lookup table.
    #[must_use]
    pub fn table_size(&self) -> u32 {
        self.table_size
    }

    /// The nodes in ascending id order (the order they take turns in).
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &N> + '_ {
        self.members.iter().map(|m| &m.node)
    }

    /// The nodes and their weights, in ascending id order.
    pub fn weights(&self) -> impl ExactSizeIterator<Item = (&N, u32)> + '_ {
        self.members.iter().map(|m| (&m.node, m.weight))
    }

    /// The lookup table, slot 0 first: `M` entries, or none when there are
    /// no nodes. Key `k` is owned by entry `k mod M`.
    pub fn table(&self) -> impl ExactSizeIterator<Item = &N> + '_ {
        self.table.iter().map(|&i| &self.members[i as usize].node)
    }

    /// Adds several nodes with their weights and rebuilds the table once
    /// (adding `N` nodes one by one rebuilds it `N` times). The result is
    /// the same as adding them one by one.
    ///
    /// # Errors
    ///
    /// The first [`AddNodeError`] that adding them one by one would have
    /// hit (including a node repeated within `nodes`). On error nothing
    /// changed: no node of `nodes` was added.
    pub fn add_nodes<I>(&mut self, nodes: I) -> Result<(), AddNodeError>
    where
        I: IntoIterator<Item = (N, u32)>,
    {
        let mut members = self.members.clone();
        let mut total_weight = self.total_weight;
        for (node, weight) in nodes {
            let member = self.admit(&members, total_weight, node, weight)?;
            total_weight += u64::from(member.weight);
            let at = members.partition_point(|m| m.node < member.node);
            members.insert(at, member);
        }
        self.members = members;
        self.total_weight = total_weight;
        self.rebuild();
        Ok(())
    }

    fn find(&self, node: &N) -> Result<usize, usize> {
        self.members.binary_search_by(|m| m.node.cmp(node))
    }

    /// Checks that `node` may join `members` and computes its permutation.
    fn admit(
        &self,
        members: &[Member<N>],
        total_weight: u64,
        node: N,
        weight: u32,
    ) -> Result<Member<N>, AddNodeError> {
        if weight == 0 {
            return Err(AddNodeError::ZeroWeight);
        }
        if members.binary_search_by(|m| m.node.cmp(&node)).is_ok() {
            return Err(AddNodeError::Duplicate);
        }
        if total_weight + u64::from(weight) > u64::from(self.table_size) {
            return Err(AddNodeError::CapacityExceeded {
                what: "maglev table slots (total weight above the table size)",
            });
        }
        let hash = node_hash(&node);
        // Equal hashes would give two nodes the same permutation.
        if members.iter().any(|m| m.hash == hash) {
            return Err(AddNodeError::HashCollision);
        }
        let m = u64::from(self.table_size);
        // Both are below `M <= u32::MAX`.
        let offset = (derived_point(hash, 0) % m) as u32;
        let skip = (derived_point(hash, 1) % (m - 1) + 1) as u32;
        Ok(Member {
            node,
            hash,
            weight,
            offset,
            skip,
        })
    }

    /// Refills the table from scratch: Pseudocode 1, with `weight` turns per
    /// node per round.
    fn rebuild(&mut self) {
        self.table.clear();
        if self.members.is_empty() {
            return;
        }
        let m = self.table_size as usize;
        self.table.resize(m, EMPTY);
        // `next[i]` of the pseudocode, kept as the slot it points at.
        let mut next: Vec<u32> = self.members.iter().map(|v| v.offset).collect();
        let mut filled = 0usize;
        // Terminates: `Σw ≤ M` and `Σw ≥ 1`, so each round fills at least one
        // slot, and each turn finds a free slot because the permutation
        // visits all `M` slots and the table is not yet full.
        loop {
            for (i, member) in self.members.iter().enumerate() {
                for _ in 0..member.weight {
                    let mut slot = next[i];
                    while self.table[slot as usize] != EMPTY {
                        slot = step(slot, member.skip, self.table_size);
                    }
                    // Fits: there are at most `M <= 2^24` members.
                    self.table[slot as usize] = i as u32;
                    next[i] = step(slot, member.skip, self.table_size);
                    filled += 1;
                    if filled == m {
                        return;
                    }
                }
            }
        }
    }

    fn slot(&self, key: KeyHash) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        // Below `M`, which fits a `usize` since the table has `M` entries.
        Some((key.0 % u64::from(self.table_size)) as usize)
    }
}

/// `(slot + skip) mod m` for `slot, skip < m`, without overflow.
fn step(slot: u32, skip: u32, m: u32) -> u32 {
    let next = u64::from(slot) + u64::from(skip);
    let m = u64::from(m);
    // Below `m`.
    (if next >= m { next - m } else { next }) as u32
}

/// Trial division; `n <= 2^24`, so at most 2^12 divisions.
fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let n = u64::from(n);
    let mut d = 3u64;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

impl<N: NodeId> Placement<N> for Maglev<N> {
    fn algorithm(&self) -> &'static str {
        "maglev"
    }

    fn node_count(&self) -> usize {
        self.members.len()
    }

    fn contains(&self, node: &N) -> bool {
        self.find(node).is_ok()
    }

    fn add_node(&mut self, node: N, weight: u32) -> Result<(), AddNodeError> {
        let member = self.admit(&self.members, self.total_weight, node, weight)?;
        self.total_weight += u64::from(member.weight);
        let at = self.members.partition_point(|m| m.node < member.node);
        self.members.insert(at, member);
        self.rebuild();
        Ok(())
    }

    fn remove_node(&mut self, node: &N) -> Result<(), RemoveNodeError> {
        let i = self.find(node).map_err(|_| RemoveNodeError::Unknown)?;
        let member = self.members.remove(i);
        self.total_weight -= u64::from(member.weight);
        self.rebuild();
        Ok(())
    }

    fn locate_hash(&self, key: KeyHash) -> Option<&N> {
        let slot = self.slot(key)?;
        Some(&self.members[self.table[slot] as usize].node)
    }

    fn replicas_hash<'a>(&'a self, key: KeyHash, n: usize, out: &mut Vec<&'a N>) {
        out.clear();
        let Some(start) = self.slot(key) else {
            return;
        };
        let want = n.min(self.members.len());
        let m = self.table.len();
        for step in 0..m {
            if out.len() == want {
                return;
            }
            let member = &self.members[self.table[(start + step) % m] as usize];
            push_distinct(out, &member.node);
        }
        // Every member holds a slot (Σw ≤ M), so the lap found them all;
        // this keeps the promise of `want` nodes if that ever changes.
        let owner = self.table[start] as usize;
        let len = self.members.len();
        for step in 1..len {
            if out.len() == want {
                return;
            }
            push_distinct(out, &self.members[(owner + step) % len].node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primality() {
        let primes: Vec<u32> = (0..60).filter(|&n| is_prime(n)).collect();
        assert_eq!(
            primes,
            [
                2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59
            ]
        );
        assert!(is_prime(65_537));
        assert!(is_prime(655_373));
        assert!(is_prime(16_777_213));
        assert!(!is_prime(65_535));
        assert!(!is_prime(16_777_215));
    }

    #[test]
    fn table_size_errors() {
        assert_eq!(
            Maglev::<u8>::new(0),
            Err(MaglevConfigError::TooSmall { size: 0 })
        );
        assert_eq!(
            Maglev::<u8>::new(1),
            Err(MaglevConfigError::TooSmall { size: 1 })
        );
        assert_eq!(
            Maglev::<u8>::new(65_536),
            Err(MaglevConfigError::NotPrime { size: 65_536 })
        );
        assert_eq!(
            Maglev::<u8>::new(u32::MAX),
            Err(MaglevConfigError::TooLarge {
                size: u32::MAX,
                max: Maglev::<u8>::MAX_TABLE_SIZE
            })
        );
        assert_eq!(
            MaglevConfigError::NotPrime { size: 4 }.to_string(),
            "table size 4 is not prime"
        );
        assert_eq!(Maglev::<u8>::new(2).unwrap().table_size(), 2);
    }

    #[test]
    fn smallest_table_holds_two_nodes() {
        let mut maglev = Maglev::new(2).unwrap();
        maglev.add_node('a', 1).unwrap();
        maglev.add_node('b', 1).unwrap();
        assert_eq!(
            maglev.add_node('c', 1),
            Err(AddNodeError::CapacityExceeded {
                what: "maglev table slots (total weight above the table size)"
            })
        );
        let mut table: Vec<char> = maglev.table().copied().collect();
        table.sort_unstable();
        assert_eq!(table, ['a', 'b']);
    }

    #[test]
    fn weights_bound_each_nodes_slots() {
        let mut maglev = Maglev::new(10_007).unwrap();
        let weights = [1u32, 2, 3, 4, 7];
        maglev.add_nodes(weights.iter().map(|&w| (w, w))).unwrap();
        let rounds = 10_007 / weights.iter().sum::<u32>() as usize;
        for &w in &weights {
            let count = maglev.table().filter(|&&n| n == w).count();
            let w = w as usize;
            assert!(
                (rounds * w..=(rounds + 1) * w).contains(&count),
                "weight {w}: {count} slots, {rounds} rounds"
            );
        }
    }

    #[test]
    fn add_nodes_is_all_or_nothing() {
        let mut maglev = Maglev::new(101).unwrap();
        maglev.add_node(1u32, 1).unwrap();
        let before = maglev.clone();
        assert_eq!(
            maglev.add_nodes([(2, 1), (3, 1), (2, 1)]),
            Err(AddNodeError::Duplicate)
        );
        assert_eq!(maglev, before);
        assert_eq!(
            maglev.add_nodes([(2, 1), (3, 0)]),
            Err(AddNodeError::ZeroWeight)
        );
        assert_eq!(maglev, before);
        maglev.add_nodes([(2, 1), (3, 1)]).unwrap();
        let mut one_by_one = Maglev::new(101).unwrap();
        for node in [3, 1, 2] {
            one_by_one.add_node(node, 1).unwrap();
        }
        assert_eq!(maglev, one_by_one);
    }
}
