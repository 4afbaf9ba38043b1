//! Quiescence (multi-Raft): an idle group stops heartbeating and its
//! nodes' ticks do nothing, in the manner of CockroachDB's quiesced ranges
//! and TiKV's hibernate regions; it wakes on the first proposal, read or
//! message with news; a peer reported down does not keep it awake (TiKV
//! #19070), and a quiesced follower told that its leader is down runs its
//! election timer again, so a dead leader is replaced.

mod common;

use common::{Network, Node, drain, heartbeat, msg, new_node, paper_config, sends};
use dsys_consensus::{Config, MessageBody, Output, ReadOnlyOption, Role};

const QUIESCE_AFTER: u32 = 5;

/// Pre-vote and check-quorum on, quiescence after [`QUIESCE_AFTER`] idle
/// ticks.
fn quiet_config(id: u64) -> Config {
    let mut config = paper_config(id);
    config.pre_vote = true;
    config.check_quorum = true;
    config.quiesce_after_ticks = QUIESCE_AFTER;
    config
}

fn lease_config(id: u64) -> Config {
    let mut config = quiet_config(id);
    config.read_only = ReadOnlyOption::LeaseBased;
    config
}

fn all_quiesced(net: &Network) -> bool {
    net.ids().iter().all(|&id| net.node(id).is_quiesced())
}

/// A 3-node group led by node 1 that committed `x` and quiesced.
fn quiesced_group(config: fn(u64) -> Config) -> Network {
    let mut net = Network::with_config(&[1, 2, 3], config);
    net.elect(1);
    net.propose(1, "x").expect("the leader accepts");
    net.deliver_all();
    let rounds = net.run_until(QUIESCE_AFTER as usize + 5, all_quiesced);
    assert!(rounds <= QUIESCE_AFTER as usize + 3, "took {rounds} rounds");
    net
}

/// Ticks every node `ticks` times, asserting that none hands out anything.
fn assert_silent(net: &mut Network, ticks: usize) {
    for _ in 0..ticks {
        for id in net.ids() {
            let node = net.node_mut(id);
            node.tick();
            assert!(node.poll_output().is_none(), "node {id} woke up");
        }
    }
    assert!(net.queue().is_empty());
}

#[test]
fn an_idle_group_quiesces_and_then_hands_out_nothing() {
    let mut net = quiesced_group(quiet_config);
    assert_eq!(net.node(1).role(), Role::Leader);
    for id in [1, 2, 3] {
        assert!(net.node(id).status().quiesced, "node {id}");
        assert_eq!(net.node(id).counters().quiesces, 1, "node {id}");
        assert_eq!(net.node(id).counters().quiesce_refusals, 0);
    }
    assert_silent(&mut net, 10_000);
    assert!(all_quiesced(&net));
    assert_eq!(net.node(1).term(), 1);
}

#[test]
fn a_proposal_wakes_the_group_and_commits() {
    let mut net = quiesced_group(quiet_config);
    net.propose(1, "y").expect("a quiesced leader accepts");
    assert!(!net.node(1).is_quiesced());
    net.deliver_all();
    for id in [1, 2, 3] {
        assert_eq!(net.applied_data(id), ["x", "y"], "node {id}");
    }
    // And it quiesces again once idle.
    net.run_until(QUIESCE_AFTER as usize + 5, all_quiesced);
    assert_eq!(net.node(1).counters().quiesces, 2);
    assert_eq!(net.node(1).counters().wakes, 1);
}

#[test]
fn a_message_wakes_a_quiesced_follower_which_pokes_its_leader() {
    let mut net = quiesced_group(quiet_config);
    // Node 3's pre-vote request (its timer ran out: say the leader wrongly
    // thought it down): node 2 wakes, and behaves as a follower that has
    // just heard from its leader: inside check-quorum's lease it ignores
    // the request (thesis §6.2, §9.6); and it pokes the leader.
    let term = net.node(2).term();
    let last = net.node(2).log().last_index();
    let request = MessageBody::VoteRequest {
        pre_vote: true,
        last_index: last,
        last_term: term,
        leadership_transfer: false,
        priority: 0,
    };
    net.send(msg(3, 2, term + 1, request));
    assert!(net.deliver_one());
    assert!(!net.node(2).is_quiesced());
    assert_eq!(net.node(2).counters().wakes, 1);
    let answers: Vec<_> = net.queue().iter().cloned().collect();
    assert!(answers.iter().all(|m| m.to != 3), "{answers:?}");
    assert_eq!(net.node(2).counters().lease_ignored_votes, 1);
    assert!(
        answers
            .iter()
            .any(|m| m.to == 1 && m.body == MessageBody::HeartbeatResponse { read_round: 0 })
    );
    net.deliver_all();
    assert!(!net.node(1).is_quiesced(), "the poke wakes the leader");
    // The leader heartbeats, and the group settles and quiesces again
    // without an election.
    net.run_until(QUIESCE_AFTER as usize + 5, all_quiesced);
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(net.node(1).term(), term);
}

#[test]
fn a_follower_reported_down_does_not_keep_the_group_awake() {
    let mut net = Network::with_config(&[1, 2, 3], quiet_config);
    net.elect(1);
    net.isolate(3);
    net.node_mut(1).set_peer_liveness(3, false);
    net.node_mut(2).set_peer_liveness(3, false);
    net.propose(1, "x").expect("the leader accepts");
    net.deliver_all();
    net.run_until(QUIESCE_AFTER as usize + 5, |net| {
        net.node(1).is_quiesced() && net.node(2).is_quiesced()
    });
    // Node 3 lags and is cut off; the others stay quiet.
    assert!(net.node(1).progress(&3).expect("a peer").matched() < 2);
    for _ in 0..1_000 {
        for id in [1, 2] {
            let node = net.node_mut(id);
            node.tick();
            assert!(node.poll_output().is_none(), "node {id} woke up");
        }
    }

    // Node 3 comes back: the leader wakes and catches it up, then the
    // whole group quiesces.
    net.rejoin(3);
    net.take_queue();
    net.node_mut(1).set_peer_liveness(3, true);
    net.node_mut(2).set_peer_liveness(3, true);
    assert!(!net.node(1).is_quiesced());
    net.run_until(4 * QUIESCE_AFTER as usize + 40, all_quiesced);
    assert_eq!(net.applied_data(3), ["x"]);
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(net.node(1).term(), net.node(3).term());
}

#[test]
fn followers_told_their_quiesced_leader_is_down_elect_a_new_one() {
    let mut net = quiesced_group(quiet_config);
    // The leader crashes while quiesced. Without liveness news the
    // followers never notice (the application's duty).
    net.isolate(1);
    assert_silent(&mut net, 500);
    // The failure detector reports it.
    for id in [2, 3] {
        net.node_mut(id).set_peer_liveness(1, false);
        assert!(!net.node(id).is_quiesced());
    }
    net.run_until(100, |net| {
        [2, 3].iter().any(|&id| net.node(id).role() == Role::Leader)
    });
    let leader = [2, 3]
        .into_iter()
        .find(|&id| net.node(id).role() == Role::Leader)
        .expect("elected");
    assert!(net.node(leader).term() > 1);
    net.propose(leader, "y").expect("the new leader accepts");
    net.deliver_all();
    net.run(2);
    for id in [2, 3] {
        assert_eq!(net.applied_data(id), ["x", "y"], "node {id}");
    }
}

#[test]
fn a_follower_whose_log_differs_refuses_and_wakes_the_leader() {
    let mut net = quiesced_group(quiet_config);
    let term = net.node(2).term();
    let last = net.node(2).log().last_index();
    // A quiesce order for a log longer than node 2's.
    let order = MessageBody::Quiesce {
        commit: last + 1,
        last_index: last + 1,
        last_term: term,
    };
    net.send(msg(1, 2, term, order));
    assert!(net.deliver_one());
    assert!(!net.node(2).is_quiesced());
    assert_eq!(net.node(2).counters().quiesce_refusals, 1);
    assert_eq!(
        net.queue().back().map(|m| (m.to, m.body.clone())),
        Some((1, MessageBody::HeartbeatResponse { read_round: 0 }))
    );
    assert!(net.deliver_one());
    assert!(!net.node(1).is_quiesced(), "the refusal wakes the leader");

    // A different last term is refused too.
    let mut node = follower_with_entries();
    let out = drain_step(
        &mut node,
        MessageBody::Quiesce {
            commit: 2,
            last_index: 2,
            last_term: 7,
        },
    );
    assert!(!node.is_quiesced());
    assert_eq!(
        sends(&out)
            .iter()
            .map(|m| m.body.clone())
            .collect::<Vec<_>>(),
        [MessageBody::HeartbeatResponse { read_round: 0 }]
    );
    // The right log quiesces, learning the commit index, with no answer.
    let out = drain_step(
        &mut node,
        MessageBody::Quiesce {
            commit: 2,
            last_index: 2,
            last_term: 1,
        },
    );
    assert!(node.is_quiesced());
    assert_eq!(node.log().committed(), 2);
    assert!(sends(&out).is_empty());
}

/// Node 2 with entries 1 and 2 of term 1 from leader 1, commit 1.
fn follower_with_entries() -> Node {
    let mut node = new_node(2, &[1, 2, 3], quiet_config(2));
    drain(&mut node);
    let append = MessageBody::Append {
        prev_index: 0,
        prev_term: 0,
        entries: common::ents(1, &[1, 1]),
        commit: 1,
    };
    drain_step(&mut node, append);
    node
}

fn drain_step(node: &mut Node, body: MessageBody<u64>) -> Vec<common::Out> {
    node.handle_message(msg(1, 2, 1, body));
    drain(node)
}

#[test]
fn a_lagging_follower_keeps_the_group_awake_until_caught_up() {
    let mut net = Network::with_config(&[1, 2, 3], quiet_config);
    net.elect(1);
    // Appends to node 3 are lost; heartbeats get through, so it is live.
    net.set_filter(|m| match (&m.body, m.to) {
        (MessageBody::Append { .. }, 3) => None,
        _ => Some(m),
    });
    net.propose(1, "x").expect("the leader accepts");
    net.deliver_all();
    net.run(10 * QUIESCE_AFTER as usize);
    assert!(!net.node(1).is_quiesced());
    assert_eq!(net.node(1).counters().quiesces, 0);
    net.clear_filter();
    net.run_until(3 * QUIESCE_AFTER as usize + 10, all_quiesced);
    assert_eq!(net.applied_data(3), ["x"]);
}

#[test]
fn a_read_on_a_quiesced_leader_wakes_it_and_takes_a_read_index_round() {
    let mut net = quiesced_group(lease_config);
    net.node_mut(1).read_index(1).expect("the leader accepts");
    assert!(!net.node(1).is_quiesced());
    let mut outputs = Vec::new();
    while let Some(output) = net.node_mut(1).poll_output() {
        outputs.push(output);
    }
    // No lease read: a heartbeat round goes out first.
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::ReadReady(_))),
        "{outputs:?}"
    );
    let rounds: Vec<_> = sends(&outputs)
        .into_iter()
        .filter(|m| matches!(m.body, MessageBody::Heartbeat { read_round, .. } if read_round > 0))
        .collect();
    assert_eq!(rounds.len(), 2, "{outputs:?}");
    for message in rounds {
        net.send(message);
    }
    net.deliver_all();
    assert_eq!(net.reads_ready(1).len(), 1);
    assert_eq!(net.reads_ready(1)[0].index, net.node(1).log().committed());
    // A follower's forwarded read wakes the follower and the leader.
    net.run_until(QUIESCE_AFTER as usize + 5, all_quiesced);
    net.read_index(2, 1).expect("forwarded");
    assert!(!net.node(2).is_quiesced());
    net.deliver_all();
    assert_eq!(net.reads_ready(2).len(), 1);
}

#[test]
fn the_followers_heartbeat_answers_overtaken_by_the_quiesce_do_not_wake_anyone() {
    let mut net = quiesced_group(quiet_config);
    let commit = net.node(2).log().committed();
    // A heartbeat the leader sent before quiescing arrives late.
    net.send(msg(1, 2, 1, heartbeat(commit, 1)));
    net.deliver_all();
    assert!(all_quiesced(&net));
}

#[test]
fn quiescence_off_changes_nothing() {
    let mut net = Network::new(&[1, 2, 3]);
    assert_eq!(Config::default().quiesce_after_ticks, 0);
    net.elect(1);
    net.propose(1, "x").expect("the leader accepts");
    net.deliver_all();
    for _ in 0..200 {
        net.tick_all();
        assert!(!net.queue().is_empty(), "heartbeats go on");
        net.deliver_all();
    }
    for id in [1, 2, 3] {
        assert!(!net.node(id).is_quiesced());
        assert_eq!(net.node(id).counters().quiesces, 0);
    }
    // A follower with quiescence off refuses an order to quiesce.
    let term = net.node(2).term();
    let last = net.node(2).log().last_index();
    net.send(msg(
        1,
        2,
        term,
        MessageBody::Quiesce {
            commit: last,
            last_index: last,
            last_term: term,
        },
    ));
    net.deliver_all();
    assert!(!net.node(2).is_quiesced());
    assert_eq!(net.node(2).counters().quiesce_refusals, 1);
}

#[test]
fn quiesce_after_ticks_is_bounded() {
    let mut config = Config::default();
    config.quiesce_after_ticks = Config::MAX_TICK + 1;
    assert!(config.validate().is_err());
    config.quiesce_after_ticks = Config::MAX_TICK;
    assert!(config.validate().is_ok());
}

/// A measure, not a timed test: 10,000 quiesced 3-node groups ticked 100
/// times each hand out nothing at all.
#[test]
fn ten_thousand_quiesced_groups_hand_out_nothing_when_ticked() {
    let groups = 10_000;
    let mut nodes: Vec<Node> = Vec::with_capacity(3 * groups);
    for _ in 0..groups {
        let mut group = quiesced_group(quiet_config);
        for id in [1, 2, 3] {
            nodes.push(std::mem::replace(
                group.node_mut(id),
                new_node(id, &[1, 2, 3], quiet_config(id)),
            ));
        }
    }
    let mut outputs = 0usize;
    for _ in 0..100 {
        for node in &mut nodes {
            node.tick();
            while node.poll_output().is_some() {
                outputs += 1;
            }
        }
    }
    assert_eq!(outputs, 0);
    assert!(nodes.iter().all(Node::is_quiesced));
}

/// Thesis §9.6 without check-quorum: a quiesced follower woken by a
/// pre-vote request refuses it, as a follower that has just heard from its
/// leader does.
#[test]
fn a_quiesced_follower_refuses_pre_votes_as_if_it_just_heard_its_leader() {
    let mut net = quiesced_group(|id| {
        let mut config = quiet_config(id);
        config.check_quorum = false;
        config
    });
    let term = net.node(2).term();
    let last = net.node(2).log().last_index();
    net.send(msg(
        3,
        2,
        term + 1,
        MessageBody::VoteRequest {
            pre_vote: true,
            last_index: last,
            last_term: term,
            leadership_transfer: false,
            priority: 0,
        },
    ));
    assert!(net.deliver_one());
    assert!(!net.node(2).is_quiesced());
    assert!(net.queue().iter().any(|m| m.to == 3
        && m.body
            == MessageBody::VoteResponse {
                pre_vote: true,
                granted: false
            }));
    assert_eq!(net.node(2).term(), term);
}

/// A leader deposed while quiesced and cut off keeps thinking it leads;
/// a read there wakes it and never answers from its stale state, and once
/// the partition heals it follows the new leader and catches up.
#[test]
fn a_leader_deposed_while_quiesced_serves_no_stale_read_and_catches_up() {
    let mut net = quiesced_group(lease_config);
    net.isolate(1);
    for id in [2, 3] {
        net.node_mut(id).set_peer_liveness(1, false);
    }
    net.run_until(200, |net| {
        [2, 3].iter().any(|&id| net.node(id).role() == Role::Leader)
    });
    let leader = [2, 3]
        .into_iter()
        .find(|&id| net.node(id).role() == Role::Leader)
        .expect("elected");
    net.propose(leader, "y").expect("the new leader accepts");
    net.deliver_all();
    net.run(3);
    // Node 1 still believes it leads (it was quiesced: no check-quorum ran).
    assert_eq!(net.node(1).role(), Role::Leader);
    net.read_index(1, 7).expect("it thinks it leads");
    net.run(30);
    assert!(net.reads_ready(1).is_empty(), "a stale read was served");
    // Check-quorum, running again since the read woke it, deposed it.
    assert_ne!(net.node(1).role(), Role::Leader);
    assert_eq!(net.reads_failed(1), [7]);
    net.rejoin(1);
    for id in [2, 3] {
        net.node_mut(id).set_peer_liveness(1, true);
    }
    net.run_until(100, |net| net.applied_data(1) == ["x", "y"]);
}

#[test]
fn liveness_reports_about_itself_or_strangers_are_ignored() {
    let mut net = quiesced_group(quiet_config);
    net.node_mut(2).set_peer_liveness(2, false);
    net.node_mut(2).set_peer_liveness(9, false);
    assert!(net.node(2).is_peer_live(&2));
    assert!(net.node(2).is_peer_live(&9));
    // A report about a follower changes nothing on another follower.
    net.node_mut(2).set_peer_liveness(3, false);
    assert!(!net.node(2).is_peer_live(&3));
    assert!(all_quiesced(&net));
    assert_silent(&mut net, 100);
}
