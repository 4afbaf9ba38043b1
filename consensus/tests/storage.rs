//! `MemStorage`, the reference `Storage`: ranges, compaction, conflicting
//! appends, and typed errors instead of panics for out-of-range reads.

use dsys_consensus::{
    ENTRY_OVERHEAD, Entry, HardState, MemStorage, SnapshotMeta, Storage, StorageError,
};

fn storage_with(terms: &[u64]) -> MemStorage<u64> {
    let mut s = MemStorage::new(vec![1, 2, 3]);
    let entries: Vec<Entry<u64>> = terms
        .iter()
        .enumerate()
        .map(|(i, t)| Entry::new(*t, i as u64 + 1, vec![0u8; 4]))
        .collect();
    s.append(&entries).unwrap();
    s
}

/// Records a durable snapshot at `index` (so compaction may go there).
fn snapshot_at(s: &mut MemStorage<u64>, index: u64) {
    let term = s.term(index).unwrap();
    s.set_snapshot(SnapshotMeta {
        index,
        term,
        membership: dsys_consensus::Membership::from_voters([1, 2, 3]),
    })
    .unwrap();
}

#[test]
fn empty_storage_reads_as_an_empty_log() {
    let s = MemStorage::<u64>::new(vec![1]);
    assert_eq!((s.first_index(), s.last_index()), (1, 0));
    assert_eq!(s.term(0), Ok(0));
    assert_eq!(s.entries(1, 1, u64::MAX), Ok(vec![]));
    assert_eq!(
        s.term(1),
        Err(StorageError::Unavailable {
            index: 1,
            last_index: 0
        })
    );
    assert_eq!(s.initial_state().hard_state, HardState::default());
}

#[test]
fn out_of_range_reads_are_typed_errors() {
    let mut s = storage_with(&[1, 1, 2, 3]);
    snapshot_at(&mut s, 2);
    s.compact(2).unwrap();
    assert_eq!(
        s.term(1),
        Err(StorageError::Compacted {
            index: 1,
            compacted: 2
        })
    );
    assert_eq!(
        s.term(2),
        Ok(1),
        "the compaction point keeps its term for matching (§5.3)"
    );
    assert_eq!(
        s.term(5),
        Err(StorageError::Unavailable {
            index: 5,
            last_index: 4
        })
    );
    assert_eq!(
        s.entries(2, 4, u64::MAX),
        Err(StorageError::Compacted {
            index: 2,
            compacted: 2
        })
    );
    assert_eq!(
        s.entries(3, 6, u64::MAX),
        Err(StorageError::Unavailable {
            index: 5,
            last_index: 4
        })
    );
    assert_eq!(s.entries(3, 5, u64::MAX).unwrap().len(), 2);
}

#[test]
fn entries_respect_the_size_limit_but_return_at_least_one() {
    let s = storage_with(&[1, 1, 1, 1]);
    let one = 4 + ENTRY_OVERHEAD;
    assert_eq!(s.entries(1, 5, 0).unwrap().len(), 1);
    assert_eq!(s.entries(1, 5, one).unwrap().len(), 1);
    assert_eq!(s.entries(1, 5, 2 * one).unwrap().len(), 2);
    assert_eq!(s.entries(1, 5, 2 * one + 1).unwrap().len(), 2);
    assert_eq!(s.entries(1, 5, u64::MAX).unwrap().len(), 4);
}

#[test]
fn append_replaces_a_conflicting_suffix() {
    let mut s = storage_with(&[1, 1, 1]);
    s.append(&[Entry::new(2, 2, "x")]).unwrap();
    assert_eq!(s.last_index(), 2);
    assert_eq!((s.term(1), s.term(2)), (Ok(1), Ok(2)));
}

#[test]
fn non_contiguous_appends_are_rejected_and_change_nothing() {
    let mut s = storage_with(&[1, 1]);
    let gap = s.append(&[Entry::new(1, 4, "")]);
    assert!(matches!(
        gap,
        Err(StorageError::NotContiguous { first: 4, .. })
    ));
    let skip = s.append(&[Entry::new(1, 3, ""), Entry::new(1, 5, "")]);
    assert!(matches!(skip, Err(StorageError::NotContiguous { .. })));
    let zero = s.append(&[Entry::new(1, 0, "")]);
    assert!(matches!(zero, Err(StorageError::NotContiguous { .. })));
    let huge = s.append(&[Entry::new(1, u64::MAX, ""), Entry::new(1, u64::MAX, "")]);
    assert!(matches!(huge, Err(StorageError::NotContiguous { .. })));
    snapshot_at(&mut s, 1);
    s.compact(1).unwrap();
    // Entries a snapshot covers are skipped (a write that lands after the
    // snapshot), not an error; a gap after them still is.
    s.append(&[Entry::new(3, 1, "")]).unwrap();
    assert_eq!((s.first_index(), s.last_index(), s.term(2)), (2, 2, Ok(1)));
    let gap = s.append(&[Entry::new(1, 0, ""), Entry::new(1, 4, "")]);
    assert!(matches!(gap, Err(StorageError::NotContiguous { .. })));
    assert_eq!((s.first_index(), s.last_index(), s.term(2)), (2, 2, Ok(1)));
}

#[test]
fn compaction_is_idempotent_and_bounded() {
    let mut s = storage_with(&[1, 2, 3]);
    assert_eq!(
        s.compact(1),
        Err(StorageError::NotSnapshotted {
            index: 1,
            snapshot: 0
        }),
        "nothing may go that no snapshot covers"
    );
    snapshot_at(&mut s, 3);
    assert!(matches!(
        s.compact(4),
        Err(StorageError::NotSnapshotted { .. })
    ));
    s.compact(2).unwrap();
    s.compact(1).unwrap();
    s.compact(2).unwrap();
    assert_eq!(
        (s.first_index(), s.last_index(), s.term(2), s.term(3)),
        (3, 3, Ok(2), Ok(3))
    );
    s.compact(3).unwrap();
    assert_eq!((s.first_index(), s.last_index(), s.term(3)), (4, 3, Ok(3)));
    s.append(&[Entry::new(4, 4, "")]).unwrap();
    assert_eq!(s.last_index(), 4);
}

/// What a node finds in storage when it (re)starts and contradicts the
/// configuration is a `RestartError`, kept apart from a `ConfigError` (an
/// invalid configuration, which `RestartError::Config` carries).
#[test]
fn restart_errors_are_not_config_errors() {
    use dsys_consensus::{Config, ConfigError, RaftNode, RestartError};

    let mut config = Config::default();
    config.heartbeat_tick = 0;
    assert_eq!(
        RaftNode::new(1u64, MemStorage::new(vec![1, 2, 3]), config).err(),
        Some(RestartError::Config(ConfigError::ZeroHeartbeat))
    );

    assert_eq!(
        RaftNode::new(4u64, MemStorage::new(vec![1, 2, 3]), Config::default()).err(),
        Some(RestartError::NotAVoter)
    );

    let mut storage = MemStorage::new(vec![1u64, 2, 3]);
    storage
        .append(&[Entry::new(1, 1, "x=1"), Entry::new(1, 2, "y=2")])
        .expect("entries continue the log");
    storage.set_hard_state(HardState {
        term: 1,
        vote: Some(1),
        commit: 1,
    });
    // The state machine applied past the stored commit (written lazily):
    // what it applied counts as committed.
    let mut config = Config::default();
    config.applied = 2;
    let node =
        RaftNode::new(1u64, storage.clone(), config.clone()).expect("applied within the log");
    assert_eq!(node.status().commit, 2);
    assert_eq!(node.status().applied, 2);
    // Past the last stored entry: the state machine holds what this disk
    // never had.
    config.applied = 3;
    assert_eq!(
        RaftNode::new(1u64, storage.clone(), config.clone()).err(),
        Some(RestartError::AppliedBeyondLog {
            applied: 3,
            last_index: 2
        })
    );
    config.applied = 1;
    assert!(RaftNode::new(1u64, storage, config).is_ok());
}

#[test]
fn snapshots_are_checked_and_installing_one_replaces_the_log_it_contradicts() {
    let mut s = storage_with(&[1, 1, 2, 2]);
    let wrong_term = s.set_snapshot(SnapshotMeta {
        index: 3,
        term: 1,
        membership: dsys_consensus::Membership::from_voters([1, 2, 3]),
    });
    assert_eq!(
        wrong_term,
        Err(StorageError::SnapshotMismatch { index: 3, term: 1 })
    );
    assert_eq!(s.snapshot(), None);
    // A received snapshot that holds the log's entry 2: the tail stays.
    let mut kept = s.clone();
    kept.apply_snapshot(SnapshotMeta {
        index: 2,
        term: 1,
        membership: dsys_consensus::Membership::from_voters([1, 2, 3]),
    });
    assert_eq!((kept.first_index(), kept.last_index()), (3, 4));
    assert_eq!(kept.hard_state().commit, 2, "a snapshot is committed");
    // One that contradicts it (another term at 3): the whole log goes.
    s.apply_snapshot(SnapshotMeta {
        index: 3,
        term: 5,
        membership: dsys_consensus::Membership::from_voters([1, 2, 3]),
    });
    assert_eq!((s.first_index(), s.last_index(), s.term(3)), (4, 3, Ok(5)));
    // A hard state written before the snapshot landed never lowers its commit.
    s.set_hard_state(HardState {
        term: 5,
        vote: None,
        commit: 1,
    });
    assert_eq!(s.initial_state().hard_state.commit, 3);
    // An older snapshot changes nothing.
    s.apply_snapshot(SnapshotMeta {
        index: 2,
        term: 1,
        membership: dsys_consensus::Membership::from_voters([1, 2, 3]),
    });
    assert_eq!(s.snapshot().map(|m| m.index), Some(3));
}

/// `append_owned` stores exactly what `append` stores, and refuses what
/// it refuses: a conflicting suffix replaced, entries under the compaction
/// point skipped, a gap refused with nothing changed.
#[test]
fn append_owned_matches_append() {
    let batches: [&[(u64, u64)]; 5] = [
        &[(1, 1), (2, 1), (3, 1), (4, 1)],
        &[(3, 2), (4, 2), (5, 2)],
        &[(1, 1), (2, 1), (3, 2), (6, 2)],
        &[(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 3)],
        &[(9, 3)],
    ];
    let (mut by_ref, mut by_value) = (storage_with(&[]), storage_with(&[]));
    for (round, batch) in batches.iter().enumerate() {
        let entries: Vec<Entry<u64>> = batch
            .iter()
            .map(|&(index, term)| Entry::new(term, index, vec![index as u8]))
            .collect();
        let a = by_ref.append(&entries);
        let b = by_value.append_owned(entries);
        assert_eq!(a, b, "round {round}");
        assert_eq!(
            by_ref.entries(by_ref.first_index(), by_ref.last_index() + 1, u64::MAX),
            by_value.entries(by_value.first_index(), by_value.last_index() + 1, u64::MAX),
            "round {round}"
        );
        if round == 1 {
            snapshot_at(&mut by_ref, 2);
            by_ref.compact(2).unwrap();
            snapshot_at(&mut by_value, 2);
            by_value.compact(2).unwrap();
        }
    }
    assert_eq!(by_value.last_index(), 6);
}
