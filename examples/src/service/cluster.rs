//! The machinery of chapter `service`: a node on the tokio driver with its
//! log on disk and its peers over TCP, the key-value state machine it
//! applies, and the clients that write to it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dsys_consensus::durable::{DiskStorage, DiskStorageConfig};
use dsys_consensus::tokio::{
    DiskPersister, DriverConfig, Handle, ProposeError, ReadError, TcpConfig, TcpTransport, spawn,
};
use dsys_consensus::{Config, Entry, Membership, RaftNode};
use tokio::net::TcpListener;

use crate::report::Res;

/// Real time per Raft tick: with the default 10 to 20 ticks, an election
/// timeout of 200 to 400 ms.
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// The node ids, 1 to 3.
pub(crate) const IDS: [u64; 3] = [1, 2, 3];

/// What a node's state machine holds: the key-value map it applied, shared
/// with the chapter so that it can read it.
pub(crate) type Kv = Arc<Mutex<BTreeMap<String, String>>>;

/// One running node: its handle, its map, and where its files are.
pub(crate) struct Node {
    pub(crate) handle: Handle<u64, ()>,
    pub(crate) kv: Kv,
}

/// The cluster's fixed facts: where each node listens, and its directory.
pub(crate) struct Cluster {
    pub(crate) peers: Vec<(u64, SocketAddr)>,
    pub(crate) root: PathBuf,
    /// Running nodes, by id - 1 (`None` while one is down).
    pub(crate) nodes: Vec<Option<Node>>,
}

impl Cluster {
    /// Binds a listener per node on 127.0.0.1 (ports chosen by the OS) and
    /// starts every node from an empty directory under `root`.
    pub(crate) async fn start(root: &Path) -> Res<Self> {
        let mut listeners = Vec::new();
        let mut peers = Vec::new();
        for id in IDS {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            peers.push((id, listener.local_addr()?));
            listeners.push(listener);
        }
        let mut cluster = Self {
            peers,
            root: root.to_path_buf(),
            nodes: IDS.iter().map(|_| None).collect(),
        };
        for (id, listener) in IDS.into_iter().zip(listeners) {
            cluster.launch(id, listener)?;
        }
        Ok(cluster)
    }

    /// (Re)starts node `id` on its own address, from its directory: the
    /// same call creates the log on the first start and reopens it after.
    pub(crate) async fn restart(&mut self, id: u64) -> Res {
        let addr = self.addr(id)?;
        let listener = TcpListener::bind(addr).await?;
        self.launch(id, listener)
    }

    fn launch(&mut self, id: u64, listener: TcpListener) -> Res {
        let storage = DiskStorage::open(
            self.root.join(format!("node-{id}")),
            Membership::from_voters(IDS),
            DiskStorageConfig::default(),
        )?;
        let mut config = Config::default();
        config.seed = id;
        // The map lives in memory only, so a restarted node replays its log
        // from the start: `Config::applied` stays 0.
        let node = RaftNode::new(id, storage, config)?;
        let others = self.peers.iter().filter(|(p, _)| *p != id).copied();
        let transport = TcpTransport::new(listener, others, TcpConfig::default())?;
        let kv = Kv::default();
        let mut driver = DriverConfig::default();
        driver.tick = TICK;
        let handle = spawn(
            node,
            DiskPersister,
            transport,
            apply(Arc::clone(&kv)),
            driver,
        )?;
        self.nodes[index(id)?] = Some(Node { handle, kv });
        Ok(())
    }

    /// Stops node `id` the way a crash would, as far as its peers and its
    /// disk can tell: its task and sockets are gone, and what it had synced
    /// stays in its directory. Its map, in memory, is lost.
    pub(crate) async fn crash(&mut self, id: u64) -> Res {
        let node = self.nodes[index(id)?].take().ok_or("node already down")?;
        node.handle.shutdown().await;
        Ok(())
    }

    /// A linearizable read on node `id` (see chapter `raft`), retried while
    /// the node knows no leader yet (it just started, or an election is
    /// under way). Returns the commit index it confirmed.
    pub(crate) async fn read(&self, id: u64) -> Res<u64> {
        let start = Instant::now();
        loop {
            match self.node(id)?.handle.read().await {
                Ok(index) => return Ok(index),
                Err(ReadError::NoLeader | ReadError::Failed)
                    if start.elapsed() < Duration::from_secs(30) =>
                {
                    tokio::time::sleep(TICK).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub(crate) fn node(&self, id: u64) -> Res<&Node> {
        Ok(self.nodes[index(id)?].as_ref().ok_or("node is down")?)
    }

    fn addr(&self, id: u64) -> Res<SocketAddr> {
        Ok(self
            .peers
            .iter()
            .find(|(p, _)| *p == id)
            .ok_or("unknown node")?
            .1)
    }

    /// Waits until a running node other than `not` leads, and returns it
    /// with the time it took.
    pub(crate) async fn wait_for_leader(&self, not: Option<u64>) -> Res<(u64, Duration)> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            for (id, node) in IDS.iter().zip(&self.nodes) {
                let Some(node) = node else { continue };
                let status = node.handle.status();
                if status.leader == Some(*id) && Some(*id) != not {
                    return Ok((*id, start.elapsed()));
                }
            }
            tokio::time::sleep(TICK / 4).await;
        }
        Err("no leader elected within 30 s".into())
    }

    /// `clients` concurrent clients write `keys` keys (`prefix-0`, ...)
    /// between them; each proposal goes to the node the client believes
    /// leads, and follows `NotLeader` hints. Returns the retries and each
    /// write's latency.
    pub(crate) async fn write(&self, prefix: &str, keys: usize, clients: usize) -> Res<Writes> {
        let handles: Vec<Option<Handle<u64, ()>>> = self
            .nodes
            .iter()
            .map(|n| n.as_ref().map(|n| n.handle.clone()))
            .collect();
        let mut tasks = Vec::new();
        for client in 0..clients {
            let handles = handles.clone();
            let mine: Vec<String> = (client..keys)
                .step_by(clients)
                .map(|k| format!("{prefix}-{k:03}={prefix}{k}"))
                .collect();
            tasks.push(tokio::spawn(
                async move { client_loop(&handles, mine).await },
            ));
        }
        let mut writes = Writes::default();
        for task in tasks {
            let done = task.await??;
            writes.retries += done.retries;
            writes.latencies.extend(done.latencies);
        }
        writes.latencies.sort_unstable();
        Ok(writes)
    }
}

/// What the clients saw.
#[derive(Default)]
pub(crate) struct Writes {
    pub(crate) retries: usize,
    pub(crate) latencies: Vec<Duration>,
}

impl Writes {
    /// The latency below which `q` of the writes finished.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let last = self.latencies.len() - 1;
        // Rounded rank; q is in [0, 1] and the list is short.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((last as f64) * q).round() as usize;
        self.latencies[rank.min(last)]
    }
}

/// One client's writes, in order; an error is a message (it crosses tasks).
async fn client_loop(
    handles: &[Option<Handle<u64, ()>>],
    commands: Vec<String>,
) -> Result<Writes, String> {
    let mut writes = Writes::default();
    let mut target = 0usize;
    for command in commands {
        let start = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            if attempts > 1_000 {
                return Err(format!("{command} not written after 1000 attempts"));
            }
            let Some(handle) = &handles[target] else {
                target = (target + 1) % handles.len();
                continue;
            };
            match handle.propose(command.clone()).await {
                Ok(_) => break,
                Err(ProposeError::NotLeader {
                    leader: Some(leader),
                }) => {
                    target = index(leader).map_err(|e| e.to_string())?;
                }
                // No leader known, or the entry was lost to a leader change:
                // writing the same key and value again is harmless.
                Err(ProposeError::NotLeader { leader: None } | ProposeError::Lost { .. }) => {
                    writes.retries += 1;
                    tokio::time::sleep(TICK).await;
                    target = (target + 1) % handles.len();
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        writes.latencies.push(start.elapsed());
    }
    Ok(writes)
}

/// The state machine: `key=value` sets a key; anything else (the leader's
/// empty no-op, membership entries) changes nothing.
fn apply(kv: Kv) -> impl FnMut(&Entry<u64>) + Send + 'static {
    move |entry: &Entry<u64>| {
        let Ok(command) = std::str::from_utf8(&entry.data) else {
            return;
        };
        if let Some((key, value)) = command.split_once('=') {
            kv.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.to_owned(), value.to_owned());
        }
    }
}

/// A copy of a node's map.
pub(crate) fn snapshot(kv: &Kv) -> BTreeMap<String, String> {
    kv.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

fn index(id: u64) -> Res<usize> {
    let i = usize::try_from(id)?
        .checked_sub(1)
        .ok_or("node ids start at 1")?;
    if i >= IDS.len() {
        return Err(format!("unknown node {id}").into());
    }
    Ok(i)
}

/// The bytes under a node's directory.
pub(crate) fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
