//! The group coordinator driven with virtual time: the JoinGroup /
//! SyncGroup / Heartbeat / LeaveGroup flow, session and rebalance timeouts
//! (KIP-62), generations, and cooperative rebalancing (KIP-429). A seeded
//! simulation of members joining, leaving, crashing, stalling and changing
//! their subscriptions checks after every request that no partition has two
//! owners and that a stable group gives every partition to exactly one live
//! member.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dsys_log::group::{
    Assignment, AssignorKind, ExpiryReason, GroupConfig, GroupConfigError, GroupCoordinator,
    GroupEvent, GroupState, HeartbeatError, JoinError, LeaveError, MAX_TIMEOUT, MemberId,
    RebalanceReason, Subscription, SyncError, TopicPartition,
};

/// The origin of the tests' virtual clock: they count milliseconds from it and
/// pass the coordinator `at(ms)`.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The instant `ms` milliseconds after the origin.
fn at(ms: u64) -> Instant {
    origin() + Duration::from_millis(ms)
}

/// Milliseconds from the origin to `t`.
fn ms(t: Instant) -> u64 {
    u64::try_from((t - origin()).as_millis()).expect("tests run for less than 2^64 ms")
}

/// A duration from the config, in the tests' milliseconds.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).expect("bounded by MAX_TIMEOUT")
}

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn topics(list: &[(&str, u32)]) -> BTreeMap<String, u32> {
    list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn sub(list: &[&str]) -> Subscription {
    Subscription::new(list.iter().copied())
}

fn group(kind: AssignorKind, list: &[(&str, u32)]) -> GroupCoordinator {
    let mut config = GroupConfig::default();
    config.assignor = kind;
    GroupCoordinator::new(config, topics(list)).expect("the default config is valid")
}

fn drain(g: &mut GroupCoordinator) -> Vec<GroupEvent> {
    std::iter::from_fn(|| g.poll_event()).collect()
}

fn partitions(list: &[(&str, u32)]) -> Vec<TopicPartition> {
    list.iter().map(|(t, p)| tp(t, *p)).collect()
}

/// Each listed member rejoins (as it does after `RebalanceInProgress`), then
/// each syncs; returns the generation the last join completed.
fn rejoin_and_sync(g: &mut GroupCoordinator, ids: &[&MemberId], list: &[&str], now: u64) -> u32 {
    let mut generation = None;
    for id in ids {
        let joined = g
            .handle_join(Some(id), "app", sub(list), at(now))
            .expect("a member");
        generation = joined.generation.or(generation);
    }
    let generation = generation.expect("the last rejoin completes the join phase");
    for id in ids {
        g.handle_sync(id, generation, at(now))
            .expect("current generation");
    }
    generation
}

/// In a stable group every partition of a consumed topic has exactly one
/// owner, a member consuming its topic, and each member holds what it was
/// assigned.
fn assert_stable_and_exclusive(g: &GroupCoordinator) {
    assert_eq!(g.state(), GroupState::Stable);
    let members: Vec<&MemberId> = g.members().collect();
    let assigned: Vec<&MemberId> = g.assignment().members().collect();
    assert_eq!(members, assigned, "one entry per member");
    let mut seen = BTreeSet::new();
    for (member, parts) in g.assignment().iter() {
        for p in parts {
            assert!(seen.insert(p.clone()), "{p} has two owners");
            let topics = g.subscribed_topics(member).expect("a member");
            assert!(topics.contains(&p.topic), "{member} does not consume {p}");
        }
    }
    for (topic, count) in g.partitions_per_topic() {
        let consumed = g
            .members()
            .any(|m| g.subscribed_topics(m).is_some_and(|t| t.contains(topic)));
        for p in 0..*count {
            assert_eq!(seen.contains(&tp(topic, p)), consumed, "{topic}-{p}");
        }
    }
    assert_eq!(g.owned(), g.assignment(), "every member synced");
}

// ------------------------------------------------------------- scenarios ---

/// JoinGroup / SyncGroup: a lone member's join completes at once; a second
/// member's join waits until the first rejoins, which it learns from its
/// heartbeat (Kafka protocol: Heartbeat answers REBALANCE_IN_PROGRESS).
#[test]
fn members_join_rebalance_sync_and_become_stable() {
    let mut g = group(AssignorKind::Range, &[("orders", 6)]);
    assert_eq!(
        (g.state(), g.generation(), g.poll_timeout().map(ms)),
        (GroupState::Empty, 0, None)
    );

    let a = g.handle_join(None, "app", sub(&["orders"]), at(0)).unwrap();
    assert_eq!(a.member_id, MemberId::new("app-0"));
    assert_eq!(a.generation, Some(1));
    let all = partitions(&[
        ("orders", 0),
        ("orders", 1),
        ("orders", 2),
        ("orders", 3),
        ("orders", 4),
        ("orders", 5),
    ]);
    let first: Assignment = [(a.member_id.clone(), all.clone())].into_iter().collect();
    assert_eq!(
        drain(&mut g),
        vec![
            GroupEvent::MemberJoined {
                member: a.member_id.clone()
            },
            GroupEvent::RebalanceStarted {
                generation: 0,
                reason: RebalanceReason::MemberJoined(a.member_id.clone()),
            },
            GroupEvent::RebalanceCompleted {
                generation: 1,
                assignment: first
            },
        ]
    );
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(
        g.handle_sync(&a.member_id, 1, at(0)).unwrap().assignment,
        all
    );
    assert_eq!(drain(&mut g), vec![GroupEvent::Stable { generation: 1 }]);
    assert_stable_and_exclusive(&g);

    let b = g
        .handle_join(None, "app", sub(&["orders"]), at(1_000))
        .unwrap();
    assert_eq!(b.member_id, MemberId::new("app-1"));
    assert_eq!(b.generation, None, "waits for app-0 to rejoin");
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.handle_heartbeat(&a.member_id, 1, at(2_000)),
        Err(HeartbeatError::RebalanceInProgress)
    );
    assert_eq!(
        g.handle_sync(&a.member_id, 1, at(2_000)),
        Err(SyncError::RebalanceInProgress)
    );

    let a2 = g
        .handle_join(Some(&a.member_id), "app", sub(&["orders"]), at(2_500))
        .unwrap();
    assert_eq!(a2.generation, Some(2));
    let events = drain(&mut g);
    let Some(GroupEvent::RebalanceCompleted {
        generation,
        assignment,
    }) = events.last()
    else {
        panic!("the join phase completed: {events:?}");
    };
    assert_eq!(*generation, 2);
    assert!(
        assignment.contains_member(&b.member_id),
        "answers b's pending join"
    );

    let got_a = g
        .handle_sync(&a.member_id, 2, at(3_000))
        .unwrap()
        .assignment;
    assert_eq!(
        g.state(),
        GroupState::CompletingRebalance,
        "b has not synced"
    );
    let got_b = g
        .handle_sync(&b.member_id, 2, at(3_000))
        .unwrap()
        .assignment;
    assert_eq!(
        got_a,
        partitions(&[("orders", 0), ("orders", 1), ("orders", 2)])
    );
    assert_eq!(
        got_b,
        partitions(&[("orders", 3), ("orders", 4), ("orders", 5)])
    );
    assert_stable_and_exclusive(&g);
    assert_eq!(g.handle_heartbeat(&a.member_id, 2, at(4_000)), Ok(()));
}

/// Two members, stable at generation 2, both last heard at 3 s.
fn stable_pair(
    kind: AssignorKind,
    list: &[(&str, u32)],
    topic: &str,
) -> (GroupCoordinator, MemberId, MemberId) {
    let mut g = group(kind, list);
    let a = g
        .handle_join(None, "app", sub(&[topic]), at(0))
        .unwrap()
        .member_id;
    g.handle_sync(&a, 1, at(0)).unwrap();
    let b = g
        .handle_join(None, "app", sub(&[topic]), at(1_000))
        .unwrap()
        .member_id;
    assert_eq!(rejoin_and_sync(&mut g, &[&a, &b], &[topic], 3_000), 2);
    assert_stable_and_exclusive(&g);
    drain(&mut g);
    (g, a, b)
}

/// LeaveGroup removes the member at once and the rest rebalance.
#[test]
fn a_member_leaving_triggers_a_rebalance() {
    let (mut g, a, b) = stable_pair(AssignorKind::Range, &[("orders", 4)], "orders");
    g.handle_leave(&b, at(5_000)).unwrap();
    assert_eq!(
        drain(&mut g),
        vec![
            GroupEvent::MemberLeft { member: b.clone() },
            GroupEvent::RebalanceStarted {
                generation: 2,
                reason: RebalanceReason::MemberLeft(b.clone()),
            },
        ]
    );
    assert!(!g.contains_member(&b));
    assert!(g.assignment().get(&b).is_none(), "a leaver owns nothing");
    assert_eq!(
        g.handle_heartbeat(&a, 2, at(6_000)),
        Err(HeartbeatError::RebalanceInProgress)
    );
    assert_eq!(rejoin_and_sync(&mut g, &[&a], &["orders"], 6_000), 3);
    assert_eq!(g.assignment().partitions_of(&a).len(), 4);
    assert_stable_and_exclusive(&g);
    assert_eq!(
        g.handle_leave(&b, at(7_000)),
        Err(LeaveError::UnknownMember { member: b })
    );
}

/// KIP-62: a member that stops heartbeating is expired exactly at
/// `session_timeout` after it was last heard from, and the group
/// rebalances without it.
#[test]
fn a_silent_member_expires_after_the_session_timeout() {
    let (mut g, a, b) = stable_pair(AssignorKind::Range, &[("orders", 4)], "orders");
    let session = millis(g.config().session_timeout);
    let deadline = 3_000 + session;
    let mut now = 3_000;
    while now + 3_000 < deadline {
        now += 3_000;
        assert_eq!(g.handle_heartbeat(&a, 2, at(now)), Ok(()));
        g.handle_timeout(at(now));
        assert_eq!(
            g.poll_timeout().map(ms),
            Some(deadline),
            "b's session is the next timer"
        );
        assert!(drain(&mut g).is_empty());
    }
    g.handle_timeout(at(deadline - 1));
    assert!(drain(&mut g).is_empty(), "not a millisecond early");
    assert!(g.contains_member(&b));
    g.handle_timeout(at(deadline));
    assert_eq!(
        drain(&mut g),
        vec![
            GroupEvent::MemberExpired {
                member: b.clone(),
                reason: ExpiryReason::SessionTimeout
            },
            GroupEvent::RebalanceStarted {
                generation: 2,
                reason: RebalanceReason::MemberExpired(b.clone()),
            },
        ]
    );
    assert_eq!(rejoin_and_sync(&mut g, &[&a], &["orders"], deadline + 1), 3);
    assert_eq!(g.assignment().partitions_of(&a).len(), 4);
    assert_stable_and_exclusive(&g);

    // The expired member is fenced and must join again without its id.
    assert_eq!(
        g.handle_heartbeat(&b, 2, at(deadline + 2)),
        Err(HeartbeatError::UnknownMember { member: b.clone() })
    );
    assert_eq!(
        g.handle_join(Some(&b), "app", sub(&["orders"]), at(deadline + 2)),
        Err(JoinError::UnknownMember { member: b.clone() })
    );
    let fresh = g
        .handle_join(None, "app", sub(&["orders"]), at(deadline + 2))
        .unwrap();
    assert_eq!(
        fresh.member_id,
        MemberId::new("app-2"),
        "ids are never reused"
    );
}

/// KIP-62: a member that keeps heartbeating but does not rejoin within the
/// rebalance timeout is removed when it runs out, and the rebalance
/// completes with the members that did rejoin.
#[test]
fn a_late_member_misses_the_rebalance_timeout_and_is_removed() {
    let (mut g, a, b) = stable_pair(AssignorKind::RoundRobin, &[("orders", 4)], "orders");
    let c = g
        .handle_join(None, "app", sub(&["orders"]), at(10_000))
        .unwrap()
        .member_id;
    let deadline = 10_000 + millis(g.config().rebalance_timeout);
    drain(&mut g);
    assert_eq!(
        g.handle_join(Some(&a), "app", sub(&["orders"]), at(11_000))
            .unwrap()
            .generation,
        None
    );
    let mut now = 11_000;
    while now + 3_000 < deadline {
        now += 3_000;
        // b's heartbeats keep its session alive, but it never rejoins.
        assert_eq!(
            g.handle_heartbeat(&b, 2, at(now)),
            Err(HeartbeatError::RebalanceInProgress)
        );
        g.handle_timeout(at(now));
        let session = millis(g.config().session_timeout);
        assert_eq!(
            g.poll_timeout().map(ms),
            Some((now + session).min(deadline))
        );
        assert!(drain(&mut g).is_empty());
        assert_eq!(g.state(), GroupState::PreparingRebalance);
    }
    g.handle_timeout(at(deadline));
    let events = drain(&mut g);
    assert_eq!(
        events[0],
        GroupEvent::MemberExpired {
            member: b.clone(),
            reason: ExpiryReason::RebalanceTimeout
        }
    );
    let GroupEvent::RebalanceCompleted {
        generation: 3,
        assignment,
    } = &events[1]
    else {
        panic!("the rebalance completed without b: {events:?}");
    };
    assert_eq!(assignment.members().collect::<Vec<_>>(), vec![&a, &c]);
    assert_eq!(events.len(), 2);
    g.handle_sync(&a, 3, at(deadline)).unwrap();
    g.handle_sync(&c, 3, at(deadline)).unwrap();
    assert_stable_and_exclusive(&g);
    assert_eq!(
        g.handle_heartbeat(&b, 2, at(deadline + 1)),
        Err(HeartbeatError::UnknownMember { member: b })
    );
}

/// A member that neither rejoins nor heartbeats expires on its session
/// timeout, which ends the join phase early: the others need not wait for
/// the rebalance timeout.
#[test]
fn a_silent_member_ends_the_join_phase_at_its_session_timeout() {
    let (mut g, a, b) = stable_pair(AssignorKind::Range, &[("orders", 4)], "orders");
    g.handle_join(Some(&a), "app", sub(&["orders", "orders"]), at(4_000))
        .unwrap();
    // Unchanged topics (duplicates aside) in a stable group: no rebalance.
    assert!(drain(&mut g).is_empty());
    g.handle_metadata(topics(&[("orders", 6)]), at(5_000));
    assert_eq!(
        drain(&mut g),
        vec![GroupEvent::RebalanceStarted {
            generation: 2,
            reason: RebalanceReason::MetadataChanged
        }]
    );
    assert_eq!(
        g.handle_join(Some(&a), "app", sub(&["orders"]), at(5_000))
            .unwrap()
            .generation,
        None
    );
    // a is awaiting its join answer and is kept alive; b was last heard at 3 s.
    assert_eq!(g.poll_timeout().map(ms), Some(3_000 + 45_000));
    g.handle_timeout(at(48_000));
    let events = drain(&mut g);
    assert_eq!(
        events[0],
        GroupEvent::MemberExpired {
            member: b,
            reason: ExpiryReason::SessionTimeout
        }
    );
    assert!(matches!(
        events[1],
        GroupEvent::RebalanceCompleted { generation: 3, .. }
    ));
    assert_eq!(
        g.handle_sync(&a, 3, at(48_000)).unwrap().assignment.len(),
        6
    );
    assert_stable_and_exclusive(&g);
}

/// Requests naming an old generation or an unknown member are refused with
/// typed errors and change nothing: no event, no refreshed session.
#[test]
fn stale_generations_and_unknown_members_change_nothing() {
    let (mut g, a, _b) = stable_pair(AssignorKind::Sticky, &[("orders", 4)], "orders");
    let before = (
        g.state(),
        g.generation(),
        g.assignment().clone(),
        g.owned().clone(),
        g.poll_timeout().map(ms),
    );
    let ghost = MemberId::new("ghost-7");
    assert_eq!(
        g.handle_heartbeat(&a, 1, at(9_000)),
        Err(HeartbeatError::IllegalGeneration {
            generation: 1,
            current: 2
        })
    );
    assert_eq!(
        g.handle_sync(&a, 3, at(9_000)),
        Err(SyncError::IllegalGeneration {
            generation: 3,
            current: 2
        })
    );
    assert_eq!(
        g.handle_heartbeat(&ghost, 2, at(9_000)),
        Err(HeartbeatError::UnknownMember {
            member: ghost.clone()
        })
    );
    assert_eq!(
        g.handle_sync(&ghost, 2, at(9_000)),
        Err(SyncError::UnknownMember {
            member: ghost.clone()
        })
    );
    assert_eq!(
        g.handle_join(Some(&ghost), "x", sub(&["orders"]), at(9_000)),
        Err(JoinError::UnknownMember {
            member: ghost.clone()
        })
    );
    assert_eq!(
        g.handle_leave(&ghost, at(9_000)),
        Err(LeaveError::UnknownMember { member: ghost })
    );
    let after = (
        g.state(),
        g.generation(),
        g.assignment().clone(),
        g.owned().clone(),
        g.poll_timeout().map(ms),
    );
    assert_eq!(before, after);
    assert!(drain(&mut g).is_empty());
}

/// A known member rejoining with different topics starts a rebalance; a
/// metadata change on a topic nobody consumes does not.
#[test]
fn subscription_and_metadata_changes() {
    let (mut g, a, b) = stable_pair(
        AssignorKind::Range,
        &[("orders", 4), ("audit", 2)],
        "orders",
    );
    g.handle_metadata(topics(&[("orders", 4), ("audit", 3)]), at(4_000));
    assert!(drain(&mut g).is_empty(), "nobody consumes audit");
    assert_eq!(g.state(), GroupState::Stable);

    let joined = g
        .handle_join(Some(&a), "app", sub(&["orders", "audit"]), at(5_000))
        .unwrap();
    assert_eq!(joined.generation, None);
    assert_eq!(
        drain(&mut g),
        vec![GroupEvent::RebalanceStarted {
            generation: 2,
            reason: RebalanceReason::SubscriptionChanged(a.clone()),
        }]
    );
    let generation = g
        .handle_join(Some(&b), "app", sub(&["orders"]), at(5_000))
        .unwrap()
        .generation;
    assert_eq!(generation, Some(3));
    g.handle_sync(&a, 3, at(5_000)).unwrap();
    g.handle_sync(&b, 3, at(5_000)).unwrap();
    assert_stable_and_exclusive(&g);
    assert_eq!(
        g.assignment()
            .partitions_of(&a)
            .iter()
            .filter(|p| p.topic == "audit")
            .count(),
        3
    );
}

/// KIP-429: a partition changing owner is revoked in one generation and
/// assigned in the follow-up rebalance, which starts once every member has
/// synced (so the holder has let go). At no point do two members hold it.
#[test]
fn cooperative_sticky_revokes_before_it_reassigns() {
    let mut g = group(AssignorKind::CooperativeSticky, &[("t", 4)]);
    let a = g
        .handle_join(None, "app", sub(&["t"]), at(0))
        .unwrap()
        .member_id;
    g.handle_sync(&a, 1, at(0)).unwrap();
    let b = g
        .handle_join(None, "app", sub(&["t"]), at(1_000))
        .unwrap()
        .member_id;
    assert_eq!(
        g.handle_join(Some(&a), "app", sub(&["t"]), at(1_000))
            .unwrap()
            .generation,
        Some(2)
    );
    drain(&mut g);

    let a_holds = g.handle_sync(&a, 2, at(1_500)).unwrap().assignment;
    assert_eq!(
        a_holds,
        partitions(&[("t", 0), ("t", 1)]),
        "t-2 and t-3 revoked"
    );
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let b_holds = g.handle_sync(&b, 2, at(1_600)).unwrap().assignment;
    assert_eq!(b_holds, vec![], "not yet: a might still hold them");
    assert_eq!(
        drain(&mut g),
        vec![GroupEvent::RebalanceStarted {
            generation: 2,
            reason: RebalanceReason::PendingRevocations,
        }]
    );
    assert_eq!(
        g.state(),
        GroupState::PreparingRebalance,
        "never stable with partitions pending"
    );

    assert_eq!(
        g.handle_heartbeat(&b, 2, at(2_000)),
        Err(HeartbeatError::RebalanceInProgress)
    );
    assert_eq!(rejoin_and_sync(&mut g, &[&a, &b], &["t"], 2_000), 3);
    assert_eq!(
        g.assignment().partitions_of(&a),
        partitions(&[("t", 0), ("t", 1)]).as_slice()
    );
    assert_eq!(
        g.assignment().partitions_of(&b),
        partitions(&[("t", 2), ("t", 3)]).as_slice()
    );
    assert_stable_and_exclusive(&g);
}

/// "Extra consumers beyond the partition count stay idle", through the
/// coordinator, for every strategy.
#[test]
fn extra_consumers_stay_idle() {
    for kind in AssignorKind::ALL {
        let mut g = group(kind, &[("orders", 4)]);
        let mut ids = Vec::new();
        for i in 0..5u64 {
            ids.push(
                g.handle_join(None, "app", sub(&["orders"]), at(i))
                    .unwrap()
                    .member_id,
            );
        }
        // The first completed alone; the four others then form one round.
        let refs: Vec<&MemberId> = ids.iter().collect();
        loop {
            rejoin_and_sync(&mut g, &refs, &["orders"], 10);
            if g.state() == GroupState::Stable {
                break;
            }
        }
        assert_stable_and_exclusive(&g);
        let idle = g.assignment().iter().filter(|(_, p)| p.is_empty()).count();
        assert_eq!(idle, 1, "{}", kind.name());
        assert_eq!(g.member_count(), 5);
    }
}

/// The group empties when its last member leaves; generations keep counting.
#[test]
fn the_group_empties_and_restarts() {
    let (mut g, a, b) = stable_pair(AssignorKind::Range, &[("orders", 4)], "orders");
    g.handle_leave(&a, at(4_000)).unwrap();
    g.handle_leave(&b, at(4_000)).unwrap();
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.poll_timeout().map(ms), None);
    assert!(g.assignment().is_empty() && g.owned().is_empty());
    let c = g
        .handle_join(None, "app", sub(&["orders"]), at(5_000))
        .unwrap();
    assert_eq!(c.generation, Some(3));
}

#[test]
fn a_full_group_refuses_new_members() {
    let mut config = GroupConfig::default();
    config.max_members = 1;
    let mut g = GroupCoordinator::new(config, topics(&[("t", 1)])).unwrap();
    g.handle_join(None, "app", sub(&["t"]), at(0)).unwrap();
    drain(&mut g);
    assert_eq!(
        g.handle_join(None, "app", sub(&["t"]), at(1)),
        Err(JoinError::GroupFull { max_members: 1 })
    );
    assert_eq!(g.member_count(), 1);
    assert!(drain(&mut g).is_empty());
}

#[test]
fn config_defaults_and_validation() {
    let d = GroupConfig::default();
    assert_eq!(
        (d.session_timeout, d.heartbeat_interval, d.rebalance_timeout),
        (
            Duration::from_secs(45),
            Duration::from_secs(3),
            Duration::from_secs(300)
        )
    );
    assert_eq!(d.assignor, AssignorKind::Range);
    assert_eq!(d.validate(), Ok(()));
    let with = |change: &dyn Fn(&mut GroupConfig)| {
        let mut config = d.clone();
        change(&mut config);
        config
    };
    let too_long = MAX_TIMEOUT + Duration::from_millis(1);
    let bad = [
        (
            with(&|c| c.heartbeat_interval = Duration::ZERO),
            GroupConfigError::ZeroHeartbeatInterval,
        ),
        (
            with(&|c| c.session_timeout = Duration::from_secs(3)),
            GroupConfigError::SessionNotAboveHeartbeat {
                session_timeout: Duration::from_secs(3),
                heartbeat_interval: Duration::from_secs(3),
            },
        ),
        (
            with(&|c| c.rebalance_timeout = Duration::ZERO),
            GroupConfigError::ZeroRebalanceTimeout,
        ),
        (
            with(&|c| c.max_members = 0),
            GroupConfigError::ZeroMaxMembers,
        ),
        (
            with(&|c| c.session_timeout = too_long),
            GroupConfigError::TooLong {
                field: "session_timeout",
                value: too_long,
            },
        ),
        (
            with(&|c| c.rebalance_timeout = too_long),
            GroupConfigError::TooLong {
                field: "rebalance_timeout",
                value: too_long,
            },
        ),
        (
            with(&|c| c.heartbeat_interval = too_long),
            GroupConfigError::TooLong {
                field: "heartbeat_interval",
                value: too_long,
            },
        ),
    ];
    for (config, err) in bad {
        assert_eq!(config.validate(), Err(err.clone()));
        assert_eq!(
            GroupCoordinator::new(config, BTreeMap::new()).unwrap_err(),
            err
        );
    }
}

/// The longest timeouts a config accepts never overflow `Instant` arithmetic:
/// the coordinator schedules them without panicking.
#[test]
fn the_longest_valid_timeouts_schedule_without_overflow() {
    let mut config = GroupConfig::default();
    config.session_timeout = MAX_TIMEOUT;
    config.rebalance_timeout = MAX_TIMEOUT;
    config.heartbeat_interval = MAX_TIMEOUT - Duration::from_millis(1);
    let mut g = GroupCoordinator::new(config, topics(&[("t", 2)])).unwrap();
    let a = g.handle_join(None, "app", sub(&["t"]), at(0)).unwrap();
    g.handle_sync(&a.member_id, 1, at(0)).unwrap();
    g.handle_join(None, "app", sub(&["t"]), at(1)).unwrap();
    assert_eq!(g.poll_timeout().map(ms), Some(millis(MAX_TIMEOUT)));
    g.handle_timeout(at(millis(MAX_TIMEOUT) + 1));
    assert_eq!(g.member_count(), 1, "a expired; b is alone");
}

// ------------------------------------------------------------ simulation ---

/// xorshift64: a tiny seeded generator, so every run replays from its seed.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Must join without an id.
    Fresh,
    /// Waiting for the answer to its JoinGroup (a `RebalanceCompleted`).
    AwaitingJoin,
    /// Must sync this generation.
    Syncing(u32),
    /// Synced this generation; heartbeats.
    Steady(u32),
    /// Left the group for good.
    Gone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Running,
    /// Sends nothing until then (a long GC pause, a stuck poll loop).
    Stalled(u64),
    /// Heartbeats, but its poll loop is stuck until then, so it does not
    /// rejoin (KIP-62's slow consumer).
    Busy(u64),
    /// Never sends anything again.
    Crashed,
}

/// A consumer as the protocol expects it to behave: eager members revoke
/// everything before they rejoin, cooperative ones keep their partitions
/// and take what each sync gives them.
#[derive(Debug)]
struct Client {
    name: String,
    id: Option<MemberId>,
    topics: Vec<String>,
    phase: Phase,
    mode: Mode,
    holds: BTreeSet<TopicPartition>,
}

struct Sim {
    seed: u64,
    kind: AssignorKind,
    rng: XorShift,
    g: GroupCoordinator,
    clients: Vec<Client>,
    now: u64,
    step: usize,
    generation: u32,
    trace: Vec<GroupEvent>,
}

const TOPICS: [&str; 3] = ["a", "b", "c"];

impl Sim {
    fn new(kind: AssignorKind, seed: u64) -> Self {
        let mut config = GroupConfig::default();
        config.session_timeout = Duration::from_secs(10);
        config.heartbeat_interval = Duration::from_secs(1);
        config.rebalance_timeout = Duration::from_secs(20);
        config.assignor = kind;
        let g = GroupCoordinator::new(config, topics(&[("a", 3), ("b", 5), ("c", 1)]))
            .expect("valid config");
        Self {
            seed,
            kind,
            rng: XorShift::new(seed),
            g,
            clients: Vec::new(),
            now: 0,
            step: 0,
            generation: 0,
            trace: Vec::new(),
        }
    }

    fn ctx(&self) -> String {
        format!(
            "{} seed {} step {} t={}",
            self.kind.name(),
            self.seed,
            self.step,
            self.now
        )
    }

    fn random_topics(&mut self) -> Vec<String> {
        let mask = 1 + self.rng.below(7);
        TOPICS
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, t)| t.to_string())
            .collect()
    }

    fn running(&self) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&i| {
                self.clients[i].mode == Mode::Running && self.clients[i].phase != Phase::Gone
            })
            .collect()
    }

    fn pick(&mut self) -> Option<usize> {
        let running = self.running();
        if running.is_empty() {
            None
        } else {
            Some(running[self.rng.below(running.len() as u64) as usize])
        }
    }

    /// One random disturbance, time moving on, every running client doing
    /// its part, and the timers.
    fn random_step(&mut self) {
        self.step += 1;
        match self.rng.below(24) {
            0 | 1 => {
                let live = self
                    .clients
                    .iter()
                    .filter(|c| c.phase != Phase::Gone)
                    .count();
                if live < 8 {
                    let topics = self.random_topics();
                    self.clients.push(Client {
                        name: format!("c{}", self.clients.len()),
                        id: None,
                        topics,
                        phase: Phase::Fresh,
                        mode: Mode::Running,
                        holds: BTreeSet::new(),
                    });
                }
            }
            2 => {
                if let Some(i) = self.pick() {
                    self.leave(i);
                }
            }
            3 => {
                if let Some(i) = self.pick() {
                    self.clients[i].mode = Mode::Crashed;
                }
            }
            4 | 5 => {
                if let Some(i) = self.pick() {
                    let until = self.now + self.rng.below(25_000);
                    self.clients[i].mode = Mode::Stalled(until);
                }
            }
            6 => {
                if let Some(i) = self.pick() {
                    let topics = self.random_topics();
                    if topics != self.clients[i].topics && self.clients[i].id.is_some() {
                        self.clients[i].topics = topics;
                        self.join(i, true);
                    }
                }
            }
            8 => {
                if let Some(i) = self.pick() {
                    let until = self.now + self.rng.below(40_000);
                    self.clients[i].mode = Mode::Busy(until);
                }
            }
            7 => {
                let mut meta = self.g.partitions_per_topic().clone();
                let t = TOPICS[self.rng.below(3) as usize];
                let count = meta.entry(t.to_string()).or_insert(0);
                if *count < 8 {
                    *count += 1;
                }
                self.g.handle_metadata(meta, at(self.now));
                self.drain_and_check();
            }
            _ => {}
        }
        self.tick();
    }

    fn tick(&mut self) {
        self.now += 200 + self.rng.below(900);
        for i in 0..self.clients.len() {
            if let Mode::Stalled(until) | Mode::Busy(until) = self.clients[i].mode {
                if until <= self.now {
                    self.clients[i].mode = Mode::Running;
                }
            }
            if matches!(self.clients[i].mode, Mode::Running | Mode::Busy(_)) {
                self.act(i);
            }
        }
        self.g.handle_timeout(at(self.now));
        self.drain_and_check();
    }

    fn act(&mut self, i: usize) {
        let id = self.clients[i].id.clone();
        let busy = matches!(self.clients[i].mode, Mode::Busy(_));
        match (self.clients[i].phase, id) {
            (Phase::Fresh, _) => self.join(i, false),
            (Phase::Syncing(generation), Some(id)) => {
                match self.g.handle_sync(&id, generation, at(self.now)) {
                    Ok(answer) => {
                        self.clients[i].holds = answer.assignment.into_iter().collect();
                        self.clients[i].phase = Phase::Steady(generation);
                        self.drain_and_check();
                    }
                    Err(SyncError::UnknownMember { .. }) => self.fenced(i),
                    Err(_) if busy => {}
                    Err(_) => self.join(i, true),
                }
            }
            (Phase::Steady(generation), Some(id)) => {
                match self.g.handle_heartbeat(&id, generation, at(self.now)) {
                    Ok(()) => {}
                    Err(HeartbeatError::UnknownMember { .. }) => self.fenced(i),
                    Err(_) if busy => {}
                    Err(_) => self.join(i, true),
                }
            }
            _ => {}
        }
    }

    /// JoinGroup, with its id (a rejoin) or without (a first join).
    fn join(&mut self, i: usize, with_id: bool) {
        if self.kind != AssignorKind::CooperativeSticky {
            // The eager protocol: revoke everything before rejoining.
            self.clients[i].holds.clear();
        }
        let id = if with_id {
            self.clients[i].id.clone()
        } else {
            None
        };
        let subscription = Subscription::new(self.clients[i].topics.clone());
        match self.g.handle_join(
            id.as_ref(),
            &self.clients[i].name,
            subscription,
            at(self.now),
        ) {
            Ok(answer) => {
                self.clients[i].id = Some(answer.member_id);
                self.clients[i].phase = match answer.generation {
                    Some(generation) => Phase::Syncing(generation),
                    None => Phase::AwaitingJoin,
                };
            }
            Err(JoinError::UnknownMember { .. }) => self.fenced(i),
            Err(e) => panic!("{}: unexpected {e}", self.ctx()),
        }
        self.drain_and_check();
    }

    fn leave(&mut self, i: usize) {
        if let Some(id) = self.clients[i].id.clone() {
            // Unknown if it was expired meanwhile: fine either way.
            let _ = self.g.handle_leave(&id, at(self.now));
        }
        self.clients[i].phase = Phase::Gone;
        self.clients[i].holds.clear();
        self.drain_and_check();
    }

    /// The group no longer knows the client: it drops everything and joins
    /// afresh.
    fn fenced(&mut self, i: usize) {
        assert!(
            self.clients[i].holds.is_empty(),
            "{}: fenced while holding",
            self.ctx()
        );
        self.clients[i].id = None;
        self.clients[i].phase = Phase::Fresh;
    }

    fn client_of(&self, member: &MemberId) -> Option<usize> {
        self.clients
            .iter()
            .position(|c| c.id.as_ref() == Some(member))
    }

    fn drain_and_check(&mut self) {
        while let Some(event) = self.g.poll_event() {
            match &event {
                GroupEvent::RebalanceStarted { generation, .. } => {
                    assert_eq!(*generation, self.generation, "{}", self.ctx());
                }
                GroupEvent::RebalanceCompleted {
                    generation,
                    assignment,
                } => {
                    assert_eq!(
                        *generation,
                        self.generation + 1,
                        "{}: generations count up",
                        self.ctx()
                    );
                    self.generation = *generation;
                    let members: Vec<&MemberId> = self.g.members().collect();
                    let assigned: Vec<&MemberId> = assignment.members().collect();
                    assert_eq!(members, assigned, "{}", self.ctx());
                    for c in &mut self.clients {
                        if c.phase == Phase::AwaitingJoin
                            && c.id
                                .as_ref()
                                .is_some_and(|id| assignment.contains_member(id))
                        {
                            c.phase = Phase::Syncing(*generation);
                        }
                    }
                }
                GroupEvent::MemberExpired { member, .. } | GroupEvent::MemberLeft { member } => {
                    // Fenced: whatever it held is no longer its to consume.
                    if let Some(i) = self.client_of(member) {
                        self.clients[i].holds.clear();
                        if self.clients[i].phase == Phase::AwaitingJoin {
                            self.clients[i].phase = Phase::Fresh;
                            self.clients[i].id = None;
                        }
                    }
                }
                GroupEvent::Stable { generation } => {
                    assert_eq!(*generation, self.g.generation(), "{}", self.ctx());
                }
                _ => {}
            }
            self.trace.push(event);
        }
        self.check();
    }

    /// The invariants, after every single request.
    fn check(&self) {
        // No partition is held by two clients at once, in any state and
        // across generations: a new owner only gets a partition after the
        // old one let go (KIP-429), or after every member revoked it
        // (eager), or after the old one was fenced.
        let mut owner: BTreeMap<&TopicPartition, &str> = BTreeMap::new();
        for c in &self.clients {
            for p in &c.holds {
                if let Some(other) = owner.insert(p, &c.name) {
                    panic!("{}: {p} held by both {other} and {}", self.ctx(), c.name);
                }
            }
        }
        assert!(self.g.generation() == self.generation, "{}", self.ctx());
        if self.g.state() != GroupState::Stable {
            return;
        }
        // Stable: every partition of a consumed topic has exactly one owner,
        // a live member consuming it, and the members hold just that.
        let members: BTreeSet<&MemberId> = self.g.members().collect();
        let assignment = self.g.assignment();
        assert_eq!(
            assignment.members().collect::<BTreeSet<_>>(),
            members,
            "{}",
            self.ctx()
        );
        let mut seen = BTreeSet::new();
        for (member, parts) in assignment.iter() {
            for p in parts {
                assert!(seen.insert(p.clone()), "{}: {p} assigned twice", self.ctx());
                let topics = self.g.subscribed_topics(member).expect("a member");
                assert!(
                    topics.contains(&p.topic),
                    "{}: {member} does not consume {p}",
                    self.ctx()
                );
            }
            if let Some(i) = self.client_of(member) {
                let holds: Vec<&TopicPartition> = self.clients[i].holds.iter().collect();
                let want: Vec<&TopicPartition> = parts.iter().collect();
                assert_eq!(holds, want, "{}: {member} holds what it synced", self.ctx());
            }
        }
        for (topic, count) in self.g.partitions_per_topic() {
            let consumed = members.iter().any(|m| {
                self.g
                    .subscribed_topics(m)
                    .is_some_and(|t| t.contains(topic))
            });
            if consumed {
                for p in 0..*count {
                    assert!(
                        seen.contains(&tp(topic, p)),
                        "{}: {topic}-{p} has no owner",
                        self.ctx()
                    );
                }
            }
        }
        assert_eq!(self.g.owned(), assignment, "{}", self.ctx());
    }

    /// Everyone recovers and nothing else happens: the group must become
    /// stable with every running client in it, within a bound (a livelock
    /// would not).
    fn settle(&mut self) {
        for c in &mut self.clients {
            if let Mode::Stalled(_) | Mode::Busy(_) = c.mode {
                c.mode = Mode::Running;
            }
        }
        for _ in 0..200 {
            self.step += 1;
            self.tick();
            let running: BTreeSet<MemberId> = self
                .clients
                .iter()
                .filter(|c| c.mode == Mode::Running && c.phase != Phase::Gone)
                .filter_map(|c| c.id.clone())
                .collect();
            let all_in = self
                .clients
                .iter()
                .filter(|c| c.mode == Mode::Running && c.phase != Phase::Gone)
                .all(|c| c.phase == Phase::Steady(self.g.generation()));
            let members: BTreeSet<MemberId> = self.g.members().cloned().collect();
            if all_in
                && members == running
                && (members.is_empty() || self.g.state() == GroupState::Stable)
            {
                return;
            }
        }
        panic!(
            "{}: the group did not settle: {:?} {:?}",
            self.ctx(),
            self.g.state(),
            self.clients
        );
    }
}

fn simulate(kind: AssignorKind, seed: u64, steps: usize) -> Vec<GroupEvent> {
    let mut sim = Sim::new(kind, seed);
    for _ in 0..steps {
        sim.random_step();
    }
    sim.settle();
    sim.trace
}

/// Acceptance: "rebalances on join/leave/timeout give every partition to
/// exactly one member", checked after every request over random histories,
/// for every strategy; with cooperative-sticky no partition ever has two
/// owners across generations (KIP-429).
#[test]
fn random_histories_keep_one_owner_per_partition() {
    for kind in AssignorKind::ALL {
        // What the histories went through, to show they test something.
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for seed in 0..40 {
            for event in simulate(kind, seed, 250) {
                let what = match event {
                    GroupEvent::Stable { .. } => "stable",
                    GroupEvent::MemberLeft { .. } => "left",
                    GroupEvent::MemberExpired {
                        reason: ExpiryReason::SessionTimeout,
                        ..
                    } => "session timeout",
                    GroupEvent::MemberExpired {
                        reason: ExpiryReason::RebalanceTimeout,
                        ..
                    } => "rebalance timeout",
                    GroupEvent::RebalanceStarted {
                        reason: RebalanceReason::MetadataChanged,
                        ..
                    } => "metadata",
                    GroupEvent::RebalanceStarted {
                        reason: RebalanceReason::SubscriptionChanged(_),
                        ..
                    } => "subscription",
                    GroupEvent::RebalanceStarted {
                        reason: RebalanceReason::PendingRevocations,
                        ..
                    } => "follow-up",
                    _ => "other",
                };
                *seen.entry(what).or_default() += 1;
            }
        }
        let mut want = vec![
            "stable",
            "left",
            "session timeout",
            "rebalance timeout",
            "metadata",
            "subscription",
        ];
        if kind == AssignorKind::CooperativeSticky {
            want.push("follow-up");
        }
        for what in want {
            assert!(
                seen.get(what).is_some_and(|n| *n >= 10),
                "{}: too few {what}: {seen:?}",
                kind.name()
            );
        }
    }
}

/// Same seed, same history: the coordinator is deterministic.
#[test]
fn simulation_replays_from_its_seed() {
    for kind in AssignorKind::ALL {
        let first = simulate(kind, 7, 150);
        assert!(first.len() > 20, "the run did something");
        assert_eq!(first, simulate(kind, 7, 150));
    }
}

/// A strategy of the test's own: every subscribed partition to the first member.
#[derive(Debug)]
struct AllToFirst;

impl dsys_log::group::Assignor for AllToFirst {
    fn name(&self) -> &'static str {
        "all-to-first"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &BTreeMap<MemberId, Subscription>,
        _previous: &Assignment,
    ) -> Assignment {
        let all: Vec<TopicPartition> = partitions_per_topic
            .iter()
            .flat_map(|(t, &n)| (0..n).map(move |p| tp(t, p)))
            .collect();
        members
            .keys()
            .enumerate()
            .map(|(i, m)| (m.clone(), if i == 0 { all.clone() } else { Vec::new() }))
            .collect()
    }
}

/// A custom assignor given to `with_assignor` runs, whatever built-in strategy
/// `config.assignor` names (it cannot name a custom one), and the coordinator
/// reports it.
#[test]
fn with_assignor_runs_a_custom_strategy_over_the_configured_one() {
    let mut config = GroupConfig::default();
    config.assignor = AssignorKind::RoundRobin;
    let mut g =
        GroupCoordinator::with_assignor(config, topics(&[("orders", 4)]), Box::new(AllToFirst))
            .expect("a custom name does not contradict the config");
    assert_eq!(g.assignor().name(), "all-to-first");
    let a = g.handle_join(None, "app", sub(&["orders"]), at(0)).unwrap();
    let b = g.handle_join(None, "app", sub(&["orders"]), at(0)).unwrap();
    let a = g
        .handle_join(Some(&a.member_id), "app", sub(&["orders"]), at(1))
        .unwrap();
    let generation = a.generation.expect("both members joined");
    drain(&mut g);
    let first = g.handle_sync(&a.member_id, generation, at(2)).unwrap();
    let second = g.handle_sync(&b.member_id, generation, at(2)).unwrap();
    // Round-robin would give two each; the custom strategy gives all to one.
    let mut sizes = [first.assignment.len(), second.assignment.len()];
    sizes.sort();
    assert_eq!(sizes, [0, 4]);
}

/// An assignor that claims a built-in name other than the configured one is a
/// contradiction: refused, nothing built. The same name is accepted.
#[test]
fn with_assignor_refuses_a_built_in_strategy_the_config_does_not_name() {
    for configured in AssignorKind::ALL {
        for given in AssignorKind::ALL {
            let mut config = GroupConfig::default();
            config.assignor = configured;
            let built =
                GroupCoordinator::with_assignor(config, topics(&[("orders", 4)]), given.assignor());
            if configured == given {
                assert_eq!(
                    built.expect("same strategy").assignor().name(),
                    given.name()
                );
            } else {
                assert_eq!(
                    built.expect_err("contradiction"),
                    GroupConfigError::AssignorMismatch {
                        configured: configured.name(),
                        given: given.name(),
                    }
                );
            }
        }
    }
}
