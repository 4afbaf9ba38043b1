//! Chapter `detect`: dsys-detect on the seed's "9. Failure Detection"
//! (seed 002): heartbeats with a timeout, the phi accrual detector of
//! Cassandra and Akka, and SWIM as in memberlist and Consul.
//!
//! 1. A peer heartbeats every second (seeded jitter), then falls silent.
//!    Akka's phi (normal model) and Cassandra's (exponential model) climb;
//!    a text plot shows phi passing the seed's 1, 2, 3 and the threshold 8,
//!    next to a fixed 3 s timeout.
//! 2. The same silence after a steady history and after a jittery one:
//!    phi adapts to what it learned, a fixed timeout cannot.
//! 3. Twenty SWIM members (memberlist's LAN defaults, Lifeguard on) in the
//!    seeded network simulator: node 7 crashes, node 13 freezes twice for
//!    3 s (a GC pause). A timeline of who suspected whom and when, who
//!    declared whom down, the slow node's refutations, and the traffic.
//!
//! Time is virtual: a base `Instant` plus offsets, and only offsets are
//! printed. Jitter comes from a seeded generator and the simulator is
//! seeded, so every number is the same on every run.

use std::collections::{BTreeMap, BTreeSet};
use std::f64::consts::LN_10;
use std::time::{Duration, Instant};

use dsys_detect::sim::{NetConfig, Sim, SimEventKind, SimNode};
use dsys_detect::swim::{Config, Event, State, Swim};
use dsys_detect::{HeartbeatDetector, PhiAccrual, PhiConfig, PhiModel};

use crate::report::{self, Res, Table, check, check_eq};

/// Runs the chapter.
pub(crate) fn run() -> Res {
    let base = Instant::now();
    phi_climbs(base)?;
    phi_adapts(base)?;
    swim(base)?;
    Ok(())
}

// --- Heartbeats and the three detectors -----------------------------------------------

/// Heartbeats the peer sends before it falls silent.
const HEARTBEATS: usize = 60;

/// Its heartbeat interval, before jitter (Akka's `heartbeat-interval`).
const INTERVAL: Duration = Duration::from_secs(1);

/// The fixed timeout of the plain heartbeat detector.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Akka's threshold, Cassandra's `phi_convict_threshold`, the seed's "e.g. 8".
const THRESHOLD: f64 = 8.0;

/// The seed's readings of phi, and the threshold.
const LEVELS: [f64; 4] = [1.0, 2.0, 3.0, THRESHOLD];

/// SplitMix64: a tiny seeded generator for the heartbeat jitter.
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce5_e9b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `-spread..=spread`, whole milliseconds.
    fn offset_ms(&mut self, spread: Duration) -> i64 {
        let spread = spread.as_millis() as i64;
        (self.next() % (2 * spread as u64 + 1)) as i64 - spread
    }
}

/// A heartbeat history: arrival offsets from time zero.
struct History {
    name: &'static str,
    arrivals: Vec<Duration>,
}

impl History {
    /// `HEARTBEATS` arrivals, `INTERVAL` apart plus or minus up to `jitter`.
    fn new(name: &'static str, jitter: Duration, seed: u64) -> Self {
        let mut rng = Jitter(seed);
        let mut at = Duration::ZERO;
        let mut arrivals = Vec::with_capacity(HEARTBEATS);
        for _ in 0..HEARTBEATS {
            arrivals.push(at);
            let ms = INTERVAL.as_millis() as i64 + rng.offset_ms(jitter);
            at += Duration::from_millis(ms as u64);
        }
        Self { name, arrivals }
    }

    /// The history of sections 1 and 2: a steady network.
    fn steady() -> Self {
        Self::new("steady (1 s +- 100 ms)", Duration::from_millis(100), 2)
    }

    fn last(&self) -> Duration {
        self.arrivals.last().copied().unwrap_or_default()
    }
}

/// The three detectors, fed the same heartbeats.
struct Detectors {
    akka: PhiAccrual,
    cassandra: PhiAccrual,
    timeout: HeartbeatDetector,
}

impl Detectors {
    fn new() -> Res<Self> {
        Ok(Self {
            // Akka's defaults: normal model, 3 s acceptable pause, 100 ms minimum
            // standard deviation, threshold 8.
            akka: PhiAccrual::new(PhiConfig::default())?,
            cassandra: PhiAccrual::new(PhiConfig {
                model: PhiModel::Exponential,
                ..PhiConfig::default()
            })?,
            timeout: HeartbeatDetector::new(TIMEOUT),
        })
    }

    fn heartbeat(&mut self, now: Instant) {
        self.akka.heartbeat(now);
        self.cassandra.heartbeat(now);
        self.timeout.heartbeat(now);
    }

    /// The detectors after the whole history.
    fn after(history: &History, base: Instant) -> Res<Self> {
        let mut detectors = Self::new()?;
        for &at in &history.arrivals {
            detectors.heartbeat(base + at);
        }
        Ok(detectors)
    }
}

/// The first silence (1 ms steps, up to a minute) at which `phi` reaches `level`.
fn crossing(fd: &PhiAccrual, last: Instant, level: f64) -> Option<Duration> {
    (0..=60_000u64)
        .map(Duration::from_millis)
        .find(|&silence| fd.phi(last + silence) >= level)
}

/// `4.13 s`.
fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `10^-phi`, the chance that suspecting the peer now is a mistake (as far as
/// the model fits), as a percentage or, when tiny, a power of ten.
fn mistake(phi: f64) -> String {
    if phi < 0.005 {
        "100%".to_owned()
    } else if phi < 3.5 {
        let percent = 100.0 * 10f64.powf(-phi);
        let digits = (1 - percent.log10().floor() as i32).max(0) as usize;
        format!("{percent:.digits$}%")
    } else {
        format!("1 in 10^{}", phi.floor())
    }
}

/// A bar of `#`, two per unit of phi, cut at phi = 10 with a `>`.
fn bar(phi: f64) -> String {
    const PER_UNIT: f64 = 2.0;
    const MAX: f64 = 10.0;
    let n = (phi.min(MAX) * PER_UNIT).round() as usize;
    let mut bar = "#".repeat(n);
    if phi > MAX {
        bar.push('>');
    }
    bar
}

fn phi_climbs(base: Instant) -> Res {
    report::section("1. The heartbeats stop: phi climbs");
    let history = History::steady();
    let detectors = Detectors::after(&history, base)?;
    let last = base + history.last();
    let (akka, cassandra) = (&detectors.akka, &detectors.cassandra);
    report::note(&format!(
        "A peer sends {HEARTBEATS} heartbeats, one every {} +- 100 ms (seeded jitter), then \
         stops. Three detectors watch it: Akka's phi accrual detector (its defaults: normal \
         model, {} acceptable pause, 100 ms minimum standard deviation, threshold {THRESHOLD}), \
         Cassandra's (exponential model) and a plain {} timeout. Learned from the window: mean \
         {}, standard deviation {}.",
        secs(INTERVAL),
        secs(akka.config().acceptable_heartbeat_pause),
        secs(TIMEOUT),
        ms(akka.mean()),
        ms(akka.std_deviation()),
    ));
    report::note(
        "Akka's phi after t seconds of silence, plotted, with the seed's reading of it: phi = 1 \
         means suspecting the peer now is a false alarm 10% of the time, 2 means 1%, 3 means \
         0.1%: P(false alarm) = 10^-phi. Cassandra's phi and the timeout's verdict alongside.",
    );

    let rows_ms: [u64; 16] = [
        0, 1000, 2000, 3000, 3500, 3800, 3900, 4000, 4100, 4200, 4300, 4400, 4500, 4600, 4700, 5000,
    ];
    let mut table = Table::new(&[
        "silence",
        "Akka phi",
        "plot (# = 0.5 phi)",
        "P(false alarm)",
        "Cassandra phi",
        "3 s timeout",
        "",
    ])
    .numeric(&[0, 1, 4]);
    let mut passed = 0;
    let mut previous = -1.0;
    for silence in rows_ms.map(Duration::from_millis) {
        let now = last + silence;
        let phi = akka.phi(now);
        check(
            "phi never decreases while the peer is silent",
            phi >= previous,
        )?;
        previous = phi;
        check_eq(
            "is_available is phi < threshold",
            &akka.is_available(now),
            &(phi < THRESHOLD),
        )?;
        let mut marks = Vec::new();
        while passed < LEVELS.len() && phi >= LEVELS[passed] {
            marks.push(format!("{}", LEVELS[passed]));
            passed += 1;
        }
        let timeout_fires = silence == TIMEOUT;
        let note = if marks.last().is_some_and(|l| *l == format!("{THRESHOLD}")) {
            format!("<- phi {}: gives up", marks.join(", "))
        } else if !marks.is_empty() {
            format!("<- phi {}", marks.join(", "))
        } else if timeout_fires {
            "<- the timeout fires".to_owned()
        } else {
            String::new()
        };
        table.row([
            secs(silence),
            format!("{phi:.2}"),
            bar(phi),
            mistake(phi),
            format!("{:.2}", cassandra.phi(now)),
            if detectors.timeout.is_available(now) {
                "alive".to_owned()
            } else {
                "DOWN".to_owned()
            },
            note,
        ]);
    }
    table.print();
    check_eq("every level is passed in the plot", &passed, &LEVELS.len())?;

    report::note("When each detector reaches each level (1 ms resolution):");
    let mut table = Table::new(&[
        "detector",
        "phi = 1 (10%)",
        "phi = 2 (1%)",
        "phi = 3 (0.1%)",
        "gives up (phi = 8)",
    ])
    .numeric(&[1, 2, 3, 4]);
    let mut gives_up = Vec::new();
    for (name, fd) in [
        ("Akka, normal model", akka),
        ("Cassandra, exponential model", cassandra),
    ] {
        let at: Vec<Duration> = LEVELS
            .iter()
            .map(|&level| crossing(fd, last, level).ok_or("phi never reached the level"))
            .collect::<Result<_, _>>()?;
        check(
            "the levels are passed in order",
            at.windows(2).all(|w| w[0] < w[1]),
        )?;
        check(
            "the detector gives up exactly when phi reaches the threshold",
            !fd.is_available(last + at[3])
                && fd.is_available(last + at[3] - Duration::from_millis(1)),
        )?;
        gives_up.push(at[3]);
        let mut row = vec![name.to_owned()];
        row.extend(at.iter().map(|&d| secs(d)));
        table.row(row);
    }
    let deadline = detectors
        .timeout
        .deadline()
        .ok_or("the timeout detector has a deadline")?;
    check_eq("the timeout fires after 3 s", &(deadline - last), &TIMEOUT)?;
    table.row([
        format!("fixed {} timeout", secs(TIMEOUT)),
        "-".to_owned(),
        "-".to_owned(),
        "-".to_owned(),
        secs(deadline - last),
    ]);
    table.print();

    // Akka: nothing before mean + pause, then a cliff as steep as the learned
    // deviation (floored at 100 ms). Cassandra: phi = t / mean / ln 10.
    let model_mean = akka.mean() + akka.config().acceptable_heartbeat_pause;
    let akka_one = crossing(akka, last, 1.0).ok_or("Akka's phi reaches 1")?;
    check(
        "Akka's phi stays under 1 until past mean + acceptable pause",
        akka_one > model_mean,
    )?;
    let expected = cassandra.mean().as_secs_f64() * THRESHOLD * LN_10;
    check(
        "Cassandra's phi reaches 8 after 8 ln 10 mean intervals",
        (gives_up[1].as_secs_f64() - expected).abs() < 0.002,
    )?;
    report::note(&format!(
        "Akka's phi stays near 0 for mean + acceptable pause ({}), then climbs as steeply as \
         the learned deviation allows: from 1 to 8 in {}. Cassandra's exponential model rises \
         in a straight line, phi = t / mean / ln 10, and gives up only after 8 ln 10 = 18.4 \
         mean intervals. The fixed timeout answers yes or no, and says nothing about how sure \
         it is.",
        secs(model_mean),
        ms(gives_up[0] - akka_one),
    ));
    report::takeaway(
        "phi is a confidence, not a verdict: each caller picks its threshold (8: wrong once in \
         10^8).",
    );
    Ok(())
}

/// `72 ms`.
fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// A timeout tuned to the steady network: interval + 2 x 100 ms.
const TIGHT_TIMEOUT: Duration = Duration::from_millis(1200);

/// One cell of the comparison table, from a history's verdict.
type Cell = fn(&Verdict) -> String;

/// What the detectors make of one history.
struct Verdict {
    mean: Duration,
    std_deviation: Duration,
    phi_at_4_5: f64,
    phi_at_5: f64,
    akka_gives_up: Duration,
    cassandra_gives_up: Duration,
    timeout_fires: Duration,
    /// Heartbeats that arrived after Akka's phi had reached the threshold.
    phi_false_alarms: usize,
    /// Heartbeats that arrived after the tight timeout had expired.
    tight_false_alarms: usize,
}

impl Verdict {
    fn of(history: &History, base: Instant) -> Res<Self> {
        // Replay the history, asking before each heartbeat whether the
        // detector had already called the (still healthy) peer down.
        let mut detectors = Detectors::new()?;
        let mut tight = HeartbeatDetector::new(TIGHT_TIMEOUT);
        let (mut phi_false_alarms, mut tight_false_alarms) = (0, 0);
        for &at in &history.arrivals {
            let now = base + at;
            phi_false_alarms += usize::from(!detectors.akka.is_available(now));
            tight_false_alarms += usize::from(!tight.is_available(now));
            detectors.heartbeat(now);
            tight.heartbeat(now);
        }
        let last = base + history.last();
        let akka = &detectors.akka;
        Ok(Self {
            mean: akka.mean(),
            std_deviation: akka.std_deviation(),
            phi_at_4_5: akka.phi(last + Duration::from_millis(4500)),
            phi_at_5: akka.phi(last + Duration::from_secs(5)),
            akka_gives_up: crossing(akka, last, THRESHOLD).ok_or("Akka gives up")?,
            cassandra_gives_up: crossing(&detectors.cassandra, last, THRESHOLD)
                .ok_or("Cassandra gives up")?,
            timeout_fires: detectors.timeout.deadline().ok_or("timeout deadline")? - last,
            phi_false_alarms,
            tight_false_alarms,
        })
    }
}

fn phi_adapts(base: Instant) -> Res {
    report::section("2. The same silence on two networks: phi adapts, a timeout cannot");
    let steady = History::steady();
    let jittery = History::new("jittery (1 s +- 500 ms)", Duration::from_millis(500), 3);
    report::note(&format!(
        "Two peers, {HEARTBEATS} heartbeats each, one on a steady network and one on a jittery \
         one; then both fall silent. Akka's detector learns a different spread for each; the \
         fixed timeouts know nothing of either. The last row counts the heartbeats that arrived \
         after the detector had already called its (healthy) peer down."
    ));
    let (s, j) = (Verdict::of(&steady, base)?, Verdict::of(&jittery, base)?);
    let mut table = Table::new(&["", steady.name, jittery.name]).numeric(&[1, 2]);
    let rows: [(&str, Cell); 7] = [
        ("learned mean / std dev", |v| {
            format!("{} / {}", ms(v.mean), ms(v.std_deviation))
        }),
        ("Akka phi after 4.5 s of silence", |v| {
            format!("{:.2}", v.phi_at_4_5)
        }),
        ("Akka phi after 5 s of silence", |v| {
            format!("{:.2}", v.phi_at_5)
        }),
        ("Akka gives up (phi = 8) after", |v| secs(v.akka_gives_up)),
        ("Cassandra gives up (phi = 8) after", |v| {
            secs(v.cassandra_gives_up)
        }),
        ("fixed 3 s timeout fires after", |v| secs(v.timeout_fires)),
        ("false alarms: phi = 8 / 1.2 s timeout", |v| {
            format!("{} / {}", v.phi_false_alarms, v.tight_false_alarms)
        }),
    ];
    for (label, cell) in rows {
        table.row([label.to_owned(), cell(&s), cell(&j)]);
    }
    table.print();

    check(
        "after 5 s of silence the steady peer is given up, the jittery one not yet",
        s.phi_at_5 >= THRESHOLD && j.phi_at_5 < THRESHOLD,
    )?;
    check(
        "Akka waits longer for the jittery peer",
        j.akka_gives_up > s.akka_gives_up,
    )?;
    check_eq(
        "the fixed timeout cannot tell the two apart",
        &(s.timeout_fires, j.timeout_fires),
        &(TIMEOUT, TIMEOUT),
    )?;
    check_eq(
        "phi never cried wolf",
        &(s.phi_false_alarms, j.phi_false_alarms),
        &(0, 0),
    )?;
    check(
        "the tight timeout cries wolf on the jittery network only",
        s.tight_false_alarms == 0 && j.tight_false_alarms > 0,
    )?;
    report::note(&format!(
        "After the same 5 s of silence, phi is {:.1} for the steady peer (given up) and {:.1} \
         for the jittery one (not yet): on that network a late heartbeat is normal, and Akka \
         waits {} longer before giving up. A timeout short enough to catch the steady peer \
         quickly ({}) called the jittery peer down {} times while it was fine; the {} timeout \
         never did, and waits {} for both. Cassandra's exponential model learns only the mean, \
         so it treats both peers alike too.",
        s.phi_at_5,
        j.phi_at_5,
        ms(j.akka_gives_up - s.akka_gives_up),
        secs(TIGHT_TIMEOUT),
        j.tight_false_alarms,
        secs(TIMEOUT),
        secs(TIMEOUT),
    ));
    report::takeaway(
        "A timeout is one number for every network; phi learns each peer's rhythm and adapts.",
    );
    Ok(())
}

// --- SWIM in the simulator ---------------------------------------------------------------

/// Seeds the simulated network; each member's own generator is seeded from it.
const SIM_SEED: u64 = 61;

/// Cluster size.
const NODES: u32 = 20;

/// The member that crashes.
const CRASHED: u32 = 7;

/// The member that freezes (a stop-the-world GC pause).
const SLOW: u32 = 13;

/// The crash comes at this time, or on the first whole second at least 3 s
/// after the cluster converged, if that is later.
const CRASH_AT: Duration = Duration::from_secs(10);

/// How long the members may take to find each other.
const CONVERGE_LIMIT: Duration = Duration::from_secs(30);

/// The slow member freezes this long...
const FREEZE: Duration = Duration::from_secs(3);

/// ...this long after the crash, twice. Not on whole seconds: a pause has no
/// reason to line up with the member's probe timer.
const FREEZES_AFTER_CRASH: [Duration; 2] =
    [Duration::from_millis(2300), Duration::from_millis(12700)];

/// The story ends this long after the crash.
const RUN_AFTER_CRASH: Duration = Duration::from_secs(30);

/// When things happen to the cluster, in virtual time.
struct Schedule {
    crash: Duration,
    /// `(start, end)` of each freeze.
    freezes: [(Duration, Duration); 2],
    end: Duration,
}

impl Schedule {
    fn starting(crash: Duration) -> Self {
        Self {
            crash,
            freezes: FREEZES_AFTER_CRASH.map(|after| (crash + after, crash + after + FREEZE)),
            end: crash + RUN_AFTER_CRASH,
        }
    }

    /// Whether the slow member woke up at `at`.
    fn wakes_at(&self, at: Duration) -> bool {
        self.freezes.iter().any(|&(_, end)| end == at)
    }
}

/// What a member reported, with the virtual time it reported it at.
#[derive(Debug, Clone)]
enum Report {
    /// A membership event, with its `by` (the simulator's own record keeps
    /// only the kind).
    Event(Event<u32>),
    /// The member raised its own incarnation: it refuted news of its failure.
    Refuted { incarnation: u32, health: u32 },
}

/// A SWIM member in the simulator that keeps its own events, `by` included.
struct Watched {
    swim: Swim<u32>,
    base: Instant,
    /// The `now` of the input being handled; its outputs are drained right
    /// after it.
    now: Instant,
    incarnation: u32,
    reports: Vec<(Duration, Report)>,
}

impl SimNode for Watched {
    fn handle_packet(&mut self, from: usize, payload: &[u8], now: Instant) -> bool {
        self.now = now;
        SimNode::handle_packet(&mut self.swim, from, payload, now)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        SimNode::handle_timeout(&mut self.swim, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        SimNode::poll_timeout(&self.swim)
    }

    fn drain(&mut self, out: &mut Vec<(usize, Vec<u8>)>, events: &mut Vec<(usize, SimEventKind)>) {
        let at = self.now.saturating_duration_since(self.base);
        while let Some(transmit) = self.swim.poll_transmit() {
            out.push((transmit.to as usize, transmit.payload));
        }
        while let Some(event) = self.swim.poll_event() {
            let (subject, kind) = what(&event);
            events.push((subject as usize, kind));
            self.reports.push((at, Report::Event(event)));
        }
        if self.swim.incarnation() > self.incarnation {
            self.incarnation = self.swim.incarnation();
            self.reports.push((
                at,
                Report::Refuted {
                    incarnation: self.incarnation,
                    health: self.swim.health_score(),
                },
            ));
        }
    }

    fn join(&mut self, seeds: &[usize], now: Instant) {
        self.now = now;
        SimNode::join(&mut self.swim, seeds, now);
    }

    fn leave(&mut self, now: Instant) {
        self.now = now;
        SimNode::leave(&mut self.swim, now);
    }

    fn state_of(&self, subject: usize) -> Option<State> {
        SimNode::state_of(&self.swim, subject)
    }
}

/// An event's subject and kind.
fn what(event: &Event<u32>) -> (u32, SimEventKind) {
    match event {
        Event::Up(node) => (*node, SimEventKind::Up),
        Event::Suspect { node, .. } => (*node, SimEventKind::Suspect),
        Event::Down { node, .. } => (*node, SimEventKind::Down),
        Event::Left(node) => (*node, SimEventKind::Left),
        Event::Rejoined(node) => (*node, SimEventKind::Rejoined),
    }
}

/// An event's accuser: `by` of Suspect and Down.
fn accuser(event: &Event<u32>) -> Option<u32> {
    match event {
        Event::Suspect { by, .. } | Event::Down { by, .. } => Some(*by),
        _ => None,
    }
}

/// `12.42 s` of virtual time.
fn t(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The cluster after the story, and what its members reported.
struct Story {
    sim: Sim<Watched>,
    schedule: Schedule,
    converged: Duration,
    /// `(at, observer, report)` from the crash on, in time order (members
    /// in id order within an instant).
    reports: Vec<(Duration, u32, Report)>,
    /// Packets and bytes a member sent per second, before the crash and
    /// from the crash to the end.
    steady: (f64, f64),
    incident: (f64, f64),
}

impl Story {
    fn run(base: Instant, config: &Config, net: NetConfig) -> Res<Self> {
        let mut sim = Sim::new(SIM_SEED, base, net);
        for id in 0..NODES {
            let swim = Swim::new(
                id,
                config.clone(),
                SIM_SEED * 1000 + u64::from(id),
                sim.instant(),
            )?;
            let index = sim.add_node(Watched {
                swim,
                base,
                now: sim.instant(),
                incarnation: 0,
                reports: Vec::new(),
            });
            if index > 0 {
                sim.join(index, &[0]);
            }
        }
        let converged = sim
            .run_until_cond(
                CONVERGE_LIMIT,
                Duration::from_millis(100),
                Sim::<Watched>::states_converged,
            )?
            .ok_or("the members find each other")?;
        let schedule =
            Schedule::starting(CRASH_AT.max(Duration::from_secs(converged.as_secs() + 4)));

        let window = Duration::from_secs(3);
        sim.run_until(schedule.crash - window)?;
        let before = sim.traffic();
        sim.run_until(schedule.crash)?;
        let steady = rate(sim.traffic().since(before), NODES, window);

        let before = sim.traffic();
        sim.crash(CRASHED as usize);
        for (start, end) in schedule.freezes {
            sim.run_until(start)?;
            sim.pause(SLOW as usize, end - start);
        }
        sim.run_until(schedule.end)?;
        let incident = rate(
            sim.traffic().since(before),
            NODES - 1,
            schedule.end - schedule.crash,
        );

        let mut reports = Vec::new();
        for id in 0..NODES {
            for (at, report) in &sim.node(id as usize).reports {
                if *at >= schedule.crash {
                    reports.push((*at, id, report.clone()));
                }
            }
        }
        reports.sort_by_key(|(at, observer, _)| (*at, *observer));
        Ok(Self {
            sim,
            schedule,
            converged,
            reports,
            steady,
            incident,
        })
    }

    /// The membership events, with their observers.
    fn events(&self) -> impl Iterator<Item = (Duration, u32, &Event<u32>)> + '_ {
        self.reports
            .iter()
            .filter_map(|(at, observer, report)| match report {
                Report::Event(event) => Some((*at, *observer, event)),
                Report::Refuted { .. } => None,
            })
    }

    /// For each member, its first report of `kind` about `subject`: when,
    /// and whom it named.
    fn first(&self, subject: u32, kind: SimEventKind) -> BTreeMap<u32, (Duration, Option<u32>)> {
        let mut first = BTreeMap::new();
        for (at, observer, event) in self.events() {
            if what(event) == (subject, kind) {
                first.entry(observer).or_insert((at, accuser(event)));
            }
        }
        first
    }

    /// Members other than `subject` that can report on it: all but it and the
    /// crashed member.
    fn others(subject: u32) -> usize {
        NODES as usize - 1 - usize::from(subject != CRASHED)
    }

    /// The healthy members that somebody suspected or declared Down.
    fn wrongly_accused(&self) -> BTreeSet<u32> {
        self.events()
            .filter(|(_, _, event)| accuser(event).is_some())
            .map(|(_, _, event)| what(event).0)
            .filter(|&subject| subject != CRASHED && subject != SLOW)
            .collect()
    }
}

/// The shortest a suspicion lasts in this cluster: `suspicion_mult x log10 n`
/// protocol periods (memberlist's `suspicionTimeout`, SWIM section 4.2).
fn min_suspicion(config: &Config) -> Duration {
    config
        .probe_interval
        .mul_f64(f64::from(config.suspicion_mult) * f64::from(NODES).log10())
}

/// Packets and bytes per member per second.
fn rate(traffic: dsys_detect::sim::Traffic, members: u32, over: Duration) -> (f64, f64) {
    let per = f64::from(members) * over.as_secs_f64();
    (traffic.packets as f64 / per, traffic.bytes as f64 / per)
}

fn swim(base: Instant) -> Res {
    report::section("3. SWIM: 20 members, one crash, one slow member");
    let config = Config::default();
    let mut net = NetConfig::default();
    net.latency_min = Duration::from_millis(2);
    net.latency_max = Duration::from_millis(20);
    net.loss = 0.01;
    let min_suspicion = min_suspicion(&config);
    report::note(&format!(
        "{NODES} members with memberlist's LAN defaults. Every {} each member pings one other \
         (round-robin in a random order). No ack within {}: it asks {} others to ping the \
         target for it (ping-req). No ack by the end of the period: the target is suspected, \
         and the news spreads on every packet and by gossip to {} members every {}. A \
         suspected member that hears of it refutes by raising its incarnation number. A \
         suspicion nobody refutes becomes Down after {} (4 x log10 {NODES} periods) once {} \
         other members have confirmed it, and after up to {} if nobody does (Lifeguard's \
         dynamic suspicion). The network: {} to {} one way, {}% of packets lost, seed \
         {SIM_SEED}.",
        secs(config.probe_interval),
        ms(config.probe_timeout),
        config.indirect_checks,
        config.gossip_nodes,
        ms(config.gossip_interval),
        secs(min_suspicion),
        config.suspicion_mult.saturating_sub(2),
        secs(min_suspicion.mul_f64(f64::from(config.suspicion_max_timeout_mult))),
        ms(net.latency_min),
        ms(net.latency_max),
        net.loss * 100.0,
    ));
    let story = Story::run(base, &config, net)?;
    let schedule = &story.schedule;
    report::note(&format!(
        "All {NODES} join through node 0 at t = 0; by {} every member holds every other \
         Alive. At {} node {CRASHED} crashes. At {} and again at {} node {SLOW} freezes for {} \
         (a stop-the-world pause, longer than a protocol period): it reads no packets and \
         fires no timers, and what is sent to it waits in its queue.",
        t(story.converged),
        t(schedule.crash),
        t(schedule.freezes[0].0),
        t(schedule.freezes[1].0),
        secs(FREEZE),
    ));
    timeline(&story)?;
    summary(&story)?;
    report::takeaway(
        "SWIM finds a crash in seconds at a constant cost per member; refutation saves a slow \
         one.",
    );
    Ok(())
}

/// One row of the timeline: a wave of the same news about one member.
struct Wave {
    at: Duration,
    last: Duration,
    subject: u32,
    kind: SimEventKind,
    /// `(observer, accuser)` per report, in time order.
    seen: Vec<(u32, Option<u32>)>,
}

impl Wave {
    /// Groups the reports into waves: the same kind of news about the same
    /// member, each report less than `GAP` after the previous one.
    fn all(story: &Story) -> Vec<Wave> {
        const GAP: Duration = Duration::from_secs(3);
        let mut open: BTreeMap<(u32, u8), usize> = BTreeMap::new();
        let mut waves: Vec<Wave> = Vec::new();
        for (at, observer, event) in story.events() {
            let (subject, kind) = what(event);
            let key = (subject, kind as u8);
            match open.get(&key) {
                Some(&i) if at - waves[i].last < GAP => {
                    waves[i].last = at;
                    waves[i].seen.push((observer, accuser(event)));
                }
                _ => {
                    open.insert(key, waves.len());
                    waves.push(Wave {
                        at,
                        last: at,
                        subject,
                        kind,
                        seen: vec![(observer, accuser(event))],
                    });
                }
            }
        }
        waves
    }

    fn observers(&self) -> usize {
        self.seen
            .iter()
            .map(|(observer, _)| *observer)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// The accusers the reports name (the `by` of Suspect and Down), in the
    /// order they first appear.
    fn accusers(&self) -> Vec<u32> {
        let mut named = Vec::new();
        for by in self.seen.iter().filter_map(|(_, by)| *by) {
            if !named.contains(&by) {
                named.push(by);
            }
        }
        named
    }

    /// `by 15 and 12`.
    fn by(&self) -> String {
        let named: Vec<String> = self.accusers().iter().map(u32::to_string).collect();
        if named.is_empty() {
            String::new()
        } else {
            format!(" by {}", named.join(" and "))
        }
    }

    /// What happened, and who started it.
    fn describe(&self) -> String {
        let subject = self.subject;
        match self.kind {
            SimEventKind::Suspect => format!("{subject} suspected{}", self.by()),
            SimEventKind::Down => {
                let own = self.seen.iter().filter(|(o, by)| Some(*o) == *by).count();
                let first = self.seen.first().and_then(|(_, by)| *by).unwrap_or(subject);
                format!(
                    "{subject} declared Down, first by {first}: {own} on their own timer, {} \
                     by gossip",
                    self.seen.len() - own
                )
            }
            SimEventKind::Up => format!("{subject} Alive again"),
            SimEventKind::Rejoined => format!("{subject} rejoins"),
            SimEventKind::Left => format!("{subject} left"),
        }
    }
}

fn timeline(story: &Story) -> Res {
    report::note(
        "The timeline, from the members' own event streams. A row about a member is one wave \
         of the same news: when the first member reported it, who raised it (the `by` of \
         Suspect and Down events), how many of the members that could report it did, and how \
         long it took to reach them all.",
    );
    let schedule = &story.schedule;
    let mut rows: Vec<(Duration, [String; 4])> = Vec::new();
    let mut act = |at: Duration, what: String| {
        rows.push((at, [t(at), what, String::new(), String::new()]));
    };
    act(schedule.crash, format!(">> node {CRASHED} crashes"));
    for (start, end) in schedule.freezes {
        act(start, format!(">> node {SLOW} freezes"));
        act(end, format!(">> node {SLOW} wakes up"));
    }
    for (at, observer, report) in &story.reports {
        if let Report::Refuted {
            incarnation,
            health,
        } = report
        {
            act(
                *at,
                format!(
                    "{observer} refutes: incarnation {} -> {incarnation}, health score {health}",
                    incarnation - 1
                ),
            );
        }
    }
    for wave in Wave::all(story) {
        rows.push((
            wave.at,
            [
                t(wave.at),
                wave.describe(),
                format!("{} of {}", wave.observers(), Story::others(wave.subject)),
                ms(wave.last - wave.at),
            ],
        ));
    }
    // A stable sort: at one instant, what is done to the cluster comes first.
    rows.sort_by_key(|(at, _)| *at);
    let mut table = Table::new(&["at", "what", "reported by", "within"]).numeric(&[0, 2, 3]);
    for (_, row) in rows {
        table.row(row);
    }
    table.print();
    Ok(())
}

fn summary(story: &Story) -> Res {
    let sim = &story.sim;
    let wrongly = story.wrongly_accused();
    let mut subjects = vec![
        (CRASHED, format!("node {CRASHED} (crashed)")),
        (SLOW, format!("node {SLOW} (froze twice)")),
    ];
    subjects.extend(wrongly.iter().map(|&n| (n, format!("node {n} (healthy)"))));

    let waves = Wave::all(story);
    let mut columns: Vec<[String; 6]> = Vec::new();
    for (subject, _) in &subjects {
        let subject = *subject;
        let others = Story::others(subject);
        let of = |kind: SimEventKind| -> Vec<&Wave> {
            waves
                .iter()
                .filter(|w| w.subject == subject && w.kind == kind)
                .collect()
        };
        let firsts = |waves: &[&Wave]| -> String {
            if waves.is_empty() {
                return "never".to_owned();
            }
            let firsts: Vec<String> = waves
                .iter()
                .map(|w| match (w.kind, w.accusers().first()) {
                    // Many members' own timers run out; the first is enough here.
                    (SimEventKind::Down, Some(first)) => format!("{} by {first}", t(w.at)),
                    _ => format!("{}{}", t(w.at), w.by()),
                })
                .collect();
            firsts.join(", ")
        };
        let reach = |waves: &[&Wave]| -> String {
            if waves.is_empty() {
                return "-".to_owned();
            }
            let reach: Vec<String> = waves
                .iter()
                .map(|w| format!("{} of {others} by {}", w.observers(), t(w.last)))
                .collect();
            reach.join(", ")
        };
        let (suspected, down) = (of(SimEventKind::Suspect), of(SimEventKind::Down));
        let swim = &sim.node(subject as usize).swim;
        let refutations = if subject == CRASHED {
            "-".to_owned()
        } else {
            format!(
                "{} (incarnation {})",
                swim.counters().refutations,
                swim.incarnation()
            )
        };
        let mut held: BTreeMap<&'static str, usize> = BTreeMap::new();
        for observer in (0..NODES).filter(|&o| o != subject && o != CRASHED) {
            let state = match sim.node(observer as usize).swim.state_of(&subject) {
                Some(State::Alive) => "Alive",
                Some(State::Suspect) => "Suspect",
                Some(State::Down) => "Down",
                Some(State::Left) => "Left",
                None => "unknown",
            };
            *held.entry(state).or_default() += 1;
        }
        let held: Vec<String> = held
            .iter()
            .map(|(state, count)| format!("{state} for {count} of {others}"))
            .collect();
        columns.push([
            firsts(&suspected),
            reach(&suspected),
            firsts(&down),
            reach(&down),
            refutations,
            held.join(", "),
        ]);
    }
    let mut header = vec![String::new()];
    header.extend(subjects.iter().map(|(_, name)| name.clone()));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(&header);
    let end = format!("at {}", t(story.schedule.end));
    let labels = [
        "first suspected",
        "suspicion reached",
        "first declared Down",
        "Down reached",
        "refutations",
        end.as_str(),
    ];
    for (i, label) in labels.iter().enumerate() {
        let mut row = vec![label.to_string()];
        row.extend(columns.iter().map(|column| column[i].clone()));
        table.row(row);
    }
    table.print();

    // The story's claims, checked against every member's final state.
    let first_down = story.first(CRASHED, SimEventKind::Down);
    check_eq(
        "members that declared the crashed member Down",
        &first_down.len(),
        &Story::others(CRASHED),
    )?;
    for observer in (0..NODES).filter(|&o| o != CRASHED) {
        let swim = &sim.node(observer as usize).swim;
        check_eq(
            &format!("node {observer}'s view of the crashed member"),
            &swim.state_of(&CRASHED),
            &Some(State::Down),
        )?;
        if observer != SLOW {
            check_eq(
                &format!("node {observer}'s view of the slow member"),
                &swim.state_of(&SLOW),
                &Some(State::Alive),
            )?;
        }
    }
    check(
        "every running member holds every other Alive at the end",
        sim.states_converged(),
    )?;
    check(
        "the slow member refuted a suspicion of itself",
        sim.node(SLOW as usize).swim.counters().refutations > 0,
    )?;

    let mut spreads: Vec<Duration> = Wave::all(story)
        .iter()
        .filter(|wave| wave.observers() == Story::others(wave.subject))
        .map(|wave| wave.last - wave.at)
        .collect();
    spreads.sort();
    let median = spreads.get(spreads.len() / 2).copied().unwrap_or_default();
    let gossip = story.sim.node(0).swim.config().gossip_interval;
    let first_at = |kind| {
        story
            .first(CRASHED, kind)
            .values()
            .map(|(at, _)| *at)
            .min()
            .ok_or("the crashed member was suspected and declared Down")
    };
    let (suspected, down) = (
        first_at(SimEventKind::Suspect)?,
        first_at(SimEventKind::Down)?,
    );
    let all_down = story
        .first(CRASHED, SimEventKind::Down)
        .values()
        .map(|(at, _)| *at)
        .max()
        .unwrap_or(down);
    let min_suspicion = min_suspicion(story.sim.node(0).swim.config());
    report::note(&format!(
        "Node {CRASHED}. It was declared Down {} after it was first suspected{}. {} after the \
         crash, every member had it Down: the seed's \"after a timeout, B is removed\".",
        secs(down - suspected),
        if (down - suspected).abs_diff(min_suspicion) < Duration::from_millis(10) {
            ", the minimum: other members' own failed probes confirmed the suspicion \
             (Lifeguard's dynamic suspicion)"
        } else {
            ""
        },
        secs(all_down - story.schedule.crash),
    ));
    report::note(&slow_story(story));
    if !wrongly.is_empty() {
        report::note(&accused_story(story, &wrongly));
    }
    report::note(&format!(
        "News reached every member within {} (the median above): about {:.0} gossip rounds of \
         {}, the seed's O(log N) rounds. Each member sent {:.1} packets ({:.0} bytes) a second \
         before the crash and {:.1} ({:.0} bytes) after it: one probe per period, plus ping-reqs \
         and gossip while there is news, a load that SWIM keeps constant however large the \
         cluster grows.",
        ms(median),
        median.as_secs_f64() / gossip.as_secs_f64(),
        ms(gossip),
        story.steady.0,
        story.steady.1,
        story.incident.0,
        story.incident.1,
    ));
    Ok(())
}

/// What became of the slow member, freeze by freeze.
fn slow_story(story: &Story) -> String {
    let mut parts = Vec::new();
    for (i, (start, end)) in story.schedule.freezes.iter().enumerate() {
        let suspected: Vec<(Duration, u32)> = story
            .events()
            .filter(|(at, _, event)| {
                *at >= *start && *at <= *end && what(event) == (SLOW, SimEventKind::Suspect)
            })
            .filter_map(|(at, _, event)| accuser(event).map(|by| (at, by)))
            .collect();
        // A refutation within a second of waking up answers this freeze's news.
        let refuted = story
            .reports
            .iter()
            .find_map(|(at, observer, report)| match report {
                Report::Refuted { incarnation, .. }
                    if *observer == SLOW && *at >= *end && *at - *end < Duration::from_secs(1) =>
                {
                    Some(*incarnation)
                }
                _ => None,
            });
        let which = if i == 0 {
            "First freeze"
        } else {
            "Second freeze"
        };
        parts.push(match (suspected.first(), refuted) {
            (Some((at, by)), Some(incarnation)) => format!(
                "{which} ({} to {}): node {by} suspected it at {}; on waking it read the \
                 news in its queue and refuted it (incarnation {incarnation}).",
                t(*start),
                t(*end),
                t(*at),
            ),
            (Some((at, by)), None) => format!(
                "{which} ({} to {}): node {by} suspected it at {}.",
                t(*start),
                t(*end),
                t(*at),
            ),
            (None, _) => format!(
                "{which} ({} to {}): nobody noticed; no member's probe of it ran out while it \
                 was frozen.",
                t(*start),
                t(*end),
            ),
        });
    }
    let downs = story.first(SLOW, SimEventKind::Down);
    parts.push(if downs.is_empty() {
        format!(
            "It was never declared Down: a suspicion lasts at least {} here, longer than the \
             {} freeze.",
            secs(min_suspicion(story.sim.node(0).swim.config())),
            secs(FREEZE),
        )
    } else {
        format!(
            "{} members declared it Down before its refutation reached them.",
            downs.len()
        )
    });
    format!("Node {SLOW}. {}", parts.join(" "))
}

/// Who accused healthy members, and how they came back.
fn accused_story(story: &Story, wrongly: &BTreeSet<u32>) -> String {
    let mut parts = Vec::new();
    let mut by_slow_on_waking = false;
    for &subject in wrongly {
        let first = story
            .events()
            .find(|(_, _, event)| what(event) == (subject, SimEventKind::Suspect));
        let refuted = story
            .reports
            .iter()
            .find_map(|(at, observer, report)| match report {
                Report::Refuted { .. } if *observer == subject => Some(*at),
                _ => None,
            });
        let Some((at, _, event)) = first else {
            continue;
        };
        let by = accuser(event).unwrap_or(subject);
        let why = if by == SLOW && story.schedule.wakes_at(at) {
            by_slow_on_waking = true;
            format!(
                ", the instant {SLOW} woke up: a probe of {subject} that {SLOW} had started just \
                 before freezing was long overdue, and the rule turned the missed deadline into a \
                 suspicion at once, although the time that had run out was {SLOW}'s own"
            )
        } else {
            String::new()
        };
        parts.push(format!(
            "Node {subject}, healthy, was suspected by {by} at {}{why}. {}",
            t(at),
            match refuted {
                Some(r) => format!("It refuted {} later.", ms(r - at)),
                None => "It never refuted.".to_owned(),
            }
        ));
    }
    // Lifeguard (section 4.1): the slow member's own health score on waking.
    let health = story
        .reports
        .iter()
        .find_map(|(at, observer, report)| match report {
            Report::Refuted { health, .. } if *observer == SLOW && story.schedule.wakes_at(*at) => {
                Some(*health)
            }
            _ => None,
        });
    if let Some(health) = health.filter(|&h| by_slow_on_waking && h > 0) {
        parts.push(format!(
            "This is the slow member Lifeguard is about. On waking, node {SLOW}'s health score \
             rose to {health} (nacks it never got, a suspicion of itself to refute), so its \
             probe timeouts and period now stretch x{}: while it may be the slow one, it is \
             slower to accuse anyone. Too late for this accusation, which came in the same \
             instant.",
            health + 1
        ));
    }
    parts.join(" ")
}
