//! Join-semilattices: what makes a state-based CRDT (Shapiro et al. 2011) and a
//! delta-state CRDT (Almeida, Shoker, Baquero 2018).

/// A join-semilattice: a state with a least upper bound.
///
/// `join` must be commutative, associative and idempotent (every type in this crate is
/// property-tested for the three laws), so replicas that have seen the same updates,
/// in any order and any number of times, hold equal states.
///
/// Delta mutators (Almeida et al.) return a value of the same type: a *delta*, a
/// small state that holds just the effect of the mutation, such that joining it into
/// the state before the mutation gives the state after. Deltas join with each other
/// into delta groups, which is what the anti-entropy protocol ([`Replica`](crate::Replica)) ships.
pub trait Lattice: Clone {
    /// `self ← self ⊔ other`.
    fn join(&mut self, other: &Self);

    /// Whether `self ⊑ other`: joining `self` into `other` would change nothing. The
    /// anti-entropy protocol uses it to drop deltas a replica already has (Algorithm 2,
    /// "if d ⋢ X"). The default joins a copy and compares; types override it with a
    /// direct check.
    fn leq(&self, other: &Self) -> bool
    where
        Self: PartialEq,
    {
        let mut joined = other.clone();
        joined.join(self);
        joined == *other
    }

    /// The bottom element ⊥: the state of a replica that has seen nothing.
    fn bottom() -> Self;

    /// Whether this is ⊥ (an empty delta is not worth sending).
    fn is_bottom(&self) -> bool;

    /// Checks, before a join, that `other` (received from a peer) can be joined into
    /// `self`. Every value of this crate's types that decodes is joinable, so the
    /// default accepts everything; types with stricter rules (the `crdts` crate's
    /// `validate_merge`) refuse here, and the anti-entropy protocol drops and counts
    /// what they refuse instead of panicking.
    fn validate_join(&self, other: &Self) -> Result<(), InvalidJoin> {
        let _ = other;
        Ok(())
    }
}

/// A lattice whose updates are authored by named replicas: a counter's entry, a dot, a
/// register write each belong to the replica that made it, and only that replica makes
/// more of them. A peer's value that holds an update of *ours* that we never made is a
/// forgery (or we were restored from an old record, which the persistence contract of
/// [`Replica`](crate::Replica) forbids); joining it would make our next mutation reuse or overflow
/// a counter (`u64::MAX` dots issued: no dot left for the next add).
///
/// [`Replica`](crate::Replica) runs
/// [`validate_peer_join`](Self::validate_peer_join) before every join of a peer's
/// message and drops what it refuses. Lattices with no authored updates (sets without
/// dots, the `crdts` wrapper) implement it with an empty `impl` block.
pub trait Authored<N>: Lattice {
    /// Checks, before a join, that `other` (received from a peer) can be joined into
    /// `self`, the state of replica `me`: [`Lattice::validate_join`], and no update of
    /// `me` beyond those `self` holds. The default checks only the former.
    ///
    /// # Errors
    ///
    /// [`InvalidJoin`] if `other` must not be joined; nothing was changed.
    fn validate_peer_join(&self, me: &N, other: &Self) -> Result<(), InvalidJoin> {
        let _ = me;
        self.validate_join(other)
    }
}

/// A peer's state or delta that cannot be joined into ours (see
/// [`Lattice::validate_join`] and [`Authored::validate_peer_join`]). Nothing was
/// changed: the check runs before the join, and the value was not joined.
///
/// Made with [`new`](Self::new) by a [`Lattice::validate_join`] that refuses; read with
/// [`reason`](Self::reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot join: {reason}")]
#[non_exhaustive]
pub struct InvalidJoin {
    reason: String,
}

impl InvalidJoin {
    /// A refusal, with why (for logs and [`SyncError`](crate::SyncError)'s message).
    pub fn new(reason: impl Into<String>) -> Self {
        InvalidJoin {
            reason: reason.into(),
        }
    }

    /// Why the value cannot be joined.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The refusal of [`Authored::validate_peer_join`]: `other` holds an update of this
    /// replica that it never made.
    pub(crate) fn forged() -> Self {
        InvalidJoin::new(
            "the value holds an update of this replica that it never made (forged by a peer, \
             or this replica was restored from an old record)",
        )
    }
}
