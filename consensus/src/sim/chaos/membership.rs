//! The scenario's membership changes (thesis §4): now and then it asks
//! the leader for a single-server change (add a learner, promote one, add
//! or remove a voter, the leader itself included, or remove a learner) or
//! a joint one (Raft §6, thesis §4.3: replace a voter, add two, remove
//! two, a mix of adds and removes, demote a voter, add learners), left
//! on its own or explicitly, and counts what the leader accepted and
//! refused.

use super::Faults;
use crate::membership::{JointLeave, Membership, MembershipChange};
use crate::sim::Simulation;

use MembershipChange::{AddLearner, AddVoter, Remove};

/// Now and then, asks the leader for a random membership change.
pub(super) fn change_membership(
    sim: &mut Simulation,
    rng: &mut fastrand::Rng,
    nodes: u64,
    election_tick: u32,
    faults: &mut Faults,
) {
    if rng.f64() >= 1.0 / f64::from(election_tick) {
        return;
    }
    let Some(leader) = sim.leader() else {
        return;
    };
    let Some(membership) = sim.node(leader).map(|r| r.membership().clone()) else {
        return;
    };
    if membership.is_joint() && !membership.auto_leave() && rng.bool() {
        match sim.change_membership_joint(leader, None, JointLeave::Explicit) {
            Ok(_) => faults.joint_leaves += 1,
            Err(_) => faults.membership_refused += 1,
        }
        return;
    }
    if rng.f64() < 0.4 {
        let changes = joint_changes(rng, nodes, leader, &membership);
        if changes.is_empty() {
            return;
        }
        let leave = if rng.f64() < 0.7 {
            JointLeave::Auto
        } else {
            JointLeave::Explicit
        };
        match sim.change_membership_joint(leader, Some(changes), leave) {
            Ok(_) => faults.joint_changes += 1,
            Err(_) => faults.membership_refused += 1,
        }
        return;
    }
    let outside = outside(nodes, &membership);
    let change = match rng.u32(..6) {
        0 => pick(rng, &outside).map(AddLearner),
        1 => pick(rng, membership.learners()).map(AddVoter),
        2 => pick(rng, &outside).map(AddVoter),
        3 => pick(rng, membership.learners()).map(Remove),
        4 => Some(Remove(leader)),
        _ => pick(rng, membership.voters()).map(Remove),
    };
    let Some(change) = change else {
        return;
    };
    match sim.change_membership(leader, change) {
        Ok(_) => faults.membership_changes += 1,
        Err(_) => faults.membership_refused += 1,
    }
}

fn outside(nodes: u64, membership: &Membership<u64>) -> Vec<u64> {
    (1..=nodes).filter(|n| !membership.contains(n)).collect()
}

fn pick(rng: &mut fastrand::Rng, from: &[u64]) -> Option<u64> {
    from.get(rng.usize(..from.len().max(1))).copied()
}

/// Two distinct nodes of `from`, when it has two.
fn pick_two(rng: &mut fastrand::Rng, from: &[u64]) -> Option<(u64, u64)> {
    let first = pick(rng, from)?;
    let rest: Vec<u64> = from.iter().copied().filter(|&n| n != first).collect();
    Some((first, pick(rng, &rest)?))
}

/// A random joint change (empty when the membership offers none of the
/// kind drawn). A voter removed is the leader about a third of the time.
fn joint_changes(
    rng: &mut fastrand::Rng,
    nodes: u64,
    leader: u64,
    membership: &Membership<u64>,
) -> Vec<MembershipChange<u64>> {
    let outside = outside(nodes, membership);
    let (voters, learners) = (membership.voters(), membership.learners());
    let voter = |rng: &mut fastrand::Rng| {
        if rng.f64() < 0.3 {
            Some(leader)
        } else {
            pick(rng, voters)
        }
    };
    let mut changes = Vec::new();
    match rng.u32(..6) {
        // Replace a voter by a learner.
        0 => {
            if let (Some(new), Some(old)) = (pick(rng, learners), voter(rng)) {
                changes = vec![AddVoter(new), Remove(old)];
            }
        }
        // Add two voters (learners, or a stranger that is refused).
        1 => {
            let from: Vec<u64> = learners.iter().chain(&outside).copied().collect();
            if let Some((a, b)) = pick_two(rng, &from) {
                changes = vec![AddVoter(a), AddVoter(b)];
            }
        }
        // Remove two voters.
        2 => {
            if let Some((a, b)) = pick_two(rng, voters) {
                changes = vec![Remove(a), Remove(b)];
            }
        }
        // Mixed: a stranger learns, a voter leaves, a learner votes.
        3 => {
            changes.extend(pick(rng, &outside).map(AddLearner));
            changes.extend(voter(rng).map(Remove));
            changes.extend(pick(rng, learners).map(AddVoter));
        }
        // Demote a voter to learner (etcd's learners_next), perhaps
        // promoting a learner in its place.
        4 => {
            changes.extend(voter(rng).map(AddLearner));
            if rng.bool() {
                changes.extend(pick(rng, learners).map(AddVoter));
            }
        }
        // Add every stranger as a learner, in one step.
        _ => changes.extend(outside.iter().copied().map(AddLearner)),
    }
    changes
}

/// Plain Raft (neither pre-vote nor check-quorum) has no defence against
/// a removed voter that never learned of its removal (thesis §4.2.3): it
/// campaigns for ever in the old configuration and deposes every leader
/// with its terms. Its operator stops it, as etcd's transport does when it
/// turns a removed member away. Called every tick once faults stop: when
/// a leader has committed its whole log (so its membership is committed),
/// every up node outside that membership that still counts itself a
/// voter is stopped for good. Returns how many were.
pub(super) fn stop_removed_voters(sim: &mut Simulation, nodes: u64) -> u64 {
    let committed = sim
        .leader()
        .and_then(|leader| sim.node(leader))
        .filter(|raft| raft.log().committed() == raft.log().last_index())
        .map(|raft| raft.membership().clone());
    let Some(membership) = committed else {
        return 0;
    };
    let removed: Vec<u64> = (1..=nodes)
        .filter(|id| !membership.contains(id))
        .filter(|id| {
            sim.node(*id)
                .is_some_and(|raft| raft.membership().is_voter(id))
        })
        .collect();
    for &id in &removed {
        sim.crash(id);
    }
    removed.len() as u64
}
