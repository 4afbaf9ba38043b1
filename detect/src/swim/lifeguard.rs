//! Lifeguard (Dadgar, Phillips, Currey 2017): the local health multiplier (§4.1) and
//! dynamic suspicion timeouts (§4.3). The buddy system (§4.2) lives where packets are
//! assembled, in [`dissemination`](super::dissemination).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Local Health Aware probe (§4.1): a saturating score in `0..max`. A node that misses
/// acks and nacks it should have received, or that has to refute suspicions of itself,
/// is probably the slow one; it stretches its own timeouts by `score + 1` rather than
/// accusing healthy peers.
#[derive(Debug, Clone)]
pub(crate) struct Awareness {
    score: u32,
    max: u32,
}

impl Awareness {
    pub(crate) fn new(max_multiplier: u32) -> Self {
        Awareness {
            score: 0,
            max: max_multiplier,
        }
    }

    /// Applies a delta, clamped to `0..max` (memberlist's `ApplyDelta`).
    pub(crate) fn apply(&mut self, delta: i64) {
        let next = (i64::from(self.score) + delta).clamp(0, i64::from(self.max) - 1);
        self.score = next as u32;
    }

    pub(crate) fn score(&self) -> u32 {
        self.score
    }

    /// `timeout · (score + 1)`.
    pub(crate) fn scale(&self, timeout: Duration) -> Duration {
        timeout.saturating_mul(self.score + 1)
    }
}

/// One suspicion's timer (§4.3). It starts at `max` and shrinks towards `min` as `k`
/// independent members confirm the suspicion:
/// `timeout = max(min, max − (max − min) · log(c + 1) / log(k + 1))`.
#[derive(Debug, Clone)]
pub(crate) struct Suspicion<N> {
    start: Instant,
    min: Duration,
    max: Duration,
    /// Confirmations that still shorten the timeout.
    k: u32,
    /// Who has suspected this incarnation so far, the first accuser included.
    accusers: BTreeSet<N>,
    deadline: Instant,
}

impl<N: Ord + Clone> Suspicion<N> {
    /// `k` is the number of confirmations that bring the timeout down to `min`;
    /// with `k == 0` the timeout is `min` from the start.
    pub(crate) fn new(by: N, start: Instant, min: Duration, max: Duration, k: u32) -> Self {
        let timeout = if k == 0 { min } else { max };
        Suspicion {
            start,
            min,
            max,
            k,
            accusers: BTreeSet::from([by]),
            deadline: start + timeout,
        }
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Records an accusation by `by`; returns true when it is a new, independent one
    /// that moved the deadline (and so is worth re-gossiping, as memberlist does).
    pub(crate) fn confirm(&mut self, by: N) -> bool {
        if self.accusers.len() as u32 > self.k || !self.accusers.insert(by) {
            return false;
        }
        let confirmations = self.accusers.len() as u32 - 1;
        let fraction = f64::from(confirmations + 1).ln() / f64::from(self.k + 1).ln();
        let shrink = (self.max - self.min).mul_f64(fraction.min(1.0));
        let timeout = (self.max - shrink).max(self.min);
        self.deadline = self.start + timeout;
        true
    }

    #[cfg(test)]
    pub(crate) fn confirmations(&self) -> usize {
        self.accusers.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awareness_saturates_both_ways() {
        let mut a = Awareness::new(8);
        a.apply(-1);
        assert_eq!(a.score(), 0);
        a.apply(3);
        assert_eq!(
            a.scale(Duration::from_millis(500)),
            Duration::from_millis(2000)
        );
        a.apply(100);
        assert_eq!(a.score(), 7);
        a.apply(-2);
        assert_eq!(a.score(), 5);
        let mut off = Awareness::new(1);
        off.apply(5);
        assert_eq!(off.score(), 0);
    }

    #[test]
    fn suspicion_shrinks_logarithmically_with_independent_confirmations() {
        let t0 = Instant::now();
        let min = Duration::from_secs(8);
        let max = Duration::from_secs(48);
        let mut s = Suspicion::new(1u32, t0, min, max, 3);
        assert_eq!(s.deadline(), t0 + max);
        assert!(!s.confirm(1), "the first accuser does not confirm itself");
        assert!(s.confirm(2));
        // c = 1, k = 3: 48 - 40 · ln 2 / ln 4 = 28 s.
        assert_eq!(s.deadline(), t0 + Duration::from_secs(28));
        assert!(!s.confirm(2), "confirmations are counted once per member");
        assert!(s.confirm(3));
        let expected = 48.0 - 40.0 * 3f64.ln() / 4f64.ln();
        let got = (s.deadline() - t0).as_secs_f64();
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
        assert!(s.confirm(4));
        assert_eq!(s.deadline(), t0 + min);
        assert!(
            !s.confirm(5),
            "k confirmations reached: nothing left to shorten"
        );
        assert_eq!(s.confirmations(), 3);
    }

    #[test]
    fn k_zero_means_the_minimum_at_once() {
        let t0 = Instant::now();
        let s = Suspicion::new(1u32, t0, Duration::from_secs(4), Duration::from_secs(24), 0);
        assert_eq!(s.deadline(), t0 + Duration::from_secs(4));
    }
}
