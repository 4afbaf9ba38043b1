//! An adversarial review of the outbox: interleavings and inputs the other
//! tests do not try. Runs on SQLite and PostgreSQL (real connections, real
//! threads, manual clocks).
//!
//! - a writer built with another partition count than the database's must be
//!   refused (it would put a key's events into a partition no relay serves,
//!   or into another partition than the key's earlier events);
//! - the retry backoff counts from the failure, not from the start of a long
//!   pass;
//! - a relay paused inside `publish` while its lease is taken over (the new
//!   holder failing the same event) keeps every key's first deliveries in
//!   order, and its late marks are fenced;
//! - an operator replay racing a relay that read the row as parked;
//! - the longest key `Config::validate` allows enqueues on PostgreSQL (its
//!   B-tree entries are bounded), and PostgreSQL errors carry the server's
//!   message.

mod outbox_common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dsys_clocks::{ManualClock, PhysicalClock};
use dsys_txn::outbox::{
    EnqueueError, Event, EventId, MemPublisher, OutboxStore, PublishError, Publisher, Relay,
    partition_of,
};
use outbox_common::*;

/// Two keys of one partition (of `partitions`), in ascending order.
fn same_partition_keys(partitions: u32) -> (Vec<u8>, Vec<u8>) {
    let first = b"key-0".to_vec();
    let p = partition_of(&first, partitions);
    let second = (1..)
        .map(|i| format!("key-{i}").into_bytes())
        .find(|k| partition_of(k, partitions) == p)
        .expect("some key shares the partition");
    (first, second)
}

/// A writer whose config says 8 partitions on a database migrated with 4:
/// `partition_of(key, 8)` can be 4..8, a partition with no lease row, so
/// the event would wait forever; or, with fewer partitions, a key's events
/// would land in two partitions served by two relays (order lost). The
/// enqueue must be refused before anything is written.
fn writer_with_another_partition_count_is_refused<D: Db>(db: D) {
    let key = (0..)
        .map(|i| format!("k{i}").into_bytes())
        .find(|k| partition_of(k, 8) >= 4)
        .expect("some key hashes above 4 of 8");
    let wrong = db.with_config(|c| c.partitions = 8);
    let result = wrong.try_enqueue(&key, b"lost", T0);
    assert!(
        matches!(
            result,
            Err(EnqueueError::PartitionMismatch {
                found: Some(4),
                config: 8
            })
        ),
        "{:?}",
        result.map_err(|e| e.to_string())
    );
    assert_eq!(db.event_rows(), 0, "nothing written");
    // The right config still enqueues, with the key's first sequence number.
    let ids = db.enqueue(&[(&key, b"kept")], true, T0);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(p.delivered()[0].id, ids[0]);
    assert_eq!(p.delivered()[0].seq, 1, "the refused enqueue took no seq");
}

/// Every call advances the (manual) clock by a second, like a slow broker.
struct Slow {
    clock: Arc<ManualClock>,
    inner: MemPublisher,
}

impl Publisher for Slow {
    fn publish(&mut self, event: &Event) -> Result<(), PublishError> {
        self.clock.advance(Duration::from_secs(1));
        self.inner.publish(event)
    }
}

/// A failure late in a long pass must still wait its backoff after the
/// failure; counting it from the pass's start retries at once and burns the
/// attempts (a dead letter after `max_attempts` quick passes).
fn backoff_counts_from_the_failure<D: Db>(db: D) {
    let db = db.with_config(|c| {
        c.backoff_initial = Duration::from_secs(1);
        c.backoff_max = Duration::from_secs(1);
    });
    let (a, b) = same_partition_keys(db.config().partitions);
    db.enqueue(&[(&a, b"a1"), (&a, b"a2"), (&a, b"a3")], true, T0);
    let bad = db.enqueue(&[(&b, b"b1")], true, T0)[0];
    let clock = Arc::new(ManualClock::new(T0));
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = Slow {
        clock: clock.clone(),
        inner: MemPublisher::new(),
    };
    p.inner.fail_always(bad);
    let report = relay.run_pass(&mut store, &mut p, &*clock).unwrap();
    assert_eq!((report.published, report.retried), (3, 1));
    let failed_at = clock.now();
    assert_eq!(failed_at, T0 + Duration::from_secs(4));
    // The next passes run at once (well within the 1 s backoff): no retry.
    for _ in 0..3 {
        relay.run_pass(&mut store, &mut p, &*clock).unwrap();
        assert!(
            clock.now() < failed_at + Duration::from_secs(1),
            "no publish ran, so the clock stood still"
        );
    }
    assert_eq!(p.inner.attempts(), 4, "retried within its backoff");
    assert!(store.dead_letters(None, 10).unwrap().is_empty());
}

/// What the paused relay's publisher does.
struct Gate {
    /// Every delivery by either relay, in arrival order.
    log: Arc<Mutex<Vec<Event>>>,
    /// Pause before delivering this sequence number.
    pause_at: u64,
    paused: mpsc::Sender<()>,
    resume: mpsc::Receiver<()>,
}

impl Publisher for Gate {
    fn publish(&mut self, event: &Event) -> Result<(), PublishError> {
        if event.seq == self.pause_at {
            self.paused.send(()).expect("the test waits");
            self.resume.recv().expect("the test resumes us");
        }
        // The delivery lands when the call returns (a slow network).
        self.log.lock().expect("log").push(event.clone());
        Ok(())
    }
}

/// Delivers into the shared log; fails each listed id once.
struct Recorder {
    log: Arc<Mutex<Vec<Event>>>,
    fail_once: Vec<EventId>,
}

impl Publisher for Recorder {
    fn publish(&mut self, event: &Event) -> Result<(), PublishError> {
        if let Some(i) = self.fail_once.iter().position(|id| *id == event.id) {
            self.fail_once.remove(i);
            return Err(PublishError::Retryable("broker hiccup".into()));
        }
        self.log.lock().expect("log").push(event.clone());
        Ok(())
    }
}

/// Relay A publishes k:1, then hangs inside the publish of k:2. Its lease
/// expires; B takes the partition, delivers k:1 again, fails k:2 (so A's
/// late k:2 will be its first delivery), and goes on with other keys. A
/// wakes up: k:2 lands, then k:3..; its marks are refused. B then delivers
/// the rest. Per key the first deliveries stay in order; nothing is lost.
fn paused_relay_taken_over_keeps_first_delivery_order<D: Db>(db: D) {
    let (k, other) = same_partition_keys(db.config().partitions);
    let ids = db.enqueue(
        &[(&k, b"1"), (&k, b"2"), (&k, b"3"), (&other, b"o1")],
        true,
        T0,
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let clock_a = Arc::new(ManualClock::new(T0));
    let (paused_tx, paused) = mpsc::channel();
    let (resume, resume_rx) = mpsc::channel();
    let (mut relay_a, mut store_a) = (Relay::new("a", db.config()).unwrap(), db.store());
    let mut gate = Gate {
        log: log.clone(),
        pause_at: 2,
        paused: paused_tx,
        resume: resume_rx,
    };
    let ca = clock_a.clone();
    let a = std::thread::spawn(move || {
        let report = relay_a.run_pass(&mut store_a, &mut gate, &*ca).unwrap();
        (report, relay_a)
    });
    paused
        .recv_timeout(Duration::from_secs(20))
        .expect("A reaches k:2");
    // A is stuck inside publish. B's clock is past A's lease.
    let clock_b = ManualClock::new(T0 + db.config().lease_duration + Duration::from_millis(1));
    let mut relay_b = Relay::new("b", db.config()).unwrap();
    let mut store_b = db.store();
    let mut rec = Recorder {
        log: log.clone(),
        fail_once: vec![ids[1]],
    };
    let report = relay_b.run_pass(&mut store_b, &mut rec, &clock_b).unwrap();
    assert!(report.partitions_held >= 1, "B took A's partitions");
    assert_eq!(report.retried, 1, "B failed k:2");
    let more = db.enqueue(&[(&k, b"4"), (&other, b"o2")], true, T0);
    // A wakes up: delivers k:2 (first) and k:3, then finds its lease gone.
    resume.send(()).unwrap();
    let (report_a, relay_a) = a.join().expect("relay A");
    assert_eq!(report_a.leases_lost, 1, "A's marks are fenced");
    assert_eq!(report_a.published, 0);
    assert!(relay_a.counters().leases_lost >= 1);
    // B goes on after its backoff.
    for _ in 0..5 {
        clock_b.advance(Duration::from_secs(1));
        relay_b.run_pass(&mut store_b, &mut rec, &clock_b).unwrap();
    }
    assert_eq!(store_b.backlog().unwrap(), 0);
    let log = log.lock().unwrap().clone();
    in_order_by_id(&log);
    let mut seen: Vec<EventId> = log.iter().map(|e| e.id).collect();
    seen.sort();
    seen.dedup();
    let mut want: Vec<EventId> = ids.iter().chain(&more).copied().collect();
    want.sort();
    assert_eq!(seen, want, "every event delivered");
    let of_k = log.iter().filter(|e| e.key == k).count();
    assert!(of_k > 4, "A's stale deliveries were re-deliveries: {of_k}");
}

/// Per key, first deliveries in sequence order; a re-delivery is the same
/// event (its `attempts` may differ: another relay failed it in between).
fn in_order_by_id(log: &[Event]) {
    let mut first = std::collections::BTreeMap::new();
    let mut per_key: std::collections::BTreeMap<&[u8], Vec<u64>> = Default::default();
    for e in log {
        let what = (&e.key, e.seq, &e.payload);
        match first.get(&e.id) {
            Some(f) => assert_eq!(*f, what, "a re-delivery differs"),
            None => {
                first.insert(e.id, what);
                per_key.entry(&e.key).or_default().push(e.seq);
            }
        }
    }
    for (key, seqs) in per_key {
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, want, "key {:?}", String::from_utf8_lossy(key));
    }
}

/// An operator replays a parked dead letter while a relay works the same
/// partition: the key resumes at the replayed event, in order.
fn replay_racing_a_pass<D: Db>(db: D) {
    let ids = db.enqueue(&[(b"k", b"1"), (b"k", b"2")], true, T0);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut operator = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    p.poison(ids[0]);
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    p.heal(ids[0]);
    // Replays interleaved with passes and new events, many times over.
    let mut all = ids.clone();
    for i in 0..5 {
        all.extend(db.enqueue(&[(b"k", format!("n{i}").as_bytes())], true, T0));
        for d in operator.dead_letters(None, 10).unwrap() {
            assert!(operator.replay_dead_letter(d.event.id).unwrap());
        }
        relay.run_pass(&mut store, &mut p, &clock).unwrap();
    }
    assert_in_order(p.delivered());
    assert_eq!(p.delivered().len(), all.len());
}

both!(
    writer_with_another_partition_count_is_refused,
    backoff_counts_from_the_failure,
    paused_relay_taken_over_keeps_first_delivery_order,
    replay_racing_a_pass,
    longest_valid_key_enqueues
);

/// Every key `Config::validate` allows (`max_key_len` up to its bound) must
/// enqueue and publish: the key is in two B-tree indexes, and PostgreSQL
/// refuses index entries over about 2.7 KB (random bytes do not compress).
fn longest_valid_key_enqueues<D: Db>(db: D) {
    let mut longest = db.config();
    longest.max_key_len = u32::MAX;
    while longest.validate().is_err() {
        longest.max_key_len /= 2;
        longest.max_key_len += 1;
    }
    // The largest accepted value: step up while valid.
    let mut step = longest.max_key_len;
    while step > 0 {
        let mut c = longest.clone();
        c.max_key_len = longest.max_key_len.saturating_add(step);
        if c.validate().is_ok() {
            longest = c;
        } else {
            step /= 2;
        }
    }
    let max = longest.max_key_len;
    let db = db.with_config(|c| c.max_key_len = max);
    let mut rng = fastrand::Rng::with_seed(7);
    let key: Vec<u8> = (0..max).map(|_| rng.u8(..)).collect();
    let id = db
        .try_enqueue(&key, b"p", T0)
        .unwrap_or_else(|e| panic!("a {max}-byte key: {e}"));
    db.try_enqueue(&key, b"q", T0).unwrap();
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(p.delivered()[0].id, id);
    assert_eq!(p.delivered()[1].seq, 2);
}

/// A database error says what went wrong (the `postgres` client's own
/// `Display` of a server error is only "db error").
#[test]
fn postgres_errors_carry_the_server_message() {
    let Some(db) = PgDb::new("pgerrmsg") else {
        return;
    };
    db.exec(&format!("DROP TABLE {}outbox_keys", db.prefix()));
    let e = db.try_enqueue(b"k", b"p", T0).unwrap_err().to_string();
    assert!(e.contains("does not exist") && e.contains("42P01"), "{e}");
}

/// Table names are spliced into SQL, safe only for a validated prefix: the
/// stores must validate the config too (they did not, and SQLite's took
/// this prefix as a subquery that "found" the partition count).
#[test]
fn stores_refuse_an_invalid_config() {
    let db = SqliteDb::new("storecfg");
    let mut bad = db.config();
    bad.table_prefix = "(SELECT 4 AS v) --".into();
    assert!(bad.validate().is_err());
    let r = dsys_txn::outbox::SqliteStore::open(db.path(), &bad, Duration::from_secs(1));
    assert!(
        matches!(r, Err(dsys_txn::outbox::StoreError::Config(_))),
        "{r:?}"
    );
    let Some(pg) = PgDb::new("storecfg") else {
        return;
    };
    let r = dsys_txn::outbox::PgStore::connect(pg.url(), &bad);
    assert!(
        matches!(r, Err(dsys_txn::outbox::StoreError::Config(_))),
        "{r:?}"
    );
}
