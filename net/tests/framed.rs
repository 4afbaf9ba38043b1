//! The framed layer over real sockets: frames cross both ways in order, a
//! peer that announces an oversized frame is disconnected, and frames that
//! find a full queue are dropped and counted.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use dsys_net::{FramedTcp, FramedTcpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("bound");
    (l, addr)
}

async fn recv(t: &mut FramedTcp<u64>) -> Bytes {
    timeout(Duration::from_secs(5), t.recv())
        .await
        .expect("a frame within 5 s")
        .expect("transport open")
}

#[tokio::test]
async fn frames_cross_both_ways_in_order() {
    let ((la, a_addr), (lb, b_addr)) = (listener().await, listener().await);
    let config = FramedTcpConfig::default();
    let mut a = FramedTcp::new(la, [(2, b_addr)], config.clone()).expect("config");
    let mut b = FramedTcp::new(lb, [(1, a_addr)], config).expect("config");
    for i in 0..50u32 {
        a.send(&2, Bytes::from(i.to_be_bytes().to_vec()));
    }
    for i in 0..50u32 {
        assert_eq!(recv(&mut b).await, Bytes::from(i.to_be_bytes().to_vec()));
    }
    // Empty and large frames are frames too.
    b.send(&1, Bytes::new());
    b.send(&1, Bytes::from(vec![7u8; 300_000]));
    assert_eq!(recv(&mut a).await, Bytes::new());
    assert_eq!(recv(&mut a).await, Bytes::from(vec![7u8; 300_000]));
    let (ca, cb) = (a.counters(), b.counters());
    assert_eq!((ca.queued, ca.received, ca.connects), (50, 2, 1), "{ca:?}");
    assert_eq!((cb.queued, cb.received, cb.connects), (2, 50, 1), "{cb:?}");
    assert_eq!(a.counters_handle().get(), a.counters());
}

#[tokio::test]
async fn an_oversized_announced_frame_closes_that_connection() {
    let (la, a_addr) = listener().await;
    let mut config = FramedTcpConfig::default();
    config.max_frame_len = 1024;
    let mut a = FramedTcp::<u64>::new(la, [], config).expect("config");
    assert_eq!(a.max_frame_len(), 1024);
    let mut raw = TcpStream::connect(a_addr).await.expect("connect");
    raw.write_all(&[0, 0, 0, 3, 1, 2, 3]).await.expect("write");
    assert_eq!(recv(&mut a).await, Bytes::from_static(&[1, 2, 3]));
    raw.write_all(&1025u32.to_be_bytes()).await.expect("write");
    // Keep accepting (recv) while the reader closes the connection.
    let mut rest = Vec::new();
    let read = tokio::select! {
        read = timeout(Duration::from_secs(5), raw.read_to_end(&mut rest)) => read,
        _ = a.recv() => panic!("no frame was sent"),
    };
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    assert_eq!(a.counters().oversized_frames, 1);
    // Other connections are not affected.
    let mut raw = TcpStream::connect(a_addr).await.expect("connect");
    raw.write_all(&[0, 0, 0, 1, 9]).await.expect("write");
    assert_eq!(recv(&mut a).await, Bytes::from_static(&[9]));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    let (la, _) = listener().await;
    // A port with nothing listening on it: the writer stays in backoff.
    let (dead, dead_addr) = listener().await;
    drop(dead);
    let mut config = FramedTcpConfig::default();
    config.max_frame_len = 64;
    config.send_queue = 4;
    let mut a = FramedTcp::new(la, [(2u64, dead_addr)], config).expect("config");
    a.send(&3, Bytes::from_static(b"nobody"));
    a.send(&2, Bytes::from(vec![0u8; 65]));
    for _ in 0..100 {
        a.send(&2, Bytes::from_static(b"x"));
    }
    let counters = a.counters();
    assert_eq!(counters.dropped_unknown_peer, 1, "{counters:?}");
    assert_eq!(counters.dropped_oversized, 1, "{counters:?}");
    // The queue holds 4, and the writer may hold one more it took out.
    assert!(counters.dropped_queue_full >= 95, "{counters:?}");
    assert_eq!(counters.queued + counters.dropped_queue_full, 100);
}

#[test]
fn an_invalid_config_starts_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (la, _) = listener().await;
        let mut config = FramedTcpConfig::default();
        config.max_connections = 0;
        let err = FramedTcp::<u64>::new(la, [], config).expect_err("refused");
        assert_eq!(err, dsys_net::ConfigError::Incoming);
    });
}
