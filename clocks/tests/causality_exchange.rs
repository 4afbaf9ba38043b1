//! Random message exchanges between nodes with skewed physical clocks.
//!
//! Happened-before is computed independently of any clock, as reachability
//! in the event graph (Lamport 1978 §2: program order plus send -> receive).
//! Against that ground truth:
//! - vector clocks characterise causality exactly: `V(e) < V(f)` iff `e -> f`
//!   (Mattern 1989, the strong clock condition);
//! - Lamport clocks and HLCs satisfy the clock condition: `e -> f` implies
//!   `C(e) < C(f)` (Lamport §3; Kulkarni et al. Theorem 1);
//! - the HLC's `l - pt` never exceeds the largest remote offset a node
//!   accepted (Kulkarni et al. Theorem 2 with CockroachDB's max-offset guard),
//!   and messages from clocks further ahead are rejected without effect.

mod common;
use dsys_clocks::{
    CausalOrder, Hlc, HlcConfig, LamportClock, ManualClock, PhysicalClock, Timestamp, UpdateError,
    VectorClock, WallTime,
};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::Duration;

/// An [`HlcConfig`] with `max_offset` set, built the way a user outside the
/// crate builds one.
fn hlc_config(max_offset: Duration) -> HlcConfig {
    let mut config = HlcConfig::default();
    config.max_offset = max_offset;
    config
}

const START_MS: u64 = 1_700_000_000_000;
const MAX_OFFSET_MS: u64 = 250;

#[derive(Debug, Clone)]
enum Op {
    Local(usize),
    Send {
        from: usize,
        to: usize,
    },
    /// Deliver the pending message at `index % pending.len()`: any order.
    Deliver(usize),
    Advance {
        node: usize,
        millis: u64,
    },
}

fn op(nodes: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..nodes).prop_map(Op::Local),
        3 => (0..nodes, 0..nodes).prop_map(|(from, to)| Op::Send { from, to }),
        3 => any::<usize>().prop_map(Op::Deliver),
        2 => (0..nodes, 0u64..40).prop_map(|(node, millis)| Op::Advance { node, millis }),
    ]
}

fn scenario() -> impl Strategy<Value = (Vec<i64>, Vec<Op>)> {
    (2usize..5).prop_flat_map(|nodes| {
        (
            // Skews up to 400 ms: pairs further apart than MAX_OFFSET_MS exist.
            prop::collection::vec(-200i64..200, nodes),
            prop::collection::vec(op(nodes), 1..120),
        )
    })
}

struct Event {
    node: usize,
    vector: VectorClock<usize>,
    lamport: u64,
    hlc: Timestamp,
    /// Indices of every event that happened before this one.
    past: BTreeSet<usize>,
}

struct Message {
    from: usize,
    to: usize,
    send_event: usize,
    vector: VectorClock<usize>,
    lamport: u64,
    hlc: Timestamp,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(400)))]

    #[test]
    fn clocks_agree_with_happened_before((skews, ops) in scenario()) {
        let n = skews.len();
        let physical: Vec<ManualClock> = skews.iter().map(|s| ManualClock::new(WallTime::from_millis(START_MS.saturating_add_signed(*s)))).collect();
        let config = hlc_config(Duration::from_millis(MAX_OFFSET_MS));
        let mut hlc: Vec<_> = physical.iter().map(|pt| Hlc::with_config(pt, config).unwrap()).collect();
        let mut lamport = vec![LamportClock::new(); n];
        let mut vector = vec![VectorClock::<usize>::new(); n];
        let mut last_event: Vec<Option<usize>> = vec![None; n];
        let mut events: Vec<Event> = Vec::new();
        let mut pending: Vec<Message> = Vec::new();
        let mut largest_accepted_ahead = 0u64;

        // Records an event at `node` whose extra causal predecessor (for a
        // receive) is `from_send`, and checks the HLC's distance to pt.
        let record = |events: &mut Vec<Event>, last_event: &mut Vec<Option<usize>>, node: usize, from_send: Option<usize>,
                          vector: VectorClock<usize>, lamport: u64, hlc: Timestamp| -> usize {
            let mut past = BTreeSet::new();
            for pred in last_event[node].into_iter().chain(from_send) {
                past.insert(pred);
                past.extend(events[pred].past.iter().copied());
            }
            events.push(Event { node, vector, lamport, hlc, past });
            last_event[node] = Some(events.len() - 1);
            events.len() - 1
        };

        for op in ops {
            match op {
                Op::Advance { node, millis } => physical[node].advance(Duration::from_millis(millis)),
                Op::Local(node) => {
                    vector[node].increment(&node).unwrap();
                    let l = lamport[node].tick().unwrap();
                    let h = hlc[node].now().unwrap();
                    record(&mut events, &mut last_event, node, None, vector[node].clone(), l, h);
                }
                Op::Send { from, to } => {
                    vector[from].increment(&from).unwrap();
                    let l = lamport[from].send().unwrap();
                    let h = hlc[from].now().unwrap();
                    let send_event = record(&mut events, &mut last_event, from, None, vector[from].clone(), l, h);
                    pending.push(Message { from, to, send_event, vector: vector[from].clone(), lamport: l, hlc: h });
                }
                Op::Deliver(index) => {
                    if pending.is_empty() {
                        continue;
                    }
                    let m = pending.remove(index % pending.len());
                    let to = m.to;
                    let before = hlc[to].last();
                    let pt = physical[to].now().as_millis();
                    match hlc[to].update(m.hlc) {
                        Err(UpdateError::RemoteTooFarAhead { .. }) => {
                            // Rejected: the message never happened for the receiver.
                            prop_assert!(m.hlc.millis() > pt + MAX_OFFSET_MS);
                            prop_assert_eq!(hlc[to].last(), before, "rejected update changed the clock");
                        }
                        Err(other) => prop_assert!(false, "unexpected error {}", other),
                        Ok(h) => {
                            prop_assert!(m.hlc.millis() <= pt + MAX_OFFSET_MS, "accepted a remote {} from {} too far ahead of pt {}", m.hlc, m.from, pt);
                            largest_accepted_ahead = largest_accepted_ahead.max(m.hlc.millis().saturating_sub(pt));
                            vector[to].receive(&to, &m.vector).unwrap();
                            let l = lamport[to].receive(m.lamport).unwrap();
                            record(&mut events, &mut last_event, to, Some(m.send_event), vector[to].clone(), l, h);
                        }
                    }
                }
            }
            // Theorem 2 with the guard: every node's l stays within the largest
            // accepted offset of its own physical clock (which only moves forward here).
            for node in 0..n {
                let l = hlc[node].last().millis();
                let pt = physical[node].now().as_millis();
                prop_assert!(l <= pt + largest_accepted_ahead, "node {} l={} pt={} bound={}", node, l, pt, largest_accepted_ahead);
            }
        }

        for (fi, f) in events.iter().enumerate() {
            for (ei, e) in events.iter().enumerate() {
                let happened_before = f.past.contains(&ei);
                let expected = if ei == fi {
                    CausalOrder::Equal
                } else if happened_before {
                    CausalOrder::Before
                } else if e.past.contains(&fi) {
                    CausalOrder::After
                } else {
                    CausalOrder::Concurrent
                };
                prop_assert_eq!(e.vector.compare(&f.vector), expected, "events {} (node {}) and {} (node {})", ei, e.node, fi, f.node);
                if happened_before {
                    prop_assert!(e.lamport < f.lamport, "Lamport: {} -> {} but {} >= {}", ei, fi, e.lamport, f.lamport);
                    prop_assert!(e.hlc < f.hlc, "HLC: {} -> {} but {} >= {}", ei, fi, e.hlc, f.hlc);
                }
            }
        }
    }
}
