//! Property tests of the ring: minimal movement on add and remove, rebalance
//! plans that cover exactly the keys that move, preference lists of
//! distinct nodes (distinct zones when asked and possible), determinism.

use std::collections::BTreeSet;

use dsys_hashring::{KeyHash, NodeConfig, Ring, RingConfig, TokenAllocation};
use proptest::prelude::*;

/// A node's settings, built the way a user outside the crate builds them.
fn node_config(weight: u32, zone: impl Into<String>) -> NodeConfig {
    let mut config = NodeConfig::default();
    config.weight = weight;
    config.zone = zone.into();
    config
}

fn config(balanced: bool, vnodes: u32) -> RingConfig {
    let mut config = RingConfig::default();
    config.vnodes_per_weight = vnodes;
    config.allocation = if balanced {
        TokenAllocation::Balanced
    } else {
        TokenAllocation::Hashed
    };
    config
}

/// A ring of nodes `0..count` with weights cycling through `weights` and
/// zones `z0..z{zones}`.
fn ring(cfg: RingConfig, count: u32, weights: &[u32], zones: u32) -> Ring<u32> {
    let mut ring = Ring::with_config(cfg).unwrap();
    for node in 0..count {
        let weight = weights[node as usize % weights.len()];
        let zone = format!("z{}", node % zones.max(1));
        ring.add(node, node_config(weight, zone)).unwrap();
    }
    ring
}

fn keys(seed: u64, count: usize) -> Vec<KeyHash> {
    (0..count as u64).map(|i| KeyHash::of(&(seed, i))).collect()
}

/// Checks, key by key, that a change from `before` to `after` moved only
/// keys that had to move (`may_move(old_owner, new_owner)`), and that the
/// rebalance plan lists exactly the moved keys with the right endpoints.
fn check_change(
    before: &Ring<u32>,
    after: &Ring<u32>,
    keys: &[KeyHash],
    may_move: impl Fn(u32, u32) -> bool,
) -> Result<(), TestCaseError> {
    let plan = before.rebalance_plan(after, 1);
    for &key in keys {
        let old = *before.locate_hash(key).unwrap();
        let new = *after.locate_hash(key).unwrap();
        let covering: Vec<_> = plan
            .transfers
            .iter()
            .filter(|t| t.range.contains(key))
            .collect();
        if old == new {
            prop_assert!(
                covering.is_empty(),
                "key {key:?} stays on {old} but the plan moves it"
            );
        } else {
            prop_assert!(may_move(old, new), "key {key:?} moved {old} -> {new}");
            prop_assert_eq!(
                covering.len(),
                1,
                "key {:?} moved but plan covers it {} times",
                key,
                covering.len()
            );
            prop_assert_eq!((covering[0].from, covering[0].to), (old, new));
            let released = plan
                .releases
                .iter()
                .any(|(r, n)| *n == old && r.contains(key));
            prop_assert!(released, "plan does not release {key:?} from {old}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Adding a node moves only keys that the new node now owns, and the
    /// plan says exactly which.
    #[test]
    fn adding_moves_only_keys_to_the_new_node(
        count in 1u32..24,
        weights in prop::collection::vec(1u32..4, 1..4),
        balanced in any::<bool>(),
        vnodes in 1u32..40,
        seed in any::<u64>(),
    ) {
        let before = ring(config(balanced, vnodes), count, &weights, 1);
        let mut after = before.clone();
        after.add(count, node_config(weights[0], "")).unwrap();
        check_change(&before, &after, &keys(seed, 2_000), |_, new| new == count)?;
    }

    /// Removing a node moves only that node's keys.
    #[test]
    fn removing_moves_only_the_removed_nodes_keys(
        count in 2u32..24,
        weights in prop::collection::vec(1u32..4, 1..4),
        balanced in any::<bool>(),
        vnodes in 1u32..40,
        victim in any::<prop::sample::Index>(),
        seed in any::<u64>(),
    ) {
        let before = ring(config(balanced, vnodes), count, &weights, 1);
        let victim = victim.index(count as usize) as u32;
        let mut after = before.clone();
        after.remove(&victim).unwrap();
        check_change(&before, &after, &keys(seed, 2_000), |old, _| old == victim)?;
        prop_assert!(after.ranges_of(&victim).is_empty());
    }

    /// With replicas, a key's holders change only by the newcomer: every
    /// new holder has a transfer from a node that held the key before.
    #[test]
    fn replicated_plans_stream_from_old_holders(
        count in 1u32..16,
        replicas in 1usize..5,
        vnodes in 1u32..30,
        seed in any::<u64>(),
    ) {
        let before = ring(config(false, vnodes), count, &[1], 1);
        let mut after = before.clone();
        after.add(count, NodeConfig::default()).unwrap();
        let plan = before.rebalance_plan(&after, replicas);
        for key in keys(seed, 500) {
            let old = before.preference_list_hash(key, replicas).to_vec();
            let new = after.preference_list_hash(key, replicas).to_vec();
            for gained in new.iter().filter(|n| !old.contains(n)) {
                prop_assert_eq!(*gained, count, "only the newcomer gains keys");
                let t = plan.transfer_for(key, gained);
                prop_assert!(t.is_some(), "no transfer of {:?} to {}", key, gained);
                prop_assert!(old.contains(&t.unwrap().from));
            }
            for lost in old.iter().filter(|n| !new.contains(n)) {
                prop_assert!(plan.releases.iter().any(|(r, n)| n == lost && r.contains(key)));
            }
        }
    }

    /// Preference lists hold min(n, nodes) distinct nodes, owner first; the
    /// zone-aware list puts min(n, zones) distinct zones first.
    #[test]
    fn preference_lists_are_distinct_and_zone_spread(
        count in 1u32..30,
        zones in 1u32..6,
        n in 0usize..10,
        balanced in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let ring = ring(config(balanced, 20), count, &[1, 2], zones);
        let zone_total = ring.zone_count();
        for key in keys(seed, 300) {
            for list in [ring.preference_list_hash(key, n), ring.preference_list_zoned_hash(key, n)] {
                prop_assert_eq!(list.len(), n.min(count as usize));
                let distinct: BTreeSet<_> = list.iter().collect();
                prop_assert_eq!(distinct.len(), list.len());
                if n > 0 {
                    prop_assert_eq!(list.primary(), ring.locate_hash(key));
                }
            }
            let zoned = ring.preference_list_zoned_hash(key, n);
            let spread = n.min(zone_total).min(zoned.len());
            let first_zones: BTreeSet<_> = zoned
                .iter()
                .take(spread)
                .map(|node| ring.zone(node).unwrap())
                .collect();
            prop_assert_eq!(first_zones.len(), spread, "list {:?}", zoned);
        }
    }

    /// The same adds give the same ring; for hashed tokens, in any order.
    #[test]
    fn rings_are_deterministic(count in 1u32..30, balanced in any::<bool>(), seed in any::<u64>()) {
        let a = ring(config(balanced, 25), count, &[1, 3], 2);
        let b = ring(config(balanced, 25), count, &[1, 3], 2);
        let sample = keys(seed, 500);
        for &key in &sample {
            prop_assert_eq!(a.locate_hash(key), b.locate_hash(key));
            prop_assert_eq!(a.preference_list_zoned_hash(key, 3).to_vec(), b.preference_list_zoned_hash(key, 3).to_vec());
        }
        if !balanced {
            let mut reversed = Ring::with_config(config(false, 25)).unwrap();
            for node in (0..count).rev() {
                let weight = [1, 3][node as usize % 2];
                reversed.add(node, node_config(weight, format!("z{}", node % 2))).unwrap();
            }
            for &key in &sample {
                prop_assert_eq!(a.locate_hash(key), reversed.locate_hash(key));
            }
        }
    }

    /// Owned ranges partition the ring: shares sum to 1, and every key is
    /// in a range of its owner.
    #[test]
    fn ranges_partition_the_ring(count in 1u32..20, balanced in any::<bool>(), seed in any::<u64>()) {
        let ring = ring(config(balanced, 10), count, &[1, 2, 5], 1);
        let total: f64 = ring.ownership().iter().map(|(_, share)| share).sum();
        prop_assert!((total - 1.0).abs() < 1e-9, "shares sum to {total}");
        for key in keys(seed, 300) {
            let owner = ring.locate_hash(key).unwrap();
            prop_assert!(ring.ranges_of(owner).iter().any(|r| r.contains(key)));
        }
    }
}

/// Growing a weight with hashed tokens only adds tokens: the keys that
/// move all go to the reweighted node.
#[test]
fn raising_a_weight_moves_keys_only_to_that_node() {
    let before = ring(config(false, 50), 10, &[1], 1);
    let mut after = before.clone();
    after.set_weight(&3, 3).unwrap();
    for key in keys(7, 20_000) {
        let (old, new) = (
            before.locate_hash(key).unwrap(),
            after.locate_hash(key).unwrap(),
        );
        assert!(old == new || *new == 3, "key {key:?} moved {old} -> {new}");
    }
    let share = after
        .ownership()
        .into_iter()
        .find(|(n, _)| **n == 3)
        .unwrap()
        .1;
    assert!((0.15..0.35).contains(&share), "weight 3 of 12 owns {share}");
}

/// A plan between rings with several changes at once still covers exactly
/// the moved keys, and its size matches the share of keys that moved.
#[test]
fn plans_cover_batched_changes() {
    let before = ring(config(false, 40), 12, &[1, 2], 1);
    let mut after = before.clone();
    after.remove(&2).unwrap();
    after.remove(&7).unwrap();
    after.add(100, NodeConfig::default()).unwrap();
    after.set_weight(&4, 4).unwrap();
    let sample = keys(11, 20_000);
    check_change(&before, &after, &sample, |old, new| {
        [2, 7].contains(&old) || [100, 4].contains(&new)
    })
    .unwrap();
    let moved = sample
        .iter()
        .filter(|&&k| before.locate_hash(k) != after.locate_hash(k))
        .count();
    let sampled = moved as f64 / sample.len() as f64;
    let planned = before.rebalance_plan(&after, 1).moved_fraction();
    assert!(
        (planned - sampled).abs() < 0.02,
        "plan {planned} vs sampled {sampled}"
    );
}
