//! Log replication and commitment as the Raft paper (Ongaro & Ousterhout
//! 2014) specifies them: AppendEntries and the consistency check (§5.3),
//! the commit rule and Figure 8 (§5.4.2), and a new leader's no-op (§8).
//! Each test names the section it checks; nodes run with neither pre-vote
//! nor check-quorum.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;
use common::*;
use dsys_consensus::{AppendOutcome, Entry, MessageBody, Role};

const VOTERS: [u64; 3] = [1, 2, 3];

/// On winning, a leader appends an empty entry of its term and sends it to
/// every follower, probing from just after its last entry.
///
/// Reference: §5.3 ("Once a leader has been elected, it begins servicing
/// client requests"), §8 ("each leader commit a blank no-op entry into the
/// log at the start of its term").
#[test]
fn new_leader_appends_a_noop_and_broadcasts_it() {
    let mut node = node_with_log(1, &VOTERS, &[1, 1], 1, 0, paper_config(1));
    let sent = make_leader(&mut node);
    assert_eq!(node.term(), 2);
    let noop = Entry::new(2, 3, Bytes::new());
    assert_eq!(log_entries(&node)[2], noop);
    assert_eq!(
        sent,
        [
            msg(1, 2, 2, append(2, 1, vec![noop.clone()], 0)),
            msg(1, 3, 2, append(2, 1, vec![noop], 0)),
        ]
    );
}

/// A leader commits an entry once a majority (its own persisted copy
/// included) stores it, hands it out to apply only then, and followers
/// learn the new commit index from the leader's next message.
///
/// Reference: §5.3 ("A log entry is committed once the leader that created
/// the entry has replicated it on a majority of the servers ... Once a
/// follower learns that a log entry is committed, it applies the entry").
#[test]
fn leader_commits_and_applies_once_a_majority_stores_an_entry() {
    let mut node = new_node(1, &VOTERS, paper_config(1));
    make_leader(&mut node);
    let out = step(&mut node, msg(2, 1, 1, accepted(1)));
    assert_eq!(node.status().commit, 1);
    assert_eq!(applied(&out), [Entry::new(1, 1, Bytes::new())]);

    let proposal = node.propose(Bytes::from("a")).expect("leader");
    assert_eq!((proposal.term, proposal.index), (1, 2));
    let out = drain(&mut node);
    let entry = Entry::new(1, 2, "a");
    assert_eq!(
        sends(&out),
        [msg(1, 2, 1, append(1, 1, vec![entry.clone()], 1))]
    );
    assert!(applied(&out).is_empty(), "applied before commit");
    assert_eq!(node.status().commit, 1);

    // Node 3 acknowledging only the no-op commits nothing new.
    let out = step(&mut node, msg(3, 1, 1, accepted(1)));
    assert!(applied(&out).is_empty());
    assert_eq!(node.status().commit, 1);

    let out = step(&mut node, msg(2, 1, 1, accepted(2)));
    assert_eq!(node.status().commit, 2);
    assert_eq!(applied(&out), [entry]);
    let commit_updates: Vec<Msg> = sends(&out)
        .into_iter()
        .filter(|m| matches!(m.body, MessageBody::Append { commit: 2, .. }))
        .collect();
    assert!(
        commit_updates.iter().any(|m| m.to == 2),
        "follower 2 is not told the commit index: {out:?}"
    );
}

/// The same through a network: every node ends up with the same committed
/// log and applies the same commands in the same order.
///
/// Reference: §5.3; Figure 3 (State Machine Safety).
#[test]
fn followers_apply_what_the_leader_commits() {
    let mut network = Network::new(&[1, 2, 3, 4, 5]);
    network.elect(1);
    for data in ["a", "b", "c"] {
        network.propose(1, data).expect("leader");
        network.deliver_all();
    }
    let expected: Vec<Bytes> = ["a", "b", "c"].into_iter().map(Bytes::from).collect();
    for id in network.ids() {
        assert_eq!(network.node(id).status().commit, 4, "node {id}");
        assert_eq!(network.applied_data(id), expected, "node {id}");
        assert_eq!(network.log_entries(id), network.log_entries(1), "node {id}");
    }
}

/// Proposals on a leader that cannot reach a majority are appended but
/// never applied; they apply once the majority is back.
///
/// Reference: §5.3 ("the leader ... applies the entry to its state machine
/// and returns the result of that execution to the client" only once
/// committed).
#[test]
fn leader_applies_a_proposal_only_after_commit() {
    let mut network = Network::new(&VOTERS);
    network.elect(1);
    network.isolate(1);
    network.propose(1, "a").expect("leader");
    network.run(5);
    assert_eq!(network.node(1).status().last_index, 2);
    assert_eq!(network.node(1).status().commit, 1);
    assert!(network.applied_data(1).is_empty());

    network.heal();
    network.run(3);
    for id in network.ids() {
        assert_eq!(network.applied_data(id), [Bytes::from("a")], "node {id}");
    }
}

/// Committing an entry commits every entry before it, including entries
/// a previous leader created.
///
/// Reference: §5.3 ("This also commits all preceding entries in the
/// leader's log, including entries created by previous leaders").
#[test]
fn preceding_entries_commit_with_a_later_one() {
    let mut node = node_with_log(1, &VOTERS, &[1, 1], 1, 0, paper_config(1));
    make_leader(&mut node);
    let out = step(&mut node, msg(3, 1, 2, accepted(3)));
    assert_eq!(node.status().commit, 3);
    let indexes: Vec<(u64, u64)> = applied(&out).iter().map(|e| (e.index, e.term)).collect();
    assert_eq!(indexes, [(1, 1), (2, 1), (3, 2)]);
}

/// A follower refuses entries whose previous entry it does not hold with
/// the same term, and hints where the leader should retry: its last entry
/// at or before the mismatch whose term is at most the leader's.
///
/// Reference: §5.3 ("If the follower does not find an entry in its log
/// with the same index and term, then it refuses the new entries"; the
/// conflicting-term optimisation at the end of §5.3).
#[test]
fn follower_rejects_a_mismatched_append_with_a_hint() {
    // (follower log, prev_index, prev_term, expected outcome)
    let table: &[(&[u64], u64, u64, AppendOutcome)] = &[
        (&[1, 2], 2, 2, AppendOutcome::Accepted { last_index: 2 }),
        (&[1, 2], 1, 1, AppendOutcome::Accepted { last_index: 1 }),
        (&[1, 2], 0, 0, AppendOutcome::Accepted { last_index: 0 }),
        (&[1, 2], 2, 3, reject(2, 2, 2)),
        (&[1, 2], 3, 3, reject(3, 2, 2)),
        (&[1, 2], 2, 1, reject(2, 1, 1)),
        (&[1, 2], 5, 2, reject(5, 2, 2)),
        (&[], 4, 1, reject(4, 0, 0)),
        // Figure 7's follower (e) and (f) asked about the leader's last entry.
        (&[1, 1, 1, 4, 4, 4, 4], 10, 6, reject(10, 7, 4)),
        (&[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 10, 6, reject(10, 10, 3)),
        (&[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 9, 2, reject(9, 6, 2)),
    ];
    for &(terms, prev_index, prev_term, outcome) in table {
        let mut node = node_with_log(1, &VOTERS, terms, 7, 0, paper_config(1));
        drain(&mut node);
        let out = step(
            &mut node,
            msg(2, 1, 8, append(prev_index, prev_term, vec![], 0)),
        );
        assert_eq!(
            sends(&out),
            [msg(1, 2, 8, MessageBody::AppendResponse(outcome))],
            "log {terms:?}, prev ({prev_index}, {prev_term})"
        );
        assert_eq!(log_terms(&node), terms, "a rejected append changed the log");
    }
}

fn reject(rejected: u64, hint_index: u64, hint_term: u64) -> AppendOutcome {
    AppendOutcome::Rejected {
        rejected,
        hint_index,
        hint_term,
    }
}

/// A follower that accepts entries deletes any conflicting suffix and
/// appends the leader's entries; entries it already holds stay as they
/// are, and only the new suffix is handed out to persist.
///
/// Reference: §5.3 ("the leader handles inconsistencies by forcing the
/// followers' logs to duplicate its own"); Figure 2, AppendEntries
/// receiver steps 3 and 4.
#[test]
fn follower_overwrites_a_conflicting_suffix() {
    /// prev_index, prev_term, entries, resulting log terms, entries persisted.
    type Case = (u64, u64, Vec<Entry<u64>>, Vec<u64>, Vec<Entry<u64>>);
    let table: Vec<Case> = vec![
        (2, 2, ents(3, &[3]), vec![1, 2, 3], ents(3, &[3])),
        (1, 1, ents(2, &[3, 4]), vec![1, 3, 4], ents(2, &[3, 4])),
        (0, 0, ents(1, &[1]), vec![1, 2], vec![]),
        (0, 0, ents(1, &[1, 2]), vec![1, 2], vec![]),
        (0, 0, ents(1, &[3]), vec![3], ents(1, &[3])),
        (
            1,
            1,
            ents(2, &[2, 4, 4]),
            vec![1, 2, 4, 4],
            ents(3, &[4, 4]),
        ),
    ];
    for (prev_index, prev_term, entries, want_terms, want_persisted) in table {
        let mut node = node_with_log(1, &VOTERS, &[1, 2], 2, 0, paper_config(1));
        drain(&mut node);
        let out = step(
            &mut node,
            msg(2, 1, 4, append(prev_index, prev_term, entries.clone(), 0)),
        );
        assert_eq!(
            log_terms(&node),
            want_terms,
            "prev ({prev_index}, {prev_term}) {entries:?}"
        );
        let persisted: Vec<Entry<u64>> =
            persists(&out).into_iter().flat_map(|p| p.entries).collect();
        assert_eq!(
            persisted, want_persisted,
            "prev ({prev_index}, {prev_term}) {entries:?}"
        );
        let last_new = prev_index + entries.len() as u64;
        assert_eq!(sends(&out), [msg(1, 2, 4, accepted(last_new))]);
    }
}

/// The leader's log in Figure 7 (term 8 is about to begin).
const FIGURE7_LEADER: [u64; 10] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

/// Figure 7's followers (a)–(f).
const FIGURE7_FOLLOWERS: [&[u64]; 6] = [
    &[1, 1, 1, 4, 4, 5, 5, 6, 6],
    &[1, 1, 1, 4],
    &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    &[1, 1, 1, 4, 4, 4, 4],
    &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
];

/// Three nodes: node 1 with the Figure 7 leader's log, node 2 with
/// `follower`'s, node 3 a copy of the leader's (so node 1 can win even
/// when node 2's log is more up to date). Node 1 wins term 8.
fn figure7_network(follower: &[u64]) -> Network {
    let mut network = Network::from_nodes(vec![
        node_with_log(1, &VOTERS, &FIGURE7_LEADER, 7, 0, paper_config(1)),
        node_with_log(2, &VOTERS, follower, 7, 0, paper_config(2)),
        node_with_log(3, &VOTERS, &FIGURE7_LEADER, 7, 0, paper_config(3)),
    ]);
    network.campaign(1);
    network
}

/// Rejections node 2 sent among the delivered messages.
fn rejections_from_2(network: &Network) -> usize {
    network
        .delivered()
        .iter()
        .filter(|m| {
            m.from == 2
                && matches!(
                    m.body,
                    MessageBody::AppendResponse(AppendOutcome::Rejected { .. })
                )
        })
        .count()
}

/// A new leader brings each of Figure 7's followers (missing entries,
/// extra uncommitted entries, or both) to exactly its own log, and they
/// all commit its no-op.
///
/// Reference: §5.3, Figure 7 ("the leader must find the latest log entry
/// where the two logs agree, delete any entries in the follower's log
/// after that point, and send the follower all of the leader's entries
/// after that point").
#[test]
fn figure7_leader_brings_every_follower_up_to_date() {
    for (case, follower) in FIGURE7_FOLLOWERS.iter().enumerate() {
        let mut network = figure7_network(follower);
        network.deliver_all();
        assert_eq!(network.node(1).role(), Role::Leader, "case {case}");
        assert_eq!(network.node(1).term(), 8);
        network.run(1);
        let mut want = FIGURE7_LEADER.to_vec();
        want.push(8);
        assert_eq!(
            network.log_terms(1),
            want,
            "case {case}: the leader's log changed"
        );
        assert_eq!(
            network.log_entries(2),
            network.log_entries(1),
            "case {case}"
        );
        assert_eq!(network.node(2).status().commit, 11, "case {case}");
        assert_eq!(network.applied(2), network.log_entries(1), "case {case}");
    }
}

/// With the follower's hint (§5.3's optimisation), the leader finds where
/// Figure 7's followers agree with it in at most one rejection each;
/// backing off one entry per rejection takes as many as entries differ.
///
/// Reference: §5.3 ("the follower can include the term of the conflicting
/// entry and the first index it stores for that term ... one
/// AppendEntries RPC will be required for each term with conflicting
/// entries, rather than one RPC per entry").
#[test]
fn figure7_fast_backoff_needs_fewer_rounds_than_one_by_one() {
    // One-by-one rejections: the leader's next index walks down from 11 to
    // just after the last agreeing entry.
    let one_by_one_expected = [1, 6, 0, 0, 5, 7];
    let mut total_fast = 0;
    let mut total_slow = 0;
    for (case, follower) in FIGURE7_FOLLOWERS.iter().enumerate() {
        let mut fast = figure7_network(follower);
        fast.deliver_all();
        let fast_rejections = rejections_from_2(&fast);

        let mut slow = figure7_network(follower);
        // A follower that hints nothing useful: "retry one entry earlier".
        let rewritten = Rc::new(Cell::new(0));
        let counter = Rc::clone(&rewritten);
        slow.set_filter(move |mut m| {
            if let MessageBody::AppendResponse(AppendOutcome::Rejected { rejected, .. }) = m.body {
                counter.set(counter.get() + 1);
                m.body = MessageBody::AppendResponse(AppendOutcome::Rejected {
                    rejected,
                    hint_index: rejected - 1,
                    hint_term: 0,
                });
            }
            Some(m)
        });
        slow.deliver_all();
        let slow_rejections = rejections_from_2(&slow);
        assert_eq!(slow_rejections, rewritten.get());

        assert_eq!(
            slow.log_entries(2),
            slow.log_entries(1),
            "case {case}: one by one"
        );
        assert_eq!(
            fast.log_entries(2),
            fast.log_entries(1),
            "case {case}: fast"
        );
        assert_eq!(slow_rejections, one_by_one_expected[case], "case {case}");
        assert!(
            fast_rejections <= 1,
            "case {case}: {fast_rejections} rejections"
        );
        assert!(fast_rejections <= slow_rejections, "case {case}");
        total_fast += fast_rejections;
        total_slow += slow_rejections;
    }
    assert!(
        total_fast < total_slow,
        "fast {total_fast}, one by one {total_slow}"
    );
}

/// Builds Figure 8 up to (c) on five nodes (ids 1–5 for S1–S5), shifted by
/// the no-op each new leader appends:
/// - term 1: S1 leads; its no-op (index 1) commits everywhere.
/// - (a) S1 replicates "x" (index 2, term 1) to S2 only.
/// - (b) S1 crashes; S5 wins term 2 with votes from S3 and S4 and
///   appends its no-op at index 2, which reaches nobody.
/// - (c) S5 crashes; S1 restarts and wins term 3 (its first attempt, in
///   term 2, finds S3 and S4 already voted), appends its no-op at index 3,
///   and replicates "x" to S3 and S4 but not the no-op: index 2 is now on a
///   majority (S1–S4).
fn figure8_until_c() -> Network {
    let mut network = Network::new(&[1, 2, 3, 4, 5]);
    network.elect(1);

    // (a)
    for id in [3, 4, 5] {
        network.cut(1, id);
    }
    network.propose(1, "x").expect("leader");
    network.deliver_all();
    assert_eq!(network.log_terms(2), [1, 1]);
    assert_eq!(network.log_terms(3), [1]);

    // (b)
    network.isolate(1);
    network.set_filter(|m| {
        (m.from != 5 || !matches!(m.body, MessageBody::Append { .. })).then_some(m)
    });
    network.elect(5);
    assert_eq!(network.node(5).term(), 2);
    assert_eq!(network.log_terms(5), [1, 2]);
    assert_eq!(network.log_terms(2), [1, 1]);
    assert_eq!(network.log_terms(3), [1]);
    assert_eq!(network.log_terms(4), [1]);

    // (c)
    network.clear_filter();
    network.rejoin(1);
    network.restart(1);
    network.isolate(5);
    network.restart(5);
    network.campaign(1);
    network.deliver_all();
    assert_eq!(
        network.node(1).role(),
        Role::Candidate,
        "S3 and S4 voted for S5 in term 2"
    );
    network.campaign(1);
    // S1's current-term entries (its no-op) are held back on the way.
    network.set_filter(|mut m| {
        if m.from == 1 {
            if let MessageBody::Append { entries, .. } = &mut m.body {
                entries.retain(|e| e.term != 3);
            }
        }
        Some(m)
    });
    network.deliver_all();
    assert_eq!(network.node(1).role(), Role::Leader);
    assert_eq!(network.node(1).term(), 3);
    assert_eq!(network.log_terms(1), [1, 1, 3]);
    for id in [2, 3, 4] {
        assert_eq!(network.log_terms(id), [1, 1], "S{id} holds x");
    }
    network
}

/// A leader never commits an entry of an earlier term by counting its
/// replicas: in Figure 8 (c), "x" is on a majority yet uncommitted, and
/// rightly so, since in (d) S5 can still be elected and overwrite it.
///
/// Reference: §5.4.2, Figure 8 ("a leader cannot immediately conclude that
/// an entry from a previous term is committed once it is stored on a
/// majority of servers").
#[test]
fn figure8_leader_never_commits_an_earlier_term_entry_by_counting_replicas() {
    let mut network = figure8_until_c();
    for id in 1..=4 {
        assert_eq!(
            network.node(id).status().commit,
            1,
            "S{id} committed x in (c)"
        );
    }

    // (d): S1 crashes before its no-op spreads; S5 restarts and, with a
    // log ending in term 2, wins term 4 (after a first try in term 3) and
    // overwrites "x" everywhere it can reach.
    network.clear_filter();
    network.rejoin(5);
    network.restart(5);
    network.isolate(1);
    network.campaign(5);
    network.deliver_all();
    if !network.node(5).is_leader() {
        network.campaign(5);
        network.deliver_all();
    }
    assert_eq!(network.node(5).role(), Role::Leader);
    assert_eq!(network.node(5).term(), 4);
    network.run(2);
    for id in 2..=5 {
        assert_eq!(network.log_terms(id), [1, 2, 4], "S{id}");
        assert_eq!(network.node(id).status().commit, 3, "S{id}");
    }
    for id in 1..=5 {
        assert!(
            network.applied_data(id).is_empty(),
            "S{id} applied x, which was lost"
        );
    }
}

/// Once an entry of the leader's current term commits, every entry before
/// it commits too, including "x" from term 1; S5 can then no longer be
/// elected (Figure 8 (e)).
///
/// Reference: §5.4.2 ("Raft never commits log entries from previous terms
/// by counting replicas. Only log entries from the leader's current term
/// are committed by counting replicas; once an entry from the current term
/// has been committed in this way, then all prior entries are committed
/// indirectly").
#[test]
fn figure8_old_term_entry_commits_once_a_current_term_entry_does() {
    let mut network = figure8_until_c();
    network.clear_filter();
    network.run(2);
    for id in 1..=4 {
        assert_eq!(network.log_terms(id), [1, 1, 3], "S{id}");
        assert_eq!(network.node(id).status().commit, 3, "S{id}");
        assert_eq!(network.applied_data(id), [Bytes::from("x")], "S{id}");
    }

    // (e): S5 cannot win: every other server's log ends in term 3.
    network.rejoin(5);
    network.restart(5);
    network.isolate(1);
    for _ in 0..3 {
        network.campaign(5);
        network.deliver_all();
        assert_ne!(network.node(5).role(), Role::Leader);
    }
    for id in 2..=4 {
        assert_eq!(network.log_terms(id), [1, 1, 3], "S{id}");
    }
}
