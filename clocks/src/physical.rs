//! Physical time sources, injected into the clocks that need one.
//!
//! The clocks in this crate never read the time themselves: a hybrid logical
//! clock or an interval clock is built around a [`PhysicalClock`] the caller
//! chooses. [`SystemClock`] reads the operating system, [`ManualClock`] is
//! set by hand (tests, simulations), and `CoarseClock` (feature
//! `coarsetime`) reads a cached time that the application refreshes.

use core::fmt;
use core::time::Duration;

use crate::loom::{AtomicU64, Ordering};

const NANOS_PER_MILLI: u64 = 1_000_000;

/// Wall-clock (physical) time: nanoseconds since the Unix epoch, the one
/// type in which this crate takes and reports physical time.
///
/// A [`PhysicalClock`] reads one, the `*_at` forms of [`Hlc`](crate::Hlc),
/// [`AtomicHlc`](crate::AtomicHlc) and [`IntervalClock`](crate::IntervalClock)
/// take one, and a [`TimeInterval`](crate::TimeInterval) is two. An HLC uses
/// its [`as_millis`](Self::as_millis) (the paper's `pt`, §6.2: milliseconds),
/// an interval clock the full nanoseconds (ε is a few milliseconds and commit
/// wait is exact to the nanosecond). `u64` nanoseconds last until the year
/// 2554; every reading therefore fits an HLC timestamp's 48 bits of
/// milliseconds (good until the year 10889).
///
/// Like `CLOCK_REALTIME`, it may step back; nothing in this crate assumes it
/// is monotonic. Durations between readings are [`Duration`]s.
///
/// ```
/// use dsys_clocks::WallTime;
/// use std::time::Duration;
///
/// let t = WallTime::from_millis(1_700_000_000_123);
/// assert_eq!(t.as_nanos(), 1_700_000_000_123_000_000);
/// assert_eq!((t + Duration::from_micros(999)).as_millis(), 1_700_000_000_123);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct WallTime(u64);

impl WallTime {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Self = Self(0);
    /// The latest representable time, in the year 2554.
    pub const MAX: Self = Self(u64::MAX);

    /// `nanos` nanoseconds after the Unix epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// `millis` milliseconds after the Unix epoch, saturating at
    /// [`MAX`](Self::MAX).
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(NANOS_PER_MILLI))
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the Unix epoch (rounded down): an HLC's `pt`.
    pub const fn as_millis(self) -> u64 {
        self.0 / NANOS_PER_MILLI
    }

    /// `self + by`, or [`MAX`](Self::MAX) if that is later.
    #[must_use]
    pub fn saturating_add(self, by: Duration) -> Self {
        Self(self.0.saturating_add(duration_nanos(by)))
    }

    /// `self - by`, or [`UNIX_EPOCH`](Self::UNIX_EPOCH) if that is earlier.
    #[must_use]
    pub fn saturating_sub(self, by: Duration) -> Self {
        Self(self.0.saturating_sub(duration_nanos(by)))
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// Saturating, like [`WallTime::saturating_add`].
impl core::ops::Add<Duration> for WallTime {
    type Output = Self;

    fn add(self, by: Duration) -> Self {
        self.saturating_add(by)
    }
}

/// Saturating, like [`WallTime::saturating_sub`].
impl core::ops::Sub<Duration> for WallTime {
    type Output = Self;

    fn sub(self, by: Duration) -> Self {
        self.saturating_sub(by)
    }
}

impl fmt::Debug for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WallTime({self})")
    }
}

/// Seconds since the Unix epoch with nine decimals, e.g. `1700000000.123000000`.
impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX`.
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A source of physical (wall-clock) time.
///
/// Implementations should be cheap: an HLC reads its clock on every event.
/// They need not be monotonic; the HLC stays monotonic when the physical
/// clock steps back (its `l` then runs ahead until physical time catches up).
pub trait PhysicalClock {
    /// The current wall-clock time.
    fn now(&self) -> WallTime;
}

impl<C: PhysicalClock + ?Sized> PhysicalClock for &C {
    fn now(&self) -> WallTime {
        (**self).now()
    }
}

impl<C: PhysicalClock + ?Sized> PhysicalClock for std::sync::Arc<C> {
    fn now(&self) -> WallTime {
        (**self).now()
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
/// A time before the Unix epoch reads as [`WallTime::UNIX_EPOCH`], one past
/// the year 2554 as [`WallTime::MAX`].
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
    fn now(&self) -> WallTime {
        let (secs, nanos) = Self::since_epoch();
        WallTime(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(u64::from(nanos)),
        )
    }
}

/// A clock that moves only when told to: for tests and deterministic
/// simulations. Shareable by reference or `Arc`, so several logical clocks
/// can read one manual time (or each node its own, skewed).
///
/// ```
/// use dsys_clocks::{ManualClock, PhysicalClock, WallTime};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(WallTime::from_millis(1_000));
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(clock.now(), WallTime::from_millis(1_005));
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock reading `now`.
    pub fn new(now: WallTime) -> Self {
        Self {
            nanos: AtomicU64::new(now.as_nanos()),
        }
    }

    /// Sets the reading to `now` (backwards too: real clocks step back).
    pub fn set(&self, now: WallTime) {
        self.nanos.store(now.as_nanos(), Ordering::Release);
    }

    /// Moves the reading forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let by = duration_nanos(by);
        let _ = crate::loom::advance(&self.nanos, |now| {
            Ok::<_, core::convert::Infallible>(now.saturating_add(by))
        });
    }
}

impl PhysicalClock for ManualClock {
    fn now(&self) -> WallTime {
        WallTime(self.nanos.load(Ordering::Acquire))
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
    fn now(&self) -> WallTime {
        WallTime(coarsetime::Clock::recent_since_epoch().as_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_units_and_saturation() {
        let t = WallTime::from_millis(1_700_000_000_123);
        assert_eq!(t.as_millis(), 1_700_000_000_123);
        assert_eq!(
            WallTime::from_nanos(1_999_999).as_millis(),
            1,
            "rounds down"
        );
        assert_eq!(WallTime::from_millis(u64::MAX), WallTime::MAX);
        assert_eq!(WallTime::MAX + Duration::from_nanos(1), WallTime::MAX);
        assert_eq!(
            WallTime::UNIX_EPOCH - Duration::from_nanos(1),
            WallTime::UNIX_EPOCH
        );
        assert_eq!(WallTime::MAX + Duration::MAX, WallTime::MAX);
        assert_eq!(
            (t + Duration::from_millis(5)).saturating_duration_since(t),
            Duration::from_millis(5)
        );
        assert_eq!(
            WallTime::UNIX_EPOCH.saturating_duration_since(t),
            Duration::ZERO
        );
        assert_eq!(t.to_string(), "1700000000.123000000");
        assert_eq!(format!("{t:?}"), "WallTime(1700000000.123000000)");
    }

    #[test]
    fn manual_clock_reads_what_it_was_set_to() {
        let clock = ManualClock::new(WallTime::from_millis(10));
        clock.advance(Duration::from_micros(1));
        assert_eq!(clock.now(), WallTime::from_nanos(10_001_000));
        clock.set(WallTime::from_millis(3));
        assert_eq!(clock.now(), WallTime::from_millis(3), "steps back too");
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), WallTime::MAX);
    }
}
