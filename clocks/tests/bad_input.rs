//! Bad input gets a typed error and leaves the clock as it was: remote
//! timestamps from clocks too far ahead, malformed text, counters at their
//! limits, invalid settings, non-canonical serialized clocks.

use dsys_clocks::{
    AtomicHlc, AtomicLamport, CounterOverflow, Hlc, HlcConfig, HlcConfigError, IntervalClock,
    LamportClock, MAX_MILLIS, ManualClock, NowError, ParseTimestampError, PhysicalClock, Timestamp,
    Uncertainty, UncertaintyConfigError, UpdateError, VectorClock, WallTime,
};
use std::time::Duration;

/// An [`HlcConfig`] with `max_offset` set, built the way a user outside the
/// crate builds one.
fn hlc_config(max_offset: Duration) -> HlcConfig {
    let mut config = HlcConfig::default();
    config.max_offset = max_offset;
    config
}

const NOW_MS: u64 = 1_700_000_000_000;

fn ts(millis: u64, logical: u16) -> Timestamp {
    Timestamp::new(millis, logical).unwrap()
}

#[test]
fn remote_beyond_max_offset_is_rejected_and_clock_unchanged() {
    let pt = ManualClock::new(WallTime::from_millis(NOW_MS));
    let mut hlc = Hlc::new(&pt);
    let shared = AtomicHlc::new(&pt);
    let before = hlc.now().unwrap();
    shared.now().unwrap();

    for remote in [ts(NOW_MS + 501, 0), ts(NOW_MS + 10_000, 3), Timestamp::MAX] {
        let err = hlc.update(remote).unwrap_err();
        assert_eq!(
            err,
            UpdateError::RemoteTooFarAhead {
                remote,
                physical: WallTime::from_millis(NOW_MS),
                max_offset: Duration::from_millis(500)
            }
        );
        assert_eq!(hlc.last(), before, "owned clock moved on a rejected update");
        assert_eq!(shared.update(remote).unwrap_err(), err);
        assert_eq!(
            shared.last(),
            before,
            "shared clock moved on a rejected update"
        );
    }
    // Exactly max_offset ahead is still accepted.
    assert_eq!(hlc.update(ts(NOW_MS + 500, 0)), Ok(ts(NOW_MS + 500, 1)));
    let message = UpdateError::RemoteTooFarAhead {
        remote: ts(NOW_MS + 600, 0),
        physical: WallTime::from_millis(NOW_MS),
        max_offset: Duration::from_millis(500),
    }
    .to_string();
    assert!(message.contains("600 ms ahead"), "{message}");
}

#[test]
fn configured_max_offset_is_honoured() {
    let pt = ManualClock::new(WallTime::from_millis(NOW_MS));
    let mut strict = Hlc::with_config(&pt, hlc_config(Duration::ZERO)).unwrap();
    assert!(strict.update(ts(NOW_MS + 1, 0)).is_err());
    assert!(strict.update(ts(NOW_MS, 7)).is_ok());
}

#[test]
fn malformed_text_is_rejected() {
    let cases: &[(&str, ParseTimestampError)] = &[
        ("", ParseTimestampError::MissingSeparator),
        ("1700000000000", ParseTimestampError::MissingSeparator),
        ("1700000000000.5", ParseTimestampError::MissingSeparator),
        (",1", ParseTimestampError::InvalidMillis),
        ("-1,0", ParseTimestampError::InvalidMillis),
        ("+1,0", ParseTimestampError::InvalidMillis),
        (" 1,0", ParseTimestampError::InvalidMillis),
        ("1e3,0", ParseTimestampError::InvalidMillis),
        ("18446744073709551616,0", ParseTimestampError::InvalidMillis),
        ("1,", ParseTimestampError::InvalidLogical),
        ("1,65536", ParseTimestampError::InvalidLogical),
        ("1,-1", ParseTimestampError::InvalidLogical),
        ("1,2,3", ParseTimestampError::InvalidLogical),
        ("1,0 ", ParseTimestampError::InvalidLogical),
        ("007,0", ParseTimestampError::InvalidMillis),
        ("7,00", ParseTimestampError::InvalidLogical),
        ("7,01", ParseTimestampError::InvalidLogical),
        ("１,0", ParseTimestampError::InvalidMillis), // full-width digit
        (
            "281474976710656,0",
            ParseTimestampError::MillisOutOfRange {
                millis: MAX_MILLIS + 1,
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<Timestamp>(), Err(*expected), "input {text:?}");
    }
    assert_eq!("281474976710655,65535".parse(), Ok(Timestamp::MAX));
    assert_eq!("0,0".parse(), Ok(Timestamp::ZERO));
}

#[test]
fn out_of_range_constructor_is_rejected() {
    assert!(Timestamp::new(MAX_MILLIS + 1, 0).is_err());
    assert!(Timestamp::new(MAX_MILLIS, u16::MAX).is_ok());
}

#[test]
fn logical_overflow_is_an_error_not_a_wrap() {
    // A clock that physical time has not passed, with c at its maximum.
    let pt = ManualClock::new(WallTime::from_millis(NOW_MS));
    let exhausted = ts(NOW_MS, u16::MAX);
    let mut hlc = Hlc::new(&pt).resumed_after(exhausted);
    let shared = AtomicHlc::new(&pt).resumed_after(exhausted);
    let overflow = NowError::LogicalOverflow { millis: NOW_MS };
    assert_eq!(hlc.now(), Err(overflow));
    assert_eq!(shared.now(), Err(overflow));
    assert_eq!(hlc.update(ts(NOW_MS - 5, 0)), Err(overflow.into()));
    assert_eq!(hlc.update(ts(NOW_MS, 9)), Err(overflow.into()));
    assert_eq!(hlc.last(), exhausted);
    assert_eq!(shared.last(), exhausted);
    // A remote whose own counter is exhausted cannot be succeeded in its ms either.
    let mut fresh = Hlc::new(&pt);
    assert_eq!(
        fresh.update(ts(NOW_MS + 3, u16::MAX)),
        Err(UpdateError::LogicalOverflow { millis: NOW_MS + 3 })
    );
    assert_eq!(fresh.last(), Timestamp::ZERO);
    // Once physical time passes, the clock works again.
    pt.advance(Duration::from_millis(1));
    assert_eq!(hlc.now(), Ok(ts(NOW_MS + 1, 0)));
    assert_eq!(shared.now(), Ok(ts(NOW_MS + 1, 0)));
}

#[test]
fn sixty_five_thousand_events_in_one_millisecond_then_overflow() {
    let pt = ManualClock::new(WallTime::from_millis(NOW_MS));
    let mut hlc = Hlc::new(&pt);
    for c in 0..=u16::MAX {
        assert_eq!(hlc.now(), Ok(ts(NOW_MS, c)));
    }
    assert!(matches!(hlc.now(), Err(NowError::LogicalOverflow { .. })));
}

/// A broken physical clock stuck at the last representable wall time.
struct EndOfTime;

impl PhysicalClock for EndOfTime {
    fn now(&self) -> WallTime {
        WallTime::MAX
    }
}

/// A physical reading can no longer be out of an HLC's range: the latest
/// [`WallTime`] (year 2554) is within the 48 bits of milliseconds (year
/// 10889), so even a clock stuck there stamps, and keeps its order.
/// (This replaced the test that a reading past `MAX_MILLIS` was refused:
/// since physical time is a `WallTime`, such a reading does not exist.)
#[test]
fn physical_clock_at_the_end_of_wall_time_still_stamps() {
    let end = WallTime::MAX.as_millis();
    assert!(end <= MAX_MILLIS);
    let mut hlc = Hlc::new(EndOfTime);
    assert_eq!(hlc.now(), Ok(ts(end, 0)));
    assert_eq!(hlc.update(Timestamp::ZERO), Ok(ts(end, 1)));
    let shared = AtomicHlc::new(EndOfTime);
    assert_eq!(shared.now(), Ok(ts(end, 0)));
    // The sans-IO form takes the reading as an argument: the same rule.
    let mut manual = Hlc::new(ManualClock::default());
    assert_eq!(manual.now_at(WallTime::MAX), Ok(ts(end, 0)));
    assert_eq!(manual.now_at(WallTime::UNIX_EPOCH), Ok(ts(end, 1)));
}

#[test]
fn lamport_counter_overflow_is_an_error() {
    let mut clock = LamportClock::new();
    assert!(matches!(
        clock.receive(u64::MAX),
        Err(CounterOverflow { .. })
    ));
    assert_eq!(clock.time(), 0, "rejected receive changed the clock");
    assert_eq!(clock.receive(u64::MAX - 1), Ok(u64::MAX));
    assert!(matches!(clock.tick(), Err(CounterOverflow { .. })));
    assert_eq!(clock.time(), u64::MAX);

    let shared = AtomicLamport::new();
    assert!(matches!(
        shared.receive(u64::MAX),
        Err(CounterOverflow { .. })
    ));
    assert_eq!(shared.time(), 0);
    assert_eq!(shared.receive(u64::MAX - 1), Ok(u64::MAX));
    assert!(matches!(shared.tick(), Err(CounterOverflow { .. })));
}

#[test]
fn vector_clock_from_a_peer_at_u64_max_cannot_be_incremented_past() {
    let mut mine = VectorClock::from_entries([(1u8, 4)]);
    let hostile = VectorClock::from_entries([(1u8, u64::MAX)]);
    assert!(matches!(
        mine.receive(&1, &hostile),
        Err(CounterOverflow { .. })
    ));
    assert_eq!(mine.get(&1), u64::MAX);
}

#[test]
fn invalid_settings_are_rejected() {
    let pt = ManualClock::new(WallTime::from_millis(NOW_MS));
    let too_large = hlc_config(Duration::from_secs(u64::MAX));
    assert!(matches!(
        too_large.validate(),
        Err(HlcConfigError::MaxOffsetTooLarge { .. })
    ));
    assert!(Hlc::with_config(&pt, too_large).is_err());
    assert!(AtomicHlc::with_config(&pt, too_large).is_err());
    assert!(HlcConfig::default().validate().is_ok());

    let drift = Uncertainty::drifting(Duration::from_millis(1), 1_000_000);
    assert_eq!(
        IntervalClock::new(&pt, drift).unwrap_err(),
        UncertaintyConfigError::DriftTooLarge {
            drift_ppm: 1_000_000
        }
    );

    // `base` is bounded at Uncertainty::MAX_BASE (one hour), inclusive.
    let mut base = Uncertainty::default();
    base.base = Uncertainty::MAX_BASE;
    assert_eq!(base.validate(), Ok(()));
    assert!(IntervalClock::new(&pt, base).is_ok());
    base.base = Uncertainty::MAX_BASE + Duration::from_nanos(1);
    assert_eq!(
        IntervalClock::new(&pt, base).unwrap_err(),
        UncertaintyConfigError::BaseTooLarge { base: base.base }
    );
    assert!(matches!(
        Uncertainty::fixed(Duration::MAX).validate(),
        Err(UncertaintyConfigError::BaseTooLarge { .. })
    ));
}

#[test]
fn deserialized_vector_clocks_are_normalised() {
    // Unsorted, duplicated, with zero entries: as a buggy or hostile peer sends.
    let json = r#"[[3,5],[1,0],[2,7],[3,9],[2,1]]"#;
    let clock: VectorClock<u8> = serde_json::from_str(json).unwrap();
    assert_eq!(clock, VectorClock::from_entries([(2, 7), (3, 9)]));
    assert_eq!(clock.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 3]);
    // Malformed input is an error, not a panic.
    assert!(serde_json::from_str::<VectorClock<u8>>(r#"[[1]]"#).is_err());
    assert!(serde_json::from_str::<VectorClock<u8>>(r#"{"a":1}"#).is_err());
    assert!(serde_json::from_str::<Timestamp>(r#"-1"#).is_err());
}

#[test]
fn malformed_dotted_versions_are_rejected_or_canonicalised() {
    use dsys_clocks::{DottedVersionVector, Siblings};
    type Dvv = DottedVersionVector<u8>;
    // A zero dot, and a dot inside its own context: no update creates these.
    assert!(serde_json::from_str::<Dvv>(r#"{"dot":{"node":1,"counter":0},"context":[]}"#).is_err());
    assert!(
        serde_json::from_str::<Dvv>(r#"{"dot":{"node":1,"counter":2},"context":[[1,3]]}"#).is_err()
    );
    assert!(
        serde_json::from_str::<Dvv>(r#"{"dot":{"node":1,"counter":4},"context":[[1,3]]}"#).is_ok()
    );

    let v =
        |dot: &str, ctx: &str, value: u8| format!(r#"[{{"dot":{dot},"context":{ctx}}},{value}]"#);
    let siblings = |versions: &[String]| format!(r#"{{"versions":[{}]}}"#, versions.join(","));
    let s1 = r#"{"node":1,"counter":1}"#;
    let s2 = r#"{"node":1,"counter":2}"#;
    let t1 = r#"{"node":2,"counter":1}"#;
    // Two values under one dot: ambiguous, rejected.
    let dup = siblings(&[v(s2, "[]", 7), v(s2, "[]", 8)]);
    assert!(serde_json::from_str::<Siblings<u8, u8>>(&dup).is_err());
    // Each claims to have seen the other: rejected.
    let mutual = siblings(&[v(s2, "[[2,1]]", 7), v(t1, "[[1,2]]", 8)]);
    assert!(serde_json::from_str::<Siblings<u8, u8>>(&mutual).is_err());
    // A superseded version is dropped, as any update or sync would drop it.
    let stale = siblings(&[v(s1, "[]", 7), v(s2, "[[1,1]]", 8), v(t1, "[]", 9)]);
    let parsed: Siblings<u8, u8> = serde_json::from_str(&stale).unwrap();
    assert_eq!(parsed.values().copied().collect::<Vec<_>>(), [8, 9]);
}

/// The settings serialize like every other config in the suite (serde under
/// the `serde` feature), and a deserialized one is still checked by
/// `validate` when a clock is built from it.
#[test]
fn configs_round_trip_through_serde() {
    let mut hlc = HlcConfig::default();
    hlc.max_offset = Duration::from_millis(250);
    let text = serde_json::to_string(&hlc).unwrap();
    assert_eq!(serde_json::from_str::<HlcConfig>(&text).unwrap(), hlc);

    let mut uncertainty = Uncertainty::default();
    uncertainty.base = Duration::from_micros(700);
    let text = serde_json::to_string(&uncertainty).unwrap();
    assert_eq!(
        serde_json::from_str::<Uncertainty>(&text).unwrap(),
        uncertainty
    );

    let too_wide: Uncertainty =
        serde_json::from_str(r#"{"base":{"secs":3601,"nanos":0},"drift_ppm":200}"#).unwrap();
    let pt = ManualClock::new(WallTime::from_millis(NOW_MS));
    assert!(matches!(
        IntervalClock::new(&pt, too_wide),
        Err(UncertaintyConfigError::BaseTooLarge { .. })
    ));
}
