//! The simulated network: sending what a replica queued, loss, duplication, delays,
//! and delivery.

use super::config::to_ms;
use super::{KEPT_REJECTIONS, Sim};
use crate::codec::{Decode, Encode};
use crate::lattice::{Authored, Lattice};

/// A message on the wire.
#[derive(Debug, Clone)]
pub(super) struct Packet {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) bytes: Vec<u8>,
}

impl<S> Sim<S>
where
    S: Lattice + Authored<u64> + PartialEq + Encode + Decode,
{
    /// Sends what `i` queued (its record is written); with random faults on, it may
    /// crash part way.
    pub(super) fn drain(&mut self, i: usize) {
        loop {
            let Some(replica) = self.nodes[i].replica.as_mut() else {
                return;
            };
            let Some(out) = replica.poll_transmit() else {
                return;
            };
            if self.random_faults && self.rng.f64() < self.config.crash_while_sending {
                self.crash(i);
                return;
            }
            // Replica ids are the indices `Sim::new` gave them.
            let to = usize::try_from(out.to).unwrap_or(usize::MAX);
            let packet = Packet {
                from: i,
                to,
                bytes: out.message.to_bytes(),
            };
            self.stats.sent += 1;
            self.stats.bytes += packet.bytes.len() as u64;
            self.history.push_back(packet.clone());
            if self.history.len() > self.config.replay_window {
                self.history.pop_front();
            }
            self.transmit(packet, false);
        }
    }

    /// Puts a packet on the wire: loss, cut links, duplication, delays.
    pub(super) fn transmit(&mut self, packet: Packet, replayed: bool) {
        if self.cut.contains(&(packet.from, packet.to)) || self.rng.f64() < self.config.loss {
            self.stats.lost += 1;
            return;
        }
        let copies = if !replayed && self.rng.f64() < self.config.duplicate {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = self.config.latency;
            let mut delay = self.rng.u64(to_ms(lo)..=to_ms(hi));
            if self.rng.f64() < self.config.long_delay {
                delay += self.rng.u64(0..=to_ms(self.config.long_delay_max));
            }
            self.sent_order += 1;
            self.in_flight
                .insert((self.now_ms + delay, self.sent_order), packet.clone());
        }
    }

    pub(super) fn deliver_due(&mut self) {
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now_ms {
                break;
            }
            let packet = entry.remove();
            let to = packet.to;
            let up = self.nodes.get(to).is_some_and(|n| n.replica.is_some());
            if !up || self.cut.contains(&(packet.from, to)) {
                self.stats.lost += 1;
                continue;
            }
            self.stats.delivered += 1;
            let replica = self.nodes[to].replica.as_mut().expect("checked up above");
            if let Err(e) = replica.handle_bytes(&(packet.from as u64), &packet.bytes) {
                self.stats.rejected += 1;
                if self.rejections.len() < KEPT_REJECTIONS {
                    self.rejections.push(format!(
                        "{} ms: replica {to} refused a message from {}: {e}",
                        self.now_ms, packet.from
                    ));
                }
            }
            if self.persist_or_crash(to) {
                self.drain(to);
            }
        }
    }
}
