//! foca 2.0 (sans-IO SWIM, <https://caio.co/de/foca/>) behind
//! [`dsys_detect::sim::SimNode`], so the simulator drives it on the same scenario and
//! network as dsys-detect's `Swim`.
//!
//! Included with `#[path = "..."] mod foca_node;` by `tests/swim_vs_foca.rs` and
//! `examples/swim_vs_foca.rs`.
//!
//! # How the comparison is kept fair
//!
//! - **Same configuration where the protocols overlap** ([`foca_config`]): foca's
//!   `Config::new_lan(n)` is derived from memberlist's `DefaultLANConfig`, as our
//!   `SwimConfig::default()` is. Field by field:
//!
//!   | foca                                    | dsys `SwimConfig`                               | value            |
//!   |-----------------------------------------|-------------------------------------------------|------------------|
//!   | `probe_period`                          | `probe_interval`                                | 1 s              |
//!   | `probe_rtt`                             | `probe_timeout`                                 | 500 ms           |
//!   | `num_indirect_probes`                   | `indirect_checks`                               | 3                |
//!   | `periodic_gossip` (200 ms, 3 members)   | `gossip_interval`, `gossip_nodes`               | 200 ms, 3        |
//!   | `suspect_to_down_after` = 4·max(1, log10 n)·1 s | `suspicion_mult`·max(1, log10 n)·`probe_interval` (the *shortest* timeout with Lifeguard, the only one without) | 8 s at n = 100, 12 s at n = 1000 |
//!   | `max_transmissions` = ⌊4·log10(n+1)⌋    | `retransmit_mult`·⌈log10(n+1)⌉ (memberlist)     | see below        |
//!   | `max_packet_size`                       | `max_packet_size`                               | 1400 B           |
//!
//!   The two retransmission formulas differ: foca's `new_lan` floors `4·log10(n+1)`
//!   (8 at n = 100, 12 at n = 1000), memberlist and dsys use `4·⌈log10(n+1)⌉` (12 and
//!   16). We set foca's `max_transmissions` to memberlist's value so both send each
//!   update equally often; this costs foca some bytes and can only speed up its
//!   dissemination. Everything else is left as `new_lan` sets it: `notify_down_members`
//!   on, `periodic_announce` every 30 s to 1 member (foca's anti-entropy),
//!   `periodic_announce_to_down_members` every 65 s to 2 (how it heals partitions),
//!   `remove_down_after` 24 h.
//!
//! - **Auto-rejoin**: [`FocaId`] carries a generation that `renew()` bumps, so a foca
//!   node declared Down rejoins under a new identity at once, as a dsys node refutes
//!   by raising its incarnation. Without it a falsely-downed foca node would stay out
//!   for good, which would exaggerate foca's false positives.
//!
//! - **Same timers, same clock**: foca keeps no clock; its `Runtime::submit_after`
//!   requests land in a per-node timer queue whose earliest deadline is exposed as
//!   `poll_timeout`, so the simulator wakes foca exactly as it wakes `Swim`, including
//!   late after a pause. Timers due at the same instant fire in foca's own `Timer`
//!   order (what its `Ord` impl is for), then in submission order.
//!
//! - **Events**: foca reports `MemberUp` / `MemberDown` (no suspicion without its
//!   unstable features); they map to `Up` / `Down`. `Rename` (a newer generation of
//!   the same address) carries no liveness change of its own: when a Down member comes
//!   back foca follows it with `MemberUp`, which is what the simulator needs. A node's
//!   own `Rejoin` (it was declared Down and renewed itself) is counted in
//!   [`FocaNode::rejoins`], not reported as an event about a member.

#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::num::{NonZeroU8, NonZeroU32};
use std::time::{Duration, Instant};

use dsys_detect::State;
use dsys_detect::sim::{SimEventKind, SimNode};
use foca::{Foca, Identity, NoCustomBroadcast, Notification, PostcardCodec, Runtime, Timer};
use rand_foca::SeedableRng;
use rand_foca::rngs::StdRng;
use serde::{Deserialize, Serialize};

/// A foca identity: the simulator's node index plus a generation bumped on every
/// auto-rejoin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FocaId {
    addr: u32,
    generation: u32,
}

impl FocaId {
    pub(crate) fn new(addr: u32) -> Self {
        FocaId {
            addr,
            generation: 0,
        }
    }
}

impl Identity for FocaId {
    type Addr = u32;

    fn renew(&self) -> Option<Self> {
        Some(FocaId {
            addr: self.addr,
            generation: self.generation.wrapping_add(1),
        })
    }

    fn addr(&self) -> u32 {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

/// foca's LAN configuration for a cluster of `nodes`, aligned with dsys's
/// `SwimConfig::default()` as the module docs explain.
pub(crate) fn foca_config(nodes: usize) -> foca::Config {
    let n = NonZeroU32::new(u32::try_from(nodes.max(1)).unwrap_or(u32::MAX))
        .expect("nodes.max(1) is non-zero");
    let mut config = foca::Config::new_lan(n);
    // memberlist's retransmitLimit, which dsys uses: retransmit_mult · ⌈log10(n + 1)⌉.
    let scale = ((nodes + 1) as f64).log10().ceil().max(1.0) as u32;
    let limit = (4 * scale).clamp(1, u32::from(u8::MAX)) as u8;
    config.max_transmissions = NonZeroU8::new(limit).expect("clamped to 1..=255");
    config
}

/// A timer foca asked for, ordered by deadline, then foca's own `Timer` order, then
/// submission order.
struct Pending {
    at: Instant,
    timer: Timer<FocaId>,
    seq: u64,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed for BinaryHeap (a max-heap): the earliest comes out first.
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.timer.cmp(&self.timer))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// foca's `Runtime`: collects sends and notifications, queues timers.
struct Rt {
    now: Instant,
    timers: BinaryHeap<Pending>,
    seq: u64,
    out: Vec<(usize, Vec<u8>)>,
    events: Vec<(usize, SimEventKind)>,
    rejoins: u64,
}

impl Runtime<FocaId> for Rt {
    fn notify(&mut self, notification: Notification<'_, FocaId>) {
        match notification {
            Notification::MemberUp(id) => self.events.push((id.addr as usize, SimEventKind::Up)),
            Notification::MemberDown(id) => {
                self.events.push((id.addr as usize, SimEventKind::Down));
            }
            Notification::Rejoin(_) => self.rejoins += 1,
            // Rename: see the module docs. Active / Idle / Defunct are about ourselves.
            _ => {}
        }
    }

    fn send_to(&mut self, to: FocaId, data: &[u8]) {
        self.out.push((to.addr as usize, data.to_vec()));
    }

    fn submit_after(&mut self, timer: Timer<FocaId>, after: Duration) {
        self.seq += 1;
        self.timers.push(Pending {
            at: self.now + after,
            timer,
            seq: self.seq,
        });
    }
}

/// One foca instance in the simulator.
pub(crate) struct FocaNode {
    foca: Foca<FocaId, PostcardCodec, StdRng, NoCustomBroadcast>,
    rt: Rt,
    /// Errors foca returned from `handle_timer` (packet errors are counted by the
    /// simulator as rejections).
    pub(crate) timer_errors: u64,
}

impl FocaNode {
    /// Node `index` with `config`, its RNG seeded with `seed`.
    pub(crate) fn new(index: usize, config: foca::Config, seed: u64, now: Instant) -> Self {
        let id = FocaId::new(u32::try_from(index).expect("simulated clusters are small"));
        FocaNode {
            foca: Foca::new(id, config, StdRng::seed_from_u64(seed), PostcardCodec),
            rt: Rt {
                now,
                timers: BinaryHeap::new(),
                seq: 0,
                out: Vec::new(),
                events: Vec::new(),
                rejoins: 0,
            },
            timer_errors: 0,
        }
    }

    /// Times this node found itself declared Down and rejoined under a new identity.
    pub(crate) fn rejoins(&self) -> u64 {
        self.rt.rejoins
    }

    /// The wrapped foca instance.
    pub(crate) fn foca(&self) -> &Foca<FocaId, PostcardCodec, StdRng, NoCustomBroadcast> {
        &self.foca
    }
}

impl SimNode for FocaNode {
    fn handle_packet(&mut self, _from: usize, payload: &[u8], now: Instant) -> bool {
        self.rt.now = now;
        self.foca.handle_data(payload, &mut self.rt).is_ok()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.rt.now = now;
        while self.rt.timers.peek().is_some_and(|p| p.at <= now) {
            let pending = self.rt.timers.pop().expect("peeked");
            if self.foca.handle_timer(pending.timer, &mut self.rt).is_err() {
                self.timer_errors += 1;
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.rt.timers.peek().map(|p| p.at)
    }

    fn drain(&mut self, out: &mut Vec<(usize, Vec<u8>)>, events: &mut Vec<(usize, SimEventKind)>) {
        out.append(&mut self.rt.out);
        events.append(&mut self.rt.events);
    }

    fn join(&mut self, seeds: &[usize], now: Instant) {
        self.rt.now = now;
        for &seed in seeds {
            // Announce is accepted by any generation of the seed's address.
            let seed = FocaId::new(u32::try_from(seed).expect("simulated clusters are small"));
            // Only fails on encoding errors, which a fixed-size identity cannot cause.
            let _ = self.foca.announce(seed, &mut self.rt);
        }
    }

    fn leave(&mut self, now: Instant) {
        self.rt.now = now;
        let _ = self.foca.leave_cluster(&mut self.rt);
    }

    fn state_of(&self, subject: usize) -> Option<State> {
        let addr = u32::try_from(subject).ok()?;
        self.foca
            .iter_membership_state()
            .find(|m| m.id().addr == addr)
            .map(|m| match m.state() {
                foca::State::Alive => State::Alive,
                foca::State::Suspect => State::Suspect,
                foca::State::Down => State::Down,
            })
    }
}
