//! Storage faults injected by the in-memory directory: failed fsyncs, torn writes and
//! short writes. A failed fsync is reported, the durable offset does not advance, and
//! the log refuses further work until it is reopened.

use dsys_log::{
    AppendError, BatchBuilder, FlushError, FlushPolicy, Log, LogConfig, MemDir, NewRecord,
};

fn batch(tag: u64) -> dsys_log::BatchBuf {
    let mut b = BatchBuilder::new();
    b.push(NewRecord::new(
        tag as i64,
        Some(b"key"),
        Some(format!("value {tag}").as_bytes()),
    ));
    b.push(NewRecord::new(
        tag as i64,
        Some(b"key"),
        Some(format!("second {tag}").as_bytes()),
    ));
    b.finish().expect("non-empty")
}

fn config(flush: FlushPolicy) -> LogConfig {
    let mut c = LogConfig::default();
    c.flush = flush;
    c.segment_bytes = 4096;
    c
}

#[test]
fn failed_fsync_is_reported_and_the_durable_offset_stays() {
    let dir = MemDir::new();
    let (mut log, _) = Log::open(dir.clone(), config(FlushPolicy::every_batch())).expect("open");
    let first = log.append(batch(0), 0).expect("append");
    assert_eq!(first.durable_offset, 2);
    dir.faults(|f| f.fail_syncs = 1);
    match log.append(batch(1), 0) {
        Err(AppendError::Sync {
            base_offset: 2,
            last_offset: 3,
            ..
        }) => {}
        other => panic!("expected a sync error, got {other:?}"),
    }
    assert_eq!(
        log.durable_offset(),
        2,
        "the durable offset did not advance"
    );
    assert!(log.is_failed());
    assert!(matches!(
        log.append(batch(2), 0),
        Err(AppendError::Failed(_))
    ));
    assert!(matches!(log.flush(), Err(FlushError::Failed(_))));
    drop(log);
    dir.crash();
    let (mut log, _) = Log::open(dir.clone(), config(FlushPolicy::every_batch())).expect("reopen");
    assert_eq!(
        log.next_offset(),
        2,
        "only the durable batch survived the crash"
    );
    assert_eq!(
        log.append(batch(3), 0)
            .expect("append after reopen")
            .base_offset,
        2
    );
}

#[test]
fn failed_explicit_flush_keeps_the_durable_offset() {
    let dir = MemDir::new();
    let (mut log, _) = Log::open(dir.clone(), config(FlushPolicy::os())).expect("open");
    log.append(batch(0), 0).expect("append");
    assert_eq!(log.flush().expect("flush"), 2);
    log.append(batch(1), 0).expect("append");
    assert_eq!(log.durable_offset(), 2);
    dir.faults(|f| f.fail_syncs = 1);
    assert!(matches!(log.flush(), Err(FlushError::Sync(_))));
    assert_eq!(log.durable_offset(), 2);
    assert!(
        log.close().is_err(),
        "a failed log does not pretend to close cleanly"
    );
}

#[test]
fn failed_fsync_when_rolling_fails_the_append_without_losing_earlier_data() {
    let dir = MemDir::new();
    let (mut log, _) = Log::open(dir.clone(), config(FlushPolicy::os())).expect("open");
    let mut next = 0;
    while log.segment_count() == 1 {
        if log.next_offset() > 0 && log.size_bytes() > 3900 {
            dir.faults(|f| f.fail_syncs = 1);
        }
        match log.append(batch(next), 0) {
            Ok(a) => next = a.last_offset + 1,
            Err(AppendError::Io(_)) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(log.is_failed());
    assert_eq!(log.durable_offset(), 0, "nothing was ever fsynced");
    drop(log);
    let (log, _) = Log::open(dir.clone(), config(FlushPolicy::os())).expect("reopen without crash");
    assert_eq!(
        log.next_offset(),
        next,
        "written data is still in the page cache"
    );
}

#[test]
fn torn_write_is_cut_off_and_the_offset_reused() {
    let dir = MemDir::new();
    let (mut log, _) = Log::open(dir.clone(), config(FlushPolicy::every_batch())).expect("open");
    log.append(batch(0), 0).expect("append");
    dir.faults(|f| f.write_budget = Some(30));
    assert!(matches!(log.append(batch(1), 0), Err(AppendError::Io(_))));
    assert!(!log.is_failed(), "the partial write was cut off again");
    assert_eq!(log.next_offset(), 2);
    dir.faults(|f| f.write_budget = None);
    let a = log
        .append(batch(2), 0)
        .expect("append after the torn write");
    assert_eq!(a.base_offset, 2);
    let values: Vec<_> = log
        .read(0, 1 << 20)
        .expect("read")
        .iter()
        .flat_map(|b| {
            b.records()
                .map(|r| r.expect("record").value.expect("value"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(values, vec!["value 0", "second 0", "value 2", "second 2"]);
    drop(log);
    dir.crash();
    let (log, _) = Log::open(dir, config(FlushPolicy::every_batch())).expect("recover");
    assert_eq!(log.next_offset(), 4);
}

#[test]
fn short_writes_are_completed() {
    let dir = MemDir::new();
    dir.faults(|f| f.max_write = Some(7));
    let (mut log, _) = Log::open(dir.clone(), config(FlushPolicy::every_batch())).expect("open");
    for i in 0..50 {
        log.append(batch(i), 0).expect("append");
    }
    log.close().expect("close");
    dir.faults(|f| f.max_write = None);
    let (log, report) = Log::open(dir, config(FlushPolicy::every_batch())).expect("reopen");
    assert!(report.clean_shutdown);
    assert_eq!(log.next_offset(), 100);
    assert_eq!(log.read(99, 1).expect("read")[0].last_offset(), 99);
}
