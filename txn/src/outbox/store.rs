//! The relay's and the operator's view of an outbox database: one trait, two
//! implementations ([`SqliteStore`](super::SqliteStore),
//! [`PgStore`](super::PgStore)).

use super::event::{Event, EventId, HeaderDecodeError};
use crate::WallTime;

/// An error from the database client. Whether state changed is said by the
/// error that wraps it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// From SQLite.
    #[cfg(feature = "sqlite")]
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// From PostgreSQL.
    #[cfg(feature = "postgres")]
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
}

/// A relay or operator call on an [`OutboxStore`] failed. The call's own
/// database transaction was rolled back, so the outbox is as before the call
/// (a relay pass may have published and marked some events before failing:
/// those stay marked).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (connection lost, lock timeout, disk full...).
    #[error(transparent)]
    Db(#[from] DbError),
    /// The database was migrated with another partition count (or not at all).
    #[error("outbox has {found:?} partitions, config says {config}")]
    PartitionMismatch {
        /// What the database holds (`None`: not migrated).
        found: Option<u32>,
        /// What the config says.
        config: u32,
    },
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(DbError::Sqlite(e))
    }
}

#[cfg(feature = "postgres")]
impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        Self::Db(DbError::Postgres(e))
    }
}

/// A partition lease as held by one relay.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The partition.
    pub partition: u32,
    /// The holder's relay name (empty: never held).
    pub owner: String,
    /// The holder may publish until this time minus the renew margin.
    pub until: WallTime,
    /// Fencing token: grows whenever the lease changes hands or is taken
    /// after expiring; a relay marks rows only while the epoch it acquired is
    /// still the row's.
    pub epoch: u64,
}

/// Where a pending row stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowState {
    /// Waiting to be published (possibly after a backoff).
    Pending {
        /// Not before this time.
        not_before: WallTime,
    },
    /// Dead-lettered under [`Park`](super::DeadLetterPolicy::Park): the key
    /// waits behind it.
    Parked,
    /// Pending, but its stored headers do not decode (written by something
    /// else, or damaged): the relay dead-letters it like poison rather than
    /// fail on it every pass. The event comes without headers.
    Corrupt {
        /// What is wrong.
        error: HeaderDecodeError,
    },
}

/// A row the relay may publish, in per-key order.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PendingEvent {
    /// The event.
    pub event: Event,
    /// Its state.
    pub state: RowState,
}

/// A dead-lettered event, for operators.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The event (its `attempts` is the count that killed it).
    pub event: Event,
    /// The last publish error.
    pub error: String,
    /// Whether its key is parked behind it.
    pub parks_key: bool,
}

/// What a fenced write found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Fenced {
    /// The lease was still ours; the write happened.
    Written,
    /// The lease's epoch or owner changed: nothing was written and the caller
    /// must stop publishing the partition.
    LeaseLost,
}

/// A failed publish to record.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Failure {
    /// The event.
    pub id: EventId,
    /// Attempts including this one.
    pub attempts: u32,
    /// Retry not before this time (ignored when `dead` is set).
    pub retry_at: WallTime,
    /// The publisher's error.
    pub error: String,
    /// Dead-letter it now, with this policy.
    pub dead: Option<super::DeadLetterPolicy>,
}

/// The database side of an outbox, as relays and operators use it. Each
/// method runs in its own short database transaction on the store's own
/// connection (never the application's). Implemented by
/// [`SqliteStore`](super::SqliteStore) and [`PgStore`](super::PgStore); the
/// behaviour tests run against both.
pub trait OutboxStore {
    /// Records that relay `owner` is alive until `until`, forgets relays dead
    /// before `now`, and returns how many relays are alive at `now` (at least 1).
    fn heartbeat(&mut self, owner: &str, until: WallTime, now: WallTime)
    -> Result<u32, StoreError>;

    /// Every partition's lease, by partition.
    fn leases(&mut self) -> Result<Vec<Lease>, StoreError>;

    /// Takes or renews `partition`'s lease for `owner` until `until` if it is
    /// `owner`'s and unexpired (renewal: same epoch) or expired at `now`
    /// (acquisition: epoch + 1). `None`: another relay holds it.
    fn acquire(
        &mut self,
        partition: u32,
        owner: &str,
        until: WallTime,
        now: WallTime,
    ) -> Result<Option<Lease>, StoreError> {
        Ok(self
            .acquire_many(&[partition], owner, until, now)?
            .pop()
            .flatten())
    }

    /// [`acquire`](Self::acquire) for several partitions in one database
    /// transaction; one answer per partition, in order.
    fn acquire_many(
        &mut self,
        partitions: &[u32],
        owner: &str,
        until: WallTime,
        now: WallTime,
    ) -> Result<Vec<Option<Lease>>, StoreError>;

    /// Gives `lease` up (if it is still held with that epoch) so that another
    /// relay may take it at once.
    fn release(&mut self, lease: &Lease) -> Result<(), StoreError>;

    /// Up to `limit` rows of `partition` that are pending or parked, ordered
    /// by key then sequence, with keys greater than `after_key` when given.
    fn pending(
        &mut self,
        partition: u32,
        after_key: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<PendingEvent>, StoreError>;

    /// Marks `ids` (of `lease`'s partition) published at `now`, if `lease`
    /// is still held with its epoch.
    fn mark_published(
        &mut self,
        lease: &Lease,
        ids: &[EventId],
        now: WallTime,
    ) -> Result<Fenced, StoreError> {
        let marks = [(lease.clone(), ids.to_vec())];
        Ok(self.mark_published_many(&marks, now)?[0])
    }

    /// [`mark_published`](Self::mark_published) for several partitions in
    /// one database transaction (rows of one partition are spread over the
    /// whole table, so one transaction writes each page once); one answer
    /// per entry, each lease checked on its own.
    fn mark_published_many(
        &mut self,
        marks: &[(Lease, Vec<EventId>)],
        now: WallTime,
    ) -> Result<Vec<Fenced>, StoreError>;

    /// Records a failed attempt (and possibly the dead letter), if `lease` is
    /// still held with its epoch.
    fn record_failure(&mut self, lease: &Lease, failure: &Failure) -> Result<Fenced, StoreError>;

    /// Dead letters with ids greater than `after`, oldest first, at most `limit`.
    fn dead_letters(
        &mut self,
        after: Option<EventId>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError>;

    /// Puts dead letter `id` back to pending with no attempts (it is then
    /// published first among its key's events). `false`: no such dead letter.
    fn replay_dead_letter(&mut self, id: EventId) -> Result<bool, StoreError>;

    /// Deletes dead letter `id` (unparking its key). `false`: no such dead letter.
    fn purge_dead_letter(&mut self, id: EventId) -> Result<bool, StoreError>;

    /// Deletes up to `limit` rows published before `before`; returns how many.
    fn cleanup(&mut self, before: WallTime, limit: u32) -> Result<u64, StoreError>;

    /// Rows not yet published (pending, retrying or parked).
    fn backlog(&mut self) -> Result<u64, StoreError>;
}
