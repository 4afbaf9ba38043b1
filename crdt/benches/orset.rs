//! dsys-crdt's `ORSet` (the add-wins set with dots of Almeida et al. 2018, §5)
//! against `crdts::Orswot` (7.3) on the same workloads, in the same run.
//!
//! Workload: 64 replicas (ids: spread-out `u64`s from a fixed seed) and 1000
//! elements (`u64`s from the same seed). The *base* state holds all 1000, added
//! round-robin by the 64 replicas, so its causal context is a 64-entry version
//! vector and each element has one dot, as on a converged replica. Two states `a`
//! and `b` then diverge from it, as two replicas between anti-entropy rounds: each
//! adds 50 new elements (`a` as even replicas, `b` as odd ones), removes 50 base
//! elements (different ones), and both re-add the same 50 base elements
//! concurrently (those end with two dots, one per side).
//!
//! Both sides are driven through their documented APIs. dsys: the delta
//! mutators (`add`, `remove`, which also build and return the delta; it is
//! dropped inside the timed loop) and `join`. crdts: `read_ctx().derive_add_ctx`
//! then `apply(add(..))`, `contains(..).derive_rm_ctx()` then `apply(rm(..))`
//! (its ops are its deltas), and `merge`, which takes the other state by value.
//! States are cloned in criterion's untimed batch setup and dropped untimed.
//!
//! Groups (function ids `dsys` and `crdts`):
//! - `orset/add`: 100 adds of new elements to a copy of the base state, cycling
//!   through the replicas (one iteration = 100 adds).
//! - `orset/remove`: 100 removes of present elements from a copy of the base
//!   state (one iteration = 100 removes).
//! - `orset/merge`: `a ⊔ b`, full states (one iteration = one merge of two
//!   1050-element states).
//! - `orset/join-delta`: the receive path of delta shipping: 100 deltas made by
//!   another replica (50 adds of new elements, 50 removes of base elements,
//!   interleaved) joined in order into a copy of the base state. crdts: the same
//!   100 ops applied (`apply`), which is how its op-based side ships changes.
//!   Our join of a delta is the causal join of the paper, linear in the state it
//!   is joined into; crdts' op apply is a hash lookup. This group shows that cost.
//!
//! Ratios: `python3 .ci/bench-ratios --peer crdts orset/` after
//! `cargo bench -p dsys-crdt --bench orset`.

use std::collections::BTreeSet;
mod common;

use std::hint::black_box;

use crdts::{CmRDT, CvRDT, Orswot};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use dsys_crdt::{Lattice, ORSet};

const REPLICAS: usize = 64;
const ELEMENTS: usize = 1000;
const BATCH: usize = 100;

type Ours = ORSet<u64, u64>;
type Theirs = Orswot<u64, u64>;

fn our_add(s: &mut Ours, replica: u64, e: u64) -> Ours {
    s.add(&replica, e)
}

fn their_add(s: &mut Theirs, replica: u64, e: u64) {
    let ctx = s.read_ctx().derive_add_ctx(replica);
    let op = s.add(e, ctx);
    s.apply(op);
}

fn their_rm(s: &mut Theirs, e: u64) {
    let ctx = s.contains(&e).derive_rm_ctx();
    let op = s.rm(e, ctx);
    s.apply(op);
}

fn members(s: &Theirs) -> BTreeSet<u64> {
    s.read().val.into_iter().collect()
}

fn orset(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(0x05e7);
    let ids: Vec<u64> = (0..REPLICAS).map(|_| rng.u64(..)).collect();
    let elems: Vec<u64> = (0..ELEMENTS).map(|_| rng.u64(..)).collect();
    let fresh: Vec<u64> = (0..4 * BATCH).map(|_| rng.u64(..)).collect();

    let (mut our_base, mut their_base) = (Ours::new(), Theirs::new());
    for (i, e) in elems.iter().enumerate() {
        our_add(&mut our_base, ids[i % REPLICAS], *e);
        their_add(&mut their_base, ids[i % REPLICAS], *e);
    }

    // The diverged pair.
    let diverge = |side: usize, ours: &mut Ours, theirs: &mut Theirs| {
        for j in 0..50 {
            let replica = ids[(2 * j + side) % REPLICAS];
            let new = fresh[side * 50 + j];
            our_add(ours, replica, new);
            their_add(theirs, replica, new);
            let gone = elems[side * 50 + j];
            ours.remove(&gone);
            their_rm(theirs, gone);
            let both = elems[100 + j];
            our_add(ours, replica, both);
            their_add(theirs, replica, both);
        }
    };
    let (mut our_a, mut their_a) = (our_base.clone(), their_base.clone());
    diverge(0, &mut our_a, &mut their_a);
    let (mut our_b, mut their_b) = (our_base.clone(), their_base.clone());
    diverge(1, &mut our_b, &mut their_b);

    // Both implementations see the same sets.
    let mut check = our_a.clone();
    check.join(&our_b);
    let mut their_check = their_a.clone();
    their_check.merge(their_b.clone());
    assert_eq!(
        check.iter().copied().collect::<BTreeSet<_>>(),
        members(&their_check)
    );
    assert_eq!(check.len(), ELEMENTS);

    {
        let mut g = c.benchmark_group("orset/add");
        let new = &fresh[2 * BATCH..3 * BATCH];
        g.bench_function("dsys", |bench| {
            bench.iter_batched(
                || our_base.clone(),
                |mut s| {
                    for (j, e) in new.iter().enumerate() {
                        black_box(s.add(&ids[j % REPLICAS], black_box(*e)));
                    }
                    s
                },
                BatchSize::SmallInput,
            );
        });
        g.bench_function("crdts", |bench| {
            bench.iter_batched(
                || their_base.clone(),
                |mut s| {
                    for (j, e) in new.iter().enumerate() {
                        their_add(&mut s, ids[j % REPLICAS], black_box(*e));
                    }
                    s
                },
                BatchSize::SmallInput,
            );
        });
        g.finish();
    }

    {
        let mut g = c.benchmark_group("orset/remove");
        let gone = &elems[200..200 + BATCH];
        g.bench_function("dsys", |bench| {
            bench.iter_batched(
                || our_base.clone(),
                |mut s| {
                    for e in gone {
                        black_box(s.remove(black_box(e)));
                    }
                    s
                },
                BatchSize::SmallInput,
            );
        });
        g.bench_function("crdts", |bench| {
            bench.iter_batched(
                || their_base.clone(),
                |mut s| {
                    for e in gone {
                        their_rm(&mut s, black_box(*e));
                    }
                    s
                },
                BatchSize::SmallInput,
            );
        });
        g.finish();
    }

    {
        common::merge_group(c, "orset/merge", (&our_a, &our_b), (&their_a, &their_b));
    }

    {
        // Another replica's 100 changes, as deltas (ours) and ops (crdts).
        let (mut our_remote, mut their_remote) = (our_base.clone(), their_base.clone());
        let mut our_deltas = Vec::new();
        let mut their_ops = Vec::new();
        for j in 0..BATCH / 2 {
            let replica = ids[j % REPLICAS];
            let new = fresh[3 * BATCH + j];
            our_deltas.push(our_remote.add(&replica, new));
            let ctx = their_remote.read_ctx().derive_add_ctx(replica);
            let op = their_remote.add(new, ctx);
            their_remote.apply(op.clone());
            their_ops.push(op);
            let gone = elems[300 + j];
            our_deltas.push(our_remote.remove(&gone));
            let ctx = their_remote.contains(&gone).derive_rm_ctx();
            let op = their_remote.rm(gone, ctx);
            their_remote.apply(op.clone());
            their_ops.push(op);
        }
        let mut ours = our_base.clone();
        for d in &our_deltas {
            ours.join(d);
        }
        let mut theirs = their_base.clone();
        for op in &their_ops {
            theirs.apply(op.clone());
        }
        assert_eq!(ours, our_remote);
        assert_eq!(
            ours.iter().copied().collect::<BTreeSet<_>>(),
            members(&theirs)
        );

        let mut g = c.benchmark_group("orset/join-delta");
        g.bench_function("dsys", |bench| {
            bench.iter_batched(
                || our_base.clone(),
                |mut s| {
                    for d in &our_deltas {
                        s.join(black_box(d));
                    }
                    s
                },
                BatchSize::SmallInput,
            );
        });
        g.bench_function("crdts", |bench| {
            bench.iter_batched(
                || (their_base.clone(), their_ops.clone()),
                |(mut s, ops)| {
                    for op in ops {
                        s.apply(black_box(op));
                    }
                    s
                },
                BatchSize::SmallInput,
            );
        });
        g.finish();
    }
}

criterion_group!(benches, orset);
criterion_main!(benches);
