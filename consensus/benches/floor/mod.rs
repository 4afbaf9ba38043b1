//! The floor of the throughput workload: what any in-process replication of
//! the batch to three in-memory logs must at least do, with no consensus at
//! all: each of three logs takes a handle to every payload (a reference
//! count, as dsys's `Bytes` entries do; no copy of the bytes), with its
//! index and term, and marks it applied. No messages, no persistence
//! batches, no acknowledgements, no commit rule.

use bytes::Bytes;

use crate::cluster::Cluster;

/// Three logs, one per node.
pub(crate) struct FloorCluster {
    logs: [Vec<(u64, u64, Bytes)>; 3],
    applied: [u64; 3],
}

impl FloorCluster {
    pub(crate) fn new() -> Self {
        Self {
            logs: [Vec::new(), Vec::new(), Vec::new()],
            applied: [0; 3],
        }
    }
}

impl Cluster for FloorCluster {
    fn replicate(&mut self, batch: &[Bytes]) {
        for (log, applied) in self.logs.iter_mut().zip(&mut self.applied) {
            for payload in batch {
                *applied += 1;
                log.push((1, *applied, payload.clone()));
            }
        }
    }

    fn applied(&self) -> Vec<u64> {
        self.applied.to_vec()
    }

    fn compact(&mut self) {
        for log in &mut self.logs {
            log.clear();
        }
    }
}
