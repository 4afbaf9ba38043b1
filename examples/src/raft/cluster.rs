//! Machinery: the simulated cluster the first three sections drive, stepped
//! until what the story waits for has happened, and elections read off
//! the role changes seen on the way.

use std::collections::BTreeMap;

use dsys_consensus::sim::{SimEvent, Simulation};
use dsys_consensus::{Index, Role, Term};

use super::tables::ticks;
use super::{NODES, TICK, WRITER};
use crate::report::{Res, check_eq};

/// Longest any step of the story may take, in units (200 ticks).
const PATIENCE: u64 = 2_000;

/// A node changed role or term.
pub(super) struct Change {
    pub(super) time: u64,
    pub(super) node: u64,
    pub(super) role: Role,
    pub(super) term: Term,
}

/// The simulation and the changes of role seen while driving it.
pub(super) struct Cluster {
    pub(super) sim: Simulation,
    seen: BTreeMap<u64, (Role, Term)>,
}

impl Cluster {
    /// Drives `sim`, starting from the roles its nodes have now.
    pub(super) fn new(sim: Simulation) -> Self {
        let mut cluster = Self {
            sim,
            seen: BTreeMap::new(),
        };
        cluster.changes();
        cluster
    }

    /// Role and term changes since the last look.
    pub(super) fn changes(&mut self) -> Vec<Change> {
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
    pub(super) fn run_until(
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
    pub(super) fn settle(&mut self, what: &str) -> Res<Vec<Change>> {
        self.run_until(what, Simulation::converged)
    }

    pub(super) fn leader(&self) -> Res<u64> {
        Ok(self.sim.leader().ok_or("no leader")?)
    }

    /// Client [`WRITER`] writes `P<partition>=B<broker>` through `leader`;
    /// returns the entry's index.
    pub(super) fn put(&mut self, leader: u64, partition: u64, broker: u64) -> Res<Index> {
        Ok(self.sim.put(WRITER, leader, partition, broker)?)
    }

    /// `node`'s election timeout, in ticks.
    pub(super) fn timeout(&self, node: u64) -> Res<u32> {
        Ok(self
            .sim
            .node(node)
            .ok_or_else(|| format!("node {node} is down"))?
            .randomized_election_timeout())
    }
}

/// One election, read off the role changes and the simulator's events.
pub(super) struct Election {
    /// When each node that campaigned first timed out.
    pub(super) timed_out: BTreeMap<u64, u64>,
    pub(super) winner: u64,
    pub(super) term: Term,
    /// When the winner's timer fired.
    pub(super) fired: u64,
    /// When it became leader.
    pub(super) at: u64,
}

/// The one election in `changes` and `events`; an error unless exactly one
/// leader was elected and only it campaigned, the story the chapter tells.
pub(super) fn election(changes: &[Change], events: &[SimEvent]) -> Res<Election> {
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
pub(super) fn timeouts(cluster: &Cluster, except: &[u64]) -> Res<BTreeMap<u64, u32>> {
    (1..=NODES)
        .filter(|node| !except.contains(node))
        .map(|node| Ok((node, cluster.timeout(node)?)))
        .collect()
}

/// The shortest timeout and the nodes that drew it.
pub(super) fn shortest_timeout(timeouts: &BTreeMap<u64, u32>) -> (u32, Vec<u64>) {
    let shortest = timeouts.values().min().copied().unwrap_or_default();
    let nodes = timeouts
        .iter()
        .filter(|&(_, &timeout)| timeout == shortest)
        .map(|(&node, _)| node)
        .collect();
    (shortest, nodes)
}
