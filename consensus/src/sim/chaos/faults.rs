//! The scenario's faults: crashes (between steps and in the middle of a
//! drain), partitions (symmetric, one-way, non-transitive, the leader cut
//! off), leadership transfers and campaigns, injected at rates per
//! election timeout.

use super::Faults;
use crate::sim::Simulation;

/// Injects this tick's faults. Rates are per election timeout, so runs
/// with short and long timeouts see the same amount of trouble per
/// election.
pub(super) fn inject_faults(
    sim: &mut Simulation,
    rng: &mut fastrand::Rng,
    nodes: u64,
    election_tick: u32,
    faults: &mut Faults,
) {
    let per_timeout =
        |rng: &mut fastrand::Rng, rate: f64| rng.f64() < rate / f64::from(election_tick);
    let down: Vec<u64> = (1..=nodes).filter(|&id| !sim.is_up(id)).collect();
    let random_node = |rng: &mut fastrand::Rng| 1 + rng.u64(..nodes);
    // Leaders are favoured as victims: they are the interesting case.
    let victim = |sim: &Simulation, rng: &mut fastrand::Rng| match sim.leader() {
        Some(leader) if rng.bool() => leader,
        _ => random_node(rng),
    };
    if per_timeout(rng, 0.2) && (down.len() as u64) < nodes.div_ceil(2) {
        let id = victim(sim, rng);
        if sim.is_up(id) {
            sim.crash(id);
            faults.crashes += 1;
        }
    }
    if per_timeout(rng, 0.2) {
        // Followers mostly: a follower crashing right after it was handed
        // an append's batch is where torn writes bite.
        let id = match sim.leader() {
            Some(leader) if rng.f64() < 0.25 => leader,
            _ => random_node(rng),
        };
        if rng.bool() {
            sim.crash_mid_drain(id, rng.usize(..3));
        } else {
            sim.crash_after_persist(id);
        }
        faults.mid_drain_armed += 1;
    }
    if per_timeout(rng, 1.0) {
        // Adversarial: a follower holding entries the leader does not
        // (a deposed leader's) crashes right after it is handed the batch
        // that replaces them, while that batch is in the air.
        if let Some(id) = diverged_follower(sim, nodes) {
            sim.crash_after_persist(id);
            faults.mid_drain_armed += 1;
        }
    }
    if per_timeout(rng, 1.0) {
        if let Some(&id) = down.get(rng.usize(..down.len().max(1))) {
            sim.restart(id);
        }
    }
    if per_timeout(rng, 0.3) {
        partition(sim, rng, nodes, faults);
    }
    if per_timeout(rng, 0.3) {
        sim.heal();
        faults.heals += 1;
    }
    if per_timeout(rng, 0.1) {
        let from = match sim.leader() {
            Some(leader) if rng.f64() < 0.8 => leader,
            _ => random_node(rng),
        };
        sim.transfer(from, random_node(rng));
        faults.transfers += 1;
        if rng.f64() < 0.3 {
            // The old leader stops hearing anyone right after: its
            // TimeoutNow still gets out, but news of the new leader does
            // not come back, so it goes on believing it leads.
            for other in (1..=nodes).filter(|&n| n != from) {
                sim.cut(other, from);
            }
            faults.leader_cut += 1;
        }
    }
    if per_timeout(rng, 0.05) {
        sim.campaign(random_node(rng));
        faults.campaigns += 1;
    }
}

/// An up follower whose last entry is not in the leader's log.
fn diverged_follower(sim: &Simulation, nodes: u64) -> Option<u64> {
    let leader = sim.node(sim.leader()?)?;
    (1..=nodes).find(|&id| {
        sim.node(id).is_some_and(|raft| {
            let last = raft.log().last_index();
            raft.role() != crate::raft::Role::Leader
                && last > 0
                && leader.log().term(last) != raft.log().term(last)
        })
    })
}

fn partition(sim: &mut Simulation, rng: &mut fastrand::Rng, nodes: u64, faults: &mut Faults) {
    let others = |id: u64| (1..=nodes).filter(move |&n| n != id);
    match rng.u32(..5) {
        0 | 1 => {
            let mut group: Vec<u64> = (1..=nodes).filter(|_| rng.bool()).collect();
            if group.is_empty() {
                group.push(1 + rng.u64(..nodes));
            }
            let rest: Vec<u64> = (1..=nodes).filter(|id| !group.contains(id)).collect();
            if rng.bool() {
                sim.partition(&group, &rest);
                faults.partitions += 1;
            } else {
                // One-way: the group can send but not hear back.
                for &a in &group {
                    for &b in &rest {
                        sim.cut(b, a);
                    }
                }
                faults.one_way += 1;
            }
        }
        2 => {
            // Non-transitive: a and c cannot talk, both still reach b.
            let a = 1 + rng.u64(..nodes);
            let c = loop {
                let c = 1 + rng.u64(..nodes);
                if c != a {
                    break c;
                }
            };
            sim.partition(&[a], &[c]);
            faults.non_transitive += 1;
        }
        _ => {
            // The leader (or, without one, any node) alone, and nothing
            // else cut: both ways (mostly: the others elect a new leader
            // while it may still believe it leads), it cannot hear, or it
            // cannot be heard.
            let id = sim.leader().unwrap_or_else(|| 1 + rng.u64(..nodes));
            sim.heal();
            let way = rng.u32(..5);
            for other in others(id) {
                if way != 3 {
                    sim.cut(id, other);
                }
                if way != 4 {
                    sim.cut(other, id);
                }
            }
            faults.leader_cut += 1;
        }
    }
}
