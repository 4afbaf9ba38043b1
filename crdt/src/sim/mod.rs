//! A seeded, sans-IO simulator of the anti-entropy protocol ([`crate::Replica`]) on a
//! faulty network, with replicas that crash and restart exactly as the
//! [persistence contract](crate::Replica#persistence-and-restart) allows.
//!
//! [`Sim`] runs replicas `0..n` (`u64` ids) of one lattice `S` in **virtual time**
//! (whole milliseconds that only [`Sim::step`] advances, reported as [`Duration`]s
//! since the start) with one seeded RNG: nothing here
//! reads a clock or a global RNG, so a seed and the same calls replay the same run.
//!
//! The network ([`SimConfig`]): each message takes a delay drawn from `latency`
//! (so messages overtake each other), is lost with probability `loss`, duplicated
//! with probability `duplicate`, held back for up to `long_delay_max` with probability
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
//! restarts them after `downtime`, and starts and ends partitions of the three kinds
//! (a symmetric split, a one-way cut, random links cut: non-transitive).
//!
//! [`Sim::mutate`] returns the delta only if the change became durable: the model a
//! test checks against is the set of mutations for which it returned `Some`. After
//! [`Sim::calm`] (random faults off, partitions healed, every replica up),
//! [`Sim::run_until_converged`] steps until every replica holds the same state.
//!
//! ```
//! use std::time::Duration;
//!
//! use dsys_crdt::GSet;
//! use dsys_crdt::sim::{Sim, SimConfig};
//!
//! let mut config = SimConfig::default();
//! config.replicas = 3;
//! let mut sim = Sim::<GSet<u32>>::new(config, 7)?;
//! let mut acknowledged = Vec::new();
//! for x in 0..3 {
//!     if sim.mutate(0, |s, _| s.insert(x)).is_some() {
//!         acknowledged.push(x);
//!     }
//! }
//! sim.crash(0); // persisted, never shipped
//! sim.run_for(Duration::from_millis(500));
//! sim.restart(0); // ships its whole restored state to every peer
//! sim.run_until_converged(Duration::from_secs(10)).expect("converges");
//! let state = sim.state(2).expect("up");
//! assert_eq!(state.iter().copied().collect::<Vec<_>>(), acknowledged);
//! # Ok::<(), dsys_crdt::sim::SimConfigError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::codec::{Decode, Encode};
use crate::lattice::{Authored, Lattice};
use crate::sync::Replica;

mod config;
mod disk;
mod faults;
mod network;

use config::to_ms;
pub use config::{SimConfig, SimConfigError, Topology};
pub use disk::Record;
use network::Packet;

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
    /// Messages a replica refused ([`SyncError`](crate::SyncError)). Every message in a
    /// simulation is well formed and every replica keeps the contract, so anything
    /// but 0 is a bug.
    pub rejected: u64,
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
    ///
    /// # Errors
    ///
    /// A [`SimConfigError`] if `config` is invalid ([`SimConfig::validate`]); nothing
    /// is created.
    pub fn new(config: SimConfig, seed: u64) -> Result<Self, SimConfigError> {
        config.validate()?;
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
            next_ship_ms: to_ms(config.ship_every),
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
            let mut replica = Replica::new(i as u64, S::bottom(), sim.config.sync.clone())
                .expect("validated with the simulator's configuration");
            for peer in sim.peers_of(i) {
                replica.add_peer(peer as u64);
            }
            sim.nodes[i].replica = Some(replica);
        }
        Ok(sim)
    }

    // --- Getters -----------------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms)
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
            None => Replica::new(i as u64, S::bottom(), sync)
                .expect("validated with the simulator's configuration"),
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

    /// Advances virtual time by one step: random faults (if on), restarts that are
    /// due, deliveries that are due, a replay, and the ship of every replica when
    /// its period comes.
    pub fn step(&mut self) {
        self.now_ms += to_ms(self.config.step);
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
            self.next_ship_ms += to_ms(self.config.ship_every);
            for i in 0..self.nodes.len() {
                if let Some(replica) = self.nodes[i].replica.as_mut() {
                    replica.ship();
                    self.drain(i);
                }
            }
        }
    }

    /// Steps for `duration` of virtual time (rounded up to whole steps).
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now_ms.saturating_add(millis(duration));
        while self.now_ms < until {
            self.step();
        }
    }

    /// Steps until [`converged`](Self::converged), for at most `max`; returns the
    /// time it took, `None` if it did not happen (a livelock, or a bug).
    pub fn run_until_converged(&mut self, max: Duration) -> Option<Duration> {
        let start = self.now_ms;
        let max_ms = millis(max);
        loop {
            if self.converged() {
                return Some(Duration::from_millis(self.now_ms - start));
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
}

/// `d` in whole virtual milliseconds, rounded up (a run of any length steps at least
/// that long), saturating.
fn millis(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    u64::try_from(ms).unwrap_or(u64::MAX)
}
