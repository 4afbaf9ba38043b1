//! Packet assembly: every message carries as many pending updates as fit (SWIM §4.1),
//! a suspect's own suspicion first (Lifeguard §4.2); whole views are split into packets
//! of at most `max_packet_size` bytes; memberlist's periodic gossip.

use super::config::UPDATE_COUNT_LEN;
use super::id::NodeId;
use super::member::State;
use super::wire::{Message, Update, encode_message, finish_updates};
use super::{Swim, Transmit};

impl<N: NodeId> Swim<N> {
    // ---- dissemination (SWIM §4.1) ----

    pub(super) fn gossip(&mut self) {
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

    /// Sends `updates` as `Announce` or `Feed` messages, split into packets of at most
    /// `max_packet_size` bytes. An update too long for any packet (possible only with
    /// ids longer than their declared `MAX_ENCODED_LEN`) is left out and counted.
    pub(super) fn send_updates(&mut self, to: N, announce: bool, updates: Vec<Update<N>>) {
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
    pub(super) fn send(&mut self, to: N, message: Message<N>) {
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
