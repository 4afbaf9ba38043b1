//! The design notes of this file are on [`GSet`]'s documentation.

use std::collections::BTreeSet;
use std::collections::btree_set;

use crate::codec::{Decode, DecodeError, Encode};
use crate::lattice::{Authored, Lattice};

/// A grow-only set (G-Set, Shapiro et al. 2011, §3.3, Specification 11): elements are only added;
/// the join is union.
///
/// Encoded by [`Encode`] as the number of elements, then the elements in order.
///
/// ```
/// use dsys_crdt::{GSet, Lattice};
///
/// let mut a = GSet::new();
/// let mut b = GSet::new();
/// let delta = a.insert("x");
/// b.insert("y");
/// b.join(&delta);
/// assert!(b.contains(&"x") && b.contains(&"y"));
/// ```
///
/// # Design
///
/// Sets without causal metadata: the grow-only [`GSet`] and the two-phase
/// [`TwoPSet`], whose removals are permanent.
///
/// Both are state-based sets from Shapiro, Preguiça, Baquero and Zawirski, "A
/// comprehensive study of Convergent and Commutative Replicated Data Types" (INRIA
/// RR-7506, 2011), §3.3 (Specification 11, G-Set: the join is union; and
/// Specification 12, 2P-Set: a G-Set of additions and a G-Set of removals, the
/// *tombstones*; an element once removed can never be added again). For a set whose
/// elements can come back after a removal, use [`ORSet`](crate::ORSet).
///
/// Mutators are delta mutators (Almeida, Shoker and Baquero, "Delta state replicated
/// data types", JPDC 2018, §3): each returns a set holding only the change, which joins
/// into any replica like a full state; a mutation that changes nothing returns ⊥.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct GSet<T: Ord> {
    elements: BTreeSet<T>,
}

impl<T: Ord> Default for GSet<T> {
    fn default() -> Self {
        Self {
            elements: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Clone> GSet<T> {
    /// An empty set (⊥).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `element` and returns the delta: `{element}` if it is new, ⊥ if the set
    /// already held it.
    #[must_use = "the delta is what the other replicas need; drop it only if the full state is shipped"]
    pub fn insert(&mut self, element: T) -> Self {
        if self.elements.contains(&element) {
            return Self::default();
        }
        self.elements.insert(element.clone());
        Self {
            elements: BTreeSet::from([element]),
        }
    }

    /// Whether the set holds `element`.
    #[must_use]
    pub fn contains(&self, element: &T) -> bool {
        self.elements.contains(element)
    }

    /// The elements in order.
    pub fn iter(&self) -> btree_set::Iter<'_, T> {
        self.elements.iter()
    }

    /// The number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the set is empty (⊥).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The elements as a [`BTreeSet`].
    #[must_use]
    pub fn as_set(&self) -> &BTreeSet<T> {
        &self.elements
    }
}

impl<T: Ord> FromIterator<T> for GSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self {
            elements: iter.into_iter().collect(),
        }
    }
}

impl<'a, T: Ord> IntoIterator for &'a GSet<T> {
    type Item = &'a T;
    type IntoIter = btree_set::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.elements.iter()
    }
}

impl<T: Ord> From<GSet<T>> for BTreeSet<T> {
    fn from(set: GSet<T>) -> Self {
        set.elements
    }
}

impl<T: Ord + Clone> Lattice for GSet<T> {
    /// Union (Specification 11 `merge`). Clones only the elements `self` lacks.
    fn join(&mut self, other: &Self) {
        if self.elements.is_empty() {
            self.elements.clone_from(&other.elements);
            return;
        }
        for e in &other.elements {
            if !self.elements.contains(e) {
                self.elements.insert(e.clone());
            }
        }
    }

    /// Subset.
    fn leq(&self, other: &Self) -> bool {
        self.elements.is_subset(&other.elements)
    }

    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.elements.is_empty()
    }
}

/// Elements are nobody's: any peer's set can be joined.
impl<N, T: Ord + Clone> Authored<N> for GSet<T> {}

impl<T: Ord + Encode> Encode for GSet<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.elements.encode(out);
    }
}

impl<T: Ord + Decode> Decode for GSet<T> {
    /// Rejects elements out of order or repeated ([`DecodeError::Order`]).
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            elements: BTreeSet::decode(input)?,
        })
    }
}

/// A two-phase set (2P-Set, Shapiro et al. 2011, §3.3, Specification 12): an element can be added,
/// then removed, and once removed it is gone for good. Removal wins over any
/// concurrent or later addition.
///
/// A removal leaves a tombstone that is kept forever, so the set's memory grows with
/// everything ever removed. Removing an element this replica has not seen added is
/// allowed: it becomes a tombstone all the same, and the element can never be added
/// anywhere the tombstone reaches (this is what makes a removal that overtakes its
/// addition on the network still win).
///
/// # Representation
///
/// The paper's state is the pair (added *A*, removed *R*) with value *A* \ *R*. This
/// type stores *A* \ *R* (the live elements) and *R* (the tombstones), disjoint: the
/// same lattice up to elements that are both added and removed, which no read can tell
/// apart. A removed element is therefore stored once, and [`len`](Self::len) is O(1).
/// Encoded as the live elements then the tombstones, each as a [`GSet`]; an element in
/// both is rejected by the decoder.
///
/// ```
/// use dsys_crdt::{Lattice, TwoPSet};
///
/// let mut a = TwoPSet::new();
/// let mut b = TwoPSet::new();
/// let added = a.insert(1);
/// b.join(&added);
/// let removed = b.remove(1);
/// a.insert(2);
/// a.join(&removed);
/// assert!(!a.contains(&1));
/// a.insert(1); // removed for good
/// assert!(!a.contains(&1));
/// assert!(a.contains(&2));
/// ```
///
/// The papers, the design and the encoding are in [`GSet`'s documentation](GSet#design).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TwoPSet<T: Ord> {
    /// Added and not removed.
    live: BTreeSet<T>,
    /// Removed (whether or not added); disjoint from `live`.
    tombstones: BTreeSet<T>,
}

impl<T: Ord> Default for TwoPSet<T> {
    fn default() -> Self {
        Self {
            live: BTreeSet::new(),
            tombstones: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Clone> TwoPSet<T> {
    /// An empty set without tombstones (⊥).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `element` unless it was ever removed. Returns the delta: `{element}` added
    /// if it became live, ⊥ if it already was or is a tombstone.
    #[must_use = "the delta is what the other replicas need; drop it only if the full state is shipped"]
    pub fn insert(&mut self, element: T) -> Self {
        if self.live.contains(&element) || self.tombstones.contains(&element) {
            return Self::default();
        }
        self.live.insert(element.clone());
        Self {
            live: BTreeSet::from([element]),
            tombstones: BTreeSet::new(),
        }
    }

    /// Removes `element` for good, whether or not it is present, and returns the
    /// delta: the tombstone `{element}`, or ⊥ if it already was one.
    #[must_use = "the delta is what the other replicas need; drop it only if the full state is shipped"]
    pub fn remove(&mut self, element: T) -> Self {
        if self.tombstones.contains(&element) {
            return Self::default();
        }
        self.live.remove(&element);
        self.tombstones.insert(element.clone());
        Self {
            live: BTreeSet::new(),
            tombstones: BTreeSet::from([element]),
        }
    }

    /// Whether `element` is in the set: added and never removed.
    #[must_use]
    pub fn contains(&self, element: &T) -> bool {
        self.live.contains(element)
    }

    /// Whether `element` was removed (and so can never be in the set again).
    #[must_use]
    pub fn is_removed(&self, element: &T) -> bool {
        self.tombstones.contains(element)
    }

    /// The elements in the set, in order.
    pub fn iter(&self) -> btree_set::Iter<'_, T> {
        self.live.iter()
    }

    /// The number of elements in the set (tombstones not counted). O(1).
    #[must_use]
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether the set has no elements (it may still hold tombstones).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The removed elements, in order.
    pub fn tombstones(&self) -> btree_set::Iter<'_, T> {
        self.tombstones.iter()
    }

    /// The elements in the set as a [`BTreeSet`].
    #[must_use]
    pub fn as_set(&self) -> &BTreeSet<T> {
        &self.live
    }

    fn from_parts(live: BTreeSet<T>, tombstones: BTreeSet<T>) -> Result<Self, DecodeError> {
        // Walk the smaller set, looking up in the larger.
        let (small, large) = if live.len() <= tombstones.len() {
            (&live, &tombstones)
        } else {
            (&tombstones, &live)
        };
        if small.iter().any(|e| large.contains(e)) {
            return Err(DecodeError::Invalid("2P-Set element both live and removed"));
        }
        Ok(Self { live, tombstones })
    }
}

impl<T: Ord + Clone> Lattice for TwoPSet<T> {
    /// Union of additions and union of removals (Specification 12 `merge`), then the
    /// new tombstones take their elements out of the live set.
    fn join(&mut self, other: &Self) {
        for e in &other.tombstones {
            if !self.tombstones.contains(e) {
                self.live.remove(e);
                self.tombstones.insert(e.clone());
            }
        }
        for e in &other.live {
            if !self.live.contains(e) && !self.tombstones.contains(e) {
                self.live.insert(e.clone());
            }
        }
    }

    /// `self`'s tombstones are `other`'s, and each of `self`'s live elements is live
    /// or removed in `other` (Specification 12 `compare`).
    fn leq(&self, other: &Self) -> bool {
        self.tombstones.is_subset(&other.tombstones)
            && self
                .live
                .iter()
                .all(|e| other.live.contains(e) || other.tombstones.contains(e))
    }

    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.live.is_empty() && self.tombstones.is_empty()
    }
}

/// Elements and tombstones are nobody's: any peer's set can be joined.
impl<N, T: Ord + Clone> Authored<N> for TwoPSet<T> {}

impl<T: Ord + Encode> Encode for TwoPSet<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.live.encode(out);
        self.tombstones.encode(out);
    }
}

impl<T: Ord + Clone + Decode> Decode for TwoPSet<T> {
    /// Rejects elements out of order or repeated ([`DecodeError::Order`]) and an
    /// element both live and removed ([`DecodeError::Invalid`]).
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let live = BTreeSet::decode(input)?;
        let tombstones = BTreeSet::decode(input)?;
        Self::from_parts(live, tombstones)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: Ord + Clone + serde::Deserialize<'de>> serde::Deserialize<'de> for TwoPSet<T> {
    /// Checks that no element is both live and removed.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Parts<T: Ord> {
            live: BTreeSet<T>,
            tombstones: BTreeSet<T>,
        }
        let parts = Parts::deserialize(deserializer)?;
        Self::from_parts(parts.live, parts.tombstones).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_before_add_wins() {
        let mut a = TwoPSet::new();
        let tomb = a.remove(5u32);
        assert!(a.insert(5).is_bottom());
        let mut b = TwoPSet::new();
        let _ = b.insert(5);
        b.join(&tomb);
        assert!(!b.contains(&5));
        assert_eq!(a, b);
    }

    #[test]
    fn decoder_rejects_live_tombstones() {
        assert!(matches!(
            TwoPSet::<u32>::from_bytes(&[1, 3, 1, 3]),
            Err(DecodeError::Invalid(_))
        ));
        assert_eq!(
            TwoPSet::<u32>::from_bytes(&[1, 3, 1, 4]).map(|s| s.len()),
            Ok(1)
        );
    }
}
