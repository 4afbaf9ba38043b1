//! The fixed-timeout heartbeat detector, documented on [`HeartbeatDetector`].

use std::time::{Duration, Instant};

/// The fixed-timeout heartbeat detector: a peer is suspected once `timeout`
/// has passed since its last heartbeat.
///
/// This is the conventional binary detector that the φ accrual paper
/// (Hayashibara et al., "The φ Accrual Failure Detector", SRDS 2004, introduction)
/// sets out to improve on: one timeout must serve every application, and it
/// cannot adapt to the network. It is here as the baseline to compare
/// [`PhiAccrual`](crate::PhiAccrual) against, and for the cases where a
/// hard deadline is what the caller wants (leases, lock expiry).
///
/// Like the rest of the crate it reads no clock: time comes in as `now`.
/// [`poll_timeout`](Self::poll_timeout) is the instant to wake up at (the
/// suite's name for a state machine's next deadline); there is no work to do
/// at it, so there is no `handle_timeout`: at or after it, ask
/// [`is_available`](Self::is_available).
///
/// ```
/// use std::time::{Duration, Instant};
/// use dsys_detect::HeartbeatDetector;
///
/// let mut fd = HeartbeatDetector::new(Duration::from_secs(5));
/// let t0 = Instant::now(); // the caller's clock, read by the caller
/// fd.heartbeat(t0);
/// assert_eq!(fd.poll_timeout(), Some(t0 + Duration::from_secs(5)));
/// assert!(fd.is_available(t0 + Duration::from_millis(4_999)));
/// assert!(!fd.is_available(t0 + Duration::from_secs(5)));
/// fd.heartbeat(t0 + Duration::from_secs(6));
/// fd.heartbeat(t0); // out of order: ignored, and counted
/// assert_eq!(fd.counters().ignored_heartbeats, 1);
/// assert_eq!(fd.last_heartbeat(), Some(t0 + Duration::from_secs(6)));
/// ```
///
/// Available while less than `timeout` has passed since the last heartbeat;
/// suspected from `last + timeout` on. Before the first heartbeat the peer
/// is not monitored and reported available, as Akka's detectors do; call
/// [`heartbeat`](Self::heartbeat) when monitoring starts to arm the timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatDetector {
    timeout: Duration,
    last: Option<Instant>,
    counters: HeartbeatCounters,
}

/// Input a [`HeartbeatDetector`] ignored, counted. Every field only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct HeartbeatCounters {
    /// Heartbeats ignored because their `now` was earlier than the last accepted one
    /// (events fed out of order).
    pub ignored_heartbeats: u64,
}

impl HeartbeatDetector {
    /// A detector that suspects the peer `timeout` after its last
    /// heartbeat.
    ///
    /// Every timeout is valid: zero suspects the peer from the instant of
    /// each heartbeat on, and a timeout that runs past the largest
    /// representable [`Instant`] never expires.
    #[must_use]
    pub const fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            last: None,
            counters: HeartbeatCounters {
                ignored_heartbeats: 0,
            },
        }
    }

    /// Records a heartbeat that arrived at `now`, pushing the deadline to
    /// `now + timeout`.
    ///
    /// A heartbeat with `now` earlier than the last accepted one (events fed
    /// out of order) is ignored, so it cannot pull the deadline back, and is
    /// counted in [`counters`](Self::counters).
    pub fn heartbeat(&mut self, now: Instant) {
        match self.last {
            Some(last) if now < last => self.counters.ignored_heartbeats += 1,
            _ => self.last = Some(now),
        }
    }

    /// Whether the peer is considered alive at `now`: true before the first
    /// heartbeat, and while `now` is before [`poll_timeout`](Self::poll_timeout).
    #[must_use]
    pub fn is_available(&self, now: Instant) -> bool {
        match self.last {
            None => true,
            Some(_) => self.poll_timeout().is_none_or(|deadline| now < deadline),
        }
    }

    /// The instant from which the peer is suspected unless another heartbeat
    /// arrives: `last heartbeat + timeout`. `None` when there is no deadline:
    /// before the first heartbeat, or when the sum is past the largest
    /// representable [`Instant`] (the peer never times out).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.last.and_then(|last| last.checked_add(self.timeout))
    }

    /// Time since the last heartbeat at `now` (zero if `now` is earlier);
    /// `None` before the first heartbeat.
    #[must_use]
    pub fn elapsed(&self, now: Instant) -> Option<Duration> {
        self.last.map(|last| now.saturating_duration_since(last))
    }

    /// The configured timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Arrival time of the last accepted heartbeat; `None` before the first.
    #[must_use]
    pub fn last_heartbeat(&self) -> Option<Instant> {
        self.last
    }

    /// Input ignored so far (heartbeats fed out of order).
    #[must_use]
    pub fn counters(&self) -> &HeartbeatCounters {
        &self.counters
    }
}
