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
//! use dsys_consensus::sim::linearizability::{CheckError, History, KvOp, KvResult};
//!
//! let mut history = History::new();
//! let put = history.invoke(1, KvOp::Put { key: "x", value: 1 }, 10);
//! history.complete(put, KvResult::Written, 20);
//! // A read that starts after the write finished must see it.
//! let get = history.invoke(2, KvOp::Get { key: "x" }, 30);
//! history.complete(get, KvResult::Read(None), 40);
//!
//! match history.check() {
//!     Err(CheckError::NotLinearizable { key, .. }) => assert_eq!(key, "x"),
//!     other => panic!("expected a violation, got {other:?}"),
//! }
//! ```
//!
//! The checker is laid out along its concepts: recording the history and
//! asking for the check (`history.rs`), the sequential model of a
//! register (`model.rs`), the Wing & Gong search with Lowe's memoization
//! (`search.rs`), and what a failed check reports (`violation.rs`).

mod history;
mod model;
mod search;
mod violation;

pub use history::{DEFAULT_SEARCH_LIMIT, History, KvOp, KvResult, OpId, Operation};
pub use violation::CheckError;

#[cfg(test)]
mod tests;
