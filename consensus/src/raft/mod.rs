//! The Raft node (Ongaro & Ousterhout 2014; Ongaro's thesis 2014): one
//! deterministic state machine per server. Messages, ticks, proposals and
//! persistence acknowledgements go in; messages, batches to persist,
//! committed entries and read confirmations come out through
//! [`RaftNode::poll_output`].
//!
//! The protocol is split by concept: [`election`] (§5.2, pre-vote and
//! check-quorum from thesis §9.6), [`replication`] (§5.3–§5.4),
//! [`read`] (ReadIndex and lease reads, thesis §6.4), [`transfer`]
//! (leadership transfer, thesis §3.10), [`snapshot`] (§7), [`membership`]
//! (thesis §4; joint consensus in [`membership::joint`]), [`quiesce`] (idle
//! groups) and [`status`] (counters and status). This module holds the
//! state they share, term handling (§5.1) and the persistence contract.

mod election;
mod membership;
mod quiesce;
mod read;
mod replication;
mod snapshot;
mod status;
mod transfer;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;

use bytes::Bytes;

use crate::config::{Config, RestartError};
use crate::entry::{HardState, Index, Term};
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::output::{Output, PersistId, ProposalId, ProposeError, ReadError, ReplicatedLog};
use crate::progress::Progress;
use crate::quorum::JointMajority;
use crate::storage::Storage;

pub use status::{Counters, Status};
pub use transfer::TransferError;

/// What a node id must support: `Clone + Eq + Ord + Hash + Debug`, the
/// bound set every dsys crate uses. It is implemented for every type that
/// has them, so users bring their own (`u64`, `String`, a `SocketAddr`, a
/// UUID type) unchanged. Ids are cloned into messages and kept in ordered
/// maps (deterministic iteration), and printed in traces.
pub trait NodeId: Clone + Eq + Ord + Hash + Debug {}
impl<T: Clone + Eq + Ord + Hash + Debug> NodeId for T {}

/// A node's role (§5.1, Figure 4), plus the pre-vote stage of thesis §9.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Role {
    /// Answers leaders and candidates.
    Follower,
    /// Asking whether it could win, without changing terms.
    PreCandidate,
    /// Campaigning in a new term.
    Candidate,
    /// Accepting proposals and replicating them.
    Leader,
}

/// The leader's view of one peer.
#[derive(Debug, Clone)]
struct Peer<N> {
    progress: Progress,
    /// Heard from since the last check-quorum.
    recent_active: bool,
    /// Highest read round acknowledged.
    read_round: u64,
    /// The snapshot being sent to it, if one is.
    transfer: Option<snapshot::Outgoing<N>>,
    /// The index of the snapshot sent to it, kept from the start of the
    /// transfer until it replicates entries again: the log after it must
    /// not be compacted meanwhile.
    snapshot_floor: Option<Index>,
}

/// Messages wait here until the state they depend on is durable.
#[derive(Debug, Clone)]
struct Durability<N> {
    /// The id the next `Persist` gets.
    next_id: PersistId,
    /// Every id up to this one is durable.
    acked: PersistId,
    /// Handed out and not acknowledged: id, the last entry it carried, and
    /// the commit index of its hard state (if it carried one).
    issued: VecDeque<Issued>,
    /// The hard state as last handed out (or read from storage).
    handed: HardState<N>,
    /// The persist that carries the current term and vote.
    term_vote_id: PersistId,
    /// Messages and the persist id each waits for.
    held: VecDeque<(PersistId, Message<N>)>,
}

/// One persist batch handed out and not yet acknowledged.
#[derive(Debug, Clone, Copy)]
struct Issued {
    id: PersistId,
    /// Its last entry, if it carried entries.
    last: Option<(Index, Term)>,
}

/// The output type of a Raft node.
pub type RaftOutput<N> = Output<Message<N>, HardState<N>, N>;

/// One Raft server.
///
/// ```
/// use bytes::Bytes;
/// use dsys_consensus::{Config, MemStorage, Output, RaftNode};
///
/// // A single-node cluster elects itself and commits on its own.
/// let mut node = RaftNode::new(1u64, MemStorage::new(vec![1]), Config::default())?;
/// node.campaign();
/// let mut applied = Vec::new();
/// let mut drive = |node: &mut RaftNode<MemStorage<u64>>, applied: &mut Vec<Bytes>| {
///     while let Some(output) = node.poll_output() {
///         match output {
///             Output::Persist(p) => {
///                 if let Some(hs) = p.hard_state {
///                     node.storage_mut().set_hard_state(hs);
///                 }
///                 node.storage_mut().append(&p.entries).expect("entries continue the log");
///                 node.on_persisted(p.id);
///             }
///             Output::Apply(entries) => applied.extend(entries.into_iter().map(|e| e.data)),
///             _ => {}
///         }
///     }
/// };
/// drive(&mut node, &mut applied);
/// assert!(node.is_leader());
/// node.propose(Bytes::from("x=1")).expect("the leader accepts proposals");
/// drive(&mut node, &mut applied);
/// assert_eq!(applied, [Bytes::new(), Bytes::from("x=1")]); // the no-op, then ours
/// # Ok::<(), dsys_consensus::RestartError>(())
/// ```
#[derive(Debug)]
pub struct RaftNode<S: Storage> {
    id: S::NodeId,
    config: Config,
    log: RaftLog<S>,
    /// The voters in force, both sets while joint (cached from `history`).
    voters: JointMajority<S::NodeId>,
    /// The configuration entries of the log (thesis §4.1).
    history: membership::History<S::NodeId>,
    term: Term,
    vote: Option<S::NodeId>,
    role: Role,
    leader: Option<S::NodeId>,
    rng: fastrand::Rng,

    /// Ticks since this node started: the leader's clock for its lease.
    ticks: u64,
    // Timers, in ticks.
    election_elapsed: u32,
    /// Ticks since a leader of the current term was last heard from (or
    /// since a restart in lease mode, when one may have been): within
    /// `election_tick` of it, this node grants no vote, so a leader's
    /// lease holds (thesis §6.4.1). `None`: no leader heard.
    leader_contact: Option<u32>,
    heartbeat_elapsed: u32,
    randomized_election_timeout: u32,

    /// Answers in the current (pre-)election.
    votes: BTreeMap<S::NodeId, bool>,
    /// The leader's peers (every voter but itself).
    peers: BTreeMap<S::NodeId, Peer<S::NodeId>>,
    /// Entries appended and not yet broadcast (proposal batching).
    broadcast_pending: bool,
    /// Leader: uncommitted proposal sizes, by index.
    uncommitted: VecDeque<(Index, u64)>,
    uncommitted_size: u64,
    /// Leader: the peer leadership is being handed to.
    transfer_target: Option<S::NodeId>,

    reads: read::ReadQueue<S::NodeId>,
    /// Follower: the snapshot being received, if one is.
    incoming: Option<snapshot::Incoming<S::NodeId>>,

    durability: Durability<S::NodeId>,
    outbox: VecDeque<RaftOutput<S::NodeId>>,
    counters: Counters,
    /// Quiescence and the peers reported down.
    quiesce: quiesce::Quiescence<S::NodeId>,
}

impl<S> RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    /// A node named `id`, starting (or restarting) from what `storage`
    /// holds, as a follower.
    ///
    /// # Errors
    /// [`RestartError::Config`] if the configuration is inconsistent,
    /// [`RestartError::NotAVoter`] if `id` is not a voter in storage, and
    /// [`RestartError::AppliedBeyondLog`] if `config.applied` is past the
    /// last entry in storage (past the stored commit is fine: see
    /// [`Config::applied`]).
    pub fn new(id: S::NodeId, storage: S, config: Config) -> Result<Self, RestartError> {
        config.validate()?;
        let state = storage.initial_state();
        let bootstrap = state.membership.clone();
        let mut log = RaftLog::new(storage);
        // The commit index is written lazily (it is knowledge, not a
        // promise: thesis §3.8 keeps it volatile), so a state machine may
        // have applied past the one stored. It applied only entries that
        // were committed and durable here, and a committed entry is never
        // overwritten, so the stored log still holds them: they are
        // committed again (etcd's raft allows the same).
        if config.applied > log.committed() {
            log.commit_to(config.applied)
                .map_err(|_| RestartError::AppliedBeyondLog {
                    applied: config.applied,
                    last_index: log.last_index(),
                })?;
        }
        log.applied_to(config.applied);
        // The state machine restarts from the latest snapshot (at least).
        if let Some(snapshot) = log.storage().snapshot() {
            log.applied_to(snapshot.index);
        }
        let hard_state = state.hard_state;
        // A voter that acknowledged a heartbeat just before crashing must
        // honour that leader's lease after restarting (thesis §6.4.1): it
        // remembers nothing, so it assumes the contact was just now.
        let leader_contact = (config.read_only == crate::config::ReadOnlyOption::LeaseBased
            && hard_state.term > 0)
            .then_some(0);
        let mut node = Self {
            rng: fastrand::Rng::with_seed(config.seed),
            id,
            log,
            voters: membership::quorum_of(&bootstrap),
            history: membership::History::new(0, 0, bootstrap.clone()),
            term: hard_state.term,
            vote: hard_state.vote.clone(),
            role: Role::Follower,
            leader: None,
            ticks: 0,
            election_elapsed: 0,
            leader_contact,
            heartbeat_elapsed: 0,
            randomized_election_timeout: config.election_tick,
            votes: BTreeMap::new(),
            peers: BTreeMap::new(),
            broadcast_pending: false,
            uncommitted: VecDeque::new(),
            uncommitted_size: 0,
            transfer_target: None,
            reads: read::ReadQueue::default(),
            incoming: None,
            durability: Durability {
                next_id: 1,
                acked: 0,
                issued: VecDeque::new(),
                handed: hard_state,
                term_vote_id: 0,
                held: VecDeque::new(),
            },
            outbox: VecDeque::new(),
            counters: Counters::default(),
            quiesce: quiesce::Quiescence::default(),
            config,
        };
        node.recover_history(state.membership);
        // A node bootstrapped without being in its own bootstrap
        // membership is misconfigured (a joining node starts empty).
        if node.history.current_index() == 0
            && node.log.storage().snapshot().is_none()
            && !bootstrap.voters().is_empty()
            && !bootstrap.contains(&node.id)
        {
            return Err(RestartError::NotAVoter);
        }
        node.reset_election_timer();
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> &S::NodeId {
        &self.id
    }

    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The leader this node knows of (itself when it leads).
    pub fn leader(&self) -> Option<&S::NodeId> {
        self.leader.as_ref()
    }

    /// The log.
    pub fn log(&self) -> &RaftLog<S> {
        &self.log
    }

    /// The stable storage (read-only).
    pub fn storage(&self) -> &S {
        self.log.storage()
    }

    /// Mutable access to the stable storage, so the application can write
    /// what [`Output::Persist`] hands out (for [`MemStorage`](crate::MemStorage)).
    pub fn storage_mut(&mut self) -> &mut S {
        self.log.storage_mut()
    }

    /// The voters of the membership in force (of both sets while joint).
    pub fn voters(&self) -> &[S::NodeId] {
        self.voters.voters()
    }

    /// Ignored-input counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The election timeout drawn for the current term, in ticks.
    pub fn randomized_election_timeout(&self) -> u32 {
        self.randomized_election_timeout
    }

    /// The leader's replication progress for `peer` (`None` off the
    /// leader, or for itself).
    pub fn progress(&self, peer: &S::NodeId) -> Option<&Progress> {
        self.peers.get(peer).map(|p| &p.progress)
    }

    /// Bytes of proposals appended by this leader and not yet committed.
    pub fn uncommitted_size(&self) -> u64 {
        self.uncommitted_size
    }

    /// Messages waiting for a persistence acknowledgement.
    pub fn held_messages(&self) -> usize {
        self.durability.held.len()
    }

    /// Advances logical time by one tick: followers and candidates count
    /// towards an election, leaders towards heartbeats, check-quorum and
    /// quiescence. A quiesced node only advances its clock.
    pub fn tick(&mut self) {
        if self.tick_quiesced() {
            return;
        }
        self.ticks += 1;
        self.leader_contact = self.leader_contact.map(|t| t.saturating_add(1));
        self.expire_forwarded_reads();
        match self.role {
            Role::Leader => {
                self.tick_leader();
                self.maybe_quiesce();
            }
            _ => self.tick_election(),
        }
    }

    /// Handles a message from a peer (§5.1 term rules first, then the
    /// role's handler). Misaddressed messages, unknown senders and stale
    /// terms are ignored and counted.
    pub fn handle_message(&mut self, message: Message<S::NodeId>) {
        let from_leader = matches!(
            message.body,
            MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. }
        );
        let vote = matches!(message.body, MessageBody::VoteRequest { .. });
        if message.to != self.id
            || message.from == self.id
            || !self.accepts_from(&message.from, from_leader, vote)
        {
            self.counters.unknown_sender += 1;
            return;
        }
        if self.on_message_while_quiesced(&message) == quiesce::OnMessage::Drop {
            return;
        }
        if message.term > self.term {
            if !self.adopt_higher_term(&message) {
                return;
            }
        } else if message.term < self.term {
            self.handle_stale_term(&message);
            return;
        }
        let Message {
            from, term, body, ..
        } = message;
        match body {
            MessageBody::VoteRequest {
                pre_vote,
                last_index,
                last_term,
                priority,
                leadership_transfer,
            } => {
                // A transfer is the application's explicit choice of
                // leader: the priority hint does not overrule it.
                let priority = if leadership_transfer {
                    u64::MAX
                } else {
                    priority
                };
                self.handle_vote_request(from, term, pre_vote, (last_index, last_term), priority);
            }
            MessageBody::VoteResponse { pre_vote, granted } => {
                self.handle_vote_response(from, term, pre_vote, granted);
            }
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.handle_append(from, prev_index, prev_term, entries, commit),
            MessageBody::AppendResponse(outcome) => self.handle_append_response(from, outcome),
            MessageBody::Heartbeat { commit, read_round } => {
                self.handle_heartbeat(from, commit, read_round);
            }
            MessageBody::HeartbeatResponse { read_round } => {
                self.handle_heartbeat_response(from, read_round);
            }
            MessageBody::TimeoutNow => self.handle_timeout_now(from),
            MessageBody::Quiesce {
                commit,
                last_index,
                last_term,
            } => self.handle_quiesce(from, commit, last_index, last_term),
            MessageBody::ReadIndexRequest { id } => self.handle_read_index_request(from, id),
            MessageBody::ReadIndexResponse { id, index } => {
                self.handle_read_index_response(from, id, index);
            }
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                last,
            } => self.handle_install_snapshot(from, meta, offset, data, last),
            MessageBody::SnapshotResponse { index, outcome } => {
                self.handle_snapshot_response(from, index, outcome);
            }
        }
    }

    /// A message from a later term (§5.1): adopt the term and step down,
    /// except for the cases thesis §9.6 carves out. Returns whether the
    /// message should still be handled.
    fn adopt_higher_term(&mut self, message: &Message<S::NodeId>) -> bool {
        match &message.body {
            MessageBody::VoteRequest {
                pre_vote,
                leadership_transfer,
                ..
            } => {
                if self.in_leader_lease() && !leadership_transfer {
                    // Check-quorum's lease: a leader was heard from within
                    // the election timeout, so this candidate is disruptive.
                    self.counters.lease_ignored_votes += 1;
                    return false;
                }
                if !pre_vote {
                    let (elapsed, timeout) =
                        (self.election_elapsed, self.randomized_election_timeout);
                    let was_follower = self.role == Role::Follower;
                    self.become_follower(message.term, None);
                    if let MessageBody::VoteRequest {
                        last_index,
                        last_term,
                        ..
                    } = &message.body
                    {
                        if was_follower && !self.log.is_up_to_date(*last_index, *last_term) {
                            // A candidate whose log is behind can never
                            // win this node's vote: its term is taken, but
                            // it does not delay this node's own candidacy
                            // (§5.2 resets the timer only for a granted
                            // vote). Else a removed node that campaigns
                            // while its removal is uncommitted (thesis
                            // §4.2.2) could keep the one node that can win
                            // from ever timing out.
                            self.election_elapsed = elapsed;
                            self.randomized_election_timeout = timeout;
                        }
                    }
                }
                true
            }
            // A granted pre-vote carries the term we would campaign in.
            MessageBody::VoteResponse {
                pre_vote: true,
                granted: true,
            } => true,
            body => {
                let leader = body.is_from_leader().then(|| message.from.clone());
                self.become_follower(message.term, leader);
                true
            }
        }
    }

    /// A message from an earlier term is dropped, but a stale leader or
    /// pre-candidate is told the current term so it can catch up (without
    /// this, with check-quorum, a partitioned node that rejoins could
    /// never step down).
    fn handle_stale_term(&mut self, message: &Message<S::NodeId>) {
        self.counters.stale_term += 1;
        // Without check-quorum and pre-vote, etcd answers nothing and
        // counts on this node's own vote requests of the newer term to
        // bring the sender up to date. Those never reach the sender when
        // it does not vote in this node's membership (this node's
        // membership is stale, or the sender's), or when this node does
        // not vote in its own (a learner, a node removed or being
        // removed, which may never campaign): then it answers, or the
        // sender could go on in its old term, waiting on this node.
        let strangers = !self.voters.contains(&self.id) || !self.voters.contains(&message.from);
        let tell = self.config.check_quorum || self.config.pre_vote || strangers;
        let reply = match &message.body {
            MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. }
            | MessageBody::Quiesce { .. }
                if tell =>
            {
                MessageBody::AppendResponse(crate::message::AppendOutcome::Accepted {
                    last_index: 0,
                })
            }
            MessageBody::VoteRequest { pre_vote: true, .. } => MessageBody::VoteResponse {
                pre_vote: true,
                granted: false,
            },
            MessageBody::VoteRequest {
                pre_vote: false, ..
            } if strangers => MessageBody::VoteResponse {
                pre_vote: false,
                granted: false,
            },
            _ => return,
        };
        self.send(message.from.clone(), reply);
    }

    // ---- Outputs and the persistence contract ----

    /// The next output, or `None` when there is nothing to do. Drain it
    /// after every input (see [the contract](crate::ReplicatedLog#the-persistence-contract)).
    #[must_use]
    pub fn poll_output(&mut self) -> Option<RaftOutput<S::NodeId>> {
        if self.outbox.is_empty() {
            self.flush();
        }
        self.outbox.pop_front()
    }

    /// Persist batch `id` and all before it are durable: releases the
    /// messages that waited for them, and lets the leader count its own
    /// copy of the entries (thesis §10.2.1). Ids never handed out or
    /// already acknowledged are ignored and counted.
    pub fn on_persisted(&mut self, id: PersistId) {
        if id <= self.durability.acked || id >= self.durability.next_id {
            self.counters.bad_persist_acks += 1;
            return;
        }
        self.durability.acked = id;
        let mut moved = false;
        while let Some(&issued) = self.durability.issued.front() {
            if issued.id > id {
                break;
            }
            self.durability.issued.pop_front();
            if let Some((index, term)) = issued.last {
                moved |= self.log.on_persisted(index, term);
            }
        }
        let held = std::mem::take(&mut self.durability.held);
        for (needs, message) in held {
            if needs <= id {
                self.outbox.push_back(Output::Send(message));
            } else {
                self.durability.held.push_back((needs, message));
            }
        }
        if moved && self.role == Role::Leader {
            self.maybe_commit();
        }
        if self.role == Role::Candidate {
            // A sole voter's win waits for its own vote to be durable.
            self.tally_votes();
        }
    }

    /// Whether state changed since the last persist was handed out (term,
    /// vote or new entries): messages that depend on it must wait.
    fn term_or_vote_dirty(&self) -> bool {
        self.durability.handed.term != self.term || self.durability.handed.vote != self.vote
    }

    /// Queues a message that depends on everything this node has done so
    /// far (a vote, an acknowledgement of entries).
    fn send(&mut self, to: S::NodeId, body: MessageBody<S::NodeId>) {
        self.send_with_term(to, self.term, body);
    }

    /// [`send`](Self::send) with an explicit term (pre-votes are asked and
    /// granted in the term the candidate would campaign in).
    fn send_with_term(&mut self, to: S::NodeId, term: Term, body: MessageBody<S::NodeId>) {
        let needs = if self.term_or_vote_dirty() || self.log.has_to_persist() {
            self.durability.next_id
        } else {
            self.durability.next_id - 1
        };
        self.send_after(needs, to, term, body);
    }

    /// Queues a leader's message: it depends only on the leader's term being
    /// durable, not on its own copy of the entries (thesis §10.2.1: the
    /// leader writes its log in parallel with replicating it).
    fn send_as_leader(&mut self, to: S::NodeId, body: MessageBody<S::NodeId>) {
        let needs = if self.term_or_vote_dirty() {
            self.durability.next_id
        } else {
            self.durability.term_vote_id
        };
        self.send_after(needs, to, self.term, body);
    }

    fn send_after(
        &mut self,
        needs: PersistId,
        to: S::NodeId,
        term: Term,
        body: MessageBody<S::NodeId>,
    ) {
        let message = Message {
            from: self.id.clone(),
            to,
            term,
            body,
        };
        if needs <= self.durability.acked {
            self.outbox.push_back(Output::Send(message));
        } else {
            self.durability.held.push_back((needs, message));
        }
    }

    /// Turns pending work into outputs: batched appends and read rounds,
    /// then one `Persist` for everything new, then committed entries.
    fn flush(&mut self) {
        if self.role == Role::Leader {
            if self.broadcast_pending {
                self.broadcast_pending = false;
                self.broadcast_append();
            }
            self.start_read_round();
        }
        // The commit index written covers only entries already durable
        // here, never entries of this batch: if the hard state lands and
        // the entries do not (a torn write), the entries they would have
        // replaced must not look committed after a restart.
        let hard_state = HardState {
            term: self.term,
            vote: self.vote.clone(),
            commit: self.log.committed().min(self.log.persisted()),
        };
        let term_vote_changed = self.term_or_vote_dirty();
        // A commit index that advanced alone is not a reason to persist:
        // nothing waits for it to be durable (it rides along with the next
        // batch that carries entries, a term or a vote). A restart may find
        // an older one, which is safe (§3.8: the commit index is volatile
        // state), and `RaftNode::new` takes `Config::applied` as committed.
        if term_vote_changed || self.log.has_to_persist() {
            let id = self.durability.next_id;
            self.durability.next_id += 1;
            let entries = self.log.take_to_persist();
            let last = entries.last().map(|e| (e.index, e.term));
            if term_vote_changed {
                self.durability.term_vote_id = id;
            }
            let hard_state = (hard_state != self.durability.handed).then(|| {
                self.durability.handed = hard_state.clone();
                hard_state
            });
            self.durability.issued.push_back(Issued { id, last });
            self.outbox
                .push_back(Output::Persist(crate::output::Persist {
                    id,
                    hard_state,
                    entries,
                }));
        }
        self.emit_applicable();
        self.reads.emit_ready(self.log.applied(), &mut self.outbox);
    }

    /// Hands out committed entries that are durable here: a state machine
    /// that records what it applied never runs ahead of this node's disk,
    /// so a restart with `Config::applied` set from it finds those entries
    /// (and counts them committed, whatever commit index was stored).
    fn emit_applicable(&mut self) {
        if self.restore_pending() {
            // The state machine is being replaced by a snapshot.
            return;
        }
        let limit = self.log.applicable();
        if limit <= self.log.applied() {
            return;
        }
        match self
            .log
            .take_to_apply(limit + 1, self.config.max_apply_bytes)
        {
            Ok(entries) if !entries.is_empty() => {
                self.outbox.push_back(Output::Apply(entries));
            }
            Ok(_) => {}
            Err(error) => {
                // Storage lost entries that are committed and not yet
                // applied: nothing to hand out until it recovers.
                tracing::error!(%error, "cannot read committed entries to apply");
            }
        }
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let base = self.config.election_tick;
        self.randomized_election_timeout = base + self.rng.u32(0..base);
    }
}

impl<S> ReplicatedLog for RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    type NodeId = S::NodeId;
    type Message = Message<S::NodeId>;
    type HardState = HardState<S::NodeId>;

    fn propose(&mut self, data: Bytes) -> Result<ProposalId, ProposeError<S::NodeId>> {
        RaftNode::propose(self, data)
    }

    fn tick(&mut self) {
        RaftNode::tick(self);
    }

    fn handle_message(&mut self, message: Message<S::NodeId>) {
        RaftNode::handle_message(self, message);
    }

    fn on_persisted(&mut self, id: PersistId) {
        RaftNode::on_persisted(self, id);
    }

    fn read_index(&mut self, id: u64) -> Result<(), ReadError> {
        RaftNode::read_index(self, id)
    }

    fn poll_output(&mut self) -> Option<RaftOutput<S::NodeId>> {
        RaftNode::poll_output(self)
    }

    fn leader(&self) -> Option<&S::NodeId> {
        RaftNode::leader(self)
    }
}
