//! Group coordinator configuration, validated once at construction.

use super::AssignorKind;

/// A group's timeouts and assignment strategy. [`GroupConfig::default`]
/// gives the Kafka defaults (consumer `session.timeout.ms`,
/// `heartbeat.interval.ms`, `max.poll.interval.ms` as the rebalance timeout,
/// and the consumer's default `range` strategy).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GroupConfig {
    /// A member that sends no heartbeat, join or sync for this long is
    /// expired and the group rebalances (KIP-62's liveness timeout, kept
    /// separate from processing time). Must exceed `heartbeat_interval_ms`.
    pub session_timeout_ms: u64,
    /// How long a rebalance waits for the current members to rejoin; those
    /// that have not by then are removed and the rebalance completes
    /// without them (KIP-62's rebalance timeout, `max.poll.interval.ms` on
    /// the Java consumer). At least 1.
    pub rebalance_timeout_ms: u64,
    /// How often members are expected to heartbeat. The coordinator only
    /// reports it (members pace themselves); it must be below
    /// `session_timeout_ms`, and Kafka advises at most a third of it.
    pub heartbeat_interval_ms: u64,
    /// The assignment strategy the coordinator runs.
    pub assignor: AssignorKind,
    /// Most members the group admits (Kafka's `group.max.size`); joins
    /// beyond it are refused. At least 1.
    pub max_members: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            session_timeout_ms: 45_000,
            rebalance_timeout_ms: 300_000,
            heartbeat_interval_ms: 3_000,
            assignor: AssignorKind::default(),
            max_members: usize::MAX,
        }
    }
}

impl GroupConfig {
    /// Checks the limits documented on each field.
    pub fn validate(&self) -> Result<(), GroupConfigError> {
        if self.heartbeat_interval_ms == 0 {
            return Err(GroupConfigError::ZeroHeartbeatInterval);
        }
        if self.session_timeout_ms <= self.heartbeat_interval_ms {
            return Err(GroupConfigError::SessionNotAboveHeartbeat {
                session_timeout_ms: self.session_timeout_ms,
                heartbeat_interval_ms: self.heartbeat_interval_ms,
            });
        }
        if self.rebalance_timeout_ms == 0 {
            return Err(GroupConfigError::ZeroRebalanceTimeout);
        }
        if self.max_members == 0 {
            return Err(GroupConfigError::ZeroMaxMembers);
        }
        Ok(())
    }
}

/// A [`GroupConfig`] outside its documented limits. No coordinator is built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupConfigError {
    /// `heartbeat_interval_ms` is 0.
    #[error("heartbeat_interval_ms must be at least 1")]
    ZeroHeartbeatInterval,
    /// `session_timeout_ms <= heartbeat_interval_ms`: members would expire
    /// between two heartbeats.
    #[error(
        "session_timeout_ms ({session_timeout_ms}) must exceed heartbeat_interval_ms ({heartbeat_interval_ms})"
    )]
    SessionNotAboveHeartbeat {
        /// The session timeout.
        session_timeout_ms: u64,
        /// The heartbeat interval.
        heartbeat_interval_ms: u64,
    },
    /// `rebalance_timeout_ms` is 0: no member could ever rejoin in time.
    #[error("rebalance_timeout_ms must be at least 1")]
    ZeroRebalanceTimeout,
    /// `max_members` is 0: no member could ever join.
    #[error("max_members must be at least 1")]
    ZeroMaxMembers,
}
