//! Chapter `ring`: dsys-hashring decides which nodes hold a key, and what
//! moves when a node joins.
//!
//! 1. The seeds' `ConsistentHashRing` example (seed 001): five Cassandra
//!    nodes with 150 virtual nodes each, four keys, three replicas; then the
//!    zone-aware preference list, one replica per zone.
//! 2. A sixth node joins: the rebalance plan, checked key by key on 100,000
//!    keys, against hash mod N on the same keys.
//! 3. The seeds' four-node picture (seed 002): node E joins at 135 degrees
//!    and only (90, 135] moves, from B to E.
//! 4. The quality report of issue 4: 100 nodes, 1,000,000 keys, eight
//!    placement algorithms; balance, movement, lookup cost.
//!
//! Placement is a pure function of the membership, so every number printed
//! is the same on every run, except the lookup-cost column of section 4: a
//! timing, measured with `Instant` and labelled as measured.
//!
//! This file is the story: what each section builds, checks and prints, in
//! reading order, with the scenario's parameters. The machinery lives beside
//! it: `cluster.rs` (the seeds' nodes and zones, printing lists and ranges),
//! `quality.rs` (building and measuring each algorithm for section 4) and
//! `units.rs` (keys, degrees and number formats).

mod cluster;
mod quality;
mod units;

use std::collections::{BTreeMap, BTreeSet};

use dsys_hashring::quality::Assignment;
use dsys_hashring::{
    JumpHash, KeyHash, Maglev, ModuloHash, NodeConfig, Placement, RangePartition, Rendezvous, Ring,
    TokenAllocation, TokenRange,
};

use crate::report::{self, Res, Table, check, check_eq};
use cluster::{
    Handover, cassandra_ring, node_config, node_name, owns, short, show_list, zone_of, zones_used,
};
use quality::{Quality, measure, measure_bounded, one_by_one, ring_with};
use units::{angle, arc, deg, percent, thousands, user_keys};

/// Runs the chapter.
pub(crate) fn run() -> Res {
    let keys = user_keys(QUALITY_KEYS.max(SAMPLE));
    let ring = seeds_example(&keys[..SAMPLE])?;
    node_joins(&ring, &keys[..SAMPLE])?;
    seeds_picture()?;
    quality_report(&keys[..QUALITY_KEYS])?;
    Ok(())
}

// --- Keys, positions, names ----------------------------------------------------------

/// Keys in the sample of sections 1 and 2: `user:0` ... `user:99999`.
const SAMPLE: usize = 100_000;

// --- 1. The seeds' ring --------------------------------------------------------------

/// The seeds' cluster: `cassandra-node-0` ... `cassandra-node-4`.
const SEED_NODES: usize = 5;

/// Three availability zones; node `i` is in zone `i mod 3`.
const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

/// The seeds' four keys.
const SEED_KEYS: [&str; 4] = ["user:1001", "order:5555", "product:abc", "session:xyz"];

/// Replicas per key, as in the seeds' example.
const REPLICAS: usize = 3;

/// Virtual nodes per node: the seeds' `virtual_nodes=150`, also the crate's
/// default.
const VNODES: u32 = 150;

fn seeds_example(sample: &[KeyHash]) -> Res<Ring<String>> {
    report::section("1. The seeds' ring: five Cassandra nodes, 150 virtual nodes each");
    let ring = cassandra_ring(SEED_NODES)?;
    check_eq(
        "vnodes on the ring",
        &ring.vnode_count(),
        &(SEED_NODES * VNODES as usize),
    )?;
    report::note(&format!(
        "Seed 001's ConsistentHashRing, in dsys-hashring: {SEED_NODES} nodes cassandra-node-0..4 \
         with {VNODES} virtual nodes each, {} tokens in all. A key belongs to the first token at \
         or after its position, wrapping past the top; its replicas are the next distinct nodes \
         clockwise. The nodes sit in three zones (node i in zone i mod 3), and the zone-aware \
         list takes one node per zone first, as Cassandra's NetworkTopologyStrategy does with \
         racks. node-i is short for cassandra-node-i.",
        ring.vnode_count(),
    ));

    let mut table = Table::new(&[
        "key",
        "position",
        "primary",
        "3 replicas, ring order",
        "zones",
        "3 replicas, zone-aware",
        "zones",
    ])
    .numeric(&[1]);
    let mut doubled_zone = Vec::new();
    for key in SEED_KEYS {
        let hash = KeyHash::of_bytes(key.as_bytes());
        let primary = ring.locate_hash(hash).ok_or("the ring is empty")?;
        let plain = ring.preference_list_hash(hash, REPLICAS);
        let zoned = ring.preference_list_zoned_hash(hash, REPLICAS);
        check_eq(&format!("{key}'s replicas"), &plain.len(), &REPLICAS)?;
        check_eq(
            &format!("{key}'s distinct replicas"),
            &plain.iter().collect::<BTreeSet<_>>().len(),
            &REPLICAS,
        )?;
        check_eq(
            &format!("{key}'s first replica"),
            &plain.primary(),
            &Some(primary),
        )?;
        check_eq(
            &format!("{key}'s first zone-aware replica"),
            &zoned.primary(),
            &Some(primary),
        )?;
        check_eq(
            &format!("zones of {key}'s zone-aware replicas"),
            &zones_used(&ring, &zoned),
            &ZONES.len(),
        )?;
        if zones_used(&ring, &plain) < REPLICAS {
            doubled_zone.push(key);
        }
        let (plain_nodes, plain_zones) = show_list(&ring, &plain)?;
        let (zoned_nodes, zoned_zones) = show_list(&ring, &zoned)?;
        table.row([
            key.to_owned(),
            format!("{:.1} deg", angle(hash.0)),
            primary.clone(),
            plain_nodes,
            plain_zones,
            zoned_nodes,
            zoned_zones,
        ]);
    }
    table.print();
    let doubled = match doubled_zone.as_slice() {
        [] => "None of the four ring-order lists repeats a zone here, but nothing prevents it"
            .to_owned(),
        [key] => format!(
            "The ring-order list of {key} puts two replicas in one zone, so losing that zone \
             loses two of its three copies"
        ),
        [keys @ .., last] => format!(
            "The ring-order lists of {} and {last} put two replicas in one zone, so losing that \
             zone loses two of three copies",
            keys.join(", ")
        ),
    };
    report::note(&format!(
        "Positions are XXH3-64 of the key's bytes, in degrees of the 2^64 ring (the seeds' \
         Python uses MD5, so its keys land elsewhere; the rules are the same). {doubled}; the zone-aware list skips a node whose \
         zone is taken and always spans the three zones."
    ));
    let all = ring.preference_list_hash(KeyHash::of_bytes(SEED_KEYS[0].as_bytes()), 7);
    check_eq(
        "replicas when 7 of 5 are asked for",
        &all.len(),
        &SEED_NODES,
    )?;
    report::note(
        "Asked for 7 replicas of 5 nodes, the seeds' get_nodes_for_replication raises; \
         preference_list returns all 5.",
    );

    // Each node's share of the ring, and of a sample of keys.
    let sampled = Assignment::of(&ring, sample);
    let mut shares = Table::new(&[
        "node",
        "zone",
        "vnodes",
        "share of the ring",
        &format!("keys of {}", thousands(sample.len())),
        "share of the keys",
    ])
    .numeric(&[2, 3, 4, 5]);
    let ownership = ring.ownership();
    let mut total = 0.0;
    for &(node, share) in &ownership {
        let vnodes = ring.tokens_of(node).len();
        check_eq(&format!("{node}'s vnodes"), &vnodes, &(VNODES as usize))?;
        let keys = sampled.loads().get(node).copied().unwrap_or(0);
        total += share;
        shares.row([
            node.clone(),
            ring.zone(node).unwrap_or_default().to_owned(),
            vnodes.to_string(),
            percent(share),
            thousands(usize::try_from(keys)?),
            percent(keys as f64 / sample.len() as f64),
        ]);
    }
    shares.print();
    check(
        "the shares of the ring add up to 1",
        (total - 1.0).abs() < 1e-9,
    )?;
    let (least, most) = ownership
        .iter()
        .map(|&(_, share)| share)
        .fold((1.0_f64, 0.0_f64), |(lo, hi), s| (lo.min(s), hi.max(s)));
    report::note(&format!(
        "The fair share is {}. With {VNODES} hashed tokens each, the nodes own between {} and {} of \
         the ring, and the {} keys user:0..user:{} follow the shares to within sampling noise.",
        percent(1.0 / SEED_NODES as f64),
        percent(least),
        percent(most),
        thousands(sample.len()),
        sample.len() - 1,
    ));

    report::takeaway(
        "A key's replicas are the next distinct nodes clockwise; zone-aware lists span the zones.",
    );
    Ok(ring)
}

// --- 2. A node joins -----------------------------------------------------------------

fn node_joins(ring: &Ring<String>, sample: &[KeyHash]) -> Res {
    let newcomer = node_name(SEED_NODES);
    report::section(&format!(
        "2. {newcomer} joins: what moves, and what hash mod N would move"
    ));
    let mut grown = ring.clone();
    grown.add(newcomer.clone(), node_config(zone_of(SEED_NODES)))?;
    let plan = ring.rebalance_plan(&grown, 1);
    let new_share = grown
        .ownership()
        .into_iter()
        .find(|(node, _)| **node == newcomer)
        .map(|(_, share)| share)
        .ok_or("the newcomer owns nothing")?;
    check(
        "the plan moves exactly the newcomer's share",
        (plan.moved_fraction() - new_share).abs() < 1e-12,
    )?;
    let mut handovers: BTreeMap<&String, Handover> = BTreeMap::new();
    for transfer in &plan.transfers {
        check_eq("the receiver of every transfer", &transfer.to, &newcomer)?;
        let handover = handovers.entry(&transfer.from).or_default();
        handover.ranges += 1;
        handover.share += transfer.range.fraction();
    }
    let released: Vec<(TokenRange, String)> = plan
        .transfers
        .iter()
        .map(|t| (t.range, t.from.clone()))
        .collect();
    check_eq(
        "the ranges released (each sender deletes what it sent)",
        &plan.releases,
        &released,
    )?;

    // Key by key: a key moves if and only if a transfer carries it, from
    // its old owner to the newcomer.
    let before = Assignment::of(ring, sample);
    let after = Assignment::of(&grown, sample);
    let mut moved = 0;
    for (i, &key) in sample.iter().enumerate() {
        let (old, new) = (before.owner(i), after.owner(i));
        let transfer = plan.transfer_for(key, &newcomer);
        if old == new {
            check("no transfer carries a key that stays", transfer.is_none())?;
            continue;
        }
        moved += 1;
        check_eq("the new owner of a moved key", &new, &Some(&newcomer))?;
        let transfer = transfer.ok_or("a moved key lies in no transfer range")?;
        check_eq("the sender of a moved key", &Some(&transfer.from), &old)?;
        if let Some(handover) = handovers.get_mut(&transfer.from) {
            handover.keys += 1;
        }
    }

    report::note(&format!(
        "{newcomer} joins in {} with {VNODES} tokens. before.rebalance_plan(&after, 1) lists every \
         range whose owner changes, with a sender (adjacent ranges merged); by sender:",
        zone_of(SEED_NODES)
    ));
    let old_shares: BTreeMap<&String, f64> = ring.ownership().into_iter().collect();
    let mut table = Table::new(&[
        "from",
        "to",
        "ranges",
        "share of the ring",
        "of the sender's share",
        &format!("keys of {}", thousands(sample.len())),
    ])
    .numeric(&[2, 3, 4, 5]);
    for (from, handover) in &handovers {
        let own = old_shares.get(from).copied().unwrap_or(1.0);
        check(
            &format!("{from} gives up about a sixth of its share"),
            (0.12..0.22).contains(&(handover.share / own)),
        )?;
        table.row([
            (*from).clone(),
            newcomer.clone(),
            handover.ranges.to_string(),
            percent(handover.share),
            percent(handover.share / own),
            thousands(handover.keys),
        ]);
    }
    table.row([
        "all".to_owned(),
        newcomer.clone(),
        plan.transfers.len().to_string(),
        percent(plan.moved_fraction()),
        String::new(),
        thousands(moved),
    ]);
    table.print();
    report::note(&format!(
        "Every old node gives up about a sixth of what it held, and nothing moves between old \
         nodes. Of the {} sample keys, {} ({}) changed owner: each went to {newcomer} and lies in \
         a transfer range from its old owner, and no key that stayed lies in one.",
        thousands(sample.len()),
        thousands(moved),
        percent(moved as f64 / sample.len() as f64),
    ));

    // With replicas, the newcomer also becomes the second or third replica
    // of the ranges just before its own.
    let mut replicated = Table::new(&[
        "replicas kept",
        "transfers",
        "senders",
        "share of the ring copied",
        "x the primary share",
    ])
    .numeric(&[1, 2, 3, 4]);
    for (label, plan) in [
        ("1 (primary only)", plan.clone()),
        ("3, ring order", ring.rebalance_plan(&grown, REPLICAS)),
        ("3, zone-aware", ring.rebalance_plan_zoned(&grown, REPLICAS)),
    ] {
        check(
            &format!("every transfer of the {label} plan goes to {newcomer}"),
            plan.transfers.iter().all(|t| t.to == newcomer),
        )?;
        let senders: BTreeSet<&String> = plan.transfers.iter().map(|t| &t.from).collect();
        let copied = plan.moved_fraction() / new_share;
        if label != "1 (primary only)" {
            check(
                &format!("the {label} plan copies about 3 times the newcomer's share"),
                (2.5..3.5).contains(&copied),
            )?;
        }
        replicated.row([
            label.to_owned(),
            plan.transfers.len().to_string(),
            senders.len().to_string(),
            percent(plan.moved_fraction()),
            format!("{copied:.2}"),
        ]);
    }
    report::note(
        "Keeping 3 replicas, the newcomer also becomes the second or third holder of the ranges \
         just before its own, so about three times as much is copied:",
    );
    replicated.print();

    // The seeds' point: hash mod N remaps almost everything.
    let mut modulo = ModuloHash::new();
    for i in 0..SEED_NODES {
        modulo.add_node(node_name(i), 1)?;
    }
    let mod_before = Assignment::of(&modulo, sample);
    modulo.add_node(newcomer.clone(), 1)?;
    let mod_after = Assignment::of(&modulo, sample);
    let mut comparison = Table::new(&[
        "placement",
        "keys moved",
        "share",
        &format!("to {}", short(&newcomer)),
        "between old nodes",
    ])
    .numeric(&[1, 2, 3, 4]);
    let mut moved_by = BTreeMap::new();
    for (name, before, after) in [
        ("ring, 150 vnodes", &before, &after),
        ("hash mod N", &mod_before, &mod_after),
    ] {
        let (mut to_new, mut between) = (0, 0);
        for i in 0..sample.len() {
            match (before.owner(i), after.owner(i)) {
                (old, new) if old == new => {}
                (_, Some(new)) if *new == newcomer => to_new += 1,
                _ => between += 1,
            }
        }
        let total = to_new + between;
        moved_by.insert(name, (total, between));
        comparison.row([
            name.to_owned(),
            thousands(total),
            percent(total as f64 / sample.len() as f64),
            thousands(to_new),
            thousands(between),
        ]);
    }
    let (mod_moved, mod_between) = moved_by.get("hash mod N").copied().unwrap_or_default();
    let mod_fraction = mod_moved as f64 / sample.len() as f64;
    check(
        "hash mod N moves about 5/6 of the keys going from 5 to 6 nodes",
        (mod_fraction - 5.0 / 6.0).abs() < 0.01,
    )?;
    check(
        "hash mod N moves keys between old nodes",
        mod_between > mod_moved / 2,
    )?;
    report::note(&format!(
        "Seed 002's hash(key) mod N on the same {} keys, going from 5 to 6 nodes:",
        thousands(sample.len())
    ));
    comparison.print();
    report::note(&format!(
        "A key stays under mod N only if hash mod 5 = hash mod 6, for 1 in 6 hashes: {} of the \
         keys move, most of them between nodes that were there all along.",
        percent(mod_fraction)
    ));

    report::takeaway(
        "A join moves only the newcomer's share, and the plan says which ranges and from whom.",
    );
    Ok(())
}

// --- 3. The seeds' picture -----------------------------------------------------------

/// Seed 002's ring: A owns 0-90, B 90-180, C 180-270, D 270-360. A node's
/// token sits at the end of its range, since a key belongs to the first
/// token clockwise.
const PICTURE: [(char, u64); 4] = [('A', 90), ('B', 180), ('C', 270), ('D', 0)];

fn seeds_picture() -> Res {
    report::section("3. The seeds' picture: node E joins at 135 degrees");
    let mut before = Ring::new();
    for (node, end) in PICTURE {
        before.add_with_tokens(node, NodeConfig::default(), [deg(end)])?;
    }
    let mut after = before.clone();
    after.add_with_tokens('E', NodeConfig::default(), [deg(135)])?;
    report::note(
        "Seed 002 draws four nodes on a circle, A: 0-90, B: 90-180, C: 180-270, D: 270-360, and \
         adds E at 135. Each node gets one token, placed with add_with_tokens at the end of its \
         range (positions in degrees of the 2^64 ring):",
    );
    let mut table = Table::new(&["node", "token", "owns before", "owns after E joins"]);
    for node in ['A', 'B', 'C', 'D', 'E'] {
        let token = after
            .tokens_of(&node)
            .first()
            .map(|&t| if t == 0 { 360.0 } else { angle(t) })
            .ok_or("a node without a token")?;
        table.row([
            node.to_string(),
            format!("{token:.0} deg"),
            owns(&before, node),
            owns(&after, node),
        ]);
    }
    table.print();

    let plan = before.rebalance_plan(&after, 1);
    let expected = TokenRange {
        start: deg(90),
        end: deg(135),
    };
    check_eq("the plan's transfers", &plan.transfers.len(), &1)?;
    let transfer = &plan.transfers[0];
    check_eq(
        "the seeds' transfer",
        &(transfer.range, transfer.from, transfer.to),
        &(expected, 'B', 'E'),
    )?;
    check_eq("the seeds' release", &plan.releases, &vec![(expected, 'B')])?;
    report::note("before.rebalance_plan(&after, 1):");
    report::quote(&format!(
        "{} moves from {} to {}: {} of the ring; {} then deletes it",
        arc(&transfer.range),
        transfer.from,
        transfer.to,
        percent(plan.moved_fraction()),
        transfer.from,
    ));

    let mut keys = Table::new(&["key at", "owner before", "owner after", "moves"]).numeric(&[0]);
    for at in [45, 90, 91, 120, 135, 136, 179, 200, 300] {
        let key = KeyHash(deg(at));
        let (old, new) = (before.locate_hash(key), after.locate_hash(key));
        let in_range = expected.contains(key);
        check_eq(
            &format!("a key at {at} deg moves iff it lies in (90, 135]"),
            &(old != new),
            &in_range,
        )?;
        keys.row([
            format!("{at} deg"),
            old.map_or("-".to_owned(), char::to_string),
            new.map_or("-".to_owned(), char::to_string),
            if in_range { "B -> E" } else { "" }.to_owned(),
        ]);
    }
    keys.print();
    report::takeaway(
        "Only keys in (90, 135] move, from B to E, as the seed says; A, C and D see nothing.",
    );
    Ok(())
}

// --- 4. Quality report ---------------------------------------------------------------

/// Nodes before the join; node `QUALITY_NODES` (the 101st) joins.
const QUALITY_NODES: u32 = 100;

/// Keys of the quality report. A debug build (`cargo test`) places fewer,
/// to keep the test suite fast; the release tour places the full million.
const QUALITY_KEYS: usize = if cfg!(debug_assertions) {
    100_000
} else {
    1_000_000
};

/// The keys of issue 4's acceptance criteria.
const TARGET_KEYS: usize = 1_000_000;

/// The algorithms of the report, by name.
const HASHED: &str = "ring, 150 hashed vnodes";
const BALANCED: &str = "ring, 150 balanced vnodes";
const JUMP: &str = "jump";
const RENDEZVOUS: &str = "rendezvous";
const MAGLEV: &str = "maglev, 65,537 slots";
const MODULO: &str = "hash mod N";
const RANGE: &str = "range, split on join";
const BOUNDED: &str = "bounded loads, eps = 0.1";

/// Bounded loads' balance parameter.
const EPSILON: f64 = 0.1;

fn quality_report(keys: &[KeyHash]) -> Res {
    report::section(&format!(
        "4. Quality: {QUALITY_NODES} nodes, {} keys, eight algorithms",
        thousands(keys.len())
    ));
    let nodes = usize::try_from(QUALITY_NODES)?;
    let mean = keys.len() as f64 / nodes as f64;
    report::note(&format!(
        "Issue 4's report: place the keys user:0..user:{} (hashed once, as bytes) on \
         {QUALITY_NODES} equal nodes, then add a 101st. Peak/mean is the busiest node's keys over \
         the mean ({} keys); moved is the share of keys whose owner changed, over the ideal \
         1/101 (the newcomer's fair share). Bounded loads assigns the keys in order; for \
         movement it assigns them again, in the same order, to 101 nodes.",
        keys.len() - 1,
        thousands(mean.round() as usize),
    ));
    if keys.len() < TARGET_KEYS {
        report::note(&format!(
            "This is a debug build: {} keys instead of {}, to keep `cargo test` fast; the \
             release tour places all of them. The balance target is scaled to the sample: see \
             below.",
            thousands(keys.len()),
            thousands(TARGET_KEYS)
        ));
    }

    let mut maglev = Maglev::default();
    maglev.add_nodes((0..QUALITY_NODES).map(|node| (node, 1)))?;
    let results = [
        measure(HASHED, ring_with(TokenAllocation::Hashed)?, keys)?,
        measure(BALANCED, ring_with(TokenAllocation::Balanced)?, keys)?,
        measure(JUMP, one_by_one(JumpHash::new())?, keys)?,
        measure(RENDEZVOUS, one_by_one(Rendezvous::new())?, keys)?,
        measure(MAGLEV, maglev, keys)?,
        measure(MODULO, one_by_one(ModuloHash::new())?, keys)?,
        measure(RANGE, one_by_one(RangePartition::new())?, keys)?,
        measure_bounded(keys)?,
    ];
    let mut table = Table::new(&[
        "algorithm",
        "peak /\nmean load",
        "keys moved by\nnode 101,\nx ideal 1/101",
        "of them,\nbetween\nold nodes",
        "lookup cost\n(MEASURED: varies\nby run, machine)",
    ])
    .numeric(&[1, 2, 3, 4]);
    for q in &results {
        table.row([
            q.name.to_owned(),
            format!("{:.3}", q.peak),
            format!("{:.2}x", q.moved),
            thousands(q.between),
            format!("{:.1} ns", q.nanos),
        ]);
    }
    table.print();
    report::note(&format!(
        "Lookup cost is the one column measured rather than computed: one pass over the {} keys \
         timed with std::time::Instant, divided by the count (for bounded loads, assign_hash, \
         which also counts the key). It varies from run to run and machine to machine{}. Every \
         other number is deterministic.",
        thousands(keys.len()),
        if cfg!(debug_assertions) {
            ", and a debug build's timings say little"
        } else {
            ""
        },
    ));

    // The targets of issue 4, and the story the note below tells.
    let get = |name: &str| -> Res<&Quality> {
        Ok(results
            .iter()
            .find(|q| q.name == name)
            .ok_or_else(|| format!("no result for {name}"))?)
    };
    let hashed = get(HASHED)?;
    let balanced = get(BALANCED)?;
    let maglev = get(MAGLEV)?;
    let modulo = get(MODULO)?;
    let range = get(RANGE)?;
    let bounded = get(BOUNDED)?;
    // Sampling noise: a node's count of `mean` random keys varies by about
    // 1/sqrt(mean), and the busiest of 100 nodes is about 2.5 of those
    // above the mean. The 1.05 target holds at 1,000,000 keys; a smaller
    // (debug) sample gets the same margin in standard deviations.
    let sigma = 1.0 / mean.sqrt();
    let floor = 1.0 + 2.5 * sigma;
    let balance_target = 1.0 + 0.05 * (TARGET_KEYS as f64 / keys.len() as f64).sqrt();
    check(
        &format!(
            "balanced ring peak/mean {:.3} <= {balance_target:.3}",
            balanced.peak
        ),
        balanced.peak <= balance_target,
    )?;
    // The capacity is a ceiling, of (1 + eps)(m + 1)/n keys: at most a key
    // over (1 + eps) times the mean, plus rounding.
    let bounded_target = 1.0 + EPSILON + 2.0 / mean;
    check(
        &format!(
            "bounded loads peak/mean {:.4} <= {bounded_target:.4}",
            bounded.peak
        ),
        bounded.peak <= bounded_target,
    )?;
    for name in [BALANCED, JUMP, RENDEZVOUS] {
        let q = get(name)?;
        check(
            &format!("{name} moves {:.3}x <= 1.1x the ideal", q.moved),
            q.moved <= 1.1,
        )?;
    }
    for name in [HASHED, BALANCED, JUMP, RENDEZVOUS, RANGE] {
        check_eq(
            &format!("keys {name} moves between old nodes"),
            &get(name)?.between,
            &0,
        )?;
    }
    check(
        "hashed vnodes are less balanced than balanced ones",
        hashed.peak > balanced.peak + 0.05,
    )?;
    check(
        "the balanced ring is within 0.02 of the sampling floor",
        balanced.peak <= floor + 0.02,
    )?;
    check(
        "maglev moves keys between old nodes",
        maglev.moved > 1.2 && maglev.between > 0,
    )?;
    check(
        "maglev is within 0.02 of the sampling floor",
        maglev.peak <= floor + 0.02,
    )?;
    let minimal = [BALANCED, JUMP, RENDEZVOUS]
        .into_iter()
        .map(|name| Ok(get(name)?.moved))
        .collect::<Res<Vec<f64>>>()?;
    let (least, most) = minimal
        .iter()
        .fold((f64::MAX, 0.0_f64), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    check("hash mod N moves almost everything", modulo.moved > 90.0)?;
    check(
        "range partitioning moves little but is lopsided",
        range.moved <= 1.0 && range.peak > 1.3,
    )?;

    let targets = if keys.len() < TARGET_KEYS {
        format!(
            "balanced ring peak/mean <= {balance_target:.3} (1.05 at 1,000,000 keys, widened by \
             the larger sampling noise of {} keys)",
            thousands(keys.len())
        )
    } else {
        "balanced ring peak/mean <= 1.05".to_owned()
    };
    report::note(&format!(
        "Checked: {targets}; bounded loads <= 1 + eps (plus {:.4} for the ceiling); the balanced \
         ring, jump and rendezvous move <= 1.1x the ideal.",
        bounded_target - 1.0 - EPSILON
    ));
    report::note(&format!(
        "Balance. Hashed vnodes are balanced only statistically: a node's 150 random ranges add \
         up to its fair share give or take about 8% (1/sqrt(150)), so the busiest node is {:.3}x \
         the mean. The balanced allocator puts each new node's tokens where they relieve the \
         most loaded nodes, and reaches the sampling floor: {} random keys per node vary by \
         {:.1}%, and the busiest of 100 sits about 2.5 of those above the mean, {floor:.3}. \
         Range partitioning is lopsided: 100 ranges made by halving are 1/64 or 1/128 of the \
         space, peak/mean {:.2}. Bounded loads caps the peak at 1 + eps by forwarding keys past \
         full nodes.",
        hashed.peak,
        thousands(mean.round() as usize),
        sigma * 100.0,
        range.peak,
    ));
    report::note(&format!(
        "Movement. Jump, rendezvous and the balanced ring move {least:.2}-{most:.2}x the ideal, \
         all of it to the newcomer; the hashed ring moves exactly the newcomer's share too, but \
         that share is itself random ({:.2}x). Range partitioning moves only the half range it \
         splits off ({:.2}x). Maglev trades movement for O(1) lookups from a table: rebuilding \
         it hands some slots from one old node to another ({:.2}x; {} keys). Bounded loads pays \
         for its cap the same way ({:.2}x; {} keys): where a key lands depends on the keys \
         before it. Hash mod N moves n/(n+1) of the keys, {:.0}x the ideal.",
        hashed.moved,
        range.moved,
        maglev.moved,
        thousands(maglev.between),
        bounded.moved,
        thousands(bounded.between),
        modulo.moved,
    ));
    report::takeaway(
        "Balanced tokens, jump and rendezvous are even and move the minimum; mod N moves \
         everything.",
    );
    Ok(())
}
