//! Chapter `raft`: dsys-consensus's Raft log on the paper's two log figures
//! (Ongaro & Ousterhout 2014).
//!
//! 1. Figure 7: a new leader of term 8 brings six divergent followers in
//!    line. The leader's replication loop is written out here (the crate has
//!    no Raft node yet); each follower runs `RaftLog::maybe_append`, and a
//!    refusal comes back with `find_conflict_by_term`'s hint, which the
//!    leader reads against its own log to skip whole terms, as etcd does.
//!    Counted against backing off one index per round trip.
//! 2. Figure 8: why a leader commits by counting replicas only entries of
//!    its own term (§5.4.2), with `maybe_commit` and `is_up_to_date`.
//!
//! No clocks, no threads: a round trip is one `maybe_append` call, so every
//! number printed is the same on every run.

use dsys_consensus::{Entry, Index, MemStorage, RaftLog, Storage, Term};

use crate::report::{self, Res, Table, check, check_eq};

/// One node's log, over in-memory storage; nodes are named by number.
type Log = RaftLog<MemStorage<u64>>;

/// Runs the chapter.
pub(crate) fn run() -> Res {
    figure_7()?;
    figure_8()?;
    Ok(())
}

/// A log holding one entry per term in `terms` (indexes 1, 2, ...), all of
/// them persisted: what a node finds on disk when it restarts.
fn log_of(terms: &[Term]) -> Res<Log> {
    let mut storage = MemStorage::new(vec![1, 2, 3, 4, 5]);
    storage.append(&entries_of(terms))?;
    Ok(RaftLog::new(storage))
}

fn entries_of(terms: &[Term]) -> Vec<Entry> {
    (1..)
        .zip(terms)
        .map(|(index, &term)| Entry::new(term, index, ""))
        .collect()
}

/// The term at every index of `log`, persisted or not.
fn terms_of(log: &Log) -> Res<Vec<Term>> {
    Ok((log.first_index()..=log.last_index())
        .map(|index| log.term(index))
        .collect::<Result<_, _>>()?)
}

/// The terms of the persisted log.
fn stored_terms(log: &Log) -> Res<Vec<Term>> {
    let storage = log.storage();
    Ok((storage.first_index()..=storage.last_index())
        .map(|index| storage.term(index))
        .collect::<Result<_, _>>()?)
}

/// `1 1 1 4 4`: one term per index, as the paper draws a log.
fn show(terms: &[Term]) -> String {
    terms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// How many leading indexes two logs agree on.
fn common_prefix(a: &[Term], b: &[Term]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

// --- 1. Figure 7 ----------------------------------------------------------------

/// The leader of term 8, before it appends its no-op.
const LEADER: [Term; 10] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

/// The leader's term.
const TERM: Term = 8;

/// Figure 7's followers (a)-(f).
const FOLLOWERS: [(&str, &[Term]); 6] = [
    ("(a)", &[1, 1, 1, 4, 4, 5, 5, 6, 6]),
    ("(b)", &[1, 1, 1, 4]),
    ("(c)", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
    ("(d)", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
    ("(e)", &[1, 1, 1, 4, 4, 4, 4]),
    ("(f)", &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
];

/// How the leader backs off when a follower refuses AppendEntries.
#[derive(Clone, Copy)]
enum Backoff {
    /// Read the follower's `(index, term)` hint against the leader's log.
    Hint,
    /// `next_index -= 1`, as in the paper's basic algorithm.
    OneByOne,
}

/// One refused AppendEntries and where the leader goes next.
struct Refusal {
    /// The `(prevLogIndex, prevLogTerm)` the follower did not hold.
    prev: (Index, Term),
    /// The follower's hint: its largest index at or below `prev.0` whose
    /// term is at most `prev.1`, with that term.
    hint: (Index, Term),
    /// The leader's next `next_index`.
    next: Index,
}

/// The leader's replication loop for one follower, from `next` until the
/// follower accepts. Returns the round trips taken and the refusals.
fn replicate(
    leader: &Log,
    follower: &mut Log,
    mut next: Index,
    backoff: Backoff,
) -> Res<(usize, Vec<Refusal>)> {
    let last = leader.last_index();
    let mut refusals = Vec::new();
    for trip in 1..=last + 1 {
        let prev = next - 1;
        let prev_term = leader.term(prev)?;
        let entries = leader.slice(next, last + 1, u64::MAX)?;
        // Commit index 0: this section is about matching, not committing.
        if let Some(last_new) = follower.maybe_append(prev, prev_term, 0, &entries)? {
            check_eq("the follower's last new index", &last_new, &last)?;
            return Ok((usize::try_from(trip)?, refusals));
        }
        let hint = follower.find_conflict_by_term(prev, prev_term);
        let retry = match backoff {
            // etcd's leader: the largest index of its own log at or below the
            // hint whose term is at most the hint's term. Everything after it
            // is either missing on the follower or from a term it lacks.
            Backoff::Hint => leader.find_conflict_by_term(hint.0, hint.1).0 + 1,
            Backoff::OneByOne => prev,
        };
        check("a refusal moves next_index back", retry < next)?;
        refusals.push(Refusal {
            prev: (prev, prev_term),
            hint,
            next: retry,
        });
        next = retry;
    }
    Err(format!("no agreement after {} round trips", last + 1).into())
}

fn figure_7() -> Res {
    report::section("1. Figure 7: a new leader and six divergent followers");
    let mut leader = log_of(&LEADER)?;
    // nextIndex starts just past the leader's log when it takes office (11
    // in the paper, as in etcd's becomeLeader); then it appends its no-op.
    let first_next = leader.last_index() + 1;
    leader.append(&[Entry::new(TERM, first_next, "")])?;
    let target = terms_of(&leader)?;
    report::note(&format!(
        "The leader of term {TERM} holds {}, then appends its no-op at {first_next}. It sets every \
         next_index to {first_next} and sends AppendEntries(prev = next - 1, its term, entries \
         from next). A follower that lacks prev refuses, with a hint: its last index <= prev \
         whose term <= prev's term.",
        show(&LEADER),
    ));

    let mut table = Table::new(&[
        "follower",
        "log terms",
        "diverged\nat index",
        "round trips\n(hint)",
        "round trips\n(1 by 1)",
        "entries\nremoved",
        "entries\nadded",
        "same as\nleader?",
    ])
    .numeric(&[2, 3, 4, 5, 6]);
    table.row(["leader", &show(&target), "", "", "", "", "", ""]);
    let mut refusals = Vec::new();
    let (mut most_hint, mut most_naive) = (0, 0);
    for (name, terms) in FOLLOWERS {
        let prefix = common_prefix(terms, &target);
        let mut trips = [0; 2];
        for (slot, backoff) in [Backoff::Hint, Backoff::OneByOne].into_iter().enumerate() {
            let mut follower = log_of(terms)?;
            let (taken, refused) = replicate(&leader, &mut follower, first_next, backoff)?;
            trips[slot] = taken;
            check_eq(
                &format!("follower {name}'s log after replication"),
                &terms_of(&follower)?,
                &target,
            )?;
            // Persist what it accepted: storage now holds the leader's log too.
            let batch = follower.take_to_persist();
            follower.storage_mut().append(&batch)?;
            if let Some(last) = batch.last() {
                follower.on_persisted(last.index, last.term);
            }
            check_eq(
                &format!("follower {name}'s persisted log"),
                &stored_terms(&follower)?,
                &target,
            )?;
            if let Backoff::Hint = backoff {
                refusals.extend(refused.into_iter().map(|r| (name, r)));
            }
        }
        let [hint, naive] = trips;
        check(
            &format!("hints take no more round trips than one by one for {name}"),
            hint <= naive,
        )?;
        most_hint = most_hint.max(hint);
        most_naive = most_naive.max(naive);
        table.row([
            name.to_owned(),
            show(terms),
            (prefix + 1).to_string(),
            hint.to_string(),
            naive.to_string(),
            (terms.len() - prefix).to_string(),
            (target.len() - prefix).to_string(),
            "yes".to_owned(),
        ]);
    }
    table.print();
    report::note(
        "Diverged at: the first index where the follower differs from the leader or stops short. \
         A round trip is one AppendEntries and its answer.",
    );

    report::note(
        "Every refusal with hints. All three are (index, term); the probe is the leader's own \
         last entry at or below the hint's index whose term is at most the hint's term:",
    );
    let mut trace = Table::new(&[
        "follower",
        "refused prev",
        "follower's hint",
        "leader's probe",
        "next_index",
    ])
    .numeric(&[4]);
    for (name, refusal) in &refusals {
        trace.row([
            (*name).to_owned(),
            format!("({}, {})", refusal.prev.0, refusal.prev.1),
            format!("({}, {})", refusal.hint.0, refusal.hint.1),
            format!("({}, {})", refusal.next - 1, leader.term(refusal.next - 1)?),
            refusal.next.to_string(),
        ]);
    }
    trace.print();
    report::note(
        "(f) hints (10, 3): it has nothing from terms 4-6, so the leader skips back past all of \
         them, to index 3, in one step. (c) and (d) match at 10 at once: their extra entries are \
         simply overwritten.",
    );

    report::takeaway(&format!(
        "Hints plus the leader's log skip whole terms: {most_hint} round trips at most, against \
         {most_naive} one by one."
    ));
    Ok(())
}

// --- 2. Figure 8 ------------------------------------------------------------------

/// Whether the node with `log` would vote for S5 of Figure 8, whose log is
/// `1 3` (§5.4.1).
fn votes_for_s5(log: &Log) -> bool {
    log.is_up_to_date(2, 3)
}

fn figure_8() -> Res {
    report::section("2. Figure 8: a leader commits only entries of its own term (section 5.4.2)");
    report::note(
        "Five servers. S1 led term 2 and left index 2 (term 2) on S2 only; S5 led term 3 and \
         wrote its own index 2 (term 3). Now S1 leads term 4 and has appended index 3 (term 4).",
    );
    let mut s1 = log_of(&[1, 2, 4])?;
    let (mut s2, mut s3, s4) = (log_of(&[1, 2])?, log_of(&[1])?, log_of(&[1])?);
    s1.commit_to(1)?;
    let mut table = Table::new(&["action", "committed", "why"]).numeric(&[1]);
    table.row([
        "S1 leads term 4, log 1 2 4",
        &s1.committed().to_string(),
        "index 1 was committed in term 1",
    ]);

    // S1 replicates index 2 to S3: a majority (S1, S2, S3) now holds it.
    check_eq(
        "S3 accepts index 2",
        &s3.maybe_append(1, 1, 1, &entries_of(&[1, 2])[1..])?,
        &Some(2),
    )?;
    let committed = s1.maybe_commit(2, 4);
    check("maybe_commit(2, 4) refuses a term-2 entry", !committed)?;
    check_eq("S1's commit index", &s1.committed(), &1)?;
    let electors = [&s2, &s3, &s4].map(votes_for_s5);
    check(
        "S2, S3 and S4 would all vote for S5",
        electors.iter().all(|&vote| vote),
    )?;
    // What S5 would do as leader of term 5: overwrite index 2 on a majority.
    for (name, log) in [("S2", &s2), ("S3", &s3)] {
        let mut overwritten = log.clone();
        overwritten.maybe_append(1, 1, 0, &[Entry::new(3, 2, "")])?;
        check_eq(
            &format!("S5 overwrites index 2 on {name}"),
            &overwritten.term(2)?,
            &3,
        )?;
    }
    table.row([
        &format!("index 2 on S1-S3: maybe_commit(2, 4) = {committed}"),
        &s1.committed().to_string(),
        "term 2 < 4: S5 (log 1 3) can still win",
    ]);

    // S1 replicates its own index 3 to S2 and S3.
    for (name, log) in [("S2", &mut s2), ("S3", &mut s3)] {
        check_eq(
            &format!("{name} accepts index 3"),
            &log.maybe_append(2, 2, 1, &[Entry::new(4, 3, "")])?,
            &Some(3),
        )?;
    }
    let committed = s1.maybe_commit(3, 4);
    check("maybe_commit(3, 4) commits a term-4 entry", committed)?;
    check_eq("S1's commit index", &s1.committed(), &3)?;
    check(
        "S1, S2 and S3 now refuse S5",
        [&s1, &s2, &s3].iter().all(|log| !votes_for_s5(log)),
    )?;
    table.row([
        &format!("index 3 on S1-S3: maybe_commit(3, 4) = {committed}"),
        &s1.committed().to_string(),
        "term 4 on a majority; 2 commits with it",
    ]);
    table.print();
    report::note(
        "After row 2, is_up_to_date(2, 3) is true on S2, S3 and S4: S5's last term 3 beats their \
         2, 1 and 1, so S5 can win term 5 and replace index 2 on a majority (Figure 8d). After \
         row 3, S2 and S3 end in term 4 and refuse it, as S1 does: S5 gets 2 votes of 5.",
    );

    report::takeaway(
        "Counting replicas commits only current-term entries; older ones commit beneath them.",
    );
    Ok(())
}
