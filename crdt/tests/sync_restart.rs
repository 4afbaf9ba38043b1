//! Crash and restart under the persistence contract of `dsys_crdt::Replica` (Algorithm 2 of
//! Almeida et al. 2018 keeps `X` and `c` durable; here `X` and an incarnation).
//!
//! First the two ways a restart went wrong (issue 14, findings 5 and 6), then the
//! randomized simulation: replicas of a G-Set, an OR-Set, a G-Counter and a PN-Counter
//! on a network that loses, duplicates, delays and replays messages, cut by symmetric,
//! one-way and non-transitive partitions, with replicas crashing (between steps, before
//! writing a change, while sending) and restarting from their records. After the storm,
//! every replica must hold exactly what the durable mutations add up to.
//! `DSYS_CRDT_SIM_SEEDS` / `DSYS_CRDT_SIM_FIRST_SEED` set the seeds (`tests/common`).

mod common;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use dsys_crdt::codec::{Decode, Encode};
use dsys_crdt::sim::{Sim, SimConfig, SimConfigError, SimStats};
use dsys_crdt::{
    Authored, ConfigError, GCounter, GSet, Lattice, ORSet, PNCounter, Replica, RestoreError,
    SyncConfig, SyncMessage,
};

type R = Replica<u64, GSet<u32>>;

fn pair() -> (R, R) {
    let mut a =
        Replica::new(1, GSet::new(), SyncConfig::full_mesh()).expect("a valid configuration");
    let mut b =
        Replica::new(2, GSet::new(), SyncConfig::full_mesh()).expect("a valid configuration");
    a.add_peer(2);
    b.add_peer(1);
    (a, b)
}

/// What the application keeps on disk: `(state, incarnation)`.
fn record(r: &R) -> (GSet<u32>, u64) {
    (r.state().clone(), r.incarnation())
}

/// Restarts replica 1 from its record, as the contract says.
fn restart((state, incarnation): (GSet<u32>, u64)) -> R {
    let mut a = Replica::restore(1, state, incarnation, SyncConfig::full_mesh()).unwrap();
    a.add_peer(2);
    a
}

fn deliver(from: &mut R, to: &mut R) {
    while let Some(out) = from.poll_transmit() {
        to.handle_bytes(from.id(), &out.message.to_bytes())
            .expect("a valid message");
    }
}

fn lose_outbox(r: &mut R) {
    while r.poll_transmit().is_some() {}
}

fn sync_rounds(a: &mut R, b: &mut R) {
    for _ in 0..4 {
        a.ship();
        b.ship();
        deliver(a, b);
        deliver(b, a);
    }
}

/// Issue 14, finding 5: a mutation persisted but not yet shipped must reach the peers
/// after a restart. Algorithm 2 ships `X` whole to every peer after a restart (`D` is
/// empty, `A(j) = 0 < c`); a restarted replica that shipped nothing lost it for good.
#[test]
fn a_restarted_replica_ships_the_state_it_restored() {
    let (mut a, mut b) = pair();
    let _ = a.mutate(|s, _| s.insert(7));
    let disk = record(&a);
    drop(a); // crash before the next ship
    let mut a = restart(disk);
    assert_eq!(a.incarnation(), 1);
    assert_eq!(a.changes(), 1, "the new incarnation must be written");
    a.ship();
    let first = a.poll_transmit().expect("something to ship");
    assert!(
        matches!(first.message, SyncMessage::State { incarnation: 1, .. }),
        "every peer gets the whole restored state first: {first:?}"
    );
    b.handle_message(&1, first.message).unwrap();
    sync_rounds(&mut a, &mut b);
    assert!(b.state().contains(&7), "b never got 7: {:?}", b.state());
}

/// Issue 14, finding 6: an ack sent to an earlier incarnation must not acknowledge the
/// deltas of the current one, which reuse its sequence numbers. The delayed ack of the
/// first life's `Delta { seq: 2 }` arrives after the second life has buffered slots up
/// to 2 again; taking it made the replica skip its new slot 1 ({3}) for good.
#[test]
fn acks_sent_to_an_earlier_incarnation_acknowledge_nothing() {
    let (mut a, mut b) = pair();
    let _ = a.mutate(|s, _| s.insert(1));
    a.ship();
    deliver(&mut a, &mut b);
    deliver(&mut b, &mut a);
    let _ = a.mutate(|s, _| s.insert(2));
    a.ship();
    deliver(&mut a, &mut b);
    // b's ack of `Delta { seq: 2 }` is delayed in the network.
    let delayed = b.poll_transmit().unwrap().message.to_bytes();
    let disk = record(&a);
    drop(a);
    let mut a = restart(disk);
    // Two ships of new mutations, both lost.
    let _ = a.mutate(|s, _| s.insert(3));
    a.ship();
    lose_outbox(&mut a);
    let _ = a.mutate(|s, _| s.insert(4));
    a.ship();
    lose_outbox(&mut a);
    a.handle_bytes(&2, &delayed).unwrap();
    assert_eq!(a.counters().stale_acks, 1, "the old life's ack is stale");
    sync_rounds(&mut a, &mut b);
    assert_eq!(
        b.state(),
        a.state(),
        "b misses what the stale ack claimed it had"
    );
}

#[test]
fn restore_counts_incarnations_and_refuses_the_last_one() {
    let a = Replica::<u64, GSet<u32>>::restore(1, GSet::new(), 41, SyncConfig::default()).unwrap();
    assert_eq!(a.incarnation(), 42);
    assert_eq!(
        Replica::<u64, GSet<u32>>::restore(1, GSet::new(), u64::MAX, SyncConfig::default()).err(),
        Some(RestoreError::IncarnationExhausted)
    );
    let fresh = Replica::<u64, GSet<u32>>::new(1, GSet::new(), SyncConfig::default()).unwrap();
    assert_eq!((fresh.incarnation(), fresh.changes()), (0, 0));
}

#[test]
fn an_invalid_configuration_is_a_config_error_and_not_a_restart_error() {
    let mut config = SyncConfig::default();
    config.max_buffered_deltas = 0;
    assert_eq!(config.validate(), Err(ConfigError::ZeroBufferedDeltas));
    assert_eq!(
        Replica::<u64, GSet<u32>>::new(1, GSet::new(), config.clone()).err(),
        Some(ConfigError::ZeroBufferedDeltas)
    );
    // A restart checks the configuration too, and says which of the two was wrong.
    assert_eq!(
        Replica::<u64, GSet<u32>>::restore(1, GSet::new(), 3, config).err(),
        Some(RestoreError::Config(ConfigError::ZeroBufferedDeltas))
    );
    let mut config = SyncConfig::default();
    config.max_buffered_deltas = 1;
    assert!(Replica::<u64, GSet<u32>>::new(1, GSet::new(), config).is_ok());
}

#[test]
fn an_invalid_simulator_configuration_is_refused() {
    let refused = |edit: fn(&mut SimConfig)| {
        let mut config = SimConfig::default();
        edit(&mut config);
        let error = config.validate().expect_err("invalid");
        assert_eq!(Sim::<GSet<u32>>::new(config, 0).err(), Some(error.clone()));
        error
    };
    assert_eq!(refused(|c| c.replicas = 0), SimConfigError::Replicas(0));
    assert_eq!(
        refused(|c| c.replicas = SimConfig::MAX_REPLICAS + 1),
        SimConfigError::Replicas(SimConfig::MAX_REPLICAS + 1)
    );
    assert_eq!(
        refused(|c| c.step = Duration::ZERO),
        SimConfigError::Duration {
            field: "step",
            value: Duration::ZERO
        }
    );
    assert_eq!(
        refused(|c| c.long_delay_max = Duration::MAX),
        SimConfigError::Duration {
            field: "long_delay_max",
            value: Duration::MAX
        }
    );
    assert_eq!(
        refused(|c| c.ship_every = Duration::from_micros(1_500)),
        SimConfigError::Duration {
            field: "ship_every",
            value: Duration::from_micros(1_500)
        }
    );
    assert_eq!(
        refused(|c| c.latency = (Duration::from_millis(80), Duration::from_millis(1))),
        SimConfigError::Range { field: "latency" }
    );
    assert_eq!(
        refused(|c| c.downtime = (
            Duration::ZERO,
            SimConfig::MAX_DURATION + Duration::from_millis(1)
        )),
        SimConfigError::Duration {
            field: "downtime",
            value: SimConfig::MAX_DURATION + Duration::from_millis(1)
        }
    );
    assert_eq!(
        refused(|c| c.loss = f64::NAN),
        SimConfigError::Probability { field: "loss" }
    );
    assert_eq!(
        refused(|c| c.partition = 1.5),
        SimConfigError::Probability { field: "partition" }
    );
    assert_eq!(
        refused(|c| c.replay_window = 0),
        SimConfigError::ReplayWindow(0)
    );
    assert_eq!(
        refused(|c| c.sync.max_buffered_deltas = 0),
        SimConfigError::Sync(ConfigError::ZeroBufferedDeltas)
    );
    // Every configuration the tests draw is valid.
    for seed in 0..1_000 {
        assert_eq!(
            SimConfig::randomized(seed).validate(),
            Ok(()),
            "seed {seed}"
        );
    }
    assert_eq!(
        SimConfig::reliable(3, Duration::from_millis(20)).validate(),
        Ok(())
    );
}

#[test]
fn changes_count_mutations_and_joins_but_not_duplicates() {
    let (mut a, mut b) = pair();
    let _ = a.mutate(|s, _| s.insert(1));
    let _ = a.mutate(|s, _| s.insert(1)); // ⊥: nothing changed
    assert_eq!(a.changes(), 1);
    a.ship();
    let out = a.poll_transmit().unwrap();
    b.handle_message(&1, out.message.clone()).unwrap();
    b.handle_message(&1, out.message).unwrap();
    assert_eq!(b.changes(), 1, "the duplicate joined nothing");
}

// --- The randomized simulation ----------------------------------------------------

/// Simulated time during which mutations and random faults happen.
const STORM: Duration = Duration::from_secs(6);
/// After the storm, convergence must come within this long.
const GIVE_UP: Duration = Duration::from_secs(60);
/// Probability of a mutation each step.
const MUTATE: f64 = 0.4;

/// A replicated type, the operations a run makes on it, and the model of the durable
/// ones.
trait Workload: Default {
    type State: Lattice + Authored<u64> + PartialEq + Encode + Decode + Debug;
    /// One random operation at replica `i`, recorded in the model if durable.
    fn operate(&mut self, rng: &mut fastrand::Rng, sim: &mut Sim<Self::State>, i: usize);
    /// Whether a converged state is the model's value.
    fn check(&self, state: &Self::State) -> Result<(), String>;
    /// Checked on every replica after every step: no replica holds an update that is
    /// not durable (the contract: nothing is sent before it is written, and a change
    /// lost in a crash was never sent).
    fn invariant(&self, state: &Self::State) -> Result<(), String>;
}

/// Runs one seed: a storm, calm, convergence, and the model check on every replica.
fn run_seed<W: Workload>(seed: u64, totals: &mut SimStats) -> Result<(), String> {
    let config = SimConfig::randomized(seed);
    let mut sim = Sim::<W::State>::new(config.clone(), seed).expect("a valid configuration");
    sim.set_trace(true);
    sim.set_random_faults(true);
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x0b5e_55ed);
    let mut workload = W::default();
    while sim.now() < STORM {
        if rng.f64() < MUTATE {
            let i = rng.usize(..sim.len());
            workload.operate(&mut rng, &mut sim, i);
        }
        sim.step();
        for i in 0..sim.len() {
            if let Some(state) = sim.state(i) {
                workload
                    .invariant(state)
                    .map_err(|e| format!("at {:?}, replica {i}: {e}", sim.now()))?;
            }
        }
    }
    sim.calm();
    let context = |sim: &Sim<W::State>| {
        format!(
            "\nconfig: {config:?}\nstats: {:?}\nfaults:\n{}",
            sim.stats(),
            sim.trace().join("\n")
        )
    };
    if sim.run_until_converged(GIVE_UP).is_none() {
        let states: Vec<_> = (0..sim.len()).map(|i| sim.state(i)).collect();
        return Err(format!(
            "no convergence within {GIVE_UP:?}: {states:?}{}",
            context(&sim)
        ));
    }
    if !sim.rejections().is_empty() {
        return Err(format!(
            "messages refused: {:?}{}",
            sim.rejections(),
            context(&sim)
        ));
    }
    let state = sim.state(0).expect("converged: all up");
    workload
        .check(state)
        .map_err(|e| format!("{e}{}", context(&sim)))?;
    let s = sim.stats();
    totals.sent += s.sent;
    totals.bytes += s.bytes;
    totals.delivered += s.delivered;
    totals.crashes += s.crashes;
    totals.restarts += s.restarts;
    totals.lost_changes += s.lost_changes;
    totals.partitions += s.partitions;
    totals.replayed += s.replayed;
    totals.duplicated += s.duplicated;
    totals.lost += s.lost;
    Ok(())
}

/// Runs `seeds` seeds of workload `W` and checks that the faults did happen.
fn simulate<W: Workload>(test: &str, seeds: u64) {
    let totals = std::cell::RefCell::new(SimStats::default());
    common::for_each_seed(test, seeds, |seed| {
        run_seed::<W>(seed, &mut totals.borrow_mut())
    });
    let t = totals.into_inner();
    eprintln!("{test}: {t:?}");
    for (what, n) in [
        ("crashes", t.crashes),
        ("restarts", t.restarts),
        ("lost changes", t.lost_changes),
        ("partitions", t.partitions),
        ("replays", t.replayed),
        ("duplicates", t.duplicated),
        ("losses", t.lost),
    ] {
        assert!(n > 0, "{test}: no {what} in the whole run: {t:?}");
    }
}

/// A grow-only set of distinct numbers: the model is every durable insert.
#[derive(Default)]
struct GSetAdds {
    next: u32,
    model: BTreeSet<u32>,
}

impl Workload for GSetAdds {
    type State = GSet<u32>;

    fn operate(&mut self, _: &mut fastrand::Rng, sim: &mut Sim<GSet<u32>>, i: usize) {
        let x = self.next;
        self.next += 1;
        if sim.mutate(i, |s, _| s.insert(x)).is_some() {
            self.model.insert(x);
        }
    }

    fn invariant(&self, state: &GSet<u32>) -> Result<(), String> {
        match state.iter().find(|x| !self.model.contains(x)) {
            Some(x) => Err(format!("holds {x}, which is not durable")),
            None => Ok(()),
        }
    }

    fn check(&self, state: &GSet<u32>) -> Result<(), String> {
        if *state.as_set() == self.model {
            return Ok(());
        }
        Err(format!(
            "missing {:?}, unexpected {:?}",
            self.model.difference(state.as_set()).collect::<Vec<_>>(),
            state.as_set().difference(&self.model).collect::<Vec<_>>()
        ))
    }
}

/// Adds of distinct elements and removes of elements the replica holds: each element
/// has one add (one dot), so a durable remove removes it everywhere.
#[derive(Default)]
struct ORSetAddsRemoves {
    next: u32,
    /// Durable adds minus durable removes.
    model: BTreeSet<u32>,
    /// Every durable add.
    added: BTreeSet<u32>,
}

impl Workload for ORSetAddsRemoves {
    type State = ORSet<u64, u32>;

    fn operate(&mut self, rng: &mut fastrand::Rng, sim: &mut Sim<ORSet<u64, u32>>, i: usize) {
        let Some(state) = sim.state(i) else {
            return; // down: the client's request fails
        };
        if state.is_empty() || rng.f64() < 0.7 {
            let x = self.next;
            self.next += 1;
            if sim.mutate(i, |s, me| s.add(me, x)).is_some() {
                self.model.insert(x);
                self.added.insert(x);
            }
        } else {
            let x = *state
                .iter()
                .nth(rng.usize(..state.len()))
                .expect("in range");
            if sim.mutate(i, |s, _| s.remove(&x)).is_some() {
                self.model.remove(&x);
            }
        }
    }

    fn invariant(&self, state: &ORSet<u64, u32>) -> Result<(), String> {
        match state.iter().find(|x| !self.added.contains(x)) {
            Some(x) => Err(format!("holds {x}, whose add is not durable")),
            None => Ok(()),
        }
    }

    fn check(&self, state: &ORSet<u64, u32>) -> Result<(), String> {
        let got: BTreeSet<u32> = state.iter().copied().collect();
        if got == self.model {
            return Ok(());
        }
        Err(format!(
            "missing {:?}, unexpected {:?}",
            self.model.difference(&got).collect::<Vec<_>>(),
            got.difference(&self.model).collect::<Vec<_>>()
        ))
    }
}

/// Increments: the model is their sum.
#[derive(Default)]
struct GCounterIncrements {
    total: u128,
}

impl Workload for GCounterIncrements {
    type State = GCounter<u64>;

    fn operate(&mut self, rng: &mut fastrand::Rng, sim: &mut Sim<GCounter<u64>>, i: usize) {
        let by = rng.u64(1..=5);
        if sim.mutate(i, |s, me| s.increment(me, by)).is_some() {
            self.total += u128::from(by);
        }
    }

    fn invariant(&self, state: &GCounter<u64>) -> Result<(), String> {
        if state.value() > self.total {
            return Err(format!(
                "counts {} of {} durable",
                state.value(),
                self.total
            ));
        }
        Ok(())
    }

    fn check(&self, state: &GCounter<u64>) -> Result<(), String> {
        if state.value() == self.total {
            return Ok(());
        }
        Err(format!("value {} != {}", state.value(), self.total))
    }
}

/// Increments and decrements: the model is their sum.
#[derive(Default)]
struct PNCounterUpsDowns {
    ups: u128,
    downs: u128,
}

impl Workload for PNCounterUpsDowns {
    type State = PNCounter<u64>;

    fn operate(&mut self, rng: &mut fastrand::Rng, sim: &mut Sim<PNCounter<u64>>, i: usize) {
        let by = rng.u64(1..=5);
        if rng.bool() {
            if sim.mutate(i, |s, me| s.increment(me, by)).is_some() {
                self.ups += u128::from(by);
            }
        } else if sim.mutate(i, |s, me| s.decrement(me, by)).is_some() {
            self.downs += u128::from(by);
        }
    }

    fn invariant(&self, state: &PNCounter<u64>) -> Result<(), String> {
        let (ups, downs) = (state.increments().value(), state.decrements().value());
        if ups > self.ups || downs > self.downs {
            return Err(format!(
                "counts +{ups} -{downs} of +{} -{} durable",
                self.ups, self.downs
            ));
        }
        Ok(())
    }

    fn check(&self, state: &PNCounter<u64>) -> Result<(), String> {
        let (ups, downs) = (state.increments().value(), state.decrements().value());
        if (ups, downs) == (self.ups, self.downs) {
            return Ok(());
        }
        Err(format!("+{ups} -{downs} != +{} -{}", self.ups, self.downs))
    }
}

#[test]
fn gset_converges_to_every_durable_insert_through_crashes_and_partitions() {
    simulate::<GSetAdds>(
        "gset_converges_to_every_durable_insert_through_crashes_and_partitions",
        1500,
    );
}

#[test]
fn orset_converges_to_the_durable_adds_and_removes_through_crashes_and_partitions() {
    simulate::<ORSetAddsRemoves>(
        "orset_converges_to_the_durable_adds_and_removes_through_crashes_and_partitions",
        1500,
    );
}

#[test]
fn gcounter_converges_to_the_durable_increments_through_crashes_and_partitions() {
    simulate::<GCounterIncrements>(
        "gcounter_converges_to_the_durable_increments_through_crashes_and_partitions",
        1000,
    );
}

#[test]
fn pncounter_converges_to_the_durable_sum_through_crashes_and_partitions() {
    simulate::<PNCounterUpsDowns>(
        "pncounter_converges_to_the_durable_sum_through_crashes_and_partitions",
        1000,
    );
}
