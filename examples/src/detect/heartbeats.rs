//! The heartbeat machinery of sections 1 and 2: a seeded jitter, the histories
//! a peer sends, the three detectors fed the same heartbeats, and the replay
//! that turns a history into the numbers the story prints.

use std::time::{Duration, Instant};

use dsys_detect::{HeartbeatDetector, PhiAccrual, PhiConfig, PhiModel};

use super::{HEARTBEATS, INTERVAL, THRESHOLD, TIGHT_TIMEOUT, TIMEOUT};
use crate::report::Res;

/// SplitMix64: a tiny seeded generator for the heartbeat jitter.
pub(super) struct Jitter(u64);

impl Jitter {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce5_e9b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `-spread..=spread`, whole milliseconds.
    pub(super) fn offset_ms(&mut self, spread: Duration) -> i64 {
        let spread = spread.as_millis() as i64;
        (self.next() % (2 * spread as u64 + 1)) as i64 - spread
    }
}

/// A heartbeat history: arrival offsets from time zero.
pub(super) struct History {
    pub(super) name: &'static str,
    pub(super) arrivals: Vec<Duration>,
}

impl History {
    /// `HEARTBEATS` arrivals, `INTERVAL` apart plus or minus up to `jitter`.
    pub(super) fn new(name: &'static str, jitter: Duration, seed: u64) -> Self {
        let mut rng = Jitter(seed);
        let mut at = Duration::ZERO;
        let mut arrivals = Vec::with_capacity(HEARTBEATS);
        for _ in 0..HEARTBEATS {
            arrivals.push(at);
            let ms = INTERVAL.as_millis() as i64 + rng.offset_ms(jitter);
            at += Duration::from_millis(ms as u64);
        }
        Self { name, arrivals }
    }

    /// The history of sections 1 and 2: a steady network.
    pub(super) fn steady() -> Self {
        Self::new("steady (1 s +- 100 ms)", Duration::from_millis(100), 2)
    }

    pub(super) fn last(&self) -> Duration {
        self.arrivals.last().copied().unwrap_or_default()
    }
}

/// The three detectors, fed the same heartbeats.
pub(super) struct Detectors {
    pub(super) akka: PhiAccrual,
    pub(super) cassandra: PhiAccrual,
    pub(super) timeout: HeartbeatDetector,
}

impl Detectors {
    pub(super) fn new() -> Res<Self> {
        Ok(Self {
            // Akka's defaults: normal model, 3 s acceptable pause, 100 ms minimum
            // standard deviation, threshold 8.
            akka: PhiAccrual::new(PhiConfig::default())?,
            cassandra: PhiAccrual::new({
                let mut config = PhiConfig::default();
                config.model = PhiModel::Exponential;
                config
            })?,
            timeout: HeartbeatDetector::new(TIMEOUT),
        })
    }

    pub(super) fn heartbeat(&mut self, now: Instant) {
        self.akka.heartbeat(now);
        self.cassandra.heartbeat(now);
        self.timeout.heartbeat(now);
    }

    /// The detectors after the whole history.
    pub(super) fn after(history: &History, base: Instant) -> Res<Self> {
        let mut detectors = Self::new()?;
        for &at in &history.arrivals {
            detectors.heartbeat(base + at);
        }
        Ok(detectors)
    }
}

/// The first silence (1 ms steps, up to a minute) at which `phi` reaches `level`.
pub(super) fn crossing(fd: &PhiAccrual, last: Instant, level: f64) -> Option<Duration> {
    (0..=60_000u64)
        .map(Duration::from_millis)
        .find(|&silence| fd.phi(last + silence) >= level)
}

/// What the detectors make of one history.
pub(super) struct Verdict {
    pub(super) mean: Duration,
    pub(super) std_deviation: Duration,
    pub(super) phi_at_4_5: f64,
    pub(super) phi_at_5: f64,
    pub(super) akka_gives_up: Duration,
    pub(super) cassandra_gives_up: Duration,
    pub(super) timeout_fires: Duration,
    /// Heartbeats that arrived after Akka's phi had reached the threshold.
    pub(super) phi_false_alarms: usize,
    /// Heartbeats that arrived after the tight timeout had expired.
    pub(super) tight_false_alarms: usize,
}

impl Verdict {
    pub(super) fn of(history: &History, base: Instant) -> Res<Self> {
        // Replay the history, asking before each heartbeat whether the
        // detector had already called the (still healthy) peer down.
        let mut detectors = Detectors::new()?;
        let mut tight = HeartbeatDetector::new(TIGHT_TIMEOUT);
        let (mut phi_false_alarms, mut tight_false_alarms) = (0, 0);
        for &at in &history.arrivals {
            let now = base + at;
            phi_false_alarms += usize::from(!detectors.akka.is_available(now));
            tight_false_alarms += usize::from(!tight.is_available(now));
            detectors.heartbeat(now);
            tight.heartbeat(now);
        }
        let last = base + history.last();
        let akka = &detectors.akka;
        Ok(Self {
            mean: akka.mean(),
            std_deviation: akka.std_deviation(),
            phi_at_4_5: akka.phi(last + Duration::from_millis(4500)),
            phi_at_5: akka.phi(last + Duration::from_secs(5)),
            akka_gives_up: crossing(akka, last, THRESHOLD).ok_or("Akka gives up")?,
            cassandra_gives_up: crossing(&detectors.cassandra, last, THRESHOLD)
                .ok_or("Cassandra gives up")?,
            timeout_fires: detectors.timeout.poll_timeout().ok_or("timeout deadline")? - last,
            phi_false_alarms,
            tight_false_alarms,
        })
    }
}
