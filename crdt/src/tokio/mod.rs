//! A tokio driver (feature `tokio`): runs one [`Replica`](crate::Replica) in a
//! task, for users who want anti-entropy over real sockets without writing the
//! run loop. It holds no protocol logic: it does what [the run
//! loop](crate#the-run-loop) says, with a real timer and real sockets.
//!
//! - [`spawn`] starts the task and returns a cloneable [`Handle`]:
//!   [`Handle::mutate`] applies a delta mutator and resolves with the delta
//!   once the change is durable, [`Handle::state`] returns a snapshot of the
//!   state, [`Handle::counters`] what the replica and the driver did, and
//!   [`Handle::shutdown`] stops it.
//! - The replica talks to its peers through a [`Transport`] that carries
//!   encoded [`SyncMessage`](crate::SyncMessage)s; [`TcpTransport`] is a ready
//!   one (length-prefixed frames stamped with the sender's id, one connection
//!   per peer, reconnection with backoff, bounded queues).
//! - The durable record ([`Replica::state`](crate::Replica::state) and
//!   [`Replica::incarnation`](crate::Replica::incarnation)) goes to a
//!   [`Persister`] whenever [`Replica::changes`](crate::Replica::changes) moved,
//!   before any message of that round leaves and before any `mutate` of that
//!   round resolves ([Persistence and restart](crate#persistence-and-restart)).
//!   [`FilePersister`] writes it to a file atomically (temporary file, fsync,
//!   rename) and [`FilePersister::load`]s it back on restart; [`MemPersister`]
//!   keeps it in memory (tests, and restarts within one process).
//!
//! The driver's loop, once per event (a tick of a [`tokio::time::interval`]
//! every [`DriverConfig::ship_interval`], bytes from the transport, a command
//! from a handle): feed the input ([`Replica::ship`](crate::Replica::ship) on a
//! tick, [`Replica::handle_bytes`](crate::Replica::handle_bytes) for bytes,
//! [`Replica::mutate`](crate::Replica::mutate) for a command) together with
//! every other input already waiting, then persist the record if it changed,
//! answer the mutations, and drain
//! [`poll_transmit`](crate::Replica::poll_transmit) into the transport.
//!
//! The replica has no timer of its own: Algorithm 2's "periodically" is the
//! driver's interval. Malformed bytes, unknown senders and forged values are
//! dropped and counted by the replica ([`Counters::rejected`]) and the driver
//! ([`DriverCounters`]); nothing panics.
//!
//! Not handled: membership changes while running (peers are those added to
//! the replica before [`spawn`], and those the transport knows).

mod driver;
mod file;
mod tcp;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::Counters;

pub use driver::{Handle, spawn};
pub use file::{FilePersister, LoadError};
pub use tcp::{TcpConfig, TcpConfigError, TcpCounters, TcpCountersHandle, TcpTransport};

/// How the replica reaches its peers: encoded messages, best effort. The
/// protocol tolerates lost, duplicated and reordered messages.
pub trait Transport<N>: Send + 'static {
    /// Hands `message` (one encoded [`SyncMessage`](crate::SyncMessage)) to the
    /// network for peer `to`; never waits. A message that cannot be queued is
    /// dropped.
    fn send(&mut self, to: &N, message: Vec<u8>);

    /// The next message from a peer, with the id of the peer that sent it;
    /// `None` once no more will come (the driver then goes on without).
    /// Must be cancel safe: the driver polls it in a `select!`, and a message
    /// must not be lost when the future is dropped unfinished.
    fn recv(&mut self) -> impl Future<Output = Option<(N, Vec<u8>)>> + Send;
}

/// What a [`Persister`] returns: resolves once the record is durable.
pub type PersistFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'static>>;

/// Makes the replica's record durable: the application's half of [the
/// persistence contract](crate::Replica#persistence-and-restart).
///
/// The driver calls [`persist`](Self::persist) once per round of its loop in
/// which [`Replica::changes`](crate::Replica::changes) moved, and waits for the
/// future before sending any message of that round and before any
/// [`Handle::mutate`] of that round resolves. The implementation:
/// - MUST write `state` and `incarnation` as one atomic record (a torn write
///   reads back as the previous record);
/// - MUST resolve the future only once the record is durable.
///
/// An error stops the driver: a replica that cannot persist must not send.
/// Restart it with [`Replica::restore`](crate::Replica::restore) from the last
/// durable record.
pub trait Persister<S>: Send + 'static {
    /// Starts writing the record. The future must not borrow `state`: encode
    /// or clone what it needs before returning.
    fn persist(&mut self, state: &S, incarnation: u64) -> PersistFuture;
}

/// A replica's durable record: what [`Replica::restore`](crate::Replica::restore)
/// takes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<S> {
    /// [`Replica::state`](crate::Replica::state) when it was written.
    pub state: S,
    /// [`Replica::incarnation`](crate::Replica::incarnation) when it was written.
    pub incarnation: u64,
}

/// A [`Persister`] that keeps the last record in memory, shared by its clones:
/// nothing survives the process, but a replica stopped with
/// [`Handle::shutdown`] can be restored from [`record`](Self::record) in the
/// same process. For tests and examples.
#[derive(Debug)]
pub struct MemPersister<S> {
    record: Arc<Mutex<Option<Record<S>>>>,
}

impl<S> Clone for MemPersister<S> {
    fn clone(&self) -> Self {
        Self {
            record: Arc::clone(&self.record),
        }
    }
}

impl<S> Default for MemPersister<S> {
    fn default() -> Self {
        Self {
            record: Arc::new(Mutex::new(None)),
        }
    }
}

impl<S: Clone> MemPersister<S> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last record written, if any.
    pub fn record(&self) -> Option<Record<S>> {
        // A panic while holding the lock cannot leave a torn record: the
        // lock guards one assignment.
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<S: Clone + Send + 'static> Persister<S> for MemPersister<S> {
    fn persist(&mut self, state: &S, incarnation: u64) -> PersistFuture {
        *self.record.lock().unwrap_or_else(PoisonError::into_inner) = Some(Record {
            state: state.clone(),
            incarnation,
        });
        Box::pin(std::future::ready(Ok(())))
    }
}

/// What the driver did, with the replica's own [`Counters`]
/// ([`Handle::counters`]). Counters only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverCounters {
    /// The replica's counters.
    pub sync: Counters,
    /// Anti-entropy rounds ([`Replica::ship`](crate::Replica::ship) calls).
    pub rounds: u64,
    /// Messages handed to the replica.
    pub received: u64,
    /// Messages that did not decode (also in `sync.rejected`).
    pub malformed: u64,
    /// Messages from a sender that is not a peer (also in `sync.rejected`).
    pub unknown_peer: u64,
    /// Records written by the persister.
    pub persists: u64,
}

/// Why a [`Handle`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The driver stopped ([`Handle::shutdown`], every handle dropped, or a
    /// persist failure) before the call was answered. A `mutate` that fails
    /// this way may have been applied but was not confirmed durable: treat it
    /// as lost unless it shows up after the restart.
    #[error("the driver has shut down")]
    ShutDown,
}

/// How the driver runs the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Time between anti-entropy rounds ([`Replica::ship`](crate::Replica::ship)):
    /// Algorithm 2's "periodically". A lost message is shipped again one round
    /// later. At least 1 ms.
    pub ship_interval: Duration,
    /// Commands from handles queued before `mutate`, `state` and `counters`
    /// wait for room. At least 1.
    pub command_queue: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            ship_interval: Duration::from_millis(100),
            command_queue: 1024,
        }
    }
}

/// Why a [`DriverConfig`] was refused. Nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverConfigError {
    /// `ship_interval` is under 1 ms. Nothing was started.
    #[error("ship_interval of {0:?} is under 1 ms")]
    ShipInterval(Duration),
    /// `command_queue` is 0. Nothing was started.
    #[error("command_queue is 0")]
    CommandQueue,
}

impl DriverConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), DriverConfigError> {
        if self.ship_interval < Duration::from_millis(1) {
            return Err(DriverConfigError::ShipInterval(self.ship_interval));
        }
        if self.command_queue == 0 {
            return Err(DriverConfigError::CommandQueue);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bounds() {
        assert_eq!(DriverConfig::default().validate(), Ok(()));
        let config = DriverConfig {
            ship_interval: Duration::ZERO,
            ..DriverConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(DriverConfigError::ShipInterval(Duration::ZERO))
        );
        let config = DriverConfig {
            command_queue: 0,
            ..DriverConfig::default()
        };
        assert_eq!(config.validate(), Err(DriverConfigError::CommandQueue));
    }
}
