//! Machinery for sections 1 to 3: the seeds' Cassandra cluster (names,
//! zones, how a ring of them is built), how a preference list and a node's
//! ranges are printed, and the per-sender tally of a join.

use std::collections::BTreeSet;

use dsys_hashring::{NodeConfig, PreferenceList, Ring, TokenRange};

use super::ZONES;
use super::units::{arc, percent};
use crate::report::Res;

pub(super) fn node_name(i: usize) -> String {
    format!("cassandra-node-{i}")
}

pub(super) fn zone_of(i: usize) -> &'static str {
    ZONES[i % ZONES.len()]
}

/// `node-2` for `cassandra-node-2`, to keep the tables narrow.
pub(super) fn short(node: &str) -> &str {
    node.strip_prefix("cassandra-").unwrap_or(node)
}

/// `c` for `zone-c`.
pub(super) fn zone_letter(zone: &str) -> &str {
    zone.strip_prefix("zone-").unwrap_or(zone)
}

/// The first `nodes` Cassandra nodes, each in its zone, 150 hashed vnodes
/// each.
pub(super) fn cassandra_ring(nodes: usize) -> Res<Ring<String>> {
    let mut ring = Ring::new();
    for i in 0..nodes {
        ring.add(node_name(i), node_config(zone_of(i)))?;
    }
    Ok(ring)
}

/// A preference list as `node-2, node-4, node-0` and its zones as `c b a`.
pub(super) fn show_list(
    ring: &Ring<String>,
    list: &PreferenceList<'_, String>,
) -> Res<(String, String)> {
    let nodes: Vec<&str> = list.iter().map(|n| short(n)).collect();
    let zones = list
        .iter()
        .map(|n| {
            ring.zone(n)
                .map(zone_letter)
                .ok_or("a replica is not a member")
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((nodes.join(", "), zones.join(" ")))
}

/// Distinct zones among a preference list's nodes.
pub(super) fn zones_used(ring: &Ring<String>, list: &PreferenceList<'_, String>) -> usize {
    list.iter()
        .filter_map(|n| ring.zone(n))
        .collect::<BTreeSet<_>>()
        .len()
}

/// Weight 1 in `zone`: a `NodeConfig` from `Default` with one field set.
pub(super) fn node_config(zone: &str) -> NodeConfig {
    let mut config = NodeConfig::default();
    config.zone = zone.to_owned();
    config
}

/// Per source node: ranges handed over, share of the ring, keys of the sample.
#[derive(Default)]
pub(super) struct Handover {
    pub(super) ranges: usize,
    pub(super) share: f64,
    pub(super) keys: usize,
}

/// `(90 deg, 135 deg] 12.5%`: a node's ranges and share.
pub(super) fn owns(ring: &Ring<char>, node: char) -> String {
    let ranges = ring.ranges_of(&node);
    if ranges.is_empty() {
        return "-".to_owned();
    }
    let share: f64 = ranges.iter().map(TokenRange::fraction).sum();
    let arcs: Vec<String> = ranges.iter().map(arc).collect();
    format!("{} {}", arcs.join(" "), percent(share))
}
