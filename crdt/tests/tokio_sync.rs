//! The tokio driver (`dsys_crdt::tokio`) over real loopback TCP: replicas that
//! mutate concurrently converge (Almeida et al. 2018, Algorithm 2, run by the
//! driver's periodic ship), a replica stopped and restored from its durable
//! record catches up and keeps its own updates (Persistence and restart), and
//! garbage on the socket is counted and ignored.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use dsys_crdt::codec::{Decode, Encode};
use dsys_crdt::tokio::{
    DriverConfig, FilePersister, Handle, MemPersister, Persister, TcpConfig, TcpCountersHandle,
    TcpTransport, spawn,
};
use dsys_crdt::{Authored, GCounter, Lattice, ORSet, Replica, SyncConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

fn driver_config() -> DriverConfig {
    let mut config = DriverConfig::default();
    config.ship_interval = Duration::from_millis(20);
    config
}

fn tcp_config() -> TcpConfig {
    let mut config = TcpConfig::default();
    config.reconnect_max = Duration::from_millis(100);
    config
}

async fn listeners(n: usize) -> (Vec<TcpListener>, Vec<(u64, SocketAddr)>) {
    let mut listeners = Vec::new();
    let mut peers = Vec::new();
    for id in 1..=n as u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        peers.push((id, listener.local_addr().expect("bound")));
        listeners.push(listener);
    }
    (listeners, peers)
}

/// Starts replica `id` from `replica` on `listener`, a full mesh over `peers`.
fn start<S, P>(
    replica: Replica<u64, S>,
    listener: TcpListener,
    peers: &[(u64, SocketAddr)],
    persister: P,
) -> (Handle<u64, S>, TcpCountersHandle)
where
    S: Lattice + Authored<u64> + PartialEq + Encode + Decode + Send + 'static,
    P: Persister<S>,
{
    let mut replica = replica;
    for (peer, _) in peers {
        replica.add_peer(*peer);
    }
    let transport = TcpTransport::new(replica.id(), listener, peers.iter().copied(), tcp_config())
        .expect("a valid configuration");
    let counters = transport.counters_handle();
    let handle = spawn(replica, persister, transport, driver_config()).expect("valid");
    (handle, counters)
}

/// Waits until every handle's state satisfies `done`, or fails after 10 s.
async fn converge<S: Send + 'static>(handles: &[&Handle<u64, S>], done: impl Fn(&S) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut all = true;
        for handle in handles {
            all &= done(&handle.state().await.expect("running"));
        }
        if all {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replicas did not converge in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_or_set_updates_converge() {
    let (listeners, peers) = listeners(4).await;
    let mut handles = Vec::new();
    for (listener, (id, _)) in listeners.into_iter().zip(&peers) {
        let replica = Replica::new(*id, ORSet::new(), SyncConfig::full_mesh()).expect("valid");
        handles.push(start(replica, listener, &peers, MemPersister::new()).0);
    }
    // Every replica adds 50 elements of its own concurrently, and removes the
    // even ones it added (its own removes observe its own adds).
    let mut tasks = Vec::new();
    for (i, handle) in handles.iter().enumerate() {
        let handle = handle.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..50u32 {
                let value = i as u32 * 1000 + k;
                handle
                    .mutate(move |set: &mut ORSet<u64, u32>, me| set.add(me, value))
                    .await
                    .expect("running");
            }
            for k in (0..50u32).step_by(2) {
                let value = i as u32 * 1000 + k;
                handle
                    .mutate(move |set: &mut ORSet<u64, u32>, _| set.remove(&value))
                    .await
                    .expect("running");
            }
        }));
    }
    for task in tasks {
        task.await.expect("no panic");
    }
    let expected: BTreeSet<u32> = (0..4u32)
        .flat_map(|i| (1..50).step_by(2).map(move |k| i * 1000 + k))
        .collect();
    let refs: Vec<_> = handles.iter().collect();
    converge(&refs, |s| {
        s.iter().copied().collect::<BTreeSet<_>>() == expected
    })
    .await;
    for handle in &handles {
        let counters = handle.counters().await.expect("running");
        assert_eq!(counters.sync.rejected, 0);
        assert!(counters.rounds > 0 && counters.persists > 0);
        handle.shutdown().await;
        assert!(handle.is_shut_down());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_replica_catches_up_and_keeps_its_updates() {
    let (listeners, peers) = listeners(3).await;
    let mut handles = Vec::new();
    let mut persisters = Vec::new();
    for (listener, (id, _)) in listeners.into_iter().zip(&peers) {
        let replica = Replica::new(*id, GCounter::new(), SyncConfig::default()).expect("valid");
        let persister = MemPersister::new();
        handles.push(start(replica, listener, &peers, persister.clone()).0);
        persisters.push(persister);
    }
    for handle in &handles {
        handle
            .mutate(|c: &mut GCounter<u64>, me| c.increment(me, 5))
            .await
            .expect("running");
    }
    // Replica 3 stops; what it confirmed is in its record.
    handles[2].shutdown().await;
    assert!(
        handles[2]
            .mutate(|c: &mut GCounter<u64>, me| c.increment(me, 1))
            .await
            .is_err()
    );
    let record = persisters[2].record().expect("written before confirming");
    assert_eq!(record.state.get(&3), 5);
    // The others go on without it.
    for handle in &handles[..2] {
        handle
            .mutate(|c: &mut GCounter<u64>, me| c.increment(me, 10))
            .await
            .expect("running");
    }
    // Restart on the same address (the old listener closes as its task ends).
    let addr = peers[2].1;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let replica = Replica::restore(3, record.state, record.incarnation, SyncConfig::default())
        .expect("a valid record");
    let (restarted, _) = start(replica, listener, &peers, persisters[2].clone());
    handles[2] = restarted;
    handles[2]
        .mutate(|c: &mut GCounter<u64>, me| c.increment(me, 100))
        .await
        .expect("running");
    let refs: Vec<_> = handles.iter().collect();
    converge(&refs, |c: &GCounter<u64>| c.value() == 5 * 3 + 10 * 2 + 100).await;
    let record = persisters[2].record().expect("written");
    assert_eq!(record.incarnation, 1, "the restored life is written");
    for handle in &handles {
        handle.shutdown().await;
    }
}

/// Writes one frame: a 4-byte big-endian length, then `body`.
async fn frame(stream: &mut TcpStream, body: &[u8]) {
    let len = u32::try_from(body.len()).expect("small");
    stream.write_all(&len.to_be_bytes()).await.expect("open");
    stream.write_all(body).await.expect("open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_socket_is_counted_and_ignored() {
    let (listeners, peers) = listeners(3).await;
    let mut handles = Vec::new();
    let mut transports = Vec::new();
    for (listener, (id, _)) in listeners.into_iter().zip(&peers) {
        let replica = Replica::new(*id, GCounter::new(), SyncConfig::full_mesh()).expect("valid");
        let (handle, counters) = start(replica, listener, &peers, MemPersister::new());
        handles.push(handle);
        transports.push(counters);
    }
    let target = peers[0].1;
    let mut stream = TcpStream::connect(target).await.expect("listening");
    // A peer's id, then bytes that are no message.
    let mut body = 2u64.to_bytes();
    body.extend_from_slice(&[0xff, 0x00, 0x13, 0x37]);
    frame(&mut stream, &body).await;
    // A message from a replica that is not a peer.
    let mut forged = GCounter::<u64>::new();
    let _ = forged.increment(&9, 1);
    let mut body = 9u64.to_bytes();
    body.extend_from_slice(
        &dsys_crdt::SyncMessage::State {
            incarnation: 0,
            seq: 1,
            state: forged,
        }
        .to_bytes(),
    );
    frame(&mut stream, &body).await;
    // A frame with no sender id at all.
    frame(&mut stream, &[]).await;
    // A length far past `max_frame_len`: the connection is closed.
    stream
        .write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .expect("open");
    drop(stream);
    // A second connection of pure noise.
    let mut stream = TcpStream::connect(target).await.expect("listening");
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = stream.write_all(&noise).await;
    drop(stream);

    for handle in &handles {
        handle
            .mutate(|c: &mut GCounter<u64>, me| c.increment(me, 2))
            .await
            .expect("still running");
    }
    let refs: Vec<_> = handles.iter().collect();
    converge(&refs, |c: &GCounter<u64>| c.value() == 6).await;
    // The garbage came on its own connection: wait until its reader got to it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let counters = loop {
        let counters = handles[0].counters().await.expect("running");
        if counters.malformed + counters.unknown_peer >= 2 || tokio::time::Instant::now() > deadline
        {
            break counters;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(counters.malformed, 1, "{counters:?}");
    assert_eq!(counters.unknown_peer, 1, "{counters:?}");
    assert_eq!(counters.sync.rejected, 2, "{counters:?}");
    let transport = transports[0].get();
    assert!(transport.malformed >= 1, "{transport:?}");
    assert!(transport.oversized_frames >= 1, "{transport:?}");
    for handle in &handles {
        handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarts_from_its_record_file() {
    let dir = std::env::temp_dir().join(format!("dsys-crdt-tokio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = FilePersister::new(dir.join("replica-2.crdt"));
    assert!(
        file.load::<ORSet<u64, String>>()
            .expect("no file")
            .is_none()
    );
    let (mut listeners, peers) = listeners(2).await;
    let second = listeners.pop().expect("two");
    let first = listeners.pop().expect("two");
    let one = Replica::new(1, ORSet::new(), SyncConfig::full_mesh()).expect("valid");
    let two = Replica::new(2, ORSet::new(), SyncConfig::full_mesh()).expect("valid");
    let (one, _) = start(one, first, &peers, MemPersister::new());
    let (two, _) = start(two, second, &peers, file.clone());
    one.mutate(|s: &mut ORSet<u64, String>, me| s.add(me, "pen".to_owned()))
        .await
        .expect("running");
    two.mutate(|s: &mut ORSet<u64, String>, me| s.add(me, "ink".to_owned()))
        .await
        .expect("running");
    converge(&[&one, &two], |s: &ORSet<u64, String>| s.len() == 2).await;
    two.shutdown().await;

    // A new life of replica 2 from what its file holds.
    let record = file
        .load::<ORSet<u64, String>>()
        .expect("decodes")
        .expect("written");
    assert!(record.state.contains(&"ink".to_owned()));
    let listener = loop {
        match TcpListener::bind(peers[1].1).await {
            Ok(listener) => break listener,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let two = Replica::restore(2, record.state, record.incarnation, SyncConfig::full_mesh())
        .expect("a valid record");
    let (two, _) = start(two, listener, &peers, file.clone());
    two.mutate(|s: &mut ORSet<u64, String>, _| s.remove(&"pen".to_owned()))
        .await
        .expect("running");
    let only_ink = |s: &ORSet<u64, String>| s.iter().eq([&"ink".to_owned()]);
    converge(&[&one, &two], only_ink).await;
    let record = file
        .load::<ORSet<u64, String>>()
        .expect("decodes")
        .expect("written");
    assert_eq!(record.incarnation, 1);
    one.shutdown().await;
    two.shutdown().await;
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
