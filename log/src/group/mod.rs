//! Consumer groups: Kafka's partition assignors and a sans-IO group
//! coordinator.
//!
//! A consumer group shares the partitions of the topics it consumes among
//! its members, each partition read by exactly one member. Members come and
//! go; each change is a *rebalance* that ends in a new *generation* with a
//! new [`Assignment`].
//!
//! - [`Assignor`] and its four Kafka implementations, [`RangeAssignor`],
//!   [`RoundRobinAssignor`], [`StickyAssignor`] (KIP-54) and
//!   [`CooperativeStickyAssignor`] (KIP-429): pure functions from members and
//!   partitions to an assignment. Members beyond the partition count get an
//!   empty share and stay idle.
//! - [`GroupCoordinator`]: one group's JoinGroup / SyncGroup / Heartbeat /
//!   LeaveGroup protocol, session and rebalance timeouts (KIP-62), and
//!   generations. It runs the assignor itself (server-side assignment, as
//!   in KIP-848) instead of delegating to a leader member.
//!
//! # The run loop
//!
//! The coordinator does no I/O and reads no clock. Committed offsets live
//! elsewhere ([`OffsetStore`](crate::OffsetStore)).
//!
//! 1. **Inputs**: [`GroupCoordinator::handle_join`],
//!    [`handle_sync`](GroupCoordinator::handle_sync),
//!    [`handle_heartbeat`](GroupCoordinator::handle_heartbeat) and
//!    [`handle_leave`](GroupCoordinator::handle_leave) for the members'
//!    requests, [`handle_metadata`](GroupCoordinator::handle_metadata) when
//!    partition counts change; each takes `now`, a [`std::time::Instant`]
//!    the driver reads.
//! 2. **Time**: [`GroupCoordinator::handle_timeout`]`(now)` at
//!    [`GroupCoordinator::poll_timeout`] (session and rebalance timeouts).
//! 3. **Drain**: [`GroupCoordinator::poll_event`] until `None` after every
//!    input: the events carry the answers to JoinGroups that waited for the
//!    rebalance. Nothing needs to be durable: after a coordinator restart the
//!    members rejoin, as with Kafka's.
//! 4. Example: a config built from `Default` with one field set, two members
//!    and one rebalance.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::{Duration, Instant};
//! use dsys_log::group::{
//!     GroupConfig, GroupCoordinator, GroupEvent, GroupState, HeartbeatError, Subscription,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = GroupConfig::default();
//! config.session_timeout = Duration::from_secs(30); // Kafka's default is 45 s
//! let topics = BTreeMap::from([("orders".to_string(), 4)]);
//! let mut group = GroupCoordinator::new(config, topics)?;
//! let start = Instant::now(); // the driver's clock; the coordinator reads none
//! let at = |ms: u64| start + Duration::from_millis(ms);
//!
//! // A lone member's join completes the rebalance at once: generation 1.
//! let a = group.handle_join(None, "app", Subscription::new(["orders"]), at(0))?;
//! let generation = a.generation.expect("nobody else to wait for");
//! assert_eq!(group.handle_sync(&a.member_id, generation, at(0))?.assignment.len(), 4);
//! assert_eq!(group.state(), GroupState::Stable);
//!
//! // A second member starts a rebalance; its join waits for the first
//! // member, which learns of it from its next heartbeat and rejoins.
//! let b = group.handle_join(None, "app", Subscription::new(["orders"]), at(1_000))?;
//! assert_eq!(b.generation, None);
//! assert_eq!(
//!     group.handle_heartbeat(&a.member_id, generation, at(2_000)),
//!     Err(HeartbeatError::RebalanceInProgress)
//! );
//! let a = group.handle_join(Some(&a.member_id), "app", Subscription::new(["orders"]), at(2_500))?;
//! assert_eq!(a.generation, Some(2));
//!
//! // The event answers b's pending join.
//! let mut b_generation = None;
//! while let Some(event) = group.poll_event() {
//!     if let GroupEvent::RebalanceCompleted { generation, assignment } = event {
//!         if assignment.contains_member(&b.member_id) {
//!             b_generation = Some(generation);
//!         }
//!     }
//! }
//! let b_generation = b_generation.expect("the rebalance completed");
//! assert_eq!(group.handle_sync(&a.member_id, 2, at(3_000))?.assignment.len(), 2);
//! assert_eq!(group.handle_sync(&b.member_id, b_generation, at(3_000))?.assignment.len(), 2);
//! assert_eq!(group.state(), GroupState::Stable);
//!
//! // The next timer: the members' sessions, 30 s after their last sync.
//! assert_eq!(group.poll_timeout(), Some(at(33_000)));
//! # Ok(())
//! # }
//! ```

mod assignment;
mod assignor;
mod config;
mod coordinator;
mod requests;

pub use assignment::{Assignment, MemberId, Subscription, TopicPartition};
pub use assignor::{
    Assignor, AssignorKind, CooperativeStickyAssignor, RangeAssignor, RebalanceProtocol,
    RoundRobinAssignor, StickyAssignor,
};
pub use config::{GroupConfig, GroupConfigError, MAX_TIMEOUT};
pub use coordinator::{ExpiryReason, GroupCoordinator, GroupEvent, GroupState, RebalanceReason};
pub use requests::{HeartbeatError, JoinError, JoinResponse, LeaveError, SyncError, SyncResponse};
