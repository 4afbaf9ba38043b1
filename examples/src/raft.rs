//! Chapter `raft`: dsys-consensus's Raft on a five-node metadata quorum,
//! then on the paper's two log figures (Ongaro & Ousterhout 2014).
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
//!
//! Sections 1-3 run `sim::Simulation` with a fixed seed over a reliable
//! simulated network; 4-5 call the log directly. No clocks, no threads:
//! every number printed is the same on every run.

use std::collections::BTreeMap;

use dsys_consensus::sim::linearizability::{KvOp, KvResult};
use dsys_consensus::sim::{NetworkConfig, SimConfig, SimEvent, Simulation};
use dsys_consensus::{Entry, Index, MemStorage, RaftLog, Role, Storage, Term};

use crate::report::{self, Res, Table, check, check_eq};

/// One node's log, over in-memory storage; nodes are named by number.
type Log = RaftLog<MemStorage<u64>>;

/// Runs the chapter.
pub(crate) fn run() -> Res {
    let mut story = Story::new();
    let first = elect_and_replicate(&mut story)?;
    crash_and_rejoin(&mut story, first)?;
    follower_read(&mut story, first)?;
    figure_7()?;
    figure_8()?;
    Ok(())
}

// --- The simulated cluster ---------------------------------------------------------

/// The simulation's seed: every timeout and message delay derives from it.
const SEED: u64 = 12;

/// Nodes in the quorum, named 1..=5.
const NODES: u64 = 5;

/// Simulation time units per Raft tick (the simulator's default).
const TICK: u64 = 10;

/// Messages take 1 to 5 units: a tenth to half a tick.
const DELAY: (u64, u64) = (1, 5);

/// Longest any step of the story may take, in units (200 ticks).
const PATIENCE: u64 = 2_000;

/// The client that writes metadata.
const WRITER: u64 = 1;
/// The client that reads it back in section 3.
const READER: u64 = 2;

/// A metadata record: partition `P<key>` is led by broker `B<value>`.
type Metadata = BTreeMap<u64, u64>;

/// `P1=B1 P2=B2`: a node's key-value map as partition leaders.
fn show_metadata(kv: &Metadata) -> String {
    if kv.is_empty() {
        return "(empty)".to_owned();
    }
    kv.iter()
        .map(|(partition, broker)| format!("P{partition}=B{broker}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Simulation time in ticks, one decimal: `10.3`.
fn ticks(units: u64) -> String {
    format!("{}.{}", units / TICK, units % TICK)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

/// A node changed role or term.
struct Change {
    time: u64,
    node: u64,
    role: Role,
    term: Term,
}

/// The simulation and the changes of role seen while driving it.
struct Story {
    sim: Simulation,
    seen: BTreeMap<u64, (Role, Term)>,
}

impl Story {
    fn new() -> Self {
        let mut config = SimConfig::default();
        config.nodes = NODES;
        config.network = NetworkConfig::reliable(DELAY.0, DELAY.1);
        config.tick_interval = TICK;
        let mut story = Self {
            sim: Simulation::new(config, SEED).expect("a valid simulator configuration"),
            seen: BTreeMap::new(),
        };
        story.changes();
        story
    }

    /// Role and term changes since the last look.
    fn changes(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for node in 1..=NODES {
            let Some(raft) = self.sim.node(node) else {
                self.seen.remove(&node);
                continue;
            };
            let now = (raft.role(), raft.term());
            if self.seen.insert(node, now) != Some(now) {
                changes.push(Change {
                    time: self.sim.time(),
                    node,
                    role: now.0,
                    term: now.1,
                });
            }
        }
        changes
    }

    /// Steps until `done` holds, for at most [`PATIENCE`]; returns the
    /// role changes on the way. A safety violation stops the story.
    fn run_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&Simulation) -> bool,
    ) -> Res<Vec<Change>> {
        let deadline = self.sim.time() + PATIENCE;
        let mut changes = Vec::new();
        while !done(&self.sim) {
            if self.sim.time() >= deadline {
                return Err(format!(
                    "{what}: not within {} ticks at t={}{}",
                    PATIENCE / TICK,
                    ticks(self.sim.time()),
                    self.sim.describe()
                )
                .into());
            }
            self.sim.step();
            changes.extend(self.changes());
            if let Some(violation) = self.sim.violation() {
                return Err(violation.clone().into());
            }
        }
        Ok(changes)
    }

    /// Steps until every up node has applied the leader's whole log.
    fn settle(&mut self, what: &str) -> Res<Vec<Change>> {
        self.run_until(what, Simulation::converged)
    }

    fn leader(&self) -> Res<u64> {
        Ok(self.sim.leader().ok_or("no leader")?)
    }

    /// A table row for `node`: role, term, last index, commit, applied,
    /// metadata.
    fn row(&self, node: u64) -> [String; 7] {
        match self.sim.node(node) {
            Some(raft) => {
                let status = raft.status();
                [
                    format!("node {node}"),
                    role_name(status.role).to_owned(),
                    status.term.to_string(),
                    status.last_index.to_string(),
                    status.commit.to_string(),
                    status.applied.to_string(),
                    show_metadata(self.sim.kv(node)),
                ]
            }
            None => [
                format!("node {node}"),
                "down".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        }
    }

    /// Every node's state, one row each.
    fn print_nodes(&self) {
        let mut table = Table::new(&[
            "node",
            "role",
            "term",
            "last index",
            "commit",
            "applied",
            "metadata (partition=leader broker)",
        ])
        .numeric(&[2, 3, 4, 5]);
        for node in 1..=NODES {
            table.row(self.row(node));
        }
        table.print();
    }

    /// Client [`WRITER`] writes `P<partition>=B<broker>` through `leader`;
    /// returns the entry's index.
    fn put(&mut self, leader: u64, partition: u64, broker: u64) -> Res<Index> {
        Ok(self.sim.put(WRITER, leader, partition, broker)?)
    }

    /// `node`'s election timeout, in ticks.
    fn timeout(&self, node: u64) -> Res<u32> {
        Ok(self
            .sim
            .node(node)
            .ok_or_else(|| format!("node {node} is down"))?
            .randomized_election_timeout())
    }
}

/// One election, read off the role changes and the simulator's events.
struct Election {
    /// When each node that campaigned first timed out.
    timed_out: BTreeMap<u64, u64>,
    winner: u64,
    term: Term,
    /// When the winner's timer fired.
    fired: u64,
    /// When it became leader.
    at: u64,
}

/// The one election in `changes` and `events`; an error unless exactly one
/// leader was elected and only it campaigned, the story the chapter tells.
fn election(changes: &[Change], events: &[SimEvent]) -> Res<Election> {
    let mut timed_out = BTreeMap::new();
    for change in changes {
        if matches!(change.role, Role::PreCandidate | Role::Candidate) {
            timed_out.entry(change.node).or_insert(change.time);
        }
    }
    let elected: Vec<_> = events
        .iter()
        .filter_map(|event| match *event {
            SimEvent::Elected {
                time, node, term, ..
            } => Some((node, term, time)),
            SimEvent::SteppedDown { .. } => None,
        })
        .collect();
    check_eq("leaders elected in one election", &elected.len(), &1)?;
    let (winner, term, at) = elected[0];
    // A clean election: only the winner's timer ran out.
    check_eq(
        &format!("nodes that campaigned for term {term}"),
        &timed_out.keys().copied().collect::<Vec<_>>(),
        &vec![winner],
    )?;
    let path: Vec<Role> = changes
        .iter()
        .filter(|c| c.node == winner && c.term <= term)
        .map(|c| c.role)
        .skip_while(|&role| role == Role::Follower)
        .collect();
    check_eq(
        &format!("node {winner}'s way to leading term {term}"),
        &path,
        &vec![Role::PreCandidate, Role::Candidate, Role::Leader],
    )?;
    let fired = timed_out
        .get(&winner)
        .copied()
        .ok_or("the winner never timed out")?;
    Ok(Election {
        timed_out,
        winner,
        term,
        fired,
        at,
    })
}

/// The election timeout of every up node but `except`, in ticks.
fn timeouts(story: &Story, except: &[u64]) -> Res<BTreeMap<u64, u32>> {
    (1..=NODES)
        .filter(|node| !except.contains(node))
        .map(|node| Ok((node, story.timeout(node)?)))
        .collect()
}

/// The shortest timeout and the nodes that drew it.
fn shortest_timeout(timeouts: &BTreeMap<u64, u32>) -> (u32, Vec<u64>) {
    let shortest = timeouts.values().min().copied().unwrap_or_default();
    let nodes = timeouts
        .iter()
        .filter(|&(_, &timeout)| timeout == shortest)
        .map(|(&node, _)| node)
        .collect();
    (shortest, nodes)
}

/// The table of an election: each node's timeout, when it timed out, whom
/// it voted for.
fn print_election(story: &Story, election: &Election, timeouts: &BTreeMap<u64, u32>) {
    let mut table = Table::new(&[
        "node",
        "election timeout",
        "timed out at",
        "term",
        "voted for",
        "role",
    ])
    .numeric(&[1, 2, 3]);
    for node in 1..=NODES {
        let Some(raft) = story.sim.node(node) else {
            table.row([
                format!("node {node}"),
                "down".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            continue;
        };
        let status = raft.status();
        table.row([
            format!("node {node}"),
            timeouts
                .get(&node)
                .map_or(String::new(), |t| format!("{t} ticks")),
            election
                .timed_out
                .get(&node)
                .map_or("-".to_owned(), |&t| format!("t={}", ticks(t))),
            status.term.to_string(),
            status
                .vote
                .map_or("-".to_owned(), |vote| format!("node {vote}")),
            role_name(status.role).to_owned(),
        ]);
    }
    table.print();
}

// --- 1. Election and replication ------------------------------------------------------

fn elect_and_replicate(story: &mut Story) -> Res<u64> {
    report::section("1. Five controllers elect a leader and replicate metadata");
    check_eq(
        "simulation units per tick",
        &story.sim.config().tick_interval,
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
    let drawn = timeouts(story, &[])?;
    let changes = story.run_until("the first election", |sim| sim.leader().is_some())?;
    let events = story.sim.take_events();
    let first = election(&changes, &events)?;
    let leader = first.winner;
    print_election(story, &first, &drawn);

    let (shortest, drew_it) = shortest_timeout(&drawn);
    check_eq("the first leader's term", &first.term, &1)?;
    check_eq("who drew the shortest timeout", &drew_it, &vec![leader])?;
    let votes = (1..=NODES)
        .filter(|&n| story.sim.node(n).and_then(|r| r.status().vote) == Some(leader))
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
    story.settle("the no-op to be applied everywhere")?;
    let noop = story.sim.node(leader).map(|r| r.log().committed());
    check_eq("the no-op's index", &noop, &Some(1))?;
    let start = story.sim.time();
    let writes = [(1, 1), (2, 2), (3, 3)];
    let mut last = 0;
    for (partition, broker) in writes {
        last = story.put(leader, partition, broker)?;
    }
    check_eq("the last write's index", &last, &4)?;
    story.run_until("the leader to commit the writes", |sim| {
        sim.node(leader)
            .is_some_and(|r| r.log().committed() >= last)
    })?;
    let committed_at = story.sim.time();
    story.settle("the writes to be applied everywhere")?;
    let applied_at = story.sim.time();
    for node in 1..=NODES {
        check_eq(
            &format!("node {node}'s metadata after the first writes"),
            story.sim.kv(node),
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
    story.print_nodes();
    report::takeaway(
        "The first timer to fire wins the votes; a write commits once a majority holds it.",
    );
    Ok(leader)
}

// --- 2. Crash, re-election, rejoin ----------------------------------------------------

fn crash_and_rejoin(story: &mut Story, old: u64) -> Res {
    report::section("2. The leader crashes, a new one is elected, the old one catches up");
    let crashed_at = story.sim.time();
    let drawn = timeouts(story, &[old])?;
    story.sim.crash(old);
    story.changes();
    let changes = story.run_until("a new leader", |sim| sim.leader().is_some())?;
    let events = story.sim.take_events();
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
    print_election(story, &second, &drawn);
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
    let start = story.sim.time();
    story.put(leader, 2, 1)?;
    let last = story.put(leader, 4, 3)?;
    story.settle("the term-2 writes to be applied")?;
    report::note(&format!(
        "At t={} node {leader} moves P2 to B1 and creates P4 on B3, at indexes {}-{last} (its \
         no-op is at {}). 4 of 5 nodes are up, more than a majority, so both commit, by t={}:",
        ticks(start),
        last - 1,
        last - 2,
        ticks(story.sim.time()),
    ));
    story.print_nodes();

    // The old leader restarts from its storage alone.
    story.sim.restart(old);
    story.changes();
    let restarted_at = story.sim.time();
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
        let status = story.sim.node(node).ok_or("a node is down")?.status();
        let what = if node == old { "restarted" } else { "leader" };
        table.row([
            format!("node {node} ({what})"),
            status.term.to_string(),
            status.vote.map_or("-".to_owned(), |v| format!("node {v}")),
            status.last_index.to_string(),
            status.commit.to_string(),
            status.applied.to_string(),
            show_metadata(story.sim.kv(node)),
        ]);
    }
    let restarted = story
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
        story.sim.kv(old).is_empty(),
    )?;
    report::note(&format!(
        "At t={} node {old} restarts with only what it persisted:",
        ticks(restarted_at)
    ));
    table.print();

    let changes = story.run_until("the old leader to catch up", |sim| {
        sim.node(old)
            .is_some_and(|r| r.log().last_index() == last && r.log().applied() == last)
    })?;
    let caught_up = story.sim.time();
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

    story.settle("all five to converge")?;
    print_logs(story, leader)?;
    story.sim.check_logs()?;
    story.sim.check_history()?;
    check("no safety violation", story.sim.violation().is_none())?;
    report::note(&format!(
        "Identical logs, entry by entry, and identical metadata. check_logs() (log matching), \
         check_history() ({} writes, linearizable) and the checks run after every step (election \
         safety, leader completeness, state machine safety) found nothing.",
        story.sim.history().len()
    ));
    report::takeaway(&format!(
        "Losing the leader cost {} ticks (one election timeout); back up, it caught up in {} ticks.",
        ticks(elected_in),
        ticks(caught_up - restarted_at),
    ));
    Ok(())
}

/// Every node's log and state machine, checked identical to the leader's.
fn print_logs(story: &Story, leader: u64) -> Res {
    let reference = story.sim.node(leader).ok_or("the leader is down")?;
    let reference = reference
        .log()
        .slice(1, reference.log().last_index() + 1, u64::MAX)?;
    let mut table = Table::new(&[
        "node",
        "role",
        "term",
        "log (term per index)",
        "commit",
        "applied",
        "metadata",
    ])
    .numeric(&[2, 4, 5]);
    for node in 1..=NODES {
        let raft = story
            .sim
            .node(node)
            .ok_or_else(|| format!("node {node} is down"))?;
        let log = raft.log().slice(1, raft.log().last_index() + 1, u64::MAX)?;
        check_eq(&format!("node {node}'s log"), &log, &reference)?;
        check_eq(
            &format!("node {node}'s metadata"),
            story.sim.kv(node),
            story.sim.kv(leader),
        )?;
        let status = raft.status();
        table.row([
            format!("node {node}"),
            role_name(status.role).to_owned(),
            status.term.to_string(),
            show(&log.iter().map(|e| e.term).collect::<Vec<_>>()),
            status.commit.to_string(),
            status.applied.to_string(),
            show_metadata(story.sim.kv(node)),
        ]);
    }
    report::note(&format!("All five at t={}:", ticks(story.sim.time())));
    table.print();
    Ok(())
}

// --- 3. ReadIndex on a follower --------------------------------------------------------

fn follower_read(story: &mut Story, old: u64) -> Res {
    report::section("3. A linearizable read on a lagging follower (ReadIndex, thesis 6.4)");
    let leader = story.leader()?;
    let index = story.put(leader, 1, 3)?;
    let write = story.sim.last_op().ok_or("the write was not recorded")?;
    story.run_until("the write to be acknowledged", |sim| sim.is_complete(write))?;
    let acked_at = story.sim.time();
    check(
        "the rejoined node has not applied the write yet",
        story
            .sim
            .node(old)
            .is_some_and(|r| r.log().applied() < index),
    )?;
    let local = story.sim.kv(old).get(&1).copied();
    let applied_before = story.sim.node(old).map(|r| r.log().applied());
    check_eq("the follower's local copy of P1", &local, &Some(1))?;
    report::note(&format!(
        "Node {leader} moves P1 to B3, at index {index}. As soon as the writer has its \
         acknowledgement, a second client asks node {old}, which has not applied index {index} \
         yet, who leads P1:"
    ));

    story.sim.get(READER, old, 1)?;
    let read = story.sim.last_op().ok_or("the read was not recorded")?;
    let asked_at = story.sim.time();
    let read_index = story.sim.node(leader).map(|r| r.log().committed());
    story.run_until("the read to complete", |sim| sim.is_complete(read))?;
    let answered_at = story.sim.time();
    let result = story
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
        &story.sim.node(leader).map(|r| r.log().committed()),
        &read_index,
    )?;
    check_eq("the read index", &read_index, &Some(index))?;
    check_eq("what the read returns", &result, &Some(3))?;
    story.settle("the write to be applied everywhere")?;
    story.sim.check_history()?;
    check("no safety violation", story.sim.violation().is_none())?;

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
        story.sim.history().len()
    ));
    report::takeaway(
        "ReadIndex lets any node serve a read no older than the last acknowledged write.",
    );
    Ok(())
}

// --- Logs, for the figures -----------------------------------------------------------

/// A log holding one entry per term in `terms` (indexes 1, 2, ...), all of
/// them persisted: what a node finds on disk when it restarts.
fn log_of(terms: &[Term]) -> Res<Log> {
    let mut storage = MemStorage::new(vec![1, 2, 3, 4, 5]);
    storage.append(&entries_of(terms))?;
    Ok(RaftLog::new(storage))
}

fn entries_of(terms: &[Term]) -> Vec<Entry> {
    (1..)
        .zip(terms)
        .map(|(index, &term)| Entry::new(term, index, ""))
        .collect()
}

/// The term at every index of `log`, persisted or not.
fn terms_of(log: &Log) -> Res<Vec<Term>> {
    Ok((log.first_index()..=log.last_index())
        .map(|index| log.term(index))
        .collect::<Result<_, _>>()?)
}

/// The terms of the persisted log.
fn stored_terms(log: &Log) -> Res<Vec<Term>> {
    let storage = log.storage();
    Ok((storage.first_index()..=storage.last_index())
        .map(|index| storage.term(index))
        .collect::<Result<_, _>>()?)
}

/// `1 1 1 4 4`: one term per index, as the paper draws a log.
fn show(terms: &[Term]) -> String {
    terms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// How many leading indexes two logs agree on.
fn common_prefix(a: &[Term], b: &[Term]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
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

/// How the leader backs off when a follower refuses AppendEntries.
#[derive(Clone, Copy)]
enum Backoff {
    /// Read the follower's `(index, term)` hint against the leader's log.
    Hint,
    /// `next_index -= 1`, as in the paper's basic algorithm.
    OneByOne,
}

/// One refused AppendEntries and where the leader goes next.
struct Refusal {
    /// The `(prevLogIndex, prevLogTerm)` the follower did not hold.
    prev: (Index, Term),
    /// The follower's hint: its largest index at or below `prev.0` whose
    /// term is at most `prev.1`, with that term.
    hint: (Index, Term),
    /// The leader's next `next_index`.
    next: Index,
}

/// The leader's replication loop for one follower, from `next` until the
/// follower accepts. Returns the round trips taken and the refusals.
fn replicate(
    leader: &Log,
    follower: &mut Log,
    mut next: Index,
    backoff: Backoff,
) -> Res<(usize, Vec<Refusal>)> {
    let last = leader.last_index();
    let mut refusals = Vec::new();
    for trip in 1..=last + 1 {
        let prev = next - 1;
        let prev_term = leader.term(prev)?;
        let entries = leader.slice(next, last + 1, u64::MAX)?;
        // Commit index 0: this section is about matching, not committing.
        if let Some(last_new) = follower.maybe_append(prev, prev_term, 0, &entries)? {
            check_eq("the follower's last new index", &last_new, &last)?;
            return Ok((usize::try_from(trip)?, refusals));
        }
        let hint = follower.find_conflict_by_term(prev, prev_term);
        let retry = match backoff {
            // etcd's leader: the largest index of its own log at or below the
            // hint whose term is at most the hint's term. Everything after it
            // is either missing on the follower or from a term it lacks.
            Backoff::Hint => leader.find_conflict_by_term(hint.0, hint.1).0 + 1,
            Backoff::OneByOne => prev,
        };
        check("a refusal moves next_index back", retry < next)?;
        refusals.push(Refusal {
            prev: (prev, prev_term),
            hint,
            next: retry,
        });
        next = retry;
    }
    Err(format!("no agreement after {} round trips", last + 1).into())
}

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
