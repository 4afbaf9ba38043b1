//! A seeded, sans-IO simulator of the anti-entropy protocol ([`crate::sync`]) on a
//! faulty network, with replicas that crash and restart exactly as the
//! [persistence contract](crate::sync#persistence-and-restart) allows.
//!
//! [`Sim`] runs replicas `0..n` (`u64` ids) of one lattice `S` in **virtual time**
//! (milliseconds that only [`Sim::step`] advances) with one seeded RNG: nothing here
//! reads a clock or a global RNG, so a seed and the same calls replay the same run.
//!
//! The network ([`SimConfig`]): each message takes a delay drawn from `latency_ms`
//! (so messages overtake each other), is lost with probability `loss`, duplicated
//! with probability `duplicate`, held back for up to `long_delay_ms` with probability
//! `long_delay`, and every step one of the last `replay_window` messages sent is sent
//! again with probability `replay` (an old message replayed, possibly from an earlier
//! incarnation of its sender). Partitions cut directed links: [`Sim::partition`]
//! (symmetric, between groups), [`Sim::cut`] (one way), [`Sim::heal`]. A message is
//! dropped if its link is cut when it is sent or when it arrives.
//!
//! Replicas and their disks: after every input that changes a replica (a mutation, a
//! join, a restore) the simulator writes its durable record ([`Record`]: state and
//! incarnation) *before* sending anything the replica queued, as the contract
//! requires. [`Sim::crash`] throws the replica away, queued messages included;
//! [`Sim::restart`] brings it back with [`Replica::restore`] from its record. With
//! random faults on ([`Sim::set_random_faults`]) the simulator also crashes replicas
//! between steps, right after a change and before its record is written (the change is
//! lost, as the contract allows: nobody saw it), and in the middle of sending; it
//! restarts them after `down_ms`, and starts and ends partitions of the three kinds
//! (a symmetric split, a one-way cut, random links cut: non-transitive).
//!
//! [`Sim::mutate`] returns the delta only if the change became durable: the model a
//! test checks against is the set of mutations for which it returned `Some`. After
//! [`Sim::calm`] (random faults off, partitions healed, every replica up),
//! [`Sim::run_until_converged`] steps until every replica holds the same state.
//!
//! ```
//! use dsys_crdt::set::GSet;
//! use dsys_crdt::sim::{Sim, SimConfig};
//!
//! let mut sim = Sim::<GSet<u32>>::new(7, SimConfig::default());
//! let mut acknowledged = Vec::new();
//! for x in 0..3 {
//!     if sim.mutate(0, |s, _| s.insert(x)).is_some() {
//!         acknowledged.push(x);
//!     }
//! }
//! sim.crash(0); // persisted, never shipped
//! sim.run_for(500);
//! sim.restart(0); // ships its whole restored state to every peer
//! sim.run_until_converged(10_000).expect("converges");
//! let state = sim.state(2).expect("up");
//! assert_eq!(state.iter().copied().collect::<Vec<_>>(), acknowledged);
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::codec::{Decode, Encode};
use crate::lattice::{Authored, Lattice};
use crate::sync::{Replica, SyncConfig};

/// Who is a peer of whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Topology {
    /// Every replica is a peer of every other.
    FullMesh,
    /// Replica `i` is a peer of `i - 1` and `i + 1` (mod n): deltas need relaying.
    Ring,
}

/// The simulated network and faults. Fields are public; out-of-range values are
/// clamped by [`Sim::new`] (probabilities to `0..=1`, ranges put in order, counts and
/// durations to at least 1).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SimConfig {
    /// Replicas, named `0..replicas`. At least 1.
    pub replicas: usize,
    /// Who is a peer of whom.
    pub topology: Topology,
    /// Every replica's protocol configuration.
    pub sync: SyncConfig,
    /// Virtual milliseconds per [`Sim::step`]. At least 1.
    pub step_ms: u64,
    /// Every replica ships (Algorithm 2's "periodically") every this many ms.
    pub ship_every_ms: u64,
    /// A message's delay, drawn uniformly from `min..=max` ms.
    pub latency_ms: (u64, u64),
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message arrives twice (each copy with its own delay).
    pub duplicate: f64,
    /// Probability that a message is held back for up to `long_delay_ms` more.
    pub long_delay: f64,
    /// The longest extra delay.
    pub long_delay_ms: u64,
    /// Probability, each step, that one of the last `replay_window` messages sent is
    /// sent again.
    pub replay: f64,
    /// How many recent messages a replay picks from.
    pub replay_window: usize,
    /// With random faults on: probability, per replica and step, of a crash.
    pub crash: f64,
    /// With random faults on: how long a crashed replica stays down, `min..=max` ms.
    pub down_ms: (u64, u64),
    /// With random faults on: probability that a replica crashes right after a change
    /// (a mutation or a join), before its record is written: the change is lost.
    pub crash_before_persist: f64,
    /// With random faults on: probability, per message a replica sends, that it
    /// crashes before sending it (and the rest of its queue).
    pub crash_while_sending: f64,
    /// With random faults on: probability, each step without a partition, that one
    /// starts.
    pub partition: f64,
    /// With random faults on: how long a partition lasts, `min..=max` ms.
    pub partition_ms: (u64, u64),
}

impl Default for SimConfig {
    /// Five replicas in a full mesh without relaying; a network that loses 10 %,
    /// duplicates 5 %, delays 1–80 ms, holds back 1 % for up to 2 s and replays an old
    /// message every 20 steps or so; with random faults on, a crash every 2.5 s or so
    /// per replica, down for 50 ms to 1.5 s, and partitions of up to 2 s.
    fn default() -> Self {
        SimConfig {
            replicas: 5,
            topology: Topology::FullMesh,
            sync: SyncConfig::full_mesh(),
            step_ms: 10,
            ship_every_ms: 100,
            latency_ms: (1, 80),
            loss: 0.1,
            duplicate: 0.05,
            long_delay: 0.01,
            long_delay_ms: 2_000,
            replay: 0.05,
            replay_window: 128,
            crash: 0.004,
            down_ms: (50, 1_500),
            crash_before_persist: 0.05,
            crash_while_sending: 0.01,
            partition: 0.005,
            partition_ms: (100, 2_000),
        }
    }
}

impl SimConfig {
    /// A network with no faults at all: every message arrives once, after
    /// `latency_ms` ms, in order. For scripted stories ([`Sim::partition`],
    /// [`Sim::crash`]...).
    pub fn reliable(replicas: usize, latency_ms: u64) -> Self {
        SimConfig {
            replicas,
            latency_ms: (latency_ms, latency_ms),
            loss: 0.0,
            duplicate: 0.0,
            long_delay: 0.0,
            replay: 0.0,
            ..SimConfig::default()
        }
    }

    /// A configuration drawn from `seed`: 2 to 6 replicas in a full mesh (with or
    /// without relaying) or a ring, sometimes a tiny delta buffer (whole states), and
    /// network and fault rates from calm to harsh. For randomized tests.
    pub fn randomized(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x0c0f_f1ee_5eed_0001);
        let replicas = rng.usize(2..=6);
        let (topology, relay) = match rng.u8(0..10) {
            0..5 => (Topology::FullMesh, false),
            5..7 => (Topology::FullMesh, true),
            _ => (Topology::Ring, true),
        };
        let sync = SyncConfig {
            relay,
            max_buffered_deltas: if rng.u8(0..5) == 0 {
                rng.usize(1..=8)
            } else {
                SyncConfig::default().max_buffered_deltas
            },
        };
        let latency_min = rng.u64(1..=20);
        let down_min = rng.u64(20..=500);
        let partition_min = rng.u64(50..=500);
        SimConfig {
            replicas,
            topology,
            sync,
            step_ms: 10,
            ship_every_ms: 10 * rng.u64(3..=15),
            latency_ms: (latency_min, latency_min + rng.u64(0..=150)),
            loss: 0.3 * rng.f64(),
            duplicate: 0.2 * rng.f64(),
            long_delay: 0.05 * rng.f64(),
            long_delay_ms: rng.u64(200..=5_000),
            replay: 0.3 * rng.f64(),
            replay_window: rng.usize(16..=512),
            crash: 0.01 * rng.f64(),
            down_ms: (down_min, down_min + rng.u64(0..=2_000)),
            crash_before_persist: 0.2 * rng.f64(),
            crash_while_sending: 0.05 * rng.f64(),
            partition: 0.01 * rng.f64(),
            partition_ms: (partition_min, partition_min + rng.u64(0..=3_000)),
        }
    }

    fn clamped(mut self) -> Self {
        let p = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
        let ordered = |(a, b): (u64, u64)| (a.min(b), a.max(b));
        self.replicas = self.replicas.max(1);
        self.step_ms = self.step_ms.max(1);
        self.ship_every_ms = self.ship_every_ms.max(1);
        self.latency_ms = ordered(self.latency_ms);
        self.down_ms = ordered(self.down_ms);
        self.partition_ms = ordered(self.partition_ms);
        self.replay_window = self.replay_window.max(1);
        for x in [
            &mut self.loss,
            &mut self.duplicate,
            &mut self.long_delay,
            &mut self.replay,
            &mut self.crash,
            &mut self.crash_before_persist,
            &mut self.crash_while_sending,
            &mut self.partition,
        ] {
            *x = p(*x);
        }
        self
    }
}

/// A replica's durable record: what the persistence contract says survives a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<S> {
    /// [`Replica::state`] when it was written.
    pub state: S,
    /// [`Replica::incarnation`] when it was written.
    pub incarnation: u64,
}

/// What happened in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Bytes handed to the network.
    pub bytes: u64,
    /// Messages that reached a replica that was up.
    pub delivered: u64,
    /// Messages lost: dropped by the network or a cut link, or sent to a replica that
    /// was down when they arrived.
    pub lost: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Old messages sent again.
    pub replayed: u64,
    /// Crashes.
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
    /// Changes (mutations, joins) lost because their replica crashed before writing
    /// its record.
    pub lost_changes: u64,
    /// Partitions started (random or not).
    pub partitions: u64,
    /// Messages a replica refused ([`crate::sync::SyncError`]). Every message in a
    /// simulation is well formed and every replica keeps the contract, so anything
    /// but 0 is a bug.
    pub rejected: u64,
}

/// A message on the wire.
#[derive(Debug, Clone)]
struct Packet {
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

struct Node<S> {
    /// `None` while down.
    replica: Option<Replica<u64, S>>,
    /// The last record written; `None` before the first.
    disk: Option<Record<S>>,
    /// [`Replica::changes`] when the record was written.
    persisted_changes: u64,
    /// When a replica that crashed at random comes back.
    restart_at: Option<u64>,
}

/// The simulator: replicas of `S`, their disks, and the network between them. See the
/// [module docs](self).
pub struct Sim<S> {
    config: SimConfig,
    rng: fastrand::Rng,
    now_ms: u64,
    next_ship_ms: u64,
    nodes: Vec<Node<S>>,
    /// In flight, by (arrival time, send order).
    in_flight: BTreeMap<(u64, u64), Packet>,
    sent_order: u64,
    /// The last `replay_window` messages sent.
    history: VecDeque<Packet>,
    /// Cut directed links `(from, to)`.
    cut: BTreeSet<(usize, usize)>,
    /// When the current random partition ends.
    partition_until: Option<u64>,
    random_faults: bool,
    trace: Option<Vec<String>>,
    rejections: Vec<String>,
    stats: SimStats,
}

/// The first rejections kept for [`Sim::rejections`].
const KEPT_REJECTIONS: usize = 8;

impl<S> Sim<S>
where
    S: Lattice + Authored<u64> + PartialEq + Encode + Decode,
{
    /// Replicas `0..config.replicas`, each at ⊥ with its peers added, random faults
    /// off; every random choice comes from `seed`.
    pub fn new(seed: u64, config: SimConfig) -> Self {
        let config = config.clamped();
        let nodes = (0..config.replicas)
            .map(|_| Node {
                replica: None,
                disk: None,
                persisted_changes: 0,
                restart_at: None,
            })
            .collect();
        let mut sim = Sim {
            rng: fastrand::Rng::with_seed(seed),
            now_ms: 0,
            next_ship_ms: config.ship_every_ms,
            nodes,
            in_flight: BTreeMap::new(),
            sent_order: 0,
            history: VecDeque::new(),
            cut: BTreeSet::new(),
            partition_until: None,
            random_faults: false,
            trace: None,
            rejections: Vec::new(),
            stats: SimStats::default(),
            config,
        };
        for i in 0..sim.nodes.len() {
            let mut replica = Replica::new(i as u64, S::bottom(), sim.config.sync.clone());
            for peer in sim.peers_of(i) {
                replica.add_peer(peer as u64);
            }
            sim.nodes[i].replica = Some(replica);
        }
        sim
    }

    // --- Getters -----------------------------------------------------------------

    /// The configuration, after clamping.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Virtual time, in ms since the start.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// How many replicas there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no replicas (never: [`SimConfig::replicas`] is at least 1).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Replica `i`, `None` while it is down.
    pub fn replica(&self, i: usize) -> Option<&Replica<u64, S>> {
        self.nodes.get(i)?.replica.as_ref()
    }

    /// Replica `i`'s state, `None` while it is down.
    pub fn state(&self, i: usize) -> Option<&S> {
        self.replica(i).map(Replica::state)
    }

    /// Replica `i`'s last written record, `None` if it never wrote one.
    pub fn record(&self, i: usize) -> Option<&Record<S>> {
        self.nodes.get(i)?.disk.as_ref()
    }

    /// Whether every replica is up and all hold the same state.
    pub fn converged(&self) -> bool {
        let mut states = self
            .nodes
            .iter()
            .map(|n| n.replica.as_ref().map(Replica::state));
        let Some(Some(first)) = states.next() else {
            return false;
        };
        states.all(|s| s == Some(first))
    }

    /// What happened so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The first few rejected messages, described ([`SimStats::rejected`] counts them
    /// all).
    pub fn rejections(&self) -> &[String] {
        &self.rejections
    }

    /// The faults so far (crashes, restarts, lost changes, partitions), one line each
    /// with its time, if [`set_trace`](Self::set_trace) turned recording on.
    pub fn trace(&self) -> &[String] {
        self.trace.as_deref().unwrap_or(&[])
    }

    // --- Commands ----------------------------------------------------------------

    /// Records faults for [`trace`](Self::trace) from now on (or stops and forgets
    /// them). The record grows with every fault: for runs of bounded length.
    pub fn set_trace(&mut self, on: bool) {
        if on {
            self.trace.get_or_insert_with(Vec::new);
        } else {
            self.trace = None;
        }
    }

    /// Turns random crashes and partitions on or off (see [`SimConfig`]). Turning them
    /// off leaves partitions and down replicas as they are: see [`calm`](Self::calm).
    pub fn set_random_faults(&mut self, on: bool) {
        self.random_faults = on;
    }

    /// Ends the storm: random faults off, every partition healed, every replica that
    /// is down restarted. The network keeps its loss, duplication, delays and replays.
    pub fn calm(&mut self) {
        self.random_faults = false;
        self.heal();
        for i in 0..self.nodes.len() {
            self.restart(i);
        }
    }

    /// Applies a delta mutator at replica `i` ([`Replica::mutate`]) and writes its
    /// record. Returns the delta if the mutation is durable: `None` if the replica is
    /// down, or (random faults on) crashed before the write, so the mutation is lost
    /// and nobody will ever see it. A ⊥ delta (nothing changed) is returned as is.
    pub fn mutate(&mut self, i: usize, f: impl FnOnce(&mut S, &u64) -> S) -> Option<S> {
        let replica = self.nodes.get_mut(i)?.replica.as_mut()?;
        let delta = replica.mutate(f);
        if self.persist_or_crash(i) {
            Some(delta)
        } else {
            None
        }
    }

    /// Applies a delta mutator at replica `i` and crashes it before its record is
    /// written: the mutation is lost, as the contract allows (its client was never
    /// told it is done, and nobody saw it). Returns the lost delta, `None` if the
    /// replica is down.
    pub fn mutate_then_crash(&mut self, i: usize, f: impl FnOnce(&mut S, &u64) -> S) -> Option<S> {
        let replica = self.nodes.get_mut(i)?.replica.as_mut()?;
        let delta = replica.mutate(f);
        if replica.changes() != self.nodes[i].persisted_changes {
            self.stats.lost_changes += 1;
            self.note(format!(
                "replica {i} loses a change that was not yet written"
            ));
        }
        self.crash(i);
        Some(delta)
    }

    /// Crashes replica `i`: its memory and queued messages are gone, its disk keeps
    /// the last record. It stays down until [`restart`](Self::restart) or
    /// [`calm`](Self::calm). Nothing happens if it is down already.
    pub fn crash(&mut self, i: usize) {
        let Some(node) = self.nodes.get_mut(i) else {
            return;
        };
        if node.replica.take().is_some() {
            node.restart_at = None;
            self.stats.crashes += 1;
            self.note(format!("replica {i} crashes"));
        }
    }

    /// Restarts replica `i` from its record with [`Replica::restore`] (with
    /// [`Replica::new`] if it never wrote one: it never sent anything), adds its peers
    /// and writes the record of its new incarnation. Nothing happens if it is up.
    pub fn restart(&mut self, i: usize) {
        let Some(node) = self.nodes.get_mut(i) else {
            return;
        };
        if node.replica.is_some() {
            return;
        }
        node.restart_at = None;
        let sync = self.config.sync.clone();
        let mut replica = match &node.disk {
            Some(record) => {
                Replica::restore(i as u64, record.state.clone(), record.incarnation, sync)
                    .expect("a simulated replica restarts fewer than u64::MAX times")
            }
            None => Replica::new(i as u64, S::bottom(), sync),
        };
        for peer in self.peers_of(i) {
            replica.add_peer(peer as u64);
        }
        let incarnation = replica.incarnation();
        let node = &mut self.nodes[i];
        node.replica = Some(replica);
        node.persisted_changes = 0;
        self.persist(i);
        self.stats.restarts += 1;
        self.note(format!("replica {i} restarts as incarnation {incarnation}"));
    }

    /// Cuts every link between two groups, both ways (a symmetric partition);
    /// replicas in neither group keep their links.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut.insert((x, y));
                self.cut.insert((y, x));
            }
        }
        self.stats.partitions += 1;
        self.note(format!("partition {a:?} | {b:?}"));
    }

    /// Cuts the link from `from` to `to` only (a one-way partition: `to` still
    /// reaches `from`).
    pub fn cut(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
        self.note(format!("link {from} -> {to} cut"));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        if !self.cut.is_empty() {
            self.note("partition healed".to_owned());
        }
        self.cut.clear();
        self.partition_until = None;
    }

    /// Advances virtual time by one step: random faults (if on), restarts that are
    /// due, deliveries that are due, a replay, and the ship of every replica when
    /// its period comes.
    pub fn step(&mut self) {
        self.now_ms += self.config.step_ms;
        if self.random_faults {
            self.random_faults_step();
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].restart_at.is_some_and(|at| at <= self.now_ms) {
                self.restart(i);
            }
        }
        self.deliver_due();
        if !self.history.is_empty() && self.rng.f64() < self.config.replay {
            let old = self.history[self.rng.usize(..self.history.len())].clone();
            self.stats.replayed += 1;
            self.transmit(old, true);
        }
        if self.now_ms >= self.next_ship_ms {
            self.next_ship_ms += self.config.ship_every_ms;
            for i in 0..self.nodes.len() {
                if let Some(replica) = self.nodes[i].replica.as_mut() {
                    replica.ship();
                    self.drain(i);
                }
            }
        }
    }

    /// Steps for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now_ms.saturating_add(ms);
        while self.now_ms < until {
            self.step();
        }
    }

    /// Steps until [`converged`](Self::converged), for at most `max_ms`; returns the
    /// time it took, `None` if it did not happen (a livelock, or a bug).
    pub fn run_until_converged(&mut self, max_ms: u64) -> Option<u64> {
        let start = self.now_ms;
        loop {
            if self.converged() {
                return Some(self.now_ms - start);
            }
            if self.now_ms - start >= max_ms {
                return None;
            }
            self.step();
        }
    }

    // --- Internals -----------------------------------------------------------------

    fn peers_of(&self, i: usize) -> Vec<usize> {
        let n = self.nodes.len();
        match self.config.topology {
            Topology::FullMesh => (0..n).filter(|&j| j != i).collect(),
            Topology::Ring => {
                let mut peers = vec![(i + 1) % n, (i + n - 1) % n];
                peers.sort_unstable();
                peers.dedup();
                peers.retain(|&j| j != i);
                peers
            }
        }
    }

    fn note(&mut self, what: String) {
        if let Some(trace) = self.trace.as_mut() {
            trace.push(format!("{:>7} ms  {what}", self.now_ms));
        }
    }

    /// After a change at `i`: with random faults on, maybe crash before the write
    /// (returns `false`: the change is lost); otherwise write the record.
    fn persist_or_crash(&mut self, i: usize) -> bool {
        let node = &self.nodes[i];
        let changed = node
            .replica
            .as_ref()
            .is_some_and(|r| r.changes() != node.persisted_changes);
        if changed && self.random_faults && self.rng.f64() < self.config.crash_before_persist {
            self.stats.lost_changes += 1;
            self.note(format!(
                "replica {i} loses a change that was not yet written"
            ));
            self.crash(i);
            return false;
        }
        self.persist(i);
        true
    }

    /// Writes `i`'s record if it changed since the last write.
    fn persist(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(replica) = node.replica.as_ref() else {
            return;
        };
        if replica.changes() != node.persisted_changes {
            node.disk = Some(Record {
                state: replica.state().clone(),
                incarnation: replica.incarnation(),
            });
            node.persisted_changes = replica.changes();
        }
    }

    /// Sends what `i` queued (its record is written); with random faults on, it may
    /// crash part way.
    fn drain(&mut self, i: usize) {
        loop {
            let Some(replica) = self.nodes[i].replica.as_mut() else {
                return;
            };
            let Some(out) = replica.poll_transmit() else {
                return;
            };
            if self.random_faults && self.rng.f64() < self.config.crash_while_sending {
                self.crash(i);
                return;
            }
            // Replica ids are the indices `Sim::new` gave them.
            let to = usize::try_from(out.to).unwrap_or(usize::MAX);
            let packet = Packet {
                from: i,
                to,
                bytes: out.message.to_bytes(),
            };
            self.stats.sent += 1;
            self.stats.bytes += packet.bytes.len() as u64;
            self.history.push_back(packet.clone());
            if self.history.len() > self.config.replay_window {
                self.history.pop_front();
            }
            self.transmit(packet, false);
        }
    }

    /// Puts a packet on the wire: loss, cut links, duplication, delays.
    fn transmit(&mut self, packet: Packet, replayed: bool) {
        if self.cut.contains(&(packet.from, packet.to)) || self.rng.f64() < self.config.loss {
            self.stats.lost += 1;
            return;
        }
        let copies = if !replayed && self.rng.f64() < self.config.duplicate {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = self.config.latency_ms;
            let mut delay = self.rng.u64(lo..=hi);
            if self.rng.f64() < self.config.long_delay {
                delay += self.rng.u64(0..=self.config.long_delay_ms);
            }
            self.sent_order += 1;
            self.in_flight
                .insert((self.now_ms + delay, self.sent_order), packet.clone());
        }
    }

    fn deliver_due(&mut self) {
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now_ms {
                break;
            }
            let packet = entry.remove();
            let to = packet.to;
            let up = self.nodes.get(to).is_some_and(|n| n.replica.is_some());
            if !up || self.cut.contains(&(packet.from, to)) {
                self.stats.lost += 1;
                continue;
            }
            self.stats.delivered += 1;
            let replica = self.nodes[to].replica.as_mut().expect("checked up above");
            if let Err(e) = replica.handle_bytes(&(packet.from as u64), &packet.bytes) {
                self.stats.rejected += 1;
                if self.rejections.len() < KEPT_REJECTIONS {
                    self.rejections.push(format!(
                        "{} ms: replica {to} refused a message from {}: {e}",
                        self.now_ms, packet.from
                    ));
                }
            }
            if self.persist_or_crash(to) {
                self.drain(to);
            }
        }
    }

    fn random_faults_step(&mut self) {
        let now = self.now_ms;
        for i in 0..self.nodes.len() {
            if self.nodes[i].replica.is_some() && self.rng.f64() < self.config.crash {
                self.crash(i);
                let (lo, hi) = self.config.down_ms;
                self.nodes[i].restart_at = Some(now + self.rng.u64(lo..=hi));
            }
        }
        match self.partition_until {
            Some(until) if until <= now => self.heal(),
            Some(_) => {}
            None if self.nodes.len() > 1 && self.rng.f64() < self.config.partition => {
                self.random_partition();
                let (lo, hi) = self.config.partition_ms;
                self.partition_until = Some(now + self.rng.u64(lo..=hi));
            }
            None => {}
        }
    }

    /// A symmetric split, a one-way cut between two groups, or random links cut both
    /// ways (non-transitive: a and b can talk, b and c too, but not a and c).
    fn random_partition(&mut self) {
        let n = self.nodes.len();
        let mut group: Vec<bool> = (0..n).map(|_| self.rng.bool()).collect();
        // Both sides non-empty.
        group[0] = true;
        group[1 + self.rng.usize(..n - 1)] = false;
        let a: Vec<usize> = (0..n).filter(|&i| group[i]).collect();
        let b: Vec<usize> = (0..n).filter(|&i| !group[i]).collect();
        match self.rng.u8(0..3) {
            0 => self.partition(&a, &b),
            1 => {
                for &x in &a {
                    for &y in &b {
                        self.cut.insert((x, y));
                    }
                }
                self.stats.partitions += 1;
                self.note(format!("one-way partition {a:?} -> {b:?} cut"));
            }
            _ => {
                let mut cut = Vec::new();
                for x in 0..n {
                    for y in x + 1..n {
                        if self.rng.f64() < 0.3 {
                            self.cut.insert((x, y));
                            self.cut.insert((y, x));
                            cut.push((x, y));
                        }
                    }
                }
                self.stats.partitions += 1;
                self.note(format!("links cut both ways: {cut:?}"));
            }
        }
    }
}
