//! What a [`FramedTcp`](crate::FramedTcp) did, kept in atomics so that a
//! handle reads them from anywhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a [`FramedTcp`](crate::FramedTcp) did with the frames it was given
/// and the bytes it received. Counters only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FramedTcpCounters {
    /// Frames queued for a peer.
    pub queued: u64,
    /// Frames written to a connection.
    pub written: u64,
    /// Frames dropped because the peer's queue was full.
    pub dropped_queue_full: u64,
    /// Frames for a peer that is not known.
    pub dropped_unknown_peer: u64,
    /// Frames over `max_frame_len`, not sent.
    pub dropped_oversized: u64,
    /// Frames lost with a connection that broke while writing them.
    pub dropped_broken: u64,
    /// Frames received whole (handed to [`recv`](crate::FramedTcp::recv)).
    pub received: u64,
    /// Connections closed because a peer announced a frame over
    /// `max_frame_len`.
    pub oversized_frames: u64,
    /// Outgoing connections established.
    pub connects: u64,
    /// Outgoing connection attempts that failed.
    pub connect_failures: u64,
    /// Incoming connections closed at once because `max_connections` were
    /// open.
    pub refused_connections: u64,
    /// Incoming connections closed after `idle_timeout` without a frame.
    pub idle_closed: u64,
}

/// The live counters, shared by the transport, its tasks and its handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) queued: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_unknown_peer: AtomicU64,
    pub(crate) dropped_oversized: AtomicU64,
    pub(crate) dropped_broken: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) oversized_frames: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) refused_connections: AtomicU64,
    pub(crate) idle_closed: AtomicU64,
}

/// Adds `by` to one counter. Relaxed: each counter stands alone, and no
/// reader orders one against another.
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Shared {
    pub(crate) fn get(&self) -> FramedTcpCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FramedTcpCounters {
            queued: get(&self.queued),
            written: get(&self.written),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_unknown_peer: get(&self.dropped_unknown_peer),
            dropped_oversized: get(&self.dropped_oversized),
            dropped_broken: get(&self.dropped_broken),
            received: get(&self.received),
            oversized_frames: get(&self.oversized_frames),
            connects: get(&self.connects),
            connect_failures: get(&self.connect_failures),
            refused_connections: get(&self.refused_connections),
            idle_closed: get(&self.idle_closed),
        }
    }
}

/// Reads a [`FramedTcp`](crate::FramedTcp)'s counters from anywhere
/// ([`FramedTcp::counters_handle`](crate::FramedTcp::counters_handle)); stays
/// valid after the transport moves into a driver, or is dropped.
#[derive(Debug, Clone)]
pub struct FramedTcpCountersHandle(pub(crate) Arc<Shared>);

impl FramedTcpCountersHandle {
    /// The counters now.
    #[must_use]
    pub fn get(&self) -> FramedTcpCounters {
        self.0.get()
    }
}
