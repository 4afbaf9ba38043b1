#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod causal;
pub mod codec;
pub mod counter;
mod lattice;
pub mod ormap;
pub mod orset;
pub mod register;
pub mod set;
pub mod sim;
pub mod sync;

pub use causal::CausalContext;
pub use codec::{Decode, DecodeError, Encode, ReplicaId};
pub use counter::{GCounter, PNCounter};
pub use lattice::{Authored, InvalidJoin, Lattice};
pub use ormap::ORMap;
pub use orset::ORSet;
pub use register::{LwwRegister, MvRegister};
pub use set::{GSet, TwoPSet};
pub use sync::{Replica, SyncConfig, SyncMessage};
