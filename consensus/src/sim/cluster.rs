//! A simulated cluster of [`RaftNode`]s over the simulated network, with a
//! key-value state machine per node, client operations recorded for the
//! linearizability checker, and Raft's safety properties (Figure 3)
//! checked after every step.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use bytes::Bytes;

use super::linearizability::{History, KvOp, KvResult, OpId};
use super::network::{Network, NetworkConfig, NetworkStats};
use crate::config::Config;
use crate::entry::{Entry, Index, Term};
use crate::output::{Output, Persist, ProposeError, ReadError};
use crate::raft::{RaftNode, Role};
use crate::storage::{MemStorage, Storage};

/// The shape of a simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of nodes, named `1..=nodes`.
    pub nodes: u64,
    /// Node configuration; each node's `seed` is derived from the
    /// simulation seed and its id.
    pub raft: Config,
    /// Network behaviour.
    pub network: NetworkConfig,
    /// Simulation time units per Raft tick.
    pub tick_interval: u64,
    /// Longest a write to storage takes, in time units (0: persisted
    /// synchronously, as soon as it is handed out). Writes complete in
    /// order.
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
    /// Which property (Raft Figure 3's names, or "linearizability").
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

/// One node of the simulation: the Raft state machine while it is up,
/// its storage, and the key-value state machine it applies to.
#[derive(Debug)]
struct SimNode {
    id: u64,
    raft: Option<RaftNode<MemStorage<u64>>>,
    /// What survives a crash: the storage as last written.
    storage: MemStorage<u64>,
    /// Writes handed out and not yet completed: (completion time, batch).
    writing: VecDeque<(u64, Persist<crate::entry::HardState<u64>>)>,
    kv: BTreeMap<u64, u64>,
    /// Next index this node must apply.
    next_apply: Index,
    /// Commit index last seen (for recording chosen entries).
    seen_commit: Index,
    /// Incremented at every restart: outcomes from a previous life are void.
    life: u64,
    was_leader: Option<Term>,
}

#[derive(Debug, Clone, Copy)]
struct PendingPut {
    op: OpId,
    node: u64,
    life: u64,
    index: Index,
}

#[derive(Debug, Clone, Copy)]
struct PendingGet {
    op: OpId,
    node: u64,
    life: u64,
    key: u64,
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
    time: u64,
    rng: fastrand::Rng,
    nodes: Vec<SimNode>,
    network: Network,
    /// Every (index, term) ever handed out to persist: its data and the
    /// term before it (log matching, by induction on the index).
    log_entries: BTreeMap<(Index, Term), (Bytes, Term)>,
    /// Committed entries by index (state-machine safety).
    chosen: Vec<Entry>,
    leaders: BTreeMap<Term, u64>,
    history: History<u64, u64>,
    puts: BTreeMap<(u64, u64), PendingPut>,
    gets: BTreeMap<u64, PendingGet>,
    next_seq: u64,
    events: Vec<SimEvent>,
    violation: Option<Violation>,
}

impl Simulation {
    /// A cluster of fresh nodes; every random choice derives from `seed`.
    pub fn new(config: SimConfig, seed: u64) -> Self {
        let voters: Vec<u64> = (1..=config.nodes).collect();
        let network = Network::new(config.network.clone());
        let mut sim = Self {
            time: 0,
            rng: fastrand::Rng::with_seed(seed),
            nodes: Vec::new(),
            network,
            log_entries: BTreeMap::new(),
            chosen: Vec::new(),
            leaders: BTreeMap::new(),
            history: History::new(),
            puts: BTreeMap::new(),
            gets: BTreeMap::new(),
            next_seq: 0,
            events: Vec::new(),
            violation: None,
            config,
        };
        for id in voters.iter().copied() {
            sim.nodes.push(SimNode {
                id,
                raft: None,
                storage: MemStorage::new(voters.clone()),
                writing: VecDeque::new(),
                kv: BTreeMap::new(),
                next_apply: 1,
                seen_commit: 0,
                life: 0,
                was_leader: None,
            });
            sim.start(id);
        }
        sim
    }

    fn start(&mut self, id: u64) {
        let seed = self.rng.u64(..);
        let node = &mut self.nodes[Self::slot(id)];
        let mut config = self.config.raft.clone();
        config.seed = seed;
        let raft = RaftNode::new(id, node.storage.clone(), config)
            .expect("the simulation's configuration is valid and every node is a voter");
        node.raft = Some(raft);
        node.life += 1;
        node.kv.clear();
        node.next_apply = 1;
        node.seen_commit = 0;
        node.was_leader = None;
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

    /// Node `id`'s Raft state machine, if it is up.
    pub fn node(&self, id: u64) -> Option<&RaftNode<MemStorage<u64>>> {
        self.nodes.get(Self::slot(id))?.raft.as_ref()
    }

    /// Node `id`'s key-value state.
    pub fn kv(&self, id: u64) -> &BTreeMap<u64, u64> {
        &self.nodes[Self::slot(id)].kv
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

    /// Crashes node `id`: its volatile state and unfinished writes are
    /// lost; what it persisted survives.
    pub fn crash(&mut self, id: u64) {
        let node = &mut self.nodes[Self::slot(id)];
        if let Some(raft) = node.raft.take() {
            node.storage = raft.storage().clone();
            node.writing.clear();
            if let Some(term) = node.was_leader.take() {
                self.events.push(SimEvent::SteppedDown {
                    time: self.time,
                    node: id,
                    term,
                });
            }
        }
    }

    /// Restarts a crashed node from its persisted state.
    pub fn restart(&mut self, id: u64) {
        if !self.is_up(id) {
            self.start(id);
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
    /// that node applies it.
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
        let index = raft.propose(encode_put(client, seq, key, value))?;
        let op = self
            .history
            .invoke(client, KvOp::Put { key, value }, self.time);
        let life = sim_node.life;
        self.puts.insert(
            (client, seq),
            PendingPut {
                op,
                node,
                life,
                index,
            },
        );
        self.drain(node);
        self.check_step();
        Ok(index)
    }

    /// Client `client` asks node `node` for a linearizable read of `key`
    /// (ReadIndex); it completes when the node confirms it.
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
        raft.read_index(id)?;
        let op = self.history.invoke(client, KvOp::Get { key }, self.time);
        let life = sim_node.life;
        self.gets.insert(
            id,
            PendingGet {
                op,
                node,
                life,
                key,
            },
        );
        self.drain(node);
        self.check_step();
        Ok(())
    }

    /// Whether client operation `op` has completed.
    pub fn is_complete(&self, op: OpId) -> bool {
        self.history
            .operations()
            .iter()
            .rev()
            .find(|o| o.id == op)
            .is_some_and(|o| o.completed.is_some())
    }

    /// The id of the last operation recorded.
    pub fn last_op(&self) -> Option<OpId> {
        self.history.operations().last().map(|o| o.id)
    }

    /// Advances time by one unit: delivers due messages, completes due
    /// writes, ticks the nodes whose tick falls now, then checks safety.
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
        for i in 0..self.nodes.len() {
            let id = self.nodes[i].id;
            while self.nodes[i]
                .writing
                .front()
                .is_some_and(|(at, _)| *at <= self.time)
            {
                let (_, persist) = self.nodes[i].writing.pop_front().expect("front exists");
                self.complete_write(id, persist);
            }
            let phase = id * 7 % self.config.tick_interval.max(1);
            if self.time % self.config.tick_interval.max(1) == phase {
                if let Some(raft) = self.nodes[i].raft.as_mut() {
                    raft.tick();
                }
                self.drain(id);
            }
        }
        self.check_step();
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

    fn complete_write(&mut self, id: u64, persist: Persist<crate::entry::HardState<u64>>) {
        let Some(raft) = self.nodes[Self::slot(id)].raft.as_mut() else {
            return;
        };
        if let Some(hard_state) = persist.hard_state {
            raft.storage_mut().set_hard_state(hard_state);
        }
        raft.storage_mut()
            .append(&persist.entries)
            .expect("persisted entries continue the stored log");
        raft.on_persisted(persist.id);
        self.drain(id);
    }

    /// Handles every output of node `id`.
    fn drain(&mut self, id: u64) {
        let slot = Self::slot(id);
        loop {
            let Some(raft) = self.nodes[slot].raft.as_mut() else {
                return;
            };
            let Some(output) = raft.poll_output() else {
                return;
            };
            match output {
                Output::Persist(persist) => {
                    self.check_log_matching(id, &persist.entries);
                    let delay = self.config.max_persist_delay;
                    if delay == 0 {
                        self.complete_write(id, persist);
                    } else {
                        let node = &mut self.nodes[slot];
                        let after = node.writing.back().map_or(0, |(at, _)| *at);
                        let at = (self.time + self.rng.u64(0..=delay)).max(after);
                        node.writing.push_back((at, persist));
                    }
                }
                Output::Send(message) => self.network.send(message, self.time, &mut self.rng),
                Output::Apply(entries) => self.apply(id, &entries),
                Output::ReadReady(read) => {
                    if let Some(get) = self.gets.remove(&read.id) {
                        let node = &self.nodes[slot];
                        if get.node == id && get.life == node.life {
                            let value = node.kv.get(&get.key).copied();
                            self.history
                                .complete(get.op, KvResult::Read(value), self.time);
                        }
                    }
                }
                Output::ReadFailed { id: read } => {
                    // A failed read has no effect: it stays pending, which
                    // the checker ignores.
                    self.gets.remove(&read);
                }
            }
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
            let node = &mut self.nodes[slot];
            let Some([client, seq, key, value]) = decode_put(&entry.data) else {
                continue;
            };
            node.kv.insert(key, value);
            let life = node.life;
            if let Some(put) = self.puts.get(&(client, seq)).copied() {
                if put.node == id && put.life == life && put.index == entry.index {
                    self.puts.remove(&(client, seq));
                    self.history.complete(put.op, KvResult::Written, self.time);
                }
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
            let raft = self.nodes[slot].raft.as_ref().expect("checked above");
            let was = self.nodes[slot].was_leader;
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
                    // Leader completeness: the new leader holds every
                    // committed entry.
                    for chosen in &self.chosen {
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
    /// log; they must agree with what was chosen before.
    fn record_commits(&mut self, slot: usize) {
        let id = self.nodes[slot].id;
        let Some(raft) = self.nodes[slot].raft.as_ref() else {
            return;
        };
        let commit = raft.log().committed();
        let seen = self.nodes[slot].seen_commit;
        if commit > seen {
            let entries = raft
                .log()
                .slice(seen + 1, commit + 1, u64::MAX)
                .expect("committed entries are in the log (nothing is compacted)");
            for entry in entries {
                let at = usize::try_from(entry.index - 1).expect("small index");
                if let Some(chosen) = self.chosen.get(at) {
                    if *chosen != entry {
                        let detail =
                            format!("node {id} committed {entry:?} where {chosen:?} was committed");
                        self.fail("state machine safety", detail);
                    }
                } else if at == self.chosen.len() {
                    self.chosen.push(entry);
                } else {
                    self.fail(
                        "state machine safety",
                        format!("node {id} committed index {} past a gap", entry.index),
                    );
                }
            }
            self.nodes[slot].seen_commit = commit;
        }
    }

    fn fail(&mut self, property: &'static str, detail: String) {
        self.violation.get_or_insert(Violation {
            time: self.time,
            property,
            detail,
        });
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
                        "\n  node {}: {:?} term {} leader {:?} last {} commit {} applied {} persisted {} held {} writing {}",
                        node.id, s.role, s.term, s.leader, s.last_index, s.commit, s.applied,
                        s.persisted, raft.held_messages(), node.writing.len()
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
                None => out.push_str(&format!("\n  node {}: down", node.id)),
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

    /// The last index in node `id`'s storage (what survives a crash).
    pub fn persisted_last_index(&self, id: u64) -> Index {
        match &self.nodes[Self::slot(id)].raft {
            Some(raft) => raft.storage().last_index(),
            None => self.nodes[Self::slot(id)].storage.last_index(),
        }
    }
}
