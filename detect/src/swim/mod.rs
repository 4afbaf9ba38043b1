//! SWIM membership (Das, Gupta, Motivala 2002) with Lifeguard (Dadgar et al. 2017), as a
//! sans-IO state machine.
//!
//! [`Swim`] never touches a socket or a clock. The caller feeds it packets
//! ([`Swim::handle_packet`]) and timer expiries ([`Swim::handle_timeout`]), each with
//! the current time, and drains what it wants done: packets to send
//! ([`Swim::poll_transmit`]), membership changes ([`Swim::poll_event`]) and when to
//! call back ([`Swim::poll_timeout`]).
//!
//! What it implements, by section:
//! - failure detection: one randomized round-robin probe per protocol period, a direct
//!   ping with a timeout, then `ping-req` through `k` members (SWIM §3.1, §4.3);
//! - suspicion with incarnation numbers and refutation (SWIM §4.2);
//! - infection-style dissemination piggybacked on every packet, each update sent at most
//!   λ·log(n) times (SWIM §4.1), plus memberlist's periodic gossip;
//! - join through seeds, graceful leave, periodic announce to members believed down (so
//!   the sides of a healed partition, and a node that lost every peer, find each other
//!   again), periodic anti-entropy (a whole-view exchange with one live member, as
//!   memberlist's push-pull) and bounded memory for down members;
//! - Lifeguard: local health awareness that stretches this node's own timeouts when it
//!   misses acks and nacks (§4.1), the buddy system that tells a suspect first (§4.2) and
//!   suspicion timeouts that shrink with independent confirmations (§4.3).

mod config;
mod dissemination;
mod lifeguard;
mod member;
mod probe;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use config::UPDATE_COUNT_LEN;
pub use config::{Config, ConfigError};
pub use member::State;
pub use wire::{DecodeError, NodeId, PacketError};

use dissemination::Dissemination;
use lifeguard::{Awareness, Suspicion};
use member::{Claim, Member, overrides};
use probe::{Probe, ProbeOrder, Relay};
use wire::{Message, Update, decode_packet_into, encode_message, finish_updates};

/// A packet to send: `payload` goes to `to` over whatever datagram transport the
/// caller uses. Loss, duplication and reordering are all tolerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<N> {
    /// Destination member.
    pub to: N,
    /// The encoded packet, at most [`Config::max_packet_size`] bytes.
    pub payload: Vec<u8>,
}

/// A change in this node's view of the membership.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Event<N> {
    /// A member joined, or a suspected member refuted the suspicion.
    Up(N),
    /// A member missed a probe (its own or another member's, named by `by`).
    Suspect {
        /// The suspected member.
        node: N,
        /// Who suspected it first.
        by: N,
    },
    /// A member's suspicion timed out: it is considered failed.
    Down {
        /// The failed member.
        node: N,
        /// Who declared it down.
        by: N,
    },
    /// A member left on purpose.
    Left(N),
    /// A member believed down or departed is back, with a higher incarnation.
    Rejoined(N),
}

/// What happened to received packets and updates; counted, never panicked on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Packets handled.
    pub packets_received: u64,
    /// Packets handed out by [`Swim::poll_transmit`] (queued for sending).
    pub packets_sent: u64,
    /// Bytes in those packets.
    pub bytes_sent: u64,
    /// Packets dropped as malformed.
    pub malformed: u64,
    /// Packets dropped because they came from another cluster.
    pub wrong_cluster: u64,
    /// Packets dropped because they claimed to come from this node.
    pub from_self: u64,
    /// Packets dropped because this node had left.
    pub after_leave: u64,
    /// Updates ignored because they were older than what this node knew.
    pub stale_updates: u64,
    /// Pings addressed to another identity (a restarted or renamed node).
    pub misdirected: u64,
    /// Acks and nacks that matched no probe or relay (late or duplicated).
    pub unmatched_acks: u64,
    /// Times this node refuted a suspicion or death of itself.
    pub refutations: u64,
    /// Members forgotten by down-member retention.
    pub forgotten: u64,
    /// Packets not sent because even without updates they would be larger than
    /// [`Config::max_packet_size`]. Only an id longer than its type's
    /// [`NodeId::MAX_ENCODED_LEN`] (a `decode` that accepts more than it declares) can
    /// cause it: [`Config::validate_for`] sizes the packet for the longest ids.
    pub oversized_packets: u64,
    /// Updates left out of a whole-view exchange because, alone, they would not fit a
    /// packet; the same cause as `oversized_packets`.
    pub oversized_updates: u64,
}

/// A SWIM member: the local state machine of one node. See the [module docs](self).
///
/// Methods, in the order a run loop uses them:
/// - commands: [`join`](Self::join), [`leave`](Self::leave);
/// - inputs: [`handle_packet`](Self::handle_packet), [`handle_timeout`](Self::handle_timeout);
/// - outputs, drained after every input or command: [`poll_transmit`](Self::poll_transmit)
///   until `None`, [`poll_event`](Self::poll_event) until `None`, then
///   [`poll_timeout`](Self::poll_timeout) for the next wake-up;
/// - getters: [`members`](Self::members), [`state_of`](Self::state_of),
///   [`health_score`](Self::health_score), [`counters`](Self::counters).
#[derive(Debug)]
pub struct Swim<N: NodeId> {
    me: N,
    incarnation: u32,
    config: Config,
    rng: fastrand::Rng,
    members: BTreeMap<N, Member<N>>,
    /// Alive and suspect members (not counting this node).
    live: usize,
    /// Down and departed members by when they went, for retention.
    gone: BTreeSet<(Instant, N)>,
    order: ProbeOrder<N>,
    broadcasts: Dissemination<N>,
    awareness: Awareness,
    seeds: Vec<N>,
    seq: u32,
    probe: Option<Probe<N>>,
    next_probe: Instant,
    relays: BTreeMap<u32, Relay<N>>,
    suspicions: BTreeSet<(Instant, N)>,
    next_gossip: Option<Instant>,
    next_announce: Instant,
    next_sync: Option<Instant>,
    left: bool,
    transmits: VecDeque<Transmit<N>>,
    events: VecDeque<Event<N>>,
    counters: Counters,
    /// The update buffer packets are decoded into, reused.
    scratch: Vec<Update<N>>,
}

impl<N: NodeId> Swim<N> {
    /// A node that knows nobody yet. `rng_seed` drives every random choice, so a run
    /// is reproducible from its seed; give each node a different one.
    ///
    /// # Errors
    ///
    /// A field out of its limits ([`Config::validate_for`] with this id type); nothing
    /// was created.
    pub fn new(me: N, config: Config, rng_seed: u64, now: Instant) -> Result<Self, ConfigError> {
        config.validate_for::<N>()?;
        let awareness = Awareness::new(if config.lifeguard {
            config.awareness_max_multiplier
        } else {
            1
        });
        let mut rng = fastrand::Rng::with_seed(rng_seed);
        // Spread the first probe over one period so a cluster started at once does not
        // probe in lockstep.
        let first_probe = now + config.probe_interval.mul_f64(rng.f64());
        let next_gossip = (!config.gossip_interval.is_zero()).then(|| now + config.gossip_interval);
        let next_announce = now + config.announce_interval;
        // Stagger the anti-entropy rounds across members too.
        let next_sync = (!config.sync_interval.is_zero())
            .then(|| now + config.sync_interval.mul_f64(0.5 + rng.f64()));
        Ok(Swim {
            me,
            incarnation: 0,
            config,
            rng,
            members: BTreeMap::new(),
            live: 0,
            gone: BTreeSet::new(),
            order: ProbeOrder::new(),
            broadcasts: Dissemination::new(),
            awareness,
            seeds: Vec::new(),
            seq: 0,
            probe: None,
            next_probe: first_probe,
            relays: BTreeMap::new(),
            suspicions: BTreeSet::new(),
            next_gossip,
            next_announce,
            next_sync,
            left: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            scratch: Vec::new(),
        })
    }

    // ---- getters ----

    /// This node's identity.
    pub fn me(&self) -> &N {
        &self.me
    }

    /// This node's incarnation number: raised each time it refutes a suspicion.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What this node believes about `node` (`None`: unknown or forgotten).
    pub fn state_of(&self, node: &N) -> Option<State> {
        self.members.get(node).map(|m| m.state)
    }

    /// Every remembered member (not this node) with its state and incarnation, in id
    /// order.
    pub fn members(&self) -> impl Iterator<Item = (&N, State, u32)> + '_ {
        self.members
            .iter()
            .map(|(n, m)| (n, m.state, m.incarnation))
    }

    /// Alive and suspect members, this node not included.
    pub fn live_members(&self) -> usize {
        self.live
    }

    /// Lifeguard's local health multiplier score (0 = healthy): this node's timeouts
    /// are stretched by `score + 1`.
    pub fn health_score(&self) -> u32 {
        self.awareness.score()
    }

    /// Updates waiting to be piggybacked.
    pub fn pending_updates(&self) -> usize {
        self.broadcasts.len()
    }

    /// Drop and event counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether [`leave`](Self::leave) was called.
    pub fn has_left(&self) -> bool {
        self.left
    }

    // ---- commands ----

    /// Joins through `seeds`: announces this node to each and asks for their view. Seeds
    /// are remembered and asked again every protocol period while this node knows nobody
    /// alive (a lost join), and every `announce_interval` after it has lost every peer.
    pub fn join(&mut self, seeds: impl IntoIterator<Item = N>, now: Instant) {
        self.next_announce = now + self.config.probe_interval;
        self.seeds = seeds.into_iter().filter(|s| *s != self.me).collect();
        self.seeds.sort();
        self.seeds.dedup();
        self.broadcasts.push(self.self_alive());
        for seed in self.seeds.clone() {
            self.send_view(seed, true);
        }
    }

    /// Leaves gracefully: tells a few members, who spread it, and stops probing. Keep
    /// driving [`handle_timeout`](Self::handle_timeout) and draining for a few gossip
    /// intervals so the news gets out; later packets are refused with
    /// [`PacketError::Left`].
    pub fn leave(&mut self, now: Instant) {
        if self.left {
            return;
        }
        self.left = true;
        self.probe = None;
        self.relays.clear();
        self.broadcasts.push(Update::Left {
            node: self.me.clone(),
            incarnation: self.incarnation,
        });
        let fanout = self.config.gossip_nodes.max(1).saturating_mul(3);
        for to in self.order.sample(fanout, |_| true, &mut self.rng) {
            self.send(to, Message::Gossip);
        }
        let _ = now;
    }

    // ---- inputs ----

    /// Handles one received packet.
    ///
    /// # Errors
    ///
    /// The packet was dropped and counted; no state changed.
    pub fn handle_packet(&mut self, payload: &[u8], now: Instant) -> Result<(), PacketError> {
        if self.left {
            self.counters.after_leave += 1;
            return Err(PacketError::Left);
        }
        let scratch = std::mem::take(&mut self.scratch);
        let packet = match decode_packet_into::<N>(payload, self.config.cluster_id, scratch) {
            Ok(p) => p,
            Err(e) => {
                match e {
                    PacketError::WrongCluster { .. } => self.counters.wrong_cluster += 1,
                    _ => self.counters.malformed += 1,
                }
                return Err(e);
            }
        };
        if packet.from == self.me {
            self.counters.from_self += 1;
            return Err(PacketError::FromSelf);
        }
        self.counters.packets_received += 1;
        let from = packet.from;
        // The header is news too: the sender is alive at its incarnation. Only new news
        // is applied (it is repeated in every packet, so it is not counted as stale).
        if self
            .members
            .get(&from)
            .is_none_or(|m| packet.from_incarnation > m.incarnation)
        {
            let sender_alive = Update::Alive {
                node: from.clone(),
                incarnation: packet.from_incarnation,
            };
            self.apply(sender_alive, now);
        }
        let mut updates = packet.updates;
        for update in updates.drain(..) {
            self.apply(update, now);
        }
        self.scratch = updates;
        match packet.message {
            Message::Ping { seq, target } => {
                if target == self.me {
                    self.send(from, Message::Ack { seq });
                } else {
                    self.counters.misdirected += 1;
                }
            }
            Message::PingReq { seq, target } => {
                if target == self.me {
                    // Asked to probe ourselves: the requester reached us, so answer.
                    self.send(from, Message::Ack { seq });
                } else {
                    self.seq = self.seq.wrapping_add(1);
                    let our_seq = self.seq;
                    self.relays.insert(
                        our_seq,
                        Relay {
                            requester: from,
                            their_seq: seq,
                            // Lifeguard §4.2: the nack must reach the requester before
                            // its protocol period ends, `probe_interval - probe_timeout`
                            // after it asked; give up at 4/5 of that, leaving a fifth
                            // for the round trip. (Waiting a whole probe timeout, the
                            // nack arrives after the requester has counted it missing,
                            // and every probe of a crashed member hurts its prober's
                            // health score.)
                            deadline: now + self.relay_timeout(),
                        },
                    );
                    self.send(
                        target.clone(),
                        Message::Ping {
                            seq: our_seq,
                            target,
                        },
                    );
                }
            }
            Message::Ack { seq } => self.on_ack(seq),
            Message::Nack { seq } => match &mut self.probe {
                Some(p) if p.seq == seq => p.nacks += 1,
                _ => self.counters.unmatched_acks += 1,
            },
            Message::Gossip | Message::Feed { .. } => {}
            Message::Announce { more } => {
                if !more {
                    self.send_view(from, false);
                }
            }
        }
        Ok(())
    }

    /// Fires every timer due at `now`. Calling it early, or more than once, is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_suspicions(now);
        self.expire_relays(now);
        if !self.left {
            self.advance_probe(now);
            if now >= self.next_announce {
                self.announce();
                // A member that knows nobody alive (its join was lost, or it lost every
                // peer) asks its seeds again every protocol period.
                let interval = if self.live == 0 && !self.seeds.is_empty() {
                    self.config.probe_interval
                } else {
                    self.config.announce_interval
                };
                self.next_announce = now + interval;
            }
            if self.next_sync.is_some_and(|at| now >= at) {
                self.next_sync = Some(now + self.config.sync_interval);
                self.sync();
            }
        }
        if let Some(at) = self.next_gossip {
            if now >= at {
                self.next_gossip = Some(now + self.config.gossip_interval);
                self.gossip();
            }
        }
        self.forget_gone(now);
    }

    // ---- outputs ----

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<N>> {
        self.transmits.pop_front()
    }

    /// The next membership change.
    pub fn poll_event(&mut self) -> Option<Event<N>> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        };
        consider(self.next_gossip);
        consider(self.suspicions.first().map(|(t, _)| *t));
        consider(self.relays.values().map(|r| r.deadline).min());
        consider(
            self.gone
                .first()
                .map(|(t, _)| *t + self.config.down_retention),
        );
        if !self.left {
            if self.probe.is_none() {
                consider(Some(self.next_probe));
            }
            consider(Some(self.next_announce));
            consider(self.next_sync);
            if let Some(p) = &self.probe {
                if !p.indirect_sent {
                    consider(Some(p.ack_deadline));
                }
                consider(Some(p.period_end));
            }
        }
        at
    }

    // ---- failure detection (SWIM §3.1) ----

    fn advance_probe(&mut self, now: Instant) {
        if let Some(p) = &mut self.probe {
            if !p.indirect_sent && now >= p.ack_deadline {
                // Called late (this node was frozen or starved): the relays still get
                // their whole window, or the probe would fail the instant the ping-reqs
                // leave, accusing a member for time this node lost (Lifeguard's slow
                // member). Being this late is itself a sign of local trouble (§4.1).
                let window = self
                    .awareness
                    .scale(self.config.probe_interval - self.config.probe_timeout);
                if now >= p.period_end {
                    p.period_end = now + window;
                    p.extended = true;
                    self.next_probe = self.next_probe.max(p.period_end);
                    self.awareness.apply(1);
                }
                self.send_ping_reqs();
            } else if !p.extended && now >= p.period_end + self.config.probe_timeout {
                // The period ended long ago: acks may be waiting, unread, in this
                // node's receive queue. Read them before blaming the target.
                p.period_end = now + self.config.probe_timeout;
                p.extended = true;
                self.next_probe = self.next_probe.max(p.period_end);
                self.awareness.apply(1);
            }
        }
        if self.probe.as_ref().is_some_and(|p| now >= p.period_end) {
            let p = self.probe.take().expect("checked above");
            self.probe_failed(p, now);
        }
        if self.probe.is_none() && now >= self.next_probe {
            self.start_probe(now);
        }
    }

    fn start_probe(&mut self, now: Instant) {
        let period = self.awareness.scale(self.config.probe_interval);
        self.next_probe = now + period;
        let Some(target) = self.order.next(&mut self.rng) else {
            return;
        };
        self.seq = self.seq.wrapping_add(1);
        self.probe = Some(Probe {
            seq: self.seq,
            target: target.clone(),
            ack_deadline: now + self.awareness.scale(self.config.probe_timeout),
            period_end: now + period,
            indirect_sent: false,
            extended: false,
            expected_nacks: 0,
            nacks: 0,
        });
        self.send(
            target.clone(),
            Message::Ping {
                seq: self.seq,
                target,
            },
        );
    }

    fn send_ping_reqs(&mut self) {
        let Some(p) = &mut self.probe else { return };
        p.indirect_sent = true;
        let (seq, target) = (p.seq, p.target.clone());
        // Relays must be members we believe alive (memberlist's rule): a suspect relay
        // is likely to fail, and its missing nack would count against our own health.
        let members = &self.members;
        let relays = self.order.sample(
            self.config.indirect_checks,
            |n| *n != target && members.get(n).is_some_and(|m| m.state == State::Alive),
            &mut self.rng,
        );
        if let Some(p) = &mut self.probe {
            p.expected_nacks = relays.len() as u32;
        }
        for relay in relays {
            self.send(
                relay,
                Message::PingReq {
                    seq,
                    target: target.clone(),
                },
            );
        }
    }

    fn on_ack(&mut self, seq: u32) {
        if let Some(p) = &self.probe {
            if p.seq == seq {
                // Lifeguard §4.1: a timely direct ack is evidence of our own health.
                if !p.indirect_sent {
                    self.awareness.apply(-1);
                }
                self.probe = None;
                return;
            }
        }
        if let Some(relay) = self.relays.remove(&seq) {
            self.send(
                relay.requester,
                Message::Ack {
                    seq: relay.their_seq,
                },
            );
            return;
        }
        self.counters.unmatched_acks += 1;
    }

    /// The probe period ended without an ack (SWIM §3.1): suspect the target. Lifeguard
    /// §4.1: every nack we should have heard and did not counts against our own health,
    /// as does a failed probe with no relays to ask.
    fn probe_failed(&mut self, p: Probe<N>, now: Instant) {
        let missed = if p.expected_nacks > 0 {
            i64::from(p.expected_nacks.saturating_sub(p.nacks))
        } else {
            1
        };
        self.awareness.apply(missed);
        // Already suspect: our own failed probe is an independent confirmation
        // (Lifeguard §4.3), applied as one through the same path as received news.
        if let Some(m) = self.members.get(&p.target) {
            if m.state.is_live() {
                let update = Update::Suspect {
                    node: p.target,
                    incarnation: m.incarnation,
                    by: self.me.clone(),
                };
                self.apply(update, now);
            }
        }
    }

    fn relay_timeout(&self) -> std::time::Duration {
        let window = self
            .awareness
            .scale(self.config.probe_interval - self.config.probe_timeout);
        window.mul_f64(0.8)
    }

    fn expire_relays(&mut self, now: Instant) {
        while let Some((&seq, relay)) = self.relays.iter().find(|(_, r)| now >= r.deadline) {
            let relay = relay.clone();
            self.relays.remove(&seq);
            // Lifeguard §4.2: tell the requester we tried, so it does not blame itself.
            if self.config.lifeguard {
                self.send(
                    relay.requester,
                    Message::Nack {
                        seq: relay.their_seq,
                    },
                );
            }
        }
    }

    // ---- suspicion (SWIM §4.2, Lifeguard §4.3) ----

    fn expire_suspicions(&mut self, now: Instant) {
        while let Some((at, node)) = self.suspicions.first().cloned() {
            if now < at {
                break;
            }
            self.suspicions.pop_first();
            let Some(m) = self.members.get(&node) else {
                continue;
            };
            if m.state != State::Suspect {
                continue;
            }
            let update = Update::Down {
                node,
                incarnation: m.incarnation,
                by: self.me.clone(),
            };
            self.apply(update, now);
        }
    }

    fn start_suspicion(&mut self, node: &N, by: N, now: Instant) -> Suspicion<N> {
        let n = self.live + 1;
        let min = self.config.min_suspicion_timeout(n);
        let (max, k) = if self.config.lifeguard {
            let k = self.config.suspicion_mult.saturating_sub(2);
            let k = if (n as u64) < u64::from(k) + 2 { 0 } else { k };
            (
                min.saturating_mul(self.config.suspicion_max_timeout_mult),
                k,
            )
        } else {
            (min, 0)
        };
        let s = Suspicion::new(by, now, min, max, k);
        self.suspicions.insert((s.deadline(), node.clone()));
        s
    }

    // ---- membership (SWIM §4.2) ----

    fn self_alive(&self) -> Update<N> {
        Update::Alive {
            node: self.me.clone(),
            incarnation: self.incarnation,
        }
    }

    /// Someone claims this node is suspect, down or gone at `incarnation`: refute with a
    /// higher one (SWIM §4.2). Lifeguard §4.1: being suspected hints that we are the
    /// slow one.
    fn refute(&mut self, incarnation: u32) {
        if self.left || incarnation < self.incarnation {
            self.counters.stale_updates += 1;
            return;
        }
        self.incarnation = incarnation.saturating_add(1);
        self.counters.refutations += 1;
        self.awareness.apply(1);
        self.broadcasts.push(self.self_alive());
    }

    /// Applies one piece of news, wherever it came from (piggybacked, a packet's header,
    /// a whole view, our own probe), and passes on whatever changed our view. News of new
    /// members learned from a whole view is passed on too, as memberlist's push-pull
    /// merge does: it is what makes a burst of joins reach everyone.
    fn apply(&mut self, update: Update<N>, now: Instant) {
        if *update.node() == self.me {
            match update {
                Update::Alive { incarnation, .. } => {
                    // An older life of ours at a higher incarnation: outbid it.
                    if incarnation > self.incarnation {
                        self.refute(incarnation);
                    }
                }
                Update::Suspect { incarnation, .. }
                | Update::Down { incarnation, .. }
                | Update::Left { incarnation, .. } => self.refute(incarnation),
            }
            return;
        }
        let (claim, incarnation) = match &update {
            Update::Alive { incarnation, .. } => (Claim::Alive, *incarnation),
            Update::Suspect { incarnation, .. } => (Claim::Suspect, *incarnation),
            Update::Down { incarnation, .. } => (Claim::Down, *incarnation),
            Update::Left { incarnation, .. } => (Claim::Left, *incarnation),
        };
        let node = update.node().clone();
        let Some(member) = self.members.get(&node) else {
            // Only an alive member can be new; news of the suspicion or death of a
            // stranger is ignored, as in memberlist.
            if claim == Claim::Alive {
                self.insert_alive(node.clone(), incarnation, now);
                self.events.push_back(Event::Up(node));
                self.broadcasts.push(update);
            } else {
                self.counters.stale_updates += 1;
            }
            return;
        };
        let (state, held) = (member.state, member.incarnation);
        if !overrides(claim, incarnation, state, held) {
            // The same incarnation suspected again by someone else: a confirmation.
            if let (Update::Suspect { by, .. }, State::Suspect) = (&update, state) {
                if incarnation == held {
                    self.confirm_suspicion(&node, by.clone(), &update);
                    return;
                }
            }
            self.counters.stale_updates += 1;
            return;
        }
        match &update {
            Update::Alive { .. } => {
                let was = state;
                self.clear_suspicion(&node);
                let m = self.members.get_mut(&node).expect("present");
                m.incarnation = incarnation;
                m.state = State::Alive;
                m.by = None;
                match was {
                    State::Alive => {}
                    State::Suspect => {
                        m.since = now;
                        self.events.push_back(Event::Up(node.clone()));
                    }
                    State::Down | State::Left => {
                        let gone_since = std::mem::replace(&mut m.since, now);
                        self.gone.remove(&(gone_since, node.clone()));
                        self.live += 1;
                        self.order.insert(node.clone(), &mut self.rng);
                        self.events.push_back(Event::Rejoined(node.clone()));
                    }
                }
            }
            Update::Suspect { by, .. } => {
                self.clear_suspicion(&node);
                let suspicion = self.start_suspicion(&node, by.clone(), now);
                let m = self.members.get_mut(&node).expect("present");
                m.incarnation = incarnation;
                m.by = Some(by.clone());
                m.suspicion = Some(suspicion);
                if state == State::Alive {
                    m.state = State::Suspect;
                    m.since = now;
                    self.events.push_back(Event::Suspect {
                        node: node.clone(),
                        by: by.clone(),
                    });
                }
            }
            Update::Down { by, .. } => {
                self.mark_gone(&node, State::Down, incarnation, Some(by.clone()), now);
                self.events.push_back(Event::Down {
                    node: node.clone(),
                    by: by.clone(),
                });
            }
            Update::Left { .. } => {
                self.mark_gone(&node, State::Left, incarnation, None, now);
                self.events.push_back(Event::Left(node.clone()));
            }
        }
        self.broadcasts.push(update);
    }

    fn confirm_suspicion(&mut self, node: &N, by: N, update: &Update<N>) {
        let Some(m) = self.members.get_mut(node) else {
            return;
        };
        let Some(s) = &mut m.suspicion else { return };
        let before = s.deadline();
        if s.confirm(by) {
            let after = s.deadline();
            self.suspicions.remove(&(before, node.clone()));
            self.suspicions.insert((after, node.clone()));
            // Pass the confirmation on, so others can count it too (memberlist).
            self.broadcasts.push(update.clone());
        }
    }

    fn clear_suspicion(&mut self, node: &N) {
        if let Some(m) = self.members.get_mut(node) {
            if let Some(s) = m.suspicion.take() {
                self.suspicions.remove(&(s.deadline(), node.clone()));
            }
        }
    }

    fn insert_alive(&mut self, node: N, incarnation: u32, now: Instant) {
        self.members.insert(
            node.clone(),
            Member {
                state: State::Alive,
                incarnation,
                by: None,
                suspicion: None,
                since: now,
            },
        );
        self.live += 1;
        self.order.insert(node, &mut self.rng);
    }

    fn mark_gone(&mut self, node: &N, state: State, incarnation: u32, by: Option<N>, now: Instant) {
        self.clear_suspicion(node);
        let m = self.members.get_mut(node).expect("present");
        let was_live = m.state.is_live();
        if !was_live {
            self.gone.remove(&(m.since, node.clone()));
        }
        m.state = state;
        m.incarnation = incarnation;
        m.by = by;
        m.since = now;
        self.gone.insert((now, node.clone()));
        if was_live {
            self.live -= 1;
            self.order.remove(node);
            if self.probe.as_ref().is_some_and(|p| p.target == *node) {
                self.probe = None;
            }
        }
        while self.gone.len() > self.config.max_down_members {
            let (_, oldest) = self.gone.pop_first().expect("non-empty");
            self.members.remove(&oldest);
            self.counters.forgotten += 1;
        }
    }

    fn forget_gone(&mut self, now: Instant) {
        while let Some((since, _)) = self.gone.first() {
            if now.saturating_duration_since(*since) < self.config.down_retention {
                break;
            }
            let (_, node) = self.gone.pop_first().expect("non-empty");
            self.members.remove(&node);
            self.counters.forgotten += 1;
        }
    }

    // ---- dissemination (SWIM §4.1) and announce ----

    fn gossip(&mut self) {
        if self.broadcasts.is_empty() {
            return;
        }
        for to in self
            .order
            .sample(self.config.gossip_nodes, |_| true, &mut self.rng)
        {
            if self.broadcasts.is_empty() {
                break;
            }
            self.send(to, Message::Gossip);
        }
    }

    /// Announces this node to one member believed down: a short message (our own entry
    /// and what we believe of it) that lets a member wrongly declared down — typically
    /// on the other side of a healed partition — learn it and refute, and answer with its
    /// view. With nobody alive, announces the whole view to the seeds as well.
    fn announce(&mut self) {
        let down: Vec<&N> = self
            .members
            .iter()
            .filter(|(_, m)| m.state == State::Down)
            .map(|(n, _)| n)
            .collect();
        if !down.is_empty() {
            let to = down[self.rng.usize(..down.len())].clone();
            let entry = self.entry(&to).expect("a remembered member");
            self.send_updates(to, true, vec![self.self_alive(), entry]);
        }
        if self.live == 0 {
            for seed in self.seeds.clone() {
                self.send_view(seed, true);
            }
        }
    }

    /// Anti-entropy (memberlist's push-pull): exchange whole views with one live member,
    /// repairing whatever dissemination missed (a lost update, a refutation that ran out
    /// of retransmissions before reaching us).
    fn sync(&mut self) {
        if let Some(to) = self.order.sample(1, |_| true, &mut self.rng).pop() {
            self.send_view(to, true);
        }
    }

    /// What this node holds about `node`, as an update.
    fn entry(&self, node: &N) -> Option<Update<N>> {
        let m = self.members.get(node)?;
        let (node, incarnation) = (node.clone(), m.incarnation);
        let by = || m.by.clone().unwrap_or_else(|| self.me.clone());
        Some(match m.state {
            State::Alive => Update::Alive { node, incarnation },
            State::Suspect => Update::Suspect {
                node,
                incarnation,
                by: by(),
            },
            State::Down => Update::Down {
                node,
                incarnation,
                by: by(),
            },
            State::Left => Update::Left { node, incarnation },
        })
    }

    /// Sends this node's whole view to `to`: as an `Announce` (asking for the receiver's
    /// view back) or as the `Feed` that answers one.
    fn send_view(&mut self, to: N, announce: bool) {
        let mut updates = vec![self.self_alive()];
        updates.extend(self.members.keys().filter_map(|n| self.entry(n)));
        self.send_updates(to, announce, updates);
    }

    /// Sends `updates` as `Announce` or `Feed` messages, split into packets of at most
    /// `max_packet_size` bytes. An update too long for any packet (possible only with
    /// ids longer than their declared `MAX_ENCODED_LEN`) is left out and counted.
    fn send_updates(&mut self, to: N, announce: bool, updates: Vec<Update<N>>) {
        let message = |more| {
            if announce {
                Message::Announce { more }
            } else {
                Message::Feed { more }
            }
        };
        let header = |this: &Self, more| {
            let mut out = Vec::new();
            encode_message(
                &mut out,
                this.config.cluster_id,
                (&this.me, this.incarnation),
                &message(more),
            );
            out
        };
        // `more` is one byte either way: every chunk's header has this length.
        let header_len = header(self, false).len();
        let Some(room) = self
            .config
            .max_packet_size
            .checked_sub(header_len + UPDATE_COUNT_LEN)
        else {
            self.counters.oversized_packets += 1;
            return;
        };
        let mut chunks: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut chunk = Vec::new();
        let mut count = 0;
        let mut one = Vec::new();
        for u in &updates {
            one.clear();
            u.encode(&mut one);
            if one.len() > room {
                self.counters.oversized_updates += 1;
                continue;
            }
            if chunk.len() + one.len() > room {
                chunks.push((count, std::mem::take(&mut chunk)));
                count = 0;
            }
            chunk.extend_from_slice(&one);
            count += 1;
        }
        chunks.push((count, chunk));
        let last = chunks.len() - 1;
        for (i, (count, encoded)) in chunks.into_iter().enumerate() {
            let mut out = header(self, i < last);
            out.reserve(UPDATE_COUNT_LEN + encoded.len());
            finish_updates(&mut out, count, &encoded);
            debug_assert!(out.len() <= self.config.max_packet_size);
            self.push_transmit(to.clone(), out);
        }
    }

    /// Encodes `message` to `to` with as many pending updates as fit. Lifeguard §4.2
    /// (buddy system): a packet to a member we suspect carries that suspicion first, so
    /// the suspect can refute it at once.
    fn send(&mut self, to: N, message: Message<N>) {
        let mut out = Vec::with_capacity(128);
        encode_message(
            &mut out,
            self.config.cluster_id,
            (&self.me, self.incarnation),
            &message,
        );
        // Even an update count of zero (one byte) does not fit: possible only with ids
        // longer than their declared `MAX_ENCODED_LEN`. Send nothing rather than too much.
        if out.len() >= self.config.max_packet_size {
            self.counters.oversized_packets += 1;
            return;
        }
        // The update count is a varint of at most UPDATE_COUNT_LEN bytes; with less room
        // than that no update fits and the count is the single byte 0.
        let room = self
            .config
            .max_packet_size
            .saturating_sub(out.len() + UPDATE_COUNT_LEN);
        let buddy = if self.config.lifeguard {
            self.members.get(&to).and_then(|m| {
                (m.state == State::Suspect).then(|| Update::Suspect {
                    node: to.clone(),
                    incarnation: m.incarnation,
                    by: m.by.clone().unwrap_or_else(|| self.me.clone()),
                })
            })
        } else {
            None
        };
        let limit = self.config.retransmit_limit(self.live + 1);
        let mut encoded = Vec::new();
        let count = self
            .broadcasts
            .fill(&mut encoded, room, limit, buddy.as_ref());
        finish_updates(&mut out, count, &encoded);
        debug_assert!(out.len() <= self.config.max_packet_size);
        self.push_transmit(to, out);
    }

    fn push_transmit(&mut self, to: N, payload: Vec<u8>) {
        self.counters.packets_sent += 1;
        self.counters.bytes_sent += payload.len() as u64;
        self.transmits.push_back(Transmit { to, payload });
    }
}
