//! A seeded, sans-IO network emulator for membership protocols, and the scenarios that
//! measure them.
//!
//! [`Sim`] runs any number of [`SimNode`]s (state machines addressed by index) over an
//! emulated network in **virtual time**: a base [`Instant`] chosen by the caller plus a
//! [`Duration`] that only the simulator advances. Nothing here reads a clock, sleeps or
//! uses a global RNG: the same seed, the same nodes and the same calls give the same
//! run, event for event, so a failing seed can be replayed.
//!
//! [`Instant`]: std::time::Instant
//! [`Duration`]: std::time::Duration
//!
//! The network model ([`NetworkConfig`] and the commands on [`Sim`]):
//!
//! - **latency**: each packet takes a delay drawn uniformly from
//!   `latency_min..=latency_max`, so packets also overtake each other (reordering);
//! - **loss**: a global drop probability, overridden per directed link by
//!   [`Sim::set_link_loss`];
//! - **duplication**: with probability `duplicate` a second copy travels with its own
//!   delay;
//! - **partitions**: [`Sim::partition`] splits the nodes into groups; packets crossing
//!   groups are dropped (checked when sent and again on arrival) until [`Sim::heal`];
//! - **crashes**: [`Sim::crash`] stops a node for good; packets to it are dropped and
//!   its timers never fire ([`Sim::restart`] puts a fresh state machine in its place);
//! - **pauses** (a GC or whole-process stall): [`Sim::pause`] freezes a node; it neither
//!   handles packets nor fires timers. Packets sent to it queue up and, when it
//!   resumes, it handles them in arrival order together with its overdue timer, all at
//!   the resume instant, interleaved as [`ResumeOrder`] says;
//! - **receive stalls** (slow message processing, the case Lifeguard was designed for:
//!   a starved receive loop while timers still run): [`Sim::stall_receive`] queues the
//!   packets sent to a node and hands them over, in arrival order, when the stall ends;
//!   meanwhile its timers fire and its packets go out as usual.
//!
//! Every membership event a node reports is recorded with the virtual time, observer,
//! subject and [`SimEventKind`]; the simulator also keeps each observer's latest view of
//! each subject and counts packets and bytes per node. [`Sim::first_events`],
//! [`Sim::events_between`] and [`Latencies`] turn the record into detection and
//! dissemination figures, and the [`scenario`] module composes them into the standard
//! measurements (crash detection, join propagation, false positives under loss and with
//! a paused node, traffic).
//!
//! [`Swim<u32>`](crate::Swim) implements [`SimNode`] (its `u32` ids are the node
//! indices), so a cluster runs in a few lines:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use dsys_detect::sim::{NetworkConfig, Sim, SimEventKind};
//! use dsys_detect::{Swim, SwimConfig};
//!
//! let base = Instant::now(); // the only clock read, and it is the caller's
//! let mut sim = Sim::new(NetworkConfig::default(), 7, base).expect("the default network is valid");
//! for i in 0..20u32 {
//!     let node = Swim::new(i, SwimConfig::default(), u64::from(i), sim.instant()).unwrap();
//!     let index = sim.add_node(node);
//!     if index > 0 {
//!         sim.join(index, &[0]);
//!     }
//! }
//! let converged = sim
//!     .run_until_cond(Duration::from_secs(30), Duration::from_millis(250), |s| s.views_converged())
//!     .expect("no livelock");
//! assert!(converged.is_some(), "20 nodes see each other within 30 s");
//!
//! sim.crash(5);
//! let crashed_at = sim.now();
//! sim.run_for(Duration::from_secs(40)).expect("no livelock");
//! let observers = sim.live_nodes();
//! let detection = sim.first_events(5, crashed_at, &[SimEventKind::Down], &observers);
//! assert_eq!(detection.missing, 0, "every live member marked the crashed node Down");
//! ```

mod config;
mod network;
mod node;
pub mod scenario;
mod stats;

pub use config::{NetworkConfig, ResumeOrder, SimConfigError};
pub use network::{Livelock, MAX_VIRTUAL_TIME, NodeStatus, Sim};
pub use node::{SimEventKind, SimNode};
pub use stats::{Latencies, MembershipEvent, NodeStats, Summary, Traffic};
