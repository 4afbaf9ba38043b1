//! The HLC timestamp and its packed `u64` form.

use core::fmt;
use core::str::FromStr;

/// Bits of the logical counter `c` (Kulkarni et al. 2014, §6.2: 48 bits of
/// `l`, 16 bits of `c`, so a timestamp fits where an NTP timestamp did).
pub(crate) const LOGICAL_BITS: u32 = 16;

/// The largest millisecond value a [`Timestamp`] holds: `2^48 - 1`, about the
/// year 10889.
pub const MAX_MILLIS: u64 = (1 << (64 - LOGICAL_BITS)) - 1;

/// A hybrid logical clock timestamp `(l, c)`: `l` in milliseconds since the
/// Unix epoch, `c` a logical counter ordering events within one `l`.
///
/// `l` is logical time in the unit of the packed format, not a physical
/// reading: the clock sets it from [`WallTime::as_millis`](crate::WallTime::as_millis)
/// of its physical clock or from a remote `l`, and it may run ahead of (and
/// outlast, up to [`MAX_MILLIS`]) any [`WallTime`](crate::WallTime).
///
/// Packed as `l << 16 | c` in one `u64` (§6.2), so ordering timestamps is
/// ordering integers, and the packed form is what to put on the wire:
/// [`to_u64`](Self::to_u64) / [`from_u64`](Self::from_u64) round-trip every
/// value, and `Display` / `FromStr` round-trip the text form `l,c`
/// (`1732280000123,7`), the layout CockroachDB prints.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Timestamp(u64);

impl Timestamp {
    /// The smallest timestamp, `0,0`.
    pub const ZERO: Self = Self(0);
    /// The largest timestamp, `MAX_MILLIS,65535`.
    pub const MAX: Self = Self(u64::MAX);

    /// The timestamp `(millis, logical)`.
    ///
    /// # Errors
    /// [`TimestampRangeError`] if `millis > MAX_MILLIS`.
    pub const fn new(millis: u64, logical: u16) -> Result<Self, TimestampRangeError> {
        if millis > MAX_MILLIS {
            return Err(TimestampRangeError { millis });
        }
        Ok(Self((millis << LOGICAL_BITS) | logical as u64))
    }

    /// `l`: milliseconds since the Unix epoch.
    pub const fn millis(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// `c`: the logical counter within [`millis`](Self::millis).
    pub const fn logical(self) -> u16 {
        // Truncation keeps exactly the low 16 bits, which is `c`.
        self.0 as u16
    }

    /// The packed `l << 16 | c` form.
    pub const fn to_u64(self) -> u64 {
        self.0
    }

    /// Unpacks `l << 16 | c`. Every `u64` is a valid timestamp.
    pub const fn from_u64(packed: u64) -> Self {
        Self(packed)
    }

    /// The first timestamp of physical millisecond `millis` (`c = 0`), for a
    /// reading already checked against [`MAX_MILLIS`].
    pub(crate) const fn at_wall(millis: u64) -> Self {
        Self(millis << LOGICAL_BITS)
    }

    /// `c` is at its maximum: the next timestamp in this millisecond does not
    /// exist.
    pub(crate) const fn logical_exhausted(self) -> bool {
        self.logical() == u16::MAX
    }

    /// The next timestamp in the same millisecond, for a caller that checked
    /// [`logical_exhausted`](Self::logical_exhausted).
    pub(crate) const fn next_logical(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

/// `millis,logical`, e.g. `1732280000123,7`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.millis(), self.logical())
    }
}

/// Parses `millis,logical` in the one form `Display` writes: decimal digits
/// only, no sign, spaces or leading zeros.
impl FromStr for Timestamp {
    type Err = ParseTimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (millis, logical) = s
            .split_once(',')
            .ok_or(ParseTimestampError::MissingSeparator)?;
        let millis = parse_digits(millis).ok_or(ParseTimestampError::InvalidMillis)?;
        let logical = parse_digits(logical)
            .and_then(|c| u16::try_from(c).ok())
            .ok_or(ParseTimestampError::InvalidLogical)?;
        Self::new(millis, logical)
            .map_err(|e| ParseTimestampError::MillisOutOfRange { millis: e.millis })
    }
}

/// A canonical decimal `u64`: ASCII digits, no sign, no leading zero (but
/// `0` itself), so that each timestamp has exactly one text form and text
/// can serve as a key. `None` otherwise (`u64::from_str` alone would accept
/// `+7` and `007`).
fn parse_digits(s: &str) -> Option<u64> {
    let canonical = s == "0" || (!s.is_empty() && !s.starts_with('0'));
    if !canonical || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A millisecond value does not fit the 48 bits of a [`Timestamp`]. State:
/// nothing changed (no timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("{millis} ms does not fit in 48 bits (max {MAX_MILLIS})")]
pub struct TimestampRangeError {
    /// The value that did not fit.
    pub millis: u64,
}

/// Text that is not a timestamp `millis,logical`. Parsing changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseTimestampError {
    /// There is no `,` between the two numbers.
    /// State: nothing changed (no timestamp).
    #[error("missing ',' between milliseconds and logical counter")]
    MissingSeparator,
    /// The part before `,` is not a decimal `u64`.
    /// State: nothing changed (no timestamp).
    #[error("milliseconds are not a decimal number")]
    InvalidMillis,
    /// The milliseconds parse but exceed [`MAX_MILLIS`].
    /// State: nothing changed (no timestamp).
    #[error("{millis} ms does not fit in 48 bits (max {MAX_MILLIS})")]
    MillisOutOfRange {
        /// The value that did not fit.
        millis: u64,
    },
    /// The part after `,` is not a decimal number in `0..=65535`.
    /// State: nothing changed (no timestamp).
    #[error("logical counter is not a decimal number in 0..=65535")]
    InvalidLogical,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_millis_high_and_logical_low() {
        let ts = Timestamp::new(0x1234_5678_9abc, 0xdef0).unwrap();
        assert_eq!(ts.to_u64(), 0x1234_5678_9abc_def0);
        assert_eq!((ts.millis(), ts.logical()), (0x1234_5678_9abc, 0xdef0));
        assert_eq!(Timestamp::MAX.millis(), MAX_MILLIS);
    }

    #[test]
    fn text_form() {
        let ts = Timestamp::new(1_732_280_000_123, 7).unwrap();
        assert_eq!(ts.to_string(), "1732280000123,7");
        assert_eq!("1732280000123,7".parse::<Timestamp>(), Ok(ts));
        assert_eq!(Timestamp::MAX.to_string().parse(), Ok(Timestamp::MAX));
    }
}
