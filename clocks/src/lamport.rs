//! Lamport clocks (Lamport 1978, "Time, Clocks, and the Ordering of Events in a
//! Distributed System", §3).
//!
//! The implementation rules are the paper's IR1 and IR2:
//! - IR1: a process increments its clock between any two successive events
//!   (here: [`LamportClock::tick`] for a local event, [`LamportClock::send`]
//!   to stamp an outgoing message);
//! - IR2: on receiving a message stamped `t`, the receiver sets its clock to
//!   something greater than both its own value and `t`: `max(local, t) + 1`
//!   ([`LamportClock::receive`]).
//!
//! This gives the clock condition: if `a -> b` (happened before) then
//! `C(a) < C(b)`. The converse does not hold: `C(a) < C(b)` says nothing
//! about whether `a` and `b` are concurrent. For that, use a
//! [`VectorClock`](crate::VectorClock).

use crate::counter::{CounterOverflow, successor};
use crate::loom::{AtomicU64, Ordering};

/// A Lamport logical clock owned by one process.
///
/// `Clone` but deliberately not `Copy`: a silently copied clock would issue
/// the same stamps twice.
///
/// ```
/// use dsys_clocks::LamportClock;
///
/// let mut a = LamportClock::new();
/// let mut b = LamportClock::new();
/// let stamp = a.send()?;            // a: 1
/// b.tick()?;                         // b: 1
/// b.tick()?;                         // b: 2
/// assert_eq!(b.receive(stamp)?, 3);  // max(2, 1) + 1
/// # Ok::<(), dsys_clocks::CounterOverflow>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct LamportClock {
    time: u64,
}

impl LamportClock {
    /// A clock at 0: no event has happened yet.
    pub const fn new() -> Self {
        Self { time: 0 }
    }

    /// A clock resumed at `time` (for example, read back from disk).
    pub const fn at(time: u64) -> Self {
        Self { time }
    }

    /// The stamp of the latest event.
    pub const fn time(&self) -> u64 {
        self.time
    }

    /// Records a local event (IR1) and returns its stamp.
    ///
    /// # Errors
    /// [`CounterOverflow`] if the clock is at `u64::MAX`; the clock is unchanged.
    pub fn tick(&mut self) -> Result<u64, CounterOverflow> {
        self.time = successor(self.time)?;
        Ok(self.time)
    }

    /// Records a send event and returns the stamp to put on the message.
    ///
    /// A send is an event like any other (IR1); this is [`tick`](Self::tick)
    /// under the name the caller is thinking of.
    ///
    /// # Errors
    /// [`CounterOverflow`] if the clock is at `u64::MAX`; the clock is unchanged.
    pub fn send(&mut self) -> Result<u64, CounterOverflow> {
        self.tick()
    }

    /// Records the receipt of a message stamped `remote` (IR2) and returns the
    /// stamp of the receive event: `max(local, remote) + 1`.
    ///
    /// # Errors
    /// [`CounterOverflow`] if `max(local, remote)` is `u64::MAX` (only a faulty
    /// peer sends that); the clock is unchanged.
    pub fn receive(&mut self, remote: u64) -> Result<u64, CounterOverflow> {
        self.time = successor(self.time.max(remote))?;
        Ok(self.time)
    }
}

/// A Lamport clock shared by many threads through `&self`, lock-free.
///
/// One `AtomicU64` and a compare-and-swap loop: every call returns a stamp
/// that no other call on the same clock returns, and the stamps one thread
/// sees are strictly increasing (checked with loom, see `tests/loom.rs`).
///
/// ```
/// use dsys_clocks::AtomicLamport;
/// use std::sync::Arc;
///
/// let clock = Arc::new(AtomicLamport::new());
/// let handles: Vec<_> = (0..2)
///     .map(|_| {
///         let clock = Arc::clone(&clock);
///         std::thread::spawn(move || (0..100).map(|_| clock.tick().unwrap()).collect::<Vec<_>>())
///     })
///     .collect();
/// let mut all: Vec<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
/// all.sort_unstable();
/// all.dedup();
/// assert_eq!(all.len(), 200); // no two events share a stamp
/// ```
#[derive(Debug, Default)]
pub struct AtomicLamport {
    time: AtomicU64,
}

impl AtomicLamport {
    /// A shared clock at 0.
    pub fn new() -> Self {
        Self::at(0)
    }

    /// A shared clock resumed at `time`.
    pub fn at(time: u64) -> Self {
        Self {
            time: AtomicU64::new(time),
        }
    }

    /// The stamp of the latest event (a snapshot: other threads may move on).
    pub fn time(&self) -> u64 {
        self.time.load(Ordering::Acquire)
    }

    /// Records a local event (IR1) and returns its stamp, unique on this clock.
    ///
    /// # Errors
    /// [`CounterOverflow`] if the clock is at `u64::MAX`; the clock is unchanged.
    pub fn tick(&self) -> Result<u64, CounterOverflow> {
        crate::loom::advance(&self.time, successor)
    }

    /// Records a send event and returns the stamp for the message.
    ///
    /// # Errors
    /// [`CounterOverflow`] if the clock is at `u64::MAX`; the clock is unchanged.
    pub fn send(&self) -> Result<u64, CounterOverflow> {
        self.tick()
    }

    /// Records the receipt of a message stamped `remote` (IR2); returns the
    /// stamp of the receive event, greater than both `remote` and every stamp
    /// this clock returned before.
    ///
    /// # Errors
    /// [`CounterOverflow`] if `max(local, remote)` is `u64::MAX`; the clock is
    /// unchanged.
    pub fn receive(&self, remote: u64) -> Result<u64, CounterOverflow> {
        crate::loom::advance(&self.time, |local| successor(local.max(remote)))
    }
}
