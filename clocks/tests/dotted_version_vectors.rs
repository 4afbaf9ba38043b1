//! Dotted version vectors keep exactly the truly concurrent versions of a key
//! (Preguiça et al. 2010, §5), where per-server version vectors lose writes
//! and per-client ones grow without bound.

use dsys_clocks::{CausalOrder, Siblings, VersionVector};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// Two clients keep writing the same key through one server, each with the
/// context of its own last read, and every read is stale by one write (both
/// read, then both write: the interleaving behind Riak's sibling explosion).
/// With DVVs the key never holds more than one sibling per client, and each
/// client's latest write survives.
#[test]
fn stale_readers_never_explode_siblings() {
    let mut key: Siblings<&str, String> = Siblings::new();
    for round in 0..500 {
        let reads = [key.context(), key.context()];
        for (client, context) in reads.iter().enumerate() {
            key.update(context, &"S", format!("c{client}-{round}"))
                .unwrap();
        }
        let values: BTreeSet<_> = key.values().cloned().collect();
        let expected: BTreeSet<_> = [format!("c0-{round}"), format!("c1-{round}")].into();
        assert_eq!(values, expected, "round {round}");
    }
    // Only the server's entry appears in any clock: no per-client growth.
    assert!(
        key.iter()
            .all(|(clock, _)| clock.to_version_vector().len() == 1)
    );
}

#[derive(Debug, Clone)]
enum ClientOp {
    Get(usize),
    Put(usize),
}

proptest! {
    /// The exact DVV guarantee, against a ground truth kept without clocks:
    /// after any interleaving of reads and writes by several clients, each
    /// writing with the context of its own latest read, the siblings are
    /// exactly the writes that no later writer had read. No write is lost
    /// (none disappears that nobody saw) and none lingers (no false sibling).
    #[test]
    fn siblings_are_exactly_the_unread_writes(
        clients in 1usize..5,
        ops in prop::collection::vec((any::<bool>(), 0usize..5), 1..60),
    ) {
        let mut key: Siblings<&str, usize> = Siblings::new();
        // Per client: the context and the set of write ids its latest read saw.
        let mut reads: Vec<(VersionVector<&str>, BTreeSet<usize>)> = vec![(VersionVector::new(), BTreeSet::new()); clients];
        let mut superseded = BTreeSet::new();
        let mut writes = 0usize;
        for (is_put, who) in ops {
            let op = if is_put { ClientOp::Put(who % clients) } else { ClientOp::Get(who % clients) };
            match op {
                ClientOp::Get(c) => reads[c] = (key.context(), key.values().copied().collect()),
                ClientOp::Put(c) => {
                    let id = writes;
                    writes += 1;
                    key.update(&reads[c].0, &"S", id).unwrap();
                    superseded.extend(reads[c].1.iter().copied());
                }
            }
            let live: BTreeSet<usize> = (0..writes).filter(|w| !superseded.contains(w)).collect();
            let siblings: BTreeSet<usize> = key.values().copied().collect();
            prop_assert_eq!(&siblings, &live);
        }
    }
}

/// A read of all siblings followed by a write resolves them.
#[test]
fn a_write_that_saw_every_sibling_replaces_them() {
    let mut key: Siblings<&str, &str> = Siblings::new();
    let empty = VersionVector::new();
    key.update(&empty, &"S", "a").unwrap();
    key.update(&empty, &"S", "b").unwrap();
    key.update(&empty, &"T", "c").unwrap();
    assert_eq!(key.len(), 3);
    let seen = key.context();
    key.update(&seen, &"S", "abc").unwrap();
    assert_eq!(key.values().copied().collect::<Vec<_>>(), ["abc"]);
}

/// A replica's write sequence: (server index, which earlier write's context
/// to use, or None for the current full context).
fn writes() -> impl Strategy<Value = Vec<(usize, Option<usize>)>> {
    prop::collection::vec((0usize..3, prop::option::of(0usize..20)), 1..25)
}

fn run(
    writes: &[(usize, Option<usize>)],
    servers: &[&'static str],
) -> Siblings<&'static str, usize> {
    let mut key = Siblings::new();
    let mut contexts = vec![VersionVector::new()];
    for (i, (server, ctx)) in writes.iter().enumerate() {
        let ctx = match ctx {
            Some(k) => contexts[k % contexts.len()].clone(),
            None => key.context(),
        };
        key.update(&ctx, &servers[*server % servers.len()], i)
            .unwrap();
        contexts.push(key.context());
    }
    key
}

proptest! {
    /// After any writes and any replica syncs, siblings are pairwise
    /// concurrent (no sibling is obsolete), and sync is commutative and
    /// idempotent on the resulting sets.
    #[test]
    fn siblings_are_pairwise_concurrent_and_sync_converges(a in writes(), b in writes()) {
        let ra = run(&a, &["S1", "S2"]);
        let rb = run(&b, &["S3"]);
        let mut ab = ra.clone();
        ab.merge(&rb);
        let mut ba = rb.clone();
        ba.merge(&ra);
        for replica in [&ra, &rb, &ab] {
            let clocks: Vec<_> = replica.iter().map(|(c, _)| c.clone()).collect();
            for (i, x) in clocks.iter().enumerate() {
                for y in &clocks[i + 1..] {
                    prop_assert_eq!(x.compare(y), CausalOrder::Concurrent, "{:?} vs {:?}", x, y);
                }
            }
        }
        let set = |s: &Siblings<&'static str, usize>| s.iter().map(|(c, v)| (c.dot().clone(), *v)).collect::<BTreeSet<_>>();
        prop_assert_eq!(set(&ab), set(&ba));
        let mut again = ab.clone();
        again.merge(&rb);
        again.merge(&ra);
        prop_assert_eq!(set(&again), set(&ab));
        prop_assert_eq!(ab.context(), { let mut c = ra.context(); c.merge(&rb.context()); c });
    }

    /// Dots minted by one server for one key are unique, even when contexts
    /// are stale.
    #[test]
    fn dots_are_never_reused(a in writes()) {
        let mut key = Siblings::new();
        let mut contexts = vec![VersionVector::new()];
        let mut minted = BTreeSet::new();
        for (i, (_, ctx)) in a.iter().enumerate() {
            let ctx = match ctx {
                Some(k) => contexts[k % contexts.len()].clone(),
                None => key.context(),
            };
            let dot = key.update(&ctx, &"S", i).unwrap();
            prop_assert!(minted.insert(dot.clone()), "dot {} minted twice", dot);
            contexts.push(key.context());
        }
    }
}

/// Writes on one replica: each write reads the replica's context either now
/// or `stale` writes ago, as a slow client would.
fn diverge(
    replica: &mut Siblings<&'static str, usize>,
    server: &'static str,
    writes: &[Option<usize>],
    first_id: usize,
) {
    let mut reads = vec![replica.context()];
    for (k, stale) in writes.iter().enumerate() {
        let context = match stale {
            Some(back) => reads[reads.len() - 1 - back % reads.len()].clone(),
            None => replica.context(),
        };
        replica.update(&context, &server, first_id + k).unwrap();
        reads.push(replica.context());
    }
}

proptest! {
    /// Two replicas share a history, diverge, then sync (Preguiça et al.
    /// §5 "Sync"): the result is exactly the versions of either side that
    /// no version of the union has seen, the same in both directions, and
    /// nothing one side superseded comes back.
    #[test]
    fn sync_after_divergence_keeps_exactly_the_unseen_versions(
        shared in prop::collection::vec(prop::option::of(0usize..4), 0..6),
        left in prop::collection::vec(prop::option::of(0usize..4), 0..8),
        right in prop::collection::vec(prop::option::of(0usize..4), 0..8),
    ) {
        let mut origin = Siblings::new();
        diverge(&mut origin, "A", &shared, 0);
        let (mut a, mut b) = (origin.clone(), origin.clone());
        diverge(&mut a, "A", &left, 100);
        diverge(&mut b, "B", &right, 200);

        let union: Vec<_> = a.iter().chain(b.iter()).map(|(c, v)| (c.clone(), *v)).collect();
        let expected: BTreeSet<usize> = union
            .iter()
            .filter(|(clock, _)| !union.iter().any(|(other, _)| other.dot() != clock.dot() && other.history_contains(clock.dot())))
            .map(|(_, v)| *v)
            .collect();
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        let got_ab: BTreeSet<usize> = ab.values().copied().collect();
        let got_ba: BTreeSet<usize> = ba.values().copied().collect();
        prop_assert_eq!(&got_ab, &expected);
        prop_assert_eq!(&got_ba, &expected);
        prop_assert_eq!(ab.len(), expected.len(), "a value kept twice");
    }
}
