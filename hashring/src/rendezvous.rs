//! Rendezvous, or highest-random-weight, hashing (Thaler & Ravishankar,
//! "Using Name-Based Mappings to Increase Hit Rates", IEEE/ACM ToN 1998),
//! weighted with the logarithmic method of Schindelhauer & Schomaker
//! ("Weighted Distributed Hash Tables", SPAA 2005).
//!
//! Every node scores every key; the highest score owns it. A node that
//! leaves takes only its own keys with it (every other node's score is
//! unchanged, so each orphaned key goes to its second-highest scorer), and a
//! node that joins takes only the keys it now outscores everyone on. The
//! cost is `O(n)` score computations per lookup, which is fine up to a few
//! hundred nodes.

use std::cmp::Ordering;

use crate::hash::{KeyHash, mix, node_hash};
use crate::placement::{AddNodeError, NodeId, Placement, RemoveNodeError};

/// How many replicas one pass over the nodes collects; more replicas take
/// `ceil(n / PASS_CAPACITY)` passes.
const PASS_CAPACITY: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member<N> {
    node: N,
    /// `node_hash(&node)`, computed once at `add_node`.
    hash: u64,
    weight: u32,
}

/// Weighted rendezvous (highest-random-weight) hashing.
///
/// The score of node `v` for key `k` is `w_v / -ln(u)`, where `u` is the
/// pair's hash `mix(k, node_hash(v))` mapped to the open interval (0, 1)
/// (its top 52 bits `h`, as `(h + 0.5) / 2^52`, which is exact in `f64` and
/// never 0 or 1). `-ln(u)` is exponentially distributed, so the score is the
/// inverse of an exponential variable with rate `w_v`, and the node with the
/// highest score is the one whose "arrival" comes first: node `v` wins with
/// probability exactly `w_v / Σw` (Schindelhauer & Schomaker's logarithmic
/// method). With all weights 1 it is plain HRW (Thaler & Ravishankar), since
/// `1 / -ln(u)` is monotone in `u`.
///
/// Equal scores (through float rounding) go to the higher `u`, then to the
/// node with the **smaller** id, so the result never depends on insertion
/// order. Because the score never decreases as `u` grows, that order is
/// exactly "highest `u`, then smallest id" when all weights are equal, and
/// lookups then skip the logarithm. Nodes are kept sorted by id;
/// [`nodes`](Self::nodes) yields them in that order.
///
/// Replicas are the top `n` scorers in descending score order. They are
/// collected without allocating: one pass over the nodes keeps the best 16
/// in a stack buffer, and more replicas take further passes, each keeping the
/// best 16 below the previous pass's last.
///
/// ```
/// use dsys_hashring::{KeyHash, Placement, Rendezvous};
///
/// let mut hrw = Rendezvous::new();
/// hrw.add_node("small", 1).unwrap();
/// hrw.add_node("large", 3).unwrap(); // about 3/4 of the keys
/// let mut replicas = Vec::new();
/// hrw.replicas_hash(KeyHash::of_bytes(b"k"), 5, &mut replicas);
/// assert_eq!(replicas.len(), 2);
/// assert_eq!(Some(replicas[0]), hrw.locate_bytes(b"k"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendezvous<N> {
    /// Sorted by `node`.
    members: Vec<Member<N>>,
    /// Every member has the same weight: rank by `u` alone (same order).
    uniform: bool,
}

impl<N> Default for Rendezvous<N> {
    fn default() -> Self {
        Rendezvous {
            members: Vec::new(),
            uniform: true,
        }
    }
}

impl<N: NodeId> Rendezvous<N> {
    /// An empty placement.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The nodes in ascending id order.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &N> + '_ {
        self.members.iter().map(|m| &m.node)
    }

    /// The nodes and their weights, in ascending id order.
    pub fn weights(&self) -> impl ExactSizeIterator<Item = (&N, u32)> + '_ {
        self.members.iter().map(|m| (&m.node, m.weight))
    }

    /// The weight of `node`, if it is a member.
    #[must_use]
    pub fn weight(&self, node: &N) -> Option<u32> {
        self.find(node).ok().map(|i| self.members[i].weight)
    }

    fn find(&self, node: &N) -> Result<usize, usize> {
        self.members.binary_search_by(|m| m.node.cmp(node))
    }

    /// The index of the highest-ranked member for `key`.
    fn owner_index(&self, key: KeyHash) -> Option<usize> {
        let mut best: Option<Ranked> = None;
        for (index, member) in self.members.iter().enumerate() {
            let candidate = self.rank(key, member, index);
            if best.is_none_or(|b| candidate.outranks(&b)) {
                best = Some(candidate);
            }
        }
        best.map(|b| b.index)
    }
}

impl<N> Rendezvous<N> {
    /// `member`'s rank for `key`. With uniform weights the score is left at
    /// 0 and the draw decides: the same order, without a logarithm.
    fn rank(&self, key: KeyHash, member: &Member<N>, index: usize) -> Ranked {
        let draw = draw(key, member);
        let score = if self.uniform {
            0.0
        } else {
            score(draw, member.weight)
        };
        Ranked { score, draw, index }
    }

    fn refresh_uniform(&mut self) {
        self.uniform = self.members.windows(2).all(|w| w[0].weight == w[1].weight);
    }
}

/// A member's score for a key, with the member's position (which orders ids).
#[derive(Debug, Clone, Copy)]
struct Ranked {
    score: f64,
    /// The pair's 52-bit hash that `u` is made of.
    draw: u64,
    index: usize,
}

impl Ranked {
    /// Higher score first; equal scores to the higher draw, then to the
    /// smaller id. Members are sorted by id, so the smaller index is the
    /// smaller id. A strict total order, because indices are distinct.
    fn outranks(&self, other: &Ranked) -> bool {
        match self.score.total_cmp(&other.score) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => match self.draw.cmp(&other.draw) {
                Ordering::Greater => true,
                Ordering::Less => false,
                Ordering::Equal => self.index < other.index,
            },
        }
    }
}

/// The top 52 bits of the pair's hash.
fn draw<N>(key: KeyHash, member: &Member<N>) -> u64 {
    mix(key.0, member.hash) >> 12
}

/// `w / -ln(u)` with `u` in (0, 1): Schindelhauer & Schomaker's logarithmic
/// method. Always finite and positive.
fn score(draw: u64, weight: u32) -> f64 {
    // 52 bits plus one half fit the 53-bit mantissa exactly, so `u` is never
    // rounded to 0 or 1 (with 53 bits, `2^53 - 1 + 0.5` would round up to 1
    // and `ln(u)` would be 0).
    let u = (draw as f64 + 0.5) / (1u64 << 52) as f64;
    f64::from(weight) / -u.ln()
}

impl<N: NodeId> Placement<N> for Rendezvous<N> {
    fn algorithm(&self) -> &'static str {
        "rendezvous"
    }

    fn node_count(&self) -> usize {
        self.members.len()
    }

    fn contains(&self, node: &N) -> bool {
        self.find(node).is_ok()
    }

    fn add_node(&mut self, node: N, weight: u32) -> Result<(), AddNodeError> {
        if weight == 0 {
            return Err(AddNodeError::ZeroWeight);
        }
        let at = match self.find(&node) {
            Ok(_) => return Err(AddNodeError::Duplicate),
            Err(at) => at,
        };
        let hash = node_hash(&node);
        // Two members with one hash would score every key identically:
        // the smaller id would win all their shared keys.
        if self.members.iter().any(|m| m.hash == hash) {
            return Err(AddNodeError::HashCollision);
        }
        self.members.insert(at, Member { node, hash, weight });
        self.refresh_uniform();
        Ok(())
    }

    fn remove_node(&mut self, node: &N) -> Result<(), RemoveNodeError> {
        let i = self.find(node).map_err(|_| RemoveNodeError::Unknown)?;
        self.members.remove(i);
        self.refresh_uniform();
        Ok(())
    }

    fn locate_hash(&self, key: KeyHash) -> Option<&N> {
        self.owner_index(key).map(|i| &self.members[i].node)
    }

    fn replicas_hash<'a>(&'a self, key: KeyHash, n: usize, out: &mut Vec<&'a N>) {
        out.clear();
        let want = n.min(self.members.len());
        // The lowest-ranked member taken so far: every pass takes the best
        // members strictly below it.
        let mut floor: Option<Ranked> = None;
        while out.len() < want {
            let take = (want - out.len()).min(PASS_CAPACITY);
            let mut top = [Ranked {
                score: 0.0,
                draw: 0,
                index: 0,
            }; PASS_CAPACITY];
            let mut filled = 0;
            for (index, member) in self.members.iter().enumerate() {
                let candidate = self.rank(key, member, index);
                if floor.is_some_and(|f| !f.outranks(&candidate)) {
                    continue;
                }
                if filled == take && !candidate.outranks(&top[take - 1]) {
                    continue;
                }
                // Insertion into the sorted buffer, dropping its last entry
                // when full.
                let mut slot = filled.min(take - 1);
                while slot > 0 && candidate.outranks(&top[slot - 1]) {
                    top[slot] = top[slot - 1];
                    slot -= 1;
                }
                top[slot] = candidate;
                filled = (filled + 1).min(take);
            }
            if filled == 0 {
                // Unreachable while `want <= len`; guards the loop anyway.
                break;
            }
            out.extend(top[..filled].iter().map(|r| &self.members[r.index].node));
            floor = Some(top[filled - 1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_interval_is_open_at_the_extremes() {
        for (key, node_hash) in [(0u64, 0u64), (u64::MAX, u64::MAX), (1, 2)] {
            let m = Member {
                node: 0u8,
                hash: node_hash,
                weight: u32::MAX,
            };
            let s = score(draw(KeyHash(key), &m), m.weight);
            assert!(s.is_finite() && s > 0.0, "{s}");
        }
        let u_max = ((u64::MAX >> 12) as f64 + 0.5) / (1u64 << 52) as f64;
        assert!(u_max < 1.0);
        let u_min = 0.5 / (1u64 << 52) as f64;
        assert!(u_min > 0.0);
    }

    #[test]
    fn replicas_over_several_passes_match_a_full_sort() {
        let mut hrw = Rendezvous::new();
        for i in 0..40u32 {
            hrw.add_node(i, 1 + i % 5).unwrap();
        }
        let mut out = Vec::new();
        for key in 0..100u64 {
            let key = KeyHash(mix(key, 11));
            let mut all: Vec<Ranked> = hrw
                .members
                .iter()
                .enumerate()
                .map(|(index, m)| {
                    let draw = draw(key, m);
                    Ranked {
                        score: score(draw, m.weight),
                        draw,
                        index,
                    }
                })
                .collect();
            all.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then(b.draw.cmp(&a.draw))
                    .then(a.index.cmp(&b.index))
            });
            for n in [1, 15, 16, 17, 33, 40, 100] {
                hrw.replicas_hash(key, n, &mut out);
                let want: Vec<u32> = all
                    .iter()
                    .take(n)
                    .map(|r| hrw.members[r.index].node)
                    .collect();
                let got: Vec<u32> = out.iter().map(|n| **n).collect();
                assert_eq!(got, want, "key {key:?} n {n}");
            }
        }
    }

    #[test]
    fn equal_scores_go_to_the_smaller_id() {
        let a = Ranked {
            score: 1.0,
            draw: 7,
            index: 3,
        };
        let b = Ranked {
            score: 1.0,
            draw: 7,
            index: 5,
        };
        assert!(a.outranks(&b));
        assert!(!b.outranks(&a));
        let c = Ranked { draw: 8, ..b };
        assert!(c.outranks(&a), "equal scores go to the higher draw first");
    }

    /// The uniform-weight shortcut ranks exactly as the scores do.
    #[test]
    fn uniform_weights_rank_as_the_scores_do() {
        let mut uniform = Rendezvous::new();
        for i in 0..50u32 {
            uniform.add_node(i, 3).unwrap();
        }
        assert!(uniform.uniform);
        let mut scored = uniform.clone();
        scored.uniform = false;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for key in 0..2_000u64 {
            let key = KeyHash(mix(key, 5));
            assert_eq!(uniform.locate_hash(key), scored.locate_hash(key));
            uniform.replicas_hash(key, 5, &mut a);
            scored.replicas_hash(key, 5, &mut b);
            assert_eq!(a, b);
        }
        uniform.add_node(99, 1).unwrap();
        assert!(!uniform.uniform);
        uniform.remove_node(&99).unwrap();
        assert!(uniform.uniform);
    }
}
