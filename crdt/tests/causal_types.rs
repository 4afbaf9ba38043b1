//! The causal types (Almeida, Shoker, Baquero, "Delta state replicated data
//! types", 2018, §5): `CausalContext`, `ORSet` (AWSet), `MvRegister` (MVReg),
//! `LwwRegister` and `ORMap`.
//!
//! Every type is checked for
//! - the join laws (commutative, associative, idempotent, ⊥ a unit, `leq`
//!   agreeing with join) over states and deltas of random histories, including
//!   histories where two replicas forge each other's dots (a peer's worst input);
//! - the delta-mutator property (§3, Definition 1): `old ⊔ m^δ(old) = m(old)`, at
//!   every mutation;
//! - delta groups: joining every delta, in any order and with duplicates, gives
//!   the join of every replica's state;
//! - the observable values against a causal-history specification: each replica
//!   tracks the set of events it has seen, and the value is computed from that
//!   set (add wins over a concurrent remove, a remove removes the adds it saw,
//!   MV-register siblings are the writes no later write saw, LWW is the greatest
//!   `(timestamp, replica, value)`);
//! - codec and serde round trips, and decoders on arbitrary and mutated bytes:
//!   never a panic, and whatever decodes keeps the invariants (every store dot in
//!   the context, a compact context) and joins lawfully.
//!
//! proptest prints the failing history (and saves its seed) on failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use dsys_clocks::{Dot, Timestamp};
use dsys_crdt::codec::{Decode, DecodeError, Encode, get_u8, put_uvarint};
use dsys_crdt::{CausalContext, Lattice, LwwRegister, MvRegister, ORMap, ORSet};
use proptest::collection::vec;
use proptest::prelude::*;

const REPLICAS: usize = 4;

// ---------------------------------------------------------------------------
// A replicated run with causal histories
// ---------------------------------------------------------------------------

/// One step of a run: a local mutation at a replica, or a full-state merge.
#[derive(Debug, Clone)]
enum Step<O> {
    Local(usize, O),
    Merge { from: usize, to: usize },
}

fn steps<O: Debug + Clone>(op: impl Strategy<Value = O>) -> impl Strategy<Value = Vec<Step<O>>> {
    let step = prop_oneof![
        3 => (0..REPLICAS, op).prop_map(|(r, o)| Step::Local(r, o)),
        2 => (0..REPLICAS, 0..REPLICAS).prop_map(|(from, to)| Step::Merge { from, to }),
    ];
    vec(step, 0..40)
}

/// Replicas of `S`, the deltas they produced, and the causal history of the run:
/// event `i` is the `i`-th local step, `past[i]` the events its replica had seen
/// when it ran, `seen[r]` the events replica `r` has seen.
struct Run<S, O> {
    states: Vec<S>,
    deltas: Vec<S>,
    ops: Vec<(u32, O)>,
    past: Vec<BTreeSet<usize>>,
    seen: Vec<BTreeSet<usize>>,
}

impl<S: Lattice + PartialEq + Debug, O: Clone> Run<S, O> {
    /// Runs `steps` with replica `r` named `ids[r]`. `mutate` applies a local op
    /// and returns its delta; after every step `check` sees the run and the
    /// replica that changed. The delta property is asserted when `check_delta`.
    fn new(
        steps: &[Step<O>],
        ids: [u32; REPLICAS],
        check_delta: bool,
        mut mutate: impl FnMut(&mut S, u32, &O) -> S,
        mut check: impl FnMut(&Self, usize),
    ) -> Self {
        let mut run = Self {
            states: (0..REPLICAS).map(|_| S::bottom()).collect(),
            deltas: Vec::new(),
            ops: Vec::new(),
            past: Vec::new(),
            seen: vec![BTreeSet::new(); REPLICAS],
        };
        for step in steps {
            let changed = match step {
                Step::Local(r, op) => {
                    let old = run.states[*r].clone();
                    let delta = mutate(&mut run.states[*r], ids[*r], op);
                    if check_delta {
                        let mut joined = old;
                        joined.join(&delta);
                        assert_eq!(joined, run.states[*r], "old ⊔ delta ≠ mutated state");
                    }
                    run.deltas.push(delta);
                    let id = run.ops.len();
                    run.ops.push((ids[*r], op.clone()));
                    run.past.push(run.seen[*r].clone());
                    run.seen[*r].insert(id);
                    *r
                }
                Step::Merge { from, to } => {
                    let other = run.states[*from].clone();
                    run.states[*to].join(&other);
                    let seen = run.seen[*from].clone();
                    run.seen[*to].extend(seen);
                    *to
                }
            };
            check(&run, changed);
        }
        run
    }

    /// Whether some event replica `r` has seen matches `pred` and had seen `event`.
    fn overtaken(&self, r: usize, event: usize, pred: impl Fn(&O) -> bool) -> bool {
        self.seen[r]
            .iter()
            .any(|&x| pred(&self.ops[x].1) && self.past[x].contains(&event))
    }

    /// The states and deltas of the run, for the laws.
    fn pool(&self) -> Vec<S> {
        let mut pool = self.states.clone();
        pool.extend(self.deltas.iter().cloned());
        pool.push(S::bottom());
        pool
    }
}

fn join<S: Lattice>(a: &S, b: &S) -> S {
    let mut j = a.clone();
    j.join(b);
    j
}

/// Commutative, associative, idempotent, ⊥ a unit, `leq` is the join order.
fn assert_laws<S: Lattice + PartialEq + Debug>(a: &S, b: &S, c: &S) {
    assert_eq!(join(a, b), join(b, a), "commutativity");
    assert_eq!(join(&join(a, b), c), join(a, &join(b, c)), "associativity");
    assert_eq!(join(a, a), *a, "idempotence");
    assert_eq!(join(a, &S::bottom()), *a, "⊥ is a unit");
    assert!(S::bottom().is_bottom());
    assert_eq!(a.is_bottom(), *a == S::bottom());
    assert_eq!(a.leq(b), join(a, b) == *b, "leq is the join order");
    assert!(a.leq(&join(a, b)) && b.leq(&join(a, b)));
}

fn assert_laws_over<S: Lattice + PartialEq + Debug>(pool: &[S], picks: &[(usize, usize, usize)]) {
    for &(i, j, k) in picks {
        let n = pool.len();
        assert_laws(&pool[i % n], &pool[j % n], &pool[k % n]);
    }
}

/// Joining every delta, in a shuffled order with duplicates, gives the join of
/// every replica (each state is a join of deltas; each delta is below its
/// replica's final state).
fn assert_delta_groups<S: Lattice + PartialEq + Debug, O: Clone>(run: &Run<S, O>, seed: u64) {
    let all_states = run.states.iter().fold(S::bottom(), |acc, s| join(&acc, s));
    let mut order: Vec<usize> = (0..run.deltas.len())
        .chain(0..run.deltas.len() / 2)
        .collect();
    fastrand::Rng::with_seed(seed).shuffle(&mut order);
    let mut group = S::bottom();
    for i in order {
        group.join(&run.deltas[i]);
    }
    assert_eq!(group, all_states);
}

fn assert_round_trip<S: Encode + Decode + PartialEq + Debug>(s: &S) {
    let bytes = s.to_bytes();
    assert_eq!(S::from_bytes(&bytes).as_ref(), Ok(s));
    for cut in 0..bytes.len() {
        assert!(S::from_bytes(&bytes[..cut]).is_err(), "truncated at {cut}");
    }
}

fn assert_serde_round_trip<S>(s: &S)
where
    S: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Debug,
{
    let bytes = postcard::to_allocvec(s).expect("serializes");
    assert_eq!(&postcard::from_bytes::<S>(&bytes).expect("deserializes"), s);
}

fn picks() -> impl Strategy<Value = Vec<(usize, usize, usize)>> {
    vec((0..64usize, 0..64usize, 0..64usize), 8)
}

/// Two replicas under each id: they issue the same dots for different updates,
/// the forged input a misbehaving peer could send.
const FORGED: [u32; REPLICAS] = [0, 1, 0, 1];
const IDS: [u32; REPLICAS] = [0, 1, 2, 3];

// ---------------------------------------------------------------------------
// Invariants a decoded value must keep
// ---------------------------------------------------------------------------

fn check_context(c: &CausalContext<u32>) {
    for d in c.cloud() {
        assert!(
            d.counter > c.version_vector().get(&d.node) + 1,
            "context not compact"
        );
    }
    for (_, n) in c.version_vector().iter() {
        assert!(n > 0);
    }
}

fn check_orset(s: &ORSet<u32, u8>) {
    check_orset_generic(s);
    for (_, dots) in s.dots() {
        assert!(dots.windows(2).all(|w| w[0] < w[1]));
    }
}

fn check_mvreg(s: &MvRegister<u32, u8>) {
    check_context(s.context());
    let dots: Vec<_> = s.dots().map(|(d, _)| d.clone()).collect();
    assert!(dots.windows(2).all(|w| w[0] < w[1]));
    assert!(
        dots.iter()
            .all(|d| d.counter > 0 && s.context().contains(d))
    );
}

/// Arbitrary bytes never panic the decoder; what decodes keeps the invariants,
/// re-encodes to a value that decodes equal, and joins lawfully with `valid`.
fn fuzz_decode<S>(bytes: &[u8], valid: &S, check: impl Fn(&S))
where
    S: Decode + Encode + Lattice + PartialEq + Debug,
{
    if let Ok(s) = S::from_bytes(bytes) {
        check(&s);
        assert_eq!(S::from_bytes(&s.to_bytes()).as_ref(), Ok(&s));
        assert_laws(&s, valid, &S::bottom());
        check(&join(&s, valid));
    }
}

/// `bytes` with a few bytes overwritten, truncated or extended.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(at, b) in edits {
        if bytes.is_empty() {
            bytes.push(b);
        } else {
            let i = at % bytes.len();
            bytes[i] = b;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % (bytes.len() + 1));
    }
    bytes
}

// ---------------------------------------------------------------------------
// CausalContext
// ---------------------------------------------------------------------------

fn dot_sets() -> impl Strategy<Value = Vec<(u32, u64)>> {
    vec((0..3u32, 1..9u64), 0..16)
}

fn context(dots: &[(u32, u64)]) -> CausalContext<u32> {
    dots.iter().map(|&(n, c)| Dot::new(n, c)).collect()
}

proptest! {
    /// A context is the set of its dots: membership, union and inclusion match
    /// `BTreeSet`, and equal sets give equal (canonical) contexts whatever the
    /// insertion order.
    #[test]
    fn context_is_a_dot_set(a in dot_sets(), b in dot_sets(), c in dot_sets()) {
        let set = |d: &[(u32, u64)]| d.iter().copied().collect::<BTreeSet<_>>();
        let (ca, cb, cc) = (context(&a), context(&b), context(&c));
        for n in 0..3 {
            for k in 0..10 {
                prop_assert_eq!(ca.contains(&Dot::new(n, k)), k == 0 || set(&a).contains(&(n, k)));
            }
        }
        let union: Vec<_> = set(&a).union(&set(&b)).copied().collect();
        let mut reversed = union.clone();
        reversed.reverse();
        prop_assert_eq!(join(&ca, &cb), context(&union));
        prop_assert_eq!(context(&reversed), context(&union));
        prop_assert_eq!(ca.leq(&cb), set(&a).is_subset(&set(&b)));
        check_context(&join(&ca, &cb));
        assert_laws(&ca, &cb, &cc);
        assert_round_trip(&ca);
        assert_serde_round_trip(&ca);
        let mut compacted = ca.clone();
        compacted.compact();
        prop_assert_eq!(&compacted, &ca);
    }

    /// `next_dot` passes every dot seen of its node, the cloud's included.
    #[test]
    fn next_dot_is_fresh(a in dot_sets(), node in 0..4u32) {
        let mut c = context(&a);
        let max = a.iter().filter(|d| d.0 == node).map(|d| d.1).max().unwrap_or(0);
        let dot = c.next_dot(&node).expect("dot_sets stay far below u64::MAX");
        prop_assert_eq!(dot.clone(), Dot::new(node, max + 1));
        prop_assert!(c.contains(&dot));
        check_context(&c);
    }

    #[test]
    fn context_decoder_survives_any_bytes(
        bytes in vec(any::<u8>(), 0..32),
        a in dot_sets(),
        edits in vec((any::<usize>(), any::<u8>()), 1..3),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let valid = context(&a);
        fuzz_decode(&bytes, &valid, check_context);
        fuzz_decode(&mutate(valid.to_bytes(), &edits, cut), &valid, check_context);
        for bytes in [bytes, mutate(postcard::to_allocvec(&valid).unwrap(), &edits, cut)] {
            if let Ok(c) = postcard::from_bytes::<CausalContext<u32>>(&bytes) {
                check_context(&c);
                assert_laws(&c, &valid, &CausalContext::bottom());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// ORSet
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum SetOp {
    Add(u8),
    Remove(u8),
    Clear,
}

fn set_op() -> impl Strategy<Value = SetOp> {
    prop_oneof![
        4 => (0..6u8).prop_map(SetOp::Add),
        3 => (0..6u8).prop_map(SetOp::Remove),
        1 => Just(SetOp::Clear),
    ]
}

fn apply_set(s: &mut ORSet<u32, u8>, id: u32, op: &SetOp) -> ORSet<u32, u8> {
    match op {
        SetOp::Add(e) => s.add(&id, *e),
        SetOp::Remove(e) => s.remove(e),
        SetOp::Clear => s.clear(),
    }
}

/// Add-wins (§5, AWSet): `e` is in replica `r` iff `r` has seen an add of `e`
/// that no remove of `e` (or clear) it has seen had seen.
fn set_spec(run: &Run<ORSet<u32, u8>, SetOp>, r: usize) -> BTreeSet<u8> {
    run.seen[r]
        .iter()
        .filter_map(|&a| match run.ops[a].1 {
            SetOp::Add(e) => Some((a, e)),
            _ => None,
        })
        .filter(|&(a, e)| {
            !run.overtaken(r, a, |op| match op {
                SetOp::Remove(x) => *x == e,
                SetOp::Clear => true,
                SetOp::Add(_) => false,
            })
        })
        .map(|(_, e)| e)
        .collect()
}

fn run_set(steps: &[Step<SetOp>]) -> Run<ORSet<u32, u8>, SetOp> {
    Run::new(steps, IDS, true, apply_set, |run, r| {
        let s = &run.states[r];
        let got: BTreeSet<u8> = s.iter().copied().collect();
        assert_eq!(got, set_spec(run, r), "replica {r}");
        assert_eq!(s.len(), got.len());
        assert!(got.iter().all(|e| s.contains(e)));
        check_orset(s);
    })
}

proptest! {
    #[test]
    fn orset_matches_the_add_wins_spec(steps in steps(set_op())) {
        run_set(&steps);
    }

    #[test]
    fn orset_join_laws(steps in steps(set_op()), picks in picks()) {
        assert_laws_over(&run_set(&steps).pool(), &picks);
    }

    #[test]
    fn orset_join_laws_with_forged_dots(steps in steps(set_op()), picks in picks()) {
        let run = Run::new(&steps, FORGED, false, apply_set, |run, r| check_orset(&run.states[r]));
        assert_laws_over(&run.pool(), &picks);
    }

    #[test]
    fn orset_deltas_join_to_the_states(steps in steps(set_op()), seed in any::<u64>()) {
        assert_delta_groups(&run_set(&steps), seed);
    }

    #[test]
    fn orset_round_trips(steps in steps(set_op())) {
        for s in run_set(&steps).pool() {
            assert_round_trip(&s);
            assert_serde_round_trip(&s);
        }
    }

    #[test]
    fn orset_decoder_survives_any_bytes(
        steps in steps(set_op()),
        noise in vec(any::<u8>(), 0..48),
        edits in vec((any::<usize>(), any::<u8>()), 1..3),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let run = Run::new(&steps, FORGED, false, apply_set, |_, _| {});
        let valid = join(&run.states[0], &run.states[1]);
        fuzz_decode(&noise, &valid, check_orset);
        let mutated = mutate(valid.to_bytes(), &edits, cut);
        fuzz_decode(&mutated, &valid, check_orset);
        let serde_mutated = mutate(postcard::to_allocvec(&valid).unwrap(), &edits, cut);
        if let Ok(s) = postcard::from_bytes::<ORSet<u32, u8>>(&serde_mutated) {
            check_orset(&s);
            assert_laws(&s, &valid, &ORSet::bottom());
        }
    }
}

#[test]
fn orset_concurrent_add_and_remove_add_wins() {
    let (mut a, mut b) = (ORSet::<u32, u8>::new(), ORSet::new());
    let d = a.add(&1, 7);
    b.join(&d);
    let readd = a.add(&1, 7);
    let rm = b.remove(&7);
    assert!(!b.contains(&7));
    b.join(&readd);
    a.join(&rm);
    assert!(a.contains(&7) && b.contains(&7));
    assert_eq!(a, b);
    // A remove that has seen every add removes the element everywhere.
    let rm = b.remove(&7);
    a.join(&rm);
    assert!(!a.contains(&7));
    // A stale state joined back does not resurrect it.
    a.join(&d);
    assert!(!a.contains(&7));
    // Sequential adds keep one dot per element.
    for _ in 0..5 {
        a.add(&1, 3);
    }
    assert_eq!(a.dots().find(|(e, _)| **e == 3).unwrap().1.len(), 1);
}

#[test]
fn orset_decoder_rejects_uncovered_dots() {
    let mut s = ORSet::<u32, u8>::new();
    s.add(&5, 1);
    let bytes = s.to_bytes();
    // context {5: 1}, no cloud; one element 1 with one dot (node #0, counter 1).
    assert_eq!(bytes, [1, 5, 1, 0, 1, 1, 1, 0, 1]);
    let mut forged = bytes.clone();
    forged[8] = 2; // counter 2: not in the context
    assert!(matches!(
        ORSet::<u32, u8>::from_bytes(&forged),
        Err(DecodeError::Invalid(_))
    ));
    forged[7] = 1; // node #1: the context names one node
    assert!(matches!(
        ORSet::<u32, u8>::from_bytes(&forged),
        Err(DecodeError::Invalid(_))
    ));
    // Two elements under one dot: context {5: 1}, elements 1 and 2 both at (#0, 1).
    assert_eq!(
        ORSet::<u32, u8>::from_bytes(&[1, 5, 1, 0, 2, 1, 1, 0, 1, 2, 1, 0, 1]),
        Err(DecodeError::Invalid("one dot under two elements"))
    );
    let mut no_dots = bytes.clone();
    no_dots[6] = 0;
    no_dots.truncate(7);
    assert!(ORSet::<u32, u8>::from_bytes(&no_dots).is_err());
}

// ---------------------------------------------------------------------------
// MvRegister
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum MvOp {
    Set(u8),
    Clear,
}

fn mv_op() -> impl Strategy<Value = MvOp> {
    prop_oneof![5 => (0..4u8).prop_map(MvOp::Set), 1 => Just(MvOp::Clear)]
}

fn apply_mv(s: &mut MvRegister<u32, u8>, id: u32, op: &MvOp) -> MvRegister<u32, u8> {
    match op {
        MvOp::Set(v) => s.set(&id, *v),
        MvOp::Clear => s.clear(),
    }
}

/// MVReg (§5): the siblings are the writes `r` has seen that no write or clear
/// it has seen had seen.
fn mv_spec(run: &Run<MvRegister<u32, u8>, MvOp>, r: usize) -> Vec<u8> {
    let mut values: Vec<u8> = run.seen[r]
        .iter()
        .filter_map(|&w| match run.ops[w].1 {
            MvOp::Set(v) => Some((w, v)),
            MvOp::Clear => None,
        })
        .filter(|&(w, _)| !run.overtaken(r, w, |_| true))
        .map(|(_, v)| v)
        .collect();
    values.sort_unstable();
    values
}

fn run_mv(steps: &[Step<MvOp>]) -> Run<MvRegister<u32, u8>, MvOp> {
    Run::new(steps, IDS, true, apply_mv, |run, r| {
        let mut got: Vec<u8> = run.states[r].values().copied().collect();
        got.sort_unstable();
        assert_eq!(got, mv_spec(run, r), "replica {r}");
        check_mvreg(&run.states[r]);
    })
}

proptest! {
    #[test]
    fn mvreg_matches_the_sibling_spec(steps in steps(mv_op())) {
        run_mv(&steps);
    }

    #[test]
    fn mvreg_join_laws(steps in steps(mv_op()), picks in picks()) {
        assert_laws_over(&run_mv(&steps).pool(), &picks);
    }

    #[test]
    fn mvreg_join_laws_with_forged_dots(steps in steps(mv_op()), picks in picks()) {
        let run = Run::new(&steps, FORGED, false, apply_mv, |run, r| check_mvreg(&run.states[r]));
        assert_laws_over(&run.pool(), &picks);
    }

    #[test]
    fn mvreg_deltas_join_to_the_states(steps in steps(mv_op()), seed in any::<u64>()) {
        assert_delta_groups(&run_mv(&steps), seed);
    }

    #[test]
    fn mvreg_round_trips(steps in steps(mv_op())) {
        for s in run_mv(&steps).pool() {
            assert_round_trip(&s);
            assert_serde_round_trip(&s);
        }
    }

    #[test]
    fn mvreg_decoder_survives_any_bytes(
        steps in steps(mv_op()),
        noise in vec(any::<u8>(), 0..48),
        edits in vec((any::<usize>(), any::<u8>()), 1..3),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let run = Run::new(&steps, FORGED, false, apply_mv, |_, _| {});
        let valid = join(&run.states[0], &run.states[1]);
        fuzz_decode(&noise, &valid, check_mvreg);
        fuzz_decode(&mutate(valid.to_bytes(), &edits, cut), &valid, check_mvreg);
        let serde_mutated = mutate(postcard::to_allocvec(&valid).unwrap(), &edits, cut);
        if let Ok(s) = postcard::from_bytes::<MvRegister<u32, u8>>(&serde_mutated) {
            check_mvreg(&s);
            assert_laws(&s, &valid, &MvRegister::bottom());
        }
    }
}

#[test]
fn mvreg_siblings_then_one_value() {
    let (mut a, mut b) = (MvRegister::<u32, u8>::new(), MvRegister::new());
    let da = a.set(&1, 10);
    let db = b.set(&2, 20);
    a.join(&db);
    b.join(&da);
    assert_eq!(a, b);
    assert_eq!(a.values().copied().collect::<Vec<_>>(), [10, 20]);
    let dc = b.set(&2, 30);
    a.join(&dc);
    assert_eq!(a.values().copied().collect::<Vec<_>>(), [30]);
    // An old sibling delivered again changes nothing.
    a.join(&da);
    assert_eq!(a.values().copied().collect::<Vec<_>>(), [30]);
}

// ---------------------------------------------------------------------------
// LwwRegister
// ---------------------------------------------------------------------------

/// A write at a timestamp from a small range (so timestamps tie often).
fn lww_op() -> impl Strategy<Value = (u64, u8)> {
    (0..6u64, 0..4u8)
}

fn apply_lww(s: &mut LwwRegister<u32, u8>, id: u32, &(ts, v): &(u64, u8)) -> LwwRegister<u32, u8> {
    s.set(&id, Timestamp::from_u64(ts), v)
}

/// The greatest `(timestamp, replica, value)` the replica has seen.
fn lww_spec(run: &Run<LwwRegister<u32, u8>, (u64, u8)>, r: usize) -> Option<(u64, u32, u8)> {
    run.seen[r]
        .iter()
        .map(|&w| {
            let (id, (ts, v)) = run.ops[w];
            (ts, id, v)
        })
        .max()
}

fn run_lww(
    steps: &[Step<(u64, u8)>],
    ids: [u32; REPLICAS],
) -> Run<LwwRegister<u32, u8>, (u64, u8)> {
    Run::new(steps, ids, true, apply_lww, |run, r| {
        let s = &run.states[r];
        let got = s
            .value()
            .map(|v| (s.timestamp().unwrap().to_u64(), *s.writer().unwrap(), *v));
        assert_eq!(got, lww_spec(run, r), "replica {r}");
    })
}

proptest! {
    #[test]
    fn lww_picks_the_greatest_timestamp_then_replica(steps in steps(lww_op())) {
        run_lww(&steps, IDS);
    }

    /// Forged ids repeat `(timestamp, replica)` with different values: the
    /// greater value wins, and the laws still hold.
    #[test]
    fn lww_join_laws(steps in steps(lww_op()), picks in picks(), forged in any::<bool>()) {
        let run = run_lww(&steps, if forged { FORGED } else { IDS });
        assert_laws_over(&run.pool(), &picks);
        assert_delta_groups(&run, 0);
        for s in run.pool() {
            assert_round_trip(&s);
            assert_serde_round_trip(&s);
        }
    }

    #[test]
    fn lww_decoder_survives_any_bytes(
        noise in vec(any::<u8>(), 0..24),
        steps in steps(lww_op()),
        edits in vec((any::<usize>(), any::<u8>()), 1..3),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let valid = run_lww(&steps, IDS).states[0].clone();
        fuzz_decode(&noise, &valid, |_: &LwwRegister<u32, u8>| {});
        fuzz_decode(&mutate(valid.to_bytes(), &edits, cut), &valid, |_: &LwwRegister<u32, u8>| {});
    }
}

#[test]
fn lww_tie_breaks() {
    let t = |ms| Timestamp::new(ms, 0).unwrap();
    let mut r = LwwRegister::<u32, &str>::new();
    assert!(!r.set(&1, t(5), "a").is_bottom());
    // Older timestamp: lost, ⊥ delta.
    assert!(r.set(&9, t(4), "b").is_bottom());
    // Same timestamp, greater replica: wins.
    r.set(&2, t(5), "c");
    assert_eq!((r.value(), r.writer()), (Some(&"c"), Some(&2)));
    // Same (timestamp, replica), different value (only forged input): the greater value.
    let mut forged = LwwRegister::new();
    forged.set(&2, t(5), "b");
    assert_eq!(join(&r, &forged), join(&forged, &r));
    assert_eq!(join(&forged, &r).value(), Some(&"c"));
}

// ---------------------------------------------------------------------------
// ORMap
// ---------------------------------------------------------------------------

/// A max-register: the smallest lattice with a non-trivial join, as map values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Max(u8);

impl Lattice for Max {
    fn join(&mut self, other: &Self) {
        self.0 = self.0.max(other.0);
    }
    fn bottom() -> Self {
        Max(0)
    }
    fn is_bottom(&self) -> bool {
        self.0 == 0
    }
}

impl Encode for Max {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0);
    }
}

impl Decode for Max {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        get_u8(input).map(Max)
    }
}

#[derive(Debug, Clone)]
enum MapOp {
    /// Raise the key's value to at least `x`.
    Update(u8, u8),
    Remove(u8),
    Clear,
}

fn map_op() -> impl Strategy<Value = MapOp> {
    prop_oneof![
        4 => (0..4u8, 0..8u8).prop_map(|(k, x)| MapOp::Update(k, x)),
        3 => (0..4u8).prop_map(MapOp::Remove),
        1 => Just(MapOp::Clear),
    ]
}

type MaxMap = ORMap<u32, u8, Max>;

fn apply_map(s: &mut MaxMap, id: u32, op: &MapOp) -> MaxMap {
    match op {
        MapOp::Update(k, x) => s.update(&id, *k, |v| {
            v.0 = v.0.max(*x);
            Max(*x)
        }),
        MapOp::Remove(k) => s.remove(k),
        MapOp::Clear => s.clear(),
    }
}

/// Keys are add-wins over updates (as `set_spec`); a present key's value is the
/// join of every update of it the replica has seen, removed ones included
/// (values are not reset).
fn map_spec(run: &Run<MaxMap, MapOp>, r: usize) -> BTreeMap<u8, u8> {
    let updates = || {
        run.seen[r].iter().filter_map(|&u| match run.ops[u].1 {
            MapOp::Update(k, x) => Some((u, k, x)),
            _ => None,
        })
    };
    updates()
        .filter(|&(u, k, _)| {
            !run.overtaken(r, u, |op| match op {
                MapOp::Remove(x) => *x == k,
                MapOp::Clear => true,
                MapOp::Update(..) => false,
            })
        })
        .map(|(_, k, _)| {
            let value = updates()
                .filter(|u| u.1 == k)
                .map(|u| u.2)
                .max()
                .unwrap_or(0);
            (k, value)
        })
        .collect()
}

fn check_map(s: &MaxMap) {
    check_orset_generic(s.key_set());
}

/// Dots non-empty per element, covered by the context, and each under one
/// element only.
fn check_orset_generic<T: Ord>(s: &ORSet<u32, T>) {
    check_context(s.context());
    let mut all = BTreeSet::new();
    for (_, dots) in s.dots() {
        assert!(!dots.is_empty());
        assert!(
            dots.iter()
                .all(|d| d.counter > 0 && s.context().contains(d))
        );
        assert!(
            dots.iter().all(|d| all.insert(d.clone())),
            "one dot under two elements"
        );
    }
}

fn run_map(steps: &[Step<MapOp>]) -> Run<MaxMap, MapOp> {
    Run::new(steps, IDS, true, apply_map, |run, r| {
        let s = &run.states[r];
        let got: BTreeMap<u8, u8> = s.iter().map(|(k, v)| (*k, v.0)).collect();
        assert_eq!(got, map_spec(run, r), "replica {r}");
        assert_eq!(s.len(), got.len());
        for (k, v) in &got {
            assert_eq!(s.get(k), Some(&Max(*v)));
        }
        check_map(s);
    })
}

proptest! {
    #[test]
    fn ormap_matches_the_spec(steps in steps(map_op())) {
        run_map(&steps);
    }

    #[test]
    fn ormap_join_laws(steps in steps(map_op()), picks in picks(), forged in any::<bool>()) {
        if forged {
            let run = Run::new(&steps, FORGED, false, apply_map, |run, r| check_map(&run.states[r]));
            assert_laws_over(&run.pool(), &picks);
        } else {
            assert_laws_over(&run_map(&steps).pool(), &picks);
        }
    }

    #[test]
    fn ormap_deltas_join_to_the_states(steps in steps(map_op()), seed in any::<u64>()) {
        assert_delta_groups(&run_map(&steps), seed);
    }

    #[test]
    fn ormap_round_trips(steps in steps(map_op())) {
        for s in run_map(&steps).pool() {
            assert_round_trip(&s);
            assert_serde_round_trip(&s);
        }
    }

    #[test]
    fn ormap_decoder_survives_any_bytes(
        steps in steps(map_op()),
        noise in vec(any::<u8>(), 0..48),
        edits in vec((any::<usize>(), any::<u8>()), 1..3),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let run = Run::new(&steps, FORGED, false, apply_map, |_, _| {});
        let valid = join(&run.states[0], &run.states[1]);
        fuzz_decode(&noise, &valid, check_map);
        fuzz_decode(&mutate(valid.to_bytes(), &edits, cut), &valid, check_map);
    }

    /// A map of OR-Sets (a CRDT of CRDTs): the laws and the delta property hold
    /// when values are themselves causal.
    #[test]
    fn ormap_of_orsets(steps in steps((0..3u8, set_op())), picks in picks()) {
        type SetMap = ORMap<u32, u8, ORSet<u32, u8>>;
        let run: Run<SetMap, _> = Run::new(
            &steps,
            IDS,
            true,
            |s: &mut SetMap, id: u32, (k, op): &(u8, SetOp)| match op {
                SetOp::Clear => s.remove(k),
                op => s.update(&id, *k, |set| apply_set(set, id, op)),
            },
            |_, _| {},
        );
        assert_laws_over(&run.pool(), &picks);
        assert_delta_groups(&run, 1);
        for s in run.pool() {
            assert_round_trip(&s);
            assert_serde_round_trip(&s);
        }
    }
}

#[test]
fn ormap_removed_key_keeps_its_value() {
    let mut m = MaxMap::new();
    m.update(&1, 7, |v| {
        v.0 = 5;
        Max(5)
    });
    m.remove(&7);
    assert_eq!(m.get(&7), None);
    assert!(m.is_empty());
    // Re-adding joins onto the old value (no reset).
    m.update(&1, 7, |v| {
        v.0 = v.0.max(2);
        Max(2)
    });
    assert_eq!(m.get(&7), Some(&Max(5)));
    // A present key whose value is still ⊥.
    m.update(&1, 8, |_| Max(0));
    assert_eq!(m.get(&8), Some(&Max(0)));
    assert_eq!(MaxMap::from_bytes(&m.to_bytes()), Ok(m.clone()));
}

#[test]
fn ormap_decoder_rejects_bottom_values() {
    let m = MaxMap::new();
    let mut bytes = m.to_bytes();
    // Replace the empty value map by {3 ↦ Max(0)}.
    bytes.pop();
    put_uvarint(&mut bytes, 1);
    bytes.extend([3, 0]);
    assert!(matches!(
        MaxMap::from_bytes(&bytes),
        Err(DecodeError::Invalid(_))
    ));
}
