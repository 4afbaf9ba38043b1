//! `RaftLog` behaviours, one per test, each with the rule of the Raft paper
//! (Ongaro & Ousterhout 2014) it implements.

use dsys_consensus::{Entry, LogError, MemStorage, RaftLog, SnapshotMeta, Storage, StorageError};

fn ents(first: u64, terms: &[u64]) -> Vec<Entry<u64>> {
    terms
        .iter()
        .enumerate()
        .map(|(i, t)| Entry::new(*t, first + i as u64, ""))
        .collect()
}

/// A log whose entries 1..=terms.len() have the given terms, all unstable.
fn log(terms: &[u64]) -> RaftLog<MemStorage<u64>> {
    let mut log = RaftLog::new(MemStorage::new(vec![1, 2, 3]));
    log.append(&ents(1, terms)).unwrap();
    log
}

/// Persists everything handed out so far, in order.
fn persist_all(log: &mut RaftLog<MemStorage<u64>>) {
    let batch = log.take_to_persist();
    if let Some(last) = batch.last().cloned() {
        log.storage_mut().append(&batch).unwrap();
        assert!(log.on_persisted(last.index, last.term));
    }
}

/// §5.4.1: the log with the later last term is more up to date; with equal
/// last terms, the longer one is.
#[test]
fn up_to_date_compares_last_term_then_length() {
    let l = log(&[1, 2, 3]);
    let cases = [
        ((2, 4), true), // later term, shorter log
        ((3, 4), true), // later term
        ((4, 4), true),
        ((2, 3), false), // same term, shorter
        ((3, 3), true),  // same term, same length
        ((4, 3), true),  // same term, longer
        ((9, 2), false), // earlier term, however long
    ];
    for ((index, term), expected) in cases {
        assert_eq!(
            l.is_up_to_date(index, term),
            expected,
            "candidate at ({index}, {term})"
        );
    }
}

/// §5.4.2 and Figure 8: a leader commits by counting replicas only entries
/// of its own term; older entries commit with them, never on their own.
#[test]
fn leader_never_commits_an_earlier_term_entry_by_counting() {
    let mut l = log(&[1, 2, 2, 4]);
    assert!(
        !l.maybe_commit(3, 4),
        "index 3 is from term 2: counting replicas must not commit it"
    );
    assert_eq!(l.committed(), 0);
    assert!(l.maybe_commit(4, 4));
    assert_eq!(
        l.committed(),
        4,
        "committing index 4 commits everything before it"
    );
    assert!(!l.maybe_commit(2, 4), "the commit index never goes back");
}

/// §5.3: AppendEntries is refused when the log lacks prevLogIndex with
/// prevLogTerm; the leader then backs off.
#[test]
fn append_entries_consistency_check() {
    let mut l = log(&[1, 1, 2]);
    assert_eq!(
        l.maybe_append(3, 3, 0, &ents(4, &[3])),
        Ok(None),
        "term mismatch at prev"
    );
    assert_eq!(
        l.maybe_append(4, 2, 0, &ents(5, &[3])),
        Ok(None),
        "prev past the end"
    );
    assert_eq!(l.last_index(), 3);
    assert_eq!(l.maybe_append(3, 2, 0, &ents(4, &[3])), Ok(Some(4)));
    assert_eq!(
        l.maybe_append(0, 0, 0, &[]),
        Ok(Some(0)),
        "a heartbeat at the start always matches"
    );
}

/// §5.3: "If an existing entry conflicts with a new one (same index but
/// different terms), delete the existing entry and all that follow it";
/// entries already present are left alone, so a stale or duplicated
/// message cannot truncate the log.
#[test]
fn conflicting_suffix_is_replaced_but_matching_entries_stay() {
    let mut l = log(&[1, 1, 2, 2, 2]);
    // A delayed message carrying a prefix: nothing changes.
    assert_eq!(l.maybe_append(1, 1, 0, &ents(2, &[1, 2])), Ok(Some(3)));
    assert_eq!(l.last_index(), 5);
    // A new leader's entries conflict at 4.
    assert_eq!(l.maybe_append(2, 1, 0, &ents(3, &[2, 3])), Ok(Some(4)));
    assert_eq!(l.last_index(), 4);
    assert_eq!(l.term(4), Ok(3));
}

/// §5.3: the follower commits min(leaderCommit, index of last new entry).
#[test]
fn follower_commit_is_capped_by_the_last_new_entry() {
    let mut l = log(&[1, 1, 1, 1]);
    assert_eq!(l.maybe_append(1, 1, 10, &ents(2, &[1])), Ok(Some(2)));
    assert_eq!(
        l.committed(),
        2,
        "entries 3..4 were not covered by this message"
    );
    assert_eq!(l.maybe_append(4, 1, 3, &[]), Ok(Some(4)));
    assert_eq!(l.committed(), 3);
}

#[test]
fn find_conflict_returns_the_first_mismatch_or_new_entry() {
    let l = log(&[1, 2, 3]);
    assert_eq!(l.find_conflict(&[]), None);
    assert_eq!(l.find_conflict(&ents(1, &[1, 2, 3])), None);
    assert_eq!(l.find_conflict(&ents(2, &[2, 3, 4])), Some(4));
    assert_eq!(l.find_conflict(&ents(2, &[4, 4])), Some(2));
    assert_eq!(l.find_conflict(&ents(4, &[5])), Some(4));
}

/// Fast back-off hint (§5.3 "the follower can include the term of the
/// conflicting entry"): the largest index at or below the probe whose term
/// is at most the leader's term there.
#[test]
fn conflict_hint_skips_whole_terms() {
    let l = log(&[1, 1, 2, 2, 5, 5, 5]);
    assert_eq!(l.find_conflict_by_term(7, 4), (4, 2));
    assert_eq!(l.find_conflict_by_term(7, 5), (7, 5));
    assert_eq!(
        l.find_conflict_by_term(9, 1),
        (2, 1),
        "probe past the end starts at the last entry"
    );
    assert_eq!(l.find_conflict_by_term(7, 0), (0, 0));
}

/// Committed entries are final: a message that would rewrite one is
/// refused with a typed error, and the log is unchanged.
#[test]
fn committed_entries_are_never_overwritten() {
    let mut l = log(&[1, 1, 1]);
    l.commit_to(2).unwrap();
    let err = l.maybe_append(1, 1, 0, &ents(2, &[9]));
    assert_eq!(
        err,
        Err(LogError::WouldOverwriteCommitted {
            index: 2,
            committed: 2
        })
    );
    assert_eq!((l.last_index(), l.term(2)), (3, Ok(1)));
    assert_eq!(
        l.commit_to(9),
        Err(LogError::CommitBeyondLog {
            index: 9,
            last_index: 3
        })
    );
    assert_eq!(l.committed(), 2);
}

#[test]
fn malformed_appends_are_typed_errors() {
    let mut l = log(&[1, 1]);
    let gap = l.append(&ents(4, &[1]));
    assert!(matches!(gap, Err(LogError::NotContiguous { first: 4, .. })));
    let holes = l.maybe_append(2, 1, 0, &[Entry::new(1, 3, ""), Entry::new(1, 5, "")]);
    assert!(matches!(holes, Err(LogError::NotContiguous { .. })));
    let wrong_start = l.maybe_append(2, 1, 0, &ents(7, &[1]));
    assert!(matches!(wrong_start, Err(LogError::NotContiguous { .. })));
    let overflow = l.maybe_append(u64::MAX, 1, 0, &ents(1, &[1]));
    assert!(matches!(overflow, Err(LogError::NotContiguous { .. })));
    assert_eq!(l.last_index(), 2);
}

/// Reads cross the boundary between persisted entries and the unstable
/// tail, and the size limit applies across it.
#[test]
fn slices_span_stable_and_unstable_entries() {
    let mut l = log(&[1, 1, 2]);
    persist_all(&mut l);
    l.append(&ents(4, &[2, 3])).unwrap();
    assert_eq!(l.persisted(), 3);
    let all = l.slice(1, 6, u64::MAX).unwrap();
    assert_eq!(
        all.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
        [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3)]
    );
    assert_eq!(
        l.slice(2, 5, 2 * dsys_consensus::ENTRY_OVERHEAD)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(l.slice(3, 5, 0).unwrap().len(), 1);
    assert!(matches!(
        l.slice(1, 7, u64::MAX),
        Err(StorageError::Unavailable { .. })
    ));
}

/// Asynchronous persistence: the node keeps appending while a write runs;
/// an acknowledgement for entries a new leader overwrote in the meantime is
/// recognised by its term and ignored.
#[test]
fn stale_persistence_acknowledgement_is_ignored() {
    let mut l = log(&[1, 1, 1]);
    let first_write = l.take_to_persist();
    assert_eq!(first_write.len(), 3);
    assert!(
        l.take_to_persist().is_empty(),
        "in progress: not handed out twice"
    );
    // A new leader overwrites index 3 while the write runs.
    assert_eq!(l.maybe_append(2, 1, 0, &ents(3, &[2])), Ok(Some(3)));
    l.storage_mut().append(&first_write).unwrap();
    assert!(
        !l.on_persisted(3, 1),
        "entry 3 is now term 2: this ack is stale"
    );
    assert_eq!(l.persisted(), 0);
    let second_write = l.take_to_persist();
    assert_eq!(
        second_write
            .iter()
            .map(|e| (e.index, e.term))
            .collect::<Vec<_>>(),
        [(3, 2)]
    );
    l.storage_mut().append(&second_write).unwrap();
    assert!(l.on_persisted(3, 2));
    assert_eq!(l.persisted(), 3);
}

/// Entries are applied only once committed and durable locally (not
/// merely handed out to persist: issue 14, finding 3), and never twice.
#[test]
fn apply_follows_commit_and_local_persistence() {
    let mut l = log(&[1, 1, 1]);
    l.commit_to(3).unwrap();
    assert_eq!(
        l.applicable(),
        0,
        "committed but not yet handed out to persist"
    );
    let batch = l.take_to_persist();
    assert_eq!(l.applicable(), 0, "handed out, not yet durable");
    l.storage_mut().append(&batch).unwrap();
    assert!(l.on_persisted(3, 1));
    assert_eq!(l.applicable(), 3);
    let next = l.next_to_apply(u64::MAX).unwrap();
    assert_eq!(next.len(), 3);
    l.applied_to(3);
    assert!(l.next_to_apply(u64::MAX).unwrap().is_empty());
    l.applied_to(2);
    assert_eq!(l.applied(), 3, "applied never goes back");
}

/// A restarted node resumes from storage: the persisted log, the commit
/// index of its hard state, and nothing unstable.
#[test]
fn restart_resumes_from_storage() {
    let mut l = log(&[1, 2, 2]);
    persist_all(&mut l);
    let mut storage = l.storage().clone();
    storage.set_hard_state(dsys_consensus::HardState {
        term: 2,
        vote: Some(1),
        commit: 2,
    });
    let restarted = RaftLog::new(storage);
    assert_eq!(
        (
            restarted.last_index(),
            restarted.last_term(),
            restarted.committed(),
            restarted.applied()
        ),
        (3, 2, 2, 0)
    );
}

fn meta(index: u64, term: u64) -> SnapshotMeta<u64> {
    SnapshotMeta {
        index,
        term,
        membership: dsys_consensus::Membership::from_voters([1, 2, 3]),
    }
}

/// §7: a snapshot installed in storage. A log that holds the snapshot's
/// last entry keeps what follows it, persisted or not; the snapshot's
/// index counts as committed and applied.
#[test]
fn restoring_a_snapshot_the_log_holds_keeps_the_entries_after_it() {
    let mut log = log(&[1, 1, 2]);
    persist_all(&mut log);
    log.append(&ents(4, &[2, 2])).unwrap(); // unstable 4..=5
    log.storage_mut().apply_snapshot(meta(2, 1));
    log.restore_snapshot(2, 1);
    assert_eq!((log.first_index(), log.last_index()), (3, 5));
    assert_eq!((log.committed(), log.applied()), (2, 2));
    assert_eq!(log.term(4), Ok(2));
    // The tail is still to persist, and persists after the snapshot.
    let batch = log.take_to_persist();
    assert_eq!(batch.first().map(|e| e.index), Some(4));
    log.storage_mut().append(&batch).unwrap();
    assert!(log.on_persisted(5, 2));
    assert_eq!(log.storage().last_index(), 5);
}

/// §7: a snapshot whose last entry the log contradicts (another term at
/// its index) replaces the whole log, persisted and unpersisted.
#[test]
fn restoring_a_snapshot_the_log_contradicts_drops_the_whole_log() {
    let mut log = log(&[1, 1]);
    persist_all(&mut log);
    log.append(&ents(3, &[1, 1])).unwrap(); // unstable 3..=4, term 1
    let stale = log.take_to_persist(); // a write in the air
    log.storage_mut().apply_snapshot(meta(3, 5));
    log.restore_snapshot(3, 5);
    assert_eq!((log.first_index(), log.last_index()), (4, 3));
    assert_eq!(log.term(3), Ok(5));
    assert!(!log.has_to_persist());
    // The write in the air lands late: what the snapshot covers is skipped,
    // and its acknowledgement moves nothing.
    log.storage_mut().append(&stale[..1]).unwrap();
    assert!(!log.on_persisted(3, 1));
    assert_eq!(log.last_index(), 3);
    // A log that ended before the snapshot (a lagging follower) likewise.
    let mut short = self::log(&[1]);
    persist_all(&mut short);
    short.storage_mut().apply_snapshot(meta(6, 2));
    short.restore_snapshot(6, 2);
    assert_eq!(
        (short.first_index(), short.last_index(), short.committed()),
        (7, 6, 6)
    );
}
