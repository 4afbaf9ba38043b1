//! dsys-clocks HLC against `uhlc` on the same workloads, in the same run.
//!
//! Workload: timestamps are taken in rounds. Each round starts in a fresh
//! millisecond of the physical clock under test and issues
//! [`STAMPS_PER_ROUND`] timestamps (split across the threads), then the
//! harness waits, untimed, for that clock's millisecond to change. Only the
//! rounds are timed, for both crates alike. Rounds keep the load inside the
//! 65,536 timestamps per millisecond that the 48+16-bit layout (Kulkarni et
//! al. §6.2) can issue without running `l` ahead of physical time; a tight
//! loop with a sub-15 ns clock would exceed it and measure error returns.
//!
//! Groups (criterion time per iteration = wall time per timestamp):
//! - `now/system/1-thread`: `Hlc` (`&mut`), `AtomicHlc` (`&self`) and uhlc's
//!   `HLC::new_timestamp`, each on its own system clock: dsys's
//!   `SystemClock` (`CLOCK_REALTIME` through rustix's vDSO call) and uhlc's
//!   default (`SystemTime::now()`, the same `CLOCK_REALTIME`).
//! - `now/system/2-threads`: `AtomicHlc` vs uhlc, two threads on one clock.
//! - `now/coarse/*`: dsys clocks on `CoarseClock` (a cached time refreshed
//!   every 1 ms by `coarsetime::Updater`), against uhlc on `SystemTime` (its
//!   default) and uhlc on the same cached time.
//! - every `system` group also runs `uhlc-same-clock`: uhlc reading
//!   `CLOCK_REALTIME` through rustix's vDSO call instead of `SystemTime`, to
//!   show how much of the gain is the clock path.
//! - `update/system/1-thread`: the receive path, with 1,024 remote
//!   timestamps made 0-20 ms behind local time when the group starts (every
//!   one stays accepted as the group runs).
//!
//! Each system-clock group also times `floor-clock-read`: the clock read
//! alone, which every HLC must do once per event. Peer time / floor is the
//! best ratio any implementation could reach on the machine.
//!
//! Ratios: `python3 .ci/bench-ratios now/ update/` after
//! `cargo bench -p dsys-clocks --bench hlc`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dsys_clocks::{AtomicHlc, CoarseClock, Hlc, PhysicalClock, SystemClock, Timestamp};

/// Timestamps per round (all threads together); half the per-ms capacity.
const STAMPS_PER_ROUND: u64 = 32_768;
const REMOTE_SPREAD_MS: u64 = 20;

/// Spins (untimed) until `clock`'s millisecond differs from `since`.
fn wait_for_next_millisecond(clock: &impl PhysicalClock, since: u64) {
    while clock.now().as_millis() == since {
        std::hint::spin_loop();
    }
}

/// Runs `iters` calls of `stamp` in rounds on this thread; returns the time
/// spent inside rounds.
fn rounds_1_thread(iters: u64, clock: &impl PhysicalClock, mut stamp: impl FnMut(u64)) -> Duration {
    let mut timed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let batch = STAMPS_PER_ROUND.min(iters - done);
        let start = Instant::now();
        for i in done..done + batch {
            stamp(i);
        }
        timed += start.elapsed();
        done += batch;
        wait_for_next_millisecond(clock, clock.now().as_millis());
    }
    timed
}

/// Runs `iters` calls of `stamp` split across two threads; returns the wall
/// time inside rounds. Both threads spin (rather than park on a
/// `std::sync::Barrier`) between rounds, so a round's time holds no thread
/// wake-up latency, which on a VM varies more than the work being measured.
fn rounds_2_threads(
    iters: u64,
    clock: &(impl PhysicalClock + Sync),
    stamp: impl Fn(u64) + Sync,
) -> Duration {
    let per_thread_round = STAMPS_PER_ROUND / 2;
    let rounds = iters.div_ceil(STAMPS_PER_ROUND);
    let started = AtomicU64::new(0);
    let finished = AtomicU64::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for round in 1..=rounds {
                while started.load(Ordering::Acquire) < round {
                    std::hint::spin_loop();
                }
                for i in 0..per_thread_round {
                    stamp(i);
                }
                finished.store(round, Ordering::Release);
            }
        });
        let mut timed = Duration::ZERO;
        for round in 1..=rounds {
            let ms = clock.now().as_millis();
            let start = Instant::now();
            started.store(round, Ordering::Release);
            for i in 0..per_thread_round {
                stamp(i);
            }
            while finished.load(Ordering::Acquire) < round {
                std::hint::spin_loop();
            }
            timed += start.elapsed();
            wait_for_next_millisecond(clock, ms);
        }
        // Scale to the requested count (the last round may overshoot).
        timed.mul_f64(iters as f64 / (rounds * STAMPS_PER_ROUND) as f64)
    })
}

/// A value alone on its own pair of cache lines (x86 prefetches lines in
/// pairs), so that a contended clock never shares a line with the bench's
/// own stack traffic.
#[repr(align(128))]
struct Isolated<T>(T);

fn isolated<T>(value: T) -> Box<Isolated<T>> {
    Box::new(Isolated(value))
}

/// uhlc's clock function over the same cached time `CoarseClock` reads
/// (the cache only; refreshing is the updater thread's job).
fn uhlc_coarse_clock() -> uhlc::NTP64 {
    uhlc::NTP64::from(Duration::from_nanos(
        coarsetime::Clock::recent_since_epoch().as_nanos(),
    ))
}

/// uhlc's own clock function with only the system call swapped: the same
/// `CLOCK_REALTIME` read through rustix's vDSO call (as dsys's
/// `SystemClock` does) instead of `SystemTime::now()`, converted to NTP64 the
/// way uhlc converts it. Separates what the clock path gains from what the
/// HLC gains.
fn uhlc_same_system_clock() -> uhlc::NTP64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let since_epoch = Duration::new(
        u64::try_from(now.tv_sec).expect("the bench machine's clock is after 1970"),
        u32::try_from(now.tv_nsec).expect("tv_nsec is below 1e9"),
    );
    uhlc::NTP64::from(since_epoch)
}

fn uhlc_with(clock: fn() -> uhlc::NTP64) -> uhlc::HLC {
    uhlc::HLCBuilder::new()
        .with_clock(clock)
        .with_max_delta(Duration::from_millis(500))
        .build()
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Registers one contender timed in single-thread rounds: `stamp(i)` is one
/// timestamp (or receive) of the contender.
fn on_1_thread(
    group: &mut Group<'_>,
    name: &str,
    clock: &impl PhysicalClock,
    mut stamp: impl FnMut(u64),
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| rounds_1_thread(iters, clock, &mut stamp))
    });
}

/// Registers one contender timed in two-thread rounds on one shared clock.
fn on_2_threads(
    group: &mut Group<'_>,
    name: &str,
    clock: &(impl PhysicalClock + Sync),
    stamp: impl Fn(u64) + Sync,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| rounds_2_threads(iters, clock, &stamp))
    });
}

const WITHIN_CAPACITY: &str = "rounds stay within 65,536 stamps per millisecond";

fn now_single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("now/system/1-thread");
    on_1_thread(&mut group, "floor-clock-read", &SystemClock, |_| {
        black_box(SystemClock.now().as_millis());
    });
    let mut hlc = Hlc::new(SystemClock);
    on_1_thread(&mut group, "dsys-hlc", &SystemClock, |_| {
        black_box(hlc.now().expect(WITHIN_CAPACITY));
    });
    let hlc = AtomicHlc::new(SystemClock);
    on_1_thread(&mut group, "dsys-atomic-hlc", &SystemClock, |_| {
        black_box(hlc.now().expect(WITHIN_CAPACITY));
    });
    let hlc = uhlc::HLC::default();
    on_1_thread(&mut group, "uhlc", &SystemClock, |_| {
        black_box(hlc.new_timestamp());
    });
    let hlc = uhlc_with(uhlc_same_system_clock);
    on_1_thread(&mut group, "uhlc-same-clock", &SystemClock, |_| {
        black_box(hlc.new_timestamp());
    });
    group.finish();
}

fn now_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("now/system/2-threads");
    on_2_threads(&mut group, "floor-clock-read", &SystemClock, |_| {
        black_box(SystemClock.now().as_millis());
    });
    let hlc = isolated(AtomicHlc::new(SystemClock));
    on_2_threads(&mut group, "dsys-atomic-hlc", &SystemClock, |_| {
        black_box(hlc.0.now().expect(WITHIN_CAPACITY));
    });
    let hlc = isolated(uhlc::HLC::default());
    on_2_threads(&mut group, "uhlc", &SystemClock, |_| {
        black_box(hlc.0.new_timestamp());
    });
    let hlc = isolated(uhlc_with(uhlc_same_system_clock));
    on_2_threads(&mut group, "uhlc-same-clock", &SystemClock, |_| {
        black_box(hlc.0.new_timestamp());
    });
    group.finish();
}

fn now_coarse(c: &mut Criterion) {
    let updater = coarsetime::Updater::new(1)
        .start()
        .expect("start the coarsetime updater thread");
    let coarse = CoarseClock::new();

    let mut group = c.benchmark_group("now/coarse/1-thread");
    let mut hlc = Hlc::new(coarse);
    on_1_thread(&mut group, "dsys-hlc", &coarse, |_| {
        black_box(hlc.now().expect(WITHIN_CAPACITY));
    });
    let hlc = AtomicHlc::new(coarse);
    on_1_thread(&mut group, "dsys-atomic-hlc", &coarse, |_| {
        black_box(hlc.now().expect(WITHIN_CAPACITY));
    });
    let hlc = uhlc::HLC::default();
    on_1_thread(&mut group, "uhlc", &coarse, |_| {
        black_box(hlc.new_timestamp());
    });
    let hlc = uhlc_with(uhlc_coarse_clock);
    on_1_thread(&mut group, "uhlc-coarse", &coarse, |_| {
        black_box(hlc.new_timestamp());
    });
    group.finish();

    let mut group = c.benchmark_group("now/coarse/2-threads");
    let hlc = isolated(AtomicHlc::new(coarse));
    on_2_threads(&mut group, "dsys-atomic-hlc", &coarse, |_| {
        black_box(hlc.0.now().expect(WITHIN_CAPACITY));
    });
    let hlc = isolated(uhlc::HLC::default());
    on_2_threads(&mut group, "uhlc", &coarse, |_| {
        black_box(hlc.0.new_timestamp());
    });
    let hlc = isolated(uhlc_with(uhlc_coarse_clock));
    on_2_threads(&mut group, "uhlc-coarse", &coarse, |_| {
        black_box(hlc.0.new_timestamp());
    });
    group.finish();
    updater.stop().expect("stop the coarsetime updater thread");
}

/// Remote timestamps 0..REMOTE_SPREAD_MS behind `now_ms`, with varied
/// logical parts: the same values for both crates.
fn remotes(now_ms: u64) -> Vec<(Timestamp, uhlc::Timestamp)> {
    let peer = uhlc::ID::try_from([7u8]).expect("a one-byte id is valid");
    (0..1024u64)
        .map(|i| {
            let behind = (i * 7919) % REMOTE_SPREAD_MS;
            let logical = (i * 104_729 % 16) as u16;
            let ours = Timestamp::new(now_ms - behind, logical).expect("current time fits 48 bits");
            let ntp = uhlc::NTP64::from(Duration::from_millis(now_ms - behind));
            (
                ours,
                uhlc::Timestamp::new(uhlc::NTP64(ntp.0 + u64::from(logical)), peer),
            )
        })
        .collect()
}

fn update_single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("update/system/1-thread");
    let remotes = remotes(SystemClock.now().as_millis());
    let remote = |i: u64| &remotes[(i % remotes.len() as u64) as usize];
    const BEHIND: &str = "remotes are behind local time";
    on_1_thread(&mut group, "floor-clock-read", &SystemClock, |_| {
        black_box(SystemClock.now().as_millis());
    });
    let mut hlc = Hlc::new(SystemClock);
    on_1_thread(&mut group, "dsys-hlc", &SystemClock, |i| {
        black_box(hlc.update(remote(i).0).expect(BEHIND));
    });
    let hlc = AtomicHlc::new(SystemClock);
    on_1_thread(&mut group, "dsys-atomic-hlc", &SystemClock, |i| {
        black_box(hlc.update(remote(i).0).expect(BEHIND));
    });
    // uhlc's update returns (): its effect is on the clock, which the next call reads.
    let hlc = uhlc::HLC::default();
    on_1_thread(&mut group, "uhlc", &SystemClock, |i| {
        hlc.update_with_timestamp(black_box(&remote(i).1))
            .expect(BEHIND);
    });
    let hlc = uhlc_with(uhlc_same_system_clock);
    on_1_thread(&mut group, "uhlc-same-clock", &SystemClock, |i| {
        hlc.update_with_timestamp(black_box(&remote(i).1))
            .expect(BEHIND);
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = now_single_thread, now_two_threads, now_coarse, update_single_thread
}
criterion_main!(benches);
