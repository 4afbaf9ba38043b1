//! What a failed check reports.

use std::fmt::{self, Debug};

use super::history::{KvOp, KvResult, OpId, Operation};

/// Why a history is not linearizable (or could not be checked). Checking
/// never modifies the history: under every variant, nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckError<K, V> {
    /// No order of the operations on `key` respects both real time and
    /// register semantics: the system under test is wrong (or the history
    /// was recorded wrongly). Nothing changed.
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
    /// limit allows ([`History::with_search_limit`](super::History::with_search_limit)) without deciding. Says
    /// nothing about correctness; raise the limit or lower the concurrency
    /// per key. Nothing changed.
    Inconclusive {
        /// The register whose search was cut off.
        key: K,
        /// How many search states were explored before giving up.
        explored: u64,
    },
    /// The history was recorded inconsistently (a completion for an unknown
    /// operation, a second completion, a completion before the invocation,
    /// or a result of the wrong kind), so it was not checked. Nothing
    /// changed.
    Malformed {
        /// What was wrong, for the first problem found.
        reason: String,
    },
}

impl<K: Debug, V: Debug> fmt::Display for CheckError<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::NotLinearizable {
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
            CheckError::Inconclusive { key, explored } => write!(
                f,
                "gave up checking key {key:?} after exploring {explored} search states \
                 (raise the search limit)"
            ),
            CheckError::Malformed { reason } => write!(f, "malformed history: {reason}"),
        }
    }
}

impl<K: Debug, V: Debug> std::error::Error for CheckError<K, V> {}

pub(super) fn describe_op<K: Debug, V: Debug>(op: &KvOp<K, V>) -> String {
    match op {
        KvOp::Put { key, value } => format!("put {key:?} = {value:?}"),
        KvOp::Get { key } => format!("get {key:?}"),
    }
}
