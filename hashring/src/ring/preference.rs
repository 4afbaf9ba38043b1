//! Preference lists: the N distinct nodes that hold a key's replicas
//! (Dynamo §4.3), optionally spread over zones first (Cassandra's
//! NetworkTopologyStrategy, one zone per rack).

use std::fmt;
use std::hash::Hash;

use smallvec::SmallVec;

use super::Ring;
use crate::hash::KeyHash;
use crate::placement::NodeId;

/// Lists of up to this many replicas are built without touching the heap.
const INLINE_REPLICAS: usize = 8;

type Slots = SmallVec<[u32; INLINE_REPLICAS]>;

/// The distinct nodes responsible for a key, owner first, borrowed from the
/// ring. Building one does not allocate for up to 8 replicas.
#[derive(Clone)]
pub struct PreferenceList<'r, N> {
    ring: &'r Ring<N>,
    slots: Slots,
}

impl<'r, N: NodeId> PreferenceList<'r, N> {
    /// Number of nodes (the `n` asked for, or every node when the ring has
    /// fewer).
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True only on an empty ring (or when `n` was 0).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The key's owner (the coordinator in Dynamo's terms).
    #[must_use]
    pub fn primary(&self) -> Option<&'r N> {
        self.get(0)
    }

    /// The `i`-th replica.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&'r N> {
        let ring = self.ring;
        self.slots.get(i).map(|&s| &ring.members[s as usize].id)
    }

    /// True when `node` is one of the replicas.
    #[must_use]
    pub fn contains(&self, node: &N) -> bool {
        self.iter().any(|n| n == node)
    }

    /// The replicas, owner first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'r N> + '_ {
        let ring = self.ring;
        self.slots
            .iter()
            .map(move |&s| &ring.members[s as usize].id)
    }

    /// The replicas as an owned vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<N> {
        self.iter().cloned().collect()
    }
}

impl<N: NodeId> fmt::Debug for PreferenceList<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<N: NodeId> Ring<N> {
    /// The `n` distinct nodes for a [`Hash`] key: the owner, then the owners
    /// of the following tokens clockwise, skipping nodes already listed.
    /// Fewer than `n` when the ring has fewer nodes; empty on an empty ring.
    pub fn preference_list<K: Hash + ?Sized>(&self, key: &K, n: usize) -> PreferenceList<'_, N> {
        self.preference_list_hash(KeyHash::of(key), n)
    }

    /// [`preference_list`](Ring::preference_list) for a byte key (see
    /// [`KeyHash::of_bytes`]).
    pub fn preference_list_bytes(&self, key: &[u8], n: usize) -> PreferenceList<'_, N> {
        self.preference_list_hash(KeyHash::of_bytes(key), n)
    }

    /// [`preference_list`](Ring::preference_list) for a position.
    pub fn preference_list_hash(&self, key: KeyHash, n: usize) -> PreferenceList<'_, N> {
        PreferenceList {
            ring: self,
            slots: self.walk_distinct(key.0, n),
        }
    }

    /// Like [`preference_list`](Ring::preference_list), but the first
    /// `min(n, zones)` replicas are in distinct zones: walking clockwise, a
    /// node whose zone is already used is set aside; once every zone that
    /// can be used is, the set-aside nodes fill the remaining places in ring
    /// order, then the walk continues (NetworkTopologyStrategy's rule).
    pub fn preference_list_zoned<K: Hash + ?Sized>(
        &self,
        key: &K,
        n: usize,
    ) -> PreferenceList<'_, N> {
        self.preference_list_zoned_hash(KeyHash::of(key), n)
    }

    /// [`preference_list_zoned`](Ring::preference_list_zoned) for a byte key
    /// (see [`KeyHash::of_bytes`]).
    pub fn preference_list_zoned_bytes(&self, key: &[u8], n: usize) -> PreferenceList<'_, N> {
        self.preference_list_zoned_hash(KeyHash::of_bytes(key), n)
    }

    /// [`preference_list_zoned`](Ring::preference_list_zoned) for a position.
    pub fn preference_list_zoned_hash(&self, key: KeyHash, n: usize) -> PreferenceList<'_, N> {
        PreferenceList {
            ring: self,
            slots: self.walk_zoned(key.0, n),
        }
    }

    /// Distinct owners clockwise from `point`.
    pub(crate) fn walk_distinct(&self, point: u64, n: usize) -> Slots {
        let mut taken = Slots::new();
        let want = n.min(self.members.len());
        let Some(start) = self.vnode_at(point) else {
            return taken;
        };
        let owners = &self.owners;
        let len = owners.len();
        let mut i = start;
        // Every node owns a vnode, so the walk ends within one turn.
        while taken.len() < want {
            let slot = owners[i];
            if !taken.contains(&slot) {
                taken.push(slot);
            }
            i += 1;
            if i == len {
                i = 0;
            }
        }
        taken
    }

    /// Distinct owners clockwise from `point`, distinct zones first.
    pub(crate) fn walk_zoned(&self, point: u64, n: usize) -> Slots {
        let want = n.min(self.members.len());
        let mut taken = Slots::new();
        let Some(start) = self.vnode_at(point) else {
            return taken;
        };
        let zone_target = want.min(self.distinct_zones);
        let mut zones: SmallVec<[u32; INLINE_REPLICAS]> = SmallVec::new();
        let mut set_aside = Slots::new();
        let owners = &self.owners;
        let len = owners.len();
        let mut i = start;
        let mut steps = 0;
        // Phase 1: one node per zone until `zone_target` zones are used.
        while zones.len() < zone_target && steps < len {
            let slot = owners[i];
            if !taken.contains(&slot) && !set_aside.contains(&slot) {
                let zone = self.owner_zones[i];
                if zones.contains(&zone) {
                    // Only the first `want - zone_target` set-aside nodes can
                    // be used in phase 2, so keep no more (and stay inline).
                    if set_aside.len() < want - zone_target {
                        set_aside.push(slot);
                    }
                } else {
                    zones.push(zone);
                    taken.push(slot);
                }
            }
            i = if i + 1 == len { 0 } else { i + 1 };
            steps += 1;
        }
        // Phase 2: the set-aside nodes, in the order the walk met them.
        for slot in set_aside {
            if taken.len() == want {
                break;
            }
            taken.push(slot);
        }
        // Phase 3: keep walking for any node not yet listed.
        while taken.len() < want && steps < 2 * len {
            let slot = owners[i];
            if !taken.contains(&slot) {
                taken.push(slot);
            }
            i = if i + 1 == len { 0 } else { i + 1 };
            steps += 1;
        }
        taken
    }
}
