//! The tokio driver over real TCP sockets on 127.0.0.1: three nodes elect a
//! leader; proposals from several tasks at once are applied in the same
//! order on every node (Raft §5.3, Log Matching; §5.4, State Machine
//! Safety); the leader's driver is shut down and the others elect a new one
//! and go on (§5.2); reads through any node see every write acknowledged
//! before them (thesis §6.4, ReadIndex).
//!
//! Ticks are 10 ms, so elections take a few hundred milliseconds; every wait
//! has a generous deadline and proposals retry on `NotLeader`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dsys_consensus::tokio::{
    Applied, DriverConfig, Handle, MemPersister, ProposeError, ReadError, TcpConfig, TcpTransport,
    spawn,
};
use dsys_consensus::{Config, Entry, EntryKind, MemStorage, RaftNode, Role};
use tokio::net::TcpListener;
use tokio::time::{sleep, timeout};

type Log = Arc<Mutex<Vec<Bytes>>>;

struct Cluster {
    handles: Vec<Handle<u64, usize>>,
    logs: Vec<Log>,
}

async fn cluster(size: u64) -> Cluster {
    let ids: Vec<u64> = (1..=size).collect();
    let mut listeners = Vec::new();
    let mut peers: Vec<(u64, SocketAddr)> = Vec::new();
    for &id in &ids {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        peers.push((id, listener.local_addr().expect("bound")));
        listeners.push(listener);
    }
    let mut handles = Vec::new();
    let mut logs = Vec::new();
    for (&id, listener) in ids.iter().zip(listeners) {
        let mut config = Config::default();
        config.seed = id;
        let node = RaftNode::new(id, MemStorage::new(ids.clone()), config).expect("bootstrap");
        let others = peers.iter().filter(|(p, _)| *p != id).copied();
        let transport = TcpTransport::new(listener, others, TcpConfig::default()).expect("config");
        let log: Log = Arc::default();
        let applied = Arc::clone(&log);
        let state_machine = move |entry: &Entry<u64>| {
            let mut log = applied.lock().expect("not poisoned");
            if matches!(entry.kind, EntryKind::Command) && !entry.data.is_empty() {
                log.push(entry.data.clone());
            }
            log.len()
        };
        let mut driver = DriverConfig::default();
        driver.tick = Duration::from_millis(10);
        handles.push(spawn(node, MemPersister, transport, state_machine, driver).expect("config"));
        logs.push(log);
    }
    Cluster { handles, logs }
}

impl Cluster {
    async fn leader(&self) -> usize {
        timeout(Duration::from_secs(10), async {
            loop {
                for (i, h) in self.handles.iter().enumerate() {
                    if !h.is_shut_down() && h.status().role == Role::Leader {
                        return i;
                    }
                }
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("a leader within 10 s")
    }

    /// Proposes through whichever node leads, following hints.
    async fn propose(&self, data: Bytes) -> Applied<usize> {
        let mut target = 0;
        for _ in 0..1_000 {
            let handle = &self.handles[target];
            if handle.is_shut_down() {
                target = (target + 1) % self.handles.len();
                continue;
            }
            match handle.propose(data.clone()).await {
                Ok(applied) => return applied,
                Err(ProposeError::NotLeader { leader: Some(l) })
                    if l as usize <= self.handles.len() =>
                {
                    target = l as usize - 1;
                    if self.handles[target].is_shut_down() {
                        sleep(Duration::from_millis(10)).await;
                        target = (target + 1) % self.handles.len();
                    }
                }
                // No leader known, lost to a leader change (never applied:
                // retrying is safe), or that node just stopped.
                Err(_) => {
                    sleep(Duration::from_millis(10)).await;
                    target = (target + 1) % self.handles.len();
                }
            }
        }
        panic!("proposal {data:?} not applied after 1000 tries");
    }

    /// Waits until every live node has applied `n` commands, then returns
    /// their logs.
    async fn converge(&self, n: usize) -> Vec<Vec<Bytes>> {
        timeout(Duration::from_secs(10), async {
            loop {
                let logs: Vec<Vec<Bytes>> = self
                    .logs
                    .iter()
                    .zip(&self.handles)
                    .filter(|(_, h)| !h.is_shut_down())
                    .map(|(l, _)| l.lock().expect("not poisoned").clone())
                    .collect();
                if logs.iter().all(|l| l.len() >= n) {
                    return logs;
                }
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("every node applies every command within 10 s")
    }

    async fn shutdown(&self) {
        for h in &self.handles {
            h.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_apply_in_one_order_everywhere() {
    let cluster = Arc::new(cluster(3).await);
    cluster.leader().await;
    let mut tasks = Vec::new();
    for task in 0..4 {
        let cluster = Arc::clone(&cluster);
        tasks.push(tokio::spawn(async move {
            let mut indexes = Vec::new();
            for i in 0..25 {
                let applied = cluster.propose(Bytes::from(format!("{task}-{i}"))).await;
                indexes.push(applied.index);
            }
            indexes
        }));
    }
    let mut indexes = Vec::new();
    for task in tasks {
        let mine = task.await.expect("no panic");
        // One task's proposals are applied in the order it made them.
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        indexes.extend(mine);
    }
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), 100, "each proposal has its own index");
    let logs = cluster.converge(100).await;
    assert_eq!(logs[0].len(), 100, "no command applied twice");
    for log in &logs[1..] {
        assert_eq!(log, &logs[0], "the same order on every node");
    }
    let mut sorted = logs[0].clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 100, "every proposal applied exactly once");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_takes_over_when_the_leader_stops() {
    let cluster = cluster(3).await;
    let first = cluster.leader().await;
    let term = cluster.handles[first].status().term;
    for i in 0..10 {
        cluster.propose(Bytes::from(format!("before-{i}"))).await;
    }
    cluster.handles[first].shutdown().await;
    assert!(cluster.handles[first].is_shut_down());
    assert!(matches!(
        cluster.handles[first].propose("late").await,
        Err(ProposeError::ShutDown)
    ));
    let second = cluster.leader().await;
    assert_ne!(second, first);
    assert!(cluster.handles[second].status().term > term);
    for i in 0..10 {
        cluster.propose(Bytes::from(format!("after-{i}"))).await;
    }
    let logs = cluster.converge(20).await;
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0], logs[1]);
    let expected: Vec<Bytes> = (0..10)
        .map(|i| Bytes::from(format!("before-{i}")))
        .chain((0..10).map(|i| Bytes::from(format!("after-{i}"))))
        .collect();
    assert_eq!(logs[0], expected);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_any_node_see_acknowledged_writes() {
    let cluster = cluster(3).await;
    let leader = cluster.leader().await;
    for i in 0..5 {
        let applied = cluster.propose(Bytes::from(format!("w{i}"))).await;
        // Read through every node, followers included: each sees the write.
        for (n, handle) in cluster.handles.iter().enumerate() {
            let index = loop {
                match handle.read().await {
                    Ok(index) => break index,
                    Err(ReadError::NoLeader | ReadError::Failed) => {
                        sleep(Duration::from_millis(10)).await;
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            assert!(
                index >= applied.index,
                "node {n}: read index {index} < {}",
                applied.index
            );
            let log = cluster.logs[n].lock().expect("not poisoned");
            assert_eq!(log.last(), Some(&Bytes::from(format!("w{i}"))), "node {n}");
        }
    }
    cluster.handles[leader].shutdown().await;
    assert_eq!(
        cluster.handles[leader].read().await,
        Err(ReadError::ShutDown)
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_leader_everywhere() {
    let cluster = cluster(3).await;
    let leader = cluster.leader().await as u64 + 1;
    for handle in &cluster.handles {
        let named = timeout(Duration::from_secs(10), async {
            loop {
                let l = handle.leader().await.expect("running");
                if l == leader {
                    return l;
                }
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("everyone learns the leader");
        assert_eq!(named, leader);
    }
    cluster.shutdown().await;
    // Shutting down twice is harmless.
    cluster.shutdown().await;
}
