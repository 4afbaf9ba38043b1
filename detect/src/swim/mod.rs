//! SWIM membership (Das, Gupta, Motivala 2002) with Lifeguard (Dadgar et al. 2017). The
//! protocol is documented on [`Swim`]; this file holds its state, inputs and outputs, and
//! one sibling file per concept (probing, membership news, dissemination, join, packets,
//! the wire format, ids).

mod config;
mod detector;
mod dissemination;
mod id;
mod join;
mod lifeguard;
mod member;
mod membership;
mod probe;
mod transmit;
mod wire;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

pub use config::{SwimConfig, SwimConfigError};
pub use id::{IdCodec, MAX_ID_LEN, NodeId};
pub use member::State;
pub use wire::{DecodeError, PacketError, inspect_packet};

use dissemination::Dissemination;
use lifeguard::Awareness;
use member::Member;
use probe::{Probe, ProbeOrder, Relay};
use wire::{Message, Update, decode_packet_into};

/// A packet to send: `payload` goes to `to` over whatever datagram transport the
/// caller uses. Loss, duplication and reordering are all tolerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<N> {
    /// Destination member.
    pub to: N,
    /// The encoded packet, at most [`SwimConfig::max_packet_size`] bytes.
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

/// What happened to received packets and updates; counted, never panicked on. Every
/// field only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SwimCounters {
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
    /// [`SwimConfig::max_packet_size`]. Only an id longer than its type's
    /// [`IdCodec::MAX_ENCODED_LEN`](crate::IdCodec::MAX_ENCODED_LEN) (a `decode` that accepts more than it declares) can
    /// cause it: [`SwimConfig::validate_for`] sizes the packet for the longest ids.
    pub oversized_packets: u64,
    /// Updates left out of a whole-view exchange because, alone, they would not fit a
    /// packet; the same cause as `oversized_packets`.
    pub oversized_updates: u64,
}

/// A SWIM member (Das, Gupta, Motivala 2002) with Lifeguard (Dadgar et al. 2017): the
/// local, sans-IO state machine of one node.
///
/// It never touches a socket or a clock. The caller feeds it packets
/// ([`handle_packet`](Self::handle_packet)) and timer expiries
/// ([`handle_timeout`](Self::handle_timeout)), each with the current time, and drains
/// what it wants done: packets to send ([`poll_transmit`](Self::poll_transmit)),
/// membership changes ([`poll_event`](Self::poll_event)) and when to call back
/// ([`poll_timeout`](Self::poll_timeout)).
///
/// What it implements, by section:
/// - failure detection: one randomized round-robin probe per protocol period, a direct
///   ping with a timeout, then `ping-req` through `k` members (SWIM §3.1, §4.3);
/// - suspicion with incarnation numbers and refutation (SWIM §4.2);
/// - infection-style dissemination piggybacked on every packet, each update sent at most
///   λ·log(n) times (SWIM §4.1), plus memberlist's periodic gossip;
/// - join through seeds, graceful leave, periodic announce to members believed down (so
///   the sides of a healed partition, and a node that lost every peer, find each other
///   again), periodic anti-entropy (a whole-view exchange with one live member, as
///   memberlist's push-pull) and bounded memory for down members;
/// - Lifeguard: local health awareness that stretches this node's own timeouts when it
///   misses acks and nacks (§4.1), the buddy system that tells a suspect first (§4.2) and
///   suspicion timeouts that shrink with independent confirmations (§4.3).
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
    config: SwimConfig,
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
    counters: SwimCounters,
    /// The update buffer packets are decoded into, reused.
    scratch: Vec<Update<N>>,
}

// The rest of `Swim` is in one `impl` block per concept: `join` (the commands, announce,
// anti-entropy), `detector` (probing), `membership` (applying news, suspicion) and
// `transmit` (packet assembly).
impl<N: NodeId> Swim<N> {
    /// A node that knows nobody yet. `rng_seed` drives every random choice, so a run
    /// is reproducible from its seed; give each node a different one.
    ///
    /// # Errors
    ///
    /// A field out of its limits ([`SwimConfig::validate_for`] with this id type); nothing
    /// was created.
    pub fn new(
        me: N,
        config: SwimConfig,
        rng_seed: u64,
        now: Instant,
    ) -> Result<Self, SwimConfigError> {
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
            counters: SwimCounters::default(),
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
    pub fn config(&self) -> &SwimConfig {
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
    pub fn counters(&self) -> &SwimCounters {
        &self.counters
    }

    /// Whether [`leave`](Self::leave) was called.
    pub fn has_left(&self) -> bool {
        self.left
    }

    // ---- inputs ----

    /// Handles one received packet.
    ///
    /// # Errors
    ///
    /// The packet was dropped and counted in [`counters`](Self::counters); nothing else
    /// changed (see [`PacketError`]'s variants).
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
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit<N>> {
        self.transmits.pop_front()
    }

    /// The next membership change.
    #[must_use]
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
}
