//! dsys-hashring's [`Ring`] against the `hashring` crate (0.3) on the same
//! workloads, in the same run.
//!
//! Ring: 100 physical nodes × 150 virtual nodes (15,000 tokens) for both.
//! dsys gets its default [`RingConfig`] (150 vnodes per unit of weight) and
//! node ids `0..100u32`. The peer has no virtual nodes of its own; its docs
//! emulate them by adding one entry per vnode, so it holds 15,000
//! `VNode { node, vnode }` entries (`derive(Hash)`), each placed by SipHash-2-4
//! (`siphasher::sip::SipHasher`, the peer's default).
//!
//! Keys: [`KEY_COUNT`] strings `"user:{i}"`, made once before any group
//! runs. Every contender cycles through the same keys in the same order and
//! hashes each key inside the timed call (dsys: the XXH3 fold of the key's `Hash`
//! writes; the peer: SipHash-2-4), so the key hash is part of the measured cost.
//!
//! Groups (criterion time per iteration = one call), contenders named
//! `group/contender` as `.ci/bench-ratios` expects (peers start with
//! `hashring`):
//! - `lookup/100x150`: the owner of one key. `dsys` is `Ring::locate` on a
//!   hashed-token ring, `dsys-balanced` the same call on a ring built with
//!   `TokenAllocation::Balanced` (same code path, different tokens),
//!   `dsys-bytes` is `Ring::locate_bytes` on the key's UTF-8 bytes (the
//!   byte-key API: one XXH3 call over the bytes, no `0xff` terminator),
//!   `hashring` is `HashRing::get`.
//! - `replicas3/100x150`: the 3-replica preference list, every entry read.
//!   `dsys` is `Ring::preference_list(key, 3)` (3 distinct physical nodes,
//!   no allocation); `dsys-bytes` the same list for the byte key
//!   (`preference_list_bytes(.., 3)`); `dsys-zoned` is
//!   `preference_list_zoned(key, 3)` on a ring whose nodes are spread over
//!   3 zones (distinct zones first);
//!   `hashring` is `HashRing::get_with_replicas(key, 2)`, which returns
//!   `2 + 1` consecutive *vnode* entries in a fresh `Vec` (it clones and
//!   rotates the whole 15,000-entry ring to get them) and may name the same
//!   physical node twice: dsys does strictly more placement work per call.
//! - `build/100x150`: a 100-node ring from nothing. `dsys` is
//!   `Ring::extend_nodes(0..100)` (one sort, one index build),
//!   `dsys-add-loop` 100 × `Ring::add` (lookup structures rebuilt per add),
//!   `dsys-balanced` 100 × `add` with `TokenAllocation::Balanced`;
//!   `hashring` is one `batch_add` of the 15,000 vnodes (its fastest path,
//!   one sort; the input `Vec` is made outside the timing) and
//!   `hashring-add-loop` 15,000 × `add` (a sort per add, 0.25-0.35 s per
//!   ring on 2 cores, so that contender runs with 10 samples). Every
//!   contender drops its ring inside the timing (see `build` for why).
//!
//! Run (about 1.5 min on 2 cores):
//!
//! ```sh
//! cargo bench -p dsys-hashring --bench lookup
//! python3 .ci/bench-ratios --peer hashring lookup/ replicas3/ build/
//! python3 .ci/bench-ratios --peer hashring --markdown lookup/ replicas3/ build/
//! ```
//!
//! A ratio (peer time / dsys time) above 1 means dsys is faster.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use dsys_hashring::{NodeConfig, Ring, RingConfig, TokenAllocation};
use hashring::HashRing;

/// A node's settings, built the way a user outside the crate builds them.
fn node_config(weight: u32, zone: impl Into<String>) -> NodeConfig {
    let mut config = NodeConfig::default();
    config.weight = weight;
    config.zone = zone.into();
    config
}

/// Physical nodes on every ring.
const NODES: u32 = 100;
/// Virtual nodes per physical node (dsys's default `vnodes_per_weight`).
const VNODES: u32 = 150;
/// Distinct keys cycled through by the lookup groups (a power of two).
const KEY_COUNT: usize = 4096;
/// Zones of the `dsys-zoned` ring.
const ZONES: u32 = 3;

/// One entry of the peer's ring: how its docs emulate virtual nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct VNode {
    node: u32,
    vnode: u32,
}

fn keys() -> Vec<String> {
    (0..KEY_COUNT).map(|i| format!("user:{i}")).collect()
}

fn peer_vnodes() -> Vec<VNode> {
    (0..NODES)
        .flat_map(|node| (0..VNODES).map(move |vnode| VNode { node, vnode }))
        .collect()
}

fn dsys_ring() -> Ring<u32> {
    let mut ring = Ring::new();
    ring.extend_nodes(0..NODES).expect("distinct nodes");
    ring
}

fn dsys_add_loop(config: RingConfig) -> Ring<u32> {
    let mut ring = Ring::with_config(config).expect("valid config");
    for node in 0..NODES {
        ring.add(node, NodeConfig::default())
            .expect("distinct nodes");
    }
    ring
}

fn balanced_config() -> RingConfig {
    let mut config = RingConfig::default();
    config.allocation = TokenAllocation::Balanced;
    config
}

fn dsys_zoned_ring() -> Ring<u32> {
    let mut ring = Ring::new();
    for node in 0..NODES {
        let zone = format!("zone-{}", node % ZONES);
        ring.add(node, node_config(1, zone))
            .expect("distinct nodes");
    }
    ring
}

fn peer_ring() -> HashRing<VNode> {
    let mut ring = HashRing::new();
    ring.batch_add(peer_vnodes());
    ring
}

/// Runs `f` on the next key of the shared cycle each iteration.
fn cycle_keys<'k>(keys: &'k [String], mut f: impl FnMut(&'k String)) -> impl FnMut() {
    let mut i = 0usize;
    move || {
        f(&keys[i & (KEY_COUNT - 1)]);
        i = i.wrapping_add(1);
    }
}

fn lookup(c: &mut Criterion) {
    let keys = keys();
    let dsys = dsys_ring();
    let balanced = dsys_add_loop(balanced_config());
    let peer = peer_ring();
    assert_eq!(dsys.vnode_count(), peer.len());
    assert_eq!(balanced.vnode_count(), peer.len());

    let mut group = c.benchmark_group("lookup/100x150");
    group.bench_function("dsys", |b| {
        b.iter(cycle_keys(&keys, |key| {
            black_box(dsys.locate(black_box(key)));
        }));
    });
    group.bench_function("dsys-balanced", |b| {
        b.iter(cycle_keys(&keys, |key| {
            black_box(balanced.locate(black_box(key)));
        }));
    });
    group.bench_function("dsys-bytes", |b| {
        b.iter(cycle_keys(&keys, |key| {
            black_box(dsys.locate_bytes(black_box(key).as_bytes()));
        }));
    });
    group.bench_function("hashring", |b| {
        b.iter(cycle_keys(&keys, |key| {
            black_box(peer.get(black_box(key)));
        }));
    });
    group.finish();
}

fn replicas3(c: &mut Criterion) {
    let keys = keys();
    let dsys = dsys_ring();
    let zoned = dsys_zoned_ring();
    let peer = peer_ring();
    assert_eq!(zoned.zone_count(), ZONES as usize);
    assert_eq!(dsys.preference_list(&keys[0], 3).len(), 3);
    assert_eq!(
        peer.get_with_replicas(&keys[0], 2).map(|v| v.len()),
        Some(3)
    );

    let mut group = c.benchmark_group("replicas3/100x150");
    group.bench_function("dsys", |b| {
        b.iter(cycle_keys(&keys, |key| {
            for node in dsys.preference_list(black_box(key), 3).iter() {
                black_box(node);
            }
        }));
    });
    group.bench_function("dsys-bytes", |b| {
        b.iter(cycle_keys(&keys, |key| {
            for node in dsys
                .preference_list_bytes(black_box(key).as_bytes(), 3)
                .iter()
            {
                black_box(node);
            }
        }));
    });
    group.bench_function("dsys-zoned", |b| {
        b.iter(cycle_keys(&keys, |key| {
            for node in zoned.preference_list_zoned(black_box(key), 3).iter() {
                black_box(node);
            }
        }));
    });
    // `replicas + 1` vnode entries, possibly with a physical node twice:
    // less than dsys's three distinct nodes, and in a new `Vec` (dropped
    // inside the timing: the allocation is part of the peer's API).
    group.bench_function("hashring", |b| {
        b.iter(cycle_keys(&keys, |key| {
            for vnode in peer
                .get_with_replicas(black_box(key), 2)
                .into_iter()
                .flatten()
            {
                black_box(vnode.node);
            }
        }));
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let vnodes = peer_vnodes();

    // Every contender drops its ring inside the timed call, so each build
    // reuses the memory the previous one freed. Keeping the rings alive
    // until the end of a batch (`iter_with_large_drop`) instead makes the
    // result hinge on whether glibc malloc returned the freed heap to the OS
    // in between: when it did, every build pays page faults for fresh pages
    // (dsys holds about 40 B per vnode, the peer 16 B), and dsys's time
    // swung from about 0.4 ms to 0.7 ms between runs on the same machine.
    let mut group = c.benchmark_group("build/100x150");
    group.bench_function("dsys", |b| b.iter(dsys_ring));
    group.bench_function("dsys-add-loop", |b| {
        b.iter(|| dsys_add_loop(RingConfig::default()));
    });
    group.bench_function("dsys-balanced", |b| {
        b.iter(|| dsys_add_loop(balanced_config()));
    });
    group.bench_function("hashring", |b| {
        b.iter_batched(
            || vnodes.clone(),
            |vnodes| {
                let mut ring = HashRing::new();
                ring.batch_add(vnodes);
                black_box(&ring);
            },
            BatchSize::LargeInput,
        );
    });
    // The peer sorts the whole ring on every `add`: 15,000 sorts of up to
    // 15,000 entries, about 0.25-0.35 s per ring on a 2-core VM. Full 100
    // nodes × 150 vnodes all the same, but with 10 samples (criterion's
    // minimum) so the group stays within the run's time budget (criterion
    // stretches the measurement time to about 5 s to fit them).
    group.sample_size(10);
    group.bench_function("hashring-add-loop", |b| {
        b.iter(|| {
            let mut ring = HashRing::new();
            for &vnode in &vnodes {
                ring.add(vnode);
            }
            ring
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = lookup, replicas3, build
}
criterion_main!(benches);
