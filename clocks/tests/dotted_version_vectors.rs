//! Dotted version vectors keep exactly the truly concurrent versions of a key
//! (Preguiça et al. 2010, §5), where per-server version vectors lose writes
//! and per-client ones grow without bound.

use dsys_clocks::{CausalOrder, Siblings, VersionVector};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// Two clients write the same key through one server, each reusing the
/// context its own previous write returned and never reading the other's
/// writes (the "blind write" pattern behind Riak's sibling explosion).
/// With DVVs the key holds exactly one sibling per client: the latest write
/// of each, and nothing older.
#[test]
fn alternating_blind_writers_never_explode_siblings() {
    let mut key: Siblings<&str, String> = Siblings::new();
    let mut ctx = [VersionVector::new(), VersionVector::new()];
    for round in 0..500 {
        for (client, ctx) in ctx.iter_mut().enumerate() {
            let value = format!("c{client}-{round}");
            let dot = key.update(ctx, &"S", value).unwrap();
            // The client's next context: what it wrote on top of.
            ctx.add(&dot);
        }
        let values: BTreeSet<_> = key.values().cloned().collect();
        let expected: BTreeSet<_> = [format!("c0-{round}"), format!("c1-{round}")].into();
        assert_eq!(values, expected, "round {round}");
    }
    assert_eq!(key.len(), 2);
    // Only the server's entry appears in any clock: no per-client growth.
    assert!(
        key.iter()
            .all(|(clock, _)| clock.to_version_vector().len() == 1)
    );
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
