//! dsys-crdt's counters against the `crdts` crate (7.3) on the same workloads, in
//! the same run.
//!
//! Workload: G-Counters over 64 replicas (ids `u64`, spread over the id space as node
//! ids are), every replica with a count; two such states `a` and `b` that have
//! diverged, each ahead on half the replicas (alternating), as two replicas are
//! between anti-entropy rounds. Counts are drawn from a fixed seed.
//!
//! Groups (function ids `dsys` and `crdts`; time per iteration = per operation):
//! - `gcounter/increment`: one increment by 1 of the replica's own entry in a
//!   64-replica state. dsys: `increment`, which also builds the delta (a one-entry
//!   counter, one allocation) and returns it; it is dropped inside the timed loop.
//!   crdts: `apply(inc(replica))` (its op is a `Dot`, no allocation).
//! - `gcounter/merge`: `a ⊔ b`. dsys: `a.join(&b)`; crdts: `a.merge(b)` (its merge
//!   takes `b` by value: the clone is made untimed, in criterion's batch setup, as is
//!   `a`'s; freeing `b`'s nodes as the merge consumes them is timed, being part of
//!   that API). The joined state is dropped untimed for both.
//! - `gcounter/merge-new-replicas`: `a` joined with a 64-replica state of which 32
//!   replicas are new to `a`: the join's allocating path.
//! - `gcounter/join-delta`: one replica's delta (a one-entry counter; crdts: its `Dot`
//!   op) joined into a 64-replica state, the anti-entropy receive path; 4096 deltas
//!   from replicas in a random order, each one step ahead of the previous one from
//!   its replica.
//! - `gcounter/read`: the value. dsys: `value()` (a cached `u128`); crdts: `read()`
//!   (sums into a `BigUint`).
//! - `pncounter/merge`, `pncounter/read`: the same on PN-Counters whose increments and
//!   decrements are each a 64-replica G-Counter as above.
//!
//! Ratios: `python3 .ci/bench-ratios --peer crdts gcounter/ pncounter/` after
//! `cargo bench -p dsys-crdt --bench counter`.

mod common;

use std::hint::black_box;

use crdts::{CmRDT, CvRDT};
use criterion::{Criterion, criterion_group, criterion_main};
use dsys_crdt::{GCounter, Lattice, PNCounter};

const REPLICAS: usize = 64;
/// Deltas in the `join-delta` sequence.
const DELTAS: usize = 4096;

/// Replica ids: 64 spread-out `u64`s (sorted order differs from creation order).
fn replica_ids(rng: &mut fastrand::Rng, n: usize) -> Vec<u64> {
    (0..n).map(|_| rng.u64(..)).collect()
}

/// Two diverged states over `ids`: counts around 1e6, `a` ahead on even positions,
/// `b` on odd ones.
/// `(replica, count)` pairs.
type Entries = Vec<(u64, u64)>;

/// The two sides of a merge.
type Pair<T> = (T, T);

fn diverged(rng: &mut fastrand::Rng, ids: &[u64]) -> Pair<Entries> {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let low = rng.u64(1..1_000_000);
        let high = low + rng.u64(1..1_000);
        let (x, y) = if i % 2 == 0 { (high, low) } else { (low, high) };
        a.push((*id, x));
        b.push((*id, y));
    }
    (a, b)
}

fn ours(entries: &[(u64, u64)]) -> GCounter<u64> {
    entries.iter().copied().collect()
}

fn theirs(entries: &[(u64, u64)]) -> crdts::GCounter<u64> {
    let mut c = crdts::GCounter::new();
    for (id, count) in entries {
        c.apply(c.inc_many(*id, *count));
    }
    c
}

fn gcounter(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(0x6c0);
    let ids = replica_ids(&mut rng, REPLICAS);
    let (a, b) = diverged(&mut rng, &ids);
    let (our_a, our_b) = (ours(&a), ours(&b));
    let (their_a, their_b) = (theirs(&a), theirs(&b));
    assert_eq!(our_a.value().to_string(), their_a.read().to_string());
    let mut check = our_a.clone();
    check.join(&our_b);
    let mut their_check = their_a.clone();
    their_check.merge(their_b.clone());
    assert_eq!(check.value().to_string(), their_check.read().to_string());

    {
        // A replica increments only its own entry (Shapiro et al. §3.1.1).
        let me = ids[REPLICAS / 3];
        let mut g = c.benchmark_group("gcounter/increment");
        g.bench_function("dsys", |bench| {
            let mut state = our_a.clone();
            bench.iter(|| black_box(state.increment(black_box(&me), 1)));
        });
        g.bench_function("crdts", |bench| {
            let mut state = their_a.clone();
            bench.iter(|| {
                let op = state.inc(black_box(me));
                state.apply(op);
            });
        });
        g.finish();
    }

    {
        common::merge_group(c, "gcounter/merge", (&our_a, &our_b), (&their_a, &their_b));
    }

    {
        // Half of `other`'s replicas are new to `a`.
        let mut more = ids[REPLICAS / 2..].to_vec();
        more.extend(replica_ids(&mut rng, REPLICAS / 2));
        let (_, other) = diverged(&mut rng, &more);
        let (our_o, their_o) = (ours(&other), theirs(&other));
        common::merge_group(
            c,
            "gcounter/merge-new-replicas",
            (&our_a, &our_o),
            (&their_a, &their_o),
        );
    }

    {
        // Deltas from replicas in a random order, each one step ahead of the last
        // from that replica; replayed cyclically (after the first lap they are stale,
        // for both crates alike).
        let mut ahead = our_a.clone();
        let mut our_deltas = Vec::with_capacity(DELTAS);
        let mut their_ops = Vec::with_capacity(DELTAS);
        for _ in 0..DELTAS {
            let id = ids[rng.usize(..REPLICAS)];
            let d = ahead.increment(&id, 1);
            their_ops.push(crdts::Dot::new(id, d.get(&id)));
            our_deltas.push(d);
        }
        let mut g = c.benchmark_group("gcounter/join-delta");
        g.bench_function("dsys", |bench| {
            let mut state = our_a.clone();
            let mut i = 0;
            bench.iter(|| {
                state.join(black_box(&our_deltas[i % DELTAS]));
                i += 1;
            });
        });
        g.bench_function("crdts", |bench| {
            let mut state = their_a.clone();
            let mut i = 0;
            bench.iter(|| {
                // Ops are taken by value; a `Dot<u64>` is `Copy`.
                state.apply(black_box(their_ops[i % DELTAS]));
                i += 1;
            });
        });
        g.finish();
    }

    {
        let mut g = c.benchmark_group("gcounter/read");
        g.bench_function("dsys", |bench| bench.iter(|| black_box(&our_a).value()));
        g.bench_function("crdts", |bench| bench.iter(|| black_box(&their_a).read()));
        g.finish();
    }
}

/// Two diverged PN-Counters (increments and decrements each as in [`diverged`]), for
/// both crates.
fn pn(rng: &mut fastrand::Rng, ids: &[u64]) -> (Pair<PNCounter<u64>>, Pair<crdts::PNCounter<u64>>) {
    let (pa, pb) = diverged(rng, ids);
    let (na, nb) = diverged(rng, ids);
    let build_ours = |p: &[(u64, u64)], n: &[(u64, u64)]| {
        let mut c = PNCounter::new();
        for (id, v) in p {
            let _ = c.increment(id, *v);
        }
        for (id, v) in n {
            let _ = c.decrement(id, *v);
        }
        c
    };
    let build_theirs = |p: &[(u64, u64)], n: &[(u64, u64)]| {
        let mut c = crdts::PNCounter::new();
        for (id, v) in p {
            c.apply(c.inc_many(*id, *v));
        }
        for (id, v) in n {
            c.apply(c.dec_many(*id, *v));
        }
        c
    };
    (
        (build_ours(&pa, &na), build_ours(&pb, &nb)),
        (build_theirs(&pa, &na), build_theirs(&pb, &nb)),
    )
}

fn pncounter(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(0x9c0);
    let ids = replica_ids(&mut rng, REPLICAS);
    let ((our_a, our_b), (their_a, their_b)) = pn(&mut rng, &ids);
    assert_eq!(our_a.value().to_string(), their_a.read().to_string());

    {
        common::merge_group(c, "pncounter/merge", (&our_a, &our_b), (&their_a, &their_b));
    }
    {
        let mut g = c.benchmark_group("pncounter/read");
        g.bench_function("dsys", |bench| bench.iter(|| black_box(&our_a).value()));
        g.bench_function("crdts", |bench| bench.iter(|| black_box(&their_a).read()));
        g.finish();
    }
}

criterion_group!(benches, gcounter, pncounter);
criterion_main!(benches);
