//! The errors for invalid clock settings: one per configuration type.

use core::time::Duration;

/// An invalid [`HlcConfig`](crate::HlcConfig). State: no clock was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HlcConfigError {
    /// `max_offset` does not fit in a timestamp's 48 bits of milliseconds.
    /// State: no clock was built.
    #[error("max_offset {max_offset:?} exceeds the 48-bit millisecond range")]
    MaxOffsetTooLarge {
        /// The rejected value.
        max_offset: Duration,
    },
}

/// An invalid [`Uncertainty`](crate::Uncertainty) (an interval clock's
/// settings). State: no clock was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UncertaintyConfigError {
    /// `base` exceeds [`Uncertainty::MAX_BASE`](crate::Uncertainty::MAX_BASE).
    /// State: no clock was built.
    #[error("base uncertainty {base:?} exceeds one hour (Uncertainty::MAX_BASE)")]
    BaseTooLarge {
        /// The rejected value.
        base: Duration,
    },
    /// The drift rate is not below 1,000,000 ppm. State: no clock was built.
    #[error("drift of {drift_ppm} ppm is not below 1_000_000 ppm")]
    DriftTooLarge {
        /// The rejected value.
        drift_ppm: u32,
    },
}
