//! How the driver runs a member, and why it may refuse to start.

use std::net::SocketAddr;

use crate::SwimConfigError;

/// How the driver runs a member. Build it from [`DriverConfig::default`] and
/// set fields; [`spawn`](super::spawn) calls [`validate`](Self::validate).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverConfig {
    /// The member's id, the address peers send to. `None`: the socket's local
    /// address, which must then be a specific one (not `0.0.0.0`, not port
    /// 0). Set it when the socket is bound to a wildcard address or sits
    /// behind NAT. Must not be unspecified or port 0.
    pub advertise: Option<SocketAddr>,
    /// The seed of the state machine's RNG. `None`: one derived from the wall
    /// clock and the member's address, so that members, and a member's
    /// restarts, draw differently. Set it to replay a run.
    pub rng_seed: Option<u64>,
    /// Commands from handles queued before [`Handle`](super::Handle) calls
    /// wait for room. From 1 to [`DriverConfig::MAX_QUEUE`].
    pub command_queue: usize,
    /// Membership events queued for [`Events`](super::Events); when it is
    /// full, new events are dropped and counted
    /// ([`DriverCounters::events_dropped`](super::DriverCounters::events_dropped)).
    /// From 1 to [`DriverConfig::MAX_QUEUE`].
    pub event_queue: usize,
    /// Drop a datagram whose source address is not the id its packet claims
    /// (counted in
    /// [`DriverCounters::unknown_sender`](super::DriverCounters::unknown_sender)).
    /// Keeps a peer from speaking in another member's name (refuting its
    /// death, acking its probes) from another address; turn it off only where
    /// sources are rewritten (NAT between members), since ids are then not
    /// the addresses datagrams come from.
    pub require_source_match: bool,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            advertise: None,
            rng_seed: None,
            command_queue: 64,
            event_queue: 1024,
            require_source_match: true,
        }
    }
}

/// A [`DriverConfig`] field out of its limits. Nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverConfigError {
    /// `command_queue` or `event_queue` is 0 or above
    /// [`DriverConfig::MAX_QUEUE`]. Nothing was started.
    #[error("{field} must be between 1 and {max}, got {got}")]
    Queue {
        /// The field.
        field: &'static str,
        /// The configured value.
        got: usize,
        /// [`DriverConfig::MAX_QUEUE`].
        max: usize,
    },
    /// `advertise` is an unspecified address or port 0: no peer could reach
    /// it. Nothing was started.
    #[error("{0} cannot be a member id: peers could not send to it")]
    Advertise(SocketAddr),
}

impl DriverConfig {
    /// Longest `command_queue` and `event_queue`.
    pub const MAX_QUEUE: usize = 1 << 20;

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// The first field out of its limits.
    pub fn validate(&self) -> Result<(), DriverConfigError> {
        for (field, got) in [
            ("command_queue", self.command_queue),
            ("event_queue", self.event_queue),
        ] {
            if got == 0 || got > Self::MAX_QUEUE {
                return Err(DriverConfigError::Queue {
                    field,
                    got,
                    max: Self::MAX_QUEUE,
                });
            }
        }
        if let Some(addr) = self.advertise {
            if !reachable(addr) {
                return Err(DriverConfigError::Advertise(addr));
            }
        }
        Ok(())
    }
}

/// Whether peers could send to `addr`.
pub(super) fn reachable(addr: SocketAddr) -> bool {
    !addr.ip().is_unspecified() && addr.port() != 0
}

/// Why [`spawn`](super::spawn) did not start a driver. Nothing was started,
/// and the socket was dropped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The [`DriverConfig`] is out of its limits. Nothing was started.
    #[error("driver config: {0}")]
    Driver(#[from] DriverConfigError),
    /// The [`SwimConfig`](crate::SwimConfig) is out of its limits for
    /// `SocketAddr` ids. Nothing was started.
    #[error("swim config: {0}")]
    Swim(#[from] SwimConfigError),
    /// The socket's local address could not be read. Nothing was started.
    #[error("local address of the socket: {0}")]
    LocalAddr(#[from] std::io::Error),
    /// No [`DriverConfig::advertise`], and the socket's local address is
    /// unspecified (`0.0.0.0`, `::`) or port 0, so it cannot be the member's
    /// id. Nothing was started.
    #[error("{0} cannot be a member id: set DriverConfig::advertise")]
    Unaddressable(SocketAddr),
    /// Called outside a tokio runtime. Nothing was started.
    #[error("not called from within a tokio runtime")]
    NoRuntime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        assert_eq!(DriverConfig::default().validate(), Ok(()));
        let c = DriverConfig {
            event_queue: 0,
            ..DriverConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(DriverConfigError::Queue {
                field: "event_queue",
                got: 0,
                max: DriverConfig::MAX_QUEUE
            })
        );
        let c = DriverConfig {
            command_queue: usize::MAX,
            ..DriverConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(DriverConfigError::Queue {
                field: "command_queue",
                ..
            })
        ));
        for bad in ["0.0.0.0:7946", "127.0.0.1:0", "[::]:7946"] {
            let addr: SocketAddr = bad.parse().expect("an address");
            let c = DriverConfig {
                advertise: Some(addr),
                ..DriverConfig::default()
            };
            assert_eq!(c.validate(), Err(DriverConfigError::Advertise(addr)));
        }
        let c = DriverConfig {
            advertise: Some("10.0.0.1:7946".parse().expect("an address")),
            ..DriverConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }
}
