//! The inbox: a consumer records each event id it processes in its own
//! database transaction, together with the processing's effects, so a
//! re-delivered event is recognised and dropped.
//!
//! Table `{prefix}inbox(consumer, event_id, processed_at)`, primary key
//! `(consumer, event_id)`. `process` is an `INSERT ... ON CONFLICT DO
//! NOTHING`: the first delivery inserts (and, in PostgreSQL, a concurrent
//! second delivery waits on the key until the first commits or rolls back),
//! a later one inserts nothing. Rows are deleted by `cleanup` after the
//! consumer's retention, which must exceed the longest time a duplicate can
//! still arrive (the outbox's retry schedule plus relay downtime).

use super::config::ConfigError;
use super::event::{EventId, time_to_db};
use super::store::DbError;
use crate::WallTime;

/// An inbox call failed on the database. The caller's transaction may hold
/// part of the write (PostgreSQL has aborted it): roll it back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InboxError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn table(prefix: &str) -> Result<String, ConfigError> {
    let config = super::Config {
        table_prefix: prefix.to_owned(),
        ..super::Config::default()
    };
    config.validate()?;
    Ok(format!("{prefix}inbox"))
}

/// The inbox on SQLite.
#[cfg(feature = "sqlite")]
#[derive(Clone, Debug)]
pub struct SqliteInbox {
    table: String,
}

#[cfg(feature = "sqlite")]
impl SqliteInbox {
    /// An inbox in table `{prefix}inbox` (prefix rules as
    /// [`Config::table_prefix`](super::Config::table_prefix)).
    pub fn new(prefix: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            table: table(prefix)?,
        })
    }

    /// Creates the table if absent.
    pub fn migrate(&self, conn: &rusqlite::Connection) -> Result<(), InboxError> {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (consumer TEXT NOT NULL, event_id INTEGER NOT NULL,
                 processed_at INTEGER NOT NULL, PRIMARY KEY (consumer, event_id));
             CREATE INDEX IF NOT EXISTS {t}_processed ON {t} (processed_at);",
            t = self.table
        ))
        .map_err(DbError::Sqlite)?;
        Ok(())
    }

    /// Records that `consumer` processes `event` in `tx`: `true` the first
    /// time (process it, then commit), `false` for a duplicate (drop it).
    pub fn process(
        &self,
        tx: &rusqlite::Transaction<'_>,
        consumer: &str,
        event: EventId,
        now: WallTime,
    ) -> Result<bool, InboxError> {
        let n = tx
            .prepare_cached(&format!(
                "INSERT INTO {} (consumer, event_id, processed_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
                self.table
            ))
            .and_then(|mut s| {
                s.execute(rusqlite::params![consumer, event.0 as i64, time_to_db(now)])
            })
            .map_err(DbError::Sqlite)?;
        Ok(n == 1)
    }

    /// Deletes up to `limit` rows processed before `before`; returns how many.
    pub fn cleanup(
        &self,
        conn: &rusqlite::Connection,
        before: WallTime,
        limit: u32,
    ) -> Result<u64, InboxError> {
        let n = conn
            .execute(
                &format!(
                    "DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} \
                     WHERE processed_at < ?1 LIMIT ?2)",
                    t = self.table
                ),
                rusqlite::params![time_to_db(before), limit],
            )
            .map_err(DbError::Sqlite)?;
        Ok(n as u64)
    }
}

/// The inbox on PostgreSQL.
#[cfg(feature = "postgres")]
#[derive(Clone, Debug)]
pub struct PgInbox {
    table: String,
}

#[cfg(feature = "postgres")]
impl PgInbox {
    /// An inbox in table `{prefix}inbox` (prefix rules as
    /// [`Config::table_prefix`](super::Config::table_prefix)).
    pub fn new(prefix: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            table: table(prefix)?,
        })
    }

    /// Creates the table if absent.
    pub fn migrate(&self, client: &mut impl postgres::GenericClient) -> Result<(), InboxError> {
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {t} (consumer TEXT NOT NULL, event_id BIGINT NOT NULL,
                     processed_at BIGINT NOT NULL, PRIMARY KEY (consumer, event_id));
                 CREATE INDEX IF NOT EXISTS {t}_processed ON {t} (processed_at);",
                t = self.table
            ))
            .map_err(DbError::Postgres)?;
        Ok(())
    }

    /// Records that `consumer` processes `event` in `tx`: `true` the first
    /// time (process it, then commit), `false` for a duplicate (drop it).
    pub fn process(
        &self,
        tx: &mut postgres::Transaction<'_>,
        consumer: &str,
        event: EventId,
        now: WallTime,
    ) -> Result<bool, InboxError> {
        let n = tx
            .execute(
                &format!(
                    "INSERT INTO {} (consumer, event_id, processed_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                    self.table
                ),
                &[&consumer, &(event.0 as i64), &time_to_db(now)],
            )
            .map_err(DbError::Postgres)?;
        Ok(n == 1)
    }

    /// Deletes up to `limit` rows processed before `before`; returns how many.
    pub fn cleanup(
        &self,
        client: &mut impl postgres::GenericClient,
        before: WallTime,
        limit: u32,
    ) -> Result<u64, InboxError> {
        Ok(client
            .execute(
                &format!(
                    "DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t} \
                     WHERE processed_at < $1 LIMIT $2))",
                    t = self.table
                ),
                &[&time_to_db(before), &i64::from(limit)],
            )
            .map_err(DbError::Postgres)?)
    }
}
