//! Regression tests for what an independent Raft harness, a line-by-line
//! review and a new user's service found in the Raft core (issue 14). Each
//! test reproduces one finding deterministically; each failed on the code
//! before its fix.

mod common;

use bytes::Bytes;
use common::{Network, drain, ents, msg, new_node, node_with_log, paper_config};
use dsys_consensus::{
    Config, ConfigError, MemStorage, MessageBody, Output, RaftNode, ReadError, ReadOnlyOption,
    Storage,
};

fn lease_config(id: u64) -> Config {
    let mut config = paper_config(id);
    config.check_quorum = true;
    config.pre_vote = true;
    config.read_only = ReadOnlyOption::LeaseBased;
    config
}

/// Ticks and delivers until node `id` leads, starting it off with a
/// campaign.
fn elect(net: &mut Network, id: u64) {
    net.campaign(id);
    net.deliver_all();
    net.run_until(50, |n| n.node(id).is_leader());
}

// ---- Finding 1: lease reads (thesis §6.4.1) ----

/// Finding 1(a): a leader checked its quorum once per election timeout, so
/// replies landing just after one check carried it through the next: it
/// served lease reads up to ~2E after it last heard from a majority, while
/// the others elected a new leader after E and committed a write. The
/// lease must run from the send time of the heartbeat round a majority
/// acknowledged, and be shorter than the election timeout.
#[test]
fn lease_read_on_a_cut_off_leader_never_misses_a_newer_write() {
    let mut net = Network::with_config(&[1, 2, 3], lease_config);
    elect(&mut net, 1);
    // Ten rounds as leader: the check-quorum check at its tenth tick
    // passes, then that tick's heartbeats are acknowledged.
    net.run(10);
    assert!(net.node(1).is_leader());
    net.isolate(1);
    // The others stop hearing from it, time out and elect one of them,
    // which commits an acknowledged write.
    let rounds = net.run_until(60, |n| n.leader().is_some_and(|l| l != 1));
    let new_leader = net.leader().expect("a new leader");
    net.propose(new_leader, "x=new")
        .expect("the new leader accepts");
    net.deliver_all();
    net.run(2);
    for id in [2, 3] {
        assert!(
            net.applied_data(id).contains(&Bytes::from("x=new")),
            "node {id} applied the write"
        );
    }
    // The old leader has not noticed yet (its next check-quorum is later).
    assert!(
        net.node(1).is_leader(),
        "scenario: the old leader still leads after {rounds} rounds"
    );
    let _ = net.read_index(1, 99);
    net.tick(1);
    let stale: Vec<_> = net
        .reads_ready(1)
        .into_iter()
        .filter(|r| r.id == 99)
        .collect();
    assert!(
        stale.is_empty(),
        "the cut-off leader served a lease read at index {:?} that misses the new leader's write",
        stale.first().map(|r| r.index)
    );
}

/// Finding 1(b): after sending `TimeoutNow`, the old leader kept serving
/// lease reads while the target was elected with votes that override the
/// voters' leases. No lease read once a transfer has started.
#[test]
fn no_lease_read_once_a_transfer_has_started() {
    let mut net = Network::with_config(&[1, 2, 3], lease_config);
    elect(&mut net, 1);
    net.run(2);
    // Node 1 hears nothing any more, but can still send.
    net.cut_one_way(2, 1);
    net.cut_one_way(3, 1);
    net.transfer(1, 2).expect("node 1 leads");
    net.deliver_all();
    assert!(net.node(2).is_leader(), "the target won the election");
    net.propose(2, "x=new").expect("the new leader accepts");
    net.deliver_all();
    net.run(1);
    assert!(net.applied_data(3).contains(&Bytes::from("x=new")));
    assert!(
        net.node(1).is_leader(),
        "scenario: node 1 has not heard of it"
    );
    let _ = net.read_index(1, 7);
    assert!(
        net.reads_ready(1).iter().all(|r| r.id != 7),
        "node 1 served a lease read after handing leadership over: {:?}",
        net.reads_ready(1)
    );
}

/// Finding 1, the lease across a restart: a voter that acknowledged the
/// leader's heartbeat and then restarted remembers nothing, and would vote
/// at once for a candidate that did not hear the leader, while the leader
/// still serves lease reads. In lease mode a restarted voter honours the
/// lease it may have granted.
#[test]
fn a_restarted_voter_still_honours_the_lease() {
    let mut net = Network::with_config(&[1, 2, 3], lease_config);
    elect(&mut net, 1);
    // Node 3 stops hearing node 1 and its own lease memory runs out; node 2
    // keeps acknowledging node 1, which keeps its lease.
    net.cut(1, 3);
    net.run(12);
    assert!(net.node(1).is_leader() && !net.node(3).is_leader());
    let _ = net.take_queue();
    net.read_index(1, 1).expect("leader");
    assert!(
        net.queue().is_empty() && net.reads_ready(1).iter().any(|r| r.id == 1),
        "scenario: node 1 serves lease reads"
    );
    net.restart(2);
    net.campaign(3);
    net.deliver_all();
    assert!(
        !net.node(3).is_leader(),
        "node 3 won an election inside node 1's lease, with the vote of a restarted node 2"
    );
}

/// Finding 1, a campaign inside a lease: with lease reads on, `campaign`
/// on a follower that heard from its leader within the election timeout
/// is ignored (it would break the lease); transfer leadership instead.
#[test]
fn campaign_inside_a_lease_is_ignored() {
    let mut net = Network::with_config(&[1, 2, 3], lease_config);
    elect(&mut net, 1);
    net.run(1);
    net.campaign(2);
    assert_eq!(net.node(2).role(), dsys_consensus::Role::Follower);
    assert_eq!(net.node(2).counters().lease_ignored_votes, 1);
    // Without lease reads, the application may force an election.
    let mut safe = Network::with_config(&[1, 2, 3], |id| {
        let mut config = paper_config(id);
        config.check_quorum = true;
        config.pre_vote = false;
        config
    });
    elect(&mut safe, 1);
    safe.run(1);
    safe.campaign(2);
    assert_eq!(safe.node(2).role(), dsys_consensus::Role::Candidate);
}

// ---- Finding 2: what a crash between the writes of one batch leaves ----

/// Finding 2: one `Persist` carried a hard state whose commit covered
/// entries of the same batch that replace stale ones on disk. With the
/// hard state written and the entries not (a crash between the two
/// writes), the restarted node applied the stale entries and then refused
/// the leader's for good. The persisted commit must never cover entries
/// that are not yet durable.
#[test]
fn a_torn_batch_never_commits_the_stale_entries_it_replaces() {
    // Node 3 holds stale entries 2 and 3 of term 1, committed only to 1.
    let mut node = node_with_log(3, &[1, 2, 3], &[1, 1, 1], 1, 1, paper_config(3));
    // The leader of term 2 replaces them and says they are committed.
    node.handle_message(msg(
        2,
        3,
        2,
        MessageBody::Append {
            prev_index: 1,
            prev_term: 1,
            entries: ents(2, &[2, 2]),
            commit: 3,
        },
    ));
    // Crash after the hard state of the first batch lands, before its
    // entries do.
    let mut disk = node.storage().clone();
    while let Some(output) = node.poll_output() {
        if let Output::Persist(persist) = output {
            if let Some(hard_state) = persist.hard_state {
                disk.set_hard_state(hard_state);
            }
            break;
        }
    }
    assert!(
        disk.initial_state().hard_state.commit <= 1,
        "the persisted commit index {} covers entries that were not durable",
        disk.initial_state().hard_state.commit
    );
    let mut restarted = RaftNode::new(3, disk, paper_config(3)).expect("restarts");
    let outputs = drain(&mut restarted);
    let applied: Vec<_> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Apply(entries) => Some(entries.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        applied.iter().all(|e| e.index <= 1),
        "the restarted node applied stale entries: {applied:?}"
    );
    // And it accepts the leader's entries.
    restarted.handle_message(msg(
        2,
        3,
        2,
        MessageBody::Append {
            prev_index: 1,
            prev_term: 1,
            entries: ents(2, &[2, 2]),
            commit: 3,
        },
    ));
    let outputs = drain(&mut restarted);
    assert!(
        outputs.iter().any(|o| matches!(o, Output::Send(m)
            if matches!(m.body, MessageBody::AppendResponse(dsys_consensus::AppendOutcome::Accepted { last_index: 3 })))),
        "the restarted node refused the leader's entries: {outputs:?}"
    );
}

// ---- Finding 3: restart from a persisted state machine ----

/// Finding 3: the commit index was persisted only when term, vote or
/// entries changed, so after three writes every node had applied index 4
/// with a stored commit of 3, and restarting with `Config.applied = 4`
/// failed with `AppliedBeyondCommit` on every node.
#[test]
fn apply_record_applied_crash_restart() {
    let mut net = Network::new(&[1, 2, 3]);
    elect(&mut net, 1);
    for data in ["a", "b", "c"] {
        net.propose(1, data).expect("the leader accepts");
        net.deliver_all();
    }
    net.run(3);
    for id in [1, 2, 3] {
        let applied = net.applied(id).last().map_or(0, |e| e.index);
        assert_eq!(applied, 4, "node {id} applied the no-op and three writes");
        // The state machine recorded `applied`; the node crashes and
        // restarts from its disk.
        let disk = net.node(id).storage().clone();
        let mut config = paper_config(id);
        config.applied = applied;
        let restarted = RaftNode::new(id, disk, config);
        assert!(
            restarted.is_ok(),
            "node {id} cannot resume from its state machine: {:?}",
            restarted.err()
        );
    }
}

/// Finding 3, the other half: `Apply` was handed out before the entries
/// were durable locally (asynchronous persistence), so a state machine
/// could record an index its own disk did not hold.
#[test]
fn nothing_is_applied_before_it_is_durable_locally() {
    let mut net = Network::new(&[1, 2, 3]);
    elect(&mut net, 1);
    net.set_manual_persist(2, true);
    net.propose(1, "a").expect("the leader accepts");
    net.deliver_all();
    net.run(2);
    // Node 2 holds the entry, knows it committed, and has not written it.
    assert!(net.node(2).log().committed() >= 2);
    assert!(net.node(2).storage().last_index() < 2);
    let applied = net.applied(2);
    assert!(
        applied
            .iter()
            .all(|e| e.index <= net.node(2).storage().last_index()),
        "node 2 applied {applied:?} while its disk ends at {}",
        net.node(2).storage().last_index()
    );
    // Once the writes complete, it applies.
    net.set_manual_persist(2, false);
    net.run(1);
    assert!(net.applied_data(2).contains(&Bytes::from("a")));
}

// ---- Finding 4: tracking proposals and reads ----

/// Finding 4: `propose` returned only an index, and after a leader change
/// another entry can commit there. It returns the term too, and the entry
/// applied at that index tells whether the proposal committed or was lost.
#[test]
fn a_proposal_knows_whether_it_committed_or_was_lost() {
    let mut net = Network::new(&[1, 2, 3]);
    elect(&mut net, 1);
    let kept = net.propose_tracked(1, "kept").expect("the leader accepts");
    assert_eq!(kept.term, net.node(1).term());
    net.deliver_all();
    net.run(1);
    // Node 1 is cut off and proposes again; nobody else hears of it.
    net.isolate(1);
    let lost = net.propose_tracked(1, "lost").expect("node 1 still leads");
    assert_eq!(lost.index, kept.index + 1);
    // The others elect node 2, whose no-op takes that index.
    elect(&mut net, 2);
    net.run(1);
    net.heal();
    net.run(3);
    let applied = net.applied(1);
    let at = |index| {
        applied
            .iter()
            .find(|e| e.index == index)
            .expect("applied on node 1")
    };
    assert_eq!(kept.outcome(at(kept.index)), Some(true), "committed");
    assert_eq!(
        lost.outcome(at(lost.index)),
        Some(false),
        "another term committed at its index: lost"
    );
    assert_eq!(kept.outcome(at(lost.index)), None, "another index");
}

/// Finding 4: a reused read id let an old duplicated `ReadIndexResponse`
/// answer a newer read with a stale index. Read ids must increase.
#[test]
fn a_duplicated_read_response_never_answers_a_newer_read() {
    let mut net = Network::new(&[1, 2, 3]);
    elect(&mut net, 1);
    net.run(1);
    net.read_index(2, 7).expect("node 2 knows the leader");
    net.deliver_all();
    assert!(net.reads_ready(2).iter().any(|r| r.id == 7));
    let response = net
        .delivered()
        .iter()
        .rev()
        .find(|m| matches!(m.body, MessageBody::ReadIndexResponse { id: 7, .. }))
        .cloned()
        .expect("the leader answered");
    // A write commits after that read.
    net.propose(1, "x=new").expect("the leader accepts");
    net.deliver_all();
    net.run(2);
    let write_index = net.node(1).log().committed();
    // The same id again: refused, or never answered by the old response.
    if net.read_index(2, 7).is_ok() {
        // The new request is still on its way when the old answer's
        // duplicate arrives.
        let _request = net.take_queue();
        net.send(response);
        net.deliver_all();
        let ready: Vec<_> = net
            .reads_ready(2)
            .into_iter()
            .filter(|r| r.id == 7)
            .collect();
        assert!(
            ready.iter().skip(1).all(|r| r.index >= write_index),
            "the old response answered the new read: {ready:?}, write at {write_index}"
        );
    }
}

/// Finding 4: a read id at or below one already used is refused.
#[test]
fn read_ids_must_increase() {
    let mut net = Network::new(&[1, 2, 3]);
    elect(&mut net, 1);
    net.run(1);
    net.read_index(2, 5).expect("first use");
    assert!(matches!(
        net.read_index(2, 5),
        Err(ReadError::IdNotIncreasing { .. })
    ));
    assert!(matches!(
        net.read_index(2, 4),
        Err(ReadError::IdNotIncreasing { .. })
    ));
    net.read_index(2, 6).expect("a larger id");
}

/// Finding 4: a forwarded read whose leader steps down (or whose request
/// or answer is lost) never completed. It must end with `ReadFailed`
/// within a bounded number of ticks.
#[test]
fn a_forwarded_read_fails_within_an_election_timeout() {
    let mut net = Network::new(&[1, 2, 3]);
    elect(&mut net, 1);
    net.run(1);
    net.isolate(1);
    net.read_index(2, 11)
        .expect("node 2 still knows the leader");
    net.deliver_all();
    for _ in 0..2 * paper_config(2).election_tick {
        net.tick(2);
    }
    assert_eq!(
        net.reads_failed(2),
        vec![11],
        "the forwarded read neither completed nor failed"
    );
}

/// Finding 4, found by the simulator: a forwarded read that was answered,
/// on a follower that then cannot apply up to the read index (the
/// leader's appends no longer reach it), waited for ever. It fails too.
#[test]
fn an_answered_read_that_cannot_be_served_fails() {
    let mut net = Network::new(&[1, 2, 3]);
    elect(&mut net, 1);
    net.run(1);
    // Node 2 still hears heartbeats and read answers, but no entries.
    net.set_filter(|m| match m.body {
        MessageBody::Append { .. } if m.to == 2 => None,
        _ => Some(m),
    });
    net.propose(1, "x").expect("the leader accepts");
    net.deliver_all();
    net.run(1);
    net.read_index(2, 20).expect("node 2 knows the leader");
    net.deliver_all();
    assert!(
        net.delivered().iter().any(|m| m.to == 2
            && matches!(
                m.body,
                MessageBody::ReadIndexResponse {
                    id: 20,
                    index: Some(2)
                }
            )),
        "scenario: the leader answered with index 2"
    );
    for _ in 0..2 * paper_config(2).election_tick {
        net.tick(2);
    }
    assert!(
        net.node(2).log().applied() < 2,
        "scenario: node 2 cannot apply"
    );
    assert!(net.reads_ready(2).is_empty());
    assert_eq!(net.reads_failed(2), vec![20]);
}

// ---- Finding 11: configuration bounds ----

/// Finding 11: `election_tick > u32::MAX / 2` overflowed when drawing the
/// randomized timeout `[E, 2E)`. `validate` bounds every field.
#[test]
fn validate_bounds_the_election_tick() {
    for election_tick in [u32::MAX / 2 + 1, u32::MAX] {
        let mut config = Config::default();
        config.election_tick = election_tick;
        assert!(
            matches!(config.validate(), Err(ConfigError::TickOutOfRange { .. })),
            "election_tick {election_tick} accepted"
        );
        let node = std::panic::catch_unwind(|| {
            RaftNode::new(1u64, MemStorage::new(vec![1]), config.clone()).map(|_| ())
        });
        assert!(matches!(node, Ok(Err(_))), "new: {node:?}");
    }
}

/// Nothing that `validate` accepts overflows while a node runs: the
/// largest accepted timeouts, ticked through an election and leadership.
#[test]
fn the_largest_valid_config_runs() {
    let mut config = Config::default();
    config.election_tick = Config::MAX_TICK;
    config.heartbeat_tick = Config::MAX_TICK - 1;
    config.max_size_per_msg = u64::MAX;
    config.max_inflight_msgs = usize::MAX;
    config.max_inflight_bytes = u64::MAX;
    config.max_proposal_size = u64::MAX;
    config.max_uncommitted_size = u64::MAX;
    config.max_apply_bytes = u64::MAX;
    config.validate().expect("the largest ticks are valid");
    let mut node = new_node(1, &[1], config);
    node.campaign();
    drain(&mut node);
    assert!(node.is_leader());
    node.propose(Bytes::from("x")).expect("leader");
    for _ in 0..1000 {
        node.tick();
    }
    drain(&mut node);
    assert_eq!(
        node.log().applied(),
        2,
        "the no-op and the proposal applied"
    );
}
