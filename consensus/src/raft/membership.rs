//! Membership changes (thesis §4): single-server changes and learners;
//! joint changes (thesis §4.3) in [`joint`].
//!
//! A configuration entry takes effect on a node as soon as the node
//! appends it, committed or not (thesis §4.1), and the previous membership
//! comes back if a new leader truncates the entry; so the node keeps the
//! configuration entries of its log, back to the latest one a snapshot
//! covers. A leader proposes one change at a time, and only once it has
//! committed an entry of its own term (thesis §4.1, the 2015 fix to
//! single-server changes). A leader that removes itself leads until the
//! removal commits, then steps down (thesis §4.2.2).

use super::{NodeId, Peer, RaftNode, Role};
use crate::entry::{Entry, Index, Term};
use crate::membership::{Membership, MembershipChange, MembershipError};
use crate::output::ProposalId;
use crate::progress::Progress;
use crate::quorum::JointMajority;
use crate::storage::{Storage, StorageError};

mod joint;

/// The voters who decide under `membership`: both sets while joint.
pub(super) fn quorum_of<N: NodeId>(membership: &Membership<N>) -> JointMajority<N> {
    JointMajority::new(
        membership.voters().iter().cloned(),
        membership.outgoing_voters().iter().cloned(),
    )
}

/// The configuration entries of the log, oldest first. The first is the
/// base: the membership of a snapshot or of storage (index 0 or the
/// snapshot's), or a configuration entry the log no longer needs to prove.
#[derive(Debug, Clone)]
pub(super) struct History<N> {
    /// `(index, term, membership)`; never empty, indexes increasing.
    entries: Vec<(Index, Term, Membership<N>)>,
}

impl<N: NodeId> History<N> {
    pub(super) fn new(index: Index, term: Term, base: Membership<N>) -> Self {
        Self {
            entries: vec![(index, term, base)],
        }
    }

    /// The membership in force: the last configuration entry's.
    pub(super) fn current(&self) -> &Membership<N> {
        &self.entries.last().expect("never empty").2
    }

    /// The index of the entry that set the current membership.
    pub(super) fn current_index(&self) -> Index {
        self.entries.last().expect("never empty").0
    }

    /// The membership at `index` (`None`: older than the history goes).
    pub(super) fn at(&self, index: Index) -> Option<&Membership<N>> {
        self.entries
            .iter()
            .rev()
            .find(|(i, _, _)| *i <= index)
            .map(|(_, _, m)| m)
    }

    /// The membership before the current one, if the history holds it.
    fn previous(&self) -> Option<&Membership<N>> {
        let len = self.entries.len();
        (len >= 2).then(|| &self.entries[len - 2].2)
    }

    fn push(&mut self, index: Index, term: Term, membership: Membership<N>) {
        if index > self.current_index() {
            self.entries.push((index, term, membership));
        }
    }

    /// Forgets entries older than the last one at or below `floor`.
    fn prune(&mut self, floor: Index) {
        let keep_from = self
            .entries
            .iter()
            .rposition(|(i, _, _)| *i <= floor)
            .unwrap_or(0);
        self.entries.drain(..keep_from);
    }
}

impl<S> RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    /// The membership in force on this node: that of the last
    /// configuration entry in its log, committed or not (thesis §4.1);
    /// joint ([`Membership::is_joint`]) between a joint change and the
    /// entry that leaves it.
    pub fn membership(&self) -> &Membership<S::NodeId> {
        self.history.current()
    }

    /// Whether this node may campaign: it votes in the membership in
    /// force, or that membership is not committed yet and it voted in the
    /// one before. Thesis §4.2.2: a server left out of its own latest,
    /// uncommitted configuration may still be needed to elect a leader
    /// that commits it (its longer log can refuse the others' votes); it
    /// campaigns then without counting its own vote.
    pub(super) fn promotable(&self) -> bool {
        self.voters.contains(&self.id)
            || (self.history.current_index() > self.log.committed()
                && self
                    .history
                    .previous()
                    .is_some_and(|m| m.is_voter(&self.id)))
    }

    /// The membership history on restart: the snapshot's (or storage's)
    /// membership, then every configuration entry in the log.
    pub(super) fn recover_history(&mut self, base: Membership<S::NodeId>) {
        let (index, term) = self
            .log
            .storage()
            .snapshot()
            .map_or((0, 0), |s| (s.index, s.term));
        self.history = History::new(index, term, base);
        let (first, last) = (self.log.first_index(), self.log.last_index());
        match self.log.slice(first, last + 1, u64::MAX) {
            Ok(entries) => self.membership_appended(&entries),
            Err(error) => tracing::error!(%error, "cannot read the log to recover membership"),
        }
    }

    /// Proposes a single-server membership change (thesis §4.2). The
    /// configuration entry takes effect on the leader at once, on each
    /// follower when it appends it, and comes out in
    /// [`Output::Apply`](crate::Output::Apply) once committed, like a
    /// command (its [`EntryKind`](crate::EntryKind) says which). To change
    /// several members at once, use [`propose_joint`](Self::propose_joint).
    ///
    /// # Errors
    /// [`MembershipError::NotLeader`] off the leader,
    /// [`MembershipError::TransferInProgress`] while handing leadership
    /// over, [`MembershipError::Pending`] while another change is
    /// uncommitted, [`MembershipError::LeaderNotReady`] while this leader
    /// has not committed an entry of its term,
    /// [`MembershipError::NotCaughtUp`] for a voter that is behind (a
    /// learner not caught up, or a node that is not a learner yet), and
    /// the errors of [`Membership::apply`] ([`MembershipError::InJoint`]
    /// while the membership is joint). Nothing changes.
    pub fn propose_membership(
        &mut self,
        change: MembershipChange<S::NodeId>,
    ) -> Result<ProposalId, MembershipError<S::NodeId>> {
        self.may_change_membership(false)?;
        let next = self.membership().apply(&change)?;
        if let MembershipChange::AddVoter(node) = &change {
            self.caught_up(node)?;
        }
        tracing::debug!(id = ?self.id, ?change, "membership change proposed");
        Ok(self.append_membership(next))
    }

    /// The guards every change a caller proposes must pass: this node
    /// leads, no transfer runs, a joint configuration is in force exactly
    /// when the change is `leaving` it (every other change waits until
    /// none is), no change is uncommitted, and an entry of this leader's
    /// term is committed (thesis §4.1, the 2015 fix to single-server
    /// changes; joint changes keep it too).
    pub(super) fn may_change_membership(
        &self,
        leaving: bool,
    ) -> Result<(), MembershipError<S::NodeId>> {
        if self.role != Role::Leader {
            return Err(MembershipError::NotLeader {
                leader: self.leader.clone(),
            });
        }
        if self.transfer_target.is_some() {
            return Err(MembershipError::TransferInProgress);
        }
        match (self.membership().is_joint(), leaving) {
            (true, false) => return Err(MembershipError::InJoint),
            (false, true) => return Err(MembershipError::NotJoint),
            _ => {}
        }
        if self.history.current_index() > self.log.committed() {
            return Err(MembershipError::Pending);
        }
        if !self.committed_in_term() {
            return Err(MembershipError::LeaderNotReady);
        }
        Ok(())
    }

    /// Leader: whether `node` holds enough of the log to be made a voter
    /// now: its match index is at least 90% of this leader's last index
    /// (etcd's rule, thesis §4.2.1). `false` off the leader and for a node
    /// it does not replicate to. An application promoting a learner asks
    /// this after each drain, rather than proposing until
    /// [`MembershipError::NotCaughtUp`] stops.
    pub fn is_caught_up(&self, node: &S::NodeId) -> bool {
        self.role == Role::Leader && self.peers.contains_key(node) && self.caught_up(node).is_ok()
    }

    /// etcd's rule: a voter is added only once it holds 90% of the
    /// leader's log, so it does not stall commits while it catches up
    /// (thesis §4.2.1); a new node joins as a learner first.
    pub(super) fn caught_up(&self, node: &S::NodeId) -> Result<(), MembershipError<S::NodeId>> {
        let matched = self.peers.get(node).map_or(0, |p| p.progress.matched());
        let last_index = self.log.last_index();
        if u128::from(matched) * 10 < u128::from(last_index) * 9 {
            return Err(MembershipError::NotCaughtUp {
                matched,
                last_index,
            });
        }
        Ok(())
    }

    /// The leader appends a configuration entry setting `next`; it takes
    /// effect at once (thesis §4.1).
    pub(super) fn append_membership(&mut self, next: Membership<S::NodeId>) -> ProposalId {
        // A quiesced leader wakes to replicate the change.
        self.wake_for_input();
        let index = self.log.last_index() + 1;
        let entry = Entry::membership(self.term, index, next);
        let size = entry.size();
        self.log
            .append(std::slice::from_ref(&entry))
            .expect("a leader's new entry continues its log past the commit index");
        self.uncommitted.push_back((index, size));
        self.uncommitted_size += size;
        self.broadcast_pending = true;
        self.membership_appended(&[entry]);
        ProposalId {
            term: self.term,
            index,
        }
    }

    /// Entries were appended to the log (a proposal, or a leader's append
    /// on a follower, which may have truncated a conflicting tail): the
    /// configuration entries among them take effect, and those no longer
    /// in the log are undone (thesis §4.1).
    pub(super) fn membership_appended(&mut self, entries: &[Entry<S::NodeId>]) {
        let log = &self.log;
        let before = self.history.current_index();
        // The base (first) is committed or a snapshot's: never truncated.
        // The commit index may already cover the entries that replaced a
        // truncated one, so the log itself is the judge.
        let mut position = 0;
        self.history.entries.retain(|(index, term, _)| {
            position += 1;
            position == 1
                || matches!(log.term(*index), Ok(t) if t == *term)
                || matches!(log.term(*index), Err(StorageError::Compacted { .. }))
        });
        let mut changed = self.history.current_index() != before;
        for entry in entries {
            if let Some(membership) = entry.as_membership() {
                if self.log.term(entry.index) == Ok(entry.term)
                    && entry.index > self.history.current_index()
                {
                    self.history
                        .push(entry.index, entry.term, membership.clone());
                    changed = true;
                }
            }
        }
        if changed {
            self.membership_changed();
        }
        let floor = self.log.storage().snapshot().map_or(0, |s| s.index);
        self.history.prune(floor.min(self.log.committed()));
    }

    /// A snapshot replaced the log up to `index`: its membership is the
    /// base, and configuration entries after it stay if the log kept them.
    pub(super) fn membership_restored(
        &mut self,
        index: Index,
        term: Term,
        membership: Membership<S::NodeId>,
    ) {
        let mut history = History::new(index, term, membership);
        for (i, t, m) in self.history.entries.drain(..) {
            if i > index && self.log.term(i) == Ok(t) {
                history.push(i, t, m);
            }
        }
        self.history = history;
        self.membership_changed();
    }

    /// Sets the voters (and, on the leader, the peers it replicates to)
    /// from the membership in force.
    fn membership_changed(&mut self) {
        let membership = self.history.current().clone();
        tracing::debug!(id = ?self.id, ?membership, "membership in force");
        self.voters = quorum_of(&membership);
        self.forget_non_members();
        if self.role != Role::Leader {
            return;
        }
        let gone: Vec<S::NodeId> = self
            .peers
            .keys()
            .filter(|p| !membership.contains(p))
            .cloned()
            .collect();
        for peer in gone {
            self.end_snapshot_send(&peer, Some(crate::snapshot::SnapshotAbortReason::Cancelled));
            self.peers.remove(&peer);
        }
        let next = self.log.last_index() + 1;
        for member in membership.members() {
            if *member != self.id && !self.peers.contains_key(member) {
                let peer = self.new_peer(next);
                self.peers.insert(member.clone(), peer);
            }
        }
        if self
            .transfer_target
            .as_ref()
            .is_some_and(|t| !membership.is_voter(t))
        {
            self.transfer_target = None;
        }
    }

    /// A leader's fresh view of a peer whose log it has not seen.
    pub(super) fn new_peer(&self, next: Index) -> Peer<S::NodeId> {
        Peer {
            progress: Progress::new(
                next,
                self.config.max_inflight_msgs,
                self.config.max_inflight_bytes,
            ),
            recent_active: false,
            read_round: 0,
            transfer: None,
            snapshot_floor: None,
        }
    }

    /// The commit index advanced: a leader whose removal is now committed
    /// steps down (thesis §4.2.2), after telling the others the commit
    /// index; a leader whose joint configuration is committed leaves it if
    /// it should ([`JointLeave::Auto`](crate::JointLeave::Auto)); the
    /// history forgets what the latest snapshot covers.
    pub(super) fn membership_committed(&mut self) {
        let floor = self.log.storage().snapshot().map_or(0, |s| s.index);
        self.history.prune(floor.min(self.log.committed()));
        if self.role == Role::Leader
            && !self.membership().is_voter(&self.id)
            && self.history.current_index() <= self.log.committed()
        {
            tracing::debug!(id = ?self.id, term = self.term, "removed: stepping down");
            self.broadcast_append();
            self.become_follower(self.term, None);
            return;
        }
        self.maybe_auto_leave();
    }

    /// Whether a message from `from` may be handled: anything from a
    /// member; from anyone, a leader's messages and vote requests, and
    /// anything at all on a node that is not a member itself (joining, or
    /// removed as far as its log knows). Servers process RPCs without
    /// consulting their configurations (thesis §4.1): a node whose log is
    /// behind may not know its leader, or a candidate that needs its vote,
    /// yet. A removed node cannot disrupt the cluster through them:
    /// check-quorum's lease ignores its vote requests while a leader is
    /// heard from (thesis §4.2.3), pre-vote keeps it from raising terms
    /// (its log stops at its removal), and a stale leader is refused by
    /// term. (Filtering vote requests by membership instead cost liveness
    /// in the simulator: a node whose membership is stale ignored the
    /// candidate the cluster needed.)
    pub(super) fn accepts_from(&self, from: &S::NodeId, from_leader: bool, vote: bool) -> bool {
        let membership = self.membership();
        from_leader || vote || membership.contains(from) || !membership.contains(&self.id)
    }
}
