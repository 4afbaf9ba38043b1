//! What the outbox behaviour tests share: one `Db` interface over a fresh
//! SQLite file or a fresh table prefix in PostgreSQL, so every behaviour test
//! runs on both (the `both!` macro).
//!
//! PostgreSQL tests read `DSYS_PG_URL`; without it they print a loud
//! `SKIPPED` line and pass, unless `DSYS_REQUIRE_PG=1` (CI), when they fail.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use dsys_clocks::WallTime;
use dsys_txn::outbox::{
    Config, EventId, OutboxStore, PgInbox, PgOutbox, PgStore, SqliteInbox, SqliteOutbox,
    SqliteStore,
};

/// Generates `mod sqlite` and `mod postgres`, each with one `#[test]` per
/// generic test fn named, run on a fresh database.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name($crate::outbox_common::SqliteDb::new(stringify!($name)));
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                if let Some(db) = $crate::outbox_common::PgDb::new(stringify!($name)) {
                    super::$name(db);
                }
            })*
        }
    };
}

pub(crate) const T0: WallTime = WallTime::from_millis(1_700_000_000_000);

/// A transaction left open on its own thread (so both clients fit one shape):
/// it has enqueued, and waits to be told to commit or roll back.
pub(crate) struct OpenTx {
    pub(crate) id: EventId,
    decide: mpsc::Sender<bool>,
    done: JoinHandle<Result<(), String>>,
}

impl OpenTx {
    pub(crate) fn finish(self, commit: bool) -> Result<(), String> {
        self.decide.send(commit).expect("the tx thread waits");
        self.done.join().expect("tx thread panicked")
    }
}

/// A running enqueue that may be waiting for a lock.
pub(crate) struct Pending {
    pub(crate) rx: mpsc::Receiver<Result<EventId, String>>,
}

/// One delivery recorded by a child relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SinkRow {
    pub(crate) id: u64,
    pub(crate) key: Vec<u8>,
    pub(crate) seq: u64,
    pub(crate) payload: Vec<u8>,
}

pub(crate) trait Db: Clone + Send + 'static {
    type Store: OutboxStore + Send;
    fn name(&self) -> &'static str;
    fn config(&self) -> Config;
    /// A config change for this test: rebuilds the database's view (tables
    /// already exist; only timing and policy fields may change).
    fn with_config(&self, f: impl FnOnce(&mut Config)) -> Self;
    fn store(&self) -> Self::Store;
    /// One transaction enqueuing `events`, committed or rolled back.
    fn enqueue(&self, events: &[(&[u8], &[u8])], commit: bool, now: WallTime) -> Vec<EventId>;
    /// One committed event with headers.
    fn enqueue_with_headers(&self, key: &[u8], payload: &[u8], headers: &[(String, Vec<u8>)]);
    /// Enqueues in a transaction on its own thread and leaves it open.
    fn open(&self, key: &[u8], payload: &[u8], now: WallTime) -> OpenTx;
    /// Starts a committed enqueue on its own thread (it may wait on a lock).
    fn spawn_enqueue(&self, key: &[u8], payload: &[u8], now: WallTime) -> Pending;
    /// The inbox: processes `id` for `consumer` in a transaction.
    fn inbox(&self, consumer: &str, id: EventId, commit: bool, now: WallTime) -> bool;
    fn inbox_cleanup(&self, before: WallTime, limit: u32) -> u64;
    fn inbox_rows(&self) -> u64;
    /// All rows of the events table.
    fn event_rows(&self) -> u64;
    /// Runs `sql` (test setup or inspection).
    fn exec(&self, sql: &str);
    /// Whether one open write transaction blocks every other writer (SQLite).
    fn single_writer(&self) -> bool;
    /// How a child relay process finds this database: `kind|location|prefix`.
    fn spec(&self) -> String;
    /// Creates `{prefix}sink`, where child relays record every delivery.
    fn create_sink(&self);
    /// The sink's rows in arrival order: (event id, key, seq, payload).
    fn sink_rows(&self) -> Vec<SinkRow>;
    fn prefix(&self) -> String {
        self.config().table_prefix
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

pub(crate) fn unique_prefix(test: &str) -> String {
    let short: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(10)
        .collect::<String>()
        .to_ascii_lowercase();
    format!(
        "t{}_{}_{}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        short
    )
}

pub(crate) fn test_config(prefix: &str) -> Config {
    let mut c = Config::default();
    c.table_prefix = prefix.to_owned();
    c.partitions = 4;
    c.lease_duration = Duration::from_secs(10);
    c.renew_margin = Duration::from_secs(2);
    c.rebalance_interval = Duration::from_millis(10);
    c.max_attempts = 3;
    c.backoff_initial = Duration::from_millis(100);
    c.backoff_max = Duration::from_secs(1);
    c.retention = Duration::from_secs(60);
    c
}

// ---- SQLite ----

#[derive(Clone)]
pub(crate) struct SqliteDb {
    dir: Arc<tempfile::TempDir>,
    path: std::path::PathBuf,
    config: Config,
}

impl SqliteDb {
    pub(crate) fn new(test: &str) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let path = dir.path().join("outbox.db");
        let config = test_config(&unique_prefix(test));
        let mut conn = rusqlite::Connection::open(&path).expect("open");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        SqliteOutbox::new(config.clone())
            .expect("config")
            .migrate(&mut conn)
            .expect("migrate");
        SqliteInbox::new(&config.table_prefix)
            .expect("prefix")
            .migrate(&conn)
            .expect("inbox");
        Self { dir, path, config }
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(&self.path).expect("open");
        conn.busy_timeout(Duration::from_secs(20)).expect("busy");
        conn
    }

    fn outbox(&self) -> SqliteOutbox {
        SqliteOutbox::new(self.config.clone()).expect("config")
    }
}

impl Db for SqliteDb {
    type Store = SqliteStore;

    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn config(&self) -> Config {
        self.config.clone()
    }

    fn with_config(&self, f: impl FnOnce(&mut Config)) -> Self {
        let mut db = self.clone();
        f(&mut db.config);
        db
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.path, &self.config, Duration::from_secs(20)).expect("store")
    }

    fn enqueue(&self, events: &[(&[u8], &[u8])], commit: bool, now: WallTime) -> Vec<EventId> {
        let mut conn = self.conn();
        let outbox = self.outbox();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("begin");
        let ids = events
            .iter()
            .map(|(k, p)| outbox.enqueue(&tx, k, p, &[], now).expect("enqueue"))
            .collect();
        if commit {
            tx.commit().expect("commit");
        } else {
            tx.rollback().expect("rollback");
        }
        ids
    }

    fn enqueue_with_headers(&self, key: &[u8], payload: &[u8], headers: &[(String, Vec<u8>)]) {
        let mut conn = self.conn();
        let tx = conn.transaction().expect("begin");
        self.outbox()
            .enqueue(&tx, key, payload, headers, T0)
            .expect("enqueue");
        tx.commit().expect("commit");
    }

    fn open(&self, key: &[u8], payload: &[u8], now: WallTime) -> OpenTx {
        let (id_tx, id_rx) = mpsc::channel();
        let (decide, decide_rx) = mpsc::channel::<bool>();
        let (db, key, payload) = (self.clone(), key.to_vec(), payload.to_vec());
        let done = std::thread::spawn(move || {
            let mut conn = db.conn();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| e.to_string())?;
            let id = db
                .outbox()
                .enqueue(&tx, &key, &payload, &[], now)
                .map_err(|e| e.to_string())?;
            id_tx.send(id).expect("test waits");
            if decide_rx.recv().expect("decided") {
                tx.commit().map_err(|e| e.to_string())
            } else {
                tx.rollback().map_err(|e| e.to_string())
            }
        });
        let id = id_rx.recv().expect("enqueued");
        OpenTx { id, decide, done }
    }

    fn spawn_enqueue(&self, key: &[u8], payload: &[u8], now: WallTime) -> Pending {
        let (tx_out, rx) = mpsc::channel();
        let (db, key, payload) = (self.clone(), key.to_vec(), payload.to_vec());
        std::thread::spawn(move || {
            let r = (|| {
                let mut conn = db.conn();
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(|e| e.to_string())?;
                let id = db
                    .outbox()
                    .enqueue(&tx, &key, &payload, &[], now)
                    .map_err(|e| e.to_string())?;
                tx.commit().map_err(|e| e.to_string())?;
                Ok(id)
            })();
            let _ = tx_out.send(r);
        });
        Pending { rx }
    }

    fn inbox(&self, consumer: &str, id: EventId, commit: bool, now: WallTime) -> bool {
        let mut conn = self.conn();
        let tx = conn.transaction().expect("begin");
        let first = SqliteInbox::new(&self.config.table_prefix)
            .expect("prefix")
            .process(&tx, consumer, id, now)
            .expect("process");
        if commit {
            tx.commit().expect("commit");
        }
        first
    }

    fn inbox_cleanup(&self, before: WallTime, limit: u32) -> u64 {
        SqliteInbox::new(&self.config.table_prefix)
            .expect("prefix")
            .cleanup(&self.conn(), before, limit)
            .expect("cleanup")
    }

    fn inbox_rows(&self) -> u64 {
        self.conn()
            .query_row(
                &format!("SELECT count(*) FROM {}inbox", self.config.table_prefix),
                [],
                |r| r.get::<_, i64>(0),
            )
            .expect("count") as u64
    }

    fn event_rows(&self) -> u64 {
        self.conn()
            .query_row(
                &format!(
                    "SELECT count(*) FROM {}outbox_events",
                    self.config.table_prefix
                ),
                [],
                |r| r.get::<_, i64>(0),
            )
            .expect("count") as u64
    }

    fn exec(&self, sql: &str) {
        self.conn().execute_batch(sql).expect("exec");
    }

    fn spec(&self) -> String {
        format!(
            "sqlite|{}|{}",
            self.path.display(),
            self.config.table_prefix
        )
    }

    fn create_sink(&self) {
        self.exec(&format!(
            "CREATE TABLE {}sink (arrival INTEGER PRIMARY KEY AUTOINCREMENT, \
             event_id INTEGER NOT NULL, key BLOB NOT NULL, seq INTEGER NOT NULL, \
             payload BLOB NOT NULL)",
            self.config.table_prefix
        ));
    }

    fn sink_rows(&self) -> Vec<SinkRow> {
        let conn = self.conn();
        let mut s = conn
            .prepare(&format!(
                "SELECT event_id, key, seq, payload FROM {}sink ORDER BY arrival",
                self.config.table_prefix
            ))
            .expect("prepare");
        s.query_map([], |r| {
            Ok(SinkRow {
                id: r.get::<_, i64>(0)? as u64,
                key: r.get(1)?,
                seq: r.get::<_, i64>(2)? as u64,
                payload: r.get(3)?,
            })
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    fn single_writer(&self) -> bool {
        true
    }
}

// ---- PostgreSQL ----

/// `DSYS_PG_URL`, or `None` after a loud SKIPPED line (a panic when
/// `DSYS_REQUIRE_PG=1`).
pub(crate) fn pg_url(test: &str) -> Option<String> {
    match std::env::var("DSYS_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("DSYS_REQUIRE_PG").as_deref() == Ok("1") {
                panic!("DSYS_REQUIRE_PG=1 but DSYS_PG_URL is unset: run `bash .ci/postgres`");
            }
            // Straight to the stderr stream: the test harness captures
            // `eprintln!` of passing tests, and this line must be seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test} on PostgreSQL: set DSYS_PG_URL (bash .ci/postgres) to run it"
            );
            None
        }
    }
}

/// Drops the test's tables when the last handle goes.
struct PgGuard {
    url: String,
    prefix: String,
    /// Idle connections for `enqueue` (connecting costs more than the test).
    pool: std::sync::Mutex<Vec<::postgres::Client>>,
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.url, postgres::NoTls) {
            let p = &self.prefix;
            let _ = c.batch_execute(&format!(
                "DROP TABLE IF EXISTS {p}outbox_meta, {p}outbox_keys, {p}outbox_events, \
                 {p}outbox_leases, {p}outbox_relays, {p}inbox, {p}sink"
            ));
        }
    }
}

#[derive(Clone)]
pub(crate) struct PgDb {
    guard: Arc<PgGuard>,
    config: Config,
}

impl PgDb {
    pub(crate) fn new(test: &str) -> Option<Self> {
        let url = pg_url(test)?;
        let config = test_config(&unique_prefix(test));
        let guard = Arc::new(PgGuard {
            url: url.clone(),
            prefix: config.table_prefix.clone(),
            pool: Default::default(),
        });
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        PgOutbox::new(config.clone())
            .expect("config")
            .migrate(&mut c)
            .expect("migrate");
        PgInbox::new(&config.table_prefix)
            .expect("prefix")
            .migrate(&mut c)
            .expect("inbox");
        Some(Self { guard, config })
    }

    pub(crate) fn url(&self) -> &str {
        &self.guard.url
    }

    pub(crate) fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.guard.url, postgres::NoTls).expect("connect")
    }

    fn outbox(&self) -> PgOutbox {
        PgOutbox::new(self.config.clone()).expect("config")
    }
}

impl Db for PgDb {
    type Store = PgStore;

    fn name(&self) -> &'static str {
        "postgres"
    }

    fn config(&self) -> Config {
        self.config.clone()
    }

    fn with_config(&self, f: impl FnOnce(&mut Config)) -> Self {
        let mut db = self.clone();
        f(&mut db.config);
        db
    }

    fn store(&self) -> PgStore {
        PgStore::connect(&self.guard.url, &self.config).expect("store")
    }

    fn enqueue(&self, events: &[(&[u8], &[u8])], commit: bool, now: WallTime) -> Vec<EventId> {
        let pooled = self.guard.pool.lock().expect("pool").pop();
        let mut c = pooled.unwrap_or_else(|| self.client());
        let outbox = self.outbox();
        let mut tx = c.transaction().expect("begin");
        let ids = events
            .iter()
            .map(|(k, p)| outbox.enqueue(&mut tx, k, p, &[], now).expect("enqueue"))
            .collect();
        if commit {
            tx.commit().expect("commit");
        } else {
            tx.rollback().expect("rollback");
        }
        self.guard.pool.lock().expect("pool").push(c);
        ids
    }

    fn enqueue_with_headers(&self, key: &[u8], payload: &[u8], headers: &[(String, Vec<u8>)]) {
        let mut c = self.client();
        let mut tx = c.transaction().expect("begin");
        self.outbox()
            .enqueue(&mut tx, key, payload, headers, T0)
            .expect("enqueue");
        tx.commit().expect("commit");
    }

    fn open(&self, key: &[u8], payload: &[u8], now: WallTime) -> OpenTx {
        let (id_tx, id_rx) = mpsc::channel();
        let (decide, decide_rx) = mpsc::channel::<bool>();
        let (db, key, payload) = (self.clone(), key.to_vec(), payload.to_vec());
        let done = std::thread::spawn(move || {
            let mut c = db.client();
            let mut tx = c.transaction().map_err(|e| e.to_string())?;
            let id = db
                .outbox()
                .enqueue(&mut tx, &key, &payload, &[], now)
                .map_err(|e| e.to_string())?;
            id_tx.send(id).expect("test waits");
            if decide_rx.recv().expect("decided") {
                tx.commit().map_err(|e| e.to_string())
            } else {
                tx.rollback().map_err(|e| e.to_string())
            }
        });
        let id = id_rx.recv().expect("enqueued");
        OpenTx { id, decide, done }
    }

    fn spawn_enqueue(&self, key: &[u8], payload: &[u8], now: WallTime) -> Pending {
        let (tx_out, rx) = mpsc::channel();
        let (db, key, payload) = (self.clone(), key.to_vec(), payload.to_vec());
        std::thread::spawn(move || {
            let r = (|| {
                let mut c = db.client();
                let mut tx = c.transaction().map_err(|e| e.to_string())?;
                let id = db
                    .outbox()
                    .enqueue(&mut tx, &key, &payload, &[], now)
                    .map_err(|e| e.to_string())?;
                tx.commit().map_err(|e| e.to_string())?;
                Ok(id)
            })();
            let _ = tx_out.send(r);
        });
        Pending { rx }
    }

    fn inbox(&self, consumer: &str, id: EventId, commit: bool, now: WallTime) -> bool {
        let mut c = self.client();
        let mut tx = c.transaction().expect("begin");
        let first = PgInbox::new(&self.config.table_prefix)
            .expect("prefix")
            .process(&mut tx, consumer, id, now)
            .expect("process");
        if commit {
            tx.commit().expect("commit");
        }
        first
    }

    fn inbox_cleanup(&self, before: WallTime, limit: u32) -> u64 {
        PgInbox::new(&self.config.table_prefix)
            .expect("prefix")
            .cleanup(&mut self.client(), before, limit)
            .expect("cleanup")
    }

    fn inbox_rows(&self) -> u64 {
        self.client()
            .query_one(
                &format!("SELECT count(*) FROM {}inbox", self.config.table_prefix),
                &[],
            )
            .expect("count")
            .get::<_, i64>(0) as u64
    }

    fn event_rows(&self) -> u64 {
        self.client()
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}outbox_events",
                    self.config.table_prefix
                ),
                &[],
            )
            .expect("count")
            .get::<_, i64>(0) as u64
    }

    fn exec(&self, sql: &str) {
        self.client().batch_execute(sql).expect("exec");
    }

    fn spec(&self) -> String {
        format!("postgres|{}|{}", self.guard.url, self.config.table_prefix)
    }

    fn create_sink(&self) {
        self.exec(&format!(
            "CREATE TABLE {}sink (arrival BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             event_id BIGINT NOT NULL, key BYTEA NOT NULL, seq BIGINT NOT NULL, \
             payload BYTEA NOT NULL)",
            self.config.table_prefix
        ));
    }

    fn sink_rows(&self) -> Vec<SinkRow> {
        self.client()
            .query(
                &format!(
                    "SELECT event_id, key, seq, payload FROM {}sink ORDER BY arrival",
                    self.config.table_prefix
                ),
                &[],
            )
            .expect("query")
            .iter()
            .map(|r| SinkRow {
                id: r.get::<_, i64>(0) as u64,
                key: r.get(1),
                seq: r.get::<_, i64>(2) as u64,
                payload: r.get(3),
            })
            .collect()
    }

    fn single_writer(&self) -> bool {
        false
    }
}

// ---- Relay helpers ----

use dsys_clocks::ManualClock;
use dsys_txn::outbox::{
    DeadLetter, Event, Failure, Fenced, Lease, MemPublisher, PendingEvent, Publisher, Relay,
    StoreError,
};

/// Runs passes of `relay`, advancing `clock` by `step` after each, until the
/// backlog is empty or `max` passes ran; returns the passes run.
pub(crate) fn drain<S: OutboxStore, P: Publisher>(
    relay: &mut Relay,
    store: &mut S,
    publisher: &mut P,
    clock: &ManualClock,
    step: Duration,
    max: usize,
) -> usize {
    for pass in 1..=max {
        relay.run_pass(store, publisher, clock).expect("pass");
        if store.backlog().expect("backlog") == 0 {
            return pass;
        }
        clock.advance(step);
    }
    panic!(
        "backlog {} after {max} passes",
        store.backlog().expect("backlog")
    );
}

/// Per key, the sequence numbers of first deliveries, and whether every
/// re-delivery repeats an earlier delivery exactly.
pub(crate) fn first_deliveries(events: &[Event]) -> std::collections::BTreeMap<Vec<u8>, Vec<u64>> {
    let mut seen: std::collections::BTreeMap<EventId, &Event> = Default::default();
    let mut keys: std::collections::BTreeMap<Vec<u8>, Vec<u64>> = Default::default();
    for e in events {
        match seen.get(&e.id) {
            Some(first) => assert_eq!(*first, e, "a re-delivery differs from the first"),
            None => {
                seen.insert(e.id, e);
                keys.entry(e.key.clone()).or_default().push(e.seq);
            }
        }
    }
    keys
}

/// Asserts that every key's first deliveries are 1, 2, 3, ... in order.
pub(crate) fn assert_in_order(events: &[Event]) {
    for (key, seqs) in first_deliveries(events) {
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs,
            want,
            "key {:?}: first deliveries out of order",
            String::from_utf8_lossy(&key)
        );
    }
}

pub(crate) fn payloads(p: &MemPublisher) -> Vec<String> {
    p.delivered()
        .iter()
        .map(|e| String::from_utf8(e.payload.clone()).expect("utf-8"))
        .collect()
}

/// A store that fails `mark_published_many` while `crash` is set: the relay
/// published, then "crashed" before marking.
pub(crate) struct CrashOnMark<S> {
    pub(crate) inner: S,
    pub(crate) crash: bool,
}

impl<S: OutboxStore> OutboxStore for CrashOnMark<S> {
    fn heartbeat(&mut self, o: &str, u: WallTime, n: WallTime) -> Result<u32, StoreError> {
        self.inner.heartbeat(o, u, n)
    }
    fn leases(&mut self) -> Result<Vec<Lease>, StoreError> {
        self.inner.leases()
    }
    fn acquire_many(
        &mut self,
        p: &[u32],
        o: &str,
        u: WallTime,
        n: WallTime,
    ) -> Result<Vec<Option<Lease>>, StoreError> {
        self.inner.acquire_many(p, o, u, n)
    }
    fn release(&mut self, l: &Lease) -> Result<(), StoreError> {
        self.inner.release(l)
    }
    fn pending(
        &mut self,
        p: u32,
        a: Option<&[u8]>,
        l: u32,
    ) -> Result<Vec<PendingEvent>, StoreError> {
        self.inner.pending(p, a, l)
    }
    fn mark_published_many(
        &mut self,
        marks: &[(Lease, Vec<EventId>)],
        n: WallTime,
    ) -> Result<Vec<Fenced>, StoreError> {
        if self.crash {
            // Any StoreError will do: the relay must treat it as a crash.
            return Err(StoreError::PartitionMismatch {
                found: None,
                config: 0,
            });
        }
        self.inner.mark_published_many(marks, n)
    }
    fn record_failure(&mut self, l: &Lease, f: &Failure) -> Result<Fenced, StoreError> {
        self.inner.record_failure(l, f)
    }
    fn dead_letters(&mut self, a: Option<EventId>, l: u32) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters(a, l)
    }
    fn replay_dead_letter(&mut self, id: EventId) -> Result<bool, StoreError> {
        self.inner.replay_dead_letter(id)
    }
    fn purge_dead_letter(&mut self, id: EventId) -> Result<bool, StoreError> {
        self.inner.purge_dead_letter(id)
    }
    fn cleanup(&mut self, b: WallTime, l: u32) -> Result<u64, StoreError> {
        self.inner.cleanup(b, l)
    }
    fn backlog(&mut self) -> Result<u64, StoreError> {
        self.inner.backlog()
    }
}
