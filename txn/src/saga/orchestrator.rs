//! The sans-IO saga orchestrator: many saga instances, each advanced by
//! results and timeouts, with every decision written to the saga log before
//! it takes effect (Garcia-Molina & Salem §5: a saga execution component
//! that logs each subtransaction's start and end, so that after a crash it
//! resumes forward, or backward through the compensations).
//!
//! The core is event-sourced: every state change is a [`SagaRecord`],
//! applied by one function both when it is emitted and when
//! [`Orchestrator::recover`] replays the log, so a recovered saga is in
//! exactly the state the crashed one had written down.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use super::definition::{
    DefinitionError, InvokeKind, SagaDefinition, SagaId, StepError, idempotency_key, truncate,
};
use super::record::{MAX_MESSAGE_LEN, MAX_PAYLOAD_LEN, Outcome, SagaRecord};
use super::retry::RetryPolicy;
use crate::WallTime;

/// The orchestrator's limits. `#[non_exhaustive]`: start from
/// [`Config::default`] and assign fields.
///
/// ```
/// let mut config = dsys_txn::saga::Config::default();
/// config.max_sagas = 10_000;
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The most unfinished sagas held at once; [`Orchestrator::start`]
    /// refuses more. 1 to [`Config::MAX_SAGAS`]; default 1,000,000.
    pub max_sagas: usize,
    /// The largest saga input or step output accepted, in bytes. A larger
    /// output fails its step (non-retryable, kind `"output_too_large"`).
    /// 1 to [`MAX_PAYLOAD_LEN`]; default 1 MiB.
    pub max_payload_len: usize,
    /// The most saga definitions. 1 to 65,536; default 1,024.
    pub max_definitions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_sagas: 1_000_000,
            max_payload_len: 1 << 20,
            max_definitions: 1024,
        }
    }
}

impl Config {
    /// The largest `max_sagas`.
    pub const MAX_SAGAS: usize = 1 << 30;

    /// Checks every field against its documented bound. Nothing changed on
    /// error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_sagas == 0 || self.max_sagas > Self::MAX_SAGAS {
            return Err(ConfigError::MaxSagas(self.max_sagas));
        }
        if self.max_payload_len == 0 || self.max_payload_len > MAX_PAYLOAD_LEN {
            return Err(ConfigError::MaxPayload(self.max_payload_len));
        }
        if self.max_definitions == 0 || self.max_definitions > 65_536 {
            return Err(ConfigError::MaxDefinitions(self.max_definitions));
        }
        Ok(())
    }
}

/// Why a [`Config`] was refused. Nothing was constructed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_sagas` is 0 or above [`Config::MAX_SAGAS`].
    #[error("max_sagas ({0}) must be in 1..=2^30")]
    MaxSagas(usize),
    /// `max_payload_len` is 0 or above [`MAX_PAYLOAD_LEN`].
    #[error("max_payload_len ({0}) must be in 1..=16 MiB")]
    MaxPayload(usize),
    /// `max_definitions` is 0 or above 65,536.
    #[error("max_definitions ({0}) must be in 1..=65536")]
    MaxDefinitions(usize),
}

/// Numbers a [`Output::Persist`]; acknowledge with
/// [`Orchestrator::on_persisted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersistId(u64);

impl PersistId {
    /// The number, increasing by one per record from 0 in each
    /// orchestrator's life.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// One invocation of a step's action or compensation, for the user to run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Invocation {
    /// The saga.
    pub saga: SagaId,
    /// The step, 0-based.
    pub step: usize,
    /// Action or compensation.
    pub kind: InvokeKind,
    /// 1-based attempt number, to hand back with the result.
    pub attempt: u32,
    /// The same for every attempt and across restarts
    /// ([`idempotency_key`]): apply the effect at most once per key.
    pub idempotency_key: String,
    /// When this attempt times out (start-to-close, or the step's
    /// schedule-to-close if that is sooner); a later result is ignored.
    pub deadline: WallTime,
    /// The saga's input.
    pub input: Bytes,
    /// The outputs of steps `0..step` (for a compensation, of those that
    /// completed).
    pub previous: Vec<Bytes>,
    /// For a compensation, this step's own output (the payment id to
    /// refund); `None` for an action, or for the failed step itself, whose
    /// effect is unknown ([`SagaRecord::StepFailed`]).
    pub output: Option<Bytes>,
}

/// What the orchestrator asks of its user. Drain with
/// [`Orchestrator::poll_output`] until `None` after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Append `record` to `saga`'s log. Records MUST be made durable in the
    /// order they are emitted; then call [`Orchestrator::on_persisted`]
    /// with the last durable `id`.
    Persist {
        /// Acknowledge with this.
        id: PersistId,
        /// The saga it belongs to.
        saga: SagaId,
        /// The record.
        record: SagaRecord,
    },
    /// Run this action or compensation, then call
    /// [`Orchestrator::handle_result`]. Released only after the record
    /// scheduling it is durable.
    Invoke(Invocation),
    /// The saga ended (its `Finished` record is durable); forget its log
    /// once this is handled ([`SagaLog::forget`](super::SagaLog::forget)).
    /// [`Orchestrator::recover`] reports it again while the log holds it.
    Finished {
        /// The saga.
        saga: SagaId,
        /// How it ended.
        outcome: Outcome,
    },
    /// A compensation exhausted its policy: the saga waits for
    /// [`Orchestrator::retry_stuck`] or [`Orchestrator::resolve_stuck`].
    /// Emitted once the `Stuck` record is durable, and again by
    /// [`Orchestrator::recover`].
    Stuck {
        /// The saga.
        saga: SagaId,
        /// The step whose compensation failed.
        step: usize,
        /// The last error.
        reason: String,
    },
}

/// Where a saga stands ([`Orchestrator::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SagaStatus {
    /// Running (or waiting to retry) a step's action or compensation.
    Running {
        /// The step.
        step: usize,
        /// Action or compensation.
        kind: InvokeKind,
        /// The latest attempt scheduled, 0 if none yet.
        attempt: u32,
    },
    /// Waiting for an operator.
    Stuck {
        /// The step whose compensation failed.
        step: usize,
        /// The last error.
        reason: String,
    },
    /// Ended; waiting for its `Finished` record to become durable.
    Finishing(Outcome),
}

/// How an operator settled a stuck compensation ([`Orchestrator::resolve_stuck`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolution {
    /// The step was compensated by hand; continue with the earlier steps'
    /// compensations.
    MarkCompensated,
}

/// Why [`Orchestrator::start`] refused a saga. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A saga with this id is already running (or finishing).
    #[error("saga {0} already exists")]
    Duplicate(SagaId),
    /// No definition of that name was added.
    #[error("no saga definition named {0:?}")]
    UnknownDefinition(String),
    /// [`Config::max_sagas`] sagas are unfinished.
    #[error("too many unfinished sagas")]
    TooMany,
    /// The input exceeds [`Config::max_payload_len`].
    #[error("input of {0} bytes is too large")]
    InputTooLarge(usize),
}

/// Why an operator command was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// No unfinished saga has this id.
    #[error("no saga {0}")]
    Unknown(SagaId),
    /// The saga is not stuck.
    #[error("saga {0} is not stuck")]
    NotStuck(SagaId),
}

/// Why [`Orchestrator::recover`] refused a log. Nothing changed: the
/// orchestrator still holds no saga.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    /// The orchestrator already holds sagas or emitted outputs: recover
    /// into a fresh one.
    #[error("recover needs a fresh orchestrator")]
    NotFresh,
    /// A saga names a definition that was not added.
    #[error("saga {saga} uses unknown definition {definition:?}")]
    UnknownDefinition {
        /// The saga.
        saga: SagaId,
        /// The definition's name.
        definition: String,
    },
    /// A saga's definition is not the one it started with (its
    /// [`fingerprint`](SagaDefinition::fingerprint) differs: a step was
    /// added, removed, renamed, reordered, or gained or lost its
    /// compensation). Its records index steps by position and would be
    /// misapplied: finish such sagas under the old definition (or a copy
    /// of it under another name) before changing it.
    #[error("saga {saga} started with another version of definition {definition:?}")]
    DefinitionChanged {
        /// The saga.
        saga: SagaId,
        /// The definition's name.
        definition: String,
    },
    /// A saga's records do not form a history the orchestrator could have
    /// written (a record before `Started`, a step out of order, a second
    /// `Started`...): a corrupted or foreign log.
    #[error("saga {saga}: record {index} is inconsistent: {why}")]
    Inconsistent {
        /// The saga.
        saga: SagaId,
        /// The record's position among that saga's records.
        index: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// More unfinished sagas than [`Config::max_sagas`].
    #[error("the log holds more unfinished sagas than max_sagas")]
    TooMany,
}

/// Inputs the orchestrator ignored, and other events worth a metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Results for an attempt that is not the current one (a late result
    /// after a timeout, a retry, a crash, or for an unknown saga): ignored.
    pub stale_results: u64,
    /// `on_persisted` ids never emitted in this life: ignored.
    pub stale_acks: u64,
    /// Step outputs above [`Config::max_payload_len`]: the step failed.
    pub oversized_outputs: u64,
    /// Attempts that outran their deadline.
    pub timeouts: u64,
    /// Unfinished sagas resumed by [`Orchestrator::recover`].
    pub recovered: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AttemptState {
    /// The next attempt is to be scheduled.
    Idle,
    /// Scheduled; `persist` is the record to wait for before invoking
    /// (`None`: invoked).
    Scheduled {
        persist: Option<PersistId>,
        deadline: WallTime,
    },
    /// Recovered: the attempt was scheduled and may have run; its result
    /// was not logged.
    Unknown,
    /// Failed; the next attempt is due at `until`.
    Backoff { until: WallTime },
}

#[derive(Debug, Clone)]
struct Cursor {
    step: usize,
    kind: InvokeKind,
    /// The latest attempt number scheduled (0: none).
    attempt: u32,
    /// Attempts made before the last operator retry: the policy counts
    /// from here.
    base: u32,
    /// When the first counted attempt was scheduled: the schedule-to-close
    /// clock.
    first_at: Option<WallTime>,
    /// An attempt may have taken effect without a result saying so: one
    /// timed out (an `AttemptFailed` of kind [`StepError::TIMEOUT`]), or was
    /// re-sent after a recovery while its first delivery may be in flight.
    /// Such a delivery may land after a later attempt's failure, so a
    /// failed action is then compensated too, even after a non-retryable
    /// answer (a guard for steps that do not keep their errors per key;
    /// the re-send is not logged, so a second crash forgets it, but a
    /// retryable last error compensates the step anyway).
    maybe_applied: bool,
    state: AttemptState,
}

impl Cursor {
    /// Whether an attempt was started and has no result yet: the only time
    /// the orchestrator writes a result record (`AttemptFailed`,
    /// `StepCompleted`, `StepFailed`, `CompensationCompleted`, `Stuck`), so
    /// replay refuses one at any other time.
    fn awaits_result(&self) -> bool {
        matches!(
            self.state,
            AttemptState::Unknown | AttemptState::Scheduled { .. }
        )
    }

    fn new(step: usize, kind: InvokeKind) -> Self {
        Self {
            step,
            kind,
            attempt: 0,
            base: 0,
            first_at: None,
            maybe_applied: false,
            state: AttemptState::Idle,
        }
    }
}

#[derive(Debug, Clone)]
enum Phase {
    Running(Cursor),
    Stuck {
        step: usize,
        reason: String,
        attempt: u32,
    },
    /// All work done; the `Finished` record is still to be written.
    Done(Outcome),
    /// The `Finished` record was emitted.
    Finished(Outcome),
}

#[derive(Debug)]
struct Instance {
    def: Arc<SagaDefinition>,
    input: Bytes,
    outputs: Vec<Option<Bytes>>,
    failure: Option<(usize, StepError)>,
    phase: Phase,
    timer: Option<WallTime>,
}

impl Instance {
    fn policy(&self, c: &Cursor) -> &RetryPolicy {
        let step = &self.def.steps[c.step];
        match c.kind {
            InvokeKind::Action => &step.action,
            // A compensation cursor is only created for a step that has one
            // (`next_compensation`).
            InvokeKind::Compensation => step
                .compensation
                .as_ref()
                .expect("compensation cursors exist only for steps with a compensation"),
        }
    }

    /// The phase after compensations are done down to (and excluding)
    /// `below`: the next lower step with a compensation, or the end.
    fn next_compensation(&self, below: usize) -> Phase {
        match (0..below)
            .rev()
            .find(|&i| self.def.steps[i].compensation.is_some())
        {
            Some(i) => Phase::Running(Cursor::new(i, InvokeKind::Compensation)),
            None => {
                let (failed_step, error) = self
                    .failure
                    .clone()
                    .expect("compensation only runs after a StepFailed record");
                Phase::Done(Outcome::Compensated { failed_step, error })
            }
        }
    }

    /// Applies one record (Garcia-Molina & Salem §5: the log replayed
    /// forward); the one place where a saga's state changes.
    fn apply(&mut self, rec: &SagaRecord) -> Result<(), &'static str> {
        let n = self.def.steps.len();
        match rec {
            SagaRecord::Started { .. } => return Err("a second Started"),
            SagaRecord::AttemptStarted {
                step,
                kind,
                attempt,
                at,
            } => {
                let Phase::Running(c) = &mut self.phase else {
                    return Err("attempt outside a running step");
                };
                if c.step != *step || c.kind != *kind || Some(*attempt) != c.attempt.checked_add(1)
                {
                    return Err("attempt does not follow the current one");
                }
                c.attempt = *attempt;
                c.first_at.get_or_insert(*at);
                c.state = AttemptState::Unknown;
            }
            SagaRecord::AttemptFailed {
                step,
                kind,
                attempt,
                retry_at,
                error,
            } => {
                let Phase::Running(c) = &mut self.phase else {
                    return Err("failure outside a running step");
                };
                if c.step != *step || c.kind != *kind || c.attempt != *attempt {
                    return Err("failure of another attempt");
                }
                if !c.awaits_result() {
                    return Err("failure of an attempt not running");
                }
                c.maybe_applied |= error.kind == StepError::TIMEOUT;
                c.state = AttemptState::Backoff { until: *retry_at };
            }
            SagaRecord::StepCompleted { step, output } => {
                match &self.phase {
                    Phase::Running(c)
                        if c.step == *step && c.kind == InvokeKind::Action && c.awaits_result() => {
                    }
                    _ => return Err("completion of a step not running"),
                }
                self.outputs[*step] = Some(output.clone());
                self.phase = if step + 1 < n {
                    Phase::Running(Cursor::new(step + 1, InvokeKind::Action))
                } else {
                    Phase::Done(Outcome::Completed)
                };
            }
            SagaRecord::StepFailed {
                step,
                error,
                compensate_failed_step,
            } => {
                match &self.phase {
                    Phase::Running(c)
                        if c.step == *step && c.kind == InvokeKind::Action && c.awaits_result() => {
                    }
                    _ => return Err("failure of a step not running"),
                }
                self.failure = Some((*step, error.clone()));
                self.phase = self.next_compensation(step + usize::from(*compensate_failed_step));
            }
            SagaRecord::CompensationCompleted { step } => {
                match &self.phase {
                    Phase::Running(c)
                        if c.step == *step
                            && c.kind == InvokeKind::Compensation
                            && c.awaits_result() => {}
                    _ => return Err("compensation of a step not compensating"),
                }
                self.phase = self.next_compensation(*step);
            }
            SagaRecord::Stuck { step, reason } => {
                let Phase::Running(c) = &self.phase else {
                    return Err("stuck outside a compensation");
                };
                if c.step != *step || c.kind != InvokeKind::Compensation || !c.awaits_result() {
                    return Err("stuck on a step not compensating");
                }
                self.phase = Phase::Stuck {
                    step: *step,
                    reason: reason.clone(),
                    attempt: c.attempt,
                };
            }
            SagaRecord::OperatorRetry { .. } => {
                let Phase::Stuck { step, attempt, .. } = &self.phase else {
                    return Err("operator retry of a saga not stuck");
                };
                let mut c = Cursor::new(*step, InvokeKind::Compensation);
                c.attempt = *attempt;
                c.base = *attempt;
                self.phase = Phase::Running(c);
            }
            SagaRecord::Resolved { step } => {
                match &self.phase {
                    Phase::Stuck { step: s, .. } if s == step => {}
                    _ => return Err("resolution of a step not stuck"),
                }
                self.phase = self.next_compensation(*step);
            }
            SagaRecord::Finished { outcome } => {
                match &self.phase {
                    Phase::Done(o) if o == outcome => {}
                    _ => return Err("finished before its work was done"),
                }
                self.phase = Phase::Finished(outcome.clone());
            }
        }
        Ok(())
    }
}

/// What to release once a record is durable.
#[derive(Debug)]
enum Deferred {
    Invoke { saga: SagaId, persist: PersistId },
    Finished(SagaId),
    Stuck(SagaId),
}

/// The saga orchestrator: starts sagas, schedules each step's action and
/// compensation with retries and timeouts, and writes every decision to the
/// saga log first. It does no I/O and reads no clock.
///
/// Methods, by group:
/// - setup: [`new`](Self::new), [`define`](Self::define), [`recover`](Self::recover);
/// - commands: [`start`](Self::start), [`retry_stuck`](Self::retry_stuck),
///   [`resolve_stuck`](Self::resolve_stuck);
/// - inputs: [`handle_result`](Self::handle_result),
///   [`handle_timeout`](Self::handle_timeout), [`on_persisted`](Self::on_persisted);
/// - outputs: [`poll_output`](Self::poll_output) (drain until `None`), then
///   [`poll_timeout`](Self::poll_timeout);
/// - getters: [`status`](Self::status), [`sagas`](Self::sagas),
///   [`counters`](Self::counters).
///
/// # Durability contract
///
/// - Every `Persist` record MUST be durable, in emission order, before its
///   id (or a later one) is passed to `on_persisted`. The orchestrator
///   releases an `Invoke` only after the `AttemptStarted` record before it
///   is acknowledged, and `Finished`/`Stuck` only after their records are.
/// - Records not yet acknowledged MAY be lost in a crash (any suffix of
///   them); recovery then re-runs the lost decisions.
/// - A step MUST apply each idempotency key's effect at most once and
///   return the first result again for a repeated key (a non-retryable
///   error included: it is the key's final answer; a retryable error is
///   not, so a failed action whose last error was retryable is compensated
///   too): recovery re-invokes an attempt whose result was not logged,
///   with the same key.
/// - A compensation MUST be idempotent, MUST succeed when its action never
///   took effect, and SHOULD make a later delivery of that action a no-op
///   (an action that timed out may still arrive after its compensation).
#[derive(Debug)]
pub struct Orchestrator {
    config: Config,
    definitions: BTreeMap<String, Arc<SagaDefinition>>,
    sagas: BTreeMap<SagaId, Instance>,
    timers: BTreeSet<(WallTime, SagaId)>,
    outputs: VecDeque<Output>,
    deferred: VecDeque<(PersistId, Deferred)>,
    next_persist: u64,
    counters: Counters,
}

impl Orchestrator {
    /// An orchestrator with no definitions and no sagas.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            definitions: BTreeMap::new(),
            sagas: BTreeMap::new(),
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            deferred: VecDeque::new(),
            next_persist: 0,
            counters: Counters::default(),
        })
    }

    /// Adds a definition; sagas start and recover by its name. Nothing
    /// changed on error.
    pub fn define(&mut self, def: SagaDefinition) -> Result<(), DefinitionError> {
        def.validate()?;
        if self.definitions.contains_key(&def.name) {
            return Err(DefinitionError::Duplicate(def.name));
        }
        if self.definitions.len() >= self.config.max_definitions {
            return Err(DefinitionError::TooMany);
        }
        self.definitions.insert(def.name.clone(), Arc::new(def));
        Ok(())
    }

    /// Starts saga `id` of definition `definition` with `input`: emits its
    /// `Started` record and schedules the first action.
    pub fn start(
        &mut self,
        id: SagaId,
        definition: &str,
        input: Bytes,
        now: WallTime,
    ) -> Result<(), StartError> {
        if self.sagas.contains_key(&id) {
            return Err(StartError::Duplicate(id));
        }
        let Some(def) = self.definitions.get(definition) else {
            return Err(StartError::UnknownDefinition(definition.to_owned()));
        };
        if self.sagas.len() >= self.config.max_sagas {
            return Err(StartError::TooMany);
        }
        if input.len() > self.config.max_payload_len {
            return Err(StartError::InputTooLarge(input.len()));
        }
        let record = SagaRecord::Started {
            definition: def.name.clone(),
            fingerprint: def.fingerprint(),
            input: input.clone(),
        };
        self.sagas.insert(id, Self::instance(def.clone(), input));
        self.push_persist(id, record);
        self.advance(id, now);
        Ok(())
    }

    fn instance(def: Arc<SagaDefinition>, input: Bytes) -> Instance {
        Instance {
            outputs: vec![None; def.steps.len()],
            def,
            input,
            failure: None,
            phase: Phase::Running(Cursor::new(0, InvokeKind::Action)),
            timer: None,
        }
    }

    /// Rebuilds the unfinished sagas from their logs, `(saga, record)` in
    /// append order (records of different sagas may interleave), and
    /// resumes each where it stopped: an attempt whose result was not
    /// logged is invoked again with the same idempotency key and a fresh
    /// start-to-close deadline (its schedule-to-close clock still runs from
    /// the logged first attempt: deadlines are wall-clock times because they
    /// outlive the process); a saga in backoff waits for the logged retry
    /// time; a stuck saga is reported again; a saga whose `Finished` record
    /// is in the log is reported [`Output::Finished`] again (its log was not
    /// forgotten, so its end may not have been handled) and dropped.
    /// Definitions must be added first, with the steps each saga started
    /// with ([`RecoverError::DefinitionChanged`] otherwise; retry policies
    /// may differ). Re-invoking after a crash does not count as an attempt.
    pub fn recover(
        &mut self,
        records: impl IntoIterator<Item = (SagaId, SagaRecord)>,
        now: WallTime,
    ) -> Result<(), RecoverError> {
        if !self.sagas.is_empty() || !self.outputs.is_empty() || self.next_persist != 0 {
            return Err(RecoverError::NotFresh);
        }
        let mut sagas: BTreeMap<SagaId, (usize, Instance)> = BTreeMap::new();
        for (saga, rec) in records {
            let inconsistent = |index, why| RecoverError::Inconsistent { saga, index, why };
            match (sagas.get_mut(&saga), &rec) {
                (
                    None,
                    SagaRecord::Started {
                        definition,
                        fingerprint,
                        input,
                    },
                ) => {
                    let Some(def) = self.definitions.get(definition) else {
                        return Err(RecoverError::UnknownDefinition {
                            saga,
                            definition: definition.clone(),
                        });
                    };
                    // The records index steps by position: under another
                    // shape of the definition they would be misapplied.
                    if def.fingerprint() != *fingerprint {
                        return Err(RecoverError::DefinitionChanged {
                            saga,
                            definition: definition.clone(),
                        });
                    }
                    sagas.insert(saga, (1, Self::instance(def.clone(), input.clone())));
                }
                (None, _) => return Err(inconsistent(0, "first record is not Started")),
                (Some((count, inst)), _) => {
                    check_steps(inst, &rec).map_err(|why| inconsistent(*count, why))?;
                    inst.apply(&rec).map_err(|why| inconsistent(*count, why))?;
                    *count += 1;
                }
            }
        }
        let live = sagas
            .values()
            .filter(|(_, i)| !matches!(i.phase, Phase::Finished(_)))
            .count();
        if live > self.config.max_sagas {
            return Err(RecoverError::TooMany);
        }
        for (saga, (_, inst)) in sagas {
            if let Phase::Finished(outcome) = inst.phase {
                // Its log was not forgotten, so its end may never have been
                // reported: report it again (at least once).
                self.outputs.push_back(Output::Finished { saga, outcome });
                continue;
            }
            self.counters.recovered += 1;
            if let Phase::Stuck { step, reason, .. } = &inst.phase {
                self.outputs.push_back(Output::Stuck {
                    saga,
                    step: *step,
                    reason: reason.clone(),
                });
            }
            self.sagas.insert(saga, inst);
            self.advance(saga, now);
        }
        Ok(())
    }

    /// The result of `saga`'s `attempt` of `step`'s `kind`, as the
    /// [`Invocation`] named them (a compensation's `Ok` bytes are ignored).
    /// A result for anything but the current, invoked attempt is ignored and
    /// counted in [`Counters::stale_results`]. Attempt numbers are logged, so
    /// after a crash an answer to the re-invoked attempt's earlier delivery
    /// is accepted: it carried the same idempotency key, hence the same
    /// outcome.
    pub fn handle_result(
        &mut self,
        saga: SagaId,
        step: usize,
        kind: InvokeKind,
        attempt: u32,
        result: Result<Bytes, StepError>,
        now: WallTime,
    ) {
        let current = self.sagas.get(&saga).is_some_and(|i| match &i.phase {
            Phase::Running(c) => {
                c.step == step
                    && c.kind == kind
                    && c.attempt == attempt
                    && matches!(c.state, AttemptState::Scheduled { persist: None, .. })
            }
            _ => false,
        });
        if !current {
            self.counters.stale_results += 1;
            return;
        }
        match result {
            Ok(output) if kind == InvokeKind::Action => {
                if output.len() > self.config.max_payload_len {
                    self.counters.oversized_outputs += 1;
                    let error = StepError::non_retryable(
                        "output_too_large",
                        format!("output of {} bytes", output.len()),
                    );
                    // The action ran and had its effect: compensate it too.
                    self.fail_attempt(saga, error, true, now);
                } else {
                    self.push_persist(saga, SagaRecord::StepCompleted { step, output });
                }
            }
            Ok(_) => {
                self.push_persist(saga, SagaRecord::CompensationCompleted { step });
            }
            Err(error) => self.fail_attempt(saga, error.bounded(), false, now),
        }
        self.advance(saga, now);
    }

    /// Fires every timer due at `now`: an attempt past its deadline is a
    /// failed, retryable attempt with kind [`StepError::TIMEOUT`] (an action
    /// whose schedule-to-close has passed then fails its step, and, its
    /// effect being unknown, is compensated too; a compensation is retried
    /// like any failure until its policy is exhausted, then the saga is
    /// stuck); a backoff that ended schedules the next attempt. Early calls
    /// do nothing.
    pub fn handle_timeout(&mut self, now: WallTime) {
        while let Some(&(at, saga)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(inst) = self.sagas.get_mut(&saga) else {
                continue;
            };
            inst.timer = None;
            let Phase::Running(c) = &mut inst.phase else {
                continue;
            };
            match c.state {
                AttemptState::Scheduled { deadline, .. } => {
                    self.counters.timeouts += 1;
                    let error = StepError::retryable(
                        StepError::TIMEOUT,
                        format!("attempt {} timed out at {deadline}", c.attempt),
                    );
                    self.fail_attempt(saga, error, true, now);
                }
                AttemptState::Backoff { .. } => c.state = AttemptState::Idle,
                AttemptState::Idle | AttemptState::Unknown => {}
            }
            self.advance(saga, now);
        }
    }

    /// Acknowledges that every record up to and including `id` is durable,
    /// releasing the invocations and reports that waited on them. An id
    /// never emitted is ignored and counted in [`Counters::stale_acks`].
    pub fn on_persisted(&mut self, id: PersistId) {
        if id.0 >= self.next_persist {
            self.counters.stale_acks += 1;
            return;
        }
        while let Some((pid, _)) = self.deferred.front() {
            if *pid > id {
                break;
            }
            let (_, d) = self
                .deferred
                .pop_front()
                .expect("front() just returned an entry");
            match d {
                Deferred::Invoke { saga, persist } => self.release_invoke(saga, persist),
                Deferred::Finished(saga) => {
                    if let Some(Instance {
                        phase: Phase::Finished(outcome),
                        ..
                    }) = self.sagas.get(&saga)
                    {
                        let outcome = outcome.clone();
                        self.set_timer(saga, None);
                        self.sagas.remove(&saga);
                        self.outputs.push_back(Output::Finished { saga, outcome });
                    }
                }
                Deferred::Stuck(saga) => {
                    if let Some(Instance {
                        phase: Phase::Stuck { step, reason, .. },
                        ..
                    }) = self.sagas.get(&saga)
                    {
                        self.outputs.push_back(Output::Stuck {
                            saga,
                            step: *step,
                            reason: reason.clone(),
                        });
                    }
                }
            }
        }
    }

    /// Retries a stuck saga's compensation with a fresh policy (attempts
    /// and schedule-to-close count again from now); the `OperatorRetry`
    /// record is persisted first.
    pub fn retry_stuck(&mut self, saga: SagaId, now: WallTime) -> Result<(), OperatorError> {
        self.stuck_step(saga)?;
        self.push_persist(saga, SagaRecord::OperatorRetry { at: now });
        self.advance(saga, now);
        Ok(())
    }

    /// Settles a stuck compensation by hand and continues with the earlier
    /// steps' compensations; the `Resolved` record is persisted first.
    pub fn resolve_stuck(
        &mut self,
        saga: SagaId,
        resolution: Resolution,
        now: WallTime,
    ) -> Result<(), OperatorError> {
        let step = self.stuck_step(saga)?;
        match resolution {
            Resolution::MarkCompensated => {
                self.push_persist(saga, SagaRecord::Resolved { step });
            }
        }
        self.advance(saga, now);
        Ok(())
    }

    fn stuck_step(&self, saga: SagaId) -> Result<usize, OperatorError> {
        match self.sagas.get(&saga) {
            None => Err(OperatorError::Unknown(saga)),
            Some(Instance {
                phase: Phase::Stuck { step, .. },
                ..
            }) => Ok(*step),
            Some(_) => Err(OperatorError::NotStuck(saga)),
        }
    }

    /// The next output, or `None` when drained. Drain after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<WallTime> {
        self.timers.first().map(|&(t, _)| t)
    }

    /// Where `saga` stands; `None` if it is unknown or finished.
    pub fn status(&self, saga: SagaId) -> Option<SagaStatus> {
        self.sagas.get(&saga).map(status_of)
    }

    /// Every unfinished saga and its status, by id.
    pub fn sagas(&self) -> impl Iterator<Item = (SagaId, SagaStatus)> + '_ {
        self.sagas.iter().map(|(id, i)| (*id, status_of(i)))
    }

    /// The name of `saga`'s definition; `None` if the saga is unknown or
    /// finished.
    pub fn definition_of(&self, saga: SagaId) -> Option<&str> {
        self.sagas.get(&saga).map(|i| i.def.name.as_str())
    }

    /// Counters of ignored input and notable events.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    fn push_persist(&mut self, saga: SagaId, record: SagaRecord) -> PersistId {
        let inst = self
            .sagas
            .get_mut(&saga)
            .expect("records are only emitted for held sagas");
        if !matches!(record, SagaRecord::Started { .. }) {
            inst.apply(&record)
                .expect("the orchestrator only emits records valid in the current phase");
        }
        let id = PersistId(self.next_persist);
        self.next_persist += 1;
        self.outputs.push_back(Output::Persist { id, saga, record });
        id
    }

    /// Records a failed attempt: a retry after the backoff, or the end of
    /// the step. `effect_unknown`: the attempt may have taken effect (it
    /// timed out, or succeeded with an unusable output), so a failed action
    /// is compensated too (as it is after a retryable error, or when an
    /// earlier attempt's outcome was unknown).
    fn fail_attempt(
        &mut self,
        saga: SagaId,
        error: StepError,
        effect_unknown: bool,
        now: WallTime,
    ) {
        let inst = &self.sagas[&saga];
        let Phase::Running(c) = &inst.phase else {
            return;
        };
        let policy = inst.policy(c);
        let failed = c.attempt - c.base;
        // `u32::MAX` attempts: no number is left for another.
        let exhausted =
            (policy.max_attempts != 0 && failed >= policy.max_attempts) || c.attempt == u32::MAX;
        let retry_at = now + policy.backoff(failed);
        let s2c_over = match (policy.schedule_to_close, c.first_at) {
            (Some(limit), Some(first)) => retry_at >= first + limit,
            _ => false,
        };
        let (step, kind, attempt, maybe_applied) = (c.step, c.kind, c.attempt, c.maybe_applied);
        let record = if policy.retries(&error.kind, error.retryable) && !exhausted && !s2c_over {
            SagaRecord::AttemptFailed {
                step,
                kind,
                attempt,
                error,
                retry_at,
            }
        } else if kind == InvokeKind::Action {
            SagaRecord::StepFailed {
                step,
                // Only the step's own non-retryable answer is final for its
                // key (the durability contract: a repeated key gets the
                // first result again), so only it rules out an effect. After
                // a retryable error (or a policy-listed kind), an earlier
                // delivery of the same key, from an attempt that timed out
                // or one sent before a crash and re-sent after it, may still
                // land: compensate the step too, which a compensation must
                // survive when nothing took effect. `maybe_applied` is a
                // second guard, for steps that do not keep their errors.
                compensate_failed_step: effect_unknown || maybe_applied || error.retryable,
                error,
            }
        } else {
            let mut reason = format!("compensation failed after {failed} attempts: {error}");
            if s2c_over && !exhausted {
                reason.push_str(" (schedule-to-close timeout)");
            }
            truncate(&mut reason, MAX_MESSAGE_LEN);
            SagaRecord::Stuck { step, reason }
        };
        let stuck = matches!(record, SagaRecord::Stuck { .. });
        let id = self.push_persist(saga, record);
        if stuck {
            self.deferred.push_back((id, Deferred::Stuck(saga)));
        }
    }

    /// Takes the saga's next step on its own (schedule an attempt,
    /// re-invoke after recovery, write `Finished`) and re-arms its timer.
    fn advance(&mut self, saga: SagaId, now: WallTime) {
        let Some(inst) = self.sagas.get_mut(&saga) else {
            return;
        };
        match &inst.phase {
            Phase::Running(c) => match c.state {
                AttemptState::Idle => {
                    let at = SagaRecord::AttemptStarted {
                        step: c.step,
                        kind: c.kind,
                        attempt: c.attempt + 1,
                        at: now,
                    };
                    let persist = self.push_persist(saga, at);
                    let inst = self.sagas.get_mut(&saga).expect("held above");
                    let deadline = deadline(inst, now);
                    if let Phase::Running(c) = &mut inst.phase {
                        c.state = AttemptState::Scheduled {
                            persist: Some(persist),
                            deadline,
                        };
                    }
                    self.deferred
                        .push_back((persist, Deferred::Invoke { saga, persist }));
                }
                AttemptState::Unknown => {
                    let deadline = deadline(inst, now);
                    if let Phase::Running(c) = &mut inst.phase {
                        c.maybe_applied = true;
                        c.state = AttemptState::Scheduled {
                            persist: None,
                            deadline,
                        };
                    }
                    let inv = invocation(saga, inst, deadline);
                    self.outputs.push_back(Output::Invoke(inv));
                }
                AttemptState::Scheduled { .. } | AttemptState::Backoff { .. } => {}
            },
            Phase::Done(outcome) => {
                let outcome = outcome.clone();
                let id = self.push_persist(saga, SagaRecord::Finished { outcome });
                self.deferred.push_back((id, Deferred::Finished(saga)));
            }
            Phase::Stuck { .. } | Phase::Finished(_) => {}
        }
        let timer = match &self.sagas[&saga].phase {
            Phase::Running(c) => match c.state {
                AttemptState::Scheduled { deadline, .. } => Some(deadline),
                AttemptState::Backoff { until } => Some(until),
                AttemptState::Idle | AttemptState::Unknown => None,
            },
            _ => None,
        };
        self.set_timer(saga, timer);
    }

    fn set_timer(&mut self, saga: SagaId, at: Option<WallTime>) {
        let Some(inst) = self.sagas.get_mut(&saga) else {
            return;
        };
        if inst.timer == at {
            return;
        }
        if let Some(old) = inst.timer.take() {
            self.timers.remove(&(old, saga));
        }
        if let Some(t) = at {
            self.timers.insert((t, saga));
        }
        inst.timer = at;
    }

    fn release_invoke(&mut self, saga: SagaId, persist: PersistId) {
        let Some(inst) = self.sagas.get_mut(&saga) else {
            return;
        };
        let Phase::Running(c) = &mut inst.phase else {
            return;
        };
        // The attempt may have timed out while its record was in flight.
        let AttemptState::Scheduled {
            persist: p @ Some(_),
            deadline,
        } = &mut c.state
        else {
            return;
        };
        if *p != Some(persist) {
            return;
        }
        *p = None;
        let deadline = *deadline;
        let inv = invocation(saga, inst, deadline);
        self.outputs.push_back(Output::Invoke(inv));
    }
}

/// Rejects step indexes beyond the definition before `apply` indexes with
/// them (the codec only bounds them by `MAX_STEPS`).
fn check_steps(inst: &Instance, rec: &SagaRecord) -> Result<(), &'static str> {
    let step = match rec {
        SagaRecord::AttemptStarted { step, .. }
        | SagaRecord::AttemptFailed { step, .. }
        | SagaRecord::StepCompleted { step, .. }
        | SagaRecord::StepFailed { step, .. }
        | SagaRecord::CompensationCompleted { step }
        | SagaRecord::Stuck { step, .. }
        | SagaRecord::Resolved { step } => *step,
        SagaRecord::Finished {
            outcome: Outcome::Compensated { failed_step, .. },
        } => *failed_step,
        _ => 0,
    };
    if step >= inst.def.steps.len() {
        return Err("step beyond the definition");
    }
    Ok(())
}

fn deadline(inst: &Instance, now: WallTime) -> WallTime {
    let Phase::Running(c) = &inst.phase else {
        return now;
    };
    let policy = inst.policy(c);
    let mut d = now + policy.start_to_close;
    if let (Some(limit), Some(first)) = (policy.schedule_to_close, c.first_at) {
        d = d.min(first + limit);
    }
    d
}

fn invocation(saga: SagaId, inst: &Instance, deadline: WallTime) -> Invocation {
    let Phase::Running(c) = &inst.phase else {
        unreachable!("invocations are built for running sagas only");
    };
    Invocation {
        saga,
        step: c.step,
        kind: c.kind,
        attempt: c.attempt,
        idempotency_key: idempotency_key(saga, c.step, c.kind),
        deadline,
        input: inst.input.clone(),
        previous: inst.outputs[..c.step].iter().flatten().cloned().collect(),
        output: match c.kind {
            InvokeKind::Action => None,
            InvokeKind::Compensation => inst.outputs[c.step].clone(),
        },
    }
}

fn status_of(inst: &Instance) -> SagaStatus {
    match &inst.phase {
        Phase::Running(c) => SagaStatus::Running {
            step: c.step,
            kind: c.kind,
            attempt: c.attempt,
        },
        Phase::Stuck { step, reason, .. } => SagaStatus::Stuck {
            step: *step,
            reason: reason.clone(),
        },
        Phase::Done(o) | Phase::Finished(o) => SagaStatus::Finishing(o.clone()),
    }
}
