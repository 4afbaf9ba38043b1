//! Leader election as the Raft paper (Ongaro & Ousterhout 2014) specifies
//! it: terms (§5.1), elections (§5.2) and the voting restriction (§5.4.1).
//! Each test names the section it checks; nodes run with neither pre-vote
//! nor check-quorum unless the test says otherwise.

mod common;

use std::collections::BTreeSet;

use common::*;
use dsys_consensus::{HardState, MemStorage, MessageBody, Output, RaftNode, Role};

const VOTERS: [u64; 3] = [1, 2, 3];

/// Puts a fresh node 1 of [`VOTERS`] into `role` in term 1 (leaders and
/// candidates campaign; pre-candidates use pre-vote).
fn node_in(role: Role) -> Node {
    match role {
        Role::Follower => new_node(1, &VOTERS, paper_config(1)),
        Role::PreCandidate => {
            let mut node = node_with_log(1, &VOTERS, &[], 1, 0, thesis_config(1, true, false));
            node.campaign();
            drain(&mut node);
            node
        }
        Role::Candidate => {
            let mut node = new_node(1, &VOTERS, paper_config(1));
            node.campaign();
            drain(&mut node);
            node
        }
        Role::Leader => {
            let mut node = new_node(1, &VOTERS, paper_config(1));
            make_leader(&mut node);
            node
        }
    }
}

/// A message carrying a later term makes any node adopt that term and
/// become a follower; a message only a leader sends also names the leader.
///
/// Reference: §5.1 ("If a server's current term is smaller than the
/// other's, it updates its current term ... If a candidate or leader
/// discovers that its term is out of date, it immediately reverts to
/// follower state").
#[test]
fn higher_term_makes_any_role_a_follower() {
    let bodies = [
        (append(0, 0, vec![], 0), Some(2)),
        (heartbeat(0, 0), Some(2)),
        (vote_request(10, 9), None),
        (vote_response(false), None),
        (accepted(0), None),
    ];
    for role in [
        Role::Follower,
        Role::PreCandidate,
        Role::Candidate,
        Role::Leader,
    ] {
        for (body, leader) in &bodies {
            let mut node = node_in(role);
            assert_eq!(node.role(), role);
            drain(&mut node);
            node.handle_message(msg(2, 1, 5, body.clone()));
            drain(&mut node);
            assert_eq!(node.role(), Role::Follower, "{role:?} given {body:?}");
            assert_eq!(node.term(), 5, "{role:?} given {body:?}");
            assert_eq!(node.leader(), leader.as_ref(), "{role:?} given {body:?}");
            assert_eq!(node.counters().stale_term, 0);
        }
    }
}

/// A message from an earlier term is dropped and counted: no term, role,
/// log or vote change, and no answer (except the rejection a stale
/// pre-candidate gets).
///
/// Reference: §5.1 ("If a server receives a request with a stale term
/// number, it rejects the request").
#[test]
fn stale_term_messages_are_ignored_and_counted() {
    let bodies = [
        (append(0, 0, ents(1, &[2]), 1), None),
        (heartbeat(0, 7), None),
        (vote_request(10, 2), None),
        (vote_response(true), None),
        (accepted(2), None),
        (MessageBody::TimeoutNow, None),
        (
            pre_vote_request(10, 2),
            Some(MessageBody::VoteResponse {
                pre_vote: true,
                granted: false,
            }),
        ),
    ];
    for (count, (body, reply)) in bodies.iter().enumerate() {
        let mut node = node_with_log(1, &VOTERS, &[1, 3], 3, 0, paper_config(1));
        drain(&mut node);
        let before = node.status();
        let out = step(&mut node, msg(2, 1, 2, body.clone()));
        assert_eq!(node.counters().stale_term, 1, "{count}: {body:?}");
        assert_eq!(node.status(), before, "{count}: {body:?} changed the node");
        assert_eq!(log_terms(&node), [1, 3]);
        let expected: Vec<Msg> = reply.iter().map(|r| msg(1, 2, 3, r.clone())).collect();
        assert_eq!(sends(&out), expected, "{count}: {body:?}");
        assert!(
            persists(&out).is_empty(),
            "{count}: {body:?} persisted something"
        );
    }
}

/// With check-quorum (or pre-vote), a stale leader's append is answered in
/// the current term, so the stale leader learns it and steps down.
///
/// Reference: §5.1; thesis §9.6 (a deposed leader must learn the new term).
#[test]
fn stale_leader_is_told_the_current_term_under_check_quorum() {
    let mut node = node_with_log(1, &VOTERS, &[1], 3, 0, thesis_config(1, false, true));
    drain(&mut node);
    let out = step(&mut node, msg(2, 1, 2, append(1, 1, vec![], 1)));
    assert_eq!(node.counters().stale_term, 1);
    let replies = sends(&out);
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].to, replies[0].term), (2, 3));

    let mut stale_leader = node_with_log(2, &VOTERS, &[1], 1, 0, thesis_config(2, false, true));
    make_leader(&mut stale_leader);
    assert_eq!(stale_leader.term(), 2);
    step(&mut stale_leader, replies[0].clone());
    assert_eq!(stale_leader.role(), Role::Follower);
    assert_eq!(stale_leader.term(), 3);
}

/// Servers start as followers, in term 0, without a leader or a vote, and
/// have nothing to say until something happens.
///
/// Reference: §5.2 ("When servers start up, they begin as followers").
#[test]
fn nodes_start_as_followers() {
    let mut node = new_node(1, &VOTERS, paper_config(1));
    let status = node.status();
    assert_eq!(status.role, Role::Follower);
    assert_eq!((status.term, status.vote, status.leader), (0, None, None));
    assert!(drain(&mut node).is_empty());
}

/// When its election timeout elapses, a follower becomes a candidate: it
/// increments its term, votes for itself (durably, before anything is
/// sent) and asks every other server for its vote.
///
/// Reference: §5.2 ("To begin an election, a follower increments its
/// current term and transitions to candidate state. It then votes for
/// itself and issues RequestVote RPCs in parallel").
#[test]
fn election_timeout_makes_a_follower_candidate() {
    let mut node = node_with_log(1, &VOTERS, &[1, 1], 1, 0, paper_config(1));
    drain(&mut node);
    let timeout = node.randomized_election_timeout();
    for _ in 1..timeout {
        node.tick();
        assert!(drain(&mut node).is_empty());
        assert_eq!(node.role(), Role::Follower);
    }
    node.tick();
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!((node.term(), node.status().vote), (2, Some(1)));

    let unpersisted = drain_unpersisted(&mut node);
    let [Output::Persist(persist)] = unpersisted.as_slice() else {
        panic!("expected only the vote to persist, got {unpersisted:?}");
    };
    assert_eq!(
        persist.hard_state,
        Some(HardState {
            term: 2,
            vote: Some(1),
            commit: 0
        })
    );
    assert!(persist.entries.is_empty());
    write(&mut node, persist);
    node.on_persisted(persist.id);
    assert_eq!(
        drain_sends(&mut node),
        [
            msg(1, 2, 2, vote_request(2, 1)),
            msg(1, 3, 2, vote_request(2, 1)),
        ]
    );
}

/// A candidate wins when a majority (itself included) grants its vote,
/// stays candidate while the outcome is open, and returns to follower once
/// a majority refused.
///
/// Reference: §5.2 ("A candidate wins an election if it receives votes
/// from a majority of the servers in the full cluster for the same term").
#[test]
fn election_is_won_by_a_majority_in_one_round() {
    /// Cluster size, the answers received (voter, granted), the outcome.
    type Case = (u64, &'static [(u64, bool)], Role);
    const T: bool = true;
    const F: bool = false;
    let table: &[Case] = &[
        (1, &[], Role::Leader),
        (3, &[(2, T), (3, T)], Role::Leader),
        (3, &[(2, T)], Role::Leader),
        (3, &[(2, F), (3, T)], Role::Leader),
        (5, &[(2, T), (3, T), (4, T), (5, T)], Role::Leader),
        (5, &[(2, T), (3, T)], Role::Leader),
        (5, &[(2, F), (3, T), (4, F), (5, T)], Role::Leader),
        (3, &[], Role::Candidate),
        (3, &[(2, F)], Role::Candidate),
        (5, &[(2, T)], Role::Candidate),
        (5, &[(2, T), (3, F), (4, F)], Role::Candidate),
        (3, &[(2, F), (3, F)], Role::Follower),
        (5, &[(2, F), (3, F), (4, F)], Role::Follower),
        (5, &[(2, T), (3, F), (4, F), (5, F)], Role::Follower),
    ];
    for (case, &(size, votes, expected)) in table.iter().enumerate() {
        let voters: Vec<u64> = (1..=size).collect();
        let mut node = new_node(1, &voters, paper_config(1));
        node.campaign();
        drain(&mut node);
        for &(from, granted) in votes {
            step(&mut node, msg(from, 1, 1, vote_response(granted)));
        }
        assert_eq!(
            node.role(),
            expected,
            "case {case}: {size} nodes, votes {votes:?}"
        );
        assert_eq!(node.term(), 1, "case {case}");
    }
}

/// A candidate that hears from a leader of its own term or a later one
/// recognises it and returns to follower; one from an earlier term is
/// rejected and the candidate carries on.
///
/// Reference: §5.2 ("If the leader's term ... is at least as large as the
/// candidate's current term, then the candidate recognizes the leader as
/// legitimate and returns to follower state. If the term in the RPC is
/// smaller than the candidate's current term, then the candidate rejects
/// the RPC and continues in candidate state").
#[test]
fn candidate_steps_down_for_a_leader_of_its_term_or_later() {
    for (term, body) in [
        (2, append(0, 0, vec![], 0)),
        (3, append(0, 0, vec![], 0)),
        (2, heartbeat(0, 0)),
        (3, heartbeat(0, 0)),
    ] {
        let mut node = node_with_log(1, &VOTERS, &[], 1, 0, paper_config(1));
        node.campaign();
        drain(&mut node);
        assert_eq!((node.role(), node.term()), (Role::Candidate, 2));
        step(&mut node, msg(3, 1, term, body.clone()));
        assert_eq!(node.role(), Role::Follower, "{body:?} in term {term}");
        assert_eq!(node.term(), term);
        assert_eq!(node.leader(), Some(&3));
    }

    let mut node = node_with_log(1, &VOTERS, &[], 1, 0, paper_config(1));
    node.campaign();
    drain(&mut node);
    step(&mut node, msg(3, 1, 1, append(0, 0, vec![], 0)));
    assert_eq!((node.role(), node.term()), (Role::Candidate, 2));
    assert_eq!(node.counters().stale_term, 1);
}

/// Election timeouts are drawn at random from
/// `[election_tick, 2 * election_tick)`, differ between seeds and between
/// elections, and the node campaigns exactly when its drawn timeout
/// elapses.
///
/// Reference: §5.2 ("Raft uses randomized election timeouts ... chosen
/// randomly from a fixed interval").
#[test]
fn election_timeouts_are_randomized_within_range() {
    let election_tick = 10;
    let mut drawn = BTreeSet::new();
    let mut varied = 0;
    for seed in 0..200 {
        let mut config = paper_config(1);
        config.seed = seed;
        let mut node = new_node(1, &VOTERS, config);
        let timeout = node.randomized_election_timeout();
        assert!(
            (election_tick..2 * election_tick).contains(&timeout),
            "seed {seed}: timeout {timeout} out of range"
        );
        drawn.insert(timeout);

        // Redrawn for every election; the node campaigns right on time.
        let mut per_node = BTreeSet::new();
        for election in 1..=5u64 {
            let timeout = node.randomized_election_timeout();
            assert!(
                (election_tick..2 * election_tick).contains(&timeout),
                "seed {seed}"
            );
            per_node.insert(timeout);
            for _ in 1..timeout {
                node.tick();
            }
            assert_eq!(node.term(), election - 1, "seed {seed}: campaigned early");
            node.tick();
            assert_eq!(
                node.term(),
                election,
                "seed {seed}: did not campaign on time"
            );
            drain(&mut node);
        }
        if per_node.len() > 1 {
            varied += 1;
        }
    }
    assert!(drawn.len() > 5, "only {drawn:?} drawn over 200 seeds");
    assert!(
        varied > 150,
        "only {varied} of 200 nodes drew different timeouts across elections"
    );
}

/// A follower grants at most one vote per term, to the first candidate
/// that asks (a repeated request from that candidate is granted again),
/// and the vote is durable before the grant goes out, so a restart cannot
/// make it vote twice.
///
/// Reference: §5.2 ("Each server will vote for at most one candidate in a
/// given term, on a first-come-first-served basis"); Figure 2 (votedFor is
/// persistent state).
#[test]
fn follower_votes_at_most_once_per_term() {
    let mut node = new_node(1, &VOTERS, paper_config(1));
    let out = step(&mut node, msg(2, 1, 1, vote_request(0, 0)));
    let [Output::Persist(persist), Output::Send(reply)] = out.as_slice() else {
        panic!("expected the vote persisted, then granted: {out:?}");
    };
    assert_eq!(persist.hard_state.as_ref().map(|h| h.vote), Some(Some(2)));
    assert_eq!(*reply, msg(1, 2, 1, vote_response(true)));

    let out = step(&mut node, msg(3, 1, 1, vote_request(0, 0)));
    assert_eq!(sends(&out), [msg(1, 3, 1, vote_response(false))]);
    let out = step(&mut node, msg(2, 1, 1, vote_request(0, 0)));
    assert_eq!(sends(&out), [msg(1, 2, 1, vote_response(true))]);

    // Restarted from its storage, it still voted for 2 in term 1.
    let storage: MemStorage<u64> = node.storage().clone();
    let mut restarted = RaftNode::new(1, storage, paper_config(1)).expect("valid");
    let out = step(&mut restarted, msg(3, 1, 1, vote_request(5, 1)));
    assert_eq!(sends(&out), [msg(1, 3, 1, vote_response(false))]);

    // A new term brings a new vote.
    let out = step(&mut restarted, msg(3, 1, 2, vote_request(0, 0)));
    assert_eq!(sends(&out), [msg(1, 3, 2, vote_response(true))]);
}

/// A voter refuses a candidate whose log is less up to date than its own:
/// a later last term wins, and with equal last terms the longer log does.
///
/// Reference: §5.4.1 ("the voter denies its vote if its own log is more
/// up-to-date than that of the candidate").
#[test]
fn voter_grants_only_to_logs_at_least_as_up_to_date() {
    // The voter's log: index 1 term 1, index 2 term 2.
    let table = [
        ((2, 2), true),
        ((3, 2), true),
        ((1, 3), true),
        ((9, 3), true),
        ((1, 2), false),
        ((5, 1), false),
        ((2, 1), false),
        ((0, 0), false),
    ];
    for ((last_index, last_term), granted) in table {
        let mut node = node_with_log(1, &VOTERS, &[1, 2], 2, 0, paper_config(1));
        drain(&mut node);
        let out = step(&mut node, msg(2, 1, 3, vote_request(last_index, last_term)));
        assert_eq!(
            sends(&out),
            [msg(1, 2, 3, vote_response(granted))],
            "candidate log ending at ({last_index}, {last_term})"
        );
        assert_eq!(node.term(), 3);
        assert_eq!(node.status().vote, granted.then_some(2));
    }
}

/// Two candidates of the same term can split the vote so neither wins;
/// randomized timeouts then let one of them (or another node) win a later
/// term, and every node follows it.
///
/// Reference: §5.2 ("if many followers become candidates at the same time,
/// votes could be split so that no candidate obtains a majority ...
/// randomized election timeouts ensure that split votes are rare and that
/// they are resolved quickly").
#[test]
fn dueling_candidates_split_the_vote_then_a_leader_emerges() {
    let mut network = Network::new(&[1, 2, 3, 4]);
    // 3 only hears 1, 4 only hears 2.
    network.cut(1, 4);
    network.cut(2, 3);
    network.campaign(1);
    network.campaign(2);
    network.deliver_all();
    for id in [1, 2] {
        assert_eq!(network.node(id).role(), Role::Candidate, "node {id}");
        assert_eq!(network.node(id).term(), 1);
    }
    assert_eq!(network.node(3).status().vote, Some(1));
    assert_eq!(network.node(4).status().vote, Some(2));
    assert!(network.leaders().is_empty());

    network.heal();
    network.run_until(200, |n| n.leader().is_some());
    let leader = network.leader().expect("checked");
    let term = network.node(leader).term();
    assert!(term >= 2, "the split term 1 cannot have a leader");
    network.run(3);
    assert_eq!(network.leaders(), [leader], "one leader");
    for id in network.ids() {
        assert_eq!(network.node(id).term(), term, "node {id}");
        assert_eq!(network.node(id).leader(), Some(&leader), "node {id}");
    }
}

/// A leader's heartbeats keep followers from starting elections: with no
/// faults, the leader and its term stay the same indefinitely.
///
/// Reference: §5.2 ("Leaders send periodic heartbeats ... to all followers
/// in order to maintain their authority").
#[test]
fn heartbeats_keep_the_leader_in_office() {
    let mut network = Network::new(&[1, 2, 3, 4, 5]);
    network.elect(3);
    network.run(100);
    assert_eq!(network.leaders(), [3]);
    for id in network.ids() {
        assert_eq!(network.node(id).term(), 1);
        assert_eq!(network.node(id).leader(), Some(&3));
    }
}

/// Without a leader, a follower's timeout fires and a leader is elected
/// with no outside help (3 and 5 nodes).
///
/// Reference: §5.2 ("If a follower receives no communication over a period
/// of time called the election timeout, then it assumes there is no viable
/// leader and begins an election").
#[test]
fn cluster_elects_a_leader_by_itself() {
    for size in [3u64, 5] {
        let ids: Vec<u64> = (1..=size).collect();
        let mut network = Network::new(&ids);
        let rounds = network.run_until(100, |n| n.leader().is_some());
        assert!(
            rounds >= 10,
            "{size} nodes: elected before any timeout could fire"
        );
        let leader = network.leader().expect("checked");
        network.run(2);
        assert_eq!(network.leaders(), [leader]);
    }
}
