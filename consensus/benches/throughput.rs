//! Replication throughput of a 3-node in-process Raft cluster, against raft-rs in the same run.
//!
//! Each contender runs three nodes in one thread over in-memory storage: no network, no
//! encoding on the wire, no disk. One iteration proposes a batch of 128-byte payloads on the
//! leader and drives the cluster until every entry of the batch is applied on all three
//! nodes, so the figure (elements/s) is end-to-end replicated entries per second: propose,
//! append, replicate, persist, commit and apply, with every message handled by the contender.
//! Iterations are timed in the thread's CPU time (see [`thread_cpu`]), which criterion
//! reports as "time".
//!
//! Between iterations, outside the timing, each contender discards the entries applied on
//! every node ([`Cluster::compact`]), as a long-running node does: without it the log grows by
//! millions of entries per run, and the figure would move with page faults, reallocations
//! and the length of the run.
//!
//! Both contenders sit in the same criterion group per batch size (`replicate/batch-64`,
//! `replicate/batch-256`), so the report puts them side by side, with the floor
//! (`floor-3-logs`, [`floor::FloorCluster`]): three logs taking a handle to each payload,
//! with no consensus at all.
//!
//! ```text
//! cargo bench -p dsys-consensus --bench throughput
//! cargo bench -p dsys-consensus --bench throughput -- --quick
//! ```

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use rustix::time::{ClockId, clock_gettime};

mod cluster;
mod dsys;
mod floor;
mod raft_rs;

use cluster::{BATCH_SIZES, Cluster, agreed_applied, payloads};
use dsys::DsysCluster;
use floor::FloorCluster;
use raft_rs::RaftRsCluster;

/// This thread's CPU time. Iterations are timed with it rather than the wall
/// clock: the benchmark is single-threaded and does no I/O, so its CPU time is
/// its work, and on a shared 2-vCPU VM the wall clock also counts the time the
/// thread waited for a core (runs on 2026-12-07 under a load average of 5 moved
/// wall-clock ratios by ±25% between runs).
fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).expect("CPU time is positive"),
        u32::try_from(t.tv_nsec).expect("nanoseconds fit"),
    )
}

/// Benchmarks `contender` in `group`: builds one cluster with `make` (not timed), then times
/// [`Cluster::replicate`] of `batch` per iteration in CPU time ([`thread_cpu`]), with a [`Cluster::compact`] (not timed)
/// after each.
///
/// Afterwards (not timed) it checks that all nodes applied the same index and that the index
/// grew by exactly the number of entries proposed, which catches a harness that drops or
/// duplicates entries, or returns before they are applied everywhere.
fn bench_cluster<C: Cluster>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    contender: &str,
    batch: &[Bytes],
    make: impl FnOnce() -> C,
) {
    let mut cluster = make();
    let applied_before = agreed_applied(&cluster, contender);
    let mut proposed = 0u64;
    group.bench_function(contender, |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let start = thread_cpu();
                cluster.replicate(black_box(batch));
                elapsed += thread_cpu() - start;
                proposed += batch.len() as u64;
                cluster.compact();
            }
            elapsed
        })
    });
    let grown = agreed_applied(&cluster, contender) - applied_before;
    assert_eq!(
        grown, proposed,
        "{contender}: applied index grew by {grown} over {proposed} proposals"
    );
}

fn replicate(c: &mut Criterion) {
    for n in BATCH_SIZES {
        let batch = payloads(n);
        let mut group = c.benchmark_group(format!("replicate/batch-{n}"));
        group.throughput(Throughput::Elements(n as u64));
        // The contenders: add a line here to put another implementation in every group.
        bench_cluster(&mut group, "dsys", &batch, DsysCluster::new);
        bench_cluster(&mut group, "raft-rs", &batch, RaftRsCluster::new);
        bench_cluster(
            &mut group,
            "raft-rs-batched",
            &batch,
            RaftRsCluster::new_batched,
        );
        bench_cluster(&mut group, "floor-3-logs", &batch, FloorCluster::new);
        group.finish();
    }
}

criterion_group!(benches, replicate);
criterion_main!(benches);
