//! Vector clocks (Fidge 1988, Mattern 1989) and version vectors (Parker et al.
//! 1983): one counter per node, compared entry by entry.
//!
//! The two are the same structure put to different uses. A *vector clock*
//! stamps events: `V(a) < V(b)` exactly when `a` happened before `b`, so two
//! incomparable stamps mean concurrent events, which a Lamport clock cannot
//! tell. A *version vector* summarises which updates a replica has seen; with
//! [`Dot`]s it answers "has this replica seen update `(node, n)`?". One type,
//! [`VectorClock`], serves both; [`VersionVector`] names the second use.
//!
//! Storage is a vector of `(node, counter)` pairs sorted by node, inline for up
//! to [`INLINE_NODES`] nodes: a 3- or 5-node cluster's clock is one small
//! allocation-free value, and comparison and merge are a single linear pass.
//! Absent nodes count 0 and zero entries are never stored, so two clocks are
//! `==` exactly when they compare [`CausalOrder::Equal`].

use core::cmp::Ordering;
use core::fmt;

use smallvec::SmallVec;

use crate::counter::{CounterOverflow, successor};
use crate::dot::Dot;
use crate::node::NodeId;

/// Nodes a [`VectorClock`] holds without a heap allocation.
pub const INLINE_NODES: usize = 4;

/// How two vector clocks (or the events they stamp) relate causally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CausalOrder {
    /// Every entry is `<=` and one is `<`: the left side happened before.
    Before,
    /// Every entry is `>=` and one is `>`: the left side happened after.
    After,
    /// All entries are equal: the same point in causal history.
    Equal,
    /// Some entry is `<` and another is `>`: neither saw the other.
    Concurrent,
}

impl CausalOrder {
    /// `Before` <-> `After`; `Equal` and `Concurrent` are symmetric.
    #[must_use]
    pub const fn reverse(self) -> Self {
        match self {
            Self::Before => Self::After,
            Self::After => Self::Before,
            other => other,
        }
    }

    /// The [`Ordering`] this corresponds to, or `None` when concurrent.
    pub const fn to_ordering(self) -> Option<Ordering> {
        match self {
            Self::Before => Some(Ordering::Less),
            Self::After => Some(Ordering::Greater),
            Self::Equal => Some(Ordering::Equal),
            Self::Concurrent => None,
        }
    }
}

/// `before`, `after`, `equal` or `concurrent`.
impl fmt::Display for CausalOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Before => "before",
            Self::After => "after",
            Self::Equal => "equal",
            Self::Concurrent => "concurrent",
        })
    }
}

/// A vector clock over node ids of type `N`.
///
/// ```
/// use dsys_clocks::{CausalOrder, VectorClock};
///
/// // The seeds' quiz: [2,3,1] vs [3,2,1] over nodes A, B, C.
/// let v1 = VectorClock::from_entries([("A", 2), ("B", 3), ("C", 1)]);
/// let v2 = VectorClock::from_entries([("A", 3), ("B", 2), ("C", 1)]);
/// assert_eq!(v1.compare(&v2), CausalOrder::Concurrent);
/// assert!(v1.partial_cmp(&v2).is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        transparent,
        bound(
            serialize = "N: serde::Serialize",
            deserialize = "N: serde::Deserialize<'de> + crate::NodeId"
        )
    )
)]
pub struct VectorClock<N> {
    /// Sorted by node, no duplicates, no zero counters.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "deserialize_entries"))]
    entries: SmallVec<[(N, u64); INLINE_NODES]>,
}

/// A version vector: the same structure as [`VectorClock`], read as "the
/// updates this replica has seen", one contiguous run `1..=n` per node.
pub type VersionVector<N> = VectorClock<N>;

impl<N> Default for VectorClock<N> {
    fn default() -> Self {
        Self {
            entries: SmallVec::new(),
        }
    }
}

impl<N: NodeId> VectorClock<N> {
    /// The empty clock: every node at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock from `(node, counter)` pairs in any order. Zero counters are
    /// dropped; for a node given twice the larger counter wins.
    pub fn from_entries(entries: impl IntoIterator<Item = (N, u64)>) -> Self {
        let mut clock = Self::new();
        for (node, counter) in entries {
            clock.raise(node, counter);
        }
        clock
    }

    /// The counter of `node` (0 if absent).
    pub fn get(&self, node: &N) -> u64 {
        match self.search(node) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    /// Nodes with a non-zero counter, in ascending node order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&N, u64)> + '_ {
        self.entries.iter().map(|(node, counter)| (node, *counter))
    }

    /// How many nodes have a non-zero counter.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when every counter is 0.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records an event at `node` and returns its new counter.
    ///
    /// # Errors
    /// [`CounterOverflow`] if `node`'s counter is `u64::MAX`; unchanged.
    pub fn increment(&mut self, node: &N) -> Result<u64, CounterOverflow> {
        match self.search(node) {
            Ok(i) => {
                let slot = &mut self.entries[i].1;
                *slot = successor(*slot)?;
                Ok(*slot)
            }
            Err(i) => {
                self.entries.insert(i, (node.clone(), 1));
                Ok(1)
            }
        }
    }

    /// Joins `other` into `self`: each entry becomes the maximum of the two
    /// (the least upper bound; commutative, associative, idempotent).
    pub fn merge(&mut self, other: &Self) {
        if other.entries.is_empty() {
            return;
        }
        if self.entries.is_empty() {
            self.entries.clone_from(&other.entries);
            return;
        }
        // Fast path: same node set (the common case in a fixed cluster).
        if self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(a, b)| a.0 == b.0)
        {
            for (mine, theirs) in self.entries.iter_mut().zip(&other.entries) {
                mine.1 = mine.1.max(theirs.1);
            }
            return;
        }
        let mut merged = SmallVec::with_capacity(self.entries.len().max(other.entries.len()));
        let mut mine = core::mem::take(&mut self.entries).into_iter().peekable();
        let mut theirs = other.entries.iter().peekable();
        loop {
            let next = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(_), None) => mine.next(),
                (None, Some(_)) => theirs.next().cloned(),
                (Some(a), Some(b)) => match a.0.cmp(&b.0) {
                    Ordering::Less => mine.next(),
                    Ordering::Greater => theirs.next().cloned(),
                    Ordering::Equal => {
                        let (node, counter) = mine.next().expect("peeked Some");
                        let (_, other_counter) = theirs.next().expect("peeked Some");
                        Some((node, counter.max(*other_counter)))
                    }
                },
            };
            merged.extend(next);
        }
        self.entries = merged;
    }

    /// The receive rule: join the sender's clock, then count the receive
    /// event at `node`. Returns the receiver's new counter.
    ///
    /// # Errors
    /// [`CounterOverflow`] if `node`'s counter would pass `u64::MAX`; the merge
    /// has then happened but the receive event was not counted.
    pub fn receive(&mut self, node: &N, sender: &Self) -> Result<u64, CounterOverflow> {
        self.merge(sender);
        self.increment(node)
    }

    /// How `self` relates to `other` in causal order.
    pub fn compare(&self, other: &Self) -> CausalOrder {
        let (mut less, mut greater) = (false, false);
        let (mut a, mut b) = (
            self.entries.iter().peekable(),
            other.entries.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                // A node only one side has is > 0 there and 0 on the other.
                (Some(_), None) => {
                    greater = true;
                    break;
                }
                (None, Some(_)) => {
                    less = true;
                    break;
                }
                (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                    Ordering::Less => {
                        greater = true;
                        a.next();
                    }
                    Ordering::Greater => {
                        less = true;
                        b.next();
                    }
                    Ordering::Equal => {
                        match x.1.cmp(&y.1) {
                            Ordering::Less => less = true,
                            Ordering::Greater => greater = true,
                            Ordering::Equal => {}
                        }
                        a.next();
                        b.next();
                    }
                },
            }
            if less && greater {
                return CausalOrder::Concurrent;
            }
        }
        match (less, greater) {
            (false, false) => CausalOrder::Equal,
            (true, false) => CausalOrder::Before,
            (false, true) => CausalOrder::After,
            (true, true) => CausalOrder::Concurrent,
        }
    }

    /// `self` happened strictly before `other`.
    pub fn happened_before(&self, other: &Self) -> bool {
        self.compare(other) == CausalOrder::Before
    }

    /// Neither happened before the other.
    pub fn concurrent_with(&self, other: &Self) -> bool {
        self.compare(other) == CausalOrder::Concurrent
    }

    /// `self >= other` entry by entry: `self` has seen everything `other` has.
    pub fn dominates(&self, other: &Self) -> bool {
        matches!(self.compare(other), CausalOrder::After | CausalOrder::Equal)
    }

    // --- Version-vector operations on dots ---

    /// Whether the update `dot` is among those this version vector has seen.
    pub fn contains(&self, dot: &Dot<N>) -> bool {
        dot.counter <= self.get(&dot.node)
    }

    /// Counts a new update at `node` and returns its dot.
    ///
    /// # Errors
    /// [`CounterOverflow`] if `node`'s counter is `u64::MAX`; unchanged.
    pub fn next_dot(&mut self, node: &N) -> Result<Dot<N>, CounterOverflow> {
        let counter = self.increment(node)?;
        Ok(Dot::new(node.clone(), counter))
    }

    /// Records that `dot` (and, by contiguity, every earlier dot of its node)
    /// has been seen.
    pub fn add(&mut self, dot: &Dot<N>) {
        self.raise(dot.node.clone(), dot.counter);
    }

    /// The latest dot of every node, in node order.
    pub fn dots(&self) -> impl Iterator<Item = Dot<N>> + '_ {
        self.entries
            .iter()
            .map(|(node, counter)| Dot::new(node.clone(), *counter))
    }

    /// Sets `node` to `max(current, counter)`.
    fn raise(&mut self, node: N, counter: u64) {
        if counter == 0 {
            return;
        }
        match self.search(&node) {
            Ok(i) => self.entries[i].1 = self.entries[i].1.max(counter),
            Err(i) => self.entries.insert(i, (node, counter)),
        }
    }

    fn search(&self, node: &N) -> Result<usize, usize> {
        self.entries.binary_search_by(|(n, _)| n.cmp(node))
    }
}

/// Consistent with [`VectorClock::compare`]: `None` exactly when concurrent.
impl<N: NodeId> PartialOrd for VectorClock<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.compare(other).to_ordering()
    }
}

impl<N: NodeId> FromIterator<(N, u64)> for VectorClock<N> {
    fn from_iter<I: IntoIterator<Item = (N, u64)>>(iter: I) -> Self {
        Self::from_entries(iter)
    }
}

impl<N: fmt::Debug> fmt::Debug for VectorClock<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(n, c)| (n, c)))
            .finish()
    }
}

/// `{A:2, B:3}`.
impl<N: fmt::Display> fmt::Display for VectorClock<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (node, counter)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{node}:{counter}")?;
        }
        f.write_str("}")
    }
}

/// Deserialized entries come from the network or disk: restore the sorted,
/// duplicate-free, zero-free form instead of trusting it.
#[cfg(feature = "serde")]
fn deserialize_entries<'de, D, N>(
    deserializer: D,
) -> Result<SmallVec<[(N, u64); INLINE_NODES]>, D::Error>
where
    D: serde::Deserializer<'de>,
    N: serde::Deserialize<'de> + NodeId,
{
    let mut entries: SmallVec<[(N, u64); INLINE_NODES]> =
        serde::Deserialize::deserialize(deserializer)?;
    entries.retain(|(_, counter)| *counter != 0);
    entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    entries.dedup_by(|later, kept| later.0 == kept.0);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vc(entries: &[(&'static str, u64)]) -> VectorClock<&'static str> {
        VectorClock::from_entries(entries.iter().copied())
    }

    #[test]
    fn compare_table() {
        let cases = [
            (vc(&[]), vc(&[]), CausalOrder::Equal),
            (vc(&[("A", 1)]), vc(&[]), CausalOrder::After),
            (vc(&[]), vc(&[("A", 1)]), CausalOrder::Before),
            (vc(&[("A", 1)]), vc(&[("B", 1)]), CausalOrder::Concurrent),
            (
                vc(&[("A", 1), ("B", 2)]),
                vc(&[("A", 1), ("B", 3)]),
                CausalOrder::Before,
            ),
            (
                vc(&[("A", 2), ("B", 3), ("C", 1)]),
                vc(&[("A", 3), ("B", 2), ("C", 1)]),
                CausalOrder::Concurrent,
            ),
            (
                vc(&[("A", 2), ("C", 1)]),
                vc(&[("A", 2), ("B", 1), ("C", 1)]),
                CausalOrder::Before,
            ),
            (
                vc(&[("B", 1)]),
                vc(&[("A", 1), ("B", 1), ("C", 1)]),
                CausalOrder::Before,
            ),
            (
                vc(&[("A", 1), ("B", 1), ("C", 1)]),
                vc(&[("B", 1)]),
                CausalOrder::After,
            ),
            (
                vc(&[("A", 1), ("C", 5)]),
                vc(&[("B", 1), ("C", 5)]),
                CausalOrder::Concurrent,
            ),
        ];
        for (a, b, expected) in cases {
            assert_eq!(a.compare(&b), expected, "{a:?} vs {b:?}");
            assert_eq!(b.compare(&a), expected.reverse(), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn zero_entries_are_not_stored() {
        assert_eq!(vc(&[("A", 0), ("B", 2)]), vc(&[("B", 2)]));
        assert_eq!(vc(&[("A", 0)]).len(), 0);
    }

    #[test]
    fn merge_takes_entrywise_max_across_different_node_sets() {
        let mut a = vc(&[("A", 3), ("C", 1)]);
        a.merge(&vc(&[("B", 2), ("C", 4), ("D", 1)]));
        assert_eq!(a, vc(&[("A", 3), ("B", 2), ("C", 4), ("D", 1)]));
    }

    #[test]
    fn increment_overflow_is_an_error_and_leaves_clock_unchanged() {
        let mut a = vc(&[("A", u64::MAX)]);
        assert_eq!(a.increment(&"A"), Err(CounterOverflow));
        assert_eq!(a.get(&"A"), u64::MAX);
    }

    #[test]
    fn version_vector_contains_dots_up_to_its_counter() {
        let mut vv = VersionVector::new();
        let d1 = vv.next_dot(&"A").unwrap();
        let d2 = vv.next_dot(&"A").unwrap();
        assert!(vv.contains(&d1) && vv.contains(&d2));
        assert!(!vv.contains(&Dot::new("A", 3)));
        assert!(!vv.contains(&Dot::new("B", 1)));
        vv.add(&Dot::new("B", 4));
        assert!(vv.contains(&Dot::new("B", 2)));
    }
}
