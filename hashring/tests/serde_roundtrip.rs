//! With the `serde` feature, plans, ranges and configs survive a round trip
//! (what a cluster would publish to clients or log for an operator).

use dsys_hashring::{
    KeyHash, NodeConfig, RebalancePlan, Ring, RingConfig, TokenAllocation, TokenRange,
};

/// A node's settings, built the way a user outside the crate builds them.
fn node_config(weight: u32, zone: impl Into<String>) -> NodeConfig {
    let mut config = NodeConfig::default();
    config.weight = weight;
    config.zone = zone.into();
    config
}

#[test]
fn plans_configs_and_ranges_round_trip_through_json() {
    let mut before = Ring::new();
    before.extend_nodes(["a", "b", "c"]).unwrap();
    let mut after = before.clone();
    after.add("d", node_config(2, "z2")).unwrap();
    let plan = before.rebalance_plan(&after, 2);
    assert!(!plan.is_empty());
    let json = serde_json::to_string(&plan).unwrap();
    let back: RebalancePlan<String> = serde_json::from_str(&json).unwrap();
    let back_plan = RebalancePlan {
        transfers: back
            .transfers
            .iter()
            .map(|t| dsys_hashring::Transfer {
                range: t.range,
                from: t.from.as_str(),
                to: t.to.as_str(),
            })
            .collect(),
        releases: back
            .releases
            .iter()
            .map(|(r, n)| (*r, n.as_str()))
            .collect(),
    };
    assert_eq!(back_plan, plan);

    let mut config = RingConfig::default();
    config.vnodes_per_weight = 7;
    config.allocation = TokenAllocation::Balanced;
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<RingConfig>(&json).unwrap(), config);

    let node = node_config(3, "eu-west-1a");
    let json = serde_json::to_string(&node).unwrap();
    assert_eq!(serde_json::from_str::<NodeConfig>(&json).unwrap(), node);

    let range = TokenRange {
        start: u64::MAX - 1,
        end: 3,
    };
    assert_eq!(
        serde_json::from_str::<TokenRange>(&serde_json::to_string(&range).unwrap()).unwrap(),
        range
    );
    let key = KeyHash::of("user:1001");
    assert_eq!(
        serde_json::from_str::<KeyHash>(&serde_json::to_string(&key).unwrap()).unwrap(),
        key
    );
}
