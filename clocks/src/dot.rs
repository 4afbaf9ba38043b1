//! Dots: the name of one update.

use core::fmt;

/// One update, named by the node that made it and that node's counter:
/// `(node, counter)` is the `counter`-th update issued by `node`.
///
/// Dots are the building block of causal contexts (Almeida et al., "Delta
/// State Replicated Data Types", §5; Preguiça et al., "Dotted Version
/// Vectors"): a [`VersionVector`](crate::VersionVector) says which dots a
/// replica has seen, and a [`DottedVersionVector`](crate::DottedVersionVector)
/// names the dot that created a value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Dot<N> {
    /// The node that issued the update.
    pub node: N,
    /// Its position in that node's sequence of updates, from 1.
    pub counter: u64,
}

impl<N> Dot<N> {
    /// The `counter`-th update of `node`.
    pub const fn new(node: N, counter: u64) -> Self {
        Self { node, counter }
    }
}

/// `A:3`.
impl<N: fmt::Display> fmt::Display for Dot<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.counter)
    }
}
