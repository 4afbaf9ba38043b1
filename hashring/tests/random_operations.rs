//! Bad input, all algorithms through the `Placement` trait: random
//! sequences of adds (any weight, duplicates), removes (members and
//! strangers) and lookups (any position, any replica count) never panic, and
//! the placement always agrees with a model of its membership.

use std::collections::BTreeSet;

use dsys_hashring::{
    AddNodeError, BoundedLoads, JumpHash, KeyHash, Maglev, ModuloHash, Placement, RangePartition,
    RemoveNodeError, Rendezvous, Ring, RingConfig, TokenAllocation,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Add(u8, u32),
    Remove(u8),
    Lookup(u64, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let weight = prop_oneof![
        4 => 0u32..4,
        1 => Just(u32::MAX),
        1 => (1u32 << 20)..=u32::MAX,
    ];
    prop_oneof![
        3 => (0u8..12, weight).prop_map(|(n, w)| Op::Add(n, w)),
        2 => (0u8..14).prop_map(Op::Remove),
        4 => (any::<u64>(), prop_oneof![0usize..16, Just(usize::MAX)]).prop_map(|(k, n)| Op::Lookup(k, n)),
    ]
}

fn placements() -> Vec<Box<dyn Placement<u8>>> {
    let small = |allocation| {
        let mut config = RingConfig::default();
        config.vnodes_per_weight = 8;
        config.allocation = allocation;
        Ring::with_config(config).unwrap()
    };
    vec![
        Box::new(small(TokenAllocation::Hashed)),
        Box::new(small(TokenAllocation::Balanced)),
        Box::new(JumpHash::new()),
        Box::new(Rendezvous::new()),
        Box::new(Maglev::new(251).unwrap()),
        Box::new(BoundedLoads::new(0.5).unwrap()),
        Box::new(ModuloHash::new()),
        Box::new(RangePartition::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_every_placement_consistent(ops in prop::collection::vec(op(), 1..60)) {
        for mut placement in placements() {
            let name = placement.algorithm();
            let mut members: BTreeSet<u8> = BTreeSet::new();
            for op in &ops {
                match *op {
                    Op::Add(node, weight) => match placement.add_node(node, weight) {
                        Ok(()) => {
                            prop_assert!(members.insert(node), "{name}: added {node} twice");
                        }
                        Err(AddNodeError::Duplicate) => prop_assert!(members.contains(&node)),
                        Err(AddNodeError::ZeroWeight) => prop_assert_eq!(weight, 0),
                        Err(AddNodeError::WeightsUnsupported { weight: w }) => prop_assert_eq!(w, weight),
                        Err(AddNodeError::CapacityExceeded { .. }) => prop_assert!(weight > 1),
                        Err(e) => prop_assert!(false, "{name}: unexpected {e:?}"),
                    },
                    Op::Remove(node) => match placement.remove_node(&node) {
                        Ok(()) => prop_assert!(members.remove(&node), "{name}: removed stranger {node}"),
                        Err(RemoveNodeError::Unknown) => prop_assert!(!members.contains(&node)),
                        Err(RemoveNodeError::OnlyLastRemovable) => prop_assert!(members.contains(&node)),
                        Err(e) => prop_assert!(false, "{name}: unexpected {e:?}"),
                    },
                    Op::Lookup(key, n) => {
                        let key = KeyHash(key);
                        let owner = placement.locate_hash(key);
                        prop_assert_eq!(owner.is_none(), members.is_empty(), "{}", name);
                        if let Some(owner) = owner {
                            prop_assert!(members.contains(owner), "{name}: owner {owner} is no member");
                        }
                        let mut out = Vec::new();
                        placement.replicas_hash(key, n, &mut out);
                        prop_assert_eq!(out.len(), n.min(members.len()), "{}: replicas", name);
                        let distinct: BTreeSet<_> = out.iter().copied().collect();
                        prop_assert_eq!(distinct.len(), out.len(), "{}: duplicate replicas {:?}", name, out);
                        prop_assert!(out.iter().all(|n| members.contains(n)));
                        if n > 0 {
                            prop_assert_eq!(out.first().copied(), owner, "{}: owner first", name);
                        }
                    }
                }
                prop_assert_eq!(placement.node_count(), members.len(), "{}", name);
            }
        }
    }
}
