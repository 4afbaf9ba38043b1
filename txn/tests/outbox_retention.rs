//! Retention: published rows are deleted after `retention` in bounded
//! batches, unpublished rows never; inbox rows likewise. The inbox drops
//! duplicates. Runs on SQLite and PostgreSQL.

mod outbox_common;

use std::time::Duration;

use dsys_clocks::ManualClock;
use dsys_txn::outbox::{EventId, MemPublisher, OutboxStore, Relay};
use outbox_common::*;

fn published_rows_expire_in_batches<D: Db>(db: D) {
    let db = db.with_config(|c| c.cleanup_batch = 3);
    let events: Vec<(Vec<u8>, Vec<u8>)> = (0..10)
        .map(|i| (format!("k{i}").into_bytes(), b"x".to_vec()))
        .collect();
    let refs: Vec<(&[u8], &[u8])> = events.iter().map(|(k, p)| (&k[..], &p[..])).collect();
    let ids = db.enqueue(&refs, true, T0);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    p.fail_always(ids[0]);
    let report = relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!((report.published, report.cleaned), (9, 0));
    // Before retention: nothing deleted.
    clock.advance(db.config().retention - Duration::from_millis(1));
    assert_eq!(
        relay.run_pass(&mut store, &mut p, &clock).unwrap().cleaned,
        0
    );
    clock.advance(Duration::from_millis(2));
    let mut cleaned = Vec::new();
    for _ in 0..5 {
        cleaned.push(relay.run_pass(&mut store, &mut p, &clock).unwrap().cleaned);
    }
    assert_eq!(cleaned, [3, 3, 3, 0, 0], "bounded batches");
    assert_eq!(db.event_rows(), 1, "the unpublished row stays");
    assert!(db.config().retention > db.config().retry_schedule());
}

fn inbox_drops_duplicates<D: Db>(db: D) {
    let id = EventId(7);
    assert!(db.inbox("billing", id, true, T0));
    assert!(!db.inbox("billing", id, true, T0), "duplicate dropped");
    assert!(
        db.inbox("shipping", id, true, T0),
        "consumers are independent"
    );
    // A rolled-back processing records nothing: the redelivery is processed.
    assert!(db.inbox("audit", id, false, T0));
    assert!(db.inbox("audit", id, true, T0));
    assert_eq!(db.inbox_rows(), 3);
}

fn inbox_rows_expire_in_batches<D: Db>(db: D) {
    for i in 0..5 {
        db.inbox("c", EventId(i), true, T0 + Duration::from_secs(i));
    }
    assert_eq!(db.inbox_cleanup(T0 + Duration::from_secs(3), 2), 2);
    assert_eq!(db.inbox_cleanup(T0 + Duration::from_secs(3), 2), 1);
    assert_eq!(db.inbox_cleanup(T0 + Duration::from_secs(3), 2), 0);
    assert_eq!(db.inbox_rows(), 2);
    assert!(
        !db.inbox("c", EventId(4), true, T0),
        "a kept row still dedupes"
    );
    // A deleted row no longer does: hence retention > the redelivery window.
    assert!(db.inbox("c", EventId(0), true, T0));
}

fn event_ids_are_never_reused<D: Db>(db: D) {
    // The inbox dedupes by id, so an id freed by retention must not return.
    let first = db.enqueue(&[(b"k", b"1")], true, T0);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    clock.advance(db.config().retention + Duration::from_secs(1));
    assert_eq!(
        relay.run_pass(&mut store, &mut p, &clock).unwrap().cleaned,
        1
    );
    assert_eq!(db.event_rows(), 0);
    let second = db.enqueue(&[(b"k", b"2")], true, T0);
    assert!(second[0] > first[0]);
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(p.delivered()[1].seq, 2, "the key's sequence goes on");
    let _ = store.backlog();
}

both!(
    published_rows_expire_in_batches,
    inbox_drops_duplicates,
    inbox_rows_expire_in_batches,
    event_ids_are_never_reused
);

/// Two deliveries of one event processed at once (PostgreSQL): the second
/// waits for the first's transaction, then is dropped if it committed, or
/// processed if it rolled back.
#[test]
fn concurrent_duplicates_postgres() {
    let Some(db) = PgDb::new("inboxrace") else {
        return;
    };
    let inbox = dsys_txn::outbox::PgInbox::new(&db.config().table_prefix).unwrap();
    for first_commits in [true, false] {
        let id = EventId(if first_commits { 1 } else { 2 });
        let mut c1 = db.client();
        let mut t1 = c1.transaction().unwrap();
        assert!(inbox.process(&mut t1, "c", id, T0).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let (db2, inbox2) = (db.clone(), inbox.clone());
        let second = std::thread::spawn(move || {
            let mut c2 = db2.client();
            let mut t2 = c2.transaction().unwrap();
            let first = inbox2.process(&mut t2, "c", id, T0).unwrap();
            t2.commit().unwrap();
            tx.send(first).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second delivery waits for the first"
        );
        if first_commits {
            t1.commit().unwrap();
        } else {
            t1.rollback().unwrap();
        }
        assert_eq!(rx.recv().unwrap(), !first_commits);
        second.join().unwrap();
    }
}
