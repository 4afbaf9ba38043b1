//! The randomized scenario: clients write and read keys through a cluster
//! while the network drops, duplicates, delays (some messages for many
//! election timeouts), replays and partitions messages (symmetric,
//! one-way, non-transitive, or the leader cut off), nodes crash between
//! steps or in the middle of a drain and restart from disks that lost,
//! kept or tore the writes in the air, nodes campaign out of turn, and
//! leadership is transferred. Then the faults stop, and the cluster must
//! elect a leader and commit within a bound (liveness). Safety is checked
//! after every step and output, the client history for linearizability
//! at the end.
//!
//! Each seed also draws the protocol options (election and heartbeat
//! ticks, pre-vote, check-quorum, lease reads, asynchronous persistence,
//! acknowledgement lag, state-machine snapshots, Raft snapshots with
//! compaction, membership changes, quiescence), so a sweep over seeds
//! covers them all. With membership changes, one or two extra nodes start
//! outside the cluster, and the leader is asked now and then to add a
//! learner, promote one, add or remove a voter (itself included: replacing
//! the leader), or remove a learner, or for a joint change, under the
//! same faults. With
//! quiescence on, the scenario plays the application's failure detector:
//! every few ticks it tells each node which peers are down or cut off
//! from it (so late by up to that interval), and during the faults it
//! sometimes suspects a live peer wrongly.

mod detector;
mod faults;
mod membership;

use std::fmt;
use std::ops::RangeInclusive;

use self::faults::inject_faults;
use self::membership::change_membership;
use super::cluster::{SimStats, Simulation, Violation};
use super::config::SimConfig;
use super::config::{self, SimConfigError};
use super::disk::DiskConfig;
use super::linearizability::OpId;
use super::network::{NetworkConfig, NetworkStats};
use crate::config::{Config, ReadOnlyOption};
use crate::output::{ProposeError, ReadError};
use detector::{Detector, Victim};

/// Simulation time units per Raft tick in chaos runs.
const TICK: u64 = 10;

/// Size and length of a chaos run. Built from [`Default`] and set by
/// assignment; [`ChaosConfig::validate`] bounds every field and [`run`]
/// calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChaosConfig {
    /// Cluster sizes to choose from (by seed); not empty, each in
    /// `1..=`[`SimConfig::MAX_NODES`].
    pub cluster_sizes: Vec<u64>,
    /// Election timeouts (`election_tick`) to choose from (by seed); not
    /// empty, from 2 (a heartbeat must fit inside an election timeout) to
    /// [`ChaosConfig::MAX_ELECTION_TICK`].
    pub election_ticks: RangeInclusive<u32>,
    /// Ticks of faults, at least.
    pub chaos_ticks: u64,
    /// Election timeouts of faults, at least (runs with a long election
    /// timeout run longer).
    pub chaos_timeouts: u64,
    /// Ticks allowed, once faults stop, for a leader to be elected and a
    /// new proposal to be applied everywhere, at least.
    pub liveness_ticks: u64,
    /// The same bound in election timeouts (the larger bound applies).
    /// The default, 30, allows for runs of split votes: the simulated
    /// disks and network may take up to half an election timeout each, far
    /// beyond the thesis' timing requirement (broadcast time an order of
    /// magnitude below the election timeout, §3.4), so in a group shrunk to
    /// two voters, where any two candidacies that overlap split the vote,
    /// seven splits in a row were seen (seed 16561 with quiescence).
    pub liveness_timeouts: u64,
    /// Concurrent clients; some stick to the node they talk to until it
    /// refuses (so they keep talking to a deposed leader that does not
    /// know it yet).
    pub clients: u64,
    /// Keys the clients use; at least 1.
    pub keys: u64,
    /// Every seed runs with check-quorum and lease reads (the soak of
    /// `DSYS_SIM_LEASE=1`); otherwise each seed draws them.
    pub force_lease: bool,
    /// Every seed runs with quiescence (the soak of `DSYS_SIM_QUIESCE=1`);
    /// otherwise about 40% of seeds draw it.
    pub force_quiesce: bool,
    /// Half the seeds (drawn apart from the other options) run with
    /// membership changes ([`Options::membership`]).
    pub membership: bool,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self {
            cluster_sizes: vec![3, 5],
            election_ticks: 3..=30,
            chaos_ticks: 300,
            chaos_timeouts: 20,
            liveness_ticks: 200,
            liveness_timeouts: 30,
            clients: 4,
            keys: 3,
            force_lease: false,
            force_quiesce: false,
            membership: true,
        }
    }
}

impl ChaosConfig {
    /// The smallest election timeout a chaos run draws, in ticks: the
    /// heartbeat interval, at least 1, must stay below it.
    pub const MIN_ELECTION_TICK: u32 = 2;
    /// The largest election timeout a chaos run draws, in ticks.
    pub const MAX_ELECTION_TICK: u32 = 1 << 16;
    /// The largest of `chaos_ticks`, `chaos_timeouts`, `liveness_ticks`
    /// and `liveness_timeouts`: a run's length in time units, at most
    /// this times [`ChaosConfig::MAX_ELECTION_TICK`] times the tick
    /// interval, never overflows.
    pub const MAX_TICKS: u64 = 1 << 24;
    /// The most concurrent clients.
    pub const MAX_CLIENTS: u64 = 1 << 16;

    /// Checks every field.
    ///
    /// # Errors
    /// The first [`SimConfigError`] found.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        if self.cluster_sizes.is_empty() {
            return Err(SimConfigError::NoChoice {
                field: "ChaosConfig::cluster_sizes",
            });
        }
        for &nodes in &self.cluster_sizes {
            config::count("ChaosConfig::cluster_sizes", nodes, 1, SimConfig::MAX_NODES)?;
        }
        if self.election_ticks.is_empty() {
            return Err(SimConfigError::NoChoice {
                field: "ChaosConfig::election_ticks",
            });
        }
        for bound in [self.election_ticks.start(), self.election_ticks.end()] {
            config::count(
                "ChaosConfig::election_ticks",
                u64::from(*bound),
                u64::from(Self::MIN_ELECTION_TICK),
                u64::from(Self::MAX_ELECTION_TICK),
            )?;
        }
        let ticks = [
            ("ChaosConfig::chaos_ticks", self.chaos_ticks),
            ("ChaosConfig::chaos_timeouts", self.chaos_timeouts),
            ("ChaosConfig::liveness_ticks", self.liveness_ticks),
            ("ChaosConfig::liveness_timeouts", self.liveness_timeouts),
        ];
        for (field, value) in ticks {
            config::count(field, value, 0, Self::MAX_TICKS)?;
        }
        config::count("ChaosConfig::clients", self.clients, 0, Self::MAX_CLIENTS)?;
        config::count("ChaosConfig::keys", self.keys, 1, u64::MAX)
    }
}

/// The options a seed drew (output only: read from a [`Report`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Pre-vote (thesis §9.6).
    pub pre_vote: bool,
    /// Check-quorum (thesis §6.2).
    pub check_quorum: bool,
    /// Lease reads (thesis §6.4.1).
    pub lease: bool,
    /// Writes become durable some time after they are handed out.
    pub async_writes: bool,
    /// Acknowledgements lag durability (and cover several writes).
    pub ack_lag: bool,
    /// The state machine records its state, and restarts resume from it.
    pub snapshots: bool,
    /// Nodes take Raft snapshots and compact their logs (§7), so lagging
    /// followers are restored by snapshot.
    pub compaction: bool,
    /// Quiescence (`Config::quiesce_after_ticks`), with liveness fed from
    /// the scenario's own knowledge of crashed and cut-off nodes.
    pub quiesce: bool,
    /// Extra nodes start outside the cluster, and the leader is asked to
    /// change the membership now and then (thesis §4).
    pub membership: bool,
    /// Every node has a random leader priority hint (`Config::priority`).
    pub priorities: bool,
}

/// Faults the scenario injected (the simulation counts crashes and disk
/// outcomes itself, in [`SimStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Faults {
    /// Crashes between steps.
    pub crashes: u64,
    /// Mid-drain crashes armed.
    pub mid_drain_armed: u64,
    /// Symmetric partitions into two random groups.
    pub partitions: u64,
    /// One-way partitions (a group can send but not hear back).
    pub one_way: u64,
    /// Non-transitive partitions (A↔C cut, A↔B and B↔C up).
    pub non_transitive: u64,
    /// The leader cut off from everyone (both ways, or one way).
    pub leader_cut: u64,
    /// Heals.
    pub heals: u64,
    /// Leadership transfers asked for.
    pub transfers: u64,
    /// Campaigns started out of turn.
    pub campaigns: u64,
    /// Live peers reported down to a node (quiescence runs).
    pub false_suspicions: u64,
    /// Nodes (a quiesced group's leader, or a follower) crashed for good
    /// once the group went idle after the faults (quiescence runs).
    pub killed_at_calm: u64,
    /// Single-server membership changes a leader accepted.
    pub membership_changes: u64,
    /// Joint membership changes a leader accepted (Raft §6).
    pub joint_changes: u64,
    /// Explicit leaves of a joint configuration a leader accepted.
    pub joint_leaves: u64,
    /// Membership changes of any kind refused (one pending, joint, a
    /// learner not caught up, not the leader any more).
    pub membership_refused: u64,
}

/// What a passing run did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: u64,
    /// Election timeout, in ticks.
    pub election_tick: u32,
    /// Heartbeat interval, in ticks.
    pub heartbeat_tick: u32,
    /// The options drawn.
    pub options: Options,
    /// Leaders elected (distinct terms).
    pub elections: u64,
    /// Entries committed.
    pub committed: u64,
    /// Client operations completed, and left indeterminate.
    pub ops: (usize, usize),
    /// Faults injected.
    pub faults: Faults,
    /// Node, disk and client counters.
    pub sim: SimStats,
    /// Ticks from the end of faults until the cluster converged.
    pub recovery_ticks: u64,
    /// Network counters.
    pub network: NetworkStats,
    /// Times nodes quiesced and woke (nodes up at the end, since their
    /// last start).
    pub quiesces: (u64, u64),
}

/// A failing run: the seed to replay and what broke.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Failure {
    /// The seed that fails.
    pub seed: u64,
    /// What broke.
    pub violation: Violation,
    /// The run had lease reads forced on ([`ChaosConfig::force_lease`]).
    pub force_lease: bool,
    /// The run had quiescence forced on ([`ChaosConfig::force_quiesce`]).
    pub force_quiesce: bool,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lease = match (self.force_lease, self.force_quiesce) {
            (true, true) => "DSYS_SIM_LEASE=1 DSYS_SIM_QUIESCE=1 ",
            (true, false) => "DSYS_SIM_LEASE=1 ",
            (false, true) => "DSYS_SIM_QUIESCE=1 ",
            (false, false) => "",
        };
        write!(
            f,
            "seed {} failed: {}\nreplay: {lease}DSYS_SIM_SEED={} cargo test -p dsys-consensus --test simulation replay -- --nocapture",
            self.seed, self.violation, self.seed
        )
    }
}

impl std::error::Error for Failure {}

#[derive(Debug, Clone, Copy)]
struct Client {
    id: u64,
    target: u64,
    /// Stays with its target after a timeout (only a refusal moves it).
    sticky: bool,
    /// Probability that an operation is a put (else a get).
    puts: f64,
    /// Probability of starting an operation in a time unit, when idle.
    rate: f64,
    /// Moves to the leader its node names before each operation (else
    /// its reads are forwarded by a follower).
    redirects: bool,
    outstanding: Option<(OpId, u64)>,
}

impl Client {
    /// Clients take turns at four habits: a writer, a fast reader that
    /// follows its node's word on who leads and then sticks there (so it
    /// keeps asking a deposed leader that does not know it yet, and a
    /// stale lease read would be seen), a mixed client, and a slow reader
    /// that stays on its node (a follower forwards its reads).
    fn new(id: u64, target: u64) -> Self {
        let (sticky, puts, rate, redirects) = match id % 4 {
            1 => (false, 0.8, 0.05, true),
            2 => (true, 0.0, 0.2, true),
            3 => (false, 0.6, 0.05, true),
            _ => (false, 0.2, 0.05, false),
        };
        Self {
            id,
            target,
            sticky,
            puts,
            rate,
            redirects,
            outstanding: None,
        }
    }
}

/// Runs the scenario for `seed`.
///
/// # Errors
/// The first safety, liveness or linearizability violation.
///
/// # Panics
/// If `config` is invalid ([`ChaosConfig::validate`]): a test's setup
/// error, not an outcome of the run.
pub fn run(seed: u64, config: &ChaosConfig) -> Result<Report, Failure> {
    if let Err(error) = config.validate() {
        panic!("invalid chaos configuration: {error}");
    }
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed_c4a0_5eed_c4a0);
    let voters = config.cluster_sizes[rng.usize(..config.cluster_sizes.len().max(1))];
    // Drawn apart, so the other draws of a seed stay as they were.
    let mut membership_rng = fastrand::Rng::with_seed(seed ^ 0x3e3b_e125_41b0_c0de);
    let joining = if config.membership && membership_rng.bool() {
        1 + membership_rng.u64(..2)
    } else {
        0
    };
    let nodes = voters + joining;
    let election_tick = rng.u32(config.election_ticks.clone());
    let heartbeat_tick = rng.u32(1..=(election_tick / 2).max(1));
    let check_quorum = rng.f64() < 0.75;
    let pre_vote = rng.bool();
    let lease = check_quorum && rng.f64() < 0.7;
    let check_quorum = check_quorum || config.force_lease;
    let options = Options {
        pre_vote,
        check_quorum,
        lease: lease || config.force_lease,
        async_writes: rng.f64() < 0.75,
        ack_lag: rng.bool(),
        snapshots: rng.f64() < 0.7,
        compaction: rng.f64() < 0.6,
        membership: joining > 0,
        quiesce: false,
        priorities: false,
    };
    // Quiescence draws from a stream of its own, so every other draw of a
    // seed stays what it was before quiescence existed.
    let mut detector = Detector::new(seed, election_tick, config.force_quiesce);
    // So do priorities.
    let mut priority_rng = fastrand::Rng::with_seed(seed ^ 0x005e_ed0f_9a10_e1ec);
    let priorities: Vec<u64> = if priority_rng.f64() < 0.3 {
        (0..nodes).map(|_| priority_rng.u64(..4)).collect()
    } else {
        Vec::new()
    };
    let options = Options {
        quiesce: detector.on,
        priorities: !priorities.is_empty(),
        ..options
    };
    let raft = Config {
        election_tick,
        heartbeat_tick,
        pre_vote: options.pre_vote,
        check_quorum,
        read_only: if options.lease {
            ReadOnlyOption::LeaseBased
        } else {
            ReadOnlyOption::Safe
        },
        max_inflight_msgs: 1 + rng.usize(..8),
        max_size_per_msg: 64 + rng.u64(..512),
        // A snapshot of the clients' few keys is tens of bytes: chunks this
        // small make most transfers take several.
        snapshot_chunk_size: 8 + rng.u64(..40),
        max_snapshot_chunks_in_flight: 1 + rng.usize(..4),
        quiesce_after_ticks: detector.quiesce_after_ticks,
        ..Config::default()
    };
    let election_units = u64::from(election_tick) * TICK;
    let max_delay = 1 + rng.u64(..30);
    let network = NetworkConfig {
        min_delay: 1,
        max_delay,
        loss: rng.f64() * 0.1,
        duplicate: rng.f64() * 0.05,
        long_delay: if rng.bool() { rng.f64() * 0.02 } else { 0.0 },
        // Long delays are drawn from `max_delay..=long_delay_max`.
        long_delay_max: (election_units * (1 + rng.u64(..5))).max(max_delay),
        replay: if rng.bool() { rng.f64() * 0.02 } else { 0.0 },
    };
    let sim_config = SimConfig {
        nodes,
        raft,
        network,
        tick_interval: TICK,
        // Disks slower than an election timeout would keep any cluster
        // from electing: writes take up to half of one.
        max_persist_delay: if options.async_writes {
            1 + rng.u64(..(election_units / 2).min(50))
        } else {
            0
        },
        joining,
        priorities,
    };
    let disk = DiskConfig {
        max_ack_lag: if options.ack_lag {
            1 + rng.u64(..(election_units / 4).min(20))
        } else {
            0
        },
        keep_on_crash: 0.5,
        tear_on_crash: 0.7,
        snapshot_state_machine: if options.snapshots {
            0.02 + rng.f64() * 0.3
        } else {
            0.0
        },
        compact: if options.compaction {
            0.02 + rng.f64() * 0.2
        } else {
            0.0
        },
        // Some restores take up to two election timeouts: the node waits
        // for them, while elections and transfers go on around it.
        max_restore_delay: if options.compaction && rng.bool() {
            rng.u64(..=2 * election_units)
        } else {
            0
        },
    };
    let mut sim = Simulation::with_disk(sim_config, disk, seed)
        .expect("a chaos run draws valid configurations");
    let mut clients: Vec<Client> = (1..=config.clients)
        .map(|id| Client::new(id, 1 + rng.u64(..nodes)))
        .collect();
    let client_timeout = (4 * u64::from(election_tick)).max(40) * TICK;
    let mut faults = Faults::default();
    let fail = |violation: Violation| Failure {
        seed,
        violation,
        force_lease: config.force_lease,
        force_quiesce: config.force_quiesce,
    };
    let chaos_ticks = config
        .chaos_ticks
        .max(config.chaos_timeouts * u64::from(election_tick));

    // Chaos.
    for _ in 0..chaos_ticks * TICK {
        if sim.time() % TICK == 0 {
            inject_faults(&mut sim, &mut rng, nodes, election_tick, &mut faults);
            detector.report(&mut sim, nodes, true, &mut faults);
            if options.membership {
                change_membership(
                    &mut sim,
                    &mut membership_rng,
                    nodes,
                    election_tick,
                    &mut faults,
                );
            }
        }
        if !detector.clients_pause(sim.time()) {
            for client in &mut clients {
                drive_client(&mut sim, &mut rng, client, config, client_timeout, true);
            }
        }
        sim.step();
        if let Some(v) = sim.violation() {
            return Err(fail(v.clone()));
        }
    }

    // Calm: faults stop (messages already held back still arrive), clients
    // finish what they started.
    sim.heal();
    sim.disarm_crashes();
    sim.set_network(NetworkConfig::reliable(1, 10))
        .expect("a reliable network is a valid configuration");
    for id in 1..=nodes {
        sim.restart(id);
    }
    if let Some(v) = sim.violation() {
        return Err(fail(v.clone()));
    }
    // Quiescence's hinge: in some runs the group idles until it can
    // quiesce, then its leader (or a follower) dies for good; only
    // liveness reports can wake the quiesced followers to replace a dead
    // leader, and a dead follower must not keep the group awake.
    // One node of three or more, so the rest are a majority; and only with
    // pre-vote: without it, a survivor whose log is behind keeps bumping
    // the term and resetting the up-to-date one's timer with vote requests
    // it cannot win, and two survivors with slow disks can split votes for
    // longer than the liveness bound (plain Raft's disruption, thesis
    // §9.6, not quiescence's: seed 19879 of `DSYS_SIM_QUIESCE=1` showed
    // it with no node quiesced).
    if let Some(victim) = detector
        .kill_at_calm
        .filter(|_| nodes >= 3 && options.pre_vote)
    {
        let idle = u64::from(detector.quiesce_after_ticks) + 3 * u64::from(election_tick);
        for _ in 0..idle * TICK {
            if sim.time() % TICK == 0 {
                detector.report(&mut sim, nodes, false, &mut faults);
            }
            sim.step();
            if let Some(v) = sim.violation() {
                return Err(fail(v.clone()));
            }
        }
        // Membership changes may have shrunk the cluster since it started:
        // kill for good only while three or more voters remain, so the
        // others are still a majority (a 2-voter cluster that loses one can
        // never commit again; seed 34 with both on).
        // While joint, both voter sets must survive the loss (seed 5185:
        // C_old was one node, and it was killed).
        let tolerant = sim
            .leader()
            .and_then(|leader| sim.node(leader))
            .map(|raft| raft.membership())
            .is_some_and(|m| {
                m.voters().len() >= 3 && (!m.is_joint() || m.outgoing_voters().len() >= 3)
            });
        if tolerant {
            let victim = match (victim, sim.leader()) {
                (Victim::Leader, Some(leader)) => leader,
                (_, leader) => (1..=nodes)
                    .find(|&id| Some(id) != leader && sim.is_up(id))
                    .expect("a cluster of two or more has a follower"),
            };
            sim.crash(victim);
            faults.crashes += 1;
            faults.killed_at_calm += 1;
        }
    }
    let liveness_ticks = config
        .liveness_ticks
        .max(config.liveness_timeouts * u64::from(election_tick));
    let plain_membership = options.membership && !options.pre_vote && !check_quorum;
    let recovery = sim.recover_with(liveness_ticks * TICK, |sim| {
        if sim.time() % TICK == 0 {
            detector.report(sim, nodes, false, &mut faults);
            if plain_membership {
                faults.crashes += self::membership::stop_removed_voters(sim, nodes);
            }
        }
        for client in &mut clients {
            drive_client(sim, &mut rng, client, config, client_timeout, false);
        }
    });
    let recovery_ticks = recovery.map_err(fail)?.div_ceil(TICK);
    sim.check_logs().map_err(fail)?;
    sim.check_disks().map_err(fail)?;
    sim.check_history().map_err(fail)?;
    let pending = sim.history().pending();
    let completed = sim.history().len() - pending;
    let elections = sim
        .take_events()
        .iter()
        .filter(|e| matches!(e, super::SimEvent::Elected { .. }))
        .count() as u64;
    let quiesces = (1..=nodes)
        .filter_map(|id| sim.node(id))
        .map(|n| (n.counters().quiesces, n.counters().wakes))
        .fold((0, 0), |(q, w), (a, b)| (q + a, w + b));
    Ok(Report {
        seed,
        nodes,
        election_tick,
        heartbeat_tick,
        options,
        elections,
        committed: sim.committed(),
        ops: (completed, pending),
        faults,
        sim: sim.stats(),
        recovery_ticks,
        network: sim.network_stats(),
        quiesces,
    })
}

fn drive_client(
    sim: &mut Simulation,
    rng: &mut fastrand::Rng,
    client: &mut Client,
    config: &ChaosConfig,
    timeout: u64,
    start_new: bool,
) {
    let nodes = sim.config().nodes;
    if let Some((op, started)) = client.outstanding {
        if sim.is_complete(op) {
            client.outstanding = None;
        } else if sim.has_failed(op) {
            // Refused after the fact: try again, elsewhere unless sticky.
            client.outstanding = None;
            if !client.sticky {
                client.target = 1 + rng.u64(..nodes);
            }
        } else if sim.time() > started + timeout {
            // Give up: the operation stays indeterminate in the history.
            client.outstanding = None;
            if !client.sticky || !sim.is_up(client.target) {
                client.target = 1 + rng.u64(..nodes);
            }
        } else {
            return;
        }
    }
    if !start_new || rng.f64() >= client.rate {
        return;
    }
    // Clients talk to the leader their node names (a redirect, as etcd's
    // clients follow): a node that still believes it leads keeps them.
    if let Some(leader) = sim
        .node(client.target)
        .and_then(|raft| raft.leader().copied())
        .filter(|_| client.redirects)
    {
        client.target = leader;
    }
    let key = rng.u64(..config.keys);
    let refused_by = if rng.f64() < client.puts {
        let value = client.id << 32 | rng.u64(..1 << 31);
        match sim.put(client.id, client.target, key, value) {
            Ok(_) => None,
            Err(ProposeError::NotLeader { leader }) => Some(leader),
            Err(_) => return,
        }
    } else {
        match sim.get(client.id, client.target, key) {
            Ok(()) => None,
            Err(ReadError::NoLeader) => Some(None),
            Err(_) => return,
        }
    };
    match refused_by {
        None => client.outstanding = sim.last_op().map(|op| (op, sim.time())),
        Some(Some(leader)) => client.target = leader,
        Some(None) => client.target = 1 + rng.u64(..nodes),
    }
}
