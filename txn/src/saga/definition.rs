//! A saga definition: an ordered list of steps, each an action with an
//! optional compensation (Garcia-Molina & Salem, "Sagas", SIGMOD 1987, §1:
//! a saga is a sequence T1..Tn with compensating transactions C1..Cn-1).

use core::fmt;

use super::retry::{PolicyError, RetryPolicy};

/// The longest definition, step or error-kind name, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// The most steps a saga definition may have.
pub const MAX_STEPS: usize = 1024;

/// A saga instance's identifier, chosen by the user. Never reuse one, even
/// after its saga finished: idempotency keys derive from it, so a second
/// saga under the same id would get the first one's remembered results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SagaId(pub u64);

impl fmt::Display for SagaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which half of a step an invocation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum InvokeKind {
    /// The step's forward action, T_i.
    Action,
    /// The step's compensation, C_i, which semantically undoes T_i.
    Compensation,
}

impl fmt::Display for InvokeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Action => "action",
            Self::Compensation => "compensation",
        })
    }
}

/// The idempotency key of `saga`'s step `step` (0-based) for `kind`:
/// `"{saga}/{step}/action"` or `"{saga}/{step}/compensation"`. It is the
/// same for every attempt and across restarts, so a step implementation
/// that remembers the keys it has applied applies each action and each
/// compensation at most once, although the orchestrator invokes at least
/// once.
pub fn idempotency_key(saga: SagaId, step: usize, kind: InvokeKind) -> String {
    format!("{saga}/{step}/{kind}")
}

/// A step's failure, as its implementation reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[error("{kind}: {message}")]
pub struct StepError {
    /// A short, stable classification (`"timeout"`, `"insufficient_funds"`),
    /// matched against [`RetryPolicy::non_retryable`]. At most
    /// [`MAX_NAME_LEN`] bytes are kept.
    pub kind: String,
    /// Free text for people. At most [`MAX_MESSAGE_LEN`](super::record::MAX_MESSAGE_LEN)
    /// bytes are kept.
    pub message: String,
    /// Whether another attempt might succeed. `false` ends the retries.
    pub retryable: bool,
}

impl StepError {
    /// The kind the orchestrator gives an attempt that outran its timeout.
    pub const TIMEOUT: &'static str = "timeout";
    /// The kind the async [`Runner`](super::Runner) gives an attempt whose
    /// step panicked (retryable, like any failure its policy may retry; the
    /// message is the panic's). Under `panic = "abort"` nothing is caught.
    pub const PANIC: &'static str = "panic";

    /// A failure that another attempt might not have.
    pub fn retryable(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that retrying cannot fix (a declined card, a validation
    /// error).
    pub fn non_retryable(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// The error cut to the lengths a record may hold, on character
    /// boundaries, so a step cannot make the log refuse a record.
    pub(crate) fn bounded(mut self) -> Self {
        truncate(&mut self.kind, MAX_NAME_LEN);
        truncate(&mut self.message, super::record::MAX_MESSAGE_LEN);
        self
    }
}

pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// One step of a saga. `#[non_exhaustive]`: build with
/// [`StepDefinition::new`] and assign fields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StepDefinition {
    /// The step's name, unique in its saga, non-empty, at most
    /// [`MAX_NAME_LEN`] bytes.
    pub name: String,
    /// How the action is retried.
    pub action: RetryPolicy,
    /// How the compensation is retried; `None` for a step with nothing to
    /// undo (a read, a check, or the pivot after which the saga only goes
    /// forward).
    pub compensation: Option<RetryPolicy>,
}

impl StepDefinition {
    /// A step with the default action policy and a compensation with
    /// [`RetryPolicy::compensation`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            action: RetryPolicy::default(),
            compensation: Some(RetryPolicy::compensation()),
        }
    }

    /// The same step without a compensation.
    #[must_use]
    pub fn without_compensation(mut self) -> Self {
        self.compensation = None;
        self
    }
}

/// A saga's definition: its name and its steps in order. `#[non_exhaustive]`:
/// build with [`SagaDefinition::new`] and [`step`](Self::step).
///
/// ```
/// use dsys_txn::saga::{SagaDefinition, StepDefinition};
///
/// let order = SagaDefinition::new("order")
///     .step(StepDefinition::new("create_order"))
///     .step(StepDefinition::new("deduct_inventory"))
///     .step(StepDefinition::new("process_payment").without_compensation());
/// order.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SagaDefinition {
    /// The definition's name, by which sagas are started and recovered;
    /// non-empty, at most [`MAX_NAME_LEN`] bytes.
    pub name: String,
    /// The steps, run in order; compensations run in reverse. 1 to
    /// [`MAX_STEPS`] of them.
    pub steps: Vec<StepDefinition>,
}

impl SagaDefinition {
    /// A definition with no steps yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    /// Appends a step.
    #[must_use]
    pub fn step(mut self, step: StepDefinition) -> Self {
        self.steps.push(step);
        self
    }

    /// The definition's identity as the saga log records it (in
    /// [`SagaRecord::Started`](super::SagaRecord::Started)): a 64-bit FNV-1a
    /// hash of its name and of each step's name and whether it has a
    /// compensation, in order, every name length-prefixed so that no two
    /// different lists hash the same bytes. [`Orchestrator::recover`]
    /// refuses a saga whose definition's fingerprint changed since it
    /// started: its records index steps by position, so a step added,
    /// removed, renamed, reordered, or given or stripped of a compensation
    /// would make them mean something else. Retry policies are not part of
    /// it: they may be tuned between restarts.
    ///
    /// [`Orchestrator::recover`]: super::Orchestrator::recover
    pub fn fingerprint(&self) -> u64 {
        // FNV-1a (Fowler, Noll, Vo): stable across platforms and releases,
        // unlike `std`'s `DefaultHasher`.
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        fn eat(h: &mut u64, bytes: &[u8]) {
            for b in bytes {
                *h ^= u64::from(*b);
                *h = h.wrapping_mul(PRIME);
            }
        }
        fn name(h: &mut u64, s: &str) {
            eat(h, &(s.len() as u64).to_le_bytes());
            eat(h, s.as_bytes());
        }
        let mut h = OFFSET;
        name(&mut h, &self.name);
        eat(&mut h, &(self.steps.len() as u64).to_le_bytes());
        for step in &self.steps {
            name(&mut h, &step.name);
            eat(&mut h, &[u8::from(step.compensation.is_some())]);
        }
        h
    }

    /// Checks names, step count and every policy. Nothing changed on error.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        if self.name.is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err(DefinitionError::BadName(self.name.clone()));
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(DefinitionError::StepCount(self.steps.len()));
        }
        for (i, step) in self.steps.iter().enumerate() {
            if step.name.is_empty() || step.name.len() > MAX_NAME_LEN {
                return Err(DefinitionError::BadName(step.name.clone()));
            }
            if self.steps[..i].iter().any(|s| s.name == step.name) {
                return Err(DefinitionError::DuplicateStep(step.name.clone()));
            }
            step.action
                .validate()
                .map_err(|error| DefinitionError::Policy {
                    step: step.name.clone(),
                    error,
                })?;
            if let Some(c) = &step.compensation {
                c.validate().map_err(|error| DefinitionError::Policy {
                    step: step.name.clone(),
                    error,
                })?;
            }
        }
        Ok(())
    }
}

/// Why a [`SagaDefinition`] was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// A definition or step name is empty or longer than [`MAX_NAME_LEN`].
    #[error("bad name {0:?}: must be 1 to 255 bytes")]
    BadName(String),
    /// The definition has no steps or more than [`MAX_STEPS`].
    #[error("a saga needs 1 to {MAX_STEPS} steps, not {0}")]
    StepCount(usize),
    /// Two steps share a name.
    #[error("two steps are named {0:?}")]
    DuplicateStep(String),
    /// A step's policy is invalid.
    #[error("step {step:?}: {error}")]
    Policy {
        /// The step.
        step: String,
        /// What is wrong with its policy.
        error: PolicyError,
    },
    /// A definition of that name was already added.
    #[error("a definition named {0:?} already exists")]
    Duplicate(String),
    /// The orchestrator holds `max_definitions` definitions already.
    #[error("too many definitions")]
    TooMany,
}
