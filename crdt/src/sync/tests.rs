//! Protocol tests on the simplest lattice.

use std::collections::BTreeSet;

use super::*;
use crate::codec::{DecodeError, Encode};

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
    let mut a =
        Replica::new(1, Union::bottom(), SyncConfig::default()).expect("a valid configuration");
    let mut b =
        Replica::new(2, Union::bottom(), SyncConfig::default()).expect("a valid configuration");
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
    let mut a = Replica::new(1u32, Union::bottom(), config).expect("a valid configuration");
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
