//! Linearizability checking for key-value register histories.
//!
//! A history is *linearizable* (Herlihy & Wing, "Linearizability: a
//! correctness condition for concurrent objects", TOPLAS 12(3), 1990) when
//! every operation can be given one instant between its invocation and its
//! response such that, executed one at a time in that order, the operations
//! form a legal sequential run of the object. Here the object is a map of
//! registers that start absent: a put overwrites its key, a get reads the
//! last value put (or nothing).
//!
//! The search is Wing & Gong's ("Testing and verifying concurrent objects",
//! JPDC 17, 1993): repeatedly pick an operation that is minimal in real-time
//! order among those not yet linearized, apply it to the model, backtrack
//! when the model refuses. The history is kept as Lowe's doubly linked list
//! of call and return entries, so the candidates are exactly the calls before
//! the first remaining return, and configurations (set of linearized
//! operations, register value) already explored are memoized (Lowe, "Testing
//! for linearizability", CCPE 29(4), 2017), which turns the exponential
//! search into one bounded by the number of distinct configurations.
//!
//! Registers are independent, so linearizability is P-compositional (Horn &
//! Kroening, "Faster linearizability checking via P-compositionality",
//! FORTE 2015): the history is linearizable iff each key's subhistory is.
//! Each key is searched on its own, which keeps the cost exponential only in
//! the concurrency on one key, not in the whole history.
//!
//! Operations that never completed (the client timed out, its node crashed)
//! are indeterminate, as in Knossos and Porcupine: a pending put may take
//! effect at any instant after its invocation, or never; a pending get has no
//! effect and is ignored.
//!
//! ```
//! use dsys_consensus::sim::linearizability::{History, KvOp, KvResult, Violation};
//!
//! let mut history = History::new();
//! let put = history.invoke(1, KvOp::Put { key: "x", value: 1 }, 10);
//! history.complete(put, KvResult::Written, 20);
//! // A read that starts after the write finished must see it.
//! let get = history.invoke(2, KvOp::Get { key: "x" }, 30);
//! history.complete(get, KvResult::Read(None), 40);
//!
//! match history.check() {
//!     Err(Violation::NotLinearizable { key, .. }) => assert_eq!(key, "x"),
//!     other => panic!("expected a violation, got {other:?}"),
//! }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Debug};
use std::hash::Hash;

/// The number of search states [`History::check`] explores per key before it
/// gives up with [`Violation::Inconclusive`], unless set by
/// [`History::with_search_limit`].
pub const DEFAULT_SEARCH_LIMIT: u64 = 1_000_000;

/// Identifies one operation in a [`History`]; only meaningful for the
/// history that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(usize);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An operation a client invoked on the key-value store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOp<K, V> {
    /// Overwrite `key` with `value`.
    Put {
        /// The register written.
        key: K,
        /// The value written.
        value: V,
    },
    /// Read `key`.
    Get {
        /// The register read.
        key: K,
    },
}

impl<K, V> KvOp<K, V> {
    /// The register the operation touches.
    pub fn key(&self) -> &K {
        match self {
            KvOp::Put { key, .. } | KvOp::Get { key } => key,
        }
    }
}

/// What an operation returned to its client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvResult<V> {
    /// A put took effect.
    Written,
    /// What a get read (`None`: the key was never written).
    Read(Option<V>),
}

/// One operation as recorded in a [`History`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<K, V> {
    /// Its identifier in the history.
    pub id: OpId,
    /// The client that invoked it.
    pub client: u64,
    /// What was invoked.
    pub op: KvOp<K, V>,
    /// When it was invoked.
    pub invoked_at: u64,
    /// When it completed and what it returned; `None` while it is pending
    /// (indeterminate).
    pub completed: Option<(u64, KvResult<V>)>,
}

/// A concurrent history of key-value operations: invocations and responses
/// with their (simulated) times, recorded as they happen and checked for
/// linearizability afterwards.
///
/// Recording never fails: a response that makes no sense (unknown id,
/// completed twice, before its invocation, or with the wrong kind of result)
/// marks the history as malformed, and [`check`](Self::check) reports it as
/// [`Violation::Malformed`].
#[derive(Debug, Clone)]
pub struct History<K, V> {
    /// Indexed by `OpId`.
    ops: Vec<Operation<K, V>>,
    /// The first recording error, and how many followed it.
    malformed: Option<(String, usize)>,
    search_limit: u64,
}

impl<K: Ord + Clone + Hash + Debug, V: Eq + Clone + Hash + Debug> Default for History<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone + Hash + Debug, V: Eq + Clone + Hash + Debug> History<K, V> {
    /// An empty history that checks with [`DEFAULT_SEARCH_LIMIT`].
    pub fn new() -> Self {
        Self::with_search_limit(DEFAULT_SEARCH_LIMIT)
    }

    /// An empty history whose [`check`](Self::check) explores at most
    /// `limit` search states per key before answering
    /// [`Violation::Inconclusive`].
    pub fn with_search_limit(limit: u64) -> Self {
        Self {
            ops: Vec::new(),
            malformed: None,
            search_limit: limit,
        }
    }

    /// Records that `client` invoked `op` at time `at` (simulated time, any
    /// monotone `u64`). The operation is pending until
    /// [`complete`](Self::complete)d.
    pub fn invoke(&mut self, client: u64, op: KvOp<K, V>, at: u64) -> OpId {
        let id = OpId(self.ops.len());
        self.ops.push(Operation {
            id,
            client,
            op,
            invoked_at: at,
            completed: None,
        });
        id
    }

    /// Records that the operation returned `result` at `at` (which must be
    /// no earlier than its invocation). An inconsistent response is not
    /// recorded; it marks the history malformed instead.
    pub fn complete(&mut self, id: OpId, result: KvResult<V>, at: u64) {
        let Some(op) = self.ops.get_mut(id.0) else {
            let reason = format!("completion at {at} names {id}, which this history never invoked");
            return self.mark_malformed(reason);
        };
        let what = format!("{id} ({} by client {})", describe_op(&op.op), op.client);
        let problem = if let Some((first, _)) = &op.completed {
            Some(format!(
                "{what} completed twice: at {first} and again at {at}"
            ))
        } else if at < op.invoked_at {
            Some(format!(
                "{what} completed at {at}, before its invocation at {}",
                op.invoked_at
            ))
        } else {
            match (&op.op, &result) {
                (KvOp::Put { .. }, KvResult::Read(_)) => {
                    Some(format!("{what} is a put but completed with a read result"))
                }
                (KvOp::Get { .. }, KvResult::Written) => {
                    Some(format!("{what} is a get but completed as written"))
                }
                _ => None,
            }
        };
        match problem {
            Some(reason) => self.mark_malformed(reason),
            None => op.completed = Some((at, result)),
        }
    }

    fn mark_malformed(&mut self, reason: String) {
        match &mut self.malformed {
            Some((_, more)) => *more += 1,
            None => self.malformed = Some((reason, 0)),
        }
    }

    /// Number of operations invoked.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operation was invoked.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Number of operations that never completed.
    pub fn pending(&self) -> usize {
        self.ops.iter().filter(|op| op.completed.is_none()).count()
    }

    /// The operations in invocation-call order (indexed by [`OpId`]).
    pub fn operations(&self) -> &[Operation<K, V>] {
        &self.ops
    }

    /// The operation `id`, if this history recorded it.
    pub fn operation(&self, id: OpId) -> Option<&Operation<K, V>> {
        self.ops.get(id.0)
    }

    /// Whether the history is linearizable.
    ///
    /// Keys are checked independently in ascending order. A definite
    /// [`Violation::NotLinearizable`] on any key is preferred over a
    /// [`Violation::Inconclusive`] on an earlier one. The history is not
    /// modified, and the answer depends only on what was recorded.
    pub fn check(&self) -> Result<(), Violation<K, V>> {
        if let Some((reason, more)) = &self.malformed {
            let reason = match more {
                0 => reason.clone(),
                n => format!("{reason} (and {n} more problems)"),
            };
            return Err(Violation::Malformed { reason });
        }
        let mut by_key: BTreeMap<&K, Vec<usize>> = BTreeMap::new();
        for (index, op) in self.ops.iter().enumerate() {
            by_key.entry(op.op.key()).or_default().push(index);
        }
        let mut inconclusive = None;
        for (key, indices) in by_key {
            match search_register(&self.ops, &indices, self.search_limit) {
                Outcome::Linearizable => {}
                Outcome::NotLinearizable { longest_prefix } => {
                    let mut ops: Vec<Operation<K, V>> =
                        indices.iter().map(|&i| self.ops[i].clone()).collect();
                    ops.sort_by_key(|op| (op.invoked_at, op.id));
                    return Err(Violation::NotLinearizable {
                        key: key.clone(),
                        ops,
                        longest_prefix,
                    });
                }
                Outcome::Inconclusive { explored } => {
                    inconclusive.get_or_insert(Violation::Inconclusive {
                        key: key.clone(),
                        explored,
                    });
                }
            }
        }
        inconclusive.map_or(Ok(()), Err)
    }
}

/// Why a history is not linearizable (or could not be checked).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation<K, V> {
    /// No order of the operations on `key` respects both real time and
    /// register semantics: the system under test is wrong (or the history
    /// was recorded wrongly).
    NotLinearizable {
        /// The register with no valid linearization.
        key: K,
        /// Every operation on `key`, pending ones included, sorted by
        /// invocation time.
        ops: Vec<Operation<K, V>>,
        /// The longest sequence of operations the search managed to
        /// linearize, in order. The operations that could come next are
        /// where the fault usually is.
        longest_prefix: Vec<OpId>,
    },
    /// The search on `key` explored more states than the history's search
    /// limit allows ([`History::with_search_limit`]) without deciding. Says
    /// nothing about correctness; raise the limit or lower the concurrency
    /// per key.
    Inconclusive {
        /// The register whose search was cut off.
        key: K,
        /// How many search states were explored before giving up.
        explored: u64,
    },
    /// The history was recorded inconsistently (a completion for an unknown
    /// operation, a second completion, a completion before the invocation,
    /// or a result of the wrong kind), so it was not checked.
    Malformed {
        /// What was wrong, for the first problem found.
        reason: String,
    },
}

impl<K: Debug, V: Debug> fmt::Display for Violation<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotLinearizable {
                key,
                ops,
                longest_prefix,
            } => {
                write!(f, "operations on key {key:?} are not linearizable")?;
                write!(f, "\n  longest linearizable prefix: [")?;
                for (i, id) in longest_prefix.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{id}")?;
                }
                write!(f, "]\n  operations by invocation time:")?;
                for op in ops {
                    write!(
                        f,
                        "\n    {} client {} [{}, ",
                        op.id, op.client, op.invoked_at
                    )?;
                    match &op.completed {
                        Some((at, _)) => write!(f, "{at}]")?,
                        None => write!(f, "pending]")?,
                    }
                    write!(f, " {} -> ", describe_op(&op.op))?;
                    match &op.completed {
                        None => write!(f, "pending")?,
                        Some((_, KvResult::Written)) => write!(f, "written")?,
                        Some((_, KvResult::Read(None))) => write!(f, "read nothing")?,
                        Some((_, KvResult::Read(Some(v)))) => write!(f, "read {v:?}")?,
                    }
                }
                Ok(())
            }
            Violation::Inconclusive { key, explored } => write!(
                f,
                "gave up checking key {key:?} after exploring {explored} search states \
                 (raise the search limit)"
            ),
            Violation::Malformed { reason } => write!(f, "malformed history: {reason}"),
        }
    }
}

impl<K: Debug, V: Debug> std::error::Error for Violation<K, V> {}

fn describe_op<K: Debug, V: Debug>(op: &KvOp<K, V>) -> String {
    match op {
        KvOp::Put { key, value } => format!("put {key:?} = {value:?}"),
        KvOp::Get { key } => format!("get {key:?}"),
    }
}

/// The answer for one register.
enum Outcome {
    Linearizable,
    NotLinearizable { longest_prefix: Vec<OpId> },
    Inconclusive { explored: u64 },
}

/// An operation as the model sees it; values are interned, 0 being "absent".
#[derive(Clone, Copy)]
enum Step {
    Put(u64),
    Get(u64),
}

impl Step {
    /// The register value after applying the step to `value`, if legal.
    fn apply(self, value: u64) -> Option<u64> {
        match self {
            Step::Put(v) => Some(v),
            Step::Get(v) => (v == value).then_some(value),
        }
    }
}

/// One operation of the register under search.
struct RegisterOp {
    id: OpId,
    step: Step,
    invoked_at: u64,
    /// `None` for an indeterminate put.
    completed_at: Option<u64>,
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

/// Builds the model's view of one register's operations.
fn register_ops<'a, K, V: Eq + Hash>(
    ops: &'a [Operation<K, V>],
    indices: &[usize],
) -> Vec<RegisterOp> {
    let mut interned: HashMap<&V, u64> = HashMap::new();
    let mut intern = |value: Option<&'a V>| match value {
        None => 0,
        Some(v) => {
            let fresh = interned.len() as u64 + 1;
            *interned.entry(v).or_insert(fresh)
        }
    };
    let mut register = Vec::with_capacity(indices.len());
    for &i in indices {
        let op = &ops[i];
        let (step, completed_at) = match (&op.op, &op.completed) {
            (KvOp::Put { value, .. }, completed) => (
                Step::Put(intern(Some(value))),
                completed.as_ref().map(|c| c.0),
            ),
            (KvOp::Get { .. }, Some((at, KvResult::Read(read)))) => {
                (Step::Get(intern(read.as_ref())), Some(*at))
            }
            // A pending get has no effect; a get completed as written is
            // refused by `complete`.
            (KvOp::Get { .. }, _) => continue,
        };
        register.push(RegisterOp {
            id: op.id,
            step,
            invoked_at: op.invoked_at,
            completed_at,
        });
    }
    // A pending put whose value no get reads can always be left out: every
    // get linearized after it reads some later put's value (or it would read
    // this one's), so dropping it changes no result and only relaxes order.
    // Each one kept would double the configurations to explore.
    let read: HashSet<u64> = register
        .iter()
        .filter_map(|op| match op.step {
            Step::Get(v) => Some(v),
            Step::Put(_) => None,
        })
        .collect();
    register.retain(|op| match op.step {
        Step::Put(v) => op.completed_at.is_some() || read.contains(&v),
        Step::Get(_) => true,
    });
    register
}

/// Wing & Gong's search with Lowe's memoization, over one register.
fn search_register<K, V: Eq + Hash>(
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

#[cfg(test)]
mod tests {
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
            Err(Violation::NotLinearizable { key, .. }) => assert_eq!(key, expected_key),
            other => panic!("expected NotLinearizable on {expected_key:?}, got {other:?}"),
        }
    }

    fn assert_malformed(h: &H) {
        match h.check() {
            Err(Violation::Malformed { reason }) => assert!(!reason.is_empty()),
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
            Violation::NotLinearizable { key, ops, .. } => {
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
        let Err(Violation::NotLinearizable { ops, .. }) = h.check() else {
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
            Err(Violation::Inconclusive { key, explored }) => {
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
                (Err(Violation::NotLinearizable { .. }), false) => not += 1,
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
}
