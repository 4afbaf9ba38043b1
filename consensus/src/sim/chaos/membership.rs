//! The scenario's membership changes (thesis §4): now and then it asks
//! the leader to add a learner, promote one, add or remove a voter (the
//! leader itself included) or remove a learner, and counts what the leader
//! accepted and refused.

use super::Faults;
use crate::membership::MembershipChange;
use crate::sim::Simulation;

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
    let outside: Vec<u64> = (1..=nodes).filter(|n| !membership.contains(n)).collect();
    let pick =
        |rng: &mut fastrand::Rng, from: &[u64]| from.get(rng.usize(..from.len().max(1))).copied();
    let change = match rng.u32(..6) {
        0 => pick(rng, &outside).map(MembershipChange::AddLearner),
        1 => pick(rng, membership.learners()).map(MembershipChange::AddVoter),
        2 => pick(rng, &outside).map(MembershipChange::AddVoter),
        3 => pick(rng, membership.learners()).map(MembershipChange::Remove),
        4 => Some(MembershipChange::Remove(leader)),
        _ => pick(rng, membership.voters()).map(MembershipChange::Remove),
    };
    let Some(change) = change else {
        return;
    };
    match sim.change_membership(leader, change) {
        Ok(_) => faults.membership_changes += 1,
        Err(_) => faults.membership_refused += 1,
    }
}
