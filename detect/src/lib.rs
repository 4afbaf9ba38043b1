#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod heartbeat;
pub mod phi;
pub mod sim;
pub mod swim;

pub use heartbeat::HeartbeatDetector;
pub use phi::{PhiAccrual, PhiConfig, PhiConfigError, PhiModel};
pub use swim::{
    Config as SwimConfig, ConfigError as SwimConfigError, Event, NodeId, PacketError, State, Swim,
    Transmit,
};
