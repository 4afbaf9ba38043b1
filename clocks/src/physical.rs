//! Physical time sources, injected into the clocks that need one.
//!
//! The clocks in this crate never read the time themselves: a hybrid logical
//! clock or an interval clock is built around a [`PhysicalClock`] the caller
//! chooses. [`SystemClock`] reads the operating system, [`ManualClock`] is
//! set by hand (tests, simulations), and `CoarseClock` (feature
//! `coarsetime`) reads a cached time that the application refreshes.

use core::time::Duration;

use crate::loom::{AtomicU64, Ordering};

const NANOS_PER_MILLI: u64 = 1_000_000;

/// A source of physical (wall-clock) time.
///
/// Implementations should be cheap: an HLC reads its clock on every event.
/// They need not be monotonic; the HLC stays monotonic when the physical
/// clock steps back (its `l` then runs ahead until physical time catches up).
pub trait PhysicalClock {
    /// Nanoseconds since the Unix epoch.
    fn unix_nanos(&self) -> u64;

    /// Milliseconds since the Unix epoch. Override when the source can give
    /// milliseconds more cheaply than by division.
    fn unix_millis(&self) -> u64 {
        self.unix_nanos() / NANOS_PER_MILLI
    }
}

impl<C: PhysicalClock + ?Sized> PhysicalClock for &C {
    fn unix_nanos(&self) -> u64 {
        (**self).unix_nanos()
    }
    fn unix_millis(&self) -> u64 {
        (**self).unix_millis()
    }
}

impl<C: PhysicalClock + ?Sized> PhysicalClock for std::sync::Arc<C> {
    fn unix_nanos(&self) -> u64 {
        (**self).unix_nanos()
    }
    fn unix_millis(&self) -> u64 {
        (**self).unix_millis()
    }
}

/// The operating system's real-time clock (`CLOCK_REALTIME`, the clock
/// `std::time::SystemTime` reads).
///
/// On Unix it calls `clock_gettime` through `rustix`, which jumps straight
/// into the kernel's vDSO: the same clock as `SystemTime::now()`, read about
/// 10 ns faster on the benchmark machine (24.7 ns against 34 ns in a plain
/// 20 M-call loop; 22.5 ns in the criterion harness, see `BENCHMARKS.md`).
/// An HLC reads its clock on every event, so that is most of its cost.
/// Elsewhere it uses `SystemTime`.
///
/// A time before the Unix epoch reads as 0, one past the year 2554 as
/// `u64::MAX` nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// Seconds and nanoseconds since the Unix epoch. The one place the crate
    /// reads the OS clock, on behalf of a caller who chose `SystemClock`.
    #[cfg(unix)]
    #[inline]
    fn since_epoch() -> (u64, u32) {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        match (u64::try_from(now.tv_sec), u32::try_from(now.tv_nsec)) {
            (Ok(secs), Ok(nanos)) => (secs, nanos),
            _ => (0, 0), // before the epoch
        }
    }

    #[cfg(not(unix))]
    #[inline]
    fn since_epoch() -> (u64, u32) {
        let now = std::time::SystemTime::now(); // SystemClock: the OS clock the caller chose
        let since = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        (since.as_secs(), since.subsec_nanos())
    }
}

impl PhysicalClock for SystemClock {
    #[inline]
    fn unix_nanos(&self) -> u64 {
        let (secs, nanos) = Self::since_epoch();
        secs.saturating_mul(1_000_000_000)
            .saturating_add(u64::from(nanos))
    }

    #[inline]
    fn unix_millis(&self) -> u64 {
        let (secs, nanos) = Self::since_epoch();
        secs.saturating_mul(1000)
            .saturating_add(u64::from(nanos) / 1_000_000)
    }
}

/// A clock that moves only when told to: for tests and deterministic
/// simulations. Shareable by reference or `Arc`, so several logical clocks
/// can read one manual time (or each node its own, skewed).
///
/// ```
/// use dsys_clocks::{ManualClock, PhysicalClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::from_millis(1_000);
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(clock.unix_millis(), 1_005);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock reading `nanos` since the epoch.
    pub fn from_nanos(nanos: u64) -> Self {
        Self {
            nanos: AtomicU64::new(nanos),
        }
    }

    /// A clock reading `millis` since the epoch.
    pub fn from_millis(millis: u64) -> Self {
        Self::from_nanos(millis.saturating_mul(NANOS_PER_MILLI))
    }

    /// Sets the reading to `nanos` (backwards too: real clocks step back).
    pub fn set_nanos(&self, nanos: u64) {
        self.nanos.store(nanos, Ordering::Release);
    }

    /// Sets the reading to `millis`.
    pub fn set_millis(&self, millis: u64) {
        self.set_nanos(millis.saturating_mul(NANOS_PER_MILLI));
    }

    /// Moves the reading forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = crate::loom::advance(&self.nanos, |now| {
            Ok::<_, core::convert::Infallible>(now.saturating_add(by))
        });
    }
}

impl PhysicalClock for ManualClock {
    fn unix_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }
}

/// A physical clock that reads a cached wall time instead of asking the OS:
/// one relaxed atomic load (crate `coarsetime`, `Clock::recent_since_epoch`).
///
/// The cache only moves when the application refreshes it, so its
/// resolution is the refresh period. You MUST keep it fresh, either by
/// calling `coarsetime::Clock::update()` from your event loop or by starting
/// `coarsetime::Updater::new(period_ms).start()`. This crate starts no thread.
/// [`CoarseClock::new`] refreshes it once so a new clock never reads 0.
///
/// A coarse clock trades resolution for speed: within one refresh period
/// every HLC timestamp shares one `l` and counts up in `c`, and `c` holds
/// 65,536 values per millisecond.
#[cfg(feature = "coarsetime")]
#[cfg_attr(docsrs, doc(cfg(feature = "coarsetime")))]
#[derive(Debug, Clone, Copy)]
pub struct CoarseClock(());

#[cfg(feature = "coarsetime")]
impl CoarseClock {
    /// A coarse clock; refreshes the shared cache once.
    pub fn new() -> Self {
        coarsetime::Clock::update();
        Self(())
    }
}

#[cfg(feature = "coarsetime")]
impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "coarsetime")]
impl PhysicalClock for CoarseClock {
    fn unix_nanos(&self) -> u64 {
        coarsetime::Clock::recent_since_epoch().as_nanos()
    }
    fn unix_millis(&self) -> u64 {
        coarsetime::Clock::recent_since_epoch().as_millis()
    }
}
