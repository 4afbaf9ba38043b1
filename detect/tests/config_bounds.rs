//! Every config field at its extremes: `validate()` refuses the value, or the detector
//! built from it runs without a panic (no `Instant + Duration` overflow, no overflowing
//! multiplication by a count, no allocation sized by a config field). The suite
//! contract: nothing a valid config holds may overflow later.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use dsys_detect::{Event, Swim, SwimConfig};
use dsys_detect::{HeartbeatDetector, PhiAccrual, PhiConfig, PhiModel, SwimConfigError};

const DAY: Duration = Duration::from_secs(86_400);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

const DURATIONS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_secs(1),
    DAY,
    YEAR,
    Duration::from_secs(1000 * 365 * 86_400),
    Duration::from_secs(u64::MAX / 2),
    Duration::MAX,
];
const U32S: [u32; 5] = [0, 1, 1000, u32::MAX / 2, u32::MAX];
const USIZES: [usize; 7] = [0, 1, 3, 64, 1 << 20, usize::MAX / 2, usize::MAX];

type Edit = Box<dyn Fn(&mut SwimConfig)>;

/// One variant of the default config per field and extreme value, plus a few
/// combinations that multiply together (the suspicion timeout is
/// `probe_interval · suspicion_mult · log10 n · suspicion_max_timeout_mult`, probe
/// timeouts stretch by the awareness multiplier).
fn swim_cases() -> Vec<(String, Edit)> {
    let mut cases: Vec<(String, Edit)> = Vec::new();
    macro_rules! each {
        ($field:ident, $values:expr) => {
            for v in $values {
                cases.push((
                    format!("{} = {:?}", stringify!($field), v),
                    Box::new(move |c: &mut SwimConfig| c.$field = v),
                ));
            }
        };
    }
    each!(probe_interval, DURATIONS);
    each!(probe_timeout, DURATIONS);
    each!(gossip_interval, DURATIONS);
    each!(announce_interval, DURATIONS);
    each!(sync_interval, DURATIONS);
    each!(down_retention, DURATIONS);
    each!(retransmit_mult, U32S);
    each!(suspicion_mult, U32S);
    each!(suspicion_max_timeout_mult, U32S);
    each!(awareness_max_multiplier, U32S);
    each!(indirect_checks, USIZES);
    each!(gossip_nodes, USIZES);
    each!(max_down_members, USIZES);
    each!(max_packet_size, USIZES);
    each!(cluster_id, [0, u64::MAX]);
    each!(lifeguard, [false, true]);
    for interval in DURATIONS {
        for mult in U32S {
            cases.push((
                format!("probe_interval = {interval:?}, every multiplier = {mult}"),
                Box::new(move |c: &mut SwimConfig| {
                    c.probe_interval = interval;
                    c.probe_timeout = interval / 2;
                    c.suspicion_mult = mult;
                    c.suspicion_max_timeout_mult = mult;
                    c.awareness_max_multiplier = mult;
                    c.retransmit_mult = mult;
                }),
            ));
        }
    }
    cases.push((
        "every interval and count at its largest".into(),
        Box::new(|c: &mut SwimConfig| {
            c.probe_interval = Duration::MAX;
            c.probe_timeout = Duration::MAX / 2;
            c.gossip_interval = Duration::MAX;
            c.announce_interval = Duration::MAX;
            c.sync_interval = Duration::MAX;
            c.down_retention = Duration::MAX;
            c.indirect_checks = usize::MAX;
            c.gossip_nodes = usize::MAX;
            c.max_down_members = usize::MAX;
            c.max_packet_size = usize::MAX;
        }),
    ));
    cases
}

/// Four members joined through member 0, run from timer to timer (a real loop sleeps
/// until the earliest `poll_timeout`); member 3 crashes after a while, so probes fail,
/// suspicions start and expire, down members are retained and forgotten, and the
/// survivors leave at the end. Returns how many times a survivor declared member 3
/// down.
fn drive_swim(config: &SwimConfig) -> usize {
    let start = Instant::now();
    let mut nodes: Vec<Swim<u32>> = (0..4)
        .map(|i| Swim::new(i, config.clone(), u64::from(i) + 1, start).expect("validated"))
        .collect();
    for node in &mut nodes[1..] {
        node.join([0], start);
    }
    let mut running = [true; 4];
    let mut wire: VecDeque<(u32, Vec<u8>)> = VecDeque::new();
    let mut now = start;
    let mut downs = 0;
    for event in 0..600 {
        if event == 200 {
            running[3] = false;
        }
        if event == 550 {
            for (i, node) in nodes.iter_mut().enumerate() {
                if running[i] {
                    node.leave();
                }
            }
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            if running[i] {
                node.handle_timeout(now);
            }
        }
        loop {
            for (i, node) in nodes.iter_mut().enumerate() {
                while let Some(t) = node.poll_transmit() {
                    assert!(t.payload.len() <= config.max_packet_size);
                    if running[i] {
                        wire.push_back((t.to, t.payload));
                    }
                }
                while let Some(e) = node.poll_event() {
                    downs += usize::from(matches!(e, Event::Down { node: 3, .. }));
                }
            }
            let Some((to, payload)) = wire.pop_front() else {
                break;
            };
            if running[to as usize] {
                let _ = nodes[to as usize].handle_packet(&payload, now);
            }
        }
        let next = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| running[*i])
            .filter_map(|(_, n)| n.poll_timeout())
            .min();
        match next {
            Some(at) => now = now.max(at),
            None => break,
        }
    }
    downs
}

/// Issue 14, finding 11a: `sync_interval = Duration::MAX` (and others) passed
/// `validate()` and then panicked in `Swim::new` or later.
#[test]
fn swim_config_extremes_are_refused_or_run() {
    // The harness exercises what it claims: with the defaults, the crash is detected.
    assert_eq!(
        drive_swim(&SwimConfig::default()),
        3,
        "every survivor declares 3 down"
    );
    let mut failures = Vec::new();
    let mut accepted = 0;
    for (name, edit) in swim_cases() {
        let mut config = SwimConfig::default();
        edit(&mut config);
        if config.validate().is_err() {
            continue;
        }
        accepted += 1;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| drive_swim(&config))) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{name}: {msg}"));
        }
    }
    assert!(
        accepted > 40,
        "the harmless values are accepted ({accepted})"
    );
    assert!(
        failures.is_empty(),
        "valid configs that panicked:\n{}",
        failures.join("\n")
    );
}

/// Heartbeats at the given gaps, then `phi`, `is_available` and the statistics at
/// silences from nothing to centuries.
fn drive_phi(config: PhiConfig) {
    let start = Instant::now();
    let mut fd = PhiAccrual::new(config).expect("validated");
    let mut now = start;
    for gap in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(100),
        Duration::from_secs(1),
        DAY,
        YEAR,
        Duration::from_millis(100),
    ] {
        now += gap;
        fd.heartbeat(now);
        for silence in [Duration::ZERO, Duration::from_secs(1), DAY, 100 * YEAR] {
            let phi = fd.phi(now + silence);
            assert!(!phi.is_nan() && phi >= 0.0, "phi {phi}");
            let _ = fd.is_available(now + silence);
        }
        let _ = (fd.mean(), fd.std_deviation(), fd.samples().count());
    }
}

#[test]
fn phi_config_extremes_are_refused_or_run() {
    let mut cases: Vec<PhiConfig> = Vec::new();
    for model in [PhiModel::Normal, PhiModel::Exponential] {
        let base = {
            let mut c = PhiConfig::default();
            c.model = model;
            c
        };
        for threshold in [f64::MIN_POSITIVE, 1e-300, 0.5, 8.0, 1e300, f64::MAX] {
            cases.push({
                let mut c = base.clone();
                c.threshold = threshold;
                c
            });
        }
        for max_sample_size in USIZES {
            cases.push({
                let mut c = base.clone();
                c.max_sample_size = max_sample_size;
                c
            });
        }
        for d in DURATIONS {
            cases.push({
                let mut c = base.clone();
                c.min_std_deviation = d;
                c
            });
            cases.push({
                let mut c = base.clone();
                c.acceptable_heartbeat_pause = d;
                c
            });
            cases.push({
                let mut c = base.clone();
                c.first_heartbeat_estimate = d;
                c
            });
            cases.push({
                let mut c = base.clone();
                c.min_std_deviation = d;
                c.acceptable_heartbeat_pause = d;
                c.first_heartbeat_estimate = d;
                c
            });
        }
    }
    let mut failures = Vec::new();
    for config in cases {
        if config.validate().is_err() {
            continue;
        }
        let name = format!("{config:?}");
        if catch_unwind(AssertUnwindSafe(|| drive_phi(config))).is_err() {
            failures.push(name);
        }
    }
    assert!(
        failures.is_empty(),
        "valid configs that panicked:\n{}",
        failures.join("\n")
    );
}

/// The heartbeat detector's only setting, its timeout, is valid at any value: the
/// deadline is `None` when `last + timeout` is past the largest `Instant`.
#[test]
fn heartbeat_timeout_extremes_run() {
    let start = Instant::now();
    for timeout in DURATIONS {
        let mut fd = HeartbeatDetector::new(timeout);
        for gap in [Duration::ZERO, Duration::from_secs(1), YEAR] {
            let now = start + gap;
            fd.heartbeat(now);
            let _ = fd.poll_timeout();
            for later in [Duration::ZERO, DAY, 100 * YEAR] {
                let _ = fd.is_available(now + later);
                let _ = fd.elapsed(now + later);
            }
        }
        if timeout > 200 * YEAR {
            assert!(fd.is_available(start + 101 * YEAR + YEAR));
        }
    }
}

/// The documented limits themselves are valid and run, alone and all at once (the
/// longest timers multiplied by the largest multipliers); one step past each is
/// refused.
#[test]
fn swim_limits_are_valid_and_run() {
    let longest = SwimConfig::MAX_INTERVAL;
    let mut all = SwimConfig::default();
    all.probe_interval = longest;
    all.probe_timeout = longest - Duration::from_nanos(1);
    all.gossip_interval = longest;
    all.announce_interval = longest;
    all.sync_interval = longest;
    all.down_retention = SwimConfig::MAX_DOWN_RETENTION;
    all.retransmit_mult = SwimConfig::MAX_MULTIPLIER;
    all.suspicion_mult = SwimConfig::MAX_MULTIPLIER;
    all.suspicion_max_timeout_mult = SwimConfig::MAX_MULTIPLIER;
    all.awareness_max_multiplier = SwimConfig::MAX_MULTIPLIER;
    all.indirect_checks = SwimConfig::MAX_FANOUT;
    all.gossip_nodes = SwimConfig::MAX_FANOUT;
    all.max_down_members = SwimConfig::MAX_DOWN_MEMBERS;
    all.max_packet_size = SwimConfig::MAX_PACKET_SIZE;
    all.cluster_id = u64::MAX;
    assert_eq!(all.validate_for::<u32>(), Ok(()));
    drive_swim(&all);

    let mut shortest = SwimConfig::default();
    shortest.probe_interval = Duration::from_nanos(2);
    shortest.probe_timeout = Duration::from_nanos(1);
    shortest.gossip_interval = Duration::from_nanos(1);
    shortest.announce_interval = Duration::from_nanos(1);
    shortest.sync_interval = Duration::from_nanos(1);
    shortest.down_retention = Duration::ZERO;
    shortest.max_down_members = 0;
    shortest.max_packet_size = shortest.min_packet_size::<u32>();
    assert_eq!(shortest.validate_for::<u32>(), Ok(()));
    drive_swim(&shortest);

    let past: [(&str, Edit); 12] = [
        (
            "probe_interval",
            Box::new(|c| c.probe_interval = SwimConfig::MAX_INTERVAL + Duration::from_nanos(1)),
        ),
        (
            "gossip_interval",
            Box::new(|c| c.gossip_interval = SwimConfig::MAX_INTERVAL + Duration::from_nanos(1)),
        ),
        (
            "announce_interval",
            Box::new(|c| c.announce_interval = SwimConfig::MAX_INTERVAL + Duration::from_nanos(1)),
        ),
        (
            "sync_interval",
            Box::new(|c| c.sync_interval = SwimConfig::MAX_INTERVAL + Duration::from_nanos(1)),
        ),
        (
            "down_retention",
            Box::new(|c| {
                c.down_retention = SwimConfig::MAX_DOWN_RETENTION + Duration::from_nanos(1)
            }),
        ),
        (
            "retransmit_mult",
            Box::new(|c| c.retransmit_mult = SwimConfig::MAX_MULTIPLIER + 1),
        ),
        (
            "suspicion_mult",
            Box::new(|c| c.suspicion_mult = SwimConfig::MAX_MULTIPLIER + 1),
        ),
        (
            "suspicion_max_timeout_mult",
            Box::new(|c| c.suspicion_max_timeout_mult = SwimConfig::MAX_MULTIPLIER + 1),
        ),
        (
            "awareness_max_multiplier",
            Box::new(|c| c.awareness_max_multiplier = SwimConfig::MAX_MULTIPLIER + 1),
        ),
        (
            "indirect_checks",
            Box::new(|c| c.indirect_checks = SwimConfig::MAX_FANOUT + 1),
        ),
        (
            "gossip_nodes",
            Box::new(|c| c.gossip_nodes = SwimConfig::MAX_FANOUT + 1),
        ),
        (
            "max_down_members",
            Box::new(|c| c.max_down_members = SwimConfig::MAX_DOWN_MEMBERS + 1),
        ),
    ];
    for (field, edit) in past {
        let mut c = all.clone();
        edit(&mut c);
        let err = c.validate().expect_err(field);
        assert!(err.to_string().starts_with(field), "{field}: {err}");
    }
    let mut c = all.clone();
    c.max_packet_size = SwimConfig::MAX_PACKET_SIZE + 1;
    assert!(matches!(
        c.validate(),
        Err(SwimConfigError::PacketSize { .. })
    ));
}

/// The scenario plan is a simulator config like the network's: `Default`,
/// `validate()` with one `sim::SimConfigError`, called by the runner before anything
/// runs.
#[test]
fn scenario_plan_is_validated() {
    use dsys_detect::sim::MAX_VIRTUAL_TIME;
    use dsys_detect::sim::SimConfigError;
    use dsys_detect::sim::scenario::{self, Plan, ScenarioError, SlowPhase};

    assert_eq!(Plan::default().validate(), Ok(()));
    let mut at_limits = Plan::new(Plan::MAX_NODES, 0);
    at_limits.churn = Plan::MAX_CHURN;
    at_limits.settle = MAX_VIRTUAL_TIME;
    at_limits.loss = 1.0;
    assert_eq!(
        at_limits.validate(),
        Ok(()),
        "the limits themselves are valid"
    );

    let refused = |edit: &dyn Fn(&mut Plan)| {
        let mut plan = Plan::default();
        edit(&mut plan);
        let err = plan.validate().expect_err("out of limits");
        let run = scenario::run(&plan, Instant::now(), |i, now| {
            Swim::new(i as u32, SwimConfig::default(), i as u64, now).unwrap()
        });
        assert_eq!(
            run.err(),
            Some(ScenarioError::Config(err.clone())),
            "run validates"
        );
        err
    };
    assert!(matches!(
        refused(&|p| p.nodes = 0),
        SimConfigError::Count { field: "nodes", .. }
    ));
    assert!(matches!(
        refused(&|p| p.nodes = Plan::MAX_NODES + 1),
        SimConfigError::Count { field: "nodes", .. }
    ));
    assert!(matches!(
        refused(&|p| p.churn = Plan::MAX_CHURN + 1),
        SimConfigError::Count { field: "churn", .. }
    ));
    assert!(matches!(
        refused(&|p| p.probe_interval = Duration::ZERO),
        SimConfigError::Zero {
            field: "probe_interval"
        }
    ));
    assert!(matches!(
        refused(&|p| p.settle = MAX_VIRTUAL_TIME + Duration::from_nanos(1)),
        SimConfigError::TooLong {
            field: "settle",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p.loss = 1.5),
        SimConfigError::Probability { field: "loss", .. }
    ));
    assert!(matches!(
        refused(&|p| p.net.latency_max = Duration::MAX),
        SimConfigError::Latency { .. }
    ));
    assert!(matches!(
        refused(&|p| p.slow[1].stall = (Duration::from_secs(2), Duration::from_secs(1))),
        SimConfigError::SlowPhase {
            index: 1,
            field: "stall",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p.slow[0].duration = Duration::MAX),
        SimConfigError::SlowPhase {
            index: 0,
            field: "duration",
            ..
        }
    ));
    // Regression: stalls and gaps that are always zero used to loop forever in
    // `slow_node` (every round ran until the current virtual time).
    let mut zero = SlowPhase::pauses();
    zero.stall = (Duration::ZERO, Duration::ZERO);
    zero.gap = (Duration::ZERO, Duration::ZERO);
    assert!(matches!(
        refused(&|p| p.slow = vec![zero]),
        SimConfigError::SlowPhase { index: 0, .. }
    ));
}
