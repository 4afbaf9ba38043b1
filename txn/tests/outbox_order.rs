//! Per-key order: a failed event is never overtaken by its key's later
//! events, other keys go on, and under random failures every key's first
//! deliveries come in sequence order. Runs on SQLite and PostgreSQL.
//!
//! `OUTBOX_SEEDS` (default 3) sets how many seeds the randomized test runs.

mod outbox_common;

use std::time::Duration;

use dsys_clocks::ManualClock;
use dsys_txn::outbox::{MemPublisher, Relay};
use outbox_common::*;

fn failed_event_is_not_overtaken<D: Db>(db: D) {
    let a = db.enqueue(&[(b"a", b"a1"), (b"a", b"a2"), (b"a", b"a3")], true, T0);
    db.enqueue(&[(b"b", b"b1"), (b"b", b"b2")], true, T0);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    p.fail_times(a[0], 1);
    let report = relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(report.retried, 1);
    assert_eq!(payloads(&p), ["b1", "b2"], "key b goes on, key a waits");
    // Within the backoff (100 ms) the key still waits.
    clock.advance(Duration::from_millis(99));
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(p.delivered().len(), 2);
    clock.advance(Duration::from_millis(1));
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(payloads(&p), ["b1", "b2", "a1", "a2", "a3"]);
    assert_eq!(
        p.delivered()[2].attempts,
        1,
        "the event carries its attempts"
    );
}

fn random_failures_keep_key_order<D: Db>(db: D) {
    let seeds: u64 = std::env::var("OUTBOX_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let db = db.with_config(|c| {
        c.max_attempts = 1000;
        c.retention = std::time::Duration::from_secs(100_000);
    });
    for seed in 0..seeds {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut ids = Vec::new();
            for i in 0..60 {
                let key = format!("s{seed}-k{}", rng.u32(0..7));
                let payload = format!("{i}");
                // Some transactions hold several events, some roll back.
                let commit = rng.u32(0..5) != 0;
                let got = db.enqueue(&[(key.as_bytes(), payload.as_bytes())], commit, T0);
                if commit {
                    ids.extend(got);
                }
            }
            let clock = ManualClock::new(T0);
            let mut store = db.store();
            let mut relay = Relay::new(format!("r{seed}"), db.config()).unwrap();
            let mut p = MemPublisher::new();
            for id in &ids {
                p.fail_times(*id, rng.u32(0..3));
            }
            drain(
                &mut relay,
                &mut store,
                &mut p,
                &clock,
                Duration::from_millis(150),
                200,
            );
            assert_in_order(p.delivered());
            let mut got: Vec<_> = p.delivered().iter().map(|e| e.id).collect();
            got.sort();
            got.dedup();
            assert_eq!(got, ids);
        }));
        if let Err(e) = result {
            eprintln!(
                "random_failures_keep_key_order failed with seed {seed} on {}",
                db.name()
            );
            std::panic::resume_unwind(e);
        }
    }
}

/// Enough rows in one key to fill several pages and passes: order holds
/// across pages and passes.
fn long_keys_are_paged<D: Db>(db: D) {
    let db = db.with_config(|c| {
        c.batch_size = 7;
        c.max_events_per_pass = 10;
        c.partitions = 4;
    });
    let events: Vec<(Vec<u8>, Vec<u8>)> = (0..40)
        .map(|i| (b"long".to_vec(), format!("{i}").into_bytes()))
        .collect();
    let refs: Vec<(&[u8], &[u8])> = events.iter().map(|(k, p)| (&k[..], &p[..])).collect();
    db.enqueue(&refs, true, T0);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    let passes = drain(
        &mut relay,
        &mut store,
        &mut p,
        &clock,
        Duration::from_millis(1),
        50,
    );
    assert!(
        passes >= 4,
        "the per-pass budget bounds each pass ({passes})"
    );
    assert_eq!(p.delivered().len(), 40);
    assert_in_order(p.delivered());
}

both!(
    failed_event_is_not_overtaken,
    random_failures_keep_key_order,
    long_keys_are_paged
);
