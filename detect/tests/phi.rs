//! Behaviour of the φ accrual detector (Hayashibara et al., "The φ Accrual
//! Failure Detector", SRDS 2004), in its two models: Akka's normal model
//! with the logistic approximation (`akka.remote.PhiAccrualFailureDetector`)
//! and Cassandra's exponential model (`org.apache.cassandra.gms.FailureDetector`).
//!
//! Expected values are computed here from the published formulas, written
//! out independently of the library (Akka's two-branch form, naive two-pass
//! statistics), and checked against reference numbers from Akka's
//! `AccrualFailureDetectorSpec` and against hand-computed values.

use std::f64::consts::{LN_10, LOG10_2, LOG10_E};
use std::time::{Duration, Instant};

use dsys_detect::{PhiAccrual, PhiConfig, PhiConfigError, PhiModel};
use proptest::prelude::*;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// Akka's `phi(timeDiff, mean, stdDeviation)`, verbatim: the logistic
/// approximation of the normal CDF, in its two branches.
fn akka_phi(time_diff: f64, mean: f64, std_dev: f64) -> f64 {
    let y = (time_diff - mean) / std_dev;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    if time_diff > mean {
        -(e / (1.0 + e)).log10()
    } else {
        -(1.0 - 1.0 / (1.0 + e)).log10()
    }
}

/// Cassandra's `PHI_FACTOR * t / mean` (`ArrivalWindow.phi` and
/// `FailureDetector.interpret`).
fn cassandra_phi(t: f64, mean: f64) -> f64 {
    (1.0 / 10f64.ln()) * t / mean
}

/// Mean and population standard deviation, two-pass, in nanoseconds.
fn naive_stats(samples: &[u64]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = samples
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap()
}

/// Akka's start-up samples for an estimate: `estimate ∓ estimate / 4`.
fn seeds(estimate: Duration) -> Vec<u64> {
    let e = nanos(estimate);
    vec![e - e / 4, e + e / 4]
}

/// Feeds a first heartbeat at `start` and then one after each interval;
/// returns the detector and the last heartbeat's instant.
fn feed(config: PhiConfig, start: Instant, intervals: &[Duration]) -> (PhiAccrual, Instant) {
    let mut fd = PhiAccrual::new(config).unwrap();
    let mut t = start;
    fd.heartbeat(t);
    for &i in intervals {
        t += i;
        fd.heartbeat(t);
    }
    (fd, t)
}

fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (±{tol})"
    );
}

/// A config whose window, after `feed(.., &[900 ms, 1100 ms])`, holds
/// exactly 900 ms and 1100 ms: mean 1000 ms, standard deviation 100 ms,
/// the parameters of Akka's spec tables.
fn mean_1000_sd_100() -> (PhiAccrual, Instant) {
    let config = {
        let mut c = PhiConfig::default();
        c.max_sample_size = 2;
        c.acceptable_heartbeat_pause = Duration::ZERO;
        c.min_std_deviation = ms(1);
        c
    };
    let (fd, last) = feed(config, Instant::now(), &[ms(900), ms(1100)]);
    assert_eq!(fd.samples().collect::<Vec<_>>(), vec![ms(900), ms(1100)]);
    assert_eq!(fd.mean(), ms(1000));
    assert_eq!(fd.std_deviation(), ms(100));
    (fd, last)
}

#[test]
fn default_config_is_akkas() {
    let c = PhiConfig::default();
    assert_eq!(c.threshold, 8.0);
    assert_eq!(c.max_sample_size, 1000);
    assert_eq!(c.min_std_deviation, ms(100));
    assert_eq!(c.acceptable_heartbeat_pause, ms(3000));
    assert_eq!(c.first_heartbeat_estimate, ms(1000));
    assert_eq!(c.model, PhiModel::Normal);
    assert_eq!(c.validate(), Ok(()));
}

/// Akka: "treat unmanaged connections, e.g. with zero heartbeats, as
/// healthy connections".
#[test]
fn phi_is_zero_before_the_first_heartbeat() {
    for model in [PhiModel::Normal, PhiModel::Exponential] {
        let fd = PhiAccrual::new({
            let mut c = PhiConfig::default();
            c.model = model;
            c
        })
        .unwrap();
        let now = Instant::now() + Duration::from_secs(3600);
        assert_eq!(fd.phi(now), 0.0);
        assert!(fd.is_available(now));
        assert_eq!(fd.last_heartbeat(), None);
    }
}

/// Akka's `firstHeartbeat`: the window starts as estimate ∓ estimate/4, so
/// a peer with a single heartbeat gets φ from the guess (Akka spec: "return
/// phi based on guess when only one heartbeat", 0.3 ± 0.2 at one
/// estimate).
#[test]
fn first_heartbeat_seeds_the_window_from_the_estimate() {
    let config = {
        let mut c = PhiConfig::default();
        c.acceptable_heartbeat_pause = Duration::ZERO;
        c.first_heartbeat_estimate = ms(1000);
        c
    };
    let (fd, t) = feed(config, Instant::now(), &[]);
    assert_eq!(fd.samples().collect::<Vec<_>>(), vec![ms(750), ms(1250)]);
    assert_eq!(fd.mean(), ms(1000));
    assert_eq!(fd.std_deviation(), ms(250));
    assert_eq!(fd.last_heartbeat(), Some(t));
    // At the mean, 1 − F = 1/2 exactly: φ = log10 2 = 0.30103.
    assert_close(fd.phi(t + ms(1000)), LOG10_2, 1e-12, "φ at the estimate");
    // One heartbeat, then silence: unavailable after enough time.
    assert!(!fd.is_available(t + ms(10_000)));
}

/// Akka's `max-sample-size = 1` keeps only the later seed,
/// estimate + estimate/4 (`HeartbeatHistory :+` evicts the first).
#[test]
fn window_of_one_keeps_the_larger_seed() {
    let fd = PhiAccrual::new({
        let mut c = PhiConfig::default();
        c.max_sample_size = 1;
        c
    })
    .unwrap();
    assert_eq!(fd.samples().collect::<Vec<_>>(), vec![ms(1250)]);
    assert_eq!(fd.std_deviation(), Duration::ZERO);
}

/// Akka's `AccrualFailureDetectorSpec`, "return realistic phi values":
/// mean 1000 ms, standard deviation 100 ms, φ within 0.1 of the table.
#[test]
fn akka_spec_realistic_phi_values() {
    let (fd, last) = mean_1000_sd_100();
    for (diff, want) in [
        (0, 0.0),
        (500, 0.1),
        (1000, 0.3),
        (1200, 1.6),
        (1400, 4.7),
        (1600, 10.8),
        (1700, 15.3),
    ] {
        assert_close(
            fd.phi(last + ms(diff)),
            want,
            0.1,
            &format!("φ at {diff} ms"),
        );
    }
    // "handle outliers without losing precision": 10 σ past the mean is
    // 38 ± 1, and far before the mean φ is 0.
    assert_close(fd.phi(last + ms(2000)), 38.0, 1.0, "φ at 10 σ");
}

/// Akka's spec, "use good enough cumulative distribution function": the
/// CDF implied by φ, 1 − 10^−φ, against the normal CDF Φ(y).
#[test]
fn implied_cdf_is_close_to_the_normal_cdf() {
    let (fd, last) = mean_1000_sd_100();
    for (diff, normal_cdf, tol) in [
        (1000, 0.5, 0.001),      // Φ(0)
        (1060, 0.7257, 0.001),   // Φ(0.6)
        (1150, 0.9332, 0.001),   // Φ(1.5)
        (1200, 0.97725, 0.001),  // Φ(2)
        (1250, 0.99379, 0.001),  // Φ(2.5)
        (1350, 0.99977, 0.001),  // Φ(3.5)
        (1400, 0.99997, 0.0001), // Φ(4)
    ] {
        let cdf = 1.0 - 10f64.powf(-fd.phi(last + ms(diff)));
        assert_close(cdf, normal_cdf, tol, &format!("CDF at {diff} ms"));
    }
}

/// A gap of k standard deviations past `mean + pause` gives Akka's φ for
/// y = k, with mean and standard deviation recomputed here from the
/// heartbeats (seeds included).
#[test]
fn normal_phi_matches_akkas_formula_at_k_standard_deviations() {
    let intervals: Vec<Duration> = [980u64, 1010, 1190, 870, 1040, 1330, 760, 1005, 1120, 950]
        .iter()
        .map(|&x| ms(x))
        .collect();
    let pause = ms(500);
    let config = {
        let mut c = PhiConfig::default();
        c.acceptable_heartbeat_pause = pause;
        c.min_std_deviation = ms(10);
        c
    };
    let (fd, last) = feed(config.clone(), Instant::now(), &intervals);

    let mut window = seeds(config.first_heartbeat_estimate);
    window.extend(intervals.iter().map(|&d| nanos(d)));
    let (mean, sd) = naive_stats(&window);
    assert!(sd > 10e6, "the clamp must not be active in this test");
    let mean_with_pause = mean + nanos(pause) as f64;
    assert_eq!(fd.samples().count(), window.len());

    for k in [
        -4.0, -2.5, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0,
    ] {
        let gap = mean_with_pause + k * sd;
        let now = last + Duration::from_nanos(gap.round() as u64);
        let want = akka_phi(gap.round(), mean_with_pause, sd);
        let got = fd.phi(now);
        assert_close(got, want, 1e-9 * want.max(1.0), &format!("φ at {k} σ"));
    }
}

/// Where Akka's `e` underflows (y ≳ 10, φ = +∞ there), φ stays finite,
/// keeps growing, and follows the asymptote z / ln 10 with
/// z = y (1.5976 + 0.070566 y²).
#[test]
fn normal_phi_stays_finite_far_past_the_mean() {
    let (fd, last) = mean_1000_sd_100();
    let y: f64 = 40.0; // 1000 ms + 40 · 100 ms
    assert!(akka_phi(5000.0, 1000.0, 100.0).is_infinite());
    let got = fd.phi(last + ms(5000));
    let z = y * (1.5976 + 0.070566 * y * y);
    assert!(got.is_finite());
    assert_close(got, z / LN_10, 1e-9 * got, "asymptote");
    assert!(fd.phi(last + ms(5100)) > got);
    assert!(fd.phi(last + Duration::from_secs(1_000_000)).is_finite());
}

/// Cassandra: φ = PHI_FACTOR · t / mean. Hand-computed: one mean of
/// silence is 1 / ln 10 = 0.434294…, and φ reaches the threshold 8 after
/// 8 · ln 10 = 18.42 means.
#[test]
fn exponential_phi_matches_cassandras_formula() {
    let intervals: Vec<Duration> = [1000u64, 1000, 1000, 1000].iter().map(|&x| ms(x)).collect();
    let config = {
        let mut c = PhiConfig::default();
        c.model = PhiModel::Exponential;
        c
    };
    // Seeds 750 + 1250 and four 1000s: mean exactly 1 s.
    let (fd, last) = feed(config, Instant::now(), &intervals);
    assert_eq!(fd.mean(), ms(1000));
    // 1 / ln 10 = log10 e = 0.434294…
    assert_close(fd.phi(last + ms(1000)), LOG10_E, 1e-12, "φ at the mean");
    assert_close(
        fd.phi(last + ms(2500)),
        2.5 * LOG10_E,
        1e-12,
        "φ at 2.5 means",
    );
    assert!(fd.is_available(last + ms(18_400)));
    assert!(!fd.is_available(last + ms(18_500)));
    assert_eq!(fd.phi(last), 0.0);

    // Irregular intervals, against the formula with a naive mean.
    let intervals: Vec<Duration> = [120u64, 80, 95, 130, 101, 99, 140, 60]
        .iter()
        .map(|&x| ms(x))
        .collect();
    let config = {
        let mut c = PhiConfig::default();
        c.model = PhiModel::Exponential;
        c.first_heartbeat_estimate = ms(100);
        c
    };
    let (fd, last) = feed(config.clone(), Instant::now(), &intervals);
    let mut window = seeds(config.first_heartbeat_estimate);
    window.extend(intervals.iter().map(|&d| nanos(d)));
    let (mean, _) = naive_stats(&window);
    for gap_ms in [1u64, 50, 100, 333, 1000, 1842, 5000] {
        let want = cassandra_phi(nanos(ms(gap_ms)) as f64, mean);
        assert_close(
            fd.phi(last + ms(gap_ms)),
            want,
            1e-12 * want.max(1.0),
            &format!("φ at {gap_ms} ms"),
        );
    }
}

/// The exponential model has no grace period and no minimum standard
/// deviation (Cassandra has neither): those fields do not change φ.
#[test]
fn exponential_model_ignores_pause_and_min_std_deviation() {
    let intervals: Vec<Duration> = [100u64, 100, 100, 100].iter().map(|&x| ms(x)).collect();
    let start = Instant::now();
    let base = {
        let mut c = PhiConfig::default();
        c.model = PhiModel::Exponential;
        c
    };
    let (a, last) = feed(base.clone(), start, &intervals);
    let (b, _) = feed(
        {
            let mut c = base;
            c.acceptable_heartbeat_pause = Duration::from_secs(60);
            c.min_std_deviation = Duration::from_secs(10);
            c
        },
        start,
        &intervals,
    );
    for gap in [0u64, 100, 1000, 5000] {
        assert_eq!(a.phi(last + ms(gap)), b.phi(last + ms(gap)));
    }
    // The normal model, by contrast, is shifted by the pause.
    let (c, _) = feed(PhiConfig::default(), start, &intervals);
    let (d, _) = feed(
        {
            let mut c = PhiConfig::default();
            c.acceptable_heartbeat_pause = Duration::ZERO;
            c
        },
        start,
        &intervals,
    );
    assert!(c.phi(last + ms(1000)) < d.phi(last + ms(1000)));
}

/// Regular heartbeats (100 ms ± 5 ms) keep φ low just before each
/// heartbeat, in both models, even without an acceptable pause.
#[test]
fn regular_heartbeats_keep_phi_low() {
    for model in [PhiModel::Normal, PhiModel::Exponential] {
        let mut fd = PhiAccrual::new({
            let mut c = PhiConfig::default();
            c.model = model;
            c.acceptable_heartbeat_pause = Duration::ZERO;
            c.first_heartbeat_estimate = ms(100);
            c
        })
        .unwrap();
        let mut t = Instant::now();
        fd.heartbeat(t);
        let mut max_phi: f64 = 0.0;
        for i in 0..3000u64 {
            t += ms(95 + (i * 7) % 11); // 95..=105 ms
            max_phi = max_phi.max(fd.phi(t));
            assert!(fd.is_available(t));
            fd.heartbeat(t);
        }
        assert!(max_phi < 1.0, "{model:?}: max φ {max_phi}");
        // And it rises past the threshold after a long enough silence.
        assert!(!fd.is_available(t + Duration::from_secs(5)), "{model:?}");
    }
}

/// Akka's `ensureValidStdDeviation`: identical intervals have σ = 0, and φ
/// is computed with `min_std_deviation` instead.
#[test]
fn min_std_deviation_clamps_the_normal_model() {
    let intervals = vec![ms(1000); 20];
    let make = |min_sd: Duration| {
        feed(
            {
                let mut c = PhiConfig::default();
                c.max_sample_size = 10; // the seeds are evicted: all samples are 1000 ms
                c.acceptable_heartbeat_pause = Duration::ZERO;
                c.min_std_deviation = min_sd;
                c
            },
            Instant::now(),
            &intervals,
        )
    };
    let (fd, last) = make(ms(100));
    assert_eq!(fd.std_deviation(), Duration::ZERO);
    assert_eq!(fd.mean(), ms(1000));
    // 1 "σ" of 100 ms past the mean: Akka's φ for y = 1.
    assert_close(
        fd.phi(last + ms(1100)),
        akka_phi(1.0, 0.0, 1.0),
        1e-12,
        "y = 1 with σ clamped to 100 ms",
    );
    assert_close(
        fd.phi(last + ms(1300)),
        akka_phi(3.0, 0.0, 1.0),
        1e-12,
        "y = 3 with σ clamped to 100 ms",
    );
    // A larger minimum flattens the curve.
    let (wide, last_w) = make(ms(300));
    assert_close(
        wide.phi(last_w + ms(1300)),
        akka_phi(1.0, 0.0, 1.0),
        1e-12,
        "y = 1 with σ clamped to 300 ms",
    );
    assert!(wide.phi(last_w + ms(1300)) < fd.phi(last + ms(1300)));
}

/// `acceptable_heartbeat_pause` is added to the mean (Akka): the φ curve
/// moves right by exactly the pause.
#[test]
fn acceptable_pause_shifts_the_curve() {
    let intervals: Vec<Duration> = [1000u64, 900, 1100, 1050, 950]
        .iter()
        .map(|&x| ms(x))
        .collect();
    let start = Instant::now();
    let config = |pause| {
        let mut c = PhiConfig::default();
        c.acceptable_heartbeat_pause = pause;
        c
    };
    let (none, last) = feed(config(Duration::ZERO), start, &intervals);
    let pause = ms(2500);
    let (paused, _) = feed(config(pause), start, &intervals);
    for gap in [0u64, 500, 1000, 1200, 1500, 2000, 3000] {
        let want = none.phi(last + ms(gap));
        let got = paused.phi(last + ms(gap) + pause);
        assert_close(got, want, 1e-9 * want.max(1.0), &format!("gap {gap} ms"));
    }
    // And the pause delays the verdict.
    assert!(!none.is_available(last + ms(3000)));
    assert!(paused.is_available(last + ms(3000)));
}

/// After `max_sample_size + N` intervals the window holds only the last
/// `max_sample_size` of them, and the statistics describe only those.
#[test]
fn window_is_bounded_by_max_sample_size() {
    let config = {
        let mut c = PhiConfig::default();
        c.max_sample_size = 10;
        c.acceptable_heartbeat_pause = Duration::from_secs(3600);
        c
    };
    // 35 intervals: 1 ms, 2 ms, ..., 35 ms.
    let intervals: Vec<Duration> = (1..=35).map(ms).collect();
    let (fd, _) = feed(config, Instant::now(), &intervals);
    let got: Vec<Duration> = fd.samples().collect();
    assert_eq!(got, (26..=35).map(ms).collect::<Vec<_>>());
    // Mean of 26..=35 ms is 30.5 ms; population σ is sqrt(8.25) ms.
    assert_eq!(fd.mean(), Duration::from_micros(30_500));
    assert_eq!(
        fd.std_deviation(),
        Duration::from_nanos((8.25f64.sqrt() * 1e6).round() as u64)
    );
}

/// Intervals longer than `PhiAccrual::MAX_SAMPLE` are recorded as that,
/// and a full window of them does not overflow the exact sums.
#[test]
fn huge_intervals_are_capped_and_do_not_overflow() {
    let config = {
        let mut c = PhiConfig::default();
        c.max_sample_size = 50;
        // Never unavailable, so every interval is recorded.
        c.threshold = f64::MAX;
        c
    };
    let intervals = vec![Duration::from_secs(200 * 86_400); 60];
    let (fd, last) = feed(config, Instant::now(), &intervals);
    assert_eq!(fd.samples().count(), 50);
    assert!(fd.samples().all(|s| s == PhiAccrual::MAX_SAMPLE));
    assert_eq!(fd.mean(), PhiAccrual::MAX_SAMPLE);
    assert_eq!(fd.std_deviation(), Duration::ZERO);
    assert!(fd.phi(last + Duration::from_secs(1)).is_finite());
}

/// With a window of 2^52..2^53 ns samples longer than ~2730, Σx no longer fits
/// in 64 bits and the statistics take their 128-bit path; they still match
/// a naive recomputation, before, while and after the sums cross over.
#[test]
fn statistics_stay_exact_when_the_sums_leave_64_bits() {
    let window = 3000;
    let config = {
        let mut c = PhiConfig::default();
        c.max_sample_size = window;
        // Never unavailable, so every interval is recorded.
        c.threshold = f64::MAX;
        c
    };
    let mut fd = PhiAccrual::new(config.clone()).unwrap();
    let mut expected = seeds(config.first_heartbeat_estimate);
    let mut t = Instant::now();
    fd.heartbeat(t);
    // Seeded LCG: samples in [2^52, 2^53].
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..3400 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let x = (1u64 << 52) + (state >> 12);
        t += Duration::from_nanos(x);
        fd.heartbeat(t);
        expected.push(x);
        if expected.len() > window {
            expected.remove(0);
        }
        if i % 25 == 0 || (2700..2760).contains(&i) {
            let (mean, sd) = naive_stats(&expected);
            let tol = 1e-9 * mean;
            assert_close(
                nanos(fd.mean()) as f64,
                mean,
                tol,
                &format!("mean after {i}"),
            );
            assert_close(
                nanos(fd.std_deviation()) as f64,
                sd,
                tol,
                &format!("σ after {i}"),
            );
        }
    }
    let sum: u128 = expected.iter().map(|&x| u128::from(x)).sum();
    assert!(
        sum > u128::from(u64::MAX),
        "the test must reach the 128-bit path"
    );
}

/// Akka's `heartbeat()`: "don't use the first heartbeat after failure for
/// the history, since a long pause will skew the stats". The arrival still
/// becomes the reference for φ.
#[test]
fn heartbeat_after_failure_is_not_recorded() {
    for model in [PhiModel::Normal, PhiModel::Exponential] {
        let config = {
            let mut c = PhiConfig::default();
            c.model = model;
            c.acceptable_heartbeat_pause = Duration::ZERO;
            c
        };
        let (mut fd, last) = feed(config, Instant::now(), &[ms(1000), ms(1000)]);
        let before: Vec<Duration> = fd.samples().collect();
        let late = last + Duration::from_secs(60);
        assert!(!fd.is_available(late), "{model:?}");
        fd.heartbeat(late);
        assert_eq!(fd.samples().collect::<Vec<_>>(), before, "{model:?}");
        assert_eq!(fd.last_heartbeat(), Some(late));
        assert!(fd.is_available(late + ms(100)), "{model:?}");
        // The next, regular, interval is recorded again.
        fd.heartbeat(late + ms(1000));
        assert_eq!(fd.samples().count(), before.len() + 1, "{model:?}");
        assert_eq!(fd.samples().last(), Some(ms(1000)));
    }
}

/// A heartbeat whose `now` is earlier than the last one (events fed out of
/// order) is ignored and counted; it changes nothing else.
#[test]
fn out_of_order_heartbeat_is_ignored_and_counted() {
    let (mut fd, last) = feed(PhiConfig::default(), Instant::now(), &[ms(1000), ms(1000)]);
    let samples: Vec<Duration> = fd.samples().collect();
    let probe = last + ms(2500);
    let phi = fd.phi(probe);
    fd.heartbeat(last - ms(1));
    fd.heartbeat(last - ms(500));
    assert_eq!(fd.counters().ignored_heartbeats, 2);
    assert_eq!(fd.last_heartbeat(), Some(last));
    assert_eq!(fd.samples().collect::<Vec<_>>(), samples);
    assert_eq!(fd.phi(probe), phi);
    // A heartbeat at the same instant is not out of order: a zero interval.
    fd.heartbeat(last);
    assert_eq!(fd.counters().ignored_heartbeats, 2);
    assert_eq!(fd.samples().last(), Some(Duration::ZERO));
    // Asking for φ before the last heartbeat counts as no time elapsed.
    assert_eq!(fd.phi(last - ms(100)), fd.phi(last));
}

/// `is_available(now)` is exactly `phi(now) < threshold` (Akka's
/// `isAvailable`), also in the nanoseconds around the crossing, for small,
/// usual and very large thresholds, in both models.
#[test]
fn is_available_is_phi_below_threshold_at_the_crossing() {
    for model in [PhiModel::Normal, PhiModel::Exponential] {
        for threshold in [1e-6, 0.1, 0.301, 1.0, 8.0, 16.0, 100.0, 300.0, 1e5] {
            let config = {
                let mut c = PhiConfig::default();
                c.threshold = threshold;
                c.model = model;
                c.acceptable_heartbeat_pause = ms(200);
                c
            };
            let (fd, last) = feed(config, Instant::now(), &[ms(1000), ms(950), ms(1100)]);
            let at = |gap_ns: u64| last + Duration::from_nanos(gap_ns);
            assert!(fd.phi(at(0)) < threshold, "{model:?} {threshold}");
            // The first nanosecond at which φ reaches the threshold.
            let (mut lo, mut hi) = (0u64, 1u64 << 50);
            assert!(fd.phi(at(hi)) >= threshold, "{model:?} {threshold}");
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if fd.phi(at(mid)) >= threshold {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            assert!(
                fd.is_available(at(lo)),
                "{model:?} {threshold}: just before"
            );
            assert!(
                !fd.is_available(at(hi)),
                "{model:?} {threshold}: at the crossing"
            );
            for gap in hi - 1000..hi + 1000 {
                let now = at(gap);
                assert_eq!(
                    fd.is_available(now),
                    fd.phi(now) < threshold,
                    "{model:?} threshold {threshold} gap {gap} ns"
                );
            }
        }
    }
}

#[test]
fn invalid_configs_are_rejected() {
    let d = PhiConfig::default;
    let cases: Vec<(PhiConfig, PhiConfigError)> = vec![
        (
            {
                let mut c = d();
                c.threshold = 0.0;
                c
            },
            PhiConfigError::Threshold(0.0),
        ),
        (
            {
                let mut c = d();
                c.threshold = -1.0;
                c
            },
            PhiConfigError::Threshold(-1.0),
        ),
        (
            {
                let mut c = d();
                c.threshold = f64::INFINITY;
                c
            },
            PhiConfigError::Threshold(f64::INFINITY),
        ),
        (
            {
                let mut c = d();
                c.max_sample_size = 0;
                c
            },
            PhiConfigError::MaxSampleSize {
                got: 0,
                max: PhiConfig::MAX_SAMPLE_SIZE,
            },
        ),
        (
            {
                let mut c = d();
                c.max_sample_size = PhiConfig::MAX_SAMPLE_SIZE + 1;
                c
            },
            PhiConfigError::MaxSampleSize {
                got: PhiConfig::MAX_SAMPLE_SIZE + 1,
                max: PhiConfig::MAX_SAMPLE_SIZE,
            },
        ),
        (
            {
                let mut c = d();
                c.min_std_deviation = Duration::ZERO;
                c
            },
            PhiConfigError::MinStdDeviation,
        ),
        (
            {
                let mut c = d();
                c.first_heartbeat_estimate = Duration::ZERO;
                c
            },
            PhiConfigError::FirstHeartbeatEstimate,
        ),
        (
            {
                let mut c = d();
                c.min_std_deviation = PhiConfig::MAX_DURATION + Duration::from_nanos(1);
                c
            },
            PhiConfigError::TooLong {
                field: "min_std_deviation",
                got: PhiConfig::MAX_DURATION + Duration::from_nanos(1),
                max: PhiConfig::MAX_DURATION,
            },
        ),
        (
            {
                let mut c = d();
                c.acceptable_heartbeat_pause = PhiConfig::MAX_DURATION + Duration::from_nanos(1);
                c
            },
            PhiConfigError::TooLong {
                field: "acceptable_heartbeat_pause",
                got: PhiConfig::MAX_DURATION + Duration::from_nanos(1),
                max: PhiConfig::MAX_DURATION,
            },
        ),
        (
            {
                let mut c = d();
                c.first_heartbeat_estimate = PhiConfig::MAX_DURATION + Duration::from_nanos(1);
                c
            },
            PhiConfigError::TooLong {
                field: "first_heartbeat_estimate",
                got: PhiConfig::MAX_DURATION + Duration::from_nanos(1),
                max: PhiConfig::MAX_DURATION,
            },
        ),
    ];
    for (config, want) in cases {
        assert_eq!(config.validate(), Err(want.clone()), "{config:?}");
        assert_eq!(PhiAccrual::new(config).unwrap_err(), want);
        let msg = want.to_string();
        assert!(msg.starts_with(|c: char| c.is_lowercase()), "{msg}");
    }
    // NaN is not equal to itself: match the variant instead.
    let nan = {
        let mut c = d();
        c.threshold = f64::NAN;
        c
    };
    assert!(matches!(nan.validate(), Err(PhiConfigError::Threshold(x)) if x.is_nan()));

    // The limits themselves are valid.
    for ok in [
        {
            let mut c = d();
            c.min_std_deviation = PhiConfig::MAX_DURATION;
            c.acceptable_heartbeat_pause = PhiConfig::MAX_DURATION;
            c.first_heartbeat_estimate = PhiConfig::MAX_DURATION;
            c
        },
        {
            let mut c = d();
            c.max_sample_size = 1;
            c
        },
        {
            let mut c = d();
            c.max_sample_size = PhiConfig::MAX_SAMPLE_SIZE;
            c
        },
        {
            let mut c = d();
            c.acceptable_heartbeat_pause = Duration::ZERO;
            c
        },
        {
            let mut c = d();
            c.min_std_deviation = Duration::from_nanos(1);
            c
        },
        {
            let mut c = d();
            c.first_heartbeat_estimate = Duration::from_nanos(1);
            c
        },
        {
            let mut c = d();
            c.threshold = f64::MIN_POSITIVE;
            c
        },
    ] {
        assert_eq!(ok.validate(), Ok(()), "{ok:?}");
        assert!(PhiAccrual::new(ok).is_ok());
    }
}

fn model_strategy() -> impl Strategy<Value = PhiModel> {
    prop_oneof![Just(PhiModel::Normal), Just(PhiModel::Exponential)]
}

proptest! {
    /// The O(1) running mean and standard deviation equal a naive two-pass
    /// recomputation over the expected window (seeds, then the intervals,
    /// last `max_sample_size` kept) after every heartbeat: nothing drifts
    /// over many evictions.
    #[test]
    fn running_stats_match_naive_recomputation(
        max_sample_size in 1usize..40,
        estimate_ms in 1u64..5_000,
        intervals_ns in prop::collection::vec(
            prop_oneof![
                1u64..2_000,                     // sub-microsecond jitter (non-zero: a zero
                                                 // mean would make the exponential φ infinite)
                90_000_000u64..110_000_000,      // around 100 ms
                0u64..30_000_000_000,            // up to 30 s
            ],
            0..300,
        ),
        model in model_strategy(),
    ) {
        let config = {
            let mut c = PhiConfig::default();
            c.max_sample_size = max_sample_size;
            c.first_heartbeat_estimate = ms(estimate_ms);
            // Large enough that every interval is recorded (φ stays near 0).
            c.acceptable_heartbeat_pause = PhiConfig::MAX_DURATION;
            // Exponential has no pause: a large threshold plays its part.
            c.threshold = 1e12;
            c.model = model;
            c
        };
        let mut fd = PhiAccrual::new(config.clone()).unwrap();
        let mut expected = seeds(config.first_heartbeat_estimate);
        let keep = |w: &mut Vec<u64>| {
            let excess = w.len().saturating_sub(max_sample_size);
            w.drain(..excess);
        };
        keep(&mut expected);
        let mut t = Instant::now();
        fd.heartbeat(t);
        for &i in &intervals_ns {
            t += Duration::from_nanos(i);
            fd.heartbeat(t);
            expected.push(i);
            keep(&mut expected);

            let got: Vec<u64> = fd.samples().map(nanos).collect();
            prop_assert_eq!(&got, &expected);
            let (mean, sd) = naive_stats(&expected);
            let tol = 1.0 + 1e-9 * mean;
            prop_assert!((nanos(fd.mean()) as f64 - mean).abs() <= tol,
                "mean {:?} vs naive {} ns", fd.mean(), mean);
            prop_assert!((nanos(fd.std_deviation()) as f64 - sd).abs() <= tol,
                "σ {:?} vs naive {} ns", fd.std_deviation(), sd);
        }
    }

    /// φ never decreases as the silence grows, in both models, and it never
    /// is NaN or negative.
    #[test]
    fn phi_is_monotonic_in_the_gap(
        intervals_ms in prop::collection::vec(1u64..3_000, 0..50),
        mut gaps_ms in prop::collection::vec(0u64..600_000, 2..40),
        pause_ms in 0u64..5_000,
        model in model_strategy(),
    ) {
        let config = { let mut c = PhiConfig::default(); c.acceptable_heartbeat_pause = ms(pause_ms); c.model = model; c };
        let intervals: Vec<Duration> = intervals_ms.iter().map(|&x| ms(x)).collect();
        let (fd, last) = feed(config, Instant::now(), &intervals);
        gaps_ms.sort_unstable();
        let mut prev = 0.0f64;
        for &g in &gaps_ms {
            let phi = fd.phi(last + ms(g));
            prop_assert!(phi >= 0.0 && !phi.is_nan(), "φ {} at {} ms", phi, g);
            prop_assert!(phi >= prev, "φ fell from {} to {} at {} ms", prev, phi, g);
            prev = phi;
        }
    }
}
