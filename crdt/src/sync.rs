//! Anti-entropy for delta-state CRDTs: Algorithm 2 of Almeida, Shoker and Baquero,
//! "Delta state replicated data types" (JPDC 2018), "δ-CRDT anti-entropy algorithm
//! ensuring causal consistency", as a sans-IO state machine.
//!
//! A [`Replica`] holds the state `X`, a sequence counter `c`, a buffer `D` of the
//! deltas it applied (its own mutations and what peers sent it), and for every peer the
//! highest sequence number that peer acknowledged, `A(j)`. Shipping sends each peer the
//! join of the deltas it has not acknowledged (a *delta-interval*), or the whole state
//! when the deltas it lacks were already dropped from the buffer. A receiver joins a
//! delta-interval only when it brings something new (`d ⋢ X`), buffers it for its own
//! peers, and acknowledges it. Deltas every peer has acknowledged are garbage
//! collected. Deltas are never sent back to the peer they came from (the paper's
//! "avoid back-propagation" refinement), and the buffer has a size bound past which the
//! oldest deltas go and lagging peers get the full state instead.
//!
//! Delivery may lose, duplicate and reorder messages: a lost delta-interval is shipped
//! again (the peer's ack did not advance), a duplicate is dropped by `d ⋢ X` and
//! acknowledged again, and an old ack never moves `A(j)` backwards.
//!
//! The protocol is generic over any [`Lattice`] that is also [`Authored`]: this
//! crate's types, and the `crdts` crate's state-based types through [`Cvrdt`] (feature
//! `crdts`).
//!
//! # Persistence and restart
//!
//! Algorithm 2 keeps `X` and `c` durable and `D` and `A` volatile. Here the durable
//! record is `X` and an *incarnation number* instead of `c`: sequence numbers restart
//! with every incarnation, every message carries its sender's incarnation, and an ack
//! names the incarnation it acknowledges, so an ack sent to an earlier life of a
//! replica can never vouch for a delta of the current one (it is counted in
//! [`SyncCounters::stale_acks`] and ignored). The application:
//!
//! 1. MUST persist the record, [`Replica::state`] and [`Replica::incarnation`], in one
//!    atomic write (a torn write must read back as the previous record).
//! 2. MUST make the record durable after each change and before sending any message
//!    polled after that change, acks included, and before telling a client that its
//!    update is done. A change is a [`mutate`](Replica::mutate) or
//!    [`apply_local`](Replica::apply_local) that returned a non-⊥ delta, a
//!    `handle_*` that joined something, and [`Replica::restore`];
//!    [`Replica::changes`] grows with each, so persisting whenever it differs from its
//!    value at the last persist is enough. A peer thus never sees an update that a
//!    crash could take back, and never gets an ack for a join that a crash could undo.
//! 3. MAY lose, in a crash, every change after the last durable record: none of it was
//!    sent or confirmed to anyone.
//! 4. MUST restart a replica with [`Replica::restore`], from the last durable record,
//!    and add its peers again. The restored replica runs as the next incarnation,
//!    which rule 2 makes durable before its first message, and sends every peer its
//!    whole state first: a change persisted but not yet shipped before the crash
//!    reaches the peers.
//! 5. MUST NOT restart with [`Replica::new`] (incarnation 0 again: acks of the old
//!    life would be taken for acks of the new one), nor from an older record than the
//!    last durable one (a backup): peers may hold updates of this replica that such a
//!    record lacks, and the replica refuses their states from then on as forged
//!    ([`Authored`]). A replica whose disk is lost comes back under a new id.
//!
//! Nothing else needs to survive: the delta buffer, the acknowledgements and the
//! sequence counter are rebuilt, at the cost of one whole state per peer. Peers need
//! no notice of a restart.
//!
//! # Peer input
//!
//! A message that does not decode, comes from a replica that is not a peer, or holds
//! a value [`Authored::validate_peer_join`] refuses (an update of this replica that it
//! never made, which would otherwise make its next mutation overflow a counter) is
//! dropped and counted in [`SyncCounters::rejected`]; nothing changes and nothing
//! panics.

use std::collections::{BTreeMap, VecDeque};

use crate::codec::{Decode, DecodeError, Encode, ReplicaId, get_u8, get_uvarint, put_uvarint};
use crate::lattice::{Authored, InvalidJoin, Lattice};

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SyncMessage<S> {
    /// The join of the sender's deltas from the receiver's last acknowledgement up to
    /// `seq` (exclusive). The receiver acknowledges `(incarnation, seq)`.
    Delta {
        /// The sender's incarnation ([`Replica::incarnation`]).
        incarnation: u64,
        /// The sender's sequence counter after these deltas.
        seq: u64,
        /// The delta-interval.
        delta: S,
    },
    /// The sender's whole state, for a receiver whose missing deltas the sender no
    /// longer buffers (or a new peer, or any peer after a restart). The receiver
    /// acknowledges `(incarnation, seq)`.
    State {
        /// The sender's incarnation ([`Replica::incarnation`]).
        incarnation: u64,
        /// The sender's sequence counter.
        seq: u64,
        /// The state.
        state: S,
    },
    /// "I have everything your incarnation `incarnation` sent before `seq`."
    Ack {
        /// The incarnation of the acknowledged message.
        incarnation: u64,
        /// The acknowledged sequence number.
        seq: u64,
    },
}

/// Wire form: a tag, the incarnation if not 0, the sequence number (varints), then the
/// delta or state. Tags 1, 2, 3 (delta, state, ack) are incarnation 0, the form every
/// replica that never restarted sends, so incarnations cost no byte until a restart;
/// tags 4, 5, 6 are the same messages followed by an incarnation of at least 1.
impl<S: Encode> Encode for SyncMessage<S> {
    fn encode(&self, out: &mut Vec<u8>) {
        let (tag, incarnation, seq) = match self {
            SyncMessage::Delta {
                incarnation, seq, ..
            } => (1, *incarnation, *seq),
            SyncMessage::State {
                incarnation, seq, ..
            } => (2, *incarnation, *seq),
            SyncMessage::Ack { incarnation, seq } => (3, *incarnation, *seq),
        };
        if incarnation == 0 {
            out.push(tag);
        } else {
            out.push(tag + INCARNATION_TAGS);
            put_uvarint(out, incarnation);
        }
        put_uvarint(out, seq);
        match self {
            SyncMessage::Delta { delta, .. } => delta.encode(out),
            SyncMessage::State { state, .. } => state.encode(out),
            SyncMessage::Ack { .. } => {}
        }
    }
}

/// Added to a message's tag when an incarnation follows it.
const INCARNATION_TAGS: u8 = 3;

impl<S: Decode> Decode for SyncMessage<S> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let tag = get_u8(input)?;
        let (kind, incarnation) = match tag {
            1..=3 => (tag, 0),
            4..=6 => match get_uvarint(input)? {
                // One encoding per message: incarnation 0 has the short form.
                0 => return Err(DecodeError::Invalid("incarnation 0 in the long form")),
                incarnation => (tag - INCARNATION_TAGS, incarnation),
            },
            t => return Err(DecodeError::Tag(t)),
        };
        let seq = get_uvarint(input)?;
        Ok(match kind {
            1 => SyncMessage::Delta {
                incarnation,
                seq,
                delta: S::decode(input)?,
            },
            2 => SyncMessage::State {
                incarnation,
                seq,
                state: S::decode(input)?,
            },
            _ => SyncMessage::Ack { incarnation, seq },
        })
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<N, S> {
    /// The peer it goes to.
    pub to: N,
    /// What to send; [`Encode::to_bytes`] gives its wire form.
    pub message: SyncMessage<S>,
}

/// Why a received message was dropped. State did not change; the drop is counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The bytes are not a message.
    #[error("malformed message: {0}")]
    Malformed(#[from] DecodeError),
    /// The sender is not a peer of this replica ([`Replica::add_peer`]).
    #[error("message from a replica that is not a peer")]
    UnknownPeer,
    /// The state or delta cannot be joined into ours
    /// ([`Authored::validate_peer_join`]).
    #[error(transparent)]
    Invalid(#[from] InvalidJoin),
}

/// Why [`Replica::restore`] refused a persisted record. Nothing was created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The persisted incarnation is `u64::MAX`: there is no next one. No correct
    /// replica restarts that often; the record is corrupt.
    #[error("incarnation numbers exhausted")]
    IncarnationExhausted,
}

/// Limits of a [`Replica`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SyncConfig {
    /// At most this many deltas are buffered; past it the oldest are dropped, and a
    /// peer that had not acknowledged them gets the whole state next time. Bounds memory
    /// when a peer is down for long. At least 1.
    pub max_buffered_deltas: usize,
    /// Whether deltas received from one peer are passed on to the others (Algorithm 2
    /// as written: needed when peers are not all connected to each other, as on a
    /// ring or a tree). In a full mesh every peer hears each delta from its origin, and
    /// relaying only multiplies the bytes by the number of peers: turn it off. Without
    /// relaying, replicas still converge, but a replica may see a peer's delta before
    /// the deltas of a third replica that peer had seen: Algorithm 2's causal
    /// consistency of intermediate states holds only with relaying on.
    pub relay: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_buffered_deltas: 4096,
            relay: true,
        }
    }
}

impl SyncConfig {
    /// The configuration for a full mesh: every replica is a peer of every other, so
    /// nothing is relayed.
    pub fn full_mesh() -> Self {
        SyncConfig {
            relay: false,
            ..SyncConfig::default()
        }
    }
}

/// What a replica did, for monitoring and for the delta-vs-state comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncCounters {
    /// Delta-interval messages shipped.
    pub deltas_sent: u64,
    /// Whole-state messages shipped.
    pub states_sent: u64,
    /// Acks sent.
    pub acks_sent: u64,
    /// Received deltas or states that brought something new and were joined.
    pub joined: u64,
    /// Received deltas or states already included in our state (duplicates, echoes).
    pub redundant: u64,
    /// Acks that did not move a peer's acknowledgement (old, duplicated), claimed a
    /// sequence number we never sent, or were sent to an earlier incarnation.
    pub stale_acks: u64,
    /// Messages dropped: malformed, from unknown peers, or not joinable (forged
    /// updates of this replica among them).
    pub rejected: u64,
    /// Deltas dropped from the buffer by `max_buffered_deltas` before every peer had
    /// them.
    pub evicted: u64,
}

#[derive(Debug, Clone)]
struct Buffered<N, S> {
    /// The peer this delta came from; `None` for our own mutations.
    origin: Option<N>,
    delta: S,
}

/// One replica of a delta-state CRDT `S`, with Algorithm 2's anti-entropy.
///
/// - Constructors: [`new`](Self::new) (first start), [`restore`](Self::restore)
///   (every restart; see [the persistence contract](self#persistence-and-restart)).
/// - Commands: [`mutate`](Self::mutate) (apply a delta mutator), [`add_peer`](Self::add_peer),
///   [`remove_peer`](Self::remove_peer), [`ship`](Self::ship) / [`ship_to`](Self::ship_to)
///   (call on your own timer: the paper's "periodically").
/// - Inputs: [`handle_message`](Self::handle_message), [`handle_bytes`](Self::handle_bytes).
/// - Output: [`poll_transmit`](Self::poll_transmit), drained after each call, once the
///   record is durable if [`changes`](Self::changes) moved.
/// - Getters: [`state`](Self::state), [`incarnation`](Self::incarnation),
///   [`changes`](Self::changes), [`counters`](Self::counters).
#[derive(Debug, Clone)]
pub struct Replica<N: ReplicaId, S> {
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
    counters: SyncCounters,
}

impl<N: ReplicaId, S: Lattice + Authored<N> + PartialEq> Replica<N, S> {
    /// A replica named `me` that never ran before, as incarnation 0, starting from
    /// `state` (⊥, or a state to seed every peer with: it is shipped whole to each).
    ///
    /// A replica that ran before MUST come back with [`restore`](Self::restore)
    /// instead (see [the persistence contract](self#persistence-and-restart)).
    pub fn new(me: N, state: S, config: SyncConfig) -> Self {
        Self::start(me, state, 0, config)
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
    /// [`RestoreError::IncarnationExhausted`] if `incarnation` is `u64::MAX`.
    pub fn restore(
        me: N,
        state: S,
        incarnation: u64,
        config: SyncConfig,
    ) -> Result<Self, RestoreError> {
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
            config: SyncConfig {
                max_buffered_deltas: config.max_buffered_deltas.max(1),
                ..config
            },
            outbox: VecDeque::new(),
            counters: SyncCounters::default(),
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
    pub fn counters(&self) -> &SyncCounters {
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

    /// Buffers a local delta. Local deltas made since the last ship are joined into one
    /// buffer slot: no message has covered that slot yet, so no acknowledgement can
    /// claim it, and a burst of a thousand increments takes one slot, not a thousand.
    fn buffer_local(&mut self, delta: S) {
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

    fn buffer_delta(&mut self, origin: Option<N>, delta: S) {
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
    fn collect_garbage(&mut self) {
        let low = self.acked.values().copied().min().unwrap_or(self.seq);
        while let Some((&first, _)) = self.buffer.first_key_value() {
            if first >= low {
                break;
            }
            self.buffer.pop_first();
        }
    }
}

impl<N: ReplicaId, S: Lattice + Authored<N> + PartialEq + Decode> Replica<N, S> {
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

#[cfg(feature = "crdts")]
pub use interop::Cvrdt;

#[cfg(feature = "crdts")]
mod interop {
    use crdts::CvRDT;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use crate::codec::{Decode, DecodeError, Encode, get_bytes, get_len, put_uvarint};
    use crate::lattice::{Authored, InvalidJoin, Lattice};

    /// A state-based type of the `crdts` crate (`CvRDT`: `GCounter`, `Orswot`, `Map`,
    /// `MVReg`...) as a [`Lattice`], so [`Replica`](super::Replica) can sync it. Its
    /// whole state is its own delta (`crdts` has no delta mutators): mutate it through
    /// [`Replica::mutate`](super::Replica::mutate) and return a copy of the whole state,
    /// or join a changed copy with [`Replica::apply_local`](super::Replica::apply_local).
    /// `crdts`' `validate_merge` runs before every join of remote data; what it refuses
    /// is dropped and counted, not merged. On the wire it is postcard-encoded serde,
    /// length-prefixed.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Cvrdt<T>(pub T);

    impl<T: CvRDT + Clone + Default + PartialEq> Lattice for Cvrdt<T> {
        fn join(&mut self, other: &Self) {
            if self.0.validate_merge(&other.0).is_ok() {
                self.0.merge(other.0.clone());
            }
        }

        fn bottom() -> Self {
            Cvrdt(T::default())
        }

        fn is_bottom(&self) -> bool {
            self.0 == T::default()
        }

        fn validate_join(&self, other: &Self) -> Result<(), InvalidJoin> {
            self.0
                .validate_merge(&other.0)
                .map_err(|e| InvalidJoin(e.to_string()))
        }
    }

    /// `crdts`' types are opaque here: only `validate_merge` runs. A forged entry of
    /// this replica in a `crdts` clock is not detected.
    impl<N, T: CvRDT + Clone + Default + PartialEq> Authored<N> for Cvrdt<T> {}

    impl<T: Serialize> Encode for Cvrdt<T> {
        fn encode(&self, out: &mut Vec<u8>) {
            let bytes = postcard::to_allocvec(&self.0).expect("serializing to memory cannot fail");
            put_uvarint(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
    }

    impl<T: DeserializeOwned> Decode for Cvrdt<T> {
        fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
            let len = get_len(input, 1)?;
            let bytes = get_bytes(input, len)?;
            postcard::from_bytes(bytes)
                .map(Cvrdt)
                .map_err(|_| DecodeError::Invalid("not a postcard-encoded crdts value"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// A grow-only set of numbers: the simplest lattice, for protocol tests.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    struct Union(BTreeSet<u32>);

    impl Lattice for Union {
        fn join(&mut self, other: &Self) {
            self.0.extend(other.0.iter().copied());
        }
        fn bottom() -> Self {
            Union::default()
        }
        fn is_bottom(&self) -> bool {
            self.0.is_empty()
        }
    }

    impl Encode for Union {
        fn encode(&self, out: &mut Vec<u8>) {
            self.0.encode(out);
        }
    }

    impl Authored<u32> for Union {}

    impl Decode for Union {
        fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
            BTreeSet::decode(input).map(Union)
        }
    }

    fn add(x: u32) -> impl FnOnce(&mut Union, &u32) -> Union {
        move |s, _| {
            s.0.insert(x);
            Union(BTreeSet::from([x]))
        }
    }

    fn pair() -> (Replica<u32, Union>, Replica<u32, Union>) {
        let mut a = Replica::new(1, Union::bottom(), SyncConfig::default());
        let mut b = Replica::new(2, Union::bottom(), SyncConfig::default());
        a.add_peer(2);
        b.add_peer(1);
        (a, b)
    }

    /// Delivers everything `from` has queued to `to` (and nothing else).
    fn deliver(from: &mut Replica<u32, Union>, to: &mut Replica<u32, Union>) -> usize {
        let mut n = 0;
        while let Some(out) = from.poll_transmit() {
            assert_eq!(out.to, *to.id());
            let bytes = out.message.to_bytes();
            to.handle_bytes(from.id(), &bytes).expect("valid message");
            n += 1;
        }
        n
    }

    #[test]
    fn deltas_ship_get_acknowledged_and_collected() {
        let (mut a, mut b) = pair();
        a.mutate(add(1));
        a.mutate(add(2));
        assert_eq!(a.buffered(), 1, "unshipped local deltas share a slot");
        a.ship();
        let out = a.poll_transmit().expect("a delta-interval");
        assert_eq!(
            out.message,
            SyncMessage::Delta {
                incarnation: 0,
                seq: 1,
                delta: Union(BTreeSet::from([1, 2]))
            },
            "one message joins both deltas"
        );
        b.handle_message(&1, out.message).unwrap();
        assert_eq!(b.state().0, BTreeSet::from([1, 2]));
        assert_eq!(deliver(&mut b, &mut a), 1, "an ack");
        assert_eq!(a.buffered(), 0, "acknowledged by every peer: collected");
        a.ship();
        assert!(a.poll_transmit().is_none(), "nothing left to ship");
    }

    #[test]
    fn a_lost_interval_is_shipped_again_and_a_duplicate_is_redundant() {
        let (mut a, mut b) = pair();
        a.mutate(add(7));
        a.ship();
        let lost = a.poll_transmit().unwrap();
        a.ship();
        let again = a.poll_transmit().unwrap();
        assert_eq!(lost, again, "no ack yet: the same interval again");
        b.handle_message(&1, again.message.clone()).unwrap();
        b.handle_message(&1, again.message).unwrap();
        assert_eq!(b.counters().joined, 1);
        assert_eq!(b.counters().redundant, 1, "the duplicate changed nothing");
        assert_eq!(deliver(&mut b, &mut a), 2, "both acknowledged");
        assert_eq!(a.counters().stale_acks, 1, "the second ack moved nothing");
    }

    #[test]
    fn deltas_are_not_echoed_to_their_origin() {
        let (mut a, mut b) = pair();
        a.mutate(add(3));
        a.ship();
        deliver(&mut a, &mut b);
        assert_eq!(b.buffered(), 1, "b buffers it for its other peers");
        b.ship();
        let echoed = std::iter::from_fn(|| b.poll_transmit())
            .filter(|o| matches!(o.message, SyncMessage::Delta { .. }))
            .count();
        assert_eq!(echoed, 0, "nothing goes back to a");
        assert_eq!(b.buffered(), 0, "and a counts as having it");
    }

    #[test]
    fn a_peer_behind_the_buffer_gets_the_whole_state() {
        let config = SyncConfig {
            max_buffered_deltas: 2,
            ..SyncConfig::default()
        };
        let mut a = Replica::new(1u32, Union::bottom(), config);
        a.add_peer(2);
        for x in 0..5 {
            a.mutate(add(x));
            // Shipped and lost: each mutation gets its own slot.
            a.ship();
            while a.poll_transmit().is_some() {}
        }
        assert_eq!(a.buffered(), 2);
        assert_eq!(a.counters().evicted, 3);
        a.ship();
        match a.poll_transmit().unwrap().message {
            SyncMessage::State { seq, state, .. } => {
                assert_eq!(seq, 5);
                assert_eq!(state.0, (0..5).collect());
            }
            m => panic!("expected the whole state, got {m:?}"),
        }
    }

    #[test]
    fn a_delta_made_after_a_ship_is_not_acknowledged_by_that_ship() {
        let (mut a, mut b) = pair();
        a.mutate(add(1));
        a.ship();
        let first = a.poll_transmit().unwrap();
        // A mutation while the first interval is in flight: it must not join the
        // shipped slot, or the ack of the first interval would cover it unseen.
        a.mutate(add(2));
        assert_eq!(a.buffered(), 2);
        b.handle_message(&1, first.message).unwrap();
        deliver(&mut b, &mut a);
        assert_eq!(a.buffered(), 1, "only the shipped slot is acknowledged");
        a.ship();
        deliver(&mut a, &mut b);
        assert_eq!(b.state().0, BTreeSet::from([1, 2]));
    }

    #[test]
    fn unknown_peers_stale_and_future_acks_and_garbage_are_rejected() {
        let (mut a, _) = pair();
        a.mutate(add(1));
        assert_eq!(
            a.handle_message(
                &9,
                SyncMessage::Ack {
                    incarnation: 0,
                    seq: 1
                }
            ),
            Err(SyncError::UnknownPeer)
        );
        a.handle_message(
            &2,
            SyncMessage::Ack {
                incarnation: 0,
                seq: 5,
            },
        )
        .unwrap();
        assert_eq!(a.counters().stale_acks, 1, "an ack for deltas never sent");
        assert_eq!(a.buffered(), 1, "and it collected nothing");
        assert!(matches!(
            a.handle_bytes(&2, &[1, 0, 0xff]),
            Err(SyncError::Malformed(_))
        ));
        assert!(matches!(
            a.handle_bytes(&2, &[9]),
            Err(SyncError::Malformed(_))
        ));
        assert_eq!(a.counters().rejected, 3);
        assert_eq!(a.state().0, BTreeSet::from([1]));
    }

    #[test]
    fn incarnation_zero_costs_no_byte_and_has_one_encoding() {
        let ack = |incarnation| SyncMessage::<Union>::Ack {
            incarnation,
            seq: 1,
        };
        assert_eq!(ack(0).to_bytes(), [3, 1]);
        assert_eq!(ack(2).to_bytes(), [6, 2, 1]);
        for incarnation in [0, 1, 300, u64::MAX] {
            let delta = SyncMessage::Delta {
                incarnation,
                seq: 7,
                delta: Union(BTreeSet::from([4])),
            };
            assert_eq!(SyncMessage::from_bytes(&delta.to_bytes()), Ok(delta));
            assert_eq!(
                SyncMessage::from_bytes(&ack(incarnation).to_bytes()),
                Ok(ack(incarnation))
            );
        }
        assert_eq!(
            SyncMessage::<Union>::from_bytes(&[6, 0, 1]),
            Err(DecodeError::Invalid("incarnation 0 in the long form"))
        );
        assert_eq!(
            SyncMessage::<Union>::from_bytes(&[7, 1, 1]),
            Err(DecodeError::Tag(7))
        );
    }

    #[test]
    fn removing_a_dead_peer_releases_the_buffer() {
        let (mut a, _) = pair();
        a.add_peer(3);
        a.mutate(add(1));
        a.handle_message(
            &2,
            SyncMessage::Ack {
                incarnation: 0,
                seq: 1,
            },
        )
        .unwrap();
        assert_eq!(a.buffered(), 1, "peer 3 has not acknowledged");
        a.remove_peer(&3);
        assert_eq!(a.buffered(), 0);
    }
}
