//! `SystemClock` reads the clock `std::time::SystemTime` reads (through
//! rustix's vDSO call on Unix), in milliseconds and nanoseconds.

use dsys_clocks::{PhysicalClock, SystemClock};

fn std_millis() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the test machine's clock is after 1970");
    u64::try_from(since.as_millis()).expect("milliseconds since 1970 fit in u64")
}

#[test]
fn system_clock_agrees_with_std() {
    let before = std_millis();
    let millis = SystemClock.now().as_millis();
    let nanos = SystemClock.now().as_nanos();
    let after = std_millis();
    assert!(
        (before..=after).contains(&millis),
        "{before} <= {millis} <= {after}"
    );
    assert!(
        (before..=after).contains(&(nanos / 1_000_000)),
        "{before} <= {} <= {after}",
        nanos / 1_000_000
    );
}
