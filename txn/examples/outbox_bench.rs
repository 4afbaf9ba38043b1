//! Outbox relay throughput against the same database's plain `INSERT` +
//! `DELETE` of the same rows, measured in the same run.
//!
//! ```text
//! cargo run --release -p dsys-txn --example outbox_bench
//! DSYS_PG_URL='host=127.0.0.1 port=54329 user=postgres dbname=dsys_test' \
//!     cargo run --release -p dsys-txn --example outbox_bench
//! ```
//!
//! Workload: `OUTBOX_BENCH_N` events (default 20 000) over 64 keys, 100-byte
//! payloads, enqueued in transactions of 100; then relayed to a
//! `MemPublisher` (publish, mark published) and deleted by retention. The
//! baseline inserts the same rows into a plain table (no key counter, no
//! indexes beyond the primary key) in transactions of 100 and deletes them
//! in batches of the same size as the outbox's cleanup. SQLite: a file in
//! WAL mode, once with `synchronous=FULL` (every commit fsynced: what the
//! relay's `SqliteStore::open` uses) and once with `NORMAL` (fsync at
//! checkpoints), the same for baseline and outbox. The figure is the ratio of the
//! two rates (medians over `OUTBOX_BENCH_ROUNDS`, default 3); absolute
//! numbers on shared machines are noise.

use std::time::{Duration, Instant};

use dsys_clocks::{ManualClock, WallTime};
use dsys_txn::outbox::{
    Config, MemPublisher, OutboxStore, PgOutbox, PgStore, Relay, SqliteOutbox, SqliteStore,
};

const TX: usize = 100;
const KEYS: usize = 64;

fn config(prefix: &str) -> Config {
    let mut c = Config::default();
    c.table_prefix = prefix.to_owned();
    c.partitions = 16;
    c.max_attempts = 1;
    c.retention = Duration::from_millis(1);
    c.batch_size = 1000;
    c.max_events_per_pass = 100_000;
    c.cleanup_batch = 1000;
    c
}

struct Row {
    outbox_s: f64,
    enqueue_s: f64,
    relay_s: f64,
    cleanup_s: f64,
    plain_s: f64,
}

fn relay_all<S: OutboxStore>(store: &mut S, cfg: &Config, n: usize) -> (f64, f64) {
    let clock = ManualClock::new(WallTime::from_millis(1_700_000_000_000));
    let mut relay = Relay::new("bench", cfg.clone()).expect("config");
    let mut publisher = MemPublisher::new();
    let t = Instant::now();
    let mut published = 0;
    while published < n as u64 {
        let r = relay.run_pass(store, &mut publisher, &clock).expect("pass");
        published += r.published;
        publisher.take();
    }
    let relay_s = t.elapsed().as_secs_f64();
    // Retention: every row is now older than `retention`.
    clock.advance(Duration::from_secs(1));
    let t = Instant::now();
    let mut cleaned = 0;
    while cleaned < n as u64 {
        cleaned += store
            .cleanup(WallTime::from_millis(1_800_000_000_000), cfg.cleanup_batch)
            .expect("cleanup");
    }
    (relay_s, t.elapsed().as_secs_f64())
}

fn payload(i: usize) -> Vec<u8> {
    let mut p = format!("event-{i:08}-").into_bytes();
    p.resize(100, b'x');
    p
}

fn sqlite(n: usize, synchronous: &str) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let cfg = config("bench_");
    let open = || {
        let c = rusqlite::Connection::open(&path).expect("open");
        c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        c.pragma_update(None, "synchronous", synchronous)
            .expect("sync");
        c
    };
    let mut conn = open();

    // Baseline: plain INSERT, then DELETE in batches.
    conn.execute_batch(
        "CREATE TABLE plain (id INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB NOT NULL, \
         payload BLOB NOT NULL)",
    )
    .expect("plain");
    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(TX) {
        let tx = conn.transaction().expect("begin");
        {
            let mut s = tx
                .prepare_cached("INSERT INTO plain (key, payload) VALUES (?1, ?2)")
                .expect("prepare");
            for &i in chunk {
                s.execute(rusqlite::params![format!("k{}", i % KEYS), payload(i)])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    let mut left = n;
    while left > 0 {
        left -= conn
            .execute(
                "DELETE FROM plain WHERE id IN (SELECT id FROM plain LIMIT ?1)",
                [cfg.cleanup_batch],
            )
            .expect("delete");
    }
    let plain_s = t.elapsed().as_secs_f64();

    // The outbox.
    let outbox = SqliteOutbox::new(cfg.clone()).expect("config");
    outbox.migrate(&mut conn).expect("migrate");
    let t = Instant::now();
    let now = WallTime::from_millis(1_700_000_000_000);
    for chunk in (0..n).collect::<Vec<_>>().chunks(TX) {
        let tx = conn.transaction().expect("begin");
        for &i in chunk {
            outbox
                .enqueue(
                    &tx,
                    format!("k{}", i % KEYS).as_bytes(),
                    &payload(i),
                    &[],
                    now,
                )
                .expect("enqueue");
        }
        tx.commit().expect("commit");
    }
    let enqueue_s = t.elapsed().as_secs_f64();
    // The relay's store with the same pragmas as the baseline's connection.
    let mut store = SqliteStore::new(open(), &cfg).expect("store");
    let (relay_s, cleanup_s) = relay_all(&mut store, &cfg, n);
    Row {
        outbox_s: enqueue_s + relay_s + cleanup_s,
        enqueue_s,
        relay_s,
        cleanup_s,
        plain_s,
    }
}

fn postgres(url: &str, n: usize) -> Row {
    let prefix = format!("bench{}_", std::process::id());
    let cfg = config(&prefix);
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let plain = format!("{prefix}plain");
    c.batch_execute(&format!(
        "CREATE TABLE {plain} (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
         key BYTEA NOT NULL, payload BYTEA NOT NULL)"
    ))
    .expect("plain");
    let t = Instant::now();
    let insert = c
        .prepare(&format!(
            "INSERT INTO {plain} (key, payload) VALUES ($1, $2)"
        ))
        .expect("prepare");
    for chunk in (0..n).collect::<Vec<_>>().chunks(TX) {
        let mut tx = c.transaction().expect("begin");
        for &i in chunk {
            tx.execute(
                &insert,
                &[&format!("k{}", i % KEYS).as_bytes(), &payload(i)],
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
    }
    let mut left = n as u64;
    while left > 0 {
        left -= c
            .execute(
                &format!("DELETE FROM {plain} WHERE id IN (SELECT id FROM {plain} LIMIT $1)"),
                &[&i64::from(cfg.cleanup_batch)],
            )
            .expect("delete");
    }
    let plain_s = t.elapsed().as_secs_f64();

    let outbox = PgOutbox::new(cfg.clone()).expect("config");
    outbox.migrate(&mut c).expect("migrate");
    let t = Instant::now();
    let now = WallTime::from_millis(1_700_000_000_000);
    let prepared = outbox.prepare(&mut c).expect("prepare");
    for chunk in (0..n).collect::<Vec<_>>().chunks(TX) {
        let mut tx = c.transaction().expect("begin");
        for &i in chunk {
            prepared
                .enqueue(
                    &mut tx,
                    format!("k{}", i % KEYS).as_bytes(),
                    &payload(i),
                    &[],
                    now,
                )
                .expect("enqueue");
        }
        tx.commit().expect("commit");
    }
    let enqueue_s = t.elapsed().as_secs_f64();
    let mut store = PgStore::connect(url, &cfg).expect("store");
    let (relay_s, cleanup_s) = relay_all(&mut store, &cfg, n);
    let p = &prefix;
    c.batch_execute(&format!(
        "DROP TABLE {plain}, {p}outbox_meta, {p}outbox_keys, {p}outbox_events, \
         {p}outbox_leases, {p}outbox_relays"
    ))
    .expect("drop");
    Row {
        outbox_s: enqueue_s + relay_s + cleanup_s,
        enqueue_s,
        relay_s,
        cleanup_s,
        plain_s,
    }
}

/// The median of each phase over `rounds` runs (each run measures the
/// baseline and the outbox back to back, so disk noise hits both).
fn median(rounds: usize, mut run: impl FnMut() -> Row) -> Row {
    let runs: Vec<Row> = (0..rounds).map(|_| run()).collect();
    let med = |f: fn(&Row) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Row {
        outbox_s: med(|r| r.outbox_s),
        enqueue_s: med(|r| r.enqueue_s),
        relay_s: med(|r| r.relay_s),
        cleanup_s: med(|r| r.cleanup_s),
        plain_s: med(|r| r.plain_s),
    }
}

fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let n = env("OUTBOX_BENCH_N", 20_000);
    let rounds = env("OUTBOX_BENCH_ROUNDS", 3).max(1);
    let mut rows = vec![
        (
            "sqlite (WAL, synchronous=FULL)",
            median(rounds, || sqlite(n, "FULL")),
        ),
        (
            "sqlite (WAL, synchronous=NORMAL)",
            median(rounds, || sqlite(n, "NORMAL")),
        ),
    ];
    match std::env::var("DSYS_PG_URL") {
        Ok(url) if !url.is_empty() => rows.push(("postgres", median(rounds, || postgres(&url, n)))),
        _ => eprintln!("SKIPPED: postgres: set DSYS_PG_URL (bash .ci/postgres)"),
    }
    println!(
        "{n} events, {KEYS} keys, 100-byte payloads, {TX} per transaction; median of {rounds} rounds"
    );
    println!(
        "| database | outbox ev/s (enqueue+relay+mark+cleanup) | plain INSERT+DELETE rows/s | ratio | enqueue s | relay s | cleanup s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, r) in rows {
        let outbox = n as f64 / r.outbox_s;
        let plain = n as f64 / r.plain_s;
        println!(
            "| {name} | {outbox:.0} | {plain:.0} | {:.0}% | {:.3} | {:.3} | {:.3} |",
            100.0 * outbox / plain,
            r.enqueue_s,
            r.relay_s,
            r.cleanup_s
        );
    }
}
