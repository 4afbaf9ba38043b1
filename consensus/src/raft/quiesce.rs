//! Quiescence: many quiet Raft groups per process (multi-Raft).
//!
//! Adapted from CockroachDB's quiesced ranges (`replica_raft_quiesce.go`)
//! and TiKV's hibernate regions. A leader that has had nothing to do for
//! [`Config::quiesce_after_ticks`](crate::Config::quiesce_after_ticks)
//! ticks (every follower it considers live holds its whole log, everything
//! is committed, applied and durable, and no proposal, read, transfer or
//! snapshot is under way) sends each live follower a
//! [`Quiesce`](crate::MessageBody::Quiesce) and stops ticking: no
//! heartbeats, no check-quorum. A follower whose log is exactly the
//! leader's stops its election timer without answering; any other answers,
//! which wakes the leader. A quiesced node's `tick` only advances its clock.
//!
//! It wakes on any proposal, read, campaign or transfer, on any message
//! that says something new (a quiesced leader ignores late answers that
//! only repeat what it knows; a quiesced follower answers its leader's
//! heartbeats that carry nothing new without waking), and on liveness
//! news: a leader wakes when a peer it thought down comes back (and
//! catches it up); a follower wakes when told its leader is down, and its
//! election timer then runs, so a dead quiesced leader is replaced. A
//! follower woken by anyone but its leader pokes the leader (an empty
//! [`HeartbeatResponse`](crate::MessageBody::HeartbeatResponse)) so the
//! leader heartbeats again before the follower's timer runs out.
//!
//! **Down peers do not keep a group awake** (TiKV #19070): the leader
//! leaves peers the application reports down out of the decision, as long
//! as the live ones and itself are a majority.
//!
//! **Check-quorum and leases.** A quiesced leader runs no check-quorum
//! (its followers are silent by design) and resumes counting from zero when
//! it wakes. It gives up its read lease when it quiesces and again when it
//! wakes, so a read on a quiesced leader always goes through a ReadIndex
//! round (thesis §6.4). Time spent quiesced does not count as silence on a
//! follower: its leader contact is frozen, so a quiesced follower woken by
//! a vote request behaves as a follower that has just heard from its leader
//! (pre-vote refused, thesis §9.6; with check-quorum the request is ignored
//! inside the lease, §6.2). This only refuses more votes than an awake
//! follower would, so the leader lease stays sound; liveness news never
//! touches the contact either, so a wrong suspicion cannot break a lease.

use std::collections::BTreeSet;

use super::{NodeId, RaftNode, Role};
use crate::entry::{Index, Term};
use crate::message::{AppendOutcome, Message, MessageBody};
use crate::progress::ReplicationState;
use crate::quorum::VoteResult;
use crate::snapshot::SnapshotAbortReason;
use crate::storage::Storage;

/// A node's quiescence state.
#[derive(Debug, Clone)]
pub(super) struct Quiescence<N> {
    /// The node is quiesced: its ticks do nothing.
    quiesced: bool,
    /// Leader: consecutive ticks with nothing to do.
    idle_ticks: u32,
    /// Peers the application reports down.
    down: BTreeSet<N>,
}

impl<N> Default for Quiescence<N> {
    fn default() -> Self {
        Self {
            quiesced: false,
            idle_ticks: 0,
            down: BTreeSet::new(),
        }
    }
}

/// What a quiesced node does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnMessage {
    /// Handle it as usual (the node is awake, or stays quiesced while it
    /// answers).
    Handle,
    /// Drop it: a late answer that repeats what a quiesced leader knows.
    Drop,
}

impl<S> RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    /// Whether this node is quiesced: its group was idle, and its ticks do
    /// nothing until a proposal, a read, a message with news or liveness
    /// news wakes it ([`Config::quiesce_after_ticks`](crate::Config::quiesce_after_ticks)).
    pub fn is_quiesced(&self) -> bool {
        self.quiesce.quiesced
    }

    /// Tells the node whether `peer` is up, from a failure detector the
    /// application runs for all its groups at once (dsys-detect's SWIM, in
    /// a service). Quiescence reads it, and snapshot transfers end on it:
    /// - a leader quiesces without waiting for peers reported down (as
    ///   long as the others and itself are a majority), and wakes to catch
    ///   a peer up when it is reported live again;
    /// - a leader ends a snapshot transfer to a peer reported down
    ///   ([`SnapshotAbortReason::PeerDown`]); a new one starts once the
    ///   peer answers again;
    /// - a quiesced follower told that its leader is down wakes and runs
    ///   its election timer, so a dead leader is replaced.
    ///
    /// With quiescence on, the application MUST call this when a peer goes
    /// down and when it comes back, or a group whose leader dies while
    /// quiesced never elects another. A wrong report is safe: a live peer
    /// reported down still gets the leader's `Quiesce`, which it refuses
    /// if it missed anything (waking the leader to catch it up), and is
    /// caught up when reported live again; one wrongly reported live only
    /// keeps the group awake. Every peer starts live. Reports about this
    /// node itself or about a node outside the configuration are ignored,
    /// and a node that leaves the configuration is forgotten (added
    /// again, it starts live).
    pub fn set_peer_liveness(&mut self, peer: S::NodeId, live: bool) {
        if peer == self.id || !self.membership().contains(&peer) {
            return;
        }
        if live {
            let was_down = self.quiesce.down.remove(&peer);
            if was_down && self.quiesce.quiesced && self.role == Role::Leader {
                // Its progress may be behind: wake and heartbeat it.
                self.wake(false);
            }
        } else {
            self.quiesce.down.insert(peer.clone());
            if self.role == Role::Leader {
                // A transfer to a dead peer would keep the group awake, and
                // the log kept for one it finished would pin compaction.
                self.end_snapshot_send(&peer, Some(SnapshotAbortReason::PeerDown));
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.snapshot_floor = None;
                }
            }
            if self.quiesce.quiesced
                && self.role != Role::Leader
                && self.leader.as_ref() == Some(&peer)
            {
                // The leader is gone: nothing to poke, the election timer
                // runs from now.
                self.wake(false);
            }
        }
    }

    /// The membership changed: reports about nodes that left it are
    /// forgotten, so a node removed and added again starts live, as every
    /// peer does (its reports while outside were ignored).
    pub(super) fn forget_non_members(&mut self) {
        let membership = self.history.current();
        self.quiesce.down.retain(|n| membership.contains(n));
    }

    /// Whether `peer` is live as far as this node was told
    /// ([`set_peer_liveness`](Self::set_peer_liveness)).
    pub fn is_peer_live(&self, peer: &S::NodeId) -> bool {
        !self.quiesce.down.contains(peer)
    }

    /// A tick while quiesced: only the clock moves (the leader's lease
    /// clock must, so that an old lease has run out when it wakes).
    /// Returns whether the node is quiesced.
    pub(super) fn tick_quiesced(&mut self) -> bool {
        if self.quiesce.quiesced {
            self.ticks += 1;
        }
        self.quiesce.quiesced
    }

    /// An input that needs an awake node (proposal, read, campaign,
    /// transfer): wake, and have the leader heartbeat again.
    pub(super) fn wake_for_input(&mut self) {
        if self.quiesce.quiesced {
            let poke = self.role != Role::Leader;
            self.wake(poke);
        }
    }

    /// Decides what a message does to a quiesced node (before its term is
    /// looked at): wakes it, leaves it quiesced, or is dropped.
    pub(super) fn on_message_while_quiesced(&mut self, message: &Message<S::NodeId>) -> OnMessage {
        if !self.quiesce.quiesced {
            return OnMessage::Handle;
        }
        let same_term = message.term == self.term;
        match (&self.role, &message.body) {
            // A late answer to a heartbeat or append that only repeats
            // that the peer holds the whole log.
            (Role::Leader, MessageBody::HeartbeatResponse { read_round })
                if same_term && *read_round != 0 && self.peer_holds_all(&message.from) =>
            {
                OnMessage::Drop
            }
            (Role::Leader, MessageBody::AppendResponse(AppendOutcome::Accepted { last_index }))
                if same_term
                    && *last_index == self.log.last_index()
                    && self.peer_holds_all(&message.from) =>
            {
                OnMessage::Drop
            }
            // The leader's heartbeat with nothing new (a heartbeat sent
            // before the Quiesce and overtaken by it, or a round for a read
            // on the leader): answered, the follower stays quiesced.
            (Role::Follower, MessageBody::Heartbeat { commit, .. })
                if same_term
                    && self.leader.as_ref() == Some(&message.from)
                    && *commit <= self.log.committed() =>
            {
                OnMessage::Handle
            }
            // The handler decides.
            (Role::Follower, MessageBody::Quiesce { .. })
                if same_term && self.leader.as_ref() == Some(&message.from) =>
            {
                OnMessage::Handle
            }
            _ => {
                let from_leader = self.leader.as_ref() == Some(&message.from);
                let poke = self.role != Role::Leader && !from_leader;
                self.wake(poke);
                OnMessage::Handle
            }
        }
    }

    fn peer_holds_all(&self, peer: &S::NodeId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|p| p.progress.matched() == self.log.last_index())
    }

    /// Ends quiescence. A follower restarts its election timer and, with
    /// `poke`, tells its leader (if it thinks it live) to heartbeat again;
    /// a leader heartbeats at its next tick and restarts check-quorum's
    /// count.
    fn wake(&mut self, poke: bool) {
        self.quiesce.quiesced = false;
        self.quiesce.idle_ticks = 0;
        self.counters.wakes += 1;
        tracing::trace!(id = ?self.id, "woken");
        if self.role == Role::Leader {
            self.election_elapsed = 0;
            self.heartbeat_elapsed = self.config.heartbeat_tick;
            for peer in self.peers.values_mut() {
                peer.recent_active = false;
            }
            self.reads.end_lease();
        } else {
            self.reset_election_timer();
            if poke {
                if let Some(leader) = self.leader.clone() {
                    if !self.quiesce.down.contains(&leader) {
                        self.send(leader, MessageBody::HeartbeatResponse { read_round: 0 });
                    }
                }
            }
        }
    }

    /// Leader, once per tick while awake: quiesce after
    /// `quiesce_after_ticks` idle ticks in a row.
    pub(super) fn maybe_quiesce(&mut self) {
        if self.config.quiesce_after_ticks == 0 || self.role != Role::Leader {
            return;
        }
        if !self.leader_is_idle() {
            self.quiesce.idle_ticks = 0;
            return;
        }
        self.quiesce.idle_ticks = self.quiesce.idle_ticks.saturating_add(1);
        if self.quiesce.idle_ticks < self.config.quiesce_after_ticks {
            return;
        }
        let last_index = self.log.last_index();
        let last_term = self.log.last_term();
        tracing::trace!(id = ?self.id, term = self.term, last_index, "quiescing");
        self.quiesce.quiesced = true;
        self.quiesce.idle_ticks = 0;
        self.counters.quiesces += 1;
        self.reads.end_lease();
        // Every member, learners included: the Quiesce carries the last
        // commit, which a learner would otherwise never learn. Peers
        // reported down too: one wrongly reported down that missed an
        // entry refuses the order, which wakes this leader to catch it up
        // (else it would stay behind for as long as the report stands).
        let members: Vec<S::NodeId> = self.peers.keys().cloned().collect();
        for to in members {
            self.send_as_leader(
                to,
                MessageBody::Quiesce {
                    commit: last_index,
                    last_index,
                    last_term,
                },
            );
        }
    }

    /// Nothing is pending on this leader, and every peer not reported
    /// down holds its whole log; those and the leader are a majority.
    fn leader_is_idle(&self) -> bool {
        let last = self.log.last_index();
        let settled = self.transfer_target.is_none()
            && !self.broadcast_pending
            && self.uncommitted.is_empty()
            && self.reads.is_idle()
            && self.log.committed() == last
            && self.log.persisted() == last
            && self.log.applied() == last
            && self.durability.issued.is_empty()
            && self.durability.held.is_empty();
        if !settled {
            return false;
        }
        let down = &self.quiesce.down;
        // A snapshot transfer is work under way: it ends (installed or
        // aborted) before the group quiesces. A report that its peer is
        // down ends it; one that starts afterwards (the peer answered
        // after all) runs to its end.
        let peers_idle = self.peers.iter().all(|(id, peer)| {
            peer.transfer.is_none()
                && (down.contains(id)
                    || (peer.progress.matched() == last
                        && peer.progress.state() != ReplicationState::Snapshot
                        && peer.progress.inflights().count() == 0))
        });
        if !peers_idle {
            return false;
        }
        let me = &self.id;
        self.voters
            .vote_result(|n| Some(n == me || !down.contains(n)))
            == VoteResult::Won
    }

    /// The follower's side of [`MessageBody::Quiesce`]: quiesce if its log
    /// is exactly the leader's, all committed, nothing pending here, and
    /// the leader is not reported down; otherwise answer, which wakes the
    /// leader.
    pub(super) fn handle_quiesce(
        &mut self,
        from: S::NodeId,
        commit: Index,
        last_index: Index,
        last_term: Term,
    ) {
        self.follow(from.clone());
        let matches =
            self.log.last_index() == last_index && self.log.term(last_index) == Ok(last_term);
        // A commit past its own last index, or one the log refuses, is a
        // faulty sender's.
        if commit > last_index || (matches && self.log.commit_to(commit).is_err()) {
            self.counters.malformed += 1;
        }
        let can = self.config.quiesce_after_ticks > 0
            && matches
            && commit == last_index
            && self.log.committed() == last_index
            && !self.log.has_to_persist()
            && self.incoming.is_none()
            && !self.restore_pending()
            && self.reads.is_idle()
            && self.durability.held.is_empty()
            && !self.quiesce.down.contains(&from);
        if can {
            if !self.quiesce.quiesced {
                self.quiesce.quiesced = true;
                self.counters.quiesces += 1;
                tracing::trace!(id = ?self.id, term = self.term, last_index, "quiesced");
            }
            return;
        }
        self.counters.quiesce_refusals += 1;
        if self.quiesce.quiesced {
            self.wake(false);
        }
        self.send(from, MessageBody::HeartbeatResponse { read_round: 0 });
    }
}
