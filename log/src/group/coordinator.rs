//! The group coordinator: one consumer group's membership, liveness and
//! rebalances, as a sans-IO state machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use super::{
    Assignment, Assignor, AssignorKind, GroupConfig, GroupConfigError, HeartbeatError, JoinError,
    JoinResponse, LeaveError, MemberId, RebalanceProtocol, Subscription, SyncError, SyncResponse,
    TopicPartition,
};

/// Where a group is in its rebalance cycle: Kafka's `GroupState`, less
/// `Dead` (dropping the coordinator is this crate's way to delete a group).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum GroupState {
    /// No members. The first join starts a rebalance.
    Empty,
    /// The join phase: waiting for every member to (re)join, at most the
    /// rebalance timeout. Heartbeats and syncs answer
    /// `RebalanceInProgress`, telling members to rejoin.
    PreparingRebalance,
    /// The new generation and its assignment exist; members are fetching
    /// their share with a sync.
    CompletingRebalance,
    /// Every member has synced the current generation: each partition of a
    /// subscribed topic is owned by exactly one member.
    Stable,
}

/// Why a rebalance started.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum RebalanceReason {
    /// A new member joined.
    MemberJoined(MemberId),
    /// A member rejoined with different topics.
    SubscriptionChanged(MemberId),
    /// A member left with a LeaveGroup.
    MemberLeft(MemberId),
    /// A member's session timed out (the first one, if several did at once).
    MemberExpired(MemberId),
    /// The partition count of a subscribed topic changed, or a subscribed
    /// topic appeared or disappeared.
    MetadataChanged,
    /// The follow-up rebalance of the cooperative protocol (KIP-429): the
    /// last generation revoked partitions it did not yet give to anyone, and
    /// every member has now synced it, so the holders have let go.
    PendingRevocations,
}

/// Which timeout removed a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ExpiryReason {
    /// No heartbeat, join or sync within the session timeout (KIP-62).
    SessionTimeout,
    /// It did not rejoin before the rebalance timeout ran out (KIP-62).
    RebalanceTimeout,
}

/// Something the driver may need to act on, drained with
/// [`GroupCoordinator::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum GroupEvent {
    /// A member joined for the first time and got its id.
    MemberJoined {
        /// The new member.
        member: MemberId,
    },
    /// A member left with a LeaveGroup.
    MemberLeft {
        /// The departed member.
        member: MemberId,
    },
    /// A timeout removed a member. It must not consume its partitions any
    /// longer; its next request gets `UnknownMember`.
    MemberExpired {
        /// The removed member.
        member: MemberId,
        /// Which timeout fired.
        reason: ExpiryReason,
    },
    /// The join phase began.
    RebalanceStarted {
        /// The generation being replaced (still the current one).
        generation: u32,
        /// What started it.
        reason: RebalanceReason,
    },
    /// The join phase ended: a new generation exists with this assignment.
    /// The driver answers every JoinGroup still waiting with `generation`
    /// (the members are the keys of `assignment`).
    RebalanceCompleted {
        /// The new generation.
        generation: u32,
        /// Each member's partitions in that generation.
        assignment: Assignment,
    },
    /// Every member has synced `generation`; the group is stable.
    Stable {
        /// The current generation.
        generation: u32,
    },
}

/// What the coordinator keeps per member.
#[derive(Clone, Debug)]
struct Member {
    client_id: String,
    /// Sorted, without duplicates.
    topics: Vec<String>,
    /// Last join, sync or heartbeat (in the current generation): the session
    /// runs `session_timeout` from here.
    last_seen: Instant,
    /// Joined in the current join phase.
    rejoined: bool,
    /// Synced the current generation.
    synced: bool,
}

/// The coordinator of one consumer group: membership, liveness, generations
/// and assignment, with no I/O and no clock.
///
/// # Server-side assignment
///
/// In Kafka's classic protocol the coordinator elects a leader member that
/// runs the assignor and ships the result back in its SyncGroup. Here, as in
/// KIP-848, the coordinator runs the [`Assignor`] itself when the join phase
/// ends, so a SyncGroup only fetches the member's share and no member needs
/// to be trusted with the whole assignment. The request flow is otherwise
/// the classic one: JoinGroup, SyncGroup, Heartbeat, LeaveGroup.
///
/// # Rebalance rule
///
/// A rebalance starts when a member joins, leaves, expires or changes its
/// topics, or the partition count of a subscribed topic changes. The state
/// goes to [`GroupState::PreparingRebalance`] and every member is asked to
/// rejoin (its heartbeats and syncs answer `RebalanceInProgress`). The join
/// phase completes, at once and deterministically, in whichever comes
/// first:
///
/// 1. the call after which every current member has joined in this phase
///    (members that leave or expire meanwhile no longer count), or
/// 2. the first [`handle_timeout`](Self::handle_timeout) at or after the
///    rebalance deadline (`rebalance_timeout` after the phase began),
///    which first removes every member that has not rejoined.
///
/// Completion bumps the generation, runs the assignor over the members
/// (what each holds, per its last sync, is the `previous` assignment and
/// its [`Subscription::owned`]), resets every session, and goes to
/// [`GroupState::CompletingRebalance`]. Once every member has synced, the
/// group is [`GroupState::Stable`], unless a cooperative assignor left
/// revoked partitions unassigned (KIP-429): then the follow-up rebalance
/// starts right away, its reason [`RebalanceReason::PendingRevocations`].
///
/// A member that joined in the current join phase is kept alive until it
/// ends, as Kafka does for members awaiting their JoinGroup response. Any
/// other member that sends nothing for `session_timeout` is expired.
///
/// # Methods
///
/// - Getters: [`state`](Self::state), [`generation`](Self::generation),
///   [`assignment`](Self::assignment), [`owned`](Self::owned),
///   [`members`](Self::members), [`config`](Self::config)...
/// - Inputs: [`handle_join`](Self::handle_join),
///   [`handle_sync`](Self::handle_sync),
///   [`handle_heartbeat`](Self::handle_heartbeat),
///   [`handle_leave`](Self::handle_leave),
///   [`handle_metadata`](Self::handle_metadata),
///   [`handle_timeout`](Self::handle_timeout). Time is always an argument,
///   a [`std::time::Instant`] the driver reads (or simulates); the
///   coordinator never reads a clock. It MUST NOT go backwards.
/// - Outputs: [`poll_event`](Self::poll_event) until `None`, then
///   [`poll_timeout`](Self::poll_timeout) for the next wake-up. The driver
///   MUST drain events after every input: they carry the delayed JoinGroup
///   answers.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: GroupConfig,
    assignor: Box<dyn Assignor>,
    partitions_per_topic: BTreeMap<String, u32>,
    state: GroupState,
    generation: u32,
    members: BTreeMap<MemberId, Member>,
    /// The current generation's assignment, less members removed since.
    assignment: Assignment,
    /// What each member holds: its share of the last generation it synced.
    owned: Assignment,
    /// Set exactly while the state is `PreparingRebalance`.
    rebalance_deadline: Option<Instant>,
    /// The current generation left revoked partitions for a follow-up.
    follow_up: bool,
    /// Suffix of the next member id.
    next_member: u64,
    events: VecDeque<GroupEvent>,
}

impl GroupCoordinator {
    /// An empty group over the topics in `partitions_per_topic` (name to
    /// partition count), running `config.assignor`.
    pub fn new(
        config: GroupConfig,
        partitions_per_topic: BTreeMap<String, u32>,
    ) -> Result<Self, GroupConfigError> {
        let assignor = config.assignor.assignor();
        Self::with_assignor(config, partitions_per_topic, assignor)
    }

    /// An empty group running `assignor`, a strategy of the caller's own (Kafka's
    /// `partition.assignment.strategy` naming a custom class).
    ///
    /// Precedence: `assignor` runs, and [`assignor`](Self::assignor) reports it;
    /// `config.assignor` can only name a built-in strategy, so it is not consulted
    /// when `assignor` has a name of its own (`assignor.name()` is none of
    /// [`AssignorKind::ALL`]'s names). If `assignor` claims a built-in name, it
    /// must be the one `config.assignor` names: a config that asks for `"sticky"`
    /// while `"range"` is passed is a contradiction, refused with
    /// [`GroupConfigError::AssignorMismatch`] rather than settled silently.
    ///
    /// The coordinator trusts the strategy to give each partition to at most
    /// one member; it only drops entries for non-members and adds an empty
    /// one for every member left out.
    pub fn with_assignor(
        config: GroupConfig,
        partitions_per_topic: BTreeMap<String, u32>,
        assignor: Box<dyn Assignor>,
    ) -> Result<Self, GroupConfigError> {
        config.validate()?;
        let given = assignor.name();
        let configured = config.assignor.name();
        if given != configured && AssignorKind::ALL.iter().any(|k| k.name() == given) {
            return Err(GroupConfigError::AssignorMismatch { configured, given });
        }
        Ok(Self {
            config,
            assignor,
            partitions_per_topic,
            state: GroupState::Empty,
            generation: 0,
            members: BTreeMap::new(),
            assignment: Assignment::new(),
            owned: Assignment::new(),
            rebalance_deadline: None,
            follow_up: false,
            next_member: 0,
            events: VecDeque::new(),
        })
    }

    // ----- getters -----

    /// The group's state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// The current generation: 0 until the first rebalance completes, then
    /// bumped by each completed rebalance.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The current generation's assignment, without members removed since.
    /// During a join phase it is still the previous generation's; in an
    /// empty group it is empty.
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// What each member holds as far as the coordinator knows: its share of
    /// the last generation it synced. (An eager member also drops it all when
    /// it rejoins; the coordinator still keeps it, for stickiness.)
    pub fn owned(&self) -> &Assignment {
        &self.owned
    }

    /// The members, in id order.
    pub fn members(&self) -> impl Iterator<Item = &MemberId> + '_ {
        self.members.keys()
    }

    /// Number of members.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Whether `member` is in the group.
    pub fn contains_member(&self, member: &MemberId) -> bool {
        self.members.contains_key(member)
    }

    /// The topics `member` consumes (sorted), if it is in the group.
    pub fn subscribed_topics(&self, member: &MemberId) -> Option<&[String]> {
        self.members.get(member).map(|m| m.topics.as_slice())
    }

    /// The client id `member` joined with, if it is in the group.
    pub fn client_id(&self, member: &MemberId) -> Option<&str> {
        self.members.get(member).map(|m| m.client_id.as_str())
    }

    /// The topics the group knows, with their partition counts.
    pub fn partitions_per_topic(&self) -> &BTreeMap<String, u32> {
        &self.partitions_per_topic
    }

    /// The configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The assignment strategy.
    pub fn assignor(&self) -> &dyn Assignor {
        self.assignor.as_ref()
    }

    // ----- inputs -----

    /// A JoinGroup from `member` (`None` for a client joining for the first
    /// time, which gets a fresh id `{client_id}-{n}`).
    ///
    /// A new member, or a known one with different topics, starts a
    /// rebalance. A known member with unchanged topics rejoining outside a
    /// join phase gets the current generation back and changes nothing.
    /// `subscription.owned` is ignored: the coordinator knows what each
    /// member holds. See the type's docs for when the join phase completes.
    pub fn handle_join(
        &mut self,
        member: Option<&MemberId>,
        client_id: &str,
        subscription: Subscription,
        now: Instant,
    ) -> Result<JoinResponse, JoinError> {
        let mut topics = subscription.topics;
        topics.sort();
        topics.dedup();
        let member_id = match member {
            Some(id) => {
                let preparing = self.state == GroupState::PreparingRebalance;
                let Some(known) = self.members.get_mut(id) else {
                    return Err(JoinError::UnknownMember { member: id.clone() });
                };
                known.last_seen = now;
                if known.topics != topics {
                    known.topics = topics;
                    self.start_rebalance(RebalanceReason::SubscriptionChanged(id.clone()), now);
                } else if !preparing {
                    // As Kafka answers a follower that rejoins a stable
                    // group with unchanged metadata: nothing to redo.
                    return Ok(JoinResponse {
                        member_id: id.clone(),
                        generation: Some(self.generation),
                    });
                }
                id.clone()
            }
            None => {
                if self.members.len() >= self.config.max_members {
                    return Err(JoinError::GroupFull {
                        max_members: self.config.max_members,
                    });
                }
                let id = MemberId::new(format!("{client_id}-{}", self.next_member));
                self.next_member += 1;
                self.members.insert(
                    id.clone(),
                    Member {
                        client_id: client_id.to_owned(),
                        topics,
                        last_seen: now,
                        rejoined: false,
                        synced: false,
                    },
                );
                self.events
                    .push_back(GroupEvent::MemberJoined { member: id.clone() });
                self.start_rebalance(RebalanceReason::MemberJoined(id.clone()), now);
                id
            }
        };
        self.members
            .get_mut(&member_id)
            .expect("the member was found or inserted above")
            .rejoined = true;
        self.maybe_complete(now);
        let generation = (self.state != GroupState::PreparingRebalance).then_some(self.generation);
        Ok(JoinResponse {
            member_id,
            generation,
        })
    }

    /// A SyncGroup: `member` fetches its share of `generation`, which must
    /// be the current one, and from now on holds exactly that.
    ///
    /// The last member to sync makes the group [`GroupState::Stable`], or
    /// starts the cooperative follow-up rebalance.
    pub fn handle_sync(
        &mut self,
        member: &MemberId,
        generation: u32,
        now: Instant,
    ) -> Result<SyncResponse, SyncError> {
        let current = self.generation;
        let state = self.state;
        let Some(known) = self.members.get_mut(member) else {
            return Err(SyncError::UnknownMember {
                member: member.clone(),
            });
        };
        if generation != current {
            return Err(SyncError::IllegalGeneration {
                generation,
                current,
            });
        }
        known.last_seen = now;
        if state == GroupState::PreparingRebalance {
            return Err(SyncError::RebalanceInProgress);
        }
        known.synced = true;
        let assignment = self.assignment.partitions_of(member).to_vec();
        self.owned.insert(member.clone(), assignment.clone());
        if state == GroupState::CompletingRebalance && self.members.values().all(|m| m.synced) {
            if self.follow_up {
                // KIP-429: every holder has now seen its revocations, so the
                // revoked partitions are free to go to their new owners.
                self.start_rebalance(RebalanceReason::PendingRevocations, now);
            } else {
                self.state = GroupState::Stable;
                self.events.push_back(GroupEvent::Stable { generation });
            }
        }
        Ok(SyncResponse {
            generation,
            assignment,
        })
    }

    /// A Heartbeat from `member` in `generation`: refreshes its session.
    ///
    /// During a join phase it answers
    /// [`HeartbeatError::RebalanceInProgress`], which is how members learn
    /// they must rejoin.
    pub fn handle_heartbeat(
        &mut self,
        member: &MemberId,
        generation: u32,
        now: Instant,
    ) -> Result<(), HeartbeatError> {
        let current = self.generation;
        let Some(known) = self.members.get_mut(member) else {
            return Err(HeartbeatError::UnknownMember {
                member: member.clone(),
            });
        };
        if generation != current {
            return Err(HeartbeatError::IllegalGeneration {
                generation,
                current,
            });
        }
        known.last_seen = now;
        if self.state == GroupState::PreparingRebalance {
            return Err(HeartbeatError::RebalanceInProgress);
        }
        Ok(())
    }

    /// A LeaveGroup: `member` is removed at once (rather than after its
    /// session timeout) and the others rebalance.
    pub fn handle_leave(&mut self, member: &MemberId, now: Instant) -> Result<(), LeaveError> {
        if !self.remove_member(member) {
            return Err(LeaveError::UnknownMember {
                member: member.clone(),
            });
        }
        self.events.push_back(GroupEvent::MemberLeft {
            member: member.clone(),
        });
        self.after_removal(RebalanceReason::MemberLeft(member.clone()), now);
        Ok(())
    }

    /// New topic metadata (topic name to partition count). The group
    /// rebalances if a topic some member consumes changed.
    pub fn handle_metadata(&mut self, partitions_per_topic: BTreeMap<String, u32>, now: Instant) {
        let consumed: BTreeSet<&String> = self.members.values().flat_map(|m| &m.topics).collect();
        let changed = consumed
            .iter()
            .any(|t| self.partitions_per_topic.get(*t) != partitions_per_topic.get(*t));
        self.partitions_per_topic = partitions_per_topic;
        if changed {
            self.start_rebalance(RebalanceReason::MetadataChanged, now);
        }
    }

    /// Fires the timers due at `now`: expires members whose session ran
    /// out, and ends a join phase whose rebalance deadline passed, removing
    /// the members that did not rejoin. Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let preparing = self.state == GroupState::PreparingRebalance;
        let session = self.config.session_timeout;
        let expired: Vec<MemberId> = self
            .members
            .iter()
            .filter(|(_, m)| !(preparing && m.rejoined))
            .filter(|(_, m)| m.last_seen + session <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id);
            self.events.push_back(GroupEvent::MemberExpired {
                member: id.clone(),
                reason: ExpiryReason::SessionTimeout,
            });
        }
        if let Some(first) = expired.into_iter().next() {
            self.after_removal(RebalanceReason::MemberExpired(first), now);
        }

        let deadline_passed = self.rebalance_deadline.is_some_and(|d| d <= now);
        if self.state == GroupState::PreparingRebalance && deadline_passed {
            let late: Vec<MemberId> = self
                .members
                .iter()
                .filter(|(_, m)| !m.rejoined)
                .map(|(id, _)| id.clone())
                .collect();
            for id in late {
                self.remove_member(&id);
                self.events.push_back(GroupEvent::MemberExpired {
                    member: id,
                    reason: ExpiryReason::RebalanceTimeout,
                });
            }
            if self.members.is_empty() {
                self.become_empty();
            } else {
                self.complete_rebalance(now);
            }
        }
    }

    // ----- outputs -----

    /// The next event, if any. Drain until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<GroupEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to
    /// do: the earliest session expiry or rebalance deadline. `None` when
    /// the group is empty.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let preparing = self.state == GroupState::PreparingRebalance;
        let session = self.config.session_timeout;
        self.members
            .values()
            .filter(|m| !(preparing && m.rejoined))
            .map(|m| m.last_seen + session)
            .chain(self.rebalance_deadline)
            .min()
    }

    // ----- transitions -----

    /// Enters the join phase, unless already in it.
    fn start_rebalance(&mut self, reason: RebalanceReason, now: Instant) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        self.state = GroupState::PreparingRebalance;
        self.rebalance_deadline = Some(now + self.config.rebalance_timeout);
        self.follow_up = false;
        for member in self.members.values_mut() {
            member.rejoined = false;
            member.synced = false;
        }
        self.events.push_back(GroupEvent::RebalanceStarted {
            generation: self.generation,
            reason,
        });
    }

    /// Ends the join phase if every member has rejoined.
    fn maybe_complete(&mut self, now: Instant) {
        if self.state == GroupState::PreparingRebalance
            && !self.members.is_empty()
            && self.members.values().all(|m| m.rejoined)
        {
            self.complete_rebalance(now);
        }
    }

    /// The end of the join phase: a new generation and its assignment.
    fn complete_rebalance(&mut self, now: Instant) {
        self.generation = self.generation.wrapping_add(1);
        let subscriptions: BTreeMap<MemberId, Subscription> = self
            .members
            .iter()
            .map(|(id, m)| {
                let subscription = Subscription {
                    topics: m.topics.clone(),
                    owned: self.owned.partitions_of(id).to_vec(),
                };
                (id.clone(), subscription)
            })
            .collect();
        let proposed =
            self.assignor
                .assign(&self.partitions_per_topic, &subscriptions, &self.owned);
        let mut assignment: Assignment = proposed
            .into_inner()
            .into_iter()
            .filter(|(id, _)| self.members.contains_key(id))
            .collect();
        for id in self.members.keys() {
            if !assignment.contains_member(id) {
                assignment.insert(id.clone(), Vec::new());
            }
        }
        self.follow_up = self.assignor.protocol() == RebalanceProtocol::Cooperative
            && leaves_out_subscribed(&self.partitions_per_topic, &self.members, &assignment);
        for member in self.members.values_mut() {
            member.rejoined = false;
            member.synced = false;
            // Kafka restarts the session clock with the JoinGroup answer.
            member.last_seen = now;
        }
        self.state = GroupState::CompletingRebalance;
        self.rebalance_deadline = None;
        self.events.push_back(GroupEvent::RebalanceCompleted {
            generation: self.generation,
            assignment: assignment.clone(),
        });
        self.assignment = assignment;
    }

    /// Drops `member` and what it holds; whether it was there.
    fn remove_member(&mut self, member: &MemberId) -> bool {
        if self.members.remove(member).is_none() {
            return false;
        }
        self.owned.remove(member);
        self.assignment.remove(member);
        true
    }

    /// After members were removed: rebalance the rest, or finish the join
    /// phase if they have all rejoined already.
    fn after_removal(&mut self, reason: RebalanceReason, now: Instant) {
        if self.members.is_empty() {
            self.become_empty();
        } else if self.state == GroupState::PreparingRebalance {
            self.maybe_complete(now);
        } else {
            self.start_rebalance(reason, now);
        }
    }

    fn become_empty(&mut self) {
        self.state = GroupState::Empty;
        self.assignment = Assignment::new();
        self.owned = Assignment::new();
        self.rebalance_deadline = None;
        self.follow_up = false;
    }
}

/// Whether `assignment` leaves out some partition of a topic a member
/// consumes: with a cooperative strategy, a revocation awaiting its
/// follow-up rebalance.
fn leaves_out_subscribed(
    partitions_per_topic: &BTreeMap<String, u32>,
    members: &BTreeMap<MemberId, Member>,
    assignment: &Assignment,
) -> bool {
    let consumed: BTreeSet<&String> = members.values().flat_map(|m| &m.topics).collect();
    let assigned = assignment.owners();
    consumed.into_iter().any(|topic| {
        let count = partitions_per_topic.get(topic).copied().unwrap_or(0);
        (0..count).any(|p| !assigned.contains_key(&TopicPartition::new(topic.as_str(), p)))
    })
}
