#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod counter;
mod dot;
mod dvv;
mod hlc;
mod interval;
mod lamport;
mod loom;
mod node;
mod physical;
mod vector;

pub use config::{HlcConfigError, UncertaintyConfigError};
pub use counter::CounterOverflow;
pub use dot::Dot;
pub use dvv::{DottedVersionVector, Siblings};
pub use hlc::{
    AtomicHlc, DEFAULT_MAX_OFFSET, Hlc, HlcConfig, MAX_MILLIS, NowError, ParseTimestampError,
    Timestamp, TimestampRangeError, UpdateError,
};
pub use interval::{IntervalClock, TimeInterval, Uncertainty};
pub use lamport::{AtomicLamport, LamportClock};
pub use node::NodeId;
#[cfg(feature = "coarsetime")]
#[cfg_attr(docsrs, doc(cfg(feature = "coarsetime")))]
pub use physical::CoarseClock;
pub use physical::{ManualClock, PhysicalClock, SystemClock, WallTime};
pub use vector::{CausalOrder, INLINE_NODES, VectorClock, VersionVector};
