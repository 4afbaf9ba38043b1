//! A simulated cluster of [`RaftNode`]s over the simulated network, with a
//! simulated disk and a key-value state machine per node, client
//! operations recorded for the linearizability checker, and Raft's safety
//! properties (Figure 3) plus the persistence contract checked after every
//! step and every output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;

use super::disk::{CrashWrites, Disk, DiskConfig, write_batch};
use super::linearizability::{History, KvOp, KvResult, OpId};
use super::network::{Network, NetworkConfig, NetworkStats};
use crate::config::Config;
use crate::entry::{Entry, HardState, Index, Term};
use crate::message::{AppendOutcome, Message, MessageBody};
use crate::output::{Output, Persist, ProposalId, ProposeError, ReadError, ReadState};
use crate::raft::{RaftNode, RaftOutput, Role};
use crate::storage::{MemStorage, Storage};

/// The shape of a simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of nodes, named `1..=nodes`.
    pub nodes: u64,
    /// Node configuration; each node's `seed` is derived from the
    /// simulation seed and its id, and `applied` from what its state
    /// machine recorded.
    pub raft: Config,
    /// Network behaviour.
    pub network: NetworkConfig,
    /// Simulation time units per Raft tick.
    pub tick_interval: u64,
    /// Longest a write to storage takes to become durable, in time units
    /// (0: durable as soon as it is handed out). Writes complete in order.
    /// How the disk acknowledges, and what a crash does to writes not yet
    /// durable, is [`DiskConfig`] ([`Simulation::set_disk`]).
    pub max_persist_delay: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 3,
            raft: Config::default(),
            network: NetworkConfig::reliable(1, 5),
            tick_interval: 10,
            max_persist_delay: 0,
        }
    }
}

/// A safety property that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Simulation time.
    pub time: u64,
    /// Which property (Raft Figure 3's names, "linearizability", or one
    /// of the persistence contract's: "vote durability", "append
    /// durability", "commit durability", "apply durability", "restart").
    pub property: &'static str,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated at t={}: {}",
            self.property, self.time, self.detail
        )
    }
}

impl std::error::Error for Violation {}

/// Something that happened, for narrating a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEvent {
    /// A node became leader.
    Elected {
        /// Simulation time.
        time: u64,
        /// The node.
        node: u64,
        /// Its term.
        term: Term,
        /// Its last log index on taking office (its no-op).
        last_index: Index,
    },
    /// A leader stopped leading.
    SteppedDown {
        /// Simulation time.
        time: u64,
        /// The node.
        node: u64,
        /// The term it led.
        term: Term,
    },
}

/// What the simulation did to the nodes, for reports and for tests that
/// assert a sweep exercised what it claims to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Crashes, mid-drain ones included.
    pub crashes: u64,
    /// Crashes between two outputs of one drain.
    pub mid_drain_crashes: u64,
    /// Restarts of crashed nodes.
    pub restarts: u64,
    /// Restarts whose state machine had recorded an applied index above 0.
    pub restarts_with_applied: u64,
    /// Batches not yet durable at a crash that were lost.
    pub writes_lost: u64,
    /// Batches not yet durable at a crash that landed whole anyway.
    pub writes_kept: u64,
    /// Batches torn at a crash.
    pub writes_torn: u64,
    /// Acknowledgements covering more than one batch.
    pub multi_batch_acks: u64,
    /// State-machine snapshots recorded.
    pub snapshots: u64,
    /// Puts that completed.
    pub writes_completed: u64,
    /// Gets that completed.
    pub reads_completed: u64,
    /// Proposals known lost: another term was applied at their index.
    pub proposals_lost: u64,
    /// Reads that ended with `ReadFailed`.
    pub reads_failed: u64,
    /// Ticks during which an up node believed it led a term older than
    /// the newest leader's (a deposed leader that does not know it yet:
    /// the exposure of lease reads).
    pub stale_leader_ticks: u64,
}

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

/// A put accepted by a node, waiting for that node to apply its index.
#[derive(Debug, Clone, Copy)]
struct PendingPut {
    op: OpId,
    client: u64,
    seq: u64,
    term: Term,
}

#[derive(Debug, Clone, Copy)]
struct PendingGet {
    op: OpId,
    node: u64,
    life: u64,
    key: u64,
    /// Entries known committed when it was asked: its read index must
    /// cover them (thesis §6.4: the leader's commit index is at least
    /// that once it has committed an entry of its term; a deposed leader
    /// serving from its lease would not be).
    committed: Index,
    /// Forwarded to a leader (the node did not lead when asked): the read
    /// must end (ready or failed) by this time while the node stays up
    /// (`read_index`'s contract: within two election timeouts).
    deadline: Option<u64>,
}

/// A put command as stored in the log: client, sequence, key, value.
fn encode_put(client: u64, seq: u64, key: u64, value: u64) -> Bytes {
    let mut out = Vec::with_capacity(32);
    for word in [client, seq, key, value] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    Bytes::from(out)
}

fn decode_put(data: &[u8]) -> Option<[u64; 4]> {
    if data.len() != 32 {
        return None;
    }
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(data.chunks_exact(8)) {
        *word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
    }
    Some(words)
}

/// Whether `storage` holds exactly `entry`.
fn holds(storage: &MemStorage<u64>, entry: &Entry) -> bool {
    storage.term(entry.index) == Ok(entry.term)
        && storage
            .entries(entry.index, entry.index + 1, u64::MAX)
            .is_ok_and(|stored| stored.first() == Some(entry))
}

/// A deterministic simulated Raft cluster.
///
/// ```
/// use dsys_consensus::sim::{SimConfig, Simulation};
///
/// let mut sim = Simulation::new(SimConfig::default(), 7);
/// let leader = sim.run_until_leader(1_000).expect("a leader within 100 ticks");
/// sim.put(1, leader, 42, 1).expect("the leader accepts");
/// sim.run_for(200);
/// assert!(sim.check_history().is_ok());
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
    chosen: Vec<Entry>,
    /// The term each chosen entry was first known committed in (the term
    /// of the node that first knew it: the committing leader's).
    chosen_in: Vec<Term>,
    leaders: BTreeMap<Term, u64>,
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
    pub fn new(config: SimConfig, seed: u64) -> Self {
        Self::with_disk(config, DiskConfig::default(), seed)
    }

    /// A cluster of fresh nodes whose disks behave as `disk` says.
    pub fn with_disk(config: SimConfig, disk: DiskConfig, seed: u64) -> Self {
        let voters: Vec<u64> = (1..=config.nodes).collect();
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
        for id in voters.iter().copied() {
            sim.nodes.push(SimNode {
                id,
                raft: None,
                disk: Disk::new(voters.clone()),
                kv: BTreeMap::new(),
                next_apply: 1,
                seen_commit: 0,
                life: 0,
                was_leader: None,
                crash_armed: None,
            });
            sim.start(id);
        }
        sim
    }

    /// Builds node `id` from its disk: the stored log and hard state, and
    /// the state machine's own record (`Config::applied`).
    fn start(&mut self, id: u64) {
        let seed = self.rng.u64(..);
        let slot = Self::slot(id);
        let node = &mut self.nodes[slot];
        let mut config = self.config.raft.clone();
        config.seed = seed;
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
    pub fn set_disk(&mut self, disk: DiskConfig) {
        self.disk_config = disk;
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
    pub fn set_network(&mut self, config: NetworkConfig) {
        self.network.config = config;
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

    /// Client `client` asks node `node` to put `value` under `key`. The
    /// operation is recorded once the node accepts it and completes when
    /// that node applies it; returns its log index.
    ///
    /// # Errors
    /// The node's refusal (nothing is recorded), or `NotLeader` if it is down.
    pub fn put(
        &mut self,
        client: u64,
        node: u64,
        key: u64,
        value: u64,
    ) -> Result<Index, ProposeError<u64>> {
        self.next_seq += 1;
        let seq = self.next_seq;
        let sim_node = &mut self.nodes[Self::slot(node)];
        let Some(raft) = sim_node.raft.as_mut() else {
            return Err(ProposeError::NotLeader { leader: None });
        };
        let proposal: ProposalId = raft.propose(encode_put(client, seq, key, value))?;
        let op = self
            .history
            .invoke(client, KvOp::Put { key, value }, self.time);
        let life = sim_node.life;
        self.puts.insert(
            (node, life, proposal.index),
            PendingPut {
                op,
                client,
                seq,
                term: proposal.term,
            },
        );
        self.drain(node);
        self.check_step();
        Ok(proposal.index)
    }

    /// Client `client` asks node `node` for a linearizable read of `key`
    /// (ReadIndex); it completes when the node confirms it, with the value
    /// the node's state machine holds then.
    ///
    /// # Errors
    /// The node's refusal (nothing is recorded); `NoLeader` if it is down.
    pub fn get(&mut self, client: u64, node: u64, key: u64) -> Result<(), ReadError> {
        self.next_seq += 1;
        let id = self.next_seq;
        let sim_node = &mut self.nodes[Self::slot(node)];
        let Some(raft) = sim_node.raft.as_mut() else {
            return Err(ReadError::NoLeader);
        };
        let forwarded = raft.role() != Role::Leader;
        raft.read_index(id)?;
        // A forwarded read must end (ready or failed) within a bounded
        // number of the node's ticks (the contract of `read_index`).
        let election = u64::from(self.config.raft.election_tick);
        let deadline =
            forwarded.then(|| self.time + (2 * election + 2) * self.config.tick_interval.max(1));
        let op = self.history.invoke(client, KvOp::Get { key }, self.time);
        let life = sim_node.life;
        self.gets.insert(
            id,
            PendingGet {
                op,
                node,
                life,
                key,
                committed: self.chosen.len() as Index,
                deadline,
            },
        );
        self.drain(node);
        self.check_step();
        Ok(())
    }

    /// Whether client operation `op` has completed.
    pub fn is_complete(&self, op: OpId) -> bool {
        self.history
            .operation(op)
            .is_some_and(|o| o.completed.is_some())
    }

    /// Whether client operation `op` is known to have failed: a read that
    /// ended with `ReadFailed`, or a put whose index applied another term
    /// on the node that accepted it. It stays pending in the history.
    pub fn has_failed(&self, op: OpId) -> bool {
        self.failed.contains(&op)
    }

    /// The id of the last operation recorded.
    pub fn last_op(&self) -> Option<OpId> {
        self.history.operations().last().map(|o| o.id)
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
    fn complete_write(&mut self, slot: usize, persist: &Persist<HardState<u64>>) {
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
        }
    }

    fn read_ready(&mut self, slot: usize, read: ReadState) {
        let Some(get) = self.gets.get(&read.id).copied() else {
            return;
        };
        let node = &self.nodes[slot];
        if get.node != node.id || get.life != node.life {
            return;
        }
        self.gets.remove(&read.id);
        let applied = node.next_apply - 1;
        if read.index < get.committed {
            let (role, term) = node
                .raft
                .as_ref()
                .map(|raft| (raft.role(), raft.term()))
                .expect("outputs come from up nodes");
            let latest = self.leaders.last_key_value();
            let detail = format!(
                "node {} ({role:?} in term {term}) served read {} at index {}, but index {} was committed before it was asked (latest leader, term: {latest:?})",
                node.id, read.id, read.index, get.committed
            );
            self.fail("read freshness", detail);
            return;
        }
        if read.index > applied {
            let detail = format!(
                "node {} served read {} at index {} having applied only {applied}",
                node.id, read.id, read.index
            );
            self.fail("linearizability", detail);
            return;
        }
        let value = node.kv.get(&get.key).copied();
        self.history
            .complete(get.op, KvResult::Read(value), self.time);
        self.stats.reads_completed += 1;
    }

    /// A forwarded read must end within its deadline while its node is up
    /// in the life it was asked in.
    fn check_reads_end(&mut self) {
        let overdue = self.gets.iter().find(|(_, get)| {
            get.deadline.is_some_and(|at| at < self.time)
                && self.nodes[Self::slot(get.node)].life == get.life
                && self.nodes[Self::slot(get.node)].raft.is_some()
        });
        if let Some((&read, get)) = overdue {
            let detail = format!(
                "node {}'s forwarded read {read} has neither completed nor failed by its deadline t={}",
                get.node,
                get.deadline.unwrap_or_default()
            );
            self.fail("read liveness", detail);
        }
    }

    /// The persistence contract, seen from the wire: a granted vote leaves
    /// only once that vote is on the voter's disk, an acknowledgement of
    /// entries only once those entries are.
    fn check_send(&mut self, slot: usize, message: &Message<u64>) {
        let node = &self.nodes[slot];
        let disk = &node.disk.durable;
        let detail = match &message.body {
            MessageBody::VoteResponse {
                pre_vote: false,
                granted: true,
            } => {
                let stored = disk.hard_state();
                let durable = stored.term > message.term
                    || (stored.term == message.term && stored.vote == Some(message.to));
                (!durable).then(|| {
                    (
                        "vote durability",
                        format!(
                            "node {} granted its vote in term {} to {} with {stored:?} on disk",
                            node.id, message.term, message.to
                        ),
                    )
                })
            }
            MessageBody::AppendResponse(AppendOutcome::Accepted { last_index })
                if *last_index > 0 =>
            {
                let Some(raft) = node.raft.as_ref() else {
                    return;
                };
                if raft.term() != message.term {
                    return;
                }
                let want = raft.log().term(*last_index);
                let have = disk.term(*last_index);
                (want.is_err() || have != want).then(|| {
                    (
                        "append durability",
                        format!(
                            "node {} acknowledged entries up to {last_index} (term {want:?}) in term {} with term {have:?} there on disk (disk last index {})",
                            node.id,
                            message.term,
                            disk.last_index()
                        ),
                    )
                })
            }
            _ => None,
        };
        if let Some((property, detail)) = detail {
            self.fail(property, detail);
        }
    }

    fn apply(&mut self, id: u64, entries: &[Entry]) {
        let slot = Self::slot(id);
        self.record_commits(slot);
        for entry in entries {
            let next_apply = self.nodes[slot].next_apply;
            if entry.index != next_apply {
                self.fail(
                    "state machine safety",
                    format!(
                        "node {id} applied index {} when {next_apply} was next",
                        entry.index
                    ),
                );
                return;
            }
            self.nodes[slot].next_apply += 1;
            let at = usize::try_from(entry.index - 1).expect("small index");
            match self.chosen.get(at) {
                Some(chosen) if chosen != entry => {
                    let detail = format!(
                        "node {id} applied {:?} at index {}, but {:?} was committed there",
                        entry, entry.index, chosen
                    );
                    self.fail("state machine safety", detail);
                    return;
                }
                Some(_) => {}
                None => {
                    self.fail(
                        "state machine safety",
                        format!(
                            "node {id} applied index {} before anyone knew it committed",
                            entry.index
                        ),
                    );
                    return;
                }
            }
            if !holds(&self.nodes[slot].disk.durable, entry) {
                let detail = format!(
                    "node {id} was handed index {} (term {}) to apply before it was on its disk (disk last index {})",
                    entry.index,
                    entry.term,
                    self.nodes[slot].disk.durable.last_index()
                );
                self.fail("apply durability", detail);
                return;
            }
            self.apply_put(slot, entry);
        }
        // (No draw when snapshots are off: scripted runs keep their course.)
        if self.disk_config.snapshot_state_machine > 0.0
            && self.rng.f64() < self.disk_config.snapshot_state_machine
        {
            let node = &mut self.nodes[slot];
            node.disk.state_machine = Some((node.next_apply - 1, node.kv.clone()));
            self.stats.snapshots += 1;
        }
    }

    /// Applies a put to the key-value map, and settles the put proposed
    /// at this index on this node in this life: committed if this is it,
    /// lost otherwise (and then it must never apply anywhere).
    fn apply_put(&mut self, slot: usize, entry: &Entry) {
        let node = &mut self.nodes[slot];
        let (id, life) = (node.id, node.life);
        let command = decode_put(&entry.data);
        if let Some([_, _, key, value]) = command {
            node.kv.insert(key, value);
        }
        if let Some([client, seq, ..]) = command {
            if let Some(index) = self.lost_puts.get(&(client, seq)) {
                let detail = format!(
                    "node {id} applied client {client}'s put {seq} at index {}, after index {index} applied another term than its proposal's",
                    entry.index
                );
                self.fail("proposal outcome", detail);
                return;
            }
        }
        let Some(put) = self.puts.remove(&(id, life, entry.index)) else {
            return;
        };
        let ours = command.is_some_and(|[client, seq, ..]| client == put.client && seq == put.seq);
        match (ours, entry.term == put.term) {
            (true, true) => {
                self.history.complete(put.op, KvResult::Written, self.time);
                self.stats.writes_completed += 1;
            }
            (false, false) => {
                self.lost_puts.insert((put.client, put.seq), entry.index);
                self.failed.insert(put.op);
                self.stats.proposals_lost += 1;
            }
            (true, false) | (false, true) => {
                let detail = format!(
                    "node {id} proposed client {}'s put {} as (term {}, index {}) and applied {entry:?} there",
                    put.client, put.seq, put.term, entry.index
                );
                self.fail("proposal outcome", detail);
            }
        }
    }

    fn check_log_matching(&mut self, id: u64, entries: &[Entry]) {
        let Some(raft) = self.nodes[Self::slot(id)].raft.as_ref() else {
            return;
        };
        for entry in entries {
            let prev_term = raft.log().term(entry.index - 1).unwrap_or(0);
            let seen = self
                .log_entries
                .entry((entry.index, entry.term))
                .or_insert_with(|| (entry.data.clone(), prev_term));
            if *seen != (entry.data.clone(), prev_term) {
                let detail = format!(
                    "node {id} holds index {} term {} with data {:?} after term {prev_term}; another log has {:?} after term {}",
                    entry.index, entry.term, entry.data, seen.0, seen.1
                );
                self.fail("log matching", detail);
                return;
            }
        }
    }

    /// Election safety, leader completeness and committed entries, after
    /// every step.
    fn check_step(&mut self) {
        for slot in 0..self.nodes.len() {
            let id = self.nodes[slot].id;
            let Some(raft) = self.nodes[slot].raft.as_ref() else {
                continue;
            };
            let (role, term) = (raft.role(), raft.term());
            self.record_commits(slot);
            let node = &self.nodes[slot];
            let raft = node.raft.as_ref().expect("checked above");
            let was = node.was_leader;
            if role == Role::Leader {
                let holder = *self.leaders.entry(term).or_insert(id);
                if holder != id {
                    self.violation.get_or_insert(Violation {
                        time: self.time,
                        property: "election safety",
                        detail: format!("nodes {holder} and {id} both lead term {term}"),
                    });
                }
                if was != Some(term) {
                    // Leader completeness (§5.4): the new leader holds
                    // every entry committed in an earlier term. (Not those
                    // committed since in later terms: its votes may have
                    // reached it late.)
                    let earlier = self.chosen.iter().zip(&self.chosen_in);
                    for (chosen, _) in earlier.filter(|(_, known)| **known < term) {
                        if raft.log().term(chosen.index) != Ok(chosen.term) {
                            let detail = format!(
                                "node {id} leads term {term} without committed entry {} (term {})",
                                chosen.index, chosen.term
                            );
                            self.violation.get_or_insert(Violation {
                                time: self.time,
                                property: "leader completeness",
                                detail,
                            });
                            break;
                        }
                    }
                    // Its own vote counted: it must be on its disk, or a
                    // restart could vote again in this term.
                    let stored = node.disk.durable.hard_state();
                    if self.config.nodes > 1 && (stored.term != term || stored.vote != Some(id)) {
                        let detail =
                            format!("node {id} leads term {term} with {stored:?} on its disk");
                        self.violation.get_or_insert(Violation {
                            time: self.time,
                            property: "vote durability",
                            detail,
                        });
                    }
                    let last_index = raft.log().last_index();
                    self.events.push(SimEvent::Elected {
                        time: self.time,
                        node: id,
                        term,
                        last_index,
                    });
                    self.nodes[slot].was_leader = Some(term);
                }
            } else if let Some(led) = was {
                self.events.push(SimEvent::SteppedDown {
                    time: self.time,
                    node: id,
                    term: led,
                });
                self.nodes[slot].was_leader = None;
            }
        }
    }

    /// Entries newly known committed on the node in `slot` join the chosen
    /// log; they must agree with what was chosen before, and an entry
    /// first known committed must be on a majority of disks.
    fn record_commits(&mut self, slot: usize) {
        let id = self.nodes[slot].id;
        let Some(raft) = self.nodes[slot].raft.as_ref() else {
            return;
        };
        let commit = raft.log().committed();
        let term = raft.term();
        let seen = self.nodes[slot].seen_commit;
        if commit <= seen {
            return;
        }
        let entries = raft
            .log()
            .slice(seen + 1, commit + 1, u64::MAX)
            .expect("committed entries are in the log (nothing is compacted)");
        self.nodes[slot].seen_commit = commit;
        for entry in entries {
            let at = usize::try_from(entry.index - 1).expect("small index");
            if let Some(chosen) = self.chosen.get(at) {
                if *chosen != entry {
                    let detail =
                        format!("node {id} committed {entry:?} where {chosen:?} was committed");
                    self.fail("state machine safety", detail);
                }
            } else if at == self.chosen.len() {
                let on_disk = self
                    .nodes
                    .iter()
                    .filter(|n| holds(&n.disk.durable, &entry))
                    .count() as u64;
                if on_disk <= self.config.nodes / 2 {
                    let detail = format!(
                        "node {id} knows index {} (term {}) committed while only {on_disk} of {} disks hold it",
                        entry.index, entry.term, self.config.nodes
                    );
                    self.fail("commit durability", detail);
                }
                self.chosen.push(entry);
                self.chosen_in.push(term);
            } else {
                self.fail(
                    "state machine safety",
                    format!("node {id} committed index {} past a gap", entry.index),
                );
            }
        }
    }

    fn fail(&mut self, property: &'static str, detail: String) {
        self.violation.get_or_insert(Violation {
            time: self.time,
            property,
            detail,
        });
    }

    /// Checks that every committed entry is still on a majority of disks
    /// (nothing acknowledged was lost, nothing committed was overwritten).
    ///
    /// # Errors
    /// A `commit durability` [`Violation`] naming the first entry that is not.
    pub fn check_disks(&self) -> Result<(), Violation> {
        for entry in &self.chosen {
            let on_disk = self
                .nodes
                .iter()
                .filter(|n| holds(&n.disk.durable, entry))
                .count() as u64;
            if on_disk <= self.config.nodes / 2 {
                return Err(Violation {
                    time: self.time,
                    property: "commit durability",
                    detail: format!(
                        "committed index {} (term {}) is on only {on_disk} of {} disks",
                        entry.index, entry.term, self.config.nodes
                    ),
                });
            }
        }
        Ok(())
    }

    /// Checks the client history for linearizability.
    ///
    /// # Errors
    /// A [`Violation`] describing the offending key's operations.
    pub fn check_history(&self) -> Result<(), Violation> {
        self.history.check().map_err(|violation| Violation {
            time: self.time,
            property: "linearizability",
            detail: violation.to_string(),
        })
    }

    /// Checks log matching across every up node's whole log (the per-step
    /// check sees entries as they are persisted; this one is a backstop).
    ///
    /// # Errors
    /// A [`Violation`] naming the two nodes.
    pub fn check_logs(&self) -> Result<(), Violation> {
        let up: Vec<&RaftNode<MemStorage<u64>>> =
            self.nodes.iter().filter_map(|n| n.raft.as_ref()).collect();
        for (i, a) in up.iter().enumerate() {
            for b in &up[i + 1..] {
                let last = a.log().last_index().min(b.log().last_index());
                // Find the highest index where terms agree; everything
                // before it must be identical.
                let agree = (1..=last)
                    .rev()
                    .find(|&ix| a.log().term(ix) == b.log().term(ix) && a.log().term(ix).is_ok());
                if let Some(agree) = agree {
                    let xs = a.log().slice(1, agree + 1, u64::MAX);
                    let ys = b.log().slice(1, agree + 1, u64::MAX);
                    if xs != ys {
                        return Err(Violation {
                            time: self.time,
                            property: "log matching",
                            detail: format!(
                                "nodes {} and {} agree on the term at {agree} but differ before it",
                                a.id(),
                                b.id()
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// One line per node: role, term, log positions, held messages.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match &node.raft {
                Some(raft) => {
                    let s = raft.status();
                    out.push_str(&format!(
                        "\n  node {}: {:?} term {} leader {:?} last {} commit {} applied {} persisted {} held {} writing {} (durable {}, acknowledged {}); disk {:?} last {}",
                        node.id, s.role, s.term, s.leader, s.last_index, s.commit, s.applied,
                        s.persisted, raft.held_messages(), node.disk.writing.len(),
                        node.disk.durable_id, node.disk.acked_id,
                        node.disk.durable.hard_state(), node.disk.durable.last_index()
                    ));
                    for peer in raft.voters() {
                        if let Some(p) = raft.progress(peer) {
                            out.push_str(&format!(
                                "\n    -> {peer}: {:?} match {} next {} inflight {} paused {}",
                                p.state(),
                                p.matched(),
                                p.next(),
                                p.inflights().count(),
                                p.is_paused()
                            ));
                        }
                    }
                }
                None => out.push_str(&format!(
                    "\n  node {}: down; disk {:?} last {}",
                    node.id,
                    node.disk.durable.hard_state(),
                    node.disk.durable.last_index()
                )),
            }
        }
        out
    }

    /// Whether every up node has applied everything the leader has, and
    /// the leader has committed its whole log.
    pub fn converged(&self) -> bool {
        let Some(leader) = self.leader().and_then(|l| self.node(l)) else {
            return false;
        };
        let last = leader.log().last_index();
        leader.log().committed() == last
            && self.nodes.iter().all(|n| match &n.raft {
                Some(raft) => raft.log().applied() == last && n.next_apply == last + 1,
                None => true,
            })
    }

    /// The last index on node `id`'s disk (what survives a crash).
    pub fn persisted_last_index(&self, id: u64) -> Index {
        self.nodes[Self::slot(id)].disk.durable.last_index()
    }
}
