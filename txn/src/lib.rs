#![doc = include_str!("../README.md")]

pub mod outbox;
pub mod saga;
pub mod twopc;

use core::fmt::Debug;
use core::hash::Hash;

/// What a node identifier must be (a 2PC coordinator or participant): the
/// suite's one bound set, implemented for every type that has it, so `u32`,
/// `u64`, `String`, `SocketAddr` or your own UUID type work unchanged.
pub trait NodeId: Clone + Eq + Ord + Hash + Debug {}

impl<T: Clone + Eq + Ord + Hash + Debug> NodeId for T {}

/// Wall-clock time, the one type in which this crate takes physical time:
/// saga deadlines and outbox leases, retries and retention outlive the
/// process that set them, so they compare against the wall clock, never
/// against an `Instant`. The two-phase-commit timers measure elapsed time
/// within one run and take `std::time::Instant`, as the rest of the suite does.
pub use dsys_clocks::WallTime;
