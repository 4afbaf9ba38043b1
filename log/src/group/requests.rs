//! The answers and refusals of the four member requests (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup) that [`GroupCoordinator`](super::GroupCoordinator) handles.

use super::{MemberId, TopicPartition};

/// The answer to a JoinGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct JoinResponse {
    /// The member's id, to send with every later request.
    pub member_id: MemberId,
    /// `Some` when the join phase is over and the member can sync this
    /// generation now. `None` while the rebalance waits for other members:
    /// like Kafka's delayed JoinGroup response, the answer comes later, as
    /// the generation of a [`GroupEvent::RebalanceCompleted`](super::GroupEvent::RebalanceCompleted) that names
    /// the member.
    pub generation: Option<u32>,
}

/// The answer to a SyncGroup: the member's share of the generation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SyncResponse {
    /// The generation synced.
    pub generation: u32,
    /// Every partition the member owns in it, sorted. With the cooperative
    /// protocol the member revokes what it held and is not listed here.
    pub assignment: Vec<TopicPartition>,
}

/// A JoinGroup that was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The id is not in the group: the member left or was expired. State
    /// unchanged. The client drops its id and its partitions and joins
    /// again without an id.
    #[error("unknown member {member}")]
    UnknownMember {
        /// The id the request carried.
        member: MemberId,
    },
    /// The group already has [`GroupConfig::max_members`](super::GroupConfig::max_members) members. State
    /// unchanged.
    #[error("group is full ({max_members} members)")]
    GroupFull {
        /// The configured limit.
        max_members: usize,
    },
}

/// A SyncGroup that was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The id is not in the group. State unchanged; the client drops its
    /// partitions and joins again without an id.
    #[error("unknown member {member}")]
    UnknownMember {
        /// The id the request carried.
        member: MemberId,
    },
    /// The request names another generation than the current one. State
    /// unchanged; the client rejoins.
    #[error("illegal generation {generation} (current {current})")]
    IllegalGeneration {
        /// The generation the request carried.
        generation: u32,
        /// The group's current generation.
        current: u32,
    },
    /// A rebalance began after the member's join: it must rejoin. The only
    /// state change is that the member's session was refreshed.
    #[error("rebalance in progress")]
    RebalanceInProgress,
}

/// A Heartbeat that was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeartbeatError {
    /// The id is not in the group (it left or was expired). State
    /// unchanged; the client drops its partitions and joins again without
    /// an id.
    #[error("unknown member {member}")]
    UnknownMember {
        /// The id the request carried.
        member: MemberId,
    },
    /// The request names another generation than the current one. State
    /// unchanged; the client rejoins.
    #[error("illegal generation {generation} (current {current})")]
    IllegalGeneration {
        /// The generation the request carried.
        generation: u32,
        /// The group's current generation.
        current: u32,
    },
    /// The group is rebalancing: the member must rejoin before the
    /// rebalance timeout (an eager member first revokes its partitions).
    /// The heartbeat still counted: the member's session was refreshed.
    #[error("rebalance in progress")]
    RebalanceInProgress,
}

/// A LeaveGroup that was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaveError {
    /// The id is not in the group (it already left or was expired). State
    /// unchanged.
    #[error("unknown member {member}")]
    UnknownMember {
        /// The id the request carried.
        member: MemberId,
    },
}
