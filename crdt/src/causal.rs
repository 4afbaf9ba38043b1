//! The design notes of this file are on [`CausalContext`]'s documentation.

use std::collections::BTreeSet;

use dsys_clocks::{Dot, VersionVector};

use crate::codec::{Decode, DecodeError, Encode, get_len, get_uvarint, put_uvarint};
use crate::lattice::{Authored, InvalidJoin, Lattice};

/// The dots a replica has seen: a version vector (the contiguous prefix
/// `1..=n` of each node) plus a cloud of the dots beyond it (Almeida et al.
/// 2018, §5).
///
/// Invariant (the compact, canonical form): every cloud dot `(i, n)` has
/// `n > vv[i] + 1`. Every method keeps it, so `==` is equality of dot sets.
///
/// # Design
///
/// Causal contexts: the set of dots a replica has seen (Almeida, Shoker, Baquero,
/// "Delta state replicated data types", 2018, §5, causal δ-CRDTs).
///
/// A causal CRDT is a pair (dot store, causal context). The store holds the dots
/// that are still alive (an element's add, a register's write); the context holds
/// every dot ever seen, alive or not. A dot that is in the context but not in the
/// store was seen *and removed*, which is how a join tells "removed there" from
/// "not yet seen there" without tombstones.
///
/// A replica's own context is usually a plain version vector: it has seen every
/// dot `1..=n` of each replica. Deltas are different: the delta of one add holds
/// the new dot and the dots it overwrote, which are not a contiguous prefix. So a
/// [`CausalContext`] is a version vector plus a *dot cloud* of the dots beyond the
/// contiguous prefix (§5: "a compact causal context ... plus a dot cloud"), and it
/// is kept *compact*: a cloud dot that continues the prefix is folded into the
/// vector at once. Every context is therefore in one canonical form, so two
/// contexts that hold the same dots are equal (`==`) and encode to the same bytes.
///
/// # Encoding
///
/// The version vector as a count then `(node, counter)` pairs in node order, then
/// the cloud as a count then `(node, counter)` dots in order. Decoding rejects a
/// zero counter, nodes or dots out of order, and a cloud dot that is not beyond
/// `counter + 1` of its node (not compact), so a decoded context is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        try_from = "CausalContextRepr<N>",
        bound(
            serialize = "N: serde::Serialize",
            deserialize = "N: serde::Deserialize<'de> + dsys_clocks::NodeId"
        )
    )
)]
pub struct CausalContext<N> {
    vv: VersionVector<N>,
    cloud: BTreeSet<Dot<N>>,
}

/// What serde reads before [`CausalContext`]'s invariant is checked.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "N: serde::Deserialize<'de> + dsys_clocks::NodeId"))]
struct CausalContextRepr<N> {
    vv: VersionVector<N>,
    cloud: BTreeSet<Dot<N>>,
}

#[cfg(feature = "serde")]
impl<N: dsys_clocks::NodeId> TryFrom<CausalContextRepr<N>> for CausalContext<N> {
    type Error = DecodeError;

    fn try_from(repr: CausalContextRepr<N>) -> Result<Self, DecodeError> {
        for dot in &repr.cloud {
            check_beyond(&repr.vv, dot)?;
        }
        Ok(Self {
            vv: repr.vv,
            cloud: repr.cloud,
        })
    }
}

/// A cloud dot must not be covered by, nor continue, the contiguous prefix.
fn check_beyond<N: dsys_clocks::NodeId>(
    vv: &VersionVector<N>,
    dot: &Dot<N>,
) -> Result<(), DecodeError> {
    if dot.counter <= vv.get(&dot.node).saturating_add(1) {
        return Err(DecodeError::Invalid(
            "cloud dot not beyond the version vector (context not compact)",
        ));
    }
    Ok(())
}

impl<N> Default for CausalContext<N> {
    fn default() -> Self {
        Self {
            vv: VersionVector::default(),
            cloud: BTreeSet::new(),
        }
    }
}

impl<N: dsys_clocks::NodeId> CausalContext<N> {
    /// The empty context: no dot seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// The contiguous prefix: node `i` at `n` means dots `(i, 1..=n)` were seen.
    pub fn version_vector(&self) -> &VersionVector<N> {
        &self.vv
    }

    /// The dots seen beyond the contiguous prefix, in order.
    pub fn cloud(&self) -> impl ExactSizeIterator<Item = &Dot<N>> + '_ {
        self.cloud.iter()
    }

    /// Whether no dot was seen (⊥).
    pub fn is_empty(&self) -> bool {
        self.vv.is_empty() && self.cloud.is_empty()
    }

    /// Whether `dot` was seen (§5: `d ∈ c`).
    pub fn contains(&self, dot: &Dot<N>) -> bool {
        dot.counter <= self.vv.get(&dot.node)
            || (!self.cloud.is_empty() && self.cloud.contains(dot))
    }

    /// The largest counter of `node` seen, prefix or cloud (§5: `max_i(c)`).
    pub fn max_counter(&self, node: &N) -> u64 {
        let prefix = self.vv.get(node);
        if self.cloud.is_empty() {
            return prefix;
        }
        let run = Dot::new(node.clone(), 0)..=Dot::new(node.clone(), u64::MAX);
        self.cloud
            .range(run)
            .next_back()
            .map_or(prefix, |d| d.counter)
    }

    /// Records `dot` as seen and folds the cloud into the prefix where they now
    /// touch. Returns whether `dot` is new. A dot with counter 0 names no update
    /// and is ignored.
    pub fn insert(&mut self, dot: Dot<N>) -> bool {
        let prefix = self.vv.get(&dot.node);
        if dot.counter <= prefix {
            return false;
        }
        if dot.counter - 1 > prefix {
            return self.cloud.insert(dot);
        }
        // `dot` continues the prefix: extend it, then by every cloud dot that
        // continues it in turn.
        self.vv.add(&dot);
        let Dot { node, mut counter } = dot;
        if !self.cloud.is_empty() {
            while let Some(next) = counter.checked_add(1) {
                if !self.cloud.remove(&Dot::new(node.clone(), next)) {
                    break;
                }
                counter = next;
            }
            self.vv.add(&Dot::new(node, counter));
        }
        true
    }

    /// The next dot of `node`, recorded as seen (§5: `next_i(c) = (i, max_i(c) + 1)`).
    ///
    /// `None`, with nothing recorded, once `node` has issued `u64::MAX` dots: a
    /// replica reaches that only after 2^64 updates of its own, since the protocol
    /// refuses a peer's dot of this replica that it never issued
    /// ([`Authored`]). Reusing a dot would break the uniqueness every
    /// causal CRDT relies on, so the mutators built on this one change nothing then.
    pub fn next_dot(&mut self, node: &N) -> Option<Dot<N>> {
        let counter = self.max_counter(node).checked_add(1)?;
        let dot = Dot::new(node.clone(), counter);
        self.insert(dot.clone());
        Some(dot)
    }

    /// Folds every cloud dot that continues the prefix into the version vector.
    ///
    /// Every method of this type already leaves the context compact, so this is
    /// a no-op on any context it produced; it is the step [`join`](Lattice::join)
    /// runs after merging two clouds.
    pub fn compact(&mut self) {
        if self.cloud.is_empty() {
            return;
        }
        let vv = &mut self.vv;
        // `retain` visits in ascending order, so each node's dots come lowest
        // first and a run that continues the prefix is absorbed in one pass.
        self.cloud.retain(|dot| {
            let prefix = vv.get(&dot.node);
            if dot.counter <= prefix {
                false
            } else if dot.counter - 1 == prefix {
                vv.add(dot);
                false
            } else {
                true
            }
        });
    }

    /// The sorted, distinct nodes this context names: the table store dots are
    /// encoded against (a covered dot's node is always in it).
    pub(crate) fn node_table(&self) -> Vec<&N> {
        let mut nodes: Vec<&N> = self.vv.iter().map(|(n, _)| n).collect();
        if !self.cloud.is_empty() {
            nodes.extend(self.cloud.iter().map(|d| &d.node));
            nodes.sort_unstable();
            nodes.dedup();
        }
        nodes
    }
}

impl<N: dsys_clocks::NodeId> FromIterator<Dot<N>> for CausalContext<N> {
    fn from_iter<I: IntoIterator<Item = Dot<N>>>(iter: I) -> Self {
        let mut ctx = Self::new();
        ctx.extend(iter);
        ctx
    }
}

impl<N: dsys_clocks::NodeId> Extend<Dot<N>> for CausalContext<N> {
    fn extend<I: IntoIterator<Item = Dot<N>>>(&mut self, iter: I) {
        for dot in iter {
            self.insert(dot);
        }
    }
}

/// A version vector is the context that has seen exactly its prefixes.
impl<N: dsys_clocks::NodeId> From<VersionVector<N>> for CausalContext<N> {
    fn from(vv: VersionVector<N>) -> Self {
        Self {
            vv,
            cloud: BTreeSet::new(),
        }
    }
}

/// Contexts join by set union (§5: `c ∪ c'`).
impl<N: dsys_clocks::NodeId> Lattice for CausalContext<N> {
    fn join(&mut self, other: &Self) {
        // A delta's prefix names a node or two: raising those entries in place
        // beats rebuilding a many-node vector.
        if other.vv.len() <= 4 {
            for dot in other.vv.dots() {
                self.vv.add(&dot);
            }
        } else {
            self.vv.merge(&other.vv);
        }
        self.compact();
        // `insert` folds a dot that continues the prefix straight into it, so a
        // delta's cloud dot never passes through this cloud.
        for dot in &other.cloud {
            self.insert(dot.clone());
        }
    }

    /// `c ⊆ c'`. A compact `c'` never holds `vv'[i] + 1` in its cloud, so a
    /// prefix longer than `vv'[i]` cannot be covered.
    fn leq(&self, other: &Self) -> bool {
        self.vv.iter().all(|(node, n)| other.vv.get(node) >= n)
            && self.cloud.iter().all(|d| other.contains(d))
    }

    fn bottom() -> Self {
        Self::new()
    }

    fn is_bottom(&self) -> bool {
        self.is_empty()
    }
}

/// A context must not hold a dot of `me` beyond the last one `me` issued.
impl<N: dsys_clocks::NodeId> Authored<N> for CausalContext<N> {
    fn validate_peer_join(&self, me: &N, other: &Self) -> Result<(), InvalidJoin> {
        // `me` issues its dots in order and holds every one it issued, so its dots in
        // `self` are the prefix `1..=max`: a larger counter is one it never issued.
        if other.max_counter(me) > self.max_counter(me) {
            return Err(InvalidJoin::forged());
        }
        Ok(())
    }
}

impl<N: dsys_clocks::NodeId + Encode> Encode for CausalContext<N> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.vv.len() as u64);
        for (node, counter) in self.vv.iter() {
            node.encode(out);
            put_uvarint(out, counter);
        }
        put_uvarint(out, self.cloud.len() as u64);
        for dot in &self.cloud {
            dot.node.encode(out);
            put_uvarint(out, dot.counter);
        }
    }
}

impl<N: dsys_clocks::NodeId + Decode> Decode for CausalContext<N> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = get_len(input, 2)?;
        let mut entries: Vec<(N, u64)> = Vec::with_capacity(len);
        for _ in 0..len {
            let node = N::decode(input)?;
            if entries.last().is_some_and(|(last, _)| *last >= node) {
                return Err(DecodeError::Order);
            }
            let counter = get_uvarint(input)?;
            if counter == 0 {
                return Err(DecodeError::Invalid("zero counter in a version vector"));
            }
            entries.push((node, counter));
        }
        let vv = VersionVector::from_entries(entries);
        let len = get_len(input, 2)?;
        let mut cloud = BTreeSet::new();
        for _ in 0..len {
            let dot = Dot::new(N::decode(input)?, get_uvarint(input)?);
            if cloud.last().is_some_and(|last| *last >= dot) {
                return Err(DecodeError::Order);
            }
            check_beyond(&vv, &dot)?;
            cloud.insert(dot);
        }
        Ok(Self { vv, cloud })
    }
}

/// Appends a store dot as `(index of its node in table, counter)`: a store's
/// dots are covered by its context, so their nodes are always in the context's
/// [`node_table`](CausalContext::node_table), and an index is a byte or two
/// where the node id itself may be many.
pub(crate) fn encode_dot<N: Ord>(table: &[&N], dot: &Dot<N>, out: &mut Vec<u8>) {
    let index = table
        .binary_search(&&dot.node)
        .expect("a store dot is covered by its context, so its node is in the table");
    put_uvarint(out, index as u64);
    put_uvarint(out, dot.counter);
}

/// Reads a dot written by [`encode_dot`] and checks that `ctx` covers it.
pub(crate) fn decode_dot<N: dsys_clocks::NodeId>(
    table: &[&N],
    ctx: &CausalContext<N>,
    input: &mut &[u8],
) -> Result<Dot<N>, DecodeError> {
    let index = get_uvarint(input)?;
    let node = usize::try_from(index)
        .ok()
        .and_then(|i| table.get(i))
        .ok_or(DecodeError::Invalid("dot names a node outside the context"))?;
    let counter = get_uvarint(input)?;
    let dot = Dot::new((*node).clone(), counter);
    if counter == 0 || !ctx.contains(&dot) {
        return Err(DecodeError::Invalid(
            "dot in the store not covered by the causal context",
        ));
    }
    Ok(dot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(dots: &[(u32, u64)]) -> CausalContext<u32> {
        dots.iter().map(|&(n, c)| Dot::new(n, c)).collect()
    }

    #[test]
    fn insert_folds_the_cloud_into_the_prefix() {
        let mut c = ctx(&[(1, 3), (1, 4), (2, 2)]);
        assert_eq!(c.version_vector().get(&1), 0);
        assert_eq!(c.cloud().len(), 3);
        assert_eq!(c.max_counter(&1), 4);
        c.insert(Dot::new(1, 2));
        c.insert(Dot::new(1, 1));
        assert_eq!(c.version_vector().get(&1), 4);
        assert_eq!(c.cloud().len(), 1);
        assert!(c.contains(&Dot::new(2, 2)));
        assert!(!c.contains(&Dot::new(2, 1)));
        assert_eq!(c, ctx(&[(2, 2), (1, 1), (1, 2), (1, 4), (1, 3)]));
    }

    #[test]
    fn next_dot_passes_the_cloud() {
        let mut c = ctx(&[(1, 1), (1, 5)]);
        assert_eq!(c.next_dot(&1), Some(Dot::new(1, 6)));
        assert_eq!(c.next_dot(&2), Some(Dot::new(2, 1)));
        assert!(c.contains(&Dot::new(1, 6)));
    }

    #[test]
    fn next_dot_is_none_when_dots_run_out() {
        let mut c = ctx(&[(1, u64::MAX)]);
        assert_eq!(c.next_dot(&1), None);
        assert_eq!(c, ctx(&[(1, u64::MAX)]), "nothing recorded");
    }

    #[test]
    fn join_compacts() {
        let mut a = ctx(&[(1, 1), (1, 3)]);
        let b = ctx(&[(1, 2), (1, 5)]);
        a.join(&b);
        assert_eq!(a.version_vector().get(&1), 3);
        assert_eq!(a.cloud().collect::<Vec<_>>(), [&Dot::new(1, 5)]);
        assert!(b.leq(&a));
        assert!(!a.leq(&b));
    }

    #[test]
    fn decode_rejects_non_compact_contexts() {
        // vv {1: 2}, cloud {(1, 3)}: 3 continues the prefix.
        assert_eq!(
            CausalContext::<u32>::from_bytes(&[1, 1, 2, 1, 1, 3]),
            Err(DecodeError::Invalid(
                "cloud dot not beyond the version vector (context not compact)"
            ))
        );
        let c = ctx(&[(1, 1), (1, 2), (1, 4), (3, 7)]);
        assert_eq!(CausalContext::from_bytes(&c.to_bytes()), Ok(c));
    }
}
