//! Loopback benchmark of the tokio driver on `DiskStorage` with real fsync
//! (issue 17, acceptance 2): three nodes in one process over the TCP
//! transport on 127.0.0.1, each on its own `DiskStorage` in a temporary
//! directory, closed-loop clients (1, 16, 256 by default) proposing
//! 128-byte commands to the leader for a fixed time each. Reports commits
//! per second, p50/p99 latency (propose to applied on the leader), the
//! leader's syncs and file fsyncs per second and entries per sync; and, in
//! the same run and directory, the physical floor: fsyncs per second of a
//! file (write 128 B + `fdatasync`, in a loop). The three nodes share the
//! disk, so `all_fsyncs/floor` (file fsyncs of the three nodes per second
//! over the floor) is the share of the disk's fsync rate in use, and
//! `leader_fsyncs/floor` the leader's alone. `floor3` runs the floor's
//! loop on three files at once (one thread each) and sums them: the rate
//! three writers get from the disk together; the nodes share one disk, so
//! `floor3` is the ceiling for the three together and `floor3/3` for one
//! node. Syncs and fsyncs are the storage's own counts
//! (`DiskStorage::sync_counters`): a sync is one round of the storage's
//! syncer (it covers every round of the driver staged before it started)
//! and makes one or two fsyncs (segment; directory after a new segment;
//! a commit index that moved is written to the state file without one,
//! since the commit index is lazy).
//!
//! An example binary, not a criterion bench: each point is a multi-second
//! closed-loop run of a whole cluster with its own latency distribution,
//! which criterion's repeated-iteration model does not fit.
//!
//! ```text
//! cargo run --release -p dsys-consensus --example loopback_bench -- [SECS] [DIR] [CLIENTS,..]
//! cargo run --release -p dsys-consensus --example loopback_bench -- 5 /var/tmp 1,16,256
//! ```
//! DIR must be on the disk to measure (not tmpfs); it defaults to the
//! system temporary directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dsys_consensus::durable::{DiskStorage, DiskStorageConfig, SyncCounters};
use dsys_consensus::tokio::{
    DiskPersister, DriverConfig, Handle, PersistFuture, Persister, ProposeError, TcpConfig,
    TcpTransport, spawn,
};
use dsys_consensus::{Config, Entry, HardState, Membership, Persist, RaftNode, Role};
use tokio::net::TcpListener;
use tokio::time::sleep;

/// What one node's persister and storage did.
struct Counts {
    /// The storage's own counts: syncs (each covers every request made
    /// before it started, so several rounds of the driver) and the file
    /// and directory fsyncs they made.
    disk: SyncCounters,
    batches: AtomicU64,
    entries: AtomicU64,
}

impl Counts {
    fn snapshot(&self) -> [u64; 4] {
        [
            self.disk.syncs(),
            self.disk.fsyncs(),
            self.batches.load(Ordering::Relaxed),
            self.entries.load(Ordering::Relaxed),
        ]
    }
}

/// `DiskPersister`, counting.
struct Counting(Arc<Counts>);

impl Persister<DiskStorage<u64>> for Counting {
    fn persist(
        &mut self,
        storage: &mut DiskStorage<u64>,
        batch: Persist<HardState<u64>, u64>,
    ) -> PersistFuture {
        self.persist_all(storage, vec![batch])
    }

    fn persist_all(
        &mut self,
        storage: &mut DiskStorage<u64>,
        batches: Vec<Persist<HardState<u64>, u64>>,
    ) -> PersistFuture {
        let entries: usize = batches.iter().map(|b| b.entries.len()).sum();
        let c = &self.0;
        c.batches.fetch_add(batches.len() as u64, Ordering::Relaxed);
        c.entries.fetch_add(entries as u64, Ordering::Relaxed);
        DiskPersister.persist_all(storage, batches)
    }
}

/// Fsyncs per second of a file in `dir`: append 128 B, `fdatasync`.
fn raw_fsyncs_per_s(dir: &Path, secs: f64) -> f64 {
    raw_fsyncs_per_s_sized(dir, secs, 128)
}

/// Appends of `len` bytes + `fdatasync` per second, on one file.
fn raw_fsyncs_per_s_sized(dir: &Path, secs: f64, len: usize) -> f64 {
    let path = dir.join("floor.dat");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("floor file");
    let record = vec![7u8; len.max(1)];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        file.write_all(&record).expect("write");
        file.sync_data().expect("fdatasync");
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(path);
    rate
}

/// Fsyncs per second of three files in `dir` at once, one thread each
/// (the three nodes share the disk): the sum.
fn raw_fsyncs_per_s_3(dir: &Path, secs: f64) -> f64 {
    raw_fsyncs_per_s_3_sized(dir, secs, 128)
}

/// The same with appends of `len` bytes: the floor for syncs that each
/// carry that many bytes.
fn raw_fsyncs_per_s_3_sized(dir: &Path, secs: f64, len: usize) -> f64 {
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let dir = dir.join(i.to_string());
            std::thread::spawn(move || {
                std::fs::create_dir_all(&dir).expect("floor dir");
                raw_fsyncs_per_s_sized(&dir, secs, len)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("floor thread"))
        .sum()
}

struct Cluster {
    handles: Vec<Handle<u64, ()>>,
    counts: Vec<Arc<Counts>>,
}

async fn cluster(dir: &Path) -> Cluster {
    let ids = [1u64, 2, 3];
    let mut listeners = Vec::new();
    let mut peers: Vec<(u64, SocketAddr)> = Vec::new();
    for &id in &ids {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        peers.push((id, listener.local_addr().expect("bound")));
        listeners.push(listener);
    }
    let mut handles = Vec::new();
    let mut counts = Vec::new();
    for (&id, listener) in ids.iter().zip(listeners) {
        let storage = DiskStorage::<u64>::open(
            dir.join(id.to_string()),
            Membership::from_voters(ids),
            DiskStorageConfig::default(),
        )
        .expect("open");
        let mut config = Config::default();
        config.seed = id;
        let node = RaftNode::new(id, storage, config).expect("node");
        let others = peers.iter().filter(|(p, _)| *p != id).copied();
        let transport = TcpTransport::new(listener, others, TcpConfig::default()).expect("config");
        let mut driver = DriverConfig::default();
        driver.tick = Duration::from_millis(10);
        let c = Arc::new(Counts {
            disk: node.storage().sync_counters(),
            batches: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        });
        let persister = Counting(Arc::clone(&c));
        handles
            .push(spawn(node, persister, transport, |_: &Entry<u64>| (), driver).expect("config"));
        counts.push(c);
    }
    Cluster { handles, counts }
}

struct Point {
    clients: usize,
    commits_per_s: f64,
    p50: Duration,
    p99: Duration,
    leader: [f64; 4],
    all_fsyncs_per_s: f64,
    /// Bytes the leader appended per sync (segment bytes over entries,
    /// times entries per sync).
    bytes_per_sync: f64,
}

async fn run_point(base: &Path, clients: usize, secs: f64) -> Point {
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let cluster = cluster(dir.path()).await;
    let leader = loop {
        if let Some(i) = cluster
            .handles
            .iter()
            .position(|h| h.status().role == Role::Leader)
        {
            break i;
        }
        sleep(Duration::from_millis(10)).await;
    };
    let handle = cluster.handles[leader].clone();
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (handle, measuring, stop, latencies) = (
            handle.clone(),
            Arc::clone(&measuring),
            Arc::clone(&stop),
            Arc::clone(&latencies),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut data = vec![0u8; 128];
            data[..8].copy_from_slice(&(c as u64).to_le_bytes());
            let data = Bytes::from(data);
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                match handle.propose(data.clone()).await {
                    Ok(_) => {
                        if measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                            mine.push(start.elapsed());
                        }
                    }
                    Err(ProposeError::ShutDown) => break,
                    Err(e) => panic!("proposal failed: {e}"),
                }
            }
            latencies.lock().expect("not poisoned").extend(mine);
        }));
    }
    // Warm up, then measure.
    sleep(Duration::from_millis(500)).await;
    let before: Vec<[u64; 4]> = cluster.counts.iter().map(|c| c.snapshot()).collect();
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let after: Vec<[u64; 4]> = cluster.counts.iter().map(|c| c.snapshot()).collect();
    for t in tasks {
        t.await.expect("client");
    }
    for h in &cluster.handles {
        h.shutdown().await;
    }
    let leader_bytes = dir_bytes(&dir.path().join((leader + 1).to_string()));
    let leader_entries = after[leader][3].max(1) as f64;
    let mut lat = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let delta = |i: usize| -> [f64; 4] {
        std::array::from_fn(|k| (after[i][k] - before[i][k]) as f64 / elapsed)
    };
    let all_fsyncs_per_s = (0..3).map(|i| delta(i)[1]).sum();
    let [syncs, _, _, entries] = delta(leader);
    let bytes_per_sync = if syncs > 0.0 {
        leader_bytes as f64 / leader_entries * entries / syncs
    } else {
        0.0
    };
    Point {
        clients,
        commits_per_s: lat.len() as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        leader: delta(leader),
        all_fsyncs_per_s,
        bytes_per_sync,
    }
}

/// Bytes of the files under `dir` (the log's segments and state file).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().map_or(5.0, |s| s.parse().expect("SECS"));
    let base: PathBuf = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let levels: Vec<usize> = args.next().map_or_else(
        || vec![1, 16, 256],
        |s| s.split(',').map(|n| n.parse().expect("CLIENTS")).collect(),
    );
    println!("dir {} , {secs} s per point", base.display());
    let floor = {
        let dir = tempfile::tempdir_in(&base).expect("temp dir");
        raw_fsyncs_per_s(dir.path(), secs.min(3.0))
    };
    let floor3 = {
        let dir = tempfile::tempdir_in(&base).expect("temp dir");
        raw_fsyncs_per_s_3(dir.path(), secs.min(3.0))
    };
    println!("floor: {floor:.0} fdatasyncs/s (128 B append + fdatasync, one file)");
    println!("floor3: {floor3:.0} fdatasyncs/s (the same on three files at once, summed)");
    println!(
        "clients  commits/s   p50_ms   p99_ms  leader_syncs/s  leader_fsyncs/s  entries/sync  \
         all_nodes_fsyncs/s  leader_fsyncs/floor  leader_fsyncs/(floor3/3)  leader_syncs/(floor3/3)  \
         all_fsyncs/floor  all_fsyncs/floor3  commits/floor  bytes/sync  floor3@bytes  \
         leader_syncs/(floor3@bytes/3)"
    );
    for clients in levels {
        let p = run_point(&base, clients, secs).await;
        let [syncs, fsyncs, _batches, entries] = p.leader;
        // The floor for this point's syncs: three files at once, each
        // append as large as the leader's average sync.
        let floor3_sized = {
            let dir = tempfile::tempdir_in(&base).expect("temp dir");
            raw_fsyncs_per_s_3_sized(dir.path(), secs.min(3.0), p.bytes_per_sync as usize)
        };
        println!(
            "{:>7}  {:>9.0}  {:>7.2}  {:>7.2}  {:>14.0}  {:>15.0}  {:>12.1}  {:>18.0}  {:>19.2}  {:>24.2}  {:>22.2}  {:>16.2}  {:>17.2}  {:>13.2}",
            p.clients,
            p.commits_per_s,
            p.p50.as_secs_f64() * 1e3,
            p.p99.as_secs_f64() * 1e3,
            syncs,
            fsyncs,
            if syncs > 0.0 { entries / syncs } else { 0.0 },
            p.all_fsyncs_per_s,
            fsyncs / floor,
            fsyncs / (floor3 / 3.0),
            syncs / (floor3 / 3.0),
            p.all_fsyncs_per_s / floor,
            p.all_fsyncs_per_s / floor3,
            p.commits_per_s / floor,
        );
        println!(
            "         bytes/sync {:.0}, floor3@bytes {:.0} fdatasyncs/s, leader_syncs/(floor3@bytes/3) {:.2}",
            p.bytes_per_sync,
            floor3_sized,
            syncs / (floor3_sized / 3.0),
        );
    }
}
