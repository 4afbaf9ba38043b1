//! The design notes of this file are on [`ORSet`]'s documentation.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;

use dsys_clocks::Dot;

use crate::causal::{CausalContext, decode_dot, encode_dot};
use crate::codec::{Decode, DecodeError, Encode, get_len, put_uvarint};
use crate::lattice::{Authored, InvalidJoin, Lattice};

/// An add-wins observed-remove set (Almeida et al. 2018, §5, AWSet).
///
/// Mutators are delta mutators: each applies itself and returns the delta, a
/// small `ORSet` that joined into the state before the mutation gives the state
/// after it, and joined into any other replica applies the mutation there.
///
/// ```
/// use dsys_crdt::{Lattice, ORSet};
///
/// let (mut a, mut b) = (ORSet::<u32, &str>::new(), ORSet::new());
/// let add = a.add(&1, "x");
/// b.join(&add);
/// // Concurrently: `a` adds "x" again, `b` removes the "x" it saw.
/// let readd = a.add(&1, "x");
/// let remove = b.remove(&"x");
/// a.join(&remove);
/// b.join(&readd);
/// assert!(a.contains(&"x") && b.contains(&"x")); // add wins
/// assert_eq!(a, b);
/// ```
///
/// # Design
///
/// The add-wins observed-remove set with dots: the AWSet of Almeida, Shoker,
/// Baquero, "Delta state replicated data types", 2018, §5 (a `DotMap<T, DotSet>`
/// with a causal context).
///
/// Each add tags the element with a fresh dot and forgets the element's older
/// dots; a remove forgets the dots it has seen. Since the causal context
/// remembers forgotten dots, a join tells "removed there" (dot in the other's
/// context, not in its store) from "not yet seen there" (dot not in the other's
/// context) without tombstones, and an add concurrent with a remove survives it:
/// the remove could not have seen the add's dot (add wins).
///
/// # Encoding
///
/// The [`CausalContext`], then the element count, then per element in order:
/// the element, its dot count (at least 1) and its dots in order, each as the
/// index of its node in the context's node list and the counter. Decoding
/// rejects elements or dots out of order, an element without dots, a dot the
/// context does not cover and a dot under two elements, so a decoded set keeps
/// the invariants joins rely on.
///
/// # Cost
///
/// Besides `element → dots`, a set keeps the inverse `dot → element`, so that
/// joining a delta into a large state costs `O(log n)` per dot the delta
/// mentions instead of a pass over the whole state (the paper's join, read
/// literally, filters every pair of `s` against `c'`). Full-state merges walk
/// both indexes in dot order.
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        try_from = "ORSetRepr<N, T>",
        bound(
            serialize = "N: serde::Serialize, T: serde::Serialize",
            deserialize = "N: serde::Deserialize<'de> + dsys_clocks::NodeId, T: serde::Deserialize<'de> + Ord + Clone"
        )
    )
)]
pub struct ORSet<N, T> {
    /// Element → its live dots: sorted, never empty, each covered by `context`.
    entries: BTreeMap<T, Vec<Dot<N>>>,
    /// Live dot → its element: the inverse of `entries` (a dot names one
    /// element), so a join finds the elements a context removes without
    /// scanning the whole store. Derived, not encoded.
    #[cfg_attr(feature = "serde", serde(skip))]
    dots: BTreeMap<Dot<N>, T>,
    context: CausalContext<N>,
}

/// What serde reads before [`ORSet`]'s invariants are checked.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(bound(
    deserialize = "N: serde::Deserialize<'de> + dsys_clocks::NodeId, T: serde::Deserialize<'de> + Ord"
))]
struct ORSetRepr<N, T> {
    entries: BTreeMap<T, Vec<Dot<N>>>,
    context: CausalContext<N>,
}

#[cfg(feature = "serde")]
impl<N: dsys_clocks::NodeId, T: Ord + Clone> TryFrom<ORSetRepr<N, T>> for ORSet<N, T> {
    type Error = DecodeError;

    fn try_from(repr: ORSetRepr<N, T>) -> Result<Self, DecodeError> {
        for dots in repr.entries.values() {
            check_dots(dots, &repr.context)?;
        }
        let dots = index(&repr.entries)?;
        Ok(Self {
            entries: repr.entries,
            dots,
            context: repr.context,
        })
    }
}

/// The dot → element index of `entries`; a dot under two elements is invalid
/// (no correct replica issues one dot twice).
fn index<N: dsys_clocks::NodeId, T: Clone>(
    entries: &BTreeMap<T, Vec<Dot<N>>>,
) -> Result<BTreeMap<Dot<N>, T>, DecodeError> {
    let mut index = BTreeMap::new();
    for (value, dots) in entries {
        for dot in dots {
            if index.insert(dot.clone(), value.clone()).is_some() {
                return Err(DecodeError::Invalid("one dot under two elements"));
            }
        }
    }
    Ok(index)
}

/// An element's dots: at least one, strictly increasing, all covered by `ctx`.
#[cfg(feature = "serde")]
fn check_dots<N: dsys_clocks::NodeId>(
    dots: &[Dot<N>],
    ctx: &CausalContext<N>,
) -> Result<(), DecodeError> {
    if dots.is_empty() {
        return Err(DecodeError::Invalid("element without dots"));
    }
    if dots.windows(2).any(|w| w[0] >= w[1]) {
        return Err(DecodeError::Order);
    }
    if dots.iter().any(|d| d.counter == 0 || !ctx.contains(d)) {
        return Err(DecodeError::Invalid(
            "dot in the store not covered by the causal context",
        ));
    }
    Ok(())
}

/// State equality (the dot index is derived from the entries).
impl<N: PartialEq, T: PartialEq> PartialEq for ORSet<N, T> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries && self.context == other.context
    }
}

impl<N: Eq, T: Eq> Eq for ORSet<N, T> {}

impl<N: fmt::Debug, T: fmt::Debug> fmt::Debug for ORSet<N, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ORSet")
            .field("entries", &self.entries)
            .field("context", &self.context)
            .finish()
    }
}

impl<N, T> Default for ORSet<N, T> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            dots: BTreeMap::new(),
            context: CausalContext::default(),
        }
    }
}

impl<N: dsys_clocks::NodeId, T: Ord + Clone> ORSet<N, T> {
    /// The empty set (⊥).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` as `replica` and returns the delta (§5, AWSet `add`):
    /// `({value ↦ {d}}, {d} ∪ dots(value))` with `d` the replica's next dot. The
    /// element's older dots are in the delta's context, so they are dropped
    /// wherever it is joined: at most one dot per element survives sequential adds.
    ///
    /// If `replica` has issued `u64::MAX` dots, nothing changes and ⊥ is returned
    /// (see [`CausalContext::next_dot`]); otherwise the delta is never ⊥.
    pub fn add(&mut self, replica: &N, value: T) -> Self {
        let Some(dot) = self.context.next_dot(replica) else {
            return Self::new();
        };
        let mut delta_ctx = CausalContext::new();
        let key = match self.entries.entry(value) {
            Entry::Occupied(mut e) => {
                let dots = e.get_mut();
                for old in dots.drain(..) {
                    self.dots.remove(&old);
                    delta_ctx.insert(old);
                }
                dots.push(dot.clone());
                e.key().clone()
            }
            Entry::Vacant(e) => {
                let key = e.key().clone();
                e.insert(vec![dot.clone()]);
                key
            }
        };
        self.dots.insert(dot.clone(), key.clone());
        delta_ctx.insert(dot.clone());
        Self {
            entries: BTreeMap::from([(key.clone(), vec![dot.clone()])]),
            dots: BTreeMap::from([(dot, key)]),
            context: delta_ctx,
        }
    }

    /// Removes `value` and returns the delta (§5, AWSet `rmv`): `(∅, dots(value))`,
    /// which removes exactly the adds this replica has seen. ⊥ if `value` is absent.
    pub fn remove(&mut self, value: &T) -> Self {
        match self.entries.remove(value) {
            Some(dots) => {
                for dot in &dots {
                    self.dots.remove(dot);
                }
                Self {
                    entries: BTreeMap::new(),
                    dots: BTreeMap::new(),
                    context: dots.into_iter().collect(),
                }
            }
            None => Self::new(),
        }
    }

    /// Removes every element and returns the delta (§5, AWSet `clear`):
    /// `(∅, dots(store))`. Adds this replica has not seen survive it.
    pub fn clear(&mut self) -> Self {
        self.entries.clear();
        let dots = std::mem::take(&mut self.dots);
        Self {
            entries: BTreeMap::new(),
            dots: BTreeMap::new(),
            // In dot order, so each insert extends the prefix or the cloud's tail.
            context: dots.into_keys().collect(),
        }
    }
}

impl<N: dsys_clocks::NodeId, T: Ord> ORSet<N, T> {
    /// Whether `value` is in the set.
    pub fn contains(&self, value: &T) -> bool {
        self.entries.contains_key(value)
    }

    /// The elements, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        self.entries.keys()
    }

    /// How many elements the set holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set holds no element.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The dot store: each element with its live dots (usually one; more after
    /// concurrent adds), every one covered by [`context`](Self::context).
    pub fn dots(&self) -> impl Iterator<Item = (&T, &[Dot<N>])> + '_ {
        self.entries.iter().map(|(v, d)| (v, d.as_slice()))
    }

    /// Every dot this state has seen, live or removed.
    pub fn context(&self) -> &CausalContext<N> {
        &self.context
    }
}

/// The causal join (§5): `((s ∩ s') ∪ (s \ c') ∪ (s' \ c), c ∪ c')`, per
/// (element, dot) pair. It is a lattice join for every input that keeps the
/// invariants "each store dot is in the context" and "a dot names one element"
/// (which decoding enforces and joins preserve: a dot two states give to
/// different elements is in both contexts, so both pairs are dropped), so no
/// peer can make it misbehave.
///
/// Cost: `O((k + m) log n)` for `n` live dots here, `m` in `other`, and `k` of
/// the live dots here that `other`'s context covers: joining a small delta
/// into a large state touches only what the delta mentions.
impl<N: dsys_clocks::NodeId, T: Ord + Clone> Lattice for ORSet<N, T> {
    fn join(&mut self, other: &Self) {
        // s \ c', keeping s ∩ s': my live dots the other has seen, found through
        // the dot index (a range per node of its prefix, a lookup per cloud dot),
        // die unless the other still holds them for the same element.
        let mut dead: Vec<Dot<N>> = Vec::new();
        for (node, n) in other.context.version_vector().iter() {
            let run = Dot::new(node.clone(), 1)..=Dot::new(node.clone(), n);
            let mut theirs = other.dots.range(run.clone()).peekable();
            for (dot, value) in self.dots.range(run) {
                while theirs.next_if(|(d, _)| *d < dot).is_some() {}
                if theirs.peek() != Some(&(dot, value)) {
                    dead.push(dot.clone());
                }
            }
        }
        for dot in other.context.cloud() {
            if let Some(value) = self.dots.get(dot) {
                if other.dots.get(dot) != Some(value) {
                    dead.push(dot.clone());
                }
            }
        }
        for dot in dead {
            let value = self.dots.remove(&dot).expect("found in the index above");
            let dots = self
                .entries
                .get_mut(&value)
                .expect("the index and the entries hold the same pairs");
            dots.retain(|d| *d != dot);
            if dots.is_empty() {
                self.entries.remove(&value);
            }
        }
        // s' \ c: their dots I have never seen (those I have seen are either
        // still mine, kept above, or were removed here).
        for (dot, value) in &other.dots {
            if self.context.contains(dot) {
                continue;
            }
            self.dots.insert(dot.clone(), value.clone());
            match self.entries.get_mut(value) {
                Some(dots) => {
                    let at = dots.binary_search(dot).unwrap_or_else(|at| at);
                    dots.insert(at, dot.clone());
                }
                None => {
                    self.entries.insert(value.clone(), vec![dot.clone()]);
                }
            }
        }
        self.context.join(&other.context);
    }

    /// Per (element, dot) pair the states are the chain unseen < live < removed;
    /// `self ⊑ other` iff `c ⊆ c'` and every pair live in `other` whose dot
    /// `self` has seen is live in `self` too (not removed).
    fn leq(&self, other: &Self) -> bool {
        self.context.leq(&other.context)
            && other.dots.iter().all(|(dot, value)| {
                !self.context.contains(dot) || self.dots.get(dot) == Some(value)
            })
    }

    fn bottom() -> Self {
        Self::new()
    }

    fn is_bottom(&self) -> bool {
        self.context.is_empty()
    }
}

/// No dot of `me` that `me` never issued (its store dots are in its context).
impl<N: dsys_clocks::NodeId, T: Ord + Clone> Authored<N> for ORSet<N, T> {
    fn validate_peer_join(&self, me: &N, other: &Self) -> Result<(), InvalidJoin> {
        self.context.validate_peer_join(me, &other.context)
    }
}

impl<N: dsys_clocks::NodeId + Encode, T: Encode> Encode for ORSet<N, T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.context.encode(out);
        let table = self.context.node_table();
        put_uvarint(out, self.entries.len() as u64);
        for (value, dots) in &self.entries {
            value.encode(out);
            put_uvarint(out, dots.len() as u64);
            for dot in dots {
                encode_dot(&table, dot, out);
            }
        }
    }
}

impl<N: dsys_clocks::NodeId + Decode, T: Ord + Clone + Decode> Decode for ORSet<N, T> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let context = CausalContext::<N>::decode(input)?;
        let table = context.node_table();
        // An element takes at least 3 bytes: itself, a dot count, a dot (2).
        let len = get_len(input, 3)?;
        let mut entries: BTreeMap<T, Vec<Dot<N>>> = BTreeMap::new();
        for _ in 0..len {
            let value = T::decode(input)?;
            if entries
                .last_key_value()
                .is_some_and(|(last, _)| *last >= value)
            {
                return Err(DecodeError::Order);
            }
            let count = get_len(input, 2)?;
            if count == 0 {
                return Err(DecodeError::Invalid("element without dots"));
            }
            let mut dots: Vec<Dot<N>> = Vec::with_capacity(count);
            for _ in 0..count {
                let dot = decode_dot(&table, &context, input)?;
                if dots.last().is_some_and(|last| *last >= dot) {
                    return Err(DecodeError::Order);
                }
                dots.push(dot);
            }
            entries.insert(value, dots);
        }
        let dots = index(&entries)?;
        Ok(Self {
            entries,
            dots,
            context,
        })
    }
}
