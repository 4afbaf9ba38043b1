//! The peer contender: raft-rs 0.7 (`RawNode` over `MemStorage`), driven by the Ready loop
//! that raft-rs documents (its `single_mem_node` example and the `RawNode` docs).

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, EntryType, Message, MessageType};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};

use crate::cluster::{Cluster, drive_until};

/// Node ids, 1-based as raft-rs requires (0 is "none"); node `id` sits at index `id - 1`.
const IDS: [u64; 3] = [1, 2, 3];

/// The leader: it campaigns when the cluster is built, and nothing ever ticks, so no other
/// node can start an election.
const LEADER: u64 = 1;

/// Three raft-rs nodes in one thread, with a perfect in-memory network between them.
pub(crate) struct RaftRsCluster {
    nodes: Vec<Node>,
    /// Messages addressed to each node, not yet stepped.
    inboxes: Vec<Vec<Message>>,
    /// Propose a whole batch as one `MsgPropose` (raft-rs's way to batch
    /// proposals) instead of one `propose` call per payload.
    batched: bool,
}

struct Node {
    raw: RawNode<MemStorage>,
    /// Highest applied normal-entry index.
    applied: u64,
}

impl RaftRsCluster {
    /// Builds the cluster, elects node 1 and drives until every node applied the empty entry
    /// a new leader appends at the start of its term (Raft §8), so that timing starts from a
    /// settled leader.
    pub(crate) fn new() -> Self {
        Self::build(false)
    }

    /// The same cluster, proposing each batch as one `MsgPropose` with all
    /// its entries, so raft-rs sends one `MsgAppend` per follower per batch
    /// as dsys does.
    pub(crate) fn new_batched() -> Self {
        Self::build(true)
    }

    fn build(batched: bool) -> Self {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let nodes = IDS
            .iter()
            .map(|&id| {
                let storage =
                    MemStorage::new_with_conf_state(ConfState::from((IDS.to_vec(), vec![])));
                let raw = RawNode::new(&config(id), storage, &logger).expect("the config is valid");
                Node { raw, applied: 0 }
            })
            .collect();
        let mut cluster = Self {
            nodes,
            inboxes: vec![Vec::new(); IDS.len()],
            batched,
        };
        cluster
            .node_mut(LEADER)
            .raw
            .campaign()
            .expect("a voter can campaign");
        cluster.drive_until(|c| {
            let leader = &c.node(LEADER).raw;
            leader.raft.state == StateRole::Leader
                && c.all_applied(leader.raft.raft_log.last_index())
        });
        cluster
    }

    fn node(&self, id: u64) -> &Node {
        &self.nodes[index(id)]
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[index(id)]
    }

    fn all_applied(&self, index: u64) -> bool {
        self.nodes.iter().all(|n| n.applied >= index)
    }

    fn drive_until(&mut self, done: impl Fn(&Self) -> bool) {
        drive_until(self, "raft-rs", done, Self::round);
    }

    /// Every node steps the messages queued for it, then handles readies
    /// while it has any.
    fn round(&mut self) -> bool {
        let mut progressed = false;
        for i in 0..self.nodes.len() {
            let inbox = std::mem::take(&mut self.inboxes[i]);
            progressed |= !inbox.is_empty();
            let node = &mut self.nodes[i];
            for m in inbox {
                // A stale or duplicate message is an error that changes nothing; with a
                // perfect network and a single term there are none, so any error is a bug.
                node.raw.step(m).expect("raft-rs rejected a message");
            }
            while node.raw.has_ready() {
                node.handle_ready(&mut self.inboxes);
                progressed = true;
            }
        }
        progressed
    }
}

impl Cluster for RaftRsCluster {
    fn replicate(&mut self, batch: &[Bytes]) {
        let batched = self.batched;
        let leader = &mut self.node_mut(LEADER).raw;
        if batched {
            let mut proposal = Message::default();
            proposal.set_msg_type(MessageType::MsgPropose);
            proposal.from = LEADER;
            let entries: Vec<Entry> = batch
                .iter()
                .map(|payload| Entry {
                    data: payload.to_vec().into(),
                    ..Entry::default()
                })
                .collect();
            proposal.set_entries(entries.into());
            leader
                .step(proposal)
                .expect("the leader accepts proposals (no transfer, no size limit)");
        }
        for payload in batch.iter().filter(|_| !batched) {
            // raft-rs takes the payload as an owned `Vec<u8>`, so this copy is part of the cost
            // of its API, and is timed. One `propose` per payload, as the harness asks: raft-rs
            // also accepts one `MsgPropose` with many entries through `step`, which sends fewer
            // `MsgAppend`s (the leader broadcasts after each proposal).
            leader
                .propose(vec![], payload.to_vec())
                .expect("the leader accepts proposals (no transfer, no size limit)");
        }
        let last = leader.raft.raft_log.last_index();
        self.drive_until(|c| c.all_applied(last));
    }

    fn applied(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.applied).collect()
    }

    fn compact(&mut self) {
        // Up to the index applied everywhere, and that entry stays (`compact` drops the ones
        // before it): the leader's next `MsgAppend` names it as the previous entry, so no
        // follower ever needs a snapshot.
        let floor = self
            .nodes
            .iter()
            .map(|n| n.applied)
            .min()
            .expect("three nodes");
        for node in &self.nodes {
            node.raw
                .store()
                .wl()
                .compact(floor)
                .expect("MemStorage compacts any stored index");
        }
    }
}

impl Node {
    /// One pass of the Ready loop, in the order raft-rs prescribes: send, apply snapshot,
    /// apply committed entries, persist entries and hard state, send persisted messages,
    /// `advance`, then the `LightReady` (commit index, messages, committed entries) and
    /// `advance_apply`.
    fn handle_ready(&mut self, inboxes: &mut [Vec<Message>]) {
        let mut ready = self.raw.ready();
        // Messages from `messages()` may leave before the entries are persisted: the leader
        // writes its log in parallel with replicating it (Raft thesis §10.2.1).
        route(inboxes, ready.take_messages());
        // Logs are compacted only up to what every node applied (`Cluster::compact`).
        assert!(ready.snapshot().is_empty(), "no snapshot is expected");
        self.apply(ready.take_committed_entries());
        {
            let mut store = self.raw.store().wl();
            store
                .append(ready.entries())
                .expect("entries follow the stored log");
            if let Some(hs) = ready.hs() {
                store.set_hardstate(hs.clone());
            }
        }
        // Votes and append responses: only now that the entries and hard state are "durable".
        route(inboxes, ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.store().wl().mut_hard_state().set_commit(commit);
        }
        route(inboxes, light.take_messages());
        self.apply(light.take_committed_entries());
        self.raw.advance_apply();
    }

    /// The state machine does nothing but record the index; entries must arrive in order.
    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            assert_eq!(
                entry.index,
                self.applied + 1,
                "entries are applied in order, without gaps"
            );
            assert_eq!(
                entry.get_entry_type(),
                EntryType::EntryNormal,
                "no configuration change is proposed"
            );
            self.applied = entry.index;
        }
    }
}

/// Benchmark settings, the same on every node.
fn config(id: u64) -> Config {
    Config {
        id,
        // The harness never ticks, so these two only have to be valid (election > heartbeat);
        // they are the usual 10:1 ratio.
        election_tick: 10,
        heartbeat_tick: 1,
        // 1 MiB per `MsgAppend`: a batch of 256 × 128 B (32 KiB) never hits it.
        max_size_per_msg: 1024 * 1024,
        // Up to 256 `MsgAppend`s in flight per follower: the leader sends one per proposal,
        // so this is about a batch of 256 before it must wait for acknowledgements.
        max_inflight_msgs: 256,
        // Off (the raft-rs defaults, stated because the other contender must match them):
        // check-quorum acts only on ticks (a leader that heard from no quorum for an election
        // timeout steps down) and pre-vote only adds a round to elections (Raft thesis §9.6);
        // the harness never ticks and elects once, so neither is on the measured path.
        check_quorum: false,
        pre_vote: false,
        ..Config::default()
    }
}

fn index(id: u64) -> usize {
    usize::try_from(id - 1).expect("node ids are small")
}

/// Delivers `messages` to their recipients' inboxes: a perfect network, no loss, no reordering
/// per sender, no encoding.
fn route(inboxes: &mut [Vec<Message>], messages: Vec<Message>) {
    for m in messages {
        inboxes[index(m.to)].push(m);
    }
}
