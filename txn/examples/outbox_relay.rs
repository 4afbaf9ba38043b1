//! A relay process: publishes an outbox's events to stdout, one line per
//! event (`id key seq payload`), until killed. Run several against one
//! database to watch them share the partitions (kill some: the others take
//! their partitions over once the leases expire).
//!
//! ```text
//! cargo run -p dsys-txn --example outbox_relay -- sqlite /tmp/outbox.db
//! cargo run -p dsys-txn --example outbox_relay -- postgres 'host=127.0.0.1 port=54329 user=postgres dbname=dsys_test'
//! ```
//!
//! It migrates the outbox (default config: prefix `dsys_`, 16 partitions),
//! and with `--demo` also enqueues a few events per second from the same
//! process, so there is something to relay.

use std::io::Write;
use std::time::Duration;

use dsys_clocks::{PhysicalClock, SystemClock};
use dsys_txn::outbox::{
    Config, Event, OutboxStore, PgOutbox, PgStore, PublishError, Publisher, Relay, SqliteOutbox,
    SqliteStore,
};

/// Prints each event; `Ok` once the line is written (stdout is the
/// "broker" here).
struct Stdout;

impl Publisher for Stdout {
    fn publish(&mut self, e: &Event) -> Result<(), PublishError> {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{} {} {} {}",
            e.id,
            String::from_utf8_lossy(&e.key),
            e.seq,
            String::from_utf8_lossy(&e.payload)
        )
        .and_then(|()| out.flush())
        .map_err(|e| PublishError::Retryable(e.to_string()))
    }
}

fn run<S: OutboxStore>(mut store: S, config: Config, mut demo: impl FnMut(u64)) {
    let owner = format!("relay-{}", std::process::id());
    let mut relay = Relay::new(owner.clone(), config).expect("config");
    eprintln!("{owner}: relaying");
    let mut n = 0u64;
    loop {
        n += 1;
        demo(n);
        match relay.run_pass(&mut store, &mut Stdout, &SystemClock) {
            Ok(r) if r.more => {}
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                eprintln!("{owner}: {e}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let demo = args.iter().any(|a| a == "--demo");
    let config = Config::default();
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("sqlite"), Some(path)) => {
            let outbox = SqliteOutbox::new(config.clone()).expect("config");
            let mut conn = rusqlite::Connection::open(path).expect("open");
            conn.busy_timeout(Duration::from_secs(5)).expect("busy");
            outbox.migrate(&mut conn).expect("migrate");
            let store = SqliteStore::open(path, &config, Duration::from_secs(5)).expect("store");
            run(store, config, |n| {
                if demo {
                    let tx = conn.transaction().expect("begin");
                    let key = format!("key-{}", n % 5);
                    outbox
                        .enqueue(
                            &tx,
                            key.as_bytes(),
                            format!("event {n}").as_bytes(),
                            &[],
                            SystemClock.now(),
                        )
                        .expect("enqueue");
                    tx.commit().expect("commit");
                }
            });
        }
        (Some("postgres"), Some(url)) => {
            let outbox = PgOutbox::new(config.clone()).expect("config");
            let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
            outbox.migrate(&mut client).expect("migrate");
            let store = PgStore::connect(url, &config).expect("store");
            run(store, config, |n| {
                if demo {
                    let mut tx = client.transaction().expect("begin");
                    let key = format!("key-{}", n % 5);
                    outbox
                        .enqueue(
                            &mut tx,
                            key.as_bytes(),
                            format!("event {n}").as_bytes(),
                            &[],
                            SystemClock.now(),
                        )
                        .expect("enqueue");
                    tx.commit().expect("commit");
                }
            });
        }
        _ => {
            eprintln!("usage: outbox_relay (sqlite <path> | postgres <url>) [--demo]");
            std::process::exit(2);
        }
    }
}
