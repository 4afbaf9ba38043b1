//! Group commit in the tokio driver on `DiskStorage`: three nodes over TCP
//! on 127.0.0.1, each on its own `DiskStorage` in a temporary directory,
//! many concurrent proposals. A counting wrapper around `DiskPersister`
//! counts the Persist batches and the entries they carry, and the storage
//! counts its syncs (`DiskStorage::sync_counters`: each background sync
//! covers every round of the driver staged before it started); on average
//! at least four entries must share a sync, and every proposal is applied
//! in the same order on every node.
//!
//! The wrapper also checks the order the driver sees: each batch's future
//! resolves only once the storage's syncer has finished the sync request
//! made for it (its fsyncs returned), never before; and rounds are staged
//! while an earlier round's sync is still running (the fsync is off the
//! driver's task).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dsys_consensus::durable::{DiskStorage, DiskStorageConfig, SyncCounters};
use dsys_consensus::tokio::{
    DiskPersister, DriverConfig, Handle, PersistFuture, Persister, ProposeError, TcpConfig,
    TcpTransport, spawn,
};
use dsys_consensus::{Config, Entry, EntryKind, HardState, Membership, Persist, RaftNode};
use tokio::net::TcpListener;
use tokio::time::{sleep, timeout};

struct Counts {
    /// The storage's own counts.
    disk: SyncCounters,
    /// `persist` / `persist_all` calls.
    calls: AtomicU64,
    /// Calls made while an earlier call's future had not resolved.
    overlapped: AtomicU64,
    /// Futures not yet resolved.
    pending: Arc<AtomicU64>,
    /// Futures that resolved before the sync request made for them was
    /// durable: must stay 0.
    early: Arc<AtomicU64>,
    batches: AtomicU64,
    entries: AtomicU64,
    /// Most batches one sync made durable.
    most_batches: AtomicU64,
}

impl Counts {
    fn new(disk: SyncCounters) -> Self {
        Self {
            disk,
            calls: AtomicU64::new(0),
            overlapped: AtomicU64::new(0),
            pending: Arc::default(),
            early: Arc::default(),
            batches: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            most_batches: AtomicU64::new(0),
        }
    }
}

struct Counting(Arc<Counts>);

impl Counting {
    /// Wraps `DiskPersister`'s future: notes the sync request it made (the
    /// storage's latest, since this task is the only one requesting) and
    /// checks, when it resolves, that the request is durable.
    fn watch(&self, future: PersistFuture) -> PersistFuture {
        let c = &self.0;
        c.calls.fetch_add(1, Ordering::Relaxed);
        if c.pending.fetch_add(1, Ordering::AcqRel) > 0 {
            c.overlapped.fetch_add(1, Ordering::Relaxed);
        }
        let request = c.disk.requests();
        let disk = c.disk.clone();
        let (pending, early) = (Arc::clone(&c.pending), Arc::clone(&c.early));
        Box::pin(async move {
            let result = future.await;
            if result.is_ok() && disk.requests_durable() < request {
                early.fetch_add(1, Ordering::Relaxed);
            }
            pending.fetch_sub(1, Ordering::AcqRel);
            result
        })
    }
}

impl Persister<DiskStorage<u64>> for Counting {
    fn persist(
        &mut self,
        storage: &mut DiskStorage<u64>,
        batch: Persist<HardState<u64>, u64>,
    ) -> PersistFuture {
        self.0.batches.fetch_add(1, Ordering::Relaxed);
        self.0
            .entries
            .fetch_add(batch.entries.len() as u64, Ordering::Relaxed);
        let future = DiskPersister.persist(storage, batch);
        self.watch(future)
    }

    fn persist_all(
        &mut self,
        storage: &mut DiskStorage<u64>,
        batches: Vec<Persist<HardState<u64>, u64>>,
    ) -> PersistFuture {
        let n = batches.len() as u64;
        self.0.batches.fetch_add(n, Ordering::Relaxed);
        self.0.most_batches.fetch_max(n, Ordering::Relaxed);
        let entries: usize = batches.iter().map(|b| b.entries.len()).sum();
        self.0.entries.fetch_add(entries as u64, Ordering::Relaxed);
        let future = DiskPersister.persist_all(storage, batches);
        self.watch(future)
    }
}

type Log = Arc<Mutex<Vec<Bytes>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_share_fsyncs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ids = [1u64, 2, 3];
    let mut listeners = Vec::new();
    let mut peers: Vec<(u64, SocketAddr)> = Vec::new();
    for &id in &ids {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        peers.push((id, listener.local_addr().expect("bound")));
        listeners.push(listener);
    }
    let mut counts: Vec<Arc<Counts>> = Vec::new();
    let mut handles: Vec<Handle<u64, ()>> = Vec::new();
    let mut logs: Vec<Log> = Vec::new();
    for (&id, listener) in ids.iter().zip(listeners) {
        let storage = DiskStorage::<u64>::open(
            dir.path().join(id.to_string()),
            Membership::from_voters(ids),
            DiskStorageConfig::default(),
        )
        .expect("open");
        let mut config = Config::default();
        config.seed = id;
        let node = RaftNode::new(id, storage, config).expect("node");
        let c = Arc::new(Counts::new(node.storage().sync_counters()));
        counts.push(Arc::clone(&c));
        let others = peers.iter().filter(|(p, _)| *p != id).copied();
        let transport = TcpTransport::new(listener, others, TcpConfig::default()).expect("config");
        let log: Log = Arc::default();
        let applied = Arc::clone(&log);
        let state_machine = move |entry: &Entry<u64>| {
            if matches!(entry.kind, EntryKind::Command) && !entry.data.is_empty() {
                applied
                    .lock()
                    .expect("not poisoned")
                    .push(entry.data.clone());
            }
        };
        let mut driver = DriverConfig::default();
        driver.tick = Duration::from_millis(10);
        let persister = Counting(c);
        handles.push(spawn(node, persister, transport, state_machine, driver).expect("config"));
        logs.push(log);
    }

    const CLIENTS: usize = 64;
    const EACH: usize = 10;
    let handles = Arc::new(handles);
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let handles = Arc::clone(&handles);
        tasks.push(tokio::spawn(async move {
            let mut target = 0usize;
            for i in 0..EACH {
                let data = Bytes::from(format!("{c}-{i}"));
                loop {
                    match handles[target].propose(data.clone()).await {
                        Ok(_) => break,
                        Err(ProposeError::NotLeader { leader: Some(l) }) => {
                            target = l as usize - 1;
                        }
                        Err(_) => {
                            sleep(Duration::from_millis(10)).await;
                            target = (target + 1) % handles.len();
                        }
                    }
                }
            }
        }));
    }
    timeout(Duration::from_secs(60), async {
        for t in tasks {
            t.await.expect("client");
        }
    })
    .await
    .expect("every proposal applied within 60 s");

    let total = CLIENTS * EACH;
    let applied = timeout(Duration::from_secs(10), async {
        loop {
            let logs: Vec<Vec<Bytes>> = logs
                .iter()
                .map(|l| l.lock().expect("not poisoned").clone())
                .collect();
            if logs.iter().all(|l| l.len() >= total) {
                return logs;
            }
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every node applies every command");
    assert_eq!(applied[0].len(), total);
    assert!(applied.iter().all(|l| *l == applied[0]));

    for h in handles.iter() {
        h.shutdown().await;
    }
    let (mut syncs, mut batches, mut entries, mut most) = (0, 0, 0, 0);
    let (mut calls, mut overlapped, mut early) = (0, 0, 0);
    for c in &counts {
        syncs += c.disk.syncs();
        batches += c.batches.load(Ordering::Relaxed);
        entries += c.entries.load(Ordering::Relaxed);
        most = most.max(c.most_batches.load(Ordering::Relaxed));
        calls += c.calls.load(Ordering::Relaxed);
        overlapped += c.overlapped.load(Ordering::Relaxed);
        early += c.early.load(Ordering::Relaxed);
    }
    eprintln!(
        "syncs {syncs}, batches {batches}, entries {entries}, most batches per round {most}, \
         rounds {calls}, rounds staged while a sync ran {overlapped}"
    );
    assert_eq!(
        early, 0,
        "a batch was acknowledged before its sync finished"
    );
    // The driver stages rounds while a sync runs (pipelining), and one
    // sync covers several of them.
    assert!(overlapped > 0, "no round was staged while a sync ran");
    assert!(syncs < calls, "{syncs} syncs for {calls} rounds");
    // Every entry is written on three nodes: one sync per entry would be
    // 3 × total syncs; group commit needs far fewer.
    assert!(entries >= 3 * total as u64);
    assert!(
        syncs * 4 <= entries,
        "{syncs} syncs for {entries} entries: under 4 entries per sync"
    );
    // The node hands out one Persist batch per drain (whatever was
    // proposed or received since the last), so a round of the driver is
    // usually one batch: `most` is reported, not asserted.
    assert!(most >= 1);
}

/// `DiskPersister::persist_all` on several batches at once: every one is
/// durable (entries and the hard state) once its future resolves.
#[tokio::test]
async fn persist_all_makes_every_batch_durable() {
    use dsys_consensus::Storage;
    let dir = tempfile::tempdir().expect("temp dir");
    let open = || {
        DiskStorage::<u64>::open(
            dir.path(),
            Membership::from_voters([1, 2, 3]),
            DiskStorageConfig::default(),
        )
        .expect("open")
    };
    let mut storage = open();
    let batches: Vec<Persist<HardState<u64>, u64>> = (1..=4u64)
        .map(|id| Persist {
            id,
            hard_state: (id == 2).then_some(HardState {
                term: 1,
                vote: Some(1),
                commit: 0,
            }),
            entries: vec![Entry::new(1, id, format!("x={id}"))],
        })
        .collect();
    DiskPersister
        .persist_all(&mut storage, batches)
        .await
        .expect("durable");
    drop(storage);
    let storage = open();
    assert_eq!(storage.last_index(), 4);
    assert_eq!(storage.hard_state().vote, Some(1));
}
