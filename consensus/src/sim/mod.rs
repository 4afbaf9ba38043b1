//! Deterministic simulation of a Raft cluster (DESIGN.md, testing layer 3).
//!
//! - The network ([`NetworkConfig`]) delays messages (so they reorder),
//!   loses and duplicates them, holds some back for many election
//!   timeouts, replays copies of old messages from any term, and cuts
//!   links: symmetric, one-way and non-transitive partitions, or a leader
//!   cut off from everyone.
//! - Each node's disk ([`DiskConfig`]) makes a write durable some time
//!   after it is handed out and acknowledges it later still, one
//!   acknowledgement covering several writes. A crash, between steps or
//!   between two outputs of one drain, keeps what is durable and loses,
//!   keeps or tears the writes still in the air: only what the
//!   persistence contract promises survives. Restart is from the disk.
//! - Each node's key-value state machine sometimes records its state and
//!   applied index durably; a restart resumes from it
//!   (`Config::applied`). Nodes also take Raft snapshots of it and compact
//!   their logs ([`DiskConfig::compact`]): leaders read chunks from their
//!   durable snapshots, followers stage them (staging is lost at a crash)
//!   and restore once the writes before the restore are durable.
//! - Raft's safety properties (Figure 3) and the persistence contract (a
//!   vote or an acknowledgement leaves only once what it promises is on
//!   disk; an entry is on a majority of disks when it is first known
//!   committed; an applied entry is on its node's disk) are checked after
//!   every step and every output, and the clients' history for
//!   linearizability at the end.
//!
//! Everything random derives from one seed, so a failing run replays
//! exactly. [`chaos::run`] is the randomized scenario the test suite runs
//! for thousands of seeds; [`Simulation`] is the scripted API under it.

pub mod chaos;
mod cluster;
mod config;
mod disk;
pub mod linearizability;
mod network;

pub use cluster::{SimEvent, SimStats, Simulation, Violation};
pub use config::{SimConfig, SimConfigError};
pub use disk::DiskConfig;
pub use network::{NetworkConfig, NetworkStats};
