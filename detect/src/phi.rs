//! The φ accrual failure detector (Hayashibara et al., SRDS 2004), documented on
//! [`PhiAccrual`].

use std::collections::VecDeque;
use std::f64::consts::LN_10;
use std::time::{Duration, Instant};

/// The distribution that [`PhiAccrual`] fits to the inter-arrival times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PhiModel {
    /// Normal distribution with Akka's logistic approximation of its CDF
    /// (Akka `PhiAccrualFailureDetector.phi`): mean `μ +
    /// acceptable_heartbeat_pause`, standard deviation `max(σ,
    /// min_std_deviation)`. Akka's default, and this crate's.
    #[default]
    Normal,
    /// Exponential distribution with the window's mean, as in Cassandra's
    /// `FailureDetector` (CASSANDRA-2597): `φ = t / μ / ln 10`.
    ///
    /// Cassandra has neither a minimum standard deviation nor an acceptable
    /// pause, and this model ignores both config fields, so that its φ is
    /// the value Cassandra compares with `phi_convict_threshold`. Applying
    /// the pause would also not be the shift it is in the normal model: it
    /// would scale the exponential's slope. For more slack, raise the
    /// threshold: φ reaches `threshold` after `threshold · ln 10 · μ` of
    /// silence (about 18.4 μ at the default 8).
    Exponential,
}

/// Configuration of a [`PhiAccrual`] detector.
///
/// `Default` is Akka's default failure-detector configuration (`akka.remote`
/// / `akka.cluster.failure-detector` in Akka's `reference.conf`): threshold
/// 8.0, 1000 samples, 100 ms minimum standard deviation, 3 s acceptable
/// heartbeat pause, 1 s first heartbeat estimate, and the normal model.
/// Akka's constructor checks (`require(…)`) are [`PhiConfig::validate`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct PhiConfig {
    /// φ at or above which the peer is reported unavailable
    /// ([`PhiAccrual::is_available`] is `φ < threshold`). A low threshold
    /// detects a crash sooner and suspects wrongly more often (Hayashibara
    /// et al. §3). Must be finite and above 0. Default 8.0 (Akka, and
    /// Cassandra's `phi_convict_threshold`).
    pub threshold: f64,
    /// How many inter-arrival times the window keeps; the oldest is evicted
    /// when a new one arrives. Must be between 1 and
    /// [`PhiConfig::MAX_SAMPLE_SIZE`]. With 1, only the larger of the two
    /// start-up samples survives seeding, as in Akka. Default 1000 (Akka and
    /// Cassandra).
    pub max_sample_size: usize,
    /// Lower bound on the standard deviation used by the normal model, so
    /// that very regular heartbeats do not make φ jump on a small delay
    /// (Akka's `min-std-deviation`). Must be above zero and at most
    /// [`PhiConfig::MAX_DURATION`]. Ignored by [`PhiModel::Exponential`]. Default 100 ms.
    pub min_std_deviation: Duration,
    /// Silence that is accepted before suspicion starts: it is added to the
    /// mean in the normal model, shifting the φ curve right by this much
    /// (Akka's `acceptable-heartbeat-pause`, for GC pauses and dropped
    /// heartbeats). Zero is valid; at most [`PhiConfig::MAX_DURATION`]. Ignored by
    /// [`PhiModel::Exponential`]. Default 3 s.
    pub acceptable_heartbeat_pause: Duration,
    /// Expected heartbeat interval, used to seed the window with two samples
    /// `estimate ∓ estimate / 4` (Akka's `heartbeat-interval` and
    /// `firstHeartbeat`). Must be above zero and at most
    /// [`PhiConfig::MAX_DURATION`], so both seeds are recorded as given (never
    /// clamped to [`PhiAccrual::MAX_SAMPLE`]). Default 1 s.
    pub first_heartbeat_estimate: Duration,
    /// The distribution fitted to the intervals. Default
    /// [`PhiModel::Normal`].
    pub model: PhiModel,
}

impl PhiConfig {
    /// Largest accepted [`max_sample_size`](PhiConfig::max_sample_size),
    /// 2²⁰ (1,048,576 samples, 8 MiB of window).
    ///
    /// With samples capped at [`PhiAccrual::MAX_SAMPLE`] (2⁵³ ns), this
    /// bound keeps the exact sum of squares below 2¹²⁶, inside its `u128`.
    pub const MAX_SAMPLE_SIZE: usize = 1 << 20;

    /// Largest accepted `min_std_deviation`, `acceptable_heartbeat_pause` and
    /// `first_heartbeat_estimate`: one hour. A failure detector that waits
    /// longer than that is a configuration mistake, and the bound keeps the
    /// estimate's seeds below [`PhiAccrual::MAX_SAMPLE`], so none is clamped.
    pub const MAX_DURATION: Duration = Duration::from_secs(3600);

    /// Checks the limits documented on each field (Akka's constructor
    /// `require`s, plus the window and duration bounds). Nothing a valid config holds
    /// overflows later: durations enter the model as floating-point seconds
    /// or as samples capped at [`PhiAccrual::MAX_SAMPLE`], and the detector
    /// never adds a duration to an `Instant` (`tests/config_bounds.rs` runs
    /// every field at its extremes).
    ///
    /// # Errors
    ///
    /// The first field found out of its limits, as a [`PhiConfigError`].
    pub fn validate(&self) -> Result<(), PhiConfigError> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(PhiConfigError::Threshold(self.threshold));
        }
        if self.max_sample_size == 0 || self.max_sample_size > Self::MAX_SAMPLE_SIZE {
            return Err(PhiConfigError::MaxSampleSize {
                got: self.max_sample_size,
                max: Self::MAX_SAMPLE_SIZE,
            });
        }
        if self.min_std_deviation.is_zero() {
            return Err(PhiConfigError::MinStdDeviation);
        }
        if self.first_heartbeat_estimate.is_zero() {
            return Err(PhiConfigError::FirstHeartbeatEstimate);
        }
        for (field, got) in [
            ("min_std_deviation", self.min_std_deviation),
            (
                "acceptable_heartbeat_pause",
                self.acceptable_heartbeat_pause,
            ),
            ("first_heartbeat_estimate", self.first_heartbeat_estimate),
        ] {
            if got > Self::MAX_DURATION {
                return Err(PhiConfigError::TooLong {
                    field,
                    got,
                    max: Self::MAX_DURATION,
                });
            }
        }
        Ok(())
    }
}

impl Default for PhiConfig {
    fn default() -> Self {
        Self {
            threshold: 8.0,
            max_sample_size: 1000,
            min_std_deviation: Duration::from_millis(100),
            acceptable_heartbeat_pause: Duration::from_secs(3),
            first_heartbeat_estimate: Duration::from_secs(1),
            model: PhiModel::Normal,
        }
    }
}

/// Input a [`PhiAccrual`] ignored, counted. Every field only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct PhiCounters {
    /// Heartbeats ignored because their `now` was earlier than the last accepted one
    /// (events fed out of order).
    pub ignored_heartbeats: u64,
}

/// A [`PhiConfig`] field out of its documented limits, from
/// [`PhiConfig::validate`] or [`PhiAccrual::new`]. No detector was built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PhiConfigError {
    /// `threshold` is not a finite number above 0 (zero, negative, NaN or
    /// infinite); the value is attached. Akka: "threshold must be > 0".
    ///
    /// State: nothing changed; no detector was built.
    #[error("threshold must be a finite number above 0, got {0}")]
    Threshold(f64),
    /// `max_sample_size` is 0 or above [`PhiConfig::MAX_SAMPLE_SIZE`].
    ///
    /// State: nothing changed; no detector was built.
    #[error("max_sample_size must be between 1 and {max}, got {got}")]
    MaxSampleSize {
        /// The configured value.
        got: usize,
        /// [`PhiConfig::MAX_SAMPLE_SIZE`].
        max: usize,
    },
    /// `min_std_deviation` is zero; Akka requires it above zero, since the
    /// normal model divides by it when the intervals do not vary.
    ///
    /// State: nothing changed; no detector was built.
    #[error("min_std_deviation must be above zero")]
    MinStdDeviation,
    /// `first_heartbeat_estimate` is zero; Akka requires it above zero, since
    /// it is the mean the window starts from.
    ///
    /// State: nothing changed; no detector was built.
    #[error("first_heartbeat_estimate must be above zero")]
    FirstHeartbeatEstimate,
    /// `min_std_deviation`, `acceptable_heartbeat_pause` or
    /// `first_heartbeat_estimate` is above [`PhiConfig::MAX_DURATION`].
    ///
    /// State: nothing changed; no detector was built.
    #[error("{field} must be at most {max:?}, got {got:?}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The configured value.
        got: Duration,
        /// [`PhiConfig::MAX_DURATION`].
        max: Duration,
    },
}

/// The φ accrual failure detector (Hayashibara, Défago, Yared and Katayama,
/// "The φ Accrual Failure Detector", SRDS 2004).
///
/// An accrual detector does not answer "up or down": it outputs a suspicion
/// level φ that grows continuously while the monitored process stays silent,
/// and each caller compares it with its own threshold. φ is defined from the
/// distribution of heartbeat inter-arrival times observed in a sliding window
/// (Hayashibara et al. §3):
///
/// ```text
/// φ(now) = −log10( P_later(now − T_last) )
/// ```
///
/// where `T_last` is the arrival time of the last heartbeat and
/// `P_later(t)` is the probability that a heartbeat arrives more than `t`
/// after the previous one. Suspecting the process once φ ≥ 1 is a mistake
/// about 10 % of the time, once φ ≥ 2 about 1 %, once φ ≥ 8 (the default
/// threshold) about 10⁻⁸ of the time, as far as the model fits the network.
///
/// # Two models
///
/// [`PhiModel::Normal`] follows Akka's `PhiAccrualFailureDetector`
/// (`akka-remote`, `akka.remote.PhiAccrualFailureDetector`): the intervals
/// are modelled as a normal distribution `N(μ + acceptable_heartbeat_pause,
/// max(σ, min_std_deviation))`, and the normal CDF `F` is replaced by the
/// logistic approximation Akka takes from the β Mathematics Handbook (error
/// 0.00014 at ±3.16 σ):
///
/// ```text
/// y = (t − μ') / σ'
/// F(y) ≈ 1 / (1 + e^(−y (1.5976 + 0.070566 y²)))
/// φ = −log10(1 − F(y)) = log10(1 + e^(y (1.5976 + 0.070566 y²)))
/// ```
///
/// Akka evaluates this in two branches (`−log10(e / (1 + e))` past the mean,
/// `−log10(1 − 1 / (1 + e))` before it, with `e = e^(−y(…))`); both are the
/// right-hand form above. This module computes that form as a numerically
/// stable softplus, so its values equal Akka's (to rounding) wherever
/// Akka's are finite, and it stays finite and increasing far past the point
/// where Akka's `e` underflows and its φ becomes `+∞` (about 10 σ'). A
/// caller therefore gets an ordering between two very dead peers, and the
/// threshold test is unchanged.
///
/// [`PhiModel::Exponential`] follows Cassandra's `FailureDetector`
/// (`org.apache.cassandra.gms.FailureDetector`, the math in CASSANDRA-2597):
/// the intervals are modelled as exponential with the window's mean μ, so
/// `P_later(t) = e^(−t/μ)` and
///
/// ```text
/// φ = −log10(e^(−t/μ)) = t / μ / ln 10      (Cassandra's PHI_FACTOR = 1 / ln 10)
/// ```
///
/// Cassandra's `ArrivalWindow::phi` returns `t / μ` and `interpret`
/// multiplies it by `PHI_FACTOR` before comparing with
/// `phi_convict_threshold`; [`phi`](Self::phi) returns the scaled value, so
/// thresholds are on the same scale in both models. The exponential model
/// has no standard deviation and no grace period: `min_std_deviation` and
/// `acceptable_heartbeat_pause` do not apply to it (see [`PhiModel`]).
///
/// # The window and its statistics
///
/// Both models keep the last [`PhiConfig::max_sample_size`] inter-arrival
/// times in a ring buffer, as Akka's `HeartbeatHistory` and Cassandra's
/// `ArrayBackedBoundedStats` do. The running sums are exact integers
/// (nanoseconds as `u64`, the sum and the sum of squares as `u128`), so
/// adding a sample and evicting the oldest is O(1) and repeated
/// addition/subtraction never drifts. The variance comes from the exact
/// integer `n·Σx² − (Σx)² = n²·σ²`, so it does not suffer the cancellation
/// of Akka's floating-point `Σx²/n − μ²` either. Mean and standard
/// deviation are recomputed once per recorded heartbeat (no loop, no
/// integer division in the usual case); [`phi`](Self::phi) is a handful of
/// floating-point operations, and [`is_available`](Self::is_available) compares the
/// logistic exponent with its value at the threshold, without the `exp` and
/// `log` of φ except within rounding distance of the threshold.
///
/// # Start-up and long pauses (Akka's rules)
///
/// - Before the first heartbeat the peer is not monitored: φ is 0 and it is
///   available ("treat unmanaged connections … as healthy", Akka).
/// - The window starts with two samples, `first_heartbeat_estimate ∓
///   first_heartbeat_estimate / 4` (Akka's `firstHeartbeat`), so a peer that
///   sends exactly one heartbeat and then stops still becomes unavailable.
///   Cassandra seeds one sample of `fd_initial_value_ms` instead; the mean is
///   the estimate either way, and this module uses Akka's seeding for both
///   models.
/// - The interval ending in a heartbeat that arrives while the peer is
///   already unavailable is not recorded: "don't use the first heartbeat
///   after failure for the history, since a long pause will skew the stats"
///   (Akka, `heartbeat()`). Cassandra drops intervals above
///   `fd_max_interval_ms` for the same reason; this module applies Akka's
///   rule to both models.
///
/// # Sans-IO
///
/// The detector reads no clock: every method that needs the time takes
/// `now: Instant`. A heartbeat whose `now` is earlier than the last one
/// (a caller feeding events out of order) is ignored and counted in
/// [`counters`](Self::counters); it never panics.
///
/// It has no timer: there is no `poll_timeout` or `handle_timeout`, because
/// φ grows continuously and nothing happens at any instant. It is
/// query-only: call [`phi`](Self::phi) or [`is_available`](Self::is_available)
/// whenever the caller needs an answer.
///
/// ```
/// use std::time::{Duration, Instant};
/// use dsys_detect::{PhiAccrual, PhiConfig};
///
/// let mut fd = PhiAccrual::new(PhiConfig::default()).expect("the default config is valid");
/// let start = Instant::now(); // the caller's clock, read by the caller
/// for i in 0..10 {
///     fd.heartbeat(start + Duration::from_secs(i));
/// }
/// let last = start + Duration::from_secs(9);
/// assert!(fd.is_available(last + Duration::from_secs(1)));
/// assert!(!fd.is_available(last + Duration::from_secs(60)));
/// ```
///
/// Methods, by group:
/// - input: [`heartbeat`](Self::heartbeat), called with the arrival time
///   of each heartbeat from the monitored process;
/// - queries: [`phi`](Self::phi) and [`is_available`](Self::is_available)
///   at a caller-supplied `now`;
/// - getters: [`mean`](Self::mean), [`std_deviation`](Self::std_deviation),
///   [`samples`](Self::samples), [`last_heartbeat`](Self::last_heartbeat),
///   [`counters`](Self::counters),
///   [`config`](Self::config).
#[derive(Debug, Clone)]
pub struct PhiAccrual {
    config: PhiConfig,
    /// Inter-arrival times in nanoseconds, oldest first, at most
    /// `max_sample_size` and never empty (seeded at construction).
    window: VecDeque<u64>,
    /// Exact Σx over `window`.
    sum: u128,
    /// Exact Σx² over `window`.
    sum_sq: u128,
    /// Window mean, nanoseconds.
    mean_nanos: f64,
    /// Window (population) standard deviation, nanoseconds.
    std_dev_nanos: f64,
    /// The μ' of the model in seconds: μ + pause (normal) or μ (exponential).
    model_mean_secs: f64,
    /// 1 / σ' of the normal model, σ' = `max(σ, min_std_deviation)` in
    /// seconds (> 0 in the normal model: min_std_deviation > 0).
    inv_model_std_dev_secs: f64,
    /// 1 / n for the window length `inv_n_for`.
    inv_n: f64,
    inv_n_for: u64,
    /// `acceptable_heartbeat_pause` in seconds (normal model; 0 otherwise).
    pause_secs: f64,
    /// `min_std_deviation` in seconds (normal model; 0 otherwise).
    min_std_dev_secs: f64,
    /// Below this `z` the normal model's φ is surely under the threshold,
    /// above `z_unavailable` surely at or over it; see `threshold_band`.
    z_available: f64,
    z_unavailable: f64,
    last: Option<Instant>,
    counters: PhiCounters,
}

impl PhiAccrual {
    /// Longest inter-arrival time recorded, 2⁵³ ns (about 104 days);
    /// longer intervals (and estimates) are recorded as this. It keeps the
    /// exact sums inside `u128` (see [`PhiConfig::MAX_SAMPLE_SIZE`]).
    pub const MAX_SAMPLE: Duration = Duration::from_nanos(MAX_SAMPLE_NANOS);

    /// Builds a detector that monitors nothing yet: φ is 0 until the first
    /// [`heartbeat`](Self::heartbeat).
    ///
    /// # Errors
    ///
    /// [`PhiConfig::validate`]'s error when a field is out of its limits.
    pub fn new(config: PhiConfig) -> Result<Self, PhiConfigError> {
        config.validate()?;
        let (z_available, z_unavailable) = threshold_band(config.threshold);
        let (pause_secs, min_std_dev_secs) = match config.model {
            PhiModel::Normal => (
                config.acceptable_heartbeat_pause.as_secs_f64(),
                config.min_std_deviation.as_secs_f64(),
            ),
            PhiModel::Exponential => (0.0, 0.0),
        };
        let mut fd = Self {
            window: VecDeque::new(),
            sum: 0,
            sum_sq: 0,
            mean_nanos: 0.0,
            std_dev_nanos: 0.0,
            model_mean_secs: 0.0,
            inv_model_std_dev_secs: 0.0,
            inv_n: 1.0,
            inv_n_for: 1,
            pause_secs,
            min_std_dev_secs,
            z_available,
            z_unavailable,
            last: None,
            counters: PhiCounters {
                ignored_heartbeats: 0,
            },
            config,
        };
        fd.seed();
        Ok(fd)
    }

    /// Records a heartbeat that arrived at `now`.
    ///
    /// The first heartbeat starts monitoring from the seeded window. Each
    /// later one records the interval since the previous heartbeat, unless
    /// the peer was already unavailable at `now` (Akka's rule: the first
    /// interval after a failure would skew the statistics), and becomes the
    /// new reference for φ either way. A heartbeat with `now` earlier than
    /// the last one is ignored and counted in
    /// [`counters`](Self::counters); one at the same
    /// instant records a zero interval.
    pub fn heartbeat(&mut self, now: Instant) {
        // On the first heartbeat Akka resets the history to `firstHeartbeat`;
        // the window already holds exactly that since `new`.
        if let Some(last) = self.last {
            if now < last {
                self.counters.ignored_heartbeats += 1;
                return;
            }
            let elapsed = now - last;
            if self.available_after(elapsed) {
                self.record(elapsed);
            }
        }
        self.last = Some(now);
    }

    /// The suspicion level φ at `now` (see [`PhiAccrual`] for
    /// both models).
    ///
    /// 0 before the first heartbeat. Never NaN and never negative; it grows
    /// with `now` and may be `+∞` only in the exponential model when every
    /// recorded interval is zero. A `now` earlier than the last heartbeat
    /// counts as no time elapsed.
    #[must_use]
    pub fn phi(&self, now: Instant) -> f64 {
        let Some(last) = self.last else {
            return 0.0;
        };
        let t = now.saturating_duration_since(last).as_secs_f64();
        match self.config.model {
            PhiModel::Normal => log10_softplus(self.normal_z(t)),
            PhiModel::Exponential => exponential_phi(t, self.model_mean_secs),
        }
    }

    /// Whether the peer is considered alive at `now`: `phi(now) <
    /// threshold` (Akka's `isAvailable`). Always true before the first
    /// heartbeat.
    #[must_use]
    pub fn is_available(&self, now: Instant) -> bool {
        match self.last {
            None => true,
            Some(last) => self.available_after(now.saturating_duration_since(last)),
        }
    }

    /// Mean of the inter-arrival times in the window (the seeds included
    /// until they are evicted), rounded to the nanosecond. Without
    /// `acceptable_heartbeat_pause`.
    #[must_use]
    pub fn mean(&self) -> Duration {
        nanos_to_duration(self.mean_nanos)
    }

    /// Population standard deviation of the inter-arrival times in the
    /// window (as Akka's `HeartbeatHistory.stdDeviation`), rounded to the
    /// nanosecond. Not clamped: the normal model uses
    /// `max(std_deviation(), min_std_deviation)`.
    #[must_use]
    pub fn std_deviation(&self) -> Duration {
        nanos_to_duration(self.std_dev_nanos)
    }

    /// The inter-arrival times in the window, oldest first: between 1 and
    /// `max_sample_size` of them, starting with the seeds.
    pub fn samples(&self) -> impl ExactSizeIterator<Item = Duration> + '_ {
        self.window.iter().map(|&n| Duration::from_nanos(n))
    }

    /// Arrival time of the last accepted heartbeat; `None` before the first
    /// one, while the peer is not monitored (Akka's `isMonitoring`).
    #[must_use]
    pub fn last_heartbeat(&self) -> Option<Instant> {
        self.last
    }

    /// Input ignored so far (heartbeats fed out of order).
    #[must_use]
    pub fn counters(&self) -> &PhiCounters {
        &self.counters
    }

    /// The configuration this detector was built with.
    #[must_use]
    pub fn config(&self) -> &PhiConfig {
        &self.config
    }

    /// `phi < threshold` after `elapsed` of silence. In the normal model φ =
    /// log10(1 + e^z) increases with z, so the test is `z < z_threshold`,
    /// without the exp and log; φ itself is computed only in the thin band
    /// around `z_threshold` where rounding could make the two tests differ,
    /// so the answer is exactly `phi(now) < threshold`.
    fn available_after(&self, elapsed: Duration) -> bool {
        let t = elapsed.as_secs_f64();
        match self.config.model {
            PhiModel::Normal => {
                let z = self.normal_z(t);
                if z < self.z_available {
                    true
                } else if z > self.z_unavailable {
                    false
                } else {
                    log10_softplus(z) < self.config.threshold
                }
            }
            PhiModel::Exponential => {
                exponential_phi(t, self.model_mean_secs) < self.config.threshold
            }
        }
    }

    /// Akka's `y = (timeDiff − mean) / stdDeviation` and the logistic
    /// exponent `z = y (1.5976 + 0.070566 y²)`, for `t` seconds of silence.
    fn normal_z(&self, t: f64) -> f64 {
        let y = (t - self.model_mean_secs) * self.inv_model_std_dev_secs;
        y * (1.5976 + 0.070566 * y * y)
    }

    /// Fills the window with Akka's `firstHeartbeat`: `estimate − estimate/4`
    /// then `estimate + estimate/4`, through the normal eviction path so that
    /// a window of one keeps only the second, as Akka's does.
    fn seed(&mut self) {
        let estimate = duration_to_sample(self.config.first_heartbeat_estimate);
        let spread = estimate / 4;
        self.push(estimate - spread);
        self.push((estimate + spread).min(MAX_SAMPLE_NANOS));
        self.update_stats();
    }

    fn record(&mut self, interval: Duration) {
        self.push(duration_to_sample(interval));
        self.update_stats();
    }

    /// Appends one sample, evicting the oldest when the window is full.
    /// O(1): the window never grows past `max_sample_size`, so once full the
    /// deque never reallocates.
    fn push(&mut self, x: u64) {
        if self.window.len() == self.config.max_sample_size {
            if let Some(old) = self.window.pop_front() {
                let old = u128::from(old);
                self.sum -= old;
                self.sum_sq -= old * old;
            }
        }
        let x128 = u128::from(x);
        self.window.push_back(x);
        self.sum += x128;
        self.sum_sq += x128 * x128;
    }

    /// Recomputes mean and standard deviation from the exact sums.
    fn update_stats(&mut self) {
        // `window` is never empty after `seed`; max(1) keeps n > 0 without a
        // panic path.
        let n = self.window.len().max(1) as u64;
        if n != self.inv_n_for {
            // Changes only while the window fills.
            self.inv_n = 1.0 / n as f64;
            self.inv_n_for = n;
        }
        let inv_n = self.inv_n;
        // n²·var = n·Σx² − (Σx)², an exact non-negative integer (Cauchy–
        // Schwarz), so the only rounding is in converting it and scaling by
        // 1/n²: no cancellation between two large floats as in Akka's
        // Σx²/n − μ². Usual case: Σx < 2⁶⁴ ns (584 years) and n·Σx² < 2¹²⁸.
        let exact = u64::try_from(self.sum).ok().and_then(|sum| {
            let sum_squared = u128::from(sum) * u128::from(sum);
            let n_sum_sq = u128::from(n).checked_mul(self.sum_sq)?;
            Some((sum, n_sum_sq - sum_squared))
        });
        let (mean, variance) = match exact {
            Some((sum, n2_var)) => (sum as f64 * inv_n, u128_to_f64(n2_var) * inv_n * inv_n),
            None => {
                // Σx = a·n + b (0 ≤ b < n): n·var = (Σx² − a²n − 2ab) − b²/n,
                // the bracket again an exact non-negative integer, every
                // term ≤ Σx² < 2¹²⁶. a ≤ the largest sample ≤ 2⁵³ and
                // b < n ≤ 2²⁰, so both fit in u64 and b² in u64.
                let n128 = u128::from(n);
                let (a, b) = ((self.sum / n128) as u64, (self.sum % n128) as u64);
                let (a128, b128) = (u128::from(a), u128::from(b));
                let bracket = self.sum_sq - a128 * a128 * n128 - 2 * a128 * b128;
                let n_var = u128_to_f64(bracket) - (b * b) as f64 * inv_n;
                (a as f64 + b as f64 * inv_n, n_var * inv_n)
            }
        };
        self.mean_nanos = mean;
        self.std_dev_nanos = variance.max(0.0).sqrt();

        // Exponential: pause and minimum are 0 (set in `new`), so μ' = μ.
        self.model_mean_secs = self.mean_nanos * SECS_PER_NANO + self.pause_secs;
        let model_std_dev_secs = (self.std_dev_nanos * SECS_PER_NANO).max(self.min_std_dev_secs);
        self.inv_model_std_dev_secs = 1.0 / model_std_dev_secs;
    }
}

const MAX_SAMPLE_NANOS: u64 = 1 << 53;
const SECS_PER_NANO: f64 = 1e-9;

/// Akka's `phi(timeDiff, mean, stdDeviation)` from its exponent `z`:
/// `log10(1 + e^z)`, evaluated as a stable softplus: `z + ln(1 + e^−z)` for
/// `z > 0` (Akka's `timeDiff > mean` branch, where its `e = e^−z`
/// underflows to 0 and φ to `+∞` for large `z`), and `ln(1 + e^z)`
/// otherwise (its other branch, where `1 − 1/(1 + e)` loses the digits of a
/// small φ).
fn log10_softplus(z: f64) -> f64 {
    let ln = if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    };
    ln / LN_10
}

/// The `z` at which the normal model's φ = log10(1 + e^z) reaches
/// `threshold`, `ln(10^threshold − 1)`, widened by a relative 10⁻⁹ on each
/// side: below the band φ is surely under the threshold, above it surely
/// over, whatever the rounding of φ and of this inverse. When the inverse
/// is not finite (extreme thresholds), the band is everything and φ is
/// always computed.
fn threshold_band(threshold: f64) -> (f64, f64) {
    let x = threshold * LN_10;
    let z = if x > 30.0 {
        // ln(e^x − 1) = x + ln(1 − e^−x), without overflowing e^x.
        x + (-(-x).exp()).ln_1p()
    } else {
        x.exp_m1().ln()
    };
    if !z.is_finite() {
        return (f64::NEG_INFINITY, f64::INFINITY);
    }
    let margin = 1e-9 * z.abs().max(1.0);
    (z - margin, z + margin)
}

/// Cassandra's `PHI_FACTOR * t / mean()`; 0 when no time has elapsed, even
/// for a zero mean (where Cassandra asserts instead).
fn exponential_phi(t: f64, mean: f64) -> f64 {
    if t <= 0.0 { 0.0 } else { t / mean / LN_10 }
}

/// `x as f64` to within 2 ulp, from two 64-bit halves: a few instructions
/// where u128's `as` is a compiler-rt call.
fn u128_to_f64(x: u128) -> f64 {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    let (hi, lo) = ((x >> 64) as u64, x as u64);
    // hi · 2⁶⁴ is exact (a power-of-two scaling; hi < 2⁶⁴ rounds at most
    // once), lo rounds once, the sum once.
    hi as f64 * TWO_POW_64 + lo as f64
}

fn duration_to_sample(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).map_or(MAX_SAMPLE_NANOS, |n| n.min(MAX_SAMPLE_NANOS))
}

fn nanos_to_duration(nanos: f64) -> Duration {
    // `as` saturates (and maps NaN to 0); the statistics are finite and
    // below 2⁵³ ns anyway.
    Duration::from_nanos(nanos.round() as u64)
}
