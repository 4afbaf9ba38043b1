//! The standard measurements, generic over the implementation: the same plan and
//! seed give every implementation the same network, the same join times, the same
//! crash victims and the same pause schedule (these come from a scenario RNG that
//! does not depend on what the nodes do), so figures can be compared side by side.
//!
//! [`run`] performs, on one simulation: bootstrap (everyone joins through node 0
//! and converges), steady-state traffic, churn (a member crashes, and once everyone
//! has marked it Down a replacement joins, so the cluster size stays put), a period of
//! uniform packet loss, and slow-node phases (one node repeatedly paused, or its
//! receive path stalled). The phase functions are public so tests can compose their
//! own runs.

use std::time::{Duration, Instant};

use super::{
    Latencies, Livelock, MAX_VIRTUAL_TIME, NetworkConfig, Sim, SimConfigError, SimEventKind,
    SimNode, Traffic,
};

/// Why a scenario stopped: its plan is out of limits, or the run livelocked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The plan ([`Plan::validate`]), its network ([`Plan::net`]), or a loss
    /// probability given to [`lossy`] is out of its limits.
    ///
    /// State: nothing changed; no simulation was built, or the loss phase did not
    /// start.
    #[error(transparent)]
    Config(#[from] SimConfigError),
    /// The simulation exceeded its event budget.
    ///
    /// State: the simulation stopped where it was; it is intact and inspectable.
    #[error(transparent)]
    Livelock(#[from] Livelock),
}

/// What to measure, and for how long: the configuration of a scenario run. Build it
/// from [`Plan::default`] (or the preset [`Plan::new`], which sizes it for a cluster
/// and a seed) and assign fields; [`Plan::validate`] (called by [`bootstrap`] and
/// [`run`]) checks the limits each field documents. Every duration is at most
/// [`MAX_VIRTUAL_TIME`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// Cluster size after bootstrap: between 1 and [`Plan::MAX_NODES`].
    pub nodes: usize,
    /// Seeds the network and the scenario RNG.
    pub seed: u64,
    /// The network (its `loss` applies from the start; the loss phase adds its own),
    /// checked by [`NetworkConfig::validate`].
    pub net: NetworkConfig,
    /// The implementations' protocol period, to express delays in periods. Above
    /// zero (reports divide by it).
    pub probe_interval: Duration,
    /// Bootstrap joins are spread uniformly over this window.
    pub join_window: Duration,
    /// Give up on bootstrap convergence after this long.
    pub converge_timeout: Duration,
    /// Steady-state traffic is measured over this window.
    pub traffic_window: Duration,
    /// Churn rounds: crash a random member, wait until every live member has
    /// marked it Down, join a replacement through a random member, wait until
    /// every member has it Up, wait `churn_gap`. At most [`Plan::MAX_CHURN`].
    pub churn: usize,
    /// Quiet time after each churn round.
    pub churn_gap: Duration,
    /// Give up on a join or a crash reaching everyone after this long.
    pub spread_timeout: Duration,
    /// Quiet time between phases (not measured).
    pub settle: Duration,
    /// Loss probability of the loss phase, in `[0, 1]`.
    pub loss: f64,
    /// Length of the loss phase.
    pub loss_duration: Duration,
    /// Slow-node phases, one after the other, each on a node picked at random.
    pub slow: Vec<SlowPhase>,
}

/// How a slow node misbehaves (see [`Sim::pause`] and [`Sim::stall_receive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallKind {
    /// The whole process freezes (GC, SIGSTOP, a starved VM).
    Pause,
    /// Only the receive path stalls; timers and sends go on (the Lifeguard paper's
    /// "slow message processing").
    Receive,
}

/// One slow-node phase: a node stalls repeatedly for `duration`; Downs are counted
/// over that time plus the plan's `settle`. Part of a [`Plan`], which validates it:
/// every duration at most [`MAX_VIRTUAL_TIME`], each range's low end at most its high
/// end, and `stall.1 + gap.1` above zero (rounds advance virtual time). Start
/// from a preset ([`SlowPhase::pauses`]...) and assign fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlowPhase {
    /// What kind of stall.
    pub kind: StallKind,
    /// Stall lengths are uniform in this range.
    pub stall: (Duration, Duration),
    /// Gaps between stalls are uniform in this range.
    pub gap: (Duration, Duration),
    /// How long the node keeps stalling.
    pub duration: Duration,
}

impl SlowPhase {
    fn validate(&self, index: usize) -> Result<(), SimConfigError> {
        let fail = |field, reason| {
            Err(SimConfigError::SlowPhase {
                index,
                field,
                reason,
            })
        };
        for (field, (lo, hi)) in [("stall", self.stall), ("gap", self.gap)] {
            if hi > MAX_VIRTUAL_TIME {
                return fail(field, "its high end is above sim::MAX_VIRTUAL_TIME");
            }
            if lo > hi {
                return fail(field, "its low end is above its high end");
            }
        }
        if self.duration > MAX_VIRTUAL_TIME {
            return fail("duration", "it is above sim::MAX_VIRTUAL_TIME");
        }
        if (self.stall.1 + self.gap.1).is_zero() {
            return fail(
                "stall",
                "stall and gap are both always zero: no round would advance virtual time",
            );
        }
        Ok(())
    }

    /// Whole-process pauses of 2–5 s (longer than a protocol period, shorter than
    /// the suspicion timeout), 2–6 s apart, for 120 s.
    pub fn pauses() -> Self {
        SlowPhase {
            kind: StallKind::Pause,
            stall: (Duration::from_secs(2), Duration::from_secs(5)),
            gap: (Duration::from_secs(2), Duration::from_secs(6)),
            duration: Duration::from_secs(120),
        }
    }

    /// Receive stalls of 2–5 s, 2–6 s apart, for 120 s.
    pub fn receive_stalls() -> Self {
        SlowPhase {
            kind: StallKind::Receive,
            ..Self::pauses()
        }
    }

    /// Receive stalls of 10–25 s (longer than the shortest suspicion timeout, so a
    /// plain-SWIM slow node declares the members it suspects Down before it reads
    /// their refutations), 5–10 s apart, for 120 s.
    pub fn long_receive_stalls() -> Self {
        SlowPhase {
            kind: StallKind::Receive,
            stall: (Duration::from_secs(10), Duration::from_secs(25)),
            gap: (Duration::from_secs(5), Duration::from_secs(10)),
            duration: Duration::from_secs(120),
        }
    }
}

impl Default for Plan {
    /// [`Plan::new`] for 20 nodes and seed 0.
    fn default() -> Self {
        Plan::new(20, 0)
    }
}

impl Plan {
    /// Largest [`nodes`](Plan::nodes): 100 000.
    pub const MAX_NODES: usize = 100_000;
    /// Largest [`churn`](Plan::churn): 100 000 rounds.
    pub const MAX_CHURN: usize = 100_000;

    /// Checks every field against its documented limits, the network and each slow
    /// phase included.
    ///
    /// # Errors
    ///
    /// The first field found out of its limits.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        check_count("nodes", self.nodes, 1, Self::MAX_NODES)?;
        check_count("churn", self.churn, 0, Self::MAX_CHURN)?;
        self.net.validate()?;
        if self.probe_interval.is_zero() {
            return Err(SimConfigError::Zero {
                field: "probe_interval",
            });
        }
        for (field, d) in [
            ("probe_interval", self.probe_interval),
            ("join_window", self.join_window),
            ("converge_timeout", self.converge_timeout),
            ("traffic_window", self.traffic_window),
            ("churn_gap", self.churn_gap),
            ("spread_timeout", self.spread_timeout),
            ("settle", self.settle),
            ("loss_duration", self.loss_duration),
        ] {
            check_duration(field, d)?;
        }
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(SimConfigError::Probability {
                field: "loss",
                got: self.loss,
            });
        }
        for (index, phase) in self.slow.iter().enumerate() {
            phase.validate(index)?;
        }
        Ok(())
    }

    /// Defaults: 1 s protocol period, joins over 2 s, convergence within
    /// 60 s + 60 ms per node, 10 s traffic window, 10 churn rounds, 120 s of
    /// 5 % loss, then the three [`SlowPhase`] presets (pauses, receive stalls, long
    /// receive stalls).
    pub fn new(nodes: usize, seed: u64) -> Self {
        Plan {
            nodes,
            seed,
            net: NetworkConfig::default(),
            probe_interval: Duration::from_secs(1),
            join_window: Duration::from_secs(2),
            converge_timeout: Duration::from_secs(60)
                + Duration::from_millis(60) * u32::try_from(nodes).unwrap_or(u32::MAX),
            traffic_window: Duration::from_secs(10),
            churn: 10,
            churn_gap: Duration::from_secs(5),
            spread_timeout: Duration::from_secs(90),
            settle: Duration::from_secs(15),
            loss: 0.05,
            loss_duration: Duration::from_secs(120),
            slow: vec![
                SlowPhase::pauses(),
                SlowPhase::receive_stalls(),
                SlowPhase::long_receive_stalls(),
            ],
        }
    }

    /// The scenario RNG of one phase: independent of the network RNG and of what
    /// the nodes do, so every implementation gets the same draws.
    fn scenario_rng(&self, phase: u64) -> fastrand::Rng {
        fastrand::Rng::with_seed(self.seed ^ 0x5eed_5ce7_a210_0000 ^ phase)
    }
}

fn check_count(
    field: &'static str,
    got: usize,
    min: usize,
    max: usize,
) -> Result<(), SimConfigError> {
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(SimConfigError::Count {
            field,
            got,
            min,
            max,
        })
    }
}

fn check_duration(field: &'static str, d: Duration) -> Result<(), SimConfigError> {
    if d > MAX_VIRTUAL_TIME {
        Err(SimConfigError::TooLong {
            field,
            max: MAX_VIRTUAL_TIME,
        })
    } else {
        Ok(())
    }
}

/// Down events of nodes that had not failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FalseDowns {
    /// Down events (one per observer and occurrence).
    pub events: usize,
    /// Distinct (observer, subject) pairs.
    pub pairs: usize,
    /// Distinct subjects.
    pub subjects: usize,
}

/// Traffic per live node per second of virtual time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rate {
    /// Packets sent per node per second.
    pub msgs: f64,
    /// Bytes sent per node per second.
    pub bytes: f64,
}

/// Everything [`run`] measured for one implementation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Cluster size.
    pub nodes: usize,
    /// When bootstrap converged (all live nodes see all live nodes), `None` if it
    /// did not within the plan's timeout.
    pub bootstrap: Option<Duration>,
    /// Steady-state traffic.
    pub traffic: Rate,
    /// Per observer: from a join until the observer had the new node Up.
    pub join: Latencies,
    /// Per join: until every live member had the new node Up (missing: joins that
    /// never reached everyone).
    pub join_all: Latencies,
    /// Per observer: from a crash until the observer marked the node Down.
    pub crash: Latencies,
    /// Per crash: until every live member had marked it Down.
    pub crash_all: Latencies,
    /// False Downs during the loss phase.
    pub loss_false: FalseDowns,
    /// Traffic during the loss phase.
    pub loss_traffic: Rate,
    /// One outcome per slow-node phase of the plan, in order.
    pub slow: Vec<SlowOutcome>,
}

/// Adds `plan.nodes` nodes built by `make(index, now)`: node 0 at time zero, the
/// others at uniform random times within the join window, each joining through
/// node 0; then runs until every node's events show every other node live.
/// Returns the simulation and the convergence time (`None`: timed out).
///
/// # Errors
///
/// The plan is out of its limits ([`Plan::validate`]; nothing ran), or the run
/// livelocked.
pub fn bootstrap<N: SimNode>(
    plan: &Plan,
    base: Instant,
    mut make: impl FnMut(usize, Instant) -> N,
) -> Result<(Sim<N>, Option<Duration>), ScenarioError> {
    plan.validate()?;
    let mut rng = plan.scenario_rng(1);
    let mut sim = Sim::new(plan.net.clone(), plan.seed, base)?;
    let window = plan.join_window.as_nanos() as u64;
    let mut times: Vec<u64> = (1..plan.nodes).map(|_| rng.u64(0..=window)).collect();
    times.sort_unstable();
    let first = make(0, sim.instant());
    sim.add_node(first);
    for (k, t) in times.into_iter().enumerate() {
        sim.run_until(Duration::from_nanos(t))?;
        let node = make(k + 1, sim.instant());
        let i = sim.add_node(node);
        sim.join(i, &[0]);
    }
    let every = check_every(plan.nodes);
    let converged = sim.run_until_cond(plan.converge_timeout, every, Sim::views_converged)?;
    Ok((sim, converged))
}

/// Convergence checks are `O(n²)`; check less often in big clusters.
fn check_every(nodes: usize) -> Duration {
    if nodes > 300 {
        Duration::from_millis(500)
    } else {
        Duration::from_millis(100)
    }
}

/// Packets and bytes sent per live node per second over the next `window`.
pub fn traffic<N: SimNode>(sim: &mut Sim<N>, window: Duration) -> Result<Rate, Livelock> {
    let before = sim.traffic();
    sim.run_for(window)?;
    Ok(rate(sim, sim.traffic().since(before), window))
}

fn rate<N: SimNode>(sim: &Sim<N>, t: Traffic, window: Duration) -> Rate {
    let per = sim.live_nodes().len().max(1) as f64 * window.as_secs_f64().max(1e-9);
    Rate {
        msgs: t.packets as f64 / per,
        bytes: t.bytes as f64 / per,
    }
}

/// Adds `node` (already built with the next index), joins it through `seed`, and
/// runs until every live member has it Up or `timeout` passes. Returns the
/// per-observer delays (observers: the live members at join time).
pub fn join<N: SimNode>(
    sim: &mut Sim<N>,
    node: N,
    seed: usize,
    timeout: Duration,
) -> Result<Latencies, Livelock> {
    let observers = sim.live_nodes();
    let i = sim.add_node(node);
    let start = sim.now();
    sim.join(i, &[seed]);
    let every = check_every(observers.len());
    sim.run_until_cond(timeout, every, |s| {
        observers
            .iter()
            .all(|&o| !s.is_live(o) || s.sees_live(o, i))
    })?;
    let live: Vec<usize> = observers.into_iter().filter(|&o| sim.is_live(o)).collect();
    Ok(sim.first_events(i, start, &[SimEventKind::Up, SimEventKind::Rejoined], &live))
}

/// Crashes `victim` and runs until every live member that had it live marks it
/// Down, or `timeout` passes. Returns the per-observer delays.
pub fn crash<N: SimNode>(
    sim: &mut Sim<N>,
    victim: usize,
    timeout: Duration,
) -> Result<Latencies, Livelock> {
    let observers: Vec<usize> = sim
        .live_nodes()
        .into_iter()
        .filter(|&o| o != victim && sim.sees_live(o, victim))
        .collect();
    sim.crash(victim);
    let start = sim.now();
    let every = Duration::from_millis(100);
    sim.run_until_cond(timeout, every, |s| {
        observers
            .iter()
            .all(|&o| !s.is_live(o) || s.view(o, victim) == Some(SimEventKind::Down))
    })?;
    let live: Vec<usize> = observers.into_iter().filter(|&o| sim.is_live(o)).collect();
    Ok(sim.first_events(victim, start, &[SimEventKind::Down], &live))
}

/// Counts Down events in `from..to` whose subject satisfies `counted` and is live
/// (not crashed, not departed), excluding self-reports.
pub fn downs<N: SimNode>(
    sim: &Sim<N>,
    from: Duration,
    to: Duration,
    counted: impl Fn(usize) -> bool,
) -> FalseDowns {
    let mut pairs = std::collections::BTreeSet::new();
    let mut subjects = std::collections::BTreeSet::new();
    let mut events = 0;
    for e in sim.events_between(from, to) {
        if e.kind == SimEventKind::Down
            && e.observer != e.subject
            && e.subject < sim.len()
            && sim.is_live(e.subject)
            && counted(e.subject)
        {
            events += 1;
            pairs.insert((e.observer, e.subject));
            subjects.insert(e.subject);
        }
    }
    FalseDowns {
        events,
        pairs: pairs.len(),
        subjects: subjects.len(),
    }
}

/// Runs `duration` with loss probability `loss` on every link (per-link overrides
/// untouched), then restores the previous loss. Returns the Downs of live nodes
/// during the phase and the traffic.
///
/// # Errors
///
/// `loss` is not a probability (nothing ran), or the run livelocked.
pub fn lossy<N: SimNode>(
    sim: &mut Sim<N>,
    loss: f64,
    duration: Duration,
) -> Result<(FalseDowns, Rate), ScenarioError> {
    let previous = sim.net().loss;
    sim.set_loss(loss)?;
    let start = sim.now();
    let rate = traffic(sim, duration)?;
    sim.set_loss(previous)?;
    Ok((downs(sim, start, sim.now(), |_| true), rate))
}

/// What [`slow_node`] observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowOutcome {
    /// The phase that was run.
    pub phase: SlowPhase,
    /// The slow node.
    pub node: usize,
    /// Downs of healthy nodes (every node but the slow one).
    pub healthy: FalseDowns,
    /// Downs of the slow node.
    pub slow: FalseDowns,
    /// Stalls performed.
    pub stalls: usize,
    /// Longest stall.
    pub longest: Duration,
}

/// Stalls `node` repeatedly as `phase` says (lengths and gaps drawn from `rng`),
/// then runs `tail` more without stalls. Counts Downs over the whole time,
/// separately for healthy nodes and the slow one.
pub fn slow_node<N: SimNode>(
    sim: &mut Sim<N>,
    node: usize,
    phase: &SlowPhase,
    tail: Duration,
    rng: &mut fastrand::Rng,
) -> Result<SlowOutcome, Livelock> {
    let start = sim.now();
    let end = start + phase.duration;
    let uniform = |rng: &mut fastrand::Rng, (lo, hi): (Duration, Duration)| {
        let lo = lo.as_nanos() as u64;
        Duration::from_nanos(rng.u64(lo..=(hi.as_nanos() as u64).max(lo)))
    };
    let mut stalls = 0;
    let mut longest = Duration::ZERO;
    while sim.now() < end {
        let stall = uniform(rng, phase.stall).min(end - sim.now());
        let gap = uniform(rng, phase.gap);
        match phase.kind {
            StallKind::Pause => sim.pause(node, stall),
            StallKind::Receive => sim.stall_receive(node, stall),
        }
        stalls += 1;
        longest = longest.max(stall);
        sim.run_until((sim.now() + stall + gap).min(end))?;
    }
    sim.run_for(tail)?;
    Ok(SlowOutcome {
        phase: *phase,
        node,
        healthy: downs(sim, start, sim.now(), |s| s != node),
        slow: downs(sim, start, sim.now(), |s| s == node),
        stalls,
        longest,
    })
}

/// The whole measurement for one implementation: bootstrap, traffic, churn, loss,
/// slow nodes (see the module docs). `make(index, now)` builds node
/// `index`.
///
/// # Errors
///
/// The plan is out of its limits ([`Plan::validate`], checked first; nothing ran),
/// or the run livelocked.
pub fn run<N: SimNode>(
    plan: &Plan,
    base: Instant,
    mut make: impl FnMut(usize, Instant) -> N,
) -> Result<Report, ScenarioError> {
    let mut rng = plan.scenario_rng(2);
    let (mut sim, converged) = bootstrap(plan, base, &mut make)?;
    let mut report = Report {
        nodes: plan.nodes,
        bootstrap: converged,
        ..Report::default()
    };
    sim.run_for(plan.settle)?;
    report.traffic = traffic(&mut sim, plan.traffic_window)?;

    for _ in 0..plan.churn {
        let live = sim.live_nodes();
        if live.len() < 3 {
            break;
        }
        let victim = live[rng.usize(..live.len())];
        let lat = crash(&mut sim, victim, plan.spread_timeout)?;
        push_all(&mut report.crash_all, &lat);
        report.crash.merge(&lat);

        let live = sim.live_nodes();
        let seed = live[rng.usize(..live.len())];
        let node = make(sim.len(), sim.instant());
        let lat = join(&mut sim, node, seed, plan.spread_timeout)?;
        push_all(&mut report.join_all, &lat);
        report.join.merge(&lat);
        sim.run_for(plan.churn_gap)?;
    }
    sim.run_for(plan.settle)?;

    let (loss_false, loss_traffic) = lossy(&mut sim, plan.loss, plan.loss_duration)?;
    report.loss_false = loss_false;
    report.loss_traffic = loss_traffic;
    sim.run_for(plan.settle)?;

    for phase in &plan.slow {
        let live = sim.live_nodes();
        let slow = live[rng.usize(..live.len())];
        report
            .slow
            .push(slow_node(&mut sim, slow, phase, plan.settle, &mut rng)?);
    }
    Ok(report)
}

fn push_all(all: &mut Latencies, one: &Latencies) {
    match one.all() {
        Some(d) => all.samples.push(d),
        None => all.missing += 1,
    }
}
