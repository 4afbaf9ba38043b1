//! Three relay processes, killed with SIGKILL and restarted again and again
//! while writers keep enqueuing across many keys: at the end every committed
//! event arrived, no rolled-back one did, and per key the first arrivals are
//! in sequence order (re-deliveries only as exact copies). Runs on SQLite
//! (one file shared by the processes) and PostgreSQL.
//!
//! The relays are this test binary run again as children (`relay_child`,
//! selected by the `OUTBOX_RELAY_CHILD` variable); they publish into a sink
//! table in the same database, one row per delivery, in arrival order.
//!
//! `OUTBOX_KILL_SECS` (default 4) sets how long the writers run;
//! `OUTBOX_KILL_SEED` picks the seed (default: a fixed one); the seed is
//! printed on failure.

mod outbox_common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dsys_clocks::{SystemClock, WallTime};
use dsys_txn::outbox::{
    Config, Event, EventId, OutboxStore, PgStore, PublishError, Publisher, Relay, SqliteStore,
};
use outbox_common::*;

const CHILD_ENV: &str = "OUTBOX_RELAY_CHILD";

/// Short leases so that a killed relay's partitions move within a second.
fn kill_config(prefix: &str) -> Config {
    let mut c = test_config(prefix);
    c.lease_duration = Duration::from_millis(1000);
    c.renew_margin = Duration::from_millis(300);
    c.rebalance_interval = Duration::from_millis(200);
    c.batch_size = 16;
    c.max_events_per_pass = 64;
    c
}

struct SqliteSink(rusqlite::Connection, String);

impl Publisher for SqliteSink {
    fn publish(&mut self, e: &Event) -> Result<(), PublishError> {
        self.0
            .execute(
                &format!(
                    "INSERT INTO {}sink (event_id, key, seq, payload) VALUES (?1, ?2, ?3, ?4)",
                    self.1
                ),
                rusqlite::params![e.id.0 as i64, e.key, e.seq as i64, e.payload],
            )
            .map(|_| ())
            .map_err(|e| PublishError::Retryable(e.to_string()))
    }
}

struct PgSink(::postgres::Client, String);

impl Publisher for PgSink {
    fn publish(&mut self, e: &Event) -> Result<(), PublishError> {
        self.0
            .execute(
                &format!(
                    "INSERT INTO {}sink (event_id, key, seq, payload) VALUES ($1, $2, $3, $4)",
                    self.1
                ),
                &[
                    &(e.id.0 as i64),
                    &e.key.as_slice(),
                    &(e.seq as i64),
                    &e.payload.as_slice(),
                ],
            )
            .map(|_| ())
            .map_err(|e| PublishError::Retryable(e.to_string()))
    }
}

fn relay_loop<S: OutboxStore, P: Publisher>(mut store: S, mut sink: P, config: Config) -> ! {
    let mut relay = Relay::new(format!("relay-{}", std::process::id()), config).expect("config");
    loop {
        match relay.run_pass(&mut store, &mut sink, &SystemClock) {
            Ok(r) if r.published == 0 && !r.more => std::thread::sleep(Duration::from_millis(10)),
            Ok(_) => {}
            Err(e) => {
                eprintln!("relay {}: {e}", std::process::id());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The child: a relay process, until killed or its parent goes.
#[test]
fn relay_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    // Exit with the parent: its end of our stdin closes when it dies.
    std::thread::spawn(|| {
        let mut buf = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut buf);
        std::process::exit(0);
    });
    let mut parts = spec.splitn(3, '|');
    let (kind, location, prefix) = (
        parts.next().expect("kind"),
        parts.next().expect("location"),
        parts.next().expect("prefix"),
    );
    let config = kill_config(prefix);
    match kind {
        "sqlite" => {
            let store =
                SqliteStore::open(location, &config, Duration::from_secs(30)).expect("open");
            let conn = rusqlite::Connection::open(location).expect("sink");
            conn.busy_timeout(Duration::from_secs(30)).expect("busy");
            relay_loop(store, SqliteSink(conn, prefix.to_owned()), config)
        }
        _ => {
            let store = PgStore::connect(location, &config).expect("connect");
            let client = ::postgres::Client::connect(location, ::postgres::NoTls).expect("sink");
            relay_loop(store, PgSink(client, prefix.to_owned()), config)
        }
    }
}

fn spawn_relay(spec: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["relay_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn relay")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn three_relays_killed_keep_order<D: Db + Sync>(db: D) {
    let seed = env_u64("OUTBOX_KILL_SEED", 0x5eed);
    let secs = env_u64("OUTBOX_KILL_SECS", 4);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_kill_test(db.clone(), seed, secs)
    }));
    if let Err(e) = result {
        eprintln!(
            "three_relays_killed_keep_order failed on {} with OUTBOX_KILL_SEED={seed}",
            db.name()
        );
        std::panic::resume_unwind(e);
    }
}

fn run_kill_test<D: Db + Sync>(db: D, seed: u64, secs: u64) {
    let db = db.with_config(|c| *c = kill_config(&c.table_prefix));
    db.create_sink();
    let spec = db.spec();
    let mut relays: Vec<Child> = (0..3).map(|_| spawn_relay(&spec)).collect();

    // Writers: many keys, some transactions roll back.
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(Mutex::new(BTreeMap::<EventId, (Vec<u8>, Vec<u8>)>::new()));
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let (db, stop, committed) = (db.clone(), stop.clone(), committed.clone());
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed ^ (w + 1));
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("key-{}", rng.u32(0..24)).into_bytes();
                    let commit = rng.u32(0..10) != 0;
                    let payload = format!("{}w{w}-{n}", if commit { "" } else { "rb-" });
                    let now = WallTime::from_nanos(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .expect("after 1970")
                            .as_nanos() as u64,
                    );
                    let ids = db.enqueue(&[(&key, payload.as_bytes())], commit, now);
                    if commit {
                        committed
                            .lock()
                            .expect("lock")
                            .insert(ids[0], (key, payload.into_bytes()));
                    }
                    std::thread::sleep(Duration::from_millis(rng.u64(0..4)));
                }
            })
        })
        .collect();

    // The killer: SIGKILL a random relay every 200-600 ms, restart it.
    let mut rng = fastrand::Rng::with_seed(seed);
    let start = Instant::now();
    let mut kills = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(rng.u64(200..600)));
        let victim = rng.usize(0..relays.len());
        relays[victim].kill().expect("SIGKILL");
        relays[victim].wait().expect("reap");
        kills += 1;
        relays[victim] = spawn_relay(&spec);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let committed = committed.lock().expect("lock").clone();

    // Wait until every committed event arrived.
    let deadline = Instant::now() + Duration::from_secs(120);
    let rows = loop {
        let rows = db.sink_rows();
        let arrived: BTreeSet<u64> = rows.iter().map(|r| r.id).collect();
        if committed.keys().all(|id| arrived.contains(&id.0)) {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} committed events arrived",
            committed
                .keys()
                .filter(|id| arrived.contains(&id.0))
                .count(),
            committed.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for mut r in relays {
        let _ = r.kill();
        let _ = r.wait();
    }

    // Checks.
    let mut first: BTreeMap<u64, &SinkRow> = BTreeMap::new();
    let mut per_key: BTreeMap<&[u8], Vec<u64>> = BTreeMap::new();
    for row in &rows {
        assert!(
            !row.payload.starts_with(b"rb-"),
            "a rolled-back event arrived: {row:?}"
        );
        match first.get(&row.id) {
            Some(f) => assert_eq!(*f, row, "a re-delivery differs"),
            None => {
                let (key, payload) = committed
                    .get(&EventId(row.id))
                    .unwrap_or_else(|| panic!("an uncommitted event arrived: {row:?}"));
                assert_eq!((&row.key, &row.payload), (key, payload));
                first.insert(row.id, row);
                per_key.entry(&row.key).or_default().push(row.seq);
            }
        }
    }
    for (key, seqs) in &per_key {
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs,
            &want,
            "key {}: first arrivals out of order",
            String::from_utf8_lossy(key)
        );
    }
    assert_eq!(first.len(), committed.len());
    eprintln!(
        "{}: {} events over {} keys, {} deliveries ({} re-deliveries), {kills} kills",
        db.name(),
        committed.len(),
        per_key.len(),
        rows.len(),
        rows.len() - first.len()
    );
    assert!(kills >= 3, "the relays were killed ({kills})");
}

both!(three_relays_killed_keep_order);
