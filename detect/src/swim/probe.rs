//! Failure detection rounds (SWIM §3.1 and §4.3): which member to probe next, and the
//! state of the probe in flight.

use std::time::Instant;

/// Randomized round-robin probe order (SWIM §4.3): members are probed in a shuffled
/// order, every member once per round, and a new member is inserted at a random
/// position. This bounds the time until a failed member is probed by anyone to
/// `2n - 1` protocol periods instead of being only expected.
#[derive(Debug)]
pub(crate) struct ProbeOrder<N> {
    list: Vec<N>,
    next: usize,
}

impl<N: PartialEq + Clone> ProbeOrder<N> {
    pub(crate) fn new() -> Self {
        ProbeOrder {
            list: Vec::new(),
            next: 0,
        }
    }

    pub(crate) fn insert(&mut self, node: N, rng: &mut fastrand::Rng) {
        let at = rng.usize(..=self.list.len());
        if at < self.next {
            self.next += 1;
        }
        self.list.insert(at, node);
    }

    pub(crate) fn remove(&mut self, node: &N) {
        if let Some(at) = self.list.iter().position(|n| n == node) {
            self.list.remove(at);
            if at < self.next {
                self.next -= 1;
            }
        }
    }

    /// The next member to probe; reshuffles at the end of each round.
    pub(crate) fn next(&mut self, rng: &mut fastrand::Rng) -> Option<N> {
        if self.list.is_empty() {
            return None;
        }
        if self.next >= self.list.len() {
            rng.shuffle(&mut self.list);
            self.next = 0;
        }
        self.next += 1;
        Some(self.list[self.next - 1].clone())
    }

    /// Up to `k` distinct members for which `eligible` holds, chosen at random.
    pub(crate) fn sample(
        &self,
        k: usize,
        eligible: impl Fn(&N) -> bool,
        rng: &mut fastrand::Rng,
    ) -> Vec<N> {
        let count = self.list.iter().filter(|n| eligible(n)).count();
        let k = k.min(count);
        let mut picked: Vec<N> = Vec::with_capacity(k);
        if k * 3 >= count {
            // Few candidates: a partial shuffle of all of them.
            let mut all: Vec<&N> = self.list.iter().filter(|n| eligible(n)).collect();
            for i in 0..k {
                let j = rng.usize(i..all.len());
                all.swap(i, j);
                picked.push(all[i].clone());
            }
            return picked;
        }
        while picked.len() < k {
            let n = &self.list[rng.usize(..self.list.len())];
            if eligible(n) && !picked.contains(n) {
                picked.push(n.clone());
            }
        }
        picked
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}

/// The probe of the current protocol period.
#[derive(Debug, Clone)]
pub(crate) struct Probe<N> {
    pub(crate) seq: u32,
    pub(crate) target: N,
    /// When the direct ack is overdue and ping-req goes out.
    pub(crate) ack_deadline: Instant,
    /// End of the protocol period: no ack by then means suspicion.
    pub(crate) period_end: Instant,
    pub(crate) indirect_sent: bool,
    /// The period was stretched once because this node ran late.
    pub(crate) extended: bool,
    /// Lifeguard §4.1: relays asked, and nacks heard back from them.
    pub(crate) expected_nacks: u32,
    pub(crate) nacks: u32,
}

/// A ping-req this node is relaying: `our_seq` is the ping it sent to `target`.
#[derive(Debug, Clone)]
pub(crate) struct Relay<N> {
    pub(crate) requester: N,
    pub(crate) their_seq: u32,
    pub(crate) deadline: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_is_probed_once_per_round() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut order = ProbeOrder::new();
        for n in 0..10u32 {
            order.insert(n, &mut rng);
        }
        for _ in 0..3 {
            let mut round: Vec<u32> = (0..10).map(|_| order.next(&mut rng).unwrap()).collect();
            round.sort_unstable();
            assert_eq!(round, (0..10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn removal_keeps_the_round_going() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut order = ProbeOrder::new();
        for n in 0..5u32 {
            order.insert(n, &mut rng);
        }
        let first = order.next(&mut rng).unwrap();
        order.remove(&first);
        let mut rest: Vec<u32> = (0..4).map(|_| order.next(&mut rng).unwrap()).collect();
        rest.sort_unstable();
        let mut expected: Vec<u32> = (0..5).filter(|n| *n != first).collect();
        expected.sort_unstable();
        assert_eq!(rest, expected);
        assert_eq!(order.len(), 4);
    }

    #[test]
    fn samples_are_distinct_and_exclude() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut order = ProbeOrder::new();
        for n in 0..100u32 {
            order.insert(n, &mut rng);
        }
        for k in [0, 1, 3, 50, 99, 200] {
            let s = order.sample(k, |n| *n != 5 && *n != 6, &mut rng);
            assert_eq!(s.len(), k.min(98));
            assert!(!s.contains(&5) && !s.contains(&6));
            let mut d = s.clone();
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), s.len());
        }
    }
}
