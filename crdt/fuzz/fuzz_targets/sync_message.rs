//! Arbitrary bytes from a peer: the first byte picks a CRDT type, the rest is decoded
//! as a protocol message carrying that type. Decoding never panics; bytes that do not
//! decode are refused as malformed; whatever decodes is joined or refused without
//! panicking, and if joined the state includes it (join is an upper bound) and joining
//! it again changes nothing (idempotence). Then the replica makes a local update, which
//! must not panic or overflow whatever the peer sent (issue 14, finding 7: a peer's
//! dot `(me, u64::MAX)` used to make the next add panic).
#![no_main]

use dsys_clocks::Timestamp;
use dsys_crdt::codec::Decode;
use dsys_crdt::{
    Authored, GCounter, GSet, Lattice, LwwRegister, MvRegister, ORMap, ORSet, PNCounter, Replica,
    SyncConfig, SyncError, SyncMessage, TwoPSet,
};
use libfuzzer_sys::fuzz_target;

fn exercise<S>(seed: S, bytes: &[u8], local: impl FnOnce(&mut S, &u32) -> S)
where
    S: Lattice + Authored<u32> + PartialEq + Decode + std::fmt::Debug,
{
    let mut replica =
        Replica::new(0u32, seed, SyncConfig::default()).expect("a valid configuration");
    replica.add_peer(1);
    let decoded = SyncMessage::<S>::from_bytes(bytes);
    let result = replica.handle_bytes(&1, bytes);
    assert_eq!(
        decoded.is_err(),
        matches!(result, Err(SyncError::Malformed(_))),
        "decode and handle disagree: {result:?}"
    );
    if let (
        Ok(()),
        Ok(SyncMessage::Delta { delta: remote, .. } | SyncMessage::State { state: remote, .. }),
    ) = (&result, decoded)
    {
        let state = replica.state().clone();
        assert!(remote.leq(&state), "the join is not an upper bound");
        let mut again = state.clone();
        again.join(&remote);
        assert_eq!(again, state, "joining twice changed the state");
    }
    let _ = replica.mutate(local);
    replica.ship();
    while replica.poll_transmit().is_some() {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 8 {
        0 => {
            let mut c = GCounter::<u32>::new();
            let _ = c.increment(&0, 5);
            exercise(c, bytes, |c, me| c.increment(me, 1));
        }
        1 => {
            let mut c = PNCounter::<u32>::new();
            let _ = c.decrement(&0, 2);
            exercise(c, bytes, |c, me| c.decrement(me, 1));
        }
        2 => {
            let mut s = GSet::<u32>::new();
            let _ = s.insert(7);
            exercise(s, bytes, |s, _| s.insert(9));
        }
        3 => {
            let mut s = TwoPSet::<u32>::new();
            let _ = s.insert(7);
            exercise(s, bytes, |s, _| s.insert(9));
        }
        4 => {
            let mut s = ORSet::<u32, u32>::new();
            let _ = s.add(&0, 7);
            let _ = s.add(&0, 8);
            let _ = s.remove(&7);
            exercise(s, bytes, |s, me| s.add(me, 9));
        }
        5 => exercise(LwwRegister::<u32, u32>::bottom(), bytes, |r, me| {
            r.set(me, Timestamp::from_u64(1 << 20), 9)
        }),
        6 => {
            let mut r = MvRegister::<u32, u32>::bottom();
            let _ = r.set(&0, 3);
            exercise(r, bytes, |r, me| r.set(me, 9));
        }
        _ => {
            let mut m = ORMap::<u32, u32, GCounter<u32>>::bottom();
            let _ = m.update(&0, 1, |c| c.increment(&0, 1));
            exercise(m, bytes, |m, me| m.update(me, 1, |c| c.increment(me, 1)));
        }
    }
});
