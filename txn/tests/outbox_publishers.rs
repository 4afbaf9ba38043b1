//! Publishers and the write side's checks: headers survive the database
//! round trip, bad arguments are refused before anything is written, a
//! partition-count mismatch is refused, and the `LogPublisher` appends each
//! event to a dsys-log partition with its id and sequence as headers.
//! Runs on SQLite and PostgreSQL.

mod outbox_common;

use std::time::Duration;

use dsys_clocks::ManualClock;
use dsys_log::{Log, LogConfig, MemDir};
use dsys_txn::outbox::{
    Config, EnqueueError, LogPublisher, MemPublisher, MigrateError, PgOutbox, PgStore, Relay,
    SqliteOutbox, SqliteStore, StoreError,
};
use outbox_common::*;

fn headers_round_trip<D: Db>(db: D) {
    let headers = vec![
        ("trace-id".to_owned(), b"abc".to_vec()),
        ("empty".to_owned(), Vec::new()),
        ("bin".to_owned(), vec![0, 255, 7]),
    ];
    db.enqueue_with_headers(b"k", b"p", &headers);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    drain(
        &mut relay,
        &mut store,
        &mut p,
        &clock,
        Duration::from_millis(1),
        3,
    );
    assert_eq!(p.delivered()[0].headers, headers);
    assert_eq!(p.delivered()[0].created_at, T0);
}

fn log_publisher_appends_in_order<D: Db>(db: D) {
    let ids = db.enqueue(&[(b"a", b"a1"), (b"b", b"b1"), (b"a", b"a2")], true, T0);
    let (log, _) = Log::open(MemDir::new(), LogConfig::default()).unwrap();
    let mut publisher = LogPublisher::new(log);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    drain(
        &mut relay,
        &mut store,
        &mut publisher,
        &clock,
        Duration::from_millis(1),
        3,
    );
    let log = publisher.into_log();
    let mut got = Vec::new();
    for batch in log.read(0, 1 << 20).unwrap() {
        for record in batch.records() {
            let r = record.unwrap();
            let header = |name: &str| {
                let h = r
                    .headers
                    .iter()
                    .find(|h| &h.key[..] == name.as_bytes())
                    .unwrap();
                String::from_utf8(h.value.clone().unwrap().to_vec()).unwrap()
            };
            assert_eq!(r.timestamp, T0.as_millis() as i64);
            got.push((
                r.key.clone().unwrap().to_vec(),
                r.value.clone().unwrap().to_vec(),
                header("outbox-event-id"),
                header("outbox-seq"),
            ));
        }
    }
    let mut a: Vec<_> = got.iter().filter(|g| g.0 == b"a").collect();
    assert_eq!(a.len(), 2);
    assert_eq!(
        (
            a[0].1.as_slice(),
            a[0].3.as_str(),
            a[1].1.as_slice(),
            a[1].3.as_str()
        ),
        (&b"a1"[..], "1", &b"a2"[..], "2")
    );
    a.sort();
    let mut ids_seen: Vec<String> = got.iter().map(|g| g.2.clone()).collect();
    ids_seen.sort();
    let mut want: Vec<String> = ids.iter().map(|i| i.0.to_string()).collect();
    want.sort();
    assert_eq!(ids_seen, want);
}

both!(headers_round_trip, log_publisher_appends_in_order);

#[test]
fn enqueue_refuses_bad_arguments_before_writing() {
    let db = SqliteDb::new("badargs");
    let mut config = db.config();
    config.max_key_len = 4;
    config.max_payload_len = 8;
    let outbox = SqliteOutbox::new(config).unwrap();
    let mut conn = db.conn();
    let tx = conn.transaction().unwrap();
    assert!(matches!(
        outbox.enqueue(&tx, b"too-long", b"p", &[], T0),
        Err(EnqueueError::KeyTooLong { len: 8, max: 4 })
    ));
    assert!(matches!(
        outbox.enqueue(&tx, b"k", b"123456789", &[], T0),
        Err(EnqueueError::PayloadTooLarge { len: 9, max: 8 })
    ));
    let many: Vec<(String, Vec<u8>)> = (0..65).map(|i| (format!("h{i}"), vec![])).collect();
    assert!(matches!(
        outbox.enqueue(&tx, b"k", b"p", &many, T0),
        Err(EnqueueError::Headers(_))
    ));
    let long_name = vec![("x".repeat(257), vec![])];
    assert!(matches!(
        outbox.enqueue(&tx, b"k", b"p", &long_name, T0),
        Err(EnqueueError::Headers(_))
    ));
    tx.commit().unwrap();
    assert_eq!(db.event_rows(), 0);
}

#[test]
fn partition_count_is_fixed_at_migration_sqlite() {
    let db = SqliteDb::new("partmismatch");
    let mut other: Config = db.config();
    other.partitions += 1;
    let mut conn = db.conn();
    assert!(matches!(
        SqliteOutbox::new(other.clone()).unwrap().migrate(&mut conn),
        Err(MigrateError::PartitionMismatch {
            found: 4,
            config: 5
        })
    ));
    assert!(matches!(
        SqliteStore::open(db.path(), &other, Duration::from_secs(1)),
        Err(StoreError::PartitionMismatch {
            found: Some(4),
            config: 5
        })
    ));
    let mut fresh = db.config();
    fresh.table_prefix = "never_migrated_".into();
    assert!(matches!(
        SqliteStore::open(db.path(), &fresh, Duration::from_secs(1)),
        Err(StoreError::PartitionMismatch { found: None, .. })
    ));
    // Migrating again with the same config is a no-op.
    SqliteOutbox::new(db.config())
        .unwrap()
        .migrate(&mut conn)
        .unwrap();
}

#[test]
fn partition_count_is_fixed_at_migration_postgres() {
    let Some(db) = PgDb::new("partmismatch") else {
        return;
    };
    let mut other: Config = db.config();
    other.partitions += 1;
    let mut client = db.client();
    assert!(matches!(
        PgOutbox::new(other.clone()).unwrap().migrate(&mut client),
        Err(MigrateError::PartitionMismatch {
            found: 4,
            config: 5
        })
    ));
    assert!(matches!(
        PgStore::connect(db.url(), &other),
        Err(StoreError::PartitionMismatch {
            found: Some(4),
            config: 5
        })
    ));
    let mut fresh = db.config();
    fresh.table_prefix = "never_migrated_".into();
    assert!(matches!(
        PgStore::connect(db.url(), &fresh),
        Err(StoreError::PartitionMismatch { found: None, .. })
    ));
    PgOutbox::new(db.config())
        .unwrap()
        .migrate(&mut client)
        .unwrap();
}
