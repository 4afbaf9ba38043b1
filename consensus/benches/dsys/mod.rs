//! Our contender: three `dsys_consensus::RaftNode`s over `MemStorage`, driven
//! round by round exactly like the raft-rs contender: each node handles the
//! messages queued for it, then drains its outputs (persisting synchronously
//! in memory and acknowledging at once).

use bytes::Bytes;
use dsys_consensus::{Config, MemStorage, Message, Output, RaftNode};

use crate::cluster::{Cluster, drive_until};

/// Node ids; node `id` sits at index `id - 1`.
const IDS: [u64; 3] = [1, 2, 3];

/// The leader: it campaigns when the cluster is built, and nothing ever
/// ticks, so no other node starts an election.
const LEADER: u64 = 1;

/// Three dsys Raft nodes in one thread, with a perfect in-memory network.
pub(crate) struct DsysCluster {
    nodes: Vec<Node>,
    inboxes: Vec<Vec<Message<u64>>>,
}

struct Node {
    raft: RaftNode<MemStorage<u64>>,
    /// Highest applied normal-entry index.
    applied: u64,
}

impl DsysCluster {
    /// Builds the cluster, elects node 1 and drives until every node applied
    /// the new leader's no-op entry.
    pub(crate) fn new() -> Self {
        let nodes = IDS
            .iter()
            .map(|&id| {
                let raft = RaftNode::new(id, MemStorage::new(IDS.to_vec()), config(id))
                    .expect("the config is valid");
                Node { raft, applied: 0 }
            })
            .collect();
        let mut cluster = Self {
            nodes,
            inboxes: vec![Vec::new(); IDS.len()],
        };
        cluster.nodes[index(LEADER)].raft.campaign();
        cluster.drive_until(|c| {
            let leader = &c.nodes[index(LEADER)].raft;
            leader.is_leader() && c.all_applied(leader.log().last_index())
        });
        cluster
    }

    fn all_applied(&self, index: u64) -> bool {
        self.nodes.iter().all(|n| n.applied >= index)
    }

    fn drive_until(&mut self, done: impl Fn(&Self) -> bool) {
        drive_until(self, "dsys", done, Self::round);
    }

    /// Every node handles the messages queued for it, then its outputs.
    fn round(&mut self) -> bool {
        let mut progressed = false;
        for i in 0..self.nodes.len() {
            let inbox = std::mem::take(&mut self.inboxes[i]);
            progressed |= !inbox.is_empty();
            let node = &mut self.nodes[i];
            for message in inbox {
                node.raft.handle_message(message);
            }
            progressed |= node.drain(&mut self.inboxes);
        }
        progressed
    }
}

impl Node {
    /// Handles every output; returns whether there was any.
    fn drain(&mut self, inboxes: &mut [Vec<Message<u64>>]) -> bool {
        let mut any = false;
        while let Some(output) = self.raft.poll_output() {
            any = true;
            match output {
                Output::Persist(persist) => {
                    let storage = self.raft.storage_mut();
                    if let Some(hard_state) = persist.hard_state {
                        storage.set_hard_state(hard_state);
                    }
                    storage
                        .append_owned(persist.entries)
                        .expect("entries follow the stored log");
                    self.raft.on_persisted(persist.id);
                }
                Output::Send(message) => {
                    let to = index(message.to);
                    inboxes[to].push(message);
                }
                Output::Apply(entries) => {
                    for entry in entries {
                        assert_eq!(entry.index, self.applied + 1, "applied in order");
                        self.applied = entry.index;
                    }
                }
                Output::ReadReady(_) | Output::ReadFailed { .. } => {}
                // Every node compacts only what all three applied: no
                // follower ever needs a snapshot.
                Output::ReadSnapshot { .. }
                | Output::SnapshotSendEnded { .. }
                | Output::SnapshotChunk { .. }
                | Output::RestoreSnapshot(_)
                | Output::SnapshotAborted { .. } => unreachable!("no snapshot transfers"),
            }
        }
        any
    }
}

impl Cluster for DsysCluster {
    fn replicate(&mut self, batch: &[Bytes]) {
        let leader = &mut self.nodes[index(LEADER)].raft;
        for payload in batch {
            // `Bytes` clone: a reference count, no copy of the payload.
            leader
                .propose(payload.clone())
                .expect("the leader accepts proposals");
        }
        let last = leader.log().last_index();
        self.drive_until(|c| c.all_applied(last));
    }

    fn applied(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.applied).collect()
    }

    fn compact(&mut self) {
        let floor = self
            .nodes
            .iter()
            .map(|n| n.applied)
            .min()
            .expect("three nodes");
        if floor == 0 {
            return;
        }
        for node in &mut self.nodes {
            // Compaction goes only as far as a snapshot covers (the
            // benchmark's state machine keeps nothing, so the snapshot is
            // its meta alone).
            let meta = node
                .raft
                .snapshot_meta(floor)
                .expect("every node applied the floor");
            let storage = node.raft.storage_mut();
            storage
                .set_snapshot(meta)
                .expect("the applied entry is stored");
            storage
                .compact(floor)
                .expect("MemStorage compacts what a snapshot covers");
        }
    }
}

/// The same settings as the raft-rs contender.
fn config(id: u64) -> Config {
    let mut config = Config::default();
    config.seed = id;
    config.election_tick = 10;
    config.heartbeat_tick = 1;
    config.max_size_per_msg = 1024 * 1024;
    config.max_inflight_msgs = 256;
    config.check_quorum = false;
    config.pre_vote = false;
    config
}

fn index(id: u64) -> usize {
    usize::try_from(id - 1).expect("node ids are small")
}
