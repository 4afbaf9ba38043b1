#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The protocol API is flat at the root, from private modules; `sim` is a distinct
// component, reached only through its module, as is the optional tokio driver.
mod heartbeat;
mod phi;
pub mod sim;
mod swim;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use heartbeat::{HeartbeatCounters, HeartbeatDetector};
pub use phi::{PhiAccrual, PhiConfig, PhiConfigError, PhiCounters, PhiModel};
pub use swim::{
    DecodeError, Event, IdCodec, MAX_ID_LEN, NodeId, PacketError, State, Swim, SwimConfig,
    SwimConfigError, SwimCounters, Transmit, inspect_packet,
};
