//! Chapter `crdt`: dsys-crdt on the seeds' G-Counter (seed 003) and their
//! eventual consistency: "if updates stop, eventually all nodes will converge
//! to the same value" (seed 002), the AP side of a partition (seed 001), and
//! "High availability: Eventual + CRDT (Cassandra, DynamoDB)" (seed 003).
//!
//! 1. Three replicas (seoul, tokyo, virginia) count page views. One message is
//!    delivered twice, then a partition cuts virginia off for two rounds while
//!    views keep arriving everywhere, then it heals. The numbers every
//!    replica reads at each step, and what its G-Counter holds.
//! 2. The same rounds with a plain integer: last-write-wins loses views, and
//!    "send +n" either loses the partition's views or counts the duplicate
//!    twice. The G-Counter's join (per-replica maximum) is idempotent.
//! 3. What went over the wire: delta-intervals against whole states, with
//!    the default delta buffer and with a small one; and how the ratio grows
//!    with the number of replicas.
//! 4. Likes and unlikes: why a G-Counter cannot count down, and the
//!    PN-Counter that can.
//! 5. A shopping cart through a partition: a remove concurrent with an add,
//!    in an add-wins OR-Set and in a 2P-Set.
//! 6. The cart again, with crashes: what a replica's disk must hold, and a
//!    restart that ships what was written but not yet sent.
//!
//! This file is the story: what each section shows, checks and prints, in
//! reading order. The machinery that drives it lives beside it:
//! - `script.rs`: the replicas, the page views and the network of each round,
//!   what a correct counter reads after each, section 4's likes and unlikes,
//!   and the cart's operations;
//! - `network.rs`: the network of sections 1 to 5, a few lines so that the
//!   CRDT and the plain-integer replicas of section 2 run on the same rounds:
//!   each round every replica ships, and messages are delivered in a fixed
//!   order until none is left;
//! - `replicas.rs`: a dsys-crdt replica with the bytes it sends, the
//!   plain-integer counters of section 2, and what section 3 measures;
//! - `cart.rs`: playing the cart on an OR-Set and a 2P-Set, and carts in the
//!   simulator;
//! - `format.rs`: how numbers, carts and records are printed.
//!
//! Section 6 runs on dsys-crdt's simulator (`dsys_crdt::sim`), which keeps
//! each replica's disk the way the persistence contract says. Nothing is
//! random, so every number is the same on every run.

mod cart;
mod format;
mod network;
mod replicas;
mod script;

use std::time::Duration;

use dsys_crdt::sim::{Sim, SimConfig};
use dsys_crdt::{GCounter, Lattice, ORSet, PNCounter, SyncConfig};

use crate::report::{self, Res, Table, check, check_eq};
use cart::{add_item, or_set_carts, sim_cart, two_phase_carts};
use format::{against, cart_cell, count, millis, num, record_cell, views_read};
use network::{Counter, replay, sync};
use replicas::{
    AddNode, CrdtNode, LwwNode, entries, final_reads, like_and_unlike, message_sizes, sum,
};
use script::{
    CART, LIKES, NAMES, ROUNDS, SEOUL, TOKYO, VIRGINIA, correct_read, partition_rounds, reachable,
    served, total,
};

/// Runs the chapter.
pub(crate) fn run() -> Res {
    let nodes = partition()?;
    without_a_crdt(&nodes)?;
    bytes(&nodes)?;
    likes()?;
    cart()?;
    restart()?;
    Ok(())
}

// --- 1. A partition ------------------------------------------------------------------

/// Replays the rounds on three G-Counter replicas and prints every step.
fn partition() -> Res<Vec<CrdtNode<GCounter<String>>>> {
    report::section("1. Three replicas count page views through a partition");
    report::note(
        "The seed's GCounter keeps one count per node, increments only its own, reads the sum \
         and merges by taking each node's maximum. Here it is dsys-crdt's GCounter<String> \
         inside a Replica (delta-state anti-entropy, Almeida et al. 2018, Algorithm 2). \
         A page view is `mutate(|c, me| c.increment(me, 1))`; a sync is every replica \
         shipping its peers what they have not acknowledged, as bytes.",
    );
    report::note(
        "Three replicas in a full mesh: seoul, tokyo, virginia. Each round, views arrive at \
         all three, then one sync. In round 2 a retry delivers one seoul -> tokyo message \
         twice. In rounds 3 and 4 virginia is cut off and every message to or from it is \
         lost. Every replica keeps serving, the AP choice (Cassandra, DynamoDB).",
    );

    let mut nodes = CrdtNode::<GCounter<String>>::mesh(&SyncConfig::default())?;
    let mut table = Table::new(&[
        "step",
        "served at s / t / v",
        "true total",
        "seoul reads",
        "tokyo reads",
        "virginia reads",
    ])
    .numeric(&[1, 2, 3, 4, 5]);
    let mut in_partition: Vec<[u64; 4]> = Vec::new();
    let mut redundant_after_duplicate = 0;
    replay(&mut nodes, |step| {
        let round = &ROUNDS[step.round];
        let done = step.round + 1;
        let reads: Vec<i128> = step.nodes.iter().map(Counter::read).collect();
        table.row([
            if step.synced {
                round.sync
            } else {
                round.arrive
            }
            .to_owned(),
            format!(
                "{} / {} / {}",
                count(served(SEOUL, done)),
                count(served(TOKYO, done)),
                count(served(VIRGINIA, done))
            ),
            count(total(done)),
            num(reads[SEOUL]),
            num(reads[TOKYO]),
            num(reads[VIRGINIA]),
        ]);
        for (i, read) in reads.iter().enumerate() {
            let expected = correct_read(i, step.round, step.synced);
            check_eq(
                &format!(
                    "{} reads what reached it (round {}{})",
                    NAMES[i],
                    done,
                    if step.synced { ", synced" } else { "" }
                ),
                read,
                &i128::from(expected),
            )?;
        }
        if step.synced && round.net.cut.is_some() {
            in_partition = step.nodes.iter().map(entries).collect();
        }
        if step.synced && round.net.duplicate.is_some() {
            redundant_after_duplicate = step.nodes[TOKYO].replica.counters().redundant;
        }
        Ok(())
    })?;
    table.print();

    let truth = i128::from(total(ROUNDS.len()));
    for node in &nodes {
        check_eq(
            "every replica reads the true total after the heal",
            &node.read(),
            &truth,
        )?;
    }
    check(
        "tokyo found the duplicated delta-interval redundant",
        redundant_after_duplicate >= 1,
    )?;
    let (cut_at, heal_at) = partition_rounds().ok_or("a partition")?;
    let gap = reachable(SEOUL, heal_at - 1).abs_diff(reachable(VIRGINIA, heal_at - 1));
    check(
        "the two sides disagree during the partition",
        reachable(SEOUL, heal_at - 1) != reachable(VIRGINIA, heal_at - 1),
    )?;
    report::note(&format!(
        "Before the cut every sync brings all three to the true total, the duplicate \
         included (tokyo found the second copy redundant: the join is a maximum). During the \
         partition seoul and tokyo agree with each other, virginia only counts its own new \
         views, and they drift {} apart. Once the partition heals, one sync brings every \
         replica to exactly {}: nothing was lost and nothing counted twice.",
        count(gap),
        num(truth),
    ));

    report::note(&format!(
        "What each G-Counter holds at the end of round {heal_at} (still partitioned) and after \
         the heal: one entry per replica, each only ever raised by its owner. The join keeps \
         the larger of two entries, so an entry can be stale but never wrong.",
    ));
    let mut entries = Table::new(&[
        "replica",
        "when",
        "entry: seoul",
        "entry: tokyo",
        "entry: virginia",
        "value = sum",
    ])
    .numeric(&[2, 3, 4, 5]);
    for (i, e) in in_partition.iter().enumerate() {
        entries.row([
            NAMES[i].to_owned(),
            format!("rounds {}-{}, cut", cut_at + 1, heal_at),
            count(e[0]),
            count(e[1]),
            count(e[2]),
            count(e[3]),
        ]);
    }
    for node in &nodes {
        let state = node.replica.state();
        let mut row = vec![node.replica.id().clone(), "after the heal".to_owned()];
        row.extend(NAMES.map(|name| count(state.get(&name.to_owned()))));
        row.push(num(views_read(state)));
        entries.row(row);
        for (i, name) in NAMES.iter().enumerate() {
            check_eq(
                &format!("{}'s entry for {name}", node.replica.id()),
                &state.get(&(*name).to_owned()),
                &served(i, ROUNDS.len()),
            )?;
        }
    }
    entries.print();
    check_eq(
        "virginia's entry for seoul stayed at what it saw before the cut",
        &in_partition[VIRGINIA][SEOUL],
        &served(SEOUL, cut_at),
    )?;

    report::takeaway(&format!(
        "Each replica counts alone and merges by per-replica max: partitioned, the sides \
         diverge; healed, all read {}.",
        num(truth)
    ));
    Ok(nodes)
}

// --- 2. Without a CRDT ----------------------------------------------------------------

fn without_a_crdt(g_counter: &[CrdtNode<GCounter<String>>]) -> Res {
    report::section("2. The same rounds without a CRDT");
    let truth = i128::from(total(ROUNDS.len()));
    report::note(
        "Three ways to replicate a plain integer, on the same rounds, the same duplicate and \
         the same partition:\n\
         - last write wins: a replica adds its views to its copy, stamps it (the round, then \
         a write order within the round that rotates) and sends the copy; the later stamp \
         wins (the seeds' multi-leader LWW);\n\
         - send +n, at most once: each sync, a replica sends its peers the views it served \
         since the last one, and a receiver adds them;\n\
         - send +n, retry until acked: the same, but a message goes out again every sync \
         until its receiver acknowledges it.",
    );

    let lww = final_reads((0..NAMES.len()).map(LwwNode::new).collect())?;
    let adder = |retry| final_reads((0..NAMES.len()).map(|me| AddNode::new(me, retry)).collect());
    let at_most_once = adder(false)?;
    let at_least_once = adder(true)?;
    let crdt: Vec<i128> = g_counter.iter().map(Counter::read).collect();

    // The views of the second round seoul sent tokyo twice.
    let duplicated = i128::from(ROUNDS[1].views[SEOUL]);
    let lww_lost = truth - lww[0];
    check(
        "last write wins converges, to a wrong number",
        lww.iter().all(|&r| r == lww[0]) && lww_lost > 0,
    )?;
    check_eq(
        "at least once: tokyo counts the duplicate twice, the others are exact",
        &at_least_once,
        &vec![truth, truth + duplicated, truth],
    )?;
    check(
        "at most once: every replica is wrong",
        at_most_once.iter().all(|&r| r != truth),
    )?;
    check(
        "the G-Counter is exact everywhere",
        crdt.iter().all(|&r| r == truth),
    )?;

    let mut table = Table::new(&[
        "replication",
        "seoul reads",
        "tokyo reads",
        "virginia reads",
        "what went wrong",
    ])
    .numeric(&[1, 2, 3]);
    let rows: [(&str, &Vec<i128>, String); 4] = [
        (
            "last write wins",
            &lww,
            format!("others' views overwritten: {} lost", num(lww_lost)),
        ),
        (
            "send +n, at most once",
            &at_most_once,
            "partition's +n lost; duplicate added".to_owned(),
        ),
        (
            "send +n, retry until acked",
            &at_least_once,
            format!("duplicate added: tokyo +{} for good", num(duplicated)),
        ),
        (
            "G-Counter (dsys-crdt)",
            &crdt,
            "nothing: max(x, x) = x".to_owned(),
        ),
    ];
    for (name, reads, wrong) in rows {
        let mut row = vec![name.to_owned()];
        row.extend(reads.iter().map(|&r| against(r, truth)));
        row.push(wrong);
        table.row(row);
    }
    table.print();
    report::note(&format!(
        "True total: {}. In parentheses, how far a replica is off. Last write wins agrees \
         everywhere, on the last writer's count: every round the others adopt it and their \
         own new views are overwritten, partition or not. Sending increments loses them when \
         a message is lost, and adds them twice when a retry meets a message that had arrived \
         after all \
         (the seed's anti-pattern \"No idempotency (retry corruption)\"); tokyo then \
         disagrees with everyone, for good. The G-Counter's join is idempotent, commutative \
         and associative, so loss (retried), duplication and reordering all end in the same \
         state.",
        num(truth),
    ));
    report::takeaway(
        "A counter that merges by addition must deliver exactly once; one that merges by max \
         only needs at least once.",
    );
    Ok(())
}

// --- 3. Bytes ----------------------------------------------------------------------------

fn bytes(default_run: &[CrdtNode<GCounter<String>>]) -> Res {
    report::section("3. What went over the wire: delta-intervals or whole states");
    report::note(
        "Each sync a replica sends each peer a delta-interval: the join of the deltas that \
         peer has not acknowledged (its own views, and what it heard from the third replica, \
         except what came from that very peer). The seed's merge(other) needs the whole \
         state instead. Below, the bytes each replica sent in section 1, against the same \
         messages with the sender's whole state in place of each delta-interval; then the \
         same rounds with the delta buffer bounded at 2 slots (SyncConfig::max_buffered_deltas): \
         a peer that missed deltas the buffer has dropped gets the whole state.",
    );
    let mut config = SyncConfig::default();
    config.max_buffered_deltas = 2;
    let mut small = CrdtNode::<GCounter<String>>::mesh(&config)?;
    replay(&mut small, |_| Ok(()))?;
    let truth = i128::from(total(ROUNDS.len()));
    for node in &small {
        check_eq(
            "a small buffer still converges to the true total",
            &node.read(),
            &truth,
        )?;
    }

    let mut table = Table::new(&[
        "delta buffer",
        "replica",
        "intervals",
        "whole states",
        "acks",
        "joined",
        "redundant",
        "bytes sent",
        "if whole states",
    ])
    .numeric(&[2, 3, 4, 5, 6, 7, 8]);
    let mut totals = Vec::new();
    for (buffer, nodes) in [
        (
            format!(
                "{} (default)",
                count(SyncConfig::default().max_buffered_deltas as u64)
            ),
            default_run,
        ),
        ("2".to_owned(), &small[..]),
    ] {
        let (mut sent, mut whole) = (0, 0);
        for node in nodes {
            let c = node.replica.counters();
            table.row([
                buffer.clone(),
                node.replica.id().clone(),
                count(c.deltas_sent),
                count(c.states_sent),
                count(c.acks_sent),
                count(c.joined),
                count(c.redundant),
                count(node.bytes as u64),
                count(node.whole_state_bytes as u64),
            ]);
            sent += node.bytes;
            whole += node.whole_state_bytes;
        }
        check(
            "delta-intervals never cost more than whole states",
            sent <= whole,
        )?;
        totals.push((sent, whole));
    }
    table.print();
    let states = sum(&small, |c| c.states_sent);
    let default_states = sum(default_run, |c| c.states_sent);
    check_eq(
        "the default buffer never falls back to whole states",
        &default_states,
        &0,
    )?;
    check("the small buffer falls back to whole states", states > 0)?;
    let views = total(ROUNDS.len());
    let (sent, whole) = totals[0];
    report::note(&format!(
        "{} page views, one increment each, went out in {} delta-intervals and {} acks, {} \
         bytes in all: the increments a replica makes between two syncs share one buffer \
         slot, and a sync joins the slots a peer lacks into one entry per replica it has news \
         of. With three replicas a whole state is only three entries, and an interval relays \
         what its sender heard from the third replica, stale entries included (a received \
         interval is buffered whole, not just its new part), so the intervals save little \
         here: {} bytes against {} ({:.0}%). With the buffer bounded at 2 slots, a replica \
         holding more slots than that which a peer has not acknowledged (the peer on the \
         other side of the partition, after two syncs) drops the oldest ({} dropped in all) \
         and sends that peer its whole state instead: {} whole-state messages, the same final \
         counts.",
        count(views),
        count(sum(default_run, |c| c.deltas_sent)),
        count(sum(default_run, |c| c.acks_sent)),
        count(sent as u64),
        count(sent as u64),
        count(whole as u64),
        100.0 * sent as f64 / whole as f64,
        count(sum(&small, |c| c.evicted)),
        count(states),
    ));

    report::note(
        "Where deltas pay: the whole state grows with the number of replicas, a delta does \
         not. One more page view at one of N edge replicas (ids pop-0000...), every replica \
         having counted about a million views:",
    );
    let mut scale = Table::new(&[
        "replicas",
        "whole state message",
        "delta message",
        "delta / whole",
    ])
    .numeric(&[0, 1, 2, 3]);
    let mut previous_ratio = f64::INFINITY;
    for n in [3usize, 30, 300, 3000] {
        let (whole, one) = message_sizes(n);
        let ratio = one as f64 / whole as f64;
        check(
            "the delta's share shrinks as replicas are added",
            ratio < previous_ratio,
        )?;
        previous_ratio = ratio;
        scale.row([
            count(n as u64),
            format!("{} B", count(whole as u64)),
            format!("{one} B"),
            format!("{:.2}%", 100.0 * ratio),
        ]);
    }
    scale.print();
    report::takeaway(
        "Deltas make a sync cost what changed, not what exists: little for three replicas, a \
         lot for three thousand.",
    );
    Ok(())
}

// --- 4. Likes and unlikes ---------------------------------------------------------------

fn likes() -> Res {
    report::section("4. Likes and unlikes: the PN-Counter");
    // A G-Counter cannot count down: lower an entry, and the join puts the
    // old value back from any replica that still has it.
    let theirs: GCounter<String> = [("seoul".to_owned(), 5)].into_iter().collect();
    let mut lowered: GCounter<String> = [("seoul".to_owned(), 4)].into_iter().collect();
    lowered.join(&theirs);
    check_eq(
        "a lowered G-Counter entry comes back at the join",
        &lowered.value(),
        &5,
    )?;
    report::note(
        "An unlike cannot lower a G-Counter: if seoul's entry went from 5 down to 4, the next \
         join with a replica still holding 5 would take the maximum, 5, and the unlike would \
         be gone. A PN-Counter keeps two G-Counters, likes (P) and unlikes (N), both only \
         growing, and reads P - N. The same three replicas, virginia cut off for one round, \
         then healed:",
    );

    let mut nodes = CrdtNode::<PNCounter<String>>::mesh(&SyncConfig::default())?;
    let mut table = Table::new(&[
        "step",
        "likes",
        "unlikes",
        "true P - N",
        "seoul reads",
        "tokyo reads",
        "virginia reads",
    ])
    .numeric(&[1, 2, 3, 4, 5, 6]);
    let (mut likes, mut unlikes) = (0u64, 0u64);
    let mut virginia_cut_off = None;
    for (arrive, synced_label, net, events) in LIKES {
        let (up, down) = like_and_unlike(&mut nodes, events);
        likes += up;
        unlikes += down;
        let truth = i128::from(likes) - i128::from(unlikes);
        for (label, synced) in [(arrive, false), (synced_label, true)] {
            if synced {
                sync(&mut nodes, net)?;
            }
            let reads = nodes.iter().map(|n| n.replica.state().value());
            if synced && net.cut == Some(VIRGINIA) {
                virginia_cut_off = Some(nodes[VIRGINIA].replica.state().value());
            }
            let mut row = vec![label.to_owned(), count(likes), count(unlikes), num(truth)];
            row.extend(reads.map(num));
            table.row(row);
        }
    }
    table.print();
    let truth = i128::from(likes) - i128::from(unlikes);
    check(
        "virginia read a negative count while cut off",
        virginia_cut_off.is_some_and(|read| read < 0),
    )?;
    for node in &nodes {
        let state = node.replica.state();
        check_eq("P - N after the heal", &state.value(), &truth)?;
        check_eq(
            "P counts the likes",
            &state.increments().value(),
            &u128::from(likes),
        )?;
        check_eq(
            "N counts the unlikes",
            &state.decrements().value(),
            &u128::from(unlikes),
        )?;
    }
    report::note(&format!(
        "Cut off, virginia saw more unlikes than likes and read a negative count; every \
         replica now holds P = {} and N = {} and reads {}.",
        count(likes),
        count(unlikes),
        num(truth),
    ));
    report::takeaway(
        "To count down without coordination, count the downs: two grow-only counters, read as \
         a difference.",
    );
    Ok(())
}

// --- 5. A cart --------------------------------------------------------------------------

fn cart() -> Res {
    report::section("5. A shopping cart: a remove meets a concurrent add");
    report::note(
        "The seeds' other multi-leader example is a shopping cart (Dynamo; the clocks chapter \
         keeps its concurrent versions as siblings). A set CRDT merges them instead. One \
         shopper, three replicas, virginia cut off in round 2: seoul removes the pen while \
         virginia, which has not seen the remove, adds the pen again and a mug. Each round \
         ends with one sync. Two set types, the same operations:\n\
         - OR-Set (dsys-crdt ORSet, add wins): each add tags the item with a fresh dot, and \
         a remove deletes only the dots it has seen;\n\
         - 2P-Set (TwoPSet): a remove leaves a tombstone, and a tombstoned item never comes \
         back.",
    );
    let or_set = or_set_carts()?;
    let two_phase = two_phase_carts()?;

    let mut table = Table::new(&["after", "set", "seoul", "tokyo", "virginia"]);
    for (i, (label, _, _)) in CART.iter().enumerate() {
        for (name, carts) in [("OR-Set", &or_set), ("2P-Set", &two_phase)] {
            let mut row = vec![
                if name == "OR-Set" { label } else { "" }.to_owned(),
                name.to_owned(),
            ];
            row.extend(carts[i].iter().map(|c| cart_cell(c)));
            table.row(row);
        }
    }
    table.print();

    let items = |list: &[&str]| -> Vec<String> { list.iter().map(|s| (*s).to_owned()).collect() };
    let everywhere = |list: &[&str]| [items(list), items(list), items(list)];
    check_eq(
        "OR-Set in the partition: seoul's side removed the pen, virginia re-added it",
        &or_set[1],
        &[
            items(&["book"]),
            items(&["book"]),
            items(&["book", "mug", "pen"]),
        ],
    )?;
    check_eq(
        "OR-Set after the heal: the concurrent add wins",
        &or_set[2],
        &everywhere(&["mug", "pen"]),
    )?;
    check_eq(
        "OR-Set: a removed item can be added again",
        &or_set[3],
        &everywhere(&["book", "mug", "pen"]),
    )?;
    check_eq(
        "2P-Set: the pen's tombstone wins, and the book stays removed",
        &two_phase[3],
        &everywhere(&["mug"]),
    )?;
    report::note(
        "After the heal the OR-Set keeps the pen: seoul's remove deleted the dot it had seen, \
         not the dot virginia's concurrent add created, so the add wins, everywhere. A remove that \
         has seen the add (tokyo's remove of the book in round 3) removes it everywhere, and \
         the book can come back in round 4. The 2P-Set loses the re-added pen to seoul's \
         tombstone, and refuses the book for good.",
    );
    report::takeaway(
        "Observed-remove: a remove cancels only the adds it has seen, so a concurrent add \
         survives and no item is banned forever.",
    );
    Ok(())
}

// --- 6. Crashes ---------------------------------------------------------------------------

fn restart() -> Res {
    report::section("6. A replica crashes: what its disk must hold");
    report::note(
        "A replica keeps its state in memory; a crash loses it. dsys-crdt's contract \
         (the Replica docs) says what the application must write: the state and an \
         incarnation number, in one write, after every change (an update, or a join of \
         what a peer sent) and before sending anything, acks included, or telling the \
         shopper the update is done. A crash may then lose only changes nobody saw. A \
         restart is Replica::restore from the record: the replica runs as the next \
         incarnation, so acks meant for its earlier life cannot vouch for its new \
         deltas, and it ships its whole state to every peer first, so an update that \
         was written but not yet shipped still goes out.",
    );
    report::note(
        "The cart of section 5 on dsys-crdt's simulator (dsys_crdt::sim): three \
         replicas, every message arriving 20 ms after it is sent, a ship every 100 ms, \
         and a disk per replica that the simulator writes as the contract says:",
    );
    let mut sim = Sim::<ORSet<u64, String>>::new(
        SimConfig::reliable(NAMES.len(), Duration::from_millis(20)),
        6,
    )?;
    let mut table = Table::new(&["time", "what happens", "seoul", "tokyo", "virginia"]);
    let mut row = |sim: &Sim<ORSet<u64, String>>, what: &str| {
        table.row([
            format!("{} ms", millis(sim.now())),
            what.to_owned(),
            sim_cart(sim, SEOUL),
            sim_cart(sim, TOKYO),
            sim_cart(sim, VIRGINIA),
        ]);
    };

    sim.mutate(SEOUL, add_item("book")).ok_or("seoul is up")?;
    row(&sim, "seoul adds book and writes it");
    sim.run_for(Duration::from_millis(200));
    row(&sim, "a ship later everyone has it");
    sim.partition(&[VIRGINIA], &[SEOUL, TOKYO]);
    sim.mutate(TOKYO, add_item("pen")).ok_or("tokyo is up")?;
    sim.crash(TOKYO);
    row(
        &sim,
        "virginia cut off; tokyo adds pen, writes it, and crashes before its next ship",
    );
    sim.mutate_then_crash(SEOUL, add_item("lamp"))
        .ok_or("seoul is up")?;
    row(&sim, "seoul adds lamp and crashes before writing it");
    sim.mutate(VIRGINIA, add_item("mug"))
        .ok_or("virginia is up")?;
    sim.run_for(Duration::from_millis(300));
    row(&sim, "virginia, alone, adds mug");
    let lamp_on_disk = sim
        .record(SEOUL)
        .is_some_and(|r| r.state.contains(&"lamp".to_owned()));
    sim.restart(SEOUL);
    sim.restart(TOKYO);
    row(&sim, "seoul and tokyo restart from their disks");
    sim.run_for(Duration::from_millis(200));
    row(&sim, "a ship later: tokyo's restored state reached seoul");
    sim.heal();
    let took = sim
        .run_until_converged(Duration::from_secs(5))
        .ok_or("the carts never converged")?;
    row(
        &sim,
        &format!(
            "healed; the same cart everywhere {} ms later",
            took.as_millis()
        ),
    );
    table.print();

    let expected = ["book", "mug", "pen"].map(str::to_owned).to_vec();
    for i in [SEOUL, TOKYO, VIRGINIA] {
        let cart: Vec<String> = sim.state(i).ok_or("up")?.iter().cloned().collect();
        check_eq(
            "every cart holds what was written, and only that",
            &cart,
            &expected,
        )?;
    }
    check(
        "the unwritten lamp was never on seoul's disk",
        !lamp_on_disk,
    )?;

    let mut disks = Table::new(&[
        "replica",
        "incarnation",
        "record on disk",
        "whole states sent since its start",
        "deltas sent since its start",
    ])
    .numeric(&[1, 3, 4]);
    for (i, name) in NAMES.iter().enumerate() {
        let replica = sim.replica(i).ok_or("up")?;
        let record = sim.record(i).ok_or("every replica has written")?;
        disks.row([
            (*name).to_owned(),
            count(replica.incarnation()),
            record_cell(record),
            count(replica.counters().states_sent),
            count(replica.counters().deltas_sent),
        ]);
    }
    disks.print();
    let tokyo = sim.replica(TOKYO).ok_or("up")?;
    check_eq(
        "tokyo runs as its second incarnation",
        &tokyo.incarnation(),
        &1,
    )?;
    check(
        "tokyo shipped its whole restored state",
        tokyo.counters().states_sent >= 2,
    )?;
    report::note(
        "The pen was on tokyo's disk but in no message when tokyo crashed. Restored, \
         tokyo ran as incarnation 1 and sent each peer its whole state, so seoul had the \
         pen a ship later and virginia once the partition healed. The lamp never \
         reached seoul's disk: seoul's shopper was never told it was in the cart, no \
         peer saw it, and it is gone everywhere. Had tokyo sent the pen before writing \
         it, a crash could have left the peers holding a dot of tokyo's that tokyo no \
         longer knew, to be issued again for another item.",
    );
    report::takeaway(
        "Write the state before anything leaves; restart as a new incarnation from what \
         was written, and ship it whole.",
    );
    Ok(())
}
