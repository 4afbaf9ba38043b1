//! SWIM message handling: dsys-detect against foca 2.0 in the same criterion groups.
//!
//! Both run a 32-member cluster (LAN configs, 1 s period) built by real joins. Then one
//! member handles, over and over, a packet captured from a peer:
//! - `handle/ping-ack`: a ping; the member answers with an ack (decode, look up the
//!   sender, encode and emit the reply). The steady state of failure detection.
//! - `handle/gossip-updates`: a gossip packet carrying every pending membership update
//!   the sender had after the joins (31 for dsys; foca packs what its own format fits).
//!   After the first delivery the news is known, so this is the steady state of
//!   dissemination: decode and reject stale updates.
//!
//! Times are per packet handled, replies drained. Run with
//! `cargo bench -p dsys-detect --bench swim` and
//! `python3 .ci/bench-ratios --peer foca handle/`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dsys_detect::{Swim, SwimConfig};
use foca::{AccumulatingRuntime, Foca, Identity, NoCustomBroadcast, PostcardCodec, Timer};
use rand_foca::SeedableRng;
use rand_foca::rngs::StdRng;

const MEMBERS: u32 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Id(u32);

impl Identity for Id {
    type Addr = u32;
    fn renew(&self) -> Option<Self> {
        None
    }
    fn addr(&self) -> u32 {
        self.0
    }
    fn win_addr_conflict(&self, _adversary: &Self) -> bool {
        false
    }
}

type FocaNode = Foca<Id, PostcardCodec, StdRng, NoCustomBroadcast>;

/// A built cluster and the packets the bench replays.
struct Setup<N> {
    nodes: Vec<N>,
    /// A ping from member 1 to member 0.
    ping: Vec<u8>,
    /// A gossip packet from member 0 and the member it was sent to.
    gossip: (u32, Vec<u8>),
}

/// A dsys cluster: every member joins through member 0, and learns the others from
/// its answer. Also returns the time the packets were captured at.
fn dsys_setup() -> (Setup<Swim<u32>>, Instant) {
    let now = Instant::now();
    let mut nodes: Vec<Swim<u32>> = (0..MEMBERS)
        .map(|i| Swim::new(i, SwimConfig::default(), u64::from(i) + 1, now).expect("config"))
        .collect();
    for i in 1..MEMBERS as usize {
        nodes[i].join([0], now);
        while let Some(t) = nodes[i].poll_transmit() {
            nodes[0].handle_packet(&t.payload, now).expect("announce");
        }
        while let Some(t) = nodes[0].poll_transmit() {
            nodes[t.to as usize]
                .handle_packet(&t.payload, now)
                .expect("feed");
        }
    }
    // Member 1 probes in a shuffled round-robin: wait for its ping to member 0
    // (message kind 1, the fourth byte of a packet of cluster 0).
    let mut t = now;
    let ping = loop {
        t += Duration::from_millis(100);
        nodes[1].handle_timeout(t);
        let txs: Vec<_> = std::iter::from_fn(|| nodes[1].poll_transmit()).collect();
        if let Some(tx) = txs.into_iter().find(|tx| tx.to == 0 && tx.payload[3] == 1) {
            break tx.payload;
        }
    };
    let gossip = loop {
        t += Duration::from_millis(50);
        nodes[0].handle_timeout(t);
        let txs: Vec<_> = std::iter::from_fn(|| nodes[0].poll_transmit()).collect();
        if let Some(tx) = txs.into_iter().max_by_key(|tx| tx.payload.len()) {
            break (tx.to, tx.payload);
        }
    };
    (
        Setup {
            nodes,
            ping,
            gossip,
        },
        t,
    )
}

fn foca_node(i: u32) -> FocaNode {
    let config = foca::Config::new_lan(NonZeroU32::new(MEMBERS).expect("non-zero"));
    Foca::new(
        Id(i),
        config,
        StdRng::seed_from_u64(u64::from(i)),
        PostcardCodec,
    )
}

/// The same cluster in foca.
fn foca_setup() -> Setup<FocaNode> {
    let mut nodes: Vec<FocaNode> = (0..MEMBERS).map(foca_node).collect();
    let mut rt = AccumulatingRuntime::new();
    let mut rt0 = AccumulatingRuntime::new();
    for i in 1..MEMBERS as usize {
        nodes[i].announce(Id(0), &mut rt).expect("announce");
        while let Some((_, data)) = rt.to_send() {
            nodes[0].handle_data(&data, &mut rt0).expect("announce");
        }
    }
    // Member 1 learns of 0 from 0's feed, then its probe timer sends a ping.
    let mut feed_to_1 = Vec::new();
    while let Some((to, data)) = rt0.to_send() {
        if to == Id(1) {
            feed_to_1.push(data);
        }
    }
    while rt0.to_schedule().is_some() {}
    while rt0.to_notify().is_some() {}
    let mut rt1 = AccumulatingRuntime::new();
    for data in feed_to_1 {
        nodes[1].handle_data(&data, &mut rt1).expect("feed");
    }
    while rt1.to_send().is_some() {}
    let mut timers = Vec::new();
    while let Some((_, timer)) = rt1.to_schedule() {
        timers.push(timer);
    }
    let probe = timers
        .into_iter()
        .find(|t| matches!(t, Timer::ProbeRandomMember(_)))
        .expect("a probe timer");
    nodes[1].handle_timer(probe, &mut rt1).expect("probe");
    let ping = std::iter::from_fn(|| rt1.to_send())
        .find(|(to, _)| *to == Id(0))
        .expect("a ping to 0")
        .1
        .to_vec();
    nodes[0].gossip(&mut rt0).expect("gossip");
    let gossip = std::iter::from_fn(|| rt0.to_send())
        .max_by_key(|(_, d)| d.len())
        .map(|(to, d)| (to.0, d.to_vec()))
        .expect("gossip packets");
    Setup {
        nodes,
        ping,
        gossip,
    }
}

fn handle(c: &mut Criterion) {
    let (
        Setup {
            nodes: mut dsys,
            ping: dsys_ping,
            gossip: (dsys_gossip_to, dsys_gossip),
        },
        now,
    ) = dsys_setup();
    let Setup {
        nodes: mut foca,
        ping: foca_ping,
        gossip: (foca_gossip_to, foca_gossip),
    } = foca_setup();
    println!(
        "packets: dsys ping {} B, gossip {} B; foca ping {} B, gossip {} B",
        dsys_ping.len(),
        dsys_gossip.len(),
        foca_ping.len(),
        foca_gossip.len()
    );
    let mut rt = AccumulatingRuntime::new();

    let mut group = c.benchmark_group("handle/ping-ack");
    group.bench_function("dsys", |b| {
        b.iter(|| {
            dsys[0]
                .handle_packet(black_box(&dsys_ping), now)
                .expect("ping");
            while let Some(t) = dsys[0].poll_transmit() {
                black_box(t);
            }
        })
    });
    group.bench_function("foca", |b| {
        b.iter(|| {
            foca[0]
                .handle_data(black_box(&foca_ping), &mut rt)
                .expect("ping");
            while let Some(t) = rt.to_send() {
                black_box(t);
            }
            while let Some(t) = rt.to_schedule() {
                black_box(t);
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("handle/gossip-updates");
    let d = dsys_gossip_to as usize;
    group.bench_function("dsys", |b| {
        b.iter(|| {
            dsys[d]
                .handle_packet(black_box(&dsys_gossip), now)
                .expect("gossip");
            while let Some(e) = dsys[d].poll_event() {
                black_box(e);
            }
            while let Some(t) = dsys[d].poll_transmit() {
                black_box(t);
            }
        })
    });
    let f = foca_gossip_to as usize;
    group.bench_function("foca", |b| {
        b.iter(|| {
            foca[f]
                .handle_data(black_box(&foca_gossip), &mut rt)
                .expect("gossip");
            while let Some(n) = rt.to_notify() {
                black_box(n);
            }
            while let Some(t) = rt.to_send() {
                black_box(t);
            }
            while let Some(t) = rt.to_schedule() {
                black_box(t);
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = handle
}
criterion_main!(benches);
