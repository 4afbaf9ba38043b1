//! A small deterministic harness for driving `RaftNode`s by hand, shared by
//! the behaviour tests (in the spirit of etcd's `network` in
//! `raft_paper_test.go` and raft-rs's test `Network`).
//!
//! Two ways to use it:
//! - single nodes fed hand-written messages ([`drain`], [`msg`] and the
//!   body builders), to check the exact messages a node answers with;
//! - a [`Network`] of nodes with `u64` ids: a FIFO queue of messages, links
//!   that can be cut, a rewriting filter, synchronous persistence (or
//!   manual, per node), and a record of what each node applied and read.
//!
//! Nothing here is random: delivery order is the order messages were sent.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use dsys_consensus::{
    AppendOutcome, Config, Entry, HardState, Index, JointLeave, MemStorage, Membership,
    MembershipChange, MembershipError, Message, MessageBody, Output, Persist, ProposalId,
    ProposeError, RaftNode, ReadError, ReadState, Role, SnapshotAbortReason, SnapshotMeta, Storage,
    Term, TransferError,
};

/// A node as the tests use it.
pub(crate) type Node = RaftNode<MemStorage<u64>>;
/// A message between test nodes.
pub(crate) type Msg = Message<u64>;
/// An output of a test node.
pub(crate) type Out = Output<Msg, HardState<u64>, u64>;

/// Most messages one [`Network::deliver_all`] may deliver before it is
/// called a livelock.
const DELIVERY_BOUND: usize = 100_000;

// ---- Configuration and construction ----

/// Raft as in the paper's §5: neither pre-vote nor check-quorum, election
/// timeout 10 ticks, heartbeat every tick, seeded by the node id.
pub(crate) fn paper_config(id: u64) -> Config {
    let mut config = Config::default();
    config.election_tick = 10;
    config.heartbeat_tick = 1;
    config.seed = id;
    config.pre_vote = false;
    config.check_quorum = false;
    config
}

/// [`paper_config`] with the thesis's pre-vote and check-quorum switched
/// as given.
pub(crate) fn thesis_config(id: u64, pre_vote: bool, check_quorum: bool) -> Config {
    let mut config = paper_config(id);
    config.pre_vote = pre_vote;
    config.check_quorum = check_quorum;
    config
}

/// Node `removed` was cut off and removed, and holds the old membership:
/// it campaigns for 50 ticks, then its links heal. With pre-vote or
/// check-quorum (thesis §4.2.3) leader 1 keeps its term and leadership,
/// and a new command reaches `witness`.
pub(crate) fn assert_rejoin_does_not_disrupt(net: &mut Network, removed: u64, witness: u64) {
    for _ in 0..50 {
        net.tick(removed);
    }
    let term = net.node(1).term();
    net.rejoin(removed);
    net.run(30);
    assert_eq!(net.node(1).term(), term, "the removed node moved the term");
    assert!(net.node(1).is_leader());
    net.propose(1, "x").expect("still leads");
    net.run(2);
    assert_eq!(
        net.applied_data(witness).last(),
        Some(&Bytes::from_static(b"x"))
    );
}

/// Entries `first, first + 1, ...` with the given terms and empty payloads.
pub(crate) fn ents(first: Index, terms: &[Term]) -> Vec<Entry<u64>> {
    terms
        .iter()
        .zip(first..)
        .map(|(&term, index)| Entry::new(term, index, Bytes::new()))
        .collect()
}

/// A node named `id` of cluster `voters` with an empty log.
pub(crate) fn new_node(id: u64, voters: &[u64], config: Config) -> Node {
    RaftNode::new(id, MemStorage::new(voters.to_vec()), config).expect("valid test configuration")
}

/// A node whose stable log holds entries with `terms` (from index 1), in
/// term `term` without a vote, with `commit` committed.
pub(crate) fn node_with_log(
    id: u64,
    voters: &[u64],
    terms: &[Term],
    term: Term,
    commit: Index,
    config: Config,
) -> Node {
    let mut storage = MemStorage::new(voters.to_vec());
    storage
        .append(&ents(1, terms))
        .expect("entries from index 1 start the log");
    storage.set_hard_state(HardState {
        term,
        vote: None,
        commit,
    });
    RaftNode::new(id, storage, config).expect("valid test configuration")
}

// ---- Single nodes ----

/// Writes a persist batch into the node's storage, without acknowledging it.
pub(crate) fn write(node: &mut Node, persist: &Persist<HardState<u64>, u64>) {
    if let Some(hard_state) = &persist.hard_state {
        node.storage_mut().set_hard_state(hard_state.clone());
    }
    node.storage_mut()
        .append(&persist.entries)
        .expect("the node hands out entries that continue its stable log");
}

/// Drains every output of a standalone node, persisting each batch at once
/// (write, then `on_persisted`). Returns all outputs in order.
pub(crate) fn drain(node: &mut Node) -> Vec<Out> {
    let mut outputs = Vec::new();
    while let Some(output) = node.poll_output() {
        if let Output::Persist(persist) = &output {
            write(node, persist);
            node.on_persisted(persist.id);
        }
        outputs.push(output);
    }
    outputs
}

/// Drains every output without acknowledging any persist (they are neither
/// written nor acknowledged): the application's writes are still running.
pub(crate) fn drain_unpersisted(node: &mut Node) -> Vec<Out> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

/// The messages among `outputs`.
pub(crate) fn sends(outputs: &[Out]) -> Vec<Msg> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// The persist batches among `outputs`.
pub(crate) fn persists(outputs: &[Out]) -> Vec<Persist<HardState<u64>, u64>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Persist(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// The entries handed out to apply among `outputs`.
pub(crate) fn applied(outputs: &[Out]) -> Vec<Entry<u64>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Apply(entries) => Some(entries.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Drains a standalone node and returns only its messages.
pub(crate) fn drain_sends(node: &mut Node) -> Vec<Msg> {
    sends(&drain(node))
}

/// Hands `message` to the node and drains it, returning all outputs.
pub(crate) fn step(node: &mut Node, message: Msg) -> Vec<Out> {
    node.handle_message(message);
    drain(node)
}

/// Makes a standalone node leader by campaigning and granting every vote
/// (and pre-vote) it asks for. Returns the messages it sent on winning.
pub(crate) fn make_leader(node: &mut Node) -> Vec<Msg> {
    node.campaign();
    let mut out = drain_sends(node);
    for _ in 0..2 {
        if node.is_leader() {
            break;
        }
        let requests: Vec<Msg> = out
            .iter()
            .filter(|m| matches!(m.body, MessageBody::VoteRequest { .. }))
            .cloned()
            .collect();
        out.clear();
        for request in requests {
            let MessageBody::VoteRequest { pre_vote, .. } = request.body else {
                unreachable!("filtered above");
            };
            out.extend(sends(&step(
                node,
                msg(
                    request.to,
                    request.from,
                    request.term,
                    MessageBody::VoteResponse {
                        pre_vote,
                        granted: true,
                    },
                ),
            )));
        }
    }
    assert!(
        node.is_leader(),
        "granted every vote, yet not leader: {:?}",
        node.status()
    );
    out
}

/// The node's whole log (persisted or not).
pub(crate) fn log_entries(node: &Node) -> Vec<Entry<u64>> {
    let log = node.log();
    log.slice(log.first_index(), log.last_index() + 1, u64::MAX)
        .expect("the whole log is readable")
}

/// The terms of the node's log, from index 1.
pub(crate) fn log_terms(node: &Node) -> Vec<Term> {
    log_entries(node).iter().map(|e| e.term).collect()
}

// ---- Message builders ----

/// A message.
pub(crate) fn msg(from: u64, to: u64, term: Term, body: MessageBody<u64>) -> Msg {
    Message {
        from,
        to,
        term,
        body,
    }
}

/// AppendEntries.
pub(crate) fn append(
    prev_index: Index,
    prev_term: Term,
    entries: Vec<Entry<u64>>,
    commit: Index,
) -> MessageBody<u64> {
    MessageBody::Append {
        prev_index,
        prev_term,
        entries,
        commit,
    }
}

/// A positive answer to AppendEntries.
pub(crate) fn accepted(last_index: Index) -> MessageBody<u64> {
    MessageBody::AppendResponse(AppendOutcome::Accepted { last_index })
}

/// A negative answer to AppendEntries.
pub(crate) fn rejected(rejected: Index, hint_index: Index, hint_term: Term) -> MessageBody<u64> {
    MessageBody::AppendResponse(AppendOutcome::Rejected {
        rejected,
        hint_index,
        hint_term,
    })
}

/// RequestVote (not a pre-vote, not for a transfer).
pub(crate) fn vote_request(last_index: Index, last_term: Term) -> MessageBody<u64> {
    MessageBody::VoteRequest {
        pre_vote: false,
        last_index,
        last_term,
        leadership_transfer: false,
        priority: 0,
    }
}

/// A pre-vote request.
pub(crate) fn pre_vote_request(last_index: Index, last_term: Term) -> MessageBody<u64> {
    MessageBody::VoteRequest {
        pre_vote: true,
        last_index,
        last_term,
        leadership_transfer: false,
        priority: 0,
    }
}

/// An answer to RequestVote.
pub(crate) fn vote_response(granted: bool) -> MessageBody<u64> {
    MessageBody::VoteResponse {
        pre_vote: false,
        granted,
    }
}

/// A heartbeat.
pub(crate) fn heartbeat(commit: Index, read_round: u64) -> MessageBody<u64> {
    MessageBody::Heartbeat { commit, read_round }
}

// ---- The network ----

/// Something a node handed to its application, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Entries to apply.
    Apply(Vec<Entry<u64>>),
    /// A read that may be served.
    ReadReady(ReadState),
    /// A read that failed.
    ReadFailed(u64),
    /// The state machine was replaced by a snapshot's (the payloads it
    /// had applied, no-ops left out).
    Restored(SnapshotMeta<u64>, Vec<Bytes>),
    /// Leader: a snapshot transfer ended.
    SendEnded {
        /// The follower.
        to: u64,
        /// The snapshot.
        index: Index,
        /// Why it ended early.
        aborted: Option<SnapshotAbortReason>,
    },
    /// Follower: a staged snapshot was dropped.
    Aborted(Index, SnapshotAbortReason),
}

/// A leader's request for a snapshot chunk, held for the test to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkRequest {
    /// The follower.
    pub(crate) to: u64,
    /// The snapshot.
    pub(crate) index: Index,
    /// Where.
    pub(crate) offset: u64,
    /// How much at most.
    pub(crate) max_len: u64,
}

/// Encodes a state machine (the payloads applied) as snapshot bytes:
/// each payload with a 4-byte length before it.
pub(crate) fn encode_state(data: &[Bytes]) -> Bytes {
    let mut out = Vec::new();
    for d in data {
        out.extend_from_slice(&u32::try_from(d.len()).expect("small").to_le_bytes());
        out.extend_from_slice(d);
    }
    Bytes::from(out)
}

/// Decodes [`encode_state`].
pub(crate) fn decode_state(mut bytes: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
        out.push(Bytes::copy_from_slice(&bytes[4..4 + len]));
        bytes = &bytes[4 + len..];
    }
    out
}

/// Rewrites or drops (`None`) a message on its way.
pub(crate) type Filter = Box<dyn FnMut(Msg) -> Option<Msg>>;

/// Nodes exchanging messages through one FIFO queue.
pub(crate) struct Network {
    nodes: BTreeMap<u64, Node>,
    queue: VecDeque<Msg>,
    /// Directed links that lose every message.
    cut: BTreeSet<(u64, u64)>,
    filter: Option<Filter>,
    /// Nodes whose writes wait for [`Network::persist_next`].
    manual_persist: BTreeSet<u64>,
    pending_persist: BTreeMap<u64, VecDeque<Persist<HardState<u64>, u64>>>,
    events: BTreeMap<u64, Vec<Event>>,
    /// Every message delivered, after the filter, in order.
    delivered: Vec<Msg>,
    /// Messages lost to cut links or the filter.
    dropped: usize,
    /// Each node's latest durable snapshot and its bytes.
    snapshots: BTreeMap<u64, (SnapshotMeta<u64>, Bytes)>,
    /// Every snapshot each node took or installed, by (node, index): a
    /// transfer keeps reading the one it began with.
    archive: BTreeMap<(u64, Index), Bytes>,
    /// Each node's staging area for a snapshot being received.
    staging: BTreeMap<u64, Vec<u8>>,
    /// Nodes whose chunk requests wait for [`Network::answer_chunk`].
    manual_chunks: BTreeSet<u64>,
    chunk_requests: BTreeMap<u64, VecDeque<ChunkRequest>>,
    /// Nodes whose restores wait for [`Network::finish_restore`].
    manual_restore: BTreeSet<u64>,
    pending_restore: BTreeMap<u64, SnapshotMeta<u64>>,
}

impl Network {
    /// Nodes `ids` with [`paper_config`].
    pub(crate) fn new(ids: &[u64]) -> Self {
        Self::with_config(ids, paper_config)
    }

    /// Nodes `ids`, each with `config(id)`.
    pub(crate) fn with_config(ids: &[u64], config: impl Fn(u64) -> Config) -> Self {
        Self::from_nodes(
            ids.iter()
                .map(|&id| new_node(id, ids, config(id)))
                .collect(),
        )
    }

    /// A network of prepared nodes.
    pub(crate) fn from_nodes(nodes: Vec<Node>) -> Self {
        let mut network = Self {
            nodes: nodes.into_iter().map(|n| (*n.id(), n)).collect(),
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            filter: None,
            manual_persist: BTreeSet::new(),
            pending_persist: BTreeMap::new(),
            events: BTreeMap::new(),
            delivered: Vec::new(),
            dropped: 0,
            snapshots: BTreeMap::new(),
            archive: BTreeMap::new(),
            staging: BTreeMap::new(),
            manual_chunks: BTreeSet::new(),
            chunk_requests: BTreeMap::new(),
            manual_restore: BTreeSet::new(),
            pending_restore: BTreeMap::new(),
        };
        let ids: Vec<u64> = network.nodes.keys().copied().collect();
        for id in ids {
            network.drain(id);
        }
        network
    }

    /// The node named `id`.
    pub(crate) fn node(&self, id: u64) -> &Node {
        self.nodes.get(&id).expect("no such node")
    }

    /// The node named `id`, mutably (drain it afterwards with
    /// [`Network::drain`]).
    pub(crate) fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes.get_mut(&id).expect("no such node")
    }

    /// The node ids.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Takes every output of node `id`: persists (at once unless manual),
    /// queues messages, records applies and reads.
    pub(crate) fn drain(&mut self, id: u64) {
        let manual = self.manual_persist.contains(&id);
        loop {
            let node = self.nodes.get_mut(&id).expect("no such node");
            let Some(output) = node.poll_output() else {
                break;
            };
            match output {
                Output::Persist(persist) if manual => {
                    self.pending_persist
                        .entry(id)
                        .or_default()
                        .push_back(persist);
                }
                Output::Persist(persist) => {
                    write(node, &persist);
                    node.on_persisted(persist.id);
                }
                Output::Send(message) => self.queue.push_back(message),
                Output::Apply(entries) => self
                    .events
                    .entry(id)
                    .or_default()
                    .push(Event::Apply(entries)),
                Output::ReadReady(read) => self
                    .events
                    .entry(id)
                    .or_default()
                    .push(Event::ReadReady(read)),
                Output::ReadFailed { id: read } => {
                    self.events
                        .entry(id)
                        .or_default()
                        .push(Event::ReadFailed(read));
                }
                Output::ReadSnapshot {
                    to,
                    index,
                    offset,
                    max_len,
                } => {
                    let request = ChunkRequest {
                        to,
                        index,
                        offset,
                        max_len,
                    };
                    if self.manual_chunks.contains(&id) {
                        self.chunk_requests
                            .entry(id)
                            .or_default()
                            .push_back(request);
                    } else {
                        let (data, last) = self.read_chunk(id, &request);
                        self.nodes
                            .get_mut(&id)
                            .expect("no such node")
                            .snapshot_chunk(&to, index, offset, data, last)
                            .expect("the chunk asked for");
                    }
                }
                Output::SnapshotSendEnded { to, index, aborted } => {
                    self.events.entry(id).or_default().push(Event::SendEnded {
                        to,
                        index,
                        aborted,
                    });
                }
                Output::SnapshotChunk { offset, data, .. } => {
                    let staging = self.staging.entry(id).or_default();
                    if offset == 0 {
                        // The first chunk starts the staging over.
                        staging.clear();
                    }
                    assert_eq!(staging.len() as u64, offset, "chunks come in order");
                    staging.extend_from_slice(&data);
                }
                Output::RestoreSnapshot(meta) => {
                    if self.manual_restore.contains(&id) {
                        self.pending_restore.insert(id, meta);
                    } else {
                        self.restore(id, meta);
                    }
                }
                Output::SnapshotAborted { index, reason } => {
                    self.staging.remove(&id);
                    self.events
                        .entry(id)
                        .or_default()
                        .push(Event::Aborted(index, reason));
                }
            }
        }
    }

    // ---- Snapshots: the application's side ----

    /// The bytes a chunk request asks for, from the node's durable
    /// snapshot.
    pub(crate) fn read_chunk(&self, id: u64, request: &ChunkRequest) -> (Bytes, bool) {
        let data = self
            .archive
            .get(&(id, request.index))
            .expect("the leader kept the snapshot it sends");
        let start = usize::try_from(request.offset).expect("small");
        let end = (start + usize::try_from(request.max_len).expect("small")).min(data.len());
        (data.slice(start..end), end == data.len())
    }

    /// Node `id` snapshots its state machine at its applied index, makes
    /// it durable, and compacts its log as far as
    /// `compaction_limit()` allows. Returns the snapshot's index.
    pub(crate) fn snapshot_and_compact(&mut self, id: u64) -> Index {
        let index = self.take_snapshot(id);
        self.compact(id);
        index
    }

    /// Node `id` snapshots its state machine at its applied index and
    /// records it durably (no compaction).
    pub(crate) fn take_snapshot(&mut self, id: u64) -> Index {
        let data = encode_state(&self.applied_data(id));
        let node = self.nodes.get_mut(&id).expect("no such node");
        let applied = node.log().applied();
        let meta = node
            .snapshot_meta(applied)
            .expect("applied is snapshottable");
        node.storage_mut()
            .set_snapshot(meta.clone())
            .expect("the applied entry is in the log");
        self.archive.insert((id, applied), data.clone());
        self.snapshots.insert(id, (meta, data));
        applied
    }

    /// Node `id` compacts its log to its `compaction_limit()`.
    pub(crate) fn compact(&mut self, id: u64) -> Index {
        let node = self.nodes.get_mut(&id).expect("no such node");
        let limit = node.compaction_limit();
        node.storage_mut()
            .compact(limit)
            .expect("compaction within the limit");
        limit
    }

    /// Restores node `id` from its staged snapshot: state machine, storage,
    /// then `on_snapshot_restored`.
    fn restore(&mut self, id: u64, meta: SnapshotMeta<u64>) {
        let data = Bytes::from(self.staging.remove(&id).unwrap_or_default());
        self.events
            .entry(id)
            .or_default()
            .push(Event::Restored(meta.clone(), decode_state(&data)));
        let node = self.nodes.get_mut(&id).expect("no such node");
        node.storage_mut().apply_snapshot(meta.clone());
        node.on_snapshot_restored(meta.index)
            .expect("the restore is pending and durable");
        self.archive.insert((id, meta.index), data.clone());
        self.snapshots.insert(id, (meta, data));
        self.drain(id);
    }

    /// Whether node `id`'s chunk requests wait for the test.
    pub(crate) fn set_manual_chunks(&mut self, id: u64, manual: bool) {
        if manual {
            self.manual_chunks.insert(id);
        } else {
            self.manual_chunks.remove(&id);
        }
    }

    /// The chunk requests node `id` made that wait for an answer.
    pub(crate) fn take_chunk_requests(&mut self, id: u64) -> Vec<ChunkRequest> {
        self.chunk_requests
            .remove(&id)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// Answers a held chunk request of node `id` from its snapshot.
    pub(crate) fn answer_chunk(
        &mut self,
        id: u64,
        request: &ChunkRequest,
    ) -> Result<(), dsys_consensus::SnapshotError> {
        let (data, last) = self.read_chunk(id, request);
        let node = self.nodes.get_mut(&id).expect("no such node");
        let result = node.snapshot_chunk(&request.to, request.index, request.offset, data, last);
        self.drain(id);
        result
    }

    /// Whether node `id`'s restores wait for [`Network::finish_restore`].
    pub(crate) fn set_manual_restore(&mut self, id: u64, manual: bool) {
        if manual {
            self.manual_restore.insert(id);
        } else {
            self.manual_restore.remove(&id);
        }
    }

    /// The restore node `id` waits on, if any.
    pub(crate) fn pending_restore(&self, id: u64) -> Option<&SnapshotMeta<u64>> {
        self.pending_restore.get(&id)
    }

    /// Completes node `id`'s held restore. Returns false if none.
    pub(crate) fn finish_restore(&mut self, id: u64) -> bool {
        let Some(meta) = self.pending_restore.remove(&id) else {
            return false;
        };
        self.restore(id, meta);
        true
    }

    /// Node `id`'s durable snapshot, if any.
    pub(crate) fn snapshot(&self, id: u64) -> Option<&SnapshotMeta<u64>> {
        self.snapshots.get(&id).map(|(meta, _)| meta)
    }

    /// Delivers the oldest queued message (unless its link is cut or the
    /// filter drops it). Returns false when the queue is empty.
    pub(crate) fn deliver_one(&mut self) -> bool {
        let Some(message) = self.queue.pop_front() else {
            return false;
        };
        if self.cut.contains(&(message.from, message.to)) || !self.nodes.contains_key(&message.to) {
            self.dropped += 1;
            return true;
        }
        let message = match self.filter.as_mut() {
            Some(filter) => filter(message),
            None => Some(message),
        };
        let Some(message) = message else {
            self.dropped += 1;
            return true;
        };
        let to = message.to;
        self.delivered.push(message.clone());
        self.nodes
            .get_mut(&to)
            .expect("checked above")
            .handle_message(message);
        self.drain(to);
        true
    }

    /// Delivers messages until none is left. Panics past a bound (a
    /// livelock: the nodes keep talking without ticks).
    pub(crate) fn deliver_all(&mut self) {
        for _ in 0..DELIVERY_BOUND {
            if !self.deliver_one() {
                return;
            }
        }
        panic!("still delivering after {DELIVERY_BOUND} messages: livelock");
    }

    /// The messages waiting to be delivered.
    pub(crate) fn queue(&self) -> &VecDeque<Msg> {
        &self.queue
    }

    /// Empties the queue, returning what was in it.
    pub(crate) fn take_queue(&mut self) -> Vec<Msg> {
        self.queue.drain(..).collect()
    }

    /// Puts a message on the queue.
    pub(crate) fn send(&mut self, message: Msg) {
        self.queue.push_back(message);
    }

    /// Every message delivered so far (after the filter).
    pub(crate) fn delivered(&self) -> &[Msg] {
        &self.delivered
    }

    /// Forgets the delivered messages.
    pub(crate) fn clear_delivered(&mut self) {
        self.delivered.clear();
    }

    /// Messages lost so far.
    pub(crate) fn dropped(&self) -> usize {
        self.dropped
    }

    // ---- Faults ----

    /// Loses every message between `a` and `b`, both ways.
    pub(crate) fn cut(&mut self, a: u64, b: u64) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Restores the link between `a` and `b`, both ways.
    pub(crate) fn uncut(&mut self, a: u64, b: u64) {
        self.cut.remove(&(a, b));
        self.cut.remove(&(b, a));
    }

    /// Loses every message from `from` to `to`.
    pub(crate) fn cut_one_way(&mut self, from: u64, to: u64) {
        self.cut.insert((from, to));
    }

    /// Cuts `id` off from every other node.
    pub(crate) fn isolate(&mut self, id: u64) {
        for other in self.ids() {
            if other != id {
                self.cut(id, other);
            }
        }
    }

    /// Restores every link of `id`.
    pub(crate) fn rejoin(&mut self, id: u64) {
        self.cut.retain(|&(a, b)| a != id && b != id);
    }

    /// Restores every link and removes the filter.
    pub(crate) fn heal(&mut self) {
        self.cut.clear();
        self.filter = None;
    }

    /// Passes every delivered message through `filter`.
    pub(crate) fn set_filter(&mut self, filter: impl FnMut(Msg) -> Option<Msg> + 'static) {
        self.filter = Some(Box::new(filter));
    }

    /// Removes the filter.
    pub(crate) fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// Crashes node `id` and restarts it from what it persisted: writes
    /// still pending are lost, and so is its state machine (its recorded
    /// events start over, as it re-applies the committed log).
    pub(crate) fn restart(&mut self, id: u64) {
        let node = self.nodes.remove(&id).expect("no such node");
        let storage = node.storage().clone();
        let mut config = node.config().clone();
        config.applied = 0;
        self.pending_persist.remove(&id);
        self.events.remove(&id);
        self.staging.remove(&id);
        self.chunk_requests.remove(&id);
        self.pending_restore.remove(&id);
        // The state machine restarts from the durable snapshot, if any.
        if let Some((meta, data)) = self.snapshots.get(&id) {
            if storage.snapshot().as_ref() == Some(meta) {
                self.events
                    .entry(id)
                    .or_default()
                    .push(Event::Restored(meta.clone(), decode_state(data)));
            }
        }
        let restarted = RaftNode::new(id, storage, config).expect("restarts from its own storage");
        self.nodes.insert(id, restarted);
        self.drain(id);
    }

    // ---- Persistence ----

    /// Whether node `id`'s writes wait for [`Network::persist_next`].
    pub(crate) fn set_manual_persist(&mut self, id: u64, manual: bool) {
        if manual {
            self.manual_persist.insert(id);
        } else {
            self.manual_persist.remove(&id);
            while self.persist_next(id) {}
        }
    }

    /// Completes node `id`'s oldest pending write. Returns false if none.
    pub(crate) fn persist_next(&mut self, id: u64) -> bool {
        let Some(persist) = self
            .pending_persist
            .get_mut(&id)
            .and_then(VecDeque::pop_front)
        else {
            return false;
        };
        let node = self.nodes.get_mut(&id).expect("no such node");
        write(node, &persist);
        node.on_persisted(persist.id);
        self.drain(id);
        true
    }

    /// Writes waiting on node `id`.
    pub(crate) fn pending_persists(&self, id: u64) -> usize {
        self.pending_persist.get(&id).map_or(0, VecDeque::len)
    }

    // ---- Inputs ----

    /// Ticks node `id` once.
    pub(crate) fn tick(&mut self, id: u64) {
        self.node_mut(id).tick();
        self.drain(id);
    }

    /// Ticks every node once.
    pub(crate) fn tick_all(&mut self) {
        for id in self.ids() {
            self.tick(id);
        }
    }

    /// Ticks every node and delivers, until `done` holds. Returns the
    /// number of rounds taken; panics after `max_rounds`.
    pub(crate) fn run_until(
        &mut self,
        max_rounds: usize,
        mut done: impl FnMut(&Self) -> bool,
    ) -> usize {
        for round in 0..=max_rounds {
            if done(self) {
                return round;
            }
            self.tick_all();
            self.deliver_all();
        }
        panic!("condition not reached within {max_rounds} rounds");
    }

    /// Ticks every node and delivers, `rounds` times.
    pub(crate) fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.tick_all();
            self.deliver_all();
        }
    }

    /// Node `id` starts an election (its outputs are queued, not delivered).
    pub(crate) fn campaign(&mut self, id: u64) {
        self.node_mut(id).campaign();
        self.drain(id);
    }

    /// Node `id` campaigns, and every message is delivered; it must win.
    pub(crate) fn elect(&mut self, id: u64) {
        self.campaign(id);
        self.deliver_all();
        assert_eq!(
            self.node(id).role(),
            Role::Leader,
            "node {id} did not win: {:?}",
            self.node(id).status()
        );
    }

    /// Proposes on node `id` (outputs queued); the index it got.
    pub(crate) fn propose(
        &mut self,
        id: u64,
        data: &'static str,
    ) -> Result<Index, ProposeError<u64>> {
        self.propose_tracked(id, data).map(|p| p.index)
    }

    /// Proposes on node `id` (outputs queued); its term and index.
    pub(crate) fn propose_tracked(
        &mut self,
        id: u64,
        data: &'static str,
    ) -> Result<ProposalId, ProposeError<u64>> {
        let result = self
            .node_mut(id)
            .propose(Bytes::from_static(data.as_bytes()));
        self.drain(id);
        result
    }

    /// Starts node `id` with an empty membership: it joins once a leader
    /// adds it and replicates to it.
    pub(crate) fn add_joining(&mut self, id: u64, config: Config) {
        let node = RaftNode::new(id, MemStorage::new(Vec::new()), config)
            .expect("a joining node starts empty");
        self.nodes.insert(id, node);
        self.drain(id);
    }

    /// Proposes a membership change on node `id` (outputs queued).
    pub(crate) fn propose_membership(
        &mut self,
        id: u64,
        change: dsys_consensus::MembershipChange<u64>,
    ) -> Result<ProposalId, dsys_consensus::MembershipError<u64>> {
        let result = self.node_mut(id).propose_membership(change);
        self.drain(id);
        result
    }

    /// Asks node `id` for read `read` (outputs queued).
    pub(crate) fn read_index(&mut self, id: u64, read: u64) -> Result<(), ReadError> {
        let result = self.node_mut(id).read_index(read);
        self.drain(id);
        result
    }

    /// Asks leader `id` to hand leadership to `target` (outputs queued).
    pub(crate) fn transfer(&mut self, id: u64, target: u64) -> Result<(), TransferError> {
        let result = self.node_mut(id).transfer_leadership(target);
        self.drain(id);
        result
    }

    // ---- Observations ----

    /// What node `id` handed to its application, in order.
    pub(crate) fn events(&self, id: u64) -> &[Event] {
        self.events.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The entries node `id` applied, in order.
    pub(crate) fn applied(&self, id: u64) -> Vec<Entry<u64>> {
        self.events(id)
            .iter()
            .filter_map(|e| match e {
                Event::Apply(entries) => Some(entries.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The payloads node `id`'s state machine holds, without the leaders'
    /// empty no-ops: a restored snapshot's, then those applied after it.
    pub(crate) fn applied_data(&self, id: u64) -> Vec<Bytes> {
        let mut out = Vec::new();
        for event in self.events(id) {
            match event {
                Event::Restored(_, data) => out.clone_from(data),
                Event::Apply(entries) => out.extend(
                    entries
                        .iter()
                        .map(|e| e.data.clone())
                        .filter(|d| !d.is_empty()),
                ),
                _ => {}
            }
        }
        out
    }

    /// The reads node `id` may serve, in order.
    pub(crate) fn reads_ready(&self, id: u64) -> Vec<ReadState> {
        self.events(id)
            .iter()
            .filter_map(|e| match e {
                Event::ReadReady(r) => Some(*r),
                _ => None,
            })
            .collect()
    }

    /// The reads that failed on node `id`, in order.
    pub(crate) fn reads_failed(&self, id: u64) -> Vec<u64> {
        self.events(id)
            .iter()
            .filter_map(|e| match e {
                Event::ReadFailed(r) => Some(*r),
                _ => None,
            })
            .collect()
    }

    /// The nodes that consider themselves leader.
    pub(crate) fn leaders(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.is_leader())
            .map(|n| *n.id())
            .collect()
    }

    /// The one leader of the highest term among the leaders, if any.
    pub(crate) fn leader(&self) -> Option<u64> {
        self.nodes
            .values()
            .filter(|n| n.is_leader())
            .max_by_key(|n| n.term())
            .map(|n| *n.id())
    }

    /// The terms of node `id`'s log.
    pub(crate) fn log_terms(&self, id: u64) -> Vec<Term> {
        log_terms(self.node(id))
    }

    /// Node `id`'s whole log.
    pub(crate) fn log_entries(&self, id: u64) -> Vec<Entry<u64>> {
        log_entries(self.node(id))
    }
}

/// The membership of `voters` and `learners`.
pub(crate) fn members(voters: &[u64], learners: &[u64]) -> Membership<u64> {
    Membership::new(voters.iter().copied(), learners.iter().copied())
}

/// Proposes a joint change on node `id` (outputs queued).
pub(crate) fn propose_joint(
    net: &mut Network,
    id: u64,
    changes: impl IntoIterator<Item = MembershipChange<u64>>,
    leave: JointLeave,
) -> Result<ProposalId, MembershipError<u64>> {
    let result = net.node_mut(id).propose_joint(changes, leave);
    net.drain(id);
    result
}

/// Proposes leaving the joint configuration on node `id` (outputs queued).
pub(crate) fn propose_leave(
    net: &mut Network,
    id: u64,
) -> Result<ProposalId, MembershipError<u64>> {
    let result = net.node_mut(id).propose_leave_joint();
    net.drain(id);
    result
}
