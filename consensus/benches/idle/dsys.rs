//! dsys-consensus groups: `RaftNode` over `MemStorage`, ticked and drained
//! the documented way (tick, then `poll_output` until `None`).

use dsys_consensus::{Config, MemStorage, Message, Output, RaftNode};

use super::{ELECTION_TICK, Groups, HEARTBEAT_TICK, QUIESCE_AFTER_TICKS, REPLICAS, leader_of};

type Node = RaftNode<MemStorage<u64>>;

/// `groups` dsys groups of three replicas.
pub(crate) struct DsysGroups {
    groups: usize,
    /// Replica `r` of group `g` at `r * groups + g` (each node's replicas
    /// together, as in its own process); its node id is `r + 1`.
    nodes: Vec<Node>,
    /// The replica index of the node that is down, if one is.
    down: Option<usize>,
    /// Messages in flight, with their group.
    queue: Vec<(u32, Message<u64>)>,
    messages: u64,
}

impl DsysGroups {
    /// Builds the groups, elects a leader in each (spread over the live
    /// nodes) and, with `down`, tells every live replica that the node
    /// hosting replica `down` is down, as a failure detector shared by the
    /// process would. Ticks are not run here.
    pub(crate) fn new(groups: usize, quiesce: bool, down: Option<usize>) -> Self {
        let ids: Vec<u64> = (1..=REPLICAS as u64).collect();
        let mut nodes = Vec::with_capacity(groups * REPLICAS);
        for &id in &ids {
            for g in 0..groups {
                let config = config(g, id, quiesce);
                let node = RaftNode::new(id, MemStorage::new(ids.clone()), config)
                    .expect("the config is valid");
                nodes.push(node);
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
            this.nodes[at].campaign();
            this.drain(at);
        }
        this.deliver();
        if let Some(down) = down {
            let down_id = down as u64 + 1;
            for g in 0..groups {
                for r in (0..REPLICAS).filter(|&r| r != down) {
                    let at = r * groups + g;
                    this.nodes[at].set_peer_liveness(down_id, false);
                    this.drain(at);
                }
            }
            this.deliver();
        }
        this
    }

    fn drain(&mut self, at: usize) {
        let group = u32::try_from(at % self.groups).expect("fewer than 2^32 groups");
        let node = &mut self.nodes[at];
        while let Some(output) = node.poll_output() {
            match output {
                Output::Persist(persist) => {
                    let storage = node.storage_mut();
                    if let Some(hard_state) = persist.hard_state {
                        storage.set_hard_state(hard_state);
                    }
                    storage
                        .append(&persist.entries)
                        .expect("entries follow the stored log");
                    node.on_persisted(persist.id);
                }
                Output::Send(message) => self.queue.push((group, message)),
                Output::Apply(_) | Output::ReadReady(_) | Output::ReadFailed { .. } => {}
                Output::ReadSnapshot { .. }
                | Output::SnapshotSendEnded { .. }
                | Output::SnapshotChunk { .. }
                | Output::RestoreSnapshot(_)
                | Output::SnapshotAborted { .. } => unreachable!("nothing is compacted"),
            }
        }
    }

    /// Delivers messages (and the answers they cause) until none is left.
    fn deliver(&mut self) {
        let mut rounds = 0;
        while !self.queue.is_empty() {
            rounds += 1;
            assert!(rounds < 1_000, "dsys groups never went quiet");
            for (group, message) in std::mem::take(&mut self.queue) {
                self.messages += 1;
                let r = usize::try_from(message.to - 1).expect("small ids");
                if Some(r) == self.down {
                    continue;
                }
                let at = r * self.groups + group as usize;
                self.nodes[at].handle_message(message);
                self.drain(at);
            }
        }
    }
}

impl Groups for DsysGroups {
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
            .filter(|(at, n)| Some(at / self.groups) != self.down && n.is_leader())
            .count();
        let quiesced = self.nodes.iter().filter(|n| n.is_quiesced()).count();
        (leaders, quiesced)
    }
}

/// etcd's timing (see the constants), check-quorum and pre-vote on as in
/// production deployments, and quiescence on or off.
fn config(group: usize, id: u64, quiesce: bool) -> Config {
    let mut config = Config::default();
    config.seed = (group as u64) << 2 | id;
    config.election_tick = ELECTION_TICK;
    config.heartbeat_tick = HEARTBEAT_TICK;
    config.check_quorum = true;
    config.pre_vote = true;
    config.quiesce_after_ticks = if quiesce { QUIESCE_AFTER_TICKS } else { 0 };
    config
}
