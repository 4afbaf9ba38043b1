//! Unit cases, and a cross-check against a brute-force checker.

use std::collections::BTreeMap;

use super::*;

type H = History<&'static str, u32>;

fn put(key: &'static str, value: u32) -> KvOp<&'static str, u32> {
    KvOp::Put { key, value }
}

fn get(key: &'static str) -> KvOp<&'static str, u32> {
    KvOp::Get { key }
}

fn read(value: Option<u32>) -> KvResult<u32> {
    KvResult::Read(value)
}

/// Records an operation that completed.
fn op(
    h: &mut H,
    client: u64,
    op: KvOp<&'static str, u32>,
    span: (u64, u64),
    result: KvResult<u32>,
) -> OpId {
    let id = h.invoke(client, op, span.0);
    h.complete(id, result, span.1);
    id
}

fn assert_not_linearizable(h: &H, expected_key: &str) {
    match h.check() {
        Err(CheckError::NotLinearizable { key, .. }) => assert_eq!(key, expected_key),
        other => panic!("expected NotLinearizable on {expected_key:?}, got {other:?}"),
    }
}

fn assert_malformed(h: &H) {
    match h.check() {
        Err(CheckError::Malformed { reason }) => assert!(!reason.is_empty()),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn empty_history_is_linearizable() {
    let h = H::default();
    assert!(h.is_empty());
    assert_eq!(h.check(), Ok(()));
}

#[test]
fn sequential_history_is_linearizable() {
    let mut h = H::new();
    op(&mut h, 1, get("x"), (0, 1), read(None));
    op(&mut h, 1, put("x", 1), (2, 3), KvResult::Written);
    op(&mut h, 2, get("x"), (4, 5), read(Some(1)));
    op(&mut h, 2, put("x", 2), (6, 7), KvResult::Written);
    op(&mut h, 1, get("x"), (8, 9), read(Some(2)));
    assert_eq!(h.len(), 5);
    assert_eq!(h.pending(), 0);
    assert_eq!(h.check(), Ok(()));
}

#[test]
fn concurrent_get_may_see_either_value() {
    for seen in [Some(1), Some(2)] {
        let mut h = H::new();
        op(&mut h, 1, put("x", 1), (0, 1), KvResult::Written);
        op(&mut h, 2, put("x", 2), (10, 20), KvResult::Written);
        op(&mut h, 3, get("x"), (12, 18), read(seen));
        assert_eq!(h.check(), Ok(()), "concurrent get reading {seen:?}");
    }
}

#[test]
fn operations_touching_at_one_instant_are_concurrent() {
    // The put completes at 10 and the get is invoked at 10: neither
    // precedes the other, so the get may still read nothing.
    let mut h = H::new();
    op(&mut h, 1, put("x", 1), (0, 10), KvResult::Written);
    op(&mut h, 2, get("x"), (10, 20), read(None));
    assert_eq!(h.check(), Ok(()));
}

#[test]
fn stale_read_after_completed_write_is_a_violation() {
    let mut h = H::new();
    op(&mut h, 1, put("x", 1), (0, 1), KvResult::Written);
    op(&mut h, 1, put("x", 2), (2, 3), KvResult::Written);
    op(&mut h, 2, get("x"), (4, 5), read(Some(1)));
    assert_not_linearizable(&h, "x");
}

#[test]
fn read_of_a_value_never_written_is_a_violation() {
    let mut h = H::new();
    op(&mut h, 1, put("x", 1), (0, 10), KvResult::Written);
    op(&mut h, 2, get("x"), (5, 15), read(Some(7)));
    assert_not_linearizable(&h, "x");
}

#[test]
fn indeterminate_put_may_take_effect() {
    let mut h = H::new();
    op(&mut h, 1, put("x", 1), (0, 1), KvResult::Written);
    h.invoke(2, put("x", 2), 5);
    op(&mut h, 3, get("x"), (100, 101), read(Some(2)));
    assert_eq!(h.pending(), 1);
    assert_eq!(h.check(), Ok(()));
}

#[test]
fn indeterminate_put_may_never_take_effect() {
    let mut h = H::new();
    op(&mut h, 1, put("x", 1), (0, 1), KvResult::Written);
    h.invoke(2, put("x", 2), 5);
    op(&mut h, 3, get("x"), (100, 101), read(Some(1)));
    assert_eq!(h.check(), Ok(()));
}

#[test]
fn indeterminate_put_cannot_take_effect_before_its_invocation() {
    let mut h = H::new();
    op(&mut h, 1, get("x"), (0, 1), read(Some(2)));
    h.invoke(2, put("x", 2), 5);
    assert_not_linearizable(&h, "x");
}

#[test]
fn value_cannot_go_back_after_an_indeterminate_put_was_observed() {
    let mut h = H::new();
    op(&mut h, 1, put("x", 1), (0, 1), KvResult::Written);
    let lost = h.invoke(2, put("x", 2), 10);
    op(&mut h, 3, get("x"), (20, 25), read(Some(2)));
    op(&mut h, 3, get("x"), (30, 35), read(Some(1)));
    assert_not_linearizable(&h, "x");
    let message = h.check().unwrap_err().to_string();
    assert!(
        message.contains(&format!("{lost} client 2 [10, pending]")),
        "{message}"
    );
}

#[test]
fn keys_are_independent() {
    let mut h = H::new();
    op(&mut h, 1, put("a", 1), (0, 10), KvResult::Written);
    op(&mut h, 2, put("b", 1), (0, 10), KvResult::Written);
    // Fine on "a": the get is concurrent with the put.
    op(&mut h, 3, get("a"), (5, 15), read(None));
    // Stale on "b": the put completed before the get was invoked.
    op(&mut h, 3, get("b"), (20, 30), read(None));
    // Would be a violation if "a" and "b" were one register.
    op(&mut h, 4, get("a"), (40, 50), read(Some(1)));
    let err = h.check().unwrap_err();
    match &err {
        CheckError::NotLinearizable { key, ops, .. } => {
            assert_eq!(*key, "b");
            assert_eq!(ops.len(), 2);
            assert!(ops.iter().all(|op| *op.op.key() == "b"));
        }
        other => panic!("expected NotLinearizable on b, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.starts_with("operations on key \"b\""), "{message}");
    assert!(
        message.contains("#1 client 2 [0, 10] put \"b\" = 1 -> written"),
        "{message}"
    );
    assert!(
        message.contains("#3 client 3 [20, 30] get \"b\" -> read nothing"),
        "{message}"
    );
}

#[test]
fn violation_lists_operations_by_invocation_time() {
    let mut h = H::new();
    op(&mut h, 1, get("x"), (50, 60), read(Some(1)));
    op(&mut h, 2, put("x", 1), (0, 10), KvResult::Written);
    op(&mut h, 1, get("x"), (20, 30), read(Some(2)));
    let Err(CheckError::NotLinearizable { ops, .. }) = h.check() else {
        panic!("expected a violation");
    };
    let times: Vec<u64> = ops.iter().map(|op| op.invoked_at).collect();
    assert_eq!(times, [0, 20, 50]);
}

#[test]
fn pending_get_is_ignored() {
    let mut h = H::new();
    op(&mut h, 1, put("x", 1), (0, 1), KvResult::Written);
    h.invoke(2, get("x"), 2);
    op(&mut h, 1, put("x", 2), (5, 6), KvResult::Written);
    op(&mut h, 3, get("x"), (10, 11), read(Some(2)));
    assert_eq!(h.pending(), 1);
    assert_eq!(h.check(), Ok(()));
}

#[test]
fn completing_an_unknown_operation_is_malformed() {
    let mut h = H::new();
    op(&mut h, 1, put("x", 1), (0, 1), KvResult::Written);
    h.complete(OpId(7), KvResult::Written, 3);
    assert_malformed(&h);
}

#[test]
fn completing_twice_is_malformed() {
    let mut h = H::new();
    let id = op(&mut h, 1, put("x", 1), (0, 1), KvResult::Written);
    h.complete(id, KvResult::Written, 2);
    assert_malformed(&h);
}

#[test]
fn completing_before_invocation_is_malformed() {
    let mut h = H::new();
    op(&mut h, 1, put("x", 1), (10, 9), KvResult::Written);
    assert_malformed(&h);
}

#[test]
fn mismatched_results_are_malformed() {
    let mut h = H::new();
    op(&mut h, 1, get("x"), (0, 1), KvResult::Written);
    assert_malformed(&h);

    let mut h = H::new();
    op(&mut h, 1, put("x", 1), (0, 1), read(Some(1)));
    assert_malformed(&h);
}

#[test]
fn malformed_reason_counts_later_problems() {
    let mut h = H::new();
    h.complete(OpId(0), KvResult::Written, 1);
    h.complete(OpId(1), KvResult::Written, 1);
    h.complete(OpId(2), KvResult::Written, 1);
    let err = h.check().unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("malformed history: "), "{message}");
    assert!(message.contains("#0"), "{message}");
    assert!(message.contains("2 more problems"), "{message}");
}

/// Many overlapping puts followed by a read of a value nobody wrote: a
/// full search must visit every subset of the puts.
fn hard_history(limit: u64) -> H {
    let mut h = H::with_search_limit(limit);
    for client in 0..12 {
        op(
            &mut h,
            client,
            put("x", client as u32),
            (0, 100),
            KvResult::Written,
        );
    }
    op(&mut h, 99, get("x"), (200, 201), read(Some(1000)));
    h
}

#[test]
fn search_limit_makes_the_answer_inconclusive() {
    match hard_history(50).check() {
        Err(CheckError::Inconclusive { key, explored }) => {
            assert_eq!(key, "x");
            assert_eq!(explored, 51);
        }
        other => panic!("expected Inconclusive, got {other:?}"),
    }
    assert_not_linearizable(&hard_history(DEFAULT_SEARCH_LIMIT), "x");
}

#[test]
fn definite_violation_is_preferred_to_inconclusive() {
    let mut h = hard_history(50);
    op(&mut h, 1, put("y", 1), (0, 1), KvResult::Written);
    op(&mut h, 2, get("y"), (2, 3), read(None));
    assert_not_linearizable(&h, "y");
}

/// Tiny deterministic PRNG (xorshift64*), so failures replay by seed.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // SplitMix64 scrambling: a nonzero, well-mixed starting state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A small operation for the brute-force checker.
#[derive(Debug, Clone)]
struct Small {
    /// `Some(v)`: a put of `v`; `None`: a get.
    put: Option<u32>,
    /// What a completed get read.
    read: Option<u32>,
    invoked_at: u64,
    completed_at: Option<u64>,
}

fn random_small_history(rng: &mut XorShift) -> Vec<Small> {
    let n = 1 + rng.below(7) as usize;
    (0..n)
        .map(|_| {
            let invoked_at = rng.below(12);
            let completed_at = (rng.below(4) != 0).then(|| invoked_at + rng.below(6));
            let is_put = rng.below(2) == 0;
            Small {
                put: is_put.then(|| 1 + rng.below(2) as u32),
                read: match rng.below(3) {
                    0 => None,
                    r => Some(r as u32),
                },
                invoked_at,
                completed_at,
            }
        })
        .collect()
}

fn record(ops: &[Small]) -> H {
    let mut h = H::new();
    for (client, small) in ops.iter().enumerate() {
        let kv = match small.put {
            Some(v) => put("k", v),
            None => get("k"),
        };
        let id = h.invoke(client as u64, kv, small.invoked_at);
        if let Some(at) = small.completed_at {
            let result = match small.put {
                Some(_) => KvResult::Written,
                None => read(small.read),
            };
            h.complete(id, result, at);
        }
    }
    h
}

/// Whether `order` is a legal sequential run of a register.
fn legal(ops: &[Small], order: &[usize]) -> bool {
    let mut value = None;
    for &i in order {
        match ops[i].put {
            Some(v) => value = Some(v),
            None if ops[i].read != value => return false,
            None => {}
        }
    }
    true
}

fn precedes(a: &Small, b: &Small) -> bool {
    a.completed_at.is_some_and(|at| at < b.invoked_at)
}

/// Tries every order of `left` consistent with real time.
fn any_order(ops: &[Small], left: &mut Vec<usize>, order: &mut Vec<usize>) -> bool {
    if left.is_empty() {
        return legal(ops, order);
    }
    for k in 0..left.len() {
        let next = left[k];
        if left
            .iter()
            .any(|&o| o != next && precedes(&ops[o], &ops[next]))
        {
            continue;
        }
        left.remove(k);
        order.push(next);
        let found = any_order(ops, left, order);
        order.pop();
        left.insert(k, next);
        if found {
            return true;
        }
    }
    false
}

/// Linearizability by definition: some subset of the pending puts plus
/// all completed operations has a legal order consistent with real time.
fn brute_force_linearizable(ops: &[Small]) -> bool {
    let completed: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].completed_at.is_some())
        .collect();
    let pending_puts: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].completed_at.is_none() && ops[i].put.is_some())
        .collect();
    (0..1u32 << pending_puts.len()).any(|mask| {
        let mut left = completed.clone();
        for (bit, &i) in pending_puts.iter().enumerate() {
            if mask & (1 << bit) != 0 {
                left.push(i);
            }
        }
        any_order(ops, &mut left, &mut Vec::new())
    })
}

#[test]
fn agrees_with_brute_force_on_small_random_histories() {
    let (mut linearizable, mut not) = (0, 0);
    for seed in 0..4000 {
        let mut rng = XorShift::new(seed);
        let ops = random_small_history(&mut rng);
        let expected = brute_force_linearizable(&ops);
        let got = record(&ops).check();
        match (&got, expected) {
            (Ok(()), true) => linearizable += 1,
            (Err(CheckError::NotLinearizable { .. }), false) => not += 1,
            _ => panic!(
                "seed {seed}: check() = {got:?}, brute force linearizable = {expected}, \
                 history {ops:#?}"
            ),
        }
    }
    // Both answers must be well represented for the comparison to mean anything.
    assert!(
        linearizable > 500 && not > 500,
        "{linearizable} ok, {not} violations"
    );
}

/// A history linearizable by construction: each operation takes effect
/// at a random instant inside its interval; some never complete (and a
/// pending put may or may not take effect).
fn random_linearizable_history(seed: u64, ops_per_client: usize) -> H {
    let mut rng = XorShift::new(seed);
    let keys = ["a", "b", "c"];
    struct Planned {
        client: u64,
        key: &'static str,
        put: Option<u32>,
        invoked_at: u64,
        effect_at: Option<u64>,
        completed_at: Option<u64>,
    }
    let mut planned = Vec::new();
    for client in 0..5 {
        let mut now = rng.below(10);
        for _ in 0..ops_per_client {
            let invoked_at = now;
            let duration = 1 + rng.below(20);
            let effect_at = invoked_at + rng.below(duration + 1);
            let pending = rng.below(25) == 0;
            let is_put = rng.below(2) == 0;
            planned.push(Planned {
                client,
                key: keys[rng.below(3) as usize],
                put: is_put.then(|| rng.below(1000) as u32),
                invoked_at,
                // A pending put takes effect half the time; a pending
                // get never matters.
                effect_at: (!pending || (is_put && rng.below(2) == 0)).then_some(effect_at),
                completed_at: (!pending).then_some(invoked_at + duration),
            });
            // A client that timed out moves on while the op is in flight.
            now = invoked_at + if pending { 5 } else { duration + rng.below(5) };
        }
    }
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].effect_at, i));
    let mut values: BTreeMap<&str, u32> = BTreeMap::new();
    let mut results = vec![None; planned.len()];
    for i in order {
        let p = &planned[i];
        if p.effect_at.is_none() {
            continue;
        }
        results[i] = Some(match p.put {
            Some(v) => {
                values.insert(p.key, v);
                KvResult::Written
            }
            None => read(values.get(p.key).copied()),
        });
    }
    let mut h = H::new();
    for (p, result) in planned.iter().zip(results) {
        let kv = match p.put {
            Some(v) => put(p.key, v),
            None => get(p.key),
        };
        let id = h.invoke(p.client, kv, p.invoked_at);
        if let (Some(at), Some(result)) = (p.completed_at, result) {
            h.complete(id, result, at);
        }
    }
    h
}

#[test]
fn long_linearizable_histories_pass() {
    for seed in 0..20 {
        let h = random_linearizable_history(seed, 150);
        assert_eq!(h.len(), 750);
        assert_eq!(h.check(), Ok(()), "seed {seed}");
    }
}

#[test]
fn long_histories_with_one_bad_read_fail_on_its_key() {
    for seed in 0..20 {
        let mut h = random_linearizable_history(seed, 150);
        let Some(victim) = h
            .ops
            .iter_mut()
            .rev()
            .find(|op| matches!(op.completed, Some((_, KvResult::Read(_)))))
        else {
            continue;
        };
        let key = *victim.op.key();
        if let Some((_, result)) = &mut victim.completed {
            *result = read(Some(5000));
        }
        assert_not_linearizable(&h, key);
    }
}
