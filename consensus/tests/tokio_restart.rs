//! Three OS processes, each a node run by the tokio driver over TCP on
//! 127.0.0.1 with a [`DiskStorage`] in its own directory and the
//! [`DiskPersister`], with four concurrent clients. The leader is killed
//! with SIGKILL and restarted from its directory, three times. Every write
//! a client saw acknowledged is applied exactly once on every node, the
//! restarted ones included, in the same order everywhere, and every node
//! ends with the same state (issue 17, acceptance 1; Raft §5.4 and §8).
//!
//! The state machine (the list of applied commands) lives in memory and is
//! rebuilt on restart by replaying the log: the node starts with
//! `Config::applied` 0, so every committed entry is applied again, from
//! index 1, once the restarted node learns the commit index.
//!
//! The test binary is its own child: `child_node` runs a node when
//! `DSYS_RAFT_CHILD` names one (its directory in `DSYS_RAFT_DIR`, the Raft
//! address to bind in `DSYS_RAFT_BIND`, any port if unset), and does
//! nothing otherwise. A child prints its two addresses (Raft and clients)
//! and what it recovered from its directory (last log index and term),
//! reads every node's Raft address from stdin, then serves a line protocol
//! to clients: `P <command>` proposes, `D` reads (ReadIndex) and dumps the
//! applied commands, `S` tells the role.

mod tokio_common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dsys_consensus::durable::{DiskStorage, DiskStorageConfig};
use dsys_consensus::tokio::{DiskPersister, TcpConfig, TcpTransport};
use dsys_consensus::{Config, Membership, RaftNode, Storage};
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep, timeout};
use tokio_common::{ask, peers_from_parent, propose, run_node, spawn_child, tell_peers};

const NODES: u64 = 3;
const KILLS: usize = 3;

// ---- The child: one node ----

#[test]
fn child_node() {
    let Ok(id) = std::env::var("DSYS_RAFT_CHILD") else {
        return;
    };
    let id: u64 = id.parse().expect("a node id");
    let dir = std::env::var("DSYS_RAFT_DIR").expect("a directory");
    let bind = std::env::var("DSYS_RAFT_BIND").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(serve(id, Path::new(&dir), &bind));
}

/// Binds `addr`, retrying for a while: a restarted node takes back its
/// Raft port, which another socket may hold for a moment.
async fn bind(addr: &str) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    }
}

async fn serve(id: u64, dir: &Path, bind_to: &str) {
    // The same call creates the log on the first start and reopens it on a
    // restart (the bootstrap membership is then ignored).
    let storage = DiskStorage::open(
        dir,
        Membership::from_voters(1..=NODES),
        DiskStorageConfig::default(),
    )
    .expect("open the log");
    let raft = bind(bind_to).await;
    let clients = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!(
        "ADDRS {} {} {} {}",
        raft.local_addr().expect("bound"),
        clients.local_addr().expect("bound"),
        storage.last_index(),
        storage.hard_state().term
    );
    std::io::stdout().flush().expect("stdout");
    // The parent holds stdin open: when it dies, so does this node.
    let peers = peers_from_parent();
    let mut config = Config::default();
    // A different seed on every start, so that a restarted node does not
    // draw the same election timeouts as before.
    config.seed = id
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()));
    // The state machine is in memory: every committed entry is applied
    // again after a restart (`applied` 0, the default).
    config.applied = 0;
    let node = RaftNode::new(id, storage, config).expect("restart from the log");
    let others = peers.iter().filter(|(n, _)| *n != id).copied();
    let mut tcp = TcpConfig::default();
    tcp.reconnect_max = Duration::from_millis(200);
    let transport = TcpTransport::new(raft, others, tcp).expect("config");
    run_node(node, DiskPersister, transport, clients).await;
}

struct Node {
    process: Child,
    raft: SocketAddr,
    client: SocketAddr,
    /// The last log index and the term it recovered from its directory.
    recovered: (u64, u64),
}

/// Kills every child, even when the test fails; removes the directories.
struct Cluster {
    nodes: Vec<Node>,
    peers: String,
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.process.kill();
            let _ = node.process.wait();
        }
    }
}

/// Starts node `id` on `dir`, binding `raft` ("127.0.0.1:0" for any port);
/// returns it once it has printed its addresses.
fn launch(id: u64, dir: &Path, raft: &str) -> Node {
    let (process, fields) = spawn_child(
        id,
        &[
            (
                "DSYS_RAFT_DIR",
                dir.join(format!("node-{id}")).display().to_string(),
            ),
            ("DSYS_RAFT_BIND", raft.to_owned()),
        ],
    );
    assert_eq!(fields.len(), 4, "addresses, last index, term");
    Node {
        process,
        raft: fields[0].parse().expect("addr"),
        client: fields[1].parse().expect("addr"),
        recovered: (
            fields[2].parse().expect("an index"),
            fields[3].parse().expect("a term"),
        ),
    }
}

fn start() -> Cluster {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut nodes: Vec<Node> = (1..=NODES)
        .map(|id| launch(id, dir.path(), "127.0.0.1:0"))
        .collect();
    let peers = nodes
        .iter()
        .zip(1..)
        .map(|(n, id)| format!("{id}={}", n.raft))
        .collect::<Vec<_>>()
        .join(" ")
        + "\n";
    for node in &mut nodes {
        tell_peers(&mut node.process, &peers);
    }
    Cluster { nodes, peers, dir }
}

impl Cluster {
    /// SIGKILLs node `i` (0-based) and waits until it is gone.
    fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.process.kill().expect("SIGKILL");
        node.process.wait().expect("reaped");
    }

    /// Starts node `i` again on its directory and its Raft address.
    fn restart(&mut self, i: usize) {
        let id = i as u64 + 1;
        let raft = self.nodes[i].raft.to_string();
        let mut node = launch(id, self.dir.path(), &raft);
        assert_eq!(node.raft, self.nodes[i].raft, "the same Raft address");
        tell_peers(&mut node.process, &self.peers);
        self.nodes[i] = node;
    }
}

async fn leader(cluster: &Cluster) -> usize {
    timeout(Duration::from_secs(20), async {
        loop {
            for (i, node) in cluster.nodes.iter().enumerate() {
                if ask(node.client, "S").await.as_deref() == Some("OK true") {
                    return i;
                }
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a leader within 20 s")
}

/// The commands `client` has applied once a read through it succeeds and
/// shows every one of `expected`; panics after 20 s.
async fn applied_log(client: SocketAddr, expected: &[String]) -> Vec<String> {
    timeout(Duration::from_secs(20), async {
        loop {
            if let Some(answer) = ask(client, "D").await {
                if let Some(items) = answer.strip_prefix("OK ") {
                    let items: Vec<String> = items
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if expected.iter().all(|a| items.contains(a)) {
                        return items;
                    }
                }
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the node applies every acknowledged write")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_leaders_killed_and_restarted_from_disk() {
    let mut cluster = start();
    let addrs: Arc<Mutex<Vec<Option<SocketAddr>>>> = Arc::new(Mutex::new(
        cluster.nodes.iter().map(|n| Some(n.client)).collect(),
    ));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let per_client = 40;
    let mut clients = Vec::new();
    for c in 0..4 {
        let addrs = Arc::clone(&addrs);
        let acked = Arc::clone(&acked);
        clients.push(tokio::spawn(async move {
            for i in 0..per_client {
                let sent = propose(&addrs, &format!("c{c}-{i}")).await;
                acked.lock().expect("ok").push(sent);
            }
        }));
    }
    // Kill the leader and restart it, three times, while the clients write.
    let mut restarts = Vec::new();
    for kills in 1..=KILLS {
        let until = kills * 35;
        timeout(Duration::from_secs(30), async {
            while acked.lock().expect("ok").len() < until {
                sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("writes go on");
        // Committed before the victim answers as leader, so in its log
        // (Leader Completeness), durably: the persister syncs each batch
        // before the node counts it.
        let committed = acked.lock().expect("ok").len();
        let victim = leader(&cluster).await;
        addrs.lock().expect("ok")[victim] = None;
        cluster.kill(victim);
        // What was acknowledged before the kill.
        let before = acked.lock().expect("ok").clone();
        sleep(Duration::from_millis(100)).await;
        cluster.restart(victim);
        let (last_index, term) = cluster.nodes[victim].recovered;
        assert!(term > 0, "the restarted node recovered its term");
        assert!(
            last_index >= committed as u64,
            "node {} recovered {last_index} entries, fewer than the {committed} writes acknowledged",
            victim + 1
        );
        restarts.push((victim + 1, last_index, term));
        let client = cluster.nodes[victim].client;
        // The restarted node replays its log and catches up: a read through
        // it shows every write acknowledged before it was killed.
        applied_log(client, &before).await;
        addrs.lock().expect("ok")[victim] = Some(client);
    }
    for client in clients {
        timeout(Duration::from_secs(60), client)
            .await
            .expect("clients finish")
            .expect("no panic");
    }
    let acked = acked.lock().expect("ok").clone();
    assert_eq!(acked.len(), 4 * per_client);
    // Every node, the restarted ones included, once it has applied
    // everything: the same log, with every acknowledged write exactly once.
    let mut logs = Vec::new();
    for node in &cluster.nodes {
        logs.push(applied_log(node.client, &acked).await);
    }
    for log in &logs[1..] {
        assert_eq!(log, &logs[0], "the same order on every node");
    }
    for a in &acked {
        assert_eq!(
            logs[0].iter().filter(|x| *x == a).count(),
            1,
            "{a} applied exactly once"
        );
    }
    eprintln!(
        "killed and restarted (node, recovered last index, term): {restarts:?}; \
         {} writes acknowledged, {} applied on every node",
        acked.len(),
        logs[0].len()
    );
}
