//! The simulator's configuration: the emulated network ([`NetworkConfig`]) and the
//! one error every configuration of this simulator refuses with ([`SimConfigError`]).

use std::time::Duration;

/// In which order a node that resumes from a pause handles what piled up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResumeOrder {
    /// Like an event loop that `select!`s fairly between its socket and its timer:
    /// while both have work, each step picks one at random (seeded).
    #[default]
    Interleaved,
    /// Overdue timers first, then the queued packets.
    TimersFirst,
    /// Queued packets first, then overdue timers.
    PacketsFirst,
}

/// The emulated network. Build it from [`NetworkConfig::default`] and adjust fields;
/// [`NetworkConfig::validate`] (called by [`Sim::new`](super::Sim::new)) checks the limits each field
/// documents.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NetworkConfig {
    /// Shortest one-way delay (default 1 ms). At most `latency_max`.
    pub latency_min: Duration,
    /// Longest one-way delay (default 10 ms); delays are uniform in between. At most
    /// [`NetworkConfig::MAX_LATENCY`], so virtual time cannot overflow.
    pub latency_max: Duration,
    /// Probability that a packet is dropped, on links without an override (default 0).
    /// In `[0, 1]`.
    pub loss: f64,
    /// Probability that a delivered packet arrives twice (default 0). In `[0, 1]`.
    pub duplicate: f64,
    /// How a resumed node works through its backlog.
    pub resume_order: ResumeOrder,
    /// Livelock guard: a `run_*` call may process at most
    /// `10_000 + event_budget · nodes · ⌈virtual seconds⌉` events, and at most
    /// `10_000 + event_budget · nodes` without virtual time advancing. A healthy SWIM
    /// node needs a few dozen per second; the default is 10 000. Any value is valid
    /// (the limits saturate).
    pub event_budget: u64,
}

impl NetworkConfig {
    /// Longest `latency_max`: one hour. A packet's arrival is the current virtual time
    /// plus at most this, which cannot overflow.
    pub const MAX_LATENCY: Duration = Duration::from_secs(3600);

    /// Checks every field against its documented limits.
    ///
    /// # Errors
    ///
    /// The first field found out of its limits.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        if self.latency_max > Self::MAX_LATENCY {
            return Err(SimConfigError::Latency {
                field: "latency_max",
                max: Self::MAX_LATENCY,
            });
        }
        if self.latency_min > self.latency_max {
            return Err(SimConfigError::Latency {
                field: "latency_min",
                max: self.latency_max,
            });
        }
        check_probability("loss", self.loss)?;
        check_probability("duplicate", self.duplicate)
    }
}

pub(super) fn check_probability(field: &'static str, p: f64) -> Result<(), SimConfigError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(SimConfigError::Probability { field, got: p })
    }
}

/// A simulator configuration out of its documented limits: a [`NetworkConfig`] field,
/// a loss probability given to [`Sim::set_loss`](super::Sim::set_loss) or [`Sim::set_link_loss`](super::Sim::set_link_loss), or a
/// field of a [`scenario::Plan`](super::scenario::Plan) or of one of its
/// [`SlowPhase`](super::scenario::SlowPhase)s. The one config error of this simulator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimConfigError {
    /// A probability (`loss`, `duplicate`, or a loss given to a setter) is not in
    /// `[0, 1]` (or is NaN).
    ///
    /// State: nothing changed; no simulation was built, or the setter changed nothing.
    #[error("{field} must be a probability in [0, 1], got {got}")]
    Probability {
        /// The field.
        field: &'static str,
        /// The value given.
        got: f64,
    },
    /// `latency_max` is above [`NetworkConfig::MAX_LATENCY`], or `latency_min` is above
    /// `latency_max`.
    ///
    /// State: nothing changed; no simulation was built.
    #[error("{field} must be at most {max:?}")]
    Latency {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: Duration,
    },
    /// A duration of a [`scenario::Plan`](super::scenario::Plan) (or of one of its
    /// slow phases, `slow[i].field`) is above its limit.
    ///
    /// State: nothing changed; nothing ran.
    #[error("{field} must be at most {max:?}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: Duration,
    },
    /// A duration of a [`scenario::Plan`](super::scenario::Plan) that must be above
    /// zero (`probe_interval`) is zero.
    ///
    /// State: nothing changed; nothing ran.
    #[error("{field} must be above zero")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// A count of a [`scenario::Plan`](super::scenario::Plan) (`nodes`, `churn`) is
    /// outside `min..=max`.
    ///
    /// State: nothing changed; nothing ran.
    #[error("{field} must be between {min} and {max}, got {got}")]
    Count {
        /// The field.
        field: &'static str,
        /// The value given.
        got: usize,
        /// Its lower limit.
        min: usize,
        /// Its upper limit.
        max: usize,
    },
    /// A slow phase of a [`scenario::Plan`](super::scenario::Plan) (`slow[index]`)
    /// cannot run: a range (`stall` or `gap`) whose low end is above its high end,
    /// or stall and gap ranges that are both `(0, 0)` (the phase would never advance
    /// virtual time).
    ///
    /// State: nothing changed; nothing ran.
    #[error("slow[{index}].{field}: {reason}")]
    SlowPhase {
        /// Its position in `Plan::slow`.
        index: usize,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(10),
            loss: 0.0,
            duplicate: 0.0,
            resume_order: ResumeOrder::Interleaved,
            event_budget: 10_000,
        }
    }
}
