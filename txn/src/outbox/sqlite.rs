//! The outbox on SQLite (`rusqlite`): the write side ([`SqliteOutbox`]) and
//! the relays' store ([`SqliteStore`]).
//!
//! Several relay processes may share one database file: the store opens it in
//! WAL mode (readers never wait for the writer) with a busy timeout, and runs
//! every write as `BEGIN IMMEDIATE` so two connections never deadlock
//! upgrading a read lock. SQLite has one writer at a time, so the application
//! transaction that enqueues holds up the relays' marks (and other writers)
//! until it ends: keep it short, and open it with
//! `TransactionBehavior::Immediate` for the same reason.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::config::{Config, ConfigError, DeadLetterPolicy};
use super::event::{
    Event, EventId, Header, HeaderDecodeError, decode_headers, encode_headers, partition_of,
    time_from_db, time_to_db,
};
use super::schema::{
    EnqueueError, MigrateError, Names, PARKED, PENDING, PUBLISHED, SKIPPED, check_enqueue,
};
use super::store::{
    DbError, DeadLetter, Failure, Fenced, Lease, OutboxStore, PendingEvent, RowState, StoreError,
};
use crate::WallTime;

/// The write side on SQLite: enqueues into the caller's transaction.
#[derive(Clone, Debug)]
pub struct SqliteOutbox {
    config: Config,
    names: Names,
    enqueue_key: String,
    enqueue_event: String,
}

impl SqliteOutbox {
    /// An outbox with `config` (validated).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let names = Names::new(&config.table_prefix);
        let enqueue_key = format!(
            "INSERT INTO {k} (key, next_seq) VALUES (?1, 2) \
             ON CONFLICT (key) DO UPDATE SET next_seq = next_seq + 1 RETURNING next_seq - 1",
            k = names.keys
        );
        let enqueue_event = format!(
            "INSERT INTO {e} (part, key, seq, payload, headers, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            e = names.events
        );
        Ok(Self {
            config,
            names,
            enqueue_key,
            enqueue_event,
        })
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Creates the tables and lease rows if absent (idempotent), and checks
    /// the partition count of existing ones.
    pub fn migrate(&self, conn: &mut Connection) -> Result<(), MigrateError> {
        let n = &self.names;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {meta} (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS {keys} (key BLOB PRIMARY KEY, next_seq INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS {ev} (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 part INTEGER NOT NULL, key BLOB NOT NULL, seq INTEGER NOT NULL,
                 payload BLOB NOT NULL, headers BLOB NOT NULL, created_at INTEGER NOT NULL,
                 status INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
                 next_attempt_at INTEGER NOT NULL DEFAULT 0, last_error TEXT,
                 published_at INTEGER);
             CREATE UNIQUE INDEX IF NOT EXISTS {ev}_unpublished ON {ev} (part, key, seq)
                 WHERE status IN (0, 2);
             CREATE INDEX IF NOT EXISTS {ev}_published ON {ev} (published_at) WHERE status = 1;
             CREATE INDEX IF NOT EXISTS {ev}_dead ON {ev} (id) WHERE status IN (2, 3);
             CREATE TABLE IF NOT EXISTS {leases} (part INTEGER PRIMARY KEY,
                 owner TEXT NOT NULL DEFAULT '', lease_until INTEGER NOT NULL DEFAULT 0,
                 epoch INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS {relays} (owner TEXT PRIMARY KEY,
                 alive_until INTEGER NOT NULL);",
            meta = n.meta,
            keys = n.keys,
            ev = n.events,
            leases = n.leases,
            relays = n.relays,
        ))
        .map_err(sq)?;
        let found: Option<i64> = tx
            .query_row(
                &format!("SELECT v FROM {} WHERE k = 'partitions'", n.meta),
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sq)?;
        let want = self.config.partitions;
        match found {
            Some(found) if found != i64::from(want) => {
                return Err(MigrateError::PartitionMismatch {
                    found: u32::try_from(found).unwrap_or(u32::MAX),
                    config: want,
                });
            }
            Some(_) => {}
            None => {
                tx.execute(
                    &format!("INSERT INTO {} (k, v) VALUES ('partitions', ?1)", n.meta),
                    [want],
                )
                .map_err(sq)?;
                let mut insert = tx
                    .prepare(&format!(
                        "INSERT OR IGNORE INTO {} (part) VALUES (?1)",
                        n.leases
                    ))
                    .map_err(sq)?;
                for p in 0..want {
                    insert.execute([p]).map_err(sq)?;
                }
            }
        }
        tx.commit().map_err(sq)?;
        Ok(())
    }

    /// Enqueues an event for `key` in the caller's open transaction `tx`, at
    /// `now` (kept as `created_at`): it is published if and only if `tx`
    /// commits, after every earlier-committed event of `key`. Returns its id.
    ///
    /// Takes SQLite's write lock until `tx` ends.
    pub fn enqueue(
        &self,
        tx: &Transaction<'_>,
        key: &[u8],
        payload: &[u8],
        headers: &[Header],
        now: WallTime,
    ) -> Result<EventId, EnqueueError> {
        check_enqueue(&self.config, key, payload, headers)?;
        let seq: i64 = tx
            .prepare_cached(&self.enqueue_key)
            .and_then(|mut s| s.query_row([key], |r| r.get(0)))
            .map_err(sq)?;
        let id: i64 = tx
            .prepare_cached(&self.enqueue_event)
            .and_then(|mut s| {
                s.query_row(
                    params![
                        partition_of(key, self.config.partitions),
                        key,
                        seq,
                        payload,
                        encode_headers(headers),
                        time_to_db(now)
                    ],
                    |r| r.get(0),
                )
            })
            .map_err(sq)?;
        Ok(EventId(id as u64))
    }
}

fn sq(e: rusqlite::Error) -> DbError {
    DbError::Sqlite(e)
}

/// The relays' and operators' store on SQLite: owns its connection.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    names: Names,
    sql: Sql,
}

#[derive(Debug)]
struct Sql {
    pending_first: String,
    pending_after: String,
    mark: String,
    lease_check: String,
}

const COLUMNS: &str =
    "id, key, seq, payload, headers, created_at, status, attempts, next_attempt_at, part";

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<(Event, Vec<u8>, i64, i64)> {
    let event = Event {
        id: EventId(r.get::<_, i64>(0)? as u64),
        key: r.get(1)?,
        seq: r.get::<_, i64>(2)? as u64,
        payload: r.get(3)?,
        headers: Vec::new(),
        created_at: time_from_db(r.get(5)?),
        attempts: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(u32::MAX),
        partition: u32::try_from(r.get::<_, i64>(9)?).unwrap_or(u32::MAX),
    };
    Ok((event, r.get(4)?, r.get(6)?, r.get(8)?))
}

/// Decodes the headers; undecodable ones leave the event without headers
/// and come back as the error, for the relay to dead-letter the row instead
/// of failing on it forever.
fn finish(raw: (Event, Vec<u8>, i64, i64)) -> (Event, Option<HeaderDecodeError>, i64, i64) {
    let (mut event, headers, status, next) = raw;
    let corrupt = match decode_headers(&headers) {
        Ok(h) => {
            event.headers = h;
            None
        }
        Err(e) => Some(e),
    };
    (event, corrupt, status, next)
}

impl SqliteStore {
    /// Opens the database at `path` for a relay: WAL, `synchronous=FULL`
    /// (a mark or lease write is durable once acknowledged), a busy timeout
    /// of `busy_timeout`; checks it was migrated with `config.partitions`.
    pub fn open(
        path: impl AsRef<Path>,
        config: &Config,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Self::new(conn, config)
    }

    /// A store on an open connection (its pragmas are the caller's).
    pub fn new(conn: Connection, config: &Config) -> Result<Self, StoreError> {
        let names = Names::new(&config.table_prefix);
        let found: Option<i64> = conn
            .query_row(
                &format!("SELECT v FROM {} WHERE k = 'partitions'", names.meta),
                [],
                |r| r.get(0),
            )
            .optional()
            .or_else(|e| match e {
                // Not migrated: no meta table.
                rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                    Ok(None)
                }
                e => Err(e),
            })?;
        if found != Some(i64::from(config.partitions)) {
            return Err(StoreError::PartitionMismatch {
                found: found.and_then(|f| u32::try_from(f).ok()),
                config: config.partitions,
            });
        }
        let e = &names.events;
        let sql = Sql {
            pending_first: format!(
                "SELECT {COLUMNS} FROM {e} WHERE part = ?1 AND status IN (0, 2) \
                 ORDER BY key, seq LIMIT ?2"
            ),
            pending_after: format!(
                "SELECT {COLUMNS} FROM {e} WHERE part = ?1 AND status IN (0, 2) AND key > ?3 \
                 ORDER BY key, seq LIMIT ?2"
            ),
            mark: format!(
                "UPDATE {e} SET status = {PUBLISHED}, published_at = ?2 \
                 WHERE id = ?1 AND status = {PENDING}"
            ),
            lease_check: format!("SELECT owner, epoch FROM {} WHERE part = ?1", names.leases),
        };
        Ok(Self { conn, names, sql })
    }

    /// The connection (for the application's own use, e.g. tests).
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    fn write(&mut self) -> Result<Transaction<'_>, StoreError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    fn fenced<T>(
        &mut self,
        lease: &Lease,
        f: impl FnOnce(&Transaction<'_>, &Names) -> Result<T, StoreError>,
    ) -> Result<Fenced, StoreError> {
        let check = self.sql.lease_check.clone();
        let names = self.names.clone();
        let tx = self.write()?;
        if !lease_held(&tx, &check, lease)? {
            return Ok(Fenced::LeaseLost);
        }
        f(&tx, &names)?;
        tx.commit()?;
        Ok(Fenced::Written)
    }
}

/// Whether `lease` is still held with its epoch, inside the write
/// transaction `tx` (which keeps it so until commit: SQLite has one writer).
fn lease_held(tx: &Transaction<'_>, check: &str, lease: &Lease) -> Result<bool, StoreError> {
    let held: Option<(String, i64)> = tx
        .prepare_cached(check)?
        .query_row([lease.partition], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(held == Some((lease.owner.clone(), lease.epoch as i64)))
}

fn lease_from_row(r: &Row<'_>) -> rusqlite::Result<Lease> {
    Ok(Lease {
        partition: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
        owner: r.get(1)?,
        until: time_from_db(r.get(2)?),
        epoch: r.get::<_, i64>(3)? as u64,
    })
}

impl OutboxStore for SqliteStore {
    fn heartbeat(
        &mut self,
        owner: &str,
        until: WallTime,
        now: WallTime,
    ) -> Result<u32, StoreError> {
        let r = self.names.relays.clone();
        let tx = self.write()?;
        tx.execute(
            &format!(
                "INSERT INTO {r} (owner, alive_until) VALUES (?1, ?2) \
                 ON CONFLICT (owner) DO UPDATE SET alive_until = excluded.alive_until"
            ),
            params![owner, time_to_db(until)],
        )?;
        tx.execute(
            &format!("DELETE FROM {r} WHERE alive_until < ?1"),
            [time_to_db(now)],
        )?;
        let n: i64 = tx.query_row(&format!("SELECT count(*) FROM {r}"), [], |r| r.get(0))?;
        tx.commit()?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX).max(1))
    }

    fn leases(&mut self) -> Result<Vec<Lease>, StoreError> {
        let mut s = self.conn.prepare_cached(&format!(
            "SELECT part, owner, lease_until, epoch FROM {} ORDER BY part",
            self.names.leases
        ))?;
        let rows = s.query_map([], lease_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn acquire_many(
        &mut self,
        partitions: &[u32],
        owner: &str,
        until: WallTime,
        now: WallTime,
    ) -> Result<Vec<Option<Lease>>, StoreError> {
        let l = self.names.leases.clone();
        let tx = self.write()?;
        let mut out = Vec::with_capacity(partitions.len());
        {
            let mut s = tx.prepare_cached(&format!(
                "UPDATE {l} SET owner = ?1, lease_until = ?2, \
                   epoch = epoch + CASE WHEN owner = ?1 AND lease_until > ?3 THEN 0 ELSE 1 END \
                 WHERE part = ?4 AND ((owner = ?1 AND lease_until > ?3) OR lease_until <= ?3) \
                 RETURNING part, owner, lease_until, epoch"
            ))?;
            for &partition in partitions {
                out.push(
                    s.query_row(
                        params![owner, time_to_db(until), time_to_db(now), partition],
                        lease_from_row,
                    )
                    .optional()?,
                );
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn release(&mut self, lease: &Lease) -> Result<(), StoreError> {
        let l = self.names.leases.clone();
        let tx = self.write()?;
        tx.execute(
            &format!(
                "UPDATE {l} SET lease_until = 0 WHERE part = ?1 AND owner = ?2 AND epoch = ?3"
            ),
            params![lease.partition, lease.owner, lease.epoch as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn pending(
        &mut self,
        partition: u32,
        after_key: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<PendingEvent>, StoreError> {
        let raw: Vec<_> = match after_key {
            None => {
                let mut s = self.conn.prepare_cached(&self.sql.pending_first)?;
                s.query_map(params![partition, limit], event_from_row)?
                    .collect::<Result<_, _>>()?
            }
            Some(k) => {
                let mut s = self.conn.prepare_cached(&self.sql.pending_after)?;
                s.query_map(params![partition, limit, k], event_from_row)?
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(raw
            .into_iter()
            .map(|r| {
                let (event, corrupt, status, next) = finish(r);
                let state = match corrupt {
                    _ if status == PARKED => RowState::Parked,
                    Some(error) => RowState::Corrupt { error },
                    None => RowState::Pending {
                        not_before: time_from_db(next),
                    },
                };
                PendingEvent { event, state }
            })
            .collect())
    }

    fn mark_published_many(
        &mut self,
        marks: &[(Lease, Vec<EventId>)],
        now: WallTime,
    ) -> Result<Vec<Fenced>, StoreError> {
        let (check, mark) = (self.sql.lease_check.clone(), self.sql.mark.clone());
        let tx = self.write()?;
        let mut out = Vec::with_capacity(marks.len());
        for (lease, ids) in marks {
            if !lease_held(&tx, &check, lease)? {
                out.push(Fenced::LeaseLost);
                continue;
            }
            let mut s = tx.prepare_cached(&mark)?;
            for id in ids {
                s.execute(params![id.0 as i64, time_to_db(now)])?;
            }
            out.push(Fenced::Written);
        }
        tx.commit()?;
        Ok(out)
    }

    fn record_failure(&mut self, lease: &Lease, f: &Failure) -> Result<Fenced, StoreError> {
        let status = match f.dead {
            None => PENDING,
            Some(DeadLetterPolicy::Park) => PARKED,
            Some(DeadLetterPolicy::Skip) => SKIPPED,
        };
        self.fenced(lease, |tx, n| {
            tx.execute(
                &format!(
                    "UPDATE {} SET attempts = ?2, next_attempt_at = ?3, last_error = ?4, \
                     status = ?5 WHERE id = ?1 AND status = {PENDING}",
                    n.events
                ),
                params![
                    f.id.0 as i64,
                    f.attempts,
                    time_to_db(f.retry_at),
                    f.error,
                    status
                ],
            )?;
            Ok(())
        })
    }

    fn dead_letters(
        &mut self,
        after: Option<EventId>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let mut s = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS}, last_error FROM {} WHERE status IN (2, 3) AND id > ?1 \
             ORDER BY id LIMIT ?2",
            self.names.events
        ))?;
        let raw: Vec<_> = s
            .query_map(params![after.map_or(0, |a| a.0 as i64), limit], |r| {
                Ok((event_from_row(r)?, r.get::<_, Option<String>>(10)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(raw
            .into_iter()
            .map(|(r, error)| {
                let (event, _, status, _) = finish(r);
                DeadLetter {
                    event,
                    error: error.unwrap_or_default(),
                    parks_key: status == PARKED,
                }
            })
            .collect())
    }

    fn replay_dead_letter(&mut self, id: EventId) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            &format!(
                "UPDATE {} SET status = {PENDING}, attempts = 0, next_attempt_at = 0 \
                 WHERE id = ?1 AND status IN (2, 3)",
                self.names.events
            ),
            [id.0 as i64],
        )?;
        Ok(n == 1)
    }

    fn purge_dead_letter(&mut self, id: EventId) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            &format!(
                "DELETE FROM {} WHERE id = ?1 AND status IN (2, 3)",
                self.names.events
            ),
            [id.0 as i64],
        )?;
        Ok(n == 1)
    }

    fn cleanup(&mut self, before: WallTime, limit: u32) -> Result<u64, StoreError> {
        let e = &self.names.events;
        let n = self.conn.execute(
            &format!(
                "DELETE FROM {e} WHERE id IN (SELECT id FROM {e} \
                 WHERE status = {PUBLISHED} AND published_at < ?1 LIMIT ?2)"
            ),
            params![time_to_db(before), limit],
        )?;
        Ok(n as u64)
    }

    fn backlog(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            &format!(
                "SELECT count(*) FROM {} WHERE status IN (0, 2)",
                self.names.events
            ),
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}
