//! Adversarial tests of the service layer: the tokio driver (with scripted
//! peers, so every message is the test's choice), `TcpTransport` against
//! raw sockets that misbehave, and the wire codec's node ids.
//!
//! A test marked `#[ignore = "BUG: ..."]` fails on the code it was written
//! against; the others guard behaviour that holds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dsys_consensus::codec::{self, IdCodec};
use dsys_consensus::durable::{DiskStorage, DiskStorageConfig};
use dsys_consensus::tokio::{
    DiskPersister, DriverConfig, Handle, MemPersister, ProposeError, TcpConfig, TcpTransport,
    Transport, spawn,
};
use dsys_consensus::{
    AppendOutcome, Config, Entry, MemStorage, Membership, Message, MessageBody, RaftNode, Role,
    Storage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

// ---- Scripted peers: a transport whose other end is the test ----

/// The node's side: what it sends goes to the test, what the test injects
/// comes in.
struct Scripted {
    out: mpsc::UnboundedSender<Message<u64>>,
    inbox: mpsc::UnboundedReceiver<Message<u64>>,
}

impl Transport<u64> for Scripted {
    fn send(&mut self, message: Message<u64>) {
        let _ = self.out.send(message);
    }
    async fn recv(&mut self) -> Option<Message<u64>> {
        self.inbox.recv().await
    }
}

/// The test's side: peers 2 and 3 that grant every vote, answer every
/// heartbeat and, while `ack` is set, accept every append.
struct Peers {
    inject: mpsc::UnboundedSender<Message<u64>>,
    ack: Arc<AtomicBool>,
    read_requests: mpsc::UnboundedReceiver<(u64, u64)>,
}

impl Peers {
    fn start() -> (Scripted, Self) {
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message<u64>>();
        let (inject, inbox) = mpsc::unbounded_channel();
        let (reads_tx, read_requests) = mpsc::unbounded_channel();
        let ack = Arc::new(AtomicBool::new(true));
        let (answer, acking) = (inject.clone(), Arc::clone(&ack));
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                let body = match m.body {
                    MessageBody::VoteRequest { pre_vote, .. } => MessageBody::VoteResponse {
                        pre_vote,
                        granted: true,
                    },
                    MessageBody::Heartbeat { read_round, .. } => {
                        MessageBody::HeartbeatResponse { read_round }
                    }
                    MessageBody::Append {
                        prev_index,
                        ref entries,
                        ..
                    } if acking.load(Ordering::SeqCst) => {
                        MessageBody::AppendResponse(AppendOutcome::Accepted {
                            last_index: prev_index + entries.len() as u64,
                        })
                    }
                    MessageBody::ReadIndexRequest { id } => {
                        let _ = reads_tx.send((m.to, id));
                        continue;
                    }
                    _ => continue,
                };
                let _ = answer.send(Message {
                    from: m.to,
                    to: m.from,
                    term: m.term,
                    body,
                });
            }
        });
        (
            Scripted { out, inbox },
            Self {
                inject,
                ack,
                read_requests,
            },
        )
    }

    fn send(&self, from: u64, term: u64, body: MessageBody<u64>) {
        self.inject
            .send(Message {
                from,
                to: 1,
                term,
                body,
            })
            .expect("driver running");
    }
}

async fn wait_for<O: Send + 'static>(
    handle: &Handle<u64, O>,
    what: &str,
    pred: impl Fn(&dsys_consensus::Status<u64>) -> bool,
) -> dsys_consensus::Status<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = handle.status();
        if pred(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {status:?}"
        );
        sleep(Duration::from_millis(2)).await;
    }
}

fn node_1(election_tick: u32) -> RaftNode<MemStorage<u64>> {
    let mut config = Config::default();
    config.seed = 1;
    config.election_tick = election_tick;
    RaftNode::new(1, MemStorage::new(vec![1, 2, 3]), config).expect("bootstrap")
}

fn ticks(ms: u64) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.tick = Duration::from_millis(ms);
    config
}

/// A leader's proposals are cut from its log by a newer leader (§5.3); this
/// node then leads again and a new proposal lands at the index of one of
/// them. Each of the old proposals must learn it was `Lost` (its entry can
/// never commit); the driver is running all along, so none may be told
/// `ShutDown`.
///
/// `Driver::propose` (consensus/src/tokio/driver.rs, `self.proposals.insert(id.index, ..)`)
/// overwrites the pending entry at that index: the old proposal's reply
/// sender is dropped and its caller sees `ShutDown` while the driver runs.
/// The displaced proposal must not be told `Lost` at once either: its
/// entry may still commit (another node holding it can win a later term
/// if this leader's entry at that index never reaches a majority). Keep
/// both pending, keyed by (index, term), and settle each when its index
/// is applied, as for any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_cut_by_a_new_leader_is_lost_even_when_its_index_is_reused() {
    let (transport, peers) = Peers::start();
    let handle = spawn(
        node_1(10),
        MemPersister,
        transport,
        |e: &Entry<u64>| e.data.clone(),
        ticks(5),
    )
    .expect("config");
    // Node 1 leads (term t) and commits its no-op at index 1.
    let status = wait_for(&handle, "node 1 leads and commits", |s| {
        s.role == Role::Leader && s.applied >= 1
    })
    .await;
    let t = status.term;
    assert_eq!(status.last_index, 1);
    // Three proposals, never acknowledged: indexes 2, 3, 4 of term t.
    peers.ack.store(false, Ordering::SeqCst);
    let mut old = Vec::new();
    for i in 0..3 {
        let h = handle.clone();
        old.push(tokio::spawn(
            async move { h.propose(format!("old{i}")).await },
        ));
        wait_for(&handle, "the proposal is appended", |s| {
            s.last_index == 2 + i
        })
        .await;
    }
    // Node 2 leads term t + 1 and replaces everything after index 1.
    peers.send(
        2,
        t + 1,
        MessageBody::Append {
            prev_index: 1,
            prev_term: t,
            entries: vec![Entry::new(t + 1, 2, "from 2")],
            commit: 1,
        },
    );
    wait_for(&handle, "node 1 follows node 2", |s| {
        s.role == Role::Follower && s.last_index == 2
    })
    .await;
    // Node 2 goes quiet; node 1 leads again (term t + 2), its no-op at 3.
    let status = wait_for(&handle, "node 1 leads again", |s| {
        s.role == Role::Leader && s.term >= t + 2 && s.last_index == 3
    })
    .await;
    let t2 = status.term;
    // A new proposal lands at index 4, where "old2" was.
    let h = handle.clone();
    let new = tokio::spawn(async move { h.propose("new").await });
    wait_for(&handle, "the new proposal is appended", |s| {
        s.last_index == 4
    })
    .await;
    // Let everything commit.
    peers.ack.store(true, Ordering::SeqCst);
    let new = timeout(Duration::from_secs(20), new)
        .await
        .expect("the new proposal is answered")
        .expect("no panic")
        .expect("the new proposal commits");
    assert_eq!((new.index, new.term), (4, t2));
    assert_eq!(new.output, "new");
    for (i, p) in old.into_iter().enumerate() {
        let result = timeout(Duration::from_secs(20), p)
            .await
            .expect("every old proposal is answered")
            .expect("no panic");
        assert_eq!(
            result,
            Err(ProposeError::Lost {
                index: 2 + i as u64
            }),
            "old proposal {i}, while the driver is running (shut down: {})",
            handle.is_shut_down()
        );
    }
    assert!(!handle.is_shut_down());
    handle.shutdown().await;
}

/// A read on a follower, confirmed by the leader at an index the follower
/// has not applied yet, resolves only once the state machine has applied
/// that index (thesis §6.4, step 4), never before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_read_waits_until_the_read_index_is_applied() {
    let (transport, mut peers) = Peers::start();
    let applied = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&applied);
    let state_machine = move |e: &Entry<u64>| {
        // Entries are applied in order: record the last one.
        let before = seen.swap(e.index, Ordering::SeqCst);
        assert_eq!(before + 1, e.index, "applied in order, exactly once");
    };
    // Long election timeouts (1-2 s of 10 ms ticks): node 1 stays a
    // follower; a forwarded read may take 2 s.
    let handle = spawn(
        node_1(100),
        MemPersister,
        transport,
        state_machine,
        ticks(10),
    )
    .expect("config");
    peers.send(
        2,
        1,
        MessageBody::Append {
            prev_index: 0,
            prev_term: 0,
            entries: (1..=3).map(|i| Entry::new(1, i, format!("e{i}"))).collect(),
            commit: 1,
        },
    );
    wait_for(&handle, "node 1 follows and applies 1", |s| {
        s.leader == Some(2) && s.applied == 1 && s.last_index == 3
    })
    .await;
    let h = handle.clone();
    let reader = tokio::spawn(async move { h.read().await });
    let (to, id) = timeout(Duration::from_secs(10), peers.read_requests.recv())
        .await
        .expect("the read is forwarded")
        .expect("peers running");
    assert_eq!(to, 2);
    // The leader confirms read index 3.
    peers.send(2, 1, MessageBody::ReadIndexResponse { id, index: Some(3) });
    sleep(Duration::from_millis(100)).await;
    assert!(
        !reader.is_finished() || applied.load(Ordering::SeqCst) >= 3,
        "the read resolved with only index {} applied",
        applied.load(Ordering::SeqCst)
    );
    // Commit 3 reaches node 1.
    peers.send(
        2,
        1,
        MessageBody::Heartbeat {
            commit: 3,
            read_round: 0,
        },
    );
    let index = timeout(Duration::from_secs(10), reader)
        .await
        .expect("the read is answered")
        .expect("no panic")
        .expect("the read is served");
    assert_eq!(index, 3);
    assert!(applied.load(Ordering::SeqCst) >= index);
    handle.shutdown().await;
}

// ---- Shutdown and durability, one node on disk ----

/// A transport to nowhere (a one-node cluster sends nothing).
struct Nowhere;

impl Transport<u64> for Nowhere {
    fn send(&mut self, _: Message<u64>) {}
    async fn recv(&mut self) -> Option<Message<u64>> {
        std::future::pending().await
    }
}

/// Shutdown racing with 200 proposals: every proposal is answered exactly
/// once (`Ok` or `ShutDown`, never a hang), and every `Ok` is on disk
/// after the restart, at its index, with its data, and counts as
/// committed when the node restarts with it applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_racing_proposals_answers_each_and_keeps_every_ok() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = DiskStorage::open(
        dir.path(),
        Membership::from_voters([1u64]),
        DiskStorageConfig::default(),
    )
    .expect("open");
    let node = RaftNode::new(1, storage, Config::default()).expect("bootstrap");
    let handle =
        spawn(node, DiskPersister, Nowhere, |_: &Entry<u64>| (), ticks(5)).expect("config");
    timeout(Duration::from_secs(20), handle.leader())
        .await
        .expect("elects itself")
        .expect("running");
    let mut proposals = Vec::new();
    for i in 0..200 {
        let h = handle.clone();
        proposals.push(tokio::spawn(async move {
            (format!("p{i}"), h.propose(format!("p{i}")).await)
        }));
        if i == 100 {
            let h = handle.clone();
            tokio::spawn(async move { h.shutdown().await });
        }
    }
    let mut ok = Vec::new();
    for p in proposals {
        let (data, result) = timeout(Duration::from_secs(20), p)
            .await
            .expect("every proposal is answered")
            .expect("no panic");
        match result {
            Ok(applied) => ok.push((data, applied.index)),
            Err(ProposeError::ShutDown) => {}
            Err(e) => panic!("{data}: {e:?}"),
        }
    }
    timeout(Duration::from_secs(20), handle.shutdown())
        .await
        .expect("shut down");
    assert!(handle.is_shut_down());
    // The storage was dropped with the driver: reopen it.
    let storage = DiskStorage::<u64>::open(
        dir.path(),
        Membership::default(),
        DiskStorageConfig::default(),
    )
    .expect("reopen");
    // The commit index is stored lazily, so an acknowledged entry may lie
    // past the stored one; it is in the log, and a state machine that
    // recorded it restarts with it committed.
    let highest = ok.iter().map(|(_, index)| *index).max().unwrap_or(0);
    for (data, index) in ok {
        let entries = storage.entries(index, index + 1, u64::MAX).expect("stored");
        assert_eq!(entries[0].data, data.as_bytes(), "at {index}");
    }
    let mut config = Config::default();
    config.applied = highest;
    let node = RaftNode::new(1, storage, config).expect("restarts with what it applied");
    assert!(node.status().commit >= highest);
}

/// Dropping every handle stops the driver, and with it the transport: the
/// listener closes (connections are refused) within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_driver_and_its_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    let transport = TcpTransport::<u64>::new(listener, [], TcpConfig::default()).expect("config");
    let node = RaftNode::new(1, MemStorage::new(vec![1]), Config::default()).expect("bootstrap");
    let handle =
        spawn(node, MemPersister, transport, |_: &Entry<u64>| (), ticks(5)).expect("config");
    timeout(Duration::from_secs(20), handle.leader())
        .await
        .expect("elects itself")
        .expect("running");
    let status = handle.status();
    drop(handle);
    let closed = timeout(Duration::from_secs(10), async {
        loop {
            if TcpStream::connect(addr).await.is_err() {
                return;
            }
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the listener is still open ({status:?})");
}

// ---- TcpTransport against raw sockets ----

fn heartbeat(from: u64, to: u64, commit: u64) -> Message<u64> {
    Message {
        from,
        to,
        term: 1,
        body: MessageBody::Heartbeat {
            commit,
            read_round: 0,
        },
    }
}

fn frame(message: &Message<u64>) -> Vec<u8> {
    let body = codec::encode_to_vec(message);
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

async fn transport(config: TcpConfig) -> (TcpTransport<u64>, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    (
        TcpTransport::new(listener, [], config).expect("config"),
        addr,
    )
}

async fn recv(t: &mut TcpTransport<u64>) -> Message<u64> {
    timeout(Duration::from_secs(10), t.recv())
        .await
        .expect("a message within 10 s")
        .expect("transport open")
}

/// Frames dribbled one byte per write (every split point of the length
/// prefix and of the body) arrive whole and in order.
#[tokio::test]
async fn frames_split_at_every_byte_arrive_whole() {
    let (mut t, addr) = transport(TcpConfig::default()).await;
    let mut raw = TcpStream::connect(addr).await.expect("connect");
    raw.set_nodelay(true).expect("nodelay");
    let messages: Vec<_> = (0..3).map(|i| heartbeat(7, 1, 1000 + i)).collect();
    let bytes: Vec<u8> = messages.iter().flat_map(frame).collect();
    for b in bytes {
        raw.write_all(&[b]).await.expect("write");
        raw.flush().await.expect("flush");
        tokio::task::yield_now().await;
    }
    for m in messages {
        assert_eq!(recv(&mut t).await, m);
    }
    assert_eq!(t.counters().malformed, 0);
}

/// A length prefix of `u32::MAX` (4 GiB) under the default limit closes
/// the connection at once; nothing is allocated for it, and the next
/// connection still works.
#[tokio::test]
async fn a_four_gib_length_prefix_closes_the_connection() {
    let (mut t, addr) = transport(TcpConfig::default()).await;
    let mut raw = TcpStream::connect(addr).await.expect("connect");
    raw.write_all(&u32::MAX.to_be_bytes()).await.expect("write");
    raw.write_all(&[0xAB; 1000]).await.expect("write");
    let mut rest = Vec::new();
    // The transport accepts and reads while `recv` is polled.
    let read = timeout(Duration::from_secs(10), async {
        tokio::select! {
            m = t.recv() => panic!("nothing is to arrive: {m:?}"),
            read = raw.read_to_end(&mut rest) => read,
        }
    })
    .await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    assert_eq!(t.counters().oversized_frames, 1);
    let mut raw = TcpStream::connect(addr).await.expect("connect");
    raw.write_all(&frame(&heartbeat(7, 1, 3)))
        .await
        .expect("write");
    assert_eq!(recv(&mut t).await, heartbeat(7, 1, 3));
}

/// An empty frame and a frame of trailing garbage after a valid message
/// are counted as malformed; the connection stays and the next frame is
/// read from the right place.
#[tokio::test]
async fn empty_and_trailing_garbage_frames_are_dropped_and_framing_holds() {
    let (mut t, addr) = transport(TcpConfig::default()).await;
    let mut raw = TcpStream::connect(addr).await.expect("connect");
    let mut bytes = vec![0, 0, 0, 0];
    // A valid message with two bytes after it, inside one frame.
    let mut body = codec::encode_to_vec(&heartbeat(7, 1, 1));
    body.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&frame(&heartbeat(7, 1, 2)));
    raw.write_all(&bytes).await.expect("write");
    assert_eq!(recv(&mut t).await, heartbeat(7, 1, 2));
    assert_eq!(t.counters().malformed, 2);
    assert_eq!(t.counters().received, 1);
}

/// A peer that accepts the connection and never reads: `send` never waits
/// (the driver's loop calls it), the queue stays bounded, and the overflow
/// is dropped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_never_blocks_send() {
    let sink = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sink_addr = sink.local_addr().expect("bound");
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    tokio::spawn(async move {
        while let Ok((stream, _)) = sink.accept().await {
            keep.lock().expect("ok").push(stream); // never read
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut config = TcpConfig::default();
    config.send_queue = 64;
    let mut t = TcpTransport::<u64>::new(listener, [(2, sink_addr)], config).expect("config");
    let big = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry::new(1, 1, vec![9u8; 64 << 10])],
            commit: 0,
        },
    };
    // 20,000 messages of 64 KiB: 1.25 GiB, far past what socket buffers hold.
    let total = 20_000u64;
    let started = Instant::now();
    for i in 0..total {
        t.send(big.clone());
        if i % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let took = started.elapsed();
    let c = t.counters();
    assert_eq!(c.queued + c.dropped_queue_full, total, "{c:?}");
    assert!(c.dropped_queue_full > total / 2, "{c:?}");
    assert!(took < Duration::from_secs(30), "send waited: {took:?}");
    assert!(!held.lock().expect("ok").is_empty(), "the peer was reached");
}

// ---- Codec: node ids ----

/// `IdCodec` must read back exactly what it wrote (the codec's own rule,
/// and what `DiskStorage` relies on for memberships). An IPv6 socket
/// address carries a scope id (link-local addresses need one: `fe80::1%2`)
/// and a flow label; the encoding drops both, so the id that arrives is
/// another node's id (and a membership read back from disk no longer holds
/// this node).
#[test]
fn an_ipv6_id_with_a_scope_round_trips() {
    let ids = [
        SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().expect("ip"),
            4000,
            0,
            2,
        )),
        SocketAddr::V6(std::net::SocketAddrV6::new(
            "2001:db8::1".parse().expect("ip"),
            4000,
            7,
            0,
        )),
        "[2001:db8::1]:4000".parse().expect("addr"),
        "10.0.0.1:4000".parse().expect("addr"),
    ];
    for id in ids {
        let mut out = Vec::new();
        id.encode(&mut out);
        let mut input = &out[..];
        assert_eq!(SocketAddr::decode(&mut input), Ok(id), "{id}");
        assert!(input.is_empty());
        let m = Message {
            from: id,
            to: id,
            term: 1,
            body: MessageBody::TimeoutNow,
        };
        assert_eq!(
            codec::decode::<SocketAddr>(&codec::encode_to_vec(&m)),
            Ok(m)
        );
    }
    // Addresses without a scope or flow label keep the format they had
    // (what is on disk stays readable): tag 6, 16 octets, the port.
    let plain: SocketAddr = "[2001:db8::1]:4000".parse().expect("addr");
    let mut out = Vec::new();
    plain.encode(&mut out);
    assert_eq!((out.len(), out[0]), (19, 6));
    // One encoding per id: a scoped form with neither field set is refused.
    let mut scoped = vec![7];
    scoped.extend_from_slice(&out[1..]);
    scoped.extend_from_slice(&[0; 8]);
    assert_eq!(
        SocketAddr::decode(&mut &scoped[..]),
        Err(codec::DecodeError::NodeId)
    );
}

/// A peer that accepts every connection and closes it at once (a crashed
/// service behind a proxy, the wrong service at that address): each
/// connection breaks at its first write. The writer must back off as for
/// a refused connection, not reconnect once per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_hangs_up_at_once_is_not_reconnected_per_message() {
    let sink = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sink_addr = sink.local_addr().expect("bound");
    let accepted = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = sink.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            // Reset rather than close: the writer sees the failure at once.
            #[allow(deprecated)] // SO_LINGER 0 resets at once, never blocks
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut config = TcpConfig::default();
    config.reconnect_min = Duration::from_millis(20);
    config.reconnect_max = Duration::from_secs(1);
    let mut t = TcpTransport::<u64>::new(listener, [(2, sink_addr)], config).expect("config");
    // A leader's heartbeats and appends: one message a millisecond for 1 s.
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(1) {
        t.send(heartbeat(1, 2, i));
        i += 1;
        sleep(Duration::from_millis(1)).await;
    }
    let c = t.counters();
    let accepted = accepted.load(Ordering::SeqCst);
    // With backoff from 20 ms doubling to 1 s: about 6 attempts a second
    // (20 + 40 + 80 + 160 + 320 ms); allow ten times that on a slow machine.
    assert!(
        c.connects <= 60 && accepted <= 60,
        "{accepted} connections accepted in 1 s, {i} messages: {c:?}"
    );
}

/// `Handle::shutdown` "resolves once the task has stopped", the transport
/// dropped ("a TcpTransport closes its connections"). A node restarted
/// right after, on the same address, must find the port free; a client
/// must find it closed. Twenty rounds: after each `shutdown`, a connect to
/// the stopped node's listener must be refused.
///
/// Found: dropping the transport only aborted its tasks, and the listener,
/// owned by the accept task, closed when the runtime next ran that task,
/// often after `shutdown` had returned (10 rounds of 20). The transport
/// now owns the listener and accepts in `recv`.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn after_shutdown_the_listener_is_closed() {
    let task = tokio::spawn(async {
        let mut still_open = 0;
        for _ in 0..20 {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("bound");
            let transport =
                TcpTransport::<u64>::new(listener, [], TcpConfig::default()).expect("config");
            let node =
                RaftNode::new(1, MemStorage::new(vec![1]), Config::default()).expect("bootstrap");
            let handle = spawn(node, MemPersister, transport, |_: &Entry<u64>| (), ticks(5))
                .expect("config");
            handle.shutdown().await;
            assert!(handle.is_shut_down());
            // Blocking on purpose: nothing else runs on this worker first.
            if std::net::TcpStream::connect(addr).is_ok() {
                still_open += 1;
            }
        }
        still_open
    });
    let still_open = task.await.expect("no panic");
    assert_eq!(
        still_open, 0,
        "rounds where the listener outlived shutdown()"
    );
}

/// Quiescence is a `Config` field `spawn` accepts, and with it on "the
/// application MUST feed liveness" (README, Quiescence): a quiesced
/// follower never times out on its own. A `Handle` had no way to feed it
/// (no `set_peer_liveness`), so a cluster run by the driver with
/// quiescence on, whose leader stopped while the group was quiet, never
/// elected another. Now the application reports the leader down (as its
/// failure detector would) through `Handle::set_peer_liveness`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiesced_cluster_replaces_a_stopped_leader() {
    let ids = [1u64, 2, 3];
    let mut listeners = Vec::new();
    let mut peers = Vec::new();
    for id in ids {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        peers.push((id, listener.local_addr().expect("bound")));
        listeners.push(listener);
    }
    let mut handles = Vec::new();
    for (id, listener) in ids.into_iter().zip(listeners) {
        let mut config = Config::default();
        config.seed = id;
        config.quiesce_after_ticks = 5;
        let node = RaftNode::new(id, MemStorage::new(ids.to_vec()), config).expect("bootstrap");
        let others = peers.iter().copied().filter(|(p, _)| *p != id);
        let transport = TcpTransport::new(listener, others, TcpConfig::default()).expect("config");
        handles.push(
            spawn(node, MemPersister, transport, |_: &Entry<u64>| (), ticks(5)).expect("config"),
        );
    }
    let leader = timeout(Duration::from_secs(20), handles[0].leader())
        .await
        .expect("a leader")
        .expect("running");
    let at = ids.iter().position(|&i| i == leader).expect("a member");
    handles[at].propose("x").await.expect("committed");
    // The group goes quiet.
    let quiet = timeout(Duration::from_secs(20), async {
        while !handles.iter().all(|h| h.status().quiesced) {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(quiet.is_ok(), "the group never quiesced");
    handles[at].shutdown().await;
    // The application's failure detector notices and tells the others.
    for (i, h) in handles.iter().enumerate() {
        if i != at {
            h.set_peer_liveness(leader, false).await.expect("running");
        }
    }
    // 5 s is 50 election timeouts of 10 ticks of 5 ms.
    let replaced = timeout(Duration::from_secs(5), async {
        loop {
            let elected = handles
                .iter()
                .enumerate()
                .any(|(i, h)| i != at && h.status().role == Role::Leader && h.status().term > 1);
            if elected {
                return;
            }
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let statuses: Vec<_> = handles.iter().map(Handle::status).collect();
    assert!(replaced.is_ok(), "no new leader: {statuses:#?}");
    for h in &handles {
        h.shutdown().await;
    }
}

/// `TcpConfig::max_frame_len` said: keep it above `max_size_per_msg` and
/// `snapshot_chunk_size` plus some overhead. Configured so (2 MiB, over the
/// default 1 MiB), a cluster accepts a 4 MiB proposal (`max_proposal_size`
/// is 16 MiB by default), but no append carrying it fits a frame: every
/// one is dropped as oversized, the entry never reaches a follower, and
/// nothing after it can commit either. One proposal wedges the log for
/// good. It must be refused up front, or delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_over_the_frame_limit_never_wedges_the_log() {
    let ids = [1u64, 2, 3];
    let mut listeners = Vec::new();
    let mut peers = Vec::new();
    for id in ids {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        peers.push((id, listener.local_addr().expect("bound")));
        listeners.push(listener);
    }
    let mut handles = Vec::new();
    let mut counters = Vec::new();
    for (id, listener) in ids.into_iter().zip(listeners) {
        let mut config = Config::default();
        config.seed = id;
        let node = RaftNode::new(id, MemStorage::new(ids.to_vec()), config).expect("bootstrap");
        let mut tcp = TcpConfig::default();
        tcp.max_frame_len = 2 << 20;
        let others = peers.iter().copied().filter(|(p, _)| *p != id);
        let transport = TcpTransport::new(listener, others, tcp).expect("config");
        counters.push(transport.counters_handle());
        handles.push(
            spawn(node, MemPersister, transport, |_: &Entry<u64>| (), ticks(5)).expect("config"),
        );
    }
    let leader = timeout(Duration::from_secs(20), handles[0].leader())
        .await
        .expect("a leader")
        .expect("running");
    let at = ids.iter().position(|&i| i == leader).expect("a member");
    let big = timeout(
        Duration::from_secs(5),
        handles[at].propose(vec![7u8; 4 << 20]),
    )
    .await;
    match big {
        Ok(Ok(_) | Err(ProposeError::Refused(_))) => {}
        other => panic!(
            "the 4 MiB proposal: {other:?}; leader's transport: {:?}",
            counters[at].get()
        ),
    }
    // And the log goes on.
    let small = timeout(Duration::from_secs(5), handles[at].propose("after")).await;
    assert!(matches!(small, Ok(Ok(_))), "{small:?}");
    for h in &handles {
        h.shutdown().await;
    }
}

/// The real `DiskPersister` failing: the log's directory is removed under
/// a running node, so the next new segment cannot be created (and the
/// directory not synced). The write error stops the driver; proposals in
/// flight end with `ShutDown`, never `Ok`, and none hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fails_under_a_running_node_stops_the_driver() {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("node-1");
    let mut config = DiskStorageConfig::default();
    config.segment_bytes = DiskStorageConfig::MIN_SEGMENT_BYTES;
    let storage = DiskStorage::open(&dir, Membership::from_voters([1u64]), config).expect("open");
    let node = RaftNode::new(1, storage, Config::default()).expect("bootstrap");
    let handle =
        spawn(node, DiskPersister, Nowhere, |_: &Entry<u64>| (), ticks(5)).expect("config");
    timeout(Duration::from_secs(20), handle.leader())
        .await
        .expect("elects itself")
        .expect("running");
    handle.propose("before").await.expect("committed");
    std::fs::remove_dir_all(&dir).expect("removed");
    // 1 KiB proposals: a new segment is needed within a few.
    for i in 0..64 {
        let result = timeout(Duration::from_secs(20), handle.propose(vec![b'x'; 1024]))
            .await
            .expect("answered");
        match result {
            Ok(applied) => assert!(i < 8, "applied {applied:?} after the disk failed"),
            Err(ProposeError::ShutDown) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    timeout(Duration::from_secs(20), async {
        while !handle.is_shut_down() {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the driver stopped");
    assert_eq!(handle.propose("after").await, Err(ProposeError::ShutDown));
}
