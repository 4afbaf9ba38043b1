#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bounded;
mod hash;
mod jump;
mod maglev;
mod modulo;
mod placement;
pub mod quality;
mod range;
mod rendezvous;
mod ring;

pub use bounded::{BoundedLoads, BoundedLoadsConfigError};
pub use hash::{KEY_SEED, KeyHash, NODE_SEED};
pub use jump::{JumpHash, jump_consistent_hash};
pub use maglev::{Maglev, MaglevConfigError};
pub use modulo::ModuloHash;
pub use placement::{AddNodeError, NodeId, Placement, RemoveNodeError};
pub use range::{RangeConfigError, RangePartition, order_preserving_point};
pub use rendezvous::Rendezvous;
pub use ring::{
    MAX_RING_VNODES, MAX_VNODES_PER_WEIGHT, NodeConfig, NodeConfigError, PreferenceList,
    RebalancePlan, Ring, RingConfig, RingConfigError, TokenAllocation, TokenRange, Transfer,
};
