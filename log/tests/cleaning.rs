//! Property tests for compaction and retention (Kafka's log cleaner and
//! `deleteOldSegments`): compaction keeps exactly the latest record per key in the
//! sealed segments and never changes or reorders offsets; retention never deletes
//! the active segment and deletes only whole segments from the front.

use std::collections::BTreeMap;

use dsys_log::{BatchBuilder, CleanupPolicy, Log, LogConfig, MemDir, NewRecord};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Records as (key, value); key 255 means no key, value None a tombstone.
    Append(Vec<(u8, Option<u16>)>),
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
        6 => prop::collection::vec(record, 1..5).prop_map(Op::Append),
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

struct Run {
    dir: MemDir,
    log: Log<MemDir>,
    cfg: LogConfig,
    model: BTreeMap<u64, Rec>,
    now: i64,
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
            now: 0,
        }
    }

    fn apply(&mut self, op: &Op) -> Option<(u64, i64)> {
        match op {
            Op::Append(records) => {
                self.now += 10;
                let mut b = BatchBuilder::new();
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
                self.log.roll(self.now).expect("roll");
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
            // What must survive: in the sealed part, the latest record of each key
            // (unless it is a tombstone past delete_retention_ms) and every keyless
            // record; in the active segment, everything.
            let mut latest: BTreeMap<u8, u64> = BTreeMap::new();
            for (&o, r) in run.model.range(..active_base) {
                if let Some(k) = r.key { latest.insert(k, o); }
            }
            let horizon = now - run.cfg.delete_retention_ms;
            run.model.retain(|&o, r| {
                o >= active_base
                    || match r.key {
                        None => true,
                        Some(k) => latest[&k] == o && !(r.value.is_none() && r.timestamp < horizon),
                    }
            });
            let got = contents(&run.log);
            let want: Vec<(u64, Rec)> = run.model.iter().map(|(o, r)| (*o, r.clone())).collect();
            prop_assert_eq!(&got, &want, "after {:?}", report);
            prop_assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "offsets strictly increase");
        }
        // Compacted segments survive a reopen with the same contents.
        drop(run.log);
        let (log, _) = Log::open(run.dir.clone(), run.cfg.clone()).expect("reopen");
        let want: Vec<(u64, Rec)> = run.model.iter().map(|(o, r)| (*o, r.clone())).collect();
        prop_assert_eq!(contents(&log), want);
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
