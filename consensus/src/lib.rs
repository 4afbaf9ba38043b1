#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod entry;
mod log;
mod membership;
mod message;
mod output;
mod progress;
mod quorum;
mod raft;
mod snapshot;
mod storage;

pub use config::{Config, ConfigError, ReadOnlyOption, RestartError};
pub use entry::{ENTRY_OVERHEAD, Entry, EntryKind, HardState, Index, Term};
pub use log::{LogError, RaftLog};
pub use membership::{JointLeave, Membership, MembershipChange, MembershipError};
pub use message::{AppendOutcome, Message, MessageBody, SnapshotOutcome};
pub use output::{
    Output, Persist, PersistId, ProposalId, ProposeError, ReadError, ReadState, ReplicatedLog,
};
pub use progress::{Inflights, Progress, ReplicationState};
pub use quorum::{JointMajority, Majority, VoteResult};
pub use raft::{Counters, NodeId, RaftNode, RaftOutput, Role, Status, TransferError};
pub use snapshot::{SnapshotAbortReason, SnapshotError, SnapshotMeta};
pub use storage::{InitialState, MemStorage, Storage, StorageError};
pub mod codec;
#[cfg(feature = "durable")]
#[cfg_attr(docsrs, doc(cfg(feature = "durable")))]
pub mod durable;
pub mod sim;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
