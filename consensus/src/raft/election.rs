//! Leader election (§5.2), the voting rule (§5.4.1), pre-vote and
//! check-quorum (thesis §9.6).

use bytes::Bytes;

use super::{NodeId, RaftNode, Role};
use crate::config::ReadOnlyOption;
use crate::entry::{Entry, Index, Term};
use crate::message::MessageBody;
use crate::quorum::VoteResult;
use crate::storage::Storage;

impl<S> RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    /// Starts an election now, as if the election timeout had fired (with a
    /// pre-vote round when configured). A leader ignores it, and so does,
    /// with lease reads on, a follower that heard from a leader within the
    /// election timeout: campaigning then would break that leader's lease
    /// (thesis §6.4.1). Use leadership transfer to move a leader.
    pub fn campaign(&mut self) {
        if self.role == Role::Leader {
            return;
        }
        if !self.promotable() {
            // Learners, removed nodes and nodes still joining never
            // campaign (thesis §4.2.2).
            return;
        }
        self.wake_for_input();
        if self.restore_pending() {
            // Its log is about to be replaced: it may not lead on it.
            self.counters.snapshot_busy += 1;
            self.reset_election_timer();
            return;
        }
        if self.config.read_only == ReadOnlyOption::LeaseBased && self.in_leader_lease() {
            self.counters.lease_ignored_votes += 1;
            return;
        }
        if self.term == Term::MAX {
            // No later term exists to campaign in (only a faulty peer can
            // have pushed the term this far).
            tracing::warn!(id = ?self.id, "term space exhausted: cannot campaign");
            self.reset_election_timer();
            return;
        }
        if self.config.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate(false);
        }
    }

    pub(super) fn tick_election(&mut self) {
        // A node that may not campaign keeps counting: its timer must show
        // that no leader was heard, or it would refuse pre-votes forever.
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        if self.election_elapsed >= self.randomized_election_timeout && self.promotable() {
            self.campaign();
        }
    }

    /// Leader ticks: check-quorum once per election timeout, heartbeats
    /// every `heartbeat_tick`.
    pub(super) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config.election_tick {
            self.election_elapsed = 0;
            if self.config.check_quorum && !self.quorum_recently_active() {
                tracing::debug!(id = ?self.id, term = self.term, "lost contact with a quorum: stepping down");
                self.become_follower(self.term, None);
                return;
            }
            // A transfer that has not completed within an election timeout
            // is abandoned (thesis §3.10).
            self.transfer_target = None;
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    /// Whether a majority (counting this leader) was heard from since the
    /// last check; clears the marks for the next period.
    fn quorum_recently_active(&mut self) -> bool {
        let peers = &self.peers;
        let me = &self.id;
        let result = self.voters.vote_result(|n| {
            if n == me {
                Some(true)
            } else {
                peers.get(n).map(|p| p.recent_active)
            }
        });
        for peer in self.peers.values_mut() {
            peer.recent_active = false;
        }
        result == VoteResult::Won
    }

    /// Check-quorum's leader lease: this node leads, or a follower heard
    /// from a leader within the election timeout, so vote requests are
    /// ignored (thesis §6.2). A leader's lease reads rely on it
    /// (§6.4.1): the contact is remembered even if a later message of a
    /// higher term made this node forget who leads.
    pub(super) fn in_leader_lease(&self) -> bool {
        self.config.check_quorum
            && match self.role {
                Role::Leader => true,
                Role::Follower => self
                    .leader_contact
                    .is_some_and(|t| t < self.config.election_tick),
                Role::PreCandidate | Role::Candidate => false,
            }
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<S::NodeId>) {
        if term != self.term || self.leader != leader {
            self.abort_incoming(crate::snapshot::SnapshotAbortReason::LeaderChanged);
        }
        if term != self.term {
            self.term = term;
            self.vote = None;
        }
        if self.role != Role::Follower || self.leader != leader {
            tracing::debug!(id = ?self.id, term, ?leader, "follower");
            // Reads forwarded to the old leader will not be answered.
            self.fail_forwarded_reads();
        }
        self.leave_leadership();
        self.role = Role::Follower;
        self.leader = leader;
        self.reset_election_timer();
    }

    /// Drops what only a leader keeps.
    fn leave_leadership(&mut self) {
        if self.role == Role::Leader {
            self.abort_snapshot_sends();
            self.peers.clear();
            self.uncommitted.clear();
            self.uncommitted_size = 0;
            self.transfer_target = None;
            self.broadcast_pending = false;
        }
        self.fail_pending_reads();
    }

    fn become_pre_candidate(&mut self) {
        tracing::debug!(id = ?self.id, term = self.term, "pre-candidate");
        self.abort_incoming(crate::snapshot::SnapshotAbortReason::LeaderChanged);
        self.leave_leadership();
        self.fail_forwarded_reads();
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_election_timer();
        self.request_votes(true, false);
    }

    pub(super) fn become_candidate(&mut self, leadership_transfer: bool) {
        if self.term == Term::MAX {
            // No later term to campaign in (see `campaign`).
            return;
        }
        self.abort_incoming(crate::snapshot::SnapshotAbortReason::LeaderChanged);
        self.leave_leadership();
        self.fail_forwarded_reads();
        self.term += 1;
        self.vote = Some(self.id.clone());
        self.role = Role::Candidate;
        self.leader = None;
        self.reset_election_timer();
        tracing::debug!(id = ?self.id, term = self.term, "candidate");
        self.request_votes(false, leadership_transfer);
    }

    /// Votes for itself and asks every other voter (§5.2).
    fn request_votes(&mut self, pre_vote: bool, leadership_transfer: bool) {
        self.votes.clear();
        self.votes.insert(self.id.clone(), true);
        let term = if pre_vote { self.term + 1 } else { self.term };
        let body = MessageBody::VoteRequest {
            pre_vote,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            leadership_transfer,
            priority: self.config.priority,
        };
        for i in 0..self.voters.voters().len() {
            let to = self.voters.voters()[i].clone();
            if to != self.id {
                self.send_with_term(to, term, body.clone());
            }
        }
        self.tally_votes();
    }

    pub(super) fn tally_votes(&mut self) {
        let votes = &self.votes;
        match self.voters.vote_result(|n| votes.get(n).copied()) {
            VoteResult::Won if self.role == Role::PreCandidate => self.become_candidate(false),
            // A win that counts this node's own vote waits until that vote
            // is durable (`on_persisted` tallies again). Only a sole voter
            // can get here sooner: others' votes answer requests that left
            // after it. Else a crash could bring it back in the previous
            // term to win this term again, and write other entries at the
            // indexes it handed out in this one.
            VoteResult::Won if !self.own_vote_durable() => {}
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    /// Whether this node's term and vote, as they are now, are durable.
    fn own_vote_durable(&self) -> bool {
        !self.term_or_vote_dirty() && self.durability.term_vote_id <= self.durability.acked
    }

    fn become_leader(&mut self) {
        tracing::debug!(id = ?self.id, term = self.term, "leader");
        self.role = Role::Leader;
        self.leader = Some(self.id.clone());
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.reads.start_term();
        let next = self.log.last_index() + 1;
        self.peers.clear();
        // Learners are replicated to as voters are (they never count).
        let members: Vec<S::NodeId> = self.membership().members().cloned().collect();
        for member in members {
            if member != self.id {
                let peer = self.new_peer(next);
                self.peers.insert(member, peer);
            }
        }
        // §8: a no-op entry of the new term commits the entries of earlier
        // terms and lets reads learn the commit index.
        let noop = Entry::new(self.term, next, Bytes::new());
        self.log
            .append(&[noop])
            .expect("the no-op continues the log, after every committed entry");
        self.broadcast_pending = true;
        self.maybe_commit();
    }

    pub(super) fn handle_vote_request(
        &mut self,
        from: S::NodeId,
        term: Term,
        pre_vote: bool,
        (last_index, last_term): (Index, Term),
        priority: u64,
    ) {
        // §5.2: one vote per term, first come first served; a pre-vote for a
        // later term is granted freely (it binds nothing).
        let can_vote = self.vote.as_ref() == Some(&from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre_vote && term > self.term);
        // Thesis §9.6: no pre-vote while a leader is heard from (within an
        // election timeout), so a node returning from a partition cannot
        // disrupt a working leader even without check-quorum.
        let heard_from_leader = (self.leader.is_some()
            && self.election_elapsed < self.config.election_tick)
            || self.in_leader_lease();
        let can_vote = can_vote && !(pre_vote && heard_from_leader);
        // §5.4.1: only for a candidate whose log is at least as up to date.
        let eligible = can_vote && self.log.is_up_to_date(last_index, last_term);
        // Priority hints (raft-rs): a candidate of lower priority than this
        // voter needs a strictly more up-to-date log (§5.4.1 order: last
        // term, then last index), not just an equal one. raft-rs compares
        // the last index only, which lets a long tail of an old term on a
        // high-priority voter refuse a candidate with a later term forever.
        let strictly_newer =
            (last_term, last_index) > (self.log.last_term(), self.log.last_index());
        let outranked = !strictly_newer && self.config.priority > priority;
        let granted = eligible && !outranked;
        if granted && !pre_vote {
            self.vote = Some(from.clone());
            self.reset_election_timer();
        }
        // A granted pre-vote answers in the term it was asked for.
        let reply_term = if granted && pre_vote { term } else { self.term };
        self.send_with_term(
            from,
            reply_term,
            MessageBody::VoteResponse { pre_vote, granted },
        );
        // An election is under way that this voter would have granted but
        // for priority: it campaigns now instead of waiting out its timer.
        // Otherwise a lower-priority node whose timer runs shorter keeps
        // starting elections that it cannot win, each resetting this
        // node's timer, and the group stays leaderless (found by the
        // simulator with random priorities, seed 15986).
        if eligible && outranked && self.role == Role::Follower && self.promotable() {
            self.counters.priority_campaigns += 1;
            self.campaign();
        }
    }

    pub(super) fn handle_vote_response(
        &mut self,
        from: S::NodeId,
        term: Term,
        pre_vote: bool,
        granted: bool,
    ) {
        let current = match self.role {
            Role::PreCandidate => {
                pre_vote && (term == self.term + 1 || (!granted && term == self.term))
            }
            Role::Candidate => !pre_vote && term == self.term,
            _ => false,
        };
        if !current {
            return;
        }
        self.votes.entry(from).or_insert(granted);
        self.tally_votes();
    }
}
