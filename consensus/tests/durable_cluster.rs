//! Three Raft nodes in one process, each over a `durable::DiskStorage` in
//! its own directory, with group commit (stage every `Persist` of a drain,
//! sync once, acknowledge the highest id). Nodes are crashed (dropped, at
//! times with writes staged and not synced) and restarted from their
//! directory; in half the seeds they also snapshot their state machine and
//! compact their logs, so restarted and lagging nodes are restored by
//! snapshot (`DiskStorage::apply_snapshot`). No entry applied anywhere is
//! ever lost or changed, and every node ends with the same applied log.
#![cfg(feature = "durable")]

mod durable_common;

use std::collections::BTreeMap;

use bytes::Bytes;
use dsys_consensus::durable::{DiskStorage, DiskStorageConfig};
use dsys_consensus::{Config, Membership, Message, Output, RaftNode, Storage};

const IDS: [u64; 3] = [1, 2, 3];

type Node = RaftNode<DiskStorage<u64>>;

/// A state machine that remembers every command it applied, and its
/// snapshots: `len`-prefixed commands.
fn encode(commands: &[Bytes]) -> Bytes {
    let mut out = Vec::new();
    for command in commands {
        out.extend_from_slice(&(command.len() as u32).to_le_bytes());
        out.extend_from_slice(command);
    }
    out.into()
}

fn decode(mut bytes: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        out.push(Bytes::copy_from_slice(&bytes[4..4 + len]));
        bytes = &bytes[4 + len..];
    }
    out
}

/// What one node keeps besides its Raft storage: its state machine (lost
/// in a crash), its durable snapshot files, and a snapshot being received.
#[derive(Default)]
struct App {
    applied: Vec<Bytes>,
    snapshots: BTreeMap<u64, Bytes>,
    staging: Vec<u8>,
    /// Snapshots received from a leader and installed.
    installed: u64,
}

fn start(id: u64, dir: &std::path::Path, seed: u64, app: &mut App) -> Node {
    let mut storage_config = DiskStorageConfig::default();
    storage_config.segment_bytes = DiskStorageConfig::MIN_SEGMENT_BYTES;
    storage_config.cache_bytes = 2048;
    let storage = DiskStorage::open(dir, Membership::from_voters(IDS), storage_config).unwrap();
    // The state machine restarts from the snapshot storage holds, if any,
    // and replays the log after it.
    app.applied = storage
        .snapshot()
        .map_or_else(Vec::new, |meta| decode(&app.snapshots[&meta.index]));
    app.staging.clear();
    let mut config = Config::default();
    config.seed = seed;
    config.snapshot_chunk_size = 256;
    RaftNode::new(id, storage, config).unwrap()
}

#[test]
fn a_cluster_on_disk_survives_crashes_without_losing_applied_entries() {
    for seed in 0..4u64 {
        run(seed, seed % 2 == 1);
    }
}

/// Drains `node` until nothing is left, syncing once per drain; `false`
/// if it crashed in the middle (the caller drops it).
fn drain(
    node: &mut Node,
    app: &mut App,
    chosen: &mut BTreeMap<u64, Bytes>,
    network: &mut Vec<Message<u64>>,
    crash_after: Option<usize>,
) -> bool {
    let mut handled = 0;
    loop {
        while let Some(output) = node.poll_output() {
            match output {
                Output::Persist(batch) => node.storage_mut().stage(&batch).unwrap(),
                Output::Send(message) => network.push(message),
                Output::Apply(entries) => {
                    for entry in entries {
                        assert_eq!(entry.index, app.applied.len() as u64 + 1, "in order");
                        if let Some(data) = chosen.get(&entry.index) {
                            assert_eq!(data, &entry.data, "index {}", entry.index);
                        }
                        chosen.insert(entry.index, entry.data.clone());
                        app.applied.push(entry.data);
                    }
                }
                Output::ReadSnapshot {
                    to,
                    index,
                    offset,
                    max_len,
                } => {
                    let bytes = &app.snapshots[&index];
                    let start = usize::try_from(offset).unwrap().min(bytes.len());
                    let end = (start + usize::try_from(max_len).unwrap()).min(bytes.len());
                    let chunk = bytes.slice(start..end);
                    // A request a later one superseded is refused, and
                    // nothing changes: drop the chunk.
                    let _ = node.snapshot_chunk(&to, index, offset, chunk, end == bytes.len());
                }
                Output::SnapshotChunk { offset, data, .. } => {
                    if offset == 0 {
                        app.staging.clear();
                    }
                    app.staging.extend_from_slice(&data);
                }
                Output::RestoreSnapshot(meta) => {
                    // After every earlier batch: sync them first.
                    let synced = node.storage_mut().sync().unwrap();
                    let restored = decode(&app.staging);
                    assert_eq!(restored.len() as u64, meta.index);
                    for (at, data) in restored.iter().enumerate() {
                        assert_eq!(chosen.get(&(at as u64 + 1)), Some(data), "snapshot");
                    }
                    app.snapshots.insert(meta.index, encode(&restored));
                    app.applied = restored;
                    let index = meta.index;
                    node.storage_mut().apply_snapshot(meta).unwrap();
                    if let Some(id) = synced {
                        node.on_persisted(id);
                    }
                    node.on_snapshot_restored(index).unwrap();
                    app.installed += 1;
                }
                Output::SnapshotAborted { .. } => app.staging.clear(),
                _ => {}
            }
            handled += 1;
            if crash_after.is_some_and(|after| handled >= after) {
                return false;
            }
        }
        // Group commit: one sync for everything the drain staged.
        match node.storage_mut().sync().unwrap() {
            Some(id) => node.on_persisted(id),
            None => return true,
        }
    }
}

fn run(seed: u64, compact: bool) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let dirs: Vec<tempfile::TempDir> = IDS.iter().map(|_| durable_common::scratch_dir()).collect();
    let mut apps: Vec<App> = IDS.iter().map(|_| App::default()).collect();
    let mut nodes: Vec<Option<Node>> = IDS
        .iter()
        .zip(&dirs)
        .zip(&mut apps)
        .map(|((&id, dir), app)| Some(start(id, dir.path(), seed * 10 + id, app)))
        .collect();
    // What any node ever applied at each index (state-machine safety).
    let mut chosen: BTreeMap<u64, Bytes> = BTreeMap::new();
    let mut network: Vec<Message<u64>> = Vec::new();
    let (mut proposed, mut restarts, mut snapshots) = (0u64, 0, 0);
    for round in 0..3_000u64 {
        let faults = round < 2_400;
        let mut inbox = std::mem::take(&mut network);
        rng.shuffle(&mut inbox);
        for message in inbox {
            let to = usize::try_from(message.to - 1).unwrap();
            if let Some(node) = nodes[to].as_mut() {
                if !faults || rng.u8(..20) != 0 {
                    node.handle_message(message);
                }
            }
        }
        if faults && round % 3 == 0 {
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
            let crash_after = (faults && rng.u16(..400) == 0).then(|| rng.usize(..4));
            if !drain(node, &mut apps[i], &mut chosen, &mut network, crash_after) {
                // Staged writes may or may not be synced: drop the node.
                *slot = None;
                continue;
            }
            let applied = node.log().applied();
            if compact && applied > 0 && rng.u8(..40) == 0 {
                // Snapshot what is applied: the bytes first (our "file"),
                // then the meta in storage, then compact.
                let meta = node.snapshot_meta(applied).unwrap();
                let index = usize::try_from(meta.index).unwrap();
                let bytes = encode(&apps[i].applied[..index]);
                apps[i].snapshots.insert(meta.index, bytes);
                node.storage_mut().set_snapshot(meta).unwrap();
                let limit = node.compaction_limit();
                node.storage_mut().compact(limit).unwrap();
                snapshots += 1;
            }
        }
        // Crash a node now and then, and restart crashed ones later.
        if faults && rng.u16(..150) == 0 {
            nodes[rng.usize(..IDS.len())] = None;
        }
        for i in 0..IDS.len() {
            if nodes[i].is_none() && rng.u8(..10) == 0 {
                restarts += 1;
                let seed = seed * 10 + IDS[i] + round;
                nodes[i] = Some(start(IDS[i], dirs[i].path(), seed, &mut apps[i]));
            }
        }
    }
    assert!(restarts > 3, "seed {seed}: only {restarts} restarts");
    let longest = apps.iter().map(|a| a.applied.len()).max().unwrap();
    assert!(longest > 100, "seed {seed}: only {longest} entries applied");
    for (i, app) in apps.iter().enumerate() {
        assert_eq!(
            app.applied.len(),
            longest,
            "seed {seed}: node {i} caught up"
        );
    }
    assert_eq!(chosen.len(), longest);
    let installed: u64 = apps.iter().map(|a| a.installed).sum();
    assert!(
        !compact || snapshots > 10,
        "seed {seed}: {snapshots} snapshots"
    );
    assert!(
        !compact || installed > 0,
        "seed {seed}: no snapshot installed"
    );
    println!(
        "seed {seed}: {longest} entries applied on every node, {restarts} restarts, \
         {snapshots} snapshots taken, {installed} installed from a leader"
    );
}
