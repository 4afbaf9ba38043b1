//! The properties checked while the cluster runs: Raft's safety
//! properties (Figure 3: election safety, log matching, leader
//! completeness, state machine safety) and the persistence contract (a vote
//! or an acknowledgement leaves only once what it promises is on disk; an
//! entry is on a majority of disks when it is first known committed) after
//! every step and every output, forwarded reads ending by their deadline,
//! and, at the end, the disks, the logs and the clients' history.

use super::{SimEvent, Simulation, Violation};
use crate::entry::{Entry, Index};
use crate::membership::Membership;
use crate::message::{AppendOutcome, Message, MessageBody};
use crate::quorum::{JointMajority, VoteResult};
use crate::raft::{RaftNode, Role};
use crate::storage::{MemStorage, Storage};

/// Whether `storage` holds exactly `entry`, or a snapshot that covers it
/// (snapshots are only of committed state).
pub(super) fn holds(storage: &MemStorage<u64>, entry: &Entry<u64>) -> bool {
    if storage.snapshot().is_some_and(|s| s.index >= entry.index) {
        return true;
    }
    storage.term(entry.index) == Ok(entry.term)
        && storage
            .entries(entry.index, entry.index + 1, u64::MAX)
            .is_ok_and(|stored| stored.first() == Some(entry))
}

impl Simulation {
    /// Election safety, leader completeness and committed entries, after
    /// every step.
    pub(super) fn check_step(&mut self) {
        for slot in 0..self.nodes.len() {
            let id = self.nodes[slot].id;
            let Some(raft) = self.nodes[slot].raft.as_ref() else {
                continue;
            };
            let (role, term) = (raft.role(), raft.term());
            self.record_commits(slot);
            let node = &self.nodes[slot];
            let raft = node.raft.as_ref().expect("checked above");
            let was = node.was_leader;
            if role == Role::Leader {
                let holder = *self.leaders.entry(term).or_insert(id);
                if holder != id {
                    self.violation.get_or_insert(Violation {
                        time: self.time,
                        property: "election safety",
                        detail: format!("nodes {holder} and {id} both lead term {term}"),
                    });
                }
                if was != Some(term) {
                    // Leader completeness (§5.4): the new leader holds
                    // every entry committed in an earlier term. (Not those
                    // committed since in later terms: its votes may have
                    // reached it late.)
                    let earlier = self.chosen.iter().zip(&self.chosen_in);
                    // (Entries it compacted are in its snapshot.)
                    let compacted = raft.log().first_index() - 1;
                    for (chosen, _) in earlier.filter(|(_, known)| **known < term) {
                        if chosen.index >= compacted
                            && raft.log().term(chosen.index) != Ok(chosen.term)
                        {
                            let detail = format!(
                                "node {id} leads term {term} without committed entry {} (term {})",
                                chosen.index, chosen.term
                            );
                            self.violation.get_or_insert(Violation {
                                time: self.time,
                                property: "leader completeness",
                                detail,
                            });
                            break;
                        }
                    }
                    // Its own vote counted: it must be on its disk, or a
                    // restart could vote again in this term (a sole voter
                    // too: it would win this term again).
                    let stored = node.disk.durable.hard_state();
                    if stored.term != term || stored.vote != Some(id) {
                        let detail =
                            format!("node {id} leads term {term} with {stored:?} on its disk");
                        self.violation.get_or_insert(Violation {
                            time: self.time,
                            property: "vote durability",
                            detail,
                        });
                    }
                    let last_index = raft.log().last_index();
                    self.events.push(SimEvent::Elected {
                        time: self.time,
                        node: id,
                        term,
                        last_index,
                    });
                    self.nodes[slot].was_leader = Some(term);
                }
            } else if let Some(led) = was {
                self.events.push(SimEvent::SteppedDown {
                    time: self.time,
                    node: id,
                    term: led,
                });
                self.nodes[slot].was_leader = None;
            }
        }
    }

    /// Entries newly known committed on the node in `slot` join the chosen
    /// log; they must agree with what was chosen before, and an entry
    /// first known committed must be on a majority of disks.
    pub(super) fn record_commits(&mut self, slot: usize) {
        let id = self.nodes[slot].id;
        let Some(raft) = self.nodes[slot].raft.as_ref() else {
            return;
        };
        let commit = raft.log().committed();
        let term = raft.term();
        let seen = self.nodes[slot].seen_commit;
        if commit <= seen {
            return;
        }
        // Entries it compacted are in its snapshot, and were known
        // committed before it was taken.
        let from = (seen + 1).max(raft.log().first_index());
        if from > self.chosen.len() as Index + 1 {
            let detail = format!(
                "node {id}'s log starts at {from}, but only {} entries are known committed",
                self.chosen.len()
            );
            self.fail("snapshot", detail);
            return;
        }
        let entries = match raft.log().slice(from, commit + 1, u64::MAX) {
            Ok(entries) => entries,
            Err(error) => {
                let detail = format!("node {id} cannot read its committed entries: {error}");
                self.fail("snapshot", detail);
                return;
            }
        };
        self.nodes[slot].seen_commit = commit;
        for entry in entries {
            let at = usize::try_from(entry.index - 1).expect("small index");
            if let Some(chosen) = self.chosen.get(at) {
                if *chosen != entry {
                    let detail =
                        format!("node {id} committed {entry:?} where {chosen:?} was committed");
                    self.fail("state machine safety", detail);
                }
            } else if at == self.chosen.len() {
                // Committed by a majority of the voters of the leader's
                // membership then: the one chosen before it, this entry's
                // own if it is a configuration entry, or (an uncommitted
                // one after it) the knowing node's.
                let raft = self.nodes[slot].raft.as_ref().expect("checked above");
                let mut candidates =
                    vec![self.chosen_membership.clone(), raft.membership().clone()];
                if let Some(membership) = entry.as_membership() {
                    candidates.push(membership.clone());
                }
                let majority = candidates.iter().any(|m| self.majority_holds(m, &entry));
                if !majority {
                    let detail = format!(
                        "node {id} knows index {} (term {}) committed while no majority of voters of {candidates:?} hold it on disk",
                        entry.index, entry.term
                    );
                    self.fail("commit durability", detail);
                }
                if let Some(membership) = entry.as_membership() {
                    if membership.is_joint() {
                        self.stats.joint_entered += 1;
                    } else if self.chosen_membership.is_joint() {
                        self.stats.joint_left += 1;
                    }
                    self.chosen_membership = membership.clone();
                }
                self.chosen.push(entry);
                self.chosen_in.push(term);
            } else {
                self.fail(
                    "state machine safety",
                    format!("node {id} committed index {} past a gap", entry.index),
                );
            }
        }
    }

    pub(super) fn check_log_matching(&mut self, id: u64, entries: &[Entry<u64>]) {
        let Some(raft) = self.nodes[Self::slot(id)].raft.as_ref() else {
            return;
        };
        for entry in entries {
            let prev_term = raft.log().term(entry.index - 1).unwrap_or(0);
            let seen = self
                .log_entries
                .entry((entry.index, entry.term))
                .or_insert_with(|| (entry.data.clone(), prev_term));
            if *seen != (entry.data.clone(), prev_term) {
                let detail = format!(
                    "node {id} holds index {} term {} with data {:?} after term {prev_term}; another log has {:?} after term {}",
                    entry.index, entry.term, entry.data, seen.0, seen.1
                );
                self.fail("log matching", detail);
                return;
            }
        }
    }

    /// The persistence contract, seen from the wire: a granted vote leaves
    /// only once that vote is on the voter's disk, an acknowledgement of
    /// entries only once those entries are.
    pub(super) fn check_send(&mut self, slot: usize, message: &Message<u64>) {
        let node = &self.nodes[slot];
        let disk = &node.disk.durable;
        let detail = match &message.body {
            MessageBody::VoteResponse {
                pre_vote: false,
                granted: true,
            } => {
                let stored = disk.hard_state();
                let durable = stored.term > message.term
                    || (stored.term == message.term && stored.vote == Some(message.to));
                (!durable).then(|| {
                    (
                        "vote durability",
                        format!(
                            "node {} granted its vote in term {} to {} with {stored:?} on disk",
                            node.id, message.term, message.to
                        ),
                    )
                })
            }
            MessageBody::AppendResponse(AppendOutcome::Accepted { last_index })
                if *last_index > 0 =>
            {
                let Some(raft) = node.raft.as_ref() else {
                    return;
                };
                if raft.term() != message.term {
                    return;
                }
                if disk.snapshot().is_some_and(|s| s.index >= *last_index) {
                    // Held back until a write landed, and a snapshot
                    // installed meanwhile covers it.
                    return;
                }
                let want = raft.log().term(*last_index);
                let have = disk.term(*last_index);
                (want.is_err() || have != want).then(|| {
                    (
                        "append durability",
                        format!(
                            "node {} acknowledged entries up to {last_index} (term {want:?}) in term {} with term {have:?} there on disk (disk last index {})",
                            node.id,
                            message.term,
                            disk.last_index()
                        ),
                    )
                })
            }
            _ => None,
        };
        if let Some((property, detail)) = detail {
            self.fail(property, detail);
        }
    }

    /// A forwarded read must end within its deadline while its node is up
    /// in the life it was asked in.
    pub(super) fn check_reads_end(&mut self) {
        let overdue = self.gets.iter().find(|(_, get)| {
            get.deadline.is_some_and(|at| at < self.time)
                && self.nodes[Self::slot(get.node)].life == get.life
                && self.nodes[Self::slot(get.node)].raft.is_some()
        });
        if let Some((&read, get)) = overdue {
            let detail = format!(
                "node {}'s forwarded read {read} has neither completed nor failed by its deadline t={}",
                get.node,
                get.deadline.unwrap_or_default()
            );
            self.fail("read liveness", detail);
        }
    }

    pub(super) fn fail(&mut self, property: &'static str, detail: String) {
        self.violation.get_or_insert(Violation {
            time: self.time,
            property,
            detail,
        });
    }

    /// Checks that every committed entry is still on the disks of a
    /// majority of the voters of the last membership chosen (nothing
    /// acknowledged was lost, nothing committed was overwritten). Call it
    /// once the cluster has converged: before, an entry may be committed
    /// by the voters of a newer membership not chosen yet.
    ///
    /// # Errors
    /// A `commit durability` [`Violation`] naming the first entry that is not.
    pub fn check_disks(&self) -> Result<(), Violation> {
        let membership = &self.chosen_membership;
        for entry in &self.chosen {
            if !self.majority_holds(membership, entry) {
                return Err(Violation {
                    time: self.time,
                    property: "commit durability",
                    detail: format!(
                        "committed index {} (term {}) is not on the disks of a majority of {membership:?}",
                        entry.index, entry.term
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether `entry` is on the disks of a majority of `membership`'s
    /// voters: of both sets while joint (Raft §6).
    fn majority_holds(&self, membership: &Membership<u64>, entry: &Entry<u64>) -> bool {
        let quorum = JointMajority::new(
            membership.voters().iter().copied(),
            membership.outgoing_voters().iter().copied(),
        );
        let on_disk: Vec<u64> = self
            .nodes
            .iter()
            .filter(|n| holds(&n.disk.durable, entry))
            .map(|n| n.id)
            .collect();
        quorum.vote_result(|n| Some(on_disk.contains(n))) == VoteResult::Won
    }

    /// Checks the client history for linearizability.
    ///
    /// # Errors
    /// A [`Violation`] describing the offending key's operations.
    pub fn check_history(&self) -> Result<(), Violation> {
        self.history.check().map_err(|violation| Violation {
            time: self.time,
            property: "linearizability",
            detail: violation.to_string(),
        })
    }

    /// Checks log matching across every up node's whole log (the per-step
    /// check sees entries as they are persisted; this one is a backstop).
    ///
    /// # Errors
    /// A [`Violation`] naming the two nodes.
    pub fn check_logs(&self) -> Result<(), Violation> {
        let up: Vec<&RaftNode<MemStorage<u64>>> =
            self.nodes.iter().filter_map(|n| n.raft.as_ref()).collect();
        for (i, a) in up.iter().enumerate() {
            for b in &up[i + 1..] {
                let last = a.log().last_index().min(b.log().last_index());
                // Find the highest index where terms agree; everything
                // before it must be identical.
                let agree = (1..=last)
                    .rev()
                    .find(|&ix| a.log().term(ix) == b.log().term(ix) && a.log().term(ix).is_ok());
                if let Some(agree) = agree {
                    // Below both logs' start, snapshots of committed state.
                    let from = a.log().first_index().max(b.log().first_index());
                    let xs = a.log().slice(from, agree + 1, u64::MAX);
                    let ys = b.log().slice(from, agree + 1, u64::MAX);
                    if xs != ys {
                        return Err(Violation {
                            time: self.time,
                            property: "log matching",
                            detail: format!(
                                "nodes {} and {} agree on the term at {agree} but differ before it",
                                a.id(),
                                b.id()
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
