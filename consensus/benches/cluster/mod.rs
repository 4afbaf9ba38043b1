//! The workload both contenders run, and the interface the harness drives them through.

use bytes::Bytes;

/// Bytes in each proposal.
pub(crate) const PAYLOAD_LEN: usize = 128;

/// Proposals per iteration: one group per size.
pub(crate) const BATCH_SIZES: [usize; 2] = [64, 256];

/// One in-process cluster under test, driven synchronously.
pub(crate) trait Cluster {
    /// Proposes every payload of `batch` on the leader (one proposal per payload), then
    /// delivers messages, persists (synchronously, in memory) and applies on every node until
    /// all of them are applied on all nodes.
    fn replicate(&mut self, batch: &[Bytes]);

    /// Index applied on each node (for checks).
    fn applied(&self) -> Vec<u64>;

    /// Discards log entries that every node has applied, keeping `applied()` as it is. Called
    /// after each `replicate`, outside the timing. Required, so that every contender keeps
    /// its memory bounded the same way: a log that only grows (millions of entries per run)
    /// makes the figure depend on page faults and reallocation, and on how long the run is.
    fn compact(&mut self);
}

/// `n` distinct payloads of [`PAYLOAD_LEN`] bytes, built once per batch size so that the timed
/// loop only clones `Bytes` handles (or, for raft-rs, copies them into the `Vec<u8>` its API
/// takes).
pub(crate) fn payloads(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            let mut payload = vec![0u8; PAYLOAD_LEN];
            payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Bytes::from(payload)
        })
        .collect()
}

/// The index every node of `cluster` has applied; panics if the nodes disagree.
pub(crate) fn agreed_applied(cluster: &impl Cluster, contender: &str) -> u64 {
    let applied = cluster.applied();
    let first = *applied.first().expect("a cluster has at least one node");
    assert!(
        applied.iter().all(|&a| a == first),
        "{contender}: nodes applied different indexes: {applied:?}"
    );
    first
}
