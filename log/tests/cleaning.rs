//! Property tests for compaction and retention (Kafka's log cleaner and
//! `deleteOldSegments`): compaction keeps exactly the latest record per key in the
//! sealed segments, removes tombstones only `delete_retention_ms` after the cleaning
//! that first kept them (KIP-534), keeps each producer's last batch, and never changes
//! or reorders offsets; retention never deletes the active segment and deletes only
//! whole segments from the front.

use std::collections::BTreeMap;

use dsys_log::{BatchBuilder, CleanupPolicy, Log, LogConfig, MemDir, NewRecord, ProducerStamp};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Records as (key, value); key 255 means no key, value None a tombstone.
    Append(Vec<(u8, Option<u16>)>),
    /// The same, from idempotent producer 1.
    Produce(Vec<(u8, Option<u16>)>),
    Roll,
    Clean {
        now_delta: i64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let record = (
        prop_oneof![8 => 0u8..6, 1 => Just(255u8)],
        prop::option::weighted(0.85, any::<u16>()),
    );
    prop_oneof![
        6 => prop::collection::vec(record.clone(), 1..5).prop_map(Op::Append),
        2 => prop::collection::vec(record, 1..4).prop_map(Op::Produce),
        1 => Just(Op::Roll),
        2 => (0i64..2_000).prop_map(|now_delta| Op::Clean { now_delta }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    key: Option<u8>,
    value: Option<u16>,
    timestamp: i64,
}

fn config(cleanup: CleanupPolicy) -> LogConfig {
    let mut c = LogConfig::default();
    c.segment_bytes = 400;
    c.index_interval_bytes = 64;
    c.cleanup = cleanup;
    c.delete_retention_ms = 500;
    c.retention_ms = Some(1_000);
    c.retention_bytes = Some(1_200);
    c
}

/// Everything readable, in offset order.
fn contents(log: &Log<MemDir>) -> Vec<(u64, Rec)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let batches = log.read(offset, 1024).expect("read");
        if batches.is_empty() {
            break;
        }
        for b in &batches {
            for r in b.records() {
                let r = r.expect("record");
                out.push((
                    r.offset,
                    Rec {
                        key: r.key.map(|k| k[0]),
                        value: r.value.map(|v| u16::from_be_bytes([v[0], v[1]])),
                        timestamp: r.timestamp,
                    },
                ));
            }
            offset = b.last_offset() + 1;
        }
    }
    out
}

/// (base offset, last offset) of every batch of producer 1 in the log, records or not.
fn producer_batches(log: &Log<MemDir>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let batches = log.read(offset, 1024).expect("read");
        let Some(last) = batches.last() else { break };
        offset = last.last_offset() + 1;
        out.extend(
            batches
                .iter()
                .filter(|b| b.header().producer_id == 1)
                .map(|b| (b.base_offset(), b.last_offset())),
        );
    }
    out
}

struct Run {
    dir: MemDir,
    log: Log<MemDir>,
    cfg: LogConfig,
    model: BTreeMap<u64, Rec>,
    /// The delete horizon of each tombstone a cleaning has kept, by offset.
    horizons: BTreeMap<u64, i64>,
    now: i64,
    /// Producer 1's next sequence, and its last batch: (base sequence, records,
    /// base offset, last offset).
    producer_seq: i32,
    producer_last: Option<(i32, usize, u64, u64)>,
}

impl Run {
    fn new(cfg: LogConfig) -> Self {
        let dir = MemDir::new();
        let (log, _) = Log::open(dir.clone(), cfg.clone()).expect("open");
        Run {
            dir,
            log,
            cfg,
            model: BTreeMap::new(),
            horizons: BTreeMap::new(),
            now: 0,
            producer_seq: 0,
            producer_last: None,
        }
    }

    fn apply(&mut self, op: &Op) -> Option<(u64, i64)> {
        match op {
            Op::Append(records) | Op::Produce(records) => {
                self.now += 10;
                let mut b = BatchBuilder::new();
                let produce = matches!(op, Op::Produce(_));
                if produce {
                    b = b.producer(ProducerStamp {
                        producer_id: 1,
                        producer_epoch: 0,
                        base_sequence: self.producer_seq,
                    });
                }
                for (i, (k, v)) in records.iter().enumerate() {
                    let key = [*k];
                    let value = v.map(u16::to_be_bytes);
                    b.push(NewRecord::new(
                        self.now + i as i64,
                        (*k != 255).then_some(&key[..]),
                        value.as_ref().map(|v| &v[..]),
                    ));
                }
                let a = self
                    .log
                    .append(b.finish().expect("non-empty"), self.now)
                    .expect("append");
                if produce {
                    self.producer_last = Some((
                        self.producer_seq,
                        records.len(),
                        a.base_offset,
                        a.last_offset,
                    ));
                    self.producer_seq += records.len() as i32;
                }
                for (i, (k, v)) in records.iter().enumerate() {
                    let rec = Rec {
                        key: (*k != 255).then_some(*k),
                        value: *v,
                        timestamp: self.now + i as i64,
                    };
                    self.model.insert(a.base_offset + i as u64, rec);
                }
                None
            }
            Op::Roll => {
                self.log.roll().expect("roll");
                None
            }
            Op::Clean { now_delta } => {
                self.now += now_delta;
                Some((
                    *self.log.segment_base_offsets().last().expect("active"),
                    self.now,
                ))
            }
            Op::Reopen => {
                let log = std::mem::replace(
                    &mut self.log,
                    Log::open(MemDir::new(), self.cfg.clone())
                        .expect("placeholder")
                        .0,
                );
                drop(log);
                self.log = Log::open(self.dir.clone(), self.cfg.clone())
                    .expect("reopen")
                    .0;
                None
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn compaction_keeps_the_latest_record_per_key_at_its_offset(ops in prop::collection::vec(op(), 1..60)) {
        let mut run = Run::new(config(CleanupPolicy::Compact));
        for op in &ops {
            let Some((active_base, now)) = run.apply(op) else { continue };
            let before_next = run.log.next_offset();
            let report = run.log.compact(now).expect("compact");
            prop_assert_eq!(run.log.next_offset(), before_next);
            // What must survive: in the sealed part, the latest record of each key and
            // every keyless record, except tombstones whose delete horizon (stamped
            // `delete_retention_ms` after the cleaning that first kept them, KIP-534)
            // has passed; in the active segment, everything.
            let mut latest: BTreeMap<u8, u64> = BTreeMap::new();
            for (&o, r) in run.model.range(..active_base) {
                if let Some(k) = r.key { latest.insert(k, o); }
            }
            let horizons = &mut run.horizons;
            let retention = run.cfg.delete_retention_ms;
            run.model.retain(|&o, r| {
                if o >= active_base {
                    return true;
                }
                let Some(k) = r.key else { return true };
                if latest[&k] != o {
                    return false;
                }
                if r.value.is_some() {
                    return true;
                }
                match horizons.get(&o) {
                    None => {
                        horizons.insert(o, now + retention);
                        true
                    }
                    Some(&h) => now < h,
                }
            });
            run.horizons.retain(|o, _| run.model.contains_key(o));
            let got = contents(&run.log);
            let want: Vec<(u64, Rec)> = run.model.iter().map(|(o, r)| (*o, r.clone())).collect();
            prop_assert_eq!(&got, &want, "after {:?}", report);
            prop_assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "offsets strictly increase");
            // The producer's last batch is never removed, with or without records.
            if let Some((_, _, base, last)) = run.producer_last {
                prop_assert!(
                    producer_batches(&run.log).contains(&(base, last)),
                    "producer batch {}..={} is gone after {:?}", base, last, report
                );
            }
        }
        // Compacted segments survive a reopen with the same contents, and with the
        // producer snapshots damaged, producer state rebuilt from the batch headers
        // still recognises a retry of the producer's last batch.
        drop(run.log);
        for name in run.dir.file_names() {
            if name.ends_with(".snapshot") {
                run.dir.write_file(&name, b"damaged");
            }
        }
        let (mut log, _) = Log::open(run.dir.clone(), run.cfg.clone()).expect("reopen");
        let want: Vec<(u64, Rec)> = run.model.iter().map(|(o, r)| (*o, r.clone())).collect();
        prop_assert_eq!(contents(&log), want);
        if let Some((seq, records, base, last)) = run.producer_last {
            let mut b = BatchBuilder::new().producer(ProducerStamp {
                producer_id: 1,
                producer_epoch: 0,
                base_sequence: seq,
            });
            for _ in 0..records {
                b.push(NewRecord::new(run.now, Some(b"r"), Some(b"retry")));
            }
            let retry = log.append(b.finish().expect("records"), run.now).expect("retry");
            prop_assert!(retry.duplicate && (retry.base_offset, retry.last_offset) == (base, last), "{:?}", retry);
        }
    }

    #[test]
    fn retention_deletes_whole_old_segments_and_never_the_active_one(ops in prop::collection::vec(op(), 1..60)) {
        let mut cfg = config(CleanupPolicy::Delete);
        cfg.retention_bytes = Some(700);
        cfg.retention_ms = Some(3_000);
        let mut run = Run::new(cfg);
        for op in &ops {
            let Some((active_base, now)) = run.apply(op) else { continue };
            let before = run.log.segment_base_offsets();
            let next = run.log.next_offset();
            let report = run.log.apply_retention(now).expect("retention");
            let after = run.log.segment_base_offsets();
            // Retention stopped at the first segment that is neither expired nor
            // needed to get under retention_bytes.
            let segments = run.log.segments();
            if segments.len() > 1 {
                let first = segments[0];
                let expired = first.max_timestamp.is_some_and(|m| m < now - run.cfg.retention_ms.expect("set"));
                let over = run.log.size_bytes() - first.size_bytes >= run.cfg.retention_bytes.expect("set");
                prop_assert!(!expired && !over, "retention stopped early: {:?}", segments);
            }
            prop_assert_eq!(*after.last().expect("active"), active_base, "the active segment stays");
            prop_assert_eq!(run.log.next_offset(), next);
            prop_assert_eq!(&before[report.deleted_segments..], &after[..], "a prefix of whole segments");
            prop_assert!(report.log_start_offset == after[0]);
            // Deleted segments were expired or over the size limit: what is left is
            // more than retention_bytes minus one segment, unless time took them.
            run.model.retain(|&o, _| o >= report.log_start_offset);
            let want: Vec<(u64, Rec)> = run.model.iter().map(|(o, r)| (*o, r.clone())).collect();
            prop_assert_eq!(contents(&run.log), want);
        }
    }
}

#[test]
fn tombstones_outlive_delete_retention_then_go() {
    let mut run = Run::new(config(CleanupPolicy::Compact));
    run.apply(&Op::Append(vec![(1, Some(7)), (2, Some(8))]));
    run.apply(&Op::Append(vec![(1, None)]));
    run.apply(&Op::Roll);
    let now = run.now;
    run.log.compact(now + 100).expect("compact");
    let keys: Vec<_> = contents(&run.log)
        .into_iter()
        .map(|(_, r)| (r.key, r.value))
        .collect();
    assert_eq!(
        keys,
        vec![(Some(2), Some(8)), (Some(1), None)],
        "the tombstone stays while young"
    );
    let report = run.log.compact(now + 10_000).expect("compact");
    assert_eq!(report.tombstones_removed, 1);
    let keys: Vec<_> = contents(&run.log)
        .into_iter()
        .map(|(_, r)| (r.key, r.value))
        .collect();
    assert_eq!(keys, vec![(Some(2), Some(8))]);
    assert_eq!(run.log.next_offset(), 3, "offsets never change");
}

/// KIP-534: a tombstone is kept for `delete_retention_ms` after the cleaning that
/// first saw it (which stamps the batch's delete horizon), whatever the timestamp its
/// producer gave it. Issue 14, finding 9: a delete stamped with an old CreateTime (a
/// skewed clock, a replayed or migrated record) was removed at the next cleaning,
/// together with the value it deletes, so a consumer that had read the value never
/// saw the delete.
#[test]
fn a_tombstone_with_an_old_timestamp_is_kept_for_delete_retention_after_its_first_cleaning() {
    let cfg = config(CleanupPolicy::Compact);
    let dir = MemDir::new();
    let (mut log, _) = Log::open(dir.clone(), cfg.clone()).expect("open");
    let now = 1_000_000;
    let mut value = BatchBuilder::new();
    value.push(NewRecord::new(now, Some(b"k"), Some(&7u16.to_be_bytes())));
    log.append(value.finish().expect("one record"), now)
        .expect("append");
    // A consumer reads the value at offset 0.
    assert_eq!(contents(&log)[0].1.value, Some(7));
    let mut delete = BatchBuilder::new();
    delete.push(NewRecord::new(0, Some(b"k"), None));
    log.append(delete.finish().expect("one record"), now)
        .expect("append");
    log.roll().expect("roll");

    let report = log.compact(now).expect("compact");
    assert_eq!(report.records_superseded, 1, "the value is superseded");
    assert_eq!(
        report.tombstones_removed, 0,
        "the first cleaning keeps the delete, whatever its CreateTime: {report:?}"
    );
    let tombstone = Rec {
        key: Some(b'k'),
        value: None,
        timestamp: 0,
    };
    assert_eq!(contents(&log), vec![(1, tombstone.clone())]);

    // Still there just before the horizon, also after a reopen (the horizon is on disk).
    let report = log
        .compact(now + cfg.delete_retention_ms - 1)
        .expect("compact");
    assert_eq!(report.tombstones_removed, 0);
    drop(log);
    let (mut log, _) = Log::open(dir, cfg.clone()).expect("reopen");
    assert_eq!(contents(&log), vec![(1, tombstone)]);

    let report = log.compact(now + cfg.delete_retention_ms).expect("compact");
    assert_eq!(report.tombstones_removed, 1, "gone at the horizon");
    assert_eq!(contents(&log), vec![]);
    assert_eq!(log.next_offset(), 2, "offsets never change");
}

/// Kafka's cleaner keeps the last batch of each active producer, emptied of its
/// records if need be, so the producer's sequence state survives compaction (its
/// `LogCleaner` "retains the batch that contains this offset since it also contains
/// the last sequence number for this producer"). Issue 14, finding 10: the batch was
/// dropped, and a log recovered from its batch headers forgot the producer and wrote
/// its retry twice.
#[test]
fn a_producers_last_batch_survives_compaction_without_its_records() {
    let cfg = config(CleanupPolicy::Compact);
    let dir = MemDir::new();
    let (mut log, _) = Log::open(dir.clone(), cfg.clone()).expect("open");
    let producer = |base_sequence| ProducerStamp {
        producer_id: 7,
        producer_epoch: 3,
        base_sequence,
    };
    let batch = |stamp: Option<ProducerStamp>, records: &[(&[u8], &[u8])]| {
        let mut b = BatchBuilder::new();
        if let Some(stamp) = stamp {
            b = b.producer(stamp);
        }
        for (k, v) in records {
            b.push(NewRecord::new(100, Some(k), Some(v)));
        }
        b.finish().expect("records")
    };
    log.append(batch(Some(producer(0)), &[(b"a", b"1"), (b"b", b"1")]), 100)
        .expect("append");
    let last = log
        .append(batch(Some(producer(2)), &[(b"a", b"2")]), 100)
        .expect("append");
    assert_eq!((last.base_offset, last.last_offset), (2, 2));
    // Another writer supersedes every record the producer wrote.
    log.append(batch(None, &[(b"a", b"3"), (b"b", b"3")]), 100)
        .expect("append");
    log.roll().expect("roll");
    log.compact(200).expect("compact");

    let batches = log.read(0, 1 << 20).expect("read");
    let kept: Vec<_> = batches
        .iter()
        .filter(|b| b.header().producer_id == 7)
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "the producer's last batch is kept, its earlier one is not: {batches:?}"
    );
    let h = kept[0].header();
    assert_eq!(
        (h.base_offset, h.last_offset(), h.records_count),
        (2, 2, 0),
        "empty, at its offsets"
    );
    assert_eq!((h.producer_epoch, h.base_sequence), (3, 2));
    assert_eq!(kept[0].records().count(), 0);

    // Recovery from the batch headers alone (the producer snapshots damaged) still
    // knows the producer: its retry is a duplicate, its next batch follows on.
    drop(log);
    for name in dir.file_names() {
        if name.ends_with(".snapshot") {
            dir.write_file(&name, b"damaged");
        }
    }
    let (mut log, _) = Log::open(dir, cfg).expect("reopen");
    let retry = log
        .append(batch(Some(producer(2)), &[(b"a", b"2")]), 300)
        .expect("retry");
    assert!(
        retry.duplicate && retry.base_offset == 2,
        "the retry was written again: {retry:?}"
    );
    let next = log
        .append(batch(Some(producer(3)), &[(b"c", b"1")]), 300)
        .expect("next in sequence");
    assert_eq!(next.base_offset, 5);
}
