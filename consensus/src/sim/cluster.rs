//! A simulated cluster of [`RaftNode`]s over the simulated network, with a
//! simulated disk and a key-value state machine per node, client
//! operations recorded for the linearizability checker, and Raft's safety
//! properties (Figure 3) plus the persistence contract checked after every
//! step and every output.
//!
//! This file holds the cluster itself: construction, faults, stepping and
//! draining each node's outputs. Client operations and the key-value state
//! machine they run on are in `cluster/clients.rs`, the properties checked
//! after every step and at the end in `cluster/checks.rs`, and what a run
//! reports ([`Violation`], [`SimEvent`], [`SimStats`]) in
//! `cluster/report.rs`, and the application's side of Raft snapshots
//! (taking them, serving chunks, staging and restoring) in
//! `cluster/snapshots.rs`.

mod checks;
mod clients;
mod report;
mod snapshots;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use self::clients::{PendingGet, PendingPut};
pub use self::report::{SimEvent, SimStats, Violation};
use super::config::{SimConfig, SimConfigError};
use super::disk::{CrashWrites, Disk, DiskConfig, write_batch};
use super::linearizability::{History, OpId};
use super::network::{Network, NetworkConfig, NetworkStats};
use crate::entry::{Entry, HardState, Index, Term};
use crate::membership::{JointLeave, Membership, MembershipChange, MembershipError};
use crate::output::{Output, Persist, ProposalId};
use crate::raft::{RaftNode, RaftOutput, Role};
use crate::snapshot::SnapshotMeta;
use crate::storage::{MemStorage, Storage};

/// One node of the simulation: the Raft state machine while it is up,
/// its disk, and the key-value state machine it applies to.
#[derive(Debug)]
struct SimNode {
    id: u64,
    raft: Option<RaftNode<MemStorage<u64>>>,
    disk: Disk,
    kv: BTreeMap<u64, u64>,
    /// Next index this node must apply.
    next_apply: Index,
    /// Commit index last seen (for recording chosen entries).
    seen_commit: Index,
    /// Incremented at every restart: outcomes from a previous life are void.
    life: u64,
    was_leader: Option<Term>,
    /// Where its next drain-time crash falls, if one is armed.
    crash_armed: Option<CrashPoint>,
    /// The snapshot being received (volatile: lost at a crash).
    staging: Vec<u8>,
    /// A restore asked for (`RestoreSnapshot`), done once every write
    /// handed out before it is durable and its time has come.
    restore: Option<(SnapshotMeta<u64>, u64)>,
}

/// Where in a drain an armed crash falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrashPoint {
    /// When about to handle output number `n` (from 0) of a drain.
    Output(usize),
    /// Right after a `Persist` with entries was handed to the disk,
    /// before anything else: the batch is in the air.
    AfterPersist,
}

/// A deterministic simulated Raft cluster.
///
/// ```
/// use dsys_consensus::sim::{SimConfig, Simulation};
///
/// let mut sim = Simulation::new(SimConfig::default(), 7)?;
/// let leader = sim.run_until_leader(1_000).expect("a leader within 100 ticks");
/// sim.put(1, leader, 42, 1).expect("the leader accepts");
/// sim.run_for(200);
/// assert!(sim.check_history().is_ok());
/// # Ok::<(), dsys_consensus::sim::SimConfigError>(())
/// ```
#[derive(Debug)]
pub struct Simulation {
    config: SimConfig,
    disk_config: DiskConfig,
    time: u64,
    rng: fastrand::Rng,
    nodes: Vec<SimNode>,
    network: Network,
    /// Every (index, term) ever handed out to persist: its data and the
    /// term before it (log matching, by induction on the index).
    log_entries: BTreeMap<(Index, Term), (Bytes, Term)>,
    /// Committed entries by index (state-machine safety).
    chosen: Vec<Entry<u64>>,
    /// The term each chosen entry was first known committed in (the term
    /// of the node that first knew it: the committing leader's).
    chosen_in: Vec<Term>,
    leaders: BTreeMap<Term, u64>,
    /// The membership of the last configuration entry chosen.
    chosen_membership: Membership<u64>,
    history: History<u64, u64>,
    /// Puts by the node and life that accepted them, and their index.
    puts: BTreeMap<(u64, u64, Index), PendingPut>,
    /// Puts known lost (client, seq): they must never apply.
    lost_puts: BTreeMap<(u64, u64), Index>,
    gets: BTreeMap<u64, PendingGet>,
    /// Operations known failed.
    failed: BTreeSet<OpId>,
    next_seq: u64,
    events: Vec<SimEvent>,
    violation: Option<Violation>,
    stats: SimStats,
    crash_writes: CrashWrites,
}

impl Simulation {
    /// A cluster of fresh nodes on benign disks ([`DiskConfig::default`]);
    /// every random choice derives from `seed`.
    ///
    /// # Errors
    /// [`SimConfigError`] if `config` is invalid ([`SimConfig::validate`]).
    pub fn new(config: SimConfig, seed: u64) -> Result<Self, SimConfigError> {
        Self::with_disk(config, DiskConfig::default(), seed)
    }

    /// A cluster of fresh nodes whose disks behave as `disk` says.
    ///
    /// # Errors
    /// [`SimConfigError`] if `config` or `disk` is invalid
    /// ([`SimConfig::validate`], [`DiskConfig::validate`]).
    pub fn with_disk(
        config: SimConfig,
        disk: DiskConfig,
        seed: u64,
    ) -> Result<Self, SimConfigError> {
        config.validate()?;
        disk.validate()?;
        let voters: Vec<u64> = (1..=config.nodes - config.joining).collect();
        let network = Network::new(config.network.clone());
        let mut sim = Self {
            disk_config: disk,
            time: 0,
            rng: fastrand::Rng::with_seed(seed),
            nodes: Vec::new(),
            network,
            log_entries: BTreeMap::new(),
            chosen: Vec::new(),
            chosen_in: Vec::new(),
            leaders: BTreeMap::new(),
            chosen_membership: Membership::from_voters(voters.iter().copied()),
            history: History::new(),
            puts: BTreeMap::new(),
            lost_puts: BTreeMap::new(),
            gets: BTreeMap::new(),
            failed: BTreeSet::new(),
            next_seq: 0,
            events: Vec::new(),
            violation: None,
            stats: SimStats::default(),
            crash_writes: CrashWrites::default(),
            config,
        };
        for id in 1..=sim.config.nodes {
            let bootstrap = if voters.contains(&id) {
                voters.clone()
            } else {
                Vec::new()
            };
            sim.nodes.push(SimNode {
                id,
                raft: None,
                disk: Disk::new(bootstrap),
                kv: BTreeMap::new(),
                next_apply: 1,
                seen_commit: 0,
                life: 0,
                was_leader: None,
                crash_armed: None,
                staging: Vec::new(),
                restore: None,
            });
            sim.start(id);
        }
        Ok(sim)
    }

    /// Builds node `id` from its disk: the stored log and hard state, and
    /// the state machine's own record (`Config::applied`).
    fn start(&mut self, id: u64) {
        let seed = self.rng.u64(..);
        let slot = Self::slot(id);
        let node = &mut self.nodes[slot];
        let mut config = self.config.raft.clone();
        config.seed = seed;
        config.priority = self.config.priorities.get(slot).copied().unwrap_or(0);
        let (applied, kv) = node.disk.state_machine.clone().unwrap_or_default();
        config.applied = applied;
        let restart = node.life > 0;
        match RaftNode::new(id, node.disk.durable.clone(), config) {
            Ok(raft) => node.raft = Some(raft),
            Err(error) => {
                let hard_state = node.disk.durable.hard_state().clone();
                let last = node.disk.durable.last_index();
                let detail = format!(
                    "node {id} cannot restart from its disk: {error} (state machine applied {applied}; disk hard state {hard_state:?}, last index {last})"
                );
                self.fail("restart", detail);
                return;
            }
        }
        node.life += 1;
        node.kv = kv;
        node.next_apply = applied + 1;
        node.seen_commit = 0;
        node.was_leader = None;
        node.crash_armed = None;
        node.staging.clear();
        node.restore = None;
        node.disk.restart();
        if restart {
            self.stats.restarts += 1;
            if applied > 0 {
                self.stats.restarts_with_applied += 1;
            }
        }
        self.record_commits(slot);
    }

    fn slot(id: u64) -> usize {
        usize::try_from(id - 1).expect("node ids are small")
    }

    /// Current simulation time.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The disks' behaviour.
    pub fn disk_config(&self) -> &DiskConfig {
        &self.disk_config
    }

    /// Changes how the disks behave from now on.
    ///
    /// # Errors
    /// [`SimConfigError`] if `disk` is invalid ([`DiskConfig::validate`]);
    /// the disks then keep behaving as before.
    pub fn set_disk(&mut self, disk: DiskConfig) -> Result<(), SimConfigError> {
        disk.validate()?;
        self.disk_config = disk;
        Ok(())
    }

    /// Node `id`'s Raft state machine, if it is up.
    pub fn node(&self, id: u64) -> Option<&RaftNode<MemStorage<u64>>> {
        self.nodes.get(Self::slot(id))?.raft.as_ref()
    }

    /// Node `id`'s key-value state.
    pub fn kv(&self, id: u64) -> &BTreeMap<u64, u64> {
        &self.nodes[Self::slot(id)].kv
    }

    /// What node `id`'s disk holds durably (what survives a crash).
    pub fn disk(&self, id: u64) -> &MemStorage<u64> {
        &self.nodes[Self::slot(id)].disk.durable
    }

    /// Node ids.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.nodes.iter().map(|n| n.id)
    }

    /// The up node that leads the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter_map(|n| n.raft.as_ref())
            .filter(|r| r.role() == Role::Leader)
            .max_by_key(|r| r.term())
            .map(|r| *r.id())
    }

    /// The first safety violation seen, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Leadership changes since the last call.
    pub fn take_events(&mut self) -> Vec<SimEvent> {
        std::mem::take(&mut self.events)
    }

    /// Network counters.
    pub fn network_stats(&self) -> NetworkStats {
        self.network.stats
    }

    /// Node, disk and client counters.
    pub fn stats(&self) -> SimStats {
        SimStats {
            writes_lost: self.crash_writes.lost,
            writes_kept: self.crash_writes.kept,
            writes_torn: self.crash_writes.torn,
            commits_landed_early: self.crash_writes.commits_early,
            ..self.stats
        }
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.network.in_flight()
    }

    /// The client history recorded so far.
    pub fn history(&self) -> &History<u64, u64> {
        &self.history
    }

    /// Number of entries known committed.
    pub fn committed(&self) -> Index {
        self.chosen.len() as Index
    }

    /// Changes the network's behaviour (loss, delays) from now on.
    ///
    /// # Errors
    /// [`SimConfigError`] if `config` is invalid
    /// ([`NetworkConfig::validate`]); the network then keeps behaving as
    /// before.
    pub fn set_network(&mut self, config: NetworkConfig) -> Result<(), SimConfigError> {
        config.validate()?;
        self.network.config = config;
        Ok(())
    }

    /// Cuts the link from `from` to `to` (one way).
    pub fn cut(&mut self, from: u64, to: u64) {
        self.network.cut_link(from, to);
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&mut self, a: &[u64], b: &[u64]) {
        for &x in a {
            for &y in b {
                self.network.cut_link(x, y);
                self.network.cut_link(y, x);
            }
        }
    }

    /// Whether the link from `from` to `to` is cut.
    pub fn is_cut(&self, from: u64, to: u64) -> bool {
        self.network.is_cut(from, to)
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.network.heal();
    }

    /// Whether node `id` is up.
    pub fn is_up(&self, id: u64) -> bool {
        self.node(id).is_some()
    }

    /// Crashes node `id`: its volatile state is lost, what its disk holds
    /// durably survives, and the writes still in the air land, tear or
    /// vanish as [`DiskConfig`] says.
    pub fn crash(&mut self, id: u64) {
        let slot = Self::slot(id);
        if self.nodes[slot].raft.is_none() {
            return;
        }
        // What it knew committed counts as known, even though it dies.
        self.record_commits(slot);
        let node = &mut self.nodes[slot];
        node.raft = None;
        node.crash_armed = None;
        self.stats.crashes += 1;
        let result = node
            .disk
            .crash(&self.disk_config, &mut self.rng, &mut self.crash_writes);
        if let Err(error) = result {
            let detail = format!("node {id}'s writes do not continue its disk at a crash: {error}");
            self.fail("persistence contract", detail);
        }
        if let Some(term) = self.nodes[slot].was_leader.take() {
            self.events.push(SimEvent::SteppedDown {
                time: self.time,
                node: id,
                term,
            });
        }
    }

    /// Arms a crash of node `id` in the middle of one of its next drains:
    /// it crashes when about to handle output number `after` (from 0) of a
    /// drain, so the outputs before it were acted on and the rest are
    /// lost. Disarmed by a crash or [`disarm_crashes`](Self::disarm_crashes).
    pub fn crash_mid_drain(&mut self, id: u64, after: usize) {
        if let Some(node) = self.nodes.get_mut(Self::slot(id)) {
            node.crash_armed = Some(CrashPoint::Output(after));
        }
    }

    /// Arms a crash of node `id` right after it next hands a `Persist`
    /// batch with entries to its disk, before it acts on any other
    /// output: with writes that take time, the batch is in the air when
    /// it crashes.
    pub fn crash_after_persist(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(Self::slot(id)) {
            node.crash_armed = Some(CrashPoint::AfterPersist);
        }
    }

    /// Cancels every armed mid-drain crash.
    pub fn disarm_crashes(&mut self) {
        for node in &mut self.nodes {
            node.crash_armed = None;
        }
    }

    /// Restarts a crashed node from its disk.
    pub fn restart(&mut self, id: u64) {
        if !self.is_up(id) {
            self.start(id);
            self.check_step();
        }
    }

    /// Tells node `observer` whether `peer` is up, as the application's
    /// failure detector would (`RaftNode::set_peer_liveness`); nothing if
    /// `observer` is down.
    pub fn set_peer_liveness(&mut self, observer: u64, peer: u64, live: bool) {
        if let Some(raft) = self.nodes[Self::slot(observer)].raft.as_mut() {
            raft.set_peer_liveness(peer, live);
            self.drain(observer);
        }
    }

    /// Asks node `leader` to change the membership; the outcome is the
    /// node's ([`RaftNode::propose_membership`]).
    ///
    /// # Errors
    /// The node's refusal; [`MembershipError::NotLeader`] if it is down.
    pub fn change_membership(
        &mut self,
        leader: u64,
        change: MembershipChange<u64>,
    ) -> Result<ProposalId, MembershipError<u64>> {
        self.on_leader(leader, |raft| raft.propose_membership(change))
    }

    /// Asks node `leader` for a joint change, or (`changes` is `None`) to
    /// leave the joint configuration; the outcome is the node's
    /// ([`RaftNode::propose_joint`], [`RaftNode::propose_leave_joint`]).
    ///
    /// # Errors
    /// The node's refusal; [`MembershipError::NotLeader`] if it is down.
    pub fn change_membership_joint(
        &mut self,
        leader: u64,
        changes: Option<Vec<MembershipChange<u64>>>,
        leave: JointLeave,
    ) -> Result<ProposalId, MembershipError<u64>> {
        self.on_leader(leader, |raft| match changes {
            Some(changes) => raft.propose_joint(changes, leave),
            None => raft.propose_leave_joint(),
        })
    }

    fn on_leader(
        &mut self,
        leader: u64,
        f: impl FnOnce(&mut RaftNode<MemStorage<u64>>) -> Result<ProposalId, MembershipError<u64>>,
    ) -> Result<ProposalId, MembershipError<u64>> {
        let result = match self.nodes[Self::slot(leader)].raft.as_mut() {
            Some(raft) => f(raft),
            None => Err(MembershipError::NotLeader { leader: None }),
        };
        self.drain(leader);
        self.check_step();
        result
    }

    /// Starts an election on node `id` now.
    pub fn campaign(&mut self, id: u64) {
        if let Some(raft) = self.nodes[Self::slot(id)].raft.as_mut() {
            raft.campaign();
        }
        self.drain(id);
        self.check_step();
    }

    /// Asks leader `leader` to hand leadership to `target`; a refusal
    /// changes nothing.
    pub fn transfer(&mut self, leader: u64, target: u64) {
        if let Some(raft) = self.nodes[Self::slot(leader)].raft.as_mut() {
            let _refused_is_fine = raft.transfer_leadership(target);
        }
        self.drain(leader);
        self.check_step();
    }

    /// Advances time by one unit: delivers due messages, completes due
    /// writes and acknowledgements, ticks the nodes whose tick falls now,
    /// then checks safety.
    pub fn step(&mut self) {
        self.time += 1;
        while let Some(message) = self.network.next_due(self.time) {
            let to = message.to;
            let Some(node) = self.nodes.get_mut(Self::slot(to)) else {
                continue;
            };
            match node.raft.as_mut() {
                Some(raft) => raft.handle_message(message),
                None => {
                    self.network.stats.cut += 1;
                    continue;
                }
            }
            self.drain(to);
        }
        for slot in 0..self.nodes.len() {
            let id = self.nodes[slot].id;
            let mut acted = false;
            while self.nodes[slot].raft.is_some()
                && self.nodes[slot]
                    .disk
                    .writing
                    .front()
                    .is_some_and(|(at, _)| *at <= self.time)
            {
                let (_, persist) = self.nodes[slot]
                    .disk
                    .writing
                    .pop_front()
                    .expect("front exists");
                self.complete_write(slot, &persist);
                acted = true;
            }
            if self.nodes[slot]
                .disk
                .ack_due
                .is_some_and(|at| at <= self.time)
            {
                self.acknowledge(slot);
                acted = true;
            }
            if acted {
                self.drain(id);
            }
            let restore_due = self.nodes[slot]
                .restore
                .as_ref()
                .is_some_and(|(_, at)| *at <= self.time);
            if restore_due && self.nodes[slot].disk.writing.is_empty() {
                self.restore_snapshot(slot);
                self.drain(id);
            }
            let phase = id * 7 % self.config.tick_interval.max(1);
            if self.time % self.config.tick_interval.max(1) == phase {
                if let Some(raft) = self.nodes[slot].raft.as_mut() {
                    raft.tick();
                }
                self.drain(id);
            }
        }
        self.check_step();
        if self.time % self.config.tick_interval.max(1) == 0 {
            self.check_reads_end();
            let newest = self.leaders.last_key_value().map_or(0, |(term, _)| *term);
            let stale = self
                .nodes
                .iter()
                .filter_map(|n| n.raft.as_ref())
                .any(|raft| raft.role() == Role::Leader && raft.term() < newest);
            self.stats.stale_leader_ticks += u64::from(stale);
        }
    }

    /// Runs `units` steps.
    pub fn run_for(&mut self, units: u64) {
        for _ in 0..units {
            self.step();
        }
    }

    /// Liveness: steps until a leader exists and a proposal made on it after
    /// now (the *marker*) is applied on every up node, which has then
    /// applied the leader's whole log; `each_step` runs before every step
    /// (clients, say). A marker proposed on a leader already deposed is
    /// lost legitimately and proposed again after 30 ticks. Returns the
    /// time units it took.
    ///
    /// # Errors
    /// A `liveness` [`Violation`] if that takes more than `max_units`, with
    /// every node's state; or the first safety violation seen.
    pub fn recover_with(
        &mut self,
        max_units: u64,
        mut each_step: impl FnMut(&mut Self),
    ) -> Result<u64, Violation> {
        let start = self.time;
        let retry_after = 30 * self.config.tick_interval;
        let mut marker: Option<(OpId, u64)> = None;
        while self.time < start + max_units {
            each_step(self);
            if marker.is_some_and(|(op, at)| !self.is_complete(op) && self.time > at + retry_after)
            {
                marker = None;
            }
            if marker.is_none() {
                if let Some(leader) = self.leader() {
                    if self.put(0, leader, 0, u64::MAX - self.time).is_ok() {
                        marker = self.last_op().map(|op| (op, self.time));
                    }
                }
            }
            self.step();
            if let Some(violation) = &self.violation {
                return Err(violation.clone());
            }
            if marker.is_some_and(|(op, _)| self.is_complete(op)) && self.converged() {
                return Ok(self.time - start);
            }
        }
        Err(Violation {
            time: self.time,
            property: "liveness",
            detail: format!(
                "no leader committing a new proposal on every node within {} ticks (leader {:?}){}",
                max_units / self.config.tick_interval.max(1),
                self.leader(),
                self.describe()
            ),
        })
    }

    /// Steps until some node leads, for at most `units`; returns it.
    pub fn run_until_leader(&mut self, units: u64) -> Option<u64> {
        for _ in 0..units {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            self.step();
        }
        self.leader()
    }

    /// Batch `persist` of the node in `slot` is durable now: it is on the
    /// disk and readable through the node's storage; it is acknowledged
    /// now or, with an acknowledgement lag, a little later together with
    /// whatever else is durable by then. The caller drains.
    fn complete_write(&mut self, slot: usize, persist: &Persist<HardState<u64>, u64>) {
        let id = self.nodes[slot].id;
        let node = &mut self.nodes[slot];
        let mirrored = node
            .disk
            .complete(persist)
            .and_then(|()| match &mut node.raft {
                Some(raft) => write_batch(raft.storage_mut(), persist),
                None => Ok(()),
            });
        if let Err(error) = mirrored {
            let detail = format!(
                "node {id}'s persist {} does not continue its stored log: {error}",
                persist.id
            );
            self.fail("persistence contract", detail);
            return;
        }
        let lag = self.disk_config.max_ack_lag;
        if lag == 0 {
            self.acknowledge(slot);
        } else if self.nodes[slot].disk.ack_due.is_none() {
            let at = self.time + self.rng.u64(..=lag);
            self.nodes[slot].disk.ack_due = Some(at);
        }
    }

    /// Acknowledges everything durable (one call for every batch durable
    /// since the last one). The caller drains.
    fn acknowledge(&mut self, slot: usize) {
        let node = &mut self.nodes[slot];
        node.disk.ack_due = None;
        let (durable, acked) = (node.disk.durable_id, node.disk.acked_id);
        let Some(raft) = node.raft.as_mut() else {
            return;
        };
        if durable > acked {
            if durable - acked > 1 {
                self.stats.multi_batch_acks += 1;
            }
            node.disk.acked_id = durable;
            raft.on_persisted(durable);
        }
    }

    /// Handles every output of node `id`, crashing it in the middle if a
    /// crash is armed.
    fn drain(&mut self, id: u64) {
        let slot = Self::slot(id);
        let mut handled = 0;
        loop {
            let Some(raft) = self.nodes[slot].raft.as_mut() else {
                return;
            };
            let Some(output) = raft.poll_output() else {
                return;
            };
            if self.nodes[slot].crash_armed == Some(CrashPoint::Output(handled)) {
                self.stats.mid_drain_crashes += 1;
                self.crash(id);
                return;
            }
            handled += 1;
            if matches!(&output, Output::Persist(p) if !p.entries.is_empty())
                && self.nodes[slot].crash_armed == Some(CrashPoint::AfterPersist)
            {
                self.handle_output(slot, output);
                self.stats.mid_drain_crashes += 1;
                self.crash(id);
                return;
            }
            self.handle_output(slot, output);
        }
    }

    fn handle_output(&mut self, slot: usize, output: RaftOutput<u64>) {
        let id = self.nodes[slot].id;
        match output {
            Output::Persist(persist) => {
                self.check_log_matching(id, &persist.entries);
                let delay = self.config.max_persist_delay;
                if delay == 0 {
                    self.complete_write(slot, &persist);
                } else {
                    let at = self.time + self.rng.u64(0..=delay);
                    let writing = &mut self.nodes[slot].disk.writing;
                    let after = writing.back().map_or(0, |(at, _)| *at);
                    writing.push_back((at.max(after), persist));
                }
            }
            Output::Send(message) => {
                self.check_send(slot, &message);
                self.network.send(message, self.time, &mut self.rng);
            }
            Output::Apply(entries) => self.apply(id, &entries),
            Output::ReadReady(read) => self.read_ready(slot, read),
            Output::ReadFailed { id: read } => {
                // A failed read has no effect: it stays pending, which
                // the checker ignores.
                if let Some(get) = self.gets.remove(&read) {
                    self.failed.insert(get.op);
                    self.stats.reads_failed += 1;
                }
            }
            other => self.handle_snapshot_output(slot, other),
        }
    }

    /// Whether every up member has applied everything the leader has, and
    /// the leader has committed its whole log. Nodes outside the leader's
    /// membership (removed, or never added) hear nothing more.
    pub fn converged(&self) -> bool {
        let Some(leader) = self.leader().and_then(|l| self.node(l)) else {
            return false;
        };
        let last = leader.log().last_index();
        let membership = leader.membership();
        leader.log().committed() == last
            && self.nodes.iter().all(|n| match &n.raft {
                Some(raft) if membership.contains(&n.id) => {
                    raft.log().applied() == last && n.next_apply == last + 1
                }
                _ => true,
            })
    }

    /// The last index on node `id`'s disk (what survives a crash).
    pub fn persisted_last_index(&self, id: u64) -> Index {
        self.nodes[Self::slot(id)].disk.durable.last_index()
    }
}
