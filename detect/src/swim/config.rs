//! Protocol parameters. The defaults are hashicorp/memberlist's `DefaultLANConfig`, the
//! configuration Lifeguard was evaluated with (Dadgar et al. 2017, §5).

use std::time::Duration;

use super::id::NodeId;

/// SWIM and Lifeguard parameters. Build one from [`SwimConfig::default`] and adjust fields;
/// [`SwimConfig::validate_for`] (called by [`Swim::new`](super::Swim::new)) checks the
/// limits each field documents.
///
/// Every field is bounded (the constants on this type), so that nothing a valid
/// config holds can overflow later: the longest timer a valid config can set, a
/// suspicion timeout of `MAX_INTERVAL · MAX_MULTIPLIER · log10(n) · MAX_MULTIPLIER`,
/// is under 2 · 10¹² s, which any `Instant` read from a clock can be advanced by.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SwimConfig {
    /// Written into every packet; packets with another id are rejected and counted.
    /// Keeps two clusters on one network (staging and production) from merging.
    pub cluster_id: u64,
    /// The protocol period T' (SWIM §3.1): one member is probed per period. Not zero,
    /// at most [`SwimConfig::MAX_INTERVAL`].
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before asking others (SWIM §3.1). Must be
    /// shorter than `probe_interval`; a high quantile of the network round-trip time.
    pub probe_timeout: Duration,
    /// `k`, members asked to ping-req a member that missed its direct ack (SWIM §3.1).
    /// At most [`SwimConfig::MAX_FANOUT`].
    pub indirect_checks: usize,
    /// λ in "each update is piggybacked λ·log(n) times" (SWIM §4.1). From 1 to
    /// [`SwimConfig::MAX_MULTIPLIER`].
    pub retransmit_mult: u32,
    /// The suspicion timeout, in protocol periods per log10(n) (SWIM §4.2,
    /// memberlist's `SuspicionMult`): the shortest a suspicion lasts, reached once
    /// enough members confirm it. From 1 to [`SwimConfig::MAX_MULTIPLIER`].
    pub suspicion_mult: u32,
    /// Lifeguard §4.3: an unconfirmed suspicion lasts this many times the shortest
    /// suspicion timeout, shrinking logarithmically with each independent confirmation.
    /// From 1 (which turns dynamic suspicion off) to [`SwimConfig::MAX_MULTIPLIER`].
    pub suspicion_max_timeout_mult: u32,
    /// Lifeguard §4.1: the local health multiplier's ceiling, S in the paper. Probe
    /// timeouts and the probe interval stretch up to this factor while this node
    /// misses acks and nacks it should have had. From 1 (which turns it off) to
    /// [`SwimConfig::MAX_MULTIPLIER`].
    pub awareness_max_multiplier: u32,
    /// How often pending updates are pushed to `gossip_nodes` random members without
    /// waiting for a probe to carry them (memberlist's `GossipInterval`). Zero turns
    /// gossip off and leaves dissemination to the protocol messages alone, as in SWIM.
    /// At most [`SwimConfig::MAX_INTERVAL`].
    pub gossip_interval: Duration,
    /// Members each gossip round sends to. At most [`SwimConfig::MAX_FANOUT`].
    pub gossip_nodes: usize,
    /// How often this node announces itself to one member it believes down (and, when
    /// it knows nobody alive, to its seeds), asking for their view. This is what lets
    /// the two sides of a healed partition, or a node that lost every peer, find each
    /// other again. Not zero, at most [`SwimConfig::MAX_INTERVAL`].
    pub announce_interval: Duration,
    /// How often this node exchanges its whole view with one random live member
    /// (anti-entropy, memberlist's `PushPullInterval`): repairs updates that
    /// dissemination lost. Costs about 4 bytes per member each way per exchange. Zero
    /// turns it off. At most [`SwimConfig::MAX_INTERVAL`].
    pub sync_interval: Duration,
    /// How long a member that is down or has left is remembered, so stale news about it
    /// cannot bring it back, and so it can be announced to after a partition. At most
    /// [`SwimConfig::MAX_DOWN_RETENTION`].
    pub down_retention: Duration,
    /// At most this many down or departed members are remembered (the oldest are
    /// forgotten first): membership memory stays bounded under churn. At most
    /// [`SwimConfig::MAX_DOWN_MEMBERS`].
    pub max_down_members: usize,
    /// Largest packet this node sends, in bytes (updates are packed up to it; a full
    /// view is split across packets). No packet is ever larger. From
    /// [`SwimConfig::min_packet_size`] for the id type (the longest header plus one update
    /// with the longest ids, at least [`SwimConfig::MIN_PACKET_SIZE`]) to
    /// [`SwimConfig::MAX_PACKET_SIZE`].
    pub max_packet_size: usize,
    /// Lifeguard's three extensions: local health awareness, dynamic suspicion and the
    /// buddy system. `false` gives plain SWIM with suspicion (for comparison).
    pub lifeguard: bool,
}

impl Default for SwimConfig {
    fn default() -> Self {
        SwimConfig {
            cluster_id: 0,
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            retransmit_mult: 4,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            awareness_max_multiplier: 8,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            announce_interval: Duration::from_secs(10),
            sync_interval: Duration::from_secs(30),
            down_retention: Duration::from_secs(3600),
            max_down_members: 4096,
            max_packet_size: 1400,
            lifeguard: true,
        }
    }
}

/// A [`SwimConfig`] field outside its documented limits. Nothing was created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwimConfigError {
    /// `probe_interval` is zero.
    ///
    /// State: nothing changed; no member was built.
    #[error("probe_interval must not be zero")]
    ZeroProbeInterval,
    /// `probe_timeout` is zero or not shorter than `probe_interval`.
    ///
    /// State: nothing changed; no member was built.
    #[error("probe_timeout must be non-zero and shorter than probe_interval")]
    ProbeTimeout,
    /// `retransmit_mult`, `suspicion_mult`, `suspicion_max_timeout_mult` or
    /// `awareness_max_multiplier` is zero.
    ///
    /// State: nothing changed; no member was built.
    #[error("{0} must be at least 1")]
    ZeroMultiplier(&'static str),
    /// `announce_interval` is zero.
    ///
    /// State: nothing changed; no member was built.
    #[error("announce_interval must not be zero")]
    ZeroAnnounceInterval,
    /// A duration field is longer than its limit ([`SwimConfig::MAX_INTERVAL`] or
    /// [`SwimConfig::MAX_DOWN_RETENTION`]).
    ///
    /// State: nothing changed; no member was built.
    #[error("{field} must be at most {max:?}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: Duration,
    },
    /// A multiplier or count is above its limit ([`SwimConfig::MAX_MULTIPLIER`],
    /// [`SwimConfig::MAX_FANOUT`] or [`SwimConfig::MAX_DOWN_MEMBERS`]).
    ///
    /// State: nothing changed; no member was built.
    #[error("{field} must be at most {max}")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: u64,
    },
    /// `max_packet_size` cannot hold a packet with the longest ids of the id type
    /// (below [`SwimConfig::min_packet_size`]), or is above [`SwimConfig::MAX_PACKET_SIZE`].
    ///
    /// State: nothing changed; no member was built.
    #[error("max_packet_size must be between {min} and {max} bytes, got {got}")]
    PacketSize {
        /// The configured value.
        got: usize,
        /// The smallest accepted for this id type and cluster id.
        min: usize,
        /// [`SwimConfig::MAX_PACKET_SIZE`].
        max: usize,
    },
}

impl SwimConfig {
    /// Longest `probe_interval`, `gossip_interval`, `announce_interval` and
    /// `sync_interval`: one day.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
    /// Longest `down_retention`: 365 days.
    pub const MAX_DOWN_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);
    /// Largest `retransmit_mult`, `suspicion_mult`, `suspicion_max_timeout_mult` and
    /// `awareness_max_multiplier` (memberlist's defaults are 4, 4, 6 and 8).
    pub const MAX_MULTIPLIER: u32 = 1000;
    /// Largest `indirect_checks` and `gossip_nodes` (memberlist's defaults are 3).
    pub const MAX_FANOUT: usize = 1024;
    /// Largest `max_down_members`.
    pub const MAX_DOWN_MEMBERS: usize = 1 << 24;
    /// Smallest `max_packet_size` for any id type.
    pub const MIN_PACKET_SIZE: usize = 64;
    /// Largest `max_packet_size`: a UDP datagram's 16-bit length. It also keeps the
    /// update count of any packet a varint of at most 3 bytes.
    pub const MAX_PACKET_SIZE: usize = 65_535;

    /// The smallest `max_packet_size` accepted for ids of type `N` and this config's
    /// `cluster_id`: room for the longest header (a ping or ping-req from and to ids of
    /// [`IdCodec::MAX_ENCODED_LEN`](crate::IdCodec::MAX_ENCODED_LEN) bytes, every varint at its longest), the update
    /// count, and one update naming two such ids (a suspicion or death and its
    /// accuser), so that a whole-view exchange can carry every member. Never below
    /// [`SwimConfig::MIN_PACKET_SIZE`]. For `String` ids (255 bytes) it is 1051 bytes.
    pub fn min_packet_size<N: NodeId>(&self) -> usize {
        let id = N::MAX_ENCODED_LEN;
        let mut cluster = Vec::new();
        super::wire::put_uvarint(&mut cluster, self.cluster_id);
        // magic, version, cluster id, kind, from, from's incarnation.
        let header = (3 + cluster.len() + 5).saturating_add(id);
        // A ping's sequence number and target (the longest body).
        let body = 5usize.saturating_add(id);
        // Tag, node, incarnation, accuser.
        let update = (1 + 5usize).saturating_add(id.saturating_mul(2));
        header
            .saturating_add(body)
            .saturating_add(UPDATE_COUNT_LEN)
            .saturating_add(update)
            .max(Self::MIN_PACKET_SIZE)
    }

    /// Checks every field against its documented limits **except one**: the floor of
    /// `max_packet_size` depends on the id type, and this checks only the id-free
    /// [`SwimConfig::MIN_PACKET_SIZE`]. So a config this accepts can still be refused
    /// by [`Swim::new`](super::Swim::new) with [`SwimConfigError::PacketSize`], when
    /// `max_packet_size` is below [`SwimConfig::min_packet_size`]`::<N>()`. To check
    /// exactly what `Swim::new` checks, call [`SwimConfig::validate_for`]`::<N>()`.
    ///
    /// # Errors
    ///
    /// The first field found out of its limits.
    pub fn validate(&self) -> Result<(), SwimConfigError> {
        self.validate_with(Self::MIN_PACKET_SIZE)
    }

    /// [`SwimConfig::validate`], and `max_packet_size` at least
    /// [`SwimConfig::min_packet_size`] for ids of type `N`: exactly the checks of
    /// [`Swim::new`](super::Swim::new) for a `Swim<N>`.
    ///
    /// # Errors
    ///
    /// The first field found out of its limits.
    pub fn validate_for<N: NodeId>(&self) -> Result<(), SwimConfigError> {
        self.validate_with(self.min_packet_size::<N>())
    }

    fn validate_with(&self, min_packet_size: usize) -> Result<(), SwimConfigError> {
        if self.probe_interval.is_zero() {
            return Err(SwimConfigError::ZeroProbeInterval);
        }
        if self.probe_timeout.is_zero() || self.probe_timeout >= self.probe_interval {
            return Err(SwimConfigError::ProbeTimeout);
        }
        for (name, v) in [
            ("retransmit_mult", self.retransmit_mult),
            ("suspicion_mult", self.suspicion_mult),
            (
                "suspicion_max_timeout_mult",
                self.suspicion_max_timeout_mult,
            ),
            ("awareness_max_multiplier", self.awareness_max_multiplier),
        ] {
            if v == 0 {
                return Err(SwimConfigError::ZeroMultiplier(name));
            }
            if v > Self::MAX_MULTIPLIER {
                return Err(SwimConfigError::TooLarge {
                    field: name,
                    max: u64::from(Self::MAX_MULTIPLIER),
                });
            }
        }
        if self.announce_interval.is_zero() {
            return Err(SwimConfigError::ZeroAnnounceInterval);
        }
        for (field, v, max) in [
            ("probe_interval", self.probe_interval, Self::MAX_INTERVAL),
            ("gossip_interval", self.gossip_interval, Self::MAX_INTERVAL),
            (
                "announce_interval",
                self.announce_interval,
                Self::MAX_INTERVAL,
            ),
            ("sync_interval", self.sync_interval, Self::MAX_INTERVAL),
            (
                "down_retention",
                self.down_retention,
                Self::MAX_DOWN_RETENTION,
            ),
        ] {
            if v > max {
                return Err(SwimConfigError::TooLong { field, max });
            }
        }
        for (field, v, max) in [
            ("indirect_checks", self.indirect_checks, Self::MAX_FANOUT),
            ("gossip_nodes", self.gossip_nodes, Self::MAX_FANOUT),
            (
                "max_down_members",
                self.max_down_members,
                Self::MAX_DOWN_MEMBERS,
            ),
        ] {
            if v > max {
                return Err(SwimConfigError::TooLarge {
                    field,
                    max: max as u64,
                });
            }
        }
        if self.max_packet_size < min_packet_size || self.max_packet_size > Self::MAX_PACKET_SIZE {
            return Err(SwimConfigError::PacketSize {
                got: self.max_packet_size,
                min: min_packet_size,
                max: Self::MAX_PACKET_SIZE,
            });
        }
        Ok(())
    }

    /// λ·⌈log10(n+1)⌉ transmissions per update (memberlist's `retransmitLimit`).
    pub(crate) fn retransmit_limit(&self, members: usize) -> u32 {
        // ⌈log10(members + 1)⌉ in integers: the number of decimal digits of `members`.
        let mut scale = 1u32;
        let mut bound = 10usize;
        while members >= bound {
            scale += 1;
            bound = bound.saturating_mul(10);
            if bound == usize::MAX {
                break;
            }
        }
        self.retransmit_mult.saturating_mul(scale)
    }

    /// The shortest suspicion timeout for a cluster of `members`:
    /// `suspicion_mult · max(1, log10 n) · probe_interval` (memberlist's
    /// `suspicionTimeout`).
    pub(crate) fn min_suspicion_timeout(&self, members: usize) -> Duration {
        let scale = (members.max(1) as f64).log10().max(1.0);
        self.probe_interval
            .mul_f64(f64::from(self.suspicion_mult) * scale)
    }
}

/// Bytes reserved for a packet's update count: a varint of at most 3 bytes, since a
/// packet of at most [`SwimConfig::MAX_PACKET_SIZE`] bytes holds fewer than 2²¹ updates.
pub(crate) const UPDATE_COUNT_LEN: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmit_limit_is_lambda_times_ceil_log10_of_n_plus_one() {
        let c = SwimConfig::default();
        for (members, expected) in [
            (0, 4),
            (1, 4),
            (9, 4),
            (10, 8),
            (99, 8),
            (100, 12),
            (999, 12),
            (1000, 16),
        ] {
            let float = ((members + 1) as f64).log10().ceil().max(1.0) as u32 * 4;
            assert_eq!(float, expected, "table row {members}");
            assert_eq!(c.retransmit_limit(members), expected, "{members} members");
        }
        assert!(c.retransmit_limit(usize::MAX) > 0);
    }

    #[test]
    fn suspicion_timeout_follows_memberlist() {
        let c = SwimConfig::default();
        assert_eq!(c.min_suspicion_timeout(1), Duration::from_secs(4));
        assert_eq!(c.min_suspicion_timeout(100), Duration::from_secs(8));
        assert_eq!(c.min_suspicion_timeout(1000), Duration::from_secs(12));
    }

    #[test]
    fn validation_names_the_field() {
        let c = SwimConfig {
            probe_timeout: SwimConfig::default().probe_interval,
            ..SwimConfig::default()
        };
        assert_eq!(c.validate(), Err(SwimConfigError::ProbeTimeout));
        let c = SwimConfig {
            suspicion_mult: 0,
            ..SwimConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(SwimConfigError::ZeroMultiplier("suspicion_mult"))
        );
        let c = SwimConfig {
            max_packet_size: 10,
            ..SwimConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(SwimConfigError::PacketSize {
                got: 10,
                min: 64,
                max: 65_535
            })
        );
        assert_eq!(SwimConfig::default().validate(), Ok(()));
        let c = SwimConfig {
            sync_interval: Duration::MAX,
            ..SwimConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(SwimConfigError::TooLong {
                field: "sync_interval",
                max: SwimConfig::MAX_INTERVAL
            })
        );
        let c = SwimConfig {
            gossip_nodes: usize::MAX,
            ..SwimConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(SwimConfigError::TooLarge {
                field: "gossip_nodes",
                max: 1024
            })
        );
    }

    /// The floor is the longest packet: check it against real encodings at their
    /// longest (a ping between the longest ids, every varint at its longest, and one
    /// suspicion naming two more).
    #[test]
    fn min_packet_size_is_the_longest_header_and_update() {
        use super::super::wire::{Message, Update, encode_message, finish_updates};
        let long = |c: char| c.to_string().repeat(super::super::id::MAX_ID_LEN);
        for cluster_id in [0, 300, u64::MAX] {
            let c = SwimConfig {
                cluster_id,
                ..SwimConfig::default()
            };
            let mut out = Vec::new();
            encode_message(
                &mut out,
                cluster_id,
                (&long('a'), u32::MAX),
                &Message::Ping {
                    seq: u32::MAX,
                    target: long('b'),
                },
            );
            let mut update = Vec::new();
            Update::Suspect {
                node: long('c'),
                incarnation: u32::MAX,
                by: long('d'),
            }
            .encode(&mut update);
            // A count that needs the whole 3-byte varint.
            finish_updates(&mut out, (1 << 21) - 1, &update);
            assert_eq!(c.min_packet_size::<String>(), out.len(), "{cluster_id}");
        }
        assert_eq!(SwimConfig::default().min_packet_size::<String>(), 1051);
        assert_eq!(SwimConfig::default().min_packet_size::<u32>(), 64);
        assert!(SwimConfig::default().validate_for::<String>().is_ok());
        let c = SwimConfig {
            max_packet_size: 1050,
            ..SwimConfig::default()
        };
        assert!(c.validate().is_ok());
        assert!(c.validate_for::<u64>().is_ok());
        assert_eq!(
            c.validate_for::<String>(),
            Err(SwimConfigError::PacketSize {
                got: 1050,
                min: 1051,
                max: 65_535
            })
        );
    }
}
