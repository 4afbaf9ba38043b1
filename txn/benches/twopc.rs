//! Two-phase commit through the state machines, in-process: one coordinator
//! and 3 participants, one transaction at a time, every participant voting
//! Yes: begin → Prepare ×3 → VoteRequested → vote → Prepared persisted →
//! Yes ×3 → Commit record persisted → Decision ×3 → Committed persisted →
//! Ack ×3 → End. Persists are acknowledged at once (no disk: this measures
//! the protocol's CPU cost, not fsync). Virtual time advances 1 ms per
//! transaction and participants keep decided transactions for 1 s, so each
//! holds about 1000 of them in its maps, as a busy participant would.
//!
//! Groups (criterion time per transaction; throughput in transactions/s):
//! - `twopc/commit_3/state_machines`: the above, messages moved as values.
//! - `twopc/commit_3/with_codec`: the same with every message encoded and
//!   decoded on the way, as over a real network.
//! - `twopc/commit_3/floor`: what no implementation can avoid: the same 12
//!   messages pushed through and popped from a `Vec` queue, and one
//!   `BTreeMap` insert and remove per node for the transaction's state.
//!
//! There is no peer crate to run side by side (no maintained sans-IO 2PC on
//! crates.io); the floor is the comparison. Run with
//! `cargo bench --manifest-path bench/Cargo.toml --bench twopc`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dsys_txn::twopc::{Config, Coordinator, Message, Output, Participant, TxId, Vote};

const COORD: u64 = 0;
const PARTICIPANTS: [u64; 3] = [1, 2, 3];

struct Cluster {
    coordinator: Coordinator<u64>,
    participants: Vec<Participant<u64>>,
    now: Instant,
    next_tx: u64,
    net: Vec<(u64, u64, Message<u64>)>,
    codec: bool,
    buf: Vec<u8>,
}

impl Cluster {
    fn new(codec: bool) -> Self {
        let mut config = Config::default();
        config.decision_retention = Duration::from_secs(1);
        Cluster {
            coordinator: Coordinator::new(config.clone(), COORD).expect("valid config"),
            participants: PARTICIPANTS
                .iter()
                .map(|id| Participant::new(config.clone(), *id).expect("valid config"))
                .collect(),
            now: Instant::now(),
            next_tx: 1,
            net: Vec::with_capacity(16),
            codec,
            buf: Vec::with_capacity(64),
        }
    }

    fn drain_coordinator(&mut self) {
        while let Some(out) = self.coordinator.poll_output() {
            match out {
                Output::Send { to, message } => self.net.push((COORD, to, message)),
                Output::Persist {
                    id, force: true, ..
                } => self.coordinator.on_persisted(id),
                _ => {}
            }
        }
    }

    fn drain_participant(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.participants[i];
        let me = *p.id();
        while let Some(out) = p.poll_output() {
            match out {
                Output::Send { to, message } => self.net.push((me, to, message)),
                Output::Persist {
                    id, force: true, ..
                } => p.on_persisted(id),
                Output::VoteRequested { coordinator, tx } => {
                    p.vote(&coordinator, tx, Vote::Yes, now)
                        .expect("awaiting a vote");
                }
                _ => {}
            }
        }
    }

    /// One transaction, start to finish.
    fn transaction(&mut self) {
        self.now += Duration::from_millis(1);
        let tx = TxId(self.next_tx);
        self.next_tx += 1;
        for i in 0..self.participants.len() {
            self.participants[i].handle_timeout(self.now);
        }
        self.coordinator
            .begin(tx, PARTICIPANTS, self.now)
            .expect("a fresh tx");
        self.drain_coordinator();
        while !self.net.is_empty() {
            for (from, to, mut message) in std::mem::take(&mut self.net) {
                if self.codec {
                    self.buf.clear();
                    message.encode(&mut self.buf);
                    message = Message::decode(&self.buf).expect("our own encoding");
                }
                if to == COORD {
                    self.coordinator.handle_message(from, message, self.now);
                    self.drain_coordinator();
                } else {
                    let i = (to - 1) as usize;
                    self.participants[i].handle_message(from, message, self.now);
                    self.drain_participant(i);
                }
            }
        }
        debug_assert!(self.coordinator.is_empty());
    }
}

fn floor(queue: &mut Vec<(u64, u64, Message<u64>)>, maps: &mut [BTreeMap<u64, u64>; 4], tx: u64) {
    for m in maps.iter_mut() {
        m.insert(tx, tx);
    }
    for round in 0..4u64 {
        for p in PARTICIPANTS {
            queue.push((round, p, Message::Ack { tx: TxId(tx) }));
        }
        for msg in queue.drain(..) {
            black_box(msg);
        }
    }
    for m in maps.iter_mut() {
        black_box(m.remove(&tx));
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("twopc/commit_3");
    group.throughput(Throughput::Elements(1));
    let mut cluster = Cluster::new(false);
    group.bench_function("state_machines", |b| b.iter(|| cluster.transaction()));
    let mut cluster = Cluster::new(true);
    group.bench_function("with_codec", |b| b.iter(|| cluster.transaction()));
    let mut queue = Vec::with_capacity(16);
    let mut maps: [BTreeMap<u64, u64>; 4] = Default::default();
    // The same ~1000 retained entries per node as the state machines hold.
    for m in maps.iter_mut() {
        m.extend((0..1000u64).map(|k| (u64::MAX - k, k)));
    }
    let mut tx = 0u64;
    group.bench_function("floor", |b| {
        b.iter(|| {
            tx += 1;
            floor(&mut queue, &mut maps, tx);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
