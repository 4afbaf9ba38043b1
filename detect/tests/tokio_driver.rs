//! The tokio driver in one process: three members on 127.0.0.1 over real UDP
//! sockets join and converge (SWIM §4.1, §5: join through a seed and a whole
//! view exchange); bad datagrams (garbage, oversized, another cluster, a
//! packet in another member's name) are counted and change nothing; a
//! graceful leave reaches everyone (SWIM §4.2, "left"); a member stopped
//! without a word is declared down (SWIM §3.1, §4.2); a stopped driver ends
//! its event stream and refuses commands.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use dsys_detect::tokio::{CommandError, DriverConfig, Events, Handle, SpawnError, spawn};
use dsys_detect::{Event, State, Swim, SwimConfig};
use futures_core::Stream;
use tokio::net::UdpSocket;
use tokio::time::timeout;

fn swim_config() -> SwimConfig {
    let mut config = SwimConfig::default();
    config.probe_interval = Duration::from_millis(100);
    config.probe_timeout = Duration::from_millis(50);
    config.gossip_interval = Duration::from_millis(50);
    config.suspicion_mult = 3;
    config.suspicion_max_timeout_mult = 2;
    config
}

async fn member(config: &SwimConfig) -> (Handle, Events) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    spawn(socket, config.clone(), DriverConfig::default()).expect("spawn")
}

/// Reads `events` until `want` is seen, within `limit`.
async fn expect_event(events: &mut Events, want: Event<SocketAddr>, limit: Duration) {
    timeout(limit, async {
        while let Some(event) = events.recv().await {
            if event == want {
                return;
            }
        }
        panic!("the event stream ended before {want:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("{want:?} within {limit:?}"));
}

/// Waits until every handle sees `n` live members.
async fn converge(handles: &[&Handle], n: usize) {
    timeout(Duration::from_secs(10), async {
        loop {
            let mut done = true;
            for h in handles {
                done &= h.snapshot().await.expect("running").live_members == n;
            }
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("convergence within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_join_ignore_bad_datagrams_and_see_a_leave() {
    let config = swim_config();
    let (a, mut a_events) = member(&config).await;
    let (b, mut b_events) = member(&config).await;
    let (c, _c_events) = member(&config).await;
    b.join([a.me()]).await.expect("running");
    c.join([a.me()]).await.expect("running");
    expect_event(&mut a_events, Event::Up(b.me()), Duration::from_secs(5)).await;
    expect_event(&mut a_events, Event::Up(c.me()), Duration::from_secs(5)).await;
    // b learns of c from a's view or from gossip (SWIM §4.1).
    expect_event(&mut b_events, Event::Up(c.me()), Duration::from_secs(5)).await;
    converge(&[&a, &b, &c], 2).await;

    let before = a.snapshot().await.expect("running");
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    // Garbage: refused by the state machine, counted as malformed.
    stranger
        .send_to(b"not a swim packet", a.me())
        .expect("send");
    stranger.send_to(&[], a.me()).expect("send");
    // Oversized: dropped unread.
    let big = vec![0xD5; config.max_packet_size + 100];
    stranger.send_to(&big, a.me()).expect("send");
    // A well-formed packet in b's name, from the stranger's address.
    let mut forger = Swim::new(b.me(), config.clone(), 1, Instant::now()).expect("config");
    forger.join([a.me()], Instant::now());
    let forged = forger.poll_transmit().expect("an announce to a");
    stranger.send_to(&forged.payload, a.me()).expect("send");
    // Another cluster's packet from its own address.
    let mut foreign_config = config.clone();
    foreign_config.cluster_id = 9;
    let own = stranger.local_addr().expect("bound");
    let mut foreign = Swim::new(own, foreign_config, 2, Instant::now()).expect("config");
    foreign.join([a.me()], Instant::now());
    let foreign_packet = foreign.poll_transmit().expect("an announce to a");
    stranger
        .send_to(&foreign_packet.payload, a.me())
        .expect("send");

    let after = timeout(Duration::from_secs(5), async {
        loop {
            let s = a.snapshot().await.expect("running");
            if s.driver.datagrams_received >= before.driver.datagrams_received + 5
                && s.driver.rejected >= before.driver.rejected + 3
                && s.driver.oversized > before.driver.oversized
                && s.driver.unknown_sender > before.driver.unknown_sender
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the bad datagrams are read and counted");
    assert_eq!(after.driver.oversized, before.driver.oversized + 1);
    assert_eq!(
        after.driver.unknown_sender,
        before.driver.unknown_sender + 1
    );
    assert_eq!(after.swim.malformed, before.swim.malformed + 2);
    assert_eq!(after.swim.wrong_cluster, before.swim.wrong_cluster + 1);
    assert_eq!(after.driver.recv_errors, 0);
    // Nothing else changed: the same two members, both alive, and nobody
    // learned of the stranger.
    assert_eq!(after.live_members, 2);
    assert_eq!(after.state_of(b.me()), Some(State::Alive));
    assert_eq!(after.state_of(c.me()), Some(State::Alive));
    assert_eq!(after.state_of(own), None);
    assert!(!a.is_shut_down());

    // A graceful leave reaches both others.
    c.leave().await.expect("running");
    expect_event(&mut a_events, Event::Left(c.me()), Duration::from_secs(5)).await;
    expect_event(&mut b_events, Event::Left(c.me()), Duration::from_secs(5)).await;
    let c_view = c.snapshot().await.expect("still running after leave");
    assert!(c_view.has_left);
    c.shutdown().await;
    assert!(c.is_shut_down());
    assert_eq!(c.snapshot().await, Err(CommandError::ShutDown));
    assert_eq!(c.join([a.me()]).await, Err(CommandError::ShutDown));

    // Shutdown ends the event stream, read here as a `Stream`.
    b.shutdown().await;
    timeout(Duration::from_secs(5), async {
        while poll_fn(|cx| Pin::new(&mut b_events).poll_next(cx))
            .await
            .is_some()
        {}
    })
    .await
    .expect("the stream ends once the driver stopped");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_member_is_declared_down() {
    let config = swim_config();
    let (a, mut a_events) = member(&config).await;
    let (b, mut b_events) = member(&config).await;
    let (c, _c_events) = member(&config).await;
    b.join([a.me()]).await.expect("running");
    c.join([a.me()]).await.expect("running");
    converge(&[&a, &b, &c], 2).await;
    // Stopped without leaving: to the others, a crash.
    c.shutdown().await;
    // Probes fail (SWIM §3.1), the suspicion times out (§4.2): at most about
    // a probe round of 2 periods, a period, and the unconfirmed suspicion of
    // suspicion_max_timeout_mult · suspicion_mult · probe_interval = 0.6 s;
    // 5 s leaves room for a loaded machine.
    let down = |by| Event::Down { node: c.me(), by };
    let limit = Duration::from_secs(5);
    timeout(limit, async {
        loop {
            match a_events.recv().await {
                Some(Event::Down { node, .. }) if node == c.me() => return,
                Some(_) => {}
                None => panic!("a stopped"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{:?} within {limit:?}", down(a.me())));
    timeout(limit, async {
        loop {
            match b_events.recv().await {
                Some(Event::Down { node, .. }) if node == c.me() => return,
                Some(_) => {}
                None => panic!("b stopped"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{:?} within {limit:?}", down(b.me())));
    for h in [&a, &b] {
        let s = h.snapshot().await.expect("running");
        assert_eq!(s.state_of(c.me()), Some(State::Down));
        assert_eq!(s.live_members, 1);
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn spawn_refuses_what_cannot_be_a_member_id() {
    let socket = UdpSocket::bind("0.0.0.0:0").await.expect("bind");
    let err = spawn(socket, SwimConfig::default(), DriverConfig::default())
        .expect_err("a wildcard address is no id");
    assert!(matches!(err, SpawnError::Unaddressable(_)), "{err}");

    // With an advertised address, the wildcard bind is fine.
    let socket = UdpSocket::bind("0.0.0.0:0").await.expect("bind");
    let port = socket.local_addr().expect("bound").port();
    let mut driver = DriverConfig::default();
    driver.advertise = Some(SocketAddr::from(([127, 0, 0, 1], port)));
    let (h, _events) = spawn(socket, SwimConfig::default(), driver).expect("spawn");
    assert_eq!(h.me().port(), port);
    h.shutdown().await;

    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut swim = SwimConfig::default();
    swim.probe_timeout = swim.probe_interval;
    assert!(matches!(
        spawn(socket, swim, DriverConfig::default()),
        Err(SpawnError::Swim(_))
    ));
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut driver = DriverConfig::default();
    driver.command_queue = 0;
    assert!(matches!(
        spawn(socket, SwimConfig::default(), driver),
        Err(SpawnError::Driver(_))
    ));
}

#[test]
fn spawn_outside_a_runtime_is_an_error() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let socket = runtime
        .block_on(UdpSocket::bind("127.0.0.1:0"))
        .expect("bind");
    // The socket belongs to a runtime, but spawn is called outside it.
    let err = spawn(socket, SwimConfig::default(), DriverConfig::default())
        .expect_err("no runtime to spawn on");
    assert!(matches!(err, SpawnError::NoRuntime), "{err}");
}

/// A reader that falls behind loses events, counted, and never stalls the
/// member: it still answers, and its view is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_event_queue_drops_and_counts() {
    let config = swim_config();
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut driver = DriverConfig::default();
    driver.event_queue = 1;
    let (a, mut a_events) = spawn(socket, config.clone(), driver).expect("spawn");
    let (b, _b_events) = member(&config).await;
    let (c, _c_events) = member(&config).await;
    b.join([a.me()]).await.expect("running");
    c.join([a.me()]).await.expect("running");
    converge(&[&a, &b, &c], 2).await;
    let s = a.snapshot().await.expect("running");
    assert!(s.driver.events_dropped >= 1, "{:?}", s.driver);
    // The one queued event is still there.
    assert!(matches!(a_events.try_recv(), Some(Event::Up(_))));
    for h in [&a, &b, &c] {
        h.shutdown().await;
    }
}
