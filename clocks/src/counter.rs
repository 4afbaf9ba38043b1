//! The error shared by every integer counter in the crate.

/// A counter would pass `u64::MAX`.
///
/// Lamport clocks and vector-clock entries only grow, so an increment past the
/// largest `u64` cannot be represented. Wrapping would break the clock
/// condition, so the increment is refused instead. The clock is unchanged.
///
/// In practice this happens only when a peer sends a counter near `u64::MAX`
/// (a bug or an attack): treat the sender as faulty.
///
/// State: the counter that would overflow is unchanged; each method's
/// `# Errors` says whether anything else happened first (only
/// [`VectorClock::receive`](crate::VectorClock::receive) merges before it
/// fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("counter overflow: the clock is at u64::MAX and cannot advance (clock unchanged)")]
pub struct CounterOverflow;

/// `counter + 1`, or [`CounterOverflow`].
#[inline]
pub(crate) fn successor(counter: u64) -> Result<u64, CounterOverflow> {
    counter.checked_add(1).ok_or(CounterOverflow)
}
