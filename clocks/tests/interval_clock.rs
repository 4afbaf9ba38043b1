//! The TrueTime-style interval clock (Spanner §3) and commit wait (§4.1.2).

use dsys_clocks::{IntervalClock, ManualClock, PhysicalClock, Uncertainty};
use proptest::prelude::*;
use std::time::Duration;

const T0: u64 = 1_700_000_000_000_000_000; // ns

#[test]
fn epsilon_is_a_sawtooth_reset_by_sync() {
    let pt = ManualClock::from_nanos(T0);
    let mut tt = IntervalClock::new(&pt, Uncertainty::default()).unwrap();
    assert_eq!(tt.epsilon_at(T0), Duration::from_millis(1));
    // 200 ppm over 30 s = 6 ms of drift: Spanner's 1 ms -> 7 ms sawtooth.
    let thirty_s = T0 + 30_000_000_000;
    assert_eq!(tt.epsilon_at(thirty_s), Duration::from_millis(7));
    pt.set_nanos(thirty_s);
    assert_eq!(tt.now().width(), Duration::from_millis(14));
    tt.on_synced();
    assert_eq!(tt.now().width(), Duration::from_millis(2));
}

#[test]
fn interval_contains_the_physical_reading() {
    let pt = ManualClock::from_nanos(T0);
    let tt = IntervalClock::new(&pt, Uncertainty::fixed(Duration::from_micros(500))).unwrap();
    let now = tt.now();
    assert!(now.contains(pt.unix_nanos()));
    assert!(tt.before(now.latest + 1));
    assert!(!tt.before(now.latest));
    assert!(tt.after(now.earliest - 1));
    assert!(!tt.after(now.earliest));
}

#[test]
fn unreachable_commit_timestamp_does_not_hang() {
    let pt = ManualClock::from_nanos(T0);
    let tt = IntervalClock::new(&pt, Uncertainty::default()).unwrap();
    let wait = tt.commit_wait(u64::MAX);
    assert!(wait > Duration::from_secs(1_000_000_000));
}

proptest! {
    /// `commit_wait(s)` is the exact wait: `after(s)` holds once it has
    /// passed and not a nanosecond earlier, with ε drifting meanwhile.
    #[test]
    fn commit_wait_is_exact(
        base_us in 0u64..10_000,
        drift_ppm in 0u32..5_000,
        since_sync_ms in 0u64..60_000,
        s_offset_ns in -20_000_000i64..20_000_000,
    ) {
        let synced = T0;
        let now = T0 + since_sync_ms * 1_000_000;
        let pt = ManualClock::from_nanos(now);
        let mut tt = IntervalClock::new(&pt, Uncertainty::drifting(Duration::from_micros(base_us), drift_ppm)).unwrap();
        tt.on_synced_at(synced);
        let s = tt.now().latest.saturating_add_signed(s_offset_ns);
        let wait = u64::try_from(tt.commit_wait(s).as_nanos()).unwrap();
        pt.set_nanos(now + wait);
        prop_assert!(tt.after(s), "after(s) false after waiting {} ns", wait);
        if wait > 0 {
            pt.set_nanos(now + wait - 1);
            prop_assert!(!tt.after(s), "waited {} ns but {} would do", wait, wait - 1);
        } else {
            prop_assert!(tt.interval_at(now).earliest > s);
        }
    }
}
