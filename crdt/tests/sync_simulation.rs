//! Delta-state anti-entropy (Almeida et al. 2018, Algorithm 2) between 10 replicas on a
//! seeded, simulated network that loses, duplicates and reorders messages and is cut in
//! two for a while. After the network heals and mutations stop, every replica must
//! hold the same state, and that state must be what the operations add up to.
//!
//! The same operation schedule is also run with plain state-based anti-entropy (every
//! round, each replica sends its whole state to each peer) and the bytes both put on
//! the wire are compared. `DSYS_CRDT_SIM_SEEDS` sets the number of seeds (default 20,
//! 4 for the OR-Set) and `DSYS_CRDT_SIM_FIRST_SEED` the first; a failing seed is
//! printed. Crashes and restarts are in `sync_restart.rs`.

use std::collections::BTreeSet;

use dsys_crdt::codec::{Decode, Encode};
use dsys_crdt::{Authored, GCounter, Lattice, ORSet, PNCounter, Replica, SyncConfig, SyncMessage};

const REPLICAS: u64 = 10;
/// Simulated milliseconds per step.
const STEP_MS: u64 = 10;
/// Each replica ships every this many ms.
const SHIP_MS: u64 = 100;
/// Mutations happen during the first this many ms...
const MUTATE_UNTIL_MS: u64 = 20_000;
/// ...and the network is cut in two (replicas 0–4 | 5–9) during this window.
const PARTITION_MS: (u64, u64) = (5_000, 12_000);
/// Give up on convergence after this long.
const GIVE_UP_MS: u64 = 60_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Algorithm 2 in a full mesh: delta-intervals, acks, whole state only when
    /// needed, nothing relayed.
    Delta,
    /// Algorithm 2 on a ring (each replica talks to its two neighbours only), relaying
    /// what it receives.
    DeltaRing,
    /// The classic state-based protocol: the whole state to every peer every round.
    FullState,
}

struct Network {
    rng: fastrand::Rng,
    /// (deliver at ms, sequence, from, to, bytes)
    in_flight: Vec<(u64, u64, u64, u64, Vec<u8>)>,
    seq: u64,
    bytes: u64,
}

impl Network {
    fn partitioned(now: u64, a: u64, b: u64) -> bool {
        now >= PARTITION_MS.0 && now < PARTITION_MS.1 && (a < 5) != (b < 5)
    }

    /// Sends with 20 % loss, 10 % duplication, 1–80 ms delay (so reordering).
    fn send(&mut self, now: u64, from: u64, to: u64, bytes: Vec<u8>) {
        self.bytes += bytes.len() as u64;
        if Self::partitioned(now, from, to) || self.rng.f64() < 0.2 {
            return;
        }
        let copies = if self.rng.f64() < 0.1 { 2 } else { 1 };
        for _ in 0..copies {
            self.seq += 1;
            let at = now + self.rng.u64(1..=80);
            self.in_flight.push((at, self.seq, from, to, bytes.clone()));
        }
    }

    fn due(&mut self, now: u64) -> Vec<(u64, u64, Vec<u8>)> {
        self.in_flight.sort_by_key(|m| (m.0, m.1));
        let split = self.in_flight.partition_point(|m| m.0 <= now);
        self.in_flight
            .drain(..split)
            .map(|(_, _, from, to, b)| (from, to, b))
            .collect()
    }
}

/// What a run produced.
struct Outcome<S> {
    states: Vec<S>,
    converged_at_ms: Option<u64>,
    bytes: u64,
}

/// Runs one seed: `op` is called for a random replica at random steps and returns the
/// delta of a mutation it applied to the state.
fn simulate<S>(
    seed: u64,
    mode: Mode,
    mut op: impl FnMut(&mut fastrand::Rng, &mut S, &u64) -> S,
) -> Outcome<S>
where
    S: Lattice + Authored<u64> + PartialEq + Encode + Decode + std::fmt::Debug,
{
    let mut replicas: Vec<Replica<u64, S>> = (0..REPLICAS)
        .map(|i| {
            if mode == Mode::DeltaRing {
                let mut r = Replica::new(i, S::bottom(), SyncConfig::default())
                    .expect("a valid configuration");
                r.add_peer((i + 1) % REPLICAS);
                r.add_peer((i + REPLICAS - 1) % REPLICAS);
                return r;
            }
            // A full mesh: every replica hears each delta from its origin.
            let mut r = Replica::new(i, S::bottom(), SyncConfig::full_mesh())
                .expect("a valid configuration");
            for j in (0..REPLICAS).filter(|j| *j != i) {
                r.add_peer(j);
            }
            r
        })
        .collect();
    let mut ops_rng = fastrand::Rng::with_seed(seed);
    let mut net = Network {
        rng: fastrand::Rng::with_seed(seed ^ 0x5eed),
        in_flight: Vec::new(),
        seq: 0,
        bytes: 0,
    };
    let mut converged_at_ms = None;
    let mut now = 0;
    while now <= GIVE_UP_MS {
        if now < MUTATE_UNTIL_MS && ops_rng.f64() < 0.3 {
            let i = ops_rng.usize(..REPLICAS as usize);
            let rng = &mut ops_rng;
            replicas[i].mutate(|s, me| op(rng, s, me));
        }
        for (from, to, bytes) in net.due(now) {
            // Every message on the wire is well formed: a rejection is a bug.
            replicas[to as usize]
                .handle_bytes(&from, &bytes)
                .unwrap_or_else(|e| panic!("seed {seed}: replica {to} rejected a message: {e}"));
        }
        if now % SHIP_MS == 0 {
            for r in replicas.iter_mut() {
                match mode {
                    Mode::Delta | Mode::DeltaRing => r.ship(),
                    Mode::FullState => {
                        // State-based anti-entropy: the whole state to every peer.
                        let me = *r.id();
                        let bytes = SyncMessage::State {
                            incarnation: 0,
                            seq: 0,
                            state: r.state().clone(),
                        }
                        .to_bytes();
                        for to in (0..REPLICAS).filter(|j| *j != me) {
                            net.send(now, me, to, bytes.clone());
                        }
                    }
                }
            }
        }
        for r in replicas.iter_mut() {
            let from = *r.id();
            while let Some(out) = r.poll_transmit() {
                // Full-state mode sends no acks: nothing waits for them.
                if mode == Mode::FullState && matches!(out.message, SyncMessage::Ack { .. }) {
                    continue;
                }
                net.send(now, from, out.to, out.message.to_bytes());
            }
        }
        if now >= MUTATE_UNTIL_MS
            && now >= PARTITION_MS.1
            && replicas.windows(2).all(|w| w[0].state() == w[1].state())
        {
            converged_at_ms = Some(now);
            break;
        }
        now += STEP_MS;
    }
    Outcome {
        states: replicas.iter().map(|r| r.state().clone()).collect(),
        converged_at_ms,
        bytes: net.bytes,
    }
}

/// `DSYS_CRDT_SIM_SEEDS` seeds (or `default`) from `DSYS_CRDT_SIM_FIRST_SEED` (or 0).
fn seeds_or(default: u64) -> std::ops::Range<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let first = var("DSYS_CRDT_SIM_FIRST_SEED").unwrap_or(0);
    first..first.saturating_add(var("DSYS_CRDT_SIM_SEEDS").unwrap_or(default))
}

fn seeds() -> std::ops::Range<u64> {
    seeds_or(20)
}

/// G-Counter (the seeds' page-view counter): every replica ends with the total of
/// every increment, and deltas cost far fewer bytes than shipping whole states.
#[test]
fn gcounter_replicas_converge_to_the_total() {
    let mut delta_bytes = 0;
    let mut full_bytes = 0;
    for seed in seeds() {
        let mut total: u128 = 0;
        let out = simulate(seed, Mode::Delta, |rng, s: &mut GCounter<u64>, me| {
            let by = rng.u64(1..=5);
            total += u128::from(by);
            s.increment(me, by)
        });
        let at = out
            .converged_at_ms
            .unwrap_or_else(|| panic!("seed {seed}: no convergence: {:?}", out.states));
        assert!(at <= GIVE_UP_MS);
        for s in &out.states {
            assert_eq!(s.value(), total, "seed {seed}");
        }
        let full = simulate(seed, Mode::FullState, |rng, s: &mut GCounter<u64>, me| {
            s.increment(me, rng.u64(1..=5))
        });
        assert!(
            full.converged_at_ms.is_some(),
            "seed {seed}: full-state run"
        );
        assert_eq!(
            full.states[0], out.states[0],
            "seed {seed}: same operations, same state"
        );
        delta_bytes += out.bytes;
        full_bytes += full.bytes;
    }
    let ratio = full_bytes as f64 / delta_bytes as f64;
    eprintln!(
        "G-Counter, 10 replicas, {} seeds: delta protocol {delta_bytes} B, full-state {full_bytes} B: {ratio:.1}x fewer bytes",
        seeds().count()
    );
    assert!(
        ratio > 1.0,
        "deltas must cost fewer bytes than whole states"
    );
}

/// On a ring, where replicas only reach their neighbours, relayed deltas carry every
/// increment around the partition and back.
#[test]
fn gcounter_converges_on_a_ring_by_relaying() {
    for seed in seeds() {
        let mut total: u128 = 0;
        let out = simulate(seed, Mode::DeltaRing, |rng, s: &mut GCounter<u64>, me| {
            let by = rng.u64(1..=5);
            total += u128::from(by);
            s.increment(me, by)
        });
        assert!(
            out.converged_at_ms.is_some(),
            "seed {seed}: no convergence on the ring"
        );
        for s in &out.states {
            assert_eq!(s.value(), total, "seed {seed}");
        }
    }
}

/// PN-Counter: increments and decrements from every replica sum up everywhere.
#[test]
fn pncounter_replicas_converge_to_the_sum() {
    for seed in seeds() {
        let mut sum: i128 = 0;
        let out = simulate(seed, Mode::Delta, |rng, s: &mut PNCounter<u64>, me| {
            let by = rng.u64(1..=5);
            if rng.bool() {
                sum += i128::from(by);
                s.increment(me, by)
            } else {
                sum -= i128::from(by);
                s.decrement(me, by)
            }
        });
        assert!(out.converged_at_ms.is_some(), "seed {seed}: no convergence");
        for s in &out.states {
            assert_eq!(s.value(), sum, "seed {seed}");
        }
    }
}

/// One add-wins OR-Set operation: mostly adds of fresh elements, some removes of
/// elements this replica sees.
fn orset_op(
    rng: &mut fastrand::Rng,
    s: &mut ORSet<u64, u32>,
    me: &u64,
    added: &mut BTreeSet<u32>,
) -> ORSet<u64, u32> {
    if s.is_empty() || rng.f64() < 0.7 {
        let x = rng.u32(..5_000);
        added.insert(x);
        s.add(me, x)
    } else {
        let nth = rng.usize(..s.len());
        let x = *s.iter().nth(nth).expect("in range");
        s.remove(&x)
    }
}

/// OR-Set (add-wins): all replicas end with the same elements, each of them added by
/// someone; the state grows with the set, so deltas save most of the bytes.
#[test]
fn orset_replicas_converge_and_deltas_save_bytes() {
    let mut delta_bytes = 0;
    let mut full_bytes = 0;
    // Whole OR-Set states are large: fewer seeds by default.
    for seed in seeds_or(4) {
        let mut added = BTreeSet::new();
        let out = simulate(seed, Mode::Delta, |rng, s: &mut ORSet<u64, u32>, me| {
            orset_op(rng, s, me, &mut added)
        });
        assert!(out.converged_at_ms.is_some(), "seed {seed}: no convergence");
        let first: BTreeSet<u32> = out.states[0].iter().copied().collect();
        assert!(!first.is_empty(), "seed {seed}: something survived");
        assert!(
            first.is_subset(&added),
            "seed {seed}: an element nobody added"
        );
        let mut added_full = BTreeSet::new();
        let full = simulate(seed, Mode::FullState, |rng, s: &mut ORSet<u64, u32>, me| {
            orset_op(rng, s, me, &mut added_full)
        });
        assert!(
            full.converged_at_ms.is_some(),
            "seed {seed}: full-state run"
        );
        delta_bytes += out.bytes;
        full_bytes += full.bytes;
    }
    let ratio = full_bytes as f64 / delta_bytes as f64;
    eprintln!(
        "OR-Set, 10 replicas, {} seeds: delta protocol {delta_bytes} B, full-state {full_bytes} B: {ratio:.1}x fewer bytes",
        seeds_or(4).count()
    );
    assert!(
        ratio > 2.0,
        "deltas must save bytes on a growing set: {ratio:.2}x"
    );
}
