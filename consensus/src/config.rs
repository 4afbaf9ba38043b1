//! Node configuration, validated once at construction.

use crate::entry::Index;

/// How linearizable reads confirm leadership (thesis §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ReadOnlyOption {
    /// ReadIndex: each batch of reads is confirmed by a heartbeat round
    /// acknowledged by a majority. Safe under any clock behaviour.
    #[default]
    Safe,
    /// Lease reads (thesis §6.4.1): the leader answers from its commit index
    /// without a round trip while it holds a lease: `election_tick - 1`
    /// ticks from the moment it *sent* the latest heartbeat round that a
    /// majority acknowledged (a voter that heard that round grants no vote
    /// for `election_tick` of its own ticks). Relies on check-quorum and
    /// on every node's ticks running at the same rate (clock drift below
    /// one tick per election timeout). Without a lease (none acknowledged
    /// recently, or a leadership transfer started in this term), reads
    /// fall back to a ReadIndex round. Requires [`Config::check_quorum`].
    LeaseBased,
}

/// A node's tunables. [`Config::default`] gives etcd's usual settings.
///
/// Built from [`Default`] and set by assignment, so that adding a field is
/// not a breaking change; [`Config::validate`] bounds every field and
/// [`RaftNode::new`](crate::RaftNode::new) calls it:
///
/// ```
/// use dsys_consensus::Config;
///
/// let mut config = Config::default();
/// config.election_tick = 20;
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Config {
    /// Ticks without hearing from a leader before a follower campaigns. The
    /// actual timeout is drawn uniformly from
    /// `[election_tick, 2 * election_tick)` (§5.2). Must exceed
    /// `heartbeat_tick`.
    pub election_tick: u32,
    /// Ticks between a leader's heartbeats. At least 1.
    pub heartbeat_tick: u32,
    /// Seed for the randomized election timeouts: give every node a
    /// different one (its id, say). The node draws nothing else at random.
    pub seed: u64,
    /// Campaign with a pre-vote round first (thesis §9.6), so a node that
    /// was partitioned away does not disrupt the cluster when it returns.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a majority within an
    /// election timeout, and followers that hear from a leader ignore vote
    /// requests (thesis §6.2, §9.6).
    pub check_quorum: bool,
    /// How [`read_index`](crate::RaftNode::read_index) confirms leadership.
    pub read_only: ReadOnlyOption,
    /// Most entry bytes ([`Entry::size`](crate::Entry::size)) in one
    /// AppendEntries (at least one entry is always sent).
    pub max_size_per_msg: u64,
    /// Most AppendEntries in flight to one follower while streaming.
    pub max_inflight_msgs: usize,
    /// Most entry bytes in flight to one follower (`u64::MAX`: no limit).
    pub max_inflight_bytes: u64,
    /// Largest single proposal, in bytes of payload.
    pub max_proposal_size: u64,
    /// Most bytes of proposed but uncommitted entries a leader holds; more
    /// proposals are refused until some commit (`u64::MAX`: no limit). A
    /// proposal is always accepted when nothing is uncommitted.
    pub max_uncommitted_size: u64,
    /// Most entry bytes handed out in one
    /// [`Output::Apply`](crate::Output::Apply).
    pub max_apply_bytes: u64,
    /// The index the application's state machine has already applied (it
    /// persists its own state): on restart the node hands out committed
    /// entries after it. A snapshot in storage raises it to the
    /// snapshot's index. It may be past the commit index in storage (the
    /// commit index is written lazily): the node then counts the entries
    /// up to it as committed, since it hands out only committed entries
    /// that were durable here. Past the last entry in storage it is
    /// refused ([`RestartError::AppliedBeyondLog`]).
    pub applied: Index,
    /// Most bytes of a snapshot a leader asks for and sends in one chunk
    /// ([`Output::ReadSnapshot`](crate::Output::ReadSnapshot)'s `max_len`);
    /// in `1..=`[`Config::MAX_SNAPSHOT_CHUNK_SIZE`]. A follower refuses
    /// larger chunks.
    pub snapshot_chunk_size: u64,
    /// Most snapshot chunks in flight to one follower (sent and not
    /// acknowledged); in `1..=`[`Config::MAX_SNAPSHOT_CHUNKS_IN_FLIGHT`].
    pub max_snapshot_chunks_in_flight: usize,
    /// Quiescence (multi-Raft, as CockroachDB's quiesced ranges): a leader
    /// with nothing to do for this many ticks stops heartbeating and tells
    /// its followers to stop their election timers, so an idle group costs
    /// nothing per tick. 0 (the default) turns it off; at most
    /// [`Config::MAX_TICK`]. With it on, the application MUST report peers
    /// that are down ([`RaftNode::set_peer_liveness`](crate::RaftNode::set_peer_liveness)),
    /// or a group whose leader dies while quiesced never elects another.
    pub quiesce_after_ticks: u32,
    /// Leader priority hint, as raft-rs offers (0, the default: none). A
    /// voter whose priority is higher than a candidate's refuses it its
    /// vote unless the candidate's log is strictly more up to date than
    /// the voter's (§5.4.1 order: last term, then last index), so among
    /// equally up-to-date nodes those of higher priority win elections; a
    /// voter that refuses a candidate for priority alone starts an
    /// election at once. A hint only: a node of lower priority still leads
    /// when no higher one can. Two departures from raft-rs, both found by
    /// the simulator, which gives 30% of its seeds random priorities:
    /// raft-rs compares only the last index (a high-priority voter with a
    /// long tail of an old term and a low-priority candidate with a newer
    /// one then refuse each other forever), and it does not campaign on
    /// refusal (a low-priority node with a shorter timer then keeps a
    /// group leaderless with elections it cannot win). A leadership
    /// transfer is the application's explicit choice and ignores priority
    /// (in raft-rs a transfer to a lower-priority node fails).
    pub priority: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            election_tick: 10,
            heartbeat_tick: 1,
            seed: 0,
            pre_vote: true,
            check_quorum: true,
            read_only: ReadOnlyOption::Safe,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            max_inflight_bytes: u64::MAX,
            max_proposal_size: 16 << 20,
            max_uncommitted_size: u64::MAX,
            max_apply_bytes: 64 << 20,
            applied: 0,
            snapshot_chunk_size: 1 << 20,
            max_snapshot_chunks_in_flight: 4,
            quiesce_after_ticks: 0,
            priority: 0,
        }
    }
}

/// Why a configuration was refused ([`Config::validate`]). Nothing was
/// constructed and nothing changed. Errors found in storage when a node
/// (re)starts are [`RestartError`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `heartbeat_tick` is 0. Nothing changed.
    #[error("heartbeat_tick must be at least 1")]
    ZeroHeartbeat,
    /// `election_tick` is past [`Config::MAX_TICK`]: the randomized timeout
    /// `[election_tick, 2 * election_tick)` would not fit in a `u32`.
    /// Nothing changed.
    #[error("election_tick ({election}) exceeds the largest supported, {max}")]
    TickOutOfRange {
        /// The election tick.
        election: u32,
        /// [`Config::MAX_TICK`].
        max: u32,
    },
    /// `election_tick <= heartbeat_tick`: followers would time out between
    /// heartbeats. Nothing changed.
    #[error("election_tick ({election}) must exceed heartbeat_tick ({heartbeat})")]
    ElectionNotAboveHeartbeat {
        /// The election tick.
        election: u32,
        /// The heartbeat tick.
        heartbeat: u32,
    },
    /// `max_inflight_msgs` is 0: nothing could ever be sent. Nothing
    /// changed.
    #[error("max_inflight_msgs must be at least 1")]
    ZeroInflight,
    /// Lease reads without check-quorum would be unsafe: a deposed leader
    /// would keep answering. Nothing changed.
    #[error("lease-based reads require check_quorum")]
    LeaseWithoutCheckQuorum,
    /// `snapshot_chunk_size` is 0 or past
    /// [`Config::MAX_SNAPSHOT_CHUNK_SIZE`]. Nothing changed.
    #[error("snapshot_chunk_size {size} is not in 1..={max}")]
    SnapshotChunkSize {
        /// The size given.
        size: u64,
        /// [`Config::MAX_SNAPSHOT_CHUNK_SIZE`].
        max: u64,
    },
    /// `max_snapshot_chunks_in_flight` is 0 or past
    /// [`Config::MAX_SNAPSHOT_CHUNKS_IN_FLIGHT`]. Nothing changed.
    #[error("max_snapshot_chunks_in_flight {count} is not in 1..={max}")]
    SnapshotChunksInFlight {
        /// The count given.
        count: usize,
        /// [`Config::MAX_SNAPSHOT_CHUNKS_IN_FLIGHT`].
        max: usize,
    },
    /// `quiesce_after_ticks` is past [`Config::MAX_TICK`]. Nothing
    /// changed.
    #[error("quiesce_after_ticks ({ticks}) exceeds the largest supported, {max}")]
    QuiesceTicksOutOfRange {
        /// The ticks given.
        ticks: u32,
        /// [`Config::MAX_TICK`].
        max: u32,
    },
}

/// Why a node could not be built from its storage
/// ([`RaftNode::new`](crate::RaftNode::new), at a first start or a
/// restart). Nothing was constructed, and the storage was not touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestartError {
    /// The configuration itself is invalid ([`Config::validate`]). Nothing
    /// changed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storage holds neither a snapshot nor a configuration entry, and the
    /// bootstrap membership it lists does not include this node (a node
    /// joining an existing cluster starts with an empty membership).
    /// Nothing changed.
    #[error("this node is not a voter of the configuration in storage")]
    NotAVoter,
    /// [`Config::applied`] is past the last entry in storage: the state
    /// machine claims entries the disk does not hold (it was saved from
    /// another node, or the log lost acknowledged entries). An applied
    /// index past the stored *commit* index is fine: the commit index is
    /// stored lazily, and the node counts what was applied as committed.
    /// Nothing changed.
    #[error("applied index {applied} is past the last index {last_index} in storage")]
    AppliedBeyondLog {
        /// The configured applied index.
        applied: Index,
        /// The last index in storage.
        last_index: Index,
    },
}

impl Config {
    /// The largest `election_tick` (and so `heartbeat_tick`) accepted: the
    /// randomized election timeout, below `2 * election_tick`, must fit in
    /// a `u32`.
    pub const MAX_TICK: u32 = u32::MAX / 2;
    /// The largest snapshot chunk (64 MiB), on both sides of a transfer.
    pub const MAX_SNAPSHOT_CHUNK_SIZE: u64 = 64 << 20;
    /// The most snapshot chunks in flight to one follower.
    pub const MAX_SNAPSHOT_CHUNKS_IN_FLIGHT: usize = 1024;

    /// Checks every field's range and the settings against each other.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_tick == 0 {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if self.election_tick > Self::MAX_TICK {
            return Err(ConfigError::TickOutOfRange {
                election: self.election_tick,
                max: Self::MAX_TICK,
            });
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(ConfigError::ElectionNotAboveHeartbeat {
                election: self.election_tick,
                heartbeat: self.heartbeat_tick,
            });
        }
        if self.max_inflight_msgs == 0 {
            return Err(ConfigError::ZeroInflight);
        }
        if self.read_only == ReadOnlyOption::LeaseBased && !self.check_quorum {
            return Err(ConfigError::LeaseWithoutCheckQuorum);
        }
        if !(1..=Self::MAX_SNAPSHOT_CHUNK_SIZE).contains(&self.snapshot_chunk_size) {
            return Err(ConfigError::SnapshotChunkSize {
                size: self.snapshot_chunk_size,
                max: Self::MAX_SNAPSHOT_CHUNK_SIZE,
            });
        }
        if !(1..=Self::MAX_SNAPSHOT_CHUNKS_IN_FLIGHT).contains(&self.max_snapshot_chunks_in_flight)
        {
            return Err(ConfigError::SnapshotChunksInFlight {
                count: self.max_snapshot_chunks_in_flight,
                max: Self::MAX_SNAPSHOT_CHUNKS_IN_FLIGHT,
            });
        }
        if self.quiesce_after_ticks > Self::MAX_TICK {
            return Err(ConfigError::QuiesceTicksOutOfRange {
                ticks: self.quiesce_after_ticks,
                max: Self::MAX_TICK,
            });
        }
        Ok(())
    }
}
