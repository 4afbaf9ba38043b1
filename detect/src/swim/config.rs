//! Protocol parameters. The defaults are hashicorp/memberlist's `DefaultLANConfig`, the
//! configuration Lifeguard was evaluated with (Dadgar et al. 2017, §5).

use std::time::Duration;

/// SWIM and Lifeguard parameters. Build one from [`Config::default`] and adjust fields;
/// [`Config::validate`] (called by [`Swim::new`](super::Swim::new)) checks the limits
/// each field documents.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Config {
    /// Written into every packet; packets with another id are rejected and counted.
    /// Keeps two clusters on one network (staging and production) from merging.
    pub cluster_id: u64,
    /// The protocol period T' (SWIM §3.1): one member is probed per period. Not zero.
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before asking others (SWIM §3.1). Must be
    /// shorter than `probe_interval`; a high quantile of the network round-trip time.
    pub probe_timeout: Duration,
    /// `k`, members asked to ping-req a member that missed its direct ack (SWIM §3.1).
    pub indirect_checks: usize,
    /// λ in "each update is piggybacked λ·log(n) times" (SWIM §4.1). At least 1.
    pub retransmit_mult: u32,
    /// The suspicion timeout, in protocol periods per log10(n) (SWIM §4.2,
    /// memberlist's `SuspicionMult`): the shortest a suspicion lasts, reached once
    /// enough members confirm it. At least 1.
    pub suspicion_mult: u32,
    /// Lifeguard §4.3: an unconfirmed suspicion lasts this many times the shortest
    /// suspicion timeout, shrinking logarithmically with each independent confirmation.
    /// At least 1 (1 turns dynamic suspicion off).
    pub suspicion_max_timeout_mult: u32,
    /// Lifeguard §4.1: the local health multiplier's ceiling, S in the paper. Probe
    /// timeouts and the probe interval stretch up to this factor while this node
    /// misses acks and nacks it should have had. At least 1 (1 turns it off).
    pub awareness_max_multiplier: u32,
    /// How often pending updates are pushed to `gossip_nodes` random members without
    /// waiting for a probe to carry them (memberlist's `GossipInterval`). Zero turns
    /// gossip off and leaves dissemination to the protocol messages alone, as in SWIM.
    pub gossip_interval: Duration,
    /// Members each gossip round sends to.
    pub gossip_nodes: usize,
    /// How often this node announces itself to one member it believes down (and, when
    /// it knows nobody alive, to its seeds), asking for their view. This is what lets
    /// the two sides of a healed partition, or a node that lost every peer, find each
    /// other again. Not zero.
    pub announce_interval: Duration,
    /// How often this node exchanges its whole view with one random live member
    /// (anti-entropy, memberlist's `PushPullInterval`): repairs updates that
    /// dissemination lost. Costs about 4 bytes per member each way per exchange. Zero
    /// turns it off.
    pub sync_interval: Duration,
    /// How long a member that is down or has left is remembered, so stale news about it
    /// cannot bring it back, and so it can be announced to after a partition.
    pub down_retention: Duration,
    /// At most this many down or departed members are remembered (the oldest are
    /// forgotten first): membership memory stays bounded under churn.
    pub max_down_members: usize,
    /// Largest packet this node sends, in bytes (updates are packed up to it; a full
    /// view is split across packets). At least 64.
    pub max_packet_size: usize,
    /// Lifeguard's three extensions: local health awareness, dynamic suspicion and the
    /// buddy system. `false` gives plain SWIM with suspicion (for comparison).
    pub lifeguard: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
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

/// A [`Config`] field outside its documented limits. Nothing was created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `probe_interval` is zero.
    #[error("probe_interval must not be zero")]
    ZeroProbeInterval,
    /// `probe_timeout` is zero or not shorter than `probe_interval`.
    #[error("probe_timeout must be non-zero and shorter than probe_interval")]
    ProbeTimeout,
    /// `retransmit_mult`, `suspicion_mult`, `suspicion_max_timeout_mult` or
    /// `awareness_max_multiplier` is zero.
    #[error("{0} must be at least 1")]
    ZeroMultiplier(&'static str),
    /// `announce_interval` is zero.
    #[error("announce_interval must not be zero")]
    ZeroAnnounceInterval,
    /// `max_packet_size` is below 64 bytes.
    #[error("max_packet_size must be at least 64 bytes")]
    PacketTooSmall,
}

impl Config {
    /// Checks every field against its documented limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.probe_interval.is_zero() {
            return Err(ConfigError::ZeroProbeInterval);
        }
        if self.probe_timeout.is_zero() || self.probe_timeout >= self.probe_interval {
            return Err(ConfigError::ProbeTimeout);
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
                return Err(ConfigError::ZeroMultiplier(name));
            }
        }
        if self.announce_interval.is_zero() {
            return Err(ConfigError::ZeroAnnounceInterval);
        }
        if self.max_packet_size < 64 {
            return Err(ConfigError::PacketTooSmall);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmit_limit_is_lambda_times_ceil_log10_of_n_plus_one() {
        let c = Config::default();
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
        let c = Config::default();
        assert_eq!(c.min_suspicion_timeout(1), Duration::from_secs(4));
        assert_eq!(c.min_suspicion_timeout(100), Duration::from_secs(8));
        assert_eq!(c.min_suspicion_timeout(1000), Duration::from_secs(12));
    }

    #[test]
    fn validation_names_the_field() {
        let c = Config {
            probe_timeout: Config::default().probe_interval,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::ProbeTimeout));
        let c = Config {
            suspicion_mult: 0,
            ..Config::default()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::ZeroMultiplier("suspicion_mult"))
        );
        let c = Config {
            max_packet_size: 10,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::PacketTooSmall));
        assert_eq!(Config::default().validate(), Ok(()));
    }
}
