//! A TrueTime-style interval clock (Corbett et al. 2012, "Spanner: Google's
//! Globally-Distributed Database", §3 TrueTime and §4.1.2 commit wait).
//!
//! Instead of pretending to know the exact time, the clock answers with an
//! interval `[earliest, latest]` guaranteed to contain it. The half-width ε
//! follows Spanner's model: it is smallest right after the node synchronises
//! with its time masters and grows with the assumed worst-case oscillator
//! drift until the next sync (§3: "a sawtooth function of time", with an
//! applied drift of 200 µs/s). Commit wait turns that uncertainty into
//! external consistency: a transaction picks `s >= now().latest` and does not
//! make its writes visible until `after(s)` holds, so any transaction that
//! starts later gets a larger timestamp.
//!
//! The clock does not sleep: [`IntervalClock::commit_wait`] says how long the
//! caller should wait, and the caller waits however its runtime does.

use core::time::Duration;

use crate::config::UncertaintyConfigError;
use crate::physical::{PhysicalClock, WallTime, duration_nanos};

const PPM: u128 = 1_000_000;

/// An interval of physical time that contains the true time (TrueTime's
/// `TTinterval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "UncheckedInterval"))]
pub struct TimeInterval {
    /// The true time is at least this.
    pub earliest: WallTime,
    /// The true time is at most this.
    pub latest: WallTime,
}

/// A deserialized interval before the `earliest <= latest` check.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct UncheckedInterval {
    earliest: WallTime,
    latest: WallTime,
}

#[cfg(feature = "serde")]
impl TryFrom<UncheckedInterval> for TimeInterval {
    type Error = &'static str;

    fn try_from(raw: UncheckedInterval) -> Result<Self, Self::Error> {
        if raw.earliest > raw.latest {
            return Err("interval with earliest > latest");
        }
        Ok(Self {
            earliest: raw.earliest,
            latest: raw.latest,
        })
    }
}

impl TimeInterval {
    /// Whether `t` lies in the interval.
    pub fn contains(&self, t: WallTime) -> bool {
        (self.earliest..=self.latest).contains(&t)
    }

    /// `latest - earliest`: twice the uncertainty ε.
    pub fn width(&self) -> Duration {
        self.latest.saturating_duration_since(self.earliest)
    }
}

/// How uncertain the clock is: `ε(t) = base + drift_ppm × (t - last sync)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Uncertainty {
    /// ε right after a sync: the time master's own error plus the
    /// round-trip to it. Spanner: about 1 ms. Must be at most
    /// [`Uncertainty::MAX_BASE`] (one hour).
    pub base: Duration,
    /// Worst-case oscillator drift in parts per million (µs per second)
    /// since the last sync. Spanner applies 200. Must be below 1,000,000.
    pub drift_ppm: u32,
}

impl Default for Uncertainty {
    /// Spanner's figures: 1 ms after a sync, growing 200 µs per second.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(1),
            drift_ppm: 200,
        }
    }
}

impl Uncertainty {
    /// The largest `base` [`validate`](Self::validate) accepts: one hour.
    /// ntpd already gives up on a clock more than 1000 s off (its panic
    /// threshold), so a larger error right after a sync means the clock is
    /// not synchronised at all; the bound also keeps `base` far from the
    /// ends of [`WallTime`].
    pub const MAX_BASE: Duration = Duration::from_secs(60 * 60);

    /// A constant ε (no drift): for tests and for sources that report their
    /// own bound.
    pub fn fixed(epsilon: Duration) -> Self {
        Self {
            base: epsilon,
            drift_ppm: 0,
        }
    }

    /// ε that grows from `base` at `drift_ppm`.
    pub fn drifting(base: Duration, drift_ppm: u32) -> Self {
        Self { base, drift_ppm }
    }

    /// Checks the settings. ε may still grow past `base` through drift; it
    /// saturates at the ends of [`WallTime`], where commit wait is
    /// [`Duration::MAX`].
    ///
    /// # Errors
    /// - [`UncertaintyConfigError::BaseTooLarge`] if `base` exceeds
    ///   [`Uncertainty::MAX_BASE`].
    /// - [`UncertaintyConfigError::DriftTooLarge`] if `drift_ppm >= 1_000_000` (the clock
    ///   would lose track of time faster than time passes).
    pub fn validate(&self) -> Result<(), UncertaintyConfigError> {
        if self.base > Self::MAX_BASE {
            return Err(UncertaintyConfigError::BaseTooLarge { base: self.base });
        }
        if u128::from(self.drift_ppm) >= PPM {
            return Err(UncertaintyConfigError::DriftTooLarge {
                drift_ppm: self.drift_ppm,
            });
        }
        Ok(())
    }
}

/// A TrueTime-style clock: physical time with an explicit error bound.
///
/// ```
/// use dsys_clocks::{IntervalClock, ManualClock, Uncertainty, WallTime};
/// use std::time::Duration;
///
/// let pt = ManualClock::new(WallTime::from_millis(1_000));
/// let tt = IntervalClock::new(&pt, Uncertainty::fixed(Duration::from_millis(4)))?;
///
/// // Spanner commit: pick s >= TT.now().latest, then wait until TT.after(s).
/// let s = tt.now().latest;
/// let wait = tt.commit_wait(s);
/// assert_eq!(wait, Duration::from_nanos(8_000_001)); // 2ε, plus 1 ns to pass s
/// assert!(!tt.after(s));
/// pt.advance(wait);
/// assert!(tt.after(s));
/// # Ok::<(), dsys_clocks::UncertaintyConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct IntervalClock<C> {
    clock: C,
    uncertainty: Uncertainty,
    base_nanos: u64,
    synced_at: WallTime,
}

impl<C: PhysicalClock> IntervalClock<C> {
    /// An interval clock over `clock`, counted as synchronised now.
    ///
    /// # Errors
    /// [`UncertaintyConfigError`] if `uncertainty` is invalid.
    pub fn new(clock: C, uncertainty: Uncertainty) -> Result<Self, UncertaintyConfigError> {
        uncertainty.validate()?;
        let synced_at = clock.now();
        Ok(Self {
            clock,
            base_nanos: duration_nanos(uncertainty.base),
            uncertainty,
            synced_at,
        })
    }

    /// Records that the physical clock was just synchronised: ε drops back
    /// to `base`. Call it when your time daemon reports a successful sync.
    pub fn on_synced(&mut self) {
        self.on_synced_at(self.clock.now());
    }

    /// [`on_synced`](Self::on_synced) at a caller-given time `now`.
    pub fn on_synced_at(&mut self, now: WallTime) {
        self.synced_at = now;
    }

    /// The uncertainty model.
    pub fn uncertainty(&self) -> Uncertainty {
        self.uncertainty
    }

    /// ε at physical time `now`.
    pub fn epsilon_at(&self, now: WallTime) -> Duration {
        Duration::from_nanos(self.epsilon_nanos(now))
    }

    /// `TT.now()`: an interval containing the true time.
    pub fn now(&self) -> TimeInterval {
        self.interval_at(self.clock.now())
    }

    /// The interval for a caller-given physical reading `now`.
    pub fn interval_at(&self, now: WallTime) -> TimeInterval {
        let epsilon = self.epsilon_nanos(now);
        TimeInterval {
            earliest: WallTime::from_nanos(now.as_nanos().saturating_sub(epsilon)),
            latest: WallTime::from_nanos(now.as_nanos().saturating_add(epsilon)),
        }
    }

    /// `TT.after(t)`: `t` has definitely passed.
    pub fn after(&self, t: WallTime) -> bool {
        self.after_at(t, self.clock.now())
    }

    /// `TT.before(t)`: `t` has definitely not arrived yet.
    pub fn before(&self, t: WallTime) -> bool {
        self.before_at(t, self.clock.now())
    }

    /// [`after`](Self::after) at a caller-given physical time `now`.
    pub fn after_at(&self, t: WallTime, now: WallTime) -> bool {
        t < self.interval_at(now).earliest
    }

    /// [`before`](Self::before) at a caller-given physical time `now`.
    pub fn before_at(&self, t: WallTime, now: WallTime) -> bool {
        t > self.interval_at(now).latest
    }

    /// How long to wait before `after(s)` holds (zero if it already does):
    /// Spanner's commit wait for a transaction with timestamp `s`. It accounts
    /// for ε growing while the caller waits; a sync in the meantime only
    /// shrinks ε, so the wait stays sufficient.
    pub fn commit_wait(&self, s: WallTime) -> Duration {
        self.commit_wait_at(s, self.clock.now())
    }

    /// [`commit_wait`](Self::commit_wait) from a caller-given physical time
    /// `now`. `Duration::MAX` if `after(s)` can never hold (`s` within ε of
    /// the end of time).
    pub fn commit_wait_at(&self, s: WallTime, now: WallTime) -> Duration {
        // `after_at(s, t)` only turns from false to true as `t` grows
        // (earliest(t) never decreases), so the exact wait is the first `t`
        // where it holds: a binary search, at most 64 probes, with no
        // assumption about where ε's growth or clamping puts it.
        if self.after_at(s, now) {
            return Duration::ZERO;
        }
        if !self.after_at(s, WallTime::MAX) {
            return Duration::MAX;
        }
        let (mut never, mut holds) = (now.as_nanos(), u64::MAX);
        while holds - never > 1 {
            let mid = never + (holds - never) / 2;
            if self.after_at(s, WallTime::from_nanos(mid)) {
                holds = mid;
            } else {
                never = mid;
            }
        }
        Duration::from_nanos(holds - now.as_nanos())
    }

    /// The physical clock.
    pub fn physical_clock(&self) -> &C {
        &self.clock
    }

    fn epsilon_nanos(&self, now: WallTime) -> u64 {
        let since_sync = u128::from(now.as_nanos().saturating_sub(self.synced_at.as_nanos()));
        let drift = since_sync * u128::from(self.uncertainty.drift_ppm) / PPM;
        self.base_nanos
            .saturating_add(u64::try_from(drift).unwrap_or(u64::MAX))
    }
}
