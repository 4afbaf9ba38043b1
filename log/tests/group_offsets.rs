//! Committed offsets survive restarts and crashes, commits are atomic across
//! partitions, and compaction keeps only the latest commit per partition.

use dsys_log::group::TopicPartition;
use dsys_log::{BatchBuilder, Log, MemDir, NewRecord, OffsetStore};

fn tp(p: u32) -> TopicPartition {
    TopicPartition::new("orders", p)
}

#[test]
fn committed_offsets_survive_restart_and_crash() {
    let dir = MemDir::new();
    let (mut store, _) = OffsetStore::open(dir.clone()).expect("open");
    store
        .commit_offsets("billing", &[(tp(0), 10), (tp(1), 20)], 1)
        .expect("commit");
    store
        .commit_offsets("billing", &[(tp(0), 15)], 2)
        .expect("commit");
    store
        .commit_offsets("audit", &[(tp(0), 3)], 3)
        .expect("commit");
    store.close().expect("close");
    let (mut store, _) = OffsetStore::open(dir.clone()).expect("reopen");
    assert_eq!(
        store.committed("billing", &tp(0)).map(|c| c.offset),
        Some(15)
    );
    assert_eq!(
        store.committed("billing", &tp(1)).map(|c| c.offset),
        Some(20)
    );
    assert_eq!(store.committed("audit", &tp(0)).map(|c| c.offset), Some(3));
    store
        .commit_offsets("billing", &[(tp(1), 25)], 4)
        .expect("commit");
    drop(store);
    dir.crash(); // every acknowledged commit was fsynced
    let (store, _) = OffsetStore::open(dir).expect("recover");
    assert_eq!(
        store.committed("billing", &tp(1)).map(|c| c.offset),
        Some(25)
    );
    assert_eq!(store.group_offsets("billing").len(), 2);
    assert_eq!(store.counters().skipped_records, 0);
}

/// A record that is not an offset commit (another writer, a newer schema) is
/// skipped on replay and counted, and the commits around it still load.
#[test]
fn records_that_are_not_commits_are_skipped_and_counted() {
    let dir = MemDir::new();
    let (mut store, _) = OffsetStore::open(dir.clone()).expect("open");
    store
        .commit_offsets("billing", &[(tp(0), 10)], 1)
        .expect("commit");
    store.close().expect("close");
    let (mut log, _) = Log::open(dir.clone(), OffsetStore::<MemDir>::log_config()).expect("open");
    let mut batch = BatchBuilder::new();
    batch.push(NewRecord::new(2, Some(b"not a key"), Some(b"not a value")));
    batch.push(NewRecord::new(2, None, Some(b"no key at all")));
    log.append(batch.finish().expect("two records"), 2)
        .expect("append");
    log.close().expect("close");
    let (store, _) = OffsetStore::open(dir).expect("reopen");
    assert_eq!(store.counters().skipped_records, 2);
    assert_eq!(
        store.committed("billing", &tp(0)).map(|c| c.offset),
        Some(10)
    );
}

#[test]
fn a_torn_multi_partition_commit_is_all_or_nothing() {
    let dir = MemDir::new();
    let (mut store, _) = OffsetStore::open(dir.clone()).expect("open");
    store
        .commit_offsets("g", &[(tp(0), 1), (tp(1), 1)], 1)
        .expect("commit");
    store
        .commit_offsets("g", &[(tp(0), 2), (tp(1), 2), (tp(2), 2)], 2)
        .expect("commit");
    drop(store);
    let name = "00000000000000000000.log";
    let bytes = dir.read_file(name).expect("segment");
    // Cut inside the second commit's batch at every byte: it vanishes whole.
    let first_len = 12 + u32::from_be_bytes(bytes[8..12].try_into().expect("4")) as usize;
    for cut in first_len..bytes.len() {
        let copy = MemDir::new();
        for f in dir.file_names() {
            copy.write_file(&f, &dir.read_file(&f).expect("listed"));
        }
        copy.write_file(name, &bytes[..cut]);
        let (store, _) = OffsetStore::open(copy).expect("recover");
        let offsets: Vec<u64> = (0..3)
            .filter_map(|p| store.committed("g", &tp(p)).map(|c| c.offset))
            .collect();
        assert_eq!(offsets, vec![1, 1], "cut at {cut}");
    }
}

#[test]
fn compaction_keeps_the_latest_commit_and_deleted_groups_stay_deleted() {
    let dir = MemDir::new();
    let (mut store, _) = OffsetStore::open(dir.clone()).expect("open");
    for i in 0..200u64 {
        store
            .commit_offsets("g", &[(tp((i % 4) as u32), i)], i as i64)
            .expect("commit");
    }
    store
        .commit_offsets("gone", &[(tp(0), 1)], 200)
        .expect("commit");
    assert_eq!(store.delete_group("gone", 201).expect("delete"), 1);
    let before = store.log().size_bytes();
    let report = store.compact(202).expect("compact");
    assert!(store.log().size_bytes() < before / 10, "{report:?}");
    store.close().expect("close");
    let (store, _) = OffsetStore::open(dir).expect("reopen");
    for p in 0..4u32 {
        assert_eq!(
            store.committed("g", &tp(p)).map(|c| c.offset),
            Some(196 + p as u64)
        );
    }
    assert!(store.group_offsets("gone").is_empty());
}
