//! Tunables shared by the coordinator and the participant.

use std::time::Duration;

/// Timeouts and limits of a [`Coordinator`](super::Coordinator) or a
/// [`Participant`](super::Participant) (one type for both roles; each reads
/// the fields that concern it).
///
/// Built from [`Default`] and set by assignment, so that adding a field is
/// not a breaking change; [`Config::validate`] bounds every field and the
/// constructors call it:
///
/// ```
/// use std::time::Duration;
/// use dsys_txn::twopc::Config;
///
/// let mut config = Config::default();
/// config.vote_timeout = Duration::from_secs(2);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Config {
    /// Coordinator: how long after `begin` the votes may take before it
    /// aborts the transaction. In `1 ms..=`[`Config::MAX_DURATION`].
    pub vote_timeout: Duration,
    /// Participant: how long an unprepared transaction (joined, or asked
    /// for a vote and not answered) lives before the participant aborts it
    /// on its own, and how long a prepared one waits for the decision
    /// before it starts asking (cooperative termination). In
    /// `1 ms..=`[`Config::MAX_DURATION`].
    pub participant_timeout: Duration,
    /// Both roles: the interval between resends of Prepare, Commit and
    /// CommitOnePhase (coordinator) and of DecisionRequest (participant),
    /// since the network may lose any message. In
    /// `1 ms..=`[`Config::MAX_DURATION`].
    pub retry_interval: Duration,
    /// Participant: how long a decided (or read-only) transaction stays in
    /// memory to answer duplicates and other participants' decision
    /// requests. MUST exceed the longest time a message can live in the
    /// network (as TCP's MSL): a Prepare replayed after the participant
    /// forgot the transaction would be taken for a new one. In
    /// `1 ms..=`[`Config::MAX_DURATION`].
    pub decision_retention: Duration,
    /// Both roles: the most participants of one transaction, in
    /// `1..=`[`Config::MAX_PARTICIPANTS`].
    pub max_participants: usize,
    /// Both roles: the most transactions held in memory. `begin`, `join`
    /// and new Prepares are refused beyond it (decided transactions that
    /// must be remembered are always kept). In
    /// `1..=`[`Config::MAX_TRANSACTIONS`].
    pub max_transactions: usize,
    /// Coordinator: commit a transaction with a single participant in one
    /// phase (CommitOnePhase: the participant decides alone). On by default.
    pub one_phase: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            vote_timeout: Duration::from_secs(5),
            participant_timeout: Duration::from_secs(5),
            retry_interval: Duration::from_millis(500),
            decision_retention: Duration::from_secs(300),
            max_participants: 32,
            max_transactions: 100_000,
            one_phase: true,
        }
    }
}

/// Why a configuration was refused ([`Config::validate`]). Nothing was
/// constructed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration is zero (below 1 ms) or past [`Config::MAX_DURATION`].
    #[error("{field} must be in 1ms..={max:?}, got {value:?}")]
    Duration {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: Duration,
        /// [`Config::MAX_DURATION`].
        max: Duration,
    },
    /// `max_participants` is 0 or past [`Config::MAX_PARTICIPANTS`].
    #[error("max_participants must be in 1..={max}, got {value}")]
    MaxParticipants {
        /// The value given.
        value: usize,
        /// [`Config::MAX_PARTICIPANTS`].
        max: usize,
    },
    /// `max_transactions` is 0 or past [`Config::MAX_TRANSACTIONS`].
    #[error("max_transactions must be in 1..={max}, got {value}")]
    MaxTransactions {
        /// The value given.
        value: usize,
        /// [`Config::MAX_TRANSACTIONS`].
        max: usize,
    },
}

impl Config {
    /// The longest timeout or interval accepted (one day): `now + d` then
    /// cannot overflow an `Instant` taken from a real clock.
    pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
    /// The most participants of one transaction the wire format carries.
    pub const MAX_PARTICIPANTS: usize = super::codec::MAX_PARTICIPANTS;
    /// The most transactions one instance may hold (2^24).
    pub const MAX_TRANSACTIONS: usize = 1 << 24;

    /// Checks every field's range.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("vote_timeout", self.vote_timeout),
            ("participant_timeout", self.participant_timeout),
            ("retry_interval", self.retry_interval),
            ("decision_retention", self.decision_retention),
        ] {
            if value < Duration::from_millis(1) || value > Self::MAX_DURATION {
                return Err(ConfigError::Duration {
                    field,
                    value,
                    max: Self::MAX_DURATION,
                });
            }
        }
        if self.max_participants == 0 || self.max_participants > Self::MAX_PARTICIPANTS {
            return Err(ConfigError::MaxParticipants {
                value: self.max_participants,
                max: Self::MAX_PARTICIPANTS,
            });
        }
        if self.max_transactions == 0 || self.max_transactions > Self::MAX_TRANSACTIONS {
            return Err(ConfigError::MaxTransactions {
                value: self.max_transactions,
                max: Self::MAX_TRANSACTIONS,
            });
        }
        Ok(())
    }
}
