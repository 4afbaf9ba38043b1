//! The outbox on PostgreSQL (the synchronous `postgres` client): the write
//! side ([`PgOutbox`]) and the relays' store ([`PgStore`]).
//!
//! The enqueue's upsert of the key's counter row takes that row's lock until
//! the caller's transaction ends, so writers of one key are serialised (a
//! second writer of the key waits) while writers of other keys go on. Under
//! `REPEATABLE READ` or `SERIALIZABLE`, a second writer of the key gets a
//! serialization failure instead of waiting: retry the transaction, as such
//! isolation levels require anyway.

use postgres::{Client, Row, Statement, Transaction};

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

/// Key of the advisory lock that serialises concurrent `migrate` calls
/// (`CREATE TABLE IF NOT EXISTS` races in PostgreSQL).
const MIGRATE_LOCK: i64 = 0x6473_7973_6f62_7831;

/// The write side on PostgreSQL: enqueues into the caller's transaction.
#[derive(Clone, Debug)]
pub struct PgOutbox {
    config: Config,
    names: Names,
    enqueue: String,
}

fn pg(e: postgres::Error) -> DbError {
    DbError::Postgres(e)
}

/// The error for an enqueue that found another partition count (or none).
fn partition_mismatch(
    tx: &mut Transaction<'_>,
    config: &Config,
) -> Result<EnqueueError, EnqueueError> {
    let found = tx
        .query_opt(
            &format!(
                "SELECT v FROM {} WHERE k = 'partitions'",
                Names::new(&config.table_prefix).meta
            ),
            &[],
        )
        .map_err(pg)?
        .map(|r| r.get::<_, i64>(0));
    Ok(EnqueueError::PartitionMismatch {
        found: found.and_then(|f| u32::try_from(f).ok()),
        config: config.partitions,
    })
}

impl PgOutbox {
    /// An outbox with `config` (validated).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let names = Names::new(&config.table_prefix);
        // One statement, one round trip: the counter upsert (row lock) feeds
        // the event insert.
        // The counter is only touched when the database's partition count
        // is the config's (a one-row lookup): a writer configured otherwise
        // would hash keys into partitions no relay serves. No row back:
        // nothing was written.
        let enqueue = format!(
            "WITH k AS (INSERT INTO {k} (key, next_seq) SELECT $1, 2 WHERE EXISTS \
               (SELECT 1 FROM {m} WHERE k = 'partitions' AND v = $6) \
               ON CONFLICT (key) DO UPDATE SET next_seq = {k}.next_seq + 1 \
               RETURNING next_seq - 1 AS seq) \
             INSERT INTO {e} (part, key, seq, payload, headers, created_at) \
             SELECT $2, $1, k.seq, $3, $4, $5 FROM k RETURNING id",
            k = names.keys,
            e = names.events,
            m = names.meta
        );
        Ok(Self {
            config,
            names,
            enqueue,
        })
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Creates the tables and lease rows if absent (idempotent, safe to run
    /// concurrently), and checks the partition count of existing ones.
    pub fn migrate(&self, client: &mut Client) -> Result<(), MigrateError> {
        let n = &self.names;
        let mut tx = client.transaction().map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
            .map_err(pg)?;
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {meta} (k TEXT PRIMARY KEY, v BIGINT NOT NULL);
             CREATE TABLE IF NOT EXISTS {keys} (key BYTEA PRIMARY KEY, next_seq BIGINT NOT NULL);
             CREATE TABLE IF NOT EXISTS {ev} (
                 id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 part BIGINT NOT NULL, key BYTEA NOT NULL, seq BIGINT NOT NULL,
                 payload BYTEA NOT NULL, headers BYTEA NOT NULL, created_at BIGINT NOT NULL,
                 status BIGINT NOT NULL DEFAULT 0, attempts BIGINT NOT NULL DEFAULT 0,
                 next_attempt_at BIGINT NOT NULL DEFAULT 0, last_error TEXT,
                 published_at BIGINT);
             CREATE UNIQUE INDEX IF NOT EXISTS {ev}_unpublished ON {ev} (part, key, seq)
                 WHERE status IN (0, 2);
             CREATE INDEX IF NOT EXISTS {ev}_published ON {ev} (published_at) WHERE status = 1;
             CREATE INDEX IF NOT EXISTS {ev}_dead ON {ev} (id) WHERE status IN (2, 3);
             CREATE TABLE IF NOT EXISTS {leases} (part BIGINT PRIMARY KEY,
                 owner TEXT NOT NULL DEFAULT '', lease_until BIGINT NOT NULL DEFAULT 0,
                 epoch BIGINT NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS {relays} (owner TEXT PRIMARY KEY,
                 alive_until BIGINT NOT NULL);",
            meta = n.meta,
            keys = n.keys,
            ev = n.events,
            leases = n.leases,
            relays = n.relays,
        ))
        .map_err(pg)?;
        let found = tx
            .query_opt(
                &format!("SELECT v FROM {} WHERE k = 'partitions'", n.meta),
                &[],
            )
            .map_err(pg)?
            .map(|r| r.get::<_, i64>(0));
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
                    &format!("INSERT INTO {} (k, v) VALUES ('partitions', $1)", n.meta),
                    &[&i64::from(want)],
                )
                .map_err(pg)?;
                tx.execute(
                    &format!(
                        "INSERT INTO {} (part) SELECT generate_series(0, $1::BIGINT - 1) \
                         ON CONFLICT DO NOTHING",
                        n.leases
                    ),
                    &[&i64::from(want)],
                )
                .map_err(pg)?;
            }
        }
        tx.commit().map_err(pg)?;
        Ok(())
    }

    /// Enqueues an event for `key` in the caller's open transaction `tx`, at
    /// `now` (kept as `created_at`): it is published if and only if `tx`
    /// commits, after every earlier-committed event of `key`. Returns its id.
    ///
    /// Holds `key`'s counter row lock until `tx` ends: a concurrent
    /// transaction enqueuing for the same key waits for it.
    pub fn enqueue(
        &self,
        tx: &mut Transaction<'_>,
        key: &[u8],
        payload: &[u8],
        headers: &[Header],
        now: WallTime,
    ) -> Result<EventId, EnqueueError> {
        enqueue_with(
            &self.config,
            tx,
            self.enqueue.as_str(),
            key,
            payload,
            headers,
            now,
        )
    }

    /// Prepares the enqueue statement on `client`'s connection, saving a
    /// round trip per event (the unprepared [`enqueue`](Self::enqueue)
    /// prepares it every time). Use the result only with transactions of
    /// that connection; elsewhere the database refuses it
    /// ([`EnqueueError::Db`]).
    pub fn prepare(
        &self,
        client: &mut impl postgres::GenericClient,
    ) -> Result<PgPreparedEnqueue, DbError> {
        Ok(PgPreparedEnqueue {
            config: self.config.clone(),
            statement: client.prepare(&self.enqueue).map_err(pg)?,
        })
    }
}

/// [`PgOutbox::enqueue`] prepared on one connection ([`PgOutbox::prepare`]).
#[derive(Clone)]
pub struct PgPreparedEnqueue {
    config: Config,
    statement: Statement,
}

impl core::fmt::Debug for PgPreparedEnqueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PgPreparedEnqueue").finish_non_exhaustive()
    }
}

impl PgPreparedEnqueue {
    /// As [`PgOutbox::enqueue`], in a transaction of the connection this was
    /// prepared on.
    pub fn enqueue(
        &self,
        tx: &mut Transaction<'_>,
        key: &[u8],
        payload: &[u8],
        headers: &[Header],
        now: WallTime,
    ) -> Result<EventId, EnqueueError> {
        enqueue_with(
            &self.config,
            tx,
            &self.statement,
            key,
            payload,
            headers,
            now,
        )
    }
}

/// The relays' and operators' store on PostgreSQL: owns its connection and
/// its prepared statements.
pub struct PgStore {
    client: Client,
    names: Names,
    pending_first: Statement,
    pending_after: Statement,
    mark: Statement,
    lease_check: Statement,
    heartbeat: Statement,
    leases: Statement,
    acquire: Statement,
    cleanup: Statement,
}

impl core::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PgStore")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str =
    "id, key, seq, payload, headers, created_at, status, attempts, next_attempt_at, part";

/// Undecodable headers leave the event without headers and come back as the
/// error, for the relay to dead-letter the row instead of failing on it
/// forever.
fn event_from_row(r: &Row) -> (Event, Option<HeaderDecodeError>, i64, i64) {
    let id = EventId(r.get::<_, i64>(0) as u64);
    let (headers, corrupt) = match decode_headers(r.get::<_, &[u8]>(4)) {
        Ok(h) => (h, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let event = Event {
        id,
        key: r.get(1),
        seq: r.get::<_, i64>(2) as u64,
        payload: r.get(3),
        headers,
        created_at: time_from_db(r.get(5)),
        attempts: u32::try_from(r.get::<_, i64>(7)).unwrap_or(u32::MAX),
        partition: u32::try_from(r.get::<_, i64>(9)).unwrap_or(u32::MAX),
    };
    (event, corrupt, r.get(6), r.get(8))
}

fn lease_from_row(r: &Row) -> Lease {
    Lease {
        partition: u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX),
        owner: r.get(1),
        until: time_from_db(r.get(2)),
        epoch: r.get::<_, i64>(3) as u64,
    }
}

/// Whether `lease` is still held with its epoch; the row lock taken by
/// `check` (`FOR SHARE`) keeps it so until `tx` ends.
fn lease_held(
    tx: &mut Transaction<'_>,
    check: &Statement,
    lease: &Lease,
) -> Result<bool, StoreError> {
    let held = tx
        .query_opt(check, &[&i64::from(lease.partition)])?
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)));
    Ok(held == Some((lease.owner.clone(), lease.epoch as i64)))
}

impl PgStore {
    /// Connects to `url` (libpq style, no TLS) and checks the outbox was
    /// migrated with `config.partitions`.
    pub fn connect(url: &str, config: &Config) -> Result<Self, StoreError> {
        config.validate()?;
        let client = Client::connect(url, postgres::NoTls)?;
        Self::new(client, config)
    }

    /// A store on an open client.
    pub fn new(mut client: Client, config: &Config) -> Result<Self, StoreError> {
        config.validate()?;
        let names = Names::new(&config.table_prefix);
        let exists = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&names.meta])?
            .get::<_, bool>(0);
        let found = if exists {
            client
                .query_opt(
                    &format!("SELECT v FROM {} WHERE k = 'partitions'", names.meta),
                    &[],
                )?
                .map(|r| r.get::<_, i64>(0))
        } else {
            None
        };
        if found != Some(i64::from(config.partitions)) {
            return Err(StoreError::PartitionMismatch {
                found: found.and_then(|f| u32::try_from(f).ok()),
                config: config.partitions,
            });
        }
        let e = &names.events;
        let pending_first = client.prepare(&format!(
            "SELECT {COLUMNS} FROM {e} WHERE part = $1 AND status IN (0, 2) \
             ORDER BY key, seq LIMIT $2"
        ))?;
        let pending_after = client.prepare(&format!(
            "SELECT {COLUMNS} FROM {e} WHERE part = $1 AND status IN (0, 2) AND key > $3 \
             ORDER BY key, seq LIMIT $2"
        ))?;
        let mark = client.prepare(&format!(
            "UPDATE {e} SET status = {PUBLISHED}, published_at = $2 \
             WHERE id = ANY($1) AND status = {PENDING}"
        ))?;
        // FOR SHARE: a relay taking the lease over (an UPDATE of this row)
        // waits until our fenced write commits, so the check stays true
        // until then.
        let lease_check = client.prepare(&format!(
            "SELECT owner, epoch FROM {} WHERE part = $1 FOR SHARE",
            names.leases
        ))?;
        let r = &names.relays;
        // One round trip: the data-modifying CTEs always run; the count reads
        // the snapshot before them, so it counts the others alive at `now`
        // and adds this relay.
        let heartbeat = client.prepare(&format!(
            "WITH up AS (INSERT INTO {r} (owner, alive_until) VALUES ($1, $2) \
               ON CONFLICT (owner) DO UPDATE SET alive_until = excluded.alive_until), \
             gone AS (DELETE FROM {r} WHERE alive_until < $3 AND owner <> $1) \
             SELECT count(*) + 1 FROM {r} WHERE alive_until >= $3 AND owner <> $1"
        ))?;
        let leases = client.prepare(&format!(
            "SELECT part, owner, lease_until, epoch FROM {} ORDER BY part",
            names.leases
        ))?;
        let acquire = client.prepare(&format!(
            "UPDATE {} SET owner = $1, lease_until = $2, \
               epoch = epoch + CASE WHEN owner = $1 AND lease_until > $3 THEN 0 ELSE 1 END \
             WHERE part = $4 AND ((owner = $1 AND lease_until > $3) OR lease_until <= $3) \
             RETURNING part, owner, lease_until, epoch",
            names.leases
        ))?;
        let cleanup = client.prepare(&format!(
            "DELETE FROM {e} WHERE id IN (SELECT id FROM {e} \
             WHERE status = {PUBLISHED} AND published_at < $1 LIMIT $2)"
        ))?;
        Ok(Self {
            client,
            names,
            pending_first,
            pending_after,
            mark,
            lease_check,
            heartbeat,
            leases,
            acquire,
            cleanup,
        })
    }

    /// The client (for the application's own use, e.g. tests).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn fenced(
        &mut self,
        lease: &Lease,
        f: impl FnOnce(&mut Transaction<'_>, &Names) -> Result<(), StoreError>,
    ) -> Result<Fenced, StoreError> {
        let mut tx = self.client.transaction()?;
        if !lease_held(&mut tx, &self.lease_check, lease)? {
            return Ok(Fenced::LeaseLost);
        }
        f(&mut tx, &self.names)?;
        tx.commit()?;
        Ok(Fenced::Written)
    }
}

impl OutboxStore for PgStore {
    fn heartbeat(
        &mut self,
        owner: &str,
        until: WallTime,
        now: WallTime,
    ) -> Result<u32, StoreError> {
        let n: i64 = self
            .client
            .query_one(
                &self.heartbeat,
                &[&owner, &time_to_db(until), &time_to_db(now)],
            )?
            .get(0);
        Ok(u32::try_from(n).unwrap_or(u32::MAX).max(1))
    }

    fn leases(&mut self) -> Result<Vec<Lease>, StoreError> {
        Ok(self
            .client
            .query(&self.leases, &[])?
            .iter()
            .map(lease_from_row)
            .collect())
    }

    fn acquire_many(
        &mut self,
        partitions: &[u32],
        owner: &str,
        until: WallTime,
        now: WallTime,
    ) -> Result<Vec<Option<Lease>>, StoreError> {
        let mut tx = self.client.transaction()?;
        // Read committed: a racing acquirer re-checks the WHERE clause on the
        // row's new version after the first one commits, and finds it held.
        let statement = &self.acquire;
        let mut out = Vec::with_capacity(partitions.len());
        // Ascending partitions: concurrent relays lock lease rows in one order.
        let mut order: Vec<(usize, u32)> = partitions.iter().copied().enumerate().collect();
        order.sort_unstable_by_key(|&(_, p)| p);
        out.resize(partitions.len(), None);
        for (i, partition) in order {
            out[i] = tx
                .query_opt(
                    statement,
                    &[
                        &owner,
                        &time_to_db(until),
                        &time_to_db(now),
                        &i64::from(partition),
                    ],
                )?
                .as_ref()
                .map(lease_from_row);
        }
        tx.commit()?;
        Ok(out)
    }

    fn release(&mut self, lease: &Lease) -> Result<(), StoreError> {
        self.client.execute(
            &format!(
                "UPDATE {} SET lease_until = 0 WHERE part = $1 AND owner = $2 AND epoch = $3",
                self.names.leases
            ),
            &[
                &i64::from(lease.partition),
                &lease.owner,
                &(lease.epoch as i64),
            ],
        )?;
        Ok(())
    }

    fn pending(
        &mut self,
        partition: u32,
        after_key: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<PendingEvent>, StoreError> {
        let part = i64::from(partition);
        let limit = i64::from(limit);
        let rows = match after_key {
            None => self.client.query(&self.pending_first, &[&part, &limit])?,
            Some(k) => self
                .client
                .query(&self.pending_after, &[&part, &limit, &k])?,
        };
        Ok(rows
            .iter()
            .map(|r| {
                let (event, corrupt, status, next) = event_from_row(r);
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
        let mut tx = self.client.transaction()?;
        let mut out = Vec::with_capacity(marks.len());
        for (lease, ids) in marks {
            if !lease_held(&mut tx, &self.lease_check, lease)? {
                out.push(Fenced::LeaseLost);
                continue;
            }
            // Ascending ids: two relays marking overlapping rows (one of them
            // stale) lock them in the same order instead of deadlocking.
            let mut ids: Vec<i64> = ids.iter().map(|i| i.0 as i64).collect();
            ids.sort_unstable();
            tx.execute(&self.mark, &[&ids, &time_to_db(now)])?;
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
                    "UPDATE {} SET attempts = $2, next_attempt_at = $3, last_error = $4, \
                     status = $5 WHERE id = $1 AND status = {PENDING}",
                    n.events
                ),
                &[
                    &(f.id.0 as i64),
                    &i64::from(f.attempts),
                    &time_to_db(f.retry_at),
                    &f.error,
                    &status,
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
        let rows = self.client.query(
            &format!(
                "SELECT {COLUMNS}, last_error FROM {} WHERE status IN (2, 3) AND id > $1 \
                 ORDER BY id LIMIT $2",
                self.names.events
            ),
            &[&after.map_or(0, |a| a.0 as i64), &i64::from(limit)],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let (event, _, status, _) = event_from_row(r);
                DeadLetter {
                    event,
                    error: r.get::<_, Option<String>>(10).unwrap_or_default(),
                    parks_key: status == PARKED,
                }
            })
            .collect())
    }

    fn replay_dead_letter(&mut self, id: EventId) -> Result<bool, StoreError> {
        let n = self.client.execute(
            &format!(
                "UPDATE {} SET status = {PENDING}, attempts = 0, next_attempt_at = 0 \
                 WHERE id = $1 AND status IN (2, 3)",
                self.names.events
            ),
            &[&(id.0 as i64)],
        )?;
        Ok(n == 1)
    }

    fn purge_dead_letter(&mut self, id: EventId) -> Result<bool, StoreError> {
        let n = self.client.execute(
            &format!(
                "DELETE FROM {} WHERE id = $1 AND status IN (2, 3)",
                self.names.events
            ),
            &[&(id.0 as i64)],
        )?;
        Ok(n == 1)
    }

    fn cleanup(&mut self, before: WallTime, limit: u32) -> Result<u64, StoreError> {
        Ok(self
            .client
            .execute(&self.cleanup, &[&time_to_db(before), &i64::from(limit)])?)
    }

    fn backlog(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
            .client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE status IN (0, 2)",
                    self.names.events
                ),
                &[],
            )?
            .get(0);
        Ok(n as u64)
    }
}

/// The enqueue of [`PgOutbox`] and [`PgPreparedEnqueue`]: `statement` is the
/// enqueue SQL, as text or prepared.
fn enqueue_with<S: postgres::ToStatement + ?Sized>(
    config: &Config,
    tx: &mut Transaction<'_>,
    statement: &S,
    key: &[u8],
    payload: &[u8],
    headers: &[Header],
    now: WallTime,
) -> Result<EventId, EnqueueError> {
    check_enqueue(config, key, payload, headers)?;
    let row = tx
        .query_opt(
            statement,
            &[
                &key,
                &i64::from(partition_of(key, config.partitions)),
                &payload,
                &encode_headers(headers),
                &time_to_db(now),
                &i64::from(config.partitions),
            ],
        )
        .map_err(pg)?;
    match row {
        Some(row) => Ok(EventId(row.get::<_, i64>(0) as u64)),
        None => Err(partition_mismatch(tx, config)?),
    }
}
