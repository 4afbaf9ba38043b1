//! Cluster membership (thesis §4): who votes, who only learns, and the
//! changes that move from one membership to the next.
//!
//! A membership travels in a configuration entry of the log
//! ([`EntryKind::Membership`](crate::EntryKind::Membership)) and takes
//! effect on each node as soon as that node appends it (thesis §4.1).
//! Changing one voter at a time keeps every majority of the old voters
//! overlapping every majority of the new ones (thesis §4.2), so no joint
//! configuration is needed for it. Changing several at once goes through
//! a **joint configuration** (Raft §6, thesis §4.3): the outgoing voters
//! (C_old) and the incoming ones (C_new) decide together, each decision
//! needing a majority of both, until a second entry leaves the joint
//! configuration for C_new alone.

use crate::NodeId;
use crate::entry::Index;

/// The members of the cluster: voters decide (elections, commits, read
/// confirmations); learners receive the log and snapshots but never vote
/// and never campaign.
///
/// A membership is either simple (one set of voters) or **joint** (Raft
/// §6, thesis §4.3, etcd's `ConfState` with `voters_outgoing`): while
/// joint, the outgoing voters ([`outgoing_voters`](Self::outgoing_voters),
/// C_old) vote alongside the incoming ones ([`voters`](Self::voters),
/// C_new), and every decision needs a majority of each. A voter demoted to
/// learner by a joint change stays an outgoing voter until the joint
/// configuration is left, then becomes a learner
/// ([`learners_next`](Self::learners_next), etcd's `learners_next`).
///
/// ```
/// use dsys_consensus::{JointLeave, Membership, MembershipChange};
///
/// // Replace node 3 by node 4 (a learner, caught up) in one step.
/// let old = Membership::new([1u64, 2, 3], [4]);
/// let joint = old.enter_joint(
///     [MembershipChange::AddVoter(4), MembershipChange::Remove(3)],
///     JointLeave::Auto,
/// )?;
/// assert!(joint.is_joint() && joint.auto_leave());
/// assert_eq!(joint.voters(), &[1, 2, 4]); // C_new
/// assert_eq!(joint.outgoing_voters(), &[1, 2, 3]); // C_old
/// assert!(joint.is_voter(&3) && joint.is_voter(&4));
/// let new = joint.leave_joint()?;
/// assert_eq!(new, Membership::from_voters([1, 2, 4]));
/// # Ok::<(), dsys_consensus::MembershipError<u64>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Membership<N> {
    /// The incoming voters (all voters when not joint). Sorted, without
    /// duplicates.
    voters: Vec<N>,
    /// The outgoing voters; empty unless joint. Sorted, without
    /// duplicates. (The fields added for joint consensus default to a
    /// simple membership, so a self-describing format such as JSON reads
    /// memberships written before they existed.)
    #[cfg_attr(feature = "serde", serde(default = "Vec::new"))]
    outgoing: Vec<N>,
    /// Sorted, without duplicates, none of them a voter of either set.
    learners: Vec<N>,
    /// Outgoing voters that become learners when the joint configuration
    /// is left; empty unless joint. Sorted, without duplicates.
    #[cfg_attr(feature = "serde", serde(default = "Vec::new"))]
    learners_next: Vec<N>,
    /// The leader leaves the joint configuration on its own once it is
    /// committed; false unless joint.
    #[cfg_attr(feature = "serde", serde(default))]
    auto_leave: bool,
}

/// How a joint configuration is left (etcd's `ConfChangeTransition`,
/// less its `ConfChangeTransitionAuto`, which picks a single-server change
/// when one suffices: here the caller picks, with
/// [`RaftNode::propose_membership`](crate::RaftNode::propose_membership)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum JointLeave {
    /// The leader appends the entry that leaves the joint configuration as
    /// soon as the joint entry commits, and so does any later leader that
    /// finds the committed joint configuration in force (etcd's
    /// `ConfChangeTransitionJointImplicit`).
    Auto,
    /// The joint configuration stays until the application calls
    /// [`RaftNode::propose_leave_joint`](crate::RaftNode::propose_leave_joint)
    /// (etcd's `ConfChangeTransitionJointExplicit`, left with an empty
    /// `ConfChangeV2`).
    Explicit,
}

impl<N> Membership<N> {
    /// The voters: all of them in a simple membership; the incoming voters
    /// (C_new) while joint. Ascending.
    pub fn voters(&self) -> &[N] {
        &self.voters
    }

    /// The outgoing voters (C_old) while joint, empty otherwise. Ascending.
    pub fn outgoing_voters(&self) -> &[N] {
        &self.outgoing
    }

    /// The learners, ascending (not counting [`learners_next`](Self::learners_next)).
    pub fn learners(&self) -> &[N] {
        &self.learners
    }

    /// Outgoing voters that become learners when the joint configuration
    /// is left (a voter demoted by a joint change); empty unless joint.
    /// Ascending.
    pub fn learners_next(&self) -> &[N] {
        &self.learners_next
    }

    /// Whether this is a joint configuration (Raft §6): C_old and C_new
    /// both decide.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether the leader leaves this joint configuration on its own
    /// ([`JointLeave::Auto`]); false for a simple membership.
    pub fn auto_leave(&self) -> bool {
        self.auto_leave
    }
}

fn sorted<N: Ord>(nodes: impl IntoIterator<Item = N>) -> Vec<N> {
    let mut nodes: Vec<N> = nodes.into_iter().collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

fn insert<N: Ord>(set: &mut Vec<N>, node: N) {
    if let Err(at) = set.binary_search(&node) {
        set.insert(at, node);
    }
}

fn remove<N: Ord>(set: &mut Vec<N>, node: &N) {
    if let Ok(at) = set.binary_search(node) {
        set.remove(at);
    }
}

impl<N: NodeId> Membership<N> {
    /// A membership of `voters` and `learners` (order and duplicates do
    /// not matter; a node listed in both is a voter).
    pub fn new(voters: impl IntoIterator<Item = N>, learners: impl IntoIterator<Item = N>) -> Self {
        Self::joint(voters, [], learners, [], false)
    }

    /// Only voters.
    pub fn from_voters(voters: impl IntoIterator<Item = N>) -> Self {
        Self::new(voters, [])
    }

    /// A joint membership of `incoming` (C_new) and `outgoing` (C_old)
    /// voters, with `learners` and `learners_next` (outgoing voters that
    /// become learners on leaving), left on its own if `auto_leave`; as a
    /// snapshot or a bootstrap may hold. Order and duplicates do not
    /// matter; a voter of either set listed as a learner is a voter, and a
    /// node in `learners_next` that is not an outgoing-only voter is
    /// dropped from it. With no outgoing voters this is the simple
    /// membership of `incoming` and `learners` (`learners_next` and
    /// `auto_leave` are then ignored). Changes go through
    /// [`enter_joint`](Self::enter_joint), which builds this for you.
    pub fn joint(
        incoming: impl IntoIterator<Item = N>,
        outgoing: impl IntoIterator<Item = N>,
        learners: impl IntoIterator<Item = N>,
        learners_next: impl IntoIterator<Item = N>,
        auto_leave: bool,
    ) -> Self {
        let voters = sorted(incoming);
        let outgoing = sorted(outgoing);
        let is_voter = |n: &N| voters.binary_search(n).is_ok() || outgoing.binary_search(n).is_ok();
        let learners: Vec<N> = sorted(learners.into_iter().filter(|n| !is_voter(n)));
        let learners_next: Vec<N> = sorted(
            learners_next
                .into_iter()
                .filter(|n| outgoing.binary_search(n).is_ok() && voters.binary_search(n).is_err()),
        );
        let auto_leave = auto_leave && !outgoing.is_empty();
        Self {
            voters,
            outgoing,
            learners,
            learners_next,
            auto_leave,
        }
    }

    /// Whether `node` votes: it is a voter of the incoming set or, while
    /// joint, of the outgoing one.
    pub fn is_voter(&self, node: &N) -> bool {
        self.voters.binary_search(node).is_ok() || self.outgoing.binary_search(node).is_ok()
    }

    /// Whether `node` is a learner (a node of
    /// [`learners_next`](Self::learners_next) is not one yet: it still
    /// votes in the outgoing set).
    pub fn is_learner(&self, node: &N) -> bool {
        self.learners.binary_search(node).is_ok()
    }

    /// Whether `node` is a voter (of either set) or a learner.
    pub fn contains(&self, node: &N) -> bool {
        self.is_voter(node) || self.is_learner(node)
    }

    /// Every member, once each: the voters, then the outgoing voters that
    /// are not incoming ones, then the learners.
    pub fn members(&self) -> impl Iterator<Item = &N> {
        let incoming = &self.voters;
        self.voters
            .iter()
            .chain(
                self.outgoing
                    .iter()
                    .filter(move |n| incoming.binary_search(n).is_err()),
            )
            .chain(&self.learners)
    }

    /// The membership after the single-server `change` (thesis §4.2).
    ///
    /// # Errors
    /// [`MembershipError::InJoint`] while joint (leave it first),
    /// [`MembershipError::NoChange`] if it would change nothing (adding a
    /// voter that votes, a learner that learns, removing a stranger),
    /// [`MembershipError::NoVotersLeft`] for removing the last voter, and
    /// [`MembershipError::VoterToLearner`] for demoting a voter in one step.
    pub fn apply(&self, change: &MembershipChange<N>) -> Result<Self, MembershipError<N>> {
        if self.is_joint() {
            return Err(MembershipError::InJoint);
        }
        let (mut voters, mut learners) = (self.voters.clone(), self.learners.clone());
        match change {
            MembershipChange::AddVoter(n) => {
                if self.is_voter(n) {
                    return Err(MembershipError::NoChange);
                }
                learners.retain(|l| l != n);
                voters.push(n.clone());
            }
            MembershipChange::AddLearner(n) => {
                if self.is_learner(n) {
                    return Err(MembershipError::NoChange);
                }
                if self.is_voter(n) {
                    return Err(MembershipError::VoterToLearner);
                }
                learners.push(n.clone());
            }
            MembershipChange::Remove(n) => {
                if !self.contains(n) {
                    return Err(MembershipError::NoChange);
                }
                if self.voters == [n.clone()] {
                    return Err(MembershipError::NoVotersLeft);
                }
                voters.retain(|v| v != n);
                learners.retain(|l| l != n);
            }
        }
        Ok(Self::new(voters, learners))
    }

    /// The joint membership that moves from this one to the result of
    /// `changes`, applied in order (Raft §6, thesis §4.3; etcd's
    /// `EnterJoint`): the outgoing voters are today's voters, the incoming
    /// ones today's after the changes. [`MembershipChange::AddLearner`] of
    /// a voter demotes it: it votes in the outgoing set until the joint
    /// configuration is left, then learns. Within one call a change may
    /// undo an earlier one; only the result counts.
    ///
    /// # Errors
    /// [`MembershipError::InJoint`] if this membership is joint already,
    /// [`MembershipError::NoVotersLeft`] if no incoming voter would be left
    /// (or there is no voter today), and [`MembershipError::NoChange`] if
    /// leaving the joint configuration would give this membership back.
    pub fn enter_joint(
        &self,
        changes: impl IntoIterator<Item = MembershipChange<N>>,
        leave: JointLeave,
    ) -> Result<Self, MembershipError<N>> {
        if self.is_joint() {
            return Err(MembershipError::InJoint);
        }
        if self.voters.is_empty() {
            return Err(MembershipError::NoVotersLeft);
        }
        let outgoing = self.voters.clone();
        let mut incoming = self.voters.clone();
        let mut learners = self.learners.clone();
        let mut learners_next = Vec::new();
        for change in changes {
            match change {
                MembershipChange::AddVoter(n) => {
                    remove(&mut learners, &n);
                    remove(&mut learners_next, &n);
                    insert(&mut incoming, n);
                }
                MembershipChange::AddLearner(n) => {
                    remove(&mut incoming, &n);
                    if outgoing.binary_search(&n).is_ok() {
                        // A voter of C_old cannot learn yet: it votes
                        // there until the joint configuration is left.
                        insert(&mut learners_next, n);
                    } else {
                        insert(&mut learners, n);
                    }
                }
                MembershipChange::Remove(n) => {
                    remove(&mut incoming, &n);
                    remove(&mut learners, &n);
                    remove(&mut learners_next, &n);
                }
            }
        }
        if incoming.is_empty() {
            return Err(MembershipError::NoVotersLeft);
        }
        let auto_leave = leave == JointLeave::Auto;
        let joint = Self::joint(incoming, outgoing, learners, learners_next, auto_leave);
        if joint.leave_joint()? == *self {
            return Err(MembershipError::NoChange);
        }
        Ok(joint)
    }

    /// The membership that leaves this joint one (etcd's `LeaveJoint`):
    /// the incoming voters alone, with the learners and
    /// [`learners_next`](Self::learners_next) as learners.
    ///
    /// # Errors
    /// [`MembershipError::NotJoint`] if this membership is not joint.
    pub fn leave_joint(&self) -> Result<Self, MembershipError<N>> {
        if !self.is_joint() {
            return Err(MembershipError::NotJoint);
        }
        Ok(Self::new(
            self.voters.iter().cloned(),
            self.learners.iter().chain(&self.learners_next).cloned(),
        ))
    }
}

/// One membership change: alone, a single-server change (thesis §4.2:
/// at most one voter is added or removed); several together, a joint
/// change ([`RaftNode::propose_joint`](crate::RaftNode::propose_joint),
/// thesis §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum MembershipChange<N> {
    /// Make the node a voter. The leader accepts it only once the node
    /// holds 90% of its log, so a new node joins as a learner first and is
    /// promoted once caught up (thesis §4.2.1).
    AddVoter(N),
    /// Add the node as a learner, to catch up before it is promoted. In a
    /// joint change, a voter named here is demoted: it votes in the
    /// outgoing set until the joint configuration is left, then learns.
    AddLearner(N),
    /// Remove a voter or a learner. A leader that removes itself keeps
    /// leading until the change commits (for a joint change: until the
    /// entry leaving the joint configuration commits), then steps down
    /// (thesis §4.2.2).
    Remove(N),
}

/// Why [`RaftNode::propose_membership`](crate::RaftNode::propose_membership),
/// [`RaftNode::propose_joint`](crate::RaftNode::propose_joint) or
/// [`RaftNode::propose_leave_joint`](crate::RaftNode::propose_leave_joint)
/// was refused (or, from [`Membership`]'s methods, why a change does not
/// apply). In every case nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError<N> {
    /// Only the leader changes the membership; `leader` is a hint. Nothing
    /// changed.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<N>,
    },
    /// A membership change is not committed yet: one at a time. Try
    /// again once it is. Nothing changed.
    #[error("a membership change is in progress")]
    Pending,
    /// This leader has not committed an entry of its own term yet (its
    /// no-op, at most a round trip after the election): thesis §4.1, the
    /// fix to the single-server change bug of 2015. Try again once it has.
    /// Nothing changed.
    #[error("the leader has not committed an entry of its term yet")]
    LeaderNotReady,
    /// A leadership transfer is in progress. Nothing changed.
    #[error("a leadership transfer is in progress")]
    TransferInProgress,
    /// A node to make a voter has not caught up: its match index is
    /// below 90% of the leader's last index (etcd's rule), or it is not a
    /// learner yet. Nothing changed.
    #[error("{matched} of {last_index} entries replicated: not caught up")]
    NotCaughtUp {
        /// The learner's match index.
        matched: Index,
        /// The leader's last index.
        last_index: Index,
    },
    /// The change would leave the membership as it is. Nothing changed.
    #[error("the membership already has that shape")]
    NoChange,
    /// Removing the last voter would leave nobody to decide. Nothing
    /// changed.
    #[error("cannot remove the last voter")]
    NoVotersLeft,
    /// A voter cannot become a learner in one single-server change: remove
    /// it, then add it as a learner, or demote it with a joint change.
    /// Nothing changed.
    #[error("a voter cannot be demoted to learner in one change")]
    VoterToLearner,
    /// The membership is joint: no other change starts until the joint
    /// configuration is left (on its own with [`JointLeave::Auto`], or with
    /// [`RaftNode::propose_leave_joint`](crate::RaftNode::propose_leave_joint)).
    /// Nothing changed.
    #[error("the membership is joint: leave it first")]
    InJoint,
    /// There is no joint configuration to leave. Nothing changed.
    #[error("the membership is not joint")]
    NotJoint,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_table() {
        use MembershipChange::*;
        let base = Membership::new([1u8, 2, 3], [4]);
        type Shape = Result<(Vec<u8>, Vec<u8>), MembershipError<u8>>;
        let cases: &[(MembershipChange<u8>, Shape)] = &[
            (AddVoter(4), Ok((vec![1, 2, 3, 4], vec![]))),
            (AddVoter(5), Ok((vec![1, 2, 3, 5], vec![4]))),
            (AddVoter(1), Err(MembershipError::NoChange)),
            (AddLearner(5), Ok((vec![1, 2, 3], vec![4, 5]))),
            (AddLearner(4), Err(MembershipError::NoChange)),
            (AddLearner(2), Err(MembershipError::VoterToLearner)),
            (Remove(2), Ok((vec![1, 3], vec![4]))),
            (Remove(4), Ok((vec![1, 2, 3], vec![]))),
            (Remove(9), Err(MembershipError::NoChange)),
        ];
        for (change, expected) in cases {
            let got = base
                .apply(change)
                .map(|m| (m.voters().to_vec(), m.learners().to_vec()));
            assert_eq!(&got, expected, "{change:?}");
        }
        assert_eq!(
            Membership::from_voters([1u8]).apply(&Remove(1)),
            Err(MembershipError::NoVotersLeft)
        );
    }

    #[test]
    fn a_node_listed_twice_is_a_voter() {
        let m = Membership::new([2u8, 1, 2], [1, 3, 3]);
        assert_eq!((m.voters(), m.learners()), (&[1, 2][..], &[3][..]));
        assert!(m.is_voter(&1) && m.is_learner(&3) && !m.contains(&4));
    }

    #[test]
    fn joint_changes_table() {
        use MembershipChange::*;
        let base = Membership::new([1u8, 2, 3], [4]);
        // (changes, Ok((incoming, outgoing, learners, learners_next)) or the error)
        type Shape = Result<(Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>), MembershipError<u8>>;
        let cases: Vec<(Vec<MembershipChange<u8>>, Shape)> = vec![
            // Replace 3 by 4.
            (
                vec![AddVoter(4), Remove(3)],
                Ok((vec![1, 2, 4], vec![1, 2, 3], vec![], vec![])),
            ),
            // Add two, remove two.
            (
                vec![AddVoter(4), AddVoter(5)],
                Ok((vec![1, 2, 3, 4, 5], vec![1, 2, 3], vec![], vec![])),
            ),
            (
                vec![Remove(1), Remove(2)],
                Ok((vec![3], vec![1, 2, 3], vec![4], vec![])),
            ),
            // Demote 3: a voter of C_old until the joint config is left.
            (
                vec![AddLearner(3)],
                Ok((vec![1, 2], vec![1, 2, 3], vec![4], vec![3])),
            ),
            // Demoted, then promoted again in the same call: no change.
            (
                vec![AddLearner(3), AddVoter(3)],
                Err(MembershipError::NoChange),
            ),
            // Demoted, then removed.
            (
                vec![AddLearner(3), Remove(3)],
                Ok((vec![1, 2], vec![1, 2, 3], vec![4], vec![])),
            ),
            // A learner added alone still goes through a joint config.
            (
                vec![AddLearner(5)],
                Ok((vec![1, 2, 3], vec![1, 2, 3], vec![4, 5], vec![])),
            ),
            (vec![], Err(MembershipError::NoChange)),
            (vec![AddVoter(1), Remove(9)], Err(MembershipError::NoChange)),
            (
                vec![Remove(1), Remove(2), Remove(3)],
                Err(MembershipError::NoVotersLeft),
            ),
        ];
        for (changes, expected) in cases {
            let got = base
                .enter_joint(changes.clone(), JointLeave::Auto)
                .map(|m| {
                    assert!(m.is_joint() && m.auto_leave(), "{changes:?}");
                    (
                        m.voters().to_vec(),
                        m.outgoing_voters().to_vec(),
                        m.learners().to_vec(),
                        m.learners_next().to_vec(),
                    )
                });
            assert_eq!(got, expected, "{changes:?}");
        }
    }

    #[test]
    fn leaving_a_joint_membership() {
        use MembershipChange::*;
        let base = Membership::new([1u8, 2, 3], [4]);
        let joint = base
            .enter_joint([AddVoter(4), AddLearner(1)], JointLeave::Explicit)
            .expect("valid");
        assert!(joint.is_joint() && !joint.auto_leave());
        assert!(
            joint.is_voter(&1) && !joint.is_learner(&1),
            "1 still votes in C_old"
        );
        assert_eq!(joint.members().copied().collect::<Vec<_>>(), [2, 3, 4, 1]);
        assert_eq!(
            joint.enter_joint([Remove(2)], JointLeave::Auto),
            Err(MembershipError::InJoint)
        );
        assert_eq!(joint.apply(&Remove(2)), Err(MembershipError::InJoint));
        let left = joint.leave_joint().expect("joint");
        assert_eq!(left, Membership::new([2, 3, 4], [1]));
        assert!(!left.is_joint() && !left.auto_leave());
        assert_eq!(left.leave_joint(), Err(MembershipError::NotJoint));
    }

    #[test]
    fn joint_constructor_normalizes() {
        let m = Membership::joint([3u8, 1], [1, 2, 2], [1, 5, 2], [2, 3, 9], true);
        assert_eq!(m.voters(), &[1, 3]);
        assert_eq!(m.outgoing_voters(), &[1, 2]);
        assert_eq!(m.learners(), &[5], "voters of either set are not learners");
        assert_eq!(m.learners_next(), &[2], "only outgoing-only voters");
        let simple = Membership::joint([1u8], [], [2], [3], true);
        assert_eq!(simple, Membership::new([1], [2]));
        assert!(!simple.auto_leave());
    }
}
