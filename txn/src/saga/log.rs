//! Where saga records live: the [`SagaLog`] trait and an in-memory log.
//!
//! What must be durable before what (the orchestrator's durability
//! contract, [`Orchestrator`](super::Orchestrator)): an `append` returns
//! only once its records are durable, in order; the driver acknowledges them
//! (`on_persisted`) only after that, and the orchestrator invokes a step only
//! after the record scheduling the attempt was acknowledged. `forget` runs
//! only after a saga's `Finished` record is durable.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use super::definition::SagaId;
use super::record::SagaRecord;

/// Durable storage for saga records.
///
/// What must be durable before what: `append` returns only once its
/// records are durable, in order, after every earlier append; the driver
/// acknowledges them (`on_persisted`) only then, and the orchestrator
/// invokes a step only after the record scheduling that attempt was
/// acknowledged. `forget` runs only after a saga's `Finished` record is
/// durable and reported.
pub trait SagaLog {
    /// Why an operation failed; the records it was given may or may not be
    /// durable (a crash-like outcome: restart and recover).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Appends `records` atomically and durably, in order, after every
    /// record appended before.
    fn append(&mut self, records: &[(SagaId, SagaRecord)]) -> Result<(), Self::Error>;

    /// Every record not forgotten, in append order.
    fn load(&mut self) -> Result<Vec<(SagaId, SagaRecord)>, Self::Error>;

    /// Drops every record of `saga` (whose `Finished` record is durable).
    fn forget(&mut self, saga: SagaId) -> Result<(), Self::Error>;
}

/// A log in memory, for tests and for sagas that need not outlive the
/// process. Clones share the records, so a test can drop a runner and
/// recover a new one from the same log.
#[derive(Debug, Clone, Default)]
pub struct MemSagaLog {
    records: Arc<Mutex<Vec<(SagaId, SagaRecord)>>>,
}

impl MemSagaLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record held, in append order.
    pub fn records(&self) -> Vec<(SagaId, SagaRecord)> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SagaId, SagaRecord)>> {
        // The vector is valid whatever a panicking holder was doing: every
        // mutation is a single push, extend or retain.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SagaLog for MemSagaLog {
    type Error = Infallible;

    fn append(&mut self, records: &[(SagaId, SagaRecord)]) -> Result<(), Infallible> {
        self.lock().extend_from_slice(records);
        Ok(())
    }

    fn load(&mut self) -> Result<Vec<(SagaId, SagaRecord)>, Infallible> {
        Ok(self.records())
    }

    fn forget(&mut self, saga: SagaId) -> Result<(), Infallible> {
        self.lock().retain(|(s, _)| *s != saga);
        Ok(())
    }
}
