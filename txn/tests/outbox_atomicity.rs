//! The write side commits and rolls back with the caller's transaction, and
//! nothing committed is lost when a relay crashes before or after publishing.
//! Runs on SQLite and PostgreSQL.

mod outbox_common;

use std::time::Duration;

use dsys_clocks::ManualClock;
use dsys_txn::outbox::{MemPublisher, OutboxStore, Relay};
use outbox_common::*;

/// A rolled-back transaction publishes nothing and takes no sequence number.
fn rollback_publishes_nothing<D: Db>(db: D) {
    db.enqueue(&[(b"k", b"rolled-back"), (b"j", b"rolled-back")], false, T0);
    db.enqueue(&[(b"k", b"committed")], true, T0);
    let mut store = db.store();
    let clock = ManualClock::new(T0);
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut publisher = MemPublisher::new();
    drain(
        &mut relay,
        &mut store,
        &mut publisher,
        &clock,
        Duration::from_secs(1),
        5,
    );
    assert_eq!(payloads(&publisher), ["committed"]);
    assert_eq!(publisher.delivered()[0].seq, 1, "the rollback left no gap");
}

/// Committed events survive a relay that never ran (crash right after the
/// business commit): the next relay publishes them all, in order.
fn crash_after_commit_loses_nothing<D: Db>(db: D) {
    let mut committed = Vec::new();
    for i in 0..20u32 {
        let key = format!("key-{}", i % 3);
        let payload = format!("p{i}");
        committed.extend(db.enqueue(&[(key.as_bytes(), payload.as_bytes())], true, T0));
    }
    // The first relay took the leases and died before publishing anything.
    let clock = ManualClock::new(T0);
    {
        let mut store = db.store();
        let mut dead = Relay::new("dead", db.config()).unwrap();
        let mut never = MemPublisher::new();
        for id in &committed {
            never.fail_always(*id);
        }
        dead.run_pass(&mut store, &mut never, &clock).unwrap();
        assert!(dead.held_partitions().count() > 0);
    }
    clock.advance(db.config().lease_duration + Duration::from_millis(1));
    let mut store = db.store();
    let mut relay = Relay::new("next", db.config()).unwrap();
    let mut publisher = MemPublisher::new();
    // The failed first attempts back off; advance past them.
    drain(
        &mut relay,
        &mut store,
        &mut publisher,
        &clock,
        Duration::from_secs(2),
        10,
    );
    let mut got: Vec<_> = publisher.delivered().iter().map(|e| e.id).collect();
    got.sort();
    assert_eq!(got, committed);
    assert_in_order(publisher.delivered());
}

/// A relay that published and crashed before marking: the next relay
/// publishes again (at least once), and the inbox drops the duplicates.
fn crash_between_publish_and_mark_redelivers<D: Db>(db: D) {
    let ids = db.enqueue(&[(b"a", b"1"), (b"a", b"2"), (b"b", b"3")], true, T0);
    let clock = ManualClock::new(T0);
    let mut publisher = MemPublisher::new();
    {
        let mut store = CrashOnMark {
            inner: db.store(),
            crash: true,
        };
        let mut relay = Relay::new("crashy", db.config()).unwrap();
        assert!(relay.run_pass(&mut store, &mut publisher, &clock).is_err());
        assert_eq!(store.inner.backlog().unwrap(), 3, "nothing was marked");
    }
    assert!(!publisher.delivered().is_empty(), "it did publish");
    clock.advance(db.config().lease_duration + Duration::from_millis(1));
    let mut store = db.store();
    let mut relay = Relay::new("next", db.config()).unwrap();
    drain(
        &mut relay,
        &mut store,
        &mut publisher,
        &clock,
        Duration::from_secs(1),
        5,
    );
    assert!(publisher.delivered().len() > 3, "re-delivered");
    assert_in_order(publisher.delivered());
    let mut processed = Vec::new();
    for e in publisher.delivered() {
        if db.inbox("consumer", e.id, true, T0) {
            processed.push(e.id);
        }
    }
    processed.sort();
    assert_eq!(processed, ids, "each event processed exactly once");
}

both!(
    rollback_publishes_nothing,
    crash_after_commit_loses_nothing,
    crash_between_publish_and_mark_redelivers
);
