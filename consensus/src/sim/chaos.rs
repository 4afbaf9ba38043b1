//! The randomized scenario: clients write and read keys through a cluster
//! while the network drops, duplicates, delays and partitions messages,
//! nodes crash and restart, and leadership is transferred. Then the faults
//! stop, and the cluster must elect a leader and commit within a bound
//! (liveness). Safety is checked after every step and the client history
//! for linearizability at the end.
//!
//! Each seed also picks the protocol options (pre-vote, check-quorum, lease
//! reads, asynchronous persistence), so a sweep over seeds covers them all.

use std::fmt;

use super::cluster::{SimConfig, Simulation, Violation};
use super::linearizability::OpId;
use super::network::{NetworkConfig, NetworkStats};
use crate::config::{Config, ReadOnlyOption};
use crate::output::{ProposeError, ReadError};

/// Size and length of a chaos run.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// Cluster sizes to choose from (by seed).
    pub cluster_sizes: Vec<u64>,
    /// Ticks of faults.
    pub chaos_ticks: u64,
    /// Ticks allowed, once faults stop, for a leader to be elected and a
    /// new proposal to be applied everywhere.
    pub liveness_ticks: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// Keys the clients use.
    pub keys: u64,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self {
            cluster_sizes: vec![3, 5],
            chaos_ticks: 300,
            liveness_ticks: 200,
            clients: 3,
            keys: 3,
        }
    }
}

/// What a passing run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: u64,
    /// The options drawn: pre-vote, check-quorum, lease reads, async writes.
    pub options: (bool, bool, bool, bool),
    /// Leaders elected (distinct terms).
    pub elections: u64,
    /// Entries committed.
    pub committed: u64,
    /// Client operations completed, and left indeterminate.
    pub ops: (usize, usize),
    /// Crashes injected.
    pub crashes: u64,
    /// Ticks from the end of faults until the cluster converged.
    pub recovery_ticks: u64,
    /// Network counters.
    pub network: NetworkStats,
}

/// A failing run: the seed to replay and what broke.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed that fails.
    pub seed: u64,
    /// What broke.
    pub violation: Violation,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} failed: {}\nreplay: DSYS_SIM_SEED={} cargo test -p dsys-consensus --test simulation replay",
            self.seed, self.violation, self.seed
        )
    }
}

impl std::error::Error for Failure {}

#[derive(Debug, Clone, Copy)]
struct Client {
    id: u64,
    target: u64,
    outstanding: Option<(OpId, u64)>,
}

/// Runs the scenario for `seed`.
///
/// # Errors
/// The first safety, liveness or linearizability violation.
pub fn run(seed: u64, config: &ChaosConfig) -> Result<Report, Failure> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed_c4a0_5eed_c4a0);
    let nodes = config.cluster_sizes[rng.usize(..config.cluster_sizes.len().max(1))];
    let pre_vote = rng.bool();
    let check_quorum = rng.bool();
    let lease = check_quorum && rng.bool();
    let async_writes = rng.bool();
    let raft = Config {
        pre_vote,
        check_quorum,
        read_only: if lease {
            ReadOnlyOption::LeaseBased
        } else {
            ReadOnlyOption::Safe
        },
        max_inflight_msgs: 1 + rng.usize(..8),
        max_size_per_msg: 64 + rng.u64(..512),
        ..Config::default()
    };
    let sim_config = SimConfig {
        nodes,
        raft,
        network: NetworkConfig {
            min_delay: 1,
            max_delay: 1 + rng.u64(..30),
            loss: rng.f64() * 0.1,
            duplicate: rng.f64() * 0.05,
        },
        tick_interval: 10,
        max_persist_delay: if async_writes { 1 + rng.u64(..20) } else { 0 },
    };
    let tick = sim_config.tick_interval;
    let mut sim = Simulation::new(sim_config, seed);
    let mut clients: Vec<Client> = (1..=config.clients)
        .map(|id| Client {
            id,
            target: 1 + rng.u64(..nodes),
            outstanding: None,
        })
        .collect();
    let client_timeout = 40 * tick;
    let mut crashes = 0;
    let fail = |violation: Violation| Failure { seed, violation };

    // Chaos.
    for _ in 0..config.chaos_ticks * tick {
        if sim.time() % tick == 0 {
            inject_fault(&mut sim, &mut rng, nodes, &mut crashes);
        }
        for client in &mut clients {
            drive_client(
                &mut sim,
                &mut rng,
                client,
                config,
                nodes,
                client_timeout,
                true,
            );
        }
        sim.step();
        if let Some(v) = sim.violation() {
            return Err(fail(v.clone()));
        }
    }

    // Calm: faults stop, clients finish what they started.
    sim.heal();
    sim.set_network(NetworkConfig::reliable(1, 10));
    for id in 1..=nodes {
        sim.restart(id);
    }
    let recovery = sim.recover_with(config.liveness_ticks * tick, |sim| {
        for client in &mut clients {
            drive_client(sim, &mut rng, client, config, nodes, client_timeout, false);
        }
    });
    let recovery_ticks = recovery.map_err(fail)?.div_ceil(tick);
    sim.check_logs().map_err(fail)?;
    sim.check_history().map_err(fail)?;
    let pending = sim.history().pending();
    let completed = sim.history().len() - pending;
    let elections = sim
        .take_events()
        .iter()
        .filter(|e| matches!(e, super::SimEvent::Elected { .. }))
        .count() as u64;
    Ok(Report {
        seed,
        nodes,
        options: (pre_vote, check_quorum, lease, async_writes),
        elections,
        committed: sim.committed(),
        ops: (completed, pending),
        crashes,
        recovery_ticks,
        network: sim.network_stats(),
    })
}

fn inject_fault(sim: &mut Simulation, rng: &mut fastrand::Rng, nodes: u64, crashes: &mut u64) {
    let down: Vec<u64> = (1..=nodes).filter(|&id| !sim.is_up(id)).collect();
    let roll = rng.f64();
    if roll < 0.02 && (down.len() as u64) < (nodes - 1) / 2 + 1 {
        // Crash: leaders are favoured, they are the interesting case.
        let victim = match sim.leader() {
            Some(leader) if rng.bool() => leader,
            _ => 1 + rng.u64(..nodes),
        };
        if sim.is_up(victim) {
            sim.crash(victim);
            *crashes += 1;
        }
    } else if roll < 0.07 {
        if let Some(&id) = down.get(rng.usize(..down.len().max(1))) {
            sim.restart(id);
        }
    } else if roll < 0.09 {
        let mut group: Vec<u64> = (1..=nodes).filter(|_| rng.bool()).collect();
        if group.is_empty() {
            group.push(1 + rng.u64(..nodes));
        }
        let rest: Vec<u64> = (1..=nodes).filter(|id| !group.contains(id)).collect();
        if rng.bool() {
            sim.partition(&group, &rest);
        } else {
            // One-way: the group can send but not hear back.
            for &a in &group {
                for &b in &rest {
                    sim.cut(b, a);
                }
            }
        }
    } else if roll < 0.12 {
        sim.heal();
    } else if roll < 0.125 {
        if let Some(leader) = sim.leader() {
            let target = 1 + rng.u64(..nodes);
            sim.transfer(leader, target);
        }
    }
}

fn drive_client(
    sim: &mut Simulation,
    rng: &mut fastrand::Rng,
    client: &mut Client,
    config: &ChaosConfig,
    nodes: u64,
    timeout: u64,
    start_new: bool,
) {
    if let Some((op, started)) = client.outstanding {
        if sim.is_complete(op) {
            client.outstanding = None;
        } else if sim.time() > started + timeout {
            // Give up: the operation stays indeterminate in the history.
            client.outstanding = None;
            client.target = 1 + rng.u64(..nodes);
        } else {
            return;
        }
    }
    if !start_new || !rng.f64().lt(&0.05) {
        return;
    }
    let key = rng.u64(..config.keys);
    let outcome = if rng.f64() < 0.6 {
        let value = client.id << 32 | rng.u64(..1 << 31);
        sim.put(client.id, client.target, key, value).map(|_| ())
    } else {
        sim.get(client.id, client.target, key)
            .map_err(|ReadError::NoLeader| ProposeError::NotLeader { leader: None })
    };
    match outcome {
        Ok(()) => client.outstanding = sim.last_op().map(|op| (op, sim.time())),
        Err(ProposeError::NotLeader {
            leader: Some(leader),
        }) => client.target = leader,
        Err(ProposeError::NotLeader { leader: None }) => client.target = 1 + rng.u64(..nodes),
        Err(_) => {}
    }
}
