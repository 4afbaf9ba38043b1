//! A transaction that commits late is not skipped: the relay keeps no
//! watermark, and each pass selects every row still unpublished. Writers of
//! one key wait for each other, so sequence order is commit order.
//! Runs on SQLite and PostgreSQL.

mod outbox_common;

use std::time::Duration;

use dsys_clocks::ManualClock;
use dsys_txn::outbox::{MemPublisher, Relay};
use outbox_common::*;

fn late_commit_is_published<D: Db>(db: D) {
    let clock = ManualClock::new(T0);
    let mut publisher = MemPublisher::new();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut store = db.store();
    // A enqueues for key "a" (taking the lower id) and stays open.
    let a = db.open(b"a", b"late", T0);
    let a_id = a.id;
    if db.single_writer() {
        // SQLite: every other writer waits for A, whatever its key.
        let b = db.spawn_enqueue(b"b", b"other key", T0);
        assert!(
            b.rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "SQLite serialises writers: B must wait for A"
        );
        a.finish(true).unwrap();
        let b = b.rx.recv().unwrap().unwrap();
        assert!(b > a_id);
        drain(
            &mut relay,
            &mut store,
            &mut publisher,
            &clock,
            Duration::from_millis(1),
            5,
        );
        assert_eq!(payloads(&publisher), ["late", "other key"]);
        return;
    }
    // B for another key commits at once, and the relay publishes it.
    let b = db.enqueue(&[(b"b", b"other key")], true, T0);
    assert!(
        b[0] > a_id,
        "B's id is above A's: a watermark would now pass A"
    );
    relay.run_pass(&mut store, &mut publisher, &clock).unwrap();
    assert_eq!(payloads(&publisher), ["other key"]);
    // C for the same key waits for A's row lock.
    let c = db.spawn_enqueue(b"a", b"same key", T0);
    assert!(
        c.rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "C (same key) must wait for A"
    );
    clock.advance(Duration::from_millis(5));
    relay.run_pass(&mut store, &mut publisher, &clock).unwrap();
    assert_eq!(
        publisher.delivered().len(),
        1,
        "nothing of key a is visible yet"
    );
    // A commits late; C then gets the next sequence number.
    a.finish(true).unwrap();
    let c = c.rx.recv().unwrap().unwrap();
    clock.advance(Duration::from_millis(5));
    drain(
        &mut relay,
        &mut store,
        &mut publisher,
        &clock,
        Duration::from_millis(1),
        5,
    );
    assert_eq!(payloads(&publisher), ["other key", "late", "same key"]);
    let late = &publisher.delivered()[1];
    assert_eq!((late.id, late.seq), (a_id, 1));
    let same = &publisher.delivered()[2];
    assert_eq!((same.id, same.seq), (c, 2));
}

fn rolled_back_late_tx_leaves_no_gap<D: Db>(db: D) {
    let clock = ManualClock::new(T0);
    let mut publisher = MemPublisher::new();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut store = db.store();
    let a = db.open(b"k", b"rolled back", T0);
    let c = db.spawn_enqueue(b"k", b"after", T0);
    a.finish(false).unwrap();
    c.rx.recv().unwrap().unwrap();
    drain(
        &mut relay,
        &mut store,
        &mut publisher,
        &clock,
        Duration::from_millis(1),
        5,
    );
    assert_eq!(payloads(&publisher), ["after"]);
    assert_eq!(publisher.delivered()[0].seq, 1);
}

both!(late_commit_is_published, rolled_back_late_tx_leaves_no_gap);

/// SQLite has one writer: a relay pass while an application transaction
/// holds the write lock fails after the busy timeout (typed, nothing
/// changed), and the next pass after the commit publishes.
#[test]
fn sqlite_relay_waits_out_an_open_writer() {
    let db = SqliteDb::new("busywriter");
    let a = db.open(b"a", b"late", T0);
    let mut store =
        dsys_txn::outbox::SqliteStore::open(db.path(), &db.config(), Duration::from_millis(100))
            .unwrap();
    let clock = ManualClock::new(T0);
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    assert!(matches!(
        relay.run_pass(&mut store, &mut p, &clock),
        Err(dsys_txn::outbox::RelayError::Store(
            dsys_txn::outbox::StoreError::Db(_)
        ))
    ));
    a.finish(true).unwrap();
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(payloads(&p), ["late"]);
}
