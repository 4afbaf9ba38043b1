//! Why a received message was dropped, and why a restart was refused.

use super::config::ConfigError;
use crate::codec::DecodeError;
use crate::lattice::InvalidJoin;

/// Why a received message was dropped ([`Replica::handle_message`],
/// [`Replica::handle_bytes`]). The drop is counted in [`Counters::rejected`]; nothing
/// else changed.
///
/// [`Replica::handle_message`]: crate::Replica::handle_message
/// [`Replica::handle_bytes`]: crate::Replica::handle_bytes
/// [`Counters::rejected`]: crate::Counters::rejected
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The bytes are not a message. Nothing changed but the counter.
    #[error("malformed message: {0}")]
    Malformed(#[from] DecodeError),
    /// The sender is not a peer of this replica
    /// ([`Replica::add_peer`](crate::Replica::add_peer)). Nothing changed but the
    /// counter.
    #[error("message from a replica that is not a peer")]
    UnknownPeer,
    /// The state or delta cannot be joined into ours
    /// ([`Authored::validate_peer_join`](crate::Authored::validate_peer_join)): it was
    /// not joined and not acknowledged. Nothing changed but the counter.
    #[error(transparent)]
    Invalid(#[from] InvalidJoin),
}

/// Why [`Replica::restore`](crate::Replica::restore) refused to restart a replica from
/// its persisted record. Nothing was created; the record is untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The configuration is invalid ([`SyncConfig::validate`](crate::SyncConfig::validate)),
    /// whatever the record holds. Nothing was created.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The persisted incarnation is `u64::MAX`: there is no next one. No correct
    /// replica restarts that often; the record is corrupt. Nothing was created.
    #[error("incarnation numbers exhausted")]
    IncarnationExhausted,
}
