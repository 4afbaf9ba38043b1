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
//!
//! This file is the story: what is shown, explained and checked, in reading
//! order. The machinery that drives it is in the sibling files: `heartbeats`
//! (jittered histories, the detectors, their replay), `cluster` (the
//! simulated SWIM cluster and its incident), `waves` (grouping reports into
//! the timeline's rows), `outcome` (the summary's table, its checks and the
//! figures its notes quote), `accounts` (the slow member's and the accused
//! members' accounts, built from the record) and `format` (how numbers are
//! written).

mod accounts;
mod cluster;
mod format;
mod heartbeats;
mod outcome;
mod waves;

use std::f64::consts::LN_10;
use std::time::{Duration, Instant};

use dsys_detect::SwimConfig;
use dsys_detect::sim::NetworkConfig;

use crate::report::{self, Res, Table, check, check_eq};
use cluster::{Report, Story, min_suspicion};
use format::{bar, mistake, ms, secs, t};
use heartbeats::{Detectors, History, Verdict, crossing};
use outcome::Figures;
use waves::Wave;

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
        .poll_timeout()
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

// --- The same silence on two networks ----------------------------------------------

/// A timeout tuned to the steady network: interval + 2 x 100 ms.
const TIGHT_TIMEOUT: Duration = Duration::from_millis(1200);

/// One cell of the comparison table, from a history's verdict.
type Cell = fn(&Verdict) -> String;

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

fn swim(base: Instant) -> Res {
    report::section("3. SWIM: 20 members, one crash, one slow member");
    let config = SwimConfig::default();
    let mut net = NetworkConfig::default();
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
    let wrongly = story.wrongly_accused();
    outcome::table(story, &wrongly).print();
    outcome::check_claims(story)?;
    let Figures {
        median,
        gossip,
        suspected,
        down,
        all_down,
        min_suspicion,
    } = Figures::of(story)?;
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
    report::note(&accounts::slow_story(story));
    if !wrongly.is_empty() {
        report::note(&accounts::accused_story(story, &wrongly));
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
