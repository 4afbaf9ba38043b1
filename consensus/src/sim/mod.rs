//! Deterministic simulation of a Raft cluster (DESIGN.md, testing layer 3):
//! a seeded network with latency, loss, duplication, reordering and
//! partitions, crash and restart where only persisted state survives, a
//! key-value state machine whose client history is checked for
//! linearizability, and Raft's safety properties checked after every step.
//!
//! Everything random derives from one seed, so a failing run replays
//! exactly. [`chaos::run`] is the randomized scenario the test suite runs
//! for thousands of seeds; [`Simulation`] is the scripted API under it.

pub mod chaos;
mod cluster;
pub mod linearizability;
mod network;

pub use cluster::{SimConfig, SimEvent, Simulation, Violation};
pub use network::{NetworkConfig, NetworkStats};
