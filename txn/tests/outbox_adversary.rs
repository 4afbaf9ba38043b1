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
//! - a seeded model of two relays whose clocks drift, jump and step back,
//!   one paused inside a publish while the other runs whole passes, with
//!   failures, poison, replays and purges (`OUTBOX_ADVERSARY_SEEDS`,
//!   `OUTBOX_ADVERSARY_STEPS`): first deliveries stay in order per key;
//! - an operator replay racing a relay that read the row as parked;
//! - concurrent duplicate deliveries into a SQLite inbox;
//! - the longest key `Config::validate` allows enqueues on PostgreSQL (its
//!   B-tree entries are bounded), and PostgreSQL errors carry the server's
//!   message.

mod outbox_common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
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
    // Strictly increasing (a purged event leaves a gap; callers check that
    // every unpurged event arrived).
    for (key, seqs) in per_key {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "key {:?}: first deliveries out of order: {seqs:?}",
            String::from_utf8_lossy(key)
        );
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

/// One relay of the skewed-clock model: its own clock, store and name.
struct Node<S> {
    relay: Relay,
    store: S,
    clock: Rc<ManualClock>,
}

/// The publisher of node `me`: shares one delivery log and failure plan
/// with the other node, and now and then, inside a publish, runs a whole
/// pass of the other node (this relay is "paused" mid-publish while the
/// other works the same partitions, e.g. after its clock ran ahead), or
/// takes a second of its own clock (a slow broker).
struct Reentrant<S> {
    me: usize,
    nodes: Rc<[RefCell<Node<S>>; 2]>,
    clocks: [Rc<ManualClock>; 2],
    shared: Rc<RefCell<MemPublisher>>,
    rng: Rc<RefCell<fastrand::Rng>>,
    nested: Rc<Cell<bool>>,
}

impl<S: OutboxStore> Reentrant<S> {
    fn for_node(&self, me: usize) -> Self {
        Self {
            me,
            nodes: self.nodes.clone(),
            clocks: self.clocks.clone(),
            shared: self.shared.clone(),
            rng: self.rng.clone(),
            nested: self.nested.clone(),
        }
    }

    fn pass(&self, i: usize) {
        let mut node = self.nodes[i].borrow_mut();
        let node = &mut *node;
        node.relay
            .run_pass(&mut node.store, &mut self.for_node(i), &*node.clock)
            .expect("pass");
    }
}

impl<S: OutboxStore> Publisher for Reentrant<S> {
    fn publish(&mut self, e: &Event) -> Result<(), PublishError> {
        let roll = self.rng.borrow_mut().u32(0..10);
        if roll == 0 && !self.nested.get() {
            self.nested.set(true);
            self.pass(1 - self.me);
            self.nested.set(false);
        } else if roll == 1 {
            self.clocks[self.me].advance(Duration::from_secs(1));
        }
        self.shared.borrow_mut().publish(e)
    }
}

/// Two relays whose clocks drift apart, jump and go backwards, one paused
/// inside a publish while the other runs whole passes (re-entrantly, so the
/// schedule is deterministic per seed), with retryable failures, poison,
/// replays and purges. Leases then overlap freely (the skew bound of
/// `Config` is broken on purpose): duplicates are allowed, but per key the
/// first deliveries must stay in sequence order and every committed,
/// unpurged event must arrive.
///
/// `OUTBOX_ADVERSARY_SEEDS` (default 4) and `OUTBOX_ADVERSARY_STEPS`
/// (default 150) size it; a failing seed is printed.
fn skewed_clocks_and_paused_relays_keep_order<D: Db>(db: D) {
    let seeds = env("OUTBOX_ADVERSARY_SEEDS", 4);
    for seed in 0..seeds {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| skewed(&db, seed)));
        if let Err(e) = run {
            eprintln!(
                "skewed_clocks_and_paused_relays_keep_order failed on {} with seed {seed}",
                db.name()
            );
            std::panic::resume_unwind(e);
        }
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn skewed<D: Db>(db: &D, seed: u64) {
    let rng = Rc::new(RefCell::new(fastrand::Rng::with_seed(seed)));
    // Each seed starts a day after the last (the database is shared).
    let start = T0 + Duration::from_secs(86_400 * 30 * seed);
    let clocks = [
        Rc::new(ManualClock::new(start)),
        Rc::new(ManualClock::new(start)),
    ];
    let nodes = Rc::new([0, 1].map(|i| {
        RefCell::new(Node {
            relay: Relay::new(format!("s{seed}-n{i}"), db.config()).unwrap(),
            store: db.store(),
            clock: clocks[i].clone(),
        })
    }));
    let top = Reentrant {
        me: 0,
        nodes: nodes.clone(),
        clocks: clocks.clone(),
        shared: Rc::new(RefCell::new(MemPublisher::new())),
        rng: rng.clone(),
        nested: Rc::new(Cell::new(false)),
    };
    let mut operator = db.store();
    let mut committed: BTreeMap<EventId, Vec<u8>> = BTreeMap::new();
    let mut purged: BTreeSet<EventId> = BTreeSet::new();
    let lease = db.config().lease_duration;
    for _ in 0..env("OUTBOX_ADVERSARY_STEPS", 150) {
        let roll = rng.borrow_mut().u32(0..100);
        match roll {
            0..=24 => {
                let (n, commit) = {
                    let mut r = rng.borrow_mut();
                    (r.usize(1..4), r.u32(0..5) != 0)
                };
                let keys: Vec<Vec<u8>> = (0..n)
                    .map(|_| format!("s{seed}-k{}", rng.borrow_mut().u32(0..5)).into_bytes())
                    .collect();
                let events: Vec<(&[u8], &[u8])> =
                    keys.iter().map(|k| (&k[..], &b"p"[..])).collect();
                let ids = db.enqueue(&events, commit, clocks[0].now());
                if commit {
                    for (id, key) in ids.into_iter().zip(keys) {
                        committed.insert(id, key);
                        let mut r = rng.borrow_mut();
                        let mut p = top.shared.borrow_mut();
                        match r.u32(0..20) {
                            0 => p.poison(id),
                            1..=5 => p.fail_times(id, r.u32(1..4)),
                            _ => {}
                        }
                    }
                }
            }
            25..=59 => {
                let i = rng.borrow_mut().usize(0..2);
                top.pass(i);
            }
            60..=74 => {
                let (i, ms) = {
                    let mut r = rng.borrow_mut();
                    (r.usize(0..2), r.u64(0..3000))
                };
                clocks[i].advance(Duration::from_millis(ms));
            }
            75..=80 => {
                // One clock runs ahead past the other's leases.
                let i = rng.borrow_mut().usize(0..2);
                clocks[i].advance(lease + Duration::from_millis(1));
            }
            81..=85 => {
                // A clock steps back (NTP), never before the start.
                let (i, ms) = {
                    let mut r = rng.borrow_mut();
                    (r.usize(0..2), r.u64(0..15_000))
                };
                let back = clocks[i].now() - Duration::from_millis(ms);
                clocks[i].set(if back < start { start } else { back });
            }
            86..=89 => {
                if let Some(&id) = committed
                    .keys()
                    .nth(rng.borrow_mut().usize(0..committed.len().max(1)))
                {
                    top.shared.borrow_mut().heal(id);
                }
            }
            _ => {
                let dead = operator.dead_letters(None, 100).unwrap();
                let pick = rng.borrow_mut().usize(0..dead.len().max(1));
                if let Some(d) = dead.get(pick) {
                    if rng.borrow_mut().bool() {
                        top.shared.borrow_mut().heal(d.event.id);
                        assert!(operator.replay_dead_letter(d.event.id).unwrap());
                    } else {
                        assert!(operator.purge_dead_letter(d.event.id).unwrap());
                        purged.insert(d.event.id);
                    }
                }
            }
        }
    }
    // Heal everything, bring the clocks together, replay, drain.
    for id in committed.keys() {
        top.shared.borrow_mut().heal(*id);
    }
    let max = clocks.iter().map(|c| c.now()).max().unwrap() + lease + lease;
    for c in &clocks {
        c.set(max);
    }
    for _ in 0..200 {
        for d in operator.dead_letters(None, 1000).unwrap() {
            operator.replay_dead_letter(d.event.id).unwrap();
        }
        for c in &clocks {
            c.advance(Duration::from_secs(2));
        }
        top.pass(0);
        top.pass(1);
        if operator.backlog().unwrap() == 0 {
            break;
        }
    }
    assert_eq!(operator.backlog().unwrap(), 0, "drained");
    let log = top.shared.borrow().delivered().to_vec();
    in_order_by_id(&log);
    let got: BTreeSet<EventId> = log.iter().map(|e| e.id).collect();
    // A purged event may still have arrived: with overlapping leases a
    // paused relay can deliver it after the other relay dead-lettered it.
    for (id, key) in &committed {
        assert!(
            got.contains(id) || purged.contains(id),
            "event {id} of key {:?} never arrived",
            String::from_utf8_lossy(key)
        );
    }
    let lost: u64 = nodes
        .iter()
        .map(|n| n.borrow().relay.counters().leases_lost)
        .sum();
    eprintln!(
        "{} seed {seed}: {} committed, {} purged, {} deliveries ({} first), {lost} leases lost",
        db.name(),
        committed.len(),
        purged.len(),
        log.len(),
        got.len()
    );
}

both!(
    skewed_clocks_and_paused_relays_keep_order,
    writer_with_another_partition_count_is_refused,
    backoff_counts_from_the_failure,
    paused_relay_taken_over_keeps_first_delivery_order,
    replay_racing_a_pass,
    longest_valid_key_enqueues,
    log_publisher_marks_only_durable_events
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

/// Two deliveries of one event processed at once on two SQLite connections:
/// the second waits for the first's transaction (SQLite has one writer) and
/// is then dropped if it committed, processed if it rolled back.
#[test]
fn sqlite_inbox_concurrent_duplicates() {
    let db = SqliteDb::new("sqinboxrace");
    let inbox = dsys_txn::outbox::SqliteInbox::new(&db.prefix()).unwrap();
    for first_commits in [true, false] {
        let id = EventId(if first_commits { 1 } else { 2 });
        let mut c1 = db.conn();
        let t1 = c1.transaction().unwrap();
        assert!(inbox.process(&t1, "c", id, T0).unwrap());
        let (tx, rx) = mpsc::channel();
        let (db2, inbox2) = (db.clone(), inbox.clone());
        let second = std::thread::spawn(move || {
            let mut c2 = db2.conn();
            let t2 = c2.transaction().unwrap();
            let first = inbox2.process(&t2, "c", id, T0).unwrap();
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

/// The event ids a dsys-log holds, in log order.
fn log_ids<S: dsys_log::Storage>(log: &dsys_log::Log<S>) -> Vec<u64> {
    let mut ids = Vec::new();
    for batch in log.read(0, 1 << 24).unwrap() {
        for record in batch.records() {
            let r = record.unwrap();
            let h = r
                .headers
                .iter()
                .find(|h| &h.key[..] == b"outbox-event-id")
                .expect("the id header");
            let v = h.value.clone().expect("a value").to_vec();
            ids.push(String::from_utf8(v).unwrap().parse().unwrap());
        }
    }
    ids
}

/// `LogPublisher` acknowledges only durable appends: after an fsync fails
/// (and the machine then loses power), every event the relay marked
/// published is still in the log. The failed log refuses appends until it
/// is reopened: the publisher answers `Unavailable`, so the relay stops the
/// pass without counting an attempt (nothing is dead-lettered while the
/// operator reopens the log).
fn log_publisher_marks_only_durable_events<D: Db>(db: D) {
    use dsys_log::{Log, LogConfig, MemDir};
    use dsys_txn::outbox::LogPublisher;
    let dir = MemDir::new();
    let (log, _) = Log::open(dir.clone(), LogConfig::default()).unwrap();
    let mut publisher = LogPublisher::new(log);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    db.enqueue(&[(b"a", b"a1"), (b"b", b"b1"), (b"a", b"a2")], true, T0);
    let report = relay.run_pass(&mut store, &mut publisher, &clock).unwrap();
    assert_eq!(report.published, 3);
    db.enqueue(&[(b"a", b"a3"), (b"b", b"b2")], true, T0);
    dir.faults(|f| f.fail_syncs = 1);
    let report = relay.run_pass(&mut store, &mut publisher, &clock).unwrap();
    assert_eq!((report.published, report.retried), (0, 0), "{report:?}");
    assert!(report.unavailable, "{report:?}");
    for _ in 0..10 {
        clock.advance(Duration::from_secs(10));
        let report = relay.run_pass(&mut store, &mut publisher, &clock).unwrap();
        assert_eq!((report.dead_lettered, report.retried), (0, 0), "{report:?}");
    }
    assert!(publisher.log().is_failed());
    assert_eq!(store.backlog().unwrap(), 2);
    // Power loss, then the log is reopened: the 3 marked events are there.
    drop(publisher);
    dir.crash();
    let (log, _) = Log::open(dir.clone(), LogConfig::default()).unwrap();
    let durable = log_ids(&log);
    assert_eq!(durable.len(), 3, "{durable:?}");
    let mut publisher = LogPublisher::new(log);
    clock.advance(Duration::from_secs(1));
    relay.run_pass(&mut store, &mut publisher, &clock).unwrap();
    assert_eq!(store.backlog().unwrap(), 0);
    assert_eq!(log_ids(publisher.log()).len(), 5);
}
