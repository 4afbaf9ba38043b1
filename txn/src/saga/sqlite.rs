//! The saga log in a SQLite table (feature `sqlite`).
//!
//! Records are stored as [`SagaRecord::encode`] blobs, checksummed, in
//! `dsys_saga_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, saga INTEGER,
//! record BLOB)`; each `append` is one transaction. The connection runs in
//! WAL mode with `synchronous = FULL`: in WAL mode, `NORMAL` may lose the
//! last transactions on power loss, and the orchestrator invokes steps as
//! soon as `append` returns, so a lost `AttemptStarted` would let an attempt
//! run uncounted and a lost `StepCompleted` would repeat a step (harmless
//! only thanks to idempotency keys).

use std::path::Path;

use rusqlite::{Connection, params};

use super::definition::SagaId;
use super::log::SagaLog;
use super::record::{DecodeError, EncodeError, SagaRecord};

/// A [`SagaLog`] in SQLite: records as checksummed [`SagaRecord::encode`]
/// blobs in table `dsys_saga_log (seq, saga, record)`, one transaction per
/// `append`. The connection runs in WAL mode with `synchronous = FULL`: in
/// WAL mode `NORMAL` may lose the last transactions on power loss, and the
/// orchestrator invokes a step as soon as the append of its
/// `AttemptStarted` record returns, so a lost record would let an attempt
/// run uncounted, or repeat a completed step (harmless only thanks to
/// idempotency keys).
#[derive(Debug)]
pub struct SqliteSagaLog {
    conn: Connection,
}

/// Why a SQLite saga-log operation failed. For `append`, the batch may or
/// may not be durable; for `load`, nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteLogError {
    /// SQLite refused.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A record could not be encoded; nothing of the batch was written.
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    /// A stored record is corrupt.
    #[error("record {seq}: {error}")]
    Decode {
        /// Its row's `seq`.
        seq: i64,
        /// What is wrong.
        error: DecodeError,
    },
}

impl SqliteSagaLog {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SqliteLogError> {
        Self::from_connection(Connection::open(path)?)
    }

    /// Uses `conn`, switching it to WAL mode with `synchronous = FULL` and
    /// creating the table if needed.
    pub fn from_connection(conn: Connection) -> Result<Self, SqliteLogError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS dsys_saga_log (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                saga INTEGER NOT NULL,
                record BLOB NOT NULL
            );
            CREATE INDEX IF NOT EXISTS dsys_saga_log_saga ON dsys_saga_log (saga);",
        )?;
        Ok(Self { conn })
    }
}

/// SQLite integers are signed: store the id's bits.
fn to_sql(saga: SagaId) -> i64 {
    i64::from_le_bytes(saga.0.to_le_bytes())
}

fn from_sql(v: i64) -> SagaId {
    SagaId(u64::from_le_bytes(v.to_le_bytes()))
}

impl SagaLog for SqliteSagaLog {
    type Error = SqliteLogError;

    fn append(&mut self, records: &[(SagaId, SagaRecord)]) -> Result<(), SqliteLogError> {
        let encoded = records
            .iter()
            .map(|(s, r)| Ok((to_sql(*s), r.to_bytes()?)))
            .collect::<Result<Vec<_>, EncodeError>>()?;
        let tx = self.conn.transaction()?;
        {
            let mut stmt =
                tx.prepare_cached("INSERT INTO dsys_saga_log (saga, record) VALUES (?1, ?2)")?;
            for (saga, blob) in &encoded {
                stmt.execute(params![saga, blob])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&mut self) -> Result<Vec<(SagaId, SagaRecord)>, SqliteLogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, saga, record FROM dsys_saga_log ORDER BY seq")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, saga, blob) = row?;
            let rec =
                SagaRecord::decode(&blob).map_err(|error| SqliteLogError::Decode { seq, error })?;
            out.push((from_sql(saga), rec));
        }
        Ok(out)
    }

    fn forget(&mut self, saga: SagaId) -> Result<(), SqliteLogError> {
        self.conn.execute(
            "DELETE FROM dsys_saga_log WHERE saga = ?1",
            params![to_sql(saga)],
        )?;
        Ok(())
    }
}
