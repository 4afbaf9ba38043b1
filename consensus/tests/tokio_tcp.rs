//! `TcpTransport` on 127.0.0.1: frames carry codec messages both ways; a
//! peer's garbage is dropped and counted without closing the connection; a
//! peer that announces an oversized frame is disconnected; messages that
//! cannot go (unknown peer, too large, queue full) are dropped and counted;
//! a peer that comes up late is reached by reconnecting with backoff.

use std::net::SocketAddr;
use std::time::Duration;

use dsys_consensus::tokio::{TcpConfig, TcpTransport, Transport};
use dsys_consensus::{Entry, Message, MessageBody, codec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout};

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

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("bound");
    (l, addr)
}

async fn recv(t: &mut TcpTransport<u64>) -> Message<u64> {
    timeout(Duration::from_secs(5), t.recv())
        .await
        .expect("a message within 5 s")
        .expect("transport open")
}

#[tokio::test]
async fn messages_cross_both_ways_in_order() {
    let ((la, a_addr), (lb, b_addr)) = (listener().await, listener().await);
    let mut a = TcpTransport::new(la, [(2, b_addr)], TcpConfig::default()).expect("config");
    let mut b = TcpTransport::new(lb, [(1, a_addr)], TcpConfig::default()).expect("config");
    for i in 0..50 {
        a.send(heartbeat(1, 2, i));
    }
    for i in 0..50 {
        assert_eq!(recv(&mut b).await, heartbeat(1, 2, i));
    }
    let append = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::Append {
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry::new(1, 1, vec![7u8; 100_000])],
            commit: 0,
        },
    };
    b.send(append.clone());
    assert_eq!(recv(&mut a).await, append);
    assert_eq!(a.counters().received, 1);
    assert_eq!(b.counters().received, 50);
    assert_eq!(a.counters().connects, 1, "one connection for all 50");
}

#[tokio::test]
async fn garbage_is_counted_and_oversized_frames_disconnect() {
    let (la, a_addr) = listener().await;
    let mut config = TcpConfig::default();
    config.max_frame_len = 1024;
    let mut a = TcpTransport::<u64>::new(la, [], config).expect("config");
    let mut raw = TcpStream::connect(a_addr).await.expect("connect");
    // A frame of garbage, then a good one on the same connection.
    raw.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .expect("write");
    let good = codec::encode_to_vec(&heartbeat(9, 1, 4));
    raw.write_all(&(good.len() as u32).to_be_bytes())
        .await
        .expect("write");
    raw.write_all(&good).await.expect("write");
    assert_eq!(recv(&mut a).await, heartbeat(9, 1, 4));
    assert_eq!(a.counters().malformed, 1);
    // A frame announced past the limit: the connection is closed.
    raw.write_all(&2048u32.to_be_bytes()).await.expect("write");
    let mut rest = Vec::new();
    let read = timeout(Duration::from_secs(5), raw.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    assert_eq!(a.counters().oversized_frames, 1);
}

#[tokio::test]
async fn undeliverable_messages_are_dropped_and_counted() {
    let (la, _) = listener().await;
    // A port with nothing listening on it.
    let (dead, dead_addr) = listener().await;
    drop(dead);
    let mut config = TcpConfig::default();
    config.max_frame_len = 256;
    config.send_queue = 4;
    let mut a = TcpTransport::<u64>::new(la, [(2, dead_addr)], config).expect("config");
    a.send(heartbeat(1, 3, 0));
    assert_eq!(a.counters().dropped_unknown_peer, 1);
    a.send(Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry::new(1, 1, vec![0u8; 300])],
            commit: 0,
        },
    });
    assert_eq!(a.counters().dropped_oversized, 1);
    for i in 0..100 {
        a.send(heartbeat(1, 2, i));
    }
    let counters = a.counters();
    assert!(counters.dropped_queue_full >= 90, "{counters:?}");
    assert_eq!(counters.queued + counters.dropped_queue_full, 100);
}

#[tokio::test]
async fn a_late_peer_is_reached_by_reconnecting() {
    let (la, _) = listener().await;
    let (reserved, b_addr) = listener().await;
    drop(reserved);
    let mut config = TcpConfig::default();
    config.reconnect_min = Duration::from_millis(5);
    config.reconnect_max = Duration::from_millis(50);
    let mut a = TcpTransport::<u64>::new(la, [(2, b_addr)], config).expect("config");
    a.send(heartbeat(1, 2, 0));
    sleep(Duration::from_millis(100)).await;
    assert!(a.counters().connect_failures >= 1);
    // The peer comes up on the address it was expected at.
    let lb = TcpListener::bind(b_addr)
        .await
        .expect("the port is free again");
    let mut b = TcpTransport::<u64>::new(lb, [], TcpConfig::default()).expect("config");
    let got = timeout(Duration::from_secs(5), async {
        let mut i = 1;
        loop {
            a.send(heartbeat(1, 2, i));
            i += 1;
            if let Ok(Some(m)) = timeout(Duration::from_millis(20), b.recv()).await {
                return m;
            }
        }
    })
    .await
    .expect("reconnected within 5 s");
    assert_eq!(got.from, 1);
    assert!(a.counters().connects >= 1);
}

/// Polls `t.recv()` for `d` (connections are accepted while it is polled);
/// the messages that arrived meanwhile.
async fn pump(t: &mut TcpTransport<u64>, d: Duration) -> Vec<Message<u64>> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + d;
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, t.recv()).await {
        got.push(m);
    }
    got
}

/// Whoever reaches the port cannot hold an unbounded number of
/// connections: beyond `max_connections` a new one is closed at once and
/// counted; once one closes, a peer gets in again.
#[tokio::test]
async fn connections_beyond_the_cap_are_refused_and_counted() {
    let (la, a_addr) = listener().await;
    let mut config = TcpConfig::default();
    config.max_connections = 2;
    let mut a = TcpTransport::<u64>::new(la, [], config).expect("config");
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(TcpStream::connect(a_addr).await.expect("connect"));
        pump(&mut a, Duration::from_millis(50)).await;
    }
    assert_eq!(a.counters().refused_connections, 3);
    // The refused ones were closed: reading them ends.
    for stream in &mut held[2..] {
        let mut byte = [0u8; 1];
        let read = timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    }
    // One of the two accepted ones closes: a real peer gets in.
    held.truncate(1);
    let mut b = TcpTransport::<u64>::new(listener().await.0, [(1, a_addr)], TcpConfig::default())
        .expect("config");
    // A connection accepted before the closed one's reader has seen its
    // end is refused too; the peer reconnects and is heard.
    let mut heard = Vec::new();
    for commit in 0..100 {
        b.send(heartbeat(2, 1, commit));
        heard.extend(pump(&mut a, Duration::from_millis(20)).await);
        if !heard.is_empty() {
            break;
        }
    }
    assert!(!heard.is_empty(), "a peer gets in once a connection closed");
}

/// A connection that sends nothing for `idle_timeout` is closed and
/// counted; a peer that sends again reconnects and is heard.
#[tokio::test]
async fn idle_connections_are_closed_and_peers_reconnect() {
    let (la, a_addr) = listener().await;
    let mut config = TcpConfig::default();
    config.idle_timeout = Duration::from_millis(100);
    let mut a = TcpTransport::<u64>::new(la, [], config).expect("config");
    let mut raw = TcpStream::connect(a_addr).await.expect("connect");
    pump(&mut a, Duration::from_millis(400)).await;
    assert_eq!(a.counters().idle_closed, 1);
    let mut byte = [0u8; 1];
    let read = timeout(Duration::from_secs(5), raw.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "closed: {read:?}");

    let mut b = TcpTransport::<u64>::new(listener().await.0, [(1, a_addr)], TcpConfig::default())
        .expect("config");
    b.send(heartbeat(2, 1, 1));
    assert_eq!(
        pump(&mut a, Duration::from_millis(300)).await,
        vec![heartbeat(2, 1, 1)]
    );
    // b's connection goes idle and is closed; b's next message may be lost
    // with it (Raft resends), and a later one arrives on a new connection.
    pump(&mut a, Duration::from_millis(300)).await;
    assert!(a.counters().idle_closed >= 2);
    let mut heard = Vec::new();
    for commit in 2..40 {
        b.send(heartbeat(2, 1, commit));
        heard.extend(pump(&mut a, Duration::from_millis(20)).await);
        if !heard.is_empty() {
            break;
        }
    }
    assert!(!heard.is_empty(), "b is heard again after reconnecting");
}

#[test]
fn incoming_limits_are_validated() {
    let mut config = TcpConfig::default();
    config.max_connections = 0;
    assert!(config.validate().is_err());
    let mut config = TcpConfig::default();
    config.idle_timeout = Duration::ZERO;
    assert!(config.validate().is_err());
}

/// `max_entry_len` is exact enough: an append with one entry of that many
/// bytes, at the widest indexes, fits a frame and arrives; the driver
/// refuses larger proposals.
#[tokio::test]
async fn an_entry_of_max_entry_len_fits_a_frame() {
    let ((la, a_addr), (lb, b_addr)) = (listener().await, listener().await);
    let mut config = TcpConfig::default();
    config.max_frame_len = 4096;
    let mut a = TcpTransport::new(la, [(2u64, b_addr)], config.clone()).expect("config");
    let mut b = TcpTransport::new(lb, [(1u64, a_addr)], config).expect("config");
    let max = a.max_entry_len().expect("a limit");
    assert!(max > 3000 && max < 4096, "{max}");
    let append = Message {
        from: u64::MAX,
        to: 2,
        term: u64::MAX,
        body: MessageBody::Append {
            prev_index: u64::MAX,
            prev_term: u64::MAX,
            entries: vec![Entry::new(u64::MAX, u64::MAX, vec![1u8; max as usize])],
            commit: u64::MAX,
        },
    };
    a.send(append.clone());
    assert_eq!(recv(&mut b).await, append);
    assert_eq!(a.counters().dropped_oversized, 0);
}
