//! SWIM and Lifeguard behaviour on a small, lossless, deterministic network: each test
//! names the section of the paper it checks. (Loss, partitions, slow nodes and the
//! comparison with foca are in `swim_vs_foca.rs` and `partition.rs`.)

use std::time::{Duration, Instant};

use dsys_detect::sim::{MembershipEvent, NetworkConfig, Sim, SimEventKind};
use dsys_detect::{PacketError, State, Swim, SwimConfig};

/// `n` members on the seeded simulated network (1–10 ms latency, no loss), each
/// joined through member 0 at time zero.
struct Cluster {
    sim: Sim<Swim<u32>>,
}

impl Cluster {
    fn new(n: usize, config: SwimConfig) -> Self {
        let start = Instant::now();
        let mut sim = Sim::new(NetworkConfig::default(), 7, start).expect("a valid network");
        for i in 0..n as u32 {
            sim.add_node(Swim::new(i, config.clone(), 1000 + u64::from(i), start).unwrap());
        }
        for i in 1..n {
            sim.join(i, &[0]);
        }
        Cluster { sim }
    }

    fn run(&mut self, until: Duration) {
        self.sim.run_until(until).expect("no livelock");
    }

    fn now(&self) -> Duration {
        self.sim.now()
    }

    fn events(&self) -> &[MembershipEvent] {
        self.sim.events()
    }

    fn any(&self, subject: usize, kind: SimEventKind) -> bool {
        self.events()
            .iter()
            .any(|e| e.subject == subject && e.kind == kind)
    }

    /// Every running member other than `subject` holds `subject` in `state`.
    fn all_see(&self, subject: usize, state: State) -> bool {
        self.sim
            .live_nodes()
            .into_iter()
            .filter(|&i| i != subject)
            .all(|i| self.sim.node(i).state_of(&(subject as u32)) == Some(state))
    }

    fn everyone_alive(&self) -> bool {
        self.sim
            .live_nodes()
            .into_iter()
            .all(|s| self.all_see(s, State::Alive))
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// SWIM §4.1 and §5: a member joining through one seed becomes known to everyone.
#[test]
fn join_through_a_seed_reaches_everyone() {
    let mut c = Cluster::new(8, SwimConfig::default());
    // Dissemination is probabilistic (λ·log n sends per update); the round-robin
    // probe order bounds the rest: within one round (n - 1 periods) every member has
    // pinged every other, and each packet's header says its sender is alive.
    c.run(secs(10));
    assert!(
        c.everyone_alive(),
        "after 10 s every node sees every other alive"
    );
    let ups = c
        .events()
        .iter()
        .filter(|e| e.kind == SimEventKind::Up)
        .count();
    assert_eq!(ups, 8 * 7, "one Up per ordered pair, no flapping");
    assert!(
        c.events().iter().all(|e| e.kind == SimEventKind::Up),
        "no suspicion on a healthy lossless network: {:?}",
        c.events()
    );
}

/// SWIM §3.1 and §4.2: a crashed member is suspected, then declared down by everyone,
/// within the suspicion timeout plus a few periods.
#[test]
fn a_crashed_member_is_suspected_then_down_everywhere() {
    let mut c = Cluster::new(8, SwimConfig::default());
    c.run(secs(10));
    assert!(c.everyone_alive());
    c.sim.crash(5);
    let crash = c.now();
    c.run(secs(60));
    assert!(c.all_see(5, State::Down));
    let of = |kind| {
        c.events()
            .iter()
            .filter(move |e| e.subject == 5 && e.kind == kind)
            .map(|e| e.at)
    };
    let first_suspect = of(SimEventKind::Suspect).min().expect("suspected");
    let last_down = of(SimEventKind::Down).max().expect("down");
    assert!(first_suspect > crash);
    // 8 members: min suspicion 4 s (log10 8 < 1), at most 6x that unconfirmed; with 7
    // probers, confirmations arrive within a few periods.
    assert!(
        last_down - crash < secs(20),
        "detected in {:?}",
        last_down - crash
    );
    // Nobody else was harmed.
    for s in (0..8).filter(|s| *s != 5) {
        assert!(c.all_see(s, State::Alive), "{s} still alive everywhere");
    }
}

/// SWIM §4.2: a member that hears it is suspected refutes with a higher incarnation,
/// and the refutation overrides the suspicion everywhere.
#[test]
fn a_suspected_member_refutes() {
    let mut c = Cluster::new(6, SwimConfig::default());
    c.run(secs(5));
    // Node 3 goes mute for 6 s (every packet it sends is lost): its probers suspect it,
    // and when it speaks again it learns of the suspicion and refutes it.
    for to in 0..6 {
        c.sim.set_link_loss(3, to, 1.0).expect("a probability");
    }
    c.run(secs(11));
    c.sim.clear_link_loss();
    c.run(secs(40));
    assert!(
        c.any(3, SimEventKind::Suspect),
        "3 was suspected while mute"
    );
    assert!(c.sim.node(3).incarnation() > 0, "3 refuted");
    assert!(c.sim.node(3).counters().refutations > 0);
    assert!(c.everyone_alive(), "{:?}", c.events());
}

/// SWIM §4.2 (leave): a departing member is marked Left everywhere, not Down.
#[test]
fn graceful_leave_is_not_a_failure() {
    let mut c = Cluster::new(6, SwimConfig::default());
    c.run(secs(10));
    c.sim.leave(2);
    c.run(secs(15));
    c.sim.crash(2);
    c.run(secs(40));
    assert!(c.all_see(2, State::Left));
    assert!(!c.any(2, SimEventKind::Down), "{:?}", c.events());
}

/// Bad input: foreign clusters and garbage are rejected with typed errors and counted.
#[test]
fn foreign_and_malformed_packets_are_rejected_and_counted() {
    let now = Instant::now();
    let mut a = Swim::new(1u32, SwimConfig::default(), 1, now).unwrap();
    let mut other = SwimConfig::default();
    other.cluster_id = 99;
    let mut b = Swim::new(2u32, other, 2, now).unwrap();
    b.join([1], now);
    let t = b.poll_transmit().unwrap();
    assert_eq!(
        a.handle_packet(&t.payload, now),
        Err(PacketError::WrongCluster {
            expected: 0,
            got: 99
        })
    );
    assert!(matches!(
        a.handle_packet(&[0xD5, 1, 0, 42], now),
        Err(PacketError::Malformed(_))
    ));
    assert!(matches!(
        a.handle_packet(&[], now),
        Err(PacketError::Malformed(_))
    ));
    assert_eq!(a.counters().wrong_cluster, 1);
    assert_eq!(a.counters().malformed, 2);
    assert_eq!(a.members().count(), 0, "nothing learned");
    assert!(a.poll_event().is_none());
}

/// Memory stays bounded: down members beyond `max_down_members` are forgotten.
#[test]
fn down_members_are_bounded() {
    let mut config = SwimConfig::default();
    config.max_down_members = 2;
    let mut c = Cluster::new(7, config);
    c.run(secs(10));
    for i in 3..7 {
        c.sim.crash(i);
    }
    c.run(secs(120));
    for i in 0..3 {
        let node = c.sim.node(i);
        let gone = node.members().filter(|(_, s, _)| !s.is_live()).count();
        assert!(gone <= 2, "node {i} remembers {gone} down members");
        assert_eq!(node.live_members(), 2);
        assert!(node.counters().forgotten >= 2);
    }
}

/// Lifeguard's slow member (§4.1): a member that wakes from a freeze long after its
/// probe's deadlines does not blame the target for the time it lost itself. Member 1
/// cannot reach member 2 directly (so every probe of 2 needs its relays) and freezes for
/// 3 s every 4 s; its late timers must still give the relays their window.
#[test]
fn a_member_waking_from_a_freeze_does_not_accuse_its_target() {
    let mut c = Cluster::new(6, SwimConfig::default());
    c.run(secs(10));
    assert!(c.everyone_alive());
    c.sim.set_link_loss(1, 2, 1.0).expect("a probability");
    for k in 0..40u64 {
        c.run(secs(11 + 4 * k));
        c.sim.pause(1, secs(3));
    }
    c.run(secs(200));
    assert!(
        !c.any(2, SimEventKind::Suspect),
        "member 2 was suspected: {:?}",
        c.events()
            .iter()
            .filter(|e| e.subject == 2)
            .collect::<Vec<_>>()
    );
    assert!(c.sim.node(1).health_score() > 0 || c.sim.node(1).counters().refutations > 0);
}

/// SWIM §4.2 across a restart ("Persistence and restart" in the README): nothing is
/// persisted. A crashed member that was declared down restarts as a fresh state
/// machine with the same id, at incarnation 0, and joins again; hearing of its
/// previous life (down at a higher or equal incarnation) it refutes with a higher
/// incarnation, and every member takes it back.
#[test]
fn a_restarted_member_outbids_its_previous_life() {
    let mut c = Cluster::new(6, SwimConfig::default());
    c.run(secs(10));
    assert!(c.everyone_alive());
    c.sim.crash(4);
    let crashed_at = c.now();
    c.run(crashed_at + secs(40));
    assert!(
        c.all_see(4, State::Down),
        "declared down before the restart"
    );

    let fresh = Swim::new(4u32, SwimConfig::default(), 4242, c.sim.instant()).unwrap();
    assert_eq!(fresh.incarnation(), 0, "a restart keeps nothing");
    c.sim.restart(4, fresh);
    c.sim.join(4, &[0]);
    let restarted_at = c.now();
    c.run(restarted_at + secs(10));
    assert!(
        c.everyone_alive(),
        "the restarted member is back everywhere"
    );
    let incarnation = c.sim.node(4).incarnation();
    assert!(
        incarnation > 0,
        "it outbid the incarnation it was declared down at"
    );
    for i in [0, 1, 2, 3, 5] {
        let seen = c
            .sim
            .node(i)
            .members()
            .find(|(n, _, _)| **n == 4)
            .map(|(_, s, inc)| (s, inc));
        assert_eq!(seen, Some((State::Alive, incarnation)), "member {i}");
    }
    assert!(
        c.events()
            .iter()
            .any(|e| e.at >= restarted_at && e.subject == 4 && e.kind == SimEventKind::Rejoined),
        "peers report it Rejoined"
    );
}
