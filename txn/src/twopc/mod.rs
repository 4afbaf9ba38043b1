//! Two-phase commit, sans-IO: a [`Coordinator`] and a [`Participant`] state
//! machine, each running many transactions at once, with **presumed abort**
//! and the **read-only** and **one-phase** optimisations of R* (Mohan,
//! Lindsay, Obermarck, "Transaction Management in the R* Distributed
//! Database Management System", TODS 1986, §3), and **cooperative
//! termination** (Bernstein, Hadzilacos, Goodman, "Concurrency Control and
//! Recovery in Database Systems", 1987, §7.4).
//!
//! Nothing here does I/O or reads a clock. Feed messages
//! (`handle_message(from, msg, now)`), timer ticks (`handle_timeout(now)`),
//! durability acknowledgements (`on_persisted(id)`) and the application's
//! commands (`begin`, `join`, `vote`); after each, drain
//! [`poll_output`](Coordinator::poll_output) until `None`, then read
//! [`poll_timeout`](Coordinator::poll_timeout). Outputs are
//! [`Output::Send`] (send the message; losing it is fine, the protocol
//! retries), [`Output::Persist`] (append the record to this node's log, in
//! order; when `force` is true, call `on_persisted(id)` once it is
//! durable), [`Output::VoteRequested`] (participant: answer with
//! [`Participant::vote`]) and [`Output::Decided`].
//!
//! # Durability: what must be on disk before what
//!
//! - Coordinator: [`Record::Commit`] is forced. It MUST be durable before
//!   `on_persisted` is called for it; no Commit message, and no Decided
//!   Commit, leaves before. [`Record::End`] is lazy (no acknowledgement
//!   awaited). Aborts are never logged and never acknowledged.
//! - Participant: [`Record::Prepared`] MUST be durable before its
//!   acknowledgement, which releases the Yes vote; [`Record::Committed`]
//!   likewise releases the Decided Commit and the Ack (in one phase: the
//!   Yes that tells the coordinator it committed); an [`Record::Aborted`]
//!   with `force` releases the Abort answers to other participants'
//!   DecisionRequests. An `Aborted` without `force` is lazy.
//! - Records are appended in the order handed out, and `on_persisted(id)`
//!   acknowledges every record up to `id`. A record not yet acknowledged
//!   may survive a crash or be lost, as may any suffix of the unacknowledged
//!   ones; a torn last record (the app's framing or checksum catches it) is
//!   one that was never acknowledged: drop it and what follows, and give
//!   the rest to `recover`.
//! - The application MUST NOT acknowledge a record that is not durable, and
//!   MUST NOT drop acknowledged records, except a coordinator's Commit and
//!   End once the End is written, and a participant's records of a
//!   transaction once it was decided and [`Config::decision_retention`]
//!   passed without a restart.
//!
//! - One phase: the participant decides alone, so it forces
//!   [`Record::Committed`] before its Yes leaves, and a forced
//!   [`Record::Aborted`] before its No leaves (the No is the transaction's
//!   outcome, and must survive a crash that would let a retried
//!   CommitOnePhase be answered Yes). The coordinator logs nothing.
//! - [`Config::decision_retention`] MUST exceed the longest time a message
//!   can live in the network, and the longest a coordinator may keep
//!   retrying a transaction the participant decided: a participant that
//!   forgot a decided transaction takes a replayed Prepare for a new one.
//!
//! After a restart, [`Coordinator::recover`] and [`Participant::recover`]
//! take the surviving records; every durable decision is delivered again as
//! [`Output::Decided`] (once per durable decision per incarnation: the
//! application applies decisions idempotently). Transactions a coordinator
//! had not committed are aborted (presumed abort); in-doubt participants
//! ask for the decision.
//!
//! # Blocking
//!
//! A participant that voted Yes waits for the decision: if the coordinator
//! is gone, it asks the others, and finishes when one of them knows the
//! outcome or has not voted yet (it then aborts, durably, and answers).
//! When every participant is prepared and none knows, they stay blocked
//! until the coordinator returns: two-phase commit's blocking problem.
//! A participant that never heard of a transaction (or voted read-only, or
//! forgot a decided one, or knows it only from a Prepare without having
//! [`join`](Participant::join)ed it) answers Unknown: it cannot tell whether
//! it voted in an earlier incarnation, since a read-only vote writes
//! nothing. Participants key transactions by (coordinator, [`TxId`]), so
//! coordinators choose their ids independently.
//!
//! # What the application and the transport must guarantee
//!
//! - **A coordinator never reuses a [`TxId`], across restarts too.** A
//!   restarted coordinator remembers nothing of what it had not committed
//!   (presumed abort), so [`begin`](Coordinator::begin) cannot detect the
//!   reuse, and reuse breaks atomicity: a participant still prepared for
//!   the old transaction answers the new Prepare (same list) with its old
//!   Yes, or, if the new one is one-phase, its old Yes arrives and reads as
//!   the one-phase commit; the old work then commits without the others.
//!   Derive ids from something durable, e.g. an epoch incremented and
//!   synced at every start in the high 32 bits and a counter in the rest.
//! - **`from` is authenticated, and a message reaches the node it was sent
//!   to.** Prepare, CommitOnePhase, Vote, Decision and Ack do not name the
//!   coordinator: participants key them by `from`, a coordinator by
//!   `TxId` alone. When coordinators' ids collide, a Vote delivered to the
//!   wrong coordinator, or a Decision with a wrong `from`, counts for
//!   another transaction. (DecisionRequest and DecisionReply name it, and
//!   answers from nodes outside the transaction are ignored.)
//! - A node that runs both roles routes Vote and Ack to its coordinator,
//!   a DecisionRequest to its coordinator when the request's `coordinator`
//!   is this node and to its participant otherwise, and the rest to its
//!   participant.
//! - What `recover` is given is durable: sync the log before reading it
//!   back. After a process crash the file may show writes still in the OS
//!   cache; a node that recovers from them, acts on them, and loses them in
//!   a power failure has acted on a history its disk does not hold.
//! - In one phase the coordinator resends CommitOnePhase, without bound,
//!   until it hears back; a partition longer than
//!   [`Config::decision_retention`] lets the participant forget what it
//!   decided, and the next CommitOnePhase is a new
//!   [`Output::VoteRequested`]. The application MUST then vote (ReadOnly
//!   if it committed, No if it rolled back) within
//!   [`Config::participant_timeout`], or the participant aborts on its own
//!   a transaction it had committed (and the coordinator, if the commit's
//!   Yes was lost, reports Abort). The same holds for a Prepare resent
//!   after the retention.
//!
//! Node ids travel on the wire through [`WireId`] (implemented for `u16`,
//! `u32`, `u64` and `String`); the state machines take any
//! [`NodeId`](crate::NodeId).
//!
//! # Example: the run loop
//!
//! ```
//! use std::time::Instant;
//! use dsys_txn::twopc::{Config, Coordinator, Message, Output, Outcome, Participant, TxId, Vote};
//!
//! let now = Instant::now();
//! let mut coord = Coordinator::new(Config::default(), 0u64).unwrap();
//! let mut parts: Vec<Participant<u64>> =
//!     (1..=2).map(|id| Participant::new(Config::default(), id).unwrap()).collect();
//! coord.begin(TxId(7), [1, 2], now).unwrap();
//! // Each participant's application starts its work on tx 7 (in a real
//! // system, when the coordinator's request for that work arrives): a
//! // participant that joined may abort on a peer's request while unprepared.
//! for p in parts.iter_mut() {
//!     p.join(0, TxId(7), now).unwrap();
//! }
//!
//! // The network: (from, to, message). Each node's log: acknowledged at once here.
//! let mut net: Vec<(u64, u64, Message<u64>)> = Vec::new();
//! let mut decided = Vec::new();
//! loop {
//!     while let Some(out) = coord.poll_output() {
//!         match out {
//!             Output::Send { to, message } => net.push((0, to, message)),
//!             Output::Persist { id, force, .. } => if force { coord.on_persisted(id) },
//!             Output::Decided { tx, outcome, .. } => decided.push((0, tx, outcome)),
//!             _ => {}
//!         }
//!     }
//!     for p in parts.iter_mut() {
//!         let me = *p.id();
//!         while let Some(out) = p.poll_output() {
//!             match out {
//!                 Output::Send { to, message } => net.push((me, to, message)),
//!                 // Write the record to disk, then:
//!                 Output::Persist { id, .. } => p.on_persisted(id),
//!                 Output::VoteRequested { coordinator, tx } => {
//!                     p.vote(&coordinator, tx, Vote::Yes, now).unwrap()
//!                 }
//!                 Output::Decided { tx, outcome, .. } => decided.push((me, tx, outcome)),
//!                 _ => {}
//!             }
//!         }
//!     }
//!     if net.is_empty() {
//!         break;
//!     }
//!     for (from, to, message) in std::mem::take(&mut net) {
//!         match to {
//!             0 => coord.handle_message(from, message, now),
//!             n => parts[n as usize - 1].handle_message(from, message, now),
//!         }
//!     }
//! }
//! assert_eq!(decided.len(), 3);
//! assert!(decided.iter().all(|(_, tx, o)| *tx == TxId(7) && *o == Outcome::Commit));
//! assert!(coord.is_empty()); // all acknowledged: End written, forgotten
//! ```

mod codec;
mod config;
mod coordinator;
mod message;
mod participant;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

pub use codec::{DecodeError, MAX_PARTICIPANTS, WireId};
pub use config::{Config, ConfigError};
pub use coordinator::{BeginError, Coordinator, CoordinatorRecoverError, CoordinatorStatus};
pub use message::{Answer, Message, Outcome, Record, TxId, Vote};
pub use participant::{
    JoinError, Participant, ParticipantRecoverError, ParticipantStatus, VoteError,
};

/// Names one [`Output::Persist`] within one incarnation of a node (ids
/// start again at 1 after a restart). Acknowledge with `on_persisted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PersistId(pub u64);

/// What a [`Coordinator`] or [`Participant`] asks of the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Output<N> {
    /// Send `message` to `to` (best effort: losses are retried).
    Send {
        /// The destination.
        to: N,
        /// The message.
        message: Message<N>,
    },
    /// Append `record` to this node's log, after every record handed out
    /// before it.
    Persist {
        /// Acknowledge with `on_persisted(id)` once durable.
        id: PersistId,
        /// The record.
        record: Record<N>,
        /// Something waits for this record: acknowledge it once it is
        /// durable (flush now). When false the record is lazy: write it
        /// with the next flush; acknowledging it is allowed and changes
        /// nothing.
        force: bool,
    },
    /// Participant: the coordinator asks for a vote on `tx`; answer with
    /// [`Participant::vote`] (or let it time out, which aborts).
    VoteRequested {
        /// The transaction's coordinator.
        coordinator: N,
        /// The transaction.
        tx: TxId,
    },
    /// `tx` is decided. Coordinator: `coordinator` is its own id; Commit
    /// comes once the Commit record is durable, Abort at once. Participant:
    /// Commit once the Committed record is durable (apply the changes),
    /// Abort when it aborts (roll back); read-only voters get none. Once
    /// per durable decision per incarnation: after a restart the same
    /// decision may come again.
    Decided {
        /// The transaction's coordinator.
        coordinator: N,
        /// The transaction.
        tx: TxId,
        /// The outcome.
        outcome: Outcome,
    },
}

/// Inputs that were ignored or refused, and the work the node did on its
/// own. Counters only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Counters {
    /// Messages about a transaction from a node that is neither its
    /// coordinator nor one of its participants.
    pub unknown_sender: u64,
    /// Duplicates, and messages about transactions no longer (or never)
    /// held: the network's replays and retries.
    pub late: u64,
    /// Messages that contradict the transaction's state or the receiver's
    /// role (a Commit to a participant that never prepared, a vote to a
    /// participant, a changed vote).
    pub unexpected: u64,
    /// Prepares whose participant list is empty, too long, unsorted or
    /// lacks the receiver.
    pub malformed: u64,
    /// `on_persisted` calls for ids never handed out or already
    /// acknowledged.
    pub bad_persist_acks: u64,
    /// New transactions refused because [`Config::max_transactions`] were
    /// held (Prepares ignored by a participant).
    pub refused_full: u64,
    /// Coordinator: transactions aborted because votes were late.
    /// Participant: unprepared transactions aborted by timeout.
    pub timeouts: u64,
    /// Participant: rounds of DecisionRequests sent (cooperative
    /// termination).
    pub decision_requests: u64,
}

/// `now + d`, or `now` if that overflows (an `Instant` near the end of
/// time): the timer then fires at the next `handle_timeout` instead of
/// panicking (`take_due` keeps it from firing again in the same call).
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

/// Removes and returns the timers due at `now`, earliest first.
fn take_due<K: Ord>(timers: &mut BTreeSet<(Instant, K)>, now: Instant) -> Vec<(Instant, K)> {
    let mut due = Vec::new();
    while timers.first().is_some_and(|(at, _)| *at <= now) {
        due.extend(timers.pop_first());
    }
    due
}

/// The numbering of persist outputs and what waits for each.
#[derive(Debug)]
struct PersistQueue<T> {
    next: u64,
    acked: u64,
    waiting: BTreeMap<u64, T>,
}

impl<T> Default for PersistQueue<T> {
    fn default() -> Self {
        Self {
            next: 1,
            acked: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> PersistQueue<T> {
    fn issue<N>(
        &mut self,
        waiter: Option<T>,
        outputs: &mut VecDeque<Output<N>>,
        record: Record<N>,
        force: bool,
    ) {
        let id = self.next;
        self.next += 1;
        if let Some(w) = waiter {
            self.waiting.insert(id, w);
        }
        outputs.push_back(Output::Persist {
            id: PersistId(id),
            record,
            force,
        });
    }

    /// What waited for the records up to `id`, in order; `None` for an id
    /// not handed out or already acknowledged.
    fn ack(&mut self, id: PersistId) -> Option<Vec<T>> {
        if id.0 <= self.acked || id.0 >= self.next {
            return None;
        }
        self.acked = id.0;
        let rest = self.waiting.split_off(&(id.0 + 1));
        let done = std::mem::replace(&mut self.waiting, rest);
        Some(done.into_values().collect())
    }
}
