//! Machinery: logs built from the terms the paper draws, and read back as
//! terms, for the figures.

use dsys_consensus::{Entry, MemStorage, RaftLog, Storage, Term};

use crate::report::Res;

/// One node's log, over in-memory storage; nodes are named by number.
pub(super) type Log = RaftLog<MemStorage<u64>>;

/// A log holding one entry per term in `terms` (indexes 1, 2, ...), all of
/// them persisted: what a node finds on disk when it restarts.
pub(super) fn log_of(terms: &[Term]) -> Res<Log> {
    let mut storage = MemStorage::new(vec![1, 2, 3, 4, 5]);
    storage.append(&entries_of(terms))?;
    Ok(RaftLog::new(storage))
}

pub(super) fn entries_of(terms: &[Term]) -> Vec<Entry<u64>> {
    (1..)
        .zip(terms)
        .map(|(index, &term)| Entry::new(term, index, ""))
        .collect()
}

/// The term at every index of `log`, persisted or not.
pub(super) fn terms_of(log: &Log) -> Res<Vec<Term>> {
    Ok((log.first_index()..=log.last_index())
        .map(|index| log.term(index))
        .collect::<Result<_, _>>()?)
}

/// The terms of the persisted log.
pub(super) fn stored_terms(log: &Log) -> Res<Vec<Term>> {
    let storage = log.storage();
    Ok((storage.first_index()..=storage.last_index())
        .map(|index| storage.term(index))
        .collect::<Result<_, _>>()?)
}

/// `1 1 1 4 4`: one term per index, as the paper draws a log.
pub(super) fn show(terms: &[Term]) -> String {
    terms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// How many leading indexes two logs agree on.
pub(super) fn common_prefix(a: &[Term], b: &[Term]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
