//! The coordinator: phase 1 (Prepare, votes), the forced Commit record,
//! phase 2 (Decision, acknowledgements) and the lazy End record, with
//! presumed abort (Mohan, Lindsay, Obermarck 1986, §3).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use super::message::{Answer, Message, Outcome, Record, TxId, Vote};
use super::{Config, ConfigError, Counters, Output, PersistId, PersistQueue, later};
use crate::NodeId;

/// Why [`Coordinator::begin`] refused a transaction. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BeginError {
    /// The coordinator already holds a transaction with this id. (Ids of
    /// forgotten transactions cannot be detected: never reuse one.)
    #[error("transaction {0} already exists")]
    Duplicate(TxId),
    /// The participant list is empty.
    #[error("a transaction needs at least one participant")]
    NoParticipants,
    /// More participants than [`Config::max_participants`].
    #[error("{count} participants, more than the {max} allowed")]
    TooManyParticipants {
        /// The count given.
        count: usize,
        /// [`Config::max_participants`].
        max: usize,
    },
    /// A participant is listed twice.
    #[error("a participant is listed twice")]
    DuplicateParticipant,
    /// [`Config::max_transactions`] transactions are in memory.
    #[error("too many transactions in progress")]
    Full,
}

/// Why [`Coordinator::recover`] refused the records. Nothing was built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinatorRecoverError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A participant's record ([`Record::Prepared`], `Committed`,
    /// `Aborted`) is in the coordinator's log.
    #[error("a participant record for {0} in a coordinator log")]
    WrongRole(TxId),
    /// A Commit record has an empty, oversized or unsorted participant
    /// list, or a second Commit record for the same transaction.
    #[error("a malformed commit record for {0}")]
    Malformed(TxId),
}

/// Where a transaction stands at the coordinator
/// ([`Coordinator::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoordinatorStatus {
    /// Phase 1: waiting for votes.
    Preparing,
    /// CommitOnePhase sent; waiting for the participant's decision.
    OnePhase,
    /// The Commit record is written and not yet acknowledged.
    LoggingCommit,
    /// Committed; waiting for the Yes voters' acknowledgements.
    Committing,
}

#[derive(Debug)]
#[allow(clippy::enum_variant_names)] // the protocol's names, as in CoordinatorStatus
enum Phase<N> {
    Preparing {
        votes: BTreeMap<N, Vote>,
        deadline: Instant,
    },
    OnePhase,
    LoggingCommit {
        yes: Vec<N>,
        decided_at: Instant,
    },
    Committing {
        unacked: BTreeSet<N>,
    },
}

#[derive(Debug)]
struct Tx<N> {
    participants: Vec<N>,
    phase: Phase<N>,
    wake: Option<Instant>,
}

/// The two-phase-commit coordinator of many concurrent transactions.
///
/// Methods, by group:
/// - commands: [`begin`](Self::begin);
/// - inputs: [`handle_message`](Self::handle_message),
///   [`handle_timeout`](Self::handle_timeout),
///   [`on_persisted`](Self::on_persisted);
/// - outputs: [`poll_output`](Self::poll_output) (drain until `None` after
///   every input), then [`poll_timeout`](Self::poll_timeout);
/// - getters: [`status`](Self::status), [`len`](Self::len),
///   [`counters`](Self::counters).
///
/// Durability (presumed abort): the application MUST make a
/// [`Record::Commit`] durable before calling `on_persisted` for it; the
/// Commit messages (and the app's [`Output::Decided`]) come out only then.
/// [`Record::End`] is lazy: write it whenever. Nothing else is logged: a
/// coordinator that restarts has forgotten every transaction not committed,
/// and they are aborted (it answers Abort to anyone who asks).
#[derive(Debug)]
pub struct Coordinator<N> {
    id: N,
    config: Config,
    txs: BTreeMap<TxId, Tx<N>>,
    timers: BTreeSet<(Instant, TxId)>,
    persists: PersistQueue<TxId>,
    outputs: VecDeque<Output<N>>,
    counters: Counters,
}

impl<N: NodeId> Coordinator<N> {
    /// A coordinator with no transactions (a first start, or a restart
    /// whose log holds no Commit without End).
    ///
    /// # Errors
    /// An invalid `config`.
    pub fn new(config: Config, id: N) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            id,
            config,
            txs: BTreeMap::new(),
            timers: BTreeSet::new(),
            persists: PersistQueue::default(),
            outputs: VecDeque::new(),
            counters: Counters::default(),
        })
    }

    /// Rebuilds a coordinator after a restart from the records it handed
    /// out, in the order they were written (records not acknowledged by
    /// `on_persisted` may be present or absent; a torn last record is the
    /// application's log's to drop). Every Commit without an End is
    /// committed again: its Decided output is delivered again (apply it
    /// idempotently) and Commit is resent to every Yes voter until each
    /// acknowledges. Transactions without a Commit record are presumed
    /// aborted. An End without a Commit (the app compacted the Commit) is
    /// ignored.
    ///
    /// # Errors
    /// An invalid `config`, or records no coordinator writes.
    pub fn recover(
        config: Config,
        id: N,
        records: impl IntoIterator<Item = Record<N>>,
        now: Instant,
    ) -> Result<Self, CoordinatorRecoverError> {
        let mut this = Self::new(config, id)?;
        let mut open: BTreeMap<TxId, Vec<N>> = BTreeMap::new();
        let mut ended = BTreeSet::new();
        for record in records {
            match record {
                Record::Commit { tx, participants } => {
                    let sorted = participants.windows(2).all(|w| w[0] < w[1]);
                    if participants.is_empty()
                        || participants.len() > this.config.max_participants
                        || !sorted
                        || open.contains_key(&tx)
                        || ended.contains(&tx)
                    {
                        return Err(CoordinatorRecoverError::Malformed(tx));
                    }
                    open.insert(tx, participants);
                }
                Record::End { tx } => {
                    open.remove(&tx);
                    ended.insert(tx);
                }
                Record::Prepared { tx, .. }
                | Record::Committed { tx, .. }
                | Record::Aborted { tx, .. } => {
                    return Err(CoordinatorRecoverError::WrongRole(tx));
                }
            }
        }
        for (tx, yes) in open {
            this.outputs.push_back(Output::Decided {
                coordinator: this.id.clone(),
                tx,
                outcome: Outcome::Commit,
            });
            this.txs.insert(
                tx,
                Tx {
                    participants: yes.clone(),
                    phase: Phase::Committing {
                        unacked: yes.into_iter().collect(),
                    },
                    wake: None,
                },
            );
            // Resend at once: the Commit messages may never have left.
            this.set_wake(tx, Some(now));
        }
        Ok(this)
    }

    /// This coordinator's id.
    pub fn id(&self) -> &N {
        &self.id
    }

    /// Starts transaction `tx` with `participants` (any order): sends
    /// Prepare to each (or, with one participant and
    /// [`Config::one_phase`], CommitOnePhase). `tx` MUST be new for this
    /// coordinator, across restarts too.
    ///
    /// In one phase the participant decides, so the coordinator never
    /// aborts on its own: it resends CommitOnePhase until the answer comes
    /// (after a coordinator restart the outcome is the participant's to
    /// tell; the coordinator has no record of it).
    ///
    /// # Errors
    /// [`BeginError`]; nothing changed.
    pub fn begin(
        &mut self,
        tx: TxId,
        participants: impl IntoIterator<Item = N>,
        now: Instant,
    ) -> Result<(), BeginError> {
        if self.txs.contains_key(&tx) {
            return Err(BeginError::Duplicate(tx));
        }
        if self.txs.len() >= self.config.max_transactions {
            return Err(BeginError::Full);
        }
        let max = self.config.max_participants;
        let mut list = Vec::new();
        for p in participants {
            if list.len() == max {
                return Err(BeginError::TooManyParticipants {
                    count: max + 1,
                    max,
                });
            }
            list.push(p);
        }
        if list.is_empty() {
            return Err(BeginError::NoParticipants);
        }
        list.sort();
        if list.windows(2).any(|w| w[0] == w[1]) {
            return Err(BeginError::DuplicateParticipant);
        }
        let retry = later(now, self.config.retry_interval);
        let (phase, wake) = if list.len() == 1 && self.config.one_phase {
            self.send(list[0].clone(), Message::CommitOnePhase { tx });
            (Phase::OnePhase, retry)
        } else {
            for p in &list {
                self.send(
                    p.clone(),
                    Message::Prepare {
                        tx,
                        participants: list.clone(),
                    },
                );
            }
            let deadline = later(now, self.config.vote_timeout);
            (
                Phase::Preparing {
                    votes: BTreeMap::new(),
                    deadline,
                },
                retry.min(deadline),
            )
        };
        self.txs.insert(
            tx,
            Tx {
                participants: list,
                phase,
                wake: None,
            },
        );
        self.set_wake(tx, Some(wake));
        Ok(())
    }

    /// A message from `from`. Messages about transactions this coordinator
    /// does not hold, duplicates, and messages from nodes that are not the
    /// transaction's participants are ignored and counted, except a
    /// DecisionRequest about an unknown transaction, which is answered
    /// Abort (presumed abort, §3).
    pub fn handle_message(&mut self, from: N, message: Message<N>, now: Instant) {
        match message {
            Message::Vote { tx, vote } => self.on_vote(from, tx, vote, now),
            Message::Ack { tx } => self.on_ack(from, tx),
            Message::DecisionRequest { coordinator, tx } => {
                if coordinator != self.id {
                    self.counters.unexpected += 1;
                    return;
                }
                let answer = match self.txs.get(&tx) {
                    None => Answer::Abort,
                    Some(t) if t.participants.binary_search(&from).is_err() => {
                        // A committing tx lists only its Yes voters; a
                        // read-only voter never asks.
                        self.counters.unknown_sender += 1;
                        return;
                    }
                    Some(t) => match t.phase {
                        Phase::Committing { .. } => Answer::Commit,
                        _ => Answer::Unknown,
                    },
                };
                let coordinator = self.id.clone();
                self.send(
                    from,
                    Message::DecisionReply {
                        coordinator,
                        tx,
                        answer,
                    },
                );
            }
            Message::Prepare { .. }
            | Message::CommitOnePhase { .. }
            | Message::Decision { .. }
            | Message::DecisionReply { .. } => self.counters.unexpected += 1,
        }
    }

    fn on_vote(&mut self, from: N, tx: TxId, vote: Vote, now: Instant) {
        let Some(t) = self.txs.get_mut(&tx) else {
            self.counters.late += 1;
            return;
        };
        if t.participants.binary_search(&from).is_err() {
            self.counters.unknown_sender += 1;
            return;
        }
        match &mut t.phase {
            Phase::Preparing { votes, .. } => {
                if let Some(old) = votes.get(&from) {
                    if *old == vote {
                        self.counters.late += 1;
                    } else {
                        self.counters.unexpected += 1;
                    }
                    return;
                }
                votes.insert(from, vote);
                if vote == Vote::No {
                    self.abort(tx);
                } else if votes.len() == t.participants.len() {
                    self.decide_commit(tx, now);
                }
            }
            Phase::OnePhase => {
                // The participant's vote is its decision.
                let outcome = match vote {
                    Vote::Yes | Vote::ReadOnly => Outcome::Commit,
                    Vote::No => Outcome::Abort,
                };
                self.decided(tx, outcome);
                self.forget(tx);
            }
            Phase::LoggingCommit { .. } | Phase::Committing { .. } => {
                if vote == Vote::No {
                    self.counters.unexpected += 1;
                } else {
                    self.counters.late += 1;
                }
            }
        }
    }

    fn on_ack(&mut self, from: N, tx: TxId) {
        let Some(t) = self.txs.get_mut(&tx) else {
            self.counters.late += 1;
            return;
        };
        if t.participants.binary_search(&from).is_err() {
            self.counters.unknown_sender += 1;
            return;
        }
        match &mut t.phase {
            Phase::Committing { unacked } => {
                if !unacked.remove(&from) {
                    self.counters.late += 1;
                    return;
                }
                if unacked.is_empty() {
                    // §3: every subordinate has the commit; the End record
                    // need not be forced, and the transaction is forgotten.
                    self.persists
                        .issue(None, &mut self.outputs, Record::End { tx }, false);
                    self.forget(tx);
                }
            }
            _ => self.counters.unexpected += 1,
        }
    }

    fn decide_commit(&mut self, tx: TxId, now: Instant) {
        let t = self.txs.get_mut(&tx).expect("called for a held tx");
        let Phase::Preparing { votes, .. } = &t.phase else {
            unreachable!("decide_commit is called in phase 1 only")
        };
        let yes: Vec<N> = votes
            .iter()
            .filter(|(_, v)| **v == Vote::Yes)
            .map(|(p, _)| p.clone())
            .collect();
        if yes.is_empty() {
            // Read-only optimisation: nobody changed anything, there is no
            // phase 2 and nothing to log.
            self.decided(tx, Outcome::Commit);
            self.forget(tx);
            return;
        }
        t.participants.clone_from(&yes);
        t.phase = Phase::LoggingCommit {
            yes: yes.clone(),
            decided_at: now,
        };
        self.set_wake(tx, None);
        self.persists.issue(
            Some(tx),
            &mut self.outputs,
            Record::Commit {
                tx,
                participants: yes,
            },
            true,
        );
    }

    /// Presumed abort: nothing is logged and nobody acknowledges; the
    /// Abort is sent once to every participant that may be prepared, and
    /// whoever misses it asks and is told Abort by default.
    fn abort(&mut self, tx: TxId) {
        let t = self.txs.get(&tx).expect("called for a held tx");
        let Phase::Preparing { votes, .. } = &t.phase else {
            unreachable!("abort is called in phase 1 only")
        };
        let targets: Vec<N> = t
            .participants
            .iter()
            .filter(|p| !matches!(votes.get(*p), Some(Vote::No | Vote::ReadOnly)))
            .cloned()
            .collect();
        for p in targets {
            self.send(
                p,
                Message::Decision {
                    tx,
                    outcome: Outcome::Abort,
                },
            );
        }
        self.decided(tx, Outcome::Abort);
        self.forget(tx);
    }

    /// Acknowledges that every record up to `id` is durable (records are
    /// written in order; acknowledging `id` acknowledges all before it).
    /// Releases the Commit messages of transactions whose Commit record is
    /// now durable. Unknown or repeated ids are ignored and counted.
    pub fn on_persisted(&mut self, id: PersistId) {
        let Some(done) = self.persists.ack(id) else {
            self.counters.bad_persist_acks += 1;
            return;
        };
        for tx in done {
            let Some(t) = self.txs.get_mut(&tx) else {
                continue;
            };
            let Phase::LoggingCommit { yes, decided_at } = &t.phase else {
                continue;
            };
            let (yes, decided_at) = (yes.clone(), *decided_at);
            t.phase = Phase::Committing {
                unacked: yes.iter().cloned().collect(),
            };
            for p in yes {
                self.send(
                    p,
                    Message::Decision {
                        tx,
                        outcome: Outcome::Commit,
                    },
                );
            }
            self.decided(tx, Outcome::Commit);
            self.set_wake(tx, Some(later(decided_at, self.config.retry_interval)));
        }
    }

    /// Fires every timer due at `now`: resends Prepare to silent
    /// participants, aborts transactions whose votes are late, resends
    /// Commit and CommitOnePhase. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, tx)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let t = self.txs.get_mut(&tx).expect("timers hold held txs only");
            t.wake = None;
            let retry = later(now, self.config.retry_interval);
            match &t.phase {
                Phase::Preparing { votes, deadline } => {
                    if now >= *deadline {
                        self.counters.timeouts += 1;
                        self.abort(tx);
                        continue;
                    }
                    let deadline = *deadline;
                    let silent: Vec<N> = t
                        .participants
                        .iter()
                        .filter(|p| !votes.contains_key(*p))
                        .cloned()
                        .collect();
                    let participants = t.participants.clone();
                    for p in silent {
                        self.send(
                            p,
                            Message::Prepare {
                                tx,
                                participants: participants.clone(),
                            },
                        );
                    }
                    self.set_wake(tx, Some(retry.min(deadline)));
                }
                Phase::OnePhase => {
                    let p = t.participants[0].clone();
                    self.send(p, Message::CommitOnePhase { tx });
                    self.set_wake(tx, Some(retry));
                }
                Phase::Committing { unacked } => {
                    let unacked: Vec<N> = unacked.iter().cloned().collect();
                    for p in unacked {
                        self.send(
                            p,
                            Message::Decision {
                                tx,
                                outcome: Outcome::Commit,
                            },
                        );
                    }
                    self.set_wake(tx, Some(retry));
                }
                Phase::LoggingCommit { .. } => {}
            }
        }
    }

    /// The next output: messages to send, records to persist, decisions.
    /// Drain until `None` after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output<N>> {
        self.outputs.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Where `tx` stands, or `None` if it is not held (finished, aborted,
    /// forgotten, or never begun).
    #[must_use]
    pub fn status(&self, tx: TxId) -> Option<CoordinatorStatus> {
        self.txs.get(&tx).map(|t| match t.phase {
            Phase::Preparing { .. } => CoordinatorStatus::Preparing,
            Phase::OnePhase => CoordinatorStatus::OnePhase,
            Phase::LoggingCommit { .. } => CoordinatorStatus::LoggingCommit,
            Phase::Committing { .. } => CoordinatorStatus::Committing,
        })
    }

    /// How many transactions are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether no transaction is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Ignored and refused inputs so far.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn send(&mut self, to: N, message: Message<N>) {
        self.outputs.push_back(Output::Send { to, message });
    }

    fn decided(&mut self, tx: TxId, outcome: Outcome) {
        self.outputs.push_back(Output::Decided {
            coordinator: self.id.clone(),
            tx,
            outcome,
        });
    }

    fn forget(&mut self, tx: TxId) {
        self.set_wake(tx, None);
        self.txs.remove(&tx);
    }

    fn set_wake(&mut self, tx: TxId, wake: Option<Instant>) {
        let Some(t) = self.txs.get_mut(&tx) else {
            return;
        };
        if let Some(old) = t.wake.take() {
            self.timers.remove(&(old, tx));
        }
        if let Some(at) = wake {
            self.timers.insert((at, tx));
            t.wake = Some(at);
        }
    }
}
