//! The extensions from Ongaro's thesis (2014) and the node's own contract:
//! pre-vote and check-quorum (§9.6, §6.2), ReadIndex and lease reads
//! (§6.4), leadership transfer (§3.10), proposal limits, and asynchronous
//! persistence (§10.2.1). Each test names the section it checks.

mod common;

use bytes::Bytes;
use common::*;
use dsys_consensus::{
    Entry, MessageBody, Output, ProposeError, ReadError, ReadOnlyOption, ReadState, Role,
    TransferError,
};

const VOTERS: [u64; 3] = [1, 2, 3];
const ELECTION_TICK: usize = 10;

/// Runs `rounds` rounds, checking after each that node 1 still leads in
/// term 1 and no one else leads.
fn assert_leader_undisturbed(network: &mut Network, rounds: usize) {
    for round in 0..rounds {
        network.tick_all();
        network.deliver_all();
        assert_eq!(network.leaders(), [1], "round {round}");
        for id in network.ids() {
            assert_eq!(
                network.node(id).term(),
                1,
                "round {round}: node {id}'s term moved"
            );
        }
    }
}

// ---- Pre-vote (thesis §9.6) ----

/// A node partitioned away cannot raise its term with pre-vote (it never
/// gets a majority of pre-votes), and when it returns behind the leader's
/// log its pre-votes are refused: the leader and the term stay, and the
/// node catches up as a follower.
///
/// Reference: thesis §9.6 ("While a server is partitioned, it won't be able
/// to increment its term, since it can't receive permission from a
/// majority of the cluster").
#[test]
fn pre_vote_keeps_a_rejoining_node_from_disrupting_the_leader() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, false));
    network.elect(1);
    network.isolate(3);
    network.propose(1, "a").expect("leader");
    network.deliver_all();
    for _ in 0..5 * ELECTION_TICK {
        network.tick(3);
        network.deliver_all();
    }
    assert_eq!(
        network.node(3).term(),
        1,
        "an isolated pre-candidate raised its term"
    );
    assert_eq!(network.node(3).role(), Role::PreCandidate);

    network.rejoin(3);
    assert_leader_undisturbed(&mut network, 3 * ELECTION_TICK);
    assert_eq!(network.node(3).leader(), Some(&1));
    assert_eq!(network.applied_data(3), [Bytes::from("a")]);
}

/// The same without pre-vote: the isolated node's term climbs with every
/// timeout, and when it returns its vote requests depose the leader.
///
/// Reference: thesis §9.6 (the problem pre-vote solves).
#[test]
fn without_pre_vote_a_rejoining_node_disrupts_the_leader() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, false, false));
    network.elect(1);
    network.isolate(3);
    network.propose(1, "a").expect("leader");
    network.deliver_all();
    for _ in 0..5 * ELECTION_TICK {
        network.tick(3);
        network.deliver_all();
    }
    let isolated_term = network.node(3).term();
    assert!(
        isolated_term > 2,
        "the isolated node's term stayed at {isolated_term}"
    );

    network.rejoin(3);
    network.run_until(3 * ELECTION_TICK, |n| n.node(1).term() > 1);
    network.run_until(10 * ELECTION_TICK, |n| {
        n.leader().is_some_and(|l| n.node(l).term() > 1)
    });
    let leader = network.leader().expect("checked");
    assert!(network.node(leader).term() >= isolated_term);
    assert_ne!(leader, 3, "the node that missed an entry cannot win");
}

/// Pre-vote answers "no" while the voter hears from a leader, so even a
/// node whose log is up to date (nothing was written while it was away)
/// cannot start an election when it returns.
///
/// Reference: thesis §9.6 ("when it rejoins the cluster, it still won't be
/// able to increment its term, since the other servers will have been
/// receiving regular heartbeats from the leader").
#[test]
fn pre_vote_alone_refuses_an_up_to_date_node_while_a_leader_is_heard() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, false));
    network.elect(1);
    network.run(2);
    network.isolate(3);
    for _ in 0..5 * ELECTION_TICK {
        network.tick(3);
        network.deliver_all();
    }
    network.rejoin(3);
    // Its timer fires before the leader's next heartbeat reaches it.
    network.campaign(3);
    network.deliver_all();
    assert_eq!(network.leaders(), [1]);
    assert_eq!(network.node(2).term(), 1);
}

/// With pre-vote and check-quorum together (the defaults), an up-to-date
/// node that returns and campaigns at once is ignored by voters within
/// their leader lease; it then follows the leader's heartbeat.
///
/// Reference: thesis §9.6 (pre-vote with the leader-lease condition), §6.2.
#[test]
fn pre_vote_with_check_quorum_ignores_an_up_to_date_returning_node() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    network.elect(1);
    network.run(2);
    network.isolate(3);
    for _ in 0..5 * ELECTION_TICK {
        network.tick(3);
        network.deliver_all();
    }
    network.rejoin(3);
    network.campaign(3);
    network.deliver_all();
    assert_eq!(network.leaders(), [1]);
    assert_eq!(network.node(2).term(), 1);
    assert!(network.node(2).counters().lease_ignored_votes >= 1);
    assert_leader_undisturbed(&mut network, 3 * ELECTION_TICK);
    assert_eq!(network.node(3).leader(), Some(&1));
}

// ---- Check-quorum (thesis §6.2) ----

/// A leader that hears from no majority for an election timeout steps
/// down (failing nothing else), and the majority elects a new leader; a
/// leader without check-quorum stays leader forever on its own.
///
/// Reference: thesis §6.2 ("a leader steps down if an election timeout
/// elapses without a successful round of heartbeats to a majority of its
/// cluster").
#[test]
fn check_quorum_leader_steps_down_when_partitioned_from_the_majority() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    network.elect(1);
    network.run(1);
    network.isolate(1);
    let mut ticks = 0;
    while network.node(1).is_leader() {
        network.tick(1);
        network.deliver_all();
        ticks += 1;
        assert!(
            ticks <= 2 * ELECTION_TICK,
            "still leading after {ticks} ticks alone"
        );
    }
    assert!(
        ticks >= ELECTION_TICK,
        "stepped down after only {ticks} ticks"
    );
    assert_eq!(network.node(1).role(), Role::Follower);
    assert_eq!(network.node(1).term(), 1);

    network.run_until(10 * ELECTION_TICK, |n| n.leader().is_some_and(|l| l != 1));
    assert!(network.node(network.leader().expect("checked")).term() >= 2);

    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, false, false));
    network.elect(1);
    network.isolate(1);
    for _ in 0..10 * ELECTION_TICK {
        network.tick(1);
        network.deliver_all();
    }
    assert!(
        network.node(1).is_leader(),
        "without check-quorum the leader stays"
    );
}

/// Followers that heard from their leader within the election timeout
/// ignore a candidate's vote requests (they keep their term and vote);
/// without check-quorum the same candidate deposes the leader.
///
/// Reference: thesis §6.2 / §4.2.3 ("if a server receives a RequestVote
/// request within the minimum election timeout of hearing from a current
/// leader, it does not update its term or grant its vote").
#[test]
fn check_quorum_followers_ignore_a_disruptive_candidate_within_the_lease() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, false, true));
    network.elect(1);
    network.run(1);
    network.campaign(3);
    assert_eq!(
        (network.node(3).role(), network.node(3).term()),
        (Role::Candidate, 2)
    );
    network.deliver_all();
    assert_eq!(network.leaders(), [1]);
    for id in [1, 2] {
        let node = network.node(id);
        assert_eq!(node.term(), 1, "node {id}");
        assert_eq!(node.counters().lease_ignored_votes, 1, "node {id}");
    }
    assert_eq!(network.node(2).status().vote, Some(1));

    // The stuck candidate is freed eventually, and the cluster agrees again.
    network.run(3 * ELECTION_TICK);
    let leader = network.leader().expect("a leader");
    for id in network.ids() {
        assert_eq!(network.node(id).leader(), Some(&leader), "node {id}");
    }

    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, false, false));
    network.elect(1);
    network.run(1);
    network.campaign(3);
    network.deliver_all();
    assert!(
        !network.node(1).is_leader(),
        "without check-quorum the leader is deposed"
    );
    assert_eq!(network.node(2).term(), 2);
}

// ---- ReadIndex and lease reads (thesis §6.4) ----

/// A read on the leader is confirmed only once a majority acknowledged a
/// heartbeat round started after the read; its index is the commit index
/// when it was asked.
///
/// Reference: thesis §6.4 steps 1–3 ("the leader needs to make sure it
/// hasn't been superseded ... it issues a new round of heartbeats and
/// waits for their acknowledgments from a majority of the cluster").
#[test]
fn read_on_the_leader_is_confirmed_by_a_heartbeat_round() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    network.elect(1);
    network.cut(1, 2);
    network.cut(1, 3);
    network.read_index(1, 7).expect("leader");
    let round: Vec<(u64, MessageBody<u64>)> = network
        .queue()
        .iter()
        .map(|m| (m.to, m.body.clone()))
        .collect();
    assert_eq!(round, [(2, heartbeat(1, 1)), (3, heartbeat(1, 1))]);
    network.deliver_all();
    assert!(
        network.reads_ready(1).is_empty(),
        "confirmed without acknowledgements"
    );

    // A later heartbeat carries the round; one follower makes a majority.
    network.uncut(1, 2);
    network.tick(1);
    network.deliver_all();
    assert_eq!(network.reads_ready(1), [ReadState { id: 7, index: 1 }]);
    assert!(network.reads_failed(1).is_empty());
}

/// A confirmed read comes out only once the node has applied up to the
/// read index. Here a follower's read is forwarded to the leader, whose
/// commit index is ahead of what the follower holds.
///
/// Reference: thesis §6.4 step 4 ("the leader waits for its state machine
/// to advance at least as far as the readIndex"), and §6.4's forwarding of
/// reads from followers.
#[test]
fn read_is_ready_only_after_its_index_is_applied() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    network.elect(1);
    network
        .set_filter(|m| (m.to != 3 || !matches!(m.body, MessageBody::Append { .. })).then_some(m));
    network.propose(1, "a").expect("leader");
    network.deliver_all();
    assert_eq!(network.node(1).status().commit, 2);
    assert!(network.node(3).status().commit < 2);
    assert_eq!(network.node(3).status().last_index, 1);

    network.read_index(3, 9).expect("3 knows its leader");
    assert!(matches!(
        network.queue().front().map(|m| (m.from, m.to, &m.body)),
        Some((3, 1, MessageBody::ReadIndexRequest { id: 9 }))
    ));
    network.deliver_all();
    assert!(
        network.delivered().iter().any(|m| m.to == 3
            && m.body
                == MessageBody::ReadIndexResponse {
                    id: 9,
                    index: Some(2)
                }),
        "the leader answered with its commit index"
    );
    assert!(
        network.reads_ready(3).is_empty(),
        "ready before entry 2 was applied"
    );

    network.clear_filter();
    network.run(1);
    let events = network.events(3);
    let applied_at = events
        .iter()
        .position(|e| matches!(e, Event::Apply(entries) if entries.iter().any(|x| x.index == 2)))
        .expect("3 applies entry 2");
    let ready_at = events
        .iter()
        .position(|e| *e == Event::ReadReady(ReadState { id: 9, index: 2 }))
        .expect("the read becomes ready");
    assert!(applied_at < ready_at, "{events:?}");
}

/// A follower forwards reads to its leader and gets them answered; a node
/// that knows no leader refuses them.
///
/// Reference: thesis §6.4 ("followers ... could issue a request to the
/// leader that just asks for the current readIndex").
#[test]
fn read_on_a_follower_is_forwarded_to_the_leader() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    assert_eq!(network.read_index(2, 1), Err(ReadError::NoLeader));
    network.elect(1);
    network.read_index(2, 5).expect("2 follows 1");
    network.deliver_all();
    assert_eq!(network.reads_ready(2), [ReadState { id: 5, index: 1 }]);
    assert!(
        network.reads_ready(1).is_empty(),
        "the leader served it as its own"
    );
}

/// A new leader does not serve reads before an entry of its own term
/// commits: until then its commit index may be behind its predecessor's.
///
/// Reference: thesis §6.4 step 1 ("if the leader has not yet marked an
/// entry from its current term committed, it waits until it has").
#[test]
fn new_leader_delays_reads_until_it_commits_in_its_term() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    network.set_filter(|m| (!matches!(m.body, MessageBody::AppendResponse(_))).then_some(m));
    network.elect(1);
    assert_eq!(network.node(1).status().commit, 0);
    network.read_index(1, 3).expect("leader");
    assert!(
        network.queue().iter().all(
            |m| !matches!(m.body, MessageBody::Heartbeat { read_round, .. } if read_round > 0)
        ),
        "a read round started before the no-op committed"
    );
    network.run(2);
    assert!(network.reads_ready(1).is_empty());
    assert!(network.reads_failed(1).is_empty());

    network.clear_filter();
    network.run(2);
    assert_eq!(network.reads_ready(1), [ReadState { id: 3, index: 1 }]);
}

/// A leader cut off from the majority never confirms a read; when
/// check-quorum makes it step down, its pending reads fail, both its own
/// and those forwarded by followers.
///
/// Reference: thesis §6.4 (a deposed leader must not serve reads), §6.2.
#[test]
fn partitioned_leader_fails_reads_when_it_steps_down() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    network.elect(1);
    network.run(1);
    network.read_index(2, 11).expect("2 follows 1");
    assert_eq!(network.queue().len(), 1);
    network.deliver_one();
    // 1 hears from no one; 2 still hears from 1.
    network.cut(1, 3);
    network.cut_one_way(2, 1);
    network.read_index(1, 10).expect("leader");
    network.deliver_all();
    let mut ticks = 0;
    while network.node(1).is_leader() {
        assert!(network.reads_ready(1).is_empty());
        network.tick(1);
        network.deliver_all();
        ticks += 1;
        assert!(
            ticks <= 2 * ELECTION_TICK,
            "still leading after {ticks} ticks"
        );
    }
    assert!(network.reads_ready(1).is_empty());
    assert_eq!(network.reads_failed(1), [10]);
    assert!(network.reads_ready(2).is_empty());
    assert_eq!(network.reads_failed(2), [11]);
}

/// Lease reads are confirmed at once, without a heartbeat round, while
/// the leader holds a lease: from the send time of a heartbeat round a
/// majority acknowledged, for less than the election timeout. Before the
/// first such round, and once the lease ran out, a read takes a round.
///
/// Reference: thesis §6.4.1 ("the leader would use the normal heartbeat
/// mechanism to maintain a lease ... it would reply to read-only queries
/// without any additional communication").
#[test]
fn lease_reads_are_answered_without_a_round() {
    let lease = |id| {
        let mut config = thesis_config(id, true, true);
        config.read_only = ReadOnlyOption::LeaseBased;
        config
    };
    let mut network = Network::with_config(&VOTERS, lease);
    network.elect(1);
    network.read_index(1, 3).expect("leader");
    assert_eq!(network.queue().len(), 2, "no lease yet: a heartbeat round");
    network.deliver_all();
    assert_eq!(network.reads_ready(1), [ReadState { id: 3, index: 1 }]);
    network.read_index(1, 4).expect("leader");
    assert!(network.queue().is_empty(), "sent {:?}", network.queue());
    assert_eq!(network.reads_ready(1)[1..], [ReadState { id: 4, index: 1 }]);
    // Cut off, the leader's lease runs out before the others may elect.
    network.isolate(1);
    for _ in 0..ELECTION_TICK - 1 {
        network.tick(1);
    }
    network.take_queue();
    network.read_index(1, 5).expect("still leader");
    assert!(!network.queue().is_empty(), "lease expired: a round");
    assert_eq!(network.reads_ready(1).len(), 2);

    let mut safe = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    safe.elect(1);
    safe.read_index(1, 4).expect("leader");
    assert_eq!(safe.queue().len(), 2, "ReadIndex needs a heartbeat round");
    assert!(safe.reads_ready(1).is_empty());
}

// ---- Leadership transfer (thesis §3.10) ----

/// A leader hands over to an up-to-date follower at once with TimeoutNow;
/// the target wins the next term even though the others are within their
/// leader lease.
///
/// Reference: thesis §3.10 ("the prior leader sends a TimeoutNow request
/// to the target server ... the target server starts a new election").
#[test]
fn transfer_to_an_up_to_date_follower_sends_timeout_now() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    network.elect(1);
    network.propose(1, "a").expect("leader");
    network.run(1);
    network.transfer(1, 2).expect("leader");
    assert_eq!(
        network.queue().iter().cloned().collect::<Vec<_>>(),
        [msg(1, 2, 1, MessageBody::TimeoutNow)]
    );
    network.deliver_all();
    assert_eq!(network.leaders(), [2]);
    assert_eq!(network.node(2).term(), 2);
    assert_eq!(network.node(1).leader(), Some(&2));
    network.propose(2, "b").expect("new leader");
    network.run(1);
    for id in network.ids() {
        assert_eq!(
            network.applied_data(id),
            [Bytes::from("a"), Bytes::from("b")],
            "node {id}"
        );
    }
}

/// A lagging target is first brought up to date; TimeoutNow follows its
/// acknowledgement of the leader's last entry. Proposals are refused
/// meanwhile.
///
/// Reference: thesis §3.10 ("the prior leader ... sends it any missing
/// entries ... then sends a TimeoutNow request"; "the prior leader stops
/// accepting new client requests").
#[test]
fn transfer_to_a_lagging_follower_catches_it_up_first() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    network.elect(1);
    network.isolate(3);
    network.propose(1, "a").expect("leader");
    network.propose(1, "b").expect("leader");
    network.deliver_all();
    network.rejoin(3);
    network.clear_delivered();

    network.transfer(1, 3).expect("leader");
    assert_eq!(network.node(1).transfer_target(), Some(&3));
    assert!(
        network
            .queue()
            .iter()
            .all(|m| m.body != MessageBody::TimeoutNow)
    );
    assert_eq!(
        network.propose(1, "c"),
        Err(ProposeError::TransferInProgress)
    );

    network.run_until(ELECTION_TICK, |n| n.node(3).is_leader());
    assert_eq!(network.node(3).term(), 2);
    let delivered = network.delivered();
    let timeout_now = delivered
        .iter()
        .position(|m| m.body == MessageBody::TimeoutNow)
        .expect("TimeoutNow was sent");
    assert!(
        delivered[..timeout_now]
            .iter()
            .any(|m| m.from == 3 && m.body == accepted(3)),
        "TimeoutNow before 3 held the whole log: {delivered:?}"
    );
    let data: Vec<Bytes> = network.log_entries(3).into_iter().map(|e| e.data).collect();
    assert!(data.contains(&Bytes::from("a")) && data.contains(&Bytes::from("b")));
}

/// A transfer to an unreachable target is abandoned after an election
/// timeout; the leader keeps leading and takes proposals again.
///
/// Reference: thesis §3.10 ("if the transfer does not complete within an
/// election timeout, the prior leader aborts the transfer and resumes
/// accepting client requests").
#[test]
fn transfer_to_an_unreachable_target_is_abandoned_after_an_election_timeout() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    network.elect(1);
    network.isolate(3);
    network.transfer(1, 3).expect("leader");
    for tick in 1..ELECTION_TICK {
        network.tick(1);
        network.tick(2);
        network.deliver_all();
        assert_eq!(network.node(1).transfer_target(), Some(&3), "tick {tick}");
        assert_eq!(
            network.propose(1, "x"),
            Err(ProposeError::TransferInProgress)
        );
    }
    network.tick(1);
    network.tick(2);
    network.deliver_all();
    assert_eq!(network.node(1).transfer_target(), None);
    assert!(network.node(1).is_leader());
    assert_eq!(network.node(1).term(), 1);
    network.propose(1, "y").expect("proposals resume");
    network.deliver_all();
    assert_eq!(network.applied_data(2), [Bytes::from("y")]);
}

/// Only a leader transfers, only to a voter; handing over to itself does
/// nothing.
///
/// Reference: thesis §3.10.
#[test]
fn transfer_is_refused_off_the_leader_or_to_a_non_voter() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    network.elect(1);
    assert_eq!(network.transfer(2, 3), Err(TransferError::NotLeader));
    assert_eq!(network.transfer(1, 9), Err(TransferError::NotAVoter));
    assert_eq!(network.transfer(1, 1), Ok(()));
    assert_eq!(network.node(1).transfer_target(), None);
    assert!(network.queue().is_empty());
    network.propose(1, "a").expect("no transfer in progress");
}

// ---- Proposals ----

/// A follower or candidate refuses proposals and names the leader it
/// knows of, if any.
///
/// Reference: §8 ("If the client's first choice is not the leader, that
/// server will reject the client's request and supply information about
/// the most recent leader it has heard from").
#[test]
fn proposals_off_the_leader_return_not_leader_with_a_hint() {
    let mut network = Network::with_config(&VOTERS, |id| thesis_config(id, true, true));
    assert_eq!(
        network.propose(1, "a"),
        Err(ProposeError::NotLeader { leader: None })
    );
    network.elect(1);
    assert_eq!(
        network.propose(2, "a"),
        Err(ProposeError::NotLeader { leader: Some(1) })
    );

    let mut candidate = new_node(1, &VOTERS, paper_config(1));
    candidate.campaign();
    drain(&mut candidate);
    assert_eq!(
        candidate.propose(Bytes::from("a")),
        Err(ProposeError::NotLeader { leader: None })
    );
}

/// A payload over `max_proposal_size` is refused with its size; one at the
/// limit is accepted.
#[test]
fn proposals_over_the_size_limit_are_refused() {
    let mut node = new_node(1, &[1], {
        let mut config = paper_config(1);
        config.max_proposal_size = 8;
        config
    });
    make_leader(&mut node);
    drain(&mut node);
    assert_eq!(
        node.propose(Bytes::from("123456789")),
        Err(ProposeError::TooLarge { size: 9, max: 8 })
    );
    assert_eq!(
        node.status().last_index,
        1,
        "a refused proposal was appended"
    );
    assert_eq!(
        node.propose(Bytes::from("12345678")).map(|p| p.index),
        Ok(2)
    );
}

/// A leader holding `max_uncommitted_size` bytes of uncommitted proposals
/// refuses more until some commit; a proposal is always accepted when
/// nothing is uncommitted, however large.
#[test]
fn proposals_beyond_the_uncommitted_limit_are_refused_until_commit() {
    let limited = |id| {
        let mut config = thesis_config(id, true, true);
        config.max_uncommitted_size = 42;
        config
    };
    let mut network = Network::with_config(&VOTERS, limited);
    network.elect(1);
    network.isolate(1);
    // Sizes count 16 bytes of overhead per entry.
    assert_eq!(network.propose(1, "0123456789"), Ok(2));
    assert_eq!(network.node(1).uncommitted_size(), 26);
    let full = Err(ProposeError::UncommittedFull {
        uncommitted: 26,
        max: 42,
    });
    assert_eq!(network.propose(1, "0123"), full);
    assert_eq!(network.propose(1, "0"), full);
    assert_eq!(network.propose(1, ""), Ok(3), "exactly at the limit");
    assert_eq!(network.node(1).uncommitted_size(), 42);
    assert_eq!(network.node(1).status().last_index, 3);

    network.heal();
    network.run(2);
    assert_eq!(network.node(1).uncommitted_size(), 0);
    let big = "a proposal well over the limit of forty-two uncommitted bytes";
    assert_eq!(network.propose(1, big), Ok(4));
    assert!(network.propose(1, "x").is_err());
}

// ---- Asynchronous persistence (thesis §10.2.1) ----

/// A follower does not acknowledge entries before they are durable: its
/// answer is held until `on_persisted`.
///
/// Reference: Figure 2 ("Persistent state ... updated on stable storage
/// before responding to RPCs"); thesis §10.2.1.
#[test]
fn follower_acknowledges_entries_only_once_persisted() {
    let mut node = new_node(1, &VOTERS, paper_config(1));
    node.handle_message(msg(2, 1, 1, append(0, 0, ents(1, &[1, 1]), 0)));
    let out = drain_unpersisted(&mut node);
    let [Output::Persist(persist)] = out.as_slice() else {
        panic!("expected only a persist, got {out:?}");
    };
    assert_eq!(persist.entries, ents(1, &[1, 1]));
    assert_eq!(node.held_messages(), 1);
    assert!(node.poll_output().is_none());

    write(&mut node, persist);
    node.on_persisted(persist.id);
    assert_eq!(node.held_messages(), 0);
    assert_eq!(drain_sends(&mut node), [msg(1, 2, 1, accepted(2))]);
}

/// A leader sends new entries to followers before its own write
/// completes, and counts its own copy toward a majority only once it is
/// durable: with one follower's acknowledgement, the entry commits when
/// the leader's write does.
///
/// Reference: thesis §10.2.1 ("the leader ... can write to its disk in
/// parallel with replicating to the followers ... the leader may commit an
/// entry before it has been written to its own disk" only if a majority of
/// others have).
#[test]
fn leader_replicates_before_its_write_and_counts_itself_once_durable() {
    let mut node = new_node(1, &VOTERS, paper_config(1));
    make_leader(&mut node);
    step(&mut node, msg(2, 1, 1, accepted(1)));
    step(&mut node, msg(3, 1, 1, accepted(1)));
    assert_eq!(node.status().commit, 1);

    node.propose(Bytes::from("a")).expect("leader");
    let out = drain_unpersisted(&mut node);
    let entry = Entry::new(1, 2, "a");
    assert_eq!(
        sends(&out),
        [
            msg(1, 2, 1, append(1, 1, vec![entry.clone()], 1)),
            msg(1, 3, 1, append(1, 1, vec![entry.clone()], 1)),
        ]
    );
    let [persist] = persists(&out).try_into().expect("one persist");
    assert_eq!(persist.entries, std::slice::from_ref(&entry));

    node.handle_message(msg(2, 1, 1, accepted(2)));
    let out = drain_unpersisted(&mut node);
    assert_eq!(
        node.status().commit,
        1,
        "committed counting an unpersisted copy"
    );
    assert!(applied(&out).is_empty());

    write(&mut node, &persist);
    node.on_persisted(persist.id);
    assert_eq!(node.status().commit, 2);
    assert_eq!(applied(&drain(&mut node)), [entry]);
}

/// Two followers make a majority of three without the leader: the entry
/// commits while the leader's own write is still running.
///
/// Reference: thesis §10.2.1.
#[test]
fn leader_commits_on_followers_alone_while_its_write_runs() {
    let mut node = new_node(1, &VOTERS, paper_config(1));
    make_leader(&mut node);
    step(&mut node, msg(2, 1, 1, accepted(1)));
    node.propose(Bytes::from("a")).expect("leader");
    let out = drain_unpersisted(&mut node);
    assert_eq!(persists(&out).len(), 1);
    node.handle_message(msg(2, 1, 1, accepted(2)));
    node.handle_message(msg(3, 1, 1, accepted(2)));
    drain_unpersisted(&mut node);
    assert_eq!(node.status().commit, 2);
    assert_eq!(node.status().persisted, 1);
}

/// Acknowledgements for persist ids never handed out, or already
/// acknowledged, change nothing and are counted.
#[test]
fn acks_for_unknown_persist_ids_are_counted() {
    let mut node = new_node(1, &VOTERS, paper_config(1));
    node.on_persisted(1);
    assert_eq!(node.counters().bad_persist_acks, 1);

    node.campaign();
    let out = drain_unpersisted(&mut node);
    let [Output::Persist(persist)] = out.as_slice() else {
        panic!("expected the vote to persist: {out:?}");
    };
    node.on_persisted(persist.id + 1);
    node.on_persisted(0);
    assert_eq!(node.counters().bad_persist_acks, 3);
    assert!(
        node.poll_output().is_none(),
        "a bad ack released the vote requests"
    );

    node.on_persisted(persist.id);
    assert_eq!(drain_sends(&mut node).len(), 2);
    node.on_persisted(persist.id);
    assert_eq!(node.counters().bad_persist_acks, 4);
}

/// Through a network whose leader writes slowly: followers get and
/// acknowledge the entry at once, and the commit comes with them, not
/// with the leader's write.
///
/// Reference: thesis §10.2.1.
#[test]
fn slow_leader_disk_does_not_hold_up_replication() {
    let mut network = Network::new(&VOTERS);
    network.elect(1);
    network.set_manual_persist(1, true);
    network.propose(1, "a").expect("leader");
    network.deliver_all();
    assert_eq!(network.pending_persists(1), 1);
    for id in [2, 3] {
        assert_eq!(network.node(id).status().last_index, 2, "node {id}");
    }
    assert_eq!(network.node(1).status().commit, 2);
    network.set_manual_persist(1, false);
    assert_eq!(network.node(1).status().persisted, 2);
    network.run(1);
    for id in network.ids() {
        assert_eq!(network.applied_data(id), [Bytes::from("a")], "node {id}");
    }
}
