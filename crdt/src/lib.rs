#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod causal;
pub mod codec;
mod counter;
mod id;
mod lattice;
mod ormap;
mod orset;
mod register;
mod set;
pub mod sim;
mod sync;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use causal::CausalContext;
pub use counter::{GCounter, PNCounter};
pub use id::NodeId;
pub use lattice::{Authored, InvalidJoin, Lattice};
pub use ormap::ORMap;
pub use orset::ORSet;
pub use register::{LwwRegister, MvRegister};
pub use set::{GSet, TwoPSet};
#[cfg(feature = "crdts")]
pub use sync::Cvrdt;
pub use sync::{
    ConfigError, Counters, Outgoing, Replica, RestoreError, SyncConfig, SyncError, SyncMessage,
};
