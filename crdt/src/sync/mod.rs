//! The anti-entropy protocol: [`Replica`] (this file: construction, local updates,
//! received messages), its messages and their wire form (`message`), the delta buffer
//! and shipping to peers (`buffer`), configuration and counters (`config`), errors
//! (`error`), and the `crdts` crate's types as lattices (`cvrdt`, feature `crdts`).

use std::collections::{BTreeMap, VecDeque};

use crate::codec::Decode;
use crate::id::NodeId;
use crate::lattice::{Authored, Lattice};

mod buffer;
mod config;
#[cfg(feature = "crdts")]
mod cvrdt;
mod error;
mod message;
#[cfg(test)]
mod tests;

pub use config::{ConfigError, Counters, SyncConfig};
#[cfg(feature = "crdts")]
pub use cvrdt::Cvrdt;
pub use error::{RestoreError, SyncError};
pub use message::{Outgoing, SyncMessage};

#[derive(Debug, Clone)]
struct Buffered<N, S> {
    /// The peer this delta came from; `None` for our own mutations.
    origin: Option<N>,
    delta: S,
}

/// One replica of a delta-state CRDT `S`, with the anti-entropy of Algorithm 2 of
/// Almeida, Shoker and Baquero, "Delta state replicated data types" (JPDC 2018),
/// "δ-CRDT anti-entropy algorithm ensuring causal consistency", as a sans-IO state
/// machine.
///
/// A [`Replica`] holds the state `X`, a sequence counter `c`, a buffer `D` of the
/// deltas it applied (its own mutations and what peers sent it), and for every peer the
/// highest sequence number that peer acknowledged, `A(j)`. Shipping sends each peer the
/// join of the deltas it has not acknowledged (a *delta-interval*), or the whole state
/// when the deltas it lacks were already dropped from the buffer. A receiver joins a
/// delta-interval only when it brings something new (`d ⋢ X`), buffers it for its own
/// peers, and acknowledges it. Deltas every peer has acknowledged are garbage
/// collected. Deltas are never sent back to the peer they came from (the paper's
/// "avoid back-propagation" refinement), and the buffer has a size bound past which the
/// oldest deltas go and lagging peers get the full state instead.
///
/// Delivery may lose, duplicate and reorder messages: a lost delta-interval is shipped
/// again (the peer's ack did not advance), a duplicate is dropped by `d ⋢ X` and
/// acknowledged again, and an old ack never moves `A(j)` backwards.
///
/// The protocol is generic over any [`Lattice`] that is also [`Authored`]: this
/// crate's types, and the `crdts` crate's state-based types through `Cvrdt` (feature
/// `crdts`).
///
/// # Persistence and restart
///
/// Algorithm 2 keeps `X` and `c` durable and `D` and `A` volatile. Here the durable
/// record is `X` and an *incarnation number* instead of `c`: sequence numbers restart
/// with every incarnation, every message carries its sender's incarnation, and an ack
/// names the incarnation it acknowledges, so an ack sent to an earlier life of a
/// replica can never vouch for a delta of the current one (it is counted in
/// [`Counters::stale_acks`] and ignored). The application:
///
/// 1. MUST persist the record, [`Self::state`] and [`Self::incarnation`], in one
///    atomic write (a torn write must read back as the previous record).
/// 2. MUST make the record durable after each change and before sending any message
///    polled after that change, acks included, and before telling a client that its
///    update is done. A change is a [`mutate`](Self::mutate) or
///    [`apply_local`](Self::apply_local) that returned a non-⊥ delta, a
///    `handle_*` that joined something, and [`Self::restore`];
///    [`Self::changes`] grows with each, so persisting whenever it differs from its
///    value at the last persist is enough. A peer thus never sees an update that a
///    crash could take back, and never gets an ack for a join that a crash could undo.
/// 3. MAY lose, in a crash, every change after the last durable record: none of it was
///    sent or confirmed to anyone.
/// 4. MUST restart a replica with [`Self::restore`], from the last durable record,
///    and add its peers again. The restored replica runs as the next incarnation,
///    which rule 2 makes durable before its first message, and sends every peer its
///    whole state first: a change persisted but not yet shipped before the crash
///    reaches the peers.
/// 5. MUST NOT restart with [`Self::new`] (incarnation 0 again: acks of the old
///    life would be taken for acks of the new one), nor from an older record than the
///    last durable one (a backup): peers may hold updates of this replica that such a
///    record lacks, and the replica refuses their states from then on as forged
///    ([`Authored`]). A replica whose disk is lost comes back under a new id.
///
/// Nothing else needs to survive: the delta buffer, the acknowledgements and the
/// sequence counter are rebuilt, at the cost of one whole state per peer. Peers need
/// no notice of a restart.
///
/// # Peer input
///
/// A message that does not decode, comes from a replica that is not a peer, or holds
/// a value [`Authored::validate_peer_join`] refuses (an update of this replica that it
/// never made, which would otherwise make its next mutation overflow a counter) is
/// dropped and counted in [`Counters::rejected`]; nothing changes and nothing
/// panics.
///
/// # The API
///
/// - Constructors: [`new`](Self::new) (first start), [`restore`](Self::restore)
///   (every restart; see [the persistence contract](Self#persistence-and-restart)).
/// - Commands: [`mutate`](Self::mutate) (apply a delta mutator), [`add_peer`](Self::add_peer),
///   [`remove_peer`](Self::remove_peer), [`ship`](Self::ship) / [`ship_to`](Self::ship_to)
///   (call on your own timer: the paper's "periodically").
/// - Inputs: [`handle_message`](Self::handle_message), [`handle_bytes`](Self::handle_bytes).
/// - Output: [`poll_transmit`](Self::poll_transmit), drained after each call, once the
///   record is durable if [`changes`](Self::changes) moved.
/// - Getters: [`state`](Self::state), [`incarnation`](Self::incarnation),
///   [`changes`](Self::changes), [`counters`](Self::counters).
#[derive(Debug, Clone)]
pub struct Replica<N: NodeId, S> {
    me: N,
    state: S,
    /// This life of the replica: 0 at [`Replica::new`], one more at each restore.
    incarnation: u64,
    /// Grows at each change of the durable record (state or incarnation).
    changes: u64,
    /// `c`: the sequence number the next buffered delta gets.
    seq: u64,
    /// `D`: buffered deltas by sequence number.
    buffer: BTreeMap<u64, Buffered<N, S>>,
    /// `A`: per peer, the sequence number it acknowledged (it has every delta below).
    acked: BTreeMap<N, u64>,
    /// `seq` at the last ship: slots from here on are in no message yet.
    shipped: u64,
    config: SyncConfig,
    outbox: VecDeque<Outgoing<N, S>>,
    counters: Counters,
}

impl<N: NodeId, S: Lattice + Authored<N> + PartialEq> Replica<N, S> {
    /// A replica named `me` that never ran before, as incarnation 0, starting from
    /// `state` (⊥, or a state to seed every peer with: it is shipped whole to each).
    ///
    /// A replica that ran before MUST come back with [`restore`](Self::restore)
    /// instead (see [the persistence contract](Self#persistence-and-restart)).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] if `config` is invalid ([`SyncConfig::validate`]); nothing
    /// is created.
    pub fn new(me: N, state: S, config: SyncConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::start(me, state, 0, config))
    }

    /// Restarts replica `me` from its last durable record: `state` and `incarnation`
    /// as [`state`](Self::state) and [`incarnation`](Self::incarnation) returned when
    /// it was written. The new replica runs as incarnation `incarnation + 1`, which the
    /// application MUST make durable (with the state) before sending any of its
    /// messages; [`changes`](Self::changes) is 1 to say so. Add the peers again. Every
    /// peer is treated as lagging: each gets the whole state at the first ship, so
    /// changes persisted but not shipped before the crash reach them; acks of the
    /// earlier incarnations are ignored.
    ///
    /// # Errors
    ///
    /// [`RestoreError::Config`] if `config` is invalid, and
    /// [`RestoreError::IncarnationExhausted`] if `incarnation` is `u64::MAX` (a
    /// corrupt record); nothing is created.
    pub fn restore(
        me: N,
        state: S,
        incarnation: u64,
        config: SyncConfig,
    ) -> Result<Self, RestoreError> {
        config.validate()?;
        let incarnation = incarnation
            .checked_add(1)
            .ok_or(RestoreError::IncarnationExhausted)?;
        let mut replica = Self::start(me, state, incarnation, config);
        replica.changes = 1;
        Ok(replica)
    }

    fn start(me: N, state: S, incarnation: u64, config: SyncConfig) -> Self {
        // Algorithm 2 keeps `c` durable, so a restarted replica has `D = {}` and
        // `A(j) = 0 < c` and ships `X` whole. Here `c` restarts with the incarnation:
        // a state that is not ⊥ counts as slot 0, which no buffer holds, so every peer
        // (acknowledging 0) gets the whole state.
        let seq = u64::from(!state.is_bottom());
        Replica {
            me,
            state,
            incarnation,
            changes: 0,
            seq,
            buffer: BTreeMap::new(),
            acked: BTreeMap::new(),
            shipped: seq,
            config,
            outbox: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// This replica's id.
    pub fn id(&self) -> &N {
        &self.me
    }

    /// The current state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// This replica's incarnation: 0 for a replica made by [`new`](Self::new), one
    /// more than the persisted one after [`restore`](Self::restore). Part of the
    /// durable record.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// How many times the durable record ([`state`](Self::state) and
    /// [`incarnation`](Self::incarnation)) has changed since this value was created.
    /// When it differs from its value at the last persist, the application MUST
    /// persist before sending what [`poll_transmit`](Self::poll_transmit) returns.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Deltas currently buffered.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The peers and the sequence number each acknowledged.
    pub fn peers(&self) -> impl Iterator<Item = (&N, u64)> + '_ {
        self.acked.iter().map(|(n, a)| (n, *a))
    }

    /// Applies a delta mutator: `f` mutates the state and returns the delta of that
    /// mutation, as every delta mutator of this crate does (`|s, me| s.increment(me, 1)`).
    /// The delta is buffered for the peers and returned.
    ///
    /// A non-⊥ delta is a change of the durable record: persist it before the next
    /// message goes out and before confirming the update to anyone.
    pub fn mutate(&mut self, f: impl FnOnce(&mut S, &N) -> S) -> S {
        let delta = f(&mut self.state, &self.me);
        if !delta.is_bottom() {
            self.changes += 1;
            self.buffer_local(delta.clone());
        }
        delta
    }

    /// Joins a delta produced elsewhere by a delta mutator on this replica's behalf and
    /// buffers it for the peers. It is trusted: no [`Authored`] check runs.
    pub fn apply_local(&mut self, delta: S) {
        if delta.is_bottom() {
            return;
        }
        self.changes += 1;
        self.state.join(&delta);
        self.buffer_local(delta);
    }

    /// Handles a decoded message from `from`. A joined state or delta is a change of
    /// the durable record ([`changes`](Self::changes)): persist it before sending the
    /// ack this queues.
    ///
    /// # Errors
    ///
    /// The message was dropped and counted; nothing changed.
    pub fn handle_message(&mut self, from: &N, message: SyncMessage<S>) -> Result<(), SyncError> {
        if !self.acked.contains_key(from) {
            self.counters.rejected += 1;
            return Err(SyncError::UnknownPeer);
        }
        match message {
            SyncMessage::Delta {
                incarnation,
                seq,
                delta: remote,
            }
            | SyncMessage::State {
                incarnation,
                seq,
                state: remote,
            } => {
                if let Err(e) = self.state.validate_peer_join(&self.me, &remote) {
                    self.counters.rejected += 1;
                    return Err(e.into());
                }
                if remote.leq(&self.state) {
                    self.counters.redundant += 1;
                } else {
                    self.state.join(&remote);
                    self.changes += 1;
                    self.counters.joined += 1;
                    if self.config.relay {
                        self.buffer_delta(Some(from.clone()), remote);
                    }
                }
                self.counters.acks_sent += 1;
                self.outbox.push_back(Outgoing {
                    to: from.clone(),
                    message: SyncMessage::Ack { incarnation, seq },
                });
            }
            SyncMessage::Ack { incarnation, seq } => {
                let acked = self.acked.get_mut(from).expect("checked above");
                // An ack of an earlier incarnation speaks of sequence numbers this one
                // reuses: it says nothing about the deltas buffered now.
                if incarnation != self.incarnation || seq <= *acked || seq > self.seq {
                    self.counters.stale_acks += 1;
                } else {
                    *acked = seq;
                    self.collect_garbage();
                }
            }
        }
        Ok(())
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Outgoing<N, S>> {
        self.outbox.pop_front()
    }
}

impl<N: NodeId, S: Lattice + Authored<N> + PartialEq + Decode> Replica<N, S> {
    /// Decodes and handles a message from `from`.
    ///
    /// # Errors
    ///
    /// The message was dropped and counted; nothing changed.
    pub fn handle_bytes(&mut self, from: &N, bytes: &[u8]) -> Result<(), SyncError> {
        match SyncMessage::<S>::from_bytes(bytes) {
            Ok(message) => self.handle_message(from, message),
            Err(e) => {
                self.counters.rejected += 1;
                Err(e.into())
            }
        }
    }
}
