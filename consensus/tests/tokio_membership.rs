//! Membership changes and leadership transfer through the tokio driver's
//! [`Handle`] (thesis §4 and §3.10), in process over an in-memory
//! transport, while clients propose all along: a new node is added as a
//! learner and promoted, a voter is removed, leadership is handed to the
//! new node, and a joint change (thesis §4.3) adds a voter and demotes
//! another at once. Each call resolves once its change is applied; no
//! acknowledged proposal is lost, and every member ends with the same
//! commands in the same order.

#[path = "tokio_common/mem.rs"]
mod mem;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dsys_consensus::tokio::{Handle, MembershipChangeError, TransferLeaderError};
use dsys_consensus::{
    Index, JointLeave, MemStorage, Membership, MembershipChange, MembershipError, Role,
};
use mem::{Hub, eventually, leader, position, propose, start};
use tokio::time::{sleep, timeout};

type Handles = Arc<Mutex<Vec<Handle<u64, ()>>>>;

/// Runs a membership change through whichever node leads, retrying while
/// the leader is busy, not ready, or waiting for a learner to catch up.
async fn change<F, Fut>(handles: &Handles, what: &str, op: F) -> Index
where
    F: Fn(Handle<u64, ()>) -> Fut,
    Fut: Future<Output = Result<Index, MembershipChangeError<u64>>>,
{
    let mut target = 0usize;
    for _ in 0..2_000 {
        let handle = {
            let handles = handles.lock().expect("ok");
            handles[target % handles.len()].clone()
        };
        match timeout(Duration::from_secs(5), op(handle)).await {
            Ok(Ok(index)) => return index,
            Ok(Err(MembershipChangeError::NotLeader { leader: Some(l) })) => {
                target = position(handles, l).unwrap_or(target + 1);
            }
            Ok(Err(
                MembershipChangeError::InProgress
                | MembershipChangeError::LeaderNotReady
                | MembershipChangeError::Lost { .. }
                | MembershipChangeError::Refused(MembershipError::NotCaughtUp { .. }),
            )) => sleep(Duration::from_millis(10)).await,
            Err(_) | Ok(Err(MembershipChangeError::NotLeader { leader: None })) => {
                target += 1;
                sleep(Duration::from_millis(10)).await;
            }
            Ok(Err(e)) => panic!("{what}: {e}"),
        }
    }
    panic!("{what}: not done after 2000 attempts");
}

/// Logs the step, once the clients have had `count` more proposals
/// acknowledged since the last one: every change runs among proposals.
async fn step(what: &str, acks: &AtomicUsize, count: usize) {
    let from = acks.load(Ordering::SeqCst);
    eventually(20, "clients make progress", || {
        acks.load(Ordering::SeqCst) >= from + count
    })
    .await;
    eprintln!("-- {what} ({} acknowledged)", acks.load(Ordering::SeqCst));
}

fn leader_id(handles: &Handles) -> Option<u64> {
    let handles = handles.lock().expect("ok");
    handles
        .iter()
        .map(Handle::status)
        .find(|s| s.role == Role::Leader)
        .map(|s| s.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_change_and_leadership_moves_while_clients_propose() {
    let hub = Arc::new(Hub::default());
    let voters = vec![1u64, 2, 3];
    let mut nodes: Vec<_> = voters
        .iter()
        .map(|&id| start(&hub, id, MemStorage::new(voters.clone()), 40))
        .collect();
    // Nodes 4 and 5 start outside the cluster; they learn the membership
    // from the leader once added.
    nodes.push(start(&hub, 4, MemStorage::new(vec![]), 40));
    nodes.push(start(&hub, 5, MemStorage::new(vec![]), 40));
    let first = nodes[leader(&nodes[..3]).await].id;
    let handles: Handles = Arc::new(Mutex::new(nodes.iter().map(|n| n.handle.clone()).collect()));

    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..3 {
        let (handles, stop, acks) = (Arc::clone(&handles), Arc::clone(&stop), Arc::clone(&acks));
        clients.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                acked.push(propose(&handles, &format!("c{c}-{i}")).await);
                acks.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
            acked
        }));
    }

    // A learner joins, catches up and is promoted.
    step("add learner 4", &acks, 10).await;
    change(&handles, "add learner 4", |h| async move {
        h.add_learner(4).await
    })
    .await;
    step("promote 4", &acks, 10).await;
    change(&handles, "promote 4", |h| async move { h.promote(4).await }).await;
    // A voter other than the leader is removed.
    let removed = [1u64, 2, 3]
        .into_iter()
        .find(|id| Some(*id) != leader_id(&handles))
        .expect("a follower");
    step("remove", &acks, 10).await;
    change(&handles, "remove", move |h| async move {
        h.remove(removed).await
    })
    .await;
    // Leadership goes to the new node.
    step("transfer", &acks, 10).await;
    let mut transferred = false;
    for _ in 0..50 {
        let Some(l) = leader_id(&handles) else {
            sleep(Duration::from_millis(20)).await;
            continue;
        };
        if l == 4 {
            transferred = true;
            break;
        }
        let at = position(&handles, l).expect("known");
        let handle = handles.lock().expect("ok")[at].clone();
        match handle.transfer_leader(4).await {
            Ok(()) => {
                transferred = true;
                break;
            }
            Err(TransferLeaderError::Failed { .. } | TransferLeaderError::NotLeader { .. }) => {
                sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("transfer: {e}"),
        }
    }
    assert!(transferred, "node 4 leads");
    eventually(10, "node 4 leads", || {
        nodes[3].handle.status().role == Role::Leader
    })
    .await;
    // A joint change: node 5 joins as a voter while an old voter is
    // demoted to learner; it resolves once the joint configuration is left.
    step("add learner 5", &acks, 10).await;
    change(&handles, "add learner 5", |h| async move {
        h.add_learner(5).await
    })
    .await;
    let demoted = [1u64, 2, 3]
        .into_iter()
        .find(|id| *id != removed)
        .expect("an old voter left");
    let kept = [1u64, 2, 3]
        .into_iter()
        .find(|id| *id != removed && *id != demoted)
        .expect("another");
    step("joint", &acks, 10).await;
    change(&handles, "joint", move |h| async move {
        h.change_joint(
            vec![
                MembershipChange::AddVoter(5),
                MembershipChange::AddLearner(demoted),
            ],
            JointLeave::Auto,
        )
        .await
    })
    .await;

    step("stop", &acks, 10).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked: Vec<Bytes> = Vec::new();
    for c in clients {
        acked.extend(c.await.expect("client"));
    }
    assert!(acked.len() > 10, "clients made progress: {}", acked.len());
    let end = propose(&handles, "end").await;

    let mut want_voters = vec![4u64, 5, kept];
    want_voters.sort_unstable();
    let want = Membership::new(want_voters, [demoted]);
    let members: Vec<_> = nodes.iter().filter(|n| n.id != removed).collect();
    let reference = members[0].record.clone();
    for n in &members {
        let record = n.record.clone();
        eventually(20, "every member applied the end marker", || {
            record.commands().last() == Some(&end) && record.membership().as_ref() == Some(&want)
        })
        .await;
        assert_eq!(record.commands(), reference.commands(), "node {}", n.id);
        let commands = record.commands();
        for a in &acked {
            let count = commands.iter().filter(|c| *c == a).count();
            assert_eq!(count, 1, "{a:?} on node {}", n.id);
        }
    }
    let l = leader_id(&handles).expect("a leader");
    assert_ne!(l, removed);
    assert_ne!(first, 0);
    for n in &nodes {
        n.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_off_the_leader_are_refused_with_a_hint() {
    let hub = Arc::new(Hub::default());
    let voters = vec![1u64, 2, 3];
    let nodes: Vec<_> = voters
        .iter()
        .map(|&id| start(&hub, id, MemStorage::new(voters.clone()), 0))
        .collect();
    let l = leader(&nodes).await;
    let f = (l + 1) % 3;
    let leader_id = nodes[l].id;
    eventually(10, "the follower knows the leader", || {
        nodes[f].handle.status().leader == Some(leader_id)
    })
    .await;
    assert_eq!(
        nodes[f].handle.add_learner(9).await,
        Err(MembershipChangeError::NotLeader {
            leader: Some(leader_id)
        })
    );
    assert_eq!(
        nodes[f].handle.transfer_leader(nodes[f].id).await,
        Err(TransferLeaderError::NotLeader {
            leader: Some(leader_id)
        })
    );
    assert_eq!(
        nodes[l].handle.transfer_leader(9).await,
        Err(TransferLeaderError::NotAVoter)
    );
    // A voter cannot be demoted in one single-server step.
    eventually(10, "the leader committed an entry of its term", || {
        nodes[l].handle.status().applied > 0
    })
    .await;
    let refused = loop {
        match nodes[l].handle.remove(9).await {
            Err(MembershipChangeError::LeaderNotReady) => sleep(Duration::from_millis(10)).await,
            other => break other,
        }
    };
    assert_eq!(
        refused,
        Err(MembershipChangeError::Refused(MembershipError::NoChange))
    );
    for n in &nodes {
        n.handle.shutdown().await;
    }
}
