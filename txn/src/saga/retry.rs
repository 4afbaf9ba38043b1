//! Retry policies for actions and compensations, modelled on Temporal's
//! activity options: attempts, exponential backoff, a timeout per attempt
//! (start-to-close) and one for all attempts of a step together
//! (schedule-to-close), and error kinds never worth retrying.

use std::time::Duration;

/// How one step's action (or compensation) is retried. `#[non_exhaustive]`:
/// start from [`RetryPolicy::default`] (actions) or
/// [`RetryPolicy::compensation`] and assign fields, then
/// [`validate`](Self::validate) (done for you when a definition is added).
///
/// ```
/// use dsys_txn::saga::RetryPolicy;
/// use std::time::Duration;
///
/// let mut policy = RetryPolicy::default();
/// policy.max_attempts = 5;
/// policy.initial_backoff = Duration::from_millis(50);
/// policy.non_retryable.push("insufficient_funds".into());
/// policy.validate().unwrap();
/// assert_eq!(policy.backoff(1), Duration::from_millis(50));
/// assert_eq!(policy.backoff(2), Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts before the step gives up, the first included; `0` means
    /// unlimited (then only `schedule_to_close` ends the retries). At most
    /// [`RetryPolicy::MAX_ATTEMPTS`].
    pub max_attempts: u32,
    /// The wait after the first failed attempt. At most
    /// [`RetryPolicy::MAX_DURATION`].
    pub initial_backoff: Duration,
    /// Each further wait is the previous one times this. Finite, in
    /// `[1.0, 100.0]`.
    pub backoff_coefficient: f64,
    /// The longest wait between attempts. At least `initial_backoff`, at most
    /// [`RetryPolicy::MAX_DURATION`].
    pub max_backoff: Duration,
    /// How long one attempt may run, counted from when it was scheduled
    /// (its log record's persist latency included). An attempt that runs
    /// longer is a failed, retryable attempt whose outcome is unknown.
    /// Non-zero, at most [`RetryPolicy::MAX_DURATION`].
    pub start_to_close: Duration,
    /// How long all attempts of the step together may take, counted from the
    /// first attempt (or from an operator's retry). `None`: no limit.
    /// Non-zero, at most [`RetryPolicy::MAX_DURATION`].
    pub schedule_to_close: Option<Duration>,
    /// Error kinds ([`StepError::kind`](super::StepError::kind)) that end
    /// the retries at once, whatever the error's `retryable` flag says. At
    /// most [`RetryPolicy::MAX_NON_RETRYABLE`] entries, each at most
    /// [`MAX_NAME_LEN`](super::MAX_NAME_LEN) bytes.
    pub non_retryable: Vec<String>,
}

impl Default for RetryPolicy {
    /// The action default: 3 attempts, 100 ms doubling to at most 10 s, 30 s
    /// per attempt, no overall limit.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            backoff_coefficient: 2.0,
            max_backoff: Duration::from_secs(10),
            start_to_close: Duration::from_secs(30),
            schedule_to_close: None,
            non_retryable: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// The largest `max_attempts`.
    pub const MAX_ATTEMPTS: u32 = 1_000_000;
    /// The longest duration any field may hold (one year): deadlines are
    /// wall-clock times, and nothing a valid policy holds may overflow them.
    pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
    /// The most entries in `non_retryable`.
    pub const MAX_NON_RETRYABLE: usize = 64;

    /// The compensation default: 10 attempts, 100 ms doubling to at most
    /// 60 s, 30 s per attempt, no overall limit. A compensation that still
    /// fails after that leaves the saga stuck for an operator (the seeds'
    /// "a failed compensation needs manual intervention").
    pub fn compensation() -> Self {
        Self {
            max_attempts: 10,
            max_backoff: Duration::from_secs(60),
            ..Self::default()
        }
    }

    /// Checks every field against its documented bound. Nothing changed on
    /// error.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_attempts > Self::MAX_ATTEMPTS {
            return Err(PolicyError::TooManyAttempts(self.max_attempts));
        }
        let c = self.backoff_coefficient;
        if !c.is_finite() || !(1.0..=100.0).contains(&c) {
            return Err(PolicyError::Coefficient(c));
        }
        for (field, d) in [
            ("initial_backoff", self.initial_backoff),
            ("max_backoff", self.max_backoff),
            ("start_to_close", self.start_to_close),
            (
                "schedule_to_close",
                self.schedule_to_close.unwrap_or(Duration::from_secs(1)),
            ),
        ] {
            if d > Self::MAX_DURATION {
                return Err(PolicyError::DurationTooLong(field));
            }
        }
        if self.start_to_close.is_zero() {
            return Err(PolicyError::ZeroTimeout("start_to_close"));
        }
        if self.schedule_to_close == Some(Duration::ZERO) {
            return Err(PolicyError::ZeroTimeout("schedule_to_close"));
        }
        if self.max_backoff < self.initial_backoff {
            return Err(PolicyError::MaxBelowInitial);
        }
        if self.non_retryable.len() > Self::MAX_NON_RETRYABLE {
            return Err(PolicyError::TooManyNonRetryable(self.non_retryable.len()));
        }
        if self
            .non_retryable
            .iter()
            .any(|k| k.len() > super::MAX_NAME_LEN)
        {
            return Err(PolicyError::KindTooLong);
        }
        Ok(())
    }

    /// The wait after the `failed`-th failed attempt (1-based):
    /// `initial_backoff * backoff_coefficient^(failed - 1)`, capped at
    /// `max_backoff`. `failed == 0` is treated as 1.
    pub fn backoff(&self, failed: u32) -> Duration {
        let exp = i32::try_from(failed.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * self.backoff_coefficient.powi(exp);
        // `min` maps an infinite product to the cap; the cap is bounded by
        // `validate`, so the conversion cannot overflow.
        let capped = secs.min(self.max_backoff.as_secs_f64());
        Duration::try_from_secs_f64(capped).unwrap_or(self.max_backoff)
    }

    /// Whether an error of `kind` marked `retryable` may be retried.
    pub(crate) fn retries(&self, kind: &str, retryable: bool) -> bool {
        retryable && !self.non_retryable.iter().any(|k| k == kind)
    }
}

/// Why a [`RetryPolicy`] was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// `max_attempts` exceeds [`RetryPolicy::MAX_ATTEMPTS`].
    #[error("max_attempts ({0}) exceeds {max}", max = RetryPolicy::MAX_ATTEMPTS)]
    TooManyAttempts(u32),
    /// `backoff_coefficient` is not finite or outside `[1.0, 100.0]`.
    #[error("backoff_coefficient ({0}) must be finite and in [1, 100]")]
    Coefficient(f64),
    /// The named duration exceeds [`RetryPolicy::MAX_DURATION`].
    #[error("{0} exceeds one year")]
    DurationTooLong(&'static str),
    /// The named timeout is zero: no attempt could ever succeed.
    #[error("{0} must not be zero")]
    ZeroTimeout(&'static str),
    /// `max_backoff < initial_backoff`.
    #[error("max_backoff must be at least initial_backoff")]
    MaxBelowInitial,
    /// `non_retryable` has more than [`RetryPolicy::MAX_NON_RETRYABLE`] entries.
    #[error("non_retryable has {0} entries, more than {max}", max = RetryPolicy::MAX_NON_RETRYABLE)]
    TooManyNonRetryable(usize),
    /// An entry of `non_retryable` is longer than [`MAX_NAME_LEN`](super::MAX_NAME_LEN).
    #[error("a non_retryable kind is too long")]
    KindTooLong,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_exponential_and_capped() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            backoff_coefficient: 3.0,
            max_backoff: Duration::from_millis(200),
            ..RetryPolicy::default()
        };
        let got: Vec<u128> = (1..=6).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(got, [10, 30, 90, 200, 200, 200]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(200));
        assert_eq!(p.backoff(0), Duration::from_millis(10));
    }

    #[test]
    fn validate_bounds_every_field() {
        let ok = RetryPolicy::default();
        ok.validate().unwrap();
        RetryPolicy::compensation().validate().unwrap();
        let mut p = ok.clone();
        p.max_attempts = RetryPolicy::MAX_ATTEMPTS + 1;
        assert!(p.validate().is_err());
        for c in [f64::NAN, f64::INFINITY, 0.5, 101.0] {
            let mut p = ok.clone();
            p.backoff_coefficient = c;
            assert!(p.validate().is_err(), "{c}");
        }
        let mut p = ok.clone();
        p.max_backoff = RetryPolicy::MAX_DURATION + Duration::from_secs(1);
        assert!(p.validate().is_err());
        let mut p = ok.clone();
        p.start_to_close = Duration::ZERO;
        assert!(p.validate().is_err());
        let mut p = ok.clone();
        p.schedule_to_close = Some(Duration::ZERO);
        assert!(p.validate().is_err());
        let mut p = ok.clone();
        p.schedule_to_close = Some(Duration::MAX);
        assert!(p.validate().is_err());
        let mut p = ok.clone();
        p.initial_backoff = Duration::from_secs(20);
        assert_eq!(p.validate(), Err(PolicyError::MaxBelowInitial));
        let mut p = ok.clone();
        p.non_retryable = vec!["x".into(); 65];
        assert!(p.validate().is_err());
        let mut p = ok;
        p.non_retryable = vec!["x".repeat(super::super::MAX_NAME_LEN + 1)];
        assert!(p.validate().is_err());
    }
}
