//! Crash tests (DESIGN.md, testing layer 6): cut the last segment at every byte and
//! flip bytes in its tail; reopening keeps exactly the batches written in full before
//! the damage, and appends continue at the right offset.

use dsys_log::{BatchBuilder, FlushPolicy, Log, LogConfig, MemDir, NewRecord};

const LAST_SEGMENT: &str = "log in MemDir";

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    c.segment_bytes = 1500;
    c.index_interval_bytes = 100;
    c.flush = FlushPolicy::every_batch();
    c
}

/// Batch `i` holds `1 + i % 4` records with values derived from their offsets.
fn batch(first_offset: u64, i: usize) -> dsys_log::BatchBuf {
    let mut b = BatchBuilder::new();
    for r in 0..(1 + i % 4) as u64 {
        let offset = first_offset + r;
        let value = format!("value of offset {offset}").repeat(1 + (offset % 3) as usize);
        b.push(NewRecord::new(
            offset as i64 * 10,
            Some(&offset.to_be_bytes()),
            Some(value.as_bytes()),
        ));
    }
    b.finish().expect("non-empty")
}

fn copy_dir(from: &MemDir) -> MemDir {
    let to = MemDir::new();
    for name in from.file_names() {
        to.write_file(&name, &from.read_file(&name).expect("listed"));
    }
    to
}

/// A batch of the last segment: (start byte, end byte, first offset, next offset).
type BatchSpan = (usize, usize, u64, u64);

/// A log of several segments; returns it with the batches of its last segment.
fn written_log() -> (MemDir, String, Vec<BatchSpan>) {
    let dir = MemDir::new();
    let (mut log, _) = Log::open(dir.clone(), config()).expect("open");
    let mut next = 0;
    let mut in_last = 0;
    let mut i = 0;
    while i < 30 || in_last < 6 {
        let segments = log.segment_count();
        let a = log.append(batch(next, i), i as i64).expect("append");
        next = a.last_offset + 1;
        in_last = if log.segment_count() == segments {
            in_last + 1
        } else {
            1
        };
        i += 1;
    }
    assert!(
        log.segment_count() >= 3,
        "{LAST_SEGMENT}: want several segments"
    );
    let last_base = *log.segment_base_offsets().last().expect("segments");
    drop(log); // no clean close: the last segment is validated on open
    let name = format!("{last_base:020}.log");
    let bytes = dir.read_file(&name).expect("last segment");
    let mut ranges = Vec::new();
    let mut at = 0;
    let mut offset = last_base;
    while at < bytes.len() {
        let len = 12 + u32::from_be_bytes(bytes[at + 8..at + 12].try_into().expect("4")) as usize;
        let count = u32::from_be_bytes(bytes[at + 57..at + 61].try_into().expect("4")) as u64;
        ranges.push((at, at + len, offset, offset + count));
        offset += count;
        at += len;
    }
    assert!(
        ranges.len() >= 4,
        "want several batches in the last segment, got {}",
        ranges.len()
    );
    (dir, name, ranges)
}

/// Reopens `dir` and checks that exactly the offsets below `expect_next` are there
/// with their values, then appends and reopens again.
fn check_recovered(dir: &MemDir, expect_next: u64, what: &str) {
    let (mut log, report) =
        Log::open(dir.clone(), config()).unwrap_or_else(|e| panic!("{what}: open: {e}"));
    assert_eq!(log.next_offset(), expect_next, "{what}: {report:?}");
    let mut offset = log.log_start_offset();
    while offset < expect_next {
        let batches = log
            .read(offset, 4096)
            .unwrap_or_else(|e| panic!("{what}: read {offset}: {e}"));
        assert!(!batches.is_empty(), "{what}: nothing at {offset}");
        for b in batches {
            for r in b.records() {
                let r = r.unwrap_or_else(|e| panic!("{what}: record: {e}"));
                assert_eq!(r.offset, offset, "{what}");
                let want = format!("value of offset {offset}").repeat(1 + (offset % 3) as usize);
                assert_eq!(
                    r.value.as_deref(),
                    Some(want.as_bytes()),
                    "{what}: value at {offset}"
                );
                offset += 1;
            }
        }
    }
    assert_eq!(offset, expect_next, "{what}");
    let a = log
        .append(batch(expect_next, 2), 1_000)
        .unwrap_or_else(|e| panic!("{what}: append: {e}"));
    assert_eq!(
        a.base_offset, expect_next,
        "{what}: appends continue at the cut"
    );
    drop(log);
    let (log, _) =
        Log::open(dir.clone(), config()).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
    assert_eq!(
        log.next_offset(),
        a.last_offset + 1,
        "{what}: after append and reopen"
    );
}

#[test]
fn cutting_the_last_segment_at_every_byte_keeps_exactly_the_whole_batches() {
    let (dir, name, ranges) = written_log();
    let bytes = dir.read_file(&name).expect("segment");
    for cut in 0..=bytes.len() {
        let copy = copy_dir(&dir);
        copy.write_file(&name, &bytes[..cut]);
        let expect_next = ranges
            .iter()
            .take_while(|(_, end, _, _)| *end <= cut)
            .last()
            .map_or(ranges[0].2, |r| r.3);
        check_recovered(
            &copy,
            expect_next,
            &format!("cut at byte {cut} of {}", bytes.len()),
        );
    }
}

#[test]
fn flipping_a_byte_in_the_tail_drops_that_batch_and_everything_after() {
    let (dir, name, ranges) = written_log();
    let bytes = dir.read_file(&name).expect("segment");
    // The last three batches. Bytes 12..16 of a batch (partitionLeaderEpoch) are not
    // covered by the CRC in Kafka's format and carry no data, so a flip there keeps it.
    for &(start, end, first, _) in &ranges[ranges.len() - 3..] {
        for at in start..end {
            let in_epoch = (start + 12..start + 16).contains(&at);
            for mask in [0x01u8, 0x80] {
                let copy = copy_dir(&dir);
                let mut damaged = bytes.clone();
                damaged[at] ^= mask;
                copy.write_file(&name, &damaged);
                let expect_next = if in_epoch {
                    ranges.last().expect("batches").3
                } else {
                    first
                };
                check_recovered(
                    &copy,
                    expect_next,
                    &format!("flip {mask:#04x} at byte {at}"),
                );
            }
        }
    }
}

#[test]
fn garbage_after_the_last_batch_is_cut_off() {
    let (dir, name, ranges) = written_log();
    let mut bytes = dir.read_file(&name).expect("segment");
    bytes.extend_from_slice(&[0xff; 100]);
    dir.write_file(&name, &bytes);
    check_recovered(&dir, ranges.last().expect("batches").3, "garbage tail");
}

#[test]
fn a_crash_loses_only_what_was_not_fsynced() {
    let dir = MemDir::new();
    let mut c = config();
    c.flush = FlushPolicy::every_bytes(400);
    let (mut log, _) = Log::open(dir.clone(), c.clone()).expect("open");
    let mut durable = 0;
    let mut next = 0;
    for i in 0..30 {
        let a = log.append(batch(next, i), 0).expect("append");
        next = a.last_offset + 1;
        assert!(
            a.durable_offset >= durable,
            "durable offset never goes back"
        );
        durable = a.durable_offset;
    }
    assert!(durable < next, "some appends are not durable yet");
    drop(log);
    dir.crash();
    let (log, _) = Log::open(dir.clone(), c).expect("recover");
    assert_eq!(
        log.next_offset(),
        durable,
        "exactly the durable prefix survives"
    );
}
