//! Vector clocks form a partial order and merge is a join (a semilattice):
//! the laws CRDTs and causal delivery rely on.

mod common;
use dsys_clocks::{CausalOrder, VectorClock};
use proptest::prelude::*;
use std::cmp::Ordering;

/// Clocks over a small node set so that relations other than `Concurrent`
/// come up often.
fn clock() -> impl Strategy<Value = VectorClock<u8>> {
    prop::collection::vec((0u8..6, 0u64..4), 0..7).prop_map(VectorClock::from_entries)
}

/// The order the seeds define: compare entry by entry over all nodes.
fn reference_compare(a: &VectorClock<u8>, b: &VectorClock<u8>) -> CausalOrder {
    let (mut less, mut greater) = (false, false);
    for node in 0u8..6 {
        match a.get(&node).cmp(&b.get(&node)) {
            Ordering::Less => less = true,
            Ordering::Greater => greater = true,
            Ordering::Equal => {}
        }
    }
    match (less, greater) {
        (false, false) => CausalOrder::Equal,
        (true, false) => CausalOrder::Before,
        (false, true) => CausalOrder::After,
        (true, true) => CausalOrder::Concurrent,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(1024)))]

    #[test]
    fn compare_matches_the_entrywise_definition(a in clock(), b in clock()) {
        prop_assert_eq!(a.compare(&b), reference_compare(&a, &b));
        prop_assert_eq!(b.compare(&a), a.compare(&b).reverse());
        // PartialOrd agrees with compare; Eq agrees with Equal.
        prop_assert_eq!(a.partial_cmp(&b), a.compare(&b).to_ordering());
        prop_assert_eq!(a == b, a.compare(&b) == CausalOrder::Equal);
    }

    #[test]
    fn reflexive(a in clock()) {
        prop_assert_eq!(a.compare(&a), CausalOrder::Equal);
        prop_assert!(a <= a);
    }

    #[test]
    fn antisymmetric(a in clock(), b in clock()) {
        if a <= b && b <= a {
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn transitive(a in clock(), b in clock(), c in clock()) {
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
        if a < b && b < c {
            prop_assert!(a < c);
        }
    }

    #[test]
    fn merge_is_commutative(a in clock(), b in clock()) {
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        prop_assert_eq!(ab, ba);
    }

    #[test]
    fn merge_is_associative(a in clock(), b in clock(), c in clock()) {
        let mut left = a.clone();
        left.merge(&b);
        left.merge(&c);
        let mut bc = b.clone();
        bc.merge(&c);
        let mut right = a.clone();
        right.merge(&bc);
        prop_assert_eq!(left, right);
    }

    #[test]
    fn merge_is_idempotent(a in clock()) {
        let mut aa = a.clone();
        aa.merge(&a);
        prop_assert_eq!(aa, a);
    }

    /// The merge is the least upper bound: above both inputs, and below
    /// any other clock above both.
    #[test]
    fn merge_is_the_least_upper_bound(a in clock(), b in clock(), c in clock()) {
        let mut join = a.clone();
        join.merge(&b);
        prop_assert!(join.dominates(&a) && join.dominates(&b));
        if c.dominates(&a) && c.dominates(&b) {
            prop_assert!(c.dominates(&join));
        }
    }

    #[test]
    fn increment_moves_strictly_forward(a in clock(), node in 0u8..6) {
        let mut next = a.clone();
        next.increment(&node).unwrap();
        prop_assert_eq!(a.compare(&next), CausalOrder::Before);
    }

    #[test]
    fn serde_round_trips(a in clock()) {
        let json = serde_json::to_string(&a).unwrap();
        prop_assert_eq!(serde_json::from_str::<VectorClock<u8>>(&json).unwrap(), a);
    }
}

/// The seeds' quiz: V1 = [2,3,1] and V2 = [3,2,1] are concurrent.
#[test]
#[allow(
    clippy::neg_cmp_op_on_partial_ord,
    reason = "the point: for concurrent clocks, neither < nor > holds"
)]
fn seed_quiz_2_3_1_vs_3_2_1_is_concurrent() {
    let v1 = VectorClock::from_entries([("A", 2), ("B", 3), ("C", 1)]);
    let v2 = VectorClock::from_entries([("A", 3), ("B", 2), ("C", 1)]);
    assert_eq!(v1.compare(&v2), CausalOrder::Concurrent);
    assert_eq!(v2.compare(&v1), CausalOrder::Concurrent);
    assert_eq!(v1.partial_cmp(&v2), None);
    assert!(!(v1 < v2) && !(v1 > v2) && v1 != v2);
}

/// The seeds' three-process run (A sends to B, B sends to C) produces the
/// vectors the article prints.
#[test]
fn seed_three_process_run() {
    let (a, b, c) = ("A", "B", "C");
    let mut va = VectorClock::new();
    let mut vb = VectorClock::new();
    let mut vc = VectorClock::new();
    va.increment(&a).unwrap(); // [1,0,0]
    va.increment(&a).unwrap(); // [2,0,0] send to B
    let m1 = va.clone();
    vb.increment(&b).unwrap(); // [0,1,0]
    vb.receive(&b, &m1).unwrap(); // [2,2,0]
    vb.increment(&b).unwrap(); // [2,3,0] send to C
    let m2 = vb.clone();
    vc.increment(&c).unwrap(); // [0,0,1]
    vc.receive(&c, &m2).unwrap(); // [2,3,2]
    assert_eq!(va, VectorClock::from_entries([(a, 2)]));
    assert_eq!(vb, VectorClock::from_entries([(a, 2), (b, 3)]));
    assert_eq!(vc, VectorClock::from_entries([(a, 2), (b, 3), (c, 2)]));
    assert!(va.happened_before(&vc));
}
