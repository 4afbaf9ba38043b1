use std::time::{Duration, Instant};

use super::{MAX_VIRTUAL_TIME, NetworkConfig, NodeStatus, ResumeOrder, Sim, SimConfigError};
use crate::State;
use crate::sim::{SimEventKind, SimNode};

/// The base of virtual time in these tests: read once, and only differences
/// from it are ever used (the simulator itself takes its base as an argument).
#[cfg(test)]
fn base_instant() -> Instant {
    Instant::now()
}

/// Answers every request (a packet starting with 0) with a reply (1) and sends a
/// request to `peer` every 100 ms; logs what it handled, in order.
struct Echo {
    me: usize,
    peer: usize,
    next: Instant,
    out: Vec<(usize, Vec<u8>)>,
    /// (`'p'` packet or `'t'` timeout, sender or self, first byte, when)
    log: Vec<(char, usize, u8, Instant)>,
}

impl Echo {
    fn new(me: usize, peer: usize, now: Instant) -> Self {
        Echo {
            me,
            peer,
            next: now + Duration::from_millis(100),
            out: Vec::new(),
            log: Vec::new(),
        }
    }

    fn count(&self, what: char, byte: u8) -> usize {
        self.log
            .iter()
            .filter(|l| l.0 == what && (what == 't' || l.2 == byte))
            .count()
    }
}

impl SimNode for Echo {
    fn handle_packet(&mut self, from: usize, payload: &[u8], now: Instant) -> bool {
        self.log.push(('p', from, payload[0], now));
        if payload[0] == 0 {
            self.out.push((from, vec![1, self.me as u8]));
        }
        true
    }
    fn handle_timeout(&mut self, now: Instant) {
        assert!(now >= self.next, "never woken early");
        self.log.push(('t', self.me, 0, now));
        self.out.push((self.peer, vec![0, self.me as u8]));
        self.next = now + Duration::from_millis(100);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next)
    }
    fn drain(&mut self, out: &mut Vec<(usize, Vec<u8>)>, _events: &mut Vec<(usize, SimEventKind)>) {
        out.append(&mut self.out);
    }
    fn join(&mut self, _seeds: &[usize], _now: Instant) {}
    fn leave(&mut self, _now: Instant) {}
    fn state_of(&self, _subject: usize) -> Option<State> {
        Some(State::Alive)
    }
}

fn pair(seed: u64, net: NetworkConfig) -> Sim<Echo> {
    let mut sim = Sim::new(net, seed, base_instant()).expect("a valid network");
    let now = sim.instant();
    sim.add_node(Echo::new(0, 1, now));
    sim.add_node(Echo::new(1, 0, now));
    sim
}

#[test]
fn requests_are_answered() {
    let mut sim = pair(1, NetworkConfig::default());
    sim.run_for(Duration::from_secs(10)).unwrap();
    for i in 0..2 {
        let n = sim.node(i);
        assert_eq!(n.count('t', 0), 100);
        // The last request may still be in flight.
        assert!((99..=100).contains(&n.count('p', 1)), "{}", n.count('p', 1));
    }
    assert_eq!(sim.stats(0).sent.packets, sim.stats(1).received.packets + 1);
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let net = NetworkConfig {
            loss: 0.2,
            duplicate: 0.1,
            ..NetworkConfig::default()
        };
        let mut sim = pair(seed, net);
        sim.run_for(Duration::from_secs(20)).unwrap();
        let base = sim.base();
        let log: Vec<_> = sim
            .node(0)
            .log
            .iter()
            .map(|l| (l.0, l.1, l.2, l.3 - base))
            .collect();
        (log, sim.traffic())
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn loss_drops_about_the_configured_share() {
    let net = NetworkConfig {
        loss: 0.3,
        ..NetworkConfig::default()
    };
    let mut sim = pair(9, net);
    sim.run_for(Duration::from_secs(100)).unwrap();
    let sent = sim.stats(0).sent.packets as f64;
    let dropped = sim.stats(0).dropped as f64;
    assert!(
        (0.25..0.35).contains(&(dropped / sent)),
        "{}",
        dropped / sent
    );
}

#[test]
fn partition_blocks_and_heal_restores() {
    let mut sim = pair(2, NetworkConfig::default());
    sim.partition(&[&[0]]);
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(sim.node(0).count('p', 0) + sim.node(1).count('p', 0), 0);
    sim.heal();
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert!(sim.node(0).count('p', 0) > 0);
}

#[test]
fn crashed_node_stops_and_drops() {
    let mut sim = pair(3, NetworkConfig::default());
    sim.run_for(Duration::from_millis(550)).unwrap();
    sim.crash(1);
    let before = sim.node(1).log.len();
    sim.run_for(Duration::from_secs(2)).unwrap();
    assert_eq!(sim.node(1).log.len(), before);
    assert!(sim.stats(0).dropped >= 19);
    assert_eq!(sim.live_nodes(), vec![0]);
}

#[test]
fn paused_node_handles_backlog_at_resume() {
    for order in [
        ResumeOrder::TimersFirst,
        ResumeOrder::PacketsFirst,
        ResumeOrder::Interleaved,
    ] {
        let net = NetworkConfig {
            resume_order: order,
            ..NetworkConfig::default()
        };
        let mut sim = pair(4, net);
        sim.run_for(Duration::from_millis(150)).unwrap();
        sim.pause(1, Duration::from_secs(1));
        let resume = sim.instant() + Duration::from_secs(1);
        let before = sim.node(1).log.len();
        sim.run_for(Duration::from_millis(999)).unwrap();
        assert_eq!(sim.node(1).log.len(), before, "{order:?}: frozen");
        sim.run_for(Duration::from_millis(2)).unwrap();
        let at_resume: Vec<_> = sim.node(1).log[before..]
            .iter()
            .filter(|l| l.3 == resume)
            .map(|l| l.0)
            .collect();
        // Ten requests queued (node 1 sent none, so no replies), one overdue timeout.
        assert_eq!(
            at_resume.iter().filter(|&&c| c == 't').count(),
            1,
            "{order:?}"
        );
        assert_eq!(at_resume.len(), 11, "{order:?}: {at_resume:?}");
        match order {
            ResumeOrder::TimersFirst => assert_eq!(at_resume[0], 't'),
            ResumeOrder::PacketsFirst => assert_eq!(*at_resume.last().unwrap(), 't'),
            ResumeOrder::Interleaved => {}
        }
        // Queued packets are handled in arrival order: requests carry no sequence
        // number, but every queued packet was sent by node 0.
        assert!(
            sim.node(1).log[before..]
                .iter()
                .all(|l| l.0 == 't' || l.1 == 0)
        );
    }
}

#[test]
fn receive_stall_queues_packets_but_not_timers() {
    let mut sim = pair(6, NetworkConfig::default());
    sim.run_for(Duration::from_millis(150)).unwrap();
    sim.stall_receive(1, Duration::from_secs(1));
    let end = sim.instant() + Duration::from_secs(1);
    let before = sim.node(1).log.len();
    sim.run_for(Duration::from_millis(999)).unwrap();
    let during: Vec<char> = sim.node(1).log[before..].iter().map(|l| l.0).collect();
    assert_eq!(during, vec!['t'; 10], "timers keep firing, packets wait");
    // Its requests went out and node 0 answered them.
    assert!(sim.node(0).count('p', 0) >= 10);
    sim.run_for(Duration::from_millis(2)).unwrap();
    let at_end = sim
        .node(1)
        .log
        .iter()
        .filter(|l| l.3 == end && l.0 == 'p')
        .count();
    assert!(
        at_end >= 19,
        "ten requests and the replies handled at once: {at_end}"
    );
    assert_eq!(sim.status(1), NodeStatus::Running);
}

#[test]
fn spinning_node_is_reported_as_livelock() {
    struct Spin(Instant);
    impl SimNode for Spin {
        fn handle_packet(&mut self, _: usize, _: &[u8], _: Instant) -> bool {
            true
        }
        fn handle_timeout(&mut self, _now: Instant) {}
        fn poll_timeout(&self) -> Option<Instant> {
            Some(self.0)
        }
        fn drain(&mut self, out: &mut Vec<(usize, Vec<u8>)>, _: &mut Vec<(usize, SimEventKind)>) {
            out.push((0, vec![0]));
        }
        fn join(&mut self, _: &[usize], _: Instant) {}
        fn leave(&mut self, _: Instant) {}
        fn state_of(&self, _: usize) -> Option<State> {
            None
        }
    }
    let net = NetworkConfig {
        latency_min: Duration::ZERO,
        latency_max: Duration::ZERO,
        event_budget: 10,
        ..NetworkConfig::default()
    };
    let base = base_instant();
    let mut sim = Sim::new(net, 0, base).expect("a valid network");
    sim.add_node(Spin(base));
    let err = sim.run_for(Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.at, Duration::ZERO);
}

/// Probabilities outside `[0, 1]` and delays that could overflow virtual time are
/// refused with a typed error when the network is built or a loss is set, and a
/// refused setter changes nothing.
#[test]
fn net_config_is_validated() {
    assert_eq!(NetworkConfig::default().validate(), Ok(()));
    let refused = |edit: fn(&mut NetworkConfig)| {
        let mut net = NetworkConfig::default();
        edit(&mut net);
        let err = net.validate().expect_err("out of limits");
        assert!(
            Sim::<Echo>::new(net, 0, base_instant()).is_err(),
            "Sim::new validates"
        );
        err
    };
    assert!(matches!(
        refused(|n| n.loss = 1.5),
        SimConfigError::Probability { field: "loss", .. }
    ));
    assert!(matches!(
        refused(|n| n.loss = f64::NAN),
        SimConfigError::Probability { field: "loss", .. }
    ));
    assert!(matches!(
        refused(|n| n.duplicate = -0.1),
        SimConfigError::Probability {
            field: "duplicate",
            ..
        }
    ));
    assert_eq!(
        refused(|n| n.latency_max = Duration::MAX),
        SimConfigError::Latency {
            field: "latency_max",
            max: NetworkConfig::MAX_LATENCY
        }
    );
    assert!(matches!(
        refused(|n| n.latency_min = Duration::from_secs(1)),
        SimConfigError::Latency {
            field: "latency_min",
            ..
        }
    ));
    let net = NetworkConfig {
        latency_min: NetworkConfig::MAX_LATENCY,
        latency_max: NetworkConfig::MAX_LATENCY,
        loss: 1.0,
        duplicate: 1.0,
        ..NetworkConfig::default()
    };
    assert_eq!(net.validate(), Ok(()), "the limits themselves are valid");

    let mut sim = pair(9, NetworkConfig::default());
    assert!(sim.set_loss(2.0).is_err());
    assert!(sim.set_link_loss(0, 1, -1.0).is_err());
    assert_eq!(sim.net().loss, 0.0, "a refused setter changes nothing");
    sim.run_for(Duration::from_secs(1)).expect("no livelock");
    assert!(sim.node(0).count('p', 1) > 0, "no link loss was installed");
    assert_eq!(sim.set_loss(0.5), Ok(()));
    assert_eq!(sim.net().loss, 0.5);
}

/// Durations a caller passes end at `MAX_VIRTUAL_TIME` instead of overflowing virtual
/// time (a panic before): a pause "forever", then a run "forever", reach it and stop.
#[test]
fn huge_durations_saturate_at_the_last_virtual_instant() {
    let mut sim = pair(10, NetworkConfig::default());
    sim.crash(1);
    sim.pause(0, Duration::MAX);
    assert_eq!(
        sim.status(0),
        NodeStatus::Paused {
            until: MAX_VIRTUAL_TIME
        }
    );
    sim.stall_receive(0, Duration::MAX);
    sim.run_for(Duration::MAX).expect("no livelock");
    assert_eq!(sim.now(), MAX_VIRTUAL_TIME);
    assert_eq!(sim.instant(), sim.base() + MAX_VIRTUAL_TIME);
    assert_eq!(
        sim.status(0),
        NodeStatus::Running,
        "it resumed at the end of time"
    );
    assert!(sim.node(0).count('t', 0) > 0, "and fired its overdue timer");
    sim.run_for(Duration::from_secs(1)).expect("no livelock");
    assert_eq!(sim.now(), MAX_VIRTUAL_TIME, "time stops there");
    let done = sim
        .run_until_cond(Duration::MAX, Duration::MAX, |_| false)
        .expect("no livelock");
    assert_eq!(done, None);
}
