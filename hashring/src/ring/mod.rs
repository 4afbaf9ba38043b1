//! Consistent hashing with virtual nodes (Karger et al. 1997; the seeds'
//! "Consistent Hashing" section; Dynamo §4.2).
//!
//! The hash space is a ring of 2⁶⁴ positions. Each node owns `weight ×
//! vnodes_per_weight` tokens on it; a key belongs to the first token at or
//! after the key's position, wrapping past the top. So the token `t` whose
//! predecessor is `p` owns the range `(p, t]` (Cassandra's convention).
//!
//! Storage is one sorted vector of vnodes (`sortedvec`), plus two derived
//! arrays rebuilt on every membership change: the tokens alone, densely
//! packed, and a radix index from the top bits of a position to the first
//! token with those bits. A lookup reads one index slot and usually one or
//! two tokens, instead of a binary search over every token.

mod allocation;
mod ownership;
mod preference;

use std::fmt;
use std::hash::Hash;

use sortedvec::sortedvec;
use thiserror::Error;

use crate::hash::{KeyHash, derived_point, node_hash};
use crate::placement::{AddNodeError, NodeId, Placement, RemoveNodeError};

pub use ownership::{RebalancePlan, TokenRange, Transfer};
pub use preference::PreferenceList;

/// How a node's tokens are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum TokenAllocation {
    /// Token `i` of a node is a stable hash of the node id and `i`
    /// (`derived_point`), so a node's tokens never depend on who else is in
    /// the ring, and growing a node's weight only adds tokens. Load
    /// imbalance falls like `1/√vnodes` (about 1.1–1.2 peak/mean with 150).
    #[default]
    Hashed,
    /// Each new node's tokens split the largest ranges of the most
    /// overloaded nodes, so that every node's share approaches
    /// `weight / total weight` (in the spirit of Cassandra's token
    /// allocation algorithm, CASSANDRA-7032). The tokens depend on the ring
    /// at the time of the add: the same adds in the same order give the same
    /// ring everywhere, but a different order gives a different ring.
    /// Removing a node hands its ranges to its successors unchanged.
    Balanced,
}

/// Ring-wide settings.
///
/// Built from [`Default`] and changed field by field:
///
/// ```
/// use dsys_hashring::{Ring, RingConfig, TokenAllocation};
///
/// let mut config = RingConfig::default();
/// config.allocation = TokenAllocation::Balanced;
/// let ring: Ring<u32> = Ring::with_config(config)?;
/// # Ok::<(), dsys_hashring::RingConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct RingConfig {
    /// Virtual nodes per unit of weight (default 150, the seeds' value).
    /// More vnodes smooth the load with [`TokenAllocation::Hashed`] and make
    /// lookups slightly slower; must be in `1..=65536`.
    pub vnodes_per_weight: u32,
    /// How tokens are chosen (default [`TokenAllocation::Hashed`]). Any
    /// value is valid.
    pub allocation: TokenAllocation,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            vnodes_per_weight: 150,
            allocation: TokenAllocation::Hashed,
        }
    }
}

/// The largest accepted [`RingConfig::vnodes_per_weight`].
pub const MAX_VNODES_PER_WEIGHT: u32 = 1 << 16;

/// The most vnodes a ring holds in total (positions are `u32` indexes).
pub const MAX_RING_VNODES: u64 = 1 << 22;

impl RingConfig {
    /// Checks the limits documented on each field; [`Ring::with_config`]
    /// calls it.
    ///
    /// # Errors
    /// [`RingConfigError::VnodesPerWeight`] if `vnodes_per_weight` is outside
    /// `1..=65536`.
    pub fn validate(&self) -> Result<(), RingConfigError> {
        if self.vnodes_per_weight == 0 || self.vnodes_per_weight > MAX_VNODES_PER_WEIGHT {
            return Err(RingConfigError::VnodesPerWeight {
                given: self.vnodes_per_weight,
            });
        }
        Ok(())
    }
}

/// Why a [`RingConfig`] was rejected; no ring was built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RingConfigError {
    /// `vnodes_per_weight` outside `1..=65536`. State: no ring was built.
    #[error("vnodes_per_weight must be in 1..=65536, got {given}")]
    VnodesPerWeight {
        /// The value given.
        given: u32,
    },
}

/// Per-node settings for [`Ring::add`]: weight 1 and no zone by default.
///
/// ```
/// use dsys_hashring::{NodeConfig, Ring};
///
/// let mut config = NodeConfig::default();
/// config.weight = 2;
/// config.zone = "eu-west-1a".into();
/// let mut ring = Ring::new();
/// ring.add("big-node", config).unwrap();
/// assert_eq!(ring.weight(&"big-node"), Some(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct NodeConfig {
    /// Relative capacity: the node gets `weight × vnodes_per_weight` tokens.
    /// Must be in `1..=`[`MAX_RING_VNODES`] (a weight above that can never
    /// fit on a ring). Default 1.
    pub weight: u32,
    /// Failure domain (availability zone, rack). Zone-aware preference lists
    /// place replicas in distinct zones first. Nodes without a zone share
    /// the unnamed zone `""` (the default). Any string is valid.
    pub zone: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            weight: 1,
            zone: String::new(),
        }
    }
}

impl NodeConfig {
    /// Checks the limits documented on each field; [`Ring::add`] and
    /// [`Ring::add_with_tokens`] call it (and report a failure as
    /// [`AddNodeError::ZeroWeight`] or [`AddNodeError::CapacityExceeded`]).
    ///
    /// # Errors
    /// [`NodeConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), NodeConfigError> {
        if self.weight == 0 {
            return Err(NodeConfigError::ZeroWeight);
        }
        if u64::from(self.weight) > MAX_RING_VNODES {
            return Err(NodeConfigError::WeightTooLarge { given: self.weight });
        }
        Ok(())
    }
}

/// Why a [`NodeConfig`] was rejected. State: nothing changed (no node was
/// added).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NodeConfigError {
    /// `weight` is 0: a member that owns nothing. Remove the node instead.
    /// State: nothing changed.
    #[error("weight must be at least 1")]
    ZeroWeight,
    /// `weight` is above [`MAX_RING_VNODES`]: even at one vnode per unit of
    /// weight it cannot fit on a ring. State: nothing changed.
    #[error("weight {given} exceeds the 2^22 vnodes a ring holds")]
    WeightTooLarge {
        /// The value given.
        given: u32,
    },
}

impl From<NodeConfigError> for AddNodeError {
    fn from(e: NodeConfigError) -> Self {
        match e {
            NodeConfigError::ZeroWeight => AddNodeError::ZeroWeight,
            NodeConfigError::WeightTooLarge { .. } => AddNodeError::CapacityExceeded {
                what: "more than 2^22 vnodes on one ring",
            },
        }
    }
}

/// A physical node and what the ring knows about it.
#[derive(Debug, Clone)]
pub(crate) struct Member<N> {
    pub(crate) id: N,
    /// Stable 64-bit identity (`hash::node_hash`).
    pub(crate) hash: u64,
    pub(crate) weight: u32,
    /// Index into `Ring::zones`.
    pub(crate) zone: u32,
}

/// One token on the ring. Ordered by token, then by the owner's stable
/// hash, so that a (vanishingly rare) token collision resolves the same way
/// whatever the insertion order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VNode {
    pub(crate) token: u64,
    pub(crate) node_hash: u64,
    /// Index into `Ring::members`.
    pub(crate) slot: u32,
}

sortedvec! {
    /// The ring: every vnode, in token order.
    #[derive(Debug, Clone)]
    pub(crate) struct VNodes {
        fn derive_key(v: &VNode) -> (u64, u64) { (v.token, v.node_hash) }
    }
}

/// A consistent-hash ring with weighted virtual nodes.
///
/// ```
/// use dsys_hashring::{NodeConfig, Ring};
///
/// let mut ring = Ring::new();
/// for (node, zone) in [("a", "z1"), ("b", "z1"), ("c", "z2"), ("d", "z3")] {
///     let mut config = NodeConfig::default();
///     config.zone = zone.into();
///     ring.add(node, config).unwrap();
/// }
/// let owner = ring.locate("user:1001").unwrap();
/// let replicas = ring.preference_list_zoned("user:1001", 3);
/// assert_eq!(replicas.primary(), Some(owner));
/// assert_eq!(replicas.len(), 3); // one node from each of z1, z2, z3
/// ```
#[derive(Clone)]
pub struct Ring<N> {
    config: RingConfig,
    members: Vec<Member<N>>,
    zones: Vec<String>,
    vnodes: VNodes,
    /// `vnodes[i].token`, packed for the lookup.
    tokens: Vec<u64>,
    /// `vnodes[i].slot`, packed for preference-list walks.
    owners: Vec<u32>,
    /// The zone of `owners[i]`, packed for zone-aware walks.
    owner_zones: Vec<u32>,
    /// `index[b]` is the first vnode whose token's top `index_bits` bits are
    /// at least `b`; `index[2^bits] == len`.
    index: Vec<u32>,
    index_bits: u32,
    /// Distinct zones among the members (kept for zone-aware walks).
    distinct_zones: usize,
}

impl<N: NodeId> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<N: fmt::Debug> fmt::Debug for Ring<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("config", &self.config)
            .field(
                "nodes",
                &self.members.iter().map(|m| &m.id).collect::<Vec<_>>(),
            )
            .field("vnodes", &self.tokens.len())
            .finish()
    }
}

impl<N: NodeId> Ring<N> {
    /// An empty ring with the default [`RingConfig`] (150 hashed vnodes per
    /// unit of weight).
    #[must_use]
    pub fn new() -> Self {
        Ring {
            config: RingConfig::default(),
            members: Vec::new(),
            zones: vec![String::new()],
            vnodes: VNodes::default(),
            tokens: Vec::new(),
            owners: Vec::new(),
            owner_zones: Vec::new(),
            index: Vec::new(),
            index_bits: 0,
            distinct_zones: 0,
        }
    }

    /// An empty ring with `config`.
    ///
    /// # Errors
    /// [`RingConfigError`] if `config` is invalid ([`RingConfig::validate`]).
    pub fn with_config(config: RingConfig) -> Result<Self, RingConfigError> {
        config.validate()?;
        Ok(Ring {
            config,
            ..Self::new()
        })
    }

    /// The ring's settings.
    #[must_use]
    pub fn config(&self) -> &RingConfig {
        &self.config
    }

    // ---- getters -------------------------------------------------------

    /// Number of physical nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when the ring has no nodes (every lookup returns `None`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of vnodes (tokens) on the ring.
    #[must_use]
    pub fn vnode_count(&self) -> usize {
        self.tokens.len()
    }

    /// The nodes, in the order they were added.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &N> + '_ {
        self.members.iter().map(|m| &m.id)
    }

    /// True when `node` is a member.
    #[must_use]
    pub fn contains(&self, node: &N) -> bool {
        self.slot_of(node).is_some()
    }

    /// `node`'s weight, or `None` when it is not a member.
    #[must_use]
    pub fn weight(&self, node: &N) -> Option<u32> {
        self.slot_of(node).map(|s| self.members[s].weight)
    }

    /// `node`'s zone (`""` when none was given), or `None` when it is not a
    /// member.
    #[must_use]
    pub fn zone(&self, node: &N) -> Option<&str> {
        self.slot_of(node)
            .map(|s| self.zones[self.members[s].zone as usize].as_str())
    }

    /// Number of distinct zones among the members.
    #[must_use]
    pub fn zone_count(&self) -> usize {
        self.distinct_zones
    }

    fn count_zones(&self) -> usize {
        let mut seen: Vec<u32> = self.members.iter().map(|m| m.zone).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    /// Every token with its owner, in ring order.
    pub fn tokens(&self) -> impl ExactSizeIterator<Item = (u64, &N)> + '_ {
        self.vnodes
            .iter()
            .map(|v| (v.token, &self.members[v.slot as usize].id))
    }

    /// `node`'s tokens in ascending order (empty if it is not a member):
    /// what a cluster publishes so clients can rebuild the same ring with
    /// [`add_with_tokens`](Ring::add_with_tokens).
    #[must_use]
    pub fn tokens_of(&self, node: &N) -> Vec<u64> {
        let Some(slot) = self.slot_of(node) else {
            return Vec::new();
        };
        self.vnodes
            .iter()
            .filter(|v| v.slot as usize == slot)
            .map(|v| v.token)
            .collect()
    }

    // ---- lookups -------------------------------------------------------

    /// The owner of a [`Hash`] key (see [`KeyHash::of`]), or `None` on an
    /// empty ring.
    #[inline]
    pub fn locate<K: Hash + ?Sized>(&self, key: &K) -> Option<&N> {
        self.locate_hash(KeyHash::of(key))
    }

    /// The owner of a byte key (see [`KeyHash::of_bytes`]).
    #[inline]
    pub fn locate_bytes(&self, key: &[u8]) -> Option<&N> {
        self.locate_hash(KeyHash::of_bytes(key))
    }

    /// The owner of the position `key`.
    #[inline]
    pub fn locate_hash(&self, key: KeyHash) -> Option<&N> {
        let vnode = self.vnode_at(key.0)?;
        Some(&self.members[self.owners[vnode] as usize].id)
    }

    /// Index of the vnode owning `point`: the first token `>= point`,
    /// wrapping to 0 past the last token.
    #[inline]
    pub(crate) fn vnode_at(&self, point: u64) -> Option<usize> {
        if self.tokens.is_empty() {
            return None;
        }
        let bucket = (point >> (64 - self.index_bits)) as usize;
        let start = self.index[bucket] as usize;
        let end = self.index[bucket + 1] as usize;
        // Tokens in [start, end) share the point's top bits; any token after
        // `end` is larger still, so the answer is in this bucket or is `end`.
        let mut i = start;
        while i < end && self.tokens[i] < point {
            i += 1;
        }
        Some(if i == self.tokens.len() { 0 } else { i })
    }

    // ---- membership ----------------------------------------------------

    /// Adds `node` with `config`'s weight and zone.
    ///
    /// Errors leave the ring unchanged: [`AddNodeError::Duplicate`],
    /// [`AddNodeError::ZeroWeight`], [`AddNodeError::CapacityExceeded`]
    /// (more than 2²² vnodes in total), [`AddNodeError::HashCollision`].
    pub fn add(&mut self, node: N, config: NodeConfig) -> Result<(), AddNodeError> {
        let hash = self.admissible(&node, &config)?;
        let vnodes = u64::from(config.weight) * u64::from(self.config.vnodes_per_weight);
        if self.tokens.len() as u64 + vnodes > MAX_RING_VNODES
            || self.members.len() >= u32::MAX as usize
        {
            return Err(AddNodeError::CapacityExceeded {
                what: "more than 2^22 vnodes on one ring",
            });
        }
        let tokens = match self.config.allocation {
            TokenAllocation::Hashed => (0..vnodes).map(|i| derived_point(hash, i)).collect(),
            TokenAllocation::Balanced => {
                allocation::balanced_tokens(self, hash, config.weight, vnodes as usize)
            }
        };
        self.insert_member(node, hash, config, tokens);
        Ok(())
    }

    /// Adds `node` with tokens chosen elsewhere, ignoring the ring's
    /// [`TokenAllocation`] and `vnodes_per_weight`: this is how a client
    /// reproduces a ring whose tokens the cluster publishes (as Cassandra
    /// gossips each node's tokens), e.g. after [`TokenAllocation::Balanced`]
    /// placed them. Read a node's tokens back with [`Ring::tokens`].
    ///
    /// Errors as [`add`](Ring::add), plus [`AddNodeError::CapacityExceeded`]
    /// for an empty token list. Duplicate tokens within the list are merged.
    pub fn add_with_tokens(
        &mut self,
        node: N,
        config: NodeConfig,
        tokens: impl IntoIterator<Item = u64>,
    ) -> Result<(), AddNodeError> {
        let hash = self.admissible(&node, &config)?;
        let mut tokens: Vec<u64> = tokens.into_iter().collect();
        tokens.sort_unstable();
        tokens.dedup();
        if tokens.is_empty() {
            return Err(AddNodeError::CapacityExceeded {
                what: "a node needs at least one token",
            });
        }
        if self.tokens.len() as u64 + tokens.len() as u64 > MAX_RING_VNODES {
            return Err(AddNodeError::CapacityExceeded {
                what: "more than 2^22 vnodes on one ring",
            });
        }
        self.insert_member(node, hash, config, tokens);
        Ok(())
    }

    /// Checks a would-be member; returns its node hash.
    fn admissible(&self, node: &N, config: &NodeConfig) -> Result<u64, AddNodeError> {
        config.validate()?;
        if self.contains(node) {
            return Err(AddNodeError::Duplicate);
        }
        let hash = node_hash(node);
        if self.members.iter().any(|m| m.hash == hash) {
            return Err(AddNodeError::HashCollision);
        }
        Ok(hash)
    }

    fn insert_member(&mut self, node: N, hash: u64, config: NodeConfig, tokens: Vec<u64>) {
        let zone = self.intern_zone(config.zone);
        let slot = self.members.len() as u32;
        self.members.push(Member {
            id: node,
            hash,
            weight: config.weight,
            zone,
        });
        let mut added: Vec<VNode> = tokens
            .into_iter()
            .map(|token| VNode {
                token,
                node_hash: hash,
                slot,
            })
            .collect();
        added.sort_unstable_by_key(|v| (v.token, v.node_hash));
        // Merge the two sorted runs (O(vnodes)); re-wrapping a sorted vector
        // costs one linear pass, where `extend` would sort everything again.
        let old: Vec<VNode> = std::mem::take(&mut self.vnodes).into();
        let mut merged = Vec::with_capacity(old.len() + added.len());
        let (mut a, mut b) = (old.into_iter().peekable(), added.into_iter().peekable());
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            let next = if (x.token, x.node_hash) <= (y.token, y.node_hash) {
                a.next()
            } else {
                b.next()
            };
            merged.extend(next);
        }
        merged.extend(a);
        merged.extend(b);
        self.vnodes = VNodes::from(merged);
        self.rebuild_lookup();
    }

    /// Adds every node with weight 1 and no zone, rebuilding the lookup
    /// structures once (the fast way to build a ring from scratch). On the
    /// first error nothing has changed.
    pub fn extend_nodes(&mut self, nodes: impl IntoIterator<Item = N>) -> Result<(), AddNodeError> {
        if self.config.allocation == TokenAllocation::Balanced {
            // Each balanced add depends on the ring so far.
            let mut staged = self.clone();
            for node in nodes {
                staged.add(node, NodeConfig::default())?;
            }
            *self = staged;
            return Ok(());
        }
        let nodes: Vec<N> = nodes.into_iter().collect();
        let mut hashes: Vec<u64> = self.members.iter().map(|m| m.hash).collect();
        for (i, node) in nodes.iter().enumerate() {
            if self.contains(node) || nodes[..i].contains(node) {
                return Err(AddNodeError::Duplicate);
            }
            hashes.push(node_hash(node));
        }
        let mut sorted = hashes.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(AddNodeError::HashCollision);
        }
        let per = u64::from(self.config.vnodes_per_weight);
        if self.tokens.len() as u64 + per * nodes.len() as u64 > MAX_RING_VNODES {
            return Err(AddNodeError::CapacityExceeded {
                what: "more than 2^22 vnodes on one ring",
            });
        }
        let mut all: Vec<VNode> = std::mem::take(&mut self.vnodes).into();
        all.reserve(nodes.len() * per as usize);
        for (node, &hash) in nodes.into_iter().zip(&hashes[self.members.len()..]) {
            let slot = self.members.len() as u32;
            self.members.push(Member {
                id: node,
                hash,
                weight: 1,
                zone: 0,
            });
            all.extend((0..per).map(|i| VNode {
                token: derived_point(hash, i),
                node_hash: hash,
                slot,
            }));
        }
        self.vnodes = VNodes::from(all);
        self.rebuild_lookup();
        Ok(())
    }

    /// Removes `node` and its vnodes; each of its ranges passes to the next
    /// token on the ring. [`RemoveNodeError::Unknown`] if it is not a member.
    pub fn remove(&mut self, node: &N) -> Result<(), RemoveNodeError> {
        let slot = self.slot_of(node).ok_or(RemoveNodeError::Unknown)? as u32;
        self.members.remove(slot as usize);
        let mut all: Vec<VNode> = std::mem::take(&mut self.vnodes).into();
        all.retain(|v| v.slot != slot);
        for v in &mut all {
            if v.slot > slot {
                v.slot -= 1;
            }
        }
        self.vnodes = VNodes::from(all);
        self.rebuild_lookup();
        Ok(())
    }

    /// Changes `node`'s weight. With [`TokenAllocation::Hashed`] a node's
    /// tokens `0..k` are the same whatever its weight, so growing a weight
    /// only adds tokens and shrinking only removes some: the minimum moves.
    /// With [`TokenAllocation::Balanced`] the node is re-allocated.
    pub fn set_weight(&mut self, node: &N, weight: u32) -> Result<(), AddNodeError> {
        if weight == 0 {
            return Err(AddNodeError::ZeroWeight);
        }
        let Some(slot) = self.slot_of(node) else {
            // Not a member: add it, which is what a weight for a new node means.
            let config = NodeConfig {
                weight,
                ..NodeConfig::default()
            };
            return self.add(node.clone(), config);
        };
        let member = &self.members[slot];
        let config = NodeConfig {
            weight,
            zone: self.zones[member.zone as usize].clone(),
        };
        let mut staged = self.clone();
        // `slot_of` found it, so removal cannot fail.
        let _ = staged.remove(node);
        staged.add(node.clone(), config)?;
        *self = staged;
        Ok(())
    }

    // ---- internals -----------------------------------------------------

    pub(crate) fn slot_of(&self, node: &N) -> Option<usize> {
        self.members.iter().position(|m| &m.id == node)
    }

    pub(crate) fn members(&self) -> &[Member<N>] {
        &self.members
    }

    pub(crate) fn owner_slots(&self) -> &[u32] {
        &self.owners
    }

    pub(crate) fn token_slice(&self) -> &[u64] {
        &self.tokens
    }

    fn intern_zone(&mut self, zone: String) -> u32 {
        match self.zones.iter().position(|z| *z == zone) {
            Some(i) => i as u32,
            None => {
                self.zones.push(zone);
                (self.zones.len() - 1) as u32
            }
        }
    }

    /// Rebuilds the packed token/owner arrays and the radix index.
    fn rebuild_lookup(&mut self) {
        self.tokens.clear();
        self.owners.clear();
        self.tokens.extend(self.vnodes.iter().map(|v| v.token));
        self.owners.extend(self.vnodes.iter().map(|v| v.slot));
        self.owner_zones.clear();
        let members = &self.members;
        self.owner_zones
            .extend(self.owners.iter().map(|&s| members[s as usize].zone));
        self.distinct_zones = self.count_zones();
        let len = self.tokens.len();
        if len == 0 {
            self.index.clear();
            self.index_bits = 0;
            return;
        }
        // About one token per bucket: 2^bits >= len, at least 2 buckets.
        self.index_bits = (usize::BITS - (len - 1).leading_zeros()).clamp(1, 28);
        let buckets = 1usize << self.index_bits;
        let shift = 64 - self.index_bits;
        self.index.clear();
        self.index.reserve(buckets + 1);
        let mut i = 0usize;
        for bucket in 0..buckets {
            while i < len && ((self.tokens[i] >> shift) as usize) < bucket {
                i += 1;
            }
            self.index.push(i as u32);
        }
        self.index.push(len as u32);
    }
}

impl<N: NodeId> Placement<N> for Ring<N> {
    fn algorithm(&self) -> &'static str {
        match self.config.allocation {
            TokenAllocation::Hashed => "ring",
            TokenAllocation::Balanced => "ring (balanced)",
        }
    }

    fn node_count(&self) -> usize {
        self.len()
    }

    fn contains(&self, node: &N) -> bool {
        Ring::contains(self, node)
    }

    fn add_node(&mut self, node: N, weight: u32) -> Result<(), AddNodeError> {
        let config = NodeConfig {
            weight,
            ..NodeConfig::default()
        };
        self.add(node, config)
    }

    fn remove_node(&mut self, node: &N) -> Result<(), RemoveNodeError> {
        self.remove(node)
    }

    fn locate_hash(&self, key: KeyHash) -> Option<&N> {
        Ring::locate_hash(self, key)
    }

    fn replicas_hash<'a>(&'a self, key: KeyHash, n: usize, out: &mut Vec<&'a N>) {
        out.clear();
        out.extend(self.preference_list_hash(key, n).iter());
    }
}
