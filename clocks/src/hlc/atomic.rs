//! A hybrid logical clock shared between threads.

use super::{HlcConfig, NowError, Timestamp, UpdateError, rules};
use crate::config::HlcConfigError;
use crate::loom::{AtomicU64, Ordering};
use crate::physical::{PhysicalClock, WallTime};

/// A hybrid logical clock usable from many threads through `&self`.
///
/// The whole clock state is one packed [`Timestamp`] in an `AtomicU64`; each
/// event reads the physical clock once, computes the paper's rule on the
/// value it loaded, and publishes the result with a compare-and-swap,
/// retrying on the fresh value if another thread got in first. No lock, and
/// the same rules as [`Hlc`](crate::Hlc). Checked with loom
/// (`tests/loom.rs`): concurrent `now()` calls never return equal
/// timestamps, each thread's timestamps strictly increase, and `update`
/// never moves the clock backwards.
///
/// ```
/// use dsys_clocks::{AtomicHlc, SystemClock};
/// use std::sync::Arc;
///
/// let hlc = Arc::new(AtomicHlc::new(SystemClock));
/// let workers: Vec<_> = (0..2)
///     .map(|_| {
///         let hlc = Arc::clone(&hlc);
///         std::thread::spawn(move || (0..1000).map(|_| hlc.now().unwrap()).collect::<Vec<_>>())
///     })
///     .collect();
/// let mut all: Vec<_> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
/// all.sort();
/// all.dedup();
/// assert_eq!(all.len(), 2000);
/// ```
#[derive(Debug)]
pub struct AtomicHlc<C> {
    clock: C,
    last: AtomicU64,
    config: HlcConfig,
    max_offset_millis: u64,
}

impl<C: PhysicalClock> AtomicHlc<C> {
    /// A shared clock with the default [`HlcConfig`].
    pub fn new(clock: C) -> Self {
        Self::with_config(clock, HlcConfig::default())
            .expect("the default max_offset is 500 ms, well within 48 bits")
    }

    /// A shared clock with explicit settings.
    ///
    /// # Errors
    /// [`HlcConfigError`] if `config` is invalid.
    pub fn with_config(clock: C, config: HlcConfig) -> Result<Self, HlcConfigError> {
        Ok(Self {
            clock,
            last: AtomicU64::new(Timestamp::ZERO.to_u64()),
            max_offset_millis: config.max_offset_millis()?,
            config,
        })
    }

    /// Continues after `last` (see [`Hlc::resumed_after`](crate::Hlc::resumed_after)).
    #[must_use]
    pub fn resumed_after(self, last: Timestamp) -> Self {
        self.last.store(last.to_u64(), Ordering::Release);
        self
    }

    /// Timestamps a local or send event; unique among all calls on this clock.
    ///
    /// # Errors
    /// [`NowError`]; the clock is unchanged.
    pub fn now(&self) -> Result<Timestamp, NowError> {
        self.now_at(self.clock.now())
    }

    /// [`now`](Self::now) at a caller-given physical time `now`.
    ///
    /// # Errors
    /// [`NowError`]; the clock is unchanged.
    pub fn now_at(&self, now: WallTime) -> Result<Timestamp, NowError> {
        self.advance(|last| rules::local(last, now))
    }

    /// Timestamps the receipt of a message stamped `remote`.
    ///
    /// # Errors
    /// [`UpdateError`]; the clock is unchanged.
    pub fn update(&self, remote: Timestamp) -> Result<Timestamp, UpdateError> {
        self.update_at(remote, self.clock.now())
    }

    /// [`update`](Self::update) at a caller-given physical time `now`.
    ///
    /// # Errors
    /// [`UpdateError`]; the clock is unchanged.
    pub fn update_at(&self, remote: Timestamp, now: WallTime) -> Result<Timestamp, UpdateError> {
        self.advance(|last| {
            rules::receive(
                last,
                remote,
                now,
                self.max_offset_millis,
                self.config.max_offset,
            )
        })
    }

    /// Publishes `rule(last)`. The physical reading was taken once, before
    /// the CAS loop: a retry only means another event was ordered first, and
    /// the rule run on that fresher value still yields its successor.
    #[inline]
    fn advance<E>(&self, rule: impl Fn(Timestamp) -> Result<Timestamp, E>) -> Result<Timestamp, E> {
        crate::loom::advance(&self.last, |packed| {
            rule(Timestamp::from_u64(packed)).map(Timestamp::to_u64)
        })
        .map(Timestamp::from_u64)
    }

    /// The latest timestamp issued (a snapshot: other threads may move on).
    pub fn last(&self) -> Timestamp {
        Timestamp::from_u64(self.last.load(Ordering::Acquire))
    }

    /// The settings (as [`Hlc::config`](crate::Hlc::config)).
    pub fn config(&self) -> &HlcConfig {
        &self.config
    }

    /// The physical clock.
    pub fn physical_clock(&self) -> &C {
        &self.clock
    }
}
