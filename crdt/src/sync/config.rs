//! The protocol's configuration and counters.

/// Limits of a [`Replica`](crate::Replica).
///
/// `#[non_exhaustive]` with public fields: build it from [`Default`] (or
/// [`full_mesh`](Self::full_mesh)) and assign the fields to change;
/// [`validate`](Self::validate) checks it, and the replica's constructors call it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SyncConfig {
    /// At most this many deltas are buffered; past it the oldest are dropped, and a
    /// peer that had not acknowledged them gets the whole state next time. Bounds memory
    /// when a peer is down for long. At least 1; any larger value is safe (it only
    /// bounds memory). Default 4096.
    pub max_buffered_deltas: usize,
    /// Whether deltas received from one peer are passed on to the others (Algorithm 2
    /// as written: needed when peers are not all connected to each other, as on a
    /// ring or a tree). In a full mesh every peer hears each delta from its origin, and
    /// relaying only multiplies the bytes by the number of peers: turn it off. Without
    /// relaying, replicas still converge, but a replica may see a peer's delta before
    /// the deltas of a third replica that peer had seen: Algorithm 2's causal
    /// consistency of intermediate states holds only with relaying on. Default `true`.
    pub relay: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_buffered_deltas: 4096,
            relay: true,
        }
    }
}

impl SyncConfig {
    /// The configuration for a full mesh: every replica is a peer of every other, so
    /// nothing is relayed.
    pub fn full_mesh() -> Self {
        SyncConfig {
            relay: false,
            ..SyncConfig::default()
        }
    }

    /// Checks every field: `max_buffered_deltas` is at least 1 (`relay` has no invalid
    /// value). [`Replica::new`](crate::Replica::new) and
    /// [`Replica::restore`](crate::Replica::restore) call it; call it yourself to check
    /// a configuration before starting.
    ///
    /// # Errors
    ///
    /// The first field out of bounds, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_buffered_deltas == 0 {
            return Err(ConfigError::ZeroBufferedDeltas);
        }
        Ok(())
    }
}

/// Why a [`SyncConfig`] was refused ([`SyncConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_buffered_deltas` is 0: not even the latest delta could be buffered.
    /// Nothing was created.
    #[error("max_buffered_deltas must be at least 1")]
    ZeroBufferedDeltas,
}

/// What a replica did, for monitoring and for the delta-vs-state comparison
/// ([`Replica::counters`](crate::Replica::counters)). Every counter only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Counters {
    /// Delta-interval messages shipped.
    pub deltas_sent: u64,
    /// Whole-state messages shipped.
    pub states_sent: u64,
    /// Acks sent.
    pub acks_sent: u64,
    /// Received deltas or states that brought something new and were joined.
    pub joined: u64,
    /// Received deltas or states already included in our state (duplicates, echoes).
    pub redundant: u64,
    /// Acks that did not move a peer's acknowledgement (old, duplicated), claimed a
    /// sequence number we never sent, or were sent to an earlier incarnation.
    pub stale_acks: u64,
    /// Messages dropped: malformed, from unknown peers, or not joinable (forged
    /// updates of this replica among them).
    pub rejected: u64,
    /// Deltas dropped from the buffer by `max_buffered_deltas` before every peer had
    /// them.
    pub evicted: u64,
}
