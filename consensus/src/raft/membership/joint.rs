//! Joint consensus (Raft §6, thesis §4.3), with etcd's automatic leave
//! (`ConfChangeV2`).
//!
//! A joint change moves the cluster from C_old to C_new in two
//! configuration entries. The first sets the joint configuration
//! C_old,new, in which every decision (commit, votes and pre-votes,
//! check-quorum, ReadIndex rounds and so the lease) needs a majority of
//! C_old and a majority of C_new; the second leaves it for C_new alone.
//! Any majority of C_old,new overlaps any majority of C_old and any of
//! C_new, and a leader of C_new can only be elected once C_old,new is
//! committed, so C_old and C_new never decide apart (§6). Each entry takes
//! effect on append and reverts on truncation like any configuration entry
//! (thesis §4.1).
//!
//! Leaving is automatic ([`JointLeave::Auto`]): the leader appends the
//! leaving entry as soon as the joint entry commits, and a later leader
//! that finds a committed auto-leave joint configuration in force does the
//! same once its first entry commits (etcd proposes it when it applies the
//! joint entry; here it is when the leader learns the joint entry is
//! committed, which is no later). Or explicit ([`JointLeave::Explicit`]):
//! the application calls [`RaftNode::propose_leave_joint`]. A leader
//! outside C_new leads until the leaving entry commits, then steps down
//! (thesis §4.2.2, as for a single-server removal).

use super::super::{NodeId, RaftNode, Role};
use crate::membership::{JointLeave, MembershipChange, MembershipError};
use crate::output::ProposalId;
use crate::storage::Storage;

impl<S> RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    /// Proposes a joint membership change (Raft §6, thesis §4.3; etcd's
    /// `ConfChangeV2` with several changes): `changes` are applied in
    /// order to today's membership (see
    /// [`Membership::enter_joint`](crate::Membership::enter_joint)), so
    /// several voters and learners may be added, removed, promoted or
    /// demoted at once (replace node 3 by node 4: `[AddVoter(4),
    /// Remove(3)]`). The entry sets the joint configuration; the joint
    /// configuration is left with [`JointLeave::Auto`] (etcd's
    /// `ConfChangeTransitionJointImplicit`) as soon as it commits, or with
    /// [`JointLeave::Explicit`] (`ConfChangeTransitionJointExplicit`) when
    /// [`propose_leave_joint`](Self::propose_leave_joint) is called. Both
    /// entries come out in [`Output::Apply`](crate::Output::Apply) once
    /// committed. The returned id is the joint entry's.
    ///
    /// The guards are those of
    /// [`propose_membership`](Self::propose_membership): this node leads,
    /// has committed an entry of its term, no change is uncommitted, no
    /// transfer runs, and every node that becomes a voter holds 90% of the
    /// leader's log (etcd's rule; so a new node joins as a learner first,
    /// possibly through an earlier joint change).
    ///
    /// # Errors
    /// [`MembershipError::NotLeader`],
    /// [`MembershipError::TransferInProgress`],
    /// [`MembershipError::InJoint`] while a joint configuration is in
    /// force, [`MembershipError::Pending`],
    /// [`MembershipError::LeaderNotReady`],
    /// [`MembershipError::NotCaughtUp`] for a new voter that is behind,
    /// and the errors of
    /// [`Membership::enter_joint`](crate::Membership::enter_joint)
    /// ([`MembershipError::NoVotersLeft`], [`MembershipError::NoChange`]).
    /// Nothing changes.
    pub fn propose_joint(
        &mut self,
        changes: impl IntoIterator<Item = MembershipChange<S::NodeId>>,
        leave: JointLeave,
    ) -> Result<ProposalId, MembershipError<S::NodeId>> {
        self.may_change_membership(false)?;
        let current = self.membership();
        let next = current.enter_joint(changes, leave)?;
        for node in next.voters() {
            if !current.is_voter(node) {
                self.caught_up(node)?;
            }
        }
        tracing::debug!(id = ?self.id, ?next, "joint membership proposed");
        Ok(self.append_membership(next))
    }

    /// Proposes leaving the joint configuration in force for its incoming
    /// voters (etcd: an empty `ConfChangeV2`), which is needed after a
    /// [`JointLeave::Explicit`] change; it is allowed after
    /// [`JointLeave::Auto`] too, though the leader does it by itself.
    ///
    /// # Errors
    /// [`MembershipError::NotLeader`],
    /// [`MembershipError::TransferInProgress`],
    /// [`MembershipError::NotJoint`] if no joint configuration is in
    /// force, [`MembershipError::Pending`] while the joint entry is
    /// uncommitted, and [`MembershipError::LeaderNotReady`] while this
    /// leader has not committed an entry of its term.
    /// Nothing changes.
    pub fn propose_leave_joint(&mut self) -> Result<ProposalId, MembershipError<S::NodeId>> {
        self.may_change_membership(true)?;
        let next = self.membership().leave_joint()?;
        tracing::debug!(id = ?self.id, ?next, "leaving the joint membership");
        Ok(self.append_membership(next))
    }

    /// On the leader, once the commit index moved: leaves a committed
    /// joint configuration marked [`JointLeave::Auto`]. A new leader gets
    /// here when its first entry commits, which commits the joint entry
    /// if it was not yet (§5.4.2), so a joint configuration never outlives
    /// the leader that entered it.
    pub(in crate::raft) fn maybe_auto_leave(&mut self) {
        let membership = self.membership();
        if self.role != Role::Leader
            || !membership.auto_leave()
            || self.history.current_index() > self.log.committed()
            || !self.committed_in_term()
        {
            return;
        }
        let next = membership
            .leave_joint()
            .expect("a membership that leaves on its own is joint");
        tracing::debug!(id = ?self.id, ?next, "leaving the joint membership on its own");
        self.append_membership(next);
    }
}
