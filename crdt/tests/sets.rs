//! G-Set and 2P-Set (Shapiro et al. 2011, §3.3, Specifications 11–12) with delta mutators
//! (Almeida et al. 2018, §3): the semilattice laws, deltas, set semantics against a
//! model (a 2P-Set's removal wins forever), the codec, and differential runs against
//! the `crdts` crate's `GSet`.

use std::collections::BTreeSet;

use dsys_crdt::codec::{Decode, DecodeError, Encode};
use dsys_crdt::{GSet, Lattice, TwoPSet};
use proptest::prelude::*;

/// Cases per property: `default`, or `PROPTEST_CASES` when set (a soak run).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn gset() -> impl Strategy<Value = GSet<u8>> {
    prop::collection::btree_set(0u8..32, 0..12).prop_map(|s| s.into_iter().collect())
}

/// A 2P-Set built the only way a replica can be: inserts, then removes (of elements
/// that may never have been inserted).
fn twopset() -> impl Strategy<Value = TwoPSet<u8>> {
    (
        prop::collection::vec(0u8..32, 0..12),
        prop::collection::vec(0u8..32, 0..6),
    )
        .prop_map(|(adds, removes)| {
            let mut s = TwoPSet::new();
            for e in adds {
                let _ = s.insert(e);
            }
            for e in removes {
                let _ = s.remove(e);
            }
            s
        })
}

fn joined<L: Lattice>(a: &L, b: &L) -> L {
    let mut x = a.clone();
    x.join(b);
    x
}

fn leq_by_join<L: Lattice + PartialEq>(a: &L, b: &L) -> bool {
    joined(b, a) == *b
}

fn elements<'a>(it: impl Iterator<Item = &'a u8>) -> BTreeSet<u8> {
    it.copied().collect()
}

/// The paper's 2P-Set state (Specification 12): additions A, removals R; the value
/// is A \ R.
#[derive(Debug, Clone, Default)]
struct Model {
    added: BTreeSet<u8>,
    removed: BTreeSet<u8>,
}

impl Model {
    fn value(&self) -> BTreeSet<u8> {
        self.added.difference(&self.removed).copied().collect()
    }
    fn join(&mut self, other: &Model) {
        self.added.extend(&other.added);
        self.removed.extend(&other.removed);
    }
}

fn check_model(s: &TwoPSet<u8>, m: &Model) -> Result<(), TestCaseError> {
    let value = m.value();
    prop_assert_eq!(elements(s.iter()), value.clone());
    prop_assert_eq!(s.len(), value.len());
    prop_assert_eq!(elements(s.tombstones()), m.removed.clone());
    for e in 0u8..32 {
        prop_assert_eq!(s.contains(&e), value.contains(&e), "{}", e);
        prop_assert_eq!(s.is_removed(&e), m.removed.contains(&e), "{}", e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    /// Shapiro et al. §2.2: join is commutative, associative, idempotent, with ⊥ as
    /// identity; `leq` (subset) is the order it induces.
    #[test]
    fn gset_join_is_a_semilattice(a in gset(), b in gset(), c in gset()) {
        prop_assert_eq!(joined(&a, &b), joined(&b, &a));
        prop_assert_eq!(joined(&joined(&a, &b), &c), joined(&a, &joined(&b, &c)));
        prop_assert_eq!(joined(&a, &a), a.clone());
        prop_assert_eq!(joined(&a, &GSet::bottom()), a.clone());
        prop_assert_eq!(joined(&GSet::bottom(), &a), a.clone());
        prop_assert_eq!(a.leq(&b), leq_by_join(&a, &b));
        let ab = joined(&a, &b);
        let union: BTreeSet<u8> = a.as_set().union(b.as_set()).copied().collect();
        prop_assert_eq!(ab.as_set(), &union);
    }

    #[test]
    fn twopset_join_is_a_semilattice(a in twopset(), b in twopset(), c in twopset()) {
        prop_assert_eq!(joined(&a, &b), joined(&b, &a));
        prop_assert_eq!(joined(&joined(&a, &b), &c), joined(&a, &joined(&b, &c)));
        prop_assert_eq!(joined(&a, &a), a.clone());
        prop_assert_eq!(joined(&a, &TwoPSet::bottom()), a.clone());
        prop_assert_eq!(joined(&TwoPSet::bottom(), &a), a.clone());
        prop_assert_eq!(a.leq(&b), leq_by_join(&a, &b));
        prop_assert_eq!(b.leq(&a), leq_by_join(&b, &a));
        let ab = joined(&a, &b);
        prop_assert!(a.leq(&ab) && b.leq(&ab));
    }

    /// Almeida et al. §3: m(X) = X ⊔ mδ(X); the delta holds at most the one element,
    /// and is ⊥ exactly when the mutation changed nothing.
    #[test]
    fn gset_delta_joined_into_state_equals_mutation(s in gset(), e in 0u8..32, later in gset()) {
        let before = s.clone();
        let mut after = s;
        let delta = after.insert(e);
        prop_assert_eq!(joined(&before, &delta), after.clone());
        prop_assert!(delta.len() <= 1);
        prop_assert_eq!(delta.is_bottom(), before == after);
        prop_assert!(after.contains(&e));
        let mut other = joined(&later, &delta);
        other.join(&before);
        prop_assert_eq!(other, joined(&after, &later));
    }

    #[test]
    fn twopset_delta_joined_into_state_equals_mutation(
        s in twopset(), e in 0u8..32, remove in any::<bool>(), later in twopset()
    ) {
        let before = s.clone();
        let mut after = s;
        let delta = if remove { after.remove(e) } else { after.insert(e) };
        prop_assert_eq!(joined(&before, &delta), after.clone());
        prop_assert!(delta.len() + delta.tombstones().count() <= 1);
        prop_assert_eq!(delta.is_bottom(), before == after);
        let mut other = joined(&later, &delta);
        other.join(&before);
        prop_assert_eq!(other, joined(&after, &later));
    }

    /// Several replicas inserting (and, for the 2P-Set, removing), shipping deltas to
    /// one another and merging full states: every replica reads what the model says
    /// after every step. For the 2P-Set the model is the paper's (A, R) pair, so
    /// this also checks that storing A \ R and R instead loses nothing observable.
    /// Once all replicas have met, an element removed anywhere is absent everywhere
    /// and stays absent through any later insert (remove wins forever).
    #[test]
    fn twopset_reads_the_model(
        ops in prop::collection::vec((0usize..4, 0usize..4, 0u8..16, 0u8..4), 0..100)
    ) {
        const R: usize = 4;
        let mut replicas = vec![TwoPSet::<u8>::new(); R];
        let mut models = vec![Model::default(); R];
        for (i, j, e, kind) in ops {
            match kind {
                0 => {
                    let d = replicas[i].insert(e);
                    models[i].added.insert(e);
                    replicas[j].join(&d);
                    // A ⊥ delta means `e` was live or removed at i already.
                    if !d.is_bottom() {
                        models[j].added.insert(e);
                    }
                }
                1 => {
                    let d = replicas[i].remove(e);
                    models[i].removed.insert(e);
                    replicas[j].join(&d);
                    if !d.is_bottom() {
                        models[j].removed.insert(e);
                    }
                }
                _ => {
                    let from = replicas[i].clone();
                    replicas[j].join(&from);
                    let from = models[i].clone();
                    models[j].join(&from);
                }
            }
            for (s, m) in replicas.iter().zip(&models) {
                check_model(s, m)?;
            }
        }
        let mut all = TwoPSet::new();
        let mut model = Model::default();
        for (s, m) in replicas.iter().zip(&models) {
            all.join(s);
            model.join(m);
        }
        check_model(&all, &model)?;
        for e in &model.removed {
            prop_assert!(!all.contains(e));
            prop_assert!(all.insert(*e).is_bottom());
            prop_assert!(!all.contains(e));
        }
    }

    #[test]
    fn gset_reads_the_model(
        ops in prop::collection::vec((0usize..4, 0usize..4, 0u8..32, any::<bool>()), 0..100)
    ) {
        const R: usize = 4;
        let mut replicas = vec![GSet::<u8>::new(); R];
        let mut models = vec![BTreeSet::<u8>::new(); R];
        for (i, j, e, merge) in ops {
            if merge {
                let from = replicas[i].clone();
                replicas[j].join(&from);
                let from = models[i].clone();
                models[j].extend(from);
            } else {
                let d = replicas[i].insert(e);
                models[i].insert(e);
                replicas[j].join(&d);
                if !d.is_bottom() {
                    models[j].insert(e);
                }
            }
            for (s, m) in replicas.iter().zip(&models) {
                prop_assert_eq!(s.as_set(), m);
                prop_assert_eq!(s.len(), m.len());
            }
        }
    }

    /// Encodings round-trip and every strict prefix is an error; serde too.
    #[test]
    fn sets_round_trip(g in gset(), t in twopset()) {
        let bytes = g.to_bytes();
        prop_assert_eq!(GSet::<u8>::from_bytes(&bytes), Ok(g.clone()));
        for cut in 0..bytes.len() {
            prop_assert!(GSet::<u8>::from_bytes(&bytes[..cut]).is_err());
        }
        let bytes = t.to_bytes();
        prop_assert_eq!(TwoPSet::<u8>::from_bytes(&bytes), Ok(t.clone()));
        for cut in 0..bytes.len() {
            prop_assert!(TwoPSet::<u8>::from_bytes(&bytes[..cut]).is_err());
        }
        let wire = postcard::to_allocvec(&g).unwrap();
        prop_assert_eq!(postcard::from_bytes::<GSet<u8>>(&wire).unwrap(), g);
        let wire = postcard::to_allocvec(&t).unwrap();
        prop_assert_eq!(postcard::from_bytes::<TwoPSet<u8>>(&wire).unwrap(), t);
    }

    /// Acceptance item 5: any bytes decode to a value or a `DecodeError` without
    /// panicking; an accepted value is canonical (u128 elements are fixed-width, so
    /// the encoding is entirely the set's own) and joins into any state.
    #[test]
    fn arbitrary_bytes_never_panic_decoders_or_joins(
        bytes in peer_bytes(), g in gset(), t in twopset()
    ) {
        if let Ok(s) = GSet::<u8>::from_bytes(&bytes) {
            let mut g2 = g.clone();
            g2.join(&s);
            prop_assert_eq!(g2, joined(&s, &g));
        }
        if let Ok(s) = TwoPSet::<u8>::from_bytes(&bytes) {
            prop_assert!(s.iter().all(|e| !s.is_removed(e)));
            let mut t2 = t.clone();
            t2.join(&s);
            prop_assert_eq!(t2, joined(&s, &t));
        }
        if let Ok(s) = GSet::<u128>::from_bytes(&bytes) {
            prop_assert_eq!(s.to_bytes(), bytes.clone());
        }
        if let Ok(s) = TwoPSet::<u128>::from_bytes(&bytes) {
            prop_assert_eq!(s.to_bytes(), bytes.clone());
        }
        if let Ok(s) = GSet::<String>::from_bytes(&bytes) {
            prop_assert_eq!(GSet::<String>::from_bytes(&s.to_bytes()), Ok(s));
        }
        let _ = postcard::from_bytes::<GSet<u8>>(&bytes);
        let _ = postcard::from_bytes::<TwoPSet<u8>>(&bytes);
    }
}

fn widen<'a>(it: impl Iterator<Item = &'a u8>) -> BTreeSet<u128> {
    it.map(|e| u128::from(*e)).collect()
}

/// Bytes a peer could send: random, or a valid encoding with one byte changed,
/// inserted or removed.
fn peer_bytes() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop_oneof![
        gset().prop_map(|s| s.to_bytes()),
        twopset().prop_map(|s| s.to_bytes()),
        gset().prop_map(|s| widen(s.iter()).to_bytes()),
        twopset().prop_map(|s| {
            let mut v = widen(s.iter()).to_bytes();
            v.extend(widen(s.tombstones()).to_bytes());
            v
        }),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        valid.clone(),
        (valid, any::<usize>(), any::<u8>(), 0u8..3).prop_map(|(mut v, i, b, how)| {
            match how {
                0 if !v.is_empty() => {
                    let i = i % v.len();
                    v[i] = b;
                }
                1 => v.insert(i % (v.len() + 1), b),
                _ if !v.is_empty() => {
                    v.remove(i % v.len());
                }
                _ => v.push(b),
            }
            v
        }),
    ]
}

#[test]
fn removing_what_was_never_added_blocks_it_for_good() {
    let mut a = TwoPSet::new();
    let tombstone = a.remove("x");
    assert!(a.is_removed(&"x") && a.is_empty());
    assert!(a.insert("x").is_bottom());
    assert!(!a.contains(&"x"));
    // A replica that added "x" loses it when the tombstone arrives, even late.
    let mut b = TwoPSet::new();
    let _ = b.insert("x");
    let _ = b.insert("y");
    b.join(&tombstone);
    assert_eq!(b.iter().copied().collect::<Vec<_>>(), ["y"]);
}

#[test]
fn non_canonical_encodings_are_rejected() {
    // Out of order, duplicated.
    assert_eq!(GSet::<u8>::from_bytes(&[2, 5, 4]), Err(DecodeError::Order));
    assert_eq!(GSet::<u8>::from_bytes(&[2, 5, 5]), Err(DecodeError::Order));
    // A padded length.
    assert_eq!(
        GSet::<u8>::from_bytes(&[0x81, 0x00, 5]),
        Err(DecodeError::Varint)
    );
    // A lying length.
    assert_eq!(
        GSet::<u8>::from_bytes(&[0xff, 0xff, 0xff, 0x7f, 1]),
        Err(DecodeError::Truncated)
    );
    // An element both live and removed.
    assert!(matches!(
        TwoPSet::<u8>::from_bytes(&[2, 1, 2, 1, 2]),
        Err(DecodeError::Invalid(_))
    ));
    let both = postcard::to_allocvec(&(BTreeSet::from([1u8, 2]), BTreeSet::from([2u8]))).unwrap();
    assert!(postcard::from_bytes::<TwoPSet<u8>>(&both).is_err());
    let fine = postcard::to_allocvec(&(BTreeSet::from([1u8]), BTreeSet::from([2u8]))).unwrap();
    assert_eq!(
        postcard::from_bytes::<TwoPSet<u8>>(&fine).map(|s| s.len()),
        Ok(1)
    );
}

/// Differential runs against `crdts` 7.3's `GSet` (acceptance item 2): the same
/// inserts, deltas (crdts: ops) and merges give the same sets on every replica.
mod against_crdts {
    use super::*;
    use crdts::{CmRDT, CvRDT};

    const REPLICAS: usize = 5;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases(256)))]

        #[test]
        fn gset_reads_what_crdts_reads(
            ops in prop::collection::vec(
                (0usize..REPLICAS, 0usize..REPLICAS, any::<u16>(), 0u8..3), 0..150)
        ) {
            let mut ours = vec![GSet::<u16>::new(); REPLICAS];
            let mut theirs = vec![crdts::GSet::<u16>::new(); REPLICAS];
            for (i, j, e, kind) in ops {
                match kind {
                    // Insert at i, delta (crdts: the op) to j. A delta holds only
                    // news (⊥ if i had `e`), so the op goes only where it is new.
                    0 => {
                        let d = ours[i].insert(e);
                        ours[j].join(&d);
                        if !theirs[i].contains(&e) {
                            theirs[i].apply(e);
                            theirs[j].apply(e);
                        }
                    }
                    1 => {
                        let _ = ours[i].insert(e);
                        theirs[i].insert(e);
                    }
                    _ => {
                        let o = ours[i].clone();
                        ours[j].join(&o);
                        let t = theirs[i].clone();
                        theirs[j].merge(t);
                    }
                }
                for (o, t) in ours.iter().zip(&theirs) {
                    prop_assert_eq!(o.as_set(), &t.read());
                    prop_assert_eq!(o.contains(&e), t.contains(&e));
                }
            }
        }
    }
}
