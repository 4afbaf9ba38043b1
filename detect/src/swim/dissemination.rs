//! Infection-style dissemination (SWIM §4.1): membership updates ride on the protocol's
//! own packets, each one at most λ·log(n) times, the least-sent first.

use std::collections::BTreeMap;

use super::id::NodeId;
use super::wire::Update;

/// Pending updates, at most one per member: newer news about a member replaces older
/// news (memberlist's `TransmitLimitedQueue` invalidation), so the queue is bounded by
/// the membership.
#[derive(Debug)]
pub(crate) struct Dissemination<N> {
    pending: BTreeMap<N, Pending<N>>,
    next_id: u64,
}

#[derive(Debug)]
struct Pending<N> {
    update: Update<N>,
    encoded: Vec<u8>,
    transmits: u32,
    /// Insertion order: among equally-sent updates the newest goes first.
    id: u64,
}

impl<N: NodeId> Dissemination<N> {
    pub(crate) fn new() -> Self {
        Dissemination {
            pending: BTreeMap::new(),
            next_id: 0,
        }
    }

    /// Queues `update`, replacing any pending update about the same member.
    pub(crate) fn push(&mut self, update: Update<N>) {
        let mut encoded = Vec::new();
        update.encode(&mut encoded);
        self.next_id += 1;
        self.pending.insert(
            update.node().clone(),
            Pending {
                update,
                encoded,
                transmits: 0,
                id: self.next_id,
            },
        );
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The pending update about `node`, if any.
    #[cfg(test)]
    pub(crate) fn get(&self, node: &N) -> Option<&Update<N>> {
        self.pending.get(node).map(|p| &p.update)
    }

    /// Encodes into `out` as many pending updates as fit in `room` bytes, least
    /// transmitted first; `first`, when given, goes before all of them (Lifeguard's
    /// buddy system: a suspect hears about its suspicion in the ping itself). Updates
    /// that reach `limit` transmissions leave the queue. Returns how many were written.
    pub(crate) fn fill(
        &mut self,
        out: &mut Vec<u8>,
        mut room: usize,
        limit: u32,
        first: Option<&Update<N>>,
    ) -> usize {
        let mut count = 0;
        if let Some(update) = first {
            let before = out.len();
            update.encode(out);
            if out.len() - before > room {
                out.truncate(before);
            } else {
                room -= out.len() - before;
                count += 1;
                if let Some(p) = self.pending.get_mut(update.node()) {
                    if &p.update == update {
                        p.transmits += 1;
                    }
                }
            }
        }
        if self.pending.is_empty() || room == 0 {
            self.expire(limit);
            return count;
        }
        let mut order: Vec<(u32, std::cmp::Reverse<u64>, &N)> = self
            .pending
            .iter()
            .map(|(n, p)| (p.transmits, std::cmp::Reverse(p.id), n))
            .collect();
        order.sort_unstable();
        let mut chosen = Vec::new();
        for (_, _, node) in order {
            let p = &self.pending[node];
            if first.is_some_and(|f| f == &p.update) {
                continue;
            }
            if p.encoded.len() <= room {
                room -= p.encoded.len();
                out.extend_from_slice(&p.encoded);
                chosen.push(node.clone());
                count += 1;
                if room < 3 {
                    break;
                }
            }
        }
        for node in chosen {
            if let Some(p) = self.pending.get_mut(&node) {
                p.transmits += 1;
            }
        }
        self.expire(limit);
        count
    }

    fn expire(&mut self, limit: u32) {
        self.pending.retain(|_, p| p.transmits < limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(node: u32, incarnation: u32) -> Update<u32> {
        Update::Alive { node, incarnation }
    }

    #[test]
    fn newer_news_replaces_older_and_least_sent_goes_first() {
        let mut d = Dissemination::new();
        d.push(alive(1, 0));
        d.push(alive(2, 0));
        d.push(alive(1, 1));
        assert_eq!(d.len(), 2);
        assert_eq!(d.get(&1), Some(&alive(1, 1)));
        let mut out = Vec::new();
        // Room for one update (3 bytes each for small u32 ids).
        assert_eq!(d.fill(&mut out, 3, 10, None), 1);
        let mut expected = Vec::new();
        alive(1, 1).encode(&mut expected);
        assert_eq!(out, expected, "newest first among the unsent");
        out.clear();
        assert_eq!(d.fill(&mut out, 3, 10, None), 1);
        expected.clear();
        alive(2, 0).encode(&mut expected);
        assert_eq!(out, expected, "then the least sent");
    }

    #[test]
    fn updates_leave_after_the_limit() {
        let mut d = Dissemination::new();
        d.push(alive(1, 0));
        for _ in 0..3 {
            let mut out = Vec::new();
            assert_eq!(d.fill(&mut out, 100, 3, None), 1);
        }
        assert!(d.is_empty());
        assert_eq!(d.fill(&mut Vec::new(), 100, 3, None), 0);
    }

    #[test]
    fn the_buddy_update_goes_first_and_is_not_repeated() {
        let mut d = Dissemination::new();
        let suspect = Update::Suspect {
            node: 9u32,
            incarnation: 2,
            by: 1,
        };
        d.push(alive(1, 0));
        d.push(suspect.clone());
        let mut out = Vec::new();
        assert_eq!(d.fill(&mut out, 100, 10, Some(&suspect)), 2);
        let mut expected = Vec::new();
        suspect.encode(&mut expected);
        alive(1, 0).encode(&mut expected);
        assert_eq!(out, expected);
    }
}
