//! Machinery: how the story prints nodes, elections and logs.

use std::collections::BTreeMap;

use dsys_consensus::Role;

use super::cluster::{Cluster, Election};
use super::logs::show;
use super::{NODES, TICK};
use crate::report::{self, Res, Table, check_eq};

/// A metadata record: partition `P<key>` is led by broker `B<value>`.
type Metadata = BTreeMap<u64, u64>;

/// `P1=B1 P2=B2`: a node's key-value map as partition leaders.
pub(super) fn show_metadata(kv: &Metadata) -> String {
    if kv.is_empty() {
        return "(empty)".to_owned();
    }
    kv.iter()
        .map(|(partition, broker)| format!("P{partition}=B{broker}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Simulation time in ticks, one decimal: `10.3`.
pub(super) fn ticks(units: u64) -> String {
    format!("{}.{}", units / TICK, units % TICK)
}

pub(super) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

/// The table of an election: each node's timeout, when it timed out, whom
/// it voted for.
pub(super) fn print_election(
    cluster: &Cluster,
    election: &Election,
    timeouts: &BTreeMap<u64, u32>,
) {
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
        let Some(raft) = cluster.sim.node(node) else {
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

/// Every node's log and state machine, checked identical to the leader's.
pub(super) fn print_logs(cluster: &Cluster, leader: u64) -> Res {
    let reference = cluster.sim.node(leader).ok_or("the leader is down")?;
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
        let raft = cluster
            .sim
            .node(node)
            .ok_or_else(|| format!("node {node} is down"))?;
        let log = raft.log().slice(1, raft.log().last_index() + 1, u64::MAX)?;
        check_eq(&format!("node {node}'s log"), &log, &reference)?;
        check_eq(
            &format!("node {node}'s metadata"),
            cluster.sim.kv(node),
            cluster.sim.kv(leader),
        )?;
        let status = raft.status();
        table.row([
            format!("node {node}"),
            role_name(status.role).to_owned(),
            status.term.to_string(),
            show(&log.iter().map(|e| e.term).collect::<Vec<_>>()),
            status.commit.to_string(),
            status.applied.to_string(),
            show_metadata(cluster.sim.kv(node)),
        ]);
    }
    report::note(&format!("All five at t={}:", ticks(cluster.sim.time())));
    table.print();
    Ok(())
}

impl Cluster {
    /// A table row for `node`: role, term, last index, commit, applied,
    /// metadata.
    pub(super) fn row(&self, node: u64) -> [String; 7] {
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
    pub(super) fn print_nodes(&self) {
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
}
