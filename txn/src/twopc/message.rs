//! What the protocol sends and what it logs.

use core::fmt;

/// A transaction's identifier, chosen by the caller of
/// [`Coordinator::begin`](super::Coordinator::begin) and unique per
/// coordinator (never reused, across restarts too). Participants key
/// transactions by (coordinator, `TxId`), so two coordinators may use the
/// same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TxId(pub u64);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// A participant's vote, chosen by the application
/// ([`Participant::vote`](super::Participant::vote)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Vote {
    /// Prepared: the participant can commit, and promises to wait for the
    /// decision.
    Yes,
    /// The participant aborts; so does the transaction.
    No,
    /// The participant changed nothing: it takes no part in phase 2 and
    /// logs nothing (R* read-only optimisation, Mohan et al. 1986 §3).
    ReadOnly,
}

/// A transaction's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Outcome {
    /// Every change is kept.
    Commit,
    /// Every change is undone.
    Abort,
}

/// The answer to a [`Message::DecisionRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Answer {
    /// The transaction committed.
    Commit,
    /// The transaction aborted (or, from a coordinator with no record of
    /// it, is presumed aborted).
    Abort,
    /// The sender does not know: it is prepared and undecided itself, voted
    /// read-only, or has no memory of the transaction.
    Unknown,
}

/// A protocol message. The sender is not inside: the transport reports it
/// (`from` in `handle_message`), and a coordinator's transactions are told
/// apart from another's by it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Message<N> {
    /// Coordinator → participant: phase 1, vote on `tx`. Carries every
    /// participant (sorted, without duplicates), so that a prepared
    /// participant knows whom to ask when the coordinator is silent
    /// (cooperative termination, Bernstein et al. 1987 §7.4).
    Prepare {
        /// The transaction.
        tx: TxId,
        /// All participants, strictly ascending.
        participants: Vec<N>,
    },
    /// Coordinator → its only participant: decide alone (one-phase
    /// commit); the participant answers with a [`Message::Vote`] that is
    /// its decision (Yes or ReadOnly: committed; No: aborted).
    CommitOnePhase {
        /// The transaction.
        tx: TxId,
    },
    /// Participant → coordinator: the vote (or, after CommitOnePhase, the
    /// participant's own decision).
    Vote {
        /// The transaction.
        tx: TxId,
        /// The vote.
        vote: Vote,
    },
    /// Coordinator → participant: phase 2.
    Decision {
        /// The transaction.
        tx: TxId,
        /// The outcome.
        outcome: Outcome,
    },
    /// Participant → coordinator: the Commit decision is durable here.
    /// Aborts are never acknowledged (presumed abort).
    Ack {
        /// The transaction.
        tx: TxId,
    },
    /// Prepared participant → coordinator and the other participants: what
    /// was decided?
    DecisionRequest {
        /// The transaction's coordinator (participants key transactions by
        /// it).
        coordinator: N,
        /// The transaction.
        tx: TxId,
    },
    /// The answer to a [`Message::DecisionRequest`].
    DecisionReply {
        /// The transaction's coordinator.
        coordinator: N,
        /// The transaction.
        tx: TxId,
        /// What the sender knows.
        answer: Answer,
    },
}

/// A log record, handed to the application in
/// [`Output::Persist`](super::Output::Persist) and given back, in the order
/// written, to [`Coordinator::recover`](super::Coordinator::recover) or
/// [`Participant::recover`](super::Participant::recover).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Record<N> {
    /// Coordinator, forced: `tx` commits; `participants` are the ones that
    /// voted Yes and must acknowledge. No Commit message leaves before it
    /// is durable (presumed abort: the only record a coordinator forces).
    Commit {
        /// The transaction.
        tx: TxId,
        /// The Yes voters, strictly ascending.
        participants: Vec<N>,
    },
    /// Coordinator, lazy: every Yes voter acknowledged the commit; the
    /// transaction is forgotten. The application may then drop both of
    /// its records.
    End {
        /// The transaction.
        tx: TxId,
    },
    /// Participant, forced: prepared to commit; the Yes vote leaves only
    /// once it is durable.
    Prepared {
        /// The coordinator.
        coordinator: N,
        /// The transaction.
        tx: TxId,
        /// All participants (from the Prepare), strictly ascending.
        participants: Vec<N>,
    },
    /// Participant, forced: committed (after a Commit decision, or in one
    /// phase). The acknowledgement and the application's
    /// [`Output::Decided`](super::Output::Decided) wait for it.
    Committed {
        /// The coordinator.
        coordinator: N,
        /// The transaction.
        tx: TxId,
    },
    /// Participant: aborted. Forced when the participant aborts on its own
    /// to answer another participant's DecisionRequest (the answer waits
    /// for it); lazy when a prepared participant learns of an abort.
    Aborted {
        /// The coordinator.
        coordinator: N,
        /// The transaction.
        tx: TxId,
    },
}
