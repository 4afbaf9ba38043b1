#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod entry;
mod log;
mod progress;
mod quorum;
mod storage;

pub use entry::{ENTRY_OVERHEAD, Entry, HardState, Index, Term};
pub use log::{LogError, RaftLog};
pub use progress::{Inflights, Progress, ReplicationState};
pub use quorum::{Majority, VoteResult};
pub use storage::{InitialState, MemStorage, Storage, StorageError};
