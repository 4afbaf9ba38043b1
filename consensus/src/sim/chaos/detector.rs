//! The application's failure detector, played by the chaos scenario in
//! quiescence runs (`RaftNode::set_peer_liveness`).

use super::{Faults, TICK};
use crate::sim::Simulation;

/// The application's failure detector, in quiescence runs: every
/// `interval` ticks it tells each up node, for each peer, whether the peer
/// is up and can reach it; during the faults it sometimes reports a live
/// peer down. Without quiescence it does nothing.
pub(super) struct Detector {
    pub(super) on: bool,
    pub(super) quiesce_after_ticks: u32,
    interval: u64,
    false_suspicion: f64,
    /// Clients go quiet every other window of this many time units, so
    /// groups go idle and quiesce between bursts of faults and load.
    pause_window: u64,
    /// After the faults, let the group idle, then crash this node for good.
    pub(super) kill_at_calm: Option<Victim>,
    ticks: u64,
    rng: fastrand::Rng,
}

/// Which node dies for good once the group idles after the faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Victim {
    Leader,
    Follower,
}

impl Detector {
    pub(super) fn new(seed: u64, election_tick: u32, force: bool) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x9e37_79b9_7f4a_7c15);
        let on = rng.f64() < 0.4 || force;
        Self {
            on,
            quiesce_after_ticks: if on {
                1 + rng.u32(..2 * election_tick)
            } else {
                0
            },
            interval: 1 + rng.u64(..u64::from(election_tick)),
            false_suspicion: if rng.bool() { rng.f64() * 0.05 } else { 0.0 },
            pause_window: u64::from(election_tick) * (2 + rng.u64(..6)) * TICK,
            kill_at_calm: match rng.u32(..4) {
                0 if on => Some(Victim::Leader),
                1 if on => Some(Victim::Follower),
                _ => None,
            },
            ticks: 0,
            rng,
        }
    }

    /// Whether clients wait at time `now` (quiescence runs only).
    pub(super) fn clients_pause(&self, now: u64) -> bool {
        self.on && (now / self.pause_window) % 2 == 1
    }

    /// Called once per tick.
    pub(super) fn report(
        &mut self,
        sim: &mut Simulation,
        nodes: u64,
        chaos: bool,
        faults: &mut Faults,
    ) {
        if !self.on {
            return;
        }
        self.ticks += 1;
        if self.ticks % self.interval != 0 {
            return;
        }
        for observer in 1..=nodes {
            for peer in (1..=nodes).filter(|&p| p != observer) {
                let up = sim.is_up(peer) && !sim.is_cut(peer, observer);
                let wrong = chaos && up && self.rng.f64() < self.false_suspicion;
                faults.false_suspicions += u64::from(wrong && sim.is_up(observer));
                sim.set_peer_liveness(observer, peer, up && !wrong);
            }
        }
    }
}
