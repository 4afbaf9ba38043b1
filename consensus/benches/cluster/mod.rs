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

/// Rounds after which a cluster that has not reached its goal is taken to be
/// stuck rather than slow.
const MAX_ROUNDS: usize = 10_000;

/// Runs `round` (every node handles its inbox, then its outputs; returns
/// whether anything happened) until `done` holds. Panics if a round makes no
/// progress, or after [`MAX_ROUNDS`], instead of spinning forever on a
/// harness bug. Both contenders are driven by this one loop.
pub(crate) fn drive_until<C>(
    cluster: &mut C,
    contender: &str,
    done: impl Fn(&C) -> bool,
    mut round: impl FnMut(&mut C) -> bool,
) {
    for _ in 0..MAX_ROUNDS {
        if done(cluster) {
            return;
        }
        assert!(round(cluster), "{contender} cluster stalled");
    }
    panic!("{contender} cluster did not settle within {MAX_ROUNDS} rounds");
}
