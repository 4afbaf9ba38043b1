//! Log replication (§5.3) and the commit rule (§5.4.2): proposals,
//! AppendEntries with pipelining and fast back-off, heartbeats.

use bytes::Bytes;

use super::{NodeId, RaftNode, Role};
use crate::entry::{ENTRY_OVERHEAD, Entry, Index, Term};
use crate::message::{AppendOutcome, MessageBody};
use crate::output::{ProposalId, ProposeError};
use crate::progress::ReplicationState;
use crate::storage::{Storage, StorageError};

impl<S> RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    /// Appends a command to the leader's log and returns its term and
    /// index (see [tracking proposals](crate::ReplicatedLog#tracking-proposals-and-reads)). It is
    /// replicated at the next [`poll_output`](Self::poll_output), together
    /// with every other proposal made since (batching), and comes out in
    /// [`Output::Apply`](crate::Output::Apply) once committed.
    ///
    /// # Errors
    /// [`ProposeError::NotLeader`] with the leader hint on a follower or
    /// candidate, [`ProposeError::TooLarge`] past `max_proposal_size`,
    /// [`ProposeError::UncommittedFull`] past `max_uncommitted_size`, and
    /// [`ProposeError::TransferInProgress`] while handing leadership over.
    pub fn propose(&mut self, data: Bytes) -> Result<ProposalId, ProposeError<S::NodeId>> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader.clone(),
            });
        }
        self.wake_for_input();
        if self.transfer_target.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        let size = data.len() as u64;
        if size > self.config.max_proposal_size {
            return Err(ProposeError::TooLarge {
                size,
                max: self.config.max_proposal_size,
            });
        }
        let counted = size + ENTRY_OVERHEAD;
        if self.uncommitted_size > 0
            && self.uncommitted_size.saturating_add(counted) > self.config.max_uncommitted_size
        {
            return Err(ProposeError::UncommittedFull {
                uncommitted: self.uncommitted_size,
                max: self.config.max_uncommitted_size,
            });
        }
        let index = self.log.last_index() + 1;
        self.log
            .append_owned([Entry::new(self.term, index, data)])
            .expect("a leader's new entry continues its log past the commit index");
        self.uncommitted.push_back((index, counted));
        self.uncommitted_size += counted;
        self.broadcast_pending = true;
        Ok(ProposalId {
            term: self.term,
            index,
        })
    }

    /// Sends every peer what it lacks (or an empty append carrying the
    /// commit index).
    pub(super) fn broadcast_append(&mut self) {
        let peers: Vec<S::NodeId> = self.peers.keys().cloned().collect();
        for to in peers {
            self.send_appends(&to, true);
        }
    }

    /// Sends every peer a heartbeat of a new round; its send time starts
    /// the lease that a majority's acknowledgement grants (thesis §6.4.1).
    pub(super) fn broadcast_heartbeat(&mut self) {
        let round = self.reads.new_round(self.ticks, self.config.election_tick);
        let peers: Vec<S::NodeId> = self.peers.keys().cloned().collect();
        for to in peers {
            if let Some(peer) = self.peers.get(&to) {
                // Never tell a follower to commit past what it is known to hold.
                let commit = peer.progress.matched().min(self.log.committed());
                self.send_as_leader(
                    to,
                    MessageBody::Heartbeat {
                        commit,
                        read_round: round,
                    },
                );
            }
        }
    }

    /// Sends `to` AppendEntries while its flow control allows: one probe in
    /// Probe state, a pipeline up to the in-flight window in Replicate.
    /// With `even_if_empty`, the first message goes out even with no
    /// entries (to carry the commit index or probe).
    pub(super) fn send_appends(&mut self, to: &S::NodeId, even_if_empty: bool) {
        let mut even_if_empty = even_if_empty;
        while self.send_one_append(to, even_if_empty) {
            even_if_empty = false;
        }
    }

    fn send_one_append(&mut self, to: &S::NodeId, even_if_empty: bool) -> bool {
        let last_index = self.log.last_index();
        let committed = self.log.committed();
        let Some(peer) = self.peers.get(to) else {
            return false;
        };
        if peer.progress.is_paused() {
            return false;
        }
        let next = peer.progress.next();
        let prev_index = next - 1;
        let prev_term = match self.log.term(prev_index) {
            Ok(term) => term,
            Err(StorageError::Compacted { .. }) => {
                self.start_snapshot_send(to);
                return false;
            }
            Err(error) => {
                tracing::error!(%error, "progress points past the leader's log");
                return false;
            }
        };
        let entries = if next <= last_index {
            match self
                .log
                .slice(next, last_index + 1, self.config.max_size_per_msg)
            {
                Ok(entries) => entries,
                Err(StorageError::Compacted { .. }) => {
                    self.start_snapshot_send(to);
                    return false;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read entries to send");
                    return false;
                }
            }
        } else {
            Vec::new()
        };
        if entries.is_empty() && !even_if_empty {
            return false;
        }
        let bytes: u64 = entries.iter().map(Entry::size).sum();
        let last_sent = entries.last().map(|e| e.index);
        self.peers
            .get_mut(to)
            .expect("looked up above")
            .progress
            .sent(last_sent, bytes);
        self.send_as_leader(
            to.clone(),
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit: committed,
            },
        );
        last_sent.is_some()
    }

    /// The follower's side of AppendEntries (§5.3).
    pub(super) fn handle_append(
        &mut self,
        from: S::NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry<S::NodeId>>,
        commit: Index,
    ) {
        self.follow(from.clone());
        if self.restore_pending() {
            // The log is about to be replaced by a snapshot: the leader
            // retries once it is installed.
            self.counters.snapshot_busy += 1;
            return;
        }
        let committed = self.log.committed();
        if prev_index < committed {
            // Already committed here: a leader's copy is the same (§5.4).
            // An append that contradicts the committed log comes from a
            // faulty sender: no acknowledgement.
            let contradicts = self.log.term(prev_index).is_ok_and(|t| t != prev_term)
                || entries
                    .iter()
                    .take_while(|e| e.index <= committed)
                    .any(|e| self.log.term(e.index).is_ok_and(|t| t != e.term));
            if contradicts {
                self.counters.malformed += 1;
                return;
            }
            self.send(
                from,
                MessageBody::AppendResponse(AppendOutcome::Accepted {
                    last_index: committed,
                }),
            );
            return;
        }
        // The entries move into the log; configuration entries (rare) are
        // kept aside for the membership to follow them.
        let memberships: Vec<Entry<S::NodeId>> = entries
            .iter()
            .filter(|e| e.as_membership().is_some())
            .cloned()
            .collect();
        match self
            .log
            .maybe_append_owned(prev_index, prev_term, commit, entries)
        {
            Ok(Some(last_index)) => {
                self.membership_appended(&memberships);
                self.send(
                    from,
                    MessageBody::AppendResponse(AppendOutcome::Accepted { last_index }),
                );
            }
            Ok(None) => {
                let (hint_index, hint_term) = self
                    .log
                    .find_conflict_by_term(prev_index.min(self.log.last_index()), prev_term);
                self.send(
                    from,
                    MessageBody::AppendResponse(AppendOutcome::Rejected {
                        rejected: prev_index,
                        hint_index,
                        hint_term,
                    }),
                );
            }
            Err(error) => {
                self.counters.malformed += 1;
                tracing::warn!(%error, "refused an append");
            }
        }
    }

    /// A message only a leader sends arrived in the current term: follow
    /// its sender (a candidate of this term steps down, §5.2).
    pub(super) fn follow(&mut self, leader: S::NodeId) {
        if self.role != Role::Follower || self.leader.as_ref() != Some(&leader) {
            self.become_follower(self.term, Some(leader));
        }
        self.election_elapsed = 0;
        self.leader_contact = Some(0);
    }

    /// On the leader, the peer an answer came from, marked as heard from
    /// (check-quorum); `None` off the leader or for a stranger.
    pub(super) fn answering_peer(
        &mut self,
        from: &S::NodeId,
    ) -> Option<&mut super::Peer<S::NodeId>> {
        if self.role != Role::Leader {
            return None;
        }
        let peer = self.peers.get_mut(from)?;
        peer.recent_active = true;
        Some(peer)
    }

    pub(super) fn handle_append_response(&mut self, from: S::NodeId, outcome: AppendOutcome) {
        let last_index = self.log.last_index();
        let Some(peer) = self.answering_peer(&from) else {
            return;
        };
        match outcome {
            AppendOutcome::Accepted { last_index: acked } => {
                if acked > last_index {
                    self.counters.malformed += 1;
                    return;
                }
                let progress = &mut peer.progress;
                let advanced = progress.on_ack(acked);
                let probe_answered =
                    progress.state() == ReplicationState::Probe && acked == progress.matched();
                if advanced || probe_answered {
                    if progress.state() == ReplicationState::Probe {
                        progress.become_replicate();
                        // Caught up by log after a snapshot: the log after
                        // it may be compacted again.
                        peer.snapshot_floor = None;
                    }
                    if advanced {
                        self.maybe_commit();
                    }
                }
                self.send_appends(&from, false);
                self.maybe_finish_transfer(&from);
            }
            AppendOutcome::Rejected {
                rejected,
                hint_index,
                hint_term,
            } => {
                // The follower's log matches at most up to its hint; where
                // the leader's own log agrees with that is at most the last
                // leader entry whose term is at most the hinted term.
                let matches_up_to = if hint_term > 0 {
                    self.log.find_conflict_by_term(hint_index, hint_term).0
                } else {
                    hint_index
                };
                let progress = &mut self.peers.get_mut(&from).expect("looked up above").progress;
                if progress.on_reject(rejected, matches_up_to) {
                    if progress.state() == ReplicationState::Replicate {
                        progress.become_probe();
                    }
                    self.send_appends(&from, true);
                }
            }
        }
    }

    pub(super) fn handle_heartbeat(&mut self, from: S::NodeId, commit: Index, read_round: u64) {
        self.follow(from.clone());
        if commit > self.log.last_index() {
            self.counters.malformed += 1;
        } else {
            self.log
                .commit_to(commit)
                .expect("commit is within the log, checked above");
        }
        self.send(from, MessageBody::HeartbeatResponse { read_round });
    }

    pub(super) fn handle_heartbeat_response(&mut self, from: S::NodeId, read_round: u64) {
        let last_index = self.log.last_index();
        let Some(peer) = self.answering_peer(&from) else {
            return;
        };
        peer.progress.on_heartbeat_response();
        if peer.progress.state() == ReplicationState::Snapshot {
            self.snapshot_heartbeat_response(&from);
        } else if peer.progress.matched() < last_index {
            // Even with nothing new to send: an empty append probes whether
            // entries sent optimistically were lost.
            self.send_appends(&from, true);
        }
        self.on_read_round_ack(from, read_round);
    }

    /// The leader's commit rule: the index a majority holds, if it is from
    /// the current term (§5.3, §5.4.2). The leader's own copy counts once
    /// persisted.
    pub(super) fn maybe_commit(&mut self) {
        let me = &self.id;
        let persisted = self.log.persisted();
        let peers = &self.peers;
        let index = self.voters.committed_index(|n| {
            if n == me {
                Some(persisted)
            } else {
                peers.get(n).map(|p| p.progress.matched())
            }
        });
        if self.log.maybe_commit(index, self.term) {
            let committed = self.log.committed();
            while let Some(&(index, size)) = self.uncommitted.front() {
                if index > committed {
                    break;
                }
                self.uncommitted.pop_front();
                self.uncommitted_size -= size;
            }
            // Followers learn the new commit index from the next append.
            self.broadcast_pending = true;
            self.membership_committed();
        }
    }
}
