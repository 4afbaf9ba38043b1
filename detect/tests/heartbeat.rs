//! Behaviour of the fixed-timeout heartbeat detector, the baseline that the
//! φ accrual paper (Hayashibara et al., SRDS 2004) compares against.

use std::time::{Duration, Instant};

use dsys_detect::HeartbeatDetector;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

#[test]
fn available_before_the_first_heartbeat() {
    let fd = HeartbeatDetector::new(ms(500));
    let now = Instant::now() + Duration::from_secs(3600);
    assert!(fd.is_available(now));
    assert_eq!(fd.poll_timeout(), None);
    assert_eq!(fd.last_heartbeat(), None);
    assert_eq!(fd.elapsed(now), None);
    assert_eq!(fd.timeout(), ms(500));
}

/// Available strictly before `last + timeout`, suspected from it on.
#[test]
fn suspected_from_the_deadline_on() {
    let mut fd = HeartbeatDetector::new(ms(500));
    let t0 = Instant::now();
    fd.heartbeat(t0);
    assert_eq!(fd.poll_timeout(), Some(t0 + ms(500)));
    assert!(fd.is_available(t0));
    assert!(fd.is_available(t0 + ms(499)));
    assert!(fd.is_available(t0 + ms(500) - Duration::from_nanos(1)));
    assert!(!fd.is_available(t0 + ms(500)));
    assert!(!fd.is_available(t0 + Duration::from_secs(3600)));
    assert_eq!(fd.elapsed(t0 + ms(123)), Some(ms(123)));
}

/// Each heartbeat pushes the deadline; a late heartbeat revives the peer.
#[test]
fn heartbeats_push_the_deadline() {
    let mut fd = HeartbeatDetector::new(ms(500));
    let t0 = Instant::now();
    let mut t = t0;
    for _ in 0..100 {
        fd.heartbeat(t);
        assert!(fd.is_available(t + ms(400)));
        t += ms(400);
    }
    assert_eq!(fd.poll_timeout(), Some(t - ms(400) + ms(500)));
    assert!(!fd.is_available(t + ms(100)));
    fd.heartbeat(t + ms(2000));
    assert!(fd.is_available(t + ms(2000)));
    assert_eq!(fd.poll_timeout(), Some(t + ms(2500)));
}

/// A heartbeat with a `now` earlier than the last one cannot pull the
/// deadline back; it is ignored and counted.
#[test]
fn out_of_order_heartbeat_is_ignored_and_counted() {
    let mut fd = HeartbeatDetector::new(ms(500));
    let t0 = Instant::now();
    fd.heartbeat(t0 + ms(1000));
    fd.heartbeat(t0 + ms(200));
    fd.heartbeat(t0);
    assert_eq!(fd.counters().ignored_heartbeats, 2);
    assert_eq!(fd.last_heartbeat(), Some(t0 + ms(1000)));
    assert_eq!(fd.poll_timeout(), Some(t0 + ms(1500)));
    // Same instant is not out of order.
    fd.heartbeat(t0 + ms(1000));
    assert_eq!(fd.counters().ignored_heartbeats, 2);
    // Elapsed before the last heartbeat is zero, not a panic.
    assert_eq!(fd.elapsed(t0), Some(Duration::ZERO));
}

/// The edge timeouts: zero suspects from the heartbeat's own instant, and
/// one past the representable range never expires.
#[test]
fn zero_and_unbounded_timeouts() {
    let t0 = Instant::now();
    let mut zero = HeartbeatDetector::new(Duration::ZERO);
    zero.heartbeat(t0);
    assert_eq!(zero.poll_timeout(), Some(t0));
    assert!(!zero.is_available(t0));

    let mut never = HeartbeatDetector::new(Duration::MAX);
    never.heartbeat(t0);
    assert_eq!(never.poll_timeout(), None);
    assert!(never.is_available(t0 + Duration::from_secs(10 * 365 * 86_400)));
}
