//! Faults: partitions (symmetric, one-way, non-transitive) and, with random faults on,
//! crashes and partitions drawn at random each step.

use super::Sim;
use super::config::to_ms;
use crate::codec::{Decode, Encode};
use crate::lattice::{Authored, Lattice};

impl<S> Sim<S>
where
    S: Lattice + Authored<u64> + PartialEq + Encode + Decode,
{
    /// Cuts every link between two groups, both ways (a symmetric partition);
    /// replicas in neither group keep their links.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut.insert((x, y));
                self.cut.insert((y, x));
            }
        }
        self.stats.partitions += 1;
        self.note(format!("partition {a:?} | {b:?}"));
    }

    /// Cuts the link from `from` to `to` only (a one-way partition: `to` still
    /// reaches `from`).
    pub fn cut(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
        self.note(format!("link {from} -> {to} cut"));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        if !self.cut.is_empty() {
            self.note("partition healed".to_owned());
        }
        self.cut.clear();
        self.partition_until = None;
    }

    pub(super) fn random_faults_step(&mut self) {
        let now = self.now_ms;
        for i in 0..self.nodes.len() {
            if self.nodes[i].replica.is_some() && self.rng.f64() < self.config.crash {
                self.crash(i);
                let (lo, hi) = self.config.downtime;
                self.nodes[i].restart_at = Some(now + self.rng.u64(to_ms(lo)..=to_ms(hi)));
            }
        }
        match self.partition_until {
            Some(until) if until <= now => self.heal(),
            Some(_) => {}
            None if self.nodes.len() > 1 && self.rng.f64() < self.config.partition => {
                self.random_partition();
                let (lo, hi) = self.config.partition_duration;
                self.partition_until = Some(now + self.rng.u64(to_ms(lo)..=to_ms(hi)));
            }
            None => {}
        }
    }

    /// A symmetric split, a one-way cut between two groups, or random links cut both
    /// ways (non-transitive: a and b can talk, b and c too, but not a and c).
    fn random_partition(&mut self) {
        let n = self.nodes.len();
        let mut group: Vec<bool> = (0..n).map(|_| self.rng.bool()).collect();
        // Both sides non-empty.
        group[0] = true;
        group[1 + self.rng.usize(..n - 1)] = false;
        let a: Vec<usize> = (0..n).filter(|&i| group[i]).collect();
        let b: Vec<usize> = (0..n).filter(|&i| !group[i]).collect();
        match self.rng.u8(0..3) {
            0 => self.partition(&a, &b),
            1 => {
                for &x in &a {
                    for &y in &b {
                        self.cut.insert((x, y));
                    }
                }
                self.stats.partitions += 1;
                self.note(format!("one-way partition {a:?} -> {b:?} cut"));
            }
            _ => {
                let mut cut = Vec::new();
                for x in 0..n {
                    for y in x + 1..n {
                        if self.rng.f64() < 0.3 {
                            self.cut.insert((x, y));
                            self.cut.insert((y, x));
                            cut.push((x, y));
                        }
                    }
                }
                self.stats.partitions += 1;
                self.note(format!("links cut both ways: {cut:?}"));
            }
        }
    }
}
