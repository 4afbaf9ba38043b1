//! The design notes of this file are on [`ORMap`]'s documentation.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;

use crate::causal::CausalContext;
use crate::codec::{Decode, DecodeError, Encode};
use crate::lattice::{Authored, InvalidJoin, Lattice};
use crate::orset::ORSet;

/// An observed-remove map from `K` to CRDTs `V`, with add-wins keys and values
/// that are never reset (see [Design](Self#design)).
///
/// ```
/// use dsys_crdt::{Lattice, ORMap, ORSet};
///
/// type Tags = ORMap<u32, &'static str, ORSet<u32, &'static str>>;
/// let (mut a, mut b) = (Tags::new(), Tags::new());
/// let d = a.update(&1, "doc", |tags| tags.add(&1, "draft"));
/// b.join(&d);
/// // Concurrently: `b` removes the key, `a` tags the document again.
/// let rm = b.remove(&"doc");
/// let up = a.update(&1, "doc", |tags| tags.add(&1, "urgent"));
/// a.join(&rm);
/// b.join(&up);
/// assert_eq!(a, b);
/// let tags: Vec<_> = a.get(&"doc").unwrap().iter().copied().collect();
/// assert_eq!(tags, ["draft", "urgent"]); // add wins; the value was not reset
/// ```
///
/// # Design
///
/// An observed-remove map of CRDTs: keys are an add-wins set with dots, values
/// any [`Lattice`] joined per key (after the ORMap of Almeida, Shoker, Baquero,
/// "Delta state replicated data types", 2018, §5, simplified so that values need
/// not be causal CRDTs).
///
/// # Semantics
///
/// - **Keys** are an [`ORSet`] (the paper's AWSet): [`update`](ORMap::update)
///   gives the key a fresh dot, [`remove`](ORMap::remove) drops the dots it has
///   seen, and an update concurrent with a remove keeps the key (add wins).
/// - **Values** are joined pointwise, key by key, whether or not the key is
///   present; an update ships the value's delta along with the key's dot.
/// - **A removed key's value is not reset.** Removing a key hides it; its value
///   stays in the state, and an update after the remove (or concurrent with it)
///   joins onto that old value, so the key reappears holding its old content
///   plus the update. This is what makes the map a lattice for *any* value type:
///   forgetting a value soundly needs the value to carry dots in the map's
///   context (the paper's map of causal CRDTs), which a general lattice does not.
///   The price is memory: values of removed keys are kept.
///
/// # Encoding
///
/// The keys as an [`ORSet`], then every stored value as a map (count, then key
/// and value in key order). Values are never ⊥ (a ⊥ value is not stored), and
/// decoding rejects a ⊥ value, so equal states encode to equal bytes.
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        try_from = "ORMapRepr<N, K, V>",
        bound(
            serialize = "N: serde::Serialize, K: serde::Serialize, V: serde::Serialize",
            deserialize = "N: serde::Deserialize<'de> + dsys_clocks::NodeId, \
                           K: serde::Deserialize<'de> + Ord + Clone, \
                           V: serde::Deserialize<'de> + Lattice"
        )
    )
)]
pub struct ORMap<N, K, V> {
    keys: ORSet<N, K>,
    /// The value of every key ever updated, present or removed; never ⊥.
    values: BTreeMap<K, V>,
    /// ⊥, for [`ORMap::get`] on a present key whose value is still ⊥. Not state.
    #[cfg_attr(feature = "serde", serde(skip))]
    bottom: V,
}

/// What serde reads before [`ORMap`]'s invariants are checked.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(
    bound(deserialize = "N: serde::Deserialize<'de> + dsys_clocks::NodeId, \
                             K: serde::Deserialize<'de> + Ord + Clone, \
                             V: serde::Deserialize<'de>")
)]
struct ORMapRepr<N, K, V> {
    keys: ORSet<N, K>,
    values: BTreeMap<K, V>,
}

#[cfg(feature = "serde")]
impl<N, K, V: Lattice> TryFrom<ORMapRepr<N, K, V>> for ORMap<N, K, V> {
    type Error = DecodeError;

    fn try_from(repr: ORMapRepr<N, K, V>) -> Result<Self, DecodeError> {
        check_values(&repr.values)?;
        Ok(Self {
            keys: repr.keys,
            values: repr.values,
            bottom: V::bottom(),
        })
    }
}

fn check_values<K, V: Lattice>(values: &BTreeMap<K, V>) -> Result<(), DecodeError> {
    if values.values().any(Lattice::is_bottom) {
        return Err(DecodeError::Invalid("bottom value stored in a map"));
    }
    Ok(())
}

impl<N, K, V: Lattice> Default for ORMap<N, K, V> {
    fn default() -> Self {
        Self {
            keys: ORSet::default(),
            values: BTreeMap::new(),
            bottom: V::bottom(),
        }
    }
}

impl<N: dsys_clocks::NodeId, K: Ord + Clone, V: Lattice> ORMap<N, K, V> {
    /// The empty map (⊥).
    pub fn new() -> Self {
        Self::default()
    }

    /// Updates `key`'s value as `replica` and returns the map delta.
    ///
    /// `f` gets the current value (⊥ if the key never had one, the old value if
    /// the key was removed: values are not reset), mutates it with one of the
    /// value's delta mutators and returns that mutator's delta. The map delta
    /// holds the key's new dot (the AWSet add, §5) and `key ↦ delta`, so the key
    /// is present wherever the delta is joined, even where it was concurrently
    /// removed (add wins).
    ///
    /// If `replica` has issued `u64::MAX` dots, the key cannot get a new dot: `f` is
    /// not called, nothing changes and ⊥ is returned (see
    /// [`CausalContext::next_dot`]).
    pub fn update<F>(&mut self, replica: &N, key: K, f: F) -> Self
    where
        F: FnOnce(&mut V) -> V,
    {
        let keys = self.keys.add(replica, key.clone());
        if keys.is_bottom() {
            return Self::new();
        }
        let delta = match self.values.entry(key.clone()) {
            Entry::Occupied(mut e) => {
                let delta = f(e.get_mut());
                if e.get().is_bottom() {
                    e.remove();
                }
                delta
            }
            Entry::Vacant(e) => {
                let mut value = V::bottom();
                let delta = f(&mut value);
                if !value.is_bottom() {
                    e.insert(value);
                }
                delta
            }
        };
        let mut values = BTreeMap::new();
        if !delta.is_bottom() {
            values.insert(key, delta);
        }
        Self {
            keys,
            values,
            bottom: V::bottom(),
        }
    }

    /// Removes `key` and returns the delta: the AWSet remove of the key (§5),
    /// which drops the updates this replica has seen; the value stays (hidden).
    /// ⊥ if the key is absent.
    pub fn remove(&mut self, key: &K) -> Self {
        Self {
            keys: self.keys.remove(key),
            values: BTreeMap::new(),
            bottom: V::bottom(),
        }
    }

    /// Removes every key and returns the delta; updates this replica has not
    /// seen survive it.
    pub fn clear(&mut self) -> Self {
        Self {
            keys: self.keys.clear(),
            values: BTreeMap::new(),
            bottom: V::bottom(),
        }
    }
}

impl<N: dsys_clocks::NodeId, K: Ord, V> ORMap<N, K, V> {
    /// The value of `key`; `None` if the key is not present (never updated, or
    /// removed). A present key whose value is still ⊥ gives ⊥.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.keys
            .contains(key)
            .then(|| self.values.get(key).unwrap_or(&self.bottom))
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.keys.contains(key)
    }

    /// The present keys with their values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.keys
            .iter()
            .map(|k| (k, self.values.get(k).unwrap_or(&self.bottom)))
    }

    /// The present keys, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &K> + '_ {
        self.keys.iter()
    }

    /// How many keys are present.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys with their dots, as an add-wins set.
    pub fn key_set(&self) -> &ORSet<N, K> {
        &self.keys
    }

    /// Every dot this map has seen (key updates, live or removed).
    pub fn context(&self) -> &CausalContext<N> {
        self.keys.context()
    }
}

/// The product of the keys' causal join (§5) and the pointwise join of values.
impl<N: dsys_clocks::NodeId, K: Ord + Clone, V: Lattice + PartialEq> Lattice for ORMap<N, K, V> {
    fn join(&mut self, other: &Self) {
        self.keys.join(&other.keys);
        for (key, theirs) in &other.values {
            match self.values.get_mut(key) {
                Some(mine) => mine.join(theirs),
                None if theirs.is_bottom() => {}
                None => {
                    self.values.insert(key.clone(), theirs.clone());
                }
            }
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.keys.leq(&other.keys)
            && self
                .values
                .iter()
                .all(|(k, v)| other.values.get(k).is_some_and(|w| v.leq(w)))
    }

    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.keys.is_bottom() && self.values.is_empty()
    }
}

/// No key dot of `me` that `me` never issued, and no value holding an update of `me`
/// beyond ours (a missing value counts as ⊥).
impl<N, K, V> Authored<N> for ORMap<N, K, V>
where
    N: dsys_clocks::NodeId,
    K: Ord + Clone,
    V: Authored<N> + PartialEq,
{
    fn validate_peer_join(&self, me: &N, other: &Self) -> Result<(), InvalidJoin> {
        self.keys.validate_peer_join(me, &other.keys)?;
        for (key, theirs) in &other.values {
            self.values
                .get(key)
                .unwrap_or(&self.bottom)
                .validate_peer_join(me, theirs)?;
        }
        Ok(())
    }
}

/// State equality (the private ⊥ kept for [`ORMap::get`] is not state).
impl<N: PartialEq, K: PartialEq, V: PartialEq> PartialEq for ORMap<N, K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.keys == other.keys && self.values == other.values
    }
}

impl<N: Eq, K: Eq, V: Eq> Eq for ORMap<N, K, V> {}

impl<N: fmt::Debug, K: fmt::Debug, V: fmt::Debug> fmt::Debug for ORMap<N, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ORMap")
            .field("keys", &self.keys)
            .field("values", &self.values)
            .finish()
    }
}

impl<N: dsys_clocks::NodeId + Encode, K: Encode, V: Encode> Encode for ORMap<N, K, V> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.keys.encode(out);
        self.values.encode(out);
    }
}

impl<N: dsys_clocks::NodeId + Decode, K: Ord + Clone + Decode, V: Lattice + Decode> Decode
    for ORMap<N, K, V>
{
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let keys = ORSet::decode(input)?;
        let values = BTreeMap::<K, V>::decode(input)?;
        check_values(&values)?;
        Ok(Self {
            keys,
            values,
            bottom: V::bottom(),
        })
    }
}
