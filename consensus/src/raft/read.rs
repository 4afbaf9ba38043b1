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
use crate::entry::Index;
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

/// Reads being confirmed, and confirmed reads waiting to be applied.
#[derive(Debug, Clone)]
pub(super) struct ReadQueue<N> {
    /// The latest heartbeat round started (0: none yet).
    round: u64,
    pending: VecDeque<PendingRead<N>>,
    /// Confirmed on this node; handed out once applied up to their index.
    confirmed: VecDeque<ReadState>,
}

impl<N> Default for ReadQueue<N> {
    fn default() -> Self {
        Self {
            round: 0,
            pending: VecDeque::new(),
            confirmed: VecDeque::new(),
        }
    }
}

impl<N> ReadQueue<N> {
    pub(super) fn round(&self) -> u64 {
        self.round
    }

    /// Hands out confirmed reads whose index is applied, in order.
    pub(super) fn emit_ready(&mut self, applied: Index, outbox: &mut VecDeque<RaftOutput<N>>) {
        while let Some(read) = self.confirmed.front() {
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
    /// [`Output::ReadFailed`] if leadership changed meanwhile. A forwarded
    /// read whose answer is lost never comes back: time it out.
    ///
    /// # Errors
    /// [`ReadError::NoLeader`] when no leader is known.
    pub fn read_index(&mut self, id: u64) -> Result<(), ReadError> {
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
        if self.leader.as_ref() != Some(&from) {
            // Only the leader we asked can answer.
            self.counters.unknown_sender += 1;
            return;
        }
        match index {
            Some(index) => self.reads.confirmed.push_back(ReadState { id, index }),
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
        if self.config.read_only == ReadOnlyOption::LeaseBased || self.peers.is_empty() {
            let round = self.reads.round;
            for read in &mut self.reads.pending {
                read.round.get_or_insert((round, index));
            }
            self.confirm_reads_up_to(round);
            return;
        }
        self.reads.round += 1;
        let round = self.reads.round;
        for read in &mut self.reads.pending {
            read.round.get_or_insert((round, index));
        }
        self.broadcast_heartbeat();
    }

    fn committed_in_term(&self) -> bool {
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
                    .push_back(ReadState { id: read.id, index }),
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
}
