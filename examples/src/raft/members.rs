//! Machinery: how sections 6-9 print nodes, memberships, the record of a
//! step and the closing summary.

use dsys_consensus::{Membership, Role, Term};

use super::application::Act;
use super::deployment::{Deployment, Happened};
use super::tables::{role_name, show_metadata, ticks};
use crate::report::{Res, Table};

/// `1 2 3`, or `-` for nobody.
pub(super) fn show_ids(ids: &[u64]) -> String {
    if ids.is_empty() {
        return "-".to_owned();
    }
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `1, 3 and 4`: nodes in prose.
pub(super) fn and_list(ids: &[u64]) -> String {
    let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
    match names.split_last() {
        None => "nobody".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Votes needed to elect or commit among `voters`.
pub(super) fn majority(voters: &[u64]) -> usize {
    voters.len() / 2 + 1
}

/// What `node` is in `membership`.
fn standing(membership: &Membership<u64>, node: u64) -> &'static str {
    if membership.is_voter(&node) {
        "voter"
    } else if membership.is_learner(&node) {
        "learner"
    } else {
        "not a member"
    }
}

/// Every node: its role and term, what the leader's membership makes it,
/// its log (first and last index), commit, applied and metadata.
pub(super) fn print_members(deployment: &Deployment) -> Res {
    let leader = deployment.node(deployment.the_leader()?)?;
    let membership = leader.membership();
    let mut table = Table::new(&[
        "node",
        "role",
        "term",
        "member as",
        "log",
        "commit",
        "applied",
        "metadata (partition=leader broker)",
    ])
    .numeric(&[2, 5, 6]);
    for id in deployment.ids() {
        let app = deployment.app(id)?;
        let status = app.raft.status();
        let log = app.raft.log();
        table.row([
            format!("node {id}"),
            role_name(status.role).to_owned(),
            status.term.to_string(),
            standing(membership, id).to_owned(),
            if log.last_index() == 0 {
                "(empty)".to_owned()
            } else {
                format!("{}-{}", log.first_index(), log.last_index())
            },
            status.commit.to_string(),
            status.applied.to_string(),
            show_metadata(&app.metadata),
        ]);
    }
    table.print();
    Ok(())
}

/// What happened, one line each, for a step the story walks through.
pub(super) fn describe(happened: &Happened) -> String {
    match happened {
        Happened::Role(role, term) => format!("{} of term {term}", role_name(*role)),
        Happened::Act(act) => match act {
            Act::ChunkRead {
                to,
                offset,
                len,
                last,
                ..
            } => format!(
                "reads bytes {offset}-{} for node {to}{}",
                offset + len,
                if *last { " (last chunk)" } else { "" }
            ),
            Act::SendEnded { to, aborted, .. } => match aborted {
                None => format!("transfer to node {to} ends: installed"),
                Some(reason) => format!("transfer to node {to} ends: {reason:?}"),
            },
            Act::ChunkStaged {
                offset, len, last, ..
            } => format!(
                "stages bytes {offset}-{}{}",
                offset + len,
                if *last { " (last chunk)" } else { "" }
            ),
            Act::Restored {
                index,
                term,
                partitions,
            } => format!(
                "restores {partitions} partitions from snapshot {index} (term {term}), \
                 on_snapshot_restored({index})"
            ),
            Act::MembershipApplied { index, membership } => format!(
                "applies the membership at {index}: voters {}",
                show_ids(membership.voters())
            ),
        },
    }
}

/// One row of the closing summary: the cluster after a phase.
pub(super) struct Phase {
    pub(super) name: &'static str,
    pub(super) at: u64,
    pub(super) voters: Vec<u64>,
    pub(super) learners: Vec<u64>,
    pub(super) leader: u64,
    pub(super) term: Term,
    pub(super) last_index: u64,
    pub(super) first_index: u64,
}

impl Phase {
    /// The cluster now, as its leader sees it.
    pub(super) fn now(name: &'static str, deployment: &Deployment) -> Res<Self> {
        let leader = deployment.the_leader()?;
        let raft = deployment.node(leader)?;
        Ok(Self {
            name,
            at: deployment.time(),
            voters: raft.membership().voters().to_vec(),
            learners: raft.membership().learners().to_vec(),
            leader,
            term: raft.term(),
            last_index: raft.log().last_index(),
            first_index: raft.log().first_index(),
        })
    }
}

pub(super) fn print_phases(phases: &[Phase]) {
    let mut table = Table::new(&[
        "after",
        "t",
        "voters",
        "learners",
        "majority",
        "leader",
        "leader's log",
    ])
    .numeric(&[1, 4]);
    for phase in phases {
        table.row([
            phase.name.to_owned(),
            ticks(phase.at),
            show_ids(&phase.voters),
            show_ids(&phase.learners),
            majority(&phase.voters).to_string(),
            format!("node {} (term {})", phase.leader, phase.term),
            format!("{}-{}", phase.first_index, phase.last_index),
        ]);
    }
    table.print();
}

/// Whether `role` is one a node takes on the way to leading.
pub(super) fn campaigning(role: Role) -> bool {
    matches!(role, Role::PreCandidate | Role::Candidate | Role::Leader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_prose_and_tables() {
        let cases: &[(&[u64], &str, &str, usize)] = &[
            (&[], "nobody", "-", 1),
            (&[4], "4", "4", 1),
            (&[3, 4], "3 and 4", "3 4", 2),
            (&[1, 3, 4, 5], "1, 3, 4 and 5", "1 3 4 5", 3),
            (&[1, 2, 3, 4, 5], "1, 2, 3, 4 and 5", "1 2 3 4 5", 3),
        ];
        for &(ids, prose, table, needed) in cases {
            assert_eq!(and_list(ids), prose);
            assert_eq!(show_ids(ids), table);
            assert_eq!(majority(ids), needed, "{ids:?}");
        }
    }
}
