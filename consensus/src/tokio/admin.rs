//! Membership changes (thesis §4) and leadership transfer (thesis §3.10)
//! through the driver: the commands a [`Handle`](super::Handle) sends, and
//! the bookkeeping that answers them once the configuration entry is
//! applied (committed) on this node or the transfer is over.

use std::collections::BTreeMap;

use ::tokio::sync::oneshot;

use crate::entry::{Entry, Index, Term};
use crate::membership::{JointLeave, Membership, MembershipChange, MembershipError};
use crate::raft::{NodeId, RaftNode, Role, TransferError};
use crate::snapshot::SnapshotMeta;
use crate::storage::Storage;

/// Why a membership change through the [`Handle`](super::Handle)
/// ([`add_learner`](super::Handle::add_learner),
/// [`promote`](super::Handle::promote), [`remove`](super::Handle::remove),
/// [`change_joint`](super::Handle::change_joint),
/// [`leave_joint`](super::Handle::leave_joint)) did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipChangeError<N> {
    /// This node is not the leader; `leader` is the one it knows of.
    /// Nothing changed: retry there.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<N>,
    },
    /// Another change is not committed yet, the membership is joint (leave
    /// it first), or a leadership transfer runs. Nothing changed; retry
    /// once it is over.
    #[error("a membership change or leadership transfer is in progress")]
    InProgress,
    /// The leader has not committed an entry of its term yet (thesis
    /// §4.1). Nothing changed; retry shortly.
    #[error("the leader has not committed an entry of its term yet")]
    LeaderNotReady,
    /// The leader refused the change for another reason: a new voter not
    /// caught up ([`MembershipError::NotCaughtUp`]: retry once the
    /// learner has replicated more), a change that changes nothing, one
    /// that leaves no voter. Nothing changed.
    #[error("refused: {0}")]
    Refused(MembershipError<N>),
    /// The configuration entry was appended at `index` but a new leader
    /// did not keep it: it never takes effect. Retrying is safe.
    #[error("lost to a leader change: entry {index} was not kept")]
    Lost {
        /// The index it had been appended at.
        index: Index,
    },
    /// A snapshot from a new leader covered the entry's index before this
    /// node applied it: whether the change committed is not known here
    /// (see the membership now in force). Nothing else changed here.
    #[error("entry {index} was covered by a snapshot before it was applied here")]
    Snapshotted {
        /// The index it had been appended at.
        index: Index,
    },
    /// The driver stopped before the change was applied here.
    #[error("the driver has shut down")]
    ShutDown,
}

impl<N> MembershipChangeError<N> {
    fn refused(e: MembershipError<N>) -> Self {
        match e {
            MembershipError::NotLeader { leader } => Self::NotLeader { leader },
            MembershipError::Pending
            | MembershipError::InJoint
            | MembershipError::TransferInProgress => Self::InProgress,
            MembershipError::LeaderNotReady => Self::LeaderNotReady,
            e => Self::Refused(e),
        }
    }
}

/// Why a leadership transfer through
/// [`Handle::transfer_leader`](super::Handle::transfer_leader) did not
/// complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferLeaderError<N> {
    /// This node is not the leader; `leader` is the one it knows of.
    /// Nothing changed: ask there.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<N>,
    },
    /// The target is not a voter. Nothing changed.
    #[error("the target is not a voter")]
    NotAVoter,
    /// Another transfer asked through this driver is still running.
    /// Nothing changed.
    #[error("a leadership transfer is in progress")]
    InProgress,
    /// The transfer was abandoned (the target did not win within an
    /// election timeout, so this node leads on) or another node than the
    /// target became leader. Proposals go on wherever the leader is.
    #[error("the transfer did not complete (leader now: {leader:?})")]
    Failed {
        /// The leader this node knows of now.
        leader: Option<N>,
    },
    /// The driver stopped.
    #[error("the driver has shut down")]
    ShutDown,
}

/// A membership change asked through a handle.
#[derive(Debug, Clone)]
pub(super) enum ChangeRequest<N> {
    Single(MembershipChange<N>),
    Joint(Vec<MembershipChange<N>>, JointLeave),
    LeaveJoint,
}

pub(super) type ChangeReply<N> = oneshot::Sender<Result<Index, MembershipChangeError<N>>>;
pub(super) type TransferReply<N> = oneshot::Sender<Result<(), TransferLeaderError<N>>>;

/// A change waiting for its entry to be applied.
struct PendingChange<N> {
    term: Term,
    /// A joint change left on its own: it resolves once the membership
    /// leaves the joint configuration, not when the joint entry applies.
    auto_leave: bool,
    reply: ChangeReply<N>,
}

/// The driver's membership and transfer bookkeeping.
pub(super) struct Admin<N> {
    changes: BTreeMap<Index, PendingChange<N>>,
    /// Auto-leave joint changes whose joint entry applied: answered by the
    /// next simple membership applied.
    leaving: Vec<ChangeReply<N>>,
    transfer: Option<(N, TransferReply<N>)>,
}

impl<N: NodeId> Admin<N> {
    pub(super) fn new() -> Self {
        Self {
            changes: BTreeMap::new(),
            leaving: Vec::new(),
            transfer: None,
        }
    }

    pub(super) fn change<S: Storage<NodeId = N>>(
        &mut self,
        node: &mut RaftNode<S>,
        request: ChangeRequest<N>,
        reply: ChangeReply<N>,
    ) {
        let (result, auto_leave) = match request {
            ChangeRequest::Single(change) => (node.propose_membership(change), false),
            ChangeRequest::Joint(changes, leave) => (
                node.propose_joint(changes, leave),
                leave == JointLeave::Auto,
            ),
            ChangeRequest::LeaveJoint => (node.propose_leave_joint(), false),
        };
        match result {
            Ok(id) => {
                self.changes.insert(
                    id.index,
                    PendingChange {
                        term: id.term,
                        auto_leave,
                        reply,
                    },
                );
            }
            Err(e) => {
                let _ = reply.send(Err(MembershipChangeError::refused(e)));
            }
        }
    }

    /// An entry was applied on this node.
    pub(super) fn applied(&mut self, entry: &Entry<N>) {
        if let Some(pending) = self.changes.remove(&entry.index) {
            if pending.term != entry.term {
                let _ = pending
                    .reply
                    .send(Err(MembershipChangeError::Lost { index: entry.index }));
            } else if pending.auto_leave && entry.as_membership().is_some_and(Membership::is_joint)
            {
                self.leaving.push(pending.reply);
            } else {
                let _ = pending.reply.send(Ok(entry.index));
            }
        }
        if entry.as_membership().is_some_and(|m| !m.is_joint()) {
            for reply in self.leaving.drain(..) {
                let _ = reply.send(Ok(entry.index));
            }
        }
    }

    /// An entry of `term` committed at `index`: changes of an older term
    /// after it are lost (the rule of `Driver::drop_overtaken`).
    pub(super) fn overtaken(&mut self, index: Index, term: Term) {
        let lost: Vec<Index> = self
            .changes
            .range(index + 1..)
            .filter(|(_, p)| p.term < term)
            .map(|(i, _)| *i)
            .collect();
        for i in lost {
            if let Some(pending) = self.changes.remove(&i) {
                let _ = pending
                    .reply
                    .send(Err(MembershipChangeError::Lost { index: i }));
            }
        }
    }

    /// A snapshot from the leader was restored: changes at or below its
    /// index end (lost if their term is newer than the snapshot's last
    /// entry's, which no log holding that entry can hold before it; else
    /// unknown), and auto-leave changes end if its membership is simple.
    pub(super) fn snapshot_restored(&mut self, meta: &SnapshotMeta<N>) {
        let covered: Vec<Index> = self.changes.range(..=meta.index).map(|(i, _)| *i).collect();
        for index in covered {
            if let Some(pending) = self.changes.remove(&index) {
                let error = if pending.term > meta.term {
                    MembershipChangeError::Lost { index }
                } else {
                    MembershipChangeError::Snapshotted { index }
                };
                let _ = pending.reply.send(Err(error));
            }
        }
        if !meta.membership.is_joint() {
            for reply in self.leaving.drain(..) {
                let _ = reply.send(Ok(meta.index));
            }
        }
        self.overtaken(meta.index, meta.term);
    }

    pub(super) fn transfer<S: Storage<NodeId = N>>(
        &mut self,
        node: &mut RaftNode<S>,
        target: N,
        reply: TransferReply<N>,
    ) {
        if self.transfer.is_some() {
            let _ = reply.send(Err(TransferLeaderError::InProgress));
            return;
        }
        match node.transfer_leadership(target.clone()) {
            Ok(()) if &target == node.id() => {
                let _ = reply.send(Ok(()));
            }
            Ok(()) => self.transfer = Some((target, reply)),
            Err(TransferError::NotLeader) => {
                let _ = reply.send(Err(TransferLeaderError::NotLeader {
                    leader: node.leader().cloned(),
                }));
            }
            Err(_) => {
                let _ = reply.send(Err(TransferLeaderError::NotAVoter));
            }
        }
    }

    /// After every drain: ends a transfer that completed (the target
    /// leads, as far as this node knows) or was abandoned.
    pub(super) fn check_transfer<S: Storage<NodeId = N>>(&mut self, node: &RaftNode<S>) {
        let Some((target, _)) = &self.transfer else {
            return;
        };
        let result = match (node.role(), node.leader()) {
            (Role::Leader, _) if node.transfer_target() == Some(target) => return,
            (Role::Leader, _) => Err(TransferLeaderError::Failed {
                leader: Some(node.id().clone()),
            }),
            (_, Some(leader)) if leader == target => Ok(()),
            (_, Some(leader)) => Err(TransferLeaderError::Failed {
                leader: Some(leader.clone()),
            }),
            (_, None) => return,
        };
        if let Some((_, reply)) = self.transfer.take() {
            let _ = reply.send(result);
        }
    }
}
