//! Algebraic properties of the hybrid logical clock (Kulkarni et al. 2014,
//! Theorems 1-3) and of its packed encoding (§6.2).

mod common;
use dsys_clocks::{AtomicHlc, Hlc, HlcConfig, ManualClock, Timestamp, WallTime};
use proptest::prelude::*;
use std::time::Duration;

/// An [`HlcConfig`] with `max_offset` set, built the way a user outside the
/// crate builds one.
fn hlc_config(max_offset: Duration) -> HlcConfig {
    let mut config = HlcConfig::default();
    config.max_offset = max_offset;
    config
}

/// One input to a clock: a local/send event or a receive, each at a physical
/// time that moved by `step` ms from the previous one (negative: the physical
/// clock stepped back, as NTP may do).
#[derive(Debug, Clone)]
enum Input {
    Now {
        step: i64,
    },
    Update {
        step: i64,
        remote_offset: i64,
        remote_logical: u16,
    },
}

fn input() -> impl Strategy<Value = Input> {
    let step = prop_oneof![8 => 0i64..3, 1 => -20i64..0, 1 => 0i64..2000];
    prop_oneof![
        3 => step.clone().prop_map(|step| Input::Now { step }),
        2 => (step, -1_000i64..1_000, any::<u16>()).prop_map(|(step, remote_offset, remote_logical)| {
            Input::Update { step, remote_offset, remote_logical }
        }),
    ]
}

const START_MS: u64 = 1_700_000_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(512)))]

    /// Every timestamp is larger than the one before, `l >= pt` at every
    /// event, and `l - pt` never exceeds the largest remote offset accepted
    /// so far (Theorem 2's bound, with the physical clock allowed to step
    /// back by at most the largest backward step seen).
    #[test]
    fn monotonic_and_close_to_physical_time(inputs in prop::collection::vec(input(), 1..200)) {
        let pt = ManualClock::new(WallTime::from_millis(START_MS));
        let mut hlc = Hlc::with_config(&pt, hlc_config(Duration::from_millis(500))).unwrap();
        let mut prev = hlc.last();
        let mut pt_ms = START_MS;
        let mut high_water = START_MS; // largest physical reading so far
        let mut largest_accepted_ahead = 0u64;
        for input in inputs {
            let result = match input {
                Input::Now { step } => {
                    pt_ms = pt_ms.saturating_add_signed(step);
                    pt.set(WallTime::from_millis(pt_ms));
                    hlc.now().map_err(|e| e.to_string())
                }
                Input::Update { step, remote_offset, remote_logical } => {
                    pt_ms = pt_ms.saturating_add_signed(step);
                    pt.set(WallTime::from_millis(pt_ms));
                    let remote = Timestamp::new(pt_ms.saturating_add_signed(remote_offset), remote_logical).unwrap();
                    let result = hlc.update(remote).map_err(|e| e.to_string());
                    if result.is_ok() {
                        largest_accepted_ahead = largest_accepted_ahead.max(remote.millis().saturating_sub(pt_ms));
                    } else {
                        prop_assert_eq!(hlc.last(), prev, "a rejected update changed the clock");
                    }
                    result
                }
            };
            high_water = high_water.max(pt_ms);
            if let Ok(ts) = result {
                prop_assert!(ts > prev, "not monotonic: {} after {}", ts, prev);
                prop_assert!(ts.millis() >= pt_ms, "l < pt: {} at pt {}", ts, pt_ms);
                // l can lead pt by an accepted remote offset, or by how far
                // the physical clock went back below its high-water mark.
                let bound = largest_accepted_ahead + (high_water - pt_ms);
                prop_assert!(ts.millis() - pt_ms <= bound, "l - pt = {} > bound {}", ts.millis() - pt_ms, bound);
                prev = ts;
            }
        }
    }

    /// `Hlc` and `AtomicHlc` implement the same rules: fed the same inputs
    /// from one thread, they issue the same timestamps and the same errors.
    #[test]
    fn atomic_and_owned_clocks_agree(inputs in prop::collection::vec(input(), 1..100)) {
        let pt = ManualClock::new(WallTime::from_millis(START_MS));
        let mut owned = Hlc::new(&pt);
        let shared = AtomicHlc::new(&pt);
        let mut pt_ms = START_MS;
        for input in inputs {
            match input {
                Input::Now { step } => {
                    pt_ms = pt_ms.saturating_add_signed(step);
                    pt.set(WallTime::from_millis(pt_ms));
                    prop_assert_eq!(owned.now(), shared.now());
                }
                Input::Update { step, remote_offset, remote_logical } => {
                    pt_ms = pt_ms.saturating_add_signed(step);
                    pt.set(WallTime::from_millis(pt_ms));
                    let remote = Timestamp::new(pt_ms.saturating_add_signed(remote_offset), remote_logical).unwrap();
                    prop_assert_eq!(owned.update(remote), shared.update(remote));
                }
            }
            prop_assert_eq!(owned.last(), shared.last());
        }
    }

    /// The packed `u64` round-trips every value, and ordering packed values
    /// is ordering `(l, c)` lexicographically.
    #[test]
    fn packed_encoding_round_trips_and_preserves_order(
        a in (0..=dsys_clocks::MAX_MILLIS, any::<u16>()),
        b in (0..=dsys_clocks::MAX_MILLIS, any::<u16>()),
    ) {
        let ta = Timestamp::new(a.0, a.1).unwrap();
        let tb = Timestamp::new(b.0, b.1).unwrap();
        prop_assert_eq!((ta.millis(), ta.logical()), a);
        prop_assert_eq!(Timestamp::from_u64(ta.to_u64()), ta);
        prop_assert_eq!(ta.cmp(&tb), a.cmp(&b));
        prop_assert_eq!(ta.to_u64().cmp(&tb.to_u64()), a.cmp(&b));
    }

    /// Every `u64` unpacks and packs back to itself; the text form
    /// round-trips; serde round-trips.
    #[test]
    fn every_u64_is_a_timestamp(packed in any::<u64>()) {
        let ts = Timestamp::from_u64(packed);
        prop_assert_eq!(ts.to_u64(), packed);
        prop_assert_eq!(ts.to_string().parse::<Timestamp>(), Ok(ts));
        let json = serde_json::to_string(&ts).unwrap();
        prop_assert_eq!(&json, &packed.to_string());
        prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), ts);
    }
}
