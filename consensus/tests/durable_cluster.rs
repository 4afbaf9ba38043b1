//! Three Raft nodes in one process, each over a `durable::DiskStorage` in
//! its own directory, with group commit (stage every `Persist` of a drain,
//! sync once, acknowledge the highest id). Nodes are crashed (dropped, at
//! times with writes staged and not synced) and restarted from their
//! directory; no entry applied anywhere is ever lost or changed, and every
//! node ends with the same applied log.
#![cfg(feature = "durable")]

mod durable_common;

use std::collections::BTreeMap;

use bytes::Bytes;
use dsys_consensus::durable::{DiskStorage, DiskStorageConfig};
use dsys_consensus::{Config, Membership, Message, Output, RaftNode};

const IDS: [u64; 3] = [1, 2, 3];

fn start(id: u64, dir: &std::path::Path, seed: u64) -> RaftNode<DiskStorage<u64>> {
    let mut storage_config = DiskStorageConfig::default();
    storage_config.segment_bytes = DiskStorageConfig::MIN_SEGMENT_BYTES;
    storage_config.cache_bytes = 2048;
    let storage = DiskStorage::open(dir, Membership::from_voters(IDS), storage_config).unwrap();
    let mut config = Config::default();
    config.seed = seed;
    RaftNode::new(id, storage, config).unwrap()
}

#[test]
fn a_cluster_on_disk_survives_crashes_without_losing_applied_entries() {
    for seed in 0..4u64 {
        run(seed);
    }
}

fn run(seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let dirs: Vec<tempfile::TempDir> = IDS.iter().map(|_| durable_common::scratch_dir()).collect();
    let mut nodes: Vec<Option<RaftNode<DiskStorage<u64>>>> = IDS
        .iter()
        .zip(&dirs)
        .map(|(&id, dir)| Some(start(id, dir.path(), seed * 10 + id)))
        .collect();
    // What each node's state machine applied in this life, and what any
    // node ever applied at each index (state-machine safety).
    let mut applied: Vec<Vec<Bytes>> = vec![Vec::new(); IDS.len()];
    let mut chosen: BTreeMap<u64, Bytes> = BTreeMap::new();
    let mut network: Vec<Message<u64>> = Vec::new();
    let mut proposed = 0u64;
    let mut restarts = 0;
    for round in 0..3_000u64 {
        let mut inbox = std::mem::take(&mut network);
        rng.shuffle(&mut inbox);
        for message in inbox {
            let to = usize::try_from(message.to - 1).unwrap();
            if let Some(node) = nodes[to].as_mut() {
                if rng.u8(..20) != 0 {
                    node.handle_message(message);
                }
            }
        }
        if round < 2_400 && round % 3 == 0 {
            if let Some(leader) = nodes.iter_mut().flatten().find(|n| n.is_leader()) {
                if leader.propose(Bytes::from(format!("p{proposed}"))).is_ok() {
                    proposed += 1;
                }
            }
        }
        for (i, slot) in nodes.iter_mut().enumerate() {
            let Some(node) = slot.as_mut() else {
                continue;
            };
            node.tick();
            let crash_mid_drain = round < 2_400 && rng.u16(..400) == 0;
            while let Some(output) = node.poll_output() {
                match output {
                    Output::Persist(batch) => node.storage_mut().stage(&batch).unwrap(),
                    Output::Send(message) => network.push(message),
                    Output::Apply(entries) => {
                        for entry in entries {
                            let at = applied[i].len() as u64 + 1;
                            assert_eq!(entry.index, at, "seed {seed}: node {i} applies in order");
                            if let Some(data) = chosen.get(&entry.index) {
                                assert_eq!(data, &entry.data, "seed {seed}: index {}", entry.index);
                            }
                            chosen.insert(entry.index, entry.data.clone());
                            applied[i].push(entry.data);
                        }
                    }
                    _ => {}
                }
                if crash_mid_drain {
                    break;
                }
            }
            if crash_mid_drain {
                // Staged writes may or may not be synced: drop the node.
                *slot = None;
                continue;
            }
            // Group commit: one sync for the whole drain.
            if let Some(id) = node.storage_mut().sync().unwrap() {
                node.on_persisted(id);
            }
        }
        // Crash a node now and then, and restart crashed ones later.
        if round < 2_400 && rng.u16(..150) == 0 {
            let i = rng.usize(..IDS.len());
            nodes[i] = None;
        }
        for i in 0..IDS.len() {
            if nodes[i].is_none() && rng.u8(..10) == 0 {
                restarts += 1;
                // The state machine keeps nothing: it replays the log.
                applied[i].clear();
                nodes[i] = Some(start(IDS[i], dirs[i].path(), seed * 10 + IDS[i] + round));
            }
        }
    }
    assert!(restarts > 3, "seed {seed}: only {restarts} restarts");
    let longest = applied.iter().map(Vec::len).max().unwrap();
    assert!(longest > 100, "seed {seed}: only {longest} entries applied");
    for (i, log) in applied.iter().enumerate() {
        assert_eq!(log.len(), longest, "seed {seed}: node {i} caught up");
    }
    assert_eq!(chosen.len(), longest);
    println!("seed {seed}: {longest} entries applied on every node, {restarts} restarts");
}
