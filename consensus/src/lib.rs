#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod entry;
mod log;
mod storage;

pub use entry::{ENTRY_OVERHEAD, Entry, HardState, Index, Term};
pub use log::{LogError, RaftLog};
pub use storage::{InitialState, MemStorage, Storage, StorageError};
