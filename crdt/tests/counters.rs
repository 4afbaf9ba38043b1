//! G-Counter and PN-Counter (Shapiro et al. 2011, §3.1, Specifications 6–7) with delta mutators
//! (Almeida et al. 2018, §3): the semilattice laws, deltas, values against a model,
//! the codec, and differential runs against the `crdts` crate's counters.

use std::collections::BTreeMap;

use dsys_crdt::codec::{Decode, DecodeError, Encode};
use dsys_crdt::{GCounter, Lattice, PNCounter};
use proptest::prelude::*;

/// Cases per property: `default`, or `PROPTEST_CASES` when set (a soak run).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Counts: mostly small, sometimes near `u64::MAX` (where saturation and the u128 sum
/// matter).
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0..1_000u64, 1 => any::<u64>(), 1 => Just(u64::MAX)]
}

fn gcounter() -> impl Strategy<Value = GCounter<u8>> {
    prop::collection::vec((0u8..16, count()), 0..12).prop_map(|v| v.into_iter().collect())
}

fn pncounter() -> impl Strategy<Value = PNCounter<u8>> {
    (gcounter(), gcounter()).prop_map(|(p, n)| {
        let mut c = PNCounter::new();
        for (r, by) in p.iter() {
            let _ = c.increment(r, by);
        }
        for (r, by) in n.iter() {
            let _ = c.decrement(r, by);
        }
        c
    })
}

fn joined<L: Lattice>(a: &L, b: &L) -> L {
    let mut x = a.clone();
    x.join(b);
    x
}

/// What every state must satisfy: sorted, no zero entries, the cached value exact.
fn assert_invariants(c: &GCounter<u8>) {
    let entries: Vec<(u8, u64)> = c.iter().map(|(n, v)| (*n, v)).collect();
    assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "{entries:?}");
    assert!(entries.iter().all(|e| e.1 > 0), "{entries:?}");
    let sum: u128 = entries.iter().map(|e| u128::from(e.1)).sum();
    assert_eq!(c.value(), sum);
    assert_eq!(c.len(), entries.len());
    assert_eq!(c.is_bottom(), entries.is_empty());
}

/// The default `leq` (join and compare), to check the overrides against.
fn leq_by_join<L: Lattice + PartialEq>(a: &L, b: &L) -> bool {
    joined(b, a) == *b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    /// Shapiro et al. §2.2: join is a least upper bound, so commutative, associative
    /// and idempotent, with ⊥ as identity; `leq` is the order it induces.
    #[test]
    fn gcounter_join_is_a_semilattice(a in gcounter(), b in gcounter(), c in gcounter()) {
        prop_assert_eq!(joined(&a, &b), joined(&b, &a));
        prop_assert_eq!(joined(&joined(&a, &b), &c), joined(&a, &joined(&b, &c)));
        prop_assert_eq!(joined(&a, &a), a.clone());
        prop_assert_eq!(joined(&a, &GCounter::bottom()), a.clone());
        prop_assert_eq!(joined(&GCounter::bottom(), &a), a.clone());
        let ab = joined(&a, &b);
        assert_invariants(&ab);
        prop_assert!(a.leq(&ab) && b.leq(&ab));
        prop_assert_eq!(a.leq(&b), leq_by_join(&a, &b));
        prop_assert_eq!(b.leq(&a), leq_by_join(&b, &a));
        prop_assert!(GCounter::bottom().leq(&a));
        // Per replica, the join is the maximum.
        for r in 0u8..16 {
            prop_assert_eq!(ab.get(&r), a.get(&r).max(b.get(&r)));
        }
    }

    /// The join's three paths (a walk, binary searches for a much smaller side, one
    /// or many inserted replicas) all compute the per-replica maximum, whatever the
    /// sizes.
    #[test]
    fn gcounter_join_is_the_per_replica_max(
        a in prop::collection::vec((any::<u8>(), count()), 0..200),
        b in prop::collection::vec((any::<u8>(), count()), 0..200),
        small in 0usize..4,
    ) {
        let b = &b[..b.len().min(if small > 0 { small } else { b.len() })];
        let model = |v: &[(u8, u64)]| {
            let mut m = BTreeMap::<u8, u64>::new();
            for (r, c) in v {
                let e = m.entry(*r).or_default();
                *e = (*e).max(*c);
            }
            m.retain(|_, c| *c > 0);
            m
        };
        let mut want = model(&a);
        for (r, c) in model(b) {
            let e = want.entry(r).or_default();
            *e = (*e).max(c);
        }
        let (ga, gb): (GCounter<u8>, GCounter<u8>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        for ab in [joined(&ga, &gb), joined(&gb, &ga)] {
            assert_invariants(&ab);
            let got: BTreeMap<u8, u64> = ab.iter().map(|(r, c)| (*r, c)).collect();
            prop_assert_eq!(&got, &want);
            // Lookups (present and absent replicas) at every size.
            for r in 0..=u8::MAX {
                prop_assert_eq!(ab.get(&r), want.get(&r).copied().unwrap_or(0));
            }
        }
    }

    #[test]
    fn pncounter_join_is_a_semilattice(a in pncounter(), b in pncounter(), c in pncounter()) {
        prop_assert_eq!(joined(&a, &b), joined(&b, &a));
        prop_assert_eq!(joined(&joined(&a, &b), &c), joined(&a, &joined(&b, &c)));
        prop_assert_eq!(joined(&a, &a), a.clone());
        prop_assert_eq!(joined(&a, &PNCounter::bottom()), a.clone());
        let ab = joined(&a, &b);
        prop_assert!(a.leq(&ab) && b.leq(&ab));
        prop_assert_eq!(a.leq(&b), leq_by_join(&a, &b));
        prop_assert_eq!(
            ab.value(),
            ab.increments().value() as i128 - ab.decrements().value() as i128
        );
    }

    /// Almeida et al. §3: m(X) = X ⊔ mδ(X). The delta is one entry
    /// (or ⊥ when the increment changed nothing), and joining it twice or late does no
    /// harm.
    #[test]
    fn gcounter_delta_joined_into_state_equals_mutation(
        s in gcounter(), r in 0u8..16, by in count(), later in gcounter()
    ) {
        let before = s.clone();
        let mut after = s;
        let delta = after.increment(&r, by);
        assert_invariants(&after);
        prop_assert_eq!(joined(&before, &delta), after.clone());
        prop_assert!(delta.len() <= 1);
        prop_assert_eq!(delta.is_bottom(), after == before);
        prop_assert_eq!(after.get(&r), before.get(&r).saturating_add(by));
        // Delivered after other updates, and twice: still the same as the state.
        let mut other = joined(&before, &later);
        other.join(&delta);
        other.join(&delta);
        prop_assert_eq!(other, joined(&after, &later));
    }

    #[test]
    fn pncounter_delta_joined_into_state_equals_mutation(
        s in pncounter(), r in 0u8..16, by in count(), up in any::<bool>()
    ) {
        let before = s.clone();
        let mut after = s;
        let delta = if up { after.increment(&r, by) } else { after.decrement(&r, by) };
        prop_assert_eq!(joined(&before, &delta), after.clone());
        prop_assert!(delta.increments().len() + delta.decrements().len() <= 1);
        prop_assert_eq!(delta.is_bottom(), after == before);
    }

    /// Several replicas, each incrementing only its own entry, exchanging full states
    /// or deltas in any order: every replica reads the model's sum of what it has seen
    /// (per replica, the largest count seen), and once all have met, the sum of all
    /// increments.
    #[test]
    fn gcounter_reads_the_model(
        ops in prop::collection::vec((0usize..4, 0usize..4, 0u64..1_000, 0u8..3), 0..80)
    ) {
        const R: usize = 4;
        let mut replicas = vec![GCounter::<u8>::new(); R];
        let mut model: Vec<BTreeMap<u8, u64>> = vec![BTreeMap::new(); R];
        let mut total = 0u128;
        for (i, j, by, kind) in ops {
            match kind {
                // Increment at i, delta delivered to j.
                0 => {
                    let d = replicas[i].increment(&(i as u8), by);
                    *model[i].entry(i as u8).or_default() += by;
                    total += u128::from(by);
                    replicas[j].join(&d);
                    // An increment by zero changes nothing: its delta is ⊥.
                    if by > 0 {
                        let mine = model[i][&(i as u8)];
                        let e = model[j].entry(i as u8).or_default();
                        *e = (*e).max(mine);
                    }
                }
                // Increment at i, delta kept.
                1 => {
                    let _ = replicas[i].increment(&(i as u8), by);
                    *model[i].entry(i as u8).or_default() += by;
                    total += u128::from(by);
                }
                // Full state i → j.
                _ => {
                    let from = replicas[i].clone();
                    replicas[j].join(&from);
                    let from = model[i].clone();
                    for (r, c) in from {
                        let e = model[j].entry(r).or_default();
                        *e = (*e).max(c);
                    }
                }
            }
            for k in 0..R {
                let want: u128 = model[k].values().map(|c| u128::from(*c)).sum();
                prop_assert_eq!(replicas[k].value(), want);
                assert_invariants(&replicas[k]);
            }
        }
        let mut all = GCounter::new();
        for r in &replicas {
            all.join(r);
        }
        prop_assert_eq!(all.value(), total);
    }

    #[test]
    fn pncounter_reads_the_model(
        ops in prop::collection::vec((0usize..4, 0usize..4, 0u64..1_000, 0u8..3), 0..80)
    ) {
        const R: usize = 4;
        let mut replicas = vec![PNCounter::<u8>::new(); R];
        let mut net = 0i128;
        for (i, j, by, kind) in ops {
            match kind {
                0 => {
                    let d = replicas[i].increment(&(i as u8), by);
                    net += i128::from(by);
                    replicas[j].join(&d);
                }
                1 => {
                    let d = replicas[i].decrement(&(i as u8), by);
                    net -= i128::from(by);
                    replicas[j].join(&d);
                }
                _ => {
                    let from = replicas[i].clone();
                    replicas[j].join(&from);
                }
            }
        }
        let mut all = PNCounter::new();
        for r in &replicas {
            all.join(r);
        }
        prop_assert_eq!(all.value(), net);
        for r in &mut replicas {
            r.join(&all);
            prop_assert_eq!(r.value(), net);
        }
    }

    /// Encodings round-trip, are canonical (decoding then re-encoding any accepted
    /// bytes gives the same bytes), and every strict prefix is an error.
    #[test]
    fn counters_round_trip(g in gcounter(), p in pncounter()) {
        let bytes = g.to_bytes();
        prop_assert_eq!(GCounter::<u8>::from_bytes(&bytes), Ok(g.clone()));
        for cut in 0..bytes.len() {
            prop_assert!(GCounter::<u8>::from_bytes(&bytes[..cut]).is_err());
        }
        let bytes = p.to_bytes();
        prop_assert_eq!(PNCounter::<u8>::from_bytes(&bytes), Ok(p.clone()));
        for cut in 0..bytes.len() {
            prop_assert!(PNCounter::<u8>::from_bytes(&bytes[..cut]).is_err());
        }
        // serde (postcard) round trip.
        let wire = postcard::to_allocvec(&g).unwrap();
        prop_assert_eq!(postcard::from_bytes::<GCounter<u8>>(&wire).unwrap(), g);
        let wire = postcard::to_allocvec(&p).unwrap();
        prop_assert_eq!(postcard::from_bytes::<PNCounter<u8>>(&wire).unwrap(), p);
    }

    /// Acceptance item 5: whatever bytes a peer sends (random, or a valid encoding
    /// with a byte changed, inserted or removed), decoding returns a value or a
    /// `DecodeError` without panicking, an accepted value is canonical (it re-encodes
    /// to the very bytes), and joining it into any state keeps every invariant.
    #[test]
    fn arbitrary_bytes_never_panic_decoders_or_joins(
        bytes in peer_bytes(), s in gcounter(), p in pncounter()
    ) {
        if let Ok(c) = GCounter::<u8>::from_bytes(&bytes) {
            assert_invariants(&c);
            prop_assert_eq!(GCounter::<u8>::from_bytes(&c.to_bytes()), Ok(c.clone()));
            let mut s2 = s.clone();
            s2.join(&c);
            assert_invariants(&s2);
            prop_assert_eq!(s2, joined(&c, &s));
        }
        // u128 ids are fixed-width, so the whole encoding is the counter's own.
        if let Ok(c) = GCounter::<u128>::from_bytes(&bytes) {
            prop_assert_eq!(c.to_bytes(), bytes.clone());
            let mut s2 = widen(&s);
            s2.join(&c);
            prop_assert!(c.leq(&s2));
        }
        if let Ok(c) = PNCounter::<u128>::from_bytes(&bytes) {
            prop_assert_eq!(c.to_bytes(), bytes.clone());
        }
        if let Ok(c) = GCounter::<String>::from_bytes(&bytes) {
            prop_assert_eq!(GCounter::<String>::from_bytes(&c.to_bytes()), Ok(c));
        }
        if let Ok(c) = PNCounter::<u8>::from_bytes(&bytes) {
            let mut p2 = p.clone();
            p2.join(&c);
            prop_assert_eq!(p2, joined(&c, &p));
        }
        let _ = postcard::from_bytes::<GCounter<u8>>(&bytes);
        let _ = postcard::from_bytes::<PNCounter<u8>>(&bytes);
    }
}

fn widen(c: &GCounter<u8>) -> GCounter<u128> {
    c.iter().map(|(n, v)| (u128::from(*n), v)).collect()
}

/// Bytes a peer could send: random, or a valid encoding (of a G-Counter or a
/// PN-Counter, with 1-byte or 16-byte ids) with one byte changed, inserted or removed.
fn peer_bytes() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop_oneof![
        gcounter().prop_map(|c| c.to_bytes()),
        gcounter().prop_map(|c| widen(&c).to_bytes()),
        pncounter().prop_map(|c| c.to_bytes()),
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

/// The largest states a peer can send: every count `u64::MAX`. The cached u128 sum
/// stays exact and nothing panics.
#[test]
fn maximal_counts_join_without_overflow() {
    let a: GCounter<u32> = (0..10_000u32).map(|r| (r, u64::MAX)).collect();
    let b: GCounter<u32> = (5_000..15_000u32).map(|r| (r, u64::MAX)).collect();
    let mut ab = a.clone();
    ab.join(&b);
    assert_eq!(ab.value(), 15_000 * u128::from(u64::MAX));
    let mut p = PNCounter::<u32>::new();
    let _ = p.decrement(&1, u64::MAX);
    let _ = p.decrement(&2, u64::MAX);
    assert_eq!(p.value(), -2 * i128::from(u64::MAX));
    let bytes = ab.to_bytes();
    assert_eq!(GCounter::<u32>::from_bytes(&bytes), Ok(ab));
}

#[test]
fn non_canonical_encodings_are_rejected() {
    // Zero count.
    assert!(matches!(
        GCounter::<u8>::from_bytes(&[1, 7, 0]),
        Err(DecodeError::Invalid(_))
    ));
    // Unsorted, duplicated.
    assert_eq!(
        GCounter::<u8>::from_bytes(&[2, 7, 1, 6, 1]),
        Err(DecodeError::Order)
    );
    assert_eq!(
        GCounter::<u8>::from_bytes(&[2, 7, 1, 7, 2]),
        Err(DecodeError::Order)
    );
    // A lying length: rejected before any allocation is sized from it.
    assert_eq!(
        GCounter::<u8>::from_bytes(&[0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1]),
        Err(DecodeError::Truncated)
    );
    // An over-long count varint (1 written in two bytes).
    assert_eq!(
        GCounter::<u8>::from_bytes(&[1, 7, 0x81, 0x00]),
        Err(DecodeError::Varint)
    );
    // Trailing bytes.
    assert_eq!(
        GCounter::<u8>::from_bytes(&[0, 0]),
        Err(DecodeError::Trailing(1))
    );
    // serde goes through the same check.
    let unsorted = postcard::to_allocvec(&vec![(7u8, 1u64), (6, 1)]).unwrap();
    assert!(postcard::from_bytes::<GCounter<u8>>(&unsorted).is_err());
    let zero = postcard::to_allocvec(&vec![(7u8, 0u64)]).unwrap();
    assert!(postcard::from_bytes::<GCounter<u8>>(&zero).is_err());
}

/// Differential runs against `crdts` 7.3 (acceptance item 2).
mod against_crdts {
    use super::*;
    use crdts::{CmRDT, CvRDT};

    #[derive(Debug, Clone)]
    enum Op {
        /// Replica `at` adds `by`; its delta (crdts: its op) also goes to `to`.
        Inc { at: usize, to: usize, by: u64 },
        /// Replica `at` subtracts `by` (PN only); the delta goes to `to`.
        Dec { at: usize, to: usize, by: u64 },
        /// Full state `from` → `to`.
        Merge { from: usize, to: usize },
    }

    const REPLICAS: usize = 5;

    fn op(dec: bool) -> impl Strategy<Value = Op> {
        let r = 0..REPLICAS;
        let inc =
            (r.clone(), r.clone(), 0u64..10_000).prop_map(|(at, to, by)| Op::Inc { at, to, by });
        let d =
            (r.clone(), r.clone(), 0u64..10_000).prop_map(|(at, to, by)| Op::Dec { at, to, by });
        let merge = (r.clone(), r).prop_map(|(from, to)| Op::Merge { from, to });
        if dec {
            prop_oneof![3 => inc, 2 => d, 2 => merge].boxed()
        } else {
            prop_oneof![3 => inc, 2 => merge].boxed()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases(256)))]

        #[test]
        fn gcounter_reads_what_crdts_reads(ops in prop::collection::vec(op(false), 0..120)) {
            let mut ours = vec![GCounter::<u8>::new(); REPLICAS];
            let mut theirs = vec![crdts::GCounter::<u8>::new(); REPLICAS];
            for op in ops {
                match op {
                    Op::Inc { at, to, by } => {
                        let d = ours[at].increment(&(at as u8), by);
                        ours[to].join(&d);
                        let dot = theirs[at].inc_many(at as u8, by);
                        theirs[at].apply(dot);
                        // Our delta of a zero increment is ⊥; crdts' op would
                        // re-send the whole entry, so deliver it only when it moves.
                        if by > 0 {
                            theirs[to].apply(dot);
                        }
                    }
                    Op::Merge { from, to } => {
                        let o = ours[from].clone();
                        ours[to].join(&o);
                        let t = theirs[from].clone();
                        theirs[to].merge(t);
                    }
                    Op::Dec { .. } => unreachable!(),
                }
                for (o, t) in ours.iter().zip(&theirs) {
                    prop_assert_eq!(o.value().to_string(), t.read().to_string());
                }
            }
        }

        #[test]
        fn pncounter_reads_what_crdts_reads(ops in prop::collection::vec(op(true), 0..120)) {
            let mut ours = vec![PNCounter::<u8>::new(); REPLICAS];
            let mut theirs = vec![crdts::PNCounter::<u8>::new(); REPLICAS];
            for op in ops {
                match op {
                    Op::Inc { at, to, by } => {
                        let d = ours[at].increment(&(at as u8), by);
                        ours[to].join(&d);
                        let o = theirs[at].inc_many(at as u8, by);
                        theirs[at].apply(o.clone());
                        // Our delta of a zero increment is ⊥; crdts' op would
                        // re-send the whole entry, so deliver it only when it moves.
                        if by > 0 {
                            theirs[to].apply(o);
                        }
                    }
                    Op::Dec { at, to, by } => {
                        let d = ours[at].decrement(&(at as u8), by);
                        ours[to].join(&d);
                        let o = theirs[at].dec_many(at as u8, by);
                        theirs[at].apply(o.clone());
                        // Our delta of a zero increment is ⊥; crdts' op would
                        // re-send the whole entry, so deliver it only when it moves.
                        if by > 0 {
                            theirs[to].apply(o);
                        }
                    }
                    Op::Merge { from, to } => {
                        let o = ours[from].clone();
                        ours[to].join(&o);
                        let t = theirs[from].clone();
                        theirs[to].merge(t);
                    }
                }
                for (o, t) in ours.iter().zip(&theirs) {
                    prop_assert_eq!(o.value().to_string(), t.read().to_string());
                }
            }
        }
    }
}

/// The data types ask only for the suite's id bound set (`dsys_clocks::NodeId`): an id
/// with no codec (here `&str`, which cannot be decoded) works in memory; the codec and
/// `Replica` ask for `dsys_crdt::NodeId`.
#[test]
fn ids_without_a_codec_work_in_memory() {
    let mut a = GCounter::<&str>::new();
    let mut b = GCounter::<&str>::new();
    let _ = a.increment(&"seoul", 2);
    let _ = b.increment(&"tokyo", 3);
    a.join(&b);
    assert_eq!(a.value(), 5);
    let mut p = PNCounter::<std::net::SocketAddr>::new();
    let _ = p.decrement(&"127.0.0.1:7000".parse().unwrap(), 4);
    assert_eq!(p.value(), -4);
}
