//! Appending, reading by offset and by time, rolling, reopening.

use dsys_log::{BatchBuilder, FlushPolicy, Log, LogConfig, MemDir, NewRecord, StdDir};

fn batch(first: u64, n: usize, ts: i64) -> dsys_log::BatchBuf {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let key = format!("k{}", first + i as u64);
        let value = format!("value-{}", first + i as u64);
        b.push(NewRecord::new(
            ts + i as i64,
            Some(key.as_bytes()),
            Some(value.as_bytes()),
        ));
    }
    b.finish().expect("non-empty")
}

fn small_segments() -> LogConfig {
    let mut c = LogConfig::default();
    c.segment_bytes = 2048;
    c.index_interval_bytes = 256;
    c
}

#[test]
fn appends_get_consecutive_offsets_and_read_back() {
    let (mut log, report) = Log::open(MemDir::new(), small_segments()).expect("open");
    assert_eq!(report.next_offset, 0);
    let mut next = 0;
    for i in 0..50 {
        let a = log
            .append(batch(next, 3, 1000 + i * 10), 0)
            .expect("append");
        assert_eq!(a.base_offset, next);
        assert_eq!(a.last_offset, next + 2);
        next += 3;
    }
    assert!(log.segment_count() >= 3, "rolled: {}", log.segment_count());
    for offset in 0..next {
        let batches = log.read(offset, 100).expect("read");
        let first = &batches[0];
        assert!(first.base_offset() <= offset && offset <= first.last_offset());
        let rec = first
            .records()
            .map(|r| r.expect("record"))
            .find(|r| r.offset == offset)
            .expect("offset");
        assert_eq!(
            rec.value.as_deref(),
            Some(format!("value-{offset}").as_bytes())
        );
    }
    assert!(log.read(next, 100).expect("at end").is_empty());
    assert!(log.read(next + 1, 100).is_err());
    // Timestamps: batch i holds 1000 + 10 i .. + 2.
    assert_eq!(log.offset_for_timestamp(0).expect("ts"), Some(0));
    assert_eq!(log.offset_for_timestamp(1001).expect("ts"), Some(1));
    assert_eq!(log.offset_for_timestamp(1003).expect("ts"), Some(3));
    assert_eq!(
        log.offset_for_timestamp(1000 + 49 * 10 + 2).expect("ts"),
        Some(149)
    );
    assert_eq!(
        log.offset_for_timestamp(1000 + 49 * 10 + 3).expect("ts"),
        None
    );
}

#[test]
fn reopen_after_close_and_after_crash_keeps_flushed_batches() {
    let dir = MemDir::new();
    let mut config = small_segments();
    config.flush = FlushPolicy::every_batch();
    let (mut log, _) = Log::open(dir.clone(), config.clone()).expect("open");
    for i in 0..20 {
        log.append(batch(i * 2, 2, 0), 0).expect("append");
    }
    log.close().expect("close");
    let (mut log, report) = Log::open(dir.clone(), config.clone()).expect("reopen");
    assert!(report.clean_shutdown);
    assert_eq!(report.validated_segments, 0);
    assert_eq!(log.next_offset(), 40);
    log.append(batch(40, 2, 0), 0).expect("append");
    drop(log);
    dir.crash();
    let (log, report) = Log::open(dir.clone(), config).expect("recover");
    assert!(!report.clean_shutdown);
    assert_eq!(log.next_offset(), 42);
    assert_eq!(log.read(41, 10).expect("read")[0].last_offset(), 41);
}

#[test]
fn std_dir_round_trip() {
    let path = std::env::temp_dir().join(format!("dsys-log-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let (mut log, _) =
        Log::open(StdDir::open(&path).expect("dir"), small_segments()).expect("open");
    for i in 0..30 {
        log.append(batch(i * 4, 4, 0), 0).expect("append");
    }
    log.close().expect("close");
    let names: Vec<_> = std::fs::read_dir(&path)
        .expect("ls")
        .map(|e| e.expect("e").file_name().into_string().expect("utf8"))
        .collect();
    assert!(
        names.iter().any(|n| n == "00000000000000000000.log"),
        "{names:?}"
    );
    let (log, _) = Log::open(StdDir::open(&path).expect("dir"), small_segments()).expect("reopen");
    assert_eq!(log.next_offset(), 120);
    assert_eq!(log.read(77, 1).expect("read")[0].base_offset(), 76);
    std::fs::remove_dir_all(&path).expect("cleanup");
}

#[test]
fn segments_roll_by_age_of_their_first_append() {
    let mut c = LogConfig::default();
    c.segment_ms = Some(1_000);
    let (mut log, _) = Log::open(MemDir::new(), c).expect("open");
    // Record timestamps far in the past do not make every append roll.
    log.append(batch(0, 1, 0), 10_000).expect("append");
    log.append(batch(1, 1, 0), 10_500).expect("append");
    assert_eq!(log.segment_count(), 1);
    log.append(batch(2, 1, 0), 11_001).expect("append");
    assert_eq!(
        log.segment_count(),
        2,
        "the first append is more than segment_ms old"
    );
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn opening_a_cleanly_closed_log_writes_nothing_until_the_first_change() {
    let dir = MemDir::new();
    let (mut log, _) = Log::open(dir.clone(), small_segments()).expect("open");
    log.append(batch(0, 3, 0), 0).expect("append");
    log.close().expect("close");
    let syncs = dir.sync_count();
    let (mut log, report) = Log::open(dir.clone(), small_segments()).expect("reopen");
    assert!(report.clean_shutdown);
    assert_eq!(dir.sync_count(), syncs, "a clean open fsyncs nothing");
    log.append(batch(3, 1, 0), 0).expect("append");
    assert!(
        dir.sync_count() > syncs,
        "the clean mark is replaced before the first change"
    );
    drop(log);
    let (_, report) = Log::open(dir, small_segments()).expect("reopen after an unclean stop");
    assert!(!report.clean_shutdown);
    assert_eq!(report.next_offset, 4);
}

/// `poll_timeout` reports every duty `handle_timeout` runs: the time-based flush
/// and, before this was fixed, never the idempotent producers' expiry, so a
/// driver that only wakes at `poll_timeout` kept expired producers forever.
#[test]
fn poll_timeout_reports_the_flush_and_producer_expiry() {
    let mut config = LogConfig::default();
    config.flush = FlushPolicy::every_millis(500);
    config.producer_expiration_ms = 10_000;
    let (mut log, _) = Log::open(MemDir::new(), config).expect("open");
    assert_eq!(log.poll_timeout(), None, "nothing to do yet");

    let stamp = dsys_log::ProducerStamp {
        producer_id: 7,
        producer_epoch: 0,
        base_sequence: 0,
    };
    let mut b = BatchBuilder::new().producer(stamp);
    b.push(NewRecord::new(1_000, Some(b"k"), Some(b"v")));
    log.append(b.finish().expect("one record"), 1_000)
        .expect("append");
    assert_eq!(log.poll_timeout(), Some(1_500), "the flush comes first");
    log.handle_timeout(1_500).expect("flush");
    assert_eq!(log.durable_offset(), 1);

    // The producer's last batch is stamped 1_000: it expires once more than
    // `producer_expiration_ms` has passed.
    assert_eq!(log.poll_timeout(), Some(11_001));
    log.handle_timeout(11_000).expect("early");
    assert_eq!(log.producer_count(), 1, "not yet expired");
    log.handle_timeout(11_001).expect("expiry");
    assert_eq!(log.producer_count(), 0);
    assert_eq!(log.poll_timeout(), None);
}

/// `max_bytes` is a limit, not an allocation: a caller that asks for
/// "everything" (`usize::MAX`, or a size far beyond the segment) gets what
/// the segment holds, on disk and in memory. It panicked with "capacity
/// overflow" (the reader allocated `max_bytes` up front).
#[test]
fn a_huge_max_bytes_reads_what_there_is() {
    fn check<D: dsys_log::Storage>(dir: D) {
        let (mut log, _) = Log::open(dir, small_segments()).expect("open");
        let mut next = 0;
        for i in 0..20 {
            log.append(batch(next, 3, 1000 + i), 0).expect("append");
            next += 3;
        }
        for max_bytes in [usize::MAX, usize::MAX / 2, 1 << 40] {
            let mut offset = 0;
            while offset < next {
                let batches = log.read(offset, max_bytes).expect("read");
                assert!(!batches.is_empty(), "offset {offset}");
                offset = batches.last().expect("one").last_offset() + 1;
            }
            assert_eq!(offset, next);
        }
    }
    check(MemDir::new());
    let path = std::env::temp_dir().join(format!("dsys-log-huge-read-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    check(StdDir::open(&path).expect("dir"));
    std::fs::remove_dir_all(&path).expect("clean up");
}
