//! Machinery for section 4: building each placement with 100 nodes,
//! placing the keys on it (timing the lookups), adding the 101st node and
//! measuring balance and movement.

use std::time::Instant;

use dsys_hashring::quality::{Assignment, ideal_moved_fraction};
use dsys_hashring::{BoundedLoads, KeyHash, Placement, Ring, RingConfig, TokenAllocation};

use super::{BOUNDED, EPSILON, QUALITY_NODES, VNODES};
use crate::report::{Res, check_eq};

/// One algorithm's line of the report.
pub(super) struct Quality {
    pub(super) name: &'static str,
    pub(super) peak: f64,
    /// Keys moved by the 101st node, as a multiple of the ideal 1/101.
    pub(super) moved: f64,
    /// Keys that moved from one old node to another.
    pub(super) between: usize,
    /// Measured: nanoseconds per lookup, one pass over the keys.
    pub(super) nanos: f64,
}

/// The least share of keys the 101st node can move: its fair share, 1/101.
pub(super) fn ideal_join() -> f64 {
    let nodes = QUALITY_NODES as usize;
    ideal_moved_fraction(nodes, nodes + 1)
}

/// Keys whose owner changed to a node other than the newcomer.
pub(super) fn moved_between_old_nodes(
    before: &Assignment<u32>,
    after: &Assignment<u32>,
    keys: usize,
) -> usize {
    (0..keys)
        .filter(|&i| before.owner(i) != after.owner(i) && after.owner(i) != Some(&QUALITY_NODES))
        .count()
}

/// Places `keys` on `placement` (built with [`QUALITY_NODES`] nodes), timing
/// the lookups, then adds node [`QUALITY_NODES`] and places them again.
pub(super) fn measure<P: Placement<u32>>(
    name: &'static str,
    mut placement: P,
    keys: &[KeyHash],
) -> Res<Quality> {
    check_eq(
        &format!("{name}'s nodes"),
        &placement.node_count(),
        &usize::try_from(QUALITY_NODES)?,
    )?;
    // The vector is filled first, so the timed loop does not fault in pages.
    let mut owners: Vec<Option<u32>> = vec![None; keys.len()];
    let start = Instant::now();
    for (owner, &key) in owners.iter_mut().zip(keys) {
        *owner = placement.locate_hash(key).copied();
    }
    let nanos = start.elapsed().as_nanos() as f64 / keys.len() as f64;
    let before = Assignment::from_owners(placement.node_count(), owners);
    placement.add_node(QUALITY_NODES, 1)?;
    let after = Assignment::of(&placement, keys);
    Ok(Quality {
        name,
        peak: before.peak_to_mean(),
        moved: before.moved_fraction(&after) / ideal_join(),
        between: moved_between_old_nodes(&before, &after, keys.len()),
        nanos,
    })
}

/// Bounded loads: every key assigned in turn (the paper's setting); for the
/// movement, the same keys assigned in the same order to 101 nodes.
pub(super) fn measure_bounded(keys: &[KeyHash]) -> Res<Quality> {
    let with_nodes = |nodes: u32| -> Res<BoundedLoads<u32>> {
        let mut bounded = BoundedLoads::new(EPSILON)?;
        for node in 0..nodes {
            bounded.add(node, 1)?;
        }
        Ok(bounded)
    };
    let mut bounded = with_nodes(QUALITY_NODES)?;
    let mut owners: Vec<Option<u32>> = vec![None; keys.len()];
    let start = Instant::now();
    for (owner, &key) in owners.iter_mut().zip(keys) {
        *owner = bounded.assign_hash(key).copied();
    }
    let nanos = start.elapsed().as_nanos() as f64 / keys.len() as f64;
    let before = Assignment::from_owners(bounded.node_count(), owners);
    let mut grown = with_nodes(QUALITY_NODES + 1)?;
    let owners: Vec<Option<u32>> = keys
        .iter()
        .map(|&key| grown.assign_hash(key).copied())
        .collect();
    let after = Assignment::from_owners(grown.node_count(), owners);
    Ok(Quality {
        name: BOUNDED,
        peak: before.peak_to_mean(),
        moved: before.moved_fraction(&after) / ideal_join(),
        between: moved_between_old_nodes(&before, &after, keys.len()),
        nanos,
    })
}

pub(super) fn ring_with(allocation: TokenAllocation) -> Res<Ring<u32>> {
    let mut config = RingConfig::default();
    config.vnodes_per_weight = VNODES;
    config.allocation = allocation;
    let mut ring = Ring::with_config(config)?;
    ring.extend_nodes(0..QUALITY_NODES)?;
    Ok(ring)
}

/// `placement` with nodes `0..100`, added one by one through the
/// `Placement` trait.
pub(super) fn one_by_one<P: Placement<u32>>(mut placement: P) -> Res<P> {
    for node in 0..QUALITY_NODES {
        placement.add_node(node, 1)?;
    }
    Ok(placement)
}
