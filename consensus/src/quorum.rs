//! Majorities: which index is committed, and who won an election
//! (Raft §5.2, §5.3), for one configuration ([`Majority`]) or a joint one
//! ([`JointMajority`], Raft §6). Pure arithmetic over the voters' states,
//! so it can be checked table by table. Every decision the node makes by
//! counting voters (commit, votes and pre-votes, check-quorum, ReadIndex
//! rounds and so the lease) goes through [`JointMajority`].

use core::cmp::Reverse;

use crate::NodeId;
use crate::entry::Index;

/// The voters of one configuration; a decision needs a majority of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Majority<N> {
    /// Sorted and without duplicates.
    voters: Vec<N>,
}

/// The outcome of a vote so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteResult {
    /// A majority granted: the candidate wins.
    Won,
    /// Enough rejected that a majority can no longer grant.
    Lost,
    /// Neither yet.
    Pending,
}

impl<N: NodeId> Majority<N> {
    /// The configuration of `voters` (order and duplicates do not matter).
    pub fn new(voters: impl IntoIterator<Item = N>) -> Self {
        let mut voters: Vec<N> = voters.into_iter().collect();
        voters.sort();
        voters.dedup();
        Self { voters }
    }

    /// The voters, in ascending order.
    pub fn voters(&self) -> &[N] {
        &self.voters
    }

    /// Whether `node` votes in this configuration.
    pub fn contains(&self, node: &N) -> bool {
        self.voters.binary_search(node).is_ok()
    }

    /// How many votes make a majority: `n / 2 + 1` (1 for an empty
    /// configuration, which can therefore never decide).
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// The largest index stored on a majority of voters, given each voter's
    /// match index (`None`: unknown, counts as 0). The leader commits it if
    /// it is from its own term (§5.3, §5.4.2). 0 for an empty configuration.
    pub fn committed_index(&self, match_index: impl Fn(&N) -> Option<Index>) -> Index {
        if self.voters.is_empty() {
            return 0;
        }
        let mut matched: Vec<Index> = self
            .voters
            .iter()
            .map(|n| match_index(n).unwrap_or(0))
            .collect();
        // Descending: the quorum-th largest is on at least a quorum of voters.
        matched.sort_unstable_by_key(|m| Reverse(*m));
        matched[self.quorum() - 1]
    }

    /// The election's state given each voter's answer (`Some(true)` granted,
    /// `Some(false)` rejected, `None` no answer yet). Answers from nodes
    /// outside the configuration are not consulted.
    pub fn vote_result(&self, vote: impl Fn(&N) -> Option<bool>) -> VoteResult {
        let (mut granted, mut missing) = (0, 0);
        for voter in &self.voters {
            match vote(voter) {
                Some(true) => granted += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        if granted >= self.quorum() {
            VoteResult::Won
        } else if granted + missing >= self.quorum() {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}

/// The voters of a configuration that may be joint (Raft §6, thesis
/// §4.3): while joint, a decision needs a majority of the incoming voters
/// (C_new) **and** a majority of the outgoing ones (C_old); otherwise a
/// majority of the one set (etcd's `JointConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JointMajority<N> {
    incoming: Majority<N>,
    /// Empty unless joint.
    outgoing: Majority<N>,
    /// Both sets, sorted and without duplicates.
    all: Vec<N>,
}

impl<N: NodeId> JointMajority<N> {
    /// The configuration of `incoming` and `outgoing` voters (no outgoing
    /// voters: a simple configuration).
    pub fn new(
        incoming: impl IntoIterator<Item = N>,
        outgoing: impl IntoIterator<Item = N>,
    ) -> Self {
        let incoming = Majority::new(incoming);
        let outgoing = Majority::new(outgoing);
        let mut all: Vec<N> = incoming
            .voters()
            .iter()
            .chain(outgoing.voters())
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        Self {
            incoming,
            outgoing,
            all,
        }
    }

    /// The incoming voters (all of them when not joint).
    pub fn incoming(&self) -> &Majority<N> {
        &self.incoming
    }

    /// The outgoing voters (empty when not joint).
    pub fn outgoing(&self) -> &Majority<N> {
        &self.outgoing
    }

    /// Whether both sets decide.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.voters().is_empty()
    }

    /// Every voter of either set, ascending.
    pub fn voters(&self) -> &[N] {
        &self.all
    }

    /// Whether `node` votes in either set.
    pub fn contains(&self, node: &N) -> bool {
        self.all.binary_search(node).is_ok()
    }

    /// The largest index stored on a majority of each set: the smaller of
    /// the two sets' [`Majority::committed_index`].
    pub fn committed_index(&self, match_index: impl Fn(&N) -> Option<Index>) -> Index {
        let incoming = self.incoming.committed_index(&match_index);
        if self.is_joint() {
            incoming.min(self.outgoing.committed_index(&match_index))
        } else {
            incoming
        }
    }

    /// The election's state: won once both sets are won, lost once either
    /// is lost, pending otherwise.
    pub fn vote_result(&self, vote: impl Fn(&N) -> Option<bool>) -> VoteResult {
        let incoming = self.incoming.vote_result(&vote);
        if !self.is_joint() {
            return incoming;
        }
        match (incoming, self.outgoing.vote_result(&vote)) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn quorum_sizes() {
        for (n, q) in [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (5, 3),
            (6, 4),
            (7, 4),
        ] {
            assert_eq!(Majority::new(0..n).quorum(), q, "{n} voters");
        }
    }

    #[test]
    fn committed_index_table() {
        // (match indexes of voters 0.., expected)
        let cases: &[(&[u64], u64)] = &[
            (&[5], 5),
            (&[5, 3], 3),
            (&[5, 3, 1], 3),
            (&[1, 3, 5], 3),
            (&[5, 5, 1], 5),
            (&[2, 8, 8, 1], 2),
            (&[2, 8, 8, 8], 8),
            (&[9, 7, 5, 3, 1], 5),
            (&[0, 0, 0], 0),
        ];
        for (matched, expected) in cases {
            let config = Majority::new(0..matched.len());
            let got = config.committed_index(|n| Some(matched[*n]));
            assert_eq!(got, *expected, "{matched:?}");
        }
        let three = Majority::new([1, 2, 3]);
        assert_eq!(
            three.committed_index(|n| (*n == 1).then_some(7)),
            0,
            "unknown counts as 0"
        );
        assert_eq!(Majority::<u8>::new([]).committed_index(|_| Some(3)), 0);
    }

    #[test]
    fn vote_result_table() {
        use VoteResult::*;
        // (answers of voters 0.. as Some(granted) / None, expected)
        let cases: &[(&[Option<bool>], VoteResult)] = &[
            (&[Some(true)], Won),
            (&[None], Pending),
            (&[Some(false)], Lost),
            (&[Some(true), None, None], Pending),
            (&[Some(true), Some(true), None], Won),
            (&[Some(true), Some(false), None], Pending),
            (&[Some(true), Some(false), Some(false)], Lost),
            (&[Some(true), Some(true), Some(false), None], Pending),
            (&[Some(true), Some(false), Some(false), None], Lost),
            (
                &[Some(true), Some(true), Some(true), Some(false), Some(false)],
                Won,
            ),
        ];
        for (answers, expected) in cases {
            let config = Majority::new(0..answers.len());
            assert_eq!(
                config.vote_result(|n| answers[*n]),
                *expected,
                "{answers:?}"
            );
        }
    }

    #[test]
    fn votes_from_outside_the_configuration_do_not_count() {
        let config = Majority::new([1, 2, 3]);
        let votes: BTreeMap<u8, bool> = [(1, true), (9, true), (8, true)].into();
        assert_eq!(
            config.vote_result(|n| votes.get(n).copied()),
            VoteResult::Pending
        );
        assert!(!config.contains(&9));
    }

    #[test]
    fn duplicates_are_one_voter() {
        assert_eq!(Majority::new([3, 1, 3, 2, 1]).voters(), &[1, 2, 3]);
    }

    #[test]
    fn joint_committed_index_table() {
        // Incoming {1, 2, 3}, outgoing {3, 4, 5}: (match of 1..=5, expected).
        let joint = JointMajority::new([1, 2, 3], [3, 4, 5]);
        let cases: &[([u64; 5], u64)] = &[
            ([9, 9, 9, 9, 9], 9),
            // Only C_new holds 7: nothing past C_old's majority (2).
            ([7, 7, 2, 2, 2], 2),
            // Only C_old holds 7.
            ([1, 1, 7, 7, 7], 1),
            ([7, 7, 1, 7, 1], 1),
            ([7, 5, 1, 6, 6], 5),
            ([0, 0, 0, 0, 0], 0),
        ];
        for (matched, expected) in cases {
            let got = joint.committed_index(|n| Some(matched[n - 1]));
            assert_eq!(got, *expected, "{matched:?}");
        }
        let simple = JointMajority::new([1, 2, 3], []);
        assert!(!simple.is_joint());
        assert_eq!(simple.committed_index(|n| Some([7, 7, 2][n - 1])), 7);
    }

    #[test]
    fn joint_vote_result_table() {
        use VoteResult::*;
        let joint = JointMajority::new([1, 2, 3], [3, 4, 5]);
        // (answers of 1..=5, expected)
        let t = Some(true);
        let f = Some(false);
        let cases: &[([Option<bool>; 5], VoteResult)] = &[
            ([t, t, t, t, t], Won),
            // A majority of C_new alone is not enough.
            ([t, t, f, f, None], Lost),
            ([t, t, None, None, None], Pending),
            // A majority of C_old alone is not enough.
            ([None, None, t, t, t], Pending),
            ([f, f, t, t, t], Lost),
            // 3 counts in both.
            ([t, None, t, t, None], Won),
            ([None; 5], Pending),
        ];
        for (answers, expected) in cases {
            assert_eq!(
                joint.vote_result(|n| answers[n - 1]),
                *expected,
                "{answers:?}"
            );
        }
        assert_eq!(joint.voters(), &[1, 2, 3, 4, 5]);
        assert!(joint.contains(&4) && !joint.contains(&6));
    }
}
