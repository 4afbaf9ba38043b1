//! The design notes of this file are on [`GCounter`]'s documentation.

use std::cmp::Ordering;

use smallvec::{SmallVec, smallvec};

use crate::codec::{Decode, DecodeError, Encode, get_len, get_uvarint, put_uvarint};
use crate::lattice::{Authored, InvalidJoin, Lattice};

/// A grow-only counter (G-Counter, Shapiro et al. 2011, §3.1, Specification 6): one monotonic count
/// per replica; the value is their sum.
///
/// Methods: getters ([`value`](Self::value), [`get`](Self::get),
/// [`iter`](Self::iter), [`len`](Self::len)), the delta mutator
/// [`increment`](Self::increment), and [`Lattice`] (`join`, `leq`, `bottom`,
/// `is_bottom`). Encoded by [`Encode`] as the number of entries, then each replica id
/// and its count (a varint) in replica order.
///
/// ```
/// use dsys_crdt::{GCounter, Lattice};
///
/// let mut a = GCounter::<u64>::default();
/// let mut b = GCounter::<u64>::default();
/// let delta = a.increment(&1, 3);
/// b.increment(&2, 4);
/// b.join(&delta); // ship the delta instead of the whole state
/// a.join(&b);
/// assert_eq!(a.value(), 7);
/// assert_eq!(a, b);
/// ```
///
/// # Design
///
/// Counters: the grow-only [`GCounter`] and the increment/decrement [`PNCounter`].
///
/// Both are the state-based counters of Shapiro, Preguiça, Baquero and Zawirski,
/// "A comprehensive study of Convergent and Commutative Replicated Data Types"
/// (INRIA RR-7506, 2011), §3.1 (Specification 6, the G-Counter, and
/// Specification 7, the PN-Counter): each replica owns one entry that only it
/// increments, the join takes the per-replica maximum, and the value is the sum of the
/// entries.
///
/// Mutators are the delta mutators of Almeida, Shoker and Baquero, "Delta state
/// replicated data types" (JPDC 2018), §3 (a delta-mutator mδ satisfies
/// m(X) = X ⊔ mδ(X)): [`GCounter::increment`] changes the state and
/// returns a delta, a counter holding only the replica's new entry, which joins into
/// any replica like a full state. A mutation that changes nothing returns ⊥.
///
/// # Representation
///
/// A [`GCounter`] is a vector (a `SmallVec` holding one entry inline, so a delta
/// does not allocate) of `(replica, count)` pairs sorted by replica, with no
/// zero counts (an absent replica counts zero), so equal states are equal values and
/// encode to equal bytes. It caches the sum of its entries as a `u128`, kept exact by
/// [`increment`](GCounter::increment) and [`join`](Lattice::join), so
/// [`value`](GCounter::value) is O(1). A join updates the entries in place, adding
/// each one's increase to the cached sum: a branch-free walk of both vectors while
/// their replicas line up, binary searches for a much smaller state (a delta), and one
/// merging pass (one allocation) when several replicas are new. The sum cannot
/// overflow: a vector holds fewer than 2^60 entries of at most 2^64 - 1 each.
///
/// A replica's own entry saturates at `u64::MAX` rather than wrapping or panicking
/// (2^64 increments by one take centuries at a billion a second); an increment that
/// would pass it stops there. A peer cannot bring that about: the protocol refuses a
/// peer's entry for this replica above this replica's own ([`Authored`]). No input makes a join or a decoder panic: counts only
/// meet `max`, saturating and `u128` arithmetic, and the decoder checks every length
/// against the bytes left before allocating.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(
        into = "Vec<(N, u64)>",
        try_from = "Vec<(N, u64)>",
        bound(
            serialize = "N: dsys_clocks::NodeId + serde::Serialize",
            deserialize = "N: dsys_clocks::NodeId + serde::Deserialize<'de>"
        )
    )
)]
pub struct GCounter<N> {
    /// Sorted by replica, strictly; no zero counts.
    entries: Entries<N>,
    /// The sum of the counts.
    total: u128,
}

impl<N> Default for GCounter<N> {
    fn default() -> Self {
        Self {
            entries: SmallVec::new(),
            total: 0,
        }
    }
}

impl<N: dsys_clocks::NodeId> GCounter<N> {
    /// An empty counter (⊥): every replica counts zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter's value: the sum of every replica's count. O(1).
    #[must_use]
    pub fn value(&self) -> u128 {
        self.total
    }

    /// `replica`'s count (zero for a replica never seen).
    #[must_use]
    pub fn get(&self, replica: &N) -> u64 {
        match self.find(replica) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    /// The replicas with a non-zero count and their counts, in replica order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&N, u64)> + '_ {
        self.entries.iter().map(|(n, c)| (n, *c))
    }

    /// The number of replicas with a non-zero count.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no replica has counted anything (the counter is ⊥).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `by` to `replica`'s count and returns the delta: a counter holding just
    /// `replica`'s new count (Almeida et al. 2018, §3). Joining the delta into the
    /// state before the increment gives the state after it.
    ///
    /// Only `replica` itself may increment its entry (Shapiro et al. §3.1); two
    /// replicas incrementing one entry concurrently lose increments at the join.
    ///
    /// The count saturates at `u64::MAX`. Returns ⊥ if nothing changed (`by == 0`, or
    /// the count was already `u64::MAX`).
    #[must_use = "the delta is what the other replicas need; drop it only if the full state is shipped"]
    pub fn increment(&mut self, replica: &N, by: u64) -> Self {
        let count = match self.find(replica) {
            Ok(i) => {
                let entry = &mut self.entries[i].1;
                let new = entry.saturating_add(by);
                if new == *entry {
                    return Self::default();
                }
                self.total += u128::from(new - *entry);
                *entry = new;
                new
            }
            Err(i) => {
                if by == 0 {
                    return Self::default();
                }
                self.entries.insert(i, (replica.clone(), by));
                self.total += u128::from(by);
                by
            }
        };
        Self {
            entries: smallvec![(replica.clone(), count)],
            total: u128::from(count),
        }
    }

    fn find(&self, replica: &N) -> Result<usize, usize> {
        search(&self.entries, replica)
    }

    /// Builds a counter from entries in any order; duplicates keep their maximum,
    /// zero counts are dropped.
    fn from_unsorted(mut entries: Vec<(N, u64)>) -> Self {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        entries.dedup_by(|later, first| later.0 == first.0);
        entries.retain(|e| e.1 != 0);
        let total = entries.iter().map(|e| u128::from(e.1)).sum();
        Self {
            entries: SmallVec::from_vec(entries),
            total,
        }
    }

    /// Entries that are strictly sorted by replica and non-zero, or the reason not.
    fn from_canonical(entries: Vec<(N, u64)>) -> Result<Self, DecodeError> {
        let mut total = 0u128;
        for (i, (n, c)) in entries.iter().enumerate() {
            if *c == 0 {
                return Err(DecodeError::Invalid("zero count in a G-Counter"));
            }
            if i > 0 && entries[i - 1].0 >= *n {
                return Err(DecodeError::Order);
            }
            total += u128::from(*c);
        }
        Ok(Self {
            entries: SmallVec::from_vec(entries),
            total,
        })
    }
}

impl<N: dsys_clocks::NodeId> FromIterator<(N, u64)> for GCounter<N> {
    /// Collects `(replica, count)` pairs in any order: a replica listed twice keeps
    /// the larger count (as a join would), zero counts are dropped.
    fn from_iter<I: IntoIterator<Item = (N, u64)>>(iter: I) -> Self {
        Self::from_unsorted(iter.into_iter().collect())
    }
}

impl<N: dsys_clocks::NodeId> Lattice for GCounter<N> {
    /// Per-replica maximum (Shapiro et al. §3.1, Specification 6 `merge`), in place
    /// for the replicas both know, adding each entry's increase to the cached sum.
    ///
    /// Against a state of comparable size it is one linear pass over both sorted
    /// vectors, branch-free while their replicas line up (the common case once replicas
    /// have met); against a much smaller one (a delta) it binary-searches each entry.
    /// A replica only `other` has is inserted; from a second one on, the rest is one
    /// merging pass into a new vector (one allocation).
    fn join(&mut self, other: &Self) {
        let theirs = &other.entries[..];
        if theirs.is_empty() {
            return;
        }
        if self.entries.is_empty() {
            self.entries.extend(theirs.iter().cloned());
            self.total = other.total;
            return;
        }
        // A delta from one replica's increment: one lookup.
        if let [(n, c)] = theirs {
            match self.find(n) {
                Ok(i) => {
                    let entry = &mut self.entries[i].1;
                    let up = c.saturating_sub(*entry);
                    *entry += up;
                    self.total += u128::from(up);
                }
                Err(i) => {
                    self.entries.insert(i, (n.clone(), *c));
                    self.total += u128::from(*c);
                }
            }
            return;
        }
        let (gained, missing) = if theirs.len().saturating_mul(SPARSE_RATIO) <= self.entries.len() {
            join_sparse(&mut self.entries, theirs)
        } else {
            join_dense(&mut self.entries, theirs)
        };
        self.total += gained;
        match missing {
            Missing::None => {}
            Missing::One { theirs: j, at } => {
                let (n, c) = &theirs[j];
                self.total += u128::from(*c);
                self.entries.insert(at, (n.clone(), *c));
            }
            Missing::Many { theirs: j, at } => {
                // Rebuild from the first missing replica on, in one merging pass. The
                // entries the first phase joined after it are joined again: a no-op.
                let mut old = std::mem::take(&mut self.entries);
                let mut merged = Entries::with_capacity(old.len() + theirs.len() - j);
                let mut rest = old.drain(..);
                merged.extend(rest.by_ref().take(at));
                let mut theirs = theirs[j..].iter().peekable();
                let mut added = 0u128;
                for mut entry in rest {
                    while let Some((n, c)) = theirs.next_if(|(n, _)| *n <= entry.0) {
                        if *n < entry.0 {
                            added += u128::from(*c);
                            merged.push((n.clone(), *c));
                        } else {
                            let up = c.saturating_sub(entry.1);
                            entry.1 += up;
                            added += u128::from(up);
                        }
                    }
                    merged.push(entry);
                }
                for (n, c) in theirs {
                    added += u128::from(*c);
                    merged.push((n.clone(), *c));
                }
                self.entries = merged;
                self.total += added;
            }
        }
    }

    /// Whether every count of `self` is at most the same replica's count in `other`.
    fn leq(&self, other: &Self) -> bool {
        if self.total > other.total || self.entries.len() > other.entries.len() {
            return false;
        }
        let mut theirs = other.entries.iter();
        'mine: for (n, c) in &self.entries {
            for (m, d) in theirs.by_ref() {
                match m.cmp(n) {
                    Ordering::Less => continue,
                    Ordering::Equal if c <= d => continue 'mine,
                    _ => return false,
                }
            }
            return false;
        }
        true
    }

    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<N: dsys_clocks::NodeId> From<GCounter<N>> for Vec<(N, u64)> {
    /// The entries, sorted by replica, without zero counts.
    fn from(c: GCounter<N>) -> Self {
        c.entries.into_vec()
    }
}

impl<N: dsys_clocks::NodeId> TryFrom<Vec<(N, u64)>> for GCounter<N> {
    type Error = DecodeError;

    /// Accepts only the canonical form: strictly sorted by replica, no zero count.
    fn try_from(entries: Vec<(N, u64)>) -> Result<Self, DecodeError> {
        Self::from_canonical(entries)
    }
}

/// `me`'s entry counts only `me`'s increments: a peer's larger entry for `me` counts
/// increments `me` never made (and one at `u64::MAX` would swallow every later one).
impl<N: dsys_clocks::NodeId> Authored<N> for GCounter<N> {
    fn validate_peer_join(&self, me: &N, other: &Self) -> Result<(), InvalidJoin> {
        if other.get(me) > self.get(me) {
            return Err(InvalidJoin::forged());
        }
        Ok(())
    }
}

impl<N: Encode> Encode for GCounter<N> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.entries.len() as u64);
        for (n, c) in &self.entries {
            n.encode(out);
            put_uvarint(out, *c);
        }
    }
}

impl<N: dsys_clocks::NodeId + Decode> Decode for GCounter<N> {
    /// Rejects what [`Encode`] never writes: a zero count ([`DecodeError::Invalid`]),
    /// replicas out of order or repeated ([`DecodeError::Order`]).
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        // Each entry takes at least its count's byte.
        let len = get_len(input, 1)?;
        let mut entries: Entries<N> = SmallVec::with_capacity(len);
        let mut total = 0u128;
        for _ in 0..len {
            let n = N::decode(input)?;
            if entries.last().is_some_and(|(last, _)| *last >= n) {
                return Err(DecodeError::Order);
            }
            let c = get_uvarint(input)?;
            if c == 0 {
                return Err(DecodeError::Invalid("zero count in a G-Counter"));
            }
            total += u128::from(c);
            entries.push((n, c));
        }
        Ok(Self { entries, total })
    }
}

/// A counter's entries: inline when there is one (a delta), so an increment's delta
/// allocates nothing.
type Entries<N> = SmallVec<[(N, u64); 1]>;

/// Below `mine.len() / SPARSE_RATIO` entries, a join binary-searches each entry of
/// the other state instead of walking both (log2(64) = 6 probes per entry against a
/// walk of about 64 / n).
const SPARSE_RATIO: usize = 8;

/// The replicas of `theirs` that `mine` lacks, found by the first phase of a join.
enum Missing {
    None,
    /// Exactly one: `theirs[theirs]` belongs at `mine[at]`.
    One {
        theirs: usize,
        at: usize,
    },
    /// More than one, the first of which is `theirs[theirs]`, belonging at `mine[at]`.
    Many {
        theirs: usize,
        at: usize,
    },
}

impl Missing {
    /// Records a missing replica; returns whether the first phase should stop (a
    /// second one: the rest is left to a merging pass).
    fn add(&mut self, theirs: usize, at: usize) -> bool {
        match *self {
            Missing::None => {
                *self = Missing::One { theirs, at };
                false
            }
            Missing::One { theirs, at } => {
                *self = Missing::Many { theirs, at };
                true
            }
            Missing::Many { .. } => true,
        }
    }
}

/// Joins the counts of the replicas both sides know, walking both sorted vectors,
/// until a second replica missing from `mine` shows up; returns the increase of the
/// sum and what `mine` lacks.
fn join_dense<N: Ord>(mine: &mut [(N, u64)], theirs: &[(N, u64)]) -> (u128, Missing) {
    let mut gained = 0u128;
    // While the replicas line up (identical replica sets: the usual case), the max is
    // branch-free.
    let mut aligned = 0;
    for (m, t) in mine.iter_mut().zip(theirs) {
        if m.0 != t.0 {
            break;
        }
        let joined = m.1.max(t.1);
        gained += u128::from(joined - m.1);
        m.1 = joined;
        aligned += 1;
    }
    let mut missing = Missing::None;
    let mut i = aligned;
    for (j, (n, c)) in theirs.iter().enumerate().skip(aligned) {
        loop {
            let Some(entry) = mine.get_mut(i) else {
                if missing.add(j, i) {
                    return (gained, missing);
                }
                break;
            };
            match entry.0.cmp(n) {
                Ordering::Less => i += 1,
                Ordering::Equal => {
                    let up = c.saturating_sub(entry.1);
                    entry.1 += up;
                    gained += u128::from(up);
                    i += 1;
                    break;
                }
                Ordering::Greater => {
                    if missing.add(j, i) {
                        return (gained, missing);
                    }
                    break;
                }
            }
        }
    }
    (gained, missing)
}

/// [`join_dense`] for a `theirs` much shorter than `mine`: a binary search per entry,
/// each in what is left of `mine` after the previous one.
fn join_sparse<N: Ord>(mine: &mut [(N, u64)], theirs: &[(N, u64)]) -> (u128, Missing) {
    let mut gained = 0u128;
    let mut missing = Missing::None;
    let mut from = 0;
    for (j, (n, c)) in theirs.iter().enumerate() {
        match search(&mine[from..], n) {
            Ok(k) => {
                let entry = &mut mine[from + k].1;
                let up = c.saturating_sub(*entry);
                *entry += up;
                gained += u128::from(up);
                from += k + 1;
            }
            Err(k) => {
                if missing.add(j, from + k) {
                    break;
                }
                from += k;
            }
        }
    }
    (gained, missing)
}

/// Where `k` is in `entries` (sorted by replica), or where it would go: halving
/// down to a run of at most [`SCAN`] entries, then a scan of the run. Against the
/// standard library's branch-free binary search, the scan's compares do not wait on
/// one another's loads, and a replica looked up again and again (its own entry, on
/// every increment) is predicted: 10–20% faster at 64 replicas in
/// `benches/counter.rs`.
fn search<N: Ord>(entries: &[(N, u64)], k: &N) -> Result<usize, usize> {
    // The answer (the first entry at or after `k`) is in `base..=base + size`.
    let mut base = 0;
    let mut size = entries.len();
    while size > SCAN {
        let half = size / 2;
        if entries[base + half].0 <= *k {
            base += half;
        }
        size -= half;
    }
    for (j, (n, _)) in entries[base..base + size].iter().enumerate() {
        match n.cmp(k) {
            Ordering::Less => {}
            Ordering::Equal => return Ok(base + j),
            Ordering::Greater => return Err(base + j),
        }
    }
    Err(base + size)
}

/// The longest run [`search`] scans.
const SCAN: usize = 8;

/// An increment/decrement counter (PN-Counter, Shapiro et al. 2011, §3.1, Specification 7): a
/// [`GCounter`] of increments and one of decrements; the value is their difference.
///
/// Deltas: [`increment`](Self::increment) and [`decrement`](Self::decrement) return
/// a PN-Counter holding just the replica's new entry on the side that changed.
/// Encoded as the increments' [`GCounter`] then the decrements'.
///
/// ```
/// use dsys_crdt::{Lattice, PNCounter};
///
/// let mut a = PNCounter::<u64>::default();
/// let mut b = PNCounter::<u64>::default();
/// a.increment(&1, 10);
/// let delta = b.decrement(&2, 3);
/// a.join(&delta);
/// assert_eq!(a.value(), 7);
/// ```
///
/// The papers, the design and the encoding are in [`GCounter`'s documentation](GCounter#design).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(bound(
        serialize = "N: dsys_clocks::NodeId + serde::Serialize",
        deserialize = "N: dsys_clocks::NodeId + serde::Deserialize<'de>"
    ))
)]
pub struct PNCounter<N> {
    p: GCounter<N>,
    n: GCounter<N>,
}

impl<N> Default for PNCounter<N> {
    fn default() -> Self {
        Self {
            p: GCounter::default(),
            n: GCounter::default(),
        }
    }
}

impl<N: dsys_clocks::NodeId> PNCounter<N> {
    /// A zero counter (⊥).
    pub fn new() -> Self {
        Self::default()
    }

    /// Increments minus decrements. O(1). Exact: each side is below 2^124.
    #[must_use]
    pub fn value(&self) -> i128 {
        // Each side is below 2^124 (see `GCounter`'s Design section), so both casts are exact.
        self.p.value() as i128 - self.n.value() as i128
    }

    /// The increments: a grow-only counter.
    #[must_use]
    pub fn increments(&self) -> &GCounter<N> {
        &self.p
    }

    /// The decrements: a grow-only counter.
    #[must_use]
    pub fn decrements(&self) -> &GCounter<N> {
        &self.n
    }

    /// Adds `by` to `replica`'s increments and returns the delta (see
    /// [`GCounter::increment`]: saturating, ⊥ if nothing changed).
    #[must_use = "the delta is what the other replicas need; drop it only if the full state is shipped"]
    pub fn increment(&mut self, replica: &N, by: u64) -> Self {
        Self {
            p: self.p.increment(replica, by),
            n: GCounter::default(),
        }
    }

    /// Adds `by` to `replica`'s decrements and returns the delta (see
    /// [`GCounter::increment`]: saturating, ⊥ if nothing changed).
    #[must_use = "the delta is what the other replicas need; drop it only if the full state is shipped"]
    pub fn decrement(&mut self, replica: &N, by: u64) -> Self {
        Self {
            p: GCounter::default(),
            n: self.n.increment(replica, by),
        }
    }
}

impl<N: dsys_clocks::NodeId> Lattice for PNCounter<N> {
    /// Joins the increments and the decrements separately (Specification 7 `merge`).
    fn join(&mut self, other: &Self) {
        self.p.join(&other.p);
        self.n.join(&other.n);
    }

    fn leq(&self, other: &Self) -> bool {
        self.p.leq(&other.p) && self.n.leq(&other.n)
    }

    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.p.is_bottom() && self.n.is_bottom()
    }
}

/// Both sides, as [`GCounter`].
impl<N: dsys_clocks::NodeId> Authored<N> for PNCounter<N> {
    fn validate_peer_join(&self, me: &N, other: &Self) -> Result<(), InvalidJoin> {
        self.p.validate_peer_join(me, &other.p)?;
        self.n.validate_peer_join(me, &other.n)
    }
}

impl<N: Encode> Encode for PNCounter<N> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.p.encode(out);
        self.n.encode(out);
    }
}

impl<N: dsys_clocks::NodeId + Decode> Decode for PNCounter<N> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            p: GCounter::decode(input)?,
            n: GCounter::decode(input)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_merges_disjoint_and_shared_replicas() {
        let mut a: GCounter<u32> = [(1, 5), (3, 1), (7, 2)].into_iter().collect();
        let b: GCounter<u32> = [(0, 4), (3, 9), (5, 1), (9, 6)].into_iter().collect();
        a.join(&b);
        assert_eq!(
            a.iter().map(|(n, c)| (*n, c)).collect::<Vec<_>>(),
            [(0, 4), (1, 5), (3, 9), (5, 1), (7, 2), (9, 6)]
        );
        assert_eq!(a.value(), 27);
        assert!(b.leq(&a));
        assert!(!a.leq(&b));
    }

    /// A small state joined into a large one takes the binary-search path; one or
    /// several new replicas take the insert and the merging pass.
    #[test]
    fn sparse_join_inserts_new_replicas() {
        let big: GCounter<u32> = (0..64u32).map(|r| (2 * r, 10)).collect();
        for small in [
            vec![(7u32, 1u64)],
            vec![(4, 20), (7, 1)],
            vec![(1, 1), (4, 20), (200, 3)],
            vec![(0, 11), (5, 2), (126, 1), (127, 9)],
        ] {
            let other: GCounter<u32> = small.iter().copied().collect();
            let mut joined = big.clone();
            joined.join(&other);
            let mut want: std::collections::BTreeMap<u32, u64> =
                big.iter().map(|(r, c)| (*r, c)).collect();
            for (r, c) in small {
                let e = want.entry(r).or_default();
                *e = (*e).max(c);
            }
            assert_eq!(
                joined.iter().map(|(r, c)| (*r, c)).collect::<Vec<_>>(),
                want.iter().map(|(r, c)| (*r, *c)).collect::<Vec<_>>()
            );
            assert_eq!(joined.value(), want.values().map(|c| u128::from(*c)).sum());
            assert_eq!(GCounter::try_from(Vec::from(joined.clone())), Ok(joined));
        }
    }

    #[test]
    fn increment_saturates_and_returns_bottom_when_unchanged() {
        let mut a = GCounter::<u32>::new();
        assert!(a.increment(&1, 0).is_bottom());
        let d = a.increment(&1, u64::MAX - 1);
        assert_eq!(d.get(&1), u64::MAX - 1);
        let d = a.increment(&1, 5);
        assert_eq!(d.get(&1), u64::MAX);
        assert!(a.increment(&1, 1).is_bottom());
        assert_eq!(a.value(), u128::from(u64::MAX));
    }

    #[test]
    fn decoder_rejects_non_canonical_entries() {
        // One entry with a zero count.
        assert!(matches!(
            GCounter::<u32>::from_bytes(&[1, 4, 0]),
            Err(DecodeError::Invalid(_))
        ));
        // Replicas out of order, then repeated.
        assert_eq!(
            GCounter::<u32>::from_bytes(&[2, 4, 1, 3, 1]),
            Err(DecodeError::Order)
        );
        assert_eq!(
            GCounter::<u32>::from_bytes(&[2, 4, 1, 4, 1]),
            Err(DecodeError::Order)
        );
        // A length beyond the input.
        assert_eq!(
            GCounter::<u32>::from_bytes(&[9, 4, 1]),
            Err(DecodeError::Truncated)
        );
    }
}
