//! An async handle on a [`Log`](crate::Log) (feature `tokio`), for tokio
//! applications that must not block their runtime on file I/O.
//!
//! [`spawn`] hands the log to an owner task and returns a cloneable
//! [`Handle`]. The owner takes commands from a bounded queue and runs every
//! call on the log (`append`, `flush`, `handle_timeout`, `close`, and any
//! closure given to [`Handle::with`]) on tokio's blocking pool
//! ([`spawn_blocking`](::tokio::task::spawn_blocking)), so a write or an
//! fsync never holds a runtime thread, even on a `current_thread` runtime.
//! It holds no log logic: it does what [the run loop](crate#the-run-loop)
//! says, with the wall clock as `now`.
//!
//! - [`Handle::append`] resolves with the [`Appended`](crate::Appended) once
//!   the batch is written (durable as far as the log's
//!   [`FlushPolicy`](crate::FlushPolicy) says);
//!   [`Handle::append_durable`] only once it is fsynced. Every command
//!   waiting when the owner starts a round (up to
//!   [`DriverConfig::max_group`]) runs in that round, and the durable appends
//!   and [`Handle::flush`]es of a round share one fsync (group commit).
//! - [`Handle::read`] reads through a [`LogReader`](crate::LogReader) (it is
//!   `Send + Sync` and cloneable) on the blocking pool, concurrently with the
//!   owner: reads never wait for appends, and see what the high-watermark
//!   covers ([`HighWatermarkPolicy`](crate::HighWatermarkPolicy)).
//! - The owner sleeps until [`Log::poll_timeout`](crate::Log::poll_timeout)
//!   and then calls [`Log::handle_timeout`](crate::Log::handle_timeout)
//!   (`flush.ms`, producer expiry).
//! - [`Handle::close`] closes the log cleanly; so does the owner when every
//!   handle is dropped.
//!
//! Time: the owner reads the wall clock (milliseconds since the Unix epoch,
//! a [`Timestamp`](crate::Timestamp)) for every round and passes it as `now`.

mod owner;

use std::sync::Arc;

pub use owner::{Handle, spawn};

/// How the owner runs the log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Commands queued before `append`, `flush` and `with` wait for room. At
    /// least 1.
    pub command_queue: usize,
    /// Most commands run in one round (one trip to the blocking pool, at most
    /// one group fsync). At least 1.
    pub max_group: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            command_queue: 1024,
            max_group: 1024,
        }
    }
}

/// Why a [`DriverConfig`] was refused. Nothing was started; the log is
/// dropped unclosed (the next open recovers as after a crash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverConfigError {
    /// `command_queue` is 0. Nothing was started.
    #[error("command_queue is 0")]
    CommandQueue,
    /// `max_group` is 0. Nothing was started.
    #[error("max_group is 0")]
    MaxGroup,
}

impl DriverConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), DriverConfigError> {
        if self.command_queue == 0 {
            return Err(DriverConfigError::CommandQueue);
        }
        if self.max_group == 0 {
            return Err(DriverConfigError::MaxGroup);
        }
        Ok(())
    }
}

/// Why [`Handle::append`] or [`Handle::append_durable`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The log refused or failed the append; the inner error says whether
    /// anything was written ([`crate::AppendError`]).
    #[error(transparent)]
    Append(#[from] crate::AppendError),
    /// [`Handle::append_durable`]: the batch was appended at
    /// `base_offset..=last_offset`, but the fsync that was to make it durable
    /// failed. It is not acknowledged as durable, and the log is failed until
    /// it is reopened.
    #[error("appended at {base_offset}..={last_offset} but fsync failed: {source}")]
    NotDurable {
        /// First offset of the batch.
        base_offset: u64,
        /// Last offset of the batch.
        last_offset: u64,
        /// The flush error, shared by every append of the group.
        source: Arc<crate::FlushError>,
    },
    /// The owner stopped (closed, or its blocking call panicked) before
    /// answering. The batch may or may not have been appended; it was not
    /// acknowledged as durable.
    #[error("the log's owner has stopped")]
    Closed,
}

/// Why [`Handle::flush`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// The fsync failed ([`crate::FlushError`]): the durable offset did not
    /// advance and the log is failed until reopened.
    #[error(transparent)]
    Flush(Arc<crate::FlushError>),
    /// The owner stopped before answering. Nothing is known to be durable
    /// beyond what earlier answers said.
    #[error("the log's owner has stopped")]
    Closed,
}

/// Why [`Handle::close`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// Closing failed ([`crate::FlushError`], as from
    /// [`Log::close`](crate::Log::close)); the log is gone, and the next open
    /// recovers as after a crash.
    #[error(transparent)]
    Close(crate::FlushError),
    /// The owner had stopped already (another handle closed the log).
    #[error("the log's owner has stopped")]
    Closed,
}

/// The owner stopped before answering ([`Handle::with`]): the closure may or
/// may not have run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the log's owner has stopped")]
pub struct Closed;

/// What the owner did ([`Handle::counters`]). Counters only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverCounters {
    /// Rounds run (trips to the blocking pool).
    pub rounds: u64,
    /// Appends run (whatever their outcome).
    pub appends: u64,
    /// Group fsyncs run for durable appends and flushes.
    pub group_flushes: u64,
    /// `handle_timeout` calls.
    pub timeouts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bounds() {
        assert_eq!(DriverConfig::default().validate(), Ok(()));
        let zero_queue = DriverConfig {
            command_queue: 0,
            ..DriverConfig::default()
        };
        assert_eq!(zero_queue.validate(), Err(DriverConfigError::CommandQueue));
        let zero_group = DriverConfig {
            max_group: 0,
            ..DriverConfig::default()
        };
        assert_eq!(zero_group.validate(), Err(DriverConfigError::MaxGroup));
    }
}
