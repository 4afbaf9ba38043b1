//! What the idle groups benchmark drives: many 3-replica groups hosted in one
//! thread, ticked together, with a perfect in-memory network between the
//! replicas of each group.

pub(crate) mod dsys;
pub(crate) mod raft_rs;

/// Replicas per group, and nodes in the simulated deployment: replica `r`
/// of every group lives on node `r + 1`.
pub(crate) const REPLICAS: usize = 3;

/// Ticks per simulated second: etcd's 100 ms tick (`--heartbeat-interval`).
pub(crate) const TICKS_PER_SECOND: u32 = 10;

/// Election timeout in ticks (etcd: 1 s = 10 ticks of 100 ms).
pub(crate) const ELECTION_TICK: u32 = 10;

/// Heartbeat interval in ticks (etcd: 100 ms = 1 tick).
pub(crate) const HEARTBEAT_TICK: u32 = 1;

/// Idle ticks before a dsys leader quiesces (2 s).
pub(crate) const QUIESCE_AFTER_TICKS: u32 = 20;

/// Every group of one process, ticked as a node of each of them would be.
pub(crate) trait Groups {
    /// One tick on every live replica of every group, then every message
    /// that results is delivered (and answered, and so on) until none is
    /// left: one simulated tick of the whole deployment.
    fn tick_all(&mut self);

    /// Messages delivered so far (counting those dropped because their
    /// destination is down).
    fn messages(&self) -> u64;

    /// Groups with a leader on a live node, and replicas quiesced (0 for
    /// an implementation without quiescence), for checks.
    fn census(&self) -> (usize, usize);
}

/// Which replica is the leader of group `group`: spread over the nodes
/// that are up, as a balanced deployment places them.
pub(crate) fn leader_of(group: usize, down: Option<usize>) -> usize {
    match down {
        None => group % REPLICAS,
        Some(down) => {
            let up: Vec<usize> = (0..REPLICAS).filter(|&r| r != down).collect();
            up[group % up.len()]
        }
    }
}
