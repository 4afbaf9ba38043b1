//! `hash(key) mod N`: the baseline that consistent hashing improves on.

use crate::hash::KeyHash;
use crate::placement::{AddNodeError, NodeId, Placement, RemoveNodeError};

/// Hash-mod-N placement: the owner of `key` is `nodes[key % n]`.
///
/// It is perfectly balanced and needs no memory beyond the node list, but
/// almost every key moves when the list changes. A key stays put from `n` to
/// `n + 1` nodes only if `key mod n == key mod (n + 1)`, which holds for
/// `n` residues out of every `n * (n + 1)` consecutive keys (those with
/// `key mod n(n+1)` below `n`): a fraction `1 / (n + 1)` stays and
/// **`n / (n + 1)` moves**, compared with the `1 / (n + 1)` that moves under
/// [`JumpHash`](crate::JumpHash) or a [`Ring`](crate::Ring). Removing a node
/// shifts the positions of all the nodes after it, with the same effect. It
/// is here to measure the others against, and for fixed clusters where the
/// node count never changes.
///
/// Weights are not supported (any weight but 1 gives
/// [`AddNodeError::WeightsUnsupported`]). Replicas of a key are the nodes at
/// positions `i, i + 1, ...` (mod `n`) from the owner's position `i`.
///
/// ```
/// use dsys_hashring::{KeyHash, ModuloHash, Placement};
///
/// let mut modulo = ModuloHash::new();
/// for node in ["a", "b", "c"] {
///     modulo.add_node(node, 1).unwrap();
/// }
/// assert_eq!(modulo.locate_hash(KeyHash(7)), Some(&"b")); // 7 % 3 == 1
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuloHash<N> {
    /// In the order they were added (minus the removed ones).
    nodes: Vec<N>,
}

impl<N> Default for ModuloHash<N> {
    fn default() -> Self {
        ModuloHash { nodes: Vec::new() }
    }
}

impl<N: NodeId> ModuloHash<N> {
    /// An empty placement.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The nodes by position: the order they were added, removed ones left
    /// out.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &N> + '_ {
        self.nodes.iter()
    }

    /// The owner's position, `key % n`, or `None` when there are no nodes.
    fn position(&self, key: KeyHash) -> Option<usize> {
        let n = u64::try_from(self.nodes.len()).ok().filter(|&n| n > 0)?;
        // `key % n < n`, and `n` came from a `usize`.
        usize::try_from(key.0 % n).ok()
    }
}

impl<N: NodeId> Placement<N> for ModuloHash<N> {
    fn algorithm(&self) -> &'static str {
        "modulo"
    }

    fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn contains(&self, node: &N) -> bool {
        self.nodes.contains(node)
    }

    fn add_node(&mut self, node: N, weight: u32) -> Result<(), AddNodeError> {
        if weight != 1 {
            return Err(AddNodeError::WeightsUnsupported { weight });
        }
        if self.nodes.contains(&node) {
            return Err(AddNodeError::Duplicate);
        }
        self.nodes.push(node);
        Ok(())
    }

    fn remove_node(&mut self, node: &N) -> Result<(), RemoveNodeError> {
        let i = self
            .nodes
            .iter()
            .position(|n| n == node)
            .ok_or(RemoveNodeError::Unknown)?;
        // `Vec::remove` keeps the others in order, so the result is the same
        // as if the node had never been added.
        self.nodes.remove(i);
        Ok(())
    }

    fn locate_hash(&self, key: KeyHash) -> Option<&N> {
        self.nodes.get(self.position(key)?)
    }

    fn replicas_hash<'a>(&'a self, key: KeyHash, n: usize, out: &mut Vec<&'a N>) {
        out.clear();
        let Some(first) = self.position(key) else {
            return;
        };
        let len = self.nodes.len();
        out.extend((0..n.min(len)).map(|step| &self.nodes[(first + step) % len]));
    }
}
