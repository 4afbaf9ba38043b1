//! The application's side of Raft snapshots (§7) in the simulated cluster:
//! taking a snapshot of the key-value state machine and compacting to
//! `compaction_limit()`, serving chunks of the durable snapshot to the
//! leader's `ReadSnapshot` requests, staging received chunks (lost in a
//! crash), and restoring once every earlier write is durable.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{Simulation, clients};
use crate::output::Output;
use crate::raft::RaftOutput;
use crate::snapshot::SnapshotError;

/// A state machine as snapshot bytes: each key and value, little-endian.
fn encode_kv(kv: &BTreeMap<u64, u64>) -> Bytes {
    let mut out = Vec::with_capacity(kv.len() * 16);
    for (key, value) in kv {
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    Bytes::from(out)
}

fn decode_kv(bytes: &[u8]) -> Option<BTreeMap<u64, u64>> {
    if bytes.len() % 16 != 0 {
        return None;
    }
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    Some(
        bytes
            .chunks_exact(16)
            .map(|pair| (word(&pair[..8]), word(&pair[8..])))
            .collect(),
    )
}

impl Simulation {
    /// The node in `slot` snapshots its state machine at its applied
    /// index, makes the snapshot durable (with the state machine's own
    /// record), and compacts its log to `compaction_limit()`.
    pub(super) fn take_snapshot(&mut self, slot: usize) {
        let id = self.nodes[slot].id;
        let node = &mut self.nodes[slot];
        let Some(raft) = node.raft.as_mut() else {
            return;
        };
        let applied = node.next_apply - 1;
        if applied == 0 {
            return;
        }
        let meta = match raft.snapshot_meta(applied) {
            Ok(meta) => meta,
            Err(error) => {
                let detail =
                    format!("node {id} cannot snapshot its applied index {applied}: {error}");
                self.fail("snapshot", detail);
                return;
            }
        };
        let data = encode_kv(&node.kv);
        let recorded = node
            .disk
            .durable
            .set_snapshot(meta.clone())
            .and_then(|()| raft.storage_mut().set_snapshot(meta));
        if let Err(error) = recorded {
            let detail =
                format!("node {id}'s snapshot at {applied} does not fit its disk: {error}");
            self.fail("snapshot", detail);
            return;
        }
        node.disk.snapshots.insert(applied, data);
        node.disk.state_machine = Some((applied, node.kv.clone()));
        self.stats.raft_snapshots += 1;
        let limit = raft.compaction_limit();
        let before = raft.log().first_index();
        let compacted = node
            .disk
            .durable
            .compact(limit)
            .and_then(|()| raft.storage_mut().compact(limit));
        if let Err(error) = compacted {
            let detail =
                format!("node {id} cannot compact to its compaction limit {limit}: {error}");
            self.fail("snapshot", detail);
            return;
        }
        self.stats.entries_compacted += raft.log().first_index() - before;
    }

    /// The snapshot outputs: the leader reads chunks from its durable
    /// snapshots, the follower stages them and restores.
    pub(super) fn handle_snapshot_output(&mut self, slot: usize, output: RaftOutput<u64>) {
        let id = self.nodes[slot].id;
        match output {
            Output::ReadSnapshot {
                to,
                index,
                offset,
                max_len,
            } => {
                let node = &mut self.nodes[slot];
                let Some(data) = node.disk.snapshots.get(&index) else {
                    let detail =
                        format!("node {id} asked for snapshot {index}, which it never took");
                    self.fail("snapshot", detail);
                    return;
                };
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let len = usize::try_from(max_len).unwrap_or(usize::MAX);
                let end = start.saturating_add(len).min(data.len());
                let chunk = data.slice(start..end);
                let last = end == data.len();
                let raft = node.raft.as_mut().expect("outputs come from up nodes");
                match raft.snapshot_chunk(&to, index, offset, chunk, last) {
                    Ok(()) => self.stats.snapshot_chunks_sent += 1,
                    // A request made void by a resend, or by the end of
                    // the transfer, before it was answered.
                    Err(
                        SnapshotError::UnexpectedChunk { .. } | SnapshotError::NoTransfer { .. },
                    ) => {}
                    Err(error) => {
                        let detail = format!("node {id} refused the chunk it asked for: {error}");
                        self.fail("snapshot", detail);
                    }
                }
            }
            Output::SnapshotSendEnded { aborted, .. } => {
                if aborted.is_some() {
                    self.stats.snapshot_sends_aborted += 1;
                }
            }
            Output::SnapshotChunk {
                index,
                offset,
                data,
                ..
            } => {
                let node = &mut self.nodes[slot];
                if offset == 0 {
                    node.staging.clear();
                }
                if offset != node.staging.len() as u64 {
                    let detail = format!(
                        "node {id} was handed snapshot {index}'s chunk at {offset} with {} bytes staged",
                        node.staging.len()
                    );
                    self.fail("snapshot", detail);
                    return;
                }
                node.staging.extend_from_slice(&data);
            }
            Output::RestoreSnapshot(meta) => {
                let delay = self.disk_config.max_restore_delay;
                let at = if delay == 0 {
                    self.time
                } else {
                    self.time + self.rng.u64(..=delay)
                };
                self.nodes[slot].restore = Some((meta, at));
            }
            Output::SnapshotAborted { .. } => {
                self.nodes[slot].staging.clear();
                self.stats.snapshots_aborted += 1;
            }
            Output::Persist(_)
            | Output::Send(_)
            | Output::Apply(_)
            | Output::ReadReady(_)
            | Output::ReadFailed { .. } => {}
        }
    }

    /// Restores the node in `slot` from its staged snapshot, once the
    /// writes handed out before the restore are durable: the state
    /// machine, then the snapshot durably on disk (the state machine's
    /// record with it), then `on_snapshot_restored`. The caller drains.
    pub(super) fn restore_snapshot(&mut self, slot: usize) {
        let id = self.nodes[slot].id;
        let node = &mut self.nodes[slot];
        let Some((meta, _)) = node.restore.take() else {
            return;
        };
        if node.raft.is_none() {
            return;
        }
        let data = Bytes::from(std::mem::take(&mut node.staging));
        let Some(kv) = decode_kv(&data) else {
            let detail = format!(
                "node {id} staged snapshot {} torn ({} bytes)",
                meta.index,
                data.len()
            );
            self.fail("snapshot", detail);
            return;
        };
        let index = meta.index;
        // The snapshot must be the state machine of the committed log up
        // to its index, exactly.
        let Some(prefix) = usize::try_from(index)
            .ok()
            .and_then(|n| self.chosen.get(..n))
        else {
            let detail = format!(
                "node {id} restores snapshot {index} with only {} entries known committed",
                self.chosen.len()
            );
            self.fail("snapshot", detail);
            return;
        };
        let expected = clients::replay(prefix);
        if kv != expected {
            let detail = format!(
                "node {id} restores snapshot {index} holding {kv:?}; the committed log up to it gives {expected:?}"
            );
            self.fail("snapshot", detail);
            return;
        }
        let node = &mut self.nodes[slot];
        let raft = node.raft.as_mut().expect("checked above");
        node.kv = kv.clone();
        node.next_apply = index + 1;
        node.disk.state_machine = Some((index, kv));
        node.disk.snapshots.insert(index, data);
        node.disk.durable.apply_snapshot(meta.clone());
        raft.storage_mut().apply_snapshot(meta);
        if let Err(error) = raft.on_snapshot_restored(index) {
            let detail = format!("node {id} refused the restore of snapshot {index}: {error}");
            self.fail("snapshot", detail);
            return;
        }
        self.stats.snapshots_installed += 1;
        self.record_commits(slot);
    }
}
