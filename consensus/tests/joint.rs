//! Joint consensus (Raft §6, thesis §4.3) with etcd's automatic leave
//! (`ConfChangeV2`), in the style of raft-rs's conf-change tests: a joint
//! change enters C_old,new and leaves it for C_new (on its own, or when
//! asked); while joint, commits, elections, check-quorum and reads need a
//! majority of both C_old and C_new; a leader outside C_new steps down once
//! the leaving entry commits; a new leader completes an automatic leave; an
//! uncommitted joint entry reverts when truncated; a removed node cannot
//! disrupt; a voter can be demoted to learner.

mod common;

use bytes::Bytes;
use common::{Network, members, paper_config, propose_joint, propose_leave, thesis_config};
use dsys_consensus::{
    EntryKind, JointLeave, Membership, MembershipChange, MembershipError, MessageBody, Role,
};

use MembershipChange::{AddLearner, AddVoter, Remove};

/// The memberships node `id` applied from configuration entries, in order.
fn applied_memberships(net: &Network, id: u64) -> Vec<Membership<u64>> {
    net.applied(id)
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Membership(m) => Some(Membership::clone(m)),
            _ => None,
        })
        .collect()
}

/// Node 1 leads voters 1, 2, 3 with `learners` added (and caught up)
/// through one joint change of learners only, which also leaves on its own.
fn cluster_with_learners(
    learners: &[u64],
    config: impl Fn(u64) -> dsys_consensus::Config,
) -> Network {
    let mut net = Network::with_config(&[1, 2, 3], &config);
    net.elect(1);
    net.propose(1, "cmd").expect("the leader accepts");
    net.deliver_all();
    for &id in learners {
        net.add_joining(id, config(id));
    }
    if !learners.is_empty() {
        propose_joint(
            &mut net,
            1,
            learners.iter().map(|&l| AddLearner(l)),
            JointLeave::Auto,
        )
        .expect("the leader adds learners");
        net.run(3);
        assert_eq!(net.node(1).membership(), &members(&[1, 2, 3], learners));
    }
    net
}

/// The joint configuration C_old = {1, 2, 3}, C_new = {1, 4, 5}, entered
/// explicitly (it stays until asked to leave) and committed everywhere.
fn joint_1_2_3_to_1_4_5(config: impl Fn(u64) -> dsys_consensus::Config) -> Network {
    let mut net = cluster_with_learners(&[4, 5], config);
    propose_joint(
        &mut net,
        1,
        [AddVoter(4), AddVoter(5), Remove(2), Remove(3)],
        JointLeave::Explicit,
    )
    .expect("4 and 5 are caught up");
    net.run(3);
    for id in 1..=5 {
        let m = net.node(id).membership();
        assert!(m.is_joint(), "node {id}: {m:?}");
        assert_eq!(
            (m.voters(), m.outgoing_voters()),
            (&[1, 4, 5][..], &[1, 2, 3][..])
        );
    }
    assert_eq!(
        net.node(1).log().committed(),
        net.node(1).log().last_index()
    );
    net
}

/// A joint change takes effect when appended, and once it commits the
/// leader appends the entry that leaves it; every node applies both.
/// Reference: etcd `TestConfChangeV2` (auto-leave), thesis §4.3.
#[test]
fn a_joint_change_enters_and_leaves_on_its_own() {
    let mut net = cluster_with_learners(&[4], paper_config);
    let joint = propose_joint(&mut net, 1, [AddVoter(4), Remove(3)], JointLeave::Auto)
        .expect("4 is caught up");
    let m = net.node(1).membership().clone();
    assert!(m.is_joint() && m.auto_leave(), "in force at once: {m:?}");
    assert_eq!(
        (m.voters(), m.outgoing_voters()),
        (&[1, 2, 4][..], &[1, 2, 3][..])
    );
    net.run(3);
    let last = net.node(1).log().last_index();
    assert_eq!(
        last,
        joint.index + 1,
        "the leaving entry follows the joint one"
    );
    for id in [1, 2, 4] {
        assert_eq!(net.node(id).membership(), &members(&[1, 2, 4], &[]));
        let applied = applied_memberships(&net, id);
        assert_eq!(
            applied[applied.len() - 2..],
            [m.clone(), members(&[1, 2, 4], &[])],
            "node {id} applied the joint configuration, then C_new"
        );
    }
    // 3 is out: 1, 2 and 4 commit without it.
    net.isolate(3);
    let index = net.propose(1, "x").expect("the leader accepts");
    net.run(2);
    assert!(net.node(1).log().committed() >= index);
}

/// An explicit joint configuration stays until the application leaves it;
/// meanwhile every other change is refused.
#[test]
fn an_explicit_joint_change_waits_to_be_left() {
    let mut net = joint_1_2_3_to_1_4_5(paper_config);
    net.run(10);
    assert!(net.node(1).membership().is_joint(), "no leave on its own");
    let last = net.node(1).log().last_index();
    assert_eq!(
        net.propose_membership(1, Remove(5)),
        Err(MembershipError::InJoint)
    );
    assert_eq!(
        propose_joint(&mut net, 1, [Remove(5)], JointLeave::Auto),
        Err(MembershipError::InJoint)
    );
    assert_eq!(
        propose_leave(&mut net, 2),
        Err(MembershipError::NotLeader { leader: Some(1) })
    );
    assert_eq!(net.node(1).log().last_index(), last, "nothing appended");
    propose_leave(&mut net, 1).expect("the leader leaves");
    assert_eq!(propose_leave(&mut net, 1), Err(MembershipError::NotJoint));
    net.run(3);
    for id in [1, 4, 5] {
        assert_eq!(net.node(id).membership(), &members(&[1, 4, 5], &[]));
    }
    // 2 and 3 are out.
    net.isolate(2);
    net.isolate(3);
    let index = net.propose(1, "x").expect("the leader accepts");
    net.run(2);
    assert!(net.node(1).log().committed() >= index);
    assert_eq!(net.applied_data(5).last(), Some(&Bytes::from_static(b"x")));
}

/// While joint, an entry commits only once a majority of C_old and a
/// majority of C_new hold it (Raft §6): C_new's majority alone, or
/// C_old's alone, is not enough. ReadIndex confirmations count the same
/// way. Reference: raft-rs `test_commit_joint` style, thesis §4.3.
#[test]
fn while_joint_an_entry_commits_only_with_both_majorities() {
    let mut net = joint_1_2_3_to_1_4_5(paper_config);
    // Only C_new: 1, 4 and 5 hold it, C_old has 1 of 3.
    net.isolate(2);
    net.isolate(3);
    let index = net.propose(1, "x").expect("the leader accepts");
    net.read_index(1, 1).expect("the leader reads");
    net.run(3);
    assert_eq!(net.node(4).log().last_index(), index, "C_new holds it");
    assert!(net.node(1).log().committed() < index, "C_new alone");
    assert!(
        net.reads_ready(1).is_empty(),
        "read confirmed by C_new alone"
    );
    net.rejoin(2);
    net.run(3);
    assert!(net.node(1).log().committed() >= index, "with 2, both");
    assert_eq!(net.reads_ready(1).len(), 1);

    // Only C_old: 1, 2 and 3 hold it, C_new has 1 of 3.
    net.heal();
    net.isolate(4);
    net.isolate(5);
    let index = net.propose(1, "y").expect("the leader accepts");
    net.run(3);
    assert_eq!(net.node(3).log().last_index(), index, "C_old holds it");
    assert!(net.node(1).log().committed() < index, "C_old alone");
    net.rejoin(5);
    net.run(3);
    assert!(net.node(1).log().committed() >= index, "with 5, both");
}

/// While joint, a candidate needs votes (and pre-votes) from a majority
/// of C_old and of C_new (Raft §6).
#[test]
fn while_joint_an_election_needs_both_majorities() {
    for pre_vote in [false, true] {
        let mut net = joint_1_2_3_to_1_4_5(|id| thesis_config(id, pre_vote, false));
        for id in 1..=5 {
            net.isolate(id);
        }
        // Everyone stops hearing the leader (so pre-votes are granted)
        // and campaigns alone once at least.
        for _ in 0..30 {
            for id in 2..=5 {
                net.tick(id);
            }
        }
        net.deliver_all();
        // A few tries each, so terms left behind by the lonely campaigns
        // do not decide the outcome.
        let campaign = |net: &mut Network| {
            for _ in 0..3 {
                net.campaign(4);
                net.deliver_all();
                if net.node(4).is_leader() {
                    return true;
                }
            }
            false
        };
        // 4 and 5 are a majority of C_new and nothing of C_old.
        net.uncut(4, 5);
        assert!(!campaign(&mut net), "pre_vote {pre_vote}: C_new alone");
        // 2 joins: one of C_old is still no majority of it.
        net.uncut(4, 2);
        net.uncut(5, 2);
        assert!(
            !campaign(&mut net),
            "pre_vote {pre_vote}: 2 of C_old missing"
        );
        net.uncut(4, 3);
        net.uncut(5, 3);
        net.uncut(2, 3);
        assert!(campaign(&mut net), "pre_vote {pre_vote}: both majorities");
    }
}

/// With check-quorum, a joint leader that hears from a majority of C_new
/// but not of C_old steps down (thesis §6.2 with Raft §6).
#[test]
fn while_joint_check_quorum_needs_both_majorities() {
    let mut net = joint_1_2_3_to_1_4_5(|id| thesis_config(id, false, true));
    net.isolate(2);
    net.isolate(3);
    for _ in 0..2 * 10 {
        net.tick(1);
        net.deliver_all();
    }
    assert_eq!(net.node(1).role(), Role::Follower, "C_old lost");
}

/// Replacing the leader in one joint change: it leads (counting itself
/// only in C_old) until the leaving entry commits, then steps down, and a
/// member of C_new is elected (thesis §4.2.2 with §4.3).
#[test]
fn replacing_the_leader_through_a_joint_change() {
    let mut net = cluster_with_learners(&[4], paper_config);
    let joint = propose_joint(&mut net, 1, [AddVoter(4), Remove(1)], JointLeave::Auto)
        .expect("4 is caught up");
    // Deliver one message at a time: 1 leads while the joint entry and
    // the leaving entry are uncommitted.
    let leave = joint.index + 1;
    while net.node(1).log().committed() < leave {
        assert!(net.node(1).is_leader(), "leads until the leave commits");
        assert!(net.deliver_one(), "messages until the leave commits");
    }
    net.deliver_all();
    assert_eq!(net.node(1).role(), Role::Follower, "stepped down");
    net.run_until(100, |n| n.leader().is_some_and(|l| l != 1));
    let leader = net.leader().expect("checked above");
    assert!([2, 3, 4].contains(&leader));
    net.propose(leader, "after")
        .expect("the new leader accepts");
    net.run(5);
    for id in [2, 3, 4] {
        assert_eq!(net.node(id).membership(), &members(&[2, 3, 4], &[]));
        assert_eq!(
            net.applied_data(id).last(),
            Some(&Bytes::from_static(b"after"))
        );
    }
    net.run(50);
    assert!(net.leaders().iter().all(|&l| l != 1), "1 never leads again");
}

/// The leader crashes once the joint entry commits, before anyone else
/// has the leaving entry: the next leader finds the committed joint
/// configuration in force and leaves it (etcd does so when it applies the
/// joint entry).
#[test]
fn a_new_leader_completes_the_automatic_leave() {
    let mut net = cluster_with_learners(&[4], paper_config);
    // The leaving entry never gets out of 1.
    net.set_filter(|m| match &m.body {
        MessageBody::Append { entries, .. }
            if entries
                .iter()
                .any(|e| e.as_membership().is_some_and(|m| !m.is_joint())) =>
        {
            None
        }
        _ => Some(m),
    });
    let joint = propose_joint(&mut net, 1, [AddVoter(4), Remove(3)], JointLeave::Auto)
        .expect("4 is caught up");
    net.deliver_all();
    assert!(net.node(1).log().committed() >= joint.index);
    assert_eq!(
        net.node(1).membership(),
        &members(&[1, 2, 4], &[]),
        "1 left"
    );
    net.clear_filter();
    net.isolate(1);
    for id in [2, 3, 4] {
        assert!(net.node(id).membership().is_joint(), "node {id} is joint");
    }
    // 2, 3 and 4 elect a leader (majorities of {1, 2, 3} and {1, 2, 4}),
    // which leaves the joint configuration once its no-op commits.
    net.run_until(100, |n| n.leader().is_some_and(|l| l != 1));
    let leader = net.leader().expect("checked above");
    net.run(3);
    let term = net.node(leader).term();
    let leave = net
        .log_entries(leader)
        .into_iter()
        .rev()
        .find(|e| e.as_membership().is_some())
        .expect("a configuration entry");
    assert_eq!(
        (leave.term, leave.as_membership()),
        (term, Some(&members(&[1, 2, 4], &[]))),
        "the new leader's own leaving entry"
    );
    for id in [2, 4] {
        assert_eq!(net.node(id).membership(), &members(&[1, 2, 4], &[]));
        assert_eq!(
            net.node(id).log().committed(),
            net.node(id).log().last_index()
        );
    }
    // 1 comes back and takes the new leader's log.
    net.rejoin(1);
    net.propose(leader, "x").expect("the leader accepts");
    net.run(5);
    assert_eq!(net.node(1).membership(), &members(&[1, 2, 4], &[]));
    assert_eq!(net.log_entries(1), net.log_entries(leader));
}

/// An uncommitted joint entry takes effect when appended and reverts when
/// a new leader truncates it (thesis §4.1): here on the old leader, cut
/// off right after it appended the entry, which becomes a follower.
#[test]
fn an_uncommitted_joint_entry_reverts_when_truncated() {
    let mut net = cluster_with_learners(&[4], paper_config);
    net.isolate(1);
    propose_joint(&mut net, 1, [AddVoter(4), Remove(3)], JointLeave::Auto).expect("4 is caught up");
    assert!(net.node(1).membership().is_joint());
    net.run_until(100, |n| n.leader().is_some_and(|l| l != 1));
    let leader = net.leader().expect("checked above");
    net.propose(leader, "x").expect("accepted");
    net.deliver_all();
    net.rejoin(1);
    net.run(5);
    assert_eq!(net.node(1).role(), Role::Follower);
    assert_eq!(net.node(1).membership(), &members(&[1, 2, 3], &[4]));
    assert_eq!(net.applied_data(1).last(), Some(&Bytes::from_static(b"x")));
}

/// The same on a follower: 2 alone received the joint entry, the others
/// elect 3, whose no-op replaces it on 2, and 2's membership reverts.
#[test]
fn a_follower_reverts_a_truncated_joint_entry() {
    let mut net = Network::new(&[1, 2, 3, 4, 5]);
    net.elect(1);
    net.propose(1, "cmd").expect("the leader accepts");
    net.deliver_all();
    for id in [3, 4, 5] {
        net.cut(1, id);
    }
    propose_joint(&mut net, 1, [Remove(4), Remove(5)], JointLeave::Auto).expect("accepted");
    net.deliver_all();
    assert!(net.node(2).membership().is_joint(), "2 appended it");
    net.isolate(1);
    net.cut(2, 3);
    net.elect(3);
    net.uncut(2, 3);
    net.propose(3, "x").expect("3 leads");
    net.run(3);
    assert_eq!(net.node(2).membership(), &members(&[1, 2, 3, 4, 5], &[]));
    assert_eq!(net.applied_data(2).last(), Some(&Bytes::from_static(b"x")));
}

/// While joint, a leader hearing only from C_new's majority has no lease:
/// a read asked once its last lease from both majorities ran out is not
/// served (thesis §6.4.1 with Raft §6).
#[test]
fn while_joint_a_lease_needs_both_majorities() {
    let lease = |id| {
        let mut config = thesis_config(id, true, true);
        config.read_only = dsys_consensus::ReadOnlyOption::LeaseBased;
        config
    };
    let mut net = joint_1_2_3_to_1_4_5(lease);
    net.read_index(1, 1).expect("the leader reads");
    assert_eq!(net.reads_ready(1).len(), 1, "a lease from both majorities");
    // 2 and 3 still hear the leader but are not heard back.
    for id in [2, 3] {
        net.cut_one_way(id, 1);
    }
    let mut read = 1;
    for tick in 1..=30 {
        net.tick_all();
        net.deliver_all();
        if !net.node(1).is_leader() {
            break;
        }
        read += 1;
        let ready = net.reads_ready(1).len();
        net.read_index(1, read).expect("the leader reads");
        if tick >= 10 {
            assert_eq!(
                net.reads_ready(1).len(),
                ready,
                "read {read} at tick {tick}"
            );
        }
    }
    assert!(!net.node(1).is_leader(), "check-quorum deposed it");
}

/// A node removed by a joint change while cut off still holds the old
/// membership and campaigns; with pre-vote or check-quorum the members'
/// term and leader do not move (thesis §4.2.3).
#[test]
fn a_removed_node_with_an_old_config_cannot_disrupt() {
    for (pre_vote, check_quorum) in [(true, false), (false, true), (true, true)] {
        let mut net = cluster_with_learners(&[4], |id| thesis_config(id, pre_vote, check_quorum));
        net.isolate(3);
        propose_joint(&mut net, 1, [AddVoter(4), Remove(3)], JointLeave::Auto)
            .expect("4 is caught up");
        net.run(3);
        assert_eq!(net.node(1).membership(), &members(&[1, 2, 4], &[]));
        assert_eq!(net.node(3).membership(), &members(&[1, 2, 3], &[4]));
        common::assert_rejoin_does_not_disrupt(&mut net, 3, 4);
    }
}

/// A joint change can demote a voter (etcd's `learners_next`): it votes
/// in C_old until the joint configuration is left, then learns: it
/// receives the log, never counts, never campaigns.
#[test]
fn a_joint_change_demotes_a_voter_to_learner() {
    let mut net = cluster_with_learners(&[], paper_config);
    propose_joint(&mut net, 1, [AddLearner(3)], JointLeave::Explicit).expect("a demotion");
    let m = net.node(1).membership().clone();
    assert_eq!(
        (
            m.voters(),
            m.outgoing_voters(),
            m.learners(),
            m.learners_next()
        ),
        (&[1, 2][..], &[1, 2, 3][..], &[][..], &[3][..])
    );
    assert!(m.is_voter(&3) && !m.is_learner(&3), "3 votes in C_old");
    net.run(3);
    propose_leave(&mut net, 1).expect("the leader leaves");
    net.run(3);
    for id in [1, 2, 3] {
        assert_eq!(net.node(id).membership(), &members(&[1, 2], &[3]));
    }
    // 3 learns but does not count: without 2, nothing commits.
    net.isolate(2);
    let index = net.propose(1, "x").expect("the leader accepts");
    net.run(3);
    assert_eq!(net.node(3).log().last_index(), index, "the learner has it");
    assert!(net.node(1).log().committed() < index, "but does not count");
    // And never campaigns.
    net.isolate(3);
    for _ in 0..100 {
        net.tick(3);
    }
    assert_eq!(net.node(3).role(), Role::Follower);
}

/// Joint changes are refused with a typed error and nothing changes.
#[test]
fn bad_joint_changes_are_refused() {
    let mut net = Network::new(&[1, 2, 3]);
    assert_eq!(
        propose_joint(&mut net, 2, [Remove(3)], JointLeave::Auto),
        Err(MembershipError::NotLeader { leader: None })
    );
    net.campaign(1);
    while !net.node(1).is_leader() {
        assert!(net.deliver_one(), "1 wins");
    }
    assert_eq!(
        propose_joint(&mut net, 1, [Remove(3)], JointLeave::Auto),
        Err(MembershipError::LeaderNotReady),
        "no entry of its term committed yet"
    );
    net.deliver_all();
    let last = net.node(1).log().last_index();
    let refusals = [
        (
            vec![Remove(1), Remove(2), Remove(3)],
            MembershipError::NoVotersLeft,
        ),
        (vec![], MembershipError::NoChange),
        (vec![AddVoter(2)], MembershipError::NoChange),
    ];
    for (changes, error) in refusals {
        assert_eq!(
            propose_joint(&mut net, 1, changes.clone(), JointLeave::Auto),
            Err(error),
            "{changes:?}"
        );
    }
    assert!(matches!(
        propose_joint(&mut net, 1, [AddVoter(9), Remove(3)], JointLeave::Auto),
        Err(MembershipError::NotCaughtUp { matched: 0, .. })
    ));
    assert_eq!(propose_leave(&mut net, 1), Err(MembershipError::NotJoint));
    assert_eq!(net.node(1).log().last_index(), last, "nothing appended");
    // One in flight at a time.
    propose_joint(&mut net, 1, [Remove(3)], JointLeave::Explicit).expect("accepted");
    assert_eq!(propose_leave(&mut net, 1), Err(MembershipError::Pending));
    assert_eq!(
        net.propose_membership(1, Remove(2)),
        Err(MembershipError::InJoint)
    );
}

/// A restart recovers a joint membership, from the log or from a
/// snapshot taken while joint.
#[test]
fn restart_recovers_a_joint_membership() {
    let mut net = joint_1_2_3_to_1_4_5(paper_config);
    let joint = net.node(1).membership().clone();
    net.restart(2);
    assert_eq!(net.node(2).membership(), &joint);
    net.snapshot_and_compact(4);
    assert_eq!(
        net.snapshot(4).map(|s| s.membership.clone()),
        Some(joint.clone())
    );
    net.restart(4);
    assert_eq!(net.node(4).membership(), &joint);
    propose_leave(&mut net, 1).expect("the leader leaves");
    net.run(3);
    assert_eq!(net.node(4).membership(), &members(&[1, 4, 5], &[]));
}

/// Memberships, simple and joint, round-trip through serde in a
/// configuration entry, as storage would write it, both in a
/// self-describing format (JSON) and in a compact one that is not
/// (postcard, which cannot skip fields); and JSON written before joint
/// consensus existed (no joint fields) still reads back.
#[test]
fn memberships_round_trip_through_serde() {
    let joint = members(&[1, 2, 3], &[4])
        .enter_joint([AddVoter(4), AddLearner(3)], JointLeave::Auto)
        .expect("valid");
    for membership in [members(&[1, 2, 3], &[4]), joint] {
        let entry = dsys_consensus::Entry::membership(2, 7, membership);
        let json = serde_json::to_string(&entry).expect("serializes");
        let back: dsys_consensus::Entry<u64> = serde_json::from_str(&json).expect("JSON");
        assert_eq!(back, entry);
        let bytes = postcard::to_allocvec(&entry).expect("serializes");
        let back: dsys_consensus::Entry<u64> = postcard::from_bytes(&bytes).expect("postcard");
        assert_eq!(back, entry);
    }
    let old = r#"{"voters":[1,2,3],"learners":[4]}"#;
    let simple: Membership<u64> = serde_json::from_str(old).expect("the old form");
    assert_eq!(simple, members(&[1, 2, 3], &[4]));
}
