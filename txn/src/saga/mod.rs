//! Sagas (Garcia-Molina & Salem, "Sagas", SIGMOD 1987): a long-lived
//! transaction split into steps T1..Tn, each with a compensation Ci that
//! semantically undoes it, so that the system runs either T1..Tn or
//! T1..Tj, Cj..C1 (§1). Retries and timeouts follow Temporal's activity
//! options ([`RetryPolicy`]).
//!
//! Two ways to run one:
//! - **Orchestration**: the sans-IO [`Orchestrator`] decides, logs every
//!   decision as a [`SagaRecord`] before acting on it, and asks its user to
//!   [`Invoke`](Output::Invoke) actions and compensations with an
//!   [`idempotency_key`] that is the same for every attempt and across
//!   restarts. [`Orchestrator::recover`] resumes every unfinished saga from
//!   its log (and refuses one whose definition changed shape since it
//!   started: [`SagaDefinition::fingerprint`]). The async [`Runner`] drives it over a [`SagaLog`]
//!   ([`MemSagaLog`], or [`SqliteSagaLog`] with feature `sqlite`) and
//!   [`Step`] implementations, on any executor.
//! - **Choreography** ([`Choreography`]): no orchestrator; each participant
//!   reacts to the previous step's event and emits the next, failures flow
//!   back as events that trigger compensations, and every participant
//!   dedupes events by id in its [`Inbox`].
//!
//! Time is [`WallTime`](crate::WallTime): a saga's deadlines and retry times
//! are written to its log and must mean the same after a restart, which an
//! `Instant` cannot.
//!
//! A failed compensation is retried by its policy; when that is exhausted
//! (or the error is non-retryable) the saga is *stuck* (the seeds' "manual
//! intervention"): [`Orchestrator::retry_stuck`] or
//! [`Orchestrator::resolve_stuck`] continue it.
//!
//! # The run loop
//!
//! ```
//! use bytes::Bytes;
//! use dsys_txn::WallTime;
//! use dsys_txn::saga::{
//!     Config, InvokeKind, Orchestrator, Outcome, Output, SagaDefinition, SagaId,
//!     StepDefinition, StepError,
//! };
//!
//! let order = SagaDefinition::new("order")
//!     .step(StepDefinition::new("create_order"))
//!     .step(StepDefinition::new("deduct_inventory"))
//!     .step(StepDefinition::new("process_payment"));
//! let mut saga = Orchestrator::new(Config::default()).unwrap();
//! saga.define(order).unwrap();
//!
//! let mut now = WallTime::from_millis(1_700_000_000_000);
//! let mut log = Vec::new(); // your durable saga log
//! saga.start(SagaId(7), "order", Bytes::from_static(b"2 widgets"), now).unwrap();
//! let outcome = loop {
//!     let mut finished = None;
//!     while let Some(out) = saga.poll_output() {
//!         match out {
//!             // Make it durable, in order, then acknowledge.
//!             Output::Persist { id, saga: s, record } => {
//!                 log.push((s, record));
//!                 saga.on_persisted(id);
//!             }
//!             // Run the step (deduplicating by `inv.idempotency_key`).
//!             Output::Invoke(inv) => {
//!                 let result = match (inv.step, inv.kind) {
//!                     (2, InvokeKind::Action) => {
//!                         Err(StepError::non_retryable("declined", "card declined"))
//!                     }
//!                     _ => Ok(Bytes::from(inv.idempotency_key)),
//!                 };
//!                 saga.handle_result(inv.saga, inv.step, inv.kind, inv.attempt, result, now);
//!             }
//!             Output::Finished { outcome, .. } => finished = Some(outcome),
//!             Output::Stuck { .. } => unreachable!("these compensations succeed"),
//!             _ => {}
//!         }
//!     }
//!     if let Some(o) = finished {
//!         break o;
//!     }
//!     // Sleep until the next deadline, then tell the orchestrator.
//!     now = saga.poll_timeout().expect("an unfinished saga waits on a timer");
//!     saga.handle_timeout(now);
//! };
//! assert!(matches!(outcome, Outcome::Compensated { failed_step: 2, .. }));
//!
//! // After a crash: a new orchestrator, the same definitions, the log.
//! let mut again = Orchestrator::new(Config::default()).unwrap();
//! again.define(SagaDefinition::new("order").step(StepDefinition::new("create_order"))
//!     .step(StepDefinition::new("deduct_inventory"))
//!     .step(StepDefinition::new("process_payment"))).unwrap();
//! again.recover(log, now).unwrap();
//! assert_eq!(again.sagas().count(), 0, "the saga had finished");
//! ```

mod choreography;
mod definition;
mod driver;
mod log;
mod orchestrator;
mod record;
mod retry;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use choreography::{Choreography, Event, Handler, Inbox, Participant};
pub use definition::{
    DefinitionError, InvokeKind, MAX_NAME_LEN, MAX_STEPS, SagaDefinition, SagaId, StepDefinition,
    StepError, idempotency_key,
};
pub use driver::{Clock, Runner, RunnerError, RunnerEvent, Sleep, Step, StepContext};
pub use log::{MemSagaLog, SagaLog};
pub use orchestrator::{
    Config, ConfigError, Counters, Invocation, OperatorError, Orchestrator, Output, PersistId,
    RecoverError, Resolution, SagaStatus, StartError,
};
pub use record::{DecodeError, EncodeError, MAX_MESSAGE_LEN, MAX_PAYLOAD_LEN, Outcome, SagaRecord};
pub use retry::{PolicyError, RetryPolicy};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteLogError, SqliteSagaLog};
