//! The story, continued: sections 6-9 change who is in the cluster
//! (thesis chapter 4) and restore a follower by snapshot (section 7).
//!
//! 6. Three nodes become five: two new nodes join as learners, a
//!    promotion that comes too early is refused, and both become voters
//!    once caught up.
//! 7. The leader removes itself: it leads until its removal commits, then
//!    steps down, and the four others elect a new leader.
//! 8. A follower is cut off while the leader snapshots its metadata map
//!    and compacts its log; back, it needs compacted entries, so it is sent
//!    the snapshot in chunks, restores it and catches up by log.
//! 9. The whole part in one table.
//!
//! Unlike sections 1-3 these drive `RaftNode`s directly, each inside the
//! application a service would write (`application.rs`: persisting,
//! applying, snapshots), over a network that delivers every message
//! [`DELAY`] units after it is sent unless a link is cut
//! (`deployment.rs`). `members.rs` prints what they show.

use dsys_consensus::MembershipChange::{AddLearner, AddVoter, Remove};
use dsys_consensus::{Index, MembershipError, Role, Storage, Term};

use super::TICK;
use super::application::{Act, CHUNK_SIZE, CHUNKS_IN_FLIGHT};
use super::deployment::{DELAY, Deployment, Happened};
use super::members::{
    Phase, and_list, campaigning, describe, majority, print_members, print_phases, show_ids,
};
use super::tables::ticks;
use crate::report::{self, Res, Table, check, check_eq};

/// The founding voters.
const FOUNDERS: [u64; 3] = [1, 2, 3];

/// The nodes that join.
const JOINING: [u64; 2] = [4, 5];

/// Runs sections 6-9.
pub(super) fn run() -> Res {
    let mut deployment = Deployment::new(&FOUNDERS)?;
    let mut phases = Vec::new();
    three_become_five(&mut deployment, &mut phases)?;
    let removed = leader_leaves(&mut deployment, &mut phases)?;
    let transfer = restored_by_snapshot(&mut deployment, &mut phases, removed)?;
    summary(&deployment, &phases, removed, &transfer)
}

/// Leader `leader` has committed entry `index`.
fn committed(deployment: &Deployment, leader: u64, index: Index) -> bool {
    deployment
        .node(leader)
        .is_ok_and(|raft| raft.log().committed() >= index)
}

/// Leader `leader`'s match index for `peer`.
fn matched(deployment: &Deployment, leader: u64, peer: u64) -> Index {
    deployment
        .node(leader)
        .ok()
        .and_then(|raft| raft.progress(&peer))
        .map_or(0, |progress| progress.matched())
}

// --- 6. Three nodes become five -----------------------------------------------------

fn three_become_five(deployment: &mut Deployment, phases: &mut Vec<Phase>) -> Res {
    report::section("6. Three nodes become five: learners first, then voters (thesis 4.2.1)");
    deployment.run_until("the first election", |d| d.leader().is_some())?;
    let leader = deployment.the_leader()?;
    let elected_at = deployment.time();
    deployment.take_record();
    deployment.settle("the no-op to be applied")?;
    let writes = [(1, 1), (2, 2), (3, 3), (4, 1), (5, 2), (6, 3)];
    for (partition, broker) in writes {
        deployment.put(leader, partition, broker)?;
    }
    deployment.settle("the first writes to be applied")?;
    let term = deployment.node(leader)?.term();
    check_eq("the first leader's term", &term, &1)?;
    report::note(&format!(
        "A new cluster of the same metadata service. From here on the tour drives each RaftNode \
         itself, inside the application a service writes around it: it makes each Persist \
         durable, applies committed commands, and takes, sends and restores snapshots. Every \
         message takes {} ticks. Nodes {} start as the voters; node {leader} is elected for \
         term {term} at t={}, and with 3 voters a majority is {}. It commits six writes:",
        ticks(DELAY),
        and_list(&FOUNDERS),
        ticks(elected_at),
        majority(&FOUNDERS),
    ));
    print_members(deployment)?;
    phases.push(Phase::now("3 voters", deployment)?);

    // Two nodes start with empty storage and an empty membership: they
    // wait to be added, and cannot campaign (thesis 4.2.1).
    for id in JOINING {
        deployment.start_joining(id)?;
    }
    let [first, second] = JOINING;
    let mut steps =
        Table::new(&["t", "leader is asked", "answer", "voters", "learners"]).numeric(&[0]);
    let mut log_step = |deployment: &Deployment, asked: String, answer: String| -> Res {
        let membership = deployment.node(leader)?.membership();
        steps.row([
            ticks(deployment.time()),
            asked,
            answer,
            show_ids(membership.voters()),
            show_ids(membership.learners()),
        ]);
        Ok(())
    };

    let add_first = deployment.change(leader, AddLearner(first))??;
    log_step(
        deployment,
        format!("AddLearner({first})"),
        format!("accepted at index {}", add_first.index),
    )?;
    let busy = deployment.change(leader, AddLearner(second))?;
    check_eq(
        "a second change while one is uncommitted",
        &busy,
        &Err(MembershipError::Pending),
    )?;
    log_step(
        deployment,
        format!("AddLearner({second})"),
        "refused: Pending (one change at a time)".to_owned(),
    )?;
    deployment.run_until("the first learner's entry to commit", |d| {
        committed(d, leader, add_first.index)
    })?;
    let add_second = deployment.change(leader, AddLearner(second))??;
    log_step(
        deployment,
        format!("AddLearner({second})"),
        format!("accepted at index {}", add_second.index),
    )?;
    deployment.run_until("the second learner's entry to commit", |d| {
        committed(d, leader, add_second.index)
    })?;

    // Committed by voters 1-3 alone; the learner has not caught up yet.
    let early = deployment.change(leader, AddVoter(second))?;
    let Err(MembershipError::NotCaughtUp {
        matched: had,
        last_index,
    }) = early
    else {
        return Err(format!("promoting node {second} at once: {early:?}").into());
    };
    check(
        "the refused learner holds under 90% of the log",
        had * 10 < last_index * 9,
    )?;
    log_step(
        deployment,
        format!("AddVoter({second})"),
        format!("refused: NotCaughtUp ({had} of {last_index})"),
    )?;
    let refused_at = deployment.time();

    deployment.run_until("the learners to catch up", |d| {
        JOINING
            .iter()
            .all(|&id| matched(d, leader, id) == d.node(leader).map_or(0, |r| r.log().last_index()))
    })?;
    let caught_up_at = deployment.time();
    for id in JOINING {
        let promoted = deployment.change(leader, AddVoter(id))??;
        log_step(
            deployment,
            format!("AddVoter({id})"),
            format!("accepted at index {}", promoted.index),
        )?;
        deployment.run_until("the promotion to commit", |d| {
            committed(d, leader, promoted.index)
        })?;
    }
    deployment.settle("the promotions to be applied everywhere")?;
    for (_, node, happened) in deployment.take_record() {
        if let Happened::Role(role, _) = happened {
            check(
                &format!("node {node} does not campaign while {leader} leads"),
                !campaigning(role),
            )?;
        }
    }
    let membership = deployment.node(leader)?.membership().clone();
    check_eq(
        "the voters after the promotions",
        &membership.voters(),
        &&[1, 2, 3, 4, 5][..],
    )?;
    for id in deployment.ids() {
        check_eq(
            &format!("node {id}'s membership"),
            deployment.node(id)?.membership(),
            &membership,
        )?;
        check_eq(
            &format!("node {id}'s metadata"),
            &deployment.app(id)?.metadata,
            &writes.into_iter().collect(),
        )?;
    }

    report::note(&format!(
        "Nodes {first} and {second} start with empty storage and an empty membership, so they \
         wait and never campaign. Each membership change is one configuration entry, in force on \
         a node as soon as it is appended (thesis 4.1), and the leader takes one at a time. A \
         learner gets the log but does not vote; a voter must hold 90% of the leader's log \
         first (etcd's rule), so that a new voter cannot stall commits while it catches up:"
    ));
    steps.print();
    report::note(&format!(
        "At t={} the leader had committed node {second}'s entry with voters {} alone, while \
         node {second} had answered nothing yet: the leader's match index for it was {had} of \
         {last_index}. Made a voter then, it would have been one of four voters with an empty \
         log, and a majority of three would have needed it as soon as one more node failed: no \
         write could commit until it caught up (thesis 4.2.1). Both learners held the whole log \
         {} ticks later, and each promotion then committed like any entry. Five voters, a \
         majority of {}:",
        ticks(refused_at),
        and_list(&FOUNDERS),
        ticks(caught_up_at - refused_at),
        majority(membership.voters()),
    ));
    print_members(deployment)?;
    phases.push(Phase::now("5 voters", deployment)?);
    report::takeaway(
        "Join as a learner, catch up, then vote: the cluster grows one server at a time.",
    );
    Ok(())
}

// --- 7. The leader leaves -----------------------------------------------------------

fn leader_leaves(deployment: &mut Deployment, phases: &mut Vec<Phase>) -> Res<u64> {
    report::section("7. The leader removes itself (thesis 4.2.2)");
    let old = deployment.the_leader()?;
    let old_term = deployment.node(old)?.term();
    deployment.take_record();
    let removal = deployment.change(old, Remove(old))??;
    let proposed_at = deployment.time();
    let raft = deployment.node(old)?;
    check(
        "the leader leads on after proposing its removal",
        raft.is_leader(),
    )?;
    check(
        "its removal is in force on it at once",
        !raft.membership().contains(&old),
    )?;
    let voters = raft.membership().voters().to_vec();

    deployment.run_until("the old leader to step down", |d| {
        d.node(old).is_ok_and(|raft| !raft.is_leader())
    })?;
    let stepped_down_at = deployment.time();
    check(
        "it stepped down once its removal committed",
        deployment.node(old)?.log().committed() >= removal.index,
    )?;
    deployment.run_until("a new leader", |d| d.leader().is_some())?;
    let leader = deployment.the_leader()?;
    let elected_at = deployment.time();
    let term = deployment.node(leader)?.term();
    check(
        "the new leader is one of the four",
        voters.contains(&leader),
    )?;
    check_eq("the new term", &term, &(old_term + 1))?;

    let writes = [(2, 4), (7, 5)];
    let first_write = deployment.put(leader, writes[0].0, writes[0].1)?;
    let last_write = deployment.put(leader, writes[1].0, writes[1].1)?;
    deployment.settle("the new leader's writes to be applied")?;
    let noop = deployment
        .node(leader)?
        .log()
        .slice(first_write - 1, first_write, u64::MAX)?;
    check(
        "the new leader's first entry is its no-op",
        noop.iter().all(|e| e.term == term && e.data.is_empty()) && noop.len() == 1,
    )?;

    let mut table = Table::new(&["t", "node", "what happens"]).numeric(&[0]);
    table.row([
        ticks(proposed_at),
        format!("node {old}"),
        format!(
            "proposes Remove({old}) at index {}; leads on, without counting itself",
            removal.index
        ),
    ]);
    for (time, node, happened) in deployment.take_record() {
        let shown = match &happened {
            Happened::Role(role, _) => {
                check(
                    &format!("node {old} never campaigns once removed"),
                    node != old || !campaigning(*role),
                )?;
                node == old || campaigning(*role)
            }
            Happened::Act(Act::MembershipApplied { index, .. }) => {
                node == old && *index == removal.index
            }
            Happened::Act(_) => false,
        };
        if shown {
            table.row([ticks(time), format!("node {node}"), describe(&happened)]);
        }
    }
    table.print();
    report::note(&format!(
        "The configuration entry at {} is in force on node {old} from the moment it appends it: \
         it leads a cluster it is not part of, replicating to the four voters {} and counting \
         only them, so the removal commits once {} of them hold it. It then sends the commit \
         index once more and steps down, at t={} (+{} ticks). Nobody hears heartbeats any more; \
         the first timer to run out wins term {term} for node {leader} at t={} (+{} ticks), and \
         after its no-op at {} its writes commit at {first_write}-{} with {} of 4 votes. Node \
         {old} stays up, hears nothing and never campaigns: it is not a voter in the membership \
         its log holds. (A service that cannot wait an election timeout hands leadership over \
         first, with transfer_leadership (thesis 3.10), and then removes the old leader as a \
         follower.)",
        removal.index,
        and_list(&voters),
        majority(&voters),
        ticks(stepped_down_at),
        ticks(stepped_down_at - proposed_at),
        ticks(elected_at),
        ticks(elected_at - stepped_down_at),
        first_write - 1,
        last_write,
        majority(&voters),
    ));
    print_members(deployment)?;
    phases.push(Phase::now("leader removed", deployment)?);
    report::takeaway(
        "A leader can remove itself: it commits its removal, steps down, and the rest elect anew.",
    );
    Ok(old)
}

// --- 8. Snapshot ---------------------------------------------------------------------

/// The snapshot section 8 sends: its index, size in bytes and chunks.
struct Transfer {
    index: Index,
    size: usize,
    chunks: u64,
}

fn restored_by_snapshot(
    deployment: &mut Deployment,
    phases: &mut Vec<Phase>,
    removed: u64,
) -> Res<Transfer> {
    report::section("8. A follower behind a compaction is restored by snapshot (section 7)");
    let leader = deployment.the_leader()?;
    // The last node to join, unless it leads.
    let follower = deployment
        .node(leader)?
        .membership()
        .voters()
        .iter()
        .rev()
        .copied()
        .find(|&id| id != leader)
        .ok_or("no follower")?;
    let others: Vec<u64> = deployment
        .node(leader)?
        .membership()
        .voters()
        .iter()
        .copied()
        .filter(|&id| id != leader && id != follower)
        .collect();
    deployment.isolate(follower);
    let cut_at = deployment.time();
    let behind = deployment.node(follower)?.log().last_index();
    for (partition, broker) in [(1, 5), (3, 4), (5, 1), (6, 4)] {
        deployment.put(leader, partition, broker)?;
    }
    deployment.settle("the writes to be applied by the connected nodes")?;
    let (meta, size) = deployment.snapshot_and_compact(leader)?;
    let first = deployment.node(leader)?.log().first_index();
    check_eq(
        "the leader's first index after compaction",
        &first,
        &(meta.index + 1),
    )?;
    check("the follower needs compacted entries", behind < meta.index)?;
    let after = [(2, 3), (4, 5)];
    for (partition, broker) in after {
        deployment.put(leader, partition, broker)?;
    }
    deployment.settle("the writes after the snapshot to be applied")?;
    let last = deployment.node(leader)?.log().last_index();
    report::note(&format!(
        "At t={} node {follower} is cut off, its log ending at {behind}. Node {leader} commits \
         four writes with nodes {} ({} of the 4 voters with itself); then its application takes \
         a snapshot: it asks snapshot_meta({}) for the index, term and membership (voters {}), \
         writes the metadata map ({size} bytes, one line per partition) durably, records it \
         with set_snapshot, and compacts to compaction_limit() = {}. Its log now starts at \
         {first}. Two more writes follow, at {}-{last}.",
        ticks(cut_at),
        and_list(&others),
        others.len() + 1,
        meta.index,
        and_list(meta.membership.voters()),
        meta.index,
        last - 1,
    ));

    deployment.heal();
    let healed_at = deployment.time();
    deployment.take_record();
    deployment.run_until("the follower to catch up", |d| {
        d.node(follower)
            .is_ok_and(|raft| raft.log().applied() == last)
    })?;
    let caught_up_at = deployment.time();
    deployment.settle("everyone to converge")?;
    let mut table = Table::new(&["t", "node", "what its application does"]).numeric(&[0]);
    let (mut chunks, mut staged, mut restored) = (0, 0, None);
    for (time, node, happened) in deployment.take_record() {
        match &happened {
            Happened::Act(Act::ChunkRead { index, .. }) => {
                check_eq("the snapshot sent", index, &meta.index)?;
                chunks += 1;
            }
            Happened::Act(Act::ChunkStaged { len, .. }) => staged += len,
            Happened::Act(Act::Restored { index, .. }) => restored = Some(*index),
            Happened::Act(Act::SendEnded { aborted, .. }) => {
                check_eq("how the transfer ended", aborted, &None)?;
            }
            Happened::Act(Act::MembershipApplied { .. }) | Happened::Role(..) => continue,
        }
        table.row([ticks(time), format!("node {node}"), describe(&happened)]);
    }
    check_eq("snapshot restored", &restored, &Some(meta.index))?;
    check_eq("bytes staged", &staged, &u64::try_from(size)?)?;
    check_eq(
        "chunks read",
        &chunks,
        &u64::try_from(size)?.div_ceil(CHUNK_SIZE),
    )?;
    report::note(&format!(
        "At t={} the link heals. The leader's next AppendEntries for node {follower} would start \
         at {}, which it no longer has, so it sends the snapshot instead: its application reads \
         {CHUNK_SIZE}-byte chunks (Output::ReadSnapshot, at most {CHUNKS_IN_FLIGHT} in flight), \
         the follower's application stages them (Output::SnapshotChunk), and on \
         Output::RestoreSnapshot rebuilds its map, records the snapshot durably (apply_snapshot) \
         and calls on_snapshot_restored:",
        ticks(healed_at),
        behind + 1,
    ));
    table.print();

    let reference = deployment.node(leader)?;
    let entries = reference.log().slice(first, last + 1, u64::MAX)?;
    let members = reference.membership().clone();
    for id in members.voters().iter().copied() {
        let raft = deployment.node(id)?;
        check_eq(
            &format!("node {id}'s log after {}", meta.index),
            &raft.log().slice(first, last + 1, u64::MAX)?,
            &entries,
        )?;
        check_eq(
            &format!("node {id}'s membership"),
            raft.membership(),
            &members,
        )?;
        check_eq(
            &format!("node {id}'s metadata"),
            &deployment.app(id)?.metadata,
            &deployment.app(leader)?.metadata,
        )?;
    }
    let restored = deployment.node(follower)?;
    check_eq(
        "the follower's stored snapshot",
        &restored.storage().snapshot().map(|s| s.index),
        &Some(meta.index),
    )?;
    let (sender, receiver) = (reference.counters(), restored.counters());
    check_eq(
        "snapshot transfers started",
        &sender.snapshot_sends_started,
        &1,
    )?;
    check_eq("snapshot transfers completed", &sender.snapshots_sent, &1)?;
    check_eq("snapshots installed", &receiver.snapshots_installed, &1)?;
    check(
        "the removed node was left alone",
        deployment.node(removed)?.log().last_index() < meta.index,
    )?;
    report::note(&format!(
        "Indexes {}-{last} then come by AppendEntries, as usual: node {follower} has applied \
         everything by t={} (+{} ticks after the heal). Its log starts at {first} like the \
         leader's, entry by entry the same, and its map, rebuilt from the snapshot rather than \
         replayed, equals every other voter's. Nodes {} kept their whole logs: each application \
         decides for itself when to compact:",
        meta.index + 1,
        ticks(caught_up_at),
        ticks(caught_up_at - healed_at),
        and_list(&others),
    ));
    print_members(deployment)?;
    phases.push(Phase::now("snapshot restored", deployment)?);
    report::takeaway(
        "Compaction costs a lagging follower one snapshot transfer; the application moves bytes.",
    );
    Ok(Transfer {
        index: meta.index,
        size,
        chunks,
    })
}

// --- 9. Summary ----------------------------------------------------------------------

fn summary(deployment: &Deployment, phases: &[Phase], removed: u64, transfer: &Transfer) -> Res {
    report::section("9. The membership changes in one table");
    print_phases(phases);
    let leaders: Vec<(Term, u64)> = deployment.leaders.iter().map(|(&t, &n)| (t, n)).collect();
    check_eq("terms with a leader", &leaders.len(), &2)?;
    check(
        "the removed node led only the first term",
        leaders
            .iter()
            .all(|&(term, node)| (node == removed) == (term == 1)),
    )?;
    let shown: Vec<String> = leaders
        .iter()
        .map(|(term, node)| format!("node {node} led term {term}"))
        .collect();
    check_eq("membership changes accepted", &deployment.changes.0, &5)?;
    check_eq("membership changes refused", &deployment.changes.1, &2)?;
    report::note(&format!(
        "Two terms: {}, one leader each. Five membership changes committed (two learners added, \
         two promoted, one leader removed) and two were refused without changing anything. The \
         snapshot at index {} ({} bytes) crossed in {} chunks of at most {CHUNK_SIZE} bytes, and \
         {} messages were lost to the cut link. Everything ran on simulated time ({} units a \
         tick): the numbers are the same on every run.",
        shown.join(" and "),
        transfer.index,
        transfer.size,
        transfer.chunks,
        deployment.lost,
        TICK,
    ));
    check(
        "the removed node is not a member",
        !deployment
            .node(deployment.the_leader()?)?
            .membership()
            .contains(&removed),
    )?;
    check(
        "no node campaigns now",
        deployment.ids().iter().all(|&id| {
            deployment
                .node(id)
                .is_ok_and(|raft| matches!(raft.role(), Role::Leader | Role::Follower))
        }),
    )?;
    report::takeaway(
        "Membership is log entries: grow, shrink and replace the leader without stopping writes.",
    );
    Ok(())
}
