//! raft-rs 0.7 groups: `RawNode` over its `MemStorage`, ticked and driven by
//! the documented Ready loop (as the throughput benchmark's peer). raft-rs
//! has no quiescence (TiKV's hibernate regions live in TiKV, above it), so
//! every leader heartbeats every follower, up or down, on every heartbeat
//! tick.

use raft::eraftpb::{ConfState, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};

use super::{ELECTION_TICK, Groups, HEARTBEAT_TICK, REPLICAS, leader_of};

/// `groups` raft-rs groups of three replicas.
pub(crate) struct RaftRsGroups {
    groups: usize,
    /// Replica `r` of group `g` at `r * groups + g` (each node's replicas
    /// together, as in its own process); its node id is `r + 1`.
    nodes: Vec<RawNode<MemStorage>>,
    down: Option<usize>,
    queue: Vec<(u32, Message)>,
    messages: u64,
}

impl RaftRsGroups {
    /// Builds the groups and elects a leader in each, spread over the live
    /// nodes; the node hosting replica `down`, if any, takes no part.
    pub(crate) fn new(groups: usize, down: Option<usize>) -> Self {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let ids: Vec<u64> = (1..=REPLICAS as u64).collect();
        let mut nodes = Vec::with_capacity(groups * REPLICAS);
        for &id in &ids {
            for _ in 0..groups {
                let storage =
                    MemStorage::new_with_conf_state(ConfState::from((ids.clone(), vec![])));
                let raw = RawNode::new(&config(id), storage, &logger).expect("the config is valid");
                nodes.push(raw);
            }
        }
        let mut this = Self {
            groups,
            nodes,
            down,
            queue: Vec::new(),
            messages: 0,
        };
        for g in 0..groups {
            let at = leader_of(g, down) * groups + g;
            this.nodes[at].campaign().expect("a voter can campaign");
            this.drain(at);
        }
        this.deliver();
        this
    }

    /// The Ready loop of one replica, as in the throughput benchmark.
    fn drain(&mut self, at: usize) {
        let group = u32::try_from(at % self.groups).expect("fewer than 2^32 groups");
        let raw = &mut self.nodes[at];
        while raw.has_ready() {
            let mut ready = raw.ready();
            route(&mut self.queue, group, ready.take_messages());
            assert!(ready.snapshot().is_empty(), "nothing is compacted");
            let _committed = ready.take_committed_entries();
            {
                let mut store = raw.store().wl();
                store
                    .append(ready.entries())
                    .expect("entries follow the stored log");
                if let Some(hs) = ready.hs() {
                    store.set_hardstate(hs.clone());
                }
            }
            route(&mut self.queue, group, ready.take_persisted_messages());
            let mut light = raw.advance(ready);
            if let Some(commit) = light.commit_index() {
                raw.store().wl().mut_hard_state().set_commit(commit);
            }
            route(&mut self.queue, group, light.take_messages());
            let _committed = light.take_committed_entries();
            raw.advance_apply();
        }
    }

    fn deliver(&mut self) {
        let mut rounds = 0;
        while !self.queue.is_empty() {
            rounds += 1;
            assert!(rounds < 1_000, "raft-rs groups never went quiet");
            for (group, message) in std::mem::take(&mut self.queue) {
                self.messages += 1;
                let r = usize::try_from(message.to - 1).expect("small ids");
                if Some(r) == self.down {
                    continue;
                }
                let at = r * self.groups + group as usize;
                // Stale messages are refused without effect; none are
                // expected, and an error here would only be counted.
                let _ = self.nodes[at].step(message);
                self.drain(at);
            }
        }
    }
}

fn route(queue: &mut Vec<(u32, Message)>, group: u32, messages: Vec<Message>) {
    queue.extend(messages.into_iter().map(|m| (group, m)));
}

impl Groups for RaftRsGroups {
    fn tick_all(&mut self) {
        for at in 0..self.nodes.len() {
            if Some(at / self.groups) == self.down {
                continue;
            }
            self.nodes[at].tick();
            self.drain(at);
        }
        self.deliver();
    }

    fn messages(&self) -> u64 {
        self.messages
    }

    fn census(&self) -> (usize, usize) {
        let leaders = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(at, n)| {
                Some(at / self.groups) != self.down && n.raft.state == StateRole::Leader
            })
            .count();
        (leaders, 0)
    }
}

/// The same timing as the dsys groups, check-quorum and pre-vote on.
fn config(id: u64) -> Config {
    Config {
        id,
        election_tick: ELECTION_TICK as usize,
        heartbeat_tick: HEARTBEAT_TICK as usize,
        check_quorum: true,
        pre_vote: true,
        ..Config::default()
    }
}
