//! Two-phase commit behaviours, one per test, each citing the rule it
//! checks: R* presumed abort and its read-only and one-phase optimisations
//! (Mohan, Lindsay, Obermarck, TODS 1986, §3: "PA"), and cooperative
//! termination (Bernstein, Hadzilacos, Goodman 1987, §7.4: "BHG").

use std::time::{Duration, Instant};

use dsys_txn::twopc::{
    Answer, BeginError, Config, ConfigError, Coordinator, CoordinatorStatus, JoinError, Message,
    Outcome, Output, Participant, ParticipantRecoverError, ParticipantStatus, PersistId, Record,
    TxId, Vote, VoteError,
};

const C: u64 = 0;
const T: TxId = TxId(7);

fn coord() -> Coordinator<u64> {
    Coordinator::new(Config::default(), C).unwrap()
}

fn part(id: u64) -> Participant<u64> {
    Participant::new(Config::default(), id).unwrap()
}

fn outs_c(c: &mut Coordinator<u64>) -> Vec<Output<u64>> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn outs_p(p: &mut Participant<u64>) -> Vec<Output<u64>> {
    std::iter::from_fn(|| p.poll_output()).collect()
}

fn sends(outs: &[Output<u64>]) -> Vec<(u64, Message<u64>)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

fn persists(outs: &[Output<u64>]) -> Vec<(PersistId, Record<u64>, bool)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Persist { id, record, force } => Some((*id, record.clone(), *force)),
            _ => None,
        })
        .collect()
}

fn decided(outs: &[Output<u64>]) -> Vec<Outcome> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Decided { outcome, .. } => Some(*outcome),
            _ => None,
        })
        .collect()
}

fn prepare(participants: &[u64]) -> Message<u64> {
    Message::Prepare {
        tx: T,
        participants: participants.to_vec(),
    }
}

/// A participant that received Prepare(T, list) and voted Yes, with its
/// Prepared record acknowledged. Returns it and its Yes vote's outputs.
/// A DecisionRequest for `T` of coordinator `C`.
fn request() -> Message<u64> {
    Message::DecisionRequest {
        coordinator: C,
        tx: T,
    }
}

/// A DecisionReply for `T` of coordinator `C`.
fn reply(answer: Answer) -> Message<u64> {
    Message::DecisionReply {
        coordinator: C,
        tx: T,
        answer,
    }
}

fn prepared(id: u64, list: &[u64], now: Instant) -> Participant<u64> {
    let mut p = part(id);
    p.handle_message(C, prepare(list), now);
    assert_eq!(
        outs_p(&mut p),
        vec![Output::VoteRequested {
            coordinator: C,
            tx: T
        }]
    );
    p.vote(&C, T, Vote::Yes, now).unwrap();
    let o = outs_p(&mut p);
    let (id, _, force) = persists(&o)[0].clone();
    assert!(force);
    p.on_persisted(id);
    assert_eq!(
        sends(&outs_p(&mut p)),
        vec![(
            C,
            Message::Vote {
                tx: T,
                vote: Vote::Yes
            }
        )]
    );
    p
}

#[test]
fn commit_record_is_forced_before_commit_is_sent() {
    // PA: the coordinator force-writes the commit record, and only then
    // sends Commit; after every ack it writes End lazily and forgets.
    let now = Instant::now();
    let mut c = coord();
    c.begin(T, [2, 1], now).unwrap();
    let o = outs_c(&mut c);
    assert_eq!(
        sends(&o),
        vec![(1, prepare(&[1, 2])), (2, prepare(&[1, 2]))]
    );
    c.handle_message(
        1,
        Message::Vote {
            tx: T,
            vote: Vote::Yes,
        },
        now,
    );
    assert!(outs_c(&mut c).is_empty());
    c.handle_message(
        2,
        Message::Vote {
            tx: T,
            vote: Vote::Yes,
        },
        now,
    );
    let o = outs_c(&mut c);
    assert_eq!(sends(&o), vec![], "no Commit before the record is durable");
    assert_eq!(decided(&o), vec![]);
    let [(id, record, true)] = &persists(&o)[..] else {
        panic!("one forced record: {o:?}")
    };
    assert_eq!(
        *record,
        Record::Commit {
            tx: T,
            participants: vec![1, 2]
        }
    );
    assert_eq!(c.status(T), Some(CoordinatorStatus::LoggingCommit));
    // A decision request meanwhile is not answered Commit.
    c.handle_message(1, request(), now);
    assert_eq!(sends(&outs_c(&mut c)), vec![(1, reply(Answer::Unknown))]);
    c.on_persisted(*id);
    let o = outs_c(&mut c);
    let commit = Message::Decision {
        tx: T,
        outcome: Outcome::Commit,
    };
    assert_eq!(sends(&o), vec![(1, commit.clone()), (2, commit)]);
    assert_eq!(decided(&o), vec![Outcome::Commit]);
    c.handle_message(1, Message::Ack { tx: T }, now);
    assert!(outs_c(&mut c).is_empty());
    c.handle_message(2, Message::Ack { tx: T }, now);
    let o = outs_c(&mut c);
    assert_eq!(persists(&o)[0].1, Record::End { tx: T });
    assert!(!persists(&o)[0].2, "End is lazy");
    assert!(c.is_empty());
}

#[test]
fn abort_is_neither_logged_nor_acknowledged() {
    // PA: on a No vote the coordinator sends Abort to the others, writes
    // nothing, expects no acks and forgets at once.
    let now = Instant::now();
    let mut c = coord();
    c.begin(T, [1, 2, 3], now).unwrap();
    let _ = outs_c(&mut c);
    c.handle_message(
        1,
        Message::Vote {
            tx: T,
            vote: Vote::Yes,
        },
        now,
    );
    c.handle_message(
        2,
        Message::Vote {
            tx: T,
            vote: Vote::No,
        },
        now,
    );
    let o = outs_c(&mut c);
    assert!(persists(&o).is_empty());
    let abort = Message::Decision {
        tx: T,
        outcome: Outcome::Abort,
    };
    assert_eq!(sends(&o), vec![(1, abort.clone()), (3, abort)]);
    assert_eq!(decided(&o), vec![Outcome::Abort]);
    assert!(c.is_empty());

    // The prepared participant takes the abort without acking it; its
    // Aborted record is lazy.
    let mut p = prepared(1, &[1, 2, 3], now);
    p.handle_message(
        C,
        Message::Decision {
            tx: T,
            outcome: Outcome::Abort,
        },
        now,
    );
    let o = outs_p(&mut p);
    assert!(sends(&o).is_empty(), "aborts are not acknowledged");
    assert_eq!(decided(&o), vec![Outcome::Abort]);
    assert!(
        persists(&o)
            .iter()
            .all(|(_, r, force)| !force && matches!(r, Record::Aborted { .. }))
    );
}

#[test]
fn coordinator_without_record_answers_abort() {
    // PA: "no information" means abort: a coordinator asked about a
    // transaction it does not know (never began, aborted and forgotten, or
    // lost in a crash before its Commit record) answers Abort.
    let now = Instant::now();
    let mut c = coord();
    c.begin(T, [1, 2], now).unwrap();
    let _ = outs_c(&mut c);
    // Restart: nothing was logged.
    let mut c = Coordinator::recover(Config::default(), C, Vec::new(), now).unwrap();
    c.handle_message(1, request(), now);
    assert_eq!(sends(&outs_c(&mut c)), vec![(1, reply(Answer::Abort))]);
    // A late Yes vote does not revive it.
    c.handle_message(
        2,
        Message::Vote {
            tx: T,
            vote: Vote::Yes,
        },
        now,
    );
    assert!(outs_c(&mut c).is_empty());
    assert_eq!(c.counters().late, 1);
}

#[test]
fn read_only_voters_log_nothing_and_skip_phase_two() {
    // PA §3 read-only: a read-only participant writes nothing and gets no
    // phase 2; when all are read-only the coordinator logs nothing.
    let now = Instant::now();
    let mut c = coord();
    c.begin(T, [1, 2], now).unwrap();
    let _ = outs_c(&mut c);
    c.handle_message(
        1,
        Message::Vote {
            tx: T,
            vote: Vote::ReadOnly,
        },
        now,
    );
    c.handle_message(
        2,
        Message::Vote {
            tx: T,
            vote: Vote::ReadOnly,
        },
        now,
    );
    let o = outs_c(&mut c);
    assert!(persists(&o).is_empty() && sends(&o).is_empty());
    assert_eq!(decided(&o), vec![Outcome::Commit]);
    assert!(c.is_empty());

    // Mixed: only the Yes voter is in the record and in phase 2.
    let mut c = coord();
    c.begin(T, [1, 2], now).unwrap();
    let _ = outs_c(&mut c);
    c.handle_message(
        1,
        Message::Vote {
            tx: T,
            vote: Vote::ReadOnly,
        },
        now,
    );
    c.handle_message(
        2,
        Message::Vote {
            tx: T,
            vote: Vote::Yes,
        },
        now,
    );
    let o = outs_c(&mut c);
    assert_eq!(
        persists(&o)[0].1,
        Record::Commit {
            tx: T,
            participants: vec![2]
        }
    );
    c.on_persisted(persists(&o)[0].0);
    assert_eq!(
        sends(&outs_c(&mut c)),
        vec![(
            2,
            Message::Decision {
                tx: T,
                outcome: Outcome::Commit
            }
        )]
    );

    // The participant side: a read-only vote writes nothing.
    let mut p = part(1);
    p.handle_message(C, prepare(&[1, 2]), now);
    let _ = outs_p(&mut p);
    p.vote(&C, T, Vote::ReadOnly, now).unwrap();
    let o = outs_p(&mut p);
    assert!(persists(&o).is_empty() && decided(&o).is_empty());
    assert_eq!(
        sends(&o),
        vec![(
            C,
            Message::Vote {
                tx: T,
                vote: Vote::ReadOnly
            }
        )]
    );
    assert_eq!(p.status(&C, T), Some(ParticipantStatus::ReadOnly));
}

#[test]
fn one_phase_commit_with_a_single_participant() {
    // PA §3 (and R*'s "last agent"): with one participant the coordinator
    // logs nothing and lets it decide; the participant forces Committed
    // before reporting (a No is forced too: it is the decision).
    let now = Instant::now();
    let mut c = coord();
    c.begin(T, [1], now).unwrap();
    let o = outs_c(&mut c);
    assert_eq!(sends(&o), vec![(1, Message::CommitOnePhase { tx: T })]);
    let mut p = part(1);
    p.handle_message(C, Message::CommitOnePhase { tx: T }, now);
    let _ = outs_p(&mut p);
    p.vote(&C, T, Vote::Yes, now).unwrap();
    let o = outs_p(&mut p);
    assert!(sends(&o).is_empty() && decided(&o).is_empty());
    let [(id, Record::Committed { .. }, true)] = persists(&o)[..] else {
        panic!("{o:?}")
    };
    p.on_persisted(id);
    let o = outs_p(&mut p);
    assert_eq!(decided(&o), vec![Outcome::Commit]);
    assert_eq!(
        sends(&o),
        vec![(
            C,
            Message::Vote {
                tx: T,
                vote: Vote::Yes
            }
        )]
    );
    c.handle_message(
        1,
        Message::Vote {
            tx: T,
            vote: Vote::Yes,
        },
        now,
    );
    let o = outs_c(&mut c);
    assert!(persists(&o).is_empty());
    assert_eq!(decided(&o), vec![Outcome::Commit]);
    assert!(c.is_empty());
    // A retried CommitOnePhase gets the same answer.
    p.handle_message(C, Message::CommitOnePhase { tx: T }, now);
    assert_eq!(
        sends(&outs_p(&mut p)),
        vec![(
            C,
            Message::Vote {
                tx: T,
                vote: Vote::Yes
            }
        )]
    );

    // A one-phase No is forced before it leaves.
    let mut p = part(1);
    p.handle_message(C, Message::CommitOnePhase { tx: T }, now);
    let _ = outs_p(&mut p);
    p.vote(&C, T, Vote::No, now).unwrap();
    let o = outs_p(&mut p);
    assert!(sends(&o).is_empty());
    let [(id, Record::Aborted { .. }, true)] = persists(&o)[..] else {
        panic!("{o:?}")
    };
    p.on_persisted(id);
    assert_eq!(
        sends(&outs_p(&mut p)),
        vec![(
            C,
            Message::Vote {
                tx: T,
                vote: Vote::No
            }
        )]
    );
}

#[test]
fn yes_vote_waits_for_the_prepared_record() {
    // PA: the subordinate force-writes Prepared before voting Yes.
    let now = Instant::now();
    let mut p = part(1);
    p.handle_message(C, prepare(&[1, 2]), now);
    let _ = outs_p(&mut p);
    p.vote(&C, T, Vote::Yes, now).unwrap();
    let o = outs_p(&mut p);
    assert!(sends(&o).is_empty());
    let (id, record, force) = persists(&o)[0].clone();
    assert!(force);
    assert_eq!(
        record,
        Record::Prepared {
            coordinator: C,
            tx: T,
            participants: vec![1, 2]
        }
    );
    // A duplicate Prepare meanwhile does not release the vote.
    p.handle_message(C, prepare(&[1, 2]), now);
    assert!(sends(&outs_p(&mut p)).is_empty());
    p.on_persisted(id);
    assert_eq!(
        sends(&outs_p(&mut p)),
        vec![(
            C,
            Message::Vote {
                tx: T,
                vote: Vote::Yes
            }
        )]
    );
    // Acks for ids never handed out are counted, not obeyed.
    p.on_persisted(PersistId(99));
    p.on_persisted(id);
    assert_eq!(p.counters().bad_persist_acks, 2);
}

#[test]
fn duplicates_are_answered_idempotently() {
    let now = Instant::now();
    // Participant: a repeated Prepare repeats the vote; a repeated Commit
    // repeats the ack; the decision is announced once.
    let mut p = prepared(1, &[1, 2], now);
    p.handle_message(C, prepare(&[1, 2]), now);
    assert_eq!(
        sends(&outs_p(&mut p)),
        vec![(
            C,
            Message::Vote {
                tx: T,
                vote: Vote::Yes
            }
        )]
    );
    let commit = Message::Decision {
        tx: T,
        outcome: Outcome::Commit,
    };
    p.handle_message(C, commit.clone(), now);
    let o = outs_p(&mut p);
    p.handle_message(C, commit.clone(), now); // while the record is written
    assert!(outs_p(&mut p).is_empty());
    p.on_persisted(persists(&o)[0].0);
    let o = outs_p(&mut p);
    assert_eq!(decided(&o), vec![Outcome::Commit]);
    assert_eq!(sends(&o), vec![(C, Message::Ack { tx: T })]);
    p.handle_message(C, commit, now);
    let o = outs_p(&mut p);
    assert_eq!(sends(&o), vec![(C, Message::Ack { tx: T })]);
    assert!(decided(&o).is_empty());

    // Coordinator: a repeated vote is counted, not counted twice.
    let mut c = coord();
    c.begin(T, [1, 2], now).unwrap();
    let _ = outs_c(&mut c);
    c.handle_message(
        1,
        Message::Vote {
            tx: T,
            vote: Vote::Yes,
        },
        now,
    );
    c.handle_message(
        1,
        Message::Vote {
            tx: T,
            vote: Vote::Yes,
        },
        now,
    );
    assert!(outs_c(&mut c).is_empty());
    assert_eq!(c.status(T), Some(CoordinatorStatus::Preparing));
    assert_eq!(c.counters().late, 1);
}

#[test]
fn late_messages_after_forgetting() {
    let now = Instant::now();
    // A Commit for a transaction the participant forgot is re-acked: only
    // a participant that committed can have forgotten a committed tx.
    let mut p = part(1);
    p.handle_message(
        C,
        Message::Decision {
            tx: T,
            outcome: Outcome::Commit,
        },
        now,
    );
    assert_eq!(sends(&outs_p(&mut p)), vec![(C, Message::Ack { tx: T })]);
    // A late Abort is dropped.
    p.handle_message(
        C,
        Message::Decision {
            tx: T,
            outcome: Outcome::Abort,
        },
        now,
    );
    assert!(outs_p(&mut p).is_empty());
    assert_eq!(p.counters().late, 2);
    // Coordinator: late votes and acks are counted.
    let mut c = coord();
    c.handle_message(
        1,
        Message::Vote {
            tx: T,
            vote: Vote::Yes,
        },
        now,
    );
    c.handle_message(1, Message::Ack { tx: T }, now);
    assert!(outs_c(&mut c).is_empty());
    assert_eq!(c.counters().late, 2);
    // A participant forgets decided transactions after the retention.
    let mut p = prepared(1, &[1, 2], now);
    p.handle_message(
        C,
        Message::Decision {
            tx: T,
            outcome: Outcome::Abort,
        },
        now,
    );
    let _ = outs_p(&mut p);
    p.handle_timeout(now + Config::default().decision_retention);
    assert!(p.is_empty());
}

#[test]
fn unknown_senders_are_ignored_and_counted() {
    let now = Instant::now();
    let mut c = coord();
    c.begin(T, [1, 2], now).unwrap();
    let _ = outs_c(&mut c);
    c.handle_message(
        9,
        Message::Vote {
            tx: T,
            vote: Vote::No,
        },
        now,
    );
    c.handle_message(9, request(), now);
    assert!(outs_c(&mut c).is_empty());
    assert_eq!(c.counters().unknown_sender, 2);
    assert_eq!(c.status(T), Some(CoordinatorStatus::Preparing));

    let mut p = prepared(1, &[1, 2], now);
    p.handle_message(9, request(), now);
    p.handle_message(9, reply(Answer::Abort), now);
    assert!(outs_p(&mut p).is_empty());
    assert_eq!(p.counters().unknown_sender, 2);
    assert_eq!(p.status(&C, T), Some(ParticipantStatus::Prepared));
    // A Prepare whose list lacks the receiver is malformed.
    let mut p = part(1);
    p.handle_message(C, prepare(&[2, 3]), now);
    assert!(outs_p(&mut p).is_empty());
    assert_eq!(p.counters().malformed, 1);
}

#[test]
fn unprepared_participant_aborts_on_timeout() {
    // BHG §7.4: before voting Yes a participant may abort on its own.
    let now = Instant::now();
    let cfg = Config::default();
    let mut p = part(1);
    p.join(C, T, now).unwrap();
    assert_eq!(p.join(C, T, now), Err(JoinError::AlreadyHeld(T)));
    assert_eq!(p.poll_timeout(), Some(now + cfg.participant_timeout));
    p.handle_timeout(now + cfg.participant_timeout - Duration::from_millis(1));
    assert!(outs_p(&mut p).is_empty(), "early timeouts are harmless");
    p.handle_timeout(now + cfg.participant_timeout);
    let o = outs_p(&mut p);
    assert_eq!(decided(&o), vec![Outcome::Abort]);
    assert!(sends(&o).is_empty(), "no Prepare yet, nobody to tell");
    // The Prepare that comes later gets No, without asking the app.
    p.handle_message(C, prepare(&[1, 2]), now);
    assert_eq!(
        sends(&outs_p(&mut p)),
        vec![(
            C,
            Message::Vote {
                tx: T,
                vote: Vote::No
            }
        )]
    );
    assert_eq!(
        p.vote(&C, T, Vote::Yes, now),
        Err(VoteError::NotAwaitingVote(T))
    );

    // The coordinator aborts when votes are late.
    let mut c = coord();
    c.begin(T, [1, 2], now).unwrap();
    let _ = outs_c(&mut c);
    c.handle_timeout(now + cfg.retry_interval);
    assert_eq!(sends(&outs_c(&mut c)).len(), 2, "Prepare resent");
    c.handle_timeout(now + cfg.vote_timeout);
    assert_eq!(decided(&outs_c(&mut c)), vec![Outcome::Abort]);
    assert!(c.is_empty());
}

#[test]
fn coordinator_crash_after_prepare_resolved_cooperatively() {
    // BHG §7.4: P1 is prepared and the coordinator is gone; P2 has not
    // voted, so it aborts, durably, and only then answers.
    let now = Instant::now();
    let cfg = Config::default();
    let mut p1 = prepared(1, &[1, 2], now);
    let mut p2 = part(2);
    p2.join(C, T, now).unwrap();
    p2.handle_message(C, prepare(&[1, 2]), now);
    let _ = outs_p(&mut p2);
    let later = now + cfg.participant_timeout;
    p1.handle_timeout(later);
    let asks = sends(&outs_p(&mut p1));
    let request = request();
    assert_eq!(asks, vec![(C, request.clone()), (2, request.clone())]);
    p2.handle_message(1, request.clone(), later);
    let o = outs_p(&mut p2);
    assert!(sends(&o).is_empty(), "the answer waits for the record");
    let [(id, Record::Aborted { .. }, true)] = persists(&o)[..] else {
        panic!("{o:?}")
    };
    // Crash before the record is durable: nothing was said, and the
    // restarted P2 knows nothing; it does not abort for others.
    let mut p2_crashed = Participant::recover(cfg.clone(), 2, Vec::new(), later).unwrap();
    p2_crashed.handle_message(1, request.clone(), later);
    assert_eq!(
        sends(&outs_p(&mut p2_crashed)),
        vec![(1, reply(Answer::Unknown))]
    );
    // Without the crash: the record is durable, the answer goes out.
    p2.on_persisted(id);
    let o = outs_p(&mut p2);
    assert_eq!(decided(&o), vec![Outcome::Abort]);
    let reply = reply(Answer::Abort);
    assert!(sends(&o).contains(&(1, reply.clone())));
    assert!(sends(&o).contains(&(
        C,
        Message::Vote {
            tx: T,
            vote: Vote::No
        }
    )));
    p1.handle_message(2, reply, later);
    assert_eq!(decided(&outs_p(&mut p1)), vec![Outcome::Abort]);
    // After a restart from its record P2 still votes No.
    let records = vec![Record::Aborted {
        coordinator: C,
        tx: T,
    }];
    let mut p2 = Participant::recover(cfg, 2, records, later).unwrap();
    let _ = outs_p(&mut p2);
    p2.handle_message(C, prepare(&[1, 2]), later);
    assert_eq!(
        sends(&outs_p(&mut p2)),
        vec![(
            C,
            Message::Vote {
                tx: T,
                vote: Vote::No
            }
        )]
    );
}

#[test]
fn all_prepared_and_nobody_knows_blocks() {
    // BHG §7.4: when every participant is prepared and the coordinator is
    // gone, cooperative termination cannot decide (the blocking problem).
    let now = Instant::now();
    let cfg = Config::default();
    let mut p1 = prepared(1, &[1, 2], now);
    let mut p2 = prepared(2, &[1, 2], now);
    let later = now + cfg.participant_timeout;
    p1.handle_timeout(later);
    let _ = outs_p(&mut p1);
    p2.handle_message(1, request(), later);
    assert_eq!(sends(&outs_p(&mut p2)), vec![(1, reply(Answer::Unknown))]);
    p1.handle_message(2, reply(Answer::Unknown), later);
    assert_eq!(p1.status(&C, T), Some(ParticipantStatus::Prepared));
    // It keeps asking.
    p1.handle_timeout(later + cfg.retry_interval);
    assert_eq!(sends(&outs_p(&mut p1)).len(), 2);
}

#[test]
fn participant_that_never_joined_does_not_abort_for_others() {
    // A participant known only from a Prepare may have voted ReadOnly
    // before a crash (a read-only vote writes nothing): it cannot abort
    // for another participant, and answers Unknown.
    let now = Instant::now();
    let mut p = part(2);
    p.handle_message(C, prepare(&[1, 2]), now);
    let _ = outs_p(&mut p);
    p.handle_message(1, request(), now);
    let o = outs_p(&mut p);
    assert!(persists(&o).is_empty());
    assert_eq!(sends(&o), vec![(1, reply(Answer::Unknown))]);
    assert_eq!(p.status(&C, T), Some(ParticipantStatus::AwaitingVote));
}

#[test]
fn coordinator_recovery_resends_commit() {
    // PA: a coordinator that restarts with Commit and no End resends
    // Commit until every Yes voter acknowledges.
    let now = Instant::now();
    let records = vec![
        Record::Commit {
            tx: TxId(1),
            participants: vec![1, 2],
        },
        Record::Commit {
            tx: TxId(2),
            participants: vec![1],
        },
        Record::End { tx: TxId(2) },
    ];
    let mut c = Coordinator::recover(Config::default(), C, records, now).unwrap();
    assert_eq!(decided(&outs_c(&mut c)), vec![Outcome::Commit]);
    assert_eq!(c.status(TxId(1)), Some(CoordinatorStatus::Committing));
    assert_eq!(c.status(TxId(2)), None);
    c.handle_timeout(now);
    let commit = Message::Decision {
        tx: TxId(1),
        outcome: Outcome::Commit,
    };
    assert_eq!(
        sends(&outs_c(&mut c)),
        vec![(1, commit.clone()), (2, commit)]
    );
    c.handle_message(
        1,
        Message::DecisionRequest {
            coordinator: C,
            tx: TxId(1),
        },
        now,
    );
    assert_eq!(
        sends(&outs_c(&mut c)),
        vec![(
            1,
            Message::DecisionReply {
                coordinator: C,
                tx: TxId(1),
                answer: Answer::Commit
            }
        )]
    );
    // Participant records in a coordinator log are refused.
    let bad = vec![Record::Committed {
        coordinator: C,
        tx: TxId(1),
    }];
    assert!(Coordinator::recover(Config::default(), C, bad, now).is_err());
}

#[test]
fn participant_recovery() {
    // PA: after a restart, a prepared participant without a decision is in
    // doubt and asks; decided ones are re-announced and answer others.
    let now = Instant::now();
    let records = vec![
        Record::Prepared {
            coordinator: C,
            tx: TxId(1),
            participants: vec![1, 2],
        },
        Record::Prepared {
            coordinator: C,
            tx: TxId(2),
            participants: vec![1, 2],
        },
        Record::Committed {
            coordinator: C,
            tx: TxId(2),
        },
        Record::Prepared {
            coordinator: C,
            tx: TxId(3),
            participants: vec![1, 2],
        },
        Record::Aborted {
            coordinator: C,
            tx: TxId(3),
        },
    ];
    let mut p = Participant::recover(Config::default(), 1, records.clone(), now).unwrap();
    assert_eq!(
        decided(&outs_p(&mut p)),
        vec![Outcome::Commit, Outcome::Abort]
    );
    assert_eq!(p.status(&C, TxId(1)), Some(ParticipantStatus::Prepared));
    p.handle_timeout(now);
    let request = Message::DecisionRequest {
        coordinator: C,
        tx: TxId(1),
    };
    assert_eq!(
        sends(&outs_p(&mut p)),
        vec![(C, request.clone()), (2, request)]
    );
    p.handle_message(
        2,
        Message::DecisionRequest {
            coordinator: C,
            tx: TxId(2),
        },
        now,
    );
    p.handle_message(
        2,
        Message::DecisionRequest {
            coordinator: C,
            tx: TxId(3),
        },
        now,
    );
    let answers: Vec<Answer> = sends(&outs_p(&mut p))
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::DecisionReply { answer, .. } => Some(answer),
            _ => None,
        })
        .collect();
    assert_eq!(answers, vec![Answer::Commit, Answer::Abort]);
    // The coordinator's Commit for the in-doubt one completes it.
    p.handle_message(
        C,
        Message::Decision {
            tx: TxId(1),
            outcome: Outcome::Commit,
        },
        now,
    );
    let o = outs_p(&mut p);
    p.on_persisted(persists(&o)[0].0);
    assert_eq!(decided(&outs_p(&mut p)), vec![Outcome::Commit]);

    // Contradictions are refused.
    let mut bad = records;
    bad.push(Record::Committed {
        coordinator: C,
        tx: TxId(3),
    });
    assert_eq!(
        Participant::recover(Config::default(), 1, bad, now).err(),
        Some(ParticipantRecoverError::Contradiction(TxId(3)))
    );
}

#[test]
fn config_and_begin_are_validated() {
    let mut cfg = Config::default();
    cfg.retry_interval = Duration::ZERO;
    assert!(matches!(
        cfg.validate(),
        Err(ConfigError::Duration {
            field: "retry_interval",
            ..
        })
    ));
    let mut cfg = Config::default();
    cfg.max_participants = 0;
    assert!(Coordinator::new(cfg, 0u64).is_err());
    let now = Instant::now();
    let mut c = coord();
    assert_eq!(c.begin(T, [], now), Err(BeginError::NoParticipants));
    assert_eq!(
        c.begin(T, [1, 1], now),
        Err(BeginError::DuplicateParticipant)
    );
    assert!(matches!(
        c.begin(T, 1..=100, now),
        Err(BeginError::TooManyParticipants { .. })
    ));
    c.begin(T, [1], now).unwrap();
    assert_eq!(c.begin(T, [1], now), Err(BeginError::Duplicate(T)));
}
