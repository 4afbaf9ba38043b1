//! Wing & Gong's search ("Testing and verifying concurrent objects",
//! JPDC 17, 1993) over one register, on Lowe's list of call and return
//! entries with memoized configurations (Lowe, "Testing for
//! linearizability", CCPE 29(4), 2017).

use std::collections::HashSet;
use std::hash::Hash;

use super::history::{OpId, Operation};
use super::model::{RegisterOp, register_ops};

/// The answer for one register.
pub(super) enum Outcome {
    Linearizable,
    NotLinearizable { longest_prefix: Vec<OpId> },
    Inconclusive { explored: u64 },
}

const NIL: usize = usize::MAX;

/// A node of Lowe's entry list: the call or the return of `op`.
struct Node {
    prev: usize,
    next: usize,
    op: usize,
    is_call: bool,
}

/// The call and return entries of a register's operations in time order,
/// as a doubly linked list whose removals can be undone in LIFO order
/// (Knuth's dancing links), which is how the search backtracks.
struct EntryList {
    /// `nodes[0]` is the head sentinel.
    nodes: Vec<Node>,
    call: Vec<usize>,
    ret: Vec<Option<usize>>,
}

impl EntryList {
    fn new(ops: &[RegisterOp]) -> Self {
        // At equal times calls go first: an operation precedes another only
        // if it completed strictly before the other was invoked.
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
        for (i, op) in ops.iter().enumerate() {
            events.push((op.invoked_at, false, i));
            if let Some(at) = op.completed_at {
                events.push((at, true, i));
            }
        }
        events.sort_unstable();
        let mut nodes = Vec::with_capacity(events.len() + 1);
        nodes.push(Node {
            prev: NIL,
            next: if events.is_empty() { NIL } else { 1 },
            op: NIL,
            is_call: false,
        });
        let mut call = vec![NIL; ops.len()];
        let mut ret = vec![None; ops.len()];
        let count = events.len();
        for (i, &(_, is_return, op)) in events.iter().enumerate() {
            let node = i + 1;
            if is_return {
                ret[op] = Some(node);
            } else {
                call[op] = node;
            }
            nodes.push(Node {
                prev: i,
                next: if node == count { NIL } else { node + 1 },
                op,
                is_call: !is_return,
            });
        }
        Self { nodes, call, ret }
    }

    fn first(&self) -> usize {
        self.nodes[0].next
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.nodes[node].prev, self.nodes[node].next);
        self.nodes[prev].next = next;
        if next != NIL {
            self.nodes[next].prev = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.nodes[node].prev, self.nodes[node].next);
        self.nodes[prev].next = node;
        if next != NIL {
            self.nodes[next].prev = node;
        }
    }

    /// Takes `op`'s entries out of the list once it is linearized.
    fn lift(&mut self, op: usize) {
        self.unlink(self.call[op]);
        if let Some(ret) = self.ret[op] {
            self.unlink(ret);
        }
    }

    /// Undoes the matching [`lift`](Self::lift).
    fn unlift(&mut self, op: usize) {
        if let Some(ret) = self.ret[op] {
            self.relink(ret);
        }
        self.relink(self.call[op]);
    }
}

/// Wing & Gong's search with Lowe's memoization, over one register.
pub(super) fn search_register<K, V: Eq + Hash>(
    ops: &[Operation<K, V>],
    indices: &[usize],
    limit: u64,
) -> Outcome {
    let register = register_ops(ops, indices);
    let mut list = EntryList::new(&register);
    let words = register.len().div_ceil(64);
    // The configuration: bitset of linearized operations, then the register
    // value in the last word. It doubles as the memoization key.
    let mut config = vec![0u64; words + 1];
    let mut seen: HashSet<Vec<u64>> = HashSet::new();
    let mut explored: u64 = 0;
    // Completed operations still to linearize; pending puts may be left out.
    let mut remaining = register
        .iter()
        .filter(|op| op.completed_at.is_some())
        .count();
    // The linearized operations, with the register value before each.
    let mut stack: Vec<(usize, u64)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut entry = list.first();
    loop {
        if remaining == 0 {
            return Outcome::Linearizable;
        }
        // The candidates are the calls before the first return left: their
        // operations are minimal in real-time order.
        if entry != NIL && list.nodes[entry].is_call {
            let op = list.nodes[entry].op;
            let value = config[words];
            if let Some(next_value) = register[op].step.apply(value) {
                config[op / 64] |= 1 << (op % 64);
                config[words] = next_value;
                if !seen.contains(config.as_slice()) {
                    explored += 1;
                    if explored > limit {
                        return Outcome::Inconclusive { explored };
                    }
                    seen.insert(config.clone());
                    stack.push((op, value));
                    if register[op].completed_at.is_some() {
                        remaining -= 1;
                    }
                    list.lift(op);
                    if stack.len() > longest.len() {
                        longest = stack.iter().map(|&(op, _)| op).collect();
                    }
                    entry = list.first();
                    continue;
                }
                config[op / 64] &= !(1 << (op % 64));
                config[words] = value;
            }
            entry = list.nodes[entry].next;
        } else {
            // A return whose call could not be linearized before it (or, with
            // nothing left but pending calls, the end): backtrack.
            let Some((op, value)) = stack.pop() else {
                let longest_prefix = longest.iter().map(|&op| register[op].id).collect();
                return Outcome::NotLinearizable { longest_prefix };
            };
            config[op / 64] &= !(1 << (op % 64));
            config[words] = value;
            if register[op].completed_at.is_some() {
                remaining += 1;
            }
            list.unlift(op);
            entry = list.nodes[list.call[op]].next;
        }
    }
}
