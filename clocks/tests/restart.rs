//! Restart, as the README's "Persistence and restart" describes it: an HLC
//! rebuilt with `resumed_after(persisted)` stamps after everything it issued
//! before the restart, even when the physical clock stepped back while the
//! node was down; one rebuilt without it can repeat or reorder timestamps.

use dsys_clocks::{AtomicHlc, Hlc, HlcConfig, ManualClock, Timestamp, WallTime};
use proptest::prelude::*;
use std::time::Duration;

const START_MS: u64 = 1_700_000_000_000;

proptest! {
    #[test]
    fn resumed_clock_stays_ahead_of_what_it_issued(
        events in 1usize..50,
        step_back_ms in 0u64..10_000,
        upper_bound_ms in prop_oneof![Just(0u64), 1u64..2_000],
    ) {
        let pt = ManualClock::new(WallTime::from_millis(START_MS));
        let mut before = Hlc::new(&pt);
        let mut issued = Timestamp::ZERO;
        for _ in 0..events {
            issued = before.now().unwrap();
        }
        // What the node persisted: the last timestamp, or an upper bound
        // written ahead of it.
        let persisted = Timestamp::new(issued.millis() + upper_bound_ms, 0).unwrap().max(issued);

        // Down; the physical clock steps back; restart from the persisted value.
        pt.set(WallTime::from_millis(START_MS - step_back_ms));
        let config = HlcConfig::default();
        let mut after = Hlc::with_config(&pt, config).unwrap().resumed_after(persisted);
        let shared = AtomicHlc::with_config(&pt, config).unwrap().resumed_after(persisted);
        let first = after.now().unwrap();
        prop_assert!(first > issued, "{first} after restart, {issued} before");
        prop_assert!(shared.now().unwrap() > issued);
        pt.advance(Duration::from_millis(1));
        prop_assert!(after.now().unwrap() > first);
    }
}

#[test]
fn fresh_clock_after_a_step_back_goes_back_in_time() {
    let pt = ManualClock::new(WallTime::from_millis(START_MS));
    let issued = Hlc::new(&pt).now().unwrap();
    pt.set(WallTime::from_millis(START_MS - 1));
    // Without the persisted timestamp the clock knows nothing of `issued`.
    assert!(Hlc::new(&pt).now().unwrap() < issued);
}
