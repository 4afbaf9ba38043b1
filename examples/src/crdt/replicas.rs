//! The replicas the network drives: a dsys-crdt [`Replica`] with the bytes its
//! messages cost (and would cost as whole states), and the two plain-integer counters of
//! section 2 (last write wins, and "send +n" with or without retries).

use std::collections::{BTreeMap, VecDeque};

use dsys_crdt::codec::{Decode, Encode};
use dsys_crdt::{
    Authored, Counters, GCounter, Lattice, PNCounter, Replica, SyncConfig, SyncMessage,
};

use super::format::{pop, views_read};
use super::network::{Counter, Peer, replay};
use super::script::NAMES;
use crate::report::Res;

/// A dsys-crdt replica in the chapter's network, and what its messages cost.
pub(super) struct CrdtNode<S> {
    pub(super) replica: Replica<String, S>,
    /// Bytes of every message sent.
    pub(super) bytes: usize,
    /// Bytes, had every delta-interval been the sender's whole state (the
    /// seed's `merge(other)`, shipped the same number of times).
    pub(super) whole_state_bytes: usize,
}

impl<S: Lattice + Authored<String> + PartialEq + Encode + Decode> CrdtNode<S> {
    /// The three replicas, every one a peer of the other two.
    pub(super) fn mesh(config: &SyncConfig) -> Res<Vec<Self>> {
        (0..NAMES.len())
            .map(|i| {
                let mut replica = Replica::new(NAMES[i].to_owned(), S::bottom(), config.clone())?;
                for (j, peer) in NAMES.iter().enumerate() {
                    if j != i {
                        replica.add_peer((*peer).to_owned());
                    }
                }
                Ok(Self {
                    replica,
                    bytes: 0,
                    whole_state_bytes: 0,
                })
            })
            .collect()
    }
}

impl Counter for CrdtNode<GCounter<String>> {
    fn serve(&mut self, _round: usize, views: u64) {
        // One increment per view, as the seed's `increment()`: the protocol
        // joins them into one delta-interval per peer.
        for _ in 0..views {
            self.replica.mutate(|c, me| c.increment(me, 1));
        }
    }

    fn read(&self) -> i128 {
        views_read(self.replica.state())
    }
}

impl<S: Lattice + Authored<String> + PartialEq + Encode + Decode> Peer for CrdtNode<S> {
    type Msg = Vec<u8>;

    fn ship(&mut self) {
        self.replica.ship();
    }

    fn poll(&mut self) -> Option<(usize, Vec<u8>)> {
        let out = self.replica.poll_transmit()?;
        let bytes = out.message.to_bytes();
        self.bytes += bytes.len();
        // Polled right after `ship`, before anything else arrives: the state
        // is the one the interval was cut from.
        self.whole_state_bytes += match &out.message {
            SyncMessage::Delta {
                incarnation, seq, ..
            } => SyncMessage::State {
                incarnation: *incarnation,
                seq: *seq,
                state: self.replica.state().clone(),
            }
            .to_bytes()
            .len(),
            _ => bytes.len(),
        };
        let to = NAMES
            .iter()
            .position(|name| *name == out.to)
            .expect("a replica only sends to the peers it was given, all in NAMES");
        Some((to, bytes))
    }

    fn receive(&mut self, from: usize, msg: Vec<u8>) -> Res {
        self.replica.handle_bytes(&NAMES[from].to_owned(), &msg)?;
        Ok(())
    }
}

/// A plain integer per replica, replicated last-write-wins: each replica
/// adds its views to its copy, stamps it, and broadcasts it; a receiver
/// keeps the copy with the later stamp (the seeds' multi-leader LWW).
pub(super) struct LwwNode {
    me: usize,
    count: u64,
    stamp: Stamp,
    outbox: VecDeque<(usize, (u64, Stamp))>,
}

/// `(round, position)`: within a round the replicas write in an order that
/// rotates from round to round (see [`write_position`]).
pub(super) type Stamp = (usize, usize);

impl LwwNode {
    /// Replica `me`, at 0.
    pub(super) fn new(me: usize) -> Self {
        LwwNode {
            me,
            count: 0,
            stamp: (0, 0),
            outbox: VecDeque::new(),
        }
    }
}

impl Counter for LwwNode {
    fn serve(&mut self, round: usize, views: u64) {
        if views > 0 {
            self.count += views;
            self.stamp = (round, write_position(round, self.me));
        }
    }

    fn read(&self) -> i128 {
        i128::from(self.count)
    }
}

impl Peer for LwwNode {
    type Msg = (u64, Stamp);

    fn ship(&mut self) {
        for peer in (0..NAMES.len()).filter(|&p| p != self.me) {
            self.outbox.push_back((peer, (self.count, self.stamp)));
        }
    }

    fn poll(&mut self) -> Option<(usize, Self::Msg)> {
        self.outbox.pop_front()
    }

    fn receive(&mut self, _from: usize, (count, stamp): Self::Msg) -> Res {
        if stamp > self.stamp {
            self.count = count;
            self.stamp = stamp;
        }
        Ok(())
    }
}

/// When `replica` writes within `round` (1-based), `0..3`: the last writer is
/// tokyo in round 1, seoul in round 2, virginia in round 3, and so on.
pub(super) fn write_position(round: usize, replica: usize) -> usize {
    (replica + round) % NAMES.len()
}

/// What a "send +n" counter sends.
#[derive(Debug, Clone)]
pub(super) enum AddMsg {
    /// "Add `amount`", numbered so an ack can name it.
    Add { id: u64, amount: u64 },
    /// "I added message `id`."
    Ack { id: u64 },
}

/// Increments as messages: each sync, a replica sends every peer the views
/// it served since the last one, and a receiver adds them. With `retry`, a
/// message is sent again each sync until acknowledged (at least once);
/// without, it is sent once (at most once).
pub(super) struct AddNode {
    me: usize,
    retry: bool,
    count: u64,
    fresh: u64,
    next_id: u64,
    /// `(peer, id) -> amount`, not yet acknowledged.
    unacked: BTreeMap<(usize, u64), u64>,
    outbox: VecDeque<(usize, AddMsg)>,
}

impl AddNode {
    /// Replica `me`, at 0; `retry`: send again until acknowledged.
    pub(super) fn new(me: usize, retry: bool) -> Self {
        AddNode {
            me,
            retry,
            count: 0,
            fresh: 0,
            next_id: 0,
            unacked: BTreeMap::new(),
            outbox: VecDeque::new(),
        }
    }
}

impl Counter for AddNode {
    fn serve(&mut self, _round: usize, views: u64) {
        self.count += views;
        self.fresh += views;
    }

    fn read(&self) -> i128 {
        i128::from(self.count)
    }
}

impl Peer for AddNode {
    type Msg = AddMsg;

    fn ship(&mut self) {
        if self.fresh > 0 {
            for peer in (0..NAMES.len()).filter(|&p| p != self.me) {
                self.unacked.insert((peer, self.next_id), self.fresh);
            }
            self.next_id += 1;
            self.fresh = 0;
        }
        for (&(peer, id), &amount) in &self.unacked {
            self.outbox.push_back((peer, AddMsg::Add { id, amount }));
        }
        if !self.retry {
            self.unacked.clear();
        }
    }

    fn poll(&mut self) -> Option<(usize, AddMsg)> {
        self.outbox.pop_front()
    }

    fn receive(&mut self, from: usize, msg: AddMsg) -> Res {
        match msg {
            AddMsg::Add { id, amount } => {
                self.count += amount;
                if self.retry {
                    self.outbox.push_back((from, AddMsg::Ack { id }));
                }
            }
            AddMsg::Ack { id } => {
                self.unacked.remove(&(from, id));
            }
        }
        Ok(())
    }
}

/// Replays the rounds on `nodes` and returns what each replica reads.
pub(super) fn final_reads<C: Counter>(mut nodes: Vec<C>) -> Res<Vec<i128>> {
    replay(&mut nodes, |_| Ok(()))?;
    Ok(nodes.iter().map(Counter::read).collect())
}

/// One G-Counter's entries for seoul, tokyo and virginia, and their sum.
pub(super) fn entries(node: &CrdtNode<GCounter<String>>) -> [u64; 4] {
    let state = node.replica.state();
    let [s, t, v] = NAMES.map(|name| state.get(&name.to_owned()));
    [s, t, v, s + t + v]
}

/// A counter summed over the replicas.
pub(super) fn sum(nodes: &[CrdtNode<GCounter<String>>], counter: fn(&Counters) -> u64) -> u64 {
    nodes.iter().map(|n| counter(n.replica.counters())).sum()
}

/// Section 4's arrivals: `(likes, unlikes)` at each replica, one delta mutation
/// each. Returns the likes and unlikes in all.
pub(super) fn like_and_unlike(
    nodes: &mut [CrdtNode<PNCounter<String>>],
    events: [(u64, u64); 3],
) -> (u64, u64) {
    let (mut likes, mut unlikes) = (0, 0);
    for (node, (up, down)) in nodes.iter_mut().zip(events) {
        for _ in 0..up {
            node.replica.mutate(|s, me| s.increment(me, 1));
        }
        for _ in 0..down {
            node.replica.mutate(|s, me| s.decrement(me, 1));
        }
        likes += up;
        unlikes += down;
    }
    (likes, unlikes)
}

/// The bytes of a whole-state message and of a one-increment delta message, from one
/// of `n` edge replicas (ids [`pop`]) that have each counted about a million views.
pub(super) fn message_sizes(n: usize) -> (usize, usize) {
    let mut counter: GCounter<String> = (0..n).map(|i| (pop(i), 1_000_000 + i as u64)).collect();
    let seq = 1_000_000;
    let delta = counter.increment(&pop(0), 1);
    let whole = SyncMessage::State {
        incarnation: 0,
        seq,
        state: counter.clone(),
    }
    .to_bytes()
    .len();
    let one = SyncMessage::Delta {
        incarnation: 0,
        seq,
        delta,
    }
    .to_bytes()
    .len();
    (whole, one)
}
