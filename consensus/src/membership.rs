//! Cluster membership (thesis §4): who votes, who only learns, and the
//! single-server changes that move from one membership to the next.
//!
//! A membership travels in a configuration entry of the log
//! ([`EntryKind::Membership`](crate::EntryKind::Membership)) and takes
//! effect on each node as soon as that node appends the entry (thesis
//! §4.1). Changing one voter at a time keeps every majority of the old
//! voters overlapping every majority of the new ones (thesis §4.2), so no
//! joint configuration is needed.

use crate::NodeId;
use crate::entry::Index;

/// The members of the cluster: voters decide (elections, commits, read
/// confirmations); learners receive the log and snapshots but never vote
/// and never campaign.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Membership<N> {
    /// Sorted, without duplicates.
    voters: Vec<N>,
    /// Sorted, without duplicates, none of them a voter.
    learners: Vec<N>,
}

impl<N> Membership<N> {
    /// The voters, ascending.
    pub fn voters(&self) -> &[N] {
        &self.voters
    }

    /// The learners, ascending.
    pub fn learners(&self) -> &[N] {
        &self.learners
    }

    /// Every member, voters first.
    pub fn members(&self) -> impl Iterator<Item = &N> {
        self.voters.iter().chain(&self.learners)
    }
}

impl<N: NodeId> Membership<N> {
    /// A membership of `voters` and `learners` (order and duplicates do
    /// not matter; a node listed in both is a voter).
    pub fn new(voters: impl IntoIterator<Item = N>, learners: impl IntoIterator<Item = N>) -> Self {
        let mut voters: Vec<N> = voters.into_iter().collect();
        voters.sort();
        voters.dedup();
        let mut learners: Vec<N> = learners
            .into_iter()
            .filter(|n| voters.binary_search(n).is_err())
            .collect();
        learners.sort();
        learners.dedup();
        Self { voters, learners }
    }

    /// Only voters.
    pub fn from_voters(voters: impl IntoIterator<Item = N>) -> Self {
        Self::new(voters, [])
    }

    /// Whether `node` votes.
    pub fn is_voter(&self, node: &N) -> bool {
        self.voters.binary_search(node).is_ok()
    }

    /// Whether `node` is a learner.
    pub fn is_learner(&self, node: &N) -> bool {
        self.learners.binary_search(node).is_ok()
    }

    /// Whether `node` is a voter or a learner.
    pub fn contains(&self, node: &N) -> bool {
        self.is_voter(node) || self.is_learner(node)
    }

    /// The membership after `change`.
    ///
    /// # Errors
    /// [`MembershipError::NoChange`] if it would change nothing (adding a
    /// voter that votes, a learner that learns, removing a stranger),
    /// [`MembershipError::NoVotersLeft`] for removing the last voter, and
    /// [`MembershipError::VoterToLearner`] for demoting a voter in one step.
    pub fn apply(&self, change: &MembershipChange<N>) -> Result<Self, MembershipError<N>> {
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
}

/// One single-server membership change (thesis §4.2): at most one voter
/// is added or removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum MembershipChange<N> {
    /// Make the node a voter. The leader accepts it only once the node
    /// holds 90% of its log, so a new node joins as a learner first and is
    /// promoted once caught up (thesis §4.2.1).
    AddVoter(N),
    /// Add the node as a learner, to catch up before it is promoted.
    AddLearner(N),
    /// Remove a voter or a learner. A leader that removes itself keeps
    /// leading until the change commits, then steps down (thesis §4.2.2).
    Remove(N),
}

/// Why [`RaftNode::propose_membership`](crate::RaftNode::propose_membership)
/// was refused. In every case nothing changed.
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
    /// A membership change is not committed yet, or this leader has not
    /// committed an entry of its own term yet (thesis §4.1, the fix to the
    /// single-server change bug of 2015): try again once it is. Nothing
    /// changed.
    #[error("a membership change is in progress")]
    Pending,
    /// A leadership transfer is in progress. Nothing changed.
    #[error("a leadership transfer is in progress")]
    TransferInProgress,
    /// The node to make a voter has not caught up: its match index is
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
    /// A voter cannot become a learner in one step: remove it, then add
    /// it as a learner. Nothing changed.
    #[error("a voter cannot be demoted to learner in one change")]
    VoterToLearner,
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
}
