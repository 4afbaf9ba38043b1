//! Machinery for section 4: printing wall times and durations in
//! milliseconds.

use std::time::Duration;

use dsys_clocks::WallTime;

/// `n` nanoseconds as milliseconds, without trailing zeros: `14.002801 ms`.
pub(super) fn ms(nanos: u64) -> String {
    let (whole, frac) = (nanos / 1_000_000, nanos % 1_000_000);
    if frac == 0 {
        format!("{whole} ms")
    } else {
        let frac = format!("{frac:06}");
        format!("{whole}.{} ms", frac.trim_end_matches('0'))
    }
}

/// A duration in milliseconds, as [`ms`] prints them.
pub(super) fn ms_of(d: Duration) -> String {
    ms(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `t` relative to `t0`: `t0 + 3 ms`, `t0 - 1 ms`.
pub(super) fn since(t0: WallTime, t: WallTime) -> String {
    if t >= t0 {
        format!("t0 + {}", ms_of(t.saturating_duration_since(t0)))
    } else {
        format!("t0 - {}", ms_of(t0.saturating_duration_since(t)))
    }
}
