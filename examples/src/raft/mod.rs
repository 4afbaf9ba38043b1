//! Chapter `raft`: dsys-consensus's Raft on a five-node metadata quorum,
//! then on the paper's two log figures (Ongaro & Ousterhout 2014), then
//! through membership changes and a snapshot (Ongaro's thesis, chapter 4).
//!
//! 1. Five controller nodes replicate a Kafka-style metadata log (KRaft,
//!    seed 004; etcd for Kubernetes, seed 001): a leader is elected, three
//!    writes are replicated.
//! 2. The leader crashes, the other four elect a new one, which accepts more
//!    writes; the old leader restarts from what it persisted and catches up,
//!    until all five logs and key-value maps are identical.
//! 3. A linearizable read on a follower that has not yet applied the latest
//!    write (ReadIndex, thesis §6.4).
//! 4. Figure 7: a new leader of term 8 brings six divergent followers in
//!    line, its replication loop written out against the log layer.
//! 5. Figure 8: why a leader commits by counting replicas only entries of
//!    its own term (§5.4.2).
//! 6. Three nodes become five: two join as learners and are promoted once
//!    caught up (a promotion too early is refused).
//! 7. The leader removes itself, steps down once that commits, and the
//!    other four elect a new one.
//! 8. A follower cut off while the leader compacts is restored by
//!    snapshot, sent in chunks (§7).
//! 9. Sections 6-8 in one table.
//!
//! Sections 1-3 run `sim::Simulation` with a fixed seed over a reliable
//! simulated network; 4-5 call the log directly; 6-9 drive `RaftNode`s
//! inside an application of their own. No clocks, no threads: every number
//! printed is the same on every run.
//!
//! This file is the story: what each section shows, checks and prints, in
//! reading order. The machinery that drives it lives beside it:
//! `cluster.rs` (the simulated cluster, stepped until something happens,
//! and elections read off its role changes), `tables.rs` (how nodes,
//! elections and logs are printed) and `logs.rs` (logs built from the
//! terms the paper draws). Sections 6-9 are too long to share this file:
//! their story is `membership.rs`, their machinery `application.rs` (what
//! a service does with each node's outputs), `deployment.rs` (the nodes,
//! the network and time) and `members.rs` (how they are printed).

mod application;
mod cluster;
mod deployment;
mod logs;
mod members;
mod membership;
mod replication;
mod tables;

use dsys_consensus::sim::linearizability::{KvOp, KvResult};
use dsys_consensus::sim::{NetworkConfig, SimConfig, SimEvent, Simulation};
use dsys_consensus::{Entry, Role, Term};

use self::cluster::{Cluster, election, shortest_timeout, timeouts};
use self::logs::{Log, common_prefix, entries_of, log_of, show, stored_terms, terms_of};
use self::replication::{Backoff, replicate};
use self::tables::{print_election, print_logs, show_metadata, ticks};
use crate::report::{self, Res, Table, check, check_eq};

/// Runs the chapter.
pub(crate) fn run() -> Res {
    // Five nodes with the default Raft configuration (election timeouts
    // drawn from [10, 20) ticks, pre-vote and check-quorum on) on a
    // network that delivers every message once.
    let mut config = SimConfig::default();
    config.nodes = NODES;
    config.network = NetworkConfig::reliable(DELAY.0, DELAY.1);
    config.tick_interval = TICK;
    let mut cluster = Cluster::new(Simulation::new(config, SEED)?);
    let first = elect_and_replicate(&mut cluster)?;
    crash_and_rejoin(&mut cluster, first)?;
    follower_read(&mut cluster, first)?;
    figure_7()?;
    figure_8()?;
    membership::run()
}

// --- The setting -------------------------------------------------------------------

/// The simulation's seed: every timeout and message delay derives from it.
const SEED: u64 = 12;

/// Nodes in the quorum, named 1..=5.
const NODES: u64 = 5;

/// Simulation time units per Raft tick (the simulator's default).
const TICK: u64 = 10;

/// Messages take 1 to 5 units: a tenth to half a tick.
const DELAY: (u64, u64) = (1, 5);

/// The client that writes metadata.
const WRITER: u64 = 1;
/// The client that reads it back in section 3.
const READER: u64 = 2;

// --- 1. Election and replication ------------------------------------------------------

fn elect_and_replicate(cluster: &mut Cluster) -> Res<u64> {
    report::section("1. Five controllers elect a leader and replicate metadata");
    check_eq(
        "simulation units per tick",
        &cluster.sim.config().tick_interval,
        &TICK,
    )?;
    report::note(&format!(
        "Five controller nodes replicate a metadata log, as Kafka's KRaft controller quorum does \
         (seed 004) and etcd does for Kubernetes (seed 001). A command records which broker leads \
         a partition: P1=B1 means partition 1 is led by broker 1. Simulation seed {SEED}; a \
         reliable network delivers every message once, {}-{} ticks after it is sent. Every node \
         starts as a follower of term 0, with an election timeout drawn from [10, 20) ticks \
         (section 5.2):",
        ticks(DELAY.0),
        ticks(DELAY.1),
    ));
    let drawn = timeouts(cluster, &[])?;
    let changes = cluster.run_until("the first election", |sim| sim.leader().is_some())?;
    let events = cluster.sim.take_events();
    let first = election(&changes, &events)?;
    let leader = first.winner;
    print_election(cluster, &first, &drawn);

    let (shortest, drew_it) = shortest_timeout(&drawn);
    check_eq("the first leader's term", &first.term, &1)?;
    check_eq("who drew the shortest timeout", &drew_it, &vec![leader])?;
    let votes = (1..=NODES)
        .filter(|&n| cluster.sim.node(n).and_then(|r| r.status().vote) == Some(leader))
        .count();
    report::note(&format!(
        "Node {leader} drew the shortest timeout, {shortest} ticks; its {shortest}th tick came at \
         t={} (the nodes' ticks are out of phase). It won a pre-vote round (thesis 9.6), then the \
         election of term 1, and led at t={} with {votes} of {NODES} votes, its own included. No \
         other node timed out.",
        ticks(first.fired),
        ticks(first.at),
    ));

    // The leader's no-op (section 8) commits first; then three writes.
    cluster.settle("the no-op to be applied everywhere")?;
    let noop = cluster.sim.node(leader).map(|r| r.log().committed());
    check_eq("the no-op's index", &noop, &Some(1))?;
    let start = cluster.sim.time();
    let writes = [(1, 1), (2, 2), (3, 3)];
    let mut last = 0;
    for (partition, broker) in writes {
        last = cluster.put(leader, partition, broker)?;
    }
    check_eq("the last write's index", &last, &4)?;
    cluster.run_until("the leader to commit the writes", |sim| {
        sim.node(leader)
            .is_some_and(|r| r.log().committed() >= last)
    })?;
    let committed_at = cluster.sim.time();
    cluster.settle("the writes to be applied everywhere")?;
    let applied_at = cluster.sim.time();
    for node in 1..=NODES {
        check_eq(
            &format!("node {node}'s metadata after the first writes"),
            cluster.sim.kv(node),
            &writes.into_iter().collect(),
        )?;
    }
    report::note(&format!(
        "At t={} the leader appends P1=B1, P2=B2, P3=B3 at indexes 2-4 (index 1 is its no-op, \
         section 8). It commits them once a majority (3 of 5, itself included) holds them, at \
         t={} (+{} ticks); the followers apply them when the next message from the leader \
         carries the new commit index, all by t={} (+{}):",
        ticks(start),
        ticks(committed_at),
        ticks(committed_at - start),
        ticks(applied_at),
        ticks(applied_at - start),
    ));
    cluster.print_nodes();
    report::takeaway(
        "The first timer to fire wins the votes; a write commits once a majority holds it.",
    );
    Ok(leader)
}

// --- 2. Crash, re-election, rejoin ----------------------------------------------------

fn crash_and_rejoin(cluster: &mut Cluster, old: u64) -> Res {
    report::section("2. The leader crashes, a new one is elected, the old one catches up");
    let crashed_at = cluster.sim.time();
    let drawn = timeouts(cluster, &[old])?;
    cluster.sim.crash(old);
    cluster.changes();
    let changes = cluster.run_until("a new leader", |sim| sim.leader().is_some())?;
    let events = cluster.sim.take_events();
    check(
        "the crash is reported as the old leader stepping down",
        events
            .iter()
            .any(|e| matches!(*e, SimEvent::SteppedDown { node, term: 1, .. } if node == old)),
    )?;
    let second = election(&changes, &events)?;
    let leader = second.winner;
    report::note(&format!(
        "At t={} node {old} crashes. The other four stop hearing heartbeats; a node campaigns \
         once its own timeout passes without one:",
        ticks(crashed_at)
    ));
    print_election(cluster, &second, &drawn);
    let (shortest, drew_it) = shortest_timeout(&drawn);
    check_eq("the second leader's term", &second.term, &2)?;
    check_eq("who drew the shortest timeout", &drew_it, &vec![leader])?;
    let elected_in = second.at - crashed_at;
    report::note(&format!(
        "Node {leader} ({shortest} ticks) timed out first, at t={}, and led term 2 at t={}: {} \
         ticks without a leader. Its log was at least as up to date as a majority's (section \
         5.4.1), so it holds every committed write.",
        ticks(second.fired),
        ticks(second.at),
        ticks(elected_in),
    ));

    // The new leader records two more changes while the old one is down.
    let start = cluster.sim.time();
    cluster.put(leader, 2, 1)?;
    let last = cluster.put(leader, 4, 3)?;
    cluster.settle("the term-2 writes to be applied")?;
    report::note(&format!(
        "At t={} node {leader} moves P2 to B1 and creates P4 on B3, at indexes {}-{last} (its \
         no-op is at {}). 4 of 5 nodes are up, more than a majority, so both commit, by t={}:",
        ticks(start),
        last - 1,
        last - 2,
        ticks(cluster.sim.time()),
    ));
    cluster.print_nodes();

    // The old leader restarts from its storage alone.
    cluster.sim.restart(old);
    cluster.changes();
    let restarted_at = cluster.sim.time();
    let mut table = Table::new(&[
        "at restart",
        "term",
        "voted for",
        "last index",
        "commit",
        "applied",
        "metadata",
    ])
    .numeric(&[1, 3, 4, 5]);
    for node in [old, leader] {
        let status = cluster.sim.node(node).ok_or("a node is down")?.status();
        let what = if node == old { "restarted" } else { "leader" };
        table.row([
            format!("node {node} ({what})"),
            status.term.to_string(),
            status.vote.map_or("-".to_owned(), |v| format!("node {v}")),
            status.last_index.to_string(),
            status.commit.to_string(),
            status.applied.to_string(),
            show_metadata(cluster.sim.kv(node)),
        ]);
    }
    let restarted = cluster
        .sim
        .node(old)
        .ok_or("the old leader is down")?
        .status();
    check_eq("the restarted node's term", &restarted.term, &1)?;
    check_eq("the restarted node's vote", &restarted.vote, &Some(old))?;
    check_eq("the restarted node's last index", &restarted.last_index, &4)?;
    check_eq("the restarted node's applied index", &restarted.applied, &0)?;
    check(
        "its metadata map starts empty",
        cluster.sim.kv(old).is_empty(),
    )?;
    report::note(&format!(
        "At t={} node {old} restarts with only what it persisted:",
        ticks(restarted_at)
    ));
    table.print();

    let changes = cluster.run_until("the old leader to catch up", |sim| {
        sim.node(old)
            .is_some_and(|r| r.log().last_index() == last && r.log().applied() == last)
    })?;
    let caught_up = cluster.sim.time();
    let adopted = changes
        .iter()
        .find(|c| c.node == old && c.term == 2)
        .map(|c| c.time)
        .ok_or("the old leader never learned term 2")?;
    check(
        "the old leader never campaigned",
        changes
            .iter()
            .all(|c| c.node != old || c.role == Role::Follower),
    )?;
    report::note(&format!(
        "Its term, its vote and its log (indexes 1-4) come back from storage; the commit index \
         it last wrote ({}) is behind, and the metadata map is empty until the log is applied \
         again. At t={} (+{}) a term-2 heartbeat from node {leader} makes it a follower; \
         AppendEntries brings indexes 5-{last}, and it has re-applied 1-{last} by t={}: caught \
         up {} ticks after the restart.",
        restarted.commit,
        ticks(adopted),
        ticks(adopted - restarted_at),
        ticks(caught_up),
        ticks(caught_up - restarted_at),
    ));

    cluster.settle("all five to converge")?;
    print_logs(cluster, leader)?;
    cluster.sim.check_logs()?;
    cluster.sim.check_history()?;
    check("no safety violation", cluster.sim.violation().is_none())?;
    report::note(&format!(
        "Identical logs, entry by entry, and identical metadata. check_logs() (log matching), \
         check_history() ({} writes, linearizable) and the checks run after every step (election \
         safety, leader completeness, state machine safety) found nothing.",
        cluster.sim.history().len()
    ));
    report::takeaway(&format!(
        "Losing the leader cost {} ticks (one election timeout); back up, it caught up in {} ticks.",
        ticks(elected_in),
        ticks(caught_up - restarted_at),
    ));
    Ok(())
}

// --- 3. ReadIndex on a follower --------------------------------------------------------

fn follower_read(cluster: &mut Cluster, old: u64) -> Res {
    report::section("3. A linearizable read on a lagging follower (ReadIndex, thesis 6.4)");
    let leader = cluster.leader()?;
    let index = cluster.put(leader, 1, 3)?;
    let write = cluster.sim.last_op().ok_or("the write was not recorded")?;
    cluster.run_until("the write to be acknowledged", |sim| sim.is_complete(write))?;
    let acked_at = cluster.sim.time();
    check(
        "the rejoined node has not applied the write yet",
        cluster
            .sim
            .node(old)
            .is_some_and(|r| r.log().applied() < index),
    )?;
    let local = cluster.sim.kv(old).get(&1).copied();
    let applied_before = cluster.sim.node(old).map(|r| r.log().applied());
    check_eq("the follower's local copy of P1", &local, &Some(1))?;
    report::note(&format!(
        "Node {leader} moves P1 to B3, at index {index}. As soon as the writer has its \
         acknowledgement, a second client asks node {old}, which has not applied index {index} \
         yet, who leads P1:"
    ));

    cluster.sim.get(READER, old, 1)?;
    let read = cluster.sim.last_op().ok_or("the read was not recorded")?;
    let asked_at = cluster.sim.time();
    let read_index = cluster.sim.node(leader).map(|r| r.log().committed());
    cluster.run_until("the read to complete", |sim| sim.is_complete(read))?;
    let answered_at = cluster.sim.time();
    let result = cluster
        .sim
        .history()
        .operations()
        .iter()
        .find(|op| op.id == read)
        .and_then(|op| match (&op.op, &op.completed) {
            (KvOp::Get { .. }, Some((_, KvResult::Read(value)))) => Some(*value),
            _ => None,
        })
        .ok_or("the read has no result")?;
    // Nothing else was proposed, so the leader's commit index, unchanged
    // while the read was confirmed, is the read index.
    check_eq(
        "the leader's commit index while the read was confirmed",
        &cluster.sim.node(leader).map(|r| r.log().committed()),
        &read_index,
    )?;
    check_eq("the read index", &read_index, &Some(index))?;
    check_eq("what the read returns", &result, &Some(3))?;
    cluster.settle("the write to be applied everywhere")?;
    cluster.sim.check_history()?;
    check("no safety violation", cluster.sim.violation().is_none())?;

    let mut table = Table::new(&["t", "what happens"]).numeric(&[0]);
    table
        .row([
            ticks(acked_at),
            format!("node {leader} has applied index {index} (P1=B3); the writer is acknowledged"),
        ])
        .row([
            ticks(asked_at),
            format!(
                "node {old} has applied up to {}: its own copy says P1=B{}",
                applied_before.unwrap_or_default(),
                local.unwrap_or_default()
            ),
        ])
        .row([
            ticks(asked_at),
            format!("the reader asks node {old}; it sends a ReadIndex request to node {leader}"),
        ])
        .row([
            ticks(answered_at),
            format!(
                "node {old} answers P1=B{} (+{} ticks)",
                result.unwrap_or_default(),
                ticks(answered_at - asked_at)
            ),
        ]);
    table.print();
    report::note(&format!(
        "The leader takes its commit index ({index}) as the read index, checks that it still \
         leads with one heartbeat round acknowledged by a majority, and sends the index back; \
         node {old} answers once it has applied that far. Its own copy would have said B1, a \
         value the writer had already seen replaced. check_history() accepts all {} operations.",
        cluster.sim.history().len()
    ));
    report::takeaway(
        "ReadIndex lets any node serve a read no older than the last acknowledged write.",
    );
    Ok(())
}

// --- 4. Figure 7 ---------------------------------------------------------------------

/// The leader of term 8, before it appends its no-op.
const LEADER: [Term; 10] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

/// The leader's term.
const TERM: Term = 8;

/// Figure 7's followers (a)-(f).
const FOLLOWERS: [(&str, &[Term]); 6] = [
    ("(a)", &[1, 1, 1, 4, 4, 5, 5, 6, 6]),
    ("(b)", &[1, 1, 1, 4]),
    ("(c)", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
    ("(d)", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
    ("(e)", &[1, 1, 1, 4, 4, 4, 4]),
    ("(f)", &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
];

fn figure_7() -> Res {
    report::section("4. Figure 7: a new leader and six divergent followers");
    let mut leader = log_of(&LEADER)?;
    // nextIndex starts just past the leader's log when it takes office (11
    // in the paper, as in etcd's becomeLeader); then it appends its no-op.
    let first_next = leader.last_index() + 1;
    leader.append(&[Entry::new(TERM, first_next, "")])?;
    let target = terms_of(&leader)?;
    report::note(&format!(
        "The leader of term {TERM} holds {}, then appends its no-op at {first_next}. It sets every \
         next_index to {first_next} and sends AppendEntries(prev = next - 1, its term, entries \
         from next). A follower that lacks prev refuses, with a hint: its last index <= prev \
         whose term <= prev's term.",
        show(&LEADER),
    ));

    let mut table = Table::new(&[
        "follower",
        "log terms",
        "diverged\nat index",
        "round trips\n(hint)",
        "round trips\n(1 by 1)",
        "entries\nremoved",
        "entries\nadded",
    ])
    .numeric(&[2, 3, 4, 5, 6]);
    table.row(["leader", &show(&target), "", "", "", "", ""]);
    let mut refusals = Vec::new();
    let (mut most_hint, mut most_naive) = (0, 0);
    for (name, terms) in FOLLOWERS {
        let prefix = common_prefix(terms, &target);
        let mut trips = [0; 2];
        for (slot, backoff) in [Backoff::Hint, Backoff::OneByOne].into_iter().enumerate() {
            let mut follower = log_of(terms)?;
            let (taken, refused) = replicate(&leader, &mut follower, first_next, backoff)?;
            trips[slot] = taken;
            check_eq(
                &format!("follower {name}'s log after replication"),
                &terms_of(&follower)?,
                &target,
            )?;
            // Persist what it accepted: storage now holds the leader's log too.
            let batch = follower.take_to_persist();
            follower.storage_mut().append(&batch)?;
            if let Some(last) = batch.last() {
                follower.on_persisted(last.index, last.term);
            }
            check_eq(
                &format!("follower {name}'s persisted log"),
                &stored_terms(&follower)?,
                &target,
            )?;
            if let Backoff::Hint = backoff {
                refusals.extend(refused.into_iter().map(|r| (name, r)));
            }
        }
        let [hint, naive] = trips;
        check(
            &format!("hints take no more round trips than one by one for {name}"),
            hint <= naive,
        )?;
        most_hint = most_hint.max(hint);
        most_naive = most_naive.max(naive);
        table.row([
            name.to_owned(),
            show(terms),
            (prefix + 1).to_string(),
            hint.to_string(),
            naive.to_string(),
            (terms.len() - prefix).to_string(),
            (target.len() - prefix).to_string(),
        ]);
    }
    table.print();
    report::note(
        "Diverged at: the first index where the follower differs from the leader or stops short. \
         A round trip is one AppendEntries and its answer. Every follower ends with the leader's \
         log, in memory and in storage.",
    );

    report::note(
        "Every refusal with hints. All three are (index, term); the probe is the leader's own \
         last entry at or below the hint's index whose term is at most the hint's term:",
    );
    let mut trace = Table::new(&[
        "follower",
        "refused prev",
        "follower's hint",
        "leader's probe",
        "next_index",
    ])
    .numeric(&[4]);
    for (name, refusal) in &refusals {
        trace.row([
            (*name).to_owned(),
            format!("({}, {})", refusal.prev.0, refusal.prev.1),
            format!("({}, {})", refusal.hint.0, refusal.hint.1),
            format!("({}, {})", refusal.next - 1, leader.term(refusal.next - 1)?),
            refusal.next.to_string(),
        ]);
    }
    trace.print();
    report::note(
        "(f) hints (10, 3): it has nothing from terms 4-6, so the leader skips back past all of \
         them, to index 3, in one step. (c) and (d) match at 10 at once: their extra entries are \
         simply overwritten.",
    );

    report::takeaway(&format!(
        "Hints plus the leader's log skip whole terms: {most_hint} round trips at most, against \
         {most_naive} one by one."
    ));
    Ok(())
}

// --- 5. Figure 8 ---------------------------------------------------------------------

/// Whether the node with `log` would vote for S5 of Figure 8, whose log is
/// `1 3` (§5.4.1).
fn votes_for_s5(log: &Log) -> bool {
    log.is_up_to_date(2, 3)
}

fn figure_8() -> Res {
    report::section("5. Figure 8: a leader commits only entries of its own term (section 5.4.2)");
    report::note(
        "Five servers. S1 led term 2 and left index 2 (term 2) on S2 only; S5 led term 3 and \
         wrote its own index 2 (term 3). Now S1 leads term 4 and has appended index 3 (term 4).",
    );
    let mut s1 = log_of(&[1, 2, 4])?;
    let (mut s2, mut s3, s4) = (log_of(&[1, 2])?, log_of(&[1])?, log_of(&[1])?);
    s1.commit_to(1)?;
    let mut table = Table::new(&["action", "committed", "why"]).numeric(&[1]);
    table.row([
        "S1 leads term 4, log 1 2 4",
        &s1.committed().to_string(),
        "index 1 was committed in term 1",
    ]);

    // S1 replicates index 2 to S3: a majority (S1, S2, S3) now holds it.
    check_eq(
        "S3 accepts index 2",
        &s3.maybe_append(1, 1, 1, &entries_of(&[1, 2])[1..])?,
        &Some(2),
    )?;
    let committed = s1.maybe_commit(2, 4);
    check("maybe_commit(2, 4) refuses a term-2 entry", !committed)?;
    check_eq("S1's commit index", &s1.committed(), &1)?;
    let electors = [&s2, &s3, &s4].map(votes_for_s5);
    check(
        "S2, S3 and S4 would all vote for S5",
        electors.iter().all(|&vote| vote),
    )?;
    // What S5 would do as leader of term 5: overwrite index 2 on a majority.
    for (name, log) in [("S2", &s2), ("S3", &s3)] {
        let mut overwritten = log.clone();
        overwritten.maybe_append(1, 1, 0, &[Entry::new(3, 2, "")])?;
        check_eq(
            &format!("S5 overwrites index 2 on {name}"),
            &overwritten.term(2)?,
            &3,
        )?;
    }
    table.row([
        &format!("index 2 on S1-S3: maybe_commit(2, 4) = {committed}"),
        &s1.committed().to_string(),
        "term 2 < 4: S5 (log 1 3) could win",
    ]);

    // S1 replicates its own index 3 to S2 and S3.
    for (name, log) in [("S2", &mut s2), ("S3", &mut s3)] {
        check_eq(
            &format!("{name} accepts index 3"),
            &log.maybe_append(2, 2, 1, &[Entry::new(4, 3, "")])?,
            &Some(3),
        )?;
    }
    let committed = s1.maybe_commit(3, 4);
    check("maybe_commit(3, 4) commits a term-4 entry", committed)?;
    check_eq("S1's commit index", &s1.committed(), &3)?;
    check(
        "S1, S2 and S3 now refuse S5",
        [&s1, &s2, &s3].iter().all(|log| !votes_for_s5(log)),
    )?;
    table.row([
        &format!("index 3 on S1-S3: maybe_commit(3, 4) = {committed}"),
        &s1.committed().to_string(),
        "term 4 on a majority; 2 commits too",
    ]);
    table.print();
    report::note(
        "After row 2, is_up_to_date(2, 3) is true on S2, S3 and S4: S5's last term 3 beats their \
         2, 1 and 1, so S5 can win term 5 and replace index 2 on a majority (Figure 8d). After \
         row 3, S2 and S3 end in term 4 and refuse it, as S1 does: S5 gets 2 votes of 5.",
    );

    report::takeaway(
        "Counting replicas commits only current-term entries; older ones commit beneath them.",
    );
    Ok(())
}
