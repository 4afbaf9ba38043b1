//! The participant: votes, the forced Prepared and Committed records, and
//! cooperative termination (Bernstein, Hadzilacos, Goodman 1987, §7.4).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use super::message::{Answer, Message, Outcome, Record, TxId, Vote};
use super::{Config, ConfigError, Counters, Output, PersistId, PersistQueue, later};
use crate::NodeId;

/// Why [`Participant::join`] refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The participant already holds this transaction.
    #[error("transaction {0} is already held")]
    AlreadyHeld(TxId),
    /// [`Config::max_transactions`] transactions are in memory.
    #[error("too many transactions in progress")]
    Full,
}

/// Why [`Participant::vote`] refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VoteError {
    /// The participant holds no such transaction (never asked, or already
    /// forgotten).
    #[error("no transaction {0} from this coordinator")]
    Unknown(TxId),
    /// The transaction is not waiting for a vote: the vote was given, or
    /// the transaction aborted meanwhile (timeout, decision, or another
    /// participant's request). Its outcome comes as
    /// [`Output::Decided`](super::Output::Decided).
    #[error("transaction {0} is not waiting for a vote")]
    NotAwaitingVote(TxId),
}

/// Why [`Participant::recover`] refused the records. Nothing was built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParticipantRecoverError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A coordinator's record ([`Record::Commit`], `End`) is in the
    /// participant's log.
    #[error("a coordinator record for {0} in a participant log")]
    WrongRole(TxId),
    /// The log says both Committed and Aborted, or Prepared after a
    /// decision, or a Prepared list that is empty, oversized, unsorted or
    /// lacks this participant: it is not a log this participant wrote.
    #[error("contradictory or malformed records for {0}")]
    Contradiction(TxId),
}

/// Where a transaction stands at a participant
/// ([`Participant::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParticipantStatus {
    /// Joined by the application; no Prepare yet.
    Working,
    /// [`Output::VoteRequested`](super::Output::VoteRequested) is out; the
    /// application has not voted.
    AwaitingVote,
    /// Voted Yes; the Prepared record is not yet acknowledged.
    LoggingPrepared,
    /// Prepared and undecided (in doubt).
    Prepared,
    /// Committing; the Committed record is not yet acknowledged.
    LoggingCommit,
    /// Aborting on its own to answer a DecisionRequest; the Aborted record
    /// is not yet acknowledged.
    LoggingAbort,
    /// Voted read-only (kept for [`Config::decision_retention`]).
    ReadOnly,
    /// Committed (kept for [`Config::decision_retention`]).
    Committed,
    /// Aborted (kept for [`Config::decision_retention`]).
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Working,
    AwaitingVote,
    LoggingPrepared,
    Prepared,
    LoggingCommit,
    LoggingAbort,
    ReadOnly,
    Committed,
    /// `told`: the abort is known to be final: durable here, or decided by
    /// the coordinator, or told by a participant for whom it was. An abort
    /// that is only this node's in-memory choice (a No vote, a timeout) is
    /// not: a crash would forget it, and a replayed Prepare could then be
    /// voted Yes.
    Aborted {
        told: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum Waiting {
    Prepared,
    Committed,
    Aborted,
}

#[derive(Debug)]
struct Tx<N> {
    /// Empty until the Prepare arrives (a joined transaction).
    participants: Vec<N>,
    one_phase: bool,
    /// A Prepare or CommitOnePhase arrived: the coordinator wants a vote.
    asked: bool,
    phase: Phase,
    wake: Option<Instant>,
    /// When the decision arrived (or was taken); the retention counts from
    /// it.
    decided_at: Instant,
    /// Participants waiting for a forced abort's answer.
    askers: BTreeSet<N>,
    /// The app has had this incarnation's [`Output::Decided`].
    announced: bool,
    /// The application called [`Participant::join`] in this incarnation:
    /// this participant never voted on the transaction before, so it may
    /// abort it for good on another participant's request.
    joined: bool,
}

type Key<N> = (N, TxId);

/// A two-phase-commit participant, in transactions of any number of
/// coordinators.
///
/// Methods, by group:
/// - commands: [`join`](Self::join), [`vote`](Self::vote);
/// - inputs: [`handle_message`](Self::handle_message),
///   [`handle_timeout`](Self::handle_timeout),
///   [`on_persisted`](Self::on_persisted);
/// - outputs: [`poll_output`](Self::poll_output) (drain until `None` after
///   every input), then [`poll_timeout`](Self::poll_timeout);
/// - getters: [`status`](Self::status), [`len`](Self::len),
///   [`counters`](Self::counters).
///
/// Durability: the application MUST make every record with `force: true`
/// durable before acknowledging it with `on_persisted`; the Yes vote, the
/// commit acknowledgement, the Committed decision and the answers of a
/// forced abort wait for it. Records are written in the order handed out.
///
/// The application owns the work and votes from what it holds: asked
/// again about a transaction it rolled back ([`Output::Decided`] Abort) or
/// whose work a crash lost, it votes No; about one it already committed,
/// ReadOnly (nothing left to do). The participant does not rely on this
/// for atomicity (it logs every abort it reports to others), but an
/// application that votes Yes on work it no longer has breaks its own
/// data.
#[derive(Debug)]
pub struct Participant<N> {
    id: N,
    config: Config,
    txs: BTreeMap<Key<N>, Tx<N>>,
    timers: BTreeSet<(Instant, Key<N>)>,
    persists: PersistQueue<(Key<N>, Waiting)>,
    outputs: VecDeque<Output<N>>,
    counters: Counters,
}

impl<N: NodeId> Participant<N> {
    /// A participant with no transactions.
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

    /// Rebuilds a participant after a restart from the records it handed
    /// out, in the order written (records not acknowledged may be present
    /// or absent). Every durable decision is delivered again as
    /// [`Output::Decided`] (apply idempotently) and remembered for
    /// [`Config::decision_retention`]; every Prepared transaction without
    /// a decision is in doubt and starts asking at once (the coordinator,
    /// then the other participants). Unprepared transactions were lost:
    /// they abort, and a Prepare for them is answered by the application
    /// (which must vote No, having lost the work).
    ///
    /// # Errors
    /// An invalid `config`, or records this participant cannot have
    /// written.
    pub fn recover(
        config: Config,
        id: N,
        records: impl IntoIterator<Item = Record<N>>,
        now: Instant,
    ) -> Result<Self, ParticipantRecoverError> {
        let mut this = Self::new(config, id)?;
        // (participants, outcome)
        let mut seen: BTreeMap<Key<N>, (Vec<N>, Option<Outcome>)> = BTreeMap::new();
        for record in records {
            match record {
                Record::Prepared {
                    coordinator,
                    tx,
                    participants,
                } => {
                    if !this.valid_list(&participants) {
                        return Err(ParticipantRecoverError::Contradiction(tx));
                    }
                    let entry = seen
                        .entry((coordinator, tx))
                        .or_insert((participants.clone(), None));
                    if entry.1.is_some() || entry.0 != participants {
                        return Err(ParticipantRecoverError::Contradiction(tx));
                    }
                }
                Record::Committed { coordinator, tx } => {
                    Self::recover_outcome(&mut seen, coordinator, tx, Outcome::Commit)?;
                }
                Record::Aborted { coordinator, tx } => {
                    Self::recover_outcome(&mut seen, coordinator, tx, Outcome::Abort)?;
                }
                Record::Commit { tx, .. } | Record::End { tx } => {
                    return Err(ParticipantRecoverError::WrongRole(tx));
                }
            }
        }
        for ((coordinator, tx), (participants, outcome)) in seen {
            let key = (coordinator.clone(), tx);
            let phase = match outcome {
                Some(outcome) => {
                    this.outputs.push_back(Output::Decided {
                        coordinator,
                        tx,
                        outcome,
                    });
                    match outcome {
                        Outcome::Commit => Phase::Committed,
                        Outcome::Abort => Phase::Aborted { told: true },
                    }
                }
                None => Phase::Prepared,
            };
            let wake = if phase == Phase::Prepared {
                now
            } else {
                later(now, this.config.decision_retention)
            };
            // A Committed record without Prepared is a one-phase commit;
            // an Aborted one without Prepared leaves the kind unknown (the
            // list stays empty and the next Prepare fills it).
            let one_phase = participants.is_empty() && outcome == Some(Outcome::Commit);
            let participants = if one_phase {
                vec![this.id.clone()]
            } else {
                participants
            };
            this.txs.insert(
                key.clone(),
                Tx {
                    one_phase,
                    participants,
                    asked: true,
                    phase,
                    wake: None,
                    decided_at: now,
                    askers: BTreeSet::new(),
                    announced: outcome.is_some(),
                    joined: false,
                },
            );
            this.set_wake(&key, Some(wake));
        }
        Ok(this)
    }

    fn recover_outcome(
        seen: &mut BTreeMap<Key<N>, (Vec<N>, Option<Outcome>)>,
        coordinator: N,
        tx: TxId,
        outcome: Outcome,
    ) -> Result<(), ParticipantRecoverError> {
        let entry = seen.entry((coordinator, tx)).or_insert((Vec::new(), None));
        match entry.1 {
            Some(old) if old != outcome => Err(ParticipantRecoverError::Contradiction(tx)),
            _ => {
                entry.1 = Some(outcome);
                Ok(())
            }
        }
    }

    fn valid_list(&self, list: &[N]) -> bool {
        !list.is_empty()
            && list.len() <= self.config.max_participants
            && list.windows(2).all(|w| w[0] < w[1])
            && list.binary_search(&self.id).is_ok()
    }

    /// This participant's id.
    pub fn id(&self) -> &N {
        &self.id
    }

    /// The application started work for `tx` of `coordinator`: from now
    /// on, if no Prepare is answered within
    /// [`Config::participant_timeout`], the participant aborts on its own
    /// (it has promised nothing). Joining is optional: a Prepare for an
    /// unknown transaction is asked of the application all the same.
    ///
    /// Joining also lets this participant end the transaction for others:
    /// asked by a prepared participant before it voted Yes, it aborts,
    /// durably, and answers Abort (cooperative termination). So the
    /// application MUST join only a transaction this participant never
    /// voted on, in any incarnation: a read-only vote writes nothing, and a
    /// participant that forgot one could otherwise abort a transaction that
    /// committed. A transaction known only from a Prepare is never aborted
    /// for others (the Prepare may be a replay after such a crash).
    ///
    /// # Errors
    /// [`JoinError`]; nothing changed.
    pub fn join(&mut self, coordinator: N, tx: TxId, now: Instant) -> Result<(), JoinError> {
        let key = (coordinator, tx);
        if self.txs.contains_key(&key) {
            return Err(JoinError::AlreadyHeld(tx));
        }
        if self.txs.len() >= self.config.max_transactions {
            return Err(JoinError::Full);
        }
        self.insert_new(key.clone(), Vec::new(), false, Phase::Working, now);
        self.txs.get_mut(&key).expect("just inserted").joined = true;
        Ok(())
    }

    /// The application's vote on `tx` of `coordinator`, after
    /// [`Output::VoteRequested`]. Yes writes a forced [`Record::Prepared`]
    /// (in one phase: [`Record::Committed`]) and the vote leaves once it is
    /// acknowledged; No aborts at once; ReadOnly writes nothing and ends
    /// the participant's part.
    ///
    /// # Errors
    /// [`VoteError`]; nothing changed.
    pub fn vote(
        &mut self,
        coordinator: &N,
        tx: TxId,
        vote: Vote,
        now: Instant,
    ) -> Result<(), VoteError> {
        let key = (coordinator.clone(), tx);
        let Some(t) = self.txs.get_mut(&key) else {
            return Err(VoteError::Unknown(tx));
        };
        if t.phase != Phase::AwaitingVote {
            return Err(VoteError::NotAwaitingVote(tx));
        }
        match vote {
            Vote::Yes if t.one_phase => {
                t.phase = Phase::LoggingCommit;
                t.decided_at = now;
                self.set_wake(&key, None);
                let record = Record::Committed {
                    coordinator: coordinator.clone(),
                    tx,
                };
                self.persists.issue(
                    Some((key, Waiting::Committed)),
                    &mut self.outputs,
                    record,
                    true,
                );
            }
            Vote::Yes => {
                t.phase = Phase::LoggingPrepared;
                let record = Record::Prepared {
                    coordinator: coordinator.clone(),
                    tx,
                    participants: t.participants.clone(),
                };
                // In doubt from now on: ask when the decision is late.
                self.set_wake(&key, Some(later(now, self.config.participant_timeout)));
                self.persists.issue(
                    Some((key, Waiting::Prepared)),
                    &mut self.outputs,
                    record,
                    true,
                );
            }
            Vote::No => {
                self.abort_alone(&key, now);
            }
            Vote::ReadOnly => {
                t.phase = Phase::ReadOnly;
                t.decided_at = now;
                self.send(coordinator.clone(), Message::Vote { tx, vote });
                self.set_wake(&key, Some(later(now, self.config.decision_retention)));
            }
        }
        Ok(())
    }

    /// A message from `from`. Duplicates, late messages and messages that
    /// contradict the transaction's state are ignored and counted; a
    /// DecisionRequest or DecisionReply from a node that is neither the
    /// coordinator nor a listed participant is ignored and counted.
    pub fn handle_message(&mut self, from: N, message: Message<N>, now: Instant) {
        match message {
            Message::Prepare { tx, participants } => {
                if !self.valid_list(&participants) {
                    self.counters.malformed += 1;
                    return;
                }
                self.on_prepare((from, tx), participants, false, now);
            }
            Message::CommitOnePhase { tx } => {
                let me = vec![self.id.clone()];
                self.on_prepare((from, tx), me, true, now);
            }
            Message::Decision { tx, outcome } => {
                self.on_decision((from.clone(), tx), from, outcome, true, now)
            }
            Message::DecisionRequest { coordinator, tx } => {
                self.on_request(from, (coordinator, tx), now);
            }
            Message::DecisionReply {
                coordinator,
                tx,
                answer,
            } => {
                let key = (coordinator, tx);
                let Some(t) = self.txs.get(&key) else {
                    self.counters.late += 1;
                    return;
                };
                if from != key.0 && t.participants.binary_search(&from).is_err() {
                    self.counters.unknown_sender += 1;
                    return;
                }
                match answer {
                    Answer::Commit => self.on_decision(key, from, Outcome::Commit, false, now),
                    Answer::Abort => self.on_decision(key, from, Outcome::Abort, false, now),
                    Answer::Unknown => {}
                }
            }
            Message::Vote { .. } | Message::Ack { .. } => self.counters.unexpected += 1,
        }
    }

    fn on_prepare(&mut self, key: Key<N>, participants: Vec<N>, one_phase: bool, now: Instant) {
        let Some(t) = self.txs.get_mut(&key) else {
            if self.txs.len() >= self.config.max_transactions {
                self.counters.refused_full += 1;
                return;
            }
            self.insert_new(
                key.clone(),
                participants,
                one_phase,
                Phase::AwaitingVote,
                now,
            );
            let t = self.txs.get_mut(&key).expect("just inserted");
            t.asked = true;
            self.outputs.push_back(Output::VoteRequested {
                coordinator: key.0,
                tx: key.1,
            });
            return;
        };
        if t.participants.is_empty() {
            // Joined, or recovered from an Aborted record alone: the
            // Prepare tells the kind and the participants.
            t.participants.clone_from(&participants);
            t.one_phase = one_phase;
        }
        if t.phase == Phase::Working {
            t.one_phase = one_phase;
            t.asked = true;
            t.phase = Phase::AwaitingVote;
            self.outputs.push_back(Output::VoteRequested {
                coordinator: key.0,
                tx: key.1,
            });
            return;
        }
        if t.one_phase != one_phase || t.participants != participants {
            self.counters.unexpected += 1;
            return;
        }
        t.asked = true;
        let (coordinator, tx) = key;
        match t.phase {
            // The vote (or, in one phase, the decision) was lost: repeat it.
            Phase::Prepared => self.send(
                coordinator,
                Message::Vote {
                    tx,
                    vote: Vote::Yes,
                },
            ),
            Phase::Committed if one_phase => {
                self.send(
                    coordinator,
                    Message::Vote {
                        tx,
                        vote: Vote::Yes,
                    },
                );
            }
            Phase::ReadOnly => self.send(
                coordinator,
                Message::Vote {
                    tx,
                    vote: Vote::ReadOnly,
                },
            ),
            Phase::Aborted { told: false } if one_phase => {
                // This No would be the transaction's decision: make the
                // abort durable first (see `abort_alone`).
                self.abort_alone(&(coordinator, tx), now);
            }
            Phase::Aborted { .. } => self.send(coordinator, Message::Vote { tx, vote: Vote::No }),
            _ => self.counters.late += 1,
        }
    }

    /// A decision from the coordinator (`authoritative`) or an answer from
    /// a peer.
    fn on_decision(
        &mut self,
        key: Key<N>,
        from: N,
        outcome: Outcome,
        from_coordinator: bool,
        now: Instant,
    ) {
        let Some(t) = self.txs.get_mut(&key) else {
            self.counters.late += 1;
            if from_coordinator && outcome == Outcome::Commit {
                // A Commit reaches only a participant that voted Yes with a
                // durable Prepared record, and such a transaction is
                // forgotten only after it committed: the ack was lost.
                self.send(from, Message::Ack { tx: key.1 });
            }
            return;
        };
        if t.one_phase {
            // The participant decides alone in one phase.
            self.counters.unexpected += 1;
            return;
        }
        match (outcome, t.phase) {
            (Outcome::Commit, Phase::Prepared) => {
                t.phase = Phase::LoggingCommit;
                t.decided_at = now;
                self.set_wake(&key, None);
                let record = Record::Committed {
                    coordinator: key.0.clone(),
                    tx: key.1,
                };
                self.persists.issue(
                    Some((key, Waiting::Committed)),
                    &mut self.outputs,
                    record,
                    true,
                );
            }
            (Outcome::Commit, Phase::Committed) if from_coordinator => {
                self.send(from, Message::Ack { tx: key.1 });
            }
            (Outcome::Commit, Phase::LoggingCommit | Phase::Committed) => {
                self.counters.late += 1;
            }
            (Outcome::Abort, Phase::Prepared | Phase::LoggingPrepared) => {
                // Lazy: if it is lost, the participant is in doubt after a
                // restart and is told Abort again (presumed abort).
                let record = Record::Aborted {
                    coordinator: key.0.clone(),
                    tx: key.1,
                };
                self.persists.issue(None, &mut self.outputs, record, false);
                self.become_aborted(&key, true, now);
            }
            (Outcome::Abort, Phase::Working | Phase::AwaitingVote) => {
                self.become_aborted(&key, true, now);
            }
            (Outcome::Abort, Phase::Aborted { .. }) => {
                t.phase = Phase::Aborted { told: true };
                self.counters.late += 1;
            }
            (Outcome::Abort, Phase::LoggingAbort | Phase::ReadOnly) => self.counters.late += 1,
            // A Commit for a participant that never prepared, or an Abort
            // after a commit: a confused or hostile peer.
            _ => self.counters.unexpected += 1,
        }
    }

    fn on_request(&mut self, asker: N, key: Key<N>, now: Instant) {
        if asker == self.id {
            self.counters.unexpected += 1;
            return;
        }
        let Some(t) = self.txs.get_mut(&key) else {
            // No memory of it: this participant may have voted read-only
            // or committed and forgotten, so it must not abort it now.
            self.reply(asker, &key, Answer::Unknown);
            return;
        };
        if !t.participants.is_empty() && t.participants.binary_search(&asker).is_err() {
            self.counters.unknown_sender += 1;
            return;
        }
        let answer = match t.phase {
            Phase::Committed => Answer::Commit,
            // Only the coordinator's durable decision gets here.
            Phase::LoggingCommit => Answer::Commit,
            Phase::Aborted { told: true } => Answer::Abort,
            Phase::Prepared | Phase::LoggingPrepared | Phase::ReadOnly => Answer::Unknown,
            Phase::LoggingAbort => {
                if t.askers.len() < self.config.max_participants {
                    t.askers.insert(asker);
                }
                return;
            }
            // Known only from a Prepare: it may be a replay, and this node
            // may have voted ReadOnly before a crash made it forget (a
            // read-only vote writes nothing), so the tx may have committed.
            Phase::Working | Phase::AwaitingVote | Phase::Aborted { told: false } if !t.joined => {
                Answer::Unknown
            }
            Phase::Working | Phase::AwaitingVote | Phase::Aborted { told: false } => {
                // §7.4: a participant that has not voted Yes may abort on
                // its own, but the answer is final only once the abort is
                // durable: a node that forgot it could vote Yes on a
                // replayed Prepare and let the coordinator commit.
                t.phase = Phase::LoggingAbort;
                t.decided_at = now;
                t.askers.insert(asker);
                self.set_wake(&key, None);
                let record = Record::Aborted {
                    coordinator: key.0.clone(),
                    tx: key.1,
                };
                self.persists.issue(
                    Some((key, Waiting::Aborted)),
                    &mut self.outputs,
                    record,
                    true,
                );
                return;
            }
        };
        self.reply(asker, &key, answer);
    }

    /// Acknowledges that every record up to `id` is durable (records are
    /// written in order). Releases what waited for them: Yes votes,
    /// acknowledgements and Committed decisions, forced aborts' answers.
    /// Unknown or repeated ids are ignored and counted.
    pub fn on_persisted(&mut self, id: PersistId) {
        let Some(done) = self.persists.ack(id) else {
            self.counters.bad_persist_acks += 1;
            return;
        };
        for (key, waiting) in done {
            let Some(t) = self.txs.get_mut(&key) else {
                continue;
            };
            let (coordinator, tx) = key.clone();
            match (waiting, t.phase) {
                (Waiting::Prepared, Phase::LoggingPrepared) => {
                    t.phase = Phase::Prepared;
                    self.send(
                        coordinator,
                        Message::Vote {
                            tx,
                            vote: Vote::Yes,
                        },
                    );
                }
                (Waiting::Committed, Phase::LoggingCommit) => {
                    t.phase = Phase::Committed;
                    t.announced = true;
                    let message = if t.one_phase {
                        Message::Vote {
                            tx,
                            vote: Vote::Yes,
                        }
                    } else {
                        Message::Ack { tx }
                    };
                    let wake = later(t.decided_at, self.config.decision_retention);
                    self.outputs.push_back(Output::Decided {
                        coordinator: coordinator.clone(),
                        tx,
                        outcome: Outcome::Commit,
                    });
                    self.send(coordinator, message);
                    self.set_wake(&key, Some(wake));
                }
                (Waiting::Aborted, Phase::LoggingAbort) => {
                    t.phase = Phase::Aborted { told: true };
                    let askers = std::mem::take(&mut t.askers);
                    let asked = t.asked;
                    let wake = later(t.decided_at, self.config.decision_retention);
                    if !std::mem::replace(&mut t.announced, true) {
                        self.outputs.push_back(Output::Decided {
                            coordinator: coordinator.clone(),
                            tx,
                            outcome: Outcome::Abort,
                        });
                    }
                    if asked {
                        self.send(coordinator, Message::Vote { tx, vote: Vote::No });
                    }
                    for asker in askers {
                        self.reply(asker, &key, Answer::Abort);
                    }
                    self.set_wake(&key, Some(wake));
                }
                // The transaction moved on (a decision arrived while the
                // record was written).
                _ => {}
            }
        }
    }

    /// Fires every timer due at `now`: unprepared transactions past
    /// [`Config::participant_timeout`] abort; in-doubt ones ask for the
    /// decision (again); decided ones past the retention are forgotten.
    /// Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, key)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let t = self.txs.get_mut(&key).expect("timers hold held txs only");
            t.wake = None;
            match t.phase {
                Phase::Working | Phase::AwaitingVote => {
                    self.counters.timeouts += 1;
                    self.abort_alone(&key, now);
                }
                Phase::LoggingPrepared | Phase::Prepared => {
                    // §7.4 cooperative termination: ask the coordinator and
                    // every other participant, until someone knows.
                    let (coordinator, tx) = key.clone();
                    let peers: Vec<N> = t
                        .participants
                        .iter()
                        .filter(|p| **p != self.id && **p != coordinator)
                        .cloned()
                        .collect();
                    self.counters.decision_requests += 1;
                    let request = Message::DecisionRequest {
                        coordinator: coordinator.clone(),
                        tx,
                    };
                    self.send(coordinator, request.clone());
                    for p in peers {
                        self.send(p, request.clone());
                    }
                    self.set_wake(&key, Some(later(now, self.config.retry_interval)));
                }
                Phase::ReadOnly | Phase::Committed | Phase::Aborted { .. } => {
                    self.txs.remove(&key);
                }
                Phase::LoggingCommit | Phase::LoggingAbort => {}
            }
        }
    }

    /// The next output: messages to send, records to persist, vote
    /// requests and decisions for the application. Drain until `None`
    /// after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output<N>> {
        self.outputs.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Where `tx` of `coordinator` stands, or `None` if it is not held.
    #[must_use]
    pub fn status(&self, coordinator: &N, tx: TxId) -> Option<ParticipantStatus> {
        self.txs
            .get(&(coordinator.clone(), tx))
            .map(|t| match t.phase {
                Phase::Working => ParticipantStatus::Working,
                Phase::AwaitingVote => ParticipantStatus::AwaitingVote,
                Phase::LoggingPrepared => ParticipantStatus::LoggingPrepared,
                Phase::Prepared => ParticipantStatus::Prepared,
                Phase::LoggingCommit => ParticipantStatus::LoggingCommit,
                Phase::LoggingAbort => ParticipantStatus::LoggingAbort,
                Phase::ReadOnly => ParticipantStatus::ReadOnly,
                Phase::Committed => ParticipantStatus::Committed,
                Phase::Aborted { .. } => ParticipantStatus::Aborted,
            })
    }

    /// What this participant answers (now, or once its forced abort is
    /// durable) to a DecisionRequest about `tx` of `coordinator`: the
    /// outcome if it knows it or may still abort on its own, else
    /// [`Answer::Unknown`].
    #[must_use]
    pub fn answer_for(&self, coordinator: &N, tx: TxId) -> Answer {
        let Some(t) = self.txs.get(&(coordinator.clone(), tx)) else {
            return Answer::Unknown;
        };
        match t.phase {
            Phase::Committed => Answer::Commit,
            Phase::LoggingCommit if !t.one_phase => Answer::Commit,
            Phase::Aborted { told: true } | Phase::LoggingAbort => Answer::Abort,
            Phase::Working | Phase::AwaitingVote | Phase::Aborted { told: false } if t.joined => {
                Answer::Abort
            }
            _ => Answer::Unknown,
        }
    }

    /// How many transactions are held (decided ones included, until their
    /// retention ends).
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

    fn insert_new(
        &mut self,
        key: Key<N>,
        participants: Vec<N>,
        one_phase: bool,
        phase: Phase,
        now: Instant,
    ) {
        self.txs.insert(
            key.clone(),
            Tx {
                participants,
                one_phase,
                asked: false,
                phase,
                wake: None,
                decided_at: now,
                askers: BTreeSet::new(),
                announced: false,
                joined: false,
            },
        );
        self.set_wake(&key, Some(later(now, self.config.participant_timeout)));
    }

    /// Aborts an unprepared transaction on this node's own initiative (a
    /// No vote or a timeout): nothing is logged (presumed abort), and the
    /// coordinator is told No if it asked.
    fn abort_alone(&mut self, key: &Key<N>, now: Instant) {
        let t = self.txs.get_mut(key).expect("called for a held tx");
        if t.one_phase && t.asked {
            // In one phase this No is the transaction's decision, which the
            // coordinator reports as final: it must survive a crash, or a
            // replayed CommitOnePhase could be answered Yes after it.
            t.phase = Phase::LoggingAbort;
            t.decided_at = now;
            self.set_wake(key, None);
            let record = Record::Aborted {
                coordinator: key.0.clone(),
                tx: key.1,
            };
            self.persists.issue(
                Some((key.clone(), Waiting::Aborted)),
                &mut self.outputs,
                record,
                true,
            );
            return;
        }
        if t.asked {
            self.send(
                key.0.clone(),
                Message::Vote {
                    tx: key.1,
                    vote: Vote::No,
                },
            );
        }
        self.become_aborted(key, false, now);
    }

    fn become_aborted(&mut self, key: &Key<N>, told: bool, now: Instant) {
        let t = self.txs.get_mut(key).expect("called for a held tx");
        t.phase = Phase::Aborted { told };
        t.decided_at = now;
        if !std::mem::replace(&mut t.announced, true) {
            self.outputs.push_back(Output::Decided {
                coordinator: key.0.clone(),
                tx: key.1,
                outcome: Outcome::Abort,
            });
        }
        self.set_wake(key, Some(later(now, self.config.decision_retention)));
    }

    fn reply(&mut self, to: N, key: &Key<N>, answer: Answer) {
        self.send(
            to,
            Message::DecisionReply {
                coordinator: key.0.clone(),
                tx: key.1,
                answer,
            },
        );
    }

    fn send(&mut self, to: N, message: Message<N>) {
        self.outputs.push_back(Output::Send { to, message });
    }

    fn set_wake(&mut self, key: &Key<N>, wake: Option<Instant>) {
        let Some(t) = self.txs.get_mut(key) else {
            return;
        };
        if let Some(old) = t.wake.take() {
            self.timers.remove(&(old, key.clone()));
        }
        if let Some(at) = wake {
            self.timers.insert((at, key.clone()));
            t.wake = Some(at);
        }
    }
}
