//! What the CRDT benches share: one state-merge group, the same for every type.

use std::hint::black_box;

use crdts::CvRDT;
use criterion::{BatchSize, Criterion};
use dsys_crdt::Lattice;

/// A criterion group `name` that merges `b` into a clone of `a`, for dsys (`join`, by
/// reference) and crdts (`merge`, which takes its argument by value, so its clone and
/// drop are part of its work as in real use). Clones are made in untimed batch setup.
pub(crate) fn merge_group<O: Lattice, T: CvRDT + Clone>(
    c: &mut Criterion,
    name: &str,
    (our_a, our_b): (&O, &O),
    (their_a, their_b): (&T, &T),
) {
    let mut g = c.benchmark_group(name);
    g.bench_function("dsys", |bench| {
        bench.iter_batched(
            || our_a.clone(),
            |mut x| {
                x.join(black_box(our_b));
                x
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("crdts", |bench| {
        bench.iter_batched(
            || (their_a.clone(), their_b.clone()),
            |(mut x, y)| {
                x.merge(black_box(y));
                x
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}
