//! The shape of a simulated cluster ([`SimConfig`]), and why a simulator
//! configuration was refused ([`SimConfigError`]). The network's and the
//! disks' configurations live with what they configure.

use super::network::NetworkConfig;
use crate::config::{Config, ConfigError};

/// The shape of a simulated cluster. Built from [`Default`] and set by
/// assignment; [`SimConfig::validate`] bounds every field and
/// [`Simulation::new`](super::Simulation::new) calls it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SimConfig {
    /// Number of nodes, named `1..=nodes`; at most
    /// [`SimConfig::MAX_NODES`].
    pub nodes: u64,
    /// Node configuration; each node's `seed` is derived from the
    /// simulation seed and its id, and `applied` from what its state
    /// machine recorded.
    pub raft: Config,
    /// Network behaviour.
    pub network: NetworkConfig,
    /// Simulation time units per Raft tick; at least 1.
    pub tick_interval: u64,
    /// Longest a write to storage takes to become durable, in time units
    /// (0: durable as soon as it is handed out). Writes complete in order.
    /// How the disk acknowledges, and what a crash does to writes not yet
    /// durable, is [`DiskConfig`](super::DiskConfig) ([`Simulation::set_disk`](super::Simulation::set_disk)).
    pub max_persist_delay: u64,
    /// How many of the `nodes` (the highest ids) start outside the
    /// cluster, with an empty membership, for membership changes to add
    /// ([`Simulation::change_membership`](super::Simulation::change_membership));
    /// less than `nodes`.
    pub joining: u64,
    /// Leader priority hints ([`Config::priority`]): node `id`'s is at
    /// `priorities[id - 1]`, and a node past the end has 0 (no hint). At
    /// most `nodes` long.
    pub priorities: Vec<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 3,
            raft: Config::default(),
            network: NetworkConfig::default(),
            tick_interval: 10,
            max_persist_delay: 0,
            joining: 0,
            priorities: Vec::new(),
        }
    }
}

impl SimConfig {
    /// The most nodes a simulated cluster has.
    pub const MAX_NODES: u64 = 1024;
    /// The largest time, in simulation units, any simulator config holds
    /// (a delay, a lag, a tick interval): adding one to the clock of a run
    /// can never overflow.
    pub const MAX_UNITS: u64 = 1 << 32;

    /// Checks every field, the network's and the nodes' Raft
    /// configuration included.
    ///
    /// # Errors
    /// The first [`SimConfigError`] found.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        count("SimConfig::nodes", self.nodes, 1, Self::MAX_NODES)?;
        self.raft.validate()?;
        self.network.validate()?;
        time("SimConfig::tick_interval", self.tick_interval, 1)?;
        time("SimConfig::max_persist_delay", self.max_persist_delay, 0)?;
        count("SimConfig::joining", self.joining, 0, self.nodes - 1)?;
        count(
            "SimConfig::priorities (length)",
            self.priorities.len() as u64,
            0,
            self.nodes,
        )
    }
}

/// Why a simulator configuration ([`SimConfig`](super::SimConfig),
/// [`NetworkConfig`](super::NetworkConfig), [`DiskConfig`](super::DiskConfig)
/// or [`ChaosConfig`](super::chaos::ChaosConfig)) was refused by its
/// `validate()`. The simulator's configs are one family, so they share
/// one error. Nothing was constructed and nothing changed: a
/// [`Simulation`](super::Simulation) given an invalid config is not
/// built, and `set_network` / `set_disk` keep the config they had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimConfigError {
    /// The nodes' Raft configuration ([`SimConfig::raft`](super::SimConfig::raft))
    /// is invalid. Nothing changed.
    #[error("raft configuration: {0}")]
    Raft(#[from] ConfigError),
    /// A count (of nodes, clients, keys, ticks) is outside the range the
    /// simulator supports. Nothing changed.
    #[error("{field} is {value}; it must be in {min}..={max}")]
    CountOutOfRange {
        /// The field, as `Config::field`.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The smallest accepted.
        min: u64,
        /// The largest accepted.
        max: u64,
    },
    /// A time in simulation units is outside the range the simulator
    /// supports, so that adding it to the clock can never overflow.
    /// Nothing changed.
    #[error("{field} is {value} time units; it must be in {min}..={max}")]
    TimeOutOfRange {
        /// The field, as `Config::field`.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The smallest accepted.
        min: u64,
        /// The largest accepted.
        max: u64,
    },
    /// The network's delays are not ordered
    /// `min_delay <= max_delay <= long_delay_max`. Nothing changed.
    #[error(
        "delays must be ordered min_delay ({min_delay}) <= max_delay ({max_delay}) <= long_delay_max ({long_delay_max})"
    )]
    DelaysOutOfOrder {
        /// `NetworkConfig::min_delay`.
        min_delay: u64,
        /// `NetworkConfig::max_delay`.
        max_delay: u64,
        /// `NetworkConfig::long_delay_max`.
        long_delay_max: u64,
    },
    /// A probability is not a number in `0.0..=1.0`. Nothing changed.
    #[error("{field} is {value}; a probability must be in 0.0..=1.0")]
    Probability {
        /// The field, as `Config::field`.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A set of choices to draw from is empty. Nothing changed.
    #[error("{field} is empty: there is nothing to draw from")]
    NoChoice {
        /// The field, as `Config::field`.
        field: &'static str,
    },
}

/// Checks that `value` is in `min..=max`.
pub(super) fn count(
    field: &'static str,
    value: u64,
    min: u64,
    max: u64,
) -> Result<(), SimConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(SimConfigError::CountOutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

/// Checks that a time in simulation units is in `min..=MAX_UNITS`.
pub(super) fn time(field: &'static str, value: u64, min: u64) -> Result<(), SimConfigError> {
    let max = super::SimConfig::MAX_UNITS;
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(SimConfigError::TimeOutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

/// Checks that `value` is a probability.
pub(super) fn probability(field: &'static str, value: f64) -> Result<(), SimConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(SimConfigError::Probability { field, value })
    }
}
