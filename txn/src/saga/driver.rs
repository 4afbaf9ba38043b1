//! An executor-agnostic async driver: runs the [`Orchestrator`] over a
//! [`SagaLog`] and [`Step`] implementations, with the caller's timer and
//! wall clock, on whatever executor polls it (it needs only `futures`).
//!
//! The driver holds no saga logic: it appends each drained batch of records
//! to the log before acknowledging it, runs every released invocation
//! concurrently (a `FuturesUnordered` polled by the caller's task), and
//! feeds results and timeouts back. Crash recovery is
//! [`Runner::recover`] on a fresh runner over the same log.

use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, Either, FutureExt, select};
use futures::stream::{FuturesUnordered, StreamExt};

use super::definition::{DefinitionError, InvokeKind, SagaDefinition, SagaId, StepError};
use super::log::SagaLog;
use super::orchestrator::{
    Config, ConfigError, Counters, Invocation, OperatorError, Orchestrator, Output, RecoverError,
    Resolution, SagaStatus, StartError,
};
use super::record::Outcome;
use crate::WallTime;

/// What a step's action or compensation gets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StepContext {
    /// The saga.
    pub saga: SagaId,
    /// The step, 0-based.
    pub step: usize,
    /// 1-based attempt (repeated after a crash).
    pub attempt: u32,
    /// Apply the effect at most once per key ([`idempotency_key`](super::idempotency_key)).
    pub idempotency_key: String,
    /// When the orchestrator stops waiting for this attempt.
    pub deadline: WallTime,
    /// The saga's input.
    pub input: Bytes,
    /// Outputs of the earlier (completed) steps, in order.
    pub previous: Vec<Bytes>,
    /// For a compensation, this step's output (`None` if its action timed
    /// out, so its effect is unknown); `None` for an action.
    pub output: Option<Bytes>,
}

impl StepContext {
    /// A context for attempt 1 of `saga`'s `step` with no deadline, no
    /// earlier outputs and no own output: for testing a [`Step`]
    /// implementation by itself (assign the public fields to vary it).
    pub fn new(
        saga: SagaId,
        step: usize,
        idempotency_key: impl Into<String>,
        input: Bytes,
    ) -> Self {
        Self {
            saga,
            step,
            attempt: 1,
            idempotency_key: idempotency_key.into(),
            deadline: WallTime::MAX,
            input,
            previous: Vec::new(),
            output: None,
        }
    }
}

impl From<Invocation> for StepContext {
    fn from(i: Invocation) -> Self {
        Self {
            saga: i.saga,
            step: i.step,
            attempt: i.attempt,
            idempotency_key: i.idempotency_key,
            deadline: i.deadline,
            input: i.input,
            previous: i.previous,
            output: i.output,
        }
    }
}

/// One saga step's implementation. A panic in either method is caught and
/// becomes a failed, retryable attempt of kind [`StepError::PANIC`] (unless
/// the build aborts on panic).
#[async_trait::async_trait]
pub trait Step: Send + Sync {
    /// The forward action; its output is logged and handed to later steps
    /// and to this step's compensation.
    async fn action(&self, ctx: StepContext) -> Result<Bytes, StepError>;

    /// Semantically undoes the action. Must be idempotent (keyed by
    /// `ctx.idempotency_key`) and succeed when the action never took effect.
    /// Steps defined without a compensation are never asked.
    async fn compensate(&self, ctx: StepContext) -> Result<(), StepError>;
}

/// Sleeps for a duration on the caller's executor (`tokio::time::sleep`,
/// `async_io::Timer`, a test's virtual clock).
pub type Sleep = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;
/// Reads the wall clock (`SystemTime::now`, a test's virtual clock).
pub type Clock = Arc<dyn Fn() -> WallTime + Send + Sync>;

/// What [`Runner::next_event`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunnerEvent {
    /// A saga ended; its records were forgotten.
    Finished {
        /// The saga.
        saga: SagaId,
        /// How.
        outcome: Outcome,
    },
    /// A saga's compensation is stuck; see [`Runner::retry_stuck`].
    Stuck {
        /// The saga.
        saga: SagaId,
        /// The step.
        step: usize,
        /// The last error.
        reason: String,
    },
}

/// Why a runner operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// Invalid config; no runner was built.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Invalid definition; nothing changed.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// `register` got a different number of steps than the definition has;
    /// nothing changed.
    #[error("the definition has {expected} steps, {got} implementations were given")]
    StepCount {
        /// Steps in the definition.
        expected: usize,
        /// Implementations given.
        got: usize,
    },
    /// The saga was not started; nothing changed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The log could not be recovered; the runner holds no saga.
    #[error(transparent)]
    Recover(#[from] RecoverError),
    /// An operator command was refused; nothing changed.
    #[error(transparent)]
    Operator(#[from] OperatorError),
    /// The log failed. Records may or may not be durable: drop the runner
    /// and [`recover`](Runner::recover) a new one.
    #[error("saga log: {0}")]
    Log(Box<dyn std::error::Error + Send + Sync>),
    /// [`run_saga`](Runner::run_saga)'s saga is stuck.
    #[error("saga {saga} is stuck at step {step}: {reason}")]
    Stuck {
        /// The saga.
        saga: SagaId,
        /// The step.
        step: usize,
        /// The last error.
        reason: String,
    },
    /// An earlier log error left records of unknown durability: this
    /// runner refuses every further command. Drop it and
    /// [`recover`](Runner::recover) a new one over the same log.
    #[error("an earlier saga-log error left this runner unusable: recover a new one")]
    Poisoned,
    /// [`run_saga`](Runner::run_saga)'s (or [`wait_for`](Runner::wait_for)'s)
    /// saga is not held: unknown, or its end was reported before.
    #[error("saga {0} is not running")]
    NotRunning(SagaId),
}

struct Done {
    saga: SagaId,
    step: usize,
    kind: InvokeKind,
    attempt: u32,
    /// `None`: abandoned at its deadline (the orchestrator's own timer
    /// decides what that means).
    result: Option<Result<Bytes, StepError>>,
}

/// The async saga runner. Owns the orchestrator, the log and the steps.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use dsys_txn::WallTime;
/// use dsys_txn::saga::{
///     Config, MemSagaLog, Outcome, Runner, SagaDefinition, SagaId, Step, StepContext,
///     StepDefinition, StepError,
/// };
///
/// struct Echo;
/// #[async_trait::async_trait]
/// impl Step for Echo {
///     async fn action(&self, ctx: StepContext) -> Result<Bytes, StepError> { Ok(ctx.input) }
///     async fn compensate(&self, _: StepContext) -> Result<(), StepError> { Ok(()) }
/// }
///
/// let mut runner = Runner::new(
///     Config::default(),
///     MemSagaLog::new(),
///     Arc::new(|_d| Box::pin(async {})),              // a real sleep in production
///     Arc::new(|| WallTime::from_millis(1_000)),     // SystemTime::now() in production
/// ).unwrap();
/// let def = SagaDefinition::new("echo").step(StepDefinition::new("echo"));
/// runner.register(def, vec![Arc::new(Echo)]).unwrap();
/// // Any executor works; these steps and this sleep are ready at once, so
/// // one poll finishes the saga.
/// use futures::FutureExt;
/// let outcome = runner
///     .run_saga(SagaId(1), "echo", Bytes::from_static(b"hi"))
///     .now_or_never()
///     .expect("nothing here waits");
/// assert_eq!(outcome.unwrap(), Outcome::Completed);
/// ```
pub struct Runner<L: SagaLog> {
    core: Orchestrator,
    log: L,
    steps: BTreeMap<String, Vec<Arc<dyn Step>>>,
    sleep: Sleep,
    clock: Clock,
    in_flight: FuturesUnordered<BoxFuture<'static, Done>>,
    events: VecDeque<RunnerEvent>,
    /// A log operation failed: records the orchestrator emitted may not be
    /// durable, and the next successful append's acknowledgement would
    /// cover them, so nothing more may be done.
    poisoned: bool,
}

impl<L: SagaLog> core::fmt::Debug for Runner<L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Runner")
            .field("core", &self.core)
            .field("in_flight", &self.in_flight.len())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl<L: SagaLog> Runner<L> {
    /// A runner with no definitions. Call [`register`](Self::register),
    /// then [`recover`](Self::recover) if `log` may hold sagas.
    pub fn new(config: Config, log: L, sleep: Sleep, clock: Clock) -> Result<Self, RunnerError> {
        Ok(Self {
            core: Orchestrator::new(config)?,
            log,
            steps: BTreeMap::new(),
            sleep,
            clock,
            in_flight: FuturesUnordered::new(),
            events: VecDeque::new(),
            poisoned: false,
        })
    }

    /// Adds a definition with one implementation per step, in order.
    pub fn register(
        &mut self,
        def: SagaDefinition,
        steps: Vec<Arc<dyn Step>>,
    ) -> Result<(), RunnerError> {
        if def.steps.len() != steps.len() {
            return Err(RunnerError::StepCount {
                expected: def.steps.len(),
                got: steps.len(),
            });
        }
        let name = def.name.clone();
        self.core.define(def)?;
        self.steps.insert(name, steps);
        Ok(())
    }

    /// Loads the log and resumes every unfinished saga (see
    /// [`Orchestrator::recover`]).
    pub fn recover(&mut self) -> Result<(), RunnerError> {
        self.usable()?;
        let records = self.log.load().map_err(|e| RunnerError::Log(Box::new(e)))?;
        self.core.recover(records, (self.clock)())?;
        self.pump()
    }

    /// Starts a saga; its `Started` record is durable when this returns.
    /// Drive it with [`next_event`](Self::next_event).
    pub fn start(&mut self, id: SagaId, definition: &str, input: Bytes) -> Result<(), RunnerError> {
        self.usable()?;
        self.core.start(id, definition, input, (self.clock)())?;
        self.pump()
    }

    /// Starts a saga and drives every saga until this one ends. Events of
    /// other sagas stay queued for `next_event`.
    pub async fn run_saga(
        &mut self,
        id: SagaId,
        definition: &str,
        input: Bytes,
    ) -> Result<Outcome, RunnerError> {
        self.start(id, definition, input)?;
        self.wait_for(id).await
    }

    /// Drives every saga until `id` ends, or is stuck (at once if it is
    /// stuck already, its earlier report consumed or not). Events of other
    /// sagas stay queued for `next_event`, also when this future is dropped
    /// before it completes (it takes nothing from the queue but `id`'s
    /// event).
    pub async fn wait_for(&mut self, id: SagaId) -> Result<Outcome, RunnerError> {
        match self.next_matching(Some(id)).await? {
            Some(RunnerEvent::Finished { outcome, .. }) => Ok(outcome),
            Some(RunnerEvent::Stuck { saga, step, reason }) => {
                Err(RunnerError::Stuck { saga, step, reason })
            }
            None => match self.core.status(id) {
                Some(SagaStatus::Stuck { step, reason }) => Err(RunnerError::Stuck {
                    saga: id,
                    step,
                    reason,
                }),
                _ => Err(RunnerError::NotRunning(id)),
            },
        }
    }

    /// Drives all sagas until one finishes or gets stuck; `None` when no
    /// saga has anything left to do (all finished or stuck). Dropping the
    /// future loses nothing: every state change is made before an await.
    pub async fn next_event(&mut self) -> Result<Option<RunnerEvent>, RunnerError> {
        self.next_matching(None).await
    }

    /// The first queued event of `want` (any saga if `None`), driving the
    /// sagas until there is one; `None` when `want` is stuck or not held,
    /// or when no saga has anything left to do.
    async fn next_matching(
        &mut self,
        want: Option<SagaId>,
    ) -> Result<Option<RunnerEvent>, RunnerError> {
        loop {
            self.usable()?;
            self.core.handle_timeout((self.clock)());
            self.pump()?;
            let of = |e: &RunnerEvent| match e {
                RunnerEvent::Finished { saga, .. } | RunnerEvent::Stuck { saga, .. } => *saga,
            };
            if let Some(i) = self
                .events
                .iter()
                .position(|e| want.is_none_or(|w| of(e) == w))
            {
                return Ok(self.events.remove(i));
            }
            // Nothing will come for a saga that is stuck or not held.
            if want.is_some_and(|w| {
                matches!(self.core.status(w), None | Some(SagaStatus::Stuck { .. }))
            }) {
                return Ok(None);
            }
            let timeout = self.core.poll_timeout();
            if self.in_flight.is_empty() {
                let Some(at) = timeout else {
                    return Ok(None);
                };
                (self.sleep)(at.saturating_duration_since((self.clock)())).await;
                continue;
            }
            let sleep = match timeout {
                Some(at) => (self.sleep)(at.saturating_duration_since((self.clock)())),
                None => futures::future::pending().boxed(),
            };
            match select(self.in_flight.next(), sleep).await {
                Either::Left((Some(d), _)) => {
                    let now = (self.clock)();
                    match d.result {
                        Some(r) => self
                            .core
                            .handle_result(d.saga, d.step, d.kind, d.attempt, r, now),
                        None => self.core.handle_timeout(now),
                    }
                }
                Either::Left((None, _)) | Either::Right(((), _)) => {}
            }
        }
    }

    /// Retries a stuck saga's compensation ([`Orchestrator::retry_stuck`]).
    pub fn retry_stuck(&mut self, saga: SagaId) -> Result<(), RunnerError> {
        self.usable()?;
        self.core.retry_stuck(saga, (self.clock)())?;
        self.pump()
    }

    /// Settles a stuck compensation by hand ([`Orchestrator::resolve_stuck`]).
    pub fn resolve_stuck(
        &mut self,
        saga: SagaId,
        resolution: Resolution,
    ) -> Result<(), RunnerError> {
        self.usable()?;
        self.core.resolve_stuck(saga, resolution, (self.clock)())?;
        self.pump()
    }

    /// Where `saga` stands.
    pub fn status(&self, saga: SagaId) -> Option<SagaStatus> {
        self.core.status(saga)
    }

    /// The orchestrator's counters.
    pub fn counters(&self) -> Counters {
        self.core.counters()
    }

    fn usable(&self) -> Result<(), RunnerError> {
        if self.poisoned {
            return Err(RunnerError::Poisoned);
        }
        Ok(())
    }

    /// Drains the orchestrator: appends each batch of records, acknowledges
    /// it, and spawns the invocations it releases. A log error poisons the
    /// runner: the unacknowledged records may be lost, and acknowledging a
    /// later batch would acknowledge them too.
    fn pump(&mut self) -> Result<(), RunnerError> {
        let result = self.pump_inner();
        if let Err(RunnerError::Log(_)) = &result {
            self.poisoned = true;
        }
        result
    }

    fn pump_inner(&mut self) -> Result<(), RunnerError> {
        loop {
            let mut batch = Vec::new();
            let mut last = None;
            while let Some(out) = self.core.poll_output() {
                match out {
                    Output::Persist { id, saga, record } => {
                        batch.push((saga, record));
                        last = Some(id);
                    }
                    Output::Invoke(inv) => self.spawn(inv),
                    Output::Finished { saga, outcome } => {
                        self.log
                            .forget(saga)
                            .map_err(|e| RunnerError::Log(Box::new(e)))?;
                        self.events
                            .push_back(RunnerEvent::Finished { saga, outcome });
                    }
                    Output::Stuck { saga, step, reason } => {
                        self.events
                            .push_back(RunnerEvent::Stuck { saga, step, reason });
                    }
                }
            }
            let Some(last) = last else {
                return Ok(());
            };
            self.log
                .append(&batch)
                .map_err(|e| RunnerError::Log(Box::new(e)))?;
            self.core.on_persisted(last);
        }
    }

    fn spawn(&mut self, inv: Invocation) {
        let step_impl = self
            .core
            .definition_of(inv.saga)
            .and_then(|d| self.steps.get(d))
            .and_then(|s| s.get(inv.step))
            .cloned()
            .expect("every definition the orchestrator knows was registered with its steps");
        let (saga, step, kind, attempt) = (inv.saga, inv.step, inv.kind, inv.attempt);
        // An attempt still running at its deadline is dropped (cancelled),
        // as Temporal cancels an activity at its start-to-close timeout: a
        // hung step must not keep the runner busy forever.
        let give_up = (self.sleep)(inv.deadline.saturating_duration_since((self.clock)()));
        let ctx = StepContext::from(inv);
        let call = async move {
            match kind {
                InvokeKind::Action => step_impl.action(ctx).await,
                InvokeKind::Compensation => step_impl.compensate(ctx).await.map(|()| Bytes::new()),
            }
        };
        // A panicking step is a failed attempt, as Temporal's SDKs make it:
        // unwinding through `next_event` would stop every saga, and after
        // the restart recovery would re-send the same attempt (re-sends are
        // not counted), which would panic again, forever. Only the step's
        // own state can be torn by the unwind; the runner's is not touched
        // inside this future.
        let work = AssertUnwindSafe(call).catch_unwind().map(|r| {
            r.unwrap_or_else(|payload| {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
                Err(StepError::retryable(StepError::PANIC, message))
            })
        });
        let fut = async move {
            let result = match select(Box::pin(work), give_up).await {
                Either::Left((r, _)) => Some(r),
                Either::Right(((), _)) => None,
            };
            Done {
                saga,
                step,
                kind,
                attempt,
                result,
            }
        };
        self.in_flight.push(fut.boxed());
    }
}
