//! Finding the cluster and leaving it: join through seeds, graceful leave, periodic
//! announce to members believed down (a healed partition, a node that lost every peer)
//! and anti-entropy, the whole-view exchange of memberlist's push-pull.

use std::time::Instant;

use super::Swim;
use super::id::NodeId;
use super::member::State;
use super::wire::{Message, Update};

impl<N: NodeId> Swim<N> {
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
    /// [`PacketError::Left`](super::PacketError::Left).
    pub fn leave(&mut self) {
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
    }

    /// Announces this node to one member believed down: a short message (our own entry
    /// and what we believe of it) that lets a member wrongly declared down — typically
    /// on the other side of a healed partition — learn it and refute, and answer with its
    /// view. With nobody alive, announces the whole view to the seeds as well.
    pub(super) fn announce(&mut self) {
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
    pub(super) fn sync(&mut self) {
        if let Some(to) = self.order.sample(1, |_| true, &mut self.rng).pop() {
            self.send_view(to, true);
        }
    }

    /// Sends this node's whole view to `to`: as an `Announce` (asking for the receiver's
    /// view back) or as the `Feed` that answers one.
    pub(super) fn send_view(&mut self, to: N, announce: bool) {
        let mut updates = vec![self.self_alive()];
        updates.extend(self.members.keys().filter_map(|n| self.entry(n)));
        self.send_updates(to, announce, updates);
    }
}
