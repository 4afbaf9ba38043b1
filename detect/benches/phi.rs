//! dsys-detect's `PhiAccrual` against the crates.io `phi-accrual` 0.1 crate
//! (`PhiFailureDetector`), on the same heartbeats, in the same run.
//!
//! Workload: heartbeats every 100 ms with a seeded uniform jitter of
//! ±10 ms (the same sequence for both crates: `std::time::Instant` base +
//! `Duration` offsets for dsys, the same offsets as `u64` milliseconds for
//! phi-accrual). Window sizes 10 (phi-accrual's default `history_size`) and
//! 1000 (Akka's and Cassandra's `max-sample-size`); both detectors use a
//! 100 ms minimum standard deviation; dsys runs its normal model (the one
//! phi-accrual implements) with no acceptable pause.
//!
//! Groups (criterion time per iteration):
//! - `phi/heartbeat/<window>`: recording one heartbeat into a detector whose
//!   window is already full (the steady state: one sample in, one out). The
//!   heartbeat times are precomputed for both crates; a fresh, warmed
//!   detector is built outside the timed region whenever they run out.
//!   dsys updates its O(1) running statistics here (and, as Akka does,
//!   evaluates φ to decide whether to record the interval); phi-accrual
//!   only stores the timestamp and leaves all the work to `phi`.
//! - `phi/phi/<window>`: computing φ at one of 64 instants 0-2 s after the
//!   last heartbeat, on a detector with a full window. dsys: O(1) from the
//!   cached mean and deviation; phi-accrual: O(window) (it recomputes the
//!   variance over its history on every call).
//! - `phi/heartbeat+phi/<window>`: one heartbeat followed by one φ query
//!   25 ms later, as a monitor that checks each peer once per heartbeat
//!   does; same steady state and precomputed times as the heartbeat group.
//!   This is the per-heartbeat total, whichever side of the call the work
//!   sits on.
//!
//! The comparison is of cost only: phi-accrual 0.1 computes its "mean" as
//! `count / (last − first)`, a rate rather than an interval, so its φ values
//! do not match the formula; the work it does per call is still a full pass
//! over the window.
//!
//! Ratios (peer time / dsys time, above 1 means dsys is faster):
//! `python3 .ci/bench-ratios --peer phi-accrual phi/` after
//! `cargo bench -p dsys-detect --bench phi`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dsys_detect::{PhiAccrual, PhiConfig, PhiModel};
use phi_accrual::PhiFailureDetector;

/// Window sizes: phi-accrual's default, and Akka's default.
const WINDOWS: [usize; 2] = [10, 1000];
/// Heartbeats precomputed per timed run of the heartbeat benchmark.
const STAMPS: usize = 1 << 16;
const SEED: u64 = 0x00d5_7500_0000_0001;
const MIN_STD_DEVIATION_MS: u64 = 100;
/// When the combined benchmark asks for φ after each heartbeat.
const PROBE_AFTER_MS: u64 = 25;

/// Heartbeat times in milliseconds after a base: 100 ms apart, each moved by
/// a seeded jitter in ±10 ms, so strictly increasing.
fn heartbeat_offsets_ms(count: usize, seed: u64) -> Vec<u64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count as u64)
        .map(|i| 10 + i * 100 + rng.u64(0..=20) - 10)
        .collect()
}

fn dsys_detector(window: usize) -> PhiAccrual {
    PhiAccrual::new({
        let mut c = PhiConfig::default();
        c.max_sample_size = window;
        c.min_std_deviation = Duration::from_millis(MIN_STD_DEVIATION_MS);
        c.acceptable_heartbeat_pause = Duration::ZERO;
        c.first_heartbeat_estimate = Duration::from_millis(100);
        c.model = PhiModel::Normal;
        c
    })
    .expect("a valid config")
}

fn peer_detector(window: usize) -> PhiFailureDetector {
    PhiFailureDetector::new()
        .history_size(window)
        .min_stddev(MIN_STD_DEVIATION_MS as f64)
}

/// Times `iters` steps over the precomputed `stamps`: `warm` untimed
/// heartbeats into a fresh detector, then timed `step`s, rebuilding the
/// detector (untimed) whenever the stamps run out.
fn run_steps<D, T: Copy>(
    iters: u64,
    stamps: &[T],
    warm: usize,
    mut fresh: impl FnMut() -> D,
    mut heartbeat: impl FnMut(&mut D, T),
    mut step: impl FnMut(&mut D, T),
) -> Duration {
    let timed_per_run = (stamps.len() - warm) as u64;
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(timed_per_run) as usize;
        let mut fd = fresh();
        for &t in &stamps[..warm] {
            heartbeat(&mut fd, t);
        }
        let start = Instant::now();
        for &t in &stamps[warm..warm + n] {
            step(&mut fd, black_box(t));
        }
        total += start.elapsed();
        black_box(&fd);
        left -= n as u64;
    }
    total
}

fn bench_heartbeat(c: &mut Criterion) {
    let offsets = heartbeat_offsets_ms(STAMPS, SEED);
    let base = Instant::now();
    let instants: Vec<Instant> = offsets
        .iter()
        .map(|&ms| base + Duration::from_millis(ms))
        .collect();
    // (heartbeat, probe) pairs for the combined group, precomputed alike.
    let instant_pairs: Vec<(Instant, Instant)> = instants
        .iter()
        .map(|&t| (t, t + Duration::from_millis(PROBE_AFTER_MS)))
        .collect();
    let offset_pairs: Vec<(u64, u64)> = offsets
        .iter()
        .map(|&ms| (ms, ms + PROBE_AFTER_MS))
        .collect();

    for window in WINDOWS {
        // Heartbeats fed, untimed, before measuring: the window is full and
        // every timed heartbeat evicts one sample.
        let warm = window + 2;
        let mut group = c.benchmark_group(format!("phi/heartbeat/{window}"));
        group.bench_function("dsys", |b| {
            b.iter_custom(|iters| {
                run_steps(
                    iters,
                    &instants,
                    warm,
                    || dsys_detector(window),
                    PhiAccrual::heartbeat,
                    PhiAccrual::heartbeat,
                )
            });
        });
        group.bench_function("phi-accrual", |b| {
            b.iter_custom(|iters| {
                run_steps(
                    iters,
                    &offsets,
                    warm,
                    || peer_detector(window),
                    PhiFailureDetector::heartbeat,
                    PhiFailureDetector::heartbeat,
                )
            });
        });
        group.finish();

        let mut group = c.benchmark_group(format!("phi/heartbeat+phi/{window}"));
        group.bench_function("dsys", |b| {
            b.iter_custom(|iters| {
                run_steps(
                    iters,
                    &instant_pairs,
                    warm,
                    || dsys_detector(window),
                    |fd, (t, _)| fd.heartbeat(t),
                    |fd, (t, probe)| {
                        fd.heartbeat(t);
                        black_box(fd.phi(probe));
                    },
                )
            });
        });
        group.bench_function("phi-accrual", |b| {
            b.iter_custom(|iters| {
                run_steps(
                    iters,
                    &offset_pairs,
                    warm,
                    || peer_detector(window),
                    |fd, (t, _)| fd.heartbeat(t),
                    |fd, (t, probe)| {
                        fd.heartbeat(t);
                        black_box(fd.phi(probe));
                    },
                )
            });
        });
        group.finish();
    }
}

fn bench_phi(c: &mut Criterion) {
    /// Probe instants per detector, cycled through.
    const PROBES: usize = 64;
    for window in WINDOWS {
        let offsets = heartbeat_offsets_ms(window + 2, SEED);
        let last_ms = *offsets.last().expect("at least two heartbeats");
        // 0 to ~2 s after the last heartbeat: low φ to far past the threshold.
        let probe_ms: Vec<u64> = (0..PROBES as u64).map(|i| last_ms + i * 32).collect();

        let base = Instant::now();
        let mut ours = dsys_detector(window);
        for &ms in &offsets {
            ours.heartbeat(base + Duration::from_millis(ms));
        }
        let probe_instants: Vec<Instant> = probe_ms
            .iter()
            .map(|&ms| base + Duration::from_millis(ms))
            .collect();
        let mut theirs = peer_detector(window);
        for &ms in &offsets {
            theirs.heartbeat(ms);
        }

        let mut group = c.benchmark_group(format!("phi/phi/{window}"));
        group.bench_function("dsys", |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % PROBES;
                ours.phi(black_box(probe_instants[i]))
            });
        });
        group.bench_function("phi-accrual", |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % PROBES;
                theirs.phi(black_box(probe_ms[i]))
            });
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_heartbeat, bench_phi
}
criterion_main!(benches);
