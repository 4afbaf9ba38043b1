//! `RaftLog` against a model of the Raft log that is just a vector of terms,
//! under AppendEntries from a random but Raft-valid history of leaders
//! (stale, duplicated, conflicting and reordered messages),
//! asynchronous persistence (writes started, finished later in order, acks
//! for overwritten entries) and application. After every step: same terms
//! as the model (§5.3, log matching), commit never goes back, applied
//! entries never change (state-machine safety on one node), and what is
//! persisted plus the unstable tail is the log.

use std::collections::VecDeque;

use dsys_consensus::{Entry, MemStorage, RaftLog, Storage};
use proptest::prelude::*;

/// Ops are interpreted against a Raft-valid history of leaders (see
/// `Leaders`), so that every (index, term) names one prefix, as the log
/// matching property guarantees in real runs.
#[derive(Debug, Clone)]
enum Op {
    /// A new leader (next term) whose log keeps `keep` entries of the newest
    /// leader's log, but never fewer than are committed (§5.4.1: an elected
    /// leader holds every committed entry).
    NewLeader {
        keep: usize,
    },
    /// The newest leader appends `n` entries of its term.
    LeaderAppend {
        n: usize,
    },
    /// The newest leader advances its commit index (to at most its log end).
    LeaderCommit {
        to: usize,
    },
    /// Leader number `leader` (stale ones too) sends AppendEntries: its
    /// entries after `prev`, `count` of them, with its commit index.
    Send {
        leader: usize,
        prev: usize,
        count: usize,
    },
    StartWrite,
    FinishWrite,
    Apply,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0usize..12).prop_map(|keep| Op::NewLeader { keep }),
        2 => (1usize..4).prop_map(|n| Op::LeaderAppend { n }),
        1 => (0usize..16).prop_map(|to| Op::LeaderCommit { to }),
        5 => (any::<usize>(), any::<usize>(), 0usize..5).prop_map(|(leader, prev, count)| Op::Send { leader, prev, count }),
        2 => Just(Op::StartWrite),
        2 => Just(Op::FinishWrite),
        1 => Just(Op::Apply),
    ]
}

/// Every leader so far: its term, its log (terms by index - 1) and its
/// commit index. Only the newest leader appends and commits.
struct Leaders {
    leaders: Vec<(u64, Vec<u64>, usize)>,
}

impl Leaders {
    fn new() -> Self {
        Self {
            leaders: vec![(1, Vec::new(), 0)],
        }
    }

    fn newest(&mut self) -> &mut (u64, Vec<u64>, usize) {
        self.leaders.last_mut().expect("there is always a leader")
    }

    fn committed(&self) -> usize {
        self.leaders.iter().map(|l| l.2).max().unwrap_or(0)
    }

    fn elect(&mut self, keep: usize) {
        let committed = self.committed();
        let (term, log, _) = self
            .leaders
            .last()
            .expect("there is always a leader")
            .clone();
        let mut log = log;
        log.truncate(keep.max(committed));
        self.leaders.push((term + 1, log, committed));
    }
}

/// The reference: §5.3's receiver rules on a vector of terms (index i+1 at i).
#[derive(Debug, Default)]
struct Model {
    terms: Vec<u64>,
    commit: usize,
}

enum ModelResult {
    Rejected,
    Appended(usize),
    OverwritesCommitted,
}

impl Model {
    fn term(&self, index: usize) -> Option<u64> {
        if index == 0 {
            Some(0)
        } else {
            self.terms.get(index - 1).copied()
        }
    }

    fn append(
        &mut self,
        prev: usize,
        prev_term: u64,
        terms: &[u64],
        leader_commit: usize,
    ) -> ModelResult {
        if self.term(prev) != Some(prev_term) {
            return ModelResult::Rejected;
        }
        let first_conflict = terms
            .iter()
            .enumerate()
            .find(|(k, t)| self.term(prev + 1 + k) != Some(**t))
            .map(|(k, _)| k);
        if let Some(k) = first_conflict {
            if prev + 1 + k <= self.commit {
                return ModelResult::OverwritesCommitted;
            }
            self.terms.truncate(prev + k);
            self.terms.extend_from_slice(&terms[k..]);
        }
        let last_new = prev + terms.len();
        self.commit = self.commit.max(leader_commit.min(last_new));
        ModelResult::Appended(last_new)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn raft_log_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
        let mut log = RaftLog::new(MemStorage::new(vec![1u64, 2, 3]));
        let mut model = Model::default();
        let mut leaders = Leaders::new();
        let mut writes: VecDeque<Vec<Entry<u64>>> = VecDeque::new();
        let mut applied: Vec<u64> = Vec::new(); // terms of applied entries, by index - 1
        let mut last_commit = 0;
        let mut follower_term = 0;

        for op in ops {
            match op {
                Op::NewLeader { keep } => leaders.elect(keep),
                Op::LeaderAppend { n } => {
                    let (term, log, _) = leaders.newest();
                    let term = *term;
                    log.extend(std::iter::repeat_n(term, n));
                }
                Op::LeaderCommit { to } => {
                    let (_, log, commit) = leaders.newest();
                    *commit = (*commit).max(to.min(log.len()));
                }
                Op::Send { leader, prev, count } => {
                    let (leader_term, leader_log, leader_commit) = &leaders.leaders[leader % leaders.leaders.len()];
                    // §5.1: a node rejects a message from an older term before
                    // its log sees it; the node layer does this for RaftLog.
                    if *leader_term < follower_term {
                        continue;
                    }
                    follower_term = *leader_term;
                    let prev = prev % (leader_log.len() + 1);
                    let prev_term = if prev == 0 { 0 } else { leader_log[prev - 1] };
                    let terms: Vec<u64> = leader_log[prev..(prev + count).min(leader_log.len())].to_vec();
                    let entries: Vec<Entry<u64>> = terms.iter().enumerate()
                        .map(|(k, t)| Entry::new(*t, (prev + 1 + k) as u64, vec![*t as u8; k]))
                        .collect();
                    let got = log.maybe_append(prev as u64, prev_term, *leader_commit as u64, &entries);
                    match model.append(prev, prev_term, &terms, *leader_commit) {
                        ModelResult::Rejected => prop_assert_eq!(got, Ok(None)),
                        ModelResult::Appended(last) => prop_assert_eq!(got, Ok(Some(last as u64))),
                        ModelResult::OverwritesCommitted => prop_assert!(
                            false, "a valid history never overwrites a committed entry; log said {:?}", got),
                    }
                }
                Op::StartWrite => {
                    let batch = log.take_to_persist();
                    if !batch.is_empty() {
                        writes.push_back(batch);
                    }
                }
                Op::FinishWrite => {
                    if let Some(batch) = writes.pop_front() {
                        log.storage_mut().append(&batch).expect("writes land in order on a contiguous log");
                        let last = batch.last().expect("non-empty batch");
                        log.on_persisted(last.index, last.term);
                    }
                }
                Op::Apply => {
                    let next = log.next_to_apply(u64::MAX).expect("committed entries are readable");
                    for entry in &next {
                        prop_assert_eq!(entry.index as usize, applied.len() + 1);
                        applied.push(entry.term);
                    }
                    if let Some(last) = next.last() {
                        log.applied_to(last.index);
                    }
                }
            }

            // Same log as the model, read through every path.
            prop_assert_eq!(log.last_index() as usize, model.terms.len());
            for (i, t) in model.terms.iter().enumerate() {
                prop_assert_eq!(log.term(i as u64 + 1), Ok(*t));
            }
            let all = log.slice(1, log.last_index() + 1, u64::MAX).expect("the whole log is readable");
            prop_assert_eq!(all.iter().map(|e| e.term).collect::<Vec<_>>(), model.terms.clone());
            prop_assert_eq!(log.committed() as usize, model.commit);
            prop_assert!(log.committed() >= last_commit, "commit went back");
            last_commit = log.committed();
            // Applied entries never change and never pass the commit index.
            prop_assert!(applied.len() as u64 <= log.committed());
            for (i, t) in applied.iter().enumerate() {
                prop_assert_eq!(log.term(i as u64 + 1), Ok(*t), "applied entry {} changed", i + 1);
            }
            // What the storage holds below the tail is the log's prefix.
            let persisted = log.persisted();
            prop_assert!(persisted <= log.storage().last_index());
            for i in 1..=persisted {
                prop_assert_eq!(log.storage().term(i), log.term(i));
            }
        }
    }
}
