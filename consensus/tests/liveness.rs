//! Liveness (Raft §5.2, §9 of the thesis): once faults stop, a leader is
//! elected and proposals commit within a bounded number of ticks. Each
//! scenario is run over many seeds with a reliable network after the
//! fault; the bound is stated in election timeouts.

use dsys_consensus::Role;
use dsys_consensus::sim::Simulation;
use sim_common::{TICK, cluster};

mod sim_common;

/// Election timeouts are drawn from [10, 20) ticks; with pre-vote an
/// election takes two rounds. 10 election timeouts is generous but finite.
const BOUND_TICKS: u64 = 200;

/// Runs until a leader exists and a new proposal is applied on every up
/// node; returns the ticks that took.
fn ticks_to_recover(sim: &mut Simulation, seed: u64) -> u64 {
    match sim.recover_with(BOUND_TICKS * TICK, |_| {}) {
        Ok(units) => units.div_ceil(TICK),
        Err(violation) => panic!("seed {seed}: {violation}"),
    }
}

fn sweep(name: &str, mut scenario: impl FnMut(u64) -> u64) {
    let mut worst = 0;
    let mut total = 0;
    let seeds = 50;
    for seed in 0..seeds {
        let ticks = scenario(seed);
        worst = worst.max(ticks);
        total += ticks;
    }
    println!(
        "{name}: mean {} ticks, worst {worst} ticks over {seeds} seeds",
        total / seeds
    );
}

#[test]
fn a_fresh_cluster_elects_and_commits() {
    sweep("fresh cluster", |seed| {
        let mut sim = cluster(5, seed, seed % 2 == 0, seed % 3 == 0);
        ticks_to_recover(&mut sim, seed)
    });
}

#[test]
fn a_crashed_leader_is_replaced() {
    sweep("leader crash", |seed| {
        let mut sim = cluster(5, seed, seed % 2 == 0, seed % 3 == 0);
        ticks_to_recover(&mut sim, seed);
        let leader = sim.leader().expect("recovered above");
        sim.crash(leader);
        ticks_to_recover(&mut sim, seed)
    });
}

#[test]
fn a_healed_partition_converges_and_the_minority_catches_up() {
    sweep("minority partition healed", |seed| {
        let mut sim = cluster(5, seed, seed % 2 == 0, true);
        ticks_to_recover(&mut sim, seed);
        let leader = sim.leader().expect("recovered above");
        // The leader and one follower are cut off from the other three.
        let buddy = if leader == 1 { 2 } else { 1 };
        let rest: Vec<u64> = (1..=5).filter(|&n| n != leader && n != buddy).collect();
        sim.partition(&[leader, buddy], &rest);
        sim.run_for(60 * TICK);
        // With check-quorum the old leader has stepped down by now.
        assert_ne!(
            sim.node(leader).map(|n| n.role()),
            Some(Role::Leader),
            "seed {seed}: check-quorum keeps a minority leader in office"
        );
        sim.heal();
        ticks_to_recover(&mut sim, seed)
    });
}

#[test]
fn a_whole_cluster_restart_recovers_from_persisted_state() {
    sweep("full restart", |seed| {
        let mut sim = cluster(3, seed, seed % 2 == 0, seed % 3 == 0);
        ticks_to_recover(&mut sim, seed);
        for id in 1..=3 {
            sim.crash(id);
        }
        for id in 1..=3 {
            sim.restart(id);
        }
        ticks_to_recover(&mut sim, seed)
    });
}
