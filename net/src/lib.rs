#![doc = include_str!("../README.md")]

mod config;
mod counters;
mod framed;
mod id;
mod reply;

pub use config::{ConfigError, FramedTcpConfig};
pub use counters::{FramedTcpCounters, FramedTcpCountersHandle};
pub use framed::FramedTcp;
pub use id::NodeId;
pub use reply::answered;
