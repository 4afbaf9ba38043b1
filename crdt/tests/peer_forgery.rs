//! A peer's message must never make a replica panic or overflow (issue 14, finding 7).
//! A causal context holding `Dot(me, u64::MAX)`, or a counter entry of `me` above ours,
//! claims updates of this replica that it never made: joined, they left its next local
//! add with no dot to issue (a panic) or swallowed its next increments. The protocol
//! refuses them ([`dsys_crdt::Authored`]); a high dot of *another* replica is that
//! replica's business and is joined.

use dsys_clocks::{Dot, Timestamp};
use dsys_crdt::codec::{Decode, Encode};
use dsys_crdt::{
    Authored, CausalContext, GCounter, Lattice, LwwRegister, MvRegister, ORMap, ORSet, PNCounter,
    Replica, SyncConfig, SyncError, SyncMessage,
};

/// Replica 1, a peer of 2.
fn replica<S: Lattice + Authored<u64> + PartialEq>() -> Replica<u64, S> {
    let mut r = Replica::new(1, S::bottom(), SyncConfig::default()).expect("a valid configuration");
    r.add_peer(2);
    r
}

/// `value` as a delta-interval from peer 2, on the wire.
fn from_peer<S: Encode>(value: S) -> Vec<u8> {
    SyncMessage::Delta {
        incarnation: 0,
        seq: 1,
        delta: value,
    }
    .to_bytes()
}

/// A causal context holding only `Dot(node, u64::MAX)`, encoded.
fn context_at_max(node: u64) -> Vec<u8> {
    let ctx: CausalContext<u64> = [Dot::new(node, u64::MAX)].into_iter().collect();
    ctx.to_bytes()
}

/// An OR-Set (or, with more bytes, an MV-Register or OR-Map) whose context holds
/// `Dot(node, u64::MAX)` and whose store is empty.
fn decode_at_max<S: Decode>(node: u64, tail: &[u8]) -> S {
    let mut bytes = context_at_max(node);
    bytes.extend_from_slice(tail);
    S::from_bytes(&bytes).expect("a well-formed value")
}

fn assert_refused<S: Lattice + Authored<u64> + PartialEq + Decode + std::fmt::Debug>(
    r: &mut Replica<u64, S>,
    bytes: &[u8],
) {
    let before = r.state().clone();
    assert!(
        matches!(r.handle_bytes(&2, bytes), Err(SyncError::Invalid(_))),
        "a forged update of ours was accepted"
    );
    assert_eq!(r.counters().rejected, 1);
    assert_eq!(*r.state(), before, "nothing changed");
    assert!(r.poll_transmit().is_none(), "and nothing is acknowledged");
}

#[test]
fn orset_refuses_a_forged_dot_of_ours_and_keeps_adding() {
    let mut r = replica::<ORSet<u64, u32>>();
    assert_refused(
        &mut r,
        &from_peer(decode_at_max::<ORSet<u64, u32>>(1, &[0])),
    );
    let delta = r.mutate(|s, me| s.add(me, 5));
    assert_eq!(delta.dots().next().map(|(_, d)| d[0].counter), Some(1));
    assert!(r.state().contains(&5));
}

#[test]
fn mvregister_refuses_a_forged_dot_of_ours_and_keeps_writing() {
    let mut r = replica::<MvRegister<u64, u32>>();
    assert_refused(
        &mut r,
        &from_peer(decode_at_max::<MvRegister<u64, u32>>(1, &[0])),
    );
    let _ = r.mutate(|s, me| s.set(me, 5));
    assert_eq!(r.state().values().collect::<Vec<_>>(), [&5]);
}

#[test]
fn ormap_refuses_a_forged_key_dot_and_a_forged_value_entry() {
    type Map = ORMap<u64, u32, GCounter<u64>>;
    let mut r = replica::<Map>();
    // Keys: an OR-Set with the forged context and no element; values: none.
    assert_refused(&mut r, &from_peer(decode_at_max::<Map>(1, &[0, 0])));
    // A legitimate key update by 2 whose value holds a forged entry of 1.
    let mut theirs = Map::new();
    let forged = theirs.update(&2, 9, |c| c.increment(&1, u64::MAX));
    let mut r = replica::<Map>();
    assert_refused(&mut r, &from_peer(forged));
    let _ = r.mutate(|s, me| s.update(me, 3, |c| c.increment(me, 1)));
    assert_eq!(r.state().get(&3).map(GCounter::value), Some(1));
}

#[test]
fn counters_refuse_a_forged_entry_of_ours_and_keep_counting() {
    let mut r = replica::<GCounter<u64>>();
    let forged: GCounter<u64> = [(1u64, u64::MAX)].into_iter().collect();
    assert_refused(&mut r, &from_peer(forged));
    assert!(!r.mutate(|s, me| s.increment(me, 1)).is_bottom());
    assert_eq!(r.state().value(), 1);

    let mut r = replica::<PNCounter<u64>>();
    let mut forged = PNCounter::<u64>::new();
    let _ = forged.decrement(&1, 7);
    assert_refused(&mut r, &from_peer(forged));
}

#[test]
fn lww_refuses_a_write_of_ours_we_never_made() {
    let mut r = replica::<LwwRegister<u64, u32>>();
    let mut forged = LwwRegister::<u64, u32>::new();
    let _ = forged.set(&1, Timestamp::from_u64(u64::MAX), 9);
    assert_refused(&mut r, &from_peer(forged));
    // Our own write, seen by the peer and sent back, is fine.
    let mine = r.mutate(|s, me| s.set(me, Timestamp::from_u64(5), 1));
    assert_eq!(r.handle_bytes(&2, &from_peer(mine)), Ok(()));
}

/// The limit is on what *we* issued: another replica's dots, however high, are joined,
/// and our own dots a peer echoes back are fine.
#[test]
fn high_dots_of_others_and_our_own_echoed_dots_are_joined() {
    let mut r = replica::<ORSet<u64, u32>>();
    let theirs = decode_at_max::<ORSet<u64, u32>>(2, &[0]);
    assert_eq!(r.handle_bytes(&2, &from_peer(theirs)), Ok(()));
    let mine = r.mutate(|s, me| s.add(me, 1));
    assert_eq!(r.handle_bytes(&2, &from_peer(mine)), Ok(()));
    assert_eq!(r.counters().rejected, 0);
}

/// Without the protocol (a direct join), a context at `u64::MAX` leaves the mutators
/// nothing to issue: they change nothing and return ⊥ instead of panicking.
#[test]
fn mutators_out_of_dots_return_bottom_instead_of_panicking() {
    let mut set = ORSet::<u64, u32>::new();
    set.join(&decode_at_max(1, &[0]));
    let before = set.clone();
    assert!(set.add(&1, 5).is_bottom());
    assert_eq!(set, before);

    let mut reg = MvRegister::<u64, u32>::new();
    reg.join(&decode_at_max(1, &[0]));
    assert!(reg.set(&1, 5).is_bottom());
    assert!(reg.is_empty());

    let mut map = ORMap::<u64, u32, GCounter<u64>>::new();
    map.join(&decode_at_max(1, &[0, 0]));
    let mut called = false;
    assert!(
        map.update(&1, 3, |c| {
            called = true;
            c.increment(&1, 1)
        })
        .is_bottom()
    );
    assert!(!called && map.is_empty());
}

#[test]
fn a_refusal_says_why_and_a_custom_lattice_can_refuse() {
    let mut r = replica::<GCounter<u64>>();
    let forged: GCounter<u64> = [(1u64, 5)].into_iter().collect();
    let Err(SyncError::Invalid(e)) = r.handle_bytes(&2, &from_peer(forged)) else {
        panic!("a forged entry of ours was accepted");
    };
    assert!(e.reason().contains("never made"), "{e}");
    assert_eq!(e.to_string(), format!("cannot join: {}", e.reason()));

    // A user's lattice refuses with `InvalidJoin::new` (the `crdts` wrapper does so
    // with `validate_merge`'s error).
    let refusal = dsys_crdt::InvalidJoin::new("clocks disagree");
    assert_eq!(refusal.reason(), "clocks disagree");
    assert_eq!(refusal.to_string(), "cannot join: clocks disagree");
}
