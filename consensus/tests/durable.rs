//! `durable::DiskStorage` against `MemStorage`, the reference: round trips,
//! restarts that read back exactly what was written, suffix truncation
//! (§5.3), snapshots and compaction (§7), group commit, and a property
//! test of random operations with restarts.
#![cfg(feature = "durable")]

mod durable_common;

use dsys_consensus::durable::{DiskStorage, DiskStorageConfig, WriteError};
use dsys_consensus::{
    Entry, HardState, MemStorage, Membership, Persist, SnapshotMeta, Storage, StorageError,
};
use durable_common::{assert_same, entry, small_config};
use proptest::prelude::*;

fn voters() -> Membership<u64> {
    Membership::from_voters([1, 2, 3])
}

fn open(dir: &std::path::Path) -> DiskStorage<u64> {
    DiskStorage::open(dir, voters(), small_config()).unwrap()
}

#[test]
fn a_new_log_is_empty_and_keeps_its_bootstrap_membership() {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(dir.path());
    assert_same(&disk, &MemStorage::new(vec![1, 2, 3]));
    drop(disk);
    // The stored membership wins over the one passed on reopening.
    let disk = DiskStorage::<u64>::open(dir.path(), Membership::default(), small_config()).unwrap();
    assert_eq!(disk.initial_state().membership, voters());
}

#[test]
fn appends_truncation_snapshot_and_compaction_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = open(dir.path());
    let mut model = MemStorage::new(vec![1, 2, 3]);
    let first: Vec<_> = (1..=200).map(|i| entry(1 + i / 60, i)).collect();
    disk.append(&first).unwrap();
    model.append(&first).unwrap();
    assert!(disk.recovery().segments <= 1);
    // A new leader replaces a suffix (§5.3), across segment boundaries.
    let second: Vec<_> = (90..=120).map(|i| entry(5, i)).collect();
    disk.append(&second).unwrap();
    model.append(&second).unwrap();
    let hard_state = HardState {
        term: 5,
        vote: Some(2),
        commit: 100,
    };
    disk.set_hard_state(hard_state.clone()).unwrap();
    model.set_hard_state(hard_state);
    let meta = SnapshotMeta {
        index: 70,
        term: model.term(70).unwrap(),
        membership: Membership::new([1, 2, 3], [4]),
    };
    disk.set_snapshot(meta.clone()).unwrap();
    model.set_snapshot(meta).unwrap();
    disk.compact(65).unwrap();
    model.compact(65).unwrap();
    let third: Vec<_> = (121..=260).map(|i| entry(6, i)).collect();
    disk.append(&third).unwrap();
    model.append(&third).unwrap();
    assert_same(&disk, &model);
    drop(disk);
    let disk = open(dir.path());
    assert_same(&disk, &model);
    let files = durable_common::files(dir.path());
    assert!(
        disk.recovery().segments > 1,
        "{:?} {files:?}",
        disk.recovery()
    );
    assert_eq!(disk.recovery().torn_segment_bytes, 0);
}

#[test]
fn group_commit_acknowledges_the_highest_staged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = open(dir.path());
    for id in 1..=5u64 {
        disk.stage(&Persist {
            id,
            hard_state: (id == 3).then_some(HardState {
                term: 1,
                vote: Some(1),
                commit: 0,
            }),
            entries: vec![entry(1, id)],
        })
        .unwrap();
    }
    // Staged entries are readable before they are durable.
    assert_eq!(disk.last_index(), 5);
    assert!(matches!(disk.compact(1), Err(WriteError::Unsynced)));
    assert_eq!(disk.sync().unwrap(), Some(5));
    assert_eq!(disk.sync().unwrap(), None);
    drop(disk);
    let disk = open(dir.path());
    assert_eq!(disk.last_index(), 5);
    assert_eq!(disk.hard_state().vote, Some(1));
}

#[test]
fn installing_a_snapshot_keeps_or_drops_the_log_after_it() {
    for keep in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = open(dir.path());
        let mut model = MemStorage::new(vec![1, 2, 3]);
        let entries: Vec<_> = (1..=120).map(|i| entry(2, i)).collect();
        disk.append(&entries).unwrap();
        model.append(&entries).unwrap();
        let meta = SnapshotMeta {
            index: 80,
            term: if keep { 2 } else { 3 },
            membership: voters(),
        };
        disk.apply_snapshot(meta.clone()).unwrap();
        model.apply_snapshot(meta);
        assert_same(&disk, &model);
        // The log goes on after the snapshot.
        let next = entry(3, model.last_index() + 1);
        disk.append(std::slice::from_ref(&next)).unwrap();
        model.append(&[next]).unwrap();
        drop(disk);
        let disk = open(dir.path());
        assert_same(&disk, &model);
    }
}

#[test]
fn refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = open(dir.path());
    disk.append(&[entry(1, 1), entry(1, 2)]).unwrap();
    assert!(matches!(
        disk.append(&[entry(1, 4)]),
        Err(WriteError::Storage(StorageError::NotContiguous { .. }))
    ));
    assert!(matches!(
        disk.compact(1),
        Err(WriteError::Storage(StorageError::NotSnapshotted { .. }))
    ));
    let wrong = SnapshotMeta {
        index: 2,
        term: 9,
        membership: voters(),
    };
    assert!(matches!(
        disk.set_snapshot(wrong),
        Err(WriteError::Storage(StorageError::SnapshotMismatch { .. }))
    ));
    let mut config = small_config();
    config.max_entry_bytes = 64;
    drop(disk);
    let mut disk = DiskStorage::open(dir.path(), voters(), config).unwrap();
    let big = Entry::new(1, 3, vec![b'x'; 100]);
    assert!(matches!(
        disk.append(&[big]),
        Err(WriteError::EntryTooLarge { index: 3, .. })
    ));
    assert_eq!(disk.last_index(), 2);
    assert!(!disk.is_failed());
    let mut bad = DiskStorageConfig::default();
    bad.segment_bytes = 1;
    assert!(bad.validate().is_err());
}

#[test]
fn the_state_file_is_rewritten_when_it_grows() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = Membership::from_voters(["a".to_string()]);
    let mut disk = DiskStorage::open(dir.path(), bootstrap.clone(), small_config()).unwrap();
    // About 4 KiB a record (a long node id): past the 1 MiB rewrite point.
    let long_id = "n".repeat(4000);
    for term in 1..=400u64 {
        disk.set_hard_state(HardState {
            term,
            vote: Some(format!("{long_id}{term}")),
            commit: 0,
        })
        .unwrap();
    }
    let len = std::fs::metadata(dir.path().join("state")).unwrap().len();
    assert!(len < 1 << 20, "{len}");
    drop(disk);
    let disk =
        DiskStorage::<String>::open(dir.path(), Membership::default(), small_config()).unwrap();
    assert_eq!(disk.hard_state().term, 400);
    assert_eq!(disk.hard_state().vote, Some(format!("{long_id}400")));
    assert_eq!(disk.initial_state().membership, bootstrap);
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    /// Append `count` entries from `back` entries before the end (a
    /// conflicting suffix when `back > 0`), in a new term if `bump`.
    Append { back: u8, count: u8, bump: bool },
    /// Stage that append with a hard state, without syncing, then sync.
    Staged { count: u8 },
    /// Record a hard state committing `back` entries before the end.
    HardState { back: u8 },
    /// Snapshot `back` entries before the commit index, and compact to it.
    Snapshot { back: u8, compact: bool },
    /// Install a snapshot `ahead` entries past the commit index, matching
    /// the log or not.
    Install { ahead: u8, matching: bool },
    /// Drop the storage and open it again.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, 1u8..12, any::<bool>()).prop_map(|(back, count, bump)| Op::Append { back, count, bump }),
        2 => (1u8..8).prop_map(|count| Op::Staged { count }),
        2 => (0u8..10).prop_map(|back| Op::HardState { back }),
        1 => (0u8..10, any::<bool>()).prop_map(|(back, compact)| Op::Snapshot { back, compact }),
        1 => (0u8..20, any::<bool>()).prop_map(|(ahead, matching)| Op::Install { ahead, matching }),
        2 => Just(Op::Restart),
    ]
}

struct Run {
    dir: tempfile::TempDir,
    disk: Option<DiskStorage<u64>>,
    model: MemStorage<u64>,
    term: u64,
    next_id: u64,
}

impl Run {
    fn disk(&mut self) -> &mut DiskStorage<u64> {
        self.disk.as_mut().expect("open")
    }

    /// Entries from `from`, in the current term.
    fn entries(&self, from: u64, count: u8) -> Vec<Entry<u64>> {
        (from..from + u64::from(count))
            .map(|i| entry(self.term, i))
            .collect()
    }

    /// The lowest index a new leader may overwrite: past the commit index.
    fn overwrite_floor(&self) -> u64 {
        self.model
            .hard_state()
            .commit
            .max(self.model.first_index() - 1)
            + 1
    }

    fn step(&mut self, op: Op) {
        let last = self.model.last_index();
        let commit = self.model.hard_state().commit;
        match op {
            Op::Append { back, count, bump } => {
                if bump {
                    self.term += 1;
                }
                let from = (last + 1)
                    .saturating_sub(u64::from(back))
                    .max(self.overwrite_floor());
                let entries = self.entries(from, count);
                self.disk().append(&entries).unwrap();
                self.model.append(&entries).unwrap();
            }
            Op::Staged { count } => {
                let entries = self.entries(last + 1, count);
                let hard_state = HardState {
                    term: self.term,
                    vote: Some(1),
                    commit,
                };
                self.next_id += 1;
                let id = self.next_id;
                let persist = Persist {
                    id,
                    hard_state: Some(hard_state.clone()),
                    entries: entries.clone(),
                };
                self.disk().stage(&persist).unwrap();
                assert_eq!(self.disk().sync().unwrap(), Some(id));
                self.model.append(&entries).unwrap();
                self.model.set_hard_state(hard_state);
            }
            Op::HardState { back } => {
                let commit = last.saturating_sub(u64::from(back)).max(commit);
                let hard_state = HardState {
                    term: self.term,
                    vote: None,
                    commit,
                };
                self.disk().set_hard_state(hard_state.clone()).unwrap();
                self.model.set_hard_state(hard_state);
            }
            Op::Snapshot { back, compact } => {
                let index = commit.saturating_sub(u64::from(back));
                if index < self.model.first_index() || index == 0 {
                    return;
                }
                let meta = SnapshotMeta {
                    index,
                    term: self.model.term(index).unwrap(),
                    membership: Membership::from_voters([1, 2, index % 5 + 3]),
                };
                self.disk().set_snapshot(meta.clone()).unwrap();
                self.model.set_snapshot(meta).unwrap();
                if compact {
                    self.disk().compact(index).unwrap();
                    self.model.compact(index).unwrap();
                }
            }
            Op::Install { ahead, matching } => {
                let index = commit + u64::from(ahead);
                if index == 0 {
                    return;
                }
                let term = match self.model.term(index) {
                    Ok(term) if matching => term,
                    _ => {
                        self.term += 1;
                        self.term
                    }
                };
                let meta = SnapshotMeta {
                    index,
                    term,
                    membership: voters(),
                };
                self.disk().apply_snapshot(meta.clone()).unwrap();
                self.model.apply_snapshot(meta);
            }
            Op::Restart => {
                self.disk = None;
                self.disk = Some(open(self.dir.path()));
            }
        }
        assert_same(self.disk.as_ref().expect("open"), &self.model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any sequence of Raft-valid writes, with restarts anywhere, reads back
    /// as `MemStorage` does.
    #[test]
    fn disk_storage_behaves_as_mem_storage(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let disk = open(dir.path());
        let mut run = Run { dir, disk: Some(disk), model: MemStorage::new(vec![1, 2, 3]), term: 1, next_id: 0 };
        for op in ops {
            run.step(op);
        }
    }
}

/// Rough cost of an fsync against entries per fsync (group commit), on
/// the disk under the temporary directory. Run it by hand:
/// `cargo test -p dsys-consensus --features durable --release --test durable -- --ignored --nocapture fsync`.
#[test]
#[ignore = "a timing, run by hand"]
fn fsync_cost_against_entries_per_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = DiskStorage::open(dir.path(), voters(), DiskStorageConfig::default()).unwrap();
    let data = bytes::Bytes::from(vec![b'x'; 128]);
    let mut next = 1u64;
    for (per_sync, with_hard_state) in [(1u64, false), (1, true), (16, true), (256, true)] {
        let syncs = if per_sync == 1 { 500 } else { 200 };
        let started = std::time::Instant::now();
        for id in 0..syncs {
            let entries: Vec<_> = (next..next + per_sync)
                .map(|i| Entry::new(1, i, data.clone()))
                .collect();
            next += per_sync;
            let hard_state = HardState {
                term: 1,
                vote: Some(1),
                commit: next - per_sync - 1,
            };
            disk.write(&Persist {
                id: id + 1,
                hard_state: with_hard_state.then_some(hard_state),
                entries,
            })
            .unwrap();
        }
        let what = if with_hard_state {
            "entries + hard state"
        } else {
            "entries only"
        };
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "{per_sync:>4} entries of 128 B per sync ({what}): {:>5.0} syncs/s, {:>7.0} entries/s ({:.2} ms per sync)",
            syncs as f64 / elapsed,
            (syncs * per_sync) as f64 / elapsed,
            elapsed * 1e3 / syncs as f64
        );
    }
}

/// Puts the segment files back as they were before an operation, as a
/// crash right after its meta was written (and before its deletions
/// reached the disk) leaves them.
fn put_back(dir: &std::path::Path, saved: &[(String, Vec<u8>)]) {
    for (name, _) in segments(dir) {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    for (name, bytes) in saved {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn segments(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    durable_common::files(dir)
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

#[test]
fn open_finishes_an_interrupted_compaction_or_install() {
    for install in [None, Some(true), Some(false)] {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = open(dir.path());
        let mut model = MemStorage::new(vec![1, 2, 3]);
        let entries: Vec<_> = (1..=200).map(|i| entry(2, i)).collect();
        disk.append(&entries).unwrap();
        model.append(&entries).unwrap();
        // Committed up to the snapshot: a leader's snapshot never
        // contradicts a follower's committed entries.
        let hard_state = HardState {
            term: 2,
            vote: None,
            commit: 150,
        };
        disk.set_hard_state(hard_state.clone()).unwrap();
        model.set_hard_state(hard_state);
        let saved = segments(dir.path());
        match install {
            None => {
                let meta = SnapshotMeta {
                    index: 150,
                    term: 2,
                    membership: voters(),
                };
                disk.set_snapshot(meta.clone()).unwrap();
                model.set_snapshot(meta).unwrap();
                disk.compact(150).unwrap();
                model.compact(150).unwrap();
            }
            Some(matching) => {
                let meta = SnapshotMeta {
                    index: 150,
                    term: if matching { 2 } else { 3 },
                    membership: voters(),
                };
                disk.apply_snapshot(meta.clone()).unwrap();
                model.apply_snapshot(meta);
            }
        }
        drop(disk);
        put_back(dir.path(), &saved);
        let disk = open(dir.path());
        assert!(disk.recovery().removed_segments > 0, "{install:?}");
        assert_same(&disk, &model);
    }
}

#[test]
fn a_failed_write_fails_every_later_write_and_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let mut disk = open(&path);
    disk.append(&(1..=10).map(|i| entry(1, i)).collect::<Vec<_>>())
        .unwrap();
    // The directory goes away: the next segment cannot be created.
    std::fs::remove_dir_all(&path).unwrap();
    let many: Vec<_> = (11..=200).map(|i| entry(1, i)).collect();
    assert!(matches!(disk.append(&many), Err(WriteError::Io(_))));
    assert!(disk.is_failed());
    assert!(matches!(
        disk.append(&[entry(1, 201)]),
        Err(WriteError::Failed)
    ));
    assert!(matches!(disk.sync(), Err(WriteError::Failed)));
    // What was written before is still read from the open files.
    assert_eq!(disk.entries(1, 11, u64::MAX).unwrap()[9], entry(1, 10));
}
