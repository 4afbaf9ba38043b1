//! Chapter `service`: the Raft node of chapter `raft`, now as a real
//! service. Three nodes run in this process on dsys-consensus's tokio
//! driver (feature `tokio`), each with its log in its own directory on disk
//! (`DiskStorage`, feature `durable`: every acknowledged write was fsynced
//! first) and its peers reached over TCP on 127.0.0.1 (`TcpTransport`).
//! Nothing is simulated: real sockets, real fsyncs, real timers.
//!
//! 1. The three nodes start from empty directories and elect a leader.
//! 2. Sixteen concurrent clients write keys; a read on a follower (ReadIndex
//!    through the leader) sees every acknowledged write.
//! 3. The leader crashes; the other two elect a new one and keep taking
//!    writes.
//! 4. The crashed node restarts from its directory, replays its log and
//!    catches up; all three maps are the same.
//!
//! Unlike the other chapters this one runs on real time, so the leader's
//! id, the election times, latencies and throughput differ from run to run
//! (they are marked as measured); the checks (every write applied on every
//! node, nothing lost across the crash) hold on every run.
//!
//! This file is the story; `cluster.rs` starts and stops nodes, holds the
//! state machine (a key-value map) and runs the clients.

mod cluster;

use std::time::{Duration, Instant};

use crate::report::{self, Res, Table, check, check_eq};
use cluster::{Cluster, IDS, TICK, Writes, disk_bytes, snapshot};

/// Concurrent clients in sections 2 and 3.
const CLIENTS: usize = 16;
/// Keys written in section 2, then in section 3.
const FIRST_KEYS: usize = 300;
const SECOND_KEYS: usize = 200;

pub(crate) fn run() -> Res {
    let root = std::env::temp_dir().join(format!("dsys-tour-service-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(story(&root));
    let _ = std::fs::remove_dir_all(&root);
    result
}

async fn story(root: &std::path::Path) -> Res {
    let mut cluster = start(root).await?;
    let leader = write_and_read(&cluster).await?;
    crash_leader(&mut cluster, leader).await?;
    rejoin(&mut cluster, leader).await?;
    for id in IDS {
        if let Ok(node) = cluster.node(id) {
            node.handle.shutdown().await;
        }
    }
    report::takeaway(
        "The protocol is the same state machine the simulator checks; the driver only connects \
         it to a timer, sockets and a disk. A write was acknowledged once a majority had it on \
         disk, so a leader crash lost none of them, and a node that comes back needs nothing but \
         its own directory and its peers.",
    );
    Ok(())
}

// --- 1. Start ------------------------------------------------------------------------

async fn start(root: &std::path::Path) -> Res<Cluster> {
    report::section("1. Three nodes on loopback elect a leader");
    let cluster = Cluster::start(root).await?;
    let (leader, took) = cluster.wait_for_leader(None).await?;
    report::note(&format!(
        "Three nodes start in this process, each a tokio task running a RaftNode over a \
         TcpTransport listening on 127.0.0.1 (a port the OS chose) and a DiskStorage in its own \
         directory under {}. A tick is {} ms of real time, so election timeouts are {}-{} ms. \
         The code a user writes for one node is about 20 lines: open the storage, build the \
         RaftNode, bind the listener, spawn the driver with a state machine (here a key-value \
         map fed by `key=value` commands).",
        root.display(),
        TICK.as_millis(),
        TICK.as_millis() * 10,
        TICK.as_millis() * 20,
    ));
    report::note(&format!(
        "Node {leader} was elected leader {} ms after the start (measured).",
        took.as_millis()
    ));
    Ok(cluster)
}

// --- 2. Writes and a follower read -----------------------------------------------------

async fn write_and_read(cluster: &Cluster) -> Res<u64> {
    report::section("2. Sixteen clients write; a follower reads");
    let (leader, _) = cluster.wait_for_leader(None).await?;
    let start = Instant::now();
    let writes = cluster.write("a", FIRST_KEYS, CLIENTS).await?;
    let elapsed = start.elapsed();
    check_eq("writes acknowledged", &writes.latencies.len(), &FIRST_KEYS)?;
    report::note(&format!(
        "{CLIENTS} clients wrote {FIRST_KEYS} keys (a-000 to a-{:03}), one proposal at a time \
         each. A proposal resolves once its entry is committed (on disk on at least two nodes) \
         and applied on the leader.",
        FIRST_KEYS - 1
    ));
    print_writes(&writes, elapsed);
    report::note(
        "Latencies and the rate are measured on this machine in this run (each write waits for \
         an fsync on two of the three nodes); BENCHMARKS.md has the loopback benchmark at 1 to \
         256 clients against the disk's own fsync rate.",
    );

    // A linearizable read on a follower: it asks the leader for its commit
    // index (ReadIndex), waits to have applied that far, then reads locally.
    let follower = IDS
        .into_iter()
        .find(|&id| id != leader)
        .ok_or("no follower")?;
    let node = cluster.node(follower)?;
    let index = cluster.read(follower).await?;
    let keys = snapshot(&node.kv).len();
    check_eq("keys a follower reads after `read()`", &keys, &FIRST_KEYS)?;
    report::note(&format!(
        "Node {follower}, a follower, called `read()`: it confirmed the leader's commit index \
         ({index}) with the leader, waited until it had applied that far, and then its own map \
         held all {keys} keys. A read that skipped this step could have missed the latest writes \
         (chapter `raft`, section 3)."
    ));
    Ok(leader)
}

fn print_writes(writes: &Writes, elapsed: Duration) {
    let rate = per_second(writes.latencies.len(), elapsed);
    let mut table = Table::new(&["writes", "retries", "p50 ms", "p99 ms", "writes/s"])
        .numeric(&[0, 1, 2, 3, 4]);
    table.row([
        writes.latencies.len().to_string(),
        writes.retries.to_string(),
        millis(writes.quantile(0.5)),
        millis(writes.quantile(0.99)),
        rate.to_string(),
    ]);
    table.print();
}

// --- 3. The leader crashes ---------------------------------------------------------------

async fn crash_leader(cluster: &mut Cluster, leader: u64) -> Res {
    report::section("3. The leader crashes; the others go on");
    let before = cluster.node(leader)?.handle.status();
    cluster.crash(leader).await?;
    let crashed_at = Instant::now();
    let (next, _) = cluster.wait_for_leader(Some(leader)).await?;
    let took = crashed_at.elapsed();
    report::note(&format!(
        "Node {leader} stopped: its task and sockets are gone, its map in memory is lost, and \
         its directory holds what it had fsynced ({} bytes, log up to index {}). The other two \
         stopped hearing its heartbeats; after an election timeout one of them won a pre-vote \
         and then an election: node {next} leads term {}, {} ms after the crash (measured).",
        disk_bytes(&cluster.root.join(format!("node-{leader}"))),
        before.persisted,
        cluster.node(next)?.handle.status().term,
        took.as_millis(),
    ));
    let start = Instant::now();
    let writes = cluster.write("b", SECOND_KEYS, CLIENTS).await?;
    let elapsed = start.elapsed();
    check_eq(
        "writes acknowledged by two nodes",
        &writes.latencies.len(),
        &SECOND_KEYS,
    )?;
    report::note(&format!(
        "With two of three nodes up there is still a majority: the clients wrote {SECOND_KEYS} \
         more keys (b-000 to b-{:03}), each now waiting for both survivors' fsyncs. Clients \
         follow `NotLeader` hints to the leader; a retry is a proposal that found no leader \
         known or was lost to the leader change (writing the same key and value again is \
         harmless).",
        SECOND_KEYS - 1
    ));
    print_writes(&writes, elapsed);
    Ok(())
}

// --- 4. The crashed node returns ----------------------------------------------------------

async fn rejoin(cluster: &mut Cluster, crashed: u64) -> Res {
    report::section("4. The crashed node restarts from its directory");
    cluster.restart(crashed).await?;
    let index = cluster.read(crashed).await?;
    report::note(&format!(
        "Node {crashed} reopened its directory (the same `DiskStorage::open` call that created \
         it), found its term, vote and log, replayed the log into a fresh map, and received what \
         it missed from the leader. Its `read()` confirmed commit index {index}:"
    ));
    let total = FIRST_KEYS + SECOND_KEYS;
    let mut table = Table::new(&[
        "node", "role", "term", "commit", "applied", "keys", "on disk",
    ])
    .numeric(&[2, 3, 4, 5, 6]);
    let mut maps = Vec::new();
    for id in IDS {
        cluster.read(id).await?;
        let node = cluster.node(id)?;
        let status = node.handle.status();
        let map = snapshot(&node.kv);
        table.row([
            id.to_string(),
            format!("{:?}", status.role).to_lowercase(),
            status.term.to_string(),
            status.commit.to_string(),
            status.applied.to_string(),
            map.len().to_string(),
            format!("{} B", disk_bytes(&cluster.root.join(format!("node-{id}")))),
        ]);
        maps.push(map);
    }
    table.print();
    for (id, map) in IDS.iter().zip(&maps) {
        check_eq(&format!("keys on node {id}"), &map.len(), &total)?;
    }
    check(
        "all three maps are equal",
        maps.windows(2).all(|w| w[0] == w[1]),
    )?;
    report::note(&format!(
        "Every node holds all {total} keys with the same values, the crashed one included: no \
         acknowledged write was lost. (Terms, indexes and sizes vary from run to run: they \
         count elections, no-ops and retried writes.)"
    ));
    Ok(())
}

fn millis(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn per_second(count: usize, elapsed: Duration) -> u64 {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    // A rate of at most a few hundred thousand per second.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rate = (count as f64 / seconds).round() as u64;
    rate
}
