//! Consistent hashing with bounded loads (Mirrokni, Thorup and
//! Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018; used
//! by Vimeo's and HAProxy's load balancers).
//!
//! Every node has a capacity of `⌈(1+ε)·m·w/W⌉` keys, `m` being the number
//! of keys assigned (counting the one being placed) and `w/W` the node's
//! share of the total weight. A key goes to the first node clockwise from
//! its position that is below capacity (§2 of the paper, "the
//! forwarding rule"). No node ever holds more than `(1+ε)` times its fair
//! share, and the paper shows that a membership change or an arrival moves
//! `O(1/ε²)` keys in expectation beyond the ones that must move.
//!
//! Unlike the other placements this one is stateful: where a key goes
//! depends on the loads at the time it arrives. It suits assignments that
//! come and go (connections, requests, sessions): [`assign`](BoundedLoads::assign)
//! when one starts and [`release`](BoundedLoads::release) when it ends.
//! [`Placement::locate_hash`] answers where a key *would* go now.

use std::hash::Hash;

use thiserror::Error;

use crate::hash::KeyHash;
use crate::placement::{AddNodeError, NodeId, Placement, RemoveNodeError};
use crate::ring::{NodeConfig, Ring};

/// The parameters of [`BoundedLoads::new`] (or [`BoundedLoads::with_ring`])
/// are refused; nothing was built.
///
/// Named like a configuration error because it plays the same role (it
/// rejects invalid construction parameters), though [`BoundedLoads`] has no config
/// struct: the parameters are passed bare.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum BoundedLoadsConfigError {
    /// ε must be a finite number above 0 (the paper's balance parameter;
    /// 0.25 is a common choice). State: nothing was built.
    #[error("epsilon must be finite and > 0, got {0}")]
    Epsilon(f64),
}

/// A ring whose nodes never exceed `(1+ε)` times their fair share of the
/// keys currently assigned.
///
/// ```
/// use dsys_hashring::BoundedLoads;
///
/// let mut lb = BoundedLoads::new(0.25).unwrap();
/// for backend in ["b1", "b2", "b3"] {
///     lb.add(backend, 1).unwrap();
/// }
/// let mut per_backend = std::collections::BTreeMap::new();
/// for session in 0..300u32 {
///     let backend = *lb.assign(&session).unwrap();
///     *per_backend.entry(backend).or_insert(0) += 1;
/// }
/// // No backend above ceil(1.25 * 300 / 3) = 125.
/// assert!(per_backend.values().all(|&n| n <= 125));
/// ```
#[derive(Debug, Clone)]
pub struct BoundedLoads<N> {
    ring: Ring<N>,
    epsilon: f64,
    /// Keys assigned to each ring member, by the ring's member slot.
    loads: Vec<u64>,
    assigned: u64,
    /// Sum of the members' weights.
    total_weight: u64,
}

impl<N: NodeId> BoundedLoads<N> {
    /// An empty placement over a default [`Ring`] (150 hashed vnodes per
    /// unit of weight).
    pub fn new(epsilon: f64) -> Result<Self, BoundedLoadsConfigError> {
        Self::with_ring(Ring::new(), epsilon)
    }

    /// Bounded loads over `ring` (whose nodes start with no keys).
    pub fn with_ring(ring: Ring<N>, epsilon: f64) -> Result<Self, BoundedLoadsConfigError> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(BoundedLoadsConfigError::Epsilon(epsilon));
        }
        let loads = vec![0; ring.len()];
        let total_weight = ring.members().iter().map(|m| u64::from(m.weight)).sum();
        Ok(BoundedLoads {
            ring,
            epsilon,
            loads,
            assigned: 0,
            total_weight,
        })
    }

    /// The underlying ring.
    #[must_use]
    pub fn ring(&self) -> &Ring<N> {
        &self.ring
    }

    /// The balance parameter ε.
    #[must_use]
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Keys currently assigned, in total.
    #[must_use]
    pub fn assigned(&self) -> u64 {
        self.assigned
    }

    /// Keys currently assigned to `node` (`None` if not a member).
    #[must_use]
    pub fn load(&self, node: &N) -> Option<u64> {
        self.ring.slot_of(node).map(|s| self.loads[s])
    }

    /// Adds `node` with `weight` and no keys.
    pub fn add(&mut self, node: N, weight: u32) -> Result<(), AddNodeError> {
        let config = NodeConfig {
            weight,
            ..NodeConfig::default()
        };
        self.ring.add(node, config)?;
        self.loads.push(0);
        self.total_weight += u64::from(weight);
        Ok(())
    }

    /// Removes `node`; its keys are forgotten (re-[`assign`](Self::assign)
    /// them). Returns how many it held.
    pub fn remove(&mut self, node: &N) -> Result<u64, RemoveNodeError> {
        let slot = self.ring.slot_of(node).ok_or(RemoveNodeError::Unknown)?;
        self.total_weight -= u64::from(self.ring.members()[slot].weight);
        self.ring.remove(node)?;
        let held = self.loads.remove(slot);
        self.assigned -= held;
        Ok(held)
    }

    /// Places a [`Hash`] key and counts it against its node.
    pub fn assign<K: Hash + ?Sized>(&mut self, key: &K) -> Option<&N> {
        self.assign_hash(KeyHash::of(key))
    }

    /// Places the key at `key` and counts it against its node. `None` only
    /// when there are no nodes.
    pub fn assign_hash(&mut self, key: KeyHash) -> Option<&N> {
        let slot = self.slot_for(key)?;
        self.loads[slot] += 1;
        self.assigned += 1;
        Some(&self.ring.members()[slot].id)
    }

    /// Gives back one key held by `node` (a connection closed, a session
    /// ended). Returns false, changing nothing, when `node` is unknown or
    /// holds none.
    pub fn release(&mut self, node: &N) -> bool {
        match self.ring.slot_of(node) {
            Some(slot) if self.loads[slot] > 0 => {
                self.loads[slot] -= 1;
                self.assigned -= 1;
                true
            }
            _ => false,
        }
    }

    /// The most keys `node` may hold when the next key arrives:
    /// `⌈(1+ε)·(m+1)·w/W⌉`.
    #[must_use]
    pub fn capacity(&self, node: &N) -> Option<u64> {
        let total_weight = self.total_weight;
        self.ring
            .slot_of(node)
            .map(|s| self.capacity_of(s, total_weight))
    }

    fn capacity_of(&self, slot: usize, total_weight: u64) -> u64 {
        let share = f64::from(self.ring.members()[slot].weight) / total_weight as f64;
        ((1.0 + self.epsilon) * (self.assigned + 1) as f64 * share).ceil() as u64
    }

    /// The forwarding rule: the first node clockwise below capacity. The
    /// capacities sum to at least `(1+ε)(m+1) > m`, so one always is.
    fn slot_for(&self, key: KeyHash) -> Option<usize> {
        let start = self.ring.vnode_at(key.0)?;
        let owners = self.ring.owner_slots();
        let total_weight = self.total_weight;
        let len = owners.len();
        (0..len)
            .map(|step| owners[(start + step) % len] as usize)
            .find(|&slot| self.loads[slot] < self.capacity_of(slot, total_weight))
            .or(Some(owners[start] as usize))
    }
}

impl<N: NodeId> Placement<N> for BoundedLoads<N> {
    fn algorithm(&self) -> &'static str {
        "bounded"
    }

    fn node_count(&self) -> usize {
        self.ring.len()
    }

    fn contains(&self, node: &N) -> bool {
        self.ring.contains(node)
    }

    fn add_node(&mut self, node: N, weight: u32) -> Result<(), AddNodeError> {
        self.add(node, weight)
    }

    fn remove_node(&mut self, node: &N) -> Result<(), RemoveNodeError> {
        self.remove(node).map(|_| ())
    }

    /// Where a key arriving now would be assigned (no load is counted).
    fn locate_hash(&self, key: KeyHash) -> Option<&N> {
        self.slot_for(key).map(|s| &self.ring.members()[s].id)
    }

    /// The node a key arriving now would get, then the ring's preference
    /// list for the rest.
    fn replicas_hash<'a>(&'a self, key: KeyHash, n: usize, out: &mut Vec<&'a N>) {
        out.clear();
        if n == 0 {
            return;
        }
        let Some(first) = self.locate_hash(key) else {
            return;
        };
        out.push(first);
        for node in self
            .ring
            .preference_list_hash(key, n.saturating_add(1))
            .iter()
        {
            if out.len() == n {
                break;
            }
            if node != first {
                out.push(node);
            }
        }
    }
}
