//! SWIM's failure detector (§3.1): one probe per protocol period, a direct ping, then
//! `ping-req` through `k` relays, with Lifeguard's local health awareness (§4.1) and
//! nacks (§4.2). The probe order and the probe in flight are in `probe`.

use std::time::Instant;

use super::Swim;
use super::id::NodeId;
use super::member::State;
use super::probe::Probe;
use super::wire::{Message, Update};

impl<N: NodeId> Swim<N> {
    pub(super) fn advance_probe(&mut self, now: Instant) {
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

    pub(super) fn on_ack(&mut self, seq: u32) {
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

    pub(super) fn relay_timeout(&self) -> std::time::Duration {
        let window = self
            .awareness
            .scale(self.config.probe_interval - self.config.probe_timeout);
        window.mul_f64(0.8)
    }

    pub(super) fn expire_relays(&mut self, now: Instant) {
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
}
