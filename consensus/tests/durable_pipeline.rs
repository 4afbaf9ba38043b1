//! `DiskStorage::sync_in_background`: staging goes on while a sync runs
//! on the storage's syncer thread; a ticket resolves only once what was
//! staged before its request is durable; a conflicting suffix cut while a
//! sync is in flight stays cut; and what no ticket vouched for is all a
//! crash may take.

mod durable_common;

use dsys_consensus::durable::{DiskStorage, DiskStorageConfig, SyncTicket, WriteError};
use dsys_consensus::{Entry, HardState, Membership, Persist, Storage};
use durable_common::{copy_dir, entry, files, scratch_dir, small_config};
use std::path::Path;

fn open(dir: &Path) -> DiskStorage<u64> {
    DiskStorage::open(dir, Membership::from_voters([1, 2, 3]), small_config()).expect("open")
}

fn batch(
    id: u64,
    hard_state: Option<HardState<u64>>,
    entries: Vec<Entry<u64>>,
) -> Persist<HardState<u64>, u64> {
    Persist {
        id,
        hard_state,
        entries,
    }
}

fn hs(term: u64, commit: u64) -> HardState<u64> {
    HardState {
        term,
        vote: Some(1),
        commit,
    }
}

fn terms(storage: &DiskStorage<u64>) -> Vec<u64> {
    (storage.first_index()..=storage.last_index())
        .map(|i| storage.term(i).expect("held"))
        .collect()
}

#[test]
fn ticket_resolves_with_the_id_once_durable_and_reopen_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = open(dir.path());
    storage
        .stage(&batch(1, Some(hs(1, 0)), vec![entry(1, 1), entry(1, 2)]))
        .unwrap();
    // A term change is synced in the caller's thread, in etcd's order.
    let ticket = storage.sync_in_background().unwrap();
    assert!(ticket.is_durable());
    assert_eq!(ticket.wait().unwrap(), Some(1));
    storage.stage(&batch(2, None, vec![entry(1, 3)])).unwrap();
    storage
        .stage(&batch(3, Some(hs(1, 2)), vec![entry(1, 4)]))
        .unwrap();
    let counters = storage.sync_counters();
    let ticket = storage.sync_in_background().unwrap();
    let number = counters.requests();
    assert_eq!(ticket.id(), Some(3));
    // Readable at once, before the sync.
    assert_eq!(storage.last_index(), 4);
    assert_eq!(ticket.wait().unwrap(), Some(3));
    assert!(counters.requests_durable() >= number);
    drop(storage);
    let storage = open(dir.path());
    assert_eq!(terms(&storage), [1, 1, 1, 1]);
    assert_eq!(storage.initial_state().hard_state, hs(1, 2));
}

#[test]
fn requests_made_while_a_sync_runs_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = open(dir.path());
    storage
        .stage(&batch(1, Some(hs(1, 0)), vec![entry(1, 1)]))
        .unwrap();
    storage.sync_in_background().unwrap().wait().unwrap();
    let counters = storage.sync_counters();
    let before = counters.syncs();
    let mut tickets: Vec<SyncTicket> = Vec::new();
    for id in 2..=201u64 {
        let hard_state = (id % 3 == 0).then(|| hs(1, id / 2));
        storage
            .stage(&batch(id, hard_state, vec![entry(1, id)]))
            .unwrap();
        tickets.push(storage.sync_in_background().unwrap());
    }
    let mut last = 0;
    for (i, ticket) in tickets.into_iter().enumerate() {
        let id = ticket.wait().unwrap().expect("an id");
        assert_eq!(
            id,
            i as u64 + 2,
            "tickets resolve in order, each with its id"
        );
        assert!(id > last);
        last = id;
    }
    let syncs = counters.syncs() - before;
    assert!((1..=200).contains(&syncs), "{syncs} syncs");
    // sync() waits for the background first; nothing is left after it.
    assert_eq!(storage.sync().unwrap(), None);
    drop(storage);
    let storage = open(dir.path());
    assert_eq!(storage.last_index(), 201);
    assert_eq!(storage.initial_state().hard_state, hs(1, 100));
}

#[test]
fn a_suffix_cut_while_a_sync_is_in_flight_stays_cut() {
    for round in 0..20u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = open(dir.path());
        storage
            .stage(&batch(1, Some(hs(1, 0)), vec![entry(1, 1)]))
            .unwrap();
        storage.sync_in_background().unwrap().wait().unwrap();
        // Batch 2 (entries 2..=40 of term 1, across segments) is being
        // synced when batch 3, from a new leader, replaces 3.. with term 2.
        let old: Vec<Entry<u64>> = (2..=40).map(|i| entry(1, i)).collect();
        storage.stage(&batch(2, None, old)).unwrap();
        let first = storage.sync_in_background().unwrap();
        let cut = 3 + round % 30;
        let new: Vec<Entry<u64>> = (cut..cut + 2).map(|i| entry(2, i)).collect();
        storage.stage(&batch(3, None, new)).unwrap();
        let second = storage.sync_in_background().unwrap();
        let mut expect: Vec<u64> = vec![1; cut as usize - 1];
        expect.extend([2, 2]);
        assert_eq!(terms(&storage), expect, "readable at once");
        assert_eq!(first.wait().unwrap(), Some(2));
        assert_eq!(second.wait().unwrap(), Some(3));
        drop(storage);
        let storage = open(dir.path());
        assert_eq!(terms(&storage), expect, "cut at {cut}");
        assert_eq!(
            storage.entries(cut, cut + 2, u64::MAX).unwrap(),
            vec![entry(2, cut), entry(2, cut + 1)]
        );
    }
}

/// Power loss modelled by cutting: everything written after the last
/// resolved ticket may be lost, at any byte; what the tickets vouched for
/// never is.
#[test]
fn a_crash_loses_only_what_no_ticket_vouched_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = DiskStorage::open(
        dir.path(),
        Membership::from_voters([1u64, 2, 3]),
        DiskStorageConfig::default(),
    )
    .unwrap();
    storage
        .stage(&batch(1, Some(hs(1, 0)), vec![entry(1, 1), entry(1, 2)]))
        .unwrap();
    storage.sync_in_background().unwrap().wait().unwrap();
    storage
        .stage(&batch(2, Some(hs(1, 2)), vec![entry(1, 3), entry(1, 4)]))
        .unwrap();
    assert_eq!(
        storage.sync_in_background().unwrap().wait().unwrap(),
        Some(2)
    );
    let acked = std::fs::metadata(dir.path().join(&files(dir.path())[0]))
        .unwrap()
        .len();
    let state_acked = std::fs::metadata(dir.path().join("state")).unwrap().len();
    // Staged, some requested, none waited for: then the storage is gone.
    storage
        .stage(&batch(3, Some(hs(1, 4)), vec![entry(1, 5), entry(1, 6)]))
        .unwrap();
    let _unwaited = storage.sync_in_background().unwrap();
    storage.stage(&batch(4, None, vec![entry(1, 7)])).unwrap();
    drop(storage);
    let segment = files(dir.path())[0].clone();
    assert!(segment.ends_with(".seg"));
    let full = std::fs::metadata(dir.path().join(&segment)).unwrap().len();
    let state_full = std::fs::metadata(dir.path().join("state")).unwrap().len();
    let scratch = scratch_dir();
    for (cut, state_cut) in (acked..=full)
        .map(|c| (c, state_acked))
        .chain((state_acked..=state_full).map(|s| (acked, s)))
    {
        let copy = scratch.path().join(format!("{cut}-{state_cut}"));
        copy_dir(dir.path(), &copy);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.join(&segment))
            .unwrap();
        f.set_len(cut).unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.join("state"))
            .unwrap();
        f.set_len(state_cut).unwrap();
        let storage = DiskStorage::<u64>::open(
            &copy,
            Membership::from_voters([1, 2, 3]),
            DiskStorageConfig::default(),
        )
        .unwrap_or_else(|e| panic!("cut at {cut}/{state_cut}: {e}"));
        assert!(storage.last_index() >= 4, "cut at {cut}/{state_cut}");
        assert_eq!(
            storage.entries(1, 5, u64::MAX).unwrap(),
            (1..=4).map(|i| entry(1, i)).collect::<Vec<_>>()
        );
        assert!(storage.initial_state().hard_state.commit >= 2);
        std::fs::remove_dir_all(&copy).unwrap();
    }
}

#[test]
fn snapshots_and_compaction_wait_for_background_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = open(dir.path());
    storage
        .stage(&batch(1, Some(hs(1, 0)), vec![entry(1, 1), entry(1, 2)]))
        .unwrap();
    storage.sync_in_background().unwrap().wait().unwrap();
    storage
        .stage(&batch(2, Some(hs(1, 2)), vec![entry(1, 3)]))
        .unwrap();
    let ticket = storage.sync_in_background().unwrap();
    // Refused while in flight (unless it already finished), fine after.
    match storage.compact(1) {
        Err(WriteError::Unsynced) | Err(WriteError::Storage(_)) | Ok(()) => {}
        Err(e) => panic!("{e}"),
    }
    ticket.wait().unwrap();
    assert_eq!(storage.sync().unwrap(), None);
    storage
        .set_snapshot(dsys_consensus::SnapshotMeta {
            index: 2,
            term: 1,
            membership: Membership::from_voters([1, 2, 3]),
        })
        .unwrap();
    storage.compact(2).unwrap();
    assert_eq!(storage.first_index(), 3);
}

#[tokio::test]
async fn a_ticket_is_a_future() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = open(dir.path());
    storage
        .stage(&batch(1, Some(hs(1, 0)), vec![entry(1, 1)]))
        .unwrap();
    storage.sync_in_background().unwrap().await.unwrap();
    let mut tickets = Vec::new();
    for id in 2..=50 {
        storage
            .stage(&batch(id, Some(hs(1, id - 1)), vec![entry(1, id)]))
            .unwrap();
        tickets.push(storage.sync_in_background().unwrap());
    }
    for (i, ticket) in tickets.into_iter().enumerate() {
        assert_eq!(ticket.await.unwrap(), Some(i as u64 + 2));
    }
}

#[test]
fn dropping_the_storage_fails_tickets_it_never_synced() {
    // Either the sync ran before the drop (Ok) or the ticket fails: it
    // never hangs and never claims what was not synced.
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = open(dir.path());
        storage
            .stage(&batch(1, Some(hs(1, 0)), vec![entry(1, 1)]))
            .unwrap();
        storage.sync_in_background().unwrap().wait().unwrap();
        storage.stage(&batch(2, None, vec![entry(1, 2)])).unwrap();
        let counters = storage.sync_counters();
        let ticket = storage.sync_in_background().unwrap();
        let number = counters.requests();
        drop(storage);
        match ticket.wait() {
            Ok(id) => {
                assert_eq!(id, Some(2));
                assert!(counters.requests_durable() >= number);
            }
            Err(_) => assert!(counters.requests_durable() < number),
        }
    }
}

/// With nothing else in flight, a ticket resolves only after a sync that
/// started after its request finished its fsyncs: the storage's count of
/// finished syncs has moved. (Resolving a ticket one request early, or
/// before the fsyncs, fails this.)
#[test]
fn an_isolated_ticket_resolves_only_after_its_own_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = open(dir.path());
    storage
        .stage(&batch(1, Some(hs(1, 0)), vec![entry(1, 1)]))
        .unwrap();
    storage.sync_in_background().unwrap().wait().unwrap();
    let counters = storage.sync_counters();
    for id in 2..=100u64 {
        let hard_state = (id % 2 == 0).then(|| hs(1, id - 1));
        storage
            .stage(&batch(id, hard_state, vec![entry(1, id)]))
            .unwrap();
        let before = counters.syncs();
        let ticket = storage.sync_in_background().unwrap();
        assert_eq!(ticket.wait().unwrap(), Some(id));
        assert!(
            counters.syncs() > before,
            "batch {id} resolved before its sync"
        );
    }
}
