//! The design notes of this file are on [`LwwRegister`]'s documentation.

use std::cmp::Ordering;

use dsys_clocks::{Dot, Timestamp};

use crate::causal::{CausalContext, decode_dot, encode_dot};
use crate::codec::{Decode, DecodeError, Encode, get_bytes, get_len, get_u8, put_uvarint};
use crate::lattice::{Authored, InvalidJoin, Lattice};

/// A last-writer-wins register: the write with the greatest
/// `(timestamp, replica)` wins (Shapiro et al. 2011, LWW-Register; as a δ-CRDT,
/// Almeida et al. 2018, §4, where the full state is its own delta).
///
/// Timestamps are hybrid logical clock readings ([`Timestamp`]) the caller takes
/// from its own clock, so a write that causally follows another (the writer saw
/// it) has a greater timestamp. The writer's replica id breaks ties between equal
/// timestamps deterministically. Two writes with the *same* `(timestamp,
/// replica)` and different values cannot come from a correct replica (its clock
/// never repeats a timestamp); should they meet, the greater value (by `Ord`)
/// wins, so the state is the maximum of the total order `(timestamp, replica,
/// value)` and join stays commutative, associative and idempotent on any input.
///
/// ```
/// use dsys_clocks::Timestamp;
/// use dsys_crdt::{Lattice, LwwRegister};
///
/// let t = |ms| Timestamp::new(ms, 0).unwrap();
/// let (mut a, mut b) = (LwwRegister::<u32, &str>::new(), LwwRegister::new());
/// let da = a.set(&1, t(10), "from a");
/// let db = b.set(&2, t(10), "from b"); // same timestamp: replica 2 > 1 wins
/// a.join(&db);
/// b.join(&da);
/// assert_eq!(a.value(), Some(&"from b"));
/// assert_eq!(a, b);
/// ```
///
/// # Design
///
/// Registers: last-writer-wins over hybrid logical clock timestamps, and the
/// multi-value register over dots (Almeida, Shoker, Baquero, "Delta state
/// replicated data types", 2018, §5, MVReg; Shapiro et al. 2011 for the LWW
/// register).
///
/// # Encodings
///
/// [`LwwRegister`]: a tag (0 never written, 1 written), then the timestamp's
/// packed `u64` (8 bytes, big-endian), the writer and the value. [`MvRegister`]: its
/// [`CausalContext`], the sibling count, then per sibling in dot order the dot
/// (node index in the context's node list, counter) and the value. Decoding
/// rejects dots out of order and dots the context does not cover.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LwwRegister<N, T> {
    write: Option<Write<N, T>>,
}

/// One write; the field order is the order writes are compared in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Write<N, T> {
    timestamp: Timestamp,
    replica: N,
    value: T,
}

impl<N, T> Default for LwwRegister<N, T> {
    fn default() -> Self {
        Self { write: None }
    }
}

impl<N: dsys_clocks::NodeId, T: Ord + Clone> LwwRegister<N, T> {
    /// The register no one has written (⊥).
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `value` at `timestamp` as `replica` and returns the delta: the
    /// write itself if it wins, ⊥ if the register already holds a greater write
    /// (the write is then lost everywhere, which is what last-writer-wins means).
    pub fn set(&mut self, replica: &N, timestamp: Timestamp, value: T) -> Self {
        let write = Some(Write {
            timestamp,
            replica: replica.clone(),
            value,
        });
        if write > self.write {
            self.write.clone_from(&write);
            Self { write }
        } else {
            Self::new()
        }
    }

    /// The current value; `None` if never written.
    pub fn value(&self) -> Option<&T> {
        self.write.as_ref().map(|w| &w.value)
    }

    /// The timestamp of the current value.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.write.as_ref().map(|w| w.timestamp)
    }

    /// The replica that wrote the current value.
    pub fn writer(&self) -> Option<&N> {
        self.write.as_ref().map(|w| &w.replica)
    }
}

/// The maximum in `(timestamp, replica, value)` order: a chain, hence a lattice.
impl<N: dsys_clocks::NodeId, T: Ord + Clone> Lattice for LwwRegister<N, T> {
    fn join(&mut self, other: &Self) {
        if other.write > self.write {
            self.write.clone_from(&other.write);
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.write <= other.write
    }

    fn bottom() -> Self {
        Self::new()
    }

    fn is_bottom(&self) -> bool {
        self.write.is_none()
    }
}

/// A write attributed to `me` must be one `me` made: `me` holds every write it made or
/// a greater one, so a greater write of `me` is forged.
impl<N: dsys_clocks::NodeId, T: Ord + Clone> Authored<N> for LwwRegister<N, T> {
    fn validate_peer_join(&self, me: &N, other: &Self) -> Result<(), InvalidJoin> {
        if other.writer() == Some(me) && other.write > self.write {
            return Err(InvalidJoin::forged());
        }
        Ok(())
    }
}

impl<N: Encode, T: Encode> Encode for LwwRegister<N, T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match &self.write {
            None => out.push(0),
            Some(w) => {
                out.push(1);
                // Fixed width: a current HLC reading (ms since 1970 << 16) takes 9
                // bytes as a varint.
                out.extend_from_slice(&w.timestamp.to_u64().to_be_bytes());
                w.replica.encode(out);
                w.value.encode(out);
            }
        }
    }
}

impl<N: Decode, T: Decode> Decode for LwwRegister<N, T> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let write = match get_u8(input)? {
            0 => None,
            1 => Some(Write {
                timestamp: Timestamp::from_u64(u64::from_be_bytes(
                    get_bytes(input, 8)?.try_into().expect("8 bytes"),
                )),
                replica: N::decode(input)?,
                value: T::decode(input)?,
            }),
            t => return Err(DecodeError::Tag(t)),
        };
        Ok(Self { write })
    }
}

/// A multi-value register (Almeida et al. 2018, §5, MVReg: `DotFun<T>` with a
/// causal context).
///
/// A write replaces every value its writer has seen; writes that did not see
/// each other are kept side by side as siblings, and the next write that has
/// seen them all replaces them with one value.
///
/// ```
/// use dsys_crdt::{Lattice, MvRegister};
///
/// let (mut a, mut b) = (MvRegister::<u32, &str>::new(), MvRegister::new());
/// let da = a.set(&1, "x");
/// let db = b.set(&2, "y");
/// a.join(&db);
/// assert_eq!(a.values().collect::<Vec<_>>(), [&"x", &"y"]); // siblings
/// a.set(&1, "z"); // saw both
/// assert_eq!(a.values().collect::<Vec<_>>(), [&"z"]);
/// # let _ = da;
/// ```
///
/// The papers, the design and the encoding are in [`LwwRegister`'s documentation](LwwRegister#design).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        try_from = "MvRegisterRepr<N, T>",
        bound(
            serialize = "N: serde::Serialize, T: serde::Serialize",
            deserialize = "N: serde::Deserialize<'de> + dsys_clocks::NodeId, T: serde::Deserialize<'de>"
        )
    )
)]
pub struct MvRegister<N, T> {
    /// Live writes, strictly increasing by dot, each dot covered by `context`.
    store: Vec<(Dot<N>, T)>,
    context: CausalContext<N>,
}

/// What serde reads before [`MvRegister`]'s invariants are checked.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(bound(
    deserialize = "N: serde::Deserialize<'de> + dsys_clocks::NodeId, T: serde::Deserialize<'de>"
))]
struct MvRegisterRepr<N, T> {
    store: Vec<(Dot<N>, T)>,
    context: CausalContext<N>,
}

#[cfg(feature = "serde")]
impl<N: dsys_clocks::NodeId, T> TryFrom<MvRegisterRepr<N, T>> for MvRegister<N, T> {
    type Error = DecodeError;

    fn try_from(repr: MvRegisterRepr<N, T>) -> Result<Self, DecodeError> {
        if repr.store.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(DecodeError::Order);
        }
        if repr
            .store
            .iter()
            .any(|(d, _)| d.counter == 0 || !repr.context.contains(d))
        {
            return Err(DecodeError::Invalid(
                "dot in the store not covered by the causal context",
            ));
        }
        Ok(Self {
            store: repr.store,
            context: repr.context,
        })
    }
}

impl<N, T> Default for MvRegister<N, T> {
    fn default() -> Self {
        Self {
            store: Vec::new(),
            context: CausalContext::default(),
        }
    }
}

impl<N: dsys_clocks::NodeId, T: Clone> MvRegister<N, T> {
    /// The register no one has written (⊥).
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `value` as `replica` and returns the delta (§5, MVReg `write`):
    /// `({d ↦ value}, {d} ∪ dom(store))`, so the write replaces every sibling
    /// this replica holds, and only those.
    ///
    /// If `replica` has issued `u64::MAX` dots, nothing changes and ⊥ is returned
    /// (see [`CausalContext::next_dot`]); otherwise the delta is never ⊥.
    pub fn set(&mut self, replica: &N, value: T) -> Self {
        let Some(dot) = self.context.next_dot(replica) else {
            return Self::new();
        };
        let mut context: CausalContext<N> = self.store.drain(..).map(|(d, _)| d).collect();
        context.insert(dot.clone());
        self.store.push((dot.clone(), value.clone()));
        Self {
            store: vec![(dot, value)],
            context,
        }
    }

    /// Empties the register and returns the delta (§5, MVReg `clear`):
    /// `(∅, dom(store))`. Writes this replica has not seen survive it.
    pub fn clear(&mut self) -> Self {
        Self {
            store: Vec::new(),
            context: self.store.drain(..).map(|(d, _)| d).collect(),
        }
    }
}

impl<N, T> MvRegister<N, T> {
    /// The siblings: one value per live write, in dot order (a value written
    /// concurrently by two replicas appears twice). Empty if never written or
    /// cleared.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        self.store.iter().map(|(_, v)| v)
    }

    /// Whether the register holds no value.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// The live writes with their dots, in dot order.
    pub fn dots(&self) -> impl ExactSizeIterator<Item = (&Dot<N>, &T)> + '_ {
        self.store.iter().map(|(d, v)| (d, v))
    }

    /// Every dot this state has seen, live or overwritten.
    pub fn context(&self) -> &CausalContext<N> {
        &self.context
    }
}

/// The causal join for a `DotFun` (§5): `((m ∩ m') ∪ (m \ c') ∪ (m' \ c), c ∪ c')`.
/// A dot both sides hold carries one value from a correct writer; should a
/// forged input give it two, the greater (by `Ord`) is kept, so the join is a
/// lattice join on any input that keeps "each store dot is in the context".
impl<N: dsys_clocks::NodeId, T: Ord + Clone> Lattice for MvRegister<N, T> {
    fn join(&mut self, other: &Self) {
        let mine = std::mem::take(&mut self.store);
        let mut joined = Vec::with_capacity(mine.len() + other.store.len());
        let mut a = mine.into_iter().peekable();
        let mut b = other.store.iter().peekable();
        loop {
            let order = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(x), Some(y)) => x.0.cmp(&y.0),
            };
            match order {
                Ordering::Less => {
                    let (d, v) = a.next().expect("peeked");
                    if !other.context.contains(&d) {
                        joined.push((d, v));
                    }
                }
                Ordering::Greater => {
                    let (d, v) = b.next().expect("peeked");
                    if !self.context.contains(d) {
                        joined.push((d.clone(), v.clone()));
                    }
                }
                Ordering::Equal => {
                    let (d, v) = a.next().expect("peeked");
                    let (_, w) = b.next().expect("peeked");
                    let v = if *w > v { w.clone() } else { v };
                    joined.push((d, v));
                }
            }
        }
        self.store = joined;
        self.context.join(&other.context);
    }

    /// Per dot the states are the chain unseen < live (ordered by value) <
    /// overwritten: `c ⊆ c'`, every live write of `self` is overwritten in
    /// `other` or live there with a value at least as great, and nothing live in
    /// `other` was overwritten in `self`.
    fn leq(&self, other: &Self) -> bool {
        self.context.leq(&other.context)
            && self
                .store
                .iter()
                .all(|(d, v)| find(&other.store, d).is_none_or(|w| v <= w))
            && other
                .store
                .iter()
                .all(|(d, _)| !self.context.contains(d) || find(&self.store, d).is_some())
    }

    fn bottom() -> Self {
        Self::new()
    }

    fn is_bottom(&self) -> bool {
        self.context.is_empty()
    }
}

/// The value `store` holds at `dot`.
fn find<'a, N: Ord, T>(store: &'a [(Dot<N>, T)], dot: &Dot<N>) -> Option<&'a T> {
    store
        .binary_search_by(|(d, _)| d.cmp(dot))
        .ok()
        .map(|i| &store[i].1)
}

/// No dot of `me` that `me` never issued (its store dots are in its context).
impl<N: dsys_clocks::NodeId, T: Ord + Clone> Authored<N> for MvRegister<N, T> {
    fn validate_peer_join(&self, me: &N, other: &Self) -> Result<(), InvalidJoin> {
        self.context.validate_peer_join(me, &other.context)
    }
}

impl<N: dsys_clocks::NodeId + Encode, T: Encode> Encode for MvRegister<N, T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.context.encode(out);
        let table = self.context.node_table();
        put_uvarint(out, self.store.len() as u64);
        for (dot, value) in &self.store {
            encode_dot(&table, dot, out);
            value.encode(out);
        }
    }
}

impl<N: dsys_clocks::NodeId + Decode, T: Decode> Decode for MvRegister<N, T> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let context = CausalContext::<N>::decode(input)?;
        let table = context.node_table();
        let len = get_len(input, 2)?;
        let mut store: Vec<(Dot<N>, T)> = Vec::with_capacity(len);
        for _ in 0..len {
            let dot = decode_dot(&table, &context, input)?;
            if store.last().is_some_and(|(last, _)| *last >= dot) {
                return Err(DecodeError::Order);
            }
            store.push((dot, T::decode(input)?));
        }
        Ok(Self { store, context })
    }
}
