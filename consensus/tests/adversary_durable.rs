//! Adversarial tests of `DiskStorage::open` on directories a crash cannot
//! leave: damage in the state file that looks like a tear, segments
//! missing or duplicated, a commit index past the log, records of a kind
//! this build does not know; and an entry the storage cannot keep as it
//! was given.
//!
//! A test marked `#[ignore = "BUG: ..."]` fails on the code it was written
//! against; the others guard behaviour that holds.
#![cfg(feature = "durable")]

use std::path::{Path, PathBuf};

use dsys_consensus::durable::{DiskStorage, DiskStorageConfig, OpenError};
use dsys_consensus::{Entry, HardState, Membership, Storage};

fn voters() -> Membership<u64> {
    Membership::from_voters([1, 2, 3])
}

fn small() -> DiskStorageConfig {
    let mut config = DiskStorageConfig::default();
    config.segment_bytes = DiskStorageConfig::MIN_SEGMENT_BYTES;
    config
}

fn open(dir: &Path) -> Result<DiskStorage<u64>, OpenError> {
    DiskStorage::open(dir, voters(), small())
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("state")
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

fn hard_state(term: u64) -> HardState<u64> {
    HardState {
        term,
        vote: Some(2),
        commit: 0,
    }
}

/// The state file gets one record per `sync` with a hard state, each
/// fsynced before the next is written: a crash can tear only the last one.
/// A zeroed sector in the middle, with intact records after it, is damage
/// to records that were acknowledged. Open must refuse it, or keep the
/// latest hard state; it must never go back to an older term and vote (a
/// node that forgets its vote can vote twice in a term: two leaders).
///
/// `load_state` (consensus/src/durable/mod.rs) cuts the file at the first
/// frame `read_frame` calls `Torn` (frame.rs: any frame with an all-zero
/// sector share), whatever follows it.
#[test]
fn a_zeroed_sector_mid_state_file_never_rolls_the_hard_state_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut disk = open(dir.path()).expect("open");
    for term in 1..=80 {
        disk.set_hard_state(hard_state(term)).expect("synced");
    }
    drop(disk);
    let path = state_file(dir.path());
    let mut bytes = std::fs::read(&path).expect("read");
    assert!(bytes.len() > 1536, "records past the zeroed sector");
    bytes[512..1024].fill(0);
    std::fs::write(&path, &bytes).expect("write");
    match open(dir.path()) {
        Err(OpenError::Corrupt { .. } | OpenError::Inconsistent { .. }) => {}
        Err(e) => panic!("{e:?}"),
        Ok(disk) => assert_eq!(
            disk.initial_state().hard_state,
            hard_state(80),
            "an acknowledged hard state was dropped"
        ),
    }
}

/// The same root cause, whole file: a node that voted (term 5, for node
/// 2) and holds no entries yet. Its state file zeroed (same length) is
/// read as one long tear: open cuts it to nothing, takes the directory for
/// a new one, and boots in term 0 with no vote, from the bootstrap
/// membership.
#[test]
fn a_zero_filled_state_file_is_not_taken_for_a_new_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut disk = open(dir.path()).expect("open");
    disk.set_hard_state(hard_state(5)).expect("synced");
    drop(disk);
    let path = state_file(dir.path());
    let len = std::fs::metadata(&path).expect("stat").len();
    std::fs::write(&path, vec![0u8; len as usize]).expect("write");
    match open(dir.path()) {
        Err(OpenError::Corrupt { .. } | OpenError::Inconsistent { .. }) => {}
        Err(e) => panic!("{e:?}"),
        Ok(disk) => assert_eq!(
            disk.initial_state().hard_state,
            hard_state(5),
            "the vote of term 5 was forgotten"
        ),
    }
}

/// A log over several segments with a commit index in its middle.
fn written_log(dir: &Path) -> usize {
    let mut disk = open(dir).expect("open");
    let entries: Vec<_> = (1..=300)
        .map(|i| Entry::new(1 + i / 100, i, vec![b'x'; 100]))
        .collect();
    disk.append(&entries).expect("appended");
    disk.set_hard_state(HardState {
        term: 4,
        vote: Some(1),
        commit: 150,
    })
    .expect("synced");
    drop(disk);
    let segments = segment_files(dir).len();
    assert!(segments >= 5, "{segments} segments");
    segments
}

/// A segment missing from the middle of the log is a gap: refused, never
/// read as a shorter log.
#[test]
fn a_missing_middle_segment_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    written_log(dir.path());
    let files = segment_files(dir.path());
    std::fs::remove_file(&files[files.len() / 2]).expect("remove");
    assert!(matches!(
        open(dir.path()),
        Err(OpenError::Inconsistent { .. })
    ));
}

/// A segment copied under another segment's name (a restore gone wrong),
/// and a copy under the name that would follow the last: refused.
#[test]
fn a_segment_copied_under_another_name_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    written_log(dir.path());
    let files = segment_files(dir.path());
    let saved = std::fs::read(&files[2]).expect("read");
    std::fs::copy(&files[1], &files[2]).expect("copy");
    assert!(matches!(
        open(dir.path()),
        Err(OpenError::Corrupt { .. } | OpenError::Inconsistent { .. })
    ));
    std::fs::write(&files[2], saved).expect("put back");
    // The last segment again, named as if it started one past the log.
    let after = dir.path().join(format!("{:020}.seg", 301));
    std::fs::copy(files.last().expect("segments"), &after).expect("copy");
    assert!(matches!(
        open(dir.path()),
        Err(OpenError::Corrupt { .. } | OpenError::Inconsistent { .. })
    ));
    std::fs::remove_file(&after).expect("remove");
    let disk = open(dir.path()).expect("intact again");
    assert_eq!(disk.last_index(), 300);
}

/// The segments from the commit index on deleted whole (no tear left to
/// see): the log ends below the durable commit index, which is refused.
#[test]
fn a_commit_index_past_the_log_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    written_log(dir.path());
    let files = segment_files(dir.path());
    let base = |f: &PathBuf| -> u64 {
        f.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .expect("a segment name")
    };
    // The segment holding the commit index, and every one after it, go:
    // the log then ends below 150, at a frame boundary.
    let keep = files.iter().filter(|f| base(f) <= 150).count() - 1;
    assert!(keep >= 1 && base(&files[keep]) > 1);
    for f in &files[keep..] {
        std::fs::remove_file(f).expect("remove");
    }
    assert!(matches!(
        open(dir.path()),
        Err(OpenError::Inconsistent { .. })
    ));
}

/// CRC-32C (Castagnoli), bit by bit: enough for a few test frames.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A record of a kind this build does not know (a later version's), with
/// a valid frame and checksum, appended to the state file or to the active
/// segment: refused as corrupt, never skipped (skipping it could drop a
/// newer hard state) and never a panic.
#[test]
fn records_of_an_unknown_kind_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut disk = open(dir.path()).expect("open");
    disk.append(&[Entry::new(1, 1, "a")]).expect("appended");
    disk.set_hard_state(hard_state(1)).expect("synced");
    drop(disk);
    let path = state_file(dir.path());
    let good = std::fs::read(&path).expect("read");
    let mut bytes = good.clone();
    bytes.extend_from_slice(&frame(&[9, 1, 2, 3]));
    std::fs::write(&path, &bytes).expect("write");
    assert!(matches!(open(dir.path()), Err(OpenError::Corrupt { .. })));
    std::fs::write(&path, &good).expect("put back");
    // An entry at index 2 of an unknown kind (2).
    let segment = segment_files(dir.path()).pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    let mut payload = Vec::new();
    payload.extend_from_slice(&2u64.to_le_bytes());
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.push(2);
    payload.extend_from_slice(b"zz");
    bytes.extend_from_slice(&frame(&payload));
    std::fs::write(&segment, &bytes).expect("write");
    assert!(matches!(open(dir.path()), Err(OpenError::Corrupt { .. })));
}

/// What `stage` accepts it must give back, before and after a restart
/// ("never an entry with another payload than acknowledged"). A
/// membership entry that carries bytes in `data` (the wire codec reads
/// such entries from peers) is kept whole in the cache, but written
/// without its data (`durable/codec.rs`, `encode_entry`): after the
/// restart the same index reads back another entry.
#[test]
fn an_entry_reads_back_the_same_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut disk = open(dir.path()).expect("open");
    let mut entry = Entry::membership(1, 1, Membership::from_voters([1u64, 2, 3, 4]));
    entry.data = "context".into();
    if disk.append(std::slice::from_ref(&entry)).is_err() {
        return; // refusing it is fine
    }
    assert_eq!(disk.entries(1, 2, u64::MAX).expect("read"), [entry.clone()]);
    drop(disk);
    let disk = open(dir.path()).expect("reopen");
    assert_eq!(disk.entries(1, 2, u64::MAX).expect("read"), [entry]);
}

/// Two `DiskStorage`s open on one directory at once (a node started twice
/// by mistake, or restarted in-process while the old one still runs):
/// nothing stops the second, and its writes land over the first one's
/// acknowledged entries. Open must refuse a directory in use (etcd, Kafka
/// and raft-engine take a lock file), or the acknowledged entries must
/// survive.
#[test]
fn a_directory_in_use_is_not_opened_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = open(dir.path()).expect("open");
    let mut second = match open(dir.path()) {
        Ok(second) => second,
        // Refused: what we want; and the lock goes with the storage.
        Err(OpenError::Locked { .. }) => {
            drop(first);
            open(dir.path()).expect("the lock was released on drop");
            return;
        }
        Err(e) => panic!("{e:?}"),
    };
    let acknowledged: Vec<_> = (1..=5)
        .map(|i| Entry::new(1, i, format!("ack{i}")))
        .collect();
    first.append(&acknowledged).expect("appended and synced");
    first
        .set_hard_state(HardState {
            term: 1,
            vote: Some(1),
            commit: 5,
        })
        .expect("synced");
    // The second one still sees the log it opened: empty.
    let _ = second.append(&[Entry::new(2, 1, "second")]);
    drop(first);
    drop(second);
    let disk = open(dir.path()).expect("the acknowledged log reopens");
    assert_eq!(
        disk.entries(1, 6, u64::MAX).expect("read"),
        acknowledged,
        "acknowledged entries were overwritten"
    );
}

/// A state file whose records are well framed and checksummed but hold
/// extreme values (a foreign file, or a later build's): a compaction point
/// or snapshot at `u64::MAX`, a commit index at `u64::MAX`. Open refuses
/// them or opens; it never panics ("never a panic, whatever the bytes").
/// Segment names past `i64::MAX` are ignored for this reason; the meta's
/// compaction point is not checked, and `first_index()` / `reconcile` add
/// one to it.
#[test]
fn extreme_values_in_a_valid_state_record_never_panic() {
    fn meta(compacted: u64, snapshot: Option<u64>) -> Vec<u8> {
        let mut p = vec![2];
        p.extend_from_slice(&compacted.to_le_bytes());
        p.extend_from_slice(&1u64.to_le_bytes());
        // Membership {1}: auto_leave 0, voters [1], three empty sets.
        p.extend_from_slice(&[0, 1, 1, 0, 0, 0]);
        match snapshot {
            None => p.push(0),
            Some(index) => {
                p.push(1);
                p.extend_from_slice(&index.to_le_bytes());
                p.extend_from_slice(&1u64.to_le_bytes());
                p.extend_from_slice(&[0, 1, 1, 0, 0, 0]);
            }
        }
        p
    }
    fn hard(commit: u64) -> Vec<u8> {
        let mut p = vec![1];
        p.extend_from_slice(&1u64.to_le_bytes());
        p.push(0);
        p.extend_from_slice(&commit.to_le_bytes());
        p
    }
    let cases: [(&str, Vec<Vec<u8>>); 4] = [
        ("compacted at u64::MAX", vec![meta(u64::MAX, None)]),
        ("compacted at u64::MAX - 1", vec![meta(u64::MAX - 1, None)]),
        ("snapshot at u64::MAX", vec![meta(u64::MAX, Some(u64::MAX))]),
        ("commit at u64::MAX", vec![meta(0, None), hard(u64::MAX)]),
    ];
    let mut panicked = Vec::new();
    for (what, records) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes: Vec<u8> = records.iter().flat_map(|r| frame(r)).collect();
        std::fs::write(state_file(dir.path()), bytes).expect("write");
        let path = dir.path().to_path_buf();
        let result = std::panic::catch_unwind(move || open(&path).map(|d| d.last_index()));
        match result {
            Ok(_) => {}
            Err(_) => panicked.push(what),
        }
    }
    assert!(panicked.is_empty(), "open panicked on: {panicked:?}");
}

/// Frame boundaries of a file of frames (lengths read as written).
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        starts.push(pos);
        pos += 12 + u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
    }
    starts
}

/// What a crash may legitimately leave, and open must still accept:
/// commit-only hard states appended for the background syncer, the page of
/// an earlier one lost and a later one's on disk. The hole and every record
/// after it are cut (none was acknowledged), the term and vote stay; a hole
/// followed by a record that changes the vote is damage (the hole was
/// synced before it).
#[test]
fn a_hole_in_an_unsynced_commit_only_tail_is_a_tear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut disk = open(dir.path()).expect("open");
    let entries: Vec<_> = (1..=5).map(|i| Entry::new(3, i, "x")).collect();
    disk.append(&entries).expect("appended");
    for commit in 0..=5 {
        disk.set_hard_state(HardState {
            term: 3,
            vote: Some(2),
            commit,
        })
        .expect("synced");
    }
    drop(disk);
    let path = state_file(dir.path());
    let good = std::fs::read(&path).expect("read");
    let starts = frame_starts(&good);
    // The record with commit 3 (meta, then commits 0..=5) lost.
    let (from, to) = (starts[4], starts[5]);
    let mut bytes = good.clone();
    bytes[from..to].fill(0);
    std::fs::write(&path, &bytes).expect("write");
    let disk = open(dir.path()).expect("a torn tail is cut");
    assert_eq!(
        disk.initial_state().hard_state,
        HardState {
            term: 3,
            vote: Some(2),
            commit: 2
        }
    );
    assert_eq!(disk.recovery().torn_state_bytes, (good.len() - from) as u64);
    assert_eq!(disk.last_index(), 5);
    drop(disk);
    // The same hole with a vote change after it.
    let mut disk = open(dir.path()).expect("open");
    disk.set_hard_state(HardState {
        term: 4,
        vote: Some(1),
        commit: 5,
    })
    .expect("synced");
    drop(disk);
    let mut bytes = std::fs::read(&path).expect("read");
    let starts = frame_starts(&bytes);
    let (from, to) = (starts[2], starts[3]);
    bytes[from..to].fill(0);
    std::fs::write(&path, &bytes).expect("write");
    assert!(matches!(open(dir.path()), Err(OpenError::Corrupt { .. })));
}

/// A crash while a new log writes its first record (the meta) leaves part
/// of it, or zeros where it would be: a new log, not damage. More than that
/// record's length of zeros is (the existing test above).
#[test]
fn a_torn_first_record_is_a_new_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(open(dir.path()).expect("open"));
    let path = state_file(dir.path());
    let first = std::fs::read(&path).expect("read");
    for torn in [
        first[..first.len() / 2].to_vec(),
        vec![0; first.len()],
        [&first[..8], &vec![0; first.len() - 8][..]].concat(),
    ] {
        std::fs::write(&path, &torn).expect("write");
        let disk = open(dir.path()).expect("a new log");
        assert_eq!(disk.initial_state().hard_state, HardState::default());
        assert_eq!(disk.initial_state().membership, voters());
        drop(disk);
        assert_eq!(std::fs::read(&path).expect("read"), first);
    }
    std::fs::write(&path, vec![0; first.len() + 1]).expect("write");
    assert!(matches!(open(dir.path()), Err(OpenError::Corrupt { .. })));
}

/// A zeroed entry in the active segment with intact entries after it: at
/// or below the stored commit index it was durable (the commit index
/// written never covers entries not yet durable), so it is refused, never
/// cut. Past it, it is what a power failure leaves when the disk wrote an
/// unsynced tail back out of order: cut with the intact entries after it
/// (none was acknowledged), and counted. Zeros at the end only are a torn
/// tail, cut.
#[test]
fn a_hole_before_intact_entries_of_the_active_segment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut disk = open(dir.path()).expect("open");
    let entries: Vec<_> = (1..=10).map(|i| Entry::new(1, i, vec![b'e'; 40])).collect();
    disk.append(&entries).expect("appended");
    drop(disk);
    let segment = segment_files(dir.path()).pop().expect("a segment");
    let good = std::fs::read(&segment).expect("read");
    let starts = frame_starts(&good);
    assert_eq!(starts.len(), 10);
    let holes = [
        starts[4]..starts[5],
        // A zero sector inside the payload, the header intact.
        starts[4] + 12..starts[5],
    ];
    for hole in holes.clone() {
        // No commit index stored: the hole and what follows are cut.
        let mut bytes = good.clone();
        bytes[hole].fill(0);
        std::fs::write(&segment, &bytes).expect("write");
        let disk = open(dir.path()).expect("an unsynced tail is cut");
        assert_eq!(disk.last_index(), 4);
        assert_eq!(disk.recovery().entries_cut_after_damage, 5);
        drop(disk);
        std::fs::write(&segment, &good).expect("restore");
    }
    // Commit index 5 stored: entry 5 was durable, its damage is refused.
    let mut disk = open(dir.path()).expect("open");
    disk.set_hard_state(HardState {
        term: 1,
        vote: Some(1),
        commit: 5,
    })
    .expect("stored");
    drop(disk);
    for hole in holes {
        let mut bytes = good.clone();
        bytes[hole].fill(0);
        std::fs::write(&segment, &bytes).expect("write");
        assert!(matches!(open(dir.path()), Err(OpenError::Corrupt { .. })));
    }
    let mut bytes = good.clone();
    bytes[starts[9]..].fill(0);
    std::fs::write(&segment, &bytes).expect("write");
    let disk = open(dir.path()).expect("a torn tail is cut");
    assert_eq!(disk.last_index(), 9);
}

/// Indexes past what the files hold (2^63 - 1; open refuses a record past
/// it and ignores a segment named past it) are refused when written, so
/// nothing accepted fails to reopen: a snapshot from a bad peer at
/// `u64::MAX`, a commit index there, an entry after a snapshot at the
/// limit.
#[test]
fn indexes_past_the_files_range_are_refused_when_written() {
    use dsys_consensus::SnapshotMeta;
    use dsys_consensus::durable::WriteError;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut disk = open(dir.path()).expect("open");
    let limit = i64::MAX as u64;
    for index in [u64::MAX, limit] {
        let snapshot = SnapshotMeta {
            index,
            term: 1,
            membership: voters(),
        };
        assert!(matches!(
            disk.apply_snapshot(snapshot),
            Err(WriteError::IndexTooLarge { .. })
        ));
    }
    assert!(matches!(
        disk.set_hard_state(HardState {
            term: 1,
            vote: None,
            commit: u64::MAX
        }),
        Err(WriteError::IndexTooLarge { .. })
    ));
    disk.apply_snapshot(SnapshotMeta {
        index: limit - 1,
        term: 1,
        membership: voters(),
    })
    .expect("the last snapshot the log can follow");
    assert!(matches!(
        disk.append(&[
            Entry::new(1, limit, "last"),
            Entry::new(1, limit + 1, "past")
        ]),
        Err(WriteError::IndexTooLarge { .. })
    ));
    disk.append(&[Entry::new(1, limit, "last")])
        .expect("the last index");
    drop(disk);
    let disk = open(dir.path()).expect("reopens");
    assert_eq!(disk.last_index(), limit);
}
