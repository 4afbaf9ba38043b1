//! Model-checked concurrency of the shared clocks. Run with
//! `RUSTFLAGS="--cfg dsys_loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p dsys-clocks --test loom`
//! (`.ci/run` does). loom explores every interleaving of the atomic
//! operations up to the preemption bound.
#![cfg(dsys_loom)]

use dsys_clocks::{AtomicHlc, AtomicLamport, ManualClock, Timestamp, WallTime};
// The atomics inside the clocks are loom's; the Arc that shares them needs no modelling.
use loom::thread;
use std::sync::Arc;
use std::time::Duration;

const START_MS: u64 = 1_000;

fn strictly_increasing<T: Ord + std::fmt::Debug>(seq: &[T]) {
    assert!(
        seq.windows(2).all(|w| w[0] < w[1]),
        "not strictly increasing: {seq:?}"
    );
}

fn all_distinct<T: Ord + Clone + std::fmt::Debug>(seqs: &[Vec<T>]) {
    let mut all: Vec<T> = seqs.iter().flatten().cloned().collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "duplicate stamps in {seqs:?}");
}

#[test]
fn loom_atomic_lamport_ticks_are_unique_and_increasing() {
    loom::model(|| {
        let clock = Arc::new(AtomicLamport::new());
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let clock = Arc::clone(&clock);
                thread::spawn(move || {
                    let a = clock.tick().unwrap();
                    let b = if i == 0 {
                        clock.receive(7).unwrap()
                    } else {
                        clock.send().unwrap()
                    };
                    vec![a, b]
                })
            })
            .collect();
        let seqs: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        for seq in &seqs {
            strictly_increasing(seq);
        }
        all_distinct(&seqs);
        assert!(seqs[0][1] > 7, "receive did not pass the remote stamp");
        assert_eq!(clock.time(), *seqs.iter().flatten().max().unwrap());
    });
}

/// Two threads take timestamps while a third moves the physical clock
/// forward: no two timestamps are equal and each thread's sequence strictly
/// increases.
#[test]
fn loom_atomic_hlc_now_is_unique_and_increasing() {
    loom::model(|| {
        let physical = Arc::new(ManualClock::new(WallTime::from_millis(START_MS)));
        let hlc = Arc::new(AtomicHlc::new(Arc::clone(&physical)));
        let ticker = {
            let physical = Arc::clone(&physical);
            thread::spawn(move || physical.advance(Duration::from_millis(1)))
        };
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let hlc = Arc::clone(&hlc);
                thread::spawn(move || vec![hlc.now().unwrap(), hlc.now().unwrap()])
            })
            .collect();
        let seqs: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        ticker.join().unwrap();
        for seq in &seqs {
            strictly_increasing(seq);
            assert!(seq.iter().all(|t| t.millis() >= START_MS));
        }
        all_distinct(&seqs);
        assert_eq!(hlc.last(), *seqs.iter().flatten().max().unwrap());
    });
}

/// `update` racing with `now` never moves the clock backwards: an observer
/// sees a non-decreasing clock, the receive stamp exceeds the remote one,
/// and everything after the receive on that thread exceeds it too.
#[test]
fn loom_atomic_hlc_update_never_moves_backwards() {
    loom::model(|| {
        let physical = Arc::new(ManualClock::new(WallTime::from_millis(START_MS)));
        let hlc = Arc::new(AtomicHlc::new(Arc::clone(&physical)));
        let remote = Timestamp::new(START_MS + 200, 3).unwrap();
        let receiver = {
            let hlc = Arc::clone(&hlc);
            thread::spawn(move || {
                let received = hlc.update(remote).unwrap();
                let after = hlc.now().unwrap();
                (received, after)
            })
        };
        let local = {
            let hlc = Arc::clone(&hlc);
            thread::spawn(move || vec![hlc.now().unwrap(), hlc.now().unwrap()])
        };
        let observer = {
            let hlc = Arc::clone(&hlc);
            thread::spawn(move || [hlc.last(), hlc.last(), hlc.last()])
        };
        let (received, after) = receiver.join().unwrap();
        let local = local.join().unwrap();
        let observed = observer.join().unwrap();
        assert!(received > remote);
        assert!(after > received);
        strictly_increasing(&local);
        assert!(
            observed.windows(2).all(|w| w[0] <= w[1]),
            "clock went back: {observed:?}"
        );
        all_distinct(&[vec![received, after], local]);
    });
}

/// A rejected update (remote too far ahead) racing with `now` leaves no trace.
#[test]
fn loom_atomic_hlc_rejected_update_has_no_effect() {
    loom::model(|| {
        let physical = Arc::new(ManualClock::new(WallTime::from_millis(START_MS)));
        let hlc = Arc::new(AtomicHlc::new(Arc::clone(&physical)));
        let far = Timestamp::new(START_MS + 10_000, 0).unwrap();
        let rejecter = {
            let hlc = Arc::clone(&hlc);
            thread::spawn(move || hlc.update(far).is_err())
        };
        let local = {
            let hlc = Arc::clone(&hlc);
            thread::spawn(move || hlc.now().unwrap())
        };
        assert!(rejecter.join().unwrap());
        let stamp = local.join().unwrap();
        assert_eq!(hlc.last(), stamp);
        assert!(stamp.millis() < START_MS + 10_000);
    });
}
