//! A seeded random schedule against two relays sharing the outbox: commits
//! and rollbacks over a few keys, passes of either relay, clock jumps that
//! expire leases, retryable failures and poison, operator replays and
//! purges. At the end (everything healed and replayed) every committed,
//! unpurged event was delivered, and per key the first deliveries follow
//! the sequence order. Runs on SQLite and PostgreSQL.
//!
//! Failures are planned when an event commits (a third fail 1-4 times, one in
//! twenty is poison), before any relay can see it.
//!
//! `OUTBOX_MODEL_SEEDS` (default 4) and `OUTBOX_MODEL_STEPS` (default 120)
//! size it; a failing seed is printed.

mod outbox_common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use dsys_clocks::{ManualClock, PhysicalClock};
use dsys_txn::outbox::{Event, EventId, MemPublisher, OutboxStore, PublishError, Publisher, Relay};
use outbox_common::*;

/// One delivery log and failure plan shared by both relays' publishers.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<MemPublisher>>);

impl Publisher for Shared {
    fn publish(&mut self, e: &Event) -> Result<(), PublishError> {
        self.0.borrow_mut().publish(e)
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn random_schedules_keep_order<D: Db>(db: D) {
    for seed in 0..env("OUTBOX_MODEL_SEEDS", 4) {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // A fresh key space per seed: the database is shared.
            schedule(&db, seed)
        }));
        if let Err(e) = run {
            eprintln!(
                "random_schedules_keep_order failed on {} with seed {seed}",
                db.name()
            );
            std::panic::resume_unwind(e);
        }
    }
}

fn schedule<D: Db>(db: &D, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    // Each seed starts a day after the last: earlier seeds' leases have
    // expired (the database is shared).
    let clock = ManualClock::new(T0 + Duration::from_secs(86_400 * seed));
    let shared = Shared::default();
    let mut relays = [
        (
            Relay::new(format!("a{seed}"), db.config()).unwrap(),
            db.store(),
        ),
        (
            Relay::new(format!("b{seed}"), db.config()).unwrap(),
            db.store(),
        ),
    ];
    let mut committed: BTreeMap<EventId, (Vec<u8>, u64)> = BTreeMap::new();
    let mut purged: BTreeSet<EventId> = BTreeSet::new();
    let steps = env("OUTBOX_MODEL_STEPS", 120);
    for _ in 0..steps {
        match rng.u32(0..100) {
            0..=29 => {
                let n = rng.usize(1..4);
                let keys: Vec<Vec<u8>> = (0..n)
                    .map(|_| format!("s{seed}-k{}", rng.u32(0..6)).into_bytes())
                    .collect();
                let events: Vec<(&[u8], &[u8])> =
                    keys.iter().map(|k| (&k[..], &b"p"[..])).collect();
                let commit = rng.u32(0..5) != 0;
                let ids = db.enqueue(&events, commit, clock.now());
                if commit {
                    for (id, key) in ids.into_iter().zip(keys) {
                        committed.insert(id, (key, 0));
                        // Plan failures before the relays can see the event.
                        let mut p = shared.0.borrow_mut();
                        match rng.u32(0..20) {
                            0 => p.poison(id),
                            1..=6 => p.fail_times(id, rng.u32(1..5)),
                            _ => {}
                        }
                    }
                }
            }
            30..=64 => {
                let (relay, store) = &mut relays[rng.usize(0..2)];
                relay.run_pass(store, &mut shared.clone(), &clock).unwrap();
            }
            65..=79 => clock.advance(Duration::from_millis(rng.u64(0..3000))),
            80..=82 => clock.advance(db.config().lease_duration + Duration::from_millis(1)),
            83..=87 => {
                // Heal a random event (a broker recovering).
                if let Some(&id) = committed.keys().nth(rng.usize(0..committed.len().max(1))) {
                    shared.0.borrow_mut().heal(id);
                }
            }
            _ => {
                let store = &mut relays[0].1;
                let dead = store.dead_letters(None, 100).unwrap();
                if let Some(d) = dead.get(rng.usize(0..dead.len().max(1))) {
                    if rng.bool() {
                        shared.0.borrow_mut().heal(d.event.id);
                        assert!(store.replay_dead_letter(d.event.id).unwrap());
                    } else {
                        assert!(store.purge_dead_letter(d.event.id).unwrap());
                        purged.insert(d.event.id);
                    }
                }
            }
        }
    }
    // Heal everything, replay every dead letter, and drain.
    for id in committed.keys() {
        shared.0.borrow_mut().heal(*id);
    }
    for _ in 0..200 {
        let store = &mut relays[0].1;
        for d in store.dead_letters(None, 1000).unwrap() {
            store.replay_dead_letter(d.event.id).unwrap();
        }
        clock.advance(Duration::from_secs(2));
        for (relay, store) in &mut relays {
            relay.run_pass(store, &mut shared.clone(), &clock).unwrap();
        }
        if relays[0].1.backlog().unwrap() == 0 {
            break;
        }
    }
    assert_eq!(relays[0].1.backlog().unwrap(), 0, "drained");
    let delivered = shared.0.borrow().delivered().to_vec();
    let keys = first_deliveries(&delivered);
    let got: BTreeSet<EventId> = delivered.iter().map(|e| e.id).collect();
    for (id, (key, _)) in &committed {
        assert_eq!(
            got.contains(id),
            !purged.contains(id),
            "event {id} of key {:?}",
            String::from_utf8_lossy(key)
        );
    }
    eprintln!(
        "{} seed {seed}: {} committed, {} purged, {} deliveries, {} publish attempts",
        db.name(),
        committed.len(),
        purged.len(),
        delivered.len(),
        shared.0.borrow().attempts()
    );
    for (key, seqs) in keys {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "key {}: first deliveries out of order: {seqs:?}",
            String::from_utf8_lossy(&key)
        );
    }
}

both!(random_schedules_keep_order);
