//! Client operations on the simulated cluster: puts proposed to a node and
//! completed when that node applies them, ReadIndex gets completed when
//! the node confirms them, and the key-value state machine each node
//! applies committed entries to. Every operation is recorded in the
//! history for the linearizability checker, and its outcome (completed,
//! or known failed) is settled here.

use bytes::Bytes;

use super::Simulation;
use super::checks::holds;
use crate::entry::{Entry, Index, Term};
use crate::output::{ProposalId, ProposeError, ReadError, ReadState};
use crate::raft::Role;
use crate::sim::linearizability::{KvOp, KvResult, OpId};
use crate::storage::Storage;

/// A put accepted by a node, waiting for that node to apply its index.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingPut {
    op: OpId,
    client: u64,
    seq: u64,
    term: Term,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct PendingGet {
    pub(super) op: OpId,
    pub(super) node: u64,
    pub(super) life: u64,
    pub(super) key: u64,
    /// Entries known committed when it was asked: its read index must
    /// cover them (thesis §6.4: the leader's commit index is at least
    /// that once it has committed an entry of its term; a deposed leader
    /// serving from its lease would not be).
    pub(super) committed: Index,
    /// Forwarded to a leader (the node did not lead when asked): the read
    /// must end (ready or failed) by this time while the node stays up
    /// (`read_index`'s contract: within two election timeouts).
    pub(super) deadline: Option<u64>,
}

/// A put command as stored in the log: client, sequence, key, value.
fn encode_put(client: u64, seq: u64, key: u64, value: u64) -> Bytes {
    let mut out = Vec::with_capacity(32);
    for word in [client, seq, key, value] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    Bytes::from(out)
}

/// The key-value state after applying `entries` (a committed prefix).
pub(super) fn replay(entries: &[Entry<u64>]) -> std::collections::BTreeMap<u64, u64> {
    entries
        .iter()
        .filter_map(|entry| decode_put(&entry.data))
        .map(|[_, _, key, value]| (key, value))
        .collect()
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

impl Simulation {
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

    pub(super) fn read_ready(&mut self, slot: usize, read: ReadState) {
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

    pub(super) fn apply(&mut self, id: u64, entries: &[Entry<u64>]) {
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
        if self.disk_config.compact > 0.0 && self.rng.f64() < self.disk_config.compact {
            self.take_snapshot(slot);
        }
    }

    /// Applies a put to the key-value map, and settles the put proposed
    /// at this index on this node in this life: committed if this is it,
    /// lost otherwise (and then it must never apply anywhere).
    fn apply_put(&mut self, slot: usize, entry: &Entry<u64>) {
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
}
