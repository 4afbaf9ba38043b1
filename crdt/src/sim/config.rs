//! The simulated network's and faults' configuration.

use std::time::Duration;

use crate::sync::{ConfigError, SyncConfig};

/// Who is a peer of whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Topology {
    /// Every replica is a peer of every other.
    FullMesh,
    /// Replica `i` is a peer of `i - 1` and `i + 1` (mod n): deltas need relaying.
    Ring,
}

/// The simulated network and faults.
///
/// `#[non_exhaustive]` with public fields: build it from [`Default`] (or
/// [`reliable`](Self::reliable), [`randomized`](Self::randomized)) and assign the
/// fields to change. [`validate`](Self::validate) bounds every field and
/// [`Sim::new`](super::Sim::new) calls it: probabilities in `0..=1`, ranges
/// `(min, max)` with `min <= max`, durations whole milliseconds (virtual time counts
/// milliseconds) and at most [`SimConfig::MAX_DURATION`], counts at least 1 and at most
/// their `MAX_*` bound.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SimConfig {
    /// Replicas, named `0..replicas`. At least 1.
    pub replicas: usize,
    /// Who is a peer of whom.
    pub topology: Topology,
    /// Every replica's protocol configuration.
    pub sync: SyncConfig,
    /// Virtual time per [`Sim::step`](super::Sim::step). At least 1 ms.
    pub step: Duration,
    /// Every replica ships (Algorithm 2's "periodically") this often. At least 1 ms.
    pub ship_every: Duration,
    /// A message's delay, drawn uniformly from `min..=max` (whole milliseconds).
    pub latency: (Duration, Duration),
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message arrives twice (each copy with its own delay).
    pub duplicate: f64,
    /// Probability that a message is held back for up to `long_delay_max` more.
    pub long_delay: f64,
    /// The longest extra delay.
    pub long_delay_max: Duration,
    /// Probability, each step, that one of the last `replay_window` messages sent is
    /// sent again.
    pub replay: f64,
    /// How many recent messages a replay picks from.
    pub replay_window: usize,
    /// With random faults on: probability, per replica and step, of a crash.
    pub crash: f64,
    /// With random faults on: how long a crashed replica stays down, `min..=max`.
    pub downtime: (Duration, Duration),
    /// With random faults on: probability that a replica crashes right after a change
    /// (a mutation or a join), before its record is written: the change is lost.
    pub crash_before_persist: f64,
    /// With random faults on: probability, per message a replica sends, that it
    /// crashes before sending it (and the rest of its queue).
    pub crash_while_sending: f64,
    /// With random faults on: probability, each step without a partition, that one
    /// starts.
    pub partition: f64,
    /// With random faults on: how long a partition lasts, `min..=max`.
    pub partition_duration: (Duration, Duration),
}

impl Default for SimConfig {
    /// Five replicas in a full mesh without relaying; a network that loses 10 %,
    /// duplicates 5 %, delays 1–80 ms, holds back 1 % for up to 2 s and replays an old
    /// message every 20 steps or so; with random faults on, a crash every 2.5 s or so
    /// per replica, down for 50 ms to 1.5 s, and partitions of up to 2 s.
    fn default() -> Self {
        SimConfig {
            replicas: 5,
            topology: Topology::FullMesh,
            sync: SyncConfig::full_mesh(),
            step: ms(10),
            ship_every: ms(100),
            latency: (ms(1), ms(80)),
            loss: 0.1,
            duplicate: 0.05,
            long_delay: 0.01,
            long_delay_max: ms(2_000),
            replay: 0.05,
            replay_window: 128,
            crash: 0.004,
            downtime: (ms(50), ms(1_500)),
            crash_before_persist: 0.05,
            crash_while_sending: 0.01,
            partition: 0.005,
            partition_duration: (ms(100), ms(2_000)),
        }
    }
}

impl SimConfig {
    /// A network with no faults at all: every message arrives once, after
    /// `latency`, in order. For scripted stories ([`Sim::partition`](super::Sim::partition),
    /// [`Sim::crash`](super::Sim::crash)...).
    pub fn reliable(replicas: usize, latency: Duration) -> Self {
        SimConfig {
            replicas,
            latency: (latency, latency),
            loss: 0.0,
            duplicate: 0.0,
            long_delay: 0.0,
            replay: 0.0,
            ..SimConfig::default()
        }
    }

    /// A configuration drawn from `seed`: 2 to 6 replicas in a full mesh (with or
    /// without relaying) or a ring, sometimes a tiny delta buffer (whole states), and
    /// network and fault rates from calm to harsh. For randomized tests.
    pub fn randomized(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x0c0f_f1ee_5eed_0001);
        let replicas = rng.usize(2..=6);
        let (topology, relay) = match rng.u8(0..10) {
            0..5 => (Topology::FullMesh, false),
            5..7 => (Topology::FullMesh, true),
            _ => (Topology::Ring, true),
        };
        let sync = SyncConfig {
            relay,
            max_buffered_deltas: if rng.u8(0..5) == 0 {
                rng.usize(1..=8)
            } else {
                SyncConfig::default().max_buffered_deltas
            },
        };
        let latency_min = rng.u64(1..=20);
        let down_min = rng.u64(20..=500);
        let partition_min = rng.u64(50..=500);
        SimConfig {
            replicas,
            topology,
            sync,
            step: ms(10),
            ship_every: ms(10 * rng.u64(3..=15)),
            latency: (ms(latency_min), ms(latency_min + rng.u64(0..=150))),
            loss: 0.3 * rng.f64(),
            duplicate: 0.2 * rng.f64(),
            long_delay: 0.05 * rng.f64(),
            long_delay_max: ms(rng.u64(200..=5_000)),
            replay: 0.3 * rng.f64(),
            replay_window: rng.usize(16..=512),
            crash: 0.01 * rng.f64(),
            downtime: (ms(down_min), ms(down_min + rng.u64(0..=2_000))),
            crash_before_persist: 0.2 * rng.f64(),
            crash_while_sending: 0.05 * rng.f64(),
            partition: 0.01 * rng.f64(),
            partition_duration: (ms(partition_min), ms(partition_min + rng.u64(0..=3_000))),
        }
    }

    /// The most replicas a simulation runs (a full mesh has `n * (n - 1)` links).
    pub const MAX_REPLICAS: usize = 1_024;
    /// The longest duration any field may hold: a virtual day. Every time the
    /// simulator computes is the current time plus at most two of these, which never
    /// overflows.
    pub const MAX_DURATION: Duration = Duration::from_secs(86_400);
    /// The most recent messages a replay may pick from.
    pub const MAX_REPLAY_WINDOW: usize = 1 << 16;

    /// Checks every field (see the [type docs](Self)); [`Sim::new`](super::Sim::new)
    /// calls it.
    ///
    /// # Errors
    ///
    /// The first field out of bounds, as a [`SimConfigError`].
    pub fn validate(&self) -> Result<(), SimConfigError> {
        if !(1..=Self::MAX_REPLICAS).contains(&self.replicas) {
            return Err(SimConfigError::Replicas(self.replicas));
        }
        self.sync.validate()?;
        if !(1..=Self::MAX_REPLAY_WINDOW).contains(&self.replay_window) {
            return Err(SimConfigError::ReplayWindow(self.replay_window));
        }
        let out_of_range = |value: Duration, min: Duration| {
            value < min || value > Self::MAX_DURATION || value.subsec_nanos() % 1_000_000 != 0
        };
        for (field, value, min) in [
            ("step", self.step, ms(1)),
            ("ship_every", self.ship_every, ms(1)),
            ("long_delay_max", self.long_delay_max, Duration::ZERO),
        ] {
            if out_of_range(value, min) {
                return Err(SimConfigError::Duration { field, value });
            }
        }
        for (field, (min, max)) in [
            ("latency", self.latency),
            ("downtime", self.downtime),
            ("partition_duration", self.partition_duration),
        ] {
            if min > max {
                return Err(SimConfigError::Range { field });
            }
            for value in [min, max] {
                if out_of_range(value, Duration::ZERO) {
                    return Err(SimConfigError::Duration { field, value });
                }
            }
        }
        for (field, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("long_delay", self.long_delay),
            ("replay", self.replay),
            ("crash", self.crash),
            ("crash_before_persist", self.crash_before_persist),
            ("crash_while_sending", self.crash_while_sending),
            ("partition", self.partition),
        ] {
            // `contains` is false for NaN.
            if !(0.0..=1.0).contains(&p) {
                return Err(SimConfigError::Probability { field });
            }
        }
        Ok(())
    }
}

/// Why a [`SimConfig`] was refused ([`SimConfig::validate`]). Nothing was created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimConfigError {
    /// `replicas` is 0 or above [`SimConfig::MAX_REPLICAS`]. Nothing was created.
    #[error("replicas ({0}) must be in 1..={max}", max = SimConfig::MAX_REPLICAS)]
    Replicas(usize),
    /// `replay_window` is 0 or above [`SimConfig::MAX_REPLAY_WINDOW`]. Nothing was
    /// created.
    #[error("replay_window ({0}) must be in 1..={max}", max = SimConfig::MAX_REPLAY_WINDOW)]
    ReplayWindow(usize),
    /// A duration is above [`SimConfig::MAX_DURATION`], is not a whole number of
    /// milliseconds, or `step` or `ship_every` is 0. Nothing was created.
    #[error("{field} ({value:?}) is out of range")]
    Duration {
        /// The field.
        field: &'static str,
        /// Its value (the end of the range that is out, for a range).
        value: Duration,
    },
    /// A `(min, max)` range has `min > max`. Nothing was created.
    #[error("{field}: min is above max")]
    Range {
        /// The field.
        field: &'static str,
    },
    /// A probability is outside `0..=1`, or NaN. Nothing was created.
    #[error("{field} must be a probability in 0..=1")]
    Probability {
        /// The field.
        field: &'static str,
    },
    /// The protocol's configuration, `sync`, is invalid. Nothing was created.
    #[error("sync: {0}")]
    Sync(#[from] ConfigError),
}

/// `n` milliseconds.
const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A validated duration in virtual milliseconds (at most a day: it fits).
pub(super) fn to_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
