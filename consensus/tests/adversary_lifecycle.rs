//! Adversarial tests of the newest features: membership changes (single
//! server and joint), learners, snapshots, quiescence and priorities,
//! written by an independent review (2026-12-07).
//!
//! Tests marked "Failed before the fix" reproduced a bug the review found,
//! each seen failing before its fix (none was caught by the simulator):
//! - `a_late_timeout_now_never_makes_a_demoted_learner_campaign`
//!   (a learner campaigned on a stale `TimeoutNow` and won);
//! - `a_learner_wrongly_reported_down_is_not_left_behind_forever` and
//!   `a_voter_wrongly_reported_down_is_caught_up` (a live peer wrongly
//!   reported down that missed an append was never caught up while the
//!   group was quiesced: it got no `Quiesce` to refuse);
//! - `a_down_mark_does_not_survive_removal_and_re_adding` and
//!   `a_re_added_learner_is_not_left_behind_by_a_stale_down_mark` (a down
//!   mark outlived removal; the live report in between was ignored);
//! - `a_dead_peer_that_installed_a_snapshot_does_not_pin_compaction`
//!   (compaction pinned for good by a dead peer).
//!
//! The others are coverage of documented behaviour.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use common::{Msg, Network, members, msg, paper_config, propose_joint, propose_leave};
use dsys_consensus::{
    Config, JointLeave, MembershipChange, MembershipError, MessageBody, SnapshotMeta, Storage,
};

use MembershipChange::{AddLearner, AddVoter, Remove};

fn quiet_config(id: u64) -> Config {
    let mut config = paper_config(id);
    config.pre_vote = true;
    config.check_quorum = true;
    config.quiesce_after_ticks = 5;
    config
}

fn chunked_config(id: u64) -> Config {
    let mut config = paper_config(id);
    config.snapshot_chunk_size = 8;
    config.max_snapshot_chunks_in_flight = 2;
    config
}

/// A filter that holds back (captures) every message matching `pick`.
fn capture(net: &mut Network, pick: impl Fn(&Msg) -> bool + 'static) -> Rc<RefCell<Vec<Msg>>> {
    let held = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&held);
    net.set_filter(move |m| {
        if pick(&m) {
            sink.borrow_mut().push(m);
            None
        } else {
            Some(m)
        }
    });
    held
}

// ---------------------------------------------------------------------
// Leadership transfer racing a membership change
// ---------------------------------------------------------------------

/// Failed before the fix.
///
/// README: "Learners receive the log and snapshots but never vote or
/// campaign"; thesis §4.2.2 / §3.10: only a voter of the configuration is
/// a transfer target. Leader 1 starts a transfer to voter 3; its
/// `TimeoutNow` is delayed in the network. The transfer is abandoned after
/// an election timeout, and 1 then demotes 3 to a learner with a joint
/// change, which commits and is left. The late `TimeoutNow` (same term,
/// from the current leader) then reaches learner 3, which campaigns:
/// it raises the term, deposes the healthy leader 1, and (its log being
/// up to date, the vote requests marked as a transfer) is elected: a
/// learner leads.
#[test]
fn a_late_timeout_now_never_makes_a_demoted_learner_campaign() {
    let mut net = Network::new(&[1, 2, 3]);
    net.elect(1);
    net.propose(1, "x").expect("leader accepts");
    net.deliver_all();
    let held = capture(&mut net, |m| {
        matches!(m.body, MessageBody::TimeoutNow) && m.to == 3
    });
    net.transfer(1, 3).expect("3 is a voter");
    net.deliver_all();
    assert!(
        !held.borrow().is_empty(),
        "scenario: the TimeoutNow was held"
    );
    // The transfer is abandoned after an election timeout.
    net.run_until(30, |n| n.node(1).transfer_target().is_none());
    net.clear_filter();
    let term = net.node(1).term();
    propose_joint(&mut net, 1, [AddLearner(3)], JointLeave::Auto).expect("demote 3");
    net.deliver_all();
    net.run(3);
    assert_eq!(net.node(3).membership(), &members(&[1, 2], &[3]));
    assert_eq!(net.node(1).membership(), &members(&[1, 2], &[3]));
    assert!(net.node(1).is_leader() && net.node(1).term() == term);
    // The late order arrives, in the same term, from the current leader.
    let late = held.borrow()[0].clone();
    net.clear_delivered();
    net.send(late);
    net.deliver_all();
    let campaigned = net
        .delivered()
        .iter()
        .any(|m| m.from == 3 && matches!(m.body, MessageBody::VoteRequest { .. }));
    let won = net
        .delivered()
        .iter()
        .any(|m| m.from == 3 && matches!(m.body, MessageBody::Append { .. }));
    assert!(
        !campaigned,
        "learner 3 campaigned on a stale TimeoutNow (and won: {won}; term now {})",
        net.node(3).term()
    );
    assert!(
        net.node(1).is_leader() && net.node(1).term() == term,
        "the healthy leader was deposed by a learner (leader now {:?}, term {})",
        net.leader(),
        net.node(1).term()
    );
}

// ---------------------------------------------------------------------
// Quiescence and learners
// ---------------------------------------------------------------------

/// Voters 1, 2, 3 (node 1 leading) and learner 4, with quiescence; every
/// node has applied everything and the group is quiesced.
fn quiesced_group_with_learner() -> Network {
    let mut net = Network::with_config(&[1, 2, 3], quiet_config);
    net.elect(1);
    net.propose(1, "x").expect("leader accepts");
    net.deliver_all();
    net.add_joining(4, quiet_config(4));
    net.propose_membership(1, AddLearner(4))
        .expect("the leader adds a learner");
    net.deliver_all();
    net.run_until(40, |n| n.ids().iter().all(|&id| n.node(id).is_quiesced()));
    assert_eq!(
        net.node(4).log().last_index(),
        net.node(1).log().last_index()
    );
    net
}

/// One command `y` is committed while every message from leader 1 to
/// `to` is lost, until the leader quiesces again: its `Quiesce` to `to`
/// is the first message that gets through. Then time passes on a healed
/// network. Returns whether `to` applied `y`.
fn gets_a_write_it_missed(net: &mut Network, to: u64, ticks: usize) -> bool {
    let mut healed = false;
    net.set_filter(move |m: Msg| {
        if healed || m.from != 1 || m.to != to {
            return Some(m);
        }
        healed = matches!(m.body, MessageBody::Quiesce { .. });
        healed.then_some(m)
    });
    net.propose(1, "y").expect("leader accepts");
    net.deliver_all();
    net.run_until(40, |n| n.node(1).is_quiesced());
    net.clear_filter();
    net.run(ticks);
    net.applied_data(to).contains(&Bytes::from("y"))
}

/// Failed before the fix.
///
/// README (Quiescence): "Wrong reports are safe: a live peer reported down
/// is left out of the next quiescence and wakes the group when its own
/// election timer runs out"; README: "A learner may be reported down
/// through `set_peer_liveness` like a voter". A learner has no election
/// timer that ever fires (it never campaigns), so a live learner wrongly
/// reported down that missed one append is left behind for good: the
/// group quiesces without it and nothing ever wakes it. Liveness: a
/// committed entry must eventually reach every live member (§5.3, learners
/// "receive the log").
#[test]
fn a_learner_wrongly_reported_down_is_not_left_behind_forever() {
    let mut net = quiesced_group_with_learner();
    // A false suspicion about the learner (the process is alive).
    net.node_mut(1).set_peer_liveness(4, false);
    net.drain(1);
    let got = gets_a_write_it_missed(&mut net, 4, 300);
    assert!(
        got,
        "learner 4 never got a committed write: leader quiesced={}, learner last={} leader last={}",
        net.node(1).is_quiesced(),
        net.node(4).log().last_index(),
        net.node(1).log().last_index()
    );
}

/// Failed before the fix.
///
/// The same with a *voter*. README (Quiescence): "Wrong reports are safe:
/// a live peer reported down is left out of the next quiescence and wakes
/// the group when its own election timer runs out". Voter 3 was quiesced
/// when it was (wrongly) reported down, so its ticks do nothing and its
/// election timer never runs; the leader's append of `y` to it is lost,
/// the leader re-quiesces without it (3 is "down"), and 3 never learns of
/// `y` although it is alive and every link is up: a committed entry never
/// reaches a live voter (liveness, §5.3: the leader retries indefinitely).
#[test]
fn a_voter_wrongly_reported_down_is_caught_up() {
    let mut net = Network::with_config(&[1, 2, 3], quiet_config);
    net.elect(1);
    net.propose(1, "x").expect("leader accepts");
    net.deliver_all();
    net.run_until(40, |n| n.ids().iter().all(|&id| n.node(id).is_quiesced()));
    net.node_mut(1).set_peer_liveness(3, false);
    net.drain(1);
    let got = gets_a_write_it_missed(&mut net, 3, 300);
    assert!(
        got,
        "live voter 3 never got a committed write: quiesced {:?}, last index of 3: {}, of 1: {}",
        [1, 2, 3].map(|i| net.node(i).is_quiesced()),
        net.node(3).log().last_index(),
        net.node(1).log().last_index()
    );
}

/// Failed before the fix.
///
/// The application follows the README's duty ("call
/// `set_peer_liveness` when a peer goes down and when it comes back"):
/// learner 4 goes down and is reported down; it is removed; it comes back
/// and is reported live, but the report is ignored because 4 is no member
/// at that moment ("Reports about ... a node outside the configuration are
/// ignored"); then it is added again. The leader still counts it down
/// (`is_peer_live(4) == false`) with no report saying so, quiesces without
/// it, and the learner misses a committed write for good.
#[test]
fn a_down_mark_does_not_survive_removal_and_re_adding() {
    let mut net = quiesced_group_with_learner();
    net.node_mut(1).set_peer_liveness(4, false);
    net.drain(1);
    net.propose_membership(1, Remove(4))
        .expect("remove learner 4");
    net.deliver_all();
    net.run(3);
    // 4 is back; the detector says so (ignored: 4 is no member now).
    net.node_mut(1).set_peer_liveness(4, true);
    net.drain(1);
    net.propose_membership(1, AddLearner(4))
        .expect("re-add learner 4");
    net.deliver_all();
    net.run(5);
    assert!(
        net.node(1).is_peer_live(&4),
        "the leader counts re-added learner 4 down though the last report said live"
    );
}

/// Failed before the fix (a consequence of the stale down mark above).
#[test]
fn a_re_added_learner_is_not_left_behind_by_a_stale_down_mark() {
    let mut net = quiesced_group_with_learner();
    net.node_mut(1).set_peer_liveness(4, false);
    net.drain(1);
    net.propose_membership(1, Remove(4))
        .expect("remove learner 4");
    net.deliver_all();
    net.run(3);
    net.node_mut(1).set_peer_liveness(4, true);
    net.drain(1);
    net.propose_membership(1, AddLearner(4))
        .expect("re-add learner 4");
    net.deliver_all();
    net.run_until(60, |n| n.node(1).is_quiesced());
    // Live as far as the leader knows: it does not quiesce while 4 lags,
    // and catches it up once the link heals.
    net.cut_one_way(1, 4);
    net.propose(1, "y").expect("leader accepts");
    net.deliver_all();
    net.run(10);
    assert!(!net.node(1).is_quiesced(), "4 lags");
    net.heal();
    net.run(300);
    assert!(
        net.applied_data(4).contains(&Bytes::from("y")),
        "re-added learner 4 never got a committed write"
    );
}

// ---------------------------------------------------------------------
// Joint consensus with snapshots, restarts and leader changes
// ---------------------------------------------------------------------

/// Voters 1, 2, 3 and learner 4 (caught up), with chunked snapshots;
/// node 1 leads and has committed two commands.
fn joint_cluster() -> Network {
    let mut net = Network::with_config(&[1, 2, 3], chunked_config);
    net.elect(1);
    net.propose(1, "a").expect("leader accepts");
    net.propose(1, "b").expect("leader accepts");
    net.deliver_all();
    net.add_joining(4, chunked_config(4));
    net.propose_membership(1, AddLearner(4))
        .expect("add learner 4");
    net.deliver_all();
    net.run(3);
    assert_eq!(net.node(4).membership(), &members(&[1, 2, 3], &[4]));
    net
}

/// Coverage (passes). README "Membership": "a snapshot carries the
/// membership at its index"; Raft §6 needs the joint state to survive
/// compaction. A follower cut off before a joint change is restored by a
/// snapshot taken while joint: it must come out joint (both sets, the
/// learners-next and the leave mode), also after a restart from that
/// snapshot alone, and follow the explicit leave afterwards.
#[test]
fn a_snapshot_taken_while_joint_restores_the_joint_configuration() {
    let mut net = joint_cluster();
    net.isolate(3);
    propose_joint(
        &mut net,
        1,
        [AddVoter(4), AddLearner(2)],
        JointLeave::Explicit,
    )
    .expect("replace 2 by 4, 2 to learn");
    net.deliver_all();
    net.propose(1, "c").expect("leader accepts");
    net.deliver_all();
    net.run(2);
    let joint = net.node(1).membership().clone();
    assert!(joint.is_joint());
    assert_eq!(joint.learners_next(), &[2]);
    net.snapshot_and_compact(1);
    assert_eq!(net.snapshot(1).map(|s| &s.membership), Some(&joint));
    net.rejoin(3);
    net.run_until(60, |n| {
        n.node(3).log().last_index() == n.node(1).log().last_index()
    });
    assert_eq!(
        net.node(3).membership(),
        &joint,
        "restored from a joint snapshot"
    );
    assert_eq!(
        net.node(3).storage().snapshot().map(|s| s.membership),
        Some(joint.clone())
    );
    net.restart(3);
    assert_eq!(net.node(3).membership(), &joint, "after a restart");
    net.run(3);
    propose_leave(&mut net, 1).expect("leave");
    net.deliver_all();
    net.run(3);
    for id in [1, 2, 3, 4] {
        assert_eq!(
            net.node(id).membership(),
            &members(&[1, 3, 4], &[2]),
            "node {id}"
        );
    }
    assert!(net.applied_data(3).contains(&Bytes::from("c")));
}

/// Coverage (passes). README: "a new leader that finds a committed
/// auto-leave joint configuration in force [leaves it] once its first
/// entry commits"; "A leader outside C_new leads ... until the leaving
/// entry commits, then steps down". Leader 1 enters C_old {1,2,3} ->
/// C_new {1,3,4} with auto-leave; its leaving entry is lost and it dies.
/// Node 2 (in C_old only), whose log is compacted past the joint entry,
/// becomes leader with the votes of 3 (lagging, restored by snapshot from
/// 2) and 4, leaves the joint configuration and steps down; 3 or 4 then
/// leads C_new.
#[test]
fn a_new_leader_outside_c_new_completes_the_auto_leave_after_a_snapshot() {
    let mut net = joint_cluster();
    net.isolate(3);
    net.propose(1, "c").expect("leader accepts");
    net.propose(1, "d").expect("leader accepts");
    net.deliver_all();
    net.run(1);
    // Every append carrying the leaving entry is lost.
    net.set_filter(|m| match &m.body {
        MessageBody::Append { entries, .. }
            if entries
                .iter()
                .any(|e| e.as_membership().is_some_and(|mm| !mm.is_joint())) =>
        {
            None
        }
        _ => Some(m),
    });
    propose_joint(&mut net, 1, [AddVoter(4), Remove(2)], JointLeave::Auto).expect("replace 2 by 4");
    net.deliver_all();
    net.run(2);
    assert!(!net.node(1).membership().is_joint(), "1 appended the leave");
    assert!(net.node(2).membership().is_joint());
    assert!(net.node(4).membership().is_joint());
    // 1 dies; 2 snapshots and compacts past the joint entry.
    net.isolate(1);
    net.clear_filter();
    net.snapshot_and_compact(2);
    net.rejoin(3);
    net.isolate(1);
    net.campaign(2);
    net.deliver_all();
    net.run_until(200, |n| {
        n.leader().is_some_and(|l| l == 3 || l == 4)
            && [2, 3, 4]
                .iter()
                .all(|&id| n.node(id).membership() == &members(&[1, 3, 4], &[]))
    });
    assert!(
        net.node(3).storage().snapshot().is_some(),
        "scenario: 3 was restored by snapshot"
    );
    let leader = net.leader().expect("a leader of C_new");
    net.propose(leader, "after").expect("leader accepts");
    net.deliver_all();
    net.run(3);
    for id in [3, 4] {
        assert!(
            net.applied_data(id).contains(&Bytes::from("after")),
            "node {id}"
        );
        assert_eq!(
            net.applied_data(id)[..2],
            [Bytes::from("a"), Bytes::from("b")],
            "node {id}"
        );
    }
}

// ---------------------------------------------------------------------
// Snapshots: compaction floors, pending restores, duplicates
// ---------------------------------------------------------------------

/// Node 1 leads 1, 2, 3 (chunked snapshots, `quiesce_after_ticks` as
/// given); node 3 is cut off while `n` commands commit, and node 1
/// snapshots and compacts past them.
fn compacted_with_lagging_3(n: usize, quiesce: u32) -> (Network, u64) {
    let config = move |id| {
        let mut c = chunked_config(id);
        c.quiesce_after_ticks = quiesce;
        c
    };
    let mut net = Network::with_config(&[1, 2, 3], config);
    net.elect(1);
    net.isolate(3);
    for i in 0..n {
        let data: &'static str = Box::leak(format!("cmd{i}").into_boxed_str());
        net.propose(1, data).expect("the leader accepts");
        net.deliver_all();
    }
    net.run(2);
    let index = net.snapshot_and_compact(1);
    (net, index)
}

/// Failed before the fix.
///
/// A peer reported down (`set_peer_liveness`) ends a transfer in flight
/// and releases the compaction floor it set (`end_snapshot_send` clears
/// `snapshot_floor` when aborting). But a peer that *installed* the
/// snapshot and died before it replicated an entry keeps its floor for
/// good: `compaction_limit()` stays at the old snapshot while the peer is
/// down, however much the leader commits and snapshots, so its log grows
/// without bound (README: the floor is kept "until it catches up", which
/// a dead peer never does; a dead peer reported down should cost nothing,
/// TiKV #19070).
#[test]
fn a_dead_peer_that_installed_a_snapshot_does_not_pin_compaction() {
    let (mut net, first) = compacted_with_lagging_3(5, 0);
    net.rejoin(3);
    // Deliver until the leader hears that 3 installed the snapshot.
    let installed = |net: &Network| {
        net.events(1).iter().any(|e| {
            matches!(
                e,
                common::Event::SendEnded {
                    to: 3,
                    aborted: None,
                    ..
                }
            )
        })
    };
    let mut ticks = 0;
    while !installed(&net) {
        if !net.deliver_one() {
            net.tick_all();
            ticks += 1;
            assert!(ticks < 100, "scenario: the snapshot is installed");
        }
    }
    // 3 dies at once, and is reported down.
    net.isolate(3);
    net.take_queue();
    net.node_mut(1).set_peer_liveness(3, false);
    net.node_mut(2).set_peer_liveness(3, false);
    net.drain(1);
    for i in 0..10 {
        let data: &'static str = Box::leak(format!("more{i}").into_boxed_str());
        net.propose(1, data).expect("the leader accepts");
        net.deliver_all();
    }
    net.run(2);
    let second = net.take_snapshot(1);
    assert!(second > first + 5);
    assert!(
        net.node(1).compaction_limit() > first,
        "compaction is pinned at {first} by dead peer 3 (latest snapshot {second})"
    );
}

/// Coverage (passes). A restore is pending on follower 3 (manual
/// restore) while the leader removes 3 and adds it back as a learner: the
/// leader ends its transfer (Cancelled), 3 finishes its restore late, and
/// is then caught up as a learner with a state machine equal to the
/// others' (§7, thesis §4). No panic, no error from
/// `on_snapshot_restored`.
#[test]
fn a_restore_pending_across_removal_and_re_adding_completes() {
    let (mut net, _) = compacted_with_lagging_3(5, 0);
    net.set_manual_restore(3, true);
    net.rejoin(3);
    net.run_until(40, |n| n.pending_restore(3).is_some());
    net.propose_membership(1, Remove(3)).expect("remove 3");
    net.deliver_all();
    net.run(2);
    assert!(net.events(1).iter().any(|e| matches!(
        e,
        common::Event::SendEnded {
            to: 3,
            aborted: Some(_),
            ..
        }
    ) || matches!(
        e,
        common::Event::SendEnded {
            to: 3,
            aborted: None,
            ..
        }
    )));
    assert!(net.finish_restore(3));
    net.propose_membership(1, AddLearner(3))
        .expect("re-add 3 as learner");
    net.deliver_all();
    net.propose(1, "z").expect("leader accepts");
    net.deliver_all();
    net.run(20);
    assert_eq!(net.node(3).membership(), &members(&[1, 2], &[3]));
    assert_eq!(net.applied_data(3), net.applied_data(1));
}

/// Coverage (passes). Every snapshot chunk to follower 3 is delivered
/// twice, and the first chunk a third time after the others: the follower
/// still restores exactly the leader's state (§7: chunks are staged in
/// order, duplicates ignored or restarted cleanly).
#[test]
fn duplicated_chunks_still_restore_the_exact_state() {
    let (mut net, _) = compacted_with_lagging_3(9, 0);
    let seen: Rc<RefCell<Vec<Msg>>> = Rc::new(RefCell::new(Vec::new()));
    let keep = Rc::clone(&seen);
    net.set_filter(move |m| {
        if matches!(m.body, MessageBody::InstallSnapshot { .. }) {
            keep.borrow_mut().push(m.clone());
        }
        Some(m)
    });
    net.rejoin(3);
    let mut first_chunk = None;
    for _ in 0..40 {
        net.tick_all();
        net.deliver_all();
        // Each chunk delivered this round arrives once more, then the
        // first chunk of the transfer once more.
        let replay: Vec<Msg> = seen.borrow_mut().drain(..).collect();
        for m in &replay {
            if first_chunk.is_none()
                && matches!(m.body, MessageBody::InstallSnapshot { offset: 0, .. })
            {
                first_chunk = Some(m.clone());
            }
        }
        net.set_filter(Some);
        for m in replay {
            net.send(m);
        }
        net.deliver_all();
        if let Some(m) = first_chunk.clone() {
            net.send(m);
            net.deliver_all();
        }
        let keep = Rc::clone(&seen);
        net.set_filter(move |m| {
            if matches!(m.body, MessageBody::InstallSnapshot { .. }) {
                keep.borrow_mut().push(m.clone());
            }
            Some(m)
        });
    }
    net.clear_filter();
    net.run(20);
    assert_eq!(net.applied_data(3), net.applied_data(1));
    assert!(net.node(3).storage().snapshot().is_some());
}

// ---------------------------------------------------------------------
// Priorities: never leaderless for good on a healthy network
// ---------------------------------------------------------------------

/// Coverage. README (priority hints): a voter refuses a lower-priority
/// candidate whose log is not strictly more up to date and campaigns at
/// once; the group must still elect a leader on a fully connected network
/// (liveness, §5.2) for every assignment of priorities, with and without
/// pre-vote / check-quorum, from equal logs and from logs that differ
/// (the highest-priority node behind).
#[test]
fn every_priority_assignment_elects_a_leader() {
    let prios: [[u64; 5]; 6] = [
        [0, 0, 0, 0, 0],
        [5, 4, 3, 2, 1],
        [1, 2, 3, 4, 5],
        [9, 0, 0, 0, 9],
        [3, 3, 1, 1, 2],
        [u64::MAX, 0, u64::MAX - 1, 7, 7],
    ];
    let mut worst = 0;
    for prio in prios {
        for (pre_vote, check_quorum) in [(false, false), (true, false), (true, true)] {
            for seed in 0..6u64 {
                for behind in [None, Some(0usize)] {
                    let config = move |id: u64| {
                        let mut c = paper_config(id);
                        c.seed = id * 31 + seed;
                        c.pre_vote = pre_vote;
                        c.check_quorum = check_quorum;
                        c.priority = prio[(id - 1) as usize];
                        c
                    };
                    let mut net = Network::with_config(&[1, 2, 3, 4, 5], config);
                    let mut dead = None;
                    if behind.is_some() {
                        // Elect someone, commit with the highest-priority
                        // other node cut off, then kill the leader.
                        net.run_until(400, |n| n.leader().is_some());
                        let lead = net.leader().expect("a leader");
                        let b = (1..=5u64)
                            .filter(|&i| i != lead)
                            .max_by_key(|&i| prio[(i - 1) as usize])
                            .expect("others");
                        net.isolate(b);
                        net.propose(lead, "x").expect("leader accepts");
                        net.deliver_all();
                        net.heal();
                        net.isolate(lead);
                        dead = Some(lead);
                    }
                    let rounds =
                        net.run_until(400, |n| n.leaders().iter().any(|&l| Some(l) != dead));
                    worst = worst.max(rounds);
                }
            }
        }
    }
    eprintln!("worst rounds to a leader: {worst}");
}

/// Coverage (passes). README "Persistence": a received snapshot is made
/// durable, then `on_snapshot_restored` is called; a crash in between
/// restarts the node from that durable snapshot. Here the snapshot is
/// joint (taken while joint, explicit leave): the restarted follower is
/// joint, counts the snapshot applied, and follows the leave afterwards.
#[test]
fn a_crash_between_a_durable_restore_and_its_acknowledgement_keeps_the_joint_state() {
    let mut net = joint_cluster();
    net.isolate(3);
    propose_joint(&mut net, 1, [AddVoter(4), Remove(2)], JointLeave::Explicit)
        .expect("replace 2 by 4");
    net.deliver_all();
    net.propose(1, "c").expect("leader accepts");
    net.deliver_all();
    net.run(2);
    let joint = net.node(1).membership().clone();
    let index = net.snapshot_and_compact(1);
    net.set_manual_restore(3, true);
    net.rejoin(3);
    net.run_until(40, |n| n.pending_restore(3).is_some());
    let meta: SnapshotMeta<u64> = net.pending_restore(3).expect("pending").clone();
    assert_eq!(meta.index, index);
    // The application makes it durable, then crashes before telling the node.
    net.node_mut(3).storage_mut().apply_snapshot(meta);
    net.set_manual_restore(3, false);
    net.restart(3);
    assert_eq!(net.node(3).membership(), &joint);
    assert_eq!(net.node(3).log().applied(), index);
    propose_leave(&mut net, 1).expect("leave");
    net.deliver_all();
    net.run_until(60, |n| n.node(3).membership() == &members(&[1, 3, 4], &[]));
    assert_eq!(
        net.node(3).log().last_index(),
        net.node(1).log().last_index()
    );
    assert_eq!(net.node(3).log().committed(), net.node(1).log().committed());
}

/// Coverage (passes). Raft §6 / README: while joint, every other change
/// is refused (`InJoint`), and so is a new joint change until the leave
/// commits (`Pending`); right after the leave commits a new joint change
/// is accepted and itself commits with both majorities.
#[test]
fn re_entering_joint_right_after_leaving() {
    let mut net = joint_cluster();
    propose_joint(&mut net, 1, [AddVoter(4), Remove(3)], JointLeave::Explicit)
        .expect("replace 3 by 4");
    assert_eq!(
        propose_joint(&mut net, 1, [Remove(2)], JointLeave::Auto),
        Err(MembershipError::InJoint)
    );
    assert_eq!(
        net.propose_membership(1, Remove(2)),
        Err(MembershipError::InJoint)
    );
    assert_eq!(propose_leave(&mut net, 1), Err(MembershipError::Pending));
    net.deliver_all();
    propose_leave(&mut net, 1).expect("leave once the joint entry commits");
    assert_eq!(
        propose_joint(&mut net, 1, [AddVoter(3)], JointLeave::Auto),
        Err(MembershipError::Pending),
        "the leave is not committed yet"
    );
    net.deliver_all();
    assert_eq!(net.node(1).membership(), &members(&[1, 2, 4], &[]));
    // 3 was removed; bring it back as a learner then a voter, jointly.
    propose_joint(&mut net, 1, [AddLearner(3), Remove(2)], JointLeave::Auto)
        .expect("a new joint change right after the leave committed");
    net.deliver_all();
    net.run(3);
    assert_eq!(net.node(1).membership(), &members(&[1, 4], &[3]));
    assert!(net.node(1).is_leader());
}

// ---------------------------------------------------------------------
// Bad input around membership and snapshots
// ---------------------------------------------------------------------

/// Coverage (passes). README: "Bad input (unknown senders, stale terms,
/// acks past the log, ...) is ignored and counted in `Counters`, never a
/// panic." Mid-transfer, the leader gets an answer with an offset past
/// anything sent, a removed node's answers from a later term and an ack
/// past its log; the follower gets a chunk whose end overflows `u64`.
/// The leader keeps its term and leadership and the transfer completes.
#[test]
fn huge_offsets_and_removed_senders_mid_transfer_are_ignored() {
    let (mut net, index) = compacted_with_lagging_3(9, 0);
    net.add_joining(4, chunked_config(4));
    net.propose_membership(1, AddLearner(4)).expect("add 4");
    net.deliver_all();
    net.propose_membership(1, Remove(4)).expect("remove 4");
    net.deliver_all();
    let term = net.node(1).term();
    net.set_manual_chunks(1, true);
    net.rejoin(3);
    net.run_until(20, |n| {
        n.node(1)
            .progress(&3)
            .is_some_and(|p| p.state() == dsys_consensus::ReplicationState::Snapshot)
    });
    let malformed = net.node(1).counters().malformed;
    let unknown = net.node(1).counters().unknown_sender;
    let meta = net.snapshot(1).expect("snapshot").clone();
    for m in [
        msg(
            3,
            1,
            term,
            MessageBody::SnapshotResponse {
                index,
                outcome: dsys_consensus::SnapshotOutcome::Next { offset: u64::MAX },
            },
        ),
        msg(
            4,
            1,
            term + 5,
            MessageBody::HeartbeatResponse {
                read_round: u64::MAX,
            },
        ),
        msg(
            4,
            1,
            term,
            MessageBody::AppendResponse(dsys_consensus::AppendOutcome::Accepted {
                last_index: u64::MAX,
            }),
        ),
        msg(
            4,
            1,
            term + 5,
            MessageBody::SnapshotResponse {
                index: u64::MAX,
                outcome: dsys_consensus::SnapshotOutcome::Installed,
            },
        ),
        msg(
            1,
            3,
            term,
            MessageBody::InstallSnapshot {
                meta: meta.clone(),
                offset: u64::MAX - 3,
                data: Bytes::from_static(b"12345678"),
                last: true,
            },
        ),
    ] {
        net.send(m);
        net.deliver_all();
    }
    assert!(net.node(1).is_leader() && net.node(1).term() == term);
    assert!(net.node(1).counters().malformed > malformed);
    assert!(net.node(1).counters().unknown_sender >= unknown + 3);
    assert!(net.node(3).counters().malformed >= 1);
    assert!(!net.node(3).restore_pending());
    net.set_manual_chunks(1, false);
    for request in net.take_chunk_requests(1) {
        net.answer_chunk(1, &request).expect("asked for");
    }
    net.run(40);
    assert_eq!(net.applied_data(3), net.applied_data(1));
}

/// Coverage (passes). README: a new leader that finds a committed
/// auto-leave joint configuration leaves it once its first entry commits.
/// Leader 1 enters joint {1,2,3} -> {2,3,4} (auto) and at once hands
/// leadership to 4 (C_new only), before the joint entry commits; the group
/// ends in C_new with one leader, and 1 (removed) no longer leads.
#[test]
fn auto_leave_completes_after_a_transfer_started_mid_joint() {
    let mut net = joint_cluster();
    propose_joint(&mut net, 1, [AddVoter(4), Remove(1)], JointLeave::Auto).expect("replace 1 by 4");
    net.transfer(1, 4).expect("4 is a voter of C_new");
    net.deliver_all();
    net.run_until(100, |n| {
        n.leader().is_some_and(|l| l != 1)
            && [2, 3, 4]
                .iter()
                .all(|&id| n.node(id).membership() == &members(&[2, 3, 4], &[]))
    });
    net.run(5);
    assert!(!net.node(1).is_leader(), "removed node 1 still leads");
    let leader = net.leader().expect("a leader");
    net.propose(leader, "z").expect("leader accepts");
    net.deliver_all();
    net.run(2);
    for id in [2, 3, 4] {
        assert!(
            net.applied_data(id).contains(&Bytes::from("z")),
            "node {id}"
        );
    }
}

/// Coverage (passes). §7: a snapshot whose index the follower has
/// already committed is acknowledged as installed and changes nothing:
/// no staging, no restore, no membership change.
#[test]
fn a_snapshot_at_or_below_the_commit_index_changes_nothing() {
    let mut net = joint_cluster();
    let term = net.node(1).term();
    let committed = net.node(2).log().committed();
    let before = net.node(2).membership().clone();
    let meta = SnapshotMeta {
        index: committed - 1,
        term,
        membership: members(&[9], &[]),
    };
    net.node_mut(2).handle_message(msg(
        1,
        2,
        term,
        MessageBody::InstallSnapshot {
            meta,
            offset: 0,
            data: Bytes::from_static(b"junk"),
            last: true,
        },
    ));
    let mut restored = false;
    while let Some(out) = net.node_mut(2).poll_output() {
        if matches!(
            out,
            dsys_consensus::Output::RestoreSnapshot(_)
                | dsys_consensus::Output::SnapshotChunk { .. }
        ) {
            restored = true;
        }
    }
    assert!(!restored);
    assert_eq!(net.node(2).membership(), &before);
    assert_eq!(net.node(2).log().committed(), committed);
}

/// Coverage (passes). README: "a change wakes a quiesced leader". A
/// quiesced group removes a quiesced voter, quiesces again as {1, 2},
/// then adds the node back as a learner: the stale, quiesced node wakes on
/// the leader's append and catches up, and the group quiesces again with
/// it up to date.
#[test]
fn a_quiesced_follower_removed_and_re_added_catches_up() {
    let mut net = Network::with_config(&[1, 2, 3], quiet_config);
    net.elect(1);
    net.propose(1, "x").expect("leader accepts");
    net.deliver_all();
    net.run_until(40, |n| n.ids().iter().all(|&id| n.node(id).is_quiesced()));
    net.propose_membership(1, Remove(3)).expect("remove 3");
    net.deliver_all();
    net.propose(1, "y").expect("leader accepts");
    net.deliver_all();
    net.run_until(40, |n| n.node(1).is_quiesced() && n.node(2).is_quiesced());
    assert!(net.node(3).is_quiesced(), "3 never heard of its removal");
    net.propose_membership(1, AddLearner(3)).expect("re-add 3");
    net.deliver_all();
    net.run_until(60, |n| n.ids().iter().all(|&id| n.node(id).is_quiesced()));
    assert_eq!(net.node(3).membership(), &members(&[1, 2], &[3]));
    assert_eq!(net.applied_data(3), net.applied_data(1));
}
