//! Five OS processes, each a node run by the tokio driver over TCP on
//! 127.0.0.1, with concurrent clients; the leader is killed with SIGKILL,
//! twice. Every write a client saw acknowledged is applied exactly once on
//! every surviving node, in the same order everywhere (Raft §5.4,
//! State Machine Safety; §8, client interaction).
//!
//! The killed nodes are not restarted: their storage is `MemStorage`, and a
//! node restarted without what it persisted could vote twice in a term.
//! `tokio_restart.rs` restarts killed leaders from `DiskStorage`.
//!
//! The test binary is its own child: `child_node` runs a node when
//! `DSYS_RAFT_CHILD` names one, and does nothing otherwise. A child prints
//! its two addresses (Raft and clients), reads every node's Raft address
//! from stdin, then serves a line protocol to clients: `P <command>`
//! proposes, `D` reads (ReadIndex) and dumps the applied commands, `S`
//! tells the role.

mod tokio_common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dsys_consensus::tokio::{MemPersister, TcpConfig, TcpTransport};
use dsys_consensus::{Config, MemStorage, RaftNode};
use tokio::net::TcpListener;
use tokio::time::{sleep, timeout};
use tokio_common::{ask, peers_from_parent, propose, run_node, spawn_child, tell_peers};

const NODES: u64 = 5;

// ---- The child: one node ----

#[test]
fn child_node() {
    let Ok(id) = std::env::var("DSYS_RAFT_CHILD") else {
        return;
    };
    let id: u64 = id.parse().expect("a node id");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(serve(id));
}

async fn serve(id: u64) {
    let raft = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let clients = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!(
        "ADDRS {} {}",
        raft.local_addr().expect("bound"),
        clients.local_addr().expect("bound")
    );
    std::io::stdout().flush().expect("stdout");
    // The parent holds stdin open: when it dies, so does this node.
    let peers = peers_from_parent();
    let ids: Vec<u64> = peers.iter().map(|(n, _)| *n).collect();
    let mut config = Config::default();
    config.seed = id;
    let node = RaftNode::new(id, MemStorage::new(ids), config).expect("bootstrap");
    let others = peers.iter().filter(|(n, _)| *n != id).copied();
    let transport = TcpTransport::new(raft, others, TcpConfig::default()).expect("config");
    run_node(node, MemPersister, transport, clients).await;
}

struct Node {
    process: Child,
    client: SocketAddr,
    alive: bool,
}

/// Kills every child, even when the test fails.
struct Cluster(Vec<Node>);

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.0 {
            let _ = node.process.kill();
            let _ = node.process.wait();
        }
    }
}

fn start() -> Cluster {
    let mut nodes = Vec::new();
    let mut raft_addrs = Vec::new();
    for id in 1..=NODES {
        let (process, fields) = spawn_child(id, &[]);
        assert_eq!(fields.len(), 2, "two addresses");
        let raft: SocketAddr = fields[0].parse().expect("addr");
        let client: SocketAddr = fields[1].parse().expect("addr");
        raft_addrs.push(format!("{id}={raft}"));
        nodes.push(Node {
            process,
            client,
            alive: true,
        });
    }
    let peers = raft_addrs.join(" ") + "\n";
    for node in &mut nodes {
        tell_peers(&mut node.process, &peers);
    }
    Cluster(nodes)
}

async fn leader(cluster: &Cluster) -> usize {
    timeout(Duration::from_secs(20), async {
        loop {
            for (i, node) in cluster.0.iter().enumerate() {
                if node.alive && ask(node.client, "S").await.as_deref() == Some("OK true") {
                    return i;
                }
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a leader within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_leaders_killed_with_sigkill() {
    let mut cluster = start();
    let addrs: Arc<Mutex<Vec<Option<SocketAddr>>>> = Arc::new(Mutex::new(
        cluster.0.iter().map(|n| Some(n.client)).collect(),
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
    // Kill the leader twice, while the clients write.
    for kills in 1..=2 {
        let until = kills * 40;
        timeout(Duration::from_secs(30), async {
            while acked.lock().expect("ok").len() < until {
                sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("writes go on");
        let victim = leader(&cluster).await;
        addrs.lock().expect("ok")[victim] = None;
        let node = &mut cluster.0[victim];
        node.process.kill().expect("SIGKILL");
        node.process.wait().expect("reaped");
        node.alive = false;
    }
    for client in clients {
        timeout(Duration::from_secs(60), client)
            .await
            .expect("clients finish")
            .expect("no panic");
    }
    let acked = acked.lock().expect("ok").clone();
    assert_eq!(acked.len(), 4 * per_client);
    // Every survivor, once it has applied everything: the same log, with
    // every acknowledged write exactly once.
    let mut logs = Vec::new();
    for node in cluster.0.iter().filter(|n| n.alive) {
        let log = timeout(Duration::from_secs(20), async {
            loop {
                if let Some(answer) = ask(node.client, "D").await {
                    if let Some(items) = answer.strip_prefix("OK ") {
                        let items: Vec<String> = items.split(',').map(str::to_owned).collect();
                        if acked.iter().all(|a| items.contains(a)) {
                            return items;
                        }
                    }
                }
                sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("every survivor applies every acknowledged write");
        logs.push(log);
    }
    assert_eq!(logs.len(), 3);
    for log in &logs[1..] {
        assert_eq!(log, &logs[0], "the same order on every survivor");
    }
    for a in &acked {
        assert_eq!(
            logs[0].iter().filter(|x| *x == a).count(),
            1,
            "{a} applied exactly once"
        );
    }
}
