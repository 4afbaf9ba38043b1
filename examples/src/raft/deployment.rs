//! Machinery: the deployment sections 6-9 drive. Each node runs inside its
//! [`Application`]; messages take [`DELAY`] units, links can be cut, and
//! time advances one unit at a time, each node ticking once every
//! [`TICK`] units (out of phase, as in the simulator of sections 1-3).
//! Role changes and what the applications did are recorded for the story,
//! and one leader per term (election safety) is checked on the way.

use std::collections::{BTreeMap, BTreeSet};

use dsys_consensus::{
    Index, MembershipChange, MembershipError, Message, ProposalId, Role, SnapshotMeta, Term,
};

use super::TICK;
use super::application::{Act, Application, Node, command};
use super::tables::ticks;
use crate::report::Res;

/// Units a message takes from sender to receiver.
pub(super) const DELAY: u64 = 3;

/// Longest any step of the story may take, in units (200 ticks).
const PATIENCE: u64 = 2_000;

/// What happened, when, on which node.
pub(super) enum Happened {
    /// The node took this role in this term.
    Role(Role, Term),
    /// Its application did this.
    Act(Act),
}

/// Nodes, their applications, the network between them, and a record of
/// what happened.
pub(super) struct Deployment {
    time: u64,
    apps: BTreeMap<u64, Application>,
    /// Messages in flight by (due time, send order).
    in_flight: BTreeMap<(u64, u64), Message<u64>>,
    sent: u64,
    /// Messages lost to a cut link.
    pub(super) lost: u64,
    /// Membership changes accepted and refused.
    pub(super) changes: (u64, u64),
    isolated: BTreeSet<u64>,
    seen: BTreeMap<u64, (Role, Term)>,
    /// Who led each term (election safety: one leader per term).
    pub(super) leaders: BTreeMap<Term, u64>,
    record: Vec<(u64, u64, Happened)>,
}

impl Deployment {
    /// Nodes `voters`, each bootstrapped with the others as voters.
    pub(super) fn new(voters: &[u64]) -> Res<Self> {
        let mut deployment = Self {
            time: 0,
            apps: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            sent: 0,
            lost: 0,
            changes: (0, 0),
            isolated: BTreeSet::new(),
            seen: BTreeMap::new(),
            leaders: BTreeMap::new(),
            record: Vec::new(),
        };
        for &id in voters {
            deployment.apps.insert(id, Application::start(id, voters)?);
        }
        deployment.observe()?;
        Ok(deployment)
    }

    /// Starts node `id` with an empty membership: it waits for a leader to
    /// add it, and hears nothing until then.
    pub(super) fn start_joining(&mut self, id: u64) -> Res {
        self.apps.insert(id, Application::start(id, &[])?);
        self.observe()
    }

    pub(super) fn time(&self) -> u64 {
        self.time
    }

    pub(super) fn ids(&self) -> Vec<u64> {
        self.apps.keys().copied().collect()
    }

    pub(super) fn app(&self, id: u64) -> Res<&Application> {
        Ok(self.apps.get(&id).ok_or_else(|| format!("no node {id}"))?)
    }

    pub(super) fn node(&self, id: u64) -> Res<&Node> {
        Ok(&self.app(id)?.raft)
    }

    /// The node that leads the highest term, if any.
    pub(super) fn leader(&self) -> Option<u64> {
        self.apps
            .values()
            .map(|app| &app.raft)
            .filter(|raft| raft.is_leader())
            .max_by_key(|raft| raft.term())
            .map(|raft| *raft.id())
    }

    /// [`leader`](Self::leader), or an error.
    pub(super) fn the_leader(&self) -> Res<u64> {
        Ok(self.leader().ok_or("no leader")?)
    }

    /// Client writes `P<partition>=B<broker>` through `leader`; returns
    /// the entry's index.
    pub(super) fn put(&mut self, leader: u64, partition: u64, broker: u64) -> Res<Index> {
        let proposal = self
            .app_mut(leader)?
            .raft
            .propose(command(partition, broker))?;
        self.drain(leader)?;
        Ok(proposal.index)
    }

    /// Asks `leader` to change the membership: the node's answer, which
    /// the story may expect to be a refusal.
    pub(super) fn change(
        &mut self,
        leader: u64,
        change: MembershipChange<u64>,
    ) -> Res<Result<ProposalId, MembershipError<u64>>> {
        let result = self.app_mut(leader)?.raft.propose_membership(change);
        self.drain(leader)?;
        if result.is_ok() {
            self.changes.0 += 1;
        } else {
            self.changes.1 += 1;
        }
        Ok(result)
    }

    /// The application of node `id` snapshots its state machine and
    /// compacts its log.
    pub(super) fn snapshot_and_compact(&mut self, id: u64) -> Res<(SnapshotMeta<u64>, usize)> {
        self.app_mut(id)?.snapshot_and_compact()
    }

    /// Cuts every link of `id`.
    pub(super) fn isolate(&mut self, id: u64) {
        self.isolated.insert(id);
    }

    /// Restores every link.
    pub(super) fn heal(&mut self) {
        self.isolated.clear();
    }

    /// What happened since the last call: (time, node, what).
    pub(super) fn take_record(&mut self) -> Vec<(u64, u64, Happened)> {
        std::mem::take(&mut self.record)
    }

    /// Advances time by one unit: delivers the messages due (losing those
    /// on a cut link), then ticks the nodes whose tick falls now.
    pub(super) fn step(&mut self) -> Res {
        self.time += 1;
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.time {
                break;
            }
            let message = entry.remove();
            let to = message.to;
            if self.isolated.contains(&message.from) || self.isolated.contains(&to) {
                self.lost += 1;
                continue;
            }
            let Some(app) = self.apps.get_mut(&to) else {
                self.lost += 1;
                continue;
            };
            app.raft.handle_message(message);
            self.drain(to)?;
        }
        for id in self.ids() {
            if self.time % TICK == id * 7 % TICK {
                self.app_mut(id)?.raft.tick();
                self.drain(id)?;
            }
        }
        self.observe()
    }

    /// Steps until `done` holds, for at most [`PATIENCE`] units.
    pub(super) fn run_until(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) -> Res {
        let deadline = self.time + PATIENCE;
        while !done(self) {
            if self.time >= deadline {
                return Err(format!(
                    "{what}: not within {} ticks, at t={}",
                    PATIENCE / TICK,
                    ticks(self.time)
                )
                .into());
            }
            self.step()?;
        }
        Ok(())
    }

    /// Steps until the leader has committed its whole log and every
    /// member it can reach has applied all of it.
    pub(super) fn settle(&mut self, what: &str) -> Res {
        self.run_until(what, Self::settled)
    }

    fn settled(&self) -> bool {
        let Some(leader) = self.leader().and_then(|l| self.apps.get(&l)) else {
            return false;
        };
        let log = leader.raft.log();
        let last = log.last_index();
        let membership = leader.raft.membership();
        log.committed() == last
            && self.apps.iter().all(|(id, app)| {
                !membership.contains(id)
                    || self.isolated.contains(id)
                    || app.raft.log().applied() == last
            })
    }

    fn app_mut(&mut self, id: u64) -> Res<&mut Application> {
        Ok(self
            .apps
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}"))?)
    }

    /// Drains node `id`: its messages go on the network, its acts on the
    /// record.
    fn drain(&mut self, id: u64) -> Res {
        let (mut outbox, mut acts) = (Vec::new(), Vec::new());
        self.app_mut(id)?.drain(&mut outbox, &mut acts)?;
        for message in outbox {
            self.sent += 1;
            self.in_flight
                .insert((self.time + DELAY, self.sent), message);
        }
        let time = self.time;
        self.record
            .extend(acts.into_iter().map(|act| (time, id, Happened::Act(act))));
        Ok(())
    }

    /// Records role and term changes; an error if two nodes lead one term.
    fn observe(&mut self) -> Res {
        for (&id, app) in &self.apps {
            let now = (app.raft.role(), app.raft.term());
            if self.seen.insert(id, now) == Some(now) {
                continue;
            }
            self.record
                .push((self.time, id, Happened::Role(now.0, now.1)));
            if now.0 == Role::Leader {
                if let Some(other) = self.leaders.insert(now.1, id).filter(|&o| o != id) {
                    return Err(format!(
                        "election safety: nodes {other} and {id} both led term {}",
                        now.1
                    )
                    .into());
                }
            }
        }
        Ok(())
    }
}
