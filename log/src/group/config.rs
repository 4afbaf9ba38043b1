//! Group coordinator configuration, validated once at construction.

use std::time::Duration;

use super::AssignorKind;

/// The longest timeout a [`GroupConfig`] accepts: `i32::MAX` milliseconds (about 24.8
/// days), the largest value of Kafka's `int` `*.timeout.ms` settings. Bounding every
/// duration keeps `now + timeout` far from `Instant`'s range, so it never overflows.
pub const MAX_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// A group's timeouts and assignment strategy. [`GroupConfig::default`]
/// gives the Kafka defaults (consumer `session.timeout.ms`,
/// `heartbeat.interval.ms`, `max.poll.interval.ms` as the rebalance timeout,
/// and the consumer's default `range` strategy).
///
/// Built from the default and changed by assignment, then checked by
/// [`GroupConfig::validate`] (which [`GroupCoordinator::new`](super::GroupCoordinator::new)
/// calls):
///
/// ```
/// use std::time::Duration;
/// use dsys_log::group::GroupConfig;
///
/// let mut config = GroupConfig::default();
/// config.session_timeout = Duration::from_secs(10);
/// assert_eq!(config.validate(), Ok(()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct GroupConfig {
    /// A member that sends no heartbeat, join or sync for this long is
    /// expired and the group rebalances (KIP-62's liveness timeout, kept
    /// separate from processing time; Kafka's `session.timeout.ms`, 45 s).
    /// Must exceed `heartbeat_interval`; at most [`MAX_TIMEOUT`].
    pub session_timeout: Duration,
    /// How long a rebalance waits for the current members to rejoin; those
    /// that have not by then are removed and the rebalance completes
    /// without them (KIP-62's rebalance timeout, `max.poll.interval.ms` on
    /// the Java consumer, 5 min). Above zero; at most [`MAX_TIMEOUT`].
    pub rebalance_timeout: Duration,
    /// How often members are expected to heartbeat
    /// (`heartbeat.interval.ms`, 3 s). The coordinator only reports it
    /// (members pace themselves); it must be above zero and below
    /// `session_timeout`, and Kafka advises at most a third of it.
    pub heartbeat_interval: Duration,
    /// The assignment strategy the coordinator runs.
    pub assignor: AssignorKind,
    /// Most members the group admits (Kafka's `group.max.size`); joins
    /// beyond it are refused. At least 1.
    pub max_members: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            assignor: AssignorKind::default(),
            max_members: usize::MAX,
        }
    }
}

impl GroupConfig {
    /// Checks the limits documented on each field.
    pub fn validate(&self) -> Result<(), GroupConfigError> {
        for (field, value) in [
            ("session_timeout", self.session_timeout),
            ("rebalance_timeout", self.rebalance_timeout),
            ("heartbeat_interval", self.heartbeat_interval),
        ] {
            if value > MAX_TIMEOUT {
                return Err(GroupConfigError::TooLong { field, value });
            }
        }
        if self.heartbeat_interval.is_zero() {
            return Err(GroupConfigError::ZeroHeartbeatInterval);
        }
        if self.session_timeout <= self.heartbeat_interval {
            return Err(GroupConfigError::SessionNotAboveHeartbeat {
                session_timeout: self.session_timeout,
                heartbeat_interval: self.heartbeat_interval,
            });
        }
        if self.rebalance_timeout.is_zero() {
            return Err(GroupConfigError::ZeroRebalanceTimeout);
        }
        if self.max_members == 0 {
            return Err(GroupConfigError::ZeroMaxMembers);
        }
        Ok(())
    }
}

/// A [`GroupConfig`] outside its documented limits. Returned by
/// [`GroupConfig::validate`] and by the coordinator's constructors, which then
/// build nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupConfigError {
    /// `heartbeat_interval` is zero. Nothing changed: no coordinator is built.
    #[error("heartbeat_interval must be above zero")]
    ZeroHeartbeatInterval,
    /// `session_timeout <= heartbeat_interval`: members would expire
    /// between two heartbeats. Nothing changed: no coordinator is built.
    #[error(
        "session_timeout ({session_timeout:?}) must exceed heartbeat_interval ({heartbeat_interval:?})"
    )]
    SessionNotAboveHeartbeat {
        /// The session timeout.
        session_timeout: Duration,
        /// The heartbeat interval.
        heartbeat_interval: Duration,
    },
    /// `rebalance_timeout` is zero: no member could ever rejoin in time.
    /// Nothing changed: no coordinator is built.
    #[error("rebalance_timeout must be above zero")]
    ZeroRebalanceTimeout,
    /// `max_members` is 0: no member could ever join. Nothing changed: no
    /// coordinator is built.
    #[error("max_members must be at least 1")]
    ZeroMaxMembers,
    /// [`GroupCoordinator::with_assignor`](super::GroupCoordinator::with_assignor)
    /// was given an assignor with a built-in strategy's name other than the one
    /// `GroupConfig::assignor` names. Nothing changed: no coordinator is built.
    #[error("config.assignor is {configured:?} but the assignor given is {given:?}")]
    AssignorMismatch {
        /// The strategy `GroupConfig::assignor` names.
        configured: &'static str,
        /// The name of the assignor given.
        given: &'static str,
    },
    /// A duration is above [`MAX_TIMEOUT`]. Nothing changed: no coordinator
    /// is built.
    #[error("{field} ({value:?}) is above the maximum of i32::MAX ms")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its value.
        value: Duration,
    },
}
