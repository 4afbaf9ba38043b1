//! A transactional outbox and inbox on SQLite and PostgreSQL.
//!
//! **Write side.** [`SqliteOutbox::enqueue`] / `PgOutbox::enqueue` (feature `postgres`) write an
//! event into the *caller's own* open transaction, so the business change and
//! the event commit or roll back together. Each event gets its key's next
//! gapless sequence number from a counter row that the enqueue locks until
//! the transaction ends: writers of one key are serialised, and sequence
//! order is commit order. The key hashes ([`partition_of`]: CRC-32C modulo
//! the partition count) into one of [`Config::partitions`] partitions.
//!
//! **Relays.** Any number of [`Relay`] processes share the partitions through
//! a lease table (`partition, owner, lease_until, epoch`), each taking a fair
//! share. A relay publishes an owned partition's events through a
//! [`Publisher`], per key strictly in sequence order, then marks them
//! published, fenced by the lease's epoch. There is no watermark: each pass
//! selects the rows still unpublished, so a transaction that commits late is
//! picked up by the next pass. At least once: a crash between publishing and
//! marking publishes again; consumers deduplicate by [`EventId`] with an
//! inbox ([`SqliteInbox`], `PgInbox`).
//!
//! Why per-key order holds even when leases misbehave (clock skew, a paused
//! relay): a relay starts a key at its lowest unpublished event, every lower
//! one having been published before it was marked, and walks the key in
//! order; so the *first* delivery of each event comes after the first
//! delivery of the one before it. A stale lease can only add re-deliveries.
//! (Plain `SELECT ... FOR UPDATE SKIP LOCKED` breaks this: a second relay
//! skips a key's locked head and publishes the next event first.)
//!
//! **Failures.** A failed publish is retried with exponential backoff
//! ([`Config::backoff`]) while the key waits (a failed event is never
//! overtaken by its key's later events) and other keys go on. After
//! [`Config::max_attempts`], or at once for [`PublishError::Poison`], the
//! event is dead-lettered; under [`DeadLetterPolicy::Park`] (the default) the
//! key waits until an operator replays or purges it
//! ([`OutboxStore::dead_letters`], [`OutboxStore::replay_dead_letter`],
//! [`OutboxStore::purge_dead_letter`]). A destination that is down as a
//! whole answers [`PublishError::Unavailable`]: the pass stops publishing
//! and counts no attempt, so an outage longer than the retry schedule
//! dead-letters nothing ([`PassReport::unavailable`] says to back off).
//!
//! **Retention.** Each pass deletes up to [`Config::cleanup_batch`] rows
//! published more than [`Config::retention`] ago.
//!
//! **Time.** Library calls take `now: WallTime`, and the relay an injected
//! [`PhysicalClock`](dsys_clocks::PhysicalClock) that it reads to stop
//! publishing before its lease ends; nothing here sleeps or spawns. Leases
//! compare the wall clocks of different relays: `renew_margin` must exceed
//! the clock skew between relays plus one publish's duration (see
//! [`Config`]).
//!
//! ```
//! use dsys_clocks::{ManualClock, PhysicalClock, WallTime};
//! use dsys_txn::outbox::{Config, MemPublisher, OutboxStore, Relay, SqliteOutbox, SqliteStore};
//!
//! let config = Config::default();
//! let outbox = SqliteOutbox::new(config.clone()).unwrap();
//! let mut conn = rusqlite::Connection::open_in_memory().unwrap();
//! outbox.migrate(&mut conn).unwrap();
//! let mut store = SqliteStore::new(conn, &config).unwrap();
//! let clock = ManualClock::new(WallTime::from_millis(1_700_000_000_000));
//!
//! // The application: state change and event in one transaction.
//! let conn = store.connection();
//! let tx = conn.transaction().unwrap();
//! tx.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY); INSERT INTO orders VALUES (42);")
//!     .unwrap();
//! outbox.enqueue(&tx, b"order-42", b"created", &[], clock.now()).unwrap();
//! tx.commit().unwrap();
//!
//! // The relay loop (a real one sleeps briefly when a pass finds nothing).
//! let mut relay = Relay::new("relay-1", config).unwrap();
//! let mut publisher = MemPublisher::new();
//! let report = relay.run_pass(&mut store, &mut publisher, &clock).unwrap();
//! assert_eq!(report.published, 1);
//! assert_eq!(publisher.delivered()[0].payload, b"created");
//! assert_eq!(store.backlog().unwrap(), 0);
//! ```

// Without a database feature only the database-independent parts remain.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_imports)
)]

mod config;
mod event;
mod inbox;
mod lease;
#[cfg(feature = "log")]
mod log_publisher;
#[cfg(feature = "postgres")]
mod postgres;
mod publisher;
mod relay;
mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

pub use config::{Config, ConfigError, DeadLetterPolicy};
pub use event::{
    Event, EventId, Header, HeaderDecodeError, MAX_HEADER_NAME, MAX_HEADER_VALUE, MAX_HEADERS,
    partition_of,
};
pub use inbox::InboxError;
#[cfg(feature = "postgres")]
pub use inbox::PgInbox;
#[cfg(feature = "sqlite")]
pub use inbox::SqliteInbox;
#[cfg(feature = "log")]
pub use log_publisher::LogPublisher;
#[cfg(feature = "postgres")]
pub use postgres::{PgOutbox, PgPreparedEnqueue, PgStore};
pub use publisher::{MemPublisher, PublishError, Publisher};
pub use relay::{PassReport, Relay, RelayCounters, RelayError};
pub use schema::{EnqueueError, MigrateError};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOutbox, SqliteStore};
pub use store::{
    DbError, DeadLetter, Failure, Fenced, Lease, OutboxStore, PendingEvent, RowState, StoreError,
};
