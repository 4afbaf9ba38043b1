//! Behaviour of the ring on hand-built examples: the seeds' four-node ring,
//! range arithmetic, weights, zones, published tokens, and bad input.

use dsys_hashring::{
    AddNodeError, KeyHash, MAX_RING_VNODES, NodeConfig, NodeConfigError, Placement,
    RemoveNodeError, Ring, RingConfig, RingConfigError, TokenAllocation, TokenRange,
};

/// A node's settings, built the way a user outside the crate builds them.
fn node_config(weight: u32, zone: impl Into<String>) -> NodeConfig {
    let mut config = NodeConfig::default();
    config.weight = weight;
    config.zone = zone.into();
    config
}

/// Position of `degrees` on a ring drawn as a 360° circle.
fn deg(degrees: u64) -> u64 {
    ((u128::from(degrees) << 64) / 360) as u64
}

/// The seeds' picture (Partitioning §5.4): A owns 0–90, B 90–180, C
/// 180–270, D 270–360. A key belongs to the first token clockwise, so each
/// node's token sits at the end of its range.
fn seeds_ring() -> Ring<char> {
    let mut ring = Ring::new();
    for (node, end) in [('A', 90), ('B', 180), ('C', 270), ('D', 0)] {
        ring.add_with_tokens(node, NodeConfig::default(), [deg(end)])
            .unwrap();
    }
    ring
}

#[test]
fn seeds_example_adding_e_at_135_moves_only_90_to_135_from_b() {
    let before = seeds_ring();
    let table = [
        (10, 'A'),
        (90, 'A'),
        (91, 'B'),
        (134, 'B'),
        (179, 'B'),
        (200, 'C'),
        (300, 'D'),
        (359, 'D'),
    ];
    for (at, owner) in table {
        assert_eq!(before.locate_hash(KeyHash(deg(at))), Some(&owner), "{at}°");
    }
    let mut after = before.clone();
    after
        .add_with_tokens('E', NodeConfig::default(), [deg(135)])
        .unwrap();
    let plan = before.rebalance_plan(&after, 1);
    assert_eq!(plan.transfers.len(), 1);
    let t = &plan.transfers[0];
    assert_eq!((t.from, t.to), ('B', 'E'));
    assert_eq!(
        t.range,
        TokenRange {
            start: deg(90),
            end: deg(135)
        }
    );
    assert_eq!(
        plan.releases,
        vec![(
            TokenRange {
                start: deg(90),
                end: deg(135)
            },
            'B'
        )]
    );
    assert!((plan.moved_fraction() - 45.0 / 360.0).abs() < 1e-9);
}

#[test]
fn token_ranges_wrap_and_measure() {
    let cases = [
        // (start, end, point, contained)
        (10, 20, 15, true),
        (10, 20, 10, false), // start is exclusive
        (10, 20, 20, true),  // end is inclusive
        (u64::MAX - 5, 5, 0, true),
        (u64::MAX - 5, 5, u64::MAX, true),
        (u64::MAX - 5, 5, 6, false),
        (7, 7, 123, true), // one token: the whole ring
    ];
    for (start, end, point, want) in cases {
        let r = TokenRange { start, end };
        assert_eq!(r.contains(KeyHash(point)), want, "{r:?} ∋ {point}");
    }
    assert_eq!(TokenRange { start: 10, end: 20 }.width(), 10);
    assert_eq!(
        TokenRange {
            start: u64::MAX - 5,
            end: 5
        }
        .width(),
        11
    );
    assert_eq!(TokenRange { start: 7, end: 7 }.width(), 1 << 64);
    assert_eq!(TokenRange { start: 7, end: 7 }.fraction(), 1.0);
}

#[test]
fn seeds_ring_ownership_and_ranges() {
    let ring = seeds_ring();
    for (node, share) in ring.ownership() {
        assert!((share - 0.25).abs() < 1e-12, "{node} owns {share}");
    }
    // D's range wraps past the top: (270°, 0°].
    assert_eq!(
        ring.ranges_of(&'D'),
        vec![TokenRange {
            start: deg(270),
            end: deg(0)
        }]
    );
    assert_eq!(ring.tokens_of(&'B'), vec![deg(180)]);
    assert!(ring.ranges_of(&'Z').is_empty());
}

#[test]
fn weights_scale_vnodes_and_share() {
    let mut ring = Ring::new();
    ring.add("small", NodeConfig::default()).unwrap();
    ring.add("big", node_config(3, "")).unwrap();
    assert_eq!(ring.vnode_count(), 4 * 150);
    assert_eq!(ring.weight(&"big"), Some(3));
    let big = ring.ownership()[1].1;
    assert!((0.65..0.85).contains(&big), "weight 3 of 4 owns {big}");
}

#[test]
fn balanced_rings_can_be_rebuilt_from_published_tokens() {
    let mut config = RingConfig::default();
    config.vnodes_per_weight = 32;
    config.allocation = TokenAllocation::Balanced;
    let mut cluster = Ring::with_config(config).unwrap();
    for node in 0..20u32 {
        cluster
            .add(node, node_config(1, format!("z{}", node % 3)))
            .unwrap();
    }
    // A client learns the tokens in some other order and rebuilds the ring.
    let mut client = Ring::new();
    for node in (0..20u32).rev() {
        let config = node_config(1, cluster.zone(&node).unwrap());
        client
            .add_with_tokens(node, config, cluster.tokens_of(&node))
            .unwrap();
    }
    for i in 0..5_000u32 {
        let key = KeyHash::of(&i);
        assert_eq!(cluster.locate_hash(key), client.locate_hash(key));
        assert_eq!(
            cluster.preference_list_zoned_hash(key, 3).to_vec(),
            client.preference_list_zoned_hash(key, 3).to_vec()
        );
    }
}

#[test]
fn zone_aware_lists_skip_a_zone_already_used() {
    // Tokens 10, 20, 30, 40 on the ring; a1 and a2 share zone "a".
    let mut ring = Ring::new();
    for (node, zone, token) in [
        ("a1", "a", 10),
        ("a2", "a", 20),
        ("b1", "b", 30),
        ("c1", "c", 40),
    ] {
        ring.add_with_tokens(node, node_config(1, zone), [token])
            .unwrap();
    }
    let key = KeyHash(5);
    assert_eq!(
        ring.preference_list_hash(key, 3).to_vec(),
        ["a1", "a2", "b1"]
    );
    assert_eq!(
        ring.preference_list_zoned_hash(key, 3).to_vec(),
        ["a1", "b1", "c1"]
    );
    // With four replicas the set-aside a2 fills the last place.
    assert_eq!(
        ring.preference_list_zoned_hash(key, 4).to_vec(),
        ["a1", "b1", "c1", "a2"]
    );
    // Fewer zones than replicas: distinct zones first, then the rest in ring order.
    ring.remove(&"c1").unwrap();
    assert_eq!(
        ring.preference_list_zoned_hash(key, 3).to_vec(),
        ["a1", "b1", "a2"]
    );
}

// ---- bad input ----------------------------------------------------------

#[test]
fn an_empty_ring_answers_none_and_empty_lists() {
    let ring: Ring<u32> = Ring::new();
    assert!(ring.is_empty());
    assert_eq!(ring.locate("user:1001"), None);
    assert_eq!(ring.locate_bytes(b""), None);
    assert!(ring.preference_list("k", 3).is_empty());
    assert!(ring.preference_list_zoned("k", 3).is_empty());
    assert_eq!(ring.preference_list("k", 3).primary(), None);
    assert!(ring.ownership().is_empty());
    assert!(ring.rebalance_plan(&Ring::new(), 3).is_empty());
    let mut out = vec![&0u32];
    ring.replicas_hash(KeyHash(1), 3, &mut out);
    assert!(out.is_empty());
    // A ring emptied by removals behaves the same.
    let mut ring = Ring::new();
    ring.add(1u32, NodeConfig::default()).unwrap();
    ring.remove(&1).unwrap();
    assert_eq!(ring.locate(&"k"), None);
    assert_eq!(ring.vnode_count(), 0);
}

#[test]
fn zero_weight_duplicates_and_unknown_nodes_are_typed_errors() {
    let mut ring = Ring::new();
    ring.add("a", NodeConfig::default()).unwrap();
    let before: Vec<_> = ring.tokens().map(|(t, n)| (t, *n)).collect();
    assert_eq!(
        ring.add("b", node_config(0, "")),
        Err(AddNodeError::ZeroWeight)
    );
    assert_eq!(
        ring.add("a", node_config(2, "")),
        Err(AddNodeError::Duplicate)
    );
    assert_eq!(
        ring.add_with_tokens("a", NodeConfig::default(), [1]),
        Err(AddNodeError::Duplicate)
    );
    assert!(matches!(
        ring.add_with_tokens("c", NodeConfig::default(), []),
        Err(AddNodeError::CapacityExceeded { .. })
    ));
    assert_eq!(
        ring.extend_nodes(["x", "y", "x"]),
        Err(AddNodeError::Duplicate)
    );
    assert_eq!(ring.set_weight(&"a", 0), Err(AddNodeError::ZeroWeight));
    assert_eq!(ring.remove(&"zz"), Err(RemoveNodeError::Unknown));
    let after: Vec<_> = ring.tokens().map(|(t, n)| (t, *n)).collect();
    assert_eq!(before, after, "failed calls must not change the ring");
    assert_eq!(ring.len(), 1);
}

#[test]
fn asking_for_more_replicas_than_nodes_returns_every_node() {
    let mut ring = Ring::new();
    ring.extend_nodes(["a", "b", "c"]).unwrap();
    let list = ring.preference_list("user:1001", 10);
    assert_eq!(list.len(), 3);
    assert_eq!(ring.preference_list_zoned("user:1001", usize::MAX).len(), 3);
    assert_eq!(ring.preference_list("user:1001", 0).len(), 0);
}

#[test]
fn invalid_configs_are_rejected() {
    for vnodes in [0, 65_537, u32::MAX] {
        let mut config = RingConfig::default();
        config.vnodes_per_weight = vnodes;
        assert_eq!(
            Ring::<u32>::with_config(config).unwrap_err(),
            RingConfigError::VnodesPerWeight { given: vnodes }
        );
    }
}

#[test]
fn huge_weights_hit_the_capacity_limit_instead_of_allocating() {
    let mut ring = Ring::new();
    let err = ring.add("heavy", node_config(u32::MAX, "")).unwrap_err();
    assert!(matches!(err, AddNodeError::CapacityExceeded { .. }));
    assert!(ring.is_empty());
}

#[test]
fn extreme_positions_resolve() {
    let mut ring = Ring::new();
    ring.add_with_tokens("lo", NodeConfig::default(), [0])
        .unwrap();
    ring.add_with_tokens("hi", NodeConfig::default(), [u64::MAX])
        .unwrap();
    assert_eq!(ring.locate_hash(KeyHash(0)), Some(&"lo"));
    assert_eq!(ring.locate_hash(KeyHash(1)), Some(&"hi"));
    assert_eq!(ring.locate_hash(KeyHash(u64::MAX)), Some(&"hi"));
    let mut ring = Ring::new();
    ring.add_with_tokens("only", NodeConfig::default(), [u64::MAX])
        .unwrap();
    assert_eq!(ring.locate_hash(KeyHash(0)), Some(&"only"));
    assert_eq!(
        ring.ranges_of(&"only"),
        vec![TokenRange {
            start: u64::MAX,
            end: u64::MAX
        }]
    );
}

/// `NodeConfig::validate` bounds every field, and `add` / `add_with_tokens`
/// call it: a weight that can never fit is refused even when the tokens are
/// given (it would skew bounded-load capacities and balanced allocation).
#[test]
fn node_config_validate_bounds_the_weight() {
    assert_eq!(NodeConfig::default().validate(), Ok(()));
    assert_eq!(
        node_config(0, "z").validate(),
        Err(NodeConfigError::ZeroWeight)
    );
    let max = u32::try_from(MAX_RING_VNODES).unwrap();
    assert_eq!(node_config(max, "").validate(), Ok(()));
    assert_eq!(
        node_config(max + 1, "").validate(),
        Err(NodeConfigError::WeightTooLarge { given: max + 1 })
    );
    let mut ring = Ring::new();
    assert!(matches!(
        ring.add_with_tokens("x", node_config(max + 1, ""), [7]),
        Err(AddNodeError::CapacityExceeded { .. })
    ));
    assert_eq!(
        ring.add_with_tokens("x", node_config(0, ""), [7]),
        Err(AddNodeError::ZeroWeight)
    );
    assert!(ring.is_empty());
}
