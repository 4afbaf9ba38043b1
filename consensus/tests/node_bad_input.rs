//! Input a correct peer never sends: unknown or misaddressed senders,
//! acknowledgements past the leader's log, appends that skip indexes or
//! contradict committed entries, commit indexes past the log, extreme
//! values. The node ignores and counts them (`Counters`), never panics, and
//! never changes a committed entry (Raft Figure 3, State Machine Safety).
//! A property test feeds random messages to a node in every role.

mod common;

use bytes::Bytes;
use common::*;
use dsys_consensus::{
    AppendOutcome, Entry, MessageBody, Output, Role, SnapshotMeta, SnapshotOutcome,
};
use proptest::prelude::*;

const VOTERS: [u64; 3] = [1, 2, 3];

/// A follower of term 1 holding entries 1–2 of term 1, nothing committed.
fn follower() -> Node {
    let mut node = node_with_log(1, &VOTERS, &[1, 1], 1, 0, paper_config(1));
    drain(&mut node);
    node
}

/// Messages from outside the configuration (but a leader's appends and
/// heartbeats, and vote requests), addressed to another node, or claiming to come from the
/// receiver itself are dropped and counted, whatever their term.
#[test]
fn messages_from_unknown_or_misaddressed_senders_are_counted() {
    let bodies = [
        append(2, 1, ents(3, &[5]), 3),
        heartbeat(2, 1),
        vote_request(10, 5),
        MessageBody::TimeoutNow,
        MessageBody::ReadIndexRequest { id: 1 },
    ];
    for (from, to) in [(9, 1), (2, 3), (1, 1), (0, 1)] {
        for (i, body) in bodies.iter().enumerate() {
            if i < 3 && from != 1 && to == 1 {
                // A leader's messages and vote requests are heard from
                // anyone: this node's membership may be the stale one.
                continue;
            }
            let mut node = follower();
            let before = node.status();
            let out = step(&mut node, msg(from, to, 5, body.clone()));
            assert!(out.is_empty(), "{from}->{to} {body:?}: {out:?}");
            assert_eq!(node.status(), before, "{from}->{to} {body:?}");
            assert_eq!(node.counters().unknown_sender, 1);
        }
    }

    let mut leader = new_node(1, &VOTERS, paper_config(1));
    make_leader(&mut leader);
    step(&mut leader, msg(9, 1, 1, accepted(1)));
    assert_eq!(leader.counters().unknown_sender, 1);
    assert_eq!(
        leader.status().commit,
        0,
        "a stranger's acknowledgement counted"
    );
}

/// A read answer from anyone but the leader the read was forwarded to is
/// ignored and counted.
#[test]
fn read_answers_from_a_non_leader_are_counted() {
    let mut node = follower();
    step(&mut node, msg(2, 1, 1, heartbeat(0, 0)));
    node.read_index(5).expect("2 leads");
    drain(&mut node);
    let out = step(
        &mut node,
        msg(
            3,
            1,
            1,
            MessageBody::ReadIndexResponse {
                id: 5,
                index: Some(0),
            },
        ),
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(node.counters().unknown_sender, 1);
}

/// An acknowledgement of entries past the leader's last index is ignored
/// and counted: it must not move the follower's progress or the commit.
#[test]
fn append_acks_beyond_the_leaders_log_are_counted() {
    let mut node = new_node(1, &VOTERS, paper_config(1));
    make_leader(&mut node);
    assert_eq!(node.status().last_index, 1);
    for last_index in [2, 100, u64::MAX] {
        step(&mut node, msg(2, 1, 1, accepted(last_index)));
    }
    assert_eq!(node.counters().malformed, 3);
    assert_eq!(node.progress(&2).map(|p| p.matched()), Some(0));
    assert_eq!(node.status().commit, 0);
    // Absurd rejections change nothing a later real answer cannot fix.
    step(
        &mut node,
        msg(2, 1, 1, rejected(u64::MAX, u64::MAX, u64::MAX)),
    );
    step(&mut node, msg(2, 1, 1, rejected(0, u64::MAX, 0)));
    step(&mut node, msg(2, 1, 1, accepted(1)));
    assert_eq!(node.status().commit, 1);
    assert!(node.is_leader());
}

/// Entries that do not follow the previous index one by one (a gap, a
/// jump, going backwards, overflowing the index space) are refused whole:
/// the log is unchanged, nothing is persisted or acknowledged.
#[test]
fn appends_that_skip_indexes_are_counted() {
    let bad = [
        append(2, 1, ents(4, &[1]), 0),
        append(2, 1, vec![Entry::new(1, 3, ""), Entry::new(1, 5, "")], 0),
        append(2, 1, ents(2, &[1]), 0),
        append(2, 1, vec![Entry::new(1, 3, ""), Entry::new(1, 3, "")], 0),
        append(u64::MAX, 1, ents(0, &[1]), 0),
    ];
    for (case, body) in bad.into_iter().enumerate() {
        let mut node = follower();
        let out = step(&mut node, msg(2, 1, 1, body));
        assert_eq!(node.counters().malformed, 1, "case {case}");
        assert_eq!(log_terms(&node), [1, 1], "case {case}");
        assert!(persists(&out).is_empty(), "case {case}: {out:?}");
        assert!(sends(&out).is_empty(), "case {case}: {out:?}");
    }
}

/// Entries placed at the very top of the index space are refused like any
/// other that cannot follow the log, without overflowing.
#[test]
fn appends_at_the_top_of_the_index_space_are_counted() {
    let top = u64::MAX;
    // Entries that do follow prev_index up to u64::MAX are well formed:
    // the follower simply does not hold that previous entry and refuses.
    for (prev_index, entries) in [
        (top - 1, vec![Entry::new(1, top, "")]),
        (
            top - 2,
            vec![Entry::new(1, top - 1, ""), Entry::new(1, top, "")],
        ),
    ] {
        let mut node = follower();
        let out = step(&mut node, msg(2, 1, 1, append(prev_index, 1, entries, 0)));
        assert_eq!(log_terms(&node), [1, 1]);
        assert!(
            sends(&out).iter().any(|m| matches!(
                m.body,
                MessageBody::AppendResponse(AppendOutcome::Rejected { .. })
            )),
            "{out:?}"
        );
    }
    for (prev_index, entries) in [
        (top - 1, vec![Entry::new(1, 0, "")]),
        (top - 1, vec![Entry::new(1, top, ""), Entry::new(1, 0, "")]),
        (top, vec![Entry::new(1, top, "")]),
    ] {
        let mut node = follower();
        step(
            &mut node,
            msg(2, 1, 1, append(prev_index, 1, entries.clone(), 0)),
        );
        assert_eq!(node.counters().malformed, 1, "{entries:?}");
        assert_eq!(log_terms(&node), [1, 1]);
    }
}

/// A follower holding committed entries never replaces them, whatever an
/// append says, and it counts such an append as malformed without
/// acknowledging it, since it contradicts its committed log
/// (`Counters::malformed`).
#[test]
fn appends_that_contradict_committed_entries_change_nothing_and_are_counted() {
    for body in [
        append(1, 1, ents(2, &[2, 2]), 3),
        append(0, 0, ents(1, &[2, 2, 2, 2]), 4),
        append(1, 5, ents(2, &[2]), 2),
    ] {
        let mut node = node_with_log(1, &VOTERS, &[1, 1, 1], 2, 3, paper_config(1));
        drain(&mut node);
        let out = step(&mut node, msg(2, 1, 2, body.clone()));
        assert_eq!(log_terms(&node), [1, 1, 1], "{body:?}");
        assert_eq!(node.status().commit, 3);
        assert!(
            persists(&out).iter().all(|p| p.entries.is_empty()),
            "{body:?}: {out:?}"
        );
        assert_eq!(node.counters().malformed, 1, "{body:?}");
        assert!(
            sends(&out)
                .iter()
                .all(|m| !matches!(m.body, MessageBody::AppendResponse(_))),
            "{body:?} was acknowledged: {out:?}"
        );
    }
}

/// A heartbeat's commit index past the follower's log is ignored (the
/// leader caps it at what the follower holds) and counted; the heartbeat
/// is still answered.
#[test]
fn heartbeat_commit_beyond_the_log_is_counted() {
    let mut node = follower();
    let out = step(&mut node, msg(2, 1, 1, heartbeat(10, 0)));
    assert_eq!(node.counters().malformed, 1);
    assert_eq!(node.status().commit, 0);
    assert_eq!(
        sends(&out),
        [msg(
            1,
            2,
            1,
            MessageBody::HeartbeatResponse { read_round: 0 }
        )]
    );
    let out = step(&mut node, msg(2, 1, 1, heartbeat(u64::MAX, 0)));
    assert_eq!(node.counters().malformed, 2);
    assert_eq!(sends(&out).len(), 1);

    step(&mut node, msg(2, 1, 1, heartbeat(2, 0)));
    assert_eq!(node.status().commit, 2);
    assert_eq!(node.counters().malformed, 2);
}

/// A message carrying the largest term cannot make the node overflow its
/// term when it next campaigns.
#[test]
fn the_largest_term_does_not_overflow() {
    for config in [paper_config(1), thesis_config(1, true, true)] {
        let mut node = node_with_log(1, &VOTERS, &[1, 1], 1, 0, config);
        step(&mut node, msg(2, 1, u64::MAX, vote_request(0, 0)));
        for _ in 0..100 {
            node.tick();
            drain(&mut node);
        }
        node.campaign();
        drain(&mut node);
        assert!(
            node.term() >= u64::MAX - 1,
            "term wrapped to {}",
            node.term()
        );
    }
}

// ---- Property test ----

/// One input to the node under test.
#[derive(Debug, Clone)]
enum Op {
    Deliver(Msg),
    Tick,
    Propose(u8),
    Read(u64),
    Transfer(u64),
    Campaign,
    /// An `on_persisted` for an id that may never have been handed out.
    Ack(u64),
    /// A snapshot chunk handed to the node, asked for or not: (to, index,
    /// offset, length, last).
    Chunk(u64, u64, u64, u8, bool),
    /// `on_snapshot_restored` for an index, pending or not.
    Restored(u64),
    /// A liveness report about a peer (or itself, or a stranger).
    Liveness(u64, bool),
}

fn index() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..12u64, 1 => Just(u64::MAX), 1 => Just(u64::MAX - 1)]
}

/// An append's `prev_index`, including the top of the index space where
/// entries would reach `u64::MAX`.
fn prev_index() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..12u64, 1 => Just(u64::MAX), 1 => Just(u64::MAX - 1), 1 => Just(u64::MAX - 2)]
}

fn term() -> impl Strategy<Value = u64> {
    prop_oneof![20 => 0..7u64, 1 => Just(u64::MAX), 1 => Just(u64::MAX - 1)]
}

fn entries() -> impl Strategy<Value = (u64, Vec<Entry<u64>>)> {
    (
        prev_index(),
        term(),
        prop::collection::vec(term(), 0..4),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(prev, first_term, terms, contiguous, salt)| {
            let entries = terms
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    let index = if contiguous {
                        prev.wrapping_add(1 + i as u64)
                    } else {
                        u64::from(salt.wrapping_add(i as u8 * 3) % 14)
                    };
                    Entry::new(
                        t.max(first_term),
                        index,
                        Bytes::from(vec![salt; usize::from(salt % 3)]),
                    )
                })
                .collect();
            (prev, entries)
        })
}

fn body() -> impl Strategy<Value = MessageBody<u64>> {
    prop_oneof![
        (any::<bool>(), index(), term(), any::<bool>()).prop_map(
            |(pre_vote, last_index, last_term, leadership_transfer)| {
                MessageBody::VoteRequest {
                    pre_vote,
                    last_index,
                    last_term,
                    leadership_transfer,
                    priority: 0,
                }
            }
        ),
        (any::<bool>(), any::<bool>())
            .prop_map(|(pre_vote, granted)| MessageBody::VoteResponse { pre_vote, granted }),
        (entries(), term(), index()).prop_map(|((prev_index, entries), prev_term, commit)| append(
            prev_index, prev_term, entries, commit
        )),
        index().prop_map(accepted),
        (index(), index(), term()).prop_map(|(r, h, t)| rejected(r, h, t)),
        (index(), 0..4u64).prop_map(|(commit, round)| heartbeat(commit, round)),
        (0..4u64).prop_map(|read_round| MessageBody::HeartbeatResponse { read_round }),
        (index(), index(), term()).prop_map(|(commit, last_index, last_term)| {
            MessageBody::Quiesce {
                commit,
                last_index,
                last_term,
            }
        }),
        Just(MessageBody::TimeoutNow),
        (0..4u64).prop_map(|id| MessageBody::ReadIndexRequest { id }),
        (0..4u64, prop::option::of(index()))
            .prop_map(|(id, index)| MessageBody::ReadIndexResponse { id, index }),
        (
            index(),
            term(),
            any::<bool>(),
            index(),
            0..6u8,
            any::<bool>()
        )
            .prop_map(|(index, term, member, offset, len, last)| {
                MessageBody::InstallSnapshot {
                    meta: SnapshotMeta {
                        index,
                        term,
                        membership: dsys_consensus::Membership::from_voters(if member {
                            [1, 2, 3]
                        } else {
                            [2, 3, 4]
                        }),
                    },
                    offset,
                    data: Bytes::from(vec![7u8; usize::from(len)]),
                    last,
                }
            }),
        (
            index(),
            prop_oneof![
                index().prop_map(|offset| SnapshotOutcome::Next { offset }),
                Just(SnapshotOutcome::Installed),
                Just(SnapshotOutcome::Rejected),
            ]
        )
            .prop_map(|(index, outcome)| MessageBody::SnapshotResponse { index, outcome }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let from = prop_oneof![6 => 2..=3u64, 1 => Just(1u64), 1 => Just(4u64)];
    let to = prop_oneof![9 => Just(1u64), 1 => Just(2u64)];
    prop_oneof![
        12 => (from, to, term(), body()).prop_map(|(from, to, term, body)| Op::Deliver(msg(from, to, term, body))),
        3 => Just(Op::Tick),
        2 => any::<u8>().prop_map(Op::Propose),
        1 => (0..4u64).prop_map(Op::Read),
        1 => (1..=4u64).prop_map(Op::Transfer),
        1 => Just(Op::Campaign),
        1 => (0..20u64).prop_map(Op::Ack),
        1 => (1..=4u64, index(), index(), 0..12u8, any::<bool>())
            .prop_map(|(to, index, offset, len, last)| Op::Chunk(to, index, offset, len, last)),
        1 => index().prop_map(Op::Restored),
        1 => (1..=4u64, any::<bool>()).prop_map(|(peer, live)| Op::Liveness(peer, live)),
    ]
}

/// Node 1 with a committed prefix, put into `role`.
fn node_in(role: Role, pre_vote: bool, check_quorum: bool, quiesce: bool) -> Node {
    let pre_vote = pre_vote || role == Role::PreCandidate;
    let pre_vote = pre_vote && role != Role::Candidate;
    let mut config = thesis_config(1, pre_vote, check_quorum);
    config.quiesce_after_ticks = if quiesce { 2 } else { 0 };
    let mut node = node_with_log(1, &VOTERS, &[1, 1, 2, 2, 3], 3, 3, config);
    drain(&mut node);
    match role {
        Role::Follower => {}
        Role::PreCandidate | Role::Candidate => {
            node.campaign();
            drain(&mut node);
        }
        Role::Leader => {
            make_leader(&mut node);
        }
    }
    assert_eq!(node.role(), role);
    node
}

/// Checks the committed prefix only grows, and applied entries are exactly
/// the committed ones, in order.
struct SafetyCheck {
    committed: Vec<Entry<u64>>,
    applied: Vec<Entry<u64>>,
}

impl SafetyCheck {
    fn new(node: &Node) -> Self {
        let mut check = Self {
            committed: Vec::new(),
            applied: Vec::new(),
        };
        check.after(node, &[]);
        let applied = usize::try_from(node.status().applied).expect("small");
        check.applied = check.committed[..applied].to_vec();
        check
    }

    fn after(&mut self, node: &Node, outputs: &[Out]) {
        let status = node.status();
        assert!(status.commit <= status.last_index, "{status:?}");
        let committed = node
            .log()
            .slice(1, status.commit + 1, u64::MAX)
            .expect("the committed log is readable");
        assert!(
            committed.len() >= self.committed.len()
                && committed[..self.committed.len()] == self.committed[..],
            "committed entries changed: was {:?}, now {committed:?}",
            self.committed
        );
        self.committed = committed;
        for output in outputs {
            if let Output::Apply(entries) = output {
                for entry in entries {
                    assert_eq!(
                        entry.index,
                        self.applied.len() as u64 + 1,
                        "applied out of order"
                    );
                    self.applied.push(entry.clone());
                }
            }
        }
        assert!(
            self.applied.len() <= self.committed.len(),
            "applied past the commit index"
        );
        assert_eq!(
            self.applied[..],
            self.committed[..self.applied.len()],
            "applied an uncommitted entry"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// Random messages (random bodies, terms, indexes and entries, some
    /// from strangers or misaddressed) interleaved with ticks, proposals,
    /// reads, transfers, campaigns, bogus persistence acks and liveness
    /// reports, with quiescence on or off: no panic,
    /// and committed entries never change.
    #[test]
    fn random_input_never_panics_or_changes_committed_entries(
        role in prop_oneof![Just(Role::Follower), Just(Role::PreCandidate), Just(Role::Candidate), Just(Role::Leader)],
        pre_vote in any::<bool>(),
        check_quorum in any::<bool>(),
        quiesce in any::<bool>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut node = node_in(role, pre_vote, check_quorum, quiesce);
        let mut check = SafetyCheck::new(&node);
        for op in ops {
            let quiet_tick = matches!(op, Op::Tick) && node.is_quiesced();
            match op {
                Op::Deliver(message) => node.handle_message(message),
                Op::Tick => node.tick(),
                Op::Propose(byte) => {
                    let _ = node.propose(Bytes::from(vec![byte; usize::from(byte % 4)]));
                }
                Op::Read(id) => {
                    let _ = node.read_index(id);
                }
                Op::Transfer(to) => {
                    let _ = node.transfer_leadership(to);
                }
                Op::Campaign => node.campaign(),
                Op::Ack(id) => node.on_persisted(id),
                Op::Chunk(to, index, offset, len, last) => {
                    let data = Bytes::from(vec![1u8; usize::from(len)]);
                    let _ = node.snapshot_chunk(&to, index, offset, data, last);
                }
                Op::Restored(index) => {
                    let _ = node.on_snapshot_restored(index);
                }
                Op::Liveness(peer, live) => node.set_peer_liveness(peer, live),
            }
            let outputs = drain(&mut node);
            // A quiesced node's tick hands out nothing.
            prop_assert!(!quiet_tick || outputs.is_empty(), "{outputs:?}");
            check.after(&node, &outputs);
        }
    }
}
