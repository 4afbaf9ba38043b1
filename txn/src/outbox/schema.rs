//! Table names and row states, shared by both databases.
//!
//! Tables (prefix `p` from [`Config::table_prefix`](super::Config::table_prefix)):
//!
//! - `p_outbox_meta(k, v)`: the partition count fixed at migration.
//! - `p_outbox_keys(key, next_seq)`: per key, the next sequence number. The
//!   enqueue's upsert of this row takes its row lock (PostgreSQL) or the
//!   database's write lock (SQLite) until the caller's transaction ends, so
//!   writers of one key are serialised and sequence order is commit order.
//!   One row per distinct key ever enqueued (never deleted: deleting it would
//!   restart the key's sequence while consumers may still remember it).
//! - `p_outbox_events(id, part, key, seq, payload, headers, created_at,
//!   status, attempts, next_attempt_at, last_error, published_at)`. A
//!   partial unique index on `(part, key, seq)` over unpublished rows is what
//!   relays scan (and a safety net against a repeated sequence number, which
//!   the counter row already rules out), another on `published_at` over
//!   published rows is what retention scans. Both stay small: a row is in
//!   one of them at a time.
//! - `p_outbox_leases(part, owner, lease_until, epoch)`: one row per partition.
//! - `p_outbox_relays(owner, alive_until)`: relay heartbeats, to count relays
//!   for the fair share.

/// `status` column values.
pub(crate) const PENDING: i64 = 0;
pub(crate) const PUBLISHED: i64 = 1;
/// Dead-lettered, the key parked behind it.
pub(crate) const PARKED: i64 = 2;
/// Dead-lettered, the key going on without it.
pub(crate) const SKIPPED: i64 = 3;

/// The table names for one prefix (validated by `Config::validate`, so safe
/// to splice into SQL).
#[derive(Clone, Debug)]
pub(crate) struct Names {
    pub(crate) meta: String,
    pub(crate) keys: String,
    pub(crate) events: String,
    pub(crate) leases: String,
    pub(crate) relays: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            meta: format!("{prefix}outbox_meta"),
            keys: format!("{prefix}outbox_keys"),
            events: format!("{prefix}outbox_events"),
            leases: format!("{prefix}outbox_leases"),
            relays: format!("{prefix}outbox_relays"),
        }
    }
}

/// Why an enqueue was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnqueueError {
    /// The key is longer than `max_key_len`. Nothing was written.
    #[error("key of {len} bytes exceeds max_key_len {max}")]
    KeyTooLong {
        /// Its length.
        len: usize,
        /// The bound.
        max: u32,
    },
    /// The payload is larger than `max_payload_len`. Nothing was written.
    #[error("payload of {len} bytes exceeds max_payload_len {max}")]
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: u32,
    },
    /// A header breaks a bound. Nothing was written.
    #[error("headers: {0}")]
    Headers(#[from] super::HeaderDecodeError),
    /// The outbox was migrated with another partition count than this
    /// writer's config (or not at all): the event would land in a partition
    /// no relay serves, or in another one than the key's earlier events.
    /// Nothing was written.
    #[error("outbox has {found:?} partitions, the writer's config says {config}")]
    PartitionMismatch {
        /// What the database holds (`None`: not migrated).
        found: Option<u32>,
        /// What the config says.
        config: u32,
    },
    /// The database failed. The caller's transaction may hold part of the
    /// write (PostgreSQL has aborted it): roll it back.
    #[error(transparent)]
    Db(#[from] super::DbError),
}

/// Why a migration failed. SQLite rolled it back; PostgreSQL too (DDL is
/// transactional there).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] super::DbError),
    /// The tables exist with another partition count: changing it would move
    /// keys between partitions and break per-key order. Nothing changed.
    #[error("outbox already migrated with {found} partitions, config says {config}")]
    PartitionMismatch {
        /// In the database.
        found: u32,
        /// In the config.
        config: u32,
    },
}

/// Checks an enqueue's arguments against the config's bounds.
pub(crate) fn check_enqueue(
    config: &super::Config,
    key: &[u8],
    payload: &[u8],
    headers: &[super::Header],
) -> Result<(), EnqueueError> {
    if key.len() > config.max_key_len as usize {
        return Err(EnqueueError::KeyTooLong {
            len: key.len(),
            max: config.max_key_len,
        });
    }
    if payload.len() > config.max_payload_len as usize {
        return Err(EnqueueError::PayloadTooLarge {
            len: payload.len(),
            max: config.max_payload_len,
        });
    }
    super::event::check_headers(headers)?;
    Ok(())
}
