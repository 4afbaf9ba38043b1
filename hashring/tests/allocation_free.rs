//! Lookups and preference lists of up to 8 replicas do not touch the heap
//! (the "allocation-free in the common case"), measured with a
//! counting global allocator. One test in its own binary, so no other test
//! thread allocates meanwhile.

use dsys_hashring::{KeyHash, NodeConfig, Placement, Ring};
use peak_alloc::PeakAlloc;

/// A node's settings, built the way a user outside the crate builds them.
fn node_config(weight: u32, zone: impl Into<String>) -> NodeConfig {
    let mut config = NodeConfig::default();
    config.weight = weight;
    config.zone = zone.into();
    config
}

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

#[test]
fn lookups_and_preference_lists_do_not_allocate() {
    let mut ring = Ring::new();
    for node in 0..100u32 {
        ring.add(node, node_config(1, format!("zone-{}", node % 4)))
            .unwrap();
    }
    let keys: Vec<String> = (0..5_000).map(|i| format!("user:{i}")).collect();
    let mut out: Vec<&u32> = Vec::with_capacity(8);
    let mut checksum = 0u64;

    HEAP.reset_peak_usage();
    let before = HEAP.current_usage();
    for key in &keys {
        checksum += u64::from(*ring.locate(key.as_str()).unwrap());
        checksum += u64::from(*ring.locate_bytes(key.as_bytes()).unwrap());
        for n in 1..=8 {
            let plain = ring.preference_list(key.as_str(), n);
            let zoned = ring.preference_list_zoned_bytes(key.as_bytes(), n);
            checksum += plain
                .iter()
                .chain(zoned.iter())
                .map(|&x| u64::from(x))
                .sum::<u64>();
        }
        ring.replicas_hash(KeyHash::of_bytes(key.as_bytes()), 3, &mut out);
        checksum += out.len() as u64;
    }
    let peak = HEAP.peak_usage();
    assert!(checksum > 0);
    assert_eq!(
        peak, before,
        "lookups allocated: heap peaked at {peak} bytes, {before} before"
    );
}
