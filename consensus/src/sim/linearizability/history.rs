//! Recording a concurrent history of key-value operations, and the
//! per-key check (P-compositionality) that hands each register to the
//! search.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::hash::Hash;

use super::search::{Outcome, search_register};
use super::violation::{CheckError, describe_op};

/// The number of search states [`History::check`] explores per key before it
/// gives up with [`CheckError::Inconclusive`], unless set by
/// [`History::with_search_limit`].
pub const DEFAULT_SEARCH_LIMIT: u64 = 1_000_000;

/// Identifies one operation in a [`History`]; only meaningful for the
/// history that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub(super) usize);

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
/// [`CheckError::Malformed`].
#[derive(Debug, Clone)]
pub struct History<K, V> {
    /// Indexed by `OpId`.
    pub(super) ops: Vec<Operation<K, V>>,
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
    /// [`CheckError::Inconclusive`].
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
    /// [`CheckError::NotLinearizable`] on any key is preferred over a
    /// [`CheckError::Inconclusive`] on an earlier one. The history is not
    /// modified, and the answer depends only on what was recorded.
    pub fn check(&self) -> Result<(), CheckError<K, V>> {
        if let Some((reason, more)) = &self.malformed {
            let reason = match more {
                0 => reason.clone(),
                n => format!("{reason} (and {n} more problems)"),
            };
            return Err(CheckError::Malformed { reason });
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
                    return Err(CheckError::NotLinearizable {
                        key: key.clone(),
                        ops,
                        longest_prefix,
                    });
                }
                Outcome::Inconclusive { explored } => {
                    inconclusive.get_or_insert(CheckError::Inconclusive {
                        key: key.clone(),
                        explored,
                    });
                }
            }
        }
        inconclusive.map_or(Ok(()), Err)
    }
}
