//! Linearizable reads without writing to the log (thesis §6.4).
//!
//! ReadIndex: the leader records its commit index as the read index,
//! confirms it is still leader with a round of heartbeats acknowledged by
//! a majority, and the read is served once the state machine has applied
//! the read index. Reads arriving together share one round. A new leader
//! first waits until an entry of its own term commits (§6.4 step 1), since
//! only then is its commit index known to be current.
//!
//! Lease reads (§6.4.1) skip the round: with check-quorum, a leader that
//! heard from a majority within the election timeout cannot have been
//! replaced, assuming clocks tick at the same rate.

use std::collections::VecDeque;

use super::{NodeId, RaftNode, RaftOutput, Role};
use crate::config::ReadOnlyOption;
use crate::entry::{Index, Term};
use crate::message::MessageBody;
use crate::output::{Output, ReadError, ReadState};
use crate::storage::Storage;

/// A read the leader is confirming.
#[derive(Debug, Clone)]
struct PendingRead<N> {
    /// The follower that forwarded it (`None`: asked on this node).
    from: Option<N>,
    id: u64,
    /// The read index and round, once a round was started for it.
    round: Option<(u64, Index)>,
}

/// A read this follower forwarded to its leader, waiting for the answer.
#[derive(Debug, Clone)]
struct ForwardedRead<N> {
    id: u64,
    /// The leader asked, and in which term: only it, then, can answer.
    leader: N,
    term: Term,
    /// When it was sent, in this node's ticks.
    sent_at: u64,
}

/// Reads being confirmed, and confirmed reads waiting to be applied.
#[derive(Debug, Clone)]
pub(super) struct ReadQueue<N> {
    /// The latest heartbeat round started (0: none yet).
    round: u64,
    /// Leader: rounds sent and not yet acknowledged by a majority, with the
    /// tick each was sent at (oldest first).
    sent: VecDeque<(u64, u64)>,
    /// Leader: the send tick of the latest round a majority acknowledged;
    /// the lease runs from there.
    lease_from: Option<u64>,
    /// Leader: a leadership transfer started this term, so the voters'
    /// leases may be overridden (thesis §3.10): no lease reads.
    lease_forfeited: bool,
    pending: VecDeque<PendingRead<N>>,
    /// Follower: reads sent to the leader.
    forwarded: VecDeque<ForwardedRead<N>>,
    /// The largest read id accepted (ids must increase).
    last_id: Option<u64>,
    /// Confirmed; handed out once applied up to their index. A forwarded
    /// read keeps its deadline (in ticks) until then: a follower cut off
    /// after the answer may never apply that far.
    confirmed: VecDeque<(ReadState, Option<u64>)>,
}

impl<N> Default for ReadQueue<N> {
    fn default() -> Self {
        Self {
            round: 0,
            sent: VecDeque::new(),
            lease_from: None,
            lease_forfeited: false,
            pending: VecDeque::new(),
            forwarded: VecDeque::new(),
            last_id: None,
            confirmed: VecDeque::new(),
        }
    }
}

impl<N> ReadQueue<N> {
    /// A new leadership: no lease yet, none forfeited.
    pub(super) fn start_term(&mut self) {
        self.sent.clear();
        self.lease_from = None;
        self.lease_forfeited = false;
    }

    /// Starts heartbeat round `round + 1`, sent at tick `now`. Rounds too
    /// old to grant a lease are forgotten, so the record stays bounded
    /// while no majority answers.
    pub(super) fn new_round(&mut self, now: u64, election_tick: u32) -> u64 {
        self.round += 1;
        while self
            .sent
            .front()
            .is_some_and(|&(_, at)| at + u64::from(election_tick) <= now)
        {
            self.sent.pop_front();
        }
        self.sent.push_back((self.round, now));
        self.round
    }

    /// A majority acknowledged every round up to `round`: the lease runs
    /// from the send time of the latest of them.
    fn majority_acked(&mut self, round: u64) {
        while let Some(&(r, at)) = self.sent.front() {
            if r > round {
                break;
            }
            self.sent.pop_front();
            if r == round {
                self.lease_from = Some(self.lease_from.map_or(at, |from| from.max(at)));
            }
        }
    }

    /// The lease ends now (quiescence: no heartbeat rounds while quiet).
    pub(super) fn end_lease(&mut self) {
        self.lease_from = None;
    }

    /// No read waits for anything here.
    pub(super) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.forwarded.is_empty() && self.confirmed.is_empty()
    }

    /// No lease reads for the rest of this term.
    pub(super) fn forfeit_lease(&mut self) {
        self.lease_forfeited = true;
    }

    /// Whether the leader holds a lease at tick `now`: a voter that heard
    /// a round grants no vote for `election_tick` of its ticks after it,
    /// and the leader's ticks may lag by up to one, so the lease ends
    /// `election_tick - 1` ticks after the round was sent.
    fn has_lease(&self, now: u64, election_tick: u32) -> bool {
        !self.lease_forfeited
            && self
                .lease_from
                .is_some_and(|from| now < from + u64::from(election_tick) - 1)
    }

    /// Accepts `id` if it is above every id accepted before.
    fn accept_id(&mut self, id: u64) -> Result<(), ReadError> {
        match self.last_id {
            Some(last) if id <= last => Err(ReadError::IdNotIncreasing { id, last }),
            _ => {
                self.last_id = Some(id);
                Ok(())
            }
        }
    }

    /// Hands out confirmed reads whose index is applied, in order.
    pub(super) fn emit_ready(&mut self, applied: Index, outbox: &mut VecDeque<RaftOutput<N>>) {
        while let Some((read, _)) = self.confirmed.front() {
            if read.index > applied {
                break;
            }
            outbox.push_back(Output::ReadReady(*read));
            self.confirmed.pop_front();
        }
    }
}

impl<S> RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    /// Asks for a linearizable read named `id`. On the leader it is
    /// confirmed by a heartbeat round (or its lease); a follower forwards
    /// it to the leader. The answer comes out of
    /// [`poll_output`](Self::poll_output) as
    /// [`Output::ReadReady`] once this node has applied the read index (so
    /// the state machine can be read right then), or as
    /// [`Output::ReadFailed`] if leadership changed meanwhile, or if a
    /// forwarded read was not served within `2 * election_tick` ticks.
    ///
    /// Ids MUST increase, across restarts too (see
    /// [`ReplicatedLog::read_index`](crate::ReplicatedLog::read_index)).
    ///
    /// # Errors
    /// [`ReadError::NoLeader`] when no leader is known,
    /// [`ReadError::IdNotIncreasing`] for an id not above the last one.
    pub fn read_index(&mut self, id: u64) -> Result<(), ReadError> {
        if self.role != Role::Leader && self.leader.is_none() {
            return Err(ReadError::NoLeader);
        }
        self.reads.accept_id(id)?;
        self.wake_for_input();
        match (&self.role, self.leader.clone()) {
            (Role::Leader, _) => {
                self.reads.pending.push_back(PendingRead {
                    from: None,
                    id,
                    round: None,
                });
                Ok(())
            }
            (_, Some(leader)) => {
                self.reads.forwarded.push_back(ForwardedRead {
                    id,
                    leader: leader.clone(),
                    term: self.term,
                    sent_at: self.ticks,
                });
                self.send(leader, MessageBody::ReadIndexRequest { id });
                Ok(())
            }
            (_, None) => Err(ReadError::NoLeader),
        }
    }

    pub(super) fn handle_read_index_request(&mut self, from: S::NodeId, id: u64) {
        if self.role == Role::Leader {
            self.reads.pending.push_back(PendingRead {
                from: Some(from),
                id,
                round: None,
            });
        } else {
            self.send(from, MessageBody::ReadIndexResponse { id, index: None });
        }
    }

    pub(super) fn handle_read_index_response(
        &mut self,
        from: S::NodeId,
        id: u64,
        index: Option<Index>,
    ) {
        // Only the leader asked, in the term it was asked in, answers a read
        // still waiting: a duplicate or a late answer is dropped.
        let term = self.term;
        let Some(at) = self
            .reads
            .forwarded
            .iter()
            .position(|r| r.id == id && r.leader == from && r.term == term)
        else {
            self.counters.unknown_sender += 1;
            return;
        };
        let read = self.reads.forwarded.remove(at).expect("found above");
        match index {
            Some(index) => {
                let deadline = read.sent_at + self.forwarded_read_timeout();
                self.reads
                    .confirmed
                    .push_back((ReadState { id, index }, Some(deadline)));
            }
            None => self.outbox.push_back(Output::ReadFailed { id }),
        }
    }

    /// Starts a heartbeat round for the reads that have none, once the
    /// leader has committed an entry of its term (§6.4 step 1). Lease
    /// reads are confirmed at once.
    pub(super) fn start_read_round(&mut self) {
        let unassigned = self.reads.pending.iter().any(|r| r.round.is_none());
        if !unassigned || !self.committed_in_term() {
            return;
        }
        let index = self.log.committed();
        let leased = self.config.read_only == ReadOnlyOption::LeaseBased
            && self.reads.has_lease(self.ticks, self.config.election_tick);
        if leased || self.voters.voters() == std::slice::from_ref(&self.id) {
            let round = self.reads.round;
            for read in &mut self.reads.pending {
                read.round.get_or_insert((round, index));
            }
            self.confirm_reads_up_to(round);
            return;
        }
        // No lease (or ReadIndex): a new heartbeat round confirms them.
        let round = self.reads.round + 1;
        for read in &mut self.reads.pending {
            read.round.get_or_insert((round, index));
        }
        self.broadcast_heartbeat();
    }

    pub(super) fn committed_in_term(&self) -> bool {
        self.log.term(self.log.committed()) == Ok(self.term)
    }

    /// A peer acknowledged heartbeat round `round`: confirm the reads of
    /// every round a majority has now acknowledged.
    pub(super) fn on_read_round_ack(&mut self, from: S::NodeId, round: u64) {
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        if round <= peer.read_round || round > self.reads.round {
            return;
        }
        peer.read_round = round;
        let me = &self.id;
        let current = self.reads.round;
        let peers = &self.peers;
        let confirmed = self.voters.committed_index(|n| {
            if n == me {
                Some(current)
            } else {
                peers.get(n).map(|p| p.read_round)
            }
        });
        self.reads.majority_acked(confirmed);
        self.confirm_reads_up_to(confirmed);
    }

    fn confirm_reads_up_to(&mut self, round: u64) {
        while let Some(read) = self.reads.pending.front() {
            let Some((read_round, index)) = read.round else {
                break;
            };
            if read_round > round {
                break;
            }
            let read = self.reads.pending.pop_front().expect("front exists");
            match read.from {
                None => self
                    .reads
                    .confirmed
                    .push_back((ReadState { id: read.id, index }, None)),
                Some(follower) => self.send_as_leader(
                    follower,
                    MessageBody::ReadIndexResponse {
                        id: read.id,
                        index: Some(index),
                    },
                ),
            }
        }
    }

    /// Leadership ended: reads not yet confirmed fail.
    pub(super) fn fail_pending_reads(&mut self) {
        let pending = std::mem::take(&mut self.reads.pending);
        for read in pending {
            match read.from {
                None => self.outbox.push_back(Output::ReadFailed { id: read.id }),
                Some(follower) => self.send(
                    follower,
                    MessageBody::ReadIndexResponse {
                        id: read.id,
                        index: None,
                    },
                ),
            }
        }
    }

    /// Leadership or term changed: reads forwarded to the old leader fail.
    pub(super) fn fail_forwarded_reads(&mut self) {
        for read in std::mem::take(&mut self.reads.forwarded) {
            self.outbox.push_back(Output::ReadFailed { id: read.id });
        }
    }

    /// Ticks a forwarded read may take, from its request to being served:
    /// two election timeouts.
    fn forwarded_read_timeout(&self) -> u64 {
        2 * u64::from(self.config.election_tick)
    }

    /// Forwarded reads not served within [`forwarded_read_timeout`] fail:
    /// the request or its answer was lost, the leader is gone, or this
    /// node cannot catch up to the read index.
    ///
    /// [`forwarded_read_timeout`]: Self::forwarded_read_timeout
    pub(super) fn expire_forwarded_reads(&mut self) {
        let timeout = self.forwarded_read_timeout();
        while let Some(read) = self.reads.forwarded.front() {
            if read.sent_at + timeout > self.ticks {
                break;
            }
            let id = read.id;
            self.reads.forwarded.pop_front();
            self.outbox.push_back(Output::ReadFailed { id });
        }
        let now = self.ticks;
        let outbox = &mut self.outbox;
        self.reads.confirmed.retain(|(read, deadline)| {
            let expired = deadline.is_some_and(|at| at <= now);
            if expired {
                outbox.push_back(Output::ReadFailed { id: read.id });
            }
            !expired
        });
    }
}
