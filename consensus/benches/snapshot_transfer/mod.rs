//! The two contenders of the InstallSnapshot benchmark: a 3-node cluster
//! whose node 3 must be caught up by a snapshot the leader keeps in a file.

pub(crate) mod dsys;
pub(crate) mod raft_rs;

/// Entries committed on nodes 1 and 2 while node 3 is cut off.
pub(crate) const ENTRIES_WHILE_CUT_OFF: usize = 100;

/// Ticks of the leader (heartbeat rounds, when the network is quiet) after
/// which a transfer is taken to be stuck.
pub(crate) const MAX_TICKS: usize = 1_000;

/// Rounds after which a transfer is taken to be stuck.
pub(crate) const MAX_ROUNDS: usize = 1_000_000;
