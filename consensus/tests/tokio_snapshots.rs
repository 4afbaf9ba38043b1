//! Snapshots through the tokio driver (Raft §7), in process over an
//! in-memory transport: the leader snapshots by policy and compacts; a
//! follower cut off meanwhile, and a node added as a learner afterwards,
//! can only catch up by snapshot, and end with the leader's state machine
//! state; a node restarts from its snapshot plus the log after it, in
//! memory and on disk.

#[path = "tokio_common/mem.rs"]
mod mem;

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dsys_consensus::durable::{DiskStorage, DiskStorageConfig};
use dsys_consensus::tokio::{
    DiskPersister, DiskSnapshots, MemPersister, MemSnapshots, PersistFuture, Persister,
    SnapshotCommandError, SnapshotStore, spawn_with_snapshots,
};
use dsys_consensus::{
    HardState, Index, MemStorage, Membership, Persist, RaftNode, SnapshotMeta, Storage,
};
use mem::{Hub, Record, Recorder, driver_config, eventually, leader, node_config, propose, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_and_new_nodes_catch_up_by_snapshot_after_compaction() {
    let hub = Arc::new(Hub::default());
    let voters = vec![1u64, 2, 3];
    let mut nodes: Vec<_> = voters
        .iter()
        .map(|&id| start(&hub, id, MemStorage::new(voters.clone()), 20))
        .collect();
    let l = leader(&nodes).await;
    let f = (l + 1) % 3;
    hub.cut(nodes[f].id);
    let handles = Arc::new(Mutex::new(nodes.iter().map(|n| n.handle.clone()).collect()));

    // Four clients, 25 commands each, while the follower is cut off.
    let mut clients = Vec::new();
    for c in 0..4 {
        let handles = Arc::clone(&handles);
        clients.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..25 {
                acked.push(propose(&handles, &format!("c{c}-{i}")).await);
            }
            acked
        }));
    }
    let mut acked: Vec<Bytes> = Vec::new();
    for c in clients {
        acked.extend(c.await.expect("client"));
    }
    // The policy snapshotted and compacted past what the follower holds.
    let behind = nodes[f].handle.status().last_index;
    let l = leader(&nodes).await;
    let status = nodes[l].handle.status();
    assert!(status.snapshot_index >= 20, "{status:?}");
    assert!(
        status.first_index > behind + 1,
        "the leader compacted past the follower ({behind}): {status:?}"
    );
    // On demand too.
    let index = nodes[l].handle.snapshot().await.expect("snapshot");
    assert!(index >= status.snapshot_index);

    hub.heal(nodes[f].id);
    // A node added after compaction.
    nodes.push(start(&hub, 4, MemStorage::new(vec![]), 20));
    handles.lock().expect("ok").push(nodes[3].handle.clone());
    nodes[l].handle.add_learner(4).await.expect("learner added");
    acked.push(propose(&handles, "after").await);

    let want = nodes[l].record.clone();
    for n in [f, 3] {
        let record = nodes[n].record.clone();
        eventually(20, "caught up with the leader's state", || {
            let mine = record.commands();
            mine.len() >= acked.len() && mine == want.commands()
        })
        .await;
        assert!(
            record.restores() >= 1,
            "node {} was restored by snapshot",
            nodes[n].id
        );
        assert!(nodes[n].handle.status().snapshot_index > 0);
    }
    // Every acknowledged command applied exactly once, everywhere.
    for n in &nodes {
        let commands = n.record.commands();
        for a in &acked {
            let count = commands.iter().filter(|c| *c == a).count();
            assert_eq!(count, 1, "{a:?} on node {}", n.id);
        }
    }
    for n in &nodes {
        n.handle.shutdown().await;
    }
}

/// Writes every batch into the node's storage and into a second copy (the
/// "disk" that survives a restart).
struct Mirror(Arc<Mutex<MemStorage<u64>>>);

impl Persister<MemStorage<u64>> for Mirror {
    fn persist(
        &mut self,
        storage: &mut MemStorage<u64>,
        batch: Persist<HardState<u64>, u64>,
    ) -> PersistFuture {
        let disk = MemPersister.persist(&mut self.0.lock().expect("ok"), batch.clone());
        drop(disk);
        MemPersister.persist(storage, batch)
    }
}

/// Keeps snapshots in a [`MemSnapshots`] and applies them to the "disk"
/// copy as well.
struct MirrorSnapshots(MemSnapshots<u64>, Arc<Mutex<MemStorage<u64>>>);

impl SnapshotStore<MemStorage<u64>> for MirrorSnapshots {
    fn save(
        &mut self,
        storage: &mut MemStorage<u64>,
        meta: &SnapshotMeta<u64>,
        data: &Bytes,
    ) -> io::Result<()> {
        self.0.save(&mut self.1.lock().expect("ok"), meta, data)?;
        self.0.save(storage, meta, data)
    }
    fn compact(&mut self, storage: &mut MemStorage<u64>, index: Index) -> io::Result<()> {
        self.0.compact(&mut self.1.lock().expect("ok"), index)?;
        self.0.compact(storage, index)
    }
    fn install(
        &mut self,
        storage: &mut MemStorage<u64>,
        meta: &SnapshotMeta<u64>,
        data: &Bytes,
    ) -> io::Result<()> {
        self.0
            .install(&mut self.1.lock().expect("ok"), meta, data)?;
        self.0.install(storage, meta, data)
    }
    fn load(&mut self, storage: &MemStorage<u64>) -> io::Result<Option<Bytes>> {
        self.0.load(storage)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarts_from_its_snapshot_and_the_log_after_it() {
    let hub = Arc::new(Hub::default());
    let disk = Arc::new(Mutex::new(MemStorage::new(vec![1u64])));
    let store = MemSnapshots::new();
    let run = |storage: MemStorage<u64>, record: Record| {
        let node = RaftNode::new(1, storage, node_config(1)).expect("restart");
        spawn_with_snapshots(
            node,
            Mirror(Arc::clone(&disk)),
            hub.transport(1),
            Recorder(record),
            MirrorSnapshots(store.clone(), Arc::clone(&disk)),
            driver_config(0),
        )
        .expect("start")
    };
    let before = Record::default();
    let handle = run(disk.lock().expect("ok").clone(), before.clone());
    let handles = Arc::new(Mutex::new(vec![handle.clone()]));
    for i in 0..30 {
        propose(&handles, &format!("a{i}")).await;
    }
    let snapshot = handle.snapshot().await.expect("snapshot");
    for i in 0..10 {
        propose(&handles, &format!("b{i}")).await;
    }
    handle.shutdown().await;
    assert_eq!(handle.snapshot().await, Err(SnapshotCommandError::ShutDown));

    let storage = disk.lock().expect("ok").clone();
    assert_eq!(storage.snapshot().map(|s| s.index), Some(snapshot));
    assert_eq!(storage.first_index(), snapshot + 1, "compacted");
    assert!(storage.last_index() > snapshot + 9, "the log after it");
    let after = Record::default();
    let handle = run(storage, after.clone());
    // Restored from the snapshot on start, then the log replayed.
    assert_eq!(after.restores(), 1);
    let want = before.commands();
    assert_eq!(want.len(), 40);
    eventually(10, "the state before the restart", || {
        after.commands() == want
    })
    .await;
    *handles.lock().expect("ok") = vec![handle.clone()];
    let more = propose(&handles, "c").await;
    eventually(10, "a new command applied", || {
        after.commands().last() == Some(&more)
    })
    .await;
    handle.shutdown().await;
}

/// The same on disk: `DiskStorage` with `DiskPersister`, snapshot bytes
/// in `DiskSnapshots`; the restart reopens both directories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_node_restarts_from_its_snapshot_and_the_log_after_it() {
    let hub = Arc::new(Hub::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let (log_dir, snap_dir) = (dir.path().join("log"), dir.path().join("snapshots"));
    let run = |record: Record| {
        let storage = DiskStorage::open(
            &log_dir,
            Membership::from_voters([1u64]),
            DiskStorageConfig::default(),
        )
        .expect("open");
        let node = RaftNode::new(1, storage, node_config(1)).expect("restart");
        spawn_with_snapshots(
            node,
            DiskPersister,
            hub.transport(1),
            Recorder(record),
            DiskSnapshots::open(&snap_dir).expect("snapshot dir"),
            driver_config(0),
        )
        .expect("start")
    };
    let before = Record::default();
    let handle = run(before.clone());
    let handles = Arc::new(Mutex::new(vec![handle.clone()]));
    for i in 0..30 {
        propose(&handles, &format!("a{i}")).await;
    }
    let snapshot = handle.snapshot().await.expect("snapshot");
    for i in 0..10 {
        propose(&handles, &format!("b{i}")).await;
    }
    let status = handle.status();
    assert_eq!(
        (status.snapshot_index, status.first_index),
        (snapshot, snapshot + 1)
    );
    handle.shutdown().await;

    let after = Record::default();
    let handle = run(after.clone());
    assert_eq!(after.restores(), 1, "restored from the snapshot file");
    let want = before.commands();
    assert_eq!(want.len(), 40);
    eventually(10, "the state before the restart", || {
        after.commands() == want
    })
    .await;
    handle.shutdown().await;
}

/// Staging is bounded: a follower whose `max_snapshot_size` is below the
/// snapshot it is sent stops (its handle says so) instead of buffering
/// it; the others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_over_the_staging_bound_stops_the_follower() {
    let hub = Arc::new(Hub::default());
    let voters = vec![1u64, 2, 3];
    let mut nodes: Vec<_> = [1u64, 2]
        .iter()
        .map(|&id| start(&hub, id, MemStorage::new(voters.clone()), 0))
        .collect();
    let mut small = driver_config(0);
    small.max_snapshot_size = 64;
    let node = RaftNode::new(3, MemStorage::new(voters.clone()), node_config(3)).expect("boot");
    let record = Record::default();
    let third = spawn_with_snapshots(
        node,
        MemPersister,
        hub.transport(3),
        Recorder(record.clone()),
        MemSnapshots::new(),
        small,
    )
    .expect("start");
    let l = leader(&nodes).await;
    hub.cut(3);
    let handles = Arc::new(Mutex::new(nodes.iter().map(|n| n.handle.clone()).collect()));
    for i in 0..30 {
        propose(&handles, &format!("command-{i}")).await;
    }
    let l = if nodes[l].handle.status().role == dsys_consensus::Role::Leader {
        l
    } else {
        leader(&nodes).await
    };
    nodes[l].handle.snapshot().await.expect("snapshot");
    hub.heal(3);
    eventually(20, "the follower stopped", || third.is_shut_down()).await;
    assert!(record.commands().is_empty(), "nothing restored");
    nodes.retain(|n| !n.handle.is_shut_down());
    assert_eq!(nodes.len(), 2);
    propose(&handles, "after").await;
    for n in &nodes {
        n.handle.shutdown().await;
    }
}
