//! Dotted version vectors (Preguiça, Baquero, Almeida, Fonte, Gonçalves 2010,
//! "Dotted Version Vectors: Logical Clocks for Optimistic Replication"), as
//! Riak uses them to track causality between the versions of a key.
//!
//! The problem they solve ("sibling explosion"): with one version vector per
//! *server*, two clients that write the same key through the same server with
//! stale contexts are indistinguishable from one client overwriting itself,
//! so a concurrent write is silently lost. With one entry per *client*, the
//! vectors grow with the number of clients. A DVV keeps per-server entries but
//! tags each version with the exact *dot* that created it (§4): the version is
//! `(dot, context)` where `context` is what the writing client had read. A
//! later write discards exactly the versions whose dot the writer's context
//! contains, so the store holds one sibling per truly concurrent write and no
//! more (§5, "Sync" and "Update").

use crate::counter::CounterOverflow;
use crate::dot::Dot;
use crate::node::NodeId;
use crate::vector::{CausalOrder, VersionVector};

/// The clock of one version: the dot that created it, plus the causal past
/// (the context the writer had read) that it supersedes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        try_from = "UncheckedDvv<N>",
        bound(
            serialize = "N: serde::Serialize",
            deserialize = "N: serde::Deserialize<'de> + crate::NodeId"
        )
    )
)]
pub struct DottedVersionVector<N> {
    dot: Dot<N>,
    context: VersionVector<N>,
}

impl<N: NodeId> DottedVersionVector<N> {
    /// The version created by `dot` after seeing `context`.
    pub fn new(dot: Dot<N>, context: VersionVector<N>) -> Self {
        Self { dot, context }
    }

    /// The update that created this version.
    pub fn dot(&self) -> &Dot<N> {
        &self.dot
    }

    /// What the writer had seen when it created this version.
    pub fn context(&self) -> &VersionVector<N> {
        &self.context
    }

    /// Whether `dot` is in this version's causal history (its own dot or any
    /// dot of its context).
    pub fn history_contains(&self, dot: &Dot<N>) -> bool {
        *dot == self.dot || self.context.contains(dot)
    }

    /// How this version relates to `other` (§4: `a <= b` iff `a`'s dot is in
    /// `b`'s history).
    pub fn compare(&self, other: &Self) -> CausalOrder {
        if self.dot == other.dot {
            CausalOrder::Equal
        } else if other.history_contains(&self.dot) {
            CausalOrder::Before
        } else if self.history_contains(&other.dot) {
            CausalOrder::After
        } else {
            CausalOrder::Concurrent
        }
    }

    /// The whole causal history as a plain version vector (context + dot).
    pub fn to_version_vector(&self) -> VersionVector<N> {
        let mut vv = self.context.clone();
        vv.add(&self.dot);
        vv
    }
}

/// The concurrent versions ("siblings") of one key at one replica, each with
/// its [`DottedVersionVector`]. This is the per-key state a Dynamo/Riak-style
/// store keeps.
///
/// The read-modify-write cycle:
/// 1. a client reads [`values`](Self::values) and [`context`](Self::context);
/// 2. it writes back with [`update`](Self::update), passing that context:
///    every version it saw is superseded, versions it did not see survive as
///    siblings;
/// 3. replicas exchange state with [`merge`](Self::merge).
///
/// ```
/// use dsys_clocks::Siblings;
///
/// let mut cart = Siblings::new();
/// // Two clients read the empty cart, then both write through server "S".
/// let ctx = cart.context();
/// cart.update(&ctx, &"S", "milk")?;
/// cart.update(&ctx, &"S", "eggs")?; // did not see "milk": a sibling
/// assert_eq!(cart.values().count(), 2);
/// // A client that read both resolves them.
/// let ctx = cart.context();
/// cart.update(&ctx, &"S", "milk+eggs")?;
/// assert_eq!(cart.values().collect::<Vec<_>>(), [&"milk+eggs"]);
/// # Ok::<(), dsys_clocks::CounterOverflow>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        try_from = "UncheckedSiblings<N, V>",
        bound(
            serialize = "N: serde::Serialize, V: serde::Serialize",
            deserialize = "N: serde::Deserialize<'de> + crate::NodeId, V: serde::Deserialize<'de>"
        )
    )
)]
pub struct Siblings<N, V> {
    versions: Vec<(DottedVersionVector<N>, V)>,
}

impl<N, V> Default for Siblings<N, V> {
    fn default() -> Self {
        Self {
            versions: Vec::new(),
        }
    }
}

impl<N: NodeId, V> Siblings<N, V> {
    /// No versions: a key never written.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current sibling values, oldest write first.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> + '_ {
        self.versions.iter().map(|(_, value)| value)
    }

    /// Each sibling with its clock.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&DottedVersionVector<N>, &V)> + '_ {
        self.versions.iter().map(|(clock, value)| (clock, value))
    }

    /// Number of siblings.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// `true` for a key never written.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The causal context to hand to a reader: the join of every sibling's
    /// history. Passing it back to [`update`](Self::update) supersedes all
    /// the siblings the reader saw.
    pub fn context(&self) -> VersionVector<N> {
        let mut vv = VersionVector::new();
        for (clock, _) in &self.versions {
            vv.merge(&clock.context);
            vv.add(&clock.dot);
        }
        vv
    }

    /// A write of `value` at replica `server` by a client that had read
    /// `context` (DVV §5 "Update"): discards every sibling whose dot the
    /// context contains, then adds the new version with a fresh dot of
    /// `server`. Returns that dot.
    ///
    /// `server` MUST be the id of the replica that owns this `Siblings`:
    /// dots are unique only because each replica mints its own, and a dot
    /// minted under another replica's name can collide with one that replica
    /// minted, making [`merge`](Self::merge) drop a write.
    ///
    /// `context` MUST be one that [`context`](Self::context) returned
    /// together with the [`values`](Self::values) the client read (on this
    /// or another replica): it names exactly the versions the client saw.
    /// A client MUST NOT build its next context as "my last context plus the
    /// dot my write returned": a version vector counts each node from 1, so
    /// `add(dot)` also claims every earlier dot of `server`, including
    /// concurrent writes the client never read, and its next write would
    /// silently discard them. To write again, read again (Riak's
    /// `return_body` does the read in the write's reply).
    ///
    /// # Errors
    /// [`CounterOverflow`] if `server`'s counter would pass `u64::MAX` (only
    /// a corrupt context carries such a value); nothing changes.
    pub fn update(
        &mut self,
        context: &VersionVector<N>,
        server: &N,
        value: V,
    ) -> Result<Dot<N>, CounterOverflow> {
        // The new dot must exceed every dot `server` ever issued for this key.
        // Discarded versions are covered by a retained one, so the join of
        // the retained histories (plus the client's context) holds the max.
        let issued = self.context().get(server).max(context.get(server));
        let dot = Dot::new(server.clone(), crate::counter::successor(issued)?);
        self.versions
            .retain(|(clock, _)| !context.contains(&clock.dot));
        self.versions.push((
            DottedVersionVector::new(dot.clone(), context.clone()),
            value,
        ));
        Ok(dot)
    }

    /// Anti-entropy between replicas (DVV §5 "Sync"): keeps every version of
    /// either side that no version of the other side supersedes.
    pub fn merge(&mut self, other: &Self)
    where
        V: Clone,
    {
        let superseded_by = |clock: &DottedVersionVector<N>,
                             side: &[(DottedVersionVector<N>, V)]| {
            side.iter()
                .any(|(c, _)| clock.compare(c) == CausalOrder::Before)
        };
        let incoming: Vec<_> = other
            .versions
            .iter()
            .filter(|(clock, _)| {
                !superseded_by(clock, &self.versions)
                    && !self.versions.iter().any(|(c, _)| c.dot == clock.dot)
            })
            .cloned()
            .collect();
        self.versions
            .retain(|(clock, _)| !superseded_by(clock, &other.versions));
        self.versions.extend(incoming);
    }
}

/// Deserialized parts of a [`DottedVersionVector`], before validation.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "N: serde::Deserialize<'de> + crate::NodeId"))]
struct UncheckedDvv<N> {
    dot: Dot<N>,
    context: VersionVector<N>,
}

#[cfg(feature = "serde")]
impl<N: NodeId> TryFrom<UncheckedDvv<N>> for DottedVersionVector<N> {
    type Error = &'static str;

    /// Rejects what no update creates: a zero counter (dots count from 1),
    /// or a dot its own context already contains.
    fn try_from(raw: UncheckedDvv<N>) -> Result<Self, Self::Error> {
        if raw.dot.counter == 0 {
            return Err("dot counter 0: dots count from 1");
        }
        if raw.context.contains(&raw.dot) {
            return Err("dot inside its own context");
        }
        Ok(Self::new(raw.dot, raw.context))
    }
}

/// Deserialized versions of a [`Siblings`], before validation.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(bound(
    deserialize = "N: serde::Deserialize<'de> + crate::NodeId, V: serde::Deserialize<'de>"
))]
struct UncheckedSiblings<N, V> {
    versions: Vec<(DottedVersionVector<N>, V)>,
}

#[cfg(feature = "serde")]
impl<N: NodeId, V> TryFrom<UncheckedSiblings<N, V>> for Siblings<N, V> {
    type Error = &'static str;

    /// Rejects two versions with one dot (which value is it?) or that each
    /// contain the other's dot (no history does that), and drops versions
    /// another one supersedes, as any update or sync would.
    fn try_from(raw: UncheckedSiblings<N, V>) -> Result<Self, Self::Error> {
        let clocks: Vec<_> = raw
            .versions
            .iter()
            .map(|(clock, _)| clock.clone())
            .collect();
        for (i, a) in clocks.iter().enumerate() {
            for b in &clocks[i + 1..] {
                if a.dot == b.dot {
                    return Err("two versions with the same dot");
                }
                if a.history_contains(&b.dot) && b.history_contains(&a.dot) {
                    return Err("two versions that each claim to have seen the other");
                }
            }
        }
        let versions = raw
            .versions
            .into_iter()
            .filter(|(clock, _)| {
                !clocks
                    .iter()
                    .any(|other| clock.compare(other) == CausalOrder::Before)
            })
            .collect();
        Ok(Self { versions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dvv(
        node: &'static str,
        counter: u64,
        ctx: &[(&'static str, u64)],
    ) -> DottedVersionVector<&'static str> {
        DottedVersionVector::new(
            Dot::new(node, counter),
            VersionVector::from_entries(ctx.iter().copied()),
        )
    }

    #[test]
    fn compare_by_dot_membership() {
        let a = dvv("S", 1, &[]);
        let b = dvv("S", 2, &[("S", 1)]);
        let c = dvv("S", 3, &[]);
        assert_eq!(a.compare(&b), CausalOrder::Before);
        assert_eq!(b.compare(&a), CausalOrder::After);
        // `c` was written by a client that had seen nothing: concurrent with
        // both, although a per-server version vector would say S:3 > S:2.
        assert_eq!(b.compare(&c), CausalOrder::Concurrent);
        assert_eq!(a.compare(&a.clone()), CausalOrder::Equal);
    }

    #[test]
    fn merge_is_idempotent_and_keeps_concurrent_versions() {
        let mut r1: Siblings<&str, &str> = Siblings::new();
        let mut r2 = Siblings::new();
        r1.update(&VersionVector::new(), &"R1", "x").unwrap();
        r2.update(&VersionVector::new(), &"R2", "y").unwrap();
        let mut m = r1.clone();
        m.merge(&r2);
        assert_eq!(m.len(), 2);
        let again = m.clone();
        m.merge(&again);
        assert_eq!(m, again);
        // A write that saw both supersedes both on sync.
        let ctx = m.context();
        r1.update(&ctx, &"R1", "x+y").unwrap();
        m.merge(&r1);
        assert_eq!(m.values().collect::<Vec<_>>(), [&"x+y"]);
    }
}
