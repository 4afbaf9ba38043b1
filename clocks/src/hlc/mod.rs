//! Hybrid logical clocks (Kulkarni, Demirbas, Madeppa, Avva, Leone 2014,
//! "Logical Physical Clocks and Consistent Snapshots in Globally Distributed
//! Databases").
//!
//! An HLC timestamp `(l, c)` stays within a bounded distance of physical time
//! (`l` is the largest physical time the node has heard of) while capturing
//! causality like a Lamport clock: if `e` happened before `f` then
//! `ts(e) < ts(f)`. The algorithm (Figure 5) has two rules, implemented in
//! [`rules`] and shared by [`Hlc`] and [`AtomicHlc`]:
//!
//! - send or local event: `l' = max(l, pt)`; `c' = c + 1` if `l' == l`, else 0.
//! - receive of `(l_m, c_m)`: `l' = max(l, l_m, pt)`; `c'` is
//!   `max(c, c_m) + 1`, `c + 1`, `c_m + 1` or 0 depending on which of `l`,
//!   `l_m`, `pt` gave `l'`.
//!
//! Two guards make it safe to run against untrusted peers and finite bits:
//! a remote timestamp more than `max_offset` ahead of the local physical
//! clock is rejected (CockroachDB's rule; otherwise one bad clock drags every
//! node's `l` into the future), and a logical counter that would pass 65535
//! is an error rather than a wrap.

mod atomic;
mod timestamp;

use core::time::Duration;

pub use atomic::AtomicHlc;
pub use timestamp::{MAX_MILLIS, ParseTimestampError, Timestamp, TimestampRangeError};

use crate::config::HlcConfigError;
use crate::physical::{PhysicalClock, WallTime};

/// How far ahead of the local physical clock a remote timestamp may be
/// before it is rejected, unless configured otherwise (CockroachDB's default).
pub const DEFAULT_MAX_OFFSET: Duration = Duration::from_millis(500);

/// Settings of an [`Hlc`] or [`AtomicHlc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct HlcConfig {
    /// The largest clock offset between nodes that is tolerated: a remote
    /// timestamp whose `l` exceeds the local physical time by more than this
    /// is rejected by `update`. Must be at most [`MAX_MILLIS`] milliseconds;
    /// zero accepts no remote time ahead of ours. Default: 500 ms.
    pub max_offset: Duration,
}

impl Default for HlcConfig {
    fn default() -> Self {
        Self {
            max_offset: DEFAULT_MAX_OFFSET,
        }
    }
}

impl HlcConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`HlcConfigError::MaxOffsetTooLarge`] if `max_offset` exceeds
    /// [`MAX_MILLIS`] milliseconds.
    pub fn validate(&self) -> Result<(), HlcConfigError> {
        self.max_offset_millis().map(|_| ())
    }

    fn max_offset_millis(&self) -> Result<u64, HlcConfigError> {
        u64::try_from(self.max_offset.as_millis())
            .ok()
            .filter(|ms| *ms <= MAX_MILLIS)
            .ok_or(HlcConfigError::MaxOffsetTooLarge {
                max_offset: self.max_offset,
            })
    }
}

/// Why `now()` gave no timestamp. The clock is unchanged.
///
/// (A physical reading cannot be out of range: every [`WallTime`] fits a
/// timestamp's 48 bits of milliseconds.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NowError {
    /// The clock is at `c = 65535` in a millisecond the physical clock has
    /// not yet passed: 65,536 events in one millisecond, or a clock running
    /// ahead of physical time. Retry once the physical clock moves past
    /// `millis`. State: the clock is unchanged.
    #[error(
        "logical counter overflow at {millis} ms: retry when the physical clock passes it (clock unchanged)"
    )]
    LogicalOverflow {
        /// The `l` whose counter is exhausted.
        millis: u64,
    },
}

/// Why `update(remote)` was refused. The clock is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The remote timestamp is more than `max_offset` ahead of the local
    /// physical clock: the sender's clock (or ours) is broken, or the message
    /// is forged. Drop the message; do not apply it. State: the clock is
    /// unchanged.
    #[error(
        "remote timestamp {remote} is {} ms ahead of the physical clock ({} ms), over max_offset {} ms (clock unchanged)",
        remote.millis().saturating_sub(physical.as_millis()),
        physical.as_millis(),
        max_offset.as_millis()
    )]
    RemoteTooFarAhead {
        /// The rejected timestamp.
        remote: Timestamp,
        /// The local physical time it was compared with.
        physical: WallTime,
        /// The configured bound.
        max_offset: Duration,
    },
    /// See [`NowError::LogicalOverflow`]. State: the clock is unchanged.
    #[error(
        "logical counter overflow at {millis} ms: retry when the physical clock passes it (clock unchanged)"
    )]
    LogicalOverflow {
        /// The `l` whose counter is exhausted.
        millis: u64,
    },
}

impl From<NowError> for UpdateError {
    fn from(e: NowError) -> Self {
        match e {
            NowError::LogicalOverflow { millis } => Self::LogicalOverflow { millis },
        }
    }
}

/// The paper's two rules on packed timestamps, free of any clock or memory
/// model so that [`Hlc`] and [`AtomicHlc`] share them exactly.
///
/// With `(l, c)` packed as `l << 16 | c` the rules collapse to integer
/// arithmetic: "`l' = pt`, `c' = 0`" is `pt << 16`, "keep `l`, `c + 1`" is
/// `+ 1`, and choosing by which of `l`, `l_m`, `pt` is largest is `max`.
pub(crate) mod rules {
    use super::{NowError, Timestamp, UpdateError, WallTime};
    use core::time::Duration;

    /// Send or local event (Figure 5, "send or local event"), with `pt` the
    /// physical time `now` in milliseconds.
    #[inline]
    pub(crate) fn local(last: Timestamp, now: WallTime) -> Result<Timestamp, NowError> {
        successor(last, now.as_millis())
    }

    /// Receive event of `remote` (Figure 5, "receive event of message m"),
    /// after the max-offset check.
    #[inline]
    pub(crate) fn receive(
        last: Timestamp,
        remote: Timestamp,
        now: WallTime,
        max_offset_millis: u64,
        max_offset: Duration,
    ) -> Result<Timestamp, UpdateError> {
        let pt_millis = now.as_millis();
        if remote.millis() > pt_millis.saturating_add(max_offset_millis) {
            return Err(UpdateError::RemoteTooFarAhead {
                remote,
                physical: now,
                max_offset,
            });
        }
        Ok(successor(last.max(remote), pt_millis)?)
    }

    // Every `WallTime` (u64 nanoseconds) is within a timestamp's 48 bits of
    // milliseconds, so a physical reading never needs a range check.
    const _: () = assert!(WallTime::MAX.as_millis() <= super::MAX_MILLIS);

    /// `max((pt, 0), base + 1)`: `(pt, 0)` if physical time passed `base.l`,
    /// else `base` with `c + 1`. Every [`WallTime`] is within
    /// [`MAX_MILLIS`](super::MAX_MILLIS) milliseconds, so `(pt, 0)` exists.
    #[inline]
    fn successor(base: Timestamp, pt_millis: u64) -> Result<Timestamp, NowError> {
        let wall = Timestamp::at_wall(pt_millis);
        if wall > base {
            Ok(wall)
        } else if base.logical_exhausted() {
            Err(NowError::LogicalOverflow {
                millis: base.millis(),
            })
        } else {
            Ok(base.next_logical())
        }
    }
}

/// A hybrid logical clock owned by one thread (`&mut self`). For a clock
/// shared between threads, use [`AtomicHlc`].
///
/// ```
/// use dsys_clocks::{Hlc, ManualClock, UpdateError, WallTime};
///
/// let pt = ManualClock::new(WallTime::from_millis(10_000));
/// let mut hlc = Hlc::new(&pt);
/// let a = hlc.now()?;                       // 10000,0
/// let b = hlc.now()?;                       // 10000,1: same ms, next c
/// assert!(a < b);
///
/// // A message from a node whose clock is 200 ms ahead: l jumps forward.
/// let remote = "10200,4".parse()?;
/// let c = hlc.update(remote)?;
/// assert_eq!(c.to_string(), "10200,5");
///
/// // 2 s ahead is past the default 500 ms max offset: rejected, unchanged.
/// let err = hlc.update("12000,0".parse()?).unwrap_err();
/// assert!(matches!(err, UpdateError::RemoteTooFarAhead { .. }));
/// assert_eq!(hlc.last(), c);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Not `Clone`: two copies of one clock would issue the same timestamps.
#[derive(Debug)]
pub struct Hlc<C> {
    clock: C,
    last: Timestamp,
    config: HlcConfig,
    max_offset_millis: u64,
}

impl<C: PhysicalClock> Hlc<C> {
    /// A clock reading physical time from `clock`, with the default
    /// [`HlcConfig`].
    pub fn new(clock: C) -> Self {
        let config = HlcConfig::default();
        Self {
            clock,
            last: Timestamp::ZERO,
            max_offset_millis: config
                .max_offset_millis()
                .expect("the default max_offset is 500 ms, well within 48 bits"),
            config,
        }
    }

    /// A clock with explicit settings.
    ///
    /// # Errors
    /// [`HlcConfigError`] if `config` is invalid.
    pub fn with_config(clock: C, config: HlcConfig) -> Result<Self, HlcConfigError> {
        Ok(Self {
            clock,
            last: Timestamp::ZERO,
            max_offset_millis: config.max_offset_millis()?,
            config,
        })
    }

    /// Continues after `last`, e.g. the highest timestamp persisted before a
    /// restart: every later timestamp is greater, even if the physical clock
    /// went back while the node was down.
    #[must_use]
    pub fn resumed_after(mut self, last: Timestamp) -> Self {
        self.last = last;
        self
    }

    /// Timestamps a local or send event.
    ///
    /// # Errors
    /// [`NowError`]; the clock is unchanged.
    pub fn now(&mut self) -> Result<Timestamp, NowError> {
        self.now_at(self.clock.now())
    }

    /// [`now`](Self::now) with the physical time `now` given by the caller
    /// instead of read from the clock (sans-IO form, for simulations).
    ///
    /// # Errors
    /// [`NowError`]; the clock is unchanged.
    pub fn now_at(&mut self, now: WallTime) -> Result<Timestamp, NowError> {
        self.last = rules::local(self.last, now)?;
        Ok(self.last)
    }

    /// Timestamps the receipt of a message stamped `remote`; the result is
    /// greater than both `remote` and every earlier timestamp of this clock.
    ///
    /// # Errors
    /// [`UpdateError`]; the clock is unchanged.
    pub fn update(&mut self, remote: Timestamp) -> Result<Timestamp, UpdateError> {
        self.update_at(remote, self.clock.now())
    }

    /// [`update`](Self::update) with the physical time `now` given by the
    /// caller.
    ///
    /// # Errors
    /// [`UpdateError`]; the clock is unchanged.
    pub fn update_at(
        &mut self,
        remote: Timestamp,
        now: WallTime,
    ) -> Result<Timestamp, UpdateError> {
        self.last = rules::receive(
            self.last,
            remote,
            now,
            self.max_offset_millis,
            self.config.max_offset,
        )?;
        Ok(self.last)
    }

    /// The latest timestamp issued (`0,0` before the first event).
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// The settings.
    pub fn config(&self) -> &HlcConfig {
        &self.config
    }

    /// The physical clock.
    pub fn physical_clock(&self) -> &C {
        &self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(millis: u64, logical: u16) -> Timestamp {
        Timestamp::new(millis, logical).unwrap()
    }

    /// Every branch of Figure 5, as a table: (last, remote, pt) -> expected.
    #[test]
    fn receive_rule_table() {
        let cases = [
            // pt largest: (pt, 0)
            (ts(5, 3), ts(6, 9), 7, ts(7, 0)),
            // l == l_m largest: max(c, c_m) + 1
            (ts(9, 3), ts(9, 7), 7, ts(9, 8)),
            (ts(9, 8), ts(9, 2), 9, ts(9, 9)),
            // l largest: c + 1
            (ts(9, 3), ts(8, 7), 7, ts(9, 4)),
            // l_m largest: c_m + 1
            (ts(8, 3), ts(9, 7), 7, ts(9, 8)),
            // pt ties with l_m: l_m rule, not reset
            (ts(8, 3), ts(9, 7), 9, ts(9, 8)),
        ];
        for (last, remote, pt, expected) in cases {
            let got = rules::receive(
                last,
                remote,
                WallTime::from_millis(pt),
                500,
                DEFAULT_MAX_OFFSET,
            )
            .unwrap();
            assert_eq!(got, expected, "last {last} remote {remote} pt {pt}");
        }
    }

    #[test]
    fn local_rule_table() {
        let cases = [
            (ts(5, 3), 7, ts(7, 0)),
            (ts(7, 3), 7, ts(7, 4)),
            // pt == l with c == 0: still c + 1, never a repeat of (pt, 0)
            (ts(7, 0), 7, ts(7, 1)),
            (ts(9, 3), 7, ts(9, 4)),
        ];
        for (last, pt, expected) in cases {
            assert_eq!(
                rules::local(last, WallTime::from_millis(pt)).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn offset_boundary_is_inclusive() {
        let ok = rules::receive(
            Timestamp::ZERO,
            ts(1_500, 0),
            WallTime::from_millis(1_000),
            500,
            DEFAULT_MAX_OFFSET,
        );
        assert_eq!(ok, Ok(ts(1_500, 1)));
        let too_far = rules::receive(
            Timestamp::ZERO,
            ts(1_501, 0),
            WallTime::from_millis(1_000),
            500,
            DEFAULT_MAX_OFFSET,
        );
        assert!(matches!(
            too_far,
            Err(UpdateError::RemoteTooFarAhead { .. })
        ));
    }
}
