//! The simulated cluster the scenario tests share (`liveness.rs`,
//! `partial_connectivity.rs`): a reliable network with 1 to 8 units of
//! delay, 10 units per tick, writes durable within 5 units, and the two
//! election options a scenario compares.

use dsys_consensus::sim::{NetworkConfig, SimConfig, Simulation};

/// Simulation time units per Raft tick.
pub(crate) const TICK: u64 = 10;

/// `nodes` nodes (ids 1 to `nodes`) on seed `seed`, with pre-vote and
/// check-quorum as given.
pub(crate) fn cluster(nodes: u64, seed: u64, pre_vote: bool, check_quorum: bool) -> Simulation {
    let mut config = SimConfig::default();
    config.nodes = nodes;
    config.raft.pre_vote = pre_vote;
    config.raft.check_quorum = check_quorum;
    config.network = NetworkConfig::reliable(1, 8);
    config.tick_interval = TICK;
    config.max_persist_delay = 5;
    Simulation::new(config, seed).expect("a valid simulator configuration")
}
