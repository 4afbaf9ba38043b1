//! The partition assignors against Kafka's documented examples (the
//! javadoc of `RangeAssignor`, `RoundRobinAssignor` and `StickyAssignor`,
//! KIP-54), and their laws as properties: every subscribed partition goes to
//! exactly one subscriber; the sticky strategies are balanced and move the
//! fewest partitions a balanced assignment can (KIP-54); the cooperative
//! strategy never hands a partition to a new owner while another member
//! still holds it (KIP-429).

use std::collections::{BTreeMap, BTreeSet};

use dsys_log::group::{
    Assignment, Assignor, AssignorKind, CooperativeStickyAssignor, MemberId, RangeAssignor,
    RebalanceProtocol, RoundRobinAssignor, StickyAssignor, Subscription, TopicPartition,
};
use proptest::prelude::*;

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn topics(list: &[(&str, u32)]) -> BTreeMap<String, u32> {
    list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn members(list: &[(&str, &[&str])]) -> BTreeMap<MemberId, Subscription> {
    list.iter()
        .map(|(m, ts)| (MemberId::new(*m), Subscription::new(ts.iter().copied())))
        .collect()
}

fn assignment(list: &[(&str, &[(&str, u32)])]) -> Assignment {
    list.iter()
        .map(|(m, ps)| {
            (
                MemberId::new(*m),
                ps.iter().map(|(t, p)| tp(t, *p)).collect(),
            )
        })
        .collect()
}

/// What each member holds after syncing `assignment` (KIP-429's owned
/// partitions), ready to be the next rebalance's `previous`.
fn synced(assignment: &Assignment, members: &BTreeMap<MemberId, Subscription>) -> Assignment {
    assignment
        .iter()
        .filter(|(m, _)| members.contains_key(*m))
        .map(|(m, p)| (m.clone(), p.to_vec()))
        .collect()
}

fn counts(a: &Assignment) -> Vec<usize> {
    a.iter().map(|(_, p)| p.len()).collect()
}

// ---------------------------------------------------------------- tables ---

/// RangeAssignor javadoc: two consumers, two topics of three partitions.
#[test]
fn range_matches_kafka_example() {
    let parts = topics(&[("t0", 3), ("t1", 3)]);
    let group = members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
    let got = RangeAssignor.assign(&parts, &group, &Assignment::new());
    let want = assignment(&[
        ("C0", &[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)]),
        ("C1", &[("t0", 2), ("t1", 2)]),
    ]);
    assert_eq!(got, want);
}

/// RoundRobinAssignor javadoc: the same group, dealt round robin.
#[test]
fn round_robin_matches_kafka_example() {
    let parts = topics(&[("t0", 3), ("t1", 3)]);
    let group = members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
    let got = RoundRobinAssignor.assign(&parts, &group, &Assignment::new());
    let want = assignment(&[
        ("C0", &[("t0", 0), ("t0", 2), ("t1", 1)]),
        ("C1", &[("t0", 1), ("t1", 0), ("t1", 2)]),
    ]);
    assert_eq!(got, want);
}

/// RoundRobinAssignor javadoc: unequal subscriptions skip members.
#[test]
fn round_robin_matches_kafka_unequal_subscription_example() {
    let parts = topics(&[("t0", 1), ("t1", 2), ("t2", 3)]);
    let group = members(&[
        ("C0", &["t0"]),
        ("C1", &["t0", "t1"]),
        ("C2", &["t0", "t1", "t2"]),
    ]);
    let got = RoundRobinAssignor.assign(&parts, &group, &Assignment::new());
    let want = assignment(&[
        ("C0", &[("t0", 0)]),
        ("C1", &[("t1", 0)]),
        ("C2", &[("t1", 1), ("t2", 0), ("t2", 1), ("t2", 2)]),
    ]);
    assert_eq!(got, want);
}

/// Range arithmetic per topic: `n / m` each, the first `n % m` members one
/// more, in contiguous runs.
#[test]
fn range_splits_each_topic_into_contiguous_runs() {
    // (partitions, members, expected partitions per member in id order)
    let table: &[(u32, usize, &[&[u32]])] = &[
        (7, 3, &[&[0, 1, 2], &[3, 4], &[5, 6]]),
        (6, 3, &[&[0, 1], &[2, 3], &[4, 5]]),
        (2, 3, &[&[0], &[1], &[]]),
        (0, 2, &[&[], &[]]),
        (5, 1, &[&[0, 1, 2, 3, 4]]),
    ];
    for &(n, m, want) in table {
        let parts = topics(&[("t", n)]);
        let names: Vec<String> = (0..m).map(|i| format!("C{i}")).collect();
        let group: BTreeMap<MemberId, Subscription> = names
            .iter()
            .map(|c| (MemberId::new(c.as_str()), Subscription::new(["t"])))
            .collect();
        let got = RangeAssignor.assign(&parts, &group, &Assignment::new());
        for (i, name) in names.iter().enumerate() {
            let expect: Vec<TopicPartition> = want[i].iter().map(|p| tp("t", *p)).collect();
            assert_eq!(
                got.partitions_of(&MemberId::new(name.as_str())),
                expect.as_slice(),
                "{n} partitions over {m} members, member {name}"
            );
        }
    }
}

/// The skew Kafka documents for range: every topic starts again from the
/// first member.
#[test]
fn range_favours_the_first_members_across_topics() {
    let parts = topics(&[("a", 1), ("b", 1), ("c", 1)]);
    let group = members(&[("C0", &["a", "b", "c"]), ("C1", &["a", "b", "c"])]);
    let got = RangeAssignor.assign(&parts, &group, &Assignment::new());
    assert_eq!(counts(&got), vec![3, 0]);
    // Round robin spreads the same partitions.
    let got = RoundRobinAssignor.assign(&parts, &group, &Assignment::new());
    assert_eq!(counts(&got), vec![2, 1]);
}

/// StickyAssignor javadoc, example 1: three consumers over four topics of
/// two partitions start from the round-robin layout; when C1 leaves, C0 and
/// C2 keep everything and split C1's three partitions.
#[test]
fn sticky_matches_kafka_example_one() {
    let parts = topics(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
    let all: &[&str] = &["t0", "t1", "t2", "t3"];
    let group = members(&[("C0", all), ("C1", all), ("C2", all)]);
    let first = StickyAssignor.assign(&parts, &group, &Assignment::new());
    let want = assignment(&[
        ("C0", &[("t0", 0), ("t1", 1), ("t3", 0)]),
        ("C1", &[("t0", 1), ("t2", 0), ("t3", 1)]),
        ("C2", &[("t1", 0), ("t2", 1)]),
    ]);
    assert_eq!(first, want);

    let group = members(&[("C0", all), ("C2", all)]);
    let second = StickyAssignor.assign(&parts, &group, &first);
    let c0 = MemberId::new("C0");
    let c2 = MemberId::new("C2");
    assert_eq!(counts(&second), vec![4, 4]);
    for p in first.partitions_of(&c0) {
        assert_eq!(second.owner_of(p), Some(&c0), "{p} stays with C0");
    }
    for p in first.partitions_of(&c2) {
        assert_eq!(second.owner_of(p), Some(&c2), "{p} stays with C2");
    }
    // Only C1's three partitions changed hands.
    assert_eq!(second.moved_from(&first), 3);
    // Round robin, by contrast, reshuffles survivors' partitions too.
    let rr = RoundRobinAssignor.assign(&parts, &group, &first);
    assert!(rr.moved_from(&first) > 3);
}

/// StickyAssignor javadoc, example 2: unequal subscriptions. Sticky
/// balances better than round robin, and when C0 leaves only its partition
/// moves.
#[test]
fn sticky_matches_kafka_example_two() {
    let parts = topics(&[("t0", 1), ("t1", 2), ("t2", 3)]);
    let group = members(&[
        ("C0", &["t0"]),
        ("C1", &["t0", "t1"]),
        ("C2", &["t0", "t1", "t2"]),
    ]);
    let first = StickyAssignor.assign(&parts, &group, &Assignment::new());
    let want = assignment(&[
        ("C0", &[("t0", 0)]),
        ("C1", &[("t1", 0), ("t1", 1)]),
        ("C2", &[("t2", 0), ("t2", 1), ("t2", 2)]),
    ]);
    assert_eq!(first, want);

    let group = members(&[("C1", &["t0", "t1"]), ("C2", &["t0", "t1", "t2"])]);
    let second = StickyAssignor.assign(&parts, &group, &first);
    let want = assignment(&[
        ("C1", &[("t0", 0), ("t1", 0), ("t1", 1)]),
        ("C2", &[("t2", 0), ("t2", 1), ("t2", 2)]),
    ]);
    assert_eq!(second, want);
    assert_eq!(second.moved_from(&first), 1);
}

/// KIP-429: a partition changing hands is revoked in one rebalance and
/// assigned in the follow-up; the eager sticky strategy does it at once.
#[test]
fn cooperative_sticky_moves_partitions_in_two_rebalances() {
    let parts = topics(&[("t", 4)]);
    let before = assignment(&[("C0", &[("t", 0), ("t", 1), ("t", 2), ("t", 3)])]);
    let group = members(&[("C0", &["t"]), ("C1", &["t"])]);

    let eager = StickyAssignor.assign(&parts, &group, &before);
    assert_eq!(
        eager,
        assignment(&[("C0", &[("t", 0), ("t", 1)]), ("C1", &[("t", 2), ("t", 3)])])
    );

    let first = CooperativeStickyAssignor.assign(&parts, &group, &before);
    assert_eq!(
        first,
        assignment(&[("C0", &[("t", 0), ("t", 1)]), ("C1", &[])]),
        "t-2 and t-3 are revoked from C0 and given to nobody yet"
    );
    let second = CooperativeStickyAssignor.assign(&parts, &group, &synced(&first, &group));
    assert_eq!(second, eager, "the follow-up hands them to C1");

    // The same holdings declared through `Subscription::owned` (the
    // client-side protocol) give the same first step.
    let owned: BTreeMap<MemberId, Subscription> = group
        .iter()
        .map(|(m, s)| {
            (
                m.clone(),
                s.clone().with_owned(before.partitions_of(m).to_vec()),
            )
        })
        .collect();
    assert_eq!(
        CooperativeStickyAssignor.assign(&parts, &owned, &Assignment::new()),
        first
    );
}

/// A leaving member's partitions have no holder left: the cooperative
/// strategy reassigns them in a single rebalance.
#[test]
fn cooperative_sticky_reassigns_a_departed_members_partitions_at_once() {
    let parts = topics(&[("t", 4)]);
    let before = assignment(&[("C0", &[("t", 0), ("t", 1)]), ("C1", &[("t", 2), ("t", 3)])]);
    let group = members(&[("C0", &["t"])]);
    let got = CooperativeStickyAssignor.assign(&parts, &group, &before);
    assert_eq!(
        got,
        assignment(&[("C0", &[("t", 0), ("t", 1), ("t", 2), ("t", 3)])])
    );
}

/// "Extra consumers beyond the partition count stay idle": five consumers,
/// four partitions, every strategy.
#[test]
fn extra_consumers_stay_idle() {
    let parts = topics(&[("orders", 4)]);
    let group = members(&[
        ("C0", &["orders"]),
        ("C1", &["orders"]),
        ("C2", &["orders"]),
        ("C3", &["orders"]),
        ("C4", &["orders"]),
    ]);
    for kind in AssignorKind::ALL {
        let got = kind.assignor().assign(&parts, &group, &Assignment::new());
        assert_eq!(got.len(), 5, "{}: every member has an entry", kind.name());
        let idle = got.iter().filter(|(_, p)| p.is_empty()).count();
        assert_eq!(idle, 1, "{}: exactly one member idles", kind.name());
        assert_eq!(got.partition_count(), 4, "{}", kind.name());
        assert_eq!(got.owners().len(), 4, "{}: no partition twice", kind.name());
    }
}

#[test]
fn names_and_protocols_match_kafka() {
    let table = [
        (AssignorKind::Range, "range", RebalanceProtocol::Eager),
        (
            AssignorKind::RoundRobin,
            "roundrobin",
            RebalanceProtocol::Eager,
        ),
        (AssignorKind::Sticky, "sticky", RebalanceProtocol::Eager),
        (
            AssignorKind::CooperativeSticky,
            "cooperative-sticky",
            RebalanceProtocol::Cooperative,
        ),
    ];
    for (kind, name, protocol) in table {
        assert_eq!(kind.name(), name);
        assert_eq!(kind.assignor().protocol(), protocol, "{name}");
        assert_eq!(AssignorKind::from_name(name), Some(kind));
    }
    assert_eq!(AssignorKind::from_name("uniform"), None);
    assert_eq!(AssignorKind::default(), AssignorKind::Range);
}

/// Topics nobody knows give nothing; members consuming only those are idle
/// but present.
#[test]
fn unknown_topics_are_ignored() {
    let parts = topics(&[("t", 2)]);
    let group = members(&[("C0", &["t", "ghost"]), ("C1", &["ghost"])]);
    for kind in AssignorKind::ALL {
        let got = kind.assignor().assign(&parts, &group, &Assignment::new());
        assert_eq!(
            got,
            assignment(&[("C0", &[("t", 0), ("t", 1)]), ("C1", &[])]),
            "{}",
            kind.name()
        );
    }
}

/// Claims that no longer stand are dropped: a partition past the topic's
/// count, a topic the holder stopped consuming, a member that left.
#[test]
fn sticky_ignores_stale_claims() {
    let parts = topics(&[("a", 2), ("b", 2)]);
    let previous = assignment(&[
        ("C0", &[("a", 0), ("a", 1), ("a", 7)]),
        ("C1", &[("b", 0), ("b", 1)]),
        ("gone", &[("a", 9)]),
    ]);
    // C1 now consumes only `a`; both consume `a` and `b` is C0's alone.
    let group = members(&[("C0", &["a", "b"]), ("C1", &["a"])]);
    let got = StickyAssignor.assign(&parts, &group, &previous);
    // C1 can only take `a` partitions, so balance needs both of them there.
    assert_eq!(
        got,
        assignment(&[("C0", &[("b", 0), ("b", 1)]), ("C1", &[("a", 0), ("a", 1)])])
    );
}

/// With the `serde` feature an assignment is a map from member id to its
/// partitions.
#[test]
fn assignment_serde_round_trip() {
    let a = assignment(&[("C0", &[("t", 1), ("t", 0)]), ("C1", &[])]);
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(
        json,
        r#"{"C0":[{"topic":"t","partition":0},{"topic":"t","partition":1}],"C1":[]}"#
    );
    let unsorted = r#"{"C0":[{"topic":"t","partition":1},{"topic":"t","partition":0}],"C1":[]}"#;
    assert_eq!(serde_json::from_str::<Assignment>(unsorted).unwrap(), a);
    assert_eq!(tp("orders", 0).to_string(), "orders-0");
}

// ------------------------------------------------------------ properties ---

/// A random group: topic partition counts, member subscriptions (as topic
/// masks), and a previous assignment that may name departed members and
/// partitions that no longer exist.
#[derive(Clone, Debug)]
struct Case {
    partitions: BTreeMap<String, u32>,
    members: BTreeMap<MemberId, Subscription>,
    previous: Assignment,
}

impl Case {
    /// The partitions some member consumes.
    fn subscribed(&self) -> BTreeSet<TopicPartition> {
        self.partitions
            .iter()
            .filter(|(t, _)| self.members.values().any(|s| s.subscribes_to(t)))
            .flat_map(|(t, n)| (0..*n).map(move |p| tp(t, p)))
            .collect()
    }
}

fn arb_case(identical: bool) -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(0u32..7, 1..4),
        1usize..8,
        prop::collection::vec(0u8..16, 8),
        any::<bool>(),
    )
        .prop_flat_map(move |(counts, n_members, masks, with_ghost)| {
            let partitions: BTreeMap<String, u32> = counts
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("t{i}"), *n))
                .collect();
            let members: BTreeMap<MemberId, Subscription> = (0..n_members)
                .map(|i| {
                    let mask = if identical { masks[0] } else { masks[i] };
                    let mut topics: Vec<String> = (0..counts.len())
                        .filter(|t| mask & (1 << t) != 0)
                        .map(|t| format!("t{t}"))
                        .collect();
                    if with_ghost && i % 2 == 0 {
                        topics.push("ghost".to_string());
                    }
                    (MemberId::new(format!("m{i}")), Subscription::new(topics))
                })
                .collect();
            // Each partition (and one past each topic's end) is held by
            // nobody, a current member, or one of two departed members.
            let slots: Vec<TopicPartition> = partitions
                .iter()
                .flat_map(|(t, n)| (0..=*n).map(move |p| tp(t, p)))
                .collect();
            let owners = prop::collection::vec(prop::option::of(0..n_members + 2), slots.len());
            (Just(partitions), Just(members), Just(slots), owners)
        })
        .prop_map(|(partitions, members, slots, owners)| {
            let mut prev: BTreeMap<MemberId, Vec<TopicPartition>> = BTreeMap::new();
            for (slot, owner) in slots.into_iter().zip(owners) {
                if let Some(o) = owner {
                    let id = if o < members.len() {
                        format!("m{o}")
                    } else {
                        format!("gone{o}")
                    };
                    prev.entry(MemberId::new(id)).or_default().push(slot);
                }
            }
            Case {
                partitions,
                members,
                previous: prev.into(),
            }
        })
}

/// Every entry is a member; every assigned partition exists, goes to one
/// member only, and to a member consuming its topic; with `complete`, every
/// subscribed partition is assigned. Returns the unassigned subscribed
/// partitions.
fn check_valid(
    case: &Case,
    got: &Assignment,
    complete: bool,
    who: &str,
) -> Result<BTreeSet<TopicPartition>, TestCaseError> {
    let keys: Vec<&MemberId> = got.members().collect();
    let want: Vec<&MemberId> = case.members.keys().collect();
    prop_assert_eq!(keys, want, "{}: one entry per member", who);
    let mut seen = BTreeSet::new();
    for (member, parts) in got.iter() {
        for p in parts {
            prop_assert!(seen.insert(p.clone()), "{}: {} assigned twice", who, p);
            prop_assert!(
                case.members[member].subscribes_to(&p.topic),
                "{}: {} went to {} which does not consume it",
                who,
                p,
                member
            );
            prop_assert!(
                case.partitions
                    .get(&p.topic)
                    .is_some_and(|n| p.partition < *n),
                "{}: {} does not exist",
                who,
                p
            );
        }
    }
    let missing: BTreeSet<TopicPartition> = case.subscribed().difference(&seen).cloned().collect();
    if complete {
        prop_assert!(missing.is_empty(), "{}: unassigned {:?}", who, missing);
    }
    Ok(missing)
}

/// Present members holding `p` in `previous` (or through `owned`).
fn holders<'a>(case: &'a Case, previous: &'a Assignment, p: &TopicPartition) -> Vec<&'a MemberId> {
    case.members
        .iter()
        .filter(|(m, s)| previous.partitions_of(m).contains(p) || s.owned.contains(p))
        .map(|(m, _)| m)
        .collect()
}

/// KIP-429's rule for one rebalance: nothing goes to a member while another
/// present member holds it, and what is left out is held by someone.
fn check_cooperative_step(
    case: &Case,
    previous: &Assignment,
    got: &Assignment,
    missing: &BTreeSet<TopicPartition>,
) -> Result<(), TestCaseError> {
    for (member, parts) in got.iter() {
        for p in parts {
            let others: Vec<&MemberId> = holders(case, previous, p)
                .into_iter()
                .filter(|h| *h != member)
                .collect();
            prop_assert!(
                others.is_empty(),
                "{} given to {} while {:?} still hold it",
                p,
                member,
                others
            );
        }
    }
    for p in missing {
        prop_assert!(
            !holders(case, previous, p).is_empty(),
            "{} left out although nobody holds it",
            p
        );
    }
    Ok(())
}

/// The fewest partitions any balanced assignment of `case` (identical
/// subscriptions) can move: each member can keep at most its quota of what
/// it held, and only `P % M` members get the larger quota.
fn lower_bound_moves(case: &Case) -> usize {
    let subscribed = case.subscribed();
    let total = subscribed.len();
    let m = case.members.len();
    let (quota, larger) = (total / m, total % m);
    let held_before = case
        .previous
        .owners()
        .into_keys()
        .filter(|p| subscribed.contains(*p))
        .count();
    let held: Vec<usize> = case
        .members
        .keys()
        .map(|id| {
            case.previous
                .partitions_of(id)
                .iter()
                .filter(|p| subscribed.contains(*p))
                .count()
        })
        .collect();
    let keepable = held.iter().map(|h| (*h).min(quota)).sum::<usize>()
        + larger.min(held.iter().filter(|h| **h > quota).count());
    held_before - keepable
}

fn spread(a: &Assignment) -> usize {
    let c = counts(a);
    c.iter().max().unwrap_or(&0) - c.iter().min().unwrap_or(&0)
}

/// Runs the cooperative strategy rebalance after rebalance, each starting
/// from what the members synced, until nothing is left out. Returns the
/// final assignment and the number of rebalances.
fn cooperative_rounds(case: &Case, limit: usize) -> Result<(Assignment, usize), TestCaseError> {
    let mut previous = case.previous.clone();
    for round in 1..=limit {
        let got = CooperativeStickyAssignor.assign(&case.partitions, &case.members, &previous);
        let missing = check_valid(case, &got, false, "cooperative-sticky")?;
        check_cooperative_step(case, &previous, &got, &missing)?;
        if missing.is_empty() {
            return Ok((got, round));
        }
        previous = synced(&got, &case.members);
    }
    Err(TestCaseError::fail(format!(
        "no convergence in {limit} rebalances"
    )))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Acceptance: every subscribed partition goes to exactly one member
    /// that consumes its topic (eager strategies, any subscriptions).
    #[test]
    fn eager_assignors_give_each_partition_to_one_subscriber(case in arb_case(false)) {
        for kind in [AssignorKind::Range, AssignorKind::RoundRobin, AssignorKind::Sticky] {
            let got = kind.assignor().assign(&case.partitions, &case.members, &case.previous);
            check_valid(&case, &got, true, kind.name())?;
            // Deterministic: the same inputs, the same output.
            let again = kind.assignor().assign(&case.partitions, &case.members, &case.previous);
            prop_assert_eq!(&got, &again);
        }
    }

    /// KIP-429 with any subscriptions: each step gives partitions only to
    /// members nobody else holds them from, and the follow-ups converge to a
    /// complete assignment. (Two rebalances sufficed in 60,000 random cases;
    /// three are allowed because unequal subscriptions have no proof.)
    #[test]
    fn cooperative_never_hands_over_a_held_partition(case in arb_case(false)) {
        let (last, _) = cooperative_rounds(&case, 3)?;
        check_valid(&case, &last, true, "cooperative-sticky final")?;
    }

    /// KIP-54 balance and minimal movement, identical subscriptions: counts
    /// differ by at most one, and exactly the lower bound of partitions
    /// changes hands.
    #[test]
    fn sticky_is_balanced_and_moves_the_minimum(case in arb_case(true)) {
        let got = StickyAssignor.assign(&case.partitions, &case.members, &case.previous);
        check_valid(&case, &got, true, "sticky")?;
        prop_assert!(spread(&got) <= 1, "unbalanced: {:?}", counts(&got));
        prop_assert_eq!(got.moved_from(&case.previous), lower_bound_moves(&case));
        // Stable: rebalancing the result again changes nothing.
        let again = StickyAssignor.assign(&case.partitions, &case.members, &got);
        prop_assert_eq!(&again, &got);
    }

    /// KIP-429 over identical subscriptions: two rebalances at most, the
    /// second moves nothing the first kept, and the end state is as
    /// balanced and as sticky as the eager strategy's.
    #[test]
    fn cooperative_reaches_the_sticky_minimum_in_two_rebalances(case in arb_case(true)) {
        let (last, rounds) = cooperative_rounds(&case, 2)?;
        prop_assert!(rounds <= 2);
        prop_assert!(spread(&last) <= 1, "unbalanced: {:?}", counts(&last));
        prop_assert_eq!(last.moved_from(&case.previous), lower_bound_moves(&case));
        let eager = StickyAssignor.assign(&case.partitions, &case.members, &case.previous);
        prop_assert_eq!(counts(&last), counts(&eager));
    }

    /// A realistic membership change: the group settles, some members
    /// leave and some join, and the sticky strategies move exactly the
    /// lower bound.
    #[test]
    fn membership_change_moves_the_minimum(
        n in 0u32..40,
        before in 1usize..8,
        leave in 0usize..8,
        join in 0usize..4,
    ) {
        let partitions = topics(&[("t", n)]);
        let group = |ids: &[String]| -> BTreeMap<MemberId, Subscription> {
            ids.iter().map(|i| (MemberId::new(i.as_str()), Subscription::new(["t"]))).collect()
        };
        let old: Vec<String> = (0..before).map(|i| format!("m{i:02}")).collect();
        let settled = StickyAssignor.assign(&partitions, &group(&old), &Assignment::new());
        let mut new: Vec<String> = old.iter().skip(leave.min(before - 1)).cloned().collect();
        new.extend((0..join).map(|i| format!("n{i:02}")));
        let case = Case { partitions: partitions.clone(), members: group(&new), previous: settled };
        let bound = lower_bound_moves(&case);

        let eager = StickyAssignor.assign(&partitions, &case.members, &case.previous);
        prop_assert!(spread(&eager) <= 1);
        prop_assert_eq!(eager.moved_from(&case.previous), bound);

        let (coop, _) = cooperative_rounds(&case, 2)?;
        prop_assert!(spread(&coop) <= 1);
        prop_assert_eq!(coop.moved_from(&case.previous), bound);
    }

    /// Unequal subscriptions: no partition could move to a consumer of its
    /// topic with two fewer partitions, so members with equal
    /// subscriptions differ by at most one.
    #[test]
    fn sticky_general_case_is_locally_balanced(case in arb_case(false)) {
        let got = StickyAssignor.assign(&case.partitions, &case.members, &case.previous);
        check_valid(&case, &got, true, "sticky")?;
        for (from, parts) in got.iter() {
            for p in parts {
                for (to, sub) in &case.members {
                    if sub.subscribes_to(&p.topic) {
                        prop_assert!(
                            parts.len() <= got.partitions_of(to).len() + 1,
                            "{} could move from {} ({}) to {} ({})",
                            p, from, parts.len(), to, got.partitions_of(to).len()
                        );
                    }
                }
            }
        }
        let known = |s: &Subscription| -> BTreeSet<String> {
            s.topics.iter().filter(|t| case.partitions.contains_key(*t)).cloned().collect()
        };
        for (a, sa) in &case.members {
            for (b, sb) in &case.members {
                if known(sa) == known(sb) {
                    let (ca, cb) = (got.partitions_of(a).len(), got.partitions_of(b).len());
                    prop_assert!(ca <= cb + 1, "{} has {} and {} has {}", a, ca, b, cb);
                }
            }
        }
        let again = StickyAssignor.assign(&case.partitions, &case.members, &got);
        prop_assert_eq!(&again, &got);
    }

    /// Members beyond the partition count idle, under every strategy.
    #[test]
    fn members_beyond_the_partitions_idle(n in 0u32..6, extra in 1usize..4) {
        let partitions = topics(&[("t", n)]);
        let m = n as usize + extra;
        let group: BTreeMap<MemberId, Subscription> = (0..m)
            .map(|i| (MemberId::new(format!("m{i}")), Subscription::new(["t"])))
            .collect();
        for kind in AssignorKind::ALL {
            let got = kind.assignor().assign(&partitions, &group, &Assignment::new());
            prop_assert_eq!(got.len(), m);
            prop_assert_eq!(got.iter().filter(|(_, p)| p.is_empty()).count(), extra);
            prop_assert_eq!(got.owners().len(), n as usize);
        }
    }
}
