//! Heap memory per in-flight entry, for both contenders on the throughput
//! workload (3 nodes, 128-byte proposals, batches of 64 and 256).
//!
//! For each batch, after a warm-up, the peak heap above the starting point
//! while the batch is proposed, replicated and applied on all three nodes,
//! divided by the batch size: what one entry in flight costs the whole
//! cluster (log copies, messages, buffers). Also the heap still held per
//! entry once applied, before compaction (the logs' copies).
//!
//! ```text
//! cargo bench -p dsys-consensus --bench inflight_memory
//! ```

use peak_alloc::PeakAlloc;

mod cluster;
mod dsys;
mod raft_rs;

use cluster::{BATCH_SIZES, Cluster, PAYLOAD_LEN, agreed_applied, payloads};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// Batches measured per contender and size (the median is reported).
const SAMPLES: usize = 15;

fn measure<C: Cluster>(contender: &str, batch_size: usize, make: impl FnOnce() -> C) {
    let batch = payloads(batch_size);
    let mut cluster = make();
    let start = agreed_applied(&cluster, contender);
    for _ in 0..20 {
        cluster.replicate(&batch);
        cluster.compact();
    }
    let (mut peaks, mut held) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        let base = HEAP.current_usage();
        HEAP.reset_peak_usage();
        cluster.replicate(&batch);
        peaks.push((HEAP.peak_usage().saturating_sub(base)) / batch_size);
        held.push((HEAP.current_usage().saturating_sub(base)) / batch_size);
        cluster.compact();
    }
    let grown = agreed_applied(&cluster, contender) - start;
    assert_eq!(
        grown,
        ((20 + SAMPLES) * batch_size) as u64,
        "{contender} lost entries"
    );
    peaks.sort_unstable();
    held.sort_unstable();
    println!(
        "batch {batch_size:>3}  {contender:<16} peak {:>6} B/entry   held after apply {:>6} B/entry",
        peaks[SAMPLES / 2],
        held[SAMPLES / 2]
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    println!(
        "heap per in-flight entry ({PAYLOAD_LEN}-byte payloads, 3 nodes, median of {SAMPLES} batches)"
    );
    for n in BATCH_SIZES {
        measure("dsys", n, dsys::DsysCluster::new);
        measure("raft-rs", n, raft_rs::RaftRsCluster::new);
        measure("raft-rs-batched", n, raft_rs::RaftRsCluster::new_batched);
    }
}
