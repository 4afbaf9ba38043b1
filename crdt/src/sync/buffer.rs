//! The delta buffer `D` and the acknowledgements `A` of Algorithm 2: buffering deltas,
//! shipping delta-intervals (or the whole state) to peers, and garbage collection.

use super::{Buffered, Outgoing, Replica, SyncMessage};
use crate::id::NodeId;
use crate::lattice::{Authored, Lattice};

impl<N: NodeId, S: Lattice + Authored<N> + PartialEq> Replica<N, S> {
    /// Buffers a local delta. Local deltas made since the last ship are joined into one
    /// buffer slot: no message has covered that slot yet, so no acknowledgement can
    /// claim it, and a burst of a thousand increments takes one slot, not a thousand.
    pub(super) fn buffer_local(&mut self, delta: S) {
        if let Some((&last, slot)) = self.buffer.last_key_value() {
            if last >= self.shipped && slot.origin.is_none() {
                self.buffer
                    .get_mut(&last)
                    .expect("just seen")
                    .delta
                    .join(&delta);
                return;
            }
        }
        self.buffer_delta(None, delta);
    }

    /// Starts syncing with `peer`, from scratch: it gets the buffered deltas, or the
    /// whole state if some were already dropped. Adding a known peer does nothing.
    pub fn add_peer(&mut self, peer: N) {
        if peer != self.me {
            self.acked.entry(peer).or_insert(0);
        }
    }

    /// Stops syncing with `peer`. A peer that is gone for good must be removed: the
    /// deltas it never acknowledges are kept until it is (or until the buffer bound).
    pub fn remove_peer(&mut self, peer: &N) {
        self.acked.remove(peer);
        self.collect_garbage();
    }

    /// Ships to every peer that lacks something (Algorithm 2's periodic ship, to all
    /// neighbours at once).
    pub fn ship(&mut self) {
        let peers: Vec<N> = self.acked.keys().cloned().collect();
        for peer in peers {
            self.ship_to(&peer);
        }
    }

    /// Ships to one peer: nothing if it acknowledged everything; the join of the
    /// deltas it has not acknowledged, leaving out those it sent us; or the whole state
    /// if the buffer no longer goes back far enough.
    pub fn ship_to(&mut self, peer: &N) {
        let Some(&acked) = self.acked.get(peer) else {
            return;
        };
        if acked >= self.seq {
            return;
        }
        // Every slot below `seq` may now be covered by a message in flight.
        self.shipped = self.seq;
        let oldest = self.buffer.keys().next().copied().unwrap_or(self.seq);
        if oldest > acked {
            self.counters.states_sent += 1;
            self.outbox.push_back(Outgoing {
                to: peer.clone(),
                message: SyncMessage::State {
                    incarnation: self.incarnation,
                    seq: self.seq,
                    state: self.state.clone(),
                },
            });
            return;
        }
        let mut interval: Option<S> = None;
        for b in self.buffer.range(acked..).map(|(_, b)| b) {
            if b.origin.as_ref() == Some(peer) {
                continue;
            }
            match &mut interval {
                None => interval = Some(b.delta.clone()),
                Some(d) => d.join(&b.delta),
            }
        }
        match interval {
            Some(delta) => {
                self.counters.deltas_sent += 1;
                self.outbox.push_back(Outgoing {
                    to: peer.clone(),
                    message: SyncMessage::Delta {
                        incarnation: self.incarnation,
                        seq: self.seq,
                        delta,
                    },
                });
            }
            None => {
                // Everything it lacks came from it: it has it already.
                self.acked.insert(peer.clone(), self.seq);
                self.collect_garbage();
            }
        }
    }

    pub(super) fn buffer_delta(&mut self, origin: Option<N>, delta: S) {
        self.buffer.insert(self.seq, Buffered { origin, delta });
        self.seq += 1;
        while self.buffer.len() > self.config.max_buffered_deltas {
            let (dropped, _) = self.buffer.pop_first().expect("non-empty");
            if self.acked.values().any(|&a| a <= dropped) {
                self.counters.evicted += 1;
            }
        }
        self.collect_garbage();
    }

    /// Drops the deltas every peer has acknowledged (Algorithm 2's periodic GC).
    pub(super) fn collect_garbage(&mut self) {
        let low = self.acked.values().copied().min().unwrap_or(self.seq);
        while let Some((&first, _)) = self.buffer.first_key_value() {
            if first >= low {
                break;
            }
            self.buffer.pop_first();
        }
    }
}
